"""Exceptions and warnings raised by :mod:`surrogate_natgrad`.

Every error the library raises on purpose derives from :class:`SurrogateNatgradError`,
and also from the built-in exception a Python user would expect (``ValueError`` for bad
values, ``TypeError`` for wrong types), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ConvergenceWarning",
    "DataError",
    "DomainError",
    "SurrogateNatgradError",
]


class SurrogateNatgradError(Exception):
    """Base class of every error raised on purpose by :mod:`surrogate_natgrad`."""


class DataError(SurrogateNatgradError, ValueError):
    """Data that cannot be used: NaN or infinite values, wrong shape, outside the support."""


class DomainError(SurrogateNatgradError, ValueError):
    """Parameters outside the domain of a distribution or of a parameter map."""


class BackendError(SurrogateNatgradError, TypeError):
    """Arrays from different libraries or devices, or a missing or unusable backend."""


class ConvergenceWarning(UserWarning):
    """An optimisation stopped before meeting its convergence criterion."""
