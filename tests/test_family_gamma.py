"""Gamma family: scipy.stats references, the mean → natural root solve and its IFT derivative."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
import scipy.stats

from surrogate_natgrad import autodiff, random
from surrogate_natgrad._compat import namespace
from surrogate_natgrad.families import Gamma, GammaMean, GammaStandard
from tests.helpers import central_difference, to_numpy

mpmath = pytest.importorskip("mpmath")


def _require_implicit_root():
    try:
        import surrogate_natgrad.autodiff._implicit  # noqa: F401
    except ImportError:
        pytest.skip("autodiff.implicit_root is not available yet")


def test_gamma_density_entropy_kl_match_scipy(backend):
    family = Gamma()
    shape, rate = np.array([0.7, 3.5]), np.array([2.0, 0.4])
    natural = family.standard_to_natural(
        GammaStandard(backend.asarray(shape), backend.asarray(rate))
    )
    x = np.array([[0.3, 2.5], [1.7, 9.0]])
    dist = scipy.stats.gamma(shape, scale=1 / rate)
    np.testing.assert_allclose(
        to_numpy(family.log_prob(natural, backend.asarray(x))), dist.logpdf(x), rtol=1e-12
    )
    np.testing.assert_allclose(to_numpy(family.entropy(natural)), dist.entropy(), rtol=1e-12)
    # KL(Gamma(a0, b0) || Gamma(a1, b1)), closed form
    a0, a1, b0, b1 = shape[0], shape[1], rate[0], rate[1]
    expected = (
        (a0 - a1) * scipy.special.digamma(a0)
        - scipy.special.gammaln(a0)
        + scipy.special.gammaln(a1)
        + a1 * (np.log(b0) - np.log(b1))
        + a0 * (b1 - b0) / b0
    )
    other = type(natural)(*(namespace(t).flip(t, axis=0) for t in natural))
    np.testing.assert_allclose(to_numpy(family.kl(natural, other))[0], expected, rtol=1e-12)
    mean = family.natural_to_mean(natural)
    np.testing.assert_allclose(
        to_numpy(mean.mean_log), scipy.special.digamma(shape) - np.log(rate), rtol=1e-12
    )
    np.testing.assert_allclose(to_numpy(mean.mean), dist.mean(), rtol=1e-12)


def _exact_shape(mean_log: float, mean: float) -> float:
    """Root of ψ(α) - log α = mean_log - log(mean) in 50-digit arithmetic (the reference)."""
    with mpmath.workdps(50):
        target = mpmath.mpf(mean_log) - mpmath.log(mpmath.mpf(mean))
        gap = -target
        return float(
            mpmath.findroot(
                lambda a: mpmath.digamma(a) - mpmath.log(a) - target,
                (0.5 / gap, 1.0 / gap),
                solver="anderson",
            )
        )


def test_mean_to_natural_accurate_over_shapes(ad_backend):
    _require_implicit_root()
    family = Gamma()
    shapes = np.array([1e-3, 0.02, 0.5, 1.0, 7.0, 123.0, 5e3, 1e6])
    # Unit mean (rate = shape): the gap log(m₂) - m₁ is then exact in floating point, so
    # the solver alone decides the accuracy.
    with mpmath.workdps(50):
        mean_log = np.array([float(mpmath.digamma(a) - mpmath.log(a)) for a in shapes])
    mean = np.ones_like(shapes)
    standard = family.mean_to_standard(
        GammaMean(ad_backend.asarray(mean_log), ad_backend.asarray(mean))
    )
    exact = np.array([_exact_shape(m1, m2) for m1, m2 in zip(mean_log, mean, strict=True)])
    np.testing.assert_allclose(to_numpy(standard.shape), exact, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(standard.rate), exact, rtol=1e-12)


def test_mean_to_natural_general_rates(backend):
    """Arbitrary rates: agreement up to the conditioning of the float64 inputs."""
    if backend.name == "array_api_strict":
        pytest.skip("implicit_root needs an autodiff-capable namespace")
    _require_implicit_root()
    family = Gamma()
    shapes = np.array([1e-3, 0.3, 4.0, 250.0, 1e5])
    rates = np.array([0.2, 3.0, 1.0, 0.01, 7.0])
    mean_log = scipy.special.digamma(shapes) - np.log(rates)
    mean = shapes / rates
    standard = family.mean_to_standard(GammaMean(backend.asarray(mean_log), backend.asarray(mean)))
    exact = np.array([_exact_shape(m1, m2) for m1, m2 in zip(mean_log, mean, strict=True)])
    # relative sensitivity of α to rounding of the gap log(m₂) - m₁
    gap = np.log(mean) - mean_log
    condition = (np.abs(mean_log) + np.abs(np.log(mean))) / gap
    tolerance = 1e-12 + 8 * np.finfo(np.float64).eps * condition
    assert np.all(np.abs(to_numpy(standard.shape) - exact) <= tolerance * exact)
    np.testing.assert_allclose(to_numpy(standard.shape), shapes, rtol=1e-6)


def test_mean_to_natural_derivative_matches_finite_differences(ad_backend):
    _require_implicit_root()
    family = Gamma()
    point = np.array([scipy.special.digamma(2.5) - np.log(1.5), 2.5 / 1.5])

    def reference(m):
        alpha = _exact_shape(m[0], m[1])
        return np.sin(alpha) + (alpha / m[1]) ** 2

    def ours(m):
        natural = family.mean_to_natural(GammaMean(m[0], m[1]))
        shape = natural.shape_minus_one + 1.0
        rate = -natural.neg_rate
        return namespace(shape).sin(shape) + rate**2

    backend = autodiff.get_backend(None, ad_backend.asarray(point))
    _, grad = backend.value_and_grad(ours)(ad_backend.asarray(point))
    np.testing.assert_allclose(
        to_numpy(grad), central_difference(reference, point, step=1e-5), rtol=1e-7
    )


def test_mean_domain_and_float32(backend):
    if backend.name == "array_api_strict":
        pytest.skip("implicit_root needs an autodiff-capable namespace")
    _require_implicit_root()
    family = Gamma()
    mean = GammaMean(
        backend.asarray(np.array([0.1, 0.9], dtype=np.float32)),
        backend.asarray(np.array([2.0, 2.5], dtype=np.float32)),
    )
    standard = family.mean_to_standard(mean)
    assert to_numpy(standard.shape).dtype == np.float32
    exact = [_exact_shape(0.1, 2.0), _exact_shape(float(np.float32(0.9)), 2.5)]
    np.testing.assert_allclose(to_numpy(standard.shape), exact, rtol=1e-4)


def test_gamma_samples_match_moments():
    family = Gamma()
    natural = family.standard_to_natural(GammaStandard(np.array([0.8, 4.0]), np.array([2.0, 0.5])))
    rng = random.default_rng(5, like=natural.neg_rate)
    draws = to_numpy(family.sample(natural, rng, 20000))
    assert draws.shape == (20000, 2)
    np.testing.assert_allclose(draws.mean(0), [0.4, 8.0], rtol=0.03)
    np.testing.assert_allclose(
        np.log(draws).mean(0), to_numpy(family.natural_to_mean(natural)[0]), atol=0.03
    )


def test_root_solver_accuracy_without_autodiff(backend):
    """The untraced solver alone (what implicit_root calls), on every namespace."""
    from surrogate_natgrad.families.gamma import _solve_shape

    shapes = np.array([1e-3, 0.02, 0.5, 1.0, 7.0, 123.0, 5e3, 1e6])
    with mpmath.workdps(50):
        mean_log = np.array([float(mpmath.digamma(a) - mpmath.log(a)) for a in shapes])
    exact = np.array([_exact_shape(m1, 1.0) for m1 in mean_log])
    solved = _solve_shape(backend.asarray(mean_log), backend.asarray(np.ones_like(shapes)))
    np.testing.assert_allclose(to_numpy(solved), exact, rtol=1e-12)


@pytest.mark.parametrize("shape", [(), (1,)])
def test_single_shape_solve_matches_the_mpmath_root(shape):
    """One NumPy shape takes a Python-float path of the same iteration; it must meet the
    high-precision root as the array path does."""
    from surrogate_natgrad.families import gamma

    for alpha in (1e-3, 0.02, 0.5, 1.0, 7.0, 123.0, 5e3, 1e6):
        with mpmath.workdps(50):
            mean_log = float(mpmath.digamma(alpha) - mpmath.log(alpha))
        gamma._LAST_SOLVE = None  # no remembered answer
        solved = gamma._solve_shape(np.full(shape, mean_log), np.ones(shape))
        assert solved.shape == shape and solved.dtype == np.float64
        np.testing.assert_allclose(solved, _exact_shape(mean_log, 1.0), rtol=1e-12)
    for mean_log, mean in ((1.0, -1.0), (2.0, 1.0), (np.nan, 1.0), (0.0, np.inf)):
        gamma._LAST_SOLVE = None
        assert np.isnan(gamma._solve_shape(np.full(shape, mean_log), np.full(shape, mean)))
