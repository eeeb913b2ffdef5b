"""The operators beyond the MLP on the GPU's memory and tensor cores: LayerNorm and
L2Normalization forward and backward, topk forward and backward, Dropout forward and
backward, a broadcast add, rotary position embedding, GatedActivation (SwiGLU's product)
forward and backward, batch_dot, the Adam update, softmax_cross_entropy over a vocabulary,
uniform, normal, gamma and Poisson draws, gather_nd and cumsum forward and backward, the
Cholesky factorization and a triangular solve of batches of small matrices (linalg potrf,
trsm), CTCLoss forward and backward, BilinearResize2D and AdaptiveAvgPooling2D forward and
backward (a segmentation head's resize and pyramid pooling), im2col forward and backward (a
3 x 3 convolution's blocks), SpatialTransformer, ROIAlign, ROIPooling and PSROIPooling
forward and backward, box_nms forward and backward, SSD's MultiBoxTarget and MultiBoxDetection (alone:
torch has neither), against PyTorch eager
(torch.nn.functional.layer_norm, normalize, dropout, torch.topk, broadcasting +, Hugging
Face's rotate_half with a cached cos/sin table, ``h * F.silu(gate)``, torch.bmm,
torch.optim.Adam with fused=True on a GPU, F.cross_entropy, uniform_, normal_,
_standard_gamma and poisson, advanced indexing and index_put_, torch.cumsum,
torch.linalg.cholesky and solve_triangular, F.ctc_loss of the log-softmax, float32 only,
F.interpolate, F.adaptive_avg_pool2d, F.unfold and F.affine_grid with F.grid_sample, with
their autograd, and torchvision.ops.roi_align, roi_pool, ps_roi_pool and batched_nms where installed)
and, for the memory-bound ones, as a share of the measured device-to-device copy bandwidth.

Targets (issue 28): LayerNorm forward and backward at >= 85% of the copy bandwidth,
Dropout and the broadcasts at the copy bandwidth, batch_dot within 10% of torch.bmm.
RotaryEmbedding and GatedActivation have no target of an issue; passes that read and write
each element once, they should run at the copy bandwidth too.

Run: python perf/bench_operators.py [--rows R] [--columns C] [--classes V] [--dtypes bfloat16,float32]
"""

from __future__ import annotations

import argparse

import torch
from common import DEVICE, ON_GPU, Table, copy_bandwidth_gbs, copy_note, environment, ratio, time_ms
from tritonsym.ops import (
    adaptive_pooling,
    bilinear_resize,
    bilinear_sampler,
    box_nms,
    broadcast,
    cross_entropy,
    ctc_loss,
    cumsum,
    dropout,
    gated_activation,
    gather_nd,
    grad_norm,
    grid_generator,
    im2col,
    l2_normalization,
    layer_norm,
    linalg_cholesky,
    linalg_solve,
    multibox_detection,
    multibox_target,
    psroi_pooling,
    roi_align,
    roi_pooling,
    rotary,
    sampling,
    sort,
)
from tritonsym.ops import batch_dot as bmm
from tritonsym.ops import optimizer as update
from tritonsym.ops._common import compute_dtype, run

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def _share(copy_gbs, nbytes: int, ms: float) -> str:
    """Bytes moved per second as a percentage of the copy bandwidth (read + write)."""
    return f"{100 * nbytes / ms / 1e6 / copy_gbs:.0f}" if copy_gbs else ""


def _row(op: str, dtype: str, shape, ms: float, eager_ms: float | None, nbytes: int | None, copy_gbs,
         flops: float | None = None) -> dict:
    return {"operator": op, "dtype": dtype, "shape": "x".join(map(str, shape)), "ms": f"{ms:.4f}",
            "vs eager": ratio(ms, eager_ms), "% of copy": _share(copy_gbs, nbytes, ms) if nbytes else "",
            "TFLOP/s": f"{flops / ms / 1e9:.1f}" if flops else ""}


def layer_norm_rows(rows: int, cols: int, name: str, copy_gbs) -> list[dict]:
    dtype = DTYPES[name]
    gen = torch.Generator(device=DEVICE).manual_seed(rows)
    x = torch.randn(rows, cols, device=DEVICE, generator=gen).to(dtype)
    dy = torch.randn(rows, cols, device=DEVICE, generator=gen).to(dtype)
    g, b = torch.ones(cols, device=DEVICE, dtype=dtype), torch.zeros(cols, device=DEVICE, dtype=dtype)
    y, dx, dg, db = torch.empty_like(x), torch.empty_like(x), torch.empty_like(g), torch.empty_like(b)
    stats = torch.float64 if dtype == torch.float64 else torch.float32
    mean, rstd = torch.empty(rows, device=DEVICE, dtype=stats), torch.empty(rows, device=DEVICE, dtype=stats)
    parts = [torch.empty(layer_norm.partials((rows, cols), -1) * cols, device=DEVICE, dtype=stats) for _ in "gb"]
    forward = layer_norm.plan_layer_norm_forward(x, g, b, y, axis=-1, eps=1e-5, kept_mean=mean, kept_rstd=rstd)
    backward = layer_norm.plan_layer_norm_backward(x, dy, g, mean, rstd, dx, dg, db, axis=-1,
                                                   partial_dgamma=parts[0], partial_dbeta=parts[1])
    xr, gr, br = (t.detach().clone().requires_grad_() for t in (x, g, b))
    yr = torch.nn.functional.layer_norm(xr, (cols,), gr, br, 1e-5)
    size = x.numel() * x.element_size()
    fwd, bwd = time_ms(lambda: run(forward)), time_ms(lambda: run(backward))
    eager_fwd = time_ms(lambda: torch.nn.functional.layer_norm(x, (cols,), g, b, 1e-5))
    eager_bwd = time_ms(lambda: torch.autograd.grad(yr, (xr, gr, br), dy, retain_graph=True))
    return [_row("LayerNorm forward", name, (rows, cols), fwd, eager_fwd, 2 * size, copy_gbs),
            _row("LayerNorm backward", name, (rows, cols), bwd, eager_bwd, 3 * size, copy_gbs)]


