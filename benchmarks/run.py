"""`make bench`: the redshift_jax performance table (DESIGN.md section 8), every figure against an in-run reference.

Workloads (see benchmarks/README.md):
  W1 "heatmaps"  7 activations x depth 1..10 x 15 weight scales x 16 seeds = 16,800 networks, width 64,
                 64 x 64 grid, measures fourier + chebyshev + lz (lz78). Run cold (compile included), then warm.
  measures       the three measures alone on a representative sample of W1's images (one image per network
                 and depth), scaled to 16,800 images, as a share of warm W1.
  W2 "efficiency" relu, depth 8, width 64, 64 x 64 grid, 4,096 seeds, no measures: forward FLOP/s divided by
                 the FLOP/s of one 2048^3 float32 jnp.matmul measured in the same run.
  baseline       the same per-network computation (init + apply + 3 measures, jitted for ONE network) called
                 from a Python loop over a subset of W1; W1 networks/s divided by the loop's networks/s.
  scaling        relu depth 2 width 64, fourier only, 10^2 .. 10^5 networks, each in a fresh subprocess.

    .venv/bin/python benchmarks/run.py [--quick] [--skip-train] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run from anywhere without installing
    sys.path.insert(0, str(ROOT))

from redshift_jax.devices import device_mesh, use_all_cpu_cores  # noqa: E402

use_all_cpu_cores()  # as the CLI does: one CPU device per core, before JAX starts

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import redshift_jax as rj  # noqa: E402
from redshift_jax.sweep import engine  # noqa: E402

ACTIVATIONS = ("relu", "gelu", "swish", "selu", "tanh", "gaussian", "sin")
# How W2 batches networks inside one jitted call: "vmap" (jax.vmap, as the engine did when this was written) or
# "map" (jax.lax.map: one network at a time, plain 2-D matmuls). Keep it equal to what the engine does so that
# `efficiency` describes the package; the other form is measured on a subset and reported for comparison.
W2_FORM = "map"
W1_MEASURES = ("fourier", "chebyshev", "lz")

TARGETS = {  # name: (comparison, threshold, printed target)
    "w1_seconds": ("<=", 15.0, "<= 15 s"),
    "w1_compile_seconds": ("<=", 20.0, "<= 20 s"),
    "baseline_speedup": (">=", 10.0, ">= 10x"),
    "efficiency": (">=", 0.4, ">= 0.4"),
    "peak_rss_gb": ("<", 4.0, "< 4 GB"),
    "measures_share": ("<=", 0.25, "<= 0.25"),
}


# ------------------------------------------------------------------------------------------------------------
# Sizes

def sizes(quick: bool) -> dict:
    if quick:
        return dict(
            activations=("relu", "tanh"), depths=tuple(range(1, 4)), scales=np.geomspace(1, 50, 3), seeds=2,
            sample_networks=12, w2_seeds=256, w2_chunk=128, matmul_n=512,
            baseline_combos=4, baseline_per_combo=3, scaling=(100, 1000), scaling_limit_s=60.0,
        )
    return dict(
        activations=ACTIVATIONS, depths=tuple(range(1, 11)), scales=np.geomspace(1, 50, 15), seeds=16,
        sample_networks=240, w2_seeds=4096, w2_chunk=256, matmul_n=2048,
        baseline_combos=14, baseline_per_combo=120, scaling=(100, 1_000, 10_000, 100_000), scaling_limit_s=180.0,
    )


def w1_sweep(sz: dict) -> rj.Sweep:
    return rj.Sweep(
        model=rj.MLP(width=64),
        axes={"activation": sz["activations"], "depth": sz["depths"], "weight_scale": sz["scales"],
              "seed": tuple(range(sz["seeds"]))},
        resolution=64, measures=W1_MEASURES, name="bench-w1")


# ------------------------------------------------------------------------------------------------------------
# Helpers

def rss_gb() -> float:
    """This process's peak resident memory (GB): ``VmHWM`` of /proc/self/status where there is one.

    Not ``ru_maxrss`` on Linux: a child keeps the parent's resident size at fork in its ``ru_maxrss`` across
    exec, so every scaling subprocess would report at least the main process's peak (1.6 GB at every size in
    the runs before this was found), hiding its own. ``VmHWM`` belongs to the exec'd program's memory alone.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e9  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9  # bytes on macOS, kB elsewhere


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = round(int(line.split()[1]) * 1024 / 1e9, 1)
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    import jaxlib

    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rev = None
    dev = jax.devices()[0]
    return {
        "cpu": cpu, "cores": cores, "ram_gb": ram_gb, "platform": platform.platform(),
        "python": platform.python_version(), "jax": jax.__version__, "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(), "device_kind": dev.device_kind, "device_count": jax.device_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "git_revision": rev,
    }


