"""The :func:`fit_vi` driver: variational inference by SNGD or a baseline.

Driver layer (layer 4). The numerical work (samples, ELBO estimates, gradients, updates)
happens in the namespace and on the device of the model's arrays, through
:mod:`surrogate_natgrad.vi` and the update rules of :mod:`surrogate_natgrad.rules`; the
driver reads 0-d results back as Python floats for the history and the callback only.

Methods
-------
``"sngd"``
    Surrogate natural gradient descent in its VI form: the state is the natural parameters
    of a Gaussian ``N(ξ, Ω)`` and the step follows the ELBO's gradient with respect to its
    mean parameters ``(ξ, Ω + ξξᵀ)``. For the skew-normal the skewness vector ``η_s`` is an
    auxiliary parameter updated by Adam from the same autodiff call; the skew-t adds
    ``log(ν - 2)``; a skew-normal mixture's surrogate is the joint Gaussian mixture over
    ``(k, z)`` (weights and components in one natural-gradient step), with the ``η_s,k``
    auxiliary and weights kept at or above 1e-3 (renormalised) after every step.
``"mcef"``
    The natural-gradient method of Lin, Khan & Schmidt (2019) for the skew-normal: the
    same VI-form step in the natural parameters ``(V⁻¹μ, -½V⁻¹, V⁻¹β)`` of the joint
    ``w ~ N(0, 1)``, ``z | w ~ N(μ + |w|β, V)`` (no auxiliary parameters).
``"adam"``
    Adam on the location, a square root ``W`` of the scale matrix (``Ω = WWᵀ``,
    ``parameterization="cholesky"``) or of its inverse (``Ω⁻¹ = WWᵀ``,
    ``"precision"``), and the skewness vector.

Natural-gradient steps that leave the positive-definite cone are halved until they do not
(``line_search="backtracking"``, the default); a refused or non-finite step keeps the last
parameters, so the result never contains NaN.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from surrogate_natgrad import rules
from surrogate_natgrad._compat import (
    Array,
    Namespace,
    asarray,
    device,
    dtype_eps,
    is_array,
    linalg,
    namespace,
)
from surrogate_natgrad.autodiff import bridge_for, get_backend
from surrogate_natgrad.distributions._checks import check_float_precision
from surrogate_natgrad.errors import BackendError, ConvergenceWarning, DataError
from surrogate_natgrad.families import Gaussian, SkewNormalMCEF
from surrogate_natgrad.families.mcef import SkewNormalMCEFStandard
from surrogate_natgrad.fitting._callbacks import Callback, IterationInfo, ProgressBar
from surrogate_natgrad.fitting._result import FitHistory, FitResult
from surrogate_natgrad.fitting._stopping import (
    STEP_DECAY_STEPS,
    StoppingRule,
    default_gtol,
    default_step_decay,
    default_tol,
    diverged_message,
    has_diverged,
)
from surrogate_natgrad.fitting._validation import (
    check_option,
    check_parameterization,
    check_positive_int,
    check_real,
)
from surrogate_natgrad.maps import SurrogateMap
from surrogate_natgrad.vi import (
    ELBOTerms,
    GaussianVariational,
    SkewNormalMixtureVariational,
    SkewNormalVariational,
    SkewTVariational,
    VariationalApproximation,
    VariationalFamily,
    antithetic_noise,
    estimate_elbo,
    skew_normal_from_conditional,
    skew_normal_to_conditional,
)

__all__ = ["VI_FAMILIES", "VI_METHODS", "VIResult", "fit_vi"]

#: Methods accepted by :func:`fit_vi`.
VI_METHODS = ("sngd", "adam", "mcef")

#: Names accepted for the ``family`` argument of :func:`fit_vi`.
VI_FAMILIES: dict[str, type] = {
    "gaussian": GaussianVariational,
    "normal": GaussianVariational,
    "skew_normal": SkewNormalVariational,
    "skew-normal": SkewNormalVariational,
    "skewnormal": SkewNormalVariational,
    "skew_t": SkewTVariational,
    "skew-t": SkewTVariational,
    "skewt": SkewTVariational,
    "skew_normal_mixture": SkewNormalMixtureVariational,
    "skew-normal-mixture": SkewNormalMixtureVariational,
    "skewnormalmixture": SkewNormalMixtureVariational,
}

_LINE_SEARCHES = (None, "backtracking", "armijo")
_ACCEPTED = (0, 1)  # rules.Status.OK, BACKTRACKED
#: Fits of at least this many steps compile their loss on JAX by default.
_JIT_FROM_ITERATIONS = 100
#: Consecutive refused steps after which a stochastic fit gives up.
_MAX_FAILURES = 20


@dataclasses.dataclass(frozen=True, repr=False)
class VIResult(FitResult):
    """What :func:`fit_vi` returns: a :class:`FitResult` with the ELBO.

    Attributes
    ----------
    distribution : VariationalApproximation
        The fitted approximation (``.mean()``, ``.covariance()``, ``.sample(n)``,
        ``.log_prob(x)``, ``.entropy()``), with parameters in the model's namespace.
    params : dict of str to array
        ``{"mean", "cov"}`` (Gaussian) or ``{"loc", "scale", "shape"}`` (skew-normal).
    loss : float
        The negative ELBO at ``params``, estimated with the ``n_samples_eval`` evaluation
        draws (common to every evaluation of the fit; exact for a conjugate model).
    n_iter : int
        Number of iterations taken.
    converged : bool
        True when the convergence criterion was met.
    status : str
        Why the fit stopped (as in :class:`FitResult`).
    message : str
        A human-readable explanation of ``status``.
    history : FitHistory
        Per-iteration loss, step size, time and gradient norm.
    time : float
        Wall-clock seconds of the whole fit.
    method : str
        The method used.
    validation_loss : float or None
        Always None for a variational fit.
    extra : dict of str to object
        Further diagnostics (``extra["train_loss"]``: see Notes).
    elbo : float
        ``-loss``.
    family : str
        ``"gaussian"`` or ``"skew_normal"``.

    Notes
    -----
    ``history.loss`` holds the evaluated negative ELBO every ``eval_every`` iterations
    (NaN in between); ``extra["train_loss"]`` the per-step estimates from the training
    draws (the loss before each step).

    Examples
    --------
    >>> import numpy as np
    >>> from surrogate_natgrad.fitting import fit_vi
    >>> from surrogate_natgrad.models import BayesianLinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(20, 2))
    >>> model = BayesianLinearRegression(X, X @ np.ones(2) + rng.normal(size=20))
    >>> result = fit_vi(model, "gaussian")
    >>> result.family, bool(np.isclose(result.elbo, -result.loss))
    ('gaussian', True)
    """

    elbo: float = math.nan
    family: str = ""

    def summary(self) -> str:
        """Return a multi-line, human-readable report of the fit."""
        lines = [f"{self.family} variational approximation fitted by {self.method}"]
        for name, value in self.params.items():
            lines.append(f"  {name:<6} shape {tuple(value.shape)}")
        lines.append(f"  ELBO = {self.elbo:.10g}")
        lines.append(f"  iterations = {self.n_iter}, time = {self.time:.3f} s")
        lines.append(f"  status: {self.status}: {self.message}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"VIResult(family={self.family!r}, method={self.method!r}, elbo={self.elbo:.10g}, "
            f"n_iter={self.n_iter}, status={self.status!r}, time={self.time:.3g}s)"
        )


# --------------------------------------------------------------------------- set-up


def _resolve_family(family: object, dim: int, k: int | None) -> Any:
    if isinstance(family, VariationalFamily):
        if family.dim != dim:
            raise DataError(f"family has dim={family.dim} but the model has dim={dim}")
        family_k = getattr(family, "k", k)
        if k is not None and family_k != k:
            raise DataError(f"k={k} disagrees with the family's k={family_k}")
        return family
    if isinstance(family, str):
        key = family.lower()
        if key not in VI_FAMILIES:
            raise DataError(f"unknown family {family!r}; choose from {sorted(VI_FAMILIES)}")
        cls = VI_FAMILIES[key]
    elif family in (Gaussian,) or isinstance(family, Gaussian):
        cls = GaussianVariational
    elif family in (SkewNormalMCEF,) or isinstance(family, SkewNormalMCEF):
        cls = SkewNormalVariational
    elif isinstance(family, type) and issubclass(family, VariationalFamily):
        cls = family
    else:
        name = getattr(family, "__name__", type(family).__name__)
        raise DataError(
            f"family must be one of {sorted(VI_FAMILIES)}, a VariationalFamily class or "
            f"instance, got {name!r}"
        )
    if cls is SkewNormalMixtureVariational:
        if k is None:
            raise DataError(
                "family='skew_normal_mixture' needs the number of components: pass k=..."
            )
        return cls(dim, k)
    if k is not None:
        raise DataError(
            f"k is only used by mixture families, not by {getattr(cls, 'name', cls)!r}"
        )
    return cls(dim)


def _resolve_dim(model: object, dim: int | None) -> int:
    model_dim = getattr(model, "dim", None)
    if dim is None:
        if model_dim is None:
            raise DataError("dim is needed when log_joint is a bare function")
        return int(model_dim)
    if isinstance(dim, bool) or int(dim) != dim or dim < 1:
        raise DataError(f"dim must be a positive integer, got {dim!r}")
    if model_dim is not None and int(model_dim) != dim:
        raise DataError(f"dim={dim} disagrees with the model's dim={model_dim}")
    return int(dim)


def _reference_array(model: object, init: object, like: Array | None) -> Array:
    """Pick the array whose namespace, dtype and device the variational parameters take."""
    candidates: list[Any] = []
    if isinstance(init, VariationalApproximation):
        candidates.append(init.raw_params[0])
    elif isinstance(init, Mapping):
        candidates += [v for v in init.values() if is_array(v) and not isinstance(v, np.ndarray)]
    elif isinstance(init, tuple):
        candidates += [v for v in init if is_array(v) and not isinstance(v, np.ndarray)]
    if like is not None:
        if not is_array(like):
            raise BackendError(f"like must be an array, got {type(like).__name__}")
        candidates.append(like)
    model_data = getattr(model, "X", None)
    if is_array(model_data):
        candidates.append(model_data)
    if not candidates:
        return np.zeros((), dtype=np.float64)
    try:
        namespace(*candidates)
    except BackendError as exc:
        raise BackendError(
            f"init, like and the model's data must be arrays of one library and device: {exc}"
        ) from exc
    reference = candidates[0]
    xp = namespace(reference)
    check_float_precision(xp, reference.dtype, "like" if reference is like else "init")
    if not xp.isdtype(reference.dtype, "real floating"):
        reference = xp.astype(reference, xp.float64)
    return reference


def _to_like(name: str, value: object, like: Array) -> Array:
    xp = namespace(like)
    if is_array(value) and not isinstance(value, np.ndarray | np.generic):
        try:
            namespace(like=like, **{f"init[{name!r}]": value})
        except BackendError as exc:
            raise BackendError(f"init[{name!r}] and the model's data: {exc}") from exc
        arr: Any = value
    else:
        arr = asarray(np.asarray(value, dtype=np.float64), xp, device=device(like))
    return xp.astype(arr, like.dtype) if arr.dtype != like.dtype else arr


def _initial_params(family: Any, init: object, like: Array) -> Any:
    """Return the starting parameters (the family's named tuple) in ``like``'s namespace."""
    xp = namespace(like)
    if init is None:
        return family.default_params(like)
    names = family.param_names
    if isinstance(init, VariationalApproximation):
        # A start from a smaller family (a Gaussian for a skew-normal, a skew-normal for a
        # skew-t) fills in the missing parameters; the converse would drop some silently.
        given = {family.init_aliases.get(key, key) for key in init.params}
        if not given <= set(names):
            raise DataError(
                f"init is a {init.family.name} approximation but the family is {family.name}"
            )
        values: Mapping[str, object] = init.params
    elif isinstance(init, Mapping):
        values = init
    elif isinstance(init, tuple):
        if isinstance(init, SkewNormalMCEFStandard):
            init = skew_normal_from_conditional(init)
        if len(init) != len(names):
            raise DataError(f"init must be a tuple {names}, got {len(init)} values")
        values = dict(zip(names, init, strict=True))
    else:
        raise DataError(
            "init must be None, a VariationalApproximation, a dict of parameters or a tuple; "
            f"got {type(init).__name__}"
        )
    aliases = {alias: name for alias, name in family.init_aliases.items()}
    by_name: dict[str, object] = {}
    for key, value in values.items():
        name = aliases.get(key, key)
        if name not in names:
            raise DataError(f"init has an unknown parameter {key!r}; {family.name} has {names}")
        by_name[name] = value
    optional = family.optional_defaults(like)
    converted: dict[str, Array] = {}
    for name in names:
        if name not in by_name:
            if name in optional:
                converted[name] = optional[name]
                continue
            raise DataError(f"init is missing {name!r}; give {list(names)}")
        converted[name] = _to_like(name, by_name[name], like)
        if not bool(xp.all(xp.isfinite(converted[name]))):
            raise DataError(f"init[{name!r}] must be finite; it holds nan or inf values")
    params = family.from_dict(converted)
    scale = converted["cov" if "cov" in converted else "scale"]
    if not bool(xp.all(linalg.is_positive_definite(scale))):
        raise DataError("init: the covariance/scale matrix must be symmetric positive definite")
    check_start = getattr(family, "check_start", None)
    if check_start is not None:
        check_start(params)
    return params


class _Method:
    """One optimisation method set up for one VI fit: the rule, its state and read-out."""

    def __init__(
        self,
        method: str,
        family: Any,
        params: Any,
        *,
        step_size: float | None,
        aux_step_size: float | None,
        line_search: str | None,
        parameterization: str,
        exact: bool,
        backend: str | None,
    ) -> None:
        self.method = method
        self.family = family
        self.parameterization = parameterization
        aux_rule = rules.Adam(step_size=aux_step_size or 1e-2, backend=backend)
        self.rule: Any
        if method in ("sngd", "mcef"):
            # Stochastic natural-gradient steps beyond ~0.05 make the scale matrix noisy in
            # high dimension (E6, d = 100: ε = 0.1 degrades, 0.02–0.05 converge).
            default_step = 1.0 if exact else 0.05
            if method == "sngd":
                surrogate_map = family.surrogate_map()
                standard, aux = family.surrogate_start(params)
            else:
                surrogate_map = SurrogateMap(
                    family=SkewNormalMCEF(family.dim),
                    to_target=lambda standard, aux: SkewNormalMCEFStandard(*standard),
                )
                standard = skew_normal_to_conditional(params)
                aux = ()
            self.rule = rules.SNGD(
                surrogate_map,
                form="vi",
                step_size=step_size or default_step,
                line_search=line_search,
                aux_rule=aux_rule,
                backend=backend,
            )
            self.state = self.rule.init(standard, aux)
        else:
            self.rule = rules.Adam(step_size=step_size or 1e-2, backend=backend)
            self.state = self.rule.init(family.to_unconstrained(params, parameterization))

    def target(self, state: Any) -> Any:
        """The variational parameters (the family's named tuple) at ``state``."""
        if self.method == "adam":
            return self.family.from_unconstrained(state.params, self.parameterization)
        target = self.rule.target_params(state)
        if isinstance(target, SkewNormalMCEFStandard):
            return skew_normal_from_conditional(target)
        return target

    def project(self, state: Any) -> Any:
        """Return ``state`` with the parameters moved into the family's admissible set.

        Mixtures keep their weights at or above a floor; SNGD's natural parameters (and
        Adam's logits) are rewritten in place of the clipped weights, other state (moments,
        auxiliary parameters) is kept.
        """
        if self.method == "adam":
            values = self.family.project_unconstrained(state.params)
            return state if values is None else state._replace(params=values)
        if self.method != "sngd":
            return state
        projected = self.family.project(self.rule.target_params(state))
        if projected is None:
            return state
        standard, _ = self.family.surrogate_start(projected)
        natural = self.rule.surrogate_map.family.standard_to_natural(standard)
        return state._replace(surrogate_params=natural)

    def objective(self, loss_of_params: Callable[[Any], Array]) -> Callable[[Any], Array]:
        """The loss in the rule's coordinates."""
        if self.method == "adam":
            family, parameterization = self.family, self.parameterization
            return lambda values: loss_of_params(
                family.from_unconstrained(values, parameterization)
            )
        return loss_of_params


def _model_to_inner(model: Any, bridge: Any) -> Any:
    """``model`` with its data as the bridge's inner-library views (zero-copy).

    Models of :mod:`surrogate_natgrad.models` convert themselves (``map_arrays``); a bare
    ``log_joint`` function or another object is used as it is, so it must close over
    inner-library arrays itself (``bridge.to_inner(data)``).
    """
    map_arrays = getattr(model, "map_arrays", None)
    return model if map_arrays is None else map_arrays(bridge.to_inner)


def _float(value: Array) -> float:
    return float(value)


def _loss_with_noise(loss: Callable[[Any, Any], Array], noise: Any, params: Any) -> Array:
    """``loss(params, noise)`` with the noise of one step bound (for functools.partial)."""
    return loss(params, noise)


# --------------------------------------------------------------------------- driver


def fit_vi(
    log_joint: Any,
    family: Any = "gaussian",
    dim: int | None = None,
    *,
    k: int | None = None,
    method: str = "sngd",
    init: Any = None,
    max_iter: int | None = None,
    step_size: float | None = None,
    aux_step_size: float | None = None,
    n_samples: int = 10,
    n_samples_eval: int = 100,
    eval_every: int = 10,
    seed: int | None = None,
    callback: Callback | None = None,
    progress: bool = False,
    backend: str | None = None,
    like: Array | None = None,
    line_search: str | None = "backtracking",
    parameterization: str = "cholesky",
    closed_form: bool = True,
    tol: float | None = None,
    gtol: float | None = None,
    antithetic: bool = False,
    jit: bool | None = None,
    step_decay: float | None = None,
) -> VIResult:
    """Fit a variational approximation to a posterior by maximising the ELBO.

    Parameters
    ----------
    log_joint : model or callable
        A model from :mod:`surrogate_natgrad.models` (anything with ``log_joint`` and
        ``dim``; its closed-form parts, ``expected_log_prior`` with ``log_likelihood`` or a
        conjugate ``expected_log_joint``, are used when ``closed_form``), or a function
        ``log_joint(z)`` taking samples of shape ``(S, dim)`` in the model's namespace and
        returning ``S`` log densities.
    family : {"gaussian", "skew_normal", "skew_t", "skew_normal_mixture"} or family, optional
        The variational family: a full-covariance Gaussian ``N(mean, cov)``, Azzalini's
        skew-normal ``(loc, scale, shape)``, the Azzalini–Capitanio skew-t ``(loc, scale,
        shape, df)`` or a mixture of ``k`` skew-normals ``(weights, loc, scale, shape)``;
        or a :class:`~surrogate_natgrad.vi.VariationalFamily` class or instance.
    dim : int, optional
        Dimension of ``z`` (taken from the model when it has ``dim``).
    k : int, optional
        Number of components of ``family="skew_normal_mixture"`` (required there).
    method : {"sngd", "adam", "mcef"}, optional
        ``"sngd"`` (default), the baseline ``"adam"``, or ``"mcef"`` (Lin, Khan & Schmidt's
        natural gradient for the skew-normal).
    init : VariationalApproximation, dict or tuple, optional
        Starting parameters by name (``{"mean", "cov"}``, ``{"loc", "scale", "shape"}``,
        plus ``"df"`` for the skew-t, plus ``"weights"`` for mixtures; ``shape``, ``df`` (50)
        and ``weights`` (equal) may be omitted), or an approximation of a smaller family
        (a Gaussian for a skew-normal, a skew-normal for a skew-t). NumPy values are moved
        to the model's namespace. Default: mean 0, identity covariance, zero skewness
        (mixtures: distinct small locations).
    max_iter : int, optional
        Number of steps (default 1000; 100 when the ELBO is exact).
    step_size : float, optional
        Step size of the natural-gradient step (the first backtracking candidate) or of
        Adam. Default 0.05 for SNGD/MCEF (1.0 when the ELBO is exact), 0.01 for Adam.
    aux_step_size : float, optional
        Adam step size of SNGD's auxiliary skewness vector (default 0.01).
    n_samples : int, optional
        Reparameterised samples per step (default 10); per component for mixtures, whose
        expectations are stratified (``Σ_k π_k`` times the mean over component ``k``'s
        draws).
    n_samples_eval : int, optional
        Samples of the fixed evaluation draws (default 100); the same draws score every
        evaluation (common random numbers), so evaluations of different methods with the
        same ``seed`` are comparable.
    eval_every : int, optional
        Evaluate the negative ELBO every this many steps (1 when it is exact).
    seed : int, optional
        Seed of the training and evaluation draws.
    callback : callable, optional
        Called after every step with an :class:`~surrogate_natgrad.fitting.IterationInfo`
        (``loss`` is the training estimate before the step, ``validation_loss`` the
        evaluated negative ELBO when evaluated); returning True stops the fit.
    progress : bool, optional
        Show a tqdm progress bar.
    backend : str, optional
        Autodiff backend (``"autograd"``, ``"torch"``, ``"jax"``); chosen from the arrays
        by default.
    like : array, optional
        An array whose namespace, device and dtype the parameters take when neither the
        model nor ``init`` fixes them (NumPy float64 otherwise).
    line_search : {"backtracking", None, "armijo"}, optional
        For SNGD/MCEF: ``"backtracking"`` halves a step until the new scale matrix is
        positive definite; ``None`` refuses such a step (keeping the parameters);
        ``"armijo"`` also asks the training estimate (same draws) not to increase, which
        keeps large stochastic steps from degrading the scale matrix (E6, d = 100,
        ε = 0.1: final negative ELBO 84.0 instead of diverging) at the price of one more
        evaluation per step.
    parameterization : {"cholesky", "precision"}, optional
        Adam's square-root parameterisation of the scale matrix (``Ω = WWᵀ`` or
        ``Ω⁻¹ = WWᵀ``).
    closed_form : bool, optional
        Use the model's closed-form expectations (default True).
    tol, gtol : float, optional
        Convergence tolerances, used only when the ELBO is exact (conjugate models): the
        relative change of the loss and the gradient norm (defaults from the dtype).
    antithetic : bool, optional
        Draw the training samples in antithetic pairs ``(w, ε)``, ``(w, -ε)``
        (``n_samples`` must be even); the gradient stays unbiased with lower variance.
    step_decay : float, optional
        For stochastic SNGD/MCEF fits, the step size at step ``t`` is
        ``step_size / √(1 + (t - 1)/step_decay)``: large steps early, then smaller ones
        below the noise floor a fixed step leaves (E6, d = 100: −ELBO 82.6 with a fixed
        0.05, 72.0 with a fixed 0.02, 71.3 decaying from 0.05 over 100 steps). By default
        for stochastic fits in dimension ``d``, ``τ = 100·min(1, n_samples/d)`` and the
        step stays at ``step_size`` for the first ``100 - τ`` steps, then decays as above
        from there (E6, 10 draws in d = 100: τ = 10 after 90 steps, −ELBO 70.26 at step
        1000, within 1 % of it from step 290); with ``n_samples >= d`` that is the plain
        decay over 100 steps. A given ``step_decay`` decays from the first step;
        ``float("inf")`` keeps the step fixed. Not used by Adam or by exact (conjugate)
        fits.
    jit : bool, optional
        Compile the ELBO estimate once (``jax.jit`` on JAX; no effect on other backends).
        Compiling costs a few seconds per fit and makes each step several times cheaper;
        by default fits of at least 100 steps compile.

    Returns
    -------
    VIResult
        The fitted approximation, the ELBO and the history.

    Raises
    ------
    DataError
        For invalid options or starting values.
    BackendError
        For a start and a model in different libraries or on different devices.

    Warns
    -----
    ConvergenceWarning
        When an exact (conjugate) fit stops before converging, or a stochastic fit stops
        early because its steps kept failing.

    Examples
    --------
    >>> import numpy as np
    >>> from surrogate_natgrad.models import BayesianLinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(20, 3))
    >>> model = BayesianLinearRegression(X, X @ np.ones(3) + rng.normal(size=20))
    >>> result = fit_vi(model, "gaussian")
    >>> mean, cov = model.posterior()
    >>> bool(np.allclose(result.params["mean"], mean))
    True
    """
    start_time = time.perf_counter()
    check_option("method", method, VI_METHODS)
    check_option("line_search", line_search, _LINE_SEARCHES)
    parameterization = check_parameterization(parameterization)
    for name, value in (("max_iter", max_iter),):
        check_positive_int(name, value)
    for name, value in (
        ("n_samples", n_samples),
        ("n_samples_eval", n_samples_eval),
        ("eval_every", eval_every),
    ):
        check_positive_int(name, value, allow_none=False)
    for option, number in (("step_size", step_size), ("aux_step_size", aux_step_size)):
        check_real(option, number, positive=True)
    check_real("step_decay", step_decay, positive=True, allow_inf=True)
    if callback is not None and not callable(callback):
        raise DataError(f"callback must be callable, got {type(callback).__name__}")
    if antithetic and n_samples % 2:
        raise DataError(f"antithetic sampling needs an even n_samples, got {n_samples}")
    terms = ELBOTerms.from_model(log_joint, closed_form=closed_form)
    dimension = _resolve_dim(log_joint, dim)
    vi_family = _resolve_family(family, dimension, k)
    if method == "mcef" and not isinstance(vi_family, SkewNormalVariational):
        raise DataError(
            "method='mcef' is the natural gradient of the skew-normal MCEF joint; use it with "
            "family='skew_normal' (for a Gaussian it coincides with method='sngd')"
        )
    reference = _reference_array(log_joint, init, like)
    xp: Namespace = namespace(reference)
    # CuPy data: every step runs on zero-copy torch/JAX views (see rules' bridge_for), so
    # the ELBO's model and draws must be such views too; evaluations go through the bridge.
    bridge = bridge_for(backend, reference)
    inner: Callable[[Any], Any] = (lambda tree: tree) if bridge is None else bridge.to_inner
    if bridge is not None:
        terms = ELBOTerms.from_model(_model_to_inner(log_joint, bridge), closed_form=closed_form)
    dtype = reference.dtype
    params = _initial_params(vi_family, init, reference)
    exact = terms.exact and vi_family.closed_form_entropy
    decay: float | None = None
    decay_start = 0.0
    if not exact and step_decay is not None:
        decay = step_decay
    elif not exact:
        decay = default_step_decay(n_samples, dimension)
        # The step stays put for the first 100 - τ steps: far from the optimum large steps
        # gain more than the noise they leave (E6: −ELBO 79.4 at step 100 against 121.8
        # with the decay from the start), and the fast decay then removes the noise floor.
        decay_start = STEP_DECAY_STEPS - decay
    if decay is not None and math.isinf(decay):
        decay = None
    max_iter = max_iter if max_iter is not None else (100 if exact else 1000)
    eval_every = 1 if exact else eval_every
    setup = _Method(
        method,
        vi_family,
        params,
        step_size=step_size,
        aux_step_size=aux_step_size,
        line_search=line_search,
        parameterization=parameterization,
        exact=exact,
        backend=backend,
    )

    from surrogate_natgrad import random

    train_rng, eval_rng = random.default_rng(seed, like=reference).spawn(2)
    eval_noise = None if exact else inner(vi_family.draw_noise(eval_rng, n_samples_eval, dtype))

    def elbo_loss(target: Any, noise: Any) -> Array:
        return -estimate_elbo(vi_family, target, terms, noise)

    # One compiled loss (JAX) instead of hundreds of per-primitive compilations; the draws
    # are an argument, so a new draw per step does not recompile. Compiling costs seconds
    # per fit, so by default only long fits do it.
    compile_loss = getattr(get_backend(backend, reference), "compile", None)
    use_jit = jit if jit is not None else max_iter >= _JIT_FROM_ITERATIONS
    negative_elbo = compile_loss(elbo_loss) if compile_loss is not None and use_jit else elbo_loss

    def evaluate(target: Any) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if bridge is not None:
                return _float(bridge.call(negative_elbo, target, eval_noise))
            return _float(negative_elbo(target, eval_noise))

    eps = dtype_eps(xp, dtype)
    stopping = StoppingRule(
        tol=default_tol(eps) if tol is None else tol,
        gtol=default_gtol(eps) if gtol is None else gtol,
        max_iter=max_iter,
    )
    from surrogate_natgrad.rules import status_name

    target = setup.target(setup.state)
    first_loss = evaluate(target)
    if not math.isfinite(first_loss):
        raise DataError(
            f"the negative ELBO at the starting point is not finite ({first_loss}); check "
            "log_joint and init"
        )
    losses = [first_loss]
    train_losses: list[float] = [math.nan]
    steps: list[float] = [math.nan]
    grad_norms: list[float] = [math.nan]
    statuses: list[str] = ["START"]
    times = [time.perf_counter() - start_time]
    good_target, good_loss = target, first_loss
    best_target, best_loss, best_iteration = target, first_loss, 0
    state = setup.state
    failures = 0
    final_status: str | None = None
    n_iter = 0
    bar = ProgressBar(progress, max_iter, f"{vi_family.name} ({method})")
    try:
        for iteration in range(1, max_iter + 1):
            noise = None
            if not exact:
                if antithetic:
                    half = vi_family.draw_noise(train_rng, n_samples // 2, dtype)
                    noise = inner(antithetic_noise(half))
                else:
                    noise = inner(vi_family.draw_noise(train_rng, n_samples, dtype))
            objective = setup.objective(functools.partial(_loss_with_noise, negative_elbo, noise))
            with warnings.catch_warnings():
                # Out-of-domain candidates evaluate to NaN on purpose and are skipped.
                warnings.simplefilter("ignore", RuntimeWarning)
                rule = setup.rule
                if decay is not None and method != "adam":
                    # Robbins–Monro-style decay: the fixed-step estimate has a noise floor.
                    base_step = rule.step_size
                    rule = dataclasses.replace(
                        rule,
                        step_size=base_step
                        / math.sqrt(1.0 + max(0.0, iteration - 1 - decay_start) / decay),
                    )
                new_state, info = rule.step(state, objective)
            code = int(info.status)
            n_iter = iteration
            train_losses.append(_float(info.loss))
            grad_norms.append(_float(info.grad_norm))
            steps.append(_float(info.step_size))
            statuses.append(status_name(code))
            if code in _ACCEPTED:
                state = setup.project(new_state)
                failures = 0
            else:
                failures += 1
            target = setup.target(state)
            evaluated: float | None = None
            diverged = False
            if iteration % eval_every == 0 or iteration == max_iter:
                evaluated = evaluate(target)
                losses.append(evaluated)
                if math.isfinite(evaluated):
                    if not exact and has_diverged(evaluated, best_loss):
                        diverged = True
                    else:
                        good_target, good_loss = target, evaluated
                    if evaluated < best_loss:
                        best_target, best_loss, best_iteration = target, evaluated, iteration
            else:
                losses.append(math.nan)
            times.append(time.perf_counter() - start_time)
            bar.update(train_losses[-1])
            verdict: str | None = None
            if diverged:
                verdict = "diverged"
            elif code not in _ACCEPTED and (exact or failures >= _MAX_FAILURES):
                verdict = "nonfinite" if code == int(rules.Status.NONFINITE) else "step_rejected"
            elif exact and evaluated is not None:
                verdict = stopping.update(evaluated, grad_norms[-1], iteration)
            elif iteration >= max_iter:
                verdict = "max_iter"
            if callback is not None:
                report = IterationInfo(
                    iteration=iteration,
                    loss=train_losses[-1],
                    step_size=steps[-1],
                    grad_norm=grad_norms[-1],
                    time=times[-1],
                    status=statuses[-1],
                    params=vi_family.to_dict(target),
                    validation_loss=evaluated,
                )
                if callback(report) is True:
                    verdict = "callback"
            if verdict is not None:
                final_status = verdict
                break
    finally:
        bar.close()
    final_status = final_status or "max_iter"
    if final_status == "diverged":
        diverged_loss = losses[-1]
        target, final_loss = best_target, best_loss
    else:
        final_loss = evaluate(target)
        if not math.isfinite(final_loss):
            target, final_loss = good_target, good_loss
    converged = final_status == "converged"
    message = stopping.message(final_status, grad_norms[-1] if grad_norms else None)
    if not exact and final_status == "max_iter":
        message = f"ran the requested {max_iter} stochastic steps"
    if final_status == "diverged":
        message = diverged_message(best_loss, best_iteration, diverged_loss, n_iter)
    history = FitHistory(
        loss=np.asarray(losses, dtype=float),
        step_size=np.asarray(steps, dtype=float),
        time=np.asarray(times, dtype=float),
        grad_norm=np.asarray(grad_norms, dtype=float),
        status=statuses,
    )
    approximation = VariationalApproximation(vi_family, target)
    result = VIResult(
        distribution=approximation,
        params=approximation.params,
        loss=final_loss,
        n_iter=n_iter,
        converged=converged,
        status=final_status,
        message=message,
        history=history,
        time=time.perf_counter() - start_time,
        method=method,
        extra={"train_loss": np.asarray(train_losses, dtype=float), "exact_elbo": exact},
        elbo=-final_loss,
        family=vi_family.name,
    )
    stopped_early = final_status in ("nonfinite", "step_rejected", "stalled", "diverged")
    if (exact and not converged and final_status != "callback") or stopped_early:
        warnings.warn(
            f"{vi_family.name} VI by {method} stopped after {n_iter} iterations: {message}",
            ConvergenceWarning,
            stacklevel=2,
        )
    return result
