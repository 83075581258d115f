"""The :func:`fit` driver: maximum likelihood of a target distribution by SNGD or a baseline.

Driver layer (layer 4). The numerical work happens in the data's own namespace and on its
device, through the update rules of :mod:`surrogate_natgrad.rules`; the driver only reads
0-d results back as Python floats for the stopping test, the history and the callback.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from surrogate_natgrad import autodiff
from surrogate_natgrad._compat import (
    Array,
    Namespace,
    array_library_name,
    asarray,
    device,
    dtype_eps,
    is_array,
    namespace,
)
from surrogate_natgrad._tree import tree_leaves
from surrogate_natgrad.autodiff import AutodiffBackend
from surrogate_natgrad.distributions import Distribution
from surrogate_natgrad.distributions._base import registered
from surrogate_natgrad.errors import BackendError, ConvergenceWarning, DataError
from surrogate_natgrad.fitting._callbacks import Callback, IterationInfo, ProgressBar
from surrogate_natgrad.fitting._result import FitHistory, FitResult
from surrogate_natgrad.fitting._stopping import (
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
    check_validation_data,
)

__all__ = ["DISTRIBUTIONS", "METHODS", "fit"]

#: Methods accepted by :func:`fit`.
METHODS = ("sngd", "gd", "adam", "bfgs", "ngd")

#: Names accepted for the ``distribution`` argument of :func:`fit` when this module was
#: imported (every target class under its lower-case name and aliases; see
#: :func:`surrogate_natgrad.distributions.registered` for the live registry).
DISTRIBUTIONS: dict[str, type[Distribution]] = registered()

_LINE_SEARCHES = ("auto", None, "backtracking", "armijo", "grid")
# Rule statuses (surrogate_natgrad.rules.Status) that end a fit.
_ACCEPTED = (0, 1)  # OK, BACKTRACKED
_NONFINITE = 4
_SINGULAR_FISHER = 5


def _default_step_decay(batch_size: int, counts: Array) -> float:
    """:func:`default_step_decay` for minibatches of ``batch_size`` rows of ``counts``."""
    columns = int(math.prod(counts.shape[1:])) if counts.ndim > 1 else 1
    return default_step_decay(batch_size, columns)


def _resolve_distribution(distribution: object) -> type[Distribution]:
    names = registered()
    if isinstance(distribution, str):
        key = distribution.lower()
        if key not in names:
            raise DataError(f"unknown distribution {distribution!r}; choose from {sorted(names)}")
        return names[key]
    if isinstance(distribution, type) and issubclass(distribution, Distribution):
        if distribution is Distribution:
            raise DataError("distribution must be a concrete target class, not the base class")
        return distribution
    if isinstance(distribution, Distribution):
        raise DataError(
            "distribution must be a class (e.g. NegativeBinomial), not an instance; pass the "
            "instance as init= to start from it"
        )
    raise DataError(
        "distribution must be a target class (a subclass of "
        f"surrogate_natgrad.distributions.Distribution) or one of {sorted(names)}; "
        f"got {distribution!r}"
    )


def _convert_init_value(name: str, value: object, xp: Namespace, like: Array) -> Array:
    """Bring one starting value into the data's namespace, device and dtype.

    Python scalars, sequences and NumPy arrays are converted (the start is small and given
    explicitly by the user); arrays of another library or device are an error.
    """
    arr: Any
    if is_array(value) and not isinstance(value, np.ndarray | np.generic):
        try:
            namespace(data=like, **{f"init[{name!r}]": value})
        except BackendError as exc:
            raise BackendError(
                f"init[{name!r}] and data must be arrays of one library: {exc}"
            ) from exc
        arr = value
    else:
        try:
            host = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"init[{name!r}] must be a number or an array of numbers; got {value!r}"
            ) from exc
        arr = asarray(host, xp, device=device(like))
    if arr.dtype != like.dtype:
        arr = xp.astype(arr, like.dtype)
    return arr


def _initial_params(
    cls: type[Distribution],
    init: object,
    counts: Array,
    options: dict[str, Any],
) -> dict[str, Array]:
    xp = namespace(counts)
    if init is None:
        params = cls.from_data(counts, **options).params
    else:
        if isinstance(init, Distribution):
            if not isinstance(init, cls):
                raise DataError(
                    f"init is a {type(init).__name__}, but a {cls.__name__} is being fitted"
                )
            raw: Mapping[str, object] = init.params
        elif isinstance(init, Mapping):
            raw = init
        else:
            raise DataError(
                f"init must be None, a {cls.__name__} or a dict of its parameters; got "
                f"{type(init).__name__}"
            )
        converted = {
            name: _convert_init_value(name, value, xp, counts) for name, value in raw.items()
        }
        params = cls.from_params(converted).params
    n_components = options.get("n_components")
    if n_components is not None and "weights" in params:
        found = int(params["weights"].shape[-1])
        if found != n_components:
            raise DataError(f"init has {found} components but n_components={n_components}")
    # The fitting coordinates may need the interior of the domain (NB: p < 1, positive
    # mixture weights).
    cls.check_start(params)
    return {
        name: (v if v.dtype == counts.dtype else xp.astype(v, counts.dtype))
        for name, v in params.items()
    }


class _Method:
    """One optimisation method set up for one fit: the rule and its coordinates."""

    def __init__(
        self,
        method: str,
        cls: type[Distribution],
        target: dict[str, Array],
        counts: Array,
        *,
        step_size: float | None,
        aux_step_size: float | None,
        line_search: str | None,
        minibatch: bool,
        grid_size: int,
        mc_samples: int,
        rng: Any,
        backend: str | AutodiffBackend | None,
        parameterization: str = "cholesky",
    ) -> None:
        from surrogate_natgrad import rules

        self.method = method
        self.cls = cls
        self.to_coords, self.from_coords = _baseline_coordinates(cls, parameterization)
        # Under a DLPack bridge (CuPy data differentiated by torch or JAX) the objective
        # sees inner-library parameters inside the bridge and source-library ones in the
        # line search: it takes its data, zero-copy, from the matching library.
        resolved = autodiff.get_backend(backend, counts)
        self.bridge = resolved if isinstance(resolved, autodiff.DLPackBridge) else None
        batched = line_search == "grid"
        aux_rule: Any = rules.Adam(step_size=aux_step_size or 1e-2)
        if line_search in ("grid", "armijo"):
            # A deterministic gradient and a line search on the auxiliary step (SNGD's
            # _safe_aux): quasi-Newton steps converge where Adam's keep their length.
            aux_rule = rules.LBFGS(step_size=aux_step_size or 1e-2)
        self.rule: Any
        if method == "sngd":
            surrogate_map = cls.surrogate_map_for(target)
            default_step = 0.1 if minibatch else 1.0
            self.rule = rules.SNGD(
                surrogate_map,
                form="mle",
                step_size=step_size or default_step,
                line_search=line_search,
                aux_rule=aux_rule,
                grid_size=grid_size,
                objective_batched=batched,
                backend=backend,
            )
            self.state = self.rule.init_from_target(target)
            self.fallback = self._fallback(line_search, grid_size)
            self.base_step_size = float(self.rule.step_size)
            return
        coords = self.to_coords(target)
        from_coords = self.from_coords
        if method == "gd":
            self.rule = rules.GradientDescent(
                step_size=step_size or (0.01 if minibatch else 1.0),
                line_search=line_search,
                grid_size=grid_size,
                objective_batched=batched,
                backend=backend,
            )
        elif method == "adam":
            self.rule = rules.Adam(step_size=step_size or 0.05, backend=backend)
        elif method == "bfgs":
            self.rule = rules.BFGS(
                step_size=step_size or 1.0,
                line_search=line_search,
                grid_size=grid_size,
                objective_batched=batched,
                backend=backend,
            )
        else:  # ngd
            dtype = next(iter(target.values())).dtype
            xp = namespace(counts)

            def log_prob(unconstrained: Any, samples: Array) -> Array:
                return cls.pointwise_log_prob(from_coords(unconstrained), samples)

            def sampler(unconstrained: Any, n_samples: int) -> Array:
                params = from_coords(unconstrained)
                draws = cls.from_params(params, validate=False).sample(n_samples, seed=rng)
                return xp.astype(draws, dtype)

            self.rule = rules.NaturalGradientDescent(
                log_prob=log_prob,
                sampler=sampler,
                n_samples=mc_samples,
                step_size=step_size or (0.1 if minibatch else 1.0),
                line_search=line_search,
                grid_size=grid_size,
                objective_batched=batched,
                batched_log_prob=True,
                backend=backend,
            )
        self.state = self.rule.init(coords)
        self.fallback = self._fallback(line_search, grid_size)
        self.base_step_size = float(self.rule.step_size)

    def _fallback(self, line_search: str | None, grid_size: int) -> Any:
        """A backtracking version of the rule, for when no grid step is acceptable.

        Near the boundary of the domain (a mixture component drifting towards the Poisson
        limit ``p -> 1``, say) even the smallest grid step can leave it; halving from that
        step (up to 20 times, requiring no increase of the loss) usually still finds one.
        """
        if line_search != "grid":
            return None
        smallest = self.rule.step_size / grid_size
        search = "armijo" if self.method == "sngd" else "backtracking"
        return dataclasses.replace(self.rule, line_search=search, step_size=smallest)

    def adapt_grid(self, step_taken: float, max_growth: float) -> None:
        """Widen or narrow the grid line search after a step of size ``step_taken``.

        When the grid's largest step wins, the surrogate's curvature over-estimates the
        target's along the direction (a mixture fit with overlapping components moves like
        EM, by small steps along a flat ridge): the next grid reaches twice as far, up to
        ``max_growth`` times the initial largest step (over-relaxation). When a step of at
        most a quarter of the range wins, the range halves again, never below the initial
        one, so the grid keeps its resolution near the steps actually taken.
        """
        largest = self.rule.step_size
        if step_taken >= largest * (1 - 1e-9):
            largest = min(2 * largest, self.base_step_size * max_growth)
        elif step_taken <= largest / 4:
            largest = max(largest / 2, self.base_step_size)
        else:
            return
        if largest != self.rule.step_size:
            self.rule = dataclasses.replace(self.rule, step_size=largest)

    def target_params(self, state: Any) -> dict[str, Array]:
        """Target parameters at ``state``."""
        if self.method == "sngd":
            return dict(self.rule.target_params(state))
        return self.from_coords(state.params)

    def objective(self, counts: Array, frequencies: Array | None = None) -> Callable[[Any], Array]:
        """The loss in the rule's coordinates, on ``counts`` (with their ``frequencies``)."""
        cls = self.cls
        views = _LibraryViews(self.bridge, counts, frequencies)
        if self.method == "sngd":
            return _TargetObjective(cls, views)
        from_coords = self.from_coords
        return lambda coords: cls.mean_nll(from_coords(coords), *views.matching(coords))

    def objective_of_target(self, loss: Callable[[Any], Array]) -> Callable[[Any], Array]:
        """``loss`` (a function of the target parameters) in the rule's coordinates."""
        if self.method == "sngd":
            return loss
        from_coords = self.from_coords
        return lambda coords: loss(from_coords(coords))


