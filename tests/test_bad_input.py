"""Bad input across the public API: each kind is refused with a library exception and a message.

Every case names the exception class (from :mod:`surrogate_natgrad.errors`) and a fragment of
the message that names the argument, the offending value (and its index where there is one)
or what would be valid. Cases marked ``pending`` document a refusal that today uses a
built-in exception (or none) instead of the library's own; they are non-strict xfails, so
they turn into passes once the owning module is fixed (see the reliability issue).

Float16 policy: ``fit`` and the distributions *refuse* half precision (float16, bfloat16)
with a :class:`DataError` that says to convert to float32 or float64; there is no silent
upcast.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from surrogate_natgrad import families, random, rules, special
from surrogate_natgrad._compat import namespace
from surrogate_natgrad.cli import main as cli_main
from surrogate_natgrad.distributions import NegativeBinomial, NegativeBinomialMixture
from surrogate_natgrad.errors import (
    BackendError,
    DataError,
    DomainError,
    SurrogateNatgradError,
)
from surrogate_natgrad.fitting import fit

strict = pytest.importorskip("array_api_strict")
try:  # torch is an optional extra: its cases skip without it
    import torch
except ImportError:  # pragma: no cover - exercised in the NumPy-only nox session
    torch = None

NB = NegativeBinomial
NBM = NegativeBinomialMixture

#: Small over-dispersed counts (seeded): a valid data set for the option checks.
COUNTS = np.random.default_rng(20240611).negative_binomial(5, 0.3, size=60)


NEEDS_TORCH = pytest.mark.skipif(torch is None, reason="torch is not installed")


def pending(reason: str) -> pytest.MarkDecorator:
    """Mark a case whose refusal does not use the library's exception yet (non-strict xfail)."""
    return pytest.mark.xfail(reason=reason, strict=False)


def _gamma_natural(a: float, b: float) -> families.GammaNatural:
    return families.GammaNatural(np.asarray(a), np.asarray(b))


def _gd_objective(x: Any) -> Any:
    return (x * x).sum()


def _ngd(**options: Any) -> rules.NaturalGradientDescent:
    return rules.NaturalGradientDescent(
        log_prob=lambda params, samples: samples, sampler=lambda params, n: params, **options
    )


Case = tuple[str, Callable[[], object], type[Exception], str]

