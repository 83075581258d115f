"""Array layer: namespace resolution, dtype and device helpers, functional updates.

This package (with :mod:`surrogate_natgrad.special`, :mod:`surrogate_natgrad.random` and
:mod:`surrogate_natgrad.autodiff`) is the only code in the library that names concrete array
libraries. Everything above it asks :func:`namespace` for the array namespace of its inputs
and writes against the Python array API standard.

Autograd is special: its traced values (``ArrayBox``) are not arrays of any library, and
``array_api_compat`` maps them to ``autograd.numpy``, whose ``linalg`` and several array-API
names have no derivative. :func:`namespace` maps them to
:data:`surrogate_natgrad._compat.autograd_namespace.xp` instead, an array-API namespace over
``autograd.numpy`` in which every name the library uses is differentiable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import array_api_compat
import numpy as np
from autograd.tracer import Box, getval

from surrogate_natgrad.errors import BackendError

__all__ = [
    "Array",
    "Namespace",
    "array_library_name",
    "as_float_array",
    "asarray",
    "at_add",
    "at_set",
    "default_float_dtype",
    "device",
    "dtype_eps",
    "dtype_tolerance",
    "float_dtype",
    "is_array",
    "is_autograd_box",
    "is_autograd_namespace",
    "is_jax_namespace",
    "is_numpy_namespace",
    "is_torch_namespace",
    "namespace",
    "size",
    "stop_gradient",
    "to_numpy",
]

#: Any array of a supported library (NumPy, CuPy, torch, JAX, array-api-strict) or an
#: autograd traced value. The array API standard has no static array type.
Array = Any
#: An array-API namespace (a module or an object with the standard's functions).
Namespace = Any


def is_autograd_box(value: object) -> bool:
    """Return True if ``value`` is an autograd traced value (an ``ArrayBox``)."""
    return isinstance(value, Box)


def is_array(value: object) -> bool:
    """Return True for an array of a supported library or an autograd traced value."""
    return is_autograd_box(value) or array_api_compat.is_array_api_obj(value)


def _describe(value: object) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def _library(value: object) -> str:
    if is_autograd_box(value) or isinstance(value, np.ndarray | np.generic):
        return "numpy"
    top = type(value).__module__.split(".")[0]
    # Concrete JAX arrays live in ``jaxlib``, traced ones in ``jax``: one library.
    return "jax" if top == "jaxlib" else top


#: The namespace ``array_api_compat.array_namespace`` gives NumPy arrays.
_NUMPY_NAMESPACE = array_api_compat.array_namespace(np.zeros(0))


def _numpy_namespace_if_plain(
    arrays: tuple[object, ...], named_arrays: dict[str, object]
) -> Namespace | None:
    """``array_api_compat.numpy`` when every argument is a NumPy array, scalar or None.

    The common case, answered without the general checks (NumPy has one device): the
    general path cost ~50 µs a call, a third of a small NumPy fit.
    """
    seen_array = False
    for value in (*arrays, *named_arrays.values()):
        if isinstance(value, np.ndarray | np.generic):
            seen_array = True
        elif value is not None and not isinstance(value, bool | int | float | complex):
            return None
    return _NUMPY_NAMESPACE if seen_array else None


def namespace(*arrays: object, **named_arrays: object) -> Namespace:
    """Return the array-API namespace shared by ``arrays``.

    Python scalars and ``None`` are ignored. Autograd traced values map to the
    autograd-aware namespace (so code stays differentiable under ``autograd.grad``).

    Parameters
    ----------
    *arrays : array or scalar or None
        Arrays whose namespace is wanted. In error messages these are called
        ``argument 0``, ``argument 1``, ...
    **named_arrays : array or scalar or None
        Further arrays, named in error messages by their keyword (use the public
        argument names of the calling function, e.g. ``data=counts``).

    Returns
    -------
    namespace
        The array-API namespace (``array_api_compat.numpy`` for NumPy, the
        autograd-aware namespace for autograd traced values, the library's own
        compatible namespace otherwise).

    Raises
    ------
    BackendError
        If no array is given, an argument is not an array (a list, say), or the arrays
        come from different libraries or live on different devices.
    """
    fast = _numpy_namespace_if_plain(arrays, named_arrays)
    if fast is not None:
        return fast
    labelled: list[tuple[str, object]] = [(f"argument {i}", a) for i, a in enumerate(arrays)]
    labelled += list(named_arrays.items())
    present = [
        (label, value)
        for label, value in labelled
        # NumPy scalars (what arithmetic on 0-d NumPy arrays returns) subclass Python's
        # float but are NumPy values: keep them.
        if value is not None
        and (isinstance(value, np.generic) or not isinstance(value, bool | int | float | complex))
    ]
    for label, value in present:
        if not is_array(value):
            raise BackendError(
                f"{label} must be an array (NumPy, CuPy, torch, JAX or array-api-strict), "
                f"got {_describe(value)}; convert it first, e.g. with numpy.asarray"
            )
    if not present:
        raise BackendError("namespace() needs at least one array argument")
    libraries = {_library(value) for _, value in present}
    if len(libraries) > 1:
        listing = ", ".join(f"{label}: {_describe(value)}" for label, value in present)
        raise BackendError(
            "arrays from different libraries cannot be mixed "
            f"({listing}); convert them to one library first"
        )
    if any(is_autograd_box(value) for _, value in present):
        from surrogate_natgrad._compat.autograd_namespace import xp as autograd_xp

        return autograd_xp
    values = [value for _, value in present]
    xp = array_api_compat.array_namespace(*values)
    devices = [(label, array_api_compat.device(value)) for label, value in present]
    # Traced JAX values report no device (None); they cannot be checked, so skip them.
    devices = [(label, dev) for label, dev in devices if dev is not None] or [("", None)]
    first_label, first_device = devices[0]
    for label, dev in devices[1:]:
        if dev != first_device:
            raise BackendError(
                f"arrays on different devices cannot be mixed ({first_label} is on "
                f"{first_device!r}, {label} is on {dev!r}); move them to one device first"
            )
    return xp


def is_autograd_namespace(xp: Namespace) -> bool:
    """Return True if ``xp`` is the autograd-aware namespace."""
    return getattr(xp, "__name__", "") == "surrogate_natgrad.autograd_namespace"


def is_numpy_namespace(xp: Namespace) -> bool:
    """Return True for NumPy's namespace, including the autograd-aware one."""
    return is_autograd_namespace(xp) or array_api_compat.is_numpy_namespace(xp)


