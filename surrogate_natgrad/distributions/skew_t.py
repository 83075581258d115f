"""The multivariate skew-t distribution of Azzalini and Capitanio (2003).

Parameters ``ξ`` (``loc``), ``Ω`` (``scale``), ``α`` (``alpha``) and ``ν`` (``df``):

    p(x) = 2 t_d(x; ξ, Ω, ν) T_{ν+d}(αᵀω⁻¹(x - ξ) sqrt((ν + d) / (Q + ν))),

with ``t_d`` the d-variate Student-t density, ``Q = (x - ξ)ᵀΩ⁻¹(x - ξ)``, ``ω = sqrt(diag Ω)``
and ``T_k`` the CDF of the standard Student t with ``k`` degrees of freedom. It is
``x = ξ + Y / sqrt(V/ν)`` with ``Y ~ SN_d(0, Ω, α)`` and ``V ~ χ²_ν`` independent, so with
``β = ω δ`` (see :mod:`.skew_normal`) and ``b = sqrt(ν/π) Γ((ν-1)/2) / Γ(ν/2)``:
``E x = ξ + b β`` (``ν > 1``) and ``Cov x = ν/(ν-2) Ω - b² ββᵀ`` (``ν > 2``).

``log T_k`` is evaluated as ``log1p(-T_k(-t))`` above zero and, far in the lower tail where
``T_k`` underflows, from the continued fraction of the incomplete beta function in log
form, so the log-density stays finite (and differentiable in ``df``) for large skewness in
high dimension. Pure math (layer 3).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from surrogate_natgrad._compat import Array, linalg, namespace
from surrogate_natgrad.distributions._base import Distribution, check_parameter
from surrogate_natgrad.distributions.skew_normal import (
    _autograd_traced_single,
    _CentredSkewDirection,
    _check_matrix_shapes,
    _check_scale,
    _finite,
    _moment_start,
    _no_options,
    _sampling_rng,
    _shape_tuple,
    batched_mean_nll,
    check_vectors,
    quadratic_form_nll,
    scale_terms,
    skew_delta,
    skew_normal_draws,
    sum_last,
)
from surrogate_natgrad.errors import DomainError

__all__ = ["SkewT", "log_t_cdf", "skew_t_logpdf"]

_LOG_2 = math.log(2.0)
_LOG_PI = math.log(math.pi)
_LGAMMA_HALF = 0.5 * _LOG_PI
# Below this value of T_k(t) the log is taken from the continued fraction instead.
_TAIL_THRESHOLD = 1e-250
_TAIL_TERMS = 40


def _special() -> Any:
    from surrogate_natgrad import special

    return special


def _concrete_any(xp: Any, flags: Array) -> bool:
    """``bool(any(flags))``; True when the flags are traced (JAX) and have no value."""
    try:
        return bool(xp.any(flags))
    except TypeError:  # a JAX tracer under jit
        return True


def _log_lower_tail(df: Array, t: Array) -> Array:
    """``log T_k(t)`` for ``t`` well below zero, from ``T_k(t) = ½ I_x(k/2, ½)``.

    ``x = k/(k + t²)``; ``log I_x(a, b) = a log x + b log(1 - x) - log B(a, b) - log a
    - log f`` with ``f`` the continued fraction of Numerical Recipes' ``betacf``, evaluated
    backwards over a fixed number of levels (it converges fast for ``t² > 3``).
    """
    special = _special()
    xp = namespace(df, t)
    a = 0.5 * df
    b = 0.5
    log_sum = xp.log(df + t * t)
    log_x = xp.log(df) - log_sum
    log_one_minus_x = 2.0 * xp.log(xp.abs(t)) - log_sum
    x = xp.exp(log_x)
    fraction = xp.ones_like(x)
    for level in range(2 * _TAIL_TERMS, 0, -1):
        m = level // 2
        if level % 2:  # d_{2m+1}
            coefficient = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        else:  # d_{2m}
            coefficient = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        fraction = 1.0 + coefficient / fraction
    log_beta = special.gammaln(a) + _LGAMMA_HALF - special.gammaln(a + b)
    log_incomplete = a * log_x + b * log_one_minus_x - log_beta - xp.log(a) - xp.log(fraction)
    return log_incomplete - _LOG_2


def log_t_cdf(df: Array, t: Array) -> Array:
    """Logarithm of the Student-t CDF, ``log T_df(t)``, accurate in both tails.

    Parameters
    ----------
    df : array
        Degrees of freedom, positive.
    t : array
        Points (broadcasting with ``df``).

    Returns
    -------
    array
        ``log T_df(t)``; differentiable in ``t`` and ``df`` on every autodiff backend.
    """
    special = _special()
    xp = namespace(df, t)
    # Broadcast by arithmetic (autograd's broadcast_to cannot add leading axes).
    df, t = df + xp.zeros_like(t), t + xp.zeros_like(df)
    negative_abs = -xp.abs(t)
    lower = special.stdtr(df, negative_abs)  # T(-|t|) <= 1/2, never rounds to one
    tiny = lower < _TAIL_THRESHOLD
    one = xp.ones_like(lower)
    log_lower = xp.log(xp.where(tiny, one, lower))
    if _concrete_any(xp, tiny):
        # Replace the other entries by a harmless point so no NaN reaches the gradients.
        safe = xp.where(tiny, negative_abs, -10.0 * one)
        log_lower = xp.where(tiny, _log_lower_tail(df, safe), log_lower)
    upper = xp.log1p(-xp.where(tiny, xp.zeros_like(lower), lower))
    return xp.where(t > 0, upper, log_lower)


def skew_t_logpdf(x: Array, loc: Array, scale: Array, alpha: Array, df: Array) -> Array:
    """Log-density of the Azzalini–Capitanio skew-t ``ST_d(ξ, Ω, α, ν)``.

    Parameters
    ----------
    x : array, shape ``X + (d,)``
        Points.
    loc, alpha : array, shape ``S + (d,)``
        Location and slant.
    scale : array, shape ``S + (d, d)``
        Scale matrix (symmetric positive definite; its symmetric part is used).
    df : array, shape ``S``
        Degrees of freedom ``ν > 0``.

    Returns
    -------
    array
        Shape ``broadcast(X, S)``. No checks; differentiable in every parameter (in ``df``
        through :func:`log_t_cdf`).
    """
    namespace(x, loc, scale, alpha, df)  # mixed libraries or devices raise BackendError
    residual, quadratic, logdet, omega = scale_terms(loc, scale, x)
    dim = int(x.shape[-1])
    projection = sum_last((alpha / omega) * residual)
    parts = {"quadratic": quadratic, "projection": projection, "logdet": logdet, "df": df}
    return _skew_t_pointwise(parts, dim)


def _skew_t_pointwise(parts: Mapping[str, Array], dim: int) -> Array:
    """Skew-t log-densities from ``Q``, ``z = (α/ω)ᵀ(x - ξ)``, ``log|Ω|`` and ``ν``."""
    special = _special()
    quadratic, df = parts["quadratic"], parts["df"]
    xp = namespace(quadratic, df)
    df_plus = df + dim
    log_t_density = (
        special.gammaln(0.5 * df_plus)
        - special.gammaln(0.5 * df)
        - 0.5 * dim * (xp.log(df) + _LOG_PI)
        - 0.5 * parts["logdet"]
        - 0.5 * df_plus * xp.log1p(quadratic / df)
    )
    argument = parts["projection"] * xp.sqrt(df_plus / (quadratic + df))
    return _LOG_2 + log_t_density + log_t_cdf(df_plus, argument)


def _df_valid(xp: Any, value: Array) -> Array:
    return xp.logical_and(xp.isfinite(value), value > 0)


class SkewT(_CentredSkewDirection, Distribution):
    """Multivariate skew-t ``ST_d(ξ, Ω, α, ν)`` of Azzalini and Capitanio (2003).

    ``p(x) = 2 t_d(x; ξ, Ω, ν) T_{ν+d}(αᵀω⁻¹(x - ξ) sqrt((ν+d)/(Q+ν)))``.

    Parameters
    ----------
    loc : array, shape ``(..., d)``
        Location ``ξ``.
    scale : array, shape ``(..., d, d)``
        Scale matrix ``Ω``, symmetric positive definite.
    alpha : array, shape ``(..., d)``
        Slant ``α``.
    df : array or float, shape ``(...)``
        Degrees of freedom ``ν > 0``.
    validate : bool, optional
        Check the parameters (default True).

    Raises
    ------
    DomainError
        For inconsistent shapes, non-finite values, a scale that is not symmetric positive
        definite or ``df <= 0``.

    Examples
    --------
    With zero slant the skew-t is the multivariate t, of covariance ``ν/(ν-2) Ω``:

    >>> import numpy as np
    >>> dist = SkewT(np.zeros(2), np.eye(2), np.zeros(2), 5.0)
    >>> np.round(dist.cov(), 6).tolist()
    [[1.666667, 0.0], [0.0, 1.666667]]
    """

    param_names: ClassVar[tuple[str, ...]] = ("loc", "scale", "alpha", "df")
    event_ndim: ClassVar[int] = 1
    discrete: ClassVar[bool] = False
    fit_options: ClassVar[tuple[str, ...]] = ()
    aliases: ClassVar[tuple[str, ...]] = ("skew_t", "skew-t")
    _pointwise = staticmethod(_skew_t_pointwise)

    def __init__(
        self, loc: object, scale: object, alpha: object, df: object, *, validate: bool = True
    ):
        self._init_params({"loc": loc, "scale": scale, "alpha": alpha, "df": df}, validate)

    @property
    def dim(self) -> int:
        """int: the dimension ``d``."""
        return int(self._params["loc"].shape[-1])

    def _validate(self) -> None:
        name = type(self).__name__
        params = self._params
        _check_matrix_shapes(name, params, component_axis=False)
        batch = tuple(params["loc"].shape[:-1])
        df_shape = tuple(params["df"].shape)
        if len(df_shape) > len(batch) or any(
            n not in (1, m) for n, m in zip(df_shape[::-1], batch[::-1], strict=False)
        ):
            raise DomainError(
                f"parameter 'df' of {name} must have the batch shape of 'loc' ({batch}) or "
                f"broadcast to it; got shape {df_shape}"
            )
        check_parameter("df", params["df"], _df_valid, "positive and finite", name)
        check_parameter("loc", params["loc"], _finite, "finite", name)
        check_parameter("alpha", params["alpha"], _finite, "finite", name)
        _check_scale(name, params["scale"])

    @staticmethod
    def log_prob_from_params(params: Mapping[str, Array], x: Array) -> Array:
        """Log-density of ``x`` for ``{"loc", "scale", "alpha", "df"}`` (:func:`skew_t_logpdf`).

        Parameters
        ----------
        params : mapping
            ``loc``/``alpha`` ``S + (d,)``, ``scale`` ``S + (d, d)``, ``df`` ``S``.
        x : array
            Points, shape ``X + (d,)``.

        Returns
        -------
        array
            Shape ``broadcast(X, S)``.
        """
        return skew_t_logpdf(x, params["loc"], params["scale"], params["alpha"], params["df"])

    @staticmethod
    def mean_nll(params: Mapping[str, Array], data: Array, weights: Array | None = None) -> Array:
        """Mean negative log-likelihood of ``data`` (shape ``(N, d)``) per parameter set.

        Parameters
        ----------
        params : mapping
            Parameters with batch shape ``S``.
        data : array, shape ``(N, d)``
            Observations.
        weights : array, shape ``(N,)``, optional
            Per-observation weights (normalised by their sum).

        Returns
        -------
        array
            Shape ``S``.
        """
        if _autograd_traced_single(params, data):
            # Under autograd, chain the gradient through Ω by hand (see quadratic_form_nll).
            dim = int(data.shape[-1])
            return quadratic_form_nll(
                params, data, weights, lambda parts: _skew_t_pointwise(parts, dim)
            )
        events = {"loc": 1, "scale": 2, "alpha": 1, "df": 0}
        return batched_mean_nll(SkewT.log_prob_from_params, params, events, data, weights)

    def _b(self) -> Array:
        special = _special()
        xp = self.xp
        df = self._params["df"]
        safe = xp.where(df > 1, df, 2 * xp.ones_like(df))
        log_b = (
            0.5 * (xp.log(safe) - _LOG_PI)
            + special.gammaln(0.5 * (safe - 1))
            - special.gammaln(0.5 * safe)
        )
        return xp.where(df > 1, xp.exp(log_b), xp.full_like(df, xp.nan))

    def _beta(self) -> Array:
        delta, omega = skew_delta(linalg.symmetrize(self._params["scale"]), self._params["alpha"])
        return omega * delta

    def mean(self) -> Array:
        """Mean ``ξ + b ω δ`` for ``ν > 1`` (NaN otherwise)."""
        return self._params["loc"] + self._b()[..., None] * self._beta()

    def cov(self) -> Array:
        """Covariance ``ν/(ν-2) Ω - b² ββᵀ`` for ``ν > 2`` (infinite for ``1 < ν <= 2``).

        Returns
        -------
        array, shape (..., d, d)
            The covariance matrix.
        """
        xp = self.xp
        df = self._params["df"]
        beta = self._beta()
        b = self._b()
        ratio = xp.where(df > 2, df / xp.where(df > 2, df - 2, xp.ones_like(df)), xp.inf)
        scale = linalg.symmetrize(self._params["scale"])
        return ratio[..., None, None] * scale - (b * b)[..., None, None] * linalg.matrix_outer(
            beta, beta
        )

    def var(self) -> Array:
        """Marginal variances (the diagonal of :meth:`cov`)."""
        return self.xp.linalg.diagonal(self.cov())

    def sample(self, size: int | tuple[int, ...] = (), *, seed: object = None) -> Array:
        """Draw ``x = ξ + Y / sqrt(V/ν)`` with ``Y ~ SN(0, Ω, α)``, ``V ~ χ²_ν``.

        Parameters
        ----------
        size : int or tuple of int, optional
            Sample shape; the result has shape ``size + batch + (d,)``.
        seed : int, generator or None, optional
            Seed or a :func:`surrogate_natgrad.random.default_rng` generator.

        Returns
        -------
        array
        """
        xp = self.xp
        p = self._params
        shape = _shape_tuple(size)
        rng = _sampling_rng(seed, p["loc"])
        centred = skew_normal_draws(rng, xp.zeros_like(p["loc"]), p["scale"], p["alpha"], shape)
        batch = tuple(centred.shape[len(shape) : -1])
        df = xp.broadcast_to(p["df"], batch)
        chi2 = rng.chisquare(xp.broadcast_to(df, (*shape, *batch)), size=(*shape, *batch))
        return p["loc"] + centred / xp.sqrt(chi2 / df)[..., None]

    # -------------------------------------------------------------- fit protocol

    @classmethod
    def check_data(cls, data: object, name: str = "data") -> Array:
        """Check observations (shape ``(N, d)``, finite) and return them as floats."""
        return check_vectors(data, name)

    @classmethod
    def from_data(cls, data: Array, **options: Any) -> SkewT:
        """Start from the skew-normal moment start with ``ν = 10`` and ``Ω`` scaled by 0.8.

        The factor ``(ν - 2)/ν = 0.8`` keeps the start's covariance near the sample's.

        Parameters
        ----------
        data : array, shape ``(N, d)``
            Observations.

        Returns
        -------
        SkewT
        """
        _no_options(cls, options)
        values = check_vectors(data, "data")
        xp = namespace(values)
        start = _moment_start(values)
        df = xp.full_like(values[0, 0], 10.0)
        return cls(start["loc"], 0.8 * start["scale"], start["alpha"], df)

    @classmethod
    def check_start(cls, params: Mapping[str, Array]) -> None:
        """Raise DomainError unless ``scale`` is SPD and ``df > 2`` (``ν = exp(ℓ) + 2``)."""
        _check_scale(cls.__name__, params["scale"])
        check_parameter(
            "df",
            params["df"],
            lambda xp_, v: xp_.logical_and(xp_.isfinite(v), v > 2),
            "finite and above 2 to start a fit (the fit uses log(df - 2))",
            cls.__name__,
        )

    @classmethod
    def surrogate_map_for(cls, params: Mapping[str, Array]) -> Any:
        """The SNGD map: a Gaussian in centred coordinates plus auxiliary ``η_s``, ``ν``."""
        return cls.surrogate_map(int(params["loc"].shape[-1]))

    @staticmethod
    def surrogate_map(dim: int) -> Any:
        """The SNGD map for dimension ``dim`` (see :func:`_skew_maps.skew_t_map`).

        Parameters
        ----------
        dim : int
            Dimension ``d`` of the observations.

        Returns
        -------
        SurrogateMap
            The map between the parameters and the surrogate family.
        """
        from surrogate_natgrad.distributions._skew_maps import skew_t_map

        return skew_t_map(dim)

    @staticmethod
    def to_unconstrained(params: Mapping[str, Array]) -> dict[str, Array]:
        """Baseline coordinates: those of the skew-normal plus ``log_df = log(ν - 2)``."""
        from surrogate_natgrad.distributions.skew_normal import SkewNormal

        return _with_log_df(SkewNormal.to_unconstrained(params), params["df"])

    @staticmethod
    def from_unconstrained(coords: Mapping[str, Array]) -> dict[str, Array]:
        """Inverse of :meth:`to_unconstrained` (``ν = exp(log_df) + 2``)."""
        from surrogate_natgrad.distributions.skew_normal import SkewNormal

        return _with_df(SkewNormal.from_unconstrained, coords, "scale_root")

    @staticmethod
    def to_unconstrained_precision(params: Mapping[str, Array]) -> dict[str, Array]:
        """As :meth:`SkewNormal.to_unconstrained_precision`, plus ``log_df = log(ν - 2)``.

        Parameters
        ----------
        params : mapping of str to array
            The parameters.

        Returns
        -------
        dict of str to array
            The unconstrained coordinates.
        """
        from surrogate_natgrad.distributions.skew_normal import SkewNormal

        return _with_log_df(SkewNormal.to_unconstrained_precision(params), params["df"])

    @staticmethod
    def from_unconstrained_precision(coords: Mapping[str, Array]) -> dict[str, Array]:
        """Inverse of :meth:`to_unconstrained_precision`.

        Parameters
        ----------
        coords : mapping of str to array
            Coordinates from :meth:`to_unconstrained_precision`.

        Returns
        -------
        dict of str to array
            The parameters.
        """
        from surrogate_natgrad.distributions.skew_normal import SkewNormal

        return _with_df(SkewNormal.from_unconstrained_precision, coords, "precision_root")

    @classmethod
    def default_grid_size(cls, params: Mapping[str, Array]) -> int:
        """Grid candidates: as :meth:`SkewNormal.default_grid_size`."""
        from surrogate_natgrad.distributions.skew_normal import SkewNormal

        return SkewNormal.default_grid_size(params)


def _with_log_df(coords: dict[str, Array], df: Array) -> dict[str, Array]:
    """The skew-normal's baseline coordinates plus ``log_df = log(ν - 2)``."""
    return {**coords, "log_df": namespace(df).log(df - 2.0)}


def _with_df(
    skew_normal_inverse: Callable[[Mapping[str, Array]], dict[str, Array]],
    coords: Mapping[str, Array],
    root_name: str,
) -> dict[str, Array]:
    """Invert the skew-normal's part of ``coords``, then ``ν = exp(log_df) + 2``."""
    params = skew_normal_inverse({key: coords[key] for key in ("loc", root_name, "skew")})
    return {**params, "df": namespace(coords["log_df"]).exp(coords["log_df"]) + 2.0}
