"""MultivariateT and TCopula: densities, gradients, samplers, validation, maps and E5.

References are independent: ``scipy.stats.multivariate_t`` and ``scipy.stats.t`` (the
copula is built from ``multivariate_t.logpdf`` at ``t.ppf(u)`` minus ``t.logpdf``), finite
differences of those SciPy densities, ``scipy.stats.rankdata``/``kendalltau``/``kstest``
and closed-form moments.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st

from surrogate_natgrad import autodiff
from surrogate_natgrad.distributions import (
    MultivariateT,
    TCopula,
    kendall_tau,
    pseudo_observations,
)
from surrogate_natgrad.distributions._t_maps import (
    cov_to_corr,
    multivariate_t_gaussian_map,
    multivariate_t_mcef_map,
    t_copula_map,
)
from surrogate_natgrad.errors import DataError, DomainError
from surrogate_natgrad.experiments import get
from tests.helpers import central_difference, to_numpy

SHAPE = np.array([[2.0, 0.6, -0.3], [0.6, 1.5, 0.2], [-0.3, 0.2, 0.8]])
LOC = np.array([0.5, -1.0, 2.0])
CORR = np.array([[1.0, 0.6, -0.3], [0.6, 1.0, 0.25], [-0.3, 0.25, 1.0]])


def _scipy_copula_logpdf(u: np.ndarray, corr: np.ndarray, df: float) -> np.ndarray:
    x = st.t.ppf(u, df)
    joint = st.multivariate_t(np.zeros(corr.shape[0]), corr, df=df).logpdf(x)
    return joint - st.t.logpdf(x, df).sum(axis=-1)


def _points(count: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.02, 0.98, size=(count, dim))


# ----------------------------------------------------------------------------------------
# Log-densities against SciPy, every namespace
# ----------------------------------------------------------------------------------------


def test_multivariate_t_log_prob_matches_scipy(backend):
    x = np.random.default_rng(0).normal(size=(6, 3)) * 2.0
    dist = MultivariateT(backend.asarray(LOC), backend.asarray(SHAPE), backend.asarray(4.5))
    got = dist.log_prob(backend.asarray(x))
    expected = st.multivariate_t(LOC, SHAPE, df=4.5).logpdf(x)
    np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-10, atol=1e-10)
    # One point (no data axis) and the mean NLL of the rows.
    single = dist.log_prob(backend.asarray(x[0]))
    assert tuple(single.shape) == ()
    np.testing.assert_allclose(float(single), expected[0], rtol=1e-10)
    nll = MultivariateT.mean_nll(dist.params, backend.asarray(x))
    np.testing.assert_allclose(float(nll), -expected.mean(), rtol=1e-10)


def test_multivariate_t_batched_parameters_match_scipy():
    x = np.random.default_rng(1).normal(size=(5, 3))
    dfs = np.array([1.5, 3.0, 30.0])
    shapes = np.stack([SHAPE, 2.0 * SHAPE, np.eye(3)])
    locs = np.stack([LOC, -LOC, np.zeros(3)])
    params = {"loc": locs, "shape": shapes, "df": dfs}
    got = MultivariateT.mean_nll(params, x)
    expected = [
        -st.multivariate_t(locs[k], shapes[k], df=dfs[k]).logpdf(x).mean() for k in range(3)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # Broadcasting form: one point per parameter set.
    pointwise = MultivariateT.log_prob_from_params(params, x[:3])
    expected_pointwise = [
        st.multivariate_t(locs[k], shapes[k], df=dfs[k]).logpdf(x[k]) for k in range(3)
    ]
    np.testing.assert_allclose(pointwise, expected_pointwise, rtol=1e-10)


def test_multivariate_t_float32_stays_float32():
    dist = MultivariateT(LOC.astype(np.float32), SHAPE.astype(np.float32), np.float32(5.0))
    x = np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32)
    out = dist.log_prob(x)
    assert out.dtype == np.float32
    expected = st.multivariate_t(LOC, SHAPE, df=5.0).logpdf(x.astype(np.float64))
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_t_copula_log_prob_matches_scipy(backend):
    if backend.name == "jax":
        pytest.skip(
            "JAX compiles the generic t quantile for ~10 s; its value is checked "
            "in the gradient test"
        )
    # The generic (non-SciPy) t quantile is slow: few points off NumPy.
    count = 8 if backend.name == "numpy" else 3
    u = _points(count, 3, 3)
    copula = TCopula(backend.asarray(CORR), backend.asarray(4.0))
    got = copula.log_prob(backend.asarray(u))
    np.testing.assert_allclose(
        to_numpy(got), _scipy_copula_logpdf(u, CORR, 4.0), rtol=1e-10, atol=1e-10
    )


def test_t_copula_batched_df_and_corr_match_scipy():
    u = _points(6, 3, 4)
    corrs = np.stack([CORR, np.eye(3)])
    dfs = np.array([2.5, 40.0])
    got = TCopula.mean_nll({"corr": corrs, "df": dfs}, u)
    expected = [-_scipy_copula_logpdf(u, corrs[k], dfs[k]).mean() for k in range(2)]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # A shared df with a batch of correlation matrices (the grid line search).
    shared = TCopula.mean_nll({"corr": corrs, "df": np.asarray(6.0)}, u)
    expected_shared = [-_scipy_copula_logpdf(u, corrs[k], 6.0).mean() for k in range(2)]
    np.testing.assert_allclose(shared, expected_shared, rtol=1e-10)


# ----------------------------------------------------------------------------------------
# Gradients against finite differences of the SciPy densities
# ----------------------------------------------------------------------------------------


def test_multivariate_t_gradient_matches_finite_differences(ad_backend):
    x = np.random.default_rng(5).normal(size=(7, 3))
    xs = ad_backend.asarray(x)
    ad = autodiff.get_backend(None, xs)
    # the differentiated function sees its data as torch views under a bridge
    xs_ad = ad_backend.inner(xs)

    def loss(params):
        return MultivariateT.mean_nll(params, xs_ad)

    params = {
        "loc": ad_backend.asarray(LOC),
        "shape": ad_backend.asarray(SHAPE),
        "df": ad_backend.asarray(3.5),
    }
    _, grads = ad.value_and_grad(loss)(params)

    def reference(loc, shape, df):
        return -st.multivariate_t(loc, (shape + shape.T) / 2, df=df).logpdf(x).mean()

    expected_loc = central_difference(lambda v: reference(v, SHAPE, 3.5), LOC)
    expected_df = central_difference(lambda v: reference(LOC, SHAPE, float(v)), np.asarray(3.5))
    expected_shape = central_difference(lambda v: reference(LOC, v, 3.5), SHAPE)
    np.testing.assert_allclose(to_numpy(grads["loc"]), expected_loc, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(to_numpy(grads["df"]), expected_df, rtol=1e-6, atol=1e-8)
    # The density depends on the symmetric part only: compare symmetrised gradients.
    got_shape = to_numpy(grads["shape"])
    np.testing.assert_allclose(
        (got_shape + got_shape.T) / 2,
        (expected_shape + expected_shape.T) / 2,
        rtol=1e-6,
        atol=1e-8,
    )


@pytest.fixture(params=["numpy", "torch"])
def copula_ad_backend(request):
    """Autograd and torch. (JAX compiles the generic t quantile for ~25 s; the JAX
    derivatives of ``special.stdtrit`` in ``df`` are checked in ``tests/test_special.py``.)"""
    from tests.conftest import Backend

    return Backend(request.param)


def test_t_copula_gradient_including_df_matches_finite_differences(copula_ad_backend):
    ad_backend = copula_ad_backend
    count = 6 if ad_backend.name == "numpy" else 2
    corr = CORR[:2, :2]
    u = _points(count, 2, 6)
    us = ad_backend.asarray(u)
    ad = autodiff.get_backend(None, us)

    def loss(params):
        return TCopula.mean_nll(params, us)

    params = {"corr": ad_backend.asarray(corr), "df": ad_backend.asarray(4.0)}
    value, grads = ad.value_and_grad(loss)(params)
    np.testing.assert_allclose(float(value), -_scipy_copula_logpdf(u, corr, 4.0).mean(), rtol=1e-10)

    def reference(rho, df):
        matrix = np.array([[1.0, rho], [rho, 1.0]])
        return -_scipy_copula_logpdf(u, matrix, df).mean()

    expected_df = central_difference(lambda v: reference(0.6, float(v)), np.asarray(4.0))
    expected_rho = central_difference(lambda v: reference(float(v), 4.0), np.asarray(0.6))
    np.testing.assert_allclose(to_numpy(grads["df"]), expected_df, rtol=1e-6, atol=1e-9)
    got_corr = to_numpy(grads["corr"])
    # ρ sits in two (symmetric) entries.
    np.testing.assert_allclose(got_corr[0, 1] + got_corr[1, 0], expected_rho, rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------------------
# Samplers
# ----------------------------------------------------------------------------------------


def test_multivariate_t_sample_covariance_within_five_standard_errors():
    df = 10.0  # finite fourth moments, so the sample covariance has a standard error
    dist = MultivariateT(LOC, SHAPE, df)
    draws = dist.sample(100_000, seed=7)
    assert draws.shape == (100_000, 3)
    centred = draws - LOC
    products = centred[:, :, None] * centred[:, None, :]
    estimate = products.mean(axis=0)
    standard_error = products.std(axis=0) / np.sqrt(draws.shape[0])
    expected = SHAPE * df / (df - 2.0)
    np.testing.assert_allclose(dist.cov(), expected, rtol=1e-12)
    assert np.all(np.abs(estimate - expected) <= 5 * standard_error)
    mean_error = draws.std(axis=0) / np.sqrt(draws.shape[0])
    assert np.all(np.abs(draws.mean(axis=0) - LOC) <= 5 * mean_error)


def test_samplers_keep_namespace_dtype_and_are_seeded(backend):
    if backend.name == "jax":
        pytest.skip("JAX's gamma sampler compiles for ~10 s; covered in tests/test_random.py")
    dist = MultivariateT(backend.asarray(LOC), backend.asarray(SHAPE), backend.asarray(6.0))
    first = dist.sample((4, 2), seed=11)
    assert tuple(first.shape) == (4, 2, 3)
    assert type(first) is type(backend.asarray(LOC))
    np.testing.assert_array_equal(to_numpy(first), to_numpy(dist.sample((4, 2), seed=11)))
    if backend.name in ("numpy", "torch"):
        copula = TCopula(backend.asarray(CORR), backend.asarray(6.0))
        u = to_numpy(copula.sample(3, seed=12))
        assert u.shape == (3, 3)
        assert np.all((u > 0) & (u < 1))


def test_t_copula_samples_have_uniform_margins_and_kendall_tau():
    copula = TCopula(CORR, 4.0)
    u = copula.sample(3000, seed=13)
    for column in range(3):
        assert st.kstest(u[:, column], "uniform").pvalue > 1e-3
    np.testing.assert_allclose(copula.mean(), 0.5)
    np.testing.assert_allclose(copula.var(), 1.0 / 12.0)
    # For every elliptical copula Kendall's tau is (2/π) arcsin(ρ); SE of tau ≈ 0.012 here.
    tau = st.kendalltau(u[:, 0], u[:, 1]).statistic
    assert abs(tau - 2.0 / np.pi * np.arcsin(CORR[0, 1])) < 5 * 0.012


# ----------------------------------------------------------------------------------------
# Rank statistics and the data-driven starts
# ----------------------------------------------------------------------------------------


def test_pseudo_observations_and_kendall_tau_match_scipy(backend):
    raw = np.random.default_rng(14).normal(size=(40, 3))
    raw[:, 1] = np.round(raw[:, 1] + raw[:, 0], 1)  # ties and dependence
    got = to_numpy(pseudo_observations(backend.asarray(raw)))
    expected = st.rankdata(raw, axis=0) / (raw.shape[0] + 1)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    distinct = np.random.default_rng(15).normal(size=(30, 3))
    distinct[:, 2] += distinct[:, 0]
    tau = to_numpy(kendall_tau(backend.asarray(distinct)))
    for j in range(3):
        for k in range(3):
            reference = st.kendalltau(distinct[:, j], distinct[:, k]).statistic
            np.testing.assert_allclose(tau[j, k], reference, atol=1e-12)


def test_from_data_starts_are_valid_and_close():
    truth = TCopula(CORR, 5.0)
    u = truth.sample(2000, seed=16)
    start = TCopula.from_data(u)
    TCopula.check_start(start.params)
    # Kendall's tau of 2000 draws gives each correlation to about ±0.02.
    assert np.max(np.abs(start.params["corr"] - CORR)) < 0.1
    assert 2.5 <= float(start.params["df"]) <= 15.0
    draws = MultivariateT(LOC, SHAPE, 6.0).sample(5000, seed=17)
    mvt = MultivariateT.from_data(draws)
    MultivariateT.check_start(mvt.params)
    np.testing.assert_allclose(mvt.params["loc"], LOC, atol=0.1)
    assert 3.0 <= float(mvt.params["df"]) <= 20.0


# ----------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------


def test_parameter_validation_names_value_and_index():
    with pytest.raises(DomainError, match=r"'df'.*-1.0"):
        MultivariateT(LOC, SHAPE, -1.0)
    with pytest.raises(DomainError, match=r"'shape'.*positive definite"):
        MultivariateT(LOC, np.array([[1.0, 2.0, 0], [2.0, 1.0, 0], [0, 0, 1.0]]), 3.0)
    asymmetric = SHAPE.copy()
    asymmetric[0, 1] += 0.1
    with pytest.raises(DomainError, match=r"'shape'.*symmetric.*index \(0, 1\)"):
        MultivariateT(LOC, asymmetric, 3.0)
    with pytest.raises(DomainError, match=r"3 x 3"):
        MultivariateT(LOC, np.eye(2), 3.0)
    with pytest.raises(DomainError, match=r"'loc'.*nan"):
        MultivariateT(np.array([0.0, np.nan, 1.0]), SHAPE, 3.0)
    not_unit = CORR.copy()
    not_unit[1, 1] = 2.0
    with pytest.raises(DomainError, match=r"'corr'.*unit diagonal.*2.0 at index \(1,\)"):
        TCopula(not_unit, 3.0)
    with pytest.raises(DomainError, match=r"'df'"):
        TCopula(CORR, 0.0)
    with pytest.raises(DomainError, match=r"larger than 2"):
        TCopula.check_start({"corr": CORR, "df": np.asarray(1.5)})


def test_copula_data_outside_open_cube_is_named():
    u = _points(5, 3, 18)
    u[3, 2] = 1.0
    with pytest.raises(DataError, match=r"open unit cube.*1\.0 at index \(3, 2\)"):
        TCopula.check_data(u)
    with pytest.raises(DataError, match=r"-0\.5 at index \(0, 1\)"):
        TCopula(CORR, 4.0).log_prob(np.array([[0.5, -0.5, 0.5]]))
    with pytest.raises(DataError, match=r"shape \(N, d\)"):
        TCopula.check_data(np.full(3, 0.5))
    with pytest.raises(DataError, match=r"finite"):
        MultivariateT.check_data(np.array([[0.0, np.inf]]))


# ----------------------------------------------------------------------------------------
# Surrogate maps and baseline coordinates
# ----------------------------------------------------------------------------------------


def test_maps_round_trip_and_coordinates():
    target = {"loc": LOC, "shape": SHAPE, "df": np.asarray(5.0)}
    for surrogate_map in (
        multivariate_t_gaussian_map(3),
        multivariate_t_gaussian_map(3, match="covariance"),
        multivariate_t_mcef_map(3, 5.0),
    ):
        standard, aux = surrogate_map.initial(target)
        back = surrogate_map.target(standard, aux)
        for key in target:
            np.testing.assert_allclose(back[key], target[key], rtol=1e-12)
    # Covariance matching: the Gaussian's covariance is the t's covariance.
    standard, _ = multivariate_t_gaussian_map(3, match="covariance").initial(target)
    np.testing.assert_allclose(standard.cov, SHAPE * 5.0 / 3.0, rtol=1e-12)
    fixed = multivariate_t_mcef_map(3, 7.0, learn_df=False)
    standard, aux = fixed.initial(target)
    assert aux == ()
    np.testing.assert_allclose(fixed.target(standard, aux)["df"], 7.0)
    # Copula: corr(Σ) for any positive diagonal scaling of Σ.
    copula_map = t_copula_map(3)
    scales = np.array([0.5, 2.0, 3.0])
    sigma = CORR * np.outer(scales, scales)
    got = copula_map.target(
        copula_map.initial({"corr": CORR, "df": 4.0})[0]._replace(cov=sigma),
        {"df": np.asarray(4.0)},
    )
    np.testing.assert_allclose(got["corr"], CORR, rtol=1e-12)
    np.testing.assert_allclose(cov_to_corr(sigma), CORR, rtol=1e-12)
    # Baseline coordinates invert.
    coords = MultivariateT.to_unconstrained(target)
    for key, value in MultivariateT.from_unconstrained(coords).items():
        np.testing.assert_allclose(value, target[key], rtol=1e-12)
    copula_params = {"corr": CORR, "df": np.asarray(4.0)}
    coords = TCopula.to_unconstrained(copula_params)
    for key, value in TCopula.from_unconstrained(coords).items():
        np.testing.assert_allclose(value, copula_params[key], rtol=1e-12)
    coords = TCopula.to_unconstrained_precision(copula_params)
    np.testing.assert_allclose(
        coords["precision_root"].T @ coords["precision_root"], np.linalg.inv(CORR), rtol=1e-12
    )
    for key, value in TCopula.from_unconstrained_precision(coords).items():
        np.testing.assert_allclose(value, copula_params[key], rtol=1e-12)


# ----------------------------------------------------------------------------------------
# E5
# ----------------------------------------------------------------------------------------


def test_e5_problem_is_seeded_and_well_formed():
    problem = get("E5", seed=0, size="quick")
    again = get("e5", seed=0, size="quick")
    np.testing.assert_array_equal(problem.data, again.data)
    assert problem.data.shape == (450, 10)
    assert problem.validation_data is not None
    assert problem.validation_data.shape == (50, 10)
    TCopula.check_data(problem.data)
    TCopula.check_start(problem.init)
    truth = problem.true_distribution()
    assert float(truth.params["df"]) == 5.0
    start = problem.init_distribution()
    assert float(start.params["df"]) == 50.0
    # The start is near the identity (W ~ 0.01 N); the truth is not.
    assert np.max(np.abs(start.params["corr"] - np.eye(10))) < 0.01
    # The truth fits the held-out data better than the start.
    held_out = problem.validation_data
    assert TCopula.mean_nll(problem.truth, held_out) < TCopula.mean_nll(problem.init, held_out)
