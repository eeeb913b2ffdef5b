"""Answers that used to be wrong without a word: a repeated output's head gradients, class
labels changed on the way in, a resumed run that is not the run it continues, a
checkpoint's weights and optimizer states from two saves, and the gradient of x ** 0."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from networks import mlp

import tritonsym as ts
from tritonsym.executor.program import EXACT_INTEGERS

S = ts.sym


# ------------------------------------------------------------ repeated outputs


def test_a_repeated_output_gets_the_sum_of_its_head_gradients():
    a = S.Variable("a")
    y = a * 2
    exe = S.Group([y, y]).simple_bind(ts.cpu(), a=(3,))
    exe.forward(is_train=True, a=np.ones(3))
    exe.backward(out_grads=[np.ones(3), np.full(3, 10.0)])
    assert exe.grad_dict["a"].tolist() == [22.0] * 3  # was 20: the last head gradient only


def test_an_output_repeated_around_another_use_of_it():
    fc = S.FullyConnected(S.Variable("data"), num_hidden=2, no_bias=True, name="fc")
    exe = S.Group([fc, fc * 1, fc]).simple_bind(ts.cpu(), data=(1, 1))
    exe.copy_params_from({"fc_weight": np.ones((2, 1))})
    exe.forward(is_train=True, data=np.ones((1, 1)))
    exe.backward(out_grads=[np.ones((1, 2))] * 3)
    assert exe.grad_dict["fc_weight"].tolist() == [[3.0], [3.0]]  # was 2
    with pytest.raises(ts.ExecutionError, match="output 'fc_output' is listed more than once, so out_grads as a dict "
                                                "cannot say which gradient is whose: pass a list"):
        exe.backward(out_grads={"fc_output": np.ones((1, 2)), "_mulscalar0_output": np.ones((1, 2))})


def test_a_repeated_output_under_grad_req_add_adds_every_head():
    a = S.Variable("a")
    exe = S.Group([a, a]).simple_bind(ts.cpu(), grad_req="add", a=(2,))
    exe.zero_grad()
    exe.forward(is_train=True, a=np.ones(2))
    exe.backward(out_grads=[np.ones(2), np.full(2, 3.0)])
    exe.forward(is_train=True, a=np.ones(2))
    exe.backward(out_grads=[np.ones(2), np.full(2, 3.0)])
    assert exe.grad_dict["a"].tolist() == [8.0, 8.0]


# ------------------------------------------------------------------ class labels


def _softmax(classes=5, **types):
    return S.SoftmaxOutput(S.Variable("x"), name="out").simple_bind(ts.cpu(), type_dict=types, x=(3, classes))


@pytest.mark.parametrize("label, message", [
    (np.array([0.0, 1.7, 2.0]), r"the value 1\.7 at position \(1,\) cannot be stored exactly in int32 \(it would "
                                r"become 1\)"),
    (np.array([0, 2 ** 32 + 2, 1], dtype=np.int64), r"the value 4294967298 at position \(1,\) cannot be stored "
                                                     r"exactly in int32 \(it would become 2\)"),
    (np.array([0.0, np.nan, 1.0]), r"the value nan at position \(1,\)"),
    (np.array([0.0, -np.inf, 1.0]), r"the value -inf at position \(1,\)"),
])
def test_an_integer_label_array_refuses_what_it_cannot_hold(label, message):
    exe = _softmax(out_label="int32")
    exe.forward(is_train=True, x=np.zeros((3, 5)), out_label=np.array([0, 1, 2]))
    before = exe.arg_dict["out_label"].clone()
    with pytest.raises(ts.BindError, match=r"forward: argument 'out_label': " + message):
        exe.forward(is_train=True, x=np.ones((3, 5)), out_label=label)
    assert torch.equal(exe.arg_dict["out_label"], before) and (exe.arg_dict["x"] == 0).all()  # nothing written


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_a_half_precision_label_never_holds_more_classes_than_it_can_count(dtype):
    limit = EXACT_INTEGERS[dtype]  # 2048 and 256: every class below is exact
    _softmax(classes=limit, x=dtype, out_label=dtype)
    with pytest.raises(ts.BindError, match=rf"out \(SoftmaxOutput\): input 'label' is the variable 'out_label' of "
                                           rf"dtype {str(dtype)[6:]}, which holds whole numbers exactly only up to "
                                           rf"{limit}, but it holds class indices of {limit + 1} classes"):
        _softmax(classes=limit + 1, x=dtype, out_label=dtype)
    exe = _softmax(classes=limit, x=dtype, out_label=dtype)
    # limit - 1.5 lies between two neighbours of the dtype (the spacing just below limit is 1):
    # it would round to a class; a fraction it can hold (1.5) is stored, and its row's gradient is NaN.
    with pytest.raises(ts.BindError, match=rf"the value {limit - 1.5} at position \(2,\) cannot be stored exactly"):
        exe.forward(is_train=True, x=np.zeros((3, limit)), out_label=np.array([0.0, limit - 1.0, limit - 1.5]))
    exe.forward(is_train=True, x=np.zeros((3, limit)), out_label=np.array([0, limit - 1, 3]))
    assert exe.arg_dict["out_label"].tolist() == [0.0, limit - 1.0, 3.0]


def test_a_float_label_keeps_its_documented_nan_gradient():
    """A float32 label that is not a class (1.5, NaN, out of range) is stored as given and
    its row's gradient is NaN, as docs/symbol.md promises; the other rows are untouched."""
    exe = _softmax()
    exe.forward(is_train=True, x=np.zeros((3, 5)), out_label=np.array([1.5, 7.0, 2.0]))
    exe.backward()
    grad = exe.grad_dict["x"]
    assert grad[:2].isnan().all() and not grad[2].isnan().any()


