"""Scaling benchmark: chunked fits from disk, N = 10⁴ … 10⁸, and 1 vs 2 Dask workers.

Every measurement runs in a fresh subprocess (so that its peak resident memory,
``VmHWM``, is its own) on data in a ``.npy`` file under ``--tmp`` (default /tmp),
memory-mapped and read chunk by chunk; the files are deleted afterwards.

- ``nb``: negative binomial, the default chunked path: one pass reduces the counts to a
  histogram (distinct values and frequencies), then the fit runs on that. Reported: the
  seconds of the pass, the seconds per SNGD step, the iterations and the peak RSS.
- ``nb-per-chunk``: negative binomial without the histogram: every step sums per-chunk
  losses and gradients (3 steps, Armijo line search).
- ``skewnormal``: the univariate skew-normal (a continuous target), per-chunk objective
  (3 steps, Armijo line search).
- ``dask``: ``nb-per-chunk`` on a ``LocalCluster`` of 1 and of 2 single-threaded worker
  processes reading the file themselves.

Usage (from the repository root)::

    python benchmarks/scaling.py                       # the default sizes (about 15 min)
    python benchmarks/scaling.py --max-n 1e6 --dask-n 1e6   # a quick run

Writes ``docs/scaling/results.json``, ``docs/scaling/scaling.png`` and the table in
``docs/scaling.md`` (between the ``<!-- table -->`` markers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BLOCK = 10_000_000  # rows generated at a time when writing a data file


def write_counts(path: Path, n_obs: int, seed: int = 0) -> None:
    """Write ``n_obs`` NB(5, 1/11) counts (int64) to ``path`` block by block."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.int64, shape=(n_obs,))
    for start in range(0, n_obs, BLOCK):
        stop = min(n_obs, start + BLOCK)
        out[start:stop] = rng.negative_binomial(5, 1 / 11, size=stop - start)
    out.flush()
    del out


def write_skewnormal(path: Path, n_obs: int, seed: int = 0) -> None:
    """Write ``n_obs`` skew-normal(α=4, loc=1, scale=2) draws, shape (N, 1), to ``path``."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n_obs, 1))
    delta = 4 / np.sqrt(17)
    for start in range(0, n_obs, BLOCK):
        stop = min(n_obs, start + BLOCK)
        u0, u1 = rng.standard_normal((2, stop - start))
        out[start:stop, 0] = 1 + 2 * (delta * np.abs(u0) + np.sqrt(1 - delta**2) * u1)
    out.flush()
    del out


# ----------------------------------------------------------------------------------------
# One measurement (run in a subprocess)
# ----------------------------------------------------------------------------------------


def _peak_rss_mib() -> float:
    """This process's peak resident memory (``VmHWM``), in MiB.

    Not ``getrusage``'s ``ru_maxrss``: on Linux that survives ``fork`` + ``exec`` and
    would report the parent's peak (the parent writes the data files).
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")  # pragma: no cover - not Linux


