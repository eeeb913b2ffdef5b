"""SequenceReverse and SequenceLast: MXNet's worked examples, invalid lengths made visible
(NaN forward, no gradient), integer lengths, every dtype against the float64 oracle, and
grad_req='add'. (Random lengths on both axes: operator_cases.py; MXNet's values: the
recorded fixtures.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from operator_cases import _sequence_last, _sequence_reverse
from tritonsym.ops import sequence_index as kernels
from tritonsym.ops._common import KernelArgumentError

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym
TOLERANCE = {torch.float64: 1e-15, torch.float32: 1e-7, torch.float16: 1e-3, torch.bfloat16: 1e-2}


def _bind(net, dtype="float64", **shapes):
    return net.simple_bind(ts.cpu(), type_dict={"x": dtype}, **shapes)


def test_mxnet_example_values():
    x = np.arange(24.0).reshape(4, 3, 2)
    lengths = np.array([1.0, 4.0, 2.0])
    last = S.SequenceLast(S.Variable("x"), S.Variable("n"), use_sequence_length=True)
    assert last.eval(x=x, n=lengths)[0].numpy().tolist() == [[0.0, 1.0], [20.0, 21.0], [10.0, 11.0]]
    rev = S.SequenceReverse(S.Variable("x"), S.Variable("n"), use_sequence_length=True)
    assert rev.eval(x=x, n=lengths)[0].numpy()[:, :, 0].tolist() == [[0, 20, 10], [6, 14, 4], [12, 8, 16],
                                                                      [18, 2, 22]]


@pytest.mark.parametrize("bad", [0.0, 5.0, 1.5, -1.0, float("nan")])
def test_an_invalid_length_makes_its_sequence_nan_and_takes_no_gradient(bad):
    x = np.arange(24.0).reshape(4, 3, 2)
    lengths = np.array([bad, 3.0, 2.0])
    for net, good in ((S.SequenceLast(S.Variable("x"), S.Variable("n"), use_sequence_length=True), [[14, 15],
                                                                                                   [10, 11]]),
                      (S.SequenceReverse(S.Variable("x"), S.Variable("n"), use_sequence_length=True), None)):
        exe = _bind(net, x=(4, 3, 2))
        out = exe.forward(is_train=True, x=x, n=lengths)[0].numpy()
        if bad == 0.0 and net.name.startswith("sequencereverse"):  # no steps to reverse: valid, unchanged
            assert np.array_equal(out[:, 0], x[:, 0])
            continue
        column = out[0] if out.ndim == 2 else out[:, 0]
        assert np.isnan(column).all()
        assert not np.isnan(out[1:] if out.ndim == 2 else out[:, 1:]).any()
        if good is not None:
            assert out[1:].tolist() == good
        exe.backward([torch.ones(out.shape, dtype=torch.float64)])
        grad = exe.grad_dict["x"].numpy()
        # every valid sequence's gradient: 2 ones (last) or the 4 x 2 ones of the head (reverse)
        assert (grad[:, 0] == 0).all() and grad[:, 1:].sum() == (2 * 2 if out.ndim == 2 else 2 * 4 * 2)


def test_integer_lengths_and_the_inferred_types():
    net = S.SequenceLast(S.Variable("x"), S.Variable("n"), use_sequence_length=True, axis=1)
    assert net.infer_type(x="float16")[0] == [torch.float16, torch.float32]  # whole numbers exact in float32
    assert net.infer_shape(x=(3, 5, 2))[1] == [(3, 2)]
    exe = net.simple_bind(ts.cpu(), x=(3, 5, 2), type_dict={"x": "float64", "n": "int32"})
    x = np.random.default_rng(0).normal(size=(3, 5, 2))
    out = exe.forward(x=x, n=np.array([5, 1, 3], dtype=np.int32))[0].numpy()
    assert np.array_equal(out, x[[0, 1, 2], [4, 0, 2]])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_kernels_in_every_dtype(dtype):
    rng = np.random.default_rng(1)
    x64 = rng.normal(size=(6, 4, 3))
    lengths = np.array([6.0, 0.0, 2.0, 5.0])
    x = torch.tensor(x64, dtype=dtype)
    seen = x.to(torch.float64).numpy()
    out = torch.empty_like(x)
    kernels.plan_sequence_reverse(x, torch.tensor(lengths), out)[0]()
    np.testing.assert_allclose(out.double().numpy(), _sequence_reverse(seen, lengths, 0), rtol=TOLERANCE[dtype])
    last = torch.empty(4, 3, dtype=dtype)
    kernels.plan_sequence_last(x, torch.tensor(lengths), last)[0]()
    assert torch.isnan(last[1]).all()  # a length of 0 has no last step
    keep = [0, 2, 3]
    np.testing.assert_allclose(last.double().numpy()[keep], _sequence_last(seen[:, keep], lengths[keep], 0),
                               rtol=TOLERANCE[dtype])


def test_backward_accumulates_with_grad_req_add():
    net = S.SequenceLast(S.Variable("x"), S.Variable("n"), use_sequence_length=True)
    exe = net.simple_bind(ts.cpu(), x=(3, 2, 2), type_dict={"x": "float64"}, grad_req={"x": "add", "n": "null"})
    exe.grad_dict["x"][...] = 1.0
    exe.forward(is_train=True, x=np.zeros((3, 2, 2)), n=np.array([2.0, 3.0]))
    exe.backward([torch.full((2, 2), 2.0, dtype=torch.float64)])
    grad = exe.grad_dict["x"].numpy()
    want = np.ones((3, 2, 2))
    want[1, 0] += 2.0
    want[2, 1] += 2.0
    assert np.array_equal(grad, want)


def test_shape_errors_name_the_operator_and_the_values():
    with pytest.raises(ShapeError, match=r"sequencelast\d+ \(SequenceLast\): data \(5,\) needs a time axis"):
        S.SequenceLast(S.Variable("x")).infer_shape(x=(5,))
    with pytest.raises(ShapeError, match=r"sequence_length is \(4,\) but \(3,\) is expected"):
        S.SequenceReverse(S.Variable("x"), S.Variable("n"), use_sequence_length=True).infer_shape(x=(5, 3), n=(4,))
    with pytest.raises(ts.base.ParamError, match="axis"):
        S.SequenceReverse(S.Variable("x"), axis=2)
    with pytest.raises(KernelArgumentError, match=r"sequence_last: the time axis must be 0 or 1"):
        kernels.plan_sequence_last(torch.zeros(4, 3, 2), None, None, axis=2)
