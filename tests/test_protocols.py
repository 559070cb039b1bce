"""The model and measure protocols (DESIGN.md section 11): the engine runs a model it has never heard of.

A toy model written here in a few lines (a random plane wave, not an MLP) goes through ``run_sweep`` with a
``values`` measure and a ``network`` measure that reads its parameters; its numeric axis is its own
(``frequency``), unknown to the engine. The expectations are computed independently with numpy.
"""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import redshift_jax as rj
from redshift_jax.measures import Measure, register_measure
from redshift_jax.models import FIELD, NumericAxis
from redshift_jax.sweep import engine, flows


@dataclasses.dataclass(frozen=True)
class PlaneWave:
    """f(x) = amplitude * cos(frequency * (u . x) + phase), u a random unit direction."""

    in_dim: int = 2
    squash: bool = False  # structural: one compiled variant per value

    structural_axes = ("squash",)
    numeric_axes = {"amplitude": NumericAxis(1.0, minimum=0.0, stage="init"),
                    "frequency": NumericAxis(1.0, stage="apply")}
    inputs = "grid"
    output = FIELD

    def init(self, key, amplitude=1.0):
        direction = jax.random.normal(jax.random.fold_in(key, 0), (self.in_dim,))
        phase = jax.random.uniform(jax.random.fold_in(key, 1), (), minval=-jnp.pi, maxval=jnp.pi)
        return {"u": direction / jnp.linalg.norm(direction), "phase": phase, "amplitude": jnp.float32(amplitude)}

    def apply(self, params, x, frequency=1.0, precision=None):
        y = params["amplitude"] * jnp.cos(frequency * (x @ params["u"]) + params["phase"])
        return jnp.tanh(y) if self.squash else y

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def _amplitude_norm(model, params, inputs, numeric, power=2.0):
    """A network measure: |amplitude|^power, read from the parameters (not from the image)."""
    del model, inputs, numeric
    return jnp.abs(params["amplitude"]) ** power


register_measure("amplitude_norm", "network", _amplitude_norm, {"power": 2.0})


def _numpy_wave(key_seed, amplitude, frequency, squash, resolution):
    key = jax.random.fold_in(jax.random.key(0), key_seed)
    params = jax.tree.map(np.asarray, PlaneWave().init(key, amplitude))
    x = np.asarray(rj.grid(resolution, 2), np.float64)
    y = params["amplitude"] * np.cos(frequency * (x @ params["u"].astype(np.float64)) + params["phase"])
    return (np.tanh(y) if squash else y).reshape(resolution, resolution)


def test_toy_model_runs_through_the_engine_with_both_kinds_of_measure():
    sweep = rj.Sweep(model=PlaneWave(), resolution=16,
                     axes={"squash": [False, True], "frequency": [1.0, 9.0], "amplitude": [0.5, 2.0],
                           "seed": [0, 1, 2]},
                     measures=("fourier", ("amplitude_norm", {"power": 3.0, "label": "cube"})), keep_values=True)
    ds = rj.run_sweep(sweep, progress=False, num_devices=2)
    assert ds.fourier.dims == ("squash", "frequency", "amplitude", "seed")
    assert set(ds.data_vars) == {"fourier", "cube", "finite", "values"}
    for squash in (False, True):
        for frequency in (1.0, 9.0):
            for amplitude in (0.5, 2.0):
                for seed in (0, 1, 2):
                    cell = dict(squash=squash, frequency=frequency, amplitude=amplitude, seed=seed)
                    want = _numpy_wave(seed, amplitude, frequency, squash, 16)
                    np.testing.assert_allclose(ds["values"].sel(cell).values, want, atol=2e-5)
                    np.testing.assert_allclose(float(ds.cube.sel(cell)), amplitude ** 3, rtol=1e-6)
    # a higher frequency is a more complex function
    assert float(ds.fourier.sel(frequency=9.0).mean()) > float(ds.fourier.sel(frequency=1.0).mean())
    # the measure's arguments are part of the spec and of the resume fingerprint
    spec = json.loads(ds.attrs["sweep"])
    assert spec["measures"] == ["fourier", ["amplitude_norm", {"power": 3.0, "label": "cube"}]]
    other = sweep.replace(measures=("fourier", ("amplitude_norm", {"power": 2.0, "label": "cube"})))
    assert sweep.fingerprint() != other.fingerprint()


