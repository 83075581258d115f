"""Skew-normal, skew-t and skew-normal mixture targets: densities, gradients, sampling, checks.

References are independent: scipy.stats.skewnorm (d = 1), explicit formulas built from
scipy.stats.multivariate_normal / norm.logcdf and multivariate_t / t.logcdf, closed-form
moments, and finite differences.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sps
import scipy.stats as st

from surrogate_natgrad._compat import namespace
from surrogate_natgrad.distributions._skew_maps import (
    skew_normal_map,
    skew_normal_mixture_map,
    skew_t_map,
)
from surrogate_natgrad.distributions.skew_normal import SkewNormal, SkewNormalMixture
from surrogate_natgrad.distributions.skew_t import SkewT, log_t_cdf
from surrogate_natgrad.errors import BackendError, DataError, DomainError
from tests.helpers import central_difference, to_numpy

DIM = 3


def _params(seed: int, dim: int = DIM, skew: float = 2.0):
    rng = np.random.default_rng(seed)
    root = rng.normal(size=(dim, dim))
    scale = root @ root.T / dim + 0.5 * np.eye(dim)
    scale = (scale + scale.T) / 2
    return rng.normal(size=dim), scale, skew * rng.normal(size=dim)


def _points(seed: int, count: int = 40, dim: int = DIM) -> np.ndarray:
    return 2.0 * np.random.default_rng(seed).normal(size=(count, dim))


def _sn_reference(x, loc, scale, alpha):
    omega = np.sqrt(np.diag(scale))
    return (
        np.log(2.0)
        + st.multivariate_normal(loc, scale).logpdf(x)
        + st.norm.logcdf((x - loc) @ (alpha / omega))
    )


def _st_reference(x, loc, scale, alpha, df):
    dim = x.shape[-1]
    omega = np.sqrt(np.diag(scale))
    residual = x - loc
    quadratic = np.einsum("ni,ni->n", residual, np.linalg.solve(scale, residual.T).T)
    argument = residual @ (alpha / omega) * np.sqrt((df + dim) / (quadratic + df))
    return (
        np.log(2.0)
        + st.multivariate_t(loc, scale, df=df).logpdf(x)
        + st.t.logcdf(argument, df=df + dim)
    )


def _close(actual, expected, tol=1e-10):
    np.testing.assert_allclose(to_numpy(actual), expected, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- densities


def test_skew_normal_one_dimensional_matches_scipy(backend):
    x = np.linspace(-6.0, 4.0, 41)[:, None]
    for alpha in (-7.0, -0.4, 0.0, 3.0):  # a loop, not parameters: JAX compiles once
        dist = SkewNormal(
            backend.asarray([0.3]), backend.asarray([[2.5]]), backend.asarray([alpha])
        )
        expected = st.skewnorm(a=alpha, loc=0.3, scale=math.sqrt(2.5)).logpdf(x[:, 0])
        _close(dist.log_prob(backend.asarray(x)), expected)


def test_skew_normal_matches_explicit_formula(backend):
    loc, scale, alpha = _params(1)
    x = _points(2)
    dist = SkewNormal(backend.asarray(loc), backend.asarray(scale), backend.asarray(alpha))
    _close(dist.log_prob(backend.asarray(x)), _sn_reference(x, loc, scale, alpha))
    # a single point (no sample axis) gives a 0-d result
    single = dist.log_prob(backend.asarray(x[0]))
    assert tuple(single.shape) == ()
    _close(single, _sn_reference(x[:1], loc, scale, alpha)[0])


def test_skew_t_matches_explicit_formula(backend):
    loc, scale, alpha = _params(3)
    x = _points(4, count=25)
    for df in (0.7, 4.5, 60.0):
        dist = SkewT(*(backend.asarray(v) for v in (loc, scale, alpha, df)))
        _close(dist.log_prob(backend.asarray(x)), _st_reference(x, loc, scale, alpha, df))


def test_batched_parameters_match_one_at_a_time():
    sets = [_params(seed) for seed in (5, 6)]
    loc, scale, alpha = (np.stack(parts) for parts in zip(*sets, strict=True))
    df = np.array([3.0, 11.0])
    x = _points(7)
    params = {"loc": loc, "scale": scale, "alpha": alpha}
    nll = SkewNormal.mean_nll(params, x)
    nll_t = SkewT.mean_nll({**params, "df": df}, x)
    weights = np.arange(1.0, 41.0)
    weighted = SkewNormal.mean_nll(params, x, weights)
    for b in range(2):
        expected = -_sn_reference(x, loc[b], scale[b], alpha[b])
        np.testing.assert_allclose(nll[b], expected.mean(), rtol=1e-12)
        np.testing.assert_allclose(weighted[b], expected @ weights / weights.sum(), rtol=1e-12)
        expected_t = -_st_reference(x, loc[b], scale[b], alpha[b], df[b])
        np.testing.assert_allclose(nll_t[b], expected_t.mean(), rtol=1e-12)


def test_mixture_matches_explicit_formula(backend):
    sets = [_params(seed) for seed in (8, 9)]
    loc, scale, alpha = (np.stack(parts) for parts in zip(*sets, strict=True))
    weights = np.array([0.35, 0.65])
    x = _points(10)
    per_component = np.stack(
        [_sn_reference(x, loc[k], scale[k], alpha[k]) for k in range(2)], axis=-1
    )
    expected = sps.logsumexp(per_component + np.log(weights), axis=-1)
    dist = SkewNormalMixture(*(backend.asarray(v) for v in (weights, loc, scale, alpha)))
    _close(dist.log_prob(backend.asarray(x)), expected)
    nll = SkewNormalMixture.mean_nll(dist.params, backend.asarray(x))
    _close(nll, -expected.mean())


def _mp_log_t_cdf(df: float, t: float) -> float:
    """log T_df(t) = log(½ I_x(df/2, ½)), x = df/(df+t²), for t <= 0, in 40-digit mpmath."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(40):
        x = mpmath.mpf(df) / (df + mpmath.mpf(t) ** 2)
        half = mpmath.mpf(1) / 2
        return float(mpmath.log(mpmath.betainc(df * half, half, 0, x, regularized=True) / 2))


