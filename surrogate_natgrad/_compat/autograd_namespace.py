"""An array-API namespace over ``autograd.numpy`` in which the names the library uses differentiate.

``array_api_compat.array_namespace`` maps autograd's traced values to ``autograd.numpy``,
which has NumPy's names (``concatenate``, ``transpose``, ``arccos``) rather than the
standard's, a ``linalg`` without the standard's signatures, and no derivative for
``matrix_transpose``, ``vecdot``, ``cumulative_sum`` or ``asarray(box)``. This module builds
the standard's names on top of autograd primitives, registering VJPs where autograd has
none, so that pure-math code written against the array API runs under ``autograd.grad``.

The namespace object is :data:`xp`; its ``linalg`` attribute is the linear-algebra
extension. Names that carry no derivative (comparisons, dtype functions, index searches)
unwrap traced values first, exactly as NumPy would treat them.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import array_api_compat.numpy as cnp
import autograd.numpy as anp
import autograd.scipy.linalg as asla
import numpy as np
from autograd.extend import defjvp, defvjp, primitive
from autograd.tracer import Box, getval

__all__ = ["linalg", "scatter_update", "xp"]

_NAMESPACE_NAME = "surrogate_natgrad.autograd_namespace"


def _raw(value: Any) -> Any:
    """Strip autograd boxes from ``value`` and from lists or tuples of values."""
    if isinstance(value, list | tuple):
        return type(value)(_raw(v) for v in value)
    return getval(value)


def _nondiff(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a function without derivative (comparison, search, dtype query) to accept boxes."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return fn(*_raw(args), **{k: _raw(v) for k, v in kwargs.items()})

    wrapped.__name__ = getattr(fn, "__name__", "wrapped")
    wrapped.__doc__ = getattr(fn, "__doc__", None)
    return wrapped


# ----------------------------------------------------------------------------------------
# Primitives autograd lacks (or lacks derivatives for)
# ----------------------------------------------------------------------------------------


def _swap_last(x: Any) -> Any:
    return anp.swapaxes(x, -1, -2)


@primitive
def _scatter(x: np.ndarray, value: Any, index: Any, how: str) -> np.ndarray:
    out = np.array(x, copy=True)
    if how == "set":
        out[index] = value
    else:
        np.add.at(out, index, value)
    return out


def _scatter_vjp_x(ans: Any, x: Any, value: Any, index: Any, how: str) -> Callable[[Any], Any]:
    def vjp(g: Any) -> Any:
        if how == "add":
            return g
        return _scatter(g, 0.0, index, "set")

    return vjp


def _scatter_vjp_value(ans: Any, x: Any, value: Any, index: Any, how: str) -> Callable[[Any], Any]:
    value_shape = anp.shape(value)
    selected_shape = np.shape(np.zeros(anp.shape(x))[index])

    def vjp(g: Any) -> Any:
        picked = g[index]
        # Sum over the broadcast dimensions so the cotangent has value's shape.
        extra = len(selected_shape) - len(value_shape)
        if extra > 0:
            picked = anp.sum(picked, axis=tuple(range(extra)))
        for axis, n in enumerate(value_shape):
            if n == 1 and anp.shape(picked)[axis] != 1:
                picked = anp.sum(picked, axis=axis, keepdims=True)
        return anp.reshape(picked, value_shape)

    return vjp


defvjp(_scatter, _scatter_vjp_x, _scatter_vjp_value)


def scatter_update(x: Any, value: Any, index: Any, how: str) -> Any:
    """Return a copy of ``x`` with ``x[index]`` set to (``how="set"``) or increased by ``value``.

    Differentiable with respect to ``x`` and ``value`` under autograd; never writes ``x``.
    """
    if how not in ("set", "add"):
        raise ValueError(f"how must be 'set' or 'add', got {how!r}")
    value = anp.asarray(value) if not isinstance(value, Box) else value
    if not isinstance(x, Box):
        x = np.asarray(x)
    return _scatter(x, value, index, how)


def _matrix_transpose(x: Any) -> Any:
    return anp.swapaxes(x, -1, -2)


def _vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    return anp.sum(x1 * x2, axis=axis)


def _cumulative_sum(
    x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False
) -> Any:
    if axis is None:
        if anp.ndim(x) > 1:
            raise ValueError("axis must be given for arrays of more than one dimension")
        axis = 0
    out = anp.cumsum(x, axis=axis) if dtype is None else anp.cumsum(x, axis=axis, dtype=dtype)
    if include_initial:
        shape = list(anp.shape(out))
        shape[axis] = 1
        out = anp.concatenate([anp.zeros(shape, dtype=out.dtype), out], axis=axis)
    return out


def _cumulative_prod(
    x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False
) -> Any:
    if axis is None:
        if anp.ndim(x) > 1:
            raise ValueError("axis must be given for arrays of more than one dimension")
        axis = 0
    # autograd has no cumprod VJP: exp(cumsum(log)) is exact for positive values, and a
    # sign-tracking version covers the rest.
    raw = getval(x)
    if np.all(raw > 0):
        out = anp.exp(anp.cumsum(anp.log(x), axis=axis))
    else:
        parts = [x[(slice(None),) * (axis % anp.ndim(x)) + (slice(0, 1),)]]
        n = anp.shape(x)[axis]
        for i in range(1, n):
            idx = (slice(None),) * (axis % anp.ndim(x)) + (slice(i, i + 1),)
            parts.append(parts[-1] * x[idx])
        out = anp.concatenate(parts, axis=axis)
    if dtype is not None:
        out = _astype(out, dtype)
    if include_initial:
        shape = list(anp.shape(out))
        shape[axis] = 1
        out = anp.concatenate([anp.ones(shape, dtype=out.dtype), out], axis=axis)
    return out


def _astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
    if isinstance(x, Box):
        if x.dtype == dtype:
            return x
        if np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.complexfloating):
            return _cast(x, dtype)
        return getval(x).astype(dtype)
    return cnp.astype(x, dtype, copy=copy)  # type: ignore[attr-defined]


@primitive
def _cast(x: np.ndarray, dtype: Any) -> np.ndarray:
    return np.asarray(x).astype(dtype)


defvjp(_cast, lambda ans, x, dtype: lambda g: _cast(g, np.asarray(getval(x)).dtype))


def _asarray(
    obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None
) -> Any:
    if isinstance(obj, Box):
        return obj if dtype is None or obj.dtype == dtype else _astype(obj, dtype)
    if isinstance(obj, list | tuple) and any(isinstance(v, Box) for v in _flatten(obj)):
        out = anp.array(obj)
        return out if dtype is None else _astype(out, dtype)
    return cnp.asarray(obj, dtype=dtype, device=device, copy=copy)  # type: ignore[attr-defined]


def _flatten(obj: Any) -> list[Any]:
    if isinstance(obj, list | tuple):
        return [v for item in obj for v in _flatten(item)]
    return [obj]


def _reshape(x: Any, /, shape: tuple[int, ...], *, copy: bool | None = None) -> Any:
    return anp.reshape(x, shape)


def _permute_dims(x: Any, /, axes: tuple[int, ...]) -> Any:
    return anp.transpose(x, axes)


def _concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    if axis is None:
        return anp.concatenate([anp.reshape(a, (-1,)) for a in arrays], axis=0)
    return anp.concatenate(list(arrays), axis=axis)


def _stack(arrays: Sequence[Any], /, *, axis: int = 0) -> Any:
    return anp.stack(list(arrays), axis=axis)


def _unstack(x: Any, /, *, axis: int = 0) -> tuple[Any, ...]:
    n = anp.shape(x)[axis]
    moved = anp.moveaxis(x, axis, 0) if axis != 0 else x
    return tuple(moved[i] for i in range(n))


def _expand_dims(x: Any, /, axis: int | tuple[int, ...] = 0) -> Any:
    return anp.expand_dims(x, axis)


def _squeeze(x: Any, /, axis: int | tuple[int, ...]) -> Any:
    return anp.squeeze(x, axis=axis)


def _broadcast_to(x: Any, /, shape: tuple[int, ...]) -> Any:
    return anp.broadcast_to(x, shape)


def _broadcast_arrays(*arrays: Any) -> list[Any]:
    shape = np.broadcast_shapes(*[anp.shape(a) for a in arrays])
    return [anp.broadcast_to(a, shape) for a in arrays]


def _flip(x: Any, /, *, axis: int | tuple[int, ...] | None = None) -> Any:
    # autograd's flip has no VJP; a reversed slice does.
    ndim = anp.ndim(x)
    axes = range(ndim) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    index = [slice(None)] * ndim
    for a in axes:
        index[a % ndim] = slice(None, None, -1)
    return x[tuple(index)]


def _roll(
    x: Any, /, shift: int | tuple[int, ...], *, axis: int | tuple[int, ...] | None = None
) -> Any:
    return anp.roll(x, shift, axis=axis)


def _tile(x: Any, repetitions: tuple[int, ...], /) -> Any:
    return anp.tile(x, repetitions)


def _repeat(x: Any, repeats: int, /, *, axis: int | None = None) -> Any:
    return anp.repeat(x, repeats, axis=axis)


def _moveaxis(x: Any, source: Any, destination: Any, /) -> Any:
    return anp.moveaxis(x, source, destination)


def _where(condition: Any, x1: Any, x2: Any, /) -> Any:
    return anp.where(getval(condition), x1, x2)


def _clip(x: Any, /, min: Any = None, max: Any = None) -> Any:  # noqa: A002
    out = x
    if min is not None:
        out = anp.where(getval(out) < getval(min), min, out)
    if max is not None:
        out = anp.where(getval(out) > getval(max), max, out)
    return out


def _reduction(fn: Callable[..., Any]) -> Callable[..., Any]:
    def reduce(x: Any, /, *, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Any:
        out = fn(x, axis=axis, keepdims=keepdims)
        return out if dtype is None else _astype(out, dtype)

    reduce.__name__ = fn.__name__
    return reduce


def _minmax(fn: Callable[..., Any]) -> Callable[..., Any]:
    def reduce(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any:
        return fn(x, axis=axis, keepdims=keepdims)

    reduce.__name__ = fn.__name__
    return reduce


def _std(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    return anp.sqrt(_var(x, axis=axis, correction=correction, keepdims=keepdims))


def _var(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    mean = anp.mean(x, axis=axis, keepdims=True)
    count = (
        anp.size(x)
        if axis is None
        else math.prod(anp.shape(x)[a] for a in ((axis,) if isinstance(axis, int) else axis))
    )
    return anp.sum((x - mean) ** 2, axis=axis, keepdims=keepdims) / (count - correction)


def _logaddexp(x1: Any, x2: Any, /) -> Any:
    return anp.logaddexp(x1, x2)


def _pow(x1: Any, x2: Any, /) -> Any:
    return anp.power(x1, x2)


def _matmul(x1: Any, x2: Any, /) -> Any:
    return anp.matmul(x1, x2)


def _tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    return anp.tensordot(x1, x2, axes=axes)


def _sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    order = np.argsort(getval(x), axis=axis, kind="stable")
    if descending:
        order = np.flip(order, axis=axis)
    return _take_along_axis(x, order, axis=axis)


def _take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    # autograd's take has no VJP; advanced indexing has one.
    if axis is None:
        return anp.reshape(x, (-1,))[getval(indices)]
    index = (slice(None),) * (axis % anp.ndim(x)) + (getval(indices),)
    return x[index]


def _take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
    raw = np.asarray(getval(indices))
    grids: list[Any] = list(np.indices(raw.shape, sparse=True))
    grids[axis % raw.ndim] = raw
    return x[tuple(grids)]


def _sign(x: Any, /) -> Any:
    return anp.sign(x)


def _round(x: Any, /) -> Any:
    return anp.round(x)


def _zeros_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    return np.zeros_like(getval(x), dtype=dtype)


def _ones_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
    return np.ones_like(getval(x), dtype=dtype)


def _full_like(x: Any, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    if isinstance(fill_value, Box):
        return anp.broadcast_to(fill_value, anp.shape(x)) + np.zeros_like(getval(x), dtype=dtype)
    return np.full_like(getval(x), fill_value, dtype=dtype)


def _tril(x: Any, /, *, k: int = 0) -> Any:
    return anp.tril(x, k=k)


def _triu(x: Any, /, *, k: int = 0) -> Any:
    return anp.triu(x, k=k)


def _diff(x: Any, /, *, axis: int = -1, n: int = 1, prepend: Any = None, append: Any = None) -> Any:
    parts = [p for p in (prepend, x, append) if p is not None]
    y = anp.concatenate(parts, axis=axis) if len(parts) > 1 else x
    for _ in range(n):
        length = anp.shape(y)[axis]
        upper = (slice(None),) * (axis % anp.ndim(y)) + (slice(1, length),)
        lower = (slice(None),) * (axis % anp.ndim(y)) + (slice(0, length - 1),)
        y = y[upper] - y[lower]
    return y


# ----------------------------------------------------------------------------------------
# Linear algebra extension
# ----------------------------------------------------------------------------------------


class SlogdetResult(NamedTuple):
    """Sign and log of the absolute determinant, as the standard's ``slogdet`` returns."""

    sign: Any
    logabsdet: Any


