"""Any architecture (issue 26, item 4): do residual connections and layer norm lower a ViT's complexity, as the
NRS paper found for MLPs (Table 1) and ``sweeps/cnn_components.py`` asks of a CNN?

The ViT of ``sweeps/architectures.py`` (4 x 4 patches, d_model 64, 4 heads, GPT-2's init times ``weight_scale``,
zero biases) on the same MNIST plane, in four variants, one part each: ``vit`` (pre-LN blocks with both skip
connections, the ViT as published), ``vit_no_residual`` (a block is ``mlp(ln_2(attn(ln_1(x))))``),
``vit_no_layernorm`` (no LayerNorm anywhere, skip connections kept) and ``vit_neither``. The initialization is
the same in all four. Each over activation x depth x weight scale x seed; the field is logit 0 on the plane. The
heatmaps put the variants in rows, on one colour scale (figure ``architectures``); ``architectures.md``
tabulates the grid's corners.

Run: ``redshift-jax sweep sweeps/vit_components.py [--quick | --laptop] [--out PATH]``, then ``redshift-jax plot
PATH``. LAPTOP: 4 variants x gelu, relu, tanh x depths 1, 2, 4 x weight scales 0.5, 1, 2, 4, 8 x 2 seeds = 360
networks.
"""
import runpy
from pathlib import Path

import redshift_jax as rj

# the plane and measures of sweeps/architectures.py, so the files stay one comparison
_ARCHITECTURES = runpy.run_path(str(Path(__file__).with_name("architectures.py")))
FIGURE = "architectures"
MEASURES = _ARCHITECTURES["MEASURES"]
PLANE = _ARCHITECTURES["PLANE"]
VARIANTS = {"vit": {}, "vit_no_residual": {"residual": False}, "vit_no_layernorm": {"layernorm": False},
            "vit_neither": {"residual": False, "layernorm": False}}


def make(activations=("gelu", "relu", "tanh"), depths=(1, 2, 4), weight_scales=(0.5, 1.0, 2.0, 4.0, 8.0), seeds=2,
         resolution=32, d_model=64, heads=4, plane=None, variants=tuple(VARIANTS)):
    """The parts (``variants`` of ``VARIANTS``) on ``plane`` (default: the architectures MNIST plane)."""
    plane = rj.Plane(**PLANE) if plane is None else plane
    return {name: rj.Sweep(model=rj.ViT(d_model=d_model, heads=heads, plane=plane, **VARIANTS[name]),
                           axes={"activation": list(activations), "depth": list(depths),
                                 "weight_scale": list(weight_scales), "bias_scale": [0.0], "seed": list(range(seeds))},
                           resolution=resolution, measures=MEASURES, keep_values=True, name=name)
            for name in variants}


SWEEP = make(seeds=8, resolution=64, depths=(1, 2, 4, 8))   # 4 x 480 networks
LAPTOP = make()                                             # 4 x 90 networks at 32 x 32
QUICK = make(activations=("gelu",), depths=(1,), weight_scales=(1.0, 8.0), seeds=1, resolution=16, d_model=16,
             heads=2)