# (id, call, exception, regex fragment of the message)
CASES: list[Any] = [
    # ---------------------------------------------------------------- fit: data
    ("fit-data-nan", lambda: fit(NB, np.array([1.0, np.nan, 2.0])), DataError,
     r"data must hold finite counts; found nan at index 1"),
    ("fit-data-inf", lambda: fit(NB, np.array([1.0, 2.0, np.inf])), DataError,
     r"data must hold finite counts; found inf at index 2"),
    ("fit-data-negative-int", lambda: fit(NB, np.array([1, -2, 3])), DataError,
     r"data must hold non-negative counts; found -2 at index 1"),
    ("fit-data-non-integer", lambda: fit(NB, np.array([1.0, 2.0, 2.5])), DataError,
     r"data must hold integer counts; found 2\.5 at index 2"),
    ("fit-data-empty", lambda: fit(NB, np.array([], dtype=np.int64)), DataError,
     r"data is empty"),
    ("fit-data-2d", lambda: fit(NB, np.ones((3, 2))), DataError,
     r"data must be a one-dimensional array.*\(3, 2\)"),
    ("fit-data-0d", lambda: fit(NB, np.array(3.0)), DataError,
     r"data must be a one-dimensional array.*\(\)"),
    ("fit-data-list", lambda: fit(NB, [1, 2, 3]), BackendError,
     r"data must be an array.*list"),
    ("fit-data-bool", lambda: fit(NB, np.array([True, False])), DataError,
     r"data must hold integer counts.*dtype bool"),
    ("fit-data-complex", lambda: fit(NB, np.array([1 + 0j, 2 + 0j])), DataError,
     r"data must hold integer counts.*complex128"),
    ("fit-data-strings", lambda: fit(NB, np.array(["1", "2"])), DataError,
     r"data must hold integer counts.*dtype <U1"),
    ("fit-data-object", lambda: fit(NB, np.array([1, 2], dtype=object)), DataError,
     r"data must hold integer counts.*dtype object"),
    ("fit-data-float16", lambda: fit(NB, COUNTS.astype(np.float16)), DataError,
     r"data has dtype float16.*convert it to float32 or float64"),
    ("fit-data-torch-bfloat16",
     lambda: fit(NB, torch.asarray(COUNTS, dtype=torch.bfloat16)), DataError,
     r"data has dtype torch\.bfloat16.*float32 or float64"),
    ("fit-validation-negative",
     lambda: fit(NB, COUNTS, validation_data=np.array([3, -1])), DataError,
     r"validation_data must hold non-negative counts; found -1 at index 1"),
    ("fit-validation-other-library",
     lambda: fit(NB, COUNTS, validation_data=torch.asarray(COUNTS)), BackendError,
     r"different libraries.*validation_data: torch"),
    # ---------------------------------------------------------------- fit: namespaces/devices
    ("fit-init-mixed-namespace",
     lambda: fit(NB, COUNTS.astype(float), init={"n": torch.tensor(2.0), "p": torch.tensor(0.3)}),
     BackendError, r"init\['n'\].*different libraries.*torch"),
    ("fit-init-mixed-device",
     lambda: fit(
         NB,
         strict.asarray(COUNTS.astype(float), device=strict.Device("device1")),
         init={"n": strict.asarray(2.0), "p": strict.asarray(0.3)},
     ),
     BackendError, r"init\['n'\].*different devices.*device1"),
    # ---------------------------------------------------------------- fit: options
    ("fit-method-unknown", lambda: fit(NB, COUNTS, method="newton"), DataError,
     r"method must be one of .*'sngd'.*got 'newton'"),
    ("fit-method-array", lambda: fit(NB, COUNTS, method=np.array(["sngd", "gd"])), DataError,
     r"method must be one of"),
    ("fit-max-iter-zero", lambda: fit(NB, COUNTS, max_iter=0), DataError,
     r"max_iter must be a positive integer, got 0"),
    ("fit-max-iter-float", lambda: fit(NB, COUNTS, max_iter=2.5), DataError,
     r"max_iter must be a positive integer, got 2\.5"),
    ("fit-tol-negative", lambda: fit(NB, COUNTS, tol=-1.0), DataError,
     r"tol must be a non-negative finite number, got -1\.0"),
    ("fit-gtol-nan", lambda: fit(NB, COUNTS, gtol=float("nan")), DataError,
     r"gtol must be a non-negative finite number, got nan"),
    ("fit-step-size-nan", lambda: fit(NB, COUNTS, step_size=float("nan")), DataError,
     r"step_size must be a positive finite number, got nan"),
    ("fit-step-size-zero", lambda: fit(NB, COUNTS, step_size=0.0), DataError,
     r"step_size must be a positive finite number, got 0\.0"),
    pytest.param(
        "fit-step-size-string", lambda: fit(NB, COUNTS, step_size="1"), DataError,
        r"step_size must be a positive", id="fit-step-size-string",
    ),
    ("fit-step-decay-negative", lambda: fit(NB, COUNTS, batch_size=5, step_decay=-1.0),
     DataError, r"step_decay must be a positive number or inf, got -1\.0"),
    ("fit-step-decay-nan", lambda: fit(NB, COUNTS, batch_size=5, step_decay=float("nan")),
     DataError, r"step_decay must be a positive number or inf, got nan"),
    ("fit-batch-size-zero", lambda: fit(NB, COUNTS, batch_size=0), DataError,
     r"batch_size must be a positive integer, got 0"),
    ("fit-grid-size-zero", lambda: fit(NB, COUNTS, grid_size=0), DataError,
     r"grid_size must be a positive integer, got 0"),
    ("fit-mc-samples-zero", lambda: fit(NB, COUNTS, method="ngd", mc_samples=0), DataError,
     r"mc_samples must be a positive integer, got 0"),
    ("fit-eval-every-zero", lambda: fit(NB, COUNTS, eval_every=0), DataError,
     r"eval_every must be a positive integer, got 0"),
    ("fit-line-search-unknown", lambda: fit(NB, COUNTS, line_search="wolfe"), DataError,
     r"line_search must be one of .*got 'wolfe'"),
    ("fit-adam-with-line-search", lambda: fit(NB, COUNTS, method="adam", line_search="grid"),
     DataError, r"method='adam' takes no line search"),
    ("fit-callback-not-callable", lambda: fit(NB, COUNTS, callback=3), DataError,
     r"callback must be callable, got int"),
    ("fit-n-components-mismatch",
     lambda: fit(NBM, COUNTS, init=NBM([0.5, 0.5], [1.0, 2.0], [0.3, 0.4]), n_components=3),
     DataError, r"init has 2 components but n_components=3"),
    ("fit-n-components-for-single", lambda: fit(NB, COUNTS, n_components=2), DataError,
     r"n_components applies to mixtures only; got 2"),
    ("fit-n-components-missing", lambda: fit(NBM, COUNTS), DataError,
     r"n_components is needed"),
    ("fit-n-components-zero", lambda: fit(NBM, COUNTS, n_components=0), DataError,
     r"n_components must be a positive integer, got 0"),
    ("fit-n-components-too-many", lambda: fit(NBM, np.array([1, 2, 3]), n_components=5),
     DataError, r"n_components=5 exceeds the number of (counts|observations) \(3\)"),
    # ---------------------------------------------------------------- fit: distribution/init
    ("fit-instance-not-class", lambda: fit(NB(2.0, 0.3), COUNTS), DataError,
     r"distribution must be a class.*not an instance"),
    ("fit-distribution-unknown-name", lambda: fit("poisson", COUNTS), DataError,
     r"unknown distribution 'poisson'"),
    ("fit-distribution-wrong-type", lambda: fit(3, COUNTS), DataError,
     r"distribution must be.*got 3"),
    ("fit-init-wrong-type", lambda: fit(NB, COUNTS, init=3.0), DataError,
     r"init must be None, a NegativeBinomial or a dict.*float"),
    ("fit-init-wrong-class", lambda: fit(NB, COUNTS, init=NBM([1.0], [1.0], [0.3])), DataError,
     r"init is a NegativeBinomialMixture, but a NegativeBinomial is being fitted"),
    ("fit-init-n-negative", lambda: fit(NB, COUNTS, init={"n": -2.0, "p": 0.3}), DomainError,
     r"parameter 'n' of NegativeBinomial must be positive and finite; got -2\.0"),
    ("fit-init-p-one", lambda: fit(NB, COUNTS, init={"n": 2.0, "p": 1.0}), DomainError,
     r"'p' must be below 1"),
    ("fit-init-weights-zero",
     lambda: fit(NBM, COUNTS, init=NBM([1.0, 0.0], [1.0, 2.0], [0.3, 0.4])), DomainError,
     r"every mixture weight must be positive"),
    pytest.param(
        "fit-init-missing-parameter", lambda: fit(NB, COUNTS, init={"n": 2.0}), DataError,
        r"'p'", id="fit-init-missing-parameter",
    ),
    pytest.param(
        "fit-init-extra-parameter", lambda: fit(NB, COUNTS, init={"n": 2.0, "p": 0.3, "q": 1}),
        DataError, r"no parameters \['q'\]", id="fit-init-extra-parameter",
    ),
    pytest.param(
        "fit-init-string-value", lambda: fit(NB, COUNTS, init={"n": "a", "p": 0.3}), DataError,
        r"init\['n'\]", id="fit-init-string-value",
    ),
    pytest.param(
        "fit-seed-negative", lambda: fit(NB, COUNTS, seed=-1, max_iter=1), DataError,
        r"seed must be a non-negative int", id="fit-seed-negative",
    ),
    pytest.param(
        "fit-backend-unknown", lambda: fit(NB, COUNTS, backend="tensorflow", max_iter=1),
        DataError, r"unknown autodiff backend 'tensorflow'", id="fit-backend-unknown",
    ),
    # ---------------------------------------------------------------- NegativeBinomial
    ("nb-n-zero", lambda: NB(0.0, 0.3), DomainError,
     r"parameter 'n' of NegativeBinomial must be positive and finite; got 0\.0"),
    ("nb-n-negative-index", lambda: NB(np.array([1.0, 2.0, -1.0]), 0.5), DomainError,
     r"parameter 'n' .*got -1\.0 at index \(2,\)"),
    ("nb-n-inf", lambda: NB(np.inf, 0.3), DomainError, r"'n' .*positive and finite; got inf"),
    ("nb-n-nan", lambda: NB(np.nan, 0.3), DomainError, r"'n' .*positive and finite; got nan"),
    ("nb-p-zero", lambda: NB(2.0, 0.0), DomainError,
     r"parameter 'p' of NegativeBinomial must be in \(0, 1\]; got 0\.0"),
    ("nb-p-above-one", lambda: NB(2.0, 1.5), DomainError, r"'p' .*in \(0, 1\]; got 1\.5"),
    ("nb-shapes-do-not-broadcast", lambda: NB(np.ones(3), np.full(2, 0.5)), DomainError,
     r"'n' and 'p' of NegativeBinomial do not broadcast: shapes \(3,\) and \(2,\)"),
    ("nb-float16-params", lambda: NB(np.float16(2.0) * np.ones(1, np.float16),
                                     np.full(1, 0.5, np.float16)), DataError,
     r"parameters of NegativeBinomial have dtype float16|dtype float16"),
    ("nb-mixed-namespace", lambda: NB(torch.tensor(2.0), np.array(0.3)), BackendError,
     r"different libraries.*n: torch.*p: numpy"),
    ("nb-mixed-device",
     lambda: NB(strict.asarray(2.0), strict.asarray(0.3, device=strict.Device("device1"))),
     BackendError, r"different devices"),
    ("nb-log-prob-other-library", lambda: NB(2.0, 0.3).log_prob(torch.tensor([1.0])),
     BackendError, r"different libraries"),
    ("nb-from-moments-mean", lambda: NB.from_moments(-1.0, 3.0), DomainError,
     r"parameter 'mean' of NegativeBinomial must be positive and finite; got -1\.0"),
    ("nb-from-moments-underdispersed", lambda: NB.from_moments(3.0, 2.0), DomainError,
     r"'var' .*larger than the mean.*got 2\.0"),
    ("nb-from-data-negative", lambda: NB.from_data(np.array([2, -1])), DataError,
     r"data must hold non-negative counts; found -1 at index 1"),
    ("nb-sample-negative-size", lambda: NB(2.0, 0.3).sample(-1, seed=0), DataError,
     r"size must be a non-negative int.*got -1"),
    ("nb-sample-float-size", lambda: NB(2.0, 0.3).sample(2.5, seed=0), DataError,
     r"size must be a non-negative int.*got 2\.5"),
    pytest.param(
        "nb-string-parameter", lambda: NB("a", 0.5), DataError, r"'n'",
        id="nb-string-parameter",
    ),
    # ---------------------------------------------------------------- NegativeBinomialMixture
    ("nbm-weights-sum", lambda: NBM([0.5, 0.6], [1.0, 2.0], [0.3, 0.4]), DomainError,
     r"'weights' of NegativeBinomialMixture must be summing to one.*got 1\.1"),
    ("nbm-weights-negative", lambda: NBM([-0.5, 1.5], [1.0, 2.0], [0.3, 0.4]), DomainError,
     r"'weights' .*non-negative and finite; got -0\.5 at index \(0,\)"),
    ("nbm-weights-nan", lambda: NBM([np.nan, 1.0], [1.0, 2.0], [0.3, 0.4]), DomainError,
     r"'weights' .*non-negative and finite; got nan"),
    ("nbm-components-mismatch", lambda: NBM([0.5, 0.5], [1.0, 2.0, 3.0], [0.3, 0.4]),
     DomainError, r"same number of components K.*'n': \(3,\)"),
    ("nbm-scalar-parameters", lambda: NBM(1.0, 1.0, 0.3), DomainError,
     r"'weights' of NegativeBinomialMixture must have a component axis"),
    ("nbm-p-above-one", lambda: NBM([0.5, 0.5], [1.0, 2.0], [0.3, 1.2]), DomainError,
     r"'p' .*in \(0, 1\]; got 1\.2 at index \(1,\)"),
    ("nbm-from-data-k-zero", lambda: NBM.from_data(COUNTS, 0), DataError,
     r"n_components must be a positive integer; got 0"),
    ("nbm-from-data-k-float", lambda: NBM.from_data(COUNTS, 2.0), DataError,
     r"n_components must be a positive integer; got 2\.0"),
    ("nbm-from-data-too-few", lambda: NBM.from_data(np.array([1, 2]), 3), DataError,
     r"data has 2 counts, fewer than the 3 mixture components"),
    # ---------------------------------------------------------------- families
    ("gamma-natural-domain", lambda: families.Gamma().validate_natural(_gamma_natural(1.0, 1.0)),
     DomainError, r"natural: 1 of 1 parameter sets are outside the natural-parameter domain"),
    ("gamma-mean-domain",
     lambda: families.Gamma().validate_mean(families.GammaMean(np.asarray(1.0), np.asarray(1.0))),
     DomainError, r"mean_log < log\(mean\)"),
    ("gaussian-mean-not-pd",
     lambda: families.Gaussian(2).validate_mean(
         families.GaussianMean(np.zeros(2), -np.eye(2))),
     DomainError, r"positive definite"),
    ("diagonal-gaussian-natural-domain",
     lambda: families.DiagonalGaussian(2).validate_natural(
         families.DiagonalGaussianNatural(np.zeros(2), np.array([-1.0, 1.0]))),
     DomainError, r"1 of 1 parameter sets are outside the natural-parameter domain"),
    ("gamma-mixed-namespace",
     lambda: families.Gamma().natural_to_mean(
         families.GammaNatural(np.asarray(1.0), torch.tensor(-1.0, dtype=torch.float64))),
     BackendError, r"different libraries"),
    pytest.param(
        "gaussian-dim-zero", lambda: families.Gaussian(0), DataError,
        r"dim must be a positive integer, got 0", id="gaussian-dim-zero",
    ),
    pytest.param(
        "mixture-k-zero", lambda: families.Mixture(families.Gamma(), 0), DataError,
        r"k must be a positive integer, got 0", id="mixture-k-zero",
    ),
    pytest.param(
        "student-t-df-negative", lambda: families.StudentTScaleMixture(1, -1.0), DomainError,
        r"df must be positive, got -1\.0", id="student-t-df-negative",
    ),
    # ---------------------------------------------------------------- update rules
    ("gd-step-size-negative", lambda: rules.GradientDescent(step_size=-1.0), DataError,
     r"step_size must be a positive finite number, got -1\.0"),
    ("gd-step-size-string", lambda: rules.GradientDescent(step_size="0.1"), DataError,
     r"step_size must be a positive finite number, got '0\.1'"),
    ("gd-line-search-unknown", lambda: rules.GradientDescent(line_search="wolfe"), DataError,
     r"line_search must be one of .*got 'wolfe'"),
    ("gd-grid-size-zero", lambda: rules.GradientDescent(grid_size=0), DataError,
     r"grid_size must be an integer >= 1, got 0"),
    ("gd-init-list", lambda: rules.GradientDescent().init([1.0, 2.0]), DataError,
     r"params must be a pytree of arrays; leaf 0 is a float"),
    ("gd-init-empty", lambda: rules.GradientDescent().init(()), DataError,
     r"params must contain at least one array"),
    ("gd-step-mixed-namespace",
     lambda: rules.GradientDescent().step(
         rules.GradientDescent().init({"a": np.ones(2), "b": torch.ones(2)}), _gd_objective),
     BackendError, r"different libraries"),
    ("adam-step-size-inf", lambda: rules.Adam(step_size=float("inf")), DataError,
     r"step_size must be a positive finite number, got inf"),
    ("adam-b1-one", lambda: rules.Adam(b1=1.0), DataError, r"b1 must lie in \[0, 1\), got 1\.0"),
    ("adam-eps-negative", lambda: rules.Adam(eps=-1e-8), DataError,
     r"eps must be a non-negative finite number"),
    ("bfgs-step-size-zero", lambda: rules.BFGS(step_size=0.0), DataError,
     r"step_size must be a positive finite number, got 0\.0"),
    ("bfgs-curvature-tol-negative", lambda: rules.BFGS(curvature_tol=-1.0), DataError,
     r"curvature_tol must be a non-negative finite number"),
    ("sngd-form-unknown", lambda: rules.SNGD(NB.surrogate_map(), form="em"), DataError,
     r"form must be 'mle' or 'vi', got 'em'"),
    ("sngd-map-wrong-type", lambda: rules.SNGD("gamma"), DataError,
     r"surrogate_map must be a SurrogateMap, got str"),
    ("sngd-max-halvings-zero", lambda: rules.SNGD(NB.surrogate_map(), max_halvings=0),
     DataError, r"max_halvings must be an integer >= 1, got 0"),
    ("sngd-aux-rule-wrong-type", lambda: rules.SNGD(NB.surrogate_map(), aux_rule=3), DataError,
     r"aux_rule must be a first-order rule"),
    ("ngd-not-callable", lambda: rules.NaturalGradientDescent(log_prob=1, sampler=2),
     DataError, r"log_prob must be callable, got int"),
    ("ngd-n-samples-zero", lambda: _ngd(n_samples=0), DataError,
     r"n_samples must be an integer >= 1, got 0"),
    ("ngd-damping-negative", lambda: _ngd(damping=-1.0), DataError,
     r"damping must be a non-negative finite number, got -1\.0"),
    # ---------------------------------------------------------------- _compat.namespace
    ("namespace-mixed-libraries", lambda: namespace(np.ones(2), torch.ones(2)), BackendError,
     r"different libraries.*argument 0: numpy.*argument 1: torch"),
    ("namespace-list", lambda: namespace(data=[1, 2]), BackendError,
     r"data must be an array.*list"),
    ("namespace-mixed-devices",
     lambda: namespace(
         strict.asarray([1.0]), strict.asarray([1.0], device=strict.Device("device1"))
     ),
     BackendError, r"different devices.*device1"),
    ("namespace-nothing", lambda: namespace(), BackendError, r"at least one array"),
    # ---------------------------------------------------------------- random
    ("rng-like-list", lambda: random.default_rng(0, like=[1, 2]), BackendError,
     r"like must be an array.*list"),
    ("rng-normal-negative-scale", lambda: random.default_rng(0).normal((2,), scale=-1.0),
     DomainError, r"scale must be non-negative"),
    ("rng-gamma-negative-shape", lambda: random.default_rng(0).gamma(-1.0, size=2),
     DomainError, r"shape must be positive"),
    pytest.param(
        "rng-seed-negative", lambda: random.default_rng(-1), DataError,
        r"seed must be a non-negative int or None, got -1", id="rng-seed-negative",
    ),
    pytest.param(
        "rng-choice-p-sum", lambda: random.default_rng(0).choice(3, 2, p=np.array([0.5, 0.6, 0.1])),
        DomainError, r"p must sum to 1", id="rng-choice-p-sum",
    ),
    pytest.param(
        "rng-xp-unknown", lambda: random.default_rng(0, xp="tensorflow"), BackendError,
        r"xp must be one of", id="rng-xp-unknown",
    ),
    # ---------------------------------------------------------------- special functions
    ("polygamma-negative-order", lambda: special.polygamma(-1, np.ones(2)), DomainError,
     r"polygamma: the order n must be an integer >= 0, got -1"),
    ("polygamma-fractional-order", lambda: special.polygamma(1.5, np.ones(2)), DomainError,
     r"order n must be an integer >= 0, got 1\.5"),
    ("special-mixed-libraries",
     lambda: special.betainc(np.ones(1), torch.ones(1, dtype=torch.float64), np.ones(1)),
     BackendError, r"different libraries"),
    ("special-list", lambda: special.gammaln([1.0, 2.0]), BackendError,
     r"argument 0 must be an array.*list"),
]


