"""Closed-form gradients (Gaussian MLE, negative binomial via the gamma map).

References are independent of the code under test: scipy.stats densities, NumPy moments,
fourth-order central differences of scipy-based NumPy functions, scipy.optimize optima, and
(as a cross-check) automatic differentiation of the library's own densities.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

from surrogate_natgrad import autodiff, closed_form, families, maps, rules
from surrogate_natgrad._compat import dtype_tolerance
from surrogate_natgrad.distributions import NegativeBinomial
from surrogate_natgrad.errors import BackendError, DataError
from surrogate_natgrad.families import (
    GammaMean,
    GammaNatural,
    GammaStandard,
    GaussianMean,
    GaussianNatural,
    GaussianStandard,
)
from tests.conftest import Backend
from tests.helpers import central_difference, to_numpy

DIM = 3
# A fixed, well-conditioned Gaussian problem (seeded).
_RNG = np.random.default_rng(20240611)
_FACTOR = np.array([[1.0, 0.0, 0.0], [0.5, 1.2, 0.0], [0.2, -0.3, 0.7]])
DATA = _RNG.normal(size=(60, DIM)) @ _FACTOR.T + np.array([1.0, -2.0, 0.5])
# A point (μ, Σ) away from the optimum, where every gradient is far from zero.
POINT_MEAN = np.array([0.3, -1.0, 1.1])
POINT_COV = np.array([[1.5, 0.3, -0.2], [0.3, 2.0, 0.4], [-0.2, 0.4, 0.8]])

COUNTS = np.random.default_rng(7).negative_binomial(3.0, 0.2, size=80)


# The autodiff cross-checks run on autograd and torch only: eager JAX compiles every
# operation (tens of seconds here), and the finite-difference tests already cover JAX.
AUTODIFF_CHECKS = ["numpy", "torch"]


@pytest.fixture(params=AUTODIFF_CHECKS)
def ad_backend(request) -> Backend:
    """Autograd (NumPy) and torch."""
    return Backend(request.param)


def _value_and_grad(ad_backend, fun):
    """Autodiff ``value_and_grad`` of ``fun`` on the backend's own library."""
    return autodiff.get_backend(None, ad_backend.asarray(0.0)).value_and_grad(fun)


def _nll_reference(mean: np.ndarray, cov: np.ndarray) -> float:
    return -float(np.mean(scipy.stats.multivariate_normal(mean, cov).logpdf(DATA)))


def _gaussian_nll_of_natural(flat: np.ndarray) -> float:
    h, j = flat[:DIM], flat[DIM:].reshape(DIM, DIM)
    precision = -(j + j.T)
    cov = np.linalg.inv(precision)
    return _nll_reference(cov @ h, cov)


def _gaussian_nll_of_mean(flat: np.ndarray) -> float:
    mu, second = flat[:DIM], flat[DIM:].reshape(DIM, DIM)
    return _nll_reference(mu, (second + second.T) / 2 - np.outer(mu, mu))


def _nb_nll_reference(n: float, p: float, counts: np.ndarray = COUNTS) -> float:
    return -float(np.mean(scipy.stats.nbinom.logpmf(counts, n, p)))


def _natural_point() -> tuple[np.ndarray, np.ndarray]:
    precision = np.linalg.inv(POINT_COV)
    return precision @ POINT_MEAN, -0.5 * precision


# ---------------------------------------------------------------------------- Gaussian


