"""Local (star-domain) volume (DESIGN.md section 14): radii and ray integrals against closed forms and scipy, the
estimator against Monte Carlo volumes, the sweep measure against direct calls, ModularSum's volume option, the
sweep files and the notebook."""

import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

import redshift_jax as rj
from redshift_jax.errors import ConfigError
from redshift_jax.measures import volume as V

ROOT = Path(__file__).resolve().parents[1]

# The tests' own programs compile with LLVM's optimization level 0: the same HLO (XLA's passes all run), about half
# the compile time (3.0 -> 1.6 s CPU for the default estimator), and these programs run for milliseconds. The
# sweep, ModularSum and notebook tests compile as users do.
_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})

_estimate = _jit(V.log_volume, static_argnums=(0, 3),
                    static_argnames=("measure", "directions", "search", "alpha", "widths", "max_steps", "normalize",
                                     "start"))


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
    steps = {}
    for search in V.SEARCHES:
        run = _jit(functools.partial(V.star_radii, search=search), static_argnums=0)
        for eps in (1e-4, 1e-2, 30.0):  # radius from ~1e-3 (bisection down from 1) to ~10 (doubling up)
            out = run(_quadratic(w0, A), w0, u, eps)
            want = np.sqrt(eps / np.einsum("ni,ij,nj->n", u, A, u))
            assert out.converged.all(), (search, eps)
            if search == "bisect":
                assert out.bracketed.all()
            # |C - eps| <= rtol eps with C ~ r^2: the radius is within rtol / 2 (plus float32 rounding)
            np.testing.assert_allclose(out.radius, want, rtol=0.5e-2 + 1e-5, err_msg=search)
            assert (out.steps <= V.MAX_STEPS).all()
            steps[search, eps] = float(np.mean(out.steps))
    for eps in (1e-4, 1e-2, 30.0):   # C ~ r^2 is what the secant's first step assumes: 2 evaluations at most
        assert steps["secant", eps] <= 2.0 < steps["bisect", eps]


def _square(w):
    return jnp.sum(w ** 2)


_radii = _jit(V.star_radii, static_argnums=0, static_argnames=("search", "max_steps"))


def test_star_radii_unbracketed_unconverged_and_nan_costs():
    w0 = jnp.zeros(3)
    u = jnp.eye(3)
    bounded = _radii(lambda w: jnp.minimum(jnp.sum(w ** 2), 0.5), w0, u, 1.0)   # never reaches epsilon
    assert np.isinf(bounded.radius).all() and not bounded.bracketed.any()
    for search, budget in (("bisect", 4), ("secant", 1)):   # budget too small
        short = _radii(_square, w0, u, 0.3, rtol=1e-6, max_steps=budget, search=search)
        assert short.bracketed.all() and not short.converged.any() and np.isfinite(short.radius).all()
    # a cost above epsilon at any float32 move (the NRS grid's deepest, largest-scale networks): the secant keeps
    # its radius at the float32 resolution, unconverged but finite (it reached r = 0, log-volume -inf, before)
    ones = jnp.ones(3)
    jump = _radii(lambda w: jnp.where(jnp.any(w != ones), 1.0, 0.0), ones, u, 0.01)
    assert not jump.converged.any() and (np.asarray(jump.radius) > 0).all() and (np.asarray(jump.radius) < 1e-6).all()
    broken = _radii(lambda w: jnp.where(jnp.sum(w ** 2) > 0.2, jnp.nan, jnp.sum(w ** 2)), w0, u, 0.1)
    np.testing.assert_allclose(broken.radius, math.sqrt(0.1), rtol=6e-3)   # NaN counts as too far
    # the estimates below are the ball estimator's (_ball_estimator: scale * |w - c|, everything traced; the
    # secant's program is test_off_centre_ball_against_the_noncentral_chi_square[3]'s)
    for search in V.SEARCHES:
        options = {"search": search} if search != "secant" else {}
        est = _ball_over_keys(0.0, w0, w0, 1, 1.0, 1.0, 0.01, **options)   # never reaches epsilon: every ray
        assert int(est.unbracketed[0]) == 48                                # infinite, the whole Gaussian
        assert float(est.log_volume[0]) == pytest.approx(0.0, abs=1e-5)
        assert float(est.saturated[0]) == 1.0 and not bool(est.resolved[0])
        # a ray that converges from below (before any cost >= epsilon) is converged, not unbracketed
        # (r = 1: C = 1 is within 0.9 * 4 of epsilon = 4, and below it)
        up = _radii(_square, w0, u, 4.0, rtol=0.9, search=search)
        assert up.converged.all() and not up.bracketed.any() and (up.radius == 1.0).all()
        est = _ball_over_keys(1.0, w0, w0, 1, 4.0, 1.0, 0.9, **options)   # C = |w|: 1 at r = 1
        assert int(est.unbracketed[0]) == 0 and int(est.unconverged[0]) == 0


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


