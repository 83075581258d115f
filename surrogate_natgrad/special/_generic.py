"""Array-API implementations of the special functions (no NumPy on the computational path).

Used for namespaces without a native implementation (array-api-strict) and, for
``betainc``/``stdtr``/``stdtrit``/``gammainc``/``gammaincc``/``gammaincinv`` and the
parameter derivatives of the incomplete beta and gamma functions, for every backend but
NumPy (SciPy) and CuPy. Algorithms are vectorised with fixed iteration budgets (no
data-dependent Python control flow), so they also trace under ``jax.jit``; on JAX the long
loops run as ``lax.fori_loop`` (``lax.while_loop`` with a convergence test for the incomplete
gamma functions) and ``gammaln``/``digamma``/``ndtri`` inside them are JAX's native ones,
which keeps compilation short:

- ``gammaln``/``digamma``/``polygamma``: upward recurrence to ``x >= 15`` followed by the
  Stirling / asymptotic series (Bernoulli numbers);
- ``erf``/``erfc``: a positive-term power series for small ``|x|`` and Laplace's continued
  fraction for ``erfc`` at large ``|x|``;
- ``ndtri``: Abramowitz–Stegun 26.2.23 start plus Halley steps on ``log_ndtr``;
- ``betainc``: the Lentz continued fraction of Numerical Recipes with the symmetry
  ``I_x(a,b) = 1 - I_{1-x}(b,a)``, with ``log x``, ``log(1-x)`` and ``log B(a,b)`` supplied in
  cancellation-free form;
- ``d/da``, ``d/db`` of ``I_x(a,b)``: Gauss–Laguerre quadrature after ``s = x e^{-z/a}``;
- ``stdtrit``: Newton steps in ``log|t|`` (tails) or ``t`` (centre) from Hill-type starts;
- ``gammainc``/``gammaincc``: the power series of ``P`` for ``x < a + 1`` and the Lentz
  continued fraction of ``Q`` otherwise, in log form with the prefactor
  ``x^a e^{-x}/Γ(a+1)`` written around ``x = a`` (Stirling, ``log1p(d) - d`` by series) so
  large ``a`` does not amplify rounding; for ``a > 2000`` Gauss–Laguerre quadratures of
  either tail and Gauss–Legendre across the centre instead;
- ``∂P/∂a``: the series differentiated term by term, or the tail quadratures;
- ``gammaincinv``: Halley steps in ``log x`` on ``log P`` or ``log Q``.

All functions take the namespace first and floating arrays of one dtype.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from surrogate_natgrad._compat import Array, Namespace

# Bernoulli numbers B_2, B_4, ..., B_20.
_BERNOULLI = [
    1.0 / 6.0, -1.0 / 30.0, 1.0 / 42.0, -1.0 / 30.0, 5.0 / 66.0, -691.0 / 2730.0,
    7.0 / 6.0, -3617.0 / 510.0, 43867.0 / 798.0, -174611.0 / 330.0,
]
_SHIFT = 15.0  # recurrence target for the asymptotic series (error < 1e-17 beyond it)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _full(xp: Namespace, like: Array, value: float) -> Array:
    return xp.full_like(like, value)


# ----------------------------------------------------------------------------------------
# Gamma family
# ----------------------------------------------------------------------------------------


def _shift_up(xp: Namespace, x: Array) -> tuple[Array, Array]:
    """Return ``z = x + k >= _SHIFT`` and the product ``x (x+1) ... (x+k-1)`` (k per element)."""
    z = x
    product = xp.ones_like(x)
    for _ in range(int(_SHIFT)):
        below = z < _SHIFT
        product = xp.where(below, product * z, product)
        z = xp.where(below, z + 1.0, z)
    return z, product


def _stirling_correction(xp: Namespace, z: Array) -> Array:
    """``log Γ(z) - [(z - 1/2) log z - z + log √(2π)]`` for ``z >= 10`` (Stirling series)."""
    inv = 1.0 / z
    inv2 = inv * inv
    total = xp.zeros_like(z)
    power = inv
    for k, b in enumerate(_BERNOULLI[:8], start=1):
        total = total + b / (2 * k * (2 * k - 1)) * power
        power = power * inv2
    return total


def gammaln(xp: Namespace, x: Array) -> Array:
    """``log |Γ(x)|`` for real ``x`` (reflection for ``x < 0.5``)."""
    reflect = x < 0.5
    positive = xp.where(reflect, 1.0 - x, x)
    z, product = _shift_up(xp, positive)
    big = (z - 0.5) * xp.log(z) - z + _LOG_SQRT_2PI + _stirling_correction(xp, z)
    value = big - xp.log(product)
    # log|Γ(x)| = log π - log|sin πx| - log Γ(1 - x)
    sin_term = xp.abs(xp.sin(math.pi * xp.where(reflect, x, 0.5)))
    reflected = math.log(math.pi) - xp.log(sin_term) - value
    return xp.where(reflect, reflected, value)


def _native(xp: Namespace, name: str) -> Any:
    """The array library's own ``name`` where it is accurate, else None.

    JAX's (accurate, and far smaller to compile than the unrolled recurrences), SciPy's on
    NumPy and autograd's wrappers of SciPy on autograd (these helpers run on plain NumPy
    arrays inside derivative rules too, where the generic recurrences cost several times
    as much).
    """
    from surrogate_natgrad._compat import array_library_name

    if _is_jax(xp):
        import jax.scipy.special as jss

        return getattr(jss, name)
    library = array_library_name(xp)
    if library == "numpy":
        import scipy.special

        function = getattr(scipy.special, name)
        return lambda x: xp.asarray(function(x))
    if library == "autograd" and name != "ndtri":
        import autograd.scipy.special

        return getattr(autograd.scipy.special, name)
    return None


def _gammaln(xp: Namespace, x: Array) -> Array:
    """``gammaln`` for internal use: the library's own where accurate (see :func:`_native`)."""
    native = _native(xp, "gammaln")
    return gammaln(xp, x) if native is None else native(x)


def _digamma(xp: Namespace, x: Array) -> Array:
    """``digamma`` for internal use (see :func:`_native`)."""
    native = _native(xp, "digamma")
    return digamma(xp, x) if native is None else native(x)


def _ndtri(xp: Namespace, p: Array) -> Array:
    """``ndtri`` for internal use (see :func:`_native`)."""
    native = _native(xp, "ndtri")
    return ndtri(xp, p) if native is None else native(p)


def lbeta(xp: Namespace, a: Array, b: Array) -> Array:
    """``log B(a, b)`` for positive ``a, b``, without cancellation when one is large."""
    small = xp.minimum(a, b)
    large = xp.maximum(a, b)
    direct = _gammaln(xp, small) + _gammaln(xp, large) - _gammaln(xp, small + large)
    # log Γ(L) - log Γ(L+s) from Stirling, written with log1p so nothing cancels.
    safe_large = xp.where(large >= 10.0, large, 10.0)
    total = small + safe_large
    diff = (
        -(safe_large - 0.5) * xp.log1p(small / safe_large)
        - small * xp.log(total)
        + small
        + _stirling_correction(xp, safe_large)
        - _stirling_correction(xp, total)
    )
    # log Γ(small) by Stirling too once small >= 10 (JAX's native gammaln is only ~1e-16
    # relative there, i.e. ~1e-11 absolute at 1e4, which would show in I_x(a, b)).
    safe_small = xp.where(small >= 10.0, small, 10.0)
    stirling_small = (
        (safe_small - 0.5) * xp.log(safe_small)
        - safe_small
        + _LOG_SQRT_2PI
        + _stirling_correction(xp, safe_small)
    )
    asymptotic = xp.where(small >= 10.0, stirling_small, _gammaln(xp, small)) + diff
    return xp.where(large >= 10.0, asymptotic, direct)


