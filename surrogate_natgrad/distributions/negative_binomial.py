"""Negative binomial distributions and mixtures of them, with their surrogate maps.

Parameterisation as :data:`scipy.stats.nbinom`: the number of failures ``k`` before the
``n``-th success with success probability ``p``,

    P(k) = C(k + n - 1, k) p^n (1 - p)^k,   k = 0, 1, 2, ...

with ``n > 0`` (real) and ``0 < p <= 1``; mean ``n (1 - p) / p``, variance
``n (1 - p) / p**2``. The surrogate of So & Turner (2024) is a gamma distribution
Gamma(α, β) (shape, rate) with ``p = β`` and ``n = α / (1 - β)``, which matches the
moments of the gamma-Poisson representation; a mixture of K negative binomials uses the
joint (component, x) gamma mixture family component-wise.

Pure math (layer 3): array API plus :mod:`surrogate_natgrad.special`.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple, cast

from surrogate_natgrad._compat import (
    Array,
    Namespace,
    as_float_array,
    asarray,
    dtype_eps,
    dtype_tolerance,
    float_dtype,
    is_array,
    namespace,
    size,
    to_numpy,
)
from surrogate_natgrad.distributions._base import Distribution, check_parameter
from surrogate_natgrad.distributions._checks import check_counts, check_float_precision
from surrogate_natgrad.errors import DataError, DomainError

__all__ = [
    "NegativeBinomial",
    "NegativeBinomialMixture",
    "nbinom_logpmf",
    "nbinom_mixture_logpmf",
]


# ----------------------------------------------------------------------------------------
# Functional log-probabilities (no validation; differentiable; batch axes broadcast)
# ----------------------------------------------------------------------------------------


def _special() -> Any:
    # Imported lazily so that this module (and the class docs) load without the
    # special-function layer having been initialised for every backend.
    from surrogate_natgrad import special

    return special


def nbinom_logpmf(x: Array, n: Array, p: Array) -> Array:
    """Log-mass of the negative binomial distribution, as ``scipy.stats.nbinom.logpmf``.

    Parameters
    ----------
    x : array
        Counts (any real dtype); values that are negative or not integers get ``-inf``.
    n : array
        Number of successes, ``n > 0``.
    p : array
        Success probability, ``0 < p <= 1``.

    Returns
    -------
    array
        ``log P(x)``, broadcast over ``x``, ``n`` and ``p`` (a parameter batch of shape
        ``(B, 1)`` against data of shape ``(N,)`` gives ``(B, N)``).

    Notes
    -----
    No parameter checks: parameters outside the domain give NaN, which a line search
    treats as "out of domain". Differentiable in ``n`` and ``p`` on every autodiff backend.
    """
    special = _special()
    xp = namespace(x, n, p)
    dtype = float_dtype(xp, n, p)
    x = x if x.dtype == dtype else xp.astype(x, dtype)
    in_support = xp.logical_and(x >= 0, x == xp.floor(x))
    # Evaluate at a harmless point outside the support so no NaN reaches the gradients.
    x_safe = xp.where(in_support, x, xp.zeros_like(x))
    log_coefficient = special.gammaln(x_safe + n) - special.gammaln(n) - special.gammaln(x_safe + 1)
    # p = 1 is the point mass at 0: log P(0) = 0 and log P(k) = -inf for k > 0. Use a safe
    # p there so that log1p(-p) stays finite (no warning, no NaN in gradients).
    degenerate = p >= 1
    p_safe = xp.where(degenerate, xp.full_like(p, 0.5), p)
    failures = x_safe * xp.log1p(-p_safe)
    value = log_coefficient + special.xlogy(n, p) + failures
    impossible = xp.logical_or(xp.logical_not(in_support), xp.logical_and(degenerate, x_safe > 0))
    return xp.where(impossible, xp.full_like(value, -xp.inf), value)


def nbinom_mixture_logpmf(x: Array, weights: Array, n: Array, p: Array) -> Array:
    """Log-mass of a mixture of negative binomials, ``log Σ_k w_k nbinom(x; n_k, p_k)``.

    Parameters
    ----------
    x : array
        Counts, shape ``(N,)`` (or a scalar).
    weights : array
        Mixture weights, shape ``(..., K)``, non-negative and summing to one.
    n, p : array
        Component parameters, shape ``(..., K)``.

    Returns
    -------
    array
        Shape ``(..., N)`` (``(...)`` for scalar ``x``): the component axis is summed out
        with a log-sum-exp.
    """
    special = _special()
    xp = namespace(x, weights, n, p)
    scalar = x.ndim == 0
    points = xp.reshape(x, (1,)) if scalar else x
    per_component = nbinom_logpmf(points[..., None], n[..., None, :], p[..., None, :])
    log_weights = xp.log(weights)[..., None, :]
    out = special.logsumexp(per_component + log_weights, axis=-1)
    return out[..., 0] if scalar else out


def _average_nll(xp: Namespace, log_probs: Array, frequencies: Array | None) -> Array:
    """Mean of ``-log_probs`` over the last axis, weighted by ``frequencies`` when given."""
    if frequencies is None:
        return -xp.mean(log_probs, axis=-1)
    return -xp.sum(log_probs * frequencies, axis=-1) / xp.sum(frequencies)


class _NBDataTerms(NamedTuple):
    """The data's share of the negative binomial likelihood (see :func:`_nb_data_terms`)."""

    counts: Array  # counts in the support (others replaced by 0)
    log_factorials: Array  # log x!
    weights: Array  # frequencies / their total
    mean_count: Array  # Σ w x
    share_positive: Array  # Σ w [x > 0]
    outside_support: Array  # some count with positive weight is negative or not an integer


