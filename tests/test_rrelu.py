"""LeakyReLU's rrelu (randomized leaky ReLU): in training each element's negative slope is
drawn from [lower_bound, upper_bound), anew each step and as a seed repeats it, and backward
uses the very slopes forward drew; in inference the slope is their mean. (Fixed-slope and
positive-data values and gradients in every dtype: operator_cases.py; MXNet 1.9.1: the
recorded LeakyReLU/rrelu cases.)"""

from __future__ import annotations

import pytest
import torch

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym


def _bind(**params):
    net = S.LeakyReLU(S.Variable("x"), act_type="rrelu", name="r", **params)
    exe = net.simple_bind(ts.cpu(), x=(64, 33), type_dict={"x": torch.float64})
    exe.arg_dict["x"][...] = -1.0 - torch.arange(64 * 33, dtype=torch.float64).reshape(64, 33) / 1000
    return exe


def test_slopes_are_drawn_in_their_range_each_step_and_backward_reads_the_same_ones():
    exe = _bind(lower_bound=0.1, upper_bound=0.3)
    x = exe.arg_dict["x"]
    ts.random.seed(11)
    first = (exe.forward(is_train=True)[0] / x).clone()
    assert 0.1 <= first.min() and first.max() < 0.3
    assert abs(first.mean().item() - 0.2) < 0.01 and first.std().item() > 0.05  # uniform: sd 0.058
    exe.backward([torch.ones_like(x)])
    torch.testing.assert_close(exe.grad_dict["x"], first, rtol=1e-15, atol=0)  # (y / x rounds)
    second = exe.forward(is_train=True)[0] / x
    assert not torch.equal(first, second)
    ts.random.seed(11)
    torch.testing.assert_close(exe.forward(is_train=True)[0] / x, first, rtol=0, atol=0)
    torch.testing.assert_close(exe.forward(is_train=False)[0] / x, torch.full_like(x, 0.2), rtol=1e-15, atol=0)


def test_a_nan_input_has_a_nan_gradient_and_positive_inputs_pass():
    exe = _bind()
    exe.arg_dict["x"][0, :3] = torch.tensor([float("nan"), 2.0, 0.0], dtype=torch.float64)
    out = exe.forward(is_train=True)[0]
    exe.backward([torch.full_like(out, 3.0)])
    assert torch.isnan(out[0, 0]) and out[0, 1] == 2.0 and out[0, 2] == 0.0
    grad = exe.grad_dict["x"]
    assert torch.isnan(grad[0, 0]) and grad[0, 1] == 3.0 and 0.125 * 3 <= grad[0, 2] < 0.334 * 3
    assert torch.isfinite(grad[1:]).all()


def test_bounds_the_wrong_way_round_are_refused():
    with pytest.raises(ShapeError, match=r"lower_bound=0.5 is above upper_bound=0.2"):
        _bind(lower_bound=0.5, upper_bound=0.2)


def test_the_draws_do_not_depend_on_how_a_launch_is_split():
    """Six axes that cannot merge make the kernel launch once per slice of the smallest axis:
    each element still draws at its own row-major place, as one launch over the contiguous
    data draws it."""
    from tritonsym.ops import rrelu
    from tritonsym.ops._common import run

    state = ts.random.device_state("cpu")
    x = -torch.ones(2, 3, 2, 3, 2, 3, dtype=torch.float64)
    permuted = x.permute(5, 4, 3, 2, 1, 0).contiguous().permute(5, 4, 3, 2, 1, 0)  # x's values, other strides
    whole, split = torch.empty_like(x), torch.empty_like(x)
    launches = rrelu.plan_rrelu(permuted, split, state, lower=0.125, upper=0.334, salt=5)
    assert len(launches) > 1
    run(launches + rrelu.plan_rrelu(x, whole, state, lower=0.125, upper=0.334, salt=5))
    torch.testing.assert_close(split, whole, rtol=0, atol=0)
    assert len(set(whole.reshape(-1).tolist())) == whole.numel()
