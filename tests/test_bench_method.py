"""The benchmark's method: its baseline subset has W1's mix of work, and benchmarks/ uses public hooks only."""

import importlib
import re
import sys
from pathlib import Path

import jax
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _bench(name: str):
    jax.devices()  # backends started: importing the benchmarks then leaves this process's device count alone
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"benchmarks.{name}")


def test_baseline_pairs_give_every_activation_w1_mean_depth():
    workloads, baseline = _bench("workloads"), _bench("baseline")
    for quick in (False, True):
        sz = workloads.sizes(quick)
        acts, depths = sz["activations"], sz["depths"]
        pairs = baseline.baseline_pairs(acts, depths, sz["baseline_combos"])
        assert len(pairs) == sz["baseline_combos"]
        assert {a for a, _ in pairs} == set(acts)
        for act in acts:
            ds = [d for a, d in pairs if a == act]
            assert len(ds) == sz["baseline_combos"] // len(acts)
            assert np.mean(ds) == np.mean(depths), (act, ds)
        assert set(d for _, d in pairs) <= set(depths)


def test_w1_is_the_figure4_grid():
    sweep = _bench("workloads").w1_sweep(_bench("workloads").sizes(False))
    assert sweep.num_networks == 16_800
    assert sweep.resolution == 64 and sweep.to_dict()["measures"] == ["fourier", "chebyshev", "lz"]


def test_benchmarks_use_no_private_engine_names():
    # e.g. engine._kept_whole or runner._COMPILED: the benchmarks must run on the public hooks alone
    private = re.compile(r"\b(engine|runner|plan|spec|store_mod|store)\._[A-Za-z]\w*")
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        if path.name == "store_bench.py":  # owned separately: it swaps RunStore methods to time verification
            continue
        hits = private.findall(path.read_text())
        assert not hits, (path.name, hits)
