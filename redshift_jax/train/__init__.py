"""Training experiments (DESIGN.md section 10): does the complexity a random network prefers predict what it
learns?

Two tasks, each trained as one compiled program per activation, vmapped over the whole grid of (modulus,)
prefactor and seed, the loop in ``lax.scan``, ``optax.adam``, the prefactor a traced non-trainable array::

    import redshift_jax as rj
    ds = rj.train.run(rj.train.ModularSum(), out="results/fig8_modsum.zarr")
    rj.train.quadratic_peak(ds.test_accuracy.sel(activation="sin", modulus=4)).peak
    ds = rj.train.run(rj.train.ColoredMNIST())
"""

from .cmnist import ColoredMNIST
from .modsum import ModularSum, QuadraticPeak, quadratic_peak
from .runner import run

__all__ = ["ModularSum", "ColoredMNIST", "run", "quadratic_peak", "QuadraticPeak"]
