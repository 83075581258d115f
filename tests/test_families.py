"""Tests of the exponential-family surrogates against independent references.

Generic checks run on every family: mean parameters equal ∇A and the closed-form Fisher
equals the Hessian of A (autodiff, every ``ad_xp`` backend); conversions round-trip.
Family-specific checks compare densities, entropies and KL divergences with scipy.stats or
closed forms written here in NumPy, and samples with moments.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats

from surrogate_natgrad import autodiff, random
from surrogate_natgrad.errors import DomainError
from surrogate_natgrad.families import (
    DiagonalGaussian,
    DiagonalGaussianStandard,
    Gamma,
    GammaStandard,
    Gaussian,
    GaussianMean,
    GaussianNatural,
    GaussianStandard,
    Mixture,
    MixtureStandard,
    SkewNormalMCEF,
    SkewNormalMCEFStandard,
    StudentTScaleMixture,
)
from tests.helpers import central_difference, to_numpy

BATCH = 2


def _spd(rng, n, batch=()):
    w = rng.normal(size=(*batch, n, n))
    return w @ np.swapaxes(w, -1, -2) / n + 0.5 * np.eye(n)


# Each case: (family, standard parameters in NumPy with a leading batch of BATCH).
def _case(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if name == "gaussian":
        return Gaussian(3), GaussianStandard(rng.normal(size=(BATCH, 3)), _spd(rng, 3, (BATCH,)))
    if name == "diagonal":
        return DiagonalGaussian(3), DiagonalGaussianStandard(
            rng.normal(size=(BATCH, 3)), rng.uniform(0.5, 2.0, size=(BATCH, 3))
        )
    if name == "gamma":
        return Gamma(), GammaStandard(
            rng.uniform(0.5, 5.0, size=(BATCH,)), rng.uniform(0.5, 3.0, size=(BATCH,))
        )
    if name == "mixture_gaussian":
        weights = rng.dirichlet(np.ones(3), size=BATCH)
        comps = GaussianStandard(rng.normal(size=(BATCH, 3, 2)), _spd(rng, 2, (BATCH, 3)))
        return Mixture(Gaussian(2), 3), MixtureStandard(weights, comps)
    if name == "mixture_gamma":
        weights = rng.dirichlet(np.ones(3), size=BATCH)
        comps = GammaStandard(rng.uniform(0.5, 5, (BATCH, 3)), rng.uniform(0.5, 3, (BATCH, 3)))
        return Mixture(Gamma(), 3), MixtureStandard(weights, comps)
    if name == "skew_normal":
        return SkewNormalMCEF(2), SkewNormalMCEFStandard(
            rng.normal(size=(BATCH, 2)), _spd(rng, 2, (BATCH,)), rng.normal(size=(BATCH, 2))
        )
    if name == "student_t":
        return StudentTScaleMixture(2, 5.0), GaussianStandard(
            rng.normal(size=(BATCH, 2)), _spd(rng, 2, (BATCH,))
        )
    raise ValueError(name)


CASES = [
    "gaussian",
    "diagonal",
    "gamma",
    "mixture_gaussian",
    "mixture_gamma",
    "skew_normal",
    "student_t",
]
# Mean → natural for gamma components needs the implicit root solve.
NEEDS_ROOT = {"gamma", "mixture_gamma"}


def _to(backend, tree, dtype=np.float64):
    if isinstance(tree, tuple):
        return type(tree)(*(_to(backend, t, dtype) for t in tree))
    return backend.asarray(np.asarray(tree, dtype=dtype))


def _np(tree):
    if isinstance(tree, tuple):
        return [x for t in tree for x in _np(t)]
    return [to_numpy(tree)]


def _assert_tree_close(a, b, rtol=1e-10, atol=1e-10):
    for x, y in zip(_np(a), _np(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", CASES)
def test_mean_parameters_are_gradient_of_log_partition(ad_backend, case):
    family, standard = _case(case)
    natural = family.standard_to_natural(_to(ad_backend, standard))
    flat = family.flatten_natural(natural)
    backend = autodiff.get_backend(None, flat)

    def total_log_partition(vector):
        return family.log_partition(family.unflatten_natural(vector)).sum()

    _, gradient = _jit(ad_backend, backend.value_and_grad(total_log_partition))(flat)
    expected = family.flatten_mean(family.natural_to_mean(natural))
    np.testing.assert_allclose(to_numpy(gradient), to_numpy(expected), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("case", CASES)
def test_fisher_is_hessian_of_log_partition(ad_backend, case):
    family, standard = _case(case)
    single = type(standard)(*(_first(t) for t in standard))
    natural = family.standard_to_natural(_to(ad_backend, single))
    flat = family.flatten_natural(natural)
    backend = autodiff.get_backend(None, flat)
    hessian = _jit(
        ad_backend, backend.hessian(lambda v: family.log_partition(family.unflatten_natural(v)))
    )(flat)
    fisher = _jit(ad_backend, lambda v: family.fisher(family.unflatten_natural(v)))(flat)
    assert tuple(fisher.shape) == (family.flat_dim, family.flat_dim)
    np.testing.assert_allclose(to_numpy(fisher), to_numpy(hessian), rtol=1e-8, atol=1e-10)


def _jit(ad_backend, fun):
    """Compile with JAX (its eager mode is slow op by op); other backends run as they are."""
    if ad_backend.name == "jax":
        import jax

        return jax.jit(fun)
    return fun


def _first(tree):
    if isinstance(tree, tuple):
        return type(tree)(*(_first(t) for t in tree))
    return tree[0]


@pytest.mark.parametrize("case", CASES)
def test_conversions_round_trip(backend, case):
    if case in NEEDS_ROOT and backend.name == "array_api_strict":
        pytest.skip("implicit_root needs an autodiff-capable namespace")
    family, standard = _case(case)
    standard_b = _to(backend, standard)
    natural = family.standard_to_natural(standard_b)
    mean = family.natural_to_mean(natural)
    _assert_tree_close(family.mean_to_natural(mean), natural)
    _assert_tree_close(family.natural_to_standard(natural), standard_b)
    _assert_tree_close(family.mean_to_standard(mean), standard_b)
    _assert_tree_close(family.standard_to_mean(standard_b), mean)
    _assert_tree_close(family.unflatten_natural(family.flatten_natural(natural)), natural)
    assert to_numpy(family.in_natural_domain(natural)).all()
    assert to_numpy(family.in_mean_domain(mean)).all()
    family.validate_natural(natural)
    family.validate_mean(mean)


@pytest.mark.parametrize("case", CASES)
def test_float32_stays_float32(backend, case):
    if backend.name == "jax" and case not in ("gaussian", "gamma"):
        pytest.skip("eager JAX is slow op by op; its float32 path is covered by the simple cases")
    if case in NEEDS_ROOT and backend.name == "array_api_strict":
        pytest.skip("implicit_root needs an autodiff-capable namespace")
    family, standard = _case(case)
    standard32 = _to(backend, standard, dtype=np.float32)
    natural = family.standard_to_natural(standard32)
    mean = family.natural_to_mean(natural)
    outputs = [family.log_partition(natural), *_leaves(family.mean_to_natural(mean))]
    outputs.append(family.entropy(natural))
    for out in outputs:
        assert to_numpy(out).dtype == np.float32
    _assert_tree_close(family.mean_to_natural(mean), natural, rtol=2e-3, atol=2e-3)


def _leaves(tree):
    if isinstance(tree, tuple):
        return [x for t in tree for x in _leaves(t)]
    return [tree]


@pytest.mark.parametrize("case", CASES)
def test_kl_matches_generic_identity_and_is_zero_on_self(backend, case):
    """KL(p||q) = A(q) - A(p) - <η_q - η_p, m_p> (closed forms are checked separately)."""
    if case in NEEDS_ROOT and backend.name == "array_api_strict":
        pytest.skip("implicit_root needs an autodiff-capable namespace")
    family, standard = _case(case)
    natural = family.standard_to_natural(_to(backend, standard))
    np.testing.assert_allclose(to_numpy(family.kl(natural, natural)), 0.0, atol=1e-10)
    other = _flip_tree(natural)
    kl = to_numpy(family.kl(natural, other))
    assert np.all(kl > 0)


def _flip_tree(tree):
    """Reverse the batch axis of every leaf (pairs each member with another one)."""
    if isinstance(tree, tuple):
        return type(tree)(*(_flip_tree(t) for t in tree))
    return _flip0(tree)


def _flip0(arr):
    from surrogate_natgrad._compat import namespace

    xp = namespace(arr)
    return xp.flip(arr, axis=0)


# ----------------------------------------------------------------------------- Gaussian


def test_gaussian_density_entropy_kl_match_scipy(backend):
    family, standard = _case("gaussian")
    natural = family.standard_to_natural(_to(backend, standard))
    rng = np.random.default_rng(10)
    x = rng.normal(size=(4, BATCH, 3))
    log_prob = to_numpy(family.log_prob(natural, backend.asarray(x)))
    for b in range(BATCH):
        dist = scipy.stats.multivariate_normal(standard.mean[b], standard.cov[b])
        np.testing.assert_allclose(log_prob[:, b], dist.logpdf(x[:, b]), rtol=1e-10)
        np.testing.assert_allclose(to_numpy(family.entropy(natural))[b], dist.entropy(), rtol=1e-10)
    # KL closed form in NumPy with explicit inverses (independent of the Cholesky code).
    m0, m1 = standard.mean
    s0, s1 = standard.cov
    expected = 0.5 * (
        np.trace(np.linalg.solve(s1, s0))
        + (m1 - m0) @ np.linalg.solve(s1, m1 - m0)
        - 3
        + np.linalg.slogdet(s1)[1]
        - np.linalg.slogdet(s0)[1]
    )
    other = GaussianNatural(*(_flip0(t) for t in natural))
    np.testing.assert_allclose(to_numpy(family.kl(natural, other))[0], expected, rtol=1e-10)
    # the generic exponential-family identity agrees with the Cholesky-based closed form
    generic = super(Gaussian, family).kl(natural, other)
    np.testing.assert_allclose(to_numpy(generic)[0], expected, rtol=1e-9)


def test_gaussian_minimal_coordinates_and_symmetry(backend):
    family = Gaussian(3)
    rng = np.random.default_rng(11)
    matrix = rng.normal(size=(2, 3, 3))
    vector = rng.normal(size=(2, 3))
    params = GaussianNatural(backend.asarray(vector), backend.asarray(matrix))
    first, upper = family.to_minimal(params)
    sym = (matrix + np.swapaxes(matrix, -1, -2)) / 2
    np.testing.assert_allclose(to_numpy(upper), sym[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]])
    rebuilt = family.from_minimal(first, upper)
    np.testing.assert_allclose(to_numpy(rebuilt.neg_half_precision), sym)
    np.testing.assert_allclose(to_numpy(family.symmetrize(params)[1]), sym)


def test_gaussian_gradient_with_respect_to_matrix_is_symmetric(ad_backend):
    family, standard = _case("gaussian")
    natural = family.standard_to_natural(_to(ad_backend, standard))
    backend = autodiff.get_backend(None, natural.neg_half_precision)
    # the differentiated function sees its data as torch views under a bridge
    precision_mean = ad_backend.inner(natural.precision_mean)

    def total(matrix):
        return family.log_partition(GaussianNatural(precision_mean, matrix)).sum()

    _, grad = backend.value_and_grad(total)(natural.neg_half_precision)
    grad = to_numpy(grad)
    np.testing.assert_allclose(grad, np.swapaxes(grad, -1, -2), atol=1e-12)


def test_gaussian_natural_cotangent_matches_finite_differences(backend):
    # A smooth function of (μ, Σ) with a non-symmetric matrix gradient; its gradient in the
    # natural parameters, chained in closed form, against central differences in (h, J).
    family = Gaussian(3)
    rng = np.random.default_rng(13)
    weights = rng.normal(size=(3, 3))
    cov = weights @ weights.T / 3 + 0.5 * np.eye(3)
    mean = rng.normal(size=3)
    natural = family.standard_to_natural(GaussianStandard(mean, cov))
    vector, matrix = rng.normal(size=3), rng.normal(size=(3, 3))

    def value(mu, sigma):
        return float(np.sin(vector @ mu) + np.sum(matrix * sigma) + (mu @ sigma @ mu) ** 2)

    grad_mean = np.cos(vector @ mean) * vector + 4 * (mean @ cov @ mean) * (cov @ mean)
    grad_cov = matrix + 2 * (mean @ cov @ mean) * np.outer(mean, mean)
    standard = GaussianStandard(backend.asarray(mean), backend.asarray(cov))
    cotangent = GaussianStandard(backend.asarray(grad_mean), backend.asarray(grad_cov))
    result = family.natural_cotangent(standard, cotangent)

    def of_natural(precision_mean, neg_half_precision):
        found = family.natural_to_standard(GaussianNatural(precision_mean, neg_half_precision))
        return value(np.asarray(found.mean), np.asarray(found.cov))

    expected_h = central_difference(
        lambda h: of_natural(h, np.asarray(natural.neg_half_precision)),
        np.asarray(natural.precision_mean),
    )
    expected_j = central_difference(
        lambda j: of_natural(np.asarray(natural.precision_mean), j),
        np.asarray(natural.neg_half_precision),
    )
    np.testing.assert_allclose(to_numpy(result.precision_mean), expected_h, rtol=1e-6)
    # natural_to_standard reads sym(J), so the reference gradient is already symmetric.
    np.testing.assert_allclose(to_numpy(result.neg_half_precision), expected_j, rtol=1e-6)
    assert type(result.neg_half_precision) is type(standard.cov)


def test_gaussian_samples_match_moments():
    family, standard = _case("gaussian")
    natural = family.standard_to_natural(_to_numpy_backend(standard))
    rng = random.default_rng(0, like=natural.precision_mean)
    samples = to_numpy(family.sample(natural, rng, 20000))
    assert samples.shape == (20000, BATCH, 3)
    count = samples.shape[0]
    for b in range(BATCH):
        cov = standard.cov[b]
        variances = np.diag(cov)
        # Five standard errors of the sample mean and of the sample covariance (Gaussian case:
        # Var(S_ij) = (S_ii S_jj + S_ij^2) / n), so the check fails only for a real bias.
        mean_se = np.sqrt(variances / count)
        cov_se = np.sqrt((np.outer(variances, variances) + cov**2) / count)
        assert np.all(np.abs(samples[:, b].mean(0) - standard.mean[b]) < 5 * mean_se)
        assert np.all(np.abs(np.cov(samples[:, b].T) - cov) < 5 * cov_se)


def _to_numpy_backend(tree):
    if isinstance(tree, tuple):
        return type(tree)(*(_to_numpy_backend(t) for t in tree))
    return np.asarray(tree, dtype=np.float64)


def test_gaussian_samples_on_every_backend(backend):
    family, standard = _case("gaussian")
    natural = family.standard_to_natural(_to(backend, standard))
    rng = random.default_rng(1, like=natural.precision_mean)
    samples = family.sample(natural, rng, (5,))
    assert type(samples) is type(natural.precision_mean)
    assert tuple(samples.shape) == (5, BATCH, 3)


def test_domain_checks_and_validation(backend):
    family = Gaussian(2)
    good = GaussianNatural(backend.asarray(np.zeros(2)), backend.asarray(-0.5 * np.eye(2)))
    bad = GaussianNatural(backend.asarray(np.zeros(2)), backend.asarray(0.5 * np.eye(2)))
    assert bool(to_numpy(family.in_natural_domain(good)))
    assert not bool(to_numpy(family.in_natural_domain(bad)))
    with pytest.raises(DomainError, match="natural"):
        family.validate_natural(bad, name="natural")
    bad_mean = GaussianMean(backend.asarray(np.ones(2)), backend.asarray(np.eye(2)))
    assert not bool(to_numpy(family.in_mean_domain(bad_mean)))
    with pytest.raises(DomainError, match="second_moment"):
        family.validate_mean(bad_mean)
    gamma = Gamma()
    from surrogate_natgrad.families import GammaMean, GammaNatural

    flags = gamma.in_natural_domain(
        GammaNatural(
            backend.asarray(np.array([0.5, -1.5, 0.5])),
            backend.asarray(np.array([-1.0, -1.0, 1.0])),
        )
    )
    np.testing.assert_array_equal(to_numpy(flags), [True, False, False])
    flags = gamma.in_mean_domain(
        GammaMean(
            backend.asarray(np.array([0.0, 1.0, 0.0])), backend.asarray(np.array([2.0, 2.0, -1.0]))
        )
    )
    np.testing.assert_array_equal(to_numpy(flags), [True, False, False])


# ---------------------------------------------------------------------- Diagonal Gaussian


def test_diagonal_gaussian_matches_scipy_norm(backend):
    family, standard = _case("diagonal")
    natural = family.standard_to_natural(_to(backend, standard))
    x = np.random.default_rng(12).normal(size=(4, BATCH, 3))
    sd = np.sqrt(standard.var)
    expected = scipy.stats.norm(standard.mean, sd).logpdf(x).sum(-1)
    np.testing.assert_allclose(to_numpy(family.log_prob(natural, backend.asarray(x))), expected)
    np.testing.assert_allclose(
        to_numpy(family.entropy(natural)), scipy.stats.norm(standard.mean, sd).entropy().sum(-1)
    )
    m0, m1, v0, v1 = standard.mean[0], standard.mean[1], standard.var[0], standard.var[1]
    kl = 0.5 * np.sum(v0 / v1 + (m1 - m0) ** 2 / v1 - 1 + np.log(v1 / v0))
    other = type(natural)(*(_flip0(t) for t in natural))
    np.testing.assert_allclose(to_numpy(family.kl(natural, other))[0], kl, rtol=1e-10)


# ------------------------------------------------------------------------------- Mixture


def test_mixture_log_prob_matches_scipy_components(backend):
    family, standard = _case("mixture_gaussian")
    natural = family.standard_to_natural(_to(backend, standard))
    x = np.random.default_rng(13).normal(size=(5, BATCH, 2))
    log_prob = to_numpy(family.log_prob(natural, backend.asarray(x)))
    resp = to_numpy(family.responsibilities(natural, backend.asarray(x)))
    for b in range(BATCH):
        comps = np.stack(
            [
                np.log(standard.weights[b, k])
                + scipy.stats.multivariate_normal(
                    standard.components.mean[b, k], standard.components.cov[b, k]
                ).logpdf(x[:, b])
                for k in range(3)
            ],
            axis=-1,
        )
        np.testing.assert_allclose(log_prob[:, b], scipy.special.logsumexp(comps, -1), rtol=1e-10)
        np.testing.assert_allclose(resp[:, b], scipy.special.softmax(comps, -1), rtol=1e-9)
    np.testing.assert_allclose(to_numpy(family.natural_to_mean(natural).weights), standard.weights)


def test_gamma_mixture_log_prob_matches_scipy(backend):
    family, standard = _case("mixture_gamma")
    natural = family.standard_to_natural(_to(backend, standard))
    x = np.random.default_rng(14).gamma(2.0, size=(5, BATCH))
    log_prob = to_numpy(family.log_prob(natural, backend.asarray(x)))
    shape, rate = standard.components
    comps = np.log(standard.weights) + scipy.stats.gamma(shape, scale=1 / rate).logpdf(x[..., None])
    np.testing.assert_allclose(log_prob, scipy.special.logsumexp(comps, -1), rtol=1e-10)


def test_mixture_minimal_weight_helpers(backend):
    logits = backend.asarray(np.array([[0.3, -1.0, 2.0]]))
    minimal = Mixture.to_minimal_logits(logits)
    np.testing.assert_allclose(to_numpy(minimal), [[-1.7, -3.0]])
    full = Mixture.from_minimal_logits(minimal)
    np.testing.assert_allclose(
        scipy.special.softmax(to_numpy(full), -1), scipy.special.softmax([[0.3, -1.0, 2.0]], -1)
    )
    lifted = to_numpy(Mixture.lift_weight_gradient(backend.asarray(np.array([0.5, -2.0]))))
    np.testing.assert_allclose(lifted, [0.5, -2.0, 1.5])
    assert lifted.sum() == 0


def test_mixture_samples_match_moments():
    family, standard = _case("mixture_gaussian")
    natural = family.standard_to_natural(_to_numpy_backend(standard))
    rng = random.default_rng(2, like=natural.logits)
    samples = to_numpy(family.sample(natural, rng, 5000))
    assert samples.shape == (5000, BATCH, 2)
    expected = np.einsum("bk,bkd->bd", standard.weights, standard.components.mean)
    np.testing.assert_allclose(samples.mean(0), expected, atol=0.12)


# ------------------------------------------------------------------------------- MCEFs


def test_skew_normal_marginal_matches_scipy_skewnorm(backend):
    family = SkewNormalMCEF(1)
    mu, var, beta = 0.4, 0.7, -1.3
    standard = SkewNormalMCEFStandard(np.array([mu]), np.array([[var]]), np.array([beta]))
    natural = family.standard_to_natural(_to(backend, standard))
    x = np.linspace(-4, 3, 9)
    scale = math.sqrt(var + beta**2)
    expected = scipy.stats.skewnorm(beta / math.sqrt(var), loc=mu, scale=scale).logpdf(x)
    out = to_numpy(family.log_prob(natural, backend.asarray(x[:, None])))
    np.testing.assert_allclose(out, expected, rtol=1e-10)


def test_skew_normal_marginal_integrates_the_joint_in_2d():

    family, standard = _case("skew_normal")
    single = SkewNormalMCEFStandard(*(t[0] for t in standard))
    natural = family.standard_to_natural(_to_numpy_backend(single))
    z = np.array([0.3, -0.8])

    def joint(w):
        mean = single.location + abs(w) * single.skew
        return scipy.stats.norm.pdf(w) * scipy.stats.multivariate_normal(mean, single.cov).pdf(z)

    integral = scipy.integrate.quad(joint, -np.inf, np.inf, epsabs=1e-13)[0]
    np.testing.assert_allclose(float(family.log_prob(natural, z)), np.log(integral), rtol=1e-8)
    log_joint = float(family.log_joint(natural, np.asarray(0.7), z))
    np.testing.assert_allclose(log_joint, np.log(joint(0.7)), rtol=1e-10)


def test_skew_normal_entropy_kl_and_samples():
    family, standard = _case("skew_normal")
    natural = family.standard_to_natural(_to_numpy_backend(standard))
    cov0 = standard.cov[0]
    expected_entropy = (
        scipy.stats.norm.entropy() + scipy.stats.multivariate_normal(np.zeros(2), cov0).entropy()
    )
    np.testing.assert_allclose(family.entropy(natural)[0], expected_entropy, rtol=1e-10)
    # KL of the joints: E_w of the Gaussian KL given w, by adaptive quadrature over w

    def conditional_kl(w):
        m0 = standard.location[0] + abs(w) * standard.skew[0]
        m1 = standard.location[1] + abs(w) * standard.skew[1]
        s0, s1 = standard.cov
        return (
            scipy.stats.norm.pdf(w)
            * 0.5
            * (
                np.trace(np.linalg.solve(s1, s0))
                + (m1 - m0) @ np.linalg.solve(s1, m1 - m0)
                - 2
                + np.linalg.slogdet(s1)[1]
                - np.linalg.slogdet(s0)[1]
            )
        )

    total = 2 * scipy.integrate.quad(conditional_kl, 0, np.inf, epsabs=1e-13, epsrel=1e-12)[0]
    other = type(natural)(*(t[::-1] for t in natural))
    np.testing.assert_allclose(family.kl(natural, other)[0], total, rtol=1e-10)
    rng = random.default_rng(3, like=natural.precision_mean)
    w, z = family.sample_joint(natural, rng, 10000)
    assert w.shape == (10000, BATCH) and z.shape == (10000, BATCH, 2)
    mean = family.natural_to_mean(natural)
    np.testing.assert_allclose(z.mean(0), mean.mean, atol=0.1)
    np.testing.assert_allclose((np.abs(w)[..., None] * z).mean(0), mean.abs_weighted_mean, atol=0.1)


def test_student_t_marginal_and_joint_match_scipy(backend):
    family, standard = _case("student_t")
    natural = family.standard_to_natural(_to(backend, standard))
    x = np.random.default_rng(15).normal(size=(4, BATCH, 2))
    out = to_numpy(family.log_prob(natural, backend.asarray(x)))
    for b in range(BATCH):
        dist = scipy.stats.multivariate_t(standard.mean[b], standard.cov[b], df=5.0)
        np.testing.assert_allclose(out[:, b], dist.logpdf(x[:, b]), rtol=1e-10)
    w = np.array([0.7, 1.9])
    joint = to_numpy(family.log_joint(natural, backend.asarray(w), backend.asarray(x[0])))
    for b in range(BATCH):
        expected = scipy.stats.invgamma(2.5, scale=2.5).logpdf(
            w[b]
        ) + scipy.stats.multivariate_normal(standard.mean[b], w[b] * standard.cov[b]).logpdf(
            x[0, b]
        )
        np.testing.assert_allclose(joint[b], expected, rtol=1e-10)
    entropy = to_numpy(family.entropy(natural))
    # H(w) + E_w H(z|w) with E log w by quadrature-free closed form via scipy
    ig = scipy.stats.invgamma(2.5, scale=2.5)
    expected_log_w = ig.expect(np.log)
    for b in range(BATCH):
        gauss = scipy.stats.multivariate_normal(standard.mean[b], standard.cov[b]).entropy()
        np.testing.assert_allclose(entropy[b], ig.entropy() + gauss + expected_log_w, rtol=1e-8)


def test_student_t_samples_match_moments():
    family, standard = _case("student_t")
    natural = family.standard_to_natural(_to_numpy_backend(standard))
    rng = random.default_rng(4, like=natural.precision_mean)
    w, z = family.sample_joint(natural, rng, 10000)
    np.testing.assert_allclose(np.mean(1 / w), 1.0, atol=0.04)
    np.testing.assert_allclose(np.cov(z[:, 0].T), standard.cov[0] * 5.0 / 3.0, atol=0.3)
