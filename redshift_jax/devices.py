"""Let a CPU-only run use every core (``import redshift_jax`` does it), and pick the local devices.

XLA:CPU runs one program on one device, and a sweep's chunk on one device keeps about one core busy. The
engine already shards every chunk over all local devices (``shard_map``), so exposing one CPU device per core
(``--xla_force_host_platform_device_count``) spreads a sweep over the whole machine. Results are bitwise the
same for any device count, so this changes speed only.
"""

from __future__ import annotations

import os

__all__ = ["use_all_cpu_cores", "local_devices", "device_mesh"]

_FLAG = "--xla_force_host_platform_device_count"


def _backends_initialized() -> bool:
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - layout of a future jax
        return True
    return bool(getattr(xla_bridge, "_backends", {}))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def use_all_cpu_cores(warn_if_late: bool = False) -> int | None:
    """Expose one CPU device per available core, if JAX has not started its backends yet.

    ``import redshift_jax`` calls it, so the Python API, the CLI and ``make bench`` all use every core. It does
    nothing when the user set the device count already or when there is one core. When JAX has already
    started (it ran a computation before ``redshift_jax`` was imported) the count can no longer change; with
    ``warn_if_late`` a CPU-only process then gets a warning that says how to use every core.

    Returns:
      The device count it set, or None when it changed nothing.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    cores = _cores()
    if _FLAG in flags or cores <= 1:
        return None
    if _backends_initialized():
        if warn_if_late:
            import warnings

            import jax

            if jax.default_backend() == "cpu" and jax.local_device_count() < cores:
                warnings.warn(
                    f"redshift_jax was imported after JAX started, so sweeps run on {jax.local_device_count()} CPU "
                    f"device(s) of this machine's {cores} cores (same results, slower); import redshift_jax "
                    f"before running anything in JAX, or set XLA_FLAGS={_FLAG}={cores} before starting Python",
                    stacklevel=3)
        return None
    os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={cores}".strip()
    _SET["count"] = cores
    return cores


_SET: dict = {"count": None}


def device_count_set_here() -> bool:
    """Whether ``use_all_cpu_cores`` set this process's CPU device count (rather than the user's XLA_FLAGS)."""
    return _SET["count"] is not None


def local_devices(num_devices: int | None = None) -> list:
    """The first ``num_devices`` local devices (default: all of them).

    Raises:
      ConfigError: naming the value and the allowed range, when ``num_devices`` is not 1 .. local devices.
    """
    import jax

    from .errors import ConfigError
    from .validate import is_int

    devices = jax.local_devices()
    if num_devices is None:
        return devices
    if not is_int(num_devices) or not 1 <= num_devices <= len(devices):
        raise ConfigError(f"num_devices={num_devices!r} is not allowed; this process has {len(devices)} "
                          f"local devices (allowed: 1 .. {len(devices)})")
    return devices[:num_devices]


def device_mesh(num_devices: int | None = None):
    """A one-axis mesh (axis ``"net"``) over ``local_devices(num_devices)``."""
    import numpy as np
    from jax.sharding import Mesh

    return Mesh(np.asarray(local_devices(num_devices)), ("net",))
