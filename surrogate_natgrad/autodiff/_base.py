"""The autodiff protocol and the pytree plumbing shared by every backend.

Every backend works on pytrees of arrays (:mod:`surrogate_natgrad._tree`) in the same
way: the arguments being differentiated are flattened into their leaves, the floating
leaves become one list that the backend's library differentiates (autograd, JAX and
torch all differentiate with respect to a list natively), and the gradients are rebuilt
into the structure of the arguments, so named tuples stay named tuples and dicts stay
dicts on every backend.

Non-floating leaves (integer or boolean arrays, Python scalars) are treated as constants:
they are not differentiated and their gradient is a zero array of the same shape and
dtype (``0`` of the same type for Python numbers; ``None`` for other objects).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from surrogate_natgrad._compat import device, is_array, namespace
from surrogate_natgrad._tree import PyTreeDef, tree_flatten, tree_map, tree_unflatten
from surrogate_natgrad.errors import BackendError

__all__ = ["AutodiffBackend", "PyTreeBackend", "normalise_argnums"]


@runtime_checkable
class AutodiffBackend(Protocol):
    """What the library asks of an automatic-differentiation backend.

    Arguments and outputs are pytrees (tuples, lists, dicts, named tuples of arrays);
    gradients mirror the structure of the argument they belong to. ``argnums`` is an
    ``int`` (the result is one gradient pytree) or a tuple of ints (a tuple of them).
    """

    name: str

    def value_and_grad(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
    ) -> Callable[..., tuple[Any, Any]]:
        """Return ``g(*args) -> (value, grads)``, or ``((value, aux), grads)`` with aux.

        Parameters
        ----------
        fun : callable
            A function of pytrees of arrays. It returns a scalar (and an auxiliary pytree
            when ``has_aux``).
        argnums : int or sequence of int, optional
            Which positional arguments to differentiate (default 0).
        has_aux : bool, optional
            Whether ``fun`` returns ``(value, aux)``.

        Returns
        -------
        callable
            ``g(*args)``; ``grads`` mirrors ``args[argnums]`` (a tuple of pytrees when
            ``argnums`` is a sequence).
        """
        ...

    def grad(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
    ) -> Callable[..., Any]:
        """Return ``g(*args) -> grads``.

        Parameters
        ----------
        fun : callable
            A function of pytrees of arrays. It returns a scalar (``(scalar, aux)`` when
            ``has_aux``).
        argnums : int or sequence of int, optional
            Which positional arguments to differentiate (default 0).
        has_aux : bool, optional
            ``fun`` also returns auxiliary data, passed through undifferentiated.

        Returns
        -------
        callable
            ``g(*args)``, the gradients (structured like the differentiated arguments);
            ``(grads, aux)`` when ``has_aux``.
        """
        ...

    def vjp(self, fun: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], Any]]:
        """Return ``(fun(*primals), vjp_fn)``; ``vjp_fn(cotangent)`` gives one pytree per primal.

        Parameters
        ----------
        fun : callable
            A function of pytrees of arrays.
        *primals : pytree of arrays
            The point at which to linearise ``fun``.

        Returns
        -------
        out : pytree of arrays
            ``fun(*primals)``.
        vjp_fn : callable
            ``vjp_fn(cotangent)`` (a cotangent shaped like ``out``) returns a tuple with one
            pytree per primal.
        """
        ...

    def jacobian(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0
    ) -> Callable[..., Any]:
        """Return ``j(*args)``, the dense Jacobian (output leaf shape + input leaf shape).

        Parameters
        ----------
        fun : callable
            A function of pytrees of arrays.
        argnums : int or sequence of int, optional
            Which positional arguments to differentiate (default 0).

        Returns
        -------
        callable
            ``j(*args)``, the Jacobian blocks (for tests and diagnostics; dense).
        """
        ...

    def hessian(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0
    ) -> Callable[..., Any]:
        """Return ``h(*args)``, the dense Hessian of a scalar ``fun``.

        Parameters
        ----------
        fun : callable
            A function of pytrees of arrays. It returns a scalar.
        argnums : int or sequence of int, optional
            Which positional arguments to differentiate (default 0).

        Returns
        -------
        callable
            ``h(*args)``, the Hessian blocks (for tests and diagnostics; dense).
        """
        ...


def normalise_argnums(argnums: int | Sequence[int]) -> tuple[tuple[int, ...], bool]:
    """Return ``(argnums as a tuple, whether a single int was given)``.

    Raises
    ------
    BackendError
        If ``argnums`` is neither an int nor a non-empty sequence of ints.
    """
    if isinstance(argnums, bool):
        raise BackendError(f"argnums must be an int or a tuple of ints, got {argnums!r}")
    if isinstance(argnums, int):
        return (argnums,), True
    try:
        as_tuple = tuple(argnums)
    except TypeError:
        raise BackendError(
            f"argnums must be an int or a tuple of ints, got {argnums!r}"
        ) from None
    if not as_tuple or not all(isinstance(a, int) and not isinstance(a, bool) for a in as_tuple):
        raise BackendError(f"argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    return as_tuple, False


def is_differentiable_leaf(leaf: Any) -> bool:
    """Return True for arrays (or traced values) of a real or complex floating dtype."""
    if not is_array(leaf):
        return False
    xp = namespace(leaf)
    return bool(xp.isdtype(leaf.dtype, ("real floating", "complex floating")))


def _zero_gradient(leaf: Any) -> Any:
    if is_array(leaf):
        return namespace(leaf).zeros_like(leaf)
    if isinstance(leaf, bool | int | float | complex):
        return type(leaf)(0)
    return None


@dataclass
class SplitArguments:
    """Positional arguments with the floating leaves of some of them pulled out.

    ``diff_leaves`` is the list handed to the backend library; :meth:`rebuild` puts
    (traced) replacements back into the arguments and :meth:`gradients` turns the
    library's gradient list into one pytree per differentiated argument.
    """

    args: tuple[Any, ...]
    argnums: tuple[int, ...]
    leaves: list[list[Any]] = field(default_factory=list)
    treedefs: list[PyTreeDef] = field(default_factory=list)
    # for each argnum, for each leaf: its index into diff_leaves, or None (a constant)
    positions: list[list[int | None]] = field(default_factory=list)
    diff_leaves: list[Any] = field(default_factory=list)

    @classmethod
    def split(cls, args: tuple[Any, ...], argnums: tuple[int, ...]) -> SplitArguments:
        """Flatten ``args[i]`` for every ``i`` in ``argnums``."""
        n_args = len(args)
        for index in argnums:
            if not -n_args <= index < n_args:
                raise BackendError(
                    f"argnums={argnums!r} refers to argument {index}, but the function was "
                    f"called with {n_args} positional argument(s)"
                )
        normalised = tuple(index % n_args for index in argnums)
        if len(set(normalised)) != len(normalised):
            raise BackendError(f"argnums must not repeat an argument, got {argnums!r}")
        split = cls(args=args, argnums=normalised)
        for index in normalised:
            leaves, treedef = tree_flatten(args[index])
            positions: list[int | None] = []
            for leaf in leaves:
                if is_differentiable_leaf(leaf):
                    positions.append(len(split.diff_leaves))
                    split.diff_leaves.append(leaf)
                else:
                    positions.append(None)
            split.leaves.append(leaves)
            split.treedefs.append(treedef)
            split.positions.append(positions)
        return split

    def rebuild(self, diff_leaves: Sequence[Any]) -> list[Any]:
        """Return the arguments with the floating leaves replaced by ``diff_leaves``."""
        args = list(self.args)
        for index, leaves, treedef, positions in zip(
            self.argnums, self.leaves, self.treedefs, self.positions, strict=True
        ):
            new_leaves = [
                leaf if position is None else diff_leaves[position]
                for leaf, position in zip(leaves, positions, strict=True)
            ]
            args[index] = tree_unflatten(treedef, new_leaves)
        return args

    def gradients(self, grad_leaves: Sequence[Any]) -> tuple[Any, ...]:
        """Return one gradient pytree per differentiated argument."""
        grads = []
        for leaves, treedef, positions in zip(
            self.leaves, self.treedefs, self.positions, strict=True
        ):
            grad = [
                _zero_gradient(leaf) if position is None else grad_leaves[position]
                for leaf, position in zip(leaves, positions, strict=True)
            ]
            grads.append(tree_unflatten(treedef, grad))
        return tuple(grads)

    def jacobian_blocks(
        self, blocks: Sequence[Any], out_shape: tuple[int, ...], out_dtype: Any
    ) -> tuple[Any, ...]:
        """Like :meth:`gradients` for one output leaf; constants get zero blocks."""
        grads = []
        for leaves, treedef, positions in zip(
            self.leaves, self.treedefs, self.positions, strict=True
        ):
            grad = []
            for leaf, position in zip(leaves, positions, strict=True):
                if position is not None:
                    grad.append(blocks[position])
                elif is_array(leaf):
                    xp = namespace(leaf)
                    shape = tuple(out_shape) + tuple(int(n) for n in leaf.shape)
                    grad.append(xp.zeros(shape, dtype=out_dtype, device=device(leaf)))
                else:
                    grad.append(None)
            grads.append(tree_unflatten(treedef, grad))
        return tuple(grads)


@dataclass
class _OutputRecord:
    """The structure, shapes and dtypes of a function's output, recorded while tracing."""

    treedef: PyTreeDef | None = None
    shapes: list[tuple[int, ...]] = field(default_factory=list)
    dtypes: list[Any] = field(default_factory=list)

    def flatten(self, out: Any) -> list[Any]:
        leaves, self.treedef = tree_flatten(out)
        self.shapes = [tuple(int(n) for n in getattr(leaf, "shape", ())) for leaf in leaves]
        self.dtypes = [getattr(leaf, "dtype", None) for leaf in leaves]
        return leaves


