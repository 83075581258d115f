"""GPU benchmark: E1, E3 (d = 1000) and E6 on CuPy and torch CUDA against NumPy on the CPU.

Usage::

    python benchmarks/gpu_bench.py --out gpu_bench.json
    python benchmarks/gpu_bench.py --experiments E1 --repeats 5
    python benchmarks/gpu_bench.py --backends numpy-cpu torch-cpu   # dry run, no GPU needed
    python benchmarks/gpu_bench.py --plot times.png --from e1.json e3.json   # plot earlier runs

Backends:

``numpy-cpu``
    NumPy arrays, autograd gradients (the reference).
``cupy``
    CuPy arrays; gradients through the zero-copy DLPack bridge to torch (or JAX) on the GPU.
``cupy-closed-form``
    CuPy arrays with the closed-form gradients of :mod:`surrogate_natgrad.closed_form`
    (E1 only): no second framework at all.
``torch-cuda``
    torch tensors on the GPU, torch autodiff.
``torch-cpu``
    torch tensors on the CPU (a stand-in to check this script on a machine without a GPU).

Every timed run is bracketed by a device synchronisation (``cupy.cuda.Device().synchronize()``,
``torch.cuda.synchronize()``): GPU work is asynchronous, so without it a timer measures only
the time to queue kernels. The first run of each (experiment, backend) is reported separately
(``first_s``: CUDA context, cuBLAS/cuSOLVER handles, kernel compilation); ``median_s`` and
``min_s`` are over ``--repeats`` further runs.

Without a GPU (no CuPy device and no torch CUDA) and with the default backends, the script
prints ``no GPU: ...``, writes a JSON record saying so and exits with status 0.

E3 and E6 are run only when their generators exist in
:data:`surrogate_natgrad.experiments.PROBLEMS`; E3 uses the paper's size (d = 1000) unless
``--size quick``. Errors of one (experiment, backend) pair are recorded in the JSON, not
raised, so one failing backend does not lose the other measurements.

Driver code (layer 4): NumPy is used for host-side bookkeeping only.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import platform
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
GPU_BACKENDS = ("cupy", "cupy-closed-form", "torch-cuda")
ALL_BACKENDS = ("numpy-cpu", *GPU_BACKENDS, "torch-cpu")
EXPERIMENTS = ("E1", "E3", "E6")


# ----------------------------------------------------------------------------------------
# What the machine has
# ----------------------------------------------------------------------------------------


def _cupy_status() -> tuple[bool, str]:
    if importlib.util.find_spec("cupy") is None:
        return False, "CuPy is not installed"
    try:
        import cupy

        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # no driver, no device, broken install: all mean "no CuPy GPU"
        return False, f"CuPy has no usable CUDA device ({type(exc).__name__}: {exc})"
    if count < 1:
        return False, "CuPy sees no CUDA device"
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return True, name


def _torch_status() -> tuple[bool, str]:
    if importlib.util.find_spec("torch") is None:
        return False, "torch is not installed"
    import torch

    if not torch.cuda.is_available():
        return False, "torch has no CUDA device (CPU-only build or no driver)"
    return True, str(torch.cuda.get_device_name(0))


def gpu_status() -> dict[str, Any]:
    """Return what GPU support this machine has.

    Returns
    -------
    dict
        ``{"gpu": bool, "cupy": {"available", "detail"}, "torch_cuda": {...},
        "device_name": str or None, "reason": str}``.
    """
    cupy_ok, cupy_detail = _cupy_status()
    torch_ok, torch_detail = _torch_status()
    device_name = cupy_detail if cupy_ok else torch_detail if torch_ok else None
    reason = "" if (cupy_ok or torch_ok) else f"{cupy_detail}; {torch_detail}"
    return {
        "gpu": cupy_ok or torch_ok,
        "cupy": {"available": cupy_ok, "detail": cupy_detail},
        "torch_cuda": {"available": torch_ok, "detail": torch_detail},
        "device_name": device_name,
        "reason": reason,
    }


def default_backends(status: dict[str, Any]) -> list[str]:
    """NumPy on the CPU plus every GPU backend this machine supports."""
    backends = ["numpy-cpu"]
    if status["cupy"]["available"]:
        backends += ["cupy", "cupy-closed-form"]
    if status["torch_cuda"]["available"]:
        backends.append("torch-cuda")
    return backends


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("cupy", "torch", "jax", "surrogate_natgrad"):
        if importlib.util.find_spec(name) is None:
            out[name] = None
            continue
        module = __import__(name)
        out[name] = str(getattr(module, "__version__", "unknown"))
    if out.get("torch"):
        import torch

        out["torch_cuda"] = str(torch.version.cuda)
    return out


# ----------------------------------------------------------------------------------------
# Arrays and synchronisation
# ----------------------------------------------------------------------------------------


def _library(backend: str) -> str:
    return backend.split("-")[0]


def convert(value: Any, backend: str, dtype: Any = None) -> Any:
    """Copy a host NumPy array (or a dict of them) to ``backend``'s library and device.

    This is the one explicit host → device transfer of a run, done before the timer starts.
    """
    if isinstance(value, dict):
        return {key: convert(item, backend, dtype) for key, item in value.items()}
    host = np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)
    library = _library(backend)
    if library == "numpy":
        return host
    if library == "cupy":
        import cupy

        return cupy.asarray(host)
    import torch

    device = "cuda" if backend == "torch-cuda" else "cpu"
    return torch.asarray(host, device=device)


def synchronize(backend: str) -> None:
    """Wait for the queued GPU work of ``backend`` (no-op on the CPU)."""
    if backend.startswith("cupy"):
        import cupy

        cupy.cuda.Device().synchronize()
    elif backend == "torch-cuda":
        import torch

        torch.cuda.synchronize()


def time_runs(run: Callable[[], Any], backend: str, repeats: int) -> tuple[Any, dict[str, Any]]:
    """Run ``run`` once (warm-up, timed separately) and ``repeats`` more times.

    Returns
    -------
    result : object
        The result of the last run.
    timings : dict
        ``first_s``, ``median_s``, ``min_s``, ``runs_s`` (seconds, each run synchronised).
    """
    synchronize(backend)
    start = time.perf_counter()
    result = run()
    synchronize(backend)
    first = time.perf_counter() - start
    runs = []
    for _ in range(repeats):
        synchronize(backend)
        start = time.perf_counter()
        result = run()
        synchronize(backend)
        runs.append(time.perf_counter() - start)
    timings = {
        "first_s": first,
        "median_s": statistics.median(runs) if runs else first,
        "min_s": min(runs) if runs else first,
        "runs_s": runs,
    }
    return result, timings


def _accepted(function: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    """The options ``function`` accepts (generators may carry settings a driver lacks)."""
    parameters = inspect.signature(function).parameters
    return {key: value for key, value in options.items() if key in parameters}


# ----------------------------------------------------------------------------------------
# Experiments
# ----------------------------------------------------------------------------------------


def _problem(name: str, size: str) -> Any:
    from surrogate_natgrad import experiments

    if name.upper() not in experiments.PROBLEMS:
        return None
    return experiments.get(name, seed=0, size=size)


def bench_e1(backend: str, repeats: int, steps: int | None) -> dict[str, Any]:
    """E1: negative binomial MLE (SNGD, grid line search; full batch, N = 1000)."""
    from surrogate_natgrad import closed_form
    from surrogate_natgrad.distributions import NegativeBinomial
    from surrogate_natgrad.fitting import fit

    problem = _problem("E1", "quick")
    counts = convert(problem.data.astype(np.float64), backend)
    init = convert(problem.init, backend)
    options: dict[str, Any] = {"init": init, "max_iter": steps or problem.max_iter}
    if backend == "cupy-closed-form":
        options["backend"] = closed_form.negative_binomial_mle(counts).backend

    result, timings = time_runs(lambda: fit(NegativeBinomial, counts, **options), backend, repeats)
    return {
        **timings,
        "loss": float(result.loss),
        "n_iter": int(result.n_iter),
        "per_iter_s": timings["median_s"] / max(int(result.n_iter), 1),
        "params": {key: float(value) for key, value in result.params.items()},
    }


def bench_e3(backend: str, repeats: int, steps: int | None, size: str) -> dict[str, Any]:
    """E3: skew-normal MLE, d = 1000 at the paper's size (minibatch SNGD)."""
    from surrogate_natgrad.fitting import fit

    problem = _problem("E3", size)
    if problem is None:
        return {"status": "skipped", "reason": "experiment E3 is not available"}
    data = convert(problem.data, backend)
    init = convert(problem.init, backend)
    options = dict(problem.settings.get("fit_options", {}))
    for key in ("batch_size", "step_size", "aux_step_size", "line_search"):
        if key in problem.settings:
            options[key] = problem.settings[key]
    options.update({"init": init, "max_iter": steps or problem.max_iter, "seed": 0})
    options = _accepted(fit, options)

    result, timings = time_runs(
        lambda: fit(problem.distribution, data, **options), backend, repeats
    )
    return {
        **timings,
        "dim": int(problem.data.shape[-1]),
        "loss": float(result.loss),
        "n_iter": int(result.n_iter),
        "per_iter_s": timings["median_s"] / max(int(result.n_iter), 1),
    }