def measure(config: dict[str, Any]) -> dict[str, Any]:
    """Fit one configuration and return its timings and peak memory."""
    import warnings

    from surrogate_natgrad import fit
    from surrogate_natgrad.chunked import ChunkedData, DaskExecutor

    kind, path = config["kind"], config["path"]
    warnings.simplefilter("ignore")
    client = cluster = None
    executor = None
    if kind == "dask":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=config["workers"],
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=50,
        )
        client = Client(cluster)
        executor = DaskExecutor(client)
    if kind == "skewnormal":
        from surrogate_natgrad.distributions.skew_normal import SkewNormal

        cls: Any = SkewNormal
    else:
        from surrogate_natgrad.distributions import NegativeBinomial

        cls = NegativeBinomial
    per_chunk = kind != "nb"
    # The Dask comparison uses 8 MiB chunks (10 per 10⁷ counts) so two workers balance.
    chunk_size = 2**20 if kind == "dask" else None
    data = ChunkedData(path, histogram=not per_chunk, executor=executor, chunk_size=chunk_size)
    options: dict[str, Any] = {"line_search": "armijo", "max_iter": 3} if per_chunk else {}
    start = time.perf_counter()
    result = fit(cls, data, **options)
    total = time.perf_counter() - start
    times = np.asarray(result.history.time)
    setup = float(times[0])  # validation pass (+ histogram) and start
    per_step = float((times[result.n_iter] - times[0]) / max(result.n_iter, 1))
    out = {
        **config,
        "n_chunks": data.n_chunks,
        "n_iter": result.n_iter,
        "converged": bool(result.converged),
        "first_pass_s": setup,
        "per_step_s": per_step,
        "total_s": total,
        "peak_rss_mib": _peak_rss_mib(),
        "loss": float(result.loss),
    }
    if client is not None:
        workers = client.run(_peak_rss_mib)
        out["worker_peak_rss_mib"] = max(workers.values())
        client.close()
        cluster.close()  # type: ignore[union-attr]
    return out


