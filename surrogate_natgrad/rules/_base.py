"""State, information and status types shared by the update rules.

Every rule is a small immutable object with two pure functions over explicit state:
``rule.init(params, ...) -> state`` and ``rule.step(state, objective) -> (state, info)``.
States and infos are named tuples of arrays, so they are pytrees on every backend and
``jax.jit`` can trace a step.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from surrogate_natgrad import _tree
from surrogate_natgrad._compat import Array, Namespace, namespace
from surrogate_natgrad.autodiff import bridge_for

__all__ = [
    "Objective",
    "Status",
    "StepInfo",
    "bridge_for",
    "concrete_bool",
    "quiet_floating_point",
    "status_name",
    "tree_axpy",
    "tree_is_finite",
    "tree_leaves",
    "tree_norm",
    "tree_vdot",
    "tree_where",
]

#: An objective: target parameters (a pytree of arrays) -> scalar loss.
Objective = Callable[[Any], Array]


class Status(enum.IntEnum):
    """Outcome of one update step, stored as an integer array in :class:`StepInfo`.

    Attributes
    ----------
    OK
        The step was taken with the requested step size.
    BACKTRACKED
        The step was taken with a smaller step size found by backtracking.
    STEP_REJECTED
        No step size worked (backtracking exhausted, or no finite grid candidate);
        the state is returned unchanged.
    OUT_OF_DOMAIN
        A fixed-size step left the domain of the parameters; the state is returned
        unchanged.
    NONFINITE
        The loss, the gradient or the new parameters were not finite; the state is
        returned unchanged.
    SINGULAR_FISHER
        The Fisher matrix was not positive definite (natural gradient descent); the
        state is returned unchanged.
    """

    OK = 0
    BACKTRACKED = 1
    STEP_REJECTED = 2
    OUT_OF_DOMAIN = 3
    NONFINITE = 4
    SINGULAR_FISHER = 5


def status_name(code: Any) -> str:
    """Return the name of a status code (an int or a 0-d integer array).

    Parameters
    ----------
    code : int or array
        A :class:`Status` value.

    Returns
    -------
    str
        The member's name.

    Examples
    --------
    >>> status_name(2)
    'STEP_REJECTED'
    """
    return Status(int(code)).name


class StepInfo(NamedTuple):
    """What one step reports.

    Attributes
    ----------
    loss : array
        The loss at the state *before* the step (from the same autodiff call as the
        gradient).
    step_size : array
        The step size taken (zero when the step was rejected).
    status : array
        An integer :class:`Status` code.
    grad_norm : array
        Euclidean norm of the gradient at the state before the step.
    """

    loss: Array
    step_size: Array
    status: Array
    grad_norm: Array


# One flattening order for the whole library: the rules use the pytree module's own.
tree_leaves = _tree.tree_leaves


def tree_axpy(alpha: Any, direction: Any, params: Any) -> Any:
    """Return ``params + alpha * direction`` leaf by leaf (``alpha`` a scalar or 0-d array)."""
    return _tree.tree_map(lambda d, p: p + alpha * d, direction, params)


def tree_where(condition: Array, if_true: Any, if_false: Any) -> Any:
    """Select between two pytrees of the same structure with a scalar boolean array."""

    def pick(a: Array, b: Array) -> Array:
        xp = namespace(a, b)
        return xp.where(condition, a, b)

    return _tree.tree_map(pick, if_true, if_false)


def tree_is_finite(tree: Any, xp: Namespace) -> Array:
    """Return a 0-d boolean array: are all entries of every leaf finite?"""
    result = None
    for leaf in tree_leaves(tree):
        finite = xp.all(xp.isfinite(leaf))
        result = finite if result is None else xp.logical_and(result, finite)
    if result is None:
        raise ValueError("tree_is_finite needs a pytree with at least one array leaf")
    return result


def tree_norm(tree: Any, xp: Namespace) -> Array:
    """Return the Euclidean norm of all entries of a pytree (a 0-d array)."""
    total = None
    for leaf in tree_leaves(tree):
        part = xp.sum(leaf * leaf)
        total = part if total is None else total + part
    if total is None:
        return xp.asarray(0.0)
    return xp.sqrt(total)


def tree_vdot(a: Any, b: Any, xp: Namespace) -> Array:
    """Return the Euclidean inner product of two pytrees of the same structure."""
    total = None
    for left, right in zip(tree_leaves(a), tree_leaves(b), strict=True):
        part = xp.sum(left * right)
        total = part if total is None else total + part
    if total is None:
        return xp.asarray(0.0)
    return total


def concrete_bool(value: Array) -> bool | None:
    """Return ``bool(value)``, or None when ``value`` is traced (under ``jax.jit``).

    Rules use this to stop a backtracking loop early in eager mode and to fall back to
    evaluating every candidate at once (without Python control flow on array values)
    when traced.
    """
    try:
        return bool(value)
    except TypeError:  # JAX's TracerBoolConversionError derives from TypeError
        return None


@contextmanager
def quiet_floating_point() -> Iterator[None]:
    """Silence floating-point RuntimeWarnings while probing candidate steps.

    Candidate steps outside the domain evaluate to NaN on purpose; they are detected and
    skipped, so NumPy's "invalid value" warnings would only be noise.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield
