"""Gauss–Hermite quadrature for expectations under a standard normal (pure Python + array API).

The nodes are computed once per order in pure Python (Newton's method on the orthonormal
Hermite recurrence, as in Golub–Welsch's tridiagonal form) and cached; they are turned into
arrays of the caller's namespace, dtype and device on use.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from surrogate_natgrad._compat import Array, asarray, namespace

__all__ = ["gauss_hermite", "gauss_legendre", "normal_expectation"]


@functools.lru_cache(maxsize=16)
def gauss_hermite(order: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Return Gauss–Hermite nodes and weights for the weight function ``exp(-x²)``.

    ``∫ f(x) exp(-x²) dx ≈ Σ_i w_i f(x_i)``, exact for polynomials of degree ``2·order - 1``.

    Parameters
    ----------
    order : int
        Number of nodes (1 to 300).

    Returns
    -------
    nodes, weights : tuple of float
        Nodes in increasing order and their positive weights (summing to ``√π``).
    """
    if isinstance(order, bool) or int(order) != order or not 1 <= order <= 300:
        raise ValueError(f"order must be an integer in [1, 300], got {order!r}")
    n = int(order)
    nodes = [0.0] * n
    weights = [0.0] * n
    pi_to_minus_quarter = math.pi**-0.25
    z = 0.0
    # Newton's method from the classical asymptotic starting guesses (largest root first).
    for i in range((n + 1) // 2):
        if i == 0:
            z = math.sqrt(2 * n + 1) - 1.85575 * (2 * n + 1) ** (-1.0 / 6.0)
        elif i == 1:
            z -= 1.14 * n**0.426 / z
        elif i == 2:
            z = 1.86 * z - 0.86 * nodes[0]
        elif i == 3:
            z = 1.91 * z - 0.91 * nodes[1]
        else:
            z = 2.0 * z - nodes[i - 2]
        derivative = 1.0
        for _ in range(200):
            # Orthonormal Hermite polynomials by their three-term recurrence.
            current, previous = pi_to_minus_quarter, 0.0
            for j in range(1, n + 1):
                current, previous = (
                    z * math.sqrt(2.0 / j) * current - math.sqrt((j - 1.0) / j) * previous,
                    current,
                )
            derivative = math.sqrt(2.0 * n) * previous
            step = current / derivative
            z -= step
            if abs(step) <= 1e-15 * max(1.0, abs(z)):
                break
        nodes[i], nodes[n - 1 - i] = z, -z
        weights[i] = weights[n - 1 - i] = 2.0 / (derivative * derivative)
    if n % 2 == 1:
        nodes[n // 2] = 0.0
    order_index = sorted(range(n), key=lambda k: nodes[k])
    return tuple(nodes[k] for k in order_index), tuple(weights[k] for k in order_index)


@functools.lru_cache(maxsize=16)
def gauss_legendre(order: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Return Gauss–Legendre nodes and weights on ``[-1, 1]``.

    ``∫_{-1}^{1} f(x) dx ≈ Σ_i w_i f(x_i)``, exact for polynomials of degree ``2·order - 1``.

    Parameters
    ----------
    order : int
        Number of nodes (1 to 1000).

    Returns
    -------
    nodes, weights : tuple of float
        Nodes in increasing order and their weights (summing to 2).
    """
    if isinstance(order, bool) or int(order) != order or not 1 <= order <= 1000:
        raise ValueError(f"order must be an integer in [1, 1000], got {order!r}")
    n = int(order)
    nodes = [0.0] * n
    weights = [0.0] * n
    for i in range((n + 1) // 2):
        z = math.cos(math.pi * (i + 0.75) / (n + 0.5))
        derivative = 1.0
        for _ in range(100):
            current, previous = 1.0, 0.0
            for j in range(1, n + 1):
                current, previous = ((2 * j - 1) * z * current - (j - 1) * previous) / j, current
            derivative = n * (z * current - previous) / (z * z - 1.0)
            step = current / derivative
            z -= step
            if abs(step) <= 1e-16:
                break
        nodes[i], nodes[n - 1 - i] = -z, z
        weights[i] = weights[n - 1 - i] = 2.0 / ((1.0 - z * z) * derivative * derivative)
    if n % 2 == 1:
        nodes[n // 2] = 0.0
    return tuple(nodes), tuple(weights)


def normal_expectation(integrand: Callable[[Array], Array], like: Array, order: int = 100) -> Array:
    """Return ``E[integrand(u)]`` for ``u ~ N(0, 1)`` by Gauss–Hermite quadrature.

    Parameters
    ----------
    integrand : callable
        Maps an array of nodes (shape ``(order,)``) elementwise to values of the same shape
        (it may close over traced arrays; the result stays differentiable in them).
    like : array
        An array whose namespace, dtype and device the nodes take.
    order : int, optional
        Number of nodes (100 by default).

    Returns
    -------
    array
        A 0-d array.
    """
    xp = namespace(like=like)
    nodes, weights = gauss_hermite(order)
    node_array = asarray([math.sqrt(2.0) * x for x in nodes], xp, dtype=like.dtype, like=like)
    weight_array = asarray(
        [w / math.sqrt(math.pi) for w in weights], xp, dtype=like.dtype, like=like
    )
    return xp.sum(weight_array * integrand(node_array))
