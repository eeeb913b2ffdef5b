"""One whole training step of the decoder-only transformer (tritonsym.models.transformer):
tritonsym against the same model in PyTorch.

Both run the same network from the same initial weights on the same tokens: token and
learned position embeddings (or rotary ones, ``--positions rotary``), pre-norm blocks of
causal multi-head attention and a GELU MLP, a final LayerNorm and the vocabulary head, the
mean cross-entropy over every position, and Adam (no master copies on either side: torch's
Adam updates bfloat16 weights in bfloat16). tritonsym's step is one CUDA graph replay
(forward, backward and update recorded together, as ``Module.train_step`` runs it);
PyTorch's is timed eager, under ``torch.compile(mode="max-autotune")``, and captured whole
as a CUDA graph (forward, backward and a capturable Adam), the honest peer of a graphed
step. Peak device memory is each side's step from an empty start. Every row is measured
without torch.compile first and its compile column added after (minutes of tuning a row), so
a run cut short keeps the rows of the first pass.

Targets (issue 29): >= 1.5x a torch eager step, >= 1.0x the compiled and the CUDA-graphed
torch steps, peak memory <= torch's.

Run: python perf/bench_transformer.py [--dtypes bfloat16] [--shapes 8x1024] [--width 512]
     [--layers 4] [--kv-heads 2] [--norm rms] [--mlp swiglu] [--positions rotary] [--tie-embeddings]
     [--window 256] [--no-compile]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from bench_mlp import peak_bytes
from common import (
    ON_GPU,
    Table,
    best_peer,
    compiled,
    environment,
    fill_compile_column,
    graphed_step,
    optimizer_step,
    ratio,
    time_ms,
)

import tritonsym as ts
from tritonsym.models import transformer

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
LR = 1e-3
MIB = 2**20


def initial_params(net, batch: int, seq: int, rng) -> dict[str, np.ndarray]:
    """GPT-2's initialisation: normal(0, 0.02) weights and embeddings, zero biases, unit gains."""
    shapes = dict(zip(net.list_arguments(), net.infer_shape(data=(batch, seq))[0]))
    params = {}
    for name, shape in shapes.items():
        if name in ("data", "softmax_label"):
            continue
        if name.endswith("_gamma"):
            params[name] = np.ones(shape)
        elif name.endswith(("_bias", "_beta")):
            params[name] = np.zeros(shape)
        else:
            params[name] = rng.normal(0.0, 0.02, shape)
    return params


def ours(cfg, batch, seq, dtype, params, tokens, labels, cuda_graph: bool):
    ctx = ts.gpu(0) if ON_GPU else ts.cpu()
    net = transformer.decoder(seq, cfg)
    exe = net.simple_bind(ctx, type_dict={"data": torch.int32}, cuda_graph=cuda_graph,
                          grad_req={n: "null" if n in ("data", "softmax_label") else "write"
                                    for n in net.list_arguments()}, data=(batch, seq), softmax_label=(batch, seq))
    exe.copy_params_from({**params, "data": tokens, "softmax_label": labels})
    updater = ts.optimizer.FlatUpdater(ts.optimizer.Adam(learning_rate=LR, multi_precision=False), exe)

    def step():  # what Module.train_step runs: one phase, so one graph replay with cuda_graph
        updater.prepare()
        exe.forward_backward(then=updater.launch_all)

    return step


def torch_norm(cfg, P, x, name):
    """LayerNorm or RMSNorm over the width, with ``name``'s parameters."""
    if cfg.norm == "rms":
        return F.rms_norm(x, (cfg.width,), P[f"{name}_gamma"], 1e-5)
    return F.layer_norm(x, (cfg.width,), P[f"{name}_gamma"], P[f"{name}_beta"], 1e-5)