def bench_e6(backend: str, repeats: int, steps: int | None, size: str) -> dict[str, Any]:
    """E6: skew-normal VI of Bayesian logistic regression (SNGD, 10 samples per step)."""
    problem = _problem("E6", size)
    if problem is None:
        return {"status": "skipped", "reason": "experiment E6 is not available"}
    try:
        from surrogate_natgrad.fitting import fit_vi
    except ImportError:
        return {"status": "skipped", "reason": "surrogate_natgrad.fitting.fit_vi is missing"}
    model = problem.model
    # The model's data must live on the device too: rebuild it from converted arrays.
    model = type(model)(
        convert(model.X, backend), convert(model.y, backend), prior_precision=model.prior_precision
    )
    like = convert(np.zeros(()), backend)
    settings = problem.settings
    options: dict[str, Any] = {
        "family": settings.get("family", problem.distribution),
        "init": problem.init,
        "max_iter": steps or problem.max_iter,
        "seed": 0,
        "like": like,
    }
    for key in ("n_samples", "n_samples_eval", "eval_every"):
        if key in settings:
            options[key] = settings[key]
    options = _accepted(fit_vi, options)

    result, timings = time_runs(lambda: fit_vi(model, **options), backend, repeats)
    return {
        **timings,
        "loss": float(result.loss),
        "n_iter": int(result.n_iter),
        "per_iter_s": timings["median_s"] / max(int(result.n_iter), 1),
    }


