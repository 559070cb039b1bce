# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # How much of parameter space behaves like this network?
#
# The local volume of a network (Scherlis & Belrose, arXiv 2501.18812; DESIGN.md section 14): around the
# parameters `w0`, the set `{w : C(w) < epsilon}` for a cost `C` that measures how differently `w` computes, taken
# as a star domain (each ray from `w0` leaves it once, at radius `r(u)`). Its Gaussian mass (or plain volume) is
# estimated from rays with importance weights (DESIGN.md section 21): half drawn uniformly, half in the directions
# where the prior's mass lies seen from `w0`. This notebook checks the estimator on closed forms, looks at one
# network's rays and diagnostics, and draws the `volume_blog` figures from a small suite. Open with jupytext or run
# as a script; `SMOKE = True` (set by the tests through the environment) shrinks everything.

# %%
import os
import runpy
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt  # inline in Jupyter; headless, matplotlib falls back to Agg by itself
import numpy as np

import redshift_jax as rj
from redshift_jax.measures import volume as V
from redshift_jax.studies.volume import plot_volume

SMOKE = os.environ.get("REDSHIFT_SMOKE", "0") == "1"
OUT = os.environ.get("REDSHIFT_NOTEBOOK_OUT", "figures/notebook_volume")
os.makedirs(OUT, exist_ok=True)
RAYS = 16 if SMOKE else 200

# %% [markdown]
# ## 1. A closed form: a quadratic bowl
#
# For `C(w) = (w - w0)^T A (w - w0)` the ray along `u` leaves the set at `r = sqrt(epsilon / u^T A u)`. The radius
# search (`search="secant"`) steps along the quadratic law `C ~ r^2` from `r = 1`, then by regula falsi in
# `(log r, log C)`, until `|C - epsilon| <= 1% epsilon`; `search="bisect"` (doubling, then bisection) is the old
# search. Both agree with the closed form to about 0.5%; the secant needs far fewer cost evaluations.

# %%
rng = np.random.default_rng(0)
A = np.diag(np.geomspace(0.1, 10.0, 6)).astype(np.float32)
w0 = rng.normal(size=6).astype(np.float32)
u = rng.normal(size=(RAYS, 6))
u = (u / np.linalg.norm(u, axis=1, keepdims=True)).astype(np.float32)
exact = np.sqrt(0.05 / np.einsum("ni,ij,nj->n", u, A, u))
for search in V.SEARCHES:
    found = V.star_radii(lambda w: (w - w0) @ A @ (w - w0), w0, u, 0.05, search=search)
    print(f"{search}: largest relative radius error {np.max(np.abs(found.radius / exact - 1)):.4f}; "
          f"cost evaluations per ray: {np.asarray(found.steps).mean():.1f}")

# %% [markdown]
# A cost that never reaches epsilon: the star domain holds the whole prior, log-volume 0. Uniform directions
# cannot see that (their estimate sits near `-D/2 + sqrt(2 D ln n)`); the mixture gets 0.

# %%
w_big = jnp.asarray(rng.normal(size=300 if SMOKE else 2000), jnp.float32)
for directions in V.DIRECTIONS:
    est = jax.jit(lambda key, _d=directions: V.log_volume(lambda w: 0.0 * jnp.sum(w), w_big, key, 48,
                                                          directions=_d))(jax.random.key(0))
    print(f"{directions}: log-volume {float(est.log_volume):.2f} nats, saturated {float(est.saturated):.2f}, "
          f"ess {float(est.ess):.1f}, resolved {bool(est.resolved)}")

# %% [markdown]
# ## 2. One modular-sum network's rays
#
# The modular-sum network (width 64, 16 x 16 lattice, a scalar logit, PyTorch's init) with the Bernoulli KL cost
# over the lattice, `sigma="init"` (each parameter's own prior std). Each ray gives `l_i`, the log Gaussian mass of
# its segment scaled to the whole sphere; the estimate is the log-mean-exp of the weighted `l_i - log q(u_i)`.

# %%
x = jnp.asarray(rj.grid(16, 2))
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), constrained_layout=True)
for depth in ((1,) if SMOKE else (1, 2, 3)):
    model = rj.MLP(activation="tanh", depth=depth, width=64, prior="torch")
    params = model.init(jax.random.key(0))
    est = jax.jit(lambda p, _m=model: V.network_log_volume(_m, p, x, n_directions=RAYS, sigma="init"))(params)
    print(f"depth {depth}: log-volume {float(est.log_volume):.1f} nats, per parameter "
          f"{float(est.per_parameter):.4f}, median radius {float(est.radius_median):.3g}, saturated "
          f"{float(est.saturated):.2f}, ess {float(est.ess):.1f}, resolved {bool(est.resolved)}, "
          f"unconverged {int(est.unconverged)}, unbracketed {int(est.unbracketed)}")
    radii = np.asarray(est.radii)   # infinite: the search stopped past the prior's reach (unbracketed)
    axes[0].hist(radii[np.isfinite(radii)], bins=20, alpha=0.6, label=f"depth {depth}")
    axes[1].hist(np.asarray(est.log_weights) - float(est.log_volume), bins=20, alpha=0.6, label=f"depth {depth}")
axes[0].set(xlabel="radius r(u)", ylabel="rays", title="where the rays leave KL < 0.01 (finite radii)")
axes[1].set(xlabel="log w_i - estimate (nats)", title="per-ray log weights")
axes[0].legend()
fig.savefig(Path(OUT) / "volume_rays.png", dpi=100)

# %% [markdown]
# ## 3. The blog's grid (small)
#
# `sweeps/volume_blog.py`: one sweep over activation x depth x weight scale x seeds, with the Fourier and
# LZ complexity of the same networks, and the same rays searched at several epsilons. Cells where most networks
# are not resolved (the estimate is the prior's, not the network's) are hatched.

# %%
blog = runpy.run_path(str(Path(rj.__file__).resolve().parents[1] / "sweeps" / "volume_blog.py"))
if SMOKE:
    sweep = blog["make"](activations=("tanh",), depths=(1,), scales=(0.32, 3.16), seeds=1, n_directions=2,
                         epsilons=(1e-3, 1e-1))
else:
    sweep = blog["make"](activations=("relu", "tanh", "gaussian"), seeds=8, n_directions=32)
results = rj.run_sweep(sweep, progress=False)
for path in plot_volume(results, OUT):
    print(path)
print((Path(OUT) / "volume.md").read_text())
