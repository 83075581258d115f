"""The Student-t copula, and helpers to turn raw data into pseudo-observations.

The density on the open unit cube ``(0, 1)^d`` with correlation matrix ``R`` and degrees of
freedom ``ν``:

    log c(u) = log t_d(x; 0, R, ν) - Σ_j log t_1(x_j; ν),    x_j = T_ν⁻¹(u_j),

where ``t_d`` is the multivariate t density, ``t_1`` the univariate one and ``T_ν⁻¹`` the
Student-t quantile (:func:`surrogate_natgrad.special.stdtrit`, whose derivative with
respect to ``ν`` comes from the implicit function theorem, so gradients in ``ν`` flow
through the quantile). ``R`` enters through one Cholesky factorisation per evaluation.

Sampling: ``x ~ t_d(0, R, ν)`` by the normal / chi-square mixture, ``u_j = T_ν(x_j)``.

Pure math (layer 3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from surrogate_natgrad._compat import (
    Array,
    device,
    is_array,
    linalg,
    namespace,
    size,
    to_numpy,
)
from surrogate_natgrad.distributions._base import Distribution
from surrogate_natgrad.distributions.multivariate_t import (
    check_degrees_of_freedom,
    check_scale_matrix,
    check_vector_data,
    quadratic_form,
    sample_standard_t,
    t_log_density,
    weighted_mean_nll,
    with_trailing_axes,
)
from surrogate_natgrad.errors import DataError

__all__ = ["TCopula", "kendall_tau", "pseudo_observations", "t_copula_logpdf"]

#: Degrees of freedom tried by :meth:`TCopula.from_data` (profile likelihood at the
#: rank-correlation start).
_DF_CANDIDATES = (2.5, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 25.0, 50.0, 100.0)


def _special() -> Any:
    from surrogate_natgrad import special

    return special


# ----------------------------------------------------------------------------------------
# Functional density
# ----------------------------------------------------------------------------------------


def _copula_terms(u: Array, chol: Array, df: Array, *, data_axis: bool) -> Array:
    """``log t_d(x; 0, R, ν) - Σ_j log t_1(x_j; ν)`` from the factor ``L`` of ``R``."""
    special = _special()
    xp = namespace(u, chol, df)
    dim = int(chol.shape[-1])
    if data_axis:
        # u (N, d) against parameter sets S: x has shape S + (N, d), or (N, d) when ν is
        # shared (then the quantiles are computed once for every correlation matrix).
        df_points = with_trailing_axes(df, 2)
        logdet = with_trailing_axes(linalg.logdet_from_cholesky(chol), 1)
        df_rows = with_trailing_axes(df, 1)
    else:
        df_points = with_trailing_axes(df, 1)
        logdet = linalg.logdet_from_cholesky(chol)
        df_rows = df
    x = special.stdtrit(df_points, u)
    quadratic = quadratic_form(chol, x, data_axis=data_axis)
    joint = t_log_density(quadratic, logdet, df_rows, dim)
    # Σ_j log t_1(x_j; ν): the normalising constant once per ν, not once per entry.
    log_norm = special.gammaln(0.5 * (df_rows + 1.0)) - special.gammaln(0.5 * df_rows)
    log_norm = log_norm - 0.5 * (xp.log(df_rows) + math.log(math.pi))
    kernels = xp.sum(xp.log1p(x * x / df_points), axis=-1)
    margins = dim * log_norm - 0.5 * (df_rows + 1.0) * kernels
    return joint - margins


def t_copula_logpdf(u: Array, corr: Array, df: Array) -> Array:
    """Log-density of the Student-t copula at points ``u`` of the open unit cube.

    Parameters
    ----------
    u : array, shape ``(..., d)``
        Points in ``(0, 1)^d``.
    corr : array, shape ``(..., d, d)``
        Correlation matrix ``R`` (symmetric positive definite, unit diagonal; only its
        symmetric part is used).
    df : array, shape ``(...)``
        Degrees of freedom ``ν > 0``.

    Returns
    -------
    array
        Log-densities, broadcast over the batch axes of ``u`` and the parameters.

    Notes
    -----
    No checks (points on the boundary give infinities, bad parameters NaN).
    Differentiable in ``corr`` and ``df`` on every autodiff backend, the ``df`` derivative
    passing through the t quantile.
    """
    chol = linalg.cholesky(linalg.symmetrize(corr))
    return _copula_terms(u, chol, df, data_axis=False)


def _t_copula_data_logpdf(params: Mapping[str, Array], data: Array) -> Array:
    """Log-densities of the rows of ``data`` (``(N, d)``) for parameter sets of shape ``S``."""
    chol = linalg.cholesky(linalg.symmetrize(params["corr"]))
    return _copula_terms(data, chol, params["df"], data_axis=True)


# ----------------------------------------------------------------------------------------
# Rank statistics
# ----------------------------------------------------------------------------------------


def _check_matrix_data(data: object, name: str) -> Array:
    return check_vector_data(data, name)


def pseudo_observations(data: Array) -> Array:
    """Column-wise ranks divided by ``N + 1``: the copula scale of raw multivariate data.

    Ties get their average rank (mid-ranks), as ``scipy.stats.rankdata(method="average")``.

    Parameters
    ----------
    data : array, shape ``(N, d)``
        Raw observations (finite real values).

    Returns
    -------
    array, shape ``(N, d)``
        Floating pseudo-observations in the open cube ``(0, 1)^d``, in the namespace and on
        the device of ``data``.

    Raises
    ------
    DataError
        If ``data`` is not a finite two-dimensional real array.
    """
    values = _check_matrix_data(data, "data")
    xp = namespace(values)
    count = int(values.shape[0])
    columns = []
    for j in range(int(values.shape[1])):
        # A copy is contiguous (torch's searchsorted warns about strided columns).
        column = xp.asarray(values[:, j], copy=True)
        ordered = xp.sort(column)
        below = xp.searchsorted(ordered, column, side="left")
        at_most = xp.searchsorted(ordered, column, side="right")
        # Mid-rank: (number below + 1 + number at most) / 2.
        ranks = (xp.astype(below, values.dtype) + xp.astype(at_most, values.dtype) + 1.0) / 2.0
        columns.append(ranks)
    return xp.stack(columns, axis=1) / (count + 1.0)


def kendall_tau(data: Array, *, max_rows: int = 1000, chunk_rows: int = 32) -> Array:
    """Matrix of Kendall's tau (tau-a) between the columns of ``data``.

    ``τ_jk = Σ_{i≠l} sign(x_ij - x_lj) sign(x_ik - x_lk) / (n(n-1))``, accumulated over
    blocks of rows as matrix products (``O(n² d²)`` work, ``O(chunk_rows · n · d)`` memory).

    Parameters
    ----------
    data : array, shape ``(N, d)``
        Observations.
    max_rows : int, optional
        At most this many rows are used, evenly spaced (the cost is quadratic in them).
    chunk_rows : int, optional
        Rows per block.

    Returns
    -------
    array, shape ``(d, d)``
        Symmetric, unit diagonal (for data without ties).
    """
    values = _check_matrix_data(data, "data")
    xp = namespace(values)
    count = int(values.shape[0])
    if count < 2:
        raise DataError(f"data needs at least 2 rows for Kendall's tau; got {count}")
    if count > max_rows:
        step = count / max_rows
        rows = [int(i * step) for i in range(max_rows)]
        index = xp.asarray(rows, dtype=xp.int64, device=device(values))
        values = xp.take(values, index, axis=0)
        count = max_rows
    dim = int(values.shape[1])
    total = xp.zeros((dim, dim), dtype=values.dtype, device=device(values))
    for start in range(0, count, chunk_rows):
        block = values[start : min(start + chunk_rows, count), :]
        signs = xp.sign(block[:, None, :] - values[None, :, :])
        flat = xp.reshape(signs, (-1, dim))
        total = total + xp.linalg.matrix_transpose(flat) @ flat
    return total / (count * (count - 1.0))


def _nearest_correlation(matrix: Array, floor: float = 1e-6) -> Array:
    """Clip the eigenvalues of a symmetric matrix at ``floor`` and rescale to a unit diagonal."""
    from surrogate_natgrad.distributions._t_maps import cov_to_corr

    xp = namespace(matrix)
    eigenvalues, eigenvectors = xp.linalg.eigh(linalg.symmetrize(matrix))
    clipped = xp.where(eigenvalues > floor, eigenvalues, xp.full_like(eigenvalues, floor))
    rebuilt = (eigenvectors * clipped[None, :]) @ xp.linalg.matrix_transpose(eigenvectors)
    return cov_to_corr(rebuilt)


# ----------------------------------------------------------------------------------------
# The distribution
# ----------------------------------------------------------------------------------------


class TCopula(Distribution):
    """Student-t copula ``C(corr, df)`` on the open unit cube ``(0, 1)^d``.

    Parameters
    ----------
    corr : array, shape ``(..., d, d)``
        Correlation matrix ``R``: symmetric positive definite with a unit diagonal.
    df : array or float, shape ``(...)``
        Degrees of freedom ``ν > 0``.
    validate : bool, optional
        Check the parameters (default True). Traced values are never checked.

    Raises
    ------
    DomainError
        Naming the parameter, the requirement, the first offending value and its index.

    Notes
    -----
    Data must be pseudo-observations in the open cube (see :func:`pseudo_observations`).
    Fitting (SNGD with :func:`~surrogate_natgrad.distributions._t_maps.t_copula_map` and the
    baselines) uses ``ν = exp(ℓ) + 2`` and therefore needs ``df > 2`` at the start.

    Examples
    --------
    >>> import numpy as np
    >>> copula = TCopula(np.asarray([[1.0, 0.5], [0.5, 1.0]]), 4.0)
    >>> copula.mean().tolist()
    [0.5, 0.5]
    """

    param_names: ClassVar[tuple[str, ...]] = ("corr", "df")
    event_ndim: ClassVar[int] = 1
    discrete: ClassVar[bool] = False
    fit_options: ClassVar[tuple[str, ...]] = ()
    aliases: ClassVar[tuple[str, ...]] = ("t_copula", "tcopula", "student_t_copula")

    def __init__(self, corr: object, df: object, *, validate: bool = True) -> None:
        self._init_params({"corr": corr, "df": df}, validate)

    @property
    def dim(self) -> int:
        """int: the dimension ``d``."""
        return int(self._params["corr"].shape[-1])

    def _validate(self) -> None:
        name = type(self).__name__
        check_scale_matrix("corr", self._params["corr"], None, name, unit_diagonal=True)
        check_degrees_of_freedom(self._params["df"], name)

    # ------------------------------------------------------------------ densities

    @staticmethod
    def log_prob_from_params(params: Mapping[str, Array], x: Array) -> Array:
        """Log-density of ``x`` for ``{"corr", "df"}`` (no checks; see :func:`t_copula_logpdf`).

        Parameters
        ----------
        params : mapping
            ``corr`` ``(..., d, d)`` and ``df`` ``(...)``.
        x : array, shape ``(..., d)``
            Points in ``(0, 1)^d``.

        Returns
        -------
        array
            Broadcast log-densities.
        """
        return t_copula_logpdf(x, params["corr"], params["df"])

    @classmethod
    def mean_nll(cls, params: Mapping[str, Array], x: Array, weights: Array | None = None) -> Array:
        """Mean negative log-likelihood of the rows of ``x`` for each parameter set.

        With a shared (unbatched) ``df`` the t quantiles of the data are computed once for
        all correlation matrices of a batch (the grid line search).

        Parameters
        ----------
        params : mapping
            ``corr`` with batch shape ``S`` and ``df`` broadcasting with it.
        x : array, shape ``(N, d)``
            Pseudo-observations.
        weights : array, shape ``(N,)``, optional
            Per-observation weights.

        Returns
        -------
        array
            Shape ``S``.
        """
        return weighted_mean_nll(_t_copula_data_logpdf(params, x), weights)

    def log_prob(self, x: Array) -> Array:
        """Log-density of ``x``; points outside the open unit cube are a :class:`DataError`.

        Parameters
        ----------
        x : array, shape ``(..., d)``
            Points.

        Returns
        -------
        array
            ``log c(x)``.
        """
        if is_array(x):
            _check_unit_cube(x, "x")
        return super().log_prob(x)

    # ------------------------------------------------------------------ moments, sampling

    def mean(self) -> Array:
        """Mean of each margin: ``1/2`` (the margins are uniform)."""
        corr = self._params["corr"]
        return self.xp.full_like(corr[..., 0], 0.5)

    def var(self) -> Array:
        """Variance of each margin: ``1/12``."""
        corr = self._params["corr"]
        return self.xp.full_like(corr[..., 0], 1.0 / 12.0)

    def cov(self) -> Array:
        """Covariance of ``u`` (not available in closed form for the t copula).

        Raises
        ------
        NotImplementedError
            Always: ``Cov(u_i, u_j) = ρ_S/12`` with Spearman's ``ρ_S`` of the t copula, which
            has no closed form; estimate it from :meth:`sample`.
        """
        raise NotImplementedError(
            "the t copula's covariance (Spearman's rho / 12) has no closed form; "
            "estimate it from samples"
        )

    def sample(self, size: int | tuple[int, ...] = (), *, seed: object = None) -> Array:
        """Draw ``u = T_ν(x)`` with ``x ~ t_d(0, R, ν)`` (normal / chi-square mixture).

        Parameters
        ----------
        size : int or tuple of int, optional
            Leading sample shape; the result has shape ``size + batch + (d,)``.
        seed : int, generator or None, optional
            Seed or a :func:`surrogate_natgrad.random.default_rng` generator.

        Returns
        -------
        array
            Points in the unit cube, in the parameters' namespace, device and dtype.
        """
        special = _special()
        chol = linalg.cholesky(linalg.symmetrize(self._params["corr"]))
        df = self._params["df"]
        x = sample_standard_t(chol, df, size, seed)
        return special.stdtr(with_trailing_axes(df, 1), x)

    # ------------------------------------------------------------------ fit protocol

    @classmethod
    def check_data(cls, data: object, name: str = "data") -> Array:
        """Check pseudo-observations: finite, shape ``(N, d)``, inside the open unit cube.

        Raises
        ------
        DataError
            Naming ``name``, the first value outside ``(0, 1)`` and its ``(row, column)``
            index (suggesting :func:`pseudo_observations` for raw data).
        """
        values = check_vector_data(data, name)
        _check_unit_cube(values, name)
        return values

    @classmethod
    def from_data(cls, data: Array, **options: Any) -> TCopula:
        """A rank-correlation start: ``R = sin(π τ / 2)``, ``ν`` by profile likelihood.

        Kendall's tau of the columns gives ``R`` (exact for every elliptical copula),
        repaired to the nearest correlation matrix by eigenvalue clipping when needed;
        ``ν`` is the best of a few candidates between 2.5 and 100 for that ``R``.

        Parameters
        ----------
        data : array, shape ``(N, d)``
            Pseudo-observations in ``(0, 1)^d``.
        **options
            None accepted.

        Returns
        -------
        TCopula
        """
        if any(value is not None for value in options.values()):
            raise DataError(f"{cls.__name__}.from_data takes no options; got {sorted(options)}")
        values = cls.check_data(data, "data")
        xp = namespace(values)
        tau = kendall_tau(values)
        corr = _nearest_correlation(xp.sin((math.pi / 2.0) * tau))
        # Profile likelihood over ν on at most 1000 rows (each candidate costs N·d quantiles).
        rows = values[: min(int(values.shape[0]), 1000), :]
        candidates = xp.asarray(_DF_CANDIDATES, dtype=values.dtype, device=device(values))
        losses = [
            cls.mean_nll({"corr": corr, "df": candidates[i]}, rows)
            for i in range(len(_DF_CANDIDATES))
        ]
        best = int(xp.argmin(xp.stack(losses)))
        return cls(corr, candidates[best])

    @classmethod
    def check_start(cls, params: Mapping[str, Array]) -> None:
        """Raise :class:`DomainError` unless ``params`` are valid with ``df > 2``.

        The fitting coordinates use ``ν = exp(ℓ) + 2`` (SNGD's map and the baselines).
        """
        cls.from_params(params, validate=True)
        check_degrees_of_freedom(params["df"], cls.__name__ + " (fit start, ν = exp(ℓ) + 2)", 2.0)

    @classmethod
    def surrogate_map_for(cls, params: Mapping[str, Array]) -> Any:
        """The surrogate map ``N(0, Σ)``, ``R = corr(Σ)``, ``ν = exp(ℓ) + 2`` for ``params``."""
        from surrogate_natgrad.distributions._t_maps import t_copula_map

        return t_copula_map(int(params["corr"].shape[-1]))

    @staticmethod
    def surrogate_map(dim: int) -> Any:
        """The surrogate map of a ``d``-dimensional t copula (see :func:`t_copula_map`).

        Parameters
        ----------
        dim : int
            Dimension ``d`` of the observations.

        Returns
        -------
        SurrogateMap
            The map between the parameters and the surrogate family.
        """
        from surrogate_natgrad.distributions._t_maps import t_copula_map

        return t_copula_map(dim)

    @staticmethod
    def to_unconstrained(params: Mapping[str, Array]) -> dict[str, Array]:
        """Baseline coordinates ``{"corr_root": W, "log_df_minus_2": log(ν - 2)}``.

        ``W = Lᵀ`` (upper Cholesky factor of ``R``) so that ``R = corr(WᵀW)``, the
        paper's Adam baseline; any real ``W`` with non-zero columns maps back.
        """
        return TCopula._to_root_coordinates(params, "corr_root", "cholesky")

    @staticmethod
    def from_unconstrained(coords: Mapping[str, Array]) -> dict[str, Array]:
        """Inverse of :meth:`to_unconstrained`: ``R = corr(WᵀW)``, ``ν = exp(ℓ) + 2``."""
        return TCopula._from_root_coordinates(coords, "corr_root", "cholesky")

    @staticmethod
    def to_unconstrained_precision(params: Mapping[str, Array]) -> dict[str, Array]:
        """The paper's second Adam baseline: ``{"precision_root": W, "log_df_minus_2"}``.

        ``R = corr((WᵀW)⁻¹)``; the start is ``W = Lᵀ`` with ``L`` the Cholesky factor of
        ``R⁻¹``.

        Parameters
        ----------
        params : mapping of str to array
            The parameters.

        Returns
        -------
        dict of str to array
            The unconstrained coordinates.
        """
        return TCopula._to_root_coordinates(params, "precision_root", "precision")

    @staticmethod
    def from_unconstrained_precision(coords: Mapping[str, Array]) -> dict[str, Array]:
        """Inverse of :meth:`to_unconstrained_precision`: ``R = corr((WᵀW)⁻¹)``.

        Parameters
        ----------
        coords : mapping of str to array
            Coordinates from :meth:`to_unconstrained_precision`.

        Returns
        -------
        dict of str to array
            The parameters.
        """
        return TCopula._from_root_coordinates(coords, "precision_root", "precision")

    @staticmethod
    def _to_root_coordinates(
        params: Mapping[str, Array], root_name: str, parameterization: str
    ) -> dict[str, Array]:
        """``{root_name: W, "log_df_minus_2"}``, ``W`` from :func:`linalg.scale_to_factor`.

        The root is stored transposed (``R = corr(WᵀW)`` or ``R = corr((WᵀW)⁻¹)``).
        """
        xp = namespace(*params.values())
        factor = linalg.scale_to_factor(params["corr"], parameterization)
        return {
            root_name: xp.linalg.matrix_transpose(factor),
            "log_df_minus_2": xp.log(params["df"] - 2.0),
        }

    @staticmethod
    def _from_root_coordinates(
        coords: Mapping[str, Array], root_name: str, parameterization: str
    ) -> dict[str, Array]:
        """Inverse of :meth:`_to_root_coordinates`."""
        from surrogate_natgrad.distributions._t_maps import cov_to_corr

        xp = namespace(*coords.values())
        root = xp.linalg.matrix_transpose(coords[root_name])
        return {
            "corr": cov_to_corr(linalg.factor_to_scale(root, parameterization)),
            "df": xp.exp(coords["log_df_minus_2"]) + 2.0,
        }

    @classmethod
    def default_grid_size(cls, params: Mapping[str, Array]) -> int:
        """Grid line-search candidates: 50 up to ``d = 7``, then ``3000 // d²`` (at least 20).

        Each candidate costs a factorisation (``d³``) and a pass over all the data (as for
        :meth:`MultivariateT.default_grid_size`, a finer grid buys no fewer iterations).
        """
        dim = int(params["corr"].shape[-1])
        return int(max(20, min(50, 3000 // (dim * dim))))


def _check_unit_cube(values: Array, name: str) -> None:
    """Raise :class:`DataError` for a value outside the open unit cube (or not finite)."""
    from surrogate_natgrad.distributions._base import _is_concrete

    if not _is_concrete(values):
        return
    xp = namespace(values)
    if size(values) == 0:
        return
    inside = xp.logical_and(values > 0, values < 1)
    bad = xp.logical_not(inside)
    if bool(xp.any(bad)):
        flags = to_numpy(bad)  # reporting only
        index = tuple(int(i[0]) for i in flags.nonzero())
        value = to_numpy(values)[index].item()
        where = index[0] if len(index) == 1 else index
        raise DataError(
            f"{name} must lie in the open unit cube (0, 1)^d (copula pseudo-observations); "
            f"found {value!r} at index {where}. Transform raw data with "
            "pseudo_observations(data) (ranks / (N + 1)) first"
        )