def flatten_like(treedef: PyTreeDef, tree: Any, what: str) -> list[Any]:
    """Flatten ``tree``, which must have the structure ``treedef``."""
    leaves, other = tree_flatten(tree)
    if other != treedef:
        raise BackendError(
            f"{what} must have the structure of the function's output, {treedef!r}; "
            f"got {other!r}"
        )
    return leaves


def jacobian_rows_from_vjp(
    out_leaves: Sequence[Any],
    vjp_leaves: Callable[[list[Any]], Sequence[Any]],
    n_inputs: int,
    input_shapes: Sequence[tuple[int, ...]],
) -> list[list[Any]]:
    """Dense Jacobian blocks by one vector-Jacobian product per output element.

    Returns ``blocks[k][j]`` of shape ``out_leaves[k].shape + input_shapes[j]``. Meant for
    tests and diagnostics (one reverse pass per output element).
    """
    out_xps = [namespace(leaf) for leaf in out_leaves]
    blocks: list[list[Any]] = []
    for k, (out_leaf, out_xp) in enumerate(zip(out_leaves, out_xps, strict=True)):
        out_shape = tuple(int(n) for n in out_leaf.shape)
        n_out = 1
        for n in out_shape:
            n_out *= n
        identity = out_xp.eye(n_out, dtype=out_leaf.dtype, device=device(out_leaf))
        rows: list[list[Any]] = [[] for _ in range(n_inputs)]
        for r in range(n_out):
            cotangent = [
                out_xp.reshape(identity[r, :], out_shape)
                if i == k
                else out_xps[i].zeros_like(other)
                for i, other in enumerate(out_leaves)
            ]
            grads = vjp_leaves(cotangent)
            for j in range(n_inputs):
                rows[j].append(grads[j])
        block_row = []
        for j in range(n_inputs):
            xp = namespace(*rows[j]) if rows[j] else out_xp
            if rows[j]:
                stacked = xp.stack(rows[j], axis=0)
            else:
                stacked = xp.zeros(
                    (0, *input_shapes[j]), dtype=out_leaf.dtype, device=device(out_leaf)
                )
            block_row.append(xp.reshape(stacked, out_shape + tuple(input_shapes[j])))
        blocks.append(block_row)
    return blocks