def test_toy_model_new_numeric_values_do_not_recompile():
    sweep = rj.Sweep(model=PlaneWave(), resolution=8, axes={"frequency": [1.0, 2.0], "seed": [0, 1]},
                     measures=("fourier", "amplitude_norm"))
    rj.run_sweep(sweep, progress=False, chunk_size=4)
    before = engine.trace_count()
    rj.run_sweep(sweep.with_axis("frequency", [5.0, 6.0]).with_axis("amplitude", [3.0]), progress=False,
                 chunk_size=4)
    assert engine.trace_count() == before


def test_toy_model_axes_and_measures_are_checked_before_compiling():
    before = engine.trace_count()
    with pytest.raises(rj.ConfigError, match="'depth', which is not an axis of PlaneWave; allowed: squash, "
                                             "amplitude, frequency, seed"):
        rj.Sweep(model=PlaneWave(), axes={"depth": [1, 2]}, resolution=8, measures=("fourier",))
    with pytest.raises(rj.ConfigError, match="amplitude"):
        rj.Sweep(model=PlaneWave(), axes={"amplitude": [-1.0]}, resolution=8, measures=("fourier",))
    with pytest.raises(rj.ConfigError, match="has no argument 'epsilon'; allowed: power"):
        rj.Sweep(model=PlaneWave(), resolution=8, measures=(("amplitude_norm", {"epsilon": 1}),))
    with pytest.raises(rj.ConfigError, match="listed twice"):
        rj.Sweep(model=PlaneWave(), resolution=8, measures=("lz", ("lz", {"levels": 4})))
    with pytest.raises(rj.ConfigError, match="is not allowed; allowed: a model dataclass"):
        rj.Sweep(model=object(), resolution=8)
    assert engine.trace_count() == before


def test_a_values_measure_on_a_token_model_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Tokens(PlaneWave):
        output = "tokens"

    with pytest.raises(rj.ConfigError, match="reads values, but Tokens outputs tokens"):
        rj.Sweep(model=Tokens(), resolution=8, measures=("fourier",))


@pytest.mark.product_compile
def test_measure_arguments_change_the_numbers_and_keep_defaults():
    img = np.asarray(_numpy_wave(3, 1.0, 7.0, False, 32), np.float32)
    assert float(Measure("lz")(img)) == float(rj.measures.lz(img))
    four = Measure("lz", (("levels", 4),))
    assert float(four(img)) == float(rj.measures.lz(img, levels=4))
    sweep = rj.Sweep(model=rj.MLP(width=8), axes={"seed": [0, 1]}, resolution=32,
                     measures=("lz", ("lz", {"levels": 4, "label": "lz4"})))
    ds = rj.run_sweep(sweep, progress=False)
    assert not np.array_equal(ds.lz.values, ds.lz4.values)


def _weight_count(model, params, inputs, numeric):
    del model, inputs, numeric
    return jnp.float32(sum(leaf.size for leaf in jax.tree.leaves(params)))


register_measure("weight_count", "network", _weight_count)


@pytest.mark.product_compile
def test_network_measures_see_each_depth_of_a_shared_trunk():
    sweep = rj.Sweep(model=rj.MLP(width=8), axes={"depth": [1, 3, 4], "seed": [0, 1]}, resolution=8,
                     measures=("weight_count", "fourier"))
    ds = rj.run_sweep(sweep, progress=False)
    for depth in (1, 3, 4):
        want = 2 * 8 + 8 + (depth - 1) * (8 * 8 + 8) + 8 + 1
        assert np.all(ds.weight_count.sel(depth=depth).values == want)
    independent = rj.run_sweep(sweep.replace(independent_depths=True), progress=False)
    np.testing.assert_array_equal(independent.weight_count.values, ds.weight_count.values)


