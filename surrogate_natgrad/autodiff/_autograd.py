"""The autograd backend (the default for NumPy arrays)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import autograd
from autograd.builtins import list as autograd_list
from autograd.tracer import getval

from surrogate_natgrad._tree import tree_map
from surrogate_natgrad.autodiff._base import PyTreeBackend, jacobian_rows_from_vjp

__all__ = ["AutogradBackend"]


def _quietly(call: Callable[[], Any]) -> Any:
    # autograd warns when an output does not depend on the input; for us that is just a
    # zero derivative (constant terms, integer leaves), not a user mistake.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Output seems independent of input")
        return call()


class AutogradBackend(PyTreeBackend):
    """Automatic differentiation with `autograd <https://github.com/HIPS/autograd>`_.

    Works on NumPy arrays; the functions differentiated must use ``autograd.numpy`` or the
    library's array namespace (``surrogate_natgrad._compat.namespace`` of the traced
    arguments, which maps autograd's traced values to a differentiable array-API
    namespace). Functions may close over NumPy data arrays. ``aux`` outputs are returned
    with traced values replaced by their plain values.
    """

    name = "autograd"

    def _value_and_grad_leaves(
        self, fun: Callable[[list[Any]], Any], leaves: list[Any], has_aux: bool
    ) -> tuple[Any, list[Any]]:
        if not has_aux:
            value, grads = _quietly(lambda: autograd.value_and_grad(fun)(leaves))
            return value, list(grads)
        aux_store: list[Any] = []

        def value_only(diff_leaves: list[Any]) -> Any:
            value, aux = fun(diff_leaves)
            aux_store.append(aux)
            return value

        value, grads = _quietly(lambda: autograd.value_and_grad(value_only)(leaves))
        aux = tree_map(getval, aux_store[-1])
        return (value, aux), list(grads)

    def _vjp_leaves(
        self, fun: Callable[[list[Any]], list[Any]], leaves: list[Any]
    ) -> tuple[list[Any], Callable[[list[Any]], list[Any]]]:
        def as_container(diff_leaves: list[Any]) -> Any:
            # autograd differentiates containers only when built with its own list type
            return autograd_list(fun(diff_leaves))

        vjp, out = _quietly(lambda: autograd.make_vjp(as_container)(leaves))

        def vjp_leaves(cotangent: list[Any]) -> list[Any]:
            return list(vjp(list(cotangent)))

        return list(out), vjp_leaves

    def _jacobian_leaves(
        self, fun: Callable[[list[Any]], list[Any]], leaves: list[Any]
    ) -> list[list[Any]]:
        out, vjp_leaves = self._vjp_leaves(fun, leaves)
        shapes = [tuple(int(n) for n in getval(leaf).shape) for leaf in leaves]
        return jacobian_rows_from_vjp(out, vjp_leaves, len(leaves), shapes)
