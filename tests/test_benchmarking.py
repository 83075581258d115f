"""The benchmark harness: a smoke run on E1, the ``bench`` CLI, and time-to-tolerance."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats as st

from surrogate_natgrad import benchmarking, experiments


def test_iterations_to_tolerance_hand_made_curve():
    best = 2.0
    # Excess over best: 1, 0.1, 0.01, 1e-3, 1e-5, 0 -> relative 0.5, 0.05, 5e-3, 5e-4, ...
    loss = [3.0, 2.1, 2.01, 2.001, 2.00001, 2.0]
    times = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert benchmarking.iterations_to_tolerance(loss, times, best, 1e-3) == (3, 1.5)
    assert benchmarking.iterations_to_tolerance(loss, times, best, 1e-2) == (2, 1.0)
    assert benchmarking.iterations_to_tolerance(loss, times, best, 1e-5) == (4, 2.0)
    assert benchmarking.iterations_to_tolerance(loss, times, best, 0.0) == (5, 2.5)
    # Never reached; NaN entries (unevaluated iterations) are skipped, not "reached".
    assert benchmarking.iterations_to_tolerance([3.0, 2.5], [0, 1], best, 1e-3) == (None, None)
    nan = math.nan
    assert benchmarking.iterations_to_tolerance([3.0, nan, 2.0005], [0, 1, 2], best, 1e-3) == (
        2,
        2.0,
    )
    # A negative best loss (e.g. E5's NLL): the tolerance is relative to |best|.
    assert benchmarking.iterations_to_tolerance([-1.0, -9.95, -10.0], [0, 1, 2], -10.0, 1e-2) == (
        1,
        1.0,
    )


def test_summary_picks_best_step_size_and_peer_tolerance():
    def record(method, step, losses, kind="method", n_iter=None):
        return benchmarking.RunRecord(
            problem="X", method=method, step_size=step, kind=kind, loss=losses,
            time=[0.1 * i for i in range(len(losses))], n_iter=n_iter or len(losses) - 1,
            final_loss=losses[-1], total_seconds=0.1 * len(losses),
        )

    runs = [
        record("gd", 0.1, [5.0, 4.0, 3.0]),
        record("gd", 1.0, [5.0, 2.0, 1.0001]),
        record("adam", 0.05, [5.0, math.nan, 1.5]),
        benchmarking.RunRecord(problem="X", method="peer", step_size=None, kind="peer",
                               n_iter=4, final_loss=1.0, total_seconds=0.02),
    ]
    summary = benchmarking.summarize({"name": "X", "runs": runs})
    assert summary["best_loss"] == 1.0
    rows = {row["method"]: row for row in summary["rows"]}
    assert rows["gd"]["step_size"] == 1.0
    assert rows["gd"]["iterations_to"]["0.001"] == 2
    assert rows["adam"]["iterations_to"]["0.001"] is None
    assert rows["peer"]["iterations_to"]["0.001"] == 4
    assert rows["peer"]["seconds_to"]["0.001"] == 0.02
    assert rows["gd"]["ms_per_step"] == pytest.approx(100.0)
    assert [e["step_size"] for e in summary["tuning"]["gd"]] == [0.1, 1.0]


def test_step_over_floor_uses_the_median_step_not_the_evaluations():
    # Nine steps of 10 ms and one of 910 ms (a step with a full-data evaluation): the mean
    # is 100 ms, the step 10 ms; the floor is 5 ms.
    times = [0.0]
    for step in [0.01] * 9 + [0.91]:
        times.append(times[-1] + step)
    record = benchmarking.RunRecord(
        problem="X", method="sngd", step_size=None, loss=[1.0] * 11, time=times, n_iter=10,
        final_loss=1.0, total_seconds=1.0,
    )
    summary = benchmarking.summarize({"name": "X", "runs": [record], "floor": {"floor_ms": 5.0}})
    row = summary["rows"][0]
    assert row["ms_per_step"] == pytest.approx(100.0)
    assert row["median_ms_per_step"] == pytest.approx(10.0)
    assert row["step_over_floor"] == pytest.approx(2.0)


@pytest.fixture(scope="module")
def e1_quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    results = benchmarking.run_benchmarks(
        ["E1"], size="quick", methods=["sngd", "gd"], out_dir=out, peers=True, max_iter=12
    )
    return out, results


def test_smoke_run_json_schema_and_plots(e1_quick):
    out, _ = e1_quick
    saved = json.loads((out / "results.json").read_text())
    assert saved["schema_version"] == 1
    for key in ("created", "machine", "settings", "problems", "total_seconds"):
        assert key in saved
    machine = saved["machine"]
    for key in ("cpu", "cores", "os", "python", "versions", "git"):
        assert key in machine
    assert machine["versions"]["numpy"] == np.__version__
    assert "commit" in machine["git"]
    problem = saved["problems"]["E1"]
    for key in ("description", "runs", "summary", "floor", "plots", "max_iter"):
        assert key in problem
    assert (out / "E1_loss.png").stat().st_size > 0
    methods = {run["method"] for run in problem["runs"]}
    assert {"sngd", "gd", "statsmodels-nb2-bfgs", "scipy.stats.fit"} <= methods
    for run in problem["runs"]:
        for key in ("loss", "time", "heldout_loss", "final_loss", "total_seconds",
                    "first_call_seconds", "ms_per_step", "status", "kind"):
            assert key in run
        if run["kind"] == "method":
            assert len(run["loss"]) == len(run["time"]) == run["n_iter"] + 1
            assert run["heldout_iterations"][0] == 0
            assert np.all(np.diff(run["time"]) >= 0)


def test_smoke_run_summary_numbers(e1_quick):
    _, results = e1_quick
    problem = results["problems"]["E1"]
    summary = problem["summary"]
    assert summary["tolerances"] == [1e-3, 1e-6]
    rows = {row["method"]: row for row in summary["rows"]}
    for method in ("sngd", "gd"):
        row = rows[method]
        for key in ("final_loss", "ms_per_step", "total_seconds", "first_call_seconds",
                    "final_heldout_loss", "step_over_floor"):
            assert math.isfinite(row[key]), (method, key)
    # The best loss is the NB maximum likelihood; check it against scipy.optimize.
    data = experiments.e1().data

    def nll(log_params):
        n, p = np.exp(log_params[0]), 1 / (1 + np.exp(-log_params[1]))
        return -st.nbinom.logpmf(data, n, p).mean()

    from scipy.optimize import minimize

    reference = minimize(nll, [1.0, -2.0], method="Nelder-Mead",
                         options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 5000}).fun
    assert summary["best_loss"] == pytest.approx(reference, rel=1e-9)
    # SNGD reaches 1e-3 of it; the statsmodels peer's (n, p) reproduce its reported loss.
    assert rows["sngd"]["iterations_to"]["0.001"] is not None
    peer = next(r for r in problem["runs"] if r["method"] == "statsmodels-nb2-bfgs")
    n, p = peer["extra"]["params"]["n"], peer["extra"]["params"]["p"]
    assert peer["final_loss"] == pytest.approx(-st.nbinom.logpmf(data, n, p).mean(), rel=1e-12)
    assert peer["final_loss"] == pytest.approx(reference, rel=1e-7)
    floor = problem["floor"]
    assert floor["floor_ms"] > 0 and floor["dim"] == 2
    table = benchmarking.format_summary_table(problem)
    assert table.count("\n") == 1 + len(summary["rows"])


def test_markdown_page(e1_quick, tmp_path):
    _, results = e1_quick
    page = benchmarking.write_markdown(results, tmp_path / "bench.md", plot_dir="plots",
                                       command="python benchmarks/run_all.py")
    text = page.read_text()
    assert "## E1" in text and "![E1](plots/E1_loss.png)" in text
    assert "Commit:" in text and "benchmarks/run_all.py" in text


def test_unknown_problem_and_skipping_runner(monkeypatch):
    with pytest.raises(ValueError, match="unknown problem"):
        benchmarking.run_benchmarks(["E99"])

    def refuse(problem, method, **kwargs):
        raise benchmarking.NotRunnableError("not runnable yet")

    monkeypatch.setitem(benchmarking.RUNNERS, "E1", refuse)
    result = benchmarking.run_problem("E1", methods=["sngd"], peers=False, floor=False)
    assert result["runs"] == []
    assert result["skipped"]["sngd"] == "not runnable yet"


def test_cli_bench_subprocess(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "surrogate_natgrad", "bench", "E1", "--size", "quick",
         "--methods", "sngd,gd", "--out", str(out), "--no-peers", "--no-floor",
         "--max-iter", "5", "--quiet"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "| sngd |" in done.stdout and "| gd |" in done.stdout
    saved = json.loads((out / "results.json").read_text())
    assert {run["method"] for run in saved["problems"]["E1"]["runs"]} == {"sngd", "gd"}
    assert (out / "E1_loss.png").stat().st_size > 0


def test_cli_bench_usage_errors(tmp_path):
    from surrogate_natgrad.cli import main

    assert main(["bench", "E99", "--out", str(tmp_path)]) == 2
    assert main(["bench", "E1", "--methods", "sgd", "--out", str(tmp_path)]) == 2


def test_machine_info_records_blas_thread_settings(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    info = benchmarking.machine_info()
    assert info["blas_threads"]["OPENBLAS_NUM_THREADS"] == "1"
    assert info["blas_threads"]["MKL_NUM_THREADS"] is None
    run = {"backend": "numpy", "device": None, "blas_threads": info["blas_threads"]}
    assert benchmarking._where(run) == ", OPENBLAS_NUM_THREADS=1" + (
        f", OMP_NUM_THREADS={info['blas_threads']['OMP_NUM_THREADS']}"
        if info["blas_threads"]["OMP_NUM_THREADS"]
        else ""
    )
    assert benchmarking._where({"backend": "numpy", "device": None}) == ""
