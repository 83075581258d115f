"""Probabilistic models whose posteriors :func:`~surrogate_natgrad.fit_vi` approximates.

Pure math (layer 3): every model keeps its data in the namespace and on the device they were
given in, and evaluates its log joint density with array-API operations, so the same model
works on NumPy (autograd), torch and JAX arrays and is differentiable on each.

:class:`BayesianLogisticRegression`
    Logistic regression with a Gaussian prior ``N(0, I / prior_precision)``; the log joint is
    vectorised over a batch of samples and evaluated over the data in chunks.
:class:`BayesianLinearRegression`
    Linear regression with Gaussian noise and prior (conjugate): offers the exact posterior
    and evidence, for checks and examples.
"""

from __future__ import annotations

from surrogate_natgrad.models._regression import (
    BayesianLinearRegression,
    BayesianLogisticRegression,
)

__all__ = ["BayesianLinearRegression", "BayesianLogisticRegression"]
