"""SNGD's closed-form MLE direction for the skew-normal and skew-t on the centred map.

References are independent: the centred map is solved here from its definition (a root of
``q = p + c q²/(1 + q)`` by ``scipy.optimize.brentq``), the likelihood is SciPy's
(``multivariate_normal``/``multivariate_t`` and the univariate normal/t CDFs), and the
gradients are central differences in the Gaussian's natural parameters.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize as so
import scipy.stats as st

from surrogate_natgrad import autodiff, rules
from surrogate_natgrad.distributions import NegativeBinomial
from surrogate_natgrad.distributions.skew_normal import SkewNormal
from surrogate_natgrad.distributions.skew_t import SkewT
from surrogate_natgrad.errors import DataError
from surrogate_natgrad.families.gaussian import Gaussian, GaussianMean, GaussianNatural
from surrogate_natgrad.maps import ExpPlus, Identity, SurrogateMap
from tests.helpers import central_difference, to_numpy

C = 2.0 / math.pi
DIM, N_POINTS = 3, 7


def _case(seed=3):
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=(DIM, DIM))
    cov = factor @ factor.T / DIM + 0.5 * np.eye(DIM)
    mean = rng.normal(size=DIM)
    skew = 1.5 * rng.normal(size=DIM)  # ηᵀΣη above 1: the large-root branch
    data = rng.normal(size=(N_POINTS, DIM)) @ np.linalg.cholesky(cov).T + mean
    weights = rng.uniform(0.5, 2.0, size=N_POINTS)
    return mean, cov, skew, data, weights


def _direct(mean, cov, skew):
    """``(ξ, Ω)`` from the skew-normal's mean and covariance and ``η = α/ω``."""
    p = skew @ cov @ skew
    q = so.brentq(lambda q: q - p - C * q * q / (1 + q), 0.0, 10 * p / (1 - C) + 10, xtol=1e-15)
    beta = cov @ skew / (math.sqrt(1 + q) * (1 - C * q / (1 + q)))
    return mean - math.sqrt(C) * beta, cov + C * np.outer(beta, beta)


def _reference_nll(cls, natural, aux, data, weights):
    precision_mean, neg_half_precision = natural
    cov = np.linalg.inv(-(neg_half_precision + neg_half_precision.T))
    mean = cov @ precision_mean
    loc, scale = _direct(mean, cov, aux["skew"])
    z = (data - loc) @ aux["skew"]
    if cls is SkewNormal:
        log_density = st.multivariate_normal(loc, scale).logpdf(data) + st.norm.logcdf(z)
    else:
        df = float(aux["df"])
        residual = data - loc
        quadratic = np.einsum("ni,ij,nj->n", residual, np.linalg.inv(scale), residual)
        log_density = st.multivariate_t(loc, scale, df=df).logpdf(data) + st.t.logcdf(
            z * np.sqrt((df + DIM) / (quadratic + df)), df + DIM
        )
    return -float(np.sum(weights * (math.log(2.0) + log_density)) / np.sum(weights))


@pytest.mark.parametrize("cls", [SkewNormal, SkewT])
def test_closed_form_direction_matches_finite_differences(ad_backend, cls):
    mean, cov, skew, data, weights = _case()
    aux_np = {"skew": skew} if cls is SkewNormal else {"skew": skew, "df": np.asarray(4.5)}
    natural = Gaussian(DIM).standard_to_natural(
        Gaussian(DIM).mean_to_standard(GaussianMean(mean, cov + np.outer(mean, mean)))
    )
    natural = GaussianNatural(np.asarray(natural[0]), np.asarray(natural[1]))
    mean_params = GaussianMean(
        ad_backend.asarray(mean), ad_backend.asarray(cov + np.outer(mean, mean))
    )
    aux = {key: ad_backend.asarray(value) for key, value in aux_np.items()}
    found = cls.loss_and_natural_gradient(
        cls.surrogate_map(DIM),
        mean_params,
        aux,
        ad_backend.asarray(data),
        ad_backend.asarray(weights),
    )
    assert found is not None
    loss, gradient, aux_gradient = found

    def nll(new_natural=natural, new_aux=aux_np):
        return _reference_nll(cls, new_natural, new_aux, data, weights)

    assert float(to_numpy(loss)) == pytest.approx(nll(), rel=1e-12)
    expected_h = central_difference(lambda h: nll(GaussianNatural(h, natural[1])), natural[0])
    expected_j = central_difference(lambda j: nll(GaussianNatural(natural[0], j)), natural[1])
    np.testing.assert_allclose(to_numpy(gradient.precision_mean), expected_h, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(gradient.neg_half_precision), expected_j, rtol=1e-6)
    for key, value in aux_np.items():
        expected = central_difference(lambda v, key=key: nll(new_aux={**aux_np, key: v}), value)
        np.testing.assert_allclose(to_numpy(aux_gradient[key]), expected, rtol=1e-6)
    assert type(gradient.neg_half_precision) is type(mean_params.second_moment)


