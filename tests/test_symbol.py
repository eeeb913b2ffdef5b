"""The Symbol API: naming, listing, indexing, attributes, composition, arithmetic, printing."""

import pytest

import tritonsym as ts
from tritonsym import ParamError

S = ts.sym


@pytest.fixture(autouse=True)
def fresh_names():
    with S.NameManager():
        yield


def test_automatic_names_and_implicit_inputs():
    a, b = S.Variable("a"), S.Variable("b")
    assert (a + b).name == "_plus0"
    assert (a + b).name == "_plus1"
    assert (a - b).name == "_minus0" and (a * b).name == "_mul0" and (a / b).name == "_div0"
    assert (a + 1).name == "_plusscalar0" and (1 - a).name == "_rminusscalar0"
    assert (2 / a).name == "_rdivscalar0" and (a ** 2).name == "_powerscalar0" and (2 ** a).name == "_rpower_scalar0"
    neg = -a
    assert neg.name == "_mulscalar0" and neg.attr("scalar") == "-1.0"
    fc = S.FullyConnected(a, num_hidden=3)
    assert fc.name == "fullyconnected0"
    assert fc.list_arguments() == ["a", "fullyconnected0_weight", "fullyconnected0_bias"]
    out = S.SoftmaxOutput(S.FullyConnected(num_hidden=2, name="fc"), name="out")
    assert out.list_arguments() == ["fc_data", "fc_weight", "fc_bias", "out_label"]
    assert S.Activation(a, act_type="relu").name == "activation0"
    # An input given as None is not given, as in MXNet: a helper's ``weight=None`` default works.
    assert S.FullyConnected(a, weight=None, bias=None, num_hidden=3, name="h").list_arguments() == \
        ["a", "h_weight", "h_bias"]
    assert S.FullyConnected(a, bias=None, num_hidden=3, no_bias=True, name="n").list_arguments() == ["a", "n_weight"]


def test_prefix():
    with S.Prefix("enc_"):
        fc = S.FullyConnected(S.Variable("x"), num_hidden=2, name="fc")
        auto = S.Activation(fc, act_type="tanh")
    assert fc.list_arguments() == ["x", "enc_fc_weight", "enc_fc_bias"]
    assert auto.name == "enc_activation0"


def test_lists_and_internals():
    net = S.FullyConnected(S.Variable("data"), num_hidden=4, name="fc1")
    net = S.Activation(net, act_type="relu", name="relu1")
    net = S.SoftmaxOutput(net, name="out")
    assert net.list_outputs() == ["out_output"]
    assert net.list_auxiliary_states() == []
    assert net.list_inputs() == net.list_arguments()
    internals = net.get_internals()
    assert internals.list_outputs() == ["data", "fc1_weight", "fc1_bias", "fc1_output", "relu1_output",
                                        "out_label", "out_output"]
    fc1 = internals["fc1_output"]
    assert fc1.name == "fc1" and fc1.list_arguments() == ["data", "fc1_weight", "fc1_bias"]
    assert internals[3].name == "fc1" and internals[-1].name == "out"
    assert net.get_children().list_outputs() == ["relu1_output", "out_label"]
    assert S.Variable("v").get_children() is None
    with pytest.raises(KeyError, match="'nope' is not an output of this symbol; its outputs are data"):
        internals["nope"]
    with pytest.raises(IndexError, match="index=1 is out of range for a symbol with 1 outputs"):
        net[1]
    assert internals[-7].name == "data"  # negative positions count from the end, to the first
    with pytest.raises(IndexError, match="index=-8 is out of range for a symbol with 7 outputs"):
        internals[-8]
    for index in (1.0, True):
        with pytest.raises(TypeError, match=f"indexed by output position or name, not {type(index).__name__}"):
            internals[index]


