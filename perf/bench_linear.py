"""FullyConnected with bias and relu fused: forward and backward against cuBLAS and PyTorch.

For M = N = K over ``--sizes`` and each precision (float32 exact, TF32, float16,
bfloat16), in one run:

- ``ours fwd``: tritonsym's fused kernel, ``relu(x @ w.T + b)`` in one launch, with the
  config the autotuner chose (``fwd config``; "TMA" marks the persistent TMA path);
- ``pointer fwd``: the same kernel with the TMA path left out (``TRITONSYM_TMA=0``), where
  it would be planned: what the TMA path gains;
- ``matmul``: ``torch.matmul(x, w.T)`` alone, cuBLAS with nothing fused: the floor;
- ``eager fwd``: PyTorch eager ``relu(linear(x, w, b))``;
- ``compile fwd``: the same under ``torch.compile``;
- ``ours bwd``: the layer's backward as it runs inside an MLP, where the layer after it
  has already applied relu' to its gradient: dx (with the layer before's relu' and its
  bias partial sums in the epilogue, then their column sum), dw and db (a column sum),
  four launches; ``ours dx``, ``ours dw`` and ``ours db`` time them apart, to say which
  one a gap comes from; ``eager bwd``: PyTorch autograd's dx, dw and db of
  ``relu(linear(x, w, b))``;
- ``cublas bwd``: the backward's floor with nothing fused: relu's gradient applied first
  (untimed), then ``g @ w``, ``g.T @ x`` and ``g.sum(0)``, cuBLAS's two products and a
  reduction.

TF32 rows let cuBLAS use TF32 too (``allow_tf32``); float32 rows forbid it on both sides.
Run: python perf/bench_linear.py [--sizes 256,512,...] [--no-compile]
"""

from __future__ import annotations

import argparse

import torch
from common import DEVICE, INTERPRETER_NOTE, ON_GPU, Table, compiled, environment, ratio, time_ms
from tritonsym.ops import fully_connected as fc
from tritonsym.ops._common import run
from tritonsym.ops.aot import describe_config

PRECISIONS = {  # name: (dtype, tritonsym precision, cuBLAS TF32 allowed)
    "float32": (torch.float32, "ieee", False),
    "tf32": (torch.float32, "tf32", True),
    "float16": (torch.float16, "ieee", False),
    "bfloat16": (torch.bfloat16, "ieee", False),
}


