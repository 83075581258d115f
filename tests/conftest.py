"""Shared fixtures: the array namespaces and autodiff backends every test runs on.

``xp`` runs a test on NumPy, array-api-strict, torch (CPU) and JAX (CPU); ``ad_xp`` only on
those with autodiff (NumPy+autograd, torch, JAX). GPU namespaces (CuPy, torch CUDA) join
with the ``gpu`` marker and are skipped where there is no GPU.
"""

from __future__ import annotations

import importlib.util
import os

# The tests do many tiny solves: BLAS threads only add start-up cost (on a 2-core machine 600
# 3x3 triangular solves took 12 s with threads, 0.07 s without). Set before NumPy loads.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Hypothesis profiles: "ci" by default, "long" with HYPOTHESIS_PROFILE=long.
import tests._hypothesis_profiles  # noqa: E402, F401

if importlib.util.find_spec("jax") is not None:
    import jax

    # The library computes in float64; JAX must be told so before any array exists.
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")


def _load(name: str):
    if name == "numpy":
        import array_api_compat.numpy as mod

        return mod
    if name == "array_api_strict":
        mod = pytest.importorskip("array_api_strict")
        return mod
    if name == "torch":
        pytest.importorskip("torch")
        import array_api_compat.torch as mod

        return mod
    if name == "jax":
        pytest.importorskip("jax")
        import jax.numpy as mod

        return mod
    if name == "cupy":
        cupy = pytest.importorskip("cupy")
        try:
            if cupy.cuda.runtime.getDeviceCount() < 1:
                pytest.skip("no CUDA device")
        except Exception:
            pytest.skip("no CUDA device")
        import array_api_compat.cupy as mod

        return mod
    if name == "torch-cuda":
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("no CUDA device")
        import array_api_compat.torch as mod

        return mod
    raise ValueError(name)


CPU_NAMESPACES = ["numpy", "array_api_strict", "torch", "jax"]
AUTODIFF_NAMESPACES = ["numpy", "torch", "jax"]
GPU_NAMESPACES = [pytest.param(n, marks=pytest.mark.gpu) for n in ("cupy", "torch-cuda")]


class Backend:
    """A namespace under test, with a helper to make arrays on its device."""

    def __init__(self, name: str):
        self.name = name
        self.xp = _load(name)
        self.device = None
        if name == "torch-cuda":
            import torch

            self.device = torch.device("cuda")

    def asarray(self, value, dtype=None):
        xp = self.xp
        if dtype is None:
            value = np.asarray(value)
            if value.dtype.kind == "f":
                dtype = xp.float64 if value.dtype == np.float64 else xp.float32
        if self.device is not None:
            return xp.asarray(value, dtype=dtype, device=self.device)
        return xp.asarray(value, dtype=dtype)

    def __repr__(self) -> str:
        return f"Backend({self.name})"


@pytest.fixture(params=CPU_NAMESPACES + GPU_NAMESPACES)
def backend(request) -> Backend:
    """Every array namespace (autodiff or not)."""
    return Backend(request.param)


@pytest.fixture(params=AUTODIFF_NAMESPACES + GPU_NAMESPACES)
def ad_backend(request) -> Backend:
    """Every array namespace that has automatic differentiation."""
    return Backend(request.param)


@pytest.fixture
def xp(backend):
    """The array namespace of ``backend``."""
    return backend.xp


@pytest.fixture
def ad_xp(ad_backend):
    """The array namespace of ``ad_backend``."""
    return ad_backend.xp