def torch_mlp(cfg, P, h, block: str):
    up = F.linear(h, P[f"{block}_mlp_fc1_weight"], P[f"{block}_mlp_fc1_bias"])
    if cfg.mlp == "swiglu":
        h = F.silu(F.linear(h, P[f"{block}_mlp_gate_weight"], P[f"{block}_mlp_gate_bias"])) * up
    else:
        h = F.gelu(up)
    return F.linear(h, P[f"{block}_mlp_fc2_weight"], P[f"{block}_mlp_fc2_bias"])


def torch_heads(cfg, P, h, block: str, batch: int, seq: int):
    """Query, key and value (batch, heads, seq, head_dim) of ``block``'s attention."""
    return (F.linear(h, P[f"{block}_att_{n}_weight"], P[f"{block}_att_{n}_bias"]).view(batch, seq, count, -1)
            .transpose(1, 2) for n, count in (("query", cfg.heads), ("key", cfg.key_heads), ("value", cfg.key_heads)))


def torch_logits(cfg, P, x):
    x = torch_norm(cfg, P, x, "final_norm")
    return F.linear(x, P["token_embed_weight" if cfg.tie_embeddings else "lm_head_weight"], P["lm_head_bias"])


def rope_table(cfg, length: int, like: torch.Tensor):
    """Hugging Face's cos/sin table of ``length`` positions (made once, as it caches it), in
    ``like``'s dtype and device, and its ``rotate_half`` rotation."""
    head_dim = cfg.width // cfg.heads
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles = torch.outer(torch.arange(length, dtype=torch.float64), inv_freq).repeat(1, 2)
    cos, sin = (t.to(dtype=like.dtype, device=like.device) for t in (angles.cos(), angles.sin()))

    def rotate(t, cos=cos, sin=sin):
        half = head_dim // 2
        return t * cos + torch.cat((-t[..., half:], t[..., :half]), dim=-1) * sin
    return cos, sin, rotate


def torch_loss(cfg, batch, seq, P, tokens, labels):
    """The same network, functionally, over the parameter dict ``P`` (tritonsym's names)."""
    rope = rope_table(cfg, seq, P["token_embed_weight"])[2] if cfg.positions == "rotary" else (lambda t: t)
    window_mask = None  # a sliding window: torch's attention has no argument for it, so a boolean mask
    if cfg.window:
        i, j = torch.arange(seq)[:, None], torch.arange(seq)[None, :]
        window_mask = ((j <= i) & (j > i - cfg.window)).to(P["token_embed_weight"].device)

    def loss():
        x = F.embedding(tokens, P["token_embed_weight"])
        if cfg.positions == "learned":
            x = x + P["position_weight"][:, :seq]
        for k in range(cfg.layers):
            b = f"block{k}"
            q, key, v = torch_heads(cfg, P, torch_norm(cfg, P, x, f"{b}_norm1"), b, batch, seq)
            a = F.scaled_dot_product_attention(rope(q), rope(key), v, is_causal=window_mask is None,
                                               attn_mask=window_mask, enable_gqa=cfg.key_heads != cfg.heads)
            a = a.transpose(1, 2).reshape(batch, seq, -1)
            x = x + F.linear(a, P[f"{b}_att_proj_weight"], P[f"{b}_att_proj_bias"])
            x = x + torch_mlp(cfg, P, torch_norm(cfg, P, x, f"{b}_norm2"), b)
        logits = torch_logits(cfg, P, x)
        if logits.dtype in (torch.float16, torch.bfloat16):  # the loss in float32, as mixed-precision training does
            logits = logits.float()
        return F.cross_entropy(logits.reshape(-1, cfg.vocab), labels.reshape(-1))
    return loss


def theirs(cfg, batch, seq, dtype, params, tokens, labels, capturable: bool = False):
    device = "cuda" if ON_GPU else "cpu"
    P = {n: torch.tensor(v, dtype=dtype, device=device, requires_grad=True) for n, v in params.items()}
    t = torch.tensor(tokens, dtype=torch.int64, device=device)
    y = torch.tensor(labels, dtype=torch.int64, device=device)
    opt = torch.optim.Adam(list(P.values()), lr=LR, foreach=True, capturable=capturable)
    return torch_loss(cfg, batch, seq, P, t, y), opt