def test_an_integer_input_is_refused_at_bind_naming_node_and_variable():
    net = S.FullyConnected(S.Variable("pixels"), num_hidden=3, name="fc1")
    with pytest.raises(ts.BindError, match=r"fc1 \(FullyConnected\): input 'data' is the variable 'pixels' of dtype "
                                           r"int32, but FullyConnected computes in floating point"):
        net.simple_bind(ts.cpu(), type_dict={"pixels": "int32"}, pixels=(2, 4))


# ------------------------------------------------------------------------ resume


def _mlp():
    return mlp((16,), 4)


def _data(last_batch_handle="pad"):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(90, 6)).astype(np.float32), rng.integers(0, 4, 90)
    ts.random.seed(11)  # the iterator's seed is drawn from it, in both runs alike
    return ts.io.NDArrayIter(x, y, batch_size=16, shuffle=True, last_batch_handle=last_batch_handle)


def _fit(mod, data, begin, end, prefix):
    mod.fit(data, num_epoch=end, begin_epoch=begin, optimizer="adam",
            optimizer_params={"learning_rate": 0.01, "lr_scheduler": ts.lr_scheduler.CosineScheduler(max_update=30)},
            initializer=ts.init.Xavier(),
            epoch_end_callback=ts.callback.module_checkpoint(mod, prefix, save_optimizer_states=True))
    return mod.get_params()[0]


@pytest.mark.slow  # 18 s: two runs twice (the quick run stays under 5 minutes)
@pytest.mark.parametrize("last_batch_handle", ["pad", "roll_over"])
def test_a_resumed_shuffled_run_is_the_uninterrupted_run_bit_for_bit(tmp_path, last_batch_handle):
    """Killed after epoch 2 and resumed from its checkpoint with a new iterator of the same
    seed: the same parameters as never stopping (was up to 0.0127 off with shuffle=True)."""
    ts.random.seed(0)
    whole = _fit(ts.mod.Module(_mlp()), _data(last_batch_handle), 0, 4, str(tmp_path / "whole"))
    ts.random.seed(0)
    _fit(ts.mod.Module(_mlp()), _data(last_batch_handle), 0, 2, str(tmp_path / "part"))
    resumed = ts.mod.Module.load(str(tmp_path / "part"), 2, load_optimizer_states=True)
    after = _fit(resumed, _data(last_batch_handle), 2, 4, str(tmp_path / "part"))
    for name, value in whole.items():
        assert torch.equal(value, after[name]), name


def test_set_epoch_puts_a_new_iterator_where_the_run_was():
    x = np.arange(20, dtype=np.float32)[:, None]
    first = ts.io.NDArrayIter(x, np.arange(20), batch_size=6, shuffle=True, seed=3, last_batch_handle="roll_over")
    seen = []
    for _ in range(4):
        seen.append([b.index.tolist() for b in first])
        first.reset()
    second = ts.io.NDArrayIter(x, np.arange(20), batch_size=6, shuffle=True, seed=3, last_batch_handle="roll_over")
    second.set_epoch(3)
    assert [b.index.tolist() for b in second] == seen[3]
    assert seen[0] != seen[1]  # each epoch its own order
    with pytest.raises(ts.ParamError, match="set_epoch: epoch=-1 must be a whole number >= 0"):
        second.set_epoch(-1)


