"""Figure 10: greedy sequences of untrained GPT-2s and their LZ complexity (DESIGN.md section 13).

Seed s draws one GPT-2 small initialization (12 blocks, GPT-2's stds at every depth) and a one-token prompt from
``fold_in(key(0), s)``; every cell (activation x LayerNorm gain x depth, a depth-L model being the sample's first
L blocks) decodes 100 greedy tokens from it. With common random numbers (the default) the cells of a seed share
its weights and prompt, so differences between activations are paired, and they decode as one batch. Set
``crn=False`` below for the paper-literal fresh weights per cell.

- SWEEP: GPT-2 small (d 768, 12 heads, vocab 50257), 6 activations x 9 gains x 4 depths x 1000 seeds (216,000
  sequences: an accelerator job).
- LAPTOP: d 256, 4 heads, vocab 50257, the same 0.02 stds (no width rescaling), 7 gains, 64 seeds (about 8
  minutes on 2 CPU cores).
- QUICK: d 64, 2 heads, vocab 2048, 3 gains, 2 depths, 4 seeds.
"""
import numpy as np

import redshift_jax as rj

FIGURE = "fig10"
ACTIVATIONS = ("gelu", "relu", "selu", "tanh", "sin", "gaussian")
DEPTHS = (1, 3, 6, 12)
MEASURES = ("lz_per_token", "lzw_size")


def make(d_model=768, n_heads=12, vocab=50257, gains=9, depths=DEPTHS, seeds=1000, activations=ACTIVATIONS,
         crn=True):
    model = rj.GPT2(d_model=d_model, n_heads=n_heads, vocab=vocab, n_positions=128, depth=max(depths))
    axes = {"activation": list(activations), "ln_gain": [float(g) for g in np.geomspace(0.1, 10.0, gains)],
            "depth": list(depths), "seed": list(range(seeds))}
    return rj.Sweep(model=model, axes=axes, measures=MEASURES, n_new=100, crn=crn,
                    name=f"GPT-2 d{d_model} greedy sequences")


SWEEP = make()
LAPTOP = make(d_model=256, n_heads=4, gains=7, seeds=64)
QUICK = make(d_model=64, n_heads=2, vocab=2048, gains=3, depths=(1, 3), seeds=4)
