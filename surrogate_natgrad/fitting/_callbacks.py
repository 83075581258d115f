"""Per-iteration callbacks and the optional progress bar of :func:`surrogate_natgrad.fit`."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

from surrogate_natgrad._compat import Array

__all__ = ["Callback", "IterationInfo", "ProgressBar"]


class IterationInfo(NamedTuple):
    """What a callback receives after every iteration.

    Attributes
    ----------
    iteration : int
        Iterations done so far (1 after the first step).
    loss : float
        Mean negative log-likelihood of the training data (of the minibatch when
        ``batch_size`` is set and this is not an evaluation iteration).
    step_size : float
        Step size taken.
    grad_norm : float
        Gradient norm reported by the update rule.
    time : float
        Seconds since the start of the fit.
    status : str
        The update rule's status for this step (``"OK"``, ``"BACKTRACKED"``, ...).
    params : dict of str to array
        The current target parameters (arrays of the data's namespace).
    validation_loss : float or None
        Validation loss, when ``validation_data`` was given and evaluated this iteration.
    """

    iteration: int
    loss: float
    step_size: float
    grad_norm: float
    time: float
    status: str
    params: dict[str, Array]
    validation_loss: float | None


#: A callback: receives an :class:`IterationInfo`; returning True stops the fit.
Callback = Callable[[IterationInfo], Any]


class ProgressBar:
    """A tqdm progress bar when tqdm is installed and ``enabled``; otherwise does nothing.

    Parameters
    ----------
    enabled : bool
        Show a bar.
    total : int
        The largest number of iterations.
    description : str
        Text in front of the bar.
    """

    def __init__(self, enabled: bool, total: int, description: str) -> None:
        self._bar: Any = None
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            warnings.warn(
                "progress=True needs tqdm (pip install tqdm); continuing without a progress bar",
                stacklevel=3,
            )
            return
        self._bar = tqdm(total=total, desc=description, leave=False)

    def update(self, loss: float) -> None:
        """Advance by one iteration and show the loss.

        Parameters
        ----------
        loss : float
            The loss at the current iteration.
        """
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.8g}", refresh=False)
            self._bar.update(1)

    def close(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
