"""Local volume (DESIGN.md sections 14 and 21): networks/s of the estimator vmapped over networks in one program,
against tyche's per-network loop, measured interleaved in the same run, and cost evaluations per ray.

Workload: ``MLP(depth=2, width=--width, in_dim=2, activation="tanh", prior="torch")`` on the 16 x 16 lattice, a
scalar logit, the Bernoulli KL cost over the lattice, ``--directions`` rays, epsilon 1e-2, rtol 1e-2, Gaussian
measure (sigma = RMS of the parameters), directions from ``direction_key(w0)``.

- *vmapped*: ``jit(vmap(network_log_volume))`` over a chunk of ``--chunk`` networks (parameters drawn inside from
  ``fold_in(key(0), seed)``), the radius search of every ray of every network in one ``lax.while_loop``: the
  library's default (importance-sampled directions, the secant search in ``(log r, log C)``, ``ceil(rays / 16)``
  rays of each network in flight at a time: ``star_radii``'s ``slots``; ``--slots`` sets another number).
- *vmapped, bisection*: the same program with ``directions="uniform", search="bisect"`` (DESIGN.md section 14's
  estimator): how many cost evaluations the secant search saves, in the same run.
- *loop* (tyche's design): one network at a time, a Python loop over the search's steps (doubling from r = 1,
  then bisection, as tyche does), each step one jitted batched cost evaluation over the rays (``vmap`` over
  directions) with the search state kept on the host in numpy, then the ray integrals (jitted) and the
  log-mean-exp. It computes the uniform-direction estimate, checked against *vmapped, bisection* (the largest
  relative difference is reported).

The two alternate for ``--rounds`` rounds (each round: one vmapped chunk, then ``--loop-networks`` networks of the
loop), so both see the same machine load; compile time is excluded and reported apart. The figure of merit is
the ratio of median networks/s (vmapped default / loop); the target is >= 3x (issue 23: on this CPU each step is
compute-bound, so only fewer steps help). ``cpu_ratio`` is the same ratio in CPU seconds of this process per
network (every thread counted): the wall-time ratio moves with other jobs' load, the CPU-time ratio much less.
Evaluations per ray count every cost evaluation of the radius search (and, for the library, the one at ``w0`` that
checks the network is not broken: 1 / rays per ray).

    .venv/bin/python benchmarks/volume_bench.py [--width 64] [--directions 32] [--chunk 64] [--loop-networks 8]
                                                [--rounds 5] [--start one|warm] [--slots K]
                                                [--out benchmarks/volume_results.json]
"""

from __future__ import annotations

import argparse
import json
import platform
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
from benchmarks.common import write_json  # noqa: E402
from redshift_jax.measures import volume as V  # noqa: E402

EPSILON, RTOL = 1e-2, 1e-2


