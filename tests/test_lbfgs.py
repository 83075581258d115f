"""L-BFGS updates of SNGD's auxiliary parameters (rules.LBFGS).

References: the minimiser of a quadratic, ``A⁻¹ b`` by ``numpy.linalg.solve``; BFGS's
finite termination on quadratics with exact line searches is not assumed (the rule takes
unit steps), only convergence; a full-batch skew-normal fit reaches SciPy's optimum.
"""

from __future__ import annotations

import numpy as np
import pytest

from surrogate_natgrad import rules
from surrogate_natgrad.errors import DataError


def _quadratic(dim: int = 4):
    rng = np.random.default_rng(11)
    weights = rng.normal(size=(dim, dim))
    matrix = weights @ weights.T + dim * np.eye(dim)
    vector = rng.normal(size=dim)
    return matrix, vector


def _to_numpy(value) -> np.ndarray:
    return np.asarray(value.cpu() if hasattr(value, "cpu") else value)


def test_unit_steps_converge_to_the_minimum_of_a_quadratic(backend):
    matrix, vector = _quadratic()
    target = np.linalg.solve(matrix, vector)
    a, b = backend.asarray(matrix), backend.asarray(vector)
    xp = backend.xp
    # A pytree with two leaves of different shapes: the rule flattens and restores it.
    params = {"first": backend.asarray(np.zeros(1)), "rest": backend.asarray(np.zeros(3))}

    def gradient(tree):
        point = xp.concat([tree["first"], tree["rest"]])
        grad = xp.matmul(a, point) - b
        return {"first": grad[:1], "rest": grad[1:]}

    rule = rules.LBFGS(step_size=0.1, history=5)
    memory = rule.init_optimizer_state(params)
    first, memory = rule.apply_gradient(params, gradient(params), memory)
    moved = np.concatenate([_to_numpy(first["first"]), _to_numpy(first["rest"])])
    # The first step has length step_size along -g.
    np.testing.assert_allclose(np.linalg.norm(moved), 0.1, rtol=1e-12)
    np.testing.assert_allclose(moved / 0.1, vector / np.linalg.norm(vector), rtol=1e-12)
    params = first
    for _ in range(30):
        params, memory = rule.apply_gradient(params, gradient(params), memory)
    found = np.concatenate([_to_numpy(params["first"]), _to_numpy(params["rest"])])
    np.testing.assert_allclose(found, target, rtol=1e-10, atol=1e-12)
    assert _to_numpy(params["rest"]).shape == (3,)


def test_pairs_without_positive_curvature_are_skipped():
    rule = rules.LBFGS(step_size=1.0, history=3)
    memory = rule.init_optimizer_state(np.zeros(2))
    point, memory = rule.apply_gradient(np.zeros(2), np.array([1.0, 0.0]), memory)
    # The gradient fell along the step: sᵀy < 0, no pair is stored, the step stays -g/|g|.
    moved, memory = rule.apply_gradient(point, np.array([2.0, 0.0]), memory)
    assert float(memory.count) == 0.0
    np.testing.assert_allclose(moved, point - np.array([1.0, 0.0]), rtol=1e-15)


def test_lbfgs_options_are_checked():
    with pytest.raises(DataError, match="step_size"):
        rules.LBFGS(step_size=0.0)
    with pytest.raises(DataError, match="history"):
        rules.LBFGS(history=0)


def test_a_refused_step_clears_the_memory():
    """Called again at an unchanged point (the caller refused the step), the rule forgets
    its curvature pairs and restarts with a step of length ``step_size`` along ``-g``."""
    matrix, vector = _quadratic(3)
    rule = rules.LBFGS(step_size=0.5, history=4)
    point = np.zeros(3)
    memory = rule.init_optimizer_state(point)
    for _ in range(3):
        point, memory = rule.apply_gradient(point, matrix @ point - vector, memory)
    assert float(memory.count) == 2.0
    grad = matrix @ point - vector
    proposed, memory = rule.apply_gradient(point, grad, memory)
    # The caller keeps `point`, not `proposed`:
    retried, memory = rule.apply_gradient(point, grad, memory)
    assert float(memory.count) == 0.0
    np.testing.assert_allclose(retried, point - 0.5 * grad / np.linalg.norm(grad), rtol=1e-14)
    assert not np.allclose(proposed, retried)
