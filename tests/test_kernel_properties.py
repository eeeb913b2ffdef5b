"""Property tests (hypothesis) of the kernels against the numpy oracles: random shapes
(including 1 and sizes just above the interpreter's block sizes), random strided layouts,
every dtype, random value scales. Each test reports how many cases it ran."""

import numpy as np
import oracles
import pytest
import torch
from property_settings import given, property_settings, settings, st
from test_properties import layouts, strided
from tolerances import DTYPES, assert_close, rounded, to_numpy

from tritonsym import ops

SETTINGS = property_settings(40)
FC_SIZES = [1, 2, 17, 127, 128, 129, 257]  # around the 128-wide tiles the interpreter runs
SOFTMAX_COLS = [1, 2, 33, 1025, (1 << 16) + 1]  # the last one takes the looped (online) path in the interpreter
CASES: dict[str, int] = {}


def _count(name):
    CASES[name] = CASES.get(name, 0) + 1


@settings(**SETTINGS)
@given(layouts(), st.sampled_from(DTYPES), st.sampled_from(ops.ACTIVATIONS), st.sampled_from([0.1, 1.0, 30.0]),
       st.integers(0, 2**31 - 1))
def test_activations_on_random_layouts(layout, dtype, act, scale, seed):
    _count("activation")
    shape = layout[0]
    x = strided(np.random.default_rng(seed).normal(scale=scale, size=shape), *layout[1:], dtype=dtype)
    slope = 0.2 if act in ("leaky", "elu") else 0.0
    y = ops.activation_forward(x, act, slope)
    expected = oracles.act(to_numpy(x), act, slope)
    assert_close(y, expected, dtype, f"{act} forward")


@settings(**SETTINGS)
@given(st.integers(1, 4), st.sampled_from(SOFTMAX_COLS), st.sampled_from(DTYPES), st.booleans(),
       st.sampled_from([1.0, 50.0]), st.integers(0, 2**31 - 1))
def test_softmax_forward_backward_random_sizes(rows, cols, dtype, log, scale, seed):
    _count("softmax")
    rng = np.random.default_rng(seed)
    x = rounded(rng.normal(scale=scale, size=(rows, cols)), dtype)
    out = ops.softmax_forward(x, log=log)
    xs = to_numpy(x)
    assert_close(out, oracles.log_softmax(xs) if log else oracles.softmax(xs), dtype, "softmax forward")
    dy = rounded(rng.normal(size=(rows, cols)), dtype)
    grad = ops.softmax_backward(dy, out, log=log)
    expected = (oracles.log_softmax_grad if log else oracles.softmax_grad)(to_numpy(dy), xs)
    assert_close(grad, expected, dtype, "softmax backward", scale=10.0)


@pytest.mark.slow  # 9 s of generated cases (the quick run stays under 5 minutes)
@settings(**SETTINGS)
@given(st.sampled_from(FC_SIZES), st.sampled_from(FC_SIZES), st.sampled_from(FC_SIZES),
       st.sampled_from([torch.float64, torch.float32]), st.booleans(), st.booleans(), st.sampled_from(
           ["none", "relu", "sigmoid"]), st.integers(0, 2**31 - 1))
def test_fully_connected_random_sizes_and_transposed_inputs(m, n, k, dtype, transpose_x, with_bias, act, seed):
    _count("fully_connected")
    rng = np.random.default_rng(seed)
    xs, ws, bs = rng.normal(size=(m, k)), rng.normal(size=(n, k)) / np.sqrt(k), rng.normal(size=n)
    x = rounded(xs.T, dtype).T if transpose_x else rounded(xs, dtype)  # a transposed view: strides (1, m)
    w = rounded(ws, dtype)
    b = rounded(bs, dtype) if with_bias else None
    y = ops.fully_connected_forward(x, w, b, act=act)
    assert_close(y, oracles.fully_connected(to_numpy(x), to_numpy(w), to_numpy(b) if with_bias else None, act),
                 dtype, "fc forward", scale=k ** 0.5)
    dy = rounded(rng.normal(size=(m, n)), dtype)
    dx, dw, db = ops.fully_connected_backward(dy, x, w, out=y, act=act, need_bias=with_bias)
    ex, ew, eb = oracles.fully_connected_grads(to_numpy(dy), to_numpy(x), to_numpy(w),
                                               to_numpy(b) if with_bias else None, act)
    assert_close(dx, ex, dtype, "fc grad x", scale=n ** 0.5)
    assert_close(dw, ew, dtype, "fc grad weight", scale=m ** 0.5)
    if with_bias:
        assert_close(db, eb, dtype, "fc grad bias", scale=m ** 0.5)


LOSS_COLS = [1, 2, 17, 1025, (1 << 14) + 1]  # the last one spans two column blocks in the interpreter


@pytest.mark.slow  # 16 s of generated cases (the quick run stays under 5 minutes)
@settings(**SETTINGS)
@given(st.integers(1, 12), st.sampled_from(LOSS_COLS), st.sampled_from(DTYPES), st.sampled_from(["null", "batch",
       "valid"]), st.booleans(), st.sampled_from([0.0, 0.1]), st.sampled_from([1.0, 0.5]),
       st.sampled_from([torch.float32, torch.int64]), st.integers(0, 2**31 - 1))
