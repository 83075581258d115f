"""Surrogate natural gradient descent (SNGD) for fitting probability distributions.

The library fits distributions by maximum likelihood and variational inference with natural
gradients taken through a cheap surrogate exponential family (So & Turner, AISTATS 2024).
Its numerical code is written against the Python array API standard, so the same call runs on
NumPy, CuPy, torch and JAX arrays, with pluggable automatic differentiation.
"""

from __future__ import annotations

from surrogate_natgrad.distributions import (
    MultivariateT,
    NegativeBinomial,
    NegativeBinomialMixture,
    SkewNormal,
    SkewNormalMixture,
    SkewT,
    TCopula,
)
from surrogate_natgrad.errors import (
    BackendError,
    ConvergenceWarning,
    DataError,
    DomainError,
    SurrogateNatgradError,
)
from surrogate_natgrad.fitting import FitResult, VIResult, fit, fit_vi

__version__ = "0.1.0.dev0"

__all__ = [
    "BackendError",
    "ConvergenceWarning",
    "DataError",
    "DomainError",
    "FitResult",
    "MultivariateT",
    "NegativeBinomial",
    "NegativeBinomialMixture",
    "SkewNormal",
    "SkewNormalMixture",
    "SkewT",
    "SurrogateNatgradError",
    "TCopula",
    "VIResult",
    "__version__",
    "fit",
    "fit_vi",
]
