"""The infinite-width reference (DESIGN.md section 16): ``rj.models.NNGP``.

Every dual activation against an independent 2-D quadrature of ``E[phi(u) phi(v)]`` (the activation itself,
evaluated in float64, on composite Gauss-Legendre panels graded toward its kinks), including variances up to
1e4 and near-perfect correlation; the arc-cosine kernel's known values; the kernel against the empirical
covariance of thousands of finite ``rj.MLP`` networks of width 512; GP samples through the sweep engine
(bitwise the same whatever the chunking, equal to ``sample_network`` and to ``L z`` in numpy, setup once per
variant and numeric point); the errors; the notebook.
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

import redshift_jax as rj
from redshift_jax.errors import ConfigError
from redshift_jax.models import nngp
from redshift_jax.models.nngp import NNGP
from redshift_jax.sweep import engine

ROOT = Path(__file__).resolve().parents[1]

# ---- an independent reference: 2-D quadrature of E[phi(u) phi(v)] -----------------------------------------

_NUMPY_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0), "gelu": lambda x: x * special.ndtr(x),
    "swish": lambda x: x * special.expit(x), "tanh": np.tanh, "sigmoid": special.expit,
    "gaussian": lambda x: np.exp(-x * x), "sin": np.sin, "identity": lambda x: x,
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0))),
}


def _graded_rule(n_uniform: int, nodes: int = 10, levels: int = 24):
    """Composite Gauss-Legendre on [0, 1]: n_uniform equal panels, the first one split geometrically toward 0."""
    edges = np.unique(np.concatenate([[0.0], 2.0 ** -np.arange(levels, 0, -1) / n_uniform,
                                      np.linspace(1.0 / n_uniform, 1.0, n_uniform)]))
    t, w = np.polynomial.legendre.leggauss(nodes)
    a, b = edges[:-1, None], edges[1:, None]
    return ((a + b) / 2 + (b - a) / 2 * t).ravel(), ((b - a) / 2 * w).ravel()


def _gauss(w):
    return np.exp(-0.5 * w * w) / math.sqrt(2 * math.pi)


def reference_dual(phi, q1, q2, c, oscillatory=False, extent=9.0):
    """E[phi(u) phi(v)] with u = sqrt(q1) z, v = (c / sqrt(q1)) z + s w (z, w iid standard normal, s^2 = q2 -
    c^2 / q1): z on panels graded toward 0 (u's kink or spike), w for each z on panels graded toward the w where
    v = 0. Oscillatory integrands get panels about one period wide."""
    s = math.sqrt(max(q2 - c * c / q1, 0.0))
    r, rw = _graded_rule(int(30 + 1.5 * math.sqrt(q1) * oscillatory))
    z = np.concatenate([-extent * r[::-1], extent * r])
    zw = extent * np.concatenate([rw[::-1], rw]) * _gauss(z)
    a = c / math.sqrt(q1)
    outer = zw * phi(math.sqrt(q1) * z)
    if s == 0:
        return float(np.sum(outer * phi(a * z)))
    ri, rwi = _graded_rule(int(30 + 1.5 * s * oscillatory))
    w_star = np.clip(-a * z / s, -extent, extent)[:, None]
    total = 0.0
    for side in (-1.0, 1.0):
        length = extent - side * w_star
        w = w_star + side * length * ri[None, :]
        total += np.sum(outer * np.sum(length * rwi * _gauss(w) * phi(a * z[:, None] + s * w), axis=1))
    return float(total)


# (q1, q2, c): unit, unequal, near-perfect correlation, anticorrelation, large, very large near-perfect and
# very large moderate correlation (variances up to 1e4).
DUAL_CASES = [(1.0, 1.0, 0.3), (0.2, 3.0, -0.5), (4.0, 4.0, 4.0 * (1 - 1e-9)), (1.0, 1.0, -1.0),
              (100.0, 50.0, 60.0), (1e4, 1e4, 1e4 * (1 - 1e-7)), (1e4, 9e3, -3e3)]
FITTED = ("tanh", "sigmoid", "swish")


@pytest.mark.parametrize("activation", list(rj.ACTIVATIONS))
def test_dual_activations_match_2d_quadrature(activation):
    phi = _NUMPY_ACTIVATIONS[activation]
    for q1, q2, c in DUAL_CASES:
        if activation == "sin" and q1 > 100 and c < 0:
            continue  # exp(-6500): zero to double precision both ways; the quadrature only resolves noise there
        ref = reference_dual(phi, q1, q2, c, oscillatory=activation == "sin")
        got = float(nngp.dual(activation, q1, q2, c))
        if activation in FITTED:
            # the expansion's error: |V_T - V_tanh| <= 2 eps + eps^2 (and x tanh(x/2) for swish: eps sqrt(q1 q2))
            allowed = 1e-6 * abs(ref) + 4 * nngp.TANH_ERF_SUP_ERROR * max(1.0, math.sqrt(q1 * q2))
        else:
            allowed = 1e-6 * abs(ref) + 1e-15 * math.sqrt(q1 * q2)
        assert abs(got - ref) <= allowed, (activation, q1, q2, c, got, ref)


def test_tanh_erf_expansion_sup_error():
    x = np.linspace(0.0, 40.0, 400_001)
    fit = sum(a * special.erf(b * x) for a, b in zip(nngp.TANH_ERF_A, nngp.TANH_ERF_B))
    error = np.abs(fit - np.tanh(x)).max()
    assert len(nngp.TANH_ERF_A) == 10 and error <= nngp.TANH_ERF_SUP_ERROR <= 1e-8
    assert abs(sum(nngp.TANH_ERF_A) - 1.0) < 1e-14  # the tails match: the error vanishes at infinity


def test_arc_cosine_kernel_known_values():
    relu = lambda q1, q2, c: float(nngp.dual("relu", q1, q2, c))  # noqa: E731
    assert relu(1.0, 1.0, 1.0) == pytest.approx(0.5, abs=1e-15)        # E[relu(u)^2] = q / 2
    assert relu(1.0, 1.0, 0.0) == pytest.approx(1 / (2 * math.pi), abs=1e-15)  # E[relu(u)]^2
    assert relu(1.0, 1.0, -1.0) == pytest.approx(0.0, abs=1e-15)       # v = -u: never both positive
    assert relu(4.0, 9.0, 3.0) == pytest.approx(6 / (2 * math.pi) * (math.sqrt(3) / 2 + (2 * math.pi / 3) / 2))
    # Cho & Saul's degree-1 kernel k1(x, y) = |x||y| J(theta) / pi, J = sin t + (pi - t) cos t: the bias-free
    # one-layer NNGP is a^2 V(s|x|^2, s|y|^2, s x.y) = a^2 (s / 2) k1 with s = a^2 / in_dim, here 4 k1.
    x = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]])
    k = NNGP("relu", depth=1).kernel(x, x, weight_scale=2.0, bias_scale=0.0)
    norms = np.linalg.norm(x, axis=1)
    cos = np.clip(x @ x.T / np.outer(norms, norms), -1, 1)
    t = np.arccos(cos)
    want = 4.0 * np.outer(norms, norms) * (np.sin(t) + (np.pi - t) * cos) / np.pi
    np.testing.assert_allclose(k, want, rtol=1e-14)
    # He scaling (a^2 = 2, no bias) keeps the diagonal at every depth: K_l(x, x) = 2 |x|^2 / in_dim
    deep = NNGP("relu", depth=6).kernel(x, x, weight_scale=math.sqrt(2), bias_scale=0.0)
    np.testing.assert_allclose(np.diag(deep), norms ** 2, rtol=1e-13)


def _independent_recursion(activation, depth, x, a, b, p, prior="normal", width=None):
    """The recursion as DESIGN.md section 16 writes it, with the duals from the 2-D quadrature reference."""
    phi = _NUMPY_ACTIVATIONS[activation]
    d = x.shape[1]
    if prior == "normal":
        bias, first, gains = b * b, a * a / d, [a * a] * depth
    else:
        bias, first = b * b / 3, 2 * a * a / (d + width)
        gains = [a * a] * (depth - 1) + [2 * a * a * width / (width + 1)]
    k = bias + first * (x @ x.T)
    for gain in gains:
        new = np.empty_like(k)
        for i in range(len(x)):
            for j in range(len(x)):
                new[i, j] = bias + gain * reference_dual(phi, p * p * k[i, i], p * p * k[j, j], p * p * k[i, j])
        k = new
    return k


@pytest.mark.product_compile
def test_kernel_recursion_priors_and_prefactor():
    x = np.array([[0.3, -0.9], [0.7, 0.2], [-0.5, -0.5]])
    for activation, prior, width in (("gelu", "normal", None), ("gaussian", "paper", 7)):
        spec = NNGP(activation, depth=3, prior=prior, width=width)
        got = spec.kernel(x, x, weight_scale=1.7, bias_scale=0.4, prefactor=0.8)
        want = _independent_recursion(activation, 3, x, 1.7, 0.4, 0.8, prior, width)
        np.testing.assert_allclose(got, want, rtol=1e-9)
        # gram (one evaluation per distinct (|x|^2, |x'|^2, x.x')) gives the same numbers
        np.testing.assert_allclose(spec.gram(x, 1.7, 0.4, 0.8), got, rtol=1e-14)
    # the prefactor enters as p^2: its sign does not matter
    spec = NNGP("sin", depth=2)
    np.testing.assert_array_equal(spec.kernel(x, x, prefactor=-1.5), spec.kernel(x, x, prefactor=1.5))


# compiles as users do: drawing and running thousands of width-512 networks costs more than compiling them
@pytest.mark.product_compile
@pytest.mark.parametrize("activation,depth,weight_scale,prefactor,prior,count", [
    ("relu", 1, 1.5, 1.0, "normal", 4000), ("tanh", 1, 2.0, 1.5, "normal", 4000),
    ("sin", 1, 1.0, 2.0, "normal", 4000), ("gelu", 1, 2.0, 1.0, "normal", 4000),
    ("relu", 1, 1.5, 1.0, "paper", 4000), ("tanh", 2, 2.0, 1.0, "normal", 400)])
def test_kernel_is_the_covariance_of_wide_mlps(activation, depth, weight_scale, prefactor, prior, count):
    """Finite width-512 MLPs: their empirical covariance on a few points matches the NNGP kernel within Monte
    Carlo error. Depth 1 with the normal prior is exact at any width (the first layer is Gaussian, the readout
    linear); depth 2 gets an O(1/width) allowance (and few networks: each draws a 512 x 512 layer); the paper
    prior's width-matched kernel treats the uniform-law pre-activations as Gaussian (5% allowed)."""
    x = np.array([[0.0, 0.0], [0.9, -0.4], [-0.6, -0.8], [0.5, 0.5]], np.float32)
    width = 512
    spec = rj.MLP(activation=activation, depth=depth, width=width, prior=prior)

    @jax.jit
    def outputs(seeds):
        def one(seed):
            params = spec.init(jax.random.fold_in(jax.random.key(11), seed), weight_scale=weight_scale,
                               bias_scale=0.5)
            return spec.apply(params, x, prefactor=prefactor)
        return jax.lax.map(jax.vmap(one), seeds.reshape(-1, 100))

    f = np.asarray(outputs(jnp.arange(count, dtype=jnp.uint32)), np.float64).reshape(count, len(x))
    products = f[:, :, None] * f[:, None, :]
    empirical, se = products.mean(0), products.std(0) / math.sqrt(count)
    model = NNGP(activation, depth=depth, prior=prior, width=width if prior == "paper" else None)
    k = model.kernel(x, x, weight_scale=weight_scale, bias_scale=0.5, prefactor=prefactor)
    allowance = {"normal": 0.0 if depth == 1 else 4.0 / width, "paper": 0.05}[prior]
    z = np.abs(empirical - k) / (se + allowance * np.sqrt(np.outer(np.diag(k), np.diag(k))))
    assert z.max() < 4.0, (activation, empirical, k, se)


# ---- the sweep protocol -----------------------------------------------------------------------------------

@pytest.mark.product_compile
def test_gp_samples_through_the_engine(monkeypatch):
    calls = []
    setup = NNGP.setup

    def counting(self, points, **numeric):
        calls.append((self.activation, numeric["weight_scale"]))
        return setup(self, points, **numeric)

    monkeypatch.setattr(NNGP, "setup", counting)
    sweep = rj.Sweep(model=NNGP(depth=2), resolution=8, measures=("fourier",), keep_values=True,
                     axes={"activation": ["relu", "tanh"], "weight_scale": [1.0, 3.0], "seed": list(range(5))})
    assert sweep.variant_dims == ("activation", "weight_scale") and sweep.network_dims == ("seed",)
    ds = rj.run_sweep(sweep, progress=False, num_devices=2, chunk_size=2)
    assert sorted(calls) == sorted((a, s) for a in ("relu", "tanh") for s in (1.0, 3.0))  # once per point
    other = rj.run_sweep(sweep, progress=False, num_devices=1, chunk_size=5)
    np.testing.assert_array_equal(ds["values"].values, other["values"].values)  # any chunking, bit for bit
    points = rj.grid(8, 2).astype(np.float64)
    for activation in ("relu", "tanh"):
        for scale in (1.0, 3.0):
            factor_l = NNGP(activation, depth=2).setup(points, weight_scale=scale)["L"].astype(np.float64)
            for seed in (0, 4):
                cell = dict(activation=activation, weight_scale=scale, seed=seed)
                got = ds["values"].sel(**cell).values
                z = np.asarray(jax.random.normal(jax.random.fold_in(jax.random.key(0), seed), (64,)), np.float64)
                np.testing.assert_allclose(got.ravel(), factor_l @ z, atol=1e-5)
                image, _ = engine.sample_network(sweep, cell)
                assert np.array_equal(image, got)
    assert bool(ds.finite.all())


def test_factor_reproduces_the_kernel_and_handles_singular_ones():
    points = rj.grid(6, 2).astype(np.float64)
    for activation in ("tanh", "identity"):   # identity: rank in_dim + 1, not positive definite
        spec = NNGP(activation, depth=2)
        k = spec.gram(points, weight_scale=2.0)
        factor_l = nngp.factor(k)
        np.testing.assert_allclose(factor_l @ factor_l.T, k, atol=1e-12 * np.mean(np.diag(k)) * 10)


def test_errors_name_the_value_and_what_is_allowed():
    with pytest.raises(ConfigError, match=r"NNGP.width=None .*prior='paper'"):
        NNGP("relu", depth=2, prior="paper")
    with pytest.raises(ConfigError, match=r"NNGP.width=64 .*allowed: None"):
        NNGP("relu", prior="normal", width=64)
    with pytest.raises(ConfigError, match=r"NNGP.prior='cauchy' .*allowed: normal, paper"):
        NNGP("relu", prior="cauchy")
    with pytest.raises(ConfigError, match=r"NNGP.activation='softplus' is unknown; allowed: relu"):
        NNGP("softplus")
    with pytest.raises(ConfigError, match="NNGP.depth"):
        NNGP("relu", depth=0)
    with pytest.raises(ConfigError, match=r"x1 has shape \(3, 3\)"):
        NNGP("relu").kernel(np.zeros((3, 3)), np.zeros((2, 2)))
    with pytest.raises(ConfigError, match="at most 16384 points"):
        rj.Sweep(model=NNGP(), resolution=200, measures=("fourier",))
    with pytest.raises(ConfigError, match="state"):
        jax.jit(lambda x: NNGP().apply({"key": jax.random.key(0)}, x))(jnp.zeros((4, 2)))


def test_sweep_spec_round_trips():
    sweep = rj.Sweep(model=NNGP("gelu", depth=2, prior="paper", width=32), resolution=8, measures=("lz",),
                     axes={"seed": [0]})
    assert rj.Sweep.from_dict(sweep.to_dict()) == sweep


def test_notebook_runs_at_smoke_size(tmp_path, run_notebook):
    run_notebook("width_limit.py")
    for name in ("nngp_samples.png", "nngp_width_limit.png", "nngp.md"):
        assert (tmp_path / name).exists(), name


def test_sweep_files_define_their_sizes_and_the_size_guard_estimates_them():
    from redshift_jax import cli
    from redshift_jax.sweep.plan import estimate_cost

    full = cli.load_sweep_file(ROOT / "sweeps" / "fig4_nngp.py", "full")[0]
    assert set(full) == {"paper_w64", "normal"}
    part = full["paper_w64"]
    assert part.model.prior == "paper" and part.model.width == 64 and part.resolution == 64
    assert part.variant_dims == ("activation", "depth", "weight_scale") and part.network_dims == ("seed",)
    assert sum(1 for _ in part.structural_variants()) == 7 * 10 * 15
    cost = estimate_cost(part, 2, "cpu")  # a factorization per variant dominates: an estimate, not a crash
    assert 600 < cost["seconds"] < 48 * 3600 and cost["networks"] == 7 * 10 * 15 * 32
    quick = cli.load_sweep_file(ROOT / "sweeps" / "fig4_nngp.py", "quick")[0]
    assert sum(p.num_networks for p in quick.values()) <= 64


def test_a_numerically_constant_field_is_nan_with_a_warning_not_white_noise():
    """Issue 27: at weight scale 0 or 1e-3 with bias 1 the kernel is a constant up to rounding, so the sample was
    constant plus Cholesky jitter and float32 rounding, and scored like white noise (fourier 0.54) with exit 0.
    Such samples are now NaN with finite=False and a warning naming the relative variation; weight scale 1 is
    unchanged."""
    sweep = rj.Sweep(model=NNGP("relu", depth=3), resolution=16, measures=("fourier", "lz"),
                     axes={"weight_scale": [0.0, 1e-3, 1.0], "bias_scale": [1.0], "seed": [0, 1]})
    with pytest.warns(UserWarning, match="constant"):
        ds = rj.run_sweep(sweep, progress=False)
    low = ds.sel(weight_scale=[0.0, 1e-3])
    assert np.isnan(low.fourier.values).all() and np.isnan(low.lz.values).all() and not low.finite.values.any()
    ok = ds.sel(weight_scale=1.0)
    assert np.isfinite(ok.fourier.values).all() and ok.finite.values.all()