_mass = _jit(V.gaussian_log_mass, static_argnums=3)


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
        est = _estimate(lambda w, _w0=w0: jnp.sum((w - _w0) ** 2), w0, jax.random.key(1), 6, eps,
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
    run = _jit(V.log_volume, static_argnums=(0, 3), static_argnames=("measure",))
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
    # radii within rtol / 2 -> mass within ~ dim * 0.5%; plus 3 standard errors of the two random parts: the Monte
    # Carlo count's (1 / sqrt(hits)) and the importance-sampled estimate's (about 1 / sqrt(ess); with the default
    # mixture ess ~ 540 of 2,000 rays here, an estimate's spread over keys is 0.034 nats, so a fixed 0.045 was one
    # standard deviation: 8 keys average -5.700 against -5.691 for 2 million Monte Carlo samples at dim = 3)
    noise = 3 * math.sqrt(1 / inside.sum() + 1 / float(gauss.ess))
    assert float(gauss.log_volume) == pytest.approx(math.log(mass), abs=0.03 + dim * 5e-3 + noise)
    assert noise < 0.2
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
    cost_fn = _jit(cost_fn)
    assert float(cost_fn(w0)) == pytest.approx(0.0, abs=1e-7)
    w = w0 + 0.1 * jax.random.normal(jax.random.key(4), w0.shape)
    a = np.asarray(model.apply(params, x, 1.5), np.float64)
    _, unravel = jax.flatten_util.ravel_pytree(params)
    b = np.asarray(model.apply(unravel(w), x, 1.5), np.float64)
    p, q = 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-b))
    kl = np.mean(p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q)))
    assert float(cost_fn(w)) == pytest.approx(kl, rel=1e-4)
    mse_fn = _jit(V.network_cost(model, params, x, "mse", prefactor=1.5)[0])
    assert float(mse_fn(w)) == pytest.approx(np.mean((a - b) ** 2), rel=1e-5)
    nmse_fn = _jit(V.network_cost(model, params, x, "nmse", prefactor=1.5)[0])
    assert float(nmse_fn(w)) == pytest.approx(np.mean((a - b) ** 2) / np.var(a), rel=1e-4)


def test_direction_key_is_a_pure_function_of_the_parameters():
    w = jnp.arange(10, dtype=jnp.float32) / 7
    k1 = jax.random.key_data(V.direction_key(w, 0))
    assert (k1 == jax.random.key_data(_jit(V.direction_key)(w, 0))).all()
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
    with pytest.raises(ConfigError, match="no argument 'direction'"):
        rj.Sweep(model=model, axes={"seed": [0]}, resolution=4, measures=[("volume", {"direction": 3})])
    with pytest.raises(ConfigError, match="directions=3"):
        rj.Sweep(model=model, axes={"seed": [0]}, resolution=4, measures=[("volume", {"directions": 3})])
    with pytest.raises(ConfigError, match=r"epsilons=\[0.1, 0.1\]"):
        rj.Sweep(model=model, axes={"seed": [0]}, resolution=4, measures=[("volume", {"epsilons": [0.1, 0.1]})])
    with pytest.raises(ConfigError, match="sigma='prior'"):
        rj.Sweep(model=model, axes={"seed": [0]}, resolution=4, measures=[("volume", {"sigma": "prior"})])
    with pytest.raises(ConfigError, match="ModularSum.volume has no argument 'cost'"):
        rj.train.ModularSum(volume={"cost": "mse"})


