"""UpSampling beyond its generic operator cases: nearest against torch's interpolate and
bilinear against torch's grouped transposed convolution (implementations independent of
ours), MXNet's documented example, the bilinear weight starting as interpolation (equal to
torch's bilinear resize away from the border), gradients added under grad_req='add' in
every dtype, the same bits every run, refusals that name the operator and the values, and
JSON (MXNet's included)."""

from __future__ import annotations

import json

import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close
from tritonsym.ops import upsampling as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


def _bind(net, dtype=torch.float64, grad_req="write", **shapes):
    return net.simple_bind(ts.cpu(), grad_req=grad_req, type_dict={n: dtype for n in net.list_arguments()}, **shapes)


@pytest.mark.parametrize("shape, scale", [((2, 3, 40, 37), 2), ((1, 2, 5, 3), 4), ((3, 1, 2, 2), 1)], ids=str)
def test_nearest_equals_torch(shape, scale, rng):
    exe = _bind(S.UpSampling(S.Variable("data"), scale=scale, sample_type="nearest"), data=shape)
    x = torch.from_numpy(rng.normal(size=shape))
    xr = x.clone().requires_grad_()
    want = torch.nn.functional.interpolate(xr, scale_factor=scale, mode="nearest")
    head = torch.from_numpy(rng.normal(size=want.shape))
    want.backward(head)
    exe.forward(is_train=True, data=x)
    exe.backward(out_grads=head)
    assert_close(exe.outputs[0], want.detach().numpy(), torch.float64, "forward")
    assert_close(exe.grad_dict["data"], xr.grad.numpy(), torch.float64, "gradient")


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bilinear_equals_torchs_grouped_transposed_convolution(scale, rng):
    net = S.UpSampling(S.Variable("data"), scale=scale, sample_type="bilinear", num_filter=3, name="up")
    exe = _bind(net, data=(2, 3, 5, 4))
    k = 2 * scale - scale % 2
    assert tuple(exe.arg_dict["up_weight"].shape) == (3, 1, k, k)
    x, w = torch.from_numpy(rng.normal(size=(2, 3, 5, 4))), torch.from_numpy(rng.normal(size=(3, 1, k, k)))
    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
    want = torch.nn.functional.conv_transpose2d(xr, wr, stride=scale, padding=scale // 2, groups=3)
    assert tuple(want.shape) == (2, 3, 5 * scale, 4 * scale)
    head = torch.from_numpy(rng.normal(size=want.shape))
    want.backward(head)
    exe.forward(is_train=True, data=x, up_weight=w)
    exe.backward(out_grads=head)
    assert_close(exe.outputs[0], want.detach().numpy(), torch.float64, "forward")
    assert_close(exe.grad_dict["data"], xr.grad.numpy(), torch.float64, "gradient of data")
    assert_close(exe.grad_dict["up_weight"], wr.grad.numpy(), torch.float64, "gradient of the weight")


def test_mxnets_documented_example():
    net = S.UpSampling(S.Variable("x"), S.Variable("w"), scale=2, sample_type="bilinear", num_filter=1)
    exe = _bind(net, x=(1, 1, 3, 3))
    exe.forward(x=torch.ones(1, 1, 3, 3, dtype=torch.float64), w=torch.ones(1, 1, 4, 4, dtype=torch.float64))
    edge = [1, 2, 2, 2, 2, 1]
    assert exe.outputs[0][0, 0].tolist() == [edge] + [[2 * v for v in edge]] * 4 + [edge]


@pytest.mark.parametrize("scale", [2, 4])
def test_the_bilinear_weight_starts_as_interpolation(scale, rng):
    """Module.init_params with Xavier leaves the weight bilinear (MXNet's FSetInputVarAttrOnCompose);
    away from the border, where the zero padding takes nothing, it is torch's bilinear resize."""
    net = S.UpSampling(S.Variable("data"), scale=scale, sample_type="bilinear", num_filter=2, name="up")
    assert net.attr_dict()["up_weight"]["__init__"] == '["bilinear", {}]'
    module = ts.mod.Module(net, data_names=["data"], label_names=None)
    module.bind(data_shapes=[("data", (1, 2, 6, 7))])
    module.init_params(ts.init.Xavier())
    weight = module.get_params()[0]["up_weight"]
    x = torch.from_numpy(rng.normal(size=(1, 2, 6, 7))).float()
    module.forward(ts.io.DataBatch([x]), is_train=False)
    got = module.get_outputs()[0]
    want = torch.nn.functional.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    inner = slice(scale, -scale)
    assert_close(got[..., inner, inner], want[..., inner, inner].double().numpy(), torch.float32, "interior")
    assert torch.equal(weight[0], weight[1])


def test_a_variable_with_an_init_keeps_it():
    w = S.Variable("w", init=ts.init.Constant(0.5))
    S.UpSampling(S.Variable("x"), w, scale=2, sample_type="bilinear", num_filter=1)
    assert w.attr("__init__") == ts.init.Constant(0.5).dumps()


@pytest.mark.parametrize("mode", ["concat", "sum"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_grad_req_add_adds_every_gradient(mode, dtype, rng):
    net = S.UpSampling(S.Variable("a"), S.Variable("b"), scale=2, sample_type="nearest", multi_input_mode=mode)
    exe = _bind(net, dtype=dtype, grad_req="add", a=(2, 3, 2, 2), b=(2, 3, 1, 1))  # b: by 4
    for array in exe.arg_dict.values():
        array[...] = torch.from_numpy(rng.normal(size=array.shape))
    for grad in exe.grad_dict.values():
        grad.zero_()
    head = torch.from_numpy(rng.normal(size=exe.outputs[0].shape)).to(dtype)
    for _ in range(2):
        exe.forward(is_train=True)
        exe.backward(out_grads=head)
    h = head.double()
    parts = (h, h) if mode == "sum" else (h[:, :3], h[:, 3:])
    for name, part, shape in zip(("a", "b"), parts, ((2, 3, 2, 2), (2, 3, 1, 1))):
        want = 2 * part.reshape(2, 3, shape[2], 4 // shape[2], shape[3], 4 // shape[3]).sum((3, 5))
        assert_close(exe.grad_dict[name], want.numpy(), dtype, f"twice the gradient of {name}")


def test_one_array_at_both_inputs_gets_both_gradients(rng):
    x = S.Variable("x")
    exe = _bind(S.UpSampling(x, x, scale=3, sample_type="nearest", multi_input_mode="sum"), x=(1, 2, 2, 3))
    exe.forward(is_train=True, x=torch.from_numpy(rng.normal(size=(1, 2, 2, 3))))
    exe.backward(out_grads=torch.ones(1, 2, 6, 9, dtype=torch.float64))
    assert (exe.grad_dict["x"] == 18).all()


def test_the_gradient_has_the_same_bits_every_run(rng):
    dy = torch.from_numpy(rng.normal(size=(4, 8, 60, 48))).float()
    grads = []
    for _ in range(2):
        dx = torch.empty(4, 8, 15, 12)
        run(kernels.plan_nearest_backward(dy, dx))
        grads.append(dx)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("params, shapes, words", [
    (dict(scale=2, sample_type="nearest", num_args=1), dict(arg0=(2, 3, 4)),
     ["(2, 3, 4)", "(batch, channels, height, width)"]),
    (dict(scale=2, sample_type="nearest", num_args=2), dict(arg0=(2, 3, 3, 4), arg1=(2, 3, 4, 4)),
     ["arg1", "6 x 8", "one whole factor"]),
    (dict(scale=2, sample_type="nearest", num_args=2), dict(arg0=(2, 3, 3, 4), arg1=(2, 3, 6, 4)),
     ["arg1", "6 x 8", "one whole factor"]),
    (dict(scale=2, sample_type="nearest", num_args=2), dict(arg0=(2, 3, 3, 4), arg1=(1, 3, 3, 4)), ["batch 1"]),
    (dict(scale=2, sample_type="nearest", num_args=2, multi_input_mode="sum"),
     dict(arg0=(2, 3, 3, 4), arg1=(2, 2, 3, 4)), ["'sum'", "arg1 has 2"]),
    (dict(scale=2, sample_type="bilinear", num_filter=0, num_args=1), dict(data=(2, 3, 3, 4)),
     ["num_filter=0", "(2, 3, 3, 4)"]),
], ids=str)
def test_bad_shapes_are_refused_naming_the_values(params, shapes, words):
    net = S.UpSampling(name="u", **params)
    with pytest.raises(ShapeError) as error:
        net.infer_shape(**{f"u_{k}": v for k, v in shapes.items()})
    assert "UpSampling" in str(error.value) and all(w in str(error.value) for w in words), str(error.value)


def test_parameters_and_kernel_arguments_are_checked():
    with pytest.raises(ParamError, match="scale=0"):
        S.UpSampling(S.Variable("x"), scale=0, sample_type="nearest")
    with pytest.raises(ParamError, match="sample_type='linear'"):
        S.UpSampling(S.Variable("x"), scale=2, sample_type="linear")
    with pytest.raises(KernelArgumentError, match="whole factors"):
        kernels.plan_nearest(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 7, 6))
    with pytest.raises(KernelArgumentError, match="each sample contiguously"):
        kernels.plan_nearest(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 6, 6).transpose(2, 3))


def test_json_round_trip_and_mxnets_json():
    net = S.UpSampling(S.Variable("data"), scale=2, sample_type="bilinear", num_filter=4, name="up")
    nodes = json.loads(net.tojson())["nodes"]
    assert nodes[1]["attrs"] == {"__init__": '["bilinear", {}]'}
    again = S.load_json(net.tojson())
    assert again.infer_shape(data=(1, 4, 3, 3))[0][1] == (4, 1, 4, 4)
    mxnet = {"nodes": [{"op": "null", "name": "a", "inputs": []},
                       {"op": "null", "name": "b", "inputs": []},
                       {"op": "UpSampling", "name": "up", "attrs": {"num_args": "2", "sample_type": "nearest",
                                                                    "scale": "2"}, "inputs": [[0, 0, 0], [1, 0, 0]]}],
              "arg_nodes": [0, 1], "node_row_ptr": [0, 1, 2, 3], "heads": [[2, 0, 0]],
              "attrs": {"mxnet_version": ["int", 10901]}}
    loaded = S.load_json(json.dumps(mxnet))
    assert loaded.list_arguments() == ["a", "b"]
    assert loaded.infer_shape(a=(1, 2, 3, 3), b=(1, 1, 2, 2))[1] == [(1, 3, 6, 6)]  # b by 3
