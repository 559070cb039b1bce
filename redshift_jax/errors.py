"""The two errors a user of ``redshift_jax`` is meant to see (the CLI prints them as one line, exit code 2).

- ``ConfigError``: a setting is out of range; the message names the field, the value and what is allowed.
- ``StoreError``: a result or resume store cannot be used as asked (it belongs to another run, is locked by
  another process, is damaged, or the disk is full); the message says what to do next.
"""

from __future__ import annotations

__all__ = ["ConfigError", "StoreError"]


class ConfigError(ValueError):
    """A structural or numeric setting is out of range; the message names the field, value and allowed set."""


class StoreError(RuntimeError):
    """A result store cannot be written or resumed as asked; the message says why and what to do."""
