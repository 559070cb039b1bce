"""Training experiments (DESIGN.md section 10): does the complexity a random network prefers predict what it
learns?

Two tasks, each trained as one compiled program per activation, vmapped over the whole grid of (modulus,)
prefactor and seed, the loop in ``lax.scan``, ``optax.adam``, the prefactor a traced non-trainable array::

    import redshift_jax as rj
    ds = rj.train.run(rj.train.ModularSum(), out="results/fig8_modsum.zarr")
    rj.train.quadratic_peak(ds.test_accuracy.sel(activation="sin", modulus=4)).peak
    rj.train.target_complexity()                      # the targets' complexity, (measure, modulus)
    rj.train.analysis.init_final_correlation(ds, "fourier_dct")   # C14 over architecture means
    # python -m redshift_jax.train.analysis results/fig8_modsum.zarr   (every claim's table, markdown)
    ds = rj.train.run(rj.train.ColoredMNIST())
"""

from . import analysis
from .cmnist import ColoredMNIST
from .modsum import ModularSum, QuadraticPeak, quadratic_peak, target_complexity
from .runner import run

__all__ = ["ModularSum", "ColoredMNIST", "run", "quadratic_peak", "QuadraticPeak", "target_complexity", "analysis"]
