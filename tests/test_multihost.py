"""Many processes under jax.distributed (DESIGN.md section 17), as 2 local processes x 1 CPU device each.

The processes are real: ``redshift-jax sweep FILE --processes 2`` starts two children that initialize
``jax.distributed`` on localhost (gloo collectives, the coordination service's barriers). Checked: bitwise equality
with one process for a sweep and a training grid; SIGKILL of one process stops the other within the heartbeat,
and a resume with one process completes bitwise; a run stopped by SIGTERM (a preemption notice) keeps its chunks
and a resume with two processes completes it bitwise. The plan's process assignment is checked directly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import redshift_jax as rj
from redshift_jax.sweep.plan import plan_sweep

ROOT = Path(__file__).resolve().parents[1]

SWEEP_FILE = '''
import redshift_jax as rj
SWEEP = rj.Sweep(model=rj.MLP(width=32), resolution=16, measures=("fourier", "lz"), chunk_size=4,
                 axes={"activation": ["relu", "tanh"], "depth": [1, 3], "weight_scale": [1.0, 4.0],
                       "seed": list(range(SEEDS))})
'''

TRAIN_FILE = '''
from redshift_jax.train import ModularSum
SWEEP = ModularSum(activations=("relu", "tanh", "sin"), moduli=(4,), prefactors=(1.0, 4.0), seeds=(0, 1), n=6,
                   steps=40, width=16)
'''


def _write(tmp_path, name, text, seeds=10):
    path = tmp_path / name
    path.write_text(text.replace("SEEDS", str(seeds)))
    return path


def _env():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # the launcher gives each process cores / N devices
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _cli(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "redshift_jax.cli", *map(str, args)], env=_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _same(a: Path, b: Path):
    x, y = xr.open_zarr(a).load(), xr.open_zarr(b).load()
    assert set(x.data_vars) == set(y.data_vars)
    for name in x.data_vars:
        assert np.array_equal(x[name].values, y[name].values, equal_nan=True), name
    return x, y


def test_plan_splits_units_into_contiguous_blocks():
    sweep = rj.Sweep(model=rj.MLP(width=8), resolution=8, measures=("lz",), chunk_size=2,
                     axes={"activation": ["relu", "tanh", "sin"], "seed": list(range(10))})
    plan = plan_sweep(sweep, 1, n_processes=2)
    units = list(plan.units)
    owners = [plan.process_of[u] for u in units]
    assert owners == sorted(owners) and len(units) == 15 and abs(owners.count(0) - owners.count(1)) == 1
    assert plan.units_of(0) + plan.units_of(1) == units
    assert set(plan_sweep(sweep, 1).process_of.values()) == {0}


def test_two_processes_match_one_bitwise_sweep_and_training(tmp_path):
    sweep_file = _write(tmp_path, "tiny.py", SWEEP_FILE)
    one, two = tmp_path / "one.zarr", tmp_path / "two.zarr"
    assert _cli("sweep", sweep_file, "--out", one, "--no-progress").returncode == 0
    proc = _cli("sweep", sweep_file, "--out", two, "--processes", 2, "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("results:") == 1  # process 0 alone reports
    _, y = _same(one, two)
    assert y.attrs["processes"] == 2 and y.attrs["devices_used"] == 1
    train_file = _write(tmp_path, "train.py", TRAIN_FILE)
    one, two = tmp_path / "train1.zarr", tmp_path / "train2.zarr"
    assert _cli("sweep", train_file, "--out", one, "--no-progress").returncode == 0
    proc = _cli("sweep", train_file, "--out", two, "--processes", 2, "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    _same(one, two)


def _children(parent: int) -> dict[int, int]:
    """{process id: pid} of the launcher's children."""
    out = {}
    for pid in subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split():
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(b"REDSHIFT_PROCESS_ID="):
                out[int(item.split(b"=")[1])] = int(pid)
    return out


def _wait_for_markers(out: Path, n: int, proc, limit=120.0):
    done = out.with_name(out.name + ".partial") / "done"
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if done.is_dir() and len(list(done.glob("*.json"))) >= n:
            return
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    raise AssertionError("no chunks were written")


def test_sigkill_of_one_process_then_resume_with_one(tmp_path):
    sweep_file = _write(tmp_path, "tiny.py", SWEEP_FILE, seeds=400)
    out, ref = tmp_path / "killed.zarr", tmp_path / "ref.zarr"
    parent = subprocess.Popen([sys.executable, "-m", "redshift_jax.cli", "sweep", str(sweep_file), "--out", str(out),
                               "--processes", "2", "--no-progress"], env=_env(), cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    _wait_for_markers(out, 3, parent)
    children = _children(parent.pid)
    assert set(children) == {0, 1}
    t0 = time.monotonic()
    os.kill(children[1], signal.SIGKILL)
    _, err = parent.communicate(timeout=120)
    assert parent.returncode != 0 and time.monotonic() - t0 < 60
    assert "process 1 of 2 was killed by signal 9" in err and "--resume" in err
    assert not out.exists() and out.with_name(out.name + ".partial").is_dir()
    proc = _cli("sweep", sweep_file, "--out", out, "--resume", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _cli("sweep", sweep_file, "--out", ref, "--no-progress").returncode == 0
    _same(out, ref)


def test_sigterm_keeps_chunks_and_a_resume_with_two_processes_completes(tmp_path):
    sweep_file = _write(tmp_path, "tiny.py", SWEEP_FILE, seeds=400)
    out, ref = tmp_path / "stopped.zarr", tmp_path / "ref.zarr"
    proc = subprocess.Popen([sys.executable, "-m", "redshift_jax.cli", "sweep", str(sweep_file), "--out", str(out),
                             "--no-progress"], env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _wait_for_markers(out, 2, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert "stopped on SIGTERM after writing its current chunk" in err and "--resume" in err
    partial = out.with_name(out.name + ".partial")
    assert len(list((partial / "done").glob("*.json"))) >= 2
    resumed = _cli("sweep", sweep_file, "--out", out, "--resume", "--processes", 2, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _cli("sweep", sweep_file, "--out", ref, "--no-progress").returncode == 0
    _same(out, ref)


def test_bad_launch_settings_are_one_line(tmp_path, capsys):
    from redshift_jax import cli

    sweep_file = _write(tmp_path, "tiny.py", SWEEP_FILE)
    assert cli.main(["sweep", str(sweep_file), "--processes", "0"]) == 2
    assert "--processes 0 is not allowed" in capsys.readouterr().err
    assert cli.main(["sweep", str(sweep_file), "--processes", "2", "--distributed"]) == 2
    assert "together are not allowed" in capsys.readouterr().err
    with pytest.raises(rj.ConfigError, match="all three"):
        from redshift_jax import multihost

        multihost.initialize(coordinator="localhost:1", num_processes=None, process_id=None)
