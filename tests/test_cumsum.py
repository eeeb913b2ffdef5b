"""cumsum (``ts.sym.cumsum``, MXNet's ``_np_cumsum``): running sums along any axis and over
the flattened data, in every dtype against a float64 oracle (float32 summed in float64: a
long axis keeps its digits), axes longer than one tile (the running total carried between
tiles), integers into int64, the gradient (the reverse running sum), NaN, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close, rounded, to_numpy
from tritonsym.ops import KernelArgumentError
from tritonsym.ops import cumsum as kernels
from tritonsym.ops._common import run

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym


def _cumsum(x: torch.Tensor, axis, reverse=False, out_dtype=None) -> torch.Tensor:
    out = torch.empty(x.numel() if axis is None else x.shape, dtype=out_dtype or x.dtype)
    run(kernels.plan_cumsum(x, out, axis, reverse=reverse))
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, None])
def test_running_sums_along_every_axis(rng, dtype, axis):
    x = rounded(rng.normal(size=(5, 7, 3)), dtype)
    expected = np.cumsum(to_numpy(x), axis=axis)
    assert_close(_cumsum(x, axis), expected, dtype, f"cumsum axis {axis}", scale=4.0)
    reverse = np.flip(np.cumsum(np.flip(to_numpy(x).reshape(-1) if axis is None else to_numpy(x), axis or 0),
                                axis or 0), axis or 0)
    assert_close(_cumsum(x, axis, reverse=True), reverse, dtype, f"reverse cumsum axis {axis}", scale=4.0)


def test_a_long_axis_carries_its_total_across_tiles_and_keeps_float32_digits():
    """100003 ones (tiles of 16384 in the interpreter: the total carried across seven) and a
    million small values, each running sum the float64 one rounded once (summed in float64;
    float32 accumulation would drift from it)."""
    ones = torch.ones(100003)
    assert torch.equal(_cumsum(ones, 0), torch.arange(1, 100004, dtype=torch.float32))
    rng = np.random.default_rng(0)
    small = torch.tensor(rng.uniform(0, 1e-3, 1_000_000), dtype=torch.float32)
    exact = np.cumsum(small.numpy().astype(np.float64))
    np.testing.assert_array_equal(_cumsum(small, 0).numpy(), exact.astype(np.float32))


def test_integers_sum_into_int64_and_nan_propagates():
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 1, 0]], dtype=torch.int32)
    positions = _cumsum(mask, 1, out_dtype=torch.int64)
    assert positions.tolist() == [[1, 1, 2, 3], [0, 0, 1, 1]]
    big = torch.full((3,), 2 ** 40, dtype=torch.int64)
    assert _cumsum(big, 0).tolist() == [2 ** 40, 2 ** 41, 3 * 2 ** 40]
    x = torch.tensor([1.0, np.nan, 2.0, np.inf, -np.inf])
    got = _cumsum(x, 0).tolist()
    assert got[0] == 1.0 and all(np.isnan(got[1:]))


def test_symbol_shapes_dtypes_names_and_the_gradient():
    a = S.Variable("a")
    net = S.cumsum(a, axis=1)
    assert net.name.startswith("cumsum") and net.list_arguments() == ["a"]
    assert S.cumsum(a).infer_shape(a=(2, 3))[1] == [(6,)]
    assert net.infer_type(a="int32")[1] == [torch.int64] and net.infer_type(a="bfloat16")[1] == [torch.bfloat16]
    assert S.cumsum(a, dtype="float32").infer_type(a="float16")[1] == [torch.float32]
    exe = net.simple_bind(ts.cpu(), a=(2, 3), type_dict={"a": "float64"})
    x = np.arange(6.0).reshape(2, 3)
    assert exe.forward(is_train=True, a=x)[0].numpy().tolist() == [[0, 1, 3], [3, 7, 12]]
    exe.backward([torch.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, 0.0]], dtype=torch.float64)])
    assert exe.grad_dict["a"].numpy().tolist() == [[6, 5, 3], [1, 0, 0]]
    loaded = ts.sym.load_json(net.tojson())
    assert '"op": "_np_cumsum"' in net.tojson() and loaded.list_arguments() == ["a"]


def test_positions_from_a_mask_feed_an_embedding():
    """The use it is for: each kept token's position (cumsum of the mask, minus 1) read from
    an embedding table; integer positions, no gradient to the mask."""
    mask, table = S.Variable("mask"), S.Variable("table")
    positions = S.cumsum(mask, axis=1) - 1
    net = S.Embedding(positions, table, input_dim=4, output_dim=2)
    exe = net.simple_bind(ts.cpu(), mask=(1, 4), table=(4, 2), type_dict={"mask": "float32"})
    out = exe.forward(mask=np.array([[1.0, 0.0, 1.0, 1.0]]), table=np.arange(8.0).reshape(4, 2))[0]
    assert out.numpy().tolist() == [[[0, 1], [0, 1], [2, 3], [4, 5]]]


def test_errors_name_the_operator_and_values():
    with pytest.raises(ShapeError, match=r"axis=2 is out of range for data of shape \(2, 3\)"):
        S.cumsum(S.Variable("a"), axis=2).infer_shape(a=(2, 3))
    with pytest.raises(Exception, match=r"dtype=int32 would drop the fractions of float32 data"):
        S.cumsum(S.Variable("a"), dtype="int32").infer_type(a="float32")
    with pytest.raises(KernelArgumentError, match=r"cumsum: x must be contiguous"):
        _cumsum(torch.zeros(3, 4).T, 0)
