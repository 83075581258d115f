"""Seeded random numbers on every array library, on the arrays' own device.

:func:`default_rng` returns a :class:`Generator` that draws arrays of one namespace on one
device:

- NumPy: a :class:`numpy.random.Generator` (plain ``ndarray`` results, as
  ``array_api_compat.numpy`` uses).
- torch: a :class:`torch.Generator` on the requested device; draws never leave it.
- JAX: a ``jax.random`` key that is **split at every call**. The :class:`Generator` object
  is therefore stateful (unlike JAX's functional keys); for functional code take
  :attr:`Generator.key` or :meth:`Generator.next_key` and call ``jax.random`` directly.
- CuPy: ``cupy.random.default_rng`` (imported lazily).
- array-api-strict: the strict library has no random numbers, so draws are made with a
  NumPy Generator on the host and converted with ``array_api_strict.asarray(...,
  device=...)``. This is the one place the library draws on the host for another library.

The same seed gives the same stream on a given backend (streams differ between backends).
Floating draws default to float64; ask for float32 with ``dtype``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from surrogate_natgrad._compat import (
    Array,
    Namespace,
    array_library_name,
    default_float_dtype,
    dtype_tolerance,
    float_dtype,
    is_array,
    namespace,
)
from surrogate_natgrad._compat import device as array_device
from surrogate_natgrad.errors import BackendError, DataError, DomainError

__all__ = ["Generator", "default_rng"]

Size = int | Sequence[int] | None

#: Upper bound on the rejection rounds of the generic gamma sampler (each round accepts
#: a proposal with probability above 0.95, so 64 rounds leave ~1e-83 per element).
_MAX_GAMMA_ROUNDS = 64


# ----------------------------------------------------------------------------------------
# Sources: the few primitive draws each library provides
# ----------------------------------------------------------------------------------------


class _Source:
    """Primitive draws of one library: everything else is built from these."""

    library: str
    xp: Namespace
    device: Any

    def standard_normal(self, shape: tuple[int, ...], dtype: Any) -> Array:
        raise NotImplementedError

    def random(self, shape: tuple[int, ...], dtype: Any) -> Array:
        """Uniform on [0, 1)."""
        raise NotImplementedError

    def standard_gamma(self, alpha: Array, dtype: Any) -> Array:
        """Gamma(alpha, 1) draws, one per element of the (positive) array ``alpha``."""
        return _marsaglia_tsang(self.xp, alpha, self.standard_normal, self.random)

    def integers(self, low: int, high: int, shape: tuple[int, ...]) -> Array:
        raise NotImplementedError

    def permutation(self, n: int) -> Array:
        # generic: sort uniform keys
        return self.xp.argsort(self.random((n,), self._float64()))

    def spawn(self, n: int) -> list[_Source]:
        raise NotImplementedError

    def _float64(self) -> Any:
        return self.xp.float64


def _seed_sequence(seed: Any) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(seed)


def _seed_int(sequence: np.random.SeedSequence) -> int:
    """A 63-bit integer seed derived from ``sequence`` (for torch and JAX)."""
    high, low = (int(v) for v in sequence.generate_state(2, np.uint32))
    return ((high << 32) | low) & ((1 << 63) - 1)


class _NumpySource(_Source):
    library = "numpy"

    def __init__(self, generator: np.random.Generator) -> None:
        import array_api_compat.numpy as cnp

        self.generator = generator
        self.xp = cnp
        self.device = "cpu"

    def standard_normal(self, shape: tuple[int, ...], dtype: Any) -> Array:
        return np.asarray(self.generator.standard_normal(shape, dtype=dtype))

    def random(self, shape: tuple[int, ...], dtype: Any) -> Array:
        return np.asarray(self.generator.random(shape, dtype=dtype))

    def standard_gamma(self, alpha: Array, dtype: Any) -> Array:
        return np.asarray(self.generator.standard_gamma(alpha, dtype=dtype))

    def integers(self, low: int, high: int, shape: tuple[int, ...]) -> Array:
        return np.asarray(self.generator.integers(low, high, size=shape, dtype=np.int64))

    def permutation(self, n: int) -> Array:
        return np.asarray(self.generator.permutation(n), dtype=np.int64)

    def spawn(self, n: int) -> list[_Source]:
        return [_NumpySource(child) for child in self.generator.spawn(n)]


class _TorchSource(_Source):
    library = "torch"

    def __init__(self, sequence: np.random.SeedSequence, device: Any) -> None:
        import array_api_compat.torch as ctorch
        import torch

        self._torch = torch
        self.sequence = sequence
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if self.device.type == "cuda" and self.device.index is None:
            # tensors report "cuda:0"; compare devices with the index filled in
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(_seed_int(sequence))
        self.xp = ctorch

    def standard_normal(self, shape: tuple[int, ...], dtype: Any) -> Array:
        return self._torch.randn(shape, generator=self.generator, dtype=dtype, device=self.device)

    def random(self, shape: tuple[int, ...], dtype: Any) -> Array:
        return self._torch.rand(shape, generator=self.generator, dtype=dtype, device=self.device)

    def standard_gamma(self, alpha: Array, dtype: Any) -> Array:
        # torch's sampler takes a generator through this (private) function; torch.distributions
        # uses it without one. Fall back to the generic sampler should it change.
        sampler = getattr(self._torch, "_standard_gamma", None)
        if sampler is not None:
            try:
                return sampler(alpha, generator=self.generator)
            except (TypeError, RuntimeError):  # pragma: no cover - depends on torch version
                pass
        return _marsaglia_tsang(self.xp, alpha, self.standard_normal, self.random)

    def integers(self, low: int, high: int, shape: tuple[int, ...]) -> Array:
        return self._torch.randint(
            low, high, shape, generator=self.generator, dtype=self._torch.int64,
            device=self.device,
        )

    def permutation(self, n: int) -> Array:
        return self._torch.randperm(
            n, generator=self.generator, dtype=self._torch.int64, device=self.device
        )

    def spawn(self, n: int) -> list[_Source]:
        return [_TorchSource(child, self.device) for child in self.sequence.spawn(n)]


class _JaxSource(_Source):
    library = "jax"

    def __init__(self, key: Any, device: Any) -> None:
        import jax
        import jax.numpy as jnp

        self._jax = jax
        self.key = key
        self.xp = jnp
        self._place = device is not None
        self.device = device if device is not None else jax.devices()[0]

    def next_key(self) -> Any:
        self.key, subkey = self._jax.random.split(self.key)
        return subkey

    def _put(self, x: Array) -> Array:
        return self._jax.device_put(x, self.device) if self._place else x

    def standard_normal(self, shape: tuple[int, ...], dtype: Any) -> Array:
        return self._put(self._jax.random.normal(self.next_key(), shape, dtype=dtype))

    def random(self, shape: tuple[int, ...], dtype: Any) -> Array:
        return self._put(self._jax.random.uniform(self.next_key(), shape, dtype=dtype))

    def standard_gamma(self, alpha: Array, dtype: Any) -> Array:
        return self._put(
            self._jax.random.gamma(self.next_key(), alpha, shape=alpha.shape, dtype=dtype)
        )

    def integers(self, low: int, high: int, shape: tuple[int, ...]) -> Array:
        dtype = self.xp.int64 if self._jax.config.read("jax_enable_x64") else self.xp.int32
        return self._put(self._jax.random.randint(self.next_key(), shape, low, high, dtype=dtype))

    def permutation(self, n: int) -> Array:
        return self._put(self._jax.random.permutation(self.next_key(), n))

    def spawn(self, n: int) -> list[_Source]:
        keys = self._jax.random.split(self.key, n + 1)
        self.key = keys[0]
        return [_JaxSource(keys[i + 1], self.device) for i in range(n)]


class _StrictSource(_Source):
    """array-api-strict: host draws with NumPy, converted onto the strict device."""

    library = "array_api_strict"

    def __init__(self, host: _NumpySource, device: Any) -> None:
        import array_api_strict

        self.host = host
        self.xp = array_api_strict
        self.device = device if device is not None else array_api_strict.Device("CPU_DEVICE")

    def _host_dtype(self, dtype: Any) -> Any:
        names = {self.xp.float32: np.float32, self.xp.float64: np.float64}
        return names[dtype]

    def _convert(self, x: np.ndarray) -> Array:
        return self.xp.asarray(x, device=self.device)

    def standard_normal(self, shape: tuple[int, ...], dtype: Any) -> Array:
        return self._convert(self.host.standard_normal(shape, self._host_dtype(dtype)))

    def random(self, shape: tuple[int, ...], dtype: Any) -> Array:
        return self._convert(self.host.random(shape, self._host_dtype(dtype)))

    def integers(self, low: int, high: int, shape: tuple[int, ...]) -> Array:
        return self._convert(self.host.integers(low, high, shape))

    def permutation(self, n: int) -> Array:
        return self._convert(self.host.permutation(n))

    def spawn(self, n: int) -> list[_Source]:
        children = self.host.generator.spawn(n)
        return [_StrictSource(_NumpySource(child), self.device) for child in children]


class _CupySource(_Source):  # pragma: no cover - needs a GPU
    library = "cupy"

    def __init__(self, sequence: np.random.SeedSequence, device: Any) -> None:
        import array_api_compat.cupy as ccupy
        import cupy

        self._cupy = cupy
        self.sequence = sequence
        # No device given: the current one, as CuPy itself allocates (arrays report it).
        self.device = device if device is not None else cupy.cuda.Device()
        self.xp = ccupy
        with self._on_device():
            self.generator = cupy.random.default_rng(_seed_int(sequence))

    def _on_device(self) -> Any:
        return self._cupy.cuda.Device(getattr(self.device, "id", self.device))

    def standard_normal(self, shape: tuple[int, ...], dtype: Any) -> Array:
        with self._on_device():
            return self.generator.standard_normal(size=shape, dtype=dtype)

    def random(self, shape: tuple[int, ...], dtype: Any) -> Array:
        with self._on_device():
            return self.generator.random(size=shape, dtype=dtype)

    def standard_gamma(self, alpha: Array, dtype: Any) -> Array:
        with self._on_device():
            return self.generator.standard_gamma(alpha, dtype=dtype)

    def integers(self, low: int, high: int, shape: tuple[int, ...]) -> Array:
        with self._on_device():
            return self.generator.integers(low, high, size=shape, dtype=self._cupy.int64)

    def spawn(self, n: int) -> list[_Source]:
        return [_CupySource(child, self.device) for child in self.sequence.spawn(n)]


def _marsaglia_tsang(
    xp: Namespace,
    alpha: Array,
    standard_normal: Callable[[tuple[int, ...], Any], Array],
    random: Callable[[tuple[int, ...], Any], Array],
) -> Array:
    """Gamma(alpha, 1) by Marsaglia & Tsang (2000), vectorised, in the array API.

    Shapes below one use the boost ``Gamma(a) = Gamma(a + 1) * U**(1/a)``. All elements
    draw proposals each round; accepted ones are kept. After ``_MAX_GAMMA_ROUNDS`` rounds
    (practically never reached) any element still without a sample gets ``d``, the
    mode-like centre of the proposal.
    """
    dtype = alpha.dtype
    shape = tuple(int(n) for n in alpha.shape)
    boost = alpha < 1
    shifted = xp.where(boost, alpha + 1, alpha)
    d = shifted - 1.0 / 3.0
    c = 1.0 / xp.sqrt(9.0 * d)
    tiny = xp.finfo(dtype).smallest_normal
    result = xp.zeros_like(alpha)
    done = xp.zeros(shape, dtype=xp.bool, device=array_device(alpha))
    for _ in range(_MAX_GAMMA_ROUNDS):
        normal = standard_normal(shape, dtype)
        uniform = random(shape, dtype)
        cube_root = 1.0 + c * normal
        v = cube_root * cube_root * cube_root
        positive = v > 0
        safe_v = xp.where(positive, v, xp.ones_like(v))
        # log(u) of u = 0 is -inf, which always accepts: harmless, and never a warning
        safe_u = xp.where(uniform > 0, uniform, xp.full_like(uniform, tiny))
        accept = positive & (
            xp.log(safe_u) < 0.5 * normal * normal + d - d * safe_v + d * xp.log(safe_v)
        )
        result = xp.where(accept & ~done, d * safe_v, result)
        done = done | accept
        if bool(xp.all(done)):
            break
    result = xp.where(done, result, d)
    uniform = random(shape, dtype)
    safe_u = xp.where(uniform > 0, uniform, xp.full_like(uniform, tiny))
    return xp.where(boost, result * xp.exp(xp.log(safe_u) / alpha), result)


# ----------------------------------------------------------------------------------------
# The public Generator
# ----------------------------------------------------------------------------------------


def _as_shape(size: Size, name: str = "size") -> tuple[int, ...] | None:
    if size is None:
        return None
    if isinstance(size, bool):
        raise DataError(f"{name} must be an int or a tuple of ints, got {size!r}")
    if isinstance(size, int | np.integer):
        dims: tuple[Any, ...] = (size,)
    else:
        try:
            dims = tuple(size)
        except TypeError:
            raise DataError(f"{name} must be an int or a tuple of ints, got {size!r}") from None
    if not all(isinstance(n, int | np.integer) and not isinstance(n, bool) for n in dims):
        raise DataError(f"{name} must be an int or a tuple of ints, got {size!r}")
    if any(n < 0 for n in dims):
        raise DataError(f"{name} must not have negative entries, got {size!r}")
    return tuple(int(n) for n in dims)


def _is_concrete_true(condition: Any) -> bool:
    """``bool(all(condition))``, or True when it cannot be evaluated (a JAX tracer)."""
    if isinstance(condition, bool):
        return condition
    try:
        return bool(namespace(condition).all(condition))
    except TypeError:  # traced values under jax.jit cannot be inspected
        return True


class Generator:
    """A seeded source of random arrays of one namespace on one device.

    Create it with :func:`default_rng`. Every method returns arrays of :attr:`xp` on
    :attr:`device`; distribution parameters may be Python scalars or arrays of the same
    namespace and device (they broadcast with ``size``, as in NumPy).

    Parameters
    ----------
    source : object
        The library-specific stream (internal; use :func:`default_rng`).
    """

    def __init__(self, source: _Source) -> None:
        self._source = source

    def __repr__(self) -> str:
        return f"Generator(library={self._source.library!r}, device={self.device!r})"

    # -- properties --------------------------------------------------------------------

    @property
    def xp(self) -> Namespace:
        """The array namespace of the draws."""
        return self._source.xp

    @property
    def device(self) -> Any:
        """The device the draws live on."""
        return self._source.device

    @property
    def library(self) -> str:
        """The library: ``"numpy"``, ``"torch"``, ``"jax"``, ``"cupy"``, ``"array_api_strict"``."""
        return self._source.library

    @property
    def key(self) -> Any:
        """JAX only: the current key (not advanced by reading it).

        Raises
        ------
        BackendError
            For other libraries.
        """
        return self._jax_source().key

    def next_key(self) -> Any:
        """JAX only: split the key, keep one half and return the other for functional use.

        Returns
        -------
        jax.Array
            A fresh PRNG key; the generator's own key advances.

        Raises
        ------
        BackendError
            For other libraries.
        """
        return self._jax_source().next_key()

    def _jax_source(self) -> _JaxSource:
        if not isinstance(self._source, _JaxSource):
            raise BackendError(f"key/next_key exist for JAX generators only, not {self.library}")
        return self._source

    # -- helpers -----------------------------------------------------------------------

    def _param(self, value: Any, name: str, dtype: Any) -> Any:
        """A distribution parameter as a scalar or an array of this namespace and dtype."""
        if isinstance(value, bool) or not (
            isinstance(value, int | float | np.integer | np.floating) or is_array(value)
        ):
            raise DataError(f"{name} must be a real number or an array, got {value!r}")
        if isinstance(value, int | float | np.integer | np.floating):
            if not math.isfinite(float(value)):
                raise DataError(f"{name} must be finite, got {value!r}")
            return float(value)
        self._check_array(value, name)
        return value if value.dtype == dtype else self.xp.astype(value, dtype)

    def _check_array(self, value: Any, name: str) -> None:
        """Raise unless the array ``value`` is of this generator's library and device."""
        library = array_library_name(namespace(**{name: value}))
        if library != self.library and not (library == "autograd" and self.library == "numpy"):
            raise BackendError(
                f"{name} is a {library} array but this generator draws {self.library} "
                "arrays; convert it first"
            )
        if self.library != "numpy" and array_device(value) != self.device:
            raise BackendError(
                f"{name} is on device {array_device(value)!r} but this generator draws on "
                f"{self.device!r}; move it first"
            )

    def _float_dtype(self, dtype: Any, **params: Any) -> Any:
        xp = self.xp
        for name, value in params.items():
            if is_array(value):
                self._check_array(value, name)
        if dtype is None:
            arrays = [p for p in params.values() if is_array(p)]
            return float_dtype(xp, *arrays) if arrays else default_float_dtype(xp)
        if isinstance(dtype, str):
            if dtype not in ("float32", "float64"):
                raise DataError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
            dtype = getattr(xp, dtype)
        elif self.library == "numpy":
            dtype = np.dtype(dtype)
        if dtype not in (xp.float32, xp.float64):
            raise DataError(f"dtype must be a float32 or float64 dtype of {self.library}, "
                             f"got {dtype!r}")
        if dtype == xp.float64:
            default_float_dtype(xp)  # JAX without 64-bit mode cannot make float64
        return dtype

    def _out_shape(self, size: Size, *params: Any) -> tuple[int, ...]:
        requested = _as_shape(size)
        param_shapes = [tuple(int(n) for n in p.shape) for p in params if is_array(p)]
        if requested is None:
            try:
                return tuple(np.broadcast_shapes(*param_shapes)) if param_shapes else ()
            except ValueError:
                raise DataError(
                    f"parameter shapes {param_shapes} do not broadcast together"
                ) from None
        shape: tuple[int, ...] = requested
        for param_shape in param_shapes:
            broadcast: tuple[int, ...] | None
            try:
                broadcast = tuple(np.broadcast_shapes(param_shape, shape))
            except ValueError:
                broadcast = None
            if broadcast != shape:
                raise DataError(
                    f"parameter shape {param_shape} does not broadcast to size {shape}"
                )
        return shape

    def _full(self, value: Any, shape: tuple[int, ...], dtype: Any) -> Array:
        if is_array(value):
            return self.xp.broadcast_to(value, shape)
        return self.xp.full(shape, value, dtype=dtype, device=self.device)

    # -- continuous distributions --------------------------------------------------------

    def normal(
        self, size: Size = None, loc: Any = 0.0, scale: Any = 1.0, dtype: Any = None
    ) -> Array:
        """Draw from the normal distribution N(loc, scale²).

        Parameters
        ----------
        size : int or tuple of int, optional
            Output shape (default: the broadcast shape of ``loc`` and ``scale``).
        loc, scale : float or array
            Mean and standard deviation (``scale >= 0``).
        dtype : dtype or {"float32", "float64"}, optional
            Floating dtype (default: that of floating array parameters, else float64).

        Returns
        -------
        array
        """
        dtype = self._float_dtype(dtype, loc=loc, scale=scale)
        loc = self._param(loc, "loc", dtype)
        scale = self._param(scale, "scale", dtype)
        if not _is_concrete_true(scale >= 0):
            raise DomainError("scale must be non-negative")
        shape = self._out_shape(size, loc, scale)
        return loc + scale * self._source.standard_normal(shape, dtype)

    def standard_normal(self, size: Size = None, dtype: Any = None) -> Array:
        """Draw from N(0, 1); see :meth:`normal`.

        Parameters
        ----------
        size : int or tuple of int, optional
            Output shape (``()`` when None).
        dtype : dtype, optional
            Floating dtype of the draws (default: float64, or the parameters' dtype).

        Returns
        -------
        array
            Standard normal draws of shape ``size``.
        """
        return self.normal(size, dtype=dtype)

    def uniform(
        self, size: Size = None, low: Any = 0.0, high: Any = 1.0, dtype: Any = None
    ) -> Array:
        """Draw from the uniform distribution on [low, high).

        Parameters
        ----------
        size : int or tuple of int, optional
            Output shape (default: the broadcast shape of ``low`` and ``high``).
        low, high : float or array
            Bounds with ``low <= high``.
        dtype : dtype or {"float32", "float64"}, optional
            Floating dtype.

        Returns
        -------
        array
        """
        dtype = self._float_dtype(dtype, low=low, high=high)
        low = self._param(low, "low", dtype)
        high = self._param(high, "high", dtype)
        if not _is_concrete_true(high >= low):
            raise DomainError("high must not be smaller than low")
        shape = self._out_shape(size, low, high)
        return low + (high - low) * self._source.random(shape, dtype)

    def random(self, size: Size = None, dtype: Any = None) -> Array:
        """Draw from the uniform distribution on [0, 1); see :meth:`uniform`.

        Parameters
        ----------
        size : int or tuple of int, optional
            Output shape (``()`` when None).
        dtype : dtype, optional
            Floating dtype of the draws (default: float64, or the parameters' dtype).

        Returns
        -------
        array
            Uniform draws of shape ``size``.
        """
        return self.uniform(size, dtype=dtype)

    def gamma(
        self, shape: Any, size: Size = None, scale: Any = 1.0, dtype: Any = None
    ) -> Array:
        """Draw from the gamma distribution with ``shape`` and ``scale`` (mean shape·scale).

        Parameters
        ----------
        shape : float or array
            Shape parameter(s), positive; an array broadcasts with ``size``.
        size : int or tuple of int, optional
            Output shape (default: the broadcast shape of ``shape`` and ``scale``).
        scale : float or array
            Scale parameter(s), positive.
        dtype : dtype or {"float32", "float64"}, optional
            Floating dtype.

        Returns
        -------
        array
        """
        dtype = self._float_dtype(dtype, shape=shape, scale=scale)
        alpha = self._param(shape, "shape", dtype)
        scale = self._param(scale, "scale", dtype)
        if not _is_concrete_true(alpha > 0):
            raise DomainError("shape must be positive")
        if not _is_concrete_true(scale > 0):
            raise DomainError("scale must be positive")
        out_shape = self._out_shape(size, alpha, scale)
        draws = self._source.standard_gamma(self._full(alpha, out_shape, dtype), dtype)
        return draws if isinstance(scale, float) and scale == 1.0 else draws * scale

    def chisquare(self, df: Any, size: Size = None, dtype: Any = None) -> Array:
        """Draw from the chi-square distribution with ``df`` (> 0) degrees of freedom.

        Uses ``chi²(df) = 2 · Gamma(df / 2)``.

        Parameters
        ----------
        df : float or array
            Degrees of freedom (positive), broadcasting with ``size``.
        size : int or tuple of int, optional
            Output shape (``()`` when None).
        dtype : dtype, optional
            Floating dtype of the draws (default: float64, or the parameters' dtype).

        Returns
        -------
        array
            Chi-square draws.

        Raises
        ------
        DomainError
            If ``df`` is not positive.
        """
        dtype = self._float_dtype(dtype, df=df)
        df = self._param(df, "df", dtype)
        if not _is_concrete_true(df > 0):
            raise DomainError("df must be positive")
        return 2.0 * self.gamma(df / 2.0, size=size, dtype=dtype)

    # -- discrete distributions --------------------------------------------------------

    def integers(self, low: int, high: int | None = None, size: Size = None) -> Array:
        """Draw integers uniformly from [low, high) (from [0, low) when ``high`` is None).

        Parameters
        ----------
        low : int
            Lowest value (inclusive), or the exclusive upper bound when ``high`` is None.
        high : int, optional
            Upper bound (exclusive).
        size : int or tuple of int, optional
            Output shape (``()`` when None).

        Returns
        -------
        array
            int64 (int32 for JAX without 64-bit mode), of shape ``size`` (``()`` if None).
        """
        if high is None:
            low, high = 0, low
        for name, value in (("low", low), ("high", high)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise DataError(f"{name} must be an int, got {value!r}")
        if high <= low:
            raise DataError(f"high must be larger than low, got low={low}, high={high}")
        shape = _as_shape(size) or ()
        return self._source.integers(int(low), int(high), shape)

    def permutation(self, n: int | Array) -> Array:
        """Return a random permutation of ``range(n)`` (int64), or of an array along axis 0.

        Parameters
        ----------
        n : int or array
            The length of the permutation, or an array whose rows to shuffle.

        Returns
        -------
        array
            The permuted indices, or a shuffled copy of the array.
        """
        if is_array(n):
            array: Any = n
            self._param(array, "n", array.dtype)
            indices = self._source.permutation(int(array.shape[0]))
            return self.xp.take(array, indices, axis=0)
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise DataError(f"n must be a non-negative int or an array, got {n!r}")
        return self._source.permutation(int(n))

    def choice(
        self, n: int, size: Size = None, replace: bool = True, p: Any = None
    ) -> Array:
        """Draw indices from ``range(n)``, uniformly or with probabilities ``p``.

        Parameters
        ----------
        n : int
            Number of categories (positive).
        size : int or tuple of int, optional
            Output shape (``()`` if None).
        replace : bool
            Draw with replacement (default) or without.
        p : array or sequence of float, optional
            Probabilities of the categories: 1-D, length ``n``, non-negative, summing to
            one (within ``sqrt(eps)``). A categorical distribution.

        Returns
        -------
        array
            int64 indices of shape ``size``.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
            raise DataError(f"n must be a positive int, got {n!r}")
        n = int(n)
        shape = _as_shape(size) or ()
        count = math.prod(shape)
        xp = self.xp
        if p is None:
            if replace:
                return self._source.integers(0, n, shape)
            if count > n:
                raise DataError(
                    f"cannot take {count} samples from {n} categories without replacement"
                )
            return xp.reshape(self._source.permutation(n)[:count], shape)
        probabilities = self._probabilities(p, n)
        if replace:
            uniform = self._source.random((count,), probabilities.dtype)
            cdf = xp.cumulative_sum(probabilities)
            index = xp.searchsorted(cdf, uniform, side="right")
            index = xp.clip(index, 0, n - 1)  # rounding can leave cdf[-1] slightly below 1
            return xp.reshape(xp.astype(index, xp.int64), shape)
        positive = probabilities > 0
        if count > int(xp.count_nonzero(positive)):
            raise DataError(
                f"cannot take {count} samples without replacement: only "
                f"{int(xp.count_nonzero(positive))} categories have positive probability"
            )
        # Gumbel top-k: the k largest log p + Gumbel noise are a draw without replacement
        uniform = self._source.random((n,), probabilities.dtype)
        tiny = xp.finfo(probabilities.dtype).smallest_normal
        safe_u = xp.where(uniform > 0, uniform, xp.full_like(uniform, tiny))
        log_p = xp.where(
            positive, xp.log(xp.where(positive, probabilities, xp.ones_like(probabilities))),
            xp.full_like(probabilities, -math.inf),
        )
        keys = log_p - xp.log(-xp.log(safe_u))
        order = xp.argsort(keys, descending=True)
        return xp.reshape(xp.astype(order[:count], xp.int64), shape)

    def _probabilities(self, p: Any, n: int) -> Array:
        xp = self.xp
        if is_array(p):
            self._check_array(p, "p")
            dtype = float_dtype(xp, p)
            probabilities = self._param(p, "p", dtype)
        else:
            try:
                host = np.asarray(p, dtype=np.float64)
            except (TypeError, ValueError):
                raise DataError(f"p must be an array of probabilities, got {p!r}") from None
            probabilities = xp.asarray(host, dtype=default_float_dtype(xp), device=self.device)
        if probabilities.ndim != 1 or int(probabilities.shape[0]) != n:
            raise DataError(
                f"p must be 1-D of length n={n}, got shape {tuple(probabilities.shape)}"
            )
        if not _is_concrete_true(xp.isfinite(probabilities)) or not _is_concrete_true(
            probabilities >= 0
        ):
            raise DataError("p must contain finite, non-negative probabilities")
        total = xp.sum(probabilities)
        tolerance = dtype_tolerance(xp, probabilities.dtype)
        if not _is_concrete_true(xp.abs(total - 1.0) <= tolerance):
            raise DomainError(f"p must sum to 1, got a sum of {float(total)}")
        return probabilities / total

    # -- streams -------------------------------------------------------------------------

    def spawn(self, n: int) -> list[Generator]:
        """Return ``n`` independent child generators (same namespace and device).

        Children are determined by this generator's seed (and, for JAX, its current key).

        Parameters
        ----------
        n : int
            Number of children.

        Returns
        -------
        list of Generator
            The child generators.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise DataError(f"n must be a non-negative int, got {n!r}")
        return [Generator(child) for child in self._source.spawn(n)]

    def split(self, n: int = 2) -> list[Generator]:
        """Alias of :meth:`spawn` (JAX's name).

        Parameters
        ----------
        n : int, optional
            Number of children (default 2).

        Returns
        -------
        list of Generator
            The child generators.
        """
        return self.spawn(n)


# ----------------------------------------------------------------------------------------
# Construction
# ----------------------------------------------------------------------------------------

_LIBRARY_NAMES = ("numpy", "torch", "jax", "cupy", "array_api_strict")


def _library_of(xp: Any) -> str:
    if isinstance(xp, str):
        name = xp.lower().replace("-", "_")
        if name == "autograd":
            name = "numpy"
        if name not in _LIBRARY_NAMES:
            raise BackendError(f"xp must be one of {_LIBRARY_NAMES} or a namespace, got {xp!r}")
        return name
    name = array_library_name(xp)
    if name == "autograd":
        return "numpy"
    if name not in _LIBRARY_NAMES:
        raise BackendError(f"no random-number support for the namespace {name!r}")
    return name


def default_rng(
    seed: int | np.random.SeedSequence | None = None,
    *,
    like: Array | None = None,
    xp: Namespace | str | None = None,
    device: Any = None,
) -> Generator:
    """Return a seeded :class:`Generator` drawing arrays of one namespace and device.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence or None
        Seed (non-negative int); None draws fresh entropy from the operating system.
    like : array, optional
        An array whose namespace and device the draws should have.
    xp : namespace or str, optional
        The namespace (``numpy``, ``array_api_compat.torch``, ``jax.numpy``,
        ``array_api_strict``, ``cupy``, ...) or its name, when ``like`` is not given.
        Default: NumPy.
    device : device, optional
        The device (default: that of ``like``, else the library's default).

    Returns
    -------
    Generator

    Raises
    ------
    ValueError
        For a negative or non-integer seed, or an unknown ``xp`` name.
    BackendError
        For a namespace without random-number support, or ``like`` and ``xp`` that disagree.
    """
    if seed is not None and not isinstance(seed, np.random.SeedSequence):
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise DataError(f"seed must be a non-negative int or None, got {seed!r}")
    if like is not None:
        library = _library_of(namespace(like=like))
        if xp is not None and _library_of(xp) != library:
            raise BackendError(f"like is a {library} array but xp names {_library_of(xp)}")
        if device is None and library != "numpy":
            device = array_device(like)
    else:
        library = _library_of(xp) if xp is not None else "numpy"
    sequence = _seed_sequence(seed)
    if library == "numpy":
        return Generator(_NumpySource(np.random.default_rng(sequence)))
    if library == "torch":
        return Generator(_TorchSource(sequence, device))
    if library == "jax":
        import jax

        key = jax.random.key(_seed_int(sequence) & 0xFFFFFFFF)
        return Generator(_JaxSource(key, device))
    if library == "array_api_strict":
        return Generator(_StrictSource(_NumpySource(np.random.default_rng(sequence)), device))
    return Generator(_CupySource(sequence, device))  # pragma: no cover - needs a GPU