def _nb_data_terms(
    xp: Namespace, x: Array, frequencies: Array | None, dtype: Any
) -> _NBDataTerms:
    """Normalised weights and the parameter-free parts of the NB log-likelihood.

    ``mean log P = Σ w [lgamma(x + n) - log x!] - lgamma(n) + n log p + x̄ log(1 - p)``:
    only the sum couples the data with the parameters, so a batch of B parameter sets
    costs one ``lgamma`` and two arithmetic operations per (set, count), the rest per set
    or per count.
    """
    x = x if x.dtype == dtype else xp.astype(x, dtype)
    in_support = xp.logical_and(x >= 0, x == xp.floor(x))
    counts = xp.where(in_support, x, xp.zeros_like(x))
    if frequencies is None:
        weights = xp.full_like(counts, 1.0 / int(counts.shape[0]))
    else:
        if frequencies.dtype != dtype:
            frequencies = xp.astype(frequencies, dtype)
        weights = frequencies / xp.sum(frequencies)
    zero = xp.zeros_like(weights)
    return _NBDataTerms(
        counts,
        _special().gammaln(counts + 1.0),
        weights,
        xp.sum(weights * counts),
        xp.sum(xp.where(counts > 0, weights, zero)),
        xp.any(xp.logical_and(xp.logical_not(in_support), weights > 0)),
    )


def _nb_mean_nll(xp: Namespace, n: Array, p: Array, terms: _NBDataTerms) -> Array:
    """Mean NLL for parameters of any batch shape ``S`` (shape ``S``), from the data terms.

    ``lgamma(x + n) - log x!`` is formed per count before the weighted sum: both terms are
    large (about 150 for counts near 50) while their difference is not, so the sum keeps
    the rounding of the small numbers. ``p = 1`` is the point mass at 0 (infinite loss
    once some count is positive); a count outside the support makes every loss infinite.
    Out-of-domain parameters give NaN.
    """
    special = _special()
    # A safe p at the point mass keeps log1p(-p) finite (no warning, no NaN in gradients).
    degenerate = p >= 1
    p_safe = xp.where(degenerate, xp.full_like(p, 0.5), p)
    # reshape, not n[..., None]: autograd cannot add the sparse gradient of an index
    # to the dense gradient of a 0-d array.
    column = xp.reshape(n, (*n.shape, 1))
    rising = special.gammaln(terms.counts + column) - terms.log_factorials
    loglik = (
        xp.sum(terms.weights * rising, axis=-1)
        - special.gammaln(n)
        + n * xp.log(p)
        + terms.mean_count * xp.log1p(-p_safe)
    )
    impossible = xp.logical_or(
        xp.logical_and(degenerate, terms.share_positive > 0), terms.outside_support
    )
    return xp.where(impossible, xp.full_like(loglik, xp.inf), -loglik)


def _nb_natural_value_and_grad(natural: Any, terms: _NBDataTerms) -> tuple[Array, Any]:
    """Mean NLL through the gamma map and its gradient w.r.t. the gamma natural params.

    ``n = α / (1 - β)``, ``p = β`` with ``(α, β) = (η₁ + 1, -η₂)`` (the arithmetic of
    ``Gamma.natural_to_standard`` and the surrogate map). With
    ``f_n = -(Σ w ψ(x + n) - ψ(n) + log p)`` and ``f_p = -n/p + x̄/(1 - p)``:
    ``∂f/∂η₁ = f_n / (1 - β)`` and ``∂f/∂η₂ = -(f_n n / (1 - β) + f_p)``.
    """
    from surrogate_natgrad.families.gamma import GammaNatural

    special = _special()
    xp = namespace(*natural)
    shape = natural.shape_minus_one + 1.0
    rate = -natural.neg_rate
    n = shape / (1 - rate)
    loss = _nb_mean_nll(xp, n, rate, terms)
    column = xp.reshape(n, (*n.shape, 1))
    mean_digamma = xp.sum(terms.weights * special.digamma(terms.counts + column), axis=-1)
    grad_n = -(mean_digamma - special.digamma(n) + xp.log(rate))
    grad_p = -n / rate + terms.mean_count / (1.0 - rate)
    return loss, GammaNatural(grad_n / (1.0 - rate), -(grad_n * n / (1.0 - rate) + grad_p))


def _positive_finite(xp: Namespace, value: Array) -> Array:
    return xp.logical_and(xp.isfinite(value), value > 0)


def _probability(xp: Namespace, value: Array) -> Array:
    return xp.logical_and(value > 0, value <= 1)


def _as_param_array(value: object, like: Array, name: str) -> Array:
    if is_array(value):
        return value
    import array_api_compat.numpy as numpy_xp

    xp = namespace(like) if like is not None else numpy_xp
    return as_float_array(asarray(value, xp, like=like), xp)


def _sampling_rng(seed: object, like: Array) -> Any:
    from surrogate_natgrad import random

    if hasattr(seed, "normal") and hasattr(seed, "uniform") and hasattr(seed, "xp"):
        return seed  # already one of our generators
    return random.default_rng(cast(Any, seed), like=like)


