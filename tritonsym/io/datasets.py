"""Datasets shipped inside the package, so that training runs with no download.

``load_digits()``: the UCI "Optical Recognition of Handwritten Digits" test set, 1797
images of 8x8 pixels with values 0..16 and their labels 0..9 (E. Alpaydin and
C. Kaynak, 1998; https://archive.ics.uci.edu/dataset/80, DOI 10.24432/C50P49; licence
CC BY 4.0). ``data/DIGITS.md`` says where the bytes came from and how they are stored.
"""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import numpy as np

from ..base import FormatError, ParamError

DIGITS_SHA256 = "68aea062d35a127749050fa0e52dca09d6569ac08092c925610e0954e172dde2"
DIGITS_SAMPLES, DIGITS_PIXELS = 1797, 64


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: ``(1797, 64)`` uint8 in 0..16 (rows of the 8x8 image) and ``(1797,)`` uint8."""
    raw = gzip.decompress(resources.files(__package__).joinpath("data", "digits.u8.gz").read_bytes())
    if hashlib.sha256(raw).hexdigest() != DIGITS_SHA256:
        raise FormatError("the bundled digits dataset does not match its checksum; reinstall tritonsym")
    table = np.frombuffer(raw, np.uint8).reshape(DIGITS_SAMPLES, DIGITS_PIXELS + 1)
    return table[:, :DIGITS_PIXELS].copy(), table[:, DIGITS_PIXELS].copy()


def split(n: int, validation_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a fixed random train / validation split of ``n`` samples; each part gets
    at least one sample."""
    if not 0 < validation_fraction < 1:
        raise ParamError(f"split: validation_fraction={validation_fraction!r} must be in (0, 1)")
    n_val = int(round(n * validation_fraction))
    if not 0 < n_val < n:
        raise ParamError(f"split: validation_fraction={validation_fraction!r} of {n} samples leaves {n - n_val} for "
                         f"training and {n_val} for validation; each needs at least one")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])
