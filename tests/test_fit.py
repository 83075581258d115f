"""The fit driver: convergence on E1/E2/real data, references, options, data checks, backends.

References are independent of the library: ``scipy.optimize.minimize`` on the negative
binomial NLL written with ``scipy.stats.nbinom``.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import scipy.optimize as so
import scipy.special as sps
import scipy.stats as st

from surrogate_natgrad import datasets, experiments
from surrogate_natgrad.distributions import NegativeBinomial, NegativeBinomialMixture
from surrogate_natgrad.errors import BackendError, ConvergenceWarning, DataError, DomainError
from surrogate_natgrad.fitting import FitResult, IterationInfo, fit
from tests.helpers import to_numpy


def _scipy_mle(data: np.ndarray) -> tuple[np.ndarray, float]:
    """Negative binomial MLE by scipy (Nelder-Mead, tight tolerances, then a BFGS polish)."""
    values, counts = np.unique(data, return_counts=True)

    def nll(theta):
        n, p = np.exp(theta[0]), sps.expit(theta[1])
        return -(counts * st.nbinom.logpmf(values, n, p)).sum() / counts.sum()

    mean, var = data.mean(), data.var()
    start = [np.log(mean**2 / (var - mean)), sps.logit(mean / var)]
    first = so.minimize(nll, start, method="Nelder-Mead",
                        options={"xatol": 1e-12, "fatol": 1e-15, "maxiter": 20000})
    polish = so.minimize(nll, first.x, method="BFGS", options={"gtol": 1e-12})
    best = polish if polish.fun <= first.fun else first
    return np.array([np.exp(best.x[0]), sps.expit(best.x[1])]), float(best.fun)


@pytest.fixture(scope="module")
def e1():
    return experiments.e1()


@pytest.fixture(scope="module")
def e1_reference(e1):
    return _scipy_mle(e1.data)


def _params(result: FitResult) -> np.ndarray:
    return np.array([float(to_numpy(result.params["n"])), float(to_numpy(result.params["p"]))])


def test_e1_sngd_grid_reaches_mle_within_ten_iterations(e1, e1_reference):
    reference_params, reference_nll = e1_reference
    result = fit(NegativeBinomial, e1.data, init=e1.init, line_search="grid")
    assert result.converged, result.message
    first_ten = result.history.loss[: 11]  # entry 0 is the start
    assert np.min(first_ten) - reference_nll <= 1e-6 * abs(reference_nll)
    np.testing.assert_allclose(_params(result), reference_params, rtol=1e-6)
    assert result.loss <= reference_nll + 1e-12 * abs(reference_nll)


def test_default_settings_converge_on_e1_without_init(e1, e1_reference):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        result = fit(NegativeBinomial, e1.data)
    assert result.converged and result.status == "converged"
    np.testing.assert_allclose(_params(result), e1_reference[0], rtol=1e-6)


def test_default_settings_converge_on_real_data():
    data = datasets.load("randhie")
    reference_params, reference_nll = _scipy_mle(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        result = fit(NegativeBinomial, data)
    assert result.converged
    np.testing.assert_allclose(_params(result), reference_params, rtol=1e-5)
    assert result.loss <= reference_nll + 1e-10


def test_default_settings_converge_on_e2():
    # One component of E2's data is less dispersed than any negative binomial allows, so
    # the likelihood's supremum has that component at the Poisson limit p -> 1: the fit
    # must end there as converged ("boundary"), saying which component it is.
    problem = experiments.e2()
    result = fit(NegativeBinomialMixture, problem.data, n_components=10)
    assert result.converged
    assert result.status == "boundary"
    assert "Poisson limit" in result.message
    assert result.n_iter <= 150
    assert np.nanmax(result.history.step_size) > 1  # the grid widened (over-relaxation)
    p = to_numpy(result.params["p"])
    assert np.sum(p > 1 - 1e-4) >= 1
    assert result.loss < result.history.loss[0] - 0.2
    weights = to_numpy(result.params["weights"])
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-12)
    # The fitted mixture's log-likelihood, recomputed with scipy, is the reported loss (to
    # 1e-9: with n ~ 1e8 at the Poisson limit, log Γ(k + n) - log Γ(n) loses digits in any
    # implementation, scipy's included).
    n = to_numpy(result.params["n"])
    log_mix = sps.logsumexp(
        st.nbinom.logpmf(problem.data[:, None], n, p) + np.log(weights), axis=1
    )
    np.testing.assert_allclose(result.loss, -log_mix.mean(), rtol=1e-9)
    # Moving the boundary component further towards the Poisson limit (same mean) cannot
    # gain more than a negligible amount: the supremum has been reached.
    k = int(np.argmax(p))
    mean_k = n[k] * (1 - p[k]) / p[k]
    log_components = st.nbinom.logpmf(problem.data[:, None], n, p)
    log_components[:, k] = st.poisson.logpmf(problem.data, mean_k)  # the limit itself
    log_limit = sps.logsumexp(log_components + np.log(weights), axis=1)
    assert -log_limit.mean() > result.loss - 1e-6


def test_boundary_message_names_components_at_the_poisson_limit():
    mixture = {"weights": np.array([0.5, 0.5]), "n": np.array([2.0, 1e9]),
               "p": np.array([0.3, 1 - 1e-7])}
    message = NegativeBinomialMixture.boundary_message(mixture)
    assert message is not None and "component 1" in message and "component 0" not in message
    assert NegativeBinomial.boundary_message({"n": np.array(2.0), "p": np.array(0.3)}) is None


@pytest.mark.slow
def test_e2_sngd_beats_gd_and_bfgs_at_100_iterations():
    problem = experiments.e2()
    losses = {}
    for method in ("sngd", "gd", "bfgs"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = fit(NegativeBinomialMixture, problem.data, method=method,
                         init=problem.init, max_iter=100, tol=0.0)
        losses[method] = result.loss
    best = min(losses.values())
    assert losses["sngd"] - best <= 1e-4
    assert losses["sngd"] < losses["gd"]
    assert losses["sngd"] < losses["bfgs"]


@pytest.mark.parametrize("method", ["gd", "adam", "bfgs", "ngd"])
def test_baselines_decrease_the_loss(e1, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = fit(NegativeBinomial, e1.data, method=method, init=e1.init, max_iter=5,
                     seed=0, mc_samples=2000)
    assert result.method == method
    assert result.loss < result.history.loss[0]
    assert np.all(np.isfinite(_params(result)))


def test_fit_on_each_autodiff_backend(ad_backend, e1, e1_reference):
    data = ad_backend.asarray(e1.data)
    result = fit(NegativeBinomial, data, init=e1.init)
    assert result.converged
    for value in result.params.values():
        assert type(value) is type(data)
    assert type(result.distribution.params["n"]) is type(data)
    np.testing.assert_allclose(_params(result), e1_reference[0], rtol=1e-6)


def test_float32_data_fit_in_float32(e1):
    data = e1.data.astype(np.float32)
    result = fit(NegativeBinomial, data)
    assert result.params["n"].dtype == np.float32
    assert result.converged
    np.testing.assert_allclose(float(result.params["n"]), 4.99, rtol=1e-2)


@pytest.mark.parametrize(
    ("data", "error", "pattern"),
    [
        (np.array([1, 2, -3]), DataError,
         r"data must hold non-negative counts; found -3 at index 2"),
        (np.array([1.0, np.nan]), DataError, r"data must hold finite counts; found nan at index 1"),
        (np.array([1.0, 2.5]), DataError, r"data must hold integer counts; found 2\.5 at index 1"),
        (np.array([[1, 2]]), DataError, r"data must be a one-dimensional array.*\(1, 2\)"),
        (np.array([], dtype=np.int64), DataError, r"data is empty"),
        (np.array([True, False]), DataError, r"data must hold integer counts.*got dtype bool"),
        ([1, 2, 3], BackendError, r"data must be an array"),
    ],
)
def test_data_validation_messages(data, error, pattern):
    with pytest.raises(error, match=pattern):
        fit(NegativeBinomial, data)


def test_validation_data_is_checked_and_recorded(e1):
    train, held_out = e1.data[:800], e1.data[800:]
    with pytest.raises(DataError, match=r"validation_data.*-1.*index 0"):
        fit(NegativeBinomial, train, validation_data=np.array([-1, 2]))
    result = fit(NegativeBinomial, train, validation_data=held_out)
    history = result.history
    assert history.validation_loss is not None
    assert history.validation_loss.shape == history.loss.shape
    n, p = _params(result)
    expected = -st.nbinom.logpmf(held_out, n, p).mean()
    np.testing.assert_allclose(result.validation_loss, expected, rtol=1e-12)


def test_history_and_result_object(e1):
    result = fit(NegativeBinomial, e1.data, init=NegativeBinomial(**e1.init))
    history = result.history
    assert len(history) == result.n_iter + 1
    for values in (history.step_size, history.time, history.grad_norm):
        assert values.shape == history.loss.shape
    assert history.status[0] == "START"
    assert np.all(np.diff(history.time) >= 0)
    assert history.loss[-1] == pytest.approx(result.loss, rel=1e-12)
    text = repr(result)
    assert text.startswith("FitResult(distribution=NegativeBinomial(") and "converged=True" in text
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["status"] == "converged" and summary["backend"] == "numpy"
    assert "NLL" in result.summary()


def test_callback_can_stop_the_fit(e1):
    seen: list[IterationInfo] = []

    def callback(info: IterationInfo) -> bool:
        seen.append(info)
        return info.iteration == 2

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a requested stop does not warn
        result = fit(NegativeBinomial, e1.data, init=e1.init, callback=callback)
    assert result.n_iter == 2 and result.status == "callback" and not result.converged
    assert [info.iteration for info in seen] == [1, 2]
    assert set(seen[-1].params) == {"n", "p"}


def test_not_converged_warns_and_returns_finite_params(e1):
    with pytest.warns(ConvergenceWarning, match=r"did not converge"):
        result = fit(NegativeBinomial, e1.data, method="gd", init=e1.init, max_iter=2)
    assert result.status == "max_iter" and not result.converged
    assert np.all(np.isfinite(_params(result)))


def test_minibatches_are_seeded(e1):
    kwargs = {"init": e1.init, "batch_size": 100, "max_iter": 20, "eval_every": 5}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first = fit(NegativeBinomial, e1.data, seed=1, **kwargs)
        again = fit(NegativeBinomial, e1.data, seed=1, **kwargs)
        other = fit(NegativeBinomial, e1.data, seed=2, **kwargs)
    np.testing.assert_array_equal(_params(first), _params(again))
    assert not np.array_equal(_params(first), _params(other))
    assert np.isfinite(first.history.loss[5]) and math.isnan(first.history.loss[4])
    assert first.loss < first.history.loss[0]


@pytest.mark.parametrize("step_decay", [None, 3.0, math.inf])
def test_minibatch_step_size_decays(e1, step_decay):
    """Step t proposes ε₀ / √(1 + (t - 1)/τ) (τ = 100 by default; inf: fixed steps)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = fit(
            NegativeBinomial, e1.data, init=e1.init, batch_size=100, max_iter=12,
            step_size=0.05, step_decay=step_decay, seed=0,
        )
    tau = 100.0 if step_decay is None else step_decay
    proposed = 0.05 / np.sqrt(1.0 + np.arange(12) / tau)
    taken = result.history.step_size[1:]
    # backtracking may only shorten a proposed step, by halvings
    ratio = taken / proposed
    np.testing.assert_allclose(ratio, 2.0 ** np.round(np.log2(ratio)), rtol=1e-12)
    assert np.all(ratio <= 1.0 + 1e-12) and np.mean(ratio == 1.0) > 0.5


