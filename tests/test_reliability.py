"""The reliability contract (DESIGN.md section 12): nothing lost, nothing silently wrong.

Each numbered case of the issue that found the problems has a test here (cases 5, 8: measures tests; case 11:
training tests), then randomized single faults: whatever one fault hits (a SIGKILL at a random moment, a
chunk file deleted, truncated or altered, a marker or meta file deleted or corrupted, a full disk during a
chunk or the final write), a later resume gives the uninterrupted result bitwise, or stops with a one-line
error that says what to do; never a wrong number, never a deleted file that was not ours.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import redshift_jax as rj
from redshift_jax import cli
from redshift_jax.store import RunStore, load_dataset
from redshift_jax.sweep import engine

SPEC = dict(model=rj.MLP(width=8), axes={"activation": ["relu", "tanh"], "weight_scale": [1.0, 4.0],
                                         "seed": [0, 1, 2, 3, 4]}, resolution=8, measures=("fourier", "lz"))
SWEEP = rj.Sweep(**SPEC)
CHUNK = 4  # 10 networks per variant: 3 chunks of 4 (the last one padded) x 2 activations = 6 units


@pytest.fixture(scope="module")
def reference():
    return rj.run_sweep(SWEEP, progress=False, chunk_size=CHUNK)


def _equal(a, b):
    assert sorted(a.data_vars) == sorted(b.data_vars)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    for name in a.coords:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def _run(out, **kwargs):
    return rj.run_sweep(SWEEP, out=out, progress=False, chunk_size=CHUNK, **kwargs)


def _partial(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def _leave_partial(out, monkeypatch, after: int | None = None):
    """Run into ``out`` and stop it like Ctrl-C: after ``after`` chunks, or (None) just before the final write."""
    if after is None:
        monkeypatch.setattr(RunStore, "finish", lambda self, ds: (_ for _ in ()).throw(KeyboardInterrupt()))
    else:
        real = RunStore.write_region
        count = {"n": 0}

        def write(self, *args, **kwargs):
            if count["n"] >= after:
                raise KeyboardInterrupt
            count["n"] += 1
            return real(self, *args, **kwargs)

        monkeypatch.setattr(RunStore, "write_region", write)
    with pytest.raises(KeyboardInterrupt):
        _run(out)
    monkeypatch.undo()
    assert not out.exists() and _partial(out).is_dir()


def _chunk_files(out: Path) -> list[Path]:
    arrays = _partial(out) / "arrays"
    return sorted(p for p in arrays.rglob("*") if p.is_file() and not p.name.startswith("."))


def _one_line(err) -> str:
    text = str(err.value if hasattr(err, "value") else err)
    assert "\n" not in text.strip(), text
    return text


def _cli(argv, capsys):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -------------------------------------------------------------------------------------------------------------
# Case 1: never delete or replace what is not a finished result of the same spec

def test_existing_folder_with_other_files_is_refused_and_kept(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(rj.StoreError, match="not a redshift-jax result") as err:
        _run(out)
    _one_line(err)
    assert (out / "notes.txt").read_text() == "mine" and sorted(os.listdir(tmp_path)) == ["results"]
    with pytest.raises(rj.StoreError):  # not even --overwrite replaces what is not ours
        _run(out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"


def test_existing_file_is_refused_and_kept(tmp_path):
    out = tmp_path / "results.zarr"
    out.write_text("a file")
    with pytest.raises(rj.StoreError, match="is a file"):
        _run(out)
    assert out.read_text() == "a file" and sorted(os.listdir(tmp_path)) == ["results.zarr"]


def test_suite_into_a_folder_of_other_files_is_refused(tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    code, _, err = _cli(["sweep", "sweeps/fig4_heatmaps.py", "--quick", "--out", out, "--no-progress"], capsys)
    assert code == 2 and err.startswith("redshift-jax: error:") and err.count("\n") == 1, err
    assert sorted(os.listdir(out)) == ["keep.txt"]


@pytest.mark.product_compile
def test_another_sweep_into_a_finished_result_needs_overwrite(tmp_path, reference):
    out = tmp_path / "a.zarr"
    _run(out)
    other = SWEEP.with_axis("seed", [0, 1, 2, 3, 5])
    for resume in (False, True):
        with pytest.raises(rj.StoreError, match="spec.axes.seed: stored") as err:
            rj.run_sweep(other, out=out, progress=False, chunk_size=CHUNK, resume=resume)
        _one_line(err)
    _equal(load_dataset(out), reference)  # untouched
    replaced = rj.run_sweep(other, out=out, progress=False, chunk_size=CHUNK, overwrite=True)
    _equal(load_dataset(out), replaced)
    assert sorted(os.listdir(tmp_path)) == ["a.zarr"]


def test_training_out_is_protected_too(tmp_path):
    from redshift_jax import train

    out = tmp_path / "train"
    out.mkdir()
    (out / "data.csv").write_text("1,2")
    exp = train.ModularSum(activations=("relu",), moduli=(2,), prefactors=(1.0,), seeds=(0,), steps=1)
    with pytest.raises(rj.StoreError, match="not a redshift-jax result"):
        train.run(exp, out=out, progress=False)
    assert (out / "data.csv").read_text() == "1,2" and sorted(os.listdir(tmp_path)) == ["train"]


@pytest.mark.product_compile
def test_unfinished_run_is_kept_without_resume(tmp_path, monkeypatch, reference):
    out = tmp_path / "a.zarr"
    _leave_partial(out, monkeypatch, after=2)
    with pytest.raises(rj.StoreError, match="--resume to continue") as err:
        _run(out)
    _one_line(err)
    _equal(_run(out, resume=True), reference)


# -------------------------------------------------------------------------------------------------------------
# Case 2: one writer per store

@pytest.mark.product_compile
def test_second_writer_is_refused_naming_the_holder(tmp_path, reference):
    out = tmp_path / "a.zarr"
    layout = engine._layout(engine.plan_sweep(SWEEP.replace(chunk_size=CHUNK), 4))
    holder = RunStore(out, SWEEP.fingerprint(), "sweep", layout=layout, chunk=CHUNK)
    try:
        with pytest.raises(rj.StoreError, match=f"another process \\(pid {os.getpid()} on ") as err:
            _run(out, resume=True)
        _one_line(err)
        other = SWEEP.with_axis("seed", [7, 8])
        with pytest.raises(rj.StoreError, match="another process"):
            rj.run_sweep(other, out=out, progress=False, chunk_size=CHUNK, resume=True)
    finally:
        holder.close()
    _equal(_run(out, resume=True), reference)  # the lock goes with its holder


@pytest.mark.product_compile
def test_two_processes_with_different_sweeps_on_one_out(tmp_path):
    """Two real processes race for one --out: one finishes, the other is refused; nothing is mixed."""
    sweep_file = tmp_path / "race.py"
    sweep_file.write_text(textwrap.dedent("""
        import os, redshift_jax as rj
        SEEDS = [int(s) for s in os.environ["RACE_SEEDS"].split(",")]
        SWEEP = rj.Sweep(model=rj.MLP(width=8), axes={"seed": SEEDS}, resolution=8, measures=("fourier",))
    """))
    out = tmp_path / "race.zarr"
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")
    procs = [subprocess.Popen([sys.executable, "-m", "redshift_jax.cli", "sweep", str(sweep_file), "--out",
                               str(out), "--no-progress", "--chunk-size", "1"],
                              env=dict(env, RACE_SEEDS=seeds), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for seeds in ("0,1,2,3,4,5,6,7", "10,11,12,13,14,15,16,17")]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0, results
    assert codes == [0, 0] or codes == [0, 2], results
    for code, err in results:
        if code == 2:
            assert err.strip().count("\n") == 0 and err.startswith("redshift-jax: error:"), err
    ds = load_dataset(out)
    seeds = list(ds.seed.values)
    expected = rj.run_sweep(rj.Sweep(model=rj.MLP(width=8), axes={"seed": seeds}, resolution=8,
                                     measures=("fourier",)), progress=False)
    _equal(ds, expected)


# -------------------------------------------------------------------------------------------------------------
# Case 3: the fingerprint keeps the axes' order

def test_resume_with_axes_in_another_order_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "a.zarr"
    _leave_partial(out, monkeypatch, after=3)
    swapped = rj.Sweep(**{**SPEC, "axes": {"activation": ["relu", "tanh"], "seed": [0, 1, 2, 3, 4],
                                           "weight_scale": [1.0, 4.0]}})
    with pytest.raises(rj.StoreError, match=r"axes order: stored \(activation, weight_scale, seed\)") as err:
        rj.run_sweep(swapped, out=out, progress=False, chunk_size=CHUNK, resume=True)
    _one_line(err)


# -------------------------------------------------------------------------------------------------------------
# Case 4: chunks are verified; damaged ones are recomputed

@pytest.mark.product_compile
@pytest.mark.parametrize("damage", ["delete", "truncate", "alter"])
def test_damaged_chunk_files_are_recomputed(tmp_path, monkeypatch, reference, damage):
    out = tmp_path / "a.zarr"
    _leave_partial(out, monkeypatch)
    for path in _chunk_files(out)[::3]:
        if damage == "delete":
            path.unlink()
        elif damage == "truncate":
            path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    if damage == "alter":  # plausible values where the real ones were: only the checksum can tell
        group = zarr.open_group(str(_partial(out) / "arrays"), mode="a")
        group["fourier"][1, 4:8] = np.float32(0.25)
    ds = _run(out, resume=True)
    _equal(ds, reference)
    _equal(load_dataset(out), reference)
    assert bool(ds.finite.all())


@pytest.mark.product_compile
def test_a_chunk_altered_during_the_run_is_recomputed_before_assembly(tmp_path, monkeypatch, reference):
    out = tmp_path / "a.zarr"
    real = RunStore.write_region

    fired = []

    def write_then_corrupt(self, unit, variant, start, outputs):
        real(self, unit, variant, start, outputs)
        if not fired:  # the first chunk written, whatever its unit is called
            fired.append(unit)
            self.group["lz"][0, 0:2] = np.float32(9.0)  # after its marker was written

    monkeypatch.setattr(RunStore, "write_region", write_then_corrupt)
    _equal(_run(out), reference)
    assert len(fired) == 1  # the corruption happened, so the equality above shows it was repaired


def test_loading_a_damaged_result_is_refused(tmp_path, reference):
    out = tmp_path / "a.zarr"
    _run(out)
    zarr.open_group(str(out), mode="a")["fourier"][0, 0, 0] = np.float32(0.5)
    with pytest.raises(rj.StoreError, match="does not match its recorded checksum"):
        load_dataset(out)
    with pytest.raises(rj.StoreError, match="damaged"):
        _run(out, resume=True)


# -------------------------------------------------------------------------------------------------------------
# Case 6: a full disk

def _full_disk_on(monkeypatch, target, name, nth: int = 1):
    real = getattr(target, name)
    count = {"n": 0}

    def failing(*args, **kwargs):
        count["n"] += 1
        if count["n"] == nth:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, failing)


@pytest.mark.product_compile
@pytest.mark.parametrize("when", ["final", "chunk"])
def test_full_disk_is_one_line_and_leaves_nothing_behind(tmp_path, monkeypatch, reference, when):
    out = tmp_path / "a.zarr"
    if when == "final":
        _full_disk_on(monkeypatch, xr.Dataset, "to_zarr")
    else:
        _full_disk_on(monkeypatch, zarr.Array, "__setitem__", nth=3)
    with pytest.raises(rj.StoreError, match="disk full while writing") as err:
        _run(out)
    assert "--resume" in _one_line(err)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["a.zarr.partial"]  # no temporary folders anywhere
    assert not (_partial(out) / "final.zarr").exists()
    _equal(_run(out, resume=True), reference)
    assert sorted(os.listdir(tmp_path)) == ["a.zarr"]


# -------------------------------------------------------------------------------------------------------------
# Case 7: the size guard

def test_huge_sweep_asks_for_confirmation_without_building_its_grid():
    huge = rj.Sweep(model=rj.MLP(width=64, depth=4), resolution=64, measures=("fourier",),
                    axes={"seed": range(100_000), "weight_scale": np.geomspace(0.1, 10, 1000).tolist(),
                          "bias_scale": np.linspace(0, 1, 120).tolist()})
    assert huge.num_networks == 12_000_000_000
    # (building the grid would need about 100 GB: the refusal comes from the plan's size alone)
    with pytest.raises(rj.ConfigError, match=r"12,000,000,000 networks would need about [\d,]+ h") as err:
        rj.run_sweep(huge, progress=False)
    assert "--yes" in _one_line(err)
    # the plan reads any slice of the grid without the rest
    part = huge.numeric_grid(11_999_999_998, 12_000_000_000)
    assert part["seed"].tolist() == [99_999, 99_999] and part["bias_scale"][-1] == np.float32(1.0)


@pytest.mark.product_compile
def test_numeric_grid_slices_match_the_whole_grid():
    whole = SWEEP.numeric_grid()
    for start, stop in [(0, 3), (3, 7), (7, 10), (9, 12)]:
        part = SWEEP.numeric_grid(start, stop)
        for key in whole:
            np.testing.assert_array_equal(part[key], whole[key][start:stop])
            assert part[key].dtype == whole[key].dtype


def test_estimate_is_within_an_order_of_magnitude_of_a_small_run(reference):
    cost = engine.estimate_cost(SWEEP, 4, "cpu")
    assert cost["networks"] == 20 and cost["seconds"] < 1.0
    assert cost["result_bytes"] == 20 * (4 * 2 + 1)


# -------------------------------------------------------------------------------------------------------------
# Case 9: full precision, float32 range

def test_set_keeps_full_float_precision():
    values = cli.parse_values("geom:1e-7:1e-3:5")
    assert values[0] == 1e-7 and values[-1] == 1e-3 and values[1] == pytest.approx(1e-6, rel=1e-12)
    assert cli.parse_values("lin:0:1:4")[1] == 1 / 3


@pytest.mark.parametrize("axis,value", [("weight_scale", 1e39), ("bias_scale", 4e38), ("prefactor", -1e39)])
def test_values_that_overflow_float32_are_rejected(axis, value):
    with pytest.raises(rj.ConfigError, match="float32"):
        SWEEP.with_axis(axis, [1.0, value])


# -------------------------------------------------------------------------------------------------------------
# Case 10: one-line CLI errors

BAD_SETS = ["depth=a:b", "weight_scale=geom:1:0:5", "weight_scale=lin:0:1", "seed=0:1:2", "seed=3:1",
            "weight_scale=geom:0:1:5", "seed=0:99999999999", "seed=1,,2", "weight_scale=1e39"]


@pytest.mark.parametrize("bad", BAD_SETS)
def test_malformed_set_is_one_line(bad, capsys):
    code, _, err = _cli(["sweep", "sweeps/fig4_heatmaps.py", "--quick", "--set", bad, "--out", "/nonexistent/x",
                         "--no-progress"], capsys)
    assert code == 2 and err.startswith("redshift-jax: error:") and err.count("\n") == 1, err


@pytest.mark.parametrize("content,words", [
    ("import redshift_jax as rj\nQUICK = rj.Sweep(\n", "syntax error at line"),
    ("QUICK = 42\n", "QUICK = 42 is not allowed"),
    ("import redshift_jax as rj\nQUICK = rj.Sweep(axes={'nope': [1]})\n", "'nope'"),
    ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
    ("SWEEP = 1\n", "defines no QUICK"),
])
def test_broken_sweep_files_are_one_line(tmp_path, capsys, content, words):
    file = tmp_path / "broken.py"
    file.write_text(content)
    code, _, err = _cli(["sweep", file, "--quick", "--out", tmp_path / "o.zarr", "--no-progress"], capsys)
    assert code == 2 and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "o.zarr").exists()


def test_folder_as_sweep_file_and_list_of_a_broken_folder(tmp_path, capsys):
    code, _, err = _cli(["sweep", tmp_path, "--quick"], capsys)
    assert code == 2 and "is not a file" in err and err.count("\n") == 1, err
    (tmp_path / "good.py").write_text('"""A fine sweep."""\nimport redshift_jax as rj\n'
                                      "QUICK = rj.Sweep(axes={'seed': [0, 1]}, resolution=8)\n")
    (tmp_path / "bad.py").write_text("this is not python\n")
    code, out, err = _cli(["list", tmp_path], capsys)
    assert code == 1 and "cannot be loaded" in out and "A fine sweep." in out and "quick: 2 networks" in out
    assert "Traceback" not in out + err


def test_plot_on_things_that_are_not_results(tmp_path, capsys, monkeypatch):
    out = tmp_path / "a.zarr"
    _leave_partial(out, monkeypatch, after=2)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "x.txt").write_text("x")
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    for target, words in [(_partial(out), "partial store"), (plain, "not a redshift-jax result"),
                          (a_file, "is a file"), (tmp_path / "missing.zarr", "does not exist")]:
        code, _, err = _cli(["plot", target, "--out", tmp_path / "fig"], capsys)
        assert code == 2 and words in err and err.count("\n") == 1, (target, err)


@pytest.mark.product_compile
def test_refused_resume_and_damaged_meta_are_one_line(tmp_path, capsys, monkeypatch, reference):
    sweep_file = tmp_path / "s.py"
    sweep_file.write_text(f"import redshift_jax as rj\nQUICK = rj.Sweep(model=rj.MLP(width=8), axes={SPEC['axes']!r}, "
                          f"resolution=8, measures={SPEC['measures']!r})\n")
    out = tmp_path / "s.zarr"
    _leave_partial(out, monkeypatch, after=2)
    code, _, err = _cli(["sweep", sweep_file, "--quick", "--out", out, "--set", "seed=0:5", "--resume",
                         "--no-progress", "--chunk-size", CHUNK], capsys)
    assert code == 2 and "spec.axes.seed" in err and err.count("\n") == 1, err
    for name in ("meta.json", "meta.copy.json"):
        (_partial(out) / name).write_text("{garbage")
    code, _, err = _cli(["sweep", sweep_file, "--quick", "--out", out, "--resume", "--no-progress",
                         "--chunk-size", CHUNK], capsys)
    assert code == 2 and "--overwrite" in err and err.count("\n") == 1, err
    code, _, err = _cli(["sweep", sweep_file, "--quick", "--out", out, "--overwrite", "--no-progress",
                         "--chunk-size", CHUNK], capsys)
    assert code == 0, err
    _equal(load_dataset(out), reference)


def test_ctrl_c_keeps_the_partial_store_and_prints_the_resume_command(tmp_path, capsys, monkeypatch):
    out = tmp_path / "q.zarr"
    real = RunStore.write_region
    count = {"n": 0}

    def write(self, *args, **kwargs):
        count["n"] += 1
        if count["n"] == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(RunStore, "write_region", write)
    monkeypatch.setattr(sys, "argv", ["redshift-jax", "sweep", "sweeps/fig4_heatmaps.py", "--quick", "--out",
                                      str(out)])
    code, _, err = _cli(["sweep", "sweeps/fig4_heatmaps.py", "--quick", "--out", out, "--no-progress"], capsys)
    assert code == 130 and "--resume" in err and "Traceback" not in err
    assert not out.exists() and len(list((_partial(out) / "done").glob("*.json"))) == 1


# -------------------------------------------------------------------------------------------------------------
# Case 12: named errors from the Python API

def test_run_sweep_of_a_string_is_a_config_error():
    with pytest.raises(rj.ConfigError, match="pass a redshift_jax.Sweep"):
        rj.run_sweep("x")


# -------------------------------------------------------------------------------------------------------------
# Randomized single faults


def _fault(kind: str, out: Path, rng: random.Random) -> None:
    root = _partial(out)
    if kind in ("delete_chunk", "truncate_chunk", "alter_chunk"):
        path = rng.choice(_chunk_files(out))
        if kind == "delete_chunk":
            path.unlink()
        elif kind == "truncate_chunk":
            data = path.read_bytes()
            path.write_bytes(data[: rng.randrange(len(data))])
        else:
            data = bytearray(path.read_bytes())
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
            path.write_bytes(bytes(data))
    elif kind in ("delete_marker", "corrupt_marker"):
        path = rng.choice(sorted((root / "done").glob("*.json")))
        if kind == "delete_marker":
            path.unlink()
        else:
            path.write_text(rng.choice(["", "{", json.dumps({"fourier": "f4 4x1 00000000"}), "[]"]))
    elif kind in ("delete_meta", "corrupt_meta"):
        path = root / rng.choice(["meta.json", "meta.copy.json"])
        if kind == "delete_meta":
            path.unlink()
        else:
            path.write_text(rng.choice(["", "{not json", json.dumps({"format": 2, "fingerprint": {}})]))
    elif kind in ("truncate_array_meta", "alter_array_meta", "delete_array_meta"):
        # an array's own metadata (.zarray / .zattrs), or the group's (.zgroup / .zattrs)
        arrays = root / "arrays"
        path = rng.choice(sorted(p for p in arrays.rglob(".z*") if p.is_file()))
        _damage_metadata(path, kind.split("_")[0], rng)
    elif kind == "stray_metadata":  # consolidated or zarr v3 metadata that the store never wrote
        where = rng.choice([root / "arrays", root / "arrays" / "fourier"])
        name = rng.choice([".zmetadata", "zarr.json"])
        (where / name).write_text(rng.choice(["", "{", json.dumps({"zarr_format": 3, "node_type": "group"})]))
    else:
        raise AssertionError(kind)


def _damage_metadata(path: Path, how: str, rng: random.Random) -> None:
    """Truncate, alter (a changed digit or byte: often still valid JSON) or delete one metadata file."""
    if how == "delete":
        path.unlink()
        return
    text = path.read_text()
    if how == "truncate":
        path.write_text(text[: rng.randrange(len(text))])
    else:
        digits = [i for i, c in enumerate(text) if c.isdigit()]
        i = rng.choice(digits) if digits and rng.random() < 0.7 else rng.randrange(len(text))
        new = str((int(text[i]) + rng.randrange(1, 10)) % 10) if text[i].isdigit() else chr(ord(text[i]) ^ 0x20)
        path.write_text(text[:i] + new + text[i + 1:])


FAULTS = ["delete_chunk", "truncate_chunk", "alter_chunk", "delete_marker", "corrupt_marker", "delete_meta",
          "corrupt_meta", "truncate_array_meta", "alter_array_meta", "delete_array_meta", "stray_metadata"]


@pytest.mark.product_compile
@pytest.mark.parametrize("trial", range(3))
@pytest.mark.parametrize("kind", FAULTS)
def test_random_single_fault_then_resume(tmp_path, monkeypatch, reference, kind, trial):
    rng = random.Random(f"{kind}-{trial}")
    out = tmp_path / "a.zarr"
    _leave_partial(out, monkeypatch, after=rng.choice([3, 4, 5, None]))
    _fault(kind, out, rng)
    try:
        ds = _run(out, resume=True)
    except rj.StoreError as err:
        text = _one_line(err)
        assert "--overwrite" in text or "--resume" in text, text
        ds = _run(out, overwrite=True)
    _equal(ds, reference)
    _equal(load_dataset(out), reference)
    assert sorted(os.listdir(tmp_path)) == ["a.zarr"]


@pytest.mark.product_compile
@pytest.mark.parametrize("name", [".zattrs", ".zmetadata", ".zgroup", "fourier/.zarray", "seed/.zattrs"])
@pytest.mark.parametrize("how", ["truncate", "alter", "delete"])
def test_damaged_metadata_of_a_finished_result(tmp_path, reference, how, name):
    """Any metadata file of a finished result damaged: loading or resuming gives the result bitwise or a one-line
    error naming --overwrite, and --overwrite then replaces it (it is still recognized as ours)."""
    rng = random.Random(f"final-{how}-{name}")
    out = tmp_path / "a.zarr"
    _run(out)
    _damage_metadata(out / name, how, rng)
    try:
        _equal(_run(out, resume=True), reference)
    except rj.StoreError as err:
        assert "--overwrite" in _one_line(err)
        _equal(_run(out, overwrite=True), reference)
    _equal(load_dataset(out), reference)
    assert sorted(os.listdir(tmp_path)) == ["a.zarr"]


@pytest.mark.product_compile
@pytest.mark.parametrize("trial", range(2))
def test_random_full_disk_then_resume(tmp_path, monkeypatch, reference, trial):
    rng = random.Random(f"disk-{trial}")
    out = tmp_path / "a.zarr"
    if rng.random() < 0.5:
        _full_disk_on(monkeypatch, zarr.Array, "__setitem__", nth=rng.randrange(1, 12))
    else:
        _full_disk_on(monkeypatch, xr.Dataset, "to_zarr")
    with pytest.raises(rj.StoreError) as err:
        _run(out)
    assert "--resume" in _one_line(err)
    monkeypatch.undo()
    _equal(_run(out, resume=True), reference)
    assert sorted(os.listdir(tmp_path)) == ["a.zarr"]


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    import redshift_jax as rj
    from redshift_jax.store import RunStore, load_dataset
    real = RunStore.write_region
    def slow(self, *args, **kwargs):
        real(self, *args, **kwargs)
        time.sleep(0.05)
    RunStore.write_region = slow
    print("started", flush=True)
    rj.run_sweep(rj.Sweep(**SPEC), out=sys.argv[1], progress=False, chunk_size=CHUNK)
""")


