"""Any architecture (issue 26, item 4): is the layer-norm ViT's rise on the MNIST plane a property of layer norm, or
of the plane?

On ``sweeps/vit_components.py``'s MNIST plane the ViT with layer norm scores higher than without, and its example
fields are stars around the anchor. The suspected cause is the plane, not layer norm: MNIST's background patches
are zero at the anchor, so their tokens are linear in (u, v) through the origin (GPT-2's init has zero biases,
which ``bias_scale`` cannot change), and a LayerNorm keeps only such a token's direction, a function of the angle
around the anchor. This file runs the ViT with and without layer norm (``vit``, ``vit_no_layernorm``: the
``vit_components`` variants, the same init) on a plane through images with no empty patch: three images of
standard Gaussian pixels (``rj.planes.from_array``, drawn here from a fixed numpy seed, so the plane is the same in
every process), random directions at their RMS image norm as on MNIST. If the rise and the stars go away here,
they were the plane's.

Run: ``redshift-jax sweep sweeps/vit_layernorm_noise.py [--quick | --laptop] [--out PATH]``. LAPTOP: 2 variants x
gelu, relu, tanh x depths 1, 2, 4 x weight scales 0.5, 1, 2, 4, 8 x 2 seeds = 180 networks.
"""
import runpy
from pathlib import Path

import numpy as np

import redshift_jax as rj

_COMPONENTS = runpy.run_path(str(Path(__file__).with_name("vit_components.py")))
FIGURE = "architectures"
MEASURES = _COMPONENTS["MEASURES"]
# three 28 x 28 images of N(0, 1) pixels: every patch of the anchor is non-zero
NOISE = np.random.default_rng(0).standard_normal((3, 28, 28, 1)).astype(np.float32)


def make(**sizes):
    """``vit_components.make``'s ``vit`` and ``vit_no_layernorm`` parts, on the plane through the noise images."""
    plane = rj.planes.from_array(NOISE, name="gaussian noise", anchor=0, mode="random", scale=1.0, seed=0)
    return _COMPONENTS["make"](plane=plane, variants=("vit", "vit_no_layernorm"), **sizes)


SWEEP = make(seeds=8, resolution=64, depths=(1, 2, 4, 8))   # 2 x 480 networks
LAPTOP = make()                                             # 2 x 90 networks at 32 x 32
QUICK = make(activations=("gelu",), depths=(1,), weight_scales=(1.0, 8.0), seeds=1, resolution=16, d_model=16,
             heads=2)
