"""The NRS co-author's public configuration, for direct comparison with their code.

300 x 300 grid on [-1, 1]^2, prior "uniform" (no fan scaling) with ONE amplitude a for weights and biases
(a in geomspace(0.1, 100, 15), i.e. the "logspace(0.1, 100, 15)" of that code), width 64, depth 1..7,
Fourier "nrs" (the co-author's measure), with the seam-free Fourier measure beside it (docs/measures.md).
"""
import numpy as np

import redshift_jax as rj

FIGURE = "heatmaps"


def make(activations=("relu", "tanh", "gaussian", "sin"), depths=range(1, 8), scales=15, seeds=4,
         resolution=300):
    return rj.Sweep(
        model=rj.MLP(width=64, prior="uniform"),
        axes={"activation": activations, "depth": list(depths),
              "weight_scale": np.round(np.geomspace(0.1, 100.0, scales), 5).tolist(), "seed": list(range(seeds))},
        resolution=resolution, measures=("fourier", "fourier_dct"), tie_bias_to_weight=True, memory_budget_gb=1.5,
        name="nrs_code_heatmaps")


SWEEP = make()
LAPTOP = make(seeds=2, resolution=150)
QUICK = make(activations=("relu", "tanh"), depths=range(1, 4), scales=4, seeds=2, resolution=64)
