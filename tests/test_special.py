"""special: values against scipy.special, dtypes, and derivatives against finite differences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.special as sc

from surrogate_natgrad import special
from tests.helpers import central_difference, to_numpy


def _close(actual, expected, rtol=1e-12, atol=1e-300):
    actual = to_numpy(actual)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


X_GAMMA = np.concatenate([np.geomspace(1e-8, 1e4, 25), [0.5, 1.0, 2.0, 3.7]])
X_NORMAL = np.concatenate([np.linspace(-30, 8, 39), [-1e-9, 1e-9]])
P_GRID = np.array([1e-300, 1e-100, 1e-12, 1e-5, 0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-10, 1 - 1e-16])
DF_GRID = np.array([0.5, 1.0, 2.5, 7.0, 30.0, 1e3, 1e4, 1e6, 1e9])
T_GRID = np.array([-1e6, -40.0, -8.0, -3.0, -1.0, -0.3, -1e-5, 0.0, 1e-5, 0.3, 1.0, 3.0, 8.0, 40.0])
# stdtr also at extreme t (t² overflows) and tiny df.
DF_GRID_CDF = np.concatenate([[0.05], DF_GRID])
T_GRID_CDF = np.concatenate([[-1e200, -1e20, -1e-200, 1e-200, 1e6, 1e200], T_GRID])
# Quantiles stay below |t| = 1e147 (beyond, SciPy clamps at ~1e153 and so do we, at 1e147).
P_T_GRID = np.array(
    [1e-30, 1e-12, 1e-5, 0.01, 0.2, 0.45, 0.5, 0.55, 0.9, 0.999, 1 - 1e-10, 1 - 1e-16]
)
AB_GRID = np.array([0.1, 0.5, 1.0, 2.5, 20.0, 300.0, 1e4])
X_BETA = np.array([0.0, 1e-300, 1e-6, 0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-6, 1.0])


@pytest.mark.parametrize(
    ("name", "grid", "atol"),
    [
        ("gammaln", X_GAMMA, 1e-13),
        ("digamma", X_GAMMA, 1e-13),
        ("erf", np.linspace(-7, 7, 57), 0.0),
        ("ndtr", X_NORMAL, 0.0),
        ("log_ndtr", X_NORMAL, 0.0),
        ("ndtri", P_GRID, 1e-15),
    ],
)
def test_unary_values_match_scipy(backend, name, grid, atol):
    out = getattr(special, name)(backend.asarray(grid))
    _close(out, getattr(sc, name)(grid), atol=atol)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_polygamma_values(backend, n):
    x = np.geomspace(1e-4, 1e4, 15)
    _close(special.polygamma(n, backend.asarray(x)), sc.polygamma(n, x))
    _close(special.polygamma(0, backend.asarray(x)), sc.digamma(x), atol=1e-13)


def test_elementary_values(backend):
    x = np.array([-800.0, -30.0, -1.0, 0.0, 1e-8, 2.0, 40.0, 800.0])
    xa = backend.asarray(x)
    _close(special.softplus(xa), np.logaddexp(0.0, x))
    _close(special.log_sigmoid(xa), sc.log_expit(x))
    y = np.array([0.5, 2.0, 3.0])
    _close(
        special.xlogy(backend.asarray([0.0, 1.5, 2.0]), backend.asarray(y)),
        sc.xlogy([0.0, 1.5, 2.0], y),
    )
    m = np.array([[1.0, 700.0, -3.0], [-np.inf, 0.0, 2.0]])
    ma = backend.asarray(m)
    _close(special.logsumexp(ma), sc.logsumexp(m))
    _close(special.logsumexp(ma, axis=1), sc.logsumexp(m, axis=1))
    _close(special.logsumexp(ma, axis=0, keepdims=True), sc.logsumexp(m, axis=0, keepdims=True))


def test_betainc_values(backend):
    a, b, x = np.meshgrid(AB_GRID, AB_GRID, X_BETA, indexing="ij")
    out = special.betainc(backend.asarray(a), backend.asarray(b), backend.asarray(x))
    _close(out, sc.betainc(a, b, x))


def test_stdtr_values(backend):
    df, t = np.meshgrid(DF_GRID_CDF, T_GRID_CDF, indexing="ij")
    _close(special.stdtr(backend.asarray(df), backend.asarray(t)), sc.stdtr(df, t))


def test_stdtrit_values(backend):
    df, p = np.meshgrid(DF_GRID, P_T_GRID, indexing="ij")
    _close(special.stdtrit(backend.asarray(df), backend.asarray(p)), sc.stdtrit(df, p), atol=1e-15)


def test_t_log_pdf(backend):
    import scipy.stats

    df, t = np.meshgrid(DF_GRID, T_GRID, indexing="ij")
    _close(
        special.t_log_pdf(backend.asarray(df), backend.asarray(t)),
        scipy.stats.t.logpdf(t, df),
        rtol=1e-11,
    )


def test_float32_and_integer_inputs(backend):
    xp = backend.xp
    x32 = backend.asarray(np.array([0.5, 1.5, 3.0]), dtype=xp.float32)
    for fn in (
        special.gammaln,
        special.digamma,
        special.erf,
        special.ndtr,
        special.log_ndtr,
        special.softplus,
        special.log_sigmoid,
    ):
        assert fn(x32).dtype == xp.float32
    assert special.ndtri(x32 / 4.0).dtype == xp.float32
    assert special.polygamma(1, x32).dtype == xp.float32
    assert special.stdtr(x32, x32).dtype == xp.float32
    assert special.stdtrit(x32, x32 / 4.0).dtype == xp.float32
    assert special.betainc(x32, x32, x32 / 4.0).dtype == xp.float32
    np.testing.assert_allclose(
        to_numpy(special.stdtr(x32, x32)), sc.stdtr([0.5, 1.5, 3.0], [0.5, 1.5, 3.0]), rtol=1e-5
    )
    ints = backend.asarray(np.array([1, 2, 3]))
    out = special.gammaln(ints)
    assert out.dtype == xp.float64
    _close(out, sc.gammaln([1.0, 2.0, 3.0]), atol=1e-14)


def test_polygamma_rejects_bad_order(backend):
    with pytest.raises(ValueError, match="order n"):
        special.polygamma(-1, backend.asarray([1.0]))


# ----------------------------------------------------------------------------------------
# Derivatives against independent finite differences of SciPy
# ----------------------------------------------------------------------------------------


def _grad(ad_backend, fun, args, argnum):
    """Gradient of sum(fun(*args)) with respect to args[argnum] on the backend."""
    arrays = [ad_backend.asarray(a) for a in args]
    closed = ad_backend.inner(arrays)  # what a differentiated function sees (bridge: torch)

    def f(v):
        new = list(closed)
        new[argnum] = v
        return fun(*new).sum()

    if ad_backend.name == "jax":
        import jax

        return jax.jit(jax.grad(f))(arrays[argnum])
    # autograd, torch (CPU or CUDA), or a DLPack bridge for CuPy and its stand-in
    return ad_backend.autodiff().grad(f)(arrays[argnum])


def _fd(scipy_fun, args, argnum, step=1e-5):
    """Elementwise fourth-order central difference of a SciPy function (an independent
    reference; the functions are elementwise, so each element gets its own step)."""
    args = [np.asarray(a, dtype=float) for a in np.broadcast_arrays(*args)]
    h = step * np.maximum(np.abs(args[argnum]), 1.0)

    def f(k):
        new = list(args)
        new[argnum] = args[argnum] + k * h
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return scipy_fun(*new)

    return (-f(2) + 8 * f(1) - 8 * f(-1) + f(-2)) / (12 * h)


UNARY_GRADS = [
    ("gammaln", sc.gammaln, np.array([0.3, 1.5, 7.0, 40.0])),
    ("digamma", sc.digamma, np.array([0.3, 1.5, 7.0, 40.0])),
    ("erf", sc.erf, np.array([-2.0, -0.1, 0.5, 3.0])),
    ("ndtr", sc.ndtr, np.array([-6.0, -0.1, 0.5, 3.0])),
    ("log_ndtr", sc.log_ndtr, np.array([-20.0, -0.1, 0.5, 3.0])),
    ("ndtri", sc.ndtri, np.array([1e-3, 0.1, 0.5, 0.97])),
    ("softplus", lambda x: np.logaddexp(0.0, x), np.array([-30.0, -0.1, 0.5, 30.0])),
    ("log_sigmoid", sc.log_expit, np.array([-30.0, -0.1, 0.5, 30.0])),
]


@pytest.mark.parametrize(("name", "ref", "x"), UNARY_GRADS, ids=[u[0] for u in UNARY_GRADS])
def test_unary_gradients(ad_backend, name, ref, x):
    got = _grad(ad_backend, getattr(special, name), [x], 0)
    np.testing.assert_allclose(to_numpy(got), _fd(ref, [x], 0), rtol=1e-6, atol=1e-12)


def test_polygamma_xlogy_logsumexp_gradients(ad_backend):
    x = np.array([0.4, 2.0, 9.0])
    got = _grad(ad_backend, lambda v: special.polygamma(1, v), [x], 0)
    np.testing.assert_allclose(to_numpy(got), _fd(lambda v: sc.polygamma(1, v), [x], 0), rtol=1e-6)
    y = np.array([0.5, 2.0, 3.0])
    for argnum in (0, 1):
        got = _grad(ad_backend, special.xlogy, [x, y], argnum)
        np.testing.assert_allclose(to_numpy(got), _fd(sc.xlogy, [x, y], argnum), rtol=1e-6)
    got = _grad(ad_backend, special.logsumexp, [x], 0)
    np.testing.assert_allclose(
        to_numpy(got), central_difference(sc.logsumexp, x, step=1e-3), rtol=1e-6
    )


@pytest.mark.parametrize("argnum", [0, 1, 2])
def test_betainc_gradients(ad_backend, argnum):
    a = np.array([0.3, 2.0, 5.0, 30.0, 0.7])
    b = np.array([0.5, 4.0, 0.8, 60.0, 200.0])
    x = np.array([0.2, 0.5, 0.95, 0.3, 0.01])
    got = _grad(ad_backend, special.betainc, [a, b, x], argnum)
    np.testing.assert_allclose(
        to_numpy(got), _fd(sc.betainc, [a, b, x], argnum), rtol=1e-6, atol=1e-14
    )


@pytest.mark.parametrize("argnum", [0, 1])
def test_stdtr_gradients(ad_backend, argnum):
    df = np.array([0.6, 1.0, 3.0, 3.0, 12.0, 12.0, 200.0, 2e4])
    t = np.array([-20.0, 2.0, -0.5, 0.3, -6.0, 1.5, -3.0, -2.5])
    got = _grad(ad_backend, special.stdtr, [df, t], argnum)
    np.testing.assert_allclose(to_numpy(got), _fd(sc.stdtr, [df, t], argnum), rtol=1e-6, atol=1e-20)


STDTRIT_DF = np.array([0.6, 1.0, 3.0, 3.0, 12.0, 12.0, 200.0, 2e4])
STDTRIT_P = np.array([1e-6, 0.9, 0.3, 0.55, 0.01, 0.99, 0.2, 1e-4])


def _stdtrit_reference(df, p):
    """(∂t/∂df, ∂t/∂p) of the t quantile by the implicit function theorem, all in SciPy."""
    import scipy.stats

    t = sc.stdtrit(df, p)
    density = scipy.stats.t.pdf(t, df)
    d_cdf_d_df = _fd(sc.stdtr, [df, t], 0, step=1e-4)
    return -d_cdf_d_df / density, 1.0 / density


@pytest.mark.parametrize("argnum", [0, 1])
def test_stdtrit_gradients(ad_backend, argnum):
    got = to_numpy(_grad(ad_backend, special.stdtrit, [STDTRIT_DF, STDTRIT_P], argnum))
    np.testing.assert_allclose(got, _stdtrit_reference(STDTRIT_DF, STDTRIT_P)[argnum], rtol=1e-6)
    # Direct finite differences of SciPy's quantile where they are well conditioned.
    easy = STDTRIT_DF >= 3.0
    fd = _fd(sc.stdtrit, [STDTRIT_DF[easy], STDTRIT_P[easy]], argnum, step=1e-6)
    np.testing.assert_allclose(got[easy], fd, rtol=1e-6)


def test_torch_backward_and_second_derivative():
    torch = pytest.importorskip("torch")
    df = torch.tensor([3.0, 12.0], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([-1.0, 2.0], dtype=torch.float64, requires_grad=True)
    special.stdtr(df, t).sum().backward()
    np.testing.assert_allclose(
        df.grad.numpy(), _fd(sc.stdtr, [[3.0, 12.0], [-1.0, 2.0]], 0), rtol=1e-6
    )
    np.testing.assert_allclose(
        t.grad.numpy(), _fd(sc.stdtr, [[3.0, 12.0], [-1.0, 2.0]], 1), rtol=1e-6
    )
    # d²/dt² of the t CDF is the derivative of the density, through the custom rule.
    x = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(special.stdtr(5.0, x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    import scipy.stats

    expected = central_difference(lambda v: float(scipy.stats.t.pdf(v, 5.0)[0]), np.array([0.7]))
    np.testing.assert_allclose(h.numpy(), expected, rtol=1e-6)


def test_jax_vmap_and_scalar_arguments():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    p = jnp.array([0.1, 0.6])
    out = jax.vmap(lambda v: special.stdtrit(4.0, v))(p)
    _close(out, sc.stdtrit(4.0, [0.1, 0.6]))