def digamma(xp: Namespace, x: Array) -> Array:
    """ψ(x) for real ``x`` (reflection ``ψ(1-x) - π / tan(πx)`` for ``x < 0.5``)."""
    reflect = x < 0.5
    positive = xp.where(reflect, 1.0 - x, x)
    z = positive
    acc = xp.zeros_like(x)
    for _ in range(int(_SHIFT)):
        below = z < _SHIFT
        acc = acc - xp.where(below, 1.0 / z, 0.0)
        z = xp.where(below, z + 1.0, z)
    inv = 1.0 / z
    inv2 = inv * inv  # not 1/z²: z² overflows for z > 1e154
    series = xp.zeros_like(z)
    power = inv2
    for k, b in enumerate(_BERNOULLI[:8], start=1):
        series = series + b / (2 * k) * power
        power = power * inv2
    value = xp.log(z) - 0.5 / z - series + acc
    tan_term = xp.tan(math.pi * xp.where(reflect, x, 0.25))
    return xp.where(reflect, value - math.pi / tan_term, value)


def polygamma(xp: Namespace, n: int, x: Array) -> Array:
    """ψ⁽ⁿ⁾(x) for integer ``n >= 1`` and ``x > 0``."""
    if n == 0:
        return digamma(xp, x)
    sign = 1.0 if n % 2 == 1 else -1.0  # (-1)^(n+1)
    n_factorial = math.factorial(n)
    z = x
    acc = xp.zeros_like(x)
    for _ in range(int(_SHIFT) + n):
        below = z < _SHIFT + n
        acc = acc + xp.where(below, z ** (-(n + 1)), 0.0)
        z = xp.where(below, z + 1.0, z)
    inv = 1.0 / z
    inv2 = inv * inv
    series = math.factorial(n - 1) * inv**n + 0.5 * n_factorial * inv ** (n + 1)
    power = inv ** (n + 2)
    for k, b in enumerate(_BERNOULLI, start=1):
        coef = b * math.factorial(2 * k + n - 1) / math.factorial(2 * k)
        series = series + coef * power
        power = power * inv2
    return sign * (series + n_factorial * acc)


# ----------------------------------------------------------------------------------------
# Error function and normal distribution
# ----------------------------------------------------------------------------------------

_ERF_SERIES_TERMS = 70
_ERFC_CF_TERMS = 120
_ERF_SWITCH = 2.0


def _erf_series(xp: Namespace, x: Array) -> Array:
    """erf(x) = 2x/√π e^{-x²} Σ (2x²)^n / (1·3···(2n+1)): positive terms, no cancellation."""
    two_x2 = 2.0 * x * x
    term = xp.ones_like(x)
    total = xp.ones_like(x)
    for n in range(1, _ERF_SERIES_TERMS):
        term = term * two_x2 / (2 * n + 1)
        total = total + term
    return 2.0 / math.sqrt(math.pi) * x * xp.exp(-x * x) * total


def _erfc_cf(xp: Namespace, x: Array) -> Array:
    """erfc(x) for x >= 1 by Laplace's continued fraction, evaluated backwards."""
    # erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
    tail = xp.zeros_like(x)
    for k in range(_ERFC_CF_TERMS, 0, -1):
        tail = (0.5 * k) / (x + tail)
    return xp.exp(-x * x) / math.sqrt(math.pi) / (x + tail)


def erfc(xp: Namespace, x: Array) -> Array:
    """Complementary error function with relative accuracy in the upper tail."""
    ax = xp.abs(x)
    small = ax < _ERF_SWITCH
    series = _erf_series(xp, xp.where(small, x, 0.0))
    cf = _erfc_cf(xp, xp.where(small, _ERF_SWITCH, ax))
    cf_signed = xp.where(x < 0, 2.0 - cf, cf)
    return xp.where(small, 1.0 - series, cf_signed)


def erf(xp: Namespace, x: Array) -> Array:
    """Error function."""
    ax = xp.abs(x)
    small = ax < _ERF_SWITCH
    series = _erf_series(xp, xp.where(small, x, 0.0))
    cf = _erfc_cf(xp, xp.where(small, _ERF_SWITCH, ax))
    large = xp.where(x < 0, cf - 1.0, 1.0 - cf)
    return xp.where(small, series, large)


def ndtr(xp: Namespace, x: Array) -> Array:
    """Standard normal CDF."""
    return 0.5 * erfc(xp, -x / math.sqrt(2.0))


def log_ndtr(xp: Namespace, x: Array, ndtr_fn: Any = None) -> Array:
    """log of the standard normal CDF, accurate in both tails.

    ``ndtr_fn(x)`` (default: :func:`ndtr` here) must be accurate to rounding relative to
    its value for ``x <= 0``; a native one (JAX) can be passed in.
    """
    cdf = (lambda v: ndtr(xp, v)) if ndtr_fn is None else ndtr_fn
    very_low = x < -20.0
    high = x > 0.0
    safe = xp.where(very_low, -20.0, x)
    middle = xp.log(cdf(xp.where(high, 0.0, safe)))
    upper = xp.log1p(-cdf(-xp.where(high, safe, 0.0)))
    # Asymptotic series log Φ(x) = -x²/2 - log(-x) - log√(2π) + log(Σ (-1)^k (2k-1)!! / x^{2k})
    xl = xp.where(very_low, x, -20.0)
    inv2 = 1.0 / (xl * xl)
    term = xp.ones_like(xl)
    total = xp.ones_like(xl)
    for k in range(1, 12):
        term = -term * (2 * k - 1) * inv2
        total = total + term
    asymptotic = -0.5 * xl * xl - xp.log(-xl) - _LOG_SQRT_2PI + xp.log(total)
    return xp.where(very_low, asymptotic, xp.where(high, upper, middle))


def _normal_pdf(xp: Namespace, x: Array) -> Array:
    return xp.exp(-0.5 * x * x) / _SQRT_2PI


def ndtri(xp: Namespace, p: Array) -> Array:
    """Inverse of the standard normal CDF (``-inf``/``inf`` at 0/1, NaN outside)."""
    upper = p > 0.5
    q = xp.where(upper, 1.0 - p, p)  # exact for p >= 0.5 (Sterbenz)
    q_safe = xp.clip(q, 1e-300, 0.5)
    # Abramowitz & Stegun 26.2.23 (|error| < 4.5e-4) as a start.
    t = xp.sqrt(-2.0 * xp.log(q_safe))
    num = 2.515517 + t * (0.802853 + t * 0.010328)
    den = 1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308))
    x = -(t - num / den)
    log_q = xp.log(q_safe)
    for _ in range(4):
        # Newton on log Φ(x) - log q: well conditioned deep in the lower tail.
        log_cdf = log_ndtr(xp, x)
        ratio = xp.exp(-0.5 * x * x - _LOG_SQRT_2PI - log_cdf)  # φ(x)/Φ(x)
        x = x - (log_cdf - log_q) / ratio
    x = xp.where(q == 0.5, 0.0, x)
    x = xp.where(upper, -x, x)
    x = xp.where(p == 0.0, -math.inf, xp.where(p == 1.0, math.inf, x))
    return xp.where((p < 0.0) | (p > 1.0) | xp.isnan(p), math.nan, x)


# ----------------------------------------------------------------------------------------
# Incomplete beta function
# ----------------------------------------------------------------------------------------

