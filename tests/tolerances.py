"""Per-dtype tolerances and a comparison that says which elements differ and by how much.

Inputs are rounded to the tested dtype before the float64 oracle sees them, so the
tolerance covers only what the kernel adds: accumulation order and rounding of the
result (float16 keeps 11 significant bits, bfloat16 8; products accumulate in float32).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tritonsym.test_utils import DEFAULT_TOLERANCES as TOLERANCES  # dtype: (atol, rtol)
from tritonsym.test_utils import assert_almost_equal

DTYPES = list(TOLERANCES)
DTYPE_IDS = ["float64", "float32", "float16", "bfloat16"]
# The dtypes of a wide matrix (every operator case, every axis set): float32 and bfloat16
# (the interpreter's bit-pattern path) in the README's quick run, float64 and float16 too
# under "-m slow", which CI runs.
DTYPES_QUICK_FIRST = [pytest.param(d, id=i, marks=() if i in ("float32", "bfloat16") else pytest.mark.slow)
                      for d, i in zip(DTYPES, DTYPE_IDS)]
# Wider still (every operator case times every input): float32 alone in the quick run.
DTYPES_FLOAT32_FIRST = [pytest.param(d, id=i, marks=() if i == "float32" else pytest.mark.slow)
                        for d, i in zip(DTYPES, DTYPE_IDS)]


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).cpu().numpy()


def assert_close(actual, expected, dtype: torch.dtype, what: str = "result", scale: float = 1.0) -> None:
    """The public ``assert_almost_equal`` with ``dtype``'s tolerances; ``scale`` widens atol
    for sums of many terms. NaN where the oracle has a number (an element never written)
    fails; NaN where the oracle has NaN too (a power of a negative base) matches."""
    atol, rtol = TOLERANCES[dtype]
    assert_almost_equal(actual, expected, rtol=rtol, atol=atol * scale, names=(f"{what} ({str(dtype)[6:]})",
                                                                              "expected"), equal_nan=True)


def rounded(x: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """x in ``dtype`` (the kernel's input), on the device under test."""
    return torch.from_numpy(np.ascontiguousarray(x)).to(dtype=dtype, device=torch.get_default_device())


def poisoned(shape, dtype) -> torch.Tensor:
    """An output buffer full of NaN: any element a kernel fails to write shows up."""
    return torch.full(shape, float("nan"), dtype=dtype)
