"""DeformableConvolution (DCN v1) and ModulatedDeformableConvolution (DCN v2) beyond their
generic operator cases (numpy oracle in every dtype, float64 gradient checks, NaN) and
MXNet's recorded answers: zero offsets give Convolution back, the two versions' sampling
at the image's borders computed by hand, the column gradient in chunks and the data
gradient in parts giving the same answer, and refusals that name the operator and the
values."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import assert_close
from tritonsym.ops import bilinear_sampler
from tritonsym.ops import deformable_convolution as kernels

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


def _dcn(modulated: bool, **params):
    extra = [S.Variable("mask")] if modulated else []
    op = S.contrib.ModulatedDeformableConvolution if modulated else S.contrib.DeformableConvolution
    return op(S.Variable("data"), S.Variable("offset"), *extra, name="dcn", **params)


def _run(net, values: dict, dtype=torch.float64, head=None):
    exe = net.simple_bind(ts.cpu(), grad_req="write", type_dict={k: dtype for k in values},
                          **{k: tuple(np.shape(v)) for k, v in values.items()})
    exe.forward(is_train=True, **{k: torch.as_tensor(v).to(dtype) for k, v in values.items()})
    if head is not None:
        exe.backward(out_grads=[torch.as_tensor(head).to(dtype)])
    return exe


@pytest.mark.parametrize("modulated", [False, True], ids=["v1", "v2"])
def test_zero_offsets_give_the_convolution(modulated, rng):
    params = dict(kernel=(3, 2), num_filter=4, stride=(2, 1), dilate=(1, 2), pad=(1, 1), num_group=2,
                  num_deformable_group=2)
    data = rng.normal(size=(2, 4, 6, 5))
    weight, bias = rng.normal(size=(4, 2, 3, 2)), rng.normal(size=4)
    values = {"data": data, "offset": np.zeros((2, 24, 3, 5)), "dcn_weight": weight, "dcn_bias": bias}
    if modulated:
        values["mask"] = np.ones((2, 12, 3, 5))
    exe = _run(_dcn(modulated, **params), values, torch.float32)
    want = o.convolution(data, weight, bias, stride=(2, 1), dilate=(1, 2), pad=(1, 1), groups=2)
    assert_close(exe.outputs[0], want, torch.float32, "zero offsets")


def _border_values():
    """A 3 x 4 image through a 1 x 1 filter of weight 1, each tap moved by hand."""
    image = np.arange(1.0, 13.0).reshape(1, 1, 3, 4)
    offset = np.zeros((1, 2, 3, 4))
    offset[0, 0, 0, 0] = -0.5  # above the first row
    offset[0, 0, 2, 1] = 0.5  # inside the last row, half way to the row past it
    offset[0, 1, 1, 3] = 0.25  # inside the last column
    offset[0, :, 1, 1] = (0.25, 0.5)  # inside the image
    return image, offset


@pytest.mark.parametrize("modulated", [False, True], ids=["v1", "v2"])
def test_the_borders_sample_as_mxnet_does(modulated):
    image, offset = _border_values()
    x = image[0, 0]
    values = {"data": image, "offset": offset, "dcn_weight": np.ones((1, 1, 1, 1))}
    if modulated:
        values["mask"] = np.ones((1, 1, 3, 4))
    exe = _run(_dcn(modulated, kernel=(1, 1), num_filter=1, no_bias=True), values, head=np.ones((1, 1, 3, 4)))
    want = x.copy()
    interior = 0.75 * (0.5 * x[1, 1] + 0.5 * x[1, 2]) + 0.25 * (0.5 * x[2, 1] + 0.5 * x[2, 2])
    if modulated:  # v2: a zero-padded image, read from -1 to H
        want[0, 0], want[2, 1], want[1, 3], want[1, 1] = 0.5 * x[0, 0], 0.5 * x[2, 1], 0.75 * x[1, 3], interior
    else:  # v1: nothing above row 0; the last row and column read without their fraction
        want[0, 0], want[2, 1], want[1, 3], want[1, 1] = 0.0, x[2, 1], x[1, 3], interior
    np.testing.assert_allclose(exe.outputs[0].numpy()[0, 0], want, rtol=1e-12)
    # the last row's derivative along y: 0 in v1 (its fraction is dropped), v2's slope down to 0
    slope = exe.grad_dict["offset"].numpy()[0, 0, 2, 1]
    assert slope == (-x[2, 1] if modulated else 0.0)
    # the first row's point outside (v1): no gradient for the pixel it would have read
    assert exe.grad_dict["data"].numpy()[0, 0, 0, 0] == (0.5 if modulated else 0.0)


@pytest.mark.slow  # test_nan_propagation.py plants NaN in every input of the generic cases too
def test_a_nan_offset_makes_its_position_nan(rng):
    values = {"data": rng.normal(size=(1, 2, 4, 5)), "offset": rng.uniform(-1, 1, size=(1, 18, 4, 5)),
              "dcn_weight": rng.normal(size=(3, 2, 3, 3)), "dcn_bias": rng.normal(size=3)}
    values["offset"][0, 7, 2, 3] = np.nan
    exe = _run(_dcn(False, kernel=(3, 3), num_filter=3, pad=(1, 1)), values, torch.float32,
               head=np.ones((1, 3, 4, 5)))
    nan = exe.outputs[0].isnan()
    assert nan[0, :, 2, 3].all() and nan.sum() == 3  # MXNet's reads 0 there
    grad = exe.grad_dict["offset"].isnan()
    assert grad[0, 6:8, 2, 3].all() and grad.sum() == 2  # that tap's (y, x) at that position


def _standalone(modulated, rng, dtype=torch.float64, **limits):
    """Every gradient of a DCN layer of 3 images through the kernels, with the column
    scratch's ``limits`` (workspace_bytes, max_images)."""
    x, w = rng.normal(size=(3, 4, 5, 6)), rng.normal(size=(6, 2, 2, 3))
    offset = rng.integers(-2, 2, size=(3, 24, 3, 3)) + rng.uniform(0.15, 0.85, size=(3, 24, 3, 3))
    mask = rng.uniform(0.1, 1.0, size=(3, 12, 3, 3)) if modulated else None
    head = rng.normal(size=(3, 6, 3, 3))
    geometry = dict(kernel=(2, 3), stride=(1, 2), dilate=(2, 1), pad=(0, 1), groups=2, deformable_groups=2,
                    zero_pad=modulated)
    t = [None if a is None else torch.tensor(a, dtype=dtype) for a in (head, x, offset, mask, w)]
    grads = [torch.zeros_like(a) if a is not None else None for a in t[1:]] + [torch.zeros(6, dtype=dtype)]
    for launch in kernels.plan_deformable_convolution_backward(*t, *grads, **geometry, **limits):
        launch()
    want = o.deformable_convolution_grads(head, x, offset, mask, w, **geometry)
    return grads, want


