# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # What untrained GPT-2s say
#
# The paper's Figure 10 (DESIGN.md section 13): a randomly initialized GPT-2, fed one random token, decodes
# greedily into sequences that are mostly repetitive (low Lempel-Ziv complexity). The activation, the LayerNorm
# gain and the depth change that, as they change the complexity of random MLPs. This notebook decodes a few
# sequences, measures them, runs a small gain sweep through the engine and draws Figure 10 from it. Open with
# jupytext or run as a script; `SMOKE = True` (set by the tests through the environment) shrinks everything.

# %%
import os

import jax
import numpy as np

import redshift_jax as rj
from redshift_jax.measures.tokens import lz_per_token, lzw_size
from redshift_jax.studies.gpt2 import check_claims, plot_fig10

SMOKE = os.environ.get("REDSHIFT_SMOKE", "0") == "1"
OUT = os.environ.get("REDSHIFT_NOTEBOOK_OUT", "figures/notebook_gpt2")
os.makedirs(OUT, exist_ok=True)
D_MODEL, HEADS, VOCAB = (32, 2, 512) if SMOKE else (256, 4, 50257)
SEEDS = 3 if SMOKE else 16

# %% [markdown]
# ## 1. One model, a few sequences
#
# `spec.init(key)` is GPT-2 small's initialization (stds 0.02 and 0.02 / sqrt(24)), `spec.prompt(key)` one
# token uniform over the vocabulary, `spec.generate` greedy decoding with a key/value cache. The same weights
# decode at several LayerNorm gains; the token ids are printed with their LZ per token (the floor is 13/101 for
# one repeated token, 14/101 for `a b b b ...`).

# %%
spec = rj.GPT2(activation="gelu", depth=12, d_model=D_MODEL, n_heads=HEADS, vocab=VOCAB)
key = jax.random.key(0)
params, prompt = spec.init(key), spec.prompt(key)
for activation in ("gelu", "tanh"):
    model = spec.replace(activation=activation)
    decode = jax.jit(lambda params, prompt, gain, model=model: model.generate(params, prompt, gain, n_new=40))
    for gain in (0.3, 1.0, 10.0):
        tokens = decode(params, prompt, gain)
        print(f"{activation:5s} gain {gain:4.1f}  LZ/token {float(lz_per_token(tokens)):.3f}  "
              f"LZW {int(lzw_size(tokens)):3d}  {np.asarray(tokens)[:24].tolist()} ...")

# %% [markdown]
# ## 2. A gain sweep through the engine
#
# Each seed's weights and prompt are shared by every cell (common random numbers), so the engine decodes all
# activations, gains and depths of a seed as one batch, and the differences to GELU are paired. `crn=False` would
# draw fresh weights per cell instead.

# %%
sweep = rj.Sweep(model=spec,
                 axes={"activation": ["gelu", "relu", "tanh", "gaussian"],
                       "ln_gain": [float(g) for g in np.geomspace(0.1, 10, 3 if SMOKE else 5)],
                       "depth": [1, 12] if SMOKE else [1, 3, 12], "seed": list(range(SEEDS))},
                 measures=["lz_per_token", "lzw_size"], n_new=30 if SMOKE else 100, keep_values=True)
ds = rj.run_sweep(sweep, progress=not SMOKE)
print(ds["lz_per_token"].mean("seed").sel(depth=max(sweep.axes["depth"])).round(3).to_pandas())

# %% [markdown]
# The sequences are kept (`keep_values=True`), so any cell can be read back:

# %%
print(ds["values"].sel(activation="tanh", ln_gain=ds.ln_gain.values[-1], depth=12, seed=0).values[:30])

# %% [markdown]
# ## 3. Figure 10 and the claims of section 13
#
# A panel per depth, LZ per token against the gain (mean +- SE over seeds), and each activation's paired
# difference to GELU. At smoke size the model is tiny and few claims can hold; `make sweep
# SWEEP=sweeps/fig10_gpt2.py` runs the laptop size whose numbers are in docs/results.md.

# %%
for path in plot_fig10(ds, OUT):
    print("wrote", path)
for claim in check_claims(ds):
    print(f"{'holds' if claim['holds'] else 'not  '}  {claim['claim']}: {claim['ours']}")
