"""Minimal conditional exponential-family (MCEF) joints of Lin, Khan & Schmidt (2019).

The target is a marginal ``q(z) = ∫ q(w) q(z | w) dw``; the surrogate is the joint
``q(w, z)`` with a fixed mixing distribution ``q(w)`` and a conditional exponential family
``q(z | w) ∝ exp(<λ, φ(z, w)> - A_z(λ, w))``. Its "log-partition" is
``A(λ) = E_w[A_z(λ, w)]``, whose gradient is the mean parameter ``E[φ(z, w)]`` and whose
Hessian is the joint Fisher ``E_w[Cov(φ | w)]``.

* :class:`SkewNormalMCEF`: ``w ~ N(0, 1)``, ``z | w ~ N(μ + |w|β, V)``; statistics
  ``(z, zzᵀ, |w|z)``, natural parameters ``(V⁻¹μ, -½V⁻¹, V⁻¹β)``. The marginal of ``z`` is
  Azzalini's skew-normal.
* :class:`StudentTScaleMixture`: ``w ~ InvGamma(ν/2, ν/2)``, ``z | w ~ N(μ, wV)``; statistics
  ``(z/w, zzᵀ/w)``, natural parameters ``(V⁻¹μ, -½V⁻¹)``. The marginal is Student's t.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from surrogate_natgrad import special
from surrogate_natgrad._compat import Array, linalg, namespace
from surrogate_natgrad.errors import DataError, DomainError
from surrogate_natgrad.families._base import (
    ExponentialFamily,
    cho_solve_vector,
    constant,
    matvec,
    vecdot,
)
from surrogate_natgrad.families.gaussian import (
    Gaussian,
    GaussianNatural,
    _size_tuple,
)

__all__ = [
    "SkewNormalMCEF",
    "SkewNormalMCEFMean",
    "SkewNormalMCEFNatural",
    "SkewNormalMCEFStandard",
    "StudentTScaleMixture",
]

_LOG_2PI = math.log(2.0 * math.pi)
#: E|w| for w ~ N(0, 1).
_C = math.sqrt(2.0 / math.pi)


class SkewNormalMCEFNatural(NamedTuple):
    """Natural parameters ``(V⁻¹μ, -½V⁻¹, V⁻¹β)``.

    Attributes
    ----------
    precision_mean : array, shape (..., d)
        ``V⁻¹μ``.
    neg_half_precision : array, shape (..., d, d)
        ``-½V⁻¹``.
    precision_skew : array, shape (..., d)
        ``V⁻¹β``.
    """

    precision_mean: Array
    neg_half_precision: Array
    precision_skew: Array


class SkewNormalMCEFMean(NamedTuple):
    """Mean parameters ``(E z, E zzᵀ, E |w| z)``.

    Attributes
    ----------
    mean : array, shape (..., d)
        ``E z``.
    second_moment : array, shape (..., d, d)
        ``E zzᵀ``.
    abs_weighted_mean : array, shape (..., d)
        ``E |w| z``.
    """

    mean: Array
    second_moment: Array
    abs_weighted_mean: Array


class SkewNormalMCEFStandard(NamedTuple):
    """Standard parameters: location ``μ``, conditional covariance ``V``, skew vector ``β``.

    Attributes
    ----------
    location : array, shape (..., d)
        The location μ.
    cov : array, shape (..., d, d)
        The conditional covariance V.
    skew : array, shape (..., d)
        The skew vector β.
    """

    location: Array
    cov: Array
    skew: Array


class SkewNormalMCEF(ExponentialFamily):
    """Skew-normal MCEF joint over ``(w, z)``: ``w ~ N(0,1)``, ``z | w ~ N(μ + |w|β, V)``.

    Parameters
    ----------
    dim : int
        Dimension of ``z``.

    Notes
    -----
    With ``c = √(2/π)``: ``A = ½hᵀVh + c hᵀVb + ½bᵀVb - ½log|V⁻¹| + (d/2) log 2π``, mean
    parameters ``(μ + cβ, μμᵀ + ββᵀ + c(μβᵀ + βμᵀ) + V, cμ + β)``.
    """

    natural_type = SkewNormalMCEFNatural
    mean_type = SkewNormalMCEFMean
    standard_type = SkewNormalMCEFStandard
    event_ndim = 1

    def __init__(self, dim: int):
        if int(dim) != dim or dim < 1:
            raise DataError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)

    def __repr__(self) -> str:
        return f"SkewNormalMCEF(dim={self.dim})"

    def natural_event_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Return ``((d,), (d, d), (d,))``."""
        return ((self.dim,), (self.dim, self.dim), (self.dim,))

    def symmetrize(self, params: Any) -> Any:
        """Return ``params`` with a symmetric matrix block."""
        return type(params)(params[0], linalg.symmetrize(params[1]), params[2])

    def _chol(self, natural: Any) -> Array:
        return linalg.cholesky(-2.0 * linalg.symmetrize(natural.neg_half_precision))

    # ------------------------------------------------------------- conversions

    def natural_to_standard(self, natural: SkewNormalMCEFNatural) -> SkewNormalMCEFStandard:
        """Return ``(μ, V, β)`` by Cholesky solves with the precision ``V⁻¹``."""
        chol = self._chol(natural)
        return SkewNormalMCEFStandard(
            cho_solve_vector(chol, natural.precision_mean),
            linalg.cho_inverse(chol),
            cho_solve_vector(chol, natural.precision_skew),
        )

    def standard_to_natural(self, standard: SkewNormalMCEFStandard) -> SkewNormalMCEFNatural:
        """Return ``(V⁻¹μ, -½V⁻¹, V⁻¹β)``."""
        chol = linalg.cholesky(linalg.symmetrize(standard.cov))
        return SkewNormalMCEFNatural(
            cho_solve_vector(chol, standard.location),
            -0.5 * linalg.cho_inverse(chol),
            cho_solve_vector(chol, standard.skew),
        )

    def standard_to_mean(self, standard: SkewNormalMCEFStandard) -> SkewNormalMCEFMean:
        """Return ``(μ + cβ, μμᵀ + ββᵀ + c(μβᵀ + βμᵀ) + V, cμ + β)``."""
        mu, cov, beta = standard
        cross = linalg.matrix_outer(mu, beta)
        second = (
            linalg.matrix_outer(mu, mu)
            + linalg.matrix_outer(beta, beta)
            + _C * (cross + namespace(cross).linalg.matrix_transpose(cross))
            + linalg.symmetrize(cov)
        )
        return SkewNormalMCEFMean(mu + _C * beta, second, _C * mu + beta)

    def mean_to_standard(self, mean: SkewNormalMCEFMean) -> SkewNormalMCEFStandard:
        """Return standard parameters from mean parameters in closed form.

        ``μ = (m₁ - c m₃)/(1 - c²)``, ``β = m₃ - cμ``, ``V = m₂ - μμᵀ - ββᵀ - c(μβᵀ + βμᵀ)``.
        """
        mu = (mean.mean - _C * mean.abs_weighted_mean) / (1.0 - _C * _C)
        beta = mean.abs_weighted_mean - _C * mu
        cross = linalg.matrix_outer(mu, beta)
        cov = (
            linalg.symmetrize(mean.second_moment)
            - linalg.matrix_outer(mu, mu)
            - linalg.matrix_outer(beta, beta)
            - _C * (cross + namespace(cross).linalg.matrix_transpose(cross))
        )
        return SkewNormalMCEFStandard(mu, cov, beta)

    def natural_to_mean(self, natural: SkewNormalMCEFNatural) -> SkewNormalMCEFMean:
        """Return the mean parameters (closed form)."""
        return self.standard_to_mean(self.natural_to_standard(natural))

    def mean_to_natural(self, mean: SkewNormalMCEFMean) -> SkewNormalMCEFNatural:
        """Return the natural parameters (closed-form inverse)."""
        return self.standard_to_natural(self.mean_to_standard(mean))

    # ------------------------------------------------------------ densities

    def log_partition(self, natural: SkewNormalMCEFNatural) -> Array:
        """Return ``E_w[A_z] = ½hᵀVh + c hᵀVb + ½bᵀVb - ½log|V⁻¹| + (d/2) log 2π``."""
        chol = self._chol(natural)
        white_h = linalg.solve_triangular(chol, natural.precision_mean[..., None])[..., 0]
        white_b = linalg.solve_triangular(chol, natural.precision_skew[..., None])[..., 0]
        quadratic = (
            0.5 * vecdot(white_h, white_h)
            + _C * vecdot(white_h, white_b)
            + 0.5 * vecdot(white_b, white_b)
        )
        return quadratic - 0.5 * linalg.logdet_from_cholesky(chol) + 0.5 * self.dim * _LOG_2PI

    def sufficient_statistics_joint(self, w: Array, z: Array) -> SkewNormalMCEFMean:
        """Return ``φ(z, w) = (z, zzᵀ, |w| z)``; ``w`` has the batch shape of ``z``.

        Parameters
        ----------
        w : array
            The mixing variable, with the batch shape of ``z``.
        z : array, shape (..., d)
            The observed variable.

        Returns
        -------
        SkewNormalMCEFMean
            The joint statistics, in the layout of the mean parameters.
        """
        xp = namespace(w, z)
        return SkewNormalMCEFMean(z, linalg.matrix_outer(z, z), xp.abs(w)[..., None] * z)

    def log_joint(self, natural: SkewNormalMCEFNatural, w: Array, z: Array) -> Array:
        """Return ``log N(w; 0, 1) + log N(z; μ + |w|β, V)``.

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters of the family.
        w : array
            The mixing variable, with the batch shape of ``z``.
        z : array, shape (..., d)
            The observed variable.

        Returns
        -------
        array
            The joint log-densities.
        """
        xp = namespace(w, z, *natural)
        chol = self._chol(natural)
        mu = cho_solve_vector(chol, natural.precision_mean)
        beta = cho_solve_vector(chol, natural.precision_skew)
        residual = z - mu - xp.abs(w)[..., None] * beta
        projected = xp.sum(chol * residual[..., :, None], axis=-2)
        log_conditional = (
            -0.5 * vecdot(projected, projected)
            + 0.5 * linalg.logdet_from_cholesky(chol)
            - 0.5 * self.dim * _LOG_2PI
        )
        return log_conditional - 0.5 * w * w - 0.5 * _LOG_2PI

    def log_prob(self, natural: SkewNormalMCEFNatural, z: Array) -> Array:
        """Return the marginal (skew-normal) log density of ``z``.

        ``log 2 + log N(z; μ, V + ββᵀ) + log Φ(bᵀ(z - μ)/√(1 + s))`` with ``b = V⁻¹β``,
        ``s = βᵀV⁻¹β``, using the matrix determinant lemma and Sherman–Morrison.
        """
        xp = namespace(z, *natural)
        chol = self._chol(natural)
        mu = cho_solve_vector(chol, natural.precision_mean)
        white_b = linalg.solve_triangular(chol, natural.precision_skew[..., None])[..., 0]
        skew_norm = vecdot(white_b, white_b)  # s = βᵀV⁻¹β = bᵀVb
        residual = z - mu
        projected = xp.sum(chol * residual[..., :, None], axis=-2)
        along_skew = vecdot(natural.precision_skew, residual)
        quadratic = vecdot(projected, projected) - along_skew**2 / (1.0 + skew_norm)
        log_gauss = (
            -0.5 * quadratic
            + 0.5 * linalg.logdet_from_cholesky(chol)
            - 0.5 * xp.log1p(skew_norm)
            - 0.5 * self.dim * _LOG_2PI
        )
        return math.log(2.0) + log_gauss + special.log_ndtr(along_skew / xp.sqrt(1.0 + skew_norm))

    def sample_joint(
        self, natural: SkewNormalMCEFNatural, rng: Any, size: int | tuple[int, ...] = ()
    ) -> tuple[Array, Array]:
        """Draw ``(w, z)`` with shapes ``size + batch`` and ``size + batch + (d,)``.

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters of the family.
        rng : surrogate_natgrad.random.Generator
            A seeded generator in the parameters' namespace.
        size : int or tuple of int, optional
            Leading sample shape.

        Returns
        -------
        w : array
            Mixing draws ``w ~ N(0, 1)``.
        z : array
            Draws of ``z | w``.
        """
        xp = namespace(*natural)
        chol = self._chol(natural)
        mu = cho_solve_vector(chol, natural.precision_mean)
        beta = cho_solve_vector(chol, natural.precision_skew)
        mu, beta = xp.broadcast_arrays(mu, beta)
        shape = _size_tuple(size) + tuple(mu.shape)
        w = rng.normal(shape[:-1], dtype=mu.dtype)
        noise = rng.normal(shape, dtype=mu.dtype)
        correlated = linalg.solve_triangular(
            xp.linalg.matrix_transpose(chol), noise[..., None], lower=False
        )[..., 0]
        return w, mu + xp.abs(w)[..., None] * beta + correlated

    def sample(
        self, natural: SkewNormalMCEFNatural, rng: Any, size: int | tuple[int, ...] = ()
    ) -> Array:
        """Draw ``z`` from the skew-normal marginal (shape ``size + batch + (d,)``)."""
        return self.sample_joint(natural, rng, size)[1]

    def entropy(self, natural: SkewNormalMCEFNatural) -> Array:
        """Joint entropy ``H(w) + E_w H(z | w) = ½(d+1)(1 + log 2π) + ½ log|V|``."""
        chol = self._chol(natural)
        return 0.5 * (self.dim + 1) * (1.0 + _LOG_2PI) - 0.5 * linalg.logdet_from_cholesky(chol)

    def kl(self, natural_p: SkewNormalMCEFNatural, natural_q: SkewNormalMCEFNatural) -> Array:
        """Joint ``KL(p(w,z) || q(w,z)) = E_w KL(q_p(z|w) || q_q(z|w))`` (same ``q(w)``)."""
        chol_p, chol_q = self._chol(natural_p), self._chol(natural_q)
        xp = namespace(chol_p, chol_q)
        std_p = self.natural_to_standard(natural_p)
        std_q = self.natural_to_standard(natural_q)
        ratio = linalg.solve_triangular(chol_p, chol_q, lower=True)
        trace = xp.sum(ratio * ratio, axis=(-2, -1))
        shift = xp.sum(chol_q * (std_q.location - std_p.location)[..., :, None], axis=-2)
        skew = xp.sum(chol_q * (std_q.skew - std_p.skew)[..., :, None], axis=-2)
        # E_w |L_qᵀ(δμ + |w|δβ)|² with E|w| = c, E w² = 1
        quadratic = vecdot(shift, shift) + 2.0 * _C * vecdot(shift, skew) + vecdot(skew, skew)
        logdet = linalg.logdet_from_cholesky(chol_p) - linalg.logdet_from_cholesky(chol_q)
        return 0.5 * (trace + quadratic - self.dim + logdet)

    # ---------------------------------------------------------------- Fisher

    def fisher_vector_product(self, natural: SkewNormalMCEFNatural, vector: Any) -> Any:
        """Return ``E_w[Cov(φ | w)] v`` in closed form.

        Given ``w`` the statistics are Gaussian ones with mean ``μ + |w|β`` and direction
        ``(v_h + |w| v_b, v_J)``; averaging over ``w`` needs only ``E|w| = c`` and ``E w² = 1``.
        """
        mu, cov, beta = self.natural_to_standard(natural)
        sym = linalg.symmetrize(vector[1])
        base = matvec(cov, vector[0] + 2.0 * matvec(sym, mu))
        slope = matvec(cov, vector[2] + 2.0 * matvec(sym, beta))
        outer = (
            linalg.matrix_outer(mu, base)
            + _C * linalg.matrix_outer(mu, slope)
            + _C * linalg.matrix_outer(beta, base)
            + linalg.matrix_outer(beta, slope)
        )
        xp = namespace(outer)
        matrix = 2.0 * (cov @ sym @ cov) + outer + xp.linalg.matrix_transpose(outer)
        return SkewNormalMCEFNatural(base + _C * slope, matrix, _C * base + slope)

    # ---------------------------------------------------------------- domains

    def in_natural_domain(self, natural: SkewNormalMCEFNatural) -> Array:
        """``-2J`` positive definite, ``h`` and ``b`` finite."""
        xp = namespace(*natural)
        finite = xp.all(
            xp.isfinite(natural.precision_mean) & xp.isfinite(natural.precision_skew), axis=-1
        )
        return finite & linalg.is_positive_definite(-2.0 * natural.neg_half_precision)

    def in_mean_domain(self, mean: SkewNormalMCEFMean) -> Array:
        """The implied ``V`` is positive definite (and the vectors finite)."""
        xp = namespace(*mean)
        finite = xp.all(xp.isfinite(mean.mean) & xp.isfinite(mean.abs_weighted_mean), axis=-1)
        safe = SkewNormalMCEFMean(
            xp.where(xp.isfinite(mean.mean), mean.mean, xp.zeros_like(mean.mean)),
            mean.second_moment,
            xp.where(
                xp.isfinite(mean.abs_weighted_mean),
                mean.abs_weighted_mean,
                xp.zeros_like(mean.abs_weighted_mean),
            ),
        )
        return finite & linalg.is_positive_definite(self.mean_to_standard(safe).cov)

    def _domain_description(self, kind: str) -> str:
        if kind == "natural":
            return "neg_half_precision must be negative definite"
        return "the implied conditional covariance V must be positive definite"


