"""softmax_cross_entropy: MXNet's worked example, a wrong label made visible (NaN loss, NaN
row gradient) instead of another logit read, extreme logits, what a training bind keeps,
every dtype against the float64 oracle, and the same bits every run. (Random shapes and
the gradient check: operator_cases.py; MXNet's values: the recorded fixtures.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from operator_cases import _cross_entropy, _cross_entropy_grad
from tritonsym.ops import cross_entropy as kernels

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym
TOLERANCE = {torch.float64: 1e-13, torch.float32: 1e-6, torch.float16: 2e-3, torch.bfloat16: 2e-2}


def _net():
    return S.softmax_cross_entropy(S.Variable("data"), S.Variable("label"))


def test_mxnet_example():
    out = _net().eval(data=np.array([[1.0, 2, 3], [11, 7, 5]]), label=np.array([2.0, 0]))[0]
    np.testing.assert_allclose(out.numpy(), [0.4281871], rtol=1e-6)


@pytest.mark.parametrize("bad", [3.0, -1.0, 1.5, float("nan")])
def test_a_wrong_label_makes_the_loss_and_its_rows_gradient_nan(bad):
    exe = _net().simple_bind(ts.cpu(), data=(2, 3), type_dict={"data": "float64"},
                             grad_req={"data": "write", "label": "null"})
    out = exe.forward(is_train=True, data=np.zeros((2, 3)), label=np.array([1.0, bad]))[0]
    assert torch.isnan(out).all()
    exe.backward([torch.ones(1, dtype=torch.float64)])
    grad = exe.grad_dict["data"]
    assert torch.isnan(grad[1]).all() and torch.allclose(grad[0], torch.tensor([1 / 3, -2 / 3, 1 / 3],
                                                                              dtype=torch.float64))


def test_extreme_logits_stay_finite():
    x = np.array([[1000.0, -1000.0, 0.0], [-1e4, -1e4 + 1, -1e4]])
    out = _net().eval(data=x, label=np.array([1.0, 1.0]))[0].numpy()
    np.testing.assert_allclose(out, _cross_entropy(x, np.array([1.0, 1.0])), rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_kernels_in_every_dtype(dtype):
    rng = np.random.default_rng(4)
    x = torch.tensor(rng.normal(size=(6, 200)) * 3, dtype=dtype)
    label = torch.tensor(rng.integers(0, 200, 6), dtype=torch.int32)
    seen = x.double().numpy()
    ct = torch.float64 if dtype == torch.float64 else torch.float32
    rows, lse, out = torch.empty(6, dtype=ct), torch.empty(6, dtype=ct), torch.empty(1, dtype=dtype)
    for launch in kernels.plan_cross_entropy(x, label, out, rows, lse):
        launch()
    want = _cross_entropy(seen, label.numpy())
    np.testing.assert_allclose(out.double().numpy(), want, rtol=TOLERANCE[dtype] * 10)
    dx = torch.empty_like(x)
    kernels.plan_cross_entropy_backward(x, label, lse, torch.full((1,), 0.5, dtype=dtype), dx)[0]()
    np.testing.assert_allclose(dx.double().numpy(), _cross_entropy_grad(seen, label.numpy(), [0.5]),
                               atol=TOLERANCE[dtype] * 5)


def test_training_keeps_one_value_a_row_and_inference_none():
    train = _net().simple_bind(ts.cpu(), data=(4, 5), grad_req={"data": "write", "label": "null"})
    kept = {v.name: tuple(v.shape) for v in train.memory.values if v.kind == "saved"}
    assert list(kept.values()) == [(4,)]
    infer = _net().simple_bind(ts.cpu(), data=(4, 5), grad_req="null")
    assert not [v for v in infer.memory.values if v.kind == "saved"]


def test_same_bits_every_run():
    rng = np.random.default_rng(0)
    x, label = rng.normal(size=(300, 9)), rng.integers(0, 9, 300).astype(np.float64)
    exe = _net().simple_bind(ts.cpu(), data=(300, 9), type_dict={"data": "float32"})
    first = exe.forward(data=x, label=label)[0].clone()
    assert torch.equal(exe.forward(data=x, label=label)[0], first)


def test_shape_errors_name_the_operator():
    with pytest.raises(ShapeError, match=r"softmax_cross_entropy\d+ \(softmax_cross_entropy\): data must be "
                                         r"\(rows, classes\), got \(2, 3, 4\)"):
        _net().infer_shape(data=(2, 3, 4))
    with pytest.raises(ShapeError, match=r"label is \(3,\) but \(2,\) is expected"):
        _net().infer_shape(data=(2, 5), label=(3,))