class PyTreeBackend:
    """Base class of the library backends: pytree handling over three list primitives.

    Subclasses implement ``_value_and_grad_leaves``, ``_vjp_leaves`` and
    ``_jacobian_leaves``, each on a function of one Python list of arrays.
    """

    name: str = "base"

    def compile(self, fun: Callable[..., Any]) -> Callable[..., Any]:
        """Return ``fun`` compiled for repeated calls where the backend can (JAX), else ``fun``.

        Eager JAX compiles every primitive at every new shape; a loss evaluated many times
        with arguments of fixed shapes is far cheaper as one compiled function, which
        ``value_and_grad`` and ``vjp`` differentiate as usual.

        Parameters
        ----------
        fun : callable
            A pure function of pytrees of arrays.

        Returns
        -------
        callable
        """
        return fun

    # -- primitives -------------------------------------------------------------------

    def _value_and_grad_leaves(
        self, fun: Callable[[list[Any]], Any], leaves: list[Any], has_aux: bool
    ) -> tuple[Any, list[Any]]:
        raise NotImplementedError

    def _vjp_leaves(
        self, fun: Callable[[list[Any]], list[Any]], leaves: list[Any]
    ) -> tuple[list[Any], Callable[[list[Any]], list[Any]]]:
        raise NotImplementedError

    def _jacobian_leaves(
        self, fun: Callable[[list[Any]], list[Any]], leaves: list[Any]
    ) -> list[list[Any]]:
        raise NotImplementedError

    # -- public API --------------------------------------------------------------------

    def value_and_grad(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
    ) -> Callable[..., tuple[Any, Any]]:
        """Return a function computing ``fun``'s value and gradient.

        Parameters
        ----------
        fun : callable
            Scalar-valued function of pytrees of arrays. With ``has_aux`` it returns
            ``(value, aux)``; ``aux`` is passed through undifferentiated.
        argnums : int or tuple of int
            The positional argument(s) to differentiate.
        has_aux : bool
            Whether ``fun`` returns ``(value, aux)``.

        Returns
        -------
        callable
            ``g(*args) -> (value, grads)`` or ``((value, aux), grads)``; ``grads`` has the
            structure of ``args[argnums]`` (a tuple of such for a tuple ``argnums``).
        """
        indices, single = normalise_argnums(argnums)

        def value_and_grad_fun(*args: Any) -> tuple[Any, Any]:
            split = SplitArguments.split(args, indices)

            def of_leaves(diff_leaves: list[Any]) -> Any:
                return fun(*split.rebuild(diff_leaves))

            if split.diff_leaves:
                result, grad_leaves = self._value_and_grad_leaves(
                    of_leaves, list(split.diff_leaves), has_aux
                )
            else:
                result, grad_leaves = fun(*args), []
            grads = split.gradients(list(grad_leaves))
            return result, grads[0] if single else grads

        return value_and_grad_fun

    def grad(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
    ) -> Callable[..., Any]:
        """Return ``g(*args) -> grads`` (``(grads, aux)`` with ``has_aux``); see value_and_grad."""
        value_and_grad_fun = self.value_and_grad(fun, argnums, has_aux)

        def grad_fun(*args: Any) -> Any:
            result, grads = value_and_grad_fun(*args)
            return (grads, result[1]) if has_aux else grads

        return grad_fun

    def vjp(self, fun: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], Any]]:
        """Evaluate ``fun(*primals)`` and return its vector-Jacobian product function.

        Returns
        -------
        out : pytree
            ``fun(*primals)``.
        vjp_fn : callable
            ``vjp_fn(cotangent)``, with ``cotangent`` structured like ``out``, returns a
            tuple with one pytree per primal (structured like that primal).
        """
        split = SplitArguments.split(primals, tuple(range(len(primals))))
        record = _OutputRecord()

        def of_leaves(diff_leaves: list[Any]) -> list[Any]:
            return record.flatten(fun(*split.rebuild(diff_leaves)))

        if split.diff_leaves:
            out_leaves, vjp_leaves = self._vjp_leaves(of_leaves, list(split.diff_leaves))
        else:
            out_leaves = of_leaves([])

            def vjp_leaves(cotangent: list[Any]) -> list[Any]:
                return []

        assert record.treedef is not None
        treedef = record.treedef
        out = tree_unflatten(treedef, list(out_leaves))

        def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
            cotangent_leaves = flatten_like(treedef, cotangent, "the cotangent")
            return split.gradients(list(vjp_leaves(cotangent_leaves)))

        return out, vjp_fn

    def jacobian(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0
    ) -> Callable[..., Any]:
        """Return a function computing the dense Jacobian of ``fun``.

        For each output leaf of shape ``S`` and input leaf of shape ``T`` the block has
        shape ``S + T``; blocks are arranged as a pytree of the output's structure whose
        leaves are pytrees of the input's structure (a tuple of them for a tuple
        ``argnums``), as in ``jax.jacrev``.
        """
        indices, single = normalise_argnums(argnums)

        def jacobian_fun(*args: Any) -> Any:
            split = SplitArguments.split(args, indices)
            record = _OutputRecord()

            def of_leaves(diff_leaves: list[Any]) -> list[Any]:
                return record.flatten(fun(*split.rebuild(diff_leaves)))

            if split.diff_leaves:
                blocks = self._jacobian_leaves(of_leaves, list(split.diff_leaves))
            else:
                blocks = [[] for _ in of_leaves([])]
            assert record.treedef is not None
            per_output = []
            for k, row in enumerate(blocks):
                grads = split.jacobian_blocks(list(row), record.shapes[k], record.dtypes[k])
                per_output.append(grads[0] if single else grads)
            return tree_unflatten(record.treedef, per_output)

        return jacobian_fun

    def hessian(
        self, fun: Callable[..., Any], argnums: int | Sequence[int] = 0
    ) -> Callable[..., Any]:
        """Return a function computing the dense Hessian of a scalar ``fun``.

        The Jacobian of the gradient: for ``argnums=0`` and an argument with leaves of
        shapes ``T_i``, block ``(i, j)`` has shape ``T_i + T_j``.
        """
        return self.jacobian(self.grad(fun, argnums), argnums)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def map_arrays(fn: Callable[[Any], Any], tree: Any) -> Any:
    """Apply ``fn`` to the array leaves of ``tree``, leaving other leaves alone."""
    return tree_map(lambda leaf: fn(leaf) if is_array(leaf) else leaf, tree)
