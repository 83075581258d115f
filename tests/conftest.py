"""Shared fixtures: the array namespaces and autodiff backends every test runs on.

``xp`` runs a test on NumPy, array-api-strict, torch (CPU) and JAX (CPU); ``ad_xp`` only on
those with autodiff (NumPy+autograd, torch, JAX) plus ``strict-bridge``: array-api-strict
arrays differentiated by torch through the DLPack bridge, the CPU stand-in for CuPy (a
library without autodiff that borrows torch's on its own device). GPU namespaces (CuPy,
torch CUDA) join with the ``gpu`` marker and are skipped where there is no GPU.

Under a DLPack bridge a differentiated function receives inner-library (torch) arrays;
tests write their objectives against ``backend.inner(data)`` views of the data they
close over (zero-copy; the identity for the other backends).
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
    if name == "strict-bridge":
        pytest.importorskip("torch")
        return pytest.importorskip("array_api_strict")
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
AUTODIFF_NAMESPACES = ["numpy", "torch", "jax", "strict-bridge"]
#: Backends whose autodiff is borrowed through a DLPack bridge.
BRIDGED = ("cupy", "strict-bridge")
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

    @property
    def bridged(self) -> bool:
        """Whether autodiff reaches these arrays through a DLPack bridge."""
        return self.name in BRIDGED

    def autodiff(self):
        """The autodiff backend the library picks for these arrays."""
        from surrogate_natgrad import autodiff

        return autodiff.get_backend(None, self.asarray([0.0]))

    def inner(self, tree):
        """``tree`` as a differentiated function sees it: under a bridge, inner-library views."""
        if not self.bridged:
            return tree
        return self.autodiff().to_inner(tree)

    def __repr__(self) -> str:
        return f"Backend({self.name})"


def _stand_in_for_cupy(monkeypatch) -> None:
    """Make array-api-strict borrow torch's autodiff through DLPack, as CuPy does on a GPU."""
    from surrogate_natgrad.autodiff import DLPackBridge, _select

    monkeypatch.setitem(
        _select._BORROWED_AUTODIFF, "array_api_strict", lambda: DLPackBridge("torch")
    )


@pytest.fixture(params=CPU_NAMESPACES + GPU_NAMESPACES)
def backend(request) -> Backend:
    """Every array namespace (autodiff or not)."""
    return Backend(request.param)


@pytest.fixture(params=AUTODIFF_NAMESPACES + GPU_NAMESPACES)
def ad_backend(request, monkeypatch) -> Backend:
    """Every array namespace that has automatic differentiation (own or bridged)."""
    backend = Backend(request.param)
    if request.param == "strict-bridge":
        _stand_in_for_cupy(monkeypatch)
    return backend


@pytest.fixture
def xp(backend):
    """The array namespace of ``backend``."""
    return backend.xp


@pytest.fixture
def ad_xp(ad_backend):
    """The array namespace of ``ad_backend``."""
    return ad_backend.xp


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full-recovery",
        action="store_true",
        default=False,
        help=(
            "run every case of tests/test_recovery.py on 10⁵ samples (the skew-t and the "
            "t copula take minutes there; by default they use fewer)"
        ),
    )
