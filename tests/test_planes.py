"""Planes through input space, FlaxModel and the CNN (DESIGN.md section 19; issue 26)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import redshift_jax as rj
from redshift_jax.models.planes import dataset_array
from redshift_jax.sweep.engine import sample_network

ROOT = Path(__file__).resolve().parents[1]


def _numpy_plane(plane, resolution, key=None):
    """x(u, v) = x0 + s (u d1 + v d2) in float64 from the dataset, DESIGN 19's formula written out (random
    directions from ``key``, default ``jax.random.key(plane.seed)``)."""
    data = dataset_array(plane.dataset).reshape(len(dataset_array(plane.dataset)), -1).astype(np.float64)
    x0 = data[plane.anchor]
    if plane.mode == "data":
        d1 = data[plane.others[0]] - x0
        d2 = data[plane.others[1]] - x0
        d2 = d2 - (d2 @ d1) / (d1 @ d1) * d1
    else:
        key = jax.random.key(plane.seed) if key is None else key
        g = np.asarray(jax.random.normal(key, (2, data.shape[1]), jnp.float32), np.float64)
        q, _ = np.linalg.qr(g.T)                      # Gram-Schmidt up to signs
        q = q * np.sign(np.sum(q * g.T, axis=0))      # same orientation as g
        rms = np.sqrt(np.mean(np.sum(data ** 2, axis=1)))
        d1, d2 = rms * q[:, 0], rms * q[:, 1]
    t = np.linspace(-1.0, 1.0, resolution)
    v, u = np.meshgrid(t, t, indexing="ij")           # row i = v, column j = u
    pts = x0 + plane.scale * (u.reshape(-1, 1) * d1 + v.reshape(-1, 1) * d2)
    return pts.reshape((resolution ** 2,) + plane.input_shape)


@pytest.mark.product_compile
@pytest.mark.parametrize("mode", ["random", "data"])
def test_plane_points_match_numpy_formula(mode):
    plane = rj.Plane("digits", anchor=3, mode=mode, others=(5, 7), scale=0.7, seed=4)
    pts = plane.points(5)
    assert pts.shape == (25, 8, 8, 1) and pts.dtype == np.float32
    np.testing.assert_allclose(pts, _numpy_plane(plane, 5), atol=2e-5)
    np.testing.assert_array_equal(pts[12], dataset_array("digits")[3])   # centre (odd resolution) is x0
    x0, d1, d2 = (a.reshape(-1).astype(np.float64) for a in plane.basis())
    assert abs(d1 @ d2) < 1e-4 * np.linalg.norm(d1) * np.linalg.norm(d2)
    if mode == "random":
        rms = np.sqrt(np.mean(np.sum(dataset_array("digits").reshape(1797, -1).astype(np.float64) ** 2, axis=1)))
        np.testing.assert_allclose([np.linalg.norm(d1), np.linalg.norm(d2)], rms, rtol=1e-5)


@pytest.mark.product_compile
def test_a_per_network_plane_follows_the_network_seed():
    """``Plane(seed=None)``: each network draws its plane from its own key (DESIGN 19: the plane seed is the
    network seed), kept with its parameters; the stored field is the module on that plane (float64 reference),
    the same for any chunk size and device count, and the same plane for a seed at every weight scale."""
    from redshift_jax.models.flax_model import PLANE_TAG

    model = _tiny_cnn(depth=1, plane=rj.Plane("digits", anchor=2, scale=0.8, seed=None))
    sweep = rj.Sweep(model=model, axes={"weight_scale": [1.0, 2.0], "seed": [0, 1, 2]}, resolution=6,
                     measures=("fourier",), keep_values=True, chunk_size=2)
    ds = rj.run_sweep(sweep, progress=False)
    other = rj.run_sweep(sweep.replace(chunk_size=3), progress=False, num_devices=1)
    np.testing.assert_array_equal(ds["values"].values, other["values"].values)
    np.testing.assert_array_equal(ds["fourier"].values, other["fourier"].values)
    assert rj.Sweep.from_dict(json.loads(sweep.to_json())).model == model
    planes = {}
    for scale in (1.0, 2.0):
        for seed in (0, 1, 2):
            net = ds.rj.network(weight_scale=scale, seed=seed)
            planes.setdefault(seed, net.params["plane"])
            for d in ("d1", "d2"):   # the same seed: the same plane, whatever the weight scale
                np.testing.assert_array_equal(net.params["plane"][d], planes[seed][d])
            key = jax.random.fold_in(jax.random.fold_in(jax.random.key(sweep.base_seed), seed), PLANE_TAG)
            images = _numpy_plane(model.plane, 6, key)
            with jax.enable_x64(True):
                p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64),
                                   {k: v for k, v in net.params.items() if k != "plane"})
                ref = np.asarray(model.module.apply(p64, jnp.asarray(images)))[:, 0]
            np.testing.assert_allclose(ds["values"].sel(weight_scale=scale, seed=seed).values.ravel(), ref,
                                       rtol=1e-4, atol=1e-5)
    assert not np.allclose(planes[0]["d1"], planes[1]["d1"])   # another seed, another plane
    with pytest.raises(rj.ConfigError, match="seed=None"):
        sweep.flow.plane_points(sweep)                          # no plane shared by the networks
    with pytest.raises(rj.ConfigError, match="mode 'data'"):
        rj.Plane("digits", mode="data", seed=None)


# the tests' cheaper compile level: it compares the sweep with the direct call within a tolerance, not bit for bit
# (9 s of CPU against 14 s as users compile, 2026-12-08)
def test_local_volume_runs_on_a_plane_model_and_kinks_refuse_it():
    """The network measures on a FlaxModel: local volume is the direct call's on the network's (u, v) grid, with a
    per-network plane held fixed (not a parameter); kinks and linear regions (piecewise-linear MLPs only) refuse
    a CNN in one line before compiling."""
    from redshift_jax.measures import volume as V

    volume = ("volume", {"n_directions": 4})
    plane = rj.Plane("digits", seed=None)
    model = _tiny_cnn(depth=1, plane=plane)
    ds = rj.run_sweep(rj.Sweep(model=model, axes={"seed": [0, 1]}, resolution=6, measures=(volume,)),
                      progress=False)
    uv = jnp.asarray(rj.grid(6, 2))
    direct = jax.jit(lambda p: V.network_log_volume(model, p, uv, n_directions=4).log_volume)
    for seed in (0, 1):
        params = model.init(jax.random.fold_in(jax.random.key(0), seed))
        # rel 1e-5, as test_volume.py's sweep-against-direct checks: the sweep's vmapped convolutions sum in
        # another order than the single network's (1.4e-6 apart on an AMD EPYC, 2026-12-07)
        assert float(ds.volume.sel(seed=seed)) == pytest.approx(float(direct(params)), rel=1e-5)
        _, w0 = V.network_cost(model, params, uv)
        weights = {k: v for k, v in params.items() if k != "plane"}
        assert w0.size == sum(a.size for a in jax.tree.leaves(weights))   # the plane's directions are not moved
    assert np.isfinite(ds.volume.values).all()
    for measure in ("kinks", "linear_regions"):
        with pytest.raises(rj.ConfigError, match="needs an MLP") as err:
            rj.Sweep(model=model, axes={"seed": [0]}, resolution=6, measures=(measure,)).validate()
        assert "\n" not in str(err.value)


def test_data_plane_reaches_others_and_mnist():
    plane = rj.Plane("digits", anchor=0, mode="data", others=(1, 2))
    pts = plane.points(3)   # (u, v) = (1, 0) is row 1, column 2
    np.testing.assert_allclose(pts[1 * 3 + 2], dataset_array("digits")[1], atol=1e-6)
    mnist = rj.Plane("mnist", anchor=2, mode="data", others=(3, 4))
    pts = mnist.points(3)
    assert pts.shape == (9, 28, 28, 1)
    np.testing.assert_allclose(pts[5], dataset_array("mnist")[3], atol=1e-6)
    assert 0.0 <= dataset_array("mnist").min() and dataset_array("mnist").max() <= 1.0


def test_plane_is_hashable_and_round_trips_as_dict():
    import dataclasses

    plane = rj.Plane("digits", mode="data", others=[4, 9], scale=2)
    assert plane.others == (4, 9) and hash(plane) == hash(rj.Plane("digits", mode="data", others=(4, 9), scale=2.0))
    back = rj.Plane.coerce(json.loads(json.dumps(dataclasses.asdict(plane))))
    assert back == plane


@pytest.mark.product_compile
def test_from_array_registers_by_content_hash():
    x = np.random.default_rng(0).normal(size=(5, 3, 4)).astype(np.float32)
    plane = rj.planes.from_array(x, name="toy", mode="data")
    assert plane.dataset.startswith("array:") and plane.input_shape == (3, 4)
    assert rj.planes.from_array(x.copy()).dataset == plane.dataset
    np.testing.assert_array_equal(plane.points(3)[4], x[0])


@pytest.mark.parametrize("make, fragment", [
    (lambda: rj.Plane("digits", anchor=1797), "anchor=1797"),
    (lambda: rj.Plane("digits", anchor=-1), "anchor=-1"),
    (lambda: rj.Plane("cifar"), "'cifar'"),
    (lambda: rj.Plane("digits", mode="pca"), "'pca'"),
    (lambda: rj.Plane("digits", mode="data", others=(0, 2)), "distinct"),
    (lambda: rj.Plane("digits", mode="data", others=(1, 5000)), "others=5000"),
    (lambda: rj.Plane("digits", scale=float("nan")), "scale=nan"),
    (lambda: rj.Plane("array"), "'array'"),
    (lambda: rj.Plane("array:0123456789abcdef"), "not registered"),
    (lambda: rj.planes.from_array(np.array([1.0, np.inf])), "shape (2,)"),
    (lambda: rj.planes.from_array(np.array([[1.0, np.nan]])), "non-finite"),
])
def test_bad_planes_raise_config_error(make, fragment):
    with pytest.raises(rj.ConfigError, match="allowed") as err:
        make()
    assert fragment in str(err.value)


def _tiny_cnn(**kw):
    return rj.CNN(**{"depth": 2, "width": 4, "activation": "tanh", "plane": rj.Plane("digits"), **kw})


def test_cnn_field_is_module_on_plane_points():
    model = _tiny_cnn(layernorm=True, residual=True, plane=rj.Plane("digits", mode="data", anchor=5))
    params = model.init(jax.random.key(1), weight_scale=1.5, bias_scale=0.5)
    field = np.asarray(jax.jit(model.apply)(params, rj.grid(8, 2)))
    logits = np.asarray(jax.jit(model.module.apply)(params, model.plane.points(8)))
    direct = logits[:, 0]
    assert field.shape == (64,) and np.all(np.isfinite(field))
    np.testing.assert_allclose(field, direct, rtol=1e-6, atol=1e-6)
    # a float64 reference: parameters and plane points in float64
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        ref = np.asarray(jax.jit(model.module.apply)(p64, jnp.asarray(_numpy_plane(model.plane, 8))))[:, 0]
    np.testing.assert_allclose(field, ref, rtol=1e-4, atol=1e-5)
    margin = np.asarray(jax.jit(model.replace(output="margin").apply)(params, rj.grid(8, 2)))
    top2 = np.sort(logits, axis=1)[:, -2:]
    np.testing.assert_allclose(margin, top2[:, 1] - top2[:, 0], rtol=1e-6, atol=1e-6)


# bitwise at the tests' cheaper compile level: both sides run the same eager primitives, so the same executables
# (no product_compile needed; at the product level its random draws compiled for 6 s of its 10)
def test_unit_scales_reproduce_module_init_bitwise():
    model = _tiny_cnn(layernorm=True)
    key = jax.random.key(3)
    ours = model.init(key, weight_scale=1.0, bias_scale=1.0)
    theirs = model.module.init(key, jnp.zeros((1, 8, 8, 1), jnp.float32))
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    scaled = model.init(key, weight_scale=2.0, bias_scale=0.0)["params"]
    np.testing.assert_array_equal(scaled["conv_1"]["kernel"], 2.0 * np.asarray(theirs["params"]["conv_1"]["kernel"]))
    assert not np.any(np.asarray(scaled["head"]["bias"]))


def test_flax_model_wraps_a_user_module_and_refuses_unknown_parameters():
    class Affine(nn.Module):
        features: int = 3

        @nn.compact
        def __call__(self, x):
            return nn.Dense(self.features)(x.reshape(x.shape[0], -1))

    class Odd(nn.Module):
        @nn.compact
        def __call__(self, x):
            w = self.param("w", nn.initializers.ones, (x[0].size, 2))
            return x.reshape(x.shape[0], -1) @ w

    model = rj.FlaxModel(Affine(), (8, 8, 1), output="logit", klass=2, plane=rj.Plane("digits"))
    assert model.structural_axes == ("features", "output", "klass")
    assert model.replace(features=5, klass=4).module.features == 5
    assert model.apply(model.init(jax.random.key(0)), rj.grid(4, 2)).shape == (16,)
    with pytest.raises(rj.ConfigError, match="'params/w'"):
        rj.FlaxModel(Odd(), plane=rj.Plane("digits"))
    with pytest.raises(rj.ConfigError, match="klass=3"):
        rj.FlaxModel(Affine(), klass=3, plane=rj.Plane("digits"))
    with pytest.raises(rj.ConfigError, match=r"input_shape=\(28, 28, 1\)"):
        rj.FlaxModel(Affine(), (28, 28, 1), plane=rj.Plane("digits"))
    with pytest.raises(rj.ConfigError, match="'sigmoid2'"):
        _tiny_cnn(activation="sigmoid2")
    # a user module's sweep runs and stores its spec; rebuilding it is a clear ConfigError
    sweep = rj.Sweep(model=model, axes={"seed": [0, 1]}, resolution=8, measures=("lz",))
    spec = json.loads(sweep.to_json())
    with pytest.raises(rj.ConfigError, match="'Affine' cannot be rebuilt"):
        rj.Sweep.from_dict(spec)


def test_an_nnx_module_runs_through_the_linen_bridge():
    """A flax.nnx module becomes a FlaxModel through flax's own bridge (nnx.bridge.ToLinen): its Linear layers'
    kernel / bias are scaled like a linen module's, unit scales give the bridge's own init bit for bit, and the
    field is the module's forward pass on the plane (against float64 numpy with the same parameters)."""
    from flax import nnx
    from flax.nnx import bridge

    class Tanh2(nnx.Module):
        def __init__(self, din, width, rngs):
            self.hidden = nnx.Linear(din, width, rngs=rngs)
            self.head = nnx.Linear(width, 3, rngs=rngs)

        def __call__(self, x):
            return self.head(jnp.tanh(self.hidden(x.reshape(x.shape[0], -1))))

    model = rj.FlaxModel(bridge.ToLinen(Tanh2, args=(64, 5)), output="margin", plane=rj.Plane("digits", scale=2.0))
    key = jax.random.key(4)
    own = model.module.init(key, jnp.zeros((1, 8, 8, 1), jnp.float32))
    for a, b in zip(jax.tree.leaves(model.init(key)), jax.tree.leaves(own)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    variables = model.init(key, weight_scale=3.0, bias_scale=0.5)
    got, ref = variables["params"], own["params"]
    np.testing.assert_array_equal(got["hidden"]["kernel"], np.float32(3.0) * np.asarray(ref["hidden"]["kernel"]))
    np.testing.assert_array_equal(got["head"]["bias"], np.float32(0.5) * np.asarray(ref["head"]["bias"]))
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), got)
    x = np.asarray(model.plane.points(5), np.float64).reshape(25, -1)
    logits = np.tanh(x @ p["hidden"]["kernel"] + p["hidden"]["bias"]) @ p["head"]["kernel"] + p["head"]["bias"]
    top = np.sort(logits, axis=1)
    field = np.asarray(model.apply(variables, rj.grid(5, 2)))
    np.testing.assert_allclose(field, top[:, -1] - top[:, -2], rtol=1e-4, atol=1e-5)


