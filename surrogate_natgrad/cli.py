"""Command-line interface: ``surrogate-natgrad`` / ``python -m surrogate_natgrad``.

Sub-commands:

``fit FAMILY [DATA]``
    Fit ``nbinom`` or ``nbinom-mixture`` (``--components K``) to a column of counts in a
    ``.csv``, ``.txt`` or ``.npy`` file, or to a built-in data set when DATA is omitted.
``demo``
    On experiment E1's data, fit a negative binomial by SNGD and by each baseline (GD, BFGS,
    Monte Carlo Fisher NGD, Adam); print a table and write a convergence plot.
``info``
    Installed array/autodiff backends, devices and versions.
``bench PROBLEM [PROBLEM ...]``
    Run the benchmark harness (:mod:`surrogate_natgrad.benchmarking`) on experiments
    (``E1``, ``E2``, ..., ``RANDHIE``, ``SN1`` or ``all``): every method with a step-size
    grid for the baselines and the reference implementations; print a summary table per
    problem and write ``results.json`` and PNG plots into ``--out``.

User errors (missing file, non-numeric column, negative counts, ...) print one line to
stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import importlib.util
import json
import math
import platform
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from surrogate_natgrad.errors import SurrogateNatgradError

__all__ = ["main"]

PROG = "surrogate-natgrad"
FAMILIES = ("nbinom", "nbinom-mixture")
METHODS = ("sngd", "gd", "adam", "bfgs", "ngd")


class UsageError(Exception):
    """A user error reported as one line on stderr with exit status 2."""


# ----------------------------------------------------------------------------------------
# Reading data
# ----------------------------------------------------------------------------------------


def _parse_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _read_table(path: Path, column: str | None) -> np.ndarray:
    """Read one column of numbers from a CSV (or whitespace/comma separated text) file."""
    text = path.read_text()
    if path.suffix.lower() == ".csv":
        rows = [row for row in csv.reader(text.splitlines()) if row and any(c.strip() for c in row)]
    else:
        rows = [line.replace(",", " ").split() for line in text.splitlines() if line.strip()]
    if not rows:
        raise UsageError(f"{path} contains no data")
    first = [cell.strip() for cell in rows[0]]
    has_header = any(_parse_number(cell) is None for cell in first)
    header = first if has_header else None
    body = rows[1:] if has_header else rows
    if column is None:
        index = 0
    elif header is not None and column in header:
        index = header.index(column)
    elif column.lstrip("-").isdigit():
        index = int(column)
    else:
        names = ", ".join(header) if header else "none (the file has no header)"
        raise UsageError(f"column {column!r} not found in {path}; columns: {names}")
    width = len(first)
    if not -width <= index < width:
        raise UsageError(f"column index {index} out of range: {path} has {width} column(s)")
    label = header[index] if header else f"#{index}"
    values = []
    for row_number, row in enumerate(body, start=2 if has_header else 1):
        if abs(index) > len(row) - (0 if index < 0 else 1):
            raise UsageError(f"row {row_number} of {path} has no column {label!r}")
        cell = row[index].strip()
        value = _parse_number(cell)
        if value is None:
            raise UsageError(
                f"column {label!r} of {path} is not numeric: {cell!r} at row {row_number}"
            )
        values.append(value)
    return np.asarray(values, dtype=np.float64)


def read_counts(path_text: str, column: str | None = None) -> np.ndarray:
    """Read counts from a ``.csv``, ``.txt`` or ``.npy`` file.

    Parameters
    ----------
    path_text : str
        The file.
    column : str, optional
        For tables: a column name (from the header) or a zero-based index; the first column
        by default.

    Returns
    -------
    numpy.ndarray
        The values (checked as counts later by :func:`surrogate_natgrad.fitting.fit`).

    Raises
    ------
    UsageError
        For a missing or unreadable file or a non-numeric column.
    """
    path = Path(path_text)
    if not path.exists():
        raise UsageError(f"data file not found: {path}")
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a data file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise UsageError(f"cannot read {path} as a .npy array: {exc}") from exc
        if values.ndim == 2 and column is not None:
            values = values[:, int(column)]
        if values.dtype.kind not in "iuf":
            raise UsageError(f"{path} does not hold numbers (dtype {values.dtype})")
        return np.asarray(values)
    if suffix in (".csv", ".txt", ".dat", ""):
        try:
            return _read_table(path, column)
        except UnicodeDecodeError as exc:
            raise UsageError(f"cannot read {path} as text: {exc}") from exc
    raise UsageError(f"unsupported file type {suffix!r}: use .csv, .txt or .npy")


# ----------------------------------------------------------------------------------------
# Plotting
# ----------------------------------------------------------------------------------------


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise UsageError("--plot needs matplotlib (pip install matplotlib)") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_histories(
    histories: dict[str, Any], path: Path, reference: float | None = None, title: str = ""
) -> None:
    """Plot loss against iteration and against seconds for one or more fits.

    Parameters
    ----------
    histories : dict of str to FitHistory
        Label to history.
    path : pathlib.Path
        Output image (PNG).
    reference : float, optional
        When given, plot ``loss - reference`` on a log scale (excess NLL).
    title : str, optional
        Figure title.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label, history in histories.items():
        loss = np.asarray(history.loss, dtype=float)
        keep = np.isfinite(loss)
        y = loss[keep] if reference is None else np.maximum(loss[keep] - reference, 1e-14)
        axes[0].plot(np.arange(loss.shape[0])[keep], y, label=label)
        axes[1].plot(np.asarray(history.time)[keep], y, label=label)
    ylabel = "NLL (mean per observation)" if reference is None else "NLL − best NLL"
    for axis, xlabel in zip(axes, ("iteration", "seconds"), strict=True):
        axis.set_xlabel(xlabel)
        axis.set_ylabel(ylabel)
        if reference is not None:
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
    axes[0].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as exc:
        raise UsageError(f"cannot write the plot to {path}: {exc}") from exc
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------------------
# Sub-commands
# ----------------------------------------------------------------------------------------