def _is_settled(case: Any) -> bool:
    """False for a pending case (a ``pytest.param`` with an xfail mark), True otherwise."""
    return not any(mark.name == "xfail" for mark in getattr(case, "marks", ()))


def _as_param(case: Any) -> Any:
    """A plain case tuple as a ``pytest.param`` with its id; ``pytest.param`` unchanged.

    Cases that build torch tensors are skipped when torch is not installed.
    """
    if hasattr(case, "marks"):
        return case
    # The global names a case's lambda uses tell whether it builds torch tensors.
    marks = [NEEDS_TORCH] if "torch" in case[1].__code__.co_names else []
    return pytest.param(*case, id=case[0], marks=marks)


def _case_params() -> list[Any]:
    return [_as_param(case) for case in CASES]


@pytest.mark.parametrize(("case_id", "call", "exception", "fragment"), _case_params())
def test_bad_input_is_refused(case_id: str, call, exception, fragment: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exception, match=fragment) as info:
            call()
    # Every refusal is one of the library's exceptions, and still a ValueError/TypeError.
    assert isinstance(info.value, SurrogateNatgradError)
    assert isinstance(info.value, ValueError | TypeError)


def test_there_are_at_least_thirty_kinds() -> None:
    # Counted without the pending (xfail) cases and without fit_vi's.
    settled = [case for case in CASES if _is_settled(case)]
    assert len(settled) >= 30
    ids = [case.id if hasattr(case, "marks") else case[0] for case in CASES]
    assert len(set(ids)) == len(ids)


