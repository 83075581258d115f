"""Scalar functions computed outside the autodiff trace, with a supplied gradient.

:func:`external_function` turns ``value_and_grad(params) -> (value, grad)`` — computed on
plain (untraced) arrays, e.g. by summing per-chunk results from a thread pool or a Dask
cluster — into a function of a pytree of parameters that every autodiff backend treats as a
primitive: autograd (``primitive`` + ``defvjp``), torch (``autograd.Function``, usable under
``torch.func``) and JAX (``custom_vjp``). A caller can then differentiate *through* it, e.g.
SNGD differentiates the composition ``loss(to_target(surrogate))`` on the driver while the
loss's gradient with respect to the target parameters comes from the workers.

Layer 2: this module names the autodiff libraries so that the callers need not.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from surrogate_natgrad._compat import is_autograd_box
from surrogate_natgrad._tree import tree_flatten, tree_unflatten
from surrogate_natgrad.errors import BackendError

__all__ = ["external_function"]

ValueAndGrad = Callable[[Any], tuple[Any, Any]]
ValueOnly = Callable[[Any], Any]


def external_function(
    value_and_grad: ValueAndGrad,
    value: ValueOnly | None = None,
    *,
    rowwise: bool = False,
    name: str = "external",
) -> Callable[[Any], Any]:
    """Wrap an externally computed scalar function and its gradient as an autodiff primitive.

    Parameters
    ----------
    value_and_grad : callable
        ``value_and_grad(params) -> (value, grad)`` on untraced arrays: ``value`` a 0-d
        array, ``grad`` a pytree structured like ``params`` (same library, dtype, shapes).
    value : callable, optional
        ``value(params) -> array`` for calls that need no derivative (a line search's
        candidates, possibly with a leading batch axis). Defaults to the value part of
        ``value_and_grad``.
    rowwise : bool, optional
        The value is a vector ``(S,)`` whose entry ``s`` depends only on row ``s`` of every
        leaf (shape ``(S, ...)``), e.g. log-likelihoods of ``S`` samples: ``grad`` is then
        the gradient of the *sum* of the values (row ``s`` holds ``∂value_s/∂leaf_s``), and
        the VJP multiplies row ``s`` by the cotangent's entry ``s``. Default False (a
        scalar value).
    name : str, optional
        Name of the primitive (shown in tracebacks).

    Returns
    -------
    callable
        ``f(params)``: the value, differentiable with respect to every leaf of ``params``
        under autograd (NumPy arrays), torch (``backward``, ``torch.func.grad``) and JAX
        (``jax.grad`` outside ``jit``). The derivative is the supplied gradient times the
        cotangent (first order only: ``f`` cannot be differentiated twice).

    Raises
    ------
    BackendError
        When differentiated with a leading batch axis (the gradient is defined for a
        scalar value only), or under ``jax.jit`` (the value is computed outside JAX).

    Examples
    --------
    >>> import numpy as np
    >>> from surrogate_natgrad import autodiff
    >>> f = autodiff.external_function(lambda p: ((p["a"] ** 2).sum(), {"a": 2 * p["a"]}))
    >>> backend = autodiff.get_backend("autograd")
    >>> value, grad = backend.value_and_grad(lambda p: 3 * f(p))({"a": np.array([1.0, 2.0])})
    >>> float(value), grad["a"].tolist()
    (15.0, [6.0, 12.0])
    """
    value_only: ValueOnly = value if value is not None else (lambda p: value_and_grad(p)[0])
    autograd_fn: Callable[..., Any] | None = None
    torch_fn: Any = None
    jax_fn: Callable[..., Any] | None = None

    def call(params: Any) -> Any:
        nonlocal autograd_fn, torch_fn, jax_fn
        leaves, treedef = tree_flatten(params)
        if any(is_autograd_box(leaf) for leaf in leaves):
            if autograd_fn is None:
                autograd_fn = _make_autograd(value_and_grad, treedef, name, rowwise)
            return autograd_fn(*leaves)
        library = type(leaves[0]).__module__.split(".")[0] if leaves else ""
        if library == "torch" and _torch_traced(leaves):
            if torch_fn is None:
                torch_fn = _make_torch(value_and_grad, treedef, name, rowwise)
            return torch_fn.apply(*leaves)
        if library in ("jax", "jaxlib") and _jax_traced(leaves):
            if jax_fn is None:
                jax_fn = _make_jax(value_and_grad, treedef, rowwise)
            return jax_fn(*leaves)
        return value_only(params)

    call.__name__ = name
    return call


def _scale(cotangent: Any, grad: Any, rowwise: bool) -> Any:
    """The VJP of one leaf: the cotangent times the gradient (row by row when rowwise)."""
    if not rowwise:
        return cotangent * grad
    from surrogate_natgrad._compat import namespace

    xp = namespace(cotangent, grad)
    extra = (1,) * (grad.ndim - cotangent.ndim)
    return xp.reshape(cotangent, tuple(cotangent.shape) + extra) * grad


def _check_scalar(value: Any, name: str, rowwise: bool = False) -> None:
    if rowwise:
        return
    if tuple(getattr(value, "shape", ())) != ():
        raise BackendError(
            f"{name}: only a scalar (0-d) value can be differentiated; got shape "
            f"{tuple(value.shape)} (a batch of parameter sets is for value-only calls)"
        )


class _AutogradCall:
    """The state of one external function under autograd: its gradient and its last result.

    Passed to the shared primitive as an undifferentiated first argument, so it lives
    only as long as the function and the tapes that saw it.
    """

    __slots__ = ("grad", "name", "rowwise", "treedef", "value", "value_and_grad")

    def __init__(self, value_and_grad: ValueAndGrad, treedef: Any, name: str, rowwise: bool):
        self.value_and_grad = value_and_grad
        self.treedef = treedef
        self.name = name
        self.rowwise = rowwise
        self.value: Any = None
        self.grad: list[Any] = []


def _autograd_forward(state: _AutogradCall, *leaves: Any) -> Any:
    value, grad = state.value_and_grad(tree_unflatten(state.treedef, list(leaves)))
    _check_scalar(value, state.name, state.rowwise)
    state.value, state.grad = value, tree_flatten(grad)[0]
    return value


@cache
def _autograd_primitive() -> Callable[..., Any]:
    """One autograd primitive for every external function.

    autograd keeps every primitive's VJP in a global registry that is never emptied: a
    primitive made per function leaked that function's gradient and data (a d×d matrix and
    a minibatch per step of a skew-t fit; 20 GB over the E4 benchmark at d = 1000).
    """
    from autograd.extend import defvjp_argnums, primitive

    shared = primitive(_autograd_forward)

    def vjp(argnums: Any, ans: Any, args: Any, kwargs: Any) -> Callable[[Any], Any]:
        state, leaves = args[0], args[1:]
        # The forward pass computed the gradient too (one pass over the data for both);
        # find it by the identity of the forward's output, else recompute at these leaves.
        if state.value is ans:
            grads = state.grad
        else:
            pair = state.value_and_grad(tree_unflatten(state.treedef, list(leaves)))
            grads = tree_flatten(pair[1])[0]
        return lambda g: tuple(_scale(g, grads[i - 1], state.rowwise) for i in argnums)

    defvjp_argnums(shared, vjp)
    return shared


def _make_autograd(
    value_and_grad: ValueAndGrad, treedef: Any, name: str, rowwise: bool
) -> Callable[..., Any]:
    state = _AutogradCall(value_and_grad, treedef, name, rowwise)
    shared = _autograd_primitive()
    return lambda *leaves: shared(state, *leaves)


def _torch_traced(leaves: list[Any]) -> bool:
    import torch

    functorch = torch._C._functorch
    return (
        any(leaf.requires_grad or functorch.is_functorch_wrapped_tensor(leaf) for leaf in leaves)
        and torch.is_grad_enabled()
    )


def _make_torch(value_and_grad: ValueAndGrad, treedef: Any, name: str, rowwise: bool) -> Any:
    import torch

    def forward(*leaves: Any) -> Any:
        detached = [leaf.detach() for leaf in leaves]
        value, grad = value_and_grad(tree_unflatten(treedef, detached))
        _check_scalar(value, name, rowwise)
        return (value, *tree_flatten(grad)[0])

    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Any, ...]) -> None:
        grads = output[1:]
        ctx.mark_non_differentiable(*grads)
        ctx.save_for_backward(*grads)

    def backward(ctx: Any, grad_value: Any, *unused: Any) -> tuple[Any, ...]:
        return tuple(_scale(grad_value, grad, rowwise) for grad in ctx.saved_tensors)

    function = type(
        f"_{name}_Function",
        (torch.autograd.Function,),
        {
            "forward": staticmethod(forward),
            "setup_context": staticmethod(setup_context),
            "backward": staticmethod(backward),
        },
    )

    class _ValueOnly:
        @staticmethod
        def apply(*leaves: Any) -> Any:
            return function.apply(*leaves)[0]  # type: ignore[attr-defined]

    return _ValueOnly


def _jax_traced(leaves: list[Any]) -> bool:
    import jax

    return any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def _make_jax(value_and_grad: ValueAndGrad, treedef: Any, rowwise: bool) -> Callable[..., Any]:
    import jax

    def concrete(leaves: tuple[Any, ...]) -> tuple[Any, Any]:
        try:
            return value_and_grad(tree_unflatten(treedef, list(leaves)))
        except jax.errors.ConcretizationTypeError as exc:  # pragma: no cover - jit use
            raise BackendError(
                "an external (chunked) objective is computed outside JAX and cannot be "
                "traced by jax.jit; call it eagerly"
            ) from exc

    @jax.custom_vjp
    def fn(*leaves: Any) -> Any:
        return concrete(leaves)[0]

    def fwd(*leaves: Any) -> tuple[Any, Any]:
        value, grad = concrete(leaves)
        return value, tuple(tree_flatten(grad)[0])

    def bwd(grads: tuple[Any, ...], g: Any) -> tuple[Any, ...]:
        return tuple(_scale(g, grad, rowwise) for grad in grads)

    fn.defvjp(fwd, bwd)
    return fn