def _nbinom_sample(rng: Any, n: Array, p: Array, shape: tuple[int, ...]) -> Array:
    """Draw negative binomial counts of ``shape`` (``n`` and ``p`` broadcast to it).

    Uses the gamma-Poisson representation when the generator has ``poisson``; otherwise
    inverts the CDF, ``P(K <= k) = I_p(n, k + 1)`` (regularised incomplete beta), by
    bisection over the integers, which needs only uniforms and ``special.betainc``.
    """
    xp = namespace(n, p)
    dtype = float_dtype(xp, n, p)
    n_full = xp.broadcast_to(n, shape)
    p_full = xp.broadcast_to(p, shape)
    if hasattr(rng, "poisson"):
        rates = rng.gamma(n_full, size=shape, dtype=dtype) * (1 - p_full) / p_full
        return xp.astype(rng.poisson(rates), xp.int64)
    special = _special()
    uniforms = rng.uniform(shape, dtype=dtype)

    def cdf(k: Array) -> Array:
        return special.betainc(n_full, k + 1, p_full)

    mean = n_full * (1 - p_full) / p_full
    spread = xp.sqrt(mean / p_full)
    # Bracket: cdf(lower) < u <= cdf(upper), with lower = -1 where cdf is 0.
    lower = xp.full_like(mean, -1.0)
    upper = xp.ceil(mean + 10 * spread + 10)
    for _ in range(200):
        short = cdf(upper) < uniforms
        if not bool(xp.any(short)):
            break
        lower = xp.where(short, upper, lower)
        upper = xp.where(short, 2 * upper + 1, upper)
    for _ in range(200):
        if not bool(xp.any(upper - lower > 1)):
            break
        middle = xp.floor((lower + upper) / 2)
        reached = cdf(middle) >= uniforms
        upper = xp.where(reached, middle, upper)
        lower = xp.where(reached, lower, middle)
    return xp.astype(upper, xp.int64)


def _normalise_shape(size_arg: int | tuple[int, ...]) -> tuple[int, ...]:
    """Check a sample ``size`` (an int or a tuple of ints, none negative) as a tuple."""
    entries = (size_arg,) if not isinstance(size_arg, tuple | list) else tuple(size_arg)
    shape = []
    for entry in entries:
        # operator.index accepts Python and NumPy integers, not floats, bools or strings.
        try:
            extent = operator.index(entry) if not isinstance(entry, bool) else None
        except TypeError:
            extent = None
        if extent is None or extent < 0:
            raise DataError(f"size must be a non-negative int or a tuple of them, got {size_arg!r}")
        shape.append(extent)
    return tuple(shape)


# ----------------------------------------------------------------------------------------
# Negative binomial
# ----------------------------------------------------------------------------------------


