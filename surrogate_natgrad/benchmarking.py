"""Benchmark harness: every method on every experiment, timed, tuned, summarised and plotted.

Driver layer (layer 4). :func:`run_benchmarks` runs each method of
:mod:`surrogate_natgrad.fitting` on each problem of :mod:`surrogate_natgrad.experiments`
(plus the benchmark-only problems ``RANDHIE``, a real count data set, and ``SN1``, d = 1
skew-normal data), and records, at every iteration, the training loss, the held-out loss and
the wall-clock time. The protocol:

- **Warm-up.** Each configuration is first run for two iterations; that wall time (imports,
  JIT tracing, first-call set-up) is reported as ``first_call_seconds``, and the timed run
  that follows starts warm.
- **Timing.** ``time.perf_counter`` inside :func:`~surrogate_natgrad.fit` at every iteration
  (the loss is read back as a Python float each iteration, which synchronises GPU work);
  :func:`synchronize` additionally waits for torch/CuPy/JAX devices around every timed
  region of the harness.
- **Tuning.** The baselines run on a small grid of step sizes (:data:`STEP_SIZE_GRIDS`, or a
  problem's ``settings["<method>_step_sizes"]``); the best per method by final loss is the
  one summarised; every grid point is kept in the JSON.
- **Summary.** Per problem: method, step size, iterations and seconds to reach ``1e-3``
  relative of the best loss found by any run (and ``1e-6`` for E1), final loss, held-out
  loss, ms per step, and the ratio of the step to a measured per-step floor
  (:func:`measure_floor`).
- **Peers.** statsmodels' ``NegativeBinomial`` and ``scipy.stats.fit(nbinom, ...)`` on E1 and
  RANDHIE; ``scipy.stats.skewnorm.fit`` on SN1.
- **JAX.** :func:`jax_step_timing` compiles whole SNGD steps (and blocks of steps) with
  ``jax.jit`` and compares their per-step time with eager execution.

How each problem is run is looked up in :data:`RUNNERS` (by problem name first, then by
``problem.kind``), so new experiments plug in with :func:`register_runner`; a runner that
cannot run a problem yet raises :class:`NotRunnableError` and the problem is reported as skipped.

Results go to ``results.json`` (with machine, versions and git commit) and PNG plots in the
output directory; :func:`write_markdown` renders them as ``docs/benchmarks.md``.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import importlib.metadata
import inspect
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ADAM_PARAMETERIZATIONS",
    "BACKENDS",
    "EXTRA_PROBLEMS",
    "METHODS",
    "PEERS",
    "RUNNERS",
    "STEP_SIZE_GRIDS",
    "NotRunnableError",
    "RunRecord",
    "default_methods",
    "format_summary_table",
    "get_problem",
    "iterations_to_tolerance",
    "jax_step_timing",
    "machine_info",
    "measure_floor",
    "plot_problem",
    "problem_names",
    "register_runner",
    "run_benchmarks",
    "run_problem",
    "summarize",
    "synchronize",
    "to_backend",
    "write_markdown",
]

#: Array backends the benchmark can run on.
BACKENDS = ("numpy", "torch", "jax")

#: Methods per problem kind. ``"<method>/<line search>"`` runs ``method`` with that
#: ``line_search`` (``"sngd/backtracking"``: SNGD with halving from step 1 instead of fit's
#: default grid of 1000 candidate steps).
METHODS: dict[str, tuple[str, ...]] = {
    "mle": ("sngd", "sngd/backtracking", "gd", "adam", "bfgs", "ngd"),
    "vi": ("sngd", "adam", "mcef"),
}

#: Step-size grids of the baselines per size (``None``: the method's default). SNGD runs at
#: its default only. A problem may override with ``settings["<method>_step_sizes"]``.
STEP_SIZE_GRIDS: dict[str, dict[str, tuple[float | None, ...]]] = {
    "paper": {
        "sngd": (None,),
        "sngd/backtracking": (None,),
        "gd": (0.1, 1.0, 10.0),
        "bfgs": (0.1, 1.0),
        "adam": (0.01, 0.05, 0.2),
        "ngd": (0.3, 1.0),
        "mcef": (1e-3, 1e-2, 1e-1),
    },
    "quick": {
        "sngd": (None,),
        "sngd/backtracking": (None,),
        "gd": (1.0,),
        "bfgs": (1.0,),
        "adam": (0.2,),
        "ngd": (1.0,),
        "mcef": (1e-2,),
    },
}

#: Iteration cap of ``size="quick"`` runs (the problem's own budget at ``"paper"``).
QUICK_MAX_ITER = 20

#: Relative tolerances of the summary: 1e-3 everywhere, plus 1e-6 for E1.
DEFAULT_TOLERANCES = (1e-3,)
TOLERANCES: dict[str, tuple[float, ...]] = {"E1": (1e-3, 1e-6), "RANDHIE": (1e-3, 1e-6)}

#: Largest number of held-out evaluations recorded per run (params are kept at most this
#: often and evaluated after the timed run, so evaluation never counts as fitting time).
MAX_HELDOUT_POINTS = 100

_SCHEMA_VERSION = 1


class NotRunnableError(Exception):
    """Raised by a runner that cannot run a problem (yet); the message says why."""


# ----------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class RunRecord:
    """One timed run of one method (or peer) on one problem.

    Attributes
    ----------
    problem : str
        Problem name (``"E1"``, ...).
    method : str
        Method (``"sngd"``, ``"gd"``, ...) or peer name (``"statsmodels-nb2"``, ...).
    step_size : float or None
        Step size (None: the method's default).
    kind : {"method", "peer"}
        Our method, or a reference implementation.
    loss : list of float
        Training loss at iteration ``i`` (entry 0: the start; NaN where not evaluated).
    time : list of float
        Seconds since the start of the timed run at iteration ``i``.
    heldout_iterations : list of int
        Iterations at which the held-out loss was evaluated.
    heldout_loss : list of float
        Held-out loss at those iterations.
    n_iter : int
        Iterations taken.
    final_loss : float
        Loss at the returned parameters.
    final_heldout_loss : float or None
        Held-out loss at the returned parameters.
    total_seconds : float
        Wall time of the timed run (device synchronised).
    first_call_seconds : float or None
        Wall time of the warm-up run (first call, including JIT/tracing).
    status : str
        Why the run stopped.
    backend : str
        Array backend.
    extra : dict
        Anything else (peer parameters, notes).
    """

    problem: str
    method: str
    step_size: float | None
    kind: str = "method"
    loss: list[float] = dataclasses.field(default_factory=list)
    time: list[float] = dataclasses.field(default_factory=list)
    heldout_iterations: list[int] = dataclasses.field(default_factory=list)
    heldout_loss: list[float] = dataclasses.field(default_factory=list)
    n_iter: int = 0
    final_loss: float = math.nan
    final_heldout_loss: float | None = None
    total_seconds: float = math.nan
    first_call_seconds: float | None = None
    status: str = ""
    backend: str = "numpy"
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def ms_per_step(self) -> float:
        """Mean milliseconds per iteration of the timed run (NaN without iterations)."""
        if self.n_iter <= 0 or len(self.time) < 2:
            if self.kind == "peer" and self.n_iter > 0:
                return 1e3 * self.total_seconds / self.n_iter
            return math.nan
        return 1e3 * (self.time[-1] - self.time[0]) / self.n_iter

    @property
    def median_ms_per_step(self) -> float:
        """Median milliseconds of one iteration (NaN without per-iteration times).

        Unlike :attr:`ms_per_step` it leaves out the evaluations a minibatch fit makes
        every ``eval_every`` steps (a full-data loss and the held-out loss), so it is the
        step time that :func:`summarize` compares with the measured floor.
        """
        steps = [b - a for a, b in zip(self.time[:-1], self.time[1:], strict=True)]
        steps = [v for v in steps if math.isfinite(v)]
        if self.kind != "method" or not steps:
            return math.nan
        return 1e3 * statistics.median(steps)

    @property
    def best_loss(self) -> float:
        """Lowest finite loss of the run (NaN if none)."""
        finite = [v for v in [*self.loss, self.final_loss] if math.isfinite(v)]
        return min(finite) if finite else math.nan

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (non-finite floats become None).

        Returns
        -------
        dict of str to object
            The record's fields and ``ms_per_step``, as plain Python values.
        """
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["ms_per_step"] = self.ms_per_step
        out["median_ms_per_step"] = self.median_ms_per_step
        return _clean(out)


def _clean(value: Any) -> Any:
    """Make ``value`` JSON-serialisable: NaN/inf to None, NumPy scalars/arrays to Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------------------
# Tolerances
# ----------------------------------------------------------------------------------------


def iterations_to_tolerance(
    loss: Sequence[float], times: Sequence[float], best: float, rel: float
) -> tuple[int | None, float | None]:
    """First iteration (and its time) at which ``loss`` is within ``rel`` of ``best``.

    Parameters
    ----------
    loss : sequence of float
        Loss at iteration ``i`` (entry 0 is the start; NaN entries are skipped).
    times : sequence of float
        Seconds at iteration ``i`` (same length as ``loss``).
    best : float
        The reference (best) loss.
    rel : float
        Relative tolerance: reached when ``loss - best <= rel * |best|``.

    Returns
    -------
    iteration : int or None
        The first such iteration, None if never.
    seconds : float or None
        ``times[iteration]``, None if never.

    Examples
    --------
    >>> iterations_to_tolerance([2.0, 1.1, 1.0005, 1.0], [0.0, 0.1, 0.2, 0.3], 1.0, 1e-3)
    (2, 0.2)
    """
    values = np.asarray(loss, dtype=float)
    reached = np.nonzero(np.isfinite(values) & (values - best <= rel * abs(best)))[0]
    if reached.size == 0:
        return None, None
    first = int(reached[0])
    return first, float(times[first])


# ----------------------------------------------------------------------------------------
# Backends and device synchronisation
# ----------------------------------------------------------------------------------------


def synchronize(*arrays: Any) -> None:
    """Wait until the devices holding ``arrays`` have finished their queued work.

    NumPy and CPU arrays return at once; torch CUDA tensors call ``torch.cuda.synchronize``,
    CuPy arrays synchronise their device, JAX arrays ``block_until_ready``. Pytrees (dicts,
    lists, tuples) are walked.

    Parameters
    ----------
    *arrays : array or pytree of arrays
        What to wait for.
    """
    for value in arrays:
        if isinstance(value, Mapping):
            synchronize(*value.values())
            continue
        if isinstance(value, list | tuple):
            synchronize(*value)
            continue
        module = type(value).__module__
        if module.startswith("torch"):
            torch = sys.modules.get("torch")
            if torch is not None and getattr(value, "is_cuda", False):
                torch.cuda.synchronize(value.device)
        elif module.startswith("cupy"):
            cupy = sys.modules.get("cupy")
            if cupy is not None:
                with value.device:
                    cupy.cuda.get_current_stream().synchronize()
        elif module.startswith("jax") or module.startswith("jaxlib"):
            jax = sys.modules.get("jax")
            if jax is not None:
                jax.block_until_ready(value)


def _enable_jax_x64() -> Any:
    import jax

    # The benchmarks run in float64 like the paper; JAX needs opting in before arrays exist.
    jax.config.update("jax_enable_x64", True)
    return jax


def to_backend(value: Any, backend: str, device: str | None = None) -> Any:
    """Convert a NumPy array (or a dict/list/tuple of them) to ``backend``'s arrays.

    Parameters
    ----------
    value : numpy.ndarray or pytree of them
        Host data of a problem (experiments generate them with NumPy).
    backend : {"numpy", "torch", "jax"}
        Target library.
    device : str, optional
        torch device (e.g. ``"cuda"``); default CPU. JAX uses its default device.

    Returns
    -------
    array or pytree
        The same values as arrays of ``backend`` (dtype preserved).
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {k: to_backend(v, backend, device) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_backend(v, backend, device) for v in value)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    host = np.asarray(value)
    if backend == "numpy":
        return host
    if backend == "torch":
        import torch

        return torch.asarray(host, device=device or "cpu")
    jax = _enable_jax_x64()
    return jax.numpy.asarray(host)


# ----------------------------------------------------------------------------------------
# Problems
# ----------------------------------------------------------------------------------------


def _randhie_problem(seed: int = 0, size: str = "quick") -> Any:
    """NB maximum likelihood on the RAND HIE doctor visits (last 10 % held out)."""
    from surrogate_natgrad import datasets
    from surrogate_natgrad.distributions import NegativeBinomial
    from surrogate_natgrad.experiments import Problem

    counts = np.asarray(datasets.load_randhie(), dtype=np.int64)
    split = int(0.9 * counts.shape[0])
    return Problem(
        name="RANDHIE",
        distribution=NegativeBinomial,
        data=counts[:split],
        validation_data=counts[split:],
        # A deliberately poor start (as E1's random starts): mean 1, variance 2.
        init={"n": np.asarray(1.0), "p": np.asarray(0.5)},
        truth={},
        max_iter=100,
        settings={"mc_samples": 100_000 if size == "paper" else 10_000},
        description=(
            f"negative binomial MLE on RAND HIE outpatient visits (mdvis), N = {split} "
            f"(last {counts.shape[0] - split} held out)"
        ),
    )


def _sn1_problem(seed: int = 0, size: str = "quick") -> Any:
    """d = 1 skew-normal maximum likelihood on data drawn with scipy."""
    import scipy.stats

    from surrogate_natgrad.experiments import Problem

    try:
        from surrogate_natgrad.distributions import SkewNormal
    except ImportError:
        from surrogate_natgrad.distributions.skew_normal import SkewNormal

    truth = {"loc": np.array([1.0]), "scale": np.array([[4.0]]), "alpha": np.array([4.0])}
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    draws = scipy.stats.skewnorm.rvs(4.0, loc=1.0, scale=2.0, size=2000, random_state=rng)
    return Problem(
        name="SN1",
        distribution=SkewNormal,
        data=draws[:1000, None],
        validation_data=draws[1000:, None],
        init={"loc": np.array([0.0]), "scale": np.array([[1.0]]), "alpha": np.array([0.01])},
        truth=truth,
        max_iter=100,
        # SNGD runs with fit's defaults (the grid line search; the whole fit takes well under
        # a second since the skew-normal map holds the mean and covariance). The baselines:
        # GD, Adam, BFGS (the Monte Carlo Fisher of NGD takes per-sample gradients, minutes
        # per step here).
        settings={
            "gd_step_sizes": (0.1, 1.0),
            "adam_step_sizes": (0.01, 0.05, 0.2),
            "bfgs_step_sizes": (1.0,),
        },
        description="d = 1 skew-normal MLE, N = 1000 (scipy draws, a = 4, loc 1, scale 2)",
    )


def _d100_problem(name: str) -> Callable[..., Any]:
    def build(seed: int = 0, size: str = "quick") -> Any:
        from surrogate_natgrad import experiments

        dim = 100 if size == "paper" else None
        problem = experiments.get(name, seed=seed, size=size, dim=dim)
        return dataclasses.replace(problem, name=f"{name}-D100")

    build.__doc__ = f"{name} at d = 100 (N = 10,000): the size the authors' code reports."
    return build


#: Benchmark-only problems (beside :data:`surrogate_natgrad.experiments.PROBLEMS`).
EXTRA_PROBLEMS: dict[str, Callable[..., Any]] = {
    "RANDHIE": _randhie_problem,
    "SN1": _sn1_problem,
    "E3-D100": _d100_problem("E3"),
    "E4-D100": _d100_problem("E4"),
}


def problem_names() -> list[str]:
    """Return every problem name the benchmark knows (experiments first, then extras).

    Returns
    -------
    list of str
    """
    from surrogate_natgrad import experiments

    return sorted(experiments.PROBLEMS) + list(EXTRA_PROBLEMS)


def get_problem(name: str, seed: int = 0, size: str = "quick") -> Any:
    """Return the problem ``name`` (an experiment or one of :data:`EXTRA_PROBLEMS`).

    Parameters
    ----------
    name : str
        Case-insensitive problem name.
    seed : int, optional
        Seed of the problem.
    size : {"quick", "paper"}, optional
        Problem size.

    Returns
    -------
    surrogate_natgrad.experiments.Problem
    """
    from surrogate_natgrad import experiments

    key = name.upper()
    if key in EXTRA_PROBLEMS:
        return EXTRA_PROBLEMS[key](seed=seed, size=size)
    if key not in experiments.PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; choose from {problem_names()} or 'all'")
    return experiments.get(key, seed=seed, size=size)


def _expand_names(names: Iterable[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        expanded = problem_names() if name.lower() == "all" else [name.upper()]
        for item in expanded:
            if item not in out:
                out.append(item)
    known = set(problem_names())
    unknown = [n for n in out if n not in known]
    if unknown:
        raise ValueError(f"unknown problem(s) {unknown}; choose from {problem_names()} or 'all'")
    return out


# ----------------------------------------------------------------------------------------
# Runners
# ----------------------------------------------------------------------------------------

#: ``runner(problem, method, *, step_size, max_iter, seed, backend, device) -> RunRecord``.
Runner = Callable[..., RunRecord]

#: Runners by problem name (first) or problem kind (``"mle"``, ``"vi"``).
RUNNERS: dict[str, Runner] = {}


def register_runner(key: str, runner: Runner) -> None:
    """Register how problems are run: by problem name (e.g. ``"E5"``) or kind (``"vi"``).

    Parameters
    ----------
    key : str
        A problem name (upper case) or a problem kind.
    runner : callable
        ``runner(problem, method, *, step_size, max_iter, seed, backend, device)`` returning a
        :class:`RunRecord`; raises :class:`NotRunnableError` when it cannot run the problem.
    """
    RUNNERS[key] = runner


def _runner_for(problem: Any) -> Runner:
    runner = RUNNERS.get(problem.name) or RUNNERS.get(getattr(problem, "kind", "mle"))
    if runner is None:
        raise NotRunnableError(f"no benchmark runner for problems of kind {problem.kind!r}")
    return runner


def _accepted_options(function: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``options`` that ``function`` accepts as keyword arguments."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return dict(options)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(options)
    return {k: v for k, v in options.items() if k in parameters}


class _Recorder:
    """A fit callback keeping the parameters every ``every`` iterations (no evaluation)."""

    def __init__(self, every: int) -> None:
        self.every = max(1, every)
        self.params: dict[int, Any] = {}
        self.last: tuple[int, Any] | None = None

    def __call__(self, info: Any) -> None:
        self.last = (int(info.iteration), info.params)
        if info.iteration % self.every == 0:
            self.params[int(info.iteration)] = info.params


def _heldout_data(problem: Any, seed: int) -> np.ndarray | None:
    """The problem's held-out data, or fresh draws from its truth of the data's size."""
    if problem.validation_data is not None:
        return np.asarray(problem.validation_data)
    if problem.data is None or not problem.truth:
        return None
    try:
        truth = problem.true_distribution()
        draws = truth.sample(np.asarray(problem.data).shape[0], seed=seed + 10_007)
    except Exception:  # a generator without a sampler: no held-out curve
        return None
    return np.asarray(draws)


#: Square-root parameterisations of the Adam baselines (``settings["adam_parameterizations"]``):
#: ``"cholesky"`` is the target's ``to_unconstrained`` (``Ω = WᵀW``), ``"precision"`` its
#: ``to_unconstrained_precision`` (``Ω⁻¹ = WᵀW``). A problem that names them runs Adam
#: once per parameterisation, as ``"adam/cholesky"`` and ``"adam/precision"``.
ADAM_PARAMETERIZATIONS = ("cholesky", "precision")


def _mle_runner(
    problem: Any,
    method: str,
    *,
    step_size: float | None,
    max_iter: int,
    seed: int,
    backend: str = "numpy",
    device: str | None = None,
) -> RunRecord:
    """Run :func:`surrogate_natgrad.fit` on a maximum-likelihood problem."""
    from surrogate_natgrad import fit
    from surrogate_natgrad.errors import SurrogateNatgradError

    data = to_backend(problem.data, backend, device)
    base_method, _, line_search = method.partition("/")
    distribution = problem.distribution
    options: dict[str, Any] = {
        "method": base_method,
        "init": problem.init,
        "step_size": step_size,
        "seed": seed,
    }
    if base_method == "adam" and line_search in ADAM_PARAMETERIZATIONS:
        # "adam/precision": Adam on Ω⁻¹ = WᵀW (the paper's second baseline).
        options["parameterization"], line_search = line_search, ""
    if problem.n_components is not None:
        options["n_components"] = problem.n_components
    for key in ("mc_samples", "batch_size", "eval_every", "aux_step_size", "grid_size"):
        if key in problem.settings and (key != "mc_samples" or base_method == "ngd"):
            options[key] = problem.settings[key]
    options.update(problem.settings.get("fit_options", {}))
    if line_search:
        options["line_search"] = None if line_search == "none" else line_search
    if base_method == "adam":
        options.pop("line_search", None)  # Adam takes no line search
    options = _accepted_options(fit, options)

    def run(iterations: int, callback: Any = None) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit(distribution, data, max_iter=iterations, callback=callback, **options)

    warm_start = time.perf_counter()
    try:
        run(min(2, max_iter))
    except (SurrogateNatgradError, TypeError, NotImplementedError) as exc:
        target = getattr(problem.distribution, "__name__", str(problem.distribution))
        raise NotRunnableError(
            f"fit cannot run {problem.name} ({target}) with method={method!r}: {exc}"
        ) from exc
    first_call = time.perf_counter() - warm_start
    recorder = _Recorder(max(1, max_iter // MAX_HELDOUT_POINTS))
    synchronize(data)
    start = time.perf_counter()
    result = run(max_iter, recorder)
    synchronize(result.params)
    total = time.perf_counter() - start
    history = result.history
    record = RunRecord(
        problem=problem.name,
        method=method,
        step_size=step_size,
        loss=[float(v) for v in history.loss],
        time=[float(v) for v in history.time],
        n_iter=int(result.n_iter),
        final_loss=float(result.loss),
        total_seconds=total,
        first_call_seconds=first_call,
        status=str(result.status),
        backend=backend,
    )
    _add_heldout(record, problem, recorder, result, seed, backend, device)
    return record


def _add_heldout(
    record: RunRecord,
    problem: Any,
    recorder: _Recorder,
    result: Any,
    seed: int,
    backend: str,
    device: str | None,
) -> None:
    """Evaluate the held-out loss at the recorded parameters (after the timed run)."""
    heldout = _heldout_data(problem, seed)
    mean_nll = getattr(problem.distribution, "mean_nll", None)
    if heldout is None or mean_nll is None:
        return
    heldout_xp = to_backend(heldout, backend, device)
    points = {0: to_backend(problem.init, backend, device), **recorder.params}
    if recorder.last is not None:
        points.setdefault(recorder.last[0], recorder.last[1])

    def evaluate(params: Any) -> float:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return float(mean_nll(dict(params), heldout_xp))
        except Exception:
            return math.nan

    for iteration in sorted(points):
        record.heldout_iterations.append(iteration)
        record.heldout_loss.append(evaluate(points[iteration]))
    record.final_heldout_loss = evaluate(result.params)


def _vi_runner(
    problem: Any,
    method: str,
    *,
    step_size: float | None,
    max_iter: int,
    seed: int,
    backend: str = "numpy",
    device: str | None = None,
) -> RunRecord:
    """Run :func:`surrogate_natgrad.fit_vi` on a variational-inference problem.

    The loss is the negative ELBO that ``fit_vi`` evaluates with fixed samples (common
    random numbers) every ``eval_every`` iterations.
    """
    import surrogate_natgrad

    fit_vi: Callable[..., Any] | None = getattr(surrogate_natgrad, "fit_vi", None)
    if fit_vi is None:
        fit_vi = getattr(importlib.import_module("surrogate_natgrad.fitting"), "fit_vi", None)
    if fit_vi is None:
        raise NotRunnableError("surrogate_natgrad.fit_vi is not available yet")
    run_vi: Callable[..., Any] = fit_vi
    if problem.model is None:
        raise NotRunnableError(f"VI problem {problem.name} has no model")
    settings = problem.settings
    base_method, _, variant = method.partition("/")
    options: dict[str, Any] = {
        "method": base_method,
        "init": problem.init,
        "step_size": step_size,
        "seed": seed,
        "family": settings.get("family", problem.distribution),
    }
    for key in ("n_samples", "n_samples_eval", "eval_every", "parameterization", "line_search"):
        if key in settings:
            options[key] = settings[key]
    if variant in ADAM_PARAMETERIZATIONS:
        options["parameterization"] = variant
    if backend != "numpy":
        options["like"] = to_backend(np.zeros(()), backend, device)
    options.update(settings.get("fit_options", {}))
    options = _accepted_options(fit_vi, options)

    def run(iterations: int) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return run_vi(problem.model, max_iter=iterations, **options)

    warm_start = time.perf_counter()
    try:
        run(min(2, max_iter))
    except (TypeError, ValueError, NotImplementedError) as exc:
        raise NotRunnableError(f"fit_vi cannot run {problem.name} with {method!r}: {exc}") from exc
    first_call = time.perf_counter() - warm_start
    start = time.perf_counter()
    result = run(max_iter)
    synchronize(result.params)
    total = time.perf_counter() - start
    history = result.history
    record = RunRecord(
        problem=problem.name,
        method=method,
        step_size=step_size,
        loss=[float(v) for v in history.loss],
        time=[float(v) for v in history.time],
        n_iter=int(result.n_iter),
        final_loss=float(result.loss),
        total_seconds=total,
        first_call_seconds=first_call,
        status=str(result.status),
        backend=backend,
    )
    if history.validation_loss is not None:
        values = np.asarray(history.validation_loss, dtype=float)
        keep = np.nonzero(np.isfinite(values))[0]
        record.heldout_iterations = [int(i) for i in keep]
        record.heldout_loss = [float(values[i]) for i in keep]
    return record


register_runner("mle", _mle_runner)
register_runner("vi", _vi_runner)


# ----------------------------------------------------------------------------------------
# Peers (reference implementations)
# ----------------------------------------------------------------------------------------


def _timed(function: Callable[[], Any], warm_up: bool = True) -> tuple[Any, float | None, float]:
    """(result, first-call seconds, timed seconds); without ``warm_up`` one untimed-first run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = None
        if warm_up:
            start = time.perf_counter()
            function()
            first = time.perf_counter() - start
        start = time.perf_counter()
        result = function()
    return result, first, time.perf_counter() - start


def _nb_nll(data: np.ndarray, n: float, p: float) -> float:
    import scipy.stats

    return float(-np.mean(scipy.stats.nbinom.logpmf(data, n, p)))


def _peer_statsmodels_nb(problem: Any, warm_up: bool = True) -> list[RunRecord]:
    """statsmodels' intercept-only NB2 regression, (const, alpha) -> scipy's (n, p)."""
    try:
        from statsmodels.discrete.discrete_model import NegativeBinomial as StatsmodelsNB
    except ImportError as exc:
        raise NotRunnableError("statsmodels is not installed") from exc
    counts = np.asarray(problem.data, dtype=float)
    design = np.ones((counts.shape[0], 1))
    records = []
    for optimizer in ("bfgs", "newton"):

        def run(optimizer: str = optimizer) -> Any:
            model = StatsmodelsNB(counts, design, loglike_method="nb2")
            return model.fit(method=optimizer, disp=0, maxiter=200)

        result, first, seconds = _timed(run, warm_up)
        const, alpha = (float(v) for v in np.asarray(result.params))
        mean = math.exp(const)
        # NB2: var = mean + alpha mean^2, i.e. scipy's n = 1/alpha, p = n / (n + mean).
        n = 1.0 / alpha
        p = n / (n + mean)
        retvals = result.mle_retvals
        iterations = int(retvals.get("iterations", retvals.get("fcalls", 0)) or 0)
        records.append(
            RunRecord(
                problem=problem.name,
                method=f"statsmodels-nb2-{optimizer}",
                step_size=None,
                kind="peer",
                n_iter=iterations,
                final_loss=_nb_nll(counts.astype(np.int64), n, p),
                total_seconds=seconds,
                first_call_seconds=first,
                status="converged" if retvals.get("converged") else "not converged",
                extra={"params": {"n": n, "p": p, "const": const, "alpha": alpha}},
            )
        )
    return records


def _peer_scipy_nbinom(problem: Any, warm_up: bool = True) -> list[RunRecord]:
    """``scipy.stats.fit(nbinom, data, bounds)`` (differential evolution by default)."""
    import scipy.stats

    counts = np.asarray(problem.data, dtype=np.int64)
    bounds = {"n": (1e-3, 1e3), "p": (1e-6, 1.0), "loc": (0.0, 0.0)}

    def run() -> Any:
        return scipy.stats.fit(scipy.stats.nbinom, counts, bounds=bounds)

    result, first, seconds = _timed(run, warm_up)
    n, p = float(result.params.n), float(result.params.p)
    return [
        RunRecord(
            problem=problem.name,
            method="scipy.stats.fit",
            step_size=None,
            kind="peer",
            n_iter=0,
            final_loss=_nb_nll(counts, n, p),
            total_seconds=seconds,
            first_call_seconds=first,
            status="converged" if result.success else "not converged",
            extra={"params": {"n": n, "p": p}, "optimizer": "differential_evolution"},
        )
    ]


def _peer_scipy_skewnorm(problem: Any, warm_up: bool = True) -> list[RunRecord]:
    """``scipy.stats.skewnorm.fit`` on d = 1 data."""
    import scipy.stats

    values = np.asarray(problem.data, dtype=float).reshape(-1)

    def run() -> Any:
        return scipy.stats.skewnorm.fit(values)

    (shape, loc, scale), first, seconds = _timed(run, warm_up)
    loss = float(-np.mean(scipy.stats.skewnorm.logpdf(values, shape, loc, scale)))
    heldout = None
    if problem.validation_data is not None:
        held = np.asarray(problem.validation_data, dtype=float).reshape(-1)
        heldout = float(-np.mean(scipy.stats.skewnorm.logpdf(held, shape, loc, scale)))
    return [
        RunRecord(
            problem=problem.name,
            method="scipy.skewnorm.fit",
            step_size=None,
            kind="peer",
            final_loss=loss,
            final_heldout_loss=heldout,
            total_seconds=seconds,
            first_call_seconds=first,
            status="done",
            extra={"params": {"a": shape, "loc": loc, "scale": scale}},
        )
    ]


#: Reference implementations run beside our methods, per problem name:
#: ``peer(problem, warm_up=True) -> list of RunRecord`` (warm-up only at paper size).
PEERS: dict[str, list[Callable[..., list[RunRecord]]]] = {
    "E1": [_peer_statsmodels_nb, _peer_scipy_nbinom],
    "RANDHIE": [_peer_statsmodels_nb, _peer_scipy_nbinom],
    "SN1": [_peer_scipy_skewnorm],
}


# ----------------------------------------------------------------------------------------
# Per-step floor
# ----------------------------------------------------------------------------------------


def _time_call(function: Callable[[], Any], min_seconds: float = 0.2) -> dict[str, float]:
    """Minimum and median seconds of ``function()`` (synchronised), after one warm-up call."""
    synchronize(function())
    samples: list[float] = []
    budget_start = time.perf_counter()
    while len(samples) < 5 or (
        time.perf_counter() - budget_start < min_seconds and len(samples) < 2000
    ):
        start = time.perf_counter()
        synchronize(function())
        samples.append(time.perf_counter() - start)
    return {"min": min(samples), "median": statistics.median(samples), "repeats": len(samples)}


def _problem_dim(problem: Any) -> int:
    """The dimension ``d`` of the step's linear algebra."""
    if "dim" in problem.settings:
        return int(problem.settings["dim"])
    if problem.model is not None and hasattr(problem.model, "dim"):
        return int(problem.model.dim)
    if "loc" in problem.init:
        return int(np.asarray(problem.init["loc"]).shape[-1])
    matrices = [np.shape(v) for v in problem.init.values() if np.ndim(v) >= 2]
    if matrices:  # a scale/correlation matrix: its side is d
        return int(max(shape[-1] for shape in matrices))
    return int(sum(np.asarray(v).size for v in problem.init.values()))


def measure_floor(
    problem: Any, backend: str = "numpy", device: str | None = None
) -> dict[str, Any]:
    """Measure the per-step floor: one pass over the data plus one d×d Cholesky and solves.

    The pass over the data is the target's mean negative log-likelihood at the starting
    parameters over every observation, or over one minibatch when the problem runs on
    minibatches (``settings["batch_size"]``) (for VI: the model's log joint at ``n_samples``
    points); the linear algebra is a Cholesky factorisation of a d×d SPD matrix and two
    triangular solves with a vector. Both in the benchmark's backend.

    Parameters
    ----------
    problem : Problem
        The problem.
    backend : {"numpy", "torch", "jax"}, optional
        Array backend.
    device : str, optional
        torch device.

    Returns
    -------
    dict
        ``floor_ms`` (sum of the two minima), ``data_pass_ms``, ``linalg_ms``, ``dim``,
        ``what`` (a description), the medians, or ``error`` when it could not be measured.
    """
    from surrogate_natgrad._compat import linalg, namespace

    dim = _problem_dim(problem)
    try:
        if problem.kind == "vi":
            model = problem.model
            n_samples = int(problem.settings.get("n_samples", 10))
            points = np.zeros((n_samples, dim))
            if backend != "numpy":
                raise NotRunnableError("the VI floor is measured on NumPy only")

            def data_pass() -> Any:
                return model.log_joint(points)

            what = f"log joint at {n_samples} samples"
        else:
            host = np.asarray(problem.data)
            batch_size = problem.settings.get("batch_size")
            if batch_size is not None and int(batch_size) < host.shape[0]:
                # A minibatch step passes over one batch, not over all the data.
                host = host[: int(batch_size)]
                what = f"mean NLL over one minibatch of {host.shape[0]} observations"
            else:
                what = f"mean NLL over all {host.shape[0]} observations"
            data = to_backend(host, backend, device)
            params = to_backend(problem.init, backend, device)
            mean_nll = problem.distribution.mean_nll

            def data_pass() -> Any:
                return mean_nll(params, data)

        rng = np.random.default_rng(0)
        factor = rng.normal(size=(dim, dim)) / math.sqrt(dim)
        spd = to_backend(factor @ factor.T + np.eye(dim), backend, device)
        vector = to_backend(rng.normal(size=(dim, 1)), backend, device)
        xp = namespace(spd)

        def linear_algebra() -> Any:
            chol = linalg.cholesky(spd)
            half = linalg.solve_triangular(chol, vector, lower=True)
            return linalg.solve_triangular(xp.matrix_transpose(chol), half, lower=False)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pass_time = _time_call(data_pass)
            linalg_time = _time_call(linear_algebra)
    except Exception as exc:  # report, never fail the benchmark on the floor
        return {"error": f"{type(exc).__name__}: {exc}", "dim": dim}
    return {
        "floor_ms": 1e3 * (pass_time["min"] + linalg_time["min"]),
        "data_pass_ms": 1e3 * pass_time["min"],
        "data_pass_median_ms": 1e3 * pass_time["median"],
        "linalg_ms": 1e3 * linalg_time["min"],
        "linalg_median_ms": 1e3 * linalg_time["median"],
        "dim": dim,
        "what": f"{what} + Cholesky and two triangular solves of a {dim}x{dim} matrix",
        "backend": backend,
    }


# ----------------------------------------------------------------------------------------
# JAX: whole jit-compiled SNGD steps
# ----------------------------------------------------------------------------------------


def jax_step_timing(
    problem: Any,
    n_steps: int = 10,
    block: int = 5,
    line_search: str | None = None,
    step_size: float = 0.5,
) -> dict[str, Any]:
    """Per-step time of SNGD with JAX arrays: eager, ``jax.jit`` per step, jitted blocks.

    Builds ``rules.SNGD(...).make_step(objective)`` on the problem's data (compressed to
    distinct values with frequencies, as :func:`~surrogate_natgrad.fit` does) and times

    - the eager step (JAX arrays, no compilation),
    - ``jax.jit(step)`` (compile time separately, then per step),
    - ``jax.jit`` of a ``lax.fori_loop`` over ``block`` steps (per step),
    - and, for comparison, the same rule eagerly on NumPy arrays (autograd).

    Parameters
    ----------
    problem : Problem
        A maximum-likelihood problem whose distribution has ``surrogate_map``.
    n_steps : int, optional
        Steps timed per variant.
    block : int, optional
        Steps per compiled block.
    line_search : {None, "backtracking"}, optional
        The jit-compatible line searches (the grid search of :func:`fit` is not). Default
        None (fixed steps): backtracking multiplies the compiled graph by its 20 candidates.
    step_size : float, optional
        The (largest) step size.

    Returns
    -------
    dict
        ``eager_ms``, ``jit_compile_s`` (first call), ``jit_second_call_s`` (the second call
        compiles again), ``jit_ms`` (from the third call on), ``block_compile_s`` (first two
        block calls), ``block_ms``,
        ``numpy_eager_ms``, ``loss_start``/``loss_end`` of the jitted run, or ``error``.
    """
    out: dict[str, Any] = {
        "problem": problem.name,
        "line_search": line_search,
        "step_size": step_size,
        "n_steps": n_steps,
        "block": block,
    }
    try:
        jax = _enable_jax_x64()
        from surrogate_natgrad import rules

        cls = problem.distribution
        surrogate_map = (
            cls.surrogate_map(problem.n_components)
            if problem.n_components is not None
            else cls.surrogate_map()
        )

        def setup(backend: str) -> tuple[Any, Any, Any]:
            counts = np.asarray(problem.data)
            values, frequencies = np.unique(counts, return_counts=True)
            distinct = to_backend(values.astype(np.float64), backend)
            weights = to_backend(frequencies.astype(np.float64), backend)
            target = cls.from_params(to_backend(problem.init, backend)).params
            rule = rules.SNGD(
                surrogate_map,
                form="mle",
                step_size=step_size,
                line_search=line_search,
                backend="jax" if backend == "jax" else None,
            )
            state = rule.init_from_target(target)

            def objective(params: Any) -> Any:
                return cls.mean_nll(params, distinct, weights)

            return rule, state, rule.make_step(objective)

        def per_step(step: Any, state: Any, count: int) -> tuple[float, Any, list[float]]:
            losses = []
            synchronize(state)
            start = time.perf_counter()
            for _ in range(count):
                state, info = step(state)
                losses.append(info.loss)
            synchronize(state)
            seconds = (time.perf_counter() - start) / count
            return seconds, state, [float(v) for v in losses]

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, numpy_state, numpy_step = setup("numpy")
            numpy_step(numpy_state)
            seconds, _, _ = per_step(numpy_step, numpy_state, min(n_steps, 5))
            out["numpy_eager_ms"] = 1e3 * seconds

            _, state, step = setup("jax")
            start = time.perf_counter()
            synchronize(step(state))
            out["eager_first_call_s"] = time.perf_counter() - start
            seconds, _, _ = per_step(step, state, min(n_steps, 5))
            out["eager_ms"] = 1e3 * seconds

            jitted = jax.jit(step)
            start = time.perf_counter()
            second_state, first_info = jitted(state)
            synchronize(second_state)
            out["jit_compile_s"] = time.perf_counter() - start
            # The second call compiles once more (the state returned by a jitted call is
            # not laid out like the freshly built one), without retracing; only from the
            # third call on does the cached executable run.
            start = time.perf_counter()
            third_state, second_info = jitted(second_state)
            synchronize(third_state)
            out["jit_second_call_s"] = time.perf_counter() - start
            seconds, _, losses = per_step(jitted, third_state, n_steps)
            out["jit_ms"] = 1e3 * seconds
            out["jit_losses"] = [float(first_info.loss), float(second_info.loss), *losses]

            def run_block(state: Any) -> Any:
                return jax.lax.fori_loop(0, block, lambda _, s: step(s)[0], state)

            blocked = jax.jit(run_block)
            start = time.perf_counter()
            current = blocked(blocked(state))
            synchronize(current)
            out["block_compile_s"] = time.perf_counter() - start
            count = max(1, n_steps // block)
            start = time.perf_counter()
            for _ in range(count):
                current = blocked(current)
            synchronize(current)
            out["block_ms"] = 1e3 * (time.perf_counter() - start) / (count * block)
    except Exception as exc:  # report what blocks it instead of failing the benchmark
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


# ----------------------------------------------------------------------------------------
# Driving, summarising
# ----------------------------------------------------------------------------------------


def _step_sizes(problem: Any, method: str, size: str) -> tuple[float | None, ...]:
    override = problem.settings.get(f"{method}_step_sizes")
    if override is not None:
        values = tuple(override)
        return values if size == "paper" else (values[len(values) // 2],)
    return STEP_SIZE_GRIDS[size].get(method, (None,))


def _with_parameterizations(problem: Any, methods: Sequence[str]) -> list[str]:
    """``methods`` with ``"adam"`` expanded to ``"adam/<p>"`` per ``adam_parameterizations``."""
    variants = tuple(problem.settings.get("adam_parameterizations", ()))
    out: list[str] = []
    for method in methods:
        if method == "adam" and variants:
            out.extend(f"adam/{variant}" for variant in variants)
        else:
            out.append(method)
    return out


def default_methods(problem: Any) -> tuple[str, ...]:
    """The methods run on ``problem`` by default.

    SNGD plus the paper's baselines of that experiment: the methods with a
    ``settings["<method>_step_sizes"]`` grid when the problem names any, otherwise every
    method of its kind (:data:`METHODS`).

    Parameters
    ----------
    problem : Problem
        The problem.

    Returns
    -------
    tuple of str
    """
    available = METHODS.get(problem.kind, ())
    named = [m for m in available if f"{m}_step_sizes" in problem.settings]
    if named:
        return tuple(["sngd", *[m for m in named if m != "sngd"]])
    return available


def run_problem(
    name: str,
    *,
    size: str = "quick",
    backend: str = "numpy",
    methods: Sequence[str] | None = None,
    seed: int = 0,
    peers: bool = True,
    floor: bool = True,
    jit: bool | Sequence[str] = False,
    device: str | None = None,
    log: Callable[[str], Any] | None = None,
    max_iter: int | None = None,
) -> dict[str, Any]:
    """Run every method (with its step-size grid) and the peers on one problem.

    Parameters
    ----------
    name : str
        Problem name.
    size : {"quick", "paper"}, optional
        ``"quick"`` caps the iterations at :data:`QUICK_MAX_ITER` and shrinks the grids.
    backend : {"numpy", "torch", "jax"}, optional
        Array backend of the data.
    methods : sequence of str, optional
        Methods to run (default: all of the problem's kind); unknown ones are skipped.
    seed : int, optional
        Seed of the problem and of the methods.
    peers : bool, optional
        Run the reference implementations of :data:`PEERS`.
    floor : bool, optional
        Measure the per-step floor.
    jit : bool or sequence of str, optional
        Time jit-compiled JAX SNGD steps (:func:`jax_step_timing`): on every problem, or
        on the problems named.
    device : str, optional
        torch device.
    log : callable, optional
        Receives progress lines.
    max_iter : int, optional
        Iteration budget per run, overriding the problem's (and the quick cap).

    Returns
    -------
    dict
        ``name``, ``description``, ``kind``, ``runs`` (list of :class:`RunRecord`), ``skipped``
        (method -> reason), ``floor``, ``jit``, ``summary`` (see :func:`summarize`), or
        ``skipped_problem`` with the reason.
    """
    say = log or (lambda _message: None)
    out: dict[str, Any] = {"name": name, "runs": [], "skipped": {}}
    try:
        problem = get_problem(name, seed=seed, size=size)
    except Exception as exc:
        out["skipped_problem"] = f"cannot build {name}: {type(exc).__name__}: {exc}"
        say(f"{name}: skipped ({out['skipped_problem']})")
        return out
    out.update(description=problem.description, kind=problem.kind)
    if max_iter is None:
        max_iter = problem.max_iter if size == "paper" else min(problem.max_iter, QUICK_MAX_ITER)
    out["max_iter"] = max_iter
    available = METHODS.get(problem.kind, ())
    chosen = list(methods) if methods else list(default_methods(problem))
    for method in _with_parameterizations(problem, chosen):
        if method.partition("/")[0] not in available and method not in available:
            out["skipped"][method] = f"not a method of {problem.kind} problems {available}"
            continue
        grid_key = "adam" if method.partition("/")[0] == "adam" else method
        for step_size in _step_sizes(problem, grid_key, size):
            label = f"{name} {method} step_size={step_size}"
            try:
                runner = _runner_for(problem)
                record = runner(
                    problem,
                    method,
                    step_size=step_size,
                    max_iter=max_iter,
                    seed=seed,
                    backend=backend,
                    device=device,
                )
            except NotRunnableError as exc:
                out["skipped"][method] = str(exc)
                say(f"{label}: skipped ({exc})")
                break
            out["runs"].append(record)
            say(
                f"{label}: loss {record.final_loss:.10g} after {record.n_iter} it, "
                f"{record.total_seconds:.3f} s ({record.ms_per_step:.2f} ms/step)"
            )
    if peers and backend == "numpy":
        for peer in PEERS.get(name, []):
            try:
                for record in peer(problem, warm_up=size == "paper"):
                    out["runs"].append(record)
                    say(
                        f"{name} peer {record.method}: loss {record.final_loss:.10g}, "
                        f"{record.total_seconds:.3f} s"
                    )
            except NotRunnableError as exc:
                out["skipped"][peer.__name__] = str(exc)
    if floor and (problem.data is not None or problem.kind == "vi"):
        out["floor"] = measure_floor(problem, backend, device)
    wants_jit = name in jit if isinstance(jit, list | tuple | set | frozenset) else bool(jit)
    if wants_jit and problem.kind == "mle" and hasattr(problem.distribution, "surrogate_map"):
        say(f"{name}: timing jit-compiled JAX SNGD steps")
        out["jit"] = jax_step_timing(problem)
    out["summary"] = summarize(out, name)
    return out


def summarize(problem_result: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
    """The summary of one problem: best loss, and one row per method (its best step size).

    Parameters
    ----------
    problem_result : mapping
        What :func:`run_problem` returns (``runs`` as :class:`RunRecord` or dicts).
    name : str, optional
        Problem name (chooses the tolerances, :data:`TOLERANCES`).

    Returns
    -------
    dict
        ``best_loss``, ``tolerances``, ``rows`` (method, step_size, iterations_to / seconds_to
        per tolerance, final_loss, final_heldout_loss, n_iter, ms_per_step (evaluations
        included), median_ms_per_step, first_call_seconds, total_seconds, status,
        step_over_floor (the median step over the measured floor), kind), ``tuning``
        (method -> list of (step size, final loss)).
    """
    name = name or problem_result.get("name", "")
    runs = [
        r if isinstance(r, RunRecord) else RunRecord(**_record_fields(r))
        for r in problem_result.get("runs", [])
    ]
    tolerances = TOLERANCES.get(str(name), DEFAULT_TOLERANCES)
    bests = [r.best_loss for r in runs if math.isfinite(r.best_loss)]
    best = min(bests) if bests else math.nan
    floor_ms = (problem_result.get("floor") or {}).get("floor_ms")
    chosen: dict[str, RunRecord] = {}
    tuning: dict[str, list[dict[str, Any]]] = {}
    for record in runs:
        tuning.setdefault(record.method, []).append(
            {"step_size": record.step_size, "final_loss": record.final_loss}
        )
        current = chosen.get(record.method)
        score = record.final_loss if math.isfinite(record.final_loss) else math.inf
        if current is None or score < (
            current.final_loss if math.isfinite(current.final_loss) else math.inf
        ):
            chosen[record.method] = record
    rows = []
    for method, record in chosen.items():
        row: dict[str, Any] = {
            "method": method,
            "kind": record.kind,
            "step_size": record.step_size,
            "final_loss": record.final_loss,
            "final_heldout_loss": record.final_heldout_loss,
            "n_iter": record.n_iter,
            "ms_per_step": record.ms_per_step,
            "median_ms_per_step": record.median_ms_per_step,
            "first_call_seconds": record.first_call_seconds,
            "total_seconds": record.total_seconds,
            "status": record.status,
            "iterations_to": {},
            "seconds_to": {},
        }
        for rel in tolerances:
            key = f"{rel:g}"
            if record.kind == "peer":
                reached = math.isfinite(record.final_loss) and (
                    record.final_loss - best <= rel * abs(best)
                )
                # Peers without an iteration count (n_iter 0) report seconds only.
                iterations = record.n_iter if reached and record.n_iter > 0 else None
                seconds = record.total_seconds if reached else None
            else:
                iterations, seconds = iterations_to_tolerance(record.loss, record.time, best, rel)
            row["iterations_to"][key] = iterations
            row["seconds_to"][key] = seconds
        # The step alone (median iteration), not the periodic evaluations of minibatch fits.
        step_ms = record.median_ms_per_step
        if not math.isfinite(step_ms):
            step_ms = record.ms_per_step
        ratio = step_ms / floor_ms if floor_ms and record.kind == "method" else None
        row["step_over_floor"] = ratio
        rows.append(row)
    return {"best_loss": best, "tolerances": list(tolerances), "rows": rows, "tuning": tuning}


def _record_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(RunRecord)}
    fields = {k: v for k, v in data.items() if k in names}
    for key in ("loss", "time", "heldout_loss"):
        fields[key] = [math.nan if v is None else v for v in fields.get(key, [])]
    for key in ("final_loss", "total_seconds"):
        if fields.get(key) is None:
            fields[key] = math.nan
    return fields


def _git_commit() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(dirty)}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict[str, Any]:
    """Return the machine, library versions and git commit of this run.

    Returns
    -------
    dict
        ``cpu``, ``cores`` (logical), ``cores_available`` (this process's affinity),
        ``load_average`` (1, 5, 15 minutes: other work sharing the machine), ``os``,
        ``python``, ``versions`` (package -> version or None), ``git`` (``commit``,
        ``dirty``), ``blas_threads`` (the ``OPENBLAS/MKL/OMP_NUM_THREADS`` settings, None
        where unset).
    """
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:
        available = os.cpu_count() or 0
    versions: dict[str, str | None] = {}
    for package in (
        "surrogate_natgrad",
        "numpy",
        "scipy",
        "autograd",
        "torch",
        "jax",
        "jaxlib",
        "array-api-compat",
        "statsmodels",
        "matplotlib",
    ):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_available": available,
        "load_average": _load_average(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git": _git_commit(),
        # Thread-count settings of the BLAS libraries (unset: the library's default, one
        # thread per core): on small virtual machines they change step times severalfold.
        "blas_threads": {
            name: os.environ.get(name)
            for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
        },
    }


def run_benchmarks(
    problems: Sequence[str],
    *,
    size: str = "quick",
    backend: str = "numpy",
    methods: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    peers: bool = True,
    floor: bool = True,
    jit: bool | Sequence[str] = False,
    plots: bool = True,
    device: str | None = None,
    log: Callable[[str], Any] | None = None,
    max_iter: int | None = None,
) -> dict[str, Any]:
    """Run the benchmark on ``problems`` and write ``results.json`` and plots to ``out_dir``.

    Parameters
    ----------
    problems : sequence of str
        Problem names, or ``"all"``.
    size : {"quick", "paper"}, optional
        Problem size.
    backend : {"numpy", "torch", "jax"}, optional
        Array backend.
    methods : sequence of str, optional
        Methods (default: every method of each problem's kind).
    out_dir : str or pathlib.Path, optional
        Output directory (created); nothing is written when None.
    seed : int, optional
        Seed.
    peers, floor, plots : bool, optional
        Run the peers, measure the floor, draw PNG plots.
    jit : bool or sequence of str, optional
        Time jitted JAX SNGD steps (on every problem, or on those named).
    device : str, optional
        torch device.
    log : callable, optional
        Receives progress lines.
    max_iter : int, optional
        Iteration budget per run (default: the problem's; capped at
        :data:`QUICK_MAX_ITER` for ``size="quick"``).

    Returns
    -------
    dict
        JSON-ready results: ``schema_version``, ``created``, ``machine``, ``settings``,
        ``problems`` (name -> result with ``runs`` as dicts, ``summary``, ``plots``).
    """
    from surrogate_natgrad.experiments import SIZES

    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    names = _expand_names(problems)
    results: dict[str, Any] = {
        "schema_version": _SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {
            "problems": names,
            "size": size,
            "backend": backend,
            "seed": seed,
            "methods": list(methods) if methods else None,
            "device": device,
            "max_iter": max_iter,
            "jit": jit if isinstance(jit, bool) else list(jit),
            "step_size_grids": STEP_SIZE_GRIDS[size],
            "quick_max_iter": QUICK_MAX_ITER if size == "quick" else None,
        },
        "problems": {},
    }
    directory = Path(out_dir) if out_dir is not None else None
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for name in names:
        result = run_problem(
            name,
            size=size,
            backend=backend,
            methods=methods,
            seed=seed,
            peers=peers,
            floor=floor,
            jit=jit,
            device=device,
            log=log,
            max_iter=max_iter,
        )
        result["runs"] = [r.to_dict() for r in result["runs"]]
        if plots and directory is not None and result["runs"]:
            result["plots"] = [p.name for p in plot_problem(result, directory)]
        results["problems"][name] = _clean(result)
    results["total_seconds"] = time.perf_counter() - start
    results["machine"]["load_average_at_end"] = _load_average()
    if directory is not None:
        (directory / "results.json").write_text(json.dumps(_clean(results), indent=1))
    return results


# ----------------------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------------------


def plot_problem(problem_result: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Draw ``<name>_loss.png``: excess loss against iteration and against seconds.

    One line per method (its best step size, as in the summary), the peers as points at
    their final loss and time; a third panel shows the held-out loss when recorded.

    Parameters
    ----------
    problem_result : mapping
        A problem's entry of :func:`run_benchmarks` (``runs`` as dicts) or of
        :func:`run_problem`.
    out_dir : str or pathlib.Path
        Directory of the PNG.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name = str(problem_result["name"])
    summary = problem_result.get("summary") or summarize(problem_result, name)
    best = summary["best_loss"]
    chosen = {(row["method"], row["step_size"]) for row in summary["rows"]}
    runs = [r.to_dict() if isinstance(r, RunRecord) else r for r in problem_result["runs"]]
    has_heldout = any(r.get("heldout_loss") for r in runs if r["kind"] == "method")
    fig, axes = plt.subplots(1, 3 if has_heldout else 2, figsize=(15 if has_heldout else 10, 4))
    finite_best = best is not None and math.isfinite(best)
    floor_value = max(1e-14, 1e-15 * abs(best)) if finite_best else 1e-14
    for run in runs:
        if (run["method"], run["step_size"]) not in chosen:
            continue
        label = (
            run["method"]
            if run["step_size"] is None
            else (f"{run['method']} (step {run['step_size']:g})")
        )
        if run["kind"] == "peer":
            if run["final_loss"] is None:
                continue
            excess = max(run["final_loss"] - best, floor_value)
            axes[0].plot([run["n_iter"]], [excess], "x", markersize=9, label=label)
            axes[1].plot([run["total_seconds"]], [excess], "x", markersize=9, label=label)
            continue
        loss = np.asarray([math.nan if v is None else v for v in run["loss"]], dtype=float)
        seconds = np.asarray([math.nan if v is None else v for v in run["time"]], dtype=float)
        keep = np.isfinite(loss)
        excess = np.maximum(loss[keep] - best, floor_value)
        axes[0].plot(np.arange(loss.shape[0])[keep], excess, label=label)
        # Entry 0 is at the set-up time (> 0), so a log time axis keeps every point.
        positive = keep & (seconds > 0)
        axes[1].plot(seconds[positive], np.maximum(loss[positive] - best, floor_value), label=label)
        if has_heldout and run.get("heldout_loss"):
            held = np.asarray([math.nan if v is None else v for v in run["heldout_loss"]])
            axes[2].plot(run["heldout_iterations"], held, label=label)
    for axis, xlabel in zip(axes[:2], ("iteration", "seconds (after warm-up)"), strict=True):
        axis.set_xlabel(xlabel)
        axis.set_ylabel("loss − best loss")
        axis.set_yscale("log")
        axis.grid(alpha=0.3)
    axes[1].set_xscale("log")
    if has_heldout:
        axes[2].set_xlabel("iteration")
        axes[2].set_ylabel("held-out loss")
        axes[2].grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{name}: {problem_result.get('description', '')}", fontsize=10)
    fig.tight_layout()
    path = Path(out_dir) / f"{name}_loss.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [path]


def _fmt(value: Any, spec: str = ".4g", missing: str = "—") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    if isinstance(value, int):
        return str(value)
    return format(value, spec)


def format_summary_table(problem_result: Mapping[str, Any]) -> str:
    """Render a problem's summary as a Markdown table.

    Parameters
    ----------
    problem_result : mapping
        A problem's entry of :func:`run_benchmarks` (with ``summary``).

    Returns
    -------
    str
        The table (columns: method, step size, iterations and seconds to each tolerance,
        final loss, held-out loss, ms/step, step/floor, first call s, status).
    """
    summary = problem_result["summary"]
    tolerances = [f"{t:g}" for t in summary["tolerances"]]
    header = ["method", "step size"]
    for tol in tolerances:
        header += [f"it to {tol}", f"s to {tol}"]
    header += ["final loss", "held-out", "iters", "ms/step", "step/floor", "first call s", "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary["rows"]:
        cells = [row["method"], "default" if row["step_size"] is None else f"{row['step_size']:g}"]
        for tol in tolerances:
            iterations = row["iterations_to"].get(tol)
            seconds = row["seconds_to"].get(tol)
            # A peer without an iteration count that reached tol shows its seconds only.
            shown = "—" if seconds is not None else "never"
            cells += [shown if iterations is None else str(iterations), _fmt(seconds, ".3g")]
        cells += [
            _fmt(row["final_loss"], ".10g"),
            _fmt(row["final_heldout_loss"], ".8g"),
            str(row["n_iter"]),
            _fmt(row["ms_per_step"], ".3g"),
            _fmt(row["step_over_floor"], ".3g"),
            _fmt(row["first_call_seconds"], ".3g"),
            row["status"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _tuning_table(problem_result: Mapping[str, Any]) -> str:
    tuning = problem_result["summary"]["tuning"]
    lines = ["| method | step size → final loss |", "|---|---|"]
    for method, entries in tuning.items():
        if len(entries) < 2:
            continue
        shown = ", ".join(
            f"{'default' if e['step_size'] is None else format(e['step_size'], 'g')} → "
            f"{_fmt(e['final_loss'], '.10g')}"
            for e in entries
        )
        lines.append(f"| {method} | {shown} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def _jit_table(results: Mapping[str, Any]) -> str:
    rows = []
    for name, result in results["problems"].items():
        jit = result.get("jit")
        if not jit:
            continue
        if "error" in jit and "jit_ms" not in jit:
            rows.append(
                f"| {name} | {jit.get('line_search')} | — | — | — | — | — | — | — | — | "
                f"failed: {jit['error']} |"
            )
            continue
        search = f"{jit.get('line_search') or 'fixed'}, step {jit.get('step_size')}"
        floor_ms = (result.get("floor") or {}).get("floor_ms")
        jit_ms = jit.get("jit_ms")
        ratio = jit_ms / floor_ms if floor_ms and jit_ms is not None else None
        rows.append(
            f"| {name} | {search} | {_fmt(jit.get('numpy_eager_ms'), '.3g')} | "
            f"{_fmt(jit.get('eager_ms'), '.3g')} | {_fmt(jit.get('jit_compile_s'), '.3g')} + "
            f"{_fmt(jit.get('jit_second_call_s'), '.3g')} | "
            f"{_fmt(jit.get('jit_ms'), '.3g')} | {_fmt(jit.get('block_compile_s'), '.3g')} | "
            f"{_fmt(jit.get('block_ms'), '.3g')} | {_fmt(floor_ms, '.3g')} | "
            f"{_fmt(ratio, '.3g')} | {jit.get('error', '')} |"
        )
    if not rows:
        return ""
    header = (
        "| problem | SNGD step | NumPy eager ms/step | JAX eager ms/step | "
        "jit compile s (1st + 2nd call) | jit ms/step | block compile s | "
        "jit block ms/step | floor ms | jit / floor | note |\n" + "|---" * 11 + "|"
    )
    return header + "\n" + "\n".join(rows)


def _commit_label(run: dict[str, Any]) -> str:
    """``run``'s commit, shortened, marked "(dirty)" when the tree had changes."""
    git = run.get("git") or {}
    return str(git.get("commit", "?"))[:10] + (" (dirty)" if git.get("dirty") else "")


def _where(run: dict[str, Any]) -> str:
    """Where ``run`` ran, e.g. ``", backend torch on cuda"``; empty for NumPy on the CPU.

    BLAS thread settings, when the run had any, are named too (``", OPENBLAS_NUM_THREADS=1"``).
    """
    backend, device = run.get("backend"), run.get("device")
    threads = "".join(
        f", {name}={value}" for name, value in (run.get("blas_threads") or {}).items() if value
    )
    if backend in (None, "numpy") and device is None:
        return threads
    return f", backend {backend}" + (f" on {device}" if device else "") + threads


def write_markdown(
    results: Mapping[str, Any],
    path: str | Path,
    plot_dir: str | None = None,
    preamble: str = "",
    notes: Mapping[str, str] | None = None,
    command: str = "",
) -> Path:
    """Write the results as a Markdown page (tables, plots, machine, versions, commit).

    Parameters
    ----------
    results : mapping
        What :func:`run_benchmarks` returns.
    path : str or pathlib.Path
        The Markdown file.
    plot_dir : str, optional
        Path of the plot directory relative to the Markdown file (no plots when None).
    preamble : str, optional
        Text after the title (e.g. the target table and how the targets fare).
    notes : mapping of str to str, optional
        Problem name to a paragraph shown under its table.
    command : str, optional
        The command that regenerates the page.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    machine = results["machine"]
    settings = results["settings"]
    lines = ["# Benchmarks", ""]
    if command:
        lines += [f"Regenerate this page with `{command}`.", ""]
    if preamble:
        lines += [preamble.strip(), ""]
    git = machine.get("git", {})
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    lines += [
        "## Machine and settings",
        "",
        f"- CPU: {machine['cpu']} ({machine['cores']} logical cores, "
        f"{machine['cores_available']} available to the run)",
        f"- Load average (1/5/15 min) at start {machine.get('load_average')}, at end "
        f"{machine.get('load_average_at_end')}: other jobs shared the cores, so absolute "
        "times are noisy upper bounds; iteration counts are exact.",
        f"- OS: {machine['os']}; Python {machine['python']}",
        f"- Versions: {versions}",
        f"- Commit: `{git.get('commit')}`"
        + (" (with uncommitted changes)" if git.get("dirty") else ""),
        f"- Run: {results['created']}, size `{settings['size']}`, backend `{settings['backend']}`, "
        f"seed {settings['seed']}, total {results.get('total_seconds', math.nan):.0f} s",
        "- Times: wall clock after a warm-up run of two iterations (the warm-up's time is the "
        "'first call s' column); 'ms/step' is the mean over the timed run, including the "
        "evaluations minibatch fits make every few steps; 'step/floor' divides the median "
        "iteration (the step alone) by the measured per-step floor. Iterations/seconds "
        "'to tol' are the first iteration whose loss is within tol·|best| of the best loss "
        "any run (or peer) found.",
        "",
    ]
    for name, result in results["problems"].items():
        lines += [f"## {name}", ""]
        if "skipped_problem" in result:
            lines += [f"Skipped: {result['skipped_problem']}", ""]
            continue
        description = result.get("description", "")
        lines += [f"{description}; {result.get('max_iter')} iterations per run.", ""]
        run = result.get("run")
        if run:
            lines += [
                f"Run {run.get('created')}, commit `{_commit_label(run)}`{_where(run)}, load "
                f"average at start {run.get('load_average')}.",
                "",
            ]
        rerun = result.get("rerun")
        if rerun:
            lines += [
                f"Methods {', '.join(rerun.get('methods') or [])} re-run {rerun.get('created')} "
                f"at commit `{_commit_label(rerun)}`{_where(rerun)} (the other runs as above).",
                "",
            ]
        if not result.get("runs"):
            lines += ["No method could run this problem yet:", ""]
            lines += [f"- {m}: {why}" for m, why in result.get("skipped", {}).items()]
            lines.append("")
            continue
        summary = result["summary"]
        lines += [f"Best loss found: {_fmt(summary['best_loss'], '.12g')}", ""]
        lines += [format_summary_table(result), ""]
        tuning = _tuning_table(result)
        if tuning:
            lines += [
                "Step-size grid (best per method, by final loss, is summarised above):",
                "",
                tuning,
                "",
            ]
        floor = result.get("floor") or {}
        if "floor_ms" in floor:
            lines += [
                f"Per-step floor: {floor['floor_ms']:.4g} ms ({floor['what']}: data pass "
                f"{floor['data_pass_ms']:.4g} ms, linear algebra {floor['linalg_ms']:.4g} ms; "
                "minimum over repeats).",
                "",
            ]
        elif floor:
            lines += [f"Per-step floor not measured: {floor.get('error')}", ""]
        if result.get("skipped"):
            lines += [f"- skipped {m}: {why}" for m, why in result["skipped"].items()]
            lines.append("")
        if notes and name in notes:
            lines += [notes[name].strip(), ""]
        if plot_dir is not None:
            for plot in result.get("plots", []):
                lines += [f"![{name}]({plot_dir}/{plot})", ""]
    jit = _jit_table(results)
    if jit:
        lines += ["## JAX: jit-compiled SNGD steps", "", jit, ""]
        if notes and "JIT" in notes:
            lines += [notes["JIT"].strip(), ""]
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines).rstrip() + "\n")
    return target
