"""The activations of DESIGN.md section 4 as objects that carry what every consumer needs (DESIGN.md section 18).

``ACTIVATIONS`` maps a name to its ``Activation``: the function (an ``Activation`` is called like one), the NNGP's
dual where a closed form exists (``models/duals.py``), the name Hugging Face's ``GPT2Config.activation_function``
uses for it, and whether it is piecewise linear (exact kinks and linear regions need that). Adding an activation is
one entry here; a consumer that needs a property the activation lacks raises a ``ConfigError`` naming both::

    ACTIVATIONS["my_act"] = Activation("my_act", lambda x: x * jnp.tanh(x))   # an MLP can use it now
    rj.NNGP(activation="my_act")   # ConfigError: activation 'my_act' has no NNGP dual ...
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from ..errors import ConfigError
from . import duals
from .elementwise import SELU_ALPHA, SELU_LAMBDA, gelu, selu, sin

__all__ = ["Activation", "ACTIVATIONS", "SELU_ALPHA", "SELU_LAMBDA", "sin", "get_activation"]


@dataclasses.dataclass(frozen=True)
class Activation:
    """One activation: ``fn`` elementwise, jit- and vmap-safe, float32 in and out.

    Attributes:
      name: its name in ``ACTIVATIONS`` (and in sweeps, specs and plots).
      fn: the function.
      dual: ``dual(q1, q2, c) = E[fn(u) fn(v)]`` for ``(u, v) ~ N(0, [[q1, c], [c, q2]])`` in float64 numpy (the
        NNGP's kernel recursion), or None where no closed form is implemented.
      hf_name: Hugging Face ``GPT2Config.activation_function`` for it, or None (no such activation there).
      piecewise_linear: True when ``fn`` is piecewise linear (relu, identity): exact kinks and linear regions.
    """
    name: str
    fn: Callable
    dual: Callable | None = None
    hf_name: str | None = None
    piecewise_linear: bool = False

    def __call__(self, x):
        return self.fn(x)

    def require(self, prop: str, consumer: str, among: dict | None = None):
        """The property ``prop`` (``"dual"``, ``"hf_name"``), or a ConfigError naming the activation, who needs it
        and the activations of ``among`` (default ``ACTIVATIONS``) that have it."""
        value = getattr(self, prop)
        if value is None:
            what = {"dual": "NNGP dual (a closed-form E[phi(u) phi(v)])",
                    "hf_name": "Hugging Face name (GPT2Config.activation_function)"}.get(prop, prop)
            have = [name for name, a in (among or ACTIVATIONS).items() if getattr(a, prop, None) is not None]
            raise ConfigError(f"activation {self.name!r} has no {what}, which {consumer} needs; allowed: "
                              f"{', '.join(have)}")
        return value


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    Activation("relu", jax.nn.relu, duals.relu_dual, "relu", piecewise_linear=True),
    Activation("gelu", gelu, duals.gelu_dual, "gelu"),
    Activation("swish", lambda x: x * jax.nn.sigmoid(x), duals.swish_dual, "silu"),
    Activation("selu", selu, duals.selu_dual),
    Activation("tanh", jnp.tanh, duals.tanh_dual, "tanh"),
    Activation("sigmoid", jax.nn.sigmoid, duals.sigmoid_dual, "sigmoid"),
    Activation("gaussian", lambda x: jnp.exp(-jnp.square(x)), duals.gaussian_dual),
    Activation("sin", sin, duals.sin_dual),
    Activation("identity", lambda x: x, duals.identity_dual, "linear", piecewise_linear=True),
)}


def get_activation(name, owner: str = "activation") -> Activation:
    """``ACTIVATIONS[name]``, or a ConfigError naming ``owner``, the value and the allowed names."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ConfigError(f"{owner}={name!r} is unknown; allowed: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]