@pytest.mark.parametrize("modulated", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["v1", "v2"])
def test_the_column_gradient_in_chunks_gives_the_same_bits(modulated):
    whole, want = _standalone(modulated, np.random.default_rng(5))
    chunked, _ = _standalone(modulated, np.random.default_rng(5), workspace_bytes=1, max_images=2)
    for got, expected, again in zip(whole, want, chunked):
        if expected is not None:
            np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)
            assert torch.equal(got, again)


@pytest.mark.slow  # the data gradient walked in several parts
def test_the_data_gradient_summed_in_parts(monkeypatch):
    monkeypatch.setattr(bilinear_sampler, "SEGMENT", 4)  # 6 taps at 9 positions, 4 a part: 8 parts at most
    assert kernels.data_grad_parts(9 * 6) == bilinear_sampler.MAX_PARTS
    grads, want = _standalone(True, np.random.default_rng(6), dtype=torch.float32)
    assert_close(grads[0], want[0], torch.float32, "data gradient in parts", scale=4.0)


def test_a_bind_without_the_data_gradient(rng):
    """The data a fixed input (grad_req 'null'): the offsets' and the weight's gradients
    alone, in chunks of one image, as the bind planned them."""
    net = _dcn(False, kernel=(2, 2), num_filter=3, pad=(1, 0), workspace=1)
    values = {"data": rng.normal(size=(2, 2, 3, 4)), "offset": rng.uniform(-2, 2, size=(2, 8, 4, 3)),
              "dcn_weight": rng.normal(size=(3, 2, 2, 2)), "dcn_bias": rng.normal(size=3)}
    head = rng.normal(size=(2, 3, 4, 3))
    exe = net.simple_bind(ts.cpu(), grad_req={"data": "null", "offset": "write", "dcn_weight": "write",
                                              "dcn_bias": "write"}, type_dict={k: torch.float64 for k in values},
                          **{k: v.shape for k, v in values.items()})
    exe.forward(is_train=True, **{k: torch.tensor(v) for k, v in values.items()})
    exe.backward(out_grads=[torch.tensor(head)])
    _, doffset, _, dw, db = o.deformable_convolution_grads(head, values["data"], values["offset"], None,
                                                           values["dcn_weight"], (2, 2), pad=(1, 0))
    for name, want in (("offset", doffset), ("dcn_weight", dw), ("dcn_bias", db)):
        np.testing.assert_allclose(exe.grad_dict[name].numpy(), want, rtol=1e-10, atol=1e-10, err_msg=name)
    assert exe.grad_dict.get("data") is None


