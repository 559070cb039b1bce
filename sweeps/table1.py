"""Table 1: which architectural components raise or lower the complexity a random network prefers.

Each component is varied alone, between a low and a high setting with the same seeds for both (paired), around
every base network of a *panel*: activation x depth x weight scale (width 64, bias scale 1, paper prior). One base
(tanh, depth 3, weight scale 10) sits at the complexity ceiling of several measures, so an effect read at that
base alone can hide what the component does elsewhere; the panel shows the effect's sign and size across bases.

How the result is laid out (what ``redshift_jax.plots.table1_panel_rows`` reads):

- One part per component. Its first axis is the component: the last value is the high setting, every earlier
  value a low setting. The other axes except ``seed`` are the panel, and each (low value, panel cell) is a base.
- The first value of every panel axis is the reference base (tanh, depth 3, weight scale 10), the single base of
  the earlier table: its networks and numbers are exactly those of that table (same keys, same seeds, and the
  engine computes a network bit for bit the same whatever else is in the sweep), and ``table1_rows`` reads it.
- Activation: "ReLU instead of the base activation". The axis holds the panel's non-ReLU activations (low, one
  base each) and then ``relu`` (high); a ReLU base has nothing to replace and is skipped.
- Depth (1 -> 6) and weight magnitude (2 -> 20) set a panel axis themselves, so their bases are the cells of the
  remaining panel axes (activation x weight scale, activation x depth): the settings stay those of the paper's
  comparison rather than moving with the base.

Engine cost: depth is read out of one trunk pass, activation is one compiled ``lax.switch``, weight scale and seed
are numeric axes; each part compiles once, twice for a structural component (width, layer norm, residual,
gating), and the activation, bias and weight-magnitude parts share one function (same switch, depths and chunk
length): 10 compiles for the whole suite at any size. Results and discussion: docs/table1-panel.md.
"""
import redshift_jax as rj

FIGURE = "table1"
BASE = dict(activation="tanh", depth=3, width=64)
BASE_SCALE = 10.0
MEASURES = ("fourier", "chebyshev", "lz")
HIGH_ACTIVATION = "relu"
# component -> (axis, low setting, high setting, paper's claim for going from low to high);
# low None: the base's own value of that axis.
COMPONENTS = {
    "activation (ReLU instead of the base activation)": ("activation", None, HIGH_ACTIVATION, "lower"),
    "width (16 -> 256)": ("width", 16, 256, "no impact"),
    "bias magnitude (0.25 -> 4)": ("bias_scale", 0.25, 4.0, "no impact"),
    "depth (1 -> 6)": ("depth", 1, 6, "higher"),
    "weight magnitude (2 -> 20)": ("weight_scale", 2.0, 20.0, "higher"),
    "layer norm": ("layernorm", False, True, "lower"),
    "residual connections": ("residual", False, True, "lower"),
    "gating (multiplicative)": ("gating", False, True, "higher"),
}
# Panels: axis -> values, the reference base's value first.
# ReLU last, so the activation part's axis is the panel's own and it shares one compiled function with the
# bias and weight-magnitude parts (the same switch and depths; ``chunk`` fixes the same chunk length).
PANEL_QUICK = {"activation": ("tanh", "sin", "relu"), "depth": (3, 2), "weight_scale": (BASE_SCALE, 2.0)}
PANEL_LAPTOP = {"activation": ("tanh", "gelu", "sin", "relu"), "depth": (3, 2, 4),
                "weight_scale": (BASE_SCALE, 2.0, 5.0, 20.0)}
PANEL_SWEEP = {"activation": ("tanh", "gelu", "swish", "gaussian", "sin", "relu"), "depth": (3, 2, 4, 6),
               "weight_scale": (BASE_SCALE, 1.0, 2.0, 5.0, 20.0)}


def component_axes(axis, low, high, panel, seeds):
    """The axes of one component's part: the component first, then the panel axes it leaves alone, then seed."""
    if low is None:  # the base's own value: every panel value but the high one, then the high one
        lows = [v for v in panel[axis] if v != high]
        axes = {axis: lows + [high]}
    else:
        axes = {axis: [low, high]}
    axes.update({name: list(values) for name, values in panel.items() if name != axis})
    axes["seed"] = list(range(seeds))
    return axes


def make(panel, seeds=32, resolution=64, chunk=32):
    """The suite: one part per component over ``panel``, ``seeds`` paired seeds, ``chunk`` networks per call."""
    reference = {"activation": BASE["activation"], "depth": BASE["depth"], "weight_scale": BASE_SCALE}
    if {name: values[0] for name, values in panel.items()} != reference:
        raise ValueError(f"the panel's first values must be the reference base {reference}")
    return {f"c{index}": rj.Sweep(model=rj.MLP(**BASE), axes=component_axes(axis, low, high, panel, seeds),
                                  resolution=resolution, measures=MEASURES, name=label, chunk_size=chunk)
            for index, (label, (axis, low, high, _)) in enumerate(COMPONENTS.items())}


SWEEP = make(PANEL_SWEEP, seeds=64, chunk=64)
LAPTOP = make(PANEL_LAPTOP, seeds=32, chunk=32)
QUICK = make(PANEL_QUICK, seeds=8, chunk=8)
CLAIMS = {label: claim for label, (_, _, _, claim) in COMPONENTS.items()}
