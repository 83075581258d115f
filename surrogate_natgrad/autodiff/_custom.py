"""User-supplied derivatives, for array libraries without automatic differentiation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from surrogate_natgrad._tree import tree_flatten, tree_unflatten
from surrogate_natgrad.autodiff._base import flatten_like, jacobian_rows_from_vjp, normalise_argnums
from surrogate_natgrad.errors import BackendError

__all__ = ["CustomGradient"]


class CustomGradient:
    """An autodiff backend whose derivatives the user supplies.

    For arrays of a library without automatic differentiation (array-api-strict, or CuPy
    without torch or JAX), give the objective's value and gradient directly.

    Parameters
    ----------
    value_and_grad : callable
        ``value_and_grad(*args) -> (value, grad)``: the objective's value and its gradient
        with respect to the first argument, structured like that argument. When the
        library asks for ``has_aux=True`` it must return ``((value, aux), grad)``.
    vjp : callable, optional
        ``vjp(*primals) -> (out, vjp_fn)`` with ``vjp_fn(cotangent)`` returning a tuple of
        one pytree per primal. Needed for :meth:`vjp` and :meth:`jacobian`.
    fun : callable, optional
        The function the derivatives belong to. When given, asking to differentiate any
        other function raises :class:`~surrogate_natgrad.errors.BackendError` instead of
        silently returning the derivatives of ``fun``.

    Notes
    -----
    The ``fun`` passed to :meth:`value_and_grad` is not evaluated: the supplied callable
    stands for it. Only ``argnums=0`` is supported, and :meth:`hessian` is not.
    """

    name = "custom"

    def __init__(
        self,
        value_and_grad: Callable[..., tuple[Any, Any]],
        *,
        vjp: Callable[..., tuple[Any, Callable[[Any], Any]]] | None = None,
        fun: Callable[..., Any] | None = None,
    ) -> None:
        if not callable(value_and_grad):
            raise BackendError(
                f"value_and_grad must be callable, got {type(value_and_grad).__name__}"
            )
        if vjp is not None and not callable(vjp):
            raise BackendError(f"vjp must be callable or None, got {type(vjp).__name__}")
        self._value_and_grad = value_and_grad
        self._vjp = vjp
        self._fun = fun

    def __repr__(self) -> str:
        return f"CustomGradient(value_and_grad={self._value_and_grad!r})"

    def _check_fun(self, fun: Callable[..., Any]) -> None:
        if self._fun is not None and fun is not self._fun:
            raise BackendError(
                f"this CustomGradient supplies derivatives of {self._fun!r} only; it "
                f"cannot differentiate {fun!r}"
            )

    def value_and_grad(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
    ) -> Callable[..., tuple[Any, Any]]:
        """Return the user's ``value_and_grad`` (``argnums`` must be 0)."""
        self._check_fun(fun)
        indices, single = normalise_argnums(argnums)
        if indices != (0,):
            raise BackendError(
                "CustomGradient supplies the gradient with respect to the first argument "
                f"only; argnums={argnums!r} is not available"
            )
        supplied = self._value_and_grad

        def value_and_grad_fun(*args: Any) -> tuple[Any, Any]:
            result, grad = supplied(*args)
            return result, grad if single else (grad,)

        return value_and_grad_fun

    def grad(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
    ) -> Callable[..., Any]:
        """Return the gradient part of the user's ``value_and_grad`` (``(grad, aux)`` with
        ``has_aux``, as the library backends do)."""
        value_and_grad_fun = self.value_and_grad(fun, argnums, has_aux)

        def grad_fun(*args: Any) -> Any:
            result, grads = value_and_grad_fun(*args)
            return (grads, result[1]) if has_aux else grads

        return grad_fun

    def vjp(self, fun: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], Any]]:
        """Return the user's ``vjp(*primals)``.

        Raises
        ------
        BackendError
            If no ``vjp`` was supplied.
        """
        self._check_fun(fun)
        if self._vjp is None:
            raise BackendError(
                "this CustomGradient has no vector-Jacobian product; pass "
                "CustomGradient(value_and_grad=..., vjp=...) to supply one"
            )
        out, vjp_fn = self._vjp(*primals)
        return out, lambda cotangent: tuple(vjp_fn(cotangent))

    def jacobian(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0
    ) -> Callable[..., Any]:
        """Dense Jacobian with respect to the first argument, one supplied VJP per row."""
        indices, single = normalise_argnums(argnums)
        if indices != (0,):
            raise BackendError(
                "CustomGradient computes Jacobians with respect to the first argument only; "
                f"argnums={argnums!r} is not available"
            )

        def jacobian_fun(*args: Any) -> Any:
            out, vjp_fn = self.vjp(fun, *args)
            out_leaves, out_def = tree_flatten(out)
            in_leaves, in_def = tree_flatten(args[0])
            in_shapes = [tuple(int(n) for n in leaf.shape) for leaf in in_leaves]

            def vjp_leaves(cotangent: list[Any]) -> list[Any]:
                grads = vjp_fn(tree_unflatten(out_def, cotangent))
                return flatten_like(in_def, grads[0], "the supplied vjp's first gradient")

            blocks = jacobian_rows_from_vjp(out_leaves, vjp_leaves, len(in_leaves), in_shapes)
            per_output = [tree_unflatten(in_def, row) for row in blocks]
            if not single:
                per_output = [(tree,) for tree in per_output]
            return tree_unflatten(out_def, per_output)

        return jacobian_fun

    def hessian(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0
    ) -> Callable[..., Any]:
        """Not available: a supplied gradient cannot be differentiated again.

        Raises
        ------
        BackendError
            Always.
        """
        raise BackendError(
            "CustomGradient cannot compute Hessians (the supplied gradient cannot be "
            "differentiated); use an autodiff backend ('autograd', 'torch', 'jax')"
        )
