"""BilinearResize2D beyond its generic operator cases: against torch's bilinear interpolate
(an implementation independent of ours) in every dtype, both corner conventions; the output
sizes of every mode as MXNet 1.9.1 computes them; a grid point that is the grid value even
beside a NaN; grad_req='add', the same bits every run, and refusals that name the operator
and the values."""

from __future__ import annotations

import math

import pytest
import torch
from tolerances import DTYPES_QUICK_FIRST, assert_close
from tritonsym.ops import bilinear_resize as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


def _resize(**options):
    return S.contrib.BilinearResize2D(S.Variable("data"), **options)


@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)  # float64 and float16 under -m slow
@pytest.mark.parametrize("shape, size", [((2, 3, 6, 5), (13, 11)), ((1, 2, 17, 9), (5, 4)), ((2, 1, 4, 7), (4, 7)),
                                         ((1, 1, 1, 5), (3, 2))], ids=str)
@pytest.mark.parametrize("align_corners", [True, False])
def test_equals_torch(shape, size, align_corners, dtype, rng):
    exe = _resize(height=size[0], width=size[1], align_corners=align_corners).simple_bind(
        ts.cpu(), data=shape, type_dict={"data": dtype})
    x = torch.from_numpy(rng.normal(size=shape)).to(dtype)
    xr = x.double().requires_grad_()
    want = torch.nn.functional.interpolate(xr, size=size, mode="bilinear", align_corners=align_corners)
    head = torch.from_numpy(rng.normal(size=want.shape)).to(dtype)
    want.backward(head.double())
    exe.forward(is_train=True, data=x)
    exe.backward(out_grads=head)
    assert_close(exe.outputs[0], want.detach().numpy(), dtype, "forward")
    assert_close(exe.grad_dict["data"], xr.grad.numpy(), dtype, "gradient", scale=4)


def test_one_output_row_samples_the_first_row_as_mxnet_does(rng):
    """MXNet takes scale 0 for a single output whatever align_corners says (torch, without
    align_corners, samples the middle)."""
    x = torch.from_numpy(rng.normal(size=(1, 2, 5, 4)))
    exe = _resize(height=1, width=4, align_corners=False).simple_bind(ts.cpu(), data=x.shape,
                                                                      type_dict={"data": "float64"})
    exe.forward(data=x)
    assert torch.equal(exe.outputs[0], x[:, :, :1])


@pytest.mark.parametrize("options, shape, size", [
    (dict(height=3, width=4), (5, 7), (3, 4)),
    (dict(scale_height=1.5, scale_width=0.5), (5, 7), (7, 3)),
    (dict(height=3, scale_width=2.0), (5, 7), (3, 14)),  # MXNet 1.9.1 gives width 1 (docs/mxnet.md)
    (dict(scale_height=1.5, scale_width=0.5, mode="odd_scale"), (5, 7), (7, 4)),
    (dict(scale_height=1.5, scale_width=0.5, mode="odd_scale"), (6, 8), (9, 4)),
    (dict(scale_height=2.5, scale_width=1.3, mode="odd_scale"), (5, 7), (11, 8)),
    (dict(mode="to_even_down"), (5, 7), (4, 6)), (dict(mode="to_even_up"), (5, 7), (6, 8)),
    (dict(mode="to_odd_down"), (6, 8), (5, 7)), (dict(mode="to_odd_up"), (6, 8), (7, 9)),
    (dict(mode="to_odd_up"), (5, 7), (5, 7)),
], ids=str)
def test_output_sizes_of_every_mode(options, shape, size):
    assert _resize(**options).infer_shape(data=(1, 2, *shape))[1] == [(1, 2, *size)]


def test_like_takes_the_height_and_width_and_gives_no_gradient(rng):
    net = S.contrib.BilinearResize2D(S.Variable("data"), S.Variable("like"), mode="like")
    assert net.list_arguments() == ["data", "like"]
    exe = net.simple_bind(ts.cpu(), data=(2, 3, 4, 4), like=(5, 1, 8, 6), type_dict={"data": "float64"})
    assert tuple(exe.outputs[0].shape) == (2, 3, 8, 6)
    exe.grad_dict["like"][...] = 7.0
    exe.forward(is_train=True, data=torch.from_numpy(rng.normal(size=(2, 3, 4, 4))))
    exe.backward(out_grads=torch.ones(2, 3, 8, 6, dtype=torch.float64))
    assert (exe.grad_dict["like"] == 0).all()
    assert math.isclose(exe.grad_dict["data"].sum().item(), 2 * 3 * 8 * 6)  # the weights of each output sum to 1


