"""Variational inference maths: variational families, ELBO estimators, quadrature.

Pure math (layer 3): array-API code differentiable on every autodiff backend.

- :class:`GaussianVariational`, :class:`SkewNormalVariational`, :class:`SkewTVariational`,
  :class:`SkewNormalMixtureVariational` (the :class:`VariationalFamily` protocol):
  reparameterised sampling from fixed noise (common random numbers; the skew-t's gamma
  variates by the quantile function, with implicit reparameterisation gradients in ``ν``;
  stratified draws for mixtures), entropies (closed form; skew-normal by Gauss–Hermite
  quadrature of a 1-D term; Monte Carlo otherwise), moments and densities.
- :func:`estimate_elbo` with :class:`ELBOTerms`: the ELBO estimate whose gradient is an
  unbiased estimate of the ELBO's gradient, using closed-form parts (Gaussian prior,
  conjugate log joint) where the model offers them.
- :class:`VariationalApproximation`: a fitted variational distribution.
- :func:`gauss_hermite`, :func:`normal_expectation`: Gauss–Hermite quadrature.
"""

from __future__ import annotations

from surrogate_natgrad._compat.linalg import PARAMETERIZATIONS, factor_to_scale, scale_to_factor
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
    VariationalFamily,
    VariationalNoise,
    antithetic_noise,
    skew_normal_from_conditional,
    skew_normal_to_conditional,
)
from surrogate_natgrad.vi._mixture import SkewNormalMixtureParams, SkewNormalMixtureVariational
from surrogate_natgrad.vi._quadrature import gauss_hermite, gauss_legendre, normal_expectation
from surrogate_natgrad.vi._skew_t import SkewTParams, SkewTVariational

__all__ = [
    "PARAMETERIZATIONS",
    "ELBOTerms",
    "GaussianVariational",
    "SkewNormalMixtureParams",
    "SkewNormalMixtureVariational",
    "SkewNormalParams",
    "SkewNormalVariational",
    "SkewTParams",
    "SkewTVariational",
    "VariationalApproximation",
    "VariationalFamily",
    "VariationalNoise",
    "antithetic_noise",
    "estimate_elbo",
    "expected_log_gaussian",
    "factor_to_scale",
    "gauss_hermite",
    "gauss_legendre",
    "gaussian_entropy",
    "normal_expectation",
    "scale_to_factor",
    "skew_normal_from_conditional",
    "skew_normal_to_conditional",
]