def test_group_iteration_and_repr():
    a, b = S.Variable("a"), S.Variable("b")
    group = S.Group([a * 2, S.Activation(b, act_type="tanh", name="t")])
    assert len(group) == 2
    assert [s.name for s in group] == ["_mulscalar0", "t"]
    assert group.list_outputs() == ["_mulscalar0_output", "t_output"]
    assert group.name is None
    assert repr(group) == "<Symbol group [_mulscalar0, t]>"
    assert repr(a) == "<Symbol a>"
    with pytest.raises(TypeError):
        S.Group([])
    twice = S.Group([a, a])  # one node listed twice: its outputs twice, its graph once
    assert twice.list_outputs() == ["a", "a"] and twice.list_arguments() == ["a"]
    assert len(twice.get_internals().list_outputs()) == 1
    with pytest.raises(KeyError, match="'a' names 2 outputs of this symbol; use an integer index"):
        twice["a"]


def test_attributes():
    w = S.Variable("w", shape=(3, 4), dtype="float64", lr_mult=0.1, wd_mult=0.0, init="zeros", tag="keep")
    assert w.attr("__shape__") == "(3, 4)"
    assert w.attr("__dtype__") == "float64"
    assert w.attr("__lr_mult__") == "0.1" and w.attr("__wd_mult__") == "0.0"
    assert w.attr("__init__") == "zeros" and w.attr("tag") == "keep"
    assert w.attr("missing") is None
    fc = S.FullyConnected(S.Variable("x"), weight=w, num_hidden=3, no_bias=True, name="fc", attr={"group": "g1"})
    assert fc.attr("num_hidden") == "3" and fc.attr("no_bias") == "True" and fc.attr("flatten") is None
    assert fc.list_attr() == {"num_hidden": "3", "no_bias": "True", "group": "g1"}
    assert fc.attr_dict() == {"w": w.list_attr(), "fc": {"num_hidden": "3", "no_bias": "True", "group": "g1"}}
    fc._set_attr(stage="2")
    assert fc.attr("stage") == "2"
    group = S.Group([fc, w])  # which node's attributes? an error, not the first one's
    for what, call in (("attr", lambda: group.attr("stage")), ("list_attr", group.list_attr),
                       ("_set_attr", lambda: group._set_attr(stage="3"))):
        with pytest.raises(ParamError, match=rf"{what} needs a single-output symbol; this one has outputs "
                                             r"\['fc_output', 'w'\]"):
            call()
    assert fc.attr("stage") == "2"


def test_compose_by_keyword_position_and_errors():
    net = S.FullyConnected(S.Variable("data"), num_hidden=3, name="fc")
    x = S.Variable("x")
    assert net(x).list_arguments() == ["x", "fc_weight", "fc_bias"]
    assert net(data=x, fc_bias=S.Variable("b")).list_arguments() == ["x", "fc_weight", "b"]
    with pytest.raises(ParamError, match="unknown keyword argument.*'datum'.*free variables of this symbol are "
                                         "data, fc_weight, fc_bias"):
        net(datum=x)
    with pytest.raises(ParamError, match="4 positional arguments for 3 free variables"):
        net(x, x, x, x)
    w, b = S.Variable("w"), S.Variable("b")
    assert net(x, w, b).list_arguments() == ["x", "w", "b"]  # every free variable positionally
    with pytest.raises(TypeError, match="must be a Symbol"):
        net(data=3)
    in_place = S.FullyConnected(S.Variable("data"), num_hidden=3, name="fc")
    in_place._compose(data=x)
    assert in_place.list_arguments() == ["x", "fc_weight", "fc_bias"]


