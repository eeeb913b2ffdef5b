"""MXNet's interleaved attention products composed as GluonNLP's transformers use them: one
projection read by both products of a self-attention block (its gradient the sum of both),
the encoder-decoder pair, grad_req='add', and the shapes refused by name. Each product alone
is an operator case (test_operators.py, test_gradcheck.py)."""

import numpy as np
import pytest
import torch
from gradcheck import check_gradients
from operator_cases import _swap
from oracles import interleaved_join, interleaved_split, softmax

import tritonsym as ts

S = ts.sym
C = S.contrib


def _self_attention(heads):
    qkv = S.Variable("qkv")
    scores = C.interleaved_matmul_selfatt_qk(qkv, heads=heads)
    return C.interleaved_matmul_selfatt_valatt(qkv, S.softmax(scores, axis=-1), heads=heads)


def _self_attention_oracle(qkv, heads):
    q, k, v = interleaved_split(qkv, heads, 3)
    p = softmax(q @ _swap(k) / np.sqrt(q.shape[-1]))
    return interleaved_join([p @ v], heads)


def test_self_attention_block_matches_the_oracle_and_its_gradient_sums_both_products(rng):
    heads, seq, batch, width = 3, 5, 2, 4
    qkv = rng.normal(size=(seq, batch, heads * 3 * width))
    net = _self_attention(heads)
    exe = net.simple_bind(ts.cpu(), qkv=qkv.shape, type_dict={"qkv": "float64"})
    exe.forward(is_train=True, qkv=qkv)
    np.testing.assert_allclose(exe.outputs[0].numpy(), _self_attention_oracle(qkv, heads), rtol=1e-12, atol=1e-13)
    # both products read qkv: finite differences of the whole block
    check_gradients(net, {"qkv": qkv}, [None], rng)


@pytest.mark.slow  # 2 s of finite differences; each product's own are in the quick run
def test_encoder_decoder_block_gradients(rng):
    heads = 2
    queries, keys_values = S.Variable("queries"), S.Variable("keys_values")
    scores = C.interleaved_matmul_encdec_qk(queries, keys_values, heads=heads)
    net = C.interleaved_matmul_encdec_valatt(keys_values, S.softmax(scores, axis=-1), heads=heads)
    assert net.infer_shape(queries=(3, 2, 10), keys_values=(6, 2, 20))[1] == [(3, 2, 10)]
    check_gradients(net, {"queries": rng.normal(size=(3, 2, 10)), "keys_values": rng.normal(size=(6, 2, 20))},
                    [None], rng)


def test_grad_req_add_adds_to_every_slice_and_leaves_none_unread(rng):
    """A qk product alone writes 0 to the values' slice with grad_req='write' and leaves it
    as it was with 'add'."""
    heads, shape = 2, (4, 3, 2 * 3 * 5)
    qkv, head = rng.normal(size=shape), rng.normal(size=(3 * heads, 4, 4))
    net = C.interleaved_matmul_selfatt_qk(S.Variable("qkv"), heads=heads)
    grads = {}
    for req in ("write", "add"):
        exe = net.simple_bind(ts.cpu(), qkv=shape, type_dict={"qkv": "float64"}, grad_req=req)
        exe.grad_dict["qkv"][...] = 7.0
        exe.forward(is_train=True, qkv=qkv)
        exe.backward(torch.tensor(head))
        grads[req] = exe.grad_dict["qkv"].numpy()
    q, k, _ = interleaved_split(qkv, heads, 3)
    width = np.sqrt(q.shape[-1])
    expected = interleaved_join([head @ k / width, _swap(head) @ q / width, np.zeros_like(q)], heads)
    np.testing.assert_allclose(grads["write"], expected, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grads["add"], expected + 7.0, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("build, shapes, words", [
    (lambda: C.interleaved_matmul_selfatt_qk(S.Variable("qkv"), heads=3), {"qkv": (5, 2, 37)},
     ["interleaved_matmul_selfatt_qk", "queries_keys_values", "(5, 2, 37)", "heads=3", "multiple of 9"]),
    (lambda: C.interleaved_matmul_selfatt_qk(S.Variable("qkv"), heads=2), {"qkv": (5, 12)},
     ["queries_keys_values", "3-d", "(5, 12)"]),
    (lambda: C.interleaved_matmul_encdec_qk(S.Variable("q"), S.Variable("kv"), heads=2),
     {"q": (3, 2, 8), "kv": (4, 2, 12)}, ["encdec_qk", "queries (3, 2, 8)", "keys_values (4, 2, 12)"]),
    (lambda: C.interleaved_matmul_encdec_valatt(S.Variable("kv"), S.Variable("att"), heads=2),
     {"kv": (4, 2, 16), "att": (4, 3, 5)}, ["encdec_valatt", "attention (4, 3, 5)", "(4, seq_q, 4)"]),
    (lambda: C.interleaved_matmul_selfatt_valatt(S.Variable("qkv"), S.Variable("att"), heads=2),
     {"qkv": (4, 2, 12), "att": (4, 4, 5)}, ["attention", "(4, 4, 5)", "(4, 4, 4)"]),
])
def test_shapes_that_do_not_fit_are_refused_by_name(build, shapes, words):
    with pytest.raises(ts.TritonSymError) as error:
        build().infer_shape(**shapes)
    assert all(word in str(error.value) for word in words), str(error.value)


def test_heads_must_be_positive():
    with pytest.raises(ts.TritonSymError, match="heads"):
        C.interleaved_matmul_selfatt_qk(S.Variable("qkv"), heads=0)


def test_self_attention_trains_in_float32_with_no_copy_of_the_heads(rng):
    """The products read and write the heads where they lie: a training bind plans the scores,
    the probabilities (over them), their gradients, the output and its head gradient: no
    (batch * heads, seq, head_dim) copy, forward or backward."""
    heads, seq, batch, width = 2, 6, 3, 4
    exe = _self_attention(heads).simple_bind(ts.cpu(), qkv=(seq, batch, heads * 3 * width))
    exe.forward(is_train=True, qkv=rng.normal(size=(seq, batch, heads * 3 * width)).astype(np.float32))
    exe.backward(torch.ones(seq, batch, heads * width))
    assert np.isfinite(exe.grad_dict["qkv"].numpy()).all()
    shapes = sorted(v.shape for v in exe.memory.values)
    assert shapes == [(seq, batch, heads * width)] * 2 + [(batch * heads, seq, seq)] * 4, exe.memory
    assert exe.memory.planned_bytes == exe.memory.lower_bound_aligned_bytes, exe.memory