def run_config(config: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run :func:`measure` in a fresh interpreter (its own peak RSS)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--one", json.dumps(config)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {**config, "error": f"timeout after {timeout:.0f} s"}
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        return {**config, "error": completed.stderr.strip().splitlines()[-1:]}
    return json.loads(lines[-1])  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def table(results: list[dict[str, Any]]) -> str:
    """Markdown table of the results."""
    lines = [
        "| target / path | executor | N | chunks | first pass (s) | s / step | steps "
        "| total (s) | peak RSS (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "nb": "NB, histogram",
        "nb-per-chunk": "NB, per-chunk",
        "skewnormal": "skew-normal, per-chunk",
        "dask": "NB, per-chunk",
    }
    for row in results:
        executor = f"Dask, {row['workers']} worker(s)" if row["kind"] == "dask" else "in-process"
        if "error" in row:
            lines.append(
                f"| {names[row['kind']]} | {executor} | {row['n_obs']:.0e} | | "
                f"error: {row['error']} | | | | |"
            )
            continue
        rss = _fmt(row["peak_rss_mib"], 4)
        if "worker_peak_rss_mib" in row:
            rss += f" (worker {_fmt(row['worker_peak_rss_mib'], 4)})"
        lines.append(
            f"| {names[row['kind']]} | {executor} | {row['n_obs']:.0e} | {row['n_chunks']} | "
            f"{_fmt(row['first_pass_s'])} | {_fmt(row['per_step_s'])} | {row['n_iter']} | "
            f"{_fmt(row['total_s'])} | {rss} |"
        )
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Seconds per step and peak RSS against N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(10, 4))
    for kind, label, color in (
        ("nb", "NB, histogram (s/step)", "C0"),
        ("nb-per-chunk", "NB, per-chunk", "C1"),
        ("skewnormal", "skew-normal, per-chunk", "C2"),
    ):
        rows = [r for r in results if r["kind"] == kind and "error" not in r]
        if not rows:
            continue
        n = [r["n_obs"] for r in rows]
        ax_time.loglog(n, [r["per_step_s"] for r in rows], "o-", color=color, label=label)
        ax_mem.semilogx(n, [r["peak_rss_mib"] for r in rows], "o-", color=color, label=label)
        if kind == "nb":
            passes = [r["first_pass_s"] for r in rows]
            ax_time.loglog(n, passes, "s--", color="C0", label="NB, histogram pass")
    for workers in (1, 2):
        rows = [
            r
            for r in results
            if r["kind"] == "dask" and r["workers"] == workers and "error" not in r
        ]
        if rows:
            ax_time.loglog(
                [r["n_obs"] for r in rows],
                [r["per_step_s"] for r in rows],
                "^",
                label=f"NB per-chunk, Dask {workers} worker(s)",
            )
    ax_time.set_xlabel("N (observations)")
    ax_time.set_ylabel("seconds")
    ax_time.set_title("time per step (and NB's one histogram pass)")
    ax_time.legend(fontsize=7)
    ax_mem.axhline(2048, color="red", ls=":", label="2 GiB")
    ax_mem.set_xlabel("N (observations)")
    ax_mem.set_ylabel("peak RSS of the fitting process (MiB)")
    ax_mem.set_title("peak memory (chunks of 16 MiB)")
    ax_mem.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_markdown(results: list[dict[str, Any]], path: Path, meta: dict[str, Any]) -> None:
    """Put the table between the markers of ``docs/scaling.md`` (create it if needed)."""
    block = (
        "<!-- table -->\n"
        f"Machine: {meta['machine']}; run {meta['date']} with `python benchmarks/scaling.py "
        f"{meta['args']}`. **Timings are noisy**: the machine was shared with other jobs.\n\n"
        f"{table(results)}\n<!-- /table -->"
    )
    text = path.read_text() if path.exists() else "# Scaling\n\n<!-- table -->\n<!-- /table -->\n"
    head, _, rest = text.partition("<!-- table -->")
    _, _, tail = rest.partition("<!-- /table -->")
    path.write_text(head + block + tail)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument(
        "--max-n", type=float, default=1e8, help="largest N of the NB histogram fits"
    )
    parser.add_argument(
        "--per-chunk-max-n",
        type=float,
        default=1e7,
        help="largest N of the per-chunk fits (NB and skew-normal)",
    )
    parser.add_argument("--dask-n", type=float, default=1e7, help="N of the Dask comparison")
    parser.add_argument("--tmp", default="/tmp", help="where the data files are written")
    parser.add_argument("--out", default=str(ROOT / "docs" / "scaling"))
    parser.add_argument("--md", default=str(ROOT / "docs" / "scaling.md"))
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--dask-only",
        action="store_true",
        help="rerun only the Dask comparison and replace its rows in the existing results",
    )
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(json.loads(args.one))))
        return
    sizes = [10**k for k in range(4, 9) if 10**k <= args.max_n]
    tmp = Path(args.tmp)
    results: list[dict[str, Any]] = []
    out = Path(args.out)
    if args.dask_only:
        previous = json.loads((out / "results.json").read_text())["results"]
        results = [row for row in previous if row["kind"] != "dask"]
        sizes = [int(args.dask_n)]
    for n_obs in sizes:
        counts_path = tmp / f"sng_scaling_counts_{n_obs}.npy"
        skew_path = tmp / f"sng_scaling_skew_{n_obs}.npy"
        try:
            write_counts(counts_path, n_obs)
            print(
                f"N={n_obs:.0e}: counts written ({counts_path.stat().st_size / 2**20:.0f} MiB)",
                flush=True,
            )
            configs: list[dict[str, Any]] = [
                {"kind": "nb", "n_obs": n_obs, "path": str(counts_path)}
            ]
            if args.dask_only:
                configs = []
            elif n_obs <= args.per_chunk_max_n:
                configs.append({"kind": "nb-per-chunk", "n_obs": n_obs, "path": str(counts_path)})
                write_skewnormal(skew_path, n_obs)
                configs.append({"kind": "skewnormal", "n_obs": n_obs, "path": str(skew_path)})
            if n_obs == int(args.dask_n):
                configs += [
                    {"kind": "dask", "workers": w, "n_obs": n_obs, "path": str(counts_path)}
                    for w in (1, 2)
                ]
            for config in configs:
                row = run_config(config, args.timeout)
                print(json.dumps(row), flush=True)
                results.append(row)
        finally:
            for path in (counts_path, skew_path):
                path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        ),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "args": " ".join(argv if argv is not None else sys.argv[1:]),
    }
    (out / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    plot(results, out / "scaling.png")
    write_markdown(results, Path(args.md), meta)
    print(table(results))


if __name__ == "__main__":
    main()
