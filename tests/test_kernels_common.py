"""The shared jit helpers of ops/_common.py, on their own: ``expm1`` and ``log1p`` must keep
their relative accuracy where the naive ``exp(z) - 1`` and ``log(1 + t)`` lose it all
(|z| far below one ulp of 1), which an absolute tolerance on a whole operator cannot see;
``round_to_bf16`` must round ties to even, which random data almost never exercises."""

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from tolerances import rounded, to_numpy
from tritonsym.ops._common import expm1, log1p, round_to_bf16


@triton.jit
def _helpers_kernel(X, EXPM1, LOG1P, n, BLOCK: tl.constexpr):
    index = tl.arange(0, BLOCK)
    mask = index < n
    x = tl.load(X + index, mask=mask, other=0.0)
    tl.store(EXPM1 + index, expm1(x), mask=mask)
    tl.store(LOG1P + index, log1p(x), mask=mask)


@triton.jit
def _bf16_kernel(X, OUT, n, BLOCK: tl.constexpr):
    index = tl.arange(0, BLOCK)
    mask = index < n
    tl.store(OUT + index, round_to_bf16(tl.load(X + index, mask=mask, other=0.0)), mask=mask)


# Relative error allowed: a few units in the last place of the dtype.
RTOL = {torch.float32: 4 * 2.0**-23, torch.float64: 4 * 2.0**-52}
TINY = [1e-30, 3e-20, 1e-12, 2.0**-30, 5e-8, 1e-5, 1e-3]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_expm1_and_log1p_keep_relative_accuracy_near_zero(dtype):
    values = [s * v for v in TINY for s in (1, -1)] + [0.25, -0.25, 0.693, 1.0, -0.5, -1.0, 3.0, 20.0, -20.0]
    x = rounded(np.array(values), dtype)
    want_x = to_numpy(x).astype(np.float64)  # the inputs as the kernel sees them
    got_expm1, got_log1p = torch.empty_like(x), torch.empty_like(x)
    _helpers_kernel[(1,)](x, got_expm1, got_log1p, x.numel(), BLOCK=triton.next_power_of_2(x.numel()))
    inside = want_x > -1  # log1p's domain
    for name, got, want in (("expm1", got_expm1, np.expm1(want_x)),
                            ("log1p", got_log1p, np.where(inside, np.log1p(np.where(inside, want_x, 0)), np.nan))):
        error = np.abs(to_numpy(got).astype(np.float64) - want) / np.abs(want)
        error[np.isnan(want)] = 0.0
        worst = int(np.argmax(error))
        assert error[worst] <= RTOL[dtype], (
            f"{name}({want_x[worst]!r}) = {to_numpy(got)[worst]!r}, want {want[worst]!r} "
            f"(relative error {error[worst]:.3g})")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_expm1_and_log1p_at_their_limits(dtype):
    x = rounded(np.array([0.0, -0.0, -np.inf, np.inf, -1.0, -800.0]), dtype)  # expm1(-1) is in the test above
    got_expm1, got_log1p = torch.empty_like(x), torch.empty_like(x)
    _helpers_kernel[(1,)](x, got_expm1, got_log1p, x.numel(), BLOCK=8)
    np.testing.assert_array_equal(to_numpy(got_expm1)[[0, 1, 2, 3, 5]], [0.0, 0.0, -1.0, np.inf, -1.0])
    np.testing.assert_array_equal(to_numpy(got_log1p)[[0, 1, 3, 4]], [0.0, 0.0, np.inf, -np.inf])


def test_round_to_bf16_rounds_to_nearest_even():
    # float32 bit patterns: exact ties (low half 0x8000) above kept bits of each parity in both
    # of the last two places, one below and one above a tie, the largest float32 (overflows to
    # inf), infinities and NaN.
    bits = [0x3F808000, 0x3F818000, 0x3F828000, 0x3F838000, 0xBF818000, 0x3F817FFF, 0x3F808001,
            0x7F7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000]
    want = [0x3F80, 0x3F82, 0x3F82, 0x3F84, 0xBF82, 0x3F81, 0x3F81, 0x7F80, 0x7F80, 0xFF80, None]
    x = torch.tensor(np.array(bits, dtype=np.uint32).view(np.float32))
    out = torch.empty(len(bits), dtype=torch.bfloat16)
    _bf16_kernel[(1,)](x, out, len(bits), BLOCK=16)
    got = out.view(torch.int16).numpy().view(np.uint16)
    for b, g, w in zip(bits, got, want):
        if w is None:
            assert torch.isnan(out[bits.index(b)]), f"{b:#010x}: NaN must stay NaN"
        else:
            assert g == w, f"{b:#010x} rounds to {w:#06x}, got {g:#06x}"
    assert torch.equal(out[~torch.isnan(out)], x.to(torch.bfloat16)[~torch.isnan(out)])  # torch's rounding agrees