def is_torch_namespace(xp: Namespace) -> bool:
    """Return True for torch's namespace."""
    return array_api_compat.is_torch_namespace(xp)


def is_jax_namespace(xp: Namespace) -> bool:
    """Return True for JAX's namespace."""
    return array_api_compat.is_jax_namespace(xp)


def array_library_name(xp: Namespace) -> str:
    """Return a short name of the library behind ``xp``.

    One of ``"autograd"``, ``"numpy"``, ``"cupy"``, ``"torch"``, ``"jax"``,
    ``"array_api_strict"``, ``"dask"`` or the namespace's module name.
    """
    if is_autograd_namespace(xp):
        return "autograd"
    checks: list[tuple[str, Any]] = [
        ("numpy", array_api_compat.is_numpy_namespace),
        ("cupy", array_api_compat.is_cupy_namespace),
        ("torch", array_api_compat.is_torch_namespace),
        ("jax", array_api_compat.is_jax_namespace),
        ("array_api_strict", array_api_compat.is_array_api_strict_namespace),
        ("dask", array_api_compat.is_dask_namespace),
    ]
    for name, check in checks:
        if check(xp):
            return name
    return str(getattr(xp, "__name__", type(xp).__name__))


def device(x: Array) -> Any:
    """Return the device of ``x`` (``"cpu"`` for NumPy and autograd values)."""
    if is_autograd_box(x):
        return "cpu"
    return array_api_compat.device(x)


def size(x: Array) -> int:
    """Return the number of elements of ``x`` (the standard allows ``x.size`` to be None)."""
    return math.prod(int(n) for n in x.shape)


def default_float_dtype(xp: Namespace) -> Any:
    """Return the library's float64 dtype, the default of this library.

    Raises
    ------
    BackendError
        For JAX when 64-bit mode is off: JAX would silently compute in float32.
    """
    if is_jax_namespace(xp):
        import jax

        if not jax.config.read("jax_enable_x64"):
            raise BackendError(
                "JAX computes in float32 unless 64-bit mode is on; call "
                "jax.config.update('jax_enable_x64', True) before creating arrays, "
                "or pass float32 arrays explicitly"
            )
    return xp.float64


def float_dtype(xp: Namespace, *arrays: object) -> Any:
    """Return the floating dtype to compute in for ``arrays``.

    Floating inputs keep their precision (float32 stays float32); integer and boolean
    inputs and Python scalars promote to float64.
    """
    floating = [
        a.dtype
        for a in arrays
        if a is not None and hasattr(a, "dtype") and xp.isdtype(a.dtype, "real floating")
    ]
    if not floating:
        return default_float_dtype(xp)
    return xp.result_type(*floating) if len(floating) > 1 else floating[0]


