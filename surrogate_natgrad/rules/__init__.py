"""Update rules: SNGD and its baselines as pure functions over explicit state.

Every rule is an immutable object with

- ``rule.init(params, ...) -> state`` (a named tuple of arrays), and
- ``rule.step(state, objective) -> (state, info)``, where ``info`` holds at least ``loss``
  (at the state before the step), ``step_size`` (taken), ``status`` (a :class:`Status`
  code) and ``grad_norm``;
- ``rule.make_step(objective)`` returns the pure function ``state -> (state, info)``
  (``jax.jit``-able for fixed-step and backtracking SNGD).

Rules
-----
:class:`SNGD`
    Surrogate natural gradient descent (MLE and VI forms).
:class:`GradientDescent`, :class:`Adam`, :class:`BFGS`
    First-order and quasi-Newton baselines on unconstrained parameters.
:class:`NaturalGradientDescent`
    Natural gradient descent with a Monte Carlo Fisher.
:class:`LBFGS`
    Limited-memory BFGS updates of SNGD's auxiliary parameters in full-batch fits (the
    line search sets their length); :class:`Adam` serves with minibatches.
"""

from __future__ import annotations

from surrogate_natgrad.rules._base import Status, StepInfo, status_name
from surrogate_natgrad.rules.bfgs import BFGS, BFGSInfo, BFGSState
from surrogate_natgrad.rules.first_order import (
    Adam,
    AdamMoments,
    AdamState,
    GradientDescent,
    GradientDescentState,
)
from surrogate_natgrad.rules.lbfgs import LBFGS, LBFGSMemory
from surrogate_natgrad.rules.ngd import NaturalGradientDescent, NGDState
from surrogate_natgrad.rules.sngd import SNGD, SNGDDirection, SNGDState, sngd_direction
from surrogate_natgrad.rules.step_size import LINE_SEARCHES, select_step

__all__ = [
    "BFGS",
    "LBFGS",
    "LINE_SEARCHES",
    "SNGD",
    "Adam",
    "AdamMoments",
    "AdamState",
    "BFGSInfo",
    "BFGSState",
    "GradientDescent",
    "GradientDescentState",
    "LBFGSMemory",
    "NGDState",
    "NaturalGradientDescent",
    "SNGDDirection",
    "SNGDState",
    "Status",
    "StepInfo",
    "select_step",
    "sngd_direction",
    "status_name",
]
