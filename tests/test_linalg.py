"""Tests of ``surrogate_natgrad._compat.linalg`` against NumPy/SciPy and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from surrogate_natgrad._compat import linalg, namespace
from tests.helpers import central_difference, to_numpy


def _spd(rng: np.random.Generator, n: int, batch: tuple[int, ...] = ()) -> np.ndarray:
    w = rng.normal(size=(*batch, n, n))
    return w @ np.swapaxes(w, -1, -2) / n + 0.5 * np.eye(n)


def _grad(ad_backend, fun, x):
    """Gradient of a scalar function with the backend's own autodiff (independent of ours).

    Bridged arrays (CuPy) have none: ``x`` goes to the bridge's inner library (zero-copy) and
    that library differentiates; ``fun`` must close over ``ad_backend.inner`` views.
    """
    name = ad_backend.name
    if ad_backend.bridged:
        name = ad_backend.autodiff().inner.name
        x = ad_backend.inner(x)
    if name == "numpy":
        import autograd

        return autograd.grad(fun)(x)
    if name.startswith("torch"):
        import torch.func

        return torch.func.grad(fun)(x)
    import jax

    return jax.grad(fun)(x)


def test_cholesky_and_logdet_match_numpy(backend):
    rng = np.random.default_rng(0)
    a = _spd(rng, 3, (2,))
    chol = linalg.cholesky(backend.asarray(a))
    assert type(chol) is type(backend.asarray(a))
    np.testing.assert_allclose(to_numpy(chol), np.linalg.cholesky(a), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        to_numpy(linalg.logdet_from_cholesky(chol)), np.linalg.slogdet(a)[1], rtol=1e-12
    )


@pytest.mark.parametrize("lower", [True, False])
def test_solve_triangular_batched_matches_scipy(backend, lower):
    rng = np.random.default_rng(1)
    tri = np.tril(rng.normal(size=(2, 3, 3))) + 3 * np.eye(3)
    if not lower:
        tri = np.swapaxes(tri, -1, -2)
    rhs = rng.normal(size=(3, 2))  # broadcast over the batch of matrices
    out = linalg.solve_triangular(backend.asarray(tri), backend.asarray(rhs), lower=lower)
    expected = np.stack([scipy.linalg.solve_triangular(t, rhs, lower=lower) for t in tri])
    np.testing.assert_allclose(to_numpy(out), expected, rtol=1e-12, atol=1e-12)


def test_cho_solve_and_inverse_match_numpy(backend):
    rng = np.random.default_rng(2)
    a = _spd(rng, 4, (3,))
    rhs = rng.normal(size=(3, 4, 2))
    chol = linalg.cholesky(backend.asarray(a))
    np.testing.assert_allclose(
        to_numpy(linalg.cho_solve(chol, backend.asarray(rhs))), np.linalg.solve(a, rhs), rtol=1e-10
    )
    np.testing.assert_allclose(to_numpy(linalg.cho_inverse(chol)), np.linalg.inv(a), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cho_inverse_of_one_matrix_matches_numpy(backend, dtype):
    # One 2-D NumPy factor takes LAPACK's potri; the other libraries a triangular solve.
    rng = np.random.default_rng(12)
    a = _spd(rng, 5).astype(dtype)
    chol = linalg.cholesky(backend.asarray(a))
    inverse = linalg.cho_inverse(chol)
    assert inverse.dtype == chol.dtype
    result = to_numpy(inverse)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(result, np.linalg.inv(a.astype(np.float64)), rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(result, result.T)


def test_cho_inverse_of_a_stack_of_large_matrices_matches_numpy(backend):
    # NumPy stacks of matrices with at least 64 rows take potri one matrix at a time.
    rng = np.random.default_rng(14)
    factors = rng.normal(size=(2, 70, 70)) / np.sqrt(70)
    a = factors @ np.swapaxes(factors, -1, -2) + np.eye(70)
    result = to_numpy(linalg.cho_inverse(linalg.cholesky(backend.asarray(a))))
    np.testing.assert_allclose(result, np.linalg.inv(a), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(result, np.swapaxes(result, -1, -2))


def test_cho_inverse_of_a_singular_numpy_factor_raises():
    chol = np.tril(np.ones((3, 3)))
    chol[1, 1] = 0.0
    with pytest.raises(np.linalg.LinAlgError):
        linalg.cho_inverse(chol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [(), (1,), (2, 3)])
def test_cholesky_reads_the_lower_triangle_and_matches_the_definition(backend, dtype, batch):
    # NumPy matrices (and stacks of matrices of at least 64 rows) take LAPACK's potrf;
    # the reference is the definition L Lᵀ = A with L lower triangular, positive diagonal.
    rng = np.random.default_rng(21)
    n = 70
    factors = rng.normal(size=(*batch, n, n)) / np.sqrt(n)
    a = factors @ np.swapaxes(factors, -1, -2) + np.eye(n)
    garbage = np.triu(np.full((n, n), 7.0), 1)  # above the diagonal: must not be read
    given = np.tril(a) + garbage
    chol = to_numpy(linalg.cholesky(backend.asarray(given.astype(dtype))))
    assert chol.shape == a.shape and chol.dtype == dtype
    np.testing.assert_array_equal(chol, np.tril(chol))
    assert np.all(np.diagonal(chol, axis1=-2, axis2=-1) > 0)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    rebuilt = chol.astype(np.float64) @ np.swapaxes(chol.astype(np.float64), -1, -2)
    np.testing.assert_allclose(rebuilt, a, rtol=rtol, atol=rtol)


def test_cholesky_of_a_numpy_matrix_that_is_not_positive_definite_raises():
    a = np.diag([1.0, -1.0, 2.0])
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        linalg.cholesky(a)
    stack = np.stack([np.eye(64), -np.eye(64)])
    with pytest.raises(np.linalg.LinAlgError):
        linalg.cholesky(stack)
    np.testing.assert_array_equal(linalg.is_positive_definite(stack), [True, False])
    # A Fortran-ordered (non-contiguous C) view gives the same factor.
    spd = _spd(np.random.default_rng(2), 6)
    np.testing.assert_allclose(
        linalg.cholesky(np.asfortranarray(spd)), np.linalg.cholesky(spd), rtol=1e-14
    )


def test_symmetrize_and_outer(backend):
    rng = np.random.default_rng(3)
    a = rng.normal(size=(2, 3, 3))
    x, y = rng.normal(size=(2, 3)), rng.normal(size=(2, 4))
    np.testing.assert_allclose(
        to_numpy(linalg.symmetrize(backend.asarray(a))), (a + np.swapaxes(a, -1, -2)) / 2
    )
    np.testing.assert_allclose(
        to_numpy(linalg.matrix_outer(backend.asarray(x), backend.asarray(y))),
        np.einsum("bi,bj->bij", x, y),
    )


def test_is_positive_definite_never_raises(backend):
    rng = np.random.default_rng(4)
    good = _spd(rng, 3)
    indefinite = np.diag([1.0, -1.0, 2.0])
    with_nan = good.copy()
    with_nan[0, 1] = np.nan
    singular = np.zeros((3, 3))
    stack = np.stack([good, indefinite, with_nan, singular, good + np.eye(3)])
    flags = linalg.is_positive_definite(backend.asarray(stack))
    np.testing.assert_array_equal(to_numpy(flags), [True, False, False, False, True])
    assert to_numpy(linalg.is_positive_definite(backend.asarray(good))).shape == ()


def test_float32_stays_float32(backend):
    a = _spd(np.random.default_rng(5), 3).astype(np.float32)
    chol = linalg.cholesky(backend.asarray(a))
    solved = linalg.cho_solve(chol, backend.asarray(np.ones((3, 1), dtype=np.float32)))
    assert to_numpy(solved).dtype == np.float32
    assert to_numpy(linalg.logdet_from_cholesky(chol)).dtype == np.float32


def test_gradients_match_finite_differences(ad_backend):
    rng = np.random.default_rng(6)
    a0 = _spd(rng, 3, (2,))
    rhs = rng.normal(size=(2, 3, 2))
    weights = rng.normal(size=(2, 3, 2))

    def reference(a):
        sym = (a + np.swapaxes(a, -1, -2)) / 2
        return np.sum(weights * np.linalg.solve(sym, rhs)) + np.sum(np.linalg.slogdet(sym)[1])

    rhs_b, weights_b = ad_backend.inner((ad_backend.asarray(rhs), ad_backend.asarray(weights)))

    def ours(a):
        chol = linalg.cholesky(linalg.symmetrize(a))
        solved = linalg.cho_solve(chol, rhs_b)
        inverse_term = linalg.cho_inverse(chol)[..., 0, 1]
        value = (weights_b * solved).sum() + linalg.logdet_from_cholesky(chol).sum()
        return value + inverse_term.sum()

    def reference_full(a):
        sym = (a + np.swapaxes(a, -1, -2)) / 2
        return reference(a) + np.sum(np.linalg.inv(sym)[..., 0, 1])

    grad = to_numpy(_grad(ad_backend, ours, ad_backend.asarray(a0)))
    np.testing.assert_allclose(grad, central_difference(reference_full, a0), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("lower", [True, False])
def test_solve_triangular_gradient(ad_backend, lower):
    rng = np.random.default_rng(7)
    tri0 = np.tril(rng.normal(size=(3, 3))) + 3 * np.eye(3)
    if not lower:
        tri0 = tri0.T
    rhs = rng.normal(size=(3, 2))
    mask = np.tril(np.ones((3, 3))) if lower else np.triu(np.ones((3, 3)))

    def reference(t):
        return np.sum(np.sin(scipy.linalg.solve_triangular(t * mask, rhs, lower=lower)))

    rhs_b, mask_b = ad_backend.inner((ad_backend.asarray(rhs), ad_backend.asarray(mask)))

    def ours(t):
        solved = linalg.solve_triangular(t * mask_b, rhs_b, lower=lower)
        xp = namespace(solved)
        return xp.sum(xp.sin(solved))

    grad = to_numpy(_grad(ad_backend, ours, ad_backend.asarray(tri0)))
    np.testing.assert_allclose(grad * mask, central_difference(reference, tri0) * mask, rtol=1e-6)


def test_autograd_cholesky_gradient_and_second_derivative_match_closed_forms():
    """Our BLAS-based Cholesky VJP against d logdet(A) = A⁻¹ and d² logdet(A)[V] = -A⁻¹VA⁻¹."""
    import autograd
    import autograd.numpy as anp

    from surrogate_natgrad._compat.autograd_namespace import linalg as autograd_linalg

    rng = np.random.default_rng(11)
    factor = rng.normal(size=(6, 6))
    matrix = factor @ factor.T / 6 + np.eye(6)
    direction = rng.normal(size=(6, 6))
    direction = direction + direction.T

    def logdet(a):
        return 2.0 * anp.sum(anp.log(anp.diag(autograd_linalg.cholesky(a))))

    inverse = np.linalg.inv(matrix)
    np.testing.assert_allclose(autograd.grad(logdet)(matrix), inverse, rtol=1e-12, atol=1e-14)
    hvp = autograd.grad(lambda a: anp.sum(autograd.grad(logdet)(a) * direction))(matrix)
    np.testing.assert_allclose(hvp, -inverse @ direction @ inverse, rtol=1e-10, atol=1e-13)