# ------------------------------------------------------------------------------------------------------------
# W1

def bench_w1(sweep: rj.Sweep, after_cold=None, between=None, warm_runs: int = 3) -> dict:
    """W1 cold, ``after_cold()``, then ``warm_runs`` warm runs with ``between()`` after each (the baseline's
    passes, interleaved so that drift in this shared machine's speed over the minutes of the bench moves both
    sides of the ratio alike)."""
    n = sweep.num_networks
    c0, t0 = cpu_seconds(), time.perf_counter()
    ds = rj.run_sweep(sweep, progress=False)
    cold = time.perf_counter() - t0
    cold_cpu = cpu_seconds() - c0
    cold_attrs = {k: ds.attrs.get(k) for k in ("chunk_size", "compile_wait_seconds", "run_seconds")}
    log(f"W1 cold {cold:.1f} s {cold_attrs}")
    if after_cold is not None:
        after_cold()
    runs = []
    for _ in range(warm_runs):
        c1, t1 = cpu_seconds(), time.perf_counter()
        ds = rj.run_sweep(sweep, progress=False)
        t2, c2 = time.perf_counter(), cpu_seconds()
        attrs = {k: ds.attrs.get(k) for k in ("chunk_size", "compile_wait_seconds", "run_seconds",
                                              "compiled_chunk_bytes")}
        runs.append((t2 - t1, (c2 - c1) / (t2 - t1), attrs))
        log(f"W1 warm {t2 - t1:.2f} s {attrs}")
        if between is not None:
            between()
    warm, warm_util, attrs = min(runs, key=lambda r: r[0])  # the best warm run (the baseline: its best pass)
    finite = float(np.asarray(ds["finite"]).mean())
    # Compile = the cold run's time outside its chunk calls minus the warm run's: cold - warm would also count
    # any change in machine load between the two runs as compile time (seen: 32 s vs 14 s of compile wait).
    compile_s = (cold - cold_attrs["run_seconds"]) - (warm - attrs["run_seconds"])
    return {
        "networks": n, "cold_seconds": cold, "warm_seconds": warm, "compile_seconds": compile_s,
        "cold_minus_warm_seconds": cold - warm, "warm_runs_seconds": [r[0] for r in runs],
        "networks_per_second": n / warm, "cold_attrs": cold_attrs, "warm_attrs": attrs,
        "warm_cpu_utilization": warm_util, "cold_cpu_utilization": cold_cpu / cold,
        "finite_fraction": finite,
    }


# ------------------------------------------------------------------------------------------------------------
# Measures share (and forward share) on a representative sample of W1's images

def _on_all_devices(fn, n_replicated: int = 0):
    """jit(fn) with its leading array arguments split over every local device along their first axis, as the
    engine runs a chunk (jax.shard_map); the last ``n_replicated`` arguments go to every device whole."""
    from jax.sharding import PartitionSpec

    def wrapped(*args):
        n_split = len(args) - n_replicated
        specs = (PartitionSpec("net"),) * n_split + (PartitionSpec(),) * n_replicated
        return jax.shard_map(fn, mesh=device_mesh(), in_specs=specs, out_specs=PartitionSpec("net"),
                             check_vma=False)(*args)
    return jax.jit(wrapped)


