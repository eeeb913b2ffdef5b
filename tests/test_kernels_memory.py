"""Fill, copy and accumulate kernels (ops/memory.py)."""

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close, poisoned, rounded, to_numpy
from tritonsym.ops import KernelArgumentError, memory
from tritonsym.ops._common import run

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


def test_fill_keeps_a_float64_value_exact_and_applies_the_loss_scale():
    out = poisoned((5, 3), torch.float64)
    ops.fill(out, 0.1)  # not representable in float32: a float32 detour would show
    assert (to_numpy(out) == 0.1).all()
    scale = torch.tensor([4.0])
    for dtype in DTYPES:
        out = poisoned((5, 3), dtype)
        ops.fill(out, 0.375, loss_scale=scale)
        assert (to_numpy(out) == 1.5).all(), f"{dtype}: value times the loss scale"
        ops.fill(out, 0.25, accumulate=True, loss_scale=scale)
        assert (to_numpy(out) == 2.5).all(), f"{dtype}: adds value times the loss scale"


def test_many_programs_cover_every_element(rng, monkeypatch):
    """The interpreter's block (65536) puts these shapes in one program; with the GPU's order
    of block the launches run many programs, each of which must find its own elements."""
    from tritonsym.ops import _common, memory

    for module in (_common, memory):
        monkeypatch.setattr(module, "ELEMENTWISE_BLOCK", 16)
    out = poisoned((7, 130), torch.float32)
    ops.fill(out, 0.375)
    assert (to_numpy(out) == 0.375).all()
    src = rounded(rng.normal(size=(130, 7)), torch.float32)
    ops.copy(src.T, out)
    assert torch.equal(out, src.T)
    ops.accumulate(src.T, out)
    assert torch.equal(out, 2 * src.T)


LARGEST_FINITE = {torch.float64: 1e300, torch.float32: 3e38, torch.float16: 65504.0, torch.bfloat16: 3e38}


@pytest.mark.parametrize("block", [None, 16], ids=["one program", "many programs"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_count_nonfinite_counts_nan_and_both_infinities(rng, dtype, block, monkeypatch):
    from tritonsym.ops import memory

    if block:
        monkeypatch.setattr(memory, "ELEMENTWISE_BLOCK", block)
    x = rng.normal(size=203)
    bad = rng.choice(203, size=11, replace=False)
    x[bad] = rng.choice([np.nan, np.inf, -np.inf], size=11)
    x[-1] = np.inf  # the last element, at the bound of the mask
    x[0] = LARGEST_FINITE[dtype]  # counted in the dtype's own range: 1e300 is finite in float64
    count = torch.full((1,), 5, dtype=torch.int32)
    memory.run(memory.plan_count_nonfinite(rounded(x, dtype), count))
    assert count.item() == 5 + int((~np.isfinite(x)).sum()), "adds the count of non-finite elements"


def test_copy_converts_dtype_and_reshapes(rng):
    src = rounded(rng.normal(size=(6, 4)), torch.float64)
    dst = poisoned((24,), torch.float32)
    ops.copy(src, dst)
    assert_close(dst, to_numpy(src).reshape(-1), torch.float32)
    parent = poisoned((4, 12), torch.float64)
    ops.copy(src.T, parent[:, ::2])
    assert_close(parent[:, ::2], to_numpy(src).T, torch.float64)
    assert torch.isnan(parent[:, 1::2]).all(), "wrote outside the strided destination"


@pytest.mark.parametrize("shape, order, launches", [
    ((2, 3, 4, 5, 3), (2, 0, 3, 1, 4), 2),  # 5 axes that cannot merge: one launch per index of the shortest
    ((2, 3, 2, 2, 3, 2), (5, 2, 0, 3, 1, 4), 4),  # 6: two axes of 2 split off
    ((3, 4, 5, 6, 7), (0, 1, 2, 4, 3), 1),  # the leading three merge: one launch
])
def test_a_copy_through_more_axes_than_the_kernel_indexes(rng, shape, order, launches):
    """A permutation of 5 or 6 axes keeps every element where it belongs (and no more),
    the copy split into launches over its shortest axes until the rest merge."""
    src = rounded(rng.normal(size=shape), torch.float64).permute(order)
    parent = poisoned((*src.shape, 2), torch.float64)
    dst = parent[..., 0]  # strided too: every other element of parent
    plan = memory.plan_copy(src, dst)
    assert len(plan) == launches
    run(plan)
    assert torch.equal(dst, src)
    assert torch.isnan(parent[..., 1]).all(), "wrote outside the strided destination"
    ops.accumulate(src, dst)
    assert torch.equal(dst, 2 * src)


def test_errors():
    with pytest.raises(KernelArgumentError, match="src has 6 elements"):
        ops.copy(torch.zeros(6), torch.zeros(5))
    with pytest.raises(KernelArgumentError, match="zero stride"):
        ops.fill(torch.zeros(1).expand(4), 1.0)
