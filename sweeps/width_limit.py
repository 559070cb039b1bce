"""Complexity against width, converging to the infinite-width (NNGP) value (DESIGN.md section 16).

A suite of parts (``FIGURE = "width_limit"``, drawn by ``redshift_jax.studies.nngp.plot_width_limit``):

- ``mlp-<activation>``: ``rj.MLP(prior="normal")``, depth 3, a width axis (8 .. 4096) x a few weight scales x
  seeds. The normal prior (W ~ N(0, a^2 / fan_in), b ~ N(0, b^2)) is the one whose infinite-width limit is exact
  and width-free.
- ``gp-<activation>``: ``rj.NNGP`` of the same activation and depth, the same weight scales; each seed one GP
  sample (the kernel's Cholesky factor computed once per weight scale), scored with the same measures.
- ``mlp-paper-<activation>`` / ``gp-paper-<activation>`` (``SWEEP`` only by default): the paper prior against
  its width-matched kernel (``NNGP(prior="paper", width=n)``, one per width: the Gaussian-moment limit that keeps
  the first layer's width).

Bias scale 1, prefactor 1. LAPTOP uses a 32 x 32 grid, widths 8 .. 2048, 64 networks and 512 GP samples per
cell (a few minutes on 2 cores; width 4096 alone would double it); SWEEP the paper's 64 x 64 grid, widths
8 .. 4096, more activations, weight scales and networks, and the paper-prior parts.
"""
import redshift_jax as rj
from redshift_jax.models.nngp import NNGP

FIGURE = "width_limit"
MEASURES = ("fourier", "lz")
DEPTH = 3


def make(activations=("relu", "tanh"), widths=(8, 32, 128, 512, 2048), scales=(1.0, 4.0), seeds=64,
         gp_seeds=512, resolution=32, depth=DEPTH, paper_activations=(), paper_widths=(8, 64, 512)):
    common = dict(resolution=resolution, measures=MEASURES)
    parts = {}
    for activation in activations:
        parts[f"mlp-{activation}"] = rj.Sweep(
            model=rj.MLP(activation=activation, depth=depth, prior="normal"),
            axes={"width": list(widths), "weight_scale": list(scales), "seed": list(range(seeds))},
            name=f"{activation} MLP (normal prior)", **common)
        parts[f"gp-{activation}"] = rj.Sweep(
            model=NNGP(activation=activation, depth=depth), base_seed=1,
            axes={"weight_scale": list(scales), "seed": list(range(gp_seeds))},
            name=f"{activation} NNGP (infinite width)", **common)
    for activation in paper_activations:
        parts[f"mlp-paper-{activation}"] = rj.Sweep(
            model=rj.MLP(activation=activation, depth=depth, prior="paper"),
            axes={"width": list(paper_widths), "weight_scale": list(scales), "seed": list(range(seeds))},
            name=f"{activation} MLP (paper prior)", **common)
        parts[f"gp-paper-{activation}"] = rj.Sweep(
            model=NNGP(activation=activation, depth=depth, prior="paper", width=paper_widths[0]), base_seed=1,
            axes={"width": list(paper_widths), "weight_scale": list(scales), "seed": list(range(gp_seeds))},
            name=f"{activation} NNGP (paper prior, width-matched)", **common)
    return parts


SWEEP = make(activations=("relu", "gelu", "tanh", "sin"), widths=tuple(2 ** k for k in range(3, 13)),
             scales=(1.0, 3.0, 10.0), seeds=128, gp_seeds=512, resolution=64, paper_activations=("relu", "tanh"))
LAPTOP = make()
QUICK = make(activations=("relu",), widths=(8, 64), scales=(1.0,), seeds=4, gp_seeds=8, resolution=16)
