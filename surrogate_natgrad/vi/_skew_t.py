"""Skew-t variational family (Azzalini–Capitanio), reparameterised in every parameter.

Pure math (layer 3). Parameters :class:`SkewTParams` ``(loc ξ, scale Ω, shape η_s, df ν)``;
the density is that of :func:`surrogate_natgrad.distributions.skew_t.skew_t_logpdf` with
slant ``α = ω ⊙ η_s`` (``ω = √diag Ω``). A draw is

    z = ξ + (|w| β + L_V ε) / √V,   V = G / (ν/2),   G = P⁻¹(ν/2, u),

with ``w ~ N(0, 1)``, ``ε ~ N(0, I)``, ``u ~ U(0, 1)``, ``β = Ωη_s/√(1 + η_sᵀΩη_s)``,
``V = Ω - ββᵀ = L_V L_Vᵀ`` and ``P⁻¹(a, ·)`` the quantile function of ``Gamma(a, 1)``
(:func:`surrogate_natgrad.special.gammaincinv`). ``G ~ Gamma(ν/2, 1)``, so ``V ~ χ²_ν/ν``
and ``z`` is skew-t. The draw is a smooth function of ``ν`` for fixed ``u``; its derivative
``∂G/∂a = -(∂P/∂a)(a, G)/p(G; a)`` is the implicit reparameterisation gradient (Figurnov
et al., 2018), so pathwise gradients with respect to ``ν`` are unbiased.

The entropy has no closed form, but its dependence on ``Ω`` does: with ``Ω = LLᵀ``,
``x = L⁻¹(z - ξ)`` is, up to a rotation, the canonical skew-t with scale ``I``, slant
``a e₁`` (``a² = η_sᵀΩη_s``) and ``ν`` degrees of freedom, so

    H(q) = ½ log|Ω| + h_d(ν, a),   h_d = -E[log q_canonical(x)].

:meth:`entropy_estimate` computes ``h_d`` by Monte Carlo on the same draws (``O(d)`` per
draw: only ``x₁`` and ``|x|²`` matter) and the rest exactly, so the scale matrix's entropy
gradient is exact and only two scalars carry Monte Carlo noise.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any, NamedTuple

from surrogate_natgrad import special
from surrogate_natgrad._compat import Array, asarray, device, linalg, namespace
from surrogate_natgrad.distributions.skew_t import log_t_cdf, skew_t_logpdf
from surrogate_natgrad.errors import DataError
from surrogate_natgrad.families.gaussian import Gaussian, GaussianStandard
from surrogate_natgrad.maps import ExpPlus, Identity, SurrogateMap
from surrogate_natgrad.vi._families import (
    SkewNormalParams,
    SkewNormalVariational,
    VariationalFamily,
    VariationalNoise,
    _safe_sqrt,
    factor_to_scale,
    scale_to_factor,
)

__all__ = ["SkewTParams", "SkewTVariational"]

_LOG_PI = math.log(math.pi)
#: Lower bound of ν: the covariance exists for ν > 2 (SNGD optimises log(ν - 2)).
DF_MINIMUM = 2.0


class SkewTParams(NamedTuple):
    """Parameters of the skew-t variational family.

    Attributes
    ----------
    loc : array, shape (d,)
        Location ``ξ``.
    scale : array, shape (d, d)
        Scale matrix ``Ω`` (symmetric positive definite).
    shape : array, shape (d,)
        Skewness vector ``η_s`` (slant ``α = ω ⊙ η_s``).
    df : array, shape ()
        Degrees of freedom ``ν > 2``.
    """

    loc: Array
    scale: Array
    shape: Array
    df: Array


def _skew_normal_part(params: SkewTParams) -> SkewNormalParams:
    return SkewNormalParams(params.loc, params.scale, params.shape)


class SkewTVariational(VariationalFamily):
    """Multivariate skew-t variational family.

    Parameters
    ----------
    dim : int
        Dimension ``d``.
    default_df : float, optional
        Degrees of freedom of a start that does not give them (50, as in the paper's E7).
    entropy_samples : int, optional
        Monte Carlo samples of :meth:`entropy` (a fixed seed, so it is deterministic).
    """

    name = "skew_t"
    params_type = SkewTParams
    param_names = ("loc", "scale", "shape", "df")
    closed_form_entropy = False
    init_aliases = MappingProxyType({"mean": "loc", "cov": "scale"})

    def __init__(self, dim: int, default_df: float = 50.0, entropy_samples: int = 20_000) -> None:
        if isinstance(dim, bool) or int(dim) != dim or dim < 1:
            raise DataError(f"dim must be a positive integer, got {dim!r}")
        if not (math.isfinite(default_df) and default_df > DF_MINIMUM):
            raise DataError(f"default_df must be a finite number above 2, got {default_df!r}")
        self.dim = int(dim)
        self.default_df = float(default_df)
        self.entropy_samples = int(entropy_samples)
        self._skew_normal = SkewNormalVariational(self.dim)

    def __repr__(self) -> str:
        return f"SkewTVariational(dim={self.dim})"

    # ------------------------------------------------------------------ parameters
    def check_params(self, params: Any) -> SkewTParams:
        """Return ``params`` as :class:`SkewTParams`, checking the shapes.

        Parameters
        ----------
        params : tuple of array
            ``(loc, scale, shape, df)``.

        Returns
        -------
        SkewTParams

        Raises
        ------
        DataError
            If ``params`` is not a 4-tuple or a shape is wrong.
        """
        if not isinstance(params, tuple) or len(params) != 4:
            raise DataError("skew-t parameters must be a (loc, scale, shape, df) tuple")
        params = SkewTParams(*params)
        self._check_shapes(params, ((self.dim,), (self.dim, self.dim), (self.dim,), ()))
        return params

    def check_start(self, params: SkewTParams) -> None:
        """Raise DataError unless ``df`` is finite and above 2.

        Parameters
        ----------
        params : SkewTParams
        """
        df = float(params.df)
        if not (math.isfinite(df) and df > DF_MINIMUM):
            raise DataError(f"init['df'] must be a finite number above 2, got {df!r}")

    def optional_defaults(self, like: Array) -> dict[str, Array]:
        """Return ``{"shape": 0, "df": default_df}`` for starts that omit them.

        Parameters
        ----------
        like : array
            Reference array (namespace, dtype, device).

        Returns
        -------
        dict of str to array
        """
        xp = namespace(like)
        return {
            "shape": xp.zeros((self.dim,), dtype=like.dtype, device=device(like)),
            "df": asarray(self.default_df, xp, dtype=like.dtype, like=like),
        }

    def default_params(self, like: Array) -> SkewTParams:
        """Return the default start ``ξ = 0``, ``Ω = I``, ``η_s = 0``, ``ν = default_df``.

        Parameters
        ----------
        like : array
            Reference array.

        Returns
        -------
        SkewTParams
        """
        xp = namespace(like)
        defaults = self.optional_defaults(like)
        return SkewTParams(
            xp.zeros((self.dim,), dtype=like.dtype, device=device(like)),
            xp.eye(self.dim, dtype=like.dtype, device=device(like)),
            defaults["shape"],
            defaults["df"],
        )

    # ------------------------------------------------------------------ sampling
    def draw_noise(self, rng: Any, n_samples: int, dtype: Any = None) -> VariationalNoise:
        """Draw ``ε ~ N(0, I)`` ``(S, d)``, ``w ~ N(0, 1)`` ``(S,)`` and ``u ~ U(0, 1)`` ``(S,)``.

        ``u`` is kept inside ``[tiny, 1 - eps/2]`` so that every gamma quantile is finite and
        positive.

        Parameters
        ----------
        rng : Generator
            From :func:`surrogate_natgrad.random.default_rng`.
        n_samples : int
            Number of draws ``S``.
        dtype : dtype, optional
            Floating dtype.

        Returns
        -------
        VariationalNoise
        """
        normal = rng.normal((n_samples, self.dim), dtype=dtype)
        mixing = rng.normal((n_samples,), dtype=dtype)
        uniform = rng.uniform((n_samples,), dtype=dtype)
        xp = namespace(uniform)
        info = xp.finfo(uniform.dtype)
        uniform = xp.clip(uniform, float(info.smallest_normal), 1.0 - float(info.eps) / 2)
        return VariationalNoise(normal, mixing, uniform)

    def sample_from_noise(self, params: SkewTParams, noise: VariationalNoise) -> Array:
        """Return ``ξ + (|w|β + L_V ε)/√V`` per draw (shape ``(S, d)``).

        Parameters
        ----------
        params : SkewTParams
        noise : VariationalNoise
            Draws from :meth:`draw_noise` (with mixing and uniform draws).

        Returns
        -------
        array, shape (S, d)

        Raises
        ------
        DataError
            If ``noise`` lacks the mixing or uniform draws.
        """
        if noise.mixing is None or noise.uniform is None:
            raise DataError("skew-t samples need noise with mixing draws w and uniform draws u")
        location, chol, skew, _ = self._skew_normal.conditional(_skew_normal_part(params))
        xp = namespace(location, chol, noise.normal)
        half_df = 0.5 * params.df
        gamma_draws = special.gammaincinv(half_df, noise.uniform)
        inverse_root = xp.sqrt(half_df / gamma_draws)
        skew_normal = xp.abs(noise.mixing)[:, None] * skew + noise.normal @ (
            xp.linalg.matrix_transpose(chol)
        )
        return location + inverse_root[:, None] * skew_normal

    # ------------------------------------------------------------------ densities
    def log_prob(self, params: SkewTParams, x: Array) -> Array:
        """Return the skew-t log density at ``x`` (shape ``(..., d)``).

        Parameters
        ----------
        params : SkewTParams
        x : array, shape (..., d)

        Returns
        -------
        array, shape (...)
        """
        xp = namespace(params.scale)
        omega = xp.sqrt(xp.linalg.diagonal(linalg.symmetrize(params.scale)))
        return skew_t_logpdf(x, params.loc, params.scale, omega * params.shape, params.df)

    def _mean_factor(self, df: Array) -> Array:
        """``b = √(ν/π) Γ((ν-1)/2)/Γ(ν/2)``."""
        xp = namespace(df)
        return xp.exp(
            0.5 * (xp.log(df) - _LOG_PI)
            + special.gammaln(0.5 * (df - 1.0))
            - special.gammaln(0.5 * df)
        )

    def moments(self, params: SkewTParams) -> tuple[Array, Array]:
        """Return the mean ``ξ + bβ`` and covariance ``ν/(ν-2) Ω - b²ββᵀ``.

        Parameters
        ----------
        params : SkewTParams

        Returns
        -------
        mean : array, shape (d,)
        cov : array, shape (d, d)
        """
        location, _, skew, _ = self._skew_normal.conditional(_skew_normal_part(params))
        factor = self._mean_factor(params.df)
        cov = (params.df / (params.df - 2.0)) * linalg.symmetrize(params.scale) - (
            factor * factor
        ) * linalg.matrix_outer(skew, skew)
        return location + factor * skew, cov

    def entropy(self, params: SkewTParams) -> Array:
        """Return a Monte Carlo estimate of the entropy (``entropy_samples`` draws, seed 0).

        Parameters
        ----------
        params : SkewTParams

        Returns
        -------
        array
            :meth:`entropy_estimate` on fixed draws (0-d); the ``log|Ω|`` part is exact, the
            rest has a standard error of about ``std(log q)/√entropy_samples``.
        """
        from surrogate_natgrad import random

        rng = random.default_rng(0, like=params.loc)
        noise = self.draw_noise(rng, self.entropy_samples, params.loc.dtype)
        return self.entropy_estimate(params, noise)

    def entropy_estimate(self, params: SkewTParams, noise: VariationalNoise) -> Array:
        """Return ``½ log|Ω| + h_d(ν, a)`` with ``h_d`` estimated on the draws ``noise``.

        The canonical draw is ``x₁ = (|w|δ + ε₁/√(1 + a²))/√V``, ``x_j = ε_j/√V`` (``j ≥ 2``),
        ``δ = a/√(1 + a²)``, with the same ``w``, ``ε``, ``u`` as :meth:`sample_from_noise`,
        and ``log q = log 2 + log t_d(x; 0, I, ν) + log T_{ν+d}(a x₁ √((ν+d)/(ν+|x|²)))``.
        Unbiased, differentiable in every parameter (``Ω`` and ``η_s`` enter only through
        ``log|Ω|`` and ``a``).

        Parameters
        ----------
        params : SkewTParams
        noise : VariationalNoise
            Draws from :meth:`draw_noise`.

        Returns
        -------
        array
            The entropy estimate (0-d).
        """
        if noise.mixing is None or noise.uniform is None:
            raise DataError("skew-t entropy needs noise with mixing draws w and uniform draws u")
        _, chol, _, squared = self._skew_normal.conditional(_skew_normal_part(params))
        xp = namespace(chol, noise.normal)
        df = params.df
        dim = self.dim
        slant = _safe_sqrt(squared, squared)
        inverse_norm = 1.0 / xp.sqrt(1.0 + squared)
        half_df = 0.5 * df
        mixing_variance = special.gammaincinv(half_df, noise.uniform) / half_df
        inverse_root = 1.0 / xp.sqrt(mixing_variance)
        first = (
            xp.abs(noise.mixing) * slant * inverse_norm + noise.normal[:, 0] * inverse_norm
        ) * inverse_root
        rest = xp.sum(noise.normal[:, 1:] ** 2, axis=1) / mixing_variance
        radius_squared = first * first + rest
        df_plus = df + dim
        log_t_density = (
            special.gammaln(0.5 * df_plus)
            - special.gammaln(half_df)
            - 0.5 * dim * (xp.log(df) + _LOG_PI)
            - 0.5 * df_plus * xp.log1p(radius_squared / df)
        )
        argument = slant * first * xp.sqrt(df_plus / (df + radius_squared))
        log_density = math.log(2.0) + log_t_density + log_t_cdf(df_plus, argument)
        return (
            0.5 * linalg.logdet_from_cholesky(chol) + 0.5 * xp.log1p(squared) - xp.mean(log_density)
        )

    # ------------------------------------------------------------------ optimisation
    def surrogate_map(self) -> SurrogateMap:
        """Return SNGD's map: Gaussian ``N(ξ, Ω)``, auxiliary ``η_s`` and ``ν = exp(ℓ) + 2``.

        Returns
        -------
        SurrogateMap
        """
        return SurrogateMap(
            family=Gaussian(self.dim),
            to_target=lambda standard, aux: SkewTParams(
                standard[0], standard[1], aux["shape"], aux["df"]
            ),
            aux_transforms={"shape": Identity(), "df": ExpPlus(DF_MINIMUM)},
        )

    def surrogate_start(self, params: SkewTParams) -> tuple[Any, Any]:
        """Return ``(GaussianStandard(ξ, Ω), {"shape": η_s, "df": ν})``.

        Parameters
        ----------
        params : SkewTParams

        Returns
        -------
        tuple
        """
        return GaussianStandard(params.loc, params.scale), {
            "shape": params.shape,
            "df": params.df,
        }

    def to_unconstrained(
        self, params: SkewTParams, parameterization: str = "cholesky"
    ) -> dict[str, Array]:
        """Return Adam's coordinates ``{"loc", "factor", "shape", "log_df_minus_2"}``.

        Parameters
        ----------
        params : SkewTParams
        parameterization : {"cholesky", "precision"}, optional
            ``Ω = WWᵀ`` or ``Ω⁻¹ = WWᵀ``.

        Returns
        -------
        dict of str to array
        """
        xp = namespace(params.df)
        return {
            "loc": params.loc,
            "factor": scale_to_factor(params.scale, parameterization),
            "shape": params.shape,
            "log_df_minus_2": xp.log(params.df - DF_MINIMUM),
        }

    def from_unconstrained(
        self, values: dict[str, Array], parameterization: str = "cholesky"
    ) -> SkewTParams:
        """Invert :meth:`to_unconstrained`.

        Parameters
        ----------
        values : dict of str to array
        parameterization : {"cholesky", "precision"}, optional

        Returns
        -------
        SkewTParams
        """
        xp = namespace(values["log_df_minus_2"])
        return SkewTParams(
            values["loc"],
            factor_to_scale(values["factor"], parameterization),
            values["shape"],
            xp.exp(values["log_df_minus_2"]) + DF_MINIMUM,
        )
