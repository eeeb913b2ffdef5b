"""A user-defined operator registered through tritonsym.operator works everywhere a
built-in does: symbol functions, naming, inference, JSON, planner, bind, gradient checks,
Module.fit; and examples/custom_swish.py trains one written as a new Triton kernel."""

import pathlib
import subprocess
import sys

import pytest
from tritonsym.ops import elementwise, memory

import tritonsym as ts
from tritonsym import FormatError, ParamError
from tritonsym.operator import OpDef, Param, register, same_shape_everywhere, unregister

S = ts.sym


def _affine_forward(a):
    x, w, b = a.inputs
    out = a.outputs[0]
    # out = x * w, then out = out + b: each element read before it is written
    return elementwise.plan_binary_forward("mul", x, w, out) + elementwise.plan_binary_forward("add", out, b, out)


def _affine_backward(a):
    dy = a.out_grads[0]
    dx, dw, db = a.in_grads
    launches = elementwise.plan_binary_backward("mul", dy, a.inputs[0], a.inputs[1], dx, dw, a.accumulate[0],
                                                a.accumulate[1])
    return launches + (memory.plan_copy(dy, db, accumulate=a.accumulate[2]) if db is not None else [])


AFFINE = OpDef(
    name="Affine", doc="data * weight + bias, elementwise, with a weight and bias of the data's shape.",
    params=[Param("note", str, default="", doc="an unused string parameter, to test parsing")],
    input_names=("data", "weight", "bias"),
    infer_shape=same_shape_everywhere(["data", "weight", "bias"]),
    forward=_affine_forward, backward=_affine_backward,
    backward_needs=lambda params, epilogue: ((0, 1), ()),
)


@pytest.fixture
def affine():
    register(AFFINE)
    yield AFFINE
    unregister("Affine")


def test_works_like_a_built_in(affine, rng):
    assert "data * weight + bias" in S.Affine.__doc__ and "note (str; default '')" in S.Affine.__doc__
    with S.NameManager():
        auto = S.Affine(S.Variable("x"))
    assert auto.name == "affine0" and auto.list_arguments() == ["x", "affine0_weight", "affine0_bias"]
    net = S.Affine(S.Variable("data"), name="aff", note="hi")
    assert net.attr("note") == "hi"
    arg_shapes, out_shapes, _ = net.infer_shape(aff_bias=(3, 4))
    assert arg_shapes == [(3, 4)] * 3 and out_shapes == [(3, 4)]  # inferred from the bias alone
    again = S.load_json(net.tojson())
    assert again.tojson() == net.tojson()
    x, w, b = (rng.normal(size=(3, 4)) for _ in range(3))
    outputs = ts.test_utils.check_symbolic_forward(again, [x, w, b], [x * w + b])
    assert outputs[0].shape == (3, 4)
    exe = net.simple_bind(ts.cpu(), data=(3, 4))
    assert exe.memory.planned_bytes > 0 and "aff (Affine) forward" in exe.debug_str()
    with pytest.raises(ts.ShapeError, match=r"aff \(Affine\): inputs must have one shape"):
        net.infer_shape(data=(3, 4), aff_weight=(4, 3))
    with pytest.raises(ParamError, match=r"Affine: unknown argument\(s\) 'scale'"):
        S.Affine(S.Variable("data"), scale=2.0)


def test_gradients_are_checked_like_a_built_in(affine, rng):
    w = S.Variable("w")
    net = S.Affine(S.Variable("data"), weight=w, name="aff")
    location = {n: rng.normal(size=(3, 5)) for n in net.list_arguments()}
    errors = ts.test_utils.check_numeric_gradient(net, location)
    assert set(errors) == {"data", "w", "aff_bias"}
    twice = S.Affine(net, weight=w, name="again")  # one weight used twice: its gradient accumulates
    ts.test_utils.check_numeric_gradient(twice, location | {"again_bias": rng.normal(size=(3, 5))})


def test_trains_with_module_fit(affine, rng):
    x = rng.normal(size=(32, 4))
    target = 3.0 * x - 1.0
    net = S.LinearRegressionOutput(S.Affine(S.Variable("data"), name="aff"), name="reg")
    mod = ts.mod.Module(net, label_names=["reg_label"])
    train = ts.io.NDArrayIter(x, target, batch_size=32, label_name="reg_label", dtype="float64")
    mod.bind(train.provide_data, train.provide_label)
    mod.init_params(ts.init.Zero())
    before = mod.score(train, "mse")[0][1]
    history = mod.fit(train, num_epoch=20, eval_metric="mse", optimizer_params={"learning_rate": 10.0})
    assert history[-1]["train"]["mse"] < 0.2 * before


def test_registration_errors_and_unregister(affine):
    with pytest.raises(ParamError, match="an operator named 'Affine' is already registered"):
        register(AFFINE)
    with pytest.raises(ParamError, match="'my-op' is not a Python identifier"):
        register(OpDef(**{**AFFINE.__dict__, "name": "my-op", "hint": None}))
    with pytest.raises(ParamError, match="parameter and input names must be unique and not 'name' or 'attr'"):
        register(OpDef(**{**AFFINE.__dict__, "name": "Clash", "hint": None, "params": [Param("data", float)]}))
    with pytest.raises(ParamError, match="backward must be a function"):
        register(OpDef(**{**AFFINE.__dict__, "name": "NoBackward", "hint": None, "backward": None}))
    text = S.Affine(S.Variable("data"), name="aff").tojson()
    unregister("Affine")
    assert not hasattr(S, "Affine") and "Affine" not in S.__all__
    with pytest.raises(FormatError, match="Affine"):
        S.load_json(text)
    register(AFFINE)  # for the fixture's teardown


def test_example_trains_a_new_triton_kernel():
    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "custom_swish.py"
    assert len(script.read_text().splitlines()) < 60  # the target: from nothing to training in < 60 lines
    result = subprocess.run([sys.executable, str(script), "3"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "swish0_output" in result.stdout and "float64 gradient check" in result.stdout
    assert float(result.stdout.rsplit("validation accuracy with Swish: ", 1)[1]) > 0.9
