"""Step-size policies: fixed, backtracking (domain, optionally Armijo) and grid line search.

All policies move ``params`` to ``params - step * direction``. The fixed and the backtracking
policies avoid Python control flow on array values when the arrays are traced (``jax.jit``):
backtracking then evaluates every candidate ``step_size * 2**-k`` at once and takes the largest
acceptable one with array operations. In eager mode it stops at the first acceptable candidate.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable
from typing import Any

from surrogate_natgrad import _tree
from surrogate_natgrad._compat import Array, Namespace, asarray
from surrogate_natgrad.errors import DataError
from surrogate_natgrad.rules._base import (
    Status,
    concrete_bool,
    quiet_floating_point,
    tree_axpy,
    tree_is_finite,
    tree_leaves,
    tree_where,
)

__all__ = [
    "LINE_SEARCHES",
    "select_step",
    "validate_count",
    "validate_line_search",
    "validate_real",
]

#: Names accepted by the ``line_search`` argument of the rules (None means a fixed step).
LINE_SEARCHES = (None, "backtracking", "armijo", "grid")

DomainCheck = Callable[[Any], Array]
LossFunction = Callable[[Any], Array]


def validate_line_search(line_search: str | None, allowed: tuple[str | None, ...]) -> None:
    """Raise :class:`~surrogate_natgrad.errors.DataError` for an unknown line search name."""
    if line_search not in allowed:
        raise DataError(f"line_search must be one of {allowed!r}, got {line_search!r}")


def validate_real(name: str, value: object, *, positive: bool = True) -> None:
    """Raise :class:`~surrogate_natgrad.errors.DataError` unless ``value`` is a finite number.

    Parameters
    ----------
    name : str
        The argument's name, used in the message.
    value : object
        A Python or NumPy real number (not a bool, string or array).
    positive : bool, optional
        Require ``value > 0`` (otherwise ``value >= 0``).
    """
    wanted = "a positive" if positive else "a non-negative"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DataError(f"{name} must be {wanted} finite number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise DataError(f"{name} must be {wanted} finite number, got {value!r}")


def validate_count(name: str, value: Any, minimum: int = 1) -> None:
    """Raise :class:`~surrogate_natgrad.errors.DataError` unless ``value`` is an int >= minimum.

    Python and NumPy integers are accepted; floats (``2.0``), bools and strings are not.
    """
    try:
        number = operator.index(value) if not isinstance(value, bool) else None
    except TypeError:
        number = None
    if number is None or number < minimum:
        raise DataError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _int_status(xp: Namespace, code: Status, like: Array) -> Array:
    return asarray(int(code), xp, dtype=xp.int32, like=like)


def _scalar(xp: Namespace, value: float, like: Array) -> Array:
    return asarray(value, xp, dtype=like.dtype, like=like)


def select_step(
    params: Any,
    direction: Any,
    *,
    xp: Namespace,
    step_size: float,
    line_search: str | None,
    domain: DomainCheck | None = None,
    loss: LossFunction | None = None,
    current_loss: Array | None = None,
    slope: Array | None = None,
    armijo_c: float = 1e-4,
    max_halvings: int = 20,
    grid_size: int = 1000,
    batched_loss: LossFunction | None = None,
    batched_domain: DomainCheck | None = None,
    batched_domain_and_loss: Callable[[Any], tuple[Array, Array]] | None = None,
) -> tuple[Any, Array, Array]:
    """Choose a step size and return ``(new_params, step_taken, status)``.

    Parameters
    ----------
    params, direction : pytree of arrays
        The current point and the descent direction; candidates are
        ``params - step * direction``.
    xp : namespace
        The array namespace of ``params``.
    step_size : float
        The fixed step size, the first backtracking candidate, or the largest grid step.
    line_search : {None, "backtracking", "armijo", "grid"}
        ``None``: take ``step_size`` (the state is kept, with status ``NONFINITE`` or
        ``OUT_OF_DOMAIN``, if the new point is not finite or not in the domain).
        ``"backtracking"``: halve up to ``max_halvings - 1`` times until the new point is
        finite and in the domain. ``"armijo"``: also until
        ``loss(new) <= current_loss - armijo_c * step * slope``.
        ``"grid"``: evaluate ``grid_size`` equally spaced steps in ``(0, step_size]`` (plus
        20 geometrically shrinking steps below the spacing) and take the lowest finite
        loss, provided it does not exceed ``current_loss`` (when given): a grid step never
        increases the loss.
    domain : callable, optional
        ``domain(params) -> 0-d bool array``; None means every finite point is allowed.
    loss : callable, optional
        ``loss(params) -> scalar``; needed by "armijo" and "grid".
    current_loss, slope : array, optional
        The loss at ``params`` and the directional derivative ``<grad, direction>``
        (for "armijo").
    armijo_c : float
        Sufficient-decrease constant of the Armijo condition.
    max_halvings : int
        Number of backtracking candidates ``step_size * 2**-k``, ``k = 0..max_halvings-1``.
    grid_size : int
        Number of grid candidates.
    batched_loss : callable, optional
        ``batched_loss(params_with_leading_axis) -> losses of shape (B,)``: evaluates all
        grid candidates in one call. Without it the grid is evaluated one candidate at a time.
    batched_domain : callable, optional
        Batched version of ``domain`` (shape ``(B,)``), used with ``batched_loss``.
        Out-of-domain candidates are replaced by ``params`` before ``batched_loss`` sees them
        and then skipped.
    batched_domain_and_loss : callable, optional
        Replaces ``batched_domain`` and ``batched_loss`` in one call, for rules whose domain
        check and loss share expensive work (SNGD's mean → natural solve):
        ``batched_domain_and_loss(candidates) -> (in_domain, losses)``, both of shape
        ``(B,)``. Non-finite candidates are replaced by ``params`` first; the function must
        keep out-of-domain candidates away from the objective itself (their losses are
        skipped).

    Returns
    -------
    new_params : pytree
        The new point, or ``params`` itself when the step was rejected.
    step_taken : array
        The step size taken (0 when rejected).
    status : array
        An int32 :class:`~surrogate_natgrad.rules.Status` code.
    """
    validate_line_search(line_search, LINE_SEARCHES)
    like = tree_leaves(params)[0]
    if line_search is None:
        return _fixed_step(params, direction, xp, step_size, domain, like)
    if line_search == "grid":
        if batched_domain_and_loss is not None:
            return _grid_step(
                params,
                direction,
                xp,
                step_size,
                grid_size,
                domain,
                loss,
                None,
                None,
                like,
                current_loss,
                batched_domain_and_loss,
            )
        if loss is None and batched_loss is None:
            raise DataError("the grid line search needs a loss function")
        return _grid_step(
            params,
            direction,
            xp,
            step_size,
            grid_size,
            domain,
            loss,
            batched_loss,
            batched_domain,
            like,
            current_loss,
        )
    if line_search == "armijo" and (loss is None or current_loss is None or slope is None):
        raise DataError("the Armijo line search needs loss, current_loss and slope")
    return _backtracking_step(
        params,
        direction,
        xp,
        step_size,
        line_search == "armijo",
        domain,
        loss,
        current_loss,
        slope,
        armijo_c,
        max_halvings,
        like,
    )


def _fixed_step(
    params: Any,
    direction: Any,
    xp: Namespace,
    step_size: float,
    domain: DomainCheck | None,
    like: Array,
) -> tuple[Any, Array, Array]:
    step = _scalar(xp, step_size, like)
    candidate = tree_axpy(-step, direction, params)
    finite = tree_is_finite(candidate, xp)
    with quiet_floating_point():
        in_domain = domain(candidate) if domain is not None else finite
    accepted = xp.logical_and(finite, in_domain)
    status = xp.where(
        finite,
        xp.where(
            in_domain, _int_status(xp, Status.OK, like), _int_status(xp, Status.OUT_OF_DOMAIN, like)
        ),
        _int_status(xp, Status.NONFINITE, like),
    )
    new_params = tree_where(accepted, candidate, params)
    return new_params, xp.where(accepted, step, xp.zeros_like(step)), status


def _backtracking_step(
    params: Any,
    direction: Any,
    xp: Namespace,
    step_size: float,
    armijo: bool,
    domain: DomainCheck | None,
    loss: LossFunction | None,
    current_loss: Array | None,
    slope: Array | None,
    armijo_c: float,
    max_halvings: int,
    like: Array,
) -> tuple[Any, Array, Array]:
    if max_halvings < 1:
        raise DataError(f"max_halvings must be at least 1, got {max_halvings}")

    def acceptable(step: Array) -> tuple[Any, Array]:
        candidate = tree_axpy(-step, direction, params)
        ok = tree_is_finite(candidate, xp)
        with quiet_floating_point():
            if domain is not None:
                ok = xp.logical_and(ok, domain(candidate))
            if armijo and concrete_bool(ok) is False:
                return candidate, ok  # eager and already rejected: skip the loss
            if armijo:
                assert loss is not None and current_loss is not None and slope is not None
                # Probe the loss at a safe point when the candidate is invalid, so that
                # out-of-domain parameters never reach the objective when traced.
                safe = tree_where(ok, candidate, params)
                value = loss(safe)
                decrease = value <= current_loss - armijo_c * step * slope
                ok = xp.logical_and(ok, xp.logical_and(xp.isfinite(value), decrease))
        return candidate, ok

    def step_at(k: int) -> Array:
        return _scalar(xp, step_size * 0.5**k, like)

    # Eager mode: stop at the first acceptable candidate (made on demand: the first one
    # usually is).
    for k in range(max_halvings):
        step = step_at(k)
        candidate, ok = acceptable(step)
        decided = concrete_bool(ok)
        if decided is None:  # traced: evaluate all candidates with array operations
            rest = [step_at(j) for j in range(k + 1, max_halvings)]
            verdicts = [ok] + [acceptable(s)[1] for s in rest]
            return _pick_first(params, direction, xp, [step, *rest], verdicts, k, like)
        if decided:
            code = Status.OK if k == 0 else Status.BACKTRACKED
            return candidate, step, _int_status(xp, code, like)
    return params, xp.zeros_like(step_at(0)), _int_status(xp, Status.STEP_REJECTED, like)


def _pick_first(
    params: Any,
    direction: Any,
    xp: Namespace,
    steps: list[Array],
    verdicts: list[Array],
    offset: int,
    like: Array,
) -> tuple[Any, Array, Array]:
    """Take the first acceptable candidate with array operations only (jit-able)."""
    accepted = xp.stack([xp.astype(v, xp.int32) for v in verdicts])
    step_values = xp.stack(steps)
    index = xp.argmax(accepted)  # first maximum: the largest acceptable step
    any_accepted = xp.any(accepted > 0)
    step = xp.where(
        any_accepted,
        xp.take(step_values, xp.reshape(index, (1,)))[0],
        xp.zeros_like(step_values[0]),
    )
    candidate = tree_axpy(-step, direction, params)
    new_params = tree_where(any_accepted, candidate, params)
    first = (index + offset) == 0
    status = xp.where(
        any_accepted,
        xp.where(
            first, _int_status(xp, Status.OK, like), _int_status(xp, Status.BACKTRACKED, like)
        ),
        _int_status(xp, Status.STEP_REJECTED, like),
    )
    return new_params, step, status


def _grid_step(
    params: Any,
    direction: Any,
    xp: Namespace,
    step_size: float,
    grid_size: int,
    domain: DomainCheck | None,
    loss: LossFunction | None,
    batched_loss: LossFunction | None,
    batched_domain: DomainCheck | None,
    like: Array,
    current_loss: Array | None = None,
    batched_domain_and_loss: Callable[[Any], tuple[Array, Array]] | None = None,
) -> tuple[Any, Array, Array]:
    if grid_size < 1:
        raise DataError(f"grid_size must be at least 1, got {grid_size}")
    # Below the grid's spacing, 20 geometrically shrinking steps: when no grid step lowers
    # the loss (a curved valley, the edge of the domain), a shorter one usually does.
    finest = step_size / grid_size
    grid = [finest * 0.5**k for k in range(20, 0, -1)]
    grid += [step_size * (i + 1) / grid_size for i in range(grid_size)]
    if batched_loss is not None or batched_domain_and_loss is not None:
        return _grid_batched(
            params,
            direction,
            xp,
            grid,
            batched_loss,
            batched_domain,
            like,
            current_loss,
            batched_domain_and_loss,
        )
    assert loss is not None
    best_step: Array | None = None
    best_params: Any = None
    # Candidates must not increase the loss (NaN current loss: any finite one will do).
    best_loss = float("inf")
    ceiling = float(current_loss) if current_loss is not None else float("inf")
    if ceiling != ceiling:
        ceiling = float("inf")
    with quiet_floating_point():
        for value in grid:
            step = _scalar(xp, value, like)
            candidate = tree_axpy(-step, direction, params)
            if not bool(tree_is_finite(candidate, xp)):
                continue
            if domain is not None and not bool(domain(candidate)):
                continue
            candidate_loss = float(loss(candidate))
            if candidate_loss == candidate_loss and candidate_loss < best_loss and (
                candidate_loss <= ceiling
            ):  # skips NaN
                best_loss, best_step, best_params = candidate_loss, step, candidate
    if best_step is None:
        return params, _scalar(xp, 0.0, like), _int_status(xp, Status.STEP_REJECTED, like)
    return best_params, best_step, _int_status(xp, Status.OK, like)


def _grid_batched(
    params: Any,
    direction: Any,
    xp: Namespace,
    grid: list[float],
    batched_loss: LossFunction | None,
    batched_domain: DomainCheck | None,
    like: Array,
    current_loss: Array | None = None,
    batched_domain_and_loss: Callable[[Any], tuple[Array, Array]] | None = None,
) -> tuple[Any, Array, Array]:
    steps = asarray(grid, xp, dtype=like.dtype, like=like)
    count = len(grid)

    def stack_candidates(p: Array, d: Array) -> Array:
        shaped = xp.reshape(steps, (count,) + (1,) * p.ndim)
        return p[None, ...] - shaped * d[None, ...]

    def broadcast_current(p: Array) -> Array:
        return xp.broadcast_to(p[None, ...], (count, *p.shape))

    candidates = _tree.tree_map(stack_candidates, params, direction)
    finite = None
    for leaf in tree_leaves(candidates):
        leaf_ok = xp.all(xp.reshape(xp.isfinite(leaf), (count, -1)), axis=1)
        finite = leaf_ok if finite is None else xp.logical_and(finite, leaf_ok)
    valid = finite
    with quiet_floating_point():
        if batched_domain_and_loss is not None:
            safe = _select_rows(xp, valid, candidates, _tree.tree_map(broadcast_current, params))
            inside, losses = batched_domain_and_loss(safe)
            valid = xp.logical_and(valid, inside)
        else:
            assert batched_loss is not None
            if batched_domain is not None:
                safe = _select_rows(
                    xp, valid, candidates, _tree.tree_map(broadcast_current, params)
                )
                valid = xp.logical_and(valid, batched_domain(safe))
            safe = _select_rows(xp, valid, candidates, _tree.tree_map(broadcast_current, params))
            losses = batched_loss(safe)
    usable = xp.logical_and(valid, xp.isfinite(losses))
    if current_loss is not None:
        # Never increase the loss (a NaN current loss accepts any finite candidate).
        no_increase = xp.logical_or(losses <= current_loss, xp.isnan(current_loss))
        usable = xp.logical_and(usable, no_increase)
    masked = xp.where(usable, losses, xp.full_like(losses, float("inf")))
    index = xp.argmin(masked)
    any_usable = xp.any(usable)
    step = xp.where(any_usable, xp.take(steps, xp.reshape(index, (1,)))[0], xp.zeros_like(steps[0]))
    candidate = tree_axpy(-step, direction, params)
    new_params = tree_where(any_usable, candidate, params)
    status = xp.where(
        any_usable, _int_status(xp, Status.OK, like), _int_status(xp, Status.STEP_REJECTED, like)
    )
    return new_params, step, status


def _select_rows(xp: Namespace, rows: Array, if_true: Any, if_false: Any) -> Any:
    """Row-wise select between two batched pytrees (leading axis = candidates)."""

    def pick(a: Array, b: Array) -> Array:
        mask = xp.reshape(rows, (rows.shape[0],) + (1,) * (a.ndim - 1))
        return xp.where(mask, a, b)

    return _tree.tree_map(pick, if_true, if_false)
