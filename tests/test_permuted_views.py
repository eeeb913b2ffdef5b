"""Transposes next to operators that read and write through strides cost nothing: the
program makes them permuted views (``program._permutations_as_views``), forward and
backward, and the numbers are those of the copies they replace (torch autograd in float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tritonsym as ts

S = ts.sym
B, L, H, D = 2, 7, 3, 4  # batch, positions, heads, features per head
HEADS = (0, 2, 1, 3)  # (B, L, H, D) <-> (B, H, L, D): its own inverse


def _copies(exe) -> int:
    """Launches of transposes left in the bound program, forward and backward."""
    program = exe._program
    return sum(len(s.launches_for(True)) for s in program.forward_steps + program.backward_steps
               if s.op.name == "transpose")


def _bind(net, shapes: dict, grad_req="write"):
    return net.simple_bind(ts.cpu(), type_dict={n: "float64" for n in net.list_arguments()}, grad_req=grad_req,
                           **shapes)


def _run(exe, inputs: dict, head: np.ndarray) -> tuple[np.ndarray, dict]:
    for name, value in inputs.items():
        exe.arg_dict[name][...] = torch.as_tensor(value)
    out = exe.forward(is_train=True)[0].numpy().copy()
    exe.backward([torch.as_tensor(head)])
    return out, {n: g.numpy().copy() for n, g in exe.grad_dict.items() if g is not None}


def _torch_grads(fn, inputs: dict, head: np.ndarray) -> tuple[np.ndarray, dict]:
    leaves = {n: torch.tensor(v, requires_grad=True) for n, v in inputs.items()}
    out = fn(**leaves)
    out.backward(torch.as_tensor(head))
    return out.detach().numpy(), {n: t.grad.numpy() for n, t in leaves.items()}


def _attention(q, k, v, causal=True):
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)


def _assert_same(ours, theirs):
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12, atol=1e-12)
    for name, grad in theirs[1].items():
        np.testing.assert_allclose(ours[1][name], grad, rtol=1e-12, atol=1e-12, err_msg=name)


def test_heads_split_and_merged_around_attention_cost_no_launch_and_match_torch(rng):
    """A transformer's attention: FullyConnected -> Reshape -> transpose into heads ->
    attention -> transpose back -> Reshape -> FullyConnected, with no transpose launch."""
    x = S.Variable("x")

    def project(name):
        y = S.FullyConnected(x, num_hidden=H * D, flatten=False, name=name)
        return S.transpose(S.Reshape(y, shape=(0, 0, H, -1)), axes=HEADS)

    att = S.ScaledDotProductAttention(project("q"), project("k"), project("v"), causal=True)
    net = S.FullyConnected(S.Reshape(S.transpose(att, axes=HEADS), shape=(0, 0, -3)), num_hidden=5, flatten=False,
                           name="proj")
    inputs = {"x": rng.normal(size=(B, L, 6))}
    for name in ("q", "k", "v", "proj"):
        inputs[f"{name}_weight"] = rng.normal(size=(5 if name == "proj" else H * D, 6 if name != "proj" else H * D))
        inputs[f"{name}_bias"] = rng.normal(size=inputs[f"{name}_weight"].shape[0])
    head = rng.normal(size=(B, L, 5))

    def reference(x, **p):
        def proj(name, t):
            return t @ p[f"{name}_weight"].T + p[f"{name}_bias"]
        q, k, v = (proj(n, x).reshape(B, L, H, D).permute(HEADS) for n in "qkv")
        return proj("proj", _attention(q, k, v).permute(HEADS).reshape(B, L, H * D))

    exe = _bind(net, {"x": (B, L, 6)})
    assert _copies(exe) == 0
    _assert_same(_run(exe, inputs, head), _torch_grads(reference, inputs, head))


def test_a_transposed_argument_read_elsewhere_too_sums_its_gradients(rng):
    """The argument's gradient gets attention's contribution through the permuted view and
    the other reader's into the same array: one writes, the other adds."""
    x = S.Variable("x")
    q = S.transpose(x, axes=HEADS)
    net = S.ScaledDotProductAttention(q, q, q, causal=False) + S.transpose(x * 3.0, axes=HEADS)
    inputs, head = {"x": rng.normal(size=(B, L, H, D))}, rng.normal(size=(B, H, L, D))
    exe = _bind(net, {"x": (B, L, H, D)})

    def reference(x):
        q = x.permute(HEADS)
        return _attention(q, q, q, causal=False) + (x * 3.0).permute(HEADS)

    _assert_same(_run(exe, inputs, head), _torch_grads(reference, inputs, head))
    assert _copies(exe) == 2  # the second transpose's reader (+) reads contiguous arrays: a copy each way


