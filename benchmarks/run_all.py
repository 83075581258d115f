"""Regenerate ``docs/benchmarks.md`` (tables, plots, machine, versions, commit) in one command.

Usage, from the repository root::

    python benchmarks/run_all.py                       # E1, E2, RANDHIE, SN1 at paper size
    python benchmarks/run_all.py --problems all        # every experiment (E3-E8: long)
    python benchmarks/run_all.py --size quick --out /tmp/bench --md /tmp/bench.md  # smoke

It runs :func:`surrogate_natgrad.benchmarking.run_benchmarks` (the same harness as
``surrogate-natgrad bench``), times jit-compiled JAX SNGD steps on E1 and E2, writes
``results.json`` and the PNG plots into ``docs/_static/benchmarks/`` and renders the page,
including a table that checks the targets of issue 8 against the measured numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from surrogate_natgrad import benchmarking

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROBLEMS = ("E1", "E2", "RANDHIE", "SN1")

NOTES = {
    "E1": """
Two SNGD variants: `sngd` is `fit`'s default (a grid line search over 1000 candidate steps
per iteration, evaluated as one batched call) and `sngd/backtracking` halves from step 1.
Both reach the optimum to 1e-6 in 2–3 iterations, as in the paper. Full-batch NumPy fits of
the negative binomial use its closed-form SNGD gradient (`NegativeBinomial.closed_form_backend`,
no autograd tracing) and a vectorised, elementary-function gamma mean → natural solve, so the
whole default fit takes a few hundredths of a second. statsmodels fits the same
two-parameter model with Newton or BFGS on analytic derivatives over 1000 rows with no
per-call dispatch and is still faster on this tiny problem (a few ms); on the real data set
below (18,171 counts, which `fit` compresses to their distinct values) SNGD is faster. The
held-out column is the NLL of 1000 fresh draws from the data-generating NB(5, 1/11).
`scipy.stats.fit` uses differential evolution over bounded `n` and `p` and treats `n` as an
integer, so it stops slightly above the optimum.
""",
    "E2": """
The paper's E2 reference (best NLL 8.14409) is for the authors' data set; our E2 data come
from the same recipe with our seed, so only the relative criteria (iterations and seconds to
1e-3 of the best loss found here, loss at 100 iterations against the best) are comparable.
NGD's Monte Carlo Fisher is not positive definite at the quantile-based start (the rule
refuses the step, status `step_rejected`); the paper does not run NGD on E2 either.
""",
    "RANDHIE": """
Real data: 20,190 outpatient visit counts of the RAND Health Insurance Experiment (first 90 %
fitted, last 10 % held out), from the deliberately poor start n = 1, p = 0.5. Here the data
are large and highly repetitive (60 distinct values), so `fit`'s compression of the counts
pays off and SNGD beats statsmodels (which sums over all 18,171 rows every evaluation).
""",
    "SN1": """
d = 1 skew-normal maximum likelihood (Azzalini's parameterisation, Ω = ω²) against
`scipy.stats.skewnorm.fit` (a generic Nelder–Mead fit from a moments start), all methods
with `fit`'s defaults. SNGD (Gaussian surrogate in the centred parameterisation, the skew as
an auxiliary parameter) reaches the optimum, as do BFGS and scipy; Adam needs its largest
step size and gradient descent creeps.
""",
    "JIT": """
`jax_step_timing` builds `rules.SNGD(...).make_step(objective)` on the compressed data and
times it eagerly (NumPy/autograd and JAX arrays), under `jax.jit` and as a jitted
`lax.fori_loop` over 5 steps, with fixed steps of size 0.5 (`fit`'s grid search is not
jit-compatible). The gamma surrogate's mean → natural Newton solve is a
`_compat.control_flow.while_loop` (a `lax.while_loop` under `jit`), so a step compiles in
seconds (E1: 27 s → under 2 s; E2: 31 s → about 5 s, mostly the mixture likelihood's
gradient) instead of unrolling 60 Newton iterations. Once compiled, a whole SNGD step runs
within a small factor of the measured one-pass floor and several times faster than the
eager NumPy step; JAX without `jit` is far slower than NumPy (op-by-op dispatch).
""",
    "E3-D100": """
