"""W2 "efficiency": the forward pass's FLOP/s against one big float32 matmul measured in the same run."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import redshift_jax as rj
from redshift_jax.sweep import engine

from .common import best_of, log, on_all_devices

# How W2 batches networks inside one jitted call: "vmap" (jax.vmap, as the engine did when this was written) or
# "map" (jax.lax.map: one network at a time, plain 2-D matmuls). Keep it equal to what the engine does so that
# `efficiency` describes the package; the other form is measured on a subset and reported for comparison.
W2_FORM = "map"


def matmul_flops(n: int, repeats: int = 5) -> float:
    a = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(2), (n, n), jnp.float32)
    f = jax.jit(jnp.matmul)
    jax.block_until_ready(f(a, b))
    return 2.0 * n ** 3 / best_of(lambda: f(a, b), repeats)


def bench_w2(n_seeds: int, chunk: int, matmul_n: int) -> dict:
    model = rj.MLP(activation="relu", depth=8, width=64)
    sweep = rj.Sweep(model=model, axes={"seed": tuple(range(n_seeds))}, resolution=64, measures=("fourier",))
    base_key = jax.random.key(0)

    def one(numeric, seed):
        return engine.network_images(model, sweep, None, base_key, numeric, seed)[0]

    # "map" is what the engine does: the chunk sharded over every device, networks one after another, each
    # network's forward one unsplit step on CPU (engine.kept_whole).
    step = engine.kept_whole(lambda t: one(*t), jax.default_backend())
    forms = {"vmap": jax.jit(jax.vmap(one)),
             "map": on_all_devices(lambda numeric, seed: jax.lax.map(step, (numeric, seed)))}
    forward = forms[W2_FORM]

    ones = np.ones((chunk,), np.float32)
    numeric = {name: ones for name in model.numeric_axes}
    seeds = [np.arange(c, c + chunk, dtype=np.uint32) for c in range(0, n_seeds, chunk)]
    t0 = time.perf_counter()
    jax.block_until_ready(forward(numeric, seeds[0]))
    compile_s = time.perf_counter() - t0
    ref_before = matmul_flops(matmul_n)
    per_chunk = []
    t0 = time.perf_counter()
    for s in seeds:
        t1 = time.perf_counter()
        jax.block_until_ready(forward(numeric, s))
        per_chunk.append(time.perf_counter() - t1)
    seconds = time.perf_counter() - t0
    ref_after = matmul_flops(matmul_n)
    points = sweep.resolution ** 2
    flops_per_net = 2 * points * sum(fi * fo for fi, fo in model.fan_shapes())
    flops = n_seeds * flops_per_net / seconds
    best_chunk = chunk * flops_per_net / min(per_chunk)
    ref = max(ref_before, ref_after)  # the machine's best matmul rate in this run (conservative)
    # The other batching form, on an eighth of the networks, for comparison (not a target).
    other_name = "map" if W2_FORM == "vmap" else "vmap"
    other = forms[other_name]
    sub = seeds[:max(1, len(seeds) // 8)]
    jax.block_until_ready(other(numeric, sub[0]))
    t0 = time.perf_counter()
    for s in sub:
        jax.block_until_ready(other(numeric, s))
    other_s = time.perf_counter() - t0
    other_eff = len(sub) * chunk * flops_per_net / other_s / max(ref, matmul_flops(matmul_n))
    log(f"W2 {n_seeds} nets in {seconds:.2f} s = {flops / 1e9:.1f} GFLOP/s; matmul {ref_before / 1e9:.1f} / "
        f"{ref_after / 1e9:.1f} GFLOP/s")
    return {
        "networks": n_seeds, "chunk": chunk, "seconds": seconds, "compile_seconds": compile_s,
        "flops_per_network": flops_per_net, "forward_gflops": flops / 1e9,
        "matmul_n": matmul_n, "matmul_gflops_before": ref_before / 1e9, "matmul_gflops_after": ref_after / 1e9,
        "matmul_gflops": ref / 1e9, "efficiency": flops / ref, "efficiency_best_chunk": best_chunk / ref,
        "form": W2_FORM, "other_form": other_name, "other_form_networks": len(sub) * chunk,
        "other_form_efficiency": other_eff,
    }
