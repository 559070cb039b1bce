"""Figure 4's infinite-width row: the same heatmaps (depth x weight scale per activation) for the NNGP limit.

A companion of ``fig4_heatmaps.py`` (DESIGN.md section 16): each seed is one sample of the Gaussian process that
Figure 4's MLP (width 64, ``prior="paper"``, bias scale 1, the 64 x 64 grid on [-1, 1]^2) becomes as its width
grows, scored by the same measures, so each heatmap cell can be read against its finite-width counterpart.
The paper prior's first layer vanishes as the width grows (its variance is 2a^2 / (in_dim + n)), so the strict
limit is a plane; the ``paper_w64`` part uses the width-matched limit instead (``NNGP(prior="paper", width=64)``:
Figure 4's first layer of width 64, the later layers infinite). The ``normal`` part is the exact limit of the
``normal`` prior, for reference.

Every (activation, depth, weight scale) is one kernel and one Cholesky factor on the 4096 grid points (float64,
a few seconds each on 2 CPU cores), shared by its seeds. selu's kernel needs quadrature (a minute or two per
depth-3 grid), so it is in SWEEP only.
"""
import numpy as np

import redshift_jax as rj

FIGURE = "heatmaps"
ACTIVATIONS = ("relu", "gelu", "swish", "selu", "tanh", "gaussian", "sin")
MEASURES = ("fourier", "chebyshev", "legendre", "lz")


def make(activations=ACTIVATIONS, depths=range(1, 11), scales=15, seeds=16, resolution=64, priors=("paper_w64",),
         measures=MEASURES):
    parts = {}
    models = {"paper_w64": rj.NNGP(prior="paper", width=64), "normal": rj.NNGP(prior="normal")}
    for prior in priors:
        parts[prior] = rj.Sweep(
            model=models[prior], base_seed=1,
            axes={"activation": list(activations), "depth": list(depths),
                  "weight_scale": np.round(np.geomspace(1.0, 50.0, scales), 4).tolist(),
                  "seed": list(range(seeds))},
            resolution=resolution, measures=measures, name=f"fig4 NNGP ({prior})")
    return parts


SWEEP = make(seeds=32, priors=("paper_w64", "normal"))                  # 2 x 1,050 kernels
LAPTOP = make(activations=("relu", "tanh", "sin"), depths=(1, 3, 6, 10), scales=5, seeds=16)  # 60 kernels, ~11 min
QUICK = make(activations=("relu", "tanh"), depths=(1, 3), scales=2, seeds=4, resolution=16, measures=("fourier", "lz"))
