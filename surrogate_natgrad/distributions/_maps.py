"""Surrogate maps of the negative binomial targets (So & Turner 2024, section 5).

NB(n, p) ↔ Gamma(α, β) (shape, rate): ``p = β`` and ``n = α / (1 - β)``; the inverse is
``α = n (1 - p)``, ``β = p``. The map is defined only for ``α > 0`` and ``0 < β < 1``.
A mixture of K negative binomials uses the joint (component, x) gamma mixture family,
component by component, with the same weights.

Pure math (layer 3).
"""

from __future__ import annotations

from typing import Any

from surrogate_natgrad._compat import Array, namespace
from surrogate_natgrad.maps import SurrogateMap

__all__ = ["negative_binomial_map", "negative_binomial_mixture_map"]


def _nb_from_gamma(shape: Array, rate: Array) -> dict[str, Array]:
    return {"n": shape / (1 - rate), "p": rate}


def _gamma_from_nb(n: Array, p: Array) -> tuple[Array, Array]:
    return n * (1 - p), p


def _valid(shape: Array, rate: Array) -> Array:
    xp = namespace(shape, rate)
    inside = xp.logical_and(shape > 0, xp.logical_and(rate > 0, rate < 1))
    return xp.logical_and(inside, xp.logical_and(xp.isfinite(shape), xp.isfinite(rate)))


def negative_binomial_map() -> SurrogateMap:
    """Return the surrogate map NB(n, p) ↔ Gamma(α, β).

    Returns
    -------
    SurrogateMap
        Family :class:`~surrogate_natgrad.families.Gamma`; ``to_target`` gives
        ``{"n": α / (1 - β), "p": β}``; ``from_target`` gives ``GammaStandard(n (1 - p), p)``;
        ``domain`` is ``α > 0 and 0 < β < 1`` (elementwise, so a leading batch axis of
        candidates gives one flag per candidate).
    """
    from surrogate_natgrad.families.gamma import Gamma, GammaStandard

    def to_target(standard: Any, aux: Any) -> dict[str, Array]:
        return _nb_from_gamma(standard.shape, standard.rate)

    def from_target(target: Any) -> tuple[Any, Any]:
        shape, rate = _gamma_from_nb(target["n"], target["p"])
        return GammaStandard(shape, rate), ()

    def domain(standard: Any) -> Array:
        return _valid(standard.shape, standard.rate)

    return SurrogateMap(Gamma(), to_target, from_target, None, domain)


def negative_binomial_mixture_map(n_components: int) -> SurrogateMap:
    """Return the surrogate map of a K-component NB mixture: the joint gamma mixture.

    Parameters
    ----------
    n_components : int
        The number of components K.

    Returns
    -------
    SurrogateMap
        Family ``Mixture(Gamma(), K)`` (weights and per-component gamma parameters);
        component k maps as :func:`negative_binomial_map`, the weights are shared. The
        domain (``α_k > 0``, ``0 < β_k < 1`` for every k) reduces over the component axis,
        so a leading batch axis of candidates gives one flag per candidate.
    """
    from surrogate_natgrad.families.gamma import Gamma, GammaStandard
    from surrogate_natgrad.families.mixture import Mixture, MixtureStandard

    def to_target(standard: Any, aux: Any) -> dict[str, Array]:
        components = standard.components
        target = _nb_from_gamma(components.shape, components.rate)
        return {"weights": standard.weights, "n": target["n"], "p": target["p"]}

    def from_target(target: Any) -> tuple[Any, Any]:
        shape, rate = _gamma_from_nb(target["n"], target["p"])
        return MixtureStandard(target["weights"], GammaStandard(shape, rate)), ()

    def domain(standard: Any) -> Array:
        components = standard.components
        xp = namespace(components.shape, components.rate)
        return xp.all(_valid(components.shape, components.rate), axis=-1)

    return SurrogateMap(Mixture(Gamma(), n_components), to_target, from_target, None, domain)