def one_size(size: int, name: str, use_compile: bool) -> dict:
    dtype, precision, tf32 = PRECISIONS[name]
    torch.backends.cuda.matmul.allow_tf32 = tf32
    gen = torch.Generator(device=DEVICE).manual_seed(size)
    x = torch.randn(size, size, device=DEVICE, generator=gen).to(dtype)
    w = (torch.randn(size, size, device=DEVICE, generator=gen) / size**0.5).to(dtype)
    b = torch.randn(size, device=DEVICE, generator=gen).to(dtype)
    dy = torch.randn(size, size, device=DEVICE, generator=gen).to(dtype)
    y = torch.empty(size, size, device=DEVICE, dtype=dtype)
    dx, dw, db = torch.empty_like(x), torch.empty_like(w), torch.empty_like(b)

    forward = fc.plan_fully_connected_forward(x, w, b, y, act="relu", precision=precision)
    pointer_forward = None
    if forward[0].kwargs["TMA_READY"]:
        tma, fc.TMA_MODE = fc.TMA_MODE, "0"
        try:
            pointer_forward = fc.plan_fully_connected_forward(x, w, b, torch.empty_like(y), act="relu",
                                                              precision=precision)
        finally:
            fc.TMA_MODE = tma
    g = dy * (y > 0)  # relu's gradient applied, as the layer after this one hands it over in a network
    # x as the output of a relu layer before this one: dx is finished for that layer
    x_relu = x.relu()
    shape, acc = fc.bias_partials(size, size, dtype)
    parts, db_before = torch.empty(shape, dtype=acc, device=DEVICE), torch.empty_like(b)
    backward = fc.plan_fully_connected_backward(g, x_relu, w, grad_x=dx, grad_weight=dw, grad_bias=db,
                                                 input_act="relu", input_grad_bias=db_before, input_partials=parts,
                                                 precision=precision)

    def ours_fwd():
        run(forward)

    def ours_bwd():
        run(backward)

    grad_b_launch, grad_x_launches, grad_w_launch = backward[0], backward[1:3], backward[3]

    ours_fwd()
    config = describe_config(fc._fc_forward_kernel.best_config)  # what the autotuner chose for this launch
    reference = torch.relu(torch.nn.functional.linear(x.double(), w.double(), b.double()))
    error = ((y.double() - reference).norm() / reference.norm()).item()

    def eager_fwd():
        return torch.relu(torch.nn.functional.linear(x, w, b))

    xr, wr, br = (t.detach().clone().requires_grad_() for t in (x, w, b))
    yr = torch.relu(torch.nn.functional.linear(xr, wr, br))

    def eager_bwd():
        torch.autograd.grad(yr, (xr, wr, br), dy, retain_graph=True)

    def cublas_bwd():
        torch.matmul(g, w)
        torch.matmul(g.T, x)
        g.sum(0)

    compiled_fwd = compiled(eager_fwd, use_compile)
    times = {"ours fwd": time_ms(ours_fwd),
             "pointer fwd": time_ms(lambda: run(pointer_forward)) if pointer_forward else None,
             "matmul": time_ms(lambda: torch.matmul(x, w.T)),
             "eager fwd": time_ms(eager_fwd), "compile fwd": time_ms(compiled_fwd) if compiled_fwd else None,
             "ours bwd": time_ms(ours_bwd), "ours dx": time_ms(lambda: run(grad_x_launches)),
             "ours dw": time_ms(grad_w_launch), "ours db": time_ms(grad_b_launch), "eager bwd": time_ms(eager_bwd),
             "cublas bwd": time_ms(cublas_bwd)}
    flops = 2 * size**3
    row = {"size": size, "precision": name, "fwd config": config}
    row.update({f"{k} ms": "" if v is None else f"{v:.4f}" for k, v in times.items()})
    row.update({
        "ours fwd TFLOP/s": f"{flops / times['ours fwd'] / 1e9:.1f}",
        "matmul TFLOP/s": f"{flops / times['matmul'] / 1e9:.1f}",
        "ours bwd TFLOP/s": f"{2 * flops / times['ours bwd'] / 1e9:.1f}",
        "ours dx TFLOP/s": f"{flops / times['ours dx'] / 1e9:.1f}",
        "ours dw TFLOP/s": f"{flops / times['ours dw'] / 1e9:.1f}",
        "fwd / matmul": f"{times['matmul'] / times['ours fwd']:.2f}",
        "fwd vs pointer": ratio(times["ours fwd"], times["pointer fwd"]),
        "fwd vs eager": ratio(times["ours fwd"], times["eager fwd"]),
        "fwd vs compile": ratio(times["ours fwd"], times["compile fwd"]),
        "bwd vs eager": ratio(times["ours bwd"], times["eager bwd"]),
        "bwd / cublas": f"{times['cublas bwd'] / times['ours bwd']:.2f}",
        "fwd rel. error": f"{error:.1e}",
    })
    torch.backends.cuda.matmul.allow_tf32 = False
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256,512,1024,2048,4096,8192" if ON_GPU else "48,80")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile column")
    args = parser.parse_args()
    precisions, sizes = args.precisions.split(","), [int(s) for s in args.sizes.split(",")]
    notes = ("M = N = K = size. Times are medians of `triton.testing.do_bench`; TFLOP/s count 2·M·N·K for "
             "forward and twice that for backward (dx and dw). `fwd / matmul` is tritonsym's fused forward "
             "against cuBLAS's product alone, `bwd / cublas` its backward against cuBLAS's two products and a "
             "column sum (relu's gradient applied beforehand, untimed); the `vs` columns are speed-ups (above 1: "
             "tritonsym is faster). "
             "`fwd vs pointer` is the TMA path's gain over the pointer kernel alone (empty where TMA is not "
             "planned). `fwd rel. error` is ‖y − y₆₄‖/‖y₆₄‖ against a float64 reference.")
    if not ON_GPU:
        notes += " " + INTERPRETER_NOTE
    chart = dict(x="size", series=["ours fwd TFLOP/s", "matmul TFLOP/s", "ours bwd TFLOP/s"], group="precision",
                 ylabel="TFLOP/s")
    table = Table("linear", len(precisions) * len(sizes), notes, chart)
    for name in precisions:
        for size in sizes:
            table.add(one_size(size, name, not args.no_compile))
    print(f"{environment()}\nwrote {table.path}")


if __name__ == "__main__":
    main()
