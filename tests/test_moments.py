"""moments beyond its generic operator cases: both outputs and both head gradients against
torch (an implementation independent of ours) in every dtype and over axis sets that are
not neighbours, a large mean beside a small spread (no cancellation), several programs and
loop steps, gradients added under grad_req='add', and shapes as MXNet's."""

from __future__ import annotations

import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close
from tritonsym.ops import moments as kernels

import tritonsym as ts

S = ts.sym


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape, axes, keepdims", [((5, 6, 7), (0, 2), False), ((4, 9), (1,), True),
                                                   ((3, 2, 4), None, False)], ids=str)
def test_both_outputs_and_gradients_equal_torch(shape, axes, keepdims, dtype, rng, monkeypatch):
    monkeypatch.setattr(kernels, "TILE", 16)  # several programs, several passes each
    net = S.moments(S.Variable("x"), **({} if axes is None else {"axes": axes}), keepdims=keepdims)
    exe = net.simple_bind(ts.cpu(), x=shape, type_dict={"x": dtype})
    x = torch.from_numpy(rng.normal(size=shape)).to(dtype)
    dims = tuple(range(len(shape))) if axes is None else axes
    xr = x.double().requires_grad_()
    mean, var = xr.mean(dims, keepdim=keepdims), xr.var(dims, unbiased=False, keepdim=keepdims)
    if axes is None and not keepdims:
        mean, var = mean.reshape(1), var.reshape(1)
    heads = [torch.from_numpy(rng.normal(size=tuple(mean.shape))).to(dtype) for _ in range(2)]
    (mean * heads[0].double() + var * heads[1].double()).sum().backward()
    exe.forward(is_train=True, x=x)
    exe.backward(out_grads=heads)
    assert_close(exe.outputs[0], mean.detach().numpy(), dtype, "mean")
    assert_close(exe.outputs[1], var.detach().numpy(), dtype, "variance", scale=4.0)
    assert_close(exe.grad_dict["x"], xr.grad.numpy(), dtype, "gradient", scale=4.0)


def test_a_large_mean_beside_a_small_spread_keeps_the_variance():
    """float32 values 1e4 + [0, 1, 2]: a sum of squares minus the squared mean would lose
    most digits of 2/3; the deviations from the mean do not."""
    exe = S.moments(S.Variable("x"), axes=(1,)).simple_bind(ts.cpu(), x=(1, 3), grad_req="null")
    exe.forward(x=torch.tensor([[1e4, 1e4 + 1, 1e4 + 2]]))
    assert exe.outputs[0].item() == 1e4 + 1 and abs(exe.outputs[1].item() - 2 / 3) < 1e-6


def test_gradients_add_under_grad_req_add(rng):
    net = S.moments(S.Variable("x"), axes=(0,))
    exe = net.simple_bind(ts.cpu(), x=(4, 3), type_dict={"x": torch.float64}, grad_req="add")
    x = torch.from_numpy(rng.normal(size=(4, 3)))
    exe.grad_dict["x"].fill_(1.0)
    exe.forward(is_train=True, x=x)
    exe.backward(out_grads=[torch.ones(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)])
    assert torch.allclose(exe.grad_dict["x"], torch.full((4, 3), 1.25, dtype=torch.float64))


def test_shapes_as_in_mxnet():
    x = S.Variable("x")
    assert S.moments(x, axes=(0, 1)).infer_shape(x=(2, 3))[1] == [(1,), (1,)]
    assert S.moments(x, axes=(1,), keepdims=True).infer_shape(x=(2, 3, 4))[1] == [(2, 1, 4), (2, 1, 4)]
    with S.NameManager():
        assert S.moments(x, axes=(1,)).list_outputs() == ["moments0_output0", "moments0_output1"]
