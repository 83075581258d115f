"""Linear-algebra helpers dispatched per array library, differentiable on every autodiff backend.

The array API standard's ``linalg`` extension has Cholesky factorisations but no triangular
solve, and no non-raising positive-definiteness test. This module fills those gaps once, so
that pure-math code (layer 3) can factorise and solve with Cholesky factors on NumPy,
autograd, torch, JAX, CuPy and array-api-strict alike.

Matrices are stacks: every function accepts leading batch dimensions ``(..., n, n)`` and
broadcasts them. Right-hand sides are matrices ``(..., n, k)``; solve with a vector by
adding a trailing axis (``b[..., None]``) and dropping it afterwards.
"""

from __future__ import annotations

from typing import Any

from autograd.tracer import getval

from surrogate_natgrad._compat import (
    Array,
    array_library_name,
    broadcast_shapes,
    is_autograd_box,
    namespace,
)
from surrogate_natgrad._compat._lapack import (
    is_lapack_matrix,
    lapack_cho_inverse,
    lapack_cholesky,
)

__all__ = [
    "PARAMETERIZATIONS",
    "cho_inverse",
    "cho_solve",
    "cholesky",
    "factor_to_scale",
    "is_positive_definite",
    "logdet_from_cholesky",
    "matrix_outer",
    "scale_to_factor",
    "solve_triangular",
    "symmetrize",
]


#: Batched NumPy/autograd triangular systems up to this size use a batched general solve.
_SMALL_BATCHED = 128


def cholesky(a: Array) -> Array:
    """Return the lower Cholesky factor ``L`` of a symmetric positive-definite ``a``.

    Parameters
    ----------
    a : array, shape (..., n, n)
        Symmetric positive-definite matrices; only the lower triangle is read.

    Returns
    -------
    array, shape (..., n, n)
        Lower-triangular ``L`` with ``L @ L.T == a``. What happens for a matrix that is not
        positive definite depends on the library (NumPy raises, JAX and CuPy return NaN);
        check with :func:`is_positive_definite` first where that matters.
    """
    if is_lapack_matrix(a):
        # NumPy's generalised-ufunc wrapper copies in and out: twice the time at n = 1000.
        return lapack_cholesky(a)
    xp = namespace(a=a)
    if array_library_name(xp) == "jax":
        import jax

        # jnp.linalg.cholesky factorises (a + aᵀ)/2, reading both triangles.
        return jax.lax.linalg.cholesky(a, symmetrize_input=False)
    return xp.linalg.cholesky(a)


def solve_triangular(a: Array, b: Array, *, lower: bool = True) -> Array:
    """Solve ``a @ x = b`` for triangular ``a``, batched and differentiable.

    Parameters
    ----------
    a : array, shape (..., n, n)
        Lower (``lower=True``) or upper triangular matrices; the other triangle is ignored
        (except on array-api-strict, which has no triangular solve and uses a general one).
    b : array, shape (..., n, k)
        Right-hand sides (a matrix; for a vector use ``b[..., None]``). Batch dimensions
        broadcast against those of ``a``.
    lower : bool, optional
        Whether ``a`` is lower triangular (default) or upper triangular.

    Returns
    -------
    array, shape (..., n, k)
        The solution ``x``.
    """
    xp = namespace(a=a, b=b)
    library = array_library_name(xp)
    if library == "torch":
        import torch

        return torch.linalg.solve_triangular(a, b, upper=not lower)
    # The remaining solvers want equal batch dimensions (SciPy and JAX broadcast only some).
    batch = broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    a_full = xp.broadcast_to(a, batch + tuple(a.shape[-2:]))
    b_full = xp.broadcast_to(b, batch + tuple(b.shape[-2:]))
    if batch and library in ("numpy", "autograd") and int(a.shape[-1]) <= _SMALL_BATCHED:
        # SciPy's batched triangular solve loops in Python with per-matrix checks (11 ms
        # for 3 matrices of 10x10); LAPACK's batched general solve on the triangle takes
        # 0.06 ms, and for small matrices its O(n³) factorisation costs nothing.
        triangle = xp.tril(a_full) if lower else xp.triu(a_full)
        return xp.linalg.solve(triangle, b_full)
    if library == "autograd":
        from surrogate_natgrad._compat.autograd_namespace import (
            solve_triangular as autograd_solve_triangular,
        )

        return autograd_solve_triangular(a_full, b_full, lower=lower)
    if library == "jax":
        import jax.scipy.linalg

        return jax.scipy.linalg.solve_triangular(a_full, b_full, lower=lower)
    if library == "numpy":
        import scipy.linalg

        if not batch:
            return scipy.linalg.solve_triangular(a_full, b_full, lower=lower)
        flat_a = xp.reshape(a_full, (-1, *a_full.shape[-2:]))
        flat_b = xp.reshape(b_full, (-1, *b_full.shape[-2:]))
        solved = [
            scipy.linalg.solve_triangular(flat_a[i], flat_b[i], lower=lower)
            for i in range(flat_a.shape[0])
        ]
        return xp.reshape(xp.stack(solved), batch + tuple(b_full.shape[-2:]))
    if library == "cupy" and len(batch) == 0:
        import cupyx.scipy.linalg

        return cupyx.scipy.linalg.solve_triangular(a_full, b_full, lower=lower)
    # array-api-strict (and batched CuPy): a general solve on the triangle we were given.
    triangle = xp.tril(a_full) if lower else xp.triu(a_full)
    return xp.linalg.solve(triangle, b_full)


