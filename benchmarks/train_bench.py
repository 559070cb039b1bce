"""Modular-sum training speed: the vmapped grid against a per-network Python loop, measured in one run.

For each activation (relu, sin) the Figure-8 grid of one activation (3 moduli x 9 prefactors x 8 seeds = 216
networks, the recipe's network and full-batch adam) is trained for ``steps`` steps by ``redshift_jax.train``'s
compiled program (one scan, vmapped over the grid); compile time is measured separately (AOT compile). The
in-run reference trains ``loop_networks`` of the same networks one at a time: one jitted, un-vmapped
per-network training function (same steps) called from a Python loop. Both numbers are ms per network-step.

    .venv/bin/python benchmarks/train_bench.py [--steps 200] [--repeats 3] [--out FILE.json]

Only public ``redshift_jax.train.runner`` names are used (``train_grid``, ``train_single``, ``COMPILE_COUNT``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import numpy as np

from redshift_jax.train import ModularSum, runner


def _bench_activation(activation: str, steps: int, loop_networks: int, repeats: int) -> dict:
    exp = ModularSum(activations=(activation,), steps=steps)
    grid = exp.flat_grid()
    n_nets = len(grid["seed"])
    program = exp.program(activation)
    program.compile_seconds = 0.0  # train_grid adds the time of the compiles it does (AOT, timed apart)
    # The runner keeps compiled programs for the life of the process and offers no public way to drop them, so
    # the compile is measured only when this process has not compiled this program before (COMPILE_COUNT);
    # run_train_bench in a fresh process (as `make bench` and this script's main do) always measures it.
    compiled_before = sum(c for (key, _), c in runner.COMPILE_COUNT.items() if key == program.cache_key)
    t0 = time.perf_counter()
    out = runner.train_grid(program, grid, steps, segment_steps=None)
    first = time.perf_counter() - t0
    compile_s = None if compiled_before else program.compile_seconds

    net = program.net_inputs(grid)
    picks = [int(i) for i in range(0, n_nets, max(1, n_nets // loop_networks))][:loop_networks]
    t0 = time.perf_counter()
    runner.train_single(program, jax.tree.map(lambda a: a[picks[0]], net), steps)  # compile + first run
    loop_compile_s = time.perf_counter() - t0

    # alternate grid and loop timings and keep the best of each: the machine may be shared
    grid_ms, loop_ms = [(first - program.compile_seconds) * 1e3 / (n_nets * steps)], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        runner.train_grid(program, grid, steps, segment_steps=None)
        grid_ms.append(1e3 * (time.perf_counter() - t0) / (n_nets * steps))
        t0 = time.perf_counter()
        for i in picks:
            jax.block_until_ready(runner.train_single(program, jax.tree.map(lambda a, i=i: a[i], net), steps))
        loop_ms.append(1e3 * (time.perf_counter() - t0) / (len(picks) * steps))
    g, lp = min(grid_ms), min(loop_ms)
    return {
        "networks": n_nets,
        "steps": steps,
        "ms_per_network_step": round(g, 4),
        "ms_per_network_step_median": round(float(np.median(grid_ms)), 4),
        "compile_seconds": None if compile_s is None else round(compile_s, 2),
        "loop_networks": len(picks),
        "loop_ms_per_network_step": round(lp, 4),
        "loop_ms_per_network_step_median": round(float(np.median(loop_ms)), 4),
        "loop_compile_seconds": round(loop_compile_s, 2),
        "speedup_vs_loop": round(lp / g, 2),
        "mean_test_accuracy": round(float(out["test_accuracy"].mean()), 3),
    }


def run_train_bench(activations=("relu", "sin"), steps: int = 200, loop_networks: int = 8,
                    repeats: int = 3) -> dict:
    """Time the modular-sum training grid per activation; see the module docstring.

    Returns ``{"backend", "device", "activations": {act: {ms_per_network_step, compile_seconds,
    loop_ms_per_network_step, speedup_vs_loop, ...}}, "target_ms_per_network_step_relu": 0.15,
    "full_grid_projection_seconds"}``. Timings are the best of ``repeats`` alternating runs (medians too),
    so a shared machine's load shows as spread rather than bias. The projection is the 6-activation,
    1,296-training, 3000-step grid at the measured speeds (activations not measured take relu's speed).
    """
    result = {"backend": jax.default_backend(), "device": jax.devices()[0].device_kind, "activations": {}}
    for act in activations:
        result["activations"][act] = _bench_activation(act, steps, loop_networks, repeats)
    acts = result["activations"]
    relu_ms = acts.get("relu", next(iter(acts.values())))["ms_per_network_step"]
    full = ModularSum()
    per_act = len(full.moduli) * len(full.prefactors) * len(full.seeds) * full.steps
    result["full_grid_projection_seconds"] = round(
        sum(acts.get(a, {"ms_per_network_step": relu_ms})["ms_per_network_step"] for a in full.activations)
        * per_act / 1e3, 1)
    result["target_ms_per_network_step_relu"] = 0.15
    return result


def _table(res: dict) -> str:
    rows = [f"modular-sum training on {res['backend']} ({res['device']})",
            f"{'activation':<10} {'nets':>5} {'ms/net-step':>12} {'compile s':>10} {'loop ms/net-step':>17} "
            f"{'speedup':>8}"]
    for act, r in res["activations"].items():
        compile_s = "-" if r["compile_seconds"] is None else f"{r['compile_seconds']:.2f}"
        rows.append(f"{act:<10} {r['networks']:>5} {r['ms_per_network_step']:>12.4f} {compile_s:>10} "
                    f"{r['loop_ms_per_network_step']:>17.4f} {r['speedup_vs_loop']:>8.2f}")
    rows.append(f"full 6-activation grid (1,296 trainings x 3000 steps), projected: "
                f"{res['full_grid_projection_seconds']:.0f} s")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop-networks", type=int, default=8)
    parser.add_argument("--out", default=None, help="write the result dict as JSON here")
    args = parser.parse_args(argv)
    res = run_train_bench(steps=args.steps, loop_networks=args.loop_networks, repeats=args.repeats)
    print(_table(res))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
