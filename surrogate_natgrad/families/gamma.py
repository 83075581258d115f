"""Gamma surrogate (shape α, rate β) as an exponential family (pure math, array API only).

``T(x) = (log x, x)``, natural parameters ``η = (α - 1, -β)``, mean parameters
``m = (ψ(α) - log β, α/β)``, log-partition ``A = lgamma(α) - α log β``. Mean → natural needs
a root solve for α; its derivative comes from the implicit function theorem
(:func:`surrogate_natgrad.autodiff.implicit_root`), never from unrolling the iterations.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from surrogate_natgrad import autodiff, special
from surrogate_natgrad._compat import (
    Array,
    array_library_name,
    asarray,
    dtype_tolerance,
    namespace,
    size,
)
from surrogate_natgrad._compat.control_flow import while_loop
from surrogate_natgrad.families._base import ExponentialFamily
from surrogate_natgrad.families.gaussian import _size_tuple

__all__ = ["Gamma", "GammaMean", "GammaNatural", "GammaStandard", "digamma_minus_log"]


class GammaNatural(NamedTuple):
    """Natural parameters ``(α - 1, -β)``, scalars with any batch shape.

    Attributes
    ----------
    shape_minus_one : array
        ``α - 1``.
    neg_rate : array
        ``-β``.
    """

    shape_minus_one: Array
    neg_rate: Array


class GammaMean(NamedTuple):
    """Mean parameters ``(E log x, E x) = (ψ(α) - log β, α/β)``.

    Attributes
    ----------
    mean_log : array
        ``E log x = ψ(α) - log β``.
    mean : array
        ``E x = α / β``.
    """

    mean_log: Array
    mean: Array


class GammaStandard(NamedTuple):
    """Standard parameters: shape α > 0 and rate β > 0.

    Attributes
    ----------
    shape : array
        The shape α.
    rate : array
        The rate β (inverse scale).
    """

    shape: Array
    rate: Array


# Above this shape, ψ(α) - log α comes from its asymptotic series: direct evaluation would
# subtract two nearly equal numbers (relative error ~ eps·α·log α).
_SERIES_FROM = 10.0
# ψ(α) - log α = -1/(2α) - Σ_k B_2k / (2k α^2k); coefficients of α^-2, α^-4, ..., α^-14.
_SERIES = (-1.0 / 12, 1.0 / 120, -1.0 / 252, 1.0 / 240, -1.0 / 132, 691.0 / 32760, -1.0 / 12)


def _series(alpha: Array) -> tuple[Array, Array]:
    """Asymptotic ``ψ(α) - log α`` and its derivative, accurate for α ≥ 10."""
    inverse = 1.0 / alpha
    inverse_sq = inverse * inverse
    value = -0.5 * inverse
    derivative = 0.5 * inverse_sq
    power = inverse_sq
    for k, coefficient in enumerate(_SERIES, start=1):
        value = value + coefficient * power
        # d/dα (c α^-2k) = -2k c α^-(2k+1)
        derivative = derivative - 2 * k * coefficient * power * inverse
        power = power * inverse_sq
    return value, derivative


def digamma_minus_log(alpha: Array) -> Array:
    """Return ``ψ(α) - log α`` accurately for every α > 0 (differentiable).

    Parameters
    ----------
    alpha : array
        Positive shapes.

    Returns
    -------
    array
        ``ψ(α) - log α``, from the asymptotic series for α ≥ 10 (no cancellation).
    """
    xp = namespace(alpha=alpha)
    large = alpha >= _SERIES_FROM
    # Evaluate each branch only where it is accurate and finite, so that the unused
    # branch of ``where`` cannot inject NaN or infinity into derivatives.
    series_value, _ = _series(xp.maximum(alpha, _SERIES_FROM))
    small_alpha = xp.minimum(alpha, _SERIES_FROM)
    direct = special.digamma(small_alpha) - xp.log(small_alpha)
    return xp.where(large, series_value, direct)


def _digamma_minus_log_derivative(alpha: Array) -> Array:
    xp = namespace(alpha=alpha)
    large = alpha >= _SERIES_FROM
    _, series_derivative = _series(xp.maximum(alpha, _SERIES_FROM))
    small_alpha = xp.minimum(alpha, _SERIES_FROM)
    direct = special.polygamma(1, small_alpha) - 1.0 / small_alpha
    return xp.where(large, series_derivative, direct)


def _shift_count(xp: Any, alpha: Array) -> int:
    """Recurrence steps that bring every finite α to ``_SERIES_FROM`` or beyond.

    NumPy arrays are read once (one scalar, free on the host) so that most calls skip
    needless steps; other libraries (traced values, devices, where reading back would
    synchronise) get the full count, harmless for elements already shifted far enough.
    """
    most = int(_SERIES_FROM)
    if array_library_name(xp) != "numpy":
        return most
    try:
        finite = xp.where(xp.isfinite(alpha), alpha, xp.full_like(alpha, _SERIES_FROM))
        smallest = float(xp.min(finite))
    except Exception:
        return most
    if not math.isfinite(smallest):
        return most
    return max(0, min(most, math.ceil(_SERIES_FROM - smallest)))


def _digamma_minus_log_terms(alpha: Array) -> tuple[Array, Array]:
    """Return ``ψ(α) - log α`` and ``α² (ψ'(α) - 1/α)`` with elementary operations only.

    The Newton solve of :func:`_solve_shape` needs both at every iteration; special-function
    calls (NumPy's ``polygamma`` goes through a slow Hurwitz zeta) would cost most of a fit.
    Below ``_SERIES_FROM`` the recurrences ``ψ(α) = ψ(α + 1) - 1/α`` and
    ``ψ'(α) = ψ'(α + 1) + 1/α²`` shift α to ``z ≥ _SERIES_FROM`` (all shifts at once, along
    a trailing axis), where the asymptotic series is accurate to a few ulps; where α needs
    no shift, ``log(z/α)`` is exactly 0 and the value has no cancellation. The derivative is
    returned scaled by α², which stays finite for every positive α (``ψ'(α) ~ 1/α²``
    overflows below 1e-154) and is the slope the Newton step in ``1/α`` needs.
    Differentiable (plain arithmetic and ``where``).
    """
    xp = namespace(alpha=alpha)
    count = _shift_count(xp, alpha)
    z = alpha
    reciprocal_sum: Array | float = 0.0  # Σ_k 1/(α + k) over the shifts
    ratio_square_sum: Array | float = 0.0  # Σ_k (α / (α + k))²
    if count:
        offsets = asarray([float(k) for k in range(count)], xp, dtype=alpha.dtype, like=alpha)
        column = xp.reshape(alpha, (*alpha.shape, 1))
        shifted = column + offsets
        below = shifted < _SERIES_FROM
        inverse = xp.where(below, 1.0 / shifted, xp.zeros_like(shifted))
        ratio = column * inverse
        reciprocal_sum = xp.sum(inverse, axis=-1)
        ratio_square_sum = xp.sum(ratio * ratio, axis=-1)
        z = alpha + xp.sum(xp.astype(below, alpha.dtype), axis=-1)
    return _shifted_terms(alpha, z, xp.log(z / alpha), reciprocal_sum, ratio_square_sum)


def _shifted_terms(
    alpha: Any, z: Any, log_ratio: Any, reciprocal_sum: Any, ratio_square_sum: Any
) -> tuple[Any, Any]:
    """``ψ(α) - log α`` and ``α² (ψ'(α) - 1/α)`` from the series at the shifted ``z ≥ 10``.

    Plain arithmetic, shared by the array and the Python-float versions; ``log_ratio`` is
    ``log(z/α)`` and the sums are those of the recurrences (0 without a shift).
    """
    inverse_z = 1.0 / z
    inverse_sq = inverse_z * inverse_z
    # Horner in 1/z²: ψ(z) - log z = -1/(2z) + Σ_k c_k z^(-2k) and
    # z² (ψ'(z) - 1/z) = 1/2 - (1/z) Σ_k 2k c_k z^(2 - 2k).
    value_poly: Any = _SERIES[-1]
    slope_poly: Any = 2 * len(_SERIES) * _SERIES[-1]
    for k in range(len(_SERIES) - 1, 0, -1):
        value_poly = _SERIES[k - 1] + inverse_sq * value_poly
        slope_poly = 2 * k * _SERIES[k - 1] + inverse_sq * slope_poly
    series_value = inverse_sq * value_poly - 0.5 * inverse_z
    scaled_series_slope = 0.5 - inverse_z * slope_poly
    value = series_value + log_ratio - reciprocal_sum
    # α² ψ'(α) - α = (α/z)² z² (ψ'(z) - 1/z) + α²/z - α + Σ_k (α/(α + k))²
    ratio_z = alpha * inverse_z
    scaled_slope = (
        ratio_z * ratio_z * scaled_series_slope - ratio_z * (z - alpha) + ratio_square_sum
    )
    return value, scaled_slope


def _solve_shape(mean_log: Array, mean: Array) -> Array:
    """Solve ``ψ(α) - log α = mean_log - log(mean)`` for α (untraced, vectorised).

    With ``s = log(mean) - mean_log > 0`` the root lies in ``[1/(2s), 1/s]`` (from
    ``1/(2α) < log α - ψ(α) < 1/α``). Start from Minka's approximation, then run Newton in
    ``u = 1/α`` (Minka's generalised Newton: ``log α - ψ(α)`` is nearly linear in ``1/α``
    for small and large α alike, so two or three steps reach full precision), falling
    back to geometric bisection whenever a step leaves the bracket. An element stops after
    a Newton step shorter than ``eps**0.75`` relative: Newton converges quadratically, so
    its remaining error is then far below ``eps``.

    The iteration is a :func:`~surrogate_natgrad._compat.control_flow.while_loop`: under
    ``jax.jit`` it compiles to one ``lax.while_loop`` instead of an unrolled Python loop.
    """
    xp = namespace(mean_log, mean)
    remembered = _remembered_shape(xp, mean_log, mean)
    if remembered is not None:
        return remembered
    if _memoisable(xp, mean_log, mean) and size(mean) == 1:
        # One NumPy shape (a single negative binomial): the same iteration on Python
        # floats, without the ~50 array operations per Newton step (a third of a fit).
        tolerance = dtype_tolerance(xp, mean.dtype, power=0.75)
        root = _solve_shape_scalar(
            float(xp.reshape(mean_log, ())), float(xp.reshape(mean, ())), tolerance
        )
        alpha = xp.reshape(xp.asarray(root, dtype=mean.dtype), mean.shape)
        _remember_shape(xp, mean_log, mean, alpha)
        return alpha
    gap = xp.log(mean) - mean_log
    # Outside the domain (gap <= 0) the bracket is empty: NaN, as for any invalid input,
    # rather than a clip with lower > upper (which some array libraries refuse).
    gap = xp.where(gap > 0, gap, xp.full_like(gap, math.nan))
    lower, upper = 0.5 / gap, 1.0 / gap
    alpha = (3.0 - gap + xp.sqrt((gap - 3.0) ** 2 + 24.0 * gap)) / (12.0 * gap)
    alpha = xp.clip(alpha, lower, upper)
    tolerance = dtype_tolerance(xp, alpha.dtype, power=0.75)

    def newton(state: tuple[Array, Array, Array, Array]) -> tuple[Array, Array, Array, Array]:
        alpha, lower, upper, active = state
        value, scaled_slope = _digamma_minus_log_terms(alpha)
        residual = value + gap  # increasing in α
        lower = xp.where(residual < 0, alpha, lower)
        upper = xp.where(residual > 0, alpha, upper)
        candidate = 1.0 / (1.0 / alpha + residual / scaled_slope)
        newton_ok = (candidate >= lower) & (candidate <= upper) & xp.isfinite(candidate)
        candidate = xp.where(newton_ok, candidate, xp.sqrt(lower * upper))
        # Only a short Newton step proves convergence (a short bisection step does not).
        done = newton_ok & (xp.abs(candidate - alpha) <= tolerance * alpha)
        alpha = xp.where(active, candidate, alpha)
        return alpha, lower, upper, active & ~done

    state = (alpha, lower, upper, xp.isfinite(alpha))
    alpha = while_loop(lambda s: xp.any(s[3]), newton, state, max_iter=60)[0]
    _remember_shape(xp, mean_log, mean, alpha)
    return alpha


def _digamma_minus_log_terms_scalar(alpha: float) -> tuple[float, float]:
    """:func:`_digamma_minus_log_terms` for one Python float (same recurrences and series)."""
    z = alpha
    reciprocal_sum = 0.0
    ratio_square_sum = 0.0
    for _ in range(int(_SERIES_FROM)):
        if not z < _SERIES_FROM:
            break
        reciprocal_sum += 1.0 / z
        ratio = alpha / z
        ratio_square_sum += ratio * ratio
        z += 1.0
    return _shifted_terms(alpha, z, math.log(z / alpha), reciprocal_sum, ratio_square_sum)


def _solve_shape_scalar(mean_log: float, mean: float, tolerance: float) -> float:
    """:func:`_solve_shape` for one pair of Python floats (NaN outside the domain)."""
    if not (mean > 0.0 and math.isfinite(mean) and math.isfinite(mean_log)):
        return math.nan
    gap = math.log(mean) - mean_log
    if not gap > 0.0:
        return math.nan
    lower, upper = 0.5 / gap, 1.0 / gap
    alpha = (3.0 - gap + math.sqrt((gap - 3.0) ** 2 + 24.0 * gap)) / (12.0 * gap)
    alpha = min(max(alpha, lower), upper)
    for _ in range(60):
        value, scaled_slope = _digamma_minus_log_terms_scalar(alpha)
        residual = value + gap  # increasing in α
        if residual < 0:
            lower = alpha
        elif residual > 0:
            upper = alpha
        candidate = 1.0 / (1.0 / alpha + residual / scaled_slope)
        newton_ok = lower <= candidate <= upper and math.isfinite(candidate)
        if not newton_ok:
            candidate = math.sqrt(lower * upper)
        done = newton_ok and abs(candidate - alpha) <= tolerance * alpha
        alpha = candidate
        if done:
            break
    return alpha


# The last small NumPy solve, as (mean_log, mean, shape), copies of the arrays. A fit asks
# for the same point several times per iteration (the SNGD direction, the line search's
# current point, the reported parameters); the answer is a pure function of the values,
# so a value comparison (a few microseconds) can stand in for a solve (a few hundred).
_LAST_SOLVE: tuple[Array, Array, Array] | None = None
_REMEMBER_AT_MOST = 16


def _memoisable(xp: Any, mean_log: Array, mean: Array) -> bool:
    # Only eager NumPy arrays: reading values back is free there, never a device sync.
    return (
        array_library_name(xp) == "numpy"
        and mean_log.shape == mean.shape
        and size(mean) <= _REMEMBER_AT_MOST
    )


def _remembered_shape(xp: Any, mean_log: Array, mean: Array) -> Array | None:
    last = _LAST_SOLVE  # one read: another thread may replace it meanwhile
    if last is None or not _memoisable(xp, mean_log, mean):
        return None
    last_mean_log, last_mean, shape = last
    if (
        last_mean.shape != mean.shape
        or last_mean.dtype != mean.dtype
        or last_mean_log.dtype != mean_log.dtype
        or not bool(xp.all(last_mean_log == mean_log))
        or not bool(xp.all(last_mean == mean))
    ):
        return None
    return xp.asarray(shape, copy=True)


def _remember_shape(xp: Any, mean_log: Array, mean: Array, shape: Array) -> None:
    global _LAST_SOLVE
    if _memoisable(xp, mean_log, mean):
        _LAST_SOLVE = (
            xp.asarray(mean_log, copy=True),
            xp.asarray(mean, copy=True),
            xp.asarray(shape, copy=True),
        )


def _shape_residual(alpha: Array, mean_log: Array, mean: Array) -> Array:
    xp = namespace(alpha, mean_log, mean)
    return digamma_minus_log(alpha) + xp.log(mean) - mean_log


def _shape_residual_partials(
    alpha: Array, mean_log: Array, mean: Array
) -> tuple[Array, Array, Array]:
    """``∂r/∂α = ψ'(α) - 1/α``, ``∂r/∂m₁ = -1``, ``∂r/∂m₂ = 1/m₂`` of :func:`_shape_residual`.

    In closed form, so that the implicit-function derivative needs no autodiff pass.
    """
    _, scaled_slope = _digamma_minus_log_terms(alpha)
    slope = scaled_slope / (alpha * alpha)
    return slope, -1.0 + 0.0 * slope, 1.0 / mean + 0.0 * slope


class Gamma(ExponentialFamily):
    """Gamma distribution with shape α and rate β, ``T(x) = (log x, x)``.

    Natural domain: ``α - 1 > -1`` and ``-β < 0``. Mean domain: ``m₂ > 0`` and
    ``m₁ < log m₂`` (Jensen's inequality).
    """

    natural_type = GammaNatural
    mean_type = GammaMean
    standard_type = GammaStandard
    event_ndim = 0
    dim = 1

    def __repr__(self) -> str:
        return "Gamma()"

    def natural_event_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Return ``((), ())``: both parameters are scalars."""
        return ((), ())

    def natural_to_standard(self, natural: GammaNatural) -> GammaStandard:
        """Return ``(α, β) = (η₁ + 1, -η₂)``."""
        return GammaStandard(natural.shape_minus_one + 1.0, -natural.neg_rate)

    def standard_to_natural(self, standard: GammaStandard) -> GammaNatural:
        """Return ``(α - 1, -β)``."""
        return GammaNatural(standard.shape - 1.0, -standard.rate)

    def natural_to_mean(self, natural: GammaNatural) -> GammaMean:
        """Return ``(ψ(α) - log β, α/β)``."""
        xp = namespace(*natural)
        shape, rate = self.natural_to_standard(natural)
        return GammaMean(special.digamma(shape) - xp.log(rate), shape / rate)

    def mean_to_standard(self, mean: GammaMean) -> GammaStandard:
        """Return ``(α, α/m₂)`` with α from a bracketed Newton solve (IFT derivative)."""
        shape = autodiff.implicit_root(
            _shape_residual,
            _solve_shape,
            mean.mean_log,
            mean.mean,
            residual_partials=_shape_residual_partials,
        )
        return GammaStandard(shape, shape / mean.mean)

    def mean_to_natural(self, mean: GammaMean) -> GammaNatural:
        """Return natural parameters from mean parameters (see :meth:`mean_to_standard`)."""
        return self.standard_to_natural(self.mean_to_standard(mean))

    def standard_to_mean(self, standard: GammaStandard) -> GammaMean:
        """Return ``(ψ(α) - log β, α/β)``."""
        return self.natural_to_mean(self.standard_to_natural(standard))

    def log_partition(self, natural: GammaNatural) -> Array:
        """Return ``lgamma(α) - α log β``."""
        xp = namespace(*natural)
        shape, rate = self.natural_to_standard(natural)
        return special.gammaln(shape) - shape * xp.log(rate)

    def sufficient_statistics(self, x: Array) -> GammaMean:
        """Return ``(log x, x)``."""
        xp = namespace(x=x)
        return GammaMean(xp.log(x), x)

    def log_prob(self, natural: GammaNatural, x: Array) -> Array:
        """Return ``(α - 1) log x - βx - lgamma(α) + α log β``."""
        xp = namespace(x, *natural)
        return (
            natural.shape_minus_one * xp.log(x) + natural.neg_rate * x - self.log_partition(natural)
        )

    def sample(self, natural: GammaNatural, rng: Any, size: int | tuple[int, ...] = ()) -> Array:
        """Draw samples of shape ``size + batch``."""
        xp = namespace(*natural)
        shape, rate = xp.broadcast_arrays(*self.natural_to_standard(natural))
        full = _size_tuple(size) + tuple(shape.shape)
        draws = rng.gamma(xp.broadcast_to(shape, full), size=full, dtype=shape.dtype)
        return draws / rate

    def entropy(self, natural: GammaNatural) -> Array:
        """Return ``α - log β + lgamma(α) + (1 - α) ψ(α)``."""
        xp = namespace(*natural)
        shape, rate = self.natural_to_standard(natural)
        return (
            shape
            - xp.log(rate)
            + special.gammaln(shape)
            + (1.0 - shape) * special.digamma(shape)
        )

    def fisher_vector_product(self, natural: GammaNatural, vector: Any) -> GammaNatural:
        """Return ``[[ψ'(α), 1/β], [1/β, α/β²]] v``."""
        shape, rate = self.natural_to_standard(natural)
        trigamma = special.polygamma(1, shape)
        return GammaNatural(
            trigamma * vector[0] + vector[1] / rate,
            vector[0] / rate + shape / (rate * rate) * vector[1],
        )

    def in_natural_domain(self, natural: GammaNatural) -> Array:
        """``α > 0`` and ``β > 0`` (finite)."""
        xp = namespace(*natural)
        a, b = natural
        return xp.isfinite(a) & xp.isfinite(b) & (a > -1.0) & (b < 0.0)

    def in_mean_domain(self, mean: GammaMean) -> Array:
        """``m₂ > 0`` and ``m₁ < log m₂`` (finite)."""
        xp = namespace(*mean)
        mean_log, mean_value = mean
        positive = xp.isfinite(mean_value) & (mean_value > 0)
        safe = xp.where(positive, mean_value, xp.ones_like(mean_value))
        return positive & xp.isfinite(mean_log) & (mean_log < xp.log(safe))

    def _domain_description(self, kind: str) -> str:
        if kind == "natural":
            return "need shape_minus_one > -1 and neg_rate < 0"
        return "need mean > 0 and mean_log < log(mean)"
