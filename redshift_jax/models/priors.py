"""Weight priors (DESIGN.md sections 4 and 18): how a layer's weights and biases are drawn from its keys, as objects
that carry what every consumer needs.

``PRIORS`` maps a name to its ``Prior``: ``sample_weight`` / ``sample_bias`` draw a layer of shape (fan_in, fan_out)
with ``weight_scale`` = a and ``bias_scale`` = b as the literature writes them; ``weight_std`` / ``bias_std`` give
the per-entry standard deviation (None where the variance is infinite: Cauchy), which the local volume's
``sigma="init"`` reads; ``fan_out_scaled`` says whether a weight's scale depends on the layer's fan_out (the
paper's ``sqrt(6 / (fan_in + fan_out))``). Adding a prior is one entry; a consumer that needs a property the prior
lacks raises a ``ConfigError`` naming both.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp

from ..errors import ConfigError

__all__ = ["Prior", "PRIORS", "FAN_OUT_PRIORS", "sample_weight", "sample_bias", "get_prior"]


def _paper_half_width(weight_scale, fan_in: int, fan_out: int):
    return weight_scale * math.sqrt(6.0 / (fan_in + fan_out))


def _uniform(key, shape, dtype):
    return jax.random.uniform(key, shape, dtype, -1.0, 1.0)


def _paper_weight(key, fan_in, fan_out, weight_scale, dtype):
    return _paper_half_width(weight_scale, fan_in, fan_out) * _uniform(key, (fan_in, fan_out), dtype)


def _ball_weight(key, fan_in, fan_out, weight_scale, dtype):
    # Uniform in the n-ball of radius R has per-entry variance R^2 / (n + 2); match paper's s^2 / 3.
    n = fan_in * fan_out
    s = _paper_half_width(weight_scale, fan_in, fan_out)
    radius = s * math.sqrt((n + 2) / 3.0)
    dir_key, r_key = jax.random.split(key)
    direction = jax.random.normal(dir_key, (n,), dtype)
    direction = direction / jnp.linalg.norm(direction)
    r = radius * jax.random.uniform(r_key, (), dtype) ** (1.0 / n)
    return (r * direction).reshape((fan_in, fan_out))


def _uniform_bias(key, fan_in, fan_out, bias_scale, dtype):
    return bias_scale * _uniform(key, (fan_out,), dtype)


def _paper_std(fan_in, fan_out, weight_scale):
    return _paper_half_width(weight_scale, fan_in, fan_out) / math.sqrt(3.0)


@dataclasses.dataclass(frozen=True)
class Prior:
    """One weight prior.

    Attributes:
      name: its name in ``PRIORS`` (and in sweeps and specs).
      weight: ``weight(key, fan_in, fan_out, weight_scale, dtype)``: a (fan_in, fan_out) layer.
      bias: ``bias(key, fan_in, fan_out, bias_scale, dtype)``: a (fan_out,) bias.
      weight_std: ``weight_std(fan_in, fan_out, weight_scale)``: a weight's standard deviation, or None (infinite
        variance).
      bias_std: ``bias_std(fan_in, bias_scale)``: a bias's standard deviation, or None.
      fan_out_scaled: True when a weight's scale depends on the layer's fan_out.
    """
    name: str
    weight: Callable
    bias: Callable = _uniform_bias
    weight_std: Callable | None = None
    bias_std: Callable | None = lambda fan_in, bias_scale: bias_scale / math.sqrt(3.0)   # U(-b, b)
    fan_out_scaled: bool = False

    def require(self, prop: str, consumer: str):
        """The property ``prop`` (``"weight_std"``, ``"bias_std"``), or a ConfigError naming the prior, who needs it
        and the priors that have it."""
        value = getattr(self, prop)
        if value is None:
            have = [name for name, p in PRIORS.items() if getattr(p, prop) is not None]
            raise ConfigError(f"prior={self.name!r} has no {prop} (no finite variance), which {consumer} needs; "
                              f"allowed priors: {', '.join(have)}")
        return value


PRIORS: dict[str, Prior] = {p.name: p for p in (
    Prior("paper", _paper_weight, weight_std=_paper_std, fan_out_scaled=True),
    Prior("uniform", lambda key, fan_in, fan_out, a, dtype: a * _uniform(key, (fan_in, fan_out), dtype),
          weight_std=lambda fan_in, fan_out, a: a / math.sqrt(3.0)),
    Prior("normal", lambda key, fan_in, fan_out, a, dtype: (a / math.sqrt(fan_in))
          * jax.random.normal(key, (fan_in, fan_out), dtype),
          bias=lambda key, fan_in, fan_out, b, dtype: b * jax.random.normal(key, (fan_out,), dtype),
          weight_std=lambda fan_in, fan_out, a: a / math.sqrt(fan_in), bias_std=lambda fan_in, b: b),
    Prior("ball", _ball_weight, weight_std=_paper_std, fan_out_scaled=True),
    Prior("cauchy", lambda key, fan_in, fan_out, a, dtype: (_paper_half_width(a, fan_in, fan_out) / math.sqrt(3.0))
          * jax.random.cauchy(key, (fan_in, fan_out), dtype), fan_out_scaled=True),
    Prior("torch", lambda key, fan_in, fan_out, a, dtype: (a / math.sqrt(fan_in)) * _uniform(key, (fan_in, fan_out),
                                                                                              dtype),
          bias=lambda key, fan_in, fan_out, b, dtype: (b / math.sqrt(fan_in)) * _uniform(key, (fan_out,), dtype),
          weight_std=lambda fan_in, fan_out, a: a / math.sqrt(3.0 * fan_in),
          bias_std=lambda fan_in, b: b / math.sqrt(3.0 * fan_in)),
)}
# Priors whose weight scale depends on the layer's fan_out (through the paper's sqrt(6 / (fan_in + fan_out))).
FAN_OUT_PRIORS = tuple(name for name, p in PRIORS.items() if p.fan_out_scaled)


def get_prior(name, owner: str = "prior") -> Prior:
    """``PRIORS[name]``, or a ConfigError naming ``owner``, the value and the allowed names."""
    if not isinstance(name, str) or name not in PRIORS:
        raise ConfigError(f"{owner}={name!r} is unknown; allowed: {', '.join(PRIORS)}")
    return PRIORS[name]


def sample_weight(prior: str, key, fan_in: int, fan_out: int, weight_scale, dtype):
    return get_prior(prior).weight(key, fan_in, fan_out, weight_scale, dtype)


def sample_bias(prior: str, key, fan_in: int, fan_out: int, bias_scale, dtype):
    return get_prior(prior).bias(key, fan_in, fan_out, bias_scale, dtype)
