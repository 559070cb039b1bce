"""Any architecture (issue 26, item 4): the ViT's layer-norm gain, the knob GPT-2's Figure 10 turns.

The ViT of ``sweeps/architectures.py`` (4 x 4 patches, d_model 64, 4 heads, pre-LN blocks with residual
connections, GPT-2's init times ``weight_scale``, zero biases) on the same MNIST plane, with every LayerNorm gain
multiplied by ``ln_gain`` (0.5, 1, 2, 4; one part each, so the heatmaps put the gains in rows on one colour scale,
figure ``architectures``). A ViT always has residual connections and layer norm; the gain is how much the norm's
output drives each block. Each part over activation x depth x weight scale x seed; the field is logit 0.

Run: ``redshift-jax sweep sweeps/vit_ln_gain.py [--quick | --laptop] [--out PATH]``, then ``redshift-jax plot
PATH``. LAPTOP: 4 gains x gelu, relu, tanh x depths 1, 2, 4 x weight scales 0.5, 1, 2, 4, 8 x 2 seeds = 360 networks.
"""
import runpy
from pathlib import Path

import redshift_jax as rj

# the plane and measures of sweeps/architectures.py, so the three files stay one comparison
_ARCHITECTURES = runpy.run_path(str(Path(__file__).with_name("architectures.py")))
FIGURE = "architectures"
MEASURES = _ARCHITECTURES["MEASURES"]
PLANE = _ARCHITECTURES["PLANE"]
GAINS = (0.5, 1.0, 2.0, 4.0)


def make(activations=("gelu", "relu", "tanh"), depths=(1, 2, 4), weight_scales=(0.5, 1.0, 2.0, 4.0, 8.0), seeds=2,
         resolution=32, d_model=64, heads=4, gains=GAINS):
    model = rj.ViT(d_model=d_model, heads=heads, plane=rj.Plane(**PLANE))
    return {f"vit_gain{gain:g}": rj.Sweep(model=model,
                                          axes={"activation": list(activations), "depth": list(depths),
                                                "weight_scale": list(weight_scales), "bias_scale": [0.0],
                                                "ln_gain": [gain], "seed": list(range(seeds))},
                                          resolution=resolution, measures=MEASURES, keep_values=True,
                                          name=f"vit_gain{gain:g}")
            for gain in gains}


SWEEP = make(seeds=8, resolution=64, depths=(1, 2, 4, 8))   # 4 x 480 networks
LAPTOP = make()                                             # 4 x 90 networks at 32 x 32
QUICK = make(activations=("gelu",), depths=(1,), weight_scales=(1.0, 8.0), seeds=1, resolution=16, d_model=16,
             heads=2, gains=(0.5, 2.0))
