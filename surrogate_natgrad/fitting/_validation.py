"""Checks of the arguments of :func:`surrogate_natgrad.fit` (data and options)."""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any

from surrogate_natgrad._compat import Array, namespace
from surrogate_natgrad.distributions import check_counts
from surrogate_natgrad.errors import DataError

__all__ = [
    "check_callable",
    "check_counts",
    "check_option",
    "check_positive_int",
    "check_real",
    "check_validation_data",
]


def check_validation_data(validation_data: object, data: Array, distribution: Any = None) -> Array:
    """Check ``validation_data`` like ``data`` and require the same namespace and device.

    Parameters
    ----------
    validation_data : array
        Held-out observations.
    data : array
        The (already checked) training data.
    distribution : type, optional
        The target class whose ``check_data`` applies (counts when None).

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
    if distribution is None:
        values = check_counts(validation_data, "validation_data")
    else:
        values = distribution.check_data(validation_data, "validation_data")
    if tuple(values.shape[1:]) != tuple(data.shape[1:]):
        raise DataError(
            "validation_data must have the shape of one observation of data: got shape "
            f"{tuple(values.shape)} for data of shape {tuple(data.shape)}"
        )
    namespace(data=data, validation_data=values)
    if values.dtype != data.dtype:
        values = namespace(values).astype(values, data.dtype)
    return values


def check_option(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    """Raise :class:`DataError` naming ``name`` unless ``value`` is one of ``allowed``.

    Only values of an option's type compare equal, so an array or a list never reaches an
    elementwise ``==`` (whose truth value would be ambiguous).
    """
    if not any(
        value is option or (isinstance(value, type(option)) and value == option)
        for option in allowed
    ):
        raise DataError(f"{name} must be one of {allowed!r}, got {value!r}")


def check_positive_int(name: str, value: Any, *, allow_none: bool = True) -> None:
    """Raise :class:`DataError` unless ``value`` is a positive int (or None when allowed)."""
    if value is None and allow_none:
        return
    # operator.index accepts Python and NumPy integers but not floats (2.0) or strings.
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if isinstance(value, bool) or number is None or number < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")


def check_real(
    name: str,
    value: Any,
    *,
    positive: bool = False,
    allow_none: bool = True,
    allow_inf: bool = False,
) -> None:
    """Raise :class:`DataError` unless ``value`` is a finite real number.

    Parameters
    ----------
    name : str
        The argument's name, used in the message.
    value : object
        The value to check: a Python or NumPy real number (not a bool, string or array).
    positive : bool, optional
        Require ``value > 0`` (otherwise ``value >= 0``).
    allow_none : bool, optional
        Accept None (an option left at its default).
    allow_inf : bool, optional
        Accept ``inf`` too (an option whose infinite value means "off").

    Raises
    ------
    DataError
        Naming the argument, the offending value and what would be valid.
    """
    if value is None and allow_none:
        return
    sign = "a positive" if positive else "a non-negative"
    wanted = f"{sign} number or inf" if allow_inf else f"{sign} finite number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DataError(f"{name} must be {wanted}, got {value!r}")
    number = float(value)
    finite = math.isfinite(number) or (allow_inf and number == math.inf)
    if not finite or number < 0 or (positive and number == 0):
        raise DataError(f"{name} must be {wanted}, got {value!r}")


#: Accepted names of the square-root parameterisations of a scale matrix (the paper's
#: ``covariance-msqrt`` / ``precision-msqrt`` included) and the canonical name of each.
_PARAMETERIZATION_NAMES = {
    "cholesky": "cholesky",
    "covariance-msqrt": "cholesky",
    "scale": "cholesky",
    "precision": "precision",
    "precision-msqrt": "precision",
}


def check_parameterization(value: Any) -> str:
    """Return the canonical name (``"cholesky"`` or ``"precision"``) of a parameterisation.

    Raises
    ------
    DataError
        When ``value`` is not one of the accepted names.
    """
    if not isinstance(value, str) or value not in _PARAMETERIZATION_NAMES:
        raise DataError(
            f"parameterization must be one of {sorted(_PARAMETERIZATION_NAMES)}, got {value!r}"
        )
    return _PARAMETERIZATION_NAMES[value]


def check_callable(name: str, value: Any, *, allow_none: bool = True) -> None:
    """Raise :class:`DataError` unless ``value`` is callable (or None when allowed)."""
    if value is None and allow_none:
        return
    if not callable(value):
        raise DataError(
            f"{name} must be callable (a function taking one argument), got "
            f"{type(value).__name__} {value!r}"
        )
