"""ScaledDotProductAttention forward and backward against torch's scaled_dot_product_attention.

Each row is one (dtype, head_dim, sequence length, causal) case at a fixed number of tokens
(batch x seq = 16384, heads x head_dim = 2048, FlashAttention's benchmark convention), timed
as tritonsym's pre-built launches (forward: one launch keeping the log-sum-exp; backward:
the three launches) and as torch's SDPA on its FlashAttention backend where this torch has
it (else its default choice), forward alone and backward alone (``torch.autograd.grad`` of
a kept graph). TFLOP/s count 4 * batch * heads * seq^2 * head_dim for the forward (half of
it when causal) and 2.5 times that for the backward (its five products against the
forward's two).

Target (issue 29): forward and backward each >= 0.9x torch's at bf16/fp16, head_dim 64 and
128, seq 1K-16K, causal and not. Triton's fused-attention tutorial, the other anchor the
issue names, is not vendored here; its published H100 figures are the comparison to make
by hand.

``--group 4`` times grouped-query attention instead (4 query heads per key and value head,
torch's ``enable_gqa``; the backward adds one launch per key and value gradient summing a
group's shares). ``--window 4096`` times causal attention through a sliding window of that
many keys (Mistral's), where tritonsym visits only the key blocks inside the window; torch's
SDPA has no window argument, so its rows take the window as a boolean mask (its
memory-efficient or math backend, not FlashAttention). TFLOP/s then count the pairs the
window keeps. Each option writes a table of its own (``attention-group4``,
``attention-window4096``).

Run: python perf/bench_attention.py [--dtypes bfloat16,float16] [--head-dims 64,128]
     [--seqs 1024,...,16384] [--tokens 16384] [--group 4] [--window 4096]
"""

from __future__ import annotations

import argparse

