"""GPU runs (CuPy and torch CUDA, float64 and float32), checked against NumPy on the CPU.

Every test here carries the ``gpu`` marker and is skipped where CuPy or torch has no CUDA
device (the ``Backend`` helper of ``conftest`` skips). On a GPU machine run
``pytest -m gpu tests/test_gpu.py``.

What is checked:

- results stay on the input's device, in the input's library and dtype;
- the negative binomial fit of E1 (SNGD, grid line search) and a Gaussian maximum-likelihood
  fit (SNGD, autodiff through the DLPack bridge for CuPy, torch for torch CUDA) agree with
  the same fits in NumPy float64 on the CPU, to tolerances derived from the dtype;
- the closed-form gradients (:mod:`surrogate_natgrad.closed_form`) fit on the GPU with no
  second framework.
"""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest

from surrogate_natgrad import closed_form, families, maps, random, rules, special
from surrogate_natgrad._compat import array_library_name, dtype_tolerance, namespace
from surrogate_natgrad.distributions import NegativeBinomial
from surrogate_natgrad.experiments import e1
from surrogate_natgrad.fitting import fit
from tests.conftest import Backend
from tests.helpers import to_numpy

pytestmark = pytest.mark.gpu

GPU_NAMES = ["cupy", "torch-cuda"]
DTYPES = ["float64", "float32"]


@pytest.fixture(params=GPU_NAMES)
def gpu(request) -> Backend:
    """A GPU namespace (skipped without CuPy or torch CUDA and a device)."""
    return Backend(request.param)


@pytest.fixture(params=DTYPES)
def dtype_name(request) -> str:
    return request.param


def _library(gpu: Backend) -> str:
    return "torch" if gpu.name == "torch-cuda" else "cupy"


def assert_on_gpu(tree, like, where: str) -> None:
    """Every array in ``tree`` is of ``like``'s library, on ``like``'s device."""
    from surrogate_natgrad._tree import tree_leaves

    expected_library = array_library_name(namespace(like))
    expected_device = array_api_compat.device(like)
    leaves = [leaf for leaf in tree_leaves(tree) if array_api_compat.is_array_api_obj(leaf)]
    assert leaves, f"{where}: no arrays"
    for leaf in leaves:
        assert array_library_name(namespace(leaf)) == expected_library, where
        assert array_api_compat.device(leaf) == expected_device, (
            f"{where}: on {array_api_compat.device(leaf)!r}, expected {expected_device!r}"
        )


def _tolerances(xp, dtype) -> tuple[float, float]:
    """(loss rtol, parameter rtol) for fits in ``dtype`` compared with a float64 CPU fit."""
    return (
        dtype_tolerance(xp, dtype, power=0.5, factor=10.0),
        dtype_tolerance(xp, dtype, power=0.25, factor=1.0),
    )


# -------------------------------------------------------------------------- building blocks


def test_special_random_linalg_on_gpu(gpu, dtype_name):
    xp = gpu.xp
    dtype = getattr(xp, dtype_name)
    x = gpu.asarray(np.array([0.3, 1.5, 4.0]), dtype=dtype)
    import scipy.special

    for name, got, want in (
        ("gammaln", special.gammaln(x), scipy.special.gammaln([0.3, 1.5, 4.0])),
        ("digamma", special.digamma(x), scipy.special.digamma([0.3, 1.5, 4.0])),
        ("log_ndtr", special.log_ndtr(-x), scipy.special.log_ndtr([-0.3, -1.5, -4.0])),
    ):
        assert_on_gpu(got, x, name)
        assert got.dtype == dtype, name
        np.testing.assert_allclose(
            to_numpy(got), want, rtol=dtype_tolerance(xp, dtype, power=1.0, factor=100.0)
        )
    rng = random.default_rng(0, like=x)
    assert_on_gpu(
        (rng.normal((4,), dtype=dtype), rng.gamma(x), rng.integers(0, 5, (3,))), x, "random"
    )
    matrix = gpu.asarray(np.array([[4.0, 1.0], [1.0, 3.0]]), dtype=dtype)
    natural = families.Gaussian(2).standard_to_natural(families.GaussianStandard(x[:2], matrix))
    assert_on_gpu(families.Gaussian(2).natural_to_mean(natural), x, "Gaussian conversions")


# ------------------------------------------------------------------------------ E1 (NB)


@pytest.fixture(scope="module")
def e1_reference():
    """E1 fitted in NumPy float64 on the CPU (the reference of the GPU fits)."""
    problem = e1(seed=0)
    result = fit(NegativeBinomial, problem.data, init=problem.init, max_iter=problem.max_iter)
    return problem, result


