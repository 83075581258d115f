"""Negative binomial targets: log-mass, moments, validation, sampling, maps.

References are independent: scipy.stats.nbinom, closed-form moments, finite differences.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sps
import scipy.stats as st

from surrogate_natgrad._compat import namespace
from surrogate_natgrad.distributions import (
    NegativeBinomial,
    NegativeBinomialMixture,
    nbinom_logpmf,
    nbinom_mixture_logpmf,
)
from surrogate_natgrad.errors import DataError, DomainError
from tests.helpers import central_difference, to_numpy

N_VALUES = np.array([0.5, 5.0, 120.3])
P_VALUES = np.array([0.01, 1.0 / 11.0, 0.3, 0.97])
COUNTS = np.concatenate([np.arange(0, 60), np.array([99, 250, 1000, 5003, 40000])])


def _close(actual, expected, rtol=1e-12):
    actual = to_numpy(actual)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def test_logpmf_matches_scipy(backend):
    n, p = np.meshgrid(N_VALUES, P_VALUES, indexing="ij")
    n, p = n.reshape(-1, 1), p.reshape(-1, 1)  # parameter batch (B, 1) against data (N,)
    got = nbinom_logpmf(backend.asarray(COUNTS), backend.asarray(n), backend.asarray(p))
    assert tuple(got.shape) == (n.shape[0], COUNTS.shape[0])
    _close(got, st.nbinom.logpmf(COUNTS, n, p))


def test_distribution_log_prob_integer_and_float_data(backend):
    dist = NegativeBinomial(backend.asarray(5.0), backend.asarray(1.0 / 11.0))
    expected = st.nbinom.logpmf(COUNTS, 5.0, 1.0 / 11.0)
    _close(dist.log_prob(backend.asarray(COUNTS)), expected)
    _close(dist.log_prob(backend.asarray(COUNTS.astype(np.float64))), expected)
    assert dist.xp is not None


def test_logpmf_outside_support_and_degenerate_p():
    x = np.array([-1.0, 2.5, 0.0, 3.0])
    got = nbinom_logpmf(x, np.asarray(2.0), np.asarray(1.0))
    np.testing.assert_array_equal(got, st.nbinom.logpmf(x, 2.0, 1.0))  # -inf, -inf, 0, -inf


def test_mixture_logpmf_matches_scipy(backend):
    weights = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    n = np.array([[0.7, 5.0, 300.0], [2.0, 40.0, 9.0]])
    p = np.array([[0.3, 1.0 / 11.0, 0.5], [0.05, 0.9, 0.2]])
    expected = sps.logsumexp(
        st.nbinom.logpmf(COUNTS[None, :, None], n[:, None, :], p[:, None, :])
        + np.log(weights)[:, None, :],
        axis=-1,
    )
    got = nbinom_mixture_logpmf(
        backend.asarray(COUNTS), backend.asarray(weights), backend.asarray(n), backend.asarray(p)
    )
    assert tuple(got.shape) == (2, COUNTS.shape[0])
    _close(got, expected)
    single = NegativeBinomialMixture(
        backend.asarray(weights[0]), backend.asarray(n[0]), backend.asarray(p[0])
    )
    _close(single.log_prob(backend.asarray(COUNTS)), expected[0])


def test_logpmf_gradient_matches_finite_differences(ad_backend):
    from surrogate_natgrad import autodiff

    data = np.array([0.0, 3.0, 17.0, 50.0, 210.0])
    # the differentiated function sees its data as torch views under a bridge
    data_ad = ad_backend.inner(ad_backend.asarray(data))

    def loss_np(theta):
        return -st.nbinom.logpmf(data, theta[0], theta[1]).sum()

    def loss(theta):
        xp = namespace(theta)
        return -xp.sum(nbinom_logpmf(data_ad, theta[0], theta[1]))

    theta = np.array([4.3, 0.12])
    ad = autodiff.get_backend(None, ad_backend.asarray(theta))
    _, grad = ad.value_and_grad(loss)(ad_backend.asarray(theta))
    np.testing.assert_allclose(to_numpy(grad), central_difference(loss_np, theta), rtol=1e-6)


def test_moments_match_scipy():
    dist = NegativeBinomial(np.array([0.5, 5.0, 80.0]), np.array([0.2, 1.0 / 11.0, 0.7]))
    np.testing.assert_allclose(dist.mean(), st.nbinom.mean([0.5, 5.0, 80.0], [0.2, 1 / 11, 0.7]))
    np.testing.assert_allclose(dist.var(), st.nbinom.var([0.5, 5.0, 80.0], [0.2, 1 / 11, 0.7]))


def test_mixture_moments_match_summation():
    weights, n, p = np.array([0.25, 0.75]), np.array([3.0, 40.0]), np.array([0.4, 0.6])
    support = np.arange(0, 2000)
    pmf = (weights[:, None] * st.nbinom.pmf(support[None, :], n[:, None], p[:, None])).sum(0)
    mean = (support * pmf).sum()
    var = ((support - mean) ** 2 * pmf).sum()
    dist = NegativeBinomialMixture(weights, n, p)
    np.testing.assert_allclose(float(dist.mean()), mean, rtol=1e-10)
    np.testing.assert_allclose(float(dist.var()), var, rtol=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"n": np.array([1.0, -2.0]), "p": 0.5}, r"'n'.*positive.*-2\.0.*index \(1,\)"),
        ({"n": 2.0, "p": np.array([0.5, 0.2, 1.5])}, r"'p'.*\(0, 1\].*1\.5.*index \(2,\)"),
        ({"n": np.nan, "p": 0.5}, r"'n'.*nan"),
        ({"n": 1.0, "p": 0.0}, r"'p'.*0\.0"),
    ],
)
def test_validation_names_parameter_value_and_index(kwargs, pattern):
    with pytest.raises(DomainError, match=pattern):
        NegativeBinomial(**kwargs)


def test_mixture_validation():
    with pytest.raises(DomainError, match=r"'weights'.*summing to one"):
        NegativeBinomialMixture(np.array([0.5, 0.6]), np.array([1.0, 2.0]), np.array([0.5, 0.5]))
    with pytest.raises(DomainError, match=r"'weights'.*non-negative.*-0.1"):
        NegativeBinomialMixture(np.array([1.1, -0.1]), np.array([1.0, 2.0]), np.array([0.5, 0.5]))
    with pytest.raises(DomainError, match=r"same number of components"):
        NegativeBinomialMixture(
            np.array([0.5, 0.5]), np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.5])
        )
    with pytest.raises(DomainError, match=r"'n'"):
        NegativeBinomialMixture(np.array([0.5, 0.5]), np.array([1.0, 0.0]), np.array([0.5, 0.5]))


def test_from_moments_closed_form_and_errors(backend):
    dist = NegativeBinomial.from_moments(backend.asarray(50.0), backend.asarray(550.0))
    np.testing.assert_allclose(float(to_numpy(dist.params["n"])), 5.0, rtol=1e-13)
    np.testing.assert_allclose(float(to_numpy(dist.params["p"])), 1.0 / 11.0, rtol=1e-13)
    with pytest.raises(DomainError, match=r"'var'.*larger than the mean"):
        NegativeBinomial.from_moments(3.0, 2.0)
    with pytest.raises(DomainError, match=r"'mean'"):
        NegativeBinomial.from_moments(-1.0, 2.0)
    mixture = NegativeBinomialMixture.from_moments(np.array([5.0, 500.0]), np.array([50.0, 4500.0]))
    np.testing.assert_allclose(mixture.params["weights"], [0.5, 0.5])
    np.testing.assert_allclose(mixture.component_means(), [5.0, 500.0])
    np.testing.assert_allclose(mixture.component_vars(), [50.0, 4500.0])


def test_from_data_method_of_moments_and_fallback():
    data = np.array([0, 3, 7, 1, 20, 4, 0, 11])
    dist = NegativeBinomial.from_data(data)
    np.testing.assert_allclose(float(dist.mean()), data.mean(), rtol=1e-12)
    np.testing.assert_allclose(float(dist.var()), data.var(), rtol=1e-12)
    under = NegativeBinomial.from_data(np.array([4, 5, 5, 6]))  # variance < mean
    np.testing.assert_allclose(float(under.params["p"]), 0.5)
    np.testing.assert_allclose(float(under.mean()), 5.0)
    zeros = NegativeBinomial.from_data(np.zeros(4, dtype=np.int64))
    assert float(zeros.params["n"]) > 0
    with pytest.raises(DataError, match=r"data.*non-negative.*-1.*index 1"):
        NegativeBinomial.from_data(np.array([1, -1]))


def test_mixture_from_data_is_deterministic_quantile_start():
    data = np.concatenate([np.arange(10), 1000 + np.arange(10)])
    start = NegativeBinomialMixture.from_data(data, 2)
    np.testing.assert_allclose(start.params["weights"], [0.5, 0.5])
    np.testing.assert_allclose(start.component_means(), [4.5, 1004.5])
    assert np.all(start.params["p"] <= 0.5)
    again = NegativeBinomialMixture.from_data(data, 2)
    np.testing.assert_array_equal(again.params["n"], start.params["n"])
    with pytest.raises(DataError, match=r"fewer than the 5"):
        NegativeBinomialMixture.from_data(np.array([1, 2, 3]), 5)


def test_sampling_moments_and_namespace(ad_backend):
    dist = NegativeBinomial(ad_backend.asarray(5.0), ad_backend.asarray(1.0 / 11.0))
    size = 20000 if ad_backend.name == "numpy" else 1000  # generic betainc is slow
    draws = dist.sample(size, seed=3)
    assert type(draws) is type(ad_backend.asarray(np.zeros(2)))
    values = to_numpy(draws)
    assert values.shape == (size,)
    assert np.all(values == np.round(values)) and values.min() >= 0
    standard_error = np.sqrt(550.0 / size)
    assert abs(values.mean() - 50.0) < 5 * standard_error
    assert abs(values.var() / 550.0 - 1) < 0.3
    again = to_numpy(dist.sample(size, seed=3))
    np.testing.assert_array_equal(values, again)


def test_sampling_frequencies_match_pmf():
    dist = NegativeBinomial(2.0, 0.4)
    values = to_numpy(dist.sample(40000, seed=0))
    counts = np.bincount(values, minlength=8)[:8] / values.shape[0]
    np.testing.assert_allclose(counts, st.nbinom.pmf(np.arange(8), 2.0, 0.4), atol=0.01)


def test_mixture_sampling_moments():
    dist = NegativeBinomialMixture(
        np.array([0.3, 0.7]), np.array([2.0, 30.0]), np.array([0.2, 0.6])
    )
    values = to_numpy(dist.sample(20000, seed=1))
    assert abs(values.mean() - float(dist.mean())) < 5 * np.sqrt(float(dist.var()) / 20000)


def test_unconstrained_round_trip():
    params = {"n": np.array(4.2), "p": np.array(0.13)}
    back = NegativeBinomial.from_unconstrained(NegativeBinomial.to_unconstrained(params))
    np.testing.assert_allclose(back["n"], 4.2, rtol=1e-14)
    np.testing.assert_allclose(back["p"], 0.13, rtol=1e-14)
    mix = {"weights": np.array([0.2, 0.8]), "n": np.array([1.0, 9.0]), "p": np.array([0.3, 0.6])}
    back = NegativeBinomialMixture.from_unconstrained(NegativeBinomialMixture.to_unconstrained(mix))
    for key in mix:
        np.testing.assert_allclose(back[key], mix[key], rtol=1e-14)


def test_surrogate_map_matches_gamma_moments_and_domain():
    surrogate_map = NegativeBinomial.surrogate_map()
    target = {"n": np.array(5.0), "p": np.array(1.0 / 11.0)}
    standard, aux = surrogate_map.initial(target)
    # Moment matching: the NB mean n (1 - p) / p equals the gamma mean α / β.
    np.testing.assert_allclose(float(standard.shape / standard.rate), 50.0, rtol=1e-13)
    back = surrogate_map.target(standard, aux)
    np.testing.assert_allclose(back["n"], 5.0, rtol=1e-13)
    np.testing.assert_allclose(back["p"], 1.0 / 11.0, rtol=1e-13)
    shapes, rates = np.array([2.0, -1.0, 2.0, 2.0]), np.array([0.5, 0.5, 1.0, 0.0])
    inside = surrogate_map.in_domain(type(standard)(shapes, rates))
    np.testing.assert_array_equal(inside, [True, False, False, False])


def test_mixture_surrogate_map_is_componentwise():
    surrogate_map = NegativeBinomialMixture.surrogate_map(2)
    target = {"weights": np.array([0.3, 0.7]), "n": np.array([2.0, 40.0]),
              "p": np.array([0.2, 0.6])}
    standard, aux = surrogate_map.initial(target)
    np.testing.assert_allclose(standard.weights, [0.3, 0.7])
    np.testing.assert_allclose(standard.components.shape, [2.0 * 0.8, 40.0 * 0.4])
    np.testing.assert_allclose(standard.components.rate, [0.2, 0.6])
    back = surrogate_map.target(standard, aux)
    for key in target:
        np.testing.assert_allclose(back[key], target[key], rtol=1e-14)
    # A leading batch axis of candidates gives one domain flag per candidate.
    batched = type(standard)(
        np.array([[0.3, 0.7], [0.3, 0.7]]),
        type(standard.components)(np.array([[1.0, 2.0], [1.0, 2.0]]),
                                  np.array([[0.5, 0.5], [0.5, 1.2]])),
    )
    np.testing.assert_array_equal(surrogate_map.in_domain(batched), [True, False])


def test_repr_and_params_are_copies():
    dist = NegativeBinomial(5.0, 0.25)
    assert repr(dist) == "NegativeBinomial(n=5, p=0.25)"
    params = dist.params
    params["n"] = np.asarray(1.0)
    assert float(dist.params["n"]) == 5.0