def test_gaussian_statistics_match_numpy(backend):
    stats = closed_form.gaussian_statistics(backend.asarray(DATA))
    np.testing.assert_allclose(to_numpy(stats.mean), DATA.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(to_numpy(stats.cov), np.cov(DATA.T, bias=True), rtol=1e-12)


def test_gaussian_values_match_scipy(backend):
    stats = closed_form.gaussian_statistics(backend.asarray(DATA))
    expected = _nll_reference(POINT_MEAN, POINT_COV)
    standard = GaussianStandard(backend.asarray(POINT_MEAN), backend.asarray(POINT_COV))
    np.testing.assert_allclose(to_numpy(closed_form.gaussian_nll(standard, stats)), expected)
    h, j = _natural_point()
    loss, _ = closed_form.gaussian_natural_value_and_grad(
        GaussianNatural(backend.asarray(h), backend.asarray(j)), stats
    )
    np.testing.assert_allclose(to_numpy(loss), expected, rtol=1e-12)
    second = POINT_COV + np.outer(POINT_MEAN, POINT_MEAN)
    loss, _ = closed_form.gaussian_mean_value_and_grad(
        GaussianMean(backend.asarray(POINT_MEAN), backend.asarray(second)), stats
    )
    np.testing.assert_allclose(to_numpy(loss), expected, rtol=1e-12)


def test_gaussian_natural_gradient_matches_finite_differences(backend):
    h, j = _natural_point()
    stats = closed_form.gaussian_statistics(backend.asarray(DATA))
    _, grad = closed_form.gaussian_natural_value_and_grad(
        GaussianNatural(backend.asarray(h), backend.asarray(j)), stats
    )
    reference = central_difference(_gaussian_nll_of_natural, np.concatenate([h, j.ravel()]))
    np.testing.assert_allclose(to_numpy(grad.precision_mean), reference[:DIM], atol=1e-8)
    np.testing.assert_allclose(
        to_numpy(grad.neg_half_precision), reference[DIM:].reshape(DIM, DIM), atol=1e-8
    )


def test_gaussian_mean_gradient_matches_finite_differences(backend):
    second = POINT_COV + np.outer(POINT_MEAN, POINT_MEAN)
    stats = closed_form.gaussian_statistics(backend.asarray(DATA))
    _, grad = closed_form.gaussian_mean_value_and_grad(
        GaussianMean(backend.asarray(POINT_MEAN), backend.asarray(second)), stats
    )
    reference = central_difference(
        _gaussian_nll_of_mean, np.concatenate([POINT_MEAN, second.ravel()])
    )
    np.testing.assert_allclose(to_numpy(grad.mean), reference[:DIM], atol=1e-8)
    np.testing.assert_allclose(
        to_numpy(grad.second_moment), reference[DIM:].reshape(DIM, DIM), atol=1e-8
    )


def test_gaussian_gradients_match_autodiff(ad_backend):
    """Cross-check against autodiff of the family's own log-density, in both coordinates."""
    xp = ad_backend.xp
    family = families.Gaussian(DIM)
    data = ad_backend.asarray(DATA)
    stats = closed_form.gaussian_statistics(data)

    def nll_natural(natural):
        return -xp.mean(family.log_prob(natural, data))

    def nll_mean(mean):
        return nll_natural(family.mean_to_natural(mean))

    h, j = _natural_point()
    natural = GaussianNatural(ad_backend.asarray(h), ad_backend.asarray(j))
    mean = family.natural_to_mean(natural)
    for fun, closed, point in (
        (nll_natural, closed_form.gaussian_natural_value_and_grad, natural),
        (nll_mean, closed_form.gaussian_mean_value_and_grad, mean),
    ):
        value, grad = _value_and_grad(ad_backend, fun)(point)
        closed_value, closed_grad = closed(point, stats)
        np.testing.assert_allclose(to_numpy(closed_value), to_numpy(value), rtol=1e-12)
        for got, want in zip(closed_grad, family.symmetrize(grad), strict=True):
            np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-8, atol=1e-10)


def test_gaussian_float32_stays_float32():
    import array_api_compat.numpy as xp

    data = xp.asarray(DATA, dtype=xp.float32)
    problem = closed_form.gaussian_mle(data)
    h, j = _natural_point()
    natural = GaussianNatural(xp.asarray(h, dtype=xp.float32), xp.asarray(j, dtype=xp.float32))
    loss, grad = problem.backend.value_and_grad(problem.objective)(natural)
    assert loss.dtype == xp.float32 and grad.precision_mean.dtype == xp.float32
    tolerance = dtype_tolerance(xp, xp.float32, power=0.5, factor=10.0)
    np.testing.assert_allclose(float(loss), _nll_reference(POINT_MEAN, POINT_COV), rtol=tolerance)


