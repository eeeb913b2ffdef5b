"""Writing text one token at a time with key and value caches: tritonsym's decoding step
(``transformer.decoder_step``) against the same model in PyTorch with a static cache.

Each row: ``batch`` texts whose caches hold ``context - 1`` tokens, one step reading the
next token of each (every layer's key and value written into its cache, attention over
``context`` keys, the next token's distribution). tritonsym's step is one CUDA graph replay
(``cuda_graph=True``; the position is an input in device memory, so the graph serves every
place in a text). PyTorch's is the same model with a static cache written in place
(indexed assignment) and a mask made from the positions on the device, as served decoding
does it: timed eager, captured as a CUDA graph (the honest peer of a graphed step) and
under ``torch.compile(mode="max-autotune")``. Both sides start from the same weights and
caches and their next-token distributions are compared before anything is timed (the
``max |dp|`` column).

Run: python perf/bench_decode.py [--dtypes bfloat16,float16] [--shapes 1x1024,32x4096] [--width 1024]
     [--layers 8] [--kv-heads 2] [--norm rms] [--mlp swiglu] [--positions rotary] [--window 1024] [--no-compile]
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from bench_transformer import (
    DTYPES,
    initial_params,
    model_arguments,
    model_name,
    model_rows,
    rope_table,
    torch_heads,
    torch_logits,
    torch_mlp,
    torch_norm,
)
from common import DEVICE, ON_GPU, best_peer, compiled, graphed, ratio, time_ms

import tritonsym as ts
from tritonsym.models import transformer


def ours(cfg, batch: int, params: dict, caches: dict, tokens: np.ndarray, position: int):
    """tritonsym's step, bound once with its parameters, caches, token and position in place."""
    net = transformer.decoder_step(cfg, batch)
    exe = net.simple_bind(ts.gpu(0) if ON_GPU else ts.cpu(), grad_req="null", cuda_graph=ON_GPU,
                          data=(batch, 1), position=(batch,))
    exe.copy_params_from({**params, "data": tokens[:, None].astype(np.float32),
                          "position": np.full(batch, position, np.float32)}, caches)

    def step():
        exe.forward(is_train=False)
    return step, exe.outputs[0]


def torch_step(cfg, P: dict, caches: dict, token: torch.Tensor, position: torch.Tensor):
    """The same step in PyTorch: ``token`` (batch,) and ``position`` (batch,) device tensors,
    ``caches`` {name: (batch, kv_heads, cache_len, head_dim)} written in place. Returns the
    function that computes the next token's distribution into a fixed output."""
    batch, cache_len = token.shape[0], transformer.cache_length(cfg)
    rows = torch.arange(batch, device=token.device)
    if cfg.positions == "rotary":
        cos, sin, _ = rope_table(cfg, cfg.max_len, P["token_embed_weight"])

    def rope(t):  # (batch, heads, 1, head_dim) at each row's position
        if cfg.positions != "rotary":
            return t
        half = t.shape[-1] // 2
        c, s = cos[position][:, None, None], sin[position][:, None, None]
        return t * c + torch.cat((-t[..., half:], t[..., :half]), dim=-1) * s

    def step():
        slot = position % cache_len
        seen = torch.arange(cache_len, device=token.device)[None, :] < torch.clamp(position + 1, max=cache_len)[:, None]
        mask = seen[:, None, None, :]  # (batch, 1, 1, cache_len): the slots written so far
        x = F.embedding(token[:, None], P["token_embed_weight"])
        if cfg.positions == "learned":
            x = x + P["position_weight"][0, position][:, None]
        for k in range(cfg.layers):
            b = f"block{k}"
            q, key, v = torch_heads(cfg, P, torch_norm(cfg, P, x, f"{b}_norm1"), b, batch, 1)
            key_cache, value_cache = caches[f"{b}_att_key_cache"], caches[f"{b}_att_value_cache"]
            key_cache[rows, :, slot] = rope(key)[:, :, 0]
            value_cache[rows, :, slot] = v[:, :, 0]
            a = F.scaled_dot_product_attention(rope(q), key_cache, value_cache, attn_mask=mask,
                                               enable_gqa=cfg.key_heads != cfg.heads)
            x = x + F.linear(a.transpose(1, 2).reshape(batch, 1, -1), P[f"{b}_att_proj_weight"],
                             P[f"{b}_att_proj_bias"])
            x = x + torch_mlp(cfg, P, torch_norm(cfg, P, x, f"{b}_norm2"), b)
        return torch.softmax(torch_logits(cfg, P, x).float(), dim=-1)[:, 0]
    return step