def test_operator_function_errors():
    x = S.Variable("x")
    with pytest.raises(ParamError, match=r"Activation: act_type='swish' is not one of 'relu', 'sigmoid', 'tanh', "
                                         r"'softrelu', 'softsign'"):
        S.Activation(x, act_type="swish")
    with pytest.raises(ParamError, match="FullyConnected: the required parameter 'num_hidden' is missing"):
        S.FullyConnected(x)
    with pytest.raises(ParamError, match="num_hidden=0 must be positive"):
        S.FullyConnected(x, num_hidden=0)
    with pytest.raises(ParamError, match="num_hiden.*its parameters are num_hidden, no_bias, flatten"):
        S.FullyConnected(x, num_hiden=3)
    with pytest.raises(ParamError, match="'bias' is not an input here"):
        S.FullyConnected(x, bias=S.Variable("b"), num_hidden=3, no_bias=True)
    with pytest.raises(TypeError, match="input 'data' must be a Symbol"):
        S.FullyConnected(data=[1, 2], num_hidden=3)
    with pytest.raises(TypeError, match="positional argument 1 must be a Symbol"):
        S.FullyConnected(x, 3)  # the weight's place: inputs come before hyper-parameters, as in MXNet
    with pytest.raises(TypeError, match="positional argument 2 must be a Symbol"):
        S.FullyConnected(x, x, 3, x)
    # After all the inputs, positional values are the hyper-parameters in their order (MXNet's functions).
    assert S.Reshape(x, (3, -1), True).infer_shape(x=(6, 2))[1] == [(3, 4)]
    assert x.transpose((1, 0, 2)).infer_shape(x=(2, 3, 4))[1] == [(3, 2, 4)]
    with pytest.raises(ParamError, match=r"3 positional hyper-parameter\(s\) given but it has 2 \(shape, reverse\)"):
        S.Reshape(x, (1,), True, 3)
    with pytest.raises(ParamError, match="'shape' is given by position and by keyword"):
        S.Reshape(x, (1,), shape=(2,))
    with pytest.raises(ParamError, match="no_bias='maybe' is not a valid boolean"):
        S.FullyConnected(x, num_hidden=3, no_bias="maybe")
    with pytest.raises(ParamError, match="no_bias=2 is not a valid boolean"):
        S.FullyConnected(x, num_hidden=3, no_bias=2)
    # MXNet's 0/1 and its JSON's strings are booleans
    assert S.FullyConnected(x, num_hidden=3, no_bias=1, name="f1").list_arguments() == ["x", "f1_weight"]
    for false in ("false", 0):
        assert S.FullyConnected(x, num_hidden=3, no_bias=false, name="f0").list_arguments() == ["x", "f0_weight",
                                                                                              "f0_bias"]
    assert S.FullyConnected(x, num_hidden=1, name="f1").infer_shape(x=(4, 2))[1] == [(4, 1)]  # 1 is positive
    with pytest.raises(ParamError, match="must be positive: the base"):
        (-2.0) ** x
    assert (x ** x).name.startswith("_power")  # between symbols: MXNet's _power, one shape
    for other in (True, "2", None):  # a bool is not a scale factor, nor a string a number
        with pytest.raises(TypeError, match="unsupported operand"):
            x + other
        with pytest.raises(TypeError):  # Python's own message, which varies with the other operand
            other * x
    with pytest.raises(ParamError, match="LeakyReLU: act_type='swish' is not one of"):
        S.LeakyReLU(x, act_type="swish")  # torch's old name of silu: not MXNet's


def test_debug_str():
    net = S.Activation(S.FullyConnected(S.Variable("data"), num_hidden=4, name="fc1"), act_type="relu", name="r")
    text = net.debug_str()
    assert "Symbol Outputs:\n\toutput[0]=r(0)" in text
    assert "Variable:data" in text
    assert "Op:FullyConnected, Name=fc1\nInputs:\n\targ[0]=data(0)\n\targ[1]=fc1_weight(0)" in text
    assert "Attrs:\n\tnum_hidden=4" in text


def test_operator_help_lists_parameters():
    doc = S.FullyConnected.__doc__
    assert "num_hidden (int; required)" in doc and "flatten (bool; default True)" in doc
    assert S.SoftmaxOutput.__name__ == "SoftmaxOutput"
    assert "normalization (str one of null, batch, valid" in S.SoftmaxOutput.__doc__
