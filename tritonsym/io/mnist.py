"""MNIST from disk: the IDX format (plain or gzip), for users who have the files.

Nothing is downloaded. ``load_mnist(data_dir)`` looks for the four standard files
(``train-images-idx3-ubyte`` etc., with or without ``.gz``) in ``data_dir``.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

from ..base import FormatError

# The third byte of an IDX file's magic number names the element type.
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
               "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def read_idx(path: str) -> np.ndarray:
    """An IDX file (``.gz`` or plain, recognised by content) as a numpy array."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise FormatError(f"{path}: not a readable gzip file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise FormatError(f"{path}: not an IDX file (magic bytes {raw[:4].hex() or 'missing'}; expected "
                          "00 00 <type> <dims>)")
    dims = raw[3]
    if dims == 0 or len(raw) < 4 + 4 * dims:
        raise FormatError(f"{path}: IDX header declares {dims} dimensions but the file has {len(raw)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", dims, 4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = 4 + 4 * dims + math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise FormatError(f"{path}: shape {shape} of {dtype} needs {expected} bytes, the file has {len(raw)} "
                          "(truncated or not MNIST)")
    return np.frombuffer(raw, dtype, offset=4 + 4 * dims).reshape(shape).astype(dtype.newbyteorder("="))


def _find(data_dir: str, stem: str) -> str:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"MNIST: {stem}[.gz] not found in {data_dir!r}; it needs the four IDX files "
                            f"{', '.join(MNIST_FILES.values())} (plain or .gz)")


def load_mnist(data_dir: str) -> dict[str, np.ndarray]:
    """The four MNIST arrays by ``MNIST_FILES`` key: images ``(n, 28, 28)`` uint8, labels ``(n,)``."""
    out = {key: read_idx(_find(data_dir, stem)) for key, stem in MNIST_FILES.items()}
    for part in ("train", "test"):
        images, labels = out[f"{part}_images"], out[f"{part}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise FormatError(f"MNIST {part}: images {images.shape} and labels {labels.shape} do not pair up")
        path = _find(data_dir, MNIST_FILES[f"{part}_labels"])
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(~np.isfinite(labels) | (labels < 0) | (labels != np.round(labels))) \
                if labels.dtype.kind == "f" else np.flatnonzero(labels < 0)
        if bad.size:
            raise FormatError(f"{path}: label {bad[0]} is {labels[bad[0]].item()!r}, not a class (a whole number "
                              f">= 0); {bad.size} of {labels.size} labels are not")
        if images.dtype.kind == "f" and not np.isfinite(images).all():
            where = np.argwhere(~np.isfinite(images))[0]
            raise FormatError(f"{_find(data_dir, MNIST_FILES[f'{part}_images'])}: pixel {tuple(int(i) for i in where)} "
                              f"is {images[tuple(where)].item()!r}; images must hold finite values")
    return out
