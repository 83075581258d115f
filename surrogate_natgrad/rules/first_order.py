"""First-order rules: gradient descent and Adam on an unconstrained parameter pytree.

Both are usable as full rules (``init`` / ``step``) and as pluggable optimisers of auxiliary
parameters inside :class:`~surrogate_natgrad.rules.SNGD` through the low-level pair
``init_optimizer_state(params)`` / ``apply_gradient(params, grads, optimizer_state)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from surrogate_natgrad import _tree, autodiff
from surrogate_natgrad._compat import Array, Namespace, asarray, float_dtype, is_array, namespace
from surrogate_natgrad.autodiff import AutodiffBackend
from surrogate_natgrad.errors import DataError
from surrogate_natgrad.rules._base import (
    Objective,
    Status,
    StepInfo,
    bridge_for,
    tree_is_finite,
    tree_leaves,
    tree_norm,
    tree_vdot,
    tree_where,
)
from surrogate_natgrad.rules.step_size import (
    select_step,
    validate_count,
    validate_line_search,
    validate_real,
)

__all__ = [
    "Adam",
    "AdamMoments",
    "AdamState",
    "GradientDescent",
    "GradientDescentState",
    "value_and_grad",
]

_BASELINE_SEARCHES = (None, "backtracking", "armijo", "grid")


def value_and_grad(
    objective: Objective, params: Any, backend: str | AutodiffBackend | None
) -> tuple[Array, Any]:
    """Return ``(objective(params), gradient)`` from one autodiff call.

    The backend is chosen from the arrays of ``params`` unless ``backend`` names one.
    """
    ad = autodiff.get_backend(backend, *tree_leaves(params))
    loss, grads = ad.value_and_grad(objective)(params)
    return loss, grads


def _namespace_of(params: Any) -> Namespace:
    leaves = tree_leaves(params)
    if not leaves:
        raise DataError("params must contain at least one array")
    for index, leaf in enumerate(leaves):
        if not is_array(leaf):
            raise DataError(
                f"params must be a pytree of arrays; leaf {index} is a {type(leaf).__name__} "
                f"({leaf!r}); convert it first, e.g. with numpy.asarray"
            )
    return namespace(*leaves)


def _counter(xp: Namespace, params: Any) -> Array:
    leaves = tree_leaves(params)
    return asarray(0.0, xp, dtype=float_dtype(xp, *leaves), like=leaves[0])


def _check_positive(name: str, value: float) -> None:
    validate_real(name, value, positive=True)


def baseline_step(
    params: Any,
    objective: Objective,
    direction_fn: Any,
    *,
    backend: str | AutodiffBackend | None,
    step_size: float,
    line_search: str | None,
    grid_size: int,
    objective_batched: bool,
) -> tuple[Any, Array, Array, Array, Any, Any]:
    """Shared step of the baselines on unconstrained parameters.

    ``direction_fn(grads) -> direction`` turns the gradient into a descent direction.
    Returns ``(new_params, loss, step, status, grads, direction)``.
    """
    xp = _namespace_of(params)
    loss, grads = value_and_grad(objective, params, backend)
    direction = direction_fn(grads)
    search = "armijo" if line_search == "backtracking" else line_search
    new_params, step, status = select_step(
        params,
        direction,
        xp=xp,
        step_size=step_size,
        line_search=search,
        loss=objective,
        current_loss=loss,
        slope=tree_vdot(grads, direction, xp),
        grid_size=grid_size,
        batched_loss=objective if (search == "grid" and objective_batched) else None,
    )
    finite = xp.logical_and(xp.all(xp.isfinite(loss)), tree_is_finite(grads, xp))
    nonfinite = asarray(int(Status.NONFINITE), xp, dtype=xp.int32, like=tree_leaves(params)[0])
    status = xp.where(finite, status, nonfinite)
    # A non-finite loss or gradient leaves the parameters where they are.
    new_params = tree_where(finite, new_params, params)
    step = xp.where(finite, step, xp.zeros_like(step))
    return new_params, loss, step, status, grads, direction


class GradientDescentState(NamedTuple):
    """State of :class:`GradientDescent`: the parameters and the iteration count.

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
class GradientDescent:
    """Gradient descent ``params <- params - step_size * grad``.

    Parameters
    ----------
    step_size : float
        Step size (the largest candidate with a line search).
    line_search : {None, "backtracking", "armijo", "grid"}
        ``"backtracking"`` (= ``"armijo"``) halves the step until the loss decreases
        sufficiently; ``"grid"`` tries ``grid_size`` steps in ``(0, step_size]``.
    grid_size : int
        Number of grid candidates.
    objective_batched : bool
        The objective accepts parameters with a leading batch axis and returns losses of
        shape ``(B,)``; the grid is then evaluated in one call.
    backend : str, optional
        Autodiff backend name; by default chosen from the arrays.

    Examples
    --------
    >>> import numpy as np
    >>> rule = GradientDescent(step_size=0.5)
    >>> state = rule.init(np.array([3.0, -1.0]))
    >>> for _ in range(50):
    ...     state, info = rule.step(state, lambda x: (x * x).sum())
    >>> bool(np.allclose(state.params, 0.0))
    True
    """

    step_size: float = 0.1
    line_search: str | None = None
    grid_size: int = 1000
    objective_batched: bool = False
    backend: str | AutodiffBackend | None = None

    def __post_init__(self) -> None:
        _check_positive("step_size", self.step_size)
        validate_line_search(self.line_search, _BASELINE_SEARCHES)
        validate_count("grid_size", self.grid_size)

    def init(self, params: Any) -> GradientDescentState:
        """Return the initial state at ``params`` (an unconstrained pytree of arrays).

        Parameters
        ----------
        params : pytree of arrays
            The starting parameters (unconstrained coordinates).

        Returns
        -------
        GradientDescentState
            The state at ``params``, iteration 0.
        """
        return GradientDescentState(params, _counter(_namespace_of(params), params))

    def step(
        self, state: GradientDescentState, objective: Objective
    ) -> tuple[GradientDescentState, StepInfo]:
        """Take one step on ``objective(params) -> scalar``.

        Parameters
        ----------
        state : GradientDescentState
            The current state.
        objective : callable
            Maps parameters (a pytree like ``state.params``) to a scalar loss.

        Returns
        -------
        state : GradientDescentState
            The new state (the old one when the step was rejected).
        info : StepInfo
            The loss before the step, the step size taken, the status and the gradient norm.
        """
        bridge = bridge_for(self.backend, state)
        if bridge is not None:
            return bridge.call(self.step, state, objective)
        xp = _namespace_of(state.params)
        new_params, loss, step, status, grads, _ = baseline_step(
            state.params,
            objective,
            lambda g: g,
            backend=self.backend,
            step_size=self.step_size,
            line_search=self.line_search,
            grid_size=self.grid_size,
            objective_batched=self.objective_batched,
        )
        info = StepInfo(loss, step, status, tree_norm(grads, xp))
        return GradientDescentState(new_params, state.iteration + 1), info

    def make_step(self, objective: Objective) -> Any:
        """Return ``step(state) -> (state, info)`` for a fixed objective (for ``jax.jit``).

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

    def init_optimizer_state(self, params: Any) -> tuple[()]:
        """Return the optimiser state for auxiliary parameters (none for gradient descent).

        Parameters
        ----------
        params : pytree of arrays
            The auxiliary parameters (unused).

        Returns
        -------
        tuple
            The empty tuple.
        """
        return ()

    def apply_gradient(self, params: Any, grads: Any, optimizer_state: Any) -> tuple[Any, Any]:
        """Return ``(params - step_size * grads, optimizer_state)``.

        Parameters
        ----------
        params : pytree of arrays
            The (auxiliary) parameters.
        grads : pytree of arrays
            The gradient of the loss, structured like ``params``.
        optimizer_state : tuple
            The optimiser state from :meth:`init_optimizer_state` or a previous call.

        Returns
        -------
        params : pytree of arrays
            The updated parameters.
        optimizer_state : tuple
            The updated optimiser state.
        """
        new = _tree.tree_map(lambda p, g: p - self.step_size * g, params, grads)
        return new, optimizer_state


class AdamMoments(NamedTuple):
    """Adam's optimiser state: iteration count and first and second moment estimates.

    Attributes
    ----------
    iteration : array
        Number of updates so far (0-d integer array), for the bias correction.
    first_moment : pytree of arrays
        Exponential moving average of the gradients, structured like the parameters.
    second_moment : pytree of arrays
        Exponential moving average of the squared gradients.
    """

    iteration: Array
    first_moment: Any
    second_moment: Any


class AdamState(NamedTuple):
    """State of :class:`Adam` as a full rule: parameters and moments.

    Attributes
    ----------
    params : pytree of arrays
        The current parameters.
    moments : AdamMoments
        The optimiser state.
    """

    params: Any
    moments: AdamMoments


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba, 2015) with bias correction.

    Parameters
    ----------
    step_size : float
        Learning rate.
    b1, b2 : float
        Decay rates of the first and second moment estimates, in ``[0, 1)``.
    eps : float
        Added to the square root of the second moment.
    backend : str, optional
        Autodiff backend name; by default chosen from the arrays.

    Examples
    --------
    >>> import numpy as np
    >>> rule = Adam(step_size=0.1)
    >>> state = rule.init(np.array([1.0, -2.0]))
    >>> for _ in range(300):
    ...     state, info = rule.step(state, lambda x: ((x - 3.0) ** 2).sum())
    >>> bool(np.allclose(state.params, 3.0, atol=1e-2))
    True
    """

    step_size: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    backend: str | AutodiffBackend | None = None

    def __post_init__(self) -> None:
        _check_positive("step_size", self.step_size)
        for name, value in (("b1", self.b1), ("b2", self.b2)):
            validate_real(name, value, positive=False)
            if not value < 1.0:
                raise DataError(f"{name} must lie in [0, 1), got {value!r}")
        validate_real("eps", self.eps, positive=False)

    def init(self, params: Any) -> AdamState:
        """Return the initial state at ``params`` (an unconstrained pytree of arrays).

        Parameters
        ----------
        params : pytree of arrays
            The starting parameters (unconstrained coordinates).

        Returns
        -------
        AdamState
            The state at ``params``, iteration 0.
        """
        return AdamState(params, self.init_optimizer_state(params))

    def init_optimizer_state(self, params: Any) -> AdamMoments:
        """Return zero moments and iteration count for ``params``.

        Parameters
        ----------
        params : pytree of arrays
            The parameters that the optimiser will update.

        Returns
        -------
        AdamMoments
            Iteration 0 and zero moments shaped like ``params``.
        """
        xp = _namespace_of(params)
        zeros = _tree.tree_map(xp.zeros_like, params)
        return AdamMoments(_counter(xp, params), zeros, zeros)

    def apply_gradient(
        self, params: Any, grads: Any, optimizer_state: AdamMoments
    ) -> tuple[Any, AdamMoments]:
        """Return the parameters and moments after one Adam update with ``grads``.

        Parameters
        ----------
        params : pytree of arrays
            The (auxiliary) parameters.
        grads : pytree of arrays
            The gradient of the loss, structured like ``params``.
        optimizer_state : AdamMoments
            The optimiser state from :meth:`init_optimizer_state` or a previous call.

        Returns
        -------
        params : pytree of arrays
            The updated parameters.
        optimizer_state : AdamMoments
            The updated optimiser state.
        """
        xp = _namespace_of(params)
        iteration = optimizer_state.iteration + 1
        first = _tree.tree_map(
            lambda m, g: self.b1 * m + (1.0 - self.b1) * g, optimizer_state.first_moment, grads
        )
        second = _tree.tree_map(
            lambda v, g: self.b2 * v + (1.0 - self.b2) * (g * g),
            optimizer_state.second_moment,
            grads,
        )
        correction1 = 1.0 - self.b1**iteration
        correction2 = 1.0 - self.b2**iteration

        def update(p: Array, m: Array, v: Array) -> Array:
            return p - self.step_size * (m / correction1) / (xp.sqrt(v / correction2) + self.eps)

        new = _tree.tree_map(update, params, first, second)
        return new, AdamMoments(iteration, first, second)

    def step(self, state: AdamState, objective: Objective) -> tuple[AdamState, StepInfo]:
        """Take one Adam step on ``objective(params) -> scalar``.

        Parameters
        ----------
        state : AdamState
            The current state.
        objective : callable
            Maps parameters (a pytree like ``state.params``) to a scalar loss.

        Returns
        -------
        state : AdamState
            The new state (the old one when the step was rejected).
        info : StepInfo
            The loss before the step, the step size taken, the status and the gradient norm.
        """
        bridge = bridge_for(self.backend, state)
        if bridge is not None:
            return bridge.call(self.step, state, objective)
        xp = _namespace_of(state.params)
        loss, grads = value_and_grad(objective, state.params, self.backend)
        new_params, moments = self.apply_gradient(state.params, grads, state.moments)
        finite = xp.logical_and(
            xp.logical_and(xp.all(xp.isfinite(loss)), tree_is_finite(grads, xp)),
            tree_is_finite(new_params, xp),
        )
        like = tree_leaves(state.params)[0]
        status = xp.where(
            finite,
            asarray(int(Status.OK), xp, dtype=xp.int32, like=like),
            asarray(int(Status.NONFINITE), xp, dtype=xp.int32, like=like),
        )
        kept = AdamState(
            _where_tree(xp, finite, new_params, state.params),
            _where_tree(xp, finite, moments, state.moments),
        )
        step = asarray(self.step_size, xp, dtype=like.dtype, like=like)
        info = StepInfo(
            loss, xp.where(finite, step, xp.zeros_like(step)), status, tree_norm(grads, xp)
        )
        return kept, info

    def make_step(self, objective: Objective) -> Any:
        """Return ``step(state) -> (state, info)`` for a fixed objective (for ``jax.jit``).

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


def _where_tree(xp: Namespace, condition: Array, if_true: Any, if_false: Any) -> Any:
    return _tree.tree_map(lambda a, b: xp.where(condition, a, b), if_true, if_false)
