"""The sweep engine: labelled results, determinism across chunking and devices, resume after SIGKILL,
no recompilation, validation before compiling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest
import xarray as xr

import redshift_jax as rj
from redshift_jax.sweep import engine

SMALL = rj.Sweep(
    model=rj.MLP(width=16),
    axes={"activation": ["relu", "tanh"], "depth": [1, 3, 2], "weight_scale": [1.0, 4.0, 9.0], "seed": [0, 1, 5, 7]},
    resolution=16, measures=("fourier", "chebyshev", "lz"), keep_values=True)


def _equal(a: xr.Dataset, b: xr.Dataset) -> None:
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


@pytest.fixture(scope="module")
def small_result():
    return rj.run_sweep(SMALL, progress=False)


def test_dataset_layout(small_result):
    ds = small_result
    assert ds[["fourier", "chebyshev", "lz", "finite"]].to_array().dims[1:] == tuple(SMALL.axes)
    assert ds["values"].dims == tuple(SMALL.axes) + ("y", "x")
    assert list(ds.activation.values) == ["relu", "tanh"]
    assert list(ds.depth.values) == [1, 3, 2]
    for name in ("fourier", "chebyshev", "lz"):
        assert ds[name].dtype == np.float32
    assert ds.finite.dtype == bool and bool(ds.finite.all())
    spec = json.loads(ds.attrs["spec"])
    assert spec["axes"]["seed"] == [0, 1, 5, 7]
    for key in ("package", "jax_version", "jaxlib_version", "backend", "device_count", "start_time", "end_time"):
        assert key in ds.attrs


@pytest.mark.product_compile
def test_values_match_a_standalone_network(small_result):
    """A sweep entry is the network MLP(...).init(fold_in(key(base_seed), seed)) evaluated on the grid."""
    x = rj.grid(16, 2)
    for activation, depth, scale, seed in [("tanh", 3, 9.0, 5), ("relu", 2, 1.0, 7), ("tanh", 1, 4.0, 0)]:
        spec = rj.MLP(activation=activation, depth=depth, width=16)
        params = spec.init(jax.random.fold_in(jax.random.key(0), seed), scale, 1.0)
        y = jax.jit(spec.apply)(params, x).reshape(16, 16)
        got = small_result["values"].sel(activation=activation, depth=depth, weight_scale=scale, seed=seed)
        np.testing.assert_array_equal(got.values, np.asarray(y))
        f = rj.measures.fourier(y)
        np.testing.assert_allclose(
            small_result["fourier"].sel(activation=activation, depth=depth, weight_scale=scale, seed=seed),
            f, rtol=1e-5, atol=1e-7)


@pytest.mark.product_compile
@pytest.mark.parametrize("chunk_size", [1, 5, 13])
def test_bit_identical_across_chunk_sizes(small_result, chunk_size):
    _equal(small_result, rj.run_sweep(SMALL, progress=False, chunk_size=chunk_size))


@pytest.mark.product_compile
def test_bit_identical_one_vs_four_devices(small_result):
    assert jax.local_device_count() == 4, "conftest sets 4 CPU devices"
    # small_result is the four-device run (every device by default; other chunkings on four devices:
    # test_bit_identical_across_chunk_sizes), so one more compile, not two
    one = rj.run_sweep(SMALL, progress=False, num_devices=1, chunk_size=6)
    assert one.attrs["devices_used"] == 1 and small_result.attrs["devices_used"] == 4
    _equal(one, small_result)


@pytest.mark.product_compile
def test_seed_independent_of_other_axes(small_result):
    """The same (activation, depth, scale, seed) gives the same function in a different sweep."""
    other = rj.Sweep(model=rj.MLP(width=16, activation="tanh"),
                     axes={"seed": [5, 2], "depth": [3], "weight_scale": [9.0, 0.5]},
                     resolution=16, measures=("fourier", "chebyshev", "lz"), keep_values=True)
    ds = rj.run_sweep(other, progress=False)
    a = ds.sel(seed=5, depth=3, weight_scale=9.0)
    b = small_result.sel(activation="tanh", seed=5, depth=3, weight_scale=9.0)
    for name in ("values", "fourier", "chebyshev", "lz"):
        np.testing.assert_array_equal(a[name].values, b[name].values)


# A small sweep whose program three tests share (the run's compilation cache holds it once): the shared trunk of
# test_independent_depths_differ_from_shared_trunk, and (numeric axes are traced, so they do not change the program)
# test_no_recompile_for_new_numeric_values and test_resume_refuses_a_different_sweep.
TRUNK = dict(model=rj.MLP(width=8, activation="tanh"), axes={"depth": [1, 2], "seed": [0, 1]}, resolution=8,
             measures=("fourier",), keep_values=True)


@pytest.mark.product_compile
def test_independent_depths_differ_from_shared_trunk():
    base = TRUNK
    shared = rj.run_sweep(rj.Sweep(**base), progress=False)
    indep = rj.run_sweep(rj.Sweep(**base, independent_depths=True), progress=False)
    assert not np.array_equal(shared["values"].values, indep["values"].values)
    # Each independent depth is a standalone network with key fold_in(fold_in(base, seed), depth).
    spec = rj.MLP(width=8, activation="tanh", depth=2)
    params = spec.init(jax.random.fold_in(jax.random.fold_in(jax.random.key(0), 1), 2))
    y = jax.jit(spec.apply)(params, rj.grid(8, 2)).reshape(8, 8)
    np.testing.assert_array_equal(indep["values"].sel(depth=2, seed=1).values, np.asarray(y))


# compiles as users do: its program (chunks of 4 networks) is TRUNK's, which the run's compilation cache holds
@pytest.mark.product_compile
def test_no_recompile_for_new_numeric_values():
    sweep = rj.Sweep(**dict(TRUNK, axes={"depth": [1, 2], "weight_scale": [1.0, 2.0], "prefactor": [1.0, 3.0],
                                         "seed": [0, 1]}))
    rj.run_sweep(sweep, progress=False, chunk_size=4)
    before = engine.trace_count()
    for values in ([0.5, 7.0], [3.0, 11.0]):
        changed = sweep.with_axis("weight_scale", values).with_axis("bias_scale", [0.1, 2.0][:1])
        changed = changed.with_axis("prefactor", [0.25, 5.0]).with_axis("seed", [9, 4])
        rj.run_sweep(changed, progress=False, chunk_size=4)
    assert engine.trace_count() == before


def test_measures_are_objects_serialized_only_by_to_dict_and_a_run_checks_nothing_again(monkeypatch):
    """``Sweep.measures`` holds ``Measure`` objects (hashable; list arguments frozen), ``to_dict`` writes the JSON
    form every stored spec has (a measure's keys sorted, its label among them), and a sweep is checked once, when
    it is made: ``run_sweep`` (with or without a chunk override) does not check it again."""
    volume = ("volume", {"n_directions": 2, "label": "v", "epsilons": [1e-3, 1e-2]})
    sweep = rj.Sweep(model=rj.MLP(width=4), axes={"seed": [0, 1]}, resolution=4, measures=("lz", volume))
    assert all(isinstance(m, rj.measures.Measure) for m in sweep.measures) and len({*sweep.measures}) == 2
    assert sweep.measures[1].kwargs["epsilons"] == [1e-3, 1e-2]   # a measure still receives lists
    assert sweep.to_dict()["measures"] == ["lz", ["volume", {"epsilons": [1e-3, 1e-2], "label": "v",
                                                             "n_directions": 2}]]
    assert list(sweep.to_dict()["measures"][1][1]) == ["epsilons", "label", "n_directions"]
    assert rj.Sweep.from_dict(json.loads(sweep.to_json())) == sweep == sweep.replace(resolution=4)
    small = rj.Sweep(model=rj.MLP(width=4), axes={"seed": [0, 1]}, resolution=8, measures=("lz",))
    calls = []
    monkeypatch.setattr(rj.Sweep, "validate", lambda self: calls.append(self))
    rj.run_sweep(small, progress=False)
    rj.run_sweep(small, progress=False, chunk_size=1)
    assert calls == []
    with pytest.raises(rj.ConfigError, match="chunk_size"):
        small.with_chunk_size(0)


BAD = [
    (dict(axes={"activation": ["relu", "swoosh"]}), ["activation", "swoosh", "relu"]),
    (dict(measures=("fourier", "entropy")), ["entropy", "fourier"]),
    (dict(axes={"width": [0]}), ["width", "0", ">= 1"]),
    (dict(axes={"depth": [2, -1]}), ["depth", "-1", ">= 1"]),
    (dict(resolution=0), ["resolution", "0", ">= 2"]),
    (dict(axes={"weight_scale": [1.0, float("nan")]}), ["weight_scale", "nan", ">= 0"]),
    (dict(axes={"bias_scale": [-1.0]}), ["bias_scale", "-1", ">= 0"]),
    (dict(axes={"seed": []}), ["seed", "empty"]),
    (dict(axes={"colour": [1, 2]}), ["colour", "MLP", "activation"]),
    (dict(axes={"prefactor": [float("inf")]}), ["prefactor", "inf", "finite"]),
]


@pytest.mark.parametrize("changes,words", BAD)
def test_bad_config_errors_before_compiling(changes, words):
    before = engine.trace_count()
    kwargs = dict(model=rj.MLP(width=8), axes={"seed": [0]}, resolution=8, measures=("fourier",))
    kwargs.update(changes)
    with pytest.raises(rj.ConfigError) as err:
        rj.run_sweep(rj.Sweep(**kwargs), progress=False)
    message = str(err.value)
    for word in words:
        assert word in message, (word, message)
    assert engine.trace_count() == before


def test_unbiased_rejects_axes_it_does_not_have():
    with pytest.raises(rj.ConfigError, match="prefactor.*not an axis of Unbiased"):
        rj.Sweep(model=rj.Unbiased(resolution=16), axes={"prefactor": [1.0]}, resolution=16)
    with pytest.raises(rj.ConfigError, match="resolution"):
        rj.Sweep(model=rj.Unbiased(resolution=16), axes={"seed": [0]}, resolution=32)


def test_polynomial_degree_above_resolution_is_rejected():
    with pytest.raises(rj.ConfigError):
        rj.measures.validate_degree(40, 32)


RESUME_SCRIPT = textwrap.dedent("""
    import sys, time
    import redshift_jax as rj
    from redshift_jax.sweep import engine
    sweep = rj.Sweep(**SPEC)
    # Slow each chunk down so the parent can kill the run between chunks.
    original = engine.RunStore.write_region
    def slow_write(self, *args, **kwargs):
        original(self, *args, **kwargs)
        time.sleep(0.4)
    engine.RunStore.write_region = slow_write
    rj.run_sweep(sweep, out=sys.argv[1], progress=False, chunk_size=4)
""")


@pytest.mark.product_compile
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    spec = dict(model=rj.MLP(width=8, activation="sin"),
                axes={"activation": ["sin", "tanh"], "weight_scale": [1.0, 3.0, 6.0, 9.0], "seed": [0, 1, 2, 3]},
                resolution=8, measures=("fourier", "lz"))
    out = tmp_path / "run.zarr"
    script = tmp_path / "run.py"
    script.write_text("import redshift_jax as rj\nSPEC = dict(model=rj.MLP(width=8, activation='sin'), "
                      "axes={'activation': ['sin', 'tanh'], 'weight_scale': [1.0, 3.0, 6.0, 9.0], "
                      "'seed': [0, 1, 2, 3]}, resolution=8, measures=('fourier', 'lz'))\n" + RESUME_SCRIPT)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, str(script), str(out)], env=env)
    done = out.with_name(out.name + ".partial") / "done"
    # wait for 3 chunks (a timeout on the wait, not a duration check: 120 s is far beyond a loaded machine's
    # ~10 s); the child ending first, or the timeout, fails here with what happened
    waited = 0.0
    while not done.exists() or len(list(done.glob("*.json"))) < 3:
        if proc.poll() is not None or waited > 120:
            proc.kill()
            proc.wait()
            pytest.fail(f"the child wrote {len(list(done.glob('*.json')))} of 8 chunks before it "
                        + (f"exited with {proc.returncode}" if waited <= 120 else "the 120 s wait ran out"))
        time.sleep(0.05)
        waited += 0.05
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(done.glob("*.json")))
    assert 3 <= finished < 8, finished  # killed mid-run: some chunks done, not all
    assert not out.exists(), "the final store must not appear before the run finishes"
    sweep = rj.Sweep(**spec)
    resumed = rj.run_sweep(sweep, out=out, resume=True, progress=False, chunk_size=4)
    assert out.exists() and not out.with_name(out.name + ".partial").exists()
    before = engine.trace_count()
    uninterrupted = rj.run_sweep(sweep, progress=False, chunk_size=4)
    assert engine.trace_count() == before, "the same sweep in memory reuses the resumed run's compile"
    _equal(resumed, uninterrupted)
    _equal(xr.open_zarr(out).load(), uninterrupted)


@pytest.mark.product_compile
def test_resume_refuses_a_different_sweep(tmp_path):
    out = tmp_path / "a.zarr"
    sweep = rj.Sweep(**TRUNK)  # its program is in the run's compilation cache
    rj.run_sweep(sweep, out=out, progress=False)
    again = rj.run_sweep(sweep, out=out, resume=True, progress=False)  # finished: just loaded
    _equal(again, xr.open_zarr(out).load())
    with pytest.raises(rj.StoreError, match="another run"):
        rj.run_sweep(sweep.with_axis("seed", [0, 2]), out=out, resume=True, progress=False)