def test_log_t_cdf_matches_scipy_and_mpmath():
    for df, points in (
        (3.0, -np.logspace(0, 12, 13)),
        (30.0, -np.logspace(0, 4, 13)),
        (1010.0, -np.logspace(0, 2.6, 13)),
    ):
        t = np.concatenate([points, -points[::3], [0.0]])
        got = log_t_cdf(np.full_like(t, df), t)
        assert np.all(np.isfinite(got))
        expected = st.t.logcdf(t, df=df)
        finite = np.isfinite(expected)
        np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-11, atol=1e-14)
        # the far lower tail, where T underflows in float64 (scipy gives -inf there)
        tail = np.array([_mp_log_t_cdf(df, value) for value in points[-4:]])
        np.testing.assert_allclose(got[len(points) - 4 : len(points)], tail, rtol=1e-11)


# ----------------------------------------------------------------------------- gradients


def _flat_to_params(theta, dim, with_df):
    loc = theta[:dim]
    scale_flat = theta[dim : dim + dim * dim]
    alpha = theta[dim + dim * dim : 2 * dim + dim * dim]
    out = [loc, scale_flat, alpha]
    if with_df:
        out.append(theta[-1])
    return out


@pytest.mark.parametrize("kind", ["skew_normal", "skew_t"])
def test_log_likelihood_gradient_matches_finite_differences(ad_backend, kind):
    from surrogate_natgrad import autodiff

    loc, scale, alpha = _params(11, dim=2)
    dim = 2
    x = _points(12, count=15, dim=dim)
    with_df = kind == "skew_t"
    theta = np.concatenate([loc, scale.ravel(), alpha] + ([[4.5]] if with_df else []))

    def loss_np(values):
        parts = _flat_to_params(values, dim, with_df)
        matrix = parts[1].reshape(dim, dim)
        matrix = (matrix + matrix.T) / 2
        if with_df:
            return -_st_reference(x, parts[0], matrix, parts[2], parts[3]).sum()
        return -_sn_reference(x, parts[0], matrix, parts[2]).sum()

    # the differentiated function sees its data as torch views under a bridge
    data = ad_backend.inner(ad_backend.asarray(x))

    def loss(values):
        xp = namespace(values)
        parts = _flat_to_params(values, dim, with_df)
        params = {
            "loc": parts[0],
            "scale": xp.reshape(parts[1], (dim, dim)),
            "alpha": parts[2],
        }
        if with_df:
            params["df"] = parts[3]
            return -xp.sum(SkewT.log_prob_from_params(params, data))
        return -xp.sum(SkewNormal.log_prob_from_params(params, data))

    point = ad_backend.asarray(theta)
    ad = autodiff.get_backend(None, point)
    value, grad = ad.value_and_grad(loss)(point)
    np.testing.assert_allclose(float(value), loss_np(theta), rtol=1e-11)
    np.testing.assert_allclose(
        to_numpy(grad), central_difference(loss_np, theta, step=1e-4), rtol=2e-6, atol=1e-7
    )


