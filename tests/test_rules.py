"""Tests of SNGD (``surrogate_natgrad.rules.SNGD``) against independent references.

The surrogate used here is a small full-covariance Gaussian family written in this file
(so the rules are tested independently of ``surrogate_natgrad.families``); references are
natural gradient descent in minimal coordinates with the Fisher (Hessian of the log partition)
from central differences of its closed-form gradient, solved with ``numpy.linalg.solve``;
closed-form moment matching; the closed-form posterior of Bayesian linear regression.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import pytest

from surrogate_natgrad._compat import namespace
from surrogate_natgrad.maps import SurrogateMap, identity_map
from surrogate_natgrad.rules import SNGD, GradientDescent, Status, sngd_direction
from tests.helpers import central_difference, to_numpy

# ---------------------------------------------------------------------------------------
# A stand-in Gaussian family (array API only), independent of surrogate_natgrad.families
# ---------------------------------------------------------------------------------------


class Standard(NamedTuple):
    mean: object
    covariance: object


class Natural(NamedTuple):
    linear: object
    quadratic: object


class Mean(NamedTuple):
    first: object
    second: object


def _sym(a, xp):
    return 0.5 * (a + xp.linalg.matrix_transpose(a))


def _outer(a, b):
    return a[..., :, None] * b[..., None, :]


def _matvec(a, v, xp):
    return xp.sum(a * v[..., None, :], axis=-1)


class StandInGaussian:
    """Full-covariance Gaussian: T(x) = (x, x xᵀ), η = (Σ⁻¹μ, −½Σ⁻¹), m = (μ, Σ + μμᵀ)."""

    def __init__(self, dim):
        self.dim = dim

    def standard_to_natural(self, p):
        xp = namespace(*p)
        precision = xp.linalg.inv(_sym(p.covariance, xp))
        return Natural(_matvec(precision, p.mean, xp), -0.5 * precision)

    def natural_to_standard(self, n):
        xp = namespace(*n)
        covariance = xp.linalg.inv(-2.0 * _sym(n.quadratic, xp))
        return Standard(_matvec(covariance, n.linear, xp), _sym(covariance, xp))

    def standard_to_mean(self, p):
        xp = namespace(*p)
        return Mean(p.mean, _sym(p.covariance, xp) + _outer(p.mean, p.mean))

    def mean_to_standard(self, m):
        xp = namespace(*m)
        return Standard(m.first, _sym(m.second, xp) - _outer(m.first, m.first))

    def mean_to_natural(self, m):
        return self.standard_to_natural(self.mean_to_standard(m))

    def natural_to_mean(self, n):
        return self.standard_to_mean(self.natural_to_standard(n))

    def in_mean_domain(self, m):
        xp = namespace(*m)
        cov = _sym(m.second, xp) - _outer(m.first, m.first)
        return xp.all(xp.linalg.eigvalsh(cov) > 0, axis=-1)

    def in_natural_domain(self, n):
        xp = namespace(*n)
        return xp.all(xp.linalg.eigvalsh(-_sym(n.quadratic, xp)) > 0, axis=-1)

    def symmetrize(self, params):
        xp = namespace(*params)
        return type(params)(params[0], _sym(params[1], xp))


def gaussian_nll(data):
    """Mean negative log-likelihood of ``data`` under N(mean, covariance), array API ops."""

    def objective(target):
        mean, covariance = target
        xp = namespace(mean, covariance)
        centred = data - mean
        solved = xp.linalg.solve(covariance, xp.linalg.matrix_transpose(centred))
        quad = xp.sum(xp.linalg.matrix_transpose(solved) * centred, axis=-1)
        _, logdet = xp.linalg.slogdet(covariance)
        d = mean.shape[-1]
        return 0.5 * xp.mean(quad) + 0.5 * logdet + 0.5 * d * np.log(2 * np.pi)

    return objective


def non_conjugate_objective(data):
    """Gaussian NLL plus smooth penalties, so that the natural gradient is non-trivial."""
    nll = gaussian_nll(data)

    def objective(target):
        mean, covariance = target
        xp = namespace(mean, covariance)
        return nll(target) + 0.1 * xp.sum(mean**4) + 0.05 * xp.sum(covariance * covariance)

    return objective


def _make_data(ad_backend, dim, n=40, seed=0):
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim)) * 0.7 + rng.normal(size=dim)
    return raw, (None if ad_backend is None else ad_backend.asarray(raw))


def _init_params(ad_backend, dim, seed=1):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim)) * 0.3
    mean = rng.normal(size=dim) * 0.5
    cov = a @ a.T + np.eye(dim)
    if ad_backend is None:
        return mean, cov, None
    return mean, cov, Standard(ad_backend.asarray(mean), ad_backend.asarray(cov))


# ---------------------------------------------------------------------------------------
# Independent reference: NGD in minimal coordinates, NumPy/SciPy closed forms, Fisher by
# central differences of the closed-form ∇A, solved with numpy.linalg.solve
# ---------------------------------------------------------------------------------------


def _sym_from_upper(u, dim):
    upper = np.zeros((dim, dim))
    upper[np.triu_indices(dim)] = u
    return upper + upper.T - np.diag(np.diag(upper))


def _standard_from_eta(eta, dim):
    cov = np.linalg.inv(-2.0 * _sym_from_upper(eta[dim:], dim))
    return cov @ eta[:dim], cov


def _grad_log_partition(eta, dim):
    """∇A in minimal coordinates: (μ, E x_i x_j paired with J's upper triangle, ×2 off-diag)."""
    mean, cov = _standard_from_eta(eta, dim)
    second = cov + np.outer(mean, mean)
    rows, cols = np.triu_indices(dim)
    return np.concatenate([mean, np.where(rows == cols, 1.0, 2.0) * second[rows, cols]])


def _standard_from_minimal_mean(m, dim):
    rows, cols = np.triu_indices(dim)
    second = _sym_from_upper(m[dim:] * np.where(rows == cols, 1.0, 0.5), dim)
    return m[:dim], second - np.outer(m[:dim], m[:dim])


def _reference_objective_np(data_np, mean, cov):
    from scipy.stats import multivariate_normal

    if np.any(np.linalg.eigvalsh(0.5 * (cov + cov.T)) <= 0):
        return np.inf
    nll = -multivariate_normal(mean, cov).logpdf(data_np).mean()
    return nll + 0.1 * np.sum(mean**4) + 0.05 * np.sum(cov * cov)


def _reference_ngd(data_np, mean, cov, step, form):
    dim = mean.shape[0]
    rows, cols = np.triu_indices(dim)
    precision = np.linalg.inv(cov)
    eta = np.concatenate([precision @ mean, -0.5 * precision[rows, cols]])
    size = eta.shape[0]
    fisher = np.stack(
        [
            central_difference(lambda e, k=k: _grad_log_partition(e, dim)[k], eta, step=1e-4)
            for k in range(size)
        ]
    )
    fisher = 0.5 * (fisher + fisher.T)
    if form == "vi":
        grad = central_difference(
            lambda e: _reference_objective_np(data_np, *_standard_from_eta(e, dim)), eta, 1e-4
        )
        return _standard_from_eta(eta - step * np.linalg.solve(fisher, grad), dim)
    # MLE form: NGD in the minimal mean coordinates m = ∇A(η), whose Fisher is F(η)⁻¹.
    m_min = _grad_log_partition(eta, dim)
    grad_m = central_difference(
        lambda m: _reference_objective_np(data_np, *_standard_from_minimal_mean(m, dim)),
        m_min,
        1e-4,
    )
    new_m = m_min - step * np.linalg.solve(np.linalg.inv(fisher), grad_m)
    return _standard_from_minimal_mean(new_m, dim)


@functools.cache
def _cached_reference_ngd(dim, step, form):
    data_np, _ = _make_data(None, dim)
    mean, cov, _ = _init_params(None, dim)
    return _reference_ngd(data_np, mean, cov, step, form)


@pytest.mark.parametrize("form", ["mle", "vi"])
@pytest.mark.parametrize("dim", [2, 3])
def test_sngd_with_identity_map_is_ngd(ad_backend, form, dim):
    data_np, data = _make_data(ad_backend, dim)
    mean, cov, start = _init_params(ad_backend, dim)
    family = StandInGaussian(dim)
    step = 0.3 if form == "mle" else 0.05
    rule = SNGD(identity_map(family), form=form, step_size=step)
    state = rule.init(start)
    state, info = rule.step(state, non_conjugate_objective(ad_backend.inner(data)))
    assert int(info.status) == Status.OK
    new = rule.standard_params(state)
    ref_mean, ref_cov = _cached_reference_ngd(dim, step, form)
    np.testing.assert_allclose(to_numpy(new.mean), ref_mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(to_numpy(new.covariance), ref_cov, rtol=1e-8, atol=1e-10)
    # info.loss is the loss before the step
    from scipy.stats import multivariate_normal

    ref_loss = -multivariate_normal(mean, cov).logpdf(data_np).mean()
    ref_loss += 0.1 * np.sum(mean**4) + 0.05 * np.sum(cov * cov)
    np.testing.assert_allclose(float(info.loss), ref_loss, rtol=1e-10)
    assert type(state.surrogate_params[0]) is type(start.mean)


def test_gaussian_mle_one_step_is_moment_matching(ad_backend):
    data_np, data = _make_data(ad_backend, 3, n=50, seed=3)
    _, _, start = _init_params(ad_backend, 3)
    rule = SNGD(identity_map(StandInGaussian(3)), form="mle", step_size=1.0)
    state, info = rule.step(rule.init(start), gaussian_nll(ad_backend.inner(data)))
    new = rule.standard_params(state)
    np.testing.assert_allclose(to_numpy(new.mean), np.mean(data_np, axis=0), rtol=1e-10)
    np.testing.assert_allclose(
        to_numpy(new.covariance), np.cov(data_np, rowvar=False, bias=True), rtol=1e-9
    )
    assert int(info.status) == Status.OK
    assert float(info.step_size) == 1.0


def _linear_regression(ad_backend, n=30, dim=3, noise_var=0.5, prior_precision=2.0):
    rng = np.random.default_rng(7)
    x_np = rng.normal(size=(n, dim))
    y_np = x_np @ rng.normal(size=dim) + rng.normal(size=n) * np.sqrt(noise_var)
    # the objective sees the data as a differentiated function does (torch under a bridge)
    x, y = ad_backend.inner((ad_backend.asarray(x_np), ad_backend.asarray(y_np)))

    def negative_elbo(target):
        mean, cov = target
        xp = namespace(mean, cov)
        resid = y - xp.sum(x * mean, axis=-1)
        xtx = xp.linalg.matrix_transpose(x) @ x
        expected_loglik = -0.5 * n * np.log(2 * np.pi * noise_var) - (
            xp.sum(resid**2) + xp.sum(xtx * cov)
        ) / (2 * noise_var)
        expected_logprior = -0.5 * dim * np.log(2 * np.pi / prior_precision) - (
            0.5 * prior_precision * (xp.sum(mean**2) + xp.linalg.trace(cov))
        )
        entropy = 0.5 * dim * (1 + np.log(2 * np.pi)) + 0.5 * xp.linalg.slogdet(cov)[1]
        return -expected_loglik - expected_logprior - entropy

    post_cov = np.linalg.inv(x_np.T @ x_np / noise_var + prior_precision * np.eye(dim))
    post_mean = post_cov @ x_np.T @ y_np / noise_var
    return negative_elbo, post_mean, post_cov


def test_conjugate_vi_one_step_is_exact(ad_backend):
    negative_elbo, post_mean, post_cov = _linear_regression(ad_backend)
    _, _, start = _init_params(ad_backend, 3, seed=5)
    rule = SNGD(identity_map(StandInGaussian(3)), form="vi", step_size=1.0)
    state, _ = rule.step(rule.init(start), negative_elbo)
    new = rule.standard_params(state)
    np.testing.assert_allclose(to_numpy(new.mean), post_mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(to_numpy(new.covariance), post_cov, rtol=1e-9, atol=1e-12)
    # A second step stays at the optimum (the natural gradient vanishes there).
    state, info = rule.step(state, negative_elbo)
    np.testing.assert_allclose(to_numpy(rule.standard_params(state).mean), post_mean, rtol=1e-9)
    assert float(info.grad_norm) < 1e-8


def _domain_violating_setup(ad_backend):
    """Gaussian MLE from far away: steps longer than ~1.3 leave the PD cone."""
    data_np, data = _make_data(ad_backend, 2, n=30, seed=11)
    start = Standard(ad_backend.asarray(np.array([3.0, -2.0])), ad_backend.asarray(4 * np.eye(2)))
    return data_np, data, start


def _mle_candidate(data_np, mean, cov, eps):
    """(1 − ε) m + ε T̄ in standard coordinates (the MLE-form step of a Gaussian NLL)."""
    m1 = (1 - eps) * mean + eps * data_np.mean(axis=0)
    m2 = (1 - eps) * (cov + np.outer(mean, mean)) + eps * (data_np.T @ data_np / len(data_np))
    return m1, m2 - np.outer(m1, m1)


def test_backtracking_halves_until_in_domain(ad_backend):
    data_np, data, start = _domain_violating_setup(ad_backend)
    mean, cov = to_numpy(start.mean), to_numpy(start.covariance)
    rule = SNGD(
        identity_map(StandInGaussian(2)), form="mle", step_size=16.0, line_search="backtracking"
    )
    state, info = rule.step(rule.init(start), gaussian_nll(ad_backend.inner(data)))
    eps = float(info.step_size)
    assert int(info.status) == Status.BACKTRACKED
    # brute force: the largest ε = 16·2^-k whose covariance is positive definite
    expected = next(
        16.0 * 0.5**k
        for k in range(20)
        if np.all(np.linalg.eigvalsh(_mle_candidate(data_np, mean, cov, 16.0 * 0.5**k)[1]) > 0)
    )
    assert eps == expected < 16.0
    new = rule.standard_params(state)
    ref_mean, ref_cov = _mle_candidate(data_np, mean, cov, eps)
    np.testing.assert_allclose(to_numpy(new.mean), ref_mean, rtol=1e-9)
    np.testing.assert_allclose(to_numpy(new.covariance), ref_cov, rtol=1e-8, atol=1e-10)


def test_fixed_step_out_of_domain_keeps_state(ad_backend):
    _, data, start = _domain_violating_setup(ad_backend)
    rule = SNGD(identity_map(StandInGaussian(2)), form="mle", step_size=16.0)
    state0 = rule.init(start)
    state, info = rule.step(state0, gaussian_nll(ad_backend.inner(data)))
    assert int(info.status) == Status.OUT_OF_DOMAIN
    assert float(info.step_size) == 0.0
    for new, old in zip(state.surrogate_params, state0.surrogate_params, strict=True):
        np.testing.assert_array_equal(to_numpy(new), to_numpy(old))


@pytest.mark.parametrize("line_search", ["backtracking", "armijo"])
def test_backtracking_rejects_when_nothing_works(ad_backend, line_search):
    _, data, start = _domain_violating_setup(ad_backend)
    # The map is only defined where the first mean is >= 3 (its current value), and the
    # gradient pulls the mean towards the data (below 3): every candidate step fails.
    bounded = SurrogateMap(
        family=StandInGaussian(2),
        to_target=lambda std, aux: std,
        domain=lambda std: std.mean[0] >= 3.0,
    )
    rule = SNGD(bounded, form="mle", step_size=1.0, line_search=line_search)
    state0 = rule.init(start)
    state, info = rule.step(state0, gaussian_nll(ad_backend.inner(data)))
    assert int(info.status) == Status.STEP_REJECTED
    assert float(info.step_size) == 0.0
    for new, old in zip(state.surrogate_params, state0.surrogate_params, strict=True):
        np.testing.assert_array_equal(to_numpy(new), to_numpy(old))
        assert np.all(np.isfinite(to_numpy(new)))


def test_armijo_requires_decrease(ad_backend):
    # Step 1.9 stays in the domain but overshoots the moment-matching optimum, so the loss
    # increases; Armijo halves to 0.95, plain backtracking keeps 1.9.
    data_np, data, start = _domain_violating_setup(ad_backend)
    objective = gaussian_nll(ad_backend.inner(data))
    family = StandInGaussian(2)
    mean, cov = to_numpy(start.mean), to_numpy(start.covariance)
    plain = SNGD(identity_map(family), step_size=1.9, line_search="backtracking")
    armijo = SNGD(identity_map(family), step_size=1.9, line_search="armijo")
    _, info_plain = plain.step(plain.init(start), objective)
    _, info_armijo = armijo.step(armijo.init(start), objective)

    def loss(eps):
        from scipy.stats import multivariate_normal

        m, c = _mle_candidate(data_np, mean, cov, eps)
        if np.any(np.linalg.eigvalsh(c) <= 0):
            return np.inf
        return -multivariate_normal(m, c).logpdf(data_np).mean()

    start_loss = loss(0.0)
    expected_plain = next(1.9 * 0.5**k for k in range(20) if np.isfinite(loss(1.9 * 0.5**k)))
    expected_armijo = next(1.9 * 0.5**k for k in range(20) if loss(1.9 * 0.5**k) <= start_loss)
    assert float(info_plain.step_size) == expected_plain
    assert float(info_armijo.step_size) == expected_armijo


@pytest.mark.parametrize("batched", [False, True])
def test_grid_line_search_picks_best_candidate(ad_backend, batched):
    data_np, data, start = _domain_violating_setup(ad_backend)
    mean, cov = to_numpy(start.mean), to_numpy(start.covariance)
    from scipy.stats import multivariate_normal

    # NLL plus a penalty on the mean: the best step is strictly inside (0, 2].
    target_mean = np.array([2.0, -1.0])
    # the objectives close over the data as the step sees it (torch views under a bridge)
    data, penalty_at = ad_backend.inner((data, ad_backend.asarray(target_mean)))

    def objective(target):
        mean_t, cov_t = target
        xp = namespace(mean_t, cov_t)
        return gaussian_nll(data)(target) + 3.0 * xp.sum((mean_t - penalty_at) ** 2, axis=-1)

    def batched_objective(target):
        mean_t, cov_t = target
        xp = namespace(mean_t, cov_t)
        if mean_t.ndim == 1:  # the gradient call passes unbatched parameters
            batch = (xp.expand_dims(mean_t, axis=0), xp.expand_dims(cov_t, axis=0))
            return xp.sum(batched_objective(batch))
        # expand_dims rather than None-indexing: autograd's getitem VJP mishandles None
        centred = xp.expand_dims(data, axis=0) - xp.expand_dims(mean_t, axis=1)
        solved = xp.matmul(centred, xp.linalg.inv(cov_t))
        quad = xp.mean(xp.sum(solved * centred, axis=-1), axis=-1)
        logdet = xp.linalg.slogdet(cov_t)[1]
        nll = 0.5 * quad + 0.5 * logdet + np.log(2 * np.pi)
        return nll + 3.0 * xp.sum((mean_t - penalty_at) ** 2, axis=-1)

    grid_size = 40
    rule = SNGD(
        identity_map(StandInGaussian(2)),
        step_size=2.0,
        line_search="grid",
        grid_size=grid_size,
        objective_batched=batched,
    )
    _state, info = rule.step(rule.init(start), batched_objective if batched else objective)

    grad_eta = _reference_eta_gradient(data_np, mean, cov, target_mean)
    m1 = mean
    m2 = cov + np.outer(mean, mean)
    losses = []
    for i in range(1, grid_size + 1):
        eps = 2.0 * i / grid_size
        c1 = m1 - eps * grad_eta[0]
        c2 = m2 - eps * grad_eta[1]
        c_cov = c2 - np.outer(c1, c1)
        if np.any(np.linalg.eigvalsh(c_cov) <= 0):
            losses.append(np.inf)
            continue
        value = -multivariate_normal(c1, c_cov).logpdf(data_np).mean()
        losses.append(value + 3.0 * np.sum((c1 - target_mean) ** 2))
    assert np.isinf(losses[-1])  # the grid really contains out-of-domain candidates
    best = 2.0 * (int(np.argmin(losses)) + 1) / grid_size
    assert 0 < best < 2.0
    assert float(info.step_size) == pytest.approx(best, rel=1e-12)
    assert int(info.status) == Status.OK


def _reference_eta_gradient(data_np, mean, cov, target_mean):
    """∇_η of NLL + 3|μ − b|² in full (h, J) coordinates, by central differences."""
    from scipy.stats import multivariate_normal

    dim = mean.shape[0]

    def f(flat):
        h, j = flat[:dim], flat[dim:].reshape(dim, dim)
        cov_e = np.linalg.inv(-2.0 * 0.5 * (j + j.T))
        mu = cov_e @ h
        nll = -multivariate_normal(mu, cov_e).logpdf(data_np).mean()
        return nll + 3.0 * np.sum((mu - target_mean) ** 2)

    precision = np.linalg.inv(cov)
    flat = np.concatenate([precision @ mean, (-0.5 * precision).ravel()])
    grad = central_difference(f, flat, step=1e-4)
    gj = grad[dim:].reshape(dim, dim)
    return grad[:dim], 0.5 * (gj + gj.T)


def test_sngd_with_auxiliary_parameters(ad_backend):
    """The auxiliary gradient comes from the same call and is applied by the aux rule."""
    from surrogate_natgrad.maps import Exp

    data_np, data = _make_data(ad_backend, 2, n=30, seed=2)
    _, _, start = _init_params(ad_backend, 2)

    def to_target(std, aux):
        return (std.mean, std.covariance * aux["scale"])

    scaled = SurrogateMap(StandInGaussian(2), to_target, aux_transforms={"scale": Exp()})
    rule = SNGD(scaled, form="mle", step_size=0.5, aux_rule=GradientDescent(step_size=0.1))
    scale0 = ad_backend.asarray(np.array(1.5))
    state0 = rule.init(start, {"scale": scale0})
    np.testing.assert_allclose(to_numpy(state0.aux["scale"]), np.log(1.5))
    objective = gaussian_nll(ad_backend.inner(data))
    state, info = rule.step(state0, objective)
    # independent check of the auxiliary gradient: central differences in log-scale
    mean, cov = to_numpy(start.mean), to_numpy(start.covariance)
    from scipy.stats import multivariate_normal

    def f_of_log_scale(log_scale):
        return -multivariate_normal(mean, cov * np.exp(log_scale[0])).logpdf(data_np).mean()

    grad = central_difference(f_of_log_scale, np.array([np.log(1.5)]))[0]
    np.testing.assert_allclose(to_numpy(state.aux["scale"]), np.log(1.5) - 0.1 * grad, rtol=1e-7)
    np.testing.assert_allclose(
        to_numpy(rule.aux_params(state)["scale"]), np.exp(np.log(1.5) - 0.1 * grad), rtol=1e-7
    )
    assert int(info.status) == Status.OK
    target = rule.target_params(state)
    assert len(target) == 2


def test_sngd_direction_matches_reference(ad_backend):
    data_np, data = _make_data(ad_backend, 2, n=25, seed=4)
    mean, cov, start = _init_params(ad_backend, 2)
    family = StandInGaussian(2)
    found = sngd_direction(
        identity_map(family),
        family.standard_to_mean(start),
        gaussian_nll(ad_backend.inner(data)),
        form="mle",
    )
    # For a Gaussian NLL, ∇_η f = m − T̄ (mean parameters minus average statistics).
    np.testing.assert_allclose(to_numpy(found.direction[0]), mean - data_np.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(
        to_numpy(found.direction[1]),
        cov + np.outer(mean, mean) - data_np.T @ data_np / len(data_np),
        rtol=1e-9,
    )


@pytest.mark.parametrize("line_search", [None, "backtracking"])
def test_sngd_step_jits_under_jax(line_search):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    data_np = np.random.default_rng(0).normal(size=(30, 2))
    data = jnp.asarray(data_np)
    start = Standard(jnp.asarray([3.0, -2.0]), jnp.asarray(4 * np.eye(2)))
    rule = SNGD(
        identity_map(StandInGaussian(2)),
        step_size=16.0 if line_search else 1.0,
        line_search=line_search,
    )
    objective = gaussian_nll(data)
    eager_state, eager_info = rule.step(rule.init(start), objective)
    jitted = jax.jit(rule.make_step(objective))
    state, info = jitted(rule.init(start))
    np.testing.assert_allclose(
        np.asarray(state.surrogate_params[1]),
        np.asarray(eager_state.surrogate_params[1]),
        rtol=1e-12,
    )
    assert int(info.status) == int(eager_info.status)
    assert float(info.step_size) == float(eager_info.step_size)
    # also through jax.jit(rule.step, static_argnums=1)
    state2, _ = jax.jit(rule.step, static_argnums=1)(rule.init(start), objective)
    np.testing.assert_allclose(
        np.asarray(state2.surrogate_params[0]),
        np.asarray(eager_state.surrogate_params[0]),
        rtol=1e-12,
    )


def test_sngd_validates_arguments():
    from surrogate_natgrad.errors import DataError

    family = StandInGaussian(2)
    with pytest.raises(DataError, match="form"):
        SNGD(identity_map(family), form="newton")
    with pytest.raises(DataError, match="line_search"):
        SNGD(identity_map(family), line_search="wolfe")
    with pytest.raises(DataError, match="step_size"):
        SNGD(identity_map(family), step_size=0.0)
    with pytest.raises(DataError, match="surrogate_map"):
        SNGD(family)


@pytest.mark.parametrize("batched", [False, True])
def test_grid_line_search_never_increases_the_loss(batched):
    # f(x) = (x - 1)^2 / 2 + 1e6 (x - 1)^4 / 4 from x = 1.1 along the plain gradient: every
    # step of the grid in (0, 1] overshoots (the quartic term is steep), only steps below
    # the grid's spacing lower the loss. The grid must take one of those, never a worse one.
    from surrogate_natgrad.rules.step_size import select_step

    xp = namespace(np.zeros(1))

    def loss(x):
        return (x[0] - 1) ** 2 / 2 + 1e6 * (x[0] - 1) ** 4 / 4

    def batched_loss(x):
        return (x[:, 0] - 1) ** 2 / 2 + 1e6 * (x[:, 0] - 1) ** 4 / 4

    x0 = np.array([1.1])
    grad = (x0 - 1) + 1e6 * (x0 - 1) ** 3
    new, step, status = select_step(
        x0, grad, xp=xp, step_size=1.0, line_search="grid", grid_size=10,
        loss=None if batched else loss, batched_loss=batched_loss if batched else None,
        current_loss=np.asarray(loss(x0)),
    )
    assert int(status) == int(Status.OK)
    assert 0 < float(step) < 0.1
    assert loss(new) < loss(x0)
    # The exact minimiser along the line (independent: scipy) is no better than the grid's
    # pick by more than the fine steps' resolution allows.
    import scipy.optimize as so

    best = so.minimize_scalar(lambda t: loss(x0 - t * grad), bounds=(0, 0.1), method="bounded")
    assert loss(new) <= best.fun + 0.5 * (loss(x0) - best.fun)
