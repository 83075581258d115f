"""BFGS with an identity initial inverse Hessian and a curvature guard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from surrogate_natgrad import _tree
from surrogate_natgrad._compat import Array, asarray, device, dtype_tolerance, namespace
from surrogate_natgrad.autodiff import AutodiffBackend
from surrogate_natgrad.rules._base import Objective, Status, bridge_for
from surrogate_natgrad.rules.first_order import value_and_grad
from surrogate_natgrad.rules.step_size import (
    select_step,
    validate_count,
    validate_line_search,
    validate_real,
)

__all__ = ["BFGS", "BFGSInfo", "BFGSState"]


class BFGSState(NamedTuple):
    """State of :class:`BFGS`.

    Attributes
    ----------
    params : pytree of arrays
        Current parameters.
    inverse_hessian : array, shape (P, P)
        Current inverse-Hessian approximation over the flattened parameters.
    previous_params, previous_grad : array, shape (P,)
        Flattened parameters and gradient of the previous step (for ``s`` and ``y``).
    iteration : array
        Number of steps taken.
    """

    params: Any
    inverse_hessian: Array
    previous_params: Array
    previous_grad: Array
    iteration: Array


class BFGSInfo(NamedTuple):
    """What a BFGS step reports: :class:`~surrogate_natgrad.rules.StepInfo`'s fields and more.

    Attributes
    ----------
    loss, step_size, status, grad_norm : array
        As in :class:`~surrogate_natgrad.rules.StepInfo`.
    curvature_skipped : array
        True when the inverse-Hessian update was skipped (``sᵀy <= tol |s| |y|``, always on
        the first step).
    """

    loss: Array
    step_size: Array
    status: Array
    grad_norm: Array
    curvature_skipped: Array


@dataclass(frozen=True)
class BFGS:
    """Broyden–Fletcher–Goldfarb–Shanno quasi-Newton descent with ``H₀ = I``.

    Parameters
    ----------
    step_size : float
        Initial step size (the first candidate of the line search).
    line_search : {"backtracking", "armijo", "grid", None}
        ``"backtracking"`` (= ``"armijo"``, the default) halves the step until the loss
        decreases sufficiently; ``"grid"`` tries ``grid_size`` steps in ``(0, step_size]``.
    grid_size : int
        Number of grid candidates.
    objective_batched : bool
        The objective accepts a leading batch axis (grid evaluated in one call).
    curvature_tol : float, optional
        The update is skipped when ``sᵀy <= curvature_tol |s| |y|``; by default
        ``sqrt(eps)`` of the parameters' dtype. Keeps the approximation positive definite
        and never produces NaN.
    backend : str, optional
        Autodiff backend name; by default chosen from the arrays.

    Examples
    --------
    >>> import numpy as np
    >>> rule = BFGS()
    >>> state = rule.init(np.array([-1.2, 1.0]))
    >>> rosenbrock = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    >>> for _ in range(100):
    ...     state, info = rule.step(state, rosenbrock)
    >>> bool(np.allclose(state.params, 1.0, atol=1e-6))
    True
    """

    step_size: float = 1.0
    line_search: str | None = "backtracking"
    grid_size: int = 1000
    objective_batched: bool = False
    curvature_tol: float | None = None
    backend: str | AutodiffBackend | None = None

    def __post_init__(self) -> None:
        validate_real("step_size", self.step_size, positive=True)
        validate_line_search(self.line_search, (None, "backtracking", "armijo", "grid"))
        validate_count("grid_size", self.grid_size)
        if self.curvature_tol is not None:
            validate_real("curvature_tol", self.curvature_tol, positive=False)

    def init(self, params: Any) -> BFGSState:
        """Return the initial state at ``params`` (an unconstrained pytree of arrays).

        Parameters
        ----------
        params : pytree of arrays
            The starting parameters (unconstrained coordinates).

        Returns
        -------
        BFGSState
            The state at ``params``, iteration 0.
        """
        flat, _ = _tree.ravel_tree(params)
        xp = namespace(flat)
        size = int(flat.shape[0])
        identity = xp.eye(size, dtype=flat.dtype, device=device(flat))
        zero = asarray(0.0, xp, dtype=flat.dtype, like=flat)
        # previous_params = params and previous_grad = 0 make s = 0: no update on step one.
        return BFGSState(params, identity, flat, xp.zeros_like(flat), zero)

    def step(self, state: BFGSState, objective: Objective) -> tuple[BFGSState, BFGSInfo]:
        """Take one BFGS step on ``objective(params) -> scalar``.

        Parameters
        ----------
        state : BFGSState
            The current state.
        objective : callable
            Maps parameters (a pytree like ``state.params``) to a scalar loss.

        Returns
        -------
        state : BFGSState
            The new state (the old one when the step was rejected).
        info : BFGSInfo
            The loss before the step, the step size taken, the status and the gradient norm.
        """
        bridge = bridge_for(self.backend, state)
        if bridge is not None:
            return bridge.call(self.step, state, objective)
        flat, unravel = _tree.ravel_tree(state.params)
        xp = namespace(flat)
        loss, grads = value_and_grad(objective, state.params, self.backend)
        grad, _ = _tree.ravel_tree(grads)
        grad = xp.astype(grad, flat.dtype) if grad.dtype != flat.dtype else grad
        inverse_hessian, skipped = self._update(
            xp, state.inverse_hessian, flat - state.previous_params, grad - state.previous_grad
        )
        direction = xp.matmul(inverse_hessian, grad)
        slope = xp.sum(grad * direction)
        # A direction that is not a descent direction (round-off) falls back to the gradient.
        descent = slope > 0
        direction = xp.where(descent, direction, grad)
        slope = xp.where(descent, slope, xp.sum(grad * grad))
        search = "armijo" if self.line_search == "backtracking" else self.line_search

        def flat_loss(x: Array) -> Array:
            return objective(unravel(x))

        batched = None
        if search == "grid" and self.objective_batched:
            batched = self._batched_objective(objective, state.params)
        new_flat, step, status = select_step(
            flat,
            direction,
            xp=xp,
            step_size=self.step_size,
            line_search=search,
            loss=flat_loss,
            current_loss=loss,
            slope=slope,
            grid_size=self.grid_size,
            batched_loss=batched,
        )
        finite = xp.logical_and(xp.all(xp.isfinite(loss)), xp.all(xp.isfinite(grad)))
        status = xp.where(
            finite, status, asarray(int(Status.NONFINITE), xp, dtype=xp.int32, like=flat)
        )
        accepted = status <= int(Status.BACKTRACKED)
        new_flat = xp.where(accepted, new_flat, flat)
        # Only a finite gradient may enter the next curvature pair.
        previous_grad = xp.where(finite, grad, state.previous_grad)
        previous_params = xp.where(finite, flat, state.previous_params)
        new_state = BFGSState(
            unravel(new_flat),
            inverse_hessian,
            previous_params,
            previous_grad,
            state.iteration + 1,
        )
        info = BFGSInfo(
            loss,
            xp.where(accepted, step, xp.zeros_like(step)),
            status,
            xp.sqrt(xp.sum(grad * grad)),
            skipped,
        )
        return new_state, info

    def _update(self, xp: Any, inverse_hessian: Array, s: Array, y: Array) -> tuple[Array, Array]:
        """BFGS update of the inverse Hessian, skipped when the curvature is too small."""
        tol = self.curvature_tol
        if tol is None:
            tol = dtype_tolerance(xp, s.dtype, power=0.5)
        curvature = xp.sum(s * y)
        scale = xp.sqrt(xp.sum(s * s)) * xp.sqrt(xp.sum(y * y))
        usable = xp.logical_and(curvature > tol * scale, xp.isfinite(curvature))
        rho = 1.0 / xp.where(usable, curvature, xp.ones_like(curvature))
        size = int(s.shape[0])
        identity = xp.eye(size, dtype=s.dtype, device=device(s))
        left = identity - rho * (s[:, None] * y[None, :])
        updated = xp.matmul(xp.matmul(left, inverse_hessian), xp.linalg.matrix_transpose(left))
        updated = updated + rho * (s[:, None] * s[None, :])
        usable = xp.logical_and(usable, xp.all(xp.isfinite(updated)))
        return xp.where(usable, updated, inverse_hessian), xp.logical_not(usable)

    def _batched_objective(self, objective: Objective, params: Any) -> Any:
        leaves, treedef = _tree.tree_flatten(params)
        shapes = [tuple(int(n) for n in leaf.shape) for leaf in leaves]

        def batched(flat_batch: Array) -> Array:
            xp = namespace(flat_batch)
            count = int(flat_batch.shape[0])
            pieces, offset = [], 0
            for shape in shapes:
                width = 1
                for n in shape:
                    width *= n
                piece = flat_batch[:, offset : offset + width]
                pieces.append(xp.reshape(piece, (count, *shape)))
                offset += width
            return objective(_tree.tree_unflatten(treedef, pieces))

        return batched

    def make_step(self, objective: Objective) -> Any:
        """Return ``step(state) -> (state, info)`` for a fixed objective.

        Parameters
        ----------
        objective : callable
            Maps parameters to a scalar loss.

        Returns
        -------
        callable
            A pure function ``step(state) -> (state, info)``, equivalent to
            ``self.step(state, objective)``.
        """
        return lambda state: self.step(state, objective)
