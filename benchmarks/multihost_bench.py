"""One process against two local processes under jax.distributed on the same sweep (DESIGN.md section 17).

The sweep (a small Figure 4 grid: 2 activations x depths 1..4 x 8 weight scales x 64 seeds on the 64 x 64 grid,
fourier and lz) runs through the command line twice per repeat, interleaved: ``redshift-jax sweep`` with one
process (every core as a device) and with ``--processes 2`` (each process ``cores / 2`` devices, its own block of
chunks, process 0 assembling). Timed: the whole command, start-up and compiles included, which is what a user
waits for. On a 2-core machine two processes cannot beat one (same cores, two start-ups, each process compiles
its own variants); the row is here to show the cost of the coordination honestly, and the results are checked to
be bitwise equal.

    .venv/bin/python benchmarks/multihost_bench.py [--repeats 2] [--out benchmarks/multihost_results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import write_json  # noqa: E402

SWEEP = '''
import numpy as np
import redshift_jax as rj
SWEEP = rj.Sweep(model=rj.MLP(), resolution=64, measures=("fourier", "lz"), name="multihost bench",
                 axes={"activation": ["relu", "tanh"], "depth": [1, 2, 3, 4],
                       "weight_scale": [float(w) for w in np.geomspace(1, 50, 8)], "seed": list(range(64))})
'''


def _run(file: Path, out: Path, processes: int) -> float:
    cmd = [sys.executable, "-m", "redshift_jax.cli", "sweep", str(file), "--out", str(out), "--no-progress"]
    if processes > 1:
        cmd += ["--processes", str(processes)]
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    return elapsed


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    import xarray as xr

    times = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "bench_sweep.py"
        file.write_text(SWEEP)
        for r in range(args.repeats):
            for n in (1, 2):
                times[n].append(_run(file, Path(tmp) / f"r{r}_p{n}.zarr", n))
                print(f"repeat {r}: {n} process(es) {times[n][-1]:.1f} s", flush=True)
        a, b = xr.open_zarr(Path(tmp) / "r0_p1.zarr").load(), xr.open_zarr(Path(tmp) / "r0_p2.zarr").load()
        bitwise = all(np.array_equal(a[v].values, b[v].values, equal_nan=True) for v in a.data_vars)
        networks = int(a.attrs["num_networks"])
    one, two = statistics.median(times[1]), statistics.median(times[2])
    result = {"date": time.strftime("%Y-%m-%d"), "cores": len(os.sched_getaffinity(0)), "networks": networks,
              "seconds_1_process": times[1], "seconds_2_processes": times[2], "median_1": one, "median_2": two,
              "speedup_2_over_1": one / two, "bitwise_equal": bitwise}
    print(json.dumps({k: result[k] for k in ("median_1", "median_2", "speedup_2_over_1", "bitwise_equal")}))
    if args.out:
        write_json(result, Path(args.out))
    return result


if __name__ == "__main__":
    main()
