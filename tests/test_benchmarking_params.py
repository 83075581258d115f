"""The benchmark runs the Adam baselines in both square-root parameterisations (issue 6)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surrogate_natgrad import benchmarking, distributions
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


def _spd(rng: np.random.Generator, dim: int) -> np.ndarray:
    weights = rng.normal(size=(dim, dim))
    return weights @ weights.T + np.eye(dim)


def _corr(matrix: np.ndarray) -> np.ndarray:
    scale = np.sqrt(np.diag(matrix))
    return matrix / np.outer(scale, scale)


@pytest.mark.parametrize("name", ["SkewNormal", "SkewT", "TCopula"])
def test_precision_coordinates_are_a_root_of_the_inverse(name: str) -> None:
    """``to_unconstrained_precision``: ``WᵀW = Ω⁻¹`` with ``W`` the transposed lower
    Cholesky factor of ``Ω⁻¹`` (NumPy's inverse and Cholesky), and back."""
    rng = np.random.default_rng(3)
    cls = getattr(distributions, name)
    if name == "TCopula":
        params = {"corr": _corr(_spd(rng, 3)), "df": np.asarray(5.0)}
        matrix = params["corr"]
    else:
        params = {"loc": rng.normal(size=3), "scale": _spd(rng, 3), "alpha": rng.normal(size=3)}
        if name == "SkewT":
            params["df"] = np.asarray(7.0)
        matrix = params["scale"]
    coords = cls.to_unconstrained_precision(params)
    root = coords["precision_root"]
    np.testing.assert_allclose(root, np.linalg.cholesky(np.linalg.inv(matrix)).T, rtol=1e-10)
    back = cls.from_unconstrained_precision(coords)
    assert set(back) == set(params)
    for key, value in params.items():
        np.testing.assert_allclose(back[key], value, rtol=1e-10, atol=1e-12)
    # Any non-singular W maps back to a valid matrix.
    other = {**coords, "precision_root": root + 0.3 * rng.normal(size=root.shape)}
    moved = cls.from_unconstrained_precision(other)
    expected = np.linalg.inv(other["precision_root"].T @ other["precision_root"])
    if name == "TCopula":
        np.testing.assert_allclose(moved["corr"], _corr(expected), rtol=1e-10)
    else:
        np.testing.assert_allclose(moved["scale"], expected, rtol=1e-10)


def test_precision_runs_leave_the_registry_alone(e3_adam: dict) -> None:
    assert registered()["skew_normal"] is distributions.SkewNormal
    assert registered()["skewnormal"] is distributions.SkewNormal


def test_floor_of_a_minibatch_problem_passes_over_one_batch() -> None:
    problem = benchmarking.get_problem("E3", size="quick")
    floor = benchmarking.measure_floor(problem)
    assert "error" not in floor, floor
    assert "one minibatch of 100 observations" in floor["what"]