def _distribution_class(family: str) -> Any:
    from surrogate_natgrad.distributions import NegativeBinomial, NegativeBinomialMixture

    return NegativeBinomial if family == "nbinom" else NegativeBinomialMixture


def _cmd_fit(args: argparse.Namespace) -> int:
    from surrogate_natgrad import datasets
    from surrogate_natgrad.fitting import fit

    if args.family == "nbinom-mixture" and args.components is None:
        raise UsageError("nbinom-mixture needs --components K")
    if args.family == "nbinom" and args.components not in (None, 1):
        raise UsageError("--components applies to nbinom-mixture only")
    if args.data is None:
        data = datasets.load(args.dataset)
        source = f"built-in data set {args.dataset!r}"
    else:
        data = read_counts(args.data, args.column)
        source = args.data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(
            _distribution_class(args.family),
            data,
            method=args.method,
            max_iter=args.max_iter,
            tol=args.tol,
            seed=args.seed,
            n_components=args.components,
            backend=None,
        )
    if args.json:
        summary = result.to_dict()
        summary["data"] = source
        summary["n_observations"] = int(np.asarray(data).shape[0])
        print(json.dumps(summary, indent=2))
    else:
        print(f"data: {source} ({int(np.asarray(data).shape[0])} observations)")
        print(result.summary())
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    if args.plot:
        plot_histories(
            {args.method: result.history}, Path(args.plot), title=f"{args.family} on {source}"
        )
        if not args.json:
            print(f"plot written to {args.plot}")
    return 0


def _iterations_to(history: Any, target: float, rel: float) -> tuple[int | None, float | None]:
    """First iteration (and its time) at which the loss is within ``rel`` of ``target``."""
    loss = np.asarray(history.loss, dtype=float)
    close = np.nonzero(np.isfinite(loss) & (loss - target <= rel * abs(target)))[0]
    if close.size == 0:
        return None, None
    first = int(close[0])
    return first, float(history.time[first])


