"""Shape operators: views cost no launch and no memory, MXNet's Reshape codes, Concat's
num_args from its inputs, and the errors that name the shapes."""

from __future__ import annotations

import numpy as np
import pytest

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym


@pytest.mark.parametrize("view", [lambda x: S.Reshape(x, shape=(0, -1)), lambda x: S.expand_dims(x, axis=1),
                                  lambda x: S.squeeze(S.expand_dims(x, axis=0)), lambda x: S.Flatten(x),
                                  lambda x: S.transpose(x, axes=(0, 1, 2))],
                         ids=["Reshape", "expand_dims", "squeeze", "Flatten", "transpose-identity"])
def test_a_view_shares_the_input_and_runs_no_launch(view):
    x = S.Variable("x")
    exe = view(x).simple_bind(ts.cpu(), x=(2, 3, 4), grad_req="null")
    out = exe.forward(x=np.arange(24.0).reshape(2, 3, 4))[0]
    assert out.data_ptr() == exe.arg_dict["x"].data_ptr()
    assert not any(step.launches for step in exe._program.forward_steps)


def test_reshape_codes_errors_name_the_shapes():
    x = S.Variable("x")
    with pytest.raises(ShapeError, match=r"-4 cannot split dimension 5 into \(2, -1\)"):
        S.Reshape(x, shape=(-4, 2, -1)).infer_shape(x=(5,))
    with pytest.raises(ShapeError, match="more than one -1"):
        S.Reshape(x, shape=(-1, -1)).infer_shape(x=(6,))
    with pytest.raises(ShapeError, match=r"cannot turn data of shape \(3, 3\) \(9 elements\) into shape \(5, 2\)"):
        S.Reshape(x, shape=(5, 2)).infer_shape(x=(3, 3))
    # the input's one unknown dimension comes back from the output
    assert S.Reshape(x, shape=(6, 4)).infer_shape_partial(x=(0, 4))[0] == [(6, 4)]


@pytest.mark.parametrize("codes,reverse,data,expected", [
    ((0, -1), False, (2, 0, 3), (2, 0)),  # the -1 of an unknown size is unknown
    ((-3, -2), False, (0, 3, 4), (0, 4)),  # a merge with an unknown dimension
    ((-3, -2), False, (2, 3, 0), (6, 0)),  # the copied rest keeps its unknown
    ((-4, 2, -1, -2), False, (0, 5), (2, 0, 5)),  # a split of an unknown dimension
    ((-4, -1, 3, 0), False, (0, 5), (0, 3, 5)),
    ((7, 0), False, (0, 4), (7, 4)),  # no code reads the unknown
    ((-1, 0), True, (0, 5, 4), (0, 4)),  # codes read from the right (MXNet: (10, 5, 4) gives (50, 4))
])
def test_reshape_carries_unknown_sizes_through_partial_inference(codes, reverse, data, expected):
    assert S.Reshape(S.Variable("x"), shape=codes, reverse=reverse).infer_shape_partial(x=data)[1] == [expected]


def test_slice_and_split_carry_unknown_sizes_through_partial_inference():
    x = S.Variable("x")
    assert S.slice_axis(x, axis=1, begin=1, end=3).infer_shape_partial(x=(0, 5))[1] == [(0, 2)]
    assert S.slice_axis(x, axis=0, begin=1, end=3).infer_shape_partial(x=(0, 5))[1] == [(0, 5)]
    assert S.split(x, num_outputs=2, axis=0).infer_shape_partial(x=(0, 6))[1] == [(0, 6), (0, 6)]
    assert S.split(x, num_outputs=3, axis=1, squeeze_axis=True).infer_shape_partial(x=(2, 0))[1] == [(2,)] * 3
    # once the size is known, every check still applies
    with pytest.raises(ShapeError, match="squeeze_axis needs parts of size 1"):
        S.split(x, num_outputs=3, axis=1, squeeze_axis=True).infer_shape(x=(2, 6))


def test_an_axis_past_the_rank_is_refused_naming_it():
    a, b = S.Variable("a"), S.Variable("b")
    with pytest.raises(ShapeError, match=r"dim=2 is out of range for inputs of 2 dimension"):
        S.Concat(a, b, dim=2).infer_shape(a=(2, 3), b=(2, 3))  # never along axis 0 instead
    with pytest.raises(ShapeError, match=r"axis=2 is out of range for data of shape \(2, 3\)"):
        S.slice_axis(a, axis=2, begin=0, end=1).infer_shape(a=(2, 3))
    assert S.Concat(a, b, dim=-2).infer_shape(a=(2, 3), b=(1, 3))[1] == [(3, 3)]


