"""Softmax forward and backward, and the softmax-output loss, against PyTorch and the copy floor.

Over rows x columns sweeps (float32 and bfloat16), in one run:

- ``softmax fwd``: tritonsym's kernel against ``torch.softmax`` eager and compiled;
- ``softmax bwd``: the gradient from the saved output, against
  ``torch._softmax_backward_data`` eager and compiled (what autograd runs);
- ``loss fwd+bwd``: SoftmaxOutput's step, softmax forward then the loss gradient
  (``softmax - one_hot(label)``) from the saved probabilities, against
  ``cross_entropy(...).backward()`` eager and compiled;
- ``fwd kernel`` / ``bwd kernel``: the single-pass kernel (rows that fit one block) or the
  looped one with the config that ran: columns a step, PERSISTENT for one program per SM
  keeping each row in L2 between its passes (the autotuner's choice on a GPU); or, for
  wide rows too few to fill the GPU, each row split across programs (two launches);
- ``% of copy``: the bytes each of our kernels must move (one read and one write per
  element forward; two reads and a write backward; the loss step 4 passes) over its time,
  as a share of the measured device-to-device copy bandwidth;
- ``host us``: the host time of one call of our launches, made with the device idle. A
  row whose ``ms`` is not well above it timed the launches, not the kernels (the split
  rows take two launches; the first H200 run, before launches were pre-bound, showed
  bfloat16 split rows 4x slower than float32 ones of the same grid); ``ms per launch``:
  a split row's two launches timed one at a time.

Run: python perf/bench_softmax.py [--shapes 4096x1024,...]
"""

from __future__ import annotations

import argparse

import torch
from common import (
    DEVICE,
    ON_GPU,
    Table,
    compiled,
    copy_bandwidth_gbs,
    copy_note,
    environment,
    host_us,
    ratio,
    time_ms,
)
from triton.runtime.autotuner import Autotuner
from tritonsym.ops import softmax as sm
from tritonsym.ops import softmax_output as so
from tritonsym.ops._common import run
from tritonsym.ops.aot import describe_config

# The last three: a few wide rows (rows split across programs).
# 16384x1000: a classifier's rows, a multiple of 8 elements but not of 16 (read 16 bytes at a
# time only because the kernels are told so: ops/_common.py aligned).
SHAPES_GPU = ("4096x128,4096x1024,4096x4096,16384x4096,16384x1000,4096x16384,1024x65536,256x262144,32x131072,"
              "8x262144,1x1048576")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def kernel_choice(launch, rows: int, cols: int) -> str:
    """Which softmax kernel a launch ran, and its config (read right after it ran: an
    autotuner is shared by every launch of its kernel)."""
    splits, chunk = sm.row_split(rows, cols)
    # Rows whose length is a multiple of fewer than 16 elements: what the kernel was told (ops/_common.py aligned)
    align = "" if launch.kwargs.get("ALIGN", 16) == 16 else f" ALIGN {launch.kwargs['ALIGN']}"
    if splits > 1:
        return f"split {splits} x {chunk} cols{align}"
    if isinstance(launch.kernel, Autotuner):
        return "looped " + describe_config(launch.kernel.best_config) + align
    meta = launch.kwargs
    if "BLOCK_R" in meta:
        return f"one pass {meta['BLOCK_R']}x{meta['BLOCK_C']}{align}"
    return f"looped {meta['BLOCK_C']}{' PERSISTENT' if meta['PERSISTENT'] else ''} (untuned){align}"