class NegativeBinomial(Distribution):
    """Negative binomial distribution NB(n, p), parameterised as ``scipy.stats.nbinom``.

    ``P(k) = C(k + n - 1, k) p^n (1 - p)^k`` for ``k = 0, 1, 2, ...``.

    Parameters
    ----------
    n : array or float
        Number of successes, ``n > 0`` (need not be an integer).
    p : array or float
        Success probability, ``0 < p <= 1``.
    validate : bool, optional
        Check the parameters (default True). Traced values (inside ``autograd.grad`` or a
        JAX transformation) are never checked.

    Raises
    ------
    DomainError
        Naming the parameter, the first offending value and its index.

    Examples
    --------
    >>> import numpy as np
    >>> dist = NegativeBinomial(5.0, 1 / 11)
    >>> round(float(dist.mean()), 9), round(float(dist.var()), 9)
    (50.0, 550.0)
    """

    param_names: ClassVar[tuple[str, ...]] = ("n", "p")
    discrete: ClassVar[bool] = True
    aliases: ClassVar[tuple[str, ...]] = ("nbinom", "negative_binomial", "negative-binomial")

    @classmethod
    def check_data(cls, data: object, name: str = "data") -> Array:
        """Check count data (see :func:`~surrogate_natgrad.distributions.check_counts`).

        Parameters
        ----------
        data : array
            One-dimensional counts.
        name : str, optional
            The argument's name, used in error messages.

        Returns
        -------
        array
            The counts as a floating array of their namespace and device.
        """
        return check_counts(data, name)

    @classmethod
    def check_start(cls, params: Mapping[str, Array]) -> None:
        """Require ``p < 1`` (the fit uses ``logit p`` and the gamma rate ``β = p < 1``).

        Parameters
        ----------
        params : mapping of str to array
            A valid parameter set.

        Raises
        ------
        DomainError
            If some ``p`` equals 1, or (mixtures) some weight is zero.
        """
        xp = namespace(*params.values())
        if bool(xp.any(params["p"] >= 1)):
            raise DomainError(
                "init: parameter 'p' must be below 1 to start a fit (p = 1 is a point mass at 0)"
            )
        if "weights" in params and bool(xp.any(params["weights"] <= 0)):
            raise DomainError("init: every mixture weight must be positive to start a fit")

    @classmethod
    def boundary_message(cls, params: Mapping[str, Array]) -> str | None:
        """Report components whose ``p`` has reached the Poisson limit ``p -> 1``.

        ``p >= 1 - eps**(1/4)`` (about ``1 - 1.2e-4`` in float64) counts as the limit: the
        variance then exceeds the mean by less than that fraction, indistinguishable from
        a Poisson law, and the likelihood keeps rising only as ``n -> inf``.

        Parameters
        ----------
        params : mapping of str to array
            The fitted parameters.

        Returns
        -------
        str or None
            Which components reached the limit, with their ``p`` and mean.
        """
        xp = namespace(params["n"], params["p"])
        n, p = xp.broadcast_arrays(params["n"], params["p"])
        limit = 1 - dtype_eps(xp, p.dtype) ** 0.25
        # Reporting only: a few scalars come to the host.
        flat_p = to_numpy(xp.reshape(p, (-1,))).tolist()
        flat_mean = to_numpy(xp.reshape(n * (1 - p) / p, (-1,))).tolist()
        at_limit = [i for i, value in enumerate(flat_p) if value >= limit]
        if not at_limit:
            return None
        parts = [
            (f"component {i} " if len(flat_p) > 1 else "")
            + f"has p = {flat_p[i]:.9g} (mean {flat_mean[i]:.6g})"
            for i in at_limit
        ]
        return (
            "; ".join(parts)
            + ": the data are not over-dispersed there and the maximum-likelihood estimate "
            "is the Poisson limit p -> 1, n -> inf"
        )

    @classmethod
    def surrogate_map_for(cls, params: Mapping[str, Array]) -> Any:
        """The gamma surrogate map (see :meth:`surrogate_map`); ``params`` is not needed."""
        return cls.surrogate_map()

    @classmethod
    def closed_form_backend(
        cls, data: Array, frequencies: Array | None = None, *, form: str = "mle"
    ) -> Any:
        """An autodiff backend with the closed-form gradient of :meth:`mean_nll` on ``data``.

        :func:`~surrogate_natgrad.fit` uses it for full-batch SNGD fits of NumPy data when
        no ``backend`` is given: the gradient through the gamma surrogate map is a digamma
        sum, cheaper than tracing the likelihood with autograd. Its losses are computed
        exactly as by :meth:`mean_nll`, so the line search compares like with like.

        Parameters
        ----------
        data : array
            Counts (distinct values when ``frequencies`` is given).
        frequencies : array, optional
            How often each value of ``data`` occurs.
        form : {"mle", "vi", "unconstrained"}, optional
            The coordinates of the gradient: ``"mle"`` (SNGD's MLE form, gamma natural
            parameters); the others come from
            :func:`surrogate_natgrad.closed_form.negative_binomial_mle`.

        Returns
        -------
        surrogate_natgrad.autodiff.CustomGradient
            The backend to pass to the update rule; it differentiates only this objective.
        """
        from surrogate_natgrad import closed_form
        from surrogate_natgrad.autodiff import CustomGradient
        from surrogate_natgrad.families.gamma import GammaNatural

        if form != "mle":
            return closed_form.negative_binomial_mle(data, frequencies, form=form).backend
        counts = check_counts(data, "data")
        xp = namespace(data=counts, frequencies=frequencies)
        terms = _nb_data_terms(xp, counts, frequencies, counts.dtype)

        def value_and_grad(natural: Any) -> tuple[Array, Any]:
            if not isinstance(natural, GammaNatural):
                raise DataError(
                    "this gradient is with respect to GammaNatural parameters (SNGD's MLE "
                    f"form); got {type(natural).__name__}"
                )
            return _nb_natural_value_and_grad(natural, terms)

        return CustomGradient(value_and_grad=value_and_grad)

    def __init__(self, n: object, p: object, *, validate: bool = True) -> None:
        self._init_params({"n": n, "p": p}, validate)

    def _validate(self) -> None:
        name = type(self).__name__
        check_float_precision(self.xp, self.dtype, f"the parameters of {name}")
        check_parameter("n", self._params["n"], _positive_finite, "positive and finite", name)
        check_parameter("p", self._params["p"], _probability, "in (0, 1]", name)
        xp = self.xp
        try:
            xp.broadcast_arrays(self._params["n"], self._params["p"])
        except ValueError as exc:
            raise DomainError(
                f"parameters 'n' and 'p' of {name} do not broadcast: shapes "
                f"{tuple(self._params['n'].shape)} and {tuple(self._params['p'].shape)}"
            ) from exc

    @staticmethod
    def log_prob_from_params(params: Mapping[str, Array], x: Array) -> Array:
        """Log-mass of ``x`` for parameters ``{"n": ..., "p": ...}`` (see :func:`nbinom_logpmf`).

        Parameters
        ----------
        params : mapping
            ``n`` and ``p``, possibly with leading batch axes.
        x : array
            Counts.

        Returns
        -------
        array
            Broadcast log-probabilities.
        """
        return nbinom_logpmf(x, params["n"], params["p"])

    @staticmethod
    def mean_nll(
        params: Mapping[str, Array],
        x: Array,
        frequencies: Array | None = None,
        *,
        max_elements: int = 2**22,
    ) -> Array:
        """Mean negative log-likelihood of the data ``x`` for each parameter set.

        Parameters
        ----------
        params : mapping
            ``n`` and ``p`` of any batch shape ``S`` (``()`` for one parameter set).
        x : array
            Counts, shape ``(N,)``.
        frequencies : array, optional
            How often each value of ``x`` occurs (shape ``(N,)``): count data compressed to
            their distinct values give the same loss at a fraction of the cost.
        max_elements : int, optional
            A leading batch axis is evaluated in chunks so that no intermediate array has
            more than about this many elements (a grid line search evaluates 1000
            parameter sets at once).

        Returns
        -------
        array
            Shape ``S``: ``-mean_i log P(x_i)`` per parameter set.
        """
        n, p = params["n"], params["p"]
        xp = namespace(x, n, p)
        terms = _nb_data_terms(xp, x, frequencies, float_dtype(xp, n, p))

        def loss(chunk_n: Array, chunk_p: Array) -> Array:
            return _nb_mean_nll(xp, chunk_n, chunk_p, terms)

        count = int(x.shape[0])
        if n.ndim == 0 or int(n.shape[0]) * count <= max_elements:
            return loss(n, p)
        rows = max(1, max_elements // count)
        pieces = [
            loss(n[start : start + rows, ...], p[start : start + rows, ...])
            for start in range(0, int(n.shape[0]), rows)
        ]
        return xp.concat(pieces, axis=0)

    @staticmethod
    def pointwise_log_prob(params: Mapping[str, Array], x: Array) -> Array:
        """Log-mass of each ``x[i]`` under its own parameters ``params[...][i]`` (or shared).

        Parameters
        ----------
        params : mapping
            ``n`` and ``p`` of shape ``(N,)`` (one set per point) or ``()``.
        x : array
            Counts, shape ``(N,)``.

        Returns
        -------
        array
            Shape ``(N,)``.
        """
        return nbinom_logpmf(x, params["n"], params["p"])

    def mean(self) -> Array:
        """Mean ``n (1 - p) / p``."""
        n, p = self._params["n"], self._params["p"]
        return n * (1 - p) / p

    def var(self) -> Array:
        """Variance ``n (1 - p) / p**2``."""
        n, p = self._params["n"], self._params["p"]
        return n * (1 - p) / (p * p)

    def sample(self, size: int | tuple[int, ...] = (), *, seed: object = None) -> Array:
        """Draw counts.

        Parameters
        ----------
        size : int or tuple of int, optional
            Leading shape of the sample; the result has shape ``size + batch_shape``.
        seed : int, generator or None, optional
            Seed or a :func:`surrogate_natgrad.random.default_rng` generator.

        Returns
        -------
        array
            Integer (int64) counts in the parameters' namespace and device.
        """
        n, p = self._params["n"], self._params["p"]
        xp = self.xp
        batch = tuple(xp.broadcast_arrays(n, p)[0].shape)
        shape = _normalise_shape(size) + batch
        return _nbinom_sample(_sampling_rng(seed, n), n, p, shape)

    @classmethod
    def from_moments(cls, mean: object, var: object) -> NegativeBinomial:
        """The negative binomial with the given mean and variance.

        Parameters
        ----------
        mean : array or float
            Mean, positive.
        var : array or float
            Variance, larger than the mean (a negative binomial is over-dispersed).

        Returns
        -------
        NegativeBinomial
            ``p = mean / var``, ``n = mean**2 / (var - mean)``.

        Raises
        ------
        DomainError
            If ``mean <= 0`` or ``var <= mean``, naming the argument.
        """
        like = mean if is_array(mean) else var if is_array(var) else None
        mean_arr = _as_param_array(mean, like, "mean")
        var_arr = _as_param_array(var, like, "var")
        check_parameter("mean", mean_arr, _positive_finite, "positive and finite", cls.__name__)
        xp = namespace(mean_arr, var_arr)
        over = xp.logical_and(xp.isfinite(var_arr), var_arr > mean_arr)
        check_parameter(
            "var",
            var_arr,
            lambda _xp, _v: over,
            "finite and larger than the mean (a negative binomial is over-dispersed)",
            cls.__name__,
        )
        return cls(mean_arr * mean_arr / (var_arr - mean_arr), mean_arr / var_arr)

    @classmethod
    def from_data(cls, data: Array) -> NegativeBinomial:  # type: ignore[override]
        """Method-of-moments estimate from counts, with a safe over-dispersed fallback.

        Parameters
        ----------
        data : array
            One-dimensional counts (checked as by :func:`surrogate_natgrad.fit`).

        Returns
        -------
        NegativeBinomial
            Matches the sample mean and variance; where the sample variance does not
            exceed the mean (under-dispersed data, which a negative binomial cannot fit
            exactly) the variance is taken as twice the mean (``p = 1/2``). A zero mean
            (all counts zero) is replaced by ``1 / (2 N)``.
        """
        counts = check_counts(data, "data")
        mean, var = _safe_moments(counts, xp=namespace(counts))
        return cls(mean * mean / (var - mean), mean / var)

    @staticmethod
    def to_unconstrained(params: Mapping[str, Array]) -> dict[str, Array]:
        """Map ``{"n", "p"}`` to unconstrained ``{"log_n", "logit_p"}`` (for the baselines).

        Parameters
        ----------
        params : mapping
            ``n > 0`` and ``0 < p < 1``.

        Returns
        -------
        dict
            ``log_n = log n``, ``logit_p = log p - log(1 - p)``.
        """
        xp = namespace(params["n"], params["p"])
        p = params["p"]
        return {"log_n": xp.log(params["n"]), "logit_p": xp.log(p) - xp.log1p(-p)}

    @staticmethod
    def from_unconstrained(coords: Mapping[str, Array]) -> dict[str, Array]:
        """Inverse of :meth:`to_unconstrained`.

        Parameters
        ----------
        coords : mapping
            ``log_n`` and ``logit_p``, any real values.

        Returns
        -------
        dict
            ``{"n": exp(log_n), "p": sigmoid(logit_p)}``.
        """
        xp = namespace(coords["log_n"], coords["logit_p"])
        special = _special()
        return {
            "n": xp.exp(coords["log_n"]),
            "p": xp.exp(special.log_sigmoid(coords["logit_p"])),
        }

    @staticmethod
    def surrogate_map() -> Any:
        """The surrogate map NB(n, p) ↔ Gamma(α, β): ``p = β``, ``n = α / (1 - β)``.

        Returns
        -------
        surrogate_natgrad.maps.SurrogateMap
            Over :class:`surrogate_natgrad.families.Gamma`; the target is out of domain
            (NaN) unless ``α > 0`` and ``0 < β < 1``.
        """
        from surrogate_natgrad.distributions._maps import negative_binomial_map

        return negative_binomial_map()


# ----------------------------------------------------------------------------------------
# Mixture of negative binomials
# ----------------------------------------------------------------------------------------


def _safe_moments(counts: Array, xp: Namespace) -> tuple[Array, Array]:
    """Sample mean and variance made valid for a negative binomial start."""
    count = size(counts)
    mean = xp.mean(counts)
    var = xp.mean((counts - mean) ** 2)
    floor = xp.full_like(mean, 0.5 / count)
    mean = xp.where(mean > 0, mean, floor)
    # Under-dispersed (or nearly Poisson) data: fall back to var = 2 * mean, p = 1/2.
    var = xp.where(var > 1.05 * mean, var, 2 * mean)
    return mean, var


class NegativeBinomialMixture(Distribution):
    """Mixture of K negative binomials, ``Σ_k w_k NB(n_k, p_k)``.

    Parameters
    ----------
    weights : array
        Mixture weights, shape ``(..., K)``: non-negative, summing to one over the last axis.
    n : array
        Component numbers of successes, shape ``(..., K)``, positive.
    p : array
        Component success probabilities, shape ``(..., K)``, in ``(0, 1]``.
    validate : bool, optional
        Check the parameters (default True).

    Raises
    ------
    DomainError
        Naming the parameter, the first offending value and its index.

    Examples
    --------
    >>> import numpy as np
    >>> dist = NegativeBinomialMixture(
    ...     np.array([0.3, 0.7]), np.array([2.0, 5.0]), np.array([0.5, 0.1])
    ... )
    >>> dist.component_means().tolist()  # n (1 - p) / p
    [2.0, 45.0]
    >>> round(float(dist.mean()), 9)  # 0.3 · 2 + 0.7 · 45
    32.1
    """

    param_names: ClassVar[tuple[str, ...]] = ("weights", "n", "p")
    discrete: ClassVar[bool] = True
    fit_options: ClassVar[tuple[str, ...]] = ("n_components",)
    aliases: ClassVar[tuple[str, ...]] = (
        "nbinom-mixture",
        "nbinom_mixture",
        "negative_binomial_mixture",
    )
    check_data = NegativeBinomial.check_data
    check_start = NegativeBinomial.check_start
    boundary_message = NegativeBinomial.boundary_message

    @classmethod
    def surrogate_map_for(cls, params: Mapping[str, Array]) -> Any:
        """The joint gamma-mixture map sized for the K components of ``params``.

        Parameters
        ----------
        params : mapping of str to array
            Mixture parameters (``weights`` of shape ``(K,)``).

        Returns
        -------
        surrogate_natgrad.maps.SurrogateMap
        """
        return cls.surrogate_map(int(params["weights"].shape[-1]))

    @classmethod
    def default_grid_size(cls, params: Mapping[str, Array]) -> int:
        """``max(100, 1000 // K)``: each candidate costs K times a single NB's."""
        return max(100, 1000 // int(params["weights"].shape[-1]))

    def __init__(self, weights: object, n: object, p: object, *, validate: bool = True) -> None:
        self._init_params({"weights": weights, "n": n, "p": p}, validate)

    @property
    def n_components(self) -> int:
        """int: the number of components K."""
        return int(self._params["weights"].shape[-1])

    def _validate(self) -> None:
        name = type(self).__name__
        params = self._params
        check_float_precision(self.xp, self.dtype, f"the parameters of {name}")
        for key in self.param_names:
            if params[key].ndim < 1:
                raise DomainError(
                    f"parameter '{key}' of {name} must have a component axis (shape (..., K)); "
                    "got a scalar"
                )
        shapes = {key: tuple(params[key].shape) for key in self.param_names}
        if len({shape[-1] for shape in shapes.values()}) != 1:
            raise DomainError(
                f"parameters of {name} must have the same number of components K on the "
                f"last axis; got shapes {shapes}"
            )
        xp = self.xp
        check_parameter(
            "weights",
            params["weights"],
            lambda xp_, w: xp_.logical_and(xp_.isfinite(w), w >= 0),
            "non-negative and finite",
            name,
        )
        weights = params["weights"]
        tol = dtype_tolerance(xp, weights.dtype, power=0.5, factor=float(weights.shape[-1]))
        total = xp.sum(weights, axis=-1)
        check_parameter(
            "weights",
            total,
            lambda xp_, s: xp_.abs(s - 1) <= tol,
            f"summing to one over the last axis (to within {tol:.1e}); the sums",
            name,
        )
        check_parameter("n", params["n"], _positive_finite, "positive and finite", name)
        check_parameter("p", params["p"], _probability, "in (0, 1]", name)

    @staticmethod
    def log_prob_from_params(params: Mapping[str, Array], x: Array) -> Array:
        """Log-mass of ``x`` for ``{"weights", "n", "p"}`` (see :func:`nbinom_mixture_logpmf`).

        Parameters
        ----------
        params : mapping
            ``weights``, ``n`` and ``p`` of shape ``(..., K)``.
        x : array
            Counts of shape ``(N,)``.

        Returns
        -------
        array
            Shape ``(..., N)``.
        """
        return nbinom_mixture_logpmf(x, params["weights"], params["n"], params["p"])

    @staticmethod
    def mean_nll(
        params: Mapping[str, Array],
        x: Array,
        frequencies: Array | None = None,
        *,
        max_elements: int = 2**22,
    ) -> Array:
        """Mean negative log-likelihood of the data ``x`` for each parameter set.

        Parameters
        ----------
        params : mapping
            ``weights``, ``n`` and ``p`` of shape ``S + (K,)``.
        x : array
            Counts, shape ``(N,)``.
        frequencies : array, optional
            How often each value of ``x`` occurs (see :meth:`NegativeBinomial.mean_nll`).
        max_elements : int, optional
            A leading batch axis is evaluated in chunks so that no intermediate array has
            more than about this many elements (a grid line search evaluates 1000
            parameter sets at once).

        Returns
        -------
        array
            Shape ``S``.
        """
        weights = params["weights"]
        xp = namespace(x, weights, params["n"], params["p"])

        def loss(chunk: Mapping[str, Array]) -> Array:
            log_probs = nbinom_mixture_logpmf(x, chunk["weights"], chunk["n"], chunk["p"])
            return _average_nll(xp, log_probs, frequencies)

        count = int(x.shape[0]) * int(weights.shape[-1])
        if weights.ndim < 2 or int(weights.shape[0]) * count <= max_elements:
            return loss(params)
        rows = max(1, max_elements // count)
        pieces = [
            loss({key: value[start : start + rows, ...] for key, value in params.items()})
            for start in range(0, int(weights.shape[0]), rows)
        ]
        return xp.concat(pieces, axis=0)

    @staticmethod
    def pointwise_log_prob(params: Mapping[str, Array], x: Array) -> Array:
        """Log-mass of each ``x[i]`` under its own parameters (or shared ones).

        Parameters
        ----------
        params : mapping
            ``weights``, ``n``, ``p`` of shape ``(N, K)`` (one set per point) or ``(K,)``.
        x : array
            Counts, shape ``(N,)``.

        Returns
        -------
        array
            Shape ``(N,)``.
        """
        special = _special()
        xp = namespace(x, params["weights"])
        per_component = nbinom_logpmf(x[..., None], params["n"], params["p"])
        return special.logsumexp(per_component + xp.log(params["weights"]), axis=-1)

    def component_means(self) -> Array:
        """Means of the components, shape ``(..., K)``.

        Returns
        -------
        array, shape (..., K)
            ``n_k (1 - p_k) / p_k``.
        """
        n, p = self._params["n"], self._params["p"]
        return n * (1 - p) / p

    def component_vars(self) -> Array:
        """Variances of the components, shape ``(..., K)``.

        Returns
        -------
        array, shape (..., K)
            ``n_k (1 - p_k) / p_k²``.
        """
        n, p = self._params["n"], self._params["p"]
        return n * (1 - p) / (p * p)

    def mean(self) -> Array:
        """Mean ``Σ_k w_k μ_k``."""
        return self.xp.sum(self._params["weights"] * self.component_means(), axis=-1)

    def var(self) -> Array:
        """Variance ``Σ_k w_k (σ_k² + μ_k²) - mean²`` (law of total variance)."""
        means = self.component_means()
        second = self.xp.sum(self._params["weights"] * (self.component_vars() + means**2), axis=-1)
        total_mean = self.mean()
        return second - total_mean * total_mean

    def sample(self, size: int | tuple[int, ...] = (), *, seed: object = None) -> Array:
        """Draw counts: a component by its weight, then a count from that component.

        Parameters
        ----------
        size : int or tuple of int, optional
            Shape of the sample (only unbatched mixtures, parameters of shape ``(K,)``).
        seed : int, generator or None, optional
            Seed or a :func:`surrogate_natgrad.random.default_rng` generator.

        Returns
        -------
        array
            Integer (int64) counts of shape ``size``.
        """
        params = self._params
        if params["weights"].ndim != 1:
            raise NotImplementedError("sampling supports unbatched mixtures (parameters (K,))")
        xp = self.xp
        shape = _normalise_shape(size)
        rng = _sampling_rng(seed, params["n"])
        total = 1
        for extent in shape:
            total *= extent
        components = rng.choice(self.n_components, size=(total,), p=params["weights"])
        components = xp.astype(components, xp.int64)
        n = xp.take(params["n"], components, axis=0)
        p = xp.take(params["p"], components, axis=0)
        draws = _nbinom_sample(rng, n, p, (total,))
        return xp.reshape(draws, shape)

    @classmethod
    def from_moments(
        cls, mean: object, var: object, weights: object = None
    ) -> NegativeBinomialMixture:
        """The mixture whose components have the given means and variances.

        Parameters
        ----------
        mean : array
            Component means, shape ``(K,)``, positive.
        var : array
            Component variances, shape ``(K,)``, each larger than its mean.
        weights : array, optional
            Mixture weights; equal weights when omitted.

        Returns
        -------
        NegativeBinomialMixture

        Raises
        ------
        DomainError
            If a mean is not positive or a variance does not exceed its mean.
        """
        components = NegativeBinomial.from_moments(mean, var)
        n, p = components.params["n"], components.params["p"]
        xp = namespace(n)
        if n.ndim < 1:
            n, p = xp.reshape(n, (1,)), xp.reshape(p, (1,))
        if weights is None:
            weights = xp.full_like(n, 1.0 / n.shape[-1])
        elif not is_array(weights):
            weights = asarray(weights, xp, dtype=n.dtype, like=n)
        return cls(weights, n, p)

    @classmethod
    def from_data(  # type: ignore[override]
        cls, data: Array, n_components: int | None = None
    ) -> NegativeBinomialMixture:
        """A deterministic, quantile-based start for fitting a K-component mixture.

        The sorted counts are cut into K groups of (almost) equal size; each group gives a
        component by the method of moments (with the over-dispersed fallback of
        :meth:`NegativeBinomial.from_data`), weighted by its share of the data.

        Parameters
        ----------
        data : array
            One-dimensional counts.
        n_components : int
            The number of components K (at most the number of counts).

        Returns
        -------
        NegativeBinomialMixture

        Raises
        ------
        DataError
            If ``data`` is not valid count data or has fewer than K counts.
        """
        if n_components is None:
            raise DataError("n_components is needed to start a mixture fit from the data")
        # operator.index accepts Python and NumPy integers, not floats, bools or strings.
        try:
            count = operator.index(n_components) if not isinstance(n_components, bool) else 0
        except TypeError:
            count = 0
        if count < 1:
            raise DataError(f"n_components must be a positive integer; got {n_components!r}")
        n_components = count
        counts = check_counts(data, "data")
        xp = namespace(counts)
        total = size(counts)
        if total < n_components:
            raise DataError(
                f"data has {total} counts, fewer than the {n_components} mixture components"
            )
        ordered = xp.sort(counts)
        edges = [round(i * total / n_components) for i in range(n_components + 1)]
        means, variances, shares = [], [], []
        for start, stop in itertools.pairwise(edges):
            group = ordered[start:stop]
            mean = xp.mean(group)
            var = xp.mean((group - mean) ** 2)
            # Within a quantile group the spread is truncated; widen it so every component
            # starts over-dispersed (p <= 1/2) with a positive mean.
            mean = xp.where(mean > 0, mean, xp.full_like(mean, 0.5 / total))
            var = xp.maximum(var, 2 * mean)
            means.append(mean)
            variances.append(var)
            shares.append((stop - start) / total)
        mean_arr = xp.stack(means)
        var_arr = xp.stack(variances)
        weights = asarray(shares, xp, dtype=mean_arr.dtype, like=mean_arr)
        return cls(weights, mean_arr * mean_arr / (var_arr - mean_arr), mean_arr / var_arr)

    @staticmethod
    def to_unconstrained(params: Mapping[str, Array]) -> dict[str, Array]:
        """Map ``{"weights", "n", "p"}`` to ``{"logits", "log_n", "logit_p"}``.

        Parameters
        ----------
        params : mapping
            Mixture parameters with positive weights and ``0 < p < 1``.

        Returns
        -------
        dict
            ``logits = log weights`` (softmax recovers the weights), ``log n``, ``logit p``.
        """
        xp = namespace(params["weights"])
        out = NegativeBinomial.to_unconstrained(params)
        out["logits"] = xp.log(params["weights"])
        return out

    @staticmethod
    def from_unconstrained(coords: Mapping[str, Array]) -> dict[str, Array]:
        """Inverse of :meth:`to_unconstrained` (weights by a softmax of the logits).

        Parameters
        ----------
        coords : mapping
            ``logits``, ``log_n`` and ``logit_p``, shape ``(..., K)``.

        Returns
        -------
        dict
            ``{"weights", "n", "p"}``.
        """
        special = _special()
        xp = namespace(coords["logits"])
        logits = coords["logits"]
        log_weights = logits - special.logsumexp(logits, axis=-1, keepdims=True)
        out = NegativeBinomial.from_unconstrained(coords)
        return {"weights": xp.exp(log_weights), "n": out["n"], "p": out["p"]}

    @staticmethod
    def surrogate_map(n_components: int) -> Any:
        """The surrogate map to the joint gamma mixture (component-wise NB ↔ gamma).

        Parameters
        ----------
        n_components : int
            The number of components K.

        Returns
        -------
        surrogate_natgrad.maps.SurrogateMap
            Over ``Mixture(Gamma(), K)`` with minimal weights.
        """
        from surrogate_natgrad.distributions._maps import negative_binomial_mixture_map

        return negative_binomial_mixture_map(n_components)
