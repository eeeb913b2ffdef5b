"""Convolution beyond its generic operator cases: every geometry against torch's
convolutions (an implementation independent of ours), gradients added under grad_req='add',
NaN where a window reads one, refusals that name the operator and the values, JSON as MXNet
writes it, and a small convolutional network learning the digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close
from tritonsym.ops import convolution as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym
TORCH_CONV = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d, 3: torch.nn.functional.conv3d}

GEOMETRIES = [  # data shape, kernel, filters, stride, dilate, pad, groups
    ((2, 3, 11), (3,), 4, (1,), (1,), (0,), 1),
    ((2, 4, 9), (3,), 6, (2,), (2,), (1,), 2),
    ((3, 1, 8, 8), (3, 3), 5, (1, 1), (1, 1), (1, 1), 1),
    ((2, 3, 7, 9), (3, 2), 4, (2, 1), (1, 2), (1, 0), 1),
    ((1, 6, 8, 7), (3, 3), 4, (3, 2), (2, 1), (2, 1), 2),
    ((2, 4, 5, 5), (1, 1), 4, (1, 1), (1, 1), (0, 0), 4),  # depthwise, pointwise
    ((2, 2, 5, 6, 4), (2, 3, 2), 3, (1, 2, 1), (2, 1, 1), (1, 0, 1), 1),
]


def _bind(shape, kernel, filters, stride, dilate, pad, groups, dtype=torch.float64, grad_req="write", no_bias=False):
    net = S.Convolution(S.Variable("data"), kernel=kernel, num_filter=filters, stride=stride, dilate=dilate, pad=pad,
                        num_group=groups, no_bias=no_bias, name="conv")
    return net.simple_bind(ts.cpu(), data=shape, grad_req=grad_req, type_dict={"data": dtype})


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: f"{g[0]}-k{g[1]}-s{g[3]}-d{g[4]}-p{g[5]}-g{g[6]}")
def test_every_geometry_equals_torch(geometry, rng):
    shape, kernel, filters, stride, dilate, pad, groups = geometry
    exe = _bind(*geometry)
    x, w, b = (torch.from_numpy(rng.normal(size=exe.arg_dict[n].shape)) for n in ("data", "conv_weight", "conv_bias"))
    xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
    want = TORCH_CONV[len(kernel)](xr, wr, br, stride=stride, padding=pad, dilation=dilate, groups=groups)
    head = torch.from_numpy(rng.normal(size=want.shape))
    want.backward(head)
    exe.forward(is_train=True, data=x, conv_weight=w, conv_bias=b)
    exe.backward(out_grads=head)
    assert_close(exe.outputs[0], want.detach().numpy(), torch.float64, "forward")
    for name, t in (("data", xr), ("conv_weight", wr), ("conv_bias", br)):
        assert_close(exe.grad_dict[name], t.grad.numpy(), torch.float64, f"gradient of {name}")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_grad_req_add_adds_every_gradient(dtype, rng):
    geometry = GEOMETRIES[3]
    exe = _bind(*geometry, dtype=dtype, grad_req="add")
    for name, array in exe.arg_dict.items():
        array[...] = torch.from_numpy(rng.normal(size=array.shape))
    exe.forward(is_train=True)
    exe.backward(out_grads=torch.ones(exe.outputs[0].shape, dtype=dtype))
    once = {n: g.clone() for n, g in exe.grad_dict.items()}
    exe.forward(is_train=True)
    exe.backward(out_grads=torch.ones(exe.outputs[0].shape, dtype=dtype))
    for name, grad in exe.grad_dict.items():
        assert_close(grad, (2 * once[name].double()).numpy(), dtype, f"twice the gradient of {name}")


def test_a_nan_reaches_exactly_the_windows_that_read_it():
    x = torch.zeros(1, 1, 6, 6, dtype=torch.float64)
    x[0, 0, 2, 3] = float("nan")
    y = kernels.convolution(x, torch.ones(1, 1, 3, 3, dtype=torch.float64), stride=(1, 1), pad=(1, 1))
    nan_at = np.argwhere(np.isnan(y[0, 0].numpy())).tolist()
    assert nan_at == [[r, c] for r in (1, 2, 3) for c in (2, 3, 4)]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_weight_reaches_only_the_input_gradients_its_tap_joins(bad, rng):
    """Stride 2 skips half of the (position, tap) pairs: the product must not give them the
    0 x NaN (or 0 x inf) of a pair no output position joins."""
    x = torch.from_numpy(rng.normal(size=(1, 1, 9)))
    w = torch.from_numpy(rng.normal(size=(1, 1, 3)))
    w[0, 0, 1] = bad
    dx = torch.empty_like(x)
    run(kernels.plan_convolution_backward(torch.ones(1, 1, 4, dtype=torch.float64), x, w, dx, None, None,
                                          stride=(2,), dilate=(1,), pad=(0,)))
    non_finite = (~torch.isfinite(dx[0, 0])).nonzero().ravel().tolist()
    assert non_finite == [1, 3, 5, 7]  # x[2o + 1] meets tap 1 of output o
    assert torch.isfinite(dx[0, 0, ::2]).all()


def test_the_weight_gradient_has_the_same_bits_every_run(rng):
    x = torch.from_numpy(rng.normal(size=(4, 3, 9, 9))).float()
    w = torch.from_numpy(rng.normal(size=(5, 3, 3, 3))).float()
    dy = torch.from_numpy(rng.normal(size=(4, 5, 9, 9))).float()
    grads = []
    for _ in range(2):
        dw = torch.empty_like(w)
        run(kernels.plan_convolution_backward(dy, x, w, None, dw, None, stride=(1, 1), dilate=(1, 1), pad=(1, 1)))
        grads.append(dw)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("params, shape, words", [
    (dict(kernel=(3, 3), num_filter=4), (2, 3, 2, 8), ["does not fit", "(2, 8)"]),
    (dict(kernel=(3, 3), num_filter=4, num_group=2), (2, 3, 8, 8), ["3 channels", "num_group=2"]),
    (dict(kernel=(3, 3), num_filter=3, num_group=2), (2, 4, 8, 8), ["num_filter=3", "num_group=2"]),
    (dict(kernel=(3, 3), num_filter=4, stride=(2,)), (2, 3, 8, 8), ["stride=(2,)", "kernel=(3, 3)"]),
    (dict(kernel=(3, 3), num_filter=4), (2, 3, 8), ["(2, 3, 8)", "kernel=(3, 3)"]),
    (dict(kernel=(3, 3), num_filter=4, layout="NHWC"), (2, 8, 8, 3), ["NHWC", "NCHW"]),
    (dict(kernel=(1, 2, 3, 4), num_filter=4), (2, 3, 8, 8, 8, 8), ["1 to 3"]),
])
def test_bad_geometry_is_refused_naming_the_values(params, shape, words):
    net = S.Convolution(S.Variable("data"), name="conv", **params)
    with pytest.raises(ShapeError) as error:
        net.infer_shape(data=shape)
    assert "Convolution" in str(error.value) and all(w in str(error.value) for w in words), str(error.value)


def test_parameters_are_checked_when_the_symbol_is_made():
    with pytest.raises(ParamError, match="num_filter=0"):
        S.Convolution(S.Variable("data"), kernel=(3, 3), num_filter=0)
    with pytest.raises(ParamError, match="cudnn_tune='best'"):
        S.Convolution(S.Variable("data"), kernel=(3, 3), num_filter=2, cudnn_tune="best")
    with pytest.raises(KernelArgumentError, match="channels"):
        kernels.convolution(torch.zeros(1, 3, 5, 5), torch.zeros(2, 2, 3, 3))


def test_json_holds_the_parameters_as_mxnet_writes_them():
    net = S.Convolution(S.Variable("data"), kernel=(3, 3), num_filter=8, stride=(2, 2), pad=(1, 1), no_bias=True,
                        cudnn_tune="fastest", workspace=512, name="c")
    node = next(n for n in json.loads(net.tojson())["nodes"] if n["op"] == "Convolution")
    assert node["params"] == {"kernel": "(3, 3)", "num_filter": "8", "stride": "(2, 2)", "pad": "(1, 1)",
                             "no_bias": "True", "cudnn_tune": "fastest", "workspace": "512"}
    again = S.load_json(net.tojson())
    assert again.list_arguments() == ["data", "c_weight"]
    assert again.infer_shape(data=(2, 3, 9, 9))[1] == [(2, 8, 5, 5)]


@pytest.mark.slow  # 30 s: the example trains in the interpreter
def test_the_convolutional_example_learns_the_digits():
    """examples/train_digits_cnn.py: Convolution, relu, max Pooling and FullyConnected under
    Module.fit reach 90% on the validation digits; max pooling keeps one int32 per output."""
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "train_digits_cnn.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.split("validation accuracy ")[1].split()[0])
    assert accuracy > 0.9, result.stdout
    assert "pool1_argmax                   saved     int32    (128, 8, 4, 4)" in result.stdout
