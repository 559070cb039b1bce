"""Provenance and crash-safe result files shared by sweeps and training runs.

Rule: a result never appears under its final name half-written. Everything is written beside it under a
temporary name and moved into place with ``os.replace`` (atomic on one filesystem).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["provenance_attrs", "write_dataset_atomic", "PartStore", "now_iso", "to_jsonable"]


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

    from . import __version__

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


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_dataset_atomic(ds, path: str | os.PathLike) -> Path:
    """Write an xarray Dataset as a zarr store at ``path`` via a temporary sibling and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    _remove(tmp)
    ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
    if path.exists():
        old = path.with_name(path.name + f".old-{os.getpid()}")
        _remove(old)
        os.replace(path, old)
        os.replace(tmp, path)
        _remove(old)
    else:
        os.replace(tmp, path)
    return path


class PartStore:
    """A directory of finished pieces of one run (``<final>.partial/<name>.zarr``), for resuming.

    Each piece is an xarray Dataset written atomically, so a killed run leaves only whole pieces.
    ``fingerprint`` (e.g. the spec JSON) is recorded; resuming with a different spec is refused.
    """

    def __init__(self, final_path: str | os.PathLike, fingerprint: str, resume: bool):
        self.final_path = Path(final_path)
        self.root = self.final_path.with_name(self.final_path.name + ".partial")
        stamp = self.root / "fingerprint.json"
        if self.root.exists() and not resume:
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        if stamp.exists():
            recorded = stamp.read_text()
            if recorded != fingerprint:
                raise ValueError(
                    f"resume: {self.root} holds pieces of a different run (its spec differs from this one); "
                    "delete it or run without --resume")
        else:
            tmp = stamp.with_suffix(".tmp")
            tmp.write_text(fingerprint)
            os.replace(tmp, stamp)

    def _piece(self, name: str) -> Path:
        return self.root / f"{name}.zarr"

    def has(self, name: str) -> bool:
        return self._piece(name).exists()

    def write(self, name: str, ds) -> None:
        write_dataset_atomic(ds, self._piece(name))

    def read(self, name: str):
        import xarray as xr

        return xr.open_zarr(self._piece(name), consolidated=True).load()

    def finish(self, ds) -> Path:
        """Write the combined result under its final name, then drop the pieces."""
        path = write_dataset_atomic(ds, self.final_path)
        shutil.rmtree(self.root, ignore_errors=True)
        return path
