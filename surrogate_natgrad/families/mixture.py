"""Finite mixtures as one joint exponential family over (component k, x) (pure math).

``log q̃(k, x) = ν_k + η_kᵀT(x) - A`` with ``A = logsumexp_k(ν_k + A_c(η_k))``. The weights are
``π = softmax(ν + A_c(η))`` and the mean parameters ``(π_k, π_k m_c(η_k))``. The logits ``ν``
are over-complete (adding a constant changes nothing); :meth:`Mixture.to_minimal_logits` and
:meth:`Mixture.lift_weight_gradient` convert to and from the minimal ``K - 1`` coordinates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from surrogate_natgrad import special
from surrogate_natgrad._compat import Array, dtype_tolerance, namespace
from surrogate_natgrad.errors import DataError
from surrogate_natgrad.families._base import ExponentialFamily
from surrogate_natgrad.families.gaussian import _size_tuple

__all__ = ["Mixture", "MixtureMean", "MixtureNatural", "MixtureStandard"]


class MixtureNatural(NamedTuple):
    """Logits ``ν`` (shape ``(..., K)``) and component natural parameters (batch ``(..., K)``).

    Attributes
    ----------
    logits : array, shape (..., K)
        The logits ``ν``.
    components : named tuple of arrays
        The components' natural parameters, with batch shape ``(..., K)``.
    """

    logits: Array
    components: Any


class MixtureMean(NamedTuple):
    """Weights ``π`` and weighted component mean parameters ``π_k m_c(η_k)``.

    Attributes
    ----------
    weights : array, shape (..., K)
        The weights ``π``.
    weighted_components : named tuple of arrays
        ``π_k m_c(η_k)``, with batch shape ``(..., K)``.
    """

    weights: Array
    weighted_components: Any


class MixtureStandard(NamedTuple):
    """Weights ``π`` (summing to one) and component standard parameters.

    Attributes
    ----------
    weights : array, shape (..., K)
        The weights ``π``.
    components : named tuple of arrays
        The components' standard parameters, with batch shape ``(..., K)``.
    """

    weights: Array
    components: Any


class Mixture(ExponentialFamily):
    """Joint exponential family of a ``k``-component mixture of ``component_family``.

    Parameters
    ----------
    component_family : ExponentialFamily
        The components' family (e.g. :class:`Gaussian`, :class:`Gamma`); its parameters get
        an extra batch axis of length ``k`` (the last batch axis).
    k : int
        Number of components (at least one).
    """

    natural_type = MixtureNatural
    mean_type = MixtureMean
    standard_type = MixtureStandard

    def __init__(self, component_family: ExponentialFamily, k: int):
        if int(k) != k or k < 1:
            raise DataError(f"k must be a positive integer, got {k!r}")
        self.component_family = component_family
        self.k = int(k)
        self.event_ndim = component_family.event_ndim
        self.dim = getattr(component_family, "dim", 1)

    def __repr__(self) -> str:
        return f"Mixture({self.component_family!r}, k={self.k})"

    # ------------------------------------------------------------------ layout

    def natural_event_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Return ``(K,)`` for the logits, then ``(K, *event)`` for each component leaf."""
        component = self.component_family.natural_event_shapes()
        return ((self.k,), *((self.k, *shape) for shape in component))

    def leaves(self, params: Any) -> list[Array]:
        """Return ``[logits_or_weights, *component leaves]``."""
        return [params[0], *self.component_family.leaves(params[1])]

    def from_leaves(self, leaves: Any, kind: str = "natural") -> Any:
        """Rebuild mixture natural (or ``kind="mean"``) parameters from leaves."""
        components = self.component_family.from_leaves(leaves[1:], kind)
        cls = self.natural_type if kind == "natural" else self.mean_type
        return cls(leaves[0], components)

    def _per_component(self, values: Array, component_params: Any) -> Any:
        """Multiply each component leaf by ``values`` (shape ``(..., K)``), broadcasting."""
        shapes = self.component_family.natural_event_shapes()
        leaves = self.component_family.leaves(component_params)
        return [
            leaf * values[(..., *([None] * len(shape)))]
            for leaf, shape in zip(leaves, shapes, strict=True)
        ]

    # ------------------------------------------------------------ conversions

    def _log_weights(self, natural: MixtureNatural) -> Array:
        scores = natural.logits + self.component_family.log_partition(natural.components)
        return scores - special.logsumexp(scores, axis=-1, keepdims=True)

    def natural_to_mean(self, natural: MixtureNatural) -> MixtureMean:
        """Return ``(π, π_k m_c(η_k))``."""
        xp = namespace(*self.leaves(natural))
        weights = xp.exp(self._log_weights(natural))
        component_means = self.component_family.natural_to_mean(natural.components)
        weighted = self._per_component(weights, component_means)
        return MixtureMean(weights, self.component_family.from_leaves(weighted, "mean"))

    def mean_to_natural(self, mean: MixtureMean) -> MixtureNatural:
        """Return natural parameters, normalised so that ``A = log Σπ`` (zero for valid π)."""
        xp = namespace(*self.leaves(mean))
        component_means = self.component_family.from_leaves(
            self._per_component(1.0 / mean.weights, mean.weighted_components), "mean"
        )
        components = self.component_family.mean_to_natural(component_means)
        logits = xp.log(mean.weights) - self.component_family.log_partition(components)
        return MixtureNatural(logits, components)

    def standard_to_natural(self, standard: MixtureStandard) -> MixtureNatural:
        """Return natural parameters from weights and component standard parameters."""
        xp = namespace(standard.weights)
        components = self.component_family.standard_to_natural(standard.components)
        logits = xp.log(standard.weights) - self.component_family.log_partition(components)
        return MixtureNatural(logits, components)

    def natural_to_standard(self, natural: MixtureNatural) -> MixtureStandard:
        """Return weights and component standard parameters."""
        xp = namespace(*self.leaves(natural))
        weights = xp.exp(self._log_weights(natural))
        components = self.component_family.natural_to_standard(natural.components)
        return MixtureStandard(weights, components)

    def mean_to_standard(self, mean: MixtureMean) -> MixtureStandard:
        """Return weights and component standard parameters from mean parameters."""
        component_means = self.component_family.from_leaves(
            self._per_component(1.0 / mean.weights, mean.weighted_components), "mean"
        )
        components = self.component_family.mean_to_standard(component_means)
        return MixtureStandard(mean.weights, components)

    def symmetrize(self, params: Any) -> Any:
        """Symmetrise the components' matrix blocks."""
        return type(params)(params[0], self.component_family.symmetrize(params[1]))

    # ---------------------------------------------------- minimal coordinates

    @staticmethod
    def to_minimal_logits(logits: Array) -> Array:
        """Return the minimal logits ``ν_k - ν_K`` for ``k < K`` (shape ``(..., K-1)``).

        Parameters
        ----------
        logits : array, shape (..., K)
            Full logits.

        Returns
        -------
        array, shape (..., K-1)
            The minimal logits.
        """
        return logits[..., :-1] - logits[..., -1:]

    @staticmethod
    def from_minimal_logits(minimal: Array) -> Array:
        """Return full logits ``(ν_1 - ν_K, ..., ν_{K-1} - ν_K, 0)``.

        Parameters
        ----------
        minimal : array, shape (..., K-1)
            Minimal logits.

        Returns
        -------
        array, shape (..., K)
            Full logits, the last one zero.
        """
        xp = namespace(minimal=minimal)
        return xp.concat([minimal, xp.zeros_like(minimal[..., :1])], axis=-1)

    @staticmethod
    def lift_weight_gradient(gradient: Array) -> Array:
        """Lift a gradient over ``K - 1`` minimal weights to ``K`` as ``(g, -Σg)``.

        A step along the lifted gradient keeps ``Σπ = 1``.

        Parameters
        ----------
        gradient : array, shape (..., K-1)
            Gradient with respect to the first ``K - 1`` weights.

        Returns
        -------
        array, shape (..., K)
            The lifted gradient, summing to zero.
        """
        xp = namespace(gradient=gradient)
        return xp.concat([gradient, -xp.sum(gradient, axis=-1, keepdims=True)], axis=-1)

    # ------------------------------------------------------------- densities

    def log_partition(self, natural: MixtureNatural) -> Array:
        """Return ``logsumexp_k(ν_k + A_c(η_k))``."""
        scores = natural.logits + self.component_family.log_partition(natural.components)
        return special.logsumexp(scores, axis=-1)

    def _component_log_probs(self, natural: MixtureNatural, x: Array) -> Array:
        """``log π_k + log q_c(x | η_k)``, shape ``(..., K)``."""
        if x.ndim < self.event_ndim:
            raise DataError(
                f"x must have at least {self.event_ndim} dimension(s), got shape {tuple(x.shape)}"
            )
        expanded = x[(..., None, *([slice(None)] * self.event_ndim))]
        component = self.component_family.log_prob(natural.components, expanded)
        return self._log_weights(natural) + component

    def log_prob(self, natural: MixtureNatural, x: Array) -> Array:
        """Return the marginal ``log q(x) = logsumexp_k(log π_k + log q_c(x | η_k))``."""
        return special.logsumexp(self._component_log_probs(natural, x), axis=-1)

    def log_joint(self, natural: MixtureNatural, x: Array) -> Array:
        """Return ``log q̃(k, x)`` for every component k (shape ``(..., K)``).

        Parameters
        ----------
        natural : MixtureNatural
            Natural parameters of the mixture.
        x : array
            Data points (the component family's event shape).

        Returns
        -------
        array, shape (..., K)
            Joint log-densities of component and point.
        """
        return self._component_log_probs(natural, x)

    def responsibilities(self, natural: MixtureNatural, x: Array) -> Array:
        """Return the posterior component probabilities ``q(k | x)`` (shape ``(..., K)``).

        Parameters
        ----------
        natural : MixtureNatural
            Natural parameters of the mixture.
        x : array
            Data points (the component family's event shape).

        Returns
        -------
        array, shape (..., K)
            Responsibilities, summing to one over the last axis.
        """
        xp = namespace(x=x)
        joint = self._component_log_probs(natural, x)
        return xp.exp(joint - special.logsumexp(joint, axis=-1, keepdims=True))

    def sufficient_statistics(self, x: Array) -> Any:
        """Not defined for the marginal alone (the joint statistic needs k)."""
        raise NotImplementedError("the mixture's statistics need the component label")

    def sample(self, natural: MixtureNatural, rng: Any, size: int | tuple[int, ...] = ()) -> Array:
        """Draw ``x`` of shape ``size + batch + event`` (components by the Gumbel-max trick)."""
        xp = namespace(*self.leaves(natural))
        log_weights = self._log_weights(natural)
        shape = _size_tuple(size) + tuple(log_weights.shape)
        uniform = rng.uniform(shape, dtype=log_weights.dtype)
        tiny = float(xp.finfo(log_weights.dtype).smallest_normal)
        gumbel = -xp.log(-xp.log(xp.clip(uniform, tiny, 1.0 - tiny / 2)))
        labels = xp.argmax(log_weights + gumbel, axis=-1)  # (size + batch)
        draws = self.component_family.sample(natural.components, rng, size)
        # draws: size + batch + (K,) + event; pick the labelled component.
        event = tuple(draws.shape[draws.ndim - self.event_ndim :])
        index = xp.reshape(labels, (*labels.shape, 1, *([1] * len(event))))
        index = xp.broadcast_to(index, (*labels.shape, 1, *event))
        axis = labels.ndim
        picked = xp.take_along_axis(draws, index, axis=axis)
        return xp.squeeze(picked, axis=axis)

    def fisher_vector_product(self, natural: MixtureNatural, vector: Any) -> MixtureNatural:
        """Return ``∇²A v`` in closed form.

        With ``a_k = ν_k + A_c(η_k)``: ``∇²A = Jᵀ(diag π - ππᵀ)J + blockdiag(π_k F_c(η_k))``,
        where ``J`` has rows ``(e_k, m_c(η_k))``.
        """
        xp = namespace(*self.leaves(natural))
        family = self.component_family
        weights = xp.exp(self._log_weights(natural))
        component_means = family.natural_to_mean(natural.components)
        projected = vector[0] + family.pairing(vector[1], component_means)
        centred = weights * (projected - xp.sum(weights * projected, axis=-1, keepdims=True))
        inner = family.fisher_vector_product(natural.components, vector[1])
        mean_part = self._per_component(centred, component_means)
        fisher_part = self._per_component(weights, inner)
        leaves = [m + f for m, f in zip(mean_part, fisher_part, strict=True)]
        return MixtureNatural(centred, family.from_leaves(leaves, "natural"))

    # ---------------------------------------------------------------- domains

    def in_natural_domain(self, natural: MixtureNatural) -> Array:
        """Finite logits and every component inside its natural domain."""
        xp = namespace(*self.leaves(natural))
        finite = xp.all(xp.isfinite(natural.logits), axis=-1)
        return finite & xp.all(self.component_family.in_natural_domain(natural.components), axis=-1)

    def in_mean_domain(self, mean: MixtureMean) -> Array:
        """Positive weights summing to one and every ``m_k = (π_k m_k)/π_k`` in its domain."""
        xp = namespace(*self.leaves(mean))
        weights = mean.weights
        positive = xp.all(xp.isfinite(weights) & (weights > 0), axis=-1)
        tolerance = dtype_tolerance(xp, weights.dtype, power=0.5)
        normalised = xp.abs(xp.sum(weights, axis=-1) - 1.0) <= tolerance
        safe = xp.where(weights > 0, weights, xp.ones_like(weights))
        component_means = self.component_family.from_leaves(
            self._per_component(1.0 / safe, mean.weighted_components), "mean"
        )
        inside = xp.all(self.component_family.in_mean_domain(component_means), axis=-1)
        return positive & normalised & inside

    def _domain_description(self, kind: str) -> str:
        if kind == "natural":
            return "need finite logits and valid component natural parameters"
        return "need positive weights summing to one and valid component mean parameters"