def run_demo(
    seed: int = 0, max_iter: int = 100, methods: Sequence[str] = METHODS
) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
    """Fit E1's negative binomial by each method from the same start.

    Parameters
    ----------
    seed : int
        Seed of the E1 problem (data and start).
    max_iter : int
        Iteration budget of every method.
    methods : sequence of str
        Methods to run.

    Returns
    -------
    rows : list of dict
        Per method: ``method``, ``iterations`` (to the best NLL to 1e-6 relative, None if
        never), ``seconds`` (to that point), ``total_seconds``, ``final_nll``, ``converged``.
    histories : dict
        Method to :class:`~surrogate_natgrad.fitting.FitHistory`.
    best : float
        The lowest NLL any method reached.
    """
    from surrogate_natgrad import experiments
    from surrogate_natgrad.fitting import fit

    problem = experiments.e1(seed)
    results = {}
    for method in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Warm-up (imports, first-call set-up) so the timings compare the methods only.
            fit(problem.distribution, problem.data, method=method, init=problem.init,
                max_iter=1, seed=seed)
            results[method] = fit(
                problem.distribution,
                problem.data,
                method=method,
                init=problem.init,
                max_iter=max_iter,
                seed=seed,
            )
    best = min(float(np.nanmin(r.history.loss)) for r in results.values())
    rows = []
    for method, result in results.items():
        iterations, seconds = _iterations_to(result.history, best, 1e-6)
        rows.append(
            {
                "method": method,
                "iterations": iterations,
                "seconds": seconds,
                "total_seconds": result.time,
                "final_nll": result.loss,
                "converged": result.converged,
            }
        )
    return rows, {m: r.history for m, r in results.items()}, best


