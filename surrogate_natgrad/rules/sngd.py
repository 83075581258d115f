"""Surrogate natural gradient descent (SNGD), in its MLE and VI forms.

For a minimal exponential family with natural parameters ``η`` and mean parameters
``m = ∇A(η)``, the Fisher is ``F = ∂m/∂η``, so the natural gradient with respect to ``η`` is
the ordinary gradient with respect to ``m`` and vice versa. SNGD therefore needs no Fisher
matrix:

- **MLE form** (state: mean params ``m``): ``η = η(m)``; ``g = ∇_η f(θ(η, λ))``;
  ``m ← m − ε g``.
- **VI form** (state: natural params ``η``): ``m = m(η)``; ``g = ∇_m f(θ(m, λ))``;
  ``η ← η − ε g``.

``f`` is the objective evaluated on the *target* parameters ``θ = to_target(...)`` of a
:class:`~surrogate_natgrad.maps.SurrogateMap`. The gradient of the auxiliary parameters ``λ``
comes from the same autodiff call; they are updated by a first-order rule (Adam by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from surrogate_natgrad import _tree, autodiff
from surrogate_natgrad._compat import Array, Namespace, asarray, float_dtype, namespace
from surrogate_natgrad.autodiff import AutodiffBackend
from surrogate_natgrad.errors import DataError
from surrogate_natgrad.maps import SurrogateMap
from surrogate_natgrad.rules._base import (
    Objective,
    Status,
    StepInfo,
    bridge_for,
    quiet_floating_point,
    tree_is_finite,
    tree_leaves,
    tree_norm,
    tree_vdot,
    tree_where,
)
from surrogate_natgrad.rules.first_order import Adam
from surrogate_natgrad.rules.step_size import (
    LINE_SEARCHES,
    select_step,
    validate_count,
    validate_line_search,
    validate_real,
)

__all__ = ["SNGD", "SNGDDirection", "SNGDState", "sngd_direction"]

_FORMS = ("mle", "vi")


class SNGDState(NamedTuple):
    """State of :class:`SNGD`.

    Attributes
    ----------
    surrogate_params : named tuple of arrays
        The surrogate's mean parameters (MLE form) or natural parameters (VI form).
    aux : pytree of arrays
        Unconstrained auxiliary parameters (``()`` when there are none).
    aux_state : pytree
        State of the auxiliary optimiser.
    iteration : array
        Number of steps taken.
    """

    surrogate_params: Any
    aux: Any
    aux_state: Any
    iteration: Array


class SNGDDirection(NamedTuple):
    """One SNGD direction: the loss, the surrogate direction and the auxiliary gradient.

    Attributes
    ----------
    loss : array
        The objective at the current point.
    direction : named tuple of arrays
        ``∇_η f`` (MLE form, to subtract from the mean parameters) or ``∇_m f`` (VI form,
        to subtract from the natural parameters), with symmetric matrix blocks.
    aux_grad : pytree of arrays
        Gradient with respect to the unconstrained auxiliary parameters (``()`` if none).
    """

    loss: Array
    direction: Any
    aux_grad: Any


def _check_form(form: str) -> None:
    if form not in _FORMS:
        raise DataError(f"form must be 'mle' or 'vi', got {form!r}")


def _dual_and_converter(surrogate_map: SurrogateMap, form: str, surrogate_params: Any) -> Any:
    """Return the dual coordinates (values only) and the map from them to standard params."""
    family = surrogate_map.family
    if form == "mle":
        return family.mean_to_natural(surrogate_params), family.natural_to_standard
    return family.natural_to_mean(surrogate_params), family.mean_to_standard


def sngd_direction(
    surrogate_map: SurrogateMap,
    surrogate_params: Any,
    objective: Objective,
    *,
    form: str = "mle",
    aux: Any = (),
    backend: str | AutodiffBackend | None = None,
) -> SNGDDirection:
    """Compute the SNGD direction once (one reverse-mode autodiff call).

    Parameters
    ----------
    surrogate_map : SurrogateMap
        The surrogate family and the map to target parameters.
    surrogate_params : named tuple of arrays
        Mean parameters (``form="mle"``) or natural parameters (``form="vi"``).
    objective : callable
        ``objective(target_params) -> scalar loss``. In the MLE form, an objective that
        also has a method ``loss_and_natural_gradient(surrogate_map, mean_params, aux,
        backend)`` (``aux`` constrained) returning ``(loss, natural_gradient,
        aux_gradient)`` or None supplies the direction in closed form when it returns one
        (:meth:`Distribution.loss_and_natural_gradient
        <surrogate_natgrad.distributions.Distribution.loss_and_natural_gradient>`; the
        objectives of :func:`~surrogate_natgrad.fit` do).
    form : {"mle", "vi"}
        Which SNGD form.
    aux : pytree of arrays
        *Unconstrained* auxiliary parameters (``()`` when there are none).
    backend : str, optional
        Autodiff backend name; by default chosen from the arrays.

    Returns
    -------
    SNGDDirection
        The loss, the natural-gradient direction for ``surrogate_params`` and the ordinary
        gradient for ``aux``.
    """
    _check_form(form)
    family = surrogate_map.family
    # A user-supplied gradient keeps its own coordinates (the natural ones) and route.
    if form == "mle" and not _supplies_gradient(backend):
        supplied = _objective_direction(surrogate_map, surrogate_params, objective, aux, backend)
        if supplied is not None:
            return supplied
        if getattr(family, "has_natural_cotangent", False):
            # Differentiate in the standard parameters, which the mean parameters give
            # without a factorisation, and chain into the natural ones in closed form: the
            # round trip mean → natural → standard costs a Gaussian two factorisations, two
            # inverses and their derivatives, O(d³) each.
            standard = family.mean_to_standard(surrogate_params)
            found = _gradients(surrogate_map, standard, _same, objective, aux, backend)
            direction = family.natural_cotangent(standard, found.direction)
            return SNGDDirection(
                found.loss, _as_layout(surrogate_params, direction), found.aux_grad
            )
    dual, to_standard = _dual_and_converter(surrogate_map, form, surrogate_params)
    found = _gradients(surrogate_map, dual, to_standard, objective, aux, backend)
    # Matrix blocks are stored in full (non-minimal) coordinates; a symmetric gradient keeps
    # the updated parameters symmetric.
    direction = family.symmetrize(found.direction)
    return SNGDDirection(found.loss, _as_layout(surrogate_params, direction), found.aux_grad)


def _objective_direction(
    surrogate_map: SurrogateMap,
    mean_params: Any,
    objective: Objective,
    aux: Any,
    backend: str | AutodiffBackend | None,
) -> SNGDDirection | None:
    """The direction from the objective's own ``loss_and_natural_gradient``, or None."""
    supply = getattr(objective, "loss_and_natural_gradient", None)
    if supply is None:
        return None
    ad = autodiff.get_backend(backend, *tree_leaves(mean_params), *tree_leaves(aux))
    has_aux = bool(tree_leaves(aux))
    constrained = surrogate_map.aux_forward(aux) if has_aux else aux
    found = supply(surrogate_map, mean_params, constrained, ad)
    if found is None:
        return None
    loss, natural_gradient, constrained_grad = found
    aux_grad = aux
    if has_aux:
        # The objective differentiates in the constrained values; chain to the rule's.
        _, pullback = ad.vjp(surrogate_map.aux_forward, aux)
        aux_grad = pullback(constrained_grad)[0]
    return SNGDDirection(loss, _as_layout(mean_params, natural_gradient), aux_grad)


