"""Embedding: rows gathered by float or integer index, NaN rows for indices that are not
rows, and a weight gradient with the same bits every run (summed in a fixed order)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerances import DTYPES_QUICK_FIRST, assert_close, rounded, to_numpy
from tritonsym.ops import embedding as kernels

import tritonsym as ts
from tritonsym.base import BindError

S = ts.sym


def _bound(rows, cols, shape, dtype=torch.float64, index_dtype=None, grad_req="write"):
    net = S.Embedding(S.Variable("data"), input_dim=rows, output_dim=cols, name="emb")
    types = {"emb_weight": dtype, **({"data": index_dtype} if index_dtype else {})}
    return net.simple_bind(ts.cpu(), type_dict=types, grad_req={"emb_weight": grad_req, "data": "null"}, data=shape)


def _oracle_grad(indices, head, rows):
    grad = np.zeros((rows, head.shape[-1]))
    np.add.at(grad, indices.astype(np.int64).ravel(), head.reshape(-1, head.shape[-1]).astype(np.float64))
    return grad


# Tables of fewer blocks of rows than of positions (each program owns rows) and of more (each
# program owns positions): the two ways the weight gradient is summed.
TABLES = [13, 300]


@pytest.mark.parametrize("rows", TABLES, ids=["small-table", "large-table"])
@pytest.mark.parametrize("index_dtype", [None, torch.int32, torch.int64], ids=["float", "int32", "int64"])
@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)
def test_forward_and_weight_gradient_against_numpy(dtype, index_dtype, rows, rng):
    # 3 x 47 positions and 70 columns: several blocks of positions and of columns, a ragged tail.
    cols, shape = 70, (3, 47)
    exe = _bound(rows, cols, shape, dtype, index_dtype)
    indices = rng.integers(0, rows, shape)
    weight = rounded(rng.normal(size=(rows, cols)), dtype)
    exe.arg_dict["emb_weight"][...] = weight
    exe.arg_dict["data"][...] = torch.from_numpy(indices)
    out = exe.forward(is_train=True)[0]
    assert_close(out, to_numpy(weight)[indices], dtype, "embedding forward")
    head = rounded(rng.normal(size=(*shape, cols)), dtype)
    exe.backward([head])
    assert_close(exe.grad_dict["emb_weight"], _oracle_grad(indices, to_numpy(head), rows), dtype,
                 "embedding weight gradient", scale=4.0)


@pytest.mark.parametrize("cols, align", [(300, 4), (1000, 8), (6, 2), (7, 1), (48, 16)])
@pytest.mark.parametrize("rows", TABLES, ids=["small-table", "large-table"])
def test_row_lengths_of_every_alignment(cols, align, rows, rng):
    """The kernels are told the rows' alignment (rows of 300 read 16 bytes at a time in
    float32) and compute with it: every width gives numpy's rows and gradient."""
    shape = (2, 37)
    picks = rng.integers(0, rows, shape)
    indices, weight = torch.as_tensor(picks), torch.as_tensor(rng.normal(size=(rows, cols)))
    launches = kernels.plan_embedding(indices, weight)
    assert launches[0].kwargs["ALIGN"] == align
    out = kernels.embedding(indices, weight)
    np.testing.assert_array_equal(to_numpy(out), to_numpy(weight)[picks])
    head = torch.as_tensor(rng.normal(size=(*shape, cols)))
    grad = torch.full((rows, cols), 7.0, dtype=torch.float64)
    launches = kernels.plan_embedding_weight_grad(indices, head, grad)
    assert launches[-1].kwargs["ALIGN"] == align
    for launch in launches:
        launch()
    assert_close(grad, _oracle_grad(picks, to_numpy(head), rows), torch.float64, "weight gradient")


def test_a_wrong_alignment_gives_wrong_numbers(rng, monkeypatch):
    """The alignment is computed with, not assumed: told rows of 12 are multiples of 8, the
    kernels gather the wrong columns (so the test above can fail)."""
    monkeypatch.setattr(kernels, "row_alignment", lambda *values: 8)
    picks = rng.integers(0, 20, (3, 5))
    weight = torch.as_tensor(rng.normal(size=(20, 12)))
    out = kernels.embedding(torch.as_tensor(picks), weight)
    assert not np.array_equal(to_numpy(out), to_numpy(weight)[picks])
    head = torch.as_tensor(rng.normal(size=(3, 5, 12)))
    for rows in (2, 400):  # a small table, a large one
        grad = torch.zeros(rows, 12, dtype=torch.float64)
        for launch in kernels.plan_embedding_weight_grad(torch.as_tensor(picks % rows), head, grad):
            launch()
        assert not np.allclose(to_numpy(grad), _oracle_grad(picks % rows, to_numpy(head), rows))


@pytest.mark.parametrize("rows", [3, 400], ids=["small-table", "large-table"])
def test_the_weight_gradient_has_the_same_bits_every_run(rows, rng):
    """float32 sums of many repeated rows in a fixed order (no atomics): two runs, and two
    binds, give the same bits."""
    cols, shape = 40, (2, 150)
    indices = rng.integers(0, min(rows, 5), shape)  # many repeats in either table
    head = torch.from_numpy(rng.normal(size=(*shape, cols)).astype(np.float32) * np.float32(1000))
    grads = []
    for _ in range(2):
        exe = _bound(rows, cols, shape, torch.float32)
        exe.arg_dict["data"][...] = torch.from_numpy(indices)
        for _ in range(2):
            exe.forward(is_train=True)
            exe.backward([head])
            grads.append(exe.grad_dict["emb_weight"].clone())
    assert all(torch.equal(grads[0], g) for g in grads[1:])
    # float32 sums of ~60 terms near 1000 that cancel: the error is relative to the terms' sizes
    magnitude = _oracle_grad(indices, np.abs(head.numpy()), rows)
    np.testing.assert_allclose(grads[0].numpy(), _oracle_grad(indices, head.numpy(), rows), rtol=0,
                               atol=float(1e-6 * magnitude.max()))


