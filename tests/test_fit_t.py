"""Maximum likelihood of MultivariateT and TCopula by SNGD through their surrogate maps.

Independent references: ``scipy.optimize.minimize`` on the negative log-likelihood built
from ``scipy.stats`` (``multivariate_t``, ``t.ppf``, ``t.logpdf``), and standard errors from
a finite-difference Hessian of that same SciPy likelihood at its optimum.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so
import scipy.stats as st

from surrogate_natgrad import rules
from surrogate_natgrad.distributions import MultivariateT, TCopula
from surrogate_natgrad.distributions._t_maps import multivariate_t_gaussian_map


def _hessian(fun, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar NumPy function (reference only)."""
    size = x.size
    hessian = np.zeros((size, size))
    for i in range(size):
        for j in range(i, size):
            e_i = np.zeros(size)
            e_j = np.zeros(size)
            e_i[i] = step
            e_j[j] = step
            value = (
                fun(x + e_i + e_j) - fun(x + e_i - e_j) - fun(x - e_i + e_j) + fun(x - e_i - e_j)
            ) / (4 * step * step)
            hessian[i, j] = hessian[j, i] = value
    return hessian


def _run_sngd(surrogate_map, start, objective, steps, aux_step):
    rule = rules.SNGD(
        surrogate_map,
        form="mle",
        step_size=1.0,
        line_search="backtracking",
        aux_rule=rules.Adam(step_size=aux_step),
    )
    state = rule.init_from_target(start)
    for _ in range(steps):
        state, _ = rule.step(state, objective)
    params = rule.target_params(state)
    return params, float(objective(params))


# ----------------------------------------------------------------------------------------
# Multivariate t, d = 2
# ----------------------------------------------------------------------------------------

LOC = np.array([1.0, -1.0])
SHAPE = np.array([[2.0, 0.5], [0.5, 1.0]])
DF = 5.0


def _mvt_theta(loc, shape, df):
    return np.array([loc[0], loc[1], shape[0, 0], shape[0, 1], shape[1, 1], df])


def _mvt_scipy_nll(theta, data):
    shape = np.array([[theta[2], theta[3]], [theta[3], theta[4]]])
    if theta[5] <= 0 or np.linalg.eigvalsh(shape)[0] <= 0:
        return np.inf
    return -st.multivariate_t(theta[:2], shape, df=theta[5]).logpdf(data).mean()


@pytest.fixture(scope="module")
def mvt_problem():
    data = MultivariateT(LOC, SHAPE, DF).sample(3000, seed=21)
    start = MultivariateT.from_data(data)
    theta0 = _mvt_theta(start.params["loc"], start.params["shape"], float(start.params["df"]))
    reference = so.minimize(
        _mvt_scipy_nll,
        theta0,
        args=(data,),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000, "maxfev": 20000},
    )
    hessian = _hessian(lambda t: _mvt_scipy_nll(t, data), reference.x)
    standard_errors = np.sqrt(np.diag(np.linalg.inv(hessian)) / data.shape[0])
    return data, start, reference, standard_errors


@pytest.mark.parametrize("kind", ["mcef", "gaussian"])
def test_sngd_fits_multivariate_t_like_scipy_optimize(mvt_problem, kind):
    data, start, reference, standard_errors = mvt_problem
    surrogate_map = (
        MultivariateT.surrogate_map_for(start.params)
        if kind == "mcef"
        else multivariate_t_gaussian_map(2)
    )

    def objective(params):
        return MultivariateT.mean_nll(params, data)

    params, loss = _run_sngd(surrogate_map, start.params, objective, steps=35, aux_step=0.05)
    # Same optimum as an independent optimiser on the SciPy likelihood.
    assert abs(loss - reference.fun) <= 1e-6 * abs(reference.fun)
    theta = _mvt_theta(params["loc"], params["shape"], float(params["df"]))
    truth = _mvt_theta(LOC, SHAPE, DF)
    # The estimate recovers the truth to within five standard errors.
    assert np.all(np.abs(theta - truth) <= 5 * standard_errors), (theta, truth, standard_errors)


# ----------------------------------------------------------------------------------------
# t copula, d = 2
# ----------------------------------------------------------------------------------------

RHO = 0.5
COPULA_DF = 6.0


def _copula_scipy_nll(theta, data):
    rho, df = theta
    if not (-1 < rho < 1) or df <= 0:
        return np.inf
    x = st.t.ppf(data, df)
    corr = np.array([[1.0, rho], [rho, 1.0]])
    joint = st.multivariate_t(np.zeros(2), corr, df=df).logpdf(x)
    return -(joint - st.t.logpdf(x, df).sum(axis=-1)).mean()


@pytest.fixture(scope="module")
def copula_problem():
    truth = TCopula(np.array([[1.0, RHO], [RHO, 1.0]]), COPULA_DF)
    data = truth.sample(500, seed=22)
    start = TCopula.from_data(data)
    theta0 = np.array([start.params["corr"][0, 1], float(start.params["df"])])
    reference = so.minimize(
        _copula_scipy_nll,
        theta0,
        args=(data,),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-14},
    )
    hessian = _hessian(lambda t: _copula_scipy_nll(t, data), reference.x)
    standard_errors = np.sqrt(np.diag(np.linalg.inv(hessian)) / data.shape[0])
    return data, start, reference, standard_errors


def test_sngd_fits_t_copula_like_scipy_optimize(copula_problem):
    data, start, reference, standard_errors = copula_problem

    def objective(params):
        return TCopula.mean_nll(params, data)

    params, loss = _run_sngd(
        TCopula.surrogate_map_for(start.params), start.params, objective, steps=60, aux_step=0.1
    )
    assert abs(loss - reference.fun) <= 1e-6 * abs(reference.fun)
    theta = np.array([params["corr"][0, 1], float(params["df"])])
    assert np.all(np.abs(theta - np.array([RHO, COPULA_DF])) <= 5 * standard_errors)
    assert np.all(np.abs(theta - reference.x) <= 0.05 * standard_errors)


# ----------------------------------------------------------------------------------------
# Through the generic fit driver
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["mvt", "copula"])
def test_fit_reaches_the_scipy_optimum(target, mvt_problem, copula_problem):
    from surrogate_natgrad import fit

    cls, (data, _, reference, _) = (
        (MultivariateT, mvt_problem) if target == "mvt" else (TCopula, copula_problem)
    )
    # Default settings: the grid line search, with df as an auxiliary parameter.
    result = fit(cls, data)
    assert result.converged, result.message
    assert abs(result.loss - reference.fun) <= 1e-6 * abs(reference.fun)
