"""argmax and argmin beyond their generic operator cases: the first of ties, the first NaN,
infinities, axes longer than one program's block, every dtype, and the refusal of an axis
longer than the dtype holds indices exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES
from tritonsym.ops import arg_reduce as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts

S = ts.sym
nan, inf = float("nan"), float("inf")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_ties_nan_and_infinities(dtype):
    x = torch.tensor([[3, 7, 7, 1], [-inf, -inf, -inf, -inf], [1, nan, inf, nan], [inf, 2, -inf, inf],
                      [2, 2, 2, 2]], dtype=dtype)
    for kind, want in (("argmax", [1, 0, 1, 0, 0]), ("argmin", [3, 0, 1, 2, 0])):
        out = torch.empty(5, dtype=dtype)
        run(kernels.plan_arg_reduce(x, out, kind, 1))
        assert out.tolist() == want, kind


@pytest.mark.parametrize("axis", [0, 1, 2, None])
def test_every_axis_against_numpy_across_blocks(axis, rng, monkeypatch):
    monkeypatch.setattr(kernels, "TILE", 8)  # several blocks along the axis and of positions
    x = rng.normal(size=(7, 13, 5)).round(1)  # ties, which the first of must win
    for kind, numpy in (("argmax", np.argmax), ("argmin", np.argmin)):
        out = torch.empty(np.argmax(x, axis=axis, keepdims=True).size)
        run(kernels.plan_arg_reduce(torch.from_numpy(x).float(), out, kind, axis))
        np.testing.assert_array_equal(out.numpy(), numpy(x.astype(np.float32), axis=axis).reshape(-1))


def test_an_axis_longer_than_the_dtype_counts_is_refused_at_bind():
    x = S.Variable("x")
    with pytest.raises(KernelArgumentError, match=r"argmax: an axis of length 2050 has indices torch.float16 cannot "
                                                  r"hold exactly \(every integer only up to 2048\)"):
        S.argmax(x, axis=1).simple_bind(ts.cpu(), x=(2, 2050), type_dict={"x": torch.float16})
    S.argmax(x, axis=1).simple_bind(ts.cpu(), x=(2, 2049), type_dict={"x": torch.float16})  # 2048 is the last index


def test_shapes_follow_mxnet_and_no_gradient_flows():
    x = S.Variable("x")
    assert S.argmax(x).infer_shape(x=(2, 3))[1] == [(1,)]
    assert S.argmax(x, keepdims=True).infer_shape(x=(2, 3))[1] == [(1, 1)]
    assert S.argmin(x, axis=-1, keepdims=True).infer_shape(x=(2, 3))[1] == [(2, 1)]
    exe = (S.argmax(x, axis=1) * S.sum(x, axis=1)).simple_bind(ts.cpu(), x=(2, 3))
    exe.forward(is_train=True, x=torch.tensor([[1.0, 5, 2], [0, 0, 3]]))
    exe.backward([torch.ones(2)])
    assert exe.grad_dict["x"].tolist() == [[1, 1, 1], [2, 2, 2]]  # only sum's, times the argmax
