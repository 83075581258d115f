"""SNGD's MLE direction for skew-elliptical targets on the centred Gaussian map, in closed form.

SNGD's MLE form moves the Gaussian surrogate's mean parameters ``(μ, μμᵀ + Σ)`` along the
gradient of the loss with respect to its natural parameters ``(h, J) = (Σ⁻¹μ, -Σ⁻¹/2)``.
Through autodiff that gradient is ``∂/∂J = 2Σ sym(G)Σ + (Σg)μᵀ + μ(Σg)ᵀ`` with ``G`` the
dense gradient in ``Σ`` (:meth:`Gaussian.natural_cotangent`): two d×d matrix products, and
an inverse ``Ω⁻¹`` for ``G``, O(d³) each on top of the Cholesky factorisation the
likelihood needs.

For the skew-elliptical likelihoods (:func:`~.skew_normal.quadratic_form_nll`) on the
centred map (:func:`~._skew_maps.skew_normal_map`, ``Ω = Σ + cββᵀ`` with ``β = φ(p)Ση``,
``p = ηᵀΣη``) the gradient has structure: ``∂L/∂Ω = aΩ⁻¹ - Σ_i w_i u_iu_iᵀ`` (``u_i = Ω⁻¹
r_i``) plus terms in ``η``, and ``Σ Ω⁻¹ Σ = Σ - cκββᵀ``, ``Σ u_i = r_i - cφκ z_i β``
(``κ = 1/(1 + cφ²p)``, ``z_i = ηᵀr_i``) need no inverse. So ``Σ sym(G) Σ`` costs one
product of the ``N × d`` matrix ``[Σu_i]`` with itself and some outer products: O(d²N)
for a batch of ``N`` points instead of O(d³), after the one factorisation of ``Ω``.

Pure math (layer 3): array-API operations on the inputs' namespace; the log-density's
elementwise part is differentiated by the autodiff backend (vectors of length ``N``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from surrogate_natgrad._compat import Array, is_autograd_box, linalg, namespace
from surrogate_natgrad.distributions._skew_maps import _C, CENTRED_SKEW_MAP, _beta_factor
from surrogate_natgrad.distributions.skew_normal import sum_last, weighted_nll, whiten

__all__ = ["centred_skew_natural_gradient"]


def centred_skew_natural_gradient(
    surrogate_map: Any,
    mean_params: Any,
    aux: Mapping[str, Array],
    data: Array,
    weights: Array | None,
    pointwise: Callable[[Mapping[str, Array]], Array],
    backend: Any = None,
) -> tuple[Array, Any, dict[str, Array]] | None:
    """Mean NLL and its gradient in the natural parameters of the centred Gaussian surrogate.

    The log-density must depend on the data as in
    :func:`~surrogate_natgrad.distributions.skew_normal.quadratic_form_nll`:
    ``pointwise(parts)`` gives the log-densities from ``Q_i = r_iᵀΩ⁻¹r_i``, the projection
    ``z_i = ηᵀr_i`` (``η = α/ω``, the auxiliary ``"skew"``), ``log|Ω|`` and the other
    auxiliary values (``"df"``).

    Parameters
    ----------
    surrogate_map : SurrogateMap
        The map; anything but the centred skew map (``name == "skew_centred"``) returns
        None.
    mean_params : GaussianMean
        ``(μ, Σ + μμᵀ)``, one parameter set (no batch axes).
    aux : mapping
        The *constrained* auxiliary values: ``"skew"`` ``(d,)`` and any scalars.
    data : array, shape ``(N, d)``
        Observations.
    weights : array, shape ``(N,)``, optional
        Per-observation weights.
    pointwise : callable
        ``pointwise(parts) -> (N,)`` log-densities.
    backend : AutodiffBackend or str, optional
        Differentiates ``pointwise``; by default chosen from the arrays.

    Returns
    -------
    tuple or None
        ``(loss, natural_gradient, aux_gradient)``: the weighted mean NLL, its gradient
        with respect to the natural parameters as a ``GaussianNatural`` (symmetric matrix
        block) and with respect to each constrained auxiliary value; None when the map,
        the shapes or the inputs (traced by autograd) do not fit this closed form.
    """
    from surrogate_natgrad import autodiff
    from surrogate_natgrad.families.gaussian import GaussianNatural

    if getattr(surrogate_map, "name", None) != CENTRED_SKEW_MAP:
        return None
    mean = getattr(mean_params, "mean", None)
    second = getattr(mean_params, "second_moment", None)
    skew = aux.get("skew") if isinstance(aux, Mapping) else None
    if mean is None or second is None or skew is None:
        return None
    arrays = [mean, second, data, *aux.values(), *([] if weights is None else [weights])]
    if any(is_autograd_box(value) for value in arrays):
        return None  # differentiated from outside: leave it to the generic path
    if mean.ndim != 1 or second.ndim != 2 or skew.ndim != 1 or data.ndim != 2:
        return None
    if any(value.ndim != 0 for key, value in aux.items() if key != "skew"):
        return None
    xp = namespace(mean, second, skew, data)
    outer = linalg.matrix_outer

    # Forward: the map (μ, Σ, η) → (ξ, Ω) as _centred_to_direct, keeping the
    # intermediates; then the likelihood's pieces.
    cov = surrogate_map.family.mean_to_standard(mean_params).cov
    cov_skew = cov @ skew  # s = Ση
    p = xp.sum(skew * cov_skew)
    q, root, damping, phi = _beta_factor(xp, p)
    beta = phi * cov_skew  # β = φ(p) s
    scale = cov + _C * outer(beta, beta)
    loc = mean - math.sqrt(_C) * beta
    chol = linalg.cholesky(scale)
    residual = data - loc
    whitened = whiten(chol, residual)
    projection = residual @ skew
    parts: dict[str, Array] = {
        "quadratic": sum_last(whitened * whitened),
        "projection": projection,
        "logdet": linalg.logdet_from_cholesky(chol),
    }
    parts.update({key: value for key, value in aux.items() if key != "skew"})

    def loss_of(pieces: Mapping[str, Array], point_weights: Array | None) -> Array:
        return weighted_nll(pointwise(pieces), point_weights)

    ad = autodiff.get_backend(backend, *parts.values())
    # The weights go in as an argument, not a closure: a DLPack bridge converts arguments.
    loss, grads = ad.value_and_grad(loss_of)(parts, weights)
    weight_q, grad_z, grad_logdet = grads["quadratic"], grads["projection"], grads["logdet"]

    # Backward, every product with Σ taken in closed form (see the module docstring).
    # u_i = Ω⁻¹r_i; Σu_i = r_i - cφκ z_i β, since ΣΩ⁻¹ = I - cβ(Ω⁻¹β)ᵀ, Ω⁻¹β = φκη.
    kappa = 1.0 / (1.0 + _C * phi * phi * p)
    cov_solved = residual - (_C * phi * kappa) * projection[:, None] * beta[None, :]
    skew_cov_solved = cov_solved @ skew  # ηᵀΣu_i = sᵀu_i
    sum_grad_z = xp.sum(grad_z)
    # ∂L/∂ξ = -2Σ w_i u_i - η Σ g_z,i: its product with Σ and with s.
    cov_grad_loc = -2.0 * (weight_q @ cov_solved) - cov_skew * sum_grad_z
    grad_loc_dot_s = -2.0 * xp.sum(weight_q * skew_cov_solved) - p * sum_grad_z
    # ∂L/∂Ω = aΩ⁻¹ - Σ w_i u_iu_iᵀ applied to β, with u_iᵀβ = φκ z_i.
    weighted_z = weight_q * projection
    cov_grad_scale_beta = grad_logdet * kappa * beta - phi * kappa * (weighted_z @ cov_solved)
    s_grad_scale_beta = grad_logdet * phi * kappa * p - phi * kappa * xp.sum(
        weighted_z * skew_cov_solved
    )
    # Ω = Σ + cββᵀ and ξ = μ - sqrt(c) β: ∂L/∂β = 2c (∂L/∂Ω) β - sqrt(c) ∂L/∂ξ.
    cov_grad_beta = 2.0 * _C * cov_grad_scale_beta - math.sqrt(_C) * cov_grad_loc
    grad_beta_dot_s = 2.0 * _C * s_grad_scale_beta - math.sqrt(_C) * grad_loc_dot_s
    # β = φ(p) s: ∂L/∂s = φ ∂L/∂β and ∂L/∂p = φ'(p) sᵀ∂L/∂β, with q'(p) = (1 + q)/root.
    dphi_dp = xp.sqrt(1.0 + q) / root * (_C * damping * damping - 0.5 * damping)
    grad_p = dphi_dp * grad_beta_dot_s
    # Σ sym(∂L/∂Σ) Σ, with ∂L/∂Σ = ∂L/∂Ω + φ ∂L/∂β ηᵀ + ∂L/∂p ηηᵀ, then ∂/∂J =
    # 2 sym(Σ (∂L/∂Σ) Σ + (Σg)μᵀ) with g = ∂L/∂μ = ∂L/∂ξ. The rank-one terms go in one
    # product of d×4 matrices; the one symmetrisation at the end covers every term.
    left = xp.stack(
        [
            (-2.0 * _C * kappa * grad_logdet) * beta,
            (2.0 * phi) * cov_grad_beta,
            (2.0 * grad_p) * cov_skew,
            2.0 * cov_grad_loc,
        ],
        axis=1,
    )
    right = xp.stack([beta, cov_skew, cov_skew, mean], axis=0)
    weighted_solved = cov_solved * (2.0 * weight_q)[:, None]
    grad_neg_half_precision = linalg.symmetrize(
        (2.0 * grad_logdet) * cov
        - xp.linalg.matrix_transpose(weighted_solved) @ cov_solved
        + left @ right
    )
    natural_gradient = GaussianNatural(cov_grad_loc, grad_neg_half_precision)
    aux_gradient = {
        "skew": xp.linalg.matrix_transpose(residual) @ grad_z
        + phi * cov_grad_beta
        + 2.0 * grad_p * cov_skew
    }
    aux_gradient.update({key: grads[key] for key in aux if key != "skew"})
    return loss, natural_gradient, aux_gradient
