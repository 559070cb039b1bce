"""The benchmark's workloads and their sizes (benchmarks/README.md): W1's grid, the scaling sweeps."""

from __future__ import annotations

import numpy as np

import redshift_jax as rj

from . import common  # noqa: F401  (sets up the path and one CPU device per core)

ACTIVATIONS = ("relu", "gelu", "swish", "selu", "tanh", "gaussian", "sin")
W1_MEASURES = ("fourier", "chebyshev", "lz")


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
    """W1 "heatmaps": activation x depth x weight scale x seed, width 64, 64 x 64 grid, three measures."""
    return rj.Sweep(
        model=rj.MLP(width=64),
        axes={"activation": sz["activations"], "depth": sz["depths"], "weight_scale": sz["scales"],
              "seed": tuple(range(sz["seeds"]))},
        resolution=64, measures=W1_MEASURES, name="bench-w1")


def scaling_sweep(n: int) -> rj.Sweep:
    """relu, depth 2, width 64, 64 x 64 grid, fourier only, ``n`` seeds."""
    return rj.Sweep(model=rj.MLP(activation="relu", depth=2, width=64), axes={"seed": tuple(range(n))},
                    resolution=64, measures=("fourier",), name=f"bench-scaling-{n}")
