"""FullyConnected kernels (ops/fully_connected.py) against the float64 oracle."""

import math

import numpy as np
import pytest
import torch
from oracles import fully_connected, fully_connected_grads
from tolerances import DTYPES_QUICK_FIRST, assert_close, poisoned, rounded, to_numpy
from tritonsym.ops import KernelArgumentError
from tritonsym.ops._common import run

from tritonsym import ops

SHAPES = [(1, 1, 1), (7, 33, 5), (33, 129, 17), (130, 70, 129), (3, 300, 2)]  # (M, K, N): none a block multiple


def _operands(rng, m, k, n, dtype):
    x = rng.uniform(-1, 1, (m, k))
    w = rng.uniform(-1, 1, (n, k)) / math.sqrt(k)
    b = rng.uniform(-1, 1, n)
    return [rounded(a, dtype) for a in (x, w, b)]


@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)
@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("act", ["none", "relu"])
def test_forward_and_backward_shapes(rng, m, k, n, dtype, act):
    x, w, b = _operands(rng, m, k, n, dtype)
    out = poisoned((m, n), dtype)
    ops.fully_connected_forward(x, w, b, act=act, out=out)
    assert_close(out, fully_connected(to_numpy(x), to_numpy(w), to_numpy(b), act), dtype, "forward")

    dy = rounded(rng.normal(size=(m, n)), dtype)
    gx, gw, gb = (poisoned(s, dtype) for s in ((m, k), (n, k), (n,)))
    act_grad = poisoned((m, n), dtype) if act != "none" else None
    for launch in ops.fully_connected.plan_fully_connected_backward(
            dy, x, w, out=out, act=act, act_grad=act_grad, grad_x=gx, grad_weight=gw, grad_bias=gb):
        launch()
    ex, ew, eb = fully_connected_grads(to_numpy(dy), to_numpy(x), to_numpy(w), to_numpy(b), act)
    scale = math.sqrt(max(m, n))  # dw and db sum m terms
    assert_close(gx, ex, dtype, "grad_x", scale)
    assert_close(gw, ew, dtype, "grad_weight", scale)
    assert_close(gb, eb, dtype, "grad_bias", scale)


@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)
@pytest.mark.parametrize("act,slope", [("sigmoid", 0), ("tanh", 0), ("softrelu", 0), ("softsign", 0),
                                       ("leaky", 0.1), ("elu", 0.7), ("selu", 0)])
def test_fused_activations(rng, dtype, act, slope):
    m, k, n = 9, 20, 11
    x, w, b = _operands(rng, m, k, n, dtype)
    y = ops.fully_connected_forward(x, w, b, act=act, slope=slope)
    assert_close(y, fully_connected(to_numpy(x), to_numpy(w), to_numpy(b), act, slope), dtype, "forward")
    dy = rounded(rng.normal(size=(m, n)), dtype)
    gx, gw, gb = ops.fully_connected_backward(dy, x, w, out=y, act=act, slope=slope)
    expected = fully_connected_grads(to_numpy(dy), to_numpy(x), to_numpy(w), to_numpy(b), act, slope)
    for got, want, what in zip((gx, gw, gb), expected, ("grad_x", "grad_weight", "grad_bias")):
        assert_close(got, want, dtype, what, scale=3.0)


ACT_GRADS = {"relu": lambda y: (y > 0).astype(float), "sigmoid": lambda y: y * (1 - y),
             "tanh": lambda y: 1 - y * y, "leaky": lambda y: np.where(y > 0, 1.0, 0.25)}


@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)
@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_input_gradient_epilogue(rng, m, k, n, dtype, act):
    """grad_x finished for the operator before, whose output x is: times act'(x), and that
    operator's bias gradient summed from the epilogue's partial sums (rows in 32-row parts,
    none of these M a multiple of 32 but 1)."""
    x, w, _ = _operands(rng, m, k, n, dtype)
    x = rounded(np.tanh(to_numpy(x)) if act == "tanh" else np.maximum(to_numpy(x), 0), dtype)
    dy = rounded(rng.normal(size=(m, n)), dtype)
    shape, acc = ops.fully_connected.bias_partials(m, k, dtype)
    gx, gb, parts = poisoned((m, k), dtype), poisoned((k,), dtype), poisoned(shape, acc)
    for launch in ops.fully_connected.plan_fully_connected_backward(
            dy, x, w, grad_x=gx, input_act=act, input_grad_bias=gb, input_partials=parts):
        launch()
    expected = (to_numpy(dy) @ to_numpy(w)) * ACT_GRADS[act](to_numpy(x))
    assert_close(gx, expected, dtype, "grad_x", math.sqrt(n))
    assert_close(gb, expected.sum(0), dtype, "grad_bias of the operator before", math.sqrt(m * n))