def test_tail_gradient_with_respect_to_df(ad_backend):
    from surrogate_natgrad import autodiff

    t = np.array([-60.0, -9.0, -1.5, 0.7, 8.0])
    df = np.array([1010.0, 30.0, 4.0, 7.0, 12.0])

    def loss_np(values):
        # mpmath for the entry whose CDF underflows in float64
        return float(np.sum(st.t.logcdf(t[1:], df=values[1:]))) + _mp_log_t_cdf(values[0], t[0])

    # the differentiated function sees its data as torch views under a bridge
    t_ad = ad_backend.inner(ad_backend.asarray(t))

    def loss(values):
        return namespace(values).sum(log_t_cdf(values, t_ad))

    point = ad_backend.asarray(df)
    ad = autodiff.get_backend(None, point)
    _, grad = ad.value_and_grad(loss)(point)
    np.testing.assert_allclose(
        to_numpy(grad), central_difference(loss_np, df, step=1e-4), rtol=1e-5, atol=1e-9
    )


# ----------------------------------------------------------------------------- moments


def _closed_form_sn_moments(loc, scale, alpha):
    omega = np.sqrt(np.diag(scale))
    corr = scale / np.outer(omega, omega)
    delta = corr @ alpha / np.sqrt(1 + alpha @ corr @ alpha)
    beta = omega * delta
    return loc + np.sqrt(2 / np.pi) * beta, scale - (2 / np.pi) * np.outer(beta, beta), beta


def _assert_sample_moments(draws, mean, cov):
    """Sample mean and covariance within five standard errors (SEs from the sample)."""
    count = draws.shape[0]
    centred = draws - draws.mean(axis=0)
    mean_se = np.sqrt(np.diag(cov) / count)
    assert np.all(np.abs(draws.mean(axis=0) - mean) <= 5 * mean_se)
    products = centred[:, :, None] * centred[:, None, :]
    cov_se = products.std(axis=0) / np.sqrt(count)
    assert np.all(np.abs(products.mean(axis=0) - cov) <= 5 * cov_se + 1e-12)


def test_skew_normal_moments_closed_form(backend):
    loc, scale, alpha = _params(13)
    mean, cov, _ = _closed_form_sn_moments(loc, scale, alpha)
    dist = SkewNormal(backend.asarray(loc), backend.asarray(scale), backend.asarray(alpha))
    _close(dist.mean(), mean, 1e-12)
    _close(dist.cov(), cov, 1e-12)
    _close(dist.var(), np.diag(cov), 1e-12)
    one_d = SkewNormal(backend.asarray([0.3]), backend.asarray([[2.5]]), backend.asarray([-4.0]))
    reference = st.skewnorm(a=-4.0, loc=0.3, scale=math.sqrt(2.5))
    _close(one_d.mean(), [reference.mean()], 1e-12)
    _close(one_d.var(), [reference.var()], 1e-12)


