"""Image models on planes (DESIGN.md section 19, issue 26): fields/s of the sweep engine against a per-network
Python loop of the same flax module, measured interleaved in one run, and peak memory at two network counts.

Workloads (DESIGN.md section 19's bench row): ``rj.CNN(depth=4, width=32)`` and ``rj.ViT(depth=4)`` (d_model 64, 4
heads, 4 x 4 patches), ReLU / GELU, on a ``--resolution`` x ``--resolution`` plane through MNIST (default 64: 4,096
images per field), the field scored with ``fourier`` and ``lz``.

- *engine*: ``run_sweep`` of ``--networks`` networks (weight scales 1 and 2 x seeds), warm (its compile is done by
  a first call outside the timing and reported apart); the wall time of the whole call, storing included.
- *loop*: what a user writes without the engine: one jitted function of (seed, weight scale) that draws the
  module's parameters (``FlaxModel.init``), applies the module to the plane's images and scores the field, called
  from Python once per network, each result read back.

Each round runs the engine's sweep and then the loop's networks for each model, so both see the same machine load;
the figure of merit is the ratio of the median fields/s. Memory: each model's engine sweep at ``--memory-counts``
networks (default 2 and 16, at resolution 32 to keep the run short), each in a fresh subprocess, peak resident
memory (``VmHWM``) reported: flat in the number of networks when the engine runs networks one after another.

    .venv/bin/python benchmarks/architectures_bench.py [--resolution 64] [--networks 4] [--rounds 2]
                                                       [--out benchmarks/architectures_results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import redshift_jax as rj  # noqa: E402  (sets one CPU device per core before JAX starts)
from benchmarks.common import machine_info, rss_gb, write_json  # noqa: E402

MEASURES = ("fourier", "lz")


def make_sweep(name: str, networks: int, resolution: int) -> rj.Sweep:
    plane = rj.Plane("mnist")
    model = {"cnn": lambda: rj.CNN(depth=4, width=32, activation="relu", plane=plane),
             "vit": lambda: rj.ViT(depth=4, activation="gelu", plane=plane)}[name]()
    return rj.Sweep(model=model, axes={"weight_scale": [1.0, 2.0], "seed": list(range(max(1, networks // 2)))},
                    resolution=resolution, measures=MEASURES, name=f"bench-{name}")


def make_loop(sweep: rj.Sweep):
    """The per-network loop: one jitted (seed, weight scale) -> measures function of the same module."""
    model, res = sweep.model, sweep.resolution
    uv = jnp.asarray(rj.grid(res, 2))
    measures = {m.label: m for m in sweep.measure_objects}
    base = jax.random.key(sweep.base_seed)

    @jax.jit
    def one(seed, weight_scale):
        params = model.init(jax.random.fold_in(base, seed), weight_scale=weight_scale)
        with jax.default_matmul_precision(sweep.precision):
            field = model.apply(params, uv).reshape(res, res)
        return {label: m(field) for label, m in measures.items()}

    cells = [(np.uint32(s), np.float32(w)) for s in sweep.axes["seed"] for w in sweep.axes["weight_scale"]]

    def run():
        return [{k: float(v) for k, v in one(s, w).items()} for s, w in cells]

    return run, len(cells)


def memory_child(name: str, networks: int, resolution: int) -> None:
    sweep = make_sweep(name, networks, resolution)
    ds = rj.run_sweep(sweep, progress=False)
    print(json.dumps({"networks": int(ds.attrs["num_networks"]), "peak_rss_gb": rss_gb(),
                      "chunk": int(ds.attrs.get("chunk_size", 0) or 0)}))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--networks", type=int, default=4, help="networks per engine sweep and per loop pass")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", default="cnn,vit")
    parser.add_argument("--memory-counts", default="2,16")
    parser.add_argument("--memory-resolution", type=int, default=32)
    parser.add_argument("--memory-child", nargs=3, metavar=("MODEL", "NETWORKS", "RESOLUTION"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]), int(args.memory_child[2]))
        return {}

    info = machine_info()
    names = args.models.split(",")
    sweeps = {n: make_sweep(n, args.networks, args.resolution) for n in names}
    loops, compile_s, engine_rates, loop_rates, check = {}, {}, {n: [] for n in names}, {n: [] for n in names}, {}
    for n, sweep in sweeps.items():
        t0 = time.perf_counter()
        first = rj.run_sweep(sweep, progress=False)
        compile_s[n] = {"engine_first_call": round(time.perf_counter() - t0, 2),
                        "engine_compile_wait": float(first.attrs.get("compile_wait_seconds", float("nan")))}
        loops[n] = make_loop(sweep)
        t0 = time.perf_counter()
        ref = loops[n][0]()
        compile_s[n]["loop_first_pass"] = round(time.perf_counter() - t0, 2)
        # the loop computes the same numbers as the engine (same keys, same module)
        got = np.array([[r[m] for m in MEASURES] for r in ref])
        want = np.stack([first[m].transpose("seed", "weight_scale").values.ravel() for m in MEASURES], axis=1)
        check[n] = float(np.max(np.abs(got - want)))
    for rnd in range(args.rounds):
        for n, sweep in sweeps.items():
            t0 = time.perf_counter()
            ds = rj.run_sweep(sweep, progress=False)
            engine_rates[n].append(ds.attrs["num_networks"] / (time.perf_counter() - t0))
            run, count = loops[n]
            t0 = time.perf_counter()
            run()
            loop_rates[n].append(count / (time.perf_counter() - t0))
            print(f"round {rnd} {n}: engine {engine_rates[n][-1]:.3f} fields/s, loop {loop_rates[n][-1]:.3f}",
                  file=sys.stderr, flush=True)

    memory = {}
    for n in names:
        memory[n] = []
        for count in (int(c) for c in args.memory_counts.split(",")):
            proc = subprocess.run([sys.executable, __file__, "--memory-child", n, str(count),
                                   str(args.memory_resolution)], capture_output=True, text=True, cwd=ROOT)
            if proc.returncode:
                raise RuntimeError(proc.stderr[-2000:])
            memory[n].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"memory {n}: {memory[n][-1]}", file=sys.stderr, flush=True)

    result = {
        "benchmark": "architectures", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "workload": {n: {"model": repr(sweeps[n].model.module), "resolution": args.resolution,
                         "images_per_field": args.resolution ** 2, "measures": list(MEASURES),
                         "networks": sweeps[n].num_networks} for n in names},
        "rounds": args.rounds,
        "engine_fields_per_s": {n: float(np.median(engine_rates[n])) for n in names},
        "loop_fields_per_s": {n: float(np.median(loop_rates[n])) for n in names},
        "ratio": {n: float(np.median(engine_rates[n]) / np.median(loop_rates[n])) for n in names},
        "engine_rates": engine_rates, "loop_rates": loop_rates, "compile_seconds": compile_s,
        "loop_vs_engine_max_abs_difference": check, "memory": memory,
        "memory_resolution": args.memory_resolution, "machine": info,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps({k: result[k] for k in ("engine_fields_per_s", "loop_fields_per_s", "ratio",
                                             "loop_vs_engine_max_abs_difference", "memory")}, indent=1))
    if args.out:
        write_json(result, Path(args.out))
    return result


if __name__ == "__main__":
    main()