def test_second_call_does_not_recompile(compile_counter):
    def estimate(w0, key, eps):
        return V.log_volume(lambda w: jnp.sum((w - w0) ** 2), w0, key, 4, eps).log_volume

    fn = _jit(estimate)
    fn(np.ones(3, np.float32), jax.random.key(0), np.float32(0.1))
    first = compile_counter.count("estimate")
    fn(np.full(3, 2.0, np.float32), jax.random.key(1), np.float32(0.3))   # new values, same shapes
    assert first >= 1 and compile_counter.count("estimate") == first


# ------------------------------------------------------------------------------------------------------------
# the sweep measure, ModularSum, sweep files, notebook

@pytest.mark.product_compile
def test_sweep_measure_equals_direct_call_and_ignores_chunking():
    """The sweep measure against direct calls, bit for bit across chunk sizes and across a switched sweep: several
    activations share one compiled function, the volume measure is called with each network's own activation and
    gives the numbers of the sweep of that activation alone (chunk 4 against 8: other batches, other programs).
    Three sweeps and one direct program (the switched and chunking checks were two tests, five sweeps, until
    2026-12-07)."""
    model = rj.MLP(width=4, depth=2, activation="tanh", prior="torch")
    # sigma="init": each network's own prior (at its weight scale) in the measure; the default sigma's sweep
    # against a direct call is test_sweep_measure_passes_every_option's
    measures = (("volume", {"n_directions": 4, "cost": "kl", "sigma": "init", "epsilons": [1e-3, 1e-2]}),)
    axes = {"weight_scale": [0.5, 2.0], "seed": [0, 1, 2]}
    sweep = rj.Sweep(model=model, axes=axes, resolution=4, measures=measures, chunk_size=4)
    both = rj.run_sweep(sweep.with_axis("activation", ["tanh", "relu"]), progress=False)   # 12 networks, 3 chunks
    # each activation alone in one chunk of 8 (network measures on a depth axis: test_protocols.py's
    # test_network_measures_see_each_depth_of_a_shared_trunk)
    ds = rj.run_sweep(sweep.replace(chunk_size=8), progress=False)
    relu = rj.run_sweep(sweep.replace(model=model.replace(activation="relu"), chunk_size=8), progress=False)
    for activation, alone in (("tanh", ds), ("relu", relu)):
        assert set(alone.data_vars) == set(both.data_vars)
        for name in alone.data_vars:
            np.testing.assert_array_equal(both[name].sel(activation=activation).values, alone[name].values,
                                          err_msg=f"{activation} {name}")
    assert not np.array_equal(both.volume.sel(activation="tanh").values, both.volume.sel(activation="relu").values)
    assert np.isfinite(ds.volume.values).all() and np.isfinite(relu.volume.values).all()
    for suffix in V.DIAGNOSTICS + ("eps0.001", "eps0.001_resolved", "eps0.001_saturated", "eps0.01"):
        assert f"volume_{suffix}" in ds, suffix
    np.testing.assert_array_equal(ds["volume_eps0.01"].values, ds.volume.values)   # the same search
    assert ((ds.volume_ess.values >= 1 - 1e-4) & (ds.volume_ess.values <= 4 + 1e-4)).all()
    assert (ds["volume_eps0.001"].values <= ds.volume.values + 1e-3).all()
    x = jnp.asarray(rj.grid(4, 2))
    direct = jax.jit(lambda p, s: V.network_log_volume(model, p, x, n_directions=4, sigma="init",
                                                       weight_scale=s).log_volume)
    for scale, seed in ((0.5, 0), (2.0, 2)):
        params = model.init(jax.random.fold_in(jax.random.key(0), seed), weight_scale=scale)
        want = float(direct(params, jnp.float32(scale)))
        assert float(ds.volume.sel(weight_scale=scale, seed=seed)) == pytest.approx(want, rel=1e-6)