class EighResult(NamedTuple):
    """Eigenvalues and eigenvectors, as the standard's ``eigh`` returns."""

    eigenvalues: Any
    eigenvectors: Any


@primitive
def _cholesky_2d(x: Any) -> Any:
    from surrogate_natgrad._compat._lapack import is_lapack_matrix, lapack_cholesky

    return lapack_cholesky(x) if is_lapack_matrix(x) else np.linalg.cholesky(x)  # see _lapack


def _cholesky_2d_vjp(lower: Any, x: Any) -> Any:
    """``Ā = sym(L⁻ᵀ Φ(LᵀL̄) L⁻¹)`` (Murray, 2016), with ``Φ`` the lower triangle, half diagonal.

    autograd's own rule forms ``L⁻¹`` by general solves and contracts with ``einsum``
    (no BLAS): about 0.4 s at d = 1000, against two triangular solves and one product
    here. Written with autograd operations, so it can be differentiated again.
    """

    def vjp(cotangent: Any) -> Any:
        product = anp.dot(anp.transpose(lower), cotangent)
        phi = anp.tril(product) - 0.5 * anp.diag(anp.diag(product))
        # L⁻ᵀ Φᵀ, then L⁻ᵀ (L⁻ᵀ Φᵀ)ᵀ = L⁻ᵀ Φ L⁻¹.
        half = asla.solve_triangular(lower, anp.transpose(phi), trans="T", lower=True)
        inner = asla.solve_triangular(lower, anp.transpose(half), trans="T", lower=True)
        return 0.5 * (inner + anp.transpose(inner))

    return vjp