# -------------------------------------------------------------------- fit_vi


def _standard_normal_log_joint(z):
    return -0.5 * (z**2).sum(axis=-1)


def _fit_vi(*args: Any, **kwargs: Any) -> object:
    from surrogate_natgrad import fitting

    fit_vi = getattr(fitting, "fit_vi", None)
    if fit_vi is None:  # pragma: no cover - while fit_vi is being written
        pytest.skip("fit_vi is not available")
    return fit_vi(*args, **kwargs)


LJ = _standard_normal_log_joint

VI_CASES: list[Any] = [
    ("vi-method-unknown", lambda: _fit_vi(LJ, "gaussian", 2, method="newton"), DataError,
     r"method must be one of .*got 'newton'"),
    ("vi-family-unknown", lambda: _fit_vi(LJ, "poisson", 2), DataError,
     r"unknown family 'poisson'"),
    ("vi-dim-zero", lambda: _fit_vi(LJ, "gaussian", 0), DataError,
     r"dim must be a positive integer, got 0"),
    ("vi-dim-missing", lambda: _fit_vi(LJ, "gaussian"), DataError, r"dim is needed"),
    ("vi-log-joint-not-callable", lambda: _fit_vi(3, "gaussian", 2), DataError,
     r"log_joint must be callable"),
    ("vi-log-joint-nan", lambda: _fit_vi(lambda z: LJ(z) * np.nan, "gaussian", 2), DataError,
     r"negative ELBO at the starting point is not finite"),
    ("vi-max-iter-zero", lambda: _fit_vi(LJ, "gaussian", 2, max_iter=0), DataError,
     r"max_iter must be a positive integer, got 0"),
    ("vi-n-samples-zero", lambda: _fit_vi(LJ, "gaussian", 2, n_samples=0), DataError,
     r"n_samples must be a positive integer, got 0"),
    ("vi-step-size-nan", lambda: _fit_vi(LJ, "gaussian", 2, step_size=float("nan")), DataError,
     r"step_size must be a positive finite number, got nan"),
    ("vi-step-size-string", lambda: _fit_vi(LJ, "gaussian", 2, step_size="0.1"), DataError,
     r"step_size must be a positive finite number, got '0\.1'"),
    ("vi-step-decay-zero", lambda: _fit_vi(LJ, "gaussian", 2, step_decay=0.0), DataError,
     r"step_decay must be a positive number or inf, got 0\.0"),
    ("vi-callback", lambda: _fit_vi(LJ, "gaussian", 2, callback=1), DataError,
     r"callback must be callable"),
    ("vi-antithetic-odd", lambda: _fit_vi(LJ, "gaussian", 2, antithetic=True, n_samples=3),
     DataError, r"antithetic sampling needs an even n_samples, got 3"),
    ("vi-mcef-needs-skew-normal", lambda: _fit_vi(LJ, "gaussian", 2, method="mcef"), DataError,
     r"method='mcef'.*family='skew_normal'"),
    ("vi-line-search", lambda: _fit_vi(LJ, "gaussian", 2, line_search="grid"), DataError,
     r"line_search must be one of .*got 'grid'"),
    ("vi-init-cov-not-pd",
     lambda: _fit_vi(LJ, "gaussian", 2, init={"mean": np.zeros(2), "cov": -np.eye(2)}),
     DataError, r"positive definite"),
    ("vi-init-wrong-shape",
     lambda: _fit_vi(LJ, "gaussian", 2, init={"mean": np.zeros(3), "cov": np.eye(3)}),
     DataError, r"mean must have shape \(2,\), got \(3,\)"),
    ("vi-init-missing", lambda: _fit_vi(LJ, "gaussian", 2, init={"mean": np.zeros(2)}),
     DataError, r"init is missing 'cov'"),
    ("vi-init-wrong-type", lambda: _fit_vi(LJ, "gaussian", 2, init=3.0), DataError,
     r"init must be None, a VariationalApproximation.*float"),
    ("vi-init-mixed-namespace",
     lambda: _fit_vi(
         LJ, "gaussian", 2, like=np.zeros(2),
         init={"mean": torch.zeros(2, dtype=torch.float64),
               "cov": torch.eye(2, dtype=torch.float64)},
     ),
     BackendError, r"different libraries"),
    ("vi-like-list", lambda: _fit_vi(LJ, "gaussian", 2, like=[1.0]), BackendError,
     r"like must be an array"),
    pytest.param(
        "vi-init-nan",
        lambda: _fit_vi(LJ, "gaussian", 2, init={"mean": np.array([np.nan, 0.0]),
                                                 "cov": np.eye(2)}),
        DataError, r"init.*nan", id="vi-init-nan",
    ),
    pytest.param(
        "vi-like-float16", lambda: _fit_vi(LJ, "gaussian", 2, like=np.zeros(2, np.float16)),
        DataError, r"float16", id="vi-like-float16",
    ),
    pytest.param(
        "vi-seed-negative", lambda: _fit_vi(LJ, "gaussian", 2, seed=-1), DataError,
        r"seed must be a non-negative int", id="vi-seed-negative",
    ),
]


