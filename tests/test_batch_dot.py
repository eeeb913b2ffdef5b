"""dot and batch_dot on the batched GEMM kernel: products across tile edges, transposes as
strides (never copies), accumulation, precision, NaN, and the errors that name the shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close, rounded, to_numpy
from tritonsym.ops import batch_dot as kernels

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_products_across_tile_edges(dtype, rng):
    # 130 rows and 131 columns: more than one of the interpreter's 128-wide tiles, ragged tails.
    a = rounded(rng.normal(size=(2, 130, 37)), dtype)
    b = rounded(rng.normal(size=(2, 37, 131)), dtype)
    out = kernels.batch_dot(a, b)
    assert_close(out, to_numpy(a) @ to_numpy(b), dtype, "batch_dot", scale=4.0)


def test_transposed_operands_and_output_are_views(rng):
    a, b = torch.from_numpy(rng.normal(size=(3, 6, 5))), torch.from_numpy(rng.normal(size=(3, 7, 6)))
    out = torch.zeros(3, 7, 5, dtype=torch.float64)
    launches = kernels.plan_batch_dot(a.transpose(1, 2), b.transpose(1, 2), out.transpose(1, 2))
    assert launches[0].args[0].data_ptr() == a.data_ptr() and launches[0].args[2].data_ptr() == out.data_ptr()
    launches[0]()
    np.testing.assert_allclose(out.numpy(), np.swapaxes(np.swapaxes(a.numpy(), 1, 2) @ np.swapaxes(b.numpy(), 1, 2),
                                                        1, 2), rtol=1e-12)


def test_accumulate_adds_and_an_empty_sum_is_zero(rng):
    a, b = torch.from_numpy(rng.normal(size=(2, 4, 3))), torch.from_numpy(rng.normal(size=(2, 3, 5)))
    out = torch.ones(2, 4, 5, dtype=torch.float64)
    kernels.plan_batch_dot(a, b, out, accumulate=True)[0]()
    np.testing.assert_allclose(out.numpy(), 1 + a.numpy() @ b.numpy(), rtol=1e-12)
    empty = kernels.batch_dot(torch.zeros(2, 4, 0, dtype=torch.float64), torch.zeros(2, 0, 5, dtype=torch.float64))
    assert torch.equal(empty, torch.zeros(2, 4, 5, dtype=torch.float64))


def test_nan_reaches_its_row_and_column_only():
    a, b = torch.ones(1, 3, 4), torch.ones(1, 4, 2)
    a[0, 1, 2] = float("nan")
    out = kernels.batch_dot(a, b).numpy()
    assert np.isnan(out[0, 1]).all() and not np.isnan(out[0, [0, 2]]).any()


def test_tf32_precision_is_a_choice(rng):
    net = S.batch_dot(S.Variable("a"), S.Variable("b"), precision="tf32")
    assert net.attr_dict()[net.name]["precision"] == "tf32"
    with pytest.raises(ts.base.ParamError, match="precision='fast' is not one of 'ieee', 'tf32'"):
        S.dot(S.Variable("a"), S.Variable("b"), precision="fast")


def test_shape_rules_name_the_shapes():
    a, b = S.Variable("a"), S.Variable("b")
    assert S.batch_dot(a, b).infer_shape(a=(2, 3, 4, 5), b=(2, 3, 5, 6))[1] == [(2, 3, 4, 6)]
    assert S.dot(a, b, transpose_a=True).infer_shape(a=(4, 2, 3), b=(4, 5))[1] == [(2, 3, 5)]
    assert S.dot(a, b).infer_shape(a=(4,), b=(4,))[1] == [(1,)]
    with pytest.raises(ShapeError, match=r"lhs \(2, 3, 4\) and rhs \(2, 5, 6\) .* multiply 4 columns by 5 rows"):
        S.batch_dot(a, b).infer_shape(a=(2, 3, 4), b=(2, 5, 6))
    with pytest.raises(ShapeError, match="must have one rank, at least 3"):
        S.batch_dot(a, b).infer_shape(a=(3, 4), b=(4, 5))
    with pytest.raises(ShapeError, match=r"contract 4 with 5"):
        S.dot(a, b).infer_shape(a=(3, 4), b=(5, 2))


def test_kernel_arguments_are_checked():
    with pytest.raises(kernels.KernelArgumentError, match=r"b must be \(2, 4, N\)"):
        kernels.plan_batch_dot(torch.zeros(2, 3, 4), torch.zeros(2, 5, 6))
    with pytest.raises(kernels.KernelArgumentError, match="must share a dtype"):
        kernels.plan_batch_dot(torch.zeros(2, 3, 4), torch.zeros(2, 4, 6, dtype=torch.float64))
    with pytest.raises(kernels.KernelArgumentError, match="a batch of 70000 products"):
        kernels.plan_batch_dot(torch.zeros(70000, 1, 1), torch.zeros(70000, 1, 1))


def _operand(rng, batch, rows, cols, layout, width):
    """A (batch, rows, cols) float32 operand: "rows" contiguous along cols, its rows cut from
    a buffer ``width`` wide; "transposed" contiguous along rows, a transposed view of a
    (batch, cols, width) buffer. Unwritten elements are NaN."""
    if layout == "rows":
        buffer = torch.full((batch, rows, width), float("nan"))
        view = buffer[:, :, :cols]
    else:
        buffer = torch.full((batch, cols, width), float("nan"))
        view = buffer[:, :, :rows].transpose(1, 2)
    return view.copy_(rounded(rng.normal(size=(batch, rows, cols)), torch.float32)), buffer


# (M, K, N), each operand's (layout, width), and the ALIGN_AM, AK, BK, BN, CM, CN expected
ALIGNED_PRODUCTS = [
    ((20, 1000, 24), (("rows", 1000), ("rows", 24), ("rows", 24)), (1, 8, 1, 8, 1, 8)),  # P @ V over 1000 keys
    ((12, 6, 10), (("transposed", 12), ("transposed", 6), ("transposed", 12)), (4, 1, 2, 1, 4, 1)),
    ((12, 40, 24), (("rows", 48), ("rows", 1000), ("rows", 36)), (1, 8, 1, 8, 1, 4)),
    ((32, 16, 48), (("rows", 16), ("rows", 48), ("transposed", 32)), (1, 16, 1, 16, 16, 1)),
    ((7, 33, 5), (("rows", 33), ("rows", 5), ("rows", 5)), (1, 1, 1, 1, 1, 1)),
]


@pytest.mark.parametrize("shape,layouts,expected", ALIGNED_PRODUCTS, ids=lambda v: str(v))
def test_operands_are_told_the_alignment_of_the_rows_they_are_contiguous_along(rng, shape, layouts, expected):
    """Each operand is told the largest power of two (up to 16) that its contiguous axis's
    length and its other strides are multiples of (Triton itself only knows 16), computed
    with so that the compiler sees it: the oracle's numbers, with no element written
    outside the output view."""
    (m, k, n), batch = shape, 2
    a, _ = _operand(rng, batch, m, k, *layouts[0])
    b, _ = _operand(rng, batch, k, n, *layouts[1])
    out, out_buffer = _operand(rng, batch, m, n, *layouts[2])
    out.fill_(float("nan"))
    (launch,) = kernels.plan_batch_dot(a, b, out)
    names = ("ALIGN_AM", "ALIGN_AK", "ALIGN_BK", "ALIGN_BN", "ALIGN_CM", "ALIGN_CN")
    assert tuple(launch.kwargs[name] for name in names) == expected
    launch()
    assert_close(out, to_numpy(a) @ to_numpy(b), torch.float32, "batch_dot", scale=4.0)
    assert torch.isnan(out_buffer).sum() == out_buffer.numel() - out.numel(), "wrote outside the output view"


def test_a_wrong_alignment_gives_wrong_numbers(rng, monkeypatch):
    """The alignment is computed with, not assumed: told rows of 12 are multiples of 8, the
    kernel reads and writes 8 of each row's 12 elements (so the test above can fail)."""
    monkeypatch.setattr(kernels, "_alignments", lambda name, t, first, second: {f"ALIGN_{name}{first}": 1,
                                                                                  f"ALIGN_{name}{second}": 8})
    a, b = rounded(rng.normal(size=(2, 12, 12)), torch.float32), rounded(rng.normal(size=(2, 12, 12)), torch.float32)
    out = kernels.batch_dot(a, b)
    assert not np.allclose(to_numpy(out), to_numpy(a) @ to_numpy(b), equal_nan=False)
