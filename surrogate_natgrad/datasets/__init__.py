"""Built-in count data sets: a real over-dispersed data set and the synthetic E1/E2 data.

``randhie``
    Number of outpatient visits to a doctor (``mdvis``) of 20,190 people in the RAND Health
    Insurance Experiment, as shipped with statsmodels (public domain). Strongly
    over-dispersed (mean 2.86, variance 20.3). A copy ships with this package, so loading
    needs neither statsmodels nor a network.
``e1``
    1000 negative binomial counts with ``n = 5``, ``p = 1/11`` (experiment E1, seed 0).
``e2``
    1000 counts from a 10-component negative binomial mixture (experiment E2, seed 0).

Driver layer: data are read and generated with NumPy and returned as NumPy arrays, or
converted to another namespace when ``xp`` is given.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np

__all__ = ["DATASETS", "available", "describe", "load", "load_randhie"]

#: Names of the built-in data sets and a one-line description of each.
DATASETS = {
    "randhie": "RAND Health Insurance Experiment: outpatient doctor visits (mdvis), "
    "N = 20190, public domain (statsmodels)",
    "e1": "experiment E1: 1000 negative binomial counts, n = 5, p = 1/11 (seed 0)",
    "e2": "experiment E2: 1000 counts from a 10-component negative binomial mixture (seed 0)",
}


def available() -> list[str]:
    """Return the names of the built-in data sets.

    Returns
    -------
    list of str
    """
    return list(DATASETS)


def describe(name: str) -> str:
    """Return a one-line description of the data set ``name``.

    Parameters
    ----------
    name : str
        One of :func:`available`.

    Returns
    -------
    str
    """
    _check_name(name)
    return DATASETS[name]


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(DATASETS)}")


def load_randhie(*, source: str = "bundled") -> np.ndarray:
    """Load the ``mdvis`` counts of the RAND Health Insurance Experiment.

    Parameters
    ----------
    source : {"bundled", "statsmodels"}, optional
        ``"bundled"`` (default) reads the copy shipped with this package;
        ``"statsmodels"`` reads it from :mod:`statsmodels.datasets` (installed locally; no
        network either way).

    Returns
    -------
    numpy.ndarray
        20,190 int64 counts.

    Raises
    ------
    ImportError
        If ``source="statsmodels"`` and statsmodels is not installed.
    ValueError
        For an unknown ``source``.
    """
    if source == "bundled":
        text = resources.files(__name__).joinpath("data", "randhie_mdvis.csv").read_text()
        lines = text.split()
        return np.asarray([int(v) for v in lines[1:]], dtype=np.int64)
    if source == "statsmodels":
        try:
            from statsmodels.datasets import randhie
        except ImportError as exc:
            raise ImportError(
                "load_randhie(source='statsmodels') needs statsmodels "
                "(pip install statsmodels); the default source='bundled' does not"
            ) from exc
        frame = randhie.load_pandas().data
        return np.asarray(frame["mdvis"], dtype=np.int64)
    raise ValueError(f"source must be 'bundled' or 'statsmodels', got {source!r}")


def load(name: str, *, xp: Any = None, device: Any = None) -> Any:
    """Load a built-in data set of counts.

    Parameters
    ----------
    name : str
        One of :func:`available`: ``"randhie"``, ``"e1"``, ``"e2"``.
    xp : namespace, optional
        Array namespace of the result (NumPy when None), e.g. ``torch`` or ``jax.numpy``.
    device : optional
        Device of the result (with ``xp``).

    Returns
    -------
    array
        One-dimensional int64 counts.
    """
    _check_name(name)
    if name == "randhie":
        counts = load_randhie()
    else:
        from surrogate_natgrad import experiments

        problem = experiments.e1() if name == "e1" else experiments.e2()
        counts = np.asarray(problem.data)
    if xp is None:
        return counts
    if device is None:
        return xp.asarray(counts)
    return xp.asarray(counts, device=device)