@pytest.mark.slow  # three training processes: 11 s
def test_the_cli_resumes_from_the_last_complete_checkpoint(tmp_path):
    """tritonsym train --resume: the run saved under --save, continued from the last pair
    of weights and states that belong together, ends where the whole run ends."""
    def train(prefix, *extra):
        done = subprocess.run([sys.executable, "-m", "tritonsym", "train", "--epochs", "3", "--hidden", "16",
                               "--save", str(prefix), *extra], capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    train(tmp_path / "whole")
    part = tmp_path / "part"
    for name in ("symbol.json", "0001.safetensors", "0001.states.safetensors", "0002.safetensors"):
        (tmp_path / f"part-{name}").write_bytes((tmp_path / f"whole-{name}").read_bytes())
    # Epoch 2's states are missing (killed between the two files): epoch 1 is the last pair.
    out = train(part, "--resume")
    assert "resume: from " + str(part) + "-0001, epochs 2 to 3" in out
    _, whole, _ = ts.model.load_checkpoint(str(tmp_path / "whole"), 3)
    _, resumed, _ = ts.model.load_checkpoint(str(part), 3)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert "nothing to train" in train(part, "--resume")
    no_save = subprocess.run([sys.executable, "-m", "tritonsym", "train", "--resume"], capture_output=True, text=True,
                             timeout=600)
    assert no_save.returncode == 1 and "--resume continues the run saved under --save PREFIX" in no_save.stderr


# ------------------------------------------------------------------ checkpoints


def _trained_module():
    mod = ts.mod.Module(_mlp())
    data = _data()
    mod.bind(data.provide_data, data.provide_label)
    mod.init_params(ts.init.Xavier())
    mod.init_optimizer(optimizer="adam")
    mod.train_step(next(iter(data)))
    return mod, data


def test_weights_and_states_of_two_saves_are_refused_naming_both(tmp_path):
    prefix = str(tmp_path / "net")
    mod, data = _trained_module()
    mod.save_checkpoint(prefix, 1, save_optimizer_states=True)
    old_states = (tmp_path / "net-0001.states.safetensors").read_bytes()
    mod.train_step(next(iter(data)))
    mod.save_checkpoint(prefix, 1, save_optimizer_states=True)  # a re-save of epoch 1 ...
    (tmp_path / "net-0001.states.safetensors").write_bytes(old_states)  # ... killed before its states
    loaded = ts.mod.Module.load(prefix, 1, load_optimizer_states=True)
    loaded.bind(data.provide_data, data.provide_label)
    with pytest.raises(ts.FormatError, match=rf"{prefix}-0001\.states\.safetensors was saved with other weights than "
                                             rf"{prefix}-0001\.safetensors holds"):
        loaded.init_optimizer(optimizer="adam")
    fresh = ts.mod.Module.load(prefix, 1)  # without the states, the weights load
    fresh.bind(data.provide_data, data.provide_label)
    fresh.init_optimizer(optimizer="adam")


def test_a_weights_file_renamed_to_another_epoch_is_refused(tmp_path):
    prefix = str(tmp_path / "net")
    mod, _ = _trained_module()
    mod.save_checkpoint(prefix, 1)
    os.rename(f"{prefix}-0001.safetensors", f"{prefix}-0005.safetensors")
    with pytest.raises(ts.FormatError, match=r"net-0005\.safetensors: its header says it holds epoch 1, but its name "
                                             r"says epoch 5"):
        ts.model.load_checkpoint(prefix, 5)


def test_states_saved_on_their_own_still_load(tmp_path):
    """save_optimizer_states (and files written before states recorded their weights) carry
    no pairing: they load as before."""
    prefix = str(tmp_path / "net")
    mod, data = _trained_module()
    mod.save_checkpoint(prefix, 1)
    mod.save_optimizer_states(f"{prefix}-0001.states.safetensors")
    loaded = ts.mod.Module.load(prefix, 1, load_optimizer_states=True)
    loaded.bind(data.provide_data, data.provide_label)
    loaded.init_optimizer(optimizer="adam")


# ---------------------------------------------------------------------- powers


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16],
                         ids=["float64", "float32", "float16", "bfloat16"])
def test_the_gradient_of_a_constant_power_is_zero_everywhere(dtype):
    x = torch.tensor([0.0, -2.0, 3.0, float("nan")], dtype=dtype)
    grad = ts.ops.scalar_backward("power", torch.ones_like(x), 0.0, x=x)
    assert grad[:3].tolist() == [0.0, 0.0, 0.0]  # 0 * 0 ** -1 was NaN at x = 0
    assert grad[3] == 0  # x ** 0 is 1 even at NaN (IEEE's pow), and its slope 0
    grad = ts.ops.scalar_backward("power", torch.tensor([float("nan")], dtype=dtype), 0.0, x=x[:1])
    assert grad.isnan().all()  # a NaN head gradient still gives NaN