def test_a_grid_point_is_the_grid_value_beside_a_nan():
    """Same size with align_corners: every output is its input, and a NaN stays where it is
    (its neighbours read it with weight 0, so not at all), forward and backward."""
    x = torch.arange(20, dtype=torch.float64).reshape(1, 1, 4, 5)
    x[0, 0, 1, 2] = float("nan")
    exe = _resize(height=4, width=5).simple_bind(ts.cpu(), data=x.shape, type_dict={"data": "float64"})
    exe.forward(is_train=True, data=x)
    head = torch.ones(1, 1, 4, 5, dtype=torch.float64)
    head[0, 0, 2, 3] = float("nan")
    exe.backward(out_grads=head)
    assert torch.equal(exe.outputs[0].isnan(), x.isnan())
    assert torch.equal(exe.grad_dict["data"].isnan(), head.isnan())


def test_grad_req_add_adds(rng):
    exe = _resize(height=7, width=3, align_corners=False).simple_bind(ts.cpu(), data=(2, 2, 5, 4), grad_req="add",
                                                                      type_dict={"data": "float64"})
    exe.grad_dict["data"][...] = 1.0
    x = torch.from_numpy(rng.normal(size=(2, 2, 5, 4))).requires_grad_()
    torch.nn.functional.interpolate(x, size=(7, 3), mode="bilinear", align_corners=False).sum().backward()
    for _ in range(2):
        exe.forward(is_train=True, data=x.detach())
        exe.backward(out_grads=torch.ones(2, 2, 7, 3, dtype=torch.float64))
    assert_close(exe.grad_dict["data"], 1.0 + 2 * x.grad.numpy(), torch.float64, "1 + twice the gradient")


def test_the_gradient_has_the_same_bits_every_run(rng):
    dy = torch.from_numpy(rng.normal(size=(3, 8, 45, 13))).float()
    grads = []
    for _ in range(2):
        dx = torch.empty(3, 8, 9, 20)
        run(kernels.plan_bilinear_resize_backward(dy, dx, align_corners=False))
        grads.append(dx)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("options, shape, words", [
    (dict(height=3, width=3), (2, 3, 4), ["(2, 3, 4)", "(batch, channels"]),
    (dict(height=3, width=3), (1, 2, 3, 4, 5), ["(1, 2, 3, 4, 5)"]),
    (dict(mode="odd_scale", scale_height=2.0), (1, 1, 4, 4), ["odd_scale", "scale_width=None"]),
    (dict(scale_height=0.1, scale_width=1.0), (1, 1, 5, 4), ["0 x 4", "scale_height=0.1"]),
], ids=str)
def test_bad_shapes_are_refused_naming_the_values(options, shape, words):
    with pytest.raises(ShapeError) as error:
        _resize(**options).infer_shape(data=shape)
    assert "BilinearResize2D" in str(error.value) and all(w in str(error.value) for w in words), str(error.value)


def test_parameters_and_kernel_arguments_are_checked():
    with pytest.raises(ParamError, match="mode"):
        _resize(mode="nearest")
    with pytest.raises(ParamError, match="scale_height"):
        _resize(scale_height=-1.0)
    with pytest.raises(ParamError, match="height"):
        _resize(height=0)
    with pytest.raises(KernelArgumentError, match="batch, the channels"):
        kernels.plan_bilinear_resize(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 6, 6))


@pytest.mark.parametrize("length, out_length", [(1, 5), (5, 1), (4, 17), (17, 4), (7, 7), (3, 40), (40, 3)])
@pytest.mark.parametrize("align_corners", [True, False])
def test_the_gather_visits_every_output_that_reads_a_row(length, out_length, align_corners):
    """``cover`` counted from the kernels' integers holds every output reading a row."""
    m, a, d = kernels.source_fraction(length, out_length, align_corners)
    most = kernels.cover(length, out_length, align_corners)
    for row in range(length):
        need = (row - 1) * d - a
        start = (need + m - 1) // max(m, 1) if row >= 1 and need > 0 else 0
        readers = []
        for o in range(out_length):
            num = max(o * m + a, 0)
            first, weight = num // d, num % d
            if first == row or (min(first + 1, length - 1) == row and weight):
                readers.append(o)
        assert all(start <= o < start + most for o in readers), (row, start, most, readers)
