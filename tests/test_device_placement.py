"""No array leaves its device: the pure-math layer end to end on a non-default device.

array-api-strict simulates several devices (``array_api_strict.Device("device1")``) and
raises on any operation that combines arrays from two devices, so a call that creates an
array without ``device=`` (or trips through the host) fails here exactly as it would move
data off a GPU. Everything below runs on ``device1`` and every result is checked to be there.
Rules get their gradients from the user (:class:`~surrogate_natgrad.autodiff.CustomGradient`
and :mod:`surrogate_natgrad.closed_form`), because array-api-strict has no autodiff.

Values are checked against SciPy / NumPy where that is cheap (independent references);
the point of this module, though, is placement.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.special
import scipy.stats

from surrogate_natgrad import _tree, autodiff, closed_form, families, fisher, maps, random, rules
from surrogate_natgrad import special as sp
from surrogate_natgrad._compat import linalg, namespace
from surrogate_natgrad.distributions import NegativeBinomial
from surrogate_natgrad.errors import BackendError
from tests.helpers import to_numpy

strict = pytest.importorskip("array_api_strict")

DEVICE = strict.Device("device1")


def on_device(value) -> object:
    """An array (or a Python float/int) as a float64 array on ``DEVICE``."""
    return strict.asarray(np.asarray(value, dtype=np.float64), device=DEVICE)


def assert_on_device(tree, where: str = "result") -> None:
    """Every array leaf of ``tree`` lives on ``DEVICE``."""
    leaves = [leaf for leaf in _tree.tree_leaves(tree) if hasattr(leaf, "device")]
    assert leaves, f"{where}: no arrays"
    for leaf in leaves:
        assert leaf.device == DEVICE, f"{where}: an array is on {leaf.device!r}, not {DEVICE!r}"


def test_the_double_really_catches_cross_device_operations():
    """Sanity check of the test double itself: mixing devices raises."""
    with pytest.raises(ValueError, match="different devices"):
        _ = on_device([1.0]) + strict.asarray([1.0])


# ------------------------------------------------------------------------------- families


def test_gaussian_family_on_device():
    family = families.Gaussian(2)
    cov = np.array([[2.0, 0.3], [0.3, 1.0]])
    standard = families.GaussianStandard(on_device([0.5, -1.0]), on_device(cov))
    natural = family.standard_to_natural(standard)
    mean = family.natural_to_mean(natural)
    x = on_device([[0.1, 0.2], [1.0, -2.0]])
    rng = random.default_rng(0, like=x)
    results = {
        "natural": natural,
        "mean": mean,
        "back": family.mean_to_natural(mean),
        "standard": family.natural_to_standard(natural),
        "mean_to_standard": family.mean_to_standard(mean),
        "log_partition": family.log_partition(natural),
        "log_prob": family.log_prob(natural, x),
        "entropy": family.entropy(natural),
        "kl": family.kl(
            natural,
            family.standard_to_natural(
                families.GaussianStandard(on_device([0.0, 0.0]), on_device(np.eye(2)))
            ),
        ),
        "fvp": family.fisher_vector_product(natural, natural),
        "fisher": family.fisher(natural),
        "sample": family.sample(natural, rng, 5),
        "domain": (family.in_natural_domain(natural), family.in_mean_domain(mean)),
        "minimal": family.to_minimal(natural),
    }
    for name, value in results.items():
        assert_on_device(value, name)
    np.testing.assert_allclose(
        to_numpy(results["log_prob"]),
        scipy.stats.multivariate_normal([0.5, -1.0], cov).logpdf(to_numpy(x)),
        rtol=1e-12,
    )


def test_diagonal_gaussian_and_gamma_families_on_device():
    diagonal = families.DiagonalGaussian(2)
    natural = diagonal.standard_to_natural(
        families.DiagonalGaussianStandard(on_device([0.5, -1.0]), on_device([2.0, 0.5]))
    )
    assert_on_device(diagonal.natural_to_mean(natural), "diagonal mean")
    assert_on_device(diagonal.log_partition(natural), "diagonal log-partition")
    assert_on_device(diagonal.fisher_vector_product(natural, natural), "diagonal fvp")

    gamma = families.Gamma()
    standard = families.GammaStandard(on_device([0.7, 3.5]), on_device([2.0, 0.4]))
    natural = gamma.standard_to_natural(standard)
    mean = gamma.natural_to_mean(natural)
    recovered = gamma.mean_to_standard(mean)  # the bracketed Newton root solve
    x = on_device([0.3, 2.5])
    rng = random.default_rng(1, like=x)
    for name, value in {
        "mean": mean,
        "recovered": recovered,
        "log_partition": gamma.log_partition(natural),
        "log_prob": gamma.log_prob(natural, x),
        "entropy": gamma.entropy(natural),
        "fvp": gamma.fisher_vector_product(natural, natural),
        "sample": gamma.sample(natural, rng, 4),
        "domain": (gamma.in_natural_domain(natural), gamma.in_mean_domain(mean)),
    }.items():
        assert_on_device(value, f"gamma {name}")
    np.testing.assert_allclose(to_numpy(recovered.shape), [0.7, 3.5], rtol=1e-10)
    np.testing.assert_allclose(
        to_numpy(gamma.log_prob(natural, x)),
        scipy.stats.gamma([0.7, 3.5], scale=[0.5, 2.5]).logpdf([0.3, 2.5]),
        rtol=1e-12,
    )


@pytest.mark.parametrize("component", ["gamma", "gaussian"])
def test_mixture_family_on_device(component):
    if component == "gamma":
        family = families.Mixture(families.Gamma(), 2)
        components = families.GammaStandard(on_device([1.5, 4.0]), on_device([1.0, 0.5]))
        x = on_device([0.5, 3.0, 7.0])
    else:
        family = families.Mixture(families.Gaussian(2), 2)
        components = families.GaussianStandard(
            on_device([[0.0, 0.0], [2.0, 1.0]]), on_device(np.stack([np.eye(2), 0.5 * np.eye(2)]))
        )
        x = on_device([[0.1, 0.2], [2.0, 1.5]])
    standard = families.MixtureStandard(on_device([0.3, 0.7]), components)
    natural = family.standard_to_natural(standard)
    mean = family.natural_to_mean(natural)
    for name, value in {
        "natural": natural,
        "mean": mean,
        "back": family.mean_to_natural(mean),
        "standard": family.mean_to_standard(mean),
        "log_partition": family.log_partition(natural),
        "log_prob": family.log_prob(natural, x),
        "responsibilities": family.responsibilities(natural, x),
        "fvp": family.fisher_vector_product(natural, natural),
        "domain": (family.in_natural_domain(natural), family.in_mean_domain(mean)),
    }.items():
        assert_on_device(value, f"mixture {name}")
    np.testing.assert_allclose(to_numpy(family.mean_to_standard(mean).weights), [0.3, 0.7])


def test_mixture_sample_on_device():
    family = families.Mixture(families.Gamma(), 2)
    natural = family.standard_to_natural(
        families.MixtureStandard(
            on_device([0.3, 0.7]),
            families.GammaStandard(on_device([1.5, 4.0]), on_device([1.0, 0.5])),
        )
    )
    draws = family.sample(natural, random.default_rng(2, like=natural.logits), 3)
    assert_on_device(draws, "mixture sample")


# ------------------------------------------------------------- special, random, linalg


def test_special_functions_on_device():
    x = on_device([0.3, 1.5, 4.0])
    p = on_device([0.1, 0.5, 0.9])
    df = on_device([3.0, 5.0, 30.0])
    values = {
        "gammaln": (sp.gammaln(x), scipy.special.gammaln([0.3, 1.5, 4.0])),
        "digamma": (sp.digamma(x), scipy.special.digamma([0.3, 1.5, 4.0])),
        "trigamma": (sp.polygamma(1, x), scipy.special.polygamma(1, [0.3, 1.5, 4.0])),
        "xlogy": (sp.xlogy(x, p), scipy.special.xlogy([0.3, 1.5, 4.0], [0.1, 0.5, 0.9])),
        "logsumexp": (sp.logsumexp(x), scipy.special.logsumexp([0.3, 1.5, 4.0])),
        "softplus": (sp.softplus(x), np.logaddexp(0.0, [0.3, 1.5, 4.0])),
        "log_sigmoid": (sp.log_sigmoid(x), -np.logaddexp(0.0, [-0.3, -1.5, -4.0])),
        "erf": (sp.erf(x), scipy.special.erf([0.3, 1.5, 4.0])),
        "ndtr": (sp.ndtr(x), scipy.special.ndtr([0.3, 1.5, 4.0])),
        "log_ndtr": (sp.log_ndtr(-x), scipy.special.log_ndtr([-0.3, -1.5, -4.0])),
        "ndtri": (sp.ndtri(p), scipy.special.ndtri([0.1, 0.5, 0.9])),
        "betainc": (
            sp.betainc(x, df, p),
            scipy.special.betainc([0.3, 1.5, 4.0], [3.0, 5.0, 30.0], [0.1, 0.5, 0.9]),
        ),
        "stdtr": (sp.stdtr(df, x), scipy.special.stdtr([3.0, 5.0, 30.0], [0.3, 1.5, 4.0])),
        "stdtrit": (sp.stdtrit(df, p), scipy.special.stdtrit([3.0, 5.0, 30.0], [0.1, 0.5, 0.9])),
    }
    for name, (got, expected) in values.items():
        assert_on_device(got, name)
        np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-8, err_msg=name)


def test_random_draws_on_device():
    like = on_device([0.0])
    rng = random.default_rng(0, like=like)
    assert rng.device == DEVICE
    draws = {
        "normal": rng.normal((3,)),
        "uniform": rng.uniform((3,), low=-1.0, high=2.0),
        "gamma": rng.gamma(on_device([0.5, 2.0, 9.0])),
        "chisquare": rng.chisquare(on_device([1.0, 4.0])),
        "integers": rng.integers(0, 10, (4,)),
        "choice": rng.choice(5, (3,)),
        "choice_p": rng.choice(3, (4,), p=on_device([0.2, 0.3, 0.5])),
        "permutation": rng.permutation(4),
        "float32": rng.normal((2,), dtype=strict.float32),
    }
    for name, value in draws.items():
        assert_on_device(value, name)
    assert draws["float32"].dtype == strict.float32
    for child in rng.spawn(2):
        assert_on_device(child.normal((2,)), "spawned generator")


def test_linalg_helpers_on_device():
    a = on_device([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
    b = on_device([[1.0], [2.0], [3.0]])
    chol = linalg.cholesky(a)
    results = {
        "cholesky": chol,
        "solve_triangular": linalg.solve_triangular(chol, b),
        "cho_solve": linalg.cho_solve(chol, b),
        "cho_inverse": linalg.cho_inverse(chol),
        "logdet": linalg.logdet_from_cholesky(chol),
        "symmetrize": linalg.symmetrize(a),
        "outer": linalg.matrix_outer(b[:, 0], b[:, 0]),
        "is_pd": linalg.is_positive_definite(a),
    }
    for name, value in results.items():
        assert_on_device(value, name)
    dense = to_numpy(a)
    np.testing.assert_allclose(
        to_numpy(results["cho_solve"])[:, 0], np.linalg.solve(dense, [1.0, 2.0, 3.0])
    )
    np.testing.assert_allclose(float(results["logdet"]), np.linalg.slogdet(dense)[1])
    # the Fisher utilities too
    jacobian = on_device([[1.0, 0.0], [0.5, 1.0], [0.0, 2.0]])
    assert_on_device(fisher.pullback_fisher(a, jacobian), "pullback_fisher")
    assert_on_device(
        fisher.natural_gradient_solve(a, on_device([1.0, 0.0, -1.0]), damping=0.1),
        "natural_gradient_solve",
    )


# ----------------------------------------------------------------------- surrogate maps


def test_surrogate_maps_and_bijections_on_device():
    nb_map = NegativeBinomial.surrogate_map()
    target = {"n": on_device(5.0), "p": on_device(1.0 / 11.0)}
    standard, aux = nb_map.initial(target)
    assert_on_device(standard, "from_target")
    assert_on_device(nb_map.to_target(standard, aux), "to_target")
    assert_on_device(nb_map.in_domain(standard), "domain")
    u = on_device([-1.0, 0.5])
    for bijection in (maps.Exp(), maps.ExpPlus(2.0), maps.Softplus(), maps.Logit(0.0, 1.0)):
        forward = bijection.forward(u)
        assert_on_device((forward, bijection.inverse(forward)), type(bijection).__name__)


# ------------------------------------------------------------------------- update rules


def _data():
    rng = np.random.default_rng(3)
    return rng.normal(size=(50, 2)) @ np.array([[1.0, 0.0], [0.6, 0.8]]) + np.array([1.0, -1.0])


def test_sngd_gaussian_mle_with_user_gradient_on_device():
    raw = _data()
    problem = closed_form.gaussian_mle(on_device(raw))
    rule = rules.SNGD(
        maps.identity_map(families.Gaussian(2)),
        step_size=0.5,
        line_search="backtracking",
        backend=problem.backend,  # type: ignore[arg-type]
    )
    state = rule.init(families.GaussianStandard(on_device([0.0, 0.0]), on_device(np.eye(2))))
    for _ in range(3):
        state, info = rule.step(state, problem.objective)
        assert_on_device(state, "SNGD state")
        assert_on_device(info, "SNGD info")
    assert_on_device(rule.target_params(state), "SNGD target")
    # ε = 1/2 from the start halves the distance to the sample moments at every step
    np.testing.assert_allclose(
        to_numpy(rule.standard_params(state).mean), (1 - 0.5**3) * raw.mean(axis=0), rtol=1e-12
    )


@pytest.mark.parametrize("form", ["mle", "vi"])
def test_sngd_gamma_negative_binomial_map_with_user_gradient_on_device(form):
    counts = np.random.default_rng(5).negative_binomial(4.0, 0.25, size=60)
    values, frequencies = np.unique(counts, return_counts=True)
    problem = closed_form.negative_binomial_mle(
        on_device(values), on_device(frequencies), form=form
    )
    rule = rules.SNGD(
        NegativeBinomial.surrogate_map(),
        form=form,
        backend=problem.backend,  # type: ignore[arg-type]
    )
    state = rule.init_from_target({"n": on_device(3.0), "p": on_device(0.2)})
    first = None
    for _ in range(3):
        state, info = rule.step(state, problem.objective)
        assert_on_device(state, "SNGD state")
        assert_on_device(info, "SNGD info")
        first = float(info.loss) if first is None else first
    assert float(problem.objective(rule.target_params(state))) < first


@pytest.mark.parametrize("rule_name", ["gd", "adam", "bfgs"])
def test_baseline_rules_with_user_gradient_on_device(rule_name):
    target = on_device([1.0, -2.0])

    def objective(params):
        xp = namespace(params)
        return xp.sum((params - target) ** 2)

    def value_and_grad(params):
        return objective(params), 2.0 * (params - target)

    backend = autodiff.CustomGradient(value_and_grad=value_and_grad, fun=objective)
    rule: Any
    if rule_name == "gd":
        rule = rules.GradientDescent(step_size=0.25, backend=backend)  # type: ignore[arg-type]
    elif rule_name == "adam":
        rule = rules.Adam(step_size=0.1, backend=backend)  # type: ignore[arg-type]
    else:
        rule = rules.BFGS(backend=backend)  # type: ignore[arg-type]
    state = rule.init(on_device([0.0, 0.0]))
    for _ in range(60 if rule_name == "adam" else 10):
        state, info = rule.step(state, objective)
    assert_on_device(state, f"{rule_name} state")
    assert_on_device(info, f"{rule_name} info")
    np.testing.assert_allclose(to_numpy(state.params), [1.0, -2.0], atol=0.05)


def test_fit_with_closed_form_gradient_on_device():
    """The fit driver on data of a library without autodiff, on a non-default device."""
    from surrogate_natgrad import fitting

    counts = on_device(np.random.default_rng(11).negative_binomial(5.0, 0.2, size=100))
    result = fitting.fit(
        NegativeBinomial,
        counts,
        backend=closed_form.negative_binomial_mle(counts).backend,  # type: ignore[arg-type]
        line_search="backtracking",
        max_iter=15,
    )
    assert_on_device(result.distribution.params, "fit result")


# ------------------------------------------------------------------- mixed devices / errors


def test_mixed_devices_raise_backend_error_naming_the_arguments():
    cpu = strict.asarray([1.0, 2.0])
    with pytest.raises(BackendError, match=r"data is on .*CPU_DEVICE.*init is on|init is on"):
        namespace(init=on_device([1.0, 2.0]), data=cpu)
    stats = closed_form.gaussian_statistics(strict.asarray(_data()))  # CPU device
    natural = families.Gaussian(2).standard_to_natural(
        families.GaussianStandard(on_device([0.0, 0.0]), on_device(np.eye(2)))
    )
    with pytest.raises(BackendError, match=r"precision_mean.*statistics_mean"):
        closed_form.gaussian_natural_value_and_grad(natural, stats)
    with pytest.raises(BackendError, match=r"counts.*frequencies"):
        closed_form.negative_binomial_data(on_device([1.0, 2.0]), strict.asarray([1.0, 1.0]))


def test_autodiff_resolution_explains_how_to_supply_a_gradient():
    with pytest.raises(BackendError) as raised:
        autodiff.get_backend(None, on_device([1.0]))
    message = str(raised.value)
    assert "array_api_strict" in message and "CustomGradient(value_and_grad=" in message
    assert "closed_form.negative_binomial_mle" in message


def test_cupy_without_torch_or_jax_says_so(monkeypatch):
    """Resolution for CuPy data when neither torch (CUDA) nor JAX (GPU) is available."""
    from surrogate_natgrad.autodiff import _select

    monkeypatch.setattr(_select, "_torch_has_cuda", lambda: False)
    monkeypatch.setattr(_select, "_jax_has_gpu", lambda: False)
    with pytest.raises(BackendError) as raised:
        _select._for_cupy()
    message = str(raised.value)
    assert "neither torch with CUDA nor JAX with a GPU" in message
    assert "CustomGradient(value_and_grad=" in message and "closed_form" in message


def test_cpu_only_jax_is_not_used_for_cupy():
    """A CPU-only JAX cannot take GPU buffers without a copy: it must not be chosen."""
    pytest.importorskip("jax")
    from surrogate_natgrad.autodiff import _select

    if _select._jax_has_gpu():
        pytest.skip("JAX has a GPU here")
    assert _select._jax_has_gpu() is False


def test_fit_through_a_dlpack_bridge():
    """CPU stand-in for CuPy data differentiated by torch: torch data, JAX differentiates."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("jax")
    import scipy.optimize as so
    import scipy.stats as st

    from surrogate_natgrad import fitting

    raw = np.random.default_rng(11).negative_binomial(5.0, 0.2, size=100)
    counts = torch.asarray(raw)
    result = fitting.fit(NegativeBinomial, counts, backend=autodiff.DLPackBridge("jax"))
    assert result.converged
    assert isinstance(result.params["n"], torch.Tensor)

    # Independent reference: scipy's optimiser on scipy's log-pmf.
    def nll(z: np.ndarray) -> float:
        return -float(np.mean(st.nbinom.logpmf(raw, np.exp(z[0]), 1 / (1 + np.exp(-z[1])))))

    best = so.minimize(nll, [1.0, 0.0], method="Nelder-Mead",
                       options={"xatol": 1e-12, "fatol": 1e-15, "maxiter": 20_000})
    expected = [np.exp(best.x[0]), 1 / (1 + np.exp(-best.x[1]))]
    got = [float(result.params["n"]), float(result.params["p"])]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_gamma_mean_outside_domain_gives_nan_not_an_error():
    gamma = families.Gamma()
    outside = families.GammaMean(on_device(np.log(2.0) + 0.1), on_device(2.0))
    standard = gamma.mean_to_standard(outside)
    assert np.isnan(float(standard.shape))


