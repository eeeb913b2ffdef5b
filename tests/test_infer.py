"""Shape and dtype inference: both directions, partial results, and errors that name the
node, the operator, the input and the shapes."""

import networks
import pytest
import torch

import tritonsym as ts
from tritonsym import DTypeError, ParamError, ShapeError

S = ts.sym


def mlp():
    return networks.mlp((128,), 10, out="out")


def test_forward_inference():
    args, outs, aux = mlp().infer_shape(data=(32, 784))
    assert args == [(32, 784), (128, 784), (128,), (10, 128), (10,), (32,)]
    assert outs == [(32, 10)] and aux == []
    # positionally, in list_arguments() order
    assert mlp().infer_shape((32, 784))[0] == args


def test_smallest_ranks_each_operator_accepts():
    """The least an operator takes, as MXNet: FullyConnected flattens 1-d data to one
    feature per row; SoftmaxOutput's multi_output needs (batch, classes) and no more."""
    x = S.Variable("x")
    assert S.FullyConnected(x, num_hidden=3, name="fc").infer_shape(x=(5,)) == ([(5,), (3, 1), (3,)], [(5, 3)], [])
    assert S.FullyConnected(x, num_hidden=3, flatten=False, name="fc").infer_shape(x=(5,))[1] == [(3,)]
    assert S.SoftmaxOutput(x, multi_output=True, name="sm").infer_shape(x=(4, 6)) == ([(4, 6), (4,)], [(4, 6)], [])
    assert S.SoftmaxOutput(x, name="sm").infer_shape(x=(4,)) == ([(4,), (4,)], [(4,)], [])  # one class per row
    with pytest.raises(ShapeError, match=r"data has shape \(4,\); it needs a batch axis and a class axis"):
        S.SoftmaxOutput(x, multi_output=True, name="sm").infer_shape(x=(4,))


def test_backward_inference_from_consumer_and_variable_attribute():
    a, b = S.Variable("a"), S.Variable("b", shape=(4, 5))
    args, outs, _ = (a * b + 1.0).infer_shape()
    assert args == [(4, 5), (4, 5)] and outs == [(4, 5)]
    fc = S.FullyConnected(S.Variable("x"), num_hidden=3, flatten=False)
    assert fc.infer_shape(x=(2, 6, 7))[1] == [(2, 6, 3)]
    flat = S.FullyConnected(S.Flatten(S.Variable("x")), num_hidden=3)
    assert flat.infer_shape(x=(2, 6, 7))[0][1] == (3, 42)


def test_every_argument_given_positionally():
    shapes = [(32, 784), (128, 784), (128,), (10, 128), (10,), (32,)]
    assert mlp().infer_shape(*shapes) == (shapes, [(32, 10)], [])
    with pytest.raises(ParamError, match=r"infer_shape: 7 positional values for 6 arguments \(data, fc1_weight"):
        mlp().infer_shape(*shapes, (1,))


def test_shapes_that_travel_back_then_forward_again():
    """w decides b (forward), b decides u (backward), u decides a and then z (forward once
    more): the rules run until nothing changes, not for one sweep each way."""
    u, v, w, z = S.Variable("u"), S.Variable("v"), S.Variable("w"), S.Variable("z")
    b = u + v
    c = b + w
    d = (u * 2.0) + z
    args, outs, _ = S.Group([c, d]).infer_shape(w=(4, 3))
    assert dict(zip(S.Group([c, d]).list_arguments(), args)) == {n: (4, 3) for n in "uvwz"}
    assert outs == [(4, 3), (4, 3)]


def test_partial_and_incomplete():
    net = S.Variable("x") + S.Variable("y")
    with pytest.warns(UserWarning, match="cannot decide the shapes of x, y") as caught:
        assert net.infer_shape() == (None, None, None)
    assert caught[0].filename == __file__  # the warning points at the caller's line
    fc = S.FullyConnected(S.Variable("x"), num_hidden=3, name="fc")
    args, outs, _ = fc.infer_shape_partial(fc_weight=(3, 5))
    assert args == [None, (3, 5), (3,)] and outs == [None]


def test_partial_shapes_and_given_shapes_as_in_mxnet():
    """A 0 is a dimension not known yet: (0, 10) + (12, 0) is (12, 10) everywhere; a
    FullyConnected fills in its weight's features from partial data; a shape given to
    infer_shape overrides the variable's hint; a shape still partial is unknown to
    infer_shape and shown with its 0s by infer_shape_partial."""
    total = S.Variable("a", shape=(0, 10)) + S.Variable("b", shape=(12, 0))
    assert total.infer_shape() == ([(12, 10), (12, 10)], [(12, 10)], [])
    fc = S.FullyConnected(S.Variable("data"), name="fc", num_hidden=4)
    assert fc.infer_shape_partial(data=(0, 6))[0] == [(0, 6), (4, 6), (4,)]
    assert fc.infer_shape_partial(data=(0, 6))[1] == [(0, 4)]
    with pytest.warns(UserWarning, match="cannot decide the shapes of data"):
        assert fc.infer_shape(data=(0, 6)) == (None, None, None)
    assert S.Variable("b", shape=(4, 5)).infer_shape(b=(2, 2)) == ([(2, 2)], [(2, 2)], [])
    with pytest.raises(ShapeError, match=r"inputs must have one shape, got lhs \(0, 3\), rhs \(2, 4\)"):
        (S.Variable("x") + S.Variable("y")).infer_shape(x=(0, 3), y=(2, 4))


def test_inconsistent_shapes_name_node_operator_and_values():
    with pytest.raises(ShapeError, match=r"fc1 \(FullyConnected\): data has shape \(32, 100\) \(100 input features\) "
                                         r"but weight has shape \(128, 784\); num_hidden=128 expects \(128, 100\)"):
        mlp().infer_shape(data=(32, 100), fc1_weight=(128, 784))
    with pytest.raises(ShapeError, match=r"_plus0 \(elemwise_add\): inputs must have one shape, got lhs \(2, 3\), "
                                         r"rhs \(3, 2\)"):
        with S.NameManager():
            (S.Variable("a") + S.Variable("b")).infer_shape(a=(2, 3), b=(3, 2))
    with pytest.raises(ShapeError, match=r"out \(SoftmaxOutput\): label has shape \(7,\) but data of shape "
                                         r"\(32, 10\) expects \(32,\)"):
        mlp().infer_shape(data=(32, 784), out_label=(7,))
    with pytest.raises(ParamError, match="'dta' is not an argument of this symbol; its arguments are data"):
        mlp().infer_shape(dta=(1, 2))
    with pytest.raises(ParamError, match="data=.*is not a valid shape"):
        mlp().infer_shape(data="big")


def test_types():
    args, outs, _ = mlp().infer_type(data="float64")
    assert args == [torch.float64] * 6 and outs == [torch.float64]
    args, _, _ = mlp().infer_type(data=torch.bfloat16)
    assert args[-1] == torch.float32, "half-precision data keeps float32 labels (class indices)"
    import numpy as np

    assert mlp().infer_type(data=np.float16)[1] == [torch.float16]
    assert mlp().infer_type(out_label="int64", data="float32")[0][-1] == torch.int64
    assert (S.Variable("a") + S.Variable("b")).infer_type() == (None, None, None)
    with pytest.raises(DTypeError, match=r"input 1 dtype is float16 but float64 is expected"):
        (S.Variable("a") + S.Variable("b")).infer_type(a="float64", b="float16")
    with pytest.raises(DTypeError, match="unknown dtype 'float128'"):
        mlp().infer_type(data="float128")