# ------------------------------------------------- tritonsym's errors, not torch's


def test_a_parameter_that_requires_grad_is_copied_as_values():
    net = S.FullyConnected(S.Variable("data"), num_hidden=8, name="fc")
    exe = net.simple_bind(ts.cpu(), data=(2, 5))
    layer = torch.nn.Linear(5, 8)
    exe.copy_params_from({"fc_weight": layer.weight, "fc_bias": layer.bias})
    for _ in range(2):  # every forward used to raise torch's "leaf Variable ... in-place operation"
        exe.forward(is_train=True, data=np.ones((2, 5)))
        exe.backward(out_grads=[np.ones((2, 8))])
    assert torch.allclose(exe.outputs[0], layer(torch.ones(2, 5)).detach(), atol=1e-6)


@pytest.mark.parametrize("labels, message", [
    (np.array(["cat", "dog", "cat"]), r"NDArrayIter: label 'softmax_label' is an array of <U3 \(text\)"),
    (np.array([b"a", b"b", b"c"]), r"NDArrayIter: label 'softmax_label' is an array of \|S1 \(bytes\)"),
    (torch.empty(3, device="meta"), "NDArrayIter: label 'softmax_label' is a tensor on the meta device"),
    (np.array([1 + 2j, 0, 1]), r"NDArrayIter: label 'softmax_label' is an array of complex128 \(complex numbers\)"),
])
def test_an_iterator_names_labels_it_cannot_read(labels, message):
    with pytest.raises(ts.ParamError, match=message):
        ts.io.NDArrayIter(np.zeros((3, 2)), labels, batch_size=2)
    big_endian = ts.io.NDArrayIter(np.arange(6, dtype=">f4").reshape(3, 2), np.array([0, 1, 2], dtype=">i8"),
                                   batch_size=3)
    batch = next(iter(big_endian))
    assert batch.data[0].tolist() == [[0, 1], [2, 3], [4, 5]] and batch.label[0].tolist() == [0, 1, 2]


def test_a_rule_returning_a_plain_function_is_refused_at_bind():
    from tritonsym.operator import OpDef, register, same_shape_everywhere, unregister

    register(OpDef(name="Plain", doc="forward returns a Python function, not a Launch", params=[],
                   input_names=("data",), infer_shape=same_shape_everywhere(["data"]),
                   forward=lambda a: [lambda: a.outputs[0].copy_(a.inputs[0])], backward=lambda a: [],
                   backward_needs=lambda params, epilogue: ((), ())))
    try:
        with pytest.raises(ts.BindError, match=r"plain0 \(Plain\): item 0 of its forward rule's list is "
                                               r"'test_a_rule_returning.*<lambda>.*', not a launch; it must be "
                                               r"tritonsym.operator.Launch\(kernel, grid, args, kwargs\)"):
            S.Plain(S.Variable("data")).simple_bind(ts.cpu(), grad_req="null", data=(2, 3))
    finally:
        unregister("Plain")


def test_a_module_fed_other_features_says_what_to_do():
    net = S.SoftmaxOutput(S.FullyConnected(S.Variable("data"), num_hidden=3, name="fc"), name="softmax")
    mod = ts.mod.Module(net)
    mod.bind(data_shapes=[("data", (4, 7))], label_shapes=[("softmax_label", (4,))])
    mod.init_params()
    data = ts.io.NDArrayIter(np.zeros((8, 5)), np.zeros(8), batch_size=4)
    message = (r"the module was bound for data \(4, 7\), softmax_label \(4,\), and a batch of data \(4, 5\), "
               r"softmax_label \(4,\) needs other parameter shapes \(argument 'fc_weight' would change shape from "
               r"\(3, 7\) to \(3, 5\)\)")
    with pytest.raises(ts.BindError, match=message) as e:
        mod.fit(data, num_epoch=1)
    assert "partial_shaping" not in str(e.value)  # which fit does not take


def test_numbers_too_large_for_the_bound_dtype_are_refused():
    exe = (S.Variable("data") * 1.0).simple_bind(ts.cpu(), grad_req="null", data=(2,))
    with pytest.raises(ts.BindError, match=r"argument 'data' has 1 value\(s\) beyond the range of float32"):
        exe.forward(data=np.array([1.0, 1e300]))
