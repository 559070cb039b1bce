"""Gating and residual connections at depth 1 to 8, across weight scales, per activation (issue 24, claims C8, C9).

Table 1 tests a component around a few bases; the paper's claims are conditional ("gating raises complexity,
depending on depth and weight magnitude, even with ReLU"; "residual connections keep complexity near the lowest
levels for every activation, regardless of depth"). Here each component is varied alone (same seeds for both
settings) at every cell of activation x depth x weight scale, and the figure maps the effect per cell: where
each claim holds and where it does not. Width 64, bias scale 1, `paper` prior; measures: the seam-free Fourier
measure, the energy-weighted Chebyshev order and LZ78 (docs/measures.md), with the paper's Fourier beside them.
"""
import numpy as np

import redshift_jax as rj

FIGURE = "components"
MEASURES = ("fourier", "fourier_dct", "chebyshev_energy", "lz")
COMPONENTS = {"gating (multiplicative)": ("gating", "higher"), "residual connections": ("residual", "lower")}


def make(activations=("relu", "gelu", "tanh", "sin"), depths=(1, 2, 4, 6, 8), scales=5, seeds=16, resolution=64,
         max_scale=20.0):
    weight_scales = np.round(np.geomspace(1.0, max_scale, scales), 4).tolist()
    return {f"c{i}": rj.Sweep(model=rj.MLP(width=64),
                              axes={axis: [False, True], "activation": list(activations), "depth": list(depths),
                                    "weight_scale": weight_scales, "seed": list(range(seeds))},
                              resolution=resolution, measures=MEASURES, name=label)
            for i, (label, (axis, _)) in enumerate(COMPONENTS.items())}


SWEEP = make(activations=("relu", "gelu", "swish", "tanh", "gaussian", "sin"), depths=(1, 2, 4, 6, 8, 10), scales=7,
             seeds=32)
LAPTOP = make()
QUICK = make(activations=("relu", "tanh"), depths=(1, 6), scales=2, seeds=4)
CLAIMS = {label: claim for label, (_, claim) in COMPONENTS.items()}
