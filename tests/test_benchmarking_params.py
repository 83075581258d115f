"""The benchmark runs the Adam baselines in both square-root parameterisations (issue 6)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surrogate_natgrad import benchmarking
from surrogate_natgrad.distributions import SkewNormal
from surrogate_natgrad.distributions._base import registered


@pytest.fixture(scope="module")
def e3_adam() -> dict:
    """A quick E3 run of the Adam baselines only (3 iterations, no peers, no floor)."""
    return benchmarking.run_problem(
        "E3", size="quick", methods=["adam"], peers=False, floor=False, max_iter=3
    )


def test_e3_runs_adam_in_both_parameterizations(e3_adam: dict) -> None:
    methods = [record.method for record in e3_adam["runs"]]
    assert methods == ["adam/cholesky", "adam/precision"], e3_adam.get("skipped")
    rows = {row["method"]: row for row in e3_adam["summary"]["rows"]}
    assert set(rows) == {"adam/cholesky", "adam/precision"}
    for record in e3_adam["runs"]:
        assert record.step_size == pytest.approx(1e-2)  # the middle of (1e-3, 1e-2, 1e-1)
        assert record.n_iter == 3
        assert np.isfinite(record.final_loss)
    table = benchmarking.format_summary_table(e3_adam)
    assert "| adam/cholesky |" in table and "| adam/precision |" in table
    # The JSON keeps the label.
    dumped = json.loads(json.dumps([record.to_dict() for record in e3_adam["runs"]]))
    assert [entry["method"] for entry in dumped] == methods


def test_precision_run_uses_precision_coordinates(e3_adam: dict) -> None:
    cholesky, precision = e3_adam["runs"]
    # Same start, same minibatches, different coordinates: the first loss agrees, the
    # trajectories then differ.
    assert cholesky.loss[0] == pytest.approx(precision.loss[0], rel=1e-12)
    assert cholesky.final_loss != precision.final_loss


def test_precision_variant_swaps_coordinates_and_keeps_the_registry() -> None:
    variant = benchmarking._precision_coordinates(SkewNormal)
    assert issubclass(variant, SkewNormal)
    assert registered()["skew_normal"] is SkewNormal
    assert registered()["skewnormal"] is SkewNormal
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(3, 3))
    params = {
        "loc": rng.normal(size=3),
        "scale": weights @ weights.T + np.eye(3),
        "alpha": rng.normal(size=3),
    }
    coords = variant.to_unconstrained(params)
    assert set(coords) == {"loc", "precision_root", "skew"}
    # Ω⁻¹ = WᵀW, checked against NumPy's inverse.
    root = coords["precision_root"]
    np.testing.assert_allclose(root.T @ root, np.linalg.inv(params["scale"]), rtol=1e-10)
    back = variant.from_unconstrained(coords)
    np.testing.assert_allclose(back["scale"], params["scale"], rtol=1e-10)
    np.testing.assert_allclose(back["alpha"], params["alpha"], rtol=1e-10)


def test_floor_of_a_minibatch_problem_passes_over_one_batch() -> None:
    problem = benchmarking.get_problem("E3", size="quick")
    floor = benchmarking.measure_floor(problem)
    assert "error" not in floor, floor
    assert "one minibatch of 100 observations" in floor["what"]
