"""The cell of MXNet's fused RNN operator, one time step of every row at once: the gates
from the two projections (the input's, ``x W_x^T + b_x``, and the hidden state's,
``h W_h^T + b_h``, both made by the FullyConnected kernels), then the new states; and the
step's gradient, back to the two projections' gradients and the states'.

The modes and their gates, in MXNet's (cuDNN's) order:

- ``lstm``: i, f, g, o; ``c' = f c + i g``, ``h' = o tanh(c')``, i f o sigmoid, g tanh;
- ``gru``: r, z, n; ``n = tanh(x_n + r h_n)`` (the hidden projection's n part inside the
  reset gate), ``h' = (1 - z) n + z h``;
- ``rnn_tanh`` / ``rnn_relu``: ``h' = act(x + h)``.

A training forward keeps what the step's gradient reads: lstm its four activated gates
(and c', which the caller keeps anyway), gru r, z, n and the hidden projection's n part
(four columns of H). The vanilla modes keep nothing: their gradient is a function of h',
the output. One program handles ``BLOCK`` (row, unit) pairs; every gate of a pair is read
and written by the same thread, so the gradient may be written over nothing it still reads.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    INDEX_DTYPES,
    KernelArgumentError,
    Launch,
    check_same,
    check_tensor,
    element_block,
    load_wide,
    store,
)
from .activation import act_forward, act_grad_from_output, sigmoid, tanh

TESTS = ("tests/test_rnn_operator.py", "tests/test_rnn_lengths.py", "tests/test_rnn_projection.py",
         "tests/test_rnn_cell_clip.py", "tests/test_operators.py", "tests/test_gradcheck.py")
MODES = ("rnn_relu", "rnn_tanh", "lstm", "gru")
GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}
# What a training forward keeps per unit (columns of H) for the step's gradient.
KEPT = {"rnn_relu": 0, "rnn_tanh": 0, "lstm": 4, "gru": 4}
# Columns of H in the gradient the step's backward writes: the projections' gradients,
# gru's n part twice (the input projection's, then the hidden one's, which r multiplies).
GRADIENT_GATES = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 4}


@triton.jit
def _live(LENGTH, row, step, steps, mask):
    """(does the row's sequence reach ``step``, is its length a whole number in [0, steps])."""
    length = tl.load(LENGTH + row, mask=mask, other=0).to(tl.float64)
    whole = (length >= 0) & (length <= steps) & (length == tl.floor(length))
    return whole & (step < length), whole


@triton.jit
def _cell_forward_kernel(GX, GH, HPREV, CPREV, HOUT, COUT, KEEP, LENGTH, rows, H,
                         gx_stride, gh_stride, hprev_stride, cprev_stride, hout_stride, cout_stride, keep_stride,
                         step, steps, clip_min: tl.float64, clip_max: tl.float64, MODE: tl.constexpr,
                         KEEP_GATES: tl.constexpr, USE_LENGTH: tl.constexpr, CLIP: tl.constexpr, BLOCK: tl.constexpr):
    """h' (and lstm's c') of BLOCK (row, unit) pairs from the projections GX and GH; with
    USE_LENGTH, a row whose sequence has ended (LENGTH <= step) carries its states through;
    with CLIP, lstm's c' is clipped to [clip_min, clip_max] (cuDNN's cell clipping: h' and the
    next step read the clipped c')."""
    index, mask = element_block(rows * H, BLOCK)
    row, unit = index // H, index % H
    gx, gh = row * gx_stride + unit, row * gh_stride + unit
    live, whole = mask, mask  # read only with USE_LENGTH
    if USE_LENGTH:
        live, whole = _live(LENGTH, row, step, steps, mask)
    if MODE == "lstm":
        i = sigmoid(load_wide(GX, gx, mask, 0.0) + load_wide(GH, gh, mask, 0.0))
        f = sigmoid(load_wide(GX, gx + H, mask, 0.0) + load_wide(GH, gh + H, mask, 0.0))
        g = tanh(load_wide(GX, gx + 2 * H, mask, 0.0) + load_wide(GH, gh + 2 * H, mask, 0.0))
        o = sigmoid(load_wide(GX, gx + 3 * H, mask, 0.0) + load_wide(GH, gh + 3 * H, mask, 0.0))
        c_prev = load_wide(CPREV, row * cprev_stride + unit, mask, 0.0)
        c = f * c_prev + i * g
        if CLIP:
            low, high = clip_min.to(c.dtype), clip_max.to(c.dtype)
            c = tl.where(c < low, low, tl.where(c > high, high, c))  # a NaN fails both tests: it stays
        h = o * tanh(c)
        if USE_LENGTH:
            c = tl.where(whole, tl.where(live, c, c_prev), float("nan"))
        store(COUT, row * cout_stride + unit, c, mask)
        if KEEP_GATES:
            keep = row * keep_stride + unit
            store(KEEP, keep, i, mask)
            store(KEEP, keep + H, f, mask)
            store(KEEP, keep + 2 * H, g, mask)
            store(KEEP, keep + 3 * H, o, mask)
    elif MODE == "gru":
        r = sigmoid(load_wide(GX, gx, mask, 0.0) + load_wide(GH, gh, mask, 0.0))
        z = sigmoid(load_wide(GX, gx + H, mask, 0.0) + load_wide(GH, gh + H, mask, 0.0))
        hn = load_wide(GH, gh + 2 * H, mask, 0.0)
        n = tanh(load_wide(GX, gx + 2 * H, mask, 0.0) + r * hn)
        h = (1.0 - z) * n + z * load_wide(HPREV, row * hprev_stride + unit, mask, 0.0)
        if KEEP_GATES:
            keep = row * keep_stride + unit
            store(KEEP, keep, r, mask)
            store(KEEP, keep + H, z, mask)
            store(KEEP, keep + 2 * H, n, mask)
            store(KEEP, keep + 3 * H, hn, mask)
    elif MODE == "rnn_relu":  # (Triton 3.6 takes no constexpr string a helper returns)
        h = act_forward(load_wide(GX, gx, mask, 0.0) + load_wide(GH, gh, mask, 0.0), "relu", 0.0)
    else:
        h = act_forward(load_wide(GX, gx, mask, 0.0) + load_wide(GH, gh, mask, 0.0), "tanh", 0.0)
    if USE_LENGTH:
        h = tl.where(whole, tl.where(live, h, load_wide(HPREV, row * hprev_stride + unit, mask, 0.0)), float("nan"))
    store(HOUT, row * hout_stride + unit, h, mask)


@triton.jit
def _cell_backward_kernel(DOUT, DH, DC, KEEP, C, CPREV, HOUT, HPREV, DG, LENGTH, rows, H,
                          dout_stride, dh_stride, dc_stride, keep_stride, c_stride, cprev_stride, hout_stride,
                          hprev_stride, dg_stride, step, steps, clip_min: tl.float64, clip_max: tl.float64,
                          MODE: tl.constexpr, USE_LENGTH: tl.constexpr, HAS_DOUT: tl.constexpr, CLIP: tl.constexpr,
                          BLOCK: tl.constexpr):
    """The projections' gradients DG of BLOCK (row, unit) pairs from h's gradient, the
    output's (DOUT) plus the recurrence's (DH), or DH alone without HAS_DOUT (a projected
    lstm's, whose product made the whole of it); lstm updates c's gradient DC in place to
    c's before the step, gru writes the part of h's that skips the projection (z dh') into
    DH, which the recurrent product then adds to. With USE_LENGTH every mode writes DH (0
    but gru's part), the product adding to it: a row whose sequence has ended carried its
    states through the step, so its DG is 0 and DH and DC pass on as they came (the
    output's gradient there is of a masked zero); a row of a wrong length gets NaN. With
    CLIP, c's gradient is 0 where the clip held c' (c' before it, recomputed from the kept
    gates, below clip_min or above clip_max) and passes elsewhere, NaN included."""
    index, mask = element_block(rows * H, BLOCK)
    row, unit = index // H, index % H
    dh_after = load_wide(DH, row * dh_stride + unit, mask, 0.0)
    dh = dh_after
    if HAS_DOUT:
        dh = load_wide(DOUT, row * dout_stride + unit, mask, 0.0) + dh_after
    dg = row * dg_stride + unit
    live, whole = mask, mask  # read only with USE_LENGTH
    if USE_LENGTH:
        live, whole = _live(LENGTH, row, step, steps, mask)
    if MODE == "lstm":
        keep = row * keep_stride + unit
        i = load_wide(KEEP, keep, mask, 0.0)
        f = load_wide(KEEP, keep + H, mask, 0.0)
        g = load_wide(KEEP, keep + 2 * H, mask, 0.0)
        o = load_wide(KEEP, keep + 3 * H, mask, 0.0)
        t = tanh(load_wide(C, row * c_stride + unit, mask, 0.0))
        dc_after = load_wide(DC, row * dc_stride + unit, mask, 0.0)
        dc = dc_after + dh * o * (1.0 - t * t)
        cprev = load_wide(CPREV, row * cprev_stride + unit, mask, 0.0)
        if CLIP:  # (a NaN state was not clipped: it takes the gradient, as the clip operator's)
            unclipped = f * cprev + i * g
            dc = tl.where((unclipped < clip_min.to(dc.dtype)) | (unclipped > clip_max.to(dc.dtype)), 0.0, dc)
        _store_gate(DG, dg, dc * g * i * (1.0 - i), live, whole, mask, USE_LENGTH)
        _store_gate(DG, dg + H, dc * cprev * f * (1.0 - f), live, whole, mask, USE_LENGTH)
        _store_gate(DG, dg + 2 * H, dc * i * (1.0 - g * g), live, whole, mask, USE_LENGTH)
        _store_gate(DG, dg + 3 * H, dh * t * o * (1.0 - o), live, whole, mask, USE_LENGTH)
        _store_carried(DC, row * dc_stride + unit, dc * f, dc_after, live, whole, mask, USE_LENGTH)
        if USE_LENGTH:
            _store_carried(DH, row * dh_stride + unit, 0.0, dh_after, live, whole, mask, USE_LENGTH)
    elif MODE == "gru":
        keep = row * keep_stride + unit
        r = load_wide(KEEP, keep, mask, 0.0)
        z = load_wide(KEEP, keep + H, mask, 0.0)
        n = load_wide(KEEP, keep + 2 * H, mask, 0.0)
        hn = load_wide(KEEP, keep + 3 * H, mask, 0.0)
        dn = dh * (1.0 - z) * (1.0 - n * n)
        _store_gate(DG, dg, dn * hn * r * (1.0 - r), live, whole, mask, USE_LENGTH)
        _store_gate(DG, dg + H, dh * (load_wide(HPREV, row * hprev_stride + unit, mask, 0.0) - n) * z * (1.0 - z),
                    live, whole, mask, USE_LENGTH)
        _store_gate(DG, dg + 2 * H, dn, live, whole, mask, USE_LENGTH)
        _store_gate(DG, dg + 3 * H, dn * r, live, whole, mask, USE_LENGTH)
        _store_carried(DH, row * dh_stride + unit, dh * z, dh_after, live, whole, mask, USE_LENGTH)
    else:
        h = load_wide(HOUT, row * hout_stride + unit, mask, 0.0)
        if MODE == "rnn_relu":
            _store_gate(DG, dg, dh * act_grad_from_output(h, "relu", 0.0), live, whole, mask, USE_LENGTH)
        else:
            _store_gate(DG, dg, dh * act_grad_from_output(h, "tanh", 0.0), live, whole, mask, USE_LENGTH)
        if USE_LENGTH:
            _store_carried(DH, row * dh_stride + unit, 0.0, dh_after, live, whole, mask, USE_LENGTH)


@triton.jit
def _store_gate(DG, offset, value, live, whole, mask, USE_LENGTH: tl.constexpr):
    """A projection's gradient: the step's where the row's sequence reaches it, else 0."""
    if USE_LENGTH:
        value = tl.where(whole, tl.where(live, value, 0.0), float("nan"))
    store(DG, offset, value, mask)


@triton.jit
def _store_carried(D, offset, value, carried, live, whole, mask, USE_LENGTH: tl.constexpr):
    """A state's gradient before the step: the step's where the row's sequence reaches it,
    else the one after it, passed through."""
    if USE_LENGTH:
        value = tl.where(whole, tl.where(live, value, carried), float("nan"))
    store(D, offset, value, mask)


@triton.jit
def _carry_kernel(OUT, PREV, LENGTH, rows, width, out_stride, prev_stride, step, steps, BACKWARD: tl.constexpr,
                  BLOCK: tl.constexpr):
    """A projected lstm's state at a step its row's sequence does not reach: the state
    before (PREV) carried into OUT; BACKWARD, the gradient there moved into the state
    before's (added to PREV, OUT's made 0). A row of a wrong length gets NaN."""
    index, mask = element_block(rows * width, BLOCK)
    row, unit = index // width, index % width
    live, whole = _live(LENGTH, row, step, steps, mask)
    out_at, prev_at = row * out_stride + unit, row * prev_stride + unit
    value = load_wide(OUT, out_at, mask, 0.0)
    prev = load_wide(PREV, prev_at, mask, 0.0)
    if BACKWARD:
        store(PREV, prev_at, tl.where(whole, prev + value, float("nan")), mask & ~live)
        store(OUT, out_at, tl.where(whole, tl.where(live, value, 0.0), float("nan")), mask)
    else:
        store(OUT, out_at, tl.where(whole, tl.where(live, value, prev), float("nan")), mask)


# ------------------------------------------------------------------------- planning


def _rows(fn: str, name: str, t: torch.Tensor, rows: int, columns: int) -> int:
    """The row stride of ``t``, a (rows, columns) matrix whose columns are contiguous."""
    check_tensor(fn, name, t)
    if tuple(t.shape) != (rows, columns):
        raise KernelArgumentError(f"{fn}: {name} has shape {tuple(t.shape)} but ({rows}, {columns}) is expected")
    if columns > 1 and t.stride(1) != 1:
        raise KernelArgumentError(f"{fn}: {name} must have contiguous rows, got strides {t.stride()}")
    return t.stride(0)


def _mode(fn: str, mode: str) -> None:
    if mode not in MODES:
        raise KernelArgumentError(f"{fn}: mode={mode!r} is not one of {', '.join(MODES)}")


def plan_cell_forward(mode: str, gx: torch.Tensor, gh: torch.Tensor, h_prev: torch.Tensor | None, h_out: torch.Tensor,
                      c_prev: torch.Tensor | None = None, c_out: torch.Tensor | None = None,
                      keep: torch.Tensor | None = None, lengths: torch.Tensor | None = None,
                      step: int = 0, steps: int = 0, clip: tuple[float, float] | None = None) -> list[Launch]:
    """One step: ``h_out`` (rows, H) from the projections ``gx`` and ``gh`` (rows, gates H),
    the state before (``h_prev``; lstm's ``c_prev``, and its new ``c_out``), and, where
    ``keep`` (rows, KEPT[mode] H) is given, what the step's gradient reads. With
    ``lengths`` (rows,), this is time ``step`` of ``steps``: a row whose length is not
    above ``step`` copies its states through, one whose length is not a whole number in
    [0, steps] gets NaN. lstm reads ``h_prev`` only to carry it (with ``lengths``): it may
    be None otherwise (a projected lstm's state before is not h's width). ``clip`` (low,
    high): lstm's c' clipped to [low, high]."""
    fn = "rnn_cell_forward"
    _mode(fn, mode)
    _check_clip(fn, mode, clip)
    rows, hidden = h_out.shape
    _check_lengths(fn, lengths, rows, step, steps, h_out)
    if h_prev is None and (mode != "lstm" or lengths is not None):
        raise KernelArgumentError(f"{fn}: mode={mode!r}{' with lengths' if lengths is not None else ''} needs h_prev")
    width = GATES[mode] * hidden
    tensors = dict(gx=gx, gh=gh, h_prev=h_prev, h_out=h_out, c_prev=c_prev, c_out=c_out, keep=keep)
    check_same(fn, "dtype", **tensors)
    check_same(fn, "device", **tensors)
    strides = [_rows(fn, "gx", gx, rows, width), _rows(fn, "gh", gh, rows, width),
               0 if h_prev is None else _rows(fn, "h_prev", h_prev, rows, hidden)]
    if mode == "lstm":
        if c_prev is None or c_out is None:
            raise KernelArgumentError(f"{fn}: mode='lstm' needs c_prev and c_out")
        strides += [_rows(fn, "c_prev", c_prev, rows, hidden)]
    else:
        c_prev = c_out = h_out
        strides += [0]
    strides += [_rows(fn, "h_out", h_out, rows, hidden), c_out.stride(0) if mode == "lstm" else 0]
    if mode == "lstm":
        _rows(fn, "c_out", c_out, rows, hidden)
    if keep is not None:
        if not KEPT[mode]:
            raise KernelArgumentError(f"{fn}: mode={mode!r} keeps nothing for the gradient; pass keep=None")
        strides.append(_rows(fn, "keep", keep, rows, KEPT[mode] * hidden))
    else:
        strides.append(0)
    grid = (triton.cdiv(rows * hidden, ELEMENTWISE_BLOCK),)
    return [Launch(_cell_forward_kernel, grid,
                   [gx, gh, h_out if h_prev is None else h_prev, c_prev, h_out, c_out,
                    keep if keep is not None else h_out,
                    lengths if lengths is not None else h_out, rows, hidden, *strides, step, steps,
                    *_clip_bounds(clip)],
                   dict(MODE=mode, KEEP_GATES=keep is not None, USE_LENGTH=lengths is not None, CLIP=clip is not None,
                        BLOCK=ELEMENTWISE_BLOCK))]


def plan_cell_backward(mode: str, grad_out: torch.Tensor | None, grad_h: torch.Tensor, grad_gates: torch.Tensor, *,
                       keep: torch.Tensor | None = None, grad_c: torch.Tensor | None = None,
                       c_out: torch.Tensor | None = None, c_prev: torch.Tensor | None = None,
                       h_out: torch.Tensor | None = None, h_prev: torch.Tensor | None = None,
                       lengths: torch.Tensor | None = None, step: int = 0, steps: int = 0,
                       clip: tuple[float, float] | None = None) -> list[Launch]:
    """One step's gradient: ``grad_gates`` (rows, GRADIENT_GATES[mode] H), the gradients of
    the projections' pre-activations, from h's gradient ``grad_out + grad_h`` (rows, H)
    (``grad_h`` alone where ``grad_out`` is None: a projected lstm's, made whole by the
    projection's product).
    lstm reads ``keep``, ``c_out``, ``c_prev`` and turns ``grad_c`` (c's gradient after the
    step) into c's before it; gru reads ``keep`` and ``h_prev`` and writes ``z dh`` into
    ``grad_h``; the vanilla modes read ``h_out``. With ``lengths`` (as the forward's),
    every mode writes ``grad_h`` (0 but gru's part: the hidden product must add to it),
    and a row whose sequence ended before ``step`` passes ``grad_h`` and ``grad_c`` on.
    ``clip``: the forward's (lstm's c' clipped): c's gradient is 0 where the clip held c'."""
    fn = "rnn_cell_backward"
    _mode(fn, mode)
    _check_clip(fn, mode, clip)
    rows, hidden = grad_h.shape
    _check_lengths(fn, lengths, rows, step, steps, grad_h)
    needs = {"lstm": dict(keep=keep, grad_c=grad_c, c_out=c_out, c_prev=c_prev), "gru": dict(keep=keep, h_prev=h_prev)
             }.get(mode, dict(h_out=h_out))
    missing = [name for name, t in needs.items() if t is None]
    if missing:
        raise KernelArgumentError(f"{fn}: mode={mode!r} needs {', '.join(missing)}")
    tensors = dict(grad_out=grad_out, grad_h=grad_h, grad_gates=grad_gates, **needs)
    check_same(fn, "dtype", **tensors)
    check_same(fn, "device", **tensors)
    widths = dict(keep=KEPT[mode] * hidden)

    def stride(name):
        t = tensors.get(name)
        return 0 if t is None else _rows(fn, name, t, rows, widths.get(name, hidden))

    strides = [stride(name) for name in ("grad_out", "grad_h", "grad_c", "keep", "c_out", "c_prev", "h_out", "h_prev")]
    strides.append(_rows(fn, "grad_gates", grad_gates, rows, GRADIENT_GATES[mode] * hidden))
    pointers = [grad_h if tensors.get(name) is None else tensors[name]
                for name in ("grad_out", "grad_h", "grad_c", "keep", "c_out", "c_prev", "h_out", "h_prev")]
    grid = (triton.cdiv(rows * hidden, ELEMENTWISE_BLOCK),)
    return [Launch(_cell_backward_kernel, grid,
                   [*pointers, grad_gates, lengths if lengths is not None else grad_h, rows, hidden, *strides, step,
                    steps, *_clip_bounds(clip)],
                   dict(MODE=mode, USE_LENGTH=lengths is not None, HAS_DOUT=grad_out is not None,
                        CLIP=clip is not None, BLOCK=ELEMENTWISE_BLOCK))]


def plan_carry(out: torch.Tensor, prev: torch.Tensor, lengths: torch.Tensor, step: int, steps: int,
               backward: bool = False) -> list[Launch]:
    """Time ``step`` of ``steps`` of a projected lstm with ``lengths`` (rows,): a row whose
    length is not above ``step`` takes ``prev`` (rows, P), its state before, into ``out``
    (the projection's output); ``backward``: such a row's gradient in ``out`` is added to
    ``prev`` (the state before's) and ``out``'s made 0. A length that is not a whole number
    in [0, steps] gives NaN."""
    fn = "rnn_carry_backward" if backward else "rnn_carry"
    rows, width = out.shape
    _check_lengths(fn, lengths, rows, step, steps, out)
    check_same(fn, "dtype", out=out, prev=prev)
    check_same(fn, "device", out=out, prev=prev)
    strides = [_rows(fn, "out", out, rows, width), _rows(fn, "prev", prev, rows, width)]
    grid = (triton.cdiv(rows * width, ELEMENTWISE_BLOCK),)
    return [Launch(_carry_kernel, grid, [out, prev, lengths, rows, width, *strides, step, steps],
                   dict(BACKWARD=backward, BLOCK=ELEMENTWISE_BLOCK))]


def _check_clip(fn: str, mode: str, clip: tuple[float, float] | None) -> None:
    if clip is None:
        return
    if mode != "lstm":
        raise KernelArgumentError(f"{fn}: clip={clip!r} clips an lstm's cell state; mode={mode!r} has none")
    low, high = clip
    if not low <= high:  # (NaN bounds fail too)
        raise KernelArgumentError(f"{fn}: clip=({low!r}, {high!r}) must be (low, high) with low <= high")


def _clip_bounds(clip: tuple[float, float] | None) -> list[float]:
    return [0.0, 0.0] if clip is None else [float(clip[0]), float(clip[1])]


def _check_lengths(fn: str, lengths: torch.Tensor | None, rows: int, step: int, steps: int,
                   like: torch.Tensor) -> None:
    if lengths is None:
        return
    check_tensor(fn, "lengths", lengths, FLOAT_DTYPES + INDEX_DTYPES)
    check_same(fn, "device", lengths=lengths, states=like)
    if tuple(lengths.shape) != (rows,) or (rows > 1 and lengths.stride(0) != 1):
        raise KernelArgumentError(f"{fn}: lengths must be contiguous of shape ({rows},), got shape "
                                  f"{tuple(lengths.shape)} and strides {lengths.stride()}")
    if not 0 <= step < steps:
        raise KernelArgumentError(f"{fn}: step={step} is not a step of steps={steps}")


# ------------------------------------------------------------------- catalogue


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    rows, hidden = (512, 1024) if large else (5, 7)
    launches, lengths_of_rows = [], torch.empty(rows, dtype=torch.int32)
    for mode in MODES:
        g = torch.empty((rows, GATES[mode] * hidden), dtype=dtype)
        h = torch.empty((rows, hidden), dtype=dtype)
        keep = torch.empty((rows, KEPT[mode] * hidden), dtype=dtype) if KEPT[mode] else None
        grads = torch.empty((rows, GRADIENT_GATES[mode] * hidden), dtype=dtype)
        for lengths in (None, lengths_of_rows):
            named = " lengths" if lengths is not None else ""
            launches.append((f"{mode} cell{named}", plan_cell_forward(mode, g, g, h, h, h, h, keep, lengths, 1, 4)[0]))
            launches.append((f"{mode} cell backward{named}", plan_cell_backward(
                mode, h, h, grads, keep=keep, grad_c=h, c_out=h, c_prev=h, h_out=h, h_prev=h, lengths=lengths,
                step=1, steps=4)[0]))
        if mode == "lstm":  # cuDNN's cell clipping; a projected lstm's: h's gradient whole in grad_h
            launches.append(("lstm cell clipped", plan_cell_forward(mode, g, g, h, h, h, h, keep, clip=(-1.0, 1.0))[0]))
            launches.append(("lstm cell backward clipped", plan_cell_backward(
                mode, h, h, grads, keep=keep, grad_c=h, c_out=h, c_prev=h, clip=(-1.0, 1.0))[0]))
            launches.append(("lstm cell backward projected", plan_cell_backward(
                mode, None, h, grads, keep=keep, grad_c=h, c_out=h, c_prev=h)[0]))
            launches.append(("lstm cell backward projected lengths", plan_cell_backward(
                mode, None, h, grads, keep=keep, grad_c=h, c_out=h, c_prev=h, lengths=lengths_of_rows, step=1,
                steps=4)[0]))
            launches += [("lstm projected state carry", plan_carry(h, h, lengths_of_rows, 1, 4)[0]),
                         ("lstm projected state carry backward", plan_carry(h, h, lengths_of_rows, 1, 4,
                                                                            backward=True)[0])]
    return launches