@pytest.mark.product_compile
def test_cnn_sweep_runs_is_chunk_invariant_and_round_trips():
    model = _tiny_cnn(depth=1)
    axes = {"depth": [1, 2], "weight_scale": [0.5, 2.0], "seed": [0, 1, 2]}
    sweep = rj.Sweep(model=model, axes=axes, resolution=8, measures=("fourier", "lz"), chunk_size=1)
    one = rj.run_sweep(sweep, progress=False)
    three = rj.run_sweep(sweep.replace(chunk_size=3), progress=False)
    for name in ("fourier", "lz"):
        values = one[name].values
        assert values.shape == (2, 2, 3) and np.all(np.isfinite(values))
        np.testing.assert_array_equal(values, three[name].values)
    assert bool(one["finite"].all())
    assert one.rj.sweep.to_dict() == sweep.to_dict()
    assert rj.Sweep.from_dict(json.loads(sweep.to_json())).model == sweep.model
    with pytest.raises(rj.ConfigError, match="lo=-2"):
        sweep.replace(lo=-2.0)


# ---- the plane flow (issue 26 item 1): planes are their own input kind ----------------------------------------

def test_plane_models_run_through_the_plane_flow_and_grid_models_through_the_field_flow():
    from types import SimpleNamespace

    from redshift_jax.sweep.flows import FieldFlow, PlaneFlow

    digits = rj.Plane("digits")
    models = {"cnn": _tiny_cnn(), "vit": _tiny_vit(depth=1, d_model=8), "pixel": rj.PixelMLP(depth=1, width=4,
              plane=digits), "flax": rj.FlaxModel(_Tiny(), plane=rj.Plane("digits", mode="data"))}
    for name, model in models.items():
        sweep = rj.Sweep(model=model, axes={"seed": [0, 1]}, resolution=6, measures=("lz",))
        assert sweep.flow.name == "plane" and isinstance(sweep.flow, PlaneFlow), name
        # evaluated at the plane's (u, v) grid on [-1, 1]^2, the layout of the values and of plane.points
        np.testing.assert_array_equal(sweep.flow.inputs(sweep, model), rj.grid(6, 2, -1.0, 1.0))
        assert sweep.flow.value_layout(sweep) == ((6, 6), np.float32, ("y", "x"))
        # the plane is stored with the model; the flow adds no spec field (stored specs and digests unchanged)
        assert sweep.flow.spec_fields(sweep) == {}
        assert sweep.to_dict()["model"]["plane"] == dataclasses.asdict(model.plane)
    sweep = rj.Sweep(model=models["cnn"], axes={"seed": [0]}, resolution=4, measures=("lz",))
    np.testing.assert_array_equal(sweep.flow.plane_points(sweep), digits.points(4))
    # a plane model that declares no cost is costed as an MLP on the plane's flattened 8 x 8 images
    guess = PlaneFlow().network_flops(SimpleNamespace(plane=digits, width=8, depth=1), 10)
    assert guess == 2.0 * 10 * (64 * 8 + 8) + 200.0 * 10 * 8 / 64
    for model in (rj.MLP(width=4), rj.MLP(in_dim=1), rj.Unbiased(resolution=8)):
        grid_sweep = rj.Sweep(model=model, axes={"seed": [0]}, resolution=8, measures=("lz",))
        assert grid_sweep.flow.name == "field" and type(grid_sweep.flow) is FieldFlow
    with pytest.raises(rj.ConfigError, match="in_dim=3"):          # the grid's own check stays with the grid
        rj.Sweep(model=rj.MLP(in_dim=3), resolution=8, measures=("lz",))


