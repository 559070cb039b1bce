"""Local (star-domain) volume (DESIGN.md section 14): radii and ray integrals against closed forms and scipy, the
estimator against Monte Carlo volumes, the sweep measure against direct calls, ModularSum's volume option, the
sweep files and the notebook."""

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

import redshift_jax as rj
from redshift_jax import volume as V
from redshift_jax.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------------------
# radius search

def _quadratic(w0, A):
    return lambda w: (w - w0) @ A @ (w - w0)


def test_star_radii_quadratic_closed_form():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(5, 5))
    A = (M @ M.T + 0.1 * np.eye(5)).astype(np.float32)
    w0 = rng.normal(size=5).astype(np.float32)
    u = rng.normal(size=(16, 5))
    u = (u / np.linalg.norm(u, axis=1, keepdims=True)).astype(np.float32)
    for eps in (1e-4, 1e-2, 30.0):  # radius from ~1e-3 (bisection down from 1) to ~10 (doubling up)
        out = jax.jit(V.star_radii, static_argnums=0)(_quadratic(w0, A), w0, u, eps)
        want = np.sqrt(eps / np.einsum("ni,ij,nj->n", u, A, u))
        assert out.converged.all() and out.bracketed.all()
        # |C - eps| <= rtol eps with C ~ r^2: the radius is within rtol / 2 (plus float32 rounding)
        np.testing.assert_allclose(out.radius, want, rtol=0.5e-2 + 1e-5)
        assert (out.steps <= V.MAX_STEPS).all()


def test_star_radii_unbracketed_unconverged_and_nan_costs():
    w0 = jnp.zeros(3)
    u = jnp.eye(3)
    bounded = V.star_radii(lambda w: jnp.minimum(jnp.sum(w ** 2), 0.5), w0, u, 1.0)   # never reaches epsilon
    assert np.isinf(bounded.radius).all() and not bounded.bracketed.any()
    short = V.star_radii(lambda w: jnp.sum(w ** 2), w0, u, 0.3, rtol=1e-6, max_steps=4)  # budget too small
    assert short.bracketed.all() and not short.converged.any() and np.isfinite(short.radius).all()
    broken = V.star_radii(lambda w: jnp.where(jnp.sum(w ** 2) > 0.2, jnp.nan, jnp.sum(w ** 2)), w0, u, 0.1)
    np.testing.assert_allclose(broken.radius, math.sqrt(0.1), rtol=6e-3)   # NaN counts as too far
    est = V.log_volume(lambda w: jnp.minimum(jnp.sum(w ** 2), 0.5), w0, jax.random.key(0), 4, 1.0, sigma=1.0)
    assert int(est.unbracketed) == 4 and float(est.log_volume) == pytest.approx(0.0, abs=1e-5)  # whole Gaussian


# ------------------------------------------------------------------------------------------------------------
# the ray integral

def _log_mass_reference(R, beta, zz, D):
    """float64: log(2 / (2^(D/2) Gamma(D/2)) exp(-(|z|^2 - beta^2) / 2) int_0^R s^(D-1) exp(-(s+beta)^2/2) ds)."""
    peak = (-beta + math.sqrt(beta * beta + 4 * (D - 1))) / 2 if D > 1 else max(0.0, -beta)
    m = min(peak, R)

    def phi(s):
        return (D - 1) * math.log(s) - (s + beta) ** 2 / 2 if s > 0 else (-(beta ** 2) / 2 if D == 1 else -np.inf)

    top = phi(m)
    hi = R if math.isfinite(R) else peak + 60.0
    val, _ = integrate.quad(lambda s: math.exp(phi(s) - top), 0.0, hi, points=[m] if 0 < m < hi else None,
                            limit=500, epsabs=0.0, epsrel=1e-12)
    return math.log(2) - D / 2 * math.log(2) - math.lgamma(D / 2) - (zz - beta ** 2) / 2 + top + math.log(val)


def _log_gammainc(a, x):
    """log P(a, x) in float64, by its series where P underflows."""
    p = special.gammainc(a, x)
    if p > 1e-280:
        return math.log(p)
    term = total = 1.0
    n = 0
    while term > 1e-17 * total:
        n += 1
        term *= x / (a + n)
        total += term
    return a * math.log(x) - x - math.lgamma(a + 1) + math.log(total)


_mass = jax.jit(V.gaussian_log_mass, static_argnums=3)


