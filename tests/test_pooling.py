"""Pooling beyond its generic operator cases: max and average pooling against torch's (an
implementation independent of ours), ties and NaN in max pooling, MXNet's ``full``
convention and its divisor, global pooling, the kept positions of a training bind (and none
in inference), and refusals that name the operator and the values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracles import pooling, pooling_grad
from tolerances import DTYPE_IDS, DTYPES, assert_close
from tritonsym.ops import pooling as kernels
from tritonsym.ops._common import run

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym
F = torch.nn.functional
nan = float("nan")


def _bind(shape, dtype=torch.float64, grad_req="write", **params):
    net = S.Pooling(S.Variable("data"), name="pool", **params)
    return net.simple_bind(ts.cpu(), data=shape, grad_req=grad_req, type_dict={"data": dtype})


def _run(exe, x, head):
    exe.forward(is_train=True, data=x)
    exe.backward(out_grads=head)
    return exe.outputs[0], exe.grad_dict["data"]


@pytest.mark.parametrize("kind, shape, kernel, stride, pad", [
    ("max", (2, 3, 11), (3,), (2,), (1,)),
    ("max", (2, 3, 9, 8), (3, 2), (2, 2), (1, 1)),
    ("max", (1, 2, 6, 5, 7), (2, 3, 3), (2, 1, 2), (1, 1, 0)),
    ("avg", (2, 3, 9, 8), (3, 3), (2, 1), (1, 1)),
    ("avg", (1, 2, 6, 5, 7), (3, 2, 3), (1, 2, 2), (0, 1, 1)),
])
def test_max_and_average_pooling_equal_torch(kind, shape, kernel, stride, pad, rng):
    pool = {("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d, ("max", 3): F.max_pool3d,
            ("avg", 1): F.avg_pool1d, ("avg", 2): F.avg_pool2d, ("avg", 3): F.avg_pool3d}[kind, len(kernel)]
    x = torch.from_numpy(rng.normal(size=shape)).requires_grad_()
    want = pool(x, kernel, stride, pad)
    head = torch.from_numpy(rng.normal(size=want.shape))
    want.backward(head)
    out, grad = _run(_bind(shape, kernel=kernel, stride=stride, pad=pad, pool_type=kind), x.detach(), head)
    assert_close(out, want.detach().numpy(), torch.float64, "forward")
    assert_close(grad, x.grad.numpy(), torch.float64, "gradient")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_max_pooling_gives_a_tie_to_the_first_and_a_nan_wins(dtype):
    x = torch.ones(1, 1, 4, 4, dtype=dtype)
    x[0, 0, 0, 3] = nan  # the second window's maximum, and its gradient's place
    x[0, 0, 3, 2] = 5.0
    exe = _bind((1, 1, 4, 4), dtype=dtype, kernel=(2, 2), stride=(2, 2))
    out, grad = _run(exe, x, torch.ones(1, 1, 2, 2, dtype=dtype))
    assert np.array_equal(out.double().numpy().ravel(), [1, nan, 1, 5], equal_nan=True)
    want = np.zeros((4, 4))
    want[0, 0] = want[0, 3] = want[2, 0] = want[3, 2] = 1
    assert grad.double().numpy()[0, 0].tolist() == want.tolist()


def test_overlapping_windows_add_their_gradients_in_place(rng):
    """Stride 1: an element that is the maximum of several windows gets each one's gradient."""
    x = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    x[0, 0, 1, 1] = 9.0
    out, grad = _run(_bind((1, 1, 3, 3), kernel=(2, 2), stride=(1, 1)), x, torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]],
                                                                                            dtype=torch.float64))
    assert out.numpy().ravel().tolist() == [9.0] * 4
    assert grad.numpy()[0, 0, 1, 1] == 10.0 and grad.numpy().sum() == 10.0


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_the_full_convention_and_its_divisor_follow_mxnet(count_include_pad, rng):
    """MXNet's ceil convention: a last window passing the data's end divides by its part up
    to the padded end (with the padding) or by its elements inside the data (without)."""
    x = np.arange(36.0).reshape(1, 1, 6, 6)
    params = dict(kernel=(3, 3), stride=(2, 2), pad=(1, 1), pooling_convention="full", pool_type="avg",
                  count_include_pad=count_include_pad)
    head = rng.normal(size=(1, 1, 4, 4))
    out, grad = _run(_bind((1, 1, 6, 6), **params), torch.from_numpy(x), torch.from_numpy(head))
    want = {True: [1.5555555555555556, 3.3333333333333333, 4.6666666666666667, 2.6666666666666667],
            False: [3.5, 5.0, 7.0, 8.0]}[count_include_pad]  # MXNet 1.9.1's first row
    assert np.allclose(out.numpy()[0, 0, 0], want, rtol=1e-15)
    geometry = dict(kernel=(3, 3), stride=(2, 2), pad=(1, 1), convention="full", count_include_pad=count_include_pad)
    assert_close(out, pooling(x, "avg", **geometry), torch.float64, "forward")
    assert_close(grad, pooling_grad(head, x, "avg", **geometry), torch.float64, "gradient")


