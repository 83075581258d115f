"""Property-based tests (hypothesis) of the public API: round trips, normalisation, refusals.

Valid random parameters and data: conversions between natural, mean and standard parameters of
every family in :mod:`surrogate_natgrad.families` round-trip and agree with closed forms; the
negative binomial's ``from_moments`` inverts ``mean``/``var``; its pmf sums to one over the
support (truncated where SciPy's tail bound is below 1e-13) and agrees with SciPy; gamma and
Gaussian densities integrate to one in 1-D (``scipy.integrate.quad``); log-probabilities are
finite on the support. Invalid random inputs raise the documented exception and nothing else.

Example counts come from the hypothesis profile (``tests/_hypothesis_profiles.py``): 25
derandomized examples in CI, 500 with ``HYPOTHESIS_PROFILE=long``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.integrate as si
import scipy.special as sps
import scipy.stats as st
from hypothesis import assume, given
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp

from surrogate_natgrad import families
from surrogate_natgrad.distributions import NegativeBinomial, NegativeBinomialMixture
from surrogate_natgrad.errors import DataError, DomainError
from surrogate_natgrad.fitting import fit

C = math.sqrt(2.0 / math.pi)


def positive(low: float, high: float) -> hs.SearchStrategy[float]:
    """Positive floats spread over orders of magnitude (uniform in the logarithm)."""
    return hs.floats(math.log(low), math.log(high)).map(math.exp)


def probabilities(low: float = 0.01, high: float = 0.99) -> hs.SearchStrategy[float]:
    return hs.floats(low, high)


@hs.composite
def covariances(draw, dim: int) -> np.ndarray:
    """A symmetric positive definite matrix ``L Lᵀ + 0.1 I`` (condition number below ~10³)."""
    factor = draw(hnp.arrays(np.float64, (dim, dim), elements=hs.floats(-2.0, 2.0)))
    return factor @ factor.T + 0.1 * np.eye(dim)


def vectors(dim: int, bound: float = 5.0) -> hs.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, (dim,), elements=hs.floats(-bound, bound))


# ------------------------------------------------------------------------------ gamma


@given(shape=positive(0.05, 500.0), rate=positive(1e-3, 1e3))
def test_gamma_round_trips_and_closed_form(shape, rate):
    family = families.Gamma()
    standard = families.GammaStandard(np.asarray(shape), np.asarray(rate))
    natural = family.standard_to_natural(standard)
    mean = family.natural_to_mean(natural)
    # Closed forms (SciPy's digamma is the independent reference).
    np.testing.assert_allclose(natural.shape_minus_one, shape - 1.0, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(natural.neg_rate, -rate, rtol=1e-15)
    np.testing.assert_allclose(mean.mean_log, sps.digamma(shape) - math.log(rate),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mean.mean, shape / rate, rtol=1e-14)
    # natural -> standard, mean -> natural (root solve) -> standard.
    back = family.natural_to_standard(natural)
    np.testing.assert_allclose(back.shape, shape, rtol=1e-14)
    from_mean = family.mean_to_standard(mean)
    np.testing.assert_allclose(from_mean.shape, shape, rtol=1e-8)
    np.testing.assert_allclose(from_mean.rate, rate, rtol=1e-8)


@given(shape=positive(1.0, 30.0), rate=positive(0.1, 10.0))
def test_gamma_density_integrates_to_one(shape, rate):
    family = families.Gamma()
    natural = family.standard_to_natural(
        families.GammaStandard(np.asarray(shape), np.asarray(rate))
    )

    def density(x: float) -> float:
        return float(np.exp(family.log_prob(natural, np.asarray(x))))

    middle = shape / rate
    total = si.quad(density, 0.0, middle)[0] + si.quad(density, middle, np.inf)[0]
    assert total == pytest.approx(1.0, abs=1e-7)
    x = np.asarray([0.5 * middle, middle, 2.0 * middle])
    expected = st.gamma.logpdf(x, shape, scale=1.0 / rate)
    np.testing.assert_allclose(family.log_prob(natural, x), expected, rtol=1e-10)


# ------------------------------------------------------------------------------ Gaussians


@given(data=hs.data(), dim=hs.integers(1, 3))
def test_gaussian_round_trips_and_closed_form(data, dim):
    family = families.Gaussian(dim)
    mean = data.draw(vectors(dim))
    cov = data.draw(covariances(dim))
    standard = families.GaussianStandard(mean, cov)
    natural = family.standard_to_natural(standard)
    precision = np.linalg.inv(cov)
    np.testing.assert_allclose(natural.precision_mean, precision @ mean, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(natural.neg_half_precision, -0.5 * precision,
                               rtol=1e-8, atol=1e-10)
    moments = family.natural_to_mean(natural)
    np.testing.assert_allclose(moments.second_moment, cov + np.outer(mean, mean),
                               rtol=1e-8, atol=1e-8)
    for back in (family.natural_to_standard(natural), family.mean_to_standard(moments)):
        np.testing.assert_allclose(back.mean, mean, rtol=1e-7, atol=1e-7)
        np.testing.assert_allclose(back.cov, cov, rtol=1e-7, atol=1e-7)
    again = family.mean_to_natural(moments)
    np.testing.assert_allclose(again.neg_half_precision, natural.neg_half_precision,
                               rtol=1e-6, atol=1e-8)


def _integral_of_1d_density(family, natural, mean: float, sd: float) -> float:
    def density(x: float) -> float:
        return float(np.exp(family.log_prob(natural, np.asarray([x]))))

    # Forty standard deviations either side: the mass outside is below 1e-300.
    reach = 40.0 * sd
    return si.quad(density, mean - reach, mean + reach, points=[mean], limit=200)[0]


@given(mean=hs.floats(-10.0, 10.0), var=positive(1e-2, 1e2))
def test_one_dimensional_gaussian_densities_integrate_to_one(mean, var):
    sd = math.sqrt(var)
    diagonal = families.DiagonalGaussian(1)
    natural_diag = diagonal.standard_to_natural(
        families.DiagonalGaussianStandard(np.asarray([mean]), np.asarray([var]))
    )
    assert _integral_of_1d_density(diagonal, natural_diag, mean, sd) == pytest.approx(
        1.0, abs=1e-7
    )
    # The full-covariance family (slower per call: a Cholesky factor each time) is compared
    # pointwise with SciPy over the bulk and both tails; its integral is checked below.
    full = families.Gaussian(1)
    natural_full = full.standard_to_natural(
        families.GaussianStandard(np.asarray([mean]), np.asarray([[var]]))
    )
    points = mean + sd * np.linspace(-30.0, 30.0, 41)
    expected = st.norm.logpdf(points, mean, sd)
    for family, natural in ((full, natural_full), (diagonal, natural_diag)):
        np.testing.assert_allclose(
            family.log_prob(natural, points[:, None]), expected, rtol=1e-10, atol=1e-10
        )


def test_full_gaussian_density_integrates_to_one_in_1d():
    full = families.Gaussian(1)
    natural = full.standard_to_natural(
        families.GaussianStandard(np.asarray([0.7]), np.asarray([[2.5]]))
    )
    assert _integral_of_1d_density(full, natural, 0.7, math.sqrt(2.5)) == pytest.approx(
        1.0, abs=1e-9
    )


@given(data=hs.data(), dim=hs.integers(1, 4))
def test_diagonal_gaussian_round_trips(data, dim):
    family = families.DiagonalGaussian(dim)
    mean = data.draw(vectors(dim))
    var = data.draw(hnp.arrays(np.float64, (dim,), elements=positive(1e-3, 1e3)))
    natural = family.standard_to_natural(families.DiagonalGaussianStandard(mean, var))
    np.testing.assert_allclose(natural.precision_mean, mean / var, rtol=1e-14)
    np.testing.assert_allclose(natural.neg_half_precision, -0.5 / var, rtol=1e-14)
    moments = family.natural_to_mean(natural)
    np.testing.assert_allclose(moments.second_moment, var + mean**2, rtol=1e-12)
    back = family.mean_to_standard(moments)
    np.testing.assert_allclose(back.mean, mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(back.var, var, rtol=1e-6)


# ------------------------------------------------------------------------------ mixtures, MCEFs


@given(data=hs.data(), k=hs.integers(1, 4))
def test_gamma_mixture_round_trips(data, k):
    family = families.Mixture(families.Gamma(), k)
    raw = data.draw(hnp.arrays(np.float64, (k,), elements=hs.floats(0.05, 1.0)))
    weights = raw / raw.sum()
    shape = data.draw(hnp.arrays(np.float64, (k,), elements=positive(0.1, 100.0)))
    rate = data.draw(hnp.arrays(np.float64, (k,), elements=positive(0.01, 100.0)))
    standard = families.MixtureStandard(weights, families.GammaStandard(shape, rate))
    moments = family.standard_to_mean(standard)
    np.testing.assert_allclose(moments.weights, weights, rtol=1e-12)
    np.testing.assert_allclose(moments.weighted_components.mean, weights * shape / rate,
                               rtol=1e-12)
    for back in (
        family.mean_to_standard(moments),
        family.natural_to_standard(family.standard_to_natural(standard)),
    ):
        np.testing.assert_allclose(back.weights, weights, rtol=1e-9)
        np.testing.assert_allclose(back.components.shape, shape, rtol=1e-7)
        np.testing.assert_allclose(back.components.rate, rate, rtol=1e-7)


@given(data=hs.data(), dim=hs.integers(1, 3))
def test_skew_normal_mcef_closed_form_and_round_trip(data, dim):
    family = families.SkewNormalMCEF(dim)
    location = data.draw(vectors(dim, 3.0))
    skew = data.draw(vectors(dim, 3.0))
    cov = data.draw(covariances(dim))
    standard = families.SkewNormalMCEFStandard(location, cov, skew)
    moments = family.standard_to_mean(standard)
    # Closed form (method notes, section 3).
    cross = np.outer(location, skew)
    np.testing.assert_allclose(moments.mean, location + C * skew, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        moments.second_moment,
        np.outer(location, location) + np.outer(skew, skew) + C * (cross + cross.T) + cov,
        rtol=1e-10, atol=1e-10,
    )
    np.testing.assert_allclose(moments.abs_weighted_mean, C * location + skew,
                               rtol=1e-10, atol=1e-10)
    for back in (
        family.mean_to_standard(moments),
        family.natural_to_standard(family.standard_to_natural(standard)),
    ):
        np.testing.assert_allclose(back.location, location, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(back.skew, skew, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(back.cov, cov, rtol=1e-6, atol=1e-6)


@given(data=hs.data(), dim=hs.integers(1, 3), df=positive(0.5, 100.0))
def test_student_t_scale_mixture_round_trip(data, dim, df):
    family = families.StudentTScaleMixture(dim, df)
    location = data.draw(vectors(dim))
    scale = data.draw(covariances(dim))
    standard = families.GaussianStandard(location, scale)
    natural = family.standard_to_natural(standard)
    np.testing.assert_allclose(natural.neg_half_precision, -0.5 * np.linalg.inv(scale),
                               rtol=1e-8, atol=1e-10)
    back = family.mean_to_standard(family.natural_to_mean(natural))
    np.testing.assert_allclose(back.mean, location, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(back.cov, scale, rtol=1e-7, atol=1e-7)


# ------------------------------------------------------------------------------ negative binomial


@given(mean=positive(1e-3, 1e3), excess=positive(1e-3, 1e3))
def test_negative_binomial_from_moments_inverts_mean_and_var(mean, excess):
    var = mean * (1.0 + excess)
    dist = NegativeBinomial.from_moments(mean, var)
    assert float(dist.mean()) == pytest.approx(mean, rel=1e-10)
    assert float(dist.var()) == pytest.approx(var, rel=1e-10)
    # Independent: SciPy's moments at the returned (n, p).
    n, p = float(dist.params["n"]), float(dist.params["p"])
    assert st.nbinom.mean(n, p) == pytest.approx(mean, rel=1e-10)
    assert st.nbinom.var(n, p) == pytest.approx(var, rel=1e-10)


@given(n=positive(1e-2, 1e3), p=probabilities())
def test_negative_binomial_parameters_survive_a_trip_through_moments(n, p):
    dist = NegativeBinomial(n, p)
    again = NegativeBinomial.from_moments(dist.mean(), dist.var())
    assert float(again.params["n"]) == pytest.approx(n, rel=1e-8)
    assert float(again.params["p"]) == pytest.approx(p, rel=1e-10)


@given(n=positive(0.05, 50.0), p=probabilities(0.05, 0.99))
def test_negative_binomial_pmf_sums_to_one(n, p):
    # Truncate where SciPy's tail bound is negligible, and add the tail back.
    last = int(st.nbinom.isf(1e-13, n, p)) + 1
    support = np.arange(last + 1, dtype=np.float64)
    log_prob = NegativeBinomial(n, p).log_prob(support)
    total = float(np.exp(log_prob).sum()) + float(st.nbinom.sf(last, n, p))
    assert total == pytest.approx(1.0, abs=1e-10)
    picks = support[:: max(1, last // 7)]
    np.testing.assert_allclose(
        NegativeBinomial(n, p).log_prob(picks), st.nbinom.logpmf(picks, n, p), rtol=1e-9
    )


@given(
    n=positive(1e-3, 1e4),
    p=hs.floats(1e-6, 1.0 - 1e-9),
    counts=hnp.arrays(np.int64, (5,), elements=hs.integers(0, 10**7)),
)
def test_negative_binomial_log_prob_is_finite_on_the_support(n, p, counts):
    log_prob = NegativeBinomial(n, p).log_prob(counts.astype(np.float64))
    assert np.all(np.isfinite(log_prob))
    assert np.all(log_prob <= 1e-12)


@given(data=hs.data(), k=hs.integers(1, 3))
def test_negative_binomial_mixture_pmf_sums_to_one(data, k):
    raw = data.draw(hnp.arrays(np.float64, (k,), elements=hs.floats(0.05, 1.0)))
    weights = raw / raw.sum()
    n = data.draw(hnp.arrays(np.float64, (k,), elements=positive(0.1, 30.0)))
    p = data.draw(hnp.arrays(np.float64, (k,), elements=probabilities(0.1, 0.95)))
    last = int(max(st.nbinom.isf(1e-13, n, p))) + 1
    support = np.arange(last + 1, dtype=np.float64)
    mixture = NegativeBinomialMixture(weights, n, p)
    tail = float(np.sum(weights * st.nbinom.sf(last, n, p)))
    total = float(np.exp(mixture.log_prob(support)).sum()) + tail
    assert total == pytest.approx(1.0, abs=1e-10)
    assert np.all(np.isfinite(mixture.log_prob(support)))


# ------------------------------------------------------------------------------ invalid input

BAD_N = hs.one_of(hs.floats(-1e6, 0.0), hs.just(math.nan), hs.just(math.inf), hs.just(-math.inf))
BAD_P = hs.one_of(
    hs.floats(-1e6, 0.0), hs.floats(1.0, 1e6, exclude_min=True), hs.just(math.nan)
)


@given(n=BAD_N, p=probabilities())
def test_invalid_n_raises_domain_error_naming_n(n, p):
    with pytest.raises(DomainError, match=r"parameter 'n' of NegativeBinomial"):
        NegativeBinomial(n, p)


@given(n=positive(1e-3, 1e3), p=BAD_P)
def test_invalid_p_raises_domain_error_naming_p(n, p):
    with pytest.raises(DomainError, match=r"parameter 'p' of NegativeBinomial"):
        NegativeBinomial(n, p)


@given(mean=hs.floats(-1e3, 0.0) | positive(1e-3, 1e3), ratio=hs.floats(0.0, 1.0))
def test_invalid_moments_raise_domain_error(mean, ratio):
    # Either the mean is not positive or the variance does not exceed the mean.
    var = abs(mean) * ratio
    with pytest.raises(DomainError, match=r"parameter '(mean|var)' of NegativeBinomial"):
        NegativeBinomial.from_moments(mean, var)


@given(
    raw=hnp.arrays(np.float64, (3,), elements=hs.floats(0.05, 1.0)),
    offset=hs.one_of(hs.floats(1e-4, 10.0), hs.floats(-0.9, -1e-4)),
)
def test_mixture_weights_off_the_simplex_raise_domain_error(raw, offset):
    weights = raw / raw.sum() * (1.0 + offset)
    assume(np.all(weights >= 0))
    with pytest.raises(DomainError, match=r"'weights' of NegativeBinomialMixture"):
        NegativeBinomialMixture(weights, np.ones(3), np.full(3, 0.5))


BAD_COUNT = hs.one_of(
    hs.integers(-1000, -1).map(float),
    hs.floats(0.0, 1000.0).filter(lambda v: v != math.floor(v)),
    hs.sampled_from([math.nan, math.inf, -math.inf]),
)


@given(
    good=hnp.arrays(np.float64, hs.integers(1, 30), elements=hs.integers(0, 1000).map(float)),
    bad=BAD_COUNT,
    data=hs.data(),
)
def test_invalid_counts_raise_data_error_at_the_first_offender(good, bad, data):
    index = data.draw(hs.integers(0, good.shape[0]), label="index")
    counts = np.insert(good, index, bad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=rf"^data must hold .* at index {index}$"):
            fit(NegativeBinomial, counts)
        with pytest.raises(DataError, match=rf"at index {index}$"):
            NegativeBinomial.from_data(counts)


@given(mean_log_excess=hs.floats(0.0, 10.0), mean=positive(1e-3, 1e3))
def test_gamma_mean_outside_the_domain_raises_domain_error(mean_log_excess, mean):
    # The mean domain needs mean_log < log(mean) (Jensen); on or above it is invalid.
    family = families.Gamma()
    bad = families.GammaMean(np.asarray(math.log(mean) + mean_log_excess), np.asarray(mean))
    with pytest.raises(DomainError, match=r"mean-parameter domain of Gamma"):
        family.validate_mean(bad)


INTEGER_OPTIONS = ("max_iter", "batch_size", "grid_size", "eval_every", "mc_samples")
NOT_POSITIVE_INTEGERS = hs.one_of(
    hs.integers(-(10**6), 0),
    hs.floats(allow_nan=True, allow_infinity=True),
    hs.booleans(),
    hs.text(max_size=3),
)


@given(name=hs.sampled_from(INTEGER_OPTIONS), value=NOT_POSITIVE_INTEGERS)
def test_invalid_integer_options_of_fit_raise_data_error(name, value):
    assume(value is not None)
    with pytest.raises(DataError, match=rf"^{name} must be a positive integer"):
        fit(NegativeBinomial, np.arange(10), **{name: value})


@given(
    name=hs.sampled_from(["tol", "gtol", "step_size", "aux_step_size"]),
    value=hs.one_of(hs.floats(max_value=-1e-300), hs.sampled_from([math.nan, math.inf])),
)
def test_invalid_numeric_options_of_fit_raise_data_error(name, value):
    with pytest.raises(
        DataError, match=rf"^{name} must be a (positive|non-negative) finite number"
    ):
        fit(NegativeBinomial, np.arange(10), **{name: value})


@given(
    data=hnp.arrays(
        hs.sampled_from([np.float16, np.complex128, np.bool_]),
        hs.integers(1, 10),
        elements=hs.just(1),
    )
)
def test_unsupported_dtypes_raise_data_error(data):
    with pytest.raises(DataError, match=rf"dtype {data.dtype}"):
        fit(NegativeBinomial, data)
