"""contrib.index_copy beyond its generic operator cases: against torch's index_copy (an
implementation independent of ours) in every dtype with integer indices, repeats across
blocks of indices (the last wins, the same bits every run), invalid indices making
everything NaN, grad_req='add', and refusals that name the operator and the values."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import DTYPES_QUICK_FIRST, assert_close
from tritonsym.ops import index_copy as kernels

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym


def _net():
    return S.contrib.index_copy(S.Variable("old"), S.Variable("index"), S.Variable("new"))


def _bind(old_shape, m, dtype, index_dtype, grad_req="write"):
    return _net().simple_bind(ts.cpu(), old=old_shape, index=(m,), new=(m, *old_shape[1:]),
                              grad_req={"old": grad_req, "index": "null", "new": grad_req},
                              type_dict={"old": dtype, "new": dtype, "index": index_dtype})


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)  # float64 and float16 under -m slow
def test_equals_torch_index_copy(dtype, index_dtype, rng):
    old = torch.from_numpy(rng.normal(size=(7, 3, 2))).to(dtype)
    new = torch.from_numpy(rng.normal(size=(4, 3, 2))).to(dtype)
    index = torch.tensor([5, 0, 6, 2], dtype=index_dtype)
    old_ref, new_ref = old.double().requires_grad_(), new.double().requires_grad_()
    out = old_ref.index_copy(0, index.long(), new_ref)
    head = torch.from_numpy(rng.normal(size=out.shape)).to(dtype)
    out.backward(head.double())
    exe = _bind(old.shape, 4, dtype, index_dtype)
    exe.forward(is_train=True, old=old, index=index, new=new)
    exe.backward(out_grads=head)
    assert_close(exe.outputs[0], out.detach().numpy(), dtype, "index_copy")
    assert_close(exe.grad_dict["old"], old_ref.grad.numpy(), dtype, "old's gradient")
    assert_close(exe.grad_dict["new"], new_ref.grad.numpy(), dtype, "new's gradient")


def test_repeats_across_blocks_the_last_wins_the_same_bits_every_run(rng):
    # more rows than a program owns and more indices than it compares at once; each row that
    # repeats does so across blocks of indices, and only its last row of new takes a gradient
    rows, m = kernels.BLOCK_INDICES * 2 + 10, kernels.BLOCK_INDICES * 2 + 3  # 5 programs of BLOCK_ROWS rows
    index = rng.integers(0, rows, size=m)
    index[[1, kernels.BLOCK_INDICES + 1, m - 1]] = rows - 1
    old, new = rng.normal(size=(rows, 3)), rng.normal(size=(m, 3))
    head = rng.normal(size=(rows, 3))
    exe = _bind((rows, 3), m, torch.float32, torch.int64)
    values = dict(old=torch.from_numpy(old).float(), index=torch.from_numpy(index), new=torch.from_numpy(new).float())
    exe.forward(is_train=True, **values)
    exe.backward(out_grads=torch.from_numpy(head).float())
    used = {k: v.double().numpy() for k, v in values.items()}
    assert_close(exe.outputs[0], o.index_copy(used["old"], index.astype(float), used["new"]), torch.float32,
                 "index_copy")
    dold, dnew = o.index_copy_grads(torch.from_numpy(head).float().double().numpy(), index.astype(float), rows)
    assert_close(exe.grad_dict["old"], dold, torch.float32, "old's gradient")
    assert_close(exe.grad_dict["new"], dnew, torch.float32, "new's gradient")
    assert (exe.grad_dict["new"][[1, kernels.BLOCK_INDICES + 1]] == 0).all()
    first = [exe.outputs[0].clone(), exe.grad_dict["new"].clone()]
    exe.forward(is_train=True, **values)
    exe.backward(out_grads=torch.from_numpy(head).float())
    assert torch.equal(exe.outputs[0], first[0]) and torch.equal(exe.grad_dict["new"], first[1])


@pytest.mark.parametrize("bad", [5.0, -1.0, 1.5, float("nan")])
def test_an_index_outside_the_rows_makes_everything_nan(bad, rng):
    exe = _bind((5, 2), 3, torch.float64, torch.float64)
    exe.forward(is_train=True, old=torch.from_numpy(rng.normal(size=(5, 2))),
                index=torch.tensor([0.0, bad, 2.0], dtype=torch.float64),
                new=torch.from_numpy(rng.normal(size=(3, 2))))
    exe.backward(out_grads=torch.ones(5, 2, dtype=torch.float64))
    for array in (exe.outputs[0], exe.grad_dict["old"], exe.grad_dict["new"]):
        assert torch.isnan(array).all()


def test_grad_req_add_accumulates(rng):
    values = dict(old=torch.from_numpy(rng.normal(size=(6, 4))), index=torch.tensor([2.0, 5.0, 2.0]).double(),
                  new=torch.from_numpy(rng.normal(size=(3, 4))))
    head = torch.from_numpy(rng.normal(size=(6, 4)))
    exe = _bind((6, 4), 3, torch.float64, torch.float64, grad_req="add")
    for _ in range(2):
        exe.forward(is_train=True, **values)
        exe.backward(out_grads=head)
    dold, dnew = o.index_copy_grads(head.numpy(), values["index"].numpy(), 6)
    np.testing.assert_allclose(exe.grad_dict["old"].numpy(), 2 * dold, rtol=1e-12)
    np.testing.assert_allclose(exe.grad_dict["new"].numpy(), 2 * dnew, rtol=1e-12)


def test_refusals_name_the_operator_and_the_values():
    with pytest.raises(ShapeError, match=r"_contrib_index_copy.*new_tensor \(6, 2\) must hold rows of old_tensor "
                                         r"\(5, 2\), at most as many"):
        _net().infer_shape(old=(5, 2), index=(6,), new=(6, 2))
    with pytest.raises(ShapeError, match=r"_contrib_index_copy.*new_tensor \(2, 3\) must hold rows of old_tensor"):
        _net().infer_shape(old=(5, 2), index=(2,), new=(2, 3))
    with pytest.raises(ShapeError, match=r"_contrib_index_copy.*index_vector of shape \(2, 1\) must be a vector"):
        _net().infer_shape(old=(5, 2), index=(2, 1), new=(2, 2))
    with pytest.raises(ShapeError, match=r"_contrib_index_copy.*one row per index: index_vector is \(3,\)"):
        _net().infer_shape(old=(5, 2), index=(3,), new=(2, 2))
    with pytest.raises(Exception, match=r"index.*float16.*3000"):
        _bind((3000, 2), 2, torch.float32, torch.float16)


def test_infers_new_and_the_index_from_old():
    args, outs, _ = _net().infer_shape(old=(7, 3), index=(4,))
    assert args == [(7, 3), (4,), (4, 3)] and outs == [(7, 3)]
