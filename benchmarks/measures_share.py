"""The measures' (and the forward pass's) share of warm W1, on a representative sample of W1's images."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import redshift_jax as rj
from redshift_jax.sweep import engine

from .common import best_of, log, on_all_devices
from .workloads import W1_MEASURES

# The seam-free Fourier and energy-weighted polynomial variants (DESIGN.md section 20), timed beside W1's measures.
NEW_VARIANTS = ("fourier_dct", "fourier_mirror", "chebyshev_energy", "legendre_energy")


def switched_forward(sweep: rj.Sweep):
    """``forward(numeric, seed, act_index)``: networks -> images of every depth, sharded over every device with
    lax.map inside each shard and the activation chosen by the model's switch (``model.switched``), as the
    engine runs them."""
    depth = max(sweep.axes["depth"])
    model, branch = sweep.model.replace(depth=depth).switched(tuple(sweep.axes["activation"]))
    depth_rows = tuple(int(d) - 1 for d in sweep.axes["depth"])
    base_key = jax.random.key(sweep.base_seed)

    def forward(numeric, seed, act_index):
        branch_kwargs = branch(act_index)

        def one(args):
            values, s = args
            return engine.network_images(model, sweep, depth_rows, base_key, values, s,
                                         branch_kwargs=branch_kwargs)[0]

        # one network after another (a vmapped batch is 1.5-2x slower on CPU), each one unsplit step on CPU
        return jax.lax.map(engine.kept_whole(one, jax.default_backend()), (numeric, seed))
    return on_all_devices(forward, n_replicated=1)


def bench_measures(sweep: rj.Sweep, sample_networks: int, w1_warm: float, repeats: int = 2) -> dict:
    grid = sweep.numeric_grid()
    names = tuple(sweep.model.numeric_axes)
    per_variant = len(grid["seed"])
    n_act = len(sweep.axes["activation"])
    n_depths = len(sweep.axes["depth"])
    forward = switched_forward(sweep)
    # Networks spread over activations, scales and seeds: the same number per activation, evenly spaced over
    # the (weight_scale-major, seed-minor) numeric grid and offset per activation.
    n_dev = len(jax.local_devices())
    k = max(1, -(-sample_networks // n_act))
    k = -(-k // n_dev) * n_dev  # whole shards: the same number of networks on every device
    picks = {a: [int((i + a) % per_variant) for i in np.linspace(0, per_variant - 1, min(k, per_variant)).round()]
             for a in range(n_act)}
    chunks = []
    fwd_seconds = 0.0
    for a, idx in picks.items():
        if not idx:
            continue
        idx = np.resize(np.asarray(idx), k)  # a repeat or two when the grid has fewer than k networks
        args = ({n: grid[n][idx] for n in names}, grid["seed"][idx], np.int32(a))
        out = np.asarray(forward(*args))  # compile (first activation) / warm
        fwd_seconds += best_of(lambda: forward(*args), repeats)
        chunks.append(out.reshape((-1, sweep.resolution, sweep.resolution)))
    images = jnp.asarray(np.concatenate(chunks))
    n_img = images.shape[0]
    scale = sweep.num_networks / n_img

    def timed(measures, repeats):
        sub = sweep.replace(measures=tuple(measures))
        fn = on_all_devices(lambda imgs: engine.measure_images(sub, imgs))
        t0 = time.perf_counter()
        jax.block_until_ready(fn(images))
        compile_s = time.perf_counter() - t0
        return best_of(lambda: fn(images), repeats), compile_s

    all_s, all_compile = timed(W1_MEASURES, repeats)
    per = {}
    for m in W1_MEASURES:
        s, c = timed((m,), 1)
        per[m] = {"sample_seconds": s, "w1_seconds_projected": s * scale, "compile_seconds": c}
    # DESIGN.md section 20's variants against fourier nrs on the same images, alternating (best of 3 each), so
    # the ratio holds on a loaded machine. Target: each within 1.5x of fourier nrs.
    variants = {}
    reference = ("fourier",)
    best = {m: float("inf") for m in reference + NEW_VARIANTS}
    for _ in range(3):
        for m in reference + NEW_VARIANTS:
            s, _c = timed((m,), 1)
            best[m] = min(best[m], s)
    for m in NEW_VARIANTS:
        variants[m] = {"sample_seconds": best[m], "w1_seconds_projected": best[m] * scale,
                       "ratio_to_fourier_nrs": best[m] / best["fourier"]}
    log("new variants / fourier nrs: " + ", ".join(f"{m} {v['ratio_to_fourier_nrs']:.2f}x"
                                                   for m, v in variants.items()))
    measures_w1 = all_s * scale
    forward_w1 = fwd_seconds * scale
    log(f"measures: {n_img} images in {all_s:.2f} s -> {measures_w1:.1f} s for W1; forward {forward_w1:.1f} s")
    return {
        "sample_images": int(n_img), "sample_networks": int(n_img // n_depths),
        "sample_seconds": all_s, "seconds_projected": measures_w1, "compile_seconds": all_compile,
        "share": measures_w1 / w1_warm, "per_measure": per, "new_variants": variants,
        "fourier_nrs_sample_seconds": best["fourier"],
        "forward_sample_seconds": fwd_seconds, "forward_seconds_projected": forward_w1,
        "forward_share": forward_w1 / w1_warm,
        "method": (f"jit(engine.measure_images) on {n_img} images of {n_img // n_depths} W1 networks (all "
                   f"activations, scales, seeds; every depth), best of {repeats}, x{scale:.2f} to "
                   f"{sweep.num_networks} images, / warm W1 wall time (sample split over {n_dev} devices, as "
                   "the engine splits a chunk)"),
    }
