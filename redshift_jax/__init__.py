"""redshift_jax: the inductive bias of random-weight networks, measured at scale in JAX.

Public surface (see README and DESIGN.md section 3)::

    import redshift_jax as rj
    spec = rj.MLP(activation="tanh", depth=3)
    params = spec.init(jax.random.key(0), weight_scale=2.0)
    y = spec.apply(params, rj.grid(64, 2))
"""

import sys as _sys

from .devices import use_all_cpu_cores as _use_all_cpu_cores

_use_all_cpu_cores(warn_if_late=True)  # one CPU device per core, before JAX starts (DESIGN.md section 11)

from .errors import ConfigError, StoreError  # noqa: E402
from . import models
from .models import ACTIVATIONS, MLP, NNGP, PRIORS, FlaxModel, Plane, Unbiased, planes
from .grids import grid, lattice
from . import measures
from .sweep import Sweep, load_suite, run_suite, run_sweep
from . import multihost  # noqa: E402
from . import studies  # noqa: E402  (registers the ds.rj accessor of results)
from .measures import volume  # noqa: E402  (the estimator and its sweep measure)
from .studies import kinks  # noqa: E402  (the exact algorithm, re-exported, and Holmes' closed forms and figures)

# ``import redshift_jax.kinks`` / ``redshift_jax.volume`` (their modules before DESIGN.md section 18's layout) give
# these same module objects: one copy of every function, under its new path and its old one.
_sys.modules[__name__ + ".kinks"] = kinks
_sys.modules[__name__ + ".volume"] = volume

from ._version import __version__  # noqa: E402

__all__ = ["ACTIVATIONS", "PRIORS", "ConfigError", "StoreError", "MLP", "NNGP", "Unbiased", "Sweep", "grid", "lattice",
           "kinks", "multihost", "volume", "measures", "models", "run_sweep",
           "run_suite", "load_suite", "GPT2", "gpt2", "studies", "__version__", "Plane", "planes", "FlaxModel", "CNN",
           "ViT", "PixelMLP"]


def __getattr__(name):
    # ``rj.train`` (optax, the data loaders), GPT-2 and the image models (flax) are imported when first used.
    import importlib

    if name == "train":
        return importlib.import_module(".train", __name__)
    if name in ("GPT2", "gpt2", "CNN", "ViT", "PixelMLP"):
        return getattr(models, name)
    raise AttributeError(f"module 'redshift_jax' has no attribute {name!r}")
