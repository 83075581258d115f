"""Implicit-function-theorem derivatives of elementwise roots."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from surrogate_natgrad._compat import Array, Namespace
from surrogate_natgrad._compat.custom_derivative import elementwise_function

__all__ = ["implicit_root"]


def implicit_root(
    residual: Callable[..., Array],
    solve: Callable[..., Array],
    *params: Array | float,
    residual_partials: Callable[..., Sequence[Array]] | None = None,
) -> Array:
    """Root ``x(params)`` of ``residual(x, *params) = 0`` (elementwise), with IFT derivatives.

    ``solve`` is never differentiated: the derivative of the root with respect to each
    parameter is ``∂x/∂param_i = -(∂r/∂param_i) / (∂r/∂x)`` (implicit function theorem),
    registered through :func:`surrogate_natgrad._compat.custom_derivative.elementwise_function`
    so it works under autograd, JAX (``grad``/``jit``/``vmap``) and torch (``backward``,
    ``torch.func``).

    Parameters
    ----------
    residual : callable
        ``residual(x, *params)``, elementwise in ``x`` and broadcasting over the params,
        written with differentiable operations of the arrays' library (array API plus
        :mod:`surrogate_natgrad.special`). Only used for the derivative.
    solve : callable
        ``solve(*params) -> x`` with ``residual(x, *params) == 0``, called on arrays that
        are not being differentiated (under ``jax.jit`` they are traced, so it must then be
        traceable). It returns the root in the broadcast shape of the params.
    *params : array or float
        Parameters (broadcastable against each other).
    residual_partials : callable, optional
        ``residual_partials(x, *params) -> (∂r/∂x, ∂r/∂param_0, ...)`` in closed form
        (broadcastable to the shape of ``x``). Without it the partials come from the
        backend's autodiff of ``residual`` (vector-Jacobian products with a ones
        cotangent, exact because the residual is elementwise).

    Returns
    -------
    array
        The root ``x`` in the broadcast shape of the params.

    Examples
    --------
    >>> import numpy as np
    >>> from surrogate_natgrad import autodiff
    >>> root = autodiff.implicit_root(lambda x, c: x * x - c, np.sqrt, np.array([4.0]))
    >>> root.tolist()
    [2.0]
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
    """Diagonal partials of an elementwise residual: VJPs with a ones cotangent.

    All arguments are first broadcast to the shape of ``x`` so that each VJP returns the
    elementwise partial (not its sum over broadcast axes).
    """
    from surrogate_natgrad._compat import array_library_name, namespace

    xp = namespace(x, *params)
    library = array_library_name(xp)
    args = tuple(xp.broadcast_arrays(x, *params))
    if library == "jax":
        import jax
        import jax.numpy as jnp

        out, vjp_fn = jax.vjp(residual, *args)
        return list(vjp_fn(jnp.ones_like(out)))
    if library == "torch":
        import torch

        # torch.func.vjp also works inside torch.func transforms (grad, vmap), where
        # requires_grad_/torch.autograd.grad are not allowed.
        out, vjp_fn = torch.func.vjp(residual, *args)[:2]
        return list(vjp_fn(torch.ones_like(out)))
    if library in ("autograd", "numpy"):
        # Plain NumPy arrays arrive here from inside autograd's backward pass.
        from autograd import make_vjp

        def residual_of_all(*values: Any) -> Any:
            return residual(*values)

        partials = []
        for i in range(len(args)):
            vjp_fn, out = make_vjp(residual_of_all, argnum=i)(*args)
            partials.append(vjp_fn(xp.ones_like(out)))
        return partials
    from surrogate_natgrad.errors import BackendError

    raise BackendError(
        f"implicit_root: arrays of library {library!r} have no autodiff; pass residual_partials"
    )
