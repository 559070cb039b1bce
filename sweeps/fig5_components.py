"""Figure 5: complexity against weight scale for plain, gated, residual and layer-normed networks.

Each activation family is swept over the paper's weight-scale range (1..10 ReLU-like, 1..50 tanh,
1..30 gaussian, 1..20 sin); the Unbiased model is the white-noise reference. Depth 3, width 64 (the
figure's depth is not stated in the paper; we chose a depth where the effects are visible).
"""
import numpy as np

import redshift_jax as rj

FIGURE = "curves"
RANGES = {"relu": 10.0, "gelu": 10.0, "swish": 10.0, "selu": 10.0, "tanh": 50.0, "gaussian": 30.0, "sin": 20.0}
COMPONENTS = {"plain": {}, "gating": {"gating": True}, "residual": {"residual": True},
              "layernorm": {"layernorm": True}}
MEASURES = ("fourier", "fourier_noise", "chebyshev", "lz")


def make(activations=tuple(RANGES), scales=12, seeds=16, resolution=64, depth=3):
    parts = {}
    for activation in activations:
        for component, flags in COMPONENTS.items():
            parts[f"{activation}-{component}"] = rj.Sweep(
                model=rj.MLP(activation=activation, depth=depth, width=64, **flags),
                axes={"weight_scale": np.round(np.geomspace(1.0, RANGES[activation], scales), 4).tolist(),
                      "seed": list(range(seeds))},
                resolution=resolution, measures=MEASURES, name=f"{activation}-{component}")
    parts["unbiased"] = rj.Sweep(
        model=rj.Unbiased(in_dim=2, resolution=resolution),
        axes={"weight_scale": np.round(np.geomspace(1.0, 50.0, scales), 4).tolist(), "seed": list(range(seeds))},
        resolution=resolution, measures=MEASURES, name="unbiased")
    return parts


SWEEP = make(seeds=32)
LAPTOP = make(seeds=8)
QUICK = make(activations=("relu", "tanh"), scales=4, seeds=3)