def test_importing_plots_keeps_the_sessions_backend():
    import subprocess
    import sys

    code = ("import matplotlib; import redshift_jax.studies.nrs, redshift_jax.train.plots; "
            "print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "MPLBACKEND": "svg"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "svg"


def _python(code: str, **env):
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True,
                          timeout=120, env={**clean, "JAX_PLATFORMS": "cpu", **env})


def test_python_api_uses_every_core_by_default():
    import os

    cores = len(os.sched_getaffinity(0))
    out = _python("import redshift_jax, jax; print(jax.local_device_count())")
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == cores
    late = _python("import jax; jax.numpy.zeros(1).block_until_ready(); import redshift_jax; "
                   "print(jax.local_device_count())")
    assert late.returncode == 0 and int(late.stdout) == 1
    if cores > 1:
        assert "imported after JAX started" in late.stderr and f"device_count={cores}" in late.stderr


def test_compile_keys_are_derived_from_the_spec():
    """Every field that shapes the compiled code is in the key, without listing fields by hand: a new field
    is in it by default; values of traced axes are not."""
    from redshift_jax.train import ColoredMNIST, ModularSum

    base = rj.Sweep(model=rj.MLP(width=8), axes={"depth": [1, 2], "seed": [0, 1]}, resolution=8,
                    measures=("fourier",))
    assert base.with_axis("seed", [5]).compile_key() == base.compile_key()
    assert base.with_axis("weight_scale", [2.0]).compile_key() == base.compile_key()
    for changed in (base.replace(resolution=16), base.replace(precision=None), base.replace(lo=-2.0),
                    base.with_axis("depth", [1, 3]), base.replace(measures=("fourier", "lz")),
                    base.replace(keep_values=True), base.replace(independent_depths=True)):
        assert changed.compile_key() != base.compile_key()
    exp = ModularSum(activations=("relu",), moduli=(4,), prefactors=(1.0,), seeds=(0,), steps=2)
    assert exp.replace(prefactors=(2.0, 4.0), seeds=(3,), moduli=(7,)).compile_key("relu") == \
        exp.compile_key("relu")
    for field, value in (("learning_rate", 0.1), ("width", 16), ("train_fraction", 0.5), ("prior", "normal")):
        assert exp.replace(**{field: value}).compile_key("relu") != exp.compile_key("relu"), field
    assert exp.compile_key("relu") != exp.compile_key("sin")
    cm = ColoredMNIST(activations=("relu",), steps=2)
    assert cm.replace(batch_size=128).compile_key("relu") != cm.compile_key("relu")


# ---- a model whose seeds share one setup step (section 11: e.g. a GP's Cholesky factor) ------------------------

SETUP_CALLS: list = []