@pytest.mark.slow  # two binds of three images through the interpreter
def test_the_modulated_version_takes_im2col_step(rng):
    net = _dcn(True, kernel=(2, 2), num_filter=2, im2col_step=1)
    values = {"data": rng.normal(size=(3, 2, 4, 4)), "offset": rng.uniform(-2, 2, size=(3, 8, 3, 3)),
              "mask": rng.uniform(size=(3, 4, 3, 3)), "dcn_weight": rng.normal(size=(2, 2, 2, 2)),
              "dcn_bias": rng.normal(size=2)}
    head = rng.normal(size=(3, 2, 3, 3))
    one, all_ = _run(net, values, head=head), _run(_dcn(True, kernel=(2, 2), num_filter=2), values, head=head)
    for name in values:
        assert torch.equal(one.grad_dict[name], all_.grad_dict[name]), name


def test_the_arguments_and_shapes_are_mxnets():
    net = _dcn(False, kernel=(3, 3), num_filter=8, pad=(1, 1), num_group=2, num_deformable_group=2)
    assert net.list_arguments() == ["data", "offset", "dcn_weight", "dcn_bias"]
    args, outs, _ = net.infer_shape(data=(2, 4, 6, 7))
    assert args == [(2, 4, 6, 7), (2, 36, 6, 7), (8, 2, 3, 3), (8,)] and outs == [(2, 8, 6, 7)]
    net = _dcn(True, kernel=(3, 1), num_filter=4, num_deformable_group=4, no_bias=True)
    assert net.list_arguments() == ["data", "offset", "mask", "dcn_weight"]
    assert net.infer_shape(data=(3, 8, 5, 4))[0][1:3] == [(3, 24, 3, 4), (3, 12, 3, 4)]


