"""Does local volume track NRS complexity? (DESIGN.md section 14; the blog found it does not.)

The NRS grid networks of Figure 4 (``MLP(width=64)``, the paper's prior, 2-D inputs, depth x weight scale
geometric in 1..50) with their Fourier and LZ complexity on the 64 x 64 grid, and beside them the local volume of
the same networks (the importance-sampled estimator of DESIGN.md section 21, Gaussian measure, sigma the RMS of the
parameters, epsilon 1e-2) under two costs on a 16 x 16
sub-grid of [-1, 1]^2 (the full 4096-point grid costs 16x more and the function is smooth at that scale):

- ``volume``: ``"mse"``, the mean squared change of the output field (section 14's NRS cost). The outputs'
  size grows by orders of magnitude with weight scale and depth, and so does this cost's sensitivity.
- ``volume_nmse``: the same divided by the variance of the field (invariant to the output's scale, so it only
  sees changes of shape).

One sweep over activation x depth x weight scale x seed (the activations share one compiled function; the volume
measures see each network's own activation); ``FIGURE = "volume"`` (``redshift_jax.studies.volume``): heatmaps,
volume against Fourier / LZ with Spearman rho per activation, ``volume.md``. Until 2026-12-07 this file was a suite
of one part per activation; each network's numbers are bitwise the same in both (checked at QUICK size).

    redshift-jax sweep sweeps/volume_nrs.py --laptop --figures figures/volume_nrs
"""
import numpy as np

import redshift_jax as rj

FIGURE = "volume"
ACTIVATIONS = ("relu", "gelu", "tanh", "gaussian", "sin")


def make(activations=ACTIVATIONS, depths=range(1, 11), scales=15, seeds=16, n_directions=100, cost_resolution=16,
         name="volume_nrs"):
    volume = {"n_directions": n_directions, "resolution": cost_resolution}
    measures = ("fourier", "lz", ("volume", {"cost": "mse", **volume}),
                ("volume", {"cost": "nmse", **volume, "label": "volume_nmse"}))
    return rj.Sweep(model=rj.MLP(width=64),
                    axes={"activation": list(activations), "depth": list(depths),
                          "weight_scale": np.round(np.geomspace(1.0, 50.0, scales), 4).tolist(),
                          "seed": list(range(seeds))},
                    resolution=64, measures=measures, name=name)


SWEEP = make(seeds=16, n_directions=100)   # Figure 4's grid for five activations: 2,400 trunks x 10 depths
# 2026-12-06: with 2 seeds and depth 1..4 (--set seed=0,1 --set depth=1,2,3,4) 4-21 minutes on 2 CPU cores shared
# with other jobs, depending on their load.
LAPTOP = make(depths=range(1, 7), scales=5, seeds=8, n_directions=32, name="volume_nrs_laptop")
QUICK = make(activations=("relu", "tanh"), depths=(1, 2), scales=2, seeds=2, n_directions=4, name="volume_nrs_quick")
