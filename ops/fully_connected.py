"""FullyConnected: ``y = act(x @ w.T + b)`` with bias and activation fused in the epilogue,
and its backward as plain products:

    dx  = dy' @ w               _fc_backward_input_kernel
    dw  = dy'.T @ x             _fc_backward_weight_kernel
    db  = sum_rows(dy')         _column_sum_kernel

where dy' = dy * act'(y) is applied before them, never inside them: in a network by the
epilogue of the input-gradient kernel of the layer after this one (``input_act``: that
kernel's x is this layer's y; it also writes the column sums of 32-row parts, from which
this layer's db is summed, as cuBLASLt's DRELU_BGRAD epilogue does), else by the
activation's own backward kernel. The products then load both operands as they are
(nothing recomputed per tile, so the pipeliner copies them ahead), and y need not be kept
through them.

x is (M, K), w is (N, K) (MXNet's layout), y is (M, N); any strides. Products accumulate
in float32 (float64 for float64). Float32 operands use ``precision``: ``"ieee"`` (exact
fp32, the default) or ``"tf32"`` (tensor cores, 10-bit mantissa). bf16 operands are
upcast to float32 after the same rounding in the interpreter, where bf16 arithmetic is
not implemented; on a GPU they go to the tensor cores as bf16.

On Hopper and later the forward also has a persistent TMA path (``_fc_forward_tma``): one
program per SM walks the output tiles, the tensor memory accelerator copies the x and w
tiles into swizzled shared memory (out-of-bounds rows and columns read as zeros) and
writes y back from shared memory. It needs 16-byte aligned rows and tensor-core operands
(float16, bfloat16, or float32 with TF32); its configs sit beside the pointer kernel's in
one autotuning, so the faster of the two is what runs. ``TRITONSYM_TMA=0`` turns it off,
``=1`` plans it anywhere (the interpreter runs it; kernel_report compiles it).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from ._common import (
    AUTOTUNE,
    AUTOTUNE_OPTIONS,
    INTERPRET,
    KernelArgumentError,
    Launch,
    aligned,
    as_2d,
    cast_for,
    check_tensor,
    contiguous_alignment,
    persistent_programs,
    prepare_out,
    round_to_bf16,
    run,
    store,
    store_result,
)
from .activation import ACTIVATIONS, act_forward, act_grad_from_output, grad_from_output, plan_activation_backward

try:  # host-side TMA descriptors: Triton 3.3 and later
    from triton.tools.tensor_descriptor import TensorDescriptor
except ImportError:  # pragma: no cover - older Triton has the pointer kernels only
    TensorDescriptor = None

PRECISIONS = ("ieee", "tf32")
TMA_MODE = os.environ.get("TRITONSYM_TMA", "auto")  # "auto": on CUDA devices of compute capability 9+


def _configs() -> list[triton.Config]:
    if INTERPRET:
        # Autotuning needs a GPU; the interpreter wants the fewest, largest programs.
        return [triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 128, "GROUP_M": 8}, num_warps=4)]
    # Hopper (and Ampere) tiles: the large ones feed the tensor cores for fp16/bf16/tf32 at
    # M=N=K >= 2048, the small ones keep enough programs in flight for small batches (the
    # tutorial MLP has M=128), and float64 / exact float32 (no tensor cores) prune to tiles
    # that do not spill. TRITONSYM_AUTOTUNE=0 keeps the first config that fits (a fast
    # bind, and one run of each kernel under compute-sanitizer).
    return [
        triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 64, "GROUP_M": 8}, num_warps=8, num_stages=3),
        triton.Config({"BLOCK_M": 128, "BLOCK_N": 256, "BLOCK_K": 64, "GROUP_M": 8}, num_warps=8, num_stages=3),
        triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32, "GROUP_M": 8}, num_warps=8, num_stages=4),
        triton.Config({"BLOCK_M": 128, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}, num_warps=4, num_stages=4),
        triton.Config({"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 32, "GROUP_M": 8}, num_warps=4, num_stages=4),
        triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8}, num_warps=4, num_stages=4),
        triton.Config({"BLOCK_M": 32, "BLOCK_N": 64, "BLOCK_K": 64, "GROUP_M": 8}, num_warps=4, num_stages=3),
        triton.Config({"BLOCK_M": 32, "BLOCK_N": 32, "BLOCK_K": 16, "GROUP_M": 8}, num_warps=2, num_stages=3),
    ]


# Shared memory of a config's pipelined operand tiles, num_stages * (BLOCK_M + BLOCK_N) *
# BLOCK_K elements, that surely fits: the kernels' other buffers (the backward's y tiles,
# the computed dy' tile, the epilogue) take up to 2.4x this (compiled for sm_90), within
# Hopper's 227 KB per program. The autotuner skips configs that do not fit; without it,
# nothing would.
_UNTUNED_STAGE_BYTES = 96 * 1024


def _stage_bytes(config, element_size: int) -> int:
    k = config.kwargs
    return config.num_stages * (k["BLOCK_M"] + k["BLOCK_N"]) * k["BLOCK_K"] * element_size


def _prune(configs, named_args, **kwargs):
    """float64 and exact float32 have no tensor-core path: large tiles only spill registers
    (and float64's do not fit in shared memory). With autotuning, the configs that can fit
    in shared memory; without, the first config whose tiles surely fit."""
    first = next(v for v in named_args.values() if isinstance(v, torch.Tensor))
    exact = first.dtype == torch.float64 or (first.dtype == torch.float32 and kwargs.get("PRECISION") == "ieee")
    if exact:
        limit = 64 * 64 if first.dtype == torch.float64 else 128 * 128
        configs = [c for c in configs if c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"] <= limit] or configs[-1:]
    size = first.element_size()
    if AUTOTUNE:
        # Configs whose pipelined operand tiles alone exceed a program's shared memory cannot
        # launch: not compiled at all (a cold bind would spend seconds on each).
        return [c for c in configs if _stage_bytes(c, size) <= _TMA_SHARED_LIMIT] or configs[-1:]
    return [next((c for c in configs if _stage_bytes(c, size) <= _UNTUNED_STAGE_BYTES), configs[-1])]


# The TMA path's tile (BLOCK_M, BLOCK_N, BLOCK_K) per operand width in bytes. A descriptor's
# block shape is part of the compiled kernel's signature, so it cannot follow the
# autotuner's config the way pointer offsets do (a config pre_hook could set it, but Triton
# then keeps no autotune results on disk): the planner builds the descriptors for this one
# tile and the TMA configs vary only warps and stages. 128x256 is a pair of 64x256 wgmma
# per K step; y goes out in two 128x128 halves, which leaves shared memory for 3-4 stages.
# The interpreter's tile is small, so that its tests cross tile edges and share programs.
_TMA_TILES = {2: (32, 64, 32), 4: (32, 64, 32)} if INTERPRET else {2: (128, 256, 64), 4: (128, 256, 32)}
_TMA_SHARED_LIMIT = 226 * 1024  # Hopper's 227 KiB per program, less the pipeline's barriers


def _forward_configs() -> list[triton.Config]:
    plain = [triton.Config({**c.kwargs, "TMA": False}, num_warps=c.num_warps, num_stages=c.num_stages)
             for c in _configs()]
    # 2 stages only where 3 do not fit (TF32's input gradient; see _tma_prune)
    stages = (1,) if INTERPRET else (3, 4, 2)
    tma = [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 8, "TMA": True},
                         num_warps=8, num_stages=s)
           for bm, bn, bk in dict.fromkeys(_TMA_TILES.values()) for s in stages]
    return plain + tma


def _half_output_bytes(config, element_size: int) -> int:
    k = config.kwargs
    return k["BLOCK_M"] * k["BLOCK_N"] // 2 * element_size


def _forward_shared_bytes(config, element_size: int, args: dict | None = None) -> int:
    """The TMA forward's pipelined operand tiles and its half-tile output buffer."""
    return _stage_bytes(config, element_size) + _half_output_bytes(config, element_size)


def _input_shared_bytes(config, element_size: int, args: dict | None = None) -> int:
    """The TMA input gradient's: as the forward's, and in TF32 a K-major copy of one w tile
    (a TF32 tensor-core operand must be K-major; w's tile is not). From the sm_90 compiler
    output (perf/results/kernels-sm90-*.md): 176 KiB in bf16 at 3 stages, 240 in TF32.

    In 16-bit types, the epilogue's partial bias sums take 3 bytes per tile element more
    (96 KiB at 128x256, Triton 3.6) when the compiler cannot copy x's rows 16 bytes at a
    time (ALIGN_K below 8 elements): it then converts the tile's layout through shared
    memory. Unplanned, that made the H200 refuse the launch (272 KiB) on rows of 4088
    elements, before the epilogue was told their alignment (8)."""
    k = config.kwargs
    extra = k["BLOCK_N"] * k["BLOCK_K"] * element_size if element_size == 4 else 0
    if element_size == 2 and args is not None and args.get("PARTIALS") and args.get("ALIGN_K", 1) < 8:
        extra += k["BLOCK_M"] * k["BLOCK_N"] * 3
    return _forward_shared_bytes(config, element_size) + extra


def _weight_shared_bytes(config, element_size: int, args: dict | None = None) -> int:
    """The TMA weight gradient's: its operand tiles and 4 KiB more (148 KiB in bf16 at 3 stages)."""
    return _stage_bytes(config, element_size) + 4096


def _tma_prune(first: str, tile_of, shared_bytes):
    """An early prune for a kernel with a TMA path: without descriptors (``first`` None), the
    pointer kernel's configs; with them, the TMA configs of the descriptors' tile
    (``tile_of(named_args)``: BLOCK_M, BLOCK_N, BLOCK_K) whose shared memory
    (``shared_bytes(config, element size)``) fits as well (the autotuner races both), with
    2 stages only where no deeper pipeline fits; or only the first TMA config where nothing
    is raced (interpreter, TRITONSYM_AUTOTUNE=0)."""
    def prune(configs, named_args, **kwargs):
        desc = named_args[first]
        plain = [c for c in configs if not c.kwargs["TMA"]]
        if desc is None:
            return _prune(plain, named_args, **kwargs)
        size = desc.base.element_size()
        tile = tile_of(named_args)
        tma = [c for c in configs if c.kwargs["TMA"]
               and tile == (c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"], c.kwargs["BLOCK_K"])
               and (INTERPRET or shared_bytes(c, size, {**named_args, **kwargs}) <= _TMA_SHARED_LIMIT)]
        tma = [c for c in tma if c.num_stages >= 3] or tma
        if not tma:
            raise KernelArgumentError(f"fully_connected: no TMA config has the descriptors' tile {tile} and fits "
                                      f"in shared memory")
        if INTERPRET or not AUTOTUNE:
            return tma[:1]
        return _prune(plain, named_args, **kwargs) + tma
    return prune


# Each kernel's tile from its descriptors' block shapes (see _tma_descriptors and _backward_descriptors).
_prune_forward = _tma_prune("X_DESC", lambda a: (a["X_DESC"].block_shape[0], a["W_DESC"].block_shape[0],
                                                 a["X_DESC"].block_shape[1]), _forward_shared_bytes)
_prune_input = _tma_prune("DY_DESC", lambda a: (a["DY_DESC"].block_shape[0], a["W_DESC"].block_shape[1],
                                                a["DY_DESC"].block_shape[1]), _input_shared_bytes)
_prune_weight = _tma_prune("X_DESC", lambda a: (a["X_DESC"].block_shape[1], a["DY_DESC"].block_shape[1],
                                                a["X_DESC"].block_shape[0]), _weight_shared_bytes)


def _autotune(restore: list[str], configs=None, prune=_prune, key=()):
    # restore_value: tuning runs a kernel several times, which must not add into an
    # accumulated gradient more than once. PRECISION is in the key: an exact float32
    # launch must not reuse the tiles tuned for a TF32 one of the same shape.
    return triton.autotune(configs=configs or _configs(), key=["M", "N", "K", "PRECISION", *key],
                           restore_value=restore, prune_configs_by={"early_config_prune": prune}, **AUTOTUNE_OPTIONS)


@triton.jit
def _tile(pid, rows, cols, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
    """Grouped tile order: GROUP_M row tiles share their column tiles while in L2."""
    tiles_m = tl.cdiv(rows, BLOCK_M)
    tiles_n = tl.cdiv(cols, BLOCK_N)
    per_group = GROUP_M * tiles_n
    first_m = (pid // per_group) * GROUP_M
    group_m = tl.minimum(tiles_m - first_m, GROUP_M)
    return first_m + (pid % per_group) % group_m, (pid % per_group) // group_m


@triton.jit
def _operand(v, UPCAST: tl.constexpr):
    """A loaded tile as a tl.dot operand."""
    if UPCAST:
        return v.to(tl.float32)
    else:
        return v


@triton.jit
def _mma(a, b, acc, PRECISION: tl.constexpr):
    """acc + a @ b. Triton 3.6's tl.dot cannot take a float64 accumulator (it asserts a
    float32 out_dtype), so float64 adds the product instead; the rest accumulate in the dot."""
    if acc.dtype == tl.float64:
        return acc + tl.dot(a, b, input_precision=PRECISION)
    else:
        return tl.dot(a, b, acc, input_precision=PRECISION)


@triton.jit
def _rounded_operand(v, DTYPE: tl.constexpr, UPCAST: tl.constexpr):
    """A computed float32/64 tile rounded to the operand dtype, as a tl.dot operand."""
    if UPCAST:
        return round_to_bf16(v.to(tl.float32)).to(tl.float32)
    else:
        return v.to(DTYPE)


@triton.jit
def _tile_product(A, B, rows, cols, red, a_stride_r, a_stride_k, b_stride_k, b_stride_c, pid_r, pid_c,
                  ACC: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """One BLOCK_M x BLOCK_N tile of A @ B (A rows x red, B red x cols, any strides) through
    pointers, BLOCK_K of the reduction a step; past the edges reads zeros. The forward and
    both backward products are this, with their operands' strides."""
    rr = (pid_r * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    rc = (pid_c * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
    rk = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), ACC)
    a_ptrs = A + rr[:, None] * a_stride_r + rk[None, :] * a_stride_k
    b_ptrs = B + rk[:, None] * b_stride_k + rc[None, :] * b_stride_c
    for k in range(0, red, BLOCK_K):
        a = tl.load(a_ptrs, mask=(rr[:, None] < rows) & (rk[None, :] + k < red), other=0.0)
        b = tl.load(b_ptrs, mask=(rk[:, None] + k < red) & (rc[None, :] < cols), other=0.0)
        acc = _mma(_operand(a, UPCAST), _operand(b, UPCAST), acc, PRECISION)
        a_ptrs += BLOCK_K * a_stride_k
        b_ptrs += BLOCK_K * b_stride_k
    return acc


@triton.jit
def _tma_tile_product(A_DESC, B_DESC, red, pid_r, pid_c, A_T: tl.constexpr, B_T: tl.constexpr,
                      PRECISION: tl.constexpr, UPCAST: tl.constexpr,
                      BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """One BLOCK_M x BLOCK_N tile of A @ B from TMA copies, BLOCK_K of the reduction a step
    (zeros past the edges): A's tiles stored BLOCK_M x BLOCK_K, or with A_T BLOCK_K x
    BLOCK_M and read transposed from shared memory; B's BLOCK_K x BLOCK_N, or with B_T
    BLOCK_N x BLOCK_K. Inlined into each persistent loop, whose pipeliner then copies the
    next tile's first operands during this tile's last products."""
    acc = tl.zeros((BLOCK_M, BLOCK_N), tl.float32)
    for k in range(0, tl.cdiv(red, BLOCK_K)):
        if A_T:
            a = _operand(A_DESC.load([k * BLOCK_K, pid_r * BLOCK_M]), UPCAST).T
        else:
            a = _operand(A_DESC.load([pid_r * BLOCK_M, k * BLOCK_K]), UPCAST)
        if B_T:
            b = _operand(B_DESC.load([pid_c * BLOCK_N, k * BLOCK_K]), UPCAST).T
        else:
            b = _operand(B_DESC.load([k * BLOCK_K, pid_c * BLOCK_N]), UPCAST)
        acc = _mma(a, b, acc, PRECISION)
    return acc


@triton.jit
def _fc_forward_tiles(
    X, W, B, Y, slope, M, N, K,
    x_stride_m, x_stride_k, w_stride_n, w_stride_k, b_stride, y_stride_m, y_stride_n,
    HAS_BIAS: tl.constexpr, ACT: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """Each program computes a BLOCK_M x BLOCK_N tile of y = act(x @ w.T + b) through pointers."""
    pid_m, pid_n = _tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    rm = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    rn = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
    ACC = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    acc = _tile_product(X, W, M, N, K, x_stride_m, x_stride_k, w_stride_k, w_stride_n, pid_m, pid_n, ACC, PRECISION,
                        UPCAST, BLOCK_M, BLOCK_N, BLOCK_K)
    if HAS_BIAS:
        acc += tl.load(B + rn * b_stride, mask=rn < N, other=0.0).to(ACC)[None, :]
    y = act_forward(acc, ACT, slope.to(ACC))
    store(Y, rm[:, None] * y_stride_m + rn[None, :] * y_stride_n, y, (rm[:, None] < M) & (rn[None, :] < N))


@triton.jit
def _fc_forward_tma(
    X_DESC, W_DESC, B, Y, Y_DESC, slope, M, N, K, b_stride,
    HAS_BIAS: tl.constexpr, ACT: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """Persistent: program p computes tiles p, p + programs, ... of y = act(x @ w.T + b),
    with TMA copies in (x as BLOCK_M x BLOCK_K, w as BLOCK_N x BLOCK_K; zeros past the
    edges) and out (two BLOCK_M x BLOCK_N/2 halves; the edges are clipped). One
    flattened loop over (tile, K step) lets the pipeline load the next tile's first
    operands during this tile's last products and epilogue."""
    tiles = tl.cdiv(M, BLOCK_M) * tl.cdiv(N, BLOCK_N)
    step = tl.num_programs(0)
    # The epilogue finds its tile from a counter of its own, as Triton's persistent matmul
    # tutorial does: its pipeliner has mishandled one value used both by the prefetching
    # loads and by the epilogue.
    tile_out = tl.program_id(0) - step
    for tile in tl.range(tl.program_id(0), tiles, step, flatten=True):
        pid_m, pid_n = _tile(tile, M, N, BLOCK_M, BLOCK_N, GROUP_M)
        acc = _tma_tile_product(X_DESC, W_DESC, K, pid_m, pid_n, False, True, PRECISION, UPCAST,
                                BLOCK_M, BLOCK_N, BLOCK_K)
        tile_out += step
        pid_m, pid_n = _tile(tile_out, M, N, BLOCK_M, BLOCK_N, GROUP_M)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        if HAS_BIAS:
            acc += tl.load(B + rn.to(tl.int64) * b_stride, mask=rn < N, other=0.0).to(tl.float32)[None, :]
        y = act_forward(acc, ACT, slope.to(tl.float32))
        left, right = tl.split(tl.permute(tl.reshape(y, (BLOCK_M, 2, BLOCK_N // 2)), (0, 2, 1)))
        Y_DESC.store([pid_m * BLOCK_M, pid_n * BLOCK_N], cast_for(Y, left))
        Y_DESC.store([pid_m * BLOCK_M, pid_n * BLOCK_N + BLOCK_N // 2], cast_for(Y, right))


@_autotune(restore=[], configs=_forward_configs(), prune=_prune_forward, key=["TMA_READY"])
@triton.jit
def _fc_forward_kernel(
    X, W, B, Y, X_DESC, W_DESC, Y_DESC, slope: tl.float64, M, N, K,
    x_stride_m, x_stride_k, w_stride_n, w_stride_k, b_stride, y_stride_m, y_stride_n,
    HAS_BIAS: tl.constexpr, ACT: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
    TMA_READY: tl.constexpr, ALIGN_K: tl.constexpr, ALIGN_N: tl.constexpr, TMA: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """y = act(x @ w.T + b): the persistent TMA path under a TMA config (the descriptors
    exist: TMA_READY), else one tile per program through pointers, told the alignment of
    the rows it reads along K (ALIGN_K: K and the row strides of x and w) and writes along
    N (ALIGN_N: N and y's row stride), see ``_alignment``."""
    if TMA:
        _fc_forward_tma(X_DESC, W_DESC, B, Y, Y_DESC, slope, M, N, K, b_stride,
                        HAS_BIAS, ACT, PRECISION, UPCAST, BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M)
    else:
        _fc_forward_tiles(X, W, B, Y, slope, M, aligned(N, ALIGN_N), aligned(K, ALIGN_K),
                          aligned(x_stride_m, ALIGN_K), x_stride_k, aligned(w_stride_n, ALIGN_K), w_stride_k,
                          b_stride, aligned(y_stride_m, ALIGN_N), y_stride_n,
                          HAS_BIAS, ACT, PRECISION, UPCAST, BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M)


# The bias-gradient partial sums of the input-gradient epilogue cover this many rows each:
# every config's BLOCK_M is a multiple of it, so the partials have one shape whatever the
# autotuner picks, and are summed in one fixed order (the same bits every run).
PARTIAL_ROWS = 32


@triton.jit
def _input_grad_epilogue(acc, pid_m, pid_k, DX, Z, P, slope, M, K, dx_stride_m, dx_stride_k, z_stride_m, z_stride_k,
                         p_stride_r, p_stride_k, INPUT_ACT: tl.constexpr, PARTIALS: tl.constexpr,
                         PART_ROWS: tl.constexpr, ACCUMULATE: tl.constexpr,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Write (or add) a BLOCK_M x BLOCK_N tile of dx, first finished for the operator that
    produced x (z = x = act(...)): times act'(z), and the column sums of each PART_ROWS
    rows of that into P, from which that operator's bias gradient is summed."""
    rm = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    rk = (pid_k * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
    mask = (rm[:, None] < M) & (rk[None, :] < K)
    if INPUT_ACT != "none":
        z = tl.load(Z + rm[:, None] * z_stride_m + rk[None, :] * z_stride_k, mask=mask, other=0.0).to(acc.dtype)
        acc = acc * act_grad_from_output(z, INPUT_ACT, slope.to(acc.dtype))
    if PARTIALS:
        # Rows past M are zero products, unless w holds NaN: then the real rows are NaN too,
        # but the sums take only the real ones.
        parts = tl.sum(tl.reshape(tl.where(mask, acc, 0.0), (BLOCK_M // PART_ROWS, PART_ROWS, BLOCK_N)), 1)
        rp = pid_m * (BLOCK_M // PART_ROWS) + tl.arange(0, BLOCK_M // PART_ROWS)
        store(P, rp[:, None] * p_stride_r + rk[None, :] * p_stride_k, parts,
              (rp[:, None] < tl.cdiv(M, PART_ROWS)) & (rk[None, :] < K))
    store_result(DX, rm[:, None] * dx_stride_m + rk[None, :] * dx_stride_k, acc, mask, ACCUMULATE)


@_autotune(restore=["DX"], configs=_forward_configs(), prune=_prune_input, key=["TMA_READY"])
@triton.jit
def _fc_backward_input_kernel(
    DY, W, DX, Z, P, DY_DESC, W_DESC, slope: tl.float64, M, N, K,
    dy_stride_m, dy_stride_n, w_stride_n, w_stride_k, dx_stride_m, dx_stride_k, z_stride_m, z_stride_k,
    p_stride_r, p_stride_k,
    INPUT_ACT: tl.constexpr, PARTIALS: tl.constexpr, PART_ROWS: tl.constexpr, PRECISION: tl.constexpr,
    UPCAST: tl.constexpr, ACCUMULATE: tl.constexpr, TMA_READY: tl.constexpr, ALIGN_K: tl.constexpr,
    ALIGN_N: tl.constexpr, TMA: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """dx = dy @ w, a plain product reducing over N in steps of BLOCK_K (a tile runs over
    x's K columns), finished by ``_input_grad_epilogue`` for the operator before (cuBLASLt's
    DRELU_BGRAD epilogue; PART_ROWS is PARTIAL_ROWS). Under a TMA config (the descriptors
    exist: TMA_READY) persistent, with dy and w tiles copied in by TMA; else one tile per
    program through pointers, told the alignment of the rows it reads and writes along K
    (ALIGN_K: K and the row strides of w, dx, z and the partials) and reads along N
    (ALIGN_N: N and dy's row stride)."""
    if TMA:
        tiles = tl.cdiv(M, BLOCK_M) * tl.cdiv(K, BLOCK_N)
        step = tl.num_programs(0)
        tile_out = tl.program_id(0) - step  # the epilogue's own counter, as in _fc_forward_tma
        for tile in tl.range(tl.program_id(0), tiles, step, flatten=True):
            pid_m, pid_k = _tile(tile, M, K, BLOCK_M, BLOCK_N, GROUP_M)
            acc = _tma_tile_product(DY_DESC, W_DESC, N, pid_m, pid_k, False, False, PRECISION, UPCAST,
                                    BLOCK_M, BLOCK_N, BLOCK_K)
            tile_out += step
            pid_m, pid_k = _tile(tile_out, M, K, BLOCK_M, BLOCK_N, GROUP_M)
            # The epilogue reads z and writes dx and the partials through pointers: told their alignment too.
            _input_grad_epilogue(acc, pid_m, pid_k, DX, Z, P, slope, M, aligned(K, ALIGN_K),
                                 aligned(dx_stride_m, ALIGN_K), dx_stride_k, aligned(z_stride_m, ALIGN_K), z_stride_k,
                                 aligned(p_stride_r, ALIGN_K), p_stride_k, INPUT_ACT, PARTIALS, PART_ROWS, ACCUMULATE,
                                 BLOCK_M, BLOCK_N)
    else:
        n, k = aligned(N, ALIGN_N), aligned(K, ALIGN_K)
        pid_m, pid_k = _tile(tl.program_id(0), M, k, BLOCK_M, BLOCK_N, GROUP_M)
        ACC = tl.float64 if DX.dtype.element_ty == tl.float64 else tl.float32
        acc = _tile_product(DY, W, M, k, n, aligned(dy_stride_m, ALIGN_N), dy_stride_n, aligned(w_stride_n, ALIGN_K),
                            w_stride_k, pid_m, pid_k, ACC, PRECISION, UPCAST, BLOCK_M, BLOCK_N, BLOCK_K)
        _input_grad_epilogue(acc, pid_m, pid_k, DX, Z, P, slope, M, k, aligned(dx_stride_m, ALIGN_K), dx_stride_k,
                             aligned(z_stride_m, ALIGN_K), z_stride_k, aligned(p_stride_r, ALIGN_K), p_stride_k,
                             INPUT_ACT, PARTIALS, PART_ROWS, ACCUMULATE, BLOCK_M, BLOCK_N)


@_autotune(restore=["DW"], configs=_forward_configs(), prune=_prune_weight, key=["TMA_READY"])
@triton.jit
def _fc_backward_weight_kernel(
    DY, X, DW, X_DESC, DY_DESC, M, N, K,
    dy_stride_m, dy_stride_n, x_stride_m, x_stride_k, dw_stride_n, dw_stride_k,
    PRECISION: tl.constexpr, UPCAST: tl.constexpr, ACCUMULATE: tl.constexpr, TMA_READY: tl.constexpr,
    ALIGN_K: tl.constexpr, ALIGN_N: tl.constexpr, TMA: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    """A BLOCK_M x BLOCK_N tile of dw.T = x.T @ dy over (K, N), a plain product reducing
    over the M rows in steps of BLOCK_K: both operands loaded as they are, so the pipeliner
    copies them ahead of the products. Under a TMA config persistent, with x and dy tiles
    copied in by TMA (x's read transposed from shared memory); else through pointers, told
    the alignment of the rows it reads and writes along K (ALIGN_K: K and the row strides
    of x and dw) and reads along N (ALIGN_N: N and dy's row stride)."""
    if TMA:
        tiles = tl.cdiv(K, BLOCK_M) * tl.cdiv(N, BLOCK_N)
        step = tl.num_programs(0)
        tile_out = tl.program_id(0) - step
        for tile in tl.range(tl.program_id(0), tiles, step, flatten=True):
            pid_k, pid_n = _tile(tile, K, N, BLOCK_M, BLOCK_N, GROUP_M)
            acc = _tma_tile_product(X_DESC, DY_DESC, M, pid_k, pid_n, True, False, PRECISION, UPCAST,
                                    BLOCK_M, BLOCK_N, BLOCK_K)
            tile_out += step
            pid_k, pid_n = _tile(tile_out, K, N, BLOCK_M, BLOCK_N, GROUP_M)
            rk = (pid_k * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
            rn = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
            # dw is written through pointers: told its alignment too.
            store_result(DW, rk[:, None] * dw_stride_k + rn[None, :] * aligned(dw_stride_n, ALIGN_K), acc,
                         (rk[:, None] < aligned(K, ALIGN_K)) & (rn[None, :] < N), ACCUMULATE)
    else:
        k, n = aligned(K, ALIGN_K), aligned(N, ALIGN_N)
        pid_k, pid_n = _tile(tl.program_id(0), k, n, BLOCK_M, BLOCK_N, GROUP_M)
        rk = (pid_k * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
        rn = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)).to(tl.int64)
        ACC = tl.float64 if DY.dtype.element_ty == tl.float64 else tl.float32
        # x read transposed, straight into the product
        acc = _tile_product(X, DY, k, n, M, x_stride_k, aligned(x_stride_m, ALIGN_K), aligned(dy_stride_m, ALIGN_N),
                            dy_stride_n, pid_k, pid_n, ACC, PRECISION, UPCAST, BLOCK_M, BLOCK_N, BLOCK_K)
        store_result(DW, rk[:, None] * dw_stride_k + rn[None, :] * aligned(dw_stride_n, ALIGN_K), acc,
                     (rk[:, None] < k) & (rn[None, :] < n), ACCUMULATE)


# Rows and columns of the column-sum kernel's tile: wide enough rows for coalesced loads,
# narrow enough columns that a 1024-wide gradient still spreads over many programs.
COLUMN_SUM_BLOCKS = (64, 64)


@triton.jit
def _column_sum_kernel(SRC, DST, R, C, src_stride_r, src_stride_c, dst_stride, ACC: tl.constexpr,
                       ACCUMULATE: tl.constexpr, ALIGN: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    """dst[c] (+)= sum over r of src[r, c] for BLOCK_C columns: each thread adds its own
    elements down the rows, and one reduction across the tile ends the sum (in the same
    order every run). ACC: float64 where either is float64, else float32. ALIGN: of C and
    src's row stride (see ``aligned``)."""
    C, src_stride_r = aligned(C, ALIGN), aligned(src_stride_r, ALIGN)
    rc = (tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)).to(tl.int64)
    rr = tl.arange(0, BLOCK_R).to(tl.int64)
    acc = tl.zeros((BLOCK_R, BLOCK_C), ACC)
    for r in range(0, R, BLOCK_R):
        rows = rr + r
        acc += tl.load(SRC + rows[:, None] * src_stride_r + rc[None, :] * src_stride_c,
                       mask=(rows[:, None] < R) & (rc[None, :] < C), other=0.0).to(ACC)
    store_result(DST, rc * dst_stride, tl.sum(acc, 0), rc < C, ACCUMULATE)


# ------------------------------------------------------------------------ launchers


def _alignment(length: int, *matrices: tuple[int, int]) -> int:
    """The ALIGN of a pointer kernel's reads and writes along one dimension, ``length``
    long, of matrices whose (row stride, element stride) along it are ``matrices``: the
    largest power of two up to 16 dividing the length and every row stride (``aligned``),
    so that rows of 1000 are copied 16 bytes at a time where Triton alone would copy them
    one element at a time (and, in 16-bit types, not pipelined at all: cp.async copies 4
    bytes or more); 1 where a matrix is not contiguous along it (nothing to vectorize, and
    one variant serves them all)."""
    return contiguous_alignment((step for _, step in matrices), length, *(row for row, _ in matrices))


def _options(fn: str, dtype: torch.dtype, act: str, precision: str, act_name: str = "act") -> dict:
    if act != "none" and act not in ACTIVATIONS:
        raise KernelArgumentError(f"{fn}: {act_name}={act!r} is not 'none' or one of {', '.join(ACTIVATIONS)}")
    if precision not in PRECISIONS:
        raise KernelArgumentError(f"{fn}: precision={precision!r} is not one of {', '.join(PRECISIONS)}")
    return dict(PRECISION=precision if dtype == torch.float32 else "ieee",
                UPCAST=INTERPRET and dtype == torch.bfloat16)


def _matrix(fn: str, name: str, t: torch.Tensor) -> torch.Tensor:
    check_tensor(fn, name, t)
    if t.dim() != 2:
        raise KernelArgumentError(f"{fn}: {name} must be 2-d, got shape {tuple(t.shape)}")
    return t


def _check_family(fn: str, first: str, **tensors: torch.Tensor | None) -> None:
    """Every given tensor has the dtype and device of the one named ``first``."""
    ref = tensors[first]
    for name, t in tensors.items():
        if t is None:
            continue
        if t.dtype != ref.dtype:
            raise KernelArgumentError(f"{fn}: {name} has dtype {t.dtype} but {first} has {ref.dtype}")
        if t.device != ref.device:
            raise KernelArgumentError(f"{fn}: {name} is on {t.device} but {first} is on {ref.device}")


def plan_fully_connected_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor,
                                 act: str = "none", slope: float = 0.0, precision: str = "ieee") -> list[Launch]:
    fn = "fully_connected_forward"
    check_tensor(fn, "x", x)
    _matrix(fn, "weight", weight)
    n, k = weight.shape
    if x.dim() == 0 or x.shape[-1] != k:
        raise KernelArgumentError(f"{fn}: x has shape {tuple(x.shape)} but weight {tuple(weight.shape)} expects "
                                  f"{k} input features in its last dimension")
    if bias is not None:
        check_tensor(fn, "bias", bias)
        if tuple(bias.shape) != (n,):
            raise KernelArgumentError(f"{fn}: bias has shape {tuple(bias.shape)} but weight expects ({n},)")
    _check_family(fn, "x", x=x, weight=weight, bias=bias)
    options = _options(fn, x.dtype, act, precision)
    out = prepare_out(fn, "out", out, (*x.shape[:-1], n), x.dtype, x.device)
    m = x.numel() // k if k else 0
    x2, y2 = as_2d(fn, "x", x, m, k), as_2d(fn, "out", out, m, n)
    b = bias if bias is not None else weight
    descriptors = _tma_descriptors(x2, weight, y2, options["PRECISION"])
    grid = _grid(lambda meta: triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(n, meta["BLOCK_N"]),
                 persistent_programs(x.device))
    return [Launch(_fc_forward_kernel, grid,
                   [x2, weight, b, y2, *(descriptors or (None, None, None)), float(slope), m, n, k,
                    *x2.stride(), *weight.stride(), b.stride(0), *y2.stride()],
                   dict(HAS_BIAS=bias is not None, ACT=act, TMA_READY=descriptors is not None,
                        ALIGN_K=_alignment(k, x2.stride(), weight.stride()), ALIGN_N=_alignment(n, y2.stride()),
                        **options))]


def tma_wanted(device: torch.device) -> bool:
    """Is the TMA forward planned on ``device`` (TRITONSYM_TMA: auto, 0 or 1)?"""
    if TensorDescriptor is None or TMA_MODE == "0":
        return False
    if TMA_MODE == "1":
        return True
    return not INTERPRET and device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 9


# The launcher encodes a launch's three TMA descriptors on the host at every call (a few
# microseconds, even when the autotuner chose the pointer config): planned only where the
# product is enough work (about 2 us of tensor-core time at 1 GFLOP) to hide that.
_TMA_MIN_FLOPS = 1 << 30


def _tma_ready(flops: int, precision: str, *tensors: torch.Tensor) -> bool:
    """Whether the TMA path is planned for a product of ``flops`` over these matrices: wanted
    here, at least 1 GFLOP (unless forced), a tensor-core dtype, no empty matrix, and every
    row contiguous and 16-byte aligned (TMA's rules for a tensor in global memory)."""
    first = tensors[0]
    if not tma_wanted(first.device):
        return False
    if TMA_MODE != "1" and flops < _TMA_MIN_FLOPS:
        return False
    if not (first.dtype in (torch.float16, torch.bfloat16) or (first.dtype == torch.float32 and precision == "tf32")):
        return False
    size = first.element_size()
    return all(min(t.shape) > 0 and t.stride(1) == 1 and (t.stride(0) * size) % 16 == 0 and t.data_ptr() % 16 == 0
               for t in tensors)


def _descriptor(t: torch.Tensor, block: list[int]):
    return TensorDescriptor(t, list(t.shape), list(t.stride()), block)


def _tma_descriptors(x: torch.Tensor, w: torch.Tensor, y: torch.Tensor, precision: str):
    """TMA descriptors of x, w and y for the forward's tile, or None where that path is not
    planned (``_tma_ready``)."""
    if not _tma_ready(2 * x.shape[0] * w.shape[0] * x.shape[1], precision, x, w, y):
        return None
    bm, bn, bk = _TMA_TILES[x.element_size()]
    return _descriptor(x, [bm, bk]), _descriptor(w, [bn, bk]), _descriptor(y, [bm, bn // 2])


def _input_descriptors(dy: torch.Tensor, w: torch.Tensor, precision: str):
    """dx = dy @ w: descriptors of dy (BLOCK_M x BLOCK_K tiles) and w (BLOCK_K x BLOCK_N,
    read as stored: the reduction runs down its rows), or None."""
    (m, n), k = dy.shape, w.shape[1]
    if not _tma_ready(2 * m * n * k, precision, dy, w):
        return None
    bm, bn, bk = _TMA_TILES[dy.element_size()]
    return _descriptor(dy, [bm, bk]), _descriptor(w, [bk, bn])


def _weight_descriptors(x: torch.Tensor, dy: torch.Tensor, precision: str):
    """dw.T = x.T @ dy: descriptors of x (BLOCK_K x BLOCK_M tiles, transposed in shared
    memory) and dy (BLOCK_K x BLOCK_N), both read as stored, or None."""
    (m, k), n = x.shape, dy.shape[1]
    if not _tma_ready(2 * m * n * k, precision, x, dy):
        return None
    bm, bn, bk = _TMA_TILES[x.element_size()]
    return _descriptor(x, [bk, bm]), _descriptor(dy, [bk, bn])


def _grid(tiles_of, programs: int):
    """A launch grid: one program per tile, or a persistent one (at most ``programs``) under
    a TMA config."""
    def grid(meta):
        tiles = tiles_of(meta)
        return (min(tiles, programs) if meta["TMA"] else tiles,)
    return grid


def fully_connected_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                            act: str = "none", slope: float = 0.0, out: torch.Tensor | None = None,
                            precision: str = "ieee") -> torch.Tensor:
    """``out = act(x @ weight.T + bias)``; x is (..., K), weight (N, K), bias (N,) or None.

    ``act`` is "none" or one of ``ACTIVATIONS``; ``precision`` is "ieee" or "tf32" (float32).
    """
    out = prepare_out("fully_connected_forward", "out", out, (*x.shape[:-1], weight.shape[0]), x.dtype, x.device)
    run(plan_fully_connected_forward(x, weight, bias, out, act, slope, precision))
    return out


def bias_partials(rows: int, features: int, dtype: torch.dtype) -> tuple[tuple[int, int], torch.dtype]:
    """Shape and dtype of the partial sums that the input-gradient epilogue writes for the
    bias gradient of the operator that produced x (``rows`` x ``features``)."""
    return (triton.cdiv(rows, PARTIAL_ROWS), features), torch.float64 if dtype == torch.float64 else torch.float32


def plan_column_sum(src: torch.Tensor, dst: torch.Tensor, accumulate: bool = False) -> list[Launch]:
    """``dst (+)= src.sum(0)`` for a 2-d ``src``, summed in the same order every run."""
    fn = "column_sum"
    _matrix(fn, "src", src)
    rows, cols = src.shape
    check_tensor(fn, "dst", dst)
    if tuple(dst.shape) != (cols,):
        raise KernelArgumentError(f"{fn}: dst has shape {tuple(dst.shape)} but src {tuple(src.shape)} has {cols} "
                                  "columns")
    block_r, block_c = COLUMN_SUM_BLOCKS
    acc = tl.float64 if torch.float64 in (src.dtype, dst.dtype) else tl.float32
    return [Launch(_column_sum_kernel, (triton.cdiv(cols, block_c),),
                   [src, dst, rows, cols, *src.stride(), dst.stride(0)],
                   dict(ACC=acc, ACCUMULATE=accumulate, ALIGN=_alignment(cols, src.stride()), BLOCK_R=block_r,
                        BLOCK_C=block_c))]


def plan_fully_connected_backward(
    grad_out: torch.Tensor, x: torch.Tensor | None, weight: torch.Tensor | None, *, out: torch.Tensor | None = None,
    act: str = "none", slope: float = 0.0, act_grad: torch.Tensor | None = None,
    grad_x: torch.Tensor | None = None, grad_weight: torch.Tensor | None = None, grad_bias: torch.Tensor | None = None,
    accumulate_x: bool = False, accumulate_weight: bool = False, accumulate_bias: bool = False,
    input_act: str = "none", input_slope: float = 0.0, input_grad_bias: torch.Tensor | None = None,
    input_partials: torch.Tensor | None = None, accumulate_input_bias: bool = False,
    precision: str = "ieee",
) -> list[Launch]:
    """Launches for the gradients of ``out = act(x @ weight.T + b)``, each into the given
    buffer (None: not wanted; ``accumulate_*``: added into it).

    Both products are plain: with a fused activation (``act``, which needs ``out``) its
    gradient ``grad_out * act'(out)`` is written first into ``act_grad`` (which may be
    ``grad_out`` itself), and the bias gradient is a column sum of that. In a network the
    executor does better: it gives this step a gradient that already holds act'(out), from
    the epilogue of the step after it. That epilogue is ``input_act``: x is the output of
    an operator with activation ``input_act``, and grad_x is finished for it, times
    ``act'(x)``, with the bias gradient of that operator (``input_grad_bias``) summed from
    ``input_partials`` (``bias_partials``)."""
    fn = "fully_connected_backward"
    check_tensor(fn, "grad_out", grad_out)
    options = _options(fn, grad_out.dtype, act, precision)
    _options(fn, grad_out.dtype, input_act, precision, "input_act")
    for name, a, s in (("act", act, slope), ("input_act", input_act, input_slope)):
        if a != "none" and not grad_from_output(a, s):
            raise KernelArgumentError(f"{fn}: {name}={a!r} with slope={s} needs its input for the gradient; "
                                      "it cannot be fused into FullyConnected")
    n = grad_out.shape[-1]
    m = grad_out.numel() // n if n else 0
    if grad_x is not None and weight is None:
        raise KernelArgumentError(f"{fn}: grad_x needs weight")
    if grad_weight is not None and x is None:
        raise KernelArgumentError(f"{fn}: grad_weight needs x")
    k = weight.shape[1] if weight is not None else x.shape[-1]
    _check_family(fn, "grad_out", grad_out=grad_out, x=x, weight=weight, out=out, act_grad=act_grad, grad_x=grad_x,
                  grad_weight=grad_weight, grad_bias=grad_bias, input_grad_bias=input_grad_bias)
    dy = as_2d(fn, "grad_out", grad_out, m, n)
    launches = []
    if act != "none":
        if out is None or act_grad is None:
            raise KernelArgumentError(f"{fn}: act={act!r} needs the forward output (out=) and a buffer for its "
                                      "gradient (act_grad=, which may be grad_out)")
        launches += plan_activation_backward(dy, as_2d(fn, "out", out, m, n), as_2d(fn, "act_grad", act_grad, m, n),
                                             act, slope)
        dy = as_2d(fn, "act_grad", act_grad, m, n)
    if grad_bias is not None:
        # Before the epilogue's bias sum: a bias shared with the operator before is written
        # here first, then added to there (the order the executor's accumulate flags assume).
        db = prepare_out(fn, "grad_bias", grad_bias, (n,), grad_out.dtype, grad_out.device)
        launches += plan_column_sum(dy, db, accumulate_bias)
    launches += _grad_x_launches(fn, dy, x, weight, grad_x, accumulate_x, input_act, input_slope, input_grad_bias,
                                 input_partials, accumulate_input_bias, grad_out.shape[:-1], k, options)
    if grad_weight is not None:
        x2 = as_2d(fn, "x", x, m, k)
        dw = prepare_out(fn, "grad_weight", grad_weight, (n, k), grad_out.dtype, grad_out.device)
        descriptors = _weight_descriptors(x2, dy, options["PRECISION"])
        grid = _grid(lambda meta: triton.cdiv(k, meta["BLOCK_M"]) * triton.cdiv(n, meta["BLOCK_N"]),
                     persistent_programs(dy.device))
        launches.append(Launch(_fc_backward_weight_kernel, grid,
                               [dy, x2, dw, *(descriptors or (None, None)), m, n, k, *dy.stride(), *x2.stride(),
                                dw.stride(0), dw.stride(-1)],
                               dict(ACCUMULATE=accumulate_weight, TMA_READY=descriptors is not None,
                                    ALIGN_K=_alignment(k, x2.stride(), dw.stride()), ALIGN_N=_alignment(n, dy.stride()),
                                    **options)))
    return launches


def _grad_x_launches(fn, dy, x, weight, grad_x, accumulate, input_act, input_slope, input_grad_bias,
                     input_partials, accumulate_input_bias, rows_shape, k, options) -> list[Launch]:
    """dx = dy @ w (dy as a matrix, x of shape (*rows_shape, k)), and the epilogue that
    finishes it for the operator before (``input_act``)."""
    m, n = dy.shape
    if input_grad_bias is not None and grad_x is None:
        raise KernelArgumentError(f"{fn}: input_grad_bias is summed from grad_x; it needs grad_x")
    if grad_x is None:
        return []
    _matrix(fn, "weight", weight)
    if tuple(weight.shape) != (n, k):
        raise KernelArgumentError(f"{fn}: weight has shape {tuple(weight.shape)} but grad_out has {n} columns")
    fused = input_act != "none" or input_grad_bias is not None
    if fused and accumulate:
        raise KernelArgumentError(f"{fn}: input_act={input_act!r} finishes grad_x for the operator before, which "
                                  "needs grad_x to be written, not added into (accumulate_x=True)")
    if fused and x is None:
        raise KernelArgumentError(f"{fn}: input_act={input_act!r} reads x, the operator before's output; pass x")
    dx = as_2d(fn, "grad_x", prepare_out(fn, "grad_x", grad_x, (*rows_shape, k), dy.dtype, dy.device), m, k)
    z = as_2d(fn, "x", x, m, k) if fused else dx
    parts = dx
    if input_grad_bias is not None:
        check_tensor(fn, "input_grad_bias", input_grad_bias)
        if tuple(input_grad_bias.shape) != (k,):
            raise KernelArgumentError(f"{fn}: input_grad_bias has shape {tuple(input_grad_bias.shape)} but x has "
                                      f"{k} features")
        shape, dtype = bias_partials(m, k, dy.dtype)
        if input_partials is None or tuple(input_partials.shape) != shape or input_partials.dtype != dtype:
            got = "None" if input_partials is None else f"{tuple(input_partials.shape)} {input_partials.dtype}"
            raise KernelArgumentError(f"{fn}: input_partials must be {shape} {dtype} (bias_partials), got {got}")
        parts = input_partials
    descriptors = _input_descriptors(dy, weight, options["PRECISION"])
    grid = _grid(lambda meta: triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(k, meta["BLOCK_N"]),
                 persistent_programs(dy.device))
    launches = [Launch(_fc_backward_input_kernel, grid,
                       [dy, weight, dx, z, parts, *(descriptors or (None, None)), float(input_slope), m, n, k,
                        *dy.stride(), *weight.stride(), *dx.stride(), *z.stride(), parts.stride(0), parts.stride(-1)],
                       dict(INPUT_ACT=input_act, PARTIALS=input_grad_bias is not None, PART_ROWS=PARTIAL_ROWS,
                            ACCUMULATE=accumulate, TMA_READY=descriptors is not None,
                            ALIGN_K=_alignment(k, weight.stride(), dx.stride(), z.stride(), parts.stride()),
                            ALIGN_N=_alignment(n, dy.stride()), **options))]
    if input_grad_bias is not None:
        launches += plan_column_sum(input_partials, input_grad_bias, accumulate_input_bias)
    return launches


def fully_connected_backward(grad_out: torch.Tensor, x: torch.Tensor | None, weight: torch.Tensor | None, *,
                             out: torch.Tensor | None = None, act: str = "none", slope: float = 0.0,
                             need_x: bool = True, need_weight: bool = True, need_bias: bool = True,
                             precision: str = "ieee") -> tuple:
    """Gradients ``(grad_x, grad_weight, grad_bias)`` of ``act(x @ weight.T + b)``, each
    None when not asked for; a fused activation needs the forward ``out``."""
    dev, dt = grad_out.device, grad_out.dtype
    n = grad_out.shape[-1]
    k = weight.shape[1] if weight is not None else x.shape[-1]
    grad_x = torch.empty((*grad_out.shape[:-1], k), dtype=dt, device=dev) if need_x else None
    grad_w = torch.empty((n, k), dtype=dt, device=dev) if need_weight else None
    grad_b = torch.empty((n,), dtype=dt, device=dev) if need_bias else None
    act_grad = torch.empty_like(grad_out) if act != "none" else None
    run(plan_fully_connected_backward(grad_out, x, weight, out=out, act=act, slope=slope, act_grad=act_grad,
                                      grad_x=grad_x, grad_weight=grad_w, grad_bias=grad_b, precision=precision))
    return grad_x, grad_w, grad_b


# ------------------------------------------------------------------- catalogue

# What exercises these kernels (the mutation check runs them).
TESTS = ("tests/test_kernels_fully_connected.py", "tests/test_kernels_fc_tma.py")


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """One launch of each kernel and variant in ``dtype``: the forward with each kind of
    epilogue (several activations in float32 and bfloat16, one elsewhere) and in TF32, the
    backward with and without an activation, accumulating, in TF32, and the bias gradient alone;
    the input-gradient epilogue finishing the gradient of the operator before (in 16-bit types
    also where x's rows are not a multiple of 16 elements); in float32 and bfloat16 forward and
    backward on rows of 1000 (ALIGN 8); on 64x96x48
    or (``large``) M = N = K = 4096: what ``ops.catalog`` compiles, reports on
    and checks."""
    m, k, n = (4096, 4096, 4096) if large else (64, 96, 48)
    t = lambda *shape: torch.empty(shape, dtype=dtype)  # noqa: E731
    x, w, b, y = t(m, k), t(n, k), t(n), t(m, n)
    every = dtype in (torch.float32, torch.bfloat16)
    out = []
    for act in ("none", "relu", "tanh", "selu") if every else ("relu",):
        out += [(f"fc forward {act}", launch) for launch in plan_fully_connected_forward(x, w, b, y, act=act)]
    if dtype == torch.float32:
        out += [("fc forward tf32 relu", launch) for launch in plan_fully_connected_forward(x, w, b, y, act="relu",
                                                                                            precision="tf32")]
    if dtype == torch.float32:  # TF32 copies an MN-major operand to shared memory 4 bytes at a time
        out += [("fc backward tf32", launch) for launch in plan_fully_connected_backward(
            y, x, w, grad_x=t(m, k), grad_weight=t(n, k), precision="tf32")]
    for act in ("none", "sigmoid") if every else ("sigmoid",):
        out += [(f"fc backward {act}", launch) for launch in plan_fully_connected_backward(
            y, x, w, out=y, act=act, act_grad=t(m, n), grad_x=t(m, k), grad_weight=t(n, k), grad_bias=t(n),
            accumulate_weight=True)]
    shape, acc = bias_partials(m, k, dtype)
    for act in ("relu", "tanh") if every else ("relu",):
        out += [(f"fc backward input {act}", launch) for launch in plan_fully_connected_backward(
            y, x, w, grad_x=t(m, k), input_act=act, input_grad_bias=t(k),
            input_partials=torch.empty(shape, dtype=acc))]
    if dtype.itemsize == 2:  # x rows not a multiple of 16 elements: the partial sums' layout takes shared memory
        shape, acc = bias_partials(m, k - 8, dtype)
        out += [("fc backward input relu unaligned", launch) for launch in plan_fully_connected_backward(
            y, t(m, k - 8), t(n, k - 8), grad_x=t(m, k - 8), input_act="relu", input_grad_bias=t(k - 8),
            input_partials=torch.empty(shape, dtype=acc))]
    if every:  # a classifier's 1000 classes: rows a multiple of 8 elements, not 16 (ALIGN_K and ALIGN_N 8)
        wide = 1000
        out += [("fc forward relu rows of 1000", launch) for launch in plan_fully_connected_forward(
            t(m, wide), t(wide, wide), t(wide), t(m, wide), act="relu")]
        shape, acc = bias_partials(m, wide, dtype)
        out += [("fc backward rows of 1000", launch) for launch in plan_fully_connected_backward(
            t(m, wide), t(m, wide), t(wide, wide), grad_x=t(m, wide), grad_weight=t(wide, wide), grad_bias=t(wide),
            input_act="relu", input_grad_bias=t(wide), input_partials=torch.empty(shape, dtype=acc))]
    out += [("fc bias grad only", launch) for launch in plan_fully_connected_backward(y, x, w, grad_bias=b)]
    return out
