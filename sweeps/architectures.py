"""Any architecture (issue 26): does the Neural Redshift picture carry over from MLPs to CNNs and ViTs?

Three image models on one plane through MNIST (anchor 0, random directions spanning one image norm; DESIGN.md
section 19): an MLP on the flattened pixels (``rj.PixelMLP``, width 64), ``rj.CNN`` (3x3 convs, width 16, pooling
every second layer) and ``rj.ViT`` (patches 4 x 4, d_model 64, 4 heads, pre-LN). Each over activation x depth x
weight scale x seed; the field is logit 0 on the plane. MLP and CNN draw weights from the ``normal`` prior
(std = weight_scale / sqrt(fan_in): LeCun at 1, He at sqrt 2) with zero biases (``bias_scale`` 0, as both inits
have); the ViT has GPT-2's init (kernels normal 0.02, residual projections 0.02 / sqrt 24, zero biases), which
``weight_scale`` multiplies. So weight scale 1 is each architecture's own literature default (He: sqrt 2 for the
ReLU family in MLPs and CNNs). Weight scales on a log grid 0.5 .. 8 that holds 1 and sqrt 2.
"""
import numpy as np

import redshift_jax as rj

FIGURE = "architectures"
MEASURES = ("fourier", "fourier_dct", "lz")
ACTIVATIONS = ("relu", "gelu", "tanh", "sin")
DEPTHS = (1, 2, 4, 8)
PLANE = {"dataset": "mnist", "anchor": 0, "mode": "random", "scale": 1.0, "seed": 0}


def models(mlp_width=64, cnn_width=16, d_model=64, heads=4):
    plane = rj.Plane(**PLANE)
    return {"mlp": rj.PixelMLP(width=mlp_width, prior="normal", plane=plane),
            "cnn": rj.CNN(width=cnn_width, prior="normal", plane=plane),
            "vit": rj.ViT(d_model=d_model, heads=heads, plane=plane)}


def make(activations=ACTIVATIONS, depths=DEPTHS, scales=9, seeds=2, resolution=32, **sizes):
    weight_scales = np.round(np.geomspace(0.5, 8.0, scales), 4).tolist()
    return {name: rj.Sweep(model=model,
                           axes={"activation": list(activations), "depth": list(depths), "weight_scale": weight_scales,
                                 "bias_scale": [0.0], "seed": list(range(seeds))},
                           resolution=resolution, measures=MEASURES, keep_values=True, name=name)
            for name, model in models(**sizes).items()}


SWEEP = make(seeds=8, resolution=64, cnn_width=32)          # 3 x 1,152 networks
LAPTOP = make()                                             # 3 x 288 networks at 32 x 32
QUICK = make(activations=("relu", "tanh"), depths=(1, 4), scales=3, seeds=1, resolution=16, mlp_width=16,
             cnn_width=8, d_model=16, heads=2)