def test_sweep_measure_passes_every_option():
    """The options after ``widths`` reach the estimator by name (``normalize`` went to ``slots`` before 2026-12-07
    evening, and failed)."""
    model = rj.MLP(depth=1, width=6, activation="tanh", prior="torch")
    args = {"n_directions": 6, "normalize": False, "start": "warm", "widths": [1.0, 1.25], "alpha": 0.5}
    sweep = rj.Sweep(model=model, axes={"seed": [0, 1]}, resolution=4, measures=[("volume", args)])
    ds = rj.run_sweep(sweep, progress=False)
    x = jnp.asarray(rj.grid(4, 2))
    params = model.init(jax.random.fold_in(jax.random.key(0), 1))
    want = _jit(lambda p: V.network_log_volume(model, p, x, n_directions=6, normalize=False, start="warm",
                                                widths=(1.0, 1.25), alpha=0.5))(params)
    # (float32: the sweep evaluates costs in batches of its chunk, the direct call one network at a time)
    assert float(ds.volume.sel(seed=1)) == pytest.approx(float(want.log_volume), rel=1e-5)
    with pytest.raises(ConfigError, match="start='cold'.*allowed: one, warm"):
        rj.Sweep(model=model, axes={"seed": [0]}, resolution=4, measures=[("volume", {"start": "cold"})]).validate()


@pytest.mark.product_compile
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

    a, b = _jit(lambda: both(plain))(), _jit(lambda: both(vol))()
    assert set(b) == set(a) | {"log_volume_init", "log_volume_final"}
    for name in a:   # the option off: the same numbers, bit for bit
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert float(b["log_volume_init"]) == float(b["log_volume_final"])   # no training steps in between
    model = exp.model("tanh")
    params = model.init(jax.random.fold_in(net["key"], 0))
    key = jax.random.fold_in(net["key"], VOLUME_TAG)
    want = _jit(lambda p: V.network_log_volume(model, p, vol.shared["x"], key, n_directions=3, epsilon=0.05,
                                                  prefactor=net["prefactor"]).log_volume)(params)
    assert float(b["log_volume_init"]) == pytest.approx(float(want), rel=1e-5)


@pytest.mark.parametrize("name", ["volume_blog", "volume_nrs"])
def test_sweep_files_define_every_size(name):
    from redshift_jax import cli

    sizes = {}
    for size in ("full", "laptop", "quick"):
        target, figure, _ = cli.load_sweep_file(ROOT / "sweeps" / f"{name}.py", size)
        assert figure == "volume" and isinstance(target, rj.Sweep)   # one sweep over the activations
        assert any(m.name == "volume" for m in target.measure_objects) and len(target.axes["activation"]) >= 2
        sizes[size] = target.num_networks
    assert sizes["quick"] < sizes["laptop"] <= sizes["full"]


def test_notebook_runs_at_smoke_size(tmp_path, run_notebook):
    run_notebook("volume.py")
    for name in ("volume_rays.png", "volume_heatmaps.png"):
        assert (tmp_path / name).exists(), name


# ------------------------------------------------------------------------------------------------------------
# DESIGN.md section 21: importance-sampled directions against closed forms (the numbers per estimator, over 6
# keys: benchmarks/volume_closed_forms.py and docs/volume.md)

def _keys(n, seed=0):
    return jax.random.split(jax.random.key(seed), n)


@functools.cache
def _ball_estimator(rays, options):
    """One compiled estimate per (rays, options) for the ball cost ``scale * |w - c|`` with everything traced:
    ``scale = 0`` is a cost that never reaches epsilon. Tests at the same dimension share its programs."""
    def cost(scale, center, w):   # (0, not 0 * inf = NaN, far out where |w - c|^2 overflows)
        return jnp.where(scale > 0, scale * jnp.sqrt(jnp.sum((w - center) ** 2)), 0.0)

    def estimate(scale, center, w0, key, eps, sigma, rtol):
        return V.log_volume(functools.partial(cost, scale, center), w0, key, rays, eps, sigma, rtol=rtol,
                            **dict(options))
    return _jit(estimate)


def _over_keys(cost, w0, n_keys, rays, eps, sigma, **options):
    """The estimate over ``n_keys`` keys, stacked: one compile (jit without vmap: a batched while loop costs
    more to compile than the keys cost to run one by one)."""
    fn = _jit(lambda k: V.log_volume(cost, w0, k, rays, eps, sigma, **options))
    return jax.tree.map(lambda *a: jnp.stack(a), *[fn(k) for k in _keys(n_keys)])


