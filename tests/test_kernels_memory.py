"""Fill, copy and accumulate kernels (ops/memory.py)."""

import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close, poisoned, rounded, to_numpy
from tritonsym.ops import KernelArgumentError

from tritonsym import ops


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_fill_copy_accumulate(rng, dtype):
    out = poisoned((7, 130), dtype)
    ops.fill(out, 0.375)
    assert (to_numpy(out) == 0.375).all()
    ops.fill(out, 1.0, accumulate=True)
    assert (to_numpy(out) == 1.375).all()
    src = rounded(rng.normal(size=(7, 130)), dtype)
    ops.copy(src, out)
    assert torch.equal(out, src)
    ops.accumulate(src, out)
    assert_close(out, 2 * to_numpy(src), dtype)


def test_copy_converts_dtype_and_reshapes(rng):
    src = rounded(rng.normal(size=(6, 4)), torch.float64)
    dst = poisoned((24,), torch.float32)
    ops.copy(src, dst)
    assert_close(dst, to_numpy(src).reshape(-1), torch.float32)
    parent = poisoned((4, 12), torch.float64)
    ops.copy(src.T, parent[:, ::2])
    assert_close(parent[:, ::2], to_numpy(src).T, torch.float64)
    assert torch.isnan(parent[:, 1::2]).all(), "wrote outside the strided destination"


def test_errors():
    with pytest.raises(KernelArgumentError, match="src has 6 elements"):
        ops.copy(torch.zeros(6), torch.zeros(5))
    with pytest.raises(KernelArgumentError, match="zero stride"):
        ops.fill(torch.zeros(1).expand(4), 1.0)
