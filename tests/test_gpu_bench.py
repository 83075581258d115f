"""The GPU benchmark script imports everywhere and says so when there is no GPU."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_bench.py"


@pytest.fixture(scope="module")
def gpu_bench():
    spec = importlib.util.spec_from_file_location("gpu_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reports_no_gpu_and_exits_cleanly(gpu_bench, tmp_path, capsys):
    status = gpu_bench.gpu_status()
    if status["gpu"]:
        pytest.skip(f"this machine has a GPU ({status['device_name']}); run the benchmark")
    out = tmp_path / "bench.json"
    assert gpu_bench.main(["--out", str(out)]) == 0
    assert "no GPU" in capsys.readouterr().out
    record = json.loads(out.read_text())
    assert record["status"] == "no GPU" and record["gpu"]["gpu"] is False
    assert record["gpu"]["reason"]
    assert gpu_bench.default_backends(status) == ["numpy-cpu"]


def test_speedups_and_error_records(gpu_bench):
    results = [
        {"experiment": "E1", "backend": "numpy-cpu", "status": "ok", "median_s": 2.0},
        {"experiment": "E1", "backend": "cupy", "status": "ok", "median_s": 0.5},
        {"experiment": "E1", "backend": "torch-cuda", "status": "error"},
    ]
    gpu_bench.add_speedups(results)
    assert results[1]["speedup_vs_numpy_cpu"] == pytest.approx(4.0)
    assert "speedup_vs_numpy_cpu" not in results[2]
    skipped = gpu_bench.run_one("E3", "cupy-closed-form", repeats=1, steps=1, size="quick")
    assert skipped["status"] == "skipped"