def _cmd_demo(args: argparse.Namespace) -> int:
    methods = args.methods.split(",") if args.methods else list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UsageError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    out_dir = Path(args.out)
    if not out_dir.is_dir():
        raise UsageError(f"--out must be an existing directory: {out_dir}")
    rows, histories, best = run_demo(args.seed, args.max_iter, methods)
    if args.json:
        print(json.dumps({"best_nll": best, "rows": rows}, indent=2))
    else:
        print(f"E1: negative binomial MLE, N = 1000 (seed {args.seed}); best NLL {best:.10f}")
        print(f"{'method':<8} {'iters to 1e-6':>14} {'seconds':>9} {'final NLL':>16}")
        for row in rows:
            iters = "never" if row["iterations"] is None else str(row["iterations"])
            secs = "-" if row["seconds"] is None else f"{row['seconds']:.3f}"
            print(f"{row['method']:<8} {iters:>14} {secs:>9} {row['final_nll']:>16.10f}")
    if not args.no_plot:
        path = out_dir / "sngd_demo.png"
        plot_histories(histories, path, reference=best, title="E1: negative binomial MLE")
        if not args.json:
            print(f"plot written to {path}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from surrogate_natgrad import benchmarking

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    if methods is not None:
        known = {m for group in benchmarking.METHODS.values() for m in group}
        unknown = [m for m in methods if m not in known]
        if unknown:
            raise UsageError(f"unknown method(s) {unknown}; choose from {', '.join(sorted(known))}")
    try:
        names = benchmarking._expand_names(args.problems)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the output directory {out_dir}: {exc}") from exc

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    results = benchmarking.run_benchmarks(
        names,
        size=args.size,
        backend=args.backend,
        methods=methods,
        out_dir=out_dir,
        seed=args.seed,
        peers=not args.no_peers,
        floor=not args.no_floor,
        jit=args.jit,
        plots=not args.no_plot,
        device=args.device,
        log=log,
        max_iter=args.max_iter,
    )
    for name, result in results["problems"].items():
        print(f"\n## {name}: {result.get('description', '')}")
        if "skipped_problem" in result:
            print(f"skipped: {result['skipped_problem']}")
            continue
        if not result.get("runs"):
            for method, why in result.get("skipped", {}).items():
                print(f"skipped {method}: {why}")
            continue
        print(f"best loss {result['summary']['best_loss']:.12g}")
        print(benchmarking.format_summary_table(result))
        for method, why in result.get("skipped", {}).items():
            print(f"skipped {method}: {why}")
    if args.markdown:
        benchmarking.write_markdown(results, args.markdown, plot_dir=None)
    print(f"\nresults written to {out_dir / 'results.json'} ({results['total_seconds']:.1f} s)")
    return 0


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def backend_info() -> dict[str, Any]:
    """Return versions of the installed backends and the devices they see.

    Returns
    -------
    dict
        ``python``, ``surrogate_natgrad`` and, per backend (numpy, scipy, autograd, torch,
        jax, cupy, array-api-strict), its version (None when not installed) and devices.
    """
    from surrogate_natgrad import __version__

    info: dict[str, Any] = {
        "surrogate_natgrad": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "backends": {},
    }
    for name in ("numpy", "scipy", "autograd", "array-api-compat", "array-api-strict"):
        info["backends"][name] = {"version": _version(name), "devices": ["cpu"]}
    if importlib.util.find_spec("torch") is not None:
        try:
            import torch

            devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
            info["backends"]["torch"] = {"version": torch.__version__, "devices": devices}
        except Exception as exc:
            info["backends"]["torch"] = {"version": None, "error": str(exc)}
    else:
        info["backends"]["torch"] = {"version": None, "devices": []}
    if importlib.util.find_spec("jax") is not None:
        try:
            import jax

            jax_devices = [str(d) for d in jax.devices()]
            info["backends"]["jax"] = {"version": jax.__version__, "devices": jax_devices}
        except Exception as exc:
            info["backends"]["jax"] = {"version": _version("jax"), "error": str(exc)}
    else:
        info["backends"]["jax"] = {"version": None, "devices": []}
    if importlib.util.find_spec("cupy") is not None:
        try:
            import cupy

            count = cupy.cuda.runtime.getDeviceCount()
            info["backends"]["cupy"] = {
                "version": cupy.__version__,
                "devices": [f"cuda:{i}" for i in range(count)],
            }
        except Exception as exc:
            info["backends"]["cupy"] = {"version": _version("cupy"), "error": str(exc)}
    else:
        info["backends"]["cupy"] = {"version": None, "devices": []}
    for extra in ("matplotlib", "tqdm", "statsmodels"):
        info.setdefault("extras", {})[extra] = _version(extra)
    return info


def _cmd_info(args: argparse.Namespace) -> int:
    info = backend_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"surrogate_natgrad {info['surrogate_natgrad']} on Python {info['python']}")
    print(f"platform: {info['platform']}")
    print("backends:")
    for name, entry in info["backends"].items():
        version = entry.get("version") or "not installed"
        extra = f" (error: {entry['error']})" if "error" in entry else ""
        devices = ", ".join(entry.get("devices", [])) if entry.get("version") else ""
        shown = f"  devices: {devices}" if devices else ""
        print(f"  {name:<18} {version}{shown}{extra}")
    print("optional extras:")
    for name, version in info["extras"].items():
        print(f"  {name:<18} {version or 'not installed'}")
    return 0


