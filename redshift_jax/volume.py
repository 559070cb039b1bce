"""Local (star-domain) volume of a network in parameter space (DESIGN.md section 14; Scherlis & Belrose, arXiv
2501.18812; the estimator of EleutherAI's ``tyche``).

How much of parameter space around ``w0`` behaves like ``w0``: the set of parameters ``w`` with ``C(w) < epsilon``
for a cost ``C`` with ``C(w0) = 0``, taken as a *star domain* around ``w0`` (every ray from ``w0`` leaves it once,
at radius ``r(u)`` along the unit direction ``u``). Its measure is an average over directions::

    vol = E_u[ S_{D-1} \\int_0^{r(u)} t^(D-1) p(w0 + t u) dt ],   S_{D-1} = D V_D (the unit sphere's area)

with ``p`` the Gaussian prior ``N(0, sigma^2 I)`` (``measure="gaussian"``; ``sigma`` = RMS of ``w0`` unless
given) or the constant 1 (``measure="uniform"``: the volume ``V_D r(u)^D``). Each direction gives one
log-value ``l_i``; the estimate is ``logsumexp(l) - log n``::

    import redshift_jax as rj
    est = rj.volume.log_volume(cost_fn, w0, key, n_directions=100, epsilon=1e-2)   # any cost_fn(w) -> scalar
    est.log_volume, est.per_parameter, est.log_masses, est.radii, est.unbracketed
    cost_fn, w0 = rj.volume.network_cost(model, params, inputs, cost="kl")      # a network's cost on its inputs

and as the sweep measure ``("volume", {...})`` (arguments below). Everything is pure jnp, jit- and vmap-safe
(over directions inside, over networks outside); the structural arguments (``n_directions``, ``measure``,
``max_steps``) are static, ``epsilon``, ``rtol`` and ``sigma`` may be traced.

Radius search (``star_radii``): along each direction, ``r = 1`` and doubling while ``C(w0 + r u) < epsilon``;
once a cost at or above ``epsilon`` is seen the radius is bracketed and bisected (from ``[0, 1]`` when ``C`` at
``r = 1`` is already too large) until ``|C - epsilon| <= rtol * epsilon``, in at most ``max_steps`` (100) cost
evaluations per direction, all directions batched in one ``lax.while_loop``. A non-finite cost counts as "too
far" (the function broke). A direction that never brackets has ``r = inf`` (``unbracketed``); one bracketed but
not converged within the budget keeps the bracket's midpoint (``unconverged``).

The ray integral (``gaussian_log_mass``) is evaluated in units of ``sigma`` (``s = t / sigma``, ``z = w0 /
sigma``, ``beta = u . z``): ``|z + s u|^2 = |z|^2 - beta^2 + (s + beta)^2``, the integrand ``s^(D-1) exp(-(s +
beta)^2 / 2)`` is log-concave with its peak at ``s* = (-beta + sqrt(beta^2 + 4 (D - 1))) / 2``, and with ``m =
min(s*, R)``::

    l = (D-1)/2 log(m^2 / D) + (D - |z|^2 - m^2 - 2 beta m) / 2 - log(pi) / 2 - c(D/2)
        + log \\int_0^R exp(phi(s) - phi(m)) ds

where ``c(x) = lgamma(x) - ((x - 1/2) log x - x + log(2 pi) / 2)`` is Stirling's remainder (float64, D is
static) and ``phi`` the integrand's log. The terms of size ``D log D`` cancel analytically here (``m^2 - D = -1 -
beta m`` at the peak), so nothing large is subtracted in float32. The last integral runs over the part of
``[0, R]`` where ``phi`` is within 40 nats of ``phi(m)`` (bounds from concavity), 48 Gauss-Legendre nodes on each
side of ``m``, in log space, with ``phi(m + d) - phi(m) = (D-1) (log1p(d/m) - d/m) + phi'(m) d - d^2 / 2`` (a
series for small ``d/m``). It is exact for ``R = inf`` (no truncation) and accurate to float32 rounding for ``D``
from 1 to 1e6 and ``R`` from 1e-6 to inf (tests: scipy quadrature at small D, the incomplete-gamma form when ``u``
is orthogonal to ``w0``).

Costs (``network_cost``): ``"kl"``, the mean over inputs of ``KL(p_w0(.|x) || p_w(.|x))`` for softmax logits (a
scalar logit is a Bernoulli); ``"mse"``, the mean squared difference of the outputs; ``"nmse"``, the MSE divided
by the variance of ``f_w0`` over the inputs (invariant to the output's scale, for scalar fields whose size
varies by orders of magnitude across a sweep).

Directions in a sweep: the measure has no network key, so a network's directions come from
``direction_key(w0, seed)``: the fixed key ``key(seed)`` folded with a 32-bit hash of ``w0``'s bits (an integer
sum, exact in any order). It is a pure function of the network (chunk size, device count and the rest of the
grid do not change it), two networks never share directions unless they share every parameter, and re-running
``log_volume`` on the same network with ``direction_key(w0, seed)`` gives the sweep's number.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .errors import ConfigError
from .measures.base import register_measure

__all__ = ["MEASURES", "COSTS", "STATISTICS", "MAX_STEPS", "StarRadii", "VolumeEstimate", "star_radii",
           "log_volume", "gaussian_log_mass", "uniform_log_mass", "random_directions", "direction_key",
           "network_cost", "network_log_volume", "check_volume_args", "log_ball_volume"]

MEASURES = ("gaussian", "uniform")
COSTS = ("kl", "mse", "nmse")
STATISTICS = ("log_volume", "mean_log", "per_parameter", "log_radius_mean", "radius_median", "unconverged",
              "unbracketed")
MAX_STEPS = 100
_TAIL_NATS = 40.0   # the ray integral keeps the part of [0, R] within this many nats of the integrand's peak
_NODES = 48         # Gauss-Legendre nodes on each side of the peak
_HASH_MULT = (0x9E3779B1, 0x85EBCA77, 0x2C1B3C6D)


# ------------------------------------------------------------------------------------------------------------
# the radius search

class StarRadii(NamedTuple):
    """Where each ray leaves the star domain.

    Attributes:
      radius: (n,) the radius r with ``|C(w0 + r u) - epsilon| <= rtol * epsilon``; inf where never bracketed.
      converged: (n,) True where that tolerance was met within the step budget.
      bracketed: (n,) True where a cost >= epsilon was seen.
      steps: (n,) cost evaluations spent.
    """

    radius: jax.Array
    converged: jax.Array
    bracketed: jax.Array
    steps: jax.Array


def _check_max_steps(max_steps) -> int:
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ConfigError(f"max_steps={max_steps!r} is not allowed; allowed: an integer >= 1")
    return int(max_steps)


def star_radii(cost_fn: Callable, w0, directions, epsilon, rtol=1e-2, max_steps: int = MAX_STEPS) -> StarRadii:
    """The radius along each direction where ``cost_fn`` first reaches ``epsilon`` (see the module docstring).

    Args:
      cost_fn: ``cost_fn(w) -> scalar`` on a flat parameter vector, 0 at ``w0`` and growing away from it.
      w0: (D,) the centre.
      directions: (n, D) unit directions.
      epsilon: the cost threshold (> 0; may be traced).
      rtol: stop when ``|C - epsilon| <= rtol * epsilon``.
      max_steps: cost evaluations per direction (static).

    Returns:
      ``StarRadii`` with (n,) arrays.

    Example:
      >>> import jax.numpy as jnp, redshift_jax as rj
      >>> out = rj.volume.star_radii(lambda w: jnp.sum(w ** 2), jnp.zeros(2), jnp.eye(2), 0.25)
      >>> [round(float(r), 3) for r in out.radius]
      [0.5, 0.5]
    """
    max_steps = _check_max_steps(max_steps)
    w0 = jnp.asarray(w0, jnp.float32)
    directions = jnp.asarray(directions, jnp.float32)
    if w0.ndim != 1 or directions.ndim != 2 or directions.shape[1] != w0.shape[0]:
        raise ConfigError(f"star_radii: w0 has shape {w0.shape} and directions {directions.shape}; allowed: w0 (D,) "
                          "and directions (n, D)")
    epsilon = jnp.asarray(epsilon, jnp.float32)
    tol = jnp.asarray(rtol, jnp.float32) * epsilon
    n = directions.shape[0]
    costs = jax.vmap(lambda r, u: cost_fn(w0 + r * u))
    inf = jnp.float32(jnp.inf)

    def cond(state):
        _, _, _, done, step, _ = state
        return jnp.any(~done) & (step < max_steps)

    def body(state):
        lo, hi, r, done, step, used = state
        c = costs(r, directions).astype(jnp.float32)
        c = jnp.where(jnp.isnan(c), inf, c)
        close = jnp.abs(c - epsilon) <= tol
        below = c < epsilon
        new_lo = jnp.where(below, r, lo)
        new_hi = jnp.where(below, hi, r)
        next_r = jnp.where(jnp.isfinite(new_hi), (new_lo + new_hi) / 2, 2 * r)
        active = ~done
        return (jnp.where(active, new_lo, lo), jnp.where(active, new_hi, hi),
                jnp.where(active & ~close, next_r, r), done | close, step + 1, used + active.astype(jnp.int32))

    start = (jnp.zeros(n, jnp.float32), jnp.full(n, inf), jnp.ones(n, jnp.float32), jnp.zeros(n, bool),
             jnp.int32(0), jnp.zeros(n, jnp.int32))
    lo, hi, r, done, _, used = jax.lax.while_loop(cond, body, start)
    bracketed = jnp.isfinite(hi)
    radius = jnp.where(done, r, jnp.where(bracketed, (lo + hi) / 2, inf))
    return StarRadii(radius, done, bracketed, used)


# ------------------------------------------------------------------------------------------------------------
# the per-direction mass of the ray segment

@functools.lru_cache(maxsize=None)
def _legendre(count: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(count)
    return ((x + 1) / 2).astype(np.float32), np.log(w / 2).astype(np.float32)


def _stirling_remainder(x: float) -> float:
    """``lgamma(x) - ((x - 1/2) log x - x + log(2 pi) / 2)`` in float64 (small: 1/(12 x) for large x)."""
    return math.lgamma(x) - ((x - 0.5) * math.log(x) - x + 0.5 * math.log(2 * math.pi))


def _log1p_minus_x(x):
    """``log1p(x) - x`` without cancellation for small ``|x|`` (an atanh series), direct otherwise."""
    y = x / (2 + x)
    y2 = y * y
    series = y2 * y * (2 / 3 + y2 * (2 / 5 + y2 * (2 / 7 + y2 * (2 / 9 + y2 * (2 / 11 + y2 * (2 / 13))))))
    small = -x * x / (2 + x) + series
    safe = jnp.where(jnp.abs(x) < 0.25, 0.0, x)
    return jnp.where(jnp.abs(x) < 0.25, small, jnp.log1p(safe) - safe)


def log_ball_volume(dim: int) -> float:
    """``log V_D``, the log volume of the unit ball in ``dim`` dimensions (float64)."""
    return 0.5 * dim * math.log(math.pi) - math.lgamma(dim / 2 + 1)


def gaussian_log_mass(radius, offset, norm_sq, dim: int):
    """One ray's log Gaussian mass, in units of sigma: ``log(S_{D-1} (2 pi)^(-D/2) int_0^R s^(D-1) exp(-|z + s
    u|^2 / 2) ds)``.

    Args:
      radius: ``R = r / sigma`` (>= 0, may be inf); any shape.
      offset: ``beta = u . z`` with ``z = w0 / sigma`` (same shape as ``radius``).
      norm_sq: ``|z|^2`` (broadcast).
      dim: ``D`` (static).

    Returns:
      float32 ``l`` of the broadcast shape (``-inf`` where ``R = 0``). With ``R = inf`` and ``z = 0`` it is 0 (the
      whole Gaussian); averaged over uniform directions, ``exp(l)`` is the Gaussian mass of the star domain.
    """
    D = int(dim)
    if D < 1:
        raise ConfigError(f"gaussian_log_mass: dim={dim!r} is not allowed; allowed: an integer >= 1")
    R = jnp.asarray(radius, jnp.float32)
    beta = jnp.asarray(offset, jnp.float32)
    R, beta = jnp.broadcast_arrays(R, beta)
    zz = jnp.asarray(norm_sq, jnp.float32)
    k = jnp.float32(D - 1)
    if D == 1:
        peak = jnp.maximum(-beta, 0.0)
    else:
        root = jnp.sqrt(beta * beta + 4 * k)
        peak = jnp.where(beta >= 0, 2 * k / (beta + root), (root - beta) / 2)
    interior = R >= peak
    m = jnp.minimum(peak, R)
    m_safe = jnp.where(m > 0, m, 1.0)
    # phi'(m): 0 at an interior peak, > 0 when the ray ends before it; < 0 only for D = 1 with the maximum at s = 0
    if D > 1:
        slope = jnp.maximum(jnp.where(interior, 0.0, k / m_safe - m - beta), 0.0)
    else:
        slope = -(m + beta)
    tail = jnp.float32(_TAIL_NATS)
    # sqrt(2 tail / curvature) with curvature -phi''(m) = k / m^2 + 1, written so that a tiny m cannot overflow it
    curve_width = jnp.sqrt(2 * tail) * m_safe / jnp.sqrt(k + m_safe * m_safe)

    def decay(rate):  # beyond tail / rate the tangent line has fallen by more than tail nats
        return jnp.where(rate > 0, tail / jnp.where(rate > 0, rate, 1.0), jnp.inf)

    left = jnp.minimum(jnp.minimum(m, curve_width), decay(slope))
    right = jnp.where(interior, jnp.minimum(jnp.minimum(R - m, jnp.sqrt(2 * tail)), decay(-slope)), 0.0)

    nodes, log_weights = _legendre(_NODES)

    def log_integral(lo, hi):  # log int_lo^hi exp(phi(m + d) - phi(m)) dd, lo <= 0 <= hi relative to m
        width = hi - lo
        d = lo[..., None] + width[..., None] * nodes
        drop = slope[..., None] * d - d * d / 2
        if D > 1:
            drop = drop + k * _log1p_minus_x(d / m_safe[..., None])
        safe_width = jnp.where(width > 0, width, 1.0)
        out = jax.nn.logsumexp(drop + log_weights, axis=-1) + jnp.log(safe_width)
        return jnp.where(width > 0, out, -jnp.inf)

    zero = jnp.zeros_like(m)
    log_int = jnp.logaddexp(log_integral(-left, zero), log_integral(zero, right))
    if D > 1:
        sq_minus_d = jnp.where(interior, -1.0 - beta * m, (m - math.sqrt(D)) * (m + math.sqrt(D)))
        ratio = sq_minus_d / D   # m^2 / D - 1: log1p near the peak, log when m^2 << D (1 + ratio would round)
        peak_log = k / 2 * jnp.where(ratio > -0.5, jnp.log1p(jnp.maximum(ratio, -0.5)),
                                     2 * jnp.log(m_safe) - math.log(D))
    else:
        sq_minus_d = m * m - 1.0
        peak_log = jnp.zeros_like(m)
    const = -0.5 * math.log(math.pi) - _stirling_remainder(D / 2)
    log_mass = peak_log + (-sq_minus_d - zz - 2 * beta * m) / 2 + jnp.float32(const) + log_int
    return jnp.where(R > 0, log_mass, -jnp.inf).astype(jnp.float32)


def uniform_log_mass(radius, dim: int):
    """``log(V_D r^D)``: the log volume of the ball of radius ``r`` (per direction: the star domain's volume is
    the average of ``V_D r(u)^D``). ``-inf`` at ``r = 0``, ``inf`` at ``r = inf``."""
    D = int(dim)
    r = jnp.asarray(radius, jnp.float32)
    return (jnp.float32(log_ball_volume(D)) + D * jnp.log(r)).astype(jnp.float32)


# ------------------------------------------------------------------------------------------------------------
# the estimator

class VolumeEstimate(NamedTuple):
    """``log_volume``'s result: jnp arrays, so it vmaps over networks.

    Attributes:
      log_volume: the estimate ``logsumexp(l) - log n`` (nats).
      mean_log: ``mean(l)`` (a lower bound in expectation, by Jensen).
      per_parameter: ``log_volume / D``.
      log_masses: (n,) the per-direction values ``l_i``.
      radii: (n,) the radius along each direction (inf where never bracketed).
      log_radius_mean: mean of ``log r`` over the bracketed directions (NaN if none).
      radius_median: median radius (inf counted as the largest).
      unconverged: directions bracketed but not within ``rtol`` after the step budget (int32).
      unbracketed: directions that never reached epsilon (r = inf; int32).
      sigma: the Gaussian's sigma (the RMS of ``w0`` unless given; NaN for the uniform measure).
    """

    log_volume: jax.Array
    mean_log: jax.Array
    per_parameter: jax.Array
    log_masses: jax.Array
    radii: jax.Array
    log_radius_mean: jax.Array
    radius_median: jax.Array
    unconverged: jax.Array
    unbracketed: jax.Array
    sigma: jax.Array


def random_directions(key, n_directions: int, dim: int):
    """(n, D) float32 unit vectors, uniform on the sphere (normalized Gaussians)."""
    u = jax.random.normal(key, (int(n_directions), int(dim)), jnp.float32)
    return u / jnp.linalg.norm(u, axis=1, keepdims=True)


def direction_key(w0, seed: int = 0):
    """The directions' key of a network: ``fold_in(key(seed), hash(w0))``, a pure function of the parameters.

    The hash mixes every float32 bit pattern with its position and sums the 32-bit results (integer addition:
    the same in any order, so the same under any vmap, chunking or device split).
    """
    w0 = jnp.asarray(w0, jnp.float32).reshape(-1)
    bits = jax.lax.bitcast_convert_type(w0, jnp.uint32)
    index = jnp.arange(w0.shape[0], dtype=jnp.uint32)
    h = bits * jnp.uint32(_HASH_MULT[0]) + index * jnp.uint32(_HASH_MULT[1])
    h = h ^ (h >> 15)
    h = h * jnp.uint32(_HASH_MULT[2])
    h = h ^ (h >> 13)
    return jax.random.fold_in(jax.random.key(seed), jnp.sum(h, dtype=jnp.uint32))


def _check_measure_name(measure) -> str:
    if measure not in MEASURES:
        raise ConfigError(f"measure={measure!r} is not allowed; allowed: {', '.join(MEASURES)}")
    return measure


def log_volume(cost_fn: Callable, w0, key, n_directions: int = 100, epsilon=1e-2, sigma=None,
               measure: str = "gaussian", rtol=1e-2, max_steps: int = MAX_STEPS) -> VolumeEstimate:
    """Estimate the log measure of the star domain ``{w: C(w) < epsilon}`` around ``w0``.

    Args:
      cost_fn: ``cost_fn(w) -> scalar`` on a flat (D,) vector, 0 at ``w0``.
      w0: (D,) the centre.
      key: PRNG key of the directions (``n_directions`` normalized Gaussians).
      n_directions: number of rays (static).
      epsilon: the cost threshold (> 0).
      sigma: the Gaussian prior's standard deviation (default: the RMS of ``w0``); ignored for ``"uniform"``.
      measure: ``"gaussian"`` (``N(0, sigma^2 I)``) or ``"uniform"`` (Lebesgue volume).
      rtol: the radius search's relative tolerance on the cost.
      max_steps: cost evaluations per direction (static).

    Returns:
      ``VolumeEstimate`` (``log_volume``, ``per_parameter``, per-direction ``log_masses`` and ``radii``, ...).

    Example:
      >>> import jax, jax.numpy as jnp, redshift_jax as rj
      >>> est = rj.volume.log_volume(lambda w: jnp.sum(w ** 2), jnp.zeros(3), jax.random.key(0),
      ...                            n_directions=8, epsilon=1.0, measure="uniform")
      >>> round(float(est.log_volume), 2)   # the unit ball: log(4 pi / 3)
      1.43
    """
    _check_measure_name(measure)
    n_directions = int(n_directions)
    if n_directions < 1:
        raise ConfigError(f"n_directions={n_directions!r} is not allowed; allowed: an integer >= 1")
    w0 = jnp.asarray(w0, jnp.float32)
    if w0.ndim != 1:
        raise ConfigError(f"log_volume: w0 has shape {w0.shape}; allowed: a flat (D,) vector (ravel_pytree)")
    dim = w0.shape[0]
    directions = random_directions(key, n_directions, dim)
    found = star_radii(cost_fn, w0, directions, epsilon, rtol, max_steps)
    radii = found.radius
    if measure == "gaussian":
        sq = jnp.sum(w0 * w0)
        if sigma is None:
            sigma = jnp.sqrt(sq / dim)
            norm_sq = jnp.float32(dim)
        else:
            sigma = jnp.asarray(sigma, jnp.float32)
            norm_sq = sq / (sigma * sigma)
        logs = gaussian_log_mass(radii / sigma, directions @ w0 / sigma, norm_sq, dim)
    else:
        sigma = jnp.float32(jnp.nan)
        logs = uniform_log_mass(radii, dim)
    estimate = jax.nn.logsumexp(logs) - jnp.log(jnp.float32(n_directions))
    finite = jnp.isfinite(radii)
    n_finite = jnp.sum(finite)
    log_r = jnp.where(finite, jnp.log(jnp.where(finite, radii, 1.0)), 0.0)
    log_radius_mean = jnp.where(n_finite > 0, jnp.sum(log_r) / jnp.maximum(n_finite, 1), jnp.nan)
    return VolumeEstimate(
        log_volume=estimate.astype(jnp.float32), mean_log=jnp.mean(logs).astype(jnp.float32),
        per_parameter=(estimate / dim).astype(jnp.float32), log_masses=logs, radii=radii,
        log_radius_mean=log_radius_mean.astype(jnp.float32), radius_median=jnp.median(radii).astype(jnp.float32),
        unconverged=jnp.sum(found.bracketed & ~found.converged, dtype=jnp.int32),
        unbracketed=jnp.sum(~found.bracketed, dtype=jnp.int32), sigma=jnp.asarray(sigma, jnp.float32))


# ------------------------------------------------------------------------------------------------------------
# costs of networks

def _as_logits(out):
    """Per-input logits with a class axis: a scalar logit ``a`` is the Bernoulli ``softmax([0, a])``."""
    out = jnp.asarray(out)
    if out.ndim == 1:
        return jnp.stack([jnp.zeros_like(out), out], axis=-1)
    return out


def network_cost(model, params, inputs, cost: str = "kl", **apply_kwargs):
    """``(cost_fn, w0)``: a network's cost on ``inputs`` as a function of its flat parameter vector.

    Args:
      model: anything with ``apply(params, inputs, **apply_kwargs)`` (e.g. ``rj.MLP``).
      params: the network's parameters (a pytree; raveled with ``jax.flatten_util.ravel_pytree``).
      inputs: the evaluation inputs (the sweep's grid, the modular-sum lattice...).
      cost: ``"kl"`` (mean over inputs of ``KL(p_w0 || p_w)``, softmax over the last axis of the output; a
        scalar output is a Bernoulli logit), ``"mse"`` (mean squared difference of the outputs) or ``"nmse"``
        (the MSE over the variance of ``f_w0`` across the inputs).
      apply_kwargs: passed to ``model.apply`` (e.g. ``prefactor``).

    Returns:
      ``(cost_fn, w0)`` with ``cost_fn(w0) == 0``.
    """
    if cost not in COSTS:
        raise ConfigError(f"cost={cost!r} is not allowed; allowed: {', '.join(COSTS)}")
    w0, unravel = ravel_pytree(params)
    w0 = w0.astype(jnp.float32)
    reference = model.apply(params, inputs, **apply_kwargs)
    if cost == "kl":
        ref_logp = jax.nn.log_softmax(_as_logits(reference), axis=-1)
        ref_p = jnp.exp(ref_logp)

        def cost_fn(w):
            logq = jax.nn.log_softmax(_as_logits(model.apply(unravel(w), inputs, **apply_kwargs)), axis=-1)
            return jnp.mean(jnp.sum(ref_p * (ref_logp - logq), axis=-1))
    else:
        scale = jnp.float32(1.0)
        if cost == "nmse":
            scale = jnp.maximum(jnp.var(reference), jnp.finfo(jnp.float32).tiny)

        def cost_fn(w):
            return jnp.mean(jnp.square(model.apply(unravel(w), inputs, **apply_kwargs) - reference)) / scale

    return cost_fn, w0


def network_log_volume(model, params, inputs, key=None, cost: str = "kl", n_directions: int = 100, epsilon=1e-2,
                       sigma=None, measure: str = "gaussian", rtol=1e-2, seed: int = 0,
                       max_steps: int = MAX_STEPS, **apply_kwargs) -> VolumeEstimate:
    """``log_volume`` of a network's cost on ``inputs``; ``key=None`` uses ``direction_key(w0, seed)`` (what the
    sweep measure does)."""
    cost_fn, w0 = network_cost(model, params, inputs, cost, **apply_kwargs)
    key = direction_key(w0, seed) if key is None else key
    return log_volume(cost_fn, w0, key, n_directions, epsilon, sigma, measure, rtol, max_steps)


# ------------------------------------------------------------------------------------------------------------
# the sweep measure (a network measure, DESIGN.md section 11) and argument checks

VOLUME_ARGS = {"cost": "kl", "epsilon": 1e-2, "n_directions": 100, "measure": "gaussian", "sigma": None,
               "rtol": 1e-2, "seed": 0, "statistic": "log_volume", "resolution": None, "max_steps": MAX_STEPS}


def _positive_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _positive_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= 1


def check_volume_args(owner: str, args: dict, allowed=tuple(VOLUME_ARGS)) -> None:
    """ConfigError naming the argument, its value and what is allowed, for the volume measure's arguments."""
    for name in args:
        if name not in allowed:
            raise ConfigError(f"{owner} has no argument {name!r}; allowed: {', '.join(allowed)}")
    checks = {
        "cost": (lambda v: v in COSTS, ", ".join(COSTS)),
        "measure": (lambda v: v in MEASURES, ", ".join(MEASURES)),
        "statistic": (lambda v: v in STATISTICS, ", ".join(STATISTICS)),
        "epsilon": (_positive_number, "a finite number > 0"),
        "rtol": (lambda v: _positive_number(v) and v < 1, "a number in (0, 1)"),
        "sigma": (lambda v: v is None or _positive_number(v), "None (the RMS of the parameters) or a number > 0"),
        "n_directions": (_positive_int, "an integer >= 1"),
        "max_steps": (_positive_int, "an integer >= 1"),
        "resolution": (lambda v: v is None or (_positive_int(v) and v >= 2),
                       "None (the sweep's grid) or an integer >= 2"),
        "seed": (lambda v: not isinstance(v, bool) and isinstance(v, (int, np.integer)) and 0 <= v < 2 ** 31,
                 "an integer in 0 .. 2**31 - 1"),
    }
    for name, value in args.items():
        ok, what = checks[name]
        if not ok(value):
            raise ConfigError(f"{owner}: {name}={value!r} is not allowed; allowed: {what}")


