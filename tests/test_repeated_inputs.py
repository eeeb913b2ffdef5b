"""One array read at several inputs of one operator (x * x, BatchNorm(data, y, y),
self-attention on one array): its gradient is the sum over the inputs it plays, whatever
order the operator's kernels store them in. BatchNorm stored beta's gradient before gamma's,
and attention the key's and value's before the query's, so the first input's write lost the
rest: a silently wrong gradient. Checked by finite differences in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gradcheck import check_gradients

import tritonsym as ts

S = ts.sym


_VARIABLES: dict[str, object] = {}


def _x(name="x"):
    """One variable per name in each case (two Variables of one name are refused at bind)."""
    if name not in _VARIABLES:
        _VARIABLES[name] = S.Variable(name, dtype="float64")
    return _VARIABLES[name]


@pytest.fixture(autouse=True)
def _fresh_variables():
    _VARIABLES.clear()


def _batch_norm_of_rows():
    """BatchNorm(data, y, y): gamma and beta one array (data (3, 6) made from x)."""
    row = S.reshape(_x(), shape=(1, 6))
    data = S.Concat(row, row * 2.0 + 1.0, row * -0.5, dim=0)
    return S.BatchNorm(data, _x("y"), _x("y"), fix_gamma=False), {"x": (6,), "y": (6,)}


CASES = {  # name: (symbol, argument shapes)
    "x * x": lambda: (_x() * _x(), {"x": (3, 4)}),
    "x / x": lambda: (_x() / (_x() * _x()), {"x": (3, 4)}),
    "broadcast_mul(x, x)": lambda: (S.broadcast_mul(_x(), _x()), {"x": (3, 4)}),
    "dot(x, x^T)": lambda: (S.dot(_x(), _x(), transpose_b=True), {"x": (3, 4)}),
    "batch_dot(x^T, x)": lambda: (S.batch_dot(_x(), _x(), transpose_a=True), {"x": (2, 3, 4)}),
    "Concat(x, x)": lambda: (S.Concat(_x(), _x(), dim=1), {"x": (3, 4)}),
    "FullyConnected(x, weight=x)": lambda: (S.FullyConnected(_x(), weight=_x(), bias=_x("b"), num_hidden=4),
                                            {"x": (4, 4), "b": (4,)}),
    "LayerNorm(x, x, x)": lambda: (S.LayerNorm(_x(), _x(), _x()), {"x": (6,)}),
    "BatchNorm(data, y, y)": _batch_norm_of_rows,
    "attention(x, x, x)": lambda: (S.ScaledDotProductAttention(_x(), _x(), _x(), causal=True), {"x": (1, 2, 9, 4)}),
    "attention(x, y, x)": lambda: (S.ScaledDotProductAttention(_x(), _x("y"), _x()), {"x": (1, 2, 9, 4),
                                                                                      "y": (1, 2, 9, 4)}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_gradient_of_an_array_read_at_several_inputs(case, rng):
    symbol, shapes = CASES[case]()
    values = {name: rng.normal(size=shape) for name, shape in shapes.items()}
    if case.startswith("x / x"):
        values["x"] = np.abs(values["x"]) + 0.5
    check_gradients(symbol, values, [None], rng)


@pytest.mark.parametrize("grad_req", ["write", "add"])
def test_batch_norm_gamma_and_beta_one_array_through_scratch(grad_req, rng):
    """The later input's gradient goes to scratch of the step and is added in after it (a
    copy-add launch); with grad_req='add' both add to what the array held."""
    symbol, shapes = _batch_norm_of_rows()
    exe = symbol.simple_bind(ts.cpu(), type_dict={n: "float64" for n in shapes}, grad_req=grad_req, **shapes)
    step = next(s for s in exe._program.backward_steps if s.op.name == "BatchNorm")
    assert [(scratch.kind, grad.name) for scratch, grad in step.repeated_grads] == [("temp", "y_grad")]
    values = {name: rng.normal(size=shape) for name, shape in shapes.items()}
    for name, value in values.items():
        exe.arg_dict[name][...] = torch.as_tensor(value)
        exe.grad_dict[name][...] = 0.5
    head = rng.normal(size=(3, 6))
    exe.forward(is_train=True)
    exe.backward([torch.as_tensor(head)])
    x, y = (torch.tensor(values[n], requires_grad=True) for n in "xy")
    data = torch.stack([x, x * 2.0 + 1.0, x * -0.5])
    mean, var = data.mean(0), data.var(0, unbiased=False)
    ((data - mean) / torch.sqrt(var + 1e-3) * y + y).backward(torch.as_tensor(head))
    for name, t in (("x", x), ("y", y)):
        np.testing.assert_allclose(exe.grad_dict[name].numpy(), t.grad.numpy() + (0.5 if grad_req == "add" else 0),
                                   rtol=1e-10, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("case", ["x * x", "broadcast_mul(x, x)", "dot(x, x^T)", "batch_dot(x^T, x)",
                                  "Concat(x, x)", "attention(x, x, x)"])
def test_operators_that_store_in_input_order_need_no_scratch(case):
    """They declare it (``repeated_input_grads``): one kernel storing each element's
    gradients in order, or one launch per input gradient in input order: no scratch, no
    extra launch (their gradients are checked above)."""
    symbol, shapes = CASES[case]()
    exe = symbol.simple_bind(ts.cpu(), **shapes)
    assert all(not s.repeated_grads for s in exe._program.backward_steps)
