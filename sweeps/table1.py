"""Table 1: which architectural components raise or lower the complexity a random network prefers.

Each component is varied alone, between a low and a high setting with the same seeds for both (paired), around
every base network of a *panel*: activation x depth x weight scale (width 64, bias scale 1, paper prior). One base
(tanh, depth 3, weight scale 10) sits at the complexity ceiling of several measures, so an effect read at that
base alone can hide what the component does elsewhere; the panel shows the effect's sign and size across bases.

Priors: every part but one runs under the ``paper`` prior and the fan-in ``normal`` prior (a panel axis reported
prior by prior); the last part varies the width with the first layer held as at width 16 (``paper`` only), so the
width row can be read with and without the paper prior's first-layer confound (DESIGN.md section 20).

How the result is laid out (what ``redshift_jax.studies.nrs.table1_panel_rows`` reads):

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
# The paper's measures (Fourier nrs, Chebyshev with |c| weights, LZ78) and the seam-free / energy-weighted variants
# of DESIGN.md section 20 beside them: a verdict that depends on the measure says which (docs/measures.md).
MEASURES = ("fourier", "fourier_dct", "chebyshev", "chebyshev_energy", "lz")
HIGH_ACTIVATION = "relu"
FIRST_LAYER_WIDTH = 16
# component -> (axis, low setting, high setting, paper's claim for going from low to high, model fields);
# low None: the base's own value of that axis. Model fields set on the part's model; a part whose model fields
# include "prior" has no prior axis (it is reported under that prior only).
COMPONENTS = {
    "activation (ReLU instead of the base activation)": ("activation", None, HIGH_ACTIVATION, "lower", {}),
    "width (16 -> 256)": ("width", 16, 256, "no impact", {}),
    "bias magnitude (0.25 -> 4)": ("bias_scale", 0.25, 4.0, "no impact", {}),
    "depth (1 -> 6)": ("depth", 1, 6, "higher", {}),
    "weight magnitude (2 -> 20)": ("weight_scale", 2.0, 20.0, "higher", {}),
    "layer norm": ("layernorm", False, True, "lower", {}),
    "residual connections": ("residual", False, True, "lower", {}),
    "gating (multiplicative)": ("gating", False, True, "higher", {}),
    # The paper prior's first layer has range a sqrt(6 / (2 + width)): 3.8x narrower at width 256 than at 16.
    # Drawn as at width 16, the first layer stays fixed and the row measures the width alone (DESIGN.md 20).
    "width (16 -> 256), first layer as at width 16": (
        "width", 16, 256, "no impact", {"first_layer_width": FIRST_LAYER_WIDTH, "prior": "paper"}),
}
# Panels: axis -> values, the reference base's value first.
# ReLU last, so the activation part's axis is the panel's own and it shares one compiled function with the
# bias and weight-magnitude parts (the same switch and depths; ``chunk`` fixes the same chunk length).
# Prior: the paper's (the reference) and the fan-in normal prior W ~ N(0, a^2 / fan_in), whose first layer does
# not change with the width; reported apart, never pooled (redshift_jax.studies.nrs.TABLE1_SPLIT_AXES).
PRIORS = ("paper", "normal")
PANEL_QUICK = {"activation": ("tanh", "sin", "relu"), "depth": (3, 2), "weight_scale": (BASE_SCALE, 2.0),
               "prior": PRIORS}
PANEL_LAPTOP = {"activation": ("tanh", "gelu", "sin", "relu"), "depth": (3, 2, 4),
                "weight_scale": (BASE_SCALE, 2.0, 5.0, 20.0), "prior": PRIORS}
PANEL_SWEEP = {"activation": ("tanh", "gelu", "swish", "gaussian", "sin", "relu"), "depth": (3, 2, 4, 6),
               "weight_scale": (BASE_SCALE, 1.0, 2.0, 5.0, 20.0), "prior": PRIORS}


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


def make(panel, seeds=32, resolution=64, chunk=32, measures=MEASURES):
    """The suite: one part per component over ``panel``, ``seeds`` paired seeds, ``chunk`` networks per call."""
    reference = {"activation": BASE["activation"], "depth": BASE["depth"], "weight_scale": BASE_SCALE,
                 "prior": "paper"}
    if {name: values[0] for name, values in panel.items()} != {k: v for k, v in reference.items() if k in panel}:
        raise ValueError(f"the panel's first values must be the reference base {reference}")
    parts = {}
    for index, (label, (axis, low, high, _, fields)) in enumerate(COMPONENTS.items()):
        part_panel = {k: v for k, v in panel.items() if k not in fields}
        parts[f"c{index}"] = rj.Sweep(model=rj.MLP(**BASE, **fields),
                                      axes=component_axes(axis, low, high, part_panel, seeds),
                                      resolution=resolution, measures=measures, name=label, chunk_size=chunk)
    return parts


SWEEP = make(PANEL_SWEEP, seeds=64, chunk=64)
LAPTOP = make(PANEL_LAPTOP, seeds=32, chunk=32)
QUICK = make(PANEL_QUICK, seeds=8, chunk=8, measures=("fourier", "fourier_dct", "lz"))
CLAIMS = {label: claim for label, (_, _, _, claim, _) in COMPONENTS.items()}
