"""Baseline rules (GD, Adam, BFGS, NGD with a Monte Carlo Fisher) against known optima and
closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from surrogate_natgrad._compat import namespace
from surrogate_natgrad.errors import DataError
from surrogate_natgrad.rules import (
    BFGS,
    Adam,
    GradientDescent,
    NaturalGradientDescent,
    Status,
    status_name,
)
from tests.helpers import to_numpy

_A = np.array([[3.0, 0.5], [0.5, 1.0]])
_C = np.array([1.0, -2.0])


def _quadratic(ad_backend):
    # the objective sees its data as the rule's step does (torch views under a bridge)
    a, c = ad_backend.inner((ad_backend.asarray(_A), ad_backend.asarray(_C)))

    def objective(params):
        x = params["x"]
        xp = namespace(x)
        d = x - c
        return 0.5 * xp.sum(d * xp.sum(a * d, axis=-1))

    return objective


def _rosenbrock(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


@pytest.mark.parametrize("line_search", [None, "backtracking"])
def test_gradient_descent_quadratic(ad_backend, line_search):
    rule = GradientDescent(step_size=0.3 if line_search is None else 1.0, line_search=line_search)
    state = rule.init({"x": ad_backend.asarray(np.array([4.0, 4.0]))})
    objective = _quadratic(ad_backend)
    losses = []
    for _ in range(150):
        state, info = rule.step(state, objective)
        losses.append(float(info.loss))
    np.testing.assert_allclose(to_numpy(state.params["x"]), _C, atol=1e-6)
    assert losses[0] == pytest.approx(0.5 * (np.array([3.0, 6.0]) @ _A @ np.array([3.0, 6.0])))
    assert type(state.params["x"]) is type(ad_backend.asarray(_C))


def test_adam_quadratic(ad_backend):
    rule = Adam(step_size=0.2)
    state = rule.init({"x": ad_backend.asarray(np.array([4.0, 4.0]))})
    objective = _quadratic(ad_backend)
    for _ in range(300):
        state, info = rule.step(state, objective)
    assert int(info.status) == Status.OK
    np.testing.assert_allclose(to_numpy(state.params["x"]), _C, atol=1e-3)


def test_adam_first_step_is_sign_times_step_size(ad_backend):
    # With bias correction the first Adam step is -step_size * g / (|g| + eps).
    rule = Adam(step_size=0.1, eps=0.0)
    state = rule.init({"x": ad_backend.asarray(np.array([4.0, 4.0]))})
    state, _ = rule.step(state, _quadratic(ad_backend))
    grad = _A @ (np.array([4.0, 4.0]) - _C)
    np.testing.assert_allclose(to_numpy(state.params["x"]), 4.0 - 0.1 * np.sign(grad))


def test_bfgs_rosenbrock(ad_backend):
    rule = BFGS()
    state = rule.init(ad_backend.asarray(np.array([-1.2, 1.0])))
    for _ in range(100):
        state, info = rule.step(state, _rosenbrock)
    np.testing.assert_allclose(to_numpy(state.params), [1.0, 1.0], atol=1e-6)
    # Converged: further steps have s = y = 0 and must skip the update, never NaN.
    for _ in range(5):
        state, info = rule.step(state, _rosenbrock)
        assert bool(info.curvature_skipped)
    assert np.all(np.isfinite(to_numpy(state.inverse_hessian)))
    np.testing.assert_allclose(to_numpy(state.params), [1.0, 1.0], atol=1e-6)


def test_bfgs_survives_negative_curvature(ad_backend):
    # f = sum(cos x) + 0.05|x|²: starting near a maximum of cos, early pairs have sᵀy <= 0.
    def objective(x):
        xp = namespace(x)
        return xp.sum(xp.cos(x)) + 0.05 * xp.sum(x * x)

    rule = BFGS()
    state = rule.init(ad_backend.asarray(np.array([0.3, -0.2])))
    skipped = []
    for _ in range(60):
        state, info = rule.step(state, objective)
        skipped.append(bool(info.curvature_skipped))
        assert np.all(np.isfinite(to_numpy(state.params)))
        assert np.all(np.isfinite(to_numpy(state.inverse_hessian)))
    assert any(skipped[1:])
    x = to_numpy(state.params)
    # stationary point of cos x + 0.05 x²: sin x = 0.1 x, a local minimum (cos x > 0.1... no:
    # second derivative -cos x + 0.1 > 0)
    np.testing.assert_allclose(np.sin(x), 0.1 * x, atol=1e-7)
    assert np.all(-np.cos(x) + 0.1 > 0)


def test_bfgs_with_grid(ad_backend):
    rule = BFGS(line_search="grid", grid_size=50)
    state = rule.init(ad_backend.asarray(np.array([-1.2, 1.0])))
    for _ in range(50):
        state, _info = rule.step(state, _rosenbrock)
    np.testing.assert_allclose(to_numpy(state.params), [1.0, 1.0], atol=1e-4)


@pytest.mark.parametrize("batched", [False, True])
def test_gradient_descent_grid_picks_best_finite_candidate(ad_backend, batched):
    # f(x) = (x − 3)² − 2 log x is NaN for x < 0; from x = 4 the candidates 4 − ε f'(4)
    # with ε up to 10 reach negative x, which must be skipped.
    def objective(x):
        xp = namespace(x)
        values = (x - 3.0) ** 2 - 2.0 * xp.log(x)
        return values[..., 0] if batched else xp.sum(values)

    grid_size = 100
    rule = GradientDescent(
        step_size=10.0, line_search="grid", grid_size=grid_size, objective_batched=batched
    )
    x0 = 4.0
    state, info = rule.step(rule.init(ad_backend.asarray(np.array([x0]))), objective)
    grad = 2 * (x0 - 3.0) - 2.0 / x0
    eps = 10.0 * np.arange(1, grid_size + 1) / grid_size
    candidates = x0 - eps * grad
    with np.errstate(invalid="ignore", divide="ignore"):
        losses = (candidates - 3.0) ** 2 - 2.0 * np.log(candidates)
    losses[~np.isfinite(losses)] = np.inf
    assert np.isinf(losses).any()
    best = int(np.argmin(losses))
    assert float(info.step_size) == pytest.approx(eps[best], rel=1e-12)
    np.testing.assert_allclose(to_numpy(state.params), [candidates[best]], rtol=1e-12)
    assert status_name(info.status) == "OK"


def test_gradient_descent_nonfinite_loss_keeps_state(ad_backend):
    def objective(x):
        xp = namespace(x)
        return xp.sum(xp.log(x))  # NaN at a negative point

    rule = GradientDescent(step_size=0.1)
    x = ad_backend.asarray(np.array([-1.0]))
    with np.errstate(invalid="ignore"):
        state, info = rule.step(rule.init(x), objective)
    assert int(info.status) == Status.NONFINITE
    np.testing.assert_array_equal(to_numpy(state.params), [-1.0])


def test_rules_validate_arguments():
    with pytest.raises(DataError, match="step_size"):
        GradientDescent(step_size=-1.0)
    with pytest.raises(DataError, match="line_search"):
        BFGS(line_search="wolfe")
    with pytest.raises(DataError, match="b1"):
        Adam(b1=1.0)
    with pytest.raises(DataError, match="n_samples"):
        NaturalGradientDescent(lambda p, x: x, lambda p, n: None, n_samples=0)


# -------------------------------------------------------------------------------- NGD


def _gaussian_1d(ad_backend, n_samples=20000):
    """A 1-D Gaussian in (μ, log σ) coordinates: log density, sampler, data objective."""
    rng = np.random.default_rng(0)
    normals_np = rng.normal(size=n_samples)
    data_np = rng.normal(2.0, 0.5, size=200)
    # the closures see their data as the rule's step does (torch views under a bridge)
    normals, data = ad_backend.inner((ad_backend.asarray(normals_np), ad_backend.asarray(data_np)))

    def log_prob(params, x):
        mean, log_scale = params
        xp = namespace(mean, log_scale, x)
        z = (x - mean) / xp.exp(log_scale)
        return -0.5 * z * z - log_scale - 0.5 * np.log(2 * np.pi)

    def sampler(params, n):
        mean, log_scale = params
        xp = namespace(mean, log_scale)
        return mean + xp.exp(log_scale) * normals[:n]

    def objective(params):
        xp = namespace(*params)
        return -xp.mean(log_prob(params, data))

    return log_prob, sampler, objective, data_np


def test_ngd_step_matches_closed_form_fisher(ad_backend):
    log_prob, sampler, objective, data_np = _gaussian_1d(ad_backend)
    mean0, log_scale0 = 0.0, 0.3
    rule = NaturalGradientDescent(
        log_prob, sampler, n_samples=20000, step_size=0.5, batched_log_prob=True
    )
    params = (ad_backend.asarray(np.array(mean0)), ad_backend.asarray(np.array(log_scale0)))
    state, info = rule.step(rule.init(params), objective)
    sigma2 = np.exp(2 * log_scale0)
    # closed-form gradient and Fisher diag(1/σ², 2) of the NLL in (μ, log σ)
    grad = np.array(
        [-(data_np.mean() - mean0) / sigma2, 1.0 - np.mean((data_np - mean0) ** 2) / sigma2]
    )
    expected = np.array([mean0, log_scale0]) - 0.5 * np.linalg.solve(
        np.diag([1 / sigma2, 2.0]), grad
    )
    got = np.array([float(to_numpy(p)) for p in state.params])
    # Monte Carlo error of the Fisher with 20 000 samples: a few percent of the step
    np.testing.assert_allclose(
        got, expected, atol=0.05 * np.abs(expected - [mean0, log_scale0]).max()
    )
    assert int(info.status) == Status.OK


def test_ngd_converges_with_backtracking(ad_backend):
    log_prob, sampler, objective, data_np = _gaussian_1d(ad_backend, n_samples=5000)
    rule = NaturalGradientDescent(
        log_prob,
        sampler,
        n_samples=5000,
        step_size=1.0,
        line_search="backtracking",
        batched_log_prob=True,
    )
    state = rule.init((ad_backend.asarray(np.array(0.0)), ad_backend.asarray(np.array(0.0))))
    for _ in range(15):
        state, _info = rule.step(state, objective)
    np.testing.assert_allclose(float(to_numpy(state.params[0])), data_np.mean(), atol=1e-6)
    np.testing.assert_allclose(float(to_numpy(state.params[1])), np.log(data_np.std()), atol=1e-6)


def test_ngd_singular_fisher_keeps_state(ad_backend):
    _, sampler, objective, _ = _gaussian_1d(ad_backend, n_samples=100)

    def log_prob_ignoring_scale(params, x):
        mean, _ = params
        return -0.5 * (x - mean) ** 2

    rule = NaturalGradientDescent(log_prob_ignoring_scale, sampler, n_samples=100)
    params = (ad_backend.asarray(np.array(0.0)), ad_backend.asarray(np.array(0.0)))
    state, info = rule.step(rule.init(params), objective)
    assert int(info.status) == Status.SINGULAR_FISHER
    assert float(to_numpy(state.params[0])) == 0.0
