"""Cast (``x.astype(dtype)``): the same bits as torch's conversion (ties to even, overflow to
inf, NaN kept) from every floating dtype to every other, the gradient converted back (and
added, ``grad_req='add'``), nothing launched where the two dtypes are one and the planner
gave the output the input's storage, integer targets refused by name, and a mixed-precision
network (bfloat16 layer, float32 loss) against a float64 oracle. The same-dtype case in
every dtype with finite differences: the generic operator case ``cast_to_float64``; MXNet's
own results: the ``cast`` cases of the differential harness."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close, rounded, to_numpy

import tritonsym as ts

S = ts.sym


def _hard_values(rng) -> np.ndarray:
    """Normals over many scales, halfway points of float16 and bfloat16, values past their
    largest finite ones, subnormals, signed zeros, infinities and NaN."""
    return np.concatenate([rng.normal(size=40) * 10.0 ** rng.integers(-6, 6, 40),
                           [1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 1.0 + 2.0 ** -8, 65519.0, 65520.0, 1e6,
                            3.4e38, 1e-7, 1e-41, -0.0, 0.0, np.inf, -np.inf, np.nan]])


@pytest.mark.parametrize("target", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("source", DTYPES, ids=DTYPE_IDS)
def test_the_same_bits_as_torchs_conversion(source, target, rng):
    x = rounded(_hard_values(rng), source)
    exe = S.Cast(S.Variable("x"), dtype=str(target)[6:]).simple_bind(ts.cpu(), x=x.shape, type_dict={"x": source})
    out = exe.forward(is_train=False, x=x)[0]
    assert out.dtype == target
    want = x.to(target)
    same = (out == want) | (torch.isnan(out) & torch.isnan(want))
    assert same.all(), f"{x[~same].tolist()} became {out[~same].tolist()}, torch gives {want[~same].tolist()}"
    assert torch.equal(torch.signbit(out[~torch.isnan(out)]), torch.signbit(want[~torch.isnan(want)]))


def test_the_gradient_comes_back_in_the_data_dtype_and_adds(rng):
    net = S.Cast(S.Variable("x"), dtype="bfloat16")
    exe = net.simple_bind(ts.cpu(), x=(4, 5), grad_req="add", type_dict={"x": "float64"})
    head = rounded(rng.normal(size=(4, 5)), torch.bfloat16)
    exe.grad_dict["x"][...] = 0.25
    exe.forward(is_train=True, x=rng.normal(size=(4, 5)))
    exe.backward([head])
    assert exe.grad_dict["x"].dtype == torch.float64
    assert torch.equal(exe.grad_dict["x"], 0.25 + head.to(torch.float64))


def test_a_cast_to_the_dtype_it_has_launches_nothing_over_its_input(rng):
    """FC -> astype(float64) of float64 -> sum: the cast's output takes the FC output's storage (it
    dies there), so its forward and backward have nothing to copy."""
    fc = S.FullyConnected(S.Variable("x"), num_hidden=3, name="fc")
    exe = S.MakeLoss(S.sum(fc.astype("float64"), name="total")).simple_bind(ts.cpu(), x=(4, 6),
                                                                           type_dict={"x": "float64"})
    casts = [s for s in exe._program.forward_steps + exe._program.backward_steps if s.op.name == "Cast"]
    assert exe.outputs[0].dtype == torch.float64 and not any(s.launches for s in casts)
    values = {n: rng.normal(size=a.shape) for n, a in exe.arg_dict.items()}
    exe.forward(is_train=True, **values)
    exe.backward()
    want = o.fully_connected(values["x"], values["fc_weight"], values["fc_bias"]).sum(keepdims=True).reshape(1)
    assert_close(exe.outputs[0], want, torch.float64)
    assert_close(exe.grad_dict["fc_bias"], np.full(3, 4.0), torch.float64)


def test_a_bfloat16_layer_with_a_float32_loss(rng):
    """Mixed precision as a script writes it: the layer in bfloat16, the logits cast to
    float32 for SoftmaxOutput. The loss gradient leaves float32 rounded to bfloat16 once."""
    fc = S.FullyConnected(S.Variable("data"), num_hidden=5, name="fc")
    net = S.SoftmaxOutput(S.Cast(fc, dtype="float32"), name="out")
    bf16 = {n: "bfloat16" for n in ("data", "fc_weight", "fc_bias")}
    exe = net.simple_bind(ts.cpu(), data=(6, 7), type_dict=bf16)
    assert exe.outputs[0].dtype == torch.float32 and exe.arg_dict["out_label"].dtype == torch.float32
    values = {"data": rng.normal(size=(6, 7)), "fc_weight": rng.normal(scale=0.3, size=(5, 7)),
              "fc_bias": rng.normal(size=5), "out_label": rng.integers(0, 5, 6).astype(np.float64)}
    exe.forward(is_train=True, **values)
    exe.backward()
    used = {n: to_numpy(exe.arg_dict[n]) for n in values}
    logits = o.fully_connected(used["data"], used["fc_weight"], used["fc_bias"])
    assert_close(exe.outputs[0], o.softmax(logits), torch.bfloat16)
    dlogits = o.softmax_output_grad(logits, used["out_label"])
    dx, dw, db = o.fully_connected_grads(dlogits, used["data"], used["fc_weight"])
    for name, want in (("data", dx), ("fc_weight", dw), ("fc_bias", db)):
        assert exe.grad_dict[name].dtype == torch.bfloat16
        assert_close(exe.grad_dict[name], want, torch.bfloat16, f"gradient of {name}", scale=4.0)


def test_integer_targets_and_unknown_names_are_refused():
    with pytest.raises(ts.base.ParamError, match=r"Cast: dtype='int32' is not supported: tritonsym computes in "
                                                 r"float64, float32, float16, bfloat16"):
        S.Cast(S.Variable("x"), dtype="int32")
    with pytest.raises(ts.base.ParamError, match=r"Cast: dtype='float' is not a dtype"):
        S.Variable("x").astype("float")
    with pytest.raises(ts.base.ParamError, match="the required parameter 'dtype' is missing"):
        S.Cast(S.Variable("x"))


# ------------------------------------------------------------------ amp_cast, amp_multicast


@pytest.mark.parametrize("types, narrow, want", [
    (("float16", "float32"), False, ("float32", "float32")), (("float32", "bfloat16"), False, ("float32", "float32")),
    (("float16", "float32"), True, ("float16", "float16")), (("float64", "float16"), False, ("float64", "float64")),
    (("float64", "float16", "float32"), False, ("float64", "float32", "float32")),
    (("float16", "float64"), True, ("float16", "float64"))], ids=str)
def test_amp_multicast_follows_mxnets_rule(types, narrow, want):
    """MXNet 1.9.1's AMPMultiCastType (its quirk included: a float64 first input makes the
    half-precision ones float64 until a float32 one comes): recorded cases check it too."""
    inputs = [S.Variable(f"x{k}") for k in range(len(types))]
    net = S.amp_multicast(*inputs, cast_narrow=narrow)
    assert net.list_outputs() == [f"{net.list_outputs()[0].rsplit('_', 1)[0]}_output{k}" for k in range(len(types))]
    got = net.infer_type(**{f"x{k}": t for k, t in enumerate(types)})[1]
    assert [str(t).removeprefix("torch.") for t in got] == list(want)


def test_amp_casts_round_bring_the_gradient_back_and_pass_what_they_do_not_cast(rng):
    a, b = S.Variable("a"), S.Variable("b")
    both = S.amp_multicast(S.amp_cast(a, dtype="float16"), b)  # float16 and float32: both float32
    net = S.Group([both[0] * both[1], S.amp_cast(b * 2.0, dtype="bfloat16")])
    exe = net.simple_bind(ts.cpu(), a=(4, 6), b=(4, 6), type_dict={"a": "float32", "b": "float64"})
    assert [t.dtype for t in exe.outputs] == [torch.float64, torch.float64]  # float64 is not AMP's: unchanged
    x, y = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    out = exe.forward(is_train=True, a=x, b=y)
    through_half = rounded(x.astype(np.float32), torch.float16)
    assert_close(out[0], to_numpy(through_half) * y, torch.float64)
    exe.backward([torch.ones(4, 6, dtype=torch.float64), torch.zeros(4, 6, dtype=torch.float64)])
    assert exe.grad_dict["a"].dtype == torch.float32
    assert_close(exe.grad_dict["a"], to_numpy(rounded(y, torch.float16)), torch.float16)
    assert_close(exe.grad_dict["b"], to_numpy(through_half), torch.float64)
    casts = [s for s in exe._program.forward_steps if s.op.name == "amp_cast" and s.outputs[0].dtype == torch.float64]
    assert casts and not any(s.launches for s in casts)  # the float64 one passes, in place: nothing copied
    assert_close(out[1], 2 * y, torch.float64)


def test_amp_cast_to_an_integer_is_refused_naming_it():
    with pytest.raises(ts.base.DTypeError, match=r"amp_cast\d* \(amp_cast\): dtype=int32 is not supported"):
        S.amp_cast(S.Variable("a"), dtype="int32").infer_type(a="float32")
