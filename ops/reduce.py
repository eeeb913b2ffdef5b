"""Reductions over any set of axes: sum, mean, max, min, the L1/L2 norms, prod, and nansum
and nanprod (NaN counted as 0 and 1), and their gradients.

Forward: each program takes a block of output elements and loops over the reduced elements
in blocks, both addressed through strides (the reduced axes need not be neighbours, nor
last: the input is never copied), keeping a tile of partial results that it reduces once
at the end, in a fixed order. float16/bfloat16 accumulate in float32, float64 in float64.

Backward is one elementwise pass over the input's shape that reads the output gradient (and
the output) broadcast along the reduced axes (stride 0):
``sum`` -> dy, ``mean`` -> dy / count, ``max``/``min`` -> dy where the element equals the
result (every tied element gets it, as in MXNet; a NaN element is the one that made the
result NaN), ``norm`` (ord 2) -> dy * x / norm (0 where the norm is 0, as torch's subgradient),
ord 1 -> dy * sign(x), ``nansum`` -> dy (0 at NaN), ``prod`` -> dy * y / x where x is not 0
(NaN where x is NaN), and at a zero the product of the other elements (torch's, not MXNet's
y / x = NaN): one more reduction first finds each output's ``cofactor``, the product of the
nonzero elements where exactly one is 0, else 0. ``nanprod`` likewise with NaN as 1 (its
gradient 0 there).

NaN in gives NaN out: a NaN among the reduced elements makes max, min and prod NaN too.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    INTERPRET,
    KernelArgumentError,
    Launch,
    check_tensor,
    element_offsets,
    elementwise_args,
    elementwise_launches,
    keep_nan,
    load_wide,
    prepare_out,
    store_result,
    widen,
)
from .memory import plan_fill

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_reduce.py")
KINDS = ("sum", "mean", "max", "min", "norm1", "norm2", "prod", "nansum", "nanprod")
# What prod's and nanprod's gradients read besides the output, a reduction of their own.
COFACTOR = {"prod": "cofactor", "nanprod": "nancofactor"}
# A program's tile of (outputs, reduced elements). The interpreter runs programs one after
# another: few large tiles are fast there.
TILE = 1 << 14 if INTERPRET else 2048


@triton.jit
def _multiply(a, b):
    return a * b


@triton.jit
def _reduce_kernel(X, Y, n, sizes, x_strides, y_strides, n_red, red_sizes, red_strides, scale: tl.float64,
                   KIND: tl.constexpr, FLAT: tl.constexpr, FLAT_RED: tl.constexpr, ACCUMULATE: tl.constexpr,
                   BLOCK_OUT: tl.constexpr, BLOCK_RED: tl.constexpr):
    index = tl.program_id(0).to(tl.int64) * BLOCK_OUT + tl.arange(0, BLOCK_OUT)
    out_mask = index < n
    base = element_offsets(index, FLAT, sizes, x_strides)
    ACC = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    if KIND == "max":
        acc = tl.full((BLOCK_OUT, BLOCK_RED), float("-inf"), ACC)
    elif KIND == "min":
        acc = tl.full((BLOCK_OUT, BLOCK_RED), float("inf"), ACC)
    elif KIND == "prod" or KIND == "nanprod" or KIND == "cofactor" or KIND == "nancofactor":
        acc = tl.full((BLOCK_OUT, BLOCK_RED), 1.0, ACC)
    else:
        acc = tl.zeros((BLOCK_OUT, BLOCK_RED), ACC)
    zeros = tl.zeros((BLOCK_OUT, BLOCK_RED), tl.int32)  # the cofactors' count of zero elements
    for start in range(0, n_red, BLOCK_RED):
        r = start + tl.arange(0, BLOCK_RED).to(tl.int64)
        mask = out_mask[:, None] & (r < n_red)[None, :]
        v = load_wide(X, base[:, None] + element_offsets(r, FLAT_RED, red_sizes, red_strides)[None, :], mask, 0.0)
        if KIND == "max":  # a NaN, once in, stays: NaN > x and x > NaN are both false
            acc = tl.where(mask & ((v > acc) | (v != v)), v, acc)
        elif KIND == "min":
            acc = tl.where(mask & ((v < acc) | (v != v)), v, acc)
        elif KIND == "norm2":
            acc += v * v
        elif KIND == "norm1":
            acc += tl.abs(v)
        elif KIND == "prod":
            acc *= tl.where(mask, v, 1.0)
        elif KIND == "nanprod":
            acc *= tl.where(mask & (v == v), v, 1.0)
        elif KIND == "nansum":
            acc += tl.where(v == v, v, 0.0)
        elif KIND == "cofactor" or KIND == "nancofactor":
            zero = mask & (v == 0.0)
            zeros += zero.to(tl.int32)
            skip = (mask == 0) | zero
            if KIND == "nancofactor":
                skip = skip | (v != v)
            acc *= tl.where(skip, 1.0, v)
        else:
            acc += v
    if KIND == "max":
        nan = tl.max((acc != acc).to(tl.int32), axis=1)
        result = tl.where(nan > 0, float("nan"), tl.max(acc, axis=1))
    elif KIND == "min":
        nan = tl.max((acc != acc).to(tl.int32), axis=1)
        result = tl.where(nan > 0, float("nan"), tl.min(acc, axis=1))
    elif KIND == "norm2":
        result = tl.sqrt(tl.sum(acc, axis=1))
    elif KIND == "prod" or KIND == "nanprod":
        result = tl.reduce(acc, 1, _multiply)
    elif KIND == "cofactor" or KIND == "nancofactor":  # the product of the others at the one zero
        result = tl.where(tl.sum(zeros, axis=1) == 1, tl.reduce(acc, 1, _multiply), 0.0)
    else:
        result = tl.sum(acc, axis=1) * scale.to(acc.dtype)
    store_result(Y, element_offsets(index, FLAT, sizes, y_strides), result, out_mask, ACCUMULATE)


@triton.jit
def _reduce_backward_kernel(X, Y, DY, C, DX, n, sizes, x_strides, y_strides, dy_strides, c_strides, dx_strides,
                            scale: tl.float64, KIND: tl.constexpr, FLAT: tl.constexpr, ACCUMULATE: tl.constexpr,
                            BLOCK: tl.constexpr):
    index = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = index < n
    dy = load_wide(DY, element_offsets(index, FLAT, sizes, dy_strides), mask, 0.0)
    if KIND == "sum" or KIND == "mean":
        grad = dy * scale.to(dy.dtype)
    else:
        x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 0.0)
        if KIND == "norm1":
            grad = dy * keep_nan(x, tl.where(x > 0, 1.0, tl.where(x < 0, -1.0, 0.0)))
        elif KIND == "nansum":
            grad = tl.where(x == x, dy, 0.0)
        elif KIND == "prod" or KIND == "nanprod":
            y = load_wide(Y, element_offsets(index, FLAT, sizes, y_strides), mask, 0.0).to(x.dtype)
            cofactor = load_wide(C, element_offsets(index, FLAT, sizes, c_strides), mask, 0.0).to(x.dtype)
            grad = dy * tl.where(x == 0.0, cofactor, y / tl.where(x == 0.0, 1.0, x))
            if KIND == "nanprod":
                grad = tl.where(x == x, grad, 0.0)
        else:
            y = widen(tl.load(Y + element_offsets(index, FLAT, sizes, y_strides), mask=mask, other=0.0), X)
            if KIND == "norm2":
                grad = tl.where(y == 0.0, 0.0, dy * x / y)
            else:  # max, min: the elements that are the result (NaN made a NaN result)
                grad = tl.where((x == y) | (x != x), dy, 0.0)
    store_result(DX, element_offsets(index, FLAT, sizes, dx_strides), grad, mask, ACCUMULATE)


def _check_axes(fn: str, x: torch.Tensor, axes) -> tuple[int, ...]:
    normalised = tuple(sorted({a % x.dim() for a in axes})) if x.dim() else ()
    if any(not -x.dim() <= a < x.dim() for a in axes) or len(normalised) != len(tuple(axes)):
        raise KernelArgumentError(f"{fn}: axes={tuple(axes)} are not distinct axes of shape {tuple(x.shape)}")
    return normalised


def _at_zero(t: torch.Tensor, axes) -> torch.Tensor:
    """``t`` with ``axes`` fixed at index 0: the view of the other axes, keeping their strides."""
    return t[tuple(0 if d in axes else slice(None) for d in range(t.dim()))]


def _pow2(v: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(v, 1))))


def reduced_shape(shape, axes, keepdims: bool) -> tuple[int, ...]:
    """The output shape: ``axes`` dropped (kept as 1 with ``keepdims``)."""
    return tuple(1 if d in axes else n for d, n in enumerate(shape) if keepdims or d not in axes)


def plan_reduce(x: torch.Tensor, out: torch.Tensor, kind: str, axes, accumulate: bool = False) -> list[Launch]:
    """``out (+)= kind(x)`` over ``axes`` (``KINDS``, or a ``COFACTOR`` kind for prod's
    gradient); ``out`` holds the kept axes in order (with or without 1s in the reduced places).
    ``accumulate`` adds the result into ``out`` (a broadcast operand's gradient under
    ``grad_req='add'``)."""
    fn = f"reduce_{kind}"
    if kind not in KINDS + tuple(COFACTOR.values()):
        raise KernelArgumentError(f"reduce: kind={kind!r} is not one of {', '.join(KINDS)}")
    check_tensor(fn, "x", x)
    axes = _check_axes(fn, x, axes)
    kept_shape = tuple(n for d, n in enumerate(x.shape) if d not in axes)
    count = math.prod(x.shape[d] for d in axes)
    out = prepare_out(fn, "out", out, out.shape if out is not None else kept_shape, x.dtype, x.device)
    if out.numel() != math.prod(kept_shape):
        raise KernelArgumentError(f"{fn}: out has shape {tuple(out.shape)} but reducing {tuple(x.shape)} over "
                                  f"axes {axes} keeps {kept_shape}")
    if count == 0 and kind in ("max", "min"):
        raise KernelArgumentError(f"{fn}: the {kind} of no elements (axes {axes} of shape {tuple(x.shape)})")
    if out.numel() == 0:
        return []
    y = out.reshape(kept_shape) if kept_shape else out.reshape(())
    if count == 0:  # an empty sum: 0, an empty mean: NaN (0/0, as numpy and torch), an empty product: 1
        empty = {"mean": float("nan"), "prod": 1.0, "nanprod": 1.0}.get(kind, 0.0)
        return plan_fill(y, empty, accumulate=accumulate)
    kept = _at_zero(x, axes) if axes else x
    reduced = _at_zero(x, set(range(x.dim())) - set(axes))
    args, flat, _ = elementwise_args(fn, kept_shape or (1,), x=kept.reshape(kept_shape or (1,)),
                                     y=y.reshape(kept_shape or (1,)))
    red_args, flat_red, _ = elementwise_args(fn, reduced.shape, r=reduced)
    block_red = min(_pow2(count), TILE)
    block_out = max(1, min(TILE // block_red, _pow2(out.numel())))
    grid = (triton.cdiv(out.numel(), block_out),)
    scale = 1.0 / count if kind == "mean" else 1.0
    return [Launch(_reduce_kernel, grid, [x, y, *args, *red_args, scale],
                   dict(KIND=kind, FLAT=flat, FLAT_RED=flat_red, ACCUMULATE=accumulate, BLOCK_OUT=block_out,
                        BLOCK_RED=block_red))]


def plan_reduce_backward(kind: str, axes, grad_out: torch.Tensor, grad_x: torch.Tensor, x: torch.Tensor | None = None,
                         out: torch.Tensor | None = None, accumulate: bool = False,
                         cofactor: torch.Tensor | None = None) -> list[Launch]:
    """``grad_x (+)=`` the gradient of ``out = kind(x)`` over ``axes``; ``grad_out`` and
    ``out`` hold the kept axes (any 1s); ``x`` is read for all but sum and mean, ``out`` for
    max, min, norm2, prod and nanprod. For prod and nanprod ``cofactor`` is scratch of the
    kept axes and x's dtype that a first launch fills (``COFACTOR``)."""
    fn = f"reduce_{kind}_backward"
    if kind not in KINDS:
        raise KernelArgumentError(f"reduce: kind={kind!r} is not one of {', '.join(KINDS)}")
    check_tensor(fn, "grad_out", grad_out)
    check_tensor(fn, "grad_x", grad_x)
    axes = _check_axes(fn, grad_x, axes)
    kept_shape = reduced_shape(grad_x.shape, axes, keepdims=True)
    needs = {"sum": (), "mean": (), "norm1": ("x",), "norm2": ("x", "out"), "max": ("x", "out"),
             "min": ("x", "out"), "nansum": ("x",), "prod": ("x", "out", "cofactor"),
             "nanprod": ("x", "out", "cofactor")}[kind]
    given = {"x": x, "out": out, "cofactor": cofactor}
    for name in needs:
        if given[name] is None:
            raise KernelArgumentError(f"{fn}: {kind}'s gradient reads {name}")
    if x is not None and tuple(x.shape) != tuple(grad_x.shape):
        raise KernelArgumentError(f"{fn}: x has shape {tuple(x.shape)} but grad_x {tuple(grad_x.shape)}")

    def broadcast(t):
        if t.numel() != math.prod(kept_shape):
            raise KernelArgumentError(f"{fn}: a reduced value has shape {tuple(t.shape)}; reducing "
                                      f"{tuple(grad_x.shape)} over axes {axes} keeps {kept_shape}")
        return t.reshape(kept_shape).expand(grad_x.shape)

    count = math.prod(grad_x.shape[d] for d in axes)
    first = []
    if kind in COFACTOR:
        if cofactor.dtype != x.dtype:
            raise KernelArgumentError(f"{fn}: cofactor must be {x.dtype}, got {cofactor.dtype}")
        first = plan_reduce(x, cofactor, COFACTOR[kind], axes)
    tensors = dict(x=x if x is not None else grad_x, y=broadcast(out if out is not None else grad_out),
                   dy=broadcast(grad_out), c=broadcast(cofactor if cofactor is not None else grad_out), dx=grad_x)
    scale = 1.0 / count if kind == "mean" and count else 1.0
    return first + elementwise_launches(fn, grad_x.shape, tensors, lambda t, args, flat, grid: Launch(
        _reduce_backward_kernel, grid, [*t.values(), *args, scale],
        dict(KIND=kind, FLAT=flat, ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK)))