# ------------------------------------------------- the DLPack bridge (CPU stand-in for CuPy)


@pytest.fixture
def stand_in_bridge(monkeypatch):
    """array-api-strict arrays differentiated by CPU torch through DLPack, as CuPy on a GPU."""
    pytest.importorskip("torch")
    from tests.conftest import _stand_in_for_cupy

    _stand_in_for_cupy(monkeypatch)
    return autodiff.get_backend(None, strict.asarray([0.0]))


def test_bridge_for_bridges_only_source_library_arrays(stand_in_bridge):
    import torch

    assert isinstance(stand_in_bridge, autodiff.DLPackBridge)
    assert autodiff.bridge_for(None, strict.asarray([1.0])) is not None
    assert autodiff.bridge_for(None, np.ones(2)) is None
    assert autodiff.bridge_for(None, torch.ones(2)) is None
    # arrays already in the inner library need no bridge, even with the bridge named
    assert autodiff.bridge_for(stand_in_bridge, torch.ones(2)) is None


def test_bridge_call_runs_on_inner_views_and_returns_source_arrays(stand_in_bridge):
    import torch

    x = strict.asarray([1.0, 2.0])
    seen = []

    def product(a, b):
        seen.append((type(a), type(b)))
        return a * b

    # a source array and an inner view (data handed over once with to_inner) may mix
    out = stand_in_bridge.call(product, x, stand_in_bridge.to_inner(x))
    assert seen == [(torch.Tensor, torch.Tensor)]
    assert isinstance(out, type(x))
    np.testing.assert_allclose(to_numpy(out), [1.0, 4.0])
    # to_inner is a view of the same buffer, not a copy
    host = np.asarray([3.0, 4.0])
    assert np.shares_memory(host, stand_in_bridge.to_inner(strict.asarray(host)).numpy())


