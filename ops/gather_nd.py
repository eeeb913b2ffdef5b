"""gather_nd and scatter_nd: elements or slices of an array addressed by ``M`` coordinates
each, and their gradients summed per slice in a fixed order.

The first ``M`` axes of the array are one axis of ``prod(shape[:M])`` rows, each a slice of
the remaining axes (``columns`` values): one kernel of its own turns each position's ``M``
coordinates into its row (float64, exact to 2**53; a negative coordinate counts from the
end of its axis, as MXNet's gather_nd does; one that is not a whole number inside its axis
makes the row NaN). The rest is Embedding's (``ops/embedding.py``) on the array seen as a
(rows, columns) table: gather_nd gathers rows (a NaN row where the coordinates were invalid)
and its gradient sums the output gradients of each row's positions without atomics, in a
fixed order; scatter_nd is that sum (positions sharing a row add up: MXNet leaves them
undefined), and its gradient the gather.

A scatter with an invalid position has no row to show it in: the coordinates kernel raises
a flag (an atomic maximum of 0 and 1: the same result in any order) and one more launch
makes the whole output NaN, so a lost value never looks like a computed one.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    INDEX_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    element_block,
)
from .embedding import plan_embedding, plan_embedding_weight_grad
from .memory import plan_copy, plan_fill

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_gather_nd.py")
MAX_COORDINATES = 8  # M: the axes one position addresses (MXNet allows up to 10 dimensions)


@triton.jit
def _rows_kernel(IDX, ROWS, FLAG, n, sizes, M: tl.constexpr, HAS_FLAG: tl.constexpr, BLOCK: tl.constexpr):
    """ROWS[y] = the row of the coordinates IDX[:, y] (row-major over the first M axes, whose
    sizes are ``sizes``), NaN where one is not a whole number in [-size, size)."""
    index, mask = element_block(n, BLOCK)
    row = tl.zeros((BLOCK,), tl.float64)
    valid = mask
    for m in tl.static_range(M):
        size = sizes[m] + tl.zeros((), tl.float64)  # a size of 1 arrives as a constant
        i = tl.load(IDX + m * n + index, mask=mask, other=0).to(tl.float64)
        whole = (i == tl.floor(i)) & (i >= -size) & (i < size)  # NaN and the infinities are not
        valid = valid & whole
        row = row * size + tl.where(whole, tl.where(i < 0.0, i + size, i), 0.0)
    tl.store(ROWS + index, tl.where(valid, row, float("nan")), mask=mask)
    if HAS_FLAG:
        bad = tl.max((mask & ~valid).to(tl.float32), axis=0)
        tl.atomic_max(FLAG, bad)


@triton.jit
def _poison_kernel(OUT, FLAG, n, BLOCK: tl.constexpr):
    """OUT = NaN everywhere when FLAG is set; nothing is written otherwise."""
    index, mask = element_block(n, BLOCK)
    raised = tl.load(FLAG + tl.zeros((BLOCK,), tl.int32)) != 0.0  # one value, read by every lane
    tl.store(OUT + index, tl.full((BLOCK,), float("nan"), tl.float32).to(OUT.dtype.element_ty), mask=mask & raised)


def scratch_shapes(indices_shape) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """{name: (shape, dtype)} of the scratch every plan here takes: the rows (float64) and
    the scatter's flag (one float32)."""
    return {"rows": ((math.prod(indices_shape[1:]),), torch.float64), "flag": ((1,), torch.float32)}


def _check(fn: str, table: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, scratch: dict) -> tuple:
    """(rows, columns, positions) of ``table`` addressed by ``indices``, whose positions hold
    ``values`` (gather_nd's output or scatter_nd's data)."""
    check_tensor(fn, "indices", indices, FLOAT_DTYPES + INDEX_DTYPES)
    check_tensor(fn, "table", table)
    check_tensor(fn, "values", values, (table.dtype,))
    if indices.dim() < 1 or not 1 <= indices.shape[0] <= min(table.dim(), MAX_COORDINATES):
        raise KernelArgumentError(f"{fn}: indices of shape {tuple(indices.shape)} must hold 1 to "
                                  f"{min(table.dim(), MAX_COORDINATES)} coordinates along their first axis")
    m = indices.shape[0]
    want = (*indices.shape[1:], *table.shape[m:])
    if tuple(values.shape) != want:
        raise KernelArgumentError(f"{fn}: the values have shape {tuple(values.shape)} where {want} is addressed")
    if not (table.is_contiguous() and indices.is_contiguous() and values.is_contiguous()):
        raise KernelArgumentError(f"{fn}: table, indices and values must be contiguous")
    for name, (shape, dtype) in scratch_shapes(indices.shape).items():
        have = scratch.get(name)
        if have is None or tuple(have.shape) != shape or have.dtype != dtype or have.device != table.device:
            raise KernelArgumentError(f"{fn}: scratch {name!r} must be {dtype} of shape {shape} on {table.device}")
    return math.prod(table.shape[:m]), math.prod(table.shape[m:]), math.prod(indices.shape[1:])