@pytest.mark.parametrize("form", ["mle", "vi"])
def test_sngd_gaussian_mle_without_autodiff_reaches_sample_moments(form):
    """End to end on array-api-strict (no autodiff anywhere): SNGD finds the MLE."""
    strict = pytest.importorskip("array_api_strict")
    device = strict.Device("device1")
    data = strict.asarray(DATA, device=device)
    problem = closed_form.gaussian_mle(data, form=form)
    rule = rules.SNGD(
        maps.identity_map(families.Gaussian(DIM)),
        form=form,
        step_size=0.5,
        line_search="backtracking",
        backend=problem.backend,  # type: ignore[arg-type]
    )
    start = GaussianStandard(
        strict.zeros(DIM, dtype=strict.float64, device=device),
        strict.eye(DIM, dtype=strict.float64, device=device),
    )
    state = rule.init(start)
    for _ in range(40):
        state, info = rule.step(state, problem.objective)
    fitted = rule.standard_params(state)
    assert fitted.mean.device == device and fitted.cov.device == device
    np.testing.assert_allclose(to_numpy(fitted.mean), DATA.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(to_numpy(fitted.cov), np.cov(DATA.T, bias=True), atol=1e-9)
    optimum = _nll_reference(DATA.mean(axis=0), np.cov(DATA.T, bias=True))
    np.testing.assert_allclose(float(problem.objective(fitted)), optimum, rtol=1e-12)
    np.testing.assert_allclose(float(info.loss), optimum, rtol=1e-10)


def test_sngd_gaussian_unit_step_is_moment_matching():
    strict = pytest.importorskip("array_api_strict")
    data = strict.asarray(DATA)
    problem = closed_form.gaussian_mle(data)
    rule = rules.SNGD(
        maps.identity_map(families.Gaussian(DIM)),
        backend=problem.backend,  # type: ignore[arg-type]
    )
    state = rule.init(GaussianStandard(strict.asarray(POINT_MEAN), strict.asarray(POINT_COV)))
    state, info = rule.step(state, problem.objective)
    fitted = rule.standard_params(state)
    np.testing.assert_allclose(to_numpy(fitted.mean), DATA.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(to_numpy(fitted.cov), np.cov(DATA.T, bias=True), atol=1e-12)
    np.testing.assert_allclose(float(info.loss), _nll_reference(POINT_MEAN, POINT_COV))


def test_gaussian_bad_input_is_named():
    with pytest.raises(DataError, match="two-dimensional"):
        closed_form.gaussian_mle(np.ones(3))
    with pytest.raises(DataError, match="empty"):
        closed_form.gaussian_mle(np.ones((0, 2)))
    bad = DATA.copy()
    bad[4, 2] = np.nan
    with pytest.raises(DataError, match="row 4, column 2"):
        closed_form.gaussian_mle(bad)
    with pytest.raises(DataError, match="form"):
        closed_form.gaussian_mle(DATA, form="unconstrained")
    with pytest.raises(BackendError, match="data must be an array"):
        closed_form.gaussian_mle(DATA.tolist())
    problem = closed_form.gaussian_mle(DATA, form="vi")
    natural = GaussianNatural(*_natural_point())
    with pytest.raises(BackendError, match="form='vi'"):
        problem.backend.value_and_grad(problem.objective)(natural)


# ------------------------------------------------------------------- negative binomial

N_POINT, P_POINT = 2.5, 0.3  # NB parameters away from the optimum


def _gamma_of_nb(n: float, p: float) -> tuple[float, float]:
    return n * (1 - p), p  # (α, β) of the surrogate map


def test_negative_binomial_value_matches_scipy(backend):
    data = closed_form.negative_binomial_data(backend.asarray(COUNTS))
    n, p = backend.asarray(N_POINT), backend.asarray(P_POINT)
    np.testing.assert_allclose(
        to_numpy(closed_form.negative_binomial_nll(n, p, data)),
        _nb_nll_reference(N_POINT, P_POINT),
        rtol=1e-12,
    )
    # frequencies: the distinct values with their counts give the same mean NLL
    values, frequencies = np.unique(COUNTS, return_counts=True)
    compressed = closed_form.negative_binomial_data(
        backend.asarray(values), backend.asarray(frequencies)
    )
    np.testing.assert_allclose(
        to_numpy(closed_form.negative_binomial_nll(n, p, compressed)),
        _nb_nll_reference(N_POINT, P_POINT),
        rtol=1e-12,
    )


def test_negative_binomial_natural_gradient_matches_finite_differences(backend):
    shape, rate = _gamma_of_nb(N_POINT, P_POINT)
    data = closed_form.negative_binomial_data(backend.asarray(COUNTS))
    natural = GammaNatural(backend.asarray(shape - 1.0), backend.asarray(-rate))
    loss, grad = closed_form.negative_binomial_natural_value_and_grad(natural, data)

    def reference(eta):
        alpha, beta = eta[0] + 1.0, -eta[1]
        return _nb_nll_reference(alpha / (1 - beta), beta)

    expected = central_difference(reference, np.array([shape - 1.0, -rate]))
    np.testing.assert_allclose(to_numpy(loss), _nb_nll_reference(N_POINT, P_POINT), rtol=1e-12)
    np.testing.assert_allclose([float(to_numpy(g)) for g in grad], expected, rtol=1e-7, atol=1e-9)


def test_negative_binomial_mean_gradient_matches_finite_differences(backend):
    shape, rate = _gamma_of_nb(N_POINT, P_POINT)
    mean_point = np.array([scipy.special.digamma(shape) - np.log(rate), shape / rate])
    data = closed_form.negative_binomial_data(backend.asarray(COUNTS))
    mean = GammaMean(backend.asarray(mean_point[0]), backend.asarray(mean_point[1]))
    loss, grad = closed_form.negative_binomial_mean_value_and_grad(mean, data)

    def reference(m):
        # scipy root solve of ψ(α) - log α = m₁ - log m₂ (independent of the library's)
        target = m[0] - np.log(m[1])
        alpha = scipy.optimize.brentq(
            lambda a: scipy.special.digamma(a) - np.log(a) - target,
            1e-6,
            1e6,
            xtol=1e-15,
            rtol=1e-15,
        )
        beta = alpha / m[1]
        return _nb_nll_reference(alpha / (1 - beta), beta)

    expected = central_difference(reference, mean_point, step=1e-4)
    np.testing.assert_allclose(to_numpy(loss), _nb_nll_reference(N_POINT, P_POINT), rtol=1e-10)
    np.testing.assert_allclose([float(to_numpy(g)) for g in grad], expected, rtol=1e-6)


def test_negative_binomial_unconstrained_gradient_matches_finite_differences(backend):
    coords = np.array([np.log(N_POINT), np.log(P_POINT / (1 - P_POINT))])
    data = closed_form.negative_binomial_data(backend.asarray(COUNTS))
    loss, grad = closed_form.negative_binomial_unconstrained_value_and_grad(
        {"log_n": backend.asarray(coords[0]), "logit_p": backend.asarray(coords[1])}, data
    )
    expected = central_difference(
        lambda z: _nb_nll_reference(np.exp(z[0]), scipy.special.expit(z[1])), coords
    )
    np.testing.assert_allclose(to_numpy(loss), _nb_nll_reference(N_POINT, P_POINT), rtol=1e-12)
    np.testing.assert_allclose(
        [float(to_numpy(grad["log_n"])), float(to_numpy(grad["logit_p"]))], expected, rtol=1e-7
    )


def test_negative_binomial_gradients_match_autodiff(ad_backend):
    """Cross-check against autodiff through the surrogate map and the library's NB NLL."""
    counts = ad_backend.asarray(COUNTS)
    data = closed_form.negative_binomial_data(counts)
    surrogate_map = NegativeBinomial.surrogate_map()
    family = surrogate_map.family
    shape, rate = _gamma_of_nb(N_POINT, P_POINT)
    standard = GammaStandard(ad_backend.asarray(shape), ad_backend.asarray(rate))

    def loss_of_standard(std):
        return NegativeBinomial.mean_nll(surrogate_map.to_target(std, ()), counts)

    natural = family.standard_to_natural(standard)
    mean = family.standard_to_mean(standard)
    cases = (
        (
            lambda eta: loss_of_standard(family.natural_to_standard(eta)),
            closed_form.negative_binomial_natural_value_and_grad,
            natural,
        ),
        (
            lambda m: loss_of_standard(family.mean_to_standard(m)),
            closed_form.negative_binomial_mean_value_and_grad,
            mean,
        ),
    )
    for fun, closed, point in cases:
        value, grad = _value_and_grad(ad_backend, fun)(point)
        closed_value, closed_grad = closed(point, data)
        np.testing.assert_allclose(to_numpy(closed_value), to_numpy(value), rtol=1e-12)
        for got, want in zip(closed_grad, grad, strict=True):
            np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-8)


def _nb_optimum(counts: np.ndarray) -> tuple[float, float, float]:
    """Maximum-likelihood NB by scipy.optimize (the independent reference)."""
    values, frequencies = np.unique(counts, return_counts=True)

    def nll(z):
        n, p = np.exp(z[0]), scipy.special.expit(z[1])
        return -np.sum(frequencies * scipy.stats.nbinom.logpmf(values, n, p)) / counts.size

    result = scipy.optimize.minimize(
        nll, [np.log(3.0), 0.0], method="BFGS", options={"gtol": 1e-11}
    )
    return float(result.fun), float(np.exp(result.x[0])), float(scipy.special.expit(result.x[1]))


@pytest.mark.parametrize("form", ["mle", "vi"])
def test_sngd_negative_binomial_without_autodiff_reaches_the_mle(form):
    strict = pytest.importorskip("array_api_strict")
    device = strict.Device("device1")
    values, frequencies = np.unique(COUNTS, return_counts=True)
    problem = closed_form.negative_binomial_mle(
        strict.asarray(values, device=device), strict.asarray(frequencies, device=device), form=form
    )
    rule = rules.SNGD(
        NegativeBinomial.surrogate_map(),
        form=form,
        backend=problem.backend,  # type: ignore[arg-type]
    )
    mean, var = COUNTS.mean(), COUNTS.var()
    start = {"n": mean**2 / (var - mean), "p": mean / var}  # method of moments
    state = rule.init_from_target({k: strict.asarray(v, device=device) for k, v in start.items()})
    for _ in range(8):
        state, _ = rule.step(state, problem.objective)
    target = rule.target_params(state)
    assert target["n"].device == device
    loss, n_hat, p_hat = _nb_optimum(COUNTS)
    np.testing.assert_allclose(float(problem.objective(target)), loss, rtol=1e-12)
    np.testing.assert_allclose([float(target["n"]), float(target["p"])], [n_hat, p_hat], rtol=1e-5)


def test_gradient_descent_and_adam_with_the_unconstrained_form():
    strict = pytest.importorskip("array_api_strict")
    problem = closed_form.negative_binomial_mle(strict.asarray(COUNTS), form="unconstrained")
    start = {"log_n": strict.asarray(np.log(2.0)), "logit_p": strict.asarray(0.0)}
    loss, _, _ = _nb_optimum(COUNTS)
    gd = rules.GradientDescent(
        step_size=1.0,
        line_search="backtracking",
        backend=problem.backend,  # type: ignore[arg-type]
    )
    state = gd.init(start)
    for _ in range(60):
        state, _ = gd.step(state, problem.objective)
    # gradient descent converges linearly; 60 steps bring it within ~1e-7 of the optimum
    np.testing.assert_allclose(float(problem.objective(state.params)), loss, rtol=1e-6)
    adam = rules.Adam(step_size=0.05, backend=problem.backend)  # type: ignore[arg-type]
    adam_state = adam.init(start)
    first = None
    for _ in range(30):
        adam_state, info = adam.step(adam_state, problem.objective)
        first = float(info.loss) if first is None else first
    assert float(problem.objective(adam_state.params)) < first


def test_negative_binomial_bad_input_is_named():
    with pytest.raises(DataError, match="index 2"):
        closed_form.negative_binomial_mle(np.array([1, 3, -2]))
    with pytest.raises(DataError, match="frequencies"):
        closed_form.negative_binomial_mle(np.array([1, 3]), np.array([1.0, -1.0]))
    with pytest.raises(DataError, match="shape"):
        closed_form.negative_binomial_mle(np.array([1, 3]), np.array([1.0]))
    with pytest.raises(DataError, match="form"):
        closed_form.negative_binomial_mle(np.array([1, 3]), form="natural")
    problem = closed_form.negative_binomial_mle(np.array([1, 3]), form="unconstrained")
    with pytest.raises(BackendError, match="log_n"):
        problem.backend.value_and_grad(problem.objective)(GammaNatural(np.ones(()), -np.ones(())))


def test_negative_binomial_float32():
    import array_api_compat.numpy as xp

    problem = closed_form.negative_binomial_mle(xp.asarray(COUNTS), dtype=xp.float32)
    shape, rate = _gamma_of_nb(N_POINT, P_POINT)
    natural = GammaNatural(
        xp.asarray(shape - 1.0, dtype=xp.float32), xp.asarray(-rate, dtype=xp.float32)
    )
    loss, grad = problem.backend.value_and_grad(problem.objective)(natural)
    assert loss.dtype == xp.float32 and grad.neg_rate.dtype == xp.float32
    tolerance = dtype_tolerance(xp, xp.float32, power=0.5, factor=10.0)
    np.testing.assert_allclose(float(loss), _nb_nll_reference(N_POINT, P_POINT), rtol=tolerance)
