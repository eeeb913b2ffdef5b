"""take beyond its generic operator cases: against torch's index_select (an implementation
independent of ours) on integer indices, tables larger than one block, indices outside the
axis in each mode, indices that are not whole numbers, gradients added under grad_req='add'
in every dtype, the same bits every run, the scratch it plans, refusals that name the
operator and the values, and JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


def _bind(a, i, index_dtype=torch.int64, dtype=torch.float64, grad_req=None, **params):
    net = S.take(S.Variable("a"), S.Variable("i"), **params)
    return net.simple_bind(ts.cpu(), a=a, i=i, type_dict={"a": dtype, "i": index_dtype},
                           grad_req=grad_req or {"a": "write", "i": "null"})


@pytest.mark.parametrize("a, i, axis", [((300, 40), (7, 9), 0), ((3, 50, 6), (64,), 1), ((2, 3, 9), (4, 2), -1)],
                         ids=str)
def test_equals_torch(a, i, axis, rng):
    exe = _bind(a, i, axis=axis)
    x = torch.from_numpy(rng.normal(size=a))
    index = torch.from_numpy(rng.integers(0, a[axis], i))
    xr = x.clone().requires_grad_()
    want = torch.index_select(xr, axis, index.ravel())
    want = want.reshape((*a[:axis % len(a)], *i, *a[axis % len(a) + 1:]))
    head = torch.from_numpy(rng.normal(size=want.shape))
    want.backward(head)
    exe.forward(is_train=True, a=x, i=index)
    exe.backward(out_grads=head)
    assert_close(exe.outputs[0], want.detach().numpy(), torch.float64, "forward")
    assert_close(exe.grad_dict["a"], xr.grad.numpy(), torch.float64, "gradient")


@pytest.mark.parametrize("mode, rows", [("clip", [0, 0, 3, 3, 1]), ("wrap", [2, 0, 0, 0, 1]),
                                        ("raise", [None, None, None, None, 1])])
def test_an_index_outside_the_axis_in_each_mode(mode, rows):
    exe = _bind((4, 2), (5,), mode=mode)
    table = torch.arange(8.0, dtype=torch.float64).reshape(4, 2)
    exe.forward(is_train=True, a=table, i=torch.tensor([-2, -4, 4, 8, 1]))
    exe.backward(out_grads=torch.ones(5, 2, dtype=torch.float64))
    got = exe.outputs[0].numpy()
    want_grad = np.zeros((4, 2))
    for k, r in enumerate(rows):
        if r is None:  # raise: NaN, and no gradient
            assert np.isnan(got[k]).all(), got
        else:
            assert (got[k] == table[r].numpy()).all(), (k, got[k])
            want_grad[r] += 1
    assert (exe.grad_dict["a"].numpy() == want_grad).all()


def test_an_index_that_is_not_whole_gives_nan_and_no_gradient():
    exe = _bind((3, 2), (4,), index_dtype=torch.float32)
    exe.forward(is_train=True, a=torch.ones(3, 2, dtype=torch.float64),
                i=torch.tensor([1.5, float("nan"), float("inf"), 2.0]))
    exe.backward(out_grads=torch.ones(4, 2, dtype=torch.float64))
    got = exe.outputs[0].numpy()
    assert np.isnan(got[:3]).all() and (got[3] == 1).all(), got
    assert exe.grad_dict["a"].numpy().tolist() == [[0, 0], [0, 0], [1, 1]]


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_grad_req_add_adds_the_gradient(axis, dtype, rng):
    exe = _bind((5, 6), (3, 4), dtype=dtype, index_dtype=torch.int32, grad_req={"a": "add", "i": "null"}, axis=axis)
    index = torch.from_numpy(rng.integers(0, (5, 6)[axis], (3, 4))).int()
    exe.arg_dict["a"][...] = torch.from_numpy(rng.normal(size=(5, 6)))
    exe.grad_dict["a"].zero_()
    head = torch.from_numpy(rng.normal(size=exe.outputs[0].shape)).to(dtype)
    for _ in range(2):
        exe.forward(is_train=True, i=index)
        exe.backward(out_grads=head)
    xr = exe.arg_dict["a"].double().requires_grad_()
    taken = torch.index_select(xr, axis, index.long().ravel())
    taken.reshape(exe.outputs[0].shape).backward(head.double())
    assert_close(exe.grad_dict["a"], 2 * xr.grad.numpy(), dtype, "twice the gradient")


def test_the_gradient_has_the_same_bits_every_run(rng):
    exe = _bind((12, 3, 20), (400,), dtype=torch.float32, axis=1)  # ~133 picks of each row summed
    index = torch.from_numpy(rng.integers(0, 3, 400))
    head = torch.from_numpy(rng.normal(size=(12, 400, 20))).float()
    grads = []
    for _ in range(2):
        exe.forward(is_train=True, a=torch.ones(12, 3, 20), i=index)
        exe.backward(out_grads=head)
        grads.append(exe.grad_dict["a"].clone())
    assert torch.equal(grads[0], grads[1])


def test_the_first_axis_gathers_in_place_and_the_others_through_a_moved_copy():
    first = _bind((5, 3, 2), (4,), axis=0)
    assert {v.shape for v in first.memory.values if v.kind == "temp"} == {(4,)}  # the float64 indices
    middle = _bind((5, 3, 2), (4,), axis=1)
    assert {v.shape for v in middle.memory.values if v.kind == "temp"} == {(4,), (3, 10), (4, 10)}


def test_refusals_name_the_values():
    with pytest.raises(ShapeError, match=r"axis=2 is out of range for a of shape \(3, 4\)"):
        S.take(S.Variable("a"), S.Variable("i"), axis=2).infer_shape(a=(3, 4), i=(2,))
    with pytest.raises(ShapeError, match=r"has nothing to take along axis 0"):
        S.take(S.Variable("a"), S.Variable("i")).infer_shape(a=(0, 4), i=(2,))
    with pytest.raises(ParamError, match="mode='nearest'"):
        S.take(S.Variable("a"), S.Variable("i"), mode="nearest")


def test_json_round_trip():
    net = S.take(S.Variable("a"), S.Variable("i"), axis=-1, mode="wrap", name="t")
    node = next(n for n in json.loads(net.tojson())["nodes"] if n["op"] == "take")
    assert node["params"] == {"axis": "-1", "mode": "wrap"}
    assert S.load_json(net.tojson()).infer_shape(a=(2, 3), i=(4, 5))[1] == [(2, 4, 5)]
