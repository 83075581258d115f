"""Checks of the arguments of :func:`surrogate_natgrad.fit` (data and options)."""

from __future__ import annotations

from typing import Any

from surrogate_natgrad._compat import Array, namespace
from surrogate_natgrad.distributions import check_counts
from surrogate_natgrad.errors import DataError

__all__ = ["check_counts", "check_option", "check_positive_int", "check_validation_data"]


def check_validation_data(validation_data: object, data: Array) -> Array:
    """Check ``validation_data`` like ``data`` and require the same namespace and device.

    Parameters
    ----------
    validation_data : array
        Held-out counts.
    data : array
        The (already checked) training counts.

    Returns
    -------
    array
        The validation counts as a floating array of the training data's dtype.

    Raises
    ------
    DataError
        For invalid counts (see :func:`check_counts`).
    BackendError
        If the two arrays come from different libraries or devices.
    """
    values = check_counts(validation_data, "validation_data")
    namespace(data=data, validation_data=values)
    if values.dtype != data.dtype:
        values = namespace(values).astype(values, data.dtype)
    return values


def check_option(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    """Raise :class:`DataError` naming ``name`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise DataError(f"{name} must be one of {allowed!r}, got {value!r}")


def check_positive_int(name: str, value: Any, *, allow_none: bool = True) -> None:
    """Raise :class:`DataError` unless ``value`` is a positive int (or None when allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")
