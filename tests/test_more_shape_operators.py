"""slice (crop), SwapAxis (swapaxes), tile, repeat, stack, add_n (ElementWiseSum),
zeros_like and ones_like beyond their generic operator cases: slice's clipping against
Python's slices, its views, its refusals; the stride-0 reads of tile and repeat; inputs given
twice to stack and add_n; the names MXNet gives alias calls."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


def _run(net, head_seed=0, **values):
    exe = net.simple_bind(ts.cpu(), type_dict={k: torch.float64 for k in values},
                          **{k: v.shape for k, v in values.items()})
    out = exe.forward(is_train=True, **{k: torch.from_numpy(v) for k, v in values.items()})[0].numpy().copy()
    head = np.random.default_rng(head_seed).normal(size=out.shape)
    exe.backward([torch.from_numpy(head)])
    return exe, out, head


@pytest.mark.parametrize("begin,end,step", [
    ((b,), (e,), (s,)) for b, e, s in itertools.product((None, -9, -4, -1, 0, 2, 5, 9), (None, -9, -2, 0, 3, 9),
                                                         (None, 1, 2, -1, -3))])
def test_slice_clips_as_pythons_slices_do(begin, end, step):
    """Every begin/end/step against Python's slice of an axis of 6 (where MXNet gives an answer,
    the same: recorded in tests/data/mxnet); an empty slice is refused."""
    x = np.arange(6 * 2, dtype=np.float64).reshape(6, 2)
    want = x[slice(begin[0], end[0], step[0])]
    net = S.slice(S.Variable("x"), begin=begin, end=end, step=step)
    if want.shape[0] == 0:
        with pytest.raises(ShapeError, match=r"selects nothing from axis 0 of length 6"):
            net.infer_shape(x=x.shape)
        return
    exe, out, head = _run(net, x=x)
    np.testing.assert_array_equal(out, want)
    grad = np.zeros_like(x)
    grad[slice(begin[0], end[0], step[0])] = head
    np.testing.assert_array_equal(exe.grad_dict["x"].numpy(), grad)


def test_slice_of_leading_rows_is_a_view_and_strided_slices_copy():
    x = S.Variable("x")
    exe = S.slice(x, begin=(1,), end=(3,)).simple_bind(ts.cpu(), x=(5, 4), grad_req="null")
    out = exe.forward(x=np.arange(20.0).reshape(5, 4))[0]
    assert out.data_ptr() == exe.arg_dict["x"].data_ptr() + 1 * 4 * exe.arg_dict["x"].element_size()
    assert not any(step.launches for step in exe._program.forward_steps)
    exe = S.slice(x, begin=(None, 1), end=(None, None), step=(2, -1)).simple_bind(ts.cpu(), x=(5, 4), grad_req="null")
    np.testing.assert_array_equal(exe.forward(x=np.arange(20.0).reshape(5, 4))[0].numpy(),
                                  np.arange(20.0).reshape(5, 4)[::2, 1::-1])


def test_slice_refusals_name_the_parameters():
    x = S.Variable("x")
    with pytest.raises(ParamError, match="step=.*has a step of 0"):
        S.slice(x, begin=(0,), end=(2,), step=(0,))
    with pytest.raises(ShapeError, match=r"begin=\(0, 0, 0\) slices 3 axes of data with 2"):
        S.slice(x, begin=(0, 0, 0), end=(1, 1, 1)).infer_shape(x=(4, 6))
    with pytest.raises(ShapeError, match="must have one length"):
        S.slice(x, begin=(0,), end=(1, 2)).infer_shape(x=(4, 6))
    with pytest.raises(ParamError, match="not a valid tuple of integers or Nones"):
        S.slice(x, begin="(1.5,)", end=(2,))
    # JSON keeps the Nones as MXNet writes them, and loads them back
    net = S.slice(x, begin=(1, None), end=(None, -1), step=(2, None), name="s")
    assert net.attr_dict()["s"] == {"begin": "(1, None)", "end": "(None, -1)", "step": "(2, None)"}
    assert S.load_json(net.tojson()).infer_shape(x=(5, 4))[1] == [(2, 3)]


def test_swap_axis_of_an_axis_with_itself_is_a_view():
    x = S.Variable("x")
    exe = S.SwapAxis(x, dim1=1, dim2=1).simple_bind(ts.cpu(), x=(2, 3, 4), grad_req="null")
    out = exe.forward(x=np.arange(24.0).reshape(2, 3, 4))[0]
    assert out.data_ptr() == exe.arg_dict["x"].data_ptr()
    with pytest.raises(ShapeError, match="dim1=0, dim2=3: 3 is not an axis of data with 3"):
        S.swapaxes(x, dim1=0, dim2=3).infer_shape(x=(2, 3, 4))


def test_tile_and_repeat_match_numpy_and_sum_their_gradients(rng):
    x = rng.normal(size=(2, 3, 4))
    for net, want, grad in [
        (S.tile(S.Variable("x"), reps=(2, 1, 1, 3)), np.tile(x, (2, 1, 1, 3)),
         lambda h: h.reshape(2, 1, 1, 2, 1, 3, 3, 4).sum((0, 2, 4, 6)).reshape(2, 3, 4)),
        (S.repeat(S.Variable("x"), repeats=4, axis=1), np.repeat(x, 4, axis=1),
         lambda h: h.reshape(2, 3, 4, 4).sum(2)),
        (S.repeat(S.Variable("x"), repeats=1, axis=0), x, lambda h: h),
    ]:
        exe, out, head = _run(net, x=x)
        np.testing.assert_array_equal(out, want)
        np.testing.assert_allclose(exe.grad_dict["x"].numpy(), grad(head), rtol=1e-12, atol=1e-12)
    with pytest.raises(ParamError, match=r"tile: reps=\(2, 0\) must hold positive counts"):
        S.tile(S.Variable("x"), reps=(2, 0))
    with pytest.raises(ParamError, match="repeat: repeats=0 must be positive"):
        S.repeat(S.Variable("x"), repeats=0)


def test_an_input_given_twice_to_stack_and_add_n_gets_both_gradients(rng):
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    x, y = S.Variable("a"), S.Variable("b")
    exe, out, head = _run(S.stack(x, y, x, axis=-1), a=a, b=b)
    np.testing.assert_array_equal(out, np.stack([a, b, a], -1))
    np.testing.assert_array_equal(exe.grad_dict["a"].numpy(), head[..., 0] + head[..., 2])
    exe, out, head = _run(S.add_n(y, x, x), a=a, b=b)
    np.testing.assert_array_equal(out, (b + a) + a)
    np.testing.assert_array_equal(exe.grad_dict["a"].numpy(), head + head)
    np.testing.assert_array_equal(exe.grad_dict["b"].numpy(), head)
    with pytest.raises(ShapeError, match="inputs must have one shape"):
        S.add_n(x, y).infer_shape(a=(3, 4), b=(4, 3))
    with pytest.raises(ShapeError, match="must all have one shape"):
        S.stack(x, y).infer_shape(a=(3, 4), b=(4, 3))


@pytest.mark.parametrize("places", [2, 3, 4])
def test_an_input_over_the_head_gradient_given_again_counts_each_place(places, rng):
    """add_n(t, t, t) of a computed t: t's gradient array is the output gradient itself, and
    the later places must add the head gradient, not what the earlier ones made of it (a
    random network found 4x where 3x was due)."""
    x = S.Variable("x")
    t = S.transpose(x, axes=(1, 0))
    exe, out, head = _run(S.add_n(*[t] * places, S.transpose(S.Variable("y"), axes=(1, 0))),
                          x=rng.normal(size=(2, 3)), y=rng.normal(size=(2, 3)))
    np.testing.assert_array_equal(exe.grad_dict["x"].numpy(), (head * places).T)
    np.testing.assert_array_equal(exe.grad_dict["y"].numpy(), head.T)


def test_add_n_gives_the_first_gradient_the_head_gradients_storage():
    x, y = S.Variable("a"), S.Variable("b")
    net = S.add_n(x, y) * 2.0
    exe = net.simple_bind(ts.cpu(), a=(3, 4), b=(3, 4))
    exe.forward(is_train=True, a=torch.ones(3, 4), b=torch.ones(3, 4))
    exe.backward([torch.ones(3, 4)])
    np.testing.assert_array_equal(exe.grad_dict["a"].numpy(), 2.0)
    np.testing.assert_array_equal(exe.grad_dict["b"].numpy(), 2.0)


def test_fill_like_reads_only_the_shape_and_gives_no_gradient():
    x = S.Variable("x")
    net = S.Group([S.zeros_like(x), S.ones_like(x) * x])
    exe = net.simple_bind(ts.cpu(), x=(2, 3))
    nan = torch.full((2, 3), float("nan"))
    outs = exe.forward(is_train=True, x=nan)
    np.testing.assert_array_equal(outs[0].numpy(), 0.0)  # NaN data, but its values are never read
    exe.backward([torch.ones(2, 3), torch.ones(2, 3)])
    np.testing.assert_array_equal(exe.grad_dict["x"].numpy(), 1.0)  # only the product's


@pytest.mark.parametrize("call,mxnet_name", [
    (lambda x: S.Softmax(x), "softmax0"), (lambda x: S.SoftmaxOutput(x), "softmaxoutput0"),
    (lambda x: S.swapaxes(x), "swapaxes0"), (lambda x: S.SwapAxis(x), "swapaxis0"),
    (lambda x: S.crop(x, begin=(0,), end=(1,)), "crop0"), (lambda x: S.ElementWiseSum(x, x), "elementwisesum0"),
    (lambda x: S.reverse(x, axis=0), "reverse0"), (lambda x: S.stop_gradient(x), "stop_gradient0"),
    (lambda x: S.sum_axis(x), "sum_axis0"), (lambda x: x.astype("float16"), "cast0"),
    (lambda x: x.swapaxes(dim1=0, dim2=1), "swapaxes0"), (lambda x: x.flatten(), "flatten0")])
def test_an_alias_call_is_named_after_the_alias_as_in_mxnet(call, mxnet_name):
    """MXNet names a node after the function called (recorded: tests/data/mxnet, names/*)."""
    with S.NameManager():
        net = call(S.Variable("x"))
    assert net.name == mxnet_name
    if mxnet_name.startswith("softmax"):
        assert net.list_arguments() == ["x", f"{mxnet_name}_label"]