@dataclasses.dataclass(frozen=True)
class SmoothField:
    """A Gaussian field on the grid with a squared-exponential kernel: ``setup`` factors the grid kernel once per
    structural variant and numeric point (float64, numpy); a seed is ``L z``, z standard normal from its key."""

    in_dim: int = 2
    bumpy: bool = False

    structural_axes = ("bumpy",)
    numeric_axes = {"length": NumericAxis(0.5, minimum=0.0, stage="apply"),
                    "amplitude": NumericAxis(1.0, minimum=0.0, stage="apply")}
    inputs = "grid"
    output = FIELD

    def setup(self, points, length=0.5, amplitude=1.0):
        SETUP_CALLS.append((self.bumpy, length, amplitude))
        d2 = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
        k = amplitude ** 2 * np.exp(-d2 / (2 * length ** 2)) + 1e-6 * np.eye(len(points))
        return {"L": np.linalg.cholesky(k).astype(np.float32)}

    def init(self, key):
        return {"key": key}  # z is drawn in apply, where the number of grid points is known

    def apply(self, params, x, state=None, length=0.5, amplitude=1.0, precision=None):
        z = jax.random.normal(params["key"], (x.shape[0],), jnp.float32)
        y = jnp.dot(state["L"], z, precision="highest")
        return jnp.sin(3 * y) if self.bumpy else y

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@pytest.mark.product_compile
def test_setup_model_computes_its_state_once_per_variant_and_numeric_point():
    SETUP_CALLS.clear()
    sweep = rj.Sweep(model=SmoothField(), resolution=8, measures=("fourier",), keep_values=True,
                     axes={"bumpy": [False, True], "length": [0.2, 1.0], "seed": list(range(5))})
    assert sweep.variant_dims == ("bumpy", "length") and sweep.network_dims == ("seed",)
    ds = rj.run_sweep(sweep, progress=False, num_devices=2, chunk_size=2)
    assert sorted(SETUP_CALLS) == sorted({(b, length, 1.0) for b in (False, True) for length in (0.2, 1.0)})
    points = np.asarray(rj.grid(8, 2), np.float64)
    for bumpy in (False, True):
        for length in (0.2, 1.0):
            L = SmoothField().setup(points, length=length)["L"].astype(np.float64)
            for seed in (0, 4):
                z = np.asarray(jax.random.normal(jax.random.fold_in(jax.random.key(0), seed), (64,)), np.float64)
                want = (np.sin(3 * L @ z) if bumpy else L @ z).reshape(8, 8)
                got = ds["values"].sel(bumpy=bumpy, length=length, seed=seed).values
                np.testing.assert_allclose(got, want, atol=1e-4)
                image, _ = engine.sample_network(sweep, dict(bumpy=bumpy, length=length, seed=seed))
                assert np.array_equal(image, got)  # chunked and sharded = alone, bit for bit
    # a longer length scale is a smoother field
    assert float(ds.fourier.sel(length=1.0).mean()) < float(ds.fourier.sel(length=0.2).mean())


def _mean_value(values):
    return jnp.mean(values)


def test_a_measure_revision_is_in_the_fingerprint_and_the_record_digest(tmp_path):
    """register_measure(revision=...): the revision enters the fingerprint and the record's digest of a sweep that
    uses the measure (not of one that does not), and a finished result of another revision is neither reused nor
    resumed."""
    from redshift_jax.errors import ConfigError, StoreError
    from redshift_jax.studies.record import _spec_digest

    register_measure("mean_value_rev", "values", _mean_value, revision="r1")
    sweep = rj.Sweep(model=rj.MLP(width=4, depth=1), axes={"seed": [0]}, resolution=4, measures=("mean_value_rev",))
    plain = sweep.replace(measures=("fourier",))
    assert sweep.fingerprint()["revisions"] == {"mean_value_rev": "r1"}
    assert "revisions" not in plain.fingerprint()
    assert _spec_digest(plain) == _spec_digest(plain)
    first = _spec_digest(sweep)
    out = tmp_path / "r.zarr"
    rj.run_sweep(sweep, out=out, progress=False)
    register_measure("mean_value_rev", "values", _mean_value, revision="r2")
    assert _spec_digest(sweep) != first
    with pytest.raises(StoreError, match="revisions"):
        rj.run_sweep(sweep, out=out, resume=True, progress=False)
    with pytest.raises(ConfigError, match="revision=3"):
        register_measure("mean_value_rev", "values", _mean_value, revision=3)


# ------------------------------------------------------------------------------------------------------------
# flows: a new kind of input is one new flow; models declare their cost


@dataclasses.dataclass(frozen=True)
class Threshold:
    """A random linear threshold unit on Boolean inputs: f(x) = tanh(scale * w . x), x in {-1, 1}^in_dim."""

    in_dim: int = 6

    structural_axes = ()
    numeric_axes = {"scale": NumericAxis(1.0, minimum=0.0, stage="apply")}
    inputs = "boolean"
    output = FIELD

    def init(self, key):
        return {"w": jax.random.normal(key, (self.in_dim,))}

    def apply(self, params, x, scale=1.0, precision=None):
        return jnp.tanh(scale * (x @ params["w"]))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