def test_gaussian_log_mass_against_quadrature():
    betas = np.array([-3.0, -0.7, 0.0, 0.4, 2.5], np.float32)
    radii = np.array([1e-3, 0.3, 1.0, 2.0, 5.0, 20.0, np.inf], np.float32)
    R, B = np.meshgrid(radii, betas)
    for D in (1, 2, 3, 10, 50):
        zz = D + 1.5
        got = np.asarray(_mass(R, B, zz, D))
        want = np.array([_log_mass_reference(float(r), float(b), zz, D) for r, b in zip(R.ravel(), B.ravel())])
        np.testing.assert_allclose(got.ravel(), want, rtol=1e-6, atol=2e-6, err_msg=f"D={D}")


def test_gaussian_log_mass_incomplete_gamma_up_to_a_million():
    # u orthogonal to w0 (beta = 0): l = -|z|^2 / 2 + log P(D/2, R^2/2)
    for D in (1, 10, 1000, 100_000, 1_000_000):
        rs = np.sqrt(D) * np.array([0.5, 0.99, 1.0, 1.01, 2.0, np.inf])
        radii = np.concatenate([[1e-20, 1e-6, 1e-6 * math.sqrt(D)], rs]).astype(np.float32)
        got = np.asarray(_mass(radii, np.zeros_like(radii), float(D), D))
        want = np.array([-D / 2 + (_log_gammainc(D / 2, float(r) ** 2 / 2) if np.isfinite(r) else 0.0)
                         for r in radii])
        np.testing.assert_allclose(got, want, rtol=2e-7, atol=1e-6, err_msg=f"D={D}")
    assert float(_mass(0.0, 0.3, 5.0, 5)) == -np.inf
    assert float(_mass(np.inf, 0.0, 0.0, 7)) == pytest.approx(0.0, abs=1e-6)   # the whole standard Gaussian


def test_uniform_measure_is_the_ball_volume():
    for D, eps in ((3, 0.25), (1000, 4.0)):
        w0 = jnp.linspace(-1, 1, D)
        est = V.log_volume(lambda w, _w0=w0: jnp.sum((w - _w0) ** 2), w0, jax.random.key(1), 6, eps,
                           measure="uniform")
        r = np.asarray(est.radii)
        np.testing.assert_allclose(r, math.sqrt(eps), rtol=0.5e-2 + 1e-6)
        want = V.log_ball_volume(D) + D * np.log(r)   # per direction, at the radii found
        np.testing.assert_allclose(est.log_masses, want, rtol=1e-6)
        exact = V.log_ball_volume(D) + D / 2 * math.log(eps)
        assert float(est.log_volume) == pytest.approx(exact, abs=D * 0.5e-2)
    assert V.log_ball_volume(2) == pytest.approx(math.log(math.pi))


# ------------------------------------------------------------------------------------------------------------
# the whole estimator against Monte Carlo

def _star_cost(w0, A):
    # a convex (so star-shaped around w0), non-ellipsoidal sublevel set
    def cost(w):
        d = w - w0
        return d @ A @ d + jnp.sum(d ** 4)
    return cost


@pytest.mark.parametrize("dim", [2, 3])
def test_estimator_against_monte_carlo(dim):
    rng = np.random.default_rng(dim)
    M = rng.normal(size=(dim, dim))
    A = (M @ M.T / dim + 0.3 * np.eye(dim)).astype(np.float32)
    w0 = (0.6 * rng.normal(size=dim)).astype(np.float32)
    eps, sigma = 0.5, 0.8
    cost = _star_cost(jnp.asarray(w0), jnp.asarray(A))
    run = jax.jit(V.log_volume, static_argnums=(0, 3), static_argnames=("measure",))
    gauss = run(cost, w0, jax.random.key(2), 2000, eps, sigma)
    uniform = run(cost, w0, jax.random.key(2), 2000, eps, None, measure="uniform")
    # numpy Monte Carlo: Gaussian mass by sampling N(0, sigma^2 I); volume by sampling a box around w0
    n = 500_000
    x = rng.normal(scale=sigma, size=(n, dim))
    d = x - w0
    inside = np.einsum("ni,ij,nj->n", d, A, d) + np.sum(d ** 4, axis=1) < eps
    mass = inside.mean()
    half = 1.5 * math.sqrt(eps / np.linalg.eigvalsh(A).min())
    box = w0 + rng.uniform(-half, half, size=(n, dim))
    d = box - w0
    frac = (np.einsum("ni,ij,nj->n", d, A, d) + np.sum(d ** 4, axis=1) < eps).mean()
    # radii within rtol / 2 -> mass within ~ dim * 0.5%; Monte Carlo and direction sampling add ~1%
    assert float(gauss.log_volume) == pytest.approx(math.log(mass), abs=0.03 + dim * 5e-3)
    assert float(uniform.log_volume) == pytest.approx(math.log(frac * (2 * half) ** dim), abs=0.03 + dim * 5e-3)
    assert float(gauss.per_parameter) == pytest.approx(float(gauss.log_volume) / dim)
    assert float(gauss.mean_log) <= float(gauss.log_volume)
    assert int(gauss.unconverged) == 0 and int(gauss.unbracketed) == 0


