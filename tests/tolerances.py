"""Per-dtype tolerances and a comparison that says which elements differ and by how much.

Inputs are rounded to the tested dtype before the float64 oracle sees them, so the
tolerance covers only what the kernel adds: accumulation order and rounding of the
result (float16 keeps 11 significant bits, bfloat16 8; products accumulate in float32).
"""

from __future__ import annotations

import numpy as np
import torch

# dtype: (atol, rtol)
TOLERANCES = {
    torch.float64: (1e-12, 1e-10),
    torch.float32: (1e-5, 1e-4),
    torch.float16: (2e-3, 5e-3),
    torch.bfloat16: (1.5e-2, 2e-2),
}
DTYPES = list(TOLERANCES)
DTYPE_IDS = ["float64", "float32", "float16", "bfloat16"]


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).cpu().numpy()


def assert_close(actual, expected, dtype: torch.dtype, what: str = "result", scale: float = 1.0) -> None:
    """|actual - expected| <= atol*scale + rtol*|expected| everywhere; NaN (an element
    never written) always fails. ``scale`` widens atol for sums of many terms."""
    actual = to_numpy(actual) if isinstance(actual, torch.Tensor) else np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    atol, rtol = TOLERANCES[dtype]
    err = np.abs(actual - expected)
    bad = ~(err <= atol * scale + rtol * np.abs(expected))
    bad |= np.isnan(actual) & ~np.isnan(expected)
    bad &= ~(np.isnan(actual) & np.isnan(expected))
    bad &= ~((actual == expected) & np.isinf(expected))
    if bad.any():
        index = np.argwhere(bad)
        worst = index[np.argsort(-np.nan_to_num(err[bad], nan=np.inf))][:5]
        lines = [f"  at {tuple(int(i) for i in ix)}: got {actual[tuple(ix)]!r}, expected {expected[tuple(ix)]!r}"
                 for ix in worst]
        raise AssertionError(f"{what} ({str(dtype).removeprefix('torch.')}): {bad.sum()} of {bad.size} elements "
                             f"differ beyond atol={atol * scale:g}, rtol={rtol:g}; worst:\n" + "\n".join(lines))


def rounded(x: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """x in ``dtype`` (the kernel's input)."""
    return torch.from_numpy(np.ascontiguousarray(x)).to(dtype)


def poisoned(shape, dtype) -> torch.Tensor:
    """An output buffer full of NaN: any element a kernel fails to write shows up."""
    return torch.full(shape, float("nan"), dtype=dtype)
