"""Surrogate maps: from surrogate (and auxiliary) parameters to target parameters.

SNGD takes natural-gradient steps in the geometry of a cheap surrogate exponential family
``q̃`` while the objective is evaluated on a target distribution ``q_θ``. A
:class:`SurrogateMap` says how: ``θ = to_target(surrogate_standard_params, aux)``, where the
auxiliary parameters ``aux`` (skewness, degrees of freedom) are what the surrogate does not
cover. Auxiliary parameters are optimised in unconstrained coordinates; ``aux_transforms``
maps them to their constrained values (e.g. ``ν = exp(ℓ) + 2``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from surrogate_natgrad import _tree
from surrogate_natgrad._compat import Array, namespace
from surrogate_natgrad.errors import DataError

__all__ = [
    "Bijection",
    "Exp",
    "ExpPlus",
    "Identity",
    "Logit",
    "Softplus",
    "SurrogateMap",
    "identity_map",
]


@runtime_checkable
class Bijection(Protocol):
    """A differentiable bijection from unconstrained reals to a constrained set."""

    def forward(self, unconstrained: Array) -> Array:
        """Map an unconstrained value to the constrained set.

        Parameters
        ----------
        unconstrained : array
            Unconstrained value(s).

        Returns
        -------
        array
            The constrained value, elementwise.
        """
        ...

    def inverse(self, constrained: Array) -> Array:
        """Map a constrained value back to the reals.

        Parameters
        ----------
        constrained : array
            Value(s) in the constrained set.

        Returns
        -------
        array
            The unconstrained value, elementwise.
        """
        ...


@dataclass(frozen=True)
class Identity:
    """The identity bijection (an unconstrained auxiliary parameter)."""

    def forward(self, unconstrained: Array) -> Array:
        """Return the value unchanged."""
        return unconstrained

    def inverse(self, constrained: Array) -> Array:
        """Return the value unchanged."""
        return constrained


@dataclass(frozen=True)
class Exp:
    """Positive values: ``x = exp(u)``."""

    def forward(self, unconstrained: Array) -> Array:
        """Return ``exp(u)``."""
        return namespace(unconstrained).exp(unconstrained)

    def inverse(self, constrained: Array) -> Array:
        """Return ``log(x)``."""
        return namespace(constrained).log(constrained)


@dataclass(frozen=True)
class ExpPlus:
    """Values above ``minimum``: ``x = exp(u) + minimum`` (e.g. ``ν = exp(ℓ) + 2``).

    Parameters
    ----------
    minimum : float
        The lower bound (excluded).
    """

    minimum: float = 0.0

    def forward(self, unconstrained: Array) -> Array:
        """Return ``exp(u) + minimum``."""
        return namespace(unconstrained).exp(unconstrained) + self.minimum

    def inverse(self, constrained: Array) -> Array:
        """Return ``log(x - minimum)``."""
        return namespace(constrained).log(constrained - self.minimum)


@dataclass(frozen=True)
class Softplus:
    """Positive values: ``x = log(1 + exp(u))``."""

    def forward(self, unconstrained: Array) -> Array:
        """Return ``softplus(u)``."""
        from surrogate_natgrad import special

        return special.softplus(unconstrained)

    def inverse(self, constrained: Array) -> Array:
        """Return ``log(expm1(x))``, computed stably as ``x + log(-expm1(-x))``."""
        xp = namespace(constrained)
        return constrained + xp.log(-xp.expm1(-constrained))


@dataclass(frozen=True)
class Logit:
    """Values in ``(low, high)``: ``x = low + (high - low) * sigmoid(u)``.

    Parameters
    ----------
    low, high : float
        The bounds (excluded); ``(0, 1)`` by default.
    """

    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise DataError(f"Logit needs low < high, got low={self.low!r}, high={self.high!r}")

    def forward(self, unconstrained: Array) -> Array:
        """Return ``low + (high - low) * sigmoid(u)``."""
        from surrogate_natgrad import special

        xp = namespace(unconstrained)
        sigmoid = xp.exp(special.log_sigmoid(unconstrained))
        return self.low + (self.high - self.low) * sigmoid

    def inverse(self, constrained: Array) -> Array:
        """Return ``log(p) - log(1 - p)`` with ``p = (x - low) / (high - low)``."""
        xp = namespace(constrained)
        fraction = (constrained - self.low) / (self.high - self.low)
        return xp.log(fraction) - xp.log1p(-fraction)


def _is_bijection(value: object) -> bool:
    return (
        hasattr(value, "forward")
        and hasattr(value, "inverse")
        and not isinstance(value, tuple | list | dict)
    )


def _apply_transforms(transforms: Any, values: Any, method: str, path: str = "aux") -> Any:
    """Apply ``transforms`` (a pytree of bijections) leaf-wise to ``values``."""
    if transforms is None:
        return values
    if _is_bijection(transforms):
        return _tree.tree_map(getattr(transforms, method), values)
    if isinstance(transforms, dict):
        if not isinstance(values, dict) or set(values) != set(transforms):
            raise DataError(
                f"{path} must be a dict with keys {sorted(transforms)!r} matching "
                f"aux_transforms, got {values!r}"
            )
        return {
            key: _apply_transforms(t, values[key], method, f"{path}[{key!r}]")
            for key, t in transforms.items()
        }
    if isinstance(transforms, tuple | list):
        if not isinstance(values, tuple | list) or len(values) != len(transforms):
            raise DataError(
                f"{path} must be a sequence of {len(transforms)} values matching aux_transforms"
            )
        mapped = [
            _apply_transforms(t, v, method, f"{path}[{i}]")
            for i, (t, v) in enumerate(zip(transforms, values, strict=True))
        ]
        if hasattr(values, "_fields"):  # a named tuple keeps its type
            return type(values)(*mapped)
        return type(values)(mapped)
    raise DataError(
        f"aux_transforms must be a bijection or a dict/tuple/list of bijections, "
        f"got {type(transforms).__name__}"
    )


@dataclass(frozen=True)
class SurrogateMap:
    """A surrogate exponential family and a map from its parameters to target parameters.

    Parameters
    ----------
    family : exponential family
        The surrogate (e.g. ``families.Gaussian(d)``), whose natural and mean parameters SNGD
        updates.
    to_target : callable
        ``to_target(surrogate_standard_params, aux) -> target_params`` (a pytree of arrays);
        ``aux`` holds the *constrained* auxiliary values (``()`` when there are none).
        Written with array-API operations so that every autodiff backend can differentiate
        it.
    from_target : callable, optional
        ``from_target(target_params) -> (surrogate_standard_params, aux)``, for initialising
        from target parameters.
    aux_transforms : bijection or dict/tuple/list of bijections, optional
        How each auxiliary parameter is constrained (``Identity()``, ``Exp()``,
        ``ExpPlus(2.0)``, ``Softplus()``, ``Logit()``); None means no auxiliary parameters
        or all unconstrained.
    domain : callable, optional
        ``domain(surrogate_standard_params) -> 0-d bool array``: where the map is defined
        beyond the surrogate family's own domain (e.g. ``0 < β < 1`` for the negative
        binomial); None means everywhere.
    name : str, optional
        Names a map whose derivatives an objective knows in closed form (an objective's
        ``loss_and_natural_gradient`` recognises it; see
        :func:`surrogate_natgrad.rules.sngd_direction`), e.g. ``"skew_centred"`` for
        :func:`~surrogate_natgrad.distributions.SkewNormal.surrogate_map`. None (default)
        for any other map.

    Examples
    --------
    A Student-t-like target parameterised by the Gaussian surrogate's mean and covariance and
    a degrees-of-freedom ``ν = exp(ℓ) + 2``:

    >>> from surrogate_natgrad.maps import ExpPlus, SurrogateMap
    >>> def to_target(gaussian, aux):
    ...     mean, covariance = gaussian
    ...     return {"loc": mean, "scale": covariance, "df": aux["df"]}
    >>> def from_target(target):
    ...     return (target["loc"], target["scale"]), {"df": target["df"]}
    >>> student_map = SurrogateMap(
    ...     family=None,  # e.g. families.Gaussian(3)
    ...     to_target=to_target,
    ...     from_target=from_target,
    ...     aux_transforms={"df": ExpPlus(2.0)},
    ... )
    """

    family: Any
    to_target: Callable[[Any, Any], Any]
    from_target: Callable[[Any], tuple[Any, Any]] | None = None
    aux_transforms: Any = None
    domain: Callable[[Any], Array] | None = field(default=None)
    name: str | None = None

    def __post_init__(self) -> None:
        if not callable(self.to_target):
            raise DataError(f"to_target must be callable, got {type(self.to_target).__name__}")
        if self.from_target is not None and not callable(self.from_target):
            raise DataError("from_target must be callable or None")
        if self.domain is not None and not callable(self.domain):
            raise DataError("domain must be callable or None")
        if self.name is not None and not isinstance(self.name, str):
            raise DataError(f"name must be a string or None, got {type(self.name).__name__}")

    def aux_forward(self, unconstrained_aux: Any) -> Any:
        """Map unconstrained auxiliary parameters to their constrained values.

        Parameters
        ----------
        unconstrained_aux : pytree of arrays
            Auxiliary parameters in unconstrained coordinates (the layout of ``aux_transforms``).

        Returns
        -------
        pytree of arrays
            The constrained values, same structure.
        """
        return _apply_transforms(self.aux_transforms, unconstrained_aux, "forward")

    def aux_inverse(self, constrained_aux: Any) -> Any:
        """Map constrained auxiliary values to unconstrained coordinates.

        Parameters
        ----------
        constrained_aux : pytree of arrays
            Auxiliary values in their constrained sets.

        Returns
        -------
        pytree of arrays
            The unconstrained coordinates, same structure.
        """
        return _apply_transforms(self.aux_transforms, constrained_aux, "inverse")

    def in_domain(self, surrogate_standard_params: Any) -> Array | bool:
        """Return whether the map is defined at ``surrogate_standard_params``.

        The surrogate family's own domain is checked separately by the rules.

        Parameters
        ----------
        surrogate_standard_params : named tuple of arrays
            The surrogate's standard parameters.

        Returns
        -------
        array of bool or bool
            The map's ``domain`` flags, or True (a Python bool) when the map has no ``domain``.
        """
        if self.domain is None:
            return True
        return self.domain(surrogate_standard_params)

    def target(self, surrogate_standard_params: Any, aux: Any = ()) -> Any:
        """Return the target parameters for surrogate standard params and *constrained* aux.

        Parameters
        ----------
        surrogate_standard_params : named tuple of arrays
            The surrogate's standard parameters.
        aux : pytree of arrays, optional
            Constrained auxiliary values (``()`` when there are none).

        Returns
        -------
        pytree of arrays
            The target parameters, ``to_target(surrogate_standard_params, aux)``.
        """
        return self.to_target(surrogate_standard_params, aux)

    def initial(self, target_params: Any) -> tuple[Any, Any]:
        """Return ``(surrogate_standard_params, constrained_aux)`` for ``target_params``.

        Parameters
        ----------
        target_params : pytree of arrays
            Target parameters to start from.

        Returns
        -------
        surrogate_standard_params : named tuple of arrays
            The surrogate's standard parameters.
        constrained_aux : pytree of arrays
            The auxiliary values (``()`` when there are none).

        Raises
        ------
        DataError
            If the map has no ``from_target``.
        """
        if self.from_target is None:
            raise DataError(
                "this SurrogateMap has no from_target; pass surrogate standard parameters "
                "(and aux) to the rule's init instead"
            )
        return self.from_target(target_params)


def identity_map(family: Any) -> SurrogateMap:
    """Return the map whose target parameters are the surrogate's standard parameters.

    With it SNGD is exactly natural gradient descent on ``family``.

    Parameters
    ----------
    family : exponential family
        The family (surrogate and target at once).

    Returns
    -------
    SurrogateMap
        ``to_target(std, aux) = std``, ``from_target(std) = (std, ())``.
    """
    return SurrogateMap(
        family=family,
        to_target=lambda standard, aux: standard,
        from_target=lambda standard: (standard, ()),
    )
