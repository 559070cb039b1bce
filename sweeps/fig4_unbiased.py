"""Figure 4's Unbiased panel: the model with fixed Fourier input weights and random amplitudes (DESIGN.md section 4).

Its functions are white-noise-like at every weight scale (the paper's reference for "no simplicity bias"); it has no
depth, so the panel is a curve against weight scale rather than a heatmap. Same grid and measures as
``fig4_heatmaps.py``.
"""
import numpy as np

import redshift_jax as rj

FIGURE = "curves"
MEASURES = ("fourier", "fourier_dct", "chebyshev", "chebyshev_energy", "legendre", "lz")


def make(scales=15, seeds=16, resolution=64):
    return {"unbiased": rj.Sweep(model=rj.Unbiased(in_dim=2, resolution=resolution),
                                 axes={"weight_scale": np.round(np.geomspace(1.0, 50.0, scales), 4).tolist(),
                                       "seed": list(range(seeds))},
                                 resolution=resolution, measures=MEASURES, name="fig4 Unbiased")}


SWEEP = make(seeds=32)
LAPTOP = make()
QUICK = make(scales=3, seeds=2)