_BETA_CF_TERMS = 300
_TINY = 1e-300


def _beta_cf(xp: Namespace, a: Array, b: Array, x: Array) -> Array:
    """Lentz continued fraction of I_x(a, b) (Numerical Recipes ``betacf``)."""
    tiny = _TINY if x.dtype == xp.float64 else 1e-30
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0

    def floor(v: Array) -> Array:
        return xp.where(xp.abs(v) < tiny, tiny, v)

    def step(m: Any, c: Array, d: Array, h: Array) -> tuple[Array, Array, Array, Array]:
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 / floor(1.0 + aa * d)
        c = floor(1.0 + aa / c)
        h = h * d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 / floor(1.0 + aa * d)
        c = floor(1.0 + aa / c)
        delta = d * c
        return c, d, h * delta, delta

    c = xp.ones_like(x)
    d = 1.0 / floor(1.0 - qab * x / qap)
    h = d
    if _is_jax(xp):
        # A Python loop would unroll into a huge graph under jit: use a compiled loop.
        import jax

        def body(m: Any, state: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
            c, d, h, _ = step(xp.asarray(m, dtype=x.dtype) + 1.0, *state)
            return c, d, h

        _, _, h = jax.lax.fori_loop(0, _BETA_CF_TERMS, body, (c, d, h))
        return h
    for m in range(1, _BETA_CF_TERMS + 1):
        c, d, h, delta = step(float(m), c, d, h)
        # Eager arrays stop once every element has converged (checked every 16 terms).
        if m % 16 == 0 and _all_true(xp, xp.abs(delta - 1.0) < 1e-16):
            break
    return h


def _repeat(xp: Namespace, count: int, body: Any, state: Array) -> Array:
    """Apply ``body`` ``count`` times; a compiled loop on JAX so that jit does not unroll."""
    if _is_jax(xp):
        import jax

        return jax.lax.fori_loop(0, count, lambda _, value: body(value), state)
    for _ in range(count):
        state = body(state)
    return state


def _all_true(xp: Namespace, condition: Array) -> bool:
    """``all(condition)`` for eager arrays; False where it cannot be decided (e.g. vmap)."""
    try:
        return bool(xp.all(condition))
    except Exception:  # batched/traced tensors (vmap, tracers): run the full budget
        return False


def betainc_parts(
    xp: Namespace, a: Array, b: Array, x: Array, y: Array, log_x: Array, log_y: Array
) -> tuple[Array, Array]:
    """Return ``(I_x(a,b), I_y(b,a))`` (which sum to one) given ``y = 1 - x``.

    The caller passes ``y``, ``log x`` and ``log y`` in accurate form (e.g. through
    ``log1p``), so that large ``a`` or ``b`` does not amplify their rounding. The smaller
    of the two is computed directly, the other as its complement.
    """
    swap = x * (a + b + 2.0) > a + 1.0
    p = xp.where(swap, b, a)
    q = xp.where(swap, a, b)
    z = xp.where(swap, y, x)
    log_z = xp.where(swap, log_y, log_x)
    log_w = xp.where(swap, log_x, log_y)
    front = xp.exp(p * log_z + q * log_w - lbeta(xp, p, q)) / p
    direct = front * _beta_cf(xp, p, q, z)
    complement = 1.0 - direct
    lower = xp.where(swap, complement, direct)
    upper = xp.where(swap, direct, complement)
    lower = xp.where(x <= 0.0, 0.0, xp.where(y <= 0.0, 1.0, lower))
    upper = xp.where(x <= 0.0, 1.0, xp.where(y <= 0.0, 0.0, upper))
    return lower, upper


def _is_jax(xp: Namespace) -> bool:
    from surrogate_natgrad._compat import is_jax_namespace

    return bool(is_jax_namespace(xp))


def betainc(xp: Namespace, a: Array, b: Array, x: Array) -> Array:
    """Regularised incomplete beta function ``I_x(a, b)``."""
    a, b, x = xp.broadcast_arrays(a, b, x)
    inside = (x > 0.0) & (x < 1.0)
    xs = xp.where(inside, x, 0.5)
    ys = 1.0 - xs
    lower, _ = betainc_parts(xp, a, b, xs, ys, xp.log(xs), xp.log1p(-xs))
    lower = xp.where(x <= 0.0, 0.0, xp.where(x >= 1.0, 1.0, lower))
    bad = (a <= 0.0) | (b <= 0.0) | (x < 0.0) | (x > 1.0) | xp.isnan(x)
    return xp.where(bad, math.nan, lower)


@cache
def _laguerre_rule(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    # Quadrature nodes are constants of the algorithm; computing them once with SciPy is not
    # a trip of user data through NumPy. (SciPy's weights are accurate to rounding; NumPy's
    # laggauss(96) weights carry relative errors near 2.5e-13.)
    return _gamma_laguerre_rule(n)


_LAGUERRE_NODES = 96


#: Gauss–Laguerre nodes whose weight is below this are dropped where the integrand is
#: bounded by a polynomial in the node (see ``_betainc_param_derivatives_direct``).
_NEGLIGIBLE_WEIGHT = 1e-30


@cache
def _bounded_integrand_rule(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The ``n``-point Gauss–Laguerre rule without its negligible nodes (51 of 96 kept)."""
    nodes, weights = _laguerre_rule(n)
    kept = [i for i, weight in enumerate(weights) if weight > _NEGLIGIBLE_WEIGHT]
    return tuple(nodes[i] for i in kept), tuple(weights[i] for i in kept)


def _betainc_param_derivatives_direct(
    xp: Namespace, p: Array, q: Array, z: Array, log_z: Array
) -> tuple[Array, Array]:
    """``(∂/∂p, ∂/∂q) I_z(p, q)`` by Gauss–Laguerre quadrature (accurate for small ``z``).

    With ``s = z e^{-u/p}``: ``B_z(p,q) = (z^p/p) ∫ e^{-u} (1 - z e^{-u/p})^{q-1} du``,
    ``log s = log z - u/p``, and ``∂I/∂p = ∫ (log s - ψ(p) + ψ(p+q)) dI``,
    ``∂I/∂q = ∫ (log(1-s) - ψ(q) + ψ(p+q)) dI``.

    The integrand is at most ``(1 - z)^{q-1}`` times ``|log z| + u/p`` (or ``|log(1-s)|``),
    and the mass sits at ``u ≲ p log(q z)`` (``< 10`` for ``df < 10⁶``), so the nodes with
    weights below 1e-30 (``u > 70``; they also produced subnormal ``s``, slow on CPUs)
    change no digit: dropping them halves the cost.
    """
    nodes, weights = _bounded_integrand_rule(_LAGUERRE_NODES)
    dtype = z.dtype
    u = xp.reshape(xp.asarray(nodes, dtype=dtype, device=_device(z)), (1,) * z.ndim + (-1,))
    w = xp.asarray(weights, dtype=dtype, device=_device(z))
    pe, qe, log_ze = (v[..., None] for v in (p, q, log_z))
    log_s = log_ze - u * (1.0 / pe)
    log_one_minus_s = xp.log1p(-xp.exp(log_s))
    integrand = xp.exp((qe - 1.0) * log_one_minus_s)
    psi_pq = _digamma(xp, p + q)
    front = xp.exp(p * log_z - lbeta(xp, p, q)) / p
    # Weighted sums over the nodes as matrix-vector products (BLAS on NumPy).
    value = front * (integrand @ w)
    moment_log_s = front * ((integrand * log_s) @ w)
    moment_log_1ms = front * ((integrand * log_one_minus_s) @ w)
    d_p = moment_log_s - value * (_digamma(xp, p) - psi_pq)
    d_q = moment_log_1ms - value * (_digamma(xp, q) - psi_pq)
    return d_p, d_q


def _device(x: Array) -> Any:
    from surrogate_natgrad._compat import device

    return device(x)


def betainc_param_derivatives(
    xp: Namespace, a: Array, b: Array, x: Array, y: Array, log_x: Array, log_y: Array
) -> tuple[Array, Array]:
    """``(∂/∂a, ∂/∂b) I_x(a, b)`` using the symmetry to keep the integration range small."""
    swap = x * (a + b) > a
    p = xp.where(swap, b, a)
    q = xp.where(swap, a, b)
    z = xp.where(swap, y, x)
    log_z = xp.where(swap, log_y, log_x)
    d_p, d_q = _betainc_param_derivatives_direct(xp, p, q, z, log_z)
    # I_x(a,b) = 1 - I_y(b,a): swapped derivatives change sign and exchange roles.
    d_a = xp.where(swap, -d_q, d_p)
    d_b = xp.where(swap, -d_p, d_q)
    edge = (x <= 0.0) | (y <= 0.0)
    return xp.where(edge, 0.0, d_a), xp.where(edge, 0.0, d_b)


# ----------------------------------------------------------------------------------------
# Student t
# ----------------------------------------------------------------------------------------


def _huge(xp: Namespace, like: Array) -> float:
    """A magnitude whose square is still finite in ``like``'s dtype (1e100 in float64)."""
    return 1e100 if like.dtype == xp.float64 else 1e15


def _t_beta_args(xp: Namespace, df: Array, t: Array) -> tuple[Array, ...]:
    """``x = df/(df+t²)``, ``y = t²/(df+t²)`` and their logs, without cancellation."""
    scaled = xp.abs(t) / xp.sqrt(df)  # t²/df = scaled², which may overflow: split it
    huge = scaled > _huge(xp, t)
    moderate = xp.where(huge, 1.0, scaled)
    ratio = moderate * moderate
    x = 1.0 / (1.0 + ratio)
    y = ratio / (1.0 + ratio)
    log_x = -xp.log1p(ratio)
    # 2 log(moderate), not log(ratio): ratio may underflow to 0 for tiny |t|.
    log_y = 2.0 * xp.log(xp.where(moderate > 0.0, moderate, 1.0)) + log_x
    # |t| >> sqrt(df): x = 1/scaled² (tiny), y = 1 - x, log y = -x to rounding.
    inverse = 1.0 / xp.where(huge, scaled, 1.0)
    x_huge = inverse * inverse
    x = xp.where(huge, x_huge, x)
    y = xp.where(huge, 1.0 - x_huge, y)
    log_x = xp.where(huge, 2.0 * xp.log(inverse), log_x)
    log_y = xp.where(huge, -x_huge, log_y)
    return x, y, log_x, log_y


def stdtr(xp: Namespace, df: Array, t: Array) -> Array:
    """Student-t CDF: ``F(t) = I_x(df/2, 1/2)/2`` for ``t < 0``, with ``x = df/(df+t²)``."""
    df, t = xp.broadcast_arrays(df, t)
    safe_df = xp.where(df > 0.0, df, 1.0)
    finite_t = xp.where(xp.isfinite(t), t, 0.0)
    x, y, log_x, log_y = _t_beta_args(xp, safe_df, finite_t)
    tail, _ = betainc_parts(xp, 0.5 * safe_df, xp.full_like(t, 0.5), x, y, log_x, log_y)
    tail = 0.5 * tail
    # The continued fraction needs O(sqrt(df)) terms; for large df use quadrature instead.
    # (Beyond |t| = _huge the tail underflows to 0 for such df; the fraction gives that.)
    use_quadrature = (
        (safe_df > _LARGE_DF) & (xp.abs(finite_t) > 1.0) & (xp.abs(finite_t) < _huge(xp, t))
    )
    tail_quad = _t_tail_quadrature(
        xp,
        xp.where(use_quadrature, safe_df, 2.0 * _LARGE_DF),
        xp.where(use_quadrature, finite_t, 2.0),
    )
    tail = xp.where(use_quadrature, tail_quad, tail)
    value = xp.where(finite_t < 0.0, tail, 1.0 - tail)
    value = xp.where(t == 0.0, 0.5, value)
    value = xp.where(t == -math.inf, 0.0, xp.where(t == math.inf, 1.0, value))
    return xp.where((df <= 0.0) | xp.isnan(df) | xp.isnan(t), math.nan, value)


_LARGE_DF = 5000.0


def _t_tail_quadrature(xp: Namespace, df: Array, t: Array) -> Array:
    """``P(T < -|t|)`` for large ``df`` by Gauss–Laguerre quadrature.

    With ``u = |t| + s/λ``, ``λ = (df+1)|t|/(df+t²)`` (the decay rate of the density at
    ``|t|``): tail = f(|t|)/λ · ∫ e^{-s} g(s) ds, with g smooth and g(0) = 1.
    """
    nodes, weights = _laguerre_rule(_LAGUERRE_NODES)
    shape = (1,) * t.ndim + (len(nodes),)
    s = xp.reshape(xp.asarray(nodes, dtype=t.dtype, device=_device(t)), shape)
    w = xp.reshape(xp.asarray(weights, dtype=t.dtype, device=_device(t)), shape)
    at = xp.abs(t)
    denom = df + at * at
    rate = (df + 1.0) * at / denom
    v = s / rate[..., None]
    increment = (2.0 * at[..., None] * v + v * v) / denom[..., None]
    log_g = s - 0.5 * (df[..., None] + 1.0) * xp.log1p(increment)
    integral = xp.sum(w * xp.exp(log_g), axis=-1)
    return xp.exp(t_log_pdf(xp, df, at)) / rate * integral


def t_log_pdf(xp: Namespace, df: Array, t: Array) -> Array:
    """log density of the standard Student t with ``df`` degrees of freedom."""
    return (
        -lbeta(xp, 0.5 * df, xp.full_like(df, 0.5))
        - 0.5 * xp.log(df)
        - 0.5 * (df + 1.0) * xp.log1p(t * t / df)
    )


def stdtr_ddf(xp: Namespace, df: Array, t: Array) -> Array:
    """``∂F/∂df`` of the Student-t CDF at fixed ``t`` (via ∂I/∂a and ∂I/∂x)."""
    df, t = xp.broadcast_arrays(df, t)
    x, y, log_x, log_y = _t_beta_args(xp, df, t)
    half = xp.full_like(t, 0.5)
    d_a, _ = betainc_param_derivatives(xp, 0.5 * df, half, x, y, log_x, log_y)
    # ∂I/∂x · ∂x/∂df with ∂x/∂df = t²/(df+t²)² = x y / df
    # density · x · y / df in log form (the density alone overflows for huge |t|, small df)
    log_d_x = 0.5 * df * log_x + 0.5 * log_y - lbeta(xp, 0.5 * df, half) - xp.log(df)
    d_x = xp.exp(log_d_x)
    d_x = xp.where(t == 0.0, 0.0, d_x)
    d_tail = 0.5 * (0.5 * d_a + d_x)
    return xp.where(t < 0.0, d_tail, -d_tail)


_STDTRIT_NEWTON = 8
_MAX_LOG_ABS_T = 340.0  # |t| < 1e147 keeps t² finite


def stdtrit(xp: Namespace, df: Array, p: Array) -> Array:
    """Student-t quantile: the ``t`` with ``stdtr(df, t) = p``."""
    df, p = xp.broadcast_arrays(df, p)
    upper = p > 0.5
    q = xp.where(upper, 1.0 - p, p)  # lower-tail probability, exact for p >= 0.5
    q = xp.clip(q, 1e-300, 0.5)
    safe_df = xp.where(df > 0.0, df, 1.0)
    log_q = xp.log(q)
    # Starting points: Cornish–Fisher around the normal quantile, and the power-law tail
    # F(t) ≈ C |t|^{-df}, C = df^{df/2 - 1/2} / B(df/2, 1/2) / df^{1/2}... (take the larger).
    z = _ndtri(xp, q)
    z2 = z * z
    g1 = (z2 + 1.0) * z / 4.0
    g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0
    cf = z + g1 / safe_df + g2 / (safe_df * safe_df)
    log_c = (0.5 * safe_df - 1.0) * xp.log(safe_df) - lbeta(
        xp, 0.5 * safe_df, xp.full_like(safe_df, 0.5)
    )
    log_abs_tail = xp.clip((log_c - log_q) / safe_df, -300.0, _MAX_LOG_ABS_T)
    # The power law holds once t² >> df; otherwise the normal expansion is the better start.
    in_power_tail = 2.0 * log_abs_tail > xp.log(10.0 * safe_df)
    log_abs_cf = xp.log(xp.clip(-cf, 1e-300, math.inf))
    log_abs = xp.where(in_power_tail, log_abs_tail, log_abs_cf)

    def log_newton(log_abs: Array) -> Array:
        t = -xp.exp(log_abs)
        log_cdf = xp.log(xp.maximum(stdtr(xp, safe_df, t), _TINY))
        log_pdf = t_log_pdf(xp, safe_df, t)
        # d log F / d log|t| = -f(t)|t|/F(t)
        slope = -xp.exp(log_pdf + log_abs - log_cdf)
        step = (log_cdf - log_q) / slope
        return xp.clip(log_abs - xp.clip(step, -2.0, 2.0), -700.0, _MAX_LOG_ABS_T)

    def newton(t: Array) -> Array:
        # Newton in t itself (exact near the centre, where log|t| is ill-suited).
        density = xp.exp(t_log_pdf(xp, safe_df, t))
        positive = density > 0.0  # (underflows only where the log-space steps are exact)
        step = (stdtr(xp, safe_df, t) - q) / xp.where(positive, density, 1.0)
        return xp.minimum(t - xp.where(positive, step, 0.0), 0.0)

    log_abs = _repeat(xp, _STDTRIT_NEWTON, log_newton, log_abs)
    t = _repeat(xp, 2, newton, -xp.exp(log_abs))
    t = xp.where(q >= 0.5, 0.0, t)
    t = xp.where(upper, -t, t)
    t = xp.where(p == 0.0, -math.inf, xp.where(p == 1.0, math.inf, t))
    bad = (df <= 0.0) | (p < 0.0) | (p > 1.0) | xp.isnan(p) | xp.isnan(df)
    return xp.where(bad, math.nan, t)


# ----------------------------------------------------------------------------------------
# Regularised incomplete gamma functions
# ----------------------------------------------------------------------------------------

# Term budgets: near x ≈ a both the series and the continued fraction need O(sqrt(a)) terms
# (about 300 at a = 1e3); eager arrays stop as soon as every element has converged.
_GAMMA_SERIES_TERMS = 700
_GAMMA_CF_TERMS = 500
# ∂P/∂a: the series (whose complement cancels at most ~3 digits up to here) below
# x = a + 1 + _GAMMA_UPPER_SD·sqrt(a), the upper-tail quadrature of ∂Q/∂a above it.
_GAMMA_UPPER_SD = 1.0
# Beyond this shape the series would need more than ~9 sqrt(a) terms: quadratures instead
# (Laguerre in each tail, Legendre across the centre), for values and ∂/∂a alike.
_LARGE_SHAPE = 2000.0
_LEGENDRE_NODES = 40
_GAMMAINCINV_HALLEY = 6


def _loop(
    xp: Namespace,
    count: int,
    body: Any,
    state: tuple[Array, ...],
    converged: Any = None,
    check_every: int = 8,
) -> tuple[Array, ...]:
    """Run ``state = body(n, state)`` for ``n = 1 .. count`` (``n`` a float or 0-d array).

    Stops early once ``converged(state)`` holds for every element: eager arrays check every
    ``check_every`` terms; on JAX a compiled ``lax.while_loop`` checks every term (a Python
    loop would unroll under ``jit``; ``while_loop`` supports forward-mode derivatives, so
    ``jax.hessian`` of functions whose partials use it still works).
    """
    if _is_jax(xp):
        import jax

        dtype = state[0].dtype

        def jax_body(carry: tuple[Any, tuple[Array, ...]]) -> tuple[Any, tuple[Array, ...]]:
            n, inner = carry
            return n + 1, tuple(body(xp.asarray(n, dtype=dtype), inner))

        def keep_going(carry: tuple[Any, tuple[Array, ...]]) -> Any:
            n, inner = carry
            if converged is None:
                return n <= count
            return (n <= count) & ~xp.all(converged(inner))

        return jax.lax.while_loop(keep_going, jax_body, (1, tuple(state)))[1]
    for n in range(1, count + 1):
        state = body(float(n), state)
        if converged is not None and n % check_every == 0 and _all_true(xp, converged(state)):
            break
    return state


def _only_if_any(
    xp: Namespace, mask: Array, compute: Any, like: tuple[Array, ...]
) -> tuple[Array, ...]:
    """``compute()`` if any element of ``mask`` is set, else zeros shaped like ``like``.

    Skips a branch that no element uses (its results are masked out anyway): an eager
    test, or ``lax.cond`` on JAX (which evaluates both branches only under ``vmap``).
    """
    if _is_jax(xp):
        import jax

        return tuple(
            jax.lax.cond(
                xp.any(mask), lambda: tuple(compute()), lambda: tuple(map(xp.zeros_like, like))
            )
        )
    try:
        needed = bool(xp.any(mask))
    except Exception:  # traced or batched arrays: compute it
        needed = True
    return tuple(compute()) if needed else tuple(map(xp.zeros_like, like))


def _lgamma(xp: Namespace, x: Array) -> Array:
    """``log Γ(x)`` from the array library where it has an accurate one.

    The generic :func:`gammaln` carries an absolute error of about 5e-15 near ``x = 1``
    (it subtracts ``log`` of a product of up to 15 terms), which ``1 - P`` would amplify.
    """
    from surrogate_natgrad._compat import array_library_name

    library = array_library_name(xp)
    if library == "numpy":
        import scipy.special

        return xp.asarray(scipy.special.gammaln(x))
    if library == "autograd":
        import autograd.scipy.special

        return autograd.scipy.special.gammaln(x)
    if library == "torch":
        import torch

        return torch.special.gammaln(x)
    return _gammaln(xp, x)


def _eps(xp: Namespace, like: Array) -> float:
    from surrogate_natgrad._compat import dtype_eps

    return dtype_eps(xp, like.dtype)


def log_gamma_front(xp: Namespace, a: Array, x: Array, log_x: Array | None = None) -> Array:
    """``log(x^a e^{-x} / Γ(a+1))`` for ``a, x > 0``, without cancellation for large ``a``.

    For ``a >= 10`` it is written as ``a (log(x/a) - (x-a)/a) - log√(2πa) - S(a)`` (``S`` the
    Stirling correction), whose absolute error is about ``eps·|x - a|`` rather than
    ``eps·a log x``. ``log_x`` may be passed in (it stays finite where ``x`` underflows).
    """
    if log_x is None:
        log_x = xp.log(x)
    direct = a * log_x - x - _lgamma(xp, a + 1.0)
    big = a >= 10.0
    safe_a = xp.where(big, a, 10.0)
    ratio_m1 = (x - safe_a) / safe_a
    near = xp.abs(ratio_m1) < 0.5
    log_ratio = xp.where(near, xp.log1p(xp.where(near, ratio_m1, 0.0)), log_x - xp.log(safe_a))
    stirling = (
        safe_a * xp.where(near, _log1pmx(xp, xp.where(near, ratio_m1, 0.0)), log_ratio - ratio_m1)
        - 0.5 * xp.log(2.0 * math.pi * safe_a)
        - _stirling_correction(xp, safe_a)
    )
    return xp.where(big, stirling, direct)


def _log1pmx(xp: Namespace, d: Array) -> Array:
    """``log(1 + d) - d`` for ``|d| < 1/2`` without cancellation.

    A power series for ``|d| < 0.2`` (error below 1e-18); beyond, the direct difference
    loses only a factor ``1/|d| < 5`` of relative accuracy.
    """
    small = xp.abs(d) < 0.2
    ds = xp.where(small, d, 0.0)
    # -d²/2 + d³/3 - ...: Horner in d from the 24th power down.
    total = xp.zeros_like(d)
    for k in range(24, 1, -1):
        total = total * ds + (1.0 if k % 2 == 1 else -1.0) / k
    series = total * ds * ds
    direct = xp.log1p(xp.where(small, 0.0, d)) - xp.where(small, 0.0, d)
    return xp.where(small, series, direct)


def _gamma_series(
    xp: Namespace, a: Array, x: Array, derivative: bool = False
) -> tuple[Array, Array]:
    """``(S0, S1)``: ``P(a, x) = front·S0`` and ``∂P/∂a = (log x - ψ(a+1)) P - front·S1``.

    ``S0 = Σ c_n``, ``S1 = Σ c_n H_n`` with ``c_n = x^n / ((a+1)···(a+n))`` and
    ``H_n = Σ_{k<=n} 1/(a+k)`` (from ``ψ(a+n+1) = ψ(a+1) + H_n``); all terms are positive.
    ``S1`` is only accumulated when ``derivative`` is true (zeros otherwise).
    """
    eps = _eps(xp, x)

    def body(n: Any, state: tuple[Array, ...]) -> tuple[Array, ...]:
        term, total, harmonic, weighted = state
        inverse = 1.0 / (a + n)
        term = term * x * inverse
        total = total + term
        if derivative:
            harmonic = harmonic + inverse
            weighted = weighted + term * harmonic
        return term, total, harmonic, weighted

    def converged(state: tuple[Array, ...]) -> Array:
        term, total, harmonic, weighted = state
        # Terms decrease geometrically once n > x - a; H_n grows only logarithmically.
        return (term * x < 0.25 * eps * total * (a + 1.0)) & (
            term * (harmonic + 1.0) <= 0.25 * eps * (weighted + total)
        )

    one = xp.ones_like(x)
    zero = xp.zeros_like(x)
    _, total, _, weighted = _loop(xp, _GAMMA_SERIES_TERMS, body, (one, one, zero, zero), converged)
    return total, weighted


def _gamma_cf(xp: Namespace, a: Array, x: Array) -> Array:
    """Lentz continued fraction ``h`` with ``Q(a, x) = x^a e^{-x}/Γ(a) · h`` (x > a + 1).

    Numerical Recipes ``gcf``: ``h = 1/(x+1-a- 1(1-a)/(x+3-a- 2(2-a)/(x+5-a- ...)))``.
    """
    tiny = _TINY if x.dtype == xp.float64 else 1e-30
    eps = _eps(xp, x)

    def floor(v: Array) -> Array:
        return xp.where(xp.abs(v) < tiny, tiny, v)

    def body(n: Any, state: tuple[Array, ...]) -> tuple[Array, ...]:
        b, c, d, h, _ = state
        an = -n * (n - a)
        b = b + 2.0
        d = 1.0 / floor(an * d + b)
        c = floor(b + an / c)
        delta = d * c
        return b, c, d, h * delta, delta

    def converged(state: tuple[Array, ...]) -> Array:
        # Converged factors round to 1 ± 1 ulp (an ulp above 1 is eps).
        return xp.abs(state[4] - 1.0) <= 3.0 * eps

    b = x + 1.0 - a
    d = 1.0 / floor(b)
    c = xp.full_like(x, 1.0 / tiny)
    start = (b, c, d, d, xp.zeros_like(x))
    return _loop(xp, _GAMMA_CF_TERMS, body, start, converged)[3]


def _gamma_domain(xp: Namespace, a: Array, x: Array) -> tuple[Array, Array, Array]:
    """``(inside, a_safe, x_safe)``: ``0 < a < inf``, ``0 < x < inf``; others replaced by 1."""
    inside = (a > 0.0) & (a < math.inf) & (x > 0.0) & (x < math.inf)
    return inside, xp.where(inside, a, 1.0), xp.where(inside, x, 1.0)


def gammainc_log_parts(
    xp: Namespace, a: Array, x: Array, log_x: Array | None = None
) -> tuple[Array, Array, Array]:
    """``(log P(a, x), log Q(a, x), log(x^a e^{-x}/Γ(a+1)))`` for ``a > 0``, ``0 < x < inf``.

    No underflow: the smaller of ``P`` and ``Q`` is computed directly in log form (series
    for ``x < a + 1``, continued fraction otherwise; quadratures for ``a > _LARGE_SHAPE``);
    the other is its complement. ``log_x`` may be passed in (``x`` itself may then
    underflow to 0).
    """
    log_front = log_gamma_front(xp, a, x, log_x)
    large = a > _LARGE_SHAPE
    use_series = (x < a + 1.0) & ~large
    use_cf = ~use_series & ~large
    xs = xp.where(use_series, x, 0.5 * a)  # placeholders chosen to converge fast
    xc = xp.where(use_cf, x, 2.0 * a + 2.0)
    log_lower = log_front + xp.log(_gamma_series(xp, a, xs)[0])
    log_upper = log_front + xp.log(a) + xp.log(_gamma_cf(xp, a, xc))
    log_p = xp.where(use_series, log_lower, xp.log1p(-xp.exp(log_upper)))
    log_q = xp.where(use_series, xp.log1p(-xp.exp(log_lower)), log_upper)
    a_large = xp.where(large, a, 2.0 * _LARGE_SHAPE)
    x_large = xp.where(large, x, 2.0 * _LARGE_SHAPE)
    log_p_large, log_q_large, _ = _only_if_any(
        xp, large, lambda: _large_shape_parts(xp, a_large, x_large), (x, x, x)
    )
    log_p = xp.where(large, log_p_large, log_p)
    log_q = xp.where(large, log_q_large, log_q)
    return log_p, log_q, log_front


def _gammainc_pair(xp: Namespace, a: Array, x: Array) -> tuple[Array, Array]:
    """``(P, Q)`` over the whole domain, with SciPy's conventions at the edges."""
    a, x = xp.broadcast_arrays(a, x)
    _, a_safe, x_safe = _gamma_domain(xp, a, x)
    log_p, log_q, _ = gammainc_log_parts(xp, a_safe, x_safe)
    lower = xp.exp(log_p)
    upper = xp.exp(log_q)
    # Edges (SciPy's limits): x = 0 or (a = inf, x finite) -> P = 0; x = inf or
    # (a = 0, x > 0) -> P = 1.
    at_zero = (x == 0.0) | ((a == math.inf) & (x < math.inf))
    at_one = (x == math.inf) | ((a == 0.0) & (x > 0.0))
    lower = xp.where(at_zero, 0.0, xp.where(at_one, 1.0, lower))
    upper = xp.where(at_zero, 1.0, xp.where(at_one, 0.0, upper))
    bad = (a < 0.0) | (x < 0.0) | xp.isnan(a) | xp.isnan(x)
    bad = bad | ((a == 0.0) & (x == 0.0)) | ((a == math.inf) & (x == math.inf))
    return xp.where(bad, math.nan, lower), xp.where(bad, math.nan, upper)


def gammainc(xp: Namespace, a: Array, x: Array) -> Array:
    """Regularised lower incomplete gamma function ``P(a, x)``."""
    return _gammainc_pair(xp, a, x)[0]


def gammaincc(xp: Namespace, a: Array, x: Array) -> Array:
    """Regularised upper incomplete gamma function ``Q(a, x) = 1 - P(a, x)``."""
    return _gammainc_pair(xp, a, x)[1]


def log_gamma_pdf(xp: Namespace, a: Array, x: Array) -> Array:
    """``log f(x; a)`` of the Gamma(a, 1) density, ``(a-1) log x - x - log Γ(a)``."""
    return log_gamma_front(xp, a, x) + xp.log(a) - xp.log(x)


def _gamma_tail_quadrature(xp: Namespace, a: Array, x: Array, lower: Array) -> tuple[Array, Array]:
    """``(log(T/f(x)), M)`` for a tail ``T`` of Gamma(a, 1) beyond ``x``, by Gauss–Laguerre.

    ``T = P(a, x)`` where ``lower`` (needs ``x < a - 1``), else ``Q(a, x)`` (needs
    ``x > a - 1`` for ``a > 1``); ``f`` is the Gamma(a, 1) density and
    ``∂T/∂a = T (log x - ψ(a) + M)``. With ``σ = ∓1`` (lower/upper), ``t = x + σu/λ``,
    ``λ = |a - 1 - x|/x`` the decay rate of ``t^{a-1} e^{-t}`` away from ``x`` (1 for the
    upper tail when ``a < 1``) and ``w = u/(λx)``: ``T = f(x)/λ · ∫ e^{-u} g(u) du`` with
    ``log g = (a-1) log(1 + σw) - σ(1 - σλ) x w`` (``(a-1)(log(1 + σw) - σw)`` unless
    ``a < 1``), smooth with ``g(0) = 1``; ``log t = log x + log(1 + σw)``, so
    ``M = ∫ log(1 + σw) dT / T``. (The lower tail ends at ``w = 1``, where ``g`` vanishes
    to order ``a - 1``.) One rule serves both tails, elementwise.
    """
    nodes, weights = _gamma_laguerre_rule(_LAGUERRE_NODES)
    shape = (1,) * x.ndim + (len(nodes),)
    u = xp.reshape(xp.asarray(nodes, dtype=x.dtype, device=_device(x)), shape)
    weight = xp.reshape(xp.asarray(weights, dtype=x.dtype, device=_device(x)), shape)
    sign = 1.0 - 2.0 * xp.astype(lower, x.dtype)  # -1 for the lower tail
    upper_rate = xp.where(a > 1.0, (x - a + 1.0) / x, 1.0)
    rate = xp.where(lower, (a - 1.0 - x) / x, upper_rate)
    w = u / (rate * x)[..., None]
    inside = ~lower[..., None] | (w < 1.0)
    w = xp.where(inside, w, 0.0)
    sign_e = sign[..., None]
    log_shift = xp.log1p(sign_e * w)
    drift = sign_e * (1.0 - sign_e * rate[..., None]) * x[..., None]
    exponent = (a[..., None] - 1.0) * log_shift - drift * w
    integrand = xp.where(inside, weight * xp.exp(exponent), 0.0)
    total = xp.sum(integrand, axis=-1)
    moment = xp.sum(integrand * log_shift, axis=-1) / total
    # (The caller adds log f(x), computed together with other points: fewer ops to compile.)
    return xp.log(total) - xp.log(rate), moment


@cache
def _legendre_rule(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    # Constants of the algorithm (see _laguerre_rule).
    import scipy.special

    nodes, weights = scipy.special.roots_legendre(n)
    return tuple(float(v) for v in nodes), tuple(float(w) for w in weights)


@cache
def _gamma_laguerre_rule(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    # SciPy's Gauss–Laguerre weights are accurate to rounding; numpy's laggauss(96) ones
    # carry relative errors near 1e-13, which showed in the incomplete gamma tails.
    import scipy.special

    nodes, weights = scipy.special.roots_laguerre(n)
    return tuple(float(v) for v in nodes), tuple(float(w) for w in weights)


def _gamma_band_nodes(xp: Namespace, x: Array, x_hi: Array) -> tuple[Array, Array]:
    """Gauss–Legendre nodes ``t`` and weights on ``[x, x_hi]`` (trailing axis), for
    integrals of the Gamma(a, 1) density, which is smooth on the scale ``sqrt(a)`` of the
    interval."""
    nodes, weights = _legendre_rule(_LEGENDRE_NODES)
    shape = (1,) * x.ndim + (len(nodes),)
    s = xp.reshape(xp.asarray(nodes, dtype=x.dtype, device=_device(x)), shape)
    weight = xp.reshape(xp.asarray(weights, dtype=x.dtype, device=_device(x)), shape)
    half = (0.5 * (x_hi - x))[..., None]
    return (0.5 * (x_hi + x))[..., None] + half * s, half * weight


def _large_shape_parts(xp: Namespace, a: Array, x: Array) -> tuple[Array, Array, Array]:
    """``(log P, log Q, ∂P/∂a)`` for large ``a`` (``a > _LARGE_SHAPE``), ``x > 0``.

    Lower-tail quadrature below ``a - 1 - sqrt(a)``, upper-tail quadrature above
    ``x_hi = a + 1 + sqrt(a)``, and in between ``Q(x) = Q(x_hi) + ∫_x^{x_hi} f`` (likewise
    for ``∂Q/∂a``); each piece is a smooth integral of the density over a few of its
    standard deviations or a tail, and the smaller of ``P``, ``Q`` is computed directly.
    """
    root = xp.sqrt(a)
    x_lo = a - 1.0 - root
    x_hi = a + 1.0 + root
    in_lower = x <= x_lo
    in_upper = x >= x_hi
    in_band = ~in_lower & ~in_upper
    tiny = xp.finfo(x.dtype).smallest_normal
    # Each element needs one tail: P at x (lower), Q at x (upper), or Q at x_hi (band).
    x_tail = xp.where(in_lower, xp.maximum(x, tiny), xp.where(in_upper, x, x_hi))
    log_tail, moment = _gamma_tail_quadrature(xp, a, x_tail, in_lower)
    nodes, weights = _gamma_band_nodes(xp, xp.where(in_band, x, a), x_hi)
    # One evaluation of the log density at the tail point and the band's nodes.
    points = xp.concat([x_tail[..., None], nodes], axis=-1)
    log_pdf = log_gamma_pdf(xp, xp.broadcast_to(a[..., None], points.shape), points)
    log_tail = log_tail + log_pdf[..., 0]
    psi = _digamma(xp, a)
    density = weights * xp.exp(log_pdf[..., 1:])
    mass = xp.where(in_band, xp.sum(density, axis=-1), 0.0)
    centred_moment = xp.where(
        in_band, xp.sum(density * (xp.log(nodes) - psi[..., None]), axis=-1), 0.0
    )
    tail = xp.exp(log_tail)
    d_tail = tail * (xp.log(x_tail) - psi + moment)
    # Q in the band is Q(x_hi) plus the mass between x and x_hi.
    upper = tail + mass
    log_p = xp.where(in_lower, log_tail, xp.log1p(-upper))
    log_q = xp.where(in_lower, xp.log1p(-tail), xp.where(in_upper, log_tail, xp.log(upper)))
    d_p = xp.where(in_lower, d_tail, -(d_tail + centred_moment))
    return log_p, log_q, d_p


def gammainc_da(xp: Namespace, a: Array, x: Array) -> Array:
    """``∂P(a, x)/∂a`` (``= -∂Q/∂a``) for ``a > 0``, ``0 < x < inf``.

    Series (differentiated term by term) below ``x = a + 1 + sqrt(a)``; above it
    ``-∂Q/∂a`` from the upper-tail quadrature, so both tails keep relative accuracy;
    quadratures throughout for ``a > _LARGE_SHAPE``.
    """
    large = a > _LARGE_SHAPE
    use_upper = (x > a + 1.0 + _GAMMA_UPPER_SD * xp.sqrt(a)) & ~large
    use_series = ~use_upper & ~large
    # Placeholders (cheap and valid) where a branch is not used.
    xs = xp.where(use_series, x, 0.5 * a)
    xq = xp.where(use_upper, x, 2.0 * a + 2.0 + 2.0 * _GAMMA_UPPER_SD * xp.sqrt(a))
    a_large = xp.where(large, a, 2.0 * _LARGE_SHAPE)
    x_large = xp.where(large, x, 2.0 * _LARGE_SHAPE)
    total, weighted = _gamma_series(xp, a, xs, derivative=True)
    # log(x^a e^{-x}/Γ(a+1)) at the series point and at the tail point in one evaluation
    # (log f(x) = that + log a - log x).
    both = log_gamma_front(xp, xp.stack([a, a]), xp.stack([xs, xq]))
    series = xp.exp(both[0]) * ((xp.log(xs) - _digamma(xp, a + 1.0)) * total - weighted)
    log_q, moment = _gamma_tail_quadrature(xp, a, xq, xq < 0.0)  # upper tails only
    log_q = log_q + both[1] + xp.log(a) - xp.log(xq)
    upper = -xp.exp(log_q) * (xp.log(xq) - _digamma(xp, a) + moment)
    from_large = _only_if_any(
        xp, large, lambda: _large_shape_parts(xp, a_large, x_large), (x, x, x)
    )[2]
    return xp.where(large, from_large, xp.where(use_upper, upper, series))


def gammaincinv(xp: Namespace, a: Array, p: Array) -> Array:
    """Inverse of ``P(a, ·)``: the ``x`` with ``P(a, x) = p``.

    Halley steps in ``y = log x`` on ``log P`` (``p <= 1/2``) or ``log Q`` (``p > 1/2``),
    both concave in ``y`` (the log-gamma density is log-concave), from the larger of the
    small-``x`` power law and Wilson–Hilferty (lower side), or the larger of
    Wilson–Hilferty and the exponential tail (upper side).
    """
    a, p = xp.broadcast_arrays(a, p)
    valid_a = (a > 0.0) & (a < math.inf)
    safe_a = xp.where(valid_a, a, 1.0)
    upper = p > 0.5
    q = xp.where(upper, 1.0 - p, p)  # the smaller tail probability (exact for p >= 1/2)
    tiny = _TINY if p.dtype == xp.float64 else 1e-37
    q = xp.clip(xp.where(xp.isnan(q), 0.5, q), tiny, 0.5)
    log_q = xp.log(q)
    # Wilson–Hilferty: (x/a)^{1/3} is nearly normal with mean 1 - 1/(9a), variance 1/(9a);
    # the normal quantile from Abramowitz–Stegun 26.2.23 (|error| < 4.5e-4) is start enough.
    t = xp.sqrt(-2.0 * log_q)
    z = t - (2.515517 + t * (0.802853 + t * 0.010328)) / (
        1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308))
    )
    z = xp.where(upper, z, -z)
    base = 1.0 - 1.0 / (9.0 * safe_a) + z / (3.0 * xp.sqrt(safe_a))
    log_wh = xp.where(base > 0.0, 3.0 * xp.log(xp.where(base > 0.0, base, 1.0)), -math.inf)
    log_wh = log_wh + xp.log(safe_a)
    # Lower tail: P <= x^a/Γ(a+1), so its root lies left of the true one.
    log_gamma_a = _lgamma(xp, safe_a)
    log_power = (log_q + log_gamma_a + xp.log(safe_a)) / safe_a
    # Upper tail: Q ≈ x^{a-1} e^{-x}/Γ(a), two fixed-point steps on x = -log(qΓ(a)) + (a-1)log x.
    tail_x = xp.maximum(-log_q - log_gamma_a, 1.0)
    for _ in range(2):
        tail_x = xp.maximum(-log_q - log_gamma_a + (safe_a - 1.0) * xp.log(tail_x), 1.0)
    y_lower = xp.maximum(log_power, log_wh)
    y_upper = xp.maximum(xp.log(tail_x), log_wh)
    y = xp.where(upper, y_upper, y_lower)
    # Below exp(log_min) the quantile underflows to 0 (tiny p, small a), as in SciPy.
    log_min = 1.5 * math.log(tiny) / 0.01
    log_max = math.log(xp.finfo(p.dtype).max) - 1.0

    eps = _eps(xp, p)

    def halley(y: Array) -> tuple[Array, Array]:
        x = xp.exp(y)
        log_p, log_qq, log_front = gammainc_log_parts(xp, safe_a, x, y)
        log_xf = log_front + xp.log(safe_a)  # log(x f(x))
        # h(y) = log P(e^y): h' = r = x f/P, h'' = r (a - x - r); for log Q: r = -x f/Q and
        # h'' = r (a - x - r) as well.
        log_tail = xp.where(upper, log_qq, log_p)
        ratio = xp.exp(log_xf - log_tail)
        ratio = xp.where(upper, -ratio, ratio)
        residual = log_tail - log_q
        second = ratio * (safe_a - x - ratio)
        step = 2.0 * residual * ratio / (2.0 * ratio * ratio - residual * second)
        newton = residual / ratio
        # Halley's step where it agrees in sign with Newton's; clip long steps.
        step = xp.where(step * newton > 0.0, step, newton)
        step = xp.clip(xp.where(xp.isfinite(step), step, 0.0), -5.0, 5.0)
        return xp.clip(y - step, log_min, log_max), step

    def converged(state: tuple[Array, Array]) -> Array:
        # Convergence is cubic: once a step is this small the next one is negligible.
        return xp.abs(state[1]) < 1e3 * eps

    y, _ = _loop(
        xp,
        _GAMMAINCINV_HALLEY,
        lambda _, state: halley(state[0]),
        (y, xp.full_like(y, math.inf)),
        converged,
        check_every=1,
    )
    x = xp.exp(y)
    # SciPy's conventions: p = 0 -> 0 and p = 1 -> inf for every a >= 0 (a = 0 and a = inf
    # included); a < 0, NaN, or p outside [0, 1] -> NaN.
    edge = (p == 0.0) | (p == 1.0)
    x = xp.where(p == 0.0, 0.0, xp.where(p == 1.0, math.inf, x))
    bad = (a < 0.0) | xp.isnan(a) | (p < 0.0) | (p > 1.0) | xp.isnan(p) | (~valid_a & ~edge)
    return xp.where(bad, math.nan, x)
