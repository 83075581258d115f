"""Bayesian logistic and linear regression (pure math, array API only).

Both models have a weight vector ``z ∈ ℝᵈ`` with the prior ``N(0, I / τ)`` (``τ`` the prior
precision) and keep the design matrix ``X`` (N × d) and the responses ``y`` in the namespace
and on the device they were given in. ``log_joint(z)`` accepts one weight vector ``(d,)`` or a
batch ``(..., d)`` and returns one log density per vector.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

from surrogate_natgrad import special
from surrogate_natgrad._compat import (
    Array,
    Namespace,
    as_float_array,
    device,
    is_array,
    linalg,
    namespace,
)
from surrogate_natgrad.errors import DataError

__all__ = ["BayesianLinearRegression", "BayesianLogisticRegression"]

_LOG_2PI = math.log(2.0 * math.pi)
#: Default number of (sample, observation) logits evaluated at once by the chunked likelihood.
_CHUNK_ELEMENTS = 2**21


def _first_bad_index(xp: Namespace, bad: Array) -> int:
    """Return the flat index of the first True entry of ``bad``."""
    flat = xp.reshape(bad, (-1,))
    return int(xp.nonzero(flat)[0][0])


def _check_design(X: Any) -> Array:
    if not is_array(X):
        raise DataError(f"X must be a 2-D array (N × d), got {type(X).__name__}")
    xp = namespace(X=X)
    if X.ndim != 2:
        raise DataError(f"X must be a 2-D array (N × d), got shape {tuple(X.shape)}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise DataError(f"X must have at least one row and one column, got shape {tuple(X.shape)}")
    X = as_float_array(X, xp, like=X)
    finite = xp.isfinite(X)
    if not bool(xp.all(finite)):
        index = _first_bad_index(xp, ~finite)
        row, col = divmod(index, int(X.shape[1]))
        raise DataError(f"X must be finite; X[{row}, {col}] = {float(X[row, col])!r} is not")
    return X


def _check_response(y: Any, X: Array) -> Array:
    if not is_array(y):
        raise DataError(f"y must be a 1-D array of length {X.shape[0]}, got {type(y).__name__}")
    xp = namespace(X=X, y=y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise DataError(
            f"y must be a 1-D array of length {X.shape[0]} (one response per row of X), "
            f"got shape {tuple(y.shape)}"
        )
    y = xp.astype(y, X.dtype) if y.dtype != X.dtype else y
    finite = xp.isfinite(y)
    if not bool(xp.all(finite)):
        index = _first_bad_index(xp, ~finite)
        raise DataError(f"y must be finite; y[{index}] = {float(y[index])!r} is not")
    return y


def _check_positive(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be a positive number, got {value!r}") from exc
    if not (number > 0 and math.isfinite(number)):
        raise DataError(f"{name} must be a positive finite number, got {value!r}")
    return number


class _GaussianPriorModel:
    """Shared parts: the isotropic Gaussian prior ``N(0, I / τ)`` and sample batching."""

    X: Array
    y: Array
    prior_precision: float

    @property
    def dim(self) -> int:
        """Number of weights ``d`` (columns of ``X``)."""
        return int(self.X.shape[1])

    @property
    def n_obs(self) -> int:
        """Number of observations ``N`` (rows of ``X``)."""
        return int(self.X.shape[0])

    def map_arrays(self, convert: Callable[[Array], Array]) -> Any:
        """Return a copy of the model with ``convert`` applied to each of its arrays.

        Drivers use it to hand a model to a DLPack bridge (CuPy data seen as zero-copy torch
        views inside the differentiated ELBO, see :func:`~surrogate_natgrad.fitting.fit_vi`).
        The model itself is not changed.

        Parameters
        ----------
        convert : callable
            ``convert(array) -> array``, e.g. ``DLPackBridge.to_inner``.

        Returns
        -------
        model
            A shallow copy whose array attributes are ``convert``-ed.
        """
        converted = copy.copy(self)
        for name, value in vars(self).items():
            if is_array(value):
                setattr(converted, name, convert(value))
        return converted

    def _batch(self, z: Array) -> tuple[Namespace, Array, tuple[int, ...]]:
        """Return ``(xp, z as (S, d), batch shape)`` after checking the last axis."""
        xp = namespace(z=z, X=self.X)
        if z.ndim < 1 or z.shape[-1] != self.dim:
            raise DataError(
                f"z must have shape (..., {self.dim}) (weights in the last axis), "
                f"got shape {tuple(z.shape)}"
            )
        batch = tuple(z.shape[:-1])
        return xp, xp.reshape(z, (-1, self.dim)), batch

    def log_prior(self, z: Array) -> Array:
        """Return ``log N(z; 0, I/τ)`` for each weight vector in ``z`` (shape ``(..., d)``).

        Parameters
        ----------
        z : array, shape (..., d)
            Weight vectors.

        Returns
        -------
        array, shape (...)
        """
        xp = namespace(z=z)
        tau = self.prior_precision
        return -0.5 * tau * xp.sum(z * z, axis=-1) + 0.5 * self.dim * (math.log(tau) - _LOG_2PI)

    def expected_log_prior(self, mean: Array, cov: Array) -> Array:
        """Return ``E_q log N(z; 0, I/τ)`` for any ``q`` with this mean and covariance.

        The prior is quadratic in ``z``, so the expectation depends on ``q`` only through its
        first two moments: ``-½τ(tr Σ + |μ|²) + (d/2) log(τ/2π)``.

        Parameters
        ----------
        mean : array, shape (..., d)
            Mean of ``q``.
        cov : array, shape (..., d, d)
            Covariance of ``q``.

        Returns
        -------
        array, shape (...)
        """
        xp = namespace(mean=mean, cov=cov)
        tau = self.prior_precision
        trace = xp.sum(xp.linalg.diagonal(cov), axis=-1)
        return -0.5 * tau * (trace + xp.sum(mean * mean, axis=-1)) + 0.5 * self.dim * (
            math.log(tau) - _LOG_2PI
        )

    def log_likelihood(self, z: Array) -> Array:  # pragma: no cover - abstract
        """Return ``log p(y | X, z)`` for each weight vector."""
        raise NotImplementedError

    def log_joint(self, z: Array) -> Array:
        """Return ``log p(y | X, z) + log p(z)`` for each weight vector in ``z``.

        Parameters
        ----------
        z : array, shape (..., d)
            Weight vectors (e.g. ``S`` samples of shape ``(S, d)``), in the namespace and on
            the device of ``X``.

        Returns
        -------
        array, shape (...)
            One log density per weight vector.
        """
        return self.log_likelihood(z) + self.log_prior(z)


class BayesianLogisticRegression(_GaussianPriorModel):
    """Bayesian logistic regression ``y_n ~ Bernoulli(σ(x_nᵀz))``, ``z ~ N(0, I/τ)``.

    Parameters
    ----------
    X : array, shape (N, d)
        Design matrix (finite; an intercept is a column of ones the caller adds).
    y : array, shape (N,)
        Binary responses, 0 or 1 (any numeric dtype).
    prior_precision : float, optional
        Precision ``τ`` of the isotropic Gaussian prior.
    chunk_size : int, optional
        Number of observations whose logits are formed at once. By default chosen so that
        at most about two million logits (samples × observations) exist at a time, so that
        N = 10⁶ observations fit in memory.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.5], [1.0, -1.0], [1.0, 2.0]])
    >>> model = BayesianLogisticRegression(X, np.array([1, 0, 1]))
    >>> model.log_joint(np.zeros((4, 2))).shape
    (4,)
    """

    def __init__(
        self,
        X: Array,
        y: Array,
        prior_precision: float = 1.0,
        chunk_size: int | None = None,
    ) -> None:
        self.X = _check_design(X)
        y = _check_response(y, self.X)
        xp = namespace(self.X)
        binary = (y == 0) | (y == 1)
        if not bool(xp.all(binary)):
            index = _first_bad_index(xp, ~binary)
            raise DataError(f"y must contain only 0 and 1; y[{index}] = {float(y[index])!r}")
        self.y = y
        self.prior_precision = _check_positive("prior_precision", prior_precision)
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1
        ):
            raise DataError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
        self.chunk_size = None if chunk_size is None else int(chunk_size)
        # Signs ±1 turn both classes into log σ(s_n x_nᵀz); the transpose is taken once.
        self._signs = 2.0 * y - 1.0
        self._design_t = xp.permute_dims(self.X, (1, 0))

    def __repr__(self) -> str:
        return (
            f"BayesianLogisticRegression(N={self.n_obs}, d={self.dim}, "
            f"prior_precision={self.prior_precision})"
        )

    def _chunk(self, n_samples: int) -> int:
        if self.chunk_size is not None:
            return self.chunk_size
        return max(1, _CHUNK_ELEMENTS // max(1, n_samples))

    def log_likelihood(self, z: Array) -> Array:
        """Return ``Σ_n log σ(s_n x_nᵀz)`` (``s_n = 2y_n - 1``) per weight vector.

        Evaluated over the observations in chunks with the stable ``log_sigmoid``.

        Parameters
        ----------
        z : array, shape (..., d)
            Weight vectors.

        Returns
        -------
        array, shape (...)
        """
        xp, flat, batch = self._batch(z)
        chunk = self._chunk(int(flat.shape[0]))
        total = None
        for start in range(0, self.n_obs, chunk):
            stop = min(start + chunk, self.n_obs)
            logits = flat @ self._design_t[:, start:stop]
            part = xp.sum(special.log_sigmoid(logits * self._signs[start:stop]), axis=-1)
            total = part if total is None else total + part
        assert total is not None
        return xp.reshape(total, batch)


class BayesianLinearRegression(_GaussianPriorModel):
    """Bayesian linear regression ``y ~ N(Xz, σ²I)``, ``z ~ N(0, I/τ)`` (conjugate).

    Parameters
    ----------
    X : array, shape (N, d)
        Design matrix.
    y : array, shape (N,)
        Real responses.
    prior_precision : float, optional
        Precision ``τ`` of the isotropic Gaussian prior.
    noise_variance : float, optional
        Noise variance ``σ²``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> model = BayesianLinearRegression(X, np.array([1.0, 2.0, 3.0]))
    >>> mean, cov = model.posterior()
    >>> mean.shape, cov.shape
    ((2,), (2, 2))
    """

    def __init__(
        self,
        X: Array,
        y: Array,
        prior_precision: float = 1.0,
        noise_variance: float = 1.0,
    ) -> None:
        self.X = _check_design(X)
        self.y = _check_response(y, self.X)
        self.prior_precision = _check_positive("prior_precision", prior_precision)
        self.noise_variance = _check_positive("noise_variance", noise_variance)

    def __repr__(self) -> str:
        return (
            f"BayesianLinearRegression(N={self.n_obs}, d={self.dim}, "
            f"prior_precision={self.prior_precision}, noise_variance={self.noise_variance})"
        )

    def log_likelihood(self, z: Array) -> Array:
        """Return ``log N(y; Xz, σ²I)`` per weight vector.

        Parameters
        ----------
        z : array, shape (..., d)
            Weight vectors.

        Returns
        -------
        array, shape (...)
        """
        xp, flat, batch = self._batch(z)
        residual = self.y - flat @ xp.permute_dims(self.X, (1, 0))
        value = -0.5 * xp.sum(residual * residual, axis=-1) / self.noise_variance
        value = value - 0.5 * self.n_obs * (_LOG_2PI + math.log(self.noise_variance))
        return xp.reshape(value, batch)

    def expected_log_likelihood(self, mean: Array, cov: Array) -> Array:
        """Return ``E_q log N(y; Xz, σ²I)`` for ``q`` with this mean and covariance.

        ``-(|y - Xμ|² + tr(XᵀX Σ)) / (2σ²) - (N/2) log(2πσ²)``.

        Parameters
        ----------
        mean : array, shape (d,)
        cov : array, shape (d, d)

        Returns
        -------
        array
            A 0-d array.
        """
        xp = namespace(mean=mean, cov=cov, X=self.X)
        residual = self.y - self.X @ mean
        projected = self.X @ cov
        trace = xp.sum(projected * self.X)
        value = -0.5 * (xp.sum(residual * residual) + trace) / self.noise_variance
        return value - 0.5 * self.n_obs * (_LOG_2PI + math.log(self.noise_variance))

    def expected_log_joint(self, mean: Array, cov: Array) -> Array:
        """Return ``E_q log p(y, z)`` in closed form (the log joint is quadratic in ``z``).

        Parameters
        ----------
        mean : array, shape (d,)
        cov : array, shape (d, d)

        Returns
        -------
        array
            A 0-d array.
        """
        return self.expected_log_likelihood(mean, cov) + self.expected_log_prior(mean, cov)

    def _posterior_cholesky(self) -> tuple[Array, Array]:
        xp = namespace(self.X)
        precision = xp.permute_dims(
            self.X, (1, 0)
        ) @ self.X / self.noise_variance + self.prior_precision * xp.eye(
            self.dim, dtype=self.X.dtype, device=device(self.X)
        )
        chol = linalg.cholesky(precision)
        rhs = (xp.permute_dims(self.X, (1, 0)) @ self.y) / self.noise_variance
        mean = linalg.cho_solve(chol, rhs[:, None])[:, 0]
        return mean, chol

    def posterior(self) -> tuple[Array, Array]:
        """Return the exact posterior mean and covariance.

        Precision ``τI + XᵀX/σ²``, mean ``precision⁻¹ Xᵀy / σ²`` (Cholesky solves).

        Returns
        -------
        mean : array, shape (d,)
        cov : array, shape (d, d)
        """
        mean, chol = self._posterior_cholesky()
        return mean, linalg.cho_inverse(chol)

    def log_evidence(self) -> Array:
        """Return the exact log marginal likelihood ``log p(y)``.

        Uses ``log p(y) = log p(y, z) - log p(z | y)`` at the posterior mean, where the
        posterior log density is ``½ log|P| - (d/2) log 2π`` with ``P`` its precision.

        Returns
        -------
        array
            A 0-d array (equal to the ELBO of the exact posterior).
        """
        mean, chol = self._posterior_cholesky()
        log_posterior_at_mean = 0.5 * linalg.logdet_from_cholesky(chol) - 0.5 * self.dim * _LOG_2PI
        return self.log_joint(mean) - log_posterior_at_mean
