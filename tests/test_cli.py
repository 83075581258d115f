"""The command line interface, run as ``python -m surrogate_natgrad`` in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as st

from surrogate_natgrad import experiments
from surrogate_natgrad.cli import main


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "surrogate_natgrad", *args],
        capture_output=True, text=True, cwd=cwd, timeout=300, check=False,
    )


@pytest.fixture(scope="module")
def counts_csv(tmp_path_factory) -> Path:
    data = experiments.e1().data
    path = tmp_path_factory.mktemp("cli") / "counts.csv"
    lines = ["id,visits"] + [f"{i},{v}" for i, v in enumerate(data)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fit_csv_column_json(counts_csv, tmp_path):
    plot = tmp_path / "loss.png"
    done = run_cli("fit", "nbinom", str(counts_csv), "--column", "visits", "--json",
                   "--plot", str(plot))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["converged"] is True
    assert summary["n_observations"] == 1000
    data = experiments.e1().data
    n, p = summary["params"]["n"], summary["params"]["p"]
    np.testing.assert_allclose(summary["loss"], -st.nbinom.logpmf(data, n, p).mean(), rtol=1e-12)
    assert plot.exists() and plot.stat().st_size > 0


def test_fit_npy_and_txt_human_output(tmp_path):
    data = experiments.e1().data
    npy = tmp_path / "counts.npy"
    np.save(npy, data)
    done = run_cli("fit", "nbinom", str(npy))
    assert done.returncode == 0, done.stderr
    for word in ("n ", "p ", "NLL", "iterations", "converged"):
        assert word in done.stdout
    txt = tmp_path / "counts.txt"
    txt.write_text("\n".join(str(v) for v in data[:200]))
    done = run_cli("fit", "nbinom", str(txt), "--method", "bfgs")
    assert done.returncode == 0, done.stderr
    assert "fitted by bfgs" in done.stdout


def test_fit_builtin_mixture():
    done = run_cli("fit", "nbinom-mixture", "--dataset", "e2", "--components", "3", "--json",
                   "--max-iter", "20")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert len(summary["params"]["weights"]) == 3
    assert summary["n_iter"] <= 20


ERROR_CASES = [
    (None, ["fit", "nbinom", "missing.csv"], "data file not found"),
    ("a,b\n1,x\n2,3\n", ["fit", "nbinom", "bad.csv", "--column", "b"],
     "column 'b' of bad.csv is not numeric: 'x' at row 2"),
    ("counts\n3\n-1\n", ["fit", "nbinom", "bad.csv"], "non-negative counts; found -1"),
    ("a\n1\n", ["fit", "nbinom", "bad.csv", "--column", "zzz"], "column 'zzz' not found"),
    ("a\n1\n", ["fit", "nbinom-mixture", "bad.csv"], "needs --components"),
    ("1.5\n2\n", ["fit", "nbinom", "bad.csv"], "integer counts; found 1.5 at index 0"),
]


def test_errors_exit_2_without_traceback_subprocess(tmp_path):
    # Three representative cases through a real process; the rest in-process below.
    for setup, args, message in ERROR_CASES[:3]:
        if setup is not None:
            (tmp_path / "bad.csv").write_text(setup)
        done = run_cli(*args, cwd=tmp_path)
        assert done.returncode == 2, args
        assert message in done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("setup", "args", "message"), ERROR_CASES)
def test_errors_exit_2_in_process(tmp_path, monkeypatch, capsys, setup, args, message):
    if setup is not None:
        (tmp_path / "bad.csv").write_text(setup)
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_info_lists_backends():
    done = run_cli("info", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["backends"]["numpy"]["version"] == np.__version__
    assert {"torch", "jax", "cupy", "autograd"} <= set(info["backends"])


def test_demo_writes_table_and_plot(tmp_path):
    done = run_cli("demo", "--out", str(tmp_path), "--methods", "sngd,bfgs", "--max-iter", "30")
    assert done.returncode == 0, done.stderr
    assert "sngd" in done.stdout and "bfgs" in done.stdout and "final NLL" in done.stdout
    assert (tmp_path / "sngd_demo.png").stat().st_size > 0
