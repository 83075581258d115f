"""Data given in chunks: a sequence of arrays, a memory-mapped ``.npy`` file, a Dask array.

Driver layer (layer 4). Only the rows of one chunk are in memory at a time (per worker):
memory-mapped chunks are copied out of the mapping and the mapping's pages are released
again (``madvise(MADV_DONTNEED)``), so the resident memory stays bounded by the chunk size
even after a pass over a file larger than the machine's memory.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from surrogate_natgrad._compat import Array, is_array, namespace
from surrogate_natgrad.errors import DataError

__all__ = ["ChunkedData", "is_chunked_input"]

#: Default chunk size of memory-mapped arrays, in bytes of raw data (16 MiB: two million
#: int64 counts), small enough that a chunk's temporaries of the likelihood stay far below
#: a gigabyte and large enough that the per-chunk overhead is negligible.
DEFAULT_CHUNK_BYTES = 2**24


def _is_dask_array(data: object) -> bool:
    return type(data).__module__.split(".")[0] == "dask" and hasattr(data, "to_delayed")


def is_chunked_input(data: object) -> bool:
    """Whether :func:`~surrogate_natgrad.fit` should treat ``data`` as chunked.

    Parameters
    ----------
    data : object
        The ``data`` argument of a fit.

    Returns
    -------
    bool
        True for a :class:`ChunkedData`, a Dask array, a NumPy memory map (``np.load(...,
        mmap_mode="r")``) or the path of a ``.npy`` file.
    """
    if isinstance(data, ChunkedData | np.memmap) or _is_dask_array(data):
        return True
    return isinstance(data, str | os.PathLike) and os.fspath(data).endswith(".npy")


def _release_pages(array: Any) -> None:
    """Drop the resident pages of a read-only memory map (they stay in the page cache)."""
    handle = getattr(array, "_mmap", None)
    advise = getattr(handle, "madvise", None)
    flag = getattr(mmap, "MADV_DONTNEED", None)
    if advise is not None and flag is not None:
        try:
            advise(flag)
        except (OSError, ValueError):  # pragma: no cover - closed or exotic mappings
            pass


def load_npy_rows(path: str, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a ``.npy`` file, read through a short-lived memory map.

    Parameters
    ----------
    path : str
        The file.
    start, stop : int
        The rows.

    Returns
    -------
    numpy.ndarray
        A copy of the rows (the mapping is released before returning).
    """
    mapped = np.load(path, mmap_mode="r")
    rows = np.array(mapped[start:stop])
    _release_pages(mapped)
    del mapped
    return rows


