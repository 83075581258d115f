"""fit_vi: conjugate recovery, SNGD vs baselines, robustness, options and errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats

from surrogate_natgrad import fit_vi
from surrogate_natgrad._compat import namespace
from surrogate_natgrad.errors import BackendError, ConvergenceWarning, DataError
from surrogate_natgrad.experiments import get
from surrogate_natgrad.models import BayesianLinearRegression, BayesianLogisticRegression
from surrogate_natgrad.vi import VariationalApproximation
from tests.helpers import to_numpy


def _linear(seed=0, n=25, d=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.4 * rng.normal(size=n)
    return X, y


def _exact_posterior(X, y, tau, sigma2):
    """Posterior of Bayesian linear regression by NumPy (independent of the library)."""
    precision = X.T @ X / sigma2 + tau * np.eye(X.shape[1])
    cov = np.linalg.inv(precision)
    return cov @ X.T @ y / sigma2, cov


def test_conjugate_one_step_recovers_exact_posterior(ad_backend):
    X, y = _linear()
    model = BayesianLinearRegression(
        ad_backend.asarray(X), ad_backend.asarray(y), prior_precision=2.0, noise_variance=0.3
    )
    start = {"mean": np.full(3, 0.7), "cov": 3.0 * np.eye(3)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # one step is all we ask for
        result = fit_vi(model, "gaussian", init=start, max_iter=1, step_size=1.0)
    mean, cov = _exact_posterior(X, y, 2.0, 0.3)
    assert result.n_iter == 1
    assert namespace(result.params["mean"]) is namespace(model.X)
    np.testing.assert_allclose(to_numpy(result.params["mean"]), mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(to_numpy(result.params["cov"]), cov, rtol=1e-6, atol=1e-9)
    evidence = scipy.stats.multivariate_normal(
        np.zeros(len(y)), 0.3 * np.eye(len(y)) + X @ X.T / 2.0
    ).logpdf(y)
    np.testing.assert_allclose(result.elbo, evidence, rtol=1e-10)


def test_conjugate_fit_converges_with_smaller_steps():
    X, y = _linear(seed=1)
    model = BayesianLinearRegression(X, y, prior_precision=0.5, noise_variance=1.5)
    result = fit_vi(model, "gaussian", step_size=0.5, tol=1e-14, gtol=1e-9)
    assert result.converged and result.status == "converged"
    mean, cov = _exact_posterior(X, y, 0.5, 1.5)
    np.testing.assert_allclose(result.params["mean"], mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(result.params["cov"], cov, rtol=1e-6, atol=1e-9)
    # the ELBO never decreases along an exact natural-gradient path with ε ≤ 1
    assert np.all(np.diff(result.history.loss) <= 1e-9)


def test_stochastic_gaussian_fit_is_close_to_exact_posterior():
    X, y = _linear(seed=2, n=40, d=2)
    model = BayesianLinearRegression(X, y)
    result = fit_vi(
        model,
        "gaussian",
        closed_form=False,
        n_samples=20,
        max_iter=150,
        step_size=0.2,
        seed=0,
        antithetic=True,
    )
    mean, cov = _exact_posterior(X, y, 1.0, 1.0)
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_array_less(np.abs(result.params["mean"] - mean), 0.3 * sd)
    np.testing.assert_allclose(np.diag(result.params["cov"]), np.diag(cov), rtol=0.3)
    assert isinstance(result.distribution, VariationalApproximation)
    assert result.history.loss.shape == (151,)
    assert result.extra["train_loss"].shape == (151,)


def _spector():
    sm = pytest.importorskip("statsmodels.api")
    data = sm.datasets.spector.load_pandas().data
    features = data[["GPA", "TUCE", "PSI"]].to_numpy(dtype=float)
    features = (features - features.mean(axis=0)) / features.std(axis=0)
    X = np.column_stack([np.ones(len(features)), features])
    return X, data["GRADE"].to_numpy(dtype=float)


def test_skew_normal_elbo_at_least_gaussian_on_real_data():
    X, y = _spector()
    model = BayesianLogisticRegression(X, y)
    # many samples per step keep the stochastic-optimisation noise floor far below the gap
    common = dict(seed=3, n_samples=200, n_samples_eval=4000, antithetic=True)
    gaussian = fit_vi(model, "gaussian", step_size=0.3, max_iter=60, **common)
    skew = fit_vi(
        model,
        "skew_normal",
        init=gaussian.distribution,
        step_size=0.1,
        aux_step_size=0.05,
        max_iter=60,
        **common,
    )
    # both evaluated on the same 4000 draws; the Gaussian is the shape = 0 skew-normal
    assert skew.elbo >= gaussian.elbo - 1e-3, (skew.elbo, gaussian.elbo)
    assert np.all(np.isfinite(skew.params["shape"]))
    assert np.any(np.abs(skew.params["shape"]) > 0.05)


def test_e6_quick_sngd_beats_adam_and_survives_large_steps():
    problem = get("e6", seed=0, size="quick")
    assert problem.kind == "vi" and problem.data is None
    settings = dict(init=problem.init, seed=0, max_iter=100, n_samples=10, eval_every=10)
    sngd = fit_vi(problem.model, "skew_normal", method="sngd", step_size=0.1, **settings)
    adam = [
        fit_vi(problem.model, "skew_normal", method="adam", step_size=lr, **settings).loss
        for lr in (1e-2, 1e-1)
    ]
    assert sngd.loss < min(adam), (sngd.loss, adam)
    for method in ("sngd", "mcef"):
        # Step 5 keeps every step positive definite (the PD-safety asked for) but the
        # −ELBO climbs: the fit stops as "diverged" and returns its best point.
        with pytest.warns(ConvergenceWarning, match="diverged"):
            big = fit_vi(
                problem.model,
                "skew_normal",
                method=method,
                step_size=5.0,
                **{**settings, "max_iter": 15},
            )
        assert big.status == "diverged"
        for value in big.params.values():
            assert np.all(np.isfinite(value))
        assert math.isfinite(big.loss)
        assert set(big.history.status[1:]) <= {"OK", "BACKTRACKED"}
        assert np.all(np.linalg.eigvalsh(big.params["scale"]) > 0)


def test_mcef_and_sngd_agree_on_a_conjugate_model():
    # the optimum of a skew-normal on a Gaussian posterior is that Gaussian (shape 0)
    X, y = _linear(seed=4, n=30, d=2)
    model = BayesianLinearRegression(X, y)
    mean, cov = _exact_posterior(X, y, 1.0, 1.0)
    result = fit_vi(model, "skew_normal", method="mcef", step_size=1.0)
    fitted = result.distribution
    np.testing.assert_allclose(to_numpy(fitted.mean()), mean, atol=1e-6)
    np.testing.assert_allclose(to_numpy(fitted.covariance()), cov, atol=1e-6)


def test_adam_parameterizations_and_float32():
    X, y = _linear(seed=5)
    model = BayesianLinearRegression(X.astype(np.float32), y.astype(np.float32))
    for parameterization in ("cholesky", "precision"):
        result = fit_vi(
            model,
            "gaussian",
            method="adam",
            step_size=0.05,
            max_iter=400,
            parameterization=parameterization,
        )
        assert result.params["mean"].dtype == np.float32
        mean, _ = _exact_posterior(X, y, 1.0, 1.0)
        np.testing.assert_allclose(result.params["mean"], mean, atol=2e-2)


def test_callback_init_and_serialisation():
    X, y = _linear(seed=6, n=20, d=2)
    model = BayesianLinearRegression(X, y)
    seen = []

    def callback(info):
        seen.append(info.iteration)
        return info.iteration == 3

    first = fit_vi(model.log_joint, "gaussian", 2, closed_form=False, callback=callback, seed=1)
    assert first.status == "callback" and seen == [1, 2, 3]
    with pytest.warns(ConvergenceWarning, match="stopped after 5 iterations"):
        again = fit_vi(model, "skew_normal", init=first.distribution, max_iter=5, seed=1)
    assert again.family == "skew_normal"
    summary = again.to_dict()
    assert summary["method"] == "sngd" and len(summary["history"]["loss"]) == again.n_iter + 1


def test_errors_are_clear():
    X, y = _linear()
    model = BayesianLinearRegression(X, y)
    with pytest.raises(DataError, match="method"):
        fit_vi(model, "gaussian", method="lbfgs")
    with pytest.raises(DataError, match="unknown family"):
        fit_vi(model, "skew_cauchy")
    with pytest.raises(DataError, match="k="):
        fit_vi(model, "skew_normal_mixture")
    with pytest.raises(DataError, match="only used by mixture"):
        fit_vi(model, "skew_normal", k=2)
    with pytest.raises(DataError, match="above 2"):
        fit_vi(model, "skew_t", init={"loc": np.zeros(3), "scale": np.eye(3), "df": 1.5})
    with pytest.raises(DataError, match="sum to one"):
        fit_vi(
            model,
            "skew_normal_mixture",
            k=2,
            init={
                "weights": np.array([0.5, 0.6]),
                "loc": np.zeros((2, 3)),
                "scale": np.stack([np.eye(3)] * 2),
            },
        )
    with pytest.raises(DataError, match="unknown parameter"):
        fit_vi(model, "gaussian", init={"mean": np.zeros(3), "cov": np.eye(3), "df": 3.0})
    with pytest.raises(DataError, match="mcef"):
        fit_vi(model, "gaussian", method="mcef")
    with pytest.raises(DataError, match="positive definite"):
        fit_vi(model, "gaussian", init={"mean": np.zeros(3), "cov": -np.eye(3)})
    with pytest.raises(DataError, match="dim"):
        fit_vi(model.log_joint, "gaussian")
    with pytest.raises(DataError, match="even"):
        fit_vi(model, "gaussian", n_samples=3, antithetic=True)
    torch = pytest.importorskip("torch")
    with pytest.raises(BackendError):
        fit_vi(model, "gaussian", init={"mean": torch.zeros(3), "cov": torch.eye(3)})


@pytest.mark.parametrize("method", ["sngd", "mcef", "adam"])
def test_stochastic_skew_normal_fit_stays_in_the_namespace(ad_backend, method):
    rng = np.random.default_rng(9)
    X = rng.normal(size=(20, 2))
    y = (rng.uniform(size=20) < 0.5).astype(np.float64)
    model = BayesianLogisticRegression(ad_backend.asarray(X), ad_backend.asarray(y))
    result = fit_vi(
        model, "skew_normal", method=method, max_iter=4, eval_every=2, seed=0, n_samples=4
    )
    assert result.n_iter == 4
    for value in result.params.values():
        assert namespace(value) is namespace(model.X)
        assert np.all(np.isfinite(to_numpy(value)))
    assert math.isfinite(result.elbo)


def test_a_diverging_stochastic_fit_stops_and_returns_its_best_parameters():
    """SNGD at step 1.0 on E6 (quick) is PD-safe but diverges: the negative ELBO on the
    fixed evaluation draws climbs from ~38 to thousands. The fit stops with status
    "diverged", warns, and returns the parameters of its best evaluation."""
    problem = get("E6", size="quick")
    options = {"method": "sngd", "max_iter": 300, "seed": 0, "init": problem.init}
    with pytest.warns(ConvergenceWarning, match="diverged"):
        result = fit_vi(problem.model, "skew_normal", step_size=1.0, **options)
    assert result.status == "diverged" and not result.converged
    assert result.n_iter < 300
    evaluations = result.history.loss[np.isfinite(result.history.loss)]
    assert evaluations[-1] > evaluations.min() + 10 * abs(evaluations.min())
    assert result.loss == pytest.approx(evaluations.min(), rel=1e-12)
    assert np.all(np.isfinite(to_numpy(result.params["loc"])))
    # The same fit at a stable step size runs to the end.
    steady = fit_vi(problem.model, "skew_normal", step_size=0.1, **options)
    assert steady.status == "max_iter" and steady.n_iter == 300