def _rows(indices: torch.Tensor, table_shape, scratch: dict, flag: bool) -> list[Launch]:
    m, n = indices.shape[0], math.prod(indices.shape[1:])
    return [Launch(_rows_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                   [indices, scratch["rows"], scratch["flag"], n, tuple(int(s) for s in table_shape[:m])],
                   dict(M=m, HAS_FLAG=flag, BLOCK=ELEMENTWISE_BLOCK))]


def plan_gather_nd(data: torch.Tensor, indices: torch.Tensor, out: torch.Tensor, scratch: dict) -> list[Launch]:
    """``out[y, ...] = data[indices[0, y], ..., indices[M-1, y], ...]``; NaN slices where the
    coordinates are not whole numbers inside their axes (negative ones count from the end)."""
    rows, columns, n = _check("gather_nd", data, indices, out, scratch)
    return (_rows(indices, data.shape, scratch, flag=False)
            + plan_embedding(scratch["rows"], data.view(rows, columns), out.view(n, columns)))


def plan_gather_nd_backward(grad_out: torch.Tensor, indices: torch.Tensor, grad_data: torch.Tensor, scratch: dict,
                            accumulate: bool = False) -> list[Launch]:
    """``grad_data (+)=`` each slice's sum of the output gradients of the positions that
    gathered it, in a fixed order (invalid positions add nothing: their output was NaN)."""
    rows, columns, n = _check("gather_nd backward", grad_data, indices, grad_out, scratch)
    return (_rows(indices, grad_data.shape, scratch, flag=False)
            + plan_embedding_weight_grad(scratch["rows"], grad_out.view(n, columns), grad_data.view(rows, columns),
                                         accumulate))


def plan_scatter_nd(data: torch.Tensor, indices: torch.Tensor, out: torch.Tensor, scratch: dict) -> list[Launch]:
    """``out`` zero but at the addressed slices, each the sum of the data of the positions
    addressing it; all NaN if any position's coordinates are invalid."""
    rows, columns, n = _check("scatter_nd", out, indices, data, scratch)
    size = out.numel()
    return (plan_fill(scratch["flag"], 0.0) + _rows(indices, out.shape, scratch, flag=True)
            + plan_embedding_weight_grad(scratch["rows"], data.view(n, columns), out.view(rows, columns))
            + [Launch(_poison_kernel, (triton.cdiv(max(size, 1), ELEMENTWISE_BLOCK),), [out, scratch["flag"], size],
                      dict(BLOCK=ELEMENTWISE_BLOCK))])


def plan_scatter_nd_backward(grad_out: torch.Tensor, indices: torch.Tensor, grad_data: torch.Tensor, scratch: dict,
                             accumulate: bool = False, gathered: torch.Tensor | None = None) -> list[Launch]:
    """``grad_data (+)=`` the output gradient at each position's slice (NaN where its
    coordinates are invalid). Accumulating gathers into ``gathered`` (grad_data's shape)
    first, then adds."""
    rows, columns, n = _check("scatter_nd backward", grad_out, indices, grad_data, scratch)
    target = grad_data
    if accumulate:
        if gathered is None or gathered.shape != grad_data.shape or gathered.dtype != grad_data.dtype:
            raise KernelArgumentError("scatter_nd backward: accumulating needs gathered, of grad_data's shape and "
                                      "dtype")
        target = gathered
    launches = (_rows(indices, grad_out.shape, scratch, flag=False)
                + plan_embedding(scratch["rows"], grad_out.view(rows, columns), target.view(n, columns)))
    return launches + (plan_copy(gathered, grad_data, accumulate=True) if accumulate else [])


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape, indices_shape = ((64, 512, 1024), (2, 8, 512)) if large else ((3, 4, 5), (2, 7))
    data, indices = torch.empty(shape, dtype=dtype), torch.zeros(indices_shape, dtype=torch.int64)
    values = torch.empty(*indices_shape[1:], *shape[2:], dtype=dtype)
    scratch = {name: torch.empty(s, dtype=t) for name, (s, t) in scratch_shapes(indices_shape).items()}
    gather, scatter = plan_gather_nd(data, indices, values, scratch), plan_scatter_nd(values, indices, data, scratch)
    launches = [("gather_nd coordinates", gather[0]), ("gather_nd coordinates flagged", scatter[1]),
                ("scatter_nd poison", scatter[-1])]
    if dtype == torch.float32:  # float coordinates, as MXNet's iterators give them
        launches.append(("gather_nd float coordinates", plan_gather_nd(data, indices.float(), values, scratch)[0]))
    return launches
