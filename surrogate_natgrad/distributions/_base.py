"""A small base class for target distributions: parameters as a dict of arrays.

Distributions here are *targets* of a fit (what the user wants), as opposed to the
exponential-family *surrogates* in :mod:`surrogate_natgrad.families`. They are pure math
(layer 3): every computation asks :func:`~surrogate_natgrad._compat.namespace` for the array
namespace of the parameters and data, so a distribution built from torch tensors on a GPU
stays there.

Each concrete class provides a *functional* log-density, ``log_prob_from_params(params, x)``,
that does no validation and is safe to differentiate and to call with a leading batch axis
of parameters; the methods of an instance call it with the instance's parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from surrogate_natgrad._compat import (
    Array,
    Namespace,
    asarray,
    float_dtype,
    is_array,
    is_autograd_box,
    namespace,
    to_numpy,
)
from surrogate_natgrad.errors import DataError, DomainError

__all__ = ["Distribution", "check_parameter", "registered"]

# Target classes by lower-case name and alias, filled by Distribution.__init_subclass__.
_REGISTRY: dict[str, type[Distribution]] = {}


def registered() -> dict[str, type[Distribution]]:
    """Return the target classes by lower-case name and alias (a new dict).

    Returns
    -------
    dict of str to type
        Every imported :class:`Distribution` subclass under its lower-case class name and
        its :attr:`~Distribution.aliases`.
    """
    return dict(_REGISTRY)


def _is_concrete(value: Array) -> bool:
    """Return True if ``value`` holds concrete numbers (not a traced value of autodiff).

    Validation converts comparisons to Python booleans, which traced values (autograd
    boxes, JAX tracers under ``jit``/``grad``) cannot do; such values skip validation.
    """
    if is_autograd_box(value):
        return False
    module = type(value).__module__
    return not (module.startswith("jax") and "Tracer" in type(value).__name__)


def _first_offender(bad: Array) -> tuple[int, ...] | None:
    """Return the index of the first True entry of the boolean array ``bad``, or None."""
    flags = to_numpy(bad)  # reporting only: builds the error message
    if not flags.any():
        return None
    if flags.ndim == 0:
        return ()
    return tuple(int(axis_indices[0]) for axis_indices in flags.nonzero())


def check_parameter(
    name: str,
    value: Array,
    valid: Callable[[Namespace, Array], Array],
    requirement: str,
    owner: str,
) -> None:
    """Raise :class:`DomainError` if ``valid(xp, value)`` is False anywhere.

    Parameters
    ----------
    name : str
        The parameter's name, used in the message.
    value : array
        The parameter's values.
    valid : callable
        ``valid(xp, value)`` returns a boolean array, True where the value is allowed.
    requirement : str
        What a valid value is, e.g. ``"positive and finite"``.
    owner : str
        The distribution's name, used in the message.

    Raises
    ------
    DomainError
        Naming the parameter, the requirement, the first offending value and its index.
    """
    if not _is_concrete(value):
        return
    if isinstance(value, bool | int | float):
        # NumPy reductions may return NumPy scalars, which subclass Python's float.
        import array_api_compat.numpy as numpy_xp

        value = asarray(value, numpy_xp)
    xp = namespace(value)
    ok = valid(xp, value)
    bad = xp.logical_not(ok)
    index = _first_offender(bad)
    if index is None:
        return
    offending = to_numpy(value)[index].item()
    where = f" at index {index}" if index else ""
    raise DomainError(
        f"parameter '{name}' of {owner} must be {requirement}; got {offending!r}{where}"
    )


class Distribution:
    """Base class of the target distributions: parameters held as a dict of arrays.

    Subclasses set :attr:`param_names`, implement :meth:`log_prob_from_params`,
    :meth:`_validate`, :meth:`mean`, :meth:`var` and :meth:`sample`, and build the instance
    with :meth:`_init_params`.

    Attributes
    ----------
    param_names : tuple of str
        Names of the parameters, in the order of the constructor's arguments.
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    #: Trailing axes of one observation: 0 for scalar data ``(N,)``, 1 for vectors ``(N, d)``.
    event_ndim: ClassVar[int] = 0
    #: True for count data: :func:`~surrogate_natgrad.fit` then evaluates the likelihood
    #: over the distinct values with their frequencies.
    discrete: ClassVar[bool] = False
    #: Structural options of :func:`~surrogate_natgrad.fit` forwarded to :meth:`from_data`
    #: (e.g. ``("n_components",)`` for mixtures).
    fit_options: ClassVar[tuple[str, ...]] = ()
    #: Other names accepted for the class by :func:`~surrogate_natgrad.fit` and the CLI.
    aliases: ClassVar[tuple[str, ...]] = ()

    _params: dict[str, Array]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for alias in (cls.__name__.lower(), *cls.aliases):
            _REGISTRY[alias.lower()] = cls

    def _init_params(self, params: Mapping[str, object], validate: bool) -> None:
        """Convert ``params`` to arrays of one namespace, device and floating dtype.

        Python scalars and sequences follow the namespace of the array parameters
        (NumPy when there are none); integer arrays promote to float64, floating arrays
        keep their precision.
        """
        missing = [name for name in self.param_names if name not in params]
        if missing:
            raise DataError(f"{type(self).__name__} needs the parameters {missing}")
        # NumPy scalars (results of NumPy reductions) subclass Python's float: convert them
        # like Python scalars.
        arrays = {
            k: v
            for k, v in params.items()
            if is_array(v) and not isinstance(v, bool | int | float | complex)
        }
        if arrays:
            xp = namespace(**arrays)
            like = next(iter(arrays.values()))
        else:
            import array_api_compat.numpy as numpy_xp

            xp, like = numpy_xp, None
        converted: dict[str, Any] = {}
        for k, v in params.items():
            if k in arrays:
                converted[k] = arrays[k]
                continue
            try:
                converted[k] = asarray(v, xp, like=like)
            except (TypeError, ValueError) as exc:
                raise DataError(
                    f"parameter '{k}' of {type(self).__name__} must be a number or an array of "
                    f"numbers; got {v!r}"
                ) from exc
            if not (
                xp.isdtype(converted[k].dtype, "real floating")
                or xp.isdtype(converted[k].dtype, "integral")
            ):
                raise DataError(
                    f"parameter '{k}' of {type(self).__name__} must be real; got {v!r}"
                )
        dtype = float_dtype(xp, *arrays.values())
        self._params = {
            k: (v if v.dtype == dtype else xp.astype(v, dtype)) for k, v in converted.items()
        }
        if validate:
            self._validate()

    # ------------------------------------------------------------------------------------
    # Interface for subclasses
    # ------------------------------------------------------------------------------------

    @staticmethod
    def log_prob_from_params(params: Mapping[str, Array], x: Array) -> Array:
        """Log-density (or log-mass) of ``x`` under parameters ``params``, without checks.

        Parameters
        ----------
        params : mapping of str to array
            The parameters, possibly with leading batch axes.
        x : array
            Points of the support.

        Returns
        -------
        array
            Log-probabilities, broadcast over the parameters' batch shape and ``x``.
        """
        raise NotImplementedError

    def _validate(self) -> None:
        """Raise :class:`DomainError` for parameters outside the domain."""

    # ------------------------------------------------------------------------------------
    # The fit protocol: what :func:`surrogate_natgrad.fit` needs from a target class
    # ------------------------------------------------------------------------------------

    @classmethod
    def check_data(cls, data: object, name: str = "data") -> Array:
        """Check observations and return them as a floating array of their namespace.

        The default accepts finite real data of shape ``(N,)`` (``event_ndim = 0``) or
        ``(N, d)`` (``event_ndim = 1``) with ``N >= 1``; subclasses add their support.

        Parameters
        ----------
        data : array
            The observations.
        name : str, optional
            The argument's name, used in error messages.

        Returns
        -------
        array
            ``data`` as a floating array (float64 unless already floating), same namespace
            and device; ``data`` itself is not modified.

        Raises
        ------
        DataError
            Naming ``name``, the problem, and the first offending value and its index.
        BackendError
            If ``data`` is not an array.
        """
        from surrogate_natgrad.distributions._checks import check_real_data

        return check_real_data(data, name, event_ndim=cls.event_ndim)

    @classmethod
    def from_data(cls, data: Array, **options: Any) -> Distribution:
        """A data-driven starting point for a fit (see the subclass).

        Parameters
        ----------
        data : array
            The observations (already checked by :meth:`check_data`).
        **options
            Structural options named in :attr:`fit_options` (e.g. ``n_components``).

        Returns
        -------
        Distribution
            An instance whose parameters start the fit.

        Raises
        ------
        NotImplementedError
            If the class has no data-driven start (pass ``init=`` to the fit instead).
        """
        raise NotImplementedError(f"{cls.__name__} has no data-driven start; pass init=")

    @classmethod
    def check_start(cls, params: Mapping[str, Array]) -> None:
        """Raise :class:`DomainError` unless ``params`` lie where the fit's coordinates exist.

        Parameters
        ----------
        params : mapping of str to array
            A (valid) parameter set.
        """

    @classmethod
    def surrogate_map_for(cls, params: Mapping[str, Array]) -> Any:
        """The SNGD surrogate map for parameters shaped like ``params`` (see the subclass).

        Parameters
        ----------
        params : mapping of str to array
            The parameters (their shapes fix the map's dimensions).

        Returns
        -------
        SurrogateMap
            The map between the target's parameters and the surrogate family.

        Raises
        ------
        NotImplementedError
            If the class has no surrogate map.
        """
        raise NotImplementedError(f"{cls.__name__} has no surrogate map")

    @staticmethod
    def to_unconstrained(params: Mapping[str, Array]) -> dict[str, Array]:
        """Unconstrained coordinates of the baselines (see the subclass).

        Parameters
        ----------
        params : mapping of str to array
            The parameters.

        Returns
        -------
        dict of str to array
            Coordinates in which every real value is valid (e.g. logs of positive parameters).
        """
        raise NotImplementedError

    @staticmethod
    def from_unconstrained(coords: Mapping[str, Array]) -> dict[str, Array]:
        """Inverse of :meth:`to_unconstrained` (see the subclass).

        Parameters
        ----------
        coords : mapping of str to array
            Unconstrained coordinates.

        Returns
        -------
        dict of str to array
            The parameters.
        """
        raise NotImplementedError

    @classmethod
    def pointwise_log_prob(cls, params: Mapping[str, Array], x: Array) -> Array:
        """Log-density of each observation ``x[i]`` (default: :meth:`log_prob_from_params`).

        Parameters
        ----------
        params : mapping of str to array
            The parameters.
        x : array
            Observations, shape ``(N,)`` or ``(N, d)``.

        Returns
        -------
        array, shape (N,)
            ``log p(x_i)`` for each observation.
        """
        return cls.log_prob_from_params(params, x)

    @classmethod
    def mean_nll(cls, params: Mapping[str, Array], x: Array, weights: Array | None = None) -> Array:
        """Mean negative log-likelihood of the observations ``x``.

        Parameters
        ----------
        params : mapping of str to array
            The parameters.
        x : array
            Observations, shape ``(N,)`` or ``(N, d)``.
        weights : array, optional
            Non-negative weight (frequency) of each observation; the mean is weighted.

        Returns
        -------
        array
            0-d: ``-sum_i w_i log p(x_i) / sum_i w_i``.
        """
        log_probs = cls.log_prob_from_params(params, x)
        xp = namespace(log_probs)
        if weights is None:
            return -xp.mean(log_probs, axis=-1)
        return -xp.sum(log_probs * weights, axis=-1) / xp.sum(weights)

    @classmethod
    def closed_form_backend(
        cls, data: Array, frequencies: Array | None = None, *, form: str = "mle"
    ) -> Any:
        """Return an autodiff backend with SNGD's gradient in closed form, or None.

        Optional member of the fit protocol: :func:`~surrogate_natgrad.fit` uses it for
        full-batch SNGD fits of NumPy data when no ``backend`` is given, sparing autograd's
        tracing. The default (None) means "differentiate :meth:`mean_nll` with autodiff".

        Parameters
        ----------
        data : array
            Observations (distinct values when ``frequencies`` is given).
        frequencies : array, optional
            How often each value of ``data`` occurs.
        form : str, optional
            The coordinates of the gradient (``"mle"``: SNGD's MLE form).

        Returns
        -------
        AutodiffBackend or None
        """
        return None

    @classmethod
    def loss_and_natural_gradient(
        cls,
        surrogate_map: Any,
        mean_params: Any,
        aux: Any,
        data: Array,
        weights: Array | None = None,
        backend: Any = None,
    ) -> tuple[Array, Any, Any] | None:
        """:meth:`mean_nll` through ``surrogate_map`` and its SNGD direction, or None.

        Optional member of the fit protocol: :func:`~surrogate_natgrad.fit`'s objectives
        offer it to :func:`~surrogate_natgrad.rules.sngd_direction`, which uses it instead
        of differentiating ``mean_nll ∘ to_target`` when it returns a result. A target
        whose likelihood's gradient has structure on a map it knows (``surrogate_map.name``)
        can then avoid forming dense matrices that autodiff would (the skew-normal and
        skew-t on their centred map: O(d²N) instead of O(d³)). The default, None, means
        "use autodiff".

        Parameters
        ----------
        surrogate_map : SurrogateMap
            The rule's map.
        mean_params : named tuple of arrays
            The surrogate's mean parameters (SNGD's MLE form).
        aux : pytree of arrays
            The *constrained* auxiliary values.
        data : array
            Observations.
        weights : array, optional
            Per-observation weights.
        backend : AutodiffBackend or str, optional
            The rule's autodiff backend, for any part still differentiated by autodiff.

        Returns
        -------
        tuple or None
            ``(loss, natural_gradient, aux_gradient)``: the mean NLL at
            ``to_target(mean_to_standard(mean_params), aux)``, its gradient with respect to
            the surrogate's natural parameters and with respect to ``aux``; or None.
        """
        return None

    @classmethod
    def boundary_message(cls, params: Mapping[str, Array]) -> str | None:
        """Say which parameters sit at the edge of the domain, or return None.

        :func:`~surrogate_natgrad.fit` asks when no step inside the domain lowers the
        loss: if the parameters are at the edge, the likelihood's supremum lies on the
        boundary and the fit has converged there (status ``"boundary"``).

        Parameters
        ----------
        params : mapping of str to array
            The fitted parameters.

        Returns
        -------
        str or None
            A description such as ``"component 3 has p = 0.99999 (Poisson limit)"``.
        """
        return None

    @classmethod
    def default_grid_size(cls, params: Mapping[str, Array]) -> int:
        """Candidates of the grid line search for ``params`` (default 1000, the paper's).

        Parameters
        ----------
        params : mapping of str to array
            The parameters at which the line search starts.

        Returns
        -------
        int
            The number of candidate step sizes.
        """
        return 1000

    # ------------------------------------------------------------------------------------
    # Shared behaviour
    # ------------------------------------------------------------------------------------

    @property
    def params(self) -> dict[str, Array]:
        """dict of str to array: the parameters (a new dict; the arrays are not copied)."""
        return dict(self._params)

    @property
    def xp(self) -> Namespace:
        """The array namespace of the parameters."""
        return namespace(*self._params.values())

    @property
    def dtype(self) -> Any:
        """The floating dtype of the parameters."""
        return next(iter(self._params.values())).dtype

    @classmethod
    def from_params(cls, params: Mapping[str, object], *, validate: bool = True) -> Distribution:
        """Build an instance from a mapping of parameter names to values.

        Parameters
        ----------
        params : mapping of str to array or float
            Must contain every name in :attr:`param_names` (extra names are an error).
        validate : bool, optional
            Check the domain (default True).

        Returns
        -------
        Distribution
        """
        extra = sorted(set(params) - set(cls.param_names))
        missing = [name for name in cls.param_names if name not in params]
        if missing:
            raise DataError(
                f"{cls.__name__} needs the parameters {missing}; got {sorted(params)}"
            )
        if extra:
            raise DataError(
                f"{cls.__name__} has no parameters {extra}; its parameters are "
                f"{list(cls.param_names)}"
            )
        return cls(**{name: params[name] for name in cls.param_names}, validate=validate)  # type: ignore[call-arg]

    def log_prob(self, x: Array) -> Array:
        """Log-probability of ``x``.

        Parameters
        ----------
        x : array or scalar
            Points of the support, in the parameters' namespace.

        Returns
        -------
        array
            ``log p(x)``, broadcast over the parameters' batch shape and ``x``.
        """
        if not is_array(x):
            x = asarray(x, self.xp, like=next(iter(self._params.values())))
        return self.log_prob_from_params(self._params, x)

    def prob(self, x: Array) -> Array:
        """Probability (mass or density) of ``x``: ``exp(log_prob(x))``.

        Parameters
        ----------
        x : array or scalar
            Points of the support, in the parameters' namespace.

        Returns
        -------
        array
            ``p(x)``, broadcast over the parameters' batch shape and ``x``.
        """
        return self.xp.exp(self.log_prob(x))

    def nll(self, data: Array) -> Array:
        """Mean negative log-likelihood of ``data`` (the loss that :func:`fit` minimises).

        Parameters
        ----------
        data : array
            Observations, shape ``(N,)`` or ``(N, d)``.

        Returns
        -------
        array
            0-d: ``-mean_i log p(x_i)``.
        """
        return -self.xp.mean(self.log_prob(data), axis=-1)

    def mean(self) -> Array:
        """The distribution's mean.

        Returns
        -------
        array
            The mean (shape ``(d,)`` for vector distributions).
        """
        raise NotImplementedError

    def var(self) -> Array:
        """The distribution's variance.

        Returns
        -------
        array
            The variance (per coordinate for vector distributions).
        """
        raise NotImplementedError

    def std(self) -> Array:
        """The distribution's standard deviation.

        Returns
        -------
        array
            ``sqrt(var())``.
        """
        return self.xp.sqrt(self.var())

    def sample(self, size: int | tuple[int, ...] = (), *, seed: object = None) -> Array:
        """Draw samples (see the subclass for details).

        Parameters
        ----------
        size : int or tuple of int, optional
            Sample shape (default ``()``, one draw).
        seed : int or Generator, optional
            Seed or generator of :func:`surrogate_natgrad.random.default_rng`.

        Returns
        -------
        array
            Draws of shape ``size`` (followed by the event shape), in the parameters'
            namespace and on their device.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        parts = []
        for name, value in self._params.items():
            shown = to_numpy(value)  # reporting only
            text = f"{float(shown):.6g}" if shown.ndim == 0 else repr(shown.tolist())
            parts.append(f"{name}={text}")
        return f"{type(self).__name__}({', '.join(parts)})"
