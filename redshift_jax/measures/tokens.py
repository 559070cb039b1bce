"""Complexity of a token sequence (DESIGN.md section 13): measures that read ``tokens``.

Token ids are the symbols themselves (no quantization); constant sequences are counted like any other::

    lz_per_token(tokens)    LZ78 phrase count / sequence length (the co-author's
                            ``lempel_ziv_complexity(ids) / len(ids)``)
    lzw_size(tokens)        LZW dictionary size (distinct tokens + phrases added), unnormalized
    lz76_tokens(tokens)     Kaspar–Schuster LZ76 component count, unnormalized (``normalize=True``: lz's
                            ``c log_k(n) / n``)

Reference values on 101 tokens: one repeated token 13/101 and 14 (lz76: 2); ``a b b b ...`` 14/101 and 16;
i.i.d. uniform tokens over V = 50257 about 0.9990 and 200.9 (expected LZ78 count 101 - C(101, 2) / V: each
repeated pair of tokens costs a phrase; DESIGN.md's 0.998 and 200.8 fit a vocabulary of about 25k).

Each is registered as a ``"tokens"`` measure. ``lz76`` is registered already, as a measure of ``values`` (a
field on the grid, quantized by levels); a registered name reads one kind of input, so the token version of
LZ76 is its own name, ``"lz76_tokens"``.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..errors import ConfigError
from .base import register_measure
from .lz import lz

__all__ = ["lz76_tokens", "lz_per_token", "lzw_size"]


def _as_tokens(tokens):
    tokens = jnp.asarray(tokens)
    if not (tokens.dtype == jnp.bool_ or jnp.issubdtype(tokens.dtype, jnp.integer)):
        raise ConfigError(f"token measures read integer token ids; got dtype {tokens.dtype}; allowed: an integer "
                          "array")
    return tokens.reshape(-1)


def lz_per_token(tokens):
    """LZ78 phrases per token: the distinct phrases of the greedy LZ78 parse divided by the sequence length.

    Args:
      tokens: integer token ids (any shape, flattened); jit- and vmap-safe.

    Returns:
      float32; 101 equal tokens: 13/101; i.i.d. uniform tokens from a large vocabulary: about 0.998. An empty
      sequence gives NaN (no tokens to divide by).

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(lz_per_token(jnp.zeros(101, jnp.int32))) * 101)
      13
    """
    tokens = _as_tokens(tokens)
    n = tokens.shape[0]
    if n == 0:
        return jnp.float32(jnp.nan)
    return lz(tokens, "lz78", normalize=False) / jnp.float32(n)


def lzw_size(tokens):
    """LZW dictionary size of the token sequence (distinct tokens + phrases added), float32.

    101 equal tokens: 14; ``a b b b ...``: 16; i.i.d. uniform tokens from a large vocabulary: about 200.8.
    """
    return lz(_as_tokens(tokens), "lzw", normalize=False)


def lz76_tokens(tokens, normalize: bool = False):
    """Kaspar–Schuster LZ76 component count of the token sequence (101 equal tokens: 2), float32.

    ``normalize=True`` divides by ``n / log_k(n)``, ``k`` the number of distinct tokens (at least 2).
    """
    return lz(_as_tokens(tokens), "lz76", normalize=bool(normalize))


register_measure("lz_per_token", "tokens", lz_per_token)
register_measure("lzw_size", "tokens", lzw_size)
register_measure("lz76_tokens", "tokens", lz76_tokens, {"normalize": False})
