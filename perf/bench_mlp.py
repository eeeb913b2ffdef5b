"""One whole training step of an MLP (forward, backward, SGD update): tritonsym against PyTorch.

Both run the same network on the same device and data: FullyConnected layers with relu,
softmax cross-entropy, SGD with momentum. tritonsym fuses each relu into its
FullyConnected, runs pre-built launches on its static workspace and updates every
parameter of a dtype in one launch; with ``cuda_graph=True`` the step is one graph
replay (forward, backward and update recorded together, as ``Module.train_step`` runs
it). PyTorch runs ``torch.optim.SGD(foreach=True)``, eager, with the model under
``torch.compile(mode="max-autotune")``, and with the whole step captured as one CUDA graph
(the honest peer of a graphed tritonsym step); ``vs best`` judges against the fastest.
Every row is measured without torch.compile first and its compile column is added after
(max-autotune tunes GEMMs for minutes a network): a run cut short keeps the rows the first
pass finished, with ``vs best`` judged over the peers that were timed.

Besides the step times the script reports, per network:
- ``launches``: kernel launches per tritonsym step; ``host us/launch``: the host time of a
  step without the graph over that count (the Python dispatch cost of one pre-built
  launch); ``graph host us/step``: the host time of a step that replays its graphs; both
  timed one call at a time with the device idle, so that a full launch queue never makes
  a call wait for the device;
- peak device memory of the whole step (parameters, gradients, optimizer state and
  activations: `torch.cuda.max_memory_allocated` from an empty start), tritonsym against
  PyTorch eager, and tritonsym's planned figure (workspace + optimizer state).

Run: python perf/bench_mlp.py [--precisions float32,tf32,bfloat16] [--small-only]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from common import (
    DEVICE,
    ON_GPU,
    Table,
    best_peer,
    compiled,
    environment,
    fill_compile_column,
    graphed_step,
    host_us,
    optimizer_step,
    ratio,
    time_ms,
)

import tritonsym as ts

NETWORKS = [  # (layer sizes, batch)
    ((784, 128, 64, 10), 128),       # the tutorial's MLP: small, launch-bound
    ((784, 2048, 2048, 10), 1024),   # wide: matmul-bound
]
PRECISIONS = {  # name: (dtype, FullyConnected precision, cuBLAS TF32 allowed)
    "float32": (torch.float32, "ieee", False),
    "tf32": (torch.float32, "tf32", True),
    "bfloat16": (torch.bfloat16, "ieee", False),
    "float16": (torch.float16, "ieee", False),
    "float64": (torch.float64, "ieee", False),
}
MIB = 2**20
LR, MOMENTUM = 0.01, 0.9


def build(sizes, precision: str = "ieee"):
    net = ts.sym.Variable("data")
    extra = {} if precision == "ieee" else {"precision": precision}
    for i, n in enumerate(sizes[1:], 1):
        net = ts.sym.FullyConnected(net, num_hidden=n, name=f"fc{i}", **extra)
        if i < len(sizes) - 1:
            net = ts.sym.Activation(net, act_type="relu", name=f"relu{i}")
    return ts.sym.SoftmaxOutput(net, name="out")


def initial_params(sizes, rng):
    params = {}
    for i, (k, n) in enumerate(zip(sizes, sizes[1:]), 1):
        params[f"fc{i}_weight"] = rng.normal(0, 1 / math.sqrt(k), (n, k))
        params[f"fc{i}_bias"] = np.zeros(n)
    return params


def tritonsym_step(sizes, batch, precision, params, data, label, cuda_graph):
    dtype, fc_precision, _ = PRECISIONS[precision]
    ctx = ts.gpu(0) if ON_GPU else ts.cpu()
    net = build(sizes, fc_precision)
    exe = net.simple_bind(ctx, type_dict={"data": dtype}, cuda_graph=cuda_graph,
                          grad_req={n: "write" if n.startswith("fc") else "null" for n in net.list_arguments()},
                          data=(batch, sizes[0]))
    exe.copy_params_from({**params, "data": data, "out_label": label})  # bind only: nothing runs yet
    # No master copies: torch.optim.SGD updates bfloat16 parameters in bfloat16 too.
    updater = ts.optimizer.FlatUpdater(ts.optimizer.SGD(learning_rate=LR, momentum=MOMENTUM, multi_precision=False),
                                       exe)

    def step():  # what Module.train_step runs: one phase, so one graph replay with cuda_graph
        updater.prepare()
        exe.forward_backward(then=updater.launch_all)

    program = exe._program
    launches = (sum(len(s.launches) for s in program.forward_steps + program.backward_steps)
                + len(exe._zero_launches) + sum(len(g.launches) for g in updater.groups))
    state_bytes = sum(t.numel() * t.element_size() for g in updater.groups for t in g.states.values())
    return step, exe, launches, exe.memory.workspace_bytes + state_bytes


def torch_step(sizes, batch, precision, params, data, label):
    dtype = PRECISIONS[precision][0]
    weights = [torch.tensor(params[f"fc{i}_weight"], dtype=dtype, device=DEVICE, requires_grad=True)
               for i in range(1, len(sizes))]
    biases = [torch.tensor(params[f"fc{i}_bias"], dtype=dtype, device=DEVICE, requires_grad=True)
              for i in range(1, len(sizes))]
    x = torch.tensor(data, dtype=dtype, device=DEVICE)
    y = torch.tensor(label, device=DEVICE)
    opt = torch.optim.SGD(weights + biases, lr=LR, momentum=MOMENTUM, foreach=True)

    def loss():
        h = x
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = torch.nn.functional.linear(h, w, b)
            if i < len(weights) - 1:
                h = torch.relu(h)
        return torch.nn.functional.cross_entropy(h, y, reduction="sum")

    return optimizer_step(loss, opt), opt, loss


def peak_bytes(setup_and_run) -> int | None:
    """Peak device memory of ``setup_and_run()`` above what was allocated before it."""
    if not ON_GPU:
        return None
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    keep = setup_and_run()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    del keep
    return peak


def measure(sizes, batch, precision, rng) -> dict:
    """Everything of one row but torch.compile's step (``add_compile`` adds it): tritonsym
    with and without its CUDA graph, torch eager and CUDA-graphed, host times, peak memory."""
    params = initial_params(sizes, rng)
    data, label = rng.normal(size=(batch, sizes[0])), rng.integers(0, sizes[-1], batch)
    torch.backends.cuda.matmul.allow_tf32 = PRECISIONS[precision][2]

    def ours_twice(cuda_graph):
        step, exe, launches, planned = tritonsym_step(sizes, batch, precision, params, data, label, cuda_graph)
        for _ in range(3):  # eager, recorded, replayed
            step()
        return step, exe, launches, planned

    ours_twice(False)  # compile and autotune first: tuning's scratch buffers are not the step's memory
    ours_peak = peak_bytes(lambda: ours_twice(False))
    step_graph, _, launches, planned = ours_twice(ON_GPU)
    step_plain, _, _, _ = ours_twice(False)

    def theirs():
        step, _, _ = torch_step(sizes, batch, precision, params, data, label)
        step()
        step()
        return step

    theirs()  # cuBLAS handles and workspaces are made once per process, outside the step's memory
    theirs_peak = peak_bytes(theirs)
    eager, _, _ = torch_step(sizes, batch, precision, params, data, label)
    _, graph_opt, graph_loss = torch_step(sizes, batch, precision, params, data, label)
    torch_graph = graphed_step(graph_loss, graph_opt)
    t = {"graph": time_ms(step_graph) if ON_GPU else None, "plain": time_ms(step_plain), "eager": time_ms(eager),
         "compile": None, "torch graph": time_ms(torch_graph) if torch_graph else None}
    plain_host, graph_host = host_us(step_plain), host_us(step_graph)
    torch.backends.cuda.matmul.allow_tf32 = False
    return dict(sizes=sizes, batch=batch, precision=precision, params=params, data=data, label=label, t=t,
                launches=launches, planned=planned, plain_host=plain_host, graph_host=graph_host,
                ours_peak=ours_peak, theirs_peak=theirs_peak)


def add_compile(state: dict) -> None:
    """The row's torch.compile(mode="max-autotune") step time: minutes of compiling and
    tuning GEMMs per network on a GPU, so every row's other columns come first."""
    sizes, batch, precision = state["sizes"], state["batch"], state["precision"]
    torch.backends.cuda.matmul.allow_tf32 = PRECISIONS[precision][2]
    _, opt, loss = torch_step(sizes, batch, precision, state["params"], state["data"], state["label"])
    compiled_loss = compiled(loss, True, mode="max-autotune")
    if compiled_loss:
        step = optimizer_step(compiled_loss, opt)
        step()
        state["t"]["compile"] = time_ms(step)
    torch.backends.cuda.matmul.allow_tf32 = False