@pytest.mark.parametrize(
    ("case_id", "call", "exception", "fragment"),
    [_as_param(case) for case in VI_CASES],
)
def test_fit_vi_bad_input_is_refused(case_id: str, call, exception, fragment: str) -> None:
    test_bad_input_is_refused(case_id, call, exception, fragment)


# -------------------------------------------------------------------- every namespace


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ([1.0, float("nan"), 2.0], r"finite counts; found nan at index 1"),
        ([1.0, 2.0, -3.0], r"non-negative counts; found -3\.0 at index 2"),
        ([0.5, 2.0], r"integer counts; found 0\.5 at index 0"),
    ],
    ids=["nan", "negative", "fractional"],
)
def test_count_checks_run_in_every_namespace(backend, values, fragment) -> None:
    data = backend.asarray(np.asarray(values))
    with pytest.raises(DataError, match=fragment):
        fit(NB, data)
    with pytest.raises(DataError, match=fragment):
        NB.from_data(data)


def test_float16_refused_in_jax() -> None:
    jnp = pytest.importorskip("jax.numpy")
    with pytest.raises(DataError, match=r"float16.*float32 or float64"):
        fit(NB, jnp.asarray(COUNTS, dtype=jnp.float16))


def test_float32_data_is_accepted_and_fitted_in_float32() -> None:
    # The documented alternative to float16: float32 stays float32.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(NB, COUNTS.astype(np.float32), max_iter=3)
    assert result.params["n"].dtype == np.float32