def test_invalid_indices_give_nan_rows_and_no_gradient():
    rows, cols = 4, 3
    exe = _bound(rows, cols, (1, 7))
    weight = np.arange(12.0).reshape(rows, cols)
    exe.arg_dict["emb_weight"][...] = torch.from_numpy(weight)
    # MXNet 1.9.1 clips 5 and -1 to rows 3 and 0 and truncates 1.5 to row 1; each is NaN here.
    indices = np.array([[0.0, 3.0, 5.0, -1.0, 1.5, np.nan, 4.0]])
    exe.arg_dict["data"][...] = torch.from_numpy(indices)
    out = exe.forward(is_train=True)[0].numpy()
    np.testing.assert_array_equal(out[0, :2], weight[[0, 3]])
    assert np.isnan(out[0, 2:]).all()
    exe.backward([torch.ones(1, 7, cols, dtype=torch.float64)])
    np.testing.assert_array_equal(exe.grad_dict["emb_weight"].numpy(), [[1] * cols, [0] * cols, [0] * cols,
                                                                         [1] * cols])


@pytest.mark.parametrize("rows", [6, 200], ids=["small-table", "large-table"])
def test_grad_req_add_accumulates_and_leaves_other_rows(rows, rng):
    cols, shape = 5, (2, 3)
    exe = _bound(rows, cols, shape, grad_req="add")
    indices = np.array([[0, 2, 2], [5, 0, 2]])
    exe.arg_dict["data"][...] = torch.from_numpy(indices)
    exe.grad_dict["emb_weight"][...] = 1.0
    head = rng.normal(size=(*shape, cols))
    exe.forward(is_train=True)
    exe.backward([torch.from_numpy(head)])
    np.testing.assert_allclose(exe.grad_dict["emb_weight"].numpy(), 1.0 + _oracle_grad(indices, head, rows),
                               rtol=1e-12)


def test_indices_in_a_dtype_that_cannot_hold_them_are_refused_at_bind():
    net = S.Embedding(S.Variable("data"), input_dim=5000, output_dim=4, name="emb")
    with pytest.raises(BindError, match="float16, which holds whole numbers exactly only up to 2048.*5000 classes"):
        net.simple_bind(ts.cpu(), type_dict={"data": "float16", "emb_weight": "float16"}, data=(2, 3))
    # By default a half-precision table takes float32 indices.
    exe = net.simple_bind(ts.cpu(), type_dict={"emb_weight": "bfloat16"}, data=(2, 3))
    assert exe.arg_dict["data"].dtype == torch.float32 and exe.outputs[0].dtype == torch.bfloat16


def test_shape_type_and_parameters():
    net = S.Embedding(S.Variable("data"), input_dim=10, output_dim=4, dtype="float64", name="emb")
    assert net.list_arguments() == ["data", "emb_weight"]
    assert net.infer_shape(data=(2, 3)) == ([(2, 3), (10, 4)], [(2, 3, 4)], [])
    assert net.infer_type(data="float32")[1] == [torch.float64]
    with pytest.raises(ts.base.ParamError, match="sparse_grad=True is not supported"):
        S.Embedding(S.Variable("data"), input_dim=10, output_dim=4, sparse_grad=True)
    with pytest.raises(ts.base.ShapeError, match=r"weight is \(9, 4\) but \(10, 4\) is expected"):
        net.infer_shape(data=(2, 3), emb_weight=(9, 4))
    # the table's shape is known from the parameters alone; the indices' only from data or output
    assert net.infer_shape_partial() == ([None, (10, 4)], [None], [])


def test_kernel_arguments_are_checked():
    weight = torch.zeros(4, 3)
    with pytest.raises(kernels.KernelArgumentError, match="indices must be contiguous"):
        kernels.plan_embedding(torch.zeros(4, 2).t(), weight)
    with pytest.raises(kernels.KernelArgumentError, match="grad_out must be contiguous of shape"):
        kernels.plan_embedding_weight_grad(torch.zeros(2), torch.zeros(2, 4), weight)


@pytest.mark.parametrize("rows", [5, 200], ids=["small-table", "large-table"])
def test_a_nan_or_inf_gradient_reaches_only_its_own_row(rows, rng):
    cols, shape = 4, (3, 6)
    exe = _bound(rows, cols, shape)
    indices = np.array([[0, 1, 2, 3, 4, 0], [1, 2, 3, 4, 0, 1], [2, 2, 2, 2, 2, 2]])
    exe.arg_dict["data"][...] = torch.from_numpy(indices)
    head = rng.normal(size=(*shape, cols))
    head[0, 1, 2] = np.nan  # a row-1 position
    head[1, 2, 0] = np.inf  # a row-3 position
    exe.forward(is_train=True)
    exe.backward([torch.from_numpy(head)])
    want = _oracle_grad(indices, head, rows)
    got = exe.grad_dict["emb_weight"].numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12)
