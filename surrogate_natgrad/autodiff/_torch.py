"""The torch backend, built on ``torch.func``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from surrogate_natgrad.autodiff._base import PyTreeBackend
from surrogate_natgrad.errors import BackendError

__all__ = ["TorchBackend"]


def _import_torch_func() -> Any:
    try:
        import torch.func
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendError(
            "the 'torch' autodiff backend needs torch >= 2.0; install it with "
            "pip install 'surrogate-natgrad[torch]'"
        ) from exc
    return torch.func


class TorchBackend(PyTreeBackend):
    """Automatic differentiation with ``torch.func`` (functional, composable transforms).

    ``torch.func.grad_and_value``, ``torch.func.vjp`` and ``torch.func.jacrev`` are used,
    so the returned functions compose with ``torch.func.vmap`` and further ``torch.func``
    transforms, and they never touch ``.grad`` attributes or the tensors' ``requires_grad``
    flags. Functions may close over data tensors.
    """

    name = "torch"

    def __init__(self) -> None:
        self._func = _import_torch_func()

    def _value_and_grad_leaves(
        self, fun: Callable[[list[Any]], Any], leaves: list[Any], has_aux: bool
    ) -> tuple[Any, list[Any]]:
        grads, result = self._func.grad_and_value(fun, has_aux=has_aux)(leaves)
        return result, list(grads)

    def _vjp_leaves(
        self, fun: Callable[[list[Any]], list[Any]], leaves: list[Any]
    ) -> tuple[list[Any], Callable[[list[Any]], list[Any]]]:
        out, vjp = self._func.vjp(fun, leaves)

        def vjp_leaves(cotangent: list[Any]) -> list[Any]:
            (grads,) = vjp(list(cotangent))
            return list(grads)

        return list(out), vjp_leaves

    def _jacobian_leaves(
        self, fun: Callable[[list[Any]], list[Any]], leaves: list[Any]
    ) -> list[list[Any]]:
        blocks = self._func.jacrev(fun)(leaves)
        return [list(row) for row in blocks]