def reduce(x: torch.Tensor, kind: str, axes, keepdims: bool = False) -> torch.Tensor:
    """Standalone forward."""
    axes = _check_axes(f"reduce_{kind}", x, axes)
    out = torch.empty(reduced_shape(x.shape, axes, keepdims), dtype=x.dtype, device=x.device)
    for launch in plan_reduce(x, out, kind, axes):
        launch()
    return out


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape = (64, 512, 1024) if large else (5, 3, 7)
    x = torch.empty(shape, dtype=dtype)
    rows, cols = torch.empty(shape[0], shape[1], dtype=dtype), torch.empty(shape[1], dtype=dtype)
    launches = [(f"reduce {kind} of the last axis", plan_reduce(x, rows, kind, (2,))[0]) for kind in KINDS]
    launches.append(("reduce sum of the outer axes", plan_reduce(x, cols, "sum", (0, 2))[0]))
    launches.append(("reduce sum accumulating", plan_reduce(x, cols, "sum", (0, 2), accumulate=True)[0]))
    launches += [(f"reduce {kind} backward", plan_reduce_backward(kind, (2,), rows, torch.empty_like(x), x, rows)[0])
                 for kind in ("sum", "max", "norm1", "norm2", "nansum")]
    for kind in COFACTOR:
        first, grad = plan_reduce_backward(kind, (2,), rows, torch.empty_like(x), x, rows, cofactor=rows)
        launches += [(f"reduce {COFACTOR[kind]}", first), (f"reduce {kind} backward", grad)]
    launches.append(("reduce backward accumulating",
                     plan_reduce_backward("mean", (0, 2), cols, torch.empty_like(x), accumulate=True)[0]))
    return launches