def test_softmax_output_gradient_random_sizes_and_options(rows, cols, dtype, normalization, use_ignore, smooth_alpha,
                                                          grad_scale, label_dtype, seed):
    _count("softmax_output")
    rng = np.random.default_rng(seed)
    x = rounded(rng.normal(scale=3.0, size=(rows, cols)), dtype)
    labels = rng.integers(0, cols, rows)
    ignore_label = int(labels[0])  # a class that occurs: with use_ignore those rows get no gradient
    label = torch.as_tensor(labels).to(label_dtype)
    options = dict(normalization=normalization, use_ignore=use_ignore, ignore_label=float(ignore_label),
                   smooth_alpha=smooth_alpha, grad_scale=grad_scale)
    grad = ops.softmax_output_backward(ops.softmax_forward(x), label, **options)
    expected = oracles.softmax_output_grad(to_numpy(x), labels.astype(np.float64), **options)
    assert_close(grad, expected, dtype, "softmax output gradient")


# Scalars by operator: any for the additive ones, no 0 to divide by, integer (with negative
# bases) and fractional exponents, positive bases for rpower.
SCALARS = {"plus": [-3.5, 0.0, 0.25, 1000.0], "minus": [-3.5, 0.0, 0.25, 1000.0],
           "rminus": [-3.5, 0.0, 0.25, 1000.0], "mul": [-3.5, -1.0, 0.0, 0.25, 1000.0],
           "div": [-3.5, -1.0, 0.25, 1000.0], "rdiv": [-3.5, 1.0, 0.25, 100.0],
           "power": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0, -1.0, -2.0, -3.0, 0.5, 2.5, -1.5],
           "rpower": [0.5, 1.0, 2.0, 10.0], "maximum": [-1.0, 0.0, 0.75, 1.0], "minimum": [-1.0, 0.0, 0.75, 1.0],
           **dict.fromkeys(ops.elementwise.COMPARISONS, [-1.0, 0.0, 0.75, 1.0, 1.5]),  # ties where values round
           "smooth_l1": [0.0, 0.5, 1.0, 3.0], "hard_sigmoid": [0.2, 1.0, 3.0], "hypot": [0.0, 0.5, 3.0],
           "mod": [0.75, 3.0, -2.5, 1e-3], "rmod": [0.75, 3.0, -2.5, 1e6],  # exact: any quotient, any ties
           **dict.fromkeys(ops.elementwise.LOGICAL, [0.0, 1.0, -2.5])}


@st.composite
def elementwise_calls(draw):
    """(kind, op, scalar): a scalar or unary operator with an argument that suits it."""
    if draw(st.booleans()):
        op = draw(st.sampled_from(ops.SCALAR_OPS))
        return "scalar", op, draw(st.sampled_from(SCALARS[op]))
    return "unary", draw(st.sampled_from(ops.UNARY_OPS)), None


@settings(**SETTINGS)
@given(elementwise_calls(), layouts(), st.sampled_from(DTYPES), st.booleans(), st.integers(0, 2**31 - 1))
def test_scalar_and_unary_operators_on_random_layouts(call, layout, dtype, accumulate, seed):
    """Forward and backward (given the input and output as the executor does, writing or
    accumulating) of a strided input, in ``[0.5, 2]`` in magnitude (quotients, logs and
    powers stay well conditioned), negative too where the math allows; a unary function's
    inside its domain (``oracles.unary_domain``)."""
    kind, op, s = call
    _count(f"{kind} elementwise")
    rng = np.random.default_rng(seed)
    shape = layout[0]
    values = rng.uniform(0.5, 2.0, shape)
    if not (op in ("log", "sqrt") or (op == "power" and not float(s).is_integer())):
        values = values * rng.choice([-1.0, 1.0], shape)
    if kind == "unary" and op in (*ops.unary_math.INVERSE_TRIG, "tan", "gamma", "gammaln", "erfinv"):
        values = oracles.unary_domain(op, rng, shape)
    x = strided(values, *layout[1:], dtype=dtype)
    dy = rounded(rng.normal(size=shape), dtype)
    start = rounded(rng.normal(size=shape), dtype)
    grad = start.clone()
    xs = to_numpy(x)
    if kind == "scalar":
        out = ops.scalar_forward(op, x, s)
        expected, expected_grad = oracles.scalar(op, xs, s), oracles.scalar_grad(op, to_numpy(dy), xs, s)
        ops.scalar_backward(op, dy, s, x=x, out=out, grad_x=grad, accumulate=accumulate)
    else:
        out = ops.unary_forward(op, x)
        expected, expected_grad = oracles.UNARY[op](xs), oracles.unary_grad(op, to_numpy(dy), xs)
        ops.unary_backward(op, dy, x=x, out=out, grad_x=grad, accumulate=accumulate)
    where = f"{op}({'' if s is None else s}) on {shape}"
    assert_close(out, expected, dtype, f"{where} forward")
    if accumulate:
        expected_grad = expected_grad + to_numpy(start)
    assert_close(grad, expected_grad, dtype, f"{where} backward", scale=2.0)
