"""Test helpers: conversion to NumPy and independent finite-difference references."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from surrogate_natgrad._compat import to_numpy

__all__ = ["central_difference", "to_numpy"]


def central_difference(
    fun: Callable[[np.ndarray], float], x: np.ndarray, step: float = 1e-6, relative: bool = True
) -> np.ndarray:
    """Gradient of a scalar NumPy function by central differences (an independent reference).

    Uses a 4-point (fourth-order) stencil so that 1e-6 relative agreement is meaningful.
    """
    x = np.asarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        h = step * max(abs(x[i]), 1.0) if relative else step
        e = np.zeros_like(x)
        e[i] = h
        grad[i] = (-fun(x + 2 * e) + 8 * fun(x + e) - 8 * fun(x - e) + fun(x - 2 * e)) / (12 * h)
    return grad
