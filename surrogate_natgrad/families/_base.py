"""Shared machinery of the exponential-family surrogates (pure math, array API only).

A family is a small stateless object. Its parameters are named tuples of arrays (natural,
mean and standard parameters); every array may carry leading batch dimensions. Natural and
mean parameters share one layout ("leaves" with fixed event shapes), which fixes how they
flatten into vectors: leaf by leaf, each leaf in row-major order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from surrogate_natgrad._compat import Array, Namespace, asarray, namespace
from surrogate_natgrad._compat import linalg as _linalg
from surrogate_natgrad.errors import DomainError

__all__ = ["ExponentialFamily"]


def matvec(matrix: Array, vector: Array) -> Array:
    """Return ``matrix @ vector`` for stacks of matrices and vectors (broadcasting)."""
    return (matrix @ vector[..., None])[..., 0]


def vecdot(x: Array, y: Array) -> Array:
    """Return the inner products over the last axis (broadcasting)."""
    xp = namespace(x, y)
    return xp.sum(x * y, axis=-1)


def cho_solve_vector(chol: Array, vector: Array) -> Array:
    """Solve ``(L L^T) x = vector`` for stacks of vectors."""
    return _linalg.cho_solve(chol, vector[..., None])[..., 0]


def all_true(flags: Array) -> bool | None:
    """Return ``bool(all(flags))``, or None where ``flags`` is traced and has no value yet.

    Under ``jax.jit`` the flags are abstract; iterative solvers then run their fixed
    maximum number of iterations instead of stopping early.
    """
    xp = namespace(flags)
    try:
        return bool(xp.all(flags))
    except Exception:
        return None


def constant(value: float, like: Array) -> Array:
    """Return ``value`` as a 0-d array with the dtype and device of ``like``."""
    xp = namespace(like)
    return asarray(value, xp, dtype=like.dtype, like=like)


class ExponentialFamily:
    """Base class of the exponential-family surrogates.

    Subclasses set :attr:`natural_type`, :attr:`mean_type`, :attr:`standard_type` (named
    tuples), :attr:`event_ndim` (dimensions of one data point) and implement
    :meth:`natural_event_shapes`, :meth:`log_partition`, :meth:`natural_to_mean`,
    :meth:`mean_to_natural`, :meth:`natural_to_standard`, :meth:`standard_to_natural`,
    :meth:`sufficient_statistics`, :meth:`fisher_vector_product`, the domain checks and
    :meth:`sample`. The base class supplies flattening, the dense Fisher (from the Fisher-vector
    product on a basis), KL divergence and entropy (for a unit base measure), ``log_prob`` and
    the ``validate_*`` checks.
    """

    natural_type: type
    mean_type: type
    standard_type: type
    #: Number of array dimensions of one data point ``x``.
    event_ndim: int = 1

    # ------------------------------------------------------------------ layout

    def natural_event_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Return the event shape of each leaf of the natural (and mean) parameters.

        Returns
        -------
        tuple of tuple of int
            One event shape per leaf, e.g. ``((d,), (d, d))`` for a ``d``-dimensional Gaussian.
        """
        raise NotImplementedError

    def leaves(self, params: Sequence[Any]) -> list[Array]:
        """Return the arrays of natural or mean ``params`` in flattening order.

        Parameters
        ----------
        params : named tuple of arrays
            Natural or mean parameters.

        Returns
        -------
        list of array
            One array per leaf, in the order of :meth:`natural_event_shapes`.
        """
        return list(params)

    def from_leaves(self, leaves: Sequence[Array], kind: str = "natural") -> Any:
        """Rebuild natural (``kind="natural"``) or mean (``"mean"``) parameters from leaves.

        Parameters
        ----------
        leaves : sequence of array
            The arrays, in the order of :meth:`leaves`.
        kind : {"natural", "mean"}, optional
            Which named tuple to build.

        Returns
        -------
        named tuple of arrays
            :attr:`natural_type` or :attr:`mean_type`.
        """
        cls = self.natural_type if kind == "natural" else self.mean_type
        return cls(*leaves)

    @property
    def flat_dim(self) -> int:
        """Length of the flattened natural (and mean) parameter vector."""
        return sum(math.prod(shape) for shape in self.natural_event_shapes())

    def batch_shape(self, params: Sequence[Any]) -> tuple[int, ...]:
        """Return the broadcast batch shape of natural or mean ``params``.

        Parameters
        ----------
        params : named tuple of arrays
            Natural or mean parameters.

        Returns
        -------
        tuple of int
            The leaves' leading (non-event) shapes, broadcast together.
        """
        shapes = []
        for leaf, event in zip(self.leaves(params), self.natural_event_shapes(), strict=True):
            shapes.append(tuple(leaf.shape[: leaf.ndim - len(event)]))
        from surrogate_natgrad._compat import broadcast_shapes

        return broadcast_shapes(*shapes)

    def flatten_natural(self, natural: Sequence[Any]) -> Array:
        """Flatten natural parameters into vectors of length :attr:`flat_dim`.

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters, possibly with leading batch dimensions.

        Returns
        -------
        array, shape (..., flat_dim)
            Leaves concatenated in order, each in row-major order.
        """
        leaves = self.leaves(natural)
        xp = namespace(*leaves)
        batch = self.batch_shape(natural)
        parts = []
        for leaf, event in zip(leaves, self.natural_event_shapes(), strict=True):
            full = xp.broadcast_to(leaf, batch + tuple(event))
            parts.append(xp.reshape(full, (*batch, math.prod(event))))
        return xp.concat(parts, axis=-1)

    def unflatten_natural(self, flat: Array, kind: str = "natural") -> Any:
        """Invert :meth:`flatten_natural` (``kind="mean"`` builds mean parameters instead).

        Parameters
        ----------
        flat : array, shape (..., flat_dim)
            Flattened parameters.
        kind : {"natural", "mean"}
            Which named tuple to build.

        Returns
        -------
        named tuple of arrays
        """
        xp = namespace(flat=flat)
        batch = tuple(flat.shape[:-1])
        leaves, start = [], 0
        for event in self.natural_event_shapes():
            width = math.prod(event)
            leaves.append(xp.reshape(flat[..., start : start + width], batch + tuple(event)))
            start += width
        return self.from_leaves(leaves, kind)

    def flatten_mean(self, mean: Sequence[Any]) -> Array:
        """Flatten mean parameters (same layout as :meth:`flatten_natural`).

        Parameters
        ----------
        mean : named tuple of arrays
            Mean parameters (:attr:`mean_type`), possibly with leading batch axes.

        Returns
        -------
        array, shape (..., flat_dim)
            Leaves concatenated in order, each in row-major order.
        """
        return self.flatten_natural(mean)

    def unflatten_mean(self, flat: Array) -> Any:
        """Invert :meth:`flatten_mean`.

        Parameters
        ----------
        flat : array, shape (..., flat_dim)
            Flattened mean parameters.

        Returns
        -------
        named tuple of arrays
            Mean parameters (:attr:`mean_type`).
        """
        return self.unflatten_natural(flat, kind="mean")

    def pairing(self, natural: Sequence[Any], mean: Sequence[Any]) -> Array:
        """Return the inner product ``<natural, mean>`` summed over every leaf's event axes.

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters (:attr:`natural_type`), possibly with leading batch axes.
        mean : named tuple of arrays
            Mean parameters (:attr:`mean_type`), possibly with leading batch axes.

        Returns
        -------
        array
            The inner products, with the broadcast batch shape.
        """
        total = None
        for a, b, event in zip(
            self.leaves(natural), self.leaves(mean), self.natural_event_shapes(), strict=True
        ):
            xp = namespace(a, b)
            product = a * b
            if event:
                product = xp.sum(product, axis=tuple(range(-len(event), 0)))
            total = product if total is None else total + product
        return total

    # ------------------------------------------------------------- interface

    def log_partition(self, natural: Any) -> Array:
        """Return the log-partition function ``A(natural)``.

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters (:attr:`natural_type`), possibly with leading batch axes.

        Returns
        -------
        array
            ``A(natural)``, with the batch shape.
        """
        raise NotImplementedError

    def natural_to_mean(self, natural: Any) -> Any:
        """Return the mean parameters ``E[T(x)] = grad A(natural)``.

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters (:attr:`natural_type`), possibly with leading batch axes.

        Returns
        -------
        named tuple of arrays
            Mean parameters (:attr:`mean_type`).
        """
        raise NotImplementedError

    def mean_to_natural(self, mean: Any) -> Any:
        """Return the natural parameters with the given mean parameters.

        Parameters
        ----------
        mean : named tuple of arrays
            Mean parameters (:attr:`mean_type`), possibly with leading batch axes.

        Returns
        -------
        named tuple of arrays
            Natural parameters (:attr:`natural_type`).
        """
        raise NotImplementedError

    def natural_to_standard(self, natural: Any) -> Any:
        """Return the standard parameters of natural parameters ``natural``.

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters (:attr:`natural_type`), possibly with leading batch axes.

        Returns
        -------
        named tuple of arrays
            Standard parameters (:attr:`standard_type`).
        """
        raise NotImplementedError

    def standard_to_natural(self, standard: Any) -> Any:
        """Return the natural parameters of the standard parameters ``standard``.

        Parameters
        ----------
        standard : named tuple of arrays
            Standard parameters (:attr:`standard_type`), possibly with leading batch axes.

        Returns
        -------
        named tuple of arrays
            Natural parameters (:attr:`natural_type`).
        """
        raise NotImplementedError

    def mean_to_standard(self, mean: Any) -> Any:
        """Return the standard parameters of mean parameters ``mean``.

        Parameters
        ----------
        mean : named tuple of arrays
            Mean parameters (:attr:`mean_type`), possibly with leading batch axes.

        Returns
        -------
        named tuple of arrays
            Standard parameters (:attr:`standard_type`).
        """
        return self.natural_to_standard(self.mean_to_natural(mean))

    #: Whether :meth:`natural_cotangent` is implemented in closed form.
    has_natural_cotangent: bool = False

    def natural_cotangent(self, standard: Any, standard_cotangent: Any) -> Any:
        """Chain a gradient in the standard parameters into one in the natural parameters.

        The vector-Jacobian product of :meth:`natural_to_standard` at the natural point
        whose standard parameters are ``standard``. SNGD's MLE form needs the gradient of a
        loss with respect to the natural parameters; with this closed form it
        differentiates the loss only in the standard parameters, which it gets from the
        mean parameters without a factorisation. Families with
        :attr:`has_natural_cotangent` ``False`` are differentiated through
        :meth:`natural_to_standard` instead.

        Parameters
        ----------
        standard : named tuple of arrays
            Standard parameters (:attr:`standard_type`), possibly with leading batch axes.
        standard_cotangent : named tuple of arrays
            The gradient of a scalar with respect to ``standard`` (same layout).

        Returns
        -------
        named tuple of arrays
            The gradient of the same scalar with respect to the natural parameters
            (:attr:`natural_type` layout).
        """
        raise NotImplementedError(f"{type(self).__name__} has no closed-form natural cotangent")

    def standard_to_mean(self, standard: Any) -> Any:
        """Return the mean parameters of standard parameters ``standard``.

        Parameters
        ----------
        standard : named tuple of arrays
            Standard parameters (:attr:`standard_type`), possibly with leading batch axes.

        Returns
        -------
        named tuple of arrays
            Mean parameters (:attr:`mean_type`).
        """
        return self.natural_to_mean(self.standard_to_natural(standard))

    def sufficient_statistics(self, x: Array) -> Any:
        """Return the sufficient statistics ``T(x)`` as a mean-parameter named tuple.

        Parameters
        ----------
        x : array
            Data points, with :attr:`event_ndim` trailing event axes and any leading axes.

        Returns
        -------
        named tuple of arrays
            ``T(x)`` in the layout of :attr:`mean_type`, batched over ``x``'s leading axes.
        """
        raise NotImplementedError

    def log_base_measure(self, x: Array) -> Array:
        """Return ``log h(x)`` (zero unless a family overrides it).

        Parameters
        ----------
        x : array
            Data points, with :attr:`event_ndim` trailing event axes.

        Returns
        -------
        array
            ``log h(x)``, with ``x``'s leading shape.
        """
        xp = namespace(x=x)
        shape = tuple(x.shape[: x.ndim - self.event_ndim])
        return xp.zeros(shape, dtype=x.dtype, device=_device(x))

    def log_prob(self, natural: Any, x: Array) -> Array:
        """Return ``log q(x) = <natural, T(x)> - A(natural) + log h(x)``.

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters (:attr:`natural_type`), possibly with leading batch axes.
        x : array
            Data points, with :attr:`event_ndim` trailing event axes.

        Returns
        -------
        array
            Log-densities, broadcast over the parameters' batch shape and ``x``'s leading shape.
        """
        statistics = self.sufficient_statistics(x)
        return (
            self.pairing(natural, statistics)
            - self.log_partition(natural)
            + self.log_base_measure(x)
        )

    def sample(self, natural: Any, rng: Any, size: int | tuple[int, ...] = ()) -> Array:
        """Draw samples of shape ``size + batch + event`` with the generator ``rng``.

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters (:attr:`natural_type`), possibly with leading batch axes.
        rng : surrogate_natgrad.random.Generator
            A seeded generator in the parameters' namespace
            (:func:`surrogate_natgrad.random.default_rng`).
        size : int or tuple of int, optional
            Leading sample shape.

        Returns
        -------
        array
            Samples, of shape ``size + batch shape + event shape``.
        """
        raise NotImplementedError

    def fisher_vector_product(self, natural: Any, vector: Any) -> Any:
        """Return the Fisher ``grad^2 A(natural)`` applied to the natural-shaped ``vector``.

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters (:attr:`natural_type`), possibly with leading batch axes.
        vector : named tuple of arrays
            A tangent vector in the layout of the natural parameters.

        Returns
        -------
        named tuple of arrays
            ``F(natural) vector``, in the layout of the natural parameters.
        """
        raise NotImplementedError

    def fisher(self, natural: Any) -> Array:
        """Return the Fisher information ``grad^2 A`` as a dense matrix.

        The matrix is over the flattened natural coordinates (:meth:`flatten_natural`), so it
        equals the Hessian of ``log_partition(unflatten_natural(flat))``. It is built by
        applying the closed-form :meth:`fisher_vector_product` to the coordinate basis;
        meant for small dimensions, tests and diagnostics.

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters (:attr:`natural_type`), possibly with leading batch axes.

        Returns
        -------
        array, shape (..., flat_dim, flat_dim)
            The symmetric Fisher matrices.
        """
        leaves = self.leaves(natural)
        xp = namespace(*leaves)
        batch = self.batch_shape(natural)
        size = self.flat_dim
        dtype = leaves[0].dtype
        basis = xp.eye(size, dtype=dtype, device=_device(leaves[0]))
        basis = xp.reshape(basis, (size, *([1] * len(batch)), size))
        products = self.fisher_vector_product(natural, self.unflatten_natural(basis))
        flat = self.flatten_natural(products)  # (size, *batch, size): row i is F e_i
        flat = xp.broadcast_to(flat, (size, *batch, size))
        return xp.moveaxis(flat, 0, -1)

    def kl(self, natural_p: Any, natural_q: Any) -> Array:
        """Return ``KL(p || q)`` between two members given by natural parameters.

        Uses ``A(q) - A(p) - <natural_q - natural_p, mean_p>``, exact for any exponential
        family (families with a cheaper closed form override it).

        Parameters
        ----------
        natural_p, natural_q : named tuple of arrays
            Natural parameters of ``p`` and ``q`` (batch shapes broadcast).

        Returns
        -------
        array
            The divergences, with the broadcast batch shape.
        """
        mean_p = self.natural_to_mean(natural_p)
        difference = self.from_leaves(
            [q - p for q, p in zip(self.leaves(natural_q), self.leaves(natural_p), strict=True)]
        )
        return (
            self.log_partition(natural_q)
            - self.log_partition(natural_p)
            - self.pairing(difference, mean_p)
        )

    def entropy(self, natural: Any) -> Array:
        """Return the entropy ``A - <natural, mean>`` (valid for a unit base measure).

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters (:attr:`natural_type`), possibly with leading batch axes.

        Returns
        -------
        array
            Entropies, with the batch shape.
        """
        return self.log_partition(natural) - self.pairing(natural, self.natural_to_mean(natural))

    def symmetrize(self, params: Any) -> Any:
        """Return ``params`` with symmetric matrix blocks (identity for families without).

        Parameters
        ----------
        params : named tuple of arrays
            Natural or mean parameters (or a gradient in their layout).

        Returns
        -------
        named tuple of arrays
            The same structure, each matrix block replaced by ``(M + Mᵀ) / 2``.
        """
        return params

    def in_natural_domain(self, natural: Any) -> Array:
        """Return which batch members are valid natural parameters.

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters (:attr:`natural_type`), possibly with leading batch axes.

        Returns
        -------
        array of bool
            One flag per batch member (0-d without batch axes).
        """
        raise NotImplementedError

    def in_mean_domain(self, mean: Any) -> Array:
        """Return which batch members are valid mean parameters.

        Parameters
        ----------
        mean : named tuple of arrays
            Mean parameters (:attr:`mean_type`), possibly with leading batch axes.

        Returns
        -------
        array of bool
            One flag per batch member (0-d without batch axes).
        """
        raise NotImplementedError

    def validate_natural(self, natural: Any, name: str = "natural") -> Any:
        """Return ``natural`` unchanged, or raise :class:`DomainError` if any member is invalid.

        Needs concrete values (not for use inside ``jax.jit``).

        Parameters
        ----------
        natural : named tuple of arrays
            Natural parameters (:attr:`natural_type`), possibly with leading batch axes.
        name : str, optional
            The argument's name, used in the error message.

        Returns
        -------
        named tuple of arrays
            ``natural``, unchanged.

        Raises
        ------
        DomainError
            If a batch member is outside the natural domain.
        """
        self._raise_unless(self.in_natural_domain(natural), name, "natural")
        return natural

    def validate_mean(self, mean: Any, name: str = "mean") -> Any:
        """Return ``mean`` unchanged, or raise :class:`DomainError` if any member is invalid.

        Needs concrete values (not for use inside ``jax.jit``).

        Parameters
        ----------
        mean : named tuple of arrays
            Mean parameters (:attr:`mean_type`), possibly with leading batch axes.
        name : str, optional
            The argument's name, used in the error message.

        Returns
        -------
        named tuple of arrays
            ``mean``, unchanged.

        Raises
        ------
        DomainError
            If a batch member is outside the mean domain.
        """
        self._raise_unless(self.in_mean_domain(mean), name, "mean")
        return mean

    def _raise_unless(self, flags: Array, name: str, kind: str) -> None:
        xp = namespace(flags)
        if not bool(xp.all(flags)):
            bad = int(xp.sum(xp.astype(xp.logical_not(flags), xp.int64)))
            raise DomainError(
                f"{name}: {bad} of {max(_size(flags), 1)} parameter sets are outside the "
                f"{kind}-parameter domain of {self!r} ({self._domain_description(kind)})"
            )

    def _domain_description(self, kind: str) -> str:
        return "see the family's documentation"

    def _xp(self, params: Sequence[Any]) -> Namespace:
        return namespace(*self.leaves(params))


def _size(x: Array) -> int:
    return math.prod(int(n) for n in x.shape)


def _device(x: Array) -> Any:
    from surrogate_natgrad._compat import device, is_autograd_box

    return None if is_autograd_box(x) else device(x)
