"""The mean negative log-likelihood of chunked data, as an ordinary differentiable objective.

Each chunk is reduced, by the executor, to ``(loss_sum, weight_sum, gradient)`` where
``loss_sum = sum_i -log p(x_i)`` and the gradient is taken with respect to the *target*
parameters (autodiff on the worker). The driver sums them and divides by the total weight.
The result is wrapped by :func:`surrogate_natgrad.autodiff.external_function` as a
primitive of the target parameters whose derivative is the summed gradient, so an update
rule differentiates through it like through any other objective (SNGD through its surrogate
map, the baselines through their unconstrained coordinates) on the driver.

Driver layer (layer 4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from surrogate_natgrad import autodiff
from surrogate_natgrad._compat import Array, device, namespace, size
from surrogate_natgrad._tree import tree_map
from surrogate_natgrad.chunked._data import ChunkedData
from surrogate_natgrad.errors import DataError

__all__ = [
    "ChunkStats",
    "chunk_count_task",
    "chunk_histogram_task",
    "chunk_loss_task",
    "chunked_histogram",
    "chunked_mean_nll",
    "chunked_objective",
    "validate_chunks",
]

#: At most about this many elements in one batched (line-search) evaluation of a chunk:
#: a grid of 1000 candidates on a chunk of two million rows is evaluated in row slices.
MAX_ELEMENTS = 2**22

ChunkStats = tuple[Any, Any, Any]  # (loss_sum, weight_sum, gradient or None)


def _check(cls: type, chunk: Any) -> Array:
    return cls.check_data(chunk, "data chunk")  # type: ignore[attr-defined]


def chunk_count_task(chunk: Any, shared: tuple[type, int]) -> int:
    """Validate one chunk and return its number of rows (worker side).

    Parameters
    ----------
    chunk : array
        The chunk.
    shared : tuple
        ``(cls, index)`` is not used per chunk; ``cls`` is the target class.

    Returns
    -------
    int
        The number of rows.
    """
    cls = shared[0]
    return int(_check(cls, chunk).shape[0])


def chunk_histogram_task(chunk: Any, shared: tuple[type]) -> tuple[Any, Any]:
    """Distinct values of one chunk of counts and their frequencies (worker side).

    Parameters
    ----------
    chunk : array
        Counts.
    shared : tuple
        ``(cls,)``, the target class (its ``check_data`` validates the chunk).

    Returns
    -------
    tuple of arrays
        ``(values, counts)`` as floating arrays of the chunk's namespace.
    """
    values = _check(shared[0], chunk)
    xp = namespace(values)
    unique = xp.unique_counts(values)
    return unique.values, xp.astype(unique.counts, values.dtype)


def _loss_sum(cls: Any, params: Mapping[str, Array], values: Array) -> Array:
    """``sum_i -log p(x_i)`` over a chunk, for parameters of any batch shape."""
    rows = int(values.shape[0])
    return cls.mean_nll(params, values) * rows


def chunk_loss_task(chunk: Any, shared: tuple[Any, Any, bool]) -> ChunkStats:
    """Loss sum, weight and (optionally) gradient of one chunk (worker side).

    Parameters
    ----------
    chunk : array
        Observations.
    shared : tuple
        ``(cls, params, with_grad)``: the target class, its parameters (possibly with a
        leading batch axis when ``with_grad`` is False) and whether to differentiate.

    Returns
    -------
    tuple
        ``(loss_sum, n_rows, gradient)``; the gradient (a dict like ``params``, with
        respect to the target parameters) is None unless ``with_grad``.
    """
    cls, params, with_grad = shared
    values = _check(cls, chunk)
    rows = int(values.shape[0])
    if with_grad:
        backend = autodiff.get_backend(None, values)
        value, grad = backend.value_and_grad(lambda p: _loss_sum(cls, p, values))(params)
        return value, rows, grad
    # Value only, perhaps for a batch of candidates: learn the batch size on one row,
    # then evaluate in row slices so a slice times the batch stays below MAX_ELEMENTS.
    batch = max(1, size(_loss_sum(cls, params, values[:1, ...])))
    step = max(1, MAX_ELEMENTS // batch)
    if step >= rows:
        return _loss_sum(cls, params, values), rows, None
    total = None
    for start in range(0, rows, step):
        piece = _loss_sum(cls, params, values[start : start + step, ...])
        total = piece if total is None else total + piece
    return total, rows, None


def validate_chunks(target: type, data: ChunkedData) -> int:
    """Check every chunk with ``target.check_data`` (one pass) and return the number of rows.

    Parameters
    ----------
    target : type
        The target class.
    data : ChunkedData
        The observations.

    Returns
    -------
    int
        The number of rows.

    Raises
    ------
    DataError
        For an invalid chunk, naming the chunk, its rows, and the first offending value
        and its index within the chunk.
    """
    cls = target
    counts = _map_checked(chunk_count_task, data, (cls,))
    return sum(counts)


def _map_checked(task: Callable[..., Any], data: ChunkedData, shared: Any) -> list[Any]:
    try:
        return data.executor.map(task, data, shared)
    except DataError:
        # Find the first bad chunk on the driver (error path only) so that the message
        # names the chunk and its rows; the index in the message is within the chunk.
        cls = shared[0]
        for index in range(data.n_chunks):
            start, stop = data.rows(index)
            cls.check_data(data.chunk(index), f"data (chunk {index}, rows {start}:{stop})")
        raise


def chunked_histogram(target: type, data: ChunkedData) -> tuple[Array, Array]:
    """Distinct values of chunked counts and their total frequencies (one pass).

    Parameters
    ----------
    target : type
        The (discrete) target class; validates every chunk.
    data : ChunkedData
        The counts.

    Returns
    -------
    tuple of arrays
        ``(values, frequencies)``, sorted by value, frequencies as floats: exactly what
        compressing the concatenated data would give.
    """
    cls = target
    pieces = _map_checked(chunk_histogram_task, data, (cls,))
    xp = namespace(*[values for values, _ in pieces])
    values = xp.concat([v for v, _ in pieces], axis=0)
    counts = xp.concat([c for _, c in pieces], axis=0)
    # Merge equal values: sort, then sum the frequencies of each run of equal values as
    # differences of the cumulative sum at the runs' ends (integers in floats: exact).
    order = xp.argsort(values, stable=True)
    values = xp.take(values, order)
    running = xp.cumulative_sum(xp.take(counts, order))
    ends = xp.nonzero(values[1:] != values[:-1])[0]
    last = xp.asarray([int(values.shape[0]) - 1], dtype=ends.dtype, device=device(ends))
    ends = xp.concat([ends, last])
    at_ends = xp.take(running, ends)
    zero = xp.zeros((1,), dtype=at_ends.dtype, device=device(at_ends))
    totals = at_ends - xp.concat([zero, at_ends[:-1]])
    return xp.take(values, ends), totals


def _sum_stats(results: list[ChunkStats], with_grad: bool) -> ChunkStats:
    loss = results[0][0]
    weight = results[0][1]
    grad = results[0][2]
    for chunk_loss, chunk_weight, chunk_grad in results[1:]:
        loss = loss + chunk_loss
        weight = weight + chunk_weight
        if with_grad:
            grad = tree_map(lambda a, b: a + b, grad, chunk_grad)
    return loss, weight, grad


def chunked_mean_nll(target: type, data: ChunkedData, params: Mapping[str, Array]) -> Array:
    """Mean negative log-likelihood of the chunked data (value only, any batch shape).

    Parameters
    ----------
    target : type
        The target class.
    data : ChunkedData
        The observations.
    params : mapping of str to array
        The target parameters (possibly with a leading batch axis of candidates).

    Returns
    -------
    array
        ``-sum_i log p(x_i) / N``.
    """
    cls = target
    results = data.executor.map(chunk_loss_task, data, (cls, dict(params), False))
    loss, weight, _ = _sum_stats(results, False)
    return loss / weight


def chunked_objective(target: type, data: ChunkedData) -> Callable[[Any], Array]:
    """The chunked mean NLL as a differentiable function of the target parameters.

    Parameters
    ----------
    target : type
        The target class.
    data : ChunkedData
        The observations.

    Returns
    -------
    callable
        ``objective(params) -> 0-d array`` (or the batch of losses for a batch of
        candidates), differentiable under autograd/torch/JAX with the summed per-chunk
        gradient (see :func:`surrogate_natgrad.autodiff.external_function`).
    """
    cls = target

    def value_and_grad(params: Mapping[str, Array]) -> tuple[Array, Any]:
        results = data.executor.map(chunk_loss_task, data, (cls, dict(params), True))
        loss, weight, grad = _sum_stats(results, True)
        scale = 1.0 / float(weight)
        return loss * scale, tree_map(lambda g: g * scale, grad)

    def value(params: Mapping[str, Array]) -> Array:
        return chunked_mean_nll(cls, data, params)

    return autodiff.external_function(value_and_grad, value, name="chunked_mean_nll")


class ChunkedFitData:
    """What :func:`~surrogate_natgrad.fit` needs from chunked data (built by :func:`prepare_fit`).

    Parameters
    ----------
    target : type
        The target class.
    data : ChunkedData
        The observations (one validating pass, or the histogram pass, runs here).

    Attributes
    ----------
    data : ChunkedData
        The chunks.
    n_obs : int
        Number of observations.
    start : array
        Checked rows for the data-driven start, the namespace and the dtype (all rows, or
        ``data.start_rows`` evenly spaced ones).
    distinct, frequencies : array or None
        For count targets with ``data.histogram``: the distinct values and their
        frequencies over all chunks (the fit then runs in memory on them); else None.
    """

    def __init__(self, target: type, data: ChunkedData) -> None:
        cls = target
        self.cls = cls
        self.data = data
        self.distinct: Array | None = None
        self.frequencies: Array | None = None
        if getattr(cls, "discrete", False) and data.histogram:
            self.distinct, self.frequencies = chunked_histogram(cls, data)
            self.n_obs = round(float(namespace(self.frequencies).sum(self.frequencies)))
        else:
            self.n_obs = validate_chunks(cls, data)
        self.start = _check(cls, data.start_sample())
        self._objective: Callable[[Any], Array] | None = None

    def objective(self) -> Callable[[Any], Array]:
        """The chunked mean NLL of the target parameters (see :func:`chunked_objective`).

        Returns
        -------
        callable
            ``objective(params) -> 0-d array``, differentiable.
        """
        if self._objective is None:
            self._objective = chunked_objective(self.cls, self.data)
        return self._objective

    def mean_nll(self, params: Mapping[str, Array]) -> Array:
        """Mean NLL over all chunks (value only).

        Parameters
        ----------
        params : mapping of str to array
            The target parameters.

        Returns
        -------
        array
            The mean negative log-likelihood.
        """
        return chunked_mean_nll(self.cls, self.data, params)

    def take(self, indices: Array) -> Array:
        """Checked rows ``indices`` (a minibatch).

        Parameters
        ----------
        indices : array of int
            Row indices.

        Returns
        -------
        array
            The rows, checked by the target's ``check_data``.
        """
        return _check(self.cls, self.data.take(indices))


def prepare_fit(target: type, data: object) -> ChunkedFitData | None:
    """Chunked-data support of :func:`~surrogate_natgrad.fit`: None for in-memory data.

    Parameters
    ----------
    target : type
        The target class.
    data : object
        The ``data`` argument of the fit: a :class:`ChunkedData`, a Dask array, a NumPy
        memory map or a ``.npy`` path are chunked (other arrays are in memory).

    Returns
    -------
    ChunkedFitData or None
        After one validating pass over the chunks (which, for counts, also builds the
        histogram).
    """
    cls = target
    from surrogate_natgrad.chunked._data import is_chunked_input

    if not is_chunked_input(data):
        return None
    chunked = data if isinstance(data, ChunkedData) else ChunkedData(data)
    return ChunkedFitData(cls, chunked)


def chunk_log_likelihood_task(chunk: Any, shared: tuple[Any, Any, bool]) -> tuple[Any, Any]:
    """Per-sample log-likelihood of one chunk and its gradient (worker side).

    Parameters
    ----------
    chunk : array
        Observations.
    shared : tuple
        ``(log_likelihood, samples, with_grad)``.

    Returns
    -------
    tuple
        ``(values, gradient)``: ``values[s] = log_likelihood(samples, chunk)[s]`` and the
        gradient of their sum with respect to ``samples`` (row ``s`` belongs to sample
        ``s``), or None unless ``with_grad``.
    """
    log_likelihood, samples, with_grad = shared
    if not with_grad:
        return log_likelihood(samples, chunk), None
    backend = autodiff.get_backend(None, samples)

    def total(z: Any) -> Any:
        values = log_likelihood(z, chunk)
        return namespace(values).sum(values)

    values = log_likelihood(samples, chunk)
    _, grad = backend.value_and_grad(total)(samples)
    return values, grad


def chunked_log_likelihood(
    log_likelihood: Callable[[Any, Any], Array], data: ChunkedData
) -> Callable[[Any], Array]:
    """A log-likelihood summed over chunks, as a differentiable function of samples (for VI).

    Parameters
    ----------
    log_likelihood : callable
        ``log_likelihood(z, chunk) -> (S,)``: for samples ``z`` of shape ``(S, d)``, the
        log-likelihood of the rows of ``chunk`` summed over the rows (not averaged),
        written with the array namespace of ``z`` (a module-level function for Dask).
    data : ChunkedData
        The observations.

    Returns
    -------
    callable
        ``f(z) -> (S,)``, the sum over all chunks, differentiable with respect to ``z``
        (per-sample gradients summed over chunks); use it inside the ``log_joint`` of
        :func:`~surrogate_natgrad.fit_vi`, e.g. ``lambda z: log_prior(z) + f(z)``.

    Examples
    --------
    >>> import numpy as np
    >>> data = ChunkedData([np.array([0.5, 1.5]), np.array([1.0])])
    >>> def log_lik(z, chunk):  # unit-variance Gaussian likelihood of a mean z[:, 0]
    ...     return -0.5 * ((chunk[None, :] - z[:, :1]) ** 2).sum(axis=1)
    >>> f = chunked_log_likelihood(log_lik, data)
    >>> f(np.array([[1.0], [0.0]])).tolist()
    [-0.25, -1.75]
    """

    def value_and_grad(samples: Any) -> tuple[Array, Any]:
        results = data.executor.map(
            chunk_log_likelihood_task, data, (log_likelihood, samples, True)
        )
        values, grad = results[0]
        for chunk_values, chunk_grad in results[1:]:
            values, grad = values + chunk_values, grad + chunk_grad
        return values, grad

    def value(samples: Any) -> Array:
        results = data.executor.map(
            chunk_log_likelihood_task, data, (log_likelihood, samples, False)
        )
        total = results[0][0]
        for chunk_values, _ in results[1:]:
            total = total + chunk_values
        return total

    return autodiff.external_function(
        value_and_grad, value, rowwise=True, name="chunked_log_likelihood"
    )
