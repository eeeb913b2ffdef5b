"""Deconvolution beyond its generic operator cases: every geometry against torch's transposed
convolutions (an implementation independent of ours), MXNet's target_shape rule, gradients
added under grad_req='add', NaN where the math puts it, refusals that name the operator and
the values, JSON as MXNet writes it, and an autoencoder whose decoder learns."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close
from tritonsym.ops import deconvolution as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym
TORCH_DECONV = {1: torch.nn.functional.conv_transpose1d, 2: torch.nn.functional.conv_transpose2d,
                3: torch.nn.functional.conv_transpose3d}

GEOMETRIES = [  # data shape, kernel, filters, stride, dilate, pad, adj, groups
    ((2, 3, 7), (3,), 4, (1,), (1,), (0,), (0,), 1),
    ((2, 4, 6), (4,), 6, (3,), (2,), (2,), (2,), 2),
    ((3, 2, 4, 5), (4, 4), 3, (2, 2), (1, 1), (1, 1), (0, 0), 1),  # a decoder's 2x upsampling
    ((2, 3, 5, 4), (3, 2), 4, (2, 1), (1, 2), (1, 0), (1, 0), 1),
    ((1, 6, 3, 4), (3, 3), 4, (3, 2), (2, 1), (3, 2), (2, 1), 2),  # the padding crops more than a tap
    ((2, 4, 5, 5), (1, 1), 4, (1, 1), (1, 1), (0, 0), (0, 0), 4),  # depthwise, pointwise
    ((2, 2, 3, 4, 2), (2, 3, 2), 3, (2, 1, 2), (1, 2, 1), (0, 1, 1), (1, 0, 0), 1),
]


def _bind(shape, kernel, filters, stride, dilate, pad, adj, groups, dtype=torch.float64, grad_req="write"):
    net = S.Deconvolution(S.Variable("data"), kernel=kernel, num_filter=filters, stride=stride, dilate=dilate,
                          pad=pad, adj=adj, num_group=groups, no_bias=False, name="up")
    return net.simple_bind(ts.cpu(), data=shape, grad_req=grad_req, type_dict={"data": dtype})


@pytest.mark.parametrize("geometry", GEOMETRIES,
                         ids=lambda g: f"{g[0]}-k{g[1]}-s{g[3]}-d{g[4]}-p{g[5]}-a{g[6]}-g{g[7]}")
def test_every_geometry_equals_torch(geometry, rng):
    shape, kernel, filters, stride, dilate, pad, adj, groups = geometry
    exe = _bind(*geometry)
    x, w, b = (torch.from_numpy(rng.normal(size=exe.arg_dict[n].shape)) for n in ("data", "up_weight", "up_bias"))
    xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
    want = TORCH_DECONV[len(kernel)](xr, wr, br, stride=stride, padding=pad, output_padding=adj, groups=groups,
                                     dilation=dilate)
    head = torch.from_numpy(rng.normal(size=want.shape))
    want.backward(head)
    exe.forward(is_train=True, data=x, up_weight=w, up_bias=b)
    exe.backward(out_grads=head)
    assert_close(exe.outputs[0], want.detach().numpy(), torch.float64, "forward")
    for name, t in (("data", xr), ("up_weight", wr), ("up_bias", br)):
        assert_close(exe.grad_dict[name], t.grad.numpy(), torch.float64, f"gradient of {name}")


@pytest.mark.parametrize("lengths, kernel, stride, target, pad, adj", [
    ((5, 6), (3, 3), (2, 2), (10, 12), (1, 1), (1, 1)),  # MXNet 1.9.1's infer_shape, recorded by hand
    ((5, 6), (3, 3), (2, 2), (9, 11), (1, 1), (0, 0)),
    ((5, 6), (4, 4), (2, 2), (10, 12), (1, 1), (0, 0)),
    ((7,), (3,), (3,), (20,), (1,), (1,)),
])
def test_target_shape_sets_pad_and_adj_as_mxnet_does(lengths, kernel, stride, target, pad, adj, rng):
    net = S.Deconvolution(S.Variable("data"), kernel=kernel, num_filter=2, stride=stride, target_shape=target,
                          pad=(5,) * len(kernel), name="up")  # a given pad is ignored
    exe = net.simple_bind(ts.cpu(), data=(1, 3, *lengths), type_dict={"data": torch.float64})
    assert exe.outputs[0].shape == (1, 2, *target)
    x, w = (torch.from_numpy(rng.normal(size=exe.arg_dict[n].shape)) for n in ("data", "up_weight"))
    exe.forward(data=x, up_weight=w)
    want = TORCH_DECONV[len(kernel)](x, w, stride=stride, padding=pad, output_padding=adj)
    assert_close(exe.outputs[0], want.numpy(), torch.float64, "forward")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_grad_req_add_adds_every_gradient(dtype, rng):
    exe = _bind(*GEOMETRIES[3], dtype=dtype, grad_req="add")
    for name, array in exe.arg_dict.items():
        array[...] = torch.from_numpy(rng.normal(size=array.shape))
    exe.forward(is_train=True)
    exe.backward(out_grads=torch.ones(exe.outputs[0].shape, dtype=dtype))
    once = {n: g.clone() for n, g in exe.grad_dict.items()}
    exe.forward(is_train=True)
    exe.backward(out_grads=torch.ones(exe.outputs[0].shape, dtype=dtype))
    for name, grad in exe.grad_dict.items():
        assert_close(grad, (2 * once[name].double()).numpy(), dtype, f"twice the gradient of {name}")


def test_a_nan_reaches_exactly_the_outputs_it_is_scattered_to():
    x = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    x[0, 0, 1, 2] = float("nan")
    y = kernels.deconvolution(x, torch.ones(1, 1, 3, 3, dtype=torch.float64), stride=(2, 2), pad=(1, 1))
    nan_at = np.argwhere(np.isnan(y[0, 0].numpy())).tolist()
    assert nan_at == [[r, c] for r in (1, 2, 3) for c in (3, 4, 5)]  # 2*1 + {0,1,2} - 1, 2*2 + {0,1,2} - 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_weight_reaches_only_the_outputs_its_tap_lands_on(bad, rng):
    """Stride 2: tap 1 lands on the odd outputs only; the even ones must not get the
    0 x NaN (or 0 x inf) of a pair no input joins."""
    x = torch.from_numpy(rng.normal(size=(1, 1, 4)))
    w = torch.from_numpy(rng.normal(size=(1, 1, 3)))
    w[0, 0, 1] = bad
    y = kernels.deconvolution(x, w, stride=(2,))
    assert (~torch.isfinite(y[0, 0])).nonzero().ravel().tolist() == [1, 3, 5, 7]


def test_the_weight_gradient_has_the_same_bits_every_run(rng):
    x = torch.from_numpy(rng.normal(size=(4, 3, 7, 7))).float()
    w = torch.from_numpy(rng.normal(size=(3, 5, 4, 4))).float()
    dy = torch.from_numpy(rng.normal(size=(4, 5, 14, 14))).float()
    geometry = dict(stride=(2, 2), dilate=(1, 1), pad=(1, 1), adj=(0, 0))
    grads = []
    for _ in range(2):
        dw = torch.empty_like(w)
        run(kernels.plan_deconvolution_backward(dy, x, w, None, dw, None, **geometry))
        grads.append(dw)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("params, shape, words", [
    (dict(kernel=(3, 3), num_filter=4, stride=(2, 2), adj=(2, 2)), (2, 3, 5, 6), ["adj=(2, 2)", "stride=(2, 2)"]),
    (dict(kernel=(3, 3), num_filter=4, adj=(1, 1)), (2, 3, 5, 6), ["adj=(1, 1)", "stride=(1, 1)"]),
    (dict(kernel=(3, 3), num_filter=4, target_shape=(6, 8)), (2, 3, 5, 6), ["computed from target_shape"]),
    (dict(kernel=(3, 3), num_filter=4, stride=(2, 2), target_shape=(12, 14)), (2, 3, 5, 6),
     ["target_shape=(12, 14)", "(11, 13)"]),
    (dict(kernel=(3, 3), num_filter=4, target_shape=(7,)), (2, 3, 5, 6), ["target_shape=(7,)", "kernel=(3, 3)"]),
    (dict(kernel=(3, 3), num_filter=4, pad=(4, 4)), (2, 3, 5, 6), ["pad=(4, 4)", "crops away"]),
    (dict(kernel=(3, 3), num_filter=4, num_group=2), (2, 3, 8, 8), ["3 channels", "num_group=2"]),
    (dict(kernel=(3, 3), num_filter=3, num_group=2), (2, 4, 8, 8), ["num_filter=3", "num_group=2"]),
    (dict(kernel=(3, 3), num_filter=4, layout="NHWC"), (2, 8, 8, 3), ["NHWC", "NCHW"]),
])
def test_bad_geometry_is_refused_naming_the_values(params, shape, words):
    net = S.Deconvolution(S.Variable("data"), name="up", **params)
    with pytest.raises(ShapeError) as error:
        net.infer_shape(data=shape)
    assert "Deconvolution" in str(error.value) and all(w in str(error.value) for w in words), str(error.value)


def test_parameters_and_kernel_arguments_are_checked():
    with pytest.raises(ParamError, match="num_filter=0"):
        S.Deconvolution(S.Variable("data"), kernel=(3, 3), num_filter=0)
    with pytest.raises(KernelArgumentError, match="adj=\\(2,\\) must be smaller than stride=\\(2,\\)"):
        kernels.deconvolution(torch.zeros(1, 2, 5), torch.zeros(2, 2, 3), stride=(2,), adj=(2,))
    with pytest.raises(KernelArgumentError, match="weight.shape\\[0\\] must be the channels"):
        kernels.deconvolution(torch.zeros(1, 3, 5, 5), torch.zeros(2, 2, 3, 3))


def test_json_holds_the_parameters_as_mxnet_writes_them():
    net = S.Deconvolution(S.Variable("data"), kernel=(4, 4), num_filter=8, stride=(2, 2), pad=(1, 1),
                          target_shape=(10, 10), no_bias=False, name="up")
    node = next(n for n in json.loads(net.tojson())["nodes"] if n["op"] == "Deconvolution")
    assert node["params"] == {"kernel": "(4, 4)", "num_filter": "8", "stride": "(2, 2)", "pad": "(1, 1)",
                             "target_shape": "(10, 10)", "no_bias": "False"}
    again = S.load_json(net.tojson())
    assert again.list_arguments() == ["data", "up_weight", "up_bias"]
    assert again.infer_shape(data=(2, 3, 5, 5))[1] == [(2, 8, 10, 10)]
    assert S.Deconvolution(S.Variable("data"), kernel=(2, 2), num_filter=1, name="d").list_arguments() == [
        "data", "d_weight"]  # MXNet's default: no bias


@pytest.mark.slow  # 90 s: the example trains in the interpreter
def test_the_autoencoder_example_draws_the_digits_better_than_their_mean():
    """examples/digits_autoencoder.py: Convolution, GroupNorm and Pooling down to 32 numbers,
    Deconvolution, InstanceNorm and Convolution back up, under Module.fit: its validation
    error must fall well below that of drawing the mean image."""
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "digits_autoencoder.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    line = result.stdout.split("validation mean squared error ")[1]
    error, baseline = float(line.split()[0]), float(line.split("image: ")[1].rstrip(")\n "))
    assert error < 0.7 * baseline, result.stdout
