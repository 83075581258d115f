"""Fisher utilities against closed forms: Monte Carlo Fisher, pull-back, damped solve."""

from __future__ import annotations

import numpy as np
import pytest

from surrogate_natgrad._compat import namespace
from surrogate_natgrad.errors import DataError, DomainError
from surrogate_natgrad.fisher import monte_carlo_fisher, natural_gradient_solve, pullback_fisher
from tests.helpers import central_difference, to_numpy

MEAN, LOG_SCALE = 0.7, np.log(1.5)


def _log_prob(params, x):
    mean, log_scale = params
    xp = namespace(mean, log_scale, x)
    z = (x - mean) / xp.exp(log_scale)
    return -0.5 * z * z - log_scale - 0.5 * np.log(2 * np.pi)


@pytest.mark.parametrize("batched", [False, True])
def test_monte_carlo_fisher_gaussian_log_scale(ad_backend, batched):
    n = 4000 if not batched else 40000
    rng = np.random.default_rng(1)
    samples_np = rng.normal(MEAN, np.exp(LOG_SCALE), size=n)
    params = (ad_backend.asarray(np.array(MEAN)), ad_backend.asarray(np.array(LOG_SCALE)))
    fisher = monte_carlo_fisher(
        _log_prob, params, ad_backend.asarray(samples_np), batched_params=batched
    )
    assert type(fisher) is type(params[0])
    exact = np.diag([1 / np.exp(2 * LOG_SCALE), 2.0])
    # Monte Carlo standard errors: var(s s^T) entries are O(1)·F; use 5 standard errors.
    z = (samples_np - MEAN) / np.exp(LOG_SCALE)
    scores = np.stack([z / np.exp(LOG_SCALE), z * z - 1], axis=1)
    stderr = (scores[:, :, None] * scores[:, None, :]).std(axis=0) / np.sqrt(n)
    got = to_numpy(fisher)
    assert np.all(np.abs(got - exact) <= 5 * stderr + 1e-12)
    np.testing.assert_allclose(got, got.T)


def test_monte_carlo_fisher_paths_agree(ad_backend):
    samples = ad_backend.asarray(np.random.default_rng(2).normal(size=300))
    params = (ad_backend.asarray(np.array(MEAN)), ad_backend.asarray(np.array(LOG_SCALE)))
    dense = monte_carlo_fisher(_log_prob, params, samples)
    batched = monte_carlo_fisher(_log_prob, params, samples, batched_params=True)
    np.testing.assert_allclose(to_numpy(dense), to_numpy(batched), rtol=1e-12)


def test_monte_carlo_fisher_multivariate_mean(ad_backend):
    # Fisher of the mean of N(μ, Σ) is Σ⁻¹
    cov = np.array([[2.0, 0.6], [0.6, 1.0]])
    rng = np.random.default_rng(3)
    samples_np = rng.multivariate_normal([0.0, 1.0], cov, size=20000)
    # log_prob is differentiated: under a DLPack bridge it closes over torch views
    precision = ad_backend.inner(ad_backend.asarray(np.linalg.inv(cov)))

    def log_prob(params, x):
        xp = namespace(params["mean"], x)
        d = x - params["mean"]
        return -0.5 * xp.sum(d * xp.matmul(d, precision), axis=-1)

    fisher = monte_carlo_fisher(
        log_prob,
        {"mean": ad_backend.asarray(np.array([0.0, 1.0]))},
        ad_backend.asarray(samples_np),
        batched_params=True,
    )
    np.testing.assert_allclose(to_numpy(fisher), np.linalg.inv(cov), atol=0.06)


def test_pullback_is_target_fisher_under_reparameterisation(xp):
    # Natural parameters η = (μ/σ², −1/(2σ²)) of N(μ, σ²); Fisher = Hessian of
    # A(η) = −η₁²/(4η₂) − ½ log(−2η₂) in closed form. Pulled back through
    # (μ, log σ) ↦ η it must be diag(1/σ², 2).
    sigma = np.exp(LOG_SCALE)
    eta1, eta2 = MEAN / sigma**2, -1 / (2 * sigma**2)
    hess = np.array(
        [
            [-1 / (2 * eta2), eta1 / (2 * eta2**2)],
            [eta1 / (2 * eta2**2), -(eta1**2) / (2 * eta2**3) + 1 / (2 * eta2**2)],
        ]
    )

    def to_eta(theta):
        s2 = np.exp(2 * theta[1])
        return np.array([theta[0] / s2, -1 / (2 * s2)])

    jac = np.stack(
        [
            central_difference(lambda t, i=i: to_eta(t)[i], np.array([MEAN, LOG_SCALE]))
            for i in range(2)
        ]
    )
    pulled = pullback_fisher(xp.asarray(hess), xp.asarray(jac))
    np.testing.assert_allclose(to_numpy(pulled), np.diag([1 / sigma**2, 2.0]), rtol=1e-7, atol=1e-9)


def test_pullback_shape_errors(xp):
    with pytest.raises(DataError, match="jacobian"):
        pullback_fisher(xp.eye(2, dtype=xp.float64), xp.ones((3, 2), dtype=xp.float64))
    with pytest.raises(DataError, match="surrogate_fisher"):
        pullback_fisher(xp.ones((2, 3), dtype=xp.float64), xp.ones((2, 2), dtype=xp.float64))


def test_natural_gradient_solve_matches_numpy(xp):
    rng = np.random.default_rng(4)
    a = rng.normal(size=(4, 4))
    fisher = a @ a.T + 0.5 * np.eye(4)
    grad = rng.normal(size=4)
    got = natural_gradient_solve(xp.asarray(fisher), xp.asarray(grad), damping=0.1)
    np.testing.assert_allclose(
        to_numpy(got), np.linalg.solve(fisher + 0.1 * np.eye(4), grad), rtol=1e-10
    )
    assert type(got) is type(xp.asarray(grad))


def test_natural_gradient_solve_rejects_indefinite(xp):
    fisher = xp.asarray(np.array([[1.0, 0.0], [0.0, -0.5]]))
    with pytest.raises(DomainError, match=r"smallest eigenvalue -0\.5"):
        natural_gradient_solve(fisher, xp.asarray(np.array([1.0, 1.0])))
    # damping large enough makes it positive definite
    got = natural_gradient_solve(fisher, xp.asarray(np.array([1.0, 1.0])), damping=1.0)
    np.testing.assert_allclose(to_numpy(got), [0.5, 2.0])
    with pytest.raises(DataError, match="damping"):
        natural_gradient_solve(fisher, xp.asarray(np.array([1.0, 1.0])), damping=-1.0)
    with pytest.raises(DataError, match="grad"):
        natural_gradient_solve(fisher, xp.asarray(np.array([1.0, 1.0, 1.0])))
