"""Incremental, resumable zarr storage of a sweep's flat results.

Layout while running: ``<out>.partial/`` is a zarr group with one array per output, shaped
(variants, networks, depths[, image...]) and chunked exactly like the engine's chunks, plus one empty marker
file per finished chunk under ``done/``. A marker is created only after that chunk's data is written, so a
killed run resumes from the markers and recomputes nothing that finished. When every chunk is done the
labelled Dataset is written under a temporary name and renamed to ``<out>``: the final store is never
half-written under its name.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

__all__ = ["SweepStore", "MemoryStore"]


class MemoryStore:
    """The same interface as SweepStore, in memory (``out=None``)."""

    def __init__(self, layout: dict[str, tuple[tuple, np.dtype]], chunk: int):
        self.chunk = chunk
        self.arrays = {name: np.full(shape, np.nan if np.dtype(dt).kind == "f" else 0, dtype=dt)
                       for name, (shape, dt) in layout.items()}
        self._done: set[tuple[int, int]] = set()

    def is_done(self, variant: int, chunk_index: int) -> bool:
        return (variant, chunk_index) in self._done

    def write(self, variant: int, chunk_index: int, start: int, outputs: dict[str, np.ndarray]) -> None:
        for name, values in outputs.items():
            self.arrays[name][variant, start:start + values.shape[0]] = values
        self._done.add((variant, chunk_index))

    def read(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def discard(self) -> None:
        pass


class SweepStore:
    """Chunk-by-chunk zarr store at ``<out>.partial`` (see module docstring)."""

    def __init__(self, out: str | os.PathLike, fingerprint: str, layout: dict[str, tuple[tuple, np.dtype]],
                 chunk: int, resume: bool):
        import zarr

        self.out = Path(out)
        self.root = self.out.with_name(self.out.name + ".partial")
        self.done_dir = self.root / "done"
        meta_path = self.root / "sweep_meta.json"
        if self.root.exists() and resume and meta_path.exists():
            meta = json.loads(meta_path.read_text())
            if meta["fingerprint"] != fingerprint:
                raise ValueError(
                    f"--resume: {self.root} holds a different sweep (its spec differs from this one); "
                    "delete it or run without --resume")
            chunk = int(meta["chunk"])  # keep the chunking the stored pieces were written with
            self.group = zarr.open_group(str(self.root), mode="a")
        else:
            if self.root.exists():
                shutil.rmtree(self.root)
            self.group = zarr.open_group(str(self.root), mode="w", zarr_format=2)
            for name, (shape, dtype) in layout.items():
                dtype = np.dtype(dtype)
                chunks = (1, chunk) + tuple(shape[2:])
                fill = np.nan if dtype.kind == "f" else False
                self.group.create_array(name=name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill)
            self.done_dir.mkdir(parents=True, exist_ok=True)
            tmp = meta_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"fingerprint": fingerprint, "chunk": chunk}))
            os.replace(tmp, meta_path)
        self.chunk = chunk

    def _marker(self, variant: int, chunk_index: int) -> Path:
        return self.done_dir / f"v{variant}_c{chunk_index}"

    def is_done(self, variant: int, chunk_index: int) -> bool:
        return self._marker(variant, chunk_index).exists()

    def write(self, variant: int, chunk_index: int, start: int, outputs: dict[str, np.ndarray]) -> None:
        for name, values in outputs.items():
            self.group[name][variant, start:start + values.shape[0]] = values
        self._marker(variant, chunk_index).touch()

    def read(self, name: str) -> np.ndarray:
        return np.asarray(self.group[name][...])

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
