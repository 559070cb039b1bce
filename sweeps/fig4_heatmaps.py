"""Figure 4: complexity heatmaps (depth x weight scale) for seven activations.

Paper claim: ReLU-like activations stay simple at every depth and weight scale; tanh, gaussian and sin
become complex as weights grow and depth increases.
"""
import numpy as np

import redshift_jax as rj

FIGURE = "heatmaps"
ACTIVATIONS = ("relu", "gelu", "swish", "selu", "tanh", "gaussian", "sin")
MEASURES = ("fourier", "fourier_dct", "chebyshev", "chebyshev_energy", "legendre", "lz")


def make(activations=ACTIVATIONS, depths=range(1, 11), scales=15, seeds=16, resolution=64, name="fig4_heatmaps"):
    return rj.Sweep(
        model=rj.MLP(width=64),
        axes={"activation": activations, "depth": list(depths),
              "weight_scale": np.round(np.geomspace(1.0, 50.0, scales), 4).tolist(), "seed": list(range(seeds))},
        resolution=resolution, measures=MEASURES, name=name)


SWEEP = make(seeds=32)                      # 33,600 networks, paper scale
LAPTOP = make(seeds=16)                     # 16,800 networks (benchmark W1's grid), a few minutes on 2 cores
QUICK = make(activations=("relu", "tanh", "sin"), depths=range(1, 5), scales=5, seeds=4)