def cho_solve(chol: Array, b: Array) -> Array:
    """Solve ``(L @ L.T) x = b`` given the lower Cholesky factor ``L``.

    Parameters
    ----------
    chol : array, shape (..., n, n)
        Lower Cholesky factors, e.g. from :func:`cholesky`.
    b : array, shape (..., n, k)
        Right-hand sides (a matrix; for a vector use ``b[..., None]``).

    Returns
    -------
    array, shape (..., n, k)
        The solution, by one forward and one backward triangular solve.
    """
    xp = namespace(chol=chol, b=b)
    half = solve_triangular(chol, b, lower=True)
    return solve_triangular(xp.linalg.matrix_transpose(chol), half, lower=False)


def cho_inverse(chol: Array) -> Array:
    """Return ``(L @ L.T)^{-1}`` from the lower Cholesky factor ``L``.

    Use only where the inverse itself is needed (a covariance from a precision, say);
    to apply an inverse, use :func:`cho_solve`.

    Parameters
    ----------
    chol : array, shape (..., n, n)
        Lower Cholesky factors.

    Returns
    -------
    array, shape (..., n, n)
        The symmetric inverse (exactly symmetrised).
    """
    xp = namespace(chol=chol)
    if is_lapack_matrix(chol):
        return lapack_cho_inverse(chol)
    n = chol.shape[-1]
    identity = xp.eye(n, dtype=chol.dtype, device=_device(chol))
    # inv(L L^T) = inv(L)^T inv(L): one triangular solve and a product.
    inverse_factor = solve_triangular(chol, xp.broadcast_to(identity, chol.shape), lower=True)
    # A BLAS product sums (i, j) and (j, i) in different orders; mirror them exactly.
    return symmetrize(xp.linalg.matrix_transpose(inverse_factor) @ inverse_factor)


#: Square-root parameterisations of a scale matrix ``Ω`` for first-order baselines:
#: ``Ω = WWᵀ`` (``"cholesky"``) or ``Ω⁻¹ = WWᵀ`` (``"precision"``).
PARAMETERIZATIONS = ("cholesky", "precision")


def _check_parameterization(parameterization: str) -> None:
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(
            f"parameterization must be one of {PARAMETERIZATIONS}, got {parameterization!r}"
        )


def scale_to_factor(scale: Array, parameterization: str = "cholesky") -> Array:
    """Return a square root ``W`` of ``Ω`` (``"cholesky"``) or of ``Ω⁻¹`` (``"precision"``).

    The start of a first-order baseline that updates ``W`` freely; every target and
    variational family shares this convention, so their baselines start alike.

    Parameters
    ----------
    scale : array, shape (..., d, d)
        Symmetric positive-definite scale matrices.
    parameterization : {"cholesky", "precision"}, optional
        ``Ω = WWᵀ`` or ``Ω⁻¹ = WWᵀ``.

    Returns
    -------
    array, shape (..., d, d)
        The lower Cholesky factor of ``Ω`` or of ``Ω⁻¹``.
    """
    _check_parameterization(parameterization)
    chol = cholesky(symmetrize(scale))
    if parameterization == "precision":
        return cholesky(cho_inverse(chol))
    return chol