def _ball_over_keys(scale, center, w0, n_keys, eps, sigma, rtol=1e-2, **options):
    """The ball estimate (``_ball_estimator``, 48 rays) over ``n_keys`` keys, stacked."""
    fn = _ball_estimator(48, tuple(sorted(options.items())))
    scale, eps, sigma, rtol = (jnp.float32(a) for a in (scale, eps, sigma, rtol))
    return jax.tree.map(lambda *a: jnp.stack(a), *[fn(scale, center, w0, k, eps, sigma, rtol) for k in _keys(n_keys)])


_DESIGN = {"widths": V.DESIGN_WIDTHS, "alpha": V.DESIGN_ALPHA, "normalize": False}


@pytest.mark.parametrize("dim", [300, 4417])
def test_never_reached_cost_is_the_whole_prior(dim):
    # every ray is infinite, the star domain holds the whole prior: log-volume 0. The default and the widened option
    # (self-normalised: 0 by construction) and DESIGN.md 21's literal mixture (log mean w: a prior ray's weight is
    # 2, a uniform ray's about 0); uniform directions sit at their ceiling -D/2 + sqrt(2 D ln n) (the issue: -0.374
    # .. -0.467 per parameter). The cost is the ball's at scale 0 and sigma the RMS of w0 (what sigma=None takes),
    # so at D = 300 these are test_off_centre_ball_against_the_noncentral_chi_square's programs (D = 257 until
    # 2026-12-07)
    w0 = 0.3 * jax.random.normal(jax.random.key(dim), (dim,))
    rms = float(jnp.sqrt(jnp.mean(w0 * w0)))
    for options in ({}, {"widths": V.WIDTHS}, _DESIGN):
        est = _ball_over_keys(0.0, w0, w0, 2, 1e-2, rms, **options)
        np.testing.assert_allclose(est.log_volume, 0.0, atol=0.01, err_msg=str(options))
        assert (np.asarray(est.unbracketed) == 48).all() and (np.asarray(est.saturated) == 1.0).all()
        assert not np.asarray(est.resolved).any() and (np.asarray(est.unmoved) == 0).all()
        assert ((np.asarray(est.ess) >= 1) & (np.asarray(est.ess) <= 48)).all()
        if options is _DESIGN:
            np.testing.assert_allclose(est.ess, 24.0, rtol=1e-3)
    if dim == 300:   # (D = 4,417: the same code; the numbers are in docs/volume.md)
        plain = _ball_over_keys(0.0, w0, w0, 1, 1e-2, rms, widths=V.WIDTHS, alpha=V.DESIGN_ALPHA, normalize=False)
        assert 0.01 < abs(float(plain.log_volume[0])) < 1.0   # widened and not self-normalised: not exact
        uni = _ball_over_keys(0.0, w0, w0, 2, 1e-2, rms, directions="uniform")
        ceiling = -dim / 2 + math.sqrt(2 * dim * math.log(48))
        for value, full_ray in zip(np.asarray(uni.log_volume), np.asarray(uni.full_ray)):
            assert value < -0.35 * dim and abs(value - ceiling) < 0.1 * dim
            assert full_ray == pytest.approx(value, abs=1e-3)
        assert not np.asarray(uni.resolved).any()


@pytest.mark.parametrize("dim", [3, 300])
def test_off_centre_ball_against_the_noncentral_chi_square(dim):
    # the ball |w - c| < rho around w0 = c under N(0, I): mass ncx2.cdf(rho^2, D, |c|^2); |c|^2 = rho^2 = D. The
    # issue's prototype was 1.0 nat off at D = 300 (4.9 at D = 2,000, recorded in docs/volume.md): the default
    # (a quarter of the rays from the prior widened 1.25 times) and the widened option beat it; DESIGN.md 21's
    # literal mixture (one prior component) is about 2 nats off, uniform directions tens of nats low.
    from scipy import stats

    c = jnp.ones(dim, jnp.float32)
    truth = stats.ncx2.logcdf(dim, dim, dim)
    eps = math.sqrt(dim)   # the cost is the distance: the radius is eps exactly (one secant step)
    wide = np.asarray(_ball_over_keys(1.0, c, c, 4, eps, 1.0, widths=V.WIDTHS).log_volume) - truth
    default = np.asarray(_ball_over_keys(1.0, c, c, 4, eps, 1.0).log_volume) - truth
    design = np.asarray(_ball_over_keys(1.0, c, c, 4, eps, 1.0, **_DESIGN).log_volume) - truth
    low = np.asarray(_ball_over_keys(1.0, c, c, 4, eps, 1.0, directions="uniform").log_volume) - truth
    if dim == 3:
        for errors in (wide, default, design, low):
            assert np.abs(errors).max() < 0.4
        assert np.abs(wide).max() < 0.2 and np.abs(default).max() < 0.2
    else:
        for errors in (wide, default):
            assert np.abs(errors).mean() < 0.6 and np.abs(errors).max() < 1.0
        assert np.abs(design).mean() < 4.0 and (low < -40).all()