def l2_normalization_rows(rows: int, cols: int, name: str, copy_gbs) -> list[dict]:
    """L2Normalization of each row (its norm in float64, from the row's largest magnitude)
    against torch's normalize."""
    dtype = DTYPES[name]
    gen = torch.Generator(device=DEVICE).manual_seed(rows + 1)
    x = torch.randn(rows, cols, device=DEVICE, generator=gen).to(dtype)
    dy = torch.randn(rows, cols, device=DEVICE, generator=gen).to(dtype)
    y, dx = torch.empty_like(x), torch.empty_like(x)
    rstd = torch.empty(rows, device=DEVICE, dtype=torch.float64)
    forward = l2_normalization.plan_l2_normalization(x, y, first=1, last=1, eps=1e-10, kept_rstd=rstd)
    backward = l2_normalization.plan_l2_normalization_backward(x, dy, rstd, dx, first=1, last=1)
    xr = x.detach().clone().requires_grad_()
    yr = torch.nn.functional.normalize(xr, dim=1)
    size = x.numel() * x.element_size()
    fwd, bwd = time_ms(lambda: run(forward)), time_ms(lambda: run(backward))
    eager_fwd = time_ms(lambda: torch.nn.functional.normalize(x, dim=1))
    eager_bwd = time_ms(lambda: torch.autograd.grad(yr, xr, dy, retain_graph=True))
    return [_row("L2Normalization forward", name, (rows, cols), fwd, eager_fwd, 2 * size, copy_gbs),
            _row("L2Normalization backward", name, (rows, cols), bwd, eager_bwd, 3 * size, copy_gbs)]