def test_skew_t_moments_closed_form():
    loc, scale, alpha = _params(14)
    df = 7.0
    _, _, beta = _closed_form_sn_moments(loc, scale, alpha)
    b = np.sqrt(df / np.pi) * np.exp(sps.gammaln((df - 1) / 2) - sps.gammaln(df / 2))
    dist = SkewT(loc, scale, alpha, df)
    np.testing.assert_allclose(dist.mean(), loc + b * beta, rtol=1e-12)
    np.testing.assert_allclose(
        dist.cov(), df / (df - 2) * scale - b * b * np.outer(beta, beta), rtol=1e-12
    )
    heavy = SkewT(loc, scale, alpha, 1.5)
    assert np.all(np.isinf(heavy.cov()))
    assert np.all(np.isnan(SkewT(loc, scale, alpha, 0.9).mean()))


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_samplers_reproduce_mean_and_covariance(name):
    from tests.conftest import Backend

    backend = Backend(name)
    loc, scale, alpha = _params(15)
    count = 40_000
    dist = SkewNormal(backend.asarray(loc), backend.asarray(scale), backend.asarray(alpha))
    draws = dist.sample(count, seed=0)
    assert type(draws) is type(backend.asarray(np.zeros(2)))
    assert tuple(draws.shape) == (count, DIM)
    mean, cov, _ = _closed_form_sn_moments(loc, scale, alpha)
    _assert_sample_moments(to_numpy(draws), mean, cov)
    # skew-t with finite fourth moments (df > 4) so the covariance SEs are meaningful
    heavy = SkewT(*(backend.asarray(v) for v in (loc, scale, alpha, 9.0)))
    draws_t = to_numpy(heavy.sample(count, seed=1))
    _assert_sample_moments(draws_t, to_numpy(heavy.mean()), to_numpy(heavy.cov()))
    # same seed, same draws
    np.testing.assert_array_equal(
        to_numpy(dist.sample(5, seed=3)), to_numpy(dist.sample(5, seed=3))
    )


def test_mixture_sampler_and_moments():
    sets = [_params(seed) for seed in (16, 17)]
    loc, scale, alpha = (np.stack(parts) for parts in zip(*sets, strict=True))
    loc[1] += 3.0
    weights = np.array([0.3, 0.7])
    dist = SkewNormalMixture(weights, loc, scale, alpha)
    moments = [_closed_form_sn_moments(loc[k], scale[k], alpha[k]) for k in range(2)]
    mean = sum(w * m[0] for w, m in zip(weights, moments, strict=True))
    cov = sum(
        w * (m[1] + np.outer(m[0] - mean, m[0] - mean))
        for w, m in zip(weights, moments, strict=True)
    )
    np.testing.assert_allclose(dist.mean(), mean, rtol=1e-12)
    np.testing.assert_allclose(dist.cov(), cov, rtol=1e-12)
    draws = dist.sample((200, 200), seed=4)
    assert draws.shape == (200, 200, DIM)
    _assert_sample_moments(draws.reshape(-1, DIM), mean, cov)


# ----------------------------------------------------------------------------- validation


def test_parameter_validation_errors():
    loc, scale, alpha = _params(18)
    not_pd = scale.copy()
    not_pd[0, 0] = -1.0
    with pytest.raises(DomainError, match=r"'scale'.*positive definite"):
        SkewNormal(loc, not_pd, alpha)
    asymmetric = scale.copy()
    asymmetric[0, 1] += 0.5
    with pytest.raises(DomainError, match=r"'scale'.*symmetric.*\(0, 1\)"):
        SkewNormal(loc, asymmetric, alpha)
    with pytest.raises(DomainError, match=r"'scale'.*shape"):
        SkewNormal(loc, np.eye(2), alpha)
    with pytest.raises(DomainError, match=r"'alpha'.*shape"):
        SkewNormal(loc, scale, alpha[:2])
    bad_alpha = alpha.copy()
    bad_alpha[2] = np.nan
    with pytest.raises(DomainError, match=r"'alpha'.*finite.*nan.*index \(2,\)"):
        SkewNormal(loc, scale, bad_alpha)
    with pytest.raises(DomainError, match=r"'df'.*positive.*-1.0"):
        SkewT(loc, scale, alpha, -1.0)
    with pytest.raises(DomainError, match=r"'df'.*batch shape"):
        SkewT(loc, scale, alpha, np.array([3.0, 4.0]))
    with pytest.raises(DomainError, match=r"'df'.*above 2"):
        SkewT.check_start({"loc": loc, "scale": scale, "alpha": alpha, "df": np.asarray(1.5)})
    stacked = np.stack([scale, scale])
    with pytest.raises(DomainError, match=r"'weights'.*summing to one"):
        SkewNormalMixture(
            np.array([0.5, 0.6]), np.stack([loc, loc]), stacked, np.stack([alpha] * 2)
        )
    with pytest.raises(DomainError, match=r"'weights'.*shape"):
        SkewNormalMixture(np.array([1.0]), np.stack([loc, loc]), stacked, np.stack([alpha] * 2))
    with pytest.raises(DomainError, match=r"positive"):
        SkewNormalMixture.check_start(
            {
                "weights": np.array([0.0, 1.0]),
                "loc": np.stack([loc, loc]),
                "scale": stacked,
                "alpha": np.stack([alpha] * 2),
            }
        )
    # no validation: NaN instead of an error, for out-of-domain line-search candidates
    SkewNormal(loc, scale, bad_alpha, validate=False)