defvjp(_cholesky_2d, _cholesky_2d_vjp)


def _cholesky(x: Any, /, *, upper: bool = False) -> Any:
    lower = _cholesky_2d(x) if anp.ndim(x) == 2 else anp.linalg.cholesky(x)
    return _swap_last(lower) if upper else lower


def _solve(x1: Any, x2: Any, /) -> Any:
    # The standard treats a 1-D x2 as a vector for every batch of x1.
    if anp.ndim(x2) == 1:
        return (
            anp.linalg.solve(x1, x2[..., None])[..., 0]
            if anp.ndim(x1) > 2
            else anp.linalg.solve(x1, x2)
        )
    return anp.linalg.solve(x1, x2)


def _slogdet(x: Any, /) -> SlogdetResult:
    sign, logabsdet = anp.linalg.slogdet(x)
    return SlogdetResult(sign, logabsdet)


def _eigh(x: Any, /) -> EighResult:
    values, vectors = anp.linalg.eigh(x)
    return EighResult(values, vectors)


def _eigvalsh(x: Any, /) -> Any:
    return anp.linalg.eigh(x)[0]


def _inv(x: Any, /) -> Any:
    return anp.linalg.inv(x)


def _det(x: Any, /) -> Any:
    return anp.linalg.det(x)


def _diagonal(x: Any, /, *, offset: int = 0) -> Any:
    if offset == 0:
        # autograd's VJP of diagonal supports only these axes (same diagonal either way).
        return anp.diagonal(x, offset=0, axis1=-1, axis2=-2)
    rows, cols = anp.shape(x)[-2:]
    start_row, start_col = max(-offset, 0), max(offset, 0)
    length = max(min(rows - start_row, cols - start_col), 0)
    return anp.stack([x[..., start_row + i, start_col + i] for i in range(length)], axis=-1)