def topk_rows(rows: int, cols: int, name: str, copy_gbs) -> list[dict]:
    """topk's 8 largest of each row (a classifier's or a decoder's scores: values, indices
    and the int32 indices backward reads) and its gradient scattered back, against
    torch.topk and autograd through it. Its ranks compare every pair of a row (O(cols²) a
    row), so it runs on a sixteenth of the rows."""
    dtype, rows, k = DTYPES[name], max(1, rows // 16), min(8, cols)
    gen = torch.Generator(device=DEVICE).manual_seed(rows + 2)
    x = torch.randn(rows, cols, device=DEVICE, generator=gen).to(dtype)
    values, dx = torch.empty(rows, k, device=DEVICE, dtype=dtype), torch.empty_like(x)
    indices = torch.empty(rows, k, device=DEVICE, dtype=torch.float32)
    kept = torch.empty(rows, k, device=DEVICE, dtype=torch.int32)
    forward = sort.plan_rank(x, -1, k, True, values=values, indices=indices, kept=kept)
    backward = sort.plan_scatter_backward(values, kept, dx, -1)
    xr = x.detach().clone().requires_grad_()
    yr = torch.topk(xr, k, dim=1).values
    fwd, bwd = time_ms(lambda: run(forward)), time_ms(lambda: run(backward))
    eager_fwd = time_ms(lambda: torch.topk(x, k, dim=1))
    eager_bwd = time_ms(lambda: torch.autograd.grad(yr, xr, values, retain_graph=True))
    return [_row(f"topk forward (k={k})", name, (rows, cols), fwd, eager_fwd, None, copy_gbs),
            _row(f"topk backward (k={k})", name, (rows, cols), bwd, eager_bwd, x.numel() * x.element_size(),
                 copy_gbs)]


def dropout_rows(rows: int, cols: int, name: str, copy_gbs) -> list[dict]:
    dtype = DTYPES[name]
    x = torch.randn(rows, cols, device=DEVICE).to(dtype)
    y, dx = torch.empty_like(x), torch.empty_like(x)
    state = torch.zeros(2, dtype=torch.int64, device=DEVICE)
    forward = dropout.plan_dropout(x, y, state, p=0.1, salt=1)
    backward = dropout.plan_dropout(x, dx, state, p=0.1, salt=1)  # the mask drawn again from the same key
    size = x.numel() * x.element_size()
    fwd, bwd = time_ms(lambda: run(forward)), time_ms(lambda: run(backward))
    eager = time_ms(lambda: torch.nn.functional.dropout(x, 0.1, training=True))
    # Eager's backward multiplies by the mask it kept (one more read); tritonsym's redraws it.
    mask = torch.rand_like(x, dtype=torch.float32) > 0.1
    eager_bwd = time_ms(lambda: x * mask / 0.9)
    return [_row("Dropout forward", name, (rows, cols), fwd, eager, 2 * size, copy_gbs),
            _row("Dropout backward", name, (rows, cols), bwd, eager_bwd, 2 * size, copy_gbs)]


def broadcast_rows(rows: int, cols: int, name: str, copy_gbs) -> list[dict]:
    dtype = DTYPES[name]
    a = torch.randn(rows, cols, device=DEVICE).to(dtype)
    bias = torch.randn(cols, device=DEVICE).to(dtype)
    out = torch.empty_like(a)
    forward = broadcast.plan_broadcast_binary_forward("add", a, bias, out)
    size = a.numel() * a.element_size()
    ms = time_ms(lambda: run(forward))
    return [_row("broadcast_add (rows + a row)", name, (rows, cols), ms, time_ms(lambda: a + bias), 2 * size,
                 copy_gbs)]


def rotary_rows(rows: int, cols: int, name: str, copy_gbs) -> list[dict]:
    """RoPE on a transformer's queries: (batch, positions, heads, head_dim) read as the heads
    view (batch, heads, positions, head_dim), written in attention's layout; rows x cols
    elements in all (batch 8 where rows allow, head_dim up to 128)."""
    dtype = DTYPES[name]
    head_dim = min(128, cols - cols % 2)
    batch = 8 if rows % 8 == 0 else 1
    x = torch.randn(batch, rows // batch, cols // head_dim, head_dim, device=DEVICE).to(dtype).transpose(1, 2)
    y = torch.empty(x.shape, device=DEVICE, dtype=dtype)
    forward = rotary.plan_rotary(x, y)
    backward = rotary.plan_rotary(y, x.transpose(1, 2).contiguous().transpose(1, 2), inverse=True)
    half = head_dim // 2
    angles = torch.outer(torch.arange(x.shape[2], device=DEVICE, dtype=torch.float32),
                         10000.0 ** (-torch.arange(0, head_dim, 2, device=DEVICE, dtype=torch.float32) / head_dim))
    cos, sin = (t.repeat(1, 2).to(dtype) for t in (angles.cos(), angles.sin()))  # cached, as Hugging Face does

    def eager():
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin
    size = x.numel() * x.element_size()
    fwd, bwd = time_ms(lambda: run(forward)), time_ms(lambda: run(backward))
    shape = tuple(x.shape)
    return [_row("RotaryEmbedding forward", name, shape, fwd, time_ms(eager), 2 * size, copy_gbs),
            _row("RotaryEmbedding backward", name, shape, bwd, None, 2 * size, copy_gbs)]


def gated_rows(rows: int, cols: int, name: str, copy_gbs) -> list[dict]:
    """SwiGLU's product ``h * silu(gate)`` and its gradients, against torch eager (which
    keeps silu(gate) for its backward: autograd through ``h * F.silu(gate)``)."""
    dtype = DTYPES[name]
    gen = torch.Generator(device=DEVICE).manual_seed(cols)
    h, gate, dy = (torch.randn(rows, cols, device=DEVICE, generator=gen).to(dtype) for _ in range(3))
    out, dh, dgate = torch.empty_like(h), torch.empty_like(h), torch.empty_like(h)
    forward = gated_activation.plan_gated_forward(h, gate, out, "silu")
    backward = gated_activation.plan_gated_backward(dy, h, gate, dh, dgate, "silu")
    hr, gr = (t.detach().clone().requires_grad_() for t in (h, gate))
    yr = hr * torch.nn.functional.silu(gr)
    size = h.numel() * h.element_size()
    fwd, bwd = time_ms(lambda: run(forward)), time_ms(lambda: run(backward))
    eager_fwd = time_ms(lambda: h * torch.nn.functional.silu(gate))
    eager_bwd = time_ms(lambda: torch.autograd.grad(yr, (hr, gr), dy, retain_graph=True))
    return [_row("GatedActivation (silu) forward", name, (rows, cols), fwd, eager_fwd, 3 * size, copy_gbs),
            _row("GatedActivation (silu) backward", name, (rows, cols), bwd, eager_bwd, 5 * size, copy_gbs)]


def cross_entropy_rows(rows: int, classes: int, name: str, copy_gbs) -> list[dict]:
    """softmax_cross_entropy over a vocabulary (its loss summed over the rows, as MXNet's)
    against F.cross_entropy(reduction="sum"); eager's backward through autograd, a fresh
    gradient each call (``torch.autograd.grad``: nothing accumulates between calls)."""
    dtype = DTYPES[name]
    gen = torch.Generator(device=DEVICE).manual_seed(rows + 2)
    x = torch.randn(rows, classes, device=DEVICE, generator=gen).to(dtype)
    label = torch.randint(0, classes, (rows,), device=DEVICE, generator=gen)
    ct = torch.float64 if dtype == torch.float64 else torch.float32
    loss, dy, dx = torch.empty(1, device=DEVICE, dtype=dtype), torch.ones(1, device=DEVICE, dtype=dtype), \
        torch.empty_like(x)
    row_losses, lse = torch.empty(rows, device=DEVICE, dtype=ct), torch.empty(rows, device=DEVICE, dtype=ct)
    forward = cross_entropy.plan_cross_entropy(x, label, loss, row_losses, lse)
    backward = cross_entropy.plan_cross_entropy_backward(x, label, lse, dy, dx)
    xr = x.detach().clone().requires_grad_()
    lr = torch.nn.functional.cross_entropy(xr, label, reduction="sum")
    size = x.numel() * x.element_size()
    fwd, bwd = time_ms(lambda: run(forward)), time_ms(lambda: run(backward))
    eager_fwd = time_ms(lambda: torch.nn.functional.cross_entropy(x, label, reduction="sum"))
    eager_bwd = time_ms(lambda: torch.autograd.grad(lr, xr, retain_graph=True))
    return [_row("softmax_cross_entropy forward", name, (rows, classes), fwd, eager_fwd, size, copy_gbs),
            _row("softmax_cross_entropy backward", name, (rows, classes), bwd, eager_bwd, 2 * size, copy_gbs)]


def sampling_rows(rows: int, cols: int, name: str, copy_gbs) -> list[dict]:
    """Uniform and normal draws (Philox in the kernel, as ``ts.sym.random``'s) against
    torch's ``uniform_`` and ``normal_``: one write each, nothing read."""
    dtype = DTYPES[name]
    out = torch.empty(rows, cols, device=DEVICE, dtype=dtype)
    state = torch.zeros(2, dtype=torch.int64, device=DEVICE)
    size = out.numel() * out.element_size()
    result = []
    # torch's gamma and Poisson samplers take their parameter as a tensor (a read more)
    shape_2 = torch.full((rows, cols), 2.0, device=DEVICE, dtype=torch.float32 if dtype.itemsize == 2 else dtype)
    for distribution, low, eager in (("uniform", -1.0, lambda: out.uniform_(-1.0, 1.0)),
                                     ("normal", 0.0, lambda: out.normal_(0.0, 1.0)),
                                     ("gamma", 2.0, lambda: torch._standard_gamma(shape_2)),
                                     ("poisson", 2.0, lambda: torch.poisson(shape_2))):
        plan = sampling.plan_sample(out, state, distribution, low, 1.0, salt=1)
        result.append(_row(f"random {distribution}", name, (rows, cols), time_ms(lambda p=plan: run(p)),
                           time_ms(eager), size, copy_gbs))
    return result


def cumsum_rows(rows: int, cols: int, name: str, copy_gbs) -> list[dict]:
    """cumsum along each row (summed in float64) forward, and its gradient (the running sum
    from the row's end), against torch.cumsum and its reverse (flip, cumsum, flip)."""
    dtype = DTYPES[name]
    x = torch.randn(rows, cols, device=DEVICE, dtype=dtype)
    out = torch.empty_like(x)
    size = x.numel() * x.element_size()
    forward, backward = cumsum.plan_cumsum(x, out, 1), cumsum.plan_cumsum(x, out, 1, reverse=True)
    return [_row("cumsum forward", name, (rows, cols), time_ms(lambda: run(forward)),
                 time_ms(lambda: torch.cumsum(x, 1)), 2 * size, copy_gbs),
            _row("cumsum backward", name, (rows, cols), time_ms(lambda: run(backward)),
                 time_ms(lambda: torch.cumsum(x.flip(1), 1).flip(1)), 2 * size, copy_gbs)]


def ctc_rows(steps: int, batch: int, channels: int, labels: int, name: str) -> list[dict]:
    """CTCLoss of (steps, batch, channels) activations against labels of ``labels`` tokens
    (a repeat in each), forward and backward, against F.ctc_loss of the log-softmax (cuDNN's
    or torch's own kernel; torch takes float32 only, its column is empty otherwise) and its
    autograd."""
    dtype = DTYPES[name]
    gen = torch.Generator(device=DEVICE).manual_seed(steps)
    x = torch.randn(steps, batch, channels, device=DEVICE, generator=gen).to(dtype)
    label = torch.randint(1, channels, (batch, labels), device=DEVICE, generator=gen)
    label[:, 1] = label[:, 0]
    loss, head = torch.empty(batch, device=DEVICE, dtype=dtype), torch.ones(batch, device=DEVICE, dtype=dtype)
    kept = {k: torch.empty(shape, device=DEVICE, dtype=t)
            for k, (shape, t) in ctc_loss.kept_shapes(steps, batch, labels, dtype).items()}
    shape, scratch_dtype = ctc_loss.scratch_shape(batch, labels, dtype)
    beta, dx = torch.empty(shape, device=DEVICE, dtype=scratch_dtype), torch.empty_like(x)
    forward = ctc_loss.plan_ctc_loss(x, label, loss, kept["alpha"], lse=kept["lse"])
    backward = ctc_loss.plan_ctc_loss_backward(x, label, head, kept["alpha"], kept["lse"], beta, dx)
    run(forward + backward)
    single = dtype == torch.float32
    lengths = (torch.full((batch,), steps, device=DEVICE, dtype=torch.long),
               torch.full((batch,), labels, device=DEVICE, dtype=torch.long))

    def theirs(x_):
        return torch.nn.functional.ctc_loss(x_.log_softmax(-1), label, *lengths, reduction="sum")
    xr = x.detach().clone().requires_grad_()
    ref = theirs(xr) if single else None
    return [_row("CTCLoss forward", name, (steps, batch, channels, labels), time_ms(lambda: run(forward)),
                 time_ms(lambda: theirs(x)) if single else None, None, None),
            _row("CTCLoss backward", name, (steps, batch, channels, labels), time_ms(lambda: run(backward)),
                 time_ms(lambda: torch.autograd.grad(ref, xr, retain_graph=True)) if single else None, None, None)]


def linalg_rows(batch: int, n: int, name: str) -> list[dict]:
    """potrf of a batch of n x n positive-definite matrices and trsm of n x n lower factors
    against n right-hand sides: one program per matrix (per column tile for the solve),
    unblocked. torch's cholesky and solve_triangular take no half precision: their column
    is empty there."""
    dtype = DTYPES[name]
    x = torch.randn(batch, n, n, device=DEVICE, dtype=torch.float32) / n ** 0.5
    spd = (x @ x.transpose(1, 2) + torch.eye(n, device=DEVICE)).to(dtype)
    factor, rhs = torch.empty_like(spd), torch.randn(batch, n, n, device=DEVICE, dtype=dtype)
    solved = torch.empty_like(rhs)
    run(linalg_cholesky.plan_cholesky(spd, factor))
    potrf = linalg_cholesky.plan_cholesky(spd, factor)
    trsm = linalg_solve.plan_solve(factor, rhs, solved, upper=False)
    single = dtype == torch.float32
    return [_row("linalg potrf", name, (batch, n, n), time_ms(lambda: run(potrf)),
                 time_ms(lambda: torch.linalg.cholesky(spd)) if single else None, None, None,
                 flops=batch * n ** 3 / 3),
            _row("linalg trsm", name, (batch, n, n), time_ms(lambda: run(trsm)),
                 time_ms(lambda: torch.linalg.solve_triangular(factor, rhs, upper=False)) if single else None,
                 None, None, flops=batch * n ** 3)]


def gather_nd_rows(rows: int, cols: int, name: str, copy_gbs) -> list[dict]:
    """gather_nd of rows of a (rows/16, 16, cols) array by two coordinates each (a quarter of
    the rows, repeats included), forward against advanced indexing and backward (the
    gradient summed per row, the same bits every run) against ``index_put_`` accumulating."""
    dtype = DTYPES[name]
    gen = torch.Generator(device=DEVICE).manual_seed(rows + 3)
    data = torch.randn(max(rows // 16, 1), 16, cols, device=DEVICE, generator=gen).to(dtype)
    picks = max(rows // 4, 1)
    coords = torch.stack([torch.randint(0, data.shape[0], (picks,), device=DEVICE, generator=gen),
                          torch.randint(0, 16, (picks,), device=DEVICE, generator=gen)])
    out = torch.empty(picks, cols, device=DEVICE, dtype=dtype)
    dy = torch.randn(picks, cols, device=DEVICE, generator=gen).to(dtype)
    dx = torch.empty_like(data)
    scratch = {k: torch.empty(shape, dtype=t, device=DEVICE)
               for k, (shape, t) in gather_nd.scratch_shapes(coords.shape).items()}
    forward = gather_nd.plan_gather_nd(data, coords, out, scratch)
    backward = gather_nd.plan_gather_nd_backward(dy, coords, dx, scratch)
    fwd, bwd = time_ms(lambda: run(forward)), time_ms(lambda: run(backward))
    eager_fwd = time_ms(lambda: data[coords[0], coords[1]])
    eager_bwd = time_ms(lambda: torch.zeros_like(data).index_put_((coords[0], coords[1]), dy, accumulate=True))
    moved = out.numel() * out.element_size()
    return [_row("gather_nd forward", name, (picks, cols), fwd, eager_fwd, 2 * moved, copy_gbs),
            _row("gather_nd backward", name, (picks, cols), bwd, eager_bwd, None, copy_gbs)]


def resize_rows(batch: int, channels: int, size: int, name: str, copy_gbs) -> list[dict]:
    """BilinearResize2D of (batch, channels, size, size) maps to 4x their height and width
    (align_corners=False, DeepLab's decoder) and AdaptiveAvgPooling2D of them to 6 x 6
    (PSPNet's coarsest pyramid level), forward and backward, each gradient gathered by the
    input element; against F.interpolate and F.adaptive_avg_pool2d and their autograd."""
    dtype = DTYPES[name]
    x = torch.randn(batch, channels, size, size, device=DEVICE, dtype=dtype)
    big, cells = torch.empty(batch, channels, 4 * size, 4 * size, device=DEVICE, dtype=dtype), \
        torch.empty(batch, channels, 6, 6, device=DEVICE, dtype=dtype)
    dx = torch.empty_like(x)
    plans = {"BilinearResize2D forward": bilinear_resize.plan_bilinear_resize(x, big, align_corners=False),
             "BilinearResize2D backward": bilinear_resize.plan_bilinear_resize_backward(big, dx, align_corners=False),
             "AdaptiveAvgPooling2D forward": adaptive_pooling.plan_adaptive_avg_pool(x, cells),
             "AdaptiveAvgPooling2D backward": adaptive_pooling.plan_adaptive_avg_pool_backward(cells, dx)}
    xr = x.detach().clone().requires_grad_()
    resized = torch.nn.functional.interpolate(xr, scale_factor=4, mode="bilinear", align_corners=False)
    pooled = torch.nn.functional.adaptive_avg_pool2d(xr, 6)
    theirs = {"BilinearResize2D forward": lambda: torch.nn.functional.interpolate(
                  x, scale_factor=4, mode="bilinear", align_corners=False),
              "BilinearResize2D backward": lambda: torch.autograd.grad(resized, xr, big, retain_graph=True),
              "AdaptiveAvgPooling2D forward": lambda: torch.nn.functional.adaptive_avg_pool2d(x, 6),
              "AdaptiveAvgPooling2D backward": lambda: torch.autograd.grad(pooled, xr, cells, retain_graph=True)}
    moved = {"BilinearResize2D": (x.numel() + big.numel()) * x.element_size(),
             "AdaptiveAvgPooling2D": (x.numel() + cells.numel()) * x.element_size()}
    return [_row(op, name, (batch, channels, size, size), time_ms(lambda p=plan: run(p)), time_ms(theirs[op]),
                 moved[op.split()[0]], copy_gbs) for op, plan in plans.items()]


def im2col_rows(batch: int, channels: int, size: int, name: str, copy_gbs) -> list[dict]:
    """im2col of (batch, channels, size, size) maps into the 3 x 3 blocks of a padded
    convolution, and col2im of their gradient back (im2col's backward); against F.unfold and
    its autograd (F.fold)."""
    dtype = DTYPES[name]
    geometry = dict(kernel=(3, 3), stride=(1, 1), dilate=(1, 1), pad=(1, 1))
    x = torch.randn(batch, channels, size, size, device=DEVICE, dtype=dtype)
    cols = torch.empty(batch, channels * 9, size * size, device=DEVICE, dtype=dtype)
    dx = torch.empty_like(x)
    plans = {"im2col forward": im2col.plan_im2col(x, cols, **geometry),
             "im2col backward (col2im)": im2col.plan_col2im(cols, dx, **geometry)}
    xr = x.detach().clone().requires_grad_()
    unfolded = torch.nn.functional.unfold(xr, 3, padding=1)
    theirs = {"im2col forward": lambda: torch.nn.functional.unfold(x, 3, padding=1),
              "im2col backward (col2im)": lambda: torch.autograd.grad(unfolded, xr, cols, retain_graph=True)}
    moved = (x.numel() + cols.numel()) * x.element_size()
    return [_row(op, name, (batch, channels, size, size), time_ms(lambda p=plan: run(p)), time_ms(theirs[op]),
                 moved, copy_gbs) for op, plan in plans.items()]


def spatial_transformer_rows(batch: int, channels: int, size: int, name: str, copy_gbs) -> list[dict]:
    """SpatialTransformer of (batch, channels, size, size) maps to a size x size grid of
    maps near the identity (a spatial transformer network's sampler), forward and backward
    (the data's and the maps' gradients); against F.affine_grid with F.grid_sample
    (align_corners=True, zero padding) and their autograd."""
    dtype = DTYPES[name]
    x = torch.randn(batch, channels, size, size, device=DEVICE, dtype=dtype)
    identity = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0], device=DEVICE)
    loc = (identity + 0.1 * torch.randn(batch, 6, device=DEVICE)).to(dtype)
    wide = compute_dtype(dtype)
    grid, dgrid = (torch.empty(batch, 2, size, size, device=DEVICE, dtype=wide) for _ in range(2))
    out, dx, dloc = torch.empty_like(x), torch.empty_like(x), torch.empty_like(loc)
    wanted = bilinear_sampler.data_grad_scratch(x.shape, grid.shape, dtype)
    scratch = None if wanted is None else torch.empty(wanted[0], device=DEVICE, dtype=wanted[1])
    forward = grid_generator.plan_affine_grid(loc, grid) + bilinear_sampler.plan_bilinear_sample(x, grid, out)
    backward = (grid_generator.plan_affine_grid(loc, grid)
                + bilinear_sampler.plan_bilinear_sample_grid_backward(x, grid, out, dgrid)
                + bilinear_sampler.plan_bilinear_sample_data_backward(grid, out, dx, scratch=scratch)
                + grid_generator.plan_affine_grid_backward(dgrid, dloc))
    xr, locr = x.detach().clone().requires_grad_(), loc.detach().clone().requires_grad_()

    def theirs(data, maps):
        return torch.nn.functional.grid_sample(
            data, torch.nn.functional.affine_grid(maps.view(-1, 2, 3), list(data.shape), align_corners=True),
            mode="bilinear", padding_mode="zeros", align_corners=True)

    sampled = theirs(xr, locr)
    moved = 2 * x.numel() * x.element_size()
    shape = (batch, channels, size, size)
    return [_row("SpatialTransformer forward", name, shape, time_ms(lambda: run(forward)),
                 time_ms(lambda: theirs(x, loc)), moved, copy_gbs),
            _row("SpatialTransformer backward", name, shape, time_ms(lambda: run(backward)),
                 time_ms(lambda: torch.autograd.grad(sampled, (xr, locr), out, retain_graph=True)), None, copy_gbs)]


def roi_rows(batch: int, channels: int, size: int, regions: int, bins: int, name: str) -> list[dict]:
    """ROIAlign of ``regions`` random boxes (up to half the image a side) on (batch,
    channels, size, size) maps of a stride-16 backbone into 7 x 7 bins of 2 x 2 samples
    (Mask R-CNN's box head), and ROIPooling of them into 7 x 7 bins (Fast R-CNN's), forward
    and backward; against torchvision.ops.roi_align and roi_pool and their autograd where
    torchvision is installed. ``bins`` a side: 7 (2 for the interpreter's quick run)."""
    dtype = DTYPES[name]
    x = torch.randn(batch, channels, size, size, device=DEVICE, dtype=dtype)
    image = 16.0 * size
    corner = torch.rand(regions, 2, device=DEVICE) * image * 0.75
    extent = torch.rand(regions, 2, device=DEVICE) * image * 0.5 + 16.0
    index = torch.randint(0, batch, (regions, 1), device=DEVICE).float()
    rois = torch.cat([index, corner, corner + extent], dim=1).to(dtype)
    geometry = dict(pooled_size=(bins, bins), spatial_scale=1 / 16, sample_ratio=2)
    out = torch.empty(regions, channels, bins, bins, device=DEVICE, dtype=dtype)
    dx = torch.empty_like(x)
    wanted = roi_align.grad_scratch(x.shape, regions, dtype)
    scratch = None if wanted is None else torch.empty(wanted[0], device=DEVICE, dtype=wanted[1])
    forward = roi_align.plan_roi_align(x, rois, out, **geometry)
    backward = roi_align.plan_roi_align_backward(out, rois, dx, scratch=scratch, **geometry)
    eager_fwd = eager_bwd = None
    try:
        from torchvision.ops import roi_align as theirs
    except ImportError:  # not installed (the CPU machine): tritonsym's times alone
        theirs = None
    if theirs is not None:
        xr = x.detach().clone().requires_grad_()
        pooled = theirs(xr, rois, (bins, bins), 1 / 16, 2)
        eager_fwd = time_ms(lambda: theirs(x, rois, (bins, bins), 1 / 16, 2))
        eager_bwd = time_ms(lambda: torch.autograd.grad(pooled, xr, out, retain_graph=True))
    pool_forward = roi_pooling.plan_roi_pooling(x, rois, out, pooled_size=(bins, bins), spatial_scale=1 / 16)
    pool_backward = roi_pooling.plan_roi_pooling_backward(x, out, rois, dx, pooled_size=(bins, bins),
                                                          spatial_scale=1 / 16, scratch=scratch)
    pool_eager_fwd = pool_eager_bwd = None
    if theirs is not None:
        from torchvision.ops import roi_pool

        xr = x.detach().clone().requires_grad_()
        max_pooled = roi_pool(xr, rois, (bins, bins), 1 / 16)
        pool_eager_fwd = time_ms(lambda: roi_pool(x, rois, (bins, bins), 1 / 16))
        pool_eager_bwd = time_ms(lambda: torch.autograd.grad(max_pooled, xr, out, retain_graph=True))
    shape = (batch, channels, size, size, regions)
    return [*_psroi_rows(x, rois, bins, name),
            _row("ROIAlign forward", name, shape, time_ms(lambda: run(forward)), eager_fwd, None, None),
            _row("ROIAlign backward", name, shape, time_ms(lambda: run(backward)), eager_bwd, None, None),
            _row("ROIPooling forward", name, shape, time_ms(lambda: run(pool_forward)), pool_eager_fwd, None, None),
            _row("ROIPooling backward", name, shape, time_ms(lambda: run(pool_backward)), pool_eager_bwd, None,
                 None)]


def _psroi_rows(x: torch.Tensor, rois: torch.Tensor, bins: int, name: str) -> list[dict]:
    """PSROIPooling (R-FCN's) of the regions into bins x bins bins over as many classes as
    x's channels hold (bins x bins channels a class), forward and backward; against
    torchvision.ops.ps_roi_pool and its autograd where torchvision is installed."""
    classes = max(1, x.shape[1] // bins ** 2)
    data = torch.randn(x.shape[0], classes * bins ** 2, *x.shape[2:], device=DEVICE, dtype=x.dtype)
    out = torch.empty(rois.shape[0], classes, bins, bins, device=DEVICE, dtype=x.dtype)
    ddata = torch.empty_like(data)
    geometry = dict(output_dim=classes, pooled_size=bins, group_size=bins, spatial_scale=1 / 16)
    wanted = roi_align.grad_scratch(data.shape, rois.shape[0], x.dtype)
    scratch = None if wanted is None else torch.empty(wanted[0], device=DEVICE, dtype=wanted[1])
    forward = psroi_pooling.plan_psroi_pooling(data, rois, out, **geometry)
    backward = psroi_pooling.plan_psroi_pooling_backward(out, rois, ddata, scratch=scratch, **geometry)
    eager_fwd = eager_bwd = None
    try:
        from torchvision.ops import ps_roi_pool
    except ImportError:  # not installed (the CPU machine): tritonsym's times alone
        ps_roi_pool = None
    if ps_roi_pool is not None:
        leaf = data.detach().clone().requires_grad_()
        pooled = ps_roi_pool(leaf, rois, (bins, bins), 1 / 16)
        eager_fwd = time_ms(lambda: ps_roi_pool(data, rois, (bins, bins), 1 / 16))
        eager_bwd = time_ms(lambda: torch.autograd.grad(pooled, leaf, out, retain_graph=True))
    shape = (*data.shape, rois.shape[0])
    return [_row("PSROIPooling forward", name, shape, time_ms(lambda: run(forward)), eager_fwd, None, None),
            _row("PSROIPooling backward", name, shape, time_ms(lambda: run(backward)), eager_bwd, None, None)]


def nms_rows(images: int, boxes: int, classes: int, name: str) -> list[dict]:
    """box_nms of ``images`` x ``boxes`` random detections (id, score, corners; ``classes``
    classes, sides up to a tenth of a 1000-pixel image) kept apart by class, forward and
    backward; against torchvision.ops.batched_nms (forward: it has no backward), the batch
    in one call with image and class folded into its index, where torchvision is installed."""
    dtype = DTYPES[name]
    corner = torch.rand(images, boxes, 2, device=DEVICE) * 900
    extent = torch.rand(images, boxes, 2, device=DEVICE) * 90 + 10
    label = torch.randint(0, classes, (images, boxes, 1), device=DEVICE).float()
    score = torch.rand(images, boxes, 1, device=DEVICE)
    data = torch.cat([label, score, corner, corner + extent], dim=2).to(dtype)
    out, dx = torch.empty_like(data), torch.empty_like(data)
    scratch = [torch.empty(box_nms.scratch_shape(data.shape), device=DEVICE, dtype=torch.int32) for _ in range(3)]
    params = dict(id_index=0, valid_thresh=-1.0, overlap_thresh=0.5)
    forward = box_nms.plan_box_nms(data, out, *scratch, **params)
    backward = box_nms.plan_box_nms_backward(out, data, dx, *scratch, **params)
    eager = None
    try:
        from torchvision.ops import batched_nms
    except ImportError:  # not installed (the CPU machine): tritonsym's times alone
        batched_nms = None
    if batched_nms is not None:
        flat = data.reshape(-1, 6)
        index = (torch.arange(images, device=DEVICE)[:, None] * classes + label[..., 0].long()).reshape(-1)
        eager = time_ms(lambda: batched_nms(flat[:, 2:], flat[:, 1], index, 0.5))
    shape = (images, boxes)
    return [_row("box_nms forward", name, shape, time_ms(lambda: run(forward)), eager, None, None),
            _row("box_nms backward", name, shape, time_ms(lambda: run(backward)), None, None, None)]


def ssd_rows(images: int, anchors: int, classes: int, boxes: int, name: str) -> list[dict]:
    """SSD's training targets (MultiBoxTarget, mining 3 negatives a positive) and detections
    (MultiBoxDetection, the 400 best into suppression) of ``images`` x ``anchors`` random
    anchors, ``classes`` classes, labels of ``boxes`` rows of which a quarter are boxes,
    the rest padding. tritonsym's times alone: torch has neither operator."""
    dtype = DTYPES[name]
    corner = torch.rand(1, anchors, 2, device=DEVICE) * 0.8
    anchor = torch.cat([corner, corner + torch.rand(1, anchors, 2, device=DEVICE) * 0.3 + 0.02], dim=2).to(dtype)
    label = -torch.ones(images, boxes, 5, device=DEVICE)
    count = max(1, boxes // 4)
    top_left = torch.rand(images, count, 2, device=DEVICE) * 0.7
    label[:, :count, 0] = torch.randint(0, classes - 1, (images, count), device=DEVICE).float()
    label[:, :count, 1:] = torch.cat([top_left, top_left + torch.rand(images, count, 2, device=DEVICE) * 0.3 + 0.05],
                                     dim=2)
    label = label.to(dtype)
    cls_pred = torch.randn(images, classes, anchors, device=DEVICE).to(dtype)
    outputs = [torch.empty(images, anchors * 4, device=DEVICE, dtype=dtype) for _ in range(2)] + \
        [torch.empty(images, anchors, device=DEVICE, dtype=dtype)]
    scratch = {key: torch.empty(shape, device=DEVICE, dtype=t) for key, (shape, t) in
               multibox_target.scratch_shapes(images, anchors, boxes, dtype).items()}
    targets = multibox_target.plan_multibox_target(anchor, label, cls_pred, *outputs, scratch,
                                                   negative_mining_ratio=3.0)
    cls_prob = torch.softmax(cls_pred.float(), dim=1).to(dtype)
    loc_pred = (torch.randn(images, anchors * 4, device=DEVICE) * 0.5).to(dtype)
    detections = torch.empty(images, anchors, multibox_detection.WIDTH, device=DEVICE, dtype=dtype)
    detection_scratch = {key: torch.empty(shape, device=DEVICE, dtype=dtype if key == "rows" else torch.int32)
                         for key, shape in multibox_detection.scratch_shapes(images, anchors).items()}
    detect = multibox_detection.plan_multibox_detection(cls_prob, loc_pred, anchor, detections, detection_scratch,
                                                        nms_topk=400)
    return [_row("MultiBoxTarget", name, (images, anchors, boxes), time_ms(lambda: run(targets)), None, None, None),
            _row("MultiBoxDetection", name, (images, anchors, classes), time_ms(lambda: run(detect)), None, None,
                 None)]


def batch_dot_rows(batch: int, m: int, n: int, k: int, name: str) -> list[dict]:
    dtype = DTYPES[name]
    a, b = torch.randn(batch, m, k, device=DEVICE).to(dtype), torch.randn(batch, k, n, device=DEVICE).to(dtype)
    out = torch.empty(batch, m, n, device=DEVICE, dtype=dtype)
    precision = "tf32" if dtype == torch.float32 else "ieee"
    launches = bmm.plan_batch_dot(a, b, out, precision=precision)
    run(launches)  # autotune outside the timing
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    ms = time_ms(lambda: run(launches))
    return [_row(f"batch_dot{' (tf32)' if precision == 'tf32' else ''}", name, (batch, m, n, k), ms,
                 time_ms(lambda: torch.bmm(a, b)), None, None, 2.0 * batch * m * n * k)]


def adam_rows(rows: int, cols: int, name: str, copy_gbs) -> list[dict]:
    """One flat Adam update over layers of ``cols`` x 1000 weights and 1000 biases (a
    classifier's width: each parameter ends 8 elements past a multiple of 16, an edge
    chunk), about rows x cols elements in all, states in the parameters' dtype (torch's
    choice for bfloat16; tritonsym's default too). Starts on 256-byte boundaries, as a bound
    network's parameters."""
    dtype = DTYPES[name]
    sizes = [size for _ in range(max(1, rows * cols // (cols * 1000))) for size in (cols * 1000, 1000)]
    step = 256 * 8 // torch.finfo(dtype).bits  # elements in 256 bytes
    starts = [sum(-(-s // step) * step for s in sizes[:k]) for k in range(len(sizes))]
    region = starts[-1] + sizes[-1]
    gen = torch.Generator(device=DEVICE).manual_seed(region)
    w = torch.randn(region, device=DEVICE, generator=gen).to(dtype)
    g = torch.randn(region, device=DEVICE, generator=gen).to(dtype)
    mean, var = torch.zeros_like(w), torch.zeros_like(w)
    chunks = update.chunk_table([update.Segment(s, n) for s, n in zip(starts, sizes)], region, dtype, DEVICE)
    values = dict(learning_rate=1e-4, beta1=0.9, beta2=0.999, epsilon=1e-8, step=1, rescale_grad=1.0,
                  one_minus_beta1=0.1, one_minus_beta2=0.001)
    hyper = torch.tensor([values.get(k, 0.0) for k in update.ADAM_HYPER], dtype=update.compute_dtype(dtype),
                         device=DEVICE)
    launches = update.plan_adam_update(w, g, mean, var, chunks, hyper, False)
    ms = time_ms(lambda: run(launches))
    # clip_global_norm: one more read of the gradients (the sums of squares) before the update
    norm_state = grad_norm.new_state(DEVICE)
    partials = torch.zeros(chunks.programs, dtype=torch.float64, device=DEVICE)
    clipped = grad_norm.plan_global_norm([(g, chunks)], partials, norm_state, hyper,
                                         update.ADAM_HYPER.index("rescale_grad"), 1.0) + \
        update.plan_adam_update(w, g, mean, var, chunks, hyper, False, clip_state=norm_state)
    clipped_ms = time_ms(lambda: run(clipped))
    params = [w[s:s + n].detach().clone().requires_grad_() for s, n in zip(starts, sizes)]
    for p, s, n in zip(params, starts, sizes):
        p.grad = g[s:s + n].clone()
    torch_adam = torch.optim.Adam(params, lr=1e-4, **({"fused": True} if ON_GPU else {"foreach": True}))
    eager = time_ms(torch_adam.step)
    # read w, g, m, v; write w, m, v
    params_norm = [p.detach().clone().requires_grad_() for p in params]
    for p, s, n in zip(params_norm, starts, sizes):
        p.grad = g[s:s + n].clone()
    torch_clipped = torch.optim.Adam(params_norm, lr=1e-4, **({"fused": True} if ON_GPU else {"foreach": True}))

    def eager_clipped():
        torch.nn.utils.clip_grad_norm_(params_norm, 1e9)  # the norm taken, nothing scaled: the cost of the pass
        torch_clipped.step()
    return [_row("Adam update", name, (len(sizes), sum(sizes)), ms, eager, 7 * sum(sizes) * w.element_size(),
                 copy_gbs),
            _row("Adam update, clip_global_norm", name, (len(sizes), sum(sizes)), clipped_ms, time_ms(eager_clipped),
                 8 * sum(sizes) * w.element_size(), copy_gbs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=16384 if ON_GPU else 64)
    parser.add_argument("--columns", type=int, default=4096 if ON_GPU else 48)
    parser.add_argument("--dtypes", default="bfloat16,float32")
    parser.add_argument("--classes", type=int, default=32000 if ON_GPU else 50,
                        help="the vocabulary of softmax_cross_entropy (its rows: a quarter of --rows)")
    # 64x1000x128x1000: scores times values over 1000 keys, rows a multiple of 8 not 16 (ALIGN 8)
    parser.add_argument("--bmm", default="64x1024x1024x128,64x1000x128x1000" if ON_GPU else "2x33x17x40",
                        help="batch x M x N x K of batch_dot, comma-separated")
    args = parser.parse_args()
    names = [d for d in args.dtypes.split(",") if d]
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.bmm.split(",") if s]
    copy_gbs = copy_bandwidth_gbs()
    notes = copy_note(copy_gbs) + ("`vs eager` is tritonsym's speed-up over PyTorch eager (torch.bmm for batch_dot); "
                                   "`% of copy` counts LayerNorm's forward as one read and one write of the data, "
                                   "its backward as two reads and one write (L2Normalization's alike; its forward "
                                   "reads each row twice more, from cache where the row fits), Dropout's passes as "
                                   "one read and one write (its mask is drawn, not read), Adam's update as four "
                                   "reads and three writes (shape: parameters x elements; `vs eager`: against "
                                   "torch.optim.Adam, fused on a GPU; with clip_global_norm one more read, against "
                                   "torch.nn.utils.clip_grad_norm_ then the step), RotaryEmbedding's passes as "
                                   "one read and one write (shape: batch x heads x positions x head_dim; its "
                                   "forward's `vs eager` against Hugging Face's rotate_half with a cached cos/sin "
                                   "table), GatedActivation's forward as two reads and a write, its backward as "
                                   "three reads and two writes (eager: autograd through h * F.silu(gate)), topk's "
                                   "backward as one write of the data's gradient (its forward, O(columns²) "
                                   "comparisons a row, on a sixteenth of the rows, has no copy share), "
                                   "softmax_cross_entropy's forward as one read of the scores (eager: "
                                   "F.cross_entropy summed), its backward as one read and one write (shape: rows x "
                                   "classes), the random draws as one write (eager: torch's "
                                   "uniform_ and normal_, and _standard_gamma and poisson of a float32 tensor of "
                                   "2s; gamma of shape 2 and Poisson of mean 2 here, by rejection), gather_nd's "
                                   "forward as one read and one write of the "
                                   "rows gathered (eager: advanced indexing; its backward against index_put_ "
                                   "accumulating, no copy share), cumsum's passes as one read and one write "
                                   "(eager: torch.cumsum, and for the backward flip, cumsum, flip), "
                                   "BilinearResize2D's and AdaptiveAvgPooling2D's passes as one read of the smaller "
                                   "map and one read or write of the larger (shape: the input's), im2col's "
                                   "forward and backward as one read or write of the image and one of its columns "
                                   "(3 x 3 blocks, padded: 9 columns a pixel), SpatialTransformer's forward as one "
                                   "read of the maps and one write of the output (shape: the data's, sampled to its "
                                   "own size; its backward, a scatter summed in a fixed order, has no copy share), "
                                   "ROIAlign's and ROIPooling's passes with no copy share (shape: batch x channels x "
                                   "size x size x regions; `vs eager` against torchvision.ops.roi_align and roi_pool "
                                   "where it is installed; PSROIPooling's likewise, its channels 7 x 7 a class, "
                                   "against torchvision.ops.ps_roi_pool), box_nms's with none either (shape: "
                                   "images x boxes, 20 "
                                   "classes kept apart; its forward's `vs eager` against torchvision.ops.batched_nms, "
                                   "which has no backward), MultiBoxTarget's and MultiBoxDetection's with none "
                                   "and no torch baseline (shape: images x anchors x label rows, a quarter of them "
                                   "boxes; images x anchors x classes).")
    table = Table("operators", len(names) * (47 + len(shapes)), notes)
    for name in names:  # bfloat16 first: the rows that matter most if a run is cut short
        for row in layer_norm_rows(args.rows, args.columns, name, copy_gbs):
            table.add(row)
        for row in l2_normalization_rows(args.rows, args.columns, name, copy_gbs):
            table.add(row)
        for row in topk_rows(args.rows, args.columns, name, copy_gbs):
            table.add(row)
        for row in dropout_rows(args.rows, args.columns, name, copy_gbs):
            table.add(row)
        for row in broadcast_rows(args.rows, args.columns, name, copy_gbs):
            table.add(row)
        for row in rotary_rows(args.rows, args.columns, name, copy_gbs):
            table.add(row)
        for row in gated_rows(args.rows, args.columns, name, copy_gbs):
            table.add(row)
        for row in adam_rows(args.rows, args.columns, name, copy_gbs):
            table.add(row)
        for row in cross_entropy_rows(max(args.rows // 4, 1), args.classes, name, copy_gbs):
            table.add(row)
        for row in sampling_rows(args.rows, args.columns, name, copy_gbs):
            table.add(row)
        for row in gather_nd_rows(args.rows, args.columns, name, copy_gbs):
            table.add(row)
        for row in cumsum_rows(args.rows, args.columns, name, copy_gbs):
            table.add(row)
        for row in linalg_rows(*((256, 64) if ON_GPU else (4, 12)), name):
            table.add(row)
        for row in ctc_rows(*((400, 32, 256, 60) if ON_GPU else (6, 2, 5, 2)), name):
            table.add(row)
        for row in resize_rows(*((8, 256, 64) if ON_GPU else (2, 3, 7)), name, copy_gbs):
            table.add(row)
        for row in im2col_rows(*((32, 64, 56) if ON_GPU else (2, 3, 7)), name, copy_gbs):
            table.add(row)
        for row in spatial_transformer_rows(*((32, 64, 56) if ON_GPU else (1, 1, 3)), name, copy_gbs):
            table.add(row)
        for row in roi_rows(*((2, 256, 50, 512, 7) if ON_GPU else (1, 1, 4, 1, 2)), name):
            table.add(row)
        for row in nms_rows(*((8, 8732, 20) if ON_GPU else (1, 12, 3)), name):
            table.add(row)
        for row in ssd_rows(*((32, 8732, 21, 50) if ON_GPU else (2, 12, 3, 4)), name):
            table.add(row)
        for shape in shapes:
            for row in batch_dot_rows(*shape, name):
                table.add(row)
    print(f"{environment()}\nwrote {table.path}")


if __name__ == "__main__":
    main()