class ChunkedData:
    """Observations stored as chunks of rows, reduced chunk by chunk.

    Parameters
    ----------
    data : sequence of arrays, numpy.ndarray, numpy.memmap, str, os.PathLike or dask array
        The observations, split along the first axis: a list or tuple of arrays (of one
        library; each a chunk), an array or memory map (sliced into chunks of
        ``chunk_size`` rows), the path of a ``.npy`` file (memory-mapped read-only, never
        loaded whole) or a Dask array (its blocks along the first axis; other axes are
        merged into one block).
    chunk_size : int, optional
        Rows per chunk for arrays, memory maps and files (default: about 16 MiB of raw
        data per chunk). Ignored for sequences and Dask arrays, which bring their chunks.
    executor : executor, optional
        What reduces the chunks: :class:`~surrogate_natgrad.chunked.InProcessExecutor`
        (default), :class:`~surrogate_natgrad.chunked.ThreadPoolExecutor` or
        :class:`~surrogate_natgrad.chunked.DaskExecutor`. For a Dask array with a
        ``dask.distributed`` client active, a ``DaskExecutor`` on that client.
    histogram : bool, optional
        For count targets (``cls.discrete``): reduce the data once to distinct values and
        their frequencies (exact; ``10⁸`` counts have a few hundred distinct values) and
        fit on that. Default True; False keeps the per-chunk objective at every step.
    start_rows : int, optional
        The data-driven start (``cls.from_data``) sees all rows when there are at most this
        many (default ``2**20``), otherwise every k-th row (at most this many; see
        :meth:`start_sample`).

    Attributes
    ----------
    n_obs : int
        Number of rows.
    n_chunks : int
        Number of chunks.

    Examples
    --------
    >>> import numpy as np
    >>> data = ChunkedData([np.arange(3.0), np.arange(3.0, 5.0)])
    >>> data.n_obs, data.n_chunks, data.take(np.array([4, 0])).tolist()
    (5, 2, [4.0, 0.0])
    """

    def __init__(
        self,
        data: Any,
        *,
        chunk_size: int | None = None,
        executor: Any = None,
        histogram: bool = True,
        start_rows: int = 2**20,
    ) -> None:
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
        ):
            raise DataError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        if isinstance(start_rows, bool) or not isinstance(start_rows, int) or start_rows < 1:
            raise DataError(f"start_rows must be a positive integer, got {start_rows!r}")
        self.histogram = bool(histogram)
        self.start_rows = start_rows
        self.path: str | None = None
        self._dask: Any = None
        self._arrays: list[Any] | None = None
        self._source: Any = None
        if isinstance(data, ChunkedData):
            raise DataError("data is already a ChunkedData")
        if isinstance(data, str | os.PathLike):
            path = os.fspath(data)
            if not os.path.exists(path):
                raise DataError(f"data: no such .npy file {path!r}")
            self.path = path
            data = np.load(path, mmap_mode="r")
        if _is_dask_array(data):
            if data.ndim == 0:
                raise DataError("data: a Dask array of observations needs at least one axis")
            if data.ndim > 1 and any(len(c) > 1 for c in data.chunks[1:]):
                data = data.rechunk({axis: -1 for axis in range(1, data.ndim)})
            self._dask = data
            sizes = [int(n) for n in data.chunks[0]]
        elif isinstance(data, list | tuple):
            if not data:
                raise DataError("data: a sequence of chunks needs at least one chunk")
            for index, chunk in enumerate(data):
                if not is_array(chunk) or getattr(chunk, "ndim", 0) < 1:
                    raise DataError(
                        f"data[{index}] must be an array with at least one axis (a chunk of "
                        f"rows), got {type(chunk).__name__}"
                    )
            namespace(*data)  # one library and device (raises BackendError otherwise)
            self._arrays = list(data)
            sizes = [int(chunk.shape[0]) for chunk in data]
        elif isinstance(data, np.ndarray):
            if data.ndim == 0:
                raise DataError("data: an array of observations needs at least one axis")
            if isinstance(data, np.memmap) and self.path is None:
                self.path = _file_of(data)
            self._source = data
            row_bytes = max(1, data.itemsize * int(np.prod(data.shape[1:], dtype=np.int64)))
            rows = chunk_size or max(1, DEFAULT_CHUNK_BYTES // row_bytes)
            total = int(data.shape[0])
            sizes = [min(rows, total - start) for start in range(0, total, rows)] or [0]
        else:
            raise DataError(
                "data must be a sequence of arrays, a NumPy array or memory map, the path of "
                f"a .npy file, or a Dask array; got {type(data).__name__}"
            )
        self._sizes = sizes
        self._offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self.n_obs = int(self._offsets[-1])
        self.n_chunks = len(sizes)
        if self.n_obs == 0:
            raise DataError("data has no observations (0 rows)")
        if executor is None:
            from surrogate_natgrad.chunked._executors import default_executor

            executor = default_executor(self)
        self.executor = executor

    def __repr__(self) -> str:
        kind = "dask" if self._dask is not None else "arrays" if self._arrays else "array"
        return (
            f"ChunkedData({kind}, n_obs={self.n_obs}, n_chunks={self.n_chunks}, "
            f"executor={self.executor!r})"
        )

    @property
    def dask_array(self) -> Any:
        """The Dask array, or None for other kinds of data."""
        return self._dask

    def rows(self, index: int) -> tuple[int, int]:
        """First and one-past-last row of chunk ``index``.

        Parameters
        ----------
        index : int
            The chunk.

        Returns
        -------
        tuple of int
            ``(start, stop)``.
        """
        return int(self._offsets[index]), int(self._offsets[index + 1])

    def chunk(self, index: int) -> Array:
        """Chunk ``index`` as an in-memory array (a copy for memory maps).

        Parameters
        ----------
        index : int
            The chunk (negative indices count from the end).

        Returns
        -------
        array
            The rows of the chunk.
        """
        if not -self.n_chunks <= index < self.n_chunks:
            raise IndexError(f"chunk index {index} out of range for {self.n_chunks} chunks")
        index %= self.n_chunks
        if self._arrays is not None:
            return self._arrays[index]
        if self._dask is not None:
            return np.asarray(self._dask.blocks[index].compute())
        start, stop = self.rows(index)
        if isinstance(self._source, np.memmap):
            rows = np.array(self._source[start:stop])
            _release_pages(self._source)
            return rows
        return self._source[start:stop]

    @property
    def chunks(self) -> Iterator[Array]:
        """Iterator over the chunks (in memory one at a time)."""
        return (self.chunk(index) for index in range(self.n_chunks))

    def chunk_specs(self) -> list[Any]:
        """Per-chunk inputs for remote workers: file row ranges, or the chunks themselves.

        A worker turns a spec into its chunk with :func:`load_chunk`: memory-mapped files
        travel as ``("npy", path, start, stop)`` so each worker reads its rows from disk.

        Returns
        -------
        list
            One spec per chunk (None for Dask arrays, whose executor supplies the blocks).
        """
        if self.path is not None and self._source is not None:
            return [("npy", self.path, *self.rows(i)) for i in range(self.n_chunks)]
        if self._arrays is not None:
            return list(self._arrays)
        return [None] * self.n_chunks  # Dask arrays: the executor supplies the blocks

    def take(self, indices: Array) -> Array:
        """Rows ``indices`` (in that order) gathered from the chunks.

        Parameters
        ----------
        indices : array of int
            Row indices in ``[0, n_obs)``.

        Returns
        -------
        array
            ``data[indices]`` in the chunks' library.
        """
        host = np.asarray(indices, dtype=np.int64)  # host-side bookkeeping of row numbers
        if host.size and (host.min() < 0 or host.max() >= self.n_obs):
            bad = int(np.flatnonzero((host < 0) | (host >= self.n_obs))[0])
            raise DataError(
                f"indices[{bad}] = {int(host[bad])} is out of range for {self.n_obs} rows"
            )
        if self._dask is not None:
            return np.asarray(self._dask[host].compute())
        # Gather chunk by chunk: a memory map's pages are released after each chunk, so
        # rows spread over a whole file never make it resident at once.
        if self._source is not None and not isinstance(self._source, np.memmap):
            return self._source[host]
        owner = np.searchsorted(self._offsets, host, side="right") - 1
        pieces = []
        positions = []
        for index in np.unique(owner):
            selected = np.flatnonzero(owner == index)
            local = host[selected] - self._offsets[index]
            if self._arrays is None:
                start, stop = self.rows(int(index))
                source: Any = self._source
                pieces.append(np.array(source[start:stop][local]))
                _release_pages(source)
            else:
                chunk = self._arrays[int(index)]
                local_xp = namespace(chunk).asarray(local, device=getattr(chunk, "device", None))
                pieces.append(namespace(chunk).take(chunk, local_xp, axis=0))
            positions.append(selected)
        xp = namespace(*pieces)
        gathered = xp.concat(pieces, axis=0)
        order = np.argsort(np.concatenate(positions), kind="stable")
        order_xp = xp.asarray(order, device=getattr(gathered, "device", None))
        return xp.take(gathered, order_xp, axis=0)

    def start_sample(self) -> Array:
        """The rows the data-driven start sees: all of them, or every k-th row.

        With more than ``start_rows`` rows, rows ``0, k, 2k, ...`` with
        ``k = ceil(n_obs / start_rows)``, read chunk by chunk (strided slices: no index
        arrays, and a memory map's pages are released after each chunk).

        Returns
        -------
        array
            The rows.
        """
        if self.n_obs <= self.start_rows:
            if self.n_chunks == 1:
                return self.chunk(0)
            chunks = list(self.chunks)
            return namespace(*chunks).concat(chunks, axis=0)
        stride = -(-self.n_obs // self.start_rows)
        if self._dask is not None:
            return np.asarray(self._dask[::stride].compute())
        pieces = []
        for index in range(self.n_chunks):
            start, stop = self.rows(index)
            first = -(-start // stride) * stride  # the first multiple of the stride here
            if first >= stop:
                continue
            if self._arrays is not None:
                pieces.append(self._arrays[index][first - start :: stride, ...])
            else:
                source: Any = self._source
                pieces.append(np.array(source[first:stop:stride]))
                if isinstance(source, np.memmap):
                    _release_pages(source)
        return namespace(*pieces).concat(pieces, axis=0)


def _file_of(array: np.memmap) -> str | None:
    """The ``.npy`` file a memory map views in full, or None (then chunks are shipped)."""
    filename = getattr(array, "filename", None)
    if not filename or not str(filename).endswith(".npy"):
        return None
    try:
        whole = np.load(filename, mmap_mode="r")
    except (OSError, ValueError):
        return None
    same = (
        whole.shape == array.shape
        and whole.dtype == array.dtype
        and whole.offset == array.offset
        and array.flags.c_contiguous
    )
    del whole
    return str(filename) if same else None


def load_chunk(spec: Any) -> Any:
    """Turn a chunk spec of :meth:`ChunkedData.chunk_specs` into the chunk (on a worker)."""
    if isinstance(spec, tuple) and len(spec) == 4 and spec[0] == "npy":
        return load_npy_rows(spec[1], spec[2], spec[3])
    return spec


def split_rows(data: Any, n_chunks: int) -> list[Any]:
    """Split an in-memory array into ``n_chunks`` nearly equal chunks of rows (for tests).

    Parameters
    ----------
    data : array
        The observations.
    n_chunks : int
        Number of chunks.

    Returns
    -------
    list of arrays
        Views of consecutive rows.
    """
    total = int(data.shape[0])
    bounds = [round(i * total / n_chunks) for i in range(n_chunks + 1)]
    return [data[bounds[i] : bounds[i + 1], ...] for i in range(n_chunks)]
