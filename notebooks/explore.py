# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Explore the inductive bias of a random network
#
# Pick an architecture and scales, look at the functions it draws, their spectra and complexity, then run a
# small sweep and plot it. Open with jupytext (`jupytext --to notebook notebooks/explore.py`) or run as a
# script. `SMOKE = True` (set by the tests through the environment) shrinks everything.

# %%
import os

import jax
import matplotlib.pyplot as plt  # inline in Jupyter; headless, matplotlib falls back to Agg by itself
import numpy as np

import redshift_jax as rj

SMOKE = os.environ.get("REDSHIFT_SMOKE", "0") == "1"
OUT = os.environ.get("REDSHIFT_NOTEBOOK_OUT", "figures/notebook")
os.makedirs(OUT, exist_ok=True)
RES = 32 if SMOKE else 64

# %% [markdown]
# ## 1. An architecture and its functions

# %%
spec = rj.MLP(activation="tanh", depth=3, width=64)
x = rj.grid(RES, 2)
scales = [1.0, 4.0, 16.0]
fig, axes = plt.subplots(2, len(scales), figsize=(3 * len(scales), 6))
for col, scale in enumerate(scales):
    params = spec.init(jax.random.key(0), weight_scale=scale)
    img = np.asarray(spec.apply(params, x)).reshape(RES, RES)
    axes[0, col].imshow(img, cmap="RdBu_r", origin="lower")
    axes[0, col].set_title(f"weight scale {scale}\nFourier {float(rj.measures.fourier(img)):.3f}, "
                           f"LZ {float(rj.measures.lz(img)):.2f}", fontsize=8)
    spectrum = np.abs(np.fft.rfft2(img))[: RES // 2 + 1]
    spectrum[0, 0] = 0
    axes[1, col].imshow(np.log1p(spectrum), origin="lower", cmap="magma")
    axes[1, col].set_title("log |rfft2| (kept quadrant)", fontsize=8)
fig.tight_layout()
fig.savefig(f"{OUT}/functions.png", dpi=90)

# %% [markdown]
# ## 2. All measures for a few activations

# %%
for activation in ["relu", "tanh", "sin"]:
    net = spec.replace(activation=activation)
    img = net.apply(net.init(jax.random.key(1), weight_scale=4.0), x).reshape(RES, RES)
    row = {name: float(fn(img)) for name, fn in rj.measures.MEASURES.items()}
    print(activation, {k: round(v, 3) for k, v in row.items()})

# %% [markdown]
# ## 3. A small sweep, one jitted call per activation

# %%
sweep = rj.Sweep(model=rj.MLP(width=32 if SMOKE else 64),
                 axes={"activation": ["relu", "tanh", "sin"], "depth": [1, 2, 3] if SMOKE else list(range(1, 7)),
                       "weight_scale": np.geomspace(1, 20, 4 if SMOKE else 8).round(3).tolist(),
                       "seed": list(range(2 if SMOKE else 8))},
                 resolution=RES, measures=("fourier", "lz"))
ds = rj.run_sweep(sweep, progress=not SMOKE)
print(ds.fourier.mean("seed").round(3))

# %%
from redshift_jax.studies import nrs as plots

paths = plots.plot_heatmaps(ds, OUT, examples=True)
print([str(p) for p in paths])