def dtype_eps(xp: Namespace, dtype: Any) -> float:
    """Return the machine epsilon of a floating ``dtype``."""
    return float(xp.finfo(dtype).eps)


def dtype_tolerance(xp: Namespace, dtype: Any, power: float = 0.5, factor: float = 1.0) -> float:
    """Return a tolerance ``factor * eps**power`` for ``dtype``.

    ``power = 0.5`` (the default) suits finite-difference and optimisation tolerances;
    a root solve can use a power near one (e.g. ``eps**0.9``).
    """
    return factor * dtype_eps(xp, dtype) ** power


def asarray(
    value: object, xp: Namespace, *, dtype: Any = None, device: Any = None, like: Array = None
) -> Array:
    """Convert ``value`` (a scalar, sequence or array of ``xp``) into an array of ``xp``.

    Autograd traced values pass through unchanged (``asarray`` of a box must stay
    differentiable). ``like`` gives the device when ``device`` is None.
    """
    if device is None and like is not None:
        device = array_api_compat.device(like) if not is_autograd_box(like) else None
    if is_autograd_box(value):
        if dtype is not None and value.dtype != dtype:  # type: ignore[attr-defined]
            return xp.astype(value, dtype)
        return value
    if device is None:
        return xp.asarray(value, dtype=dtype)
    return xp.asarray(value, dtype=dtype, device=device)


def as_float_array(value: object, xp: Namespace, *, like: Array = None) -> Array:
    """Convert ``value`` into a floating array of ``xp`` (float64 unless already floating)."""
    arr = asarray(value, xp, like=like)
    dtype = float_dtype(xp, arr)
    if arr.dtype != dtype:
        arr = xp.astype(arr, dtype)
    return arr


def to_numpy(x: Array) -> np.ndarray:
    """Copy ``x`` into a NumPy array (for reporting, plotting and tests only).

    This is an explicit, visible transfer to the host; library code on the
    computational path never calls it.
    """
    if is_autograd_box(x):
        x = getval(x)
    if isinstance(x, np.ndarray | np.generic):
        return np.asarray(x)
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_jax_array(x):
        return np.asarray(x)
    xp = array_api_compat.array_namespace(x)
    if array_api_compat.is_array_api_strict_namespace(xp):
        # The strict library refuses implicit conversion; move to its CPU device and
        # hand the buffer over through DLPack.
        cpu = xp.Device("CPU_DEVICE")
        return np.from_dlpack(xp.asarray(x, device=cpu, copy=True))
    return np.asarray(x)


def stop_gradient(x: Array) -> Array:
    """Return ``x`` as a constant for automatic differentiation (same values, no gradient).

    ``jax.lax.stop_gradient`` on JAX, ``detach()`` on torch, the unboxed value under
    autograd; other arrays are returned as they are.

    Parameters
    ----------
    x : array

    Returns
    -------
    array
        ``x``'s values, treated as a constant by the autodiff backends.
    """
    if is_autograd_box(x):
        from autograd.tracer import getval

        return getval(x)
    library = _library(x)
    if library == "torch":
        return x.detach()
    if library == "jax":
        import jax

        return jax.lax.stop_gradient(x)
    return x


def at_set(x: Array, index: Any, value: Array | float) -> Array:
    """Return a copy of ``x`` with ``x[index] = value``; ``x`` itself is never written.

    Works on every backend and stays differentiable with respect to both ``x`` and
    ``value`` (autograd, JAX, torch).
    """
    return _at_update(x, index, value, "set")


def at_add(x: Array, index: Any, value: Array | float) -> Array:
    """Return a copy of ``x`` with ``x[index] += value``; ``x`` itself is never written."""
    return _at_update(x, index, value, "add")


def _at_update(x: Array, index: Any, value: Array | float, how: str) -> Array:
    if is_autograd_box(x) or is_autograd_box(value):
        from surrogate_natgrad._compat.autograd_namespace import scatter_update

        return scatter_update(x, value, index, how)
    import array_api_extra as xpx

    updater = xpx.at(x, index)
    xp = namespace(x)
    if is_jax_namespace(xp):
        return updater.set(value) if how == "set" else updater.add(value)
    return updater.set(value, copy=True) if how == "set" else updater.add(value, copy=True)


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """Return the broadcast shape of ``shapes`` (NumPy's rules, which the standard adopts)."""
    return tuple(np.broadcast_shapes(*[tuple(int(n) for n in s) for s in shapes]))
