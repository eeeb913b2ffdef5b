"""Activation kernels (ops/activation.py) against the float64 oracle."""

import numpy as np
import pytest
import torch
from oracles import act, act_grad
from tolerances import DTYPE_IDS, DTYPES, assert_close, poisoned, rounded, to_numpy
from tritonsym.ops import KernelArgumentError
from tritonsym.ops.activation import grad_from_output

from tritonsym import ops

CASES = [("relu", 0.0), ("sigmoid", 0.0), ("tanh", 0.0), ("softrelu", 0.0), ("softsign", 0.0), ("leaky", 0.1),
         ("leaky", -0.3), ("elu", 1.3), ("selu", 0.0), ("gelu", 0.0), ("gelu_tanh", 0.0), ("silu", 0.0)]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind,slope", CASES)
def test_forward_and_backward(rng, kind, slope, dtype):
    x = rounded(rng.normal(scale=3.0, size=(33, 65)), dtype)
    y = poisoned(x.shape, dtype)
    ops.activation_forward(x, kind, slope, out=y)
    assert_close(y, act(to_numpy(x), kind, slope), dtype, "forward")
    dy = rounded(rng.normal(size=x.shape), dtype)
    expected = to_numpy(dy) * act_grad(to_numpy(x), kind, slope)
    from_input = ops.activation_backward(dy, x, kind, slope, from_output=False, grad_in=poisoned(x.shape, dtype))
    assert_close(from_input, expected, dtype, "backward from input")
    if grad_from_output(kind, slope):
        from_output = ops.activation_backward(dy, y, kind, slope, from_output=True, grad_in=poisoned(x.shape, dtype))
        assert_close(from_output, expected, dtype, "backward from output", scale=2.0)


def test_extreme_inputs_stay_finite():
    x = torch.tensor([-1000.0, -100.0, -20.0, -1e-8, 0.0, 1e-8, 20.0, 100.0, 1000.0], dtype=torch.float32)
    for kind in ("sigmoid", "tanh", "softrelu", "softsign", "elu", "selu", "gelu", "gelu_tanh", "silu"):
        y = ops.activation_forward(x, kind, 1.0)
        assert torch.isfinite(y).all(), kind
        assert_close(y, act(to_numpy(x), kind, 1.0), torch.float32, kind)
    # small inputs keep their digits (tanh(x) ~ x, softrelu ~ exp(x))
    tiny = torch.tensor([1e-10, -3e-9], dtype=torch.float64)
    assert_close(ops.activation_forward(tiny, "tanh"), np.tanh(to_numpy(tiny)), torch.float64)
    assert_close(ops.activation_forward(torch.tensor([-40.0], dtype=torch.float64), "softrelu"),
                 np.logaddexp(0, [-40.0]), torch.float64)


@pytest.mark.parametrize("kind", ["gelu", "gelu_tanh", "silu"])
def test_gelus_and_silu_equal_torch_in_float64(kind, rng):
    """gelu is torch's exact GELU, gelu_tanh its approximate="tanh" (GPT-2's), silu torch's
    silu, forward and backward, in float64 and out to where they saturate."""
    x = torch.tensor(np.concatenate([rng.normal(scale=3.0, size=200), [-30.0, -8.0, 0.0, 8.0, 30.0]]),
                     requires_grad=True)
    want = {"gelu": torch.nn.functional.gelu, "gelu_tanh": lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
            "silu": torch.nn.functional.silu}[kind](x)
    want.backward(torch.ones_like(x))
    x, grad = x.detach(), x.grad
    torch.testing.assert_close(ops.activation_forward(x, kind), want.detach(), rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(ops.activation_backward(torch.ones_like(x), x, kind, from_output=False), grad,
                               rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind,slope", CASES)
def test_gradient_at_the_kink_follows_mxnet(kind, slope, dtype):
    """At x = 0 (either sign) the gradient takes the x <= 0 branch, as MXNet's
    ``x > 0 ? ... : ...`` does, and just beside 0 the branch of its side: random inputs never
    land exactly on 0, so a kernel testing ``x >= 0`` would pass every other test (found by
    scripts/mutation_check.py)."""
    x = torch.tensor([-0.0, 0.0, 1e-30, -1e-30, 5e-45, -5e-45], dtype=torch.float64).to(dtype)
    dy = torch.full(x.shape, 3.0, dtype=dtype)
    expected = 3.0 * act_grad(to_numpy(x), kind, slope)
    y = ops.activation_forward(x, kind, slope)
    assert_close(ops.activation_backward(dy, x, kind, slope, from_output=False), expected, dtype, "from input")
    if grad_from_output(kind, slope):
        assert_close(ops.activation_backward(dy, y, kind, slope, from_output=True), expected, dtype, "from output")


def test_strided_and_accumulate(rng):
    base = rounded(rng.normal(size=(8, 12)), torch.float64)
    x = base.T[::2]  # (6, 8) non-contiguous
    y = poisoned((6, 8), torch.float64)
    ops.activation_forward(x, "tanh", out=y)
    assert_close(y, np.tanh(to_numpy(x)), torch.float64)
    dy = torch.ones(1, 8, dtype=torch.float64).expand(6, 8)  # stride-0 gradient
    g = torch.full((6, 8), 2.0, dtype=torch.float64)
    ops.activation_backward(dy, y, "tanh", grad_in=g, accumulate=True)
    assert_close(g, 2.0 + (1 - np.tanh(to_numpy(x)) ** 2), torch.float64)


def test_errors():
    with pytest.raises(KernelArgumentError, match="act_type='swish' is not one of"):
        ops.activation_forward(torch.zeros(3), "swish")
    with pytest.raises(KernelArgumentError, match="needs the input"):
        ops.activation_backward(torch.zeros(3), torch.zeros(3), "gelu", from_output=True)
    with pytest.raises(KernelArgumentError, match="zero stride"):
        ops.activation_forward(torch.zeros(3), "relu", out=torch.zeros(1).expand(3))
    with pytest.raises(KernelArgumentError, match="dtype int64"):
        ops.activation_forward(torch.zeros(3, dtype=torch.int64), "relu")
