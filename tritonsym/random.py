"""The seed behind every random choice tritonsym makes: initial weights and data shuffling.

>>> import tritonsym as ts
>>> ts.random.seed(42)   # the same weights and the same batch order on every run
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def seed(value: int) -> None:
    """Reseed tritonsym's generator (MXNet's ``mx.random.seed``)."""
    global _generator
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"random.seed: seed={value!r} must be a non-negative integer")
    _generator = np.random.default_rng(int(value))


def generator() -> np.random.Generator:
    """The generator initializers and shuffling iterators draw from."""
    return _generator