def _gpu_counts_and_init(gpu: Backend, problem, dtype_name: str):
    dtype = getattr(gpu.xp, dtype_name)
    # float32 counts ask for a float32 fit; integer counts would promote to float64
    counts = gpu.asarray(problem.data.astype(np.float64), dtype=dtype)
    init = {name: gpu.asarray(value, dtype=dtype) for name, value in problem.init.items()}
    return counts, init, dtype


def test_e1_negative_binomial_fit_on_gpu_matches_numpy(gpu, dtype_name, e1_reference):
    """Default backend: the DLPack bridge to torch for CuPy, torch itself for torch CUDA."""
    problem, reference = e1_reference
    counts, init, dtype = _gpu_counts_and_init(gpu, problem, dtype_name)
    result = fit(NegativeBinomial, counts, init=init, max_iter=problem.max_iter)
    assert_on_gpu(result.params, counts, "E1 parameters")
    assert result.params["n"].dtype == dtype
    loss_rtol, param_rtol = _tolerances(gpu.xp, dtype)
    np.testing.assert_allclose(result.loss, reference.loss, rtol=loss_rtol)
    for name in ("n", "p"):
        np.testing.assert_allclose(
            to_numpy(result.params[name]), to_numpy(reference.params[name]), rtol=param_rtol
        )


def test_e1_closed_form_fit_on_gpu_needs_no_second_framework(gpu, dtype_name, e1_reference):
    """The closed-form NB gradient: CuPy alone (no torch, no JAX) fits E1."""
    problem, reference = e1_reference
    counts, init, dtype = _gpu_counts_and_init(gpu, problem, dtype_name)
    backend = closed_form.negative_binomial_mle(counts, dtype=dtype).backend
    result = fit(NegativeBinomial, counts, init=init, max_iter=problem.max_iter, backend=backend)
    assert_on_gpu(result.params, counts, "E1 closed-form parameters")
    loss_rtol, param_rtol = _tolerances(gpu.xp, dtype)
    np.testing.assert_allclose(result.loss, reference.loss, rtol=loss_rtol)
    for name in ("n", "p"):
        np.testing.assert_allclose(
            to_numpy(result.params[name]), to_numpy(reference.params[name]), rtol=param_rtol
        )


# --------------------------------------------------------------------- Gaussian MLE


DIM = 5


def _gaussian_data() -> np.ndarray:
    rng = np.random.default_rng(20240612)
    factor = np.tril(rng.normal(size=(DIM, DIM))) + 2.0 * np.eye(DIM)
    return rng.normal(size=(500, DIM)) @ factor.T + rng.normal(size=DIM)


@pytest.mark.parametrize("gradient", ["autodiff", "closed_form"])
def test_gaussian_mle_on_gpu_matches_numpy(gpu, dtype_name, gradient):
    xp = gpu.xp
    dtype = getattr(xp, dtype_name)
    raw = _gaussian_data()
    data = gpu.asarray(raw, dtype=dtype)
    family = families.Gaussian(DIM)

    if gradient == "closed_form":
        problem = closed_form.gaussian_mle(data)
        objective, backend = problem.objective, problem.backend
    else:

        # Under the DLPack bridge (CuPy) the rule's step runs on torch views of its state,
        # so the objective closes over the torch view of the data (zero-copy).
        seen_data = gpu.inner(data)

        def objective(standard):
            here = namespace(standard[0])
            return -here.mean(family.log_prob(family.standard_to_natural(standard), seen_data))

        backend = None  # chosen from the arrays: DLPackBridge(torch) for CuPy, torch for torch

    rule = rules.SNGD(
        maps.identity_map(family),
        step_size=0.5,
        line_search="backtracking",
        backend=backend,  # type: ignore[arg-type]
    )
    start = families.GaussianStandard(
        gpu.asarray(np.zeros(DIM), dtype=dtype), gpu.asarray(np.eye(DIM), dtype=dtype)
    )
    state = rule.init(start)
    for _ in range(30):  # ε = 1/2: the error shrinks by half per step
        state, info = rule.step(state, objective)
    fitted = rule.standard_params(state)
    assert_on_gpu((fitted, info), data, "Gaussian fit")
    assert fitted.cov.dtype == dtype
    # NumPy float64 on the CPU: the maximum-likelihood estimates are the sample moments
    tolerance = dtype_tolerance(xp, dtype, power=0.5, factor=10.0)
    np.testing.assert_allclose(
        to_numpy(fitted.mean), raw.mean(axis=0), rtol=tolerance, atol=tolerance
    )
    np.testing.assert_allclose(
        to_numpy(fitted.cov), np.cov(raw.T, bias=True), rtol=tolerance, atol=tolerance
    )