@pytest.mark.parametrize("bounds, shown, hidden", [
    ({"lo": -2.0}, "Sweep.lo=-2.0 is", "hi="),
    ({"hi": 0.5}, "Sweep.hi=0.5 is", "Sweep.lo"),
    ({"lo": 0.0, "hi": 2.0}, "Sweep.lo=0.0, hi=2.0 is", None),
])
def test_a_plane_sweep_off_the_planes_range_fails_before_compiling_with_one_line(bounds, shown, hidden,
                                                                                 compile_counter):
    model = _tiny_cnn()                  # drawing the plane's directions compiles; checking the sweep must not
    before = compile_counter.count()
    with pytest.raises(rj.ConfigError) as err:
        rj.Sweep(model=model, axes={"seed": [0, 1]}, resolution=8, measures=("lz",), **bounds)
    message = str(err.value)
    assert shown in message and "allowed: lo=-1, hi=1" in message and "Plane.scale" in message
    assert "\n" not in message and (hidden is None or hidden not in message.split(" is not allowed")[0])
    assert compile_counter.count() == before
    assert rj.Sweep(model=model, resolution=8, measures=("lz",), lo=-1, hi=1).flow.name == "plane"


class _Tiny(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(jnp.tanh(nn.Dense(4)(x.reshape(x.shape[0], -1))))


# ---- the ViT, the pixel MLP and the adapter's remaining checks (issue 26 items 3 and 5) -----------------------

def _tiny_vit(**kw):
    return rj.ViT(**{"depth": 2, "d_model": 16, "heads": 2, "activation": "tanh", "plane": rj.Plane("digits"), **kw})


def test_vit_field_is_module_applied_image_by_image_in_float64():
    model = _tiny_vit(plane=rj.Plane("digits", mode="data", anchor=4, scale=1.5))
    assert model.module.patch == 2 and rj.ViT().module.patch == 4        # digits 8 x 8, MNIST 28 x 28
    assert model.numeric_axes["ln_gain"].stage == "apply"
    params = model.init(jax.random.key(2), weight_scale=8.0, bias_scale=1.0)
    field = np.asarray(jax.jit(model.apply)(params, rj.grid(6, 2), ln_gain=2.5))
    assert field.shape == (36,) and np.all(np.isfinite(field)) and np.std(field) > 0
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        images = jnp.asarray(_numpy_plane(model.plane, 6))
        one = jax.jit(lambda x: model.module.apply(p64, x[None], ln_gain=2.5)[0, 0])
        ref = np.array([one(x) for x in images])                       # image by image
    np.testing.assert_allclose(field, ref, rtol=1e-4, atol=1e-5)
    # ln_gain acts: at 0 every block's LayerNorms output their bias only (zero), so the blocks add nothing
    assert not np.allclose(field, np.asarray(jax.jit(model.apply)(params, rj.grid(6, 2), ln_gain=0.5)))


# as test_unit_scales_reproduce_module_init_bitwise: the same eager executables on both sides, at any level
def test_vit_unit_scales_reproduce_module_init_bitwise():
    model = _tiny_vit(depth=1)
    key = jax.random.key(5)
    ours = model.init(key, weight_scale=1.0, bias_scale=1.0)
    theirs = model.module.init(key, jnp.zeros((1, 8, 8, 1), jnp.float32))
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    p, t = model.init(key, weight_scale=3.0)["params"], theirs["params"]
    qkv = np.asarray(t["block_0"]["attn"]["qkv"]["kernel"])
    np.testing.assert_array_equal(p["block_0"]["attn"]["qkv"]["kernel"], 3.0 * qkv)
    np.testing.assert_array_equal(p["pos_embedding"], t["pos_embedding"])           # kept
    np.testing.assert_array_equal(p["block_0"]["ln_1"]["scale"], t["block_0"]["ln_1"]["scale"])
    # GPT-2's init: kernels std 0.02, residual projections 0.02 / sqrt(24), class token zero
    big = rj.ViT(depth=1, d_model=64, heads=4, plane=rj.Plane("digits")).init(jax.random.key(0))["params"]
    np.testing.assert_allclose(np.std(big["block_0"]["fc"]["kernel"]), 0.02, rtol=0.05)
    np.testing.assert_allclose(np.std(big["block_0"]["proj"]["kernel"]), 0.02 / np.sqrt(24), rtol=0.05)
    assert not np.any(big["cls"])


def _numpy_vit(p, images, activation, residual, layernorm, ln_gain, patch, heads):
    """The ViT of DESIGN.md section 19 written out in float64 numpy from its parameters (a second implementation,
    not the module): patches, class token, positions, pre-LN blocks, final LayerNorm, head; logits (n, classes)."""
    def ln(q, h, gain=1.0):
        if not layernorm:
            return h
        c = h - h.mean(-1, keepdims=True)
        return c / np.sqrt((c * c).mean(-1, keepdims=True) + 1e-5) * (q["scale"] * gain) + q["bias"]

    def dense(q, h):
        return h @ q["kernel"] + q["bias"]

    act = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}[activation]
    n, height, width, c = images.shape
    k = p["patch_embed"]["kernel"]                                          # (patch, patch, c, d)
    cells = images.reshape(n, height // patch, patch, width // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
    h = cells.reshape(n, -1, patch * patch * c) @ k.reshape(-1, k.shape[-1]) + p["patch_embed"]["bias"]
    d = h.shape[-1]
    h = np.concatenate([np.broadcast_to(p["cls"], (n, 1, d)), h], axis=1) + p["pos_embedding"]
    blocks = sorted((name for name in p if name.startswith("block_")), key=lambda name: int(name[6:]))
    for name in blocks:
        x = h
        z = ln(p[name].get("ln_1"), x, ln_gain)
        q, kk, v = np.split(dense(p[name]["attn"]["qkv"], z), 3, axis=-1)
        split = lambda a: a.reshape(n, a.shape[1], heads, d // heads)  # noqa: E731
        scores = np.einsum("nthd,nshd->nhts", split(q), split(kk)) / np.sqrt(d // heads)
        w = np.exp(scores - scores.max(-1, keepdims=True))
        out = np.einsum("nhts,nshd->nthd", w / w.sum(-1, keepdims=True), split(v)).reshape(x.shape)
        a = dense(p[name]["attn"]["proj"], out)
        x = x + a if residual else a
        m = dense(p[name]["proj"], act(dense(p[name]["fc"], ln(p[name].get("ln_2"), x, ln_gain))))
        h = x + m if residual else m
    return dense(p["head"], ln(p.get("ln_f"), h[:, 0]))


@pytest.mark.parametrize("residual,layernorm", [(True, True), (False, True), (True, False), (False, False)])
def test_vit_switches_match_a_numpy_vit(residual, layernorm):
    """``residual`` and ``layernorm`` against the ViT written out in numpy (float64), and what each removes."""
    model = _tiny_vit(residual=residual, layernorm=layernorm, activation="tanh" if layernorm else "relu")
    params = model.init(jax.random.key(4), weight_scale=6.0, bias_scale=0.5)["params"]
    names = {"/".join(str(getattr(k, "key", k)) for k in path)
             for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]}
    assert any("ln_" in name for name in names) == layernorm                 # no LayerNorm left without it
    flat = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    images = _numpy_plane(model.plane, 4)
    params_tree = {"params": params}
    field = np.asarray(jax.jit(model.apply)(params_tree, rj.grid(4, 2), ln_gain=1.5))
    want = _numpy_vit(flat, images, model.module.activation, residual, layernorm, 1.5, model.module.patch,
                      model.module.heads)[:, 0]
    np.testing.assert_allclose(field, want, rtol=2e-4, atol=2e-5)
    other_gain = np.asarray(jax.jit(model.apply)(params_tree, rj.grid(4, 2), ln_gain=0.5))
    assert np.array_equal(field, other_gain) == (not layernorm)             # ln_gain acts through the norms only
    with pytest.raises(rj.ConfigError, match="ViT.residual=1 is not allowed"):
        rj.ViT(residual=1)


@pytest.mark.product_compile
def test_vit_sweep_is_chunk_and_device_invariant():
    model = _tiny_vit(depth=1, d_model=8)
    sweep = rj.Sweep(model=model, axes={"ln_gain": [1.0, 4.0], "weight_scale": [0.5, 8.0], "seed": [0, 1, 2]},
                     resolution=8, measures=("fourier",), keep_values=True, chunk_size=4)
    four = rj.run_sweep(sweep, progress=False)
    one = rj.run_sweep(sweep.replace(chunk_size=3), progress=False, num_devices=1)
    assert four.attrs["devices_used"] == 4 and one.attrs["devices_used"] == 1
    np.testing.assert_array_equal(four["values"].values, one["values"].values)
    np.testing.assert_array_equal(four["fourier"].values, one["fourier"].values)
    net = sample_network(sweep, {"ln_gain": 4.0, "weight_scale": 8.0, "seed": 2})[0]
    np.testing.assert_allclose(np.ravel(net), four["values"].sel(ln_gain=4.0, weight_scale=8.0, seed=2).values.ravel(),
                               rtol=1e-5, atol=1e-6)
    assert rj.Sweep.from_dict(json.loads(sweep.to_json())).model == model


def test_pixel_mlp_is_a_dense_net_on_flattened_pixels():
    model = rj.PixelMLP(depth=2, width=8, activation="relu", prior="normal", plane=rj.Plane("digits"))
    params = model.init(jax.random.key(0), weight_scale=2.0, bias_scale=0.0)
    p = {k: {n: np.asarray(a, np.float64) for n, a in v.items()} for k, v in params["params"].items()}
    h = model.plane.points(4).reshape(16, -1).astype(np.float64)
    for layer in range(2):
        h = np.maximum(h @ p[f"dense_{layer}"]["kernel"] + p[f"dense_{layer}"]["bias"], 0.0)
    ref = (h @ p["head"]["kernel"] + p["head"]["bias"])[:, 0]
    np.testing.assert_allclose(np.asarray(model.apply(params, rj.grid(4, 2))), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.std(p["dense_0"]["kernel"]), 2.0 / 8.0, rtol=0.1)   # a / sqrt(fan_in 64)


class _NoKernels(nn.Module):
    @nn.compact
    def __call__(self, x):
        return x.reshape(x.shape[0], -1)[:, :10] + self.param("bias", nn.initializers.zeros, (10,))


class _Wants784(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(x.reshape(x.shape[0], 784))


@pytest.mark.parametrize("make, fragment", [
    (lambda p: rj.ViT(d_model=10, heads=4, plane=p["mnist"]), "d_model=10"),
    (lambda p: rj.ViT(activation="softplus9", plane=p["mnist"]), "'softplus9'"),
    (lambda p: rj.ViT(patch=3, plane=p["digits"]), "ViT.patch=3"),
    (lambda p: rj.ViT(plane=p["flat"]), "(n, H, W, C)"),
    (lambda p: rj.CNN(plane=p["flat"]), "(n, H, W, C)"),
    (lambda p: rj.FlaxModel(_Wants784(), plane=p["digits"]), "cannot be initialized"),
    (lambda p: rj.FlaxModel(_NoKernels(), plane=p["digits"]), "no weight parameter"),
    (lambda p: rj.PixelMLP(depth=0, plane=p["digits"]), "PixelMLP.depth=0"),
    (lambda p: rj.CNN(plane=rj.Plane("digits", anchor=5000)), "anchor=5000"),
])
def test_bad_models_fail_before_compiling_with_one_line(make, fragment, compile_counter):
    planes = {"mnist": rj.Plane(), "digits": rj.Plane("digits"), "flat": rj.planes.from_array(np.ones((3, 12)))}
    before = compile_counter.count()     # drawing a plane's directions compiles; checking a model must not
    with pytest.raises(rj.ConfigError, match="allowed") as err:
        make(planes)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert compile_counter.count() == before


@pytest.mark.parametrize("make", [lambda p: rj.CNN(depth=3, width=4, n_classes=7, plane=p),
                                  lambda p: rj.ViT(depth=1, d_model=8, heads=2, n_classes=3, plane=p),
                                  lambda p: rj.PixelMLP(depth=2, width=4, n_classes=5, plane=p)],
                         ids=["CNN", "ViT", "PixelMLP"])
@pytest.mark.parametrize("dataset", ["digits", "mnist"])
def test_built_in_modules_state_the_outputs_their_trace_gives(make, dataset):
    """The built-ins are registered with their output count (FlaxModel does not trace them to validate a sweep):
    it is what tracing the module gives, on both image sizes."""
    from redshift_jax.models import flax_model

    model = make(rj.Plane(dataset))
    stated = flax_model._OUTPUTS[type(model.module)](model.module, model.input_shape)
    out = jax.eval_shape(lambda: model.module.init_with_output(jax.random.key(0), model._dummy()))[0]
    assert out.shape == (1, stated) == (1, model.module.n_classes)


def test_notebook_runs_at_smoke_size(tmp_path, run_notebook):
    run_notebook("architectures.py")
    assert (tmp_path / "heatmap_fourier_dct.png").exists() and (tmp_path / "plane_and_field.png").exists()


def test_architectures_figure_and_summary(tmp_path):
    from redshift_jax.studies.architectures import figure_architectures, summary_rows

    sweep = rj.Sweep(model=rj.MLP(width=8, prior="normal"), resolution=8, measures=("fourier_dct", "lz"),
                     keep_values=True, axes={"activation": ["relu", "tanh"], "depth": [1, 2],
                                             "weight_scale": [1.0, float(np.sqrt(2.0)), 4.0], "seed": [0, 1]})
    ds = rj.run_sweep(sweep, progress=False)
    parts = {"mlp": ds, "vit": ds, "cnn_residual": ds}
    rows = {(r["architecture"], r["activation"]): r for r in summary_rows(parts, "fourier_dct")}
    assert rows[("mlp", "relu")]["default_scale"] == pytest.approx(np.sqrt(2.0))    # He
    assert rows[("cnn_residual", "relu")]["default_scale"] == pytest.approx(np.sqrt(2.0))   # a CNN variant
    assert rows[("mlp", "tanh")]["default_scale"] == 1.0 and rows[("vit", "relu")]["default_scale"] == 1.0
    want = ds["fourier_dct"].sel(activation="tanh", weight_scale=4.0).isel(depth=-1).mean().item()
    assert rows[("mlp", "tanh")]["d_max_w_max"] == pytest.approx(want)
    paths = figure_architectures(parts, tmp_path, {})
    assert {p.name for p in paths} >= {"architectures_fourier_dct.png", "architectures_lz.png", "examples.png",
                                       "architectures.md", "architectures.csv"}
    assert "| vit | tanh |" in (tmp_path / "architectures.md").read_text()


def test_cnn_components_sweep_file_varies_only_residual_and_layernorm():
    from redshift_jax.sweep.files import load_sweep_file

    for size in ("full", "laptop", "quick"):
        parts, figure, _ = load_sweep_file(ROOT / "sweeps" / "cnn_components.py", size)
        assert figure == "architectures" and list(parts) == ["cnn", "cnn_residual", "cnn_layernorm",
                                                             "cnn_residual_layernorm", "cnn_biased",
                                                             "cnn_layernorm_biased"]
        modules = {name: sweep.model.module for name, sweep in parts.items()}
        assert [(m.residual, m.layernorm) for m in modules.values()] == [(False, False), (True, False), (False, True),
                                                                         (True, True), (False, False), (False, True)]
        plain = parts["cnn"]
        for name, sweep in parts.items():   # the same grid, plane and everything else; biases where named
            assert list(sweep.axes["bias_scale"]) == ([0.5] if name.endswith("_biased") else [0.0])
            assert {**sweep.axes, "bias_scale": None} == {**plain.axes, "bias_scale": None}
            assert sweep.resolution == plain.resolution
            assert dataclasses.replace(sweep.model.module, residual=False, layernorm=False) == plain.model.module
            assert sweep.model.plane == plain.model.plane


def test_vit_components_sweep_file_varies_only_residual_and_layernorm():
    from redshift_jax.sweep.files import load_sweep_file

    for size in ("full", "laptop", "quick"):
        parts, figure, _ = load_sweep_file(ROOT / "sweeps" / "vit_components.py", size)
        assert figure == "architectures" and list(parts) == ["vit", "vit_no_residual", "vit_no_layernorm",
                                                             "vit_neither"]
        modules = [sweep.model.module for sweep in parts.values()]
        assert [(m.residual, m.layernorm) for m in modules] == [(True, True), (False, True), (True, False),
                                                                (False, False)]
        plain = parts["vit"]
        for sweep in parts.values():   # the same grid, plane, init and everything else
            assert sweep.axes == plain.axes and sweep.resolution == plain.resolution
            assert dataclasses.replace(sweep.model.module, residual=True, layernorm=True) == plain.model.module
            assert sweep.model.plane == plain.model.plane


def test_vit_layernorm_noise_sweep_file_is_vit_components_on_a_plane_without_empty_patches():
    from redshift_jax.sweep.files import load_sweep_file

    for size in ("full", "laptop", "quick"):
        parts, figure, _ = load_sweep_file(ROOT / "sweeps" / "vit_layernorm_noise.py", size)
        mnist = load_sweep_file(ROOT / "sweeps" / "vit_components.py", size)[0]
        assert figure == "architectures" and list(parts) == ["vit", "vit_no_layernorm"]
        for name, sweep in parts.items():   # vit_components' variant, grid and measures; only the plane differs
            twin = mnist[name]
            assert sweep.model.module == twin.model.module and sweep.axes == twin.axes
            assert sweep.measures == twin.measures and sweep.resolution == twin.resolution
            plane = sweep.model.plane
            assert plane.dataset.startswith("array:") and plane.input_shape == (28, 28, 1)
            assert dataclasses.replace(plane, dataset="mnist") == twin.model.plane
            patch = sweep.model.module.patch
            x0 = dataset_array(plane.dataset)[plane.anchor, :, :, 0]
            tiles = x0.reshape(28 // patch, patch, 28 // patch, patch)
            assert np.all(np.abs(tiles).max(axis=(1, 3)) > 0)   # no empty patch at the anchor


def test_vit_ln_gain_sweep_file_varies_only_the_gain():
    from redshift_jax.sweep.files import load_sweep_file

    for size in ("full", "laptop", "quick"):
        parts, figure, _ = load_sweep_file(ROOT / "sweeps" / "vit_ln_gain.py", size)
        assert figure == "architectures" and all(name.startswith("vit_gain") for name in parts)
        first = next(iter(parts.values()))
        gains = [list(sweep.axes["ln_gain"]) for sweep in parts.values()]
        assert all(len(g) == 1 for g in gains) and len({g[0] for g in gains}) == len(parts) > 1
        for sweep in parts.values():   # the same model, grid and plane; only the gain differs
            assert sweep.model == first.model and sweep.resolution == first.resolution
            assert {**sweep.axes, "ln_gain": None} == {**first.axes, "ln_gain": None}
