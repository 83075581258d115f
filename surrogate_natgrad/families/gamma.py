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
from surrogate_natgrad._compat import Array, dtype_tolerance, namespace
from surrogate_natgrad.families._base import ExponentialFamily, all_true
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


def _solve_shape(mean_log: Array, mean: Array) -> Array:
    """Solve ``ψ(α) - log α = mean_log - log(mean)`` for α (untraced, vectorised).

    With ``s = log(mean) - mean_log > 0`` the root lies in ``[1/(2s), 1/s]`` (from
    ``1/(2α) < log α - ψ(α) < 1/α``). Start from Minka's approximation, then run Newton
    with g' = ψ'(α) - 1/α, falling back to geometric bisection whenever a step leaves the
    bracket. Stops when the relative step falls below a tolerance derived from the dtype.
    """
    xp = namespace(mean_log, mean)
    gap = xp.log(mean) - mean_log
    # Outside the domain (gap <= 0) the bracket is empty: NaN, as for any invalid input,
    # rather than a clip with lower > upper (which some array libraries refuse).
    gap = xp.where(gap > 0, gap, xp.full_like(gap, math.nan))
    lower, upper = 0.5 / gap, 1.0 / gap
    alpha = (3.0 - gap + xp.sqrt((gap - 3.0) ** 2 + 24.0 * gap)) / (12.0 * gap)
    alpha = xp.clip(alpha, lower, upper)
    tolerance = dtype_tolerance(xp, alpha.dtype, power=1.0, factor=4.0)
    active = xp.isfinite(alpha)
    for _ in range(60):
        residual = digamma_minus_log(alpha) + gap
        slope = _digamma_minus_log_derivative(alpha)
        lower = xp.where(residual < 0, alpha, lower)
        upper = xp.where(residual > 0, alpha, upper)
        candidate = alpha - residual / slope
        outside = ~((candidate > lower) & (candidate < upper)) | ~xp.isfinite(candidate)
        candidate = xp.where(outside, xp.sqrt(lower * upper), candidate)
        step = xp.abs(candidate - alpha)
        candidate = xp.where(residual == 0, alpha, candidate)
        alpha = xp.where(active, candidate, alpha)
        active = active & (step > tolerance * alpha)
        if all_true(~active):
            break
    return alpha


def _shape_residual(alpha: Array, mean_log: Array, mean: Array) -> Array:
    xp = namespace(alpha, mean_log, mean)
    return digamma_minus_log(alpha) + xp.log(mean) - mean_log


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
        shape = autodiff.implicit_root(_shape_residual, _solve_shape, mean.mean_log, mean.mean)
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
