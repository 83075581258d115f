"""Gaussian surrogates: full-covariance and diagonal (pure math, array API only).

Full covariance uses full symmetric (non-minimal) coordinates: natural parameters
``(h, J) = (Σ⁻¹μ, -½Σ⁻¹)`` and mean parameters ``(μ, Σ + μμᵀ)`` with all ``d²`` matrix
entries. The log-partition depends on ``J`` only through its symmetric part, so its gradient
(and any gradient taken through it) is symmetric. Every solve uses a Cholesky factor.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from surrogate_natgrad._compat import Array, asarray, linalg, namespace
from surrogate_natgrad.errors import DataError
from surrogate_natgrad.families._base import (
    ExponentialFamily,
    cho_solve_vector,
    matvec,
    vecdot,
)

__all__ = [
    "DiagonalGaussian",
    "DiagonalGaussianMean",
    "DiagonalGaussianNatural",
    "DiagonalGaussianStandard",
    "Gaussian",
    "GaussianMean",
    "GaussianNatural",
    "GaussianStandard",
]

_LOG_2PI = math.log(2.0 * math.pi)


class GaussianNatural(NamedTuple):
    """Natural parameters ``(Σ⁻¹μ, -½Σ⁻¹)`` of a Gaussian, shapes ``(..., d)``, ``(..., d, d)``.

    Attributes
    ----------
    precision_mean : array, shape (..., d)
        ``Σ⁻¹μ``.
    neg_half_precision : array, shape (..., d, d)
        ``-½Σ⁻¹`` (symmetric).
    """

    precision_mean: Array
    neg_half_precision: Array


class GaussianMean(NamedTuple):
    """Mean parameters ``(E x, E xxᵀ) = (μ, Σ + μμᵀ)`` of a Gaussian.

    Attributes
    ----------
    mean : array, shape (..., d)
        ``E x = μ``.
    second_moment : array, shape (..., d, d)
        ``E xxᵀ = Σ + μμᵀ``.
    """

    mean: Array
    second_moment: Array


class GaussianStandard(NamedTuple):
    """Standard parameters (mean vector, covariance matrix) of a Gaussian.

    Attributes
    ----------
    mean : array, shape (..., d)
        The mean μ.
    cov : array, shape (..., d, d)
        The covariance Σ (symmetric positive definite).
    """

    mean: Array
    cov: Array


def _upper_indices(dim: int) -> tuple[list[int], list[int]]:
    """Flat indices of the upper triangle (row-major) and, per entry, its upper-triangle slot."""
    upper = [i * dim + j for i in range(dim) for j in range(i, dim)]
    pairs = [(row, col) for row in range(dim) for col in range(row, dim)]
    slot = {pair: position for position, pair in enumerate(pairs)}
    full = [slot[(min(i, j), max(i, j))] for i in range(dim) for j in range(dim)]
    return upper, full


class Gaussian(ExponentialFamily):
    """Multivariate Gaussian ``N(μ, Σ)`` with full covariance, ``T(x) = (x, xxᵀ)``.

    Parameters
    ----------
    dim : int
        Dimension ``d`` of the random vector.

    Notes
    -----
    ``log_partition = ½ hᵀ(-2J)⁻¹h - ½ log|-2J| + (d/2) log 2π`` with ``J`` symmetrised.
    Natural domain: ``-2J`` positive definite. Mean domain: ``m₂ - μμᵀ`` positive definite.
    """

    natural_type = GaussianNatural
    mean_type = GaussianMean
    standard_type = GaussianStandard
    event_ndim = 1

    def __init__(self, dim: int):
        if int(dim) != dim or dim < 1:
            raise DataError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"

    def natural_event_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Return ``((d,), (d, d))``."""
        return ((self.dim,), (self.dim, self.dim))

    # ----------------------------------------------------------------- helpers

    def _precision_cholesky(self, natural: Any) -> Array:
        """Lower Cholesky factor of the precision ``-2 sym(J)``."""
        return linalg.cholesky(-2.0 * linalg.symmetrize(natural.neg_half_precision))

    def _moments(self, natural: Any) -> tuple[Array, Array, Array]:
        """Return ``(μ, Σ, chol(Σ⁻¹))``; the covariance is needed explicitly here."""
        chol = self._precision_cholesky(natural)
        mean = cho_solve_vector(chol, natural.precision_mean)
        return mean, linalg.cho_inverse(chol), chol

    # ------------------------------------------------------------- conversions

    def symmetrize(self, params: Any) -> Any:
        """Return ``params`` with its matrix block replaced by its symmetric part."""
        return type(params)(params[0], linalg.symmetrize(params[1]))

    def natural_to_mean(self, natural: GaussianNatural) -> GaussianMean:
        """Return ``(μ, Σ + μμᵀ)`` from ``(h, J)``."""
        mean, cov, _ = self._moments(natural)
        return GaussianMean(mean, cov + linalg.matrix_outer(mean, mean))

    def mean_to_natural(self, mean: GaussianMean) -> GaussianNatural:
        """Return ``(Σ⁻¹μ, -½Σ⁻¹)`` from ``(μ, m₂)`` with ``Σ = sym(m₂) - μμᵀ``."""
        cov = linalg.symmetrize(mean.second_moment) - linalg.matrix_outer(mean.mean, mean.mean)
        return self.standard_to_natural(GaussianStandard(mean.mean, cov))

    def standard_to_natural(self, standard: GaussianStandard) -> GaussianNatural:
        """Return natural parameters from ``(μ, Σ)`` (Cholesky of ``Σ``)."""
        chol = linalg.cholesky(linalg.symmetrize(standard.cov))
        precision = linalg.cho_inverse(chol)
        return GaussianNatural(cho_solve_vector(chol, standard.mean), -0.5 * precision)

    def natural_to_standard(self, natural: GaussianNatural) -> GaussianStandard:
        """Return ``(μ, Σ)``."""
        mean, cov, _ = self._moments(natural)
        return GaussianStandard(mean, cov)

    def mean_to_standard(self, mean: GaussianMean) -> GaussianStandard:
        """Return ``(μ, m₂ - μμᵀ)`` (no factorisation needed)."""
        cov = linalg.symmetrize(mean.second_moment) - linalg.matrix_outer(mean.mean, mean.mean)
        return GaussianStandard(mean.mean, cov)

    has_natural_cotangent = True

    def natural_cotangent(
        self, standard: GaussianStandard, standard_cotangent: GaussianStandard
    ) -> GaussianNatural:
        """Return ``(Σg, 2Σ sym(G)Σ + (Σg)μᵀ + μ(Σg)ᵀ)`` from ``(g, G) = (∂/∂μ, ∂/∂Σ)``.

        With ``Σ = (-2 sym J)⁻¹`` and ``μ = Σh``: ``dΣ = 2Σ sym(dJ) Σ`` and
        ``dμ = dΣ h + Σ dh``, so ``∂/∂h = Σg`` and ``∂/∂J = 2 sym(Σ(G + ghᵀ)Σ)``, where
        ``Σghᵀ Σ = (Σg)μᵀ``. Two matrix products, no factorisation; the result is symmetric,
        as a gradient taken through :meth:`natural_to_standard` (which reads ``sym J``) is.

        Parameters
        ----------
        standard : GaussianStandard
            ``(μ, Σ)``, possibly with leading batch axes.
        standard_cotangent : GaussianStandard
            ``(g, G)``: the gradient of a scalar with respect to ``μ`` and ``Σ``.

        Returns
        -------
        GaussianNatural
            The gradient of the same scalar with respect to ``(h, J)``.
        """
        cov = standard.cov
        grad_mean, grad_cov = standard_cotangent
        cov_grad_mean = matvec(cov, grad_mean)
        sandwich = cov @ linalg.symmetrize(grad_cov) @ cov
        cross = linalg.matrix_outer(cov_grad_mean, standard.mean)
        cross = cross + linalg.matrix_outer(standard.mean, cov_grad_mean)
        return GaussianNatural(cov_grad_mean, 2.0 * linalg.symmetrize(sandwich) + cross)

    def standard_to_mean(self, standard: GaussianStandard) -> GaussianMean:
        """Return ``(μ, Σ + μμᵀ)``."""
        second = linalg.symmetrize(standard.cov) + linalg.matrix_outer(
            standard.mean, standard.mean
        )
        return GaussianMean(standard.mean, second)

    def to_minimal(self, params: Any) -> tuple[Array, Array]:
        """Return ``(vector, upper)``: the matrix block's upper triangle, row by row.

        ``upper`` has shape ``(..., d(d+1)/2)``; :meth:`from_minimal` rebuilds the symmetric
        matrix. (Paired with statistics, an off-diagonal natural entry counts twice.)

        Parameters
        ----------
        params : GaussianNatural or GaussianMean
            Natural or mean parameters.

        Returns
        -------
        vector : array, shape (..., d)
            The vector block.
        upper : array, shape (..., d(d+1)/2)
            The upper triangle of the matrix block, row by row.
        """
        xp = namespace(*params)
        upper, _ = _upper_indices(self.dim)
        matrix = linalg.symmetrize(params[1])
        flat = xp.reshape(matrix, (*matrix.shape[:-2], self.dim * self.dim))
        index = asarray(upper, xp, dtype=xp.int64, like=params[0])
        return params[0], xp.take(flat, index, axis=-1)

    def from_minimal(self, vector: Array, upper: Array, kind: str = "natural") -> Any:
        """Invert :meth:`to_minimal`, returning natural (or ``kind="mean"``) parameters.

        Parameters
        ----------
        vector : array, shape (..., d)
            The vector block.
        upper : array, shape (..., d(d+1)/2)
            The upper triangle of the matrix block, row by row.
        kind : {"natural", "mean"}, optional
            Which parameters to build.

        Returns
        -------
        GaussianNatural or GaussianMean
            The parameters, with a symmetric matrix block.
        """
        xp = namespace(vector, upper)
        _, full = _upper_indices(self.dim)
        index = asarray(full, xp, dtype=xp.int64, like=vector)
        matrix = xp.take(upper, index, axis=-1)
        matrix = xp.reshape(matrix, (*upper.shape[:-1], self.dim, self.dim))
        return self.from_leaves([vector, matrix], kind)

    # ------------------------------------------------------------ densities

    def log_partition(self, natural: GaussianNatural) -> Array:
        """Return ``½ hᵀ(-2J)⁻¹h - ½ log|-2J| + (d/2) log 2π``."""
        chol = self._precision_cholesky(natural)
        whitened = linalg.solve_triangular(chol, natural.precision_mean[..., None])[..., 0]
        quadratic = vecdot(whitened, whitened)
        return 0.5 * quadratic - 0.5 * linalg.logdet_from_cholesky(chol) + 0.5 * self.dim * _LOG_2PI

    def sufficient_statistics(self, x: Array) -> GaussianMean:
        """Return ``(x, xxᵀ)``."""
        return GaussianMean(x, linalg.matrix_outer(x, x))

    def log_prob(self, natural: GaussianNatural, x: Array) -> Array:
        """Return ``log N(x; μ, Σ)`` (centred form, stable far from the mean)."""
        chol = self._precision_cholesky(natural)
        mean = cho_solve_vector(chol, natural.precision_mean)
        xp = namespace(x=x)
        residual = x - mean
        # |Lᵀ r|² = rᵀ Σ⁻¹ r
        projected = xp.sum(chol * residual[..., :, None], axis=-2)
        return (
            -0.5 * vecdot(projected, projected)
            + 0.5 * linalg.logdet_from_cholesky(chol)
            - 0.5 * self.dim * _LOG_2PI
        )

    def sample(self, natural: GaussianNatural, rng: Any, size: int | tuple[int, ...] = ()) -> Array:
        """Draw samples of shape ``size + batch + (d,)``.

        ``x = μ + L⁻ᵀε`` with ``L`` the Cholesky factor of the precision, ``ε`` standard normal.
        """
        chol = self._precision_cholesky(natural)
        mean = cho_solve_vector(chol, natural.precision_mean)
        xp = namespace(mean)
        shape = _size_tuple(size) + tuple(mean.shape)
        noise = rng.normal(shape, dtype=mean.dtype)
        correlated = linalg.solve_triangular(
            xp.linalg.matrix_transpose(chol), noise[..., None], lower=False
        )[..., 0]
        return mean + correlated

    def entropy(self, natural: GaussianNatural) -> Array:
        """Return ``½ d (1 + log 2π) + ½ log|Σ|``."""
        chol = self._precision_cholesky(natural)
        return 0.5 * self.dim * (1.0 + _LOG_2PI) - 0.5 * linalg.logdet_from_cholesky(chol)

    def kl(self, natural_p: GaussianNatural, natural_q: GaussianNatural) -> Array:
        """Return ``KL(N_p || N_q)`` with Cholesky factors of both precisions."""
        chol_p = self._precision_cholesky(natural_p)
        chol_q = self._precision_cholesky(natural_q)
        xp = namespace(chol_p, chol_q)
        mean_p = cho_solve_vector(chol_p, natural_p.precision_mean)
        mean_q = cho_solve_vector(chol_q, natural_q.precision_mean)
        # tr(Σ_q⁻¹ Σ_p) = ||L_p⁻¹ L_q||_F² with Σ⁻¹ = L Lᵀ
        ratio = linalg.solve_triangular(chol_p, chol_q, lower=True)
        trace = xp.sum(ratio * ratio, axis=(-2, -1))
        difference = mean_q - mean_p
        projected = xp.sum(chol_q * difference[..., :, None], axis=-2)
        logdet = linalg.logdet_from_cholesky(chol_p) - linalg.logdet_from_cholesky(chol_q)
        return 0.5 * (trace + vecdot(projected, projected) - self.dim + logdet)

    # ---------------------------------------------------------------- Fisher

    def fisher_vector_product(self, natural: GaussianNatural, vector: Any) -> GaussianNatural:
        """Return ``Cov(T) v`` without forming the Fisher.

        With ``S = sym(v_J)`` and ``w = Σ(v_h + 2Sμ)``: ``(w, 2ΣSΣ + μwᵀ + wμᵀ)``.
        """
        mean, cov, _ = self._moments(natural)
        sym = linalg.symmetrize(vector[1])
        weighted = matvec(cov, vector[0] + 2.0 * matvec(sym, mean))
        matrix = (
            2.0 * (cov @ sym @ cov)
            + linalg.matrix_outer(mean, weighted)
            + linalg.matrix_outer(weighted, mean)
        )
        return GaussianNatural(weighted, matrix)

    # ---------------------------------------------------------------- domains

    def in_natural_domain(self, natural: GaussianNatural) -> Array:
        """``-2J`` positive definite and ``h`` finite."""
        xp = namespace(*natural)
        finite = xp.all(xp.isfinite(natural.precision_mean), axis=-1)
        return finite & linalg.is_positive_definite(-2.0 * natural.neg_half_precision)

    def in_mean_domain(self, mean: GaussianMean) -> Array:
        """``m₂ - μμᵀ`` positive definite and ``μ`` finite."""
        xp = namespace(*mean)
        mu = mean.mean
        finite = xp.all(xp.isfinite(mu), axis=-1)
        cov = mean.second_moment - linalg.matrix_outer(mu, mu)
        return finite & linalg.is_positive_definite(cov)

    def _domain_description(self, kind: str) -> str:
        if kind == "natural":
            return "neg_half_precision must be negative definite"
        return "second_moment - mean meanᵀ must be positive definite"