E3 at d = 100, N = 10,000 (last 1000 held out): the size at which the authors' code reports
its held-out NLL (92.74 at 1000 steps, on their data). Minibatches of 100, evaluation every
10 steps; SNGD with `fit`'s defaults (step 0.1 decaying as 1/√(1 + t/100): with a fixed
0.1 the held-out NLL ends at 91.75 here, 98.06 on E4-D100) against Adam on (ξ, W, η_s) with
Ω = WWᵀ (`adam/cholesky`) and Ω⁻¹ = WWᵀ (`adam/precision`), step sizes 1e-3, 1e-2, 1e-1.
The held-out column and the curves are the held-out NLL. At d = 1000 (E3 below) SNGD
reaches a held-out NLL of 976.4 against Adam's best 1089.5.
""",
    "E4-D100": """
E4 (skew-t, ν = 10, start ν = 50) at d = 100, as E3-D100, with log(ν − 2) as the fourth
block of Adam's coordinates.
""",
    "E3": """
E3 at the paper's size on this 2-core CPU with NumPy: skew-normal, d = 1000, N = 10,000
(last 1000 held out), 1000 minibatch steps of 100, SNGD with `fit`'s defaults (step 0.1;
at d = 1000 with batches of 100 it decays over 100·100/1000 = 10 steps) against Adam in
both square-root parameterisations at 1e-3, 1e-2, 1e-1 (Adam on Ω⁻¹ = WWᵀ at 0.1 stops
as `diverged` after 10 steps and returns its start). SNGD's held-out NLL is below the best
Adam's at every evaluation from step 10 on, by at least 101 after 10 % of the steps. An
earlier H100 run (GPU page) with the old default decay of 100 steps was 5.9 above Adam at
step 140: there the step averaged too few batches for a full-rank 1000 × 1000 scale
estimate and the held-out NLL sat on a noise floor (1126 at step 140; now 1019).
""",
    "E4": """
E4 at the paper's size: skew-t, d = 1000, N = 10,000 (last 1000 held out), 1000 minibatch
steps of 100, on this 2-core CPU with NumPy (no GPU), SNGD with `fit`'s defaults against
Adam in both square-root parameterisations at 1e-3, 1e-2, 1e-1. Each step evaluates the
Student-t CDF of the batch and its ν-derivative and factorises a 1000 × 1000 matrix. The
Adam runs are from an earlier session; SNGD was re-run after two changes: SNGD's MLE step
no longer differentiates through the Gaussian's mean → natural → standard round trip (two
factorisations, two inverses and their derivatives; it now chains the gradient in closed
form), and at d = 1000 with batches of 100 the default step decays over 10 steps instead
of 100. SNGD's held-out NLL went from 1061.2 to 1028.5, and its step from 883 to 374 ms
(mean, evaluations included; median step 297 ms). The run stays near 1 GB: an earlier
attempt was killed at 20 GB because every traced evaluation of the skew-t likelihood
registered a new autograd primitive (which autograd never frees).
""",
    "E5": """
t-copula, d = 100, N = 1000 (last 100 held out), 1000 minibatch steps. SNGD runs a small
step-size grid (0.01, 0.03, 0.1); Adam on (W, log(ν − 2)) in both square-root
parameterisations. Each step inverts the Student-t CDF at every observation of the batch
(the t quantile and its ν-derivative dominate the step time).
""",
    "E6": """
