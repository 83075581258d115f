"""Surrogate maps of the Student-t targets (So & Turner 2024, section 5).

Multivariate t ``t_d(loc, shape, df)``:

* :func:`multivariate_t_gaussian_map`: Gaussian surrogate ``N(μ, Σ)`` with ``ν = exp(ℓ) + 2``
  as an auxiliary parameter. ``match="shape"`` (default) reads ``loc = μ``,
  ``shape = Σ``; ``match="covariance"`` matches the t's covariance instead,
  ``shape = Σ (ν - 2)/ν``, which couples the scale to ``ν``.
* :func:`multivariate_t_mcef_map`: the MCEF scale-mixture joint of Lin, Khan & Schmidt
  (2019), ``w ~ InvGamma(ν/2, ν/2)``, ``z | w ~ N(μ, wV)``, with ``loc = μ``,
  ``shape = V`` and ``ν = exp(ℓ)`` learnt as an auxiliary parameter (any ``ν > 0``), or
  ``ν`` fixed. Because ``E[1/w] = 1`` the joint's mean parameters ``(μ, μμᵀ + V)`` and
  Fisher are the Gaussian ones, so for the same auxiliary coordinates its SNGD step equals
  that of the ``match="shape"`` Gaussian map; what differs is the range of ``ν`` (no
  ``ν > 2`` bound) and the family object's joint quantities (``log_partition``,
  ``entropy``, ``sample_joint``), which use the family's own ``ν``.

Student-t copula ``TCopula(corr, df)``:

* :func:`t_copula_map`: zero-mean Gaussian ``N(0, Σ)`` with ``corr = corr(Σ)`` and
  ``ν = exp(ℓ) + 2``. It uses the full Gaussian family started at ``μ = 0``: the objective
  does not depend on the mean, so its gradient there is zero and the MLE-form steps keep
  ``μ = 0`` exactly, while the Fisher at ``μ = 0`` is block diagonal, so the steps on ``Σ``
  are those of the zero-mean family. The diagonal of ``Σ`` is a free gauge.

Pure math (layer 3).
"""

from __future__ import annotations

from typing import Any

from surrogate_natgrad._compat import Array, asarray, linalg, namespace
from surrogate_natgrad.errors import DataError
from surrogate_natgrad.maps import Exp, ExpPlus, SurrogateMap

__all__ = [
    "cov_to_corr",
    "multivariate_t_gaussian_map",
    "multivariate_t_mcef_map",
    "t_copula_map",
]

_MATCHES = ("shape", "covariance")


def cov_to_corr(cov: Array) -> Array:
    """The correlation matrix ``D^{-1/2} Σ D^{-1/2}`` of (a stack of) covariance matrices.

    Parameters
    ----------
    cov : array, shape ``(..., d, d)``
        Symmetric matrices with a positive diagonal.

    Returns
    -------
    array, shape ``(..., d, d)``
        Symmetric, with a diagonal of exactly one (the diagonal carries no derivative,
        as ``R_ii ≡ 1``).
    """
    xp = namespace(cov)
    cov = linalg.symmetrize(cov)
    scale = xp.sqrt(xp.linalg.diagonal(cov))
    corr = cov / (scale[..., :, None] * scale[..., None, :])
    dim = int(cov.shape[-1])
    eye = xp.eye(dim, dtype=xp.bool, device=_device_of(cov))
    return xp.where(eye, xp.ones_like(corr), corr)


def _device_of(x: Array) -> Any:
    from surrogate_natgrad._compat import device, is_autograd_box

    return None if is_autograd_box(x) else device(x)


