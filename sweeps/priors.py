"""Weight priors side by side: the paper's claim is that other priors give the same picture.

Note the priors' scales mean different things: "uniform" has no fan-in scaling, so its weight scale 1 is
already a large weight for width 64; compare shapes of the curves, not the x positions.
"""
import numpy as np

import redshift_jax as rj

FIGURE = "curves"
PRIORS = ("paper", "normal", "ball", "cauchy", "uniform", "torch")


def make(activations=("relu", "tanh", "sin"), scales=10, seeds=16, resolution=64, depth=3):
    parts = {}
    for prior in PRIORS:
        parts[prior] = rj.Sweep(
            model=rj.MLP(depth=depth, width=64, prior=prior),
            axes={"activation": activations,
                  "weight_scale": np.round(np.geomspace(0.5, 20.0, scales), 4).tolist(),
                  "seed": list(range(seeds))},
            resolution=resolution, measures=("fourier", "fourier_dct", "lz"), name=prior)
    return parts


SWEEP = make(seeds=32)
LAPTOP = make(seeds=8)
QUICK = make(activations=("relu", "tanh"), scales=4, seeds=3, resolution=32)
