# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Where random ReLU networks bend
#
# Holmes (arXiv 2304.09837): the kinks of a random one-hidden-layer ReLU network depend on the *shape* of the
# parameter distribution, not its size. With iid uniform (or Gaussian) weights and biases half of the n units
# bend inside [-1, 1]; with the weight vector uniform in a ball only about sqrt(2n/pi) do. This notebook finds
# the kinks exactly (`redshift_jax.measures.kinks`, DESIGN.md section 15), checks the closed forms
# (`redshift_jax.studies.kinks`), looks at depth and at 2-D linear regions, and draws the `kinks_holmes` figures
# from a small suite. Open with jupytext or run as a script; `SMOKE = True` (set by the tests through the
# environment) shrinks everything.

# %%
import functools
import os
import runpy
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt  # inline in Jupyter; headless, matplotlib falls back to Agg by itself
import numpy as np

import redshift_jax as rj
from redshift_jax.studies import kinks  # the closed forms; it re-exports measures.kinks' algorithm

SMOKE = os.environ.get("REDSHIFT_SMOKE", "0") == "1"
OUT = os.environ.get("REDSHIFT_NOTEBOOK_OUT", "figures/notebook_kinks")
os.makedirs(OUT, exist_ok=True)
NETWORKS = 1000 if SMOKE else 20_000


@functools.partial(jax.jit, static_argnames=("spec", "count"))
def many(spec, count, seed=0, weight_scale=1.0, bias_scale=1.0):
    """``count`` networks of ``spec`` (parameters with a leading network axis), one compile per spec and count."""
    keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(seed), jnp.arange(count, dtype=jnp.uint32))
    return jax.vmap(lambda k: spec.init(k, weight_scale=weight_scale, bias_scale=bias_scale))(keys)


# %% [markdown]
# ## 1. One network, its kinks
#
# `positions_1d` returns the exact kink positions (NaN-padded to a static length) and their number. A unit
# switching is a kink only if the slope of f really changes there.

# %%
# (at smoke size: the width and batch size of section 2, whose draws then need no compile of their own)
n, drawn = (3, NETWORKS) if SMOKE else (30, 1)
x = np.linspace(-1, 1, 2001, dtype=np.float32)[:, None]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.2), constrained_layout=True)
for ax, prior in zip(axes, kinks.HOLMES_PRIORS):
    settings = kinks.holmes_settings(prior, n)
    spec = rj.MLP(in_dim=1, depth=1, width=n, prior=prior)
    batch = many(spec, drawn, seed=3, weight_scale=settings["weight_scale"], bias_scale=settings["bias_scale"])
    batch = jax.tree.map(lambda a: np.asarray(a)[:1], batch)          # the first network
    pos, count = kinks.positions_1d_many(spec, batch, -1.0, 1.0)     # jitted (positions_1d is one network)
    params, pos, count = jax.tree.map(lambda a: a[0], batch), np.asarray(pos[0]), int(count[0])
    pos = pos[:count]
    ax.plot(x[:, 0], spec.apply(params, x), lw=1)
    ax.plot(pos, spec.apply(params, pos[:, None].astype(np.float32)), "r.", ms=5)
    ax.set_title(f"{prior}: {count} kinks of {n} units (E[K] = {kinks.expected_kinks(prior, n):.1f})",
                 fontsize=9)
fig.savefig(f"{OUT}/kinks_functions.png", dpi=90)

# %% [markdown]
# ## 2. The closed forms
#
# `holmes_settings(prior, n)` gives the MLP settings whose first layer has exactly the closed forms'
# distribution (uniform: W, b ~ U(-a, a); normal: W ~ N(0, a^2 / fan_in) with fan_in = 1, b ~ N(0, a^2); ball:
# bias scale = the ball's radius). `count_1d_many` counts a batch of networks in one jitted call.

