"""Mixture of K skew-normals as a variational family, with stratified sampling.

Pure math (layer 3). Parameters :class:`SkewNormalMixtureParams` ``(weights π (K,),
loc ξ_k (K, d), scale Ω_k (K, d, d), shape η_s,k (K, d))`` with density
``q(z) = Σ_k π_k SN(z; ξ_k, Ω_k, η_s,k)``.

Stratified sampling: every step draws ``S`` reparameterised samples from *each* component,
and expectations are ``E_q f = Σ_k π_k E_{q_k} f``, estimated by ``Σ_k π_k mean_s f(z_ks)``.
The estimate is unbiased, differentiable in the weights directly (no score-function term)
and in the component parameters through the samples, and has no variance from choosing
components. The entropy has no closed form: ``H = -E_q log q`` by the same samples.

Weights are kept at or above a floor (1e-3 by default, renormalised) by :meth:`project`,
which the driver applies after every step so that no component dies.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any, NamedTuple

from surrogate_natgrad import special
from surrogate_natgrad._compat import Array, asarray, device, linalg, namespace
from surrogate_natgrad.errors import DataError
from surrogate_natgrad.families.gaussian import Gaussian, GaussianStandard
from surrogate_natgrad.families.mixture import Mixture, MixtureStandard
from surrogate_natgrad.maps import Identity, SurrogateMap
from surrogate_natgrad.vi._families import (
    VariationalFamily,
    VariationalNoise,
    factor_to_scale,
    scale_to_factor,
)

__all__ = ["SkewNormalMixtureParams", "SkewNormalMixtureVariational"]

_LOG_2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)
#: E|w| for w ~ N(0, 1).
_C = math.sqrt(2.0 / math.pi)


class SkewNormalMixtureParams(NamedTuple):
    """Parameters of a K-component skew-normal mixture.

    Attributes
    ----------
    weights : array, shape (K,)
        Mixture weights (positive, summing to one).
    loc : array, shape (K, d)
        Component locations ``ξ_k``.
    scale : array, shape (K, d, d)
        Component scale matrices ``Ω_k`` (symmetric positive definite).
    shape : array, shape (K, d)
        Component skewness vectors ``η_s,k``.
    """

    weights: Array
    loc: Array
    scale: Array
    shape: Array


def _matvec(matrix: Array, vector: Array) -> Array:
    return (matrix @ vector[..., None])[..., 0]


class SkewNormalMixtureVariational(VariationalFamily):
    """Mixture of ``k`` multivariate skew-normals.

    Parameters
    ----------
    dim : int
        Dimension ``d``.
    k : int
        Number of components ``K``.
    weight_floor : float, optional
        Smallest weight kept by :meth:`project` (1e-3; weights below it are raised to it and
        the others rescaled so the weights sum to one).
    entropy_samples : int, optional
        Monte Carlo samples per component of :meth:`entropy` (seed 0).
    """

    name = "skew_normal_mixture"
    params_type = SkewNormalMixtureParams
    param_names = ("weights", "loc", "scale", "shape")
    closed_form_entropy = False
    init_aliases = MappingProxyType({"mean": "loc", "cov": "scale"})

    def __init__(
        self, dim: int, k: int = 2, weight_floor: float = 1e-3, entropy_samples: int = 10_000
    ) -> None:
        if isinstance(dim, bool) or int(dim) != dim or dim < 1:
            raise DataError(f"dim must be a positive integer, got {dim!r}")
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise DataError(f"k (the number of components) must be a positive integer, got {k!r}")
        if not 0.0 <= weight_floor < 1.0 / k:
            raise DataError(
                f"weight_floor must be in [0, 1/k) = [0, {1.0 / k:g}), got {weight_floor!r}"
            )
        self.dim = int(dim)
        self.k = int(k)
        self.weight_floor = float(weight_floor)
        self.entropy_samples = int(entropy_samples)

    def __repr__(self) -> str:
        return f"SkewNormalMixtureVariational(dim={self.dim}, k={self.k})"

    # ------------------------------------------------------------------ parameters
    def check_params(self, params: Any) -> SkewNormalMixtureParams:
        """Return ``params`` as :class:`SkewNormalMixtureParams`, checking the shapes.

        Parameters
        ----------
        params : tuple of array
            ``(weights, loc, scale, shape)``.

        Returns
        -------
        SkewNormalMixtureParams

        Raises
        ------
        DataError
            If ``params`` is not a 4-tuple or a shape is wrong.
        """
        if not isinstance(params, tuple) or len(params) != 4:
            raise DataError("mixture parameters must be a (weights, loc, scale, shape) tuple")
        params = SkewNormalMixtureParams(*params)
        k, d = self.k, self.dim
        self._check_shapes(params, ((k,), (k, d), (k, d, d), (k, d)))
        return params

    def check_start(self, params: SkewNormalMixtureParams) -> None:
        """Raise DataError unless the weights are positive and sum to one.

        Parameters
        ----------
        params : SkewNormalMixtureParams
        """
        xp = namespace(params.weights)
        if not bool(xp.all(params.weights > 0.0)):
            raise DataError("init['weights'] must all be positive")
        total = float(xp.sum(params.weights))
        if abs(total - 1.0) > 1e-6:
            raise DataError(f"init['weights'] must sum to one, got {total!r}")

    def optional_defaults(self, like: Array) -> dict[str, Array]:
        """Return equal weights and zero skewness for starts that omit them.

        Parameters
        ----------
        like : array
            Reference array.

        Returns
        -------
        dict of str to array
        """
        xp = namespace(like)
        dev = device(like)
        return {
            "weights": xp.full((self.k,), 1.0 / self.k, dtype=like.dtype, device=dev),
            "shape": xp.zeros((self.k, self.dim), dtype=like.dtype, device=dev),
        }

    def default_params(self, like: Array) -> SkewNormalMixtureParams:
        """Return equal weights, ``Ω_k = I``, ``η_s,k = 0`` and distinct small locations.

        Identical components would receive identical gradients and never separate, so the
        locations are spread deterministically (``ξ_kj = 0.1 sin(k·d + j + 1)``).

        Parameters
        ----------
        like : array
            Reference array.

        Returns
        -------
        SkewNormalMixtureParams
        """
        xp = namespace(like)
        dev = device(like)
        spread = [
            [0.1 * math.sin(k * self.dim + j + 1.0) for j in range(self.dim)] for k in range(self.k)
        ]
        loc = asarray(spread, xp, dtype=like.dtype, like=like)
        scale = xp.broadcast_to(
            xp.eye(self.dim, dtype=like.dtype, device=dev), (self.k, self.dim, self.dim)
        )
        defaults = self.optional_defaults(like)
        return SkewNormalMixtureParams(defaults["weights"], loc, scale, defaults["shape"])

    # ------------------------------------------------------------------ components
    def _conditional(self, params: SkewNormalMixtureParams) -> tuple[Array, Array, Array]:
        """Per component: ``(chol(V_k), β_k, Ω_k)`` with ``β = Ωη/√(1+ηᵀΩη)``, ``V = Ω - ββᵀ``."""
        xp = namespace(params.scale, params.shape)
        scale = linalg.symmetrize(params.scale)
        scaled = _matvec(scale, params.shape)
        squared = xp.sum(params.shape * scaled, axis=-1)
        skew = scaled / xp.sqrt(1.0 + squared)[..., None]
        cov = scale - linalg.matrix_outer(skew, skew)
        return linalg.cholesky(cov), skew, scale

    def draw_noise(self, rng: Any, n_samples: int, dtype: Any = None) -> VariationalNoise:
        """Draw ``n_samples`` per component: ``ε`` ``(K, S, d)`` and ``w`` ``(K, S)``.

        Parameters
        ----------
        rng : Generator
            From :func:`surrogate_natgrad.random.default_rng`.
        n_samples : int
            Draws per component ``S`` (``K·S`` in all).
        dtype : dtype, optional
            Floating dtype.

        Returns
        -------
        VariationalNoise
        """
        normal = rng.normal((self.k, n_samples, self.dim), dtype=dtype)
        mixing = rng.normal((self.k, n_samples), dtype=dtype)
        return VariationalNoise(normal, mixing)

    def sample_from_noise(self, params: SkewNormalMixtureParams, noise: VariationalNoise) -> Array:
        """Return per-component samples ``ξ_k + |w|β_k + L_{V,k} ε`` (shape ``(K, S, d)``).

        Parameters
        ----------
        params : SkewNormalMixtureParams
        noise : VariationalNoise
            Draws from :meth:`draw_noise`.

        Returns
        -------
        array, shape (K, S, d)

        Raises
        ------
        DataError
            If ``noise`` has no mixing draws or no component axis.
        """
        if noise.mixing is None or noise.normal.ndim != 3:
            raise DataError("mixture samples need noise of shape (K, S, d) with mixing draws")
        chol, skew, _ = self._conditional(params)
        xp = namespace(chol, noise.normal)
        return (
            params.loc[:, None, :]
            + xp.abs(noise.mixing)[..., None] * skew[:, None, :]
            + noise.normal @ xp.linalg.matrix_transpose(chol)
        )

    def weighted_samples(
        self, params: SkewNormalMixtureParams, noise: VariationalNoise
    ) -> tuple[Array, Array]:
        """Return the ``K·S`` samples (flattened) and their weights ``π_k/S``.

        Parameters
        ----------
        params : SkewNormalMixtureParams
        noise : VariationalNoise

        Returns
        -------
        samples : array, shape (K·S, d)
        weights : array, shape (K·S,)
        """
        samples = self.sample_from_noise(params, noise)
        xp = namespace(samples)
        n_samples = int(samples.shape[1])
        weights = xp.broadcast_to(params.weights[:, None] / n_samples, (self.k, n_samples))
        return (
            xp.reshape(samples, (self.k * n_samples, self.dim)),
            xp.reshape(weights, (self.k * n_samples,)),
        )

    # ------------------------------------------------------------------ densities
    def component_log_prob(self, params: SkewNormalMixtureParams, x: Array) -> Array:
        """Return ``log SN(x; ξ_k, Ω_k, η_s,k)`` for every component (shape ``(K, M)``).

        Parameters
        ----------
        params : SkewNormalMixtureParams
        x : array, shape (M, d)

        Returns
        -------
        array, shape (K, M)
        """
        xp = namespace(params.scale, x)
        chol = linalg.cholesky(linalg.symmetrize(params.scale))
        residual = x[None, :, :] - params.loc[:, None, :]
        white = linalg.solve_triangular(chol, xp.linalg.matrix_transpose(residual))
        quadratic = xp.sum(white * white, axis=-2)
        logdet = linalg.logdet_from_cholesky(chol)
        projection = xp.sum(residual * params.shape[:, None, :], axis=-1)
        return (
            _LOG_2
            - 0.5 * (quadratic + logdet[:, None] + self.dim * _LOG_2PI)
            + special.log_ndtr(projection)
        )

    def log_prob(self, params: SkewNormalMixtureParams, x: Array) -> Array:
        """Return ``log Σ_k π_k SN(x; ξ_k, Ω_k, η_s,k)`` at ``x`` (shape ``(..., d)``).

        Parameters
        ----------
        params : SkewNormalMixtureParams
        x : array, shape (..., d)

        Returns
        -------
        array, shape (...)
        """
        xp = namespace(params.weights, x)
        batch = tuple(x.shape[:-1])
        flat = xp.reshape(x, (-1, self.dim))
        per_component = self.component_log_prob(params, flat)
        joint = per_component + xp.log(params.weights)[:, None]
        return xp.reshape(special.logsumexp(joint, axis=0), batch)

    def moments(self, params: SkewNormalMixtureParams) -> tuple[Array, Array]:
        """Return the mixture's mean and covariance.

        Component ``k`` has mean ``ξ_k + cβ_k`` and covariance ``Ω_k - c²β_kβ_kᵀ``
        (``c = √(2/π)``); the mixture's are ``Σπ_k m_k`` and
        ``Σπ_k (C_k + m_k m_kᵀ) - m mᵀ``.

        Parameters
        ----------
        params : SkewNormalMixtureParams

        Returns
        -------
        mean : array, shape (d,)
        cov : array, shape (d, d)
        """
        xp = namespace(params.weights)
        _, skew, scale = self._conditional(params)
        means = params.loc + _C * skew
        covs = scale - (_C * _C) * linalg.matrix_outer(skew, skew)
        weights = params.weights
        mean = xp.sum(weights[:, None] * means, axis=0)
        second = xp.sum(weights[:, None, None] * (covs + linalg.matrix_outer(means, means)), axis=0)
        return mean, second - linalg.matrix_outer(mean, mean)

    def entropy(self, params: SkewNormalMixtureParams) -> Array:
        """Return a stratified Monte Carlo estimate of the entropy (seed 0).

        Parameters
        ----------
        params : SkewNormalMixtureParams

        Returns
        -------
        array
            ``-Σ_k π_k mean_s log q(z_ks)`` with ``entropy_samples`` draws per component.
        """
        from surrogate_natgrad import random

        xp = namespace(params.loc)
        rng = random.default_rng(0, like=params.loc)
        noise = self.draw_noise(rng, self.entropy_samples, params.loc.dtype)
        samples, weights = self.weighted_samples(params, noise)
        return -xp.sum(weights * self.log_prob(params, samples))

    # ------------------------------------------------------------------ weights floor
    def _floored(self, weights: Array) -> Array:
        xp = namespace(weights)
        floor = self.weight_floor
        for _ in range(self.k):
            low = weights < floor
            n_low = xp.sum(xp.astype(low, weights.dtype))
            rest = xp.sum(xp.where(low, xp.zeros_like(weights), weights))
            rescaled = weights * (1.0 - floor * n_low) / rest
            weights = xp.where(low, xp.full_like(weights, floor), rescaled)
            if not bool(xp.any(weights < floor * (1.0 - 1e-12))):
                break
        return weights

    def project(self, params: SkewNormalMixtureParams) -> SkewNormalMixtureParams | None:
        """Raise weights below ``weight_floor`` to it (rescaling the rest); None if none is.

        Parameters
        ----------
        params : SkewNormalMixtureParams

        Returns
        -------
        SkewNormalMixtureParams or None
        """
        xp = namespace(params.weights)
        if not bool(xp.any(params.weights < self.weight_floor)):
            return None
        return params._replace(weights=self._floored(params.weights))

    def project_unconstrained(self, values: dict[str, Array]) -> dict[str, Array] | None:
        """As :meth:`project`, on the logits of :meth:`to_unconstrained`.

        Parameters
        ----------
        values : dict of str to array

        Returns
        -------
        dict of str to array or None
        """
        xp = namespace(values["logits"])
        logits = values["logits"]
        weights = xp.exp(logits - special.logsumexp(logits))
        if not bool(xp.any(weights < self.weight_floor)):
            return None
        return {**values, "logits": xp.log(self._floored(weights))}

    # ------------------------------------------------------------------ optimisation
    def surrogate_map(self) -> SurrogateMap:
        """Return SNGD's map: the joint Gaussian mixture, with the ``η_s,k`` auxiliary.

        Returns
        -------
        SurrogateMap
        """

        def to_target(standard: Any, aux: Any) -> SkewNormalMixtureParams:
            components = standard.components
            return SkewNormalMixtureParams(
                standard.weights, components.mean, components.cov, aux["shape"]
            )

        return SurrogateMap(
            family=Mixture(Gaussian(self.dim), self.k),
            to_target=to_target,
            aux_transforms={"shape": Identity()},
        )

    def surrogate_start(self, params: SkewNormalMixtureParams) -> tuple[Any, Any]:
        """Return ``(MixtureStandard(π, GaussianStandard(ξ_k, Ω_k)), {"shape": η_s,k})``.

        Parameters
        ----------
        params : SkewNormalMixtureParams

        Returns
        -------
        tuple
        """
        components = GaussianStandard(params.loc, params.scale)
        return MixtureStandard(params.weights, components), {"shape": params.shape}

    def to_unconstrained(
        self, params: SkewNormalMixtureParams, parameterization: str = "cholesky"
    ) -> dict[str, Array]:
        """Return Adam's coordinates ``{"logits", "loc", "factor", "shape"}``.

        Parameters
        ----------
        params : SkewNormalMixtureParams
        parameterization : {"cholesky", "precision"}, optional
            ``Ω_k = W_kW_kᵀ`` or ``Ω_k⁻¹ = W_kW_kᵀ``.

        Returns
        -------
        dict of str to array
        """
        xp = namespace(params.weights)
        return {
            "logits": xp.log(params.weights),
            "loc": params.loc,
            "factor": scale_to_factor(params.scale, parameterization),
            "shape": params.shape,
        }

    def from_unconstrained(
        self, values: dict[str, Array], parameterization: str = "cholesky"
    ) -> SkewNormalMixtureParams:
        """Invert :meth:`to_unconstrained` (weights by softmax).

        Parameters
        ----------
        values : dict of str to array
        parameterization : {"cholesky", "precision"}, optional

        Returns
        -------
        SkewNormalMixtureParams
        """
        xp = namespace(values["logits"])
        logits = values["logits"]
        return SkewNormalMixtureParams(
            xp.exp(logits - special.logsumexp(logits)),
            values["loc"],
            factor_to_scale(values["factor"], parameterization),
            values["shape"],
        )
