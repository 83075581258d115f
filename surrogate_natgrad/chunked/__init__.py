"""Fitting data larger than memory: chunked objectives on a process, threads or Dask.

SNGD's cost per step is one pass over the data, a sum of per-datum terms, so it shards:
each chunk is reduced to a loss sum and the gradient with respect to the target parameters,
the driver sums them and takes the natural-gradient step through its surrogate map as
usual. Count data are reduced once to a histogram (distinct values and frequencies), which
is exact and makes every later step independent of the number of observations.

:func:`surrogate_natgrad.fit` accepts chunked data directly: a :class:`ChunkedData`, a Dask
array, a NumPy memory map or the path of a ``.npy`` file. For
:func:`surrogate_natgrad.fit_vi`, :func:`chunked_log_likelihood` sums a per-chunk
log-likelihood of the samples inside ``log_joint``.

Examples
--------
>>> import numpy as np
>>> from surrogate_natgrad import fit
>>> from surrogate_natgrad.chunked import ChunkedData, ThreadPoolExecutor
>>> from surrogate_natgrad.distributions import NegativeBinomial
>>> counts = np.random.default_rng(0).negative_binomial(5, 1 / 11, size=10_000)
>>> chunks = ChunkedData(np.split(counts, 4), executor=ThreadPoolExecutor(2))
>>> fit(NegativeBinomial, chunks).converged
True
"""

from __future__ import annotations

from surrogate_natgrad.chunked._data import ChunkedData, is_chunked_input, load_npy_rows, split_rows
from surrogate_natgrad.chunked._executors import (
    DaskExecutor,
    InProcessExecutor,
    ThreadPoolExecutor,
    default_executor,
)
from surrogate_natgrad.chunked._objective import (
    ChunkedFitData,
    chunked_histogram,
    chunked_log_likelihood,
    chunked_mean_nll,
    chunked_objective,
    prepare_fit,
    validate_chunks,
)

__all__ = [
    "ChunkedData",
    "ChunkedFitData",
    "DaskExecutor",
    "InProcessExecutor",
    "ThreadPoolExecutor",
    "chunked_histogram",
    "chunked_log_likelihood",
    "chunked_mean_nll",
    "chunked_objective",
    "default_executor",
    "is_chunked_input",
    "load_npy_rows",
    "prepare_fit",
    "split_rows",
    "validate_chunks",
]
