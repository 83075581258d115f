"""special.gammainc / gammaincc / gammaincinv: values against scipy.special, derivatives
against finite differences of SciPy, and the implicit reparameterisation identities."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.special as sc
import scipy.stats

from surrogate_natgrad import special
from tests.helpers import to_numpy

# Beyond a = 2000 the implementation switches to quadratures (SciPy is accurate to 1e-14
# there up to a ≈ 1e5, checked against mpmath).
A_GRID = np.array([0.05, 0.1, 0.3, 0.5, 1.0, 2.5, 7.0, 10.0, 25.0, 100.0, 300.0, 1e3, 5e3, 1e5])
# Probabilities spanning the bulk of Gamma(a, 1): quantiles 1e-10 .. 1 - 1e-10.
P_GRID = np.array([1e-10, 1e-5, 0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-5, 1 - 1e-10])
# gammaincinv also far out (the quantile of 1e-300 underflows to 0 for small a, as in SciPy).
P_GRID_INV = np.concatenate([[1e-300, 1e-100, 1e-30], P_GRID, [1 - 1e-16]])


def _close(actual, expected, rtol=1e-12, atol=0.0):
    np.testing.assert_allclose(to_numpy(actual), expected, rtol=rtol, atol=atol, equal_nan=True)


def _mesh(p_grid):
    a, p = np.meshgrid(A_GRID, p_grid, indexing="ij")
    return a.ravel(), p.ravel()


# ----------------------------------------------------------------------------------------
# Values
# ----------------------------------------------------------------------------------------


# Edges and out-of-domain points: x = 0, x = inf, a = 0 (SciPy's limits P(0, x > 0) = 1),
# a = inf, a < 0, x < 0, NaN, and extreme x. All functions follow SciPy there.
EDGE_A = np.array([1.0, 0.0, 0.0, -1.0, np.nan, 2.0, 2.0, 2.0, np.inf, np.inf, 3.0, 0.5, 2.0])
EDGE_X = np.array([0.0, 1.0, 0.0, 1.0, 1.0, np.nan, -1.0, np.inf, 1.0, np.inf, 1e-300, 1e300, 0.0])
EDGE_P = np.array([0.0, 0.5, 0.0, 0.5, 0.5, np.nan, -0.1, 1.0, 0.5, 1.0, 1e-300, 1 - 1e-16, 1.5])


def _scipy(name, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(sc, name)(*args)


@pytest.mark.parametrize("name", ["gammainc", "gammaincc"])
def test_values_match_scipy(backend, name):
    a, p = _mesh(P_GRID)
    x = sc.gammaincinv(a, p)
    # One array per backend (on JAX every new shape is a new compilation).
    a, x = np.concatenate([a, EDGE_A]), np.concatenate([x, EDGE_X])
    out = getattr(special, name)(backend.asarray(a), backend.asarray(x))
    _close(out, _scipy(name, a, x))


def test_gammaincinv_matches_scipy(backend):
    a, p = _mesh(P_GRID_INV)
    a, p = np.concatenate([a, EDGE_A]), np.concatenate([p, EDGE_P])
    out = to_numpy(special.gammaincinv(backend.asarray(a), backend.asarray(p)))
    _close(out, _scipy("gammaincinv", a, p), atol=1e-300)
    # It inverts SciPy's CDF (an independent round trip) over the bulk, to 2e-14 relative
    # in x: the tail probability moves by x f(x)/tail times the relative error of x.
    bulk = np.isin(p, P_GRID) & (np.arange(p.size) < p.size - EDGE_P.size)
    a, p, out = a[bulk], p[bulk], out[bulk]
    upper = p > 0.5
    tail = np.where(upper, 1.0 - p, p)
    condition = np.maximum(out * scipy.stats.gamma.pdf(out, a) / tail, 1.0)
    relative = np.where(upper, sc.gammaincc(a, out), sc.gammainc(a, out)) / tail - 1.0
    assert np.all(np.abs(relative) <= 2e-14 * condition + 1e-14)


def test_broadcasting_and_scalars(backend):
    a = np.array([[0.5], [3.0], [40.0]])
    x = np.array([0.1, 1.0, 10.0, 50.0])
    out = special.gammainc(backend.asarray(a), backend.asarray(x))
    assert tuple(out.shape) == (3, 4)
    _close(out, sc.gammainc(a, x))
    out = special.gammaincinv(backend.asarray(a), 0.25)
    assert tuple(out.shape) == (3, 1)
    _close(out, sc.gammaincinv(a, 0.25))


def test_float32_and_integer_inputs(backend):
    xp = backend.xp
    a = np.array([0.3, 1.0, 2.5, 10.0, 60.0])
    p = np.array([1e-3, 0.2, 0.5, 0.8, 0.999])
    x = sc.gammaincinv(a, p)
    a32 = backend.asarray(a, dtype=xp.float32)
    x32 = backend.asarray(x, dtype=xp.float32)
    p32 = backend.asarray(p, dtype=xp.float32)
    x_rounded = to_numpy(x32).astype(np.float64)  # compare at the float32 inputs
    a_rounded = to_numpy(a32).astype(np.float64)
    p_rounded = to_numpy(p32).astype(np.float64)
    # float32 has eps ≈ 1.2e-7; the exponent a log x - x amplifies rounding by up to |x - a|.
    tol = 2e-5
    # (gammaincc shares gammainc's code; one of them keeps the JAX compilations few.)
    out = special.gammainc(a32, x32)
    assert out.dtype == xp.float32
    _close(out, sc.gammainc(a_rounded, x_rounded), rtol=tol)
    out = special.gammaincinv(a32, p32)
    assert out.dtype == xp.float32
    _close(out, sc.gammaincinv(a_rounded, p_rounded), rtol=tol)
    integers = backend.asarray(np.array([1, 2, 3]), dtype=xp.int64)
    out = special.gammainc(integers, integers)
    assert out.dtype == xp.float64
    _close(out, sc.gammainc([1, 2, 3], [1, 2, 3]))


# ----------------------------------------------------------------------------------------
# Derivatives against independent finite differences of SciPy
# ----------------------------------------------------------------------------------------


def _grads(ad_backend, fun, args):
    """Gradients of sum(fun(*args)) with respect to every argument, on the backend (one
    compiled function per call on JAX: compilation dominates the run time there)."""
    arrays = tuple(ad_backend.asarray(a) for a in args)
    argnums = tuple(range(len(arrays)))

    def f(*values):
        return fun(*values).sum()

    if ad_backend.name == "jax":
        import jax

        return jax.jit(jax.grad(f, argnums=argnums))(*arrays)
    # autograd, torch (CPU or CUDA), or a DLPack bridge for CuPy and its stand-in
    return ad_backend.autodiff().grad(f, argnums=argnums)(*arrays)


def _fd(scipy_fun, args, argnum, step=1e-5):
    """Elementwise fourth-order central difference of a SciPy function."""
    args = [np.asarray(a, dtype=float) for a in np.broadcast_arrays(*args)]
    h = step * np.maximum(np.abs(args[argnum]), 1.0)

    def f(k):
        new = list(args)
        new[argnum] = args[argnum] + k * h
        return scipy_fun(*new)

    return (-f(2) + 8 * f(1) - 8 * f(-1) + f(-2)) / (12 * h)


# Shapes and points in both tails and the centre (p from 1e-8 to 1 - 1e-8).
GRAD_A = np.array(
    [0.05, 0.3, 0.3, 1.0, 2.5, 2.5, 7.0, 25.0, 25.0, 300.0, 300.0, 1e3, 5e3, 5e3, 1e5, 1e5]
)
GRAD_P = np.array(
    [
        *(0.3, 1e-8, 0.9, 0.5, 1e-3, 1 - 1e-8, 0.2, 1e-5, 0.95, 0.5, 1 - 1e-6, 0.01),
        *(0.4, 1 - 1e-4, 1e-6, 0.7),
    ]
)
GRAD_X = sc.gammaincinv(GRAD_A, GRAD_P)


def _d_lower_da_reference(a, x):
    """∂P/∂a by finite differences of SciPy, of Q where P is near one (∂P/∂a = -∂Q/∂a),
    so the reference keeps relative accuracy in both tails."""
    upper = sc.gammainc(a, x) > 0.5
    return np.where(upper, -_fd(sc.gammaincc, [a, x], 0), _fd(sc.gammainc, [a, x], 0))


@pytest.mark.parametrize("name", ["gammainc", "gammaincc"])
def test_gammainc_gradients(ad_backend, name):
    sign = 1.0 if name == "gammainc" else -1.0
    d_a, d_x = map(to_numpy, _grads(ad_backend, getattr(special, name), [GRAD_A, GRAD_X]))
    np.testing.assert_allclose(sign * d_a, _d_lower_da_reference(GRAD_A, GRAD_X), rtol=1e-6)
    np.testing.assert_allclose(sign * d_x, scipy.stats.gamma.pdf(GRAD_X, GRAD_A), rtol=1e-10)
    # And a direct finite difference of SciPy's function where it is well conditioned.
    easy = (GRAD_P > 1e-4) & (GRAD_P < 1 - 1e-4) & (GRAD_X > 1e-2)
    direct = _fd(getattr(sc, name), [GRAD_A[easy], GRAD_X[easy]], 1, step=1e-6)
    np.testing.assert_allclose(d_x[easy], direct, rtol=1e-6)


def test_gammaincinv_gradients(ad_backend):
    d_a, d_p = map(to_numpy, _grads(ad_backend, special.gammaincinv, [GRAD_A, GRAD_P]))
    # Implicit function theorem with every ingredient from SciPy.
    density = scipy.stats.gamma.pdf(GRAD_X, GRAD_A)
    np.testing.assert_allclose(d_a, -_d_lower_da_reference(GRAD_A, GRAD_X) / density, rtol=1e-6)
    np.testing.assert_allclose(d_p, 1.0 / density, rtol=1e-10)
    # Direct finite differences of SciPy's quantile where the step stays inside (0, 1).
    easy = (GRAD_P > 1e-4) & (GRAD_P < 1 - 1e-4)
    for argnum, got, step in ((0, d_a, 1e-5), (1, d_p, 1e-7)):
        fd = _fd(sc.gammaincinv, [GRAD_A[easy], GRAD_P[easy]], argnum, step=step)
        np.testing.assert_allclose(got[easy], fd, rtol=1e-5)


def test_gradients_broadcast_to_argument_shapes(ad_backend):
    a = np.array([[0.7], [4.0]])
    x = np.array([0.5, 2.0, 6.0])
    grad_a, grad_x = map(to_numpy, _grads(ad_backend, special.gammainc, [a, x]))
    assert grad_x.shape == (3,)
    assert grad_a.shape == (2, 1)
    full = _d_lower_da_reference(*np.broadcast_arrays(a, x))
    np.testing.assert_allclose(grad_a, full.sum(axis=1, keepdims=True), rtol=1e-6)


# ----------------------------------------------------------------------------------------
# Implicit reparameterisation identities (independent Monte Carlo checks)
# ----------------------------------------------------------------------------------------

N_DRAWS = 20000


SHAPES = (0.3, 2.5, 25.0)


def test_reparameterisation_identities(ad_backend):
    """With G = gammaincinv(a, U), U ~ U(0, 1) fixed: E[∂G/∂a] = d/da E[G] = 1 and
    E[∂ log G/∂a] = d/da E[log G] = ψ'(a), for a in SHAPES (one call for all of them)."""
    u = np.random.default_rng(20240).uniform(size=(len(SHAPES), N_DRAWS))
    a = np.repeat(np.array(SHAPES)[:, None], N_DRAWS, axis=1)
    # Per-draw derivatives: the gradient of the sum with respect to a per-draw copy of a.
    d_sample = to_numpy(_grads(ad_backend, special.gammaincinv, [a, u])[0])
    d_log_sample = d_sample / sc.gammaincinv(a, u)
    for row, shape in enumerate(SHAPES):
        for values, expected in ((d_sample, 1.0), (d_log_sample, sc.polygamma(1, shape))):
            standard_error = values[row].std(ddof=1) / np.sqrt(N_DRAWS)
            assert abs(values[row].mean() - expected) < 5.0 * standard_error, (shape, expected)