# ------------------------------------------------------------------------------------------------------------
# costs, keys, errors

def test_kl_and_mse_costs_of_a_network():
    model = rj.MLP(width=8, depth=2, activation="tanh")
    params = model.init(jax.random.key(3))
    x = jnp.asarray(rj.grid(4, 2))
    cost_fn, w0 = V.network_cost(model, params, x, "kl", prefactor=1.5)
    cost_fn = jax.jit(cost_fn)
    assert float(cost_fn(w0)) == pytest.approx(0.0, abs=1e-7)
    w = w0 + 0.1 * jax.random.normal(jax.random.key(4), w0.shape)
    a = np.asarray(model.apply(params, x, 1.5), np.float64)
    _, unravel = jax.flatten_util.ravel_pytree(params)
    b = np.asarray(model.apply(unravel(w), x, 1.5), np.float64)
    p, q = 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-b))
    kl = np.mean(p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q)))
    assert float(cost_fn(w)) == pytest.approx(kl, rel=1e-4)
    mse_fn = jax.jit(V.network_cost(model, params, x, "mse", prefactor=1.5)[0])
    assert float(mse_fn(w)) == pytest.approx(np.mean((a - b) ** 2), rel=1e-5)
    nmse_fn = jax.jit(V.network_cost(model, params, x, "nmse", prefactor=1.5)[0])
    assert float(nmse_fn(w)) == pytest.approx(np.mean((a - b) ** 2) / np.var(a), rel=1e-4)


def test_direction_key_is_a_pure_function_of_the_parameters():
    w = jnp.arange(10, dtype=jnp.float32) / 7
    k1 = jax.random.key_data(V.direction_key(w, 0))
    assert (k1 == jax.random.key_data(jax.jit(V.direction_key)(w, 0))).all()
    assert (k1 == jax.random.key_data(jax.vmap(V.direction_key, (0, None))(jnp.stack([w, w]), 0)[1])).all()
    assert not (k1 == jax.random.key_data(V.direction_key(w.at[3].add(1e-6), 0))).all()
    assert not (k1 == jax.random.key_data(V.direction_key(w, 1))).all()


def test_refusals_name_the_value():
    with pytest.raises(ConfigError, match="measure='lebesgue'"):
        V.log_volume(lambda w: jnp.sum(w ** 2), jnp.zeros(2), jax.random.key(0), measure="lebesgue")
    with pytest.raises(ConfigError, match="cost='kld'"):
        V.network_cost(rj.MLP(), rj.MLP().init(jax.random.key(0)), rj.grid(2, 2), "kld")
    with pytest.raises(ConfigError, match="max_steps=0"):
        V.star_radii(lambda w: jnp.sum(w ** 2), jnp.zeros(2), jnp.eye(2), 1.0, max_steps=0)
    model = rj.MLP(width=4)
    with pytest.raises(ConfigError, match="epsilon=-1"):
        rj.Sweep(model=model, axes={"seed": [0]}, resolution=4, measures=[("volume", {"epsilon": -1})])
    with pytest.raises(ConfigError, match="no argument 'directions'"):
        rj.Sweep(model=model, axes={"seed": [0]}, resolution=4, measures=[("volume", {"directions": 3})])
    with pytest.raises(ConfigError, match="one value per sweep"):
        rj.Sweep(model=model, axes={"activation": ["relu", "tanh"], "seed": [0]}, resolution=4,
                 measures=[("volume", {"n_directions": 2})])
    with pytest.raises(ConfigError, match="ModularSum.volume has no argument 'cost'"):
        rj.train.ModularSum(volume={"cost": "mse"})


