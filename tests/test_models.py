"""Bayesian regression models: log joints against scipy.stats, closed forms, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special
import scipy.stats

from surrogate_natgrad import autodiff
from surrogate_natgrad._compat import namespace
from surrogate_natgrad.errors import BackendError, DataError
from surrogate_natgrad.models import BayesianLinearRegression, BayesianLogisticRegression
from tests.helpers import to_numpy


def _logistic_data(seed: int = 0, n: int = 40, d: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (rng.uniform(size=n) < 0.5).astype(np.float64)
    z = rng.normal(size=(5, d)) * 2.0
    return X, y, z


def _logistic_reference(X, y, z, tau):
    p = scipy.special.expit(z @ X.T)
    loglik = scipy.stats.bernoulli.logpmf(y, p).sum(axis=-1)
    prior = scipy.stats.multivariate_normal(np.zeros(X.shape[1]), np.eye(X.shape[1]) / tau)
    return loglik + prior.logpdf(z)


def test_logistic_log_joint_matches_scipy(backend):
    X, y, z = _logistic_data()
    model = BayesianLogisticRegression(backend.asarray(X), backend.asarray(y), prior_precision=2.5)
    out = model.log_joint(backend.asarray(z))
    assert namespace(out) is namespace(backend.asarray(z))
    assert tuple(out.shape) == (5,)
    np.testing.assert_allclose(to_numpy(out), _logistic_reference(X, y, z, 2.5), rtol=1e-12)
    # one weight vector gives a 0-d result
    single = model.log_joint(backend.asarray(z[0]))
    assert tuple(single.shape) == ()
    np.testing.assert_allclose(float(to_numpy(single)), _logistic_reference(X, y, z, 2.5)[0])


def test_logistic_chunks_and_extreme_logits_are_stable():
    X, y, z = _logistic_data(n=53)
    whole = BayesianLogisticRegression(X, y).log_joint(z)
    chunked = BayesianLogisticRegression(X, y, chunk_size=7).log_joint(z)
    np.testing.assert_allclose(chunked, whole, rtol=1e-13)
    # logits of ±1e4: log σ must not overflow to -inf for the right class
    far = BayesianLogisticRegression(np.array([[1.0], [-1.0]]), np.array([1.0, 0.0]))
    value = far.log_likelihood(np.array([[1e4], [-1e4]]))
    np.testing.assert_allclose(value, [0.0, -2e4], atol=1e-12)


def test_logistic_batch_shape_and_float32():
    X, y, z = _logistic_data()
    model = BayesianLogisticRegression(X.astype(np.float32), y.astype(np.float32))
    out = model.log_joint(z.reshape(5, 1, 3).astype(np.float32))
    assert out.shape == (5, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0], _logistic_reference(X, y, z, 1.0), rtol=1e-4)


def test_logistic_gradient(ad_backend):
    X, y, z = _logistic_data()
    model = BayesianLogisticRegression(ad_backend.asarray(X), ad_backend.asarray(y))
    backend = autodiff.get_backend(None, ad_backend.asarray(z[0]))
    # differentiated code meets the model's data as the bridge's torch views (if bridged)
    seen = model.map_arrays(ad_backend.inner)
    _, grad = backend.value_and_grad(lambda w: seen.log_joint(w))(ad_backend.asarray(z[0]))
    # d/dz [Σ y log σ + (1-y) log(1-σ)] = Xᵀ(y - σ(Xz)); prior: -τ z
    expected = X.T @ (y - scipy.special.expit(X @ z[0])) - z[0]
    np.testing.assert_allclose(to_numpy(grad), expected, rtol=1e-10)


def _linear_data(seed: int = 1, n: int = 30, d: int = 4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.5 * rng.normal(size=n)
    return X, y


def test_linear_log_joint_and_posterior_match_closed_forms(backend):
    X, y = _linear_data()
    tau, sigma2 = 0.7, 0.4
    model = BayesianLinearRegression(
        backend.asarray(X), backend.asarray(y), prior_precision=tau, noise_variance=sigma2
    )
    z = np.random.default_rng(2).normal(size=(3, 4))
    expected = scipy.stats.norm(z @ X.T, np.sqrt(sigma2)).logpdf(y).sum(axis=-1)
    expected += scipy.stats.multivariate_normal(np.zeros(4), np.eye(4) / tau).logpdf(z)
    np.testing.assert_allclose(to_numpy(model.log_joint(backend.asarray(z))), expected, rtol=1e-12)
    mean, cov = model.posterior()
    precision = X.T @ X / sigma2 + tau * np.eye(4)
    np.testing.assert_allclose(to_numpy(cov), np.linalg.inv(precision), rtol=1e-10)
    np.testing.assert_allclose(
        to_numpy(mean), np.linalg.solve(precision, X.T @ y / sigma2), rtol=1e-10
    )
    # evidence: y ~ N(0, σ²I + XXᵀ/τ)
    evidence = scipy.stats.multivariate_normal(
        np.zeros(len(y)), sigma2 * np.eye(len(y)) + X @ X.T / tau
    ).logpdf(y)
    np.testing.assert_allclose(float(to_numpy(model.log_evidence())), evidence, rtol=1e-10)


def test_linear_expected_log_joint_closed_form():
    X, y = _linear_data()
    model = BayesianLinearRegression(X, y, prior_precision=0.7, noise_variance=0.4)
    rng = np.random.default_rng(3)
    mean = rng.normal(size=4)
    root = rng.normal(size=(4, 4))
    cov = root @ root.T / 4 + 0.1 * np.eye(4)
    # a quadratic log joint: E log p = log p(μ) + ½ tr(H Σ) with H = -(XᵀX/σ² + τI)
    hessian = -(X.T @ X / 0.4 + 0.7 * np.eye(4))
    expected = float(model.log_joint(mean)) + 0.5 * np.trace(hessian @ cov)
    np.testing.assert_allclose(float(model.expected_log_joint(mean, cov)), expected, rtol=1e-12)
    prior = scipy.stats.multivariate_normal(np.zeros(4), np.eye(4) / 0.7).logpdf(mean)
    np.testing.assert_allclose(
        float(model.expected_log_prior(mean, cov)), prior - 0.5 * 0.7 * np.trace(cov), rtol=1e-12
    )


def test_model_errors_name_the_problem():
    X, y, _ = _logistic_data()
    bad_y = y.copy()
    bad_y[7] = 2.0
    with pytest.raises(DataError, match=r"y\[7\] = 2.0"):
        BayesianLogisticRegression(X, bad_y)
    bad_X = X.copy()
    bad_X[3, 1] = np.nan
    with pytest.raises(DataError, match=r"X\[3, 1\]"):
        BayesianLogisticRegression(bad_X, y)
    with pytest.raises(DataError, match="length 40"):
        BayesianLogisticRegression(X, y[:-1])
    with pytest.raises(DataError, match="prior_precision"):
        BayesianLinearRegression(X, y, prior_precision=-1.0)
    with pytest.raises(DataError, match="chunk_size"):
        BayesianLogisticRegression(X, y, chunk_size=0)
    with pytest.raises(DataError, match=r"shape \(\.\.\., 3\)"):
        BayesianLogisticRegression(X, y).log_joint(np.zeros((2, 4)))
    with pytest.raises(DataError, match="2-D"):
        BayesianLinearRegression(np.ones(3), np.ones(3))
    torch = pytest.importorskip("torch")
    with pytest.raises(BackendError):
        BayesianLogisticRegression(X, y).log_joint(torch.zeros((2, 3), dtype=torch.float64))
