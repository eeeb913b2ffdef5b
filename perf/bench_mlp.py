"""One training step (forward + backward) of an MLP: tritonsym against PyTorch eager.

Both run the same network on the same device and data: FullyConnected layers with relu,
softmax cross-entropy; tritonsym fuses each relu into its FullyConnected and runs
pre-built launches on its static workspace. The optimizer update is not included yet
(the training API adds it). Run: python perf/bench_mlp.py [--dtype float32]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from common import environment, time_ms, write

import tritonsym as ts

NETWORKS = [  # (layer sizes, batch)
    ((784, 128, 64, 10), 128),       # the seed's MLP: small, launch-bound
    ((784, 2048, 2048, 10), 1024),   # wide: matmul-bound
]


def build(sizes):
    net = ts.sym.Variable("data")
    for i, n in enumerate(sizes[1:], 1):
        net = ts.sym.FullyConnected(net, num_hidden=n, name=f"fc{i}")
        if i < len(sizes) - 1:
            net = ts.sym.Activation(net, act_type="relu", name=f"relu{i}")
    return ts.sym.SoftmaxOutput(net, name="out")


def tritonsym_step(sizes, batch, dtype, device, rng):
    ctx = ts.gpu(0) if device.type == "cuda" else ts.cpu()
    net = build(sizes)
    exe = net.simple_bind(ctx, type_dict={"data": dtype}, grad_req={n: "write" for n in net.list_arguments()
                                                                   if n.startswith("fc")}, data=(batch, sizes[0]))
    params = {}
    for i, (k, n) in enumerate(zip(sizes, sizes[1:]), 1):
        params[f"fc{i}_weight"] = rng.normal(0, 1 / math.sqrt(k), (n, k))
        params[f"fc{i}_bias"] = np.zeros(n)
    exe.copy_params_from(params)
    exe.forward(data=rng.normal(size=(batch, sizes[0])), out_label=rng.integers(0, sizes[-1], batch))

    def step():
        exe.forward(is_train=True)
        exe.backward()

    return step, params


def torch_step(sizes, batch, dtype, device, params, rng):
    weights = [torch.tensor(params[f"fc{i}_weight"], dtype=dtype, device=device, requires_grad=True)
               for i in range(1, len(sizes))]
    biases = [torch.tensor(params[f"fc{i}_bias"], dtype=dtype, device=device, requires_grad=True)
              for i in range(1, len(sizes))]
    x = torch.tensor(rng.normal(size=(batch, sizes[0])), dtype=dtype, device=device)
    y = torch.tensor(rng.integers(0, sizes[-1], batch), device=device)

    def step():
        h = x
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = torch.nn.functional.linear(h, w, b)
            if i < len(weights) - 1:
                h = torch.relu(h)
        torch.nn.functional.cross_entropy(h, y, reduction="sum").backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16", "float64"])
    parser.add_argument("--small-only", action="store_true", help="only the seed's MLP (quick on a CPU)")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rng = np.random.default_rng(0)
    rows = []
    for sizes, batch in NETWORKS[:1] if args.small_only else NETWORKS:
        ours, params = tritonsym_step(sizes, batch, dtype, device, rng)
        theirs = torch_step(sizes, batch, dtype, device, params, rng)
        t_ours, t_theirs = time_ms(ours), time_ms(theirs)
        flops = 6 * batch * sum(k * n for k, n in zip(sizes, sizes[1:]))  # forward 2, backward 4 per MAC
        rows.append({"network": "-".join(map(str, sizes)), "batch": batch, "dtype": args.dtype,
                     "tritonsym ms": f"{t_ours:.3f}", "torch eager ms": f"{t_theirs:.3f}",
                     "speed-up vs eager": f"{t_theirs / t_ours:.2f}x",
                     "tritonsym TFLOP/s": f"{flops / t_ours / 1e9:.3f}"})
        print(rows[-1], flush=True)
    notes = ("Forward + backward of one training step, no optimizer update. "
             + ("On the CPU tritonsym runs in Triton's interpreter (a correctness tool, not a fast path), "
                "so only GPU rows speak about speed." if device.type == "cpu" else ""))
    print(f"{environment()}\nwrote {write(f'mlp-step-{args.dtype}', rows, notes)}")


if __name__ == "__main__":
    main()
