"""Local (star-domain) volume of a network in parameter space (DESIGN.md section 14; Scherlis & Belrose, arXiv
2501.18812; the estimator of EleutherAI's ``tyche``).

How much of parameter space around ``w0`` behaves like ``w0``: the set of parameters ``w`` with ``C(w) < epsilon``
for a cost ``C`` with ``C(w0) = 0``, taken as a *star domain* around ``w0`` (every ray from ``w0`` leaves it once,
at radius ``r(u)`` along the unit direction ``u``). Its measure is an average over directions::

    vol = E_u[ S_{D-1} \\int_0^{r(u)} t^(D-1) p(w0 + t u) dt ],   S_{D-1} = D V_D (the unit sphere's area)

with ``p`` the Gaussian prior ``N(0, sigma^2 I)`` (``measure="gaussian"``; ``sigma`` = RMS of ``w0`` unless
given) or the constant 1 (``measure="uniform"``: the volume ``V_D r(u)^D``). Each direction gives one
log-value ``l_i`` (uniform directions: the estimate is ``logsumexp(l) - log n``).

Directions (DESIGN.md section 21; ``log_volume``'s ``directions``, ``alpha``, ``widths``, ``normalize``):
importance-sampled from a stratified defensive mixture. By default a quarter of the rays are uniform, half follow
the law of ``(w - w0) / |w - w0|`` for ``w`` drawn from the prior, and a quarter the same law with the prior
widened 1.25 times (``DEFAULT_ALPHA``, ``DEFAULT_WIDTHS``); each ray is weighted by ``w_i = exp(l_i) / (q(u_i) /
uniform(u_i))``, and the estimate is **self-normalised**, ``log sum_i w_i - log sum_i w_i^inf`` (``w_i^inf`` the
same ray's weight at ``r = inf``, ``E_q[w^inf] = 1`` exactly), so a cost that never reaches epsilon gives exactly
0. On an off-centre ball at D = 300 and 2,000 (truth ``ncx2.logcdf(D, D, D)``) it is 0.10 and 0.15 nats off (mean
abs, 48 rays; the prototype the issue quotes: 1.0 and 4.9); on a partly saturated blog-grid network at D = 4,417
it keeps as many rays on the prior's own law as section 21's mixture, which is what that network needs.
Section 21's literal mixture (half uniform, half the prior's law, ``log mean w_i``) is ``alpha=DESIGN_ALPHA,
widths=DESIGN_WIDTHS, normalize=False``: 2.0 and 22 nats off on those balls, because their mass lies in
directions a little less concentrated towards the origin than the prior's. Numbers: docs/volume.md,
``benchmarks/volume_closed_forms.py``.
``directions="uniform"`` is section 14's estimator, unchanged::

    import redshift_jax as rj
    est = rj.volume.log_volume(cost_fn, w0, key, n_directions=100, epsilon=1e-2)   # any cost_fn(w) -> scalar
    est.log_volume, est.per_parameter, est.log_masses, est.radii, est.unbracketed
    cost_fn, w0 = rj.volume.network_cost(model, params, inputs, cost="kl")      # a network's cost on its inputs

and as the sweep measure ``("volume", {...})`` (arguments below). Everything is pure jnp, jit- and vmap-safe
(over directions inside, over networks outside); the structural arguments (``n_directions``, ``measure``,
``max_steps``) are static, ``epsilon``, ``rtol`` and ``sigma`` may be traced.

Radius search (``star_radii``): along each direction, the radius where ``C(w0 + r u)`` first reaches
``epsilon``, to ``|C - epsilon| <= rtol * epsilon``, in at most ``max_steps`` (100) cost evaluations per direction.
``search="secant"`` (default) is a safeguarded regula falsi in ``(log r, log C)`` (a step along ``C ~ r^2`` while
only a cost above epsilon is known, growing steps while only costs below it are) from ``r = 1`` or, with
``log_volume``'s ``start="warm"``, from where the network's last converged rays ended; ``"bisect"``
doubles from ``r = 1`` and then bisects (DESIGN.md section 14, tyche's search). One ``lax.while_loop`` keeps
``slots`` rays in flight: a slot whose ray is done takes the next waiting ray, so a batch of networks does not
wait for its slowest ray. A non-finite cost counts as "too far" (the function broke). A direction that never
brackets has ``r = inf`` (``unbracketed``); one bracketed but not converged within the budget keeps a point
inside its bracket (``unconverged``). With the Gaussian measure, ``log_volume`` also stops a ray once it has seen
the cost below epsilon ``REACH_SIGMAS`` (10) sigmas past the peak of the ray's integrand (``reach``): from there the
ray integral is its full-ray value to the bit, so its radius is reported infinite (``unbracketed``) and no estimate
changes (4.7 instead of 6.2 cost evaluations per ray on ``benchmarks/volume_bench.py``'s networks; 3.2 with the
warm start). Every search assumes the cost crosses epsilon once along a ray; where it does not, the radius found is
a crossing, not always the first (docs/volume.md).

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

from ..errors import ConfigError
from ..models.base import split_numeric
from ..models.priors import get_prior
from .base import register_measure

__all__ = ["MEASURES", "COSTS", "STATISTICS", "MAX_STEPS", "StarRadii", "VolumeEstimate", "star_radii",
           "log_volume", "gaussian_log_mass", "uniform_log_mass", "random_directions", "direction_key",
           "network_cost", "network_log_volume", "check_volume_args", "log_ball_volume", "prior_directions",
           "init_std", "uniform_count", "DIRECTIONS", "SEARCHES", "DIAGNOSTICS", "epsilon_suffix"]

MEASURES = ("gaussian", "uniform")
COSTS = ("kl", "mse", "nmse")
STATISTICS = ("log_volume", "mean_log", "per_parameter", "log_radius_mean", "radius_median", "unconverged",
              "unbracketed", "saturated", "ess", "resolved", "full_ray", "steps", "unmoved")
DIRECTIONS = ("mixture", "uniform")
SEARCHES = ("secant", "bisect")
STARTS = ("one", "warm")
MAX_STEPS = 100
SLOT_SHARE = 16     # log_volume searches ceil(rays / SLOT_SHARE) rays at a time (star_radii's slots)
SATURATION_NATS = 0.01   # a ray is saturated when its integral is within this of its full-ray value
RESOLVED_NATS = 0.01     # per parameter: an estimate this close to its rays' full-ray value is not resolved
_LOG2 = math.log(2.0)
_LOG_R_MAX = 99 * math.log(2.0)   # an unbracketed ray: beyond r = 2^99 (where 99 doublings from r = 1 end)
_TAIL_NATS = 40.0   # the ray integral keeps the part of [0, R] within this many nats of the integrand's peak
# the radius search stops a ray below epsilon this many sigmas past the integrand's peak: the integral keeps at most
# sqrt(2 _TAIL_NATS) = 8.94 sigmas right of the peak, so there its value is the full ray's, bit for bit
REACH_SIGMAS = 10.0
_NODES = 48         # Gauss-Legendre nodes on each side of the peak
WIDTHS = (1.0, 4 / 3, 2.0, 20 / 7)   # widened prior components (an option: widths=WIDTHS)
DESIGN_WIDTHS = (1.0,)             # DESIGN.md section 21's mixture: the prior's own direction law (alpha 0.5)
DESIGN_ALPHA = 0.5
# the default: a quarter uniform, half the prior's own direction law, a quarter the prior widened 1.25 times
# (a width listed twice gets twice the share); docs/volume.md "Why this default"
DEFAULT_WIDTHS = (1.0, 1.0, 1.25)
DEFAULT_ALPHA = 0.25
_TINY_RADIUS = 2.0 ** -64   # below this (in units of sigma) the ray integral is its leading term R^D / D
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


def _check_choice(name, value, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value


def _concrete(value):
    """``value`` as a numpy array when it is known outside a trace, else None (checked inside, as NaN)."""
    try:
        return np.asarray(value, np.float64)
    except (TypeError, jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def _check_epsilon(epsilon) -> None:
    value = _concrete(epsilon)
    if value is not None and not (value.size and np.all(np.isfinite(value)) and np.all(value > 0)):
        raise ConfigError(f"epsilon={epsilon!r} is not allowed; allowed: finite numbers > 0 (a traced epsilon "
                          "that is not gives a NaN estimate)")


def star_radii(cost_fn: Callable, w0, directions, epsilon, rtol=1e-2, max_steps: int = MAX_STEPS,
               search: str = "secant", first=None, slots=None, reach=None, warm: bool = False) -> StarRadii:
    """The radius along each direction where ``cost_fn`` first reaches ``epsilon`` (see the module docstring).

    Args:
      cost_fn: ``cost_fn(w) -> scalar`` on a flat parameter vector, 0 at ``w0`` and growing away from it.
      w0: (D,) the centre.
      directions: (n, D) unit directions.
      epsilon: the cost threshold (> 0; a number or an (n,) array, one per direction; may be traced).
      rtol: stop when ``|C - epsilon| <= rtol * epsilon``.
      max_steps: cost evaluations per direction (static).
      search: ``"secant"`` (regula falsi in ``(log r, log C)``, the default) or ``"bisect"`` (doubling from
        ``r = 1``, then bisection: the estimator of DESIGN.md section 14, bit for bit).
      first: (n,) the first radius tried by ``"secant"`` (default 1).
      slots: ``"secant"`` only (static): how many rays are searched at a time (default: all ``n``). With fewer,
        a slot whose ray is done takes the next waiting ray, so the search costs about ``slots x (total
        evaluations / slots + the last rays' steps)`` cost evaluations instead of ``n x`` the slowest ray's
        steps; each ray's radii are the same sequence either way.
      reach: ``"secant"`` only: (n,) radii (or a number; default none) beyond which a ray's exact radius does not
        matter to the caller. A ray that has seen the cost below epsilon at a radius >= ``reach`` stops there: its
        radius is reported infinite (``bracketed`` False) if no cost >= epsilon was seen, else that point, marked
        converged. ``log_volume`` passes the end of the prior's mass along each ray, beyond which the ray
        integral is its full-ray value to the bit.
      warm: ``"secant"`` with ``slots < n`` only (static): a ray that enters a slot starts where the last rays that
        converged with a cost >= epsilon seen ended (their mean log radius, moved by ``log(epsilon_ray /
        epsilon_theirs) / 2``, the quadratic law ``C ~ r^2``), not at ``first`` (which only the first rays use).
        Neighbouring rays of one network have similar radii, so this saves about a third of the evaluations
        (``log_volume``'s ``start="warm"``); each ray's start depends on ``slots``, and a ray whose cost is not
        monotone may be started beyond its first crossing (``log_volume`` says how often).

    Returns:
      ``StarRadii`` with (n,) arrays.

    Example:
      >>> import jax.numpy as jnp, redshift_jax as rj
      >>> out = rj.volume.star_radii(lambda w: jnp.sum(w ** 2), jnp.zeros(2), jnp.eye(2), 0.25)
      >>> [round(float(r), 3) for r in out.radius]
      [0.5, 0.5]
    """
    max_steps = _check_max_steps(max_steps)
    _check_choice("search", search, SEARCHES)
    _check_epsilon(epsilon)
    w0 = jnp.asarray(w0, jnp.float32)
    directions = jnp.asarray(directions, jnp.float32)
    if w0.ndim != 1 or directions.ndim != 2 or directions.shape[1] != w0.shape[0]:
        raise ConfigError(f"star_radii: w0 has shape {w0.shape} and directions {directions.shape}; allowed: w0 (D,) "
                          "and directions (n, D)")
    epsilon = jnp.asarray(epsilon, jnp.float32)
    tol = jnp.asarray(rtol, jnp.float32) * epsilon
    n = directions.shape[0]
    costs = jax.vmap(lambda r, u: cost_fn(w0 + r * u))
    if search == "bisect":
        return _bisect_radii(costs, directions, epsilon, tol, max_steps, n)
    first = jnp.ones(n, jnp.float32) if first is None else jnp.broadcast_to(jnp.asarray(first, jnp.float32), (n,))
    log_reach = (jnp.full(n, jnp.inf, jnp.float32) if reach is None
                 else jnp.log(jnp.broadcast_to(jnp.asarray(reach, jnp.float32), (n,))))
    if slots is not None:
        if isinstance(slots, bool) or not isinstance(slots, (int, np.integer)) or slots < 1:
            raise ConfigError(f"star_radii: slots={slots!r} is not allowed; allowed: an integer >= 1 or None "
                              "(all rays)")
        if slots < n:
            return _queued_radii(costs, directions, epsilon, tol, max_steps, n, first, int(slots), log_reach,
                                 bool(warm))
    return _secant_radii(costs, directions, epsilon, tol, max_steps, n, first, log_reach)


def _bisect_radii(costs, directions, epsilon, tol, max_steps, n):
    """Today's search (DESIGN.md section 14): doubling from r = 1, then bisection."""
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


def _secant_start(first):
    """The secant search's state for rays starting at radius ``first`` (any shape)."""
    inf = jnp.float32(jnp.inf)
    zeros, false = jnp.zeros_like(first), jnp.zeros(first.shape, bool)
    return {"x": jnp.log(first), "x_lo": zeros, "y_lo": jnp.full_like(first, -inf), "x_hi": zeros,
            "y_hi": jnp.full_like(first, inf), "has_lo": false, "has_hi": false, "x_prev": zeros,
            "y_prev": jnp.full_like(first, -inf), "two_below": false, "last_below": false, "last_above": false,
            "converged": false, "done": false, "used": jnp.zeros(first.shape, jnp.int32)}


def _secant_step(s, c, epsilon, tol, log_reach=None):
    """One step of the secant search: the rays' state ``s`` after their costs ``c`` at ``exp(s["x"])``.
    ``epsilon``, ``tol`` and ``log_reach`` (log of ``star_radii``'s ``reach``; None: no reach) are scalars or
    per-ray arrays; rays already done keep their state."""
    inf = jnp.float32(jnp.inf)
    target = jnp.log(epsilon)
    log_max = jnp.float32(_LOG_R_MAX)
    x = s["x"]
    c = jnp.where(jnp.isnan(c), inf, c)
    close = jnp.abs(c - epsilon) <= tol
    below = c < epsilon
    y = jnp.log(jnp.maximum(c, 0.0)) - target          # log(C / epsilon): < 0 below, -inf where C = 0
    active = ~s["done"]
    # new bracket ends; Illinois: an end kept twice in a row has its residual halved (in log C)
    x_lo = jnp.where(below, x, s["x_lo"])
    y_lo = jnp.where(below, y, jnp.where(s["last_above"], s["y_lo"] / 2, s["y_lo"]))
    x_hi = jnp.where(below, s["x_hi"], x)
    y_hi = jnp.where(below, jnp.where(s["last_below"], s["y_hi"] / 2, s["y_hi"]), y)
    has_lo = s["has_lo"] | below
    has_hi = s["has_hi"] | ~below
    lo_ok = has_lo & jnp.isfinite(y_lo)
    hi_ok = has_hi & jnp.isfinite(y_hi)
    # both ends with finite log-costs: interpolate, kept inside the inner 96% of the bracket
    width = x_hi - x_lo
    denom = jnp.where(y_hi - y_lo > 0, y_hi - y_lo, 1.0)
    interp = x_lo - y_lo * width / denom
    interp = jnp.clip(interp, x_lo + 0.02 * width, x_hi - 0.02 * width)
    mid = (x_lo + x_hi) / 2
    both = jnp.where(lo_ok & hi_ok, interp, mid)
    # only an end above epsilon: step down along the quadratic law C ~ r^2 (the cost's curvature at w0)
    # (at most a factor 2^16 per step, and never below r = 2^-120: a float32 step of 0 would stall the search)
    down = jnp.where(hi_ok, x_hi - jnp.clip(y_hi / 2, _LOG2 / 8, 16 * _LOG2), x_hi - _LOG2)
    down = jnp.maximum(down, jnp.float32(-120 * _LOG2))
    # only ends below: the slope of the last two points (clipped to 1/4 .. 4; 2 without two points), at least
    # doubling and at most a factor 2^16
    slope = jnp.where(s["two_below"] & jnp.isfinite(s["y_prev"]) & lo_ok,
                      (y_lo - s["y_prev"]) / jnp.maximum(x_lo - s["x_prev"], 1e-6), 2.0)
    slope = jnp.clip(slope, 0.25, 4.0)
    up_step = jnp.where(lo_ok, -y_lo / slope, 16 * _LOG2)
    up = x_lo + jnp.clip(up_step, _LOG2, 16 * _LOG2)
    next_x = jnp.where(has_hi, jnp.where(has_lo, both, down), up)
    # too far out without a bracket: the ray never reaches epsilon (r = inf)
    escaped = ~has_hi & (next_x > log_max)
    # below epsilon at or beyond the caller's reach: the exact radius no longer matters (r = inf without a bracket,
    # else this point, counted as converged)
    beyond = (below & (x >= log_reach)) if log_reach is not None else jnp.zeros_like(below)
    escaped = escaped | (beyond & ~has_hi)
    close = close | (beyond & has_hi)
    finished = close | escaped
    keep = lambda new, old: jnp.where(active, new, old)  # noqa: E731
    return {
        "x": keep(jnp.where(finished, x, next_x), x), "x_lo": keep(x_lo, s["x_lo"]), "y_lo": keep(y_lo, s["y_lo"]),
        "x_hi": keep(x_hi, s["x_hi"]), "y_hi": keep(y_hi, s["y_hi"]), "has_lo": keep(has_lo, s["has_lo"]),
        "has_hi": keep(has_hi, s["has_hi"]), "x_prev": keep(jnp.where(below, s["x_lo"], s["x_prev"]), s["x_prev"]),
        "y_prev": keep(jnp.where(below, s["y_lo"], s["y_prev"]), s["y_prev"]),
        "two_below": keep(s["two_below"] | (below & s["has_lo"]), s["two_below"]),
        "last_below": keep(below, s["last_below"]), "last_above": keep(~below, s["last_above"]),
        "converged": s["converged"] | (active & close), "done": s["done"] | (active & finished),
        "used": s["used"] + active.astype(jnp.int32)}


def _secant_result(s) -> StarRadii:
    # a converged ray keeps its point (also one that converged from below, before any cost >= epsilon); a bracket
    # left unconverged by the budget keeps its next interpolated point (inside the bracket)
    radius = jnp.where(s["converged"] | s["has_hi"], jnp.exp(s["x"]), jnp.float32(jnp.inf))
    return StarRadii(radius, s["converged"], s["has_hi"], s["used"])


def _secant_radii(costs, directions, epsilon, tol, max_steps, n, first, log_reach):
    """Regula falsi in ``(log r, log C)`` (Illinois variant), safeguarded, every ray in one batch until the
    slowest is done; see ``star_radii``."""

    def cond(state):
        s, step = state
        return jnp.any(~s["done"]) & (step < max_steps)

    def body(state):
        s, step = state
        c = costs(jnp.exp(s["x"]), directions).astype(jnp.float32)
        return _secant_step(s, c, epsilon, tol, log_reach), step + 1

    s, _ = jax.lax.while_loop(cond, body, (_secant_start(first), jnp.int32(0)))
    return _secant_result(s)


def _queued_radii(costs, directions, epsilon, tol, max_steps, n, first, slots, log_reach, warm=False):
    """The secant search with ``slots`` rays in flight: a slot whose ray is done takes the next waiting ray, so
    each step evaluates ``slots`` costs and the search ends about ``total steps / slots`` steps after it starts,
    not when the slowest of all ``n`` rays is done (under ``vmap`` over networks, the slowest of every network's).
    Each ray's sequence of radii is the one ``_secant_radii`` takes, or with ``warm`` the one it takes from the
    warm start (``star_radii``)."""
    epsilon = jnp.broadcast_to(epsilon, (n,))
    tol = jnp.broadcast_to(tol, (n,))
    half_log_eps = jnp.log(epsilon) / 2 if warm else None
    slot_ids = jnp.arange(slots, dtype=jnp.int32)
    out = {"radius": jnp.zeros(n, jnp.float32), "converged": jnp.zeros(n, bool), "bracketed": jnp.zeros(n, bool),
           "used": jnp.zeros(n, jnp.int32)}

    def cond(state):
        return jnp.any(state["ray"] < n)

    def body(state):
        ray, s = state["ray"], state["s"]
        live = ray < n
        idx = jnp.minimum(ray, n - 1)
        c = costs(jnp.exp(s["x"]), directions[idx]).astype(jnp.float32)
        s = _secant_step(s, c, epsilon[idx], tol[idx], log_reach[idx])
        s["done"] = s["done"] | (s["used"] >= max_steps)
        finished = live & s["done"]
        # write the finished rays' results (a slot without a ray writes nowhere: index n is dropped)
        res = _secant_result(s)
        where = jnp.where(finished, idx, n)
        results = {name: state["out"][name].at[where].set(value, mode="drop")
                   for name, value in zip(("radius", "converged", "bracketed", "used"), res)}
        # finished slots take the next waiting rays, in slot order
        rank = jnp.cumsum(finished.astype(jnp.int32)) - 1
        new_ray = jnp.where(finished, state["next"] + rank, ray)
        waiting = jnp.minimum(new_ray, n - 1)
        extra = {}
        if warm:   # the mean log radius of this step's converged, bracketed rays, at epsilon 1 (C ~ r^2)
            good = finished & s["converged"] & s["has_hi"]
            count = jnp.sum(good)
            mean = jnp.sum(jnp.where(good, s["x"] - half_log_eps[idx], 0.0)) / jnp.maximum(count, 1)
            guess = jnp.where(count > 0, mean, state["guess"])
            extra["guess"] = guess
            fresh = _secant_start(jnp.where(jnp.isfinite(guess), jnp.exp(guess + half_log_eps[waiting]),
                                            first[waiting]))
        else:
            fresh = _secant_start(first[waiting])
        s = jax.tree.map(lambda a, b: jnp.where(finished, a, b), fresh, s)
        s["done"] = s["done"] | (new_ray >= n)
        return {"ray": jnp.minimum(new_ray, n), "s": s, "out": results,
                "next": state["next"] + jnp.sum(finished, dtype=jnp.int32), **extra}

    ray = jnp.where(slot_ids < n, slot_ids, n)
    start = _secant_start(first[jnp.minimum(ray, n - 1)])
    start["done"] = ray >= n
    init = {"ray": ray, "s": start, "out": out, "next": jnp.int32(min(slots, n))}
    if warm:   # the log radius (at epsilon 1) new rays start from; inf until a ray has converged
        init["guess"] = jnp.float32(jnp.inf)
    state = jax.lax.while_loop(cond, body, init)
    res = state["out"]
    return StarRadii(res["radius"], res["converged"], res["bracketed"], res["used"])


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


def _integrand_peak(beta, dim: int):
    """The peak ``s* = (-beta + sqrt(beta^2 + 4 (D - 1))) / 2`` of the ray integrand (D > 1), written without
    cancellation for beta >= 0."""
    k = jnp.float32(dim - 1)
    root = jnp.sqrt(beta * beta + 4 * k)
    return jnp.where(beta >= 0, 2 * k / (beta + root), (root - beta) / 2)


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
    peak = jnp.maximum(-beta, 0.0) if D == 1 else _integrand_peak(beta, D)
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
    # R below 2^-64: int_0^R s^(D-1) exp(-(s + beta)^2 / 2) ds = exp(-beta^2 / 2) R^D / D (1 + O(beta R, R^2)), so
    # l = log(2^(1 - D/2) / (D Gamma(D/2))) - |z|^2 / 2 + D log R. (The expansion above overflows there: phi'(m) ~
    # (D - 1) / R passes float32's range near R = 1e-35, which gave -inf for rays the search ended at r = 2^-120.)
    tiny = R < _TINY_RADIUS
    small_const = math.log(2.0) * (1 - D / 2) - math.lgamma(D / 2) - math.log(D)
    small = jnp.float32(small_const) - zz / 2 + jnp.float32(D) * jnp.log(jnp.where(tiny, R, 1.0))
    log_mass = jnp.where(tiny, small, log_mass)
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
    """``log_volume``'s result: jnp arrays, so it vmaps over networks. With an array of ``k`` epsilons every
    field but ``sigma`` has a leading ``(k,)`` axis (the same rays searched at each epsilon).

    Attributes:
      log_volume: the estimate ``log mean_i w_i`` (nats; NaN when the inputs are broken, see ``log_volume``).
      mean_log: ``mean(log w)`` (a lower bound of ``log_volume``, by Jensen; ``mean(l)`` for uniform directions).
      per_parameter: ``log_volume / D``.
      log_masses: (n,) the per-direction values ``l_i`` (the log-mass of the ray segment).
      radii: (n,) the radius along each direction (inf where never bracketed).
      log_radius_mean: mean of ``log r`` over the finite radii (NaN if none).
      radius_median: median radius (inf counted as the largest).
      unconverged: directions bracketed but not within ``rtol`` after the step budget (int32).
      unbracketed: directions whose radius is infinite (never reached epsilon as far as the search looked: to
        r = 2^99, or past the prior's reach along the ray; int32).
      sigma: the Gaussian's sigma (the RMS of ``w0`` unless given; with per-parameter scales their RMS; NaN for
        the uniform measure).
      log_weights: (n,) ``log w_i = l_i - log(q(u_i) / uniform(u_i))``.
      saturated: share of rays with ``|l_i(r_i) - l_inf(u_i)| <= 0.01`` (the ray holds its whole prior mass).
      ess: the weights' effective sample size ``(sum w)^2 / sum w^2`` (1 .. n).
      full_ray: the same estimator with every ray taken to infinity (0 up to sampling noise for the mixture; the
        ceiling ``-D/2 + sqrt(2 D ln n)`` or so for uniform directions).
      resolved: not (``saturated > 0.5`` and ``|log_volume - full_ray| <= 0.01 D``): False when the number is the
        prior's, not the network's (DESIGN.md section 21).
      steps: mean cost evaluations per ray.
      unmoved: rays whose radius does not move ``w0`` in float32 (``w0 + r u == w0`` in every coordinate; int32):
        the search saw the cost at or above epsilon at ``w0`` itself (the cost's rounding noise there, in the
        batched evaluation, reaches epsilon) and stopped at its floor ``r = 2^-120``. Their radius is no boundary
        and an estimate with any of them is not resolved.
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
    log_weights: jax.Array
    saturated: jax.Array
    ess: jax.Array
    full_ray: jax.Array
    resolved: jax.Array
    steps: jax.Array
    unmoved: jax.Array


def random_directions(key, n_directions: int, dim: int):
    """(n, D) float32 unit vectors, uniform on the sphere (normalized Gaussians)."""
    u = jax.random.normal(key, (int(n_directions), int(dim)), jnp.float32)
    return u / jnp.linalg.norm(u, axis=1, keepdims=True)


def prior_directions(key, n_directions: int, z0):
    """(n, D) unit vectors ``(g - z0) / |g - z0|`` with ``g ~ N(0, I)``: the directions in which the prior's mass
    lies, seen from ``z0`` (whitened coordinates). Their density relative to the uniform law on the sphere is
    ``exp(gaussian_log_mass(inf, u . z0, |z0|^2, D))``."""
    z0 = jnp.asarray(z0, jnp.float32)
    g = jax.random.normal(key, (int(n_directions), z0.shape[0]), jnp.float32) - z0
    return g / jnp.linalg.norm(g, axis=1, keepdims=True)


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
    return _check_choice("measure", measure, MEASURES)


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0 < alpha <= 1:
        raise ConfigError(f"alpha={alpha!r} is not allowed; allowed: a number in (0, 1] (the uniform share of the "
                          "rays; static)")
    return float(alpha)


def _check_widths(widths) -> tuple:
    values = tuple(widths) if isinstance(widths, (tuple, list)) else (widths,)
    if not values or not all(_positive_number(w) and w >= 1 for w in values):
        raise ConfigError(f"widths={widths!r} is not allowed; allowed: a tuple of numbers >= 1 (static)")
    return tuple(float(w) for w in values)


def _check_normalize(normalize, directions: str, measure: str, widths: tuple = DEFAULT_WIDTHS) -> bool:
    """``normalize=None``: self-normalised for a mixture with widened components (exact for a region holding the
    whole prior); plain otherwise (section 21's mixture, uniform directions, the uniform measure)."""
    if normalize is None:
        return directions == "mixture" and measure == "gaussian" and any(w != 1.0 for w in widths)
    if not isinstance(normalize, (bool, np.bool_)) or (normalize and measure != "gaussian"):
        raise ConfigError(f"normalize={normalize!r} with measure={measure!r} is not allowed; allowed: None (the "
                          "default: True for a mixture with widened components, else False), True or False (True only "
                          "with measure='gaussian')")
    return bool(normalize)


def uniform_count(n_directions: int, alpha: float) -> int:
    """``round(alpha n)`` (halves up): how many of ``n`` rays the mixture draws uniformly."""
    return int(math.floor(alpha * n_directions + 0.5))


def _log_mean_exp(x, axis=-1):
    return jax.nn.logsumexp(x, axis=axis) - jnp.log(jnp.float32(x.shape[axis]))


def log_volume(cost_fn: Callable, w0, key, n_directions: int = 100, epsilon=1e-2, sigma=None,
               measure: str = "gaussian", rtol=1e-2, max_steps: int = MAX_STEPS, directions: str = "mixture",
               alpha: float = DEFAULT_ALPHA, search: str = "secant", precondition=None,
               widths: tuple = DEFAULT_WIDTHS, slots=None, normalize=None, start: str = "one") -> VolumeEstimate:
    """Estimate the log measure of the star domain ``{w: C(w) < epsilon}`` around ``w0``.

    Args:
      cost_fn: ``cost_fn(w) -> scalar`` on a flat (D,) vector, 0 at ``w0``.
      w0: (D,) the centre.
      key: PRNG key of the directions.
      n_directions: number of rays (static).
      epsilon: the cost threshold (> 0), or a 1-D array of thresholds (one search per threshold along the same
        rays; every field gets a leading axis).
      sigma: the Gaussian prior's standard deviation: ``None`` or ``"rms"`` (the RMS of ``w0``), a number, or a
        (D,) array of per-parameter scales (the prior ``N(0, diag(sigma^2))``, integrated in whitened
        coordinates ``z = w / sigma``; ``network_log_volume`` builds it for ``sigma="init"``).
      measure: ``"gaussian"`` or ``"uniform"`` (Lebesgue volume, with uniform directions whatever
        ``directions`` says: the mixture's prior components are the Gaussian's).
      rtol: the radius search's relative tolerance on the cost.
      max_steps: cost evaluations per direction (static).
      directions: ``"mixture"`` (importance-sampled: ``round(alpha n)`` uniform rays, the rest from the prior's
        direction laws ``prior_directions`` at ``widths``, each weighted by ``w_i = exp(l_i) / (q(u_i) /
        uniform(u_i))``) or ``"uniform"`` (``alpha = 1``: DESIGN.md section 14's estimator; with
        ``search="bisect"`` bit for bit).
      alpha: the uniform share of the mixture (static, in (0, 1]); default ``DEFAULT_ALPHA`` = 0.25 (DESIGN.md
        section 21's is 0.5, ``DESIGN_ALPHA``).
      widths: the prior components of the mixture (static): the direction laws of ``w - w0`` for ``w`` drawn from
        the prior widened ``width`` times, sharing ``1 - alpha`` in equal (stratified) counts; a width listed twice
        gets twice the share. Default ``DEFAULT_WIDTHS = (1, 1, 1.25)``; ``DESIGN_WIDTHS = (1,)`` is section 21's
        mixture, ``WIDTHS = (1, 4/3, 2, 20/7)`` a wider option. Wider components put rays where a region holding a
        small part of the prior has its mass (an off-centre ball at D = 2,000: 22 nats low with section 21's
        mixture, 0.15 off with the default), but every ray taken from the prior's own law is missed where the prior's
        directions carry the mass (a partly saturated network at D = 4,417: ``WIDTHS`` at alpha 0.5 is 206 nats
        off; docs/volume.md).
      normalize: ``None`` (default: True for a mixture with widened components, as the default's, else False),
        True or False. True: the self-normalised estimate ``log sum_i w_i - log sum_i w_i^inf``, with ``w_i^inf``
        ray i's weight at ``r = inf`` (``E_q[w^inf] = 1`` exactly), so a region holding the whole prior gives 0
        for any proposal; False: ``log mean_i w_i`` (DESIGN.md section 21's literal formula).
      search: the radius search (``star_radii``): ``"secant"`` or ``"bisect"``.
      precondition: optional (D,) positive diagonal ``P`` (tyche's preconditioner, rescaled to unit
        log-determinant): the uniform component draws ``P g / |P g|`` instead, with density ratio
        ``|P^-1 u|^-D`` to the uniform law, in whitened coordinates.
      slots: rays searched at a time (static; ``star_radii``'s ``slots``): default ``ceil(rays / 16)`` over
        all epsilons' rays. It changes the speed, not the search (each ray takes the same radii, up to the cost's
        float32 rounding in batches of another size). Under ``vmap`` over many networks (a sweep's chunk) few
        slots are fastest (``benchmarks/volume_bench.py``); for one large network alone, ``slots=n_directions``
        evaluates every ray at once.
      start: where each ray's secant search starts: ``"one"`` (default: ``r = 1``) or ``"warm"`` (where the
        network's last converged rays ended, scaled to the ray's epsilon by ``C ~ r^2``; ``star_radii``'s
        ``warm``): a third fewer cost evaluations on ``benchmarks/volume_bench.py``'s networks (3.2 against 4.7
        per ray; estimates 0.08 nats apart, standard deviation, against 4.4 between two direction keys), but
        where the cost is not monotone along a ray it starts beyond the first crossing more often and reports
        the ray infinite: on the blog grid's relu network at depth 3, scale 1, it ends beyond the first crossing
        on 39% of the rays that have a finite one, against 4% from ``r = 1``
        (``benchmarks/volume_first_crossing.py``; docs/volume.md).
        Not the default for that reason.

    Returns:
      ``VolumeEstimate``. Broken inputs that are only known inside a trace give NaN estimates (``log_volume``,
      ``per_parameter``, ``mean_log``, ``full_ray``) and ``resolved = False``: a NaN or infinite ``w0``, a cost at
      ``w0`` that is NaN or not below epsilon, an epsilon that is not a finite number > 0. Known ones raise
      ConfigError.

    Example:
      >>> import jax, jax.numpy as jnp, redshift_jax as rj
      >>> est = jax.jit(lambda key: rj.volume.log_volume(lambda w: jnp.sum(w ** 2), jnp.zeros(3), key, n_directions=8,
      ...                                                epsilon=1.0, measure="uniform"))(jax.random.key(0))
      >>> round(float(est.log_volume), 2)   # the unit ball: log(4 pi / 3)
      1.43
    """
    _check_measure_name(measure)
    _check_choice("directions", directions, DIRECTIONS)
    _check_choice("search", search, SEARCHES)
    _check_choice("start", start, STARTS)
    # the mixture's prior components are the Gaussian's: the uniform measure keeps uniform directions
    alpha = 1.0 if directions == "uniform" or measure == "uniform" else _check_alpha(alpha)
    widths = _check_widths(widths)
    normalize = _check_normalize(normalize, directions, measure, widths)
    if isinstance(n_directions, bool) or not isinstance(n_directions, (int, np.integer)) or n_directions < 1:
        raise ConfigError(f"n_directions={n_directions!r} is not allowed; allowed: an integer >= 1")
    n_directions = int(n_directions)
    _check_epsilon(epsilon)
    w0 = jnp.asarray(w0, jnp.float32)
    if w0.ndim != 1:
        raise ConfigError(f"log_volume: w0 has shape {w0.shape}; allowed: a flat (D,) vector (ravel_pytree)")
    dim = w0.shape[0]
    eps = jnp.asarray(epsilon, jnp.float32)
    if eps.ndim > 1:
        raise ConfigError(f"epsilon has shape {eps.shape}; allowed: a number or a 1-D array of numbers")
    if isinstance(sigma, str) and sigma != "rms":
        raise ConfigError(f"log_volume: sigma={sigma!r} is not allowed; allowed: None or 'rms', a number > 0, or a "
                          "(D,) array of per-parameter scales (sigma='init' needs a model: network_log_volume)")
    sigma = None if isinstance(sigma, str) else sigma
    per_parameter_scales = sigma is not None and jnp.ndim(sigma) > 0
    if per_parameter_scales and (jnp.shape(sigma) != (dim,) or measure != "gaussian"):
        raise ConfigError(f"log_volume: sigma of shape {jnp.shape(sigma)} with measure={measure!r} is not allowed; "
                          f"allowed: per-parameter scales of shape ({dim},) with measure='gaussian'")
    if precondition is not None and jnp.shape(precondition) != (dim,):
        raise ConfigError(f"log_volume: precondition of shape {jnp.shape(precondition)} is not allowed; allowed: a "
                          f"({dim},) array of positive numbers")

    # the prior's scale and the whitened centre z0 (scalar sigma: the rays stay the unit directions in w)
    sq = jnp.sum(w0 * w0)
    if sigma is None:
        scale = jnp.sqrt(sq / dim)
        norm_sq = jnp.float32(dim)
    elif per_parameter_scales:
        scales = jnp.asarray(sigma, jnp.float32)
        scale = jnp.sqrt(jnp.mean(scales * scales))
        norm_sq = jnp.sum(jnp.square(w0 / scales))
    else:
        scale = jnp.asarray(sigma, jnp.float32)
        norm_sq = sq / (scale * scale)
    z0 = w0 / scales if per_parameter_scales else w0 / scale

    # directions (whitened coordinates) and log(q(u) / uniform(u)) of the proposal
    n_uniform = n_directions if alpha == 1.0 else uniform_count(n_directions, alpha)
    keys = (key, None) if alpha == 1.0 else jax.random.split(key)
    parts = []
    if n_uniform:
        u = random_directions(keys[0], n_uniform, dim)
        if precondition is not None:
            p = jnp.asarray(precondition, jnp.float32)
            p = p / jnp.exp(jnp.mean(jnp.log(p)))
            u = u * p
            u = u / jnp.linalg.norm(u, axis=1, keepdims=True)
        parts.append(u)
    rest = n_directions - n_uniform
    counts = [rest // len(widths) + (1 if i < rest % len(widths) else 0) for i in range(len(widths))]
    if rest:   # one draw for every prior component (one copy of the generator in the program): g - z0 / width
        shrink = np.repeat([1 / w for w in widths], counts).astype(np.float32)
        g = jax.random.normal(keys[1], (rest, dim), jnp.float32) - jnp.asarray(shrink)[:, None] * z0
        parts.append(g / jnp.linalg.norm(g, axis=1, keepdims=True))
    u = parts[0] if len(parts) == 1 else jnp.concatenate(parts)
    if per_parameter_scales:
        stretched = u * scales
        length = jnp.linalg.norm(stretched, axis=1)       # whitened radius R = r / length along w-space rays
        search_dirs = stretched / length[:, None]
        beta = u @ z0
    else:
        length = scale
        search_dirs = u
        beta = u @ w0 / scale
    weighted = not (alpha == 1.0 and precondition is None)
    # the prior components' widths (1.0 first: l_inf(u), the prior's own full-ray mass, is always needed)
    mix_widths = [1.0] + [w for m, w in zip(counts, widths) if m and w != 1.0]

    # one radius search for every (epsilon, ray)
    eps_rows = eps.reshape(-1)
    k = eps_rows.shape[0]
    tiled = jnp.tile(search_dirs, (k, 1)) if k > 1 else search_dirs
    slots = -(-k * n_directions // SLOT_SHARE) if slots is None else slots
    reach = None
    if measure == "gaussian" and search == "secant":
        # the end of the prior's mass along each ray: beyond REACH_SIGMAS past the ray integrand's peak s*, the
        # integral (gaussian_log_mass) is its full-ray value to the bit, so the search stops there (r = inf)
        reach = (_integrand_peak(beta, dim) + REACH_SIGMAS) * length
        reach = jnp.tile(reach, k) if k > 1 else reach
    found = star_radii(cost_fn, w0, tiled, jnp.repeat(eps_rows, n_directions) if k > 1 else eps_rows[0], rtol,
                       max_steps, search, slots=slots if search == "secant" else None, reach=reach,
                       warm=start == "warm")
    shape = (k, n_directions)
    radii = found.radius.reshape(shape)
    R = radii / (length[None, :] if per_parameter_scales else length)
    if weighted and measure == "gaussian":
        # the mixture: every ray integral in one call (one copy of the quadrature in the compiled program): the
        # rays at their radii, then each prior component's full-ray mass (the prior at width x its scale, seen
        # from z0: the ray mass with z0 / width)
        grow = jnp.asarray(mix_widths, jnp.float32)[:, None]
        masses = gaussian_log_mass(
            jnp.concatenate([R, jnp.full((len(mix_widths), n_directions), jnp.inf, jnp.float32)]),
            jnp.concatenate([jnp.broadcast_to(beta[None, :], shape), beta[None, :] / grow]),
            jnp.concatenate([jnp.full((k, 1), norm_sq, jnp.float32), norm_sq / (grow * grow)]), dim)
        logs, component = masses[:k], dict(zip(mix_widths, masses[k:]))
        full = component[1.0]
    else:
        full = gaussian_log_mass(jnp.float32(jnp.inf), beta, norm_sq, dim)   # l_inf(u): the prior's ray mass
        component = {1.0: full}
        if measure == "gaussian":
            logs = gaussian_log_mass(R, beta[None, :], norm_sq, dim)
    if measure == "gaussian":
        sigma_out = scale
    else:
        logs = uniform_log_mass(radii, dim)
        sigma_out = jnp.float32(jnp.nan)
    if not weighted:
        log_q = None
    else:
        log_uniform = jnp.zeros(n_directions, jnp.float32)
        if precondition is not None:
            log_uniform = -dim * jnp.log(jnp.linalg.norm(u / p, axis=1))
        terms = [jnp.float32(math.log(alpha)) + log_uniform]
        for m, width in zip(counts, widths):
            if m:
                terms.append(jnp.float32(math.log((1 - alpha) * m / rest)) + component[width])
        log_q = terms[0] if len(terms) == 1 else jax.nn.logsumexp(jnp.stack(terms), axis=0)
    if log_q is None:
        log_w = logs
        estimate = jax.nn.logsumexp(logs, axis=-1) - jnp.log(jnp.float32(n_directions))
        full_ray = _log_mean_exp(full)
    else:
        log_w = logs - log_q
        estimate = _log_mean_exp(log_w)
        full_ray = _log_mean_exp(full - log_q)
    # the estimate's distance from its rays' full-ray value: what `resolved` looks at (the same number with and
    # without self-normalisation, whose full-ray value is 0)
    excess = estimate - full_ray
    if normalize:   # log sum w_i - log sum w_i^inf: exactly 0 when every ray is infinite, for any proposal
        estimate = excess
    ess = jnp.exp(2 * jax.nn.logsumexp(log_w, axis=-1) - jax.nn.logsumexp(2 * log_w, axis=-1))
    if measure == "gaussian":
        saturated = jnp.mean(jnp.abs(logs - full) <= SATURATION_NATS, axis=-1)
    else:
        saturated = jnp.zeros(k, jnp.float32)
    # broken inputs (only known inside a trace): NaN, not a number that looks like a measurement
    c0 = jnp.asarray(cost_fn(w0), jnp.float32)
    broken = (~jnp.all(jnp.isfinite(w0)) | ~(c0 < eps_rows) | ~jnp.isfinite(eps_rows) | ~(eps_rows > 0)
              | ~jnp.isfinite(scale))
    nan = jnp.float32(jnp.nan)
    estimate = jnp.where(broken, nan, estimate)
    full_ray = jnp.where(broken, nan, full_ray)
    mean_log = jnp.mean(log_w, axis=-1) - (full_ray if normalize else 0.0)
    mean_log = jnp.where(broken, nan, mean_log)
    # rays that never left w0 in float32: the cost's noise at w0 reaches epsilon (the NRS grid's deepest,
    # largest-scale networks with the MSE cost; docs/volume.md), so their radius is the search's floor
    unmoved = jnp.sum(jnp.all(w0 + found.radius[:, None] * tiled == w0, axis=-1).reshape(shape), axis=-1,
                      dtype=jnp.int32)
    resolved = (~broken & ~((saturated > 0.5) & (jnp.abs(excess) <= RESOLVED_NATS * dim)) & (unmoved == 0))
    finite = jnp.isfinite(radii)
    n_finite = jnp.sum(finite, axis=-1)
    log_r = jnp.where(finite, jnp.log(jnp.where(finite, radii, 1.0)), 0.0)
    log_radius_mean = jnp.where(n_finite > 0, jnp.sum(log_r, axis=-1) / jnp.maximum(n_finite, 1), jnp.nan)
    bracketed = found.bracketed.reshape(shape)
    out = VolumeEstimate(
        log_volume=estimate.astype(jnp.float32), mean_log=mean_log.astype(jnp.float32),
        per_parameter=(estimate / dim).astype(jnp.float32), log_masses=logs, radii=radii,
        log_radius_mean=log_radius_mean.astype(jnp.float32),
        radius_median=jnp.median(radii, axis=-1).astype(jnp.float32),
        unconverged=jnp.sum(bracketed & ~found.converged.reshape(shape), axis=-1, dtype=jnp.int32),
        unbracketed=jnp.sum(~finite, axis=-1, dtype=jnp.int32), sigma=jnp.asarray(sigma_out, jnp.float32),
        log_weights=log_w.astype(jnp.float32), saturated=saturated.astype(jnp.float32),
        ess=ess.astype(jnp.float32), full_ray=full_ray.astype(jnp.float32), resolved=resolved,
        steps=jnp.mean(found.steps.reshape(shape), axis=-1, dtype=jnp.float32), unmoved=unmoved)
    if eps.ndim == 0:
        out = out._replace(**{name: getattr(out, name)[0] for name in out._fields if name != "sigma"})
    return out


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
      params: the network's parameters (a pytree; raveled with ``jax.flatten_util.ravel_pytree``; what the
        model's ``split_fixed(params)`` calls fixed, e.g. a FlaxModel's own plane, stays as it is).
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
    # a model may hold part of its params fixed (``split_fixed``: FlaxModel's per-network plane)
    split = getattr(model, "split_fixed", None)
    weights, fixed = split(params) if callable(split) else (params, {})
    w0, ravel_unravel = ravel_pytree(weights)
    w0 = w0.astype(jnp.float32)

    def unravel(w):
        return {**ravel_unravel(w), **fixed} if fixed else ravel_unravel(w)

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


_WEIGHT_LEAVES = ("W", "W_gate")
_BIAS_LEAVES = {"b": "W", "b_gate": "W_gate"}


def _weight_std(prior, fan_in, fan_out, weight_scale):
    return get_prior(prior).require("weight_std", "sigma='init'")(fan_in, fan_out, weight_scale)


def _bias_std(prior, fan_in, bias_scale):
    return get_prior(prior).require("bias_std", "sigma='init'")(fan_in, bias_scale)


def init_std(model, params, weight_scale=1.0, bias_scale=1.0):
    """(D,) the per-parameter standard deviation of ``model``'s own prior at ``weight_scale`` and ``bias_scale``
    (in ``ravel_pytree(params)`` order): what ``sigma="init"`` means.

    For models whose parameters are layers of ``W`` (fan_in, fan_out) and ``b`` (fan_out,) (``rj.MLP``, stacked
    hidden layers included) drawn from ``model.prior``: torch's ``U(-a/sqrt(fan_in), a/sqrt(fan_in))`` has std
    ``a / sqrt(3 fan_in)`` (biases ``b / sqrt(3 fan_in)``); the paper's ``U(-s, s)`` with ``s = a sqrt(6 / (fan_in
    + fan_out))`` has ``s / sqrt(3)`` (biases ``U(-b, b)``: ``b / sqrt(3)``); normal ``a / sqrt(fan_in)`` and ``b``.
    ``weight_scale`` and ``bias_scale`` may be traced.
    """
    prior = getattr(model, "prior", None)
    if prior is None:
        raise ConfigError(f"sigma='init' needs a model with a prior; {type(model).__name__} has none; allowed: "
                          "sigma=None ('rms') or a number")

    def layer(node):
        if not isinstance(node, dict) or "W" not in node:
            if isinstance(node, dict):
                return {k: layer(v) for k, v in node.items()}
            raise ConfigError(f"sigma='init' does not know {type(model).__name__}'s parameters (a leaf outside a "
                              "layer of W and b); allowed: models built of W/b layers (rj.MLP)")
        out = {}
        for name, leaf in node.items():
            weight = node[_BIAS_LEAVES.get(name, name)] if name in _BIAS_LEAVES else leaf
            fan_in, fan_out = weight.shape[-2], weight.shape[-1]
            if name in _WEIGHT_LEAVES:
                std = _weight_std(prior, fan_in, fan_out, 1.0) * jnp.asarray(weight_scale, jnp.float32)
            elif name in _BIAS_LEAVES:
                std = _bias_std(prior, fan_in, 1.0) * jnp.asarray(bias_scale, jnp.float32)
            else:
                raise ConfigError(f"sigma='init' does not know the parameter {name!r} of {type(model).__name__}; "
                                  "allowed: W, b, W_gate, b_gate")
            out[name] = jnp.broadcast_to(jnp.asarray(std, jnp.float32), leaf.shape)
        return out

    return ravel_pytree(layer(params))[0].astype(jnp.float32)


def network_log_volume(model, params, inputs, key=None, cost: str = "kl", n_directions: int = 100, epsilon=1e-2,
                       sigma=None, measure: str = "gaussian", rtol=1e-2, seed: int = 0,
                       max_steps: int = MAX_STEPS, directions: str = "mixture", alpha: float = DEFAULT_ALPHA,
                       search: str = "secant", widths: tuple = DEFAULT_WIDTHS, weight_scale=1.0, bias_scale=1.0,
                       slots=None, normalize=None, start: str = "one", **apply_kwargs) -> VolumeEstimate:
    """``log_volume`` of a network's cost on ``inputs``; ``key=None`` uses ``direction_key(w0, seed)`` (what the
    sweep measure does). ``sigma="init"`` is the model's own prior at ``weight_scale`` / ``bias_scale``
    (``init_std``)."""
    cost_fn, w0 = network_cost(model, params, inputs, cost, **apply_kwargs)
    key = direction_key(w0, seed) if key is None else key
    if isinstance(sigma, str) and sigma == "init":
        sigma = init_std(model, params, weight_scale, bias_scale)
    return log_volume(cost_fn, w0, key, n_directions, epsilon, sigma, measure, rtol, max_steps, directions, alpha,
                      search, None, widths, slots, normalize, start)


# ------------------------------------------------------------------------------------------------------------
# the sweep measure (a network measure, DESIGN.md section 11) and argument checks

VOLUME_ARGS = {"cost": "kl", "epsilon": 1e-2, "n_directions": 100, "measure": "gaussian", "sigma": None,
               "rtol": 1e-2, "seed": 0, "statistic": "log_volume", "resolution": None, "max_steps": MAX_STEPS,
               "directions": "mixture", "alpha": DEFAULT_ALPHA, "search": "secant", "widths": list(DEFAULT_WIDTHS),
               "normalize": None, "epsilons": None, "start": "one"}
# stored beside every estimate of the sweep measure (``volume_saturated``, ...; DESIGN.md section 21)
DIAGNOSTICS = ("saturated", "ess", "unbracketed", "resolved", "unmoved")


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
        "sigma": (lambda v: v is None or v in ("rms", "init") or _positive_number(v),
                  "None or 'rms' (the RMS of the parameters), 'init' (the model's own prior) or a number > 0"),
        "directions": (lambda v: v in DIRECTIONS, ", ".join(DIRECTIONS)),
        "search": (lambda v: v in SEARCHES, ", ".join(SEARCHES)),
        "start": (lambda v: v in STARTS, ", ".join(STARTS)),
        "alpha": (lambda v: _positive_number(v) and v <= 1, "a number in (0, 1]"),
        "normalize": (lambda v: v is None or isinstance(v, bool),
                      "None (self-normalised for the mixture), True or False"),
        "widths": (lambda v: isinstance(v, (list, tuple)) and len(v) > 0
                   and all(_positive_number(w) and w >= 1 for w in v), "a list of numbers >= 1"),
        "epsilons": (lambda v: v is None or (isinstance(v, (list, tuple)) and len(v) > 0
                                             and all(_positive_number(e) for e in v)
                                             and len(set(v)) == len(v)),
                     "None or a list of distinct finite numbers > 0 (the epsilon axis)"),
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


def epsilon_suffix(epsilon) -> str:
    """The result variable's suffix of one value of the epsilon axis: ``eps0.001``."""
    return f"eps{float(epsilon):g}"


def _volume_outputs(epsilons=None, **_):
    extra = list(DIAGNOSTICS)
    for eps in epsilons or ():
        extra += [epsilon_suffix(eps), f"{epsilon_suffix(eps)}_resolved", f"{epsilon_suffix(eps)}_saturated"]
    return tuple(extra)


def _volume_measure(model, params, inputs, numeric, cost="kl", epsilon=1e-2, n_directions=100, measure="gaussian",
                    sigma=None, rtol=1e-2, seed=0, statistic="log_volume", resolution=None, max_steps=MAX_STEPS,
                    directions="mixture", alpha=DEFAULT_ALPHA, search="secant", widths=DEFAULT_WIDTHS, normalize=None,
                    epsilons=None, start="one"):
    """The statistic at ``epsilon`` with its diagnostics, and at each of ``epsilons`` (one radius search over the
    same rays for all of them, in one program)."""
    init_args, apply_args = split_numeric(model, numeric)
    values = [float(epsilon)] + [float(e) for e in epsilons or () if float(e) != float(epsilon)]
    est = network_log_volume(model, params, _cost_inputs(inputs, resolution), None, cost, n_directions,
                             np.asarray(values, np.float32), sigma, measure, rtol, seed, max_steps, directions, alpha,
                             search, tuple(widths), init_args.get("weight_scale", 1.0),
                             init_args.get("bias_scale", 1.0), normalize=normalize, start=start, **apply_args)

    def at(name, i):
        return jnp.asarray(getattr(est, name)[i], jnp.float32)

    out = {"": at(statistic, 0), **{name: at(name, 0) for name in DIAGNOSTICS}}
    for eps in epsilons or ():
        i = values.index(float(eps))
        out[epsilon_suffix(eps)] = at(statistic, i)
        out[f"{epsilon_suffix(eps)}_resolved"] = at("resolved", i)
        out[f"{epsilon_suffix(eps)}_saturated"] = at("saturated", i)
    return out


def _check_measure(sweep, **args):
    check_volume_args("measure 'volume'", args)
    model = sweep.model
    if not hasattr(model, "apply"):
        raise ConfigError(f"measure 'volume' needs a model with apply(params, inputs); got {type(model).__name__}")


register_measure("volume", "network", _volume_measure, VOLUME_ARGS, check=_check_measure, outputs=_volume_outputs)
