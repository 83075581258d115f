"""The array layer: namespace resolution, errors for mixed inputs, dtypes, functional updates."""

from __future__ import annotations

import numpy as np
import pytest

from surrogate_natgrad._compat import (
    array_library_name,
    as_float_array,
    at_add,
    at_set,
    device,
    dtype_tolerance,
    float_dtype,
    namespace,
    size,
    to_numpy,
)
from surrogate_natgrad.errors import BackendError
from tests.helpers import central_difference


def test_namespace_of_each_backend(backend):
    x = backend.asarray([1.0, 2.0])
    xp = namespace(x, 3.0, None)
    assert xp.sum(x) is not None
    assert array_library_name(xp) in {"numpy", "array_api_strict", "torch", "jax", "cupy"}
    assert device(x) == device(xp.exp(x))


def test_numpy_namespace_matches_array_api_compat():
    """Plain NumPy arguments (arrays, NumPy and Python scalars, None) take a fast path that
    must give what array_api_compat gives; anything else goes through the full checks."""
    import array_api_compat

    expected = array_api_compat.array_namespace(np.ones(2))
    assert namespace(np.ones(2)) is expected
    assert namespace(np.float64(1.0), 2, None, data=np.ones((2, 2))) is expected
    with pytest.raises(BackendError, match="at least one array"):
        namespace(1.0, None)
    with pytest.raises(BackendError, match="must be an array"):
        namespace(np.ones(2), [1.0])


def test_mixed_libraries_raise_and_name_the_arguments():
    torch = pytest.importorskip("torch")
    with pytest.raises(BackendError, match=r"data: numpy\.ndarray, init: torch\.Tensor"):
        namespace(data=np.ones(2), init=torch.ones(2))


def test_mixed_with_array_api_strict_raises():
    strict = pytest.importorskip("array_api_strict")
    with pytest.raises(BackendError, match="different libraries"):
        namespace(np.ones(2), strict.ones(2))


def test_mixed_devices_raise():
    strict = pytest.importorskip("array_api_strict")
    cpu = strict.asarray([1.0], device=strict.Device("CPU_DEVICE"))
    other = strict.asarray([1.0], device=strict.Device("device1"))
    with pytest.raises(BackendError, match="different devices"):
        namespace(loc=cpu, scale=other)


@pytest.mark.parametrize("bad", [[1.0, 2.0], (1.0,), "abc", {"a": 1}])
def test_non_arrays_raise(bad):
    with pytest.raises(BackendError, match="data must be an array"):
        namespace(data=bad)


def test_no_arrays_raise():
    with pytest.raises(BackendError, match="at least one array"):
        namespace(1.0, None)


def test_errors_are_builtin_types_too():
    with pytest.raises(TypeError):
        namespace([1.0])


def test_float_dtype_rules(backend):
    xp = backend.xp
    assert float_dtype(xp, backend.asarray([1, 2])) == xp.float64
    assert float_dtype(xp, backend.asarray([1.0], dtype=xp.float32)) == xp.float32
    assert float_dtype(xp, backend.asarray([1.0])) == xp.float64
    assert as_float_array(backend.asarray([1, 2]), xp).dtype == xp.float64
    assert dtype_tolerance(xp, xp.float32) > dtype_tolerance(xp, xp.float64)
    assert dtype_tolerance(xp, xp.float64) == pytest.approx(np.finfo(np.float64).eps ** 0.5)


def test_at_set_and_add_never_write_the_input(backend):
    x = backend.asarray([1.0, 2.0, 3.0])
    before = to_numpy(x).copy()
    y = at_set(x, 1, 10.0)
    z = at_add(x, 2, 5.0)
    np.testing.assert_array_equal(to_numpy(x), before)
    np.testing.assert_array_equal(to_numpy(y), [1.0, 10.0, 3.0])
    np.testing.assert_array_equal(to_numpy(z), [1.0, 2.0, 8.0])
    assert namespace(y) is namespace(x) or type(y) is type(x)


def test_at_set_read_only_numpy_input():
    x = np.arange(3.0)
    x.setflags(write=False)
    y = at_set(x, 0, 7.0)
    assert x[0] == 0.0 and y[0] == 7.0


def _at_function(xp, v):
    y = at_set(v, slice(0, 2), v[2:4] * v[4:6])
    y = at_add(y, 3, v[0] ** 2)
    return xp.sum(y**2)


def test_at_updates_are_differentiable(ad_backend):
    x = np.array([0.5, -1.0, 1.5, 2.0, -0.7, 0.3])
    import array_api_compat.numpy as cnp

    reference = central_difference(lambda v: float(_at_function(cnp, v)), x)
    if ad_backend.name == "numpy":
        from autograd import grad

        got = grad(lambda v: _at_function(namespace(v), v))(x)
    elif ad_backend.name == "torch":
        import torch

        got = torch.func.grad(lambda v: _at_function(namespace(v), v))(torch.asarray(x)).numpy()
    elif ad_backend.name == "jax":
        import jax

        got = np.asarray(jax.grad(lambda v: _at_function(namespace(v), v))(jax.numpy.asarray(x)))
    else:
        pytest.skip("CPU autodiff backends only")
    np.testing.assert_allclose(got, reference, rtol=1e-7, atol=1e-8)


def test_size_and_to_numpy(backend):
    x = backend.asarray(np.ones((2, 3)))
    assert size(x) == 6
    assert isinstance(to_numpy(x), np.ndarray)