# ----------------------------------------------------------------------------------------
# Autodiff integration
# ----------------------------------------------------------------------------------------


def test_jax_jit_grad_vmap_and_second_derivative():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    u = jnp.asarray([0.1, 0.5, 0.9])

    def sample_mean(a):
        # vmap inside grad inside jit: one compilation exercises all three transformations.
        return jnp.mean(jax.vmap(lambda v: special.gammaincinv(a, v))(u))

    value, grad = jax.jit(jax.value_and_grad(sample_mean))(jnp.asarray(3.0))
    x = sc.gammaincinv(3.0, np.asarray(u))
    np.testing.assert_allclose(float(value), np.mean(x), rtol=1e-13)
    d_x = -_d_lower_da_reference(np.full(3, 3.0), x) / scipy.stats.gamma.pdf(x, 3.0)
    np.testing.assert_allclose(float(grad), np.mean(d_x), rtol=1e-6)
    # d²P/dx² = f'(x) = f(x) ((a-1)/x - 1), through the custom rule.
    hess = jax.jit(jax.hessian(lambda v: special.gammainc(3.0, v)))(jnp.asarray(1.7))
    expected = scipy.stats.gamma.pdf(1.7, 3.0) * (2.0 / 1.7 - 1.0)
    np.testing.assert_allclose(float(hess), expected, rtol=1e-10)


