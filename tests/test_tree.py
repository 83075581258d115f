"""Tests of the pytree utilities (surrogate_natgrad._tree)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from surrogate_natgrad._compat import array_library_name, namespace
from surrogate_natgrad._tree import (
    ravel_tree,
    tree_add,
    tree_flatten,
    tree_leaves,
    tree_map,
    tree_scale,
    tree_structure,
    tree_sub,
    tree_unflatten,
    tree_vdot,
    tree_zeros_like,
)
from tests.helpers import to_numpy


class Params(NamedTuple):
    mean: object
    scale: object


leaf_values = st.integers(-5, 5) | st.floats(-1, 1) | st.text(max_size=2)
trees = st.recursive(
    leaf_values | st.none(),
    lambda children: st.lists(children, max_size=3)
    | st.lists(children, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=3), children, max_size=3)
    | st.tuples(children, children).map(lambda pair: Params(*pair)),
    max_leaves=10,
)


@given(trees)
def test_flatten_unflatten_round_trip(tree):
    leaves, treedef = tree_flatten(tree)
    rebuilt = tree_unflatten(treedef, leaves)
    assert rebuilt == tree
    assert type(rebuilt) is type(tree)
    assert treedef.num_leaves == len(leaves)
    assert tree_structure(rebuilt) == treedef


def test_containers_and_order():
    tree = {"b": [1, (2, 3)], "a": Params(4, None), "c": None}
    leaves, treedef = tree_flatten(tree)
    # dicts flatten in sorted key order; None is an empty subtree
    assert leaves == [4, 1, 2, 3]
    rebuilt = tree_unflatten(treedef, [40, 10, 20, 30])
    assert rebuilt == {"a": Params(40, None), "b": [10, (20, 30)], "c": None}
    assert isinstance(rebuilt["a"], Params)
    assert isinstance(rebuilt["b"], list)
    assert tree_leaves(None) == []
    assert tree_leaves(5) == [5]
    assert "Params" in repr(treedef)


def test_unflatten_wrong_count():
    _, treedef = tree_flatten((1, 2))
    with pytest.raises(ValueError, match="2 leaves, got 3"):
        tree_unflatten(treedef, [1, 2, 3])


def test_unsortable_keys():
    with pytest.raises(TypeError, match="sortable"):
        tree_flatten({1: 0, "a": 1})


def test_tree_map_several_trees_and_mismatch():
    a = Params(1, [2, 3])
    b = Params(10, [20, 30])
    out = tree_map(lambda x, y: x + y, a, b)
    assert out == Params(11, [22, 33]) and isinstance(out, Params)
    # subtrees of rest at a leaf of tree are passed whole
    assert tree_map(lambda x, y: (x, y), (1, 2), ((5, 6), 7)) == ((1, (5, 6)), (2, 7))
    with pytest.raises(ValueError, match="differ"):
        tree_map(lambda x, y: x, Params(1, 2), (1, 2))
    with pytest.raises(ValueError, match="differ"):
        tree_map(lambda x, y: x, {"a": 1}, {"b": 1})
    with pytest.raises(ValueError, match="differ"):
        tree_map(lambda x, y: x, [1, 2], [1])


def test_arithmetic(backend):
    xp = backend.xp
    a = {"m": backend.asarray([1.0, 2.0]), "s": Params(backend.asarray(3.0), None)}
    b = {"m": backend.asarray([0.5, -1.0]), "s": Params(backend.asarray(2.0), None)}
    np.testing.assert_allclose(to_numpy(tree_add(a, b)["m"]), [1.5, 1.0])
    np.testing.assert_allclose(to_numpy(tree_sub(a, b)["s"].mean), 1.0)
    np.testing.assert_allclose(to_numpy(tree_scale(a, 2.0)["m"]), [2.0, 4.0])
    # independent reference: the dot product of the concatenated vectors
    expected = np.dot([1.0, 2.0, 3.0], [0.5, -1.0, 2.0])
    vdot = tree_vdot(a, b)
    assert array_library_name(namespace(vdot)) == array_library_name(xp)
    np.testing.assert_allclose(float(to_numpy(vdot)), expected)
    zeros = tree_zeros_like(a)
    assert isinstance(zeros["s"], Params) and zeros["s"].scale is None
    assert zeros["m"].dtype == xp.float64
    np.testing.assert_array_equal(to_numpy(zeros["m"]), [0.0, 0.0])
    with pytest.raises(ValueError, match="at least one leaf"):
        tree_vdot(None, None)


def test_ravel_round_trip(backend):
    xp = backend.xp
    tree = Params(
        mean=backend.asarray(np.arange(6.0).reshape(2, 3)),
        scale={"x": backend.asarray(np.array([7.0], dtype=np.float32)), "y": None},
    )
    flat, unravel = ravel_tree(tree)
    assert type(flat) is type(tree.mean)
    assert tuple(flat.shape) == (7,)
    assert flat.dtype == xp.float64
    np.testing.assert_array_equal(to_numpy(flat), [0, 1, 2, 3, 4, 5, 7])
    back = unravel(flat * 2)
    assert isinstance(back, Params) and back.scale["y"] is None
    assert tuple(back.mean.shape) == (2, 3)
    assert back.scale["x"].dtype == xp.float32
    np.testing.assert_array_equal(to_numpy(back.scale["x"]), [14.0])
    with pytest.raises(ValueError, match="at least one"):
        ravel_tree((None, []))


def test_ravel_is_differentiable_under_autograd():
    import autograd

    tree = {"a": np.array([1.0, 2.0]), "b": np.array([[3.0]])}
    _, unravel = ravel_tree(tree)

    def loss(flat):
        rebuilt = unravel(flat)
        return (rebuilt["a"] ** 2).sum() + 3.0 * rebuilt["b"].sum()

    grad = autograd.grad(loss)(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(grad, [2.0, 4.0, 3.0])