def test_grad_req_add_adds_through_the_permuted_view(rng):
    x, k, v = S.Variable("x"), S.Variable("k"), S.Variable("v")
    net = S.ScaledDotProductAttention(S.transpose(x, axes=HEADS), k, v)
    shapes = {"x": (B, L, H, D), "k": (B, H, 5, D), "v": (B, H, 5, D)}
    inputs = {name: rng.normal(size=shape) for name, shape in shapes.items()}
    head = rng.normal(size=(B, H, L, D))
    exe = _bind(net, shapes, grad_req="add")
    assert _copies(exe) == 0
    exe.grad_dict["x"][...] = 1.5
    _, grads = _run(exe, inputs, head)
    _, expected = _torch_grads(lambda x, k, v: _attention(x.permute(HEADS), k, v, causal=False), inputs, head)
    np.testing.assert_allclose(grads["x"], expected["x"] + 1.5, rtol=1e-12, atol=1e-12)


def test_attention_output_transposed_as_the_network_output(rng):
    """The output case alone: attention writes straight into the transposed output, and
    reads its head gradient through the same view."""
    q, k, v = S.Variable("q"), S.Variable("k"), S.Variable("v")
    net = S.transpose(S.ScaledDotProductAttention(q, k, v, causal=True), axes=HEADS)
    inputs = {n: rng.normal(size=(B, H, L, D)) for n in "qkv"}
    head = rng.normal(size=(B, L, H, D))
    exe = _bind(net, {n: (B, H, L, D) for n in "qkv"})
    assert _copies(exe) == 0
    assert exe._program.outputs[0].permute is None  # the network's output is a plain array
    _assert_same(_run(exe, inputs, head),
                 _torch_grads(lambda q, k, v: _attention(q, k, v).permute(HEADS), inputs, head))


@pytest.mark.parametrize("case", ["read as contiguous", "read twice"])
def test_a_transpose_that_cannot_be_a_view_stays_a_copy(case, rng):
    """An argument transposed for an activation (which reads contiguous arrays, and no
    operator made the argument), or an attention output read by something else too: the
    copies stay, and so do the numbers."""
    q, k, v = S.Variable("q"), S.Variable("k"), S.Variable("v")
    if case == "read as contiguous":
        net = S.ScaledDotProductAttention(S.Activation(S.transpose(q, axes=HEADS), act_type="tanh"), k, v)
        shapes = {"q": (B, L, H, D), "k": (B, H, L, D), "v": (B, H, L, D)}
        expected_copies, head = 2, rng.normal(size=(B, H, L, D))

        def reference(q, k, v):
            return _attention(torch.tanh(q.permute(HEADS)), k, v, causal=False)
    else:
        att = S.ScaledDotProductAttention(q, k, v, causal=True)
        net = S.transpose(att, axes=HEADS) + S.transpose(att * 2.0, axes=HEADS)
        shapes = {n: (B, H, L, D) for n in "qkv"}
        expected_copies, head = 4, rng.normal(size=(B, L, H, D))

        def reference(q, k, v):
            out = _attention(q, k, v)
            return out.permute(HEADS) + (out * 2.0).permute(HEADS)
    inputs = {name: rng.normal(size=shape) for name, shape in shapes.items()}
    exe = _bind(net, shapes)
    assert _copies(exe) == expected_copies
    _assert_same(_run(exe, inputs, head), _torch_grads(reference, inputs, head))


def test_an_inference_bind_and_the_memory_it_saves(rng):
    """Inference gives the training forward's numbers; a training bind plans less memory
    than the same network with the transposes as copies (an activation forces them)."""
    def network(copies: bool):
        x = S.Variable("x")
        q = S.transpose(x, axes=HEADS)
        if copies:
            q = S.Activation(q, act_type="relu")  # reads contiguous arrays: the transpose is a copy
        att = S.ScaledDotProductAttention(q, q, q)
        return S.transpose(att, axes=HEADS) * 2.0

    shapes = {"x": (4, 64, 8, 16)}
    fused, copied = _bind(network(False), shapes), _bind(network(True), shapes)
    assert _copies(fused) == 0 and _copies(copied) == 2  # the output's transpose is a view in both
    one_array = 4 * 64 * 8 * 16 * 8  # bytes of one float64 activation
    assert copied.memory.planned_bytes - fused.memory.planned_bytes >= one_array
    x = np.abs(rng.normal(size=shapes["x"]))
    fused.arg_dict["x"][...] = torch.as_tensor(x)
    trained = fused.forward(is_train=True)[0].numpy().copy()
    inference = network(False).simple_bind(ts.cpu(), type_dict={"x": "float64"}, grad_req="null", **shapes)
    assert _copies(inference) == 0
    inference.arg_dict["x"][...] = torch.as_tensor(x)
    np.testing.assert_array_equal(inference.forward(is_train=False)[0].numpy(), trained)