def _baseline_coordinates(
    cls: type[Distribution], parameterization: str
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The baselines' unconstrained coordinates: ``cls.to/from_unconstrained[_precision]``."""
    if parameterization == "cholesky":
        return cls.to_unconstrained, cls.from_unconstrained
    to_coords = getattr(cls, "to_unconstrained_precision", None)
    from_coords = getattr(cls, "from_unconstrained_precision", None)
    if to_coords is None or from_coords is None:
        raise DataError(
            f"parameterization='precision' needs a target with a scale or correlation matrix; "
            f"{cls.__name__} has no precision coordinates (to_unconstrained_precision)"
        )
    return to_coords, from_coords


class _TargetObjective:
    """``cls.mean_nll`` on fixed data, as a function of the target parameters.

    SNGD's rule also asks it for the class's closed-form direction
    (:meth:`Distribution.loss_and_natural_gradient`), which replaces autodiff through the
    surrogate map where the class has one.
    """

    def __init__(self, cls: type[Distribution], views: _LibraryViews) -> None:
        self.cls = cls
        self.views = views

    def __call__(self, target: Any) -> Array:
        return self.cls.mean_nll(target, *self.views.matching(target))

    def loss_and_natural_gradient(
        self, surrogate_map: Any, mean_params: Any, aux: Any, backend: Any
    ) -> tuple[Array, Any, Any] | None:
        """The class's closed-form loss and SNGD direction on this data, or None."""
        data, weights = self.views.matching(mean_params)
        return self.cls.loss_and_natural_gradient(
            surrogate_map, mean_params, aux, data, weights, backend=backend
        )


class _LibraryViews:
    """Data in the source library and, under a DLPack bridge, in the inner one too."""

    def __init__(self, bridge: Any, data: Array, weights: Array | None) -> None:
        self.source = (data, weights)
        self.inner: tuple[Array, Array | None] | None = None
        self.inner_name = ""
        if bridge is not None:
            self.inner = (
                bridge.to_inner(data),
                None if weights is None else bridge.to_inner(weights),
            )
            self.inner_name = bridge.inner.name

    def matching(self, params: Any) -> tuple[Array, Array | None]:
        """The data in the library of ``params`` (zero-copy views of one buffer)."""
        if self.inner is None:
            return self.source
        leaf = tree_leaves(params)[0]
        if array_library_name(namespace(leaf)) == self.inner_name:
            return self.inner
        return self.source


def _compress(counts: Array) -> tuple[Array, Array]:
    """Distinct values of ``counts`` and how often each occurs (as floats).

    Count data repeat a lot (20,190 doctor-visit counts take 60 distinct values), so the
    likelihood over distinct values with frequencies costs a fraction of the full sum.
    """
    xp = namespace(counts)
    unique = xp.unique_counts(counts)
    return unique.values, xp.astype(unique.counts, counts.dtype)


def _resolve_line_search(line_search: object, method: str, minibatch: bool) -> str | None:
    check_option("line_search", line_search, _LINE_SEARCHES)
    if line_search != "auto":
        if method == "adam" and line_search is not None:
            raise DataError("method='adam' takes no line search; use line_search=None")
        return line_search  # type: ignore[return-value]
    if method == "adam":
        return None
    if minibatch:
        # A grid search on a minibatch would overfit the batch; keep steps safe instead.
        return "backtracking" if method in ("sngd", "bfgs", "ngd") else None
    # The paper's full-batch setting: a grid line search for every method.
    return "grid"


def _float(value: Array) -> float:
    """Read a 0-d array back as a Python float (one scalar transfer to the host)."""
    return float(value)


def fit(
    distribution: type[Distribution] | str,
    data: Array,
    *,
    method: str = "sngd",
    init: Distribution | Mapping[str, object] | None = None,
    max_iter: int | None = None,
    tol: float | None = None,
    gtol: float | None = None,
    step_size: float | None = None,
    aux_step_size: float | None = None,
    line_search: str | None = "auto",
    batch_size: int | None = None,
    callback: Callback | None = None,
    progress: bool = False,
    seed: int | None = None,
    backend: str | AutodiffBackend | None = None,
    validation_data: Array | None = None,
    n_components: int | None = None,
    grid_size: int | None = None,
    mc_samples: int = 10_000,
    eval_every: int = 10,
    max_step_growth: float = 64.0,
    step_decay: float | None = None,
    parameterization: str = "cholesky",
) -> FitResult:
    """Fit a distribution to data by maximum likelihood.

    Parameters
    ----------
    distribution : type or str
        A target of :mod:`surrogate_natgrad.distributions` or its registered name:
        :class:`~surrogate_natgrad.distributions.NegativeBinomial` (``"nbinom"``),
        :class:`~surrogate_natgrad.distributions.NegativeBinomialMixture`
        (``"nbinom-mixture"``), :class:`~surrogate_natgrad.distributions.SkewNormal`
        (``"skew_normal"``), :class:`~surrogate_natgrad.distributions.SkewT`
        (``"skew_t"``), :class:`~surrogate_natgrad.distributions.MultivariateT`
        (``"multivariate_t"``), :class:`~surrogate_natgrad.distributions.TCopula`
        (``"t_copula"``), :class:`~surrogate_natgrad.distributions.SkewNormalMixture`
        (``"skew_normal_mixture"``), or a user-defined subclass of
        :class:`~surrogate_natgrad.distributions.Distribution`.
    data : array
        Counts (one-dimensional, finite, non-negative integer values of any numeric dtype)
        for the count targets; an ``(N, d)`` array of observations for the multivariate
        ones (points in the open cube ``(0, 1)^d`` for the copula),
        as a NumPy, CuPy, torch, JAX or array-api-strict array. The fit runs in this
        array's namespace and on its device; float32 data are fitted in float32.
        Data larger than memory: a :class:`~surrogate_natgrad.chunked.ChunkedData`, a Dask
        array, a NumPy memory map or the path of a ``.npy`` file are reduced chunk by
        chunk (see :mod:`surrogate_natgrad.chunked`; counts once, to a histogram).
    method : {"sngd", "gd", "adam", "bfgs", "ngd"}, optional
        ``"sngd"`` (default): surrogate natural gradient descent through the target's
        surrogate (gamma (mixture) for counts, Gaussian for the skew-elliptical targets
        and the copula). Baselines on the target's unconstrained coordinates
        (``to_unconstrained``: ``log n``, ``logit p``, weight logits; a square root of a
        scale matrix, see ``parameterization``): ``"gd"`` gradient descent, ``"adam"``,
        ``"bfgs"`` (``H₀ = I``), ``"ngd"`` natural gradient descent with a Monte Carlo
        Fisher (``mc_samples`` samples).
    init : Distribution, dict or None, optional
        Starting point: an instance of ``distribution``, a dict of its parameters (NumPy
        values are moved to the data's namespace and device), or None for a data-driven
        start (method of moments, with a safe over-dispersed fallback when the variance
        does not exceed the mean; for mixtures a deterministic quantile-based start).
    max_iter : int, optional
        Largest number of iterations (default 500; 1000 with minibatches).
    tol : float, optional
        Relative change of the loss below which an iteration makes "no progress"; two such
        iterations in a row (plus the gradient test) mean convergence. Default from the
        dtype: ``eps**0.625`` (about 1.6e-10 in float64).
    gtol : float, optional
        Gradient-norm tolerance relative to ``max(1, |loss|)`` (default ``eps**0.25``).
    step_size : float, optional
        Step size (the largest step of a line search). Default 1.0 (Adam 0.05; with
        minibatches 0.1 for SNGD/NGD, 0.01 for GD).
    aux_step_size : float, optional
        SNGD's auxiliary parameters (skew vectors, degrees of freedom; the negative
        binomials have none) move by :class:`~surrogate_natgrad.rules.Adam` with this step
        size (default 1e-2) with minibatches, and by
        :class:`~surrogate_natgrad.rules.LBFGS` steps, line-searched, with the full-batch
        ``"grid"`` and ``"armijo"`` searches (this is then the length of the first step).
    line_search : {"auto", None, "backtracking", "armijo", "grid"}, optional
        ``"auto"`` (default): the grid line search (1000 steps in ``(0, step_size]``) for
        full-batch fits; with minibatches backtracking for SNGD, BFGS and NGD and a fixed
        step for GD; none for Adam.
    batch_size : int, optional
        Minibatch size (drawn with replacement, seeded by ``seed``); full batch when None.
        The full-data loss is then evaluated every ``eval_every`` iterations.
    callback : callable, optional
        Called after every iteration with an
        :class:`~surrogate_natgrad.fitting.IterationInfo`; returning True stops the fit.
    progress : bool, optional
        Show a tqdm progress bar (when tqdm is installed).
    seed : int, optional
        Seed of the minibatches and of the Monte Carlo Fisher samples.
    backend : str or AutodiffBackend, optional
        Autodiff backend (``"autograd"``, ``"torch"``, ``"jax"``, or an instance such as a
        :class:`~surrogate_natgrad.autodiff.CustomGradient`); chosen from the data's
        arrays by default.
    validation_data : array, optional
        Held-out counts (same namespace and device); their loss is recorded in the history.
    n_components : int, optional
        Number of mixture components K (mixtures; taken from ``init`` when given there).
    grid_size : int, optional
        Number of candidates of the grid line search: 1000 (the paper's) for a negative
        binomial; ``max(100, 1000 // K)`` for a K-component mixture, whose candidates cost
        K times as much.
    mc_samples : int, optional
        Monte Carlo samples per Fisher estimate of ``method="ngd"`` (default 10,000).
    eval_every : int, optional
        With minibatches, evaluate the full-data loss every this many iterations.
    max_step_growth : float, optional
        With the grid line search, the largest step may grow to this multiple of
        ``step_size`` (default 64): when the grid's largest step wins, the next grid
        reaches twice as far; when a step of at most a quarter of the range wins, the range
        halves again (never below ``step_size``). Mixture fits, which move like EM along
        flat ridges, converge several times faster this way. 1 keeps the grid fixed.
    step_decay : float, optional
        With minibatches, the step size at step ``t`` of SNGD, NGD and GD is
        ``step_size / √(1 + (t - 1)/step_decay)``: large steps early, then smaller ones below
        the noise floor a fixed step leaves on a minibatch estimate. Default
        ``100·min(1, batch_size/d)`` for minibatch fits of ``d``-column data (faster decay
        when a batch has fewer rows than the data have columns); ``float("inf")`` keeps the
        step fixed. Not used by Adam and BFGS, nor
        by full-batch fits (their line searches choose the step).
    parameterization : {"cholesky", "precision"}, optional
        The baselines' square root ``W`` of a scale (or correlation) matrix: ``Ω = WᵀW``
        (``"cholesky"``, default; the target's ``to_unconstrained``) or ``Ω⁻¹ = WᵀW``
        (``"precision"``; ``to_unconstrained_precision``, offered by
        :class:`~surrogate_natgrad.distributions.SkewNormal`,
        :class:`~surrogate_natgrad.distributions.SkewT` and
        :class:`~surrogate_natgrad.distributions.TCopula`), the paper's two Adam
        baselines. The aliases ``"covariance-msqrt"`` and ``"precision-msqrt"`` are
        accepted. SNGD steps in the surrogate's parameters and does not use it.

    Returns
    -------
    FitResult
        The fitted distribution (parameters in the data's namespace and device), the loss
        (mean negative log-likelihood), iterations, convergence flag, status, message,
        history and time.

    Raises
    ------
    DataError
        For invalid data (naming the argument, the first offending value and its index)
        or invalid options.
    DomainError
        For a starting point outside the parameter domain.
    BackendError
        For data and start (or validation data) from different libraries or devices.

    Warns
    -----
    ConvergenceWarning
        When the fit stops without converging (iteration budget, non-finite loss, rejected
        step, stall); the last good parameters are returned, never NaN.

    Notes
    -----
    When no step inside the parameter domain lowers the loss and the parameters sit at the
    domain's edge (a negative-binomial component whose data are not over-dispersed tends to
    the Poisson limit ``p -> 1``, ``n -> inf``), the likelihood's supremum lies on the
    boundary: the fit reports ``status="boundary"``, ``converged=True``, and the message
    names the parameters concerned.

    Examples
    --------
    >>> import numpy as np
    >>> from surrogate_natgrad.distributions import NegativeBinomial
    >>> counts = np.random.default_rng(0).negative_binomial(5, 1 / 11, size=1000)
    >>> result = fit(NegativeBinomial, counts)
    >>> result.converged, result.n_iter < 20
    (True, True)
    """
    start_time = time.perf_counter()
    cls = _resolve_distribution(distribution)
    check_option("method", method, METHODS)
    check_positive_int("max_iter", max_iter)
    check_positive_int("batch_size", batch_size)
    check_positive_int("grid_size", grid_size)
    check_positive_int("mc_samples", mc_samples, allow_none=False)
    check_positive_int("eval_every", eval_every, allow_none=False)
    if callback is not None and not callable(callback):
        raise DataError(f"callback must be callable, got {type(callback).__name__}")
    for name, value in (("tol", tol), ("gtol", gtol)):
        check_real(name, value)
    for name, value in (
        ("step_size", step_size),
        ("aux_step_size", aux_step_size),
        ("max_step_growth", max_step_growth),
    ):
        check_real(name, value, positive=True)
    check_real("step_decay", step_decay, positive=True, allow_inf=True)
    parameterization = check_parameterization(parameterization)
    # Chunked data (ChunkedData, Dask array, memory map, .npy path; surrogate_natgrad.chunked):
    # one validating pass over the chunks; `counts` is then a sample for the start only.
    from surrogate_natgrad.chunked import prepare_fit

    chunked = prepare_fit(cls, data)
    counts = cls.check_data(data, "data") if chunked is None else chunked.start
    n_obs = int(counts.shape[0]) if chunked is None else chunked.n_obs
    xp = namespace(counts)
    validation = (
        check_validation_data(validation_data, counts, cls) if validation_data is not None else None
    )
    options: dict[str, Any] = {}
    if "n_components" in cls.fit_options:
        check_positive_int("n_components", n_components)
        if n_components is None:
            if init is None:
                raise DataError("n_components is needed to fit a mixture without init")
        else:
            if init is None and n_components > n_obs:
                raise DataError(
                    f"n_components={n_components} exceeds the number of observations "
                    f"({n_obs})"
                )
            options["n_components"] = n_components
    elif n_components not in (None, 1):
        raise DataError(f"n_components applies to mixtures only; got {n_components!r}")
    minibatch = batch_size is not None
    search = _resolve_line_search(line_search, method, minibatch)
    decay: float | None = None
    if minibatch and method in ("sngd", "ngd", "gd"):
        assert batch_size is not None
        decay = _default_step_decay(batch_size, counts) if step_decay is None else step_decay
        decay = None if math.isinf(decay) else float(decay)
    max_iter = max_iter if max_iter is not None else (1000 if minibatch else 500)
    eps = dtype_eps(xp, counts.dtype)
    stopping = StoppingRule(
        tol=default_tol(eps) if tol is None else tol,
        gtol=default_gtol(eps) if gtol is None else gtol,
        max_iter=max_iter,
    )

    from surrogate_natgrad import random

    rng = random.default_rng(seed, like=counts)
    target = _initial_params(cls, init, counts, options)
    if grid_size is None:
        grid_size = cls.default_grid_size(target)
    # Count data repeat: evaluate the likelihood over distinct values with frequencies.
    if chunked is None:
        distinct, frequencies = _compress(counts) if cls.discrete else (counts, None)
    else:  # the histogram of all chunks (counts), or None: the per-chunk objective
        distinct, frequencies = chunked.distinct, chunked.frequencies
    gradient_backend = backend
    if (
        backend is None
        and method == "sngd"
        and not minibatch
        and distinct is not None
        and array_library_name(xp) == "numpy"
    ):
        # A target whose SNGD gradient is known in closed form (the negative binomial)
        # spares full-batch NumPy fits autograd's tracing, most of the cost of a direction
        # (with chunked data: when the chunks reduce to a histogram, the full objective).
        offer = getattr(cls, "closed_form_backend", None)
        closed = offer(distinct, frequencies, form="mle") if offer is not None else None
        if closed is not None:
            gradient_backend = closed
    setup = _Method(
        method,
        cls,
        target,
        counts,
        step_size=step_size,
        aux_step_size=aux_step_size,
        line_search=search,
        minibatch=minibatch,
        grid_size=grid_size,
        mc_samples=mc_samples,
        rng=rng,
        backend=gradient_backend,
        parameterization=parameterization,
    )
    if distinct is None:
        assert chunked is not None
        full_objective = setup.objective_of_target(chunked.objective())
    else:
        full_objective = setup.objective(distinct, frequencies)
    validation_distinct: tuple[Array, Array | None] | None = None
    if validation is not None:
        validation_distinct = _compress(validation) if cls.discrete else (validation, None)
    mean_nll = cls.mean_nll

    def full_loss(params: Mapping[str, Array]) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if distinct is None:
                assert chunked is not None
                return _float(chunked.mean_nll(params))
            return _float(mean_nll(params, distinct, frequencies))

    def validation_loss(params: Mapping[str, Array]) -> float | None:
        if validation_distinct is None:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return _float(mean_nll(params, *validation_distinct))

    losses: list[float] = []
    steps: list[float] = [math.nan]
    times: list[float] = []
    grad_norms: list[float] = [math.nan]
    statuses: list[str] = ["START"]
    val_losses: list[float] = []

    if minibatch:
        losses.append(full_loss(target))
        val = validation_loss(target)
        val_losses.append(math.nan if val is None else val)
    times.append(time.perf_counter() - start_time)

    from surrogate_natgrad.rules import status_name

    bar = ProgressBar(progress, max_iter, f"{cls.__name__} ({method})")
    state = setup.state
    previous_target = target  # params before the last step (full batch: loss known)
    # The best point seen (full batch: returned if a fit that did not converge ends worse;
    # minibatches: among the evaluations, returned if the fit diverges).
    best_target: dict[str, Array] = target
    best_loss = losses[0] if minibatch and math.isfinite(losses[0]) else math.inf
    best_iteration = 0
    final_status: str | None = None
    rejection_detail = ""
    code_of_rejection = -1
    last_grad_norm: float | None = None
    n_iter = 0
    try:
        for iteration in range(1, max_iter + 1):
            if minibatch:
                assert batch_size is not None
                indices = rng.integers(0, n_obs, (batch_size,))
                objective = setup.objective(
                    xp.take(counts, indices, axis=0) if chunked is None else chunked.take(indices)
                )
            else:
                objective = full_objective
            rule = setup.rule
            if decay is not None:
                # Robbins–Monro-style decay: a fixed step leaves a minibatch noise floor.
                rule = dataclasses.replace(
                    rule, step_size=setup.base_step_size / math.sqrt(1.0 + (iteration - 1) / decay)
                )
            with warnings.catch_warnings():
                # Out-of-domain line-search candidates evaluate to NaN on purpose.
                warnings.simplefilter("ignore", RuntimeWarning)
                new_state, info = rule.step(state, objective)
            if int(info.status) not in _ACCEPTED and setup.fallback is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    retry_state, retry_info = setup.fallback.step(state, objective)
                if int(retry_info.status) in _ACCEPTED:
                    new_state, info = retry_state, retry_info
            loss_before = _float(info.loss)
            if not minibatch and math.isfinite(loss_before) and loss_before < best_loss:
                best_target, best_loss = target, loss_before
            step_taken = _float(info.step_size)
            code = int(info.status)
            grad_norm = _float(info.grad_norm)
            last_grad_norm = grad_norm
            if not minibatch:
                # The rule reports the loss at the point before its step.
                losses.append(loss_before)
                val = validation_loss(target)
                val_losses.append(math.nan if val is None else val)
                if not math.isfinite(loss_before):
                    final_status = "nonfinite"
                    target = previous_target
                    losses[-1] = math.nan
                    break
            if code == _NONFINITE or (minibatch and not math.isfinite(loss_before)):
                final_status = "nonfinite"
                break
            if code not in _ACCEPTED:
                final_status = "step_rejected"
                code_of_rejection = code
                rejection_detail = (
                    " (the Monte Carlo Fisher was not positive definite)"
                    if code == _SINGULAR_FISHER
                    else ""
                )
                break
            n_iter = iteration
            state = new_state
            if search == "grid" and max_step_growth > 1:
                setup.adapt_grid(step_taken, max_step_growth)
            previous_target = target
            target = setup.target_params(state)
            steps.append(step_taken)
            grad_norms.append(grad_norm)
            statuses.append(status_name(code))
            times.append(time.perf_counter() - start_time)
            bar.update(loss_before)
            verdict: str | None = None
            evaluated_val: float | None = None
            if minibatch:
                if iteration % eval_every == 0 or iteration == max_iter:
                    losses.append(full_loss(target))
                    evaluated_val = validation_loss(target)
                    val_losses.append(math.nan if evaluated_val is None else evaluated_val)
                    verdict = stopping.update(losses[-1], None, iteration)
                    if math.isfinite(losses[-1]):
                        if has_diverged(losses[-1], best_loss):
                            verdict = "diverged"
                        elif losses[-1] < best_loss:
                            best_target, best_loss = target, losses[-1]
                            best_iteration = iteration
                else:
                    losses.append(math.nan)
                    val_losses.append(math.nan)
                    verdict = "max_iter" if iteration >= max_iter else None
            else:
                # Losses are known up to the point before this step (iteration - 1).
                verdict = stopping.update(loss_before, grad_norm, iteration)
                evaluated_val = val_losses[-1] if validation is not None else None
            if callback is not None:
                report = IterationInfo(
                    iteration=iteration,
                    loss=loss_before,
                    step_size=step_taken,
                    grad_norm=grad_norm,
                    time=times[-1],
                    status=statuses[-1],
                    params=dict(target),
                    validation_loss=evaluated_val,
                )
                if callback(report) is True:
                    verdict = "callback"
            if verdict is not None:
                final_status = verdict
                break
    finally:
        bar.close()
    if final_status is None:
        final_status = "max_iter"

    # Loss at the final parameters (full batch: one more evaluation, as the rule reports
    # losses before its steps); keep the better of the last two points.
    final_loss = full_loss(target)
    diverged_loss = losses[-1]  # the evaluation that stopped a "diverged" run
    if not minibatch:
        if len(losses) == n_iter + 1:
            losses[-1] = final_loss if math.isfinite(losses[-1]) else losses[-1]
        else:
            losses.append(final_loss)
            val = validation_loss(target)
            val_losses.append(math.nan if val is None else val)
        previous_loss = losses[-2] if len(losses) >= 2 else math.nan
        if not math.isfinite(final_loss) or (
            math.isfinite(previous_loss) and previous_loss < final_loss
        ):
            target, final_loss = previous_target, previous_loss
        if final_status in ("nonfinite", "step_rejected", "stalled", "max_iter") and (
            not math.isfinite(final_loss) or best_loss < final_loss
        ):
            # A diverging or oscillating run (fixed steps, Adam) must not end worse than
            # the best point it visited.
            target, final_loss = best_target, best_loss
    else:
        if not math.isfinite(final_loss):
            target, final_loss = previous_target, full_loss(previous_target)
        if final_status in ("diverged", "nonfinite", "step_rejected") and (
            not math.isfinite(final_loss) or best_loss < final_loss
        ):
            # A run that blew up returns its best evaluated point, not the last one.
            target, final_loss = best_target, best_loss
    # Pad the per-iteration records to one entry per point of the loss history.
    while len(steps) < len(losses):
        steps.append(math.nan)
        grad_norms.append(math.nan)
        statuses.append(statuses[-1] if final_status != "nonfinite" else "NONFINITE")
        times.append(time.perf_counter() - start_time)
    del losses[len(steps) :]
    del val_losses[len(steps) :]

    boundary = None
    if final_status in ("step_rejected", "stalled"):
        boundary = cls.boundary_message(target)
    if boundary is not None and code_of_rejection != _SINGULAR_FISHER:
        # No step inside the domain lowers the loss and the parameters sit at its edge: the
        # supremum of the likelihood lies on the boundary, which is where the fit stopped.
        final_status, rejection_detail = "boundary", ""
    converged = final_status in ("converged", "boundary")
    message = stopping.message(final_status, last_grad_norm) + rejection_detail
    if boundary is not None and final_status == "boundary":
        message = f"{message}: {boundary}"
    if final_status == "diverged":
        message = diverged_message(best_loss, best_iteration, diverged_loss, n_iter)
    elapsed = time.perf_counter() - start_time
    history = FitHistory(
        loss=np.asarray(losses, dtype=float),
        step_size=np.asarray(steps, dtype=float),
        time=np.asarray(times, dtype=float),
        grad_norm=np.asarray(grad_norms, dtype=float),
        status=statuses,
        validation_loss=np.asarray(val_losses, dtype=float) if validation is not None else None,
    )
    fitted = cls.from_params(target, validate=False)
    result = FitResult(
        distribution=fitted,
        params=fitted.params,
        loss=final_loss,
        n_iter=n_iter,
        converged=converged,
        status=final_status,
        message=message,
        history=history,
        time=elapsed,
        method=method,
        validation_loss=validation_loss(target),
    )
    if not converged and final_status != "callback":
        warnings.warn(
            f"{cls.__name__} fit by {method} did not converge after {n_iter} iterations: {message}",
            ConvergenceWarning,
            stacklevel=2,
        )
    return result