def _switched_forward(sweep: rj.Sweep):
    """Networks -> images of every depth, sharded over every device with lax.map inside each shard and the
    activation chosen by lax.switch, as the engine runs them."""
    model = sweep.model.replace(depth=max(sweep.axes["depth"]), activation=sweep.axes["activation"][0])
    depth_rows = tuple(int(d) - 1 for d in sweep.axes["depth"])
    branches = [rj.ACTIVATIONS[a] for a in sweep.axes["activation"]]
    base_key = jax.random.key(sweep.base_seed)

    def forward(ws, bs, pf, seed, act_index):
        def phi(z):
            return jax.lax.switch(act_index, branches, z)

        def one(a):
            return engine.network_images(model, sweep, depth_rows, base_key, *a, activation_fn=phi)

        # one network after another (a vmapped batch is 1.5-2x slower on CPU), each one unsplit step on CPU
        return jax.lax.map(engine._kept_whole(one, jax.default_backend()), (ws, bs, pf, seed))
    return _on_all_devices(forward, n_replicated=1)


def bench_measures(sweep: rj.Sweep, sample_networks: int, w1_warm: float, repeats: int = 2) -> dict:
    grid = sweep.numeric_grid()
    per_variant = len(grid["seed"])
    n_act = len(sweep.axes["activation"])
    n_depths = len(sweep.axes["depth"])
    forward = _switched_forward(sweep)
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
        args = (grid["weight_scale"][idx], grid["bias_scale"][idx], grid["prefactor"][idx], grid["seed"][idx],
                np.int32(a))
        out = np.asarray(forward(*args))  # compile (first activation) / warm
        fwd_seconds += best_of(lambda: forward(*args), repeats)
        chunks.append(out.reshape((-1, sweep.resolution, sweep.resolution)))
    images = jnp.asarray(np.concatenate(chunks))
    n_img = images.shape[0]
    scale = (sweep.num_networks) / n_img

    def timed(names, repeats):
        sub = sweep.replace(measures=tuple(names))
        fn = _on_all_devices(lambda imgs: engine.measure_images(sub, imgs))
        t0 = time.perf_counter()
        jax.block_until_ready(fn(images))
        compile_s = time.perf_counter() - t0
        return best_of(lambda: fn(images), repeats), compile_s

    all_s, all_compile = timed(W1_MEASURES, repeats)
    per = {}
    for m in W1_MEASURES:
        s, c = timed((m,), 1)
        per[m] = {"sample_seconds": s, "w1_seconds_projected": s * scale, "compile_seconds": c}
    measures_w1 = all_s * scale
    forward_w1 = fwd_seconds * scale
    log(f"measures: {n_img} images in {all_s:.2f} s -> {measures_w1:.1f} s for W1; forward {forward_w1:.1f} s")
    return {
        "sample_images": int(n_img), "sample_networks": int(n_img // n_depths),
        "sample_seconds": all_s, "seconds_projected": measures_w1, "compile_seconds": all_compile,
        "share": measures_w1 / w1_warm, "per_measure": per,
        "forward_sample_seconds": fwd_seconds, "forward_seconds_projected": forward_w1,
        "forward_share": forward_w1 / w1_warm,
        "method": (f"jit(engine.measure_images) on {n_img} images of {n_img // n_depths} W1 networks (all "
                   f"activations, scales, seeds; every depth), best of {repeats}, x{scale:.2f} to "
                   f"{sweep.num_networks} images, / warm W1 wall time (sample split over {n_dev} devices, as "
                   "the engine splits a chunk)"),
    }


# ------------------------------------------------------------------------------------------------------------
# W2 and the matmul reference

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

    def one(w, b, p, s):
        return engine.network_images(model, sweep, None, base_key, w, b, p, s)

    # "map" is what the engine does: the chunk sharded over every device, networks one after another, each
    # network's forward one unsplit step on CPU (engine._kept_whole).
    step = engine._kept_whole(lambda t: one(*t), jax.default_backend())
    forms = {"vmap": jax.jit(jax.vmap(one)), "map": _on_all_devices(lambda *a: jax.lax.map(step, a))}
    forward = forms[W2_FORM]

    ones = np.ones((chunk,), np.float32)
    seeds = [np.arange(c, c + chunk, dtype=np.uint32) for c in range(0, n_seeds, chunk)]
    t0 = time.perf_counter()
    jax.block_until_ready(forward(ones, ones, ones, seeds[0]))
    compile_s = time.perf_counter() - t0
    ref_before = matmul_flops(matmul_n)
    per_chunk = []
    t0 = time.perf_counter()
    for s in seeds:
        t1 = time.perf_counter()
        jax.block_until_ready(forward(ones, ones, ones, s))
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
    jax.block_until_ready(other(ones, ones, ones, sub[0]))
    t0 = time.perf_counter()
    for s in sub:
        jax.block_until_ready(other(ones, ones, ones, s))
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


# ------------------------------------------------------------------------------------------------------------
# Baseline: one network per jitted call, from a Python loop

def baseline_pairs(acts, depths, combos: int) -> list[tuple]:
    """The baseline loop's (activation, depth) pairs: rounds of one pair per activation, odd rounds mirroring
    the depths of the round before (the i-th smallest depth -> the i-th largest). With an even number of rounds
    and evenly spaced depths, every activation's mean depth is W1's; a network's cost grows linearly with depth,
    so the subset has W1's mix of work at a fraction of the compiles (one per pair; all 70 of W1 took 104 s)."""
    n_act, n_depth = len(acts), len(depths)
    pairs = []
    for i in range(combos):
        rnd, a = divmod(i, n_act)
        j = (a + (rnd // 2) * n_act) % n_depth
        pairs.append((acts[a], depths[j] if rnd % 2 == 0 else depths[n_depth - 1 - j]))
    return pairs


class Baseline:
    """The per-network loop: ``prepare()`` compiles one executable per (activation, depth) pair, each
    ``run_pass()`` times one pass over all its networks, ``result()`` reports the best pass.

    A pass is sized to last about as long as one W1 run (14 pairs x 120 networks: ~4 s on the 2-core CPU).
    The best of three short passes would catch quiet moments of a shared machine that W1's longer runs
    cannot: with 280-network passes (0.7-0.9 s) one run's loop passes spread 0.67-0.86 s while W1's spread 4%.
    """

    def __init__(self, sweep: rj.Sweep, combos: int, per_combo: int):
        self.sweep, self.combos, self.per_combo = sweep, combos, per_combo
        self.passes: list[tuple[float, float]] = []

    def prepare(self) -> None:
        sweep = self.sweep
        acts, depths = sweep.axes["activation"], sweep.axes["depth"]
        self.pairs = baseline_pairs(acts, depths, self.combos)
        grid = sweep.numeric_grid()
        per_variant = len(grid["seed"])
        base_key = jax.random.key(sweep.base_seed)
        measure_fns = {m: rj.measures.MEASURES[m] for m in sweep.measures}

        def make(act, depth):
            model = sweep.model.replace(activation=act, depth=depth)

            def one(w, b, p, s):
                img = engine.network_images(model, sweep, None, base_key, w, b, p, s)[0]
                return {m: f(img) for m, f in measure_fns.items()}

            f32 = jax.ShapeDtypeStruct((), jnp.float32)
            return jax.jit(one).lower(f32, f32, f32, jax.ShapeDtypeStruct((), jnp.uint32)).compile()

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, min(len(self.pairs), os.cpu_count() or 1))) as pool:
            compiled = list(pool.map(lambda pr: make(*pr), self.pairs))
        self.compile_seconds = time.perf_counter() - t0
        self.work = []
        for k, fn in enumerate(compiled):
            for j in range(self.per_combo):
                i = (k * 7 + j * max(1, per_variant // self.per_combo)) % per_variant  # spread over scales, seeds
                self.work.append((fn, grid["weight_scale"][i], grid["bias_scale"][i], grid["prefactor"][i],
                                  grid["seed"][i]))
        for fn in compiled:  # first call of every executable outside the timing
            jax.block_until_ready(fn(*self.work[0][1:]))

    def run_pass(self) -> None:
        results = []
        c0, t0 = cpu_seconds(), time.perf_counter()
        for fn, w, b, p, s in self.work:
            out = fn(w, b, p, s)
            results.append({m: float(v) for m, v in out.items()})  # a loop reads every result back
        seconds = time.perf_counter() - t0
        self.passes.append((seconds, (cpu_seconds() - c0) / seconds))
        log(f"baseline pass {len(self.work)} nets in {seconds:.2f} s = {len(self.work) / seconds:.1f} nets/s")

    def result(self) -> dict:
        seconds, utilization = min(self.passes)
        n = len(self.work)
        mean_depth = float(np.mean([d for _, d in self.pairs]))
        log(f"baseline {n} nets in {seconds:.2f} s = {n / seconds:.1f} nets/s, {utilization:.2f} cores busy "
            f"(passes {[round(p[0], 2) for p in self.passes]} s; compile {self.compile_seconds:.1f} s)")
        return {"networks": n, "pairs": [list(p) for p in self.pairs], "mean_depth": mean_depth,
                "seconds": seconds, "pass_seconds": [p[0] for p in self.passes], "cpu_utilization": utilization,
                "networks_per_second": n / seconds, "compile_seconds": self.compile_seconds}


# ------------------------------------------------------------------------------------------------------------
# The bound: the least time W1 could take on this machine, and the loop ratio that would give

def activation_seconds_per_element(name: str, points: int, width: int, n_iter: int = 100) -> float:
    """One hidden layer's elementwise pass, ``phi(prefactor * z + b)`` over a (points, width) array kept in
    cache, on one device as one unsplit step (as the engine runs it): seconds per element, best of 5."""
    phi = rj.ACTIVATIONS[name]
    z = jax.random.normal(jax.random.key(3), (points, width), jnp.float32)

    def body(_, a):
        return phi(1.3 * a + 0.1) * 0.7  # each pass depends on the last; values stay bounded for every phi

    f = jax.jit(engine._kept_whole(lambda a: jax.lax.fori_loop(0, n_iter, body, a), jax.default_backend()))
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


# ------------------------------------------------------------------------------------------------------------
# Scaling: a fresh subprocess per size

def scaling_sweep(n: int) -> rj.Sweep:
    return rj.Sweep(model=rj.MLP(activation="relu", depth=2, width=64), axes={"seed": tuple(range(n))},
                    resolution=64, measures=("fourier",), name=f"bench-scaling-{n}")


def scaling_worker(n: int) -> None:
    """Runs in a fresh process: compile ahead at the chunk run_sweep will use, then time the sweep."""
    tiny = scaling_sweep(2)
    rj.run_sweep(tiny, progress=False)  # imports and first-call paths (xarray, store), tiny compile
    sweep = scaling_sweep(n)
    model = sweep.model
    chunk = engine.plan_chunk(sweep, model, n, 1, len(jax.local_devices()))
    t0 = time.perf_counter()
    engine.compile_variant(model, sweep, chunk)
    compile_s = time.perf_counter() - t0
    c0, t0 = cpu_seconds(), time.perf_counter()
    ds = rj.run_sweep(sweep, progress=False)
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds() - c0
    print(json.dumps({
        "networks": n, "seconds": seconds, "networks_per_second": n / seconds, "compile_seconds": compile_s,
        "chunk_size": int(ds.attrs["chunk_size"]), "compile_wait_seconds": ds.attrs["compile_wait_seconds"],
        "run_seconds": ds.attrs["run_seconds"], "cpu_utilization": cpu / seconds, "peak_rss_gb": rss_gb(),
    }))


def run_scaling_size(n: int, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--scaling-worker", str(n)]
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
    return {"rows": rows, "notes": notes}


# ------------------------------------------------------------------------------------------------------------
# Optional training benchmark (benchmarks/train_bench.py, owned separately)

def bench_train(quick: bool) -> dict:
    try:
        sys.path.insert(0, str(HERE))
        import train_bench  # noqa: WPS433
    except Exception as err:  # missing or broken: skip with a note
        return {"skipped": f"benchmarks/train_bench.py did not import: {type(err).__name__}: {err}"}
    if not hasattr(train_bench, "run_train_bench"):
        return {"skipped": "benchmarks/train_bench.py has no run_train_bench()"}
    t0 = time.perf_counter()
    try:
        if quick:
            res = train_bench.run_train_bench(activations=("relu",), steps=30, loop_networks=2)
        else:
            res = train_bench.run_train_bench()
    except Exception as err:
        return {"skipped": f"run_train_bench() failed: {type(err).__name__}: {err}"}
    res = dict(res)
    res["bench_wall_seconds"] = round(time.perf_counter() - t0, 1)
    return res


# ------------------------------------------------------------------------------------------------------------
# Report

def verdict(name: str, value) -> str:
    if value is None:
        return "n/a"
    op, thr, _ = TARGETS[name]
    ok = {"<=": value <= thr, ">=": value >= thr, "<": value < thr}[op]
    return "PASS" if ok else "FAIL"


def table(res: dict) -> str:
    m = res["machine"]
    d = res["details"]
    w1 = d["w1"]
    lines = [f"redshift_jax benchmarks ({'QUICK sizes: targets not meaningful' if res['quick'] else 'full sizes'})"
             f" - {res['timestamp']}",
             f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM; jax {m['jax']} / jaxlib {m['jaxlib']}, "
             f"{m['backend']} ({m['device_kind']}); load avg at start {m['load_average_at_start']}",
             ""]
    hdr = f"{'figure':<26} {'value':>12}  {'target':<10} {'':<5} how it was measured"
    lines += [hdr, "-" * 118]

    def row(label, value, fmt, target_key=None, note=""):
        v = "-" if value is None else format(value, fmt)
        tgt = TARGETS[target_key][2] if target_key else ""
        ok = verdict(target_key, value) if target_key else ""
        lines.append(f"{label:<26} {v:>12}  {tgt:<10} {ok:<5} {note}")

    n = w1["networks"]
    row("W1 wall (warm) s", res["w1_seconds"], ".2f", "w1_seconds",
        f"run_sweep of {n:,} networks, best of 3 warm runs in-process; chunk {w1['warm_attrs']['chunk_size']}, "
        f"CPU use {w1['warm_cpu_utilization']:.2f} cores")
    row("W1 compile s", res["w1_compile_seconds"], ".2f", "w1_compile_seconds",
        f"(cold - cold chunk time) - (warm - warm chunk time); engine compile wait "
        f"{w1['cold_attrs']['compile_wait_seconds']} s; plain cold - warm {w1['cold_minus_warm_seconds']:.1f} s")
    row("W1 networks/s", res["networks_per_second"], ",.0f", None, f"{n:,} / warm wall")
    ms = d["measures"]
    row("measures share", res["measures_share"], ".3f", "measures_share", ms["method"])
    for name, pm in ms["per_measure"].items():
        row(f"  {name} share", pm["w1_seconds_projected"] / res["w1_seconds"], ".3f", None,
            f"{pm['w1_seconds_projected']:.2f} s: this measure alone on the sample, projected (1 timed run)")
    row("  forward share", ms["forward_share"], ".3f", None,
        f"{ms['forward_seconds_projected']:.2f} s: the networks' forward on the same sample (all devices, as the "
        "engine), projected")
    w2 = d["w2"]
    row("W2 efficiency", res["efficiency"], ".3f", "efficiency",
        f"{w2['forward_gflops']:.1f} GFLOP/s forward ({w2['networks']} nets, {w2['form']}, chunks of {w2['chunk']}) / "
        f"{w2['matmul_gflops']:.1f} GFLOP/s {w2['matmul_n']}^3 matmul (best of 5, max before/after)")
    row("  best chunk efficiency", w2["efficiency_best_chunk"], ".3f", None, "fastest single chunk / same matmul")
    row(f"  {w2['other_form']} form efficiency", w2["other_form_efficiency"], ".3f", None,
        f"W2 batched with {'jax.lax.map' if w2['other_form'] == 'map' else 'jax.vmap'} instead of "
        f"{'jax.vmap' if w2['form'] == 'vmap' else 'jax.lax.map'}, {w2['other_form_networks']} networks (info only)")
    bl = d["baseline"]
    row("baseline speedup", res["baseline_speedup"], ".1f", "baseline_speedup",
        f"W1 nets/s / {bl['networks_per_second']:.1f} nets/s: {bl['networks']} W1 networks, one jitted call each "
        f"({len(bl['pairs'])} activation/depth pairs, mean depth {bl['mean_depth']:.1f}; best of 3 passes "
        f"interleaved with W1's warm runs, "
        f"{bl['cpu_utilization']:.2f} cores busy)")
    bd = d["bound"]
    row("  W1 bound s", bd["seconds"], ".2f", None,
        f"matmuls at the {bd['matmul_gflops']:.0f} GFLOP/s reference {bd['matmul_seconds']:.2f} s + activation "
        f"passes {bd['activation_seconds']:.2f} s, nothing else; W1 reaches {bd['w1_fraction_of_bound']:.2f} of it")
    row("  speedup at the bound", bd["speedup_ceiling"], ".1f", None,
        f"the most this machine allows against this loop; 10x needs W1 <= {bd['w1_seconds_for_10x']:.2f} s")
    row("peak RSS GB", res["peak_rss_gb"], ".2f", "peak_rss_gb",
        "peak resident memory (VmHWM): main process and every scaling subprocess, each its own")
    lines.append("")
    lines.append(f"scaling (relu depth 2, width 64, 64x64, fourier; fresh process per size; compile excluded)")
    lines.append(f"{'networks':>10} {'seconds':>9} {'nets/s':>9} {'us/net':>8} {'RSS GB':>7} {'chunk':>6}  RSS < 4 GB")
    for r in d["scaling"]["rows"]:
        if "error" in r:
            lines.append(f"{r['networks']:>10} error: {r['error']}")
            continue
        lines.append(f"{r['networks']:>10,} {r['seconds']:>9.2f} {r['networks'] / r['seconds']:>9.0f} "
                     f"{1e6 * r['seconds'] / r['networks']:>8.1f} {r['peak_rss_gb']:>7.2f} "
                     f"{r.get('chunk_size', 0):>6}  {verdict('peak_rss_gb', r['peak_rss_gb'])}")
    lin = d["scaling"].get("linearity")
    if lin:
        lines.append(f"per-network cost at the largest size / at 10^3: {lin:.2f} (1.0 = linear)")
    for note in d["scaling"]["notes"]:
        lines.append(note)
    tr = res.get("train")
    lines.append("")
    if tr is None:
        lines.append("train: skipped (--skip-train)")
    elif "skipped" in tr:
        lines.append(f"train: skipped ({tr['skipped']})")
    else:
        for act, r in tr.get("activations", {}).items():
            lines.append(f"train {act}: {r['ms_per_network_step']:.4f} ms/network-step "
                         f"(loop {r['loop_ms_per_network_step']:.4f}, speedup {r['speedup_vs_loop']:.1f}x, "
                         f"compile {r['compile_seconds']:.1f} s)")
        if "full_grid_projection_seconds" in tr:
            lines.append(f"train full grid projected: {tr['full_grid_projection_seconds']} s "
                         f"(target relu {tr.get('target_ms_per_network_step_relu')} ms/network-step)")
    lines.append(f"total bench wall time {res['bench_wall_seconds']:.0f} s")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="redshift_jax benchmark table (DESIGN.md section 8)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    parser.add_argument("--skip-train", action="store_true", help="skip benchmarks/train_bench.py")
    parser.add_argument("--out", default=None, help="results JSON (default benchmarks/results.json; "
                                                    "benchmarks/results-quick.json with --quick)")
    parser.add_argument("--max-scaling", type=int, default=None,
                        help="leave out scaling sizes above this many networks (10^5 alone takes minutes)")
    parser.add_argument("--scaling-worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scaling_worker is not None:
        scaling_worker(args.scaling_worker)
        return 0

    t_start = time.perf_counter()
    sz = sizes(args.quick)
    out = Path(args.out) if args.out else HERE / ("results-quick.json" if args.quick else "results.json")
    machine = machine_info()
    log(f"{machine['cpu']}, {machine['cores']} cores, load {machine['load_average_at_start']}")

    sweep = w1_sweep(sz)
    loop = Baseline(sweep, sz["baseline_combos"], sz["baseline_per_combo"])
    w1 = bench_w1(sweep, after_cold=loop.prepare, between=loop.run_pass)  # first: its compile is cold
    baseline = loop.result()
    measures = bench_measures(sweep, sz["sample_networks"], w1["warm_seconds"])
    w2 = bench_w2(sz["w2_seeds"], sz["w2_chunk"], sz["matmul_n"])
    bound = bench_bound(sweep, w2["matmul_gflops"], w1["warm_seconds"], baseline["networks_per_second"])
    main_rss = rss_gb()
    scaling_sizes = tuple(n for n in sz["scaling"] if args.max_scaling is None or n <= args.max_scaling)
    scaling = bench_scaling(scaling_sizes, sz["scaling_limit_s"])
    rows = scaling["rows"]
    ok_rows = [r for r in rows if "seconds" in r]
    ref = next((r for r in ok_rows if r["networks"] == 1000), ok_rows[0] if ok_rows else None)
    if ref and ok_rows and ok_rows[-1] is not ref:
        scaling["linearity"] = (ok_rows[-1]["seconds"] / ok_rows[-1]["networks"]) / (ref["seconds"] / ref["networks"])
    train = None if args.skip_train else bench_train(args.quick)
    main_rss = max(main_rss, rss_gb())

    peak = max([main_rss] + [r["peak_rss_gb"] for r in ok_rows])
    res = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "w1_seconds": w1["warm_seconds"],
        "w1_compile_seconds": w1["compile_seconds"],
        "networks_per_second": w1["networks_per_second"],
        "efficiency": w2["efficiency"],
        "baseline_speedup": w1["networks_per_second"] / baseline["networks_per_second"],
        "measures_share": measures["share"],
        "peak_rss_gb": peak,
        "scaling": [{"networks": r["networks"], "seconds": r.get("seconds"), "peak_rss_gb": r.get("peak_rss_gb"),
                     **({"error": r["error"]} if "error" in r else {})} for r in rows],
        "machine": machine,
        "train": train,
        "targets": {k: {"target": v[2], "pass": None} for k, v in TARGETS.items()},
        "details": {"w1": w1, "measures": measures, "w2": w2, "baseline": baseline, "bound": bound, "scaling": scaling,
                    "main_process_peak_rss_gb": main_rss},
    }
    for k in TARGETS:
        res["targets"][k]["pass"] = verdict(k, res[k]) == "PASS"
    if train is None:
        res["train"] = {"skipped": "--skip-train"}
    res["bench_wall_seconds"] = time.perf_counter() - t_start
    res["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    text = table({**res, "train": train})
    print(text, flush=True)
    res["table"] = text
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(res, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o)) + "\n")
    os.replace(tmp, out)
    print(f"wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
