"""Automatic differentiation over pytrees of arrays, on several libraries.

An :class:`AutodiffBackend` turns functions of pytrees of arrays (tuples, lists, dicts,
named tuples) into their gradients, vector-Jacobian products, Jacobians and Hessians, with
the same semantics on every backend:

- :class:`AutogradBackend` (NumPy arrays; the default),
- :class:`JaxBackend` (JAX arrays; the functions it returns can be ``jax.jit``-ed),
- :class:`TorchBackend` (torch tensors; built on ``torch.func``),
- :class:`DLPackBridge` (arrays of a library without autodiff, such as CuPy, differentiated
  by torch or JAX through zero-copy DLPack conversion),
- :class:`CustomGradient` (a gradient the user supplies).

:func:`get_backend` picks one from a name or from the arrays. :func:`implicit_root`
differentiates the root of an elementwise equation by the implicit-function theorem.

Examples
--------
>>> import numpy as np
>>> from surrogate_natgrad import autodiff
>>> backend = autodiff.get_backend(None, np.ones(2))
>>> value, grad = backend.value_and_grad(lambda x: (x**2).sum())(np.array([1.0, 2.0]))
>>> float(value), grad.tolist()
(5.0, [2.0, 4.0])
"""

from __future__ import annotations

from surrogate_natgrad.autodiff._autograd import AutogradBackend
from surrogate_natgrad.autodiff._base import AutodiffBackend
from surrogate_natgrad.autodiff._bridge import DLPackBridge, bridge_for
from surrogate_natgrad.autodiff._custom import CustomGradient
from surrogate_natgrad.autodiff._external import external_function
from surrogate_natgrad.autodiff._implicit import implicit_root
from surrogate_natgrad.autodiff._jax import JaxBackend
from surrogate_natgrad.autodiff._select import BACKEND_NAMES, get_backend
from surrogate_natgrad.autodiff._torch import TorchBackend

__all__ = [
    "BACKEND_NAMES",
    "AutodiffBackend",
    "AutogradBackend",
    "CustomGradient",
    "DLPackBridge",
    "JaxBackend",
    "TorchBackend",
    "bridge_for",
    "external_function",
    "get_backend",
    "implicit_root",
]
