"""Pytrees: nested containers of arrays, flattened to a list of leaves and a structure.

Parameters of distributions and surrogates are pytrees: tuples, lists, dicts and named
tuples of arrays, nested arbitrarily. This module flattens them into a list of *leaves*
and a :class:`PyTreeDef` describing the structure, and rebuilds them, with no array
library involved (layer 0 of the architecture).

Containers
----------
- ``tuple`` and ``list``: children in order.
- ``dict``: children in **sorted key order** (as in JAX, so that leaf order does not depend
  on insertion order and agrees with ``jax.tree_util``); keys must be mutually sortable.
  Rebuilt dicts are plain ``dict`` with keys in sorted order.
- named tuples (any ``tuple`` subclass with ``_fields``): children in field order; the
  named-tuple type is preserved on rebuilding.
- ``None``: an empty subtree (no leaves), rebuilt as ``None``.

Everything else (arrays, Python scalars, strings, autograd or JAX traced values) is a leaf.

The arithmetic helpers (:func:`tree_add`, :func:`tree_vdot`, :func:`ravel_tree`, ...) work
on the leaves with the array namespace of the leaves (:func:`surrogate_natgrad._compat.namespace`),
imported lazily so that this module stays free of array-library imports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PyTreeDef",
    "ravel_tree",
    "tree_add",
    "tree_flatten",
    "tree_leaves",
    "tree_map",
    "tree_scale",
    "tree_structure",
    "tree_sub",
    "tree_unflatten",
    "tree_vdot",
    "tree_zeros_like",
]

_LEAF = "leaf"
_NONE = "none"
_TUPLE = "tuple"
_LIST = "list"
_DICT = "dict"
_NAMEDTUPLE = "namedtuple"


@dataclass(frozen=True)
class PyTreeDef:
    """The structure of a pytree, without its leaves.

    Attributes
    ----------
    kind : str
        One of ``"leaf"``, ``"none"``, ``"tuple"``, ``"list"``, ``"dict"``, ``"namedtuple"``.
    node_data : object
        The sorted keys for a dict, the named-tuple type for a named tuple, else None.
    children : tuple of PyTreeDef
        The structures of the children, in flattening order.
    num_leaves : int
        The number of leaves of the tree.
    """

    kind: str
    node_data: Any
    children: tuple[PyTreeDef, ...]
    num_leaves: int

    def __repr__(self) -> str:
        if self.kind == _LEAF:
            return "*"
        if self.kind == _NONE:
            return "None"
        inner = ", ".join(repr(child) for child in self.children)
        if self.kind == _TUPLE:
            return f"({inner}{',' if len(self.children) == 1 else ''})"
        if self.kind == _LIST:
            return f"[{inner}]"
        if self.kind == _DICT:
            items = ", ".join(
                f"{key!r}: {child!r}"
                for key, child in zip(self.node_data, self.children, strict=True)
            )
            return "{" + items + "}"
        return f"{self.node_data.__name__}({inner})"


def _is_namedtuple(value: object) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def _children(tree: Any) -> tuple[str, Any, list[Any]] | None:
    """Return (kind, node_data, children) of a container node, or None for a leaf."""
    if tree is None:
        return _NONE, None, []
    if _is_namedtuple(tree):
        return _NAMEDTUPLE, type(tree), list(tree)
    if isinstance(tree, tuple):
        return _TUPLE, None, list(tree)
    if isinstance(tree, list):
        return _LIST, None, list(tree)
    if isinstance(tree, dict):
        try:
            keys = tuple(sorted(tree))
        except TypeError as exc:
            raise TypeError(
                f"dict keys of a pytree must be mutually sortable, got {list(tree)!r}"
            ) from exc
        return _DICT, keys, [tree[key] for key in keys]
    return None


def _flatten_into(tree: Any, leaves: list[Any]) -> PyTreeDef:
    node = _children(tree)
    if node is None:
        leaves.append(tree)
        return PyTreeDef(_LEAF, None, (), 1)
    kind, node_data, children = node
    child_defs = tuple(_flatten_into(child, leaves) for child in children)
    return PyTreeDef(kind, node_data, child_defs, sum(c.num_leaves for c in child_defs))


def tree_flatten(tree: Any) -> tuple[list[Any], PyTreeDef]:
    """Flatten a pytree into its leaves and its structure.

    Parameters
    ----------
    tree : pytree
        Nested tuples, lists, dicts, named tuples and ``None`` with arbitrary leaves.

    Returns
    -------
    leaves : list
        The leaves, depth first (dicts in sorted key order).
    treedef : PyTreeDef
        The structure, for :func:`tree_unflatten`.
    """
    leaves: list[Any] = []
    treedef = _flatten_into(tree, leaves)
    return leaves, treedef


def _build(treedef: PyTreeDef, leaves: Sequence[Any], position: int) -> tuple[Any, int]:
    if treedef.kind == _LEAF:
        return leaves[position], position + 1
    children = []
    for child_def in treedef.children:
        child, position = _build(child_def, leaves, position)
        children.append(child)
    if treedef.kind == _NONE:
        return None, position
    if treedef.kind == _TUPLE:
        return tuple(children), position
    if treedef.kind == _LIST:
        return children, position
    if treedef.kind == _DICT:
        return dict(zip(treedef.node_data, children, strict=True)), position
    return treedef.node_data(*children), position


def tree_unflatten(treedef: PyTreeDef, leaves: Sequence[Any]) -> Any:
    """Rebuild a pytree of structure ``treedef`` from ``leaves``.

    Raises
    ------
    ValueError
        If the number of leaves does not match the structure.
    """
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(
            f"tree_unflatten: the structure {treedef!r} has {treedef.num_leaves} leaves, "
            f"got {len(leaves)}"
        )
    tree, _ = _build(treedef, leaves, 0)
    return tree


def _collect_leaves(tree: Any, leaves: list[Any]) -> None:
    node = _children(tree)
    if node is None:
        leaves.append(tree)
        return
    for child in node[2]:
        _collect_leaves(child, leaves)


def tree_leaves(tree: Any) -> list[Any]:
    """Return the leaves of ``tree`` in flattening order."""
    # The leaves alone, without building the structure (called on every step).
    leaves: list[Any] = []
    _collect_leaves(tree, leaves)
    return leaves


def tree_structure(tree: Any) -> PyTreeDef:
    """Return the structure of ``tree``."""
    return tree_flatten(tree)[1]


def _flatten_up_to(treedef: PyTreeDef, tree: Any, leaves: list[Any], where: str) -> None:
    """Flatten ``tree`` along ``treedef``; subtrees at treedef's leaves stay whole."""
    if treedef.kind == _LEAF:
        leaves.append(tree)
        return
    node = _children(tree)
    if node is None:
        raise ValueError(
            f"tree structures differ at {where or 'the root'}: expected {treedef!r}, "
            f"got a leaf {type(tree).__name__}"
        )
    kind, node_data, children = node
    mismatch = kind != treedef.kind or node_data != treedef.node_data
    if mismatch or len(children) != len(treedef.children):
        raise ValueError(
            f"tree structures differ at {where or 'the root'}: expected {treedef!r}, "
            f"got {tree_structure(tree)!r}"
        )
    labels = node_data if kind == _DICT else range(len(children))
    for label, child, child_def in zip(labels, children, treedef.children, strict=True):
        _flatten_up_to(child_def, child, leaves, f"{where}[{label!r}]")


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``fn`` leafwise to ``tree`` (and the matching leaves of ``rest``).

    Parameters
    ----------
    fn : callable
        Called as ``fn(leaf, *matching_leaves)``.
    tree : pytree
        Gives the structure of the result.
    *rest : pytree
        Trees with the structure of ``tree`` (or with whole subtrees where ``tree`` has a
        leaf; these subtrees are passed to ``fn`` as they are).

    Returns
    -------
    pytree
        A tree with the structure of ``tree`` and leaves ``fn(...)``.

    Raises
    ------
    ValueError
        If a tree of ``rest`` has a different structure, naming where they differ.
    """
    leaves, treedef = tree_flatten(tree)
    others: list[list[Any]] = []
    for other in rest:
        other_leaves: list[Any] = []
        _flatten_up_to(treedef, other, other_leaves, "")
        others.append(other_leaves)
    return tree_unflatten(treedef, [fn(*args) for args in zip(leaves, *others, strict=True)])


# ----------------------------------------------------------------------------------------
# Arithmetic on pytrees of arrays
# ----------------------------------------------------------------------------------------


def tree_add(tree: Any, other: Any) -> Any:
    """Return the leafwise sum ``tree + other`` (same structures)."""
    return tree_map(lambda a, b: a + b, tree, other)


def tree_sub(tree: Any, other: Any) -> Any:
    """Return the leafwise difference ``tree - other`` (same structures)."""
    return tree_map(lambda a, b: a - b, tree, other)


def tree_scale(tree: Any, factor: Any) -> Any:
    """Return ``factor * tree`` leafwise (``factor`` a scalar or a 0-d array)."""
    return tree_map(lambda a: factor * a, tree)


def tree_zeros_like(tree: Any) -> Any:
    """Return a tree of zero arrays shaped, typed and placed like the leaves of ``tree``."""
    from surrogate_natgrad._compat import namespace

    return tree_map(lambda a: namespace(a).zeros_like(a), tree)


def tree_vdot(tree: Any, other: Any) -> Any:
    """Return the sum over all leaves of the sums of elementwise products.

    This is the Euclidean inner product of the trees seen as one long vector. The result
    is a 0-d array of the leaves' namespace (a traced value under autodiff).

    Raises
    ------
    ValueError
        If the trees differ in structure or have no leaves.
    """
    from surrogate_natgrad._compat import namespace

    products = tree_leaves(tree_map(lambda a, b: namespace(a, b).sum(a * b), tree, other))
    if not products:
        raise ValueError("tree_vdot needs trees with at least one leaf")
    total = products[0]
    for term in products[1:]:
        total = total + term
    return total


def ravel_tree(tree: Any) -> tuple[Any, Callable[[Any], Any]]:
    """Concatenate the leaves of ``tree`` into one flat vector.

    Parameters
    ----------
    tree : pytree of arrays
        Arrays of one namespace and device (differentiable traced values allowed).

    Returns
    -------
    flat : array
        1-D array of the leaves reshaped to vectors, concatenated in flattening order, of
        the promoted dtype of the leaves.
    unravel : callable
        ``unravel(flat_vector)`` rebuilds a tree with the structure, leaf shapes and leaf
        dtypes of ``tree`` (differentiable; works on traced vectors).

    Raises
    ------
    ValueError
        If the tree has no leaves (there would be no namespace to build the vector in).
    """
    from surrogate_natgrad._compat import namespace

    leaves, treedef = tree_flatten(tree)
    if not leaves:
        raise ValueError("ravel_tree needs a tree with at least one array leaf")
    xp = namespace(*leaves)
    shapes = [tuple(int(n) for n in leaf.shape) for leaf in leaves]
    dtypes = [leaf.dtype for leaf in leaves]
    sizes = [math.prod(shape) for shape in shapes]
    result_dtype = xp.result_type(*dtypes) if len(dtypes) > 1 else dtypes[0]
    pieces = [
        xp.reshape(leaf if leaf.dtype == result_dtype else xp.astype(leaf, result_dtype), (-1,))
        for leaf in leaves
    ]
    flat = xp.concat(pieces, axis=0) if len(pieces) > 1 else pieces[0]
    offsets = [0]
    for n in sizes:
        offsets.append(offsets[-1] + n)

    def unravel(flat_vector: Any) -> Any:
        vector_xp = namespace(flat_vector)
        rebuilt: list[Any] = []
        for start, stop, shape, dtype in zip(offsets[:-1], offsets[1:], shapes, dtypes,
                                             strict=True):
            piece = vector_xp.reshape(flat_vector[start:stop], shape)
            if piece.dtype != dtype:
                piece = vector_xp.astype(piece, dtype)
            rebuilt.append(piece)
        return tree_unflatten(treedef, rebuilt)

    return flat, unravel