def run_one(
    experiment: str, backend: str, *, repeats: int, steps: int | None, size: str
) -> dict[str, Any]:
    """Benchmark one (experiment, backend) pair; errors are recorded, not raised."""
    record: dict[str, Any] = {"experiment": experiment, "backend": backend}
    if backend == "cupy-closed-form" and experiment != "E1":
        return {**record, "status": "skipped", "reason": "closed-form gradients: E1 only"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if experiment == "E1":
                out = bench_e1(backend, repeats, steps)
            elif experiment == "E3":
                out = bench_e3(backend, repeats, steps, size)
            else:
                out = bench_e6(backend, repeats, steps, size)
    except Exception as exc:  # record and go on with the other pairs
        return {
            **record,
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=8),
        }
    return {**record, "status": out.pop("status", "ok"), **out}


def add_speedups(results: list[dict[str, Any]]) -> None:
    """Add ``speedup_vs_numpy_cpu`` (median NumPy time / median time) to each record."""
    reference = {
        r["experiment"]: r["median_s"]
        for r in results
        if r["backend"] == "numpy-cpu" and r.get("status") == "ok"
    }
    for record in results:
        base = reference.get(record["experiment"])
        if base and record.get("status") == "ok" and record.get("median_s"):
            record["speedup_vs_numpy_cpu"] = base / record["median_s"]


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_bench.json"), help="JSON output")
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS), choices=EXPERIMENTS)
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=ALL_BACKENDS,
        default=None,
        help="default: numpy-cpu plus every GPU backend available",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after the warm-up")
    parser.add_argument(
        "--steps", type=int, default=None, help="iterations per run (default: the experiment's)"
    )
    parser.add_argument("--size", choices=("quick", "paper"), default="paper")
    parser.add_argument(
        "--plot", type=Path, default=None, help="also draw time per iteration to this PNG"
    )
    parser.add_argument(
        "--from",
        dest="inputs",
        nargs="+",
        type=Path,
        default=None,
        help="plot these earlier JSON outputs instead of running (with --plot)",
    )
    return parser


