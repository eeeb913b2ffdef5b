"""pick beyond its generic operator cases: indices outside the axis (clip, wrap), indices
that are not whole numbers (NaN, no gradient), integer indices, a loss written by hand, and
a gradient with the same bits every run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES
from tritonsym.ops import pick as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts
from tritonsym.base import BindError, ShapeError

S = ts.sym
nan = float("nan")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("index_dtype", [torch.float32, torch.int64, torch.int32])
def test_clip_and_wrap_move_an_index_outside_the_axis(dtype, index_dtype):
    x = torch.arange(12, dtype=dtype).reshape(3, 4)
    index = torch.tensor([-3, 4, 9], dtype=index_dtype)
    for mode, want in (("clip", [0, 7, 11]), ("wrap", [1, 4, 9])):
        out = torch.empty(3, dtype=dtype)
        run(kernels.plan_pick(x, index, out, 1, mode))
        assert out.tolist() == want, mode


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_an_index_that_is_not_whole_gives_nan_and_no_gradient(dtype):
    x = torch.arange(12, dtype=dtype).reshape(3, 4)
    index = torch.tensor([1.5, nan, 2.0])
    out = torch.empty(3, dtype=dtype)
    run(kernels.plan_pick(x, index, out, 1))
    assert np.isnan(out[:2].float().numpy()).all() and out[2].item() == 10
    grad = torch.full((3, 4), 7.0, dtype=dtype)
    run(kernels.plan_pick_backward(torch.ones(3, dtype=dtype), index, grad, 1))
    assert grad.float().numpy().tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]
    run(kernels.plan_pick_backward(torch.ones(3, dtype=dtype), index, grad, 1, accumulate=True))
    assert grad.float().numpy().tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 2, 0]]


def test_an_axis_of_one_element_clips_every_index_to_it():
    """A length of 1 is compiled in as a constant on a GPU (it once failed to compile there)."""
    out = torch.empty(4)
    run(kernels.plan_pick(torch.arange(4.0).reshape(4, 1), torch.tensor([0.0, 3.0, -2.0, 1.5]), out, 1))
    assert out[:3].tolist() == [0.0, 1.0, 2.0] and np.isnan(out[3].item())


def test_a_nan_in_the_data_is_picked_as_nan():
    x = torch.tensor([[1.0, nan], [nan, 2.0]])
    out = torch.empty(2)
    run(kernels.plan_pick(x, torch.tensor([1, 1]), out, 1))
    assert np.isnan(out[0].item()) and out[1].item() == 2.0


def test_a_loss_written_by_hand_equals_softmax_outputs_gradient(rng):
    """-mean(log(pick(softmax(x), label))): the cross-entropy SoftmaxOutput computes."""
    data, label = S.Variable("data"), S.Variable("label")
    net = S.MakeLoss(S.mean(-S.log(S.pick(S.softmax(data), label))))
    x = rng.normal(size=(6, 9))
    y = rng.integers(0, 9, 6).astype(np.float64)
    exe = net.simple_bind(ts.cpu(), data=x.shape, label=y.shape, type_dict={"data": torch.float64})
    loss = exe.forward(is_train=True, data=torch.from_numpy(x), label=torch.from_numpy(y))[0].item()
    exe.backward()
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(loss, -np.log(p[np.arange(6), y.astype(int)]).mean(), rtol=1e-12)
    np.testing.assert_allclose(exe.grad_dict["data"].numpy(), (p - np.eye(9)[y.astype(int)]) / 6, atol=1e-14)


def test_the_gradient_has_the_same_bits_every_run(rng):
    x = S.Variable("data")
    exe = S.pick(x, S.Variable("index"), axis=0).simple_bind(ts.cpu(), data=(300, 40), index=(40,))
    index = torch.from_numpy(rng.integers(0, 300, 40).astype(np.float32))
    head = torch.from_numpy(rng.normal(size=40).astype(np.float32))
    grads = []
    for _ in range(2):
        exe.forward(is_train=True, data=torch.from_numpy(rng.normal(size=(300, 40)).astype(np.float32)), index=index)
        exe.backward([head])
        grads.append(exe.grad_dict["data"].clone())
    assert torch.equal(grads[0], grads[1])
    assert torch.equal(grads[0][index.long(), torch.arange(40)], head)


def test_shapes_and_dtypes_are_checked_naming_them():
    data, index = S.Variable("data"), S.Variable("index")
    with pytest.raises(ShapeError, match=r"index of shape \(3,\) must have the shape of data \(2, 3\) without axis "
                                         r"-1: \(2,\)"):
        S.pick(data, index).infer_shape(data=(2, 3), index=(3,))
    with pytest.raises(ShapeError, match="axis=2 is out of range"):
        S.pick(data, index, axis=2).infer_shape(data=(2, 3))
    assert S.pick(data, index, axis=0, keepdims=True).infer_shape(data=(2, 3))[0:2] == ([(2, 3), (3,)], [(1, 3)])
    # a float16 index cannot hold every position of an axis of 3000
    with pytest.raises(BindError, match="input 'index' is the variable 'index' of dtype float16, which holds whole "
                                        "numbers exactly only up to 2048, but it holds class indices of 3000"):
        S.pick(data, index).simple_bind(ts.cpu(), data=(2, 3000), index=(2,),
                                        type_dict={"data": torch.float16, "index": torch.float16})
    with pytest.raises(KernelArgumentError, match=r"pick: index has 3 elements \(shape \(3,\)\) but data of shape "
                                                  r"\(2, 4\) has 2 positions along axis 1"):
        kernels.plan_pick(torch.empty(2, 4), torch.empty(3), None, 1)
    with pytest.raises(KernelArgumentError, match="mode='nearest' is not one of clip, wrap"):
        kernels.plan_pick(torch.empty(2, 4), torch.empty(2), None, 1, "nearest")
