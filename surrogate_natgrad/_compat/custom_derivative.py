"""Elementwise functions with closed-form derivatives on every autodiff backend.

:func:`elementwise_function` is the one place in the library that knows how to register a
derivative with autograd (``primitive`` + ``defvjp``), JAX (``custom_jvp``) and torch
(``autograd.Function`` with a generated vmap rule, so ``torch.func`` works too). Special
functions whose derivative no backend provides (d/d df of the Student-t CDF) and
:func:`surrogate_natgrad.autodiff.implicit_root` are built on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from surrogate_natgrad._compat import (
    Array,
    Namespace,
    float_dtype,
    is_autograd_namespace,
    is_jax_namespace,
    is_torch_namespace,
    namespace,
)

__all__ = ["elementwise_function", "unbroadcast"]

ValueFn = Callable[..., Array]
PartialsFn = Callable[..., Sequence[Array | None]]


def unbroadcast(xp: Namespace, grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` (of a broadcast shape) down to ``shape``, the inverse of broadcasting."""
    shape = tuple(shape)
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = xp.sum(grad, axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = xp.sum(grad, axis=axes, keepdims=True)
    return grad


def _scalars_to_arrays(xp: Namespace, args: Sequence[Any], like: Array) -> list[Any]:
    """Turn Python scalars into 0-d arrays of the computation dtype on ``like``'s device."""
    if not any(isinstance(a, bool | int | float) for a in args):
        return list(args)
    dtype = float_dtype(xp, *[a for a in args if hasattr(a, "dtype")])
    out = []
    for a in args:
        if isinstance(a, bool | int | float):
            if is_autograd_namespace(xp):
                import numpy as np

                out.append(np.asarray(a, dtype=dtype))
            else:
                import array_api_compat

                out.append(xp.asarray(a, dtype=dtype, device=array_api_compat.device(like)))
        else:
            out.append(a)
    return out


def elementwise_function(
    value: ValueFn, partials: PartialsFn, name: str, *, jit_value: bool = False
) -> Callable[..., Array]:
    """Build a broadcasting elementwise function with closed-form partial derivatives.

    Parameters
    ----------
    value : callable
        ``value(xp, *args) -> out``: the function evaluated on untraced arrays of the
        namespace ``xp`` (never differentiated).
    partials : callable
        ``partials(xp, out, *args) -> tuple``: one entry per argument, ``∂out/∂arg_i``
        (broadcastable to ``out``), or ``None`` for an argument that is not
        differentiable. It is evaluated with the namespace of the (possibly traced)
        arguments, so higher derivatives work when the partials are differentiable.
    name : str
        Name of the function (used for the registered primitives).
    jit_value : bool, optional
        On JAX, compile ``value`` with ``jax.jit`` (once per input signature). Worth it for
        iterative special functions; requires ``value`` to be traceable.

    Returns
    -------
    callable
        ``f(*args)``: broadcasting elementwise function of array (or Python scalar)
        arguments, differentiable under autograd, JAX (``grad``, ``jit``, ``vmap``) and
        torch (``backward``, ``torch.autograd.grad``, ``torch.func``). Arguments without
        a partial get zero (autograd, JAX) or ``None`` (torch) gradients.
    """
    jax_fn: Callable[..., Array] | None = None
    torch_fn: Any = None
    autograd_fn: Callable[..., Array] | None = None

    def call(*args: Any) -> Array:
        nonlocal jax_fn, torch_fn, autograd_fn
        xp = namespace(*args)
        like = next(a for a in args if a is not None and hasattr(a, "shape"))
        if is_autograd_namespace(xp):
            if autograd_fn is None:
                autograd_fn = _make_autograd(value, partials, name)
            return autograd_fn(*_scalars_to_arrays(xp, args, like))
        if is_jax_namespace(xp):
            if jax_fn is None:
                jax_fn = _make_jax(value, partials, name, jit_value)
            return jax_fn(*_scalars_to_arrays(xp, args, like))
        if is_torch_namespace(xp):
            if torch_fn is None:
                torch_fn = _make_torch(value, partials, name)
            return torch_fn.apply(*_scalars_to_arrays(xp, args, like))
        # Untraced libraries (NumPy, array-api-strict, CuPy, ...): just the value.
        return value(xp, *args)

    call.__name__ = name
    call.__qualname__ = name
    return call


def _make_autograd(value: ValueFn, partials: PartialsFn, name: str) -> Callable[..., Array]:
    import numpy as np
    from autograd.extend import defvjp, primitive

    def raw(*args: Any) -> Array:
        from surrogate_natgrad._compat import namespace as ns

        return value(ns(*args), *args)

    raw.__name__ = name
    prim = primitive(raw)

    def make_vjp(index: int) -> Callable[..., Callable[[Array], Array]]:
        def vjp_maker(ans: Array, *args: Any) -> Callable[[Array], Array]:
            def vjp(g: Array) -> Array:
                xp = namespace(g, ans, *args)
                partial = partials(xp, ans, *args)[index]
                shape = np.shape(args[index])
                if partial is None:
                    return np.zeros(shape, dtype=np.result_type(ans))
                return unbroadcast(xp, g * partial, shape)

            return vjp

        return vjp_maker

    def register(n_args: int) -> None:
        defvjp(prim, *[make_vjp(i) for i in range(n_args)])

    registered: set[int] = set()

    def wrapped(*args: Any) -> Array:
        if len(args) not in registered:
            register(len(args))
            registered.add(len(args))
        return prim(*args)

    return wrapped


def _make_jax(
    value: ValueFn, partials: PartialsFn, name: str, jit_value: bool
) -> Callable[..., Array]:
    import jax
    import jax.numpy as jnp

    def primal(*args: Array) -> Array:
        return value(jnp, *args)

    # Compiling the value once per input signature keeps eager calls of iterative special
    # functions fast (otherwise every call re-traces their loops).
    primal_fn = jax.jit(primal) if jit_value else primal

    @jax.custom_jvp
    def fn(*args: Array) -> Array:
        return primal_fn(*args)

    def jvp(primals: tuple[Array, ...], tangents: tuple[Array, ...]) -> tuple[Array, Array]:
        # Calling ``fn`` (not ``value``) keeps higher derivatives on this custom rule.
        out = fn(*primals)
        parts = partials(jnp, out, *primals)
        tangent_out = jnp.zeros_like(out)
        for part, tangent in zip(parts, tangents, strict=True):
            if part is None or tangent.dtype == jax.dtypes.float0:
                continue
            tangent_out = tangent_out + part * tangent
        return out, tangent_out

    fn.defjvp(jvp)
    fn.__name__ = name  # type: ignore[attr-defined]
    return fn


def _make_torch(value: ValueFn, partials: PartialsFn, name: str) -> Any:
    import array_api_compat.torch as txp
    import torch

    def forward(*args: Array) -> Array:
        return value(txp, *args)

    def setup_context(ctx: Any, inputs: tuple[Array, ...], output: Array) -> None:
        ctx.save_for_backward(*inputs, output)

    def backward(ctx: Any, grad_output: Array) -> tuple[Array | None, ...]:
        *args, out = ctx.saved_tensors
        parts = partials(txp, out, *args)
        grads: list[Array | None] = []
        for arg, part, needed in zip(args, parts, ctx.needs_input_grad, strict=True):
            if part is None or not needed:
                grads.append(None)
            else:
                grads.append(unbroadcast(txp, grad_output * part, tuple(arg.shape)))
        return tuple(grads)

    cls = type(
        f"_{name}_Function",
        (torch.autograd.Function,),
        {
            "forward": staticmethod(forward),
            "setup_context": staticmethod(setup_context),
            "backward": staticmethod(backward),
            "generate_vmap_rule": True,
        },
    )
    return cls
