"""Node attributes (AttrScope, attr=, operator keywords) and the fluent Symbol methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from networks import blobs

import tritonsym as ts
from tritonsym import ParamError
from tritonsym.operators import register, unregister

S = ts.sym


def test_attributes_come_from_scopes_attr_and_keywords_the_last_winning():
    with ts.AttrScope(__group__="outer", ctx_group="a"):
        with ts.AttrScope(__group__="inner"):
            fc = S.FullyConnected(S.Variable("data"), num_hidden=2, name="fc", attr={"__note__": "mine"},
                                  ctx_group="b")
        after = S.Variable("after")
    plain = S.Variable("plain")
    assert fc.list_attr() == {"num_hidden": "2", "__group__": "inner", "__ctx_group__": "b", "__note__": "mine",
                              "ctx_group": "b"}
    assert fc.attr_dict()["fc_weight"] == {"__group__": "inner", "__ctx_group__": "b", "__note__": "mine",
                                           "ctx_group": "b"}
    assert after.list_attr() == {"__group__": "outer", "__ctx_group__": "a", "ctx_group": "a"}
    assert plain.list_attr() == {}
    # JSON keeps them, and parameters stay parameters
    again = S.load_json(fc.tojson())
    assert again.attr_dict() == fc.attr_dict()


def test_a_layer_lr_mult_keyword_reaches_its_weights_in_training():
    """``__lr_mult__=0`` on a layer freezes the weight and bias it creates (the optimizer
    reads the created variables' attributes), the other layer trains."""
    net = S.FullyConnected(S.Variable("data"), num_hidden=4, name="fc1", __lr_mult__=0)
    net = S.SoftmaxOutput(S.FullyConnected(S.Activation(net, act_type="relu"), num_hidden=3, name="fc2"),
                          name="softmax")
    x, y = blobs(16, features=5)
    mod = ts.mod.Module(net)
    mod.bind([("data", (8, 5))], [("softmax_label", (8,))])
    mod.init_params(ts.init.Xavier())
    before = mod.get_params()[0]
    mod.fit(ts.io.NDArrayIter(x, y, batch_size=8), num_epoch=2, optimizer_params={"learning_rate": 0.5})
    after = mod.get_params()[0]
    assert torch.equal(before["fc1_weight"], after["fc1_weight"]) and torch.equal(before["fc1_bias"],
                                                                                  after["fc1_bias"])
    assert not torch.equal(before["fc2_weight"], after["fc2_weight"])


def test_attribute_errors_are_named():
    with pytest.raises(ParamError, match=r"AttrScope: attribute __lr_mult__=0.5 must be a string"):
        ts.AttrScope(__lr_mult__=0.5)
    with pytest.raises(ParamError, match="Variable 'w': lr_mult='fast' must be a number"):
        S.Variable("w", lr_mult="fast")
    with pytest.raises(ParamError, match="FullyConnected.*group"):  # not an attribute key: an unknown parameter
        S.FullyConnected(S.Variable("data"), num_hidden=2, group="x")


def test_fluent_methods_are_the_operators():
    x = S.Variable("x")
    with S.NameManager():
        fluent = [x.exp(), x.softmax(axis=0), x.flatten(), x.log_softmax(), x.abs(), x.reshape((0, -1)),
                  x.transpose((1, 0)), x.expand_dims(axis=1), x.squeeze(), x.topk(k=2, ret_typ="value")]
    with S.NameManager():
        direct = [S.exp(x), S.softmax(x, axis=0), S.Flatten(x), S.log_softmax(x), S.abs(x), S.Reshape(x, shape=(0, -1)),
                  S.transpose(x, axes=(1, 0)), S.expand_dims(x, axis=1), S.squeeze(x), S.topk(x, k=2, ret_typ="value")]
    assert [f.tojson() for f in fluent] == [d.tojson() for d in direct]
    assert x.exp.__doc__.startswith("``exp(self")
    # a method exists only while its operator does (every one of MXNet's fluent methods has its
    # operator in this build: take one away and its method goes, put it back and it returns)
    assert x.sum.__doc__.startswith("``sum(self") and hasattr(x, "tile") and hasattr(x, "shape_array")
    op = unregister("shape_array")
    try:
        assert not hasattr(x, "shape_array")
    finally:
        register(op)
    assert x.shape_array(name="shape").tojson() == S.shape_array(x, name="shape").tojson()
    exe = x.sqrt().simple_bind(ts.cpu(), x=(2, 3))
    np.testing.assert_allclose(exe.forward(x=torch.full((2, 3), 4.0))[0].numpy(), 2.0)
