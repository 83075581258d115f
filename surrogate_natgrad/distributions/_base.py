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
from surrogate_natgrad.errors import DomainError

__all__ = ["Distribution", "check_parameter"]


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

    _params: dict[str, Array]

    def _init_params(self, params: Mapping[str, object], validate: bool) -> None:
        """Convert ``params`` to arrays of one namespace, device and floating dtype.

        Python scalars and sequences follow the namespace of the array parameters
        (NumPy when there are none); integer arrays promote to float64, floating arrays
        keep their precision.
        """
        missing = [name for name in self.param_names if name not in params]
        if missing:
            raise TypeError(f"{type(self).__name__} needs the parameters {missing}")
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
        converted: dict[str, Any] = {
            k: arrays[k] if k in arrays else asarray(v, xp, like=like) for k, v in params.items()
        }
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
        if extra:
            raise TypeError(
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
        """Probability (mass or density) of ``x``: ``exp(log_prob(x))``."""
        return self.xp.exp(self.log_prob(x))

    def nll(self, data: Array) -> Array:
        """Mean negative log-likelihood of ``data`` (the loss that :func:`fit` minimises)."""
        return -self.xp.mean(self.log_prob(data), axis=-1)

    def mean(self) -> Array:
        """The distribution's mean."""
        raise NotImplementedError

    def var(self) -> Array:
        """The distribution's variance."""
        raise NotImplementedError

    def std(self) -> Array:
        """The distribution's standard deviation."""
        return self.xp.sqrt(self.var())

    def sample(self, size: int | tuple[int, ...] = (), *, seed: object = None) -> Array:
        """Draw samples (see the subclass for details)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        parts = []
        for name, value in self._params.items():
            shown = to_numpy(value)  # reporting only
            text = f"{float(shown):.6g}" if shown.ndim == 0 else repr(shown.tolist())
            parts.append(f"{name}={text}")
        return f"{type(self).__name__}({', '.join(parts)})"
