"""W1 "heatmaps": ``rj.run_sweep`` of the 16,800-network Figure 4 grid in memory, cold then warm."""

from __future__ import annotations

import time

import numpy as np

import redshift_jax as rj

from .common import cpu_seconds, log


def bench_w1(sweep: rj.Sweep, after_cold=None, between=None, warm_runs: int = 3) -> dict:
    """W1 cold, ``after_cold()``, then ``warm_runs`` warm runs with ``between()`` after each (the baseline's
    passes, interleaved so that drift in this shared machine's speed over the minutes of the bench moves both
    sides of the ratio alike)."""
    n = sweep.num_networks
    c0, t0 = cpu_seconds(), time.perf_counter()
    ds = rj.run_sweep(sweep, progress=False)
    cold = time.perf_counter() - t0
    cold_cpu = cpu_seconds() - c0
    cold_attrs = {k: ds.attrs.get(k) for k in ("chunk_size", "compile_wait_seconds", "run_seconds")}
    log(f"W1 cold {cold:.1f} s {cold_attrs}")
    if after_cold is not None:
        after_cold()
    runs = []
    for _ in range(warm_runs):
        c1, t1 = cpu_seconds(), time.perf_counter()
        ds = rj.run_sweep(sweep, progress=False)
        t2, c2 = time.perf_counter(), cpu_seconds()
        attrs = {k: ds.attrs.get(k) for k in ("chunk_size", "compile_wait_seconds", "run_seconds",
                                              "compiled_chunk_bytes")}
        runs.append((t2 - t1, (c2 - c1) / (t2 - t1), attrs))
        log(f"W1 warm {t2 - t1:.2f} s {attrs}")
        if between is not None:
            between()
    warm, warm_util, attrs = min(runs, key=lambda r: r[0])  # the best warm run (the baseline: its best pass)
    finite = float(np.asarray(ds["finite"]).mean())
    # Compile = the cold run's time outside its chunk calls minus the warm run's: cold - warm would also count
    # any change in machine load between the two runs as compile time (seen: 32 s vs 14 s of compile wait).
    compile_s = (cold - cold_attrs["run_seconds"]) - (warm - attrs["run_seconds"])
    return {
        "networks": n, "cold_seconds": cold, "warm_seconds": warm, "compile_seconds": compile_s,
        "cold_minus_warm_seconds": cold - warm, "warm_runs_seconds": [r[0] for r in runs],
        "networks_per_second": n / warm, "cold_attrs": cold_attrs, "warm_attrs": attrs,
        "warm_cpu_utilization": warm_util, "cold_cpu_utilization": cold_cpu / cold,
        "finite_fraction": finite,
    }
