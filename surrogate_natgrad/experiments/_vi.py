"""E6: a skew-normal variational posterior of Bayesian logistic regression.

The synthetic task of the authors' code: ``X ~ N(0, 1)`` entrywise (N × d), true weights
``z ~ N(0, I)``, responses ``y ~ Bernoulli(σ((2X - 1) z))`` (the data are generated from
``2X - 1`` but modelled with ``X``, as there), prior ``N(0, I)``. The ELBO uses 10
reparameterised samples per step and 100 fixed samples for evaluation; the start is
``ξ ~ 0.01·N(0, I)``, ``Ω = 0.01 I``, ``η_s ~ 0.01·N(0, I)``.
"""

from __future__ import annotations

import numpy as np

from surrogate_natgrad.experiments._base import Problem, _check_size, _streams
from surrogate_natgrad.models import BayesianLogisticRegression

__all__ = ["e6"]


def _logistic_task(seed: int, dim: int, n_obs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    design_rng, weight_rng, response_rng = _streams(seed, 3)
    design = design_rng.normal(size=(n_obs, dim))
    weights = weight_rng.normal(size=dim)
    logits = (2.0 * design - 1.0) @ weights
    probabilities = 1.0 / (1.0 + np.exp(-logits))
    responses = (response_rng.uniform(size=n_obs) < probabilities).astype(np.float64)
    return design, responses, weights


def e6(seed: int = 0, size: str = "quick") -> Problem:
    """Experiment E6: skew-normal VI for Bayesian logistic regression.

    Parameters
    ----------
    seed : int, optional
        Seed of the data and of the start.
    size : {"quick", "paper"}, optional
        ``"paper"``: d = 100, N = 100, 1000 steps. ``"quick"``: d = 10, N = 100, 200 steps.

    Returns
    -------
    Problem
        ``kind="vi"``; ``model`` is the :class:`BayesianLogisticRegression` (NumPy arrays),
        ``init`` the skew-normal start ``{"loc", "scale", "shape"}``, ``truth`` the weights
        the responses were drawn from, ``settings`` the ELBO sample sizes, evaluation
        interval and family.
    """
    _check_size(size)
    dim, n_obs, max_iter = (100, 100, 1000) if size == "paper" else (10, 100, 200)
    data_seed, init_seed = np.random.SeedSequence(seed).spawn(2)
    design, responses, weights = _logistic_task(int(data_seed.generate_state(1)[0]), dim, n_obs)
    init_rng = np.random.default_rng(init_seed)
    init = {
        "loc": 0.01 * init_rng.normal(size=dim),
        "scale": 0.01 * np.eye(dim),
        "shape": 0.01 * init_rng.normal(size=dim),
    }
    model = BayesianLogisticRegression(design, responses, prior_precision=1.0)
    return Problem(
        name="E6",
        distribution="skew_normal",
        data=None,
        init=init,
        truth={"weights": weights},
        max_iter=max_iter,
        settings={
            "family": "skew_normal",
            "n_samples": 10,
            "n_samples_eval": 100,
            "eval_every": 10,
            "adam_step_sizes": (1e-3, 1e-2, 1e-1),
            "adam_parameterizations": ("cholesky", "precision"),
        },
        description=(
            f"skew-normal VI posterior of Bayesian logistic regression, d = {dim}, "
            f"N = {n_obs}, prior N(0, I)"
        ),
        kind="vi",
        model=model,
    )
