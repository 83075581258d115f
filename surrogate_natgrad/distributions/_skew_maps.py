"""Surrogate maps of the skew-elliptical targets (So & Turner 2024, section 5).

- Skew-normal ``SN(ξ, Ω, α)``: the surrogate is the Gaussian ``N(ξ, Ω)`` (natural gradient
  for the location and scale matrix); the skew vector ``η_s = α / ω`` (``ω = sqrt(diag Ω)``,
  the density's ``Φ(η_sᵀ(x - ξ))``) is an unconstrained auxiliary parameter, so the slant
  follows the scale as ``α = ω η_s``.
- Skew-t ``ST(ξ, Ω, α, ν)``: as above, plus ``ν = exp(ℓ) + 2`` with ``ℓ`` auxiliary.
- Mixture of K skew-normals: the joint (component, x) Gaussian mixture gives the weights,
  locations and scale matrices; each component has its own skew vector.

The auxiliary values handed to ``to_target`` are the constrained ones
(``{"skew": η_s}``, plus ``"df": ν`` for the skew-t). Pure math (layer 3).
"""

from __future__ import annotations

from typing import Any

from surrogate_natgrad._compat import Array, namespace
from surrogate_natgrad.maps import ExpPlus, Identity, SurrogateMap

__all__ = ["skew_normal_map", "skew_normal_mixture_map", "skew_t_map"]

#: The skew-t's degrees of freedom in fits: ``ν = exp(ℓ) + DF_MINIMUM``.
DF_MINIMUM = 2.0


def _omega(cov: Array) -> Array:
    xp = namespace(cov)
    return xp.sqrt(xp.linalg.diagonal(cov))


def _skew_from_target(target: Any) -> Array:
    """``η_s = α / ω`` from target parameters."""
    return target["alpha"] / _omega(target["scale"])


def skew_normal_map(dim: int) -> SurrogateMap:
    """Return the map ``N(ξ, Ω)`` (+ auxiliary ``η_s``) → ``SN(ξ, Ω, α = ω η_s)``.

    Parameters
    ----------
    dim : int
        The dimension ``d``.

    Returns
    -------
    SurrogateMap
        Family :class:`~surrogate_natgrad.families.Gaussian` ``(d)``; ``to_target`` gives
        ``{"loc": μ, "scale": Σ, "alpha": sqrt(diag Σ) η_s}``; ``from_target`` gives
        ``(GaussianStandard(ξ, Ω), {"skew": α / ω})``; the skew is unconstrained.
        Batched surrogate parameters (a leading axis of candidates) map row by row.
    """
    from surrogate_natgrad.families.gaussian import Gaussian, GaussianStandard

    def to_target(standard: Any, aux: Any) -> dict[str, Array]:
        return {
            "loc": standard.mean,
            "scale": standard.cov,
            "alpha": _omega(standard.cov) * aux["skew"],
        }

    def from_target(target: Any) -> tuple[Any, Any]:
        return GaussianStandard(target["loc"], target["scale"]), {"skew": _skew_from_target(target)}

    return SurrogateMap(Gaussian(dim), to_target, from_target, {"skew": Identity()}, None)


def skew_t_map(dim: int) -> SurrogateMap:
    """Return the map ``N(ξ, Ω)`` (+ auxiliary ``η_s``, ``ℓ``) → ``ST(ξ, Ω, ω η_s, exp(ℓ)+2)``.

    Parameters
    ----------
    dim : int
        The dimension ``d``.

    Returns
    -------
    SurrogateMap
        As :func:`skew_normal_map`, with the auxiliary ``"df"`` constrained by
        ``ExpPlus(2.0)`` (the rules optimise ``ℓ = log(ν - 2)``).
    """
    from surrogate_natgrad.families.gaussian import Gaussian, GaussianStandard

    def to_target(standard: Any, aux: Any) -> dict[str, Array]:
        return {
            "loc": standard.mean,
            "scale": standard.cov,
            "alpha": _omega(standard.cov) * aux["skew"],
            "df": aux["df"],
        }

    def from_target(target: Any) -> tuple[Any, Any]:
        aux = {"skew": _skew_from_target(target), "df": target["df"]}
        return GaussianStandard(target["loc"], target["scale"]), aux

    transforms = {"skew": Identity(), "df": ExpPlus(DF_MINIMUM)}
    return SurrogateMap(Gaussian(dim), to_target, from_target, transforms, None)


def skew_normal_mixture_map(dim: int, n_components: int) -> SurrogateMap:
    """Return the map from the joint Gaussian mixture (+ skew vectors) to a SN mixture.

    Parameters
    ----------
    dim : int
        The dimension ``d``.
    n_components : int
        The number of components K.

    Returns
    -------
    SurrogateMap
        Family ``Mixture(Gaussian(d), K)``; ``to_target`` gives ``{"weights": π,
        "loc": μ_k, "scale": Σ_k, "alpha": sqrt(diag Σ_k) η_s,k}`` (the auxiliary
        ``"skew"`` has shape ``(K, d)``); ``from_target`` inverts it.
    """
    from surrogate_natgrad.families.gaussian import Gaussian, GaussianStandard
    from surrogate_natgrad.families.mixture import Mixture, MixtureStandard

    def to_target(standard: Any, aux: Any) -> dict[str, Array]:
        components = standard.components
        return {
            "weights": standard.weights,
            "loc": components.mean,
            "scale": components.cov,
            "alpha": _omega(components.cov) * aux["skew"],
        }

    def from_target(target: Any) -> tuple[Any, Any]:
        components = GaussianStandard(target["loc"], target["scale"])
        return MixtureStandard(target["weights"], components), {"skew": _skew_from_target(target)}

    family = Mixture(Gaussian(dim), n_components)
    return SurrogateMap(family, to_target, from_target, {"skew": Identity()}, None)
