"""The result of :func:`surrogate_natgrad.fit`: fitted distribution, diagnostics, history.

Driver layer (layer 4): the history is kept as NumPy arrays of Python floats for reporting
and plotting; the fitted parameters stay arrays of the data's namespace and device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surrogate_natgrad._compat import Array, array_library_name, device, namespace, to_numpy

__all__ = ["FitHistory", "FitResult"]


@dataclass(frozen=True, repr=False)
class FitHistory:
    """Per-iteration record of a fit; entry 0 is the starting point.

    Attributes
    ----------
    loss : numpy.ndarray
        Mean negative log-likelihood of the full data after each iteration (entry 0: at the
        start). With minibatches, the loss of the full training data is evaluated every
        ``eval_every`` iterations and NaN elsewhere.
    step_size : numpy.ndarray
        Step size taken at each iteration (NaN at entry 0).
    time : numpy.ndarray
        Seconds since the start of the fit (entry 0 is the set-up time).
    grad_norm : numpy.ndarray
        Norm of the gradient in the coordinates of the method (NaN at entry 0).
    status : list of str
        The update rule's status of each step (``"OK"``, ``"BACKTRACKED"``, ...; ``"START"``
        at entry 0).
    validation_loss : numpy.ndarray or None
        Mean negative log-likelihood of ``validation_data`` at the same points as ``loss``
        (None when no validation data was given).
    """

    loss: np.ndarray
    step_size: np.ndarray
    time: np.ndarray
    grad_norm: np.ndarray
    status: list[str]
    validation_loss: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.loss.shape[0])

    def as_dict(self) -> dict[str, list[Any]]:
        """Return the history as a dict of lists of Python floats (JSON-serialisable).

        Returns
        -------
        dict
            Keys ``loss``, ``step_size``, ``time``, ``grad_norm``, ``status`` and, when
            present, ``validation_loss``. Non-finite floats become None.
        """

        def clean(values: np.ndarray) -> list[float | None]:
            return [float(v) if math.isfinite(v) else None for v in values.tolist()]

        out: dict[str, list[Any]] = {
            "loss": clean(self.loss),
            "step_size": clean(self.step_size),
            "time": clean(self.time),
            "grad_norm": clean(self.grad_norm),
            "status": list(self.status),
        }
        if self.validation_loss is not None:
            out["validation_loss"] = clean(self.validation_loss)
        return out

    def __repr__(self) -> str:
        return f"FitHistory({len(self)} entries, final loss {self.loss[-1]:.10g})"


@dataclass(frozen=True, repr=False)
class FitResult:
    """What :func:`surrogate_natgrad.fit` returns.

    Attributes
    ----------
    distribution : Distribution
        The fitted distribution, with parameters in the data's namespace and on its device.
    params : dict of str to array
        The fitted parameters (the same arrays as ``distribution.params``).
    loss : float
        Mean negative log-likelihood of the training data at ``params``.
    n_iter : int
        Number of iterations taken.
    converged : bool
        True when the convergence criterion was met (relative change of the loss below
        ``tol`` for consecutive iterations and a small gradient).
    status : str
        Why the fit stopped: ``"converged"``, ``"max_iter"``, ``"nonfinite"``,
        ``"step_rejected"``, ``"stalled"``, ``"callback"``, ``"boundary"`` (converged: the
        likelihood's supremum lies on the edge of the parameter domain, and the message
        says which parameter reached it) or ``"diverged"`` (stochastic variational fits:
        the evaluated loss rose far above its best, whose parameters are returned).
    message : str
        A human-readable explanation of ``status``.
    history : FitHistory
        Per-iteration loss, step size, time, gradient norm (and validation loss).
    time : float
        Wall-clock seconds of the whole fit.
    method : str
        The method used (``"sngd"``, ``"gd"``, ``"adam"``, ``"bfgs"``, ``"ngd"``).
    validation_loss : float or None
        Mean negative log-likelihood of ``validation_data`` at ``params``, if given.
    extra : dict of str to object
        Method-specific diagnostics (empty unless the method records some).

    Examples
    --------
    >>> import numpy as np
    >>> from surrogate_natgrad.distributions import NegativeBinomial
    >>> from surrogate_natgrad.fitting import fit
    >>> data = np.array([3, 0, 7, 12, 5, 1, 9, 4, 30, 2])
    >>> result = fit(NegativeBinomial, data)
    >>> result.converged
    True
    """

    distribution: Any
    params: dict[str, Array]
    loss: float
    n_iter: int
    converged: bool
    status: str
    message: str
    history: FitHistory
    time: float
    method: str
    validation_loss: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def params_numpy(self) -> dict[str, Any]:
        """Return the fitted parameters as NumPy arrays (scalars as floats), for reporting.

        Returns
        -------
        dict
            Parameter name to float (0-d parameters) or list of floats.
        """
        out: dict[str, Any] = {}
        for name, value in self.params.items():
            arr = to_numpy(value)
            out[name] = float(arr) if arr.ndim == 0 else arr.tolist()
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary (parameters, loss, status, timings, history).

        Returns
        -------
        dict
        """
        first = next(iter(self.params.values()))
        return {
            "distribution": type(self.distribution).__name__,
            "method": self.method,
            "params": self.params_numpy(),
            "loss": self.loss if math.isfinite(self.loss) else None,
            "validation_loss": self.validation_loss,
            "n_iter": self.n_iter,
            "converged": self.converged,
            "status": self.status,
            "message": self.message,
            "time": self.time,
            "backend": array_library_name(namespace(first)),
            "device": str(device(first)),
            "history": self.history.as_dict(),
        }

    def summary(self) -> str:
        """Return a multi-line, human-readable report of the fit.

        Returns
        -------
        str
        """
        lines = [f"{type(self.distribution).__name__} fitted by {self.method}"]
        for name, value in self.params_numpy().items():
            if isinstance(value, float):
                lines.append(f"  {name:<8} = {value:.10g}")
            else:
                shown = ", ".join(f"{v:.6g}" for v in value)
                lines.append(f"  {name:<8} = [{shown}]")
        lines.append(f"  NLL      = {self.loss:.10g} (mean per observation)")
        if self.validation_loss is not None:
            lines.append(f"  val. NLL = {self.validation_loss:.10g}")
        lines.append(f"  iterations = {self.n_iter}, time = {self.time:.3f} s")
        state = "converged" if self.converged else "NOT converged"
        lines.append(f"  {state} ({self.status}): {self.message}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        """Return a one-screen summary: parameters, loss, iterations, status and time.

        Returns
        -------
        str
            ``FitResult(distribution=..., loss=..., n_iter=..., converged=..., status=...,
            time=...)``.
        """
        return (
            f"FitResult(distribution={self.distribution!r}, method={self.method!r}, "
            f"loss={self.loss:.10g}, n_iter={self.n_iter}, converged={self.converged}, "
            f"status={self.status!r}, time={self.time:.3g}s)"
        )