def test_numpy_integers_are_accepted_for_integer_options() -> None:
    # Options read from NumPy arrays (np.int64) are integers too; only floats and bools are not.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        single = fit(NB, COUNTS, max_iter=np.int64(2), grid_size=np.int32(20))
        mixture = fit(NBM, COUNTS, n_components=np.int64(2), max_iter=np.int64(1))
    assert single.n_iter <= 2
    assert mixture.params["weights"].shape == (2,)


def test_batch_size_larger_than_data_is_allowed() -> None:
    # Minibatches are drawn with replacement, so a batch larger than the data set is valid.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(NB, COUNTS, batch_size=4 * COUNTS.shape[0], max_iter=3, seed=1)
    assert np.isfinite(result.loss)


# -------------------------------------------------------------------- command line


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "surrogate_natgrad", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli_bad_input")
    files = {
        "nonnumeric": folder / "nonnumeric.csv",
        "negative": folder / "negative.csv",
        "good": folder / "good.csv",
        "empty": folder / "empty.csv",
        "half": folder / "half.npy",
        "unsupported": folder / "counts.xlsx",
    }
    files["nonnumeric"].write_text("visits,age\n1,30\ntwo,41\n3,52\n")
    files["negative"].write_text("visits\n1\n-2\n3\n")
    files["good"].write_text("visits\n" + "\n".join(str(v) for v in COUNTS) + "\n")
    files["empty"].write_text("")
    np.save(files["half"], COUNTS.astype(np.float16))
    files["unsupported"].write_text("1\n2\n")
    return files