class DiagonalGaussianNatural(NamedTuple):
    """Natural parameters ``(μ/σ², -1/(2σ²))`` of independent Gaussians, each ``(..., d)``.

    Attributes
    ----------
    precision_mean : array, shape (..., d)
        ``μ / σ²``.
    neg_half_precision : array, shape (..., d)
        ``-1 / (2σ²)``.
    """

    precision_mean: Array
    neg_half_precision: Array


class DiagonalGaussianMean(NamedTuple):
    """Mean parameters ``(μ, σ² + μ²)``.

    Attributes
    ----------
    mean : array, shape (..., d)
        ``E x = μ``.
    second_moment : array, shape (..., d)
        ``E x² = σ² + μ²``.
    """

    mean: Array
    second_moment: Array


class DiagonalGaussianStandard(NamedTuple):
    """Standard parameters (means, variances).

    Attributes
    ----------
    mean : array, shape (..., d)
        The means μ.
    var : array, shape (..., d)
        The variances σ² (positive).
    """

    mean: Array
    var: Array


class DiagonalGaussian(ExponentialFamily):
    """Gaussian with diagonal covariance, ``T(x) = (x, x²)`` elementwise.

    Parameters
    ----------
    dim : int
        Dimension ``d``.
    """

    natural_type = DiagonalGaussianNatural
    mean_type = DiagonalGaussianMean
    standard_type = DiagonalGaussianStandard
    event_ndim = 1

    def __init__(self, dim: int):
        if int(dim) != dim or dim < 1:
            raise DataError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"

    def natural_event_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Return ``((d,), (d,))``."""
        return ((self.dim,), (self.dim,))

    def natural_to_standard(self, natural: DiagonalGaussianNatural) -> DiagonalGaussianStandard:
        """Return ``(μ, σ²)``."""
        var = -0.5 / natural.neg_half_precision
        return DiagonalGaussianStandard(natural.precision_mean * var, var)

    def standard_to_natural(self, standard: DiagonalGaussianStandard) -> DiagonalGaussianNatural:
        """Return ``(μ/σ², -1/(2σ²))``."""
        return DiagonalGaussianNatural(standard.mean / standard.var, -0.5 / standard.var)

    def natural_to_mean(self, natural: DiagonalGaussianNatural) -> DiagonalGaussianMean:
        """Return ``(μ, σ² + μ²)``."""
        mean, var = self.natural_to_standard(natural)
        return DiagonalGaussianMean(mean, var + mean * mean)

    def mean_to_standard(self, mean: DiagonalGaussianMean) -> DiagonalGaussianStandard:
        """Return ``(μ, m₂ - μ²)``."""
        return DiagonalGaussianStandard(mean.mean, mean.second_moment - mean.mean * mean.mean)

    def standard_to_mean(self, standard: DiagonalGaussianStandard) -> DiagonalGaussianMean:
        """Return ``(μ, σ² + μ²)``."""
        return DiagonalGaussianMean(standard.mean, standard.var + standard.mean * standard.mean)

    def mean_to_natural(self, mean: DiagonalGaussianMean) -> DiagonalGaussianNatural:
        """Return natural parameters from ``(μ, m₂)``."""
        return self.standard_to_natural(self.mean_to_standard(mean))

    def log_partition(self, natural: DiagonalGaussianNatural) -> Array:
        """Return ``Σ [-h²/(4j) - ½ log(-2j)] + (d/2) log 2π``."""
        xp = namespace(*natural)
        h, j = natural
        terms = -(h * h) / (4.0 * j) - 0.5 * xp.log(-2.0 * j)
        return xp.sum(terms, axis=-1) + 0.5 * self.dim * _LOG_2PI

    def sufficient_statistics(self, x: Array) -> DiagonalGaussianMean:
        """Return ``(x, x²)``."""
        return DiagonalGaussianMean(x, x * x)

    def log_prob(self, natural: DiagonalGaussianNatural, x: Array) -> Array:
        """Return ``Σ log N(x_i; μ_i, σ_i²)`` (centred form)."""
        xp = namespace(x, *natural)
        mean, var = self.natural_to_standard(natural)
        terms = -0.5 * (x - mean) ** 2 / var - 0.5 * xp.log(var) - 0.5 * _LOG_2PI
        return xp.sum(terms, axis=-1)

    def sample(
        self, natural: DiagonalGaussianNatural, rng: Any, size: int | tuple[int, ...] = ()
    ) -> Array:
        """Draw samples of shape ``size + batch + (d,)``."""
        xp = namespace(*natural)
        mean, var = self.natural_to_standard(natural)
        mean, var = xp.broadcast_arrays(mean, var)
        noise = rng.normal(_size_tuple(size) + tuple(mean.shape), dtype=mean.dtype)
        return mean + xp.sqrt(var) * noise

    def entropy(self, natural: DiagonalGaussianNatural) -> Array:
        """Return ``Σ ½ log(2πe σ²)``."""
        xp = namespace(*natural)
        _, var = self.natural_to_standard(natural)
        return xp.sum(0.5 * (1.0 + _LOG_2PI + xp.log(var)), axis=-1)

    def fisher_vector_product(
        self, natural: DiagonalGaussianNatural, vector: Any
    ) -> DiagonalGaussianNatural:
        """Return ``Cov(T) v`` with ``Cov(x, x²) = 2μσ²``, ``Var(x²) = 2σ⁴ + 4μ²σ²``."""
        mean, var = self.natural_to_standard(natural)
        cross = 2.0 * mean * var
        return DiagonalGaussianNatural(
            var * vector[0] + cross * vector[1],
            cross * vector[0] + (2.0 * var * var + 4.0 * mean * mean * var) * vector[1],
        )

    def in_natural_domain(self, natural: DiagonalGaussianNatural) -> Array:
        """All ``neg_half_precision < 0`` and all entries finite."""
        xp = namespace(*natural)
        h, j = natural
        return xp.all(xp.isfinite(h) & xp.isfinite(j) & (j < 0), axis=-1)

    def in_mean_domain(self, mean: DiagonalGaussianMean) -> Array:
        """All ``m₂ > μ²`` and all entries finite."""
        xp = namespace(*mean)
        mu, second = mean
        return xp.all(xp.isfinite(mu) & xp.isfinite(second) & (second > mu * mu), axis=-1)

    def _domain_description(self, kind: str) -> str:
        if kind == "natural":
            return "neg_half_precision must be negative"
        return "second_moment must exceed mean²"


def _size_tuple(size: int | tuple[int, ...] | None) -> tuple[int, ...]:
    if size is None:
        return ()
    if isinstance(size, int):
        return (size,)
    return tuple(int(n) for n in size)

