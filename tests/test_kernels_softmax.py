"""Softmax, log-softmax and softmax-output kernels against the float64 oracle."""

import math

import numpy as np
import pytest
import torch
from oracles import log_softmax, log_softmax_grad, softmax, softmax_grad, softmax_output_grad, softmax_output_target
from tolerances import DTYPE_IDS, DTYPES, assert_close, poisoned, rounded, to_numpy
from tritonsym.ops import KernelArgumentError
from tritonsym.ops import softmax as softmax_module
from tritonsym.ops._common import run

from tritonsym import ops

SHAPES_AXES = [((1, 1), -1), ((7, 3), -1), ((33, 129), -1), ((4, 5, 6), 1), ((4, 5, 6), 0), ((3, 1025), -1)]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape,axis", SHAPES_AXES)
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_forward_and_backward(rng, shape, axis, log, dtype):
    x = rounded(rng.normal(scale=3.0, size=shape), dtype)
    y = ops.softmax_forward(x, axis, log=log, out=poisoned(shape, dtype))
    assert_close(y, (log_softmax if log else softmax)(to_numpy(x), axis), dtype, "forward")
    dy = rounded(rng.normal(size=shape), dtype)
    g = ops.softmax_backward(dy, y, axis, log=log, grad_in=poisoned(shape, dtype))
    expected = (log_softmax_grad if log else softmax_grad)(to_numpy(dy), to_numpy(x), axis)
    assert_close(g, expected, dtype, "backward", scale=4.0)


def _untuned_loop(monkeypatch, max_block, loop_block, persistent=False):
    """Rows wider than ``max_block`` loop ``loop_block`` columns a step, with one program
    per row or (persistent) three programs taking rows in turn, as the interpreter runs
    the looped kernels (on a GPU the autotuner picks among these)."""
    monkeypatch.setattr(softmax_module, "MAX_BLOCK", max_block)
    monkeypatch.setattr(softmax_module, "LOOP_BLOCK", loop_block)
    monkeypatch.setattr(softmax_module, "UNTUNED_PERSISTENT", persistent)


@pytest.mark.parametrize("persistent", [False, True], ids=["row per program", "persistent"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.float64, id="float64", marks=pytest.mark.slow),
                                   pytest.param(torch.bfloat16, id="bfloat16")])
@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_wide_rows_take_the_looped_path(rng, monkeypatch, log, dtype, persistent):
    """Rows wider than one block: an online max/sum pass, then a writing pass; seven rows,
    so persistent programs take two or three each. The gradient also adds into one."""
    _untuned_loop(monkeypatch, 64, 32, persistent)
    x = rounded(rng.normal(scale=5.0, size=(7, 200)), dtype)
    y = ops.softmax_forward(x, log=log, out=poisoned((7, 200), dtype))
    assert_close(y, (log_softmax if log else softmax)(to_numpy(x)), dtype)
    dy = rounded(rng.normal(size=(7, 200)), dtype)
    g = ops.softmax_backward(dy, y, log=log, grad_in=poisoned((7, 200), dtype))
    expected = (log_softmax_grad if log else softmax_grad)(to_numpy(dy), to_numpy(x))
    assert_close(g, expected, dtype, scale=4.0)
    start = rounded(rng.normal(size=(7, 200)), dtype)
    added = ops.softmax_backward(dy, y, log=log, grad_in=start.clone(), accumulate=True)
    assert_close(added, to_numpy(start) + expected, dtype, scale=4.0)


def _split_rows(monkeypatch, max_block, loop_block, programs):
    """Rows wider than ``max_block`` and fewer than 1000 split into chunks of whole
    ``loop_block`` steps, for about ``programs`` programs (as a few wide rows run on a GPU)."""
    _untuned_loop(monkeypatch, max_block, loop_block)
    monkeypatch.setattr(softmax_module, "SPLIT_BELOW_ROWS", 1000)
    monkeypatch.setattr(softmax_module, "SPLIT_PROGRAMS", programs)
    monkeypatch.setattr(softmax_module, "SPLIT_MIN_STEPS", 1)