def _ball(center):
    return lambda w: jnp.sqrt(jnp.sum((w - center) ** 2))


def test_half_space_is_log_phi():
    # {w : a . w < t} seen from w0 one unit inside it: rays with a . u <= 0 never leave (r = inf), the others at
    # 1 / (a . u); mass log Phi(t / |a|) under N(0, I). Four keys of 256 rays, pooled (log-mean-exp); both t in one
    # compiled call (w0 traced).
    from scipy import stats

    dim = 10
    a_hat = jax.random.normal(jax.random.key(7), (dim,))
    a_hat = a_hat / jnp.linalg.norm(a_hat)
    ts = np.array([-1.5, 1.0], np.float32)
    w = 0.5 * jax.random.normal(jax.random.key(8), (dim,))
    w0s = jnp.stack([w - (jnp.dot(w, a_hat) - (t - 1.0)) * a_hat for t in ts])

    def one(w0, key):
        return V.log_volume(lambda v: jax.nn.relu(jnp.dot(a_hat, v - w0)), w0, key, 256, 1.0, 1.0)

    fn = _jit(one)
    est = jax.tree.map(lambda *a: jnp.stack(a).reshape(2, 4, *a[0].shape),
                       *[fn(w0, k) for w0 in w0s for k in _keys(4, 3)])
    pooled = np.asarray(jax.nn.logsumexp(est.log_volume, axis=1)) - math.log(4)
    # (t = -1.5: 0.29 low with the default's widened components, 0.2 with DESIGN 21's one; docs/volume.md)
    np.testing.assert_allclose(pooled, stats.norm.logcdf(ts), atol=0.35)
    assert abs(pooled[1] - stats.norm.logcdf(1.0)) < 0.1
    assert (np.asarray(est.unbracketed) > 0).all() and np.asarray(est.resolved).all()


@pytest.mark.product_compile
def test_uniform_directions_with_bisection_are_the_old_estimator():
    # directions="uniform", search="bisect" is DESIGN.md section 14's estimator: the same rays, radii and sum
    w0 = jnp.linspace(-1.0, 1.0, 30)
    cost = _star_cost(w0, jnp.eye(30))
    key = jax.random.key(4)
    est = _estimate(cost, w0, key, 16, 0.5, directions="uniform", search="bisect")
    u = V.random_directions(key, 16, 30)
    radii = _jit(lambda d: V.star_radii(cost, w0, d, 0.5, search="bisect").radius)(u)
    np.testing.assert_array_equal(est.radii, radii)
    sigma = jnp.sqrt(jnp.sum(w0 * w0) / 30)
    logs = _mass(radii / sigma, u @ w0 / sigma, jnp.float32(30), 30)
    np.testing.assert_allclose(est.log_masses, logs, rtol=1e-6)
    assert float(est.log_volume) == pytest.approx(float(jax.nn.logsumexp(logs) - math.log(16)), rel=1e-6)


def test_per_parameter_sigma_whitens_the_ball():
    # sigma = s (D,): N(0, diag(s^2)); the cost |(w - w0) / s| < rho is a whitened ball around z0 = w0 / s,
    # mass ncx2.cdf(rho^2, D, |z0|^2); both rho (traced epsilons) in one call, 4 keys pooled
    from scipy import stats

    dim = 12
    s = jnp.linspace(0.2, 3.0, dim)
    w0 = s * jnp.linspace(-1.5, 1.0, dim)
    cost = lambda w: jnp.sqrt(jnp.sum(((w - w0) / s) ** 2))  # noqa: E731
    rhos = np.array([1.0, 3.0], np.float32)
    est = _over_keys(cost, w0, 4, 64, rhos, s)
    pooled = np.asarray(jax.nn.logsumexp(est.log_volume, axis=0)) - math.log(4)
    truth = [stats.ncx2.logcdf(rho ** 2, dim, float(jnp.sum((w0 / s) ** 2))) for rho in rhos]
    np.testing.assert_allclose(pooled, truth, atol=0.15)
    np.testing.assert_allclose(est.sigma, float(jnp.sqrt(jnp.mean(s * s))), rtol=1e-6)


