"""Every array-API function the library uses, differentiated under every autodiff backend.

Each case is a scalar function of one vector written against the namespace of its input.
Its gradient under autograd (through the autograd-aware namespace), ``torch.func.grad`` and
``jax.grad`` must match central finite differences of the same function evaluated with plain
NumPy (an independent reference: no autodiff involved).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from surrogate_natgrad._compat import namespace
from tests.helpers import central_difference


def _spd(xp, v):
    a = xp.reshape(v[:9], (3, 3))
    return xp.matmul(a, xp.matrix_transpose(a)) + 3.0 * xp.eye(3, dtype=v.dtype)


CASES = {
    "abs": lambda xp, v: xp.sum(xp.abs(v)),
    "exp_log_log1p_expm1": lambda xp, v: xp.sum(
        xp.exp(v) + xp.log(v * v + 1) + xp.log1p(v * v) + xp.expm1(v)
    ),
    "sqrt_square": lambda xp, v: xp.sum(xp.sqrt(v * v + 1.0) + xp.square(v)),
    "trig": lambda xp, v: xp.sum(
        xp.sin(v) * xp.cos(v) + xp.tanh(v) + xp.tan(0.1 * v) + xp.sinh(0.1 * v) + xp.cosh(0.1 * v)
    ),
    "inverse_trig": lambda xp, v: xp.sum(
        xp.atan(v)
        + xp.asinh(v)
        + xp.acos(0.1 * xp.tanh(v))
        + xp.asin(0.1 * xp.tanh(v))
        + xp.atan2(v, 2.0 + v * v)
        + xp.atanh(0.5 * xp.tanh(v))
    ),
    "pow": lambda xp, v: xp.sum(xp.pow(v * v + 1.0, 1.5) + xp.pow(2.0, v)),
    "divide_multiply": lambda xp, v: xp.sum(
        xp.divide(v, v * v + 2.0) * xp.multiply(v, 3.0)
        - xp.subtract(v, 1.0)
        + xp.add(v, 2.0)
        + xp.negative(v)
    ),
    "maximum_minimum": lambda xp, v: xp.sum(xp.maximum(v, 0.3) + xp.minimum(v, -0.2)),
    "where": lambda xp, v: xp.sum(xp.where(v > 0, v * v, -v)),
    "clip": lambda xp, v: xp.sum(xp.clip(v, -0.5, 0.5) * v),
    "logaddexp": lambda xp, v: xp.sum(xp.logaddexp(v, 2.0 * v)),
    "hypot": lambda xp, v: xp.sum(xp.hypot(v, 1.0 + v * v)),
    "reductions": lambda xp, v: xp.sum(v) + xp.prod(v[:4]) + xp.mean(v * v) + xp.max(v) + xp.min(v),
    "std_var": lambda xp, v: xp.std(v, correction=1) + xp.var(v),
    "reductions_axis": lambda xp, v: xp.sum(
        xp.mean(xp.reshape(v[:12], (3, 4)), axis=0, keepdims=True) ** 2
    ),
    "reshape_permute": lambda xp, v: xp.sum(
        xp.permute_dims(xp.reshape(v[:12], (3, 4)), (1, 0))[0] ** 2
    ),
    "expand_squeeze": lambda xp, v: xp.sum(xp.squeeze(xp.expand_dims(v, axis=0), axis=0) ** 3),
    "concat_stack": lambda xp, v: (
        xp.sum(xp.concat([v, 2 * v], axis=0) ** 2) + xp.sum(xp.stack([v, v * v], axis=1)[:, 1])
    ),
    "unstack": lambda xp, v: xp.sum(xp.unstack(xp.reshape(v[:12], (3, 4)), axis=1)[2] ** 2),
    "broadcast_to": lambda xp, v: xp.sum(
        xp.broadcast_to(v[None, :], (3, v.shape[0]))
        * xp.reshape(xp.arange(3 * v.shape[0], dtype=v.dtype), (3, v.shape[0]))
    ),
    "broadcast_arrays": lambda xp, v: xp.sum(
        xp.broadcast_arrays(v[:, None], v[None, :])[0]
        * xp.broadcast_arrays(v[:, None], v[None, :])[1] ** 2
    ),
    "flip_roll": lambda xp, v: xp.sum(xp.flip(v, axis=0) * v) + xp.sum(xp.roll(v, 2) * v),
    "tile_repeat": lambda xp, v: xp.sum(
        xp.tile(v[:3], (2,)) * xp.repeat(v[:3], 2) * xp.arange(6, dtype=v.dtype)
    ),
    "moveaxis": lambda xp, v: xp.sum(
        xp.moveaxis(xp.reshape(v[:12], (2, 3, 2)), 0, -1)[..., 0] ** 2
    ),
    "matmul_transpose": lambda xp, v: xp.sum(
        xp.matmul(xp.reshape(v[:6], (2, 3)), xp.matrix_transpose(xp.reshape(v[6:12], (2, 3)))) ** 2
    ),
    "vecdot": lambda xp, v: xp.vecdot(v, v * v),
    "tensordot": lambda xp, v: xp.sum(
        xp.tensordot(xp.reshape(v[:6], (2, 3)), xp.reshape(v[6:12], (3, 2)), axes=1) ** 2
    ),
    "cumulative_sum": lambda xp, v: xp.sum(xp.cumulative_sum(v) ** 2),
    "cumulative_prod": lambda xp, v: xp.sum(xp.cumulative_prod(1.0 + 0.1 * v * v)),
    "sort": lambda xp, v: xp.sum(xp.sort(v) * xp.arange(v.shape[0], dtype=v.dtype)),
    "take": lambda xp, v: xp.sum(xp.take(v, xp.asarray([0, 2, 2, 5]), axis=0) ** 2),
    "indexing": lambda xp, v: xp.sum(v[1:5] ** 2) + v[0] * v[-1],
    "astype": lambda xp, v: xp.sum(xp.astype(v, xp.float64) ** 2),
    "asarray_of_traced": lambda xp, v: xp.sum(xp.asarray(v) ** 2),
    "tril_triu": lambda xp, v: xp.sum(
        xp.tril(xp.reshape(v[:9], (3, 3))) ** 2 + 2.0 * xp.triu(xp.reshape(v[:9], (3, 3)), k=1)
    ),
    "full_like_zeros_like": lambda xp, v: xp.sum((v + xp.zeros_like(v) + xp.ones_like(v)) ** 2),
    "sign_floor": lambda xp, v: xp.sum(v * xp.sign(v) + xp.floor(v)),
    "linalg.cholesky": lambda xp, v: xp.sum(xp.linalg.cholesky(_spd(xp, v)) ** 2),
    "linalg.solve": lambda xp, v: xp.sum(xp.linalg.solve(_spd(xp, v), v[9:12, None]) ** 2),
    "linalg.slogdet": lambda xp, v: xp.linalg.slogdet(_spd(xp, v))[1],
    "linalg.inv": lambda xp, v: xp.sum(xp.linalg.inv(_spd(xp, v))),
    "linalg.det": lambda xp, v: xp.linalg.det(_spd(xp, v)),
    "linalg.eigh": lambda xp, v: xp.sum(xp.linalg.eigh(_spd(xp, v))[0] ** 2),
    "linalg.eigvalsh": lambda xp, v: xp.sum(xp.log(xp.linalg.eigvalsh(_spd(xp, v)))),
    "linalg.diagonal_trace": lambda xp, v: (
        xp.sum(xp.linalg.diagonal(_spd(xp, v)) ** 2) + xp.linalg.trace(_spd(xp, v))
    ),
    "linalg.outer": lambda xp, v: xp.sum(xp.linalg.outer(v[:3], v[3:6]) ** 2),
    "linalg.vector_norm": lambda xp, v: xp.linalg.vector_norm(v) + xp.linalg.vector_norm(v, ord=1),
    "linalg.matrix_norm": lambda xp, v: xp.linalg.matrix_norm(xp.reshape(v[:9], (3, 3))),
}


def _gradient(name: str, fun, x: np.ndarray):
    if name == "numpy":
        from autograd import grad

        return grad(lambda v: fun(namespace(v), v))(x)
    if name == "torch":
        import torch

        def wrapped(v):
            return fun(namespace(v), v)

        return torch.func.grad(wrapped)(torch.asarray(x)).numpy()
    if name == "jax":
        import jax
        import jax.numpy as jnp

        return np.asarray(jax.grad(lambda v: fun(namespace(v), v))(jnp.asarray(x)))
    raise ValueError(name)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradient_matches_finite_differences(ad_backend, case):
    if ad_backend.name not in {"numpy", "torch", "jax"}:
        pytest.skip("CPU autodiff backends only")
    fun = CASES[case]
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    x = rng.uniform(0.2, 1.2, size=14) * rng.choice([-1.0, 1.0], size=14)
    if case in {"cumulative_prod"}:
        x = np.abs(x)
    import array_api_compat.numpy as cnp

    reference = central_difference(lambda v: float(fun(cnp, cnp.asarray(v))), x, step=1e-5)
    grad = _gradient(ad_backend.name, fun, x)
    np.testing.assert_allclose(np.asarray(grad), reference, rtol=1e-6, atol=1e-7)


def test_autograd_namespace_is_used_for_traced_values():
    from autograd import grad

    seen = []

    def fun(v):
        xp = namespace(v)
        seen.append(xp.__name__)
        return xp.sum(v * v)

    grad(fun)(np.ones(3))
    assert seen == ["surrogate_natgrad.autograd_namespace"]
