"""SNGD with the library's own families (Gaussian, Gamma) against independent references.

References: NGD in minimal coordinates (JAX Hessian of a hand-written log partition, see
``tests/test_rules.py``), the closed-form Gamma Fisher ``[[ψ'(α), 1/β], [1/β, α/β²]]`` with
``scipy.special``, central-difference gradients, ``scipy.optimize.brentq`` for the Gamma's
mean → shape inversion, moment matching and the exact Bayesian linear-regression posterior.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special, stats

from surrogate_natgrad._compat import namespace
from surrogate_natgrad.maps import identity_map
from surrogate_natgrad.rules import SNGD, Status
from tests.helpers import central_difference, to_numpy
from tests.test_rules import (
    _cached_reference_ngd,
    _init_params,
    _linear_regression,
    _make_data,
    gaussian_nll,
    non_conjugate_objective,
)

families = pytest.importorskip("surrogate_natgrad.families")


@pytest.mark.parametrize("form", ["mle", "vi"])
@pytest.mark.parametrize("dim", [3])
def test_gaussian_family_sngd_is_ngd(ad_backend, form, dim):
    _, data = _make_data(ad_backend, dim)
    _, _, start = _init_params(ad_backend, dim)
    step = 0.3 if form == "mle" else 0.05
    rule = SNGD(identity_map(families.Gaussian(dim)), form=form, step_size=step)
    state, info = rule.step(
        rule.init(families.GaussianStandard(*start)),
        non_conjugate_objective(ad_backend.inner(data)),
    )
    assert int(info.status) == Status.OK
    new = rule.standard_params(state)
    ref_mean, ref_cov = _cached_reference_ngd(dim, step, form)
    np.testing.assert_allclose(to_numpy(new.mean), ref_mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(to_numpy(new.cov), ref_cov, rtol=1e-8, atol=1e-10)


def test_gaussian_family_mle_moment_matching(ad_backend):
    data_np, data = _make_data(ad_backend, 3, n=50, seed=3)
    _, _, start = _init_params(ad_backend, 3)
    rule = SNGD(identity_map(families.Gaussian(3)), form="mle", step_size=1.0)
    state, _ = rule.step(
        rule.init(families.GaussianStandard(*start)), gaussian_nll(ad_backend.inner(data))
    )
    new = rule.standard_params(state)
    np.testing.assert_allclose(to_numpy(new.mean), data_np.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(
        to_numpy(new.cov), np.cov(data_np, rowvar=False, bias=True), rtol=1e-9
    )


def test_gaussian_family_conjugate_vi_exact(ad_backend):
    negative_elbo, post_mean, post_cov = _linear_regression(ad_backend)
    _, _, start = _init_params(ad_backend, 3, seed=5)
    rule = SNGD(identity_map(families.Gaussian(3)), form="vi", step_size=1.0)
    state, _ = rule.step(rule.init(families.GaussianStandard(*start)), negative_elbo)
    new = rule.standard_params(state)
    np.testing.assert_allclose(to_numpy(new.mean), post_mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(to_numpy(new.cov), post_cov, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------- Gamma

_GAMMA_DATA = np.random.default_rng(3).gamma(3.0, 1 / 2.0, size=60)


def _gamma_objective(data):
    """Gamma NLL (shape α, rate β) plus a smooth penalty on the mean α/β."""

    def objective(target):
        from surrogate_natgrad import special as sn_special

        shape, rate = target
        xp = namespace(shape, rate)
        loglik = (
            shape * xp.log(rate)
            - sn_special.gammaln(shape)
            + (shape - 1) * xp.log(data)
            - rate * data
        )
        return -xp.mean(loglik) + 0.2 * (shape / rate - 1.0) ** 2

    return objective


def _gamma_objective_np(alpha, beta):
    nll = -stats.gamma(alpha, scale=1 / beta).logpdf(_GAMMA_DATA).mean()
    return nll + 0.2 * (alpha / beta - 1.0) ** 2


def _gamma_reference(alpha, beta, step, form):
    eta = np.array([alpha - 1.0, -beta])
    grad_eta = central_difference(lambda e: _gamma_objective_np(e[0] + 1.0, -e[1]), eta)
    fisher = np.array([[special.polygamma(1, alpha), 1 / beta], [1 / beta, alpha / beta**2]])
    if form == "vi":
        new_eta = eta - step * np.linalg.solve(fisher, grad_eta)
        return new_eta[0] + 1.0, -new_eta[1]
    # MLE form: natural gradient in mean coordinates is F(η) ∇_m f = ∇_η f.
    mean = np.array([special.digamma(alpha) - np.log(beta), alpha / beta]) - step * grad_eta
    new_alpha = optimize.brentq(
        lambda a: special.digamma(a) - np.log(a) + np.log(mean[1]) - mean[0],
        1e-6,
        1e6,
        xtol=1e-14,
        rtol=1e-14,
    )
    return new_alpha, new_alpha / mean[1]


@pytest.mark.parametrize("form", ["mle", "vi"])
def test_gamma_family_sngd_is_ngd(ad_backend, form, request):
    alpha, beta, step = 2.0, 1.5, 0.5
    start = families.GammaStandard(
        ad_backend.asarray(np.array(alpha)), ad_backend.asarray(np.array(beta))
    )
    rule = SNGD(identity_map(families.Gamma()), form=form, step_size=step)
    objective = _gamma_objective(ad_backend.inner(ad_backend.asarray(_GAMMA_DATA)))
    state, info = rule.step(rule.init(start), objective)
    assert int(info.status) == Status.OK
    np.testing.assert_allclose(float(info.loss), _gamma_objective_np(alpha, beta), rtol=1e-12)
    new = rule.standard_params(state)
    ref_alpha, ref_beta = _gamma_reference(alpha, beta, step, form)
    np.testing.assert_allclose(float(new.shape), ref_alpha, rtol=1e-7)
    np.testing.assert_allclose(float(new.rate), ref_beta, rtol=1e-7)


def test_gamma_family_backtracking_stays_in_mean_domain(ad_backend):
    # A long MLE-form step leaves the Gamma mean domain (m₁ < log m₂); backtracking must
    # return a point inside it.
    start = families.GammaStandard(
        ad_backend.asarray(np.array(0.5)), ad_backend.asarray(np.array(5.0))
    )
    objective = _gamma_objective(ad_backend.inner(ad_backend.asarray(_GAMMA_DATA)))
    fixed = SNGD(identity_map(families.Gamma()), form="mle", step_size=50.0)
    _, info_fixed = fixed.step(fixed.init(start), objective)
    assert int(info_fixed.status) == Status.OUT_OF_DOMAIN
    rule = SNGD(
        identity_map(families.Gamma()), form="mle", step_size=50.0, line_search="backtracking"
    )
    state, info = rule.step(rule.init(start), objective)
    assert int(info.status) == Status.BACKTRACKED
    m1, m2 = (float(to_numpy(v)) for v in state.surrogate_params)
    assert m2 > 0 and m1 < np.log(m2)
    # twice the accepted step is outside the domain (computed independently in NumPy)
    eps = float(info.step_size)
    grad_eta = central_difference(
        lambda e: _gamma_objective_np(e[0] + 1.0, -e[1]), np.array([-0.5, -5.0])
    )
    mean0 = np.array([special.digamma(0.5) - np.log(5.0), 0.5 / 5.0])
    bigger = mean0 - 2 * eps * grad_eta
    assert not (bigger[1] > 0 and bigger[0] < np.log(bigger[1]))


@pytest.mark.parametrize("line_search", [None])  # backtracking under jit: tests/test_rules.py
def test_gaussian_family_sngd_jits_with_aux_adam(line_search):
    """jax.jit of a full SNGD step: real Gaussian family, an Exp auxiliary scale, Adam."""
    jax = pytest.importorskip("jax")
    from surrogate_natgrad.maps import Exp, SurrogateMap
    from surrogate_natgrad.rules import Adam

    data = jax.numpy.asarray(np.random.default_rng(0).normal(size=(30, 2)) * 1.5)

    def to_target(standard, aux):
        return (standard.mean, standard.cov * aux["scale"])

    scaled = SurrogateMap(families.Gaussian(2), to_target, aux_transforms={"scale": Exp()})
    rule = SNGD(
        scaled,
        step_size=8.0 if line_search else 0.5,
        line_search=line_search,
        aux_rule=Adam(step_size=0.1),
    )
    start = families.GaussianStandard(jax.numpy.asarray([3.0, -2.0]), jax.numpy.eye(2) * 4.0)
    state0 = rule.init(start, {"scale": jax.numpy.asarray(1.0)})
    objective = gaussian_nll(data)
    jitted = jax.jit(rule.make_step(objective))
    eager, jit_state = state0, state0
    for _ in range(2):
        eager, eager_info = rule.step(eager, objective)
        jit_state, jit_info = jitted(jit_state)
        assert int(jit_info.status) == int(eager_info.status)
        assert float(jit_info.step_size) == float(eager_info.step_size)
    for a, b in zip(
        jax.tree_util.tree_leaves(jit_state), jax.tree_util.tree_leaves(eager), strict=True
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)
    if line_search:
        assert int(eager_info.status) in (Status.OK, Status.BACKTRACKED)


def test_float32_is_kept(ad_backend):
    _, data = _make_data(ad_backend, 2)
    mean, cov, _ = _init_params(ad_backend, 2)
    start = families.GaussianStandard(
        ad_backend.asarray(mean.astype(np.float32)), ad_backend.asarray(cov.astype(np.float32))
    )
    data32 = ad_backend.asarray(to_numpy(data).astype(np.float32))
    rule = SNGD(identity_map(families.Gaussian(2)), step_size=0.5, line_search="backtracking")
    state, info = rule.step(rule.init(start), gaussian_nll(ad_backend.inner(data32)))
    for leaf in state.surrogate_params:
        assert "float32" in str(leaf.dtype)
    assert "float32" in str(info.step_size.dtype)
    assert int(info.status) == Status.OK
