"""Figure 3: example functions of random networks, 2-D input, 3 hidden layers, ReLU against tanh over weight scale.

Each image is one network (seed 0) on the 64 x 64 grid over [-1, 1]^2, width 64, bias scale 1, `paper` prior;
the scores above it are the seam-free Fourier measure, Chebyshev order with energy weights and LZ78.
"""
import redshift_jax as rj

FIGURE = "gallery"
MEASURES = ("fourier", "fourier_dct", "chebyshev_energy", "lz")


def make(activations=("relu", "tanh"), scales=(1.0, 2.0, 5.0, 10.0, 20.0, 50.0), seeds=2, resolution=64):
    return rj.Sweep(model=rj.MLP(depth=3, width=64),
                    axes={"activation": list(activations), "weight_scale": list(scales), "seed": list(range(seeds))},
                    resolution=resolution, measures=MEASURES, keep_values=True, name="fig3_examples")


SWEEP = make(activations=("relu", "gelu", "tanh", "sin"), seeds=4)
LAPTOP = make()
QUICK = make(scales=(1.0, 10.0), seeds=1)