def row(state: dict) -> dict:
    t, sizes, batch, launches = state["t"], state["sizes"], state["batch"], state["launches"]
    best = t["graph"] if t["graph"] is not None else t["plain"]
    peer, peer_ms = best_peer({k: t[k] for k in ("eager", "compile", "torch graph")})
    flops = 6 * batch * sum(k * n for k, n in zip(sizes, sizes[1:]))
    plain_host, graph_host = state["plain_host"], state["graph_host"]
    ours_peak, theirs_peak = state["ours_peak"], state["theirs_peak"]
    return {
        "network": "-".join(map(str, sizes)), "batch": batch, "precision": state["precision"],
        "ours graph ms": "" if t["graph"] is None else f"{t['graph']:.4f}", "ours no graph ms": f"{t['plain']:.4f}",
        "eager ms": f"{t['eager']:.4f}", "compile ms": "" if t["compile"] is None else f"{t['compile']:.4f}",
        "torch graph ms": "" if t["torch graph"] is None else f"{t['torch graph']:.4f}",
        "vs eager": ratio(best, t["eager"]), "vs compile": ratio(best, t["compile"]),
        "vs torch graph": ratio(best, t["torch graph"]), "vs best": f"{ratio(best, peer_ms)} ({peer})",
        "no graph vs eager": ratio(t["plain"], t["eager"]),
        "ours TFLOP/s": f"{flops / best / 1e9:.2f}", "launches": launches,
        "host us/launch": "" if plain_host is None else f"{plain_host / launches:.1f}",
        "graph host us/step": "" if graph_host is None else f"{graph_host:.1f}",
        "ours peak MiB": "" if ours_peak is None else f"{ours_peak / MIB:.2f}",
        "planned MiB": f"{state['planned'] / MIB:.2f}",
        "eager peak MiB": "" if theirs_peak is None else f"{theirs_peak / MIB:.2f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precisions", default="float32,tf32,bfloat16" if ON_GPU else "float32")
    parser.add_argument("--small-only", action="store_true", help="only the small tutorial MLP (quick on a CPU)")
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    precisions, networks = args.precisions.split(","), NETWORKS[:1] if args.small_only else NETWORKS
    notes = ("One training step: forward, backward and an SGD update with momentum (lr 0.01, 0.9). `vs` "
             "columns are tritonsym's speed-up (with its CUDA graph on a GPU; above 1: faster) over torch eager, "
             "torch.compile(mode='max-autotune') and the torch step captured as one CUDA graph; `vs best` over the "
             "fastest of those (named). TFLOP/s count "
             "6 flops per multiply-add of the layers. `host us/launch`: host time of a step without the graph "
             "over its launches; `graph host us/step`: host time of a step that replays its graph (both the "
             "median of single calls made with the device idle). "
             "Peak MiB: `torch.cuda.max_memory_allocated` over building and running the step "
             "(parameters, gradients, optimizer state, activations); planned: tritonsym's workspace plus "
             "optimizer state as planned at bind.")
    if not ON_GPU:
        notes += " On the CPU tritonsym runs in Triton's interpreter: only GPU rows speak about speed."
    table = Table("mlp-step", len(precisions) * len(networks), notes)
    # Two passes: every row without torch.compile first (seconds each), then compile's
    # column row by row (minutes each), so that a run cut short keeps what the first pass measured.
    states = []
    for precision in precisions:
        for sizes, batch in networks:
            states.append(measure(sizes, batch, precision, rng))
            table.add(row(states[-1]))
    if ON_GPU and not args.no_compile:
        fill_compile_column(table, states, add_compile, row)
    print(f"{environment()}\nwrote {table.path}")


if __name__ == "__main__":
    main()