def test_default_step_decay_is_faster_when_batches_have_fewer_rows_than_columns():
    """With d = 40 columns and batches of 10 rows the default τ is 100·10/40 = 25 steps."""
    from surrogate_natgrad.distributions import SkewNormal

    rng = np.random.default_rng(3)
    data = rng.normal(size=(400, 40))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = fit(SkewNormal, data, batch_size=10, max_iter=8, step_size=0.05, seed=0)
    proposed = 0.05 / np.sqrt(1.0 + np.arange(8) / 25.0)
    taken = result.history.step_size[1:]
    ratio = taken / proposed
    np.testing.assert_allclose(ratio, 2.0 ** np.round(np.log2(ratio)), rtol=1e-12)
    assert np.all(ratio <= 1.0 + 1e-12) and np.mean(ratio == 1.0) > 0.5


def test_init_errors(e1):
    with pytest.raises(DomainError, match=r"'p'"):
        fit(NegativeBinomial, e1.data, init={"n": 2.0, "p": 1.5})
    with pytest.raises(DomainError, match=r"below 1"):
        fit(NegativeBinomial, e1.data, init={"n": 2.0, "p": 1.0})
    with pytest.raises(DataError, match=r"init is a NegativeBinomialMixture"):
        fit(NegativeBinomial, e1.data,
            init=NegativeBinomialMixture(np.array([1.0]), np.array([2.0]), np.array([0.5])))
    with pytest.raises(DataError, match=r"n_components"):
        fit(NegativeBinomialMixture, e1.data)
    with pytest.raises(DataError, match=r"method"):
        fit(NegativeBinomial, e1.data, method="newton")


