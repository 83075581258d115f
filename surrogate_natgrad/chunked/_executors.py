"""Executors: who reduces the chunks (this process, a thread pool, a Dask cluster).

An executor has one method, ``map(task, data, shared)``, returning ``[task(chunk_i,
shared) for each chunk]`` in chunk order. ``shared`` (the parameters of one step, say) is
sent once per call: :class:`DaskExecutor` broadcasts it to every worker with
``client.scatter(..., broadcast=True)``, and Dask re-runs the tasks of a worker that is
lost (``retries`` more for tasks that raise).

Driver layer (layer 4).
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable
from typing import Any

from surrogate_natgrad.chunked._data import ChunkedData, load_chunk
from surrogate_natgrad.errors import DataError

__all__ = ["DaskExecutor", "InProcessExecutor", "ThreadPoolExecutor", "default_executor"]

Task = Callable[[Any, Any], Any]


def _run_on_spec(task: Task, spec: Any, shared: Any) -> Any:
    """Worker-side: materialise the chunk from its spec, then run the task."""
    return task(load_chunk(spec), shared)


class InProcessExecutor:
    """Reduce the chunks one after the other in this process (the default).

    Examples
    --------
    >>> import numpy as np
    >>> from surrogate_natgrad.chunked import ChunkedData
    >>> data = ChunkedData([np.ones(2), np.ones(3)])
    >>> InProcessExecutor().map(lambda chunk, shared: chunk.shape[0] * shared, data, 10)
    [20, 30]
    """

    def __repr__(self) -> str:
        return "InProcessExecutor()"

    def map(self, task: Task, data: ChunkedData, shared: Any) -> list[Any]:
        """Return ``[task(chunk, shared) for chunk in data.chunks]``.

        Parameters
        ----------
        task : callable
            ``task(chunk, shared) -> result``.
        data : ChunkedData
            The chunks.
        shared : object
            Passed to every task.

        Returns
        -------
        list
            One result per chunk, in order.
        """
        return [task(chunk, shared) for chunk in data.chunks]


class ThreadPoolExecutor:
    """Reduce the chunks on a pool of threads of this process.

    NumPy, SciPy and torch release the GIL in their kernels, so chunks overlap partly; the
    chunks being read from disk overlap with computation too.

    Parameters
    ----------
    max_workers : int, optional
        Number of threads (default: the number of CPUs).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise DataError(f"max_workers must be a positive integer, got {max_workers!r}")
        self.max_workers = max_workers or os.cpu_count() or 1
        self._pool = concurrent.futures.ThreadPoolExecutor(self.max_workers)

    def __repr__(self) -> str:
        return f"ThreadPoolExecutor(max_workers={self.max_workers})"

    def map(self, task: Task, data: ChunkedData, shared: Any) -> list[Any]:
        """Return ``[task(chunk, shared) for chunk in data.chunks]``, computed on the pool.

        Parameters
        ----------
        task : callable
            ``task(chunk, shared) -> result``.
        data : ChunkedData
            The chunks.
        shared : object
            Passed to every task.

        Returns
        -------
        list
            One result per chunk, in order.
        """

        def run(index: int) -> Any:
            return task(data.chunk(index), shared)

        futures = [self._pool.submit(run, index) for index in range(data.n_chunks)]
        return [future.result() for future in futures]

    def shutdown(self) -> None:
        """Stop the threads."""
        self._pool.shutdown()


class DaskExecutor:
    """Reduce the chunks as tasks on a ``dask.distributed`` cluster.

    Per call, ``shared`` (the parameters) is scattered once to every worker
    (``broadcast=True``), and one task per chunk runs ``task(chunk, shared)`` where the
    chunk lives: Dask array blocks are computed once on the workers and kept there
    (``client.compute``); memory-mapped files are read by the workers from disk (a shared
    or local file system); chunks given as in-memory arrays are scattered once.

    When a worker is lost, the scheduler re-runs its tasks elsewhere, recomputing Dask
    array blocks and re-reading file chunks from their source (scattered in-memory chunks
    cannot be recomputed: use a Dask array or a file for resilience). ``retries`` re-runs
    tasks that raise (a transient I/O error, say).

    Parameters
    ----------
    client : dask.distributed.Client
        The cluster's client.
    retries : int, optional
        Retries per task (default 2).

    Notes
    -----
    Tasks compute with NumPy on the workers (autograd for the gradients); the parameters
    travel as NumPy arrays, so Dask reduction is for NumPy data.
    """

    def __init__(self, client: Any, *, retries: int = 2) -> None:
        if not hasattr(client, "scatter") or not hasattr(client, "map"):
            raise DataError(
                f"client must be a dask.distributed.Client, got {type(client).__name__}"
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise DataError(f"retries must be a non-negative integer, got {retries!r}")
        self.client = client
        self.retries = retries
        self._inputs: dict[int, list[Any]] = {}

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client!r}, retries={self.retries})"

    def _chunk_inputs(self, data: ChunkedData) -> list[Any]:
        """Per-chunk task inputs, created once per data set (kept on the workers)."""
        key = id(data)
        if key not in self._inputs:
            if data.dask_array is not None:
                blocks = data.dask_array.to_delayed().ravel().tolist()
                inputs = self.client.compute(blocks)
            else:
                specs = data.chunk_specs()
                if specs and not isinstance(specs[0], tuple):
                    inputs = self.client.scatter(specs)
                else:
                    inputs = specs
            self._inputs[key] = inputs
        return self._inputs[key]

    def map(self, task: Task, data: ChunkedData, shared: Any) -> list[Any]:
        """Return ``[task(chunk, shared) for each chunk]``, computed on the cluster.

        Parameters
        ----------
        task : callable
            ``task(chunk, shared) -> result`` (picklable: a module-level function).
        data : ChunkedData
            The chunks.
        shared : object
            Broadcast once to every worker.

        Returns
        -------
        list
            One result per chunk, in order.
        """
        inputs = self._chunk_inputs(data)
        shared_future = self._scatter(shared)
        futures = self.client.map(
            _run_on_spec,
            [task] * len(inputs),
            inputs,
            [shared_future] * len(inputs),
            retries=self.retries,
            pure=False,
        )
        try:
            return list(self.client.gather(futures))
        finally:
            del futures, shared_future

    def _scatter(self, shared: Any) -> Any:
        """Broadcast ``shared`` to every worker; without broadcast if a worker just died.

        A broadcast to a worker that is being removed fails (after the connect timeout);
        the parameters are then placed on one worker and Dask copies them where needed.
        """
        try:
            return self.client.scatter(shared, broadcast=True, hash=False)
        except (OSError, TimeoutError):
            return self.client.scatter(shared, broadcast=False, hash=False)

    def release(self, data: ChunkedData) -> None:
        """Forget the chunks of ``data`` kept on the workers.

        Parameters
        ----------
        data : ChunkedData
            The data whose chunks were kept.
        """
        self._inputs.pop(id(data), None)


def default_executor(data: ChunkedData) -> Any:
    """The executor for ``data`` when none is given.

    A Dask array with an active ``dask.distributed`` client gets a :class:`DaskExecutor`
    on that client; everything else is reduced in process.

    Parameters
    ----------
    data : ChunkedData
        The chunks.

    Returns
    -------
    executor
    """
    if data.dask_array is not None:
        try:
            from distributed import default_client
        except ImportError:  # pragma: no cover - dask without distributed
            return InProcessExecutor()
        try:
            return DaskExecutor(default_client())
        except ValueError:  # no client: compute blocks with Dask's local scheduler
            return InProcessExecutor()
    return InProcessExecutor()
