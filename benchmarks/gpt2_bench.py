"""GPT-2 greedy sequences (DESIGN.md section 13): sequences/s of the common-random-numbers engine against the
paper-literal loop (fresh weights, one sequence per call), on the LAPTOP model, in one run.

- **engine**: ``run_sweep`` on the LAPTOP sweep's cells (6 activations x 7 gains x depths 1, 3, 6, 12) for
  ``--seeds`` seeds: each seed's 168 sequences decode as one batch per depth, sharded over every local device (one
  CPU device per core). Timed: the sweep's ``run_seconds`` (compile excluded, reported apart).
- **loop**: the paper's procedure, one jitted call per sequence that draws fresh weights and a prompt and decodes
  100 tokens (``GPT2.init`` + ``generate``; one compile per depth, the activation a scalar ``lax.switch``), called
  from Python over cells cycling through every (activation, gain, depth). XLA may use both cores inside a call.

The two run interleaved, ``--repeats`` times each; the medians' ratio is the figure of merit (target >= 10x).

    .venv/bin/python benchmarks/gpt2_bench.py [--seeds 2] [--loop 48] [--repeats 2] [--out benchmarks/gpt2_results.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import runpy
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import numpy as np  # noqa: E402

import redshift_jax as rj  # noqa: E402  (sets one CPU device per core before JAX starts)
from benchmarks.common import write_json  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="seeds per engine pass (168 sequences each)")
    parser.add_argument("--loop", type=int, default=48, help="sequences per loop pass")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    laptop = runpy.run_path(str(ROOT / "sweeps" / "fig10_gpt2.py"))["LAPTOP"]
    n_dev = len(jax.local_devices())
    sweeps = [laptop.with_axis("seed", list(range(r * args.seeds, (r + 1) * args.seeds)))
              for r in range(args.repeats + 1)]
    model = laptop.model
    activations = laptop.axes["activation"]
    switched, branch = model.switched(activations)
    loop_fns = {}

    def fresh_one(depth):
        sub = switched.replace(depth=depth)

        @jax.jit
        def one(seed, gain, index):
            key = jax.random.fold_in(jax.random.key(123), seed)
            return sub.generate(sub.init(key), sub.prompt(key), gain, n_new=laptop.n_new, **branch(index))

        return one

    cells = list(itertools.product(range(len(activations)), laptop.axes["ln_gain"], laptop.axes["depth"]))
    t0 = time.perf_counter()
    for depth in laptop.axes["depth"]:
        loop_fns[depth] = fresh_one(depth)
        loop_fns[depth](np.uint32(0), np.float32(1.0), np.int32(0)).block_until_ready()
    loop_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = rj.run_sweep(sweeps[0], progress=False)
    engine_first = time.perf_counter() - t0

    engine_rates, loop_rates = [], []
    for r in range(args.repeats):
        ds = rj.run_sweep(sweeps[r + 1], progress=False)
        engine_rates.append(ds.sizes["seed"] * 168 / ds.attrs["run_seconds"])
        start = r * args.loop
        t0 = time.perf_counter()
        for i in range(start, start + args.loop):
            index, gain, depth = cells[i % len(cells)]
            loop_fns[depth](np.uint32(i), np.float32(gain), np.int32(index)).block_until_ready()
        loop_rates.append(args.loop / (time.perf_counter() - t0))
        print(f"pass {r}: engine {engine_rates[-1]:.2f} seq/s, loop {loop_rates[-1]:.2f} seq/s", flush=True)
    engine, loop = statistics.median(engine_rates), statistics.median(loop_rates)
    result = {
        "date": time.strftime("%Y-%m-%d"), "backend": jax.default_backend(), "devices": n_dev,
        "model": {"d_model": model.d_model, "n_heads": model.n_heads, "vocab": model.vocab, "n_new": laptop.n_new},
        "cells_per_seed": 168, "engine_seeds_per_pass": args.seeds, "loop_sequences_per_pass": args.loop,
        "engine_seq_per_s": engine_rates, "loop_seq_per_s": loop_rates,
        "engine_median": engine, "loop_median": loop, "ratio": engine / loop,
        "engine_first_call_s_incl_compile": engine_first, "loop_compile_s": loop_compile,
        "laptop_sweep_estimate_min": laptop.num_networks / engine / 60,
        "first_pass_lz_mean": float(warm["lz_per_token"].mean()),
    }
    print(json.dumps({k: result[k] for k in ("engine_median", "loop_median", "ratio", "laptop_sweep_estimate_min")}))
    if args.out:
        write_json(result, Path(args.out))
    return result


if __name__ == "__main__":
    main()