def _objective_with_supply(cls, data, supply_calls):
    def objective(target):
        return cls.mean_nll(target, data)

    def supply(surrogate_map, mean_params, aux, backend):
        supply_calls.append(aux)
        return cls.loss_and_natural_gradient(surrogate_map, mean_params, aux, data, None, backend)

    objective.loss_and_natural_gradient = supply  # type: ignore[attr-defined]
    return objective


def test_sngd_direction_takes_the_objectives_direction_and_chains_the_aux_transform():
    mean, cov, skew, data, _ = _case(5)
    surrogate_map = SkewT.surrogate_map(DIM)
    mean_params = GaussianMean(mean, cov + np.outer(mean, mean))
    log_df = np.asarray(math.log(4.5 - 2.0))  # ν = exp(ℓ) + 2
    unconstrained = {"skew": skew, "df": log_df}
    calls: list = []
    found = rules.sngd_direction(
        surrogate_map,
        mean_params,
        _objective_with_supply(SkewT, data, calls),
        aux=unconstrained,
    )
    assert len(calls) == 1 and float(calls[0]["df"]) == pytest.approx(4.5)
    natural = Gaussian(DIM).mean_to_natural(mean_params)

    def nll(new_natural=natural, new_aux=unconstrained):
        constrained = {"skew": new_aux["skew"], "df": np.exp(new_aux["df"]) + 2.0}
        return _reference_nll(SkewT, new_natural, constrained, data, np.ones(N_POINTS))

    expected_j = central_difference(lambda j: nll(GaussianNatural(natural[0], j)), natural[1])
    expected_ell = central_difference(
        lambda ell: nll(new_aux={"skew": skew, "df": ell}), log_df
    )
    np.testing.assert_allclose(found.direction.second_moment, expected_j, rtol=1e-6)
    np.testing.assert_allclose(found.aux_grad["df"], expected_ell, rtol=1e-6)
    assert isinstance(found.direction, GaussianMean)  # laid out as the state


def test_user_supplied_gradients_keep_their_own_route():
    mean, cov, _, data, _ = _case(5)
    calls: list = []
    objective = _objective_with_supply(SkewNormal, data, calls)
    mean_params = GaussianMean(mean, cov + np.outer(mean, mean))
    custom = autodiff.CustomGradient(
        lambda params: (0.0, GaussianNatural(np.ones(DIM), np.eye(DIM)))
    )
    found = rules.sngd_direction(
        SkewNormal.surrogate_map(DIM), mean_params, objective, aux=(), backend=custom
    )
    assert calls == []
    np.testing.assert_allclose(found.direction[1], np.eye(DIM))


def test_closed_form_declines_what_it_does_not_cover():
    mean, cov, skew, data, _ = _case()
    mean_params = GaussianMean(mean, cov + np.outer(mean, mean))
    centred = SkewNormal.surrogate_map(DIM)
    # Another map over the same family (here the paper's direct map ξ = μ, Ω = Σ).
    other = SurrogateMap(
        Gaussian(DIM),
        lambda standard, aux: {
            "loc": standard.mean,
            "scale": standard.cov,
            "alpha": np.sqrt(np.diag(standard.cov)) * aux["skew"],
        },
        aux_transforms={"skew": Identity()},
    )
    assert SkewNormal.loss_and_natural_gradient(other, mean_params, {"skew": skew}, data) is None
    batched = GaussianMean(mean[None], (cov + np.outer(mean, mean))[None])
    assert SkewNormal.loss_and_natural_gradient(centred, batched, {"skew": skew}, data) is None
    # A target without a closed form keeps the default of the protocol.
    assert NegativeBinomial.loss_and_natural_gradient(centred, mean_params, {}, data) is None


def test_surrogate_map_name_must_be_a_string():
    with pytest.raises(DataError, match="name must be a string"):
        SurrogateMap(Gaussian(2), lambda s, a: s, aux_transforms={"df": ExpPlus(2.0)}, name=3)
