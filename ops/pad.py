"""Padding of the last three (or fewer) axes: ``constant`` (a value), ``edge`` (the nearest
element repeated) or ``reflect`` (mirrored about the edge element, which is not repeated).

Forward is one gather: each output element finds its source element along each padded
axis (or, for ``constant``, learns it has none and takes the value). The same kernel with
the pads negated crops, which is the whole of ``constant``'s backward.

``edge`` and ``reflect`` backward fold the output gradient back one padded axis at a time
(innermost first), each fold a gather too: an input position sums the output positions
that copied it (its own; for ``edge`` the whole pad at the first and last position, for
``reflect`` at most one mirror on each side). Several padded axes fold through scratch
buffers in the compute type (float32 for half precision), so the gradient rounds once.
Every sum is in a fixed order: the same bits every run, no atomics.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    element_block,
    load_wide,
    prepare_out,
    store_result,
    unravel,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_pad.py")
MODES = ("constant", "edge", "reflect")
_MODE_NUMBER = {mode: k for k, mode in enumerate(MODES)}
PADDED_AXES = 3  # the kernels see (outer, depth, height, width)


@triton.jit
def _source(i, p, n, MODE: tl.constexpr):
    """Where output position ``i`` of an axis padded by ``p`` before finds its element in
    an input axis of length ``n``, and whether it finds one (only ``constant`` can miss)."""
    j = i - p
    if MODE == 1:  # edge
        j = tl.minimum(tl.maximum(j, 0), n - 1)
    elif MODE == 2:  # reflect (each pad shorter than the axis)
        j = tl.where(j < 0, -j, j)
        j = tl.where(j >= n, 2 * (n - 1) - j, j)
    return j, (j >= 0) & (j < n)


@triton.jit
def _pad_kernel(X, Y, n, out_sizes, in_sizes, pads, value: tl.float64, MODE: tl.constexpr, ACCUMULATE: tl.constexpr,
                BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    outer, d, h, w = unravel(index, out_sizes[0], out_sizes[1], out_sizes[2])
    jd, ok_d = _source(d, pads[0], in_sizes[0], MODE)
    jh, ok_h = _source(h, pads[1], in_sizes[1], MODE)
    jw, ok_w = _source(w, pads[2], in_sizes[2], MODE)
    found = ok_d & ok_h & ok_w
    source = ((outer * in_sizes[0] + jd) * in_sizes[1] + jh) * in_sizes[2] + jw
    v = load_wide(X, source, mask & found, 0.0)
    v = tl.where(found, v, widen(value, Y))
    store_result(Y, index, v, mask, ACCUMULATE)


@triton.jit
def _fold_kernel(DY, DX, n, length, padded_length, inner, before, after, MODE: tl.constexpr,
                 ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    """dx (outer, length, inner) from dy (outer, padded_length, inner): each input position
    sums the output positions that copied it along this axis (MODE 1: edge, 2: reflect)."""
    index, mask = element_block(n, BLOCK)
    r = index % inner
    rest = index // inner
    i = rest % length
    base = (rest // length) * padded_length * inner + r
    acc = load_wide(DY, base + (before + i) * inner, mask, 0.0)
    if MODE == 1:  # edge: the first position was copied into the whole pad before, the last after
        first, last = mask & (i == 0), mask & (i == length - 1)
        for t in range(0, before):
            acc += load_wide(DY, base + t * inner, first, 0.0)
        for t in range(0, after):
            acc += load_wide(DY, base + (before + length + t) * inner, last, 0.0)
    else:  # reflect: position i is mirrored to before - i and to before + 2 (length - 1) - i
        acc += load_wide(DY, base + (before - i) * inner, mask & (i >= 1) & (i <= before), 0.0)
        mirror = length - 1 - i
        acc += load_wide(DY, base + (before + length - 1 + mirror) * inner, mask & (mirror >= 1) & (mirror <= after),
                         0.0)
    store_result(DX, index, acc, mask, ACCUMULATE)


def output_shape(shape, pads) -> tuple[int, ...]:
    """``shape`` with each axis lengthened by its (before, after) pads."""
    return tuple(n + a + b for n, (a, b) in zip(shape, pads))


def check_pads(fn: str, shape, mode: str, pads) -> None:
    """The pads a kernel can apply to data of ``shape``: one (before, after) pair per axis,
    non-negative, none before the last three axes; an axis copied from (``edge``) has an
    element; a mirror (``reflect``) is shorter than its axis."""
    if mode not in MODES:
        raise KernelArgumentError(f"{fn}: mode={mode!r} must be one of {', '.join(MODES)}")
    if len(pads) != len(shape) or any(len(p) != 2 for p in pads):
        raise KernelArgumentError(f"{fn}: pads {tuple(pads)} must hold one (before, after) pair per axis of "
                                  f"shape {tuple(shape)}")
    if any(v < 0 for p in pads for v in p):
        raise KernelArgumentError(f"{fn}: pads {tuple(pads)} must not be negative")
    outer = len(shape) - PADDED_AXES
    if any(v for p in pads[:max(outer, 0)] for v in p):
        raise KernelArgumentError(f"{fn}: pads {tuple(pads)} pad an axis before the last {PADDED_AXES}")
    for axis, (n, (a, b)) in enumerate(zip(shape, pads)):
        if mode == "edge" and n == 0 and a + b:
            raise KernelArgumentError(f"{fn}: axis {axis} has no element to repeat into pads ({a}, {b})")
        if mode == "reflect" and max(a, b) >= max(n, 1):
            raise KernelArgumentError(f"{fn}: reflect pads ({a}, {b}) of axis {axis} must be shorter than its "
                                      f"length {n}")


def _as_padded_axes(shape, pads) -> tuple[tuple, tuple, tuple]:
    """The (d, h, w) sizes in, the pads before them and the sizes out, for the kernels (the
    axes before them are one ``outer`` the kernels read off the flat index)."""
    lead = max(PADDED_AXES - len(shape), 0)
    last = ((1,) * lead + tuple(shape))[-PADDED_AXES:]
    last_pads = (((0, 0),) * lead + tuple(pads))[-PADDED_AXES:]
    return last, tuple(a for a, _ in last_pads), output_shape(last, last_pads)


def _gather(x, out, mode: str, in_sizes, out_sizes, befores, value: float, accumulate: bool) -> Launch:
    n = out.numel()
    return Launch(_pad_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                  [x, out, n, tuple(out_sizes), tuple(in_sizes), tuple(befores), float(value)],
                  dict(MODE=_MODE_NUMBER[mode], ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))


def _check_operands(fn: str, names: tuple[str, str], x: torch.Tensor, out: torch.Tensor | None,
                    shape) -> torch.Tensor:
    """``x`` (read) and ``out`` (written, of ``shape``): contiguous, float, of one dtype and device."""
    check_tensor(fn, names[0], x, FLOAT_DTYPES)
    out = prepare_out(fn, names[1], out, shape, x.dtype, x.device)
    for name, t in zip(names, (x, out)):
        if not t.is_contiguous():
            raise KernelArgumentError(f"{fn}: {name} must be contiguous (shape {tuple(t.shape)}, strides {t.stride()})")
    return out


def plan_pad(x: torch.Tensor, out: torch.Tensor | None, mode: str, pads, value: float = 0.0) -> list[Launch]:
    """``out = x`` padded by ``pads`` (one (before, after) pair per axis of x; only the last
    three axes may be padded) in ``mode``, ``value`` filling a constant pad."""
    fn = "pad"
    check_pads(fn, x.shape, mode, pads)
    out = _check_operands(fn, ("x", "out"), x, out, output_shape(x.shape, pads))
    in_sizes, befores, out_sizes = _as_padded_axes(x.shape, pads)
    return [_gather(x, out, mode, in_sizes, out_sizes, befores, value, False)]


def fold_shapes(shape, mode: str, pads) -> list[tuple[int, ...]]:
    """The scratch shapes ``plan_pad_backward`` folds through for data of ``shape``: one per
    padded axis but the last folded (none for ``constant``, which crops in one pass)."""
    if mode == "constant":
        return []
    folded = [axis for axis in reversed(range(len(shape))) if sum(pads[axis])]
    current, shapes = list(output_shape(shape, pads)), []
    for axis in folded[:-1]:
        current[axis] = shape[axis]
        shapes.append(tuple(current))
    return shapes


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """What the fold scratch holds: float64 for float64, float32 for the rest."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def plan_pad_backward(dy: torch.Tensor, dx: torch.Tensor, mode: str, pads, scratch=(),
                      accumulate: bool = False) -> list[Launch]:
    """``dx (+)=`` the gradient of padding ``dx``'s shape by ``pads`` in ``mode``, from the
    output gradient ``dy``; ``scratch``: tensors of ``fold_shapes`` and ``compute_dtype``
    (allocated here when not given)."""
    fn = "pad backward"
    check_tensor(fn, "dx", dx, FLOAT_DTYPES)
    shape = tuple(dx.shape)
    check_pads(fn, shape, mode, pads)
    check_tensor(fn, "dy", dy, FLOAT_DTYPES)
    if tuple(dy.shape) != output_shape(shape, pads):
        raise KernelArgumentError(f"{fn}: dy has shape {tuple(dy.shape)}; dx's shape {shape} padded by "
                                  f"{tuple(pads)} is {output_shape(shape, pads)}")
    _check_operands(fn, ("dy", "dx"), dy, dx, shape)
    folded = [axis for axis in reversed(range(len(shape))) if sum(pads[axis])]
    if mode == "constant" or not folded:  # a crop: the forward gather with the pads negated
        out_sizes, befores, in_sizes = _as_padded_axes(shape, pads)
        return [_gather(dy, dx, "constant", in_sizes, out_sizes, tuple(-b for b in befores), 0.0, accumulate)]
    shapes = fold_shapes(shape, mode, pads)
    scratch = list(scratch) or [torch.empty(s, dtype=compute_dtype(dx.dtype), device=dx.device) for s in shapes]
    for k, (want, have) in enumerate(zip(shapes, scratch)):
        if tuple(have.shape) != want or have.dtype != compute_dtype(dx.dtype) or not have.is_contiguous():
            raise KernelArgumentError(f"{fn}: scratch {k} must be contiguous {compute_dtype(dx.dtype)} of shape "
                                      f"{want}, got {have.dtype} {tuple(have.shape)}")
    if len(scratch) != len(shapes):
        raise KernelArgumentError(f"{fn}: {len(shapes)} scratch buffers needed, {len(scratch)} given")
    launches, source = [], dy
    for k, axis in enumerate(folded):
        last = k == len(folded) - 1
        target = dx if last else scratch[k]
        inner = 1
        for n in shape[axis + 1:]:
            inner *= n
        n = target.numel()
        launches.append(Launch(_fold_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                               [source, target, n, shape[axis], source.shape[axis], inner, *pads[axis]],
                               dict(MODE=_MODE_NUMBER[mode], ACCUMULATE=accumulate and last,
                                    BLOCK=ELEMENTWISE_BLOCK)))
        source = target
    return launches


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape, pads = ((32, 64, 56, 56), ((0, 0), (0, 0), (1, 1), (1, 1))) if large else \
        ((2, 3, 5, 4), ((0, 0), (0, 0), (1, 2), (2, 1)))
    x = torch.empty(shape, dtype=dtype)
    out = torch.empty(output_shape(shape, pads), dtype=dtype)
    launches = [(f"pad {mode}", plan_pad(x, out, mode, pads)[0]) for mode in MODES]
    for mode in ("edge", "reflect"):
        fold = plan_pad_backward(out, x, mode, pads, accumulate=True)
        launches += [(f"pad {mode} fold", fold[0]), (f"pad {mode} fold accumulating", fold[-1])]
    launches.append(("pad constant backward", plan_pad_backward(out, x, "constant", pads)[0]))
    return launches