def factor_to_scale(factor: Array, parameterization: str = "cholesky") -> Array:
    """Return ``Ω = WWᵀ`` (``"cholesky"``) or ``Ω = (WWᵀ)⁻¹`` (``"precision"``).

    ``W`` is any square matrix (first-order baselines update it freely); for
    ``"precision"`` it must be non-singular.

    Parameters
    ----------
    factor : array, shape (..., d, d)
        The square root ``W``.
    parameterization : {"cholesky", "precision"}, optional
        As in :func:`scale_to_factor`.

    Returns
    -------
    array, shape (..., d, d)
        The scale matrices.
    """
    _check_parameterization(parameterization)
    xp = namespace(factor=factor)
    gram = factor @ xp.linalg.matrix_transpose(factor)
    if parameterization == "precision":
        return cho_inverse(cholesky(symmetrize(gram)))
    return gram


def logdet_from_cholesky(chol: Array) -> Array:
    """Return ``log det(L @ L.T) = 2 * sum(log(diag(L)))`` for lower Cholesky factors.

    Parameters
    ----------
    chol : array, shape (..., n, n)
        Lower Cholesky factors with positive diagonals.

    Returns
    -------
    array, shape (...)
        The log-determinants.
    """
    xp = namespace(chol=chol)
    return 2.0 * xp.sum(xp.log(xp.linalg.diagonal(chol)), axis=-1)


def symmetrize(a: Array) -> Array:
    """Return the symmetric part ``(a + a.T) / 2`` of (a stack of) square matrices."""
    xp = namespace(a=a)
    return (a + xp.linalg.matrix_transpose(a)) / 2.0


def matrix_outer(x: Array, y: Array) -> Array:
    """Return the outer products ``x[..., :, None] * y[..., None, :]`` of stacks of vectors."""
    return x[..., :, None] * y[..., None, :]


def is_positive_definite(a: Array) -> Array:
    """Return whether the symmetric part of each matrix in ``a`` is positive definite.

    Never raises for finite or non-finite input: matrices with NaN or infinite entries are
    reported as not positive definite. The test is a (guarded) Cholesky factorisation where
    the library offers one, so ``True`` means :func:`cholesky` of the symmetrised matrix
    succeeds; elsewhere all eigenvalues must be positive.

    Parameters
    ----------
    a : array, shape (..., n, n)
        Square matrices.

    Returns
    -------
    array of bool, shape (...)
        One flag per matrix; carries no derivative.
    """
    if is_autograd_box(a):
        a = getval(a)
    xp = namespace(a=a)
    library = array_library_name(xp)
    if library == "torch":
        a = a.detach()
    finite = xp.all(xp.isfinite(a), axis=(-2, -1))
    # Replace non-finite matrices by the identity so that factorisations cannot fail on them.
    n = a.shape[-1]
    identity = xp.eye(n, dtype=a.dtype, device=_device(a))
    safe = xp.where(finite[..., None, None], symmetrize(a), identity)
    if library == "torch":
        import torch

        factorised = torch.linalg.cholesky_ex(safe)
        return finite & (factorised.info == 0)
    if library == "jax":
        # JAX's Cholesky returns NaN instead of raising for indefinite matrices.
        chol = xp.linalg.cholesky(safe)
        return finite & xp.all(xp.isfinite(chol), axis=(-2, -1))
    if library in ("numpy", "autograd"):
        import numpy as np

        safe_np = np.asarray(safe)
        try:
            lapack_cholesky(safe_np) if is_lapack_matrix(safe_np) else np.linalg.cholesky(safe_np)
        except np.linalg.LinAlgError:
            pass
        else:
            return finite
        # Some matrix failed: NumPy raises for the whole stack, so find which one by one.
        flags = np.zeros(safe_np.shape[:-2], dtype=bool)
        for index in np.ndindex(*safe_np.shape[:-2]):
            try:
                np.linalg.cholesky(safe_np[index])
            except np.linalg.LinAlgError:
                continue
            flags[index] = True
        return xp.asarray(np.asarray(finite) & flags)
    # CuPy and array-api-strict: eigenvalues (CuPy's Cholesky does not report failure).
    eigenvalues = xp.linalg.eigvalsh(safe)
    return finite & xp.all(eigenvalues > 0, axis=-1)


def _device(x: Array) -> Any:
    """Device of ``x`` for creation functions (None for NumPy and autograd values)."""
    if is_autograd_box(x):
        return None
    import array_api_compat

    return array_api_compat.device(x)
