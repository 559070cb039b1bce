"""The unbiased reference: a random function with a flat spectrum (DESIGN.md section 4)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from ..validate import check_int, check_scale
from .activations import sin
from .base import FIELD, NumericAxis

__all__ = ["Unbiased"]

Array = jax.Array
_W_TAG, _B_TAG = 0, 1

@dataclasses.dataclass(frozen=True)
class Unbiased:
    """A random function with a flat spectrum: the reference with no simplicity bias.

    ``f(x) = sum_k a_k sin(pi k.x + p_k)`` over integer frequency vectors ``k in {0..K}^in_dim``, where
    ``K = (resolution - 1) // 2`` is the Nyquist limit of a ``resolution``-point grid on [-1, 1]
    (``sin(pi K x)`` sampled with step 2 / (resolution - 1) stays below half a cycle per sample).
    Amplitudes ``a_k ~ U(-weight_scale, weight_scale)``, phases ``p_k ~ U(-pi, pi)``. The input weights are
    fixed, so ``bias_scale`` and ``prefactor`` have no effect (a sweep rejects them as axes).
    """

    in_dim: int = 2
    resolution: int = 64

    structural_axes = ()
    numeric_axes = {"weight_scale": NumericAxis(1.0, minimum=0.0, stage="init")}
    inputs = "grid"
    output = FIELD
    shared_axis = None
    switch_axis = None

    def __post_init__(self):
        check_int("Unbiased.in_dim", self.in_dim, minimum=1)
        check_int("Unbiased.resolution", self.resolution, minimum=1)
        if self.num_frequencies > 2 ** 22:
            raise ConfigError(
                f"Unbiased(in_dim={self.in_dim}, resolution={self.resolution}) has {self.num_frequencies} "
                "frequencies; allowed: at most 2**22 (lower in_dim or resolution)"
            )

    @property
    def max_frequency(self) -> int:
        return (self.resolution - 1) // 2

    @property
    def num_frequencies(self) -> int:
        return (self.max_frequency + 1) ** self.in_dim

    def frequencies(self) -> np.ndarray:
        """Integer frequency vectors, shape (num_frequencies, in_dim)."""
        axes = [np.arange(self.max_frequency + 1)] * self.in_dim
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, self.in_dim)

    def init(self, key, weight_scale=1.0, bias_scale=1.0, dtype=jnp.float32) -> dict:
        check_scale("weight_scale", weight_scale)
        check_scale("bias_scale", bias_scale)
        n = self.num_frequencies
        amplitude = jnp.asarray(weight_scale, dtype) * jax.random.uniform(
            jax.random.fold_in(key, _W_TAG), (n,), dtype, -1.0, 1.0)
        phase = jax.random.uniform(jax.random.fold_in(key, _B_TAG), (n,), dtype, -jnp.pi, jnp.pi)
        return {"amplitude": amplitude, "phase": phase}

    def apply(self, params, x, prefactor=1.0, precision="highest", activation_fn=None) -> Array:
        del prefactor, activation_fn  # fixed input weights, no activation: documented as having no effect
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ConfigError(f"x has shape {x.shape}; expected (N, in_dim={self.in_dim})")
        freqs = jnp.asarray(self.frequencies(), x.dtype) * jnp.pi
        return jnp.dot(sin(jnp.dot(x, freqs.T, precision=precision) + params["phase"]),
                       params["amplitude"], precision=precision)

    def check_sweep(self, sweep) -> None:
        if self.resolution != sweep.resolution:
            raise ConfigError(f"Unbiased.resolution={self.resolution} differs from Sweep.resolution="
                              f"{sweep.resolution}; allowed: the same value")

    def replace(self, **changes) -> "Unbiased":
        return dataclasses.replace(self, **changes)
