"""Activation kernels, forward and backward, against PyTorch eager and the copy floor.

Each activation over a large tensor (float32 and bfloat16): tritonsym's forward (one read,
one write) and its backward from the saved output or input (two reads, one write),
against the same functions in PyTorch eager, and as a share of the measured
device-to-device copy bandwidth.

Run: python perf/bench_activation.py [--elements N]
"""

from __future__ import annotations

import argparse

import torch
from common import DEVICE, ON_GPU, Table, copy_bandwidth_gbs, copy_note, environment, ratio, time_ms
from tritonsym.ops import activation as act
from tritonsym.ops._common import run

TORCH = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
         "softrelu": torch.nn.functional.softplus, "gelu": torch.nn.functional.gelu}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def one(kind: str, name: str, elements: int, copy_gbs: float | None) -> dict:
    dtype = DTYPES[name]
    gen = torch.Generator(device=DEVICE).manual_seed(elements)
    x = (3 * torch.randn(elements, device=DEVICE, generator=gen)).to(dtype)
    dy = torch.randn(elements, device=DEVICE, generator=gen).to(dtype)
    y, dx = torch.empty_like(x), torch.empty_like(x)
    forward = act.plan_activation_forward(x, y, kind)
    from_output = act.grad_from_output(kind, 0.0)
    backward = act.plan_activation_backward(dy, y if from_output else x, dx, kind, from_output=from_output)
    xr = x.detach().clone().requires_grad_()
    yr = TORCH[kind](xr)
    fwd, bwd = time_ms(lambda: run(forward)), time_ms(lambda: run(backward))
    eager_fwd = time_ms(lambda: TORCH[kind](x))
    eager_bwd = time_ms(lambda: torch.autograd.grad(yr, xr, dy, retain_graph=True))
    size = x.element_size() * elements
    share = (lambda passes, ms: f"{100 * passes * size / ms / 1e6 / copy_gbs:.0f}") if copy_gbs else (lambda *a: "")
    return {"activation": kind, "dtype": name, "elements": elements, "fwd ms": f"{fwd:.4f}",
            "fwd vs eager": ratio(fwd, eager_fwd), "fwd % of copy": share(2, fwd), "bwd ms": f"{bwd:.4f}",
            "bwd vs eager": ratio(bwd, eager_bwd), "bwd % of copy": share(3, bwd),
            "bwd from": "output" if from_output else "input"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--elements", type=int, default=1 << 28 if ON_GPU else 3000)
    args = parser.parse_args()
    copy_gbs = copy_bandwidth_gbs()
    notes = copy_note(copy_gbs)
    notes += "`vs eager` is tritonsym's speed-up over PyTorch eager (backward: autograd of the same function)."
    table = Table("activation", len(DTYPES) * len(TORCH), notes)
    for name in DTYPES:
        for kind in TORCH:
            table.add(one(kind, name, args.elements, copy_gbs))
    print(f"{environment()}\nwrote {table.path}")


if __name__ == "__main__":
    main()