class StudentTScaleMixture(Gaussian):
    """Student-t MCEF joint: ``w ~ InvGamma(ν/2, ν/2)``, ``z | w ~ N(μ, wV)``.

    Natural parameters are :class:`GaussianNatural` ``(V⁻¹μ, -½V⁻¹)`` for the statistics
    ``(z/w, zzᵀ/w)``; the mean parameters ``(μ, μμᵀ + V)`` and the Fisher are the Gaussian
    ones (``E[1/w] = 1``). The degrees of freedom ``ν`` are fixed per family object (an
    auxiliary parameter of SNGD; build a new family for a new ``ν``). Standard parameters
    are :class:`GaussianStandard` ``(μ, V)`` (location and scale matrix, not covariance).

    Parameters
    ----------
    dim : int
        Dimension of ``z``.
    df : float or array
        Degrees of freedom ``ν > 0`` (a 0-d array may be traced for derivatives in ``ν``).
    """

    def __init__(self, dim: int, df: Any):
        super().__init__(dim)
        if isinstance(df, int | float) and not df > 0:
            raise DomainError(f"df must be positive, got {df!r}")
        self.df = df

    def __repr__(self) -> str:
        return f"StudentTScaleMixture(dim={self.dim}, df={self.df!r})"

    def _half_df(self, like: Array) -> Array:
        if isinstance(self.df, int | float):
            return constant(0.5 * float(self.df), like)
        return 0.5 * self.df

    def log_partition(self, natural: GaussianNatural) -> Array:
        """Return ``E_w[A_z] = A_Gauss(h, J) + (d/2) E[log w]``, ``E log w = log(ν/2) - ψ(ν/2)``."""
        xp = namespace(*natural)
        half = self._half_df(natural.precision_mean)
        expected_log_w = xp.log(half) - special.digamma(half)
        return super().log_partition(natural) + 0.5 * self.dim * expected_log_w

    def log_joint(self, natural: GaussianNatural, w: Array, z: Array) -> Array:
        """Return ``log InvGamma(w; ν/2, ν/2) + log N(z; μ, wV)``.

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters of the family.
        w : array
            The mixing variable, with the batch shape of ``z``.
        z : array, shape (..., d)
            The observed variable.

        Returns
        -------
        array
            The joint log-densities.
        """
        xp = namespace(w, z, *natural)
        half = self._half_df(z)
        log_mixing = (
            half * xp.log(half)
            - special.gammaln(half)
            - (half + 1.0) * xp.log(w)
            - half / w
        )
        chol = self._precision_cholesky(natural)
        mu = cho_solve_vector(chol, natural.precision_mean)
        projected = xp.sum(chol * (z - mu)[..., :, None], axis=-2)
        log_conditional = (
            -0.5 * vecdot(projected, projected) / w
            + 0.5 * linalg.logdet_from_cholesky(chol)
            - 0.5 * self.dim * (_LOG_2PI + xp.log(w))
        )
        return log_mixing + log_conditional

    def log_prob(self, natural: GaussianNatural, x: Array) -> Array:
        """Return the marginal multivariate Student-t log density of ``x``."""
        xp = namespace(x, *natural)
        half = self._half_df(x)
        df = 2.0 * half
        chol = self._precision_cholesky(natural)
        mu = cho_solve_vector(chol, natural.precision_mean)
        projected = xp.sum(chol * (x - mu)[..., :, None], axis=-2)
        mahalanobis = vecdot(projected, projected)
        return (
            special.gammaln(half + 0.5 * self.dim)
            - special.gammaln(half)
            - 0.5 * self.dim * (xp.log(df) + math.log(math.pi))
            + 0.5 * linalg.logdet_from_cholesky(chol)
            - (half + 0.5 * self.dim) * xp.log1p(mahalanobis / df)
        )

    def sample_joint(
        self, natural: GaussianNatural, rng: Any, size: int | tuple[int, ...] = ()
    ) -> tuple[Array, Array]:
        """Draw ``(w, z)``: ``w = (ν/2)/G`` with ``G ~ Gamma(ν/2, 1)``, ``z = μ + √w L⁻ᵀε``.

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters of the family.
        rng : surrogate_natgrad.random.Generator
            A seeded generator in the parameters' namespace.
        size : int or tuple of int, optional
            Leading sample shape.

        Returns
        -------
        w : array
            Mixing draws (inverse-gamma scales).
        z : array
            Draws of ``z | w``.
        """
        xp = namespace(*natural)
        gaussian = Gaussian.sample(self, natural, rng, size)
        chol = self._precision_cholesky(natural)
        mu = cho_solve_vector(chol, natural.precision_mean)
        half = self._half_df(mu)
        shape = tuple(gaussian.shape[:-1])
        draws = rng.gamma(xp.broadcast_to(half, shape), size=shape, dtype=mu.dtype)
        w = half / draws
        return w, mu + xp.sqrt(w)[..., None] * (gaussian - mu)

    def sample(self, natural: GaussianNatural, rng: Any, size: int | tuple[int, ...] = ()) -> Array:
        """Draw ``z`` from the Student-t marginal."""
        return self.sample_joint(natural, rng, size)[1]

    def entropy(self, natural: GaussianNatural) -> Array:
        """Joint entropy ``H(w) + E_w H(z | w)``."""
        xp = namespace(*natural)
        half = self._half_df(natural.precision_mean)
        expected_log_w = xp.log(half) - special.digamma(half)
        mixing = half + xp.log(half) + special.gammaln(half) - (1.0 + half) * special.digamma(half)
        return mixing + super().entropy(natural) + 0.5 * self.dim * expected_log_w

    # KL between joints with the same ν: E_w KL(N(μ_p, wV_p) || N(μ_q, wV_q)) equals the
    # Gaussian KL because E[1/w] = 1, so Gaussian.kl is inherited unchanged.
