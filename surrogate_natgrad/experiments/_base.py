"""The :class:`Problem` record shared by the experiment generators, and seeding helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surrogate_natgrad.distributions import Distribution

__all__ = ["SIZES", "Problem"]

#: Accepted values of the ``size`` argument.
SIZES = ("quick", "paper")


@dataclass(frozen=True)
class Problem:
    """A fully specified fitting problem.

    Attributes
    ----------
    name : str
        ``"E1"`` or ``"E2"``.
    distribution : type
        The target class (:class:`NegativeBinomial` or :class:`NegativeBinomialMixture`).
    data : numpy.ndarray
        The int64 counts.
    init : dict of str to numpy.ndarray
        The starting parameters (float64).
    truth : dict of str to numpy.ndarray
        The parameters the data were drawn from.
    n_components : int or None
        K for mixtures.
    max_iter : int
        The iteration budget of the experiment (100 for the full-batch NB runs).
    settings : dict
        Further settings of the experiment (e.g. ``mc_samples`` of the Monte Carlo Fisher).
    description : str
        One line saying what the problem is.
    validation_data : numpy.ndarray or None
        Held-out data (the last part of the paper's data sets), or None.
    kind : {"mle", "vi"}
        Maximum likelihood (``fit``) or variational inference (``fit_vi``).
    model : object or None
        For VI problems, the model supplying ``log_joint`` and ``dim``.
    """

    name: str
    distribution: type[Distribution] | Any
    data: np.ndarray | None
    init: dict[str, np.ndarray]
    truth: dict[str, np.ndarray]
    n_components: int | None = None
    max_iter: int = 100
    settings: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    validation_data: np.ndarray | None = None
    kind: str = "mle"
    model: Any = None

    def init_distribution(self) -> Distribution:
        """Return the starting point as a distribution instance (NumPy arrays).

        Returns
        -------
        Distribution
            The problem's distribution class at its initial parameters.
        """
        return self.distribution.from_params(self.init)

    def true_distribution(self) -> Distribution:
        """Return the data-generating distribution (NumPy arrays).

        Returns
        -------
        Distribution
            The problem's distribution class at the true parameters.
        """
        return self.distribution.from_params(self.truth)


def _check_size(size: str) -> None:
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")


def _streams(seed: int, count: int) -> list[np.random.Generator]:
    # Independent streams, so the data do not depend on how many draws the start makes.
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(count)]
