"""RotaryEmbedding (RoPE): equal to the reference implementations people copy (Hugging Face's
``rotate_half`` with a cos/sin table, Meta's Llama with complex numbers), the property it
exists for (rotated query-key products depend only on the distance between positions), its
float32 exactness at long positions, strides, in-place and accumulated gradients, the heads
transpose around it costing nothing, and its errors. Every dtype, NaN and finite
differences: the generic operator cases (``tests/operator_cases.py``, ``rotary_*``)."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from test_permuted_views import _copies
from tritonsym.ops import rotary as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts

S = ts.sym


def _hugging_face(x, positions, base=10000.0, rotary_dim=None):
    """Hugging Face Llama's ``apply_rotary_pos_emb`` on (..., positions, features): a table of
    cos and sin in ``x``'s dtype, the halves swapped by ``rotate_half``."""
    rotary_dim = x.shape[-1] if rotary_dim is None else rotary_dim
    inv_freq = 1.0 / (base ** (torch.arange(0, rotary_dim, 2, dtype=x.dtype) / rotary_dim))
    freqs = torch.outer(positions.to(x.dtype), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
    half = rotary_dim // 2
    rotated = torch.cat((-rot[..., half:], rot[..., :half]), dim=-1)
    return torch.cat((rot * emb.cos() + rotated * emb.sin(), rest), dim=-1)


def _meta(x, positions, base=10000.0):
    """Meta Llama's ``apply_rotary_emb``: neighbouring features as one complex number, times
    ``polar(1, angle)``."""
    features = x.shape[-1]
    freqs = 1.0 / (base ** (torch.arange(0, features, 2, dtype=torch.float64)[: features // 2] / features))
    angles = torch.outer(positions.to(torch.float64), freqs)
    turn = torch.polar(torch.ones_like(angles), angles)
    pairs = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(pairs * turn).flatten(-2)


def _bind(net, shapes, dtype="float64", grad_req="write"):
    return net.simple_bind(ts.cpu(), type_dict={n: dtype for n in shapes}, grad_req=grad_req, **shapes)


@pytest.mark.parametrize("settings", [dict(), dict(offset=5, base=500.0), dict(rotary_dim=6, offset=2),
                                      dict(interleaved=True), dict(interleaved=True, offset=9, base=30.0)],
                         ids=["halves", "offset_base", "partial", "interleaved", "interleaved_offset_base"])
def test_equals_hugging_face_and_meta_forward_and_backward_in_float64(settings, rng):
    """(batch, heads, positions, head_dim), the network's gradient against torch autograd of
    the reference implementation."""
    shape = (2, 3, 11, 10)
    x, head = rng.normal(size=shape), rng.normal(size=shape)
    exe = _bind(S.RotaryEmbedding(S.Variable("data"), **settings), {"data": shape})
    out = exe.forward(is_train=True, data=x)[0].numpy().copy()
    exe.backward([torch.as_tensor(head)])
    leaf = torch.tensor(x, requires_grad=True)
    positions = settings.get("offset", 0) + torch.arange(shape[2])
    if settings.get("interleaved"):
        want = _meta(leaf, positions, settings.get("base", 10000.0))
    else:
        want = _hugging_face(leaf, positions, settings.get("base", 10000.0), settings.get("rotary_dim"))
    want.backward(torch.as_tensor(head))
    np.testing.assert_allclose(out, want.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(exe.grad_dict["data"].numpy(), leaf.grad.numpy(), rtol=1e-12, atol=1e-13)


def test_rotated_query_key_products_depend_only_on_the_distance(rng):
    """The reason RoPE exists: <rope(q, m), rope(k, n)> is a function of m - n alone, so
    starting every position 37 later changes no score."""
    q, k = rng.normal(size=(1, 2, 9, 8)), rng.normal(size=(1, 2, 9, 8))
    scores = []
    for offset in (0, 37):
        rotated = [o.rotary(t, offset=offset) for t in (q, k)]
        exe = _bind(S.RotaryEmbedding(S.Variable("data"), offset=offset), {"data": q.shape})
        ours = [exe.forward(data=t)[0].numpy().copy() for t in (q, k)]
        np.testing.assert_allclose(ours, rotated, rtol=1e-12, atol=1e-13)
        scores.append(ours[0] @ np.swapaxes(ours[1], -1, -2))
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-11, atol=1e-12)
    assert not np.allclose(scores[0], q @ np.swapaxes(k, -1, -2), atol=1e-3)  # the rotation did something


@pytest.mark.parametrize("offset", [16384 - 64, 10**6])
def test_float32_at_long_positions_is_exact_where_float32_tables_are_not(offset, rng):
    """At position 16K a float32 angle is off by ~1e-3 radian: Hugging Face's float32 table
    gets outputs wrong by ~3e-3. The kernel computes each angle in float64 and turns it into
    [-pi, pi] before rounding, so float32 outputs are right to their own rounding, even at
    position 1M."""
    x = rng.normal(size=(2, 64, 128))
    truth = o.rotary(x, axis=1, offset=offset)
    exe = _bind(S.RotaryEmbedding(S.Variable("data"), axis=1, offset=offset), {"data": x.shape}, "float32")
    ours_error = np.abs(exe.forward(data=torch.tensor(x, dtype=torch.float32))[0].double().numpy() - truth).max()
    assert ours_error < 2e-6, ours_error
    table = _hugging_face(torch.tensor(x, dtype=torch.float32), offset + torch.arange(64))
    assert np.abs(table.double().numpy() - truth).max() > 100 * ours_error


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cosines_and_sines_in_every_quarter_turn(dtype):
    """The pair (1, 0) rotated comes out as (cos, sin) of its angle: 20,000 positions of 1
    radian each (every quarter turn many times, up to 1e6 radians with the offset) and a
    slower pair, against numpy's float64 cos and sin, to the rounding of the dtype."""
    positions, offset = 20000, 10**6 - 20000
    x = np.zeros((positions, 4))
    x[:, [0, 1]] = 1.0  # halves layout: pair i is features (i, i + 2)
    exe = _bind(S.RotaryEmbedding(S.Variable("data"), axis=0, base=100.0, offset=offset), {"data": x.shape}, dtype)
    out = exe.forward(data=x)[0].double().numpy()
    angle = (offset + np.arange(positions))[:, None] * np.array([1.0, 0.1])
    # float64: an angle near 1e6 is itself rounded by ~1e-10, and so is its cut into quarter turns
    atol = 2.5e-7 if dtype == "float32" else 1e-9
    np.testing.assert_allclose(out[:, :2], np.cos(angle), rtol=0, atol=atol)
    np.testing.assert_allclose(out[:, 2:], np.sin(angle), rtol=0, atol=atol)


def test_reads_and_writes_through_strides_in_place_and_accumulating(rng):
    x = torch.tensor(rng.normal(size=(3, 7, 2, 12)))
    view = x.transpose(1, 2)  # (3, 2, 7, 12): positions along axis 2, the heads a transposed view
    want = o.rotary(view.numpy(), rotary_dim=8, interleaved=True)
    out = torch.full((3, 7, 2, 12), float("nan"), dtype=torch.float64).transpose(1, 2)
    run(kernels.plan_rotary(view, out, rotary_dim=8, interleaved=True))
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12, atol=1e-13)
    before = out.clone()
    run(kernels.plan_rotary(view, out, rotary_dim=8, interleaved=True, inverse=True, accumulate=True))
    np.testing.assert_allclose(out.numpy(), before.numpy() + o.rotary(view.numpy(), rotary_dim=8, interleaved=True,
                                                                     transpose=True), rtol=1e-12, atol=1e-13)
    in_place = view.clone()
    launches = kernels.plan_rotary(in_place, in_place, rotary_dim=8, interleaved=True)
    assert len(launches) == 1  # the features past rotary_dim are already where they belong
    run(launches)
    np.testing.assert_allclose(in_place.numpy(), want, rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(kernels.plan_rotary(view, None, rotary_dim=8)[1].args[1].shape, (3, 2, 7, 4))


def test_rows_in_many_programs_and_pairs_in_several_steps(rng, monkeypatch):
    """Small tiles: rows split across programs and a row's pairs over several column steps."""
    monkeypatch.setattr(kernels, "TILE", 16)
    monkeypatch.setattr(kernels, "MAX_COLS", 4)
    x = torch.tensor(rng.normal(size=(5, 13, 22)))
    for settings in (dict(axis=1), dict(axis=0, interleaved=True, rotary_dim=18, offset=4)):
        out = torch.full_like(x, float("nan"))
        run(kernels.plan_rotary(x, out, **settings))
        np.testing.assert_allclose(out.numpy(), o.rotary(x.numpy(), **settings), rtol=1e-12, atol=1e-13)


def test_gradient_accumulates_and_the_heads_transpose_costs_nothing(rng):
    """A transformer's use: (B, L, H, D) -> transpose into heads -> RoPE -> attention. The
    transposes are views (no launch), and grad_req='add' adds the gradient."""
    shape = (2, 6, 2, 8)
    heads = (0, 2, 1, 3)
    q, k, v = (S.transpose(S.Variable(n), axes=heads) for n in ("q", "k", "v"))
    net = S.ScaledDotProductAttention(S.RotaryEmbedding(q, name="rope_q"), S.RotaryEmbedding(k, name="rope_k"), v,
                                      causal=True)
    shapes = {n: shape for n in ("q", "k", "v")}
    inputs = {n: rng.normal(size=shape) for n in shapes}
    head = rng.normal(size=(2, 2, 6, 8))
    exe = _bind(net, shapes, grad_req="add")
    assert _copies(exe) == 0
    for g in exe.grad_dict.values():
        g.fill_(1.0)
    exe.forward(is_train=True, **inputs)
    exe.backward([torch.as_tensor(head)])

    leaves = {n: torch.tensor(v, requires_grad=True) for n, v in inputs.items()}
    positions = torch.arange(shape[1])
    tq, tk, tv = (leaves[n].transpose(1, 2) for n in ("q", "k", "v"))
    want = torch.nn.functional.scaled_dot_product_attention(_hugging_face(tq, positions), _hugging_face(tk, positions),
                                                            tv, is_causal=True)
    want.backward(torch.as_tensor(head))
    np.testing.assert_allclose(exe.outputs[0].numpy(), want.detach().numpy(), rtol=1e-12, atol=1e-13)
    for name, leaf in leaves.items():
        np.testing.assert_allclose(exe.grad_dict[name].numpy(), 1.0 + leaf.grad.numpy(), rtol=1e-12, atol=1e-13,
                                   err_msg=name)


def test_errors_name_the_operator_the_argument_and_the_values(rng):
    data = S.Variable("data")
    with pytest.raises(ts.ShapeError, match=r"rope \(RotaryEmbedding\): axis=-1 is not a position axis of data of "
                                            r"shape \(2, 3, 4\)"):
        S.RotaryEmbedding(data, axis=-1, name="rope").infer_shape(data=(2, 3, 4))
    with pytest.raises(ts.ShapeError, match=r"odd number of features \(5\)"):
        S.RotaryEmbedding(data, name="rope").infer_shape(data=(2, 3, 5))
    with pytest.raises(ts.ShapeError, match=r"rotary_dim=8 is more than the 6 features"):
        S.RotaryEmbedding(data, rotary_dim=8, name="rope").infer_shape(data=(2, 3, 6))
    for bad, match in ((dict(rotary_dim=3), "rotary_dim=3 must be even"), (dict(base=0.0), "base=0.0 must be positive"),
                       (dict(offset=-1), "offset=-1 must not be negative"), (dict(base=float("nan")), "base")):
        with pytest.raises(ts.base.ParamError, match=r"RotaryEmbedding: " + match):
            S.RotaryEmbedding(data, **bad)
    x = torch.zeros(2, 3, 6)
    with pytest.raises(KernelArgumentError, match=r"rotary embedding: rotary_dim=7 must be even and between 2 and "
                                                  r"the 6 features"):
        kernels.plan_rotary(x, None, rotary_dim=7)
    with pytest.raises(KernelArgumentError, match=r"axis=2 is not a position axis"):
        kernels.plan_rotary(x, None, axis=2)
    with pytest.raises(KernelArgumentError, match=r"needs a position axis and a feature axis"):
        kernels.plan_rotary(torch.zeros(6), None)
    ts.test_utils.check_numeric_gradient(S.RotaryEmbedding(data, axis=0, rotary_dim=2, offset=3),
                                         {"data": rng.normal(size=(4, 5))})