def test_second_call_does_not_recompile(compile_counter):
    def estimate(w0, key, eps):
        return V.log_volume(lambda w: jnp.sum((w - w0) ** 2), w0, key, 4, eps).log_volume

    fn = jax.jit(estimate)
    fn(np.ones(3, np.float32), jax.random.key(0), np.float32(0.1))
    first = compile_counter.count("estimate")
    fn(np.full(3, 2.0, np.float32), jax.random.key(1), np.float32(0.3))   # new values, same shapes
    assert first >= 1 and compile_counter.count("estimate") == first


# ------------------------------------------------------------------------------------------------------------
# the sweep measure, ModularSum, sweep files, notebook

def test_sweep_measure_equals_direct_call_and_ignores_chunking():
    model = rj.MLP(width=6, activation="tanh", prior="torch")
    measures = ("fourier", ("volume", {"n_directions": 4, "cost": "kl"}))
    axes = {"depth": [1, 2], "weight_scale": [0.5, 2.0], "seed": [0, 1, 2]}
    # (built twice rather than with Sweep.replace, which refuses measures with arguments at the moment)
    ds = rj.run_sweep(rj.Sweep(model=model, axes=axes, resolution=4, measures=measures, chunk_size=2), progress=False)
    again = rj.run_sweep(rj.Sweep(model=model, axes=axes, resolution=4, measures=measures, chunk_size=3),
                         progress=False)
    np.testing.assert_array_equal(ds.volume.values, again.volume.values)
    assert np.isfinite(ds.volume.values).all()
    x = jnp.asarray(rj.grid(4, 2))
    direct = jax.jit(lambda p: V.network_log_volume(model.replace(depth=2), p, x, n_directions=4).log_volume)
    for scale, seed in ((0.5, 0), (2.0, 2)):
        params = model.replace(depth=2).init(jax.random.fold_in(jax.random.key(0), seed), weight_scale=scale)
        want = float(direct(params))
        assert float(ds.volume.sel(depth=2, weight_scale=scale, seed=seed)) == pytest.approx(want, rel=1e-6)


def test_modsum_records_volume_and_leaves_the_rest_unchanged():
    from redshift_jax.train.modsum import VOLUME_TAG

    exp = rj.train.ModularSum(activations=("tanh",), moduli=(4,), prefactors=(1.5,), seeds=(1,), n=4, depth=1,
                              width=8, steps=3, name="t")
    with_volume = exp.replace(volume={"n_directions": 3, "epsilon": 0.05})
    assert "volume" not in exp.to_dict() and with_volume.to_dict()["volume"] == {"n_directions": 3, "epsilon": 0.05}
    assert exp.compile_key("tanh") != with_volume.compile_key("tanh")
    plain, vol = exp.program("tanh"), with_volume.program("tanh")
    net = jax.tree.map(lambda a: a[0], plain.net_inputs(exp.flat_grid()))

    def both(program):  # setup, then finish on the initial state: every output of one network
        state, ctx, init_out = program.setup(net, program.shared)
        return {**init_out, **program.finish(state, net, ctx, program.shared)}

    a, b = jax.jit(lambda: both(plain))(), jax.jit(lambda: both(vol))()
    assert set(b) == set(a) | {"log_volume_init", "log_volume_final"}
    for name in a:   # the option off: the same numbers, bit for bit
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert float(b["log_volume_init"]) == float(b["log_volume_final"])   # no training steps in between
    model = exp.model("tanh")
    params = model.init(jax.random.fold_in(net["key"], 0))
    want = V.network_log_volume(model, params, vol.shared["x"], jax.random.fold_in(net["key"], VOLUME_TAG),
                                n_directions=3, epsilon=0.05, prefactor=net["prefactor"]).log_volume
    assert float(b["log_volume_init"]) == pytest.approx(float(want), rel=1e-5)


@pytest.mark.parametrize("name", ["volume_blog", "volume_nrs"])
def test_sweep_files_define_every_size(name):
    from redshift_jax import cli

    sizes = {}
    for size in ("full", "laptop", "quick"):
        target, figure, _ = cli.load_sweep_file(ROOT / "sweeps" / f"{name}.py", size)
        assert figure == "volume" and isinstance(target, dict)
        assert all(isinstance(p, rj.Sweep) and any(m.name == "volume" for m in p.measure_objects)
                   for p in target.values())
        sizes[size] = sum(p.num_networks for p in target.values())
    assert sizes["quick"] < sizes["laptop"] <= sizes["full"]


def test_notebook_runs_at_smoke_size(tmp_path, run_notebook):
    run_notebook("volume.py")
    for name in ("volume_rays.png", "volume_heatmaps.png"):
        assert (tmp_path / name).exists(), name