Skew-normal VI for Bayesian logistic regression, d = 100, N = 100; −ELBO on 100 fixed
evaluation draws (common random numbers) every 10 steps, 10 training draws per step.
SNGD and MCEF (Lin, Khan & Schmidt's natural gradient) take `fit_vi`'s default step,
0.05 for 100 − τ steps, then decaying as 1/√(1 + t'/τ) with τ = 100·min(1, draws/d) = 10
steps here (a fixed step leaves a noise floor: 82.6 with a fixed 0.05; the earlier default,
τ = 100 from the start, ended at 71.33 and first came within 1 % of the best at step 830;
τ = 10 from the start ended at 70.20 but was 121.8 at step 100, behind Adam until step
250); Adam runs both square-root
parameterisations at 1e-3, 1e-2, 1e-1. Every run stays finite: natural-gradient steps
that leave the positive-definite cone are halved, and a run whose evaluated −ELBO climbs
more than ten times above its best stops as `diverged` and returns its best point (SNGD
started at 0.1 instead of 0.05 used to end, positive definite, at 6.9·10⁶).
""",
    "E7": """
Skew-t VI (start ν = 50) on E6's model: the ELBO's entropy is exact in Ω and estimated in
(ν, a) on the training draws; gamma variates by the quantile function with implicit
reparameterisation gradients in ν. Settings as E6.
""",
    "E8": """
Mixture of K = 3 skew-normals on E6's model: 10 draws per component per step (stratified),
weights floored at 1e-3; SNGD's surrogate is the joint Gaussian mixture. Settings as E6.
""",
}


def _row(result: Mapping[str, Any], method: str) -> dict[str, Any] | None:
    for row in result.get("summary", {}).get("rows", []):
        if row["method"] == method:
            return row
    return None


def _run(result: Mapping[str, Any], method: str, step_size: Any) -> dict[str, Any] | None:
    for run in result.get("runs", []):
        if run["method"] == method and run["step_size"] == step_size:
            return run
    return None


def _yes(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def _num(value: Any, spec: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return format(value, spec)


def target_table(results: Mapping[str, Any], step_floor: Mapping[str, Any] | None = None) -> str:
    """The targets of issue 8 against the measured numbers (Markdown).

    ``step_floor`` is the output of ``benchmarks/step_floor.py``, which times SNGD's step
    and the floor at d = 1000 in the same conditions; without it the E3/E4 ratios come from
    the runs' summaries.
    """
    problems = results["problems"]
    lines = ["| problem | target | measured | verdict |", "|---|---|---|---|"]
    e1 = problems.get("E1")
    for method in ("sngd", "sngd/backtracking"):
        sngd = _row(e1, method) if e1 and e1.get("runs") else None
        if e1 is None or sngd is None:
            continue
        iterations = sngd["iterations_to"].get("1e-06")
        lines.append(
            f"| E1 | {method}: ≤ 3 iterations to 1e-6 relative | {_num(iterations)} | "
            f"{_yes(iterations is not None and iterations <= 3)} |"
        )
        total = sngd["total_seconds"]
        lines.append(
            f"| E1 | {method}: whole fit < 0.1 s on NumPy (to convergence, after warm-up) | "
            f"{_num(total)} s ({sngd['n_iter']} iterations) | {_yes(total < 0.1)} |"
        )
        peer = next((r for r in e1["runs"] if r["method"] == "statsmodels-nb2-bfgs"), None)
        run = _run(e1, method, sngd["step_size"])
        if peer is not None and run is not None:
            _, seconds = benchmarking.iterations_to_tolerance(
                [math.nan if v is None else v for v in run["loss"]],
                run["time"],
                peer["final_loss"],
                1e-12,
            )
            ok = seconds is not None and seconds < peer["total_seconds"]
            lines.append(
                f"| E1 | {method}: faster than statsmodels to the same NLL | {_num(seconds)} s "
                f"to statsmodels' NLL; statsmodels (BFGS) {_num(peer['total_seconds'])} s | "
                f"{_yes(ok)} |"
            )
    e2 = problems.get("E2")
    for method in ("sngd", "sngd/backtracking"):
        sngd = _row(e2, method) if e2 and e2.get("runs") else None
        if e2 is None or sngd is None:
            continue
        iterations = sngd["iterations_to"].get("0.001")
        seconds = sngd["seconds_to"].get("0.001")
        lines.append(
            f"| E2 | {method}: ≤ 30 iterations to 1e-3 of the best NLL | "
            f"{_num(iterations)} | {_yes(iterations is not None and iterations <= 30)} |"
        )
        lines.append(
            f"| E2 | {method}: … and < 5 s | {_num(seconds)} s | "
            f"{_yes(seconds is not None and seconds < 5)} |"
        )
        run = _run(e2, method, sngd["step_size"])
        best = e2["summary"]["best_loss"]
        if run is not None:
            losses = [v for v in run["loss"][:101] if v is not None]
            at_100 = min(losses) if losses else None
            lines.append(
                f"| E2 | {method}: NLL ≤ 8.1441 at 100 iterations (paper's data) | "
                f"{_num(at_100, '.8g')} on our E2 data (best found {_num(best, '.8g')}) | "
                "not comparable: different data |"
            )
    lines += _minibatch_and_vi_targets(problems, step_floor)
    return "\n".join(lines)


#: Absolute anchors of issue 8 (the authors' data; ours are generated from the same recipe
#: with our seed, so only the relative criteria are comparable).
_ANCHORS = {
    "E3-D100": "held-out NLL ≤ 92.6 at 1000 steps",
    "E4-D100": "held-out NLL ≤ 99.0 at 1000 steps",
    "E5": "held-out NLL ≤ −52.5 at 1000 steps",
    "E7": "−ELBO ≤ 81.7",
    "E8": "−ELBO ≤ 81.5",
}


def _curve(run: Mapping[str, Any], heldout: bool) -> dict[int, float]:
    """Evaluations of a run: iteration -> held-out loss (MLE) or evaluated loss (VI)."""
    pairs: Iterable[tuple[Any, Any]]
    if heldout and run.get("heldout_iterations"):
        pairs = zip(run["heldout_iterations"], run["heldout_loss"], strict=True)
    else:
        pairs = enumerate(run["loss"])
    return {int(i): float(v) for i, v in pairs if v is not None and math.isfinite(v)}


def _best_sngd(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """SNGD's run at its best step size (lowest final loss, as in the summary table)."""
    runs = [r for r in result.get("runs", []) if r["method"] == "sngd"]
    finite = [r for r in runs if r.get("final_loss") is not None]
    return min(finite, key=lambda r: r["final_loss"]) if finite else None


def _sngd_versus_adam(result: Mapping[str, Any], heldout: bool) -> tuple[bool | None, str]:
    """Is SNGD below every Adam configuration at every evaluation after 10 % of the steps?"""
    runs = result.get("runs", [])
    sngd = _best_sngd(result)
    adams = [r for r in runs if r["method"].startswith("adam")]
    if sngd is None or not adams:
        return None, "—"
    ours = _curve(sngd, heldout)
    theirs = [_curve(r, heldout) for r in adams]
    start = 0.1 * result.get("max_iter", sngd["n_iter"])
    worst, violations = math.inf, []
    for iteration, value in sorted(ours.items()):
        if iteration < start:
            continue
        best_adam = min((c[iteration] for c in theirs if iteration in c), default=math.nan)
        if not math.isfinite(best_adam):
            continue
        worst = min(worst, best_adam - value)
        if value >= best_adam:
            violations.append(iteration)
    if not math.isfinite(worst):
        return None, "no common evaluations"
    text = f"smallest margin {worst:.4g}"
    if violations:
        text += f"; above Adam at {len(violations)} evaluations (first at step {violations[0]})"
    return not violations, text


def _final(run: Mapping[str, Any], heldout: bool) -> float | None:
    value = run.get("final_heldout_loss") if heldout else run.get("final_loss")
    return None if value is None else float(value)


def _minibatch_and_vi_targets(
    problems: Mapping[str, Any], step_floor: Mapping[str, Any] | None = None
) -> list[str]:
    lines: list[str] = []
    for name in ("E3", "E4", "E3-D100", "E4-D100", "E5", "E6", "E7", "E8"):
        result = problems.get(name)
        if not result or not result.get("runs"):
            continue
        heldout = result.get("kind") != "vi"
        what = "held-out NLL" if heldout else "−ELBO (fixed evaluation draws)"
        ok, text = _sngd_versus_adam(result, heldout)
        label = name
        name = f"{name} (d = 1000)" if name in ("E3", "E4") else name
        lines.append(
            f"| {name} | sngd below the best Adam (both parameterisations, 3 step sizes) at "
            f"every evaluation after 10 % of the steps ({what}) | {text} | {_yes(ok)} |"
        )
        finals = {
            f"{r['method']}@{r['step_size']}": _final(r, heldout)
            for r in result["runs"]
            if r.get("kind", "method") == "method"
        }
        best_sngd = _best_sngd(result)
        sngd_final = None if best_sngd is None else _final(best_sngd, heldout)
        adam_finals = [v for k, v in finals.items() if k.startswith("adam") and v is not None]
        best_adam = min(adam_finals) if adam_finals else None
        lines.append(
            f"| {name} | {what} at {result.get('max_iter')} steps: sngd vs best Adam | "
            f"{_num(sngd_final, '.5g')} vs {_num(best_adam, '.5g')} | "
            f"{_yes(None if sngd_final is None or best_adam is None else sngd_final < best_adam)} |"
        )
        if label in _ANCHORS:
            lines.append(
                f"| {name} | {_ANCHORS[label]} (paper's data) | "
                f"{_num(sngd_final, '.5g')} on our data | not comparable: different data |"
            )
        if label == "E5":
            row = _row(result, "sngd")
            ms = None if row is None else row.get("ms_per_step")
            lines.append(
                f"| E5 | sngd < 50 ms per step (at its best step size) | {_num(ms)} ms/step | "
                f"{_yes(None if ms is None else ms < 50)} |"
            )
        if label == "E6":
            sngd = _best_sngd(result)
            best = result["summary"]["best_loss"]
            if sngd is not None and best is not None:
                curve = _curve(sngd, heldout=False)
                reached = [i for i, v in sorted(curve.items()) if v <= best + 1e-2 * abs(best)]
                first = reached[0] if reached else None
                lines.append(
                    f"| E6 | sngd within 1 % of the best −ELBO by step 600 | "
                    f"step {_num(first)} | {_yes(first is not None and first <= 600)} |"
                )
            finite = all(
                r.get("final_loss") is not None and math.isfinite(r["final_loss"])
                for r in result["runs"]
            )
            lines.append(
                f"| E6 | no NaN at any step size (every run's final −ELBO finite) | "
                f"{len(result['runs'])} runs | {_yes(finite)} |"
            )
    for name in ("E3", "E4"):
        measured = [r for r in (step_floor or {}).get("rows", []) if r["problem"] == name]
        if measured:
            # benchmarks/step_floor.py: step and floor in the same conditions, per BLAS threads.
            parts = [
                f"{r['ratio']:.2f} with {r['blas_threads']} BLAS thread"
                f"{'s' if r['blas_threads'] != 1 else ''} ({r['step_ms']:.0f} / "
                f"{r['floor_ms']:.0f} ms)"
                for r in measured
            ]
            verdicts = [
                f"{_yes(r['ratio'] <= 3)} ({r['blas_threads']})" for r in measured
            ]
            lines.append(
                f"| {name} (d = 1000) | sngd step / measured floor ≤ 3 | {'; '.join(parts)} "
                f"| {' / '.join(verdicts)} |"
            )
            continue
        result = problems.get(name)
        row = _row(result, "sngd") if result and result.get("runs") else None
        if row is None:
            continue
        ratio = row.get("step_over_floor")
        verdict = _yes(None if ratio is None else ratio <= 3)
        lines.append(
            f"| {name} (d = 1000) | sngd step / measured floor ≤ 3 | {_num(ratio)} "
            f"({_num(row.get('ms_per_step'))} ms/step) | {verdict} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and write the Markdown page; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=list(DEFAULT_PROBLEMS))
    parser.add_argument("--size", choices=("quick", "paper"), default="paper")
    parser.add_argument("--backend", choices=benchmarking.BACKENDS, default="numpy")
    parser.add_argument(
        "--device", default=None, help="torch device for --backend torch (e.g. cuda)"
    )
    parser.add_argument("--out", default=str(ROOT / "docs" / "_static" / "benchmarks"))
    parser.add_argument("--md", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument(
        "--jit",
        nargs="*",
        default=["E1", "E2"],
        help="problems on which to time jitted JAX steps (none: skip)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--jit-only",
        action="store_true",
        help="add the jit timings to OUT/results.json (no other runs)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="re-render the page from OUT/results.json without running",
    )
    parser.add_argument(
        "--max-iter",
        type=int,
        default=None,
        help="iteration budget per run (default: each problem's own)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="run only these methods (with --merge: replace only their runs)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="add these problems to OUT/results.json instead of replacing it",
    )
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.jit_only:
        results = json.loads((Path(args.out) / "results.json").read_text())
        add_jit_timings(results, args, log)
        return 0
    if args.render_only:
        results = json.loads((Path(args.out) / "results.json").read_text())
        for result in results["problems"].values():
            if result.get("runs"):
                benchmarking.plot_problem(result, args.out)
        write_page(results, args)
        return 0

    results_path = Path(args.out) / "results.json"
    previous = None
    if args.merge and results_path.exists():
        previous = json.loads(results_path.read_text())
    results = benchmarking.run_benchmarks(
        args.problems,
        size=args.size,
        backend=args.backend,
        out_dir=args.out,
        seed=args.seed,
        log=log,
        max_iter=args.max_iter,
        methods=args.methods,
        device=args.device,
    )
    # Every problem records the run it came from, so a merged file stays traceable.
    for result in results["problems"].values():
        result["run"] = {
            "created": results["created"],
            "git": results["machine"].get("git"),
            "max_iter": args.max_iter,
            "size": args.size,
            "load_average": results["machine"].get("load_average"),
            "blas_threads": results["machine"].get("blas_threads"),
            "methods": args.methods,
            "backend": args.backend,
            "device": args.device,
        }
    if previous is not None:
        merged = dict(previous["problems"])
        for name, result in results["problems"].items():
            old = merged.get(name)
            if args.methods and old and old.get("runs") and result.get("runs"):
                # Re-ran some methods only: replace their runs, keep the others' runs.
                rerun = {run["method"] for run in result["runs"]}
                kept = [run for run in old["runs"] if run["method"] not in rerun]
                result = {**old, "runs": kept + result["runs"], "rerun": result["run"]}
                result["summary"] = benchmarking.summarize(result, name)
                if result["runs"]:
                    result["plots"] = [p.name for p in benchmarking.plot_problem(result, args.out)]
            merged[name] = result
        results = {**results, "problems": merged}
        results["settings"] = {**results["settings"], "problems": list(merged)}
        results_path.write_text(json.dumps(results, indent=1))
    write_page(results, args)
    add_jit_timings(results, args, log)
    return 0


def add_jit_timings(results: dict[str, Any], args: argparse.Namespace, log: Any) -> None:
    """Time jitted JAX SNGD steps on ``args.jit``; save the JSON and the page after each."""
    # Compiling whole steps takes minutes: done last, so the page above exists meanwhile.
    for name in args.jit:
        if name not in results["problems"]:
            continue
        log(f"{name}: timing jit-compiled JAX SNGD steps")
        problem = benchmarking.get_problem(name, seed=args.seed, size=args.size)
        timing = benchmarking.jax_step_timing(problem)
        results["problems"][name]["jit"] = benchmarking._clean(timing)
        log(f"{name}: {timing}")
        (Path(args.out) / "results.json").write_text(json.dumps(results, indent=1))
        write_page(results, args)


def _step_floor_section(step_floor: Mapping[str, Any], plot_dir: str) -> str:
    """The page's section on ``benchmarks/step_floor.py``'s measurements."""
    from step_floor import table  # benchmarks/ is the script's directory

    machine = step_floor.get("machine", {})
    git = machine.get("git") or {}
    commit = str(git.get("commit", "?"))[:10] + (" (dirty)" if git.get("dirty") else "")
    settings = step_floor.get("settings", {})
    return (
        "\n\n## SNGD step over the floor at d = 1000, by BLAS threads\n\n"
        "`python benchmarks/step_floor.py` times SNGD's median minibatch step "
        f"({settings.get('steps', '?')} steps, `fit`'s defaults) and the floor of the "
        "problem (above) in one fresh process per measurement, with "
        "`OPENBLAS_NUM_THREADS` set, the thread counts interleaved over repeats. On this "
        "2-core virtual machine a second BLAS thread speeds up the floor's tight loop of "
        "one factorisation but slows the step, whose BLAS calls alternate with NumPy's "
        "single-threaded work; so the ratio depends on the setting, and both are shown. "
        f"Commit `{commit}`; raw numbers in `{plot_dir}/step_floor.json`.\n\n"
        + table(dict(step_floor))
    )


def write_page(results: Mapping[str, Any], args: argparse.Namespace) -> None:
    """Render ``args.md`` from ``results``."""
    md_path = Path(args.md)
    try:
        plot_dir = Path(args.out).resolve().relative_to(md_path.resolve().parent).as_posix()
    except ValueError:
        plot_dir = Path(args.out).resolve().as_posix()
    step_floor_path = Path(args.out) / "step_floor.json"
    step_floor = json.loads(step_floor_path.read_text()) if step_floor_path.exists() else None
    preamble = (
        "Every method of `surrogate_natgrad.fit` on the experiments of "
        "[the method page](method.md), against statsmodels and scipy where they apply, "
        "measured with `surrogate_natgrad.benchmarking` (also `surrogate-natgrad bench`). "
        "Raw numbers, per-iteration curves and held-out losses are in "
        f"`{plot_dir}/results.json`.\n\n## Targets (issue 8)\n\n"
        + target_table(results, step_floor)
    )
    if step_floor is not None:
        preamble += _step_floor_section(step_floor, plot_dir)
    benchmarking.write_markdown(
        results,
        md_path,
        plot_dir=plot_dir,
        preamble=preamble,
        notes=NOTES,
        command="python benchmarks/run_all.py",
    )
    print(f"wrote {md_path} and {args.out}/results.json", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
