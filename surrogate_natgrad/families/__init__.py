"""Exponential-family surrogates (pure math on the array API).

Each family is a small stateless object whose parameters are named tuples of arrays
(natural, mean and standard parameters, with optional leading batch dimensions):

* :class:`Gaussian` (full covariance, symmetric non-minimal coordinates) and
  :class:`DiagonalGaussian`;
* :class:`Gamma` (shape, rate), with an implicit-function derivative for mean → natural;
* :class:`Mixture` (joint family over component and value) of any of the above;
* the MCEF joints :class:`SkewNormalMCEF` and :class:`StudentTScaleMixture`
  (Lin, Khan & Schmidt, 2019).
"""

from __future__ import annotations

from surrogate_natgrad.families._base import ExponentialFamily
from surrogate_natgrad.families.gamma import (
    Gamma,
    GammaMean,
    GammaNatural,
    GammaStandard,
    digamma_minus_log,
)
from surrogate_natgrad.families.gaussian import (
    DiagonalGaussian,
    DiagonalGaussianMean,
    DiagonalGaussianNatural,
    DiagonalGaussianStandard,
    Gaussian,
    GaussianMean,
    GaussianNatural,
    GaussianStandard,
)
from surrogate_natgrad.families.mcef import (
    SkewNormalMCEF,
    SkewNormalMCEFMean,
    SkewNormalMCEFNatural,
    SkewNormalMCEFStandard,
    StudentTScaleMixture,
)
from surrogate_natgrad.families.mixture import Mixture, MixtureMean, MixtureNatural, MixtureStandard

__all__ = [
    "DiagonalGaussian",
    "DiagonalGaussianMean",
    "DiagonalGaussianNatural",
    "DiagonalGaussianStandard",
    "ExponentialFamily",
    "Gamma",
    "GammaMean",
    "GammaNatural",
    "GammaStandard",
    "Gaussian",
    "GaussianMean",
    "GaussianNatural",
    "GaussianStandard",
    "Mixture",
    "MixtureMean",
    "MixtureNatural",
    "MixtureStandard",
    "SkewNormalMCEF",
    "SkewNormalMCEFMean",
    "SkewNormalMCEFNatural",
    "SkewNormalMCEFStandard",
    "StudentTScaleMixture",
    "digamma_minus_log",
]
