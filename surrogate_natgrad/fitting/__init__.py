"""Fitting driver: :func:`fit`, its result object, stopping rules, callbacks and data checks."""

from __future__ import annotations

from surrogate_natgrad.fitting._callbacks import IterationInfo, ProgressBar
from surrogate_natgrad.fitting._fit import DISTRIBUTIONS, METHODS, fit
from surrogate_natgrad.fitting._fit_vi import VI_FAMILIES, VI_METHODS, VIResult, fit_vi
from surrogate_natgrad.fitting._result import FitHistory, FitResult
from surrogate_natgrad.fitting._stopping import StoppingRule, default_gtol, default_tol
from surrogate_natgrad.fitting._validation import check_counts

__all__ = [
    "DISTRIBUTIONS",
    "METHODS",
    "VI_FAMILIES",
    "VI_METHODS",
    "FitHistory",
    "FitResult",
    "IterationInfo",
    "ProgressBar",
    "StoppingRule",
    "VIResult",
    "check_counts",
    "default_gtol",
    "default_tol",
    "fit",
    "fit_vi",
]
