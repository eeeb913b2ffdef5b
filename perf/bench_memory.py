"""Memory of a bound training step and of an inference bind: naive, planned, lower bound.

For each network: ``naive`` (every internal value of the unfused forward+backward graph
in its own buffer, MXNet's baseline), what each offset heuristic alone plans (MXNet's
allocator, greedy by size), the planner's result (``auto``), the lower bound (the most
bytes live at one step), and the plan with ``mirror=True``. Internal values only:
parameters, inputs and their gradients are the same under every plan and are counted in
``workspace`` alone. Binding plans memory without running a kernel, so these figures are
the same on every device.

Mirror's cost is measured by timing one training step with and without it (on a GPU the
real networks; on the CPU, where kernels run in Triton's interpreter, a small gated
network, and the ratio of interpreted launches says little about GPU time). On a GPU the
script also measures the peak device memory of the same step in PyTorch eager.

Run: python perf/bench_memory.py
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from bench_mlp import build as mlp  # FullyConnected + relu layers, SoftmaxOutput named out
from common import device_tag, environment, time_ms, write

import tritonsym as ts

S = ts.sym
MIB = 2**20


def gated(width, blocks, classes=10):
    """Gated blocks x <- tanh(W1 x) * sigmoid(W2 x) * 0.5 + tanh(W1 x): arithmetic, and
    inputs shared by several operators (x by two FCs, tanh's output by two products)."""
    x = S.Variable("data")
    for i in range(blocks):
        h = S.Activation(S.FullyConnected(x, num_hidden=width, name=f"h{i}"), act_type="tanh", name=f"tanh{i}")
        g = S.Activation(S.FullyConnected(x, num_hidden=width, name=f"g{i}"), act_type="sigmoid", name=f"sig{i}")
        x = h * g * 0.5 + h
    return S.SoftmaxOutput(S.FullyConnected(x, num_hidden=classes, name="cls"), name="out")


NETWORKS = [  # (name, symbol, batch, input features)
    ("mlp 784-128-64-10 b64", lambda: mlp([784, 128, 64, 10]), 64, 784),
    ("mlp 784-1024-1024-10 b256", lambda: mlp([784, 1024, 1024, 10]), 256, 784),
    ("mlp 1024-4096-1024-4096-10 b512", lambda: mlp([1024, 4096, 1024, 4096, 10]), 512, 1024),
    ("gated 512x4 blocks b256", lambda: gated(512, 4), 256, 512),
]
MIRROR_TIMED = ("gated 64x4 blocks b32", lambda: gated(64, 4), 32, 64)  # CPU: interpreted kernels are slow


def context():
    return ts.gpu(0) if torch.cuda.is_available() else ts.cpu()


def memory(net, batch, features, **options):
    return net.simple_bind(context(), data=(batch, features), **options).memory


def torch_peak_bytes(net_name, make, batch, features):
    """Peak device memory of one PyTorch eager training step of the same network, above
    what was allocated before it (the parameters, their gradients and the inputs stay)."""
    if not torch.cuda.is_available():
        return None
    exe = make().simple_bind(ts.gpu(0), data=(batch, features))
    params = {n: torch.randn_like(a, requires_grad=True) * 0.01 for n, a in exe.arg_dict.items()
              if n not in ("data", "out_label")}
    params = {n: p.detach().requires_grad_() for n, p in params.items()}
    data = torch.randn(batch, features, device="cuda")
    label = torch.randint(0, 10, (batch,), device="cuda")
    del exe

    def step():
        x = data
        if net_name.startswith("gated"):
            for i in range(4):
                h = torch.tanh(torch.nn.functional.linear(x, params[f"h{i}_weight"], params[f"h{i}_bias"]))
                g = torch.sigmoid(torch.nn.functional.linear(x, params[f"g{i}_weight"], params[f"g{i}_bias"]))
                x = h * g * 0.5 + h
            logits = torch.nn.functional.linear(x, params["cls_weight"], params["cls_bias"])
        else:
            layers = sorted({n.split("_")[0] for n in params}, key=lambda n: int(n[2:]))
            for name in layers[:-1]:
                x = torch.relu(torch.nn.functional.linear(x, params[f"{name}_weight"], params[f"{name}_bias"]))
            logits = torch.nn.functional.linear(x, params[f"{layers[-1]}_weight"], params[f"{layers[-1]}_bias"])
        torch.nn.functional.cross_entropy(logits, label, reduction="sum").backward()

    step()  # gradients now exist, as in the tritonsym step where they live in the workspace
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def mirror_overhead(make, batch, features):
    """(step ms without mirror, with mirror, extra launches per step)."""
    times, launches = [], []
    for mirror in (False, True):
        net = make()
        exe = net.simple_bind(context(), mirror=mirror, data=(batch, features))
        rng = np.random.default_rng(0)
        exe.copy_params_from({n: rng.normal(scale=0.1, size=a.shape) for n, a in exe.arg_dict.items()
                              if n not in ("data", "out_label")})
        exe.forward(data=rng.normal(size=(batch, features)), out_label=rng.integers(0, 10, batch))

        def step():
            exe.forward(is_train=True)
            exe.backward()

        times.append(time_ms(step, repeats=3))
        program = exe._program
        launches.append(sum(len(s.launches) for s in program.forward_steps + program.backward_steps))
    return times[0], times[1], launches[1] - launches[0]


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help, not a run
    rows = []
    for name, make, batch, features in NETWORKS:
        net = make()
        for mode in ("training", "inference"):
            req = "write" if mode == "training" else "null"
            auto = memory(net, batch, features, grad_req=req)
            mxnet = memory(net, batch, features, grad_req=req, memory_plan="mxnet")
            greedy = memory(net, batch, features, grad_req=req, memory_plan="greedy")
            mirror = memory(net, batch, features, grad_req=req, mirror=True) if mode == "training" else None
            peak = torch_peak_bytes(name, make, batch, features) if mode == "training" else None
            rows.append({
                "network": name, "bind": mode,
                "naive MiB": round(auto.naive_bytes / MIB, 3),
                "mxnet alone MiB": round(mxnet.planned_bytes / MIB, 3),
                "greedy alone MiB": round(greedy.planned_bytes / MIB, 3),
                "planned MiB": round(auto.planned_bytes / MIB, 3),
                "lower bound MiB": round(auto.lower_bound_bytes / MIB, 3),
                "planned / bound": round(auto.planned_bytes / auto.lower_bound_bytes, 4),
                "naive / planned": round(auto.naive_bytes / auto.planned_bytes, 2),
                "mirror MiB": round(mirror.planned_bytes / MIB, 3) if mirror else "",
                "mirror bound MiB": round(mirror.lower_bound_bytes / MIB, 3) if mirror else "",
                "workspace MiB": round(auto.workspace_bytes / MIB, 3),
                "torch eager step peak MiB": round(peak / MIB, 3) if peak is not None else
                ("" if mode == "inference" else "n/a (no GPU)"),
                "algorithm": auto.algorithm,
            })
            print(rows[-1])
    timed = NETWORKS if torch.cuda.is_available() else [MIRROR_TIMED]
    overhead = []
    for name, make, batch, features in timed:
        plain, mirrored, extra = mirror_overhead(make, batch, features)
        overhead.append(f"- {name}: step {plain:.3f} ms without mirror, {mirrored:.3f} ms with it "
                        f"({mirrored / plain:.2f}x), {extra} more launches per step")
        print(overhead[-1])
    device_note = ("" if torch.cuda.is_available() else
                   " (CPU, Triton interpreter: these times count interpreted launches, not GPU speed)")
    notes = ("naive: every internal value of the unfused forward+backward graph in its own buffer. "
             "planned: `memory_plan='auto'`. mxnet/greedy alone: one offset heuristic without the others or "
             "the searches. lower bound: the most bytes live at one step, least over the schedules the executor "
             "could run (this one and the unfused graph's; planned / bound above 1 on the MLPs is the bias "
             "partials of the grad epilogues). mirror: "
             "`mirror=True`, with its own bound (a different schedule). Internal values only; workspace is "
             "the whole allocation (parameters, gradients, inputs too). torch eager step peak: "
             "`torch.cuda.max_memory_allocated` during one training step above what was allocated before it.\n\n"
             f"Mirror overhead{device_note}:\n" + "\n".join(overhead))
    path = write("memory", rows, notes)
    print(f"wrote {path} ({environment()}; {device_tag()})")


if __name__ == "__main__":
    main()
