"""_compat.custom_derivative: closed-form derivatives registered on every autodiff backend.

The test function is f(x, y, k) = x² sin(y) · k with partials (2x sin y · k, x² cos y · k,
None): ``k`` is an argument without a derivative. References are closed forms and
independent finite differences of the NumPy formula.
"""

from __future__ import annotations

import numpy as np
import pytest

from surrogate_natgrad._compat.custom_derivative import elementwise_function, unbroadcast
from tests.helpers import central_difference, to_numpy

X = np.array([[0.3], [-1.2], [2.0]])  # shape (3, 1)
Y = np.array([0.1, 0.7, -2.0, 3.0])  # shape (4,)
K = 1.5


def _numpy_f(x, y):
    return x**2 * np.sin(y) * K


def _make():
    def value(xp, x, y, k):
        return x**2 * xp.sin(y) * k

    def partials(xp, out, x, y, k):
        return (2.0 * x * xp.sin(y) * k, x**2 * xp.cos(y) * k, None)

    return elementwise_function(value, partials, "square_sin")


def _grads(ad_backend, fun, x, y):
    """Gradients of sum(fun(x, y)) with respect to x and y on the backend."""
    xa, ya = ad_backend.asarray(x), ad_backend.asarray(y)
    return ad_backend.autodiff().grad(lambda a, b: fun(a, b).sum(), argnums=(0, 1))(xa, ya)


def _own_autodiff(ad_backend, *arrays):
    """The library that differentiates these arrays, and the arrays as that library sees
    them: for bridged arrays (CuPy), the bridge's inner library and zero-copy views."""
    if ad_backend.bridged:
        return ad_backend.autodiff().inner.name, ad_backend.inner(arrays)
    return ("torch" if ad_backend.name.startswith("torch") else ad_backend.name), arrays


def _fd_x_y(x, y):
    gx = central_difference(lambda v: float(np.sum(_numpy_f(v, y))), x)
    gy = central_difference(lambda v: float(np.sum(_numpy_f(x, v))), y)
    return gx, gy


def test_values_and_broadcasting(backend):
    f = _make()
    out = f(backend.asarray(X), backend.asarray(Y), backend.asarray(K))
    assert out.shape == (3, 4)
    assert type(out) is type(backend.asarray(X))
    np.testing.assert_allclose(to_numpy(out), _numpy_f(X, Y), rtol=1e-14)


def test_first_derivatives_unbroadcast(ad_backend):
    f = _make()
    gx, gy = _grads(ad_backend, lambda a, b: f(a, b, K), X, Y)  # K as a Python scalar
    assert tuple(gx.shape) == (3, 1)
    assert tuple(gy.shape) == (4,)
    fd_x, fd_y = _fd_x_y(X, Y)
    np.testing.assert_allclose(to_numpy(gx), fd_x, rtol=1e-8)
    np.testing.assert_allclose(to_numpy(gy), fd_y, rtol=1e-8)


def test_none_partial_gives_no_gradient(ad_backend):
    f = _make()
    library, (x, y, k) = _own_autodiff(
        ad_backend, ad_backend.asarray(X), ad_backend.asarray(Y), ad_backend.asarray(np.array([K]))
    )
    if library == "numpy":
        import autograd

        grad = autograd.grad(lambda v: f(x, y, v).sum())(k)
        np.testing.assert_array_equal(to_numpy(grad), 0.0)
    elif library == "jax":
        import jax

        grad = jax.grad(lambda v: f(x, y, v).sum())(k)
        np.testing.assert_array_equal(to_numpy(grad), 0.0)
    else:
        import torch

        k = k.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(f(x, y, k).sum(), k, allow_unused=True)
        assert grad is None