def measure(name, batch, seq, cfg, rng) -> dict:
    """Everything of one row but torch.compile's step (``add_compile`` adds it)."""
    dtype = DTYPES[name]
    net = transformer.decoder(seq, cfg)
    params = initial_params(net, batch, seq, rng)
    tokens = rng.integers(0, cfg.vocab, (batch, seq)).astype(np.int32)
    labels = rng.integers(0, cfg.vocab, (batch, seq)).astype(np.float32)

    def ours_ready(cuda_graph):
        step = ours(cfg, batch, seq, dtype, params, tokens, labels, cuda_graph)
        for _ in range(3):  # eager, recorded, replayed
            step()
        return step

    ours_ready(False)  # compile and autotune first: tuning's scratch buffers are not the step's memory
    ours_peak = peak_bytes(lambda: ours_ready(False))
    step = ours_ready(ON_GPU)

    def eager_ready():
        s = optimizer_step(*theirs(cfg, batch, seq, dtype, params, tokens, labels))
        s()
        s()
        return s

    eager_ready()  # cuBLAS handles and workspaces are made once per process, outside the step's memory
    eager_peak = peak_bytes(eager_ready)
    eager = eager_ready()
    graph_step = graphed_step(*theirs(cfg, batch, seq, dtype, params, tokens, labels, capturable=True))
    t = {"ours": time_ms(step), "eager": time_ms(eager), "compile": None,
         "graph": time_ms(graph_step) if graph_step else None}
    return dict(name=name, batch=batch, seq=seq, cfg=cfg, params=params, tokens=tokens, labels=labels, t=t,
                ours_peak=ours_peak, eager_peak=eager_peak)


def add_compile(state: dict) -> None:
    """The row's torch.compile(mode="max-autotune") step: minutes of tuning on a GPU, so
    every row's other columns come first."""
    loss, opt = theirs(state["cfg"], state["batch"], state["seq"], DTYPES[state["name"]], state["params"],
                       state["tokens"], state["labels"])
    compiled_loss = compiled(loss, True, mode="max-autotune")
    if compiled_loss:
        state["t"]["compile"] = time_ms(optimizer_step(compiled_loss, opt))