_W8 = jnp.linspace(-1.0, 1.0, 8)
_STAR8 = _star_cost(_W8, jnp.eye(8))   # one cost object: its compiled estimate is shared by the tests below


@pytest.mark.product_compile
def test_self_normalised_is_the_plain_estimate_over_its_full_ray_value():
    # normalize=True: log sum w - log sum w_inf, i.e. the plain estimate minus full_ray; resolved, saturated and
    # ess do not depend on it; the uniform measure refuses it
    w0, cost = _W8, _STAR8
    normed = _estimate(cost, w0, jax.random.key(2), 8, 0.3, normalize=True)
    plain = _estimate(cost, w0, jax.random.key(2), 8, 0.3, normalize=False)
    assert float(normed.log_volume) == pytest.approx(float(plain.log_volume) - float(plain.full_ray), abs=1e-5)
    assert float(normed.mean_log) == pytest.approx(float(plain.mean_log) - float(plain.full_ray), abs=1e-5)
    for name in ("saturated", "ess", "resolved", "full_ray", "radii"):
        np.testing.assert_array_equal(getattr(normed, name), getattr(plain, name), err_msg=name)
    with pytest.raises(ConfigError, match="normalize=True"):
        V.log_volume(cost, w0, jax.random.key(0), 4, 0.3, measure="uniform", normalize=True)


def test_rays_that_never_leave_w0_are_counted_not_minus_infinity():
    # the NRS grid's deepest, largest-scale networks (MSE cost): in the batched search the cost's float32 noise at
    # w0 already reaches epsilon (a lone evaluation at w0 gives 0), the search ends at its floor r = 2^-120 (w0 +
    # r u == w0), and the ray integral there overflowed to -inf (docs/volume.md). A cost at or above epsilon
    # everywhere shows the same search: the rays are counted in `unmoved`, their masses finite (the estimate is
    # NaN here only because this cost is not below epsilon at w0 in the lone evaluation either).
    w0 = jnp.ones(50)
    est = _estimate(lambda w: jnp.float32(1.0) + 0.0 * jnp.sum(w), w0, jax.random.key(0), 8, 0.5)
    assert int(est.unmoved) == 8 and not bool(est.resolved) and np.isnan(float(est.log_volume))
    assert np.isfinite(np.asarray(est.log_masses)).all() and (np.asarray(est.radii) < 1e-8).all()
    # the ray integral itself, below R = 2^-64: its leading term (it overflowed below R ~ 1e-35)
    for D in (1, 12_737):
        got = np.asarray(_mass(np.array([1e-30, 1e-36], np.float32), np.zeros(2, np.float32), float(D), D))
        want = [math.log(2) * (1 - D / 2) - math.lgamma(D / 2) - math.log(D) - D / 2 + D * math.log(r)
                for r in (1e-30, 1e-36)]
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_preconditioned_directions_stay_unbiased():
    from scipy import stats

    dim = 6
    c = jnp.full(dim, 0.8)
    truth = stats.ncx2.logcdf(4.0, dim, float(jnp.sum(c * c)))
    p = jnp.linspace(0.5, 2.0, dim)
    keys = jax.random.split(jax.random.key(0), 3)
    cost = _ball(c)
    got = _jit(jax.vmap(lambda k: V.log_volume(cost, c, k, 200, 2.0, 1.0, precondition=p).log_volume))(keys)
    assert float(jnp.mean(got)) == pytest.approx(truth, abs=0.1)


