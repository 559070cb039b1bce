# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Your own architecture: a flax module's complexity before training
#
# Any `flax.linen` module that takes a batch of images becomes a sweep model with `rj.FlaxModel`: it is
# evaluated on a plane through input space, x(u, v) = x0 + s (u d1 + v d2), and its logit on the plane is a 2-D
# field that every complexity measure reads (DESIGN.md section 19, docs/guide/architectures.md). `weight_scale`
# multiplies every kernel your module's own initializers draw, `bias_scale` every bias, and your module's plain
# fields (`depth`, `features`, ...) become sweep axes. Open with jupytext or run as a script; `SMOKE = True` (set by
# the tests through the environment) shrinks everything.

# %%
import os

import flax.linen as nn
import jax
import matplotlib.pyplot as plt  # inline in Jupyter; headless, matplotlib falls back to Agg by itself
import numpy as np

import redshift_jax as rj
from redshift_jax.models.flax_model import register_module

SMOKE = os.environ.get("REDSHIFT_SMOKE", "0") == "1"
OUT = os.environ.get("REDSHIFT_NOTEBOOK_OUT", "figures/notebook_architectures")
os.makedirs(OUT, exist_ok=True)

# %% [markdown]
# ## 1. Bring a module
#
# A small conv net, written the way you would for training. `register_module` is optional: it lets a stored
# result rebuild its sweep (`ds.rj.sweep`), which the heatmap figure uses to redraw example functions.

# %%
ACTS = {"relu": nn.relu, "tanh": nn.tanh, "sin": np.sin}


@register_module
class MyNet(nn.Module):
    depth: int = 2
    features: int = 8
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = ACTS[self.activation](nn.Conv(self.features, (3, 3))(x))
        return nn.Dense(10)(x.mean(axis=(1, 2)))


plane = rj.Plane("digits" if SMOKE else "mnist", anchor=0, mode="random", scale=1.0)
model = rj.FlaxModel(MyNet(activation="tanh"), plane=plane)     # logit 0 on the plane (output="margin" also works)
print(model.structural_axes, list(model.numeric_axes))

# %% [markdown]
# ## 2. One network on the plane
#
# The plane's corners and centre as images, and the network's logit over the plane.

# %%
resolution = 16 if SMOKE else 64
points = plane.points(resolution)
params = model.init(jax.random.key(0), weight_scale=4.0)
field = np.asarray(jax.jit(model.apply)(params, rj.grid(resolution, 2))).reshape(resolution, resolution)
corners = [0, resolution - 1, (resolution // 2) * resolution + resolution // 2, resolution ** 2 - 1]
fig, axes = plt.subplots(1, 5, figsize=(12, 2.6), constrained_layout=True)
for ax, i in zip(axes, corners):
    ax.imshow(points[i, ..., 0], cmap="gray")
    ax.set(title=f"plane point {i}", xticks=[], yticks=[])
axes[4].imshow(field, cmap="RdBu_r", origin="lower")
axes[4].set(title="logit 0, weight scale 4", xticks=[], yticks=[])
fig.savefig(f"{OUT}/plane_and_field.png", dpi=90)

# %% [markdown]
# ## 3. Its heatmap: depth x weight scale, like Figure 4
#
# The module's fields are the sweep's structural axes; `weight_scale` and `seed` are vmapped. With fields named
# `activation` and `depth`, the project's Figure 4 heatmaps draw it as they draw an MLP.

# %%
sweep = rj.Sweep(model=model,
                 axes={"activation": ["tanh"] if SMOKE else ["relu", "tanh", "sin"],
                       "depth": [1, 2] if SMOKE else [1, 2, 4],
                       "weight_scale": [0.5, 4.0] if SMOKE else np.geomspace(0.5, 8, 7).round(4).tolist(),
                       "seed": list(range(2 if SMOKE else 8))},
                 resolution=resolution, measures=("fourier_dct", "lz"))
ds = rj.run_sweep(sweep, progress=False)
print(ds["fourier_dct"].mean("seed").round(4).values.tolist())
paths = rj.studies.plot_result(ds, "heatmaps", OUT)
print([p.name for p in paths])

# %% [markdown]
# ## 4. Against the built-in CNN and ViT
#
# `rj.CNN` and `rj.ViT` are `FlaxModel`s too (the project's activations and priors; the ViT with GPT-2's init and
# an `ln_gain` axis). `sweeps/architectures.py` runs the full comparison with an MLP on pixels; here one row.

# %%
builtins = {"CNN": rj.CNN(depth=2, width=8, plane=plane), "ViT": rj.ViT(depth=1 if SMOKE else 2, d_model=16 if SMOKE
                                                                         else 64, heads=2 if SMOKE else 4,
                                                                         plane=plane)}
for name, other in builtins.items():
    result = rj.run_sweep(rj.Sweep(model=other, axes={"activation": ["tanh"] if SMOKE else ["relu", "tanh"],
                                                      "weight_scale": [0.5, 4.0], "seed": [0, 1]},
                                   resolution=resolution, measures=("fourier_dct",)), progress=False)
    print(name, result["fourier_dct"].mean("seed").round(4).values.tolist())