@pytest.mark.parametrize("build, shapes, message", [
    (lambda: _dcn(False, kernel=(3,), num_filter=2), {}, "kernel=(3,) must be (height, width)"),
    (lambda: _dcn(False, kernel=(3, 3), num_filter=3, num_group=2), {}, "num_filter=3 is not a multiple of "
                                                                       "num_group=2"),
    (lambda: _dcn(False, kernel=(3, 3), num_filter=2, layout="NCDHW"), {"data": (1, 2, 5, 5)}, "layout='NCDHW'"),
    (lambda: _dcn(False, kernel=(3, 3), num_filter=2, num_deformable_group=2), {"data": (1, 3, 5, 5)},
     "3 channels, not a multiple of num_deformable_group=2"),
    (lambda: _dcn(False, kernel=(3, 3), num_filter=2), {"data": (1, 2, 5, 5), "offset": (1, 9, 3, 3)}, "offset"),
    (lambda: _dcn(True, kernel=(3, 3), num_filter=2), {"data": (1, 2, 5, 5), "mask": (1, 18, 3, 3)}, "mask"),
    (lambda: _dcn(False, kernel=(3, 3), num_filter=2), {"data": (1, 2, 2, 5)}, "does not fit"),
])
def test_bad_parameters_and_shapes_are_refused_by_name(build, shapes, message):
    with pytest.raises((ParamError, ShapeError), match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
        build().infer_shape(**shapes)
    assert "DeformableConvolution" in str(raised.value) or "dcn" in str(raised.value)


def test_the_kernels_refuse_a_gradient_they_cannot_write_by_name():
    x, w = torch.zeros(1, 2, 4, 4), torch.zeros(3, 2, 2, 2)
    offset, dy = torch.zeros(1, 8, 3, 3), torch.zeros(1, 3, 3, 3)
    strided = torch.zeros(1, 2, 4, 8)[..., ::2]
    with pytest.raises(kernels.KernelArgumentError, match=r"deformable_convolution_backward: grad_x must be "
                                                          r"contiguous"):
        kernels.plan_deformable_convolution_backward(dy, x, offset, None, w, strided, None, None, None, None,
                                                     kernel=(2, 2), stride=(1, 1), dilate=(1, 1), pad=(0, 0))
    with pytest.raises(kernels.KernelArgumentError, match=r"offset must be \(1, 8, 3, 3\)"):
        kernels.plan_deformable_convolution(x, offset[:, :6], None, w, None, None, kernel=(2, 2), stride=(1, 1),
                                            dilate=(1, 1), pad=(0, 0))


@pytest.mark.slow  # a few SGD steps through the interpreter
def test_offsets_learned_from_the_data_train(rng):
    """DCN as the papers use it: the offsets a zero-initialized convolution of the data."""
    data = S.Variable("data")
    offset = S.Convolution(data, kernel=(2, 2), num_filter=8, name="offset_conv")
    net = S.contrib.DeformableConvolution(data, offset, kernel=(2, 2), num_filter=4, name="dcn")
    net = S.SoftmaxOutput(S.FullyConnected(S.Activation(net, act_type="relu"), num_hidden=3, name="fc"),
                          name="softmax")
    x = rng.normal(size=(6, 1, 4, 4))
    label = np.arange(6) % 3
    x[label == 1, 0, :2] += 1.5  # each class brightens another part of the image
    x[label == 2, 0, 2:] += 1.5
    module = ts.mod.Module(net, context=ts.cpu())
    module.bind(data_shapes=[("data", x.shape)], label_shapes=[("softmax_label", label.shape)])
    module.init_params(ts.init.Xavier())
    offset_weight = module.get_params()[0]["offset_conv_weight"]
    offset_weight[...] = 0.0
    module.set_params({**module.get_params()[0], "offset_conv_weight": offset_weight}, module.get_params()[1])
    module.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.2})
    batch = ts.io.DataBatch([torch.tensor(x, dtype=torch.float32)], [torch.tensor(label, dtype=torch.float32)])
    losses = []
    for _ in range(8):
        module.forward(batch, is_train=True)
        p = module.get_outputs()[0].numpy()
        losses.append(-np.log(p[np.arange(6), label]).mean())
        module.backward()
        module.update()
    assert losses[-1] < 0.7 * losses[0], losses
    assert np.abs(module.get_params()[0]["offset_conv_weight"].numpy()).max() > 0, "the offsets did not learn"