def one_shape(rows: int, cols: int, name: str, use_compile: bool, copy_gbs: float | None) -> dict:
    dtype = DTYPES[name]
    gen = torch.Generator(device=DEVICE).manual_seed(rows * cols)
    x = (3 * torch.randn(rows, cols, device=DEVICE, generator=gen)).to(dtype)
    dy = torch.randn(rows, cols, device=DEVICE, generator=gen).to(dtype)
    label = torch.randint(0, cols, (rows,), device=DEVICE, generator=gen)
    prob, grad = torch.empty_like(x), torch.empty_like(x)
    forward = sm.plan_softmax_forward(x, prob, stats=sm.split_stats_buffer(x))
    backward = sm.plan_softmax_backward(dy, prob, grad, stats=sm.split_stats_buffer(x, backward=True))
    loss = forward + so.plan_softmax_output_backward(prob, label, grad)
    run(forward)
    run(backward)
    choices = {"fwd kernel": kernel_choice(forward[0], rows, cols),
               "bwd kernel": kernel_choice(backward[0], rows, cols)}
    run(forward)
    error = ((prob.double() - torch.softmax(x.double(), -1)).norm() / torch.softmax(x.double(), -1).norm()).item()

    def torch_fwd():
        return torch.softmax(x, -1)

    def torch_bwd():
        return torch._softmax_backward_data(dy, prob, -1, dtype)

    xr = x.detach().clone().requires_grad_()

    def torch_loss():  # a fresh gradient per call, as a step after zero_grad(set_to_none=True): .backward()
        # would add into xr.grad, one more read and write of it than the step it stands for
        return torch.autograd.grad(torch.nn.functional.cross_entropy(xr, label, reduction="sum"), xr)

    times = {"softmax fwd": time_ms(lambda: run(forward)), "softmax bwd": time_ms(lambda: run(backward)),
             "loss fwd+bwd": time_ms(lambda: run(loss))}
    theirs = {"softmax fwd": (torch_fwd, compiled(torch_fwd, use_compile)),
              "softmax bwd": (torch_bwd, compiled(torch_bwd, use_compile)),
              "loss fwd+bwd": (torch_loss, None)}  # compiling a .backward() call is not a fair single graph
    passes = {"softmax fwd": 2, "softmax bwd": 3, "loss fwd+bwd": 4}
    size = x.element_size() * rows * cols
    row = {"rows": rows, "cols": cols, "dtype": name, **choices, "fwd rel. error": f"{error:.1e}"}
    for what, ms in times.items():
        eager_fn, compiled_fn = theirs[what]
        eager_ms = time_ms(eager_fn)
        compiled_ms = time_ms(compiled_fn) if compiled_fn else None
        row[f"{what} ms"] = f"{ms:.4f}"
        row[f"{what} vs eager"] = ratio(ms, eager_ms)
        row[f"{what} vs compile"] = ratio(ms, compiled_ms)
        row[f"{what} % of copy"] = f"{100 * passes[what] * size / ms / 1e6 / copy_gbs:.0f}" if copy_gbs else ""
    for what, launches in (("softmax fwd", forward), ("softmax bwd", backward), ("loss fwd+bwd", loss)):
        host = host_us(lambda launches=launches: run(launches))
        row[f"{what} host us"] = "" if host is None else f"{host:.1f}"
    # A split row's two launches timed apart: which of them (if either) is slow.
    for what, launches in (("fwd", forward), ("bwd", backward)):
        row[f"{what} ms per launch"] = " + ".join(f"{time_ms(launch):.4f}" for launch in launches) \
            if len(launches) > 1 else ""
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=SHAPES_GPU if ON_GPU else "7x33,5x700,2x70000")
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    copy_gbs = copy_bandwidth_gbs()
    dtypes, shapes = args.dtypes.split(","), [tuple(map(int, s.split("x"))) for s in args.shapes.split(",")]
    notes = copy_note(copy_gbs)
    notes += ("`vs` columns are speed-ups of tritonsym (above 1: faster). The loss step is SoftmaxOutput's "
              "forward and backward (its gradient of the summed cross-entropy), against "
              "`cross_entropy(x, label, reduction='sum').backward()`. `host us`: host time of one call of our "
              "launches with the device idle; where `ms` is not well above it, the row timed the launches. "
              "`ms per launch`: a split row's two launches timed one at a time.")
    chart = dict(x="elements", series=["softmax fwd % of copy", "softmax bwd % of copy", "loss fwd+bwd % of copy"],
                 group="dtype", ylabel="% of copy bandwidth")
    table = Table("softmax", len(dtypes) * len(shapes), notes, chart)
    for name in dtypes:
        for r, c in shapes:
            table.add({**one_shape(r, c, name, not args.no_compile, copy_gbs), "elements": r * c})
    print(f"{environment()}\nwrote {table.path}")


if __name__ == "__main__":
    main()
