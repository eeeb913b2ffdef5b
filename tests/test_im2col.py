"""im2col and col2im beyond their generic operator cases: against torch's unfold and fold
(an implementation independent of ours) in every dtype, a convolution written as im2col and
a matrix product equal to Convolution, grad_req='add', the same bits every run from
col2im's sums over overlapping blocks, and refusals that name the operator and the values."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import DTYPES_QUICK_FIRST, assert_close
from tritonsym.ops import im2col as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym
GEOMETRY = dict(kernel=(3, 2), stride=(2, 1), dilate=(1, 2), pad=(1, 1))
TORCH_GEOMETRY = dict(kernel_size=(3, 2), stride=(2, 1), dilation=(1, 2), padding=(1, 1))


@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)  # float64 and float16 under -m slow
def test_im2col_and_col2im_equal_torch_unfold_and_fold(dtype, rng):
    shape = (2, 3, 9, 7)
    x = torch.from_numpy(rng.normal(size=shape)).to(dtype)
    xr = x.double().requires_grad_()
    cols = torch.nn.functional.unfold(xr, **TORCH_GEOMETRY)
    head = torch.from_numpy(rng.normal(size=cols.shape)).to(dtype)
    cols.backward(head.double())
    exe = S.im2col(S.Variable("data"), **GEOMETRY).simple_bind(ts.cpu(), data=shape, type_dict={"data": dtype})
    exe.forward(is_train=True, data=x)
    exe.backward(out_grads=head)
    assert_close(exe.outputs[0], cols.detach().numpy(), dtype, "im2col")
    assert_close(exe.grad_dict["data"], xr.grad.numpy(), dtype, "im2col's gradient")

    colsr = head.double().requires_grad_()
    image = torch.nn.functional.fold(colsr, output_size=shape[2:], **TORCH_GEOMETRY)
    image.backward(x.double())
    exe = S.col2im(S.Variable("data"), output_size=shape[2:], **GEOMETRY).simple_bind(
        ts.cpu(), data=tuple(head.shape), type_dict={"data": dtype})
    exe.forward(is_train=True, data=head)
    exe.backward(out_grads=x)
    assert_close(exe.outputs[0], image.detach().numpy(), dtype, "col2im")
    assert_close(exe.grad_dict["data"], colsr.grad.numpy(), dtype, "col2im's gradient")


def test_a_convolution_as_im2col_and_a_product_equals_convolution(rng):
    shape, filters = (2, 3, 8, 6), 4
    data, weight = S.Variable("data"), S.Variable("weight")
    cols = S.im2col(data, **GEOMETRY)  # (2, 18, 4 x 6)
    product = S.batch_dot(S.broadcast_to(S.expand_dims(weight, axis=0), shape=(2, 0, 0)), cols)
    as_matrix = S.reshape(product, shape=(2, filters, 4, 6))
    direct = S.Convolution(data, weight=S.reshape(weight, shape=(filters, 3, 3, 2)), num_filter=filters,
                           no_bias=True, **GEOMETRY)
    net = S.Group([as_matrix, direct])
    exe = net.simple_bind(ts.cpu(), data=shape, weight=(filters, 18),
                          type_dict={"data": "float64", "weight": "float64"})
    exe.forward(is_train=False, data=torch.from_numpy(rng.normal(size=shape)),
                weight=torch.from_numpy(rng.normal(size=(filters, 18))))
    assert_close(exe.outputs[0], exe.outputs[1].numpy(), torch.float64, "im2col then a product")


def test_3d_blocks_reaching_into_the_padding_of_every_axis_equal_the_oracle(rng):
    """torch has no 3-d unfold: the numpy oracle; blocks reach past both ends of every axis
    (a tap at depth D must read the padding's 0, not the next channel's first plane)."""
    shape, geometry = (2, 3, 3, 4, 3), dict(kernel=(2, 3, 2), stride=(1, 1, 2), dilate=(1, 1, 1), pad=(1, 1, 1))
    x = rng.normal(size=shape)
    exe = S.im2col(S.Variable("data"), **geometry).simple_bind(ts.cpu(), data=shape, type_dict={"data": "float64"})
    exe.forward(is_train=True, data=torch.from_numpy(x))
    head = rng.normal(size=tuple(exe.outputs[0].shape))
    exe.backward(out_grads=torch.from_numpy(head))
    assert_close(exe.outputs[0], o.im2col(x, **geometry), torch.float64, "3-d im2col")
    assert_close(exe.grad_dict["data"], o.col2im(head, shape[2:], **geometry), torch.float64, "3-d col2im")


def test_grad_req_add_adds(rng):
    shape = (1, 2, 5, 4)
    exe = S.col2im(S.Variable("data"), output_size=shape[2:], **GEOMETRY).simple_bind(
        ts.cpu(), data=(1, 12, 12), grad_req="add", type_dict={"data": "float64"})
    exe.grad_dict["data"][...] = 1.0
    head = torch.from_numpy(rng.normal(size=shape))
    for _ in range(2):
        exe.forward(is_train=True, data=torch.zeros(1, 12, 12, dtype=torch.float64))
        exe.backward(out_grads=head)
    assert_close(exe.grad_dict["data"], 1.0 + 2 * o.im2col(head.numpy(), **GEOMETRY), torch.float64,
                 "1 + twice the gradient")


def test_col2im_has_the_same_bits_every_run(rng):
    geometry = dict(kernel=(5, 5), stride=(1, 1), dilate=(1, 1), pad=(2, 2))  # 25 blocks over most pixels
    cols = torch.from_numpy(rng.normal(size=(2, 6 * 25, 17 * 13))).float()
    images = []
    for _ in range(2):
        image = torch.empty(2, 6, 17, 13)
        run(kernels.plan_col2im(cols, image, **geometry))
        images.append(image)
    assert torch.equal(images[0], images[1])


def test_nan_stays_where_blocks_read_it():
    x = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    x[0, 0, 1, 2] = float("nan")
    cols = torch.empty(1, 4, 9, dtype=torch.float64)
    run(kernels.plan_im2col(x, cols, kernel=(2, 2), stride=(1, 1), dilate=(1, 1), pad=(0, 0)))
    want = o.im2col(x.numpy(), (2, 2))
    assert np.array_equal(np.isnan(cols.numpy()), np.isnan(want)) and np.isnan(want).sum() == 4


def test_refusals_name_the_operator_and_the_values():
    with pytest.raises(ShapeError) as error:
        S.im2col(S.Variable("data"), kernel=(3, 3)).infer_shape(data=(2, 3, 8))
    assert all(w in str(error.value) for w in ("im2col", "(2, 3, 8)", "kernel=(3, 3)")), error.value
    with pytest.raises(ShapeError, match=r"does not fit .* \(2, 2\)"):
        S.im2col(S.Variable("data"), kernel=(3, 3)).infer_shape(data=(1, 1, 2, 2))
    with pytest.raises(ShapeError, match=r"stride=\(1, 1, 1\)"):
        S.im2col(S.Variable("data"), kernel=(3, 3), stride=(1, 1, 1)).infer_shape(data=(1, 1, 5, 5))
    with pytest.raises(ShapeError, match=r"col2im.*\(2, 7, 4\).*channels x 4 kernel taps"):
        S.col2im(S.Variable("data"), output_size=(3, 3), kernel=(2, 2)).infer_shape(data=(2, 7, 4))
    with pytest.raises(ShapeError, match="data"):  # a 4 x 4 image has 3 x 3 blocks of a 2 x 2 kernel, not 4
        S.col2im(S.Variable("data"), output_size=(4, 4), kernel=(2, 2)).infer_shape(data=(2, 8, 4))
    with pytest.raises(ShapeError, match=r"output_size=\(3,\)"):
        S.col2im(S.Variable("data"), output_size=(3,), kernel=(2, 2)).infer_shape(data=(2, 8, 4))
    with pytest.raises(ParamError, match="kernel"):
        S.im2col(S.Variable("data"))
    with pytest.raises(KernelArgumentError, match=r"im2col: cols \(1, 4, 8\)"):
        kernels.plan_im2col(torch.zeros(1, 1, 3, 3), torch.zeros(1, 4, 8), kernel=(2, 2), stride=(1, 1),
                            dilate=(1, 1), pad=(0, 0))
    with pytest.raises(KernelArgumentError, match="contiguous"):
        kernels.plan_col2im(torch.zeros(1, 4, 4), torch.zeros(1, 1, 3, 3).transpose(2, 3), kernel=(2, 2),
                            stride=(1, 1), dilate=(1, 1), pad=(0, 0))

