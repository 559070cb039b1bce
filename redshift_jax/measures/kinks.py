"""Kinks and linear regions of random piecewise-linear networks (DESIGN.md section 15; Holmes, arXiv 2304.09837).

For an ``MLP`` whose hidden layers are piecewise linear in their input (activation ``relu`` or ``identity``, any
prefactor, any depth, ``residual`` False / True / ``"block"``; no layer norm, no gating), the network function
``f`` is piecewise linear, and this module finds where it bends (the exact algorithm and the sweep measures;
Holmes' closed forms, the kinks_holmes summaries and figures are ``redshift_jax.studies.kinks``, which is
``rj.kinks`` and re-exports the names below)::

    import redshift_jax as rj
    spec = rj.MLP(in_dim=1, width=100, prior="uniform")
    params = spec.init(key)
    rj.kinks.count_1d(spec, params, lo=-1.0, hi=1.0)              # float32 count (NaN: see below)
    pos, n = rj.kinks.positions_1d(spec, params, -1.0, 1.0)         # ascending, NaN-padded to max_kinks
    rj.kinks.count_1d_many(spec, batch_of_params)                   # (B,) counts, fastest for many networks
    rj.kinks.positions_1d_many(spec, batch_of_params, -3.0, 3.0)    # (B, max_kinks) positions, (B,) counts
    rj.kinks.linear_regions_2d(spec2, params2, -1.0, 1.0, resolution=64)

All of them are pure jnp (jit- and vmap-safe; ``spec``, ``max_kinks`` and ``resolution`` are static). The
sweep measures ``kinks`` (1-D input) and ``linear_regions`` (2-D input) are network measures (section 11).

What is counted
---------------
*Kink*: a point ``x`` strictly inside ``(lo, hi)`` where the slope of ``f`` changes: ``f'(x+) != f'(x-)``. A
unit switching is not enough (its change can be cancelled downstream or by another unit switching at the same
point). A kink exactly at ``lo`` or ``hi`` is not counted: ``f`` restricted to ``[lo, hi]`` has no slope
change there (the interval is open at both ends; with continuous priors this happens with probability 0).

*Algorithm* (exact up to float32 rounding, no sampling): every hidden unit is linear in ``x`` between
consecutive *candidate* breakpoints. Layer 1's candidates are its units' zero crossings ``-b/w`` (correctly
rounded float32 divisions); layer ``l``'s pre-activations are affine on each segment left by layers ``< l``, so
their zero crossings (a sign change between the segment's ends, located by linear interpolation) are the new
candidates. Each unit's on/off state on every final segment follows from the same sign tests (never from
evaluating at a tiny segment's midpoint), so the activation patterns on either side of every candidate are
consistent. Candidates that are bitwise equal are one point. At each point the slope change
``Delta = f'(x+) - f'(x-)`` is propagated directly (a forward-mode difference through the layers, so its
rounding is relative to the change itself, not to the total slope), together with ``bound``, the same sum taken
over absolute values. The point is a kink iff ``|Delta| > SLOPE_RTOL * bound``.

- One unit alone at a point (the generic case): at depth 1 ``Delta = |p w| v`` and ``bound = |Delta|``, so it
  is a kink exactly when ``v != 0`` (and ``w != 0``, ``p != 0``); at depth > 1 a unit whose change is stopped by
  dead units downstream gives ``Delta = 0`` exactly.
- Units sharing a kink (bitwise equal candidates): one point; it counts once if their summed change survives the
  tolerance, and not at all when the changes cancel (e.g. ``v_j = -v_i`` for two copies of a unit).
- Resolution: positions are float32 numbers, and two distinct true kinks whose float32 positions coincide count
  as one point. At depth 1 and width 1000 (about 500 kinks in [-1, 1]) 111 of 50,000 uniform-prior networks
  (0.22%; normal 0.23%, ball 0%) had such a tie, each then counted 1 low (a bias of -0.002 kinks per network,
  against a spread of 16); the rate falls with the square of the number of kinks.

*Caps*: depth 1 needs no cap (at most ``width`` kinks; ``count_1d`` is exact for any width). Deeper networks
carry at most ``max_kinks`` candidates (default ``default_max_kinks(spec)``); when a network has more, its count
is NaN and its positions all NaN, never a truncated number. Non-finite parameters or prefactor give NaN.

*Linear regions* (2-D input): the number of distinct activation patterns (activation regions: each is a convex
polygon on which ``f`` is affine; Hanin & Rolnick's count, an upper bound on the number of distinct affine
pieces) met by the ``2 * resolution`` grid lines ``x = c`` and ``y = c``, ``c`` in ``linspace(lo, hi,
resolution)``, each traced exactly as in 1-D. A region is counted iff its interior meets one of the lines, so
the count is exact for every region whose bounding box is wider than one grid cell ``(hi - lo) / (resolution -
1)`` in x or in y, and it only misses regions lying strictly inside one cell. It is a lower bound that converges
to the true count as the resolution grows (monotonically along ``resolution = 2**k + 1``, whose grids are
nested). Patterns are compared through two independent 32-bit hashes (collision probability ~1e-19 per pair).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from ..models.activations import ACTIVATIONS
from .base import register_measure

__all__ = [
    "PIECEWISE_LINEAR", "SLOPE_RTOL", "check_spec", "default_max_kinks", "count_1d", "count_1d_many",
    "positions_1d", "positions_1d_many", "linear_regions_2d",
]

PIECEWISE_LINEAR = ("relu", "identity")   # the piecewise-linear activations this algorithm implements
# |Delta| <= SLOPE_RTOL * bound is "no slope change" (see the module docstring); 2**-17 ~ 7.6e-6, about 64 ulp.
SLOPE_RTOL = 2.0 ** -17
_SENTINEL = np.int32(2 ** 31 - 1)   # order key of "no candidate"; above every finite float's key
_TIE_SLOTS = 4                      # tie clusters the depth-1 fast path resolves in place (more: exact fallback)
_HASH_SEED = 0x5EED


# ------------------------------------------------------------------------------------------------------------
# validation

def check_spec(spec, in_dim: int | None = 1, what: str = "kinks") -> None:
    """Raise ConfigError unless ``spec`` is an MLP whose function is piecewise linear (and has ``in_dim``)."""
    name = type(spec).__name__
    if not all(hasattr(spec, f) for f in ("activation", "layernorm", "gating", "residual", "depth", "width",
                                          "in_dim")):
        raise ConfigError(f"{what} needs an MLP (piecewise-linear network); got {name}; allowed: redshift_jax.MLP "
                          f"with activation in {', '.join(PIECEWISE_LINEAR)}")
    activation = ACTIVATIONS.get(spec.activation)
    if activation is None or not activation.piecewise_linear:
        raise ConfigError(f"{name}.activation={spec.activation!r} is not piecewise linear, so {what} is not "
                          f"defined; allowed: {', '.join(PIECEWISE_LINEAR)}")
    if spec.activation not in PIECEWISE_LINEAR:
        raise ConfigError(f"{name}.activation={spec.activation!r} is piecewise linear, but the exact algorithm "
                          f"implements only {', '.join(PIECEWISE_LINEAR)}")
    if spec.layernorm:
        raise ConfigError(f"{name}.layernorm=True is not piecewise linear (it divides by the layer's spread), so "
                          f"{what} is not defined; allowed: layernorm=False")
    if spec.gating:
        raise ConfigError(f"{name}.gating=True is not piecewise linear (it multiplies by a sigmoid), so {what} is "
                          f"not defined; allowed: gating=False")
    if spec.residual not in (False, True, "block"):
        raise ConfigError(f"{name}.residual={spec.residual!r} is not allowed for {what}; allowed: False, True, "
                          "'block'")
    if in_dim is not None and spec.in_dim != in_dim:
        kind = "1-D inputs (in_dim=1)" if in_dim == 1 else "2-D inputs (in_dim=2)"
        raise ConfigError(f"{name}.in_dim={spec.in_dim} is not allowed: {what} is defined for {kind}; "
                          f"allowed: in_dim={in_dim}")


def default_max_kinks(spec) -> int:
    """Candidate breakpoints kept per network (and per grid line): ``width`` at depth 1 (the exact maximum),
    ``4 * width * depth + 64`` deeper (random ReLU networks place about one switch point per unit or fewer on
    [-1, 1]; a network with more gets NaN, never a truncated count)."""
    if spec.depth == 1:
        return int(spec.width)
    return int(4 * spec.width * spec.depth + 64)


def _check_max_kinks(max_kinks, spec) -> int:
    if max_kinks is None:
        return default_max_kinks(spec)
    if isinstance(max_kinks, bool) or not isinstance(max_kinks, (int, np.integer)) or max_kinks < 1:
        raise ConfigError(f"max_kinks={max_kinks!r} is not allowed; allowed: None or an integer >= 1")
    return int(max_kinks)


# ------------------------------------------------------------------------------------------------------------
# helpers

def _order_key(t):
    """float32 -> int32 with the same order (-0 taken as +0); int sorts are ~3x faster than float sorts on CPU."""
    t = jnp.where(t == 0, jnp.float32(0), t)
    bits = jax.lax.bitcast_convert_type(t, jnp.int32)
    return jnp.where(bits < 0, bits ^ jnp.int32(0x7FFFFFFF), bits)


def _from_key(key):
    bits = jnp.where(key < 0, key ^ jnp.int32(0x7FFFFFFF), key)
    return jax.lax.bitcast_convert_type(bits, jnp.float32)


def _net(params):
    """(W1 (in_dim, n), b1 (n,), stacked hidden W (depth-1, n, n), b (depth-1, n), readout v (n,))."""
    return (params["first"]["W"], params["first"]["b"], params["hidden"]["W"], params["hidden"]["b"],
            params["readout"]["W"][:, 0])


def _all_finite(params, *scalars):
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(params)]
    leaves += [jnp.isfinite(jnp.asarray(s, jnp.float32)) for s in scalars]
    return functools.reduce(jnp.logical_and, leaves)


def _matmul(a, b):
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def _act(spec, pre, p):
    return jax.nn.relu(p * pre) if spec.activation == "relu" else p * pre


def _first_out(spec, pre, p):
    """Output of hidden layer 1 (no skip of the input for residual="block")."""
    return pre + _act(spec, pre, p) if spec.residual is True else _act(spec, pre, p)


def _later_out(spec, h_prev, pre, p):
    """Output of hidden layers 2..depth (MLP semantics, DESIGN.md section 4)."""
    if spec.residual is True:
        return pre + _act(spec, pre, p)
    if spec.residual == "block":
        return h_prev + _act(spec, pre, p)
    return _act(spec, pre, p)


def _pre_hidden(spec, net, x, p, index):
    """Pre-activation of hidden layer ``index + 2`` at inputs ``x`` (N, in_dim); ``index`` may be traced."""
    w1, b1, wh, bh, _ = net
    h = _first_out(spec, _matmul(x, w1) + b1, p)
    h = jax.lax.fori_loop(0, index, lambda i, h: _later_out(spec, h, _matmul(h, wh[i]) + bh[i], p), h)
    return _matmul(h, wh[index]) + bh[index]


# ------------------------------------------------------------------------------------------------------------
# depth 1: sort the crossings, resolve ties

def _depth1_terms(params, lo, hi, p):
    w = params["first"]["W"][0]
    b = params["first"]["b"]
    v = params["readout"]["W"][:, 0]
    t = -b / w
    delta = jnp.abs(p * w) * v                       # slope change of f where unit j switches (any residual form)
    valid = (w != 0) & (t > lo) & (t < hi) & (delta != 0)
    key = jnp.where(valid, _order_key(t), _SENTINEL)
    return key, jnp.where(valid, delta, 0.0), valid


def _depth1_fast(key, delta, valid):
    """(count, needs_fallback): exact unless more than ``_TIE_SLOTS`` clusters of equal positions."""
    ks = jax.lax.sort(key, is_stable=False)
    count = jnp.sum(valid, dtype=jnp.int32)
    if ks.shape[0] < 2:
        return count, jnp.bool_(False)
    same = (ks[1:] == ks[:-1]) & (ks[:-1] != _SENTINEL)
    starts = same & jnp.concatenate([jnp.ones((1,), bool), ~same[:-1]])   # first member of each tie cluster
    n_ties = jnp.sum(starts, dtype=jnp.int32)
    rank = jnp.cumsum(starts, dtype=jnp.int32)
    correction = jnp.int32(0)
    for m in range(_TIE_SLOTS):
        value = jnp.sum(jnp.where(starts & (rank == m + 1), ks[:-1], 0))
        members = valid & (key == value) & (n_ties > m)
        total = jnp.sum(jnp.where(members, delta, 0.0))
        size = jnp.sum(jnp.abs(jnp.where(members, delta, 0.0)))
        kink = jnp.abs(total) > SLOPE_RTOL * size
        correction += jnp.sum(members, dtype=jnp.int32) - kink.astype(jnp.int32)
    return count - correction, n_ties > _TIE_SLOTS


def _depth1_exact(key, delta):
    """Kink flags per sorted cluster start, and the sorted keys: exact for any number of ties."""
    n = key.shape[0]
    ks = jax.lax.sort(key, is_stable=False)
    cluster = jnp.searchsorted(ks, key, side="left")          # index of the first equal key = cluster id
    total = jax.ops.segment_sum(delta, cluster, num_segments=n)
    size = jax.ops.segment_sum(jnp.abs(delta), cluster, num_segments=n)
    first = (ks != _SENTINEL) & jnp.concatenate([jnp.ones((1,), bool), ks[1:] != ks[:-1]])
    return first & (jnp.abs(total) > SLOPE_RTOL * size), ks


def _depth1_count(params, lo, hi, p):
    key, delta, valid = _depth1_terms(params, lo, hi, p)
    count, fallback = _depth1_fast(key, delta, valid)
    return jax.lax.cond(fallback, lambda: jnp.sum(_depth1_exact(key, delta)[0], dtype=jnp.int32), lambda: count)


_LANES = 128   # networks per block of the batched sort


def _bitonic(x):
    """Sort (N, lanes) int32 columns ascending along axis 0, N a power of two: a bitonic network of min/max
    steps, each one elementwise pass over the block (SIMD across the lanes)."""
    n = x.shape[0]
    size = 2
    while size <= n:
        stride = size // 2
        while stride >= 1:
            blocks = n // (2 * stride)
            ascending = jnp.asarray(((np.arange(blocks) * 2 * stride) & size) == 0).reshape(blocks, 1, 1)
            pairs = x.reshape(blocks, 2, stride, x.shape[1])
            a, b = pairs[:, 0], pairs[:, 1]
            low, high = jnp.minimum(a, b), jnp.maximum(a, b)
            x = jnp.stack([jnp.where(ascending, low, high), jnp.where(ascending, high, low)], 1).reshape(x.shape)
            stride //= 2
        size *= 2
    return x


def _sort_rows(keys):
    """``keys`` (B, n) int32 sorted along each row: on CPU 1.3-2.4x faster than ``lax.sort`` for many rows of
    ~1000 (XLA:CPU sorts one row at a time through a comparator call; the network is vectorized across rows)."""
    batch, n = keys.shape
    size = 1 << max(0, (n - 1).bit_length())
    lanes = min(_LANES, batch)
    blocks = -(-batch // lanes)
    x = jnp.pad(keys, ((0, blocks * lanes - batch), (0, size - n)), constant_values=_SENTINEL)
    x = jax.lax.map(_bitonic, x.reshape(blocks, lanes, size).transpose(0, 2, 1))
    return x.transpose(0, 2, 1).reshape(blocks * lanes, size)[:batch, :n]


# ------------------------------------------------------------------------------------------------------------
# any depth: candidate breakpoints layer by layer along a line x(t) = a + t u, t in (lo, hi)

def _trace(spec, net, a, u, lo, hi, p, max_kinks: int):
    """Candidates and activation patterns along x(t) = a + t u.

    Returns ``(cand, count, overflow, patterns)``: ``cand`` (M,) ascending, +inf padded; ``count`` valid ones;
    ``overflow`` when more than M were found; ``patterns`` (depth, M + 1, width) bool, the units' on/off state
    on segment s = [cand[s-1], cand[s]] (cand[-1] = lo, cand[count] = hi). Layers 2..depth run in a
    ``lax.scan``, so the compiled size does not grow with depth.
    """
    m = max_kinks
    inf = jnp.float32(jnp.inf)
    w1, b1 = net[0], net[1]
    c0 = _matmul(a[None], w1)[0] + b1
    c1 = _matmul(u[None], w1)[0]
    t = -c0 / c1
    t = jnp.where(t == 0, jnp.float32(0), t)
    valid = (c1 != 0) & (t > lo) & (t < hi)
    cand = jnp.sort(jnp.where(valid, t, inf))
    found = jnp.sum(valid, dtype=jnp.int32)
    n = cand.shape[0]
    cand = cand[:m] if n >= m else jnp.concatenate([cand, jnp.full((m - n,), inf)])
    overflow = found > m
    count = jnp.minimum(found, m)
    left = jnp.concatenate([jnp.reshape(lo, (1,)), jnp.where(jnp.isfinite(cand), cand, hi)])
    constant = p * (c0 + (lo + hi) / 2 * c1) > 0
    state = jnp.where(valid, jnp.where(left[:, None] >= t[None], p * c1 > 0, p * c1 < 0), constant)
    patterns = jnp.zeros((spec.depth, m + 1, n), bool).at[0].set(state)
    if spec.depth == 1:
        return cand, count, overflow, patterns

    def layer(carry, index):
        cand, count, overflow, patterns = carry
        ends = jnp.concatenate([jnp.reshape(lo, (1,)), jnp.where(jnp.isfinite(cand), cand, hi),
                                jnp.reshape(hi, (1,))])
        z = _pre_hidden(spec, net, a[None] + ends[:, None] * u[None], p, index)     # (M + 2, width)
        zl, zr = z[:-1], z[1:]
        el, er = ends[:-1, None], ends[1:, None]
        cross = (zl * zr < 0) & (er > el)
        tc = jnp.clip(el + (er - el) * (zl / jnp.where(cross, zl - zr, 1.0)), el, er)
        inside = cross & (tc > lo) & (tc < hi)
        on_left, on_right = p * zl > 0, p * zr > 0
        # a unit without a crossing inside (lo, hi) keeps one state over the whole parent segment
        steady = jnp.where(cross, jnp.where(tc <= lo, on_right, on_left), p * (zl + zr) > 0)
        flat = inside.reshape(-1)
        slot = jnp.cumsum(flat, dtype=jnp.int32) - 1
        new = jnp.full((m,), inf).at[jnp.where(flat & (slot < m), slot, m)].set(tc.reshape(-1), mode="drop")
        found = count + jnp.sum(flat, dtype=jnp.int32)
        overflow = overflow | (found > m)
        count = jnp.minimum(found, m)
        old = jnp.concatenate([jnp.isfinite(cand), jnp.zeros((m,), bool)]).astype(jnp.int32)
        merged, is_old = jax.lax.sort((jnp.concatenate([cand, new]), old), num_keys=1)
        cand = merged[:m]
        parent = jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(is_old, dtype=jnp.int32)[:m]])
        left = jnp.concatenate([jnp.reshape(lo, (1,)), jnp.where(jnp.isfinite(cand), cand, hi)])
        state = jnp.where(inside[parent], jnp.where(left[:, None] >= tc[parent], on_right[parent], on_left[parent]),
                          steady[parent])
        patterns = patterns[:, parent].at[index + 1].set(state)
        return (cand, count, overflow, patterns), None

    carry, _ = jax.lax.scan(layer, (cand, count, overflow, patterns), jnp.arange(spec.depth - 1))
    return carry


def _slope_changes(spec, net, u, cand, count, patterns, p):
    """(is_point, delta, bound) per candidate index: is_point marks the last member of each cluster of equal
    candidates; delta = f'(right) - f'(left) across the cluster, bound the same over absolute values."""
    w1, _, wh, _, v = net
    m = cand.shape[0]
    index = jnp.arange(m)
    valid = index < count
    nxt = jnp.concatenate([cand[1:], jnp.full((1,), jnp.inf, cand.dtype)])
    prv = jnp.concatenate([jnp.full((1,), -jnp.inf, cand.dtype), cand[:-1]])
    is_last = valid & ((cand != nxt) | (index == count - 1))
    is_first = valid & (cand != prv)
    left_seg = jax.lax.cummax(jnp.where(is_first, index, 0))
    right_seg = index + 1
    gains = p * patterns.astype(jnp.float32)                    # (depth, M + 1, width): d act / d pre
    # layer 1
    dpre = jnp.broadcast_to(_matmul(u[None], w1), (m + 1, w1.shape[1]))
    g_left, g_right = gains[0][left_seg], gains[0][right_seg]
    switch = (g_right - g_left) * dpre[left_seg]                # the input tangent is the same on both sides
    residual = 1.0 if spec.residual is True else 0.0
    dh = (residual + gains[0]) * dpre
    delta, bound = switch, jnp.abs(switch)
    if spec.depth == 1:
        return is_last, _matmul(delta, v), _matmul(bound, jnp.abs(v))

    def layer(carry, inputs):
        dh, delta, bound = carry
        w, gain = inputs
        dpre = _matmul(dh, w)
        g_left, g_right = gain[left_seg], gain[right_seg]
        switch = (g_right - g_left) * dpre[left_seg]
        through = _matmul(delta, w)
        through_abs = _matmul(bound, jnp.abs(w))
        if spec.residual == "block":
            dh = dh + gain * dpre
            delta = delta + g_right * through + switch
            bound = bound + jnp.abs(g_right) * through_abs + jnp.abs(switch)
        else:
            dh = (residual + gain) * dpre
            delta = (residual + g_right) * through + switch
            bound = jnp.abs(residual + g_right) * through_abs + jnp.abs(switch)
        return (dh, delta, bound), None

    (_, delta, bound), _ = jax.lax.scan(layer, (dh, delta, bound), (wh, gains[1:]))
    return is_last, _matmul(delta, v), _matmul(bound, jnp.abs(v))


def _kinks_any_depth(spec, params, lo, hi, p, max_kinks):
    net = _net(params)
    a = jnp.zeros((1,), jnp.float32)
    u = jnp.ones((1,), jnp.float32)
    cand, count, overflow, patterns = _trace(spec, net, a, u, lo, hi, p, max_kinks)
    is_point, delta, bound = _slope_changes(spec, net, u, cand, count, patterns, p)
    kink = is_point & (jnp.abs(delta) > SLOPE_RTOL * bound)
    return kink, cand, overflow


def _scalars(lo, hi, prefactor):
    return (jnp.asarray(lo, jnp.float32), jnp.asarray(hi, jnp.float32), jnp.asarray(prefactor, jnp.float32))


# ------------------------------------------------------------------------------------------------------------
# public API

def count_1d(spec, params, lo=-1.0, hi=1.0, prefactor=1.0, max_kinks: int | None = None):
    """Number of kinks of a 1-D-input network on the open interval (lo, hi) (module docstring: what counts).

    Args:
      spec: an ``MLP`` with ``in_dim=1``, activation relu or identity, no layer norm or gating.
      params: its parameters (``spec.init``); one network.
      lo: the interval's lower end (may be traced).
      hi: its upper end (may be traced).
      prefactor: the activation prefactor ``p`` (relu(p * pre); may be traced).
      max_kinks: candidate cap for depth > 1 (default ``default_max_kinks(spec)``); ignored at depth 1, which
        is exact for any width.

    Returns:
      float32 scalar: the count; NaN if the cap was hit or a parameter is not finite.
    """
    check_spec(spec, 1, "kinks")
    max_kinks = _check_max_kinks(max_kinks, spec)
    lo, hi, p = _scalars(lo, hi, prefactor)
    ok = _all_finite(params, lo, hi, p)
    if spec.activation == "identity":
        return jnp.where(ok, jnp.float32(0), jnp.nan)
    if spec.depth == 1:
        count = _depth1_count(params, lo, hi, p).astype(jnp.float32)
        return jnp.where(ok, count, jnp.nan)
    kink, _, overflow = _kinks_any_depth(spec, params, lo, hi, p, max_kinks)
    return jnp.where(ok & ~overflow, jnp.sum(kink).astype(jnp.float32), jnp.nan)


def positions_1d(spec, params, lo=-1.0, hi=1.0, prefactor=1.0, max_kinks: int | None = None):
    """Kink positions of a 1-D-input network in (lo, hi): ``(positions, count)``.

    ``positions`` is float32 of static length ``max_kinks`` (default ``default_max_kinks(spec)``; at depth 1,
    ``width``), ascending, NaN after the last kink; ``count`` is ``count_1d``'s number. When the network has
    more candidates (depth > 1) or kinks (depth 1) than ``max_kinks``, or a non-finite parameter, every entry
    and the count are NaN.
    """
    check_spec(spec, 1, "kinks")
    max_kinks = _check_max_kinks(max_kinks, spec)
    lo, hi, p = _scalars(lo, hi, prefactor)
    ok = _all_finite(params, lo, hi, p)
    nan = jnp.full((max_kinks,), jnp.nan, jnp.float32)
    if spec.activation == "identity":
        return nan, jnp.where(ok, jnp.float32(0), jnp.nan)
    if spec.depth == 1:
        key, delta, _ = _depth1_terms(params, lo, hi, p)
        kink, ks = _depth1_exact(key, delta)
        where = _from_key(ks)
        overflow = jnp.sum(kink) > max_kinks
    else:
        kink, where, overflow = _kinks_any_depth(spec, params, lo, hi, p, max_kinks)
    count = jnp.sum(kink, dtype=jnp.int32)
    slot = jnp.cumsum(kink, dtype=jnp.int32) - 1
    positions = nan.at[jnp.where(kink & (slot < max_kinks), slot, max_kinks)].set(where, mode="drop")
    good = ok & ~overflow
    return jnp.where(good, positions, jnp.nan), jnp.where(good, count.astype(jnp.float32), jnp.nan)


def _canonical(spec):
    """The fields the counts depend on (the prior only shapes the parameters): one compile serves every prior."""
    return spec.replace(prior="paper") if getattr(spec, "prior", "paper") != "paper" else spec


def count_1d_many(spec, params, lo=-1.0, hi=1.0, prefactor=1.0, max_kinks: int | None = None):
    """``count_1d`` for a batch of networks (every leaf of ``params`` has a leading batch axis), jitted.

    The same numbers as ``jax.vmap(count_1d)``, faster: at depth 1 the positions of all networks are sorted by a
    vectorized network and only the rare networks with tied positions take the exact tie resolution (where
    ``vmap`` of ``count_1d`` would evaluate it for every network). ``prefactor`` may be a scalar or one value per
    network.
    """
    check_spec(spec, 1, "kinks")
    return _count_1d_many(_canonical(spec), params, lo, hi, prefactor, _check_max_kinks(max_kinks, spec))


def positions_1d_many(spec, params, lo=-1.0, hi=1.0, prefactor=1.0, max_kinks: int | None = None):
    """``positions_1d`` for a batch of networks (leading batch axis on every leaf), jitted: ``(positions (B,
    max_kinks), counts (B,))``."""
    check_spec(spec, 1, "kinks")
    return _positions_1d_many(_canonical(spec), params, lo, hi, prefactor, _check_max_kinks(max_kinks, spec))


@functools.partial(jax.jit, static_argnames=("spec", "max_kinks"))
def _positions_1d_many(spec, params, lo, hi, prefactor, max_kinks):
    p = jnp.broadcast_to(jnp.asarray(prefactor, jnp.float32), (jax.tree.leaves(params)[0].shape[0],))
    return jax.vmap(lambda q, pp: positions_1d(spec, q, lo, hi, pp, max_kinks))(params, p)


@functools.partial(jax.jit, static_argnames=("spec", "max_kinks"))
def _count_1d_many(spec, params, lo, hi, prefactor, max_kinks):
    lo, hi, p = _scalars(lo, hi, prefactor)
    batch = jax.tree.leaves(params)[0].shape[0]
    p = jnp.broadcast_to(p, (batch,))
    if spec.depth > 1 or spec.activation == "identity":
        return jax.vmap(lambda q, pp: count_1d(spec, q, lo, hi, pp, max_kinks))(params, p)
    ok = jax.vmap(lambda q, pp: _all_finite(q, lo, hi, pp))(params, p)
    key, delta, valid = jax.vmap(lambda q, pp: _depth1_terms(q, lo, hi, pp))(params, p)
    ks = _sort_rows(key)
    count = jnp.sum(valid, axis=1, dtype=jnp.int32)             # exact for every network without tied positions
    tied = jnp.any((ks[:, 1:] == ks[:, :-1]) & (ks[:, :-1] != _SENTINEL), axis=1)
    # networks with ties are rare (about 1 in 400 at width 1000): resolve up to `room` of them exactly, all of
    # them (for the whole batch) only when there are more
    room = max(8, batch // 64)
    which = jnp.nonzero(tied, size=room, fill_value=0)[0]

    def exact_count(k, d):
        return jnp.sum(_depth1_exact(k, d)[0], dtype=jnp.int32)

    resolved = jax.vmap(exact_count)(key[which], delta[which])
    count = count.at[which].set(jnp.where(tied[which], resolved, count[which]))
    count = jax.lax.cond(jnp.sum(tied) > room, lambda: jnp.where(tied, jax.vmap(exact_count)(key, delta), count),
                         lambda: count)
    return jnp.where(ok, count.astype(jnp.float32), jnp.nan)


def linear_regions_2d(spec, params, lo=-1.0, hi=1.0, resolution: int = 64, prefactor=1.0,
                      max_kinks: int | None = None):
    """Number of activation regions of a 2-D-input network met by the grid lines of ``[lo, hi]^2``.

    The ``resolution`` vertical and ``resolution`` horizontal lines at ``linspace(lo, hi, resolution)`` are
    traced exactly (as in ``count_1d``); every segment between consecutive breakpoints lies in one region, known
    by its activation pattern; the result is the number of distinct patterns (module docstring: what is counted
    and how it converges). float32; NaN when a line has more than ``max_kinks`` candidates (default
    ``default_max_kinks(spec)``) or a parameter is not finite.
    """
    check_spec(spec, 2, "linear_regions")
    max_kinks = _check_max_kinks(max_kinks, spec)
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise ConfigError(f"resolution={resolution!r} is not allowed for linear_regions; allowed: an integer >= 2")
    lo, hi, p = _scalars(lo, hi, prefactor)
    ok = _all_finite(params, lo, hi, p)
    if spec.activation == "identity":
        return jnp.where(ok, jnp.float32(1), jnp.nan)
    net = _net(params)
    coords = jnp.linspace(lo, hi, resolution, dtype=jnp.float32)
    zero = jnp.zeros_like(coords)
    # horizontal lines y = c (x = t), then vertical lines x = c (y = t)
    starts = jnp.concatenate([jnp.stack([zero, coords], 1), jnp.stack([coords, zero], 1)])
    dirs = jnp.concatenate([jnp.broadcast_to(jnp.array([1.0, 0.0], jnp.float32), (resolution, 2)),
                            jnp.broadcast_to(jnp.array([0.0, 1.0], jnp.float32), (resolution, 2))])
    rng = np.random.default_rng(_HASH_SEED)
    mult = [jnp.asarray(rng.integers(1, 2 ** 32, size=(spec.depth, spec.width), dtype=np.uint64).astype(np.uint32)
                        | np.uint32(1)) for _ in range(2)]

    def line(a, u):
        cand, count, overflow, patterns = _trace(spec, net, a, u, lo, hi, p, max_kinks)
        ends = jnp.where(jnp.isfinite(cand), cand, hi)
        left = jnp.concatenate([jnp.reshape(lo, (1,)), ends])
        right = jnp.concatenate([ends, jnp.reshape(hi, (1,))])
        seg_ok = (jnp.arange(max_kinks + 1) <= count) & (right > left)
        bits = jnp.transpose(patterns, (1, 0, 2)).astype(jnp.uint32)   # (M + 1, depth, width)
        hashes = [jnp.sum(bits * h[None], axis=(1, 2), dtype=jnp.uint32) for h in mult]
        return hashes, seg_ok, overflow

    (h1, h2), seg_ok, overflow = jax.vmap(line)(starts, dirs)
    h1, h2, seg_ok = h1.reshape(-1), h2.reshape(-1), seg_ok.reshape(-1)
    invalid = (~seg_ok).astype(jnp.uint32)
    inv, h1, h2 = jax.lax.sort((invalid, h1, h2), num_keys=3)
    new = jnp.concatenate([jnp.ones((1,), bool), (h1[1:] != h1[:-1]) | (h2[1:] != h2[:-1]) | (inv[1:] != inv[:-1])])
    regions = jnp.sum(new & (inv == 0)).astype(jnp.float32)
    return jnp.where(ok & ~jnp.any(overflow), regions, jnp.nan)


# ------------------------------------------------------------------------------------------------------------
# sweep measures (network measures, DESIGN.md section 11)

def _interval(inputs, lo, hi):
    """The measure's interval: the given ends, else the sweep's grid ends (the grid includes lo and hi)."""
    lo = jnp.min(inputs) if lo is None else jnp.float32(lo)
    hi = jnp.max(inputs) if hi is None else jnp.float32(hi)
    return lo, hi


def _kinks_measure(model, params, inputs, numeric, lo=None, hi=None, max_kinks=None):
    lo, hi = _interval(inputs, lo, hi)
    return count_1d(model, params, lo, hi, numeric.get("prefactor", 1.0), max_kinks)


def _regions_measure(model, params, inputs, numeric, lo=None, hi=None, lines=None, max_kinks=None):
    lo, hi = _interval(inputs, lo, hi)
    lines = int(round(math.sqrt(inputs.shape[0]))) if lines is None else lines
    return linear_regions_2d(model, params, lo, hi, lines, numeric.get("prefactor", 1.0), max_kinks)


def _check_measure(sweep, in_dim, what, lo=None, hi=None, max_kinks=None, lines=None):
    model = sweep.model
    check_spec(model, in_dim, what)
    for axis in ("activation", "layernorm", "gating", "residual"):
        values = sweep.axes.get(axis, ())
        for value in values:
            check_spec(model.replace(**{axis: value}), in_dim, what)
    for name, value in (("lo", lo), ("hi", hi)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise ConfigError(f"measure {what!r}: {name}={value!r} is not allowed; allowed: None (the sweep's "
                              "interval) or a finite number")
    a = sweep.lo if lo is None else lo
    b = sweep.hi if hi is None else hi
    if not a < b:
        raise ConfigError(f"measure {what!r}: lo={a!r}, hi={b!r} is not allowed; need lo < hi")
    if max_kinks is not None:
        _check_max_kinks(max_kinks, model)
    if lines is not None and (isinstance(lines, bool) or not isinstance(lines, int) or lines < 2):
        raise ConfigError(f"measure {what!r}: lines={lines!r} is not allowed; allowed: None (the sweep's "
                          "resolution) or an integer >= 2")


register_measure("kinks", "network", _kinks_measure, {"lo": None, "hi": None, "max_kinks": None},
                 check=lambda sweep, **args: _check_measure(sweep, 1, "kinks", **args))
register_measure("linear_regions", "network", _regions_measure,
                 {"lo": None, "hi": None, "lines": None, "max_kinks": None},
                 check=lambda sweep, **args: _check_measure(sweep, 2, "linear_regions", **args))
