"""E1 and E2: maximum likelihood of a negative binomial and of a 10-component mixture."""

from __future__ import annotations

import numpy as np

from surrogate_natgrad.distributions import NegativeBinomial, NegativeBinomialMixture
from surrogate_natgrad.experiments._base import Problem, _check_size, _streams

__all__ = ["e1", "e2"]


def e1(seed: int = 0, size: str = "quick") -> Problem:
    """Experiment E1: negative binomial maximum likelihood.

    Parameters
    ----------
    seed : int, optional
        Seed of the data and of the random start.
    size : {"quick", "paper"}, optional
        The data are the paper's in both cases (N = 1000); ``"paper"`` uses the paper's
        100,000 Monte Carlo samples for the Fisher of the NGD baseline, ``"quick"`` 10,000.

    Returns
    -------
    Problem
        Data ``NB(5, 1/11)``; start ``n ~ Gamma(6.25, rate 1.25)``, ``p ~ U(0.05, 0.95)``.
    """
    _check_size(size)
    data_rng, init_rng = _streams(seed, 2)
    truth = {"n": np.asarray(5.0), "p": np.asarray(1.0 / 11.0)}
    data = data_rng.negative_binomial(5.0, 1.0 / 11.0, size=1000).astype(np.int64)
    init = {
        "n": np.asarray(init_rng.gamma(6.25, 1.0 / 1.25)),
        "p": np.asarray(init_rng.uniform(0.05, 0.95)),
    }
    return Problem(
        name="E1",
        distribution=NegativeBinomial,
        data=data,
        init=init,
        truth=truth,
        max_iter=100,
        settings={"mc_samples": 100_000 if size == "paper" else 10_000},
        description="negative binomial MLE, N = 1000, n = 5, p = 1/11 (mean 50, var 550)",
    )


def e2(seed: int = 0, size: str = "quick") -> Problem:
    """Experiment E2: maximum likelihood of a 10-component negative binomial mixture.

    Parameters
    ----------
    seed : int, optional
        Seed of the mixture's parameters and of the data.
    size : {"quick", "paper"}, optional
        The data are the paper's in both cases (K = 10, N = 1000).

    Returns
    -------
    Problem
        Weights ``softmax(0.5 z)``, component means ``U(5, 5000)``, variance ``9 × mean``;
        start: the deterministic quantile-based start of
        :meth:`NegativeBinomialMixture.from_data`.
    """
    _check_size(size)
    n_components, n_data = 10, 1000
    param_rng, data_rng = _streams(seed, 2)
    logits = 0.5 * param_rng.normal(size=n_components)
    weights = np.exp(logits - logits.max())
    weights /= weights.sum()
    means = param_rng.uniform(5.0, 5000.0, size=n_components)
    p = np.full(n_components, 1.0 / 9.0)  # variance = mean / p = 9 * mean
    n = means * p / (1.0 - p)
    components = data_rng.choice(n_components, size=n_data, p=weights)
    data = data_rng.negative_binomial(n[components], p[components]).astype(np.int64)
    start = NegativeBinomialMixture.from_data(data, n_components)
    init = {name: np.asarray(value) for name, value in start.params.items()}
    return Problem(
        name="E2",
        distribution=NegativeBinomialMixture,
        data=data,
        init=init,
        truth={"weights": weights, "n": n, "p": p},
        n_components=n_components,
        max_iter=100,
        settings={},
        description="10-component negative binomial mixture MLE, N = 1000",
    )