def test_input_gradient_epilogue_accumulates_bias_and_leaky_slope(rng):
    m, k, n = 70, 9, 5
    x, w, _ = _operands(rng, m, k, n, torch.float64)
    x = torch.where(x > 0, x, 0.25 * x)
    dy = rounded(rng.normal(size=(m, n)), torch.float64)
    start = rounded(rng.normal(size=k), torch.float64)
    gx, gb = torch.empty(m, k, dtype=torch.float64), start.clone()
    parts = torch.empty(ops.fully_connected.bias_partials(m, k, torch.float64)[0], dtype=torch.float64)
    for launch in ops.fully_connected.plan_fully_connected_backward(
            dy, x, w, grad_x=gx, input_act="leaky", input_slope=0.25, input_grad_bias=gb, input_partials=parts,
            accumulate_input_bias=True):
        launch()
    expected = (to_numpy(dy) @ to_numpy(w)) * ACT_GRADS["leaky"](to_numpy(x))
    assert_close(gx, expected, torch.float64)
    assert_close(gb, to_numpy(start) + expected.sum(0), torch.float64)


def test_input_gradient_epilogue_sums_only_real_rows():
    """A NaN in w makes the gradient's columns NaN; the bias sums see the real rows only, and
    a column untouched by the NaN stays exact."""
    m, k, n = 33, 4, 3
    x, w, dy = torch.ones(m, k, dtype=torch.float64), torch.ones(n, k, dtype=torch.float64), torch.ones(m, n,
                                                                                                   dtype=torch.float64)
    w[1, 2] = float("nan")
    gx, gb = torch.empty(m, k, dtype=torch.float64), torch.empty(k, dtype=torch.float64)
    parts = torch.empty(ops.fully_connected.bias_partials(m, k, torch.float64)[0], dtype=torch.float64)
    for launch in ops.fully_connected.plan_fully_connected_backward(
            dy, x, w, grad_x=gx, input_act="relu", input_grad_bias=gb, input_partials=parts):
        launch()
    assert torch.isnan(gx[:, 2]).all() and torch.isnan(gb[2])
    assert gb[[0, 1, 3]].tolist() == [m * n] * 3


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16], ids=["float64", "float16"])
def test_strided_operands(rng, dtype):
    """x transposed, weight transposed, output a slice of a wider buffer, no bias."""
    m, k, n = 17, 23, 9
    x = rounded(rng.normal(size=(k, m)), dtype).T
    w = rounded(rng.normal(size=(k, n)) / math.sqrt(k), dtype).T
    wide = poisoned((m, 2 * n), dtype)
    out = wide[:, ::2]
    ops.fully_connected_forward(x, w, None, out=out)
    assert_close(out, to_numpy(x) @ to_numpy(w).T, dtype, "forward")
    assert torch.isnan(wide[:, 1::2]).all(), "wrote outside the output view"


def test_accumulate_adds_to_existing_gradients(rng):
    dtype = torch.float64
    x, w, b = _operands(rng, 6, 5, 4, dtype)
    dy = rounded(rng.normal(size=(6, 4)), dtype)
    start = [rounded(rng.normal(size=s), dtype) for s in ((6, 5), (4, 5), (4,))]
    gx, gw, gb = (s.clone() for s in start)
    for launch in ops.fully_connected.plan_fully_connected_backward(
            dy, x, w, grad_x=gx, grad_weight=gw, grad_bias=gb, accumulate_x=True, accumulate_weight=True,
            accumulate_bias=True):
        launch()
    ex, ew, eb = fully_connected_grads(to_numpy(dy), to_numpy(x), to_numpy(w))
    for got, s, want in zip((gx, gw, gb), start, (ex, ew, eb)):
        assert_close(got, to_numpy(s) + want, dtype)


