"""A user-defined operator registered through tritonsym.operator works everywhere a
built-in does: symbol functions, naming, inference, JSON, planner, bind, gradient checks,
Module.fit; and examples/custom_swish.py trains one written as a new Triton kernel."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from plan_checks import assert_no_live_overlap
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
    train.reset()  # score read it to its end
    history = mod.fit(train, num_epoch=20, eval_metric="mse", optimizer_params={"learning_rate": 10.0})
    assert history[-1]["train"]["mse"] < 0.2 * before


def _half_square_forward(a):
    # A scratch buffer from forward_temps: x * x into it, then half of it into the output.
    x, out, square = a.inputs[0], a.outputs[0], a.temps["square"]
    return elementwise.plan_binary_forward("mul", x, x, square) + elementwise.plan_scalar_forward("mul", square, 0.5,
                                                                                                   out)


HALF_SQUARE = OpDef(
    name="HalfSquare", doc="x * x / 2, through a scratch buffer.", params=[], input_names=("data",),
    infer_shape=same_shape_everywhere(["data"]), forward=_half_square_forward,
    backward=lambda a: elementwise.plan_binary_forward("mul", a.out_grads[0], a.inputs[0], a.in_grads[0]),
    backward_needs=lambda params, epilogue: ((0,), ()),
    forward_temps=lambda params, shapes, dtypes: {"square": (shapes[0], dtypes[0])},
    cheap=True,
)


def test_forward_scratch_buffers_are_planned_and_recomputed_with_their_own(rng):
    """A forward_temps buffer lives only during its step; under mirror the recomputed
    forward in backward gets a scratch buffer of its own. Outputs and gradients equal an
    unplanned run bit for bit, and no two live values share a byte."""
    register(HALF_SQUARE)
    try:
        h = S.HalfSquare(S.FullyConnected(S.Variable("data"), num_hidden=6, name="fc1"), name="sq")
        net = S.LinearRegressionOutput(S.FullyConnected(h, num_hidden=2, name="fc2"), name="reg")
        shapes = dict(data=(5, 3), reg_label=(5, 2))
        runs = {}
        for plan in ("none", "mirror"):
            options = {"memory_plan": "none"} if plan == "none" else {"mirror": True}
            exe = net.simple_bind(ts.cpu(), type_dict={"data": "float64"}, **options, **shapes)
            exe.copy_params_from({n: rng.normal(size=a.shape) for n, a in exe.arg_dict.items()}
                                 if not runs else runs["params"])
            runs.setdefault("params", {n: a.clone() for n, a in exe.arg_dict.items()})
            exe.forward(is_train=True)
            exe.backward()
            runs[plan] = exe
        mirrored = runs["mirror"]
        steps = [s for s in mirrored._program.forward_steps + mirrored._program.backward_steps
                 if s.name == "sq" and s.phase != "backward"]
        assert [s.phase for s in steps] == ["forward", "recompute"]
        forward_temp, recompute_temp = (s.temps["square"] for s in steps)
        assert forward_temp is not recompute_temp and forward_temp.tensor is not None
        assert_no_live_overlap(mirrored)
        assert torch.equal(runs["none"].outputs[0], mirrored.outputs[0])
        for name, grad in runs["none"].grad_dict.items():
            assert torch.equal(grad, mirrored.grad_dict[name]), name
    finally:
        unregister("HalfSquare")


def test_registration_errors_and_unregister(affine):
    with pytest.raises(ParamError, match="an operator named 'Affine' is already registered"):
        register(AFFINE)
    with pytest.raises(ParamError, match="'my-op' is not a Python identifier"):
        register(OpDef(**{**AFFINE.__dict__, "name": "my-op", "hint": None}))
    for clash in ({"params": [Param("data", float)]}, {"params": [Param("name", float)]},
                  {"input_names": ("data", "attr")}, {"params": [Param("s", float), Param("s", float)]},
                  {"input_names": ("data", "data")}):
        with pytest.raises(ParamError, match="parameter and input names must be unique and not 'name' or 'attr'"):
            register(OpDef(**{**AFFINE.__dict__, "name": "Clash", "hint": None, **clash}))
    with pytest.raises(ParamError, match="backward must be a function"):
        register(OpDef(**{**AFFINE.__dict__, "name": "NoBackward", "hint": None, "backward": None}))
    text = S.Affine(S.Variable("data"), name="aff").tojson()
    unregister("Affine")
    assert not hasattr(S, "Affine") and "Affine" not in S.__all__
    with pytest.raises(FormatError, match="Affine"):
        S.load_json(text)
    register(AFFINE)  # for the fixture's teardown


@pytest.mark.slow  # runs the example script: 11 s
def test_example_trains_a_new_triton_kernel():
    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "custom_swish.py"
    assert len(script.read_text().splitlines()) < 60  # the target: from nothing to training in < 60 lines
    result = subprocess.run([sys.executable, str(script), "3"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "swish0_output" in result.stdout and "float64 gradient check" in result.stdout
    assert float(result.stdout.rsplit("validation accuracy with Swish: ", 1)[1]) > 0.9


def _scaled_pair_forward(a):
    x, (twice, thrice) = a.inputs[0], a.outputs
    return elementwise.plan_scalar_forward("mul", x, 2.0, twice) + elementwise.plan_scalar_forward("mul", x, 3.0,
                                                                                                      thrice)


def _scaled_pair_backward(a):
    """dx = 2 g0 + 3 g1, through a scratch buffer."""
    (g0, g1), dx, scratch = a.out_grads, a.in_grads[0], a.temps["scaled"]
    launches = elementwise.plan_scalar_forward("mul", g0, 2.0, scratch)
    launches += memory.plan_copy(scratch, dx, accumulate=a.accumulate[0])
    launches += elementwise.plan_scalar_forward("mul", g1, 3.0, scratch)
    return launches + memory.plan_copy(scratch, dx, accumulate=True)


SCALED_PAIR = OpDef(
    name="ScaledPair", doc="(2 x, 3 x): two outputs.", params=[], input_names=("data",),
    infer_shape=lambda params, ins, outs: ([ins[0] or outs[0] or outs[1]], [ins[0] or outs[0] or outs[1]] * 2),
    forward=_scaled_pair_forward, backward=_scaled_pair_backward, backward_needs=lambda params, epilogue: ((), ()),
    num_outputs=2, output_names=lambda params: ["twice", "thrice"],
    backward_temps=lambda params, shapes, dtypes: {"scaled": (shapes[0], dtypes[0])},
)


@pytest.mark.parametrize("used", [0, 1])
def test_an_unused_output_has_a_zero_gradient(used, rng):
    """Only one output of a two-output operator is read: the other's gradient is zero (as in
    MXNet), a scratch buffer of the backward step that the step fills itself."""
    register(SCALED_PAIR)
    try:
        pair = S.ScaledPair(S.Variable("x"), name="pair")
        assert pair.list_outputs() == ["pair_twice", "pair_thrice"]
        net = S.MakeLoss(pair[used] * S.Variable("w"), name="loss")
        x, w = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
        exe = net.simple_bind(ts.cpu(), type_dict={"x": "float64", "w": "float64"}, x=(3, 4), w=(3, 4))
        exe.forward(is_train=True, x=x, w=w)
        exe.backward()
        np.testing.assert_allclose(exe.grad_dict["x"].numpy(), (2.0, 3.0)[used] * w, rtol=1e-15)
        zeroed = [v for v in exe.memory.values if v.name == f"pair_{('thrice', 'twice')[used]}_grad"]
        assert len(zeroed) == 1 and zeroed[0].kind == "temp"
        assert_no_live_overlap(exe)
        ts.test_utils.check_numeric_gradient(net, {"x": x, "w": w},
                                             losses={"loss_output": lambda values, out: out.sum()})
    finally:
        unregister("ScaledPair")


TRAINING_DOUBLES = OpDef(
    name="TrainingDoubles", doc="2 x when training, x in inference: a forward that depends on is_train.", params=[],
    input_names=("data",), infer_shape=same_shape_everywhere(["data"]),
    forward=lambda a: elementwise.plan_scalar_forward("mul", a.inputs[0], 2.0 if a.is_train else 1.0, a.outputs[0]),
    backward=lambda a: elementwise.plan_scalar_forward("mul", a.out_grads[0], 2.0, a.in_grads[0]),
    backward_needs=lambda params, epilogue: ((), ()),
    forward_in_training=lambda params: True, cheap=True,
)


@pytest.mark.parametrize("mirror", [False, True])
def test_a_forward_that_differs_in_training(mirror, rng):
    """forward(is_train=True) runs the training launches, forward(is_train=False) the others;
    forward_backward trains; the forward that mirror recomputes in backward is a training one."""
    register(TRAINING_DOUBLES)
    try:
        net = S.MakeLoss(S.TrainingDoubles(S.Variable("x"), name="td") * S.Variable("w"), name="loss")
        x, w = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
        exe = net.simple_bind(ts.cpu(), type_dict={"x": "float64", "w": "float64"}, mirror=mirror, x=(3, 4),
                              w=(3, 4))
        assert ("td (TrainingDoubles) recompute" in exe.debug_str()) == mirror
        np.testing.assert_allclose(exe.forward(is_train=False, x=x, w=w)[0].numpy(), x * w, rtol=1e-15)
        np.testing.assert_allclose(exe.forward(is_train=True, x=x, w=w)[0].numpy(), 2 * x * w, rtol=1e-15)
        exe.backward()
        np.testing.assert_allclose(exe.grad_dict["x"].numpy(), 2 * w, rtol=1e-15)
        np.testing.assert_allclose(exe.grad_dict["w"].numpy(), 2 * x, rtol=1e-15)
        exe.forward(is_train=False, x=x, w=w)
        exe.forward_backward(x=x, w=w)
        np.testing.assert_allclose(exe.outputs[0].numpy(), 2 * x * w, rtol=1e-15)
        np.testing.assert_allclose(exe.grad_dict["w"].numpy(), 2 * x, rtol=1e-15)
    finally:
        unregister("TrainingDoubles")


def _keeps_square_forward(a):
    """x * x; a training forward whose backward runs also keeps 2 x (the derivative)."""
    launches = elementwise.plan_binary_forward("mul", a.inputs[0], a.inputs[0], a.outputs[0])
    if "slope" in a.saved:
        launches += elementwise.plan_scalar_forward("mul", a.inputs[0], 2.0, a.saved["slope"])
    return launches


KEEPS_SLOPE = OpDef(
    name="KeepsSlope", doc="x * x, keeping 2 x for its backward.", params=[], input_names=("data",),
    infer_shape=same_shape_everywhere(["data"]), forward=_keeps_square_forward,
    backward=lambda a: elementwise.plan_binary_forward("mul", a.out_grads[0], a.saved["slope"], a.in_grads[0]),
    backward_needs=lambda params, epilogue: ((), ()),  # neither the input nor the output: the kept slope
    saved_for_backward=lambda params, shapes, dtypes: {"slope": (shapes[0], dtypes[0])},
)


@pytest.mark.slow  # 5 s; CI runs -m slow
def test_values_kept_from_forward_for_backward(rng):
    """A kept value lives from the training forward to the backward step (planned, in the
    memory report); an inference bind has none; mirror leaves it kept."""
    register(KEEPS_SLOPE)
    try:
        h = S.KeepsSlope(S.FullyConnected(S.Variable("data"), num_hidden=4, name="fc1"), name="ks")
        net = S.MakeLoss(S.FullyConnected(h, num_hidden=2, name="fc2"), name="loss")
        location = {"data": rng.normal(size=(3, 2)), "fc1_weight": rng.normal(size=(4, 2)), "fc1_bias": np.zeros(4),
                    "fc2_weight": rng.normal(size=(2, 4)), "fc2_bias": np.zeros(2)}
        errors = ts.test_utils.check_numeric_gradient(net, location, losses={"loss_output": lambda v, out: out.sum()})
        assert max(errors.values()) < 1e-6
        for mirror in (False, True):
            exe = net.simple_bind(ts.cpu(), type_dict={n: "float64" for n in location}, mirror=mirror,
                                  **{n: v.shape for n, v in location.items()})
            kept = [v for v in exe.memory.values if v.kind == "saved"]
            assert [v.name for v in kept] == ["ks_slope"] and kept[0].nbytes == 3 * 4 * 8
            assert_no_live_overlap(exe)
        inference = net.simple_bind(ts.cpu(), grad_req="null", data=(3, 2))
        assert not any(v.kind == "saved" for v in inference.memory.values)
        inference.copy_params_from({n: torch.tensor(v, dtype=torch.float32) for n, v in location.items()
                                    if n.startswith("fc")})
        inference.forward(is_train=True, data=location["data"])  # no backward: nothing kept, nothing written
    finally:
        unregister("KeepsSlope")
