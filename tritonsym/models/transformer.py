"""A decoder-only transformer (GPT's shape) written with the Symbol API, as a tutorial.

Each function below is one piece of the network, built from the operators a researcher
would reach for; ``tritonsym train --model transformer`` and ``examples/transformer.py``
train it. The shapes in the comments: B sequences of L tokens, width D, H heads of D/H.

    tokens (B, L) ──Embedding──┐
    positions (1, L, D) ───────┴─ + ─ [block] x layers ─ LayerNorm ─ FullyConnected ─ SoftmaxOutput
    block:  x + proj(attention(LayerNorm(x)))  then  x + mlp(LayerNorm(x))   (pre-norm residuals;
            RMSNorm with Config(norm="rms"), a SwiGLU mlp with mlp="swiglu", grouped-query
            attention with kv_heads, and with positions="rotary" no position table: queries
            and keys are rotated by their positions inside attention, RoPE; tie_embeddings:
            the final FullyConnected reads the Embedding's table as its weight)

Every operator here runs as tritonsym's own Triton kernels with handwritten backward:
attention is one FlashAttention-2 operator (``ScaledDotProductAttention``) whose training
forward keeps only a log-sum-exp per query row for backward.

``decoder_step`` is the same network for writing text one token at a time: each layer's
keys and values go into a cache (``CacheWrite``, auxiliary states kept between forwards)
at the token's ``position``, an input, so one bind serves every step and a step costs
the new token's work only, not the whole prefix's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from .. import initializer as init
from .. import sym as S

IGNORE = -1  # the label of a position whose prediction is not scored (a prompt, padding)


@dataclass(frozen=True)
class Config:
    """The network's size. ``max_len``: the longest sequence (the learned positions);
    ``kv_heads``: the key and value heads, each shared by ``heads // kv_heads`` query heads
    (grouped-query attention, as Llama's; None: one per query head); ``norm``: "layer"
    (LayerNorm, GPT's) or "rms" (RMSNorm, Llama's); ``mlp``: "gelu" (GPT's) or "swiglu"
    (Llama's gated SiLU); ``positions``: "learned" (a table added to the tokens, GPT's) or
    "rotary" (queries and keys rotated by their positions, RoPE, Llama's); ``tie_embeddings``:
    the vocabulary head reads the token table as its weight (GPT-2's weight tying; one
    table, its gradient from both uses); ``window``: each position attends to itself and
    the ``window - 1`` before it only (Mistral's sliding window; None: all before it);
    ``dtype``: the parameters' and the arithmetic's (token indices are float32 or integers
    whatever it is)."""

    vocab: int
    max_len: int
    width: int = 64
    heads: int = 4
    layers: int = 2
    dropout: float = 0.0
    dtype: str = "float32"
    kv_heads: int | None = None
    norm: str = "layer"
    mlp: str = "gelu"
    positions: str = "learned"
    tie_embeddings: bool = False
    window: int | None = None

    def __post_init__(self):
        sizes = ("vocab", "max_len", "width", "heads", "layers")
        sizes += tuple(name for name in ("kv_heads", "window") if getattr(self, name) is not None)
        for name in sizes:
            if getattr(self, name) < 1:
                raise ValueError(f"transformer: {name} must be at least 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"transformer: width {self.width} must be a multiple of heads {self.heads}")
        if self.heads % self.key_heads:
            raise ValueError(f"transformer: heads {self.heads} must be a multiple of kv_heads {self.kv_heads}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"transformer: dropout must be in [0, 1), got {self.dropout}")
        if self.dtype not in ("float64", "float32", "float16", "bfloat16"):
            raise ValueError(f"transformer: dtype {self.dtype!r} is not float64, float32, float16 or bfloat16")
        if self.norm not in ("layer", "rms"):
            raise ValueError(f"transformer: norm {self.norm!r} is not 'layer' or 'rms'")
        if self.mlp not in ("gelu", "swiglu"):
            raise ValueError(f"transformer: mlp {self.mlp!r} is not 'gelu' or 'swiglu'")
        if self.positions not in ("learned", "rotary"):
            raise ValueError(f"transformer: positions {self.positions!r} is not 'learned' or 'rotary'")

    @property
    def key_heads(self) -> int:
        """The key and value heads (``kv_heads``, or one per query head)."""
        return self.heads if self.kv_heads is None else self.kv_heads


def token_table(cfg: Config):
    """The token embedding table (vocab, D), a Variable that carries the network's dtype
    (every other parameter takes it from the tables)."""
    return S.Variable("token_embed_weight", dtype=cfg.dtype)


def embed(tokens, length: int, cfg: Config, table, position=None):
    """(B, L) token indices -> (B, L, D): a learned vector per token (a row of ``table``)
    plus one per position (with rotary positions, the tokens' alone: attention adds the
    positions).

    The position table holds ``max_len`` rows; a network for sequences of ``length`` takes
    the first ``length`` of them (``slice_axis``), so networks of every length share it (a
    BucketingModule trains one table for all its buckets). A decoding step (``position``:
    (B,), one token each) looks its row up instead."""
    x = S.Embedding(tokens, table, input_dim=cfg.vocab, output_dim=cfg.width, name="token_embed")
    if cfg.positions == "rotary":
        return x
    position_table = S.Variable("position_weight", shape=(1, cfg.max_len, cfg.width), dtype=cfg.dtype)
    if position is not None:
        rows = S.Reshape(position_table, shape=(cfg.max_len, cfg.width), name="position_rows")
        looked_up = S.Embedding(position, rows, input_dim=cfg.max_len, output_dim=cfg.width, name="position_embed")
        return x + S.expand_dims(looked_up, axis=1, name="positions")  # (B, 1, D)
    positions = S.slice_axis(position_table, axis=1, begin=0, end=length, name="positions")
    return S.broadcast_add(x, positions, name="embed")


def heads(x, count: int, name: str):
    """(B, L, count * D/H) -> (B, count, L, D/H): split the width into heads, heads before
    positions. No copy: attention reads its inputs through strides, so the transpose is a view."""
    x = S.Reshape(x, shape=(0, 0, count, -1), name=f"{name}_split")  # (B, L, count, D/H)
    return S.transpose(x, axes=(0, 2, 1, 3), name=f"{name}_heads")


def self_attention(x, cfg: Config, name: str, step: Step | None = None):
    """Causal multi-head self-attention: each position attends to itself and those before
    (with ``window``, the ``window - 1`` before it).
    With ``kv_heads`` fewer than ``heads``, the key and value projections are that much
    narrower and each of their heads serves a group of query heads (``enable_gqa``). With
    rotary positions, each query and key head is rotated by its position (RoPE: their
    products then depend on how far apart the positions are); reading the heads through
    strides, the rotation writes them in attention's layout.

    In a decoding ``step`` the one new key and value go into this layer's caches, and the
    new query attends to every key the cache holds: its own and those of the tokens before."""
    head_dim = cfg.width // cfg.heads
    q, k, v = (heads(S.FullyConnected(x, num_hidden=count * head_dim, flatten=False, name=f"{name}_{p}"), count,
                     f"{name}_{p}")
               for p, count in (("query", cfg.heads), ("key", cfg.key_heads), ("value", cfg.key_heads)))
    if cfg.positions == "rotary":
        at = dict(use_position=True, position=step.position) if step and not step.prefill else {}
        q, k = (S.RotaryEmbedding(t, axis=2, name=f"{name}_{p}_rope", **at) for t, p in ((q, "query"), (k, "key")))
    gqa = cfg.key_heads != cfg.heads
    if step is not None:  # the keys and values of the caches: those just written and those before
        k, v = (S.CacheWrite(t, step.cache(f"{name}_{p}_cache", cfg), step.position, axis=2, name=f"{name}_{p}_write")
                for t, p in ((k, "key"), (v, "value")))  # (B, kv_heads, cache_len, D/H)
    if step is None or step.prefill:  # a prefill's caches hold exactly this text's keys: attend as in training
        att = S.ScaledDotProductAttention(q, k, v, causal=True, enable_gqa=gqa, window=cfg.window,
                                          name=f"{name}_attention")  # (B, H, L, D/H)
    else:
        att = S.ScaledDotProductAttention(q, k, v, step.keys_seen, use_length=True, enable_gqa=gqa,
                                          name=f"{name}_attention")  # (B, H, 1, D/H)
    att = S.transpose(att, axes=(0, 2, 1, 3), name=f"{name}_merge")  # (B, L, H, D/H): attention writes it so
    att = S.Reshape(att, shape=(0, 0, -3), name=f"{name}_concat")  # (B, L, D)
    return S.FullyConnected(att, num_hidden=cfg.width, flatten=False, name=f"{name}_proj")


def mlp(x, cfg: Config, name: str):
    """Position-wise feed-forward: widen 4x, GELU, back to the width; or SwiGLU: the widened
    values times SiLU of a second widening (the gate), in one operator that keeps no SiLU
    values for backward (GatedActivation)."""
    h = S.FullyConnected(x, num_hidden=4 * cfg.width, flatten=False, name=f"{name}_fc1")
    if cfg.mlp == "swiglu":
        gate = S.FullyConnected(x, num_hidden=4 * cfg.width, flatten=False, name=f"{name}_gate")
        h = S.GatedActivation(h, gate, act_type="silu", name=f"{name}_swiglu")
    else:
        h = S.LeakyReLU(h, act_type="gelu", name=f"{name}_gelu")
    return S.FullyConnected(h, num_hidden=cfg.width, flatten=False, name=f"{name}_fc2")


def dropout(x, cfg: Config, name: str):
    return S.Dropout(x, p=cfg.dropout, name=name) if cfg.dropout else x


def norm(x, cfg: Config, name: str):
    """LayerNorm (a learned gain and shift) or RMSNorm (a gain only), per ``cfg.norm``."""
    return (S.LayerNorm if cfg.norm == "layer" else S.RMSNorm)(x, name=name)


def block(x, cfg: Config, k: int, step: Step | None = None):
    """One pre-norm transformer block: two residual branches."""
    name = f"block{k}"
    x = x + dropout(self_attention(norm(x, cfg, f"{name}_norm1"), cfg, f"{name}_att", step), cfg, f"{name}_drop1")
    return x + dropout(mlp(norm(x, cfg, f"{name}_norm2"), cfg, f"{name}_mlp"), cfg, f"{name}_drop2")


def decoder(length: int, cfg: Config):
    """The network for sequences of ``length`` tokens: ``data`` (B, L) token indices, then
    per position the probabilities of the next token (B, L, vocab); ``softmax_label`` (B, L)
    holds the next tokens, ``IGNORE`` where a position is not scored. The loss is averaged
    over the scored positions (``normalization="valid"``)."""
    if not 1 <= length <= cfg.max_len:
        raise ValueError(f"transformer: a length of {length} is outside 1..max_len={cfg.max_len}")
    logits = _logits(length, cfg)
    return S.SoftmaxOutput(logits, preserve_shape=True, use_ignore=True, ignore_label=IGNORE, normalization="valid",
                           name="softmax")


def _logits(length: int, cfg: Config, step: Step | None = None):
    """(B, L, vocab): each position's scores for the next token."""
    table = token_table(cfg)
    x = dropout(embed(S.Variable("data"), length, cfg, table, step.position if step and not step.prefill else None),
                cfg, "embed_drop")
    for k in range(cfg.layers):
        x = block(x, cfg, k, step)
    x = norm(x, cfg, "final_norm")
    # Tied: the token table (vocab, D) is also the head's weight, as FullyConnected wants it.
    return S.FullyConnected(x, weight=table if cfg.tie_embeddings else None, num_hidden=cfg.vocab, flatten=False,
                            name="lm_head")


def cache_length(cfg: Config) -> int:
    """The key and value caches' length: the sliding window's, else the longest sequence
    trained on; past it a cache is a ring that keeps the last ``cache_length`` tokens."""
    return min(cfg.window, cfg.max_len) if cfg.window is not None else cfg.max_len


@dataclass(frozen=True)
class Step:
    """What decoding adds to the network: key and value caches of ``cache_len`` positions
    for ``rows`` sequences, and ``position`` (B,), where each row's tokens go in them. A
    step reads one token, at that place in its text, the tokens before it in the caches; a
    ``prefill`` reads the first ``cache_len`` tokens of a text at once (position 0), as the
    training network does, and caches their keys and values."""

    rows: int
    cache_len: int
    prefill: bool = False
    position: object = field(default_factory=lambda: S.Variable("position"))

    def cache(self, name: str, cfg: Config):
        """A key or value cache (B, kv_heads, cache_len, D/H): an auxiliary state, zeros at first."""
        shape = (self.rows, cfg.key_heads, self.cache_len, cfg.width // cfg.heads)
        return S.Variable(name, shape=shape, dtype=cfg.dtype, init=init.Zero())

    @functools.cached_property
    def keys_seen(self):
        """The keys each row's new query sees: those of its text so far, at most a cache's.
        One symbol for every layer (computed once a step, not once a layer)."""
        return S.minimum(self.position + 1, self.cache_len)


def decoder_step(cfg: Config, rows: int, prefill: bool = False):
    """The network that writes text one token at a time: ``data`` (B, 1), each row's newest
    token, and ``position`` (B,), its place in the text; the output (B, 1, vocab) is the
    next token's distribution. Each layer's keys and values are kept in auxiliary states
    (``list_auxiliary_states()``) from one forward to the next. With learned positions a
    position must be below ``max_len`` (the table's rows); with rotary ones it may grow
    past, the caches then holding the last ``cache_length(cfg)`` tokens.

    ``prefill``: the network that starts a text, reading its first ``cache_length(cfg)``
    tokens at once (``data`` (B, cache_length), ``position`` zeros) into caches of the same
    names (bind it with ``shared_exec`` of a step's executor, or copy them over); its
    output (B, cache_length, vocab). A shorter prompt may be padded with any tokens: a
    position's keys are read only after the step of that position wrote them again."""
    length = cache_length(cfg)
    logits = _logits(length if prefill else 1, cfg, Step(rows, length, prefill))
    return S.softmax(logits, axis=-1, name="next_token")


def sym_gen(cfg: Config):
    """``BucketingModule``'s ``sym_gen``: a bucket is a sequence length."""
    return lambda length: (decoder(length, cfg), ("data",), ("softmax_label",))
