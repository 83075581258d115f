"""Natural gradient descent with a Monte Carlo Fisher (a baseline for SNGD)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from surrogate_natgrad import _tree
from surrogate_natgrad._compat import Array, asarray, float_dtype, namespace
from surrogate_natgrad.autodiff import AutodiffBackend
from surrogate_natgrad.errors import DataError, DomainError
from surrogate_natgrad.fisher import monte_carlo_fisher, natural_gradient_solve
from surrogate_natgrad.rules._base import (
    Objective,
    Status,
    StepInfo,
    bridge_for,
    concrete_bool,
    tree_is_finite,
    tree_leaves,
    tree_norm,
    tree_where,
)
from surrogate_natgrad.rules.first_order import value_and_grad
from surrogate_natgrad.rules.step_size import (
    select_step,
    validate_count,
    validate_line_search,
    validate_real,
)

__all__ = ["NGDState", "NaturalGradientDescent"]


class NGDState(NamedTuple):
    """State of :class:`NaturalGradientDescent`: parameters and iteration count.

    Attributes
    ----------
    params : pytree of arrays
        The current parameters.
    iteration : array
        Number of steps taken (0-d integer array).
    """

    params: Any
    iteration: Array


@dataclass(frozen=True)
class NaturalGradientDescent:
    """Natural gradient descent ``θ ← θ − ε (F̂ + δI)⁻¹ ∇f`` with a Monte Carlo Fisher ``F̂``.

    Parameters
    ----------
    log_prob : callable
        ``log_prob(params, samples) -> (n,)`` log densities of the distribution being fitted,
        in the same coordinates as the optimised ``params``.
    sampler : callable
        ``sampler(params, n_samples) -> samples`` drawn from the distribution at ``params``
        (typically closing over a :func:`surrogate_natgrad.random.default_rng` generator).
    n_samples : int
        Number of Monte Carlo samples per Fisher estimate.
    damping : float
        Multiple of the identity added to the Fisher before the Cholesky solve.
    step_size : float
        Step size (the largest candidate with a line search).
    line_search : {None, "backtracking", "armijo", "grid"}
        ``"backtracking"`` (= ``"armijo"``) halves the step until the loss decreases
        sufficiently; ``"grid"`` tries ``grid_size`` steps in ``(0, step_size]``.
    grid_size : int
        Number of grid candidates.
    objective_batched : bool
        The objective accepts a leading batch axis (grid evaluated in one call).
    batched_log_prob : bool
        ``log_prob`` broadcasts over a leading axis of the parameters, so the scores come
        from one reverse pass (see :func:`~surrogate_natgrad.fisher.monte_carlo_fisher`).
    backend : str, optional
        Autodiff backend name; by default chosen from the arrays.

    Notes
    -----
    A Fisher estimate that is not positive definite leaves the state unchanged with status
    ``SINGULAR_FISHER``.
    """

    log_prob: Callable[[Any, Any], Array]
    sampler: Callable[[Any, int], Any]
    n_samples: int = 1000
    damping: float = 0.0
    step_size: float = 1.0
    line_search: str | None = None
    grid_size: int = 1000
    objective_batched: bool = False
    batched_log_prob: bool = False
    backend: str | AutodiffBackend | None = None

    def __post_init__(self) -> None:
        for name in ("log_prob", "sampler"):
            if not callable(getattr(self, name)):
                raise DataError(
                    f"{name} must be callable, got {type(getattr(self, name)).__name__}"
                )
        validate_count("n_samples", self.n_samples)
        validate_real("damping", self.damping, positive=False)
        validate_real("step_size", self.step_size, positive=True)
        validate_line_search(self.line_search, (None, "backtracking", "armijo", "grid"))
        validate_count("grid_size", self.grid_size)

    def init(self, params: Any) -> NGDState:
        """Return the initial state at ``params`` (a pytree of arrays).

        Parameters
        ----------
        params : pytree of arrays
            The starting parameters.

        Returns
        -------
        NGDState
            The state at ``params``, iteration 0.
        """
        leaves = tree_leaves(params)
        if not leaves:
            raise DataError("params must contain at least one array")
        xp = namespace(*leaves)
        return NGDState(params, asarray(0.0, xp, dtype=float_dtype(xp, *leaves), like=leaves[0]))

    def direction(self, params: Any, grads: Any) -> Any:
        """Return the natural gradient ``(F̂ + δI)⁻¹ g`` as a pytree like ``params``.

        Parameters
        ----------
        params : pytree of arrays
            The parameters at which the Fisher matrix is estimated.
        grads : pytree of arrays
            The gradient ``g`` of the loss, structured like ``params``.

        Returns
        -------
        pytree of arrays
            The natural-gradient direction, structured like ``params``.

        Raises
        ------
        DomainError
            If the damped Monte Carlo Fisher is not positive definite.
        """
        samples = self.sampler(params, int(self.n_samples))
        fisher = monte_carlo_fisher(
            self.log_prob, params, samples, self.backend, batched_params=self.batched_log_prob
        )
        flat_grad, _ = _tree.ravel_tree(grads)
        _, unravel = _tree.ravel_tree(params)
        return unravel(natural_gradient_solve(fisher, flat_grad, self.damping))

    def step(self, state: NGDState, objective: Objective) -> tuple[NGDState, StepInfo]:
        """Take one natural-gradient step on ``objective(params) -> scalar``.

        Parameters
        ----------
        state : NGDState
            The current state.
        objective : callable
            Maps parameters (a pytree like ``state.params``) to a scalar loss.

        Returns
        -------
        state : NGDState
            The new state (the old one when the step was rejected).
        info : StepInfo
            The loss before the step, the step size taken, the status and the gradient norm.
        """
        bridge = bridge_for(self.backend, state)
        if bridge is not None:
            return bridge.call(self.step, state, objective)
        leaves = tree_leaves(state.params)
        xp = namespace(*leaves)
        like = leaves[0]
        loss, grads = value_and_grad(objective, state.params, self.backend)
        grad_norm = tree_norm(grads, xp)
        finite = xp.logical_and(xp.all(xp.isfinite(loss)), tree_is_finite(grads, xp))
        if concrete_bool(finite) is False:
            # A non-finite loss or gradient: stop here, before the Fisher solve (NaN must not
            # reach a linear solver, some of which raise on it), and keep the state.
            zero = asarray(0.0, xp, dtype=like.dtype, like=like)
            code = asarray(int(Status.NONFINITE), xp, dtype=xp.int32, like=like)
            return NGDState(state.params, state.iteration + 1), StepInfo(
                loss, zero, code, grad_norm
            )
        try:
            direction = self.direction(state.params, grads)
        except DomainError:
            zero = asarray(0.0, xp, dtype=like.dtype, like=like)
            code = asarray(int(Status.SINGULAR_FISHER), xp, dtype=xp.int32, like=like)
            return NGDState(state.params, state.iteration + 1), StepInfo(
                loss, zero, code, grad_norm
            )
        search = "armijo" if self.line_search == "backtracking" else self.line_search
        slope = _tree.tree_vdot(grads, direction)
        new_params, step, status = select_step(
            state.params,
            direction,
            xp=xp,
            step_size=self.step_size,
            line_search=search,
            loss=objective,
            current_loss=loss,
            slope=slope,
            grid_size=self.grid_size,
            batched_loss=objective if (search == "grid" and self.objective_batched) else None,
        )
        finite = xp.all(xp.isfinite(loss))
        status = xp.where(
            finite, status, asarray(int(Status.NONFINITE), xp, dtype=xp.int32, like=like)
        )
        new_params = tree_where(finite, new_params, state.params)
        step = xp.where(finite, step, xp.zeros_like(step))
        return NGDState(new_params, state.iteration + 1), StepInfo(loss, step, status, grad_norm)

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