def _trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    return anp.sum(_diagonal(x, offset=offset), axis=-1)


def _outer(x1: Any, x2: Any, /) -> Any:
    return x1[:, None] * x2[None, :]


def _vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: float = 2) -> Any:  # noqa: A002
    if ord == 2:
        return anp.sqrt(anp.sum(x * x, axis=axis, keepdims=keepdims))
    if ord == 1:
        return anp.sum(anp.abs(x), axis=axis, keepdims=keepdims)
    if ord == math.inf:
        return anp.max(anp.abs(x), axis=axis, keepdims=keepdims)
    return anp.sum(anp.abs(x) ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)


def _matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:  # noqa: A002
    if ord != "fro":
        raise NotImplementedError("only the Frobenius matrix norm is differentiable here")
    return anp.sqrt(anp.sum(x * x, axis=(-2, -1), keepdims=keepdims))


def solve_triangular(a: Any, b: Any, /, *, lower: bool = True) -> Any:
    """Solve ``a @ x = b`` for triangular ``a``, batched over leading dimensions.

    Differentiable under autograd (SciPy's triangular solve has a VJP there).
    """
    if anp.ndim(a) == 2:
        return asla.solve_triangular(a, b, lower=lower)
    batch = anp.shape(a)[:-2]
    flat_a = anp.reshape(a, (-1, *anp.shape(a)[-2:]))
    b_full = anp.broadcast_to(b, batch + anp.shape(b)[-2:])
    flat_b = anp.reshape(b_full, (-1, *anp.shape(b)[-2:]))
    solved = [
        asla.solve_triangular(flat_a[i], flat_b[i], lower=lower)
        for i in range(anp.shape(flat_a)[0])
    ]
    return anp.reshape(anp.stack(solved), batch + anp.shape(b)[-2:])