def test_data_validation_errors(backend):
    good = _points(19)
    assert SkewNormal.check_data(backend.asarray(good)).dtype == backend.xp.float64
    bad = good.copy()
    bad[3, 1] = np.inf
    with pytest.raises(
        DataError, match=r"data must hold finite values; found inf at index \(3, 1\)"
    ):
        SkewNormal.check_data(backend.asarray(bad))
    with pytest.raises(DataError, match=r"validation_data.*shape \(N, d\)"):
        SkewT.check_data(backend.asarray(good[:, 0]), "validation_data")
    with pytest.raises(DataError, match=r"empty"):
        SkewNormal.check_data(backend.asarray(np.zeros((0, 3))))
    with pytest.raises(BackendError):
        SkewNormal.check_data(good.tolist())


# ----------------------------------------------------------------------------- maps


def test_maps_round_trip_and_coordinates():
    loc, scale, alpha = _params(20)
    target = {"loc": loc, "scale": scale, "alpha": alpha}
    for surrogate_map, params in (
        (skew_normal_map(DIM), target),
        (skew_t_map(DIM), {**target, "df": np.asarray(7.0)}),
    ):
        standard, aux = surrogate_map.initial(params)
        np.testing.assert_allclose(aux["skew"], alpha / np.sqrt(np.diag(scale)), rtol=1e-14)
        back = surrogate_map.target(standard, aux)
        for key, value in params.items():
            np.testing.assert_allclose(back[key], value, rtol=1e-14)
        unconstrained = surrogate_map.aux_inverse(aux)
        if "df" in params:
            np.testing.assert_allclose(unconstrained["df"], np.log(5.0), rtol=1e-14)
    for cls, params in ((SkewNormal, target), (SkewT, {**target, "df": np.asarray(7.0)})):
        coords = cls.to_unconstrained(params)
        np.testing.assert_allclose(coords["scale_root"].T @ coords["scale_root"], scale)
        back = cls.from_unconstrained(coords)
        for key, value in params.items():
            np.testing.assert_allclose(back[key], value, rtol=1e-12)
    mixture_map = skew_normal_mixture_map(DIM, 2)
    mixture = {
        "weights": np.array([0.4, 0.6]),
        "loc": np.stack([loc, -loc]),
        "scale": np.stack([scale, 2 * scale]),
        "alpha": np.stack([alpha, -alpha]),
    }
    standard, aux = mixture_map.initial(mixture)
    back = mixture_map.target(standard, aux)
    for key, value in mixture.items():
        np.testing.assert_allclose(back[key], value, rtol=1e-14)
    coords = SkewNormalMixture.to_unconstrained(mixture)
    back = SkewNormalMixture.from_unconstrained(coords)
    for key, value in mixture.items():
        np.testing.assert_allclose(back[key], value, rtol=1e-12)


def test_from_data_starts_are_valid():
    loc, scale, alpha = _params(21, skew=4.0)
    data = SkewNormal(loc, scale, alpha).sample(5000, seed=5)
    start = SkewNormal.from_data(data)
    # the start is in the domain, skewed the right way, and its moments are near the sample's
    SkewNormal.check_start(start.params)
    spread = np.sqrt(np.diag(np.cov(data.T)))
    assert np.all(np.abs(start.mean() - data.mean(axis=0)) <= 0.2 * spread)
    np.testing.assert_allclose(np.diag(start.cov()), spread**2, rtol=0.2)
    assert np.all(np.sign(start.delta()) == np.sign(st.skew(data)))
    start_t = SkewT.from_data(data)
    SkewT.check_start(start_t.params)
    mixture = SkewNormalMixture.from_data(data, n_components=3)
    SkewNormalMixture.check_start(mixture.params)
    np.testing.assert_allclose(np.sum(mixture.params["weights"]), 1.0)
    with pytest.raises(DataError, match=r"n_components"):
        SkewNormalMixture.from_data(data)