# float64 and float16 of the plain rows, and float64 of the strided ones, under "-m slow" (CI runs them).
SPLIT_CASES = [pytest.param((3, 203), -1, dtype, marks=() if dtype == torch.float32
                            else pytest.mark.slow) for dtype in DTYPES]
SPLIT_CASES += [pytest.param((2, 203, 3), 1, torch.float64, marks=pytest.mark.slow),
                pytest.param((2, 203, 3), 1, torch.bfloat16, marks=pytest.mark.slow), ((1, 8), 0, torch.float32)]


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape,axis,dtype", SPLIT_CASES, ids=lambda v: str(v).replace("torch.", "").replace(" ", ""))
def test_few_wide_rows_split_across_programs(rng, monkeypatch, shape, axis, log, dtype):
    """Three rows of 203 columns in chunks of 32 (four 8-wide steps, the last chunk 11
    columns): 7 programs a row write partial maxima and sums, 7 combine them and write. One
    chunk of the first row is all -inf, so its partial max is -inf. Along a middle axis the
    rows are strided (six rows, four chunks of 56); (1, 8) along axis 0 has 8 rows of 1
    column, which do not split."""
    _split_rows(monkeypatch, max_block=16, loop_block=8, programs=24)
    rows, cols = math.prod(shape) // shape[axis], shape[axis]
    assert softmax_module.row_split(rows, cols) == {3: (7, 32), 6: (4, 56), 8: (1, 1)}[rows]
    x = rng.normal(scale=5.0, size=shape)
    if cols == 203:
        np.moveaxis(x, axis, -1)[0, ..., 64:96] = -np.inf
    x = rounded(x, dtype)
    y = ops.softmax_forward(x, axis, log=log, out=poisoned(shape, dtype))
    assert_close(y, (log_softmax if log else softmax)(to_numpy(x), axis), dtype)
    dy = rounded(rng.normal(size=shape), dtype)
    if log:  # d/dx of log-softmax at -inf entries is not defined: give them no head gradient
        dy = torch.where(torch.isinf(x), torch.zeros_like(dy), dy)
    g = ops.softmax_backward(dy, y, axis, log=log, grad_in=poisoned(shape, dtype))
    expected = (log_softmax_grad if log else softmax_grad)(to_numpy(dy), to_numpy(x), axis)
    assert_close(g, expected, dtype, scale=4.0)
    start = rounded(rng.normal(size=shape), dtype)
    added = ops.softmax_backward(dy, y, axis, log=log, grad_in=start.clone(), accumulate=True)
    assert_close(added, to_numpy(start) + expected, dtype, scale=4.0)


def test_split_rows_need_their_stats_buffer(monkeypatch):
    _split_rows(monkeypatch, max_block=16, loop_block=8, programs=24)
    x = torch.zeros(3, 203)
    assert softmax_module.split_stats(x.shape, -1, torch.float32) == ((3, 7, 2), torch.float32)
    assert softmax_module.split_stats(x.shape, -1, torch.float64, backward=True) == ((3, 7), torch.float64)
    assert softmax_module.split_stats((3, 16), -1, torch.float32) is None  # fits one block
    with pytest.raises(KernelArgumentError, match=r"softmax_forward: \(3, 203\) along axis 1 has rows split across "
                                                  r"programs, which needs stats= a torch.float32 buffer of shape "
                                                  r"\(3, 7, 2\)"):
        softmax_module.plan_softmax_forward(x, torch.empty_like(x))
    with pytest.raises(KernelArgumentError, match=r"stats must be a contiguous torch.float32 tensor of shape "
                                                  rf"\(3, 7\) on {x.device}, got shape \(3, 8\)"):
        softmax_module.plan_softmax_backward(x, x, torch.empty_like(x), stats=torch.empty(3, 8))