def test_concat_takes_num_args_from_its_inputs_and_checks_the_other_axes():
    a, b = S.Variable("a"), S.Variable("b")
    net = S.Concat(a, b, S.Variable("c"), dim=0)
    assert net.attr_dict()[net.name] == {"num_args": "3", "dim": "0"}
    assert net.list_arguments() == ["a", "b", "c"]
    with pytest.raises(ShapeError, match=r"differ outside dim=1"):
        S.Concat(a, b).infer_shape(a=(2, 3), b=(3, 3))
    with pytest.raises(TypeError, match="hyper-parameters go by keyword"):
        S.Concat(a, b, 1)
    again = S.load_json(net.tojson())
    assert again.infer_shape(a=(1, 2), b=(2, 2), c=(3, 2))[1] == [(6, 2)]


def test_split_and_slice_axis_errors():
    x = S.Variable("x")
    with pytest.raises(ShapeError, match=r"axis 1 of data \(2, 6\) has size 6, which num_outputs=4 does not divide"):
        S.split(x, num_outputs=4).infer_shape(x=(2, 6))
    with pytest.raises(ShapeError, match="squeeze_axis needs parts of size 1"):
        S.split(x, num_outputs=2, squeeze_axis=True).infer_shape(x=(2, 6))
    with pytest.raises(ShapeError, match=r"begin=3, end=2 is not a non-empty slice of an axis of length 5"):
        S.slice_axis(x, axis=1, begin=3, end=2).infer_shape(x=(2, 5))
    assert S.slice_axis(x, axis=0, begin=-1, end=None).infer_shape(x=(4, 2))[1] == [(1, 2)]


def test_split_v2_reads_indices_or_sections_as_mxnet():
    x = S.Variable("x")
    net = S.split_v2(x, (1, 3), axis=1)
    node = net.list_outputs()[0].rsplit("_", 1)[0]  # named as MXNet names it: _split_v2<n>
    assert node.startswith("_split_v2") and net.list_outputs() == [f"{node}_output{k}" for k in range(3)]
    assert net.infer_shape(x=(2, 6, 2))[1] == [(2, 1, 2), (2, 2, 2), (2, 3, 2)]
    assert x.split_v2(2, axis=0, squeeze_axis=True).infer_shape(x=(2, 6))[1] == [(6,), (6,)]
    with pytest.raises(ShapeError, match=r"indices=\(0, 3, 1\) cut into an empty or reversed part 1: \[3, 1\)"):
        S.split_v2(x, (3, 1), axis=1).infer_shape(x=(2, 6))
    with pytest.raises(ShapeError, match=r"axis 1 of data \(2, 6\) has size 6, which sections=4 does not divide"):
        S.split_v2(x, 4, axis=1).infer_shape(x=(2, 6))
    with pytest.raises(TypeError, match="indices_or_sections must be an int or a tuple of ints, got 2.5"):
        S.split_v2(x, 2.5)


def test_diag_depth_to_space_and_broadcast_axis_errors():
    x = S.Variable("x")
    assert S.diag(x, k=-1).infer_shape(x=(3,))[1] == [(4, 4)]
    assert S.diag(x, axis1=0, axis2=2).infer_shape(x=(2, 3, 4))[1] == [(3, 2)]
    with pytest.raises(ShapeError, match=r"diag: data \(2, 3\) has no diagonal k=3 on axes 0 and 1"):
        S.diag(x, k=3).infer_shape(x=(2, 3))
    with pytest.raises(ShapeError, match=r"diag: axis1=1 and axis2=-1 name the same axis"):
        S.diag(x, axis1=1, axis2=-1).infer_shape(x=(2, 3))
    with pytest.raises(ShapeError, match=r"depth_to_space: the 6 channels of data \(1, 6, 2, 2\) are not a multiple "
                                         r"of block_size² = 4"):
        S.depth_to_space(x, block_size=2).infer_shape(x=(1, 6, 2, 2))
    with pytest.raises(ShapeError, match=r"space_to_depth: the height 3 and width 4 of data \(1, 1, 3, 4\) must be"):
        S.space_to_depth(x, block_size=2).infer_shape(x=(1, 1, 3, 4))
    with pytest.raises(ShapeError, match=r"depth_to_space: data must have 4 axes"):
        S.depth_to_space(x, block_size=2).infer_shape(x=(4, 2, 2))
    with pytest.raises(ShapeError, match=r"axis 1 of data \(2, 3\) has size 3; only axes of size 1 broadcast"):
        S.broadcast_axis(x, axis=1, size=4).infer_shape(x=(2, 3))
    with pytest.raises(ShapeError, match=r"axis=\(0, 1\) and size=\(3,\) must have one length"):
        S.broadcast_axis(x, axis=(0, 1), size=3).infer_shape(x=(1, 1))