class BooleanFlow(flows.FieldFlow):
    """Every point of {-1, 1}^in_dim, read by the measures as one curve of 2^in_dim values."""

    name = "boolean"

    @staticmethod
    def accepts(model) -> bool:
        return getattr(model, "inputs", None) == "boolean"

    def check_inputs(self, sweep) -> None:
        if sweep.resolution != 2 ** sweep.model.in_dim:
            raise rj.ConfigError(f"Sweep.resolution={sweep.resolution} is not allowed for Boolean inputs; allowed: "
                                 f"2 ** in_dim = {2 ** sweep.model.in_dim}")

    def inputs(self, sweep, model):
        bits = (np.arange(2 ** model.in_dim)[:, None] >> np.arange(model.in_dim)) & 1
        return (2.0 * bits - 1.0).astype(np.float32)

    def value_layout(self, sweep):
        return (2 ** sweep.model.in_dim,), np.float32, ("x",)


def test_a_new_kind_of_input_is_one_new_flow(monkeypatch):
    monkeypatch.setattr(flows, "FLOWS", list(flows.FLOWS))
    flows.register_flow(BooleanFlow())
    sweep = rj.Sweep(model=Threshold(), axes={"scale": [0.5, 4.0], "seed": [0, 1, 2]}, resolution=64,
                     measures=("lz", "fourier"), keep_values=True)
    assert sweep.flow.name == "boolean" and sweep.network_dims == ("scale", "seed")
    ds = rj.run_sweep(sweep, progress=False)
    assert ds["values"].dims == ("scale", "seed", "x") and ds["values"].shape == (2, 3, 64)
    x = BooleanFlow().inputs(sweep, sweep.model)
    for scale in (0.5, 4.0):
        for seed in (0, 2):
            params = Threshold().init(jax.random.fold_in(jax.random.key(0), seed))
            want = np.asarray(jax.jit(Threshold().apply)(params, x, np.float32(scale)))
            np.testing.assert_allclose(ds["values"].sel(scale=scale, seed=seed).values, want, rtol=1e-6, atol=1e-7)
            assert float(ds.lz.sel(scale=scale, seed=seed)) == float(rj.measures.MEASURES["lz"](want))
    with pytest.raises(rj.ConfigError, match="2 \\*\\* in_dim = 64"):
        sweep.replace(resolution=32)


def test_the_size_guard_reads_each_models_declared_cost():
    from redshift_jax.sweep.plan import _flops

    mlp = rj.Sweep(model=rj.MLP(width=32), axes={"depth": [1, 3], "seed": [0, 1]}, resolution=16,
                   measures=("fourier", "lz"))
    points, depth = 256, 3   # the guard's formula before models declared their cost; one trunk of depth 3
    old = 2.0 * points * (2 * 32 + (depth - 1) * 32 * 32 + 32) + 200.0 * points * (depth * 32 / 64 + 2)
    assert _flops(mlp) == pytest.approx(old * 2, rel=1e-12)
    cnn = rj.CNN(depth=2, width=8, plane=rj.Plane("digits"))
    per_point = cnn.flops(1)
    assert 9 * 8 * 8 * 64 < per_point < 10 * 9 * 8 * 8 * 64   # about its 8 -> 8 channel conv on 8 x 8 pixels
    sweep = rj.Sweep(model=cnn, axes={"seed": [0, 1, 2]}, resolution=8, measures=("lz",))
    assert _flops(sweep) == pytest.approx(3 * 64 * (per_point + 200.0), rel=1e-9)
    wave = rj.Sweep(model=PlaneWave(), axes={"seed": [0]}, resolution=8, measures=("lz",))  # declares nothing
    assert _flops(wave) == pytest.approx(2.0 * 64 * (2 * 64 + 64) + 200.0 * 64 * (64 / 64 + 1))