@pytest.mark.parametrize("looped", [False, True, "persistent", "split"])
def test_infinities(monkeypatch, looped):
    """-inf entries get probability 0; a row of all -inf gives 0 (log: -inf), never NaN."""
    if looped == "split":
        _split_rows(monkeypatch, 2, 1, programs=9)
    elif looped:
        _untuned_loop(monkeypatch, 2, 2, persistent=looped == "persistent")
    inf = float("inf")
    x = torch.tensor([[0.0, -inf, 1.0], [-inf, -inf, -inf], [1e4, -1e4, 1e4]], dtype=torch.float32)
    p = ops.softmax_forward(x)
    assert not torch.isnan(p).any()
    assert_close(p, [[1 / (1 + np.e), 0.0, np.e / (1 + np.e)], [0, 0, 0], [0.5, 0, 0.5]], torch.float32)
    lp = ops.softmax_forward(x, log=True)
    assert not torch.isnan(lp).any()
    assert (lp[1] == -inf).all() and lp[0, 1] == -inf


def test_transposed_input(rng):
    x = rounded(rng.normal(size=(9, 4)), torch.float32).T  # softmax over rows of a transpose
    assert_close(ops.softmax_forward(x), softmax(to_numpy(x)), torch.float32)


def test_layout_errors():
    with pytest.raises(KernelArgumentError, match="axis=2 is out of range"):
        ops.softmax_forward(torch.zeros(3, 4), axis=2)
    x = torch.zeros(4, 6, 8, 5)[:, ::2, ::2]  # the three leading dims do not merge into one stride
    with pytest.raises(KernelArgumentError, match="cannot be walked as rows"):
        ops.softmax_forward(x, axis=3)


# ------------------------------------------------------------------ softmax output

