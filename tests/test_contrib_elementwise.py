"""MXNet's contrib elementwise operators beyond their generic operator cases: quadratic,
the straight-through estimators round_ste and sign_ste, and the gradient multiplier (the
gradient reversal layer). MXNet's documented examples, the estimators' gradient (the head's,
whatever the step, in every dtype), the multiplier as a view that costs no memory, a
reversed gradient through a network, grad_req='add', and the quadratic kernels on strided
and accumulated operands."""

from __future__ import annotations

import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close
from tritonsym.ops import quadratic as kernels
from tritonsym.ops._common import run

import tritonsym as ts

S = ts.sym
C = S.contrib


def _run(net, x, head=None, dtype=torch.float64, grad_req="write"):
    x = torch.as_tensor(x, dtype=dtype)
    exe = net.simple_bind(ts.cpu(), x=tuple(x.shape), type_dict={"x": dtype}, grad_req=grad_req)
    exe.forward(is_train=True, x=x)
    exe.backward(out_grads=torch.ones_like(x) if head is None else torch.as_tensor(head, dtype=dtype))
    return exe


def test_mxnets_documented_examples():
    x = S.Variable("x")
    assert _run(C.quadratic(x, a=1, b=2, c=3), [[1, 2], [3, 4]]).outputs[0].tolist() == [[6, 11], [18, 27]]
    exe = _run(C.round_ste(x), [-1.5, 1.5, -1.9, 1.9, 2.7])
    assert exe.outputs[0].tolist() == [-2, 2, -2, 2, 3] and exe.grad_dict["x"].tolist() == [1] * 5
    exe = _run(C.sign_ste(x), [-2, 0, 3])
    assert exe.outputs[0].tolist() == [-1, 0, 1] and exe.grad_dict["x"].tolist() == [1] * 3


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("step", ["round_ste", "sign_ste"])
def test_the_estimators_pass_the_head_gradient_through(step, dtype, rng):
    x, head = rng.normal(scale=3.0, size=(4, 9)), rng.normal(size=(4, 9))
    exe = _run(getattr(C, step)(S.Variable("x")), x, head, dtype)
    assert torch.equal(exe.grad_dict["x"], torch.as_tensor(head, dtype=dtype))


def test_a_nan_stays_nan_where_mxnets_sign_says_0():
    exe = _run(C.sign_ste(S.Variable("x")), [float("nan"), -0.0, 2.0])
    assert exe.outputs[0][0].isnan() and exe.outputs[0][1:].tolist() == [0, 1]


def test_the_multiplier_is_a_view_and_reverses_the_gradient(rng):
    """Gradient reversal: the data's gradient through a layer and the multiplier is -lambda
    times the one without it; the multiplier's output is its input's storage."""
    data = S.Variable("x")
    fc = S.FullyConnected(data, num_hidden=3, name="fc")
    plain, reversed_ = (S.MakeLoss(S.sum(S.square(net))) for net in (fc, C.gradientmultiplier(fc, scalar=-0.25)))
    values = {"x": rng.normal(size=(5, 4)), "fc_weight": rng.normal(size=(3, 4)), "fc_bias": rng.normal(size=3)}
    grads = []
    for net in (plain, reversed_):
        exe = net.simple_bind(ts.cpu(), x=(5, 4), type_dict={"x": "float64"})
        exe.forward(is_train=True, **values)
        exe.backward()
        grads.append({k: v.clone() for k, v in exe.grad_dict.items()})
    for name in grads[0]:
        assert_close(grads[1][name], -0.25 * grads[0][name].numpy(), torch.float64, f"reversed gradient of {name}")
    view = C.gradientmultiplier(S.Variable("x"), scalar=2.0).simple_bind(ts.cpu(), x=(3, 4))
    assert view.outputs[0].data_ptr() == view.arg_dict["x"].data_ptr()
    assert [v.kind for v in view.memory.values] == ["head_grad"], view.memory  # no buffer for the output


@pytest.mark.parametrize("net", [lambda x: C.gradientmultiplier(x, scalar=3.0), lambda x: C.round_ste(x),
                                 lambda x: C.quadratic(x, a=2.0, b=-1.0)], ids=["multiplier", "round_ste", "quadratic"])
def test_grad_req_add_adds(net, rng):
    x = rng.normal(size=(3, 5))
    exe = net(S.Variable("x")).simple_bind(ts.cpu(), x=x.shape, type_dict={"x": "float64"}, grad_req="add")
    exe.grad_dict["x"][...] = 1.0
    once = _run(net(S.Variable("x")), x).grad_dict["x"].numpy()
    for _ in range(2):
        exe.forward(is_train=True, x=torch.from_numpy(x))
        exe.backward(out_grads=torch.ones(3, 5, dtype=torch.float64))
    assert_close(exe.grad_dict["x"], 1.0 + 2 * once, torch.float64, "1 + twice the gradient")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_quadratic_kernels_on_strided_operands(dtype, rng):
    x = torch.from_numpy(rng.normal(size=(6, 5))).to(dtype).t()  # strided
    dy = torch.from_numpy(rng.normal(size=(5, 6))).to(dtype)
    out, dx = torch.empty(6, 5, dtype=dtype).t(), torch.ones(5, 6, dtype=dtype)
    run(kernels.plan_quadratic(x, out, -0.5, 1.5, 0.25) + kernels.plan_quadratic_backward(dy, x, dx, -0.5, 1.5,
                                                                                          accumulate=True))
    xd, dyd = x.double().numpy(), dy.double().numpy()
    assert_close(out, -0.5 * xd ** 2 + 1.5 * xd + 0.25, dtype, "forward")
    assert_close(dx, 1.0 + (-xd + 1.5) * dyd, dtype, "1 + the gradient")