def test_rule_step_shows_the_objective_inner_arrays_only(stand_in_bridge):
    """Armijo evaluates the objective without differentiating it: torch views there too."""
    import torch

    raw = np.random.default_rng(5).normal(size=(200, 2)) @ np.array([[1.0, 0.0], [0.5, 2.0]])
    data_seen = stand_in_bridge.to_inner(strict.asarray(raw))
    family = families.Gaussian(2)
    libraries = set()

    def objective(standard):
        libraries.add(type(standard[0]))
        xp = namespace(standard[0])
        return -xp.mean(family.log_prob(family.standard_to_natural(standard), data_seen))

    rule = rules.SNGD(maps.identity_map(family), step_size=1.0, line_search="armijo")
    start = families.GaussianStandard(strict.zeros(2, dtype=strict.float64), strict.eye(2))
    state, _ = rule.step(rule.init(start), objective)
    assert libraries == {torch.Tensor}
    fitted = rule.standard_params(state)
    assert isinstance(fitted.mean, type(start.mean))
    # a unit step of SNGD's MLE form with the identity map is moment matching
    np.testing.assert_allclose(to_numpy(fitted.mean), raw.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(to_numpy(fitted.cov), np.cov(raw.T, bias=True), rtol=1e-10)


def test_model_map_arrays_copies_and_leaves_the_model_alone(stand_in_bridge):
    import torch

    from surrogate_natgrad.models import BayesianLogisticRegression

    X = strict.asarray(np.array([[1.0, 0.5], [-0.3, 2.0], [0.2, -1.0]]))
    model = BayesianLogisticRegression(X, strict.asarray([1.0, 0.0, 1.0]))
    seen = model.map_arrays(stand_in_bridge.to_inner)
    assert isinstance(seen.X, torch.Tensor) and isinstance(seen.y, torch.Tensor)
    assert isinstance(model.X, type(X)) and isinstance(model.y, type(X))
    z = np.array([0.3, -0.2])
    logits = np.array([[1.0, 0.5], [-0.3, 2.0], [0.2, -1.0]]) @ z
    expected = np.sum(scipy.stats.bernoulli.logpmf([1, 0, 1], scipy.special.expit(logits)))
    expected += scipy.stats.multivariate_normal(np.zeros(2)).logpdf(z)  # prior N(0, I)
    np.testing.assert_allclose(float(seen.log_joint(torch.asarray(z))), expected, rtol=1e-12)


def test_precision_coordinates_stay_on_device():
    """The Adam baseline on Ω⁻¹ = WᵀW: both directions stay on the array's device."""
    from surrogate_natgrad.distributions import SkewNormal

    scale = np.array([[2.0, 0.3], [0.3, 1.0]])
    params = {
        "loc": on_device([0.5, -1.0]),
        "scale": on_device(scale),
        "alpha": on_device([1.0, -2.0]),
    }
    coords = SkewNormal.to_unconstrained_precision(params)
    assert_on_device(coords, "precision coordinates")
    back = SkewNormal.from_unconstrained_precision(coords)
    assert_on_device(back, "parameters from precision coordinates")
    np.testing.assert_allclose(to_numpy(back["scale"]), scale, rtol=1e-12)
    # W is a root of the precision: WᵀW = Ω⁻¹
    root = to_numpy(coords["precision_root"])
    np.testing.assert_allclose(root.T @ root, np.linalg.inv(scale), rtol=1e-12)
