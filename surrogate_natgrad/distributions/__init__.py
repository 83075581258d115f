"""Target distributions that :func:`surrogate_natgrad.fit` fits by maximum likelihood.

Targets are the distributions a user wants (here negative binomials and their mixtures,
parameterised as in :mod:`scipy.stats`), as opposed to the exponential-family surrogates of
:mod:`surrogate_natgrad.families` that only supply the natural-gradient geometry.
"""

from __future__ import annotations

from surrogate_natgrad.distributions._base import Distribution
from surrogate_natgrad.distributions._checks import check_counts
from surrogate_natgrad.distributions.negative_binomial import (
    NegativeBinomial,
    NegativeBinomialMixture,
    nbinom_logpmf,
    nbinom_mixture_logpmf,
)

__all__ = [
    "Distribution",
    "NegativeBinomial",
    "NegativeBinomialMixture",
    "check_counts",
    "nbinom_logpmf",
    "nbinom_mixture_logpmf",
]
