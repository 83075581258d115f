"""Surrogate maps and auxiliary bijections against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from surrogate_natgrad.errors import DataError
from surrogate_natgrad.maps import (
    Bijection,
    Exp,
    ExpPlus,
    Identity,
    Logit,
    Softplus,
    SurrogateMap,
    identity_map,
)
from tests.helpers import to_numpy

U = np.array([-3.0, -0.5, 0.0, 0.7, 4.0])

CASES = [
    (Identity(), lambda u: u),
    (Exp(), np.exp),
    (ExpPlus(2.0), lambda u: np.exp(u) + 2.0),
    (Softplus(), lambda u: np.logaddexp(0.0, u)),
    (Logit(), special.expit),
    (Logit(-1.0, 3.0), lambda u: -1.0 + 4.0 * special.expit(u)),
]


@pytest.mark.parametrize(("bijection", "reference"), CASES, ids=lambda c: repr(c)[:20])
def test_bijection_forward_and_inverse(xp, bijection, reference):
    u = xp.asarray(U)
    x = bijection.forward(u)
    np.testing.assert_allclose(to_numpy(x), reference(U), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(bijection.inverse(x)), U, rtol=1e-10, atol=1e-12)
    assert isinstance(bijection, Bijection)


def test_logit_validates_bounds():
    with pytest.raises(DataError, match="low < high"):
        Logit(1.0, 1.0)


def _toy_map():
    def to_target(standard, aux):
        mean, cov = standard
        return {"loc": mean, "scale": cov, "df": aux["df"], "skew": aux["skew"]}

    def from_target(target):
        return (target["loc"], target["scale"]), {"df": target["df"], "skew": target["skew"]}

    return SurrogateMap(
        family=None,
        to_target=to_target,
        from_target=from_target,
        aux_transforms={"df": ExpPlus(2.0), "skew": Identity()},
    )


def test_surrogate_map_aux_round_trip(xp):
    surrogate_map = _toy_map()
    aux = {"df": xp.asarray(np.array(5.0)), "skew": xp.asarray(np.array([0.1, -0.2]))}
    unconstrained = surrogate_map.aux_inverse(aux)
    np.testing.assert_allclose(to_numpy(unconstrained["df"]), np.log(3.0))
    back = surrogate_map.aux_forward(unconstrained)
    np.testing.assert_allclose(to_numpy(back["df"]), 5.0)
    np.testing.assert_allclose(to_numpy(back["skew"]), [0.1, -0.2])
    target = surrogate_map.target((xp.asarray(np.zeros(2)), xp.asarray(np.eye(2))), back)
    standard, aux_again = surrogate_map.initial(target)
    np.testing.assert_allclose(to_numpy(aux_again["df"]), 5.0)
    assert surrogate_map.in_domain(standard) is True


def test_surrogate_map_errors(xp):
    surrogate_map = _toy_map()
    with pytest.raises(DataError, match="keys"):
        surrogate_map.aux_forward({"df": xp.asarray(np.array(1.0))})
    no_inverse = SurrogateMap(family=None, to_target=lambda s, a: s)
    with pytest.raises(DataError, match="from_target"):
        no_inverse.initial({"loc": 0})
    with pytest.raises(DataError, match="to_target"):
        SurrogateMap(family=None, to_target=3)
    with pytest.raises(DataError, match="aux_transforms"):
        SurrogateMap(family=None, to_target=lambda s, a: s, aux_transforms=5).aux_forward(1.0)


def test_tuple_transforms_keep_named_tuple_type(xp):
    from typing import NamedTuple

    class Aux(NamedTuple):
        rate: object
        weight: object

    surrogate_map = SurrogateMap(
        family=None, to_target=lambda s, a: s, aux_transforms=(Exp(), Logit())
    )
    out = surrogate_map.aux_forward(Aux(xp.asarray(np.array(0.0)), xp.asarray(np.array(0.0))))
    assert isinstance(out, Aux)
    np.testing.assert_allclose(float(to_numpy(out.weight)), 0.5)


def test_identity_map_and_domain(xp):
    surrogate_map = identity_map(family="family")
    standard = (xp.asarray(np.array([1.0])), xp.asarray(np.array([[2.0]])))
    assert surrogate_map.to_target(standard, ()) is standard
    assert surrogate_map.initial(standard) == (standard, ())
    bounded = SurrogateMap(family=None, to_target=lambda s, a: s, domain=lambda s: s[0][0] < 0.5)
    assert not bool(bounded.in_domain(standard))
