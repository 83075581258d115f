"""The fast negative-binomial fit path against independent references.

Covers the pieces that make E1 fast and its JAX steps compile quickly: the gamma
mean → natural solve (Newton in 1/α, a compiled ``while_loop`` under ``jax.jit``, a small
value memo on NumPy), the restructured NB mean NLL, the grid line search that solves once
per batch of candidates, and the whole default fit. References: ``scipy.optimize.brentq``
on ``ψ(α) - log α = -s`` (residual in 30-digit arithmetic), ``scipy.stats.nbinom`` and
``scipy.optimize.minimize`` on the NB negative log-likelihood. No timing assertions.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

from surrogate_natgrad import experiments, fit, rules
from surrogate_natgrad._compat.control_flow import while_loop
from surrogate_natgrad.distributions import NegativeBinomial
from surrogate_natgrad.families import Gamma, GammaMean
from surrogate_natgrad.families.gamma import _solve_shape
from tests.helpers import to_numpy

mpmath = pytest.importorskip("mpmath")

# Gaps s = log E x - E log x from nearly deterministic (α ~ 5e7) to very skewed (α ~ 1e-3).
GAPS = np.array([1e-8, 3e-6, 1e-4, 2e-3, 0.05, 0.3, 1.0, 2.5, 7.0, 40.0, 700.0])


def _brentq_shape(gap: float) -> float:
    """Root of ψ(α) - log α + s = 0 by brentq, the residual evaluated in 30 digits."""

    def residual(alpha: float) -> float:
        with mpmath.workdps(30):
            a = mpmath.mpf(alpha)
            return float(mpmath.digamma(a) - mpmath.log(a) + mpmath.mpf(gap))

    # 1/(2α) < log α - ψ(α) < 1/α brackets the root in [1/(2s), 1/s].
    return scipy.optimize.brentq(residual, 0.5 / gap, 1.0 / gap, xtol=1e-300, rtol=1e-15)


@pytest.fixture(scope="module")
def reference_shapes() -> np.ndarray:
    return np.array([_brentq_shape(float(gap)) for gap in GAPS])


def _mean_params(xp, means: np.ndarray):
    # E x = m and E log x = log m - s, so that the gap is s whatever the scale m.
    mean = xp.asarray(means, dtype=xp.float64)
    mean_log = xp.asarray(np.log(means) - GAPS, dtype=xp.float64)
    return mean_log, mean


def test_shape_solve_matches_brentq(ad_xp, reference_shapes):
    # Unit means: the gap is exact in floating point, so the root is known to ~eps.
    mean_log, mean = _mean_params(ad_xp, np.ones_like(GAPS))
    shape = Gamma().mean_to_standard(GammaMean(mean_log, mean)).shape
    assert type(shape) is type(mean)
    np.testing.assert_allclose(to_numpy(shape), reference_shapes, rtol=5e-14)


def test_shape_solve_under_jit_matches_brentq(reference_shapes):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    family = Gamma()

    def shape_and_slope(mean_log, mean):
        shape = family.mean_to_standard(GammaMean(mean_log, mean)).shape
        # dα/d(E log x) by the implicit-function theorem: 1 / (ψ'(α) - 1/α).
        slope = jax.grad(lambda m: jnp.sum(family.mean_to_standard(GammaMean(m, mean)).shape))
        return shape, slope(mean_log)

    mean_log, mean = _mean_params(jnp, np.ones_like(GAPS))
    shape, slope = jax.jit(shape_and_slope)(mean_log, mean)
    np.testing.assert_allclose(np.asarray(shape), reference_shapes, rtol=5e-14)
    expected_slope = 1.0 / (scipy.special.polygamma(1, reference_shapes) - 1.0 / reference_shapes)
    # polygamma(1, α) - 1/α cancels for large α: compare where scipy is accurate.
    moderate = reference_shapes < 1e3
    np.testing.assert_allclose(np.asarray(slope)[moderate], expected_slope[moderate], rtol=1e-9)


def test_shape_solve_compiles_to_one_while_loop():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    mean_log, mean = _mean_params(jnp, np.ones_like(GAPS))
    jaxpr = jax.make_jaxpr(_solve_shape)(mean_log, mean)
    text = str(jaxpr)
    assert "while" in text
    # The unrolled 60-iteration loop had thousands of equations; the loop body appears once.
    assert text.count("\n") < 2000


def test_shape_solve_scaled_means_and_float32(ad_backend, reference_shapes):
    xp = ad_backend.xp
    means = np.geomspace(1e-3, 1e5, GAPS.size)
    mean_log, mean = _mean_params(xp, means)
    shape = to_numpy(Gamma().mean_to_standard(GammaMean(mean_log, mean)).shape)
    # log m - s loses the low digits of s when s << log m: the root moves accordingly.
    exact_gaps = np.log(means) - to_numpy(mean_log)
    conditioned = np.array([_brentq_shape(float(gap)) for gap in exact_gaps])
    np.testing.assert_allclose(shape, conditioned, rtol=1e-11)
    moderate = (GAPS >= 1e-3) & (GAPS <= 100)
    single = Gamma().mean_to_standard(
        GammaMean(
            ad_backend.asarray(-GAPS[moderate], dtype=xp.float32),
            ad_backend.asarray(np.ones(int(moderate.sum())), dtype=xp.float32),
        )
    )
    assert single.shape.dtype == xp.float32
    np.testing.assert_allclose(to_numpy(single.shape), reference_shapes[moderate], rtol=2e-5)


def test_shape_solve_memo_follows_the_values():
    # The NumPy memo compares values: writing into an input array must not return the
    # answer for the old values.
    mean_log, mean = np.array([-0.3]), np.array([1.0])
    first = _solve_shape(mean_log, mean).copy()
    mean_log[0] = -2.5
    second = _solve_shape(mean_log, mean)
    np.testing.assert_allclose(first, [_brentq_shape(0.3)], rtol=5e-14)
    np.testing.assert_allclose(second, [_brentq_shape(2.5)], rtol=5e-14)
    second[0] = 0.0  # the caller owns the result: the memo keeps its own copy
    np.testing.assert_allclose(_solve_shape(mean_log, mean), [_brentq_shape(2.5)], rtol=5e-14)


def test_while_loop_stops_early_and_matches_python():
    calls = []

    def body(state):
        calls.append(1)
        return state[0] * 2.0, state[1] + 1

    final = while_loop(lambda s: bool(np.any(s[0] < 100)), body, (np.array([3.0]), 0), max_iter=50)
    assert final[1] == 6 and len(calls) == 6
    capped = while_loop(lambda s: True, body, (np.array([3.0]), 0), max_iter=4)
    assert capped[1] == 4


def test_nb_mean_nll_matches_scipy(backend):
    xp = backend.xp
    rng = np.random.default_rng(3)
    counts = rng.negative_binomial(4, 0.2, size=300).astype(float)
    values, frequencies = np.unique(counts, return_counts=True)
    n = np.array([0.7, 4.0, 25.0, 3.0])
    p = np.array([0.05, 0.2, 0.6, 1.0])
    expected = np.array([-scipy.stats.nbinom.logpmf(counts, a, b).mean() for a, b in zip(n, p)])
    got = NegativeBinomial.mean_nll(
        {"n": backend.asarray(n), "p": backend.asarray(p)},
        backend.asarray(values),
        backend.asarray(frequencies.astype(float)),
        max_elements=2 * values.size,  # evaluate the batch in chunks of two sets
    )
    assert type(got) is type(backend.asarray(n))
    np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-12)
    single = NegativeBinomial.mean_nll(
        {"n": backend.asarray(n[1]), "p": backend.asarray(p[1])}, backend.asarray(counts)
    )
    np.testing.assert_allclose(float(single), expected[1], rtol=1e-12)
    # p = 1 is the point mass at 0: zero loss on all-zero data.
    zeros = NegativeBinomial.mean_nll(
        {"n": backend.asarray(2.0), "p": backend.asarray(1.0)}, backend.asarray(np.zeros(4))
    )
    assert float(zeros) == pytest.approx(0.0, abs=1e-12)
    del xp


def test_grid_step_shares_one_solve_and_matches_unbatched_grid():
    problem = experiments.get("E1", size="paper")
    values, frequencies = np.unique(np.asarray(problem.data, dtype=float), return_counts=True)
    frequencies = frequencies.astype(float)

    def objective(target):
        return NegativeBinomial.mean_nll(target, values, frequencies)

    init = {k: np.asarray(v, dtype=float) for k, v in problem.init.items()}
    surrogate_map = NegativeBinomial.surrogate_map()
    steps = {}
    for batched in (True, False):
        rule = rules.SNGD(
            surrogate_map, line_search="grid", grid_size=200, objective_batched=batched
        )
        state = rule.init_from_target(init)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            new_state, info = rule.step(state, objective)
        steps[batched] = (float(info.step_size), float(objective(rule.target_params(new_state))))
    assert steps[True][0] == pytest.approx(steps[False][0], rel=1e-12)
    assert steps[True][1] == pytest.approx(steps[False][1], rel=1e-12)


def _scipy_nb_fit(counts: np.ndarray) -> tuple[np.ndarray, float]:
    """Maximum likelihood of NB(n, p) by scipy.optimize on the profile likelihood.

    For fixed n the likelihood is maximal at ``p = n / (n + mean)`` (its score in p is
    ``n/p - mean/(1 - p)``); a bounded scalar minimisation over ``log n`` does the rest.
    """
    mean = counts.mean()

    def nll(log_n: float) -> float:
        n = np.exp(log_n)
        return -float(np.mean(scipy.stats.nbinom.logpmf(counts, n, n / (n + mean))))

    best = scipy.optimize.minimize_scalar(
        nll, bounds=(np.log(0.1), np.log(100.0)), method="bounded", options={"xatol": 1e-12}
    )
    n = float(np.exp(best.x))
    return np.array([n, n / (n + mean)]), float(best.fun)


@pytest.fixture(scope="module")
def e1_reference():
    problem = experiments.get("E1", size="paper")
    counts = np.asarray(problem.data)
    return problem, _scipy_nb_fit(counts)


@pytest.mark.parametrize("line_search", ["auto", "backtracking"])
def test_e1_fit_matches_scipy_optimum(e1_reference, line_search):
    problem, (expected_params, expected_loss) = e1_reference
    result = fit(problem.distribution, problem.data, init=problem.init, line_search=line_search)
    assert result.converged
    assert result.n_iter <= 10
    # Same optimum: the loss to 1e-12 relative, the parameters to what the flat optimum
    # determines (the Hessian's smallest eigenvalue bounds them by about 1e-6).
    assert result.loss == pytest.approx(expected_loss, rel=1e-12)
    assert result.loss <= expected_loss + 1e-12 * abs(expected_loss)
    got = np.array([float(result.params["n"]), float(result.params["p"])])
    np.testing.assert_allclose(got, expected_params, rtol=2e-6)


@pytest.mark.parametrize(
    "library",
    # Eager JAX compiles every new operation on first use: about 15 s for a whole fit.
    ["torch", pytest.param("jax", marks=pytest.mark.slow)],
)
def test_e1_fit_on_torch_and_jax_matches_scipy(library, e1_reference):
    problem, (expected_params, expected_loss) = e1_reference
    counts = np.asarray(problem.data, dtype=float)
    if library == "torch":
        torch = pytest.importorskip("torch")
        data = torch.asarray(counts)
    else:
        jnp = pytest.importorskip("jax.numpy")
        data = jnp.asarray(counts)
    # Backtracking keeps eager JAX quick; the grid's shared solve is checked on NumPy above.
    result = fit(problem.distribution, data, init=problem.init, line_search="backtracking")
    assert result.converged
    assert type(result.params["n"]) is type(data)
    assert result.loss == pytest.approx(expected_loss, rel=1e-12)
    got = np.array([float(result.params["n"]), float(result.params["p"])])
    np.testing.assert_allclose(got, expected_params, rtol=2e-6)