OUTPUT_CASES = [
    dict(),
    dict(grad_scale=0.5, normalization="batch"),
    dict(normalization="valid"),
    dict(use_ignore=True, ignore_label=2.0, normalization="valid"),
    dict(use_ignore=True, ignore_label=2.0, normalization="null"),
    dict(smooth_alpha=0.1, normalization="batch"),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("options", OUTPUT_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_softmax_output_backward(rng, options, dtype):
    rows, classes = 33, 17
    x = rounded(rng.normal(scale=2.0, size=(rows, classes)), dtype)
    label = rounded(rng.integers(0, classes, rows).astype(np.float64), dtype if dtype != torch.float16 else
                    torch.float32)
    p = ops.softmax_forward(x)
    g = ops.softmax_output_backward(p, label, poisoned((rows, classes), dtype), **options)
    assert_close(g, softmax_output_grad(to_numpy(x), to_numpy(label), **options), dtype)


@pytest.mark.parametrize("classes", [1, 2, 3])
def test_softmax_output_label_smoothing_with_few_classes(rng, classes):
    """alpha is spread over the other classes: all of it on the one other class of a binary
    problem, none anywhere with a single class."""
    x = rounded(rng.normal(size=(9, classes)), torch.float64)
    label = rounded(rng.integers(0, classes, 9).astype(np.float64), torch.float64)
    g = ops.softmax_output_backward(ops.softmax_forward(x), label, poisoned((9, classes), torch.float64),
                                    smooth_alpha=0.3)
    assert_close(g, softmax_output_grad(to_numpy(x), to_numpy(label), smooth_alpha=0.3), torch.float64)


@pytest.mark.parametrize("label_dtype", [torch.int32, torch.int64, torch.float16])
def test_softmax_output_label_dtypes_and_multi_output(rng, label_dtype):
    """Labels of integer or float dtype; the class axis in the middle (multi_output layout)."""
    n, c, d = 4, 7, 5
    x = rounded(rng.normal(size=(n, c, d)), torch.float64)
    label = torch.as_tensor(rng.integers(0, c, (n, d))).to(label_dtype)
    p = ops.softmax_forward(x, axis=1)
    g = ops.softmax_output_backward(p, label, axis=1, normalization="valid")
    expected = (softmax(to_numpy(x), 1) - np.moveaxis(softmax_output_target(to_numpy(label), c), -1, 1)) / (n * d)
    assert_close(g, expected, torch.float64)


def test_softmax_output_probability_labels_and_head_gradient(rng):
    x = rounded(rng.normal(size=(6, 5)), torch.float64)
    target = softmax(rng.normal(size=(6, 5)))
    head = rounded(rng.normal(size=(6, 5)), torch.float64)
    p = ops.softmax_forward(x)
    g = ops.softmax_output_backward(p, rounded(target, torch.float64), normalization="batch", grad_scale=2.0,
                                    head_grad=head)
    # a probability target is never normalised; out_grad multiplies elementwise
    assert_close(g, (softmax(to_numpy(x)) - target) * 2.0 * to_numpy(head), torch.float64)


def test_softmax_output_bad_label_gives_nan_row():
    p = ops.softmax_forward(torch.zeros(3, 4, dtype=torch.float64))
    g = ops.softmax_output_backward(p, torch.tensor([1.0, 7.0, -1.0], dtype=torch.float64), use_ignore=True)
    assert torch.isfinite(g[0]).all() and torch.isnan(g[1]).all()
    assert (g[2] == 0).all()  # ignored (-1 is the ignore label)
    # NaN, a fraction or a negative label is not a class, with or without use_ignore: NaN rows
    labels = torch.tensor([2.0, float("nan"), 1.5, -1.0, 3.0], dtype=torch.float64)
    p = ops.softmax_forward(torch.zeros(5, 4, dtype=torch.float64))
    for use_ignore in (False, True):
        g = ops.softmax_output_backward(p, labels, use_ignore=use_ignore, ignore_label=-3.0)
        assert [bool(torch.isnan(row).all()) for row in g] == [False, True, True, True, False], use_ignore


def test_softmax_output_errors():
    p = torch.zeros(3, 4)
    with pytest.raises(KernelArgumentError, match=r"label has shape \(4,\); expected \(3,\)"):
        ops.softmax_output_backward(p, torch.zeros(4))
    with pytest.raises(KernelArgumentError, match="normalization='mean'"):
        ops.softmax_output_backward(p, torch.zeros(3), normalization="mean")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("options", OUTPUT_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_softmax_output_training_forward(rng, options, dtype):
    """One launch writes the probabilities and the loss gradient: each as the oracle says,
    and bit for bit what softmax forward and the loss backward write one after the other."""
    rows, classes = 33, 17
    x = rounded(rng.normal(scale=2.0, size=(rows, classes)), dtype)
    label = rounded(rng.integers(0, classes, rows).astype(np.float64), dtype if dtype != torch.float16 else
                    torch.float32)
    p, g = ops.softmax_output_train(x, label, poisoned((rows, classes), dtype), poisoned((rows, classes), dtype),
                                    **options)
    assert_close(p, softmax(to_numpy(x)), dtype)
    assert_close(g, softmax_output_grad(to_numpy(x), to_numpy(label), **options), dtype)
    apart = ops.softmax_forward(x)
    assert torch.equal(p, apart)
    assert torch.equal(g, ops.softmax_output_backward(apart, label, **options))


@pytest.mark.parametrize("wide", [False, True], ids=["one block", "wide rows"])
def test_softmax_output_training_forward_layouts(rng, monkeypatch, wide):
    """The class axis in the middle, a probability target, a loss scale read on the device,
    and rows too wide for one block (softmax's launches, then the gradient's)."""
    if wide:
        _untuned_loop(monkeypatch, 8, 4)
    n, c, d = 3, 11, 5
    x = rounded(rng.normal(size=(n, c, d)), torch.float64)
    label = torch.as_tensor(rng.integers(0, c, (n, d))).to(torch.int32)
    scale = torch.tensor([4.0])
    p, g = ops.softmax_output_train(x, label, axis=1, normalization="valid", loss_scale=scale)
    target = np.moveaxis(softmax_output_target(to_numpy(label), c), -1, 1)
    assert_close(p, softmax(to_numpy(x), 1), torch.float64)
    assert_close(g, (softmax(to_numpy(x), 1) - target) * 4.0 / (n * d), torch.float64)
    x2 = rounded(rng.normal(size=(6, c)), torch.float64)
    target = softmax(rng.normal(size=(6, c)))
    p, g = ops.softmax_output_train(x2, rounded(target, torch.float64), normalization="batch", grad_scale=2.0)
    assert_close(g, (softmax(to_numpy(x2)) - target) * 2.0, torch.float64)  # never normalised


def test_softmax_output_training_forward_nan_and_bad_labels():
    """A NaN logit makes its row's probabilities and gradient NaN; a label that is not a
    class makes its row's gradient NaN (its probabilities are right); an ignored row gets 0."""
    x = torch.zeros(4, 4, dtype=torch.float64)
    x[0, 2] = float("nan")
    p, g = ops.softmax_output_train(x, torch.tensor([1.0, 7.0, -1.0, 3.0], dtype=torch.float64), use_ignore=True)
    assert torch.isnan(p[0]).all() and torch.isnan(g[0]).all()
    assert torch.isfinite(p[1]).all() and torch.isnan(g[1]).all()
    assert (g[2] == 0).all() and torch.isfinite(g[3]).all() and not (g[3] == 0).all()


def test_softmax_output_training_forward_errors():
    x = torch.zeros(3, 4)
    with pytest.raises(KernelArgumentError, match="softmax_output_train: grad_in shares memory with prob"):
        ops.softmax_output_train(x, torch.zeros(3), x, x)
    with pytest.raises(KernelArgumentError, match=r"softmax_output_train: label has shape \(4,\); expected \(3,\)"):
        ops.softmax_output_train(x, torch.zeros(4))


# -------------------------------------------------------------------- regression

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_regression_output_backward(rng, dtype):
    out = rounded(rng.normal(size=(9, 4)), dtype)
    label = rounded(rng.normal(size=(9, 4)), dtype)
    g = ops.regression_output_backward(out, label, 0.25, grad_in=poisoned((9, 4), dtype))
    assert_close(g, (to_numpy(out) - to_numpy(label)) * 0.25, dtype)
    column = rounded(rng.normal(size=(9, 1)), dtype)
    g = ops.regression_output_backward(column, label[:, 0].contiguous(), 1.0)
    assert_close(g, to_numpy(column) - to_numpy(label[:, :1]), dtype)


@pytest.mark.parametrize("log", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["softmax", "log_softmax"])
def test_every_looped_config(rng, log):
    """Each config the autotuner may choose on a GPU for wide rows (one program per row,
    or persistent with L2 eviction hints) computes the same softmax and gradient."""
    from tritonsym.ops._common import persistent_programs

    on_gpu = torch.get_default_device().type == "cuda"
    rows, cols = (150 if on_gpu else 7), 40000  # wider than a GPU's block; more rows than programs
    x = rounded(rng.normal(scale=3.0, size=(rows, cols)), torch.float32)
    dy = rounded(rng.normal(size=(rows, cols)), torch.float32)
    expected = torch.log_softmax(x.double(), -1) if log else torch.softmax(x.double(), -1)
    p = expected.exp() if log else expected
    want = dy.double() - p * dy.double().sum(-1, keepdim=True) if log else \
        p * (dy.double() - (dy.double() * p).sum(-1, keepdim=True))
    forward_kernel = softmax_module._softmax_forward_looped_tuned
    backward_kernel = softmax_module._softmax_backward_looped_kernel
    for config in forward_kernel.configs:
        grid = (min(rows, persistent_programs(x.device)) if config.kwargs["PERSISTENT"] else rows,)
        meta = dict(config.kwargs, num_warps=config.num_warps)
        y = torch.full_like(x, float("nan"))
        (launch,) = softmax_module.plan_softmax_forward(x, y, -1, log)
        forward_kernel.fn[grid](*launch.args, LOG=log, ALIGN=launch.kwargs["ALIGN"], **meta)
        torch.testing.assert_close(y.double(), expected, atol=1e-6, rtol=1e-5, msg=f"forward {config}")
        g = torch.full_like(x, float("nan"))
        (back,) = softmax_module.plan_softmax_backward(dy, y, g, -1, log)
        backward_kernel.fn[grid](*back.args, LOG=log, ACCUMULATE=False, ALIGN=back.kwargs["ALIGN"], **meta)
        torch.testing.assert_close(g.double(), want, atol=1e-5, rtol=1e-4, msg=f"backward {config}")


# The 1000-column rows cost 17 s in the interpreter: slow (24 columns 1000 apart keep align 8 quick).
ALIGNED_ROWS = [(6, 6, 2), (12, 12, 4), pytest.param(1000, 1000, 8, marks=pytest.mark.slow), (24, 1000, 8),
                (40, 48, 8), (32, 48, 16), (17, 1000, 1)]


@pytest.mark.parametrize("path", ["one block", "looped", "split"])
@pytest.mark.parametrize("cols,width,align", ALIGNED_ROWS, ids=lambda v: str(v))
def test_rows_whose_lengths_and_strides_are_multiples_of_fewer_than_16(rng, monkeypatch, path, cols, width, align):
    """Each kernel is told the largest power of two (up to 16) that the row length and the
    rows' strides are multiples of (ALIGN: Triton itself only knows 16, so a row of 1000
    floats would be read one element at a time), and computes with those values written so
    that the compiler sees it: every path gives the oracle's numbers, with rows cut from a
    buffer ``width`` wide."""
    if path == "looped":
        _untuned_loop(monkeypatch, 4, 4)
    elif path == "split":
        _split_rows(monkeypatch, max_block=4, loop_block=4, programs=12)
    rows = 5
    x = rounded(rng.normal(scale=3.0, size=(rows, width)), torch.float32)[:, :cols]
    y = poisoned((rows, width), torch.float32)[:, :cols]
    stats = softmax_module.split_stats_buffer(x)
    forward = softmax_module.plan_softmax_forward(x, y, stats=stats)
    assert {launch.kwargs["ALIGN"] for launch in forward} == {align}
    run(forward)
    assert_close(y, softmax(to_numpy(x)), torch.float32)
    dy = rounded(rng.normal(size=(rows, width)), torch.float32)[:, :cols]
    g = poisoned((rows, width), torch.float32)[:, :cols]
    backward = softmax_module.plan_softmax_backward(dy, y, g, stats=softmax_module.split_stats_buffer(y, backward=True))
    assert {launch.kwargs["ALIGN"] for launch in backward} == {align}
    run(backward)
    assert_close(g, softmax_grad(to_numpy(dy), to_numpy(x)), torch.float32, scale=4.0)
    label = torch.as_tensor(rng.integers(0, cols, rows).astype(np.float32))
    p, grad = poisoned((rows, width), torch.float32)[:, :cols], poisoned((rows, width), torch.float32)[:, :cols]
    ops.softmax_output_train(x, label, p, grad)
    assert_close(grad, softmax_output_grad(to_numpy(x), to_numpy(label)), torch.float32)
    again = ops.softmax_output_backward(p, label, poisoned((rows, width), torch.float32)[:, :cols],
                                        head_grad=dy)
    assert_close(again, softmax_output_grad(to_numpy(x), to_numpy(label)) * to_numpy(dy), torch.float32)


def test_alignment_is_the_largest_power_of_two_up_to_16_dividing_every_length_and_stride():
    assert softmax_module.alignment(1000, (1000, 1, 0), (1024, 1, 0)) == 8
    assert softmax_module.alignment(1000, (1000, 1, 0), (1002, 1, 0)) == 2
    assert softmax_module.alignment(4096, (4096, 1, 0)) == 16  # capped: 16 is what Triton itself knows
    assert softmax_module.alignment(12, (12, 1, 0), (12, 1, 20)) == 4  # an inner stride counts too
    assert softmax_module.alignment(16, (16, 2, 1)) == 1  # rows not contiguous: one variant serves them all
    assert softmax_module.alignment(17, (17, 1, 0)) == 1
