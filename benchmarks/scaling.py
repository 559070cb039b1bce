"""Scaling: networks/s and peak memory from 10^2 to 10^5 networks, each size in a fresh subprocess.

    .venv/bin/python -m benchmarks.scaling N     # one size (what bench_scaling runs), prints one JSON line
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import jax

import redshift_jax as rj
from redshift_jax.sweep import engine

from .common import ROOT, cpu_seconds, log, rss_gb
from .workloads import scaling_sweep


def scaling_worker(n: int) -> dict:
    """Runs in a fresh process: compile ahead at the chunk run_sweep will use, then time the sweep."""
    rj.run_sweep(scaling_sweep(2), progress=False)  # imports and first-call paths (xarray, store), tiny compile
    sweep = scaling_sweep(n)
    plan = engine.plan_sweep(sweep, len(jax.local_devices()))  # the plan run_sweep will make
    t0 = time.perf_counter()
    engine.compile_variant(plan.variants[0][1], sweep, plan.chunk)
    compile_s = time.perf_counter() - t0
    c0, t0 = cpu_seconds(), time.perf_counter()
    ds = rj.run_sweep(sweep, progress=False)
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    return {
        "networks": n, "seconds": seconds, "networks_per_second": n / seconds, "compile_seconds": compile_s,
        "chunk_size": int(ds.attrs["chunk_size"]), "compile_wait_seconds": ds.attrs["compile_wait_seconds"],
        "run_seconds": ds.attrs["run_seconds"], "cpu_utilization": cpu / seconds, "peak_rss_gb": rss_gb(),
    }


def run_scaling_size(n: int, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.scaling", str(n)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"networks": n, "error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"networks": n, "error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_seconds"] = time.perf_counter() - t0
    log(f"scaling {n}: {res['seconds']:.2f} s, {res['networks_per_second']:.0f} nets/s, "
        f"RSS {res['peak_rss_gb']:.2f} GB")
    return res


def bench_scaling(sizes_: tuple, limit_s: float) -> dict:
    rows = []
    notes = []
    for n in sizes_:
        if rows and "networks_per_second" in rows[-1]:
            projected = n / rows[-1]["networks_per_second"]
            if projected > limit_s:
                msg = (f"scaling {n}: projected {projected:.0f} s from {rows[-1]['networks']} networks "
                       f"(over {limit_s:.0f} s); measuring anyway")
                print(msg, flush=True)
                notes.append(msg)
            timeout = max(600.0, 4 * projected)
        else:
            timeout = 600.0
        rows.append(run_scaling_size(n, timeout))
    ok_rows = [r for r in rows if "seconds" in r]
    ref = next((r for r in ok_rows if r["networks"] == 1000), ok_rows[0] if ok_rows else None)
    out = {"rows": rows, "notes": notes}
    if ref and ok_rows and ok_rows[-1] is not ref:
        out["linearity"] = (ok_rows[-1]["seconds"] / ok_rows[-1]["networks"]) / (ref["seconds"] / ref["networks"])
    return out


if __name__ == "__main__":
    print(json.dumps(scaling_worker(int(sys.argv[1]))))
