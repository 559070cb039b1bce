"""Table 1: which architectural components raise or lower the complexity a random network prefers.

Each component is varied alone around one base network (tanh, depth 3, width 64, weight scale 10, bias
scale 1, paper prior), with the same seeds for both settings (paired). The effect is the change in mean
Fourier (nrs) complexity from the low to the high setting, with a bootstrap interval over seeds; see
`redshift_jax.plots.table1_rows` for the classification rule.
"""
import redshift_jax as rj

FIGURE = "table1"
BASE = dict(activation="tanh", depth=3, width=64)
BASE_SCALE = 10.0
MEASURES = ("fourier", "chebyshev", "lz")
# component -> (axis, low setting, high setting, paper's claim for going from low to high)
COMPONENTS = {
    "activation (ReLU instead of tanh)": ("activation", "tanh", "relu", "lower"),
    "width (16 -> 256)": ("width", 16, 256, "no impact"),
    "bias magnitude (0.25 -> 4)": ("bias_scale", 0.25, 4.0, "no impact"),
    "depth (1 -> 6)": ("depth", 1, 6, "higher"),
    "weight magnitude (2 -> 20)": ("weight_scale", 2.0, 20.0, "higher"),
    "layer norm": ("layernorm", False, True, "lower"),
    "residual connections": ("residual", False, True, "lower"),
    "gating (multiplicative)": ("gating", False, True, "higher"),
}


def make(seeds=32, resolution=64):
    parts = {}
    for index, (label, (axis, low, high, _)) in enumerate(COMPONENTS.items()):
        axes = {axis: [low, high], "seed": list(range(seeds))}
        if axis != "weight_scale":
            axes["weight_scale"] = [BASE_SCALE]
        parts[f"c{index}"] = rj.Sweep(model=rj.MLP(**BASE), axes=axes, resolution=resolution,
                                      measures=MEASURES, name=label)
    return parts


SWEEP = make(seeds=64)
LAPTOP = make(seeds=32)
QUICK = make(seeds=8)
CLAIMS = {label: claim for label, (_, _, _, claim) in COMPONENTS.items()}
