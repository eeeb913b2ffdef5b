"""make_loss: the count MakeLoss's ``normalization='valid'`` divides its gradient by, as
MXNet computes it: the elements of the loss above ``valid_thresh``, at least 1 (the fill
in ``ops/memory.py`` takes the count as its divisor, read on the device, so a captured step
counts anew each replay). One program walks the loss, the count exact (float64: whole up
to 2**53, where MXNet sums in the data's dtype and float16 stops counting at 2048). A NaN
element makes the count NaN: which elements are valid is unknown, and the gradient then
NaN (MXNet skips it).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import FLOAT_DTYPES, KernelArgumentError, Launch, check_tensor, load_wide

TESTS = ("tests/test_operators.py", "tests/test_make_loss.py")
BLOCK_COUNT = 1024  # elements counted at once


@triton.jit
def _count_kernel(DATA, COUNT, n, threshold, BLOCK: tl.constexpr):
    lanes = tl.arange(0, BLOCK).to(tl.int64)
    above = tl.zeros((BLOCK,), tl.int64)
    unknown = tl.zeros((BLOCK,), tl.int32)
    for start in range(0, n, BLOCK):
        i = start + lanes
        x = load_wide(DATA, i, i < n, 0.0)
        above += ((i < n) & (x > threshold)).to(tl.int64)
        unknown += ((i < n) & (x != x)).to(tl.int32)
    count = tl.sum(above, axis=0).to(tl.float64)
    tl.store(COUNT, tl.where(tl.sum(unknown, axis=0) > 0, float("nan"), count))


def plan_count_valid(data: torch.Tensor, count: torch.Tensor, valid_thresh: float) -> list[Launch]:
    """``count`` (one float64 element) = how many elements of ``data`` are above
    ``valid_thresh`` (a float32 value, as MXNet's parameter); NaN if one is NaN."""
    fn = "make_loss"
    check_tensor(fn, "data", data, FLOAT_DTYPES)
    if not data.is_contiguous():
        raise KernelArgumentError(f"{fn}: data must be contiguous, got strides {data.stride()}")
    if count.numel() != 1 or count.dtype != torch.float64 or count.device != data.device:
        raise KernelArgumentError(f"{fn}: count must be one float64 element on {data.device}, got shape "
                                  f"{tuple(count.shape)} {count.dtype} on {count.device}")
    threshold = torch.tensor(valid_thresh, dtype=torch.float32).item()
    return [Launch(_count_kernel, (1,), [data, count, data.numel(), threshold], dict(BLOCK=BLOCK_COUNT))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # SSD's box-offset loss: 32 images x 8732 anchors x 4; 3 x 5
    data = torch.empty((32, 8732 * 4) if large else (3, 5), dtype=dtype)
    return [("make loss count valid", plan_count_valid(data, torch.empty(1, dtype=torch.float64), 0.0)[0])]
