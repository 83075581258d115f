"""SNGD's step time over the measured per-step floor at d = 1000, per BLAS thread count.

Issue 8 asks for ``step / floor <= 3`` at d = 1000. On a small virtual machine both
numbers depend on how many threads the BLAS library uses, and not in the same way: the
floor's tight loop of one Cholesky factorisation gains from a second thread, while a step
interleaves BLAS calls with NumPy's single-threaded elementwise work, and two BLAS threads
on two virtual cores can slow it. This script measures both under the same conditions:
each measurement runs in a fresh subprocess with ``OPENBLAS_NUM_THREADS`` (and the MKL/OMP
equivalents) set, the thread counts interleaved over repeats so that drifting load on the
machine hits all of them, and reports the median over repeats.

Each subprocess runs :func:`surrogate_natgrad.benchmarking.run_problem` on the problem at
the paper's size with SNGD only (``--steps`` minibatch steps, default 100) and the floor:
the step is the median iteration of the fit (as in ``docs/benchmarks.md``), the floor
:func:`~surrogate_natgrad.benchmarking.measure_floor`.

Usage (from the repository root)::

    python benchmarks/step_floor.py                  # E3 and E4, 1 and 2 threads, 3 repeats

Writes ``docs/_static/benchmarks/step_floor.json``; ``python benchmarks/run_all.py
--render-only`` puts its table on the benchmarks page.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "_static" / "benchmarks" / "step_floor.json"
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def measure(problem: str, steps: int) -> dict[str, Any]:
    """One measurement in this process: SNGD's median step and the floor (milliseconds)."""
    from surrogate_natgrad import benchmarking

    result = benchmarking.run_problem(
        problem, size="paper", methods=["sngd"], peers=False, floor=True, max_iter=steps
    )
    row = next(row for row in result["summary"]["rows"] if row["method"] == "sngd")
    floor = result["floor"]
    return {
        "problem": problem,
        # The code measured is this process's (PYTHONPATH = this checkout): record its commit.
        "git": benchmarking.machine_info()["git"],
        "step_ms": row["median_ms_per_step"],
        "floor_ms": floor["floor_ms"],
        "data_pass_ms": floor["data_pass_ms"],
        "linalg_ms": floor["linalg_ms"],
        "ratio": row["median_ms_per_step"] / floor["floor_ms"],
    }


def run_worker(problem: str, steps: int, threads: int) -> dict[str, Any]:
    """:func:`measure` in a fresh subprocess whose BLAS uses ``threads`` threads."""
    env = {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, __file__, "--worker", problem, "--steps", str(steps)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "blas_threads": threads}


def summarize(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median step, floor and ratio over repeats, per problem and thread count."""
    rows = []
    keys = sorted({(s["problem"], s["blas_threads"]) for s in samples})
    for problem, threads in keys:
        group = [s for s in samples if s["problem"] == problem and s["blas_threads"] == threads]
        rows.append(
            {
                "problem": problem,
                "blas_threads": threads,
                "repeats": len(group),
                "step_ms": statistics.median(s["step_ms"] for s in group),
                "floor_ms": statistics.median(s["floor_ms"] for s in group),
                "ratio": statistics.median(s["ratio"] for s in group),
                "ratio_range": [min(s["ratio"] for s in group), max(s["ratio"] for s in group)],
            }
        )
    return rows


def table(results: dict[str, Any]) -> str:
    """Markdown table of :func:`summarize`'s rows."""
    lines = [
        "| problem | BLAS threads | SNGD step (median, ms) | floor (ms) | step / floor "
        "(median; range) | repeats |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        low, high = row["ratio_range"]
        lines.append(
            f"| {row['problem']} | {row['blas_threads']} | {row['step_ms']:.1f} | "
            f"{row['floor_ms']:.1f} | **{row['ratio']:.2f}** ({low:.2f}–{high:.2f}) | "
            f"{row['repeats']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and write the JSON; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=["E3", "E4"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(measure(args.worker, args.steps)))
        return 0

    from surrogate_natgrad import benchmarking

    samples = []
    for repeat in range(args.repeats):
        for threads in args.threads:
            for problem in args.problems:
                sample = run_worker(problem, args.steps, threads)
                samples.append({**sample, "repeat": repeat})
                print(
                    f"{problem} threads={threads} repeat={repeat}: step "
                    f"{sample['step_ms']:.1f} ms, floor {sample['floor_ms']:.1f} ms, "
                    f"ratio {sample['ratio']:.2f}",
                    file=sys.stderr,
                    flush=True,
                )
    machine = benchmarking.machine_info()
    machine["git"] = samples[0]["git"] if samples else machine["git"]
    results = {
        "machine": machine,
        "settings": {"problems": args.problems, "threads": args.threads, "steps": args.steps},
        "samples": samples,
        "rows": summarize(samples),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(benchmarking._clean(results), indent=1))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
