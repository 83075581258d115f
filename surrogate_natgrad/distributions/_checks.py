"""Checks of count data, shared by the distributions (``from_data``) and the fit driver.

Pure array-API code (layer 3): the checks run in the data's own namespace and only the
error message, built after a failure, copies the offending value to the host.
"""

from __future__ import annotations

from surrogate_natgrad._compat import Array, as_float_array, is_array, namespace, size, to_numpy
from surrogate_natgrad.errors import DataError

__all__ = ["check_counts"]


def _describe_first(bad: Array, values: Array) -> tuple[int, object]:
    """Return the index and value of the first True entry of ``bad`` (for messages only)."""
    flags = to_numpy(bad)
    index = int(flags.nonzero()[0][0])
    return index, to_numpy(values)[index].item()


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
        If ``data`` is not one-dimensional, is empty, is boolean or complex, or holds a
        value that is NaN, infinite, negative or not an integer; the message names the
        argument and gives the first offending value and its index.
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
    if xp.isdtype(dtype, "bool") or xp.isdtype(dtype, "complex floating"):
        raise DataError(f"{name} must hold integer counts; got dtype {dtype}")
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
        raise DataError(
            f"{name} must hold integer counts; found {value!r} at index {index}"
        )
    return values
