"""Figure 6: the complexity measures against one another across architectures (Spearman rho)."""
import numpy as np

import redshift_jax as rj

FIGURE = "correlations"
MEASURES = ("fourier", "fourier_noise", "fourier_dct", "fourier_mirror", "chebyshev", "chebyshev_energy", "legendre",
            "legendre_energy", "lz", "lz76", "lzw")


def make(activations=("relu", "gelu", "swish", "selu", "tanh", "gaussian", "sin"), depths=(1, 2, 4, 6),
         scales=6, seeds=8, resolution=64):
    return rj.Sweep(
        model=rj.MLP(width=64),
        axes={"activation": activations, "depth": list(depths),
              "weight_scale": np.round(np.geomspace(1.0, 20.0, scales), 4).tolist(),
              "gating": [False, True], "seed": list(range(seeds))},
        resolution=resolution, measures=MEASURES, name="fig6_correlations")


SWEEP = make(seeds=16)
LAPTOP = make(seeds=4)
QUICK = make(activations=("relu", "tanh", "sin"), depths=(1, 3), scales=3, seeds=2)