def test_init_from_another_library_is_an_error(e1):
    torch = pytest.importorskip("torch")
    with pytest.raises(BackendError, match=r"init"):
        fit(NegativeBinomial, e1.data, init={"n": torch.tensor(2.0, dtype=torch.float64), "p": 0.5})


def test_progress_bar_runs(e1):
    result = fit(NegativeBinomial, e1.data, progress=True)
    assert result.converged


def test_distribution_by_name(e1):
    result = fit("nbinom", e1.data)
    assert isinstance(result.distribution, NegativeBinomial)


def test_a_minibatch_fit_that_blows_up_returns_its_best_evaluated_point():
    """Gradient descent at step 10 on E3 (quick) overflows within three steps. The fit
    stops ("nonfinite") and returns the best point among its full-data evaluations (here
    the start), not the overflowing last iterate (whose loss was ~1e32)."""
    import surrogate_natgrad as sng
    from surrogate_natgrad.experiments import get

    problem = get("E3", size="quick")
    options = {"batch_size": 50, "max_iter": 200, "seed": 0, "step_decay": float("inf")}
    options.update(method="gd", step_size=10.0, init=problem.init)
    with pytest.warns(ConvergenceWarning, match="non-finite"):
        result = sng.fit(problem.distribution, problem.data, **options)
    assert result.status == "nonfinite"
    start_loss = float(problem.distribution.mean_nll(problem.init, problem.data))
    np.testing.assert_allclose(result.loss, start_loss, rtol=1e-12)
    for key, value in problem.init.items():
        np.testing.assert_allclose(np.asarray(result.params[key]), np.asarray(value), rtol=1e-12)