linalg = types.SimpleNamespace(
    cholesky=_cholesky,
    cross=lambda x1, x2, /, *, axis=-1: anp.cross(x1, x2, axis=axis),
    det=_det,
    diagonal=_diagonal,
    eigh=_eigh,
    eigvalsh=_eigvalsh,
    inv=_inv,
    matmul=_matmul,
    matrix_norm=_matrix_norm,
    matrix_transpose=_matrix_transpose,
    outer=_outer,
    slogdet=_slogdet,
    solve=_solve,
    tensordot=_tensordot,
    trace=_trace,
    vecdot=_vecdot,
    vector_norm=_vector_norm,
    matrix_rank=_nondiff(cnp.linalg.matrix_rank),
    LinAlgError=np.linalg.LinAlgError,
    SlogdetResult=SlogdetResult,
    EighResult=EighResult,
)
linalg.__name__ = _NAMESPACE_NAME + ".linalg"

# ----------------------------------------------------------------------------------------
# The namespace
# ----------------------------------------------------------------------------------------

_ELEMENTWISE_SAME_NAME = [
    "abs",
    "add",
    "ceil",
    "conj",
    "cos",
    "cosh",
    "divide",
    "exp",
    "expm1",
    "floor",
    "hypot",
    "imag",
    "log",
    "log1p",
    "log2",
    "log10",
    "maximum",
    "minimum",
    "multiply",
    "negative",
    "real",
    "sin",
    "sinh",
    "sqrt",
    "square",
    "subtract",
    "tan",
    "tanh",
    "trunc",
    "copysign",
    "remainder",
    "floor_divide",
    "positive",
]
_RENAMED = {
    "acos": "arccos",
    "acosh": "arccosh",
    "asin": "arcsin",
    "asinh": "arcsinh",
    "atan": "arctan",
    "atan2": "arctan2",
    "atanh": "arctanh",
}
_NONDIFF = [
    # comparisons, predicates and searches have no derivative
    "equal",
    "not_equal",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "isfinite",
    "isinf",
    "isnan",
    "signbit",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "bitwise_invert",
    "bitwise_left_shift",
    "bitwise_right_shift",
    "all",
    "any",
    "argmax",
    "argmin",
    "argsort",
    "nonzero",
    "searchsorted",
    "count_nonzero",
    "unique_all",
    "unique_counts",
    "unique_inverse",
    "unique_values",
    # dtype functions
    "can_cast",
    "finfo",
    "iinfo",
    "isdtype",
    "result_type",
    # creation from shapes (no array argument to differentiate)
    "arange",
    "empty",
    "empty_like",
    "eye",
    "full",
    "linspace",
    "meshgrid",
    "ones",
    "zeros",
    "from_dlpack",
]
_CONSTANTS_AND_DTYPES = [
    "e",
    "inf",
    "nan",
    "pi",
    "newaxis",
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "complex64",
    "complex128",
]