def make_workload(width: int, directions: int, start: str = "one", slots=None):
    model = rj.MLP(depth=2, width=width, in_dim=2, activation="tanh", prior="torch")
    x = jnp.asarray(rj.grid(16, 2))

    def init(seed):
        return model.init(jax.random.fold_in(jax.random.key(0), seed))

    def vmapped_with(**options):
        @jax.jit
        def run(seeds):
            def one(seed):
                est = V.network_log_volume(model, init(seed), x, n_directions=directions, epsilon=EPSILON,
                                           rtol=RTOL, **options)
                return est.log_volume, est.steps
            return jax.vmap(one)(seeds)
        return run

    vmapped, vmapped_bisect = vmapped_with(start=start), vmapped_with(directions="uniform", search="bisect")

    @jax.jit
    def prepare(seed):
        """One network's flat parameters, its rays and their offsets u.w0 (what tyche sets up per network)."""
        cost_fn, w0 = V.network_cost(model, init(seed), x, "kl")
        u = V.random_directions(V.direction_key(w0), directions, w0.shape[0])
        return w0, u

    @jax.jit
    def costs(seed, w0, u, r):
        cost_fn, _ = V.network_cost(model, init(seed), x, "kl")
        return jax.vmap(lambda rr, uu: cost_fn(w0 + rr * uu))(r, u)

    @jax.jit
    def finish(w0, u, r):
        dim = w0.shape[0]
        sigma = jnp.sqrt(jnp.sum(w0 * w0) / dim)
        logs = V.gaussian_log_mass(r / sigma, u @ w0 / sigma, jnp.float32(dim), dim)
        return jax.nn.logsumexp(logs) - jnp.log(jnp.float32(u.shape[0]))

    def loop_one(seed):
        """tyche's design: the search state on the host, one batched cost evaluation per step."""
        seed = np.uint32(seed)
        w0, u = prepare(seed)
        n = u.shape[0]
        lo, hi, r = np.zeros(n, np.float32), np.full(n, np.inf, np.float32), np.ones(n, np.float32)
        done = np.zeros(n, bool)
        evaluations = 0
        for _ in range(V.MAX_STEPS):
            c = np.asarray(costs(seed, w0, u, jnp.asarray(r)))
            c = np.where(np.isnan(c), np.inf, c)
            close = np.abs(c - np.float32(EPSILON)) <= np.float32(RTOL) * np.float32(EPSILON)
            below = c < np.float32(EPSILON)
            active = ~done
            evaluations += int(active.sum())
            new_lo, new_hi = np.where(below, r, lo), np.where(below, hi, r)
            with np.errstate(invalid="ignore"):
                next_r = np.where(np.isfinite(new_hi), (new_lo + new_hi) / np.float32(2), 2 * r).astype(np.float32)
            lo, hi = np.where(active, new_lo, lo), np.where(active, new_hi, hi)
            r = np.where(active & ~close, next_r, r)
            done |= close
            if done.all():
                break
        radius = np.where(done, r, np.where(np.isfinite(hi), (lo + hi) / 2, np.inf)).astype(np.float32)
        return float(finish(w0, u, jnp.asarray(radius))), evaluations / n

    return model, vmapped, vmapped_bisect, loop_one


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--directions", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=64, help="networks per vmapped call")
    parser.add_argument("--loop-networks", type=int, default=8, help="networks of the loop per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--start", default="one", choices=("one", "warm"),
                        help="the vmapped default's radius search start (log_volume's start)")
    parser.add_argument("--slots", type=int, default=None,
                        help="rays of each network searched at a time (default: the library's, ceil(rays / 16))")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    model, vmapped, vmapped_bisect, loop_one = make_workload(args.width, args.directions, args.start, args.slots)
    t0 = time.perf_counter()
    first = np.asarray(vmapped(jnp.arange(args.chunk, dtype=jnp.uint32))[0])
    compile_vmapped = time.perf_counter() - t0
    vmapped_bisect(jnp.arange(args.chunk, dtype=jnp.uint32))
    t0 = time.perf_counter()
    loop_one(0)
    compile_loop = time.perf_counter() - t0

    vm_rates, bisect_rates, loop_rates, diffs = [], [], [], []
    vm_cpu, loop_cpu = [], []   # CPU seconds of this process per network (all threads): less sensitive to load
    steps = {"vmapped": [], "vmapped_bisect": [], "loop": []}
    for rnd in range(args.rounds):
        seeds = jnp.arange((rnd + 1) * args.chunk, (rnd + 2) * args.chunk, dtype=jnp.uint32)
        t0, c0 = time.perf_counter(), time.process_time()
        _, used = jax.block_until_ready(vmapped(seeds))
        vm_rates.append(args.chunk / (time.perf_counter() - t0))
        vm_cpu.append((time.process_time() - c0) / args.chunk)
        steps["vmapped"].append(float(np.mean(used)) + 1 / args.directions)
        t0 = time.perf_counter()
        got, used = jax.block_until_ready(vmapped_bisect(seeds))
        bisect_rates.append(args.chunk / (time.perf_counter() - t0))
        steps["vmapped_bisect"].append(float(np.mean(used)) + 1 / args.directions)
        loop_seeds = np.asarray(seeds)[:args.loop_networks]
        t0, c0 = time.perf_counter(), time.process_time()
        ref = [loop_one(s) for s in loop_seeds]
        loop_rates.append(args.loop_networks / (time.perf_counter() - t0))
        loop_cpu.append((time.process_time() - c0) / args.loop_networks)
        steps["loop"].append(float(np.mean([r[1] for r in ref])))
        ref = np.array([r[0] for r in ref])
        diffs.append(float(np.max(np.abs(ref - np.asarray(got)[:args.loop_networks]) / np.abs(ref))))
        print(f"round {rnd}: vmapped {vm_rates[-1]:.1f} networks/s ({steps['vmapped'][-1]:.2f} evaluations/ray), "
              f"bisection {bisect_rates[-1]:.1f} ({steps['vmapped_bisect'][-1]:.2f}), loop {loop_rates[-1]:.2f} "
              f"({steps['loop'][-1]:.2f})", file=sys.stderr)

    params = sum(int(np.prod(leaf.shape)) for leaf in
                 jax.tree.leaves(jax.eval_shape(model.init, jax.random.key(0))))
    result = {
        "benchmark": "volume", "date": time.strftime("%Y-%m-%d"),
        "workload": {"model": f"MLP(depth=2, width={args.width}, in_dim=2, tanh, torch prior)", "parameters": params,
                     "inputs": "16 x 16 lattice", "cost": "kl (Bernoulli)", "directions": args.directions,
                     "epsilon": EPSILON, "rtol": RTOL, "measure": "gaussian"},
        "start": args.start, "slots": args.slots or -(-args.directions // V.SLOT_SHARE), "chunk": args.chunk,
        "loop_networks_per_round": args.loop_networks, "rounds": args.rounds,
        "vmapped_networks_per_s": float(np.median(vm_rates)), "loop_networks_per_s": float(np.median(loop_rates)),
        "vmapped_bisect_networks_per_s": float(np.median(bisect_rates)),
        "vmapped_rates": vm_rates, "vmapped_bisect_rates": bisect_rates, "loop_rates": loop_rates,
        "evaluations_per_ray": {k: float(np.mean(v)) for k, v in steps.items()},
        "ratio": float(np.median(vm_rates) / np.median(loop_rates)),
        "cpu_seconds_per_network": {"vmapped": float(np.median(vm_cpu)), "loop": float(np.median(loop_cpu))},
        "cpu_ratio": float(np.median(loop_cpu) / np.median(vm_cpu)),
        "ratio_bisect": float(np.median(bisect_rates) / np.median(loop_rates)),
        "max_relative_difference": float(max(diffs)), "compile_seconds": {"vmapped": round(compile_vmapped, 2),
                                                                          "loop_first_network": round(compile_loop, 2)},
        "first_chunk_mean_log_volume": float(first.mean()),
        "devices": [str(d) for d in jax.devices()], "jax": jax.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "target_ratio": 3.0,
        "load_average_at_end": list(__import__("os").getloadavg()),
    }
    print(json.dumps({k: result[k] for k in ("vmapped_networks_per_s", "vmapped_bisect_networks_per_s",
                                             "loop_networks_per_s", "ratio", "cpu_ratio", "ratio_bisect",
                                             "evaluations_per_ray",
                                             "max_relative_difference")}, indent=1))
    if args.out:
        write_json(result, Path(args.out))
    return result


if __name__ == "__main__":
    main()
