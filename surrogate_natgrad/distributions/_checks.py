"""Checks of count data, shared by the distributions (``from_data``) and the fit driver.

Pure array-API code (layer 3): the checks run in the data's own namespace and only the
error message, built after a failure, copies the offending value to the host.
"""

from __future__ import annotations

from typing import Any

from surrogate_natgrad._compat import (
    Array,
    Namespace,
    as_float_array,
    is_array,
    namespace,
    size,
    to_numpy,
)
from surrogate_natgrad.errors import DataError

__all__ = ["MIN_FLOAT_BITS", "check_counts", "check_float_precision", "check_real_data"]

#: Floating types narrower than this many bits are refused: float16 (and bfloat16) have a
#: machine epsilon near 1e-3, far too coarse for log-likelihoods, gradients and the
#: dtype-derived tolerances of the optimisers (``eps**0.625`` would be about 1e-2).
MIN_FLOAT_BITS = 32


def _describe_first(bad: Array, values: Array) -> tuple[int, object]:
    """Return the index and value of the first True entry of ``bad`` (for messages only)."""
    flags = to_numpy(bad)
    index = int(flags.nonzero()[0][0])
    return index, to_numpy(values)[index].item()


def check_float_precision(xp: Namespace, dtype: Any, name: str) -> None:
    """Raise :class:`DataError` for a floating ``dtype`` narrower than 32 bits.

    The library computes in the precision of its inputs (float32 stays float32); half
    precision is refused rather than silently upcast, so the caller decides.

    Parameters
    ----------
    xp : namespace
        The array namespace of the value being checked.
    dtype : dtype
        Its dtype.
    name : str
        The argument's name, used in the message.

    Raises
    ------
    DataError
        For float16, bfloat16 and other floating types of fewer than 32 bits.
    """
    if not xp.isdtype(dtype, "real floating"):
        return
    bits = int(xp.finfo(dtype).bits)
    if bits < MIN_FLOAT_BITS:
        raise DataError(
            f"{name} has dtype {dtype} ({bits}-bit floating point), which is too imprecise "
            "for fitting (machine epsilon about 1e-3); convert it to float32 or float64 "
            "first, e.g. with data.astype(numpy.float32)"
        )


def _is_real_numeric(xp: Namespace, dtype: Any) -> bool:
    """Return True for integer and real floating dtypes (not bool, complex, str, object)."""
    try:
        return bool(xp.isdtype(dtype, ("integral", "real floating")))
    except (TypeError, ValueError):  # a dtype the namespace does not know (strings, ...)
        return False


def check_counts(data: object, name: str = "data") -> Array:
    """Check that ``data`` holds counts and return it as a floating array of its namespace.

    Counts are finite, non-negative integer values in a one-dimensional, non-empty array of
    any numeric dtype (``3.0`` is a count, ``2.5`` is not).

    Parameters
    ----------
    data : array
        The counts (NumPy, CuPy, torch, JAX or array-api-strict array).
    name : str, optional
        The argument's name, used in error messages.

    Returns
    -------
    array
        The counts as a floating array (float64 unless ``data`` is already floating) in
        the namespace and on the device of ``data``. ``data`` itself is not modified.

    Raises
    ------
    DataError
        If ``data`` is not one-dimensional, is empty, is not of a real numeric dtype
        (boolean, complex, strings, objects), is of a floating type narrower than 32 bits
        (float16, bfloat16: refused rather than silently upcast), or holds a value that
        is NaN, infinite, negative or not an integer; the message names the argument and
        gives the first offending value and its index.
    BackendError
        If ``data`` is not an array (a list, say).
    """
    if not is_array(data):
        # namespace() raises the BackendError that names the argument and the fix.
        namespace(**{name: data})
    xp = namespace(**{name: data})
    if data.ndim != 1:  # type: ignore[attr-defined]
        raise DataError(
            f"{name} must be a one-dimensional array of counts; got an array of shape "
            f"{tuple(data.shape)}"  # type: ignore[attr-defined]
        )
    if size(data) == 0:
        raise DataError(f"{name} is empty; at least one count is needed")
    dtype = data.dtype  # type: ignore[attr-defined]
    if not _is_real_numeric(xp, dtype):
        raise DataError(
            f"{name} must hold integer counts as a real numeric (integer or floating) "
            f"array; got dtype {dtype}"
        )
    check_float_precision(xp, dtype, name)
    values = as_float_array(data, xp)
    if xp.isdtype(dtype, "integral"):
        bad_sign = values < 0
        if bool(xp.any(bad_sign)):
            index, value = _describe_first(bad_sign, data)
            raise DataError(
                f"{name} must hold non-negative counts; found {value!r} at index {index}"
            )
        return values
    not_finite = xp.logical_not(xp.isfinite(values))
    if bool(xp.any(not_finite)):
        index, value = _describe_first(not_finite, values)
        raise DataError(f"{name} must hold finite counts; found {value!r} at index {index}")
    negative = values < 0
    if bool(xp.any(negative)):
        index, value = _describe_first(negative, values)
        raise DataError(f"{name} must hold non-negative counts; found {value!r} at index {index}")
    fractional = values != xp.floor(values)
    if bool(xp.any(fractional)):
        index, value = _describe_first(fractional, values)
        raise DataError(f"{name} must hold integer counts; found {value!r} at index {index}")
    return values


def check_real_data(data: object, name: str = "data", *, event_ndim: int = 0) -> Array:
    """Check that ``data`` holds finite real observations; return a floating array.

    Parameters
    ----------
    data : array
        Observations of shape ``(N,)`` (``event_ndim = 0``) or ``(N, d)``
        (``event_ndim = 1``), any real dtype.
    name : str, optional
        The argument's name, used in error messages.
    event_ndim : int, optional
        Number of trailing axes of one observation.

    Returns
    -------
    array
        ``data`` as a floating array (float64 unless already floating) in its namespace and
        on its device. ``data`` itself is not modified.

    Raises
    ------
    DataError
        If ``data`` has the wrong number of dimensions, is empty, is not of a real numeric
        dtype (boolean, complex, strings, objects), is of a floating type narrower than 32
        bits (float16, bfloat16), or holds a NaN or infinite value (naming the first one
        and its index).
    BackendError
        If ``data`` is not an array.
    """
    if not is_array(data):
        namespace(**{name: data})
    xp = namespace(**{name: data})
    expected = 1 + event_ndim
    shape = tuple(data.shape)  # type: ignore[attr-defined]
    if len(shape) != expected:
        wanted = "(N,)" if event_ndim == 0 else "(N, d)"
        raise DataError(
            f"{name} must have shape {wanted} ({expected}-dimensional); got shape {shape}"
        )
    if size(data) == 0:
        raise DataError(f"{name} is empty; at least one observation is needed")
    dtype = data.dtype  # type: ignore[attr-defined]
    if not _is_real_numeric(xp, dtype):
        raise DataError(
            f"{name} must hold real numbers (an integer or floating array); got dtype {dtype}"
        )
    check_float_precision(xp, dtype, name)
    values = as_float_array(data, xp)
    not_finite = xp.logical_not(xp.isfinite(values))
    if bool(xp.any(not_finite)):
        flags = to_numpy(not_finite)  # reporting only
        index = tuple(int(i[0]) for i in flags.nonzero())
        value = to_numpy(values)[index].item()
        where = index[0] if len(index) == 1 else index
        raise DataError(f"{name} must hold finite values; found {value!r} at index {where}")
    return values
