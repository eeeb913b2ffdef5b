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
