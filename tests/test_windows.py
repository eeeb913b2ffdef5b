"""A slice that is one run of its data's elements (along a leading axis, or after axes of size
1) is a window of the data's storage: the program makes it a view (``Value.window``) with no
launch and no memory forward, where it starts on ``WINDOW_ALIGN_BYTES``, and a copy where it
does not. The numbers are those of the copies either way (torch autograd in float64), also
where the window's storage is read or written by other operators around it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tritonsym as ts
from tritonsym.executor.program import WINDOW_ALIGN_BYTES

S = ts.sym


def _bind(net, shapes: dict, dtype="float64", **kwargs):
    return net.simple_bind(ts.cpu(), type_dict={n: dtype for n in net.list_arguments()}, **shapes, **kwargs)


def _forward_launches(exe, op: str) -> int:
    return sum(len(s.launches_for(True)) for s in exe._program.forward_steps if s.op.name == op)


def _windows(exe) -> list[str]:
    return [v.name for v in exe._program.values if v.window is not None]


def _run(exe, inputs: dict, heads: list) -> tuple[list, dict]:
    for name, value in inputs.items():
        exe.arg_dict[name][...] = torch.as_tensor(value)
    outs = [o.numpy().copy() for o in exe.forward(is_train=True)]
    exe.backward([torch.as_tensor(h) for h in heads])
    return outs, {n: g.numpy().copy() for n, g in exe.grad_dict.items() if g is not None}


def _torch(fn, inputs: dict, heads: list) -> tuple[list, dict]:
    leaves = {n: torch.tensor(v, requires_grad=True) for n, v in inputs.items()}
    outs = fn(**leaves)
    torch.autograd.backward(outs, [torch.as_tensor(h) for h in heads])
    return [o.detach().numpy() for o in outs], {n: t.grad.numpy() for n, t in leaves.items()}


def _assert_same(ours, theirs, tol=1e-12):
    for a, b in zip(ours[0], theirs[0]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    for name, grad in theirs[1].items():
        np.testing.assert_allclose(ours[1][name], grad, rtol=tol, atol=tol, err_msg=name)


def _fc(x, w, b):
    return x @ w.T + b


def test_a_window_of_an_internal_value_read_around_by_in_place_operators(rng):
    """x = FC(data); a window of x goes through relu (which may work in place) while x
    itself is read later, whole: the window is a view, and nothing writes over x early."""
    data = S.Variable("data")
    x = S.FullyConnected(data, num_hidden=6, flatten=False, name="fc")
    y = S.Activation(S.slice_axis(x, axis=0, begin=2, end=4, name="s"), act_type="relu")
    net = S.Group([S.FullyConnected(y, num_hidden=3, flatten=False, name="head"), x * 2.0])
    inputs = {"data": rng.normal(size=(5, 4, 3)), "fc_weight": rng.normal(size=(6, 3)),
              "fc_bias": rng.normal(size=6), "head_weight": rng.normal(size=(3, 6)), "head_bias": rng.normal(size=3)}
    heads = [rng.normal(size=(2, 4, 3)), rng.normal(size=(5, 4, 6))]

    def reference(data, fc_weight, fc_bias, head_weight, head_bias):
        x = _fc(data, fc_weight, fc_bias)
        return [_fc(torch.relu(x[2:4]), head_weight, head_bias), x * 2.0]

    exe = _bind(net, {"data": (5, 4, 3)})
    assert _windows(exe) == ["s_output"]
    assert _forward_launches(exe, "slice_axis") == 0
    _assert_same(_run(exe, inputs, heads), _torch(reference, inputs, heads))


def test_split_parts_of_an_argument_and_a_reshape_of_one(rng):
    """Three parts of the data (leading axis, squeezed) as views of the bound argument; one
    read through a reshape (a view of a view), one unused (a zero gradient)."""
    data = S.Variable("data")
    parts = S.split(data, num_outputs=3, axis=0, squeeze_axis=True, name="s")
    flat = S.Reshape(parts[1], shape=(-1,))
    net = S.Group([S.Activation(flat, act_type="tanh"), parts[0] * parts[0]])
    inputs = {"data": rng.normal(size=(3, 4, 6))}
    heads = [rng.normal(size=24), rng.normal(size=(4, 6))]

    def reference(data):
        return [torch.tanh(data[1].reshape(-1)), data[0] * data[0]]

    exe = _bind(net, {"data": (3, 4, 6)})
    assert _windows(exe) == ["s_output0", "s_output1", "s_output2"]
    assert _forward_launches(exe, "SliceChannel") == 0
    _assert_same(_run(exe, inputs, heads), _torch(reference, inputs, heads))
    assert not np.any(exe.grad_dict["data"].numpy()[2])


def test_a_window_as_an_output_of_the_network_beside_its_source(rng):
    data = S.Variable("data")
    x = S.exp(data)
    net = S.Group([S.slice_axis(x, axis=1, begin=1, end=3, name="s"), x])
    inputs = {"data": rng.normal(size=(1, 5, 4))}
    heads = [rng.normal(size=(1, 2, 4)), rng.normal(size=(1, 5, 4))]

    def reference(data):
        x = torch.exp(data)
        return [x[:, 1:3], x]

    exe = _bind(net, {"data": (1, 5, 4)})
    assert _windows(exe) == ["s_output"]
    _assert_same(_run(exe, inputs, heads), _torch(reference, inputs, heads))


def test_an_unaligned_window_stays_a_copy_with_the_same_numbers(rng):
    """float16 rows of 4 elements start 8 bytes apart: a window from row 1 would sit off the
    16-byte boundary the kernels are compiled for, so the slice copies; from row 2 it views."""
    assert WINDOW_ALIGN_BYTES == 16
    data = S.Variable("data")
    values = rng.normal(size=(5, 4)).astype(np.float16)
    for begin, views in ((1, False), (2, True)):
        net = S.slice_axis(data, axis=0, begin=begin, end=4) * 1.0
        exe = _bind(net, {"data": (5, 4)}, dtype="float16")
        assert bool(_windows(exe)) == views and _forward_launches(exe, "slice_axis") == (0 if views else 1)
        exe.arg_dict["data"][...] = torch.as_tensor(values)
        out = exe.forward(is_train=True)[0].numpy()
        np.testing.assert_array_equal(out, values[begin:4])


def test_split_parts_some_on_the_boundary_some_not(rng):
    """float16 parts of 4 elements: the first and third start on 16 bytes (views), the
    second 8 bytes in (a copy), in one step."""
    data = S.Variable("data")
    parts = S.split(data, num_outputs=3, axis=0, name="s")
    net = S.Group([p * 1.0 for p in parts])
    exe = _bind(net, {"data": (3, 4)}, dtype="float16")
    assert _windows(exe) == ["s_output0", "s_output2"] and _forward_launches(exe, "SliceChannel") == 1
    values = rng.normal(size=(3, 4)).astype(np.float16)
    exe.arg_dict["data"][...] = torch.as_tensor(values)
    for k, out in enumerate(exe.forward(is_train=True)):
        np.testing.assert_array_equal(out.numpy(), values[k:k + 1])


@pytest.mark.parametrize("case", ["middle_axis", "whole_axis"])
def test_a_slice_with_a_longer_axis_before_it_is_a_copy_unless_it_is_everything(case, rng):
    data = S.Variable("data")
    end = 4 if case == "whole_axis" else 3
    exe = _bind(S.slice_axis(data, axis=1, begin=0, end=end) * 1.0, {"data": (3, 4, 8)})
    assert bool(_windows(exe)) == (case == "whole_axis")
    values = rng.normal(size=(3, 4, 8))
    exe.arg_dict["data"][...] = torch.as_tensor(values)
    np.testing.assert_array_equal(exe.forward()[0].numpy(), values[:, :end])


def test_query_key_and_value_split_from_one_projection(rng):
    """A fused QKV projection: one FullyConnected, its heads stacked first, then split along
    that leading axis into attention's three inputs; the split launches nothing."""
    B, L, H, D = 2, 5, 2, 4
    x = S.Variable("x")
    qkv = S.FullyConnected(x, num_hidden=3 * H * D, flatten=False, name="qkv")
    stacked = S.transpose(S.Reshape(qkv, shape=(0, 0, 3, H, D)), axes=(2, 0, 3, 1, 4))  # (3, B, H, L, D)
    q, k, v = S.split(stacked, num_outputs=3, axis=0, squeeze_axis=True)
    net = S.ScaledDotProductAttention(q, k, v, causal=True)
    inputs = {"x": rng.normal(size=(B, L, 6)), "qkv_weight": rng.normal(size=(3 * H * D, 6)),
              "qkv_bias": rng.normal(size=3 * H * D)}
    heads = [rng.normal(size=(B, H, L, D))]

    def reference(x, qkv_weight, qkv_bias):
        q, k, v = _fc(x, qkv_weight, qkv_bias).reshape(B, L, 3, H, D).permute(2, 0, 3, 1, 4)
        return [torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)]

    exe = _bind(net, {"x": (B, L, 6)})
    assert len(_windows(exe)) == 3 and _forward_launches(exe, "SliceChannel") == 0
    _assert_same(_run(exe, inputs, heads), _torch(reference, inputs, heads))


