"""Tests of surrogate_natgrad.random: shapes, devices, reproducibility and distributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from surrogate_natgrad import random as snrandom
from surrogate_natgrad._compat import array_library_name, device, namespace
from surrogate_natgrad.errors import BackendError
from tests.helpers import to_numpy

N_DRAWS = 20_000
Z = 5.0  # standard errors allowed in moment checks


def make_rng(backend, seed=0):
    return snrandom.default_rng(seed, xp=backend.xp, device=backend.device)


def check_moments(sample, mean, var, fourth_central=None):
    """Sample mean and variance within Z standard errors of the true ones."""
    sample = np.asarray(sample, dtype=np.float64)
    n = sample.size
    assert abs(sample.mean() - mean) < Z * np.sqrt(var / n)
    if fourth_central is None:
        fourth_central = 3 * var**2  # normal-like
    var_se = np.sqrt((fourth_central - var**2) / n)
    assert abs(sample.var() - var) < Z * var_se


def same_library_and_device(x, rng):
    assert array_library_name(namespace(x)) == rng.library
    if rng.library != "numpy":
        assert device(x) == rng.device


def test_shapes_dtypes_devices(backend):
    xp = backend.xp
    rng = make_rng(backend)
    for draw in (
        rng.normal((2, 3)),
        rng.uniform((2, 3)),
        rng.gamma(2.0, (2, 3)),
        rng.chisquare(3.0, (2, 3)),
    ):
        assert tuple(draw.shape) == (2, 3)
        assert draw.dtype == xp.float64
        same_library_and_device(draw, rng)
    assert rng.normal(4, dtype=xp.float32).dtype == xp.float32
    assert rng.gamma(0.5, 4, dtype="float32").dtype == xp.float32
    assert tuple(rng.normal().shape) == ()
    ints = rng.integers(3, size=(5,))
    assert xp.isdtype(ints.dtype, "integral") and tuple(ints.shape) == (5,)
    same_library_and_device(ints, rng)
    assert tuple(rng.choice(4, (2, 2)).shape) == (2, 2)
    # a float32 parameter array sets the dtype
    loc = backend.asarray(np.zeros(3, dtype=np.float32))
    assert rng.normal(loc=loc).dtype == xp.float32
    assert rng.xp is not None and repr(rng).startswith("Generator")


def test_like_argument(backend):
    like = backend.asarray([1.0, 2.0])
    rng = snrandom.default_rng(1, like=like)
    draw = rng.normal(3)
    same_library_and_device(draw, rng)
    assert array_library_name(namespace(draw)) == array_library_name(namespace(like))


def test_reproducible_streams(backend):
    first = make_rng(backend, 123)
    second = make_rng(backend, 123)
    other = make_rng(backend, 124)
    for method, args in [("normal", (5,)), ("gamma", (0.7, 5)), ("integers", (0, 100, 5)),
                         ("permutation", (6,)), ("choice", (4, 5))]:
        a = to_numpy(getattr(first, method)(*args))
        b = to_numpy(getattr(second, method)(*args))
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(to_numpy(first.normal(8)), to_numpy(other.normal(8)))
    # spawned children are reproducible and independent
    children_a = make_rng(backend, 5).spawn(2)
    children_b = make_rng(backend, 5).split(2)
    x0, x1 = (to_numpy(child.normal(6)) for child in children_a)
    np.testing.assert_array_equal(x0, to_numpy(children_b[0].normal(6)))
    assert not np.array_equal(x0, x1)
    same_library_and_device(children_a[0].normal(2), children_a[0])


def test_normal_uniform_moments(backend):
    rng = make_rng(backend, 7)
    check_moments(to_numpy(rng.normal(N_DRAWS, loc=1.0, scale=2.0)), 1.0, 4.0)
    # uniform: fourth central moment (b-a)^4/80
    sample = to_numpy(rng.uniform(N_DRAWS, low=-1.0, high=3.0))
    assert sample.min() >= -1.0 and sample.max() < 3.0
    check_moments(sample, 1.0, 16 / 12, 4**4 / 80)
    # array parameters broadcast with size
    loc = backend.asarray([0.0, 10.0])
    sample = to_numpy(rng.normal((N_DRAWS // 2, 2), loc=loc, scale=0.5))
    check_moments(sample[:, 1], 10.0, 0.25)


@pytest.mark.parametrize("shape", [0.3, 1.0, 50.0])
def test_gamma_moments(backend, shape):
    rng = make_rng(backend, 11)
    scale = 2.0
    sample = to_numpy(rng.gamma(shape, N_DRAWS, scale=scale))
    assert np.all(sample >= 0)
    var = shape * scale**2
    fourth = var**2 * (3 + 6 / shape)  # excess kurtosis of the gamma is 6 / shape
    check_moments(sample, shape * scale, var, fourth)


def test_gamma_array_shape_and_chisquare(backend):
    rng = make_rng(backend, 13)
    shapes = backend.asarray([0.5, 4.0])
    sample = to_numpy(rng.gamma(shapes, size=(N_DRAWS // 2, 2)))
    for column, k in enumerate([0.5, 4.0]):
        check_moments(sample[:, column], k, k, k**2 * (3 + 6 / k))
    df = 3.0
    chi2 = to_numpy(rng.chisquare(df, N_DRAWS))
    check_moments(chi2, df, 2 * df, (2 * df) ** 2 * (3 + 12 / df))


def test_integers_and_choice(backend):
    rng = make_rng(backend, 17)
    ints = to_numpy(rng.integers(2, 7, N_DRAWS))
    assert ints.min() == 2 and ints.max() == 6
    check_moments(ints, 4.0, (5**2 - 1) / 12, (5**2 - 1) * (3 * 5**2 - 7) / 240)
    p = np.array([0.1, 0.0, 0.6, 0.3])
    draws = to_numpy(rng.choice(4, N_DRAWS, p=backend.asarray(p)))
    freq = np.bincount(draws, minlength=4) / N_DRAWS
    np.testing.assert_array_less(np.abs(freq - p), Z * np.sqrt(p * (1 - p) / N_DRAWS) + 1e-12)
    # without replacement: distinct, never a zero-probability category
    picked = to_numpy(rng.choice(4, 3, replace=False, p=p.tolist()))
    assert len(set(picked.tolist())) == 3 and 1 not in picked
    uniform_pick = to_numpy(rng.choice(10, (2, 5), replace=False))
    assert sorted(uniform_pick.ravel().tolist()) == list(range(10))
    perm = to_numpy(rng.permutation(8))
    assert sorted(perm.tolist()) == list(range(8))
    rows = backend.asarray(np.arange(12.0).reshape(4, 3))
    shuffled = to_numpy(rng.permutation(rows))
    assert sorted(shuffled[:, 0].tolist()) == [0.0, 3.0, 6.0, 9.0]


@pytest.mark.parametrize("library", ["numpy", "torch", "array_api_strict"])
@pytest.mark.parametrize("shape", [0.3, 2.5])
def test_gamma_ks(library, shape):
    pytest.importorskip(library)
    rng = snrandom.default_rng(3, xp=library)
    sample = to_numpy(rng.gamma(shape, 5000, scale=1.5))
    assert stats.kstest(sample, stats.gamma(shape, scale=1.5).cdf).pvalue > 1e-3


@pytest.mark.parametrize("shape", [0.3, 2.5])
def test_generic_marsaglia_tsang_on_torch(shape):
    """The fallback sampler torch would use without torch._standard_gamma."""
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as xp

    generator = torch.Generator().manual_seed(0)

    def normal(size, dtype):
        return torch.randn(size, generator=generator, dtype=dtype)

    def uniform(size, dtype):
        return torch.rand(size, generator=generator, dtype=dtype)

    alpha = torch.full((5000,), shape, dtype=torch.float64)
    sample = snrandom._marsaglia_tsang(xp, alpha, normal, uniform).numpy()
    assert stats.kstest(sample, stats.gamma(shape).cdf).pvalue > 1e-3


def test_jax_key_functional_use():
    jax = pytest.importorskip("jax")
    rng = snrandom.default_rng(0, xp="jax")
    key = rng.key
    assert rng.key is key  # reading does not advance
    sub = rng.next_key()
    assert rng.key is not key
    assert jax.random.normal(sub, (2,)).shape == (2,)
    with pytest.raises(BackendError, match="JAX"):
        _ = snrandom.default_rng(0).key


def test_validation_errors():
    rng = snrandom.default_rng(0)
    with pytest.raises(ValueError, match="scale"):
        rng.normal(3, scale=-1.0)
    with pytest.raises(ValueError, match="scale"):
        rng.normal(3, scale=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        rng.gamma(-0.5, 3)
    with pytest.raises(ValueError, match="scale"):
        rng.gamma(1.0, 3, scale=0.0)
    with pytest.raises(ValueError, match="df"):
        rng.chisquare(0.0, 3)
    with pytest.raises(ValueError, match="high"):
        rng.uniform(3, low=2.0, high=1.0)
    with pytest.raises(ValueError, match="high"):
        rng.integers(5, 5)
    with pytest.raises(ValueError, match="sum to 1"):
        rng.choice(3, 2, p=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="non-negative"):
        rng.choice(3, 2, p=[1.5, -0.5, 0.0])
    with pytest.raises(ValueError, match="length n=3"):
        rng.choice(3, 2, p=[0.5, 0.5])
    with pytest.raises(ValueError, match="without replacement"):
        rng.choice(3, 4, replace=False)
    with pytest.raises(ValueError, match="positive probability"):
        rng.choice(3, 3, replace=False, p=[0.5, 0.5, 0.0])
    with pytest.raises(ValueError, match="size"):
        rng.normal((2, -1))
    with pytest.raises(ValueError, match="dtype"):
        rng.normal(2, dtype="int32")
    with pytest.raises(ValueError, match="loc"):
        rng.normal(2, loc="a")
    with pytest.raises(ValueError, match="seed"):
        snrandom.default_rng(-1)
    with pytest.raises(BackendError, match="xp"):
        snrandom.default_rng(0, xp="tensorflow")
    with pytest.raises(ValueError, match="does not broadcast"):
        rng.normal(3, loc=np.zeros(2))


def test_foreign_parameter_rejected():
    torch = pytest.importorskip("torch")
    rng = snrandom.default_rng(0)
    with pytest.raises(BackendError, match="torch"):
        rng.normal(2, loc=torch.zeros(2, dtype=torch.float64))
