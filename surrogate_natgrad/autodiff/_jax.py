"""The JAX backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from surrogate_natgrad.autodiff._base import PyTreeBackend
from surrogate_natgrad.errors import BackendError

__all__ = ["JaxBackend"]


def _import_jax() -> Any:
    try:
        import jax
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendError(
            "the 'jax' autodiff backend needs JAX; install it with "
            "pip install 'surrogate-natgrad[jax]'"
        ) from exc
    return jax


class JaxBackend(PyTreeBackend):
    """Automatic differentiation with JAX (``jax.value_and_grad``, ``jax.vjp``, ``jax.jacrev``).

    The functions it returns are traceable: ``jax.jit(backend.value_and_grad(f))`` and
    ``jax.vmap`` work. Named tuples, dicts, lists and tuples are pytrees in JAX too.
    """

    name = "jax"

    def __init__(self) -> None:
        self._jax = _import_jax()

    def compile(self, fun: Callable[..., Any]) -> Callable[..., Any]:
        """Return ``jax.jit(fun)``.

        Parameters
        ----------
        fun : callable
            A pure, traceable function of pytrees of arrays.

        Returns
        -------
        callable
        """
        return self._jax.jit(fun)

    def _value_and_grad_leaves(
        self, fun: Callable[[list[Any]], Any], leaves: list[Any], has_aux: bool
    ) -> tuple[Any, list[Any]]:
        result, grads = self._jax.value_and_grad(fun, has_aux=has_aux)(leaves)
        return result, list(grads)

    def _vjp_leaves(
        self, fun: Callable[[list[Any]], list[Any]], leaves: list[Any]
    ) -> tuple[list[Any], Callable[[list[Any]], list[Any]]]:
        out, vjp = self._jax.vjp(fun, leaves)

        def vjp_leaves(cotangent: list[Any]) -> list[Any]:
            (grads,) = vjp(list(cotangent))
            return list(grads)

        return list(out), vjp_leaves

    def _jacobian_leaves(
        self, fun: Callable[[list[Any]], list[Any]], leaves: list[Any]
    ) -> list[list[Any]]:
        blocks = self._jax.jacrev(fun)(leaves)
        return [list(row) for row in blocks]
