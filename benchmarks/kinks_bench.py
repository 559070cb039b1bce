"""Exact 1-D kink counts at width 1000 (DESIGN.md sections 8 and 15): networks/s of ``redshift_jax.measures.kinks``
against a per-network numpy implementation measured in the same run.

Workload: one hidden ReLU layer, width 1000, 1-D input, ``prior="uniform"`` (W, b ~ U(-1, 1)), kinks counted on
[-1, 1] (about 500 per network). Parameters are drawn on the devices chunk by chunk (``MLP.init`` vmapped, keys
``fold_in(key(0), seed)``); the timed figure is ``count_1d_many`` on chunks already in memory, split over every local
device (one CPU device per core) with ``shard_map``, compile excluded (reported apart). Also reported: the rate with the
parameter draw included, and the numpy reference (a Python loop over networks: ``-b/w``, ``np.unique`` to group
equal positions, summed slope changes) on a subset, whose counts must agree with the JAX ones.

    .venv/bin/python benchmarks/kinks_bench.py [--networks 100000] [--chunk 10000] [--numpy-networks 2000]
                                               [--out benchmarks/kinks_results.json]

Target (section 15): 10^5 networks in seconds on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

import redshift_jax as rj  # noqa: E402  (sets one CPU device per core before JAX starts)
from benchmarks.common import write_json  # noqa: E402
from redshift_jax.devices import device_mesh  # noqa: E402
from redshift_jax.measures.kinks import SLOPE_RTOL  # noqa: E402

WIDTH = 1000


def numpy_count(w, b, v, lo=-1.0, hi=1.0, prefactor=1.0) -> int:
    """One network's kink count, the reference semantics in plain numpy (float32 positions, float64 sums)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-b / w).astype(np.float32)
    delta = np.abs(prefactor * w.astype(np.float64)) * v
    valid = (w != 0) & (t > lo) & (t < hi) & (delta != 0)
    t, delta = t[valid] + np.float32(0.0), delta[valid]          # + 0: -0 and +0 are one position
    _, cluster = np.unique(t, return_inverse=True)
    total = np.bincount(cluster, weights=delta)
    size = np.bincount(cluster, weights=np.abs(delta))
    return int(np.sum(np.abs(total) > SLOPE_RTOL * size))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--numpy-networks", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over all chunks (best is reported)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    spec = rj.MLP(in_dim=1, depth=1, width=WIDTH, prior="uniform")
    mesh = device_mesh()
    n_dev = mesh.devices.size
    chunk = -(-args.chunk // n_dev) * n_dev
    n_chunks = -(-args.networks // chunk)
    sharded = NamedSharding(mesh, PartitionSpec("net"))

    def local_draw(seeds):
        keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(0), seeds)
        return jax.vmap(spec.init)(keys)

    net = PartitionSpec("net")
    draw = jax.jit(jax.shard_map(local_draw, mesh=mesh, in_specs=net, out_specs=net))
    count = jax.jit(jax.shard_map(lambda q: rj.kinks.count_1d_many(spec, q), mesh=mesh, in_specs=net,
                                  out_specs=net))

    def seeds_of(i):
        return jax.device_put(np.arange(i * chunk, (i + 1) * chunk, dtype=np.uint32), sharded)

    t0 = time.perf_counter()
    first = draw(seeds_of(0))
    jax.block_until_ready(count(first))
    compile_s = time.perf_counter() - t0

    chunks = [draw(seeds_of(i)) for i in range(n_chunks)]
    jax.block_until_ready(chunks)
    # numpy reference, one network at a time, on the first networks of the same draw
    sub = jax.tree.map(np.asarray, chunks[0])
    m = min(args.numpy_networks, chunk)
    w, b, v = sub["first"]["W"][:m, 0], sub["first"]["b"][:m], sub["readout"]["W"][:m, :, 0].astype(np.float64)
    # interleaved passes (best of each), so both rates see the same machine load
    best, numpy_s, counts, ref = float("inf"), float("inf"), None, None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = [count(c) for c in chunks]
        jax.block_until_ready(out)
        best = min(best, time.perf_counter() - t0)
        counts = np.concatenate([np.asarray(o) for o in out])[: args.networks]
        t0 = time.perf_counter()
        ref = np.array([numpy_count(w[i], b[i], v[i]) for i in range(m)])
        numpy_s = min(numpy_s, time.perf_counter() - t0)
    agree = bool(np.array_equal(ref, counts[:m]))
    del chunks
    t0 = time.perf_counter()
    out = [count(draw(seeds_of(i))) for i in range(n_chunks)]
    jax.block_until_ready(out)
    with_draw = time.perf_counter() - t0
    total = n_chunks * chunk

    result = {
        "workload": f"exact 1-D kink counts, one hidden ReLU layer, width {WIDTH}, prior uniform, [-1, 1]",
        "networks": int(total), "chunk": int(chunk), "devices": int(n_dev), "backend": jax.default_backend(),
        "compile_and_first_chunk_s": round(compile_s, 3),
        "count_seconds": round(best, 3), "count_networks_per_s": round(total / best, 1),
        "with_draw_seconds": round(with_draw, 3), "with_draw_networks_per_s": round(total / with_draw, 1),
        "mean_kinks": round(float(np.mean(counts)), 3), "nan_counts": int(np.isnan(counts).sum()),
        "numpy_networks": int(m), "numpy_seconds": round(numpy_s, 3), "numpy_networks_per_s": round(m / numpy_s, 1),
        "speedup_vs_numpy": round((total / best) / (m / numpy_s), 1), "numpy_agrees": agree,
        "target": "10^5 networks in seconds on the 2-core CPU",
    }
    print(f"kinks (width {WIDTH}, {total} networks, {n_dev} devices): {best:.2f} s = {total / best:,.0f} networks/s "
          f"(with parameter draw {with_draw:.2f} s = {total / with_draw:,.0f}/s; compile + first chunk "
          f"{compile_s:.2f} s)")
    print(f"numpy per-network loop: {m / numpy_s:,.0f} networks/s -> speedup {result['speedup_vs_numpy']}x; "
          f"counts agree: {agree}; mean kinks {result['mean_kinks']} (closed form {WIDTH / 2})")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(result, Path(args.out))
    return result


if __name__ == "__main__":
    main()