def model_arguments(doc: str, shapes: str, shapes_help: str) -> argparse.Namespace:
    """The command line of a benchmark of this model (shared with perf/bench_decode.py): the
    dtypes, the shapes (``shapes`` by default) and the model's flags (``model_config``)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--dtypes", default="bfloat16" if ON_GPU else "float32")
    parser.add_argument("--shapes", default=shapes, help=shapes_help)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (minutes of autotuning)")
    parser.add_argument("--width", type=int, default=512 if ON_GPU else 32)
    parser.add_argument("--heads", type=int, default=8 if ON_GPU else 2)
    parser.add_argument("--kv-heads", type=int, help="key and value heads (grouped-query attention; default: heads)")
    parser.add_argument("--norm", choices=("layer", "rms"), default="layer", help="LayerNorm or RMSNorm")
    parser.add_argument("--mlp", choices=("gelu", "swiglu"), default="gelu", help="GELU or SwiGLU feed-forward")
    parser.add_argument("--positions", choices=("learned", "rotary"), default="learned",
                        help="a learned position table or rotary embedding (RoPE)")
    parser.add_argument("--tie-embeddings", action="store_true", help="the head reads the token table (GPT-2's)")
    parser.add_argument("--window", type=int, help="a sliding window of N keys (Mistral's); torch's twin masks")
    parser.add_argument("--layers", type=int, default=4 if ON_GPU else 1)
    parser.add_argument("--vocab", type=int, default=4096 if ON_GPU else 11)
    return parser.parse_args()


def model_config(args, seq: int, dtype: str) -> transformer.Config:
    return transformer.Config(vocab=args.vocab, max_len=seq, width=args.width, heads=args.heads, layers=args.layers,
                              dtype=dtype, kv_heads=args.kv_heads, norm=args.norm, mlp=args.mlp,
                              positions=args.positions, tie_embeddings=args.tie_embeddings, window=args.window)


def model_name(cfg: transformer.Config) -> str:
    """The table's short description of a model: layers x width, heads, what differs from GPT's."""
    return (f"{cfg.layers}x{cfg.width} h{cfg.heads}{f' kv{cfg.kv_heads}' if cfg.kv_heads else ''} "
            f"v{cfg.vocab}{' rms' if cfg.norm == 'rms' else ''}{' swiglu' if cfg.mlp == 'swiglu' else ''}"
            f"{' rope' if cfg.positions == 'rotary' else ''}{' tied' if cfg.tie_embeddings else ''}"
            f"{f' window {cfg.window}' if cfg.window else ''}")


def row(state: dict) -> dict:
    t, cfg, batch, seq = state["t"], state["cfg"], state["batch"], state["seq"]
    ours_peak, eager_peak = state["ours_peak"], state["eager_peak"]
    tokens_per_s = batch * seq / t["ours"] * 1e3
    return {"dtype": state["name"], "batch x seq": f"{batch}x{seq}", "model": model_name(cfg),
            "ours ms": f"{t['ours']:.3f}", "eager ms": f"{t['eager']:.3f}",
            "compile ms": "" if t["compile"] is None else f"{t['compile']:.3f}",
            "torch graph ms": "" if t["graph"] is None else f"{t['graph']:.3f}",
            "vs eager": ratio(t["ours"], t["eager"]), "vs compile": ratio(t["ours"], t["compile"]),
            "vs torch graph": ratio(t["ours"], t["graph"]),
            "vs best": ratio(t["ours"], best_peer({k: v for k, v in t.items() if k != "ours"})[1]),
            "tokens/s": f"{tokens_per_s:.0f}",
            "ours peak MiB": "" if ours_peak is None else f"{ours_peak / MIB:.1f}",
            "eager peak MiB": "" if eager_peak is None else f"{eager_peak / MIB:.1f}"}


def main() -> None:
    args = model_arguments(__doc__, "8x1024,32x256" if ON_GPU else "4x16", "batch x seq, comma-separated")
    notes = ("`vs` columns are tritonsym's speed-up (its step replayed as one CUDA graph on a GPU; above 1: faster) "
             "over PyTorch eager, torch.compile(mode='max-autotune') and the torch step captured as a CUDA graph; "
             "`vs best` against the fastest of them. "
             "Peak MiB: torch.cuda.max_memory_allocated over each side's step from an empty start (parameters, "
             "gradients, Adam's state, activations). " + ("" if ON_GPU else "CPU rows run Triton's interpreter: "
                                                          "they check the script, not speed."))
    model_rows("transformer-step", args, notes, measure, add_compile, row)


def model_rows(table_name: str, args, notes: str, measure, add_compile, row) -> None:
    """A row per dtype x shape of ``args`` (``measure(dtype, batch, length, cfg, rng)``), each
    written as it comes; then, on a GPU, torch.compile's column row by row (minutes each),
    so a run cut short keeps every row of the first pass."""
    names = [d for d in args.dtypes.split(",") if d]
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",") if s]
    rng = np.random.default_rng(0)
    table = Table(table_name, len(names) * len(shapes), notes)
    states = []
    for name in names:
        for batch, length in shapes:
            states.append(measure(name, batch, length, model_config(args, length, name), rng))
            table.add(row(states[-1]))
    if ON_GPU and not args.no_compile:
        fill_compile_column(table, states, add_compile, row)
    print(f"{environment()}\nwrote {table.path}")

if __name__ == "__main__":
    main()