def test_flip_reads_through_negated_strides(rng):
    from tritonsym.ops import flip as kernels

    x = rng.normal(size=(3, 4, 5))
    for axes in [(0,), (1,), (2,), (0, 2), (0, 1, 2)]:
        out = kernels.plan_flip(torch_tensor(x), None, axes)
        out[0]()
        np.testing.assert_array_equal(out[0].args[1].numpy(), np.flip(x, axes))
    transposed = torch_tensor(x).transpose(0, 2)  # a strided source
    launches = kernels.plan_flip(transposed, None, (1,))
    launches[0]()
    np.testing.assert_array_equal(launches[0].args[1].numpy(), np.flip(np.swapaxes(x, 0, 2), 1))


def torch_tensor(a):
    import torch

    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize("build", [lambda x, y: S.reshape_like(x, y),
                                   lambda x, y: S.reshape_like(x, y, lhs_begin=1, rhs_begin=1, rhs_end=-1),
                                   lambda x, y: S.slice_like(x, y, axes=(0,))], ids=["reshape_like", "bounds",
                                                                                  "slice_like-leading"])
def test_reshape_like_and_a_leading_slice_like_share_the_input_and_run_no_launch(build):
    """reshape_like is a view; slice_like cutting the leading axis alone is one run of the data."""
    x, y = S.Variable("x"), S.Variable("y")
    exe = build(x, y).simple_bind(ts.cpu(), x=(4, 3, 2), y=(2, 3, 2, 2), grad_req="null")
    out = exe.forward(x=np.arange(24.0).reshape(4, 3, 2), y=np.zeros((2, 3, 2, 2)))[0]
    assert out.data_ptr() == exe.arg_dict["x"].data_ptr()
    assert not any(step.launches for step in exe._program.forward_steps)


def test_reshape_like_slice_like_and_crop_errors_name_the_shapes():
    x, y = S.Variable("x"), S.Variable("y")
    with pytest.raises(ShapeError, match=r"offset=\(5, 1\) and the crop \(3, 3\) leave data \(1, 2, 7, 8\)"):
        S.Crop(x, y, offset=(5, 1)).infer_shape(x=(1, 2, 7, 8), y=(1, 1, 3, 3))
    with pytest.raises(ShapeError, match=r"h_w=\(0, 0\) must be a height and a width of at least 1"):
        S.Crop(x).infer_shape(x=(1, 2, 7, 8))
    with pytest.raises(ShapeError, match=r"crop_like of shape \(3, 3\) must be \(batch, channels, height, width\)"):
        S.Crop(x, y).infer_shape(x=(1, 2, 7, 8), y=(3, 3))
    with pytest.raises(ShapeError, match=r"cannot turn data of shape \(2, 6\) \(12 elements\) into shape \(5, 2\)"):
        S.reshape_like(x, y).infer_shape(x=(2, 6), y=(5, 2))
    with pytest.raises(ShapeError, match=r"lhs_begin=2 comes after lhs_end=1"):
        S.reshape_like(x, y, lhs_begin=2, lhs_end=1).infer_shape(x=(2, 6, 1), y=(5, 2))
    with pytest.raises(ShapeError, match=r"axes=\(3,\) has 3, not an axis of both"):
        S.slice_like(x, y, axes=(3,)).infer_shape(x=(2, 6, 1), y=(1, 2, 1))
    with pytest.raises(ShapeError, match=r"shape_like \(1, 8\) is longer than data \(2, 6\) on axis 1"):
        S.slice_like(x, y).infer_shape(x=(2, 6), y=(1, 8))
