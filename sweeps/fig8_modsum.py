"""Figure 8: modular sum, test accuracy against the activation prefactor (DESIGN.md section 10).

MLPs (depth 2, width 64, PyTorch's default init) learn ``1[(x0 + x1) mod M < M/2]`` on the 16 x 16 lattice
from 70% of its points; lower moduli are higher-frequency targets. The paper's claim: ReLU generalizes only on
the low-frequency target, while tanh, gaussian and sine with a tuned prefactor learn the harder ones, the best
prefactor moving right as M falls. The Dataset also carries the Fourier and LZ complexity of every network's
function at init and after training.

Run: ``redshift-jax sweep sweeps/fig8_modsum.py [--quick | --laptop] [--out PATH] [--resume]``, then
``redshift-jax plot PATH`` (Figure 8, Figure 7 = test accuracy per architecture against its complexity at init
beside the targets' complexity, and complexity after training against at init). Full grid: 6 activations x 3
moduli x 9 prefactors x 8 seeds = 1,296 trainings of 3000 full-batch steps (about 10 minutes on 2 idle CPU
cores). LAPTOP: the same grid with 4 seeds (648 trainings), the size of the 2026-12-06 record.
"""
import redshift_jax as rj
import redshift_jax.train  # noqa: F401  (rj.train)

SWEEP = rj.train.ModularSum(
    activations=("relu", "gelu", "swish", "tanh", "gaussian", "sin"),
    moduli=(10, 7, 4),
    prefactors=tuple(2.0 ** k for k in range(-3, 6)),
    seeds=tuple(range(8)),
    name="fig8_modsum",
)

LAPTOP = SWEEP.replace(seeds=tuple(range(4)), name="fig8_modsum_laptop")


def recipe(name, **changes):
    """(SWEEP, LAPTOP, QUICK) of this grid under another recipe (``changes`` to ModularSum's fields), as the
    C12 recipe files use it: LAPTOP is relu, tanh, sin x 3 moduli x 5 prefactors x 4 seeds."""
    full = SWEEP.replace(name=name, **changes)
    laptop = full.replace(activations=("relu", "tanh", "sin"), prefactors=(0.25, 1.0, 2.0, 4.0, 8.0),
                          seeds=tuple(range(4)), name=f"{name}_laptop")
    quick = full.replace(activations=("relu", "sin"), moduli=(10, 4), prefactors=(0.25, 1.0, 4.0), seeds=(0, 1),
                         steps=600, name=f"{name}_quick")
    return full, laptop, quick


# Seconds on 2 CPU cores: 2 activations x 2 moduli x 3 prefactors x 2 seeds, 600 steps.
QUICK = SWEEP.replace(activations=("relu", "sin"), moduli=(10, 4), prefactors=(0.25, 1.0, 4.0), seeds=(0, 1),
                      steps=600, name="fig8_modsum_quick")
