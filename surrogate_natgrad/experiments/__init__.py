"""Generators of the paper's synthetic experiments (So & Turner, 2024), fully seeded.

Each generator takes ``seed`` and ``size`` (``"quick"`` for CI, ``"paper"`` for the
paper's sizes) and returns a :class:`Problem`. So far:

- :func:`e1`: maximum likelihood of a negative binomial, N = 1000 counts with ``n = 5``,
  ``p = 1/11`` (mean 50, variance 550); random start ``n ~ Gamma(6.25, rate 1.25)``,
  ``p ~ U(0.05, 0.95)``.
- :func:`e2`: maximum likelihood of a K = 10 negative binomial mixture, N = 1000 counts;
  weights ``softmax(0.5 z)``, ``z ~ N(0, I)``; component means ``U(5, 5000)`` with variance
  nine times the mean (``p = 1/9``, ``n = mean / 8``); deterministic quantile-based start.

Driver layer: the data are generated with NumPy's ``Generator`` (PCG64) so they are the same
on every machine and backend; convert them with ``xp.asarray`` to fit on another backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from surrogate_natgrad.experiments._base import SIZES, Problem
from surrogate_natgrad.experiments._copula import e5
from surrogate_natgrad.experiments._count import e1, e2
from surrogate_natgrad.experiments._skew import e3, e4
from surrogate_natgrad.experiments._vi import e6, e7, e8

__all__ = ["PROBLEMS", "SIZES", "Problem", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "get"]

#: The experiment generators by name (``"E1"``, ``"E2"``, ...).
PROBLEMS: dict[str, Callable[..., Problem]] = {
    "E1": e1,
    "E2": e2,
    "E3": e3,
    "E4": e4,
    "E5": e5,
    "E6": e6,
    "E7": e7,
    "E8": e8,
}


def get(name: str, seed: int = 0, size: str = "quick", **options: Any) -> Problem:
    """Return experiment ``name`` (case-insensitive, e.g. ``"e1"``) generated with ``seed``.

    Parameters
    ----------
    name : str
        One of :data:`PROBLEMS`.
    seed : int, optional
        Seed of the problem's parameters and data.
    size : {"quick", "paper"}, optional
        Problem size.
    **options
        Passed to the generator (e.g. ``dim=`` for E3 and E4).

    Returns
    -------
    Problem
    """
    key = name.upper()
    if key not in PROBLEMS:
        raise ValueError(f"unknown experiment {name!r}; choose from {sorted(PROBLEMS)}")
    return PROBLEMS[key](seed=seed, size=size, **options)
