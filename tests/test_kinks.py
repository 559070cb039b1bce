"""Exact kinks and linear regions (DESIGN.md section 15): ``redshift_jax.measures.kinks`` against independent
float64 numpy references, the closed forms of Holmes (arXiv 2304.09837; ``redshift_jax.studies.kinks``) by Monte
Carlo, the sweep measures, the sweep file and the notebook."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import redshift_jax as rj
from redshift_jax.measures import kinks as KM
from redshift_jax.studies import kinks as K

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------------------
# float64 numpy reference: dense evaluation plus bisection on slope changes

def _np_layers(spec, params):
    p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    layers = [(p64["first"]["W"], p64["first"]["b"])]
    for i in range(spec.depth - 1):
        layers.append((p64["hidden"]["W"][i], p64["hidden"]["b"][i]))
    return layers, p64["readout"]["W"][:, 0]


def _np_slope(spec, params, t, p=1.0, start=None, direction=None):
    """Slope of f along x(t) = start + t direction (1-D: x = t) at points t, and the activation patterns."""
    layers, v = _np_layers(spec, params)
    t = np.asarray(t, np.float64)
    if direction is None:
        h, dh = t[:, None], np.ones((t.size, 1))
    else:
        h = start[None] + t[:, None] * direction[None]
        dh = np.broadcast_to(direction, h.shape)
    patterns = []
    for layer, (w, b) in enumerate(layers, start=1):
        pre, dpre = h @ w + b, dh @ w
        if spec.activation == "relu":
            on = p * pre > 0
            act, dact = np.maximum(p * pre, 0.0), p * on * dpre
        else:
            on = np.ones(pre.shape, bool)
            act, dact = p * pre, p * dpre
        patterns.append(on)
        if spec.residual is True:
            h, dh = pre + act, dpre + dact
        elif spec.residual == "block" and layer >= 2:
            h, dh = h + act, dh + dact
        else:
            h, dh = act, dact
    return dh @ v, np.concatenate(patterns, axis=1)


def reference_kinks(spec, params, lo=-1.0, hi=1.0, p=1.0, points=4001, rtol=1e-11):
    """Kink positions in (lo, hi): slopes on a dense grid of interior points, then bisection of every interval
    whose end slopes differ (relative tolerance rtol of the largest slope) down to 1e-12 of the interval."""
    span = hi - lo
    xs = np.concatenate([[lo + 1e-12 * span], lo + (np.arange(points) + 0.5) * span / points, [hi - 1e-12 * span]])
    s, _ = _np_slope(spec, params, xs, p)
    tol = rtol * (1.0 + np.max(np.abs(s)))
    a, b, sa, sb = xs[:-1], xs[1:], s[:-1], s[1:]
    keep = np.abs(sb - sa) > tol
    a, b, sa, sb = a[keep], b[keep], sa[keep], sb[keep]
    found = []
    while a.size:
        small = (b - a) < 1e-12 * span
        found.extend(((a + b) / 2)[small].tolist())
        a, b, sa, sb = a[~small], b[~small], sa[~small], sb[~small]
        m = (a + b) / 2
        sm, _ = _np_slope(spec, params, m, p)
        left, right = np.abs(sm - sa) > tol, np.abs(sb - sm) > tol
        a, b = np.concatenate([a[left], m[right]]), np.concatenate([m[left], b[right]])
        sa, sb = np.concatenate([sa[left], sm[right]]), np.concatenate([sm[left], sb[right]])
    return np.sort(np.asarray(found))


def reference_regions(spec, params, lo, hi, resolution, p=1.0, points=2001):
    """Distinct activation patterns met along the 2 * resolution grid lines (dense points on every line, then
    bisection of every interval whose end patterns differ, collecting the patterns met on the way), float64."""
    coords = np.linspace(lo, hi, resolution)
    ts = lo + (np.arange(points) + 0.5) * (hi - lo) / points
    lines = [(np.array([0.0, c]), np.array([1.0, 0.0])) for c in coords]
    lines += [(np.array([c, 0.0]), np.array([0.0, 1.0])) for c in coords]
    seen = set()
    for start, direction in lines:
        _, pats = _np_slope(spec, params, ts, p, start, direction)
        seen |= {row.tobytes() for row in pats}
        change = np.flatnonzero(np.any(pats[1:] != pats[:-1], axis=1))
        a, b, pa, pb = ts[change], ts[change + 1], pats[change], pats[change + 1]
        while a.size:
            keep = (b - a) > 1e-12
            a, b, pa, pb = a[keep], b[keep], pa[keep], pb[keep]
            m = (a + b) / 2
            _, pm = _np_slope(spec, params, m, p, start, direction)
            seen |= {row.tobytes() for row in pm}
            left, right = np.any(pm != pa, axis=1), np.any(pm != pb, axis=1)
            a, b = np.concatenate([a[left], m[right]]), np.concatenate([m[left], b[right]])
            pa, pb = np.concatenate([pa[left], pm[right]]), np.concatenate([pm[left], pb[right]])
    return len(seen)


def _init_many(spec, seeds, base=7, **scales):
    """``seeds`` networks of ``spec`` (keys ``fold_in(key(base), i)``), drawn in one program: the keys are made
    inside it (eagerly, each of their ops would compile on its own)."""
    @jax.jit
    def init(index):
        keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(base), index)
        return jax.vmap(lambda k: spec.init(k, **scales))(keys)

    return init(np.arange(seeds, dtype=np.uint32))


def _uniform_many(spec, count, seed=0):
    """``count`` networks of ``spec`` with the uniform prior's law at scales 1 (every W and b ~ U(-1, 1)), drawn
    by numpy, float32: for the tests compiled as users do, where ``spec.init``'s program alone costs 1-3 s of
    CPU (at the tests' cheaper level, under 0.5 s: ``_init_many``)."""
    rng = np.random.default_rng(seed)

    def layer(*shape):
        return {"W": rng.uniform(-1, 1, (count, *shape)).astype(np.float32),
                "b": rng.uniform(-1, 1, (count, shape[-1])).astype(np.float32)}

    first, readout = layer(spec.in_dim, spec.width), layer(spec.width, 1)
    hidden = layer(spec.depth - 1, spec.width, spec.width)
    hidden["b"] = rng.uniform(-1, 1, (count, spec.depth - 1, spec.width)).astype(np.float32)
    return {"first": first, "hidden": hidden, "readout": readout}


def _one(params, i):
    """Network i of a batch, as numpy arrays (indexing jax arrays eagerly compiles a slice per shape)."""
    return jax.tree.map(lambda a: np.asarray(a)[i], params)


# jitted once per spec (specs are hashable): eager calls would dispatch op by op. The wrappers always pass the
# interval and the prefactor (traced), so a call with other ends or another prefactor reuses the same program.
_count_jit = jax.jit(rj.kinks.count_1d, static_argnames=("spec", "max_kinks"))
_positions_jit = jax.jit(rj.kinks.positions_1d, static_argnames=("spec", "max_kinks"))


def _count(spec, params, lo=-1.0, hi=1.0, prefactor=1.0, max_kinks=None):
    return _count_jit(spec, params, lo, hi, prefactor, max_kinks=max_kinks)


def _positions(spec, params, lo=-1.0, hi=1.0, prefactor=1.0, max_kinks=None):
    return tuple(np.asarray(a) for a in _positions_jit(spec, params, lo, hi, prefactor, max_kinks=max_kinks))


# vmapped over a batch of 2-D networks; module-level, so tests asking for the same spec, batch and resolution at
# the same compile level share one program (the run's compilation cache)
_regions = jax.jit(jax.vmap(rj.kinks.linear_regions_2d, (None, 0, None, None, None)), static_argnums=(0, 4))


# ------------------------------------------------------------------------------------------------------------
# exact counts and positions against the brute-force reference

CASES = [  # depth, width, prior, weight_scale, residual, prefactor, seeds
    (1, 1, "uniform", 1.0, False, 1.0, 4),
    (1, 200, "normal", 1.0, False, 1.0, 2),
    (3, 20, "normal", 2.0, False, 0.5, 2),
    (4, 200, "paper", 4.0, False, 1.0, 1),
    (2, 10, "uniform", 1.0, True, -1.5, 2),
    (3, 10, "ball", 3.0, "block", 1.0, 2),
]


@pytest.mark.parametrize("depth,width,prior,scale,residual,prefactor,seeds", CASES)
def test_counts_and_positions_match_the_brute_force_reference(depth, width, prior, scale, residual, prefactor, seeds):
    spec = rj.MLP(in_dim=1, depth=depth, width=width, prior=prior, residual=residual)
    params = _init_many(spec, seeds, weight_scale=scale)
    pos, count = map(np.asarray, rj.kinks.positions_1d_many(spec, params, -1.0, 1.0, prefactor))
    # depth 1 counts have their own fast path; deeper ones share positions_1d's
    counts = np.asarray(rj.kinks.count_1d_many(spec, params, -1.0, 1.0, prefactor)) if depth == 1 else count
    for i in range(seeds):
        want = reference_kinks(spec, _one(params, i), p=prefactor)
        assert int(count[i]) == len(want) == int(counts[i]), (i, float(count[i]), len(want))
        got = pos[i]
        assert np.all(np.isnan(got[len(want):]))
        np.testing.assert_allclose(got[: len(want)], want, atol=2e-5)


@pytest.mark.product_compile
def test_the_any_depth_path_agrees_with_the_depth1_fast_path():
    spec = rj.MLP(in_dim=1, depth=1, width=200, prior="uniform")
    params = _uniform_many(spec, 16)
    fast = rj.kinks.count_1d_many(spec, params)
    general = jax.jit(jax.vmap(lambda q: jnp.sum(KM._kinks_any_depth(spec, q, jnp.float32(-1), jnp.float32(1),
                                                                     jnp.float32(1), 200)[0])))(params)
    np.testing.assert_array_equal(np.asarray(fast), np.asarray(general))


# Hand-made networks share two specs (so two compiles): units with w = 0 are padding (they never switch).
WIDE, DEEP = rj.MLP(in_dim=1, depth=1, width=12), rj.MLP(in_dim=1, depth=2, width=3)


def _depth1(w, b, v, width=12):
    """numpy float32 parameters (building them with jnp would compile a few eager ops per shape)."""
    pad = width - len(w)
    w, b, v = (np.concatenate([np.asarray(x, np.float32), np.zeros(pad, np.float32)]) for x in (w, b, v))
    return {"first": {"W": w[None], "b": b},
            "hidden": {"W": np.zeros((0, width, width), np.float32), "b": np.zeros((0, width), np.float32)},
            "readout": {"W": v[:, None], "b": np.zeros((1,), np.float32)}}


def _depth2(w, b, hidden_w, hidden_b):
    params = _depth1(w, b, np.ones(3), width=3)
    params["hidden"] = {"W": np.asarray([hidden_w], np.float32), "b": np.asarray([hidden_b], np.float32)}
    return params


def test_kinks_at_the_domain_ends_are_not_counted():
    # unit kinks at -1 (= lo), 1 (= hi), 0.25 (inside), 1.5 (outside)
    params = _depth1([1.0, 2.0, 4.0, 2.0], [1.0, -2.0, -1.0, -3.0], [1.0, 1.0, 1.0, 1.0])
    assert float(_count(WIDE, params)) == 1.0
    pos, count = _positions(WIDE, params)
    assert float(count) == 1.0 and float(pos[0]) == 0.25 and np.all(np.isnan(pos[1:]))
    assert len(reference_kinks(WIDE, params)) == 1
    # widen the interval: the end kinks are inside now
    assert float(_count(WIDE, params, -2.0, 2.0)) == 4.0
    # depth 2: layer 2 switches exactly at x = hi (pre = relu(x + 1) - 2 = 0 at x = 1) and at x = 0.5 (inside)
    params2 = _depth2([1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
                      [-2.0, -1.5, 0.0])
    assert float(_count(DEEP, params2)) == 1.0 == len(reference_kinks(DEEP, params2))
    assert float(_positions(DEEP, params2)[0][0]) == 0.5
    assert float(_count(DEEP, params2, -1.0, 1.5)) == 2.0


@pytest.mark.product_compile
def test_units_sharing_a_kink_count_once_and_cancel_when_their_changes_do():
    # units 0, 1 share the kink at 0.5 with equal changes: one kink; units 2 (w, b doubled: the same -b/w bit for
    # bit) and 3 share a kink at -0.25 with opposite changes |p w| v: no kink; unit 4 alone at 0.75; unit 5
    # switches at 0 with a zero readout weight: f does not bend there
    params = _depth1([1.0, 1.0, -2.0, -4.0, 1.0, 1.0], [-0.5, -0.5, -0.5, -1.0, -0.75, 0.0],
                     [1.0, 1.0, 1.0, -0.5, 3.0, 0.0])
    assert float(_count(WIDE, params)) == 2.0 == len(reference_kinks(WIDE, params))
    pos, count = _positions(WIDE, params)
    np.testing.assert_array_equal(pos[:3], [0.5, 0.75, np.nan])
    # depth 2: two copies of a layer-1 unit whose outgoing weights cancel in layer 2: their common switch point is
    # no kink, although both units switch there
    params2 = _depth2([1.0, 1.0, 1.0], [-0.3, -0.3, 0.4], [[0.7, 0.2, 0.0], [-0.7, -0.2, 0.0], [0.5, 0.5, 0.5]],
                      [0.1, 0.1, 0.1])
    ref = reference_kinks(DEEP, params2)
    got = _positions(DEEP, params2)
    assert float(got[1]) == len(ref) > 0 and not np.any(np.isclose(ref, 0.3))
    np.testing.assert_allclose(got[0][: len(ref)], ref, atol=1e-6)


@pytest.mark.product_compile
def test_many_tied_clusters_take_the_exact_fallback():
    # six pairs of duplicated units (6 tie clusters > the fast path's 4 slots); pairs 0-2 cancel, 3-5 add up
    t = np.array([-0.75, -0.5, -0.25, 0.25, 0.5, 0.75], np.float32)
    v = np.array([1, -1, 2, -2, 3, -3, 1, 1, 2, 2, 3, 3], np.float32)
    params = _depth1(np.ones(12), -np.repeat(t, 2), v)
    assert float(_count(WIDE, params)) == 3.0 == len(reference_kinks(WIDE, params))
    # batches of 10 (one compile): the tied network among 9 random ones is resolved one by one, the others are
    # counted as alone
    random = _uniform_many(WIDE, 9)
    batch = jax.tree.map(lambda a, r: np.concatenate([a[None], np.asarray(r)]), params, random)
    many = np.asarray(rj.kinks.count_1d_many(WIDE, batch))
    assert many[0] == 3.0
    np.testing.assert_array_equal(many[1:], [float(_count(WIDE, _one(random, i))) for i in range(9)])
    # more tied networks in one batch than the batch path resolves one by one (8): the whole batch goes exact
    many = rj.kinks.count_1d_many(WIDE, jax.tree.map(lambda a: np.stack([a] * 10), params))
    np.testing.assert_array_equal(np.asarray(many), 3.0)


def test_caps_and_non_finite_parameters_give_nan_never_a_truncated_count():
    params = _one(_init_many(WIDE, 1, weight_scale=3.0), 0)
    n = int(_count(WIDE, params))
    assert n > 2
    pos, count = _positions(WIDE, params, max_kinks=2)
    assert np.isnan(float(count)) and np.all(np.isnan(pos))
    deep = _depth2([1.0, 1.0, 1.0], [-0.3, 0.1, 0.4], [[0.7, 0.2, 0.1], [-0.7, -0.3, 0.2], [0.5, 0.5, 0.5]],
                   [0.1, -0.1, 0.1])
    assert float(_count(DEEP, deep)) >= 3
    assert np.isnan(float(_count(DEEP, deep, max_kinks=2)))
    bad = jax.tree.map(lambda a: a, params)
    bad["readout"]["b"] = np.asarray([np.nan], np.float32)
    assert np.isnan(float(_count(WIDE, bad)))
    assert np.isnan(float(_count(WIDE, params, prefactor=jnp.inf)))


def test_identity_networks_are_affine():
    params = _depth2([1.0, 1.0, 1.0], [-0.3, 0.1, 0.4], np.eye(3), [0.1, -0.1, 0.1])
    assert float(rj.kinks.count_1d(DEEP.replace(activation="identity", residual=True), params)) == 0.0
    params["first"]["W"] = np.ones((2, 3), np.float32)
    spec2 = DEEP.replace(activation="identity", in_dim=2)
    assert float(rj.kinks.linear_regions_2d(spec2, params, resolution=5)) == 1.0


def test_non_piecewise_linear_networks_are_refused_with_the_field_named():
    params = None
    for spec, field in [(rj.MLP(in_dim=1, activation="tanh"), "activation='tanh'"),
                        (rj.MLP(in_dim=1, layernorm=True), "layernorm=True"),
                        (rj.MLP(in_dim=1, gating=True), "gating=True"),
                        (rj.MLP(in_dim=2), "in_dim=2")]:
        with pytest.raises(rj.ConfigError, match=field) as err:
            rj.kinks.count_1d(spec, params)
        assert "allowed" in str(err.value)
    with pytest.raises(rj.ConfigError, match="in_dim=1"):
        rj.kinks.linear_regions_2d(rj.MLP(in_dim=1), params)
    with pytest.raises(rj.ConfigError, match="max_kinks"):
        rj.kinks.count_1d(rj.MLP(in_dim=1), params, max_kinks=0)
    # the sweep measures refuse before compiling
    for model, measures, match in [(rj.MLP(in_dim=2), ("kinks",), "in_dim=2"),
                                   (rj.MLP(in_dim=1), ("linear_regions",), "in_dim=1"),
                                   (rj.MLP(in_dim=1, activation="gelu"), ("kinks",), "gelu"),
                                   (rj.Unbiased(in_dim=1), ("kinks",), "Unbiased")]:
        with pytest.raises(rj.ConfigError, match=match):
            rj.Sweep(model=model, axes={"seed": [0]}, resolution=8, measures=measures)
    with pytest.raises(rj.ConfigError, match="layernorm"):
        rj.Sweep(model=rj.MLP(in_dim=1), axes={"layernorm": [False, True]}, resolution=8, measures=("kinks",))
    with pytest.raises(rj.ConfigError, match="gelu"):   # every activation of a switched sweep is checked
        rj.Sweep(model=rj.MLP(in_dim=1), axes={"activation": ["relu", "gelu"]}, resolution=8, measures=("kinks",))
    with pytest.raises(rj.ConfigError, match="lo=1"):
        rj.Sweep(model=rj.MLP(in_dim=1), axes={"seed": [0]}, resolution=8, measures=(("kinks", {"lo": 1.0}),))


# ------------------------------------------------------------------------------------------------------------
# linear regions

def _arrangement_regions(spec, params, lo=-1.0, hi=1.0):
    """Regions of a depth-1 network in the open square: 1 + lines crossing it + crossings inside it (general
    position), float64."""
    w = np.asarray(params["first"]["W"], np.float64)
    b = np.asarray(params["first"]["b"], np.float64)
    corners = np.array([[lo, lo], [lo, hi], [hi, lo], [hi, hi]])
    vals = corners @ w + b
    crossing = (vals.min(0) < 0) & (vals.max(0) > 0)
    inside = 0
    idx = np.flatnonzero(crossing)
    for i in idx:
        for j in idx[idx > i]:
            a = np.array([[w[0, i], w[1, i]], [w[0, j], w[1, j]]])
            x = np.linalg.solve(a, -np.array([b[i], b[j]]))
            inside += bool(np.all((x > lo) & (x < hi)))
    return 1 + int(crossing.sum()) + inside


@pytest.mark.product_compile
def test_linear_regions_of_one_layer_match_the_line_arrangement():
    spec = rj.MLP(in_dim=2, depth=1, width=8, prior="uniform")
    params = _uniform_many(spec, 3)
    fn = jax.jit(jax.vmap(lambda q: rj.kinks.linear_regions_2d(spec, q, -1.0, 1.0, 1025)))
    got = np.asarray(fn(params))
    want = [_arrangement_regions(spec, _one(params, i)) for i in range(3)]
    np.testing.assert_array_equal(got, want)


@pytest.mark.product_compile
def test_linear_regions_match_the_reference_along_the_same_lines_and_converge(regions_sweep):
    # the relu networks of the regions sweep (below): _init_many(spec, 2, weight_scale=2.0)'s networks, re-created
    # by the programs test_sweep_measures_match_the_functions uses too
    spec, params = K.part_params(regions_sweep, [0, 1], activation="relu")
    assert spec == rj.MLP(in_dim=2, depth=2, width=6, prior="uniform")
    regions = _regions
    got = regions(spec, params, -1.0, 1.0, 9)
    for i in range(2):
        assert int(got[i]) == reference_regions(spec, _one(params, i), -1.0, 1.0, 9)
    # nested grids (2^k + 1 lines) only add regions; point samples on the grid see a subset of them
    nested = [float(got[1]), float(regions(spec, params, -1.0, 1.0, 65)[1])]
    assert nested == sorted(nested) and nested[0] < nested[-1]
    layers, _ = _np_layers(spec, _one(params, 1))
    h, patterns = np.asarray(rj.grid(65, 2), np.float64), []
    for w, b in layers:
        pre = h @ w + b
        patterns.append(pre > 0)
        h = np.maximum(pre, 0)
    assert len({row.tobytes() for row in np.concatenate(patterns, 1)}) <= nested[-1]


# ------------------------------------------------------------------------------------------------------------
# closed forms (Holmes) by Monte Carlo

def test_closed_form_helpers():
    assert K.ball_mean_abs(1) == pytest.approx(0.5) and K.ball_mean_abs(3) == pytest.approx(3 / 8)
    assert K.ball_mean_abs(2) == pytest.approx(4 / (3 * math.pi))
    assert K.expected_kinks_ball(10_000) == pytest.approx(math.sqrt(2 * 10_000 / math.pi), rel=1e-3)
    assert K.p_kink_uniform(0.5) == 0.25 and K.p_kink_uniform(2.0) == 0.75
    assert K.p_kink_normal(1.0) == pytest.approx(0.5)
    assert K.ball_radius(1) == pytest.approx(math.sqrt(3.0))
    assert K.holmes_settings("ball", 10)["bias_scale"] == pytest.approx(math.sqrt(2 * 12 / 11))
    for prior in K.HOLMES_PRIORS:
        for n in (1, 2, 5, 10):
            pmf = K.kink_pmf(prior, n)
            assert pmf.sum() == pytest.approx(1.0) and np.all(pmf >= 0)
            assert (np.arange(n + 1) * pmf).sum() == pytest.approx(K.expected_kinks(prior, n))
        x = np.linspace(-2, 2, 40001)
        mass = np.trapezoid(K.kink_density(prior, x, 5), x)
        assert mass == pytest.approx(K.expected_kinks(prior, 5, 2.0) / 5, abs=1e-4)
    assert K.pmf_ball(2)[2] == pytest.approx(1 / (2 * math.pi))   # E|w1 w2| over the unit disc
    with pytest.raises(rj.ConfigError, match="uniform, normal, ball"):
        K.expected_kinks("paper", 3)


def _holmes_counts(prior, n, networks, radii, seed=0):
    settings = K.holmes_settings(prior, n)
    spec = rj.MLP(in_dim=1, depth=1, width=n, prior=prior)
    params = _init_many(spec, networks, base=100 + seed, weight_scale=settings["weight_scale"],
                        bias_scale=settings["bias_scale"])
    return spec, params, {R: np.asarray(rj.kinks.count_1d_many(spec, params, -R, R)) for R in radii}


def test_expected_kinks_pmf_and_density_by_monte_carlo():
    """The MLP with ``holmes_settings`` reproduces E[K] and the pmf on [-R, R] (R = 0.5, 1, 2) and the per-unit
    kink-position density, for the three priors at n = 5: every comparison within 4.5 standard errors (10,000
    networks; the counting functions compile once, whatever the prior). Larger widths: the sweep (docs/kinks.md)."""
    networks, n = 10_000, 5
    for prior in K.HOLMES_PRIORS:
        spec, params, counts = _holmes_counts(prior, n, networks, (0.5, 1.0, 2.0))
        for R, k in counts.items():
            assert np.all(np.isfinite(k))
            mean, se = k.mean(), k.std(ddof=1) / math.sqrt(networks)
            want = K.expected_kinks(prior, n, R)
            assert abs(mean - want) < 4.5 * se, (prior, R, mean, want, se)
            if not (prior == "ball" and R > 1):   # the ball's pmf is for R T / B <= 1
                emp = np.bincount(k.astype(int), minlength=n + 1) / networks
                pmf = K.kink_pmf(prior, n, R)
                tol = 4.5 * np.sqrt(pmf * (1 - pmf) / networks) + 1.0 / networks
                assert np.all(np.abs(emp - pmf) <= tol), (prior, R, emp, pmf)
        # the per-unit position density on [-3, 3]
        pos = np.asarray(rj.kinks.positions_1d_many(spec, params, -3.0, 3.0)[0]).ravel()
        edges = np.linspace(-3, 3, 13)
        hist, _ = np.histogram(pos[np.isfinite(pos)], edges)
        fine = np.linspace(edges[:-1], edges[1:], 401)
        expected = networks * n * np.trapezoid(K.kink_density(prior, fine, n), fine, axis=0)
        assert np.all(np.abs(hist - expected) < 4.5 * np.sqrt(expected)), (prior, hist, expected)


# ------------------------------------------------------------------------------------------------------------
# sweep measures, sweep file, notebook

def _count_many(spec, params, lo, hi, prefactor):
    return np.asarray(rj.kinks.count_1d_many(spec, params, lo, hi, prefactor))


# Two switched sweeps (relu and identity share one compiled function) serve both tests below: module fixtures,
# computed as users compile (conftest.py), so both tests are marked product_compile.
K_HALF = ("kinks", {"lo": -0.5, "hi": 0.5, "label": "k_half"})


@pytest.fixture(scope="module")
def kinks_sweep():
    """1-D: a depth trunk (depth 1 and 2 share one network), two numeric axes; kinks on the grid's ends (the
    default) and on [-0.5, 0.5]. 10 seeds: a batch of 10 depth-1 networks of width 12 is counted with the program
    test_many_tied_clusters_take_the_exact_fallback compiled."""
    sweep = rj.Sweep(model=rj.MLP(in_dim=1, width=12, prior="uniform"),
                     axes={"depth": [1, 2], "prefactor": [1.0, 0.5], "weight_scale": [1.0, 3.0],
                           "seed": list(range(10))},
                     resolution=16, measures=("kinks", K_HALF))
    return rj.run_sweep(sweep.with_axis("activation", ["relu", "identity"]), progress=False)


@pytest.fixture(scope="module")
def regions_sweep():
    """2-D: linear regions along the default lines (one per grid row, 9) and along 65 lines, the line counts
    test_linear_regions_match_the_reference_along_the_same_lines_and_converge checks on these networks."""
    sweep = rj.Sweep(model=rj.MLP(in_dim=2, width=6, depth=2, prior="uniform"), base_seed=7,
                     axes={"weight_scale": [2.0], "seed": [0, 1]}, resolution=9,
                     measures=("linear_regions", ("linear_regions", {"lines": 65, "label": "regions65"})))
    return rj.run_sweep(sweep.with_axis("activation", ["relu", "identity"]), progress=False)


@pytest.mark.product_compile
def test_sweep_measures_match_the_functions(kinks_sweep, regions_sweep):
    """The relu networks of the switched sweeps, bit for bit, against count_1d_many / linear_regions_2d on the
    same parameters: the measures see each network's own activation (the identity ones: the next test)."""
    ds = kinks_sweep
    assert ds.k_half.dims == ds.kinks.dims == ("depth", "prefactor", "weight_scale", "seed", "activation")
    for scale in (1.0, 3.0):
        model, params = K.part_params(ds, range(10), depth=2, activation="relu", weight_scale=scale)
        params = jax.tree.map(np.asarray, params)
        for depth in (1, 2):   # the depth-`depth` network of the trunk (model.at_shared, batched)
            sub = dict(params, hidden=jax.tree.map(lambda a: a[:, :depth - 1], params["hidden"]))
            for prefactor in (1.0, 0.5):
                cell = ds.sel(depth=depth, prefactor=prefactor, weight_scale=scale, activation="relu")
                for name, lo, hi in (("kinks", -1.0, 1.0), ("k_half", -0.5, 0.5)):
                    np.testing.assert_array_equal(cell[name].values,
                                                  _count_many(model.replace(depth=depth), sub, lo, hi, prefactor),
                                                  err_msg=f"{name} depth={depth} p={prefactor} a={scale}")
    model, params = K.part_params(regions_sweep, [0, 1], activation="relu")
    relu = regions_sweep.sel(activation="relu", weight_scale=2.0)
    np.testing.assert_array_equal(relu.linear_regions.values, _regions(model, params, -1.0, 1.0, 9))
    np.testing.assert_array_equal(relu.regions65.values, _regions(model, params, -1.0, 1.0, 65))


@pytest.mark.product_compile
def test_switched_sweep_counts_each_activation_as_its_own_sweep(kinks_sweep, regions_sweep):
    """Several activations share one compiled function; the network measures are called with each network's own
    activation: the relu networks give the functions' numbers (the test above: those of a relu sweep alone),
    the identity ones those of an affine function (no kink, one region), and every network is finite."""
    for ds, names, affine in ((kinks_sweep, ("kinks", "k_half"), 0.0),
                              (regions_sweep, ("linear_regions", "regions65"), 1.0)):
        for name in names:
            assert ds[name].sel(activation="relu").values.max() > 1, name   # relu networks bend
            np.testing.assert_array_equal(ds[name].sel(activation="identity").values, affine, err_msg=name)
        assert bool(ds.finite.all())


def test_sweep_file_defines_every_size():
    from redshift_jax import cli

    for size in ("full", "laptop", "quick"):
        target, figure, _ = cli.load_sweep_file(ROOT / "sweeps" / "kinks_holmes.py", size)
        assert figure == "kinks" and isinstance(target, dict)
        assert all(isinstance(p, rj.Sweep) for p in target.values())
    full = cli.load_sweep_file(ROOT / "sweeps" / "kinks_holmes.py", "full")[0]
    assert full["uniform"].axes["width"] == (1, 2, 3, 5, 10, 30, 100, 300, 1000)
    assert len(full["uniform"].axes["seed"]) == 10_000 and len(full["ball_n1000"].axes["seed"]) == 10_000
    assert full["ball_n30"].axes["bias_scale"] == (pytest.approx(K.ball_radius(30)),)
    quick = cli.load_sweep_file(ROOT / "sweeps" / "kinks_holmes.py", "quick")[0]
    assert sum(p.num_networks for p in quick.values()) <= 3000


def test_notebook_runs_at_smoke_size(tmp_path, run_notebook):
    run_notebook("kinks.py")
    for name in ("kinks_functions.png", "kinks_width.png", "kinks_pmf.png", "kinks.md"):
        assert (tmp_path / name).exists(), name

