"""The baseline: W1's per-network computation jitted for ONE network, called from a Python loop."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

import redshift_jax as rj
from redshift_jax.sweep import engine

from .common import cpu_seconds, log


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
        names = tuple(sweep.model.numeric_axes)
        per_variant = len(grid["seed"])
        base_key = jax.random.key(sweep.base_seed)
        measures = {m.label: m for m in sweep.measure_objects}

        def make(act, depth):
            model = sweep.model.replace(activation=act, depth=depth)

            def one(numeric, seed):
                img = engine.network_images(model, sweep, None, base_key, numeric, seed)[0][0]
                return {label: m(img) for label, m in measures.items()}

            f32 = jax.ShapeDtypeStruct((), jnp.float32)
            return jax.jit(one).lower({n: f32 for n in names}, jax.ShapeDtypeStruct((), jnp.uint32)).compile()

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, min(len(self.pairs), os.cpu_count() or 1))) as pool:
            compiled = list(pool.map(lambda pr: make(*pr), self.pairs))
        self.compile_seconds = time.perf_counter() - t0
        self.work = []
        for k, fn in enumerate(compiled):
            for j in range(self.per_combo):
                i = (k * 7 + j * max(1, per_variant // self.per_combo)) % per_variant  # spread over scales, seeds
                self.work.append((fn, {n: grid[n][i] for n in names}, grid["seed"][i]))
        for fn in compiled:  # first call of every executable outside the timing
            jax.block_until_ready(fn(*self.work[0][1:]))

    def run_pass(self) -> None:
        results = []
        c0, t0 = cpu_seconds(), time.perf_counter()
        for fn, numeric, seed in self.work:
            out = fn(numeric, seed)
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