def test_the_transformer_model_splits_and_merges_heads_for_free():
    """tritonsym.models' transformer (the train command's and the benchmark's): no transpose
    launch and no transpose step left, forward or backward."""
    from tritonsym.models import transformer

    cfg = transformer.Config(vocab=11, max_len=9, width=8, heads=2, layers=2)
    exe = transformer.decoder(9, cfg).simple_bind(ts.cpu(), data=(3, 9), softmax_label=(3, 9))
    program = exe._program
    assert not [s.name for s in program.forward_steps + program.backward_steps if s.op.name == "transpose"]
    assert sum(v.permute is not None for v in program.values) == cfg.layers * 4 * 2  # 4 per block, and their grads


def test_one_array_read_as_itself_and_as_a_permuted_view_by_one_operator(rng):
    """attention(x, transpose(x), v) with as many heads as positions: one gradient array
    reached through two layouts; the view's gradient goes through scratch, added after."""
    x, v = S.Variable("x"), S.Variable("v")
    net = S.ScaledDotProductAttention(x, S.transpose(x, axes=HEADS), v)
    shapes = {"x": (B, 5, 5, D), "v": (B, 5, 5, D)}
    inputs = {name: rng.normal(size=shape) for name, shape in shapes.items()}
    head = rng.normal(size=(B, 5, 5, D))
    exe = _bind(net, shapes)
    assert _copies(exe) == 0
    step = next(s for s in exe._program.backward_steps if s.op.name == "ScaledDotProductAttention")
    assert [grad.permute for _, grad in step.repeated_grads] == [HEADS]  # the view's, through scratch
    _assert_same(_run(exe, inputs, head),
                 _torch_grads(lambda x, v: _attention(x, x.permute(HEADS), v, causal=False), inputs, head))


@pytest.mark.parametrize("grad_req", ["write", "add"])
def test_attention_written_with_batch_dot_moves_no_heads(grad_req, rng):
    """Attention by hand: heads split by transposes into batch_dot (scores, then scores times
    values) and merged back by one after it. batch_dot reads and writes through strides,
    so no transpose is copied; the (batch, heads) axes of the views do not merge, so each
    product is one launch per batch entry."""
    x = S.Variable("x")

    def project(name):
        y = S.FullyConnected(x, num_hidden=H * D, flatten=False, name=name)
        return S.transpose(S.Reshape(y, shape=(0, 0, H, -1)), axes=HEADS)

    scores = S.batch_dot(project("q"), project("k"), transpose_b=True) * (1 / np.sqrt(D))
    att = S.batch_dot(S.softmax(scores, axis=-1), project("v"))
    net = S.Reshape(S.transpose(att, axes=HEADS), shape=(0, 0, -3))
    inputs = {"x": rng.normal(size=(B, L, 6))}
    for name in "qkv":
        inputs[f"{name}_weight"] = rng.normal(size=(H * D, 6))
        inputs[f"{name}_bias"] = rng.normal(size=H * D)
    head = rng.normal(size=(B, L, H * D))

    def reference(x, **p):
        q, k, v = ((x @ p[f"{n}_weight"].T + p[f"{n}_bias"]).reshape(B, L, H, D).permute(HEADS) for n in "qkv")
        p = torch.softmax(q @ k.transpose(-1, -2) / np.sqrt(D), -1)
        return (p @ v).permute(HEADS).reshape(B, L, H * D)

    exe = _bind(net, {"x": (B, L, 6)}, grad_req=grad_req)
    assert _copies(exe) == 0
    products = [s for s in exe._program.forward_steps if s.op.name == "batch_dot"]
    assert [len(s.launches) for s in products] == [B, B]
    ours = _run(exe, inputs, head) if grad_req == "write" else None
    if grad_req == "add":
        for g in exe.grad_dict.values():
            g[...] = 0.25
        out, grads = _run(exe, inputs, head)
        ours = out, {n: g - 0.25 for n, g in grads.items()}
    _assert_same(ours, _torch_grads(reference, inputs, head))
