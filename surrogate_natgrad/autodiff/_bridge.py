"""Differentiate arrays of a library without autodiff (CuPy) through one that has it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from surrogate_natgrad._compat import Namespace, array_library_name, is_array, namespace
from surrogate_natgrad._tree import tree_leaves
from surrogate_natgrad.autodiff._base import AutodiffBackend, map_arrays
from surrogate_natgrad.errors import BackendError

__all__ = ["DLPackBridge", "bridge_for"]


class DLPackBridge:
    """Run an autodiff backend on arrays of another library, converting through DLPack.

    Arrays of the source library (CuPy, say) are handed to the inner library (torch or
    JAX) with ``from_dlpack``: zero-copy, on the same device. The inner backend
    differentiates, and values and gradients come back with the source namespace's
    ``from_dlpack`` (``cupy.from_dlpack``), again without copying. The caller sees only
    source-library arrays.

    The function differentiated receives inner-library arrays, so it must be written
    against the array API (``xp = surrogate_natgrad._compat.namespace(x)``) and must not
    close over source-library arrays: pass data as arguments (arguments that are not
    differentiated are converted too), or close over :meth:`to_inner` views of them.
    The update rules keep to that contract for the objectives they are given: under a
    bridge, a rule's whole step runs on inner-library views of its state (see
    :meth:`call`), so the objective sees inner-library arrays whether the rule
    differentiates it or only evaluates it (line searches).

    Arguments already in the inner library pass through unconverted, and results then
    stay in the inner library: code that runs under :meth:`call` may use the bridge as
    an ordinary backend.

    Parameters
    ----------
    inner : AutodiffBackend or {"torch", "jax"}
        The backend that differentiates.
    """

    def __init__(self, inner: AutodiffBackend | str) -> None:
        if isinstance(inner, str):
            from surrogate_natgrad.autodiff._select import get_backend

            inner = get_backend(inner)
        if inner.name not in ("torch", "jax"):
            raise BackendError(
                f"DLPackBridge needs a torch or jax inner backend, got {inner.name!r}"
            )
        self.inner = inner
        self.name = f"dlpack[{inner.name}]"

    def __repr__(self) -> str:
        return f"DLPackBridge({self.inner!r})"

    # -- conversions -------------------------------------------------------------------

    def _source_namespace(self, *trees: Any) -> Namespace:
        arrays = [leaf for tree in trees for leaf in tree_leaves(tree) if is_array(leaf)]
        if not arrays:
            raise BackendError("DLPackBridge needs at least one array argument")
        # Inner-library views (data already handed over with to_inner) may come along.
        source = [a for a in arrays if array_library_name(namespace(a)) != self.inner.name]
        return namespace(*(source or arrays))

    def to_inner(self, tree: Any) -> Any:
        """Hand the arrays of ``tree`` to the inner library (zero-copy, same device).

        Drivers use it for data that a differentiated function closes over, so that the
        function sees one library whether it runs inside or outside the bridge.

        Parameters
        ----------
        tree : pytree of arrays
            Arrays of the source library (leaves already in the inner library pass).

        Returns
        -------
        pytree of arrays
            The same structure with inner-library arrays sharing the memory.
        """
        return self._to_inner(tree)

    def _to_inner(self, tree: Any) -> Any:
        inner_name = self.inner.name
        from_dlpack: Callable[[Any], Any]
        if inner_name == "torch":
            import torch

            from_dlpack = torch.from_dlpack
        else:
            import jax.numpy as jnp

            from_dlpack = jnp.from_dlpack

        def convert(leaf: Any) -> Any:
            if array_library_name(namespace(leaf)) == inner_name:
                return leaf
            return from_dlpack(leaf)

        return map_arrays(convert, tree)

    def _to_source(self, tree: Any, source_xp: Namespace) -> Any:
        inner_name = self.inner.name
        if array_library_name(source_xp) == inner_name:
            return tree  # called on inner-library arrays: nothing to convert back

        def convert(leaf: Any) -> Any:
            if array_library_name(namespace(leaf)) != inner_name:
                return leaf
            if inner_name == "torch":
                # tensors that carry autograd history cannot be exported
                leaf = leaf.detach()
            return source_xp.from_dlpack(leaf)

        return map_arrays(convert, tree)

    # -- the protocol ------------------------------------------------------------------

    def _wrap(self, make: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
        inner_fun = make()

        def bridged(*args: Any) -> Any:
            source_xp = self._source_namespace(args)
            return self._to_source(inner_fun(*self._to_inner(args)), source_xp)

        return bridged

    def value_and_grad(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
    ) -> Callable[..., tuple[Any, Any]]:
        """Like :meth:`AutodiffBackend.value_and_grad`, on source-library arrays."""
        return self._wrap(lambda: self.inner.value_and_grad(fun, argnums, has_aux))

    def grad(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
    ) -> Callable[..., Any]:
        """Like :meth:`AutodiffBackend.grad`, on source-library arrays."""
        return self._wrap(lambda: self.inner.grad(fun, argnums, has_aux))

    def compile(self, fun: Callable[..., Any]) -> Callable[..., Any]:
        """The inner backend's compiled ``fun`` (``jax.jit`` for JAX), on source-library arrays.

        Parameters
        ----------
        fun : callable
            A pure function of pytrees of arrays.

        Returns
        -------
        callable
        """
        compile_inner = getattr(self.inner, "compile", None)
        if compile_inner is None:
            return fun
        compiled = compile_inner(fun)
        return self._wrap(lambda: compiled)

    def call(self, fun: Callable[..., Any], *args: Any) -> Any:
        """Run ``fun`` on inner-library views of ``args``; return source-library results.

        Both conversions are zero-copy on the same device. The update rules run their
        steps this way under a bridge, so that everything in a step (objective, line
        search, linear algebra) meets arrays of one library.

        Parameters
        ----------
        fun : callable
            A function of pytrees of arrays.
        *args : pytree of arrays
            Source-library arrays (inner-library ones pass through).

        Returns
        -------
        pytree
            ``fun``'s result, its arrays in the source library.
        """
        source_xp = self._source_namespace(args)
        return self._to_source(fun(*self._to_inner(args)), source_xp)

    def vjp(self, fun: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], Any]]:
        """Like :meth:`AutodiffBackend.vjp`, on source-library arrays."""
        source_xp = self._source_namespace(primals)
        out, inner_vjp = self.inner.vjp(fun, *self._to_inner(primals))

        def vjp_fn(cotangent: Any) -> Any:
            return self._to_source(inner_vjp(self._to_inner(cotangent)), source_xp)

        return self._to_source(out, source_xp), vjp_fn

    def jacobian(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0
    ) -> Callable[..., Any]:
        """Like :meth:`AutodiffBackend.jacobian`, on source-library arrays."""
        return self._wrap(lambda: self.inner.jacobian(fun, argnums))

    def hessian(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0
    ) -> Callable[..., Any]:
        """Like :meth:`AutodiffBackend.hessian`, on source-library arrays."""
        return self._wrap(lambda: self.inner.hessian(fun, argnums))


def bridge_for(backend: Any, *trees: Any) -> DLPackBridge | None:
    """The DLPack bridge that code on ``trees`` must run under, or None.

    Under a :class:`DLPackBridge` (CuPy arrays, torch or JAX differentiating) the update
    rules and :func:`~surrogate_natgrad.fisher.monte_carlo_fisher` run their whole
    computation on zero-copy inner-library views (:meth:`DLPackBridge.call`), so that the
    objective, line searches and linear algebra all meet arrays of one library. Arrays
    already in the inner library need no bridge.

    Parameters
    ----------
    backend : str or AutodiffBackend or None
        The ``backend`` setting of the caller (None: chosen from the arrays).
    *trees : pytree of arrays
        The arrays the computation runs on.

    Returns
    -------
    DLPackBridge or None
    """
    from surrogate_natgrad.autodiff._select import get_backend

    leaves = [leaf for tree in trees for leaf in tree_leaves(tree) if is_array(leaf)]
    if not leaves:
        return None
    resolved = get_backend(backend, *leaves)
    if not isinstance(resolved, DLPackBridge):
        return None
    if array_library_name(namespace(*leaves)) == resolved.inner.name:
        return None
    return resolved
