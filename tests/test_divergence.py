"""Divergence handling of every update rule and of ``fit``, and determinism per backend.

Contract checked here (see :class:`surrogate_natgrad.rules.Status`):

- a step whose candidate leaves the domain or makes the loss non-finite is either taken back
  by backtracking (status ``BACKTRACKED``, a finite and lower loss) or refused (status
  ``OUT_OF_DOMAIN``, ``NONFINITE`` or ``STEP_REJECTED``) with the state unchanged;
- a rule never returns NaN parameters;
- ``fit`` stops with ``converged=False``, a status and a message saying why, a
  :class:`~surrogate_natgrad.errors.ConvergenceWarning`, and finite parameters whose reported
  loss is the (independently computed) NLL there.

Determinism: the same seed gives bit-identical minibatch fits and negative binomial samples on
each backend.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats as st

from surrogate_natgrad import random, rules
from surrogate_natgrad._compat import namespace
from surrogate_natgrad.distributions import NegativeBinomial, NegativeBinomialMixture
from surrogate_natgrad.errors import ConvergenceWarning
from surrogate_natgrad.fitting import fit
from tests.conftest import Backend
from tests.helpers import to_numpy

Status = rules.Status
COUNTS = np.random.default_rng(271828).negative_binomial(5, 0.3, size=300)


def barrier(x):
    """``Σ (x - 3)² - log(2 - x)``: finite only for ``x < 2`` (NaN beyond); minimum near 1.6."""
    xp = namespace(x)
    return xp.sum((x - 3.0) ** 2 - xp.log(2.0 - x))


def nan_everywhere(x):
    """A loss that is NaN at every point (a broken objective)."""
    xp = namespace(x)
    return xp.sum(x * x) * float("nan")


def cliff(x):
    """``-Σx + Σ(10²⁰⁰ x)²``: finite at 0 but infinite at every candidate step away from it."""
    xp = namespace(x)
    return xp.sum((x * 1e200) ** 2) - xp.sum(x)


def _is_finite(tree) -> bool:
    leaves = tree.values() if isinstance(tree, dict) else [tree]
    return all(np.all(np.isfinite(to_numpy(leaf))) for leaf in leaves)


def _params_of(state):
    return state.params


@pytest.fixture(params=["numpy", "torch"])
def rule_backend(request) -> Backend:
    """Backends for the rule-level checks (JAX's eager first calls are slow; the rules'
    own tests cover JAX, and the determinism checks below run on it)."""
    return Backend(request.param)


@pytest.fixture(params=["numpy", "torch", pytest.param("jax", marks=pytest.mark.slow)])
def seeded_backend(request) -> Backend:
    """Backends of the determinism checks. JAX's first eager calls compile every operation
    (about 200 XLA compilations for one minibatch fit), hence the ``slow`` mark."""
    return Backend(request.param)


@pytest.fixture(autouse=True)
def _quiet():
    # NumPy warns when the barrier is evaluated outside its domain; that is the point here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _ngd_rule(**options):
    def log_prob(params, samples):
        return -0.5 * (samples - params) ** 2

    generator = {}

    def sampler(params, n_samples):
        rng = generator.setdefault("rng", random.default_rng(0, like=params))
        return rng.normal((n_samples,), dtype=params.dtype) + params[0]

    return rules.NaturalGradientDescent(log_prob, sampler, n_samples=200, **options)


RULES_WITH_BACKTRACKING = {
    "gd": lambda: rules.GradientDescent(step_size=10.0, line_search="backtracking"),
    "bfgs": lambda: rules.BFGS(step_size=10.0, line_search="backtracking"),
    "ngd": lambda: _ngd_rule(step_size=10.0, line_search="backtracking"),
}


# ------------------------------------------------------------------------------ rules, directly


@pytest.mark.parametrize("name", sorted(RULES_WITH_BACKTRACKING))
def test_backtracking_takes_back_a_step_that_leaves_the_domain(rule_backend, name):
    rule = RULES_WITH_BACKTRACKING[name]()
    start = rule_backend.asarray([0.0])
    state = rule.init(start)
    # The full step (size 10 along -grad = +5.5) would land at x = 55, where the loss is NaN.
    new_state, info = rule.step(state, barrier)
    assert int(info.status) == Status.BACKTRACKED
    assert 0.0 < float(info.step_size) < 10.0
    x = to_numpy(_params_of(new_state))
    assert np.all(np.isfinite(x)) and np.all(x < 2.0)
    assert float(barrier(_params_of(new_state))) < float(info.loss)
    np.testing.assert_array_equal(to_numpy(start), [0.0])


@pytest.mark.parametrize(
    "make_rule",
    [
        lambda: rules.GradientDescent(step_size=0.1),
        lambda: rules.GradientDescent(step_size=0.1, line_search="grid", grid_size=10),
        lambda: rules.Adam(step_size=0.1),
        lambda: rules.BFGS(),
        lambda: _ngd_rule(step_size=0.1),
    ],
    ids=["gd", "gd-grid", "adam", "bfgs", "ngd"],
)
def test_nonfinite_loss_stops_with_status_and_keeps_the_state(rule_backend, make_rule):
    rule = make_rule()
    start = rule_backend.asarray([0.5])
    state = rule.init(start)
    new_state, info = rule.step(state, nan_everywhere)
    assert int(info.status) == Status.NONFINITE
    assert float(info.step_size) == 0.0
    np.testing.assert_array_equal(to_numpy(_params_of(new_state)), [0.5])


@pytest.mark.parametrize(
    "make_rule",
    [
        lambda: rules.GradientDescent(step_size=1.0, line_search="backtracking"),
        lambda: rules.BFGS(step_size=1.0),
    ],
    ids=["gd", "bfgs"],
)
def test_exhausted_backtracking_is_rejected_without_moving(make_rule):
    rule = make_rule()
    state = rule.init(np.array([0.0]))
    new_state, info = rule.step(state, cliff)
    assert int(info.status) == Status.STEP_REJECTED
    np.testing.assert_array_equal(new_state.params, [0.0])
    assert float(info.loss) == 0.0


def test_fixed_step_that_overflows_is_refused():
    rule = rules.GradientDescent(step_size=1e300)
    state = rule.init(np.array([1.0]))
    new_state, info = rule.step(state, lambda x: (x * x).sum() * 1e10)
    assert int(info.status) == Status.NONFINITE
    np.testing.assert_array_equal(new_state.params, [1.0])


@pytest.mark.parametrize(
    "make_rule",
    [lambda: rules.GradientDescent(step_size=10.0), lambda: rules.Adam(step_size=2.0)],
    ids=["gd", "adam"],
)
def test_fixed_step_rules_stop_at_the_first_nonfinite_loss(rule_backend, make_rule):
    # Without a line search the rule cannot see that x = 55 (GD) or x = 2.5 (Adam) is outside
    # the domain; the next step evaluates a NaN loss, reports NONFINITE and keeps the
    # (finite) state, so a driver can go back to the previous point.
    rule = make_rule()
    state = rule.init(rule_backend.asarray([0.5]))
    state, info = rule.step(state, barrier)
    assert int(info.status) == Status.OK
    outside = to_numpy(state.params)
    assert np.all(outside > 2.0)
    again, info = rule.step(state, barrier)
    assert int(info.status) == Status.NONFINITE
    assert math.isnan(float(info.loss))
    np.testing.assert_array_equal(to_numpy(again.params), outside)
    if isinstance(rule, rules.Adam):
        # The moments are not updated with a NaN gradient either.
        for new, old in zip(again.moments, state.moments, strict=True):
            np.testing.assert_array_equal(to_numpy(new), to_numpy(old))


def _sngd_setup(backend, **options):
    rule = rules.SNGD(NegativeBinomial.surrogate_map(), **options)
    data = backend.asarray(COUNTS.astype(float))
    start = {"n": backend.asarray(3.0), "p": backend.asarray(0.3)}
    state = rule.init_from_target(start)
    return rule, state, lambda target: NegativeBinomial.mean_nll(target, data)


def test_sngd_fixed_step_out_of_the_mean_domain_is_refused(rule_backend):
    rule, state, objective = _sngd_setup(rule_backend, step_size=50.0, line_search=None)
    new_state, info = rule.step(state, objective)
    assert int(info.status) == Status.OUT_OF_DOMAIN
    for new, old in zip(new_state.surrogate_params, state.surrogate_params, strict=True):
        np.testing.assert_array_equal(to_numpy(new), to_numpy(old))


def test_sngd_backtracking_stays_in_the_mean_domain(rule_backend):
    rule, state, objective = _sngd_setup(rule_backend, step_size=50.0, line_search="backtracking")
    new_state, info = rule.step(state, objective)
    assert int(info.status) == Status.BACKTRACKED
    family = rule.surrogate_map.family
    assert bool(np.all(to_numpy(family.in_mean_domain(new_state.surrogate_params))))
    target = rule.target_params(new_state)
    assert _is_finite(target)
    n, p = float(target["n"]), float(target["p"])
    assert n > 0 and 0 < p < 1


def test_sngd_nonfinite_objective_keeps_the_state():
    rule, state, _ = _sngd_setup(_NumpyBackend(), step_size=1.0)
    new_state, info = rule.step(state, lambda target: target["n"] * float("nan"))
    assert int(info.status) == Status.NONFINITE
    for new, old in zip(new_state.surrogate_params, state.surrogate_params, strict=True):
        np.testing.assert_array_equal(new, old)


class _NumpyBackend:
    def asarray(self, value):
        return np.asarray(value, dtype=np.float64)


# ------------------------------------------------------------------------------ fit


DIVERGING_FITS = {
    "sngd": dict(line_search=None, step_size=50.0),
    "gd": dict(line_search=None, step_size=1e4),
    "adam": dict(line_search=None, step_size=50.0),
    "bfgs": dict(line_search=None, step_size=1e4),
    "ngd": dict(line_search=None, step_size=1e4, mc_samples=300),
}


@pytest.mark.parametrize("method", sorted(DIVERGING_FITS))
def test_fit_divergence_returns_last_good_parameters_with_a_warning(method):
    with pytest.warns(ConvergenceWarning, match=r"did not converge") as caught:
        result = fit(
            NegativeBinomial, COUNTS, method=method, max_iter=30, seed=0, **DIVERGING_FITS[method]
        )
    assert not result.converged
    assert result.status in ("nonfinite", "step_rejected")
    assert result.message and result.message in str(caught[-1].message)
    n, p = float(result.params["n"]), float(result.params["p"])
    assert math.isfinite(n) and n > 0 and 0 < p < 1
    # The reported loss is the NLL at the returned parameters (scipy, independently).
    reference = -st.nbinom.logpmf(COUNTS, n, p).mean()
    assert math.isfinite(result.loss)
    np.testing.assert_allclose(result.loss, reference, rtol=1e-10)
    assert result.history.loss.shape[0] == len(result.history.status)


def test_fit_nonfinite_message_names_the_cause():
    with pytest.warns(ConvergenceWarning):
        result = fit(NegativeBinomial, COUNTS, method="gd", line_search=None, step_size=1e4)
    assert result.status == "nonfinite"
    assert "non-finite" in result.message


def test_fit_step_rejected_message_names_the_cause():
    with pytest.warns(ConvergenceWarning):
        result = fit(NegativeBinomial, COUNTS, method="sngd", line_search=None, step_size=50.0)
    assert result.status == "step_rejected"
    assert "acceptable step" in result.message


# ------------------------------------------------------------------------------ determinism


def _minibatch_fit(data, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(NegativeBinomial, data, batch_size=40, max_iter=6, eval_every=3, seed=seed)


def test_minibatch_fit_is_bit_identical_for_a_seed(seeded_backend):
    data = seeded_backend.asarray(COUNTS.astype(float))
    first, second = _minibatch_fit(data, 17), _minibatch_fit(data, 17)
    for name in ("n", "p"):
        np.testing.assert_array_equal(to_numpy(first.params[name]), to_numpy(second.params[name]))
    np.testing.assert_array_equal(first.history.loss, second.history.loss)
    other = _minibatch_fit(data, 18)
    assert float(to_numpy(other.params["n"])) != float(to_numpy(first.params["n"]))


def test_negative_binomial_sampling_is_bit_identical_for_a_seed(ad_backend):
    backend = ad_backend
    dist = NegativeBinomial(backend.asarray([2.5, 40.0]), backend.asarray([0.3, 0.9]))
    first = to_numpy(dist.sample(200, seed=11))
    second = to_numpy(dist.sample(200, seed=11))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, to_numpy(dist.sample(200, seed=12)))
    # Sanity: the draws follow the distribution (means within five standard errors).
    expected = st.nbinom.mean([2.5, 40.0], [0.3, 0.9])
    stderr = np.sqrt(st.nbinom.var([2.5, 40.0], [0.3, 0.9]) / 200)
    np.testing.assert_array_less(np.abs(first.mean(axis=0) - expected), 5 * stderr)


def test_mixture_sampling_is_bit_identical_for_a_seed(rule_backend):
    dist = NegativeBinomialMixture(
        rule_backend.asarray([0.3, 0.7]),
        rule_backend.asarray([2.0, 8.0]),
        rule_backend.asarray([0.5, 0.2]),
    )
    first, second = dist.sample(200, seed=4), dist.sample(200, seed=4)
    np.testing.assert_array_equal(to_numpy(first), to_numpy(second))