def _same(params: Any) -> Any:
    return params


def _supplies_gradient(backend: str | AutodiffBackend | None) -> bool:
    """Whether ``backend`` is a user-supplied gradient (it fixes the coordinates)."""
    return isinstance(backend, autodiff.CustomGradient)


def _gradients(
    surrogate_map: SurrogateMap,
    params: Any,
    to_standard: Any,
    objective: Objective,
    aux: Any,
    backend: str | AutodiffBackend | None,
) -> SNGDDirection:
    """The loss and its gradients in ``params`` and in ``aux`` (one reverse pass).

    ``to_standard`` maps ``params`` to the surrogate's standard parameters.
    """
    has_aux = bool(tree_leaves(aux))
    ad = autodiff.get_backend(backend, *tree_leaves(params), *tree_leaves(aux))

    def loss_of(own_params: Any, unconstrained_aux: Any) -> Array:
        return objective(
            surrogate_map.to_target(
                to_standard(own_params), surrogate_map.aux_forward(unconstrained_aux)
            )
        )

    if has_aux:
        loss, (grad, aux_grad) = ad.value_and_grad(lambda both: loss_of(*both))((params, aux))
    else:
        loss, grad = ad.value_and_grad(lambda own: loss_of(own, aux))(params)
        aux_grad = aux
    return SNGDDirection(loss, grad, aux_grad)