def test_init_std_is_the_torch_prior():
    model = rj.MLP(width=16, depth=3, in_dim=2, prior="torch")
    params = model.init(jax.random.key(0), weight_scale=1.78, bias_scale=0.5)
    std = V.init_std(model, params, 1.78, 0.5)
    flat_shapes = jax.tree.map(lambda a: a.shape, params)
    assert std.shape == jax.flatten_util.ravel_pytree(params)[0].shape
    want = jax.tree_util.tree_map_with_path(
        lambda path, a: np.full(a.shape, (1.78 if path[-1].key == "W" else 0.5)
                                / math.sqrt(3 * (2 if path[0].key == "first" else 16))), params)
    np.testing.assert_allclose(std, jax.flatten_util.ravel_pytree(want)[0], rtol=1e-6)
    # and it is the empirical std of the draws, per layer
    w, _ = jax.flatten_util.ravel_pytree(params)
    hidden = np.asarray(params["hidden"]["W"]).ravel()
    assert hidden.std() == pytest.approx(1.78 / math.sqrt(48), rel=0.05)
    assert flat_shapes["hidden"]["W"] == (2, 16, 16) and np.isfinite(np.asarray(w)).all()
    with pytest.raises(ConfigError, match="prior='cauchy'"):
        V.init_std(rj.MLP(prior="cauchy"), rj.MLP(prior="cauchy").init(jax.random.key(0)))


def test_broken_inputs_raise_or_give_nan():
    # issue 27: known bad arguments raise ConfigError naming the value; data-dependent failures inside jit -> NaN
    w0 = jnp.linspace(-1.0, 1.0, 5)
    cost = _star_cost(w0, jnp.eye(5))
    for eps in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="epsilon="):
            V.log_volume(cost, w0, jax.random.key(0), 4, eps)
    # one compiled program for every case: the cost a * C(w) + b with a, b traced
    traced = _jit(jax.vmap(lambda w, e, a, b: V.log_volume(lambda v: a * cost(v) + b, w, jax.random.key(0), 4,
                                                              e).log_volume))
    cases = [(w0, 0.1, 1.0, 0.0), (w0, -0.1, 1.0, 0.0),      # fine; epsilon <= 0, traced
             (w0, jnp.nan, 1.0, 0.0), (w0, 0.1, jnp.nan, 0.0),  # epsilon NaN, traced; an all-NaN cost
             (w0, 0.1, 1.0, 1.0), (w0.at[2].set(jnp.nan), 0.1, 1.0, 0.0)]   # cost >= epsilon at w0; NaN in w0
    got = np.asarray(traced(*[jnp.stack([jnp.asarray(c[i], jnp.float32) for c in cases]) for i in range(4)]))
    assert np.isfinite(got[0]) and np.isnan(got[1:]).all()
    for name, value in (("directions", "gaussian"), ("search", "newton"), ("alpha", 0.0), ("widths", (0.5,))):
        with pytest.raises(ConfigError, match=f"{name}="):
            V.log_volume(cost, w0, jax.random.key(0), 4, 0.1, **{name: value})
    with pytest.raises(ConfigError, match="sigma='init'"):
        V.log_volume(cost, w0, jax.random.key(0), 4, 0.1, sigma="init")


@pytest.mark.parametrize("start", ["one", "warm"])
def test_epsilon_axis_is_the_same_rays_searched_at_each_epsilon(start):
    """Each row of an epsilon axis is the estimate at that epsilon alone: the same search (start="one"), or with
    the warm start, whose rays start from the rows before (C ~ r^2), radii within the search's tolerance."""
    w0, cost = _W8, _STAR8
    eps = np.array([1e-3, 1e-1, 1.0], np.float32)
    both = _estimate(cost, w0, jax.random.key(2), 8, eps, start=start)
    assert both.log_volume.shape == (3,) and both.radii.shape == (3, 8)
    for i, e in enumerate(eps):
        one = _estimate(cost, w0, jax.random.key(2), 8, float(e), start=start)
        tol = 1e-6 if start == "one" else 2e-2
        np.testing.assert_allclose(both.radii[i], one.radii, rtol=tol)
        assert float(both.log_volume[i]) == pytest.approx(float(one.log_volume), rel=1e-5 if start == "one" else 0.05,
                                                          abs=1e-5)
    assert (np.diff(np.asarray(both.log_volume)) > 0).all()   # a larger epsilon, a larger region