@pytest.mark.product_compile
@pytest.mark.parametrize("trial", range(2))
def test_sigkill_at_a_random_moment_then_resume(tmp_path, reference, trial):
    rng = random.Random(f"kill-{trial}")
    out = tmp_path / "a.zarr"
    script = tmp_path / "run.py"
    script.write_text(f"import redshift_jax as rj\nSPEC = dict(model=rj.MLP(width=8), axes={SPEC['axes']!r}, "
                      f"resolution=8, measures={SPEC['measures']!r})\nCHUNK = {CHUNK}\n" + KILL_SCRIPT)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, str(script), str(out)], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    # from just after the imports to past the end of the run (compile ~1-2 s, 6 chunks, final write)
    time.sleep(rng.uniform(0.0, 4.0))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    try:
        ds = _run(out, resume=True)
    except rj.StoreError as err:
        assert "--overwrite" in _one_line(err)
        ds = _run(out, overwrite=True)
    _equal(ds, reference)
    assert sorted(os.listdir(tmp_path)) == ["a.zarr", "run.py"]


# -------------------------------------------------------------------------------------------------------------
# Training runs share the store: damaged pieces are retrained, never read


@pytest.mark.product_compile
@pytest.mark.parametrize("damage", ["delete", "alter", "marker"])
def test_training_resume_retrains_a_damaged_piece(tmp_path, monkeypatch, damage):
    from redshift_jax import train
    from redshift_jax.train.modsum import ModularSum

    # the experiment of tests/test_multihost.py's TRAIN_FILE, with the shapes and steps of tests/test_train.py's
    # SMALL grid trained in segments of 40 steps: the same programs, so the run's compilation cache compiles them
    # once for all these tests (about 20 s of CPU); its sizes do not matter here
    exp = ModularSum(activations=("relu", "sin"), moduli=(10, 4), prefactors=(0.25, 1.0, 4.0), seeds=(0, 1),
                     steps=40)
    full = train.run(exp, progress=False)
    out = tmp_path / "m.zarr"
    monkeypatch.setattr(RunStore, "finish", lambda self, ds: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        train.run(exp, out=out, progress=False)
    monkeypatch.undo()
    piece = _partial(out) / "pieces" / "relu.zarr"
    if damage == "delete":
        next(p for p in piece.rglob("*") if p.is_file() and p.parent.name == "test_accuracy"
             and not p.name.startswith(".")).unlink()
    elif damage == "alter":
        zarr.open_group(str(piece), mode="a")["test_accuracy"][...] = np.float32(0.5)
    else:
        (_partial(out) / "done" / "relu.json").write_text("{")
    ds = train.run(exp, out=out, resume=True, progress=False)
    assert ds.attrs.get("resumed_activations") == "sin"  # relu was retrained
    for name in full.data_vars:
        np.testing.assert_array_equal(ds[name].values, full[name].values, err_msg=name)


# -------------------------------------------------------------------------------------------------------------
# Issue 27: the newer surfaces (suites, plot on any result)

SUITE_FILE = f"""import redshift_jax as rj
QUICK = {{"a": rj.Sweep(model=rj.MLP(width=8), axes={SPEC['axes']!r}, resolution=8, measures=("lz",)),
         "b": rj.Sweep(model=rj.MLP(width=8), axes={{"seed": [0, 1]}}, resolution=8, measures=("lz",))}}
"""


@pytest.mark.product_compile
@pytest.mark.parametrize("then", ["--resume", "--overwrite"])
def test_suite_killed_during_its_first_part_can_be_resumed_or_overwritten(tmp_path, capsys, monkeypatch, then):
    """suite.json was written only after a part finished, so a suite killed in its first part left a folder that
    every later run refused as "a folder with other files"."""
    sweep_file = tmp_path / "suite.py"
    sweep_file.write_text(SUITE_FILE)
    out = tmp_path / "suite"
    argv = ["sweep", sweep_file, "--quick", "--out", out, "--no-progress"]
    monkeypatch.setattr(RunStore, "finish", lambda self, ds: (_ for _ in ()).throw(KeyboardInterrupt()))
    code, _, err = _cli(argv, capsys)
    assert code == 130 and "--resume" in err, err
    monkeypatch.undo()
    code, _, err = _cli(argv + [then], capsys)
    assert code == 0, err
    parts, _, _ = cli.load_result(out)
    assert sorted(parts) == ["a", "b"]
    _equal(parts["b"], rj.run_sweep(rj.Sweep(model=rj.MLP(width=8), axes={"seed": [0, 1]}, resolution=8,
                                             measures=("lz",)), progress=False))


def test_plot_works_on_any_result(tmp_path, capsys):
    """`plot` failed on the result of a sweep file without FIGURE (figure = the file's stem) and raised a
    traceback on API results without depth / weight_scale axes (the default figure is a depth x scale heatmap)."""
    sweep_file = tmp_path / "my_sweep.py"
    sweep_file.write_text("import redshift_jax as rj\nQUICK = rj.Sweep(model=rj.MLP(width=8), resolution=8, "
                          "measures=('lz', 'fourier'), axes={'weight_scale': [1.0, 2.0], 'seed': [0, 1]})\n")
    code, _, err = _cli(["sweep", sweep_file, "--quick", "--out", tmp_path / "file.zarr", "--no-progress"], capsys)
    assert code == 0, err
    cases = {"file.zarr": None,
             "none.zarr": dict(axes={"seed": [0, 1]}),
             "act.zarr": dict(axes={"activation": ["relu", "tanh"], "seed": [0, 1]}),
             # (numeric axes where a plot only needs one more axis: a structural one compiles a program per value)
             "three.zarr": dict(axes={"activation": ["relu", "tanh"], "weight_scale": [1.0, 2.0],
                                      "bias_scale": [0.5, 1.0], "seed": [0]}),
             "heatmap_and_more.zarr": dict(axes={"depth": [1, 2], "weight_scale": [1.0, 2.0], "bias_scale": [0.5, 1.0],
                                                 "seed": [0]})}
    for name, axes in cases.items():
        if axes is not None:
            rj.run_sweep(rj.Sweep(model=rj.MLP(width=8), resolution=8, measures=("lz",), **axes),
                         out=tmp_path / name, progress=False)
        code, out, err = _cli(["plot", tmp_path / name, "--out", tmp_path / "fig" / name], capsys)
        assert code == 0 and "figure:" in out, (name, err)
        assert all(Path(line.split("figure: ")[1]).is_file() for line in out.splitlines()), out


def test_size_guard_counts_the_setup_and_the_compiled_working_memory(tmp_path, monkeypatch, capsys):
    """Issue 27: the guard counted only the result's size. An NNGP grid of 16,384 points needs ~13 GiB for its
    kernel and factor, and kinks at width 20,000 and depth 2 compile to 110 GiB per device; both ran into the
    machine's memory (a traceback, or the OOM killer). Both are refused up front, in one line naming the need and
    what this machine allows; nothing is left behind."""
    from redshift_jax.sweep import plan as plan_module

    monkeypatch.setattr(plan_module, "memory_bytes", lambda platform=None: 2 ** 30)  # a 1 GiB machine
    nngp = rj.Sweep(model=rj.NNGP("relu", depth=2), resolution=128, measures=("lz",), axes={"seed": [0]})
    with pytest.raises(rj.ConfigError, match=r"setup step needs about 12\.0 GiB.*allowed: at most 512\.0 MiB") as err:
        rj.run_sweep(nngp, progress=False)
    _one_line(err)
    # the compiled chunk: XLA's own memory analysis, checked before the first chunk runs
    kinks = rj.Sweep(model=rj.MLP(width=600, in_dim=1, depth=2), resolution=8, measures=("kinks",),
                     axes={"seed": [0, 1]})
    monkeypatch.setattr(plan_module, "memory_bytes", lambda platform=None: 2 ** 24)  # 16 MiB
    out = tmp_path / "k.zarr"
    with pytest.raises(rj.ConfigError, match=r"working memory.*MiB.*allowed: at most 8\.0 MiB") as err:
        rj.run_sweep(kinks, out=out, progress=False)
    _one_line(err)
    assert sorted(os.listdir(tmp_path)) == []  # the empty partial store this run created is removed
    monkeypatch.undo()
    assert rj.run_sweep(kinks, progress=False, confirm=True).kinks.shape == (2,)


def test_running_out_of_memory_is_one_line(tmp_path, monkeypatch, capsys):
    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 118. GiB for an array")

    monkeypatch.setattr(engine, "execute", exhausted)
    sweep_file = tmp_path / "s.py"
    sweep_file.write_text("import redshift_jax as rj\nQUICK = rj.Sweep(model=rj.MLP(width=8), resolution=8, "
                          "measures=('lz',), axes={'seed': [0, 1]})\n")
    code, _, err = _cli(["sweep", sweep_file, "--quick", "--out", tmp_path / "o.zarr", "--no-progress"], capsys)
    assert code == 2 and err.startswith("redshift-jax: error: out of memory") and err.count("\n") == 1, err
    assert "--resume" in err
