"""Implicit-function-theorem derivatives of elementwise roots."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from surrogate_natgrad._compat import Array, Namespace
from surrogate_natgrad._compat.custom_derivative import elementwise_function

__all__ = ["implicit_root"]


def implicit_root(
    residual: Callable[..., Array],
    solve: Callable[..., Array],
    *params: Array,
    residual_partials: Callable[..., tuple[Array, ...]] | None = None,
) -> Array:
    """Root ``x(params)`` of ``residual(x, *params) = 0`` (elementwise), with IFT derivatives.

    Parameters
    ----------
    residual : callable
        ``residual(x, *params)``, elementwise in ``x``.
    solve : callable
        ``solve(*params) -> x`` on untraced arrays; never differentiated.
    *params : array
        Parameters (broadcastable).
    residual_partials : callable, optional
        ``residual_partials(x, *params) -> (∂r/∂x, ∂r/∂param_0, ...)`` in closed form.
        Without it the partials come from the backend's autodiff of ``residual``.

    Returns
    -------
    array
        The root; ``∂x/∂param_i = -(∂r/∂param_i)/(∂r/∂x)``.
    """

    def value(xp: Namespace, *args: Array) -> Array:
        return solve(*args)

    def partials(xp: Namespace, out: Array, *args: Array) -> tuple[Array, ...]:
        if residual_partials is not None:
            d_x, *d_params = residual_partials(out, *args)
        else:
            d_x, *d_params = _autodiff_partials(residual, out, *args)
        return tuple(-d / d_x for d in d_params)

    return elementwise_function(value, partials, "implicit_root")(*params)


def _autodiff_partials(residual: Callable[..., Array], x: Array, *params: Array) -> list[Any]:
    """Diagonal partials of an elementwise residual: a VJP with a ones cotangent."""
    from surrogate_natgrad._compat import array_library_name, namespace

    xp = namespace(x, *params)
    library = array_library_name(xp)
    args = (x, *params)
    if library == "jax":
        import jax
        import jax.numpy as jnp

        out, vjp_fn = jax.vjp(residual, *args)
        return list(vjp_fn(jnp.ones_like(out)))
    if library == "torch":
        import torch

        leaves = [a.detach().requires_grad_(True) for a in args]
        with torch.enable_grad():
            out = residual(*leaves)
            grads = torch.autograd.grad(out, leaves, torch.ones_like(out), allow_unused=True)
        return [torch.zeros_like(a) if g is None else g for a, g in zip(args, grads, strict=True)]
    import autograd
    import numpy as np

    out = []
    for i in range(len(args)):
        def scalar(v: Any, i: int = i) -> Any:
            new = list(args)
            new[i] = v
            return autograd.numpy.sum(residual(*new))

        out.append(autograd.grad(scalar)(np.asarray(args[i], dtype=float)))
    return out
