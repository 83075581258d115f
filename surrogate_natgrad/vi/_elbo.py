"""ELBO estimators with reparameterised samples (pure math, array API only).

``ELBO(q) = E_q[log p(z, y)] + H(q)``. The entropy ``H`` is exact for the Gaussian and (up to
1-D quadrature) for the skew-normal; for the skew-t and mixtures it is estimated as
``-E_q[log q]`` with the same samples. Mixtures draw stratified samples (``S`` per
component) and weight them by ``π_k/S``. The expected log joint is estimated with
reparameterised samples ``z = T(params, noise)`` from fixed standard-normal ``noise`` (common
random numbers), so the estimate is a smooth function of the parameters and its gradient
(taken by any autodiff backend) is an unbiased estimate of the ELBO's gradient with respect
to every variational parameter. Parts that are known in closed form replace their Monte
Carlo estimates:

- a Gaussian prior's expected log density depends on ``q`` only through its mean and
  covariance (``model.expected_log_prior``);
- a conjugate model's whole expected log joint (``model.expected_log_joint``), which makes
  the ELBO exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from surrogate_natgrad._compat import Array, linalg, namespace, stop_gradient
from surrogate_natgrad._tree import tree_map
from surrogate_natgrad.errors import DataError

__all__ = ["ELBOTerms", "estimate_elbo", "expected_log_gaussian", "gaussian_entropy"]

_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_entropy(cov: Array) -> Array:
    """Return the entropy ``½d(1 + log 2π) + ½log|Σ|`` of ``N(·, Σ)``.

    Parameters
    ----------
    cov : array, shape (..., d, d)
        Covariance matrices (symmetric positive definite).

    Returns
    -------
    array, shape (...)
    """
    chol = linalg.cholesky(linalg.symmetrize(cov))
    dim = int(cov.shape[-1])
    return 0.5 * dim * (1.0 + _LOG_2PI) + 0.5 * linalg.logdet_from_cholesky(chol)


def expected_log_gaussian(
    mean: Array, cov: Array, prior_mean: Array, prior_precision: Array
) -> Array:
    """Return ``E_q log N(z; m₀, P₀⁻¹)`` for any ``q`` with mean ``μ`` and covariance ``Σ``.

    ``-½[tr(P₀Σ) + (μ - m₀)ᵀP₀(μ - m₀)] + ½log|P₀| - (d/2) log 2π``.

    Parameters
    ----------
    mean : array, shape (d,)
        Mean of ``q``.
    cov : array, shape (d, d)
        Covariance of ``q``.
    prior_mean : array, shape (d,)
        Mean ``m₀`` of the Gaussian.
    prior_precision : array, shape (d, d)
        Precision ``P₀`` (symmetric positive definite).

    Returns
    -------
    array
        A 0-d array.
    """
    xp = namespace(mean, cov, prior_mean, prior_precision)
    chol = linalg.cholesky(linalg.symmetrize(prior_precision))
    difference = mean - prior_mean
    quadratic = xp.sum(difference * (prior_precision @ difference))
    trace = xp.sum(prior_precision * cov)
    dim = int(mean.shape[-1])
    return (
        -0.5 * (trace + quadratic)
        + 0.5 * linalg.logdet_from_cholesky(chol)
        - 0.5 * dim * (_LOG_2PI)
    )


@dataclass(frozen=True)
class ELBOTerms:
    """The parts of a model that an ELBO estimate uses.

    Parameters
    ----------
    log_joint : callable
        ``log_joint(z) -> (S,)`` for samples ``z`` of shape ``(S, d)``.
    log_likelihood : callable, optional
        ``log_likelihood(z) -> (S,)``; with ``expected_log_prior`` it replaces ``log_joint``
        (the prior term is then exact).
    expected_log_prior : callable, optional
        ``expected_log_prior(mean, cov) -> scalar``, exact for a Gaussian prior.
    expected_log_joint : callable, optional
        ``expected_log_joint(mean, cov) -> scalar``, exact for a conjugate (quadratic) log
        joint; the ELBO is then exact and needs no samples.
    """

    log_joint: Callable[[Array], Array]
    log_likelihood: Callable[[Array], Array] | None = None
    expected_log_prior: Callable[[Array, Array], Array] | None = None
    expected_log_joint: Callable[[Array, Array], Array] | None = None

    @property
    def exact(self) -> bool:
        """True when the expected log joint is known in closed form."""
        return self.expected_log_joint is not None

    @classmethod
    def from_model(cls, model: Any, closed_form: bool = True) -> ELBOTerms:
        """Build the terms from a model object or a bare ``log_joint`` callable.

        Parameters
        ----------
        model : object or callable
            A model with ``log_joint`` (and optionally ``log_likelihood`` with
            ``expected_log_prior``, or ``expected_log_joint``), or the log joint itself.
        closed_form : bool, optional
            Use the closed-form parts the model offers (default). False estimates the whole
            expected log joint by Monte Carlo.

        Returns
        -------
        ELBOTerms
        """
        if isinstance(model, ELBOTerms):
            return model
        log_joint = getattr(model, "log_joint", None)
        if log_joint is None:
            if not callable(model):
                raise DataError(
                    "log_joint must be callable (z of shape (S, d) -> S log densities) or a "
                    f"model with a log_joint method, got {type(model).__name__}"
                )
            return cls(model)
        if not closed_form:
            return cls(log_joint)
        return cls(
            log_joint,
            getattr(model, "log_likelihood", None),
            getattr(model, "expected_log_prior", None),
            getattr(model, "expected_log_joint", None),
        )


def _check_values(values: Array, n_samples: int) -> Array:
    if tuple(values.shape) != (n_samples,):
        raise DataError(
            f"log_joint must return one value per sample, shape ({n_samples},), "
            f"got shape {tuple(values.shape)}"
        )
    return values


def estimate_elbo(family: Any, params: Any, terms: Any, noise: Any = None) -> Array:
    """Return the reparameterised estimate of ``ELBO(q_params)``.

    Parameters
    ----------
    family : VariationalFamily
        The variational family (Gaussian, skew-normal, skew-t, skew-normal mixture).
    params : named tuple of arrays
        Its parameters (traced values stay differentiable).
    terms : ELBOTerms, model or callable
        What to integrate (see :meth:`ELBOTerms.from_model`).
    noise : VariationalNoise, optional
        Standard-normal draws from ``family.draw_noise`` (not needed for an exact
        ``expected_log_joint``).

    Returns
    -------
    array
        A 0-d array: the Monte Carlo average of the (likelihood or joint) log density over
        the samples, plus the closed-form parts and the entropy.
    """
    terms = ELBOTerms.from_model(terms)
    closed_form_entropy = getattr(family, "closed_form_entropy", True)
    if terms.expected_log_joint is not None and closed_form_entropy:
        mean, cov = family.moments(params)
        return terms.expected_log_joint(mean, cov) + family.entropy(params)
    if noise is None:
        raise DataError(
            "noise is needed to estimate the ELBO of a model without closed form (or of a "
            "family whose entropy has no closed form)"
        )
    weighted = getattr(family, "weighted_samples", None)
    if weighted is not None:
        samples, sample_weights = weighted(params, noise)
    else:
        samples, sample_weights = family.sample_from_noise(params, noise), None
    xp = namespace(samples)
    n_samples = int(samples.shape[0])

    def average(values: Array) -> Array:
        if sample_weights is None:
            return xp.mean(values)
        return xp.sum(sample_weights * values)

    entropy_estimate = getattr(family, "entropy_estimate", None)
    if closed_form_entropy:
        entropy = family.entropy(params)
    elif entropy_estimate is not None:
        # A family-specific estimate on the same draws (the skew-t: exact in Ω).
        entropy = entropy_estimate(params, noise)
    else:
        # -E_q[log q] on the same samples, differentiated only through the samples ("sticking
        # the landing", Roeder, Wu & Duvenaud 2017): the dropped score term E_q[∇_θ log q_θ]
        # is zero in expectation, so the gradient stays unbiased, and its variance vanishes
        # as q approaches the posterior. The value is unchanged.
        frozen = tree_map(stop_gradient, params)
        entropy = -average(family.log_prob(frozen, samples))
    if terms.expected_log_joint is not None:
        mean, cov = family.moments(params)
        return terms.expected_log_joint(mean, cov) + entropy
    if terms.log_likelihood is not None and terms.expected_log_prior is not None:
        mean, cov = family.moments(params)
        values = _check_values(terms.log_likelihood(samples), n_samples)
        return average(values) + terms.expected_log_prior(mean, cov) + entropy
    values = _check_values(terms.log_joint(samples), n_samples)
    return average(values) + entropy
