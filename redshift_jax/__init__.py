"""redshift_jax: the inductive bias of random-weight networks, measured at scale in JAX.

Public surface (see README and DESIGN.md section 3)::

    import redshift_jax as rj
    spec = rj.MLP(activation="tanh", depth=3)
    params = spec.init(jax.random.key(0), weight_scale=2.0)
    y = spec.apply(params, rj.grid(64, 2))
"""

from .nets import ACTIVATIONS, PRIORS, ConfigError, MLP, Unbiased
from .grids import grid, lattice

__version__ = "0.1.0"

__all__ = ["ACTIVATIONS", "PRIORS", "ConfigError", "MLP", "Unbiased", "grid", "lattice", "__version__"]