def plot_results(results: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Bar chart of the median time per iteration, per experiment and backend (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in results if r.get("status") == "ok" and r.get("per_iter_s")]
    experiments = list(dict.fromkeys(r["experiment"] for r in done))
    backends = list(dict.fromkeys(r["backend"] for r in done))
    width = 0.8 / max(len(backends), 1)
    figure, axes = plt.subplots(figsize=(7.0, 3.8))
    for index, backend in enumerate(backends):
        times = [
            next(
                (
                    1e3 * r["per_iter_s"]
                    for r in done
                    if r["experiment"] == e and r["backend"] == backend
                ),
                np.nan,
            )
            for e in experiments
        ]
        positions = np.arange(len(experiments)) + (index - (len(backends) - 1) / 2) * width
        axes.bar(positions, times, width, label=backend)
    axes.set_xticks(np.arange(len(experiments)), experiments)
    axes.set_yscale("log")
    axes.set_ylabel("median time per iteration (ms)")
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the process exit status (0 also when there is no GPU)."""
    args = _parser().parse_args(argv)
    if args.inputs:
        if args.plot is None:
            raise SystemExit("--from needs --plot")
        records = [json.loads(path.read_text()) for path in args.inputs]
        results = [r for record in records for r in record.get("results", [])]
        device = next((r["gpu"].get("device_name") for r in records if r.get("gpu")), None)
        plot_results(results, args.plot, f"surrogate_natgrad on {device or 'CPU only'}")
        print(f"wrote {args.plot}")
        return 0
    status = gpu_status()
    header: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gpu": status,
        "versions": _versions(),
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
    }
    explicit = args.backends is not None
    backends = list(args.backends) if explicit else default_backends(status)
    wants_gpu = any(b in GPU_BACKENDS for b in backends)
    if not explicit and not status["gpu"]:
        message = f"no GPU: {status['reason']}; nothing to benchmark"
        print(message)
        args.out.write_text(json.dumps({**header, "status": "no GPU", "message": message}))
        return 0
    if wants_gpu and not status["gpu"]:
        print(f"no GPU: {status['reason']}; dropping the GPU backends", file=sys.stderr)
        backends = [b for b in backends if b not in GPU_BACKENDS]
    print(f"device: {status['device_name'] or 'CPU only'}; backends: {', '.join(backends)}")
    results = []
    for experiment in args.experiments:
        for backend in backends:
            record = run_one(
                experiment, backend, repeats=args.repeats, steps=args.steps, size=args.size
            )
            results.append(record)
            summary = (
                f"median {record['median_s']:.3f} s (first {record['first_s']:.3f} s), "
                f"{record.get('n_iter')} iterations, loss {record.get('loss')}"
                if record["status"] == "ok"
                else record.get("error") or record.get("reason")
            )
            print(f"{experiment:3s} {backend:17s} {record['status']:7s} {summary}", flush=True)
    add_speedups(results)
    args.out.write_text(json.dumps({**header, "status": "ok", "results": results}, indent=2))
    print(f"wrote {args.out}")
    if args.plot is not None:
        plot_results(results, args.plot, f"surrogate_natgrad on {status['device_name']}")
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
