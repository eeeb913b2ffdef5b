"""AdaptiveAvgPooling2D beyond its generic operator cases: against torch's
adaptive_avg_pool2d (an implementation independent of ours) in every dtype, grad_req='add',
the same bits every run from a gradient gathered over overlapping windows, and refusals
that name the operator and the values."""

from __future__ import annotations

import pytest
import torch
from tolerances import DTYPES_QUICK_FIRST, assert_close
from tritonsym.ops import adaptive_pooling as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)  # float64 and float16 under -m slow
@pytest.mark.parametrize("shape, size", [((2, 3, 13, 11), (4, 5)), ((1, 2, 3, 4), (7, 9)), ((2, 1, 6, 6), 3)],
                         ids=str)
def test_equals_torch(shape, size, dtype, rng):
    net = S.contrib.AdaptiveAvgPooling2D(S.Variable("data"), output_size=size)
    exe = net.simple_bind(ts.cpu(), data=shape, type_dict={"data": dtype})
    x = torch.from_numpy(rng.normal(size=shape)).to(dtype)
    xr = x.double().requires_grad_()
    want = torch.nn.functional.adaptive_avg_pool2d(xr, size)
    head = torch.from_numpy(rng.normal(size=want.shape)).to(dtype)
    want.backward(head.double())
    exe.forward(is_train=True, data=x)
    exe.backward(out_grads=head)
    assert_close(exe.outputs[0], want.detach().numpy(), dtype, "forward")
    assert_close(exe.grad_dict["data"], xr.grad.numpy(), dtype, "gradient")


def test_grad_req_add_adds(rng):
    net = S.contrib.AdaptiveAvgPooling2D(S.Variable("data"), output_size=(2, 3))
    exe = net.simple_bind(ts.cpu(), data=(2, 2, 5, 7), grad_req="add", type_dict={"data": "float64"})
    exe.grad_dict["data"][...] = 1.0
    x = torch.from_numpy(rng.normal(size=(2, 2, 5, 7))).requires_grad_()
    torch.nn.functional.adaptive_avg_pool2d(x, (2, 3)).sum().backward()
    for _ in range(2):
        exe.forward(is_train=True, data=x.detach())
        exe.backward(out_grads=torch.ones(2, 2, 2, 3, dtype=torch.float64))
    assert_close(exe.grad_dict["data"], 1.0 + 2 * x.grad.numpy(), torch.float64, "1 + twice the gradient")


def test_the_gradient_has_the_same_bits_every_run(rng):
    dy = torch.from_numpy(rng.normal(size=(3, 8, 7, 9))).float()  # windows overlap both ways
    grads = []
    for _ in range(2):
        dx = torch.empty(3, 8, 19, 23)
        run(kernels.plan_adaptive_avg_pool_backward(dy, dx))
        grads.append(dx)
    assert torch.equal(grads[0], grads[1])


def test_refusals_name_the_operator_and_the_values():
    with pytest.raises(ShapeError) as error:
        S.contrib.AdaptiveAvgPooling2D(S.Variable("data"), output_size=2).infer_shape(data=(2, 3, 4))
    assert all(w in str(error.value) for w in ("AdaptiveAvgPooling2D", "(2, 3, 4)", "(batch, channels")), error.value
    for size in ((2, 3, 4), (0, 2)):
        with pytest.raises(ParamError, match="output_size"):
            S.contrib.AdaptiveAvgPooling2D(S.Variable("data"), output_size=size)
    with pytest.raises(KernelArgumentError, match="contiguous"):
        kernels.plan_adaptive_avg_pool(torch.zeros(1, 2, 4, 4).transpose(2, 3), torch.zeros(1, 2, 2, 2))