def _cost_inputs(inputs, resolution):
    """The sweep's grid, or a coarser ``resolution``-point-per-axis grid over the same box."""
    if resolution is None:
        return inputs
    dim = inputs.shape[1]
    axis = jnp.linspace(jnp.min(inputs), jnp.max(inputs), resolution, dtype=jnp.float32)
    mesh = jnp.meshgrid(*([axis] * dim), indexing="ij")
    return jnp.stack([m.reshape(-1) for m in mesh[::-1]], axis=-1)  # coordinate 0 fastest, like grid()


def _volume_measure(model, params, inputs, numeric, cost="kl", epsilon=1e-2, n_directions=100, measure="gaussian",
                    sigma=None, rtol=1e-2, seed=0, statistic="log_volume", resolution=None, max_steps=MAX_STEPS):
    from .models.base import split_numeric

    _, apply_args = split_numeric(model, numeric)
    est = network_log_volume(model, params, _cost_inputs(inputs, resolution), None, cost, n_directions, epsilon,
                             sigma, measure, rtol, seed, max_steps, **apply_args)
    return jnp.asarray(getattr(est, statistic), jnp.float32)


def _check_measure(sweep, **args):
    check_volume_args("measure 'volume'", args)
    model = sweep.model
    if not hasattr(model, "apply"):
        raise ConfigError(f"measure 'volume' needs a model with apply(params, inputs); got {type(model).__name__}")
    axis = getattr(model, "switch_axis", None)
    if axis and len(sweep.axes.get(axis, ())) > 1:
        raise ConfigError(f"measure 'volume' with axes[{axis!r}]={list(sweep.axes[axis])} is not allowed: the values "
                          "of a switched axis share a compiled function and a network measure sees only the first; "
                          "allowed: one value per sweep (use a suite of parts)")


register_measure("volume", "network", _volume_measure, VOLUME_ARGS, check=_check_measure)