# %%
widths = (3,) if SMOKE else (1, 3, 5, 10, 100, 1000)
small = {}
print(f"{'prior':8s} {'n':>5s} {'mean K':>9s} {'+- SE':>7s} {'E[K]':>9s} {'z':>6s}")
for prior in kinks.HOLMES_PRIORS:
    for n in widths:
        settings = kinks.holmes_settings(prior, n)
        spec = rj.MLP(in_dim=1, depth=1, width=n, prior=prior)
        params = many(spec, NETWORKS, seed=kinks.HOLMES_PRIORS.index(prior), weight_scale=settings["weight_scale"],
                      bias_scale=settings["bias_scale"])
        counts = np.asarray(kinks.count_1d_many(spec, params))
        mean, se = counts.mean(), counts.std(ddof=1) / np.sqrt(len(counts))
        want = kinks.expected_kinks(prior, n)
        print(f"{prior:8s} {n:5d} {mean:9.3f} {se:7.3f} {want:9.3f} {(mean - want) / se:6.2f}")
        small[prior, n] = counts.astype(int)

# %% [markdown]
# The pmf for small n: Binomial(n, 1/2) for uniform and normal; for the ball the entries of w are dependent
# and the count is not binomial (inclusion-exclusion over the ball's moments, `pmf_ball`).

# %%
for (prior, n), counts in small.items():
    if n <= 5:
        print(f"{prior}, n={n}: measured", np.round(np.bincount(counts, minlength=n + 1) / len(counts), 3),
              "formula", np.round(kinks.kink_pmf(prior, n), 3))

# %% [markdown]
# ## 3. Depth at a fixed number of units
#
# Deeper networks: every layer's pre-activations are piecewise linear in x, so the kinks are found layer by
# layer (exact; a network with more than `max_kinks` candidates gets NaN, never a truncated count).

# %%
total = 24 if SMOKE else 60
for depth in (2,) if SMOKE else (1, 2, 3, 4, 6):
    spec = rj.MLP(in_dim=1, depth=depth, width=total // depth, prior="uniform")
    counts = np.asarray(kinks.count_1d_many(spec, many(spec, 100 if SMOKE else 2000, seed=2)))
    print(f"depth {depth}, width {total // depth}: mean kinks {np.nanmean(counts):.2f}, "
          f"{np.nanmean(counts) / total:.3f} per unit, NaN {int(np.isnan(counts).sum())}")

# %% [markdown]
# ## 4. Linear regions of a 2-D network
#
# `linear_regions_2d` traces the grid lines exactly and counts the distinct activation patterns met: exact for
# every region wider than one grid cell, so it grows to the true count as the grid is refined.

# %%
spec2 = rj.MLP(in_dim=2, depth=2, width=8, prior="uniform")


@functools.partial(jax.jit, static_argnames="resolution")
def regions(key, resolution):
    """Linear regions of the network ``spec2.init(key)`` met by ``resolution`` lines each way (drawn inside the
    compiled function: eagerly, each op of ``init`` would compile on its own)."""
    return kinks.linear_regions_2d(spec2, spec2.init(key, weight_scale=2.0), -1.0, 1.0, resolution)


for res in (9,) if SMOKE else (3, 9, 33, 129, 513):
    print(f"resolution {res:4d}: {float(regions(jax.random.key(0), res)):.0f} regions")

# %% [markdown]
# ## 5. The kinks_holmes figures from a small suite
#
# The same parts as `sweeps/kinks_holmes.py` (run it with `redshift-jax sweep sweeps/kinks_holmes.py --laptop`),
# at a small size, drawn with `redshift_jax.studies.kinks.plot_kinks`.

# %%
make = runpy.run_path(str(Path(rj.__file__).resolve().parents[1] / "sweeps" / "kinks_holmes.py"))["make"]
if SMOKE:
    suite = make(widths=(3,), seeds=200, radii=(), depths=(), complexity_seeds=0, regions_seeds=0)
else:
    suite = make(widths=(1, 2, 3, 5, 10, 30, 100), seeds=2000, depths=(1, 2, 3), depth_seeds=200,
                 complexity_depths=(1, 2, 3), complexity_scales=(1.0, 5.0), complexity_seeds=20, regions_seeds=0)
results = rj.run_suite(suite, progress=False)
for path in kinks.plot_kinks(results, OUT):
    print(path)
print(Path(OUT, "kinks.md").read_text()[:1500])