import torch
from common import DEVICE, ON_GPU, Table, environment, ratio, time_ms
from tritonsym.ops import attention
from tritonsym.ops._common import run

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def _flash(fn):
    """``fn`` under torch's FlashAttention backend where this torch can pick it."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        return fn, "default"
    if not ON_GPU:
        return fn, "default"

    def flash():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return fn()

    try:
        flash()
        return flash, "flash"
    except RuntimeError:  # this dtype or head_dim has no flash kernel here
        return fn, "default"


def _kept_pairs(seq: int, causal: bool, window: int | None) -> float:
    """(query, key) pairs the mask keeps in one sequence (the work of a head)."""
    if window is not None:
        w = min(window, seq)
        return w * (w + 1) / 2 + (seq - w) * w
    return seq * seq * (0.5 if causal else 1.0)


def one(name: str, head_dim: int, seq: int, causal: bool, tokens: int, width: int, group: int = 1,
        window: int | None = None) -> dict:
    dtype = DTYPES[name]
    batch, heads = max(1, tokens // seq), max(group, width // head_dim // group * group)
    gen = torch.Generator(device=DEVICE).manual_seed(seq + head_dim)
    q, do = (torch.randn(batch, heads, seq, head_dim, device=DEVICE, generator=gen).to(dtype) for _ in range(2))
    k, v = (torch.randn(batch, heads // group, seq, head_dim, device=DEVICE, generator=gen).to(dtype)
            for _ in range(2))
    out = torch.empty_like(q)
    lse = torch.empty(attention.lse_shape(batch, heads, seq), device=DEVICE, dtype=attention.compute_dtype(dtype))
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    shares = [torch.empty(shape, device=DEVICE, dtype=attention.compute_dtype(dtype))
              for shape in attention.grouped_head_grads_shapes(q.shape, k.shape, v.shape)] if group > 1 else None
    forward = attention.plan_attention_forward(q, k, v, out, causal=causal, lse=lse, enable_gqa=group > 1,
                                               window=window)
    backward = attention.plan_attention_backward(do, q, k, v, out, lse, torch.empty_like(lse), dq, dk, dv,
                                                 causal=causal, enable_gqa=group > 1, head_grads=shares, window=window)
    run(forward)
    run(backward)
    ours_fwd, ours_bwd = time_ms(lambda: run(forward)), time_ms(lambda: run(backward))
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    gqa = {"enable_gqa": True} if group > 1 else {}
    if window is not None:  # no window argument: a boolean mask, which rules FlashAttention out
        i, j = torch.arange(seq, device=DEVICE)[:, None], torch.arange(seq, device=DEVICE)[None, :]
        mask = (j <= i) & (j > i - window)
        theirs_fwd, backend = (lambda: torch.nn.functional.scaled_dot_product_attention(
            *leaves, attn_mask=mask, **gqa)), "mask"
    else:
        theirs_fwd, backend = _flash(lambda: torch.nn.functional.scaled_dot_product_attention(
            *leaves, is_causal=causal, **gqa))
    kept = theirs_fwd()
    theirs_bwd = time_ms(lambda: torch.autograd.grad(kept, leaves, do, retain_graph=True))
    theirs_fwd_ms = time_ms(theirs_fwd)
    flops = 4.0 * batch * heads * _kept_pairs(seq, causal, window) * head_dim
    heads_column = f"{batch}x{heads}" + (f" on {heads // group}" if group > 1 else "")
    return {"dtype": name, "head_dim": head_dim, "seq": seq, "causal": causal, "batch x heads": heads_column,
            "fwd ms": f"{ours_fwd:.4f}", "torch fwd ms": f"{theirs_fwd_ms:.4f}", "fwd vs torch": ratio(ours_fwd,
                                                                                                   theirs_fwd_ms),
            "bwd ms": f"{ours_bwd:.4f}", "torch bwd ms": f"{theirs_bwd:.4f}", "bwd vs torch": ratio(ours_bwd,
                                                                                                 theirs_bwd),
            "fwd TFLOP/s": f"{flops / ours_fwd / 1e9:.1f}", "bwd TFLOP/s": f"{2.5 * flops / ours_bwd / 1e9:.1f}",
            "torch backend": backend}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtypes", default="bfloat16,float16" if ON_GPU else "float32")
    parser.add_argument("--head-dims", default="64,128" if ON_GPU else "16")
    parser.add_argument("--seqs", default="1024,2048,4096,8192,16384" if ON_GPU else "33,70")
    parser.add_argument("--tokens", type=int, default=16384 if ON_GPU else 140, help="batch x seq per row")
    parser.add_argument("--width", type=int, default=2048 if ON_GPU else 32, help="heads x head_dim per row")
    parser.add_argument("--group", type=int, default=1, help="query heads per key and value head (grouped-query)")
    parser.add_argument("--window", type=int, help="causal attention through a sliding window of N keys")
    args = parser.parse_args()
    names = [d for d in args.dtypes.split(",") if d]
    dims = [int(d) for d in args.head_dims.split(",") if d]
    seqs = [int(s) for s in args.seqs.split(",") if s]
    notes = ("`vs torch` is tritonsym's speed-up over torch's scaled_dot_product_attention (above 1: faster), on "
             "the backend named; `batch x heads` ends `on N` with N key and value heads (grouped-query). "
             "TFLOP/s: 4 * batch * heads * seq^2 * head_dim per forward (halved when causal; with a window, the "
             "pairs it keeps in place of seq^2), "
             "2.5 times that per backward. " + ("" if ON_GPU else "CPU rows run Triton's interpreter: they check "
                                                               "the script, not speed."))
    name = "attention" + (f"-group{args.group}" if args.group > 1 else "") + \
        (f"-window{args.window}" if args.window else "")
    causals = (True,) if args.window else (True, False)  # a window is causal
    table = Table(name, len(names) * len(dims) * len(seqs) * len(causals), notes,
                  chart=dict(x="seq", series=["fwd vs torch", "bwd vs torch"], group="dtype", ylabel="x torch"))
    for dtype in names:  # bfloat16 first: the rows that matter most if a run is cut short
        for head_dim in dims:
            for causal in causals:
                for seq in seqs:
                    table.add(one(dtype, head_dim, seq, causal, args.tokens, args.width, args.group, args.window))
    print(f"{environment()}\nwrote {table.path}")


if __name__ == "__main__":
    main()