def test_second_derivatives(ad_backend):
    # d²/dx² of x² sin(y) k = 2 sin(y) k, through the differentiable partials.
    f = _make()
    x = np.array([0.3, -1.2, 2.0])
    y = np.array([0.1, 0.7, -2.0])
    expected = 2.0 * np.sin(y) * K
    # Nested transforms of the differentiating library itself (bridged: the inner library).
    library, (xa, ya) = _own_autodiff(ad_backend, ad_backend.asarray(x), ad_backend.asarray(y))
    if library == "numpy":
        import autograd

        second = autograd.elementwise_grad(autograd.elementwise_grad(lambda v: f(v, ya, K)))(xa)
    elif library == "jax":
        import jax

        first = jax.grad(lambda v: f(v, ya, K).sum())
        second = jax.grad(lambda v: first(v).sum())(xa)
    else:
        import torch

        first = torch.func.grad(lambda v: f(v, ya, K).sum())
        second = torch.func.grad(lambda v: first(v).sum())(xa)
    np.testing.assert_allclose(to_numpy(second), expected, rtol=1e-12)


def test_float32_preserved(ad_backend):
    f = _make()
    xp = ad_backend.xp
    x = ad_backend.asarray(X, dtype=xp.float32)
    y = ad_backend.asarray(Y, dtype=xp.float32)
    assert f(x, y, K).dtype == xp.float32


def test_torch_backward_and_vmap():
    torch = pytest.importorskip("torch")
    f = _make()
    x = torch.tensor(X, requires_grad=True)
    y = torch.tensor(Y, requires_grad=True)
    f(x, y, K).sum().backward()
    fd_x, fd_y = _fd_x_y(X, Y)
    np.testing.assert_allclose(x.grad.numpy(), fd_x, rtol=1e-8)
    np.testing.assert_allclose(y.grad.numpy(), fd_y, rtol=1e-8)
    # vmap over rows of x, and per-example gradients with vmap(grad).
    xs = torch.tensor(X[:, 0])
    ys = torch.tensor(Y[:3])
    out = torch.func.vmap(lambda a, b: f(a, b, K))(xs, ys)
    np.testing.assert_allclose(out.numpy(), _numpy_f(X[:, 0], Y[:3]), rtol=1e-14)
    per_example = torch.func.vmap(torch.func.grad(lambda a, b: f(a, b, K)))(xs, ys)
    np.testing.assert_allclose(per_example.numpy(), 2 * X[:, 0] * np.sin(Y[:3]) * K, rtol=1e-12)


def test_jax_jit_and_vmap():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    f = _make()
    grad_fn = jax.jit(jax.grad(lambda a, b: f(a, b, K).sum(), argnums=(0, 1)))
    gx, gy = grad_fn(jnp.asarray(X), jnp.asarray(Y))
    fd_x, fd_y = _fd_x_y(X, Y)
    np.testing.assert_allclose(np.asarray(gx), fd_x, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(gy), fd_y, rtol=1e-8)
    xs, ys = jnp.asarray(X[:, 0]), jnp.asarray(Y[:3])
    per_example = jax.vmap(jax.grad(lambda a, b: f(a, b, K)))(xs, ys)
    np.testing.assert_allclose(np.asarray(per_example), 2 * X[:, 0] * np.sin(Y[:3]) * K, rtol=1e-12)
    out = jax.jit(jax.vmap(lambda a, b: f(a, b, K)))(xs, ys)
    np.testing.assert_allclose(np.asarray(out), _numpy_f(X[:, 0], Y[:3]), rtol=1e-14)


def test_unbroadcast(backend):
    xp = backend.xp
    grad = backend.asarray(np.arange(24.0).reshape(2, 3, 4))
    expected = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_allclose(to_numpy(unbroadcast(xp, grad, (3, 4))), expected.sum(0))
    np.testing.assert_allclose(
        to_numpy(unbroadcast(xp, grad, (3, 1))), expected.sum(0).sum(1, keepdims=True)
    )
    np.testing.assert_allclose(to_numpy(unbroadcast(xp, grad, ())), expected.sum())
    np.testing.assert_allclose(to_numpy(unbroadcast(xp, grad, (2, 3, 4))), expected)
