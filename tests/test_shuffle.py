"""_shuffle (MXNet's random.shuffle): a permutation of the first axis, drawn anew every call
(training or not) from tritonsym.random's seed, every order about equally often, and a
gradient that takes each slice's head back to where the slice came from. (Its value and
gradient through a sum, in every dtype: operator_cases.py; MXNet 1.9.1: the recorded
_shuffle case.)"""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym


def _bind(shape, dtype=torch.float64):
    exe = S.random.shuffle(S.Variable("x")).simple_bind(ts.cpu(), x=shape, type_dict={"x": dtype})
    exe.arg_dict["x"][...] = torch.arange(np.prod(shape), dtype=torch.float64).reshape(shape)
    return exe


def _order(out: torch.Tensor) -> tuple:
    """Which slice of the arange input each output slice is."""
    first = out.reshape(out.shape[0], -1)[:, 0].to(torch.float64)
    return tuple(int(v) // (out.numel() // out.shape[0]) for v in first)


def test_each_call_draws_a_new_permutation_and_a_seed_repeats_them():
    exe = _bind((20, 3, 2))
    ts.random.seed(7)
    orders = [_order(exe.forward(is_train=is_train)[0]) for is_train in (False, True, False)]
    assert all(sorted(o) == list(range(20)) for o in orders)  # permutations
    assert len(set(orders)) == 3 and orders[0] != tuple(range(20))
    ts.random.seed(7)
    assert _order(exe.forward(is_train=False)[0]) == orders[0]
    out = exe.outputs[0]
    rows = exe.arg_dict["x"][list(orders[0])]
    torch.testing.assert_close(out, rows, rtol=0, atol=0)  # whole slices move, their insides unchanged


@pytest.mark.slow  # 17 s in the interpreter
def test_every_order_is_about_equally_likely():
    exe = _bind((3, 2), torch.bfloat16)  # any dtype: the keys are float64 whatever the data's
    counts = collections.Counter(_order(exe.forward()[0]) for _ in range(300))
    assert len(counts) == 6 and min(counts.values()) >= 25 and max(counts.values()) <= 80, counts  # 50 each


def test_the_gradient_takes_each_head_slice_back_to_where_it_came_from(rng):
    exe = S.random.shuffle(S.Variable("x")).simple_bind(ts.cpu(), x=(9, 4), type_dict={"x": torch.float64})
    x = torch.from_numpy(rng.normal(size=(9, 4)))
    exe.arg_dict["x"][...] = x
    out = exe.forward(is_train=True)[0].clone()
    exe.backward([out * 3.0])  # the head of each output slice: three times the slice it holds
    torch.testing.assert_close(exe.grad_dict["x"], x * 3.0, rtol=0, atol=0)


def test_a_scalar_is_refused():
    with pytest.raises(ShapeError, match=r"_shuffle.*data must have a first axis to shuffle along"):
        S.random.shuffle(S.Variable("x")).infer_shape(x=())
