"""VI maths: quadrature, entropies, sampling, densities and unbiased ELBO gradients."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats

from surrogate_natgrad import autodiff, random, vi
from surrogate_natgrad._compat import namespace
from surrogate_natgrad.families import GaussianStandard, SkewNormalMCEFStandard
from surrogate_natgrad.models import BayesianLinearRegression
from tests.helpers import central_difference, to_numpy

C = math.sqrt(2.0 / math.pi)


@pytest.mark.parametrize("order", [1, 2, 7, 50, 100])
def test_quadrature_nodes_match_numpy(order):
    nodes, weights = vi.gauss_hermite(order)
    ref_nodes, ref_weights = np.polynomial.hermite.hermgauss(order)
    np.testing.assert_allclose(nodes, ref_nodes, atol=1e-13)
    np.testing.assert_allclose(weights, ref_weights, rtol=1e-12, atol=1e-300)
    nodes, weights = vi.gauss_legendre(order)
    ref_nodes, ref_weights = np.polynomial.legendre.leggauss(order)
    np.testing.assert_allclose(nodes, ref_nodes, atol=1e-14)
    np.testing.assert_allclose(weights, ref_weights, atol=1e-13)


def _random_spd(rng, d, scale=1.0):
    root = rng.normal(size=(d, d))
    return scale * (root @ root.T / d + 0.5 * np.eye(d))


def _azzalini_beta(scale, shape):
    """β = ω ⊙ δ with δ = Rα/√(1 + αᵀRα), α = ω ⊙ η_s (Azzalini's correlation form)."""
    omega = np.sqrt(np.diag(scale))
    corr = scale / np.outer(omega, omega)
    alpha = omega * shape
    delta = corr @ alpha / np.sqrt(1.0 + alpha @ corr @ alpha)
    return omega * delta


def _skew_log_pdf(x, loc, scale, shape):
    return (
        np.log(2.0)
        + scipy.stats.multivariate_normal(loc, scale).logpdf(x)
        + scipy.stats.norm.logcdf((x - loc) @ shape)
    )


def test_gaussian_entropy_and_log_prob_match_scipy(backend):
    rng = np.random.default_rng(0)
    cov = _random_spd(rng, 4)
    mean = rng.normal(size=4)
    family = vi.GaussianVariational(4)
    params = GaussianStandard(backend.asarray(mean), backend.asarray(cov))
    reference = scipy.stats.multivariate_normal(mean, cov)
    np.testing.assert_allclose(float(to_numpy(family.entropy(params))), reference.entropy())
    np.testing.assert_allclose(
        float(to_numpy(vi.gaussian_entropy(params.cov))), reference.entropy()
    )
    x = rng.normal(size=(6, 4))
    out = family.log_prob(params, backend.asarray(x))
    np.testing.assert_allclose(to_numpy(out), reference.logpdf(x), rtol=1e-12)


@pytest.mark.parametrize("a", [0.0, 0.3, 0.999, 1.0, 2.5, 8.0, 40.0])
def test_skew_normal_entropy_one_dimensional_matches_scipy(a):
    family = vi.SkewNormalVariational(1)
    scale = 1.7
    params = vi.SkewNormalParams(
        np.array([0.2]), np.array([[scale]]), np.array([a / np.sqrt(scale)])
    )
    expected = scipy.stats.skewnorm(a, 0.2, np.sqrt(scale)).entropy()
    np.testing.assert_allclose(float(family.entropy(params)), expected, rtol=1e-10, atol=1e-10)


def test_skew_normal_entropy_log_prob_and_moments_multivariate():
    rng = np.random.default_rng(1)
    d = 3
    loc, scale, shape = rng.normal(size=d), _random_spd(rng, d), 1.5 * rng.normal(size=d)
    family = vi.SkewNormalVariational(d)
    params = vi.SkewNormalParams(loc, scale, shape)
    x = rng.normal(size=(5, d))
    np.testing.assert_allclose(
        family.log_prob(params, x), _skew_log_pdf(x, loc, scale, shape), rtol=1e-12
    )
    # moments from Azzalini's formulas
    beta = _azzalini_beta(scale, shape)
    mean, cov = family.moments(params)
    np.testing.assert_allclose(mean, loc + C * beta, rtol=1e-12)
    np.testing.assert_allclose(cov, scale - C**2 * np.outer(beta, beta), rtol=1e-12, atol=1e-14)
    # entropy: -E log p by Monte Carlo with an independent sampler (sign flip of a
    # conditioned Gaussian: x = ξ + sign(u₀)u, (u₀, u) jointly normal with Cov(u, u₀) = β)
    sampler = np.random.default_rng(2)
    n = 100_000
    joint = np.block([[np.ones((1, 1)), beta[None, :]], [beta[:, None], scale]])
    draws = sampler.multivariate_normal(np.zeros(d + 1), joint, size=n)
    samples = loc + np.sign(draws[:, :1]) * draws[:, 1:]
    neg_log = -_skew_log_pdf(samples, loc, scale, shape)
    error = neg_log.std() / np.sqrt(n)
    assert abs(float(family.entropy(params)) - neg_log.mean()) < 5 * error
    # the reparameterised sampler has the same mean and covariance
    noise = family.draw_noise(random.default_rng(3), n)
    ours = family.sample_from_noise(params, noise)
    standard_error = np.sqrt(np.diag(cov) / n)
    np.testing.assert_array_less(np.abs(ours.mean(axis=0) - mean), 5 * standard_error)
    np.testing.assert_allclose(np.cov(ours.T), cov, atol=0.05)


def test_conditional_form_round_trip_and_agreement():
    rng = np.random.default_rng(4)
    params = vi.SkewNormalParams(rng.normal(size=3), _random_spd(rng, 3), rng.normal(size=3))
    conditional = vi.skew_normal_to_conditional(params)
    np.testing.assert_allclose(conditional.skew, _azzalini_beta(params.scale, params.shape))
    back = vi.skew_normal_from_conditional(conditional)
    for got, want in zip(back, params, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    family = vi.SkewNormalVariational(3)
    assert isinstance(conditional, SkewNormalMCEFStandard)
    np.testing.assert_allclose(family.entropy(conditional), family.entropy(params), rtol=1e-12)
    noise = family.draw_noise(random.default_rng(0), 4)
    np.testing.assert_allclose(
        family.sample_from_noise(conditional, noise),
        family.sample_from_noise(params, noise),
        rtol=1e-10,
    )


_ENTROPY_CASE = np.random.default_rng(5)
_ENTROPY_LOC = _ENTROPY_CASE.normal(size=3)
_ENTROPY_SCALE = _random_spd(_ENTROPY_CASE, 3)
_ENTROPY_SHAPES = (0.4 * _ENTROPY_CASE.normal(size=3), 3.0 * _ENTROPY_CASE.normal(size=3))


def _reference_entropy(shape):
    """Skew-normal entropy with the 1-D term by adaptive quadrature (scipy)."""
    a = np.sqrt(shape @ _ENTROPY_SCALE @ shape)

    def integrand(u):
        return (
            2
            * scipy.special.ndtr(a * u)
            * (np.log(2) + scipy.special.log_ndtr(a * u))
            * scipy.stats.norm.pdf(u)
        )

    term = scipy.integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-13)[0]
    logdet = np.linalg.slogdet(_ENTROPY_SCALE)[1]
    return 0.5 * 3 * (1 + np.log(2 * np.pi)) + 0.5 * logdet - term


@functools.lru_cache(maxsize=4)
def _entropy_reference(index):
    shape = _ENTROPY_SHAPES[index]
    return _reference_entropy(shape), central_difference(_reference_entropy, shape, 1e-4)


@pytest.mark.parametrize("index", [0, 1])
def test_entropy_gradients_match_finite_differences(ad_backend, index):
    family = vi.SkewNormalVariational(3)
    value_ref, grad_ref = _entropy_reference(index)
    values = (_ENTROPY_LOC, _ENTROPY_SCALE, _ENTROPY_SHAPES[index])
    params = vi.SkewNormalParams(*(ad_backend.asarray(v) for v in values))
    backend = autodiff.get_backend(None, params[0])
    value, grads = backend.value_and_grad(family.entropy)(params)
    np.testing.assert_allclose(float(to_numpy(value)), value_ref, rtol=1e-9)
    np.testing.assert_allclose(to_numpy(grads.shape), grad_ref, rtol=1e-5, atol=1e-7)


def test_entropy_gradient_is_finite_at_zero_skewness(ad_backend):
    family = vi.SkewNormalVariational(3)
    values = (_ENTROPY_LOC, _ENTROPY_SCALE, np.zeros(3))
    params = vi.SkewNormalParams(*(ad_backend.asarray(v) for v in values))
    backend = autodiff.get_backend(None, params[0])
    _, grads = backend.value_and_grad(family.entropy)(params)
    # the entropy is even in the shape vector: zero derivative there, and no NaN anywhere
    np.testing.assert_allclose(to_numpy(grads.shape), 0.0, atol=1e-12)
    np.testing.assert_allclose(to_numpy(grads.scale), 0.5 * np.linalg.inv(_ENTROPY_SCALE))


# ----------------------------------------------------------------- unbiased gradients


def _linear_model(seed=6, n=15, d=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.3 * rng.normal(size=n)
    return BayesianLinearRegression(X, y, prior_precision=1.3, noise_variance=0.5), X, y


def _exact_expected_log_joint(X, y, mean, cov, tau=1.3, sigma2=0.5):
    """E_q log p(y, z) from the first two moments (independent NumPy closed form)."""
    n, d = X.shape
    residual = y - X @ mean
    lik = -0.5 * (residual @ residual + np.trace(X.T @ X @ cov)) / sigma2
    lik -= 0.5 * n * np.log(2 * np.pi * sigma2)
    prior = -0.5 * tau * (mean @ mean + np.trace(cov)) + 0.5 * d * np.log(tau / (2 * np.pi))
    return lik + prior


def _gradient_batches(family, params, model, n_batches, batch):
    backend = autodiff.get_backend(None, params[0])
    terms = vi.ELBOTerms.from_model(model, closed_form=False)
    rng = random.default_rng(11)
    grads = []
    for _ in range(n_batches):
        noise = family.draw_noise(rng, batch)
        _, grad = backend.value_and_grad(lambda p: vi.estimate_elbo(family, p, terms, noise))(
            params
        )
        grads.append(np.concatenate([np.ravel(g) for g in grad]))
    grads = np.array(grads)
    return grads.mean(axis=0), grads.std(axis=0, ddof=1) / np.sqrt(n_batches)


def test_gaussian_elbo_gradient_is_unbiased():
    model, X, y = _linear_model()
    rng = np.random.default_rng(7)
    mean, cov = rng.normal(size=2), _random_spd(rng, 2, 0.3)
    family = vi.GaussianVariational(2)

    def exact(flat):
        m, c = flat[:2], flat[2:].reshape(2, 2)
        c = 0.5 * (c + c.T)
        return (
            _exact_expected_log_joint(X, y, m, c) + scipy.stats.multivariate_normal(m, c).entropy()
        )

    flat = np.concatenate([mean, cov.ravel()])
    expected = central_difference(exact, flat, 1e-5)
    got, error = _gradient_batches(family, GaussianStandard(mean, cov), model, 40, 250)
    assert np.all(np.abs(got - expected) <= 5 * error + 1e-8), (got, expected, error)
    # the closed-form path is exact
    backend = autodiff.get_backend(None, mean)
    _, exact_grad = backend.value_and_grad(lambda p: vi.estimate_elbo(family, p, model))(
        GaussianStandard(mean, cov)
    )
    np.testing.assert_allclose(
        np.concatenate([np.ravel(g) for g in exact_grad]), expected, rtol=1e-7, atol=1e-8
    )


def test_skew_normal_elbo_gradient_is_unbiased():
    model, X, y = _linear_model()
    rng = np.random.default_rng(8)
    loc, scale, shape = rng.normal(size=2), _random_spd(rng, 2, 0.3), 2.0 * rng.normal(size=2)
    family = vi.SkewNormalVariational(2)

    def exact(flat):
        xi, omega, eta = flat[:2], flat[2:6].reshape(2, 2), flat[6:]
        omega = 0.5 * (omega + omega.T)
        beta = _azzalini_beta(omega, eta)
        mean, cov = xi + C * beta, omega - C**2 * np.outer(beta, beta)
        a = np.sqrt(eta @ omega @ eta)
        term = scipy.integrate.quad(
            lambda u: (
                2
                * scipy.special.ndtr(a * u)
                * (np.log(2) + scipy.special.log_ndtr(a * u))
                * scipy.stats.norm.pdf(u)
            ),
            -np.inf,
            np.inf,
            epsabs=1e-13,
            epsrel=1e-13,
        )[0]
        entropy = 0.5 * 2 * (1 + np.log(2 * np.pi)) + 0.5 * np.linalg.slogdet(omega)[1] - term
        return _exact_expected_log_joint(X, y, mean, cov) + entropy

    flat = np.concatenate([loc, scale.ravel(), shape])
    expected = central_difference(exact, flat, 1e-5)
    got, error = _gradient_batches(family, vi.SkewNormalParams(loc, scale, shape), model, 40, 250)
    assert np.all(np.abs(got - expected) <= 5 * error + 1e-7), (got, expected, error)


def test_elbo_estimate_in_each_namespace(ad_backend):
    _model_np, X, y = _linear_model()
    model = BayesianLinearRegression(
        ad_backend.asarray(X), ad_backend.asarray(y), prior_precision=1.3, noise_variance=0.5
    )
    family = vi.SkewNormalVariational(2)
    params = vi.SkewNormalParams(
        ad_backend.asarray(np.zeros(2)),
        ad_backend.asarray(np.eye(2)),
        ad_backend.asarray(np.ones(2)),
    )
    noise = family.draw_noise(random.default_rng(0, like=params[0]), 5)
    value = vi.estimate_elbo(family, params, vi.ELBOTerms.from_model(model, False), noise)
    assert namespace(value) is namespace(params[0])
    assert np.isfinite(float(to_numpy(value)))
    with pytest.raises(ValueError, match="noise"):
        vi.estimate_elbo(family, params, model.log_joint)
