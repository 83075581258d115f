"""Choosing an autodiff backend by name or from the arrays."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from surrogate_natgrad._compat import array_library_name, is_array, namespace
from surrogate_natgrad._tree import tree_leaves
from surrogate_natgrad.autodiff._base import AutodiffBackend
from surrogate_natgrad.errors import BackendError, DataError

__all__ = ["BACKEND_NAMES", "get_backend"]

#: The names :func:`get_backend` accepts ("numpy" is an alias of "autograd").
BACKEND_NAMES = ("autograd", "numpy", "jax", "torch")


def _by_name(name: str) -> AutodiffBackend:
    key = name.lower()
    if key in ("autograd", "numpy"):
        from surrogate_natgrad.autodiff._autograd import AutogradBackend

        return AutogradBackend()
    if key == "jax":
        from surrogate_natgrad.autodiff._jax import JaxBackend

        return JaxBackend()
    if key == "torch":
        from surrogate_natgrad.autodiff._torch import TorchBackend

        return TorchBackend()
    valid = ", ".join(map(repr, BACKEND_NAMES))
    raise DataError(
        f"unknown autodiff backend {name!r}; valid names are {valid}, "
        "or pass an AutodiffBackend instance (e.g. CustomGradient(value_and_grad=...))"
    )


def _torch_has_cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def _jax_has_gpu() -> bool:
    if importlib.util.find_spec("jax") is None:
        return False
    import jax

    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:  # JAX without a GPU backend (or restricted to the CPU)
        return False


#: How to go on without an autodiff library, shared by the messages below.
_SUPPLY_GRADIENT = (
    "supply the gradient yourself: backend=autodiff.CustomGradient(value_and_grad=f) with "
    "f(params) -> (loss, gradient) in the coordinates the rule differentiates (SNGD's "
    "'mle' form: the surrogate's natural parameters). For the Gaussian MLE and the "
    "negative binomial the gradients are in closed form: pass "
    "backend=surrogate_natgrad.closed_form.negative_binomial_mle(data).backend (or "
    "closed_form.gaussian_mle(data).backend) to fit() or to the rule"
)


def _for_cupy() -> AutodiffBackend:
    from surrogate_natgrad.autodiff._bridge import DLPackBridge

    if _torch_has_cuda():
        return DLPackBridge(_by_name("torch"))
    # A CPU-only JAX cannot take CuPy's GPU buffers through DLPack without a copy.
    if _jax_has_gpu():
        return DLPackBridge(_by_name("jax"))
    raise BackendError(
        "CuPy has no automatic differentiation, and neither torch with CUDA nor JAX with a "
        "GPU is installed to differentiate CuPy arrays on the GPU through DLPack. Install "
        "one of them (e.g. the CUDA build of torch, or jax[cuda12]), or " + _SUPPLY_GRADIENT
    )


#: Libraries without autodiff that borrow it through a DLPack bridge on the same device
#: (tests add a CPU stand-in for CuPy here: array-api-strict arrays bridged to torch).
_BORROWED_AUTODIFF: dict[str, Callable[[], AutodiffBackend]] = {"cupy": _for_cupy}


#: Types whose instances passed the AutodiffBackend protocol check.
_CONFORMING_TYPES: set[type] = set()


def get_backend(backend: AutodiffBackend | str | None = None, *arrays: Any) -> AutodiffBackend:
    """Return the autodiff backend to use.

    Parameters
    ----------
    backend : AutodiffBackend or str or None
        An instance is returned as it is. A name is one of ``"autograd"``, ``"numpy"``
        (alias of autograd), ``"jax"``, ``"torch"``. ``None`` picks the backend from the
        namespace of ``arrays``: NumPy (and autograd traced values) → autograd, torch →
        torch, JAX → jax, CuPy → :class:`DLPackBridge` to torch if torch has CUDA, else to
        JAX if JAX has a GPU. Without arrays, ``None`` means autograd.
    *arrays : array or pytree of arrays
        The arrays the backend will differentiate (only their library matters).

    Returns
    -------
    AutodiffBackend

    Raises
    ------
    ValueError
        For an unknown backend name (lists the valid ones).
    BackendError
        For arrays of a library without autodiff (array-api-strict; CuPy without torch or
        JAX), mixed libraries, or a ``backend`` of the wrong type.
    """
    if isinstance(backend, str):
        return _by_name(backend)
    if backend is not None:
        # isinstance against a runtime-checkable Protocol inspects every method (~30 µs,
        # paid on every step of a small fit): check each backend type once.
        if type(backend) in _CONFORMING_TYPES or isinstance(backend, AutodiffBackend):
            _CONFORMING_TYPES.add(type(backend))
            return backend
        raise BackendError(
            "backend must be None, a name ('autograd', 'numpy', 'jax', 'torch') or an "
            f"AutodiffBackend instance, got {type(backend).__name__}"
        )
    leaves = [leaf for tree in arrays for leaf in tree_leaves(tree) if is_array(leaf)]
    if not leaves:
        return _by_name("autograd")
    library = array_library_name(namespace(*leaves))
    if library in ("numpy", "autograd"):
        return _by_name("autograd")
    if library in ("torch", "jax"):
        return _by_name(library)
    borrow = _BORROWED_AUTODIFF.get(library)
    if borrow is not None:
        return borrow()
    if library == "array_api_strict":
        raise BackendError(
            "array_api_strict arrays have no automatic differentiation; use NumPy, torch or "
            "JAX arrays, or " + _SUPPLY_GRADIENT
        )
    raise BackendError(f"no autodiff backend for arrays of {library!r}; " + _SUPPLY_GRADIENT)
