"""E6, E7, E8: skew-normal, skew-t and skew-normal-mixture posteriors of logistic regression.

The synthetic task of the authors' code: ``X ~ N(0, 1)`` entrywise (N × d), true weights
``z ~ N(0, I)``, responses ``y ~ Bernoulli(σ((2X - 1) z))`` (the data are generated from
``2X - 1`` but modelled with ``X``, as there), prior ``N(0, I)``. The ELBO uses 10
reparameterised samples per step and 100 fixed samples for evaluation; the start is
``ξ ~ 0.01·N(0, I)``, ``Ω = 0.01 I``, ``η_s ~ 0.01·N(0, I)``; E7 adds ``ν = 50``; E8 uses
K = 3 components with equal weights, each started like E6 (its own draws), clips the weights
at 1e-3 and draws 10 samples per component (stratified).
"""

from __future__ import annotations

import numpy as np

from surrogate_natgrad.experiments._base import Problem, _check_size, _streams
from surrogate_natgrad.models import BayesianLogisticRegression

__all__ = ["e6", "e7", "e8"]


def _logistic_task(seed: int, dim: int, n_obs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    design_rng, weight_rng, response_rng = _streams(seed, 3)
    design = design_rng.normal(size=(n_obs, dim))
    weights = weight_rng.normal(size=dim)
    logits = (2.0 * design - 1.0) @ weights
    probabilities = 1.0 / (1.0 + np.exp(-logits))
    responses = (response_rng.uniform(size=n_obs) < probabilities).astype(np.float64)
    return design, responses, weights


def _vi_problem(name: str, family: str, seed: int, size: str, n_components: int | None) -> Problem:
    _check_size(size)
    dim, n_obs, max_iter = (100, 100, 1000) if size == "paper" else (10, 100, 200)
    data_seed, init_seed = np.random.SeedSequence(seed).spawn(2)
    design, responses, weights = _logistic_task(int(data_seed.generate_state(1)[0]), dim, n_obs)
    init_rng = np.random.default_rng(init_seed)
    if n_components is None:
        init = {
            "loc": 0.01 * init_rng.normal(size=dim),
            "scale": 0.01 * np.eye(dim),
            "shape": 0.01 * init_rng.normal(size=dim),
        }
    else:
        init = {
            "weights": np.full(n_components, 1.0 / n_components),
            "loc": 0.01 * init_rng.normal(size=(n_components, dim)),
            "scale": np.stack([0.01 * np.eye(dim)] * n_components),
            "shape": 0.01 * init_rng.normal(size=(n_components, dim)),
        }
    if family == "skew_t":
        init["df"] = np.asarray(50.0)
    model = BayesianLogisticRegression(design, responses, prior_precision=1.0)
    settings: dict[str, object] = {
        "family": family,
        "n_samples": 10,
        "n_samples_eval": 100,
        "eval_every": 10,
        "adam_step_sizes": (1e-3, 1e-2, 1e-1),
        "adam_parameterizations": ("cholesky", "precision"),
    }
    what = {
        "skew_normal": "skew-normal",
        "skew_t": "skew-t (start nu = 50)",
        "skew_normal_mixture": f"{n_components}-component skew-normal mixture",
    }[family]
    if n_components is not None:
        settings["fit_options"] = {"k": n_components}
    if family == "skew_normal":
        # The natural-gradient baseline of Lin, Khan & Schmidt (2019), at SNGD's default step.
        settings["mcef_step_sizes"] = (0.05,)
    return Problem(
        name=name,
        distribution=family,
        data=None,
        init=init,
        truth={"weights": weights},
        n_components=n_components,
        max_iter=max_iter,
        settings=settings,
        description=(
            f"{what} VI posterior of Bayesian logistic regression, d = {dim}, "
            f"N = {n_obs}, prior N(0, I)"
        ),
        kind="vi",
        model=model,
    )


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
    return _vi_problem("E6", "skew_normal", seed, size, None)


def e7(seed: int = 0, size: str = "quick") -> Problem:
    """Experiment E7: skew-t VI for Bayesian logistic regression (start ``ν = 50``).

    Parameters
    ----------
    seed : int, optional
        Seed of the data and of the start.
    size : {"quick", "paper"}, optional
        As :func:`e6`.

    Returns
    -------
    Problem
        As :func:`e6`, with ``init["df"] = 50`` and ``settings["family"] = "skew_t"``.
    """
    return _vi_problem("E7", "skew_t", seed, size, None)


def e8(seed: int = 0, size: str = "quick") -> Problem:
    """Experiment E8: a K = 3 skew-normal-mixture VI posterior for logistic regression.

    Parameters
    ----------
    seed : int, optional
        Seed of the data and of the start.
    size : {"quick", "paper"}, optional
        As :func:`e6`.

    Returns
    -------
    Problem
        As :func:`e6`, with ``init`` ``{"weights", "loc", "scale", "shape"}`` (equal weights,
        per-component shapes ``(3, d)``, ``(3, d, d)``), ``n_components = 3`` and
        ``settings["fit_options"] = {"k": 3}``; 10 samples per component per step.
    """
    return _vi_problem("E8", "skew_normal_mixture", seed, size, 3)
