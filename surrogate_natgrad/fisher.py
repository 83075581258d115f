"""Fisher information utilities: Monte Carlo estimates, pull-backs and damped solves.

SNGD itself never forms a Fisher matrix; these helpers serve the natural-gradient baseline
(:class:`~surrogate_natgrad.rules.NaturalGradientDescent`), diagnostics and tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from surrogate_natgrad import _tree, autodiff
from surrogate_natgrad._compat import Array, as_float_array, device, namespace
from surrogate_natgrad._compat import linalg as compat_linalg
from surrogate_natgrad.autodiff import AutodiffBackend
from surrogate_natgrad.errors import DataError, DomainError

__all__ = ["monte_carlo_fisher", "natural_gradient_solve", "pullback_fisher"]


def _check_square(name: str, matrix: Array) -> int:
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise DataError(f"{name} must be a square matrix, got shape {tuple(matrix.shape)}")
    return int(matrix.shape[0])


def monte_carlo_fisher(
    log_prob: Callable[[Any, Any], Array],
    params: Any,
    samples: Any,
    backend: str | AutodiffBackend | None = None,
    *,
    batched_params: bool = False,
) -> Array:
    """Estimate the Fisher information ``E[s sᵀ]`` from samples.

    ``s`` is the score, the gradient of ``log_prob(params, x)`` with respect to the
    flattened ``params`` (leaves concatenated in pytree order, as
    :func:`surrogate_natgrad._tree.ravel_tree` does).

    Parameters
    ----------
    log_prob : callable
        ``log_prob(params, samples) -> array of shape (n,)``: the log density of each sample.
    params : pytree of arrays
        Where to evaluate the Fisher.
    samples : array or pytree of arrays
        ``n`` samples (leading axis), usually drawn from the distribution at ``params``.
    backend : str, optional
        Autodiff backend name; by default chosen from the arrays.
    batched_params : bool
        If True, ``log_prob`` must broadcast over a leading axis of the parameter leaves
        (one parameter copy per sample). All ``n`` scores then come from a single
        reverse-mode pass instead of a dense Jacobian, which is much faster for many samples.

    Returns
    -------
    array, shape (P, P)
        The symmetric Monte Carlo Fisher, ``P`` the number of parameter entries.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(1.0, 2.0, size=20000)
    >>> def log_prob(params, data):
    ...     mean, log_scale = params
    ...     z = (data - mean) / np.exp(log_scale)
    ...     return -0.5 * z**2 - log_scale - 0.5 * np.log(2 * np.pi)
    >>> params = (np.array(1.0), np.array(np.log(2.0)))
    >>> fisher = monte_carlo_fisher(log_prob, params, x, batched_params=True)
    >>> bool(np.allclose(fisher, np.diag([1 / 4.0, 2.0]), atol=0.05))  # diag(1/σ², 2)
    True
    """
    bridge = autodiff.bridge_for(backend, params)
    if bridge is not None:
        # CuPy arrays: the whole estimate runs on zero-copy torch/JAX views (log_prob
        # then meets one library), and the Fisher comes back in the source library.
        return bridge.call(
            lambda inner_params, inner_samples: monte_carlo_fisher(
                log_prob, inner_params, inner_samples, bridge, batched_params=batched_params
            ),
            params,
            samples,
        )
    flat, unravel = _tree.ravel_tree(params)
    xp = namespace(flat)
    sample_leaves = _tree.tree_leaves(samples)
    if not sample_leaves:
        raise DataError("samples must contain at least one array")
    n_samples = int(sample_leaves[0].shape[0])
    if n_samples < 1:
        raise DataError("samples must contain at least one sample")
    ad = autodiff.get_backend(backend, flat)
    if batched_params:
        scores = _batched_scores(log_prob, params, samples, ad, n_samples)
    else:

        def log_probs(flat_params: Array) -> Array:
            return log_prob(unravel(flat_params), samples)

        scores = ad.jacobian(log_probs)(flat)
        if tuple(scores.shape) != (n_samples, int(flat.shape[0])):
            raise DataError(
                "log_prob(params, samples) must return one log density per sample, shape "
                f"({n_samples},); the score matrix has shape {tuple(scores.shape)}"
            )
    fisher = xp.matmul(xp.linalg.matrix_transpose(scores), scores) / n_samples
    return compat_linalg.symmetrize(fisher)


def _batched_scores(
    log_prob: Callable[[Any, Any], Array], params: Any, samples: Any, ad: Any, n_samples: int
) -> Array:
    """Per-sample scores by differentiating ``sum_i log_prob(params_i, x_i)`` once."""
    leaves, treedef = _tree.tree_flatten(params)
    xp = namespace(*leaves)
    batched = [xp.broadcast_to(leaf[None, ...], (n_samples, *leaf.shape)) for leaf in leaves]
    # A fresh array per leaf: the gradient with respect to it is the per-sample score.
    batched = [xp.asarray(b, copy=True) for b in batched]

    def total(batched_leaves: list[Array]) -> Array:
        return xp.sum(log_prob(_tree.tree_unflatten(treedef, batched_leaves), samples))

    grads = ad.grad(total)(batched)
    columns = [xp.reshape(g, (n_samples, math.prod(int(s) for s in g.shape[1:]))) for g in grads]
    return xp.concat(columns, axis=1) if len(columns) > 1 else columns[0]


def pullback_fisher(surrogate_fisher: Array, jacobian: Array) -> Array:
    """Return ``Jᵀ F J``, the Fisher pulled back through a map with Jacobian ``J``.

    Parameters
    ----------
    surrogate_fisher : array, shape (M, M)
        Fisher information ``F`` in the coordinates ``φ``.
    jacobian : array, shape (M, P)
        ``J = ∂φ/∂θ`` of the map from the new coordinates ``θ``.

    Returns
    -------
    array, shape (P, P)
        The Fisher information in the coordinates ``θ`` (symmetrised).
    """
    xp = namespace(surrogate_fisher=surrogate_fisher, jacobian=jacobian)
    size = _check_square("surrogate_fisher", surrogate_fisher)
    if jacobian.ndim != 2 or int(jacobian.shape[0]) != size:
        raise DataError(
            f"jacobian must have shape ({size}, P) to match surrogate_fisher, "
            f"got {tuple(jacobian.shape)}"
        )
    pulled = xp.matmul(xp.linalg.matrix_transpose(jacobian), xp.matmul(surrogate_fisher, jacobian))
    return compat_linalg.symmetrize(pulled)


def natural_gradient_solve(fisher: Array, grad: Array, damping: float = 0.0) -> Array:
    """Solve ``(F + damping I) d = g`` by a Cholesky factorisation.

    Parameters
    ----------
    fisher : array, shape (P, P)
        Symmetric Fisher information.
    grad : array, shape (P,)
        The ordinary gradient (flattened).
    damping : float
        Non-negative multiple of the identity added to ``fisher``.

    Returns
    -------
    array, shape (P,)
        The natural gradient ``d``.

    Raises
    ------
    DomainError
        If the damped Fisher is not (numerically) positive definite; the message names its
        smallest eigenvalue.
    DataError
        For mismatched shapes or a negative damping.
    """
    xp = namespace(fisher=fisher, grad=grad)
    size = _check_square("fisher", fisher)
    if grad.ndim != 1 or int(grad.shape[0]) != size:
        raise DataError(f"grad must have shape ({size},), got {tuple(grad.shape)}")
    if not damping >= 0:
        raise DataError(f"damping must be non-negative, got {damping!r}")
    fisher = as_float_array(fisher, xp)
    damped = compat_linalg.symmetrize(fisher)
    if damping:
        identity = xp.eye(size, dtype=fisher.dtype, device=device(fisher))
        damped = damped + damping * identity
    if not bool(xp.all(compat_linalg.is_positive_definite(damped))):
        smallest = _smallest_eigenvalue(damped, xp)
        raise DomainError(
            "the (damped) Fisher matrix is not positive definite"
            f"{smallest}; increase damping or use more Monte Carlo samples"
        )
    chol = compat_linalg.cholesky(damped)
    return compat_linalg.cho_solve(chol, grad[:, None])[:, 0]


def _smallest_eigenvalue(matrix: Array, xp: Any) -> str:
    try:
        if not bool(xp.all(xp.isfinite(matrix))):
            return " (it has non-finite entries)"
        value = float(xp.min(xp.linalg.eigvalsh(matrix)))
    except Exception:  # the eigenvalue only decorates the message
        return ""
    return f" (smallest eigenvalue {value:.3g})"