def test_global_pooling_takes_the_whole_extent_and_ignores_kernel_stride_and_pad():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float64).reshape(2, 3, 4, 5)
    exe = _bind((2, 3, 4, 5), global_pool=True, pool_type="avg", kernel=(2, 2), stride=(3, 3), pad=(1, 1))
    out, grad = _run(exe, x, torch.ones(2, 3, 1, 1, dtype=torch.float64))
    assert out.shape == (2, 3, 1, 1) and torch.equal(out[..., 0, 0], x.mean(dim=(2, 3)))
    assert torch.all(grad == 1 / 20)


def test_lp_pooling_follows_mxnet_without_absolute_values():
    x = np.array([[[[-3.0, 1.0], [2.0, -1.0]]]])
    for p, want in ((1, -1.0), (2, np.sqrt(15.0)), (3, -np.cbrt(19.0))):
        out, _ = _run(_bind((1, 1, 2, 2), kernel=(2, 2), pool_type="lp", p_value=p), torch.from_numpy(x),
                      torch.ones(1, 1, 1, 1, dtype=torch.float64))
        assert out.item() == pytest.approx(want, rel=1e-15), p
    zero, grad = _run(_bind((1, 1, 2, 2), kernel=(2, 2), pool_type="lp", p_value=2), torch.zeros(1, 1, 2, 2,
                                                                                                 dtype=torch.float64),
                      torch.ones(1, 1, 1, 1, dtype=torch.float64))
    assert zero.item() == 0 and torch.all(grad == 0)  # MXNet's gradient at a zero norm: 0, not NaN
    for value, want in ((float("inf"), float("inf")), (-1e30, float("-inf")), (nan, nan)):  # cubes past float32
        out = torch.empty(1, 1, 1, 1)
        run(kernels.plan_pooling(torch.full((1, 1, 2, 2), value), out, kind="lp", p_value=3, kernel=(2, 2),
                                 stride=(2, 2), pad=(0, 0)))
        assert np.array_equal(out.numpy().ravel(), [want], equal_nan=True), value


def test_a_training_bind_keeps_an_int32_per_output_of_max_pooling_and_inference_none():
    net = S.Pooling(S.Variable("data"), kernel=(2, 2), stride=(2, 2), name="pool")
    train = net.simple_bind(ts.cpu(), data=(2, 3, 8, 6))
    kept = [v for s in train._program.forward_steps for v in s.saved.values()]
    assert [(tuple(v.shape), v.dtype) for v in kept] == [((2, 3, 4, 3), torch.int32)]
    infer = net.simple_bind(ts.cpu(), data=(2, 3, 8, 6), grad_req="null")
    assert not [v for s in infer._program.forward_steps for v in s.saved.values()]
    avg = S.Pooling(S.Variable("data"), kernel=(2, 2), pool_type="avg").simple_bind(ts.cpu(), data=(2, 3, 8, 6))
    assert not [v for s in avg._program.forward_steps for v in s.saved.values()]


def test_the_gradient_has_the_same_bits_every_run(rng):
    x = torch.from_numpy(rng.normal(size=(2, 3, 9, 9))).float()
    dy = torch.from_numpy(rng.normal(size=(2, 3, 7, 7))).float()
    grads = []
    for _ in range(2):
        dx = torch.empty_like(x)
        run(kernels.plan_pooling_backward(dy, None, None, None, dx, kind="avg", kernel=(3, 3), stride=(1, 1),
                                          pad=(0, 0)))
        grads.append(dx)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("params, shape, words", [
    (dict(kernel=(2,), stride=(2,), pad=(2,)), (1, 1, 5), ["only padding", "pad (2,)"]),
    (dict(kernel=(2, 2), stride=(2, 2), pad=(1, 1), pooling_convention="full"), (1, 1, 7, 7), ["only padding"]),
    (dict(kernel=(9, 9)), (1, 1, 8, 8), ["longer", "(8, 8)"]),
    (dict(kernel=(2, 2)), (1, 1, 8), ["kernel=(2, 2)", "(1, 1, 8)"]),
    (dict(kernel=(3,), pooling_convention="same"), (1, 1, 8), ["'same'"]),
    (dict(kernel=(2, 2), pool_type="lp"), (1, 1, 8, 8), ["p_value"]),
    (dict(kernel=(2, 2), layout="NHWC"), (1, 8, 8, 1), ["NHWC"]),
    (dict(kernel=(2, 2), stride=(1, 1, 1)), (1, 1, 8, 8), ["stride=(1, 1, 1)"]),
])
def test_bad_geometry_is_refused_naming_the_values(params, shape, words):
    net = S.Pooling(S.Variable("data"), name="pool", **params)
    with pytest.raises(ShapeError) as error:
        net.infer_shape(data=shape)
    assert "Pooling" in str(error.value) and all(w in str(error.value) for w in words), str(error.value)


def test_parameters_are_checked_when_the_symbol_is_made():
    with pytest.raises(ParamError, match="pool_type='median'"):
        S.Pooling(S.Variable("data"), kernel=(2, 2), pool_type="median")
