"""Length masks: SequenceMask on either time axis, softmax and log_softmax with use_length,
invalid lengths made visible, and the masked positions' gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tritonsym.ops import sequence_mask as kernels

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym


def test_sequence_mask_as_mxnet_on_both_axes():
    x = np.arange(12.0).reshape(3, 2, 2) * 0.1
    for axis, lengths, want_masked in ((0, [1.0, 3.0], [(1, 0), (2, 0)]), (1, [1.0, 2.0, 0.0], [(0, 1), (2, 0),
                                                                                                (2, 1)])):
        net = S.SequenceMask(S.Variable("d"), S.Variable("n"), use_sequence_length=True, value=-1.0, axis=axis)
        exe = net.simple_bind(ts.cpu(), d=(3, 2, 2), type_dict={"d": "float64"})
        out = exe.forward(is_train=True, d=x, n=np.array(lengths))[0].numpy()
        masked = {tuple(ix) for ix in np.argwhere((out == -1.0).all(-1))}
        assert masked == set(want_masked)
        exe.backward([torch.ones(3, 2, 2, dtype=torch.float64)])
        assert (exe.grad_dict["d"].numpy() == (out != -1.0)).all()


def test_the_lengths_dtype_follows_the_data_unless_given():
    net = S.SequenceMask(S.Variable("d"), S.Variable("l"), use_sequence_length=True, axis=1)
    assert net.infer_type(d="float64")[0] == [torch.float64, torch.float64]
    # half precision holds whole numbers exactly only up to 2048 (bfloat16: 256): float32 lengths
    assert net.infer_type(d="float16")[0] == [torch.float16, torch.float32]
    assert net.infer_type(d="float16", l="int32")[0] == [torch.float16, torch.int32]  # as given
    assert net.infer_shape_partial(l=(3,)) == ([None, (3,)], [None], [])


def test_without_sequence_length_it_is_a_view():
    net = S.SequenceMask(S.Variable("d"))
    assert net.list_arguments() == ["d"]
    exe = net.simple_bind(ts.cpu(), d=(4, 3), grad_req="null")
    assert exe.forward(d=np.ones((4, 3)))[0].data_ptr() == exe.arg_dict["d"].data_ptr()


def test_a_length_that_is_not_a_whole_number_in_range_makes_its_sequence_nan():
    x = torch.ones(4, 3)
    out = torch.empty_like(x)
    kernels.plan_length_mask(x, torch.tensor([2.0, 4.5, -1.0]), out, 0, 0.0, batch_axis=1)[0]()
    assert not out[:, 0].isnan().any() and out[:, 1:].isnan().all()


def test_softmax_with_length_masks_rows_and_a_row_of_length_zero_is_zero():
    net = S.softmax(S.Variable("d"), S.Variable("n"), use_length=True)
    assert net.infer_type(d="float32")[0] == [torch.float32, torch.int32]  # MXNet's lengths are integers
    exe = net.simple_bind(ts.cpu(), d=(2, 4), type_dict={"d": "float64"})
    out = exe.forward(is_train=True, d=np.zeros((2, 4)), n=np.array([3, 0]))[0].numpy()
    np.testing.assert_allclose(out, [[1 / 3, 1 / 3, 1 / 3, 0.0], [0.0, 0.0, 0.0, 0.0]])
    with pytest.raises(ShapeError, match=r"length is \(3,\) but \(2,\) is expected"):
        net.infer_shape(d=(2, 4), n=(3,))


def test_masked_positions_take_no_gradient_even_from_a_nan_head():
    net = S.softmax(S.Variable("d"), S.Variable("n"), use_length=True)
    exe = net.simple_bind(ts.cpu(), d=(1, 4), type_dict={"d": "float64"})
    exe.forward(is_train=True, d=np.array([[0.5, 1.0, 2.0, 3.0]]), n=np.array([2]))
    head = torch.tensor([[1.0, 2.0, float("nan"), 5.0]], dtype=torch.float64)
    exe.backward([head])
    grad = exe.grad_dict["d"].numpy()[0]
    assert grad[2:].tolist() == [0.0, 0.0] and np.isfinite(grad[:2]).all()


def test_log_softmax_takes_no_length_as_in_mxnet():
    with pytest.raises(ts.base.ParamError, match="log_softmax: unknown argument"):
        S.log_softmax(S.Variable("d"), use_length=True)
