"""autodiff.implicit_root on the gamma maximum-likelihood equation.

The root α(m1, m2) of ψ(α) − log α + log m2 − m1 = 0 (the gamma shape for E[log x] = m1 and
E[x] = m2) is checked against ``scipy.optimize.brentq`` per element, and its derivatives
against finite differences of the brentq solution: independent references.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import scipy.special as sc

from surrogate_natgrad import special
from surrogate_natgrad._compat import namespace
from surrogate_natgrad.autodiff import implicit_root
from tests.helpers import to_numpy

M2 = np.array([1.0, 2.5, 0.3, 40.0])
M1 = np.log(M2) - np.array([0.01, 0.5, 3.0, 0.2])  # log m2 − m1 > 0 (Jensen)


def residual(alpha, m1, m2):
    xp = namespace(alpha, m1, m2)
    return special.digamma(alpha) - xp.log(alpha) + xp.log(m2) - m1


def residual_partials(alpha, m1, m2):
    xp = namespace(alpha, m1, m2)
    return (special.polygamma(1, alpha) - 1.0 / alpha, -xp.ones_like(m1), 1.0 / m2)


def solve(m1, m2):
    """Minka's closed-form start and fixed Newton steps in log α (traceable, array API)."""
    xp = namespace(m1, m2)
    gap = xp.log(m2) - m1
    alpha = (3.0 - gap + xp.sqrt((gap - 3.0) ** 2 + 24.0 * gap)) / (12.0 * gap)
    for _ in range(6):
        value = special.digamma(alpha) - xp.log(alpha) + gap
        slope = alpha * special.polygamma(1, alpha) - 1.0  # d/d log α
        alpha = alpha * xp.exp(-value / slope)
    return alpha


def _brentq_root(m1, m2):
    def one(a, b):
        gap = np.log(b) - a
        return scipy.optimize.brentq(
            lambda al: sc.digamma(al) - np.log(al) + gap, 1e-8, 1e8, xtol=1e-300, rtol=1e-15
        )

    return np.array([one(a, b) for a, b in zip(m1, m2, strict=True)])


def _fd_reference(argnum, step=1e-6):
    args = [M1, M2]
    h = step * np.maximum(np.abs(args[argnum]), 1.0)

    def shifted(k):
        new = list(args)
        new[argnum] = args[argnum] + k * h
        return _brentq_root(*new)

    return (-shifted(2) + 8 * shifted(1) - 8 * shifted(-1) + shifted(-2)) / (12 * h)


@pytest.fixture(scope="module")
def references():
    return _brentq_root(M1, M2), _fd_reference(0), _fd_reference(1)


def _root(m1, m2, closed_form):
    partials = residual_partials if closed_form else None
    return implicit_root(residual, solve, m1, m2, residual_partials=partials)


def _grads(ad_backend, fun, m1, m2):
    a, b = ad_backend.asarray(m1), ad_backend.asarray(m2)

    def total(u, v):
        return fun(u, v).sum()

    if ad_backend.name == "jax":
        import jax

        return jax.jit(jax.grad(total, argnums=(0, 1)))(a, b)
    # autograd, torch (CPU or CUDA), or a DLPack bridge for CuPy and its stand-in
    return ad_backend.autodiff().grad(total, argnums=(0, 1))(a, b)


def test_values_match_brentq(backend, references):
    root = _root(backend.asarray(M1), backend.asarray(M2), closed_form=True)
    assert type(root) is type(backend.asarray(M1))
    np.testing.assert_allclose(to_numpy(root), references[0], rtol=1e-12)


@pytest.mark.parametrize("closed_form", [True, False], ids=["closed_form", "autodiff"])
def test_derivatives_match_finite_differences(ad_backend, references, closed_form):
    d_m1, d_m2 = _grads(ad_backend, lambda u, v: _root(u, v, closed_form), M1, M2)
    np.testing.assert_allclose(to_numpy(d_m1), references[1], rtol=1e-6)
    np.testing.assert_allclose(to_numpy(d_m2), references[2], rtol=1e-6)


@pytest.mark.parametrize("closed_form", [True, False], ids=["closed_form", "autodiff"])
def test_broadcast_parameter(ad_backend, closed_form):
    # A shared m2 (shape ()) broadcast against a vector m1: its gradient sums the elements.
    m2 = np.array(2.5)
    m1 = np.log(m2) - np.array([0.05, 0.5, 2.0])
    _, d_m2 = _grads(ad_backend, lambda u, v: _root(u, v, closed_form), m1, m2)
    assert tuple(d_m2.shape) == ()

    def total(v):
        return float(np.sum(_brentq_root(m1, np.full(3, v))))

    h = 1e-5
    fd = (-total(2.5 + 2 * h) + 8 * total(2.5 + h) - 8 * total(2.5 - h) + total(2.5 - 2 * h)) / (
        12 * h
    )
    np.testing.assert_allclose(float(to_numpy(d_m2)), fd, rtol=1e-6)


def test_torch_backward(references):
    torch = pytest.importorskip("torch")
    m1 = torch.tensor(M1, requires_grad=True)
    m2 = torch.tensor(M2, requires_grad=True)
    _root(m1, m2, closed_form=False).sum().backward()
    np.testing.assert_allclose(m1.grad.numpy(), references[1], rtol=1e-6)
    np.testing.assert_allclose(m2.grad.numpy(), references[2], rtol=1e-6)


def test_jax_jit_value_and_vmap(references):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    root = jax.jit(lambda u, v: _root(u, v, closed_form=True))(jnp.asarray(M1), jnp.asarray(M2))
    np.testing.assert_allclose(np.asarray(root), references[0], rtol=1e-12)
    per_example = jax.vmap(jax.grad(lambda u, v: _root(u, v, closed_form=False)))(
        jnp.asarray(M1), jnp.asarray(M2)
    )
    np.testing.assert_allclose(np.asarray(per_example), references[1], rtol=1e-6)
