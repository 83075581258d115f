"""Chunked objectives: in-process, thread pool, memory-mapped files and a Dask cluster.

References are independent of the chunked code: the in-memory fit (whose objective is
checked against scipy elsewhere), ``scipy.stats.nbinom.logpmf`` for the chunked loss,
central finite differences for its gradient, and the closed-form Gaussian MLE.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.stats as st

from surrogate_natgrad import autodiff, fit
from surrogate_natgrad._compat import namespace
from surrogate_natgrad.chunked import (
    ChunkedData,
    DaskExecutor,
    InProcessExecutor,
    ThreadPoolExecutor,
    chunked_histogram,
    chunked_mean_nll,
    chunked_objective,
    split_rows,
)
from surrogate_natgrad.distributions import Distribution, NegativeBinomial
from surrogate_natgrad.errors import BackendError, DataError
from surrogate_natgrad.maps import SurrogateMap
from tests.helpers import to_numpy

# ----------------------------------------------------------------------------------------
# A continuous target of our own (independent of the library's continuous targets): the
# univariate normal, whose SNGD surrogate is the Gaussian family itself and whose MLE is
# the sample mean and the (biased) sample standard deviation.
# ----------------------------------------------------------------------------------------


class ChunkTestNormal(Distribution):
    """N(loc, scale²), only for these tests."""

    param_names: ClassVar[tuple[str, ...]] = ("loc", "scale")
    aliases: ClassVar[tuple[str, ...]] = ("chunk_test_normal",)

    def __init__(self, loc: Any, scale: Any, *, validate: bool = True) -> None:
        self._init_params({"loc": loc, "scale": scale}, validate)

    @staticmethod
    def log_prob_from_params(params: Any, x: Any) -> Any:
        xp = namespace(x, params["loc"], params["scale"])
        loc = xp.expand_dims(params["loc"], axis=-1)
        scale = xp.expand_dims(params["scale"], axis=-1)
        z = (x - loc) / scale
        return -0.5 * z * z - xp.log(scale) - 0.5 * np.log(2 * np.pi)

    @classmethod
    def from_data(cls, data: Any, **options: Any) -> ChunkTestNormal:
        xp = namespace(data)
        return cls(xp.mean(data) + 1.0, 2.0 * xp.std(data))

    @classmethod
    def surrogate_map_for(cls, params: Any) -> SurrogateMap:
        from surrogate_natgrad.families.gaussian import Gaussian, GaussianStandard

        def to_target(standard: Any, aux: Any) -> dict[str, Any]:
            xp = namespace(standard.mean, standard.cov)
            return {"loc": standard.mean[..., 0], "scale": xp.sqrt(standard.cov[..., 0, 0])}

        def from_target(target: Any) -> tuple[Any, Any]:
            xp = namespace(target["loc"])
            mean = xp.reshape(target["loc"], (1,))
            cov = xp.reshape(target["scale"] ** 2, (1, 1))
            return GaussianStandard(mean, cov), ()

        return SurrogateMap(Gaussian(1), to_target, from_target)

    @staticmethod
    def to_unconstrained(params: Any) -> dict[str, Any]:
        xp = namespace(params["scale"])
        return {"loc": params["loc"], "log_scale": xp.log(params["scale"])}

    @staticmethod
    def from_unconstrained(coords: Any) -> dict[str, Any]:
        xp = namespace(coords["log_scale"])
        return {"loc": coords["loc"], "scale": xp.exp(coords["log_scale"])}


def _close(result: Any, reference: Any, atol: float) -> None:
    for name, value in reference.params.items():
        np.testing.assert_allclose(
            to_numpy(result.params[name]), to_numpy(value), rtol=0, atol=atol, err_msg=name
        )


@pytest.fixture(scope="module")
def counts() -> np.ndarray:
    return np.random.default_rng(11).negative_binomial(5, 1 / 11, size=20_000)


@pytest.fixture(scope="module")
def normal_data() -> np.ndarray:
    return np.random.default_rng(12).normal(3.0, 2.0, size=6_000)


# ----------------------------------------------------------------------------------------
# The chunked objective against independent references
# ----------------------------------------------------------------------------------------


def test_chunked_loss_and_gradient_match_scipy_and_finite_differences(counts):
    data = ChunkedData(split_rows(counts, 3), histogram=False)
    objective = chunked_objective(NegativeBinomial, data)
    params = {"n": np.array(4.0), "p": np.array(0.12)}
    expected = -st.nbinom.logpmf(counts, 4.0, 0.12).mean()
    backend = autodiff.get_backend("autograd")
    value, grad = backend.value_and_grad(objective)(params)
    assert abs(float(value) - expected) < 1e-12 * abs(expected)
    for name, h in (("n", 1e-5), ("p", 1e-7)):
        up = dict(params, **{name: params[name] + h})
        down = dict(params, **{name: params[name] - h})
        central = (
            -st.nbinom.logpmf(counts, up["n"], up["p"]).mean()
            + st.nbinom.logpmf(counts, down["n"], down["p"]).mean()
        ) / (2 * h)
        assert abs(float(grad[name]) - central) < 1e-6 * max(1.0, abs(central)), name
    # A batch of line-search candidates: value only, one loss per candidate.
    batch = {"n": np.array([3.0, 4.0, 5.0]), "p": np.array([0.1, 0.12, 0.14])}
    losses = chunked_mean_nll(NegativeBinomial, data, batch)
    expected = [-st.nbinom.logpmf(counts, n, p).mean() for n, p in zip([3, 4, 5], batch["p"])]
    np.testing.assert_allclose(losses, expected, rtol=1e-12)


def test_external_function_differentiates_through_a_composition_on_torch():
    torch = pytest.importorskip("torch")
    f = autodiff.external_function(lambda p: ((p["a"] ** 2).sum(), {"a": 2 * p["a"]}))
    backend = autodiff.get_backend("torch")
    a = torch.tensor([1.0, 2.0], dtype=torch.float64)
    value, grad = backend.value_and_grad(lambda p: f({"a": torch.exp(p["b"])}))({"b": a})
    # d/db sum(exp(b)^2) = 2 exp(2b)
    np.testing.assert_allclose(float(value), np.exp(2.0) + np.exp(4.0), rtol=1e-14)
    np.testing.assert_allclose(grad["b"].numpy(), 2 * np.exp(2 * a.numpy()), rtol=1e-14)
    with pytest.raises(BackendError, match="scalar"):
        g = autodiff.external_function(lambda p: (p["a"], {"a": p["a"]}))
        autodiff.get_backend("autograd").value_and_grad(lambda p: g(p).sum())({"a": np.ones(2)})


def test_external_function_differentiates_through_a_composition_on_jax():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    f = autodiff.external_function(lambda p: (jnp.sum(p["a"] ** 2), {"a": 2 * p["a"]}))
    b = jnp.asarray([0.5, -1.0])
    value, grad = jax.value_and_grad(lambda p: f({"a": jnp.exp(p["b"])}))({"b": b})
    np.testing.assert_allclose(float(value), np.exp(1.0) + np.exp(-2.0), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(grad["b"]), 2 * np.exp(2 * np.asarray(b)), rtol=1e-6)


def test_histogram_of_chunks_is_the_histogram_of_the_data(counts):
    values, frequencies = chunked_histogram(NegativeBinomial, ChunkedData(split_rows(counts, 7)))
    expected_values, expected_counts = np.unique(counts, return_counts=True)
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(frequencies, expected_counts)


# ----------------------------------------------------------------------------------------
# Fits: chunked equals in memory
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("executor", ["in_process", "threads"])
def test_chunked_negative_binomial_fit_equals_in_memory(counts, executor):
    run = InProcessExecutor() if executor == "in_process" else ThreadPoolExecutor(2)
    reference = fit(NegativeBinomial, counts)
    result = fit(NegativeBinomial, ChunkedData(split_rows(counts, 5), executor=run))
    assert result.converged and result.n_iter == reference.n_iter
    _close(result, reference, 1e-10)
    assert abs(result.loss - reference.loss) < 1e-12


@pytest.mark.parametrize("executor", ["in_process", "threads"])
def test_chunked_continuous_fit_equals_in_memory_and_closed_form(normal_data, executor):
    run = InProcessExecutor() if executor == "in_process" else ThreadPoolExecutor(2)
    reference = fit(ChunkTestNormal, normal_data)
    result = fit(ChunkTestNormal, ChunkedData(split_rows(normal_data, 4), executor=run))
    assert result.converged, result.message
    _close(result, reference, 1e-10)
    assert abs(float(result.params["loc"]) - normal_data.mean()) < 1e-10
    assert abs(float(result.params["scale"]) - normal_data.std()) < 1e-10


def test_per_chunk_negative_binomial_fit_matches_in_memory(counts):
    # Without the histogram every step sums per-chunk gradients; the loss is summed in
    # another order than in memory, so the fits agree to the likelihood's flatness only.
    reference = fit(NegativeBinomial, counts, line_search="armijo")
    result = fit(
        NegativeBinomial,
        ChunkedData(split_rows(counts, 4), histogram=False),
        line_search="armijo",
    )
    assert result.converged, result.message
    np.testing.assert_allclose(
        [float(result.params["n"]), float(result.params["p"])],
        [float(reference.params["n"]), float(reference.params["p"])],
        rtol=1e-6,
    )
    assert abs(result.loss - reference.loss) < 1e-12


@pytest.mark.filterwarnings("ignore::surrogate_natgrad.errors.ConvergenceWarning")
@pytest.mark.parametrize("method", ["gd", "bfgs"])
def test_chunked_baselines_differentiate_through_their_coordinates(normal_data, method):
    reference = fit(ChunkTestNormal, normal_data, method=method, line_search="backtracking")
    result = fit(
        ChunkTestNormal,
        ChunkedData(split_rows(normal_data, 3)),
        method=method,
        line_search="backtracking",
    )
    # Near the optimum, rounding differences (the loss is summed per chunk) can end BFGS
    # one step apart; both stop at the optimum to the likelihood's flatness.
    _close(result, reference, 1e-9 if method == "gd" else 1e-6)
    assert abs(result.loss - reference.loss) < 1e-12


def test_chunked_minibatches_draw_the_same_rows_as_in_memory(counts):
    options = {"batch_size": 300, "seed": 5, "max_iter": 20}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = fit(NegativeBinomial, counts, **options)
        result = fit(NegativeBinomial, ChunkedData(split_rows(counts, 6)), **options)
    _close(result, reference, 1e-12)


def test_chunked_torch_fit_equals_torch_in_memory():
    torch = pytest.importorskip("torch")
    data = torch.asarray(np.random.default_rng(3).normal(-1.0, 0.5, size=2_000))
    reference = fit(ChunkTestNormal, data)
    result = fit(ChunkTestNormal, ChunkedData(list(torch.split(data, 700)), histogram=False))
    assert isinstance(result.params["loc"], torch.Tensor)
    _close(result, reference, 1e-10)


def test_dask_array_without_a_cluster_is_reduced_in_process(counts):
    dask_array = pytest.importorskip("dask.array")
    reference = fit(NegativeBinomial, counts)
    result = fit(NegativeBinomial, dask_array.from_array(counts, chunks=6_000))
    _close(result, reference, 1e-10)


def test_npy_path_and_memory_map_are_fitted_from_disk(counts, tmp_path):
    path = tmp_path / "counts.npy"
    np.save(path, counts)
    reference = fit(NegativeBinomial, counts)
    mapped = np.load(path, mmap_mode="r")
    for data in (str(path), mapped, ChunkedData(mapped, chunk_size=3_000)):
        _close(fit(NegativeBinomial, data), reference, 1e-10)
    data = ChunkedData(path, chunk_size=3_000)
    assert data.n_chunks == 7 and data.chunk_specs()[1] == ("npy", str(path), 3_000, 6_000)
    rows = np.array([19_999, 0, 3_001])
    np.testing.assert_array_equal(data.take(rows), counts[rows])


_MEMMAP_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from surrogate_natgrad import fit
    from surrogate_natgrad.chunked import ChunkedData
    from surrogate_natgrad.distributions import NegativeBinomial
    fit(NegativeBinomial, np.arange(1000) % 7)  # warm up: imports, first allocations
    def peak_kib():  # VmHWM: this process's own peak (ru_maxrss survives fork + exec)
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    before = peak_kib()
    data = ChunkedData(np.load(sys.argv[1], mmap_mode="r"), chunk_size=2**17, start_rows=2**16)
    result = fit(NegativeBinomial, data, init={"n": 2.0, "p": 0.3})
    after = peak_kib()
    print(json.dumps({"n": float(result.params["n"]), "p": float(result.params["p"]),
                      "grown_kib": after - before, "chunks": data.n_chunks}))
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's VmHWM")
def test_memory_mapped_fit_never_loads_the_whole_file(tmp_path):
    # 8 million counts (64 MB on disk) in chunks of 1 MiB, a start sample of 2**16 rows:
    # the peak resident memory of the fitting process grows by far less than the file.
    rng = np.random.default_rng(21)
    path = tmp_path / "big.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.int64, shape=(8_000_000,))
    for start in range(0, 8_000_000, 2_000_000):
        out[start : start + 2_000_000] = rng.negative_binomial(3, 0.2, size=2_000_000)
    out.flush()
    values, frequencies = np.unique(np.asarray(out), return_counts=True)
    del out
    script = tmp_path / "memmap_fit.py"
    script.write_text(_MEMMAP_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    completed = subprocess.run(
        [sys.executable, str(script), str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["chunks"] == 62
    assert report["grown_kib"] * 1024 < 16 * 2**20, report  # the file: 61 MiB
    # The in-memory reference from the same start (a file larger than start_rows starts
    # from a subsample by default).
    reference = fit(NegativeBinomial, np.repeat(values, frequencies), init={"n": 2.0, "p": 0.3})
    assert abs(report["n"] - float(reference.params["n"])) < 1e-10
    assert abs(report["p"] - float(reference.params["p"])) < 1e-10


def _gaussian_log_likelihood(z, chunk):
    """Unit-variance Gaussian likelihood of the mean ``z[:, 0]``, summed over the chunk."""
    return -0.5 * ((chunk[None, :] - z[:, :1]) ** 2).sum(axis=1)


@pytest.mark.filterwarnings("ignore::surrogate_natgrad.errors.ConvergenceWarning")
def test_fit_vi_with_a_chunked_likelihood_equals_in_memory():
    from surrogate_natgrad import fit_vi
    from surrogate_natgrad.chunked import chunked_log_likelihood

    x = np.random.default_rng(0).normal(1.3, 1.0, size=20)

    def log_prior(z):
        return -0.5 * (z[:, 0] / 10.0) ** 2

    chunked = chunked_log_likelihood(
        _gaussian_log_likelihood, ChunkedData(split_rows(x, 4), executor=ThreadPoolExecutor(2))
    )
    options = {"dim": 1, "seed": 0, "max_iter": 300}
    reference = fit_vi(lambda z: log_prior(z) + _gaussian_log_likelihood(z, x), **options)
    result = fit_vi(lambda z: log_prior(z) + chunked(z), **options)
    for name in ("mean", "cov"):
        np.testing.assert_allclose(result.params[name], reference.params[name], rtol=0, atol=1e-10)
    # The conjugate posterior N(sum(x) / (N + 1/100), 1 / (N + 1/100)), to Monte Carlo noise.
    precision = x.size + 1 / 100
    assert abs(float(result.params["mean"][0]) - x.sum() / precision) < 0.1
    assert abs(float(result.params["cov"][0, 0]) * precision - 1) < 0.2


def test_bad_chunked_input_is_rejected(counts):
    bad = [counts[:10], np.array([1, -2, 3])]
    with pytest.raises(DataError, match=r"chunk 1, rows 10:13"):
        fit(NegativeBinomial, ChunkedData(bad))
    with pytest.raises(DataError, match="chunk_size"):
        ChunkedData(counts, chunk_size=0)
    with pytest.raises(DataError, match="sequence of arrays"):
        ChunkedData({"a": counts})
    with pytest.raises(DataError, match="no such"):
        ChunkedData("/nonexistent/file.npy")
    with pytest.raises(DataError, match="out of range"):
        ChunkedData(split_rows(counts, 2)).take(np.array([20_000]))


# ----------------------------------------------------------------------------------------
# A Dask cluster on loopback: two worker processes
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "5s"}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=50,
        )
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::surrogate_natgrad.errors.ConvergenceWarning")
def test_dask_fits_equal_in_memory_and_survive_a_lost_worker(dask_client, counts):
    import dask.array as da

    client = dask_client
    array = da.from_array(counts, chunks=5_000)
    # Counts: the histogram is reduced on the workers, the fit is then exact.
    reference = fit(NegativeBinomial, counts)
    _close(fit(NegativeBinomial, array), reference, 1e-10)  # default client -> Dask
    # A continuous target (this module's class travels to the workers by value).
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        normal = np.random.default_rng(4).normal(3.0, 2.0, size=4_000)
        reference = fit(ChunkTestNormal, normal)
        chunks = ChunkedData(da.from_array(normal, chunks=1_000), executor=DaskExecutor(client))
        _close(fit(ChunkTestNormal, chunks), reference, 1e-10)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    # Per-chunk objective every step; one worker is killed after iteration 2.
    reference = fit(NegativeBinomial, counts, line_search="armijo")
    killed: list[str] = []

    def kill_one_worker(info: Any) -> None:
        if info.iteration == 2 and not killed:
            address = sorted(client.scheduler_info()["workers"])[0]
            killed.append(address)
            try:
                client.run(os._exit, 1, workers=[address])
            except OSError:  # the worker dies before it can answer
                pass

    data = ChunkedData(array, histogram=False, executor=DaskExecutor(client, retries=3))
    result = fit(NegativeBinomial, data, line_search="armijo", callback=kill_one_worker)
    assert killed and result.converged, result.message
    np.testing.assert_allclose(
        [float(result.params["n"]), float(result.params["p"])],
        [float(reference.params["n"]), float(reference.params["p"])],
        rtol=1e-6,
    )
