"""The benchmark's method: its baseline subset has W1's mix of work (benchmarks/run.py)."""

import importlib.util
from pathlib import Path

import jax
import numpy as np


def _bench_module():
    jax.devices()  # backends started: importing the script then leaves this process's device count alone
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
    spec = importlib.util.spec_from_file_location("redshift_bench_run", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_baseline_pairs_give_every_activation_w1_mean_depth():
    run = _bench_module()
    for quick in (False, True):
        sz = run.sizes(quick)
        acts, depths = sz["activations"], sz["depths"]
        pairs = run.baseline_pairs(acts, depths, sz["baseline_combos"])
        assert len(pairs) == sz["baseline_combos"]
        assert {a for a, _ in pairs} == set(acts)
        for act in acts:
            ds = [d for a, d in pairs if a == act]
            assert len(ds) == sz["baseline_combos"] // len(acts)
            assert np.mean(ds) == np.mean(depths), (act, ds)
        assert set(d for _, d in pairs) <= set(depths)
