"""The bound: the least time W1 could take on this machine, and the loop ratio that would give."""

from __future__ import annotations

import jax
import jax.numpy as jnp

import redshift_jax as rj
from redshift_jax.sweep import engine

from .common import best_of, log


def activation_seconds_per_element(name: str, points: int, width: int, n_iter: int = 100) -> float:
    """One hidden layer's elementwise pass, ``phi(prefactor * z + b)`` over a (points, width) array kept in
    cache, on one device as one unsplit step (as the engine runs it): seconds per element, best of 5."""
    phi = rj.ACTIVATIONS[name]
    z = jax.random.normal(jax.random.key(3), (points, width), jnp.float32)

    def body(_, a):
        return phi(1.3 * a + 0.1) * 0.7  # each pass depends on the last; values stay bounded for every phi

    f = jax.jit(engine.kept_whole(lambda a: jax.lax.fori_loop(0, n_iter, body, a), jax.default_backend()))
    jax.block_until_ready(f(z))
    return best_of(lambda: f(z), 5) / (n_iter * z.size)


def bench_bound(sweep: rj.Sweep, matmul_gflops: float, w1_warm: float, loop_nps: float) -> dict:
    """W1's time if it did nothing but its unavoidable work at this machine's best rates: every trunk's matmuls
    (first layer, hidden layers, a readout per depth) at the in-run 2048^3 matmul rate on all cores, plus one
    activation pass per hidden layer at the cost measured above, spread over every device. Init, measures,
    bias adds and bookkeeping count as free, so W1 cannot beat it. W1 networks/s at the bound over the loop's
    networks/s is the largest baseline_speedup this machine allows with the loop as measured."""
    n_dev = len(jax.local_devices())
    depth = max(sweep.axes["depth"])
    model = sweep.model.replace(depth=depth)
    points, width = sweep.resolution ** 2, model.width
    n_acts, n_depths = len(sweep.axes["activation"]), len(sweep.axes["depth"])
    trunks = sweep.num_networks // n_depths  # one trunk per (activation, scale, seed) gives every depth
    flops_trunk = 2 * points * (sum(fi * fo for fi, fo in model.fan_shapes()) + (n_depths - 1) * width)
    per_elem = {a: activation_seconds_per_element(a, points, width) for a in sweep.axes["activation"]}
    act_s = sum(trunks / n_acts * depth * points * width * c / n_dev for c in per_elem.values())
    matmul_s = trunks * flops_trunk / (matmul_gflops * 1e9)
    bound = matmul_s + act_s
    ceiling = sweep.num_networks / bound / loop_nps
    log(f"bound: matmuls {matmul_s:.2f} s + activations {act_s:.2f} s = {bound:.2f} s; W1 {w1_warm:.2f} s; "
        f"loop ratio at the bound {ceiling:.1f}x")
    return {
        "seconds": bound, "matmul_seconds": matmul_s, "activation_seconds": act_s,
        "activation_ns_per_element": {a: c * 1e9 for a, c in per_elem.items()},
        "matmul_gflops": matmul_gflops, "w1_fraction_of_bound": bound / w1_warm,
        "speedup_ceiling": ceiling,
        "w1_seconds_for_10x": sweep.num_networks / (10.0 * loop_nps),
    }