def test_torch_backward_and_second_derivative():
    torch = pytest.importorskip("torch")
    a = torch.tensor([0.8, 6.0], dtype=torch.float64, requires_grad=True)
    u = torch.tensor([0.3, 0.7], dtype=torch.float64, requires_grad=True)
    special.gammaincinv(a, u).sum().backward()
    x = sc.gammaincinv([0.8, 6.0], [0.3, 0.7])
    density = scipy.stats.gamma.pdf(x, [0.8, 6.0])
    np.testing.assert_allclose(u.grad.numpy(), 1.0 / density, rtol=1e-10)
    np.testing.assert_allclose(
        a.grad.numpy(), -_d_lower_da_reference(np.array([0.8, 6.0]), x) / density, rtol=1e-6
    )
    v = torch.tensor([1.7], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(special.gammainc(3.0, v).sum(), v, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), v)
    expected = scipy.stats.gamma.pdf(1.7, 3.0) * (2.0 / 1.7 - 1.0)
    np.testing.assert_allclose(h.numpy(), [expected], rtol=1e-10)


def test_autograd_grad_of_a_composite():
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp

    u = np.array([0.2, 0.6])

    def objective(a):
        return anp.sum(anp.log(special.gammaincinv(a, u)))

    got = autograd.grad(objective)(np.array([1.5, 1.5]))
    x = sc.gammaincinv(1.5, u)
    expected = -_d_lower_da_reference(np.full(2, 1.5), x) / scipy.stats.gamma.pdf(x, 1.5) / x
    np.testing.assert_allclose(got, expected, rtol=1e-6)
