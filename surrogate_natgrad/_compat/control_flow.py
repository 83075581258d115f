"""Loops over array state that stay compact under ``jax.jit`` (array layer).

Iterative solvers written against the array API (a Newton iteration in a family's
mean → natural map, say) run a Python loop that stops as soon as every element has
converged. Under ``jax.jit`` the arrays are abstract: the stopping test has no value, and a
Python loop would be unrolled into one copy of its body per iteration (a 60-step Newton
solve took about 25 s to compile). :func:`while_loop` hands such a loop to
``jax.lax.while_loop`` when its state is traced by JAX, and runs it in Python otherwise,
stopping early on concrete arrays of any library.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

from surrogate_natgrad._tree import tree_leaves

__all__ = ["is_jax_traced", "while_loop"]

State = TypeVar("State")


def is_jax_traced(*values: Any) -> bool:
    """Return True if any array leaf of ``values`` is a JAX tracer (inside a transform).

    Parameters
    ----------
    *values : pytree of arrays
        Arrays, or tuples/lists/dicts of arrays.

    Returns
    -------
    bool
        False when JAX has not been imported at all (no JAX array can exist then).
    """
    if "jax" not in sys.modules:
        return False
    import jax

    return any(isinstance(leaf, jax.core.Tracer) for leaf in tree_leaves(values))


def _concrete_truth(flag: Any) -> bool | None:
    """``bool(flag)``, or None where the flag has no value (torch.func.vmap, tracers)."""
    try:
        return bool(flag)
    except Exception:
        return None


def while_loop(
    cond: Callable[[State], Any],
    body: Callable[[State], State],
    state: State,
    *,
    max_iter: int,
) -> State:
    """Apply ``body`` to ``state`` while ``cond(state)`` holds, at most ``max_iter`` times.

    Parameters
    ----------
    cond : callable
        ``cond(state) -> 0-d bool array`` (or a Python bool): whether to run ``body`` again.
    body : callable
        ``body(state) -> state`` with the same structure, shapes and dtypes.
    state : pytree of arrays
        The loop state (a tuple of arrays, say).
    max_iter : int
        The largest number of iterations.

    Returns
    -------
    pytree of arrays
        The final state.

    Notes
    -----
    Under a JAX transformation (``jit``, ``vmap``, ``grad`` of code around the loop) the loop
    becomes ``jax.lax.while_loop`` with an iteration counter, so the compiled program holds
    one copy of ``body`` whatever ``max_iter`` is. It is not differentiated through (solvers
    register their derivatives separately, e.g. with
    :func:`surrogate_natgrad.autodiff.implicit_root`). Elsewhere the loop runs in Python
    and stops at the first false ``cond``; where ``cond`` cannot be read (inside
    ``torch.func.vmap``) it runs all ``max_iter`` iterations, so ``body`` must leave
    finished elements unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> state = (np.array([1.0, 3.0]), np.array(0))
    >>> final = while_loop(
    ...     lambda s: bool(np.any(s[0] < 10)), lambda s: (s[0] * 2, s[1] + 1), state, max_iter=10
    ... )
    >>> final[0].tolist(), int(final[1])
    ([16.0, 48.0], 4)
    """
    if is_jax_traced(state):
        import jax
        import jax.numpy as jnp

        def jax_cond(carry: tuple[Any, State]) -> Any:
            count, inner = carry
            return jnp.logical_and(count < max_iter, cond(inner))

        def jax_body(carry: tuple[Any, State]) -> tuple[Any, State]:
            count, inner = carry
            return count + 1, body(inner)

        return jax.lax.while_loop(jax_cond, jax_body, (jnp.asarray(0), state))[1]
    for _ in range(max_iter):
        if _concrete_truth(cond(state)) is False:
            break
        state = body(state)
    return state
