# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # The infinite-width limit: random MLPs against their NNGP
#
# As its width grows, a random MLP becomes a Gaussian process whose kernel follows from a layer-by-layer
# recursion (DESIGN.md section 16). `rj.models.NNGP` is that process as a sweep model: a seed is one GP sample
# on the grid, scored with the same complexity measures as finite networks. This notebook checks the kernel
# against finite networks, looks at what each activation's dual does to correlations, draws GP samples beside
# networks of growing width, and runs a small `width_limit` suite. Open with jupytext or run as a script;
# `SMOKE = True` (set by the tests through the environment) shrinks everything.

# %%
import os
import runpy
from pathlib import Path

import jax
import matplotlib.pyplot as plt  # inline in Jupyter; headless, matplotlib falls back to Agg by itself
import numpy as np

import redshift_jax as rj
from redshift_jax.models import nngp
from redshift_jax.models.nngp import NNGP
from redshift_jax.studies.nngp import plot_width_limit

SMOKE = os.environ.get("REDSHIFT_SMOKE", "0") == "1"
OUT = os.environ.get("REDSHIFT_NOTEBOOK_OUT", "figures/notebook_width_limit")
os.makedirs(OUT, exist_ok=True)

# %% [markdown]
# ## 1. The kernel is the covariance of wide networks
#
# Empirical covariance of `count` width-512 MLPs (normal prior: W ~ N(0, a^2 / fan_in), b ~ N(0, b^2)) at four
# points against the kernel. Depth 1 is exact at any width; deeper networks differ by O(1 / width).

# %%
x = np.array([[0.0, 0.0], [0.9, -0.4], [-0.6, -0.8], [0.5, 0.5]], np.float32)
count = 500 if SMOKE else 4000
for activation, depth in (("tanh", 1),) if SMOKE else (("relu", 1), ("tanh", 1), ("tanh", 2), ("sin", 2)):
    spec = rj.MLP(activation=activation, depth=depth, width=512, prior="normal")

    @jax.jit
    def outputs(seeds):   # the keys are made inside: eagerly, each of their ops would compile on its own
        keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(0), seeds)
        return jax.vmap(lambda k: spec.apply(spec.init(k, weight_scale=2.0), x))(keys)

    f = np.asarray(outputs(np.arange(count, dtype=np.uint32)), np.float64)
    empirical = f.T @ f / count
    k = NNGP(activation, depth=depth).kernel(x, x, weight_scale=2.0)
    print(f"{activation} depth {depth}: max |empirical - kernel| / max diag = "
          f"{np.abs(empirical - k).max() / np.diag(k).max():.3f}  (MC noise ~ {np.sqrt(2 / count):.3f})")

# %% [markdown]
# ## 2. What each layer does to correlations
#
# One layer maps the correlation rho of two inputs of variance q to that of the outputs,
# `V(q, q, rho q) / V(q, q, q)` (no bias). Above the diagonal near rho = 1 the layer decorrelates nearby inputs,
# which is what makes deep, large-variance networks complex.

# %%
rho = np.linspace(-1, 1, 201)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), constrained_layout=True)
for ax, q in zip(axes, (0.5, 5.0, 50.0)):
    for activation in rj.ACTIVATIONS:
        if SMOKE and activation == "selu":
            continue
        v = nngp.dual(activation, q, q, rho * q)
        mean = nngp.dual(activation, q, q, 0.0)      # E[phi]^2: subtract it to see correlations, not offsets
        ax.plot(rho, (v - mean) / (nngp.dual(activation, q, q, q) - mean), lw=1, label=activation)
    ax.plot(rho, rho, "k:", lw=1)
    ax.set(title=f"variance q = {q:g}", xlabel="input correlation", ylabel="output correlation")
axes[0].legend(fontsize=7)
fig.savefig(f"{OUT}/nngp_duals.png", dpi=90)

# %% [markdown]
# ## 3. GP samples beside networks of growing width
#
# The same weight scale; networks of widths 8 .. 1024 and a GP sample on the 64 x 64 grid (16 x 16 at smoke
# size). The GP's Cholesky factor is computed once (`NNGP.setup`) and serves every sample.

# %%
resolution = 16 if SMOKE else 64
points = rj.grid(resolution, 2)
widths = (8,) if SMOKE else (8, 64, 1024)
fig, axes = plt.subplots(2, len(widths) + 1, figsize=(2.4 * (len(widths) + 1), 5.0), constrained_layout=True)
for row, (activation, scale) in enumerate((("relu", 2.0), ("tanh", 4.0))):
    for col, width in enumerate(widths):
        spec = rj.MLP(activation=activation, depth=3, width=width, prior="normal")
        image = spec.apply(spec.init(jax.random.key(col), weight_scale=scale), points).reshape(resolution, -1)
        axes[row, col].imshow(image, origin="lower")
        axes[row, col].set_title(f"{activation}, width {width}", fontsize=8)
    gp = NNGP(activation, depth=3)
    state = gp.setup(points.astype(np.float64), weight_scale=scale)
    sample = gp.apply(gp.init(jax.random.key(0)), points, state=state).reshape(resolution, -1)
    axes[row, -1].imshow(sample, origin="lower")
    axes[row, -1].set_title(f"{activation}, NNGP sample", fontsize=8)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.savefig(f"{OUT}/nngp_samples.png", dpi=90)

# %% [markdown]
# ## 4. A small width_limit suite
#
# The parts of `sweeps/width_limit.py` (run it with `redshift-jax sweep sweeps/width_limit.py --laptop`)
# at a small size, drawn with `redshift_jax.studies.nngp.plot_width_limit`.

# %%
make = runpy.run_path(str(Path(rj.__file__).resolve().parents[1] / "sweeps" / "width_limit.py"))["make"]
if SMOKE:
    suite = make(activations=("relu",), widths=(8, 64), scales=(1.0,), seeds=4, gp_seeds=8, resolution=16)
else:
    suite = make(activations=("relu", "tanh"), widths=(8, 32, 128, 512), scales=(1.0, 4.0), seeds=32,
                 gp_seeds=128, resolution=32)
results = rj.run_suite(suite, progress=False)
for path in plot_width_limit(results, OUT, examples=not SMOKE):
    print(path)
print(Path(OUT, "nngp.md").read_text()[:2000])
