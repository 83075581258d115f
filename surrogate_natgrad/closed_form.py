"""Closed-form objectives and gradients, for array libraries without autodiff (CuPy).

CuPy has no automatic differentiation. The library normally differentiates CuPy arrays
through a zero-copy DLPack bridge to torch or JAX on the same GPU
(:class:`~surrogate_natgrad.autodiff.DLPackBridge`); for the two problems below the
gradients are known in closed form, so no second framework is needed at all:

* **Gaussian maximum likelihood** (mean and covariance from data). With
  ``T(x) = (x, xxᵀ)`` and the data's average statistics ``T̄``, the mean negative
  log-likelihood is ``f(η) = A(η) - ⟨η, T̄⟩``, so the gradient with respect to the natural
  parameters is ``m(η) - T̄`` (moment mismatch). The gradient with respect to the mean
  parameters follows from the Gaussian's covariance algebra (no matrix inverse is formed
  beyond one Cholesky factor).
* **Negative binomial maximum likelihood through the gamma surrogate map**
  ``n = α / (1 - β)``, ``p = β``: the NB log-likelihood's derivatives are digamma sums,
  and mean → natural goes through the root ``ψ(α) - log α = m₁ - log m₂`` whose derivative
  is ``1 / (ψ′(α) - 1/α)`` by the implicit-function theorem.

Each problem is offered two ways:

* plain functions ``..._value_and_grad(params, ...) -> (loss, grad)``;
* a :class:`ClosedFormProblem`, i.e. the pair ``(objective, backend)`` ready for the update
  rules: ``objective`` evaluates the loss on *target* parameters (the rules call it in line
  searches) and ``backend`` is an :class:`~surrogate_natgrad.autodiff.CustomGradient` that
  supplies the gradient in the coordinates the rule differentiates (natural parameters for
  SNGD's ``"mle"`` form, mean parameters for its ``"vi"`` form, unconstrained coordinates
  for the baselines).

Examples
--------
SNGD fitting a Gaussian to data on array-api-strict, which has no autodiff at all:

>>> import array_api_strict as xp
>>> from surrogate_natgrad import closed_form, families, maps, rules
>>> data = xp.asarray([[0.0, 1.0], [2.0, 1.0], [1.0, 4.0]])
>>> problem = closed_form.gaussian_mle(data)
>>> rule = rules.SNGD(maps.identity_map(families.Gaussian(2)), backend=problem.backend)
>>> state = rule.init(families.GaussianStandard(xp.zeros(2), xp.eye(2)))
>>> state, info = rule.step(state, problem.objective)
>>> [float(v) for v in rule.standard_params(state).mean]   # moment matching at step 1
[1.0, 2.0]

Pure math (layer 3): array API plus :mod:`surrogate_natgrad.special` and
:mod:`surrogate_natgrad._compat.linalg`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from surrogate_natgrad import special
from surrogate_natgrad._compat import (
    Array,
    Namespace,
    as_float_array,
    float_dtype,
    linalg,
    namespace,
    size,
    to_numpy,
)
from surrogate_natgrad.autodiff import CustomGradient
from surrogate_natgrad.errors import BackendError, DataError
from surrogate_natgrad.families.gamma import (
    Gamma,
    GammaMean,
    GammaNatural,
    _digamma_minus_log_derivative,
)
from surrogate_natgrad.families.gaussian import GaussianMean, GaussianNatural, GaussianStandard

__all__ = [
    "FORMS",
    "ClosedFormProblem",
    "GaussianStatistics",
    "NegativeBinomialData",
    "gaussian_mean_value_and_grad",
    "gaussian_mle",
    "gaussian_natural_value_and_grad",
    "gaussian_nll",
    "gaussian_statistics",
    "negative_binomial_data",
    "negative_binomial_mean_value_and_grad",
    "negative_binomial_mle",
    "negative_binomial_natural_value_and_grad",
    "negative_binomial_nll",
    "negative_binomial_unconstrained_value_and_grad",
]

#: The coordinates a :class:`ClosedFormProblem` can differentiate in: ``"mle"`` (natural
#: parameters, what SNGD's MLE form differentiates), ``"vi"`` (mean parameters, SNGD's VI
#: form) and, for the negative binomial, ``"unconstrained"`` (``log n``, ``logit p``: the
#: coordinates of the gradient-descent, Adam and BFGS baselines).
FORMS = ("mle", "vi", "unconstrained")

_LOG_2PI = math.log(2.0 * math.pi)


class ClosedFormProblem(NamedTuple):
    """An objective and its closed-form gradient, ready for the update rules.

    Attributes
    ----------
    objective : callable
        ``objective(target_params) -> 0-d array``: the loss on target parameters, as the
        rules' ``step(state, objective)`` expects (evaluated in line searches).
    backend : CustomGradient
        Pass it as the rule's ``backend``: it returns the loss and its gradient in the
        coordinates the rule differentiates (see :data:`FORMS`).
    form : str
        The form the gradient is for (one of :data:`FORMS`).
    """

    objective: Callable[[Any], Array]
    backend: CustomGradient
    form: str


def _check_form(form: str, allowed: tuple[str, ...]) -> None:
    if form not in allowed:
        raise DataError(f"form must be one of {allowed!r}, got {form!r}")


def _first_bad_index(bad: Array) -> int:
    """Index (flat, row-major) of the first True entry; for error messages only."""
    return int(to_numpy(bad).reshape(-1).nonzero()[0][0])


def _wrong_coordinates(expected: str, got: object, form: str) -> BackendError:
    return BackendError(
        f"this closed-form gradient (form={form!r}) differentiates {expected}, but the "
        f"rule passed {type(got).__name__}; build it with the form the rule uses "
        "(SNGD(form='mle') -> form='mle', SNGD(form='vi') -> form='vi')"
    )


# ----------------------------------------------------------------------------------------
# Gaussian maximum likelihood
# ----------------------------------------------------------------------------------------


class GaussianStatistics(NamedTuple):
    """Sufficient statistics of Gaussian data: the sample mean and (biased) covariance.

    Attributes
    ----------
    mean : array, shape (d,)
        ``x̄ = mean_i x_i``.
    cov : array, shape (d, d)
        ``Ĉ = mean_i (x_i - x̄)(x_i - x̄)ᵀ`` (divided by ``N``: the maximum-likelihood
        covariance).
    """

    mean: Array
    cov: Array


def gaussian_statistics(data: Array) -> GaussianStatistics:
    """Return the sample mean and covariance of ``data`` (computed once, on its device).

    Parameters
    ----------
    data : array, shape (N, d)
        Observations in rows; integer data are promoted to float64, float32 stays float32.

    Returns
    -------
    GaussianStatistics

    Raises
    ------
    DataError
        If ``data`` is not two-dimensional, is empty, or holds a NaN or infinite value
        (the message gives the first one and its row and column).
    BackendError
        If ``data`` is not an array.
    """
    xp = namespace(data=data)
    if data.ndim != 2:
        raise DataError(
            f"data must be a two-dimensional array (observations in rows); got shape "
            f"{tuple(data.shape)}"
        )
    if size(data) == 0:
        raise DataError(f"data is empty (shape {tuple(data.shape)}); at least one row is needed")
    values = as_float_array(data, xp)
    bad = xp.logical_not(xp.isfinite(values))
    if bool(xp.any(bad)):
        flat = _first_bad_index(bad)
        row, column = divmod(flat, int(values.shape[1]))
        value = to_numpy(values)[row, column].item()
        raise DataError(f"data must be finite; found {value!r} at row {row}, column {column}")
    mean = xp.mean(values, axis=0)
    centred = values - mean
    cov = (xp.linalg.matrix_transpose(centred) @ centred) / float(values.shape[0])
    return GaussianStatistics(mean, linalg.symmetrize(cov))


def _gaussian_namespace(params: Any, statistics: GaussianStatistics, names: tuple[str, str]) -> Any:
    return namespace(
        **{names[0]: params[0], names[1]: params[1]},
        statistics_mean=statistics.mean,
        statistics_cov=statistics.cov,
    )


def _gaussian_nll_from_precision(
    xp: Namespace,
    logdet_precision: Array,
    precision: Array,
    residual_quadratic: Array,
    statistics: GaussianStatistics,
) -> Array:
    """``½[d log 2π - log|P| + tr(P Ĉ) + (x̄ - μ)ᵀ P (x̄ - μ)]``."""
    dim = int(statistics.mean.shape[-1])
    trace = xp.sum(precision * statistics.cov, axis=(-2, -1))
    return 0.5 * (dim * _LOG_2PI - logdet_precision + trace + residual_quadratic)


def gaussian_nll(standard: GaussianStandard, statistics: GaussianStatistics) -> Array:
    """Mean negative log-likelihood of the data behind ``statistics`` under ``N(μ, Σ)``.

    Parameters
    ----------
    standard : GaussianStandard
        Mean ``(..., d)`` and covariance ``(..., d, d)`` (symmetrised before use).
    statistics : GaussianStatistics
        From :func:`gaussian_statistics`.

    Returns
    -------
    array, shape (...)
        ``½[d log 2π + log|Σ| + tr(Σ⁻¹Ĉ) + (x̄ - μ)ᵀΣ⁻¹(x̄ - μ)]``; NaN where ``Σ`` is not
        positive definite.
    """
    xp = _gaussian_namespace(standard, statistics, ("mean", "cov"))
    chol = linalg.cholesky(linalg.symmetrize(standard.cov))
    precision = linalg.cho_inverse(chol)
    residual = statistics.mean - standard.mean
    # |L⁻¹ r|² = rᵀ Σ⁻¹ r
    whitened = linalg.solve_triangular(chol, residual[..., None], lower=True)[..., 0]
    quadratic = xp.sum(whitened * whitened, axis=-1)
    return _gaussian_nll_from_precision(
        xp, -linalg.logdet_from_cholesky(chol), precision, quadratic, statistics
    )


def gaussian_natural_value_and_grad(
    natural: GaussianNatural, statistics: GaussianStatistics
) -> tuple[Array, GaussianNatural]:
    """Mean Gaussian NLL and its gradient with respect to the natural parameters.

    ``f(η) = A(η) - ⟨η, T̄⟩``, so ``∇_h f = μ - x̄`` and
    ``∇_J f = (Σ + μμᵀ) - (Ĉ + x̄x̄ᵀ)`` (symmetric): the moment mismatch. This is the
    direction of SNGD's MLE form (and ``m - ∇_η f = T̄``: a unit step is moment matching).

    Parameters
    ----------
    natural : GaussianNatural
        ``(Σ⁻¹μ, -½Σ⁻¹)``; the matrix block is symmetrised before use.
    statistics : GaussianStatistics
        From :func:`gaussian_statistics`, in the same namespace and on the same device.

    Returns
    -------
    loss : array, shape (...)
        The mean negative log-likelihood.
    grad : GaussianNatural
        Its gradient (full symmetric matrix block).

    Raises
    ------
    BackendError
        If the parameters and statistics come from different libraries or devices.
    """
    xp = _gaussian_namespace(natural, statistics, ("precision_mean", "neg_half_precision"))
    precision = -2.0 * linalg.symmetrize(natural.neg_half_precision)
    chol = linalg.cholesky(precision)
    cov = linalg.cho_inverse(chol)
    mean = linalg.cho_solve(chol, natural.precision_mean[..., None])[..., 0]
    residual = statistics.mean - mean
    # |Lᵀ r|² = rᵀ P r with P = L Lᵀ
    projected = xp.sum(chol * residual[..., :, None], axis=-2)
    quadratic = xp.sum(projected * projected, axis=-1)
    loss = _gaussian_nll_from_precision(
        xp, linalg.logdet_from_cholesky(chol), precision, quadratic, statistics
    )
    data_second = statistics.cov + linalg.matrix_outer(statistics.mean, statistics.mean)
    grad_matrix = cov + linalg.matrix_outer(mean, mean) - data_second
    return loss, GaussianNatural(-residual, linalg.symmetrize(grad_matrix))


def gaussian_mean_value_and_grad(
    mean: GaussianMean, statistics: GaussianStatistics
) -> tuple[Array, GaussianMean]:
    """Mean Gaussian NLL and its gradient with respect to the mean parameters.

    With ``μ = m₁``, ``Σ = sym(m₂) - μμᵀ``, ``P = Σ⁻¹`` and ``δ = x̄ - μ``:
    ``G = ∂f/∂Σ = ½ P (Σ - Ĉ - δδᵀ) P``, ``∇_{m₂} f = G`` and ``∇_{m₁} f = -Pδ - 2Gμ``.
    This is the direction of SNGD's VI form.

    Parameters
    ----------
    mean : GaussianMean
        ``(μ, Σ + μμᵀ)``.
    statistics : GaussianStatistics
        From :func:`gaussian_statistics`.

    Returns
    -------
    loss : array, shape (...)
        The mean negative log-likelihood.
    grad : GaussianMean
        Its gradient (symmetric matrix block).

    Raises
    ------
    BackendError
        If the parameters and statistics come from different libraries or devices.
    """
    xp = _gaussian_namespace(mean, statistics, ("mean", "second_moment"))
    mu = mean.mean
    cov = linalg.symmetrize(mean.second_moment) - linalg.matrix_outer(mu, mu)
    chol = linalg.cholesky(cov)
    precision = linalg.cho_inverse(chol)
    residual = statistics.mean - mu
    solved = linalg.cho_solve(chol, residual[..., None])[..., 0]  # P δ
    quadratic = xp.sum(residual * solved, axis=-1)
    loss = _gaussian_nll_from_precision(
        xp, -linalg.logdet_from_cholesky(chol), precision, quadratic, statistics
    )
    mismatch = cov - statistics.cov - linalg.matrix_outer(residual, residual)
    grad_cov = linalg.symmetrize(0.5 * (precision @ mismatch @ precision))
    grad_mu = -solved - 2.0 * (grad_cov @ mu[..., None])[..., 0]
    return loss, GaussianMean(grad_mu, grad_cov)


def gaussian_mle(data: Array, *, form: str = "mle") -> ClosedFormProblem:
    """Gaussian maximum likelihood with a closed-form gradient (no autodiff needed).

    Use with ``rules.SNGD(maps.identity_map(families.Gaussian(d)), form=form,
    backend=problem.backend)`` and ``rule.step(state, problem.objective)``.

    Parameters
    ----------
    data : array, shape (N, d)
        Observations (any library; the statistics are computed once, on its device).
    form : {"mle", "vi"}
        SNGD's form: ``"mle"`` differentiates the natural parameters, ``"vi"`` the mean
        parameters.

    Returns
    -------
    ClosedFormProblem
        ``objective(GaussianStandard(mean, cov))`` is the mean negative log-likelihood.

    Raises
    ------
    DataError
        For bad data (see :func:`gaussian_statistics`) or an unknown ``form``.
    """
    _check_form(form, ("mle", "vi"))
    statistics = gaussian_statistics(data)

    def objective(target: Any) -> Array:
        return gaussian_nll(GaussianStandard(target[0], target[1]), statistics)

    def value_and_grad(params: Any) -> tuple[Array, Any]:
        if form == "mle":
            if not isinstance(params, GaussianNatural):
                raise _wrong_coordinates("GaussianNatural parameters", params, form)
            return gaussian_natural_value_and_grad(params, statistics)
        if not isinstance(params, GaussianMean):
            raise _wrong_coordinates("GaussianMean parameters", params, form)
        return gaussian_mean_value_and_grad(params, statistics)

    return ClosedFormProblem(objective, CustomGradient(value_and_grad=value_and_grad), form)


# ----------------------------------------------------------------------------------------
# Negative binomial maximum likelihood through the gamma surrogate
# ----------------------------------------------------------------------------------------


class NegativeBinomialData(NamedTuple):
    """Counts prepared for the closed-form negative binomial likelihood.

    Attributes
    ----------
    counts : array, shape (N,)
        Distinct (or all) counts, floating.
    weights : array, shape (N,)
        Their frequencies divided by the total (summing to one).
    mean : array, 0-d
        The weighted mean count ``x̄``.
    mean_log_factorial : array, 0-d
        The weighted mean of ``log x!`` (a constant of the likelihood).
    """

    counts: Array
    weights: Array
    mean: Array
    mean_log_factorial: Array


def negative_binomial_data(
    counts: Array, frequencies: Array | None = None, *, dtype: Any = None
) -> NegativeBinomialData:
    """Check counts and precompute the data terms of the negative binomial likelihood.

    Parameters
    ----------
    counts : array, shape (N,)
        Non-negative integer counts (any numeric dtype).
    frequencies : array, shape (N,), optional
        How often each count occurs (non-negative, not all zero); default one each.
    dtype : dtype, optional
        Floating dtype to compute in (default: float64, or the counts' floating dtype).

    Returns
    -------
    NegativeBinomialData

    Raises
    ------
    DataError
        For counts that are not finite non-negative integers in a non-empty 1-D array
        (first offending value and index), or bad ``frequencies``.
    BackendError
        If ``counts`` and ``frequencies`` come from different libraries or devices.
    """
    from surrogate_natgrad.distributions._checks import check_counts

    values = check_counts(counts, "counts")
    xp = namespace(counts=values, frequencies=frequencies)
    dtype = dtype if dtype is not None else values.dtype
    values = xp.astype(values, dtype)
    if frequencies is None:
        weights = xp.full_like(values, 1.0 / int(values.shape[0]))
    else:
        if tuple(frequencies.shape) != tuple(values.shape):
            raise DataError(
                f"frequencies must have the shape of counts {tuple(values.shape)}; got "
                f"{tuple(frequencies.shape)}"
            )
        freq = xp.astype(as_float_array(frequencies, xp), dtype)
        bad = xp.logical_not(xp.logical_and(xp.isfinite(freq), freq >= 0))
        if bool(xp.any(bad)):
            index = _first_bad_index(bad)
            value = to_numpy(freq)[index].item()
            raise DataError(
                f"frequencies must be finite and non-negative; found {value!r} at index {index}"
            )
        total = xp.sum(freq)
        if not bool(total > 0):
            raise DataError("frequencies must not all be zero")
        weights = freq / total
    mean = xp.sum(weights * values)
    mean_log_factorial = xp.sum(weights * special.gammaln(values + 1.0))
    return NegativeBinomialData(values, weights, mean, mean_log_factorial)


def _nb_namespace(params: Mapping[str, Array] | Any, data: NegativeBinomialData) -> Any:
    return namespace(**params, counts=data.counts)


def negative_binomial_nll(n: Array, p: Array, data: NegativeBinomialData) -> Array:
    """Mean negative log-likelihood of NB(n, p) (scipy's ``nbinom``) on ``data``.

    Parameters
    ----------
    n, p : array, shape (...)
        Parameters; out-of-domain values give NaN (which line searches skip).
    data : NegativeBinomialData
        From :func:`negative_binomial_data`.

    Returns
    -------
    array, shape (...)
        ``-Σ_i w_i [lgamma(x_i + n) - lgamma(n) - log x_i! + n log p + x_i log(1 - p)]``.
    """
    xp = _nb_namespace({"n": n, "p": p}, data)
    mean_gammaln = xp.sum(data.weights * special.gammaln(data.counts + n[..., None]), axis=-1)
    loglik = (
        mean_gammaln
        - special.gammaln(n)
        - data.mean_log_factorial
        + n * xp.log(p)
        + data.mean * xp.log1p(-p)
    )
    return -loglik


def _nb_partials(n: Array, p: Array, data: NegativeBinomialData) -> tuple[Array, Array, Array]:
    """Loss and its partial derivatives ``∂f/∂n``, ``∂f/∂p`` (digamma sums)."""
    xp = _nb_namespace({"n": n, "p": p}, data)
    loss = negative_binomial_nll(n, p, data)
    mean_digamma = xp.sum(data.weights * special.digamma(data.counts + n[..., None]), axis=-1)
    grad_n = -(mean_digamma - special.digamma(n) + xp.log(p))
    grad_p = -n / p + data.mean / (1.0 - p)
    return loss, grad_n, grad_p


def _nb_from_natural(natural: GammaNatural) -> tuple[Array, Array, Array, Array]:
    # The same arithmetic as Gamma.natural_to_standard and the NB surrogate map, so that
    # the loss reported here equals the objective evaluated on the map's target params.
    shape = natural.shape_minus_one + 1.0
    rate = -natural.neg_rate
    return shape, rate, shape / (1 - rate), rate


def negative_binomial_natural_value_and_grad(
    natural: GammaNatural, data: NegativeBinomialData
) -> tuple[Array, GammaNatural]:
    """NB mean NLL through the gamma map, and its gradient w.r.t. gamma natural params.

    The map is ``n = α / (1 - β)``, ``p = β`` with ``(α, β) = (η₁ + 1, -η₂)``. With
    ``f_n = -(E_w[ψ(x + n)] - ψ(n) + log p)`` and ``f_p = -n/p + x̄/(1 - p)``:
    ``∂f/∂η₁ = f_n / (1 - β)`` and ``∂f/∂η₂ = -(f_n n / (1 - β) + f_p)``. This is the
    direction of SNGD's MLE form on :func:`~surrogate_natgrad.distributions.NegativeBinomial`.

    Parameters
    ----------
    natural : GammaNatural
        Gamma natural parameters (any batch shape).
    data : NegativeBinomialData
        From :func:`negative_binomial_data`, same namespace and device.

    Returns
    -------
    loss : array
        The mean negative log-likelihood at ``n, p``.
    grad : GammaNatural
        Its gradient.
    """
    _, rate, n, p = _nb_from_natural(natural)
    loss, grad_n, grad_p = _nb_partials(n, p, data)
    grad_shape = grad_n / (1.0 - rate)
    grad_rate = grad_n * n / (1.0 - rate) + grad_p
    return loss, GammaNatural(grad_shape, -grad_rate)


def negative_binomial_mean_value_and_grad(
    mean: GammaMean, data: NegativeBinomialData
) -> tuple[Array, GammaMean]:
    """NB mean NLL through the gamma map, and its gradient w.r.t. gamma mean params.

    ``α`` solves ``ψ(α) - log α = m₁ - log m₂`` and ``β = α / m₂``; with
    ``k = ψ′(α) - 1/α`` the implicit-function theorem gives ``∂α/∂m₁ = 1/k`` and
    ``∂α/∂m₂ = -1/(m₂ k)``. This is the direction of SNGD's VI form.

    Parameters
    ----------
    mean : GammaMean
        Gamma mean parameters ``(E log x, E x)`` inside the mean domain.
    data : NegativeBinomialData
        From :func:`negative_binomial_data`.

    Returns
    -------
    loss : array
        The mean negative log-likelihood.
    grad : GammaMean
        Its gradient.
    """
    standard = Gamma().mean_to_standard(mean)
    shape, rate = standard.shape, standard.rate
    n = shape / (1 - rate)
    loss, grad_n, grad_p = _nb_partials(n, rate, data)
    grad_shape = grad_n / (1.0 - rate)
    grad_rate = grad_n * n / (1.0 - rate) + grad_p
    slope = _digamma_minus_log_derivative(shape)
    second = mean.mean
    d_shape_d_m1 = 1.0 / slope
    d_shape_d_m2 = -1.0 / (second * slope)
    d_rate_d_m1 = d_shape_d_m1 / second
    d_rate_d_m2 = d_shape_d_m2 / second - shape / (second * second)
    return loss, GammaMean(
        grad_shape * d_shape_d_m1 + grad_rate * d_rate_d_m1,
        grad_shape * d_shape_d_m2 + grad_rate * d_rate_d_m2,
    )


def negative_binomial_unconstrained_value_and_grad(
    coords: Mapping[str, Array], data: NegativeBinomialData
) -> tuple[Array, dict[str, Array]]:
    """NB mean NLL and its gradient in ``{"log_n", "logit_p"}`` (the baselines' coordinates).

    ``∂f/∂log n = n f_n`` and ``∂f/∂logit p = p(1 - p) f_p = x̄ p - n (1 - p)``.

    Parameters
    ----------
    coords : mapping
        ``log_n`` and ``logit_p`` as in
        :meth:`~surrogate_natgrad.distributions.NegativeBinomial.to_unconstrained`.
    data : NegativeBinomialData
        From :func:`negative_binomial_data`.

    Returns
    -------
    loss : array
        The mean negative log-likelihood.
    grad : dict
        ``{"log_n": ..., "logit_p": ...}``.
    """
    xp = _nb_namespace(coords, data)
    n = xp.exp(coords["log_n"])
    p = xp.exp(special.log_sigmoid(coords["logit_p"]))
    one_minus_p = xp.exp(special.log_sigmoid(-coords["logit_p"]))
    loss, grad_n, _ = _nb_partials(n, p, data)
    return loss, {"log_n": n * grad_n, "logit_p": data.mean * p - n * one_minus_p}


def negative_binomial_mle(
    counts: Array,
    frequencies: Array | None = None,
    *,
    form: str = "mle",
    dtype: Any = None,
) -> ClosedFormProblem:
    """Negative binomial maximum likelihood with a closed-form gradient (no autodiff).

    For SNGD use ``rules.SNGD(NegativeBinomial.surrogate_map(), form=form,
    backend=problem.backend)``; for the baselines (``rules.GradientDescent``,
    ``rules.Adam``, ``rules.BFGS``) use ``form="unconstrained"`` with parameters
    ``{"log_n": ..., "logit_p": ...}``.

    Parameters
    ----------
    counts : array, shape (N,)
        Non-negative integer counts.
    frequencies : array, shape (N,), optional
        Multiplicities of ``counts`` (e.g. from ``xp.unique_counts``).
    form : {"mle", "vi", "unconstrained"}
        Which coordinates the gradient is for (see :data:`FORMS`).
    dtype : dtype, optional
        Floating dtype of the computation (default float64; pass ``xp.float32`` for a
        float32 fit).

    Returns
    -------
    ClosedFormProblem
        ``objective({"n": n, "p": p})`` (SNGD) or ``objective({"log_n", "logit_p"})``
        (``form="unconstrained"``) is the mean negative log-likelihood.

    Raises
    ------
    DataError
        For bad counts or frequencies, or an unknown ``form``.
    """
    _check_form(form, FORMS)
    if dtype is None:
        dtype = float_dtype(namespace(counts=counts), counts)
    data = negative_binomial_data(counts, frequencies, dtype=dtype)

    def unconstrained_objective(coords: Any) -> Array:
        xp = _nb_namespace(coords, data)
        n = xp.exp(coords["log_n"])
        p = xp.exp(special.log_sigmoid(coords["logit_p"]))
        return negative_binomial_nll(n, p, data)

    def target_objective(target: Any) -> Array:
        return negative_binomial_nll(target["n"], target["p"], data)

    objective = unconstrained_objective if form == "unconstrained" else target_objective

    def value_and_grad(params: Any) -> tuple[Array, Any]:
        if form == "mle":
            if not isinstance(params, GammaNatural):
                raise _wrong_coordinates("GammaNatural parameters", params, form)
            return negative_binomial_natural_value_and_grad(params, data)
        if form == "vi":
            if not isinstance(params, GammaMean):
                raise _wrong_coordinates("GammaMean parameters", params, form)
            return negative_binomial_mean_value_and_grad(params, data)
        if not isinstance(params, Mapping) or set(params) != {"log_n", "logit_p"}:
            raise _wrong_coordinates("a dict with keys 'log_n' and 'logit_p'", params, form)
        return negative_binomial_unconstrained_value_and_grad(params, data)

    return ClosedFormProblem(objective, CustomGradient(value_and_grad=value_and_grad), form)