# ----------------------------------------------------------------------------------------
# Argument parsing
# ----------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors exit with status 2 and one line (argparse's way)."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``surrogate-natgrad``.

    Returns
    -------
    argparse.ArgumentParser
    """
    from surrogate_natgrad import datasets

    parser = _Parser(
        prog=PROG,
        description="Fit count distributions by surrogate natural gradient descent (SNGD).",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    fit_parser = sub.add_parser(
        "fit",
        help="fit a distribution to counts",
        description="Fit a negative binomial (mixture) to a column of counts.",
    )
    fit_parser.add_argument("family", choices=FAMILIES, help="distribution family")
    fit_parser.add_argument(
        "data", nargs="?", default=None,
        help=".csv, .txt or .npy file of counts (default: a built-in data set, see --dataset)",
    )
    fit_parser.add_argument("--column", default=None, help="CSV column name or 0-based index")
    fit_parser.add_argument(
        "--dataset", default="randhie", choices=datasets.available(),
        help="built-in data set used when DATA is omitted (default: randhie)",
    )
    fit_parser.add_argument("--components", type=_positive_int, default=None,
                            help="number of mixture components K (nbinom-mixture)")
    fit_parser.add_argument("--method", choices=METHODS, default="sngd",
                            help="optimisation method (default: sngd)")
    fit_parser.add_argument("--max-iter", type=_positive_int, default=None,
                            help="largest number of iterations")
    fit_parser.add_argument("--tol", type=_nonnegative_float, default=None,
                            help="relative loss tolerance (default from the dtype)")
    fit_parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    fit_parser.add_argument("--json", action="store_true", help="print the result as JSON")
    fit_parser.add_argument("--plot", metavar="FILE.png", default=None,
                            help="write loss vs iteration and vs seconds to FILE.png")
    fit_parser.set_defaults(handler=_cmd_fit)

    demo_parser = sub.add_parser(
        "demo",
        help="compare SNGD with the baselines on experiment E1",
        description="Fit E1's negative binomial by SNGD, GD, BFGS, MC-Fisher NGD and Adam.",
    )
    demo_parser.add_argument("--out", default=".", help="directory of sngd_demo.png (default .)")
    demo_parser.add_argument("--seed", type=int, default=0, help="seed of E1 (default 0)")
    demo_parser.add_argument("--max-iter", type=_positive_int, default=100,
                             help="iteration budget per method (default 100)")
    demo_parser.add_argument("--methods", default=None,
                             help=f"comma-separated subset of {','.join(METHODS)}")
    demo_parser.add_argument("--no-plot", action="store_true", help="do not write the plot")
    demo_parser.add_argument("--json", action="store_true", help="print the table as JSON")
    demo_parser.set_defaults(handler=_cmd_demo)

    bench_parser = sub.add_parser(
        "bench",
        help="benchmark SNGD against the baselines and reference implementations",
        description="Run the benchmark harness on experiments E1, E2, ... (or 'all').",
    )
    bench_parser.add_argument("problems", nargs="+", metavar="PROBLEM",
                              help="E1, E2, ..., RANDHIE, SN1, or all")
    bench_parser.add_argument("--size", choices=("quick", "paper"), default="quick",
                              help="problem size (default quick)")
    bench_parser.add_argument("--backend", choices=("numpy", "torch", "jax"), default="numpy",
                              help="array backend (default numpy)")
    bench_parser.add_argument("--device", default=None, help="torch device, e.g. cuda")
    bench_parser.add_argument("--methods", default=None,
                              help="comma-separated methods (default: all of each problem)")
    bench_parser.add_argument("--out", default="bench-results",
                              help="output directory (default bench-results)")
    bench_parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    bench_parser.add_argument("--max-iter", type=_positive_int, default=None,
                              help="iterations per run (default: the problem's budget)")
    bench_parser.add_argument("--jit", action="store_true",
                              help="also time jit-compiled JAX SNGD steps")
    bench_parser.add_argument("--no-peers", action="store_true",
                              help="skip statsmodels/scipy reference fits")
    bench_parser.add_argument("--no-floor", action="store_true",
                              help="skip the per-step floor measurement")
    bench_parser.add_argument("--no-plot", action="store_true", help="do not write plots")
    bench_parser.add_argument("--markdown", metavar="FILE.md", default=None,
                              help="also write the tables as Markdown")
    bench_parser.add_argument("--quiet", action="store_true", help="no progress lines")
    bench_parser.set_defaults(handler=_cmd_bench)

    info_parser = sub.add_parser("info", help="installed backends, devices and versions")
    info_parser.add_argument("--json", action="store_true", help="print as JSON")
    info_parser.set_defaults(handler=_cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line interface.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (``sys.argv[1:]`` by default).

    Returns
    -------
    int
        Exit status: 0 on success, 2 for a usage or data error.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (UsageError, SurrogateNatgradError, ImportError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
