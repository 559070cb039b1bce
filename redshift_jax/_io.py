"""Provenance written beside every result (sweeps and training runs); the store itself is ``store.py``."""

from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__

__all__ = ["provenance_attrs", "now_iso", "to_jsonable"]


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    rev = out.stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                           capture_output=True, text=True, timeout=5)
    return rev + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and dataclass-like objects into JSON-serializable values."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses
        return {"type": type(value).__name__, **to_jsonable(dataclasses.asdict(value))}
    return value


def provenance_attrs(spec: Any, start_time: str, kind: str) -> dict:
    """Attributes written beside every result: spec (JSON), versions, backend, devices, git, times."""
    import jax
    import jaxlib

    attrs = {
        "kind": kind,
        "spec": json.dumps(to_jsonable(spec), sort_keys=True),
        "package": f"redshift_jax {__version__}",
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "backend": jax.default_backend(),
        "device_count": jax.device_count(),
        "devices": ", ".join(sorted({d.device_kind for d in jax.devices()})),
        "start_time": start_time,
        "end_time": now_iso(),
    }
    rev = _git_revision()
    if rev:
        attrs["git_revision"] = rev
    return attrs