def test_bias_gradient_alone(rng):
    """grad_req null for the weight but not the bias: a column sum of dy alone."""
    x, w, b = _operands(rng, 40, 6, 3, torch.float64)
    dy = rounded(rng.normal(size=(40, 3)), torch.float64)
    gb = poisoned((3,), torch.float64)
    for launch in ops.fully_connected.plan_fully_connected_backward(dy, x, w, grad_bias=gb):
        launch()
    assert_close(gb, to_numpy(dy).sum(0), torch.float64)


def test_argument_errors():
    x, w = torch.zeros(4, 5), torch.zeros(3, 6)
    with pytest.raises(KernelArgumentError, match=r"x has shape \(4, 5\) but weight \(3, 6\) expects 6"):
        ops.fully_connected_forward(x, w)
    with pytest.raises(KernelArgumentError, match=r"bias has shape \(4,\) but weight expects \(3,\)"):
        ops.fully_connected_forward(torch.zeros(4, 6), w, torch.zeros(4))
    with pytest.raises(KernelArgumentError, match="weight has dtype torch.float64 but x has torch.float32"):
        ops.fully_connected_forward(torch.zeros(4, 6), w.double())
    with pytest.raises(KernelArgumentError, match="act='swish' is not"):
        ops.fully_connected_forward(torch.zeros(4, 6), w, act="swish")
    with pytest.raises(KernelArgumentError, match="precision='fast'"):
        ops.fully_connected_forward(torch.zeros(4, 6), w, precision="fast")
    with pytest.raises(KernelArgumentError, match="cannot be fused"):
        ops.fully_connected_backward(torch.zeros(4, 3), torch.zeros(4, 6), w, out=torch.zeros(4, 3), act="gelu")
    with pytest.raises(KernelArgumentError, match="needs the forward output"):
        ops.fully_connected.plan_fully_connected_backward(torch.zeros(4, 3), torch.zeros(4, 6), w, act="relu",
                                                          out=torch.zeros(4, 3))
    x, dy, dx = torch.zeros(4, 6), torch.zeros(4, 3), torch.zeros(4, 6)
    with pytest.raises(KernelArgumentError, match="needs grad_x to be written, not added into"):
        ops.fully_connected.plan_fully_connected_backward(dy, x, w, grad_x=dx, input_act="relu", accumulate_x=True)
    with pytest.raises(KernelArgumentError, match=r"input_partials must be \(1, 6\) torch.float32"):
        ops.fully_connected.plan_fully_connected_backward(dy, x, w, grad_x=dx, input_grad_bias=torch.zeros(6))
    with pytest.raises(KernelArgumentError, match="input_act='swish' is not"):
        ops.fully_connected.plan_fully_connected_backward(dy, x, w, grad_x=dx, input_act="swish")
    with pytest.raises(KernelArgumentError, match="without a copy"):
        ops.fully_connected_forward(torch.zeros(2, 3, 6).transpose(0, 1), w)
    assert np.isfinite(to_numpy(ops.fully_connected_forward(torch.zeros(1, 6), w))).all()


# (K, N, width of the buffers K-long rows are cut from, of those N-long rows are, ALIGN_K, ALIGN_N);
# the 1000 x 1000 weight (3.6 s in the interpreter) under -m slow: (40, 24, 48, 1000) keeps 8, 8 quick
ALIGNED_ROWS = [(12, 6, 12, 6, 4, 2), pytest.param(1000, 1000, 1000, 1000, 8, 8, marks=pytest.mark.slow),
                (40, 24, 48, 1000, 8, 8),
                (48, 40, 64, 48, 16, 8), (17, 10, 17, 10, 1, 2), (24, 32, 26, 32, 2, 16)]


def _cut(buffer: torch.Tensor, cols: int) -> torch.Tensor:
    return buffer[:, :cols]