def measure(name: str, batch: int, context: int, cfg, rng) -> dict:
    """Everything of one row but torch.compile's step (``add_compile`` adds it)."""
    dtype = DTYPES[name]
    params = initial_params(transformer.decoder(2, cfg), batch, 2, rng)
    cache_shape = (batch, cfg.key_heads, transformer.cache_length(cfg), cfg.width // cfg.heads)
    caches = {f"block{k}_att_{p}_cache": rng.normal(0.0, 1.0, cache_shape) for k in range(cfg.layers)
              for p in ("key", "value")}
    tokens = rng.integers(0, cfg.vocab, batch)
    position = context - 1  # the caches hold the tokens before it
    step, out = ours(cfg, batch, params, caches, tokens, position)
    step()
    theirs_inputs = dict(P={n: torch.tensor(v, dtype=dtype, device=DEVICE) for n, v in params.items()},
                         token=torch.tensor(tokens, device=DEVICE),
                         position=torch.full((batch,), position, dtype=torch.int64, device=DEVICE))
    fresh = {n: torch.tensor(v, dtype=dtype, device=DEVICE) for n, v in caches.items()}
    eager = torch_step(cfg, caches=fresh, **theirs_inputs)
    difference = (out[:, 0].float() - eager()).abs().max().item()  # before the caches are timed over
    t = {"ours": time_ms(step), "eager": time_ms(eager), "compile": None}
    graph = graphed(eager)
    t["graph"] = time_ms(graph) if graph else None
    return dict(name=name, batch=batch, context=context, cfg=cfg, t=t, difference=difference, caches=fresh,
                theirs=theirs_inputs)


def add_compile(state: dict) -> None:
    """The row's torch.compile(mode="max-autotune") step, after every row's other columns."""
    fn = compiled(torch_step(state["cfg"], caches=state["caches"], **state["theirs"]), True, mode="max-autotune")
    if fn:
        state["t"]["compile"] = time_ms(fn)


def row(state: dict) -> dict:
    t, batch = state["t"], state["batch"]
    return {"dtype": state["name"], "batch x context": f"{batch}x{state['context']}", "model": model_name(state["cfg"]),
            "ours ms": f"{t['ours']:.3f}", "eager ms": f"{t['eager']:.3f}",
            "torch graph ms": "" if t["graph"] is None else f"{t['graph']:.3f}",
            "compile ms": "" if t["compile"] is None else f"{t['compile']:.3f}",
            "vs eager": ratio(t["ours"], t["eager"]), "vs torch graph": ratio(t["ours"], t["graph"]),
            "vs compile": ratio(t["ours"], t["compile"]),
            "vs best": ratio(t["ours"], best_peer({k: v for k, v in t.items() if k != "ours"})[1]),
            "tokens/s": f"{batch / t['ours'] * 1e3:.0f}", "max |dp|": f"{state['difference']:.1e}"}


def main() -> None:
    args = model_arguments(__doc__, "1x1024,32x1024,8x8192" if ON_GPU else "2x12",
                           "batch x context (the keys the new token attends to), comma-separated")
    notes = ("One decoding step (batch texts, one new token each, attending to `context` cached keys). `vs` columns "
             "are tritonsym's speed-up (its step replayed as one CUDA graph on a GPU; above 1: faster) over PyTorch "
             "with a static cache, eager, captured as a CUDA graph and under torch.compile(mode='max-autotune'); "
             "`vs best` against the fastest of them. `max |dp|`: the largest difference between the two sides' "
             "next-token probabilities. " + ("" if ON_GPU else "CPU rows run Triton's interpreter: they check the "
                                                               "script, not speed."))
    model_rows("decode-step", args, notes, measure, add_compile, row)


if __name__ == "__main__":
    main()