def _as_layout(surrogate_params: Any, direction: Any) -> Any:
    """``direction`` rebuilt with the (possibly nested) named-tuple structure of the state."""
    if hasattr(surrogate_params, "_fields") and not isinstance(direction, type(surrogate_params)):
        # E.g. a mixture's MixtureMean(weights, GammaMean(...)): flattening to leaves alone
        # loses the nesting.
        from surrogate_natgrad import _tree

        direction = _tree.tree_unflatten(
            _tree.tree_structure(surrogate_params), tree_leaves(direction)
        )
    return direction


#: Most doublings of an auxiliary step that keeps lowering the loss (see ``SNGD._safe_aux``).
AUX_MAX_DOUBLINGS = 10


@dataclass(frozen=True)
class SNGD:
    """Surrogate natural gradient descent (So & Turner, 2024).

    Parameters
    ----------
    surrogate_map : SurrogateMap
        The surrogate exponential family and the map to target parameters.
    form : {"mle", "vi"}
        ``"mle"`` keeps mean parameters and steps along ``∇_η f`` (moment matching at step
        1 for a Gaussian MLE); ``"vi"`` keeps natural parameters and steps along ``∇_m f``
        (exact in one step for conjugate models).
    step_size : float
        Step size ε (the first candidate for backtracking, the largest grid step).
    line_search : {None, "backtracking", "armijo", "grid"}
        ``None``: fixed step; a step that leaves the domain or is not finite is refused
        (state kept, status ``OUT_OF_DOMAIN``/``NONFINITE``). ``"backtracking"``: halve up
        to 19 times until the new point is in the surrogate's domain (mean domain for MLE,
        natural domain for VI, and the map's ``domain``). ``"armijo"``: also until
        ``loss(new) <= loss - armijo_c * ε * |g|²``. ``"grid"``: try ``grid_size`` steps in
        ``(0, step_size]`` and take the lowest finite loss. When nothing works the old state
        is returned with status ``STEP_REJECTED``.
    aux_rule : first-order rule
        Optimiser of the auxiliary parameters (anything with ``init_optimizer_state`` and
        ``apply_gradient``, e.g. :class:`Adam` or :class:`GradientDescent`).
    grid_size : int
        Number of grid candidates.
    objective_batched : bool
        Opt in to evaluating the grid in one call. Contract: the family's conversions, the
        map's ``to_target`` and the objective accept surrogate parameters with a leading
        batch axis ``B`` (the auxiliary values stay unbatched) and
        ``objective(batched_target_params)`` returns losses of shape ``(B,)``; the family's
        domain check must return shape ``(B,)`` too.
    armijo_c : float
        Sufficient-decrease constant of ``"armijo"`` (0 asks only for no increase).
    max_halvings : int
        Number of backtracking candidates ``ε 2^{-k}``, ``k = 0..max_halvings-1``.
    backend : str, optional
        Autodiff backend name; by default chosen from the arrays.

    Notes
    -----
    Fixed-step and ``"backtracking"`` steps are pure functions of the state without Python
    control flow on array values when traced, so ``jax.jit(rule.make_step(objective))`` works.
    """

    surrogate_map: SurrogateMap
    form: str = "mle"
    step_size: float = 1.0
    line_search: str | None = None
    aux_rule: Any = field(default_factory=lambda: Adam(step_size=1e-2))
    grid_size: int = 1000
    objective_batched: bool = False
    armijo_c: float = 0.0
    max_halvings: int = 20
    backend: str | AutodiffBackend | None = None

    def __post_init__(self) -> None:
        _check_form(self.form)
        validate_line_search(self.line_search, LINE_SEARCHES)
        validate_real("step_size", self.step_size, positive=True)
        validate_count("grid_size", self.grid_size)
        validate_count("max_halvings", self.max_halvings)
        validate_real("armijo_c", self.armijo_c, positive=False)
        for method in ("init_optimizer_state", "apply_gradient"):
            if not callable(getattr(self.aux_rule, method, None)):
                raise DataError(
                    "aux_rule must be a first-order rule with init_optimizer_state and "
                    f"apply_gradient (e.g. Adam()), got {type(self.aux_rule).__name__}"
                )
        if not isinstance(self.surrogate_map, SurrogateMap):
            raise DataError(
                f"surrogate_map must be a SurrogateMap, got {type(self.surrogate_map).__name__}"
            )

    # ------------------------------------------------------------------ initialisation
    def init(self, surrogate_standard_params: Any, aux: Any = ()) -> SNGDState:
        """Return the initial state.

        Parameters
        ----------
        surrogate_standard_params : named tuple of arrays
            The surrogate's standard parameters (e.g. ``(mean, covariance)``).
        aux : pytree of arrays
            *Constrained* auxiliary values (e.g. ``{"df": ν}``), ``()`` if none.

        Returns
        -------
        SNGDState
            The state at these parameters, iteration 0.
        """
        family = self.surrogate_map.family
        if self.form == "mle":
            params = family.standard_to_mean(surrogate_standard_params)
        else:
            params = family.standard_to_natural(surrogate_standard_params)
        unconstrained = self.surrogate_map.aux_inverse(aux) if tree_leaves(aux) else aux
        aux_state = (
            self.aux_rule.init_optimizer_state(unconstrained) if tree_leaves(unconstrained) else ()
        )
        leaves = tree_leaves(params)
        xp = namespace(*leaves)
        iteration = asarray(0.0, xp, dtype=float_dtype(xp, *leaves), like=leaves[0])
        return SNGDState(params, unconstrained, aux_state, iteration)

    def init_from_target(self, target_params: Any) -> SNGDState:
        """Return the initial state from target parameters via the map's ``from_target``.

        Parameters
        ----------
        target_params : pytree of arrays
            The target's parameters.

        Returns
        -------
        SNGDState
            The state at these parameters, iteration 0.
        """
        standard, aux = self.surrogate_map.initial(target_params)
        return self.init(standard, aux)

    # ------------------------------------------------------------------ read-out
    def standard_params(self, state: SNGDState) -> Any:
        """Return the surrogate's standard parameters at ``state``.

        Parameters
        ----------
        state : SNGDState
            A state of this rule.

        Returns
        -------
        named tuple of arrays
            The surrogate's standard parameters.
        """
        family = self.surrogate_map.family
        if self.form == "mle":
            return family.mean_to_standard(state.surrogate_params)
        return family.natural_to_standard(state.surrogate_params)

    def aux_params(self, state: SNGDState) -> Any:
        """Return the constrained auxiliary values at ``state``.

        Parameters
        ----------
        state : SNGDState
            A state of this rule.

        Returns
        -------
        pytree of arrays
            The auxiliary values (``()`` if the map has none).
        """
        if not tree_leaves(state.aux):
            return state.aux
        return self.surrogate_map.aux_forward(state.aux)

    def target_params(self, state: SNGDState) -> Any:
        """Return the target parameters at ``state``.

        Parameters
        ----------
        state : SNGDState
            A state of this rule.

        Returns
        -------
        pytree of arrays
            The target's parameters, through the map's ``to_target``.
        """
        return self.surrogate_map.to_target(self.standard_params(state), self.aux_params(state))

    # ------------------------------------------------------------------ stepping
    def _standard_of(self, params: Any) -> Any:
        family = self.surrogate_map.family
        if self.form == "mle":
            return family.mean_to_standard(params)
        return family.natural_to_standard(params)

    def _in_domain(self, params: Any, xp: Namespace) -> Array:
        family = self.surrogate_map.family
        if self.form == "mle":
            inside = family.in_mean_domain(params)
        else:
            inside = family.in_natural_domain(params)
        inside = xp.all(inside) if not isinstance(inside, bool) else inside
        if self.surrogate_map.domain is None:
            return inside
        # Probe the map at a safe point when the family rejects the candidate.
        return xp.logical_and(inside, self.surrogate_map.in_domain(self._standard_of(params)))

    def _loss_at(self, objective: Objective, aux: Any) -> Any:
        constrained = self.surrogate_map.aux_forward(aux) if tree_leaves(aux) else aux

        def loss(params: Any) -> Array:
            return objective(self.surrogate_map.to_target(self._standard_of(params), constrained))

        return loss

    def _safe_aux(
        self, objective: Objective, params: Any, old_aux: Any, new_aux: Any, loss: Array, xp: Any
    ) -> Any:
        """Shorten the auxiliary step until, on its own, it does not raise the loss.

        The grid and Armijo searches refuse candidates that raise the loss; an auxiliary
        step that raises it by itself (Adam's steps keep their length near an optimum)
        would make every candidate fail. Halve it up to ten times, then keep the old
        auxiliary parameters for this step. When the full step lowers the loss, double it
        (up to ``2**AUX_MAX_DOUBLINGS`` times) while the loss keeps falling: Adam's steps
        have a fixed length of about its step size, so far from the optimum (a skew
        started near zero) the auxiliary parameters would otherwise crawl while the
        surrogate converges. Adam's moments are updated either way, so its next step uses
        the new gradient information. (These searches run eagerly.)
        """
        delta = _tree.tree_sub(new_aux, old_aux)
        current = float(loss)

        def loss_at(fraction: float) -> tuple[Any, float]:
            candidate = _tree.tree_add(old_aux, _tree.tree_scale(delta, fraction))
            with quiet_floating_point():
                value = float(self._loss_at(objective, candidate)(params))
            return candidate, value

        fraction = 1.0
        for _ in range(11):
            candidate, value = loss_at(fraction)
            if value == value and value <= current:
                break
            fraction *= 0.5
        else:
            return old_aux
        if fraction < 1.0:
            return candidate
        best, best_value = candidate, value
        for _ in range(AUX_MAX_DOUBLINGS):
            fraction *= 2.0
            candidate, value = loss_at(fraction)
            if not value < best_value:  # also stops on NaN
                break
            best, best_value = candidate, value
        return best

    def step(self, state: SNGDState, objective: Objective) -> tuple[SNGDState, StepInfo]:
        """Take one SNGD step.

        Parameters
        ----------
        state : SNGDState
            The current state.
        objective : callable
            ``objective(target_params) -> scalar loss`` (evaluated on *target* parameters).

        Returns
        -------
        state : SNGDState
            The new state (the old one when the step was refused).
        info : StepInfo
            Loss before the step, step size taken, status, gradient norm.
        """
        bridge = bridge_for(self.backend, state)
        if bridge is not None:
            return bridge.call(self.step, state, objective)
        params = state.surrogate_params
        leaves = tree_leaves(params)
        xp = namespace(*leaves)
        found = sngd_direction(
            self.surrogate_map,
            params,
            objective,
            form=self.form,
            aux=state.aux,
            backend=self.backend,
        )
        has_aux = bool(tree_leaves(state.aux))
        if has_aux:
            new_aux, new_aux_state = self.aux_rule.apply_gradient(
                state.aux, found.aux_grad, state.aux_state
            )
        else:
            new_aux, new_aux_state = state.aux, state.aux_state
        if has_aux and self.line_search in ("grid", "armijo"):
            new_aux = self._safe_aux(objective, params, state.aux, new_aux, found.loss, xp)
        loss_fn = self._loss_at(objective, new_aux)
        use_batch = self.line_search == "grid" and self.objective_batched
        # One mean -> natural solve per grid, shared by the domain check and the loss.
        evaluate = (
            self._batched_domain_and_loss(objective, new_aux, params, xp) if use_batch else None
        )
        new_params, step, status = select_step(
            params,
            found.direction,
            xp=xp,
            step_size=self.step_size,
            line_search=self.line_search,
            domain=lambda p: self._in_domain(p, xp),
            loss=loss_fn,
            current_loss=found.loss,
            slope=tree_vdot(found.direction, found.direction, xp),
            armijo_c=self.armijo_c,
            max_halvings=self.max_halvings,
            grid_size=self.grid_size,
            batched_domain_and_loss=evaluate,
        )
        like = leaves[0]
        finite = xp.logical_and(
            xp.all(xp.isfinite(found.loss)), tree_is_finite(found.direction, xp)
        )
        if has_aux:
            finite = xp.logical_and(finite, tree_is_finite(found.aux_grad, xp))
            finite = xp.logical_and(finite, tree_is_finite(new_aux, xp))
        status = xp.where(
            finite, status, asarray(int(Status.NONFINITE), xp, dtype=xp.int32, like=like)
        )
        accepted = status <= int(Status.BACKTRACKED)
        new_state = SNGDState(
            tree_where(accepted, new_params, params),
            tree_where(accepted, new_aux, state.aux) if has_aux else state.aux,
            tree_where(accepted, new_aux_state, state.aux_state) if has_aux else state.aux_state,
            state.iteration + 1,
        )
        grad_norm = tree_norm(found.direction, xp)
        if has_aux:
            grad_norm = xp.sqrt(grad_norm**2 + tree_norm(found.aux_grad, xp) ** 2)
        step = xp.where(accepted, step, xp.zeros_like(step))
        return new_state, StepInfo(found.loss, step, status, grad_norm)

    def _batched_domain_and_loss(
        self, objective: Objective, aux: Any, params: Any, xp: Namespace
    ) -> Any:
        """Domain flags and losses of a batch of candidates, with one conversion.

        Candidates outside the family's domain are replaced by the current point before
        the conversion to standard parameters (a Cholesky factor or a root solve per
        candidate, which such points could break). That conversion is done once and
        serves both the map's domain check and the objective; candidates outside the
        map's domain are replaced by the current point's standard parameters before the
        objective sees them (their losses are skipped).
        """
        surrogate_map = self.surrogate_map
        family = surrogate_map.family
        constrained = surrogate_map.aux_forward(aux) if tree_leaves(aux) else aux

        def evaluate(candidates: Any) -> tuple[Array, Array]:
            if self.form == "mle":
                inside = family.in_mean_domain(candidates)
            else:
                inside = family.in_natural_domain(candidates)
            count = int(inside.shape[0])

            def pick(batched: Array, single: Array) -> Array:
                single = xp.broadcast_to(single[None, ...], (count, *single.shape))
                mask = xp.reshape(inside, (count,) + (1,) * (batched.ndim - 1))
                return xp.where(mask, batched, single)

            standard = self._standard_of(_tree.tree_map(pick, candidates, params))
            if surrogate_map.domain is not None:
                inside = xp.logical_and(inside, surrogate_map.in_domain(standard))
            safe = _tree.tree_map(pick, standard, self._standard_of(params))
            return inside, objective(surrogate_map.to_target(safe, constrained))

        return evaluate

    def make_step(self, objective: Objective) -> Any:
        """Return ``step(state) -> (state, info)`` for a fixed objective.

        The returned function is pure, so ``jax.jit(rule.make_step(objective))`` compiles a
        fixed-step or ``"backtracking"`` step.

        Parameters
        ----------
        objective : callable
            Maps target parameters to a scalar loss.

        Returns
        -------
        callable
            A pure function ``step(state) -> (state, info)``.
        """
        return lambda state: self.step(state, objective)