def test_windows_hold_no_memory_of_their_own_in_the_plan_and_mirror_keeps_them_right(rng):
    """The windows are in no block of their own: the planned internal bytes drop by their
    size against MXNet's baseline (where a slice is a copy); a mirrored bind, which
    recomputes cheap values, computes the same numbers."""
    data = S.Variable("data")
    x = S.FullyConnected(data, num_hidden=8, flatten=False, name="fc")
    parts = S.split(S.Activation(x, act_type="tanh"), num_outputs=2, axis=0, name="s")
    net = S.MakeLoss(S.sum(parts[0] * parts[1]))
    shapes = {"data": (6, 5, 3)}
    exe = _bind(net, shapes)
    planned = {v.name for v in exe.memory.values}
    assert not planned & {"s_output0", "s_output1"} and len(_windows(exe)) == 2
    inputs = {"data": rng.normal(size=(6, 5, 3)), "fc_weight": rng.normal(size=(8, 3)), "fc_bias": rng.normal(size=8)}
    expected = _run(exe, inputs, [])
    mirrored = _bind(net, shapes, mirror=True)
    _assert_same(_run(mirrored, inputs, []), expected)

    def reference(data, fc_weight, fc_bias):
        y = torch.tanh(_fc(data, fc_weight, fc_bias))
        return [(y[:3] * y[3:]).sum().reshape(1)]

    _assert_same(expected, _torch(reference, inputs, [np.ones(1)]))


def test_a_slice_of_an_auxiliary_state_stays_a_copy():
    """BatchNorm writes its moving mean during a training forward: a view of it would be
    read after that write wherever its reader runs, so the slice copies it at its step."""
    x, mean = S.Variable("x"), S.Variable("mean")
    bn = S.BatchNorm(x, moving_mean=mean, name="bn", fix_gamma=False)
    net = S.Group([S.BlockGrad(bn), S.slice_axis(mean, axis=0, begin=0, end=4, name="s") * 1.0])
    exe = net.simple_bind(ts.cpu(), x=(3, 8), grad_req="null")
    assert _windows(exe) == [] and _forward_launches(exe, "slice_axis") == 1
