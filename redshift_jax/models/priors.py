"""Weight priors (DESIGN.md section 4): how a layer's weights and biases are drawn from its keys.

Each prior is a name in ``PRIORS``; ``sample_weight`` / ``sample_bias`` draw a layer of shape
(fan_in, fan_out) for it, with ``weight_scale`` = a and ``bias_scale`` = b as the literature writes them.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..errors import ConfigError

__all__ = ["PRIORS", "FAN_OUT_PRIORS", "sample_weight", "sample_bias"]

PRIORS = ("paper", "uniform", "normal", "ball", "cauchy", "torch")
# Priors whose weight scale depends on the layer's fan_out (through the paper's sqrt(6 / (fan_in + fan_out))).
FAN_OUT_PRIORS = ("paper", "ball", "cauchy")


def _paper_half_width(weight_scale, fan_in: int, fan_out: int):
    return weight_scale * math.sqrt(6.0 / (fan_in + fan_out))


def sample_weight(prior: str, key, fan_in: int, fan_out: int, weight_scale, dtype):
    shape = (fan_in, fan_out)
    if prior == "paper":
        s = _paper_half_width(weight_scale, fan_in, fan_out)
        return s * jax.random.uniform(key, shape, dtype, -1.0, 1.0)
    if prior == "uniform":
        return weight_scale * jax.random.uniform(key, shape, dtype, -1.0, 1.0)
    if prior == "normal":
        return (weight_scale / math.sqrt(fan_in)) * jax.random.normal(key, shape, dtype)
    if prior == "torch":
        return (weight_scale / math.sqrt(fan_in)) * jax.random.uniform(key, shape, dtype, -1.0, 1.0)
    if prior == "ball":
        # Uniform in the n-ball of radius R has per-entry variance R^2 / (n + 2); match paper's s^2 / 3.
        n = fan_in * fan_out
        s = _paper_half_width(weight_scale, fan_in, fan_out)
        radius = s * math.sqrt((n + 2) / 3.0)
        dir_key, r_key = jax.random.split(key)
        direction = jax.random.normal(dir_key, (n,), dtype)
        direction = direction / jnp.linalg.norm(direction)
        r = radius * jax.random.uniform(r_key, (), dtype) ** (1.0 / n)
        return (r * direction).reshape(shape)
    if prior == "cauchy":
        s = _paper_half_width(weight_scale, fan_in, fan_out)
        return (s / math.sqrt(3.0)) * jax.random.cauchy(key, shape, dtype)
    raise ConfigError(f"prior={prior!r} is unknown; allowed: {', '.join(PRIORS)}")


def sample_bias(prior: str, key, fan_in: int, fan_out: int, bias_scale, dtype):
    shape = (fan_out,)
    if prior == "normal":
        return bias_scale * jax.random.normal(key, shape, dtype)
    if prior == "torch":
        return (bias_scale / math.sqrt(fan_in)) * jax.random.uniform(key, shape, dtype, -1.0, 1.0)
    # paper, uniform, ball, cauchy: U(-b, b)
    return bias_scale * jax.random.uniform(key, shape, dtype, -1.0, 1.0)
