"""gather_nd and scatter_nd beyond the operator cases: MXNet's documented examples, invalid
coordinates (NaN, never another slice), negative ones, both of Embedding's gradient paths,
the same bits every run, dtypes and the shape errors."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch

import tritonsym as ts
from tritonsym.base import BindError, ShapeError

S = ts.sym


def _bind(sym, dtype="float64", grad_req="write", **shapes):
    return sym.simple_bind(ts.cpu(), grad_req={"data": grad_req, "i": "null"},
                           type_dict={"data": dtype}, **shapes)


def _gather(data, coords, dtype="float64"):
    exe = _bind(S.gather_nd(S.Variable("data"), S.Variable("i")), dtype, data=data.shape, i=coords.shape)
    return exe, exe.forward(is_train=True, data=data, i=coords)[0]


def test_mxnets_documented_examples():
    _, out = _gather(np.array([[0.0, 1], [2, 3]]), np.array([[1, 1, 0], [0, 1, 0]]))
    assert out.tolist() == [2, 3, 0]
    _, out = _gather(np.array([[[1.0, 2], [3, 4]], [[5, 6], [7, 8]]]), np.array([[0, 1], [1, 0]]))
    assert out.tolist() == [[3, 4], [5, 6]]
    scatter = S.scatter_nd(S.Variable("data"), S.Variable("i"), shape=(2, 2))
    exe = _bind(scatter, data=(3,), i=(2, 3))
    assert exe.forward(data=np.array([2.0, 3, 0]), i=np.array([[1, 1, 0], [0, 1, 0]]))[0].tolist() == [[0, 0], [2, 3]]
    scatter = S.scatter_nd(S.Variable("data"), S.Variable("i"), shape=(2, 2, 2, 2))
    exe = _bind(scatter, data=(2, 2, 2), i=(2, 2))
    out = exe.forward(data=np.array([[[1.0, 2], [3, 4]], [[5, 6], [7, 8]]]), i=np.array([[0, 1], [1, 1]]))[0]
    assert out.tolist() == [[[[0, 0], [0, 0]], [[1, 2], [3, 4]]], [[[0, 0], [0, 0]], [[5, 6], [7, 8]]]]


def test_invalid_coordinates_give_nan_never_another_slice():
    data = np.arange(24.0).reshape(2, 3, 4)
    coords = np.array([[1, 1.5, np.nan, 2, 0, -3], [2, 0, 0, 0, 3, 0]])  # 1.5, NaN, past axis 0, past axis 1, -3
    exe, out = _gather(data, coords)
    out = out.numpy()
    assert np.array_equal(out[0], data[1, 2]) and np.isnan(out[1:]).all()
    exe.backward([torch.ones(6, 4, dtype=torch.float64)])
    grad = exe.grad_dict["data"].numpy()
    assert grad[1, 2].tolist() == [1] * 4 and grad.sum() == 4  # the invalid positions add nothing
    scatter = S.scatter_nd(S.Variable("data"), S.Variable("i"), shape=(3, 2))
    exe = _bind(scatter, data=(2,), i=(2, 2))
    assert np.isnan(exe.forward(is_train=True, data=np.ones(2), i=np.array([[0, 3], [1, 0]]))[0].numpy()).all()
    exe.backward([torch.arange(6, dtype=torch.float64).reshape(3, 2)])
    grad = exe.grad_dict["data"].numpy()
    assert grad[0] == 1 and np.isnan(grad[1])  # each position its own slice's gradient, NaN where it has none
    assert exe.forward(data=np.ones(2), i=np.array([[0, 2], [1, 0]]))[0].tolist() == [[0, 1], [0, 0], [1, 0]]


def test_negative_coordinates_count_from_the_end_forward_and_backward():
    """MXNet 1.9.1 wraps them in gather_nd's forward and drops them from its gradient."""
    data = np.arange(6.0).reshape(2, 3)
    coords = np.array([[0, 1, 0, 0], [1, 2, 1, -1]])
    exe, out = _gather(data, coords)
    assert out.tolist() == [1, 5, 1, 2]
    exe.backward([torch.ones(4, dtype=torch.float64)])
    assert exe.grad_dict["data"].tolist() == [[0, 2, 1], [0, 0, 1]]


@pytest.mark.parametrize("rows_first", [True, False], ids=["small-table", "large-table"])
def test_the_gradient_sums_repeats_with_the_same_bits_every_run(rows_first, rng):
    """Both of Embedding's weight-gradient paths (a block of rows per program, a block of
    positions per program), float32 sums of many repeats: the oracle's sum, and bit-equal
    runs."""
    shape = (4, 3, 8) if rows_first else (100, 7, 8)
    coords = np.stack([rng.integers(0, shape[0], 200), rng.integers(0, shape[1], 200)])
    coords[:, :100] = coords[:, :1]  # one slice gathered 100 times
    exe = _bind(S.gather_nd(S.Variable("data"), S.Variable("i")), "float32", data=shape, i=coords.shape)
    head = rng.normal(size=(200, 8)).astype(np.float32)
    grads = []
    for _ in range(2):
        exe.forward(is_train=True, data=rng.normal(size=shape), i=coords)
        exe.backward([torch.from_numpy(head)])
        grads.append(exe.grad_dict["data"].clone())
    assert torch.equal(grads[0], grads[1])
    np.testing.assert_allclose(grads[0].numpy(), o.gather_nd_grad(head.astype(np.float64), shape, coords),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_data_takes_float32_coordinates_and_refuses_narrow_ones(dtype):
    net = S.gather_nd(S.Variable("data"), S.Variable("i"))
    assert net.infer_type(data=dtype)[0][1] == torch.float32
    exe = net.simple_bind(ts.cpu(), data=(300, 2), i=(1, 3), type_dict={"data": dtype})
    data = np.arange(600.0).reshape(300, 2) / 8
    out = exe.forward(data=data, i=np.array([[299, 0, -300]]))[0]
    assert out.to(torch.float64).tolist() == torch.tensor(data[[299, 0, 0]]).to(getattr(torch, dtype)).tolist()
    if dtype == "bfloat16":  # 299 is no bfloat16 number
        with pytest.raises(BindError, match="holds whole numbers exactly only up to 256"):
            net.simple_bind(ts.cpu(), data=(300, 2), i=(1, 3), type_dict={"data": dtype, "i": dtype})


def test_shapes_are_inferred_and_wrong_ones_refused_naming_the_operator():
    gather = S.gather_nd(S.Variable("data"), S.Variable("i"), name="g")
    assert gather.infer_shape(data=(2, 3, 4), i=(2, 5))[1] == [(5, 4)]
    assert gather.infer_shape(data=(2, 3), i=(2, 2, 3))[1] == [(2, 3)]
    with pytest.raises(ShapeError, match=r"g \(gather_nd\).*indices of shape \(3, 5\) hold 3 coordinates, but data "
                                         r"of shape \(2, 3\) has 2 axes"):
        gather.infer_shape(data=(2, 3), i=(3, 5))
    scatter = S.scatter_nd(S.Variable("data"), S.Variable("i"), shape=(4, 3, 2), name="s")
    assert scatter.infer_shape(i=(2, 5))[0][0] == (5, 2)  # the data's shape follows
    with pytest.raises(ShapeError, match=r"s \(scatter_nd\).*data is \(5, 3\) but \(5, 2\) is expected"):
        scatter.infer_shape(data=(5, 3), i=(2, 5))
