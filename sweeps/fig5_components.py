"""Figure 5: complexity against weight scale for plain, gated, residual and layer-normed networks.

Each activation family is swept over the paper's weight-scale range (1..10 ReLU-like, 1..50 tanh,
1..30 gaussian, 1..20 sin); the Unbiased model is the white-noise reference. Depth 3, width 64 (the
figure's depth is not stated in the paper; we chose a depth where the effects are visible). The plain network's
infinite-width (NNGP) curve is drawn beside it at a few weight scales.
"""
import numpy as np

import redshift_jax as rj

FIGURE = "curves"
RANGES = {"relu": 10.0, "gelu": 10.0, "swish": 10.0, "selu": 10.0, "tanh": 50.0, "gaussian": 30.0, "sin": 20.0}
COMPONENTS = {"plain": {}, "gating": {"gating": True}, "residual": {"residual": True},
              "layernorm": {"layernorm": True}}
MEASURES = ("fourier", "fourier_noise", "fourier_dct", "chebyshev", "chebyshev_energy", "lz")


def make(activations=tuple(RANGES), scales=12, seeds=16, resolution=64, depth=3, gp_scales=4, gp_seeds=16,
         gp_activations=None):
    """``gp_scales`` weight scales (spread evenly over the grid, ends included) of the plain MLP's width-matched
    NNGP limit per activation in ``gp_activations`` (default: all but selu, whose kernel needs quadrature)."""
    parts = {}
    gp_activations = tuple(a for a in activations if a != "selu") if gp_activations is None else gp_activations
    for activation in activations:
        scale_grid = np.round(np.geomspace(1.0, RANGES[activation], scales), 4).tolist()
        for component, flags in COMPONENTS.items():
            parts[f"{activation}-{component}"] = rj.Sweep(
                model=rj.MLP(activation=activation, depth=depth, width=64, **flags),
                axes={"weight_scale": scale_grid, "seed": list(range(seeds))},
                resolution=resolution, measures=MEASURES, name=f"{activation}-{component}")
        if activation in gp_activations and gp_scales:
            # The infinite-width reference of the plain network (DESIGN.md section 16): Figure 5's first layer of
            # width 64, the later layers infinite; one kernel and Cholesky factor per weight scale.
            picks = np.unique(np.round(np.linspace(0, len(scale_grid) - 1, gp_scales)).astype(int))
            parts[f"{activation}-plain NNGP"] = rj.Sweep(
                model=rj.NNGP(activation=activation, depth=depth, prior="paper", width=64), base_seed=1,
                axes={"weight_scale": [scale_grid[i] for i in picks], "seed": list(range(gp_seeds))},
                resolution=resolution, measures=MEASURES, name=f"{activation}-plain NNGP")
    parts["unbiased"] = rj.Sweep(
        model=rj.Unbiased(in_dim=2, resolution=resolution),
        axes={"weight_scale": np.round(np.geomspace(1.0, 50.0, scales), 4).tolist(), "seed": list(range(seeds))},
        resolution=resolution, measures=MEASURES, name="unbiased")
    return parts


SWEEP = make(seeds=32, gp_scales=12, gp_seeds=32)
LAPTOP = make(seeds=8, gp_scales=4, gp_seeds=8)
QUICK = make(activations=("relu", "tanh"), scales=4, seeds=3, gp_scales=2, gp_seeds=3, gp_activations=("relu",))
