"""ScaledDotProductAttention beyond the generic operator cases: equality with torch's
scaled_dot_product_attention at lengths no block size divides (blocks shrunk so every tail,
diagonal and skipped-block path runs), head_dim 16-128 and odd ones, strided inputs,
invalid lengths, NaN placed exactly as the math places it across many blocks, what a
training bind keeps (one value per query row), accumulation, determinism, grouped query
heads (``enable_gqa``), sliding windows (``window``) and errors."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import TOLERANCES, to_numpy
from tritonsym.ops import attention as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts

S = ts.sym
# (query rows, key rows, sequences) per tile: one sequence per program as on a GPU, and
# several side by side as the interpreter packs them
SMALL = [(16, 16, 1), (16, 32, 2), (32, 16, 4)]
# Every configuration at the first block shape in the quick run; at the other two under -m slow.
SMALL_QUICK_FIRST = [pytest.param(b, id=i, marks=() if k == 0 else pytest.mark.slow)
                     for k, (b, i) in enumerate(zip(SMALL, ["16x16", "16x32x2", "32x16x4"]))]


def quick_only(configs, *kept):
    """``configs`` with all but those at ``kept`` marked slow (the quick run's time; CI runs all)."""
    return [pytest.param(c, marks=() if i in kept else pytest.mark.slow) for i, c in enumerate(configs)]


def _tiles(monkeypatch, rows, keys, group):
    monkeypatch.setattr(kernels, "INTERPRETER_BLOCKS", (rows, keys))
    monkeypatch.setattr(kernels, "INTERPRETER_GROUP", group)


def _torch_reference(q, k, v, causal, scale, lengths):
    """torch's attention in float64 with autograd: the reference (an explicit boolean mask,
    since torch has no key-length argument)."""
    q, k, v = (torch.from_numpy(t).requires_grad_() for t in (q, k, v))
    mask = torch.ones(q.shape[0], 1, q.shape[2], k.shape[2], dtype=torch.bool)
    if causal:
        mask &= torch.ones(q.shape[2], k.shape[2], dtype=torch.bool).tril()
    if lengths is not None:
        mask &= (torch.arange(k.shape[2]) < torch.from_numpy(lengths)[:, None])[:, None, None, :]
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return out, (q, k, v)


def _run(q, k, v, dtype, head, *, causal=False, scale=None, lengths=None, accumulate=(False, False, False),
         grads=None):
    """The kernels on inputs rounded to ``dtype``: output and the three gradients (float64)."""
    t = [torch.from_numpy(x).to(dtype) for x in (q, k, v)]
    length = None
    if lengths is not None:  # whole numbers as int32, others as they are
        whole = np.array_equal(lengths, np.round(lengths))
        length = torch.from_numpy(np.asarray(lengths)).to(torch.int32 if whole else torch.float64)
    out = torch.full((*q.shape[:3], v.shape[3]), float("nan"), dtype=dtype)
    lse = torch.empty(kernels.lse_shape(*q.shape[:3]), dtype=kernels.compute_dtype(dtype))
    for launch in kernels.plan_attention_forward(*t, out, valid_length=length, causal=causal, scale=scale, lse=lse):
        launch()
    grads = grads if grads is not None else [torch.full_like(x, float("nan")) for x in t]
    for launch in kernels.plan_attention_backward(torch.from_numpy(head).to(dtype), *t, out, lse, torch.empty_like(lse),
                                                  *grads, valid_length=length, causal=causal, scale=scale,
                                                  accumulate=accumulate):
        launch()
    return [to_numpy(x) for x in (out, *grads)]


CONFIGS = [  # (batch, heads, seq_q, seq_k, head_dim, value_dim, causal, lengths)
    (2, 3, 37, 37, 24, 24, False, False),
    (2, 2, 70, 70, 16, 16, True, False),
    (2, 2, 33, 81, 40, 20, False, True),
    (1, 2, 61, 61, 64, 64, True, True),
    (1, 1, 1, 1, 8, 8, True, False),  # one query, one key, head_dim padded from 8
    (1, 1, 45, 19, 128, 128, True, False),  # causal with more queries than keys (top-left aligned)
]


@pytest.mark.parametrize("blocks", SMALL_QUICK_FIRST)
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "x".join(map(str, c[:6])) + "_causal" * c[6] + "_len" * c[7])
def test_equals_torch_in_float64_at_every_block_shape(config, blocks, monkeypatch, rng):
    _tiles(monkeypatch, *blocks)
    batch, heads, lq, lk, d, dv, causal, use_length = config
    q, k = rng.normal(size=(batch, heads, lq, d)), rng.normal(size=(batch, heads, lk, d))
    v, head = rng.normal(size=(batch, heads, lk, dv)), rng.normal(size=(batch, heads, lq, dv))
    lengths = rng.integers(1, lk + 1, batch) if use_length else None
    scale = 0.3 if d == 8 else None
    want, leaves = _torch_reference(q, k, v, causal, scale, lengths)
    want.backward(torch.from_numpy(head))
    got = _run(q, k, v, torch.float64, head, causal=causal, scale=scale, lengths=lengths)
    for name, g, w in zip(("output", "query", "key", "value"), got, [want, *(x.grad for x in leaves)]):
        np.testing.assert_allclose(g, w.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, pytest.param(torch.float16, marks=pytest.mark.slow)],
                         ids=["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("head_dim", [16, 80, pytest.param(128, marks=pytest.mark.slow)])
def test_each_dtype_against_the_float64_oracle(dtype, head_dim, monkeypatch, rng):
    """The oracle sees the inputs rounded to ``dtype``; the tolerance widens with the row sums
    (products over head_dim, softmax over 50 keys) as for every product of the suite."""
    _tiles(monkeypatch, 16, 32, 2)
    shape = (2, 2, 50, head_dim)
    q, k, v, head = (to_numpy(torch.from_numpy(rng.normal(size=shape)).to(dtype)) for _ in range(4))
    got = _run(q, k, v, dtype, head, causal=True)
    atol, rtol = TOLERANCES[dtype]
    want = [o.attention(q, k, v, True), *o.attention_grads(head, q, k, v, True)]
    for name, g, w in zip(("output", "query", "key", "value"), got, want):
        np.testing.assert_allclose(g, w, rtol=rtol * 4, atol=atol * 8, err_msg=name)


def test_strided_inputs_and_outputs(rng):
    """(batch, seq, heads, head_dim) arrays seen as (batch, heads, seq, head_dim): the layout a
    projection writes, read and written through strides, no copy."""
    q, k, v = (torch.from_numpy(rng.normal(size=(2, 13, 3, 8))) for _ in range(3))
    out = torch.full((2, 13, 3, 8), float("nan"), dtype=torch.float64)
    view = [t.transpose(1, 2) for t in (q, k, v)]
    for launch in kernels.plan_attention_forward(*view, out.transpose(1, 2), causal=True):
        launch()
    want = torch.nn.functional.scaled_dot_product_attention(*view, is_causal=True)
    torch.testing.assert_close(out.transpose(1, 2), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("head_dim,width,align", [(40, 40, 8), (40, 48, 8), (12, 12, 4), (6, 6, 2), (32, 32, 16),
                                                   (7, 7, 1)])
def test_each_launch_is_told_the_alignment_of_its_rows(head_dim, width, align, rng):
    """Every launch is told the largest power of two up to 16 dividing the feature dims and
    every batch, head and position stride (Triton itself only knows 16: heads of 40 features
    would be copied one element at a time, unpipelined), here with the rows cut from arrays
    ``width`` wide, and computes with those values: torch's numbers forward and backward."""
    def cut(shape):
        return torch.full((*shape[:3], width), float("nan"), dtype=torch.float64)[..., :head_dim]

    shape = (2, 3, 21, head_dim)
    q, k, v, head = (cut(shape).copy_(torch.from_numpy(rng.normal(size=shape))) for _ in range(4))
    out, grads = cut(shape), [cut(shape) for _ in range(3)]
    lse = torch.empty(kernels.lse_shape(2, 3, 21), dtype=torch.float64)
    forward = kernels.plan_attention_forward(q, k, v, out, causal=True, lse=lse)
    backward = kernels.plan_attention_backward(head, q, k, v, out, lse, torch.empty_like(lse), *grads, causal=True)
    assert [launch.kwargs["ALIGN"] for launch in forward + backward] == [align] * 4
    for launch in forward + backward:
        launch()
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    want = torch.nn.functional.scaled_dot_product_attention(*leaves, is_causal=True)
    want.backward(head)
    expected = (want, *(t.grad for t in leaves))
    for name, got, value in zip(("output", "query", "key", "value"), (out, *grads), expected):
        torch.testing.assert_close(got, value.detach(), rtol=1e-12, atol=1e-12, msg=name)


def test_a_wrong_alignment_gives_wrong_numbers(rng, monkeypatch):
    """The alignment is computed with, not assumed: told rows of 12 features are multiples of
    8, the kernels read 8 of each row's 12 (so the test above can fail)."""
    monkeypatch.setattr(kernels, "alignment", lambda *args: 8)
    q = torch.from_numpy(rng.normal(size=(1, 2, 9, 12)))
    got = kernels.attention(q, q, q)
    assert not torch.allclose(got, torch.nn.functional.scaled_dot_product_attention(q, q, q))


def test_an_invalid_length_makes_only_its_sequence_nan(rng):
    q, head = rng.normal(size=(5, 2, 6, 4)), rng.normal(size=(5, 2, 6, 4))
    lengths = np.array([0.0, 2.5, -1.0, 7.0, 3.0])  # no keys, not whole, negative, too long; valid
    got = _run(q, q, q, torch.float64, head, lengths=lengths)
    for g in got:
        assert np.isnan(g[:4]).all() and not np.isnan(g[4]).any()
    np.testing.assert_allclose(got[0][4:], o.attention(q[4:], q[4:], q[4:], lengths=[3]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("group", [pytest.param(1, marks=pytest.mark.slow), 2])  # quick: grouped heads
@pytest.mark.parametrize("where", ["query", "key", "value", "head"])
def test_nan_lands_exactly_where_the_math_puts_it_across_blocks(where, group, monkeypatch, rng):
    """Causal over 40 positions in 16-row blocks: a NaN reaches only the rows and gradients
    that depend on it, also where the mask hides it inside a block of the diagonal or a tile
    holds it beside another sequence."""
    _tiles(monkeypatch, 16, 16, group)
    values = {n: rng.normal(size=(1, 2, 40, 16)) for n in ("query", "key", "value", "head")}
    for position in (3, 17, 38):
        planted = {n: x.copy() for n, x in values.items()}
        planted[where][0, 1, position, 5] = np.nan
        q, k, v, head = (planted[n] for n in ("query", "key", "value", "head"))
        got = _run(q, k, v, torch.float32, head, causal=True)
        with np.errstate(all="ignore"):
            want = [o.attention(q, k, v, True), *o.attention_grads(head, q, k, v, True)]
        for name, g, w in zip(("output", "query", "key", "value"), got, want):
            np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"{name}, NaN in {where} at {position}")


def test_gradients_accumulate_and_repeat_bit_for_bit(rng, monkeypatch):
    _tiles(monkeypatch, 16, 16, 2)
    q, k, v, head = (rng.normal(size=(2, 2, 21, 16)) for _ in range(4))
    first = _run(q, k, v, torch.float32, head, causal=True)
    again = _run(q, k, v, torch.float32, head, causal=True)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    before = [torch.full(x.shape, 0.5, dtype=torch.float32) for x in (q, k, v)]
    added = _run(q, k, v, torch.float32, head, causal=True, accumulate=(True, True, True), grads=before)
    for a, b in zip(first[1:], added[1:]):
        np.testing.assert_allclose(b, a + 0.5, rtol=1e-6, atol=1e-6)


def _roles_against_torch(roles: str, shapes: dict, grad_req: str, rng, **options) -> None:
    """Attention of the arrays named by ``roles`` (query, key, value), bound with grad_req
    write or add (over 0.25), against torch autograd in float64."""
    arrays = {n: S.Variable(n) for n in shapes}
    net = S.ScaledDotProductAttention(*(arrays[r] for r in roles), causal=True, **options)
    exe = net.simple_bind(ts.cpu(), type_dict={n: "float64" for n in shapes}, grad_req=grad_req, **shapes)
    values, head = {n: rng.normal(size=s) for n, s in shapes.items()}, rng.normal(size=shapes[roles[0]])
    for n, value in values.items():
        exe.arg_dict[n][...] = torch.as_tensor(value)
        exe.grad_dict[n][...] = 0.25
    exe.forward(is_train=True)
    exe.backward([torch.as_tensor(head)])
    leaves = {n: torch.tensor(value, requires_grad=True) for n, value in values.items()}
    out = torch.nn.functional.scaled_dot_product_attention(*(leaves[r] for r in roles), is_causal=True, **options)
    out.backward(torch.as_tensor(head))
    for n in shapes:
        expected = leaves[n].grad.numpy() + (0.25 if grad_req == "add" else 0.0)
        np.testing.assert_allclose(exe.grad_dict[n].numpy(), expected, rtol=1e-12, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("roles", ["xxx", "xxy", "xyx", "yxx"])
@pytest.mark.parametrize("grad_req", ["write", "add"])
def test_one_array_read_as_several_of_query_key_value(roles, grad_req, rng):
    """Self-attention on one array: its gradient is dQ + dK + dV of the roles it plays, in
    one array, whatever order the kernels run in (dQ is launched first and written; dK and
    dV, one array, are summed before their one store). Was wrong when the query shared it."""
    _roles_against_torch(roles, {n: (2, 3, 19, 8) for n in sorted(set(roles))}, grad_req, rng)


def test_shared_gradients_must_be_one_array_the_later_adding(rng):
    q, k, v, out = (torch.as_tensor(rng.normal(size=(1, 2, 5, 4))) for _ in range(4))
    lse, delta = torch.empty(10, dtype=torch.float64), torch.empty(10, dtype=torch.float64)
    grad = torch.zeros_like(q)
    with pytest.raises(KernelArgumentError, match=r"grad_q and grad_k share memory.*accumulate\[1\]"):
        kernels.plan_attention_backward(out, q, k, v, out, lse, delta, grad, grad, None)
    with pytest.raises(KernelArgumentError, match="grad_k and grad_v share memory"):
        kernels.plan_attention_backward(out, q, k, v, out, lse, delta, None, grad, grad[:, :, :, :4].transpose(2, 3)
                                        .transpose(2, 3), accumulate=(False, False, False))
    launches = kernels.plan_attention_backward(out, q, k, v, out, lse, delta, grad, grad, None,
                                               accumulate=(False, True, False))
    assert [launch.kernel.fn.__name__ for launch in launches][1] == "_attention_backward_queries_kernel"


def test_a_training_bind_keeps_one_value_per_query_row():
    q, k, v = S.Variable("q"), S.Variable("k"), S.Variable("v")
    net = S.ScaledDotProductAttention(q, k, v, causal=True, name="att")
    shapes = dict(q=(4, 8, 256, 64), k=(4, 8, 256, 64), v=(4, 8, 256, 64))
    train = net.simple_bind(ts.cpu(), **shapes)
    kept = [v_ for v_ in train.memory.values if v_.kind == "saved"]
    assert [v_.name for v_ in kept] == ["att_lse"] and kept[0].nbytes == 4 * 8 * 256 * 4
    largest = max(v_.nbytes for v_ in train.memory.values if v_.kind in ("internal", "temp", "saved"))
    assert largest == 4 * 8 * 256 * 64 * 4  # the output and its gradient: nothing of seq x seq (4x larger)
    inference = net.simple_bind(ts.cpu(), grad_req="null", **shapes)
    assert not any(v_.kind == "saved" for v_ in inference.memory.values)


def test_symbol_api_shapes_types_and_json(rng):
    q, k, v, n = S.Variable("q"), S.Variable("k"), S.Variable("v"), S.Variable("n")
    net = S.ScaledDotProductAttention(q, k, v, n, use_length=True, scale=0.25)
    assert net.list_arguments() == ["q", "k", "v", "n"]
    args, outs, _ = net.infer_shape(q=(2, 3, 5, 8), k=(2, 3, 7, 8), v=(2, 3, 7, 6))
    assert args == [(2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 6), (2,)] and outs == [(2, 3, 5, 6)]
    assert net.infer_type(q="float16")[0] == [torch.float16, torch.float16, torch.float16, torch.float32]
    # the lengths' dtype tells nothing of the others'
    assert net.infer_type_partial(n="int32")[0] == [None, None, None, torch.int32]
    again = ts.sym.load_json(net.tojson())
    assert again.attr("scale") == "0.25" and again.attr("use_length") == "True"
    exe = again.simple_bind(ts.cpu(), type_dict={"q": "float64", "n": "int32"}, q=(2, 3, 5, 8), k=(2, 3, 7, 8),
                            v=(2, 3, 7, 6))
    values = {name: rng.normal(size=exe.arg_dict[name].shape) for name in "qkv"}
    exe.forward(is_train=False, n=np.array([7, 2]), **values)
    want = o.attention(values["q"], values["k"], values["v"], scale=0.25, lengths=[7, 2])
    np.testing.assert_allclose(exe.outputs[0].numpy(), want, rtol=1e-12, atol=1e-12)


def test_partial_inference_leaves_what_no_array_tells_unknown():
    net = S.ScaledDotProductAttention(S.Variable("q"), S.Variable("k"), S.Variable("v"), name="att")
    # the key's length and the value's head_dim are nobody's to tell yet: 0, never a guess
    assert net.infer_shape_partial(q=(2, 4, 8, 16))[:2] == ([(2, 4, 8, 16), (2, 4, 0, 16), (2, 4, 0, 0)],
                                                            [(2, 4, 8, 0)])
    assert net.infer_shape_partial(v=(2, 4, 5, 32))[:2] == ([(2, 4, 0, 0), (2, 4, 5, 0), (2, 4, 5, 32)],
                                                            [(2, 4, 0, 32)])


@pytest.mark.parametrize(("shapes", "message"), [
    (dict(q=(2, 3, 5, 8), k=(2, 3, 7, 4), v=(2, 3, 7, 4)), "head_dim differs: query has 8, key has 4"),
    (dict(q=(2, 3, 5, 8), k=(2, 3, 7, 8), v=(2, 3, 6, 8)), "the key length differs: key has 7, value has 6"),
    (dict(q=(2, 3, 5), k=(2, 3, 7, 8), v=(2, 3, 7, 8)), "query (2, 3, 5) must be 4-d"),
])
def test_shape_errors_name_the_arrays(shapes, message):
    net = S.ScaledDotProductAttention(S.Variable("q"), S.Variable("k"), S.Variable("v"), name="att")
    with pytest.raises(ts.base.ShapeError, match="att") as info:
        net.infer_shape(**shapes)
    assert message in str(info.value)


def test_kernel_argument_errors():
    q = torch.zeros(1, 1, 4, 300)
    with pytest.raises(KernelArgumentError, match="head_dim 300 and value_dim 300 must be at most 256"):
        kernels.attention(q, q, q)
    q = torch.zeros(1, 1, 4, 8)
    with pytest.raises(KernelArgumentError, match="share a dtype"):
        kernels.attention(q, q.double(), q)
    with pytest.raises(KernelArgumentError, match=r"valid_length must be contiguous of shape \(1,\)"):
        kernels.attention(q, q, q, valid_length=torch.ones(2))
    with pytest.raises(ts.base.ParamError, match="scale=inf"):
        S.ScaledDotProductAttention(S.Variable("q"), S.Variable("k"), S.Variable("v"), scale=float("inf"))


# ------------------------------------------------------------ grouped query heads (enable_gqa)

GROUPED = [  # (batch, heads, kv_heads, seq_q, seq_k, head_dim, value_dim, causal, lengths)
    (2, 6, 2, 37, 37, 24, 24, True, False),
    (2, 4, 1, 33, 50, 16, 8, False, True),  # multi-query: one key and value head for all
    (1, 8, 4, 21, 21, 40, 40, True, True),
]


@pytest.mark.parametrize("blocks", SMALL_QUICK_FIRST)
@pytest.mark.parametrize("config", quick_only(GROUPED, 2),
                         ids=lambda c: "x".join(map(str, c[:7])) + "_causal" * c[7] + "_len" * c[8])
def test_grouped_query_heads_equal_torch_in_float64(config, blocks, monkeypatch, rng):
    """Query head h reads key and value head h // (heads // kv_heads), as torch's enable_gqa;
    a shared head's gradient sums its query heads' shares, written or added."""
    _tiles(monkeypatch, *blocks)
    batch, heads, kv_heads, lq, lk, d, dv, causal, use_length = config
    q, head = rng.normal(size=(batch, heads, lq, d)), rng.normal(size=(batch, heads, lq, dv))
    k, v = rng.normal(size=(batch, kv_heads, lk, d)), rng.normal(size=(batch, kv_heads, lk, dv))
    lengths = rng.integers(1, lk + 1, batch) if use_length else None
    leaves = [torch.from_numpy(x).requires_grad_() for x in (q, k, v)]
    mask = torch.ones(batch, 1, lq, lk, dtype=torch.bool)
    if causal:
        mask &= torch.ones(lq, lk, dtype=torch.bool).tril()
    if lengths is not None:
        mask &= (torch.arange(lk) < torch.from_numpy(lengths)[:, None])[:, None, None, :]
    want = torch.nn.functional.scaled_dot_product_attention(*leaves, attn_mask=mask, enable_gqa=True)
    want.backward(torch.from_numpy(head))
    t = [torch.from_numpy(x) for x in (q, k, v)]
    length = None if lengths is None else torch.from_numpy(lengths).to(torch.int32)
    out = torch.full((batch, heads, lq, dv), float("nan"), dtype=torch.float64)
    lse = torch.empty(kernels.lse_shape(batch, heads, lq), dtype=torch.float64)
    scratch = [torch.full(shape, float("nan"), dtype=torch.float64)
               for shape in kernels.grouped_head_grads_shapes(q.shape, k.shape, v.shape)]
    for accumulate in (False, True):
        grads = [torch.full_like(x, 0.5 if accumulate else float("nan")) for x in t]
        launches = kernels.plan_attention_forward(*t, out, valid_length=length, causal=causal, lse=lse,
                                                  enable_gqa=True)
        launches += kernels.plan_attention_backward(torch.from_numpy(head), *t, out, lse, torch.empty_like(lse),
                                                    *grads, valid_length=length, causal=causal,
                                                    accumulate=(accumulate,) * 3, enable_gqa=True,
                                                    head_grads=scratch)
        for launch in launches:
            launch()
        for name, g, w in zip(("output", "query", "key", "value"), [out, *grads], [want, *(x.grad for x in leaves)]):
            w = w.detach() + (0.5 if accumulate and name != "output" else 0.0)
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12, msg=lambda m: f"{name}, accumulate: {m}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def test_grouped_query_heads_in_each_dtype_against_the_oracle(dtype, monkeypatch, rng):
    """The shares of a key head are summed in float32 and rounded once."""
    _tiles(monkeypatch, 16, 32, 2)
    q, head = (to_numpy(torch.from_numpy(rng.normal(size=(2, 6, 40, 32))).to(dtype)) for _ in range(2))
    k, v = (to_numpy(torch.from_numpy(rng.normal(size=(2, 2, 40, 32))).to(dtype)) for _ in range(2))
    net = S.ScaledDotProductAttention(S.Variable("q"), S.Variable("k"), S.Variable("v"), causal=True,
                                      enable_gqa=True)
    exe = net.simple_bind(ts.cpu(), type_dict={n: dtype for n in "qkv"}, q=q.shape, k=k.shape, v=v.shape)
    exe.forward(is_train=True, q=q, k=k, v=v)
    exe.backward([torch.from_numpy(head).to(dtype)])
    atol, rtol = TOLERANCES[dtype]
    want = [o.grouped_attention(q, k, v, True), *o.grouped_attention_grads(head, q, k, v, True)]
    got = [exe.outputs[0], *(exe.grad_dict[n] for n in "qkv")]
    for name, g, w in zip(("output", "query", "key", "value"), got, want):
        np.testing.assert_allclose(to_numpy(g), w, rtol=rtol * 4, atol=atol * 8, err_msg=name)


@pytest.mark.parametrize("grad_req", ["write", "add"])
def test_grouped_query_heads_with_one_array_as_key_and_value(grad_req, rng):
    """Key and value one array of fewer heads: dK + dV of every query head, one store."""
    _roles_against_torch("xyy", dict(x=(2, 6, 13, 8), y=(2, 3, 13, 8)), grad_req, rng, enable_gqa=True)


def test_grouped_query_heads_shapes_scratch_and_errors():
    net = S.ScaledDotProductAttention(S.Variable("q"), S.Variable("k"), S.Variable("v"), enable_gqa=True, name="att")
    args, outs, _ = net.infer_shape(q=(2, 8, 5, 16), k=(2, 2, 7, 16), v=(2, 2, 7, 4))
    assert args == [(2, 8, 5, 16), (2, 2, 7, 16), (2, 2, 7, 4)] and outs == [(2, 8, 5, 4)]
    # the key's heads are nobody's to tell from the query's: 0, never a guess
    assert net.infer_shape_partial(q=(2, 8, 5, 16))[0][1] == (2, 0, 0, 16)
    assert ts.sym.load_json(net.tojson()).attr("enable_gqa") == "True"
    with pytest.raises(ts.base.ShapeError, match="att.*query has 6 heads, key and value 4"):
        net.infer_shape(q=(2, 6, 5, 16), k=(2, 4, 7, 16), v=(2, 4, 7, 16))
    plain = S.ScaledDotProductAttention(S.Variable("q"), S.Variable("k"), S.Variable("v"), name="att")
    with pytest.raises(ts.base.ShapeError, match="the number of heads differs: query has 8, key has 2"):
        plain.infer_shape(q=(2, 8, 5, 16), k=(2, 2, 7, 16), v=(2, 2, 7, 16))
    # a training bind's scratch: each query head's share of dK and dV, during the backward step only
    train = net.simple_bind(ts.cpu(), q=(2, 8, 5, 16), k=(2, 2, 7, 16), v=(2, 2, 7, 4))
    temps = {v_.name: v_.shape for v_ in train.memory.values if v_.kind == "temp"}
    assert (2, 8, 7, 16) in temps.values() and (2, 8, 7, 4) in temps.values(), temps
    q, k = torch.zeros(1, 6, 4, 8), torch.zeros(1, 4, 4, 8)
    with pytest.raises(KernelArgumentError, match=r"query has 6 heads, key and value 4.*enable_gqa=True \(now True\)"):
        kernels.attention(q, k, k, enable_gqa=True)
    with pytest.raises(KernelArgumentError, match=r"query has 6 heads, key and value 2.*\(now False\)"):
        kernels.attention(q, k[:, :2], k[:, :2])
    out, lse = torch.zeros(1, 6, 4, 8), torch.zeros(24)
    with pytest.raises(KernelArgumentError, match=r"needs head_grads, scratch of shapes \(1, 6, 4, 8\)"):
        kernels.plan_attention_backward(out, q, k[:, :2], k[:, :2], out, lse, lse.clone(), None,
                                        torch.zeros(1, 2, 4, 8), None, enable_gqa=True)


# ------------------------------------------------------------ sliding window (window=)

WINDOWED = [  # (batch, heads, kv_heads, seq_q, seq_k, head_dim, window, lengths): windows inside one block,
    (2, 2, 2, 45, 45, 16, 1, None),  # across several and wider than the sequence; grouped heads; more keys than
    (2, 2, 2, 45, 45, 24, 7, None),  # queries; lengths, and more queries than keys, leaving the queries a window
    (1, 3, 3, 70, 70, 8, 33, None),  # or more past the end with no key to see
    (1, 4, 2, 37, 60, 16, 20, None),
    (1, 2, 1, 20, 20, 8, 100, None),
    (3, 2, 2, 40, 40, 16, 5, (40, 13, 1)),
    (2, 4, 2, 50, 30, 8, 4, (30, 17)),
    (1, 2, 1, 60, 23, 8, 19, None),
]


@pytest.mark.parametrize("blocks", SMALL_QUICK_FIRST)
@pytest.mark.parametrize("config", quick_only(WINDOWED, 3, 6), ids=lambda c: "x".join(map(str, c)))
def test_a_sliding_window_equals_torch_with_its_mask_in_float64(config, blocks, monkeypatch, rng):
    """Query i sees keys i - window + 1 .. i (and before its sequence's length): torch with
    that boolean mask, every gradient, written and added, at every tile shape (the kernels
    visit only the blocks in the window); a query that sees no key is 0 and passes no
    gradient."""
    _tiles(monkeypatch, *blocks)
    batch, heads, kv_heads, lq, lk, d, window, lengths = config
    q, head = rng.normal(size=(batch, heads, lq, d)), rng.normal(size=(batch, heads, lq, d))
    k, v = rng.normal(size=(batch, kv_heads, lk, d)), rng.normal(size=(batch, kv_heads, lk, d))
    leaves = [torch.from_numpy(x).requires_grad_() for x in (q, k, v)]
    i, j = torch.arange(lq)[:, None], torch.arange(lk)[None, :]
    seen = torch.tensor(lengths or (lk,) * batch)[:, None, None, None]
    mask = (j <= i) & (j > i - window) & (j < seen)  # (batch, 1, lq, lk)
    empty = ~mask.any(-1, keepdim=True)  # queries with no key: 0, no gradient (torch's math would give NaN)
    assert bool(empty.any()) == (lengths is not None or lq > lk)
    want = torch.nn.functional.scaled_dot_product_attention(*leaves, attn_mask=mask | empty,
                                                            enable_gqa=kv_heads != heads) * ~empty
    want.backward(torch.from_numpy(head))
    length = {} if lengths is None else dict(valid_length=torch.tensor(lengths, dtype=torch.int32))
    t = [torch.from_numpy(x) for x in (q, k, v)]
    out = torch.full((batch, heads, lq, d), float("nan"), dtype=torch.float64)
    lse = torch.empty(kernels.lse_shape(batch, heads, lq), dtype=torch.float64)
    grouped = dict(enable_gqa=True, head_grads=[torch.empty(s, dtype=torch.float64) for s in
                                                kernels.grouped_head_grads_shapes(q.shape, k.shape, v.shape)]) \
        if kv_heads != heads else {}
    for accumulate in (False, True):
        grads = [torch.full_like(x, 0.5 if accumulate else float("nan")) for x in t]
        launches = kernels.plan_attention_forward(*t, out, causal=True, lse=lse, window=window,
                                                  enable_gqa=kv_heads != heads, **length)
        launches += kernels.plan_attention_backward(torch.from_numpy(head), *t, out, lse, torch.empty_like(lse),
                                                    *grads, causal=True, accumulate=(accumulate,) * 3, window=window,
                                                    **grouped, **length)
        for launch in launches:
            launch()
        for name, g, w in zip(("output", "query", "key", "value"), [out, *grads], [want, *(x.grad for x in leaves)]):
            w = w.detach() + (0.5 if accumulate and name != "output" else 0.0)
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12, msg=lambda m: f"{name}, accumulate: {m}")


def test_a_window_as_wide_as_the_sequence_is_causal_attention(rng):
    q, k, v = (torch.from_numpy(rng.normal(size=(1, 2, 19, 8))) for _ in range(3))
    outs = []
    for window in (None, 19, 1000):
        out = torch.empty_like(q)
        for launch in kernels.plan_attention_forward(q, k, v, out, causal=True, window=window):
            launch()
        outs.append(out)
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(outs[2], outs[0], rtol=1e-14, atol=1e-14)


def test_window_errors_name_the_window():
    q = torch.zeros(1, 1, 5, 8)
    for args, kwargs, message in (
            ((q, q, q), dict(window=2), "attention: window=2 is a causal sliding window: it needs causal=True"),
            ((q, q, q), dict(window=0, causal=True), "attention: window=0 must be a positive number of keys"),
            ((q, q, q), dict(window=True, causal=True), "attention: window=True must be a positive number")):
        with pytest.raises(KernelArgumentError, match=message):
            kernels.plan_attention_forward(*args, **kwargs)
    att = S.ScaledDotProductAttention
    with pytest.raises(ts.ShapeError, match=r"att \(ScaledDotProductAttention\): window=3 is a causal sliding "
                                            "window: it needs causal=True"):
        att(S.Variable("q"), S.Variable("k"), S.Variable("v"), window=3, name="att").infer_shape(
            q=(1, 1, 5, 8), k=(1, 1, 5, 8), v=(1, 1, 5, 8))
    with pytest.raises(ts.base.ParamError, match="ScaledDotProductAttention: window=0 must be at least 1"):
        att(S.Variable("q"), S.Variable("k"), S.Variable("v"), causal=True, window=0)


# ------------------------------------------------ the keys split across programs (decoding)

SPLIT = [  # (batch, heads, kv_heads, seq_q, seq_k, head_dim, lengths): one query (decoding), a few, grouped heads
    (2, 2, 2, 1, 70, 16, True), (1, 4, 2, 3, 45, 24, False), (3, 2, 1, 1, 33, 8, True), (1, 1, 1, 2, 47, 16, False)]


def _split_keys(monkeypatch, min_keys=8):
    """Split as a GPU would where there are few programs: the interpreter's thresholds lowered."""
    monkeypatch.setattr(kernels, "SPLIT_TARGET_PROGRAMS", 64)
    monkeypatch.setattr(kernels, "SPLIT_MIN_KEYS", min_keys)


@pytest.mark.parametrize("blocks", SMALL_QUICK_FIRST)
@pytest.mark.parametrize("config", SPLIT, ids=lambda c: "x".join(map(str, c[:6])) + "_len" * c[6])
def test_keys_split_across_programs_equal_torch_in_float64(config, blocks, monkeypatch, rng):
    """Each split's partial sums, then one launch adding them: the output and the kept
    log-sum-exp equal torch's and the unsplit forward's (1e-12), and backward from them."""
    _tiles(monkeypatch, *blocks)
    batch, heads, kv_heads, lq, lk, d, use_length = config
    q, head = rng.normal(size=(batch, heads, lq, d)), rng.normal(size=(batch, heads, lq, d))
    k, v = rng.normal(size=(batch, kv_heads, lk, d)), rng.normal(size=(batch, kv_heads, lk, d))
    lengths = rng.integers(1, lk + 1, batch) if use_length else None
    t = [torch.from_numpy(x) for x in (q, k, v)]
    length = None if lengths is None else torch.from_numpy(lengths).to(torch.int32)
    whole = torch.empty(kernels.lse_shape(batch, heads, lq), dtype=torch.float64)
    unsplit = torch.empty(batch, heads, lq, d, dtype=torch.float64)
    run(kernels.plan_attention_forward(*t, unsplit, valid_length=length, lse=whole, enable_gqa=True))
    _split_keys(monkeypatch)
    splits = kernels.key_splits(q.shape, k.shape, torch.float64, False, None)
    assert splits > 1
    launches = kernels.plan_attention_forward(*t, None, valid_length=length, lse=torch.empty_like(whole),
                                              enable_gqa=True)
    assert [launch.name for launch in launches] == ["_attention_split_kernel", "_attention_combine_kernel"]
    out = torch.full_like(unsplit, float("nan"))
    lse = torch.full_like(whole, float("nan"))
    run(kernels.plan_attention_forward(*t, out, valid_length=length, lse=lse, enable_gqa=True))
    leaves = [x.clone().requires_grad_() for x in t]
    mask = torch.ones(batch, 1, lq, lk, dtype=torch.bool)
    if lengths is not None:
        mask &= (torch.arange(lk) < torch.from_numpy(lengths)[:, None])[:, None, None, :]
    want = torch.nn.functional.scaled_dot_product_attention(*leaves, attn_mask=mask, enable_gqa=True)
    torch.testing.assert_close(out, want.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(lse, whole, rtol=1e-12, atol=1e-12)
    want.backward(torch.from_numpy(head))
    grads = [torch.full_like(x, float("nan")) for x in t]
    shares = [torch.empty(shape, dtype=torch.float64)
              for shape in kernels.grouped_head_grads_shapes(q.shape, k.shape, v.shape)]
    run(kernels.plan_attention_backward(torch.from_numpy(head), *t, out, lse, torch.empty_like(lse), *grads,
                                        valid_length=length, enable_gqa=True,
                                        head_grads=shares if kv_heads != heads else None))
    for name, g, leaf in zip(("query", "key", "value"), grads, leaves):
        torch.testing.assert_close(g, leaf.grad, rtol=1e-12, atol=1e-12, msg=lambda m: f"{name}: {m}")


def test_a_split_forward_of_an_invalid_length_is_nan_on_its_sequence_only(monkeypatch, rng):
    _split_keys(monkeypatch)
    q, k, v = (torch.from_numpy(rng.normal(size=s)) for s in ((3, 2, 1, 16), (3, 2, 40, 16), (3, 2, 40, 16)))
    out = torch.empty(3, 2, 1, 16, dtype=torch.float64)
    lse = torch.empty(kernels.lse_shape(3, 2, 1), dtype=torch.float64)
    run(kernels.plan_attention_forward(q, k, v, out, lse=lse, valid_length=torch.tensor([40.0, 0.5, float("nan")])))
    assert not out[0].isnan().any() and out[1:].isnan().all()
    assert not lse[:2].isnan().any() and lse[2:].isnan().all()


def test_a_bind_plans_the_split_scratch_and_a_decoding_step_uses_it(monkeypatch, rng):
    """The executor asks ``forward_temps`` for the partial sums at bind: a decoding step (one
    query over a cache of keys, its lengths) bound with the thresholds lowered splits."""
    _tiles(monkeypatch, 16, 16, 1)
    _split_keys(monkeypatch)
    net = S.ScaledDotProductAttention(S.Variable("q"), S.Variable("k"), S.Variable("v"), S.Variable("length"),
                                      use_length=True, name="att")
    exe = net.simple_bind(ts.cpu(), grad_req="null", type_dict={"q": "float64"}, q=(2, 3, 1, 8), k=(2, 3, 50, 8),
                          v=(2, 3, 50, 8))
    (step,) = exe._program.forward_steps
    assert set(step.temps) == {"partial", "max_sum"}
    q, k, v = (rng.normal(size=s) for s in ((2, 3, 1, 8), (2, 3, 50, 8), (2, 3, 50, 8)))
    out = exe.forward(q=q, k=k, v=v, length=np.array([50.0, 7.0]))[0]
    mask = (torch.arange(50) < torch.tensor([50, 7])[:, None])[:, None, None, :]
    want = torch.nn.functional.scaled_dot_product_attention(*(torch.from_numpy(x) for x in (q, k, v)), attn_mask=mask)
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
