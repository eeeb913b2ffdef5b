"""Numerical edge cases: huge logits, -inf entries and whole -inf rows in softmax and the
softmax-output loss; activations and their gradients at +-100 and +-1e4; float16
overflow. The result is finite wherever the math is, in every dtype; where the math is
not (a row of all -inf, a float16 sum above 65504), docs/numerics.md documents what happens."""

import math

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, to_numpy

from tritonsym import ops

INF = math.inf


def _finite(t):
    return bool(torch.isfinite(t.float()).all())


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_softmax_with_huge_logits_and_infinities(dtype):
    big = 3e4 if dtype == torch.float16 else 1e4  # log-softmax reaches -2 big: still a float16
    x = torch.tensor([[big, 0.0, -big], [-INF, 1.0, 2.0], [big, big, -INF], [-INF, -INF, -INF]], dtype=dtype)
    p = ops.softmax_forward(x)
    assert _finite(p[:3]) and (p[3] == 0).all()  # a row of all -inf has no softmax: 0, never NaN
    np.testing.assert_allclose(to_numpy(p[:3]).sum(axis=1), 1.0, rtol=1e-2)
    assert p[0, 0] == 1 and p[1, 0] == 0 and p[2, 0] == p[2, 1]
    logp = ops.softmax_forward(x, log=True)
    assert logp[1, 0] == -INF and (logp[3] == -INF).all() and _finite(logp[0]) and _finite(logp[1, 1:])
    dy = torch.ones_like(x)
    grad = ops.softmax_backward(dy, p)
    assert _finite(grad)  # the -inf row's gradient is 0
    label = torch.tensor([0.0, 2.0, 1.0, 2.0])
    loss_grad = ops.softmax_output_backward(p, label)
    assert _finite(loss_grad)
    assert loss_grad[3].tolist() == [0.0, 0.0, -1.0]  # p = 0 minus the one-hot target


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("act", ops.ACTIVATIONS)
def test_activations_and_gradients_at_extremes(dtype, act):
    x = torch.tensor([-1e4, -100.0, -20.0, 0.0, 20.0, 100.0, 1e4], dtype=dtype)
    slope = 0.25 if act == "leaky" else 1.0
    y = ops.activation_forward(x, act, slope)
    assert _finite(y), f"{act}({x.tolist()}) = {y.tolist()}"
    from_output = ops.activation.grad_from_output(act, slope)
    grad = ops.activation_backward(torch.ones_like(x), y if from_output else x, act, slope, from_output=from_output)
    assert _finite(grad), f"{act}'({x.tolist()}) = {grad.tolist()}"
    if act in ("sigmoid", "tanh", "softrelu"):  # saturated ends: exact limits
        low = {"sigmoid": 0.0, "tanh": -1.0, "softrelu": 0.0}[act]
        assert y[0].item() == pytest.approx(low, abs=1e-30) and y[-1].item() == pytest.approx(
            1e4 if act == "softrelu" else 1.0, rel=1e-2)


def test_float16_overflow_gives_infinities_not_nan():
    """A float16 result above 65504 is inf, as IEEE arithmetic gives; check_finite reports it."""
    x = torch.full((2, 64), 40.0, dtype=torch.float16)
    w = torch.full((3, 64), 40.0, dtype=torch.float16)  # each output is 64 * 1600 = 102400 > 65504
    y = ops.fully_connected_forward(x, w, None)
    assert (y == INF).all()
    e = ops.unary_forward("exp", torch.tensor([11.0, 12.0], dtype=torch.float16))  # e^12 = 162755 > 65504
    assert math.isfinite(e[0].item()) and e[1].item() == INF
