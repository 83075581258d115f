"""Tests of the autodiff backends against closed forms and finite differences."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

from surrogate_natgrad import autodiff
from surrogate_natgrad._compat import namespace
from surrogate_natgrad.errors import BackendError
from tests.helpers import central_difference, to_numpy

RNG = np.random.default_rng(20240501)
A_SPD = (lambda m: m @ m.T + 3 * np.eye(3))(RNG.standard_normal((3, 3)))
B_VEC = RNG.standard_normal(3)
X0 = RNG.standard_normal(3)
Y_OBS = RNG.standard_normal(3)
S0 = np.linalg.cholesky(A_SPD) / 2 + 0.1 * RNG.standard_normal((3, 3))


class Gaussian(NamedTuple):
    mean: object
    factor: object


def quadratic(x, a, b):
    xp = namespace(x, a, b)
    return 0.5 * xp.sum(x * (a @ x)) + xp.sum(b * x)


def log_sum_exp(x):
    xp = namespace(x)
    top = xp.max(x)
    return top + xp.log(xp.sum(xp.exp(x - top)))


def gaussian_nll(params, y):
    """NLL of y under N(mean, S Sᵀ), up to a constant, through a Cholesky factor."""
    xp = namespace(params.mean, params.factor, y)
    cov = params.factor @ xp.matrix_transpose(params.factor)
    chol = xp.linalg.cholesky(cov)
    resid = y - params.mean
    return 0.5 * xp.sum(resid * xp.linalg.solve(cov, resid)) + xp.sum(
        xp.log(xp.linalg.diagonal(chol))
    )


def gaussian_nll_reference_grad(mean, factor, y):
    cov = factor @ factor.T
    prec = np.linalg.inv(cov)
    resid = y - mean
    grad_mean = -prec @ resid
    grad_cov = 0.5 * (prec - prec @ np.outer(resid, resid) @ prec)
    return grad_mean, 2 * grad_cov @ factor


def _torch_has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.fixture
def ad(ad_backend):
    """(Backend helper, autodiff backend chosen from its arrays)."""
    return ad_backend, autodiff.get_backend(None, ad_backend.asarray([0.0]))


def test_backend_chosen_from_arrays(ad):
    helper, backend = ad
    expected = {"numpy": "autograd", "torch": "torch", "jax": "jax", "torch-cuda": "torch"}
    if helper.bridged:
        # Borrowed through DLPack: torch's autodiff for the stand-in, and for CuPy where
        # torch has CUDA (else JAX's on the GPU).
        inner = "torch" if helper.name == "strict-bridge" or _torch_has_cuda() else "jax"
        assert isinstance(backend, autodiff.DLPackBridge)
        expected[helper.name] = f"dlpack[{inner}]"
    assert backend.name == expected[helper.name]
    assert isinstance(backend, autodiff.AutodiffBackend)


def test_quadratic_value_grad_hessian(ad):
    helper, backend = ad
    x, a, b = helper.asarray(X0), helper.asarray(A_SPD), helper.asarray(B_VEC)
    value, grad = backend.value_and_grad(quadratic)(x, a, b)
    assert type(grad) is type(x) and grad.dtype == x.dtype
    np.testing.assert_allclose(float(to_numpy(value)), 0.5 * X0 @ A_SPD @ X0 + B_VEC @ X0)
    np.testing.assert_allclose(to_numpy(grad), A_SPD @ X0 + B_VEC, rtol=1e-12)
    finite = central_difference(lambda v: quadratic(v, A_SPD, B_VEC), X0)
    np.testing.assert_allclose(to_numpy(grad), finite, rtol=1e-7)
    hess = backend.hessian(quadratic)(x, a, b)
    np.testing.assert_allclose(to_numpy(hess), A_SPD, rtol=1e-12)
    grad_only = backend.grad(quadratic, argnums=2)(x, a, b)
    np.testing.assert_allclose(to_numpy(grad_only), X0)


def test_log_sum_exp(ad):
    helper, backend = ad
    x = helper.asarray(X0)
    softmax = np.exp(X0) / np.exp(X0).sum()
    grad = backend.grad(log_sum_exp)(x)
    np.testing.assert_allclose(to_numpy(grad), softmax, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(grad), central_difference(log_sum_exp, X0), rtol=1e-7)
    hess = backend.hessian(log_sum_exp)(x)
    np.testing.assert_allclose(
        to_numpy(hess), np.diag(softmax) - np.outer(softmax, softmax), atol=1e-12
    )


def test_gaussian_nll_named_tuple(ad):
    helper, backend = ad
    params = Gaussian(helper.asarray(X0), helper.asarray(S0))
    value, grad = backend.value_and_grad(gaussian_nll)(params, helper.asarray(Y_OBS))
    cov = S0 @ S0.T
    ref_value = 0.5 * (Y_OBS - X0) @ np.linalg.solve(cov, Y_OBS - X0) + 0.5 * np.log(
        np.linalg.det(cov)
    )
    np.testing.assert_allclose(float(to_numpy(value)), ref_value, rtol=1e-12)
    assert isinstance(grad, Gaussian)
    ref_mean, ref_factor = gaussian_nll_reference_grad(X0, S0, Y_OBS)
    np.testing.assert_allclose(to_numpy(grad.mean), ref_mean, rtol=1e-10)
    np.testing.assert_allclose(to_numpy(grad.factor), ref_factor, rtol=1e-10, atol=1e-12)
    finite = central_difference(
        lambda s: gaussian_nll(Gaussian(X0, s), Y_OBS), S0, step=1e-5
    )
    np.testing.assert_allclose(to_numpy(grad.factor), finite, rtol=1e-6, atol=1e-9)
    # the Hessian with respect to a named tuple is a named tuple of named tuples
    hess = backend.hessian(gaussian_nll)(params, helper.asarray(Y_OBS))
    assert isinstance(hess, Gaussian) and isinstance(hess.mean, Gaussian)
    assert tuple(hess.factor.mean.shape) == (3, 3, 3)
    np.testing.assert_allclose(
        to_numpy(hess.mean.mean), np.linalg.inv(S0 @ S0.T), rtol=1e-9
    )


def test_dict_and_tuple_grads_argnums_and_aux(ad):
    helper, backend = ad
    params = {"w": helper.asarray([1.0, 2.0]), "pair": (helper.asarray(3.0), [helper.asarray(4.0)])}
    data = helper.asarray([0.5, -1.0])

    def loss(p, d):
        xp = namespace(p["w"])
        value = xp.sum(p["w"] * d) * p["pair"][0] + p["pair"][1][0] ** 2
        return value, {"twice": 2 * value}

    (value, aux), grads = backend.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, data)
    grad_p, grad_d = grads
    assert set(grad_p) == {"w", "pair"}
    assert isinstance(grad_p["pair"], tuple) and isinstance(grad_p["pair"][1], list)
    np.testing.assert_allclose(to_numpy(grad_p["w"]), [1.5, -3.0])
    np.testing.assert_allclose(float(to_numpy(grad_p["pair"][0])), -1.5)
    np.testing.assert_allclose(float(to_numpy(grad_p["pair"][1][0])), 8.0)
    np.testing.assert_allclose(to_numpy(grad_d), [3.0, 6.0])
    np.testing.assert_allclose(float(to_numpy(aux["twice"])), 2 * float(to_numpy(value)))
    # negative argnums, grad with aux
    grad_last, aux2 = backend.grad(loss, argnums=-1, has_aux=True)(params, data)
    np.testing.assert_allclose(to_numpy(grad_last), [3.0, 6.0])
    assert "twice" in aux2


def test_integer_leaves_are_constants(ad):
    helper, backend = ad
    xp = helper.xp
    params = (helper.asarray([1.0, 2.0]), helper.asarray(np.array([3, 4])))

    def loss(p):
        return namespace(p[0]).sum(p[0] ** 2 * p[1])

    grad = backend.grad(loss)(params)
    np.testing.assert_allclose(to_numpy(grad[0]), [6.0, 16.0])
    assert grad[1].dtype == params[1].dtype == xp.int64
    np.testing.assert_array_equal(to_numpy(grad[1]), [0, 0])


def test_vjp_and_jacobian(ad):
    helper, backend = ad
    # closed over: constants must work on every backend (under a bridge, as inner views)
    a = helper.inner(helper.asarray(A_SPD))

    def fun(x, scale):
        xp = namespace(x)
        return {"lin": a @ x * scale, "sq": Gaussian(xp.sum(x**2), x[:2])}

    x, scale = helper.asarray(X0), helper.asarray(2.0)
    out, vjp_fn = backend.vjp(fun, x, scale)
    assert isinstance(out["sq"], Gaussian)
    np.testing.assert_allclose(to_numpy(out["lin"]), 2 * A_SPD @ X0)
    cot_lin = RNG.standard_normal(3)
    cotangent = {
        "lin": helper.asarray(cot_lin),
        "sq": Gaussian(helper.asarray(1.5), helper.asarray([1.0, -1.0])),
    }
    grad_x, grad_scale = vjp_fn(cotangent)
    expected_x = 2 * A_SPD.T @ cot_lin + 3.0 * X0 + np.array([1.0, -1.0, 0.0])
    np.testing.assert_allclose(to_numpy(grad_x), expected_x, rtol=1e-12)
    np.testing.assert_allclose(float(to_numpy(grad_scale)), cot_lin @ A_SPD @ X0, rtol=1e-12)
    with pytest.raises(BackendError, match="structure"):
        vjp_fn({"lin": helper.asarray(cot_lin)})

    jac = backend.jacobian(fun, argnums=(0, 1))(x, scale)
    jac_lin_x, jac_lin_scale = jac["lin"]
    np.testing.assert_allclose(to_numpy(jac_lin_x), 2 * A_SPD, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(jac_lin_scale), A_SPD @ X0, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(jac["sq"].mean[0]), 2 * X0)
    assert tuple(jac["sq"].factor[0].shape) == (2, 3)


def test_float32_gradients(ad):
    helper, backend = ad
    x = helper.asarray(X0.astype(np.float32))
    grad = backend.grad(log_sum_exp)(x)
    assert grad.dtype == helper.xp.float32
    softmax = np.exp(X0) / np.exp(X0).sum()
    np.testing.assert_allclose(to_numpy(grad), softmax, rtol=1e-5)


def test_argnums_errors(ad):
    helper, backend = ad
    x = helper.asarray(X0)
    with pytest.raises(BackendError, match="argument 3"):
        backend.grad(log_sum_exp, argnums=3)(x)
    with pytest.raises(BackendError, match="argnums"):
        backend.grad(log_sum_exp, argnums="0")
    with pytest.raises(BackendError, match="repeat"):
        backend.grad(quadratic, argnums=(0, 0))(x, x, x)


# ---------------------------------------------------------------------------------------
# Library-specific transformations compose with the returned functions
# ---------------------------------------------------------------------------------------


def test_jax_jit_and_vmap():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    backend = autodiff.get_backend("jax")
    params = Gaussian(jnp.asarray(X0), jnp.asarray(S0))
    value, grad = jax.jit(backend.value_and_grad(gaussian_nll))(params, jnp.asarray(Y_OBS))
    np.testing.assert_allclose(float(value), float(gaussian_nll(Gaussian(X0, S0), Y_OBS)))
    ref_mean, ref_factor = gaussian_nll_reference_grad(X0, S0, Y_OBS)
    assert isinstance(grad, Gaussian)
    np.testing.assert_allclose(np.asarray(grad.mean), ref_mean, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(grad.factor), ref_factor, rtol=1e-10, atol=1e-12)
    batch = jnp.asarray(RNG.standard_normal((4, 3)))
    grads = jax.vmap(backend.grad(log_sum_exp))(batch)
    expected = np.exp(np.asarray(batch))
    np.testing.assert_allclose(np.asarray(grads), expected / expected.sum(1, keepdims=True))


def test_torch_func_vmap():
    torch = pytest.importorskip("torch")
    backend = autodiff.get_backend("torch")
    batch = torch.asarray(RNG.standard_normal((4, 3)))
    grads = torch.func.vmap(backend.grad(log_sum_exp))(batch)
    expected = np.exp(batch.numpy())
    np.testing.assert_allclose(grads.numpy(), expected / expected.sum(1, keepdims=True))
    # tensors that require grad are fine and are left untouched
    x = torch.asarray(X0, requires_grad=True)
    backend.grad(log_sum_exp)(x)
    assert x.grad is None


# ---------------------------------------------------------------------------------------
# DLPack bridge and user-supplied gradients
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("inner", ["torch", "jax"])
def test_dlpack_bridge_numpy(inner):
    pytest.importorskip(inner)
    bridge = autodiff.DLPackBridge(inner)
    assert bridge.name == f"dlpack[{inner}]"
    params = Gaussian(X0.copy(), S0.copy())
    value, grad = bridge.value_and_grad(gaussian_nll)(params, Y_OBS)
    ref_value, ref_grad = autodiff.AutogradBackend().value_and_grad(gaussian_nll)(params, Y_OBS)
    assert isinstance(grad, Gaussian)
    assert type(grad.mean) is np.ndarray and type(grad.factor) is np.ndarray
    np.testing.assert_allclose(float(value), float(ref_value), rtol=1e-12)
    np.testing.assert_allclose(grad.factor, ref_grad.factor, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad.mean, ref_grad.mean, rtol=1e-10)

    out, vjp_fn = bridge.vjp(lambda x: x * 3.0, X0)
    assert type(out) is np.ndarray
    (grad_x,) = vjp_fn(np.ones(3))
    assert type(grad_x) is np.ndarray
    np.testing.assert_allclose(grad_x, 3.0)
    hess = bridge.hessian(log_sum_exp)(X0)
    softmax = np.exp(X0) / np.exp(X0).sum()
    assert type(hess) is np.ndarray
    np.testing.assert_allclose(hess, np.diag(softmax) - np.outer(softmax, softmax), atol=1e-12)
    np.testing.assert_allclose(bridge.jacobian(lambda x: 2 * x)(X0), 2 * np.eye(3))
    np.testing.assert_allclose(bridge.grad(log_sum_exp)(X0), softmax, rtol=1e-12)
    assert X0.flags.writeable  # inputs are not touched


def test_dlpack_bridge_rejects_autograd_inner():
    with pytest.raises(BackendError, match="torch or jax"):
        autodiff.DLPackBridge("autograd")


def test_custom_gradient():
    def value_and_grad(x, a, b):
        return quadratic(x, a, b), A_SPD @ x + B_VEC

    def vjp(x):
        return 2 * x, lambda cotangent: (2 * cotangent,)

    backend = autodiff.CustomGradient(value_and_grad=value_and_grad, vjp=vjp)
    value, grad = backend.value_and_grad(quadratic)(X0, A_SPD, B_VEC)
    np.testing.assert_allclose(value, 0.5 * X0 @ A_SPD @ X0 + B_VEC @ X0)
    np.testing.assert_allclose(grad, A_SPD @ X0 + B_VEC)
    np.testing.assert_allclose(backend.grad(quadratic)(X0, A_SPD, B_VEC), A_SPD @ X0 + B_VEC)
    assert isinstance(backend, autodiff.AutodiffBackend)
    assert autodiff.get_backend(backend) is backend
    out, vjp_fn = backend.vjp(None, X0)
    np.testing.assert_allclose(out, 2 * X0)
    np.testing.assert_allclose(vjp_fn(np.ones(3))[0], 2.0)
    np.testing.assert_allclose(backend.jacobian(None)(X0), 2 * np.eye(3))
    with pytest.raises(BackendError, match="Hessian"):
        backend.hessian(quadratic)
    with pytest.raises(BackendError, match="first argument"):
        backend.value_and_grad(quadratic, argnums=1)
    no_vjp = autodiff.CustomGradient(value_and_grad=value_and_grad)
    with pytest.raises(BackendError, match="vjp"):
        no_vjp.vjp(quadratic, X0)
    bound = autodiff.CustomGradient(value_and_grad=value_and_grad, fun=quadratic)
    bound.value_and_grad(quadratic)
    with pytest.raises(BackendError, match="cannot differentiate"):
        bound.value_and_grad(log_sum_exp)
    with pytest.raises(BackendError, match="callable"):
        autodiff.CustomGradient(value_and_grad=3)


def test_custom_gradient_grad_with_aux():
    """``grad(has_aux=True)`` returns ``(grad, aux)`` as the library backends do."""

    def value_and_grad(x, a, b):
        return (quadratic(x, a, b), "aux"), A_SPD @ x + B_VEC

    backend = autodiff.CustomGradient(value_and_grad=value_and_grad)
    grad, aux = backend.grad(quadratic, has_aux=True)(X0, A_SPD, B_VEC)
    np.testing.assert_allclose(grad, A_SPD @ X0 + B_VEC)
    assert aux == "aux"
    library_grad, library_aux = autodiff.get_backend("autograd").grad(
        lambda x, a, b: (quadratic(x, a, b), "aux"), has_aux=True
    )(X0, A_SPD, B_VEC)
    np.testing.assert_allclose(library_grad, grad)
    assert library_aux == aux


# ---------------------------------------------------------------------------------------
# get_backend
# ---------------------------------------------------------------------------------------


def test_get_backend_names_and_errors():
    assert autodiff.get_backend().name == "autograd"
    assert autodiff.get_backend("numpy").name == "autograd"
    assert autodiff.get_backend("AUTOGRAD").name == "autograd"
    assert autodiff.get_backend(None, {"a": np.ones(2)}).name == "autograd"
    with pytest.raises(ValueError, match="'autograd', 'numpy', 'jax', 'torch'"):
        autodiff.get_backend("tensorflow")
    with pytest.raises(BackendError, match="AutodiffBackend"):
        autodiff.get_backend(3.0)


def test_get_backend_array_api_strict():
    strict = pytest.importorskip("array_api_strict")
    with pytest.raises(BackendError, match="CustomGradient"):
        autodiff.get_backend(None, strict.asarray([1.0]))


def test_get_backend_mixed_libraries():
    torch = pytest.importorskip("torch")
    with pytest.raises(BackendError, match="different libraries"):
        autodiff.get_backend(None, np.ones(2), torch.ones(2))


def test_package_imports_without_torch_and_jax():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['jax'] = None\n"
        "from surrogate_natgrad import autodiff\n"
        "import numpy as np\n"
        "print(autodiff.get_backend(None, np.ones(1)).name)\n"
        "try:\n    autodiff.get_backend('torch')\nexcept autodiff.BackendError if False "
        "else Exception as e:\n    print(type(e).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["autograd", "BackendError"]
