"""Variational inference maths: variational families, ELBO estimators, quadrature.

Pure math (layer 3): array-API code differentiable on every autodiff backend.

- :class:`GaussianVariational`, :class:`SkewNormalVariational`: reparameterised sampling
  from fixed noise (common random numbers), entropies (closed form; skew-normal by
  Gauss–Hermite quadrature of a 1-D term), moments and densities.
- :func:`estimate_elbo` with :class:`ELBOTerms`: the ELBO estimate whose gradient is an
  unbiased estimate of the ELBO's gradient, using closed-form parts (Gaussian prior,
  conjugate log joint) where the model offers them.
- :class:`VariationalApproximation`: a fitted variational distribution.
- :func:`gauss_hermite`, :func:`normal_expectation`: Gauss–Hermite quadrature.
"""

from __future__ import annotations

from surrogate_natgrad.vi._elbo import (
    ELBOTerms,
    estimate_elbo,
    expected_log_gaussian,
    gaussian_entropy,
)
from surrogate_natgrad.vi._families import (
    GaussianVariational,
    SkewNormalParams,
    SkewNormalVariational,
    VariationalApproximation,
    VariationalNoise,
    antithetic_noise,
    skew_normal_from_conditional,
    skew_normal_to_conditional,
)
from surrogate_natgrad.vi._quadrature import gauss_hermite, gauss_legendre, normal_expectation

__all__ = [
    "ELBOTerms",
    "GaussianVariational",
    "SkewNormalParams",
    "SkewNormalVariational",
    "VariationalApproximation",
    "VariationalNoise",
    "antithetic_noise",
    "estimate_elbo",
    "expected_log_gaussian",
    "gauss_hermite",
    "gauss_legendre",
    "gaussian_entropy",
    "normal_expectation",
    "skew_normal_from_conditional",
    "skew_normal_to_conditional",
]
