"""Target distributions that :func:`surrogate_natgrad.fit` fits by maximum likelihood.

Targets are the distributions a user wants (here negative binomials and their mixtures,
parameterised as in :mod:`scipy.stats`), as opposed to the exponential-family surrogates of
:mod:`surrogate_natgrad.families` that only supply the natural-gradient geometry.
"""

from __future__ import annotations

from surrogate_natgrad.distributions._base import Distribution
from surrogate_natgrad.distributions._checks import check_counts
from surrogate_natgrad.distributions.multivariate_t import MultivariateT, multivariate_t_logpdf
from surrogate_natgrad.distributions.negative_binomial import (
    NegativeBinomial,
    NegativeBinomialMixture,
    nbinom_logpmf,
    nbinom_mixture_logpmf,
)
from surrogate_natgrad.distributions.skew_normal import SkewNormal, SkewNormalMixture
from surrogate_natgrad.distributions.skew_t import SkewT
from surrogate_natgrad.distributions.t_copula import (
    TCopula,
    kendall_tau,
    pseudo_observations,
    t_copula_logpdf,
)

__all__ = [
    "Distribution",
    "MultivariateT",
    "NegativeBinomial",
    "NegativeBinomialMixture",
    "SkewNormal",
    "SkewNormalMixture",
    "SkewT",
    "TCopula",
    "check_counts",
    "kendall_tau",
    "multivariate_t_logpdf",
    "nbinom_logpmf",
    "nbinom_mixture_logpmf",
    "pseudo_observations",
    "t_copula_logpdf",
]