def _build() -> types.SimpleNamespace:
    names: dict[str, Any] = {}
    for name in _ELEMENTWISE_SAME_NAME:
        names[name] = getattr(anp, name)
    for name, numpy_name in _RENAMED.items():
        names[name] = getattr(anp, numpy_name)
    for name in _NONDIFF:
        names[name] = _nondiff(getattr(cnp, name))
    for name in _CONSTANTS_AND_DTYPES:
        names[name] = getattr(cnp, name)
    names.update(
        asarray=_asarray,
        astype=_astype,
        broadcast_arrays=_broadcast_arrays,
        broadcast_to=_broadcast_to,
        clip=_clip,
        concat=_concat,
        cumulative_prod=_cumulative_prod,
        cumulative_sum=_cumulative_sum,
        diff=_diff,
        expand_dims=_expand_dims,
        flip=_flip,
        full_like=_full_like,
        logaddexp=_logaddexp,
        matmul=_matmul,
        matrix_transpose=_matrix_transpose,
        max=_minmax(anp.max),
        mean=_minmax(anp.mean),
        min=_minmax(anp.min),
        moveaxis=_moveaxis,
        ones_like=_ones_like,
        permute_dims=_permute_dims,
        pow=_pow,
        prod=_reduction(anp.prod),
        repeat=_repeat,
        reshape=_reshape,
        roll=_roll,
        round=_round,
        sign=_sign,
        sort=_sort,
        squeeze=_squeeze,
        stack=_stack,
        std=_std,
        sum=_reduction(anp.sum),
        take=_take,
        take_along_axis=_take_along_axis,
        tensordot=_tensordot,
        tile=_tile,
        tril=_tril,
        triu=_triu,
        unstack=_unstack,
        var=_var,
        vecdot=_vecdot,
        where=_where,
        zeros_like=_zeros_like,
        linalg=linalg,
        __array_api_version__=cnp.__array_api_version__,
        __array_namespace_info__=cnp.__array_namespace_info__,
        __name__=_NAMESPACE_NAME,
        __doc__=__doc__,
    )
    return types.SimpleNamespace(**names)


#: The autograd-aware array-API namespace.
xp = _build()

# Forward mode too, so jacobians built with forward passes work through dtype casts.
defjvp(_cast, lambda g, ans, x, dtype: _cast(g, dtype))