def multivariate_t_gaussian_map(dim: int, match: str = "shape") -> SurrogateMap:
    """Gaussian surrogate map of the multivariate t, ``ν = exp(ℓ) + 2`` auxiliary.

    Parameters
    ----------
    dim : int
        The dimension ``d``.
    match : {"shape", "covariance"}, optional
        ``"shape"``: ``N(loc, shape)``, i.e. ``loc = μ``, ``shape = Σ``. ``"covariance"``:
        ``N(loc, cov)``, ``shape = Σ (ν - 2)/ν`` (the t's covariance is the Gaussian's).

    Returns
    -------
    SurrogateMap
        Family :class:`~surrogate_natgrad.families.Gaussian`; ``to_target(std, {"df": ν})``
        gives ``{"loc", "shape", "df"}``; ``aux_transforms = {"df": ExpPlus(2.0)}``, so the
        start needs ``df > 2``.
    """
    from surrogate_natgrad.distributions.multivariate_t import with_trailing_axes
    from surrogate_natgrad.families.gaussian import Gaussian, GaussianStandard

    if match not in _MATCHES:
        raise DataError(f"match must be one of {_MATCHES}; got {match!r}")

    def to_target(standard: Any, aux: Any) -> dict[str, Array]:
        df = aux["df"]
        shape = standard.cov
        if match == "covariance":
            shape = shape * with_trailing_axes((df - 2.0) / df, 2)
        return {"loc": standard.mean, "shape": shape, "df": df}

    def from_target(target: Any) -> tuple[Any, Any]:
        df = target["df"]
        cov = target["shape"]
        if match == "covariance":
            cov = cov * with_trailing_axes(df / (df - 2.0), 2)
        return GaussianStandard(target["loc"], cov), {"df": df}

    return SurrogateMap(Gaussian(dim), to_target, from_target, {"df": ExpPlus(2.0)})


def multivariate_t_mcef_map(dim: int, df: Any, *, learn_df: bool = True) -> SurrogateMap:
    """MCEF scale-mixture surrogate map of the multivariate t (Lin, Khan & Schmidt, 2019).

    Parameters
    ----------
    dim : int
        The dimension ``d``.
    df : float or 0-d array
        Degrees of freedom of the family object (the start, or the fixed value).
    learn_df : bool, optional
        True (default): ``ν = exp(ℓ)`` is an auxiliary parameter (Adam), any ``ν > 0``.
        False: ``ν`` stays at ``df`` (the original MCEF method with known ``ν``).

    Returns
    -------
    SurrogateMap
        Family :class:`~surrogate_natgrad.families.StudentTScaleMixture` ``(d, df)``,
        standard parameters ``(μ, V) = (loc, shape)``; ``to_target`` gives
        ``{"loc", "shape", "df"}``.
    """
    from surrogate_natgrad.families.gaussian import GaussianStandard
    from surrogate_natgrad.families.mcef import StudentTScaleMixture

    family = StudentTScaleMixture(dim, df)

    def fixed_df(like: Array) -> Array:
        if isinstance(df, int | float):
            return asarray(float(df), namespace(like), dtype=like.dtype, like=like)
        return df

    def to_target(standard: Any, aux: Any) -> dict[str, Array]:
        value = aux["df"] if learn_df else fixed_df(standard.mean)
        return {"loc": standard.mean, "shape": standard.cov, "df": value}

    def from_target(target: Any) -> tuple[Any, Any]:
        standard = GaussianStandard(target["loc"], target["shape"])
        return standard, ({"df": target["df"]} if learn_df else ())

    transforms = {"df": Exp()} if learn_df else None
    return SurrogateMap(family, to_target, from_target, transforms)


def t_copula_map(dim: int) -> SurrogateMap:
    """Surrogate map of the Student-t copula: ``N(0, Σ)``, ``corr = corr(Σ)``, ``ν = exp(ℓ)+2``.

    Parameters
    ----------
    dim : int
        The dimension ``d``.

    Returns
    -------
    SurrogateMap
        Family :class:`~surrogate_natgrad.families.Gaussian` (started at mean zero, which
        the steps keep); ``to_target(std, {"df": ν})`` gives ``{"corr": corr(Σ), "df": ν}``;
        ``from_target`` starts at ``Σ = corr``; ``aux_transforms = {"df": ExpPlus(2.0)}``.
    """
    from surrogate_natgrad.families.gaussian import Gaussian, GaussianStandard

    def to_target(standard: Any, aux: Any) -> dict[str, Array]:
        return {"corr": cov_to_corr(standard.cov), "df": aux["df"]}

    def from_target(target: Any) -> tuple[Any, Any]:
        corr = target["corr"]
        xp = namespace(corr)
        return GaussianStandard(xp.zeros_like(corr[..., 0]), corr), {"df": target["df"]}

    return SurrogateMap(Gaussian(dim), to_target, from_target, {"df": ExpPlus(2.0)})
