"""Any architecture (issue 26, item 4): do residual connections and layer norm lower a CNN's complexity, as the
NRS paper found for MLPs (Table 1: "residual connections" and "layer normalization" lower it)?

The CNN of ``sweeps/architectures.py`` (3x3 convs, width 16, a 2x2 pool after every second layer, global pool,
``normal`` prior: LeCun at weight scale 1, He at sqrt 2; zero biases) on the same MNIST plane, in four variants, one
part each: ``cnn`` (plain), ``cnn_residual`` (every layer after the first adds its input), ``cnn_layernorm`` (layer
norm over channels before the activation, no affine parameters) and ``cnn_residual_layernorm``, all with zero
biases; then ``cnn_biased`` and ``cnn_layernorm_biased``, the same with biases at bias scale 0.5. Each over
activation x depth x weight scale x seed; the field is logit 0 on the plane. The heatmaps put the variants in rows,
on one colour scale (figure ``architectures``); ``architectures.md`` tabulates the grid's corners.

Run: ``redshift-jax sweep sweeps/cnn_components.py [--quick | --laptop] [--out PATH]``, then ``redshift-jax plot
PATH``. LAPTOP: 6 variants x relu, tanh, sin x depths 2, 4, 8 x 5 weight scales (0.5 .. 8) x 2 seeds = 540 networks.
"""
import runpy
from pathlib import Path

import numpy as np

import redshift_jax as rj

# the plane and measures of sweeps/architectures.py, so the three files stay one comparison
_ARCHITECTURES = runpy.run_path(str(Path(__file__).with_name("architectures.py")))
FIGURE = "architectures"
MEASURES = _ARCHITECTURES["MEASURES"]
PLANE = _ARCHITECTURES["PLANE"]
VARIANTS = {"cnn": {}, "cnn_residual": {"residual": True}, "cnn_layernorm": {"layernorm": True},
            "cnn_residual_layernorm": {"residual": True, "layernorm": True}}
# with zero biases (He / LeCun) layer norm makes the CNN exactly invariant to the weight scale, and on MNIST's zero
# background its first layer sees only the direction of the plane's offset (fields angular around the anchor): the
# same two variants with biases drawn at bias scale 0.5 (the normal prior's N(0, 0.25)) separate the two effects
BIASED = {"cnn_biased": {}, "cnn_layernorm_biased": {"layernorm": True}}


def make(activations=("relu", "tanh", "sin"), depths=(2, 4, 8), scales=5, seeds=2, resolution=32, width=16):
    weight_scales = np.round(np.geomspace(0.5, 8.0, scales), 4).tolist()
    plane = rj.Plane(**PLANE)
    def part(name, flags, bias_scale):
        return rj.Sweep(model=rj.CNN(width=width, prior="normal", plane=plane, **flags),
                        axes={"activation": list(activations), "depth": list(depths), "weight_scale": weight_scales,
                              "bias_scale": [bias_scale], "seed": list(range(seeds))},
                        resolution=resolution, measures=MEASURES, keep_values=True, name=name)

    return {**{name: part(name, flags, 0.0) for name, flags in VARIANTS.items()},
            **{name: part(name, flags, 0.5) for name, flags in BIASED.items()}}


SWEEP = make(seeds=8, resolution=64, width=32, scales=9)    # 6 x 648 networks
LAPTOP = make()                                             # 6 x 90 networks at 32 x 32
QUICK = make(activations=("relu", "tanh"), depths=(2,), scales=3, seeds=1, resolution=16, width=8)