@pytest.mark.parametrize("k,n,width_k,width_n,align_k,align_n", ALIGNED_ROWS, ids=lambda v: str(v))
def test_rows_whose_lengths_and_strides_are_multiples_of_fewer_than_16(rng, k, n, width_k, width_n, align_k,
                                                                       align_n):
    """The pointer kernels are told the largest power of two (up to 16) that the lengths
    and row strides of what they read and write along K and along N are multiples of
    (Triton itself only knows 16: rows of 1000 would be copied one element at a time, and
    in 16-bit types not pipelined), and compute with those values written so that the
    compiler sees it: forward, both gradients, the epilogue's partial bias sums and the
    column sum give the oracle's numbers, every matrix cut from a wider buffer."""
    m, dtype = 37, torch.float32
    x = _cut(rounded(rng.uniform(-1, 1, (m, width_k)), dtype), k)
    x = torch.relu(x)  # the output of a relu layer before this one, for the epilogue
    w = _cut(rounded(rng.uniform(-1, 1, (n, width_k)) / math.sqrt(k), dtype), k)
    b = rounded(rng.uniform(-1, 1, n), dtype)
    y = _cut(poisoned((m, width_n), dtype), n)
    forward = ops.fully_connected.plan_fully_connected_forward(x, w, b, y, act="relu")
    assert [(launch.kwargs["ALIGN_K"], launch.kwargs["ALIGN_N"]) for launch in forward] == [(align_k, align_n)]
    run(forward)
    assert_close(y, fully_connected(to_numpy(x), to_numpy(w), to_numpy(b), "relu"), dtype, "forward")

    dy = _cut(rounded(rng.normal(size=(m, width_n)), dtype), n)
    gx, gw = _cut(poisoned((m, width_k), dtype), k), _cut(poisoned((n, width_k), dtype), k)
    gb, gb_before = poisoned((n,), dtype), poisoned((k,), dtype)
    shape, acc = ops.fully_connected.bias_partials(m, k, dtype)
    parts = _cut(poisoned((shape[0], width_k), acc), k)
    backward = ops.fully_connected.plan_fully_connected_backward(
        dy, x, w, grad_x=gx, grad_weight=gw, grad_bias=gb, input_act="relu", input_grad_bias=gb_before,
        input_partials=parts)
    aligns = [(launch.kernel.fn.__name__, {key: v for key, v in launch.kwargs.items() if key.startswith("ALIGN")})
              for launch in backward]
    assert aligns == [("_column_sum_kernel", {"ALIGN": align_n}),  # this layer's bias gradient, from dy
                      ("_fc_backward_input_kernel", {"ALIGN_K": align_k, "ALIGN_N": align_n}),
                      ("_column_sum_kernel", {"ALIGN": align_k}),  # the layer before's, from the partials
                      ("_fc_backward_weight_kernel", {"ALIGN_K": align_k, "ALIGN_N": align_n})]
    run(backward)
    want_x = (to_numpy(dy) @ to_numpy(w)) * (to_numpy(x) > 0)
    assert_close(gx, want_x, dtype, "grad_x", math.sqrt(n))
    assert_close(gw, to_numpy(dy).T @ to_numpy(x), dtype, "grad_weight", math.sqrt(m))
    assert_close(gb, to_numpy(dy).sum(0), dtype, "grad_bias", math.sqrt(m))
    assert_close(gb_before, want_x.sum(0), dtype, "grad_bias of the operator before", math.sqrt(m * n))


def test_a_wrong_alignment_gives_wrong_numbers(rng, monkeypatch):
    """The alignment is computed with, not assumed: told rows of 12 are multiples of 8, the
    kernels drop 4 of each row's 12 elements (so the test above can fail)."""
    monkeypatch.setattr(ops.fully_connected, "_alignment", lambda *args: 8)
    x, w, b = _operands(rng, 5, 12, 12, torch.float64)
    y = ops.fully_connected_forward(x, w, b)
    assert not np.allclose(to_numpy(y), fully_connected(to_numpy(x), to_numpy(w), to_numpy(b)))


def test_alignment_is_the_largest_power_of_two_up_to_16_dividing_every_length_and_row_stride():
    alignment = ops.fully_connected._alignment
    assert alignment(1000, (1000, 1), (1024, 1)) == 8
    assert alignment(4096, (4096, 1), (8192, 1)) == 16  # capped: 16 is what Triton itself knows
    assert alignment(1000, (1002, 1)) == 2
    assert alignment(12, (12, 1), (1, 20)) == 1  # a transposed matrix: nothing to copy 16 bytes at a time
    assert alignment(17, (17, 1)) == 1
    assert alignment(0, (0, 1)) == 16  # empty: any alignment is right