@pytest.mark.parametrize(
    ("kind", "argv", "fragment"),
    [
        ("missing-file", ["fit", "nbinom", "{folder}/does_not_exist.csv"], "data file not found"),
        ("non-numeric-column", ["fit", "nbinom", "{nonnumeric}", "--column", "visits"],
         "column 'visits' of .* is not numeric: 'two' at row 3"),
        ("negative-counts", ["fit", "nbinom", "{negative}"],
         "data must hold non-negative counts; found -2.0 at index 1"),
        ("unknown-family", ["fit", "poisson", "{good}"], "invalid choice: 'poisson'"),
        ("bad-option", ["fit", "nbinom", "{good}", "--max-iter", "0"],
         "--max-iter: expected a positive integer, got '0'"),
    ],
    ids=["missing-file", "non-numeric-column", "negative-counts", "unknown-family", "bad-option"],
)
def test_cli_subprocess_reports_one_line_and_exit_status_2(cli_files, kind, argv, fragment):
    names = {key: str(path) for key, path in cli_files.items()}
    names["folder"] = str(cli_files["good"].parent)
    completed = _run_cli(*[arg.format(**names) for arg in argv])
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    last = completed.stderr.strip().splitlines()[-1]
    assert "error:" in last
    assert re.search(fragment, last), last


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["fit", "nbinom", "{good}", "--column", "nope"], r"column 'nope' not found.*visits"),
        (["fit", "nbinom-mixture", "{good}"], r"nbinom-mixture needs --components K"),
        (["fit", "nbinom", "{good}", "--components", "2"], r"--components applies to"),
        (["fit", "nbinom", "{empty}"], r"contains no data"),
        (["fit", "nbinom", "{half}"], r"float16.*float32 or float64"),
        (["fit", "nbinom", "{folder}"], r"is a directory"),
        (["fit", "nbinom", "{unsupported}"], r"unsupported file type '\.xlsx'"),
    ],
    ids=["unknown-column", "mixture-without-k", "k-for-single", "empty-file", "float16-npy",
         "directory", "unsupported-suffix"],
)
def test_cli_in_process_user_errors(cli_files, capsys, argv, fragment):
    names = {key: str(path) for key, path in cli_files.items()}
    names["folder"] = str(cli_files["good"].parent)
    status = cli_main([arg.format(**names) for arg in argv])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.startswith("surrogate-natgrad: error: ")
    assert re.search(fragment, captured.err), captured.err


def test_cli_unknown_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli_main(["fit", "nbinom", "--bogus"])
    assert info.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
