"""bind / simple_bind and the Executor: arrays, gradient requests, errors, and the promise
that forward and backward allocate nothing and move nothing."""

import networks
import numpy as np
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import tritonsym as ts
from tritonsym import BindError, ExecutionError, ShapeError

S = ts.sym


def mlp(hidden=16, classes=4):
    return networks.mlp((hidden,), classes, out="out")


def ready(exe, rng, batch=8, classes=4):
    exe.copy_params_from({n: rng.normal(scale=0.3, size=a.shape) for n, a in exe.arg_dict.items()
                          if n not in ("data", "out_label")})
    exe.forward(is_train=True, data=rng.normal(size=exe.arg_dict["data"].shape),
                out_label=rng.integers(0, classes, exe.arg_dict["out_label"].shape))
    return exe


def test_simple_bind_lays_out_one_workspace_per_dtype():
    exe = mlp().simple_bind(ts.cpu(), data=(8, 5))
    assert [tuple(a.shape) for a in exe.arg_arrays] == [(8, 5), (16, 5), (16,), (4, 16), (4,), (8,)]
    assert all(a.dtype == torch.float32 for a in exe.arg_arrays)
    arena = exe.workspace.arenas[torch.float32]
    lo, hi = arena.data_ptr(), arena.data_ptr() + arena.numel() * 4
    for tensor in exe.arg_arrays + [g for g in exe.grad_arrays if g is not None] + exe.outputs:
        assert lo <= tensor.data_ptr() < hi
    # parameters and their gradients: two contiguous regions with one layout
    params, grads = (exe.workspace.region_view(torch.float32, r) for r in ("params", "param_grads"))
    names = ["fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"]
    for name in names:
        offset = exe.arg_dict[name].data_ptr() - params.data_ptr()
        assert exe.grad_dict[name].data_ptr() - grads.data_ptr() == offset


def test_grad_req_forms_and_type_dict(rng):
    net = mlp()
    exe = net.simple_bind(ts.cpu(), grad_req={"fc1_weight": "write", "fc2_bias": "add"}, data=(8, 5),
                          type_dict={"data": np.float64})
    assert exe.arg_dict["fc1_weight"].dtype == torch.float64
    assert [n for n, g in exe.grad_dict.items() if g is not None] == ["fc1_weight", "fc2_bias"]
    exe = net.simple_bind(ts.cpu(), grad_req=["null", "write", "write", "write", "write", "null"], data=(8, 5),
                          type_dict={"data": torch.bfloat16})
    assert exe.grad_dict["data"] is None and exe.arg_dict["fc2_weight"].dtype == torch.bfloat16
    with pytest.raises(BindError, match="grad_req must be one of write, add, null; got 'sometimes'$"):
        net.simple_bind(ts.cpu(), grad_req="sometimes", data=(8, 5))
    with pytest.raises(BindError, match=r"got \{'fc1_bias': 'sometimes'\}"):
        net.simple_bind(ts.cpu(), grad_req={"fc1_bias": "sometimes"}, data=(8, 5))
    with pytest.raises(BindError, match="grad_req has 2 entries for 6 arguments"):
        net.simple_bind(ts.cpu(), grad_req=["write", "null"], data=(8, 5))
    with pytest.raises(BindError, match="grad_req names 'fc3_weight'"):
        net.simple_bind(ts.cpu(), grad_req={"fc3_weight": "write"}, data=(8, 5))


def test_integer_labels_have_no_gradient(rng):
    """Class indices as int32 labels: the default grad_req='write' binds and trains, with no
    gradient buffer for the label; one asked for by name is refused."""
    net = mlp()
    exe = net.simple_bind(ts.cpu(), type_dict={"out_label": "int32"}, data=(8, 5))
    assert exe.grad_dict["out_label"] is None and exe.arg_dict["out_label"].dtype == torch.int32
    floats = ready(mlp().simple_bind(ts.cpu(), data=(8, 5)), rng)
    exe.copy_params_from({n: a for n, a in floats.arg_dict.items() if n != "out_label"})
    exe.arg_dict["out_label"][:] = floats.arg_dict["out_label"].to(torch.int32)
    for e in (exe, floats):
        e.forward(is_train=True)
        e.backward()
    assert torch.equal(exe.outputs[0], floats.outputs[0])
    for name in ("data", "fc1_weight", "fc2_bias"):
        assert torch.equal(exe.grad_dict[name], floats.grad_dict[name]), name
    with pytest.raises(BindError, match=r"grad_req\['out_label'\] is 'write', but 'out_label' has dtype int32, "
                                        "which has no gradient; give it 'null'"):
        net.simple_bind(ts.cpu(), grad_req={"fc1_weight": "write", "out_label": "write"},
                        type_dict={"out_label": torch.int32}, data=(8, 5))
    args = {n: a.clone() for n, a in exe.arg_dict.items()}
    grads = {n: torch.zeros_like(a) for n, a in args.items()}
    bound = net.bind(ts.cpu(), args, args_grad=grads)  # one grad_req for all: the label's array is left alone
    bound.forward(is_train=True)
    bound.backward()
    assert bound.grad_dict["out_label"] is None
    assert torch.equal(bound.grad_dict["fc1_weight"], floats.grad_dict["fc1_weight"])


@pytest.mark.cpu_only  # CPU allocations; test_no_allocation_on_gpu checks the device
def test_forward_backward_allocate_nothing_and_move_nothing(rng):
    exe = ready(mlp().simple_bind(ts.cpu(), data=(8, 5)), rng)
    exe.backward()
    tensors = exe.arg_arrays + [g for g in exe.grad_arrays if g is not None] + exe.outputs
    addresses = [t.data_ptr() for t in tensors]
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        exe.forward(is_train=True)
        exe.backward()
    allocations = [(e.name, e.cpu_memory_usage) for e in prof.events() if e.cpu_memory_usage > 0]
    assert allocations == [], f"forward/backward allocated: {allocations}"
    assert [t.data_ptr() for t in exe.arg_arrays + [g for g in exe.grad_arrays if g is not None] + exe.outputs] \
        == addresses
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        torch.empty(1000)
    assert any(e.cpu_memory_usage > 0 for e in prof.events()), "the profiler sees allocations"


@pytest.mark.gpu
def test_no_allocation_on_gpu(rng):
    exe = ready(mlp().simple_bind(ts.gpu(0), data=(8, 5)), rng)
    exe.backward()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    exe.forward(is_train=True)
    exe.backward()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() == before


def test_bind_uses_given_arrays_in_place(rng):
    net = mlp()
    shapes = dict(zip(net.list_arguments(), net.infer_shape(data=(8, 5))[0]))
    args = {n: torch.as_tensor(rng.normal(size=s)).float() for n, s in shapes.items()}
    args["out_label"] = torch.as_tensor(rng.integers(0, 4, 8)).float()
    grads = {n: torch.zeros(s) for n, s in shapes.items() if n.startswith("fc")}
    exe = net.bind(ts.cpu(), args, args_grad=grads)
    assert all(exe.arg_dict[n].data_ptr() == a.data_ptr() for n, a in args.items())
    exe.forward(is_train=True)
    exe.backward()
    assert grads["fc1_weight"].abs().sum() > 0, "gradients land in the given arrays"
    assert exe.grad_dict["data"] is None
    as_list = net.bind(ts.cpu(), [args[n] for n in net.list_arguments()])
    as_list.forward()
    assert torch.equal(as_list.outputs[0], exe.outputs[0])
    as_list.forward(is_train=True)
    as_list.backward()  # nothing to compute: a no-op, as in MXNet
    assert all(g is None for g in as_list.grad_dict.values())
    with pytest.raises(ExecutionError, match="computes no gradients"):
        as_list.forward_backward()
    with pytest.raises(BindError, match=r"args\['data'\] must be a torch.Tensor \(used in place\), got ndarray"):
        net.bind(ts.cpu(), {**args, "data": args["data"].cpu().numpy()})
    with pytest.raises(BindError, match="args has no array for out_label"):
        net.bind(ts.cpu(), {n: a for n, a in args.items() if n != "out_label"})
    with pytest.raises(ts.DTypeError, match=r"fc1 \(FullyConnected\): input 1 dtype is float32 but float64 is "
                                            r"expected \(its inputs: data float64, weight float32, bias float32\)"):
        net.bind(ts.cpu(), {**args, "data": args["data"].double()})
    with pytest.raises(ShapeError, match=r"fc1 \(FullyConnected\): data has shape \(8, 5\) \(5 input features\) but "
                                         r"weight has shape \(5, 16\); num_hidden=16 expects \(16, 5\)"):
        net.bind(ts.cpu(), {**args, "fc1_weight": args["fc1_weight"].T.contiguous()})
    with pytest.raises(BindError, match=r"args_grad\['fc1_bias'\] has shape \(15,\) but \(16,\) is inferred"):
        net.bind(ts.cpu(), args, args_grad={**grads, "fc1_bias": torch.zeros(15)})
    with pytest.raises(BindError, match="is not contiguous"):
        net.bind(ts.cpu(), {**args, "fc2_weight": args["fc2_weight"].T.contiguous().T})


def test_input_errors(rng):
    exe = mlp().simple_bind(ts.cpu(), data=(8, 5))
    with pytest.raises(ExecutionError, match="argument\\(s\\) data, fc1_weight, fc1_bias, fc2_weight, fc2_bias have "
                                             "never been given a value"):
        exe.forward()
    with pytest.raises(BindError, match=r"forward: argument 'data' has shape \(8, 6\) but the bound array has shape "
                                        r"\(8, 5\)"):
        exe.forward(data=np.zeros((8, 6)))
    with pytest.raises(BindError, match="'dat' is not an argument of this executor; its arguments are data"):
        exe.forward(dat=np.zeros((8, 5)))
    exe = ready(mlp().simple_bind(ts.cpu(), data=(8, 5)), rng)
    exe.forward(is_train=False)
    with pytest.raises(ExecutionError, match="call forward\\(is_train=True\\) first; the last forward was for "
                                             "inference"):
        exe.backward()
    with pytest.raises(ExecutionError, match="forward has not run"):
        mlp().simple_bind(ts.cpu(), data=(8, 5)).backward()
    with pytest.raises(BindError, match="copy_params_from: 'fc9_weight' is not an argument"):
        exe.copy_params_from({"fc9_weight": np.zeros(3)})
    exe.copy_params_from({"fc9_weight": np.zeros(3)}, allow_extra_params=True)
    with pytest.raises(BindError, match="copy_params_from: 'moving_mean' is not an auxiliary state"):
        exe.copy_params_from({}, {"moving_mean": np.zeros(3)})
    with pytest.raises(ShapeError, match="cannot infer the shape of data"):
        mlp().simple_bind(ts.cpu())
    with pytest.raises(BindError, match="'datta' is not an argument of this symbol"):
        mlp().simple_bind(ts.cpu(), datta=(8, 5))
    for empty in ((0, 5), (8, 0)):
        with pytest.raises(ShapeError, match=rf"bind: data \({empty[0]}, {empty[1]}\).*: every dimension of a "
                                             "bound array must be at least 1"):
            mlp().simple_bind(ts.cpu(), data=empty)
    with pytest.raises(ShapeError, match=r"bind: data \(0, 5\), out_label \(0,\): every dimension"):
        mlp().bind(ts.cpu(), {n: torch.zeros(s) for n, s in zip(mlp().list_arguments(),
                                                                 mlp().infer_shape_partial(data=(0, 5))[0])})


def test_a_bad_value_leaves_every_array_as_it_was(rng):
    exe = ready(mlp().simple_bind(ts.cpu(), type_dict={"data": torch.float16}, data=(8, 5)), rng)
    before = {n: t.clone() for n, t in exe.arg_dict.items()}
    good = {"fc1_weight": np.zeros((16, 5)), "fc1_bias": np.ones(16)}
    with pytest.raises(BindError, match="copy_params_from: argument 'fc2_weight' has shape \\(16, 4\\)"):
        exe.copy_params_from({**good, "fc2_weight": np.zeros((16, 4))})
    too_big = np.zeros((4, 16))
    too_big[0, :3] = [1e6, -3e5, 65504]  # 65504 is float16's largest: it fits
    with pytest.raises(BindError, match="copy_params_from: argument 'fc2_weight' has 2 value\\(s\\) beyond the "
                                        "range of float16 \\(largest magnitude 1e\\+06; float16 holds up to "
                                        "65504\\); they would become inf"):
        exe.copy_params_from({**good, "fc2_weight": too_big})
    with pytest.raises(BindError, match="forward: argument 'out_label' has shape"):
        exe.forward(is_train=True, data=np.zeros((8, 5)), out_label=np.zeros(7))
    with pytest.raises(BindError, match="'fc3_weight' is not an argument"):
        exe.forward(data=np.zeros((8, 5)), fc3_weight=np.zeros(1))
    for name, value in exe.arg_dict.items():
        assert torch.equal(value, before[name]), f"{name} was written before the error"
    exe.copy_params_from({"fc1_weight": np.full((16, 5), np.inf)})  # an inf given is an inf kept: no error
    assert torch.isinf(exe.arg_dict["fc1_weight"]).all()


def test_label_is_needed_by_training_only(rng):
    """Inference reads no label; a training forward does: it makes the loss gradient."""
    exe = mlp().simple_bind(ts.cpu(), data=(8, 5))
    exe.copy_params_from({"fc1_weight": rng.normal(size=(16, 5)), "fc1_bias": np.zeros(16),
                          "fc2_weight": rng.normal(size=(4, 16)), "fc2_bias": np.zeros(4)})
    exe.forward(data=rng.normal(size=(8, 5)))
    with pytest.raises(ExecutionError, match=r"forward: argument\(s\) out_label have never been given a value"):
        exe.forward(is_train=True)


def test_non_loss_outputs_need_head_gradients(rng):
    net = S.FullyConnected(S.Variable("x"), num_hidden=3, name="fc")
    exe = net.simple_bind(ts.cpu(), x=(4, 2))
    exe.copy_params_from({"x": rng.normal(size=(4, 2)), "fc_weight": rng.normal(size=(3, 2)), "fc_bias": np.zeros(3)})
    exe.forward(is_train=True)
    with pytest.raises(ExecutionError, match="output\\(s\\) fc_output are not loss outputs.*MakeLoss.*BlockGrad"):
        exe.backward()
    head = rng.normal(size=(4, 3))
    exe.backward(out_grads=torch.as_tensor(head).float())
    np.testing.assert_allclose(exe.grad_dict["fc_bias"].cpu().numpy(), head.sum(0), rtol=1e-5)
    exe.backward(out_grads={"fc_output": head})
    with pytest.raises(ExecutionError, match="2 out_grads for 1 outputs"):
        exe.backward(out_grads=[head, head])


def test_grad_req_add_accumulates_and_write_overwrites(rng):
    exe = ready(mlp().simple_bind(ts.cpu(), grad_req="add", data=(8, 5), type_dict={"data": "float64"}), rng)
    exe.zero_grad()
    assert all((g == 0).all() for g in exe.grad_arrays)
    exe.backward()
    once = exe.grad_dict["fc1_weight"].clone()
    exe.forward(is_train=True)  # the loss gradient in the storage backward reused is made again
    exe.backward()
    torch.testing.assert_close(exe.grad_dict["fc1_weight"], 2 * once)
    write = ready(mlp().simple_bind(ts.cpu(), data=(8, 5), type_dict={"data": "float64"}), rng)
    write.copy_params_from({n: exe.arg_dict[n] for n in exe.arg_dict})
    for _ in range(2):
        write.forward(is_train=True)
        write.backward()
    torch.testing.assert_close(write.grad_dict["fc1_weight"], once)
    assert (write.grad_dict["out_label"] == 0).all(), "a label takes a zero gradient under grad_req='write'"


def test_fused_and_unfused_give_identical_results(rng):
    """Exposing fc1's output stops the fusion pass; float64 results must not change by a bit,
    except fc1's bias gradient: fused, it is summed from fc2's input-gradient epilogue (its
    partial sums follow fc2's tile); unfused, from fc1's own, and the two kernels' tiles
    differ on a GPU (the H200 run found the last bits apart), so the order of the sum does."""
    fused = mlp()
    unfused = S.Group([fused, S.BlockGrad(fused.get_internals()["fc1_output"])])
    runs = []
    for sym in (fused, unfused):
        exe = sym.simple_bind(ts.cpu(), data=(8, 5), type_dict={"data": "float64"})
        runs.append(exe)
    assert "\n  fc1+relu1 (FullyConnected+relu) forward: 1 launch(es)\n" in runs[0].debug_str()
    assert "fc1+relu1" not in runs[1].debug_str()
    values = {n: rng.normal(size=a.shape) for n, a in runs[0].arg_dict.items()}
    values["out_label"] = rng.integers(0, 4, 8).astype(float)
    for exe in runs:
        exe.forward(is_train=True, **values)
        exe.backward()
    assert torch.equal(runs[0].outputs[0], runs[1].outputs[0])
    for name in ("fc1_weight", "fc2_weight", "data"):
        assert torch.equal(runs[0].grad_dict[name], runs[1].grad_dict[name]), name
    torch.testing.assert_close(runs[0].grad_dict["fc1_bias"], runs[1].grad_dict["fc1_bias"], rtol=1e-14, atol=1e-15)


def test_grad_ready_steps_name_the_step_that_finishes_each_gradient(rng):
    """What a data-parallel run relies on to start reducing a gradient early: after the step
    ``grad_ready_steps`` names, the gradient holds its final value, and not before (-1: no
    step writes it, and the zeros it starts with are final)."""
    x, z = S.Variable("x"), S.Variable("z")
    blocked = S.MakeLoss(S.Activation(x, act_type="tanh") * 2.0 + S.BlockGrad(z))
    for net, shapes in ((mlp(), {"data": (8, 5)}), (blocked, {"x": (3, 4), "z": (3, 4)})):
        exe = net.simple_bind(ts.cpu(), type_dict=dict.fromkeys(net.list_arguments(), "float64"), **shapes)
        exe.forward(is_train=True, **{n: rng.integers(0, 4, a.shape) if n == "out_label" else rng.normal(size=a.shape)
                                      for n, a in exe.arg_dict.items()})
        after = {}
        exe.backward(after_step=lambda i: after.__setitem__(i, {n: g.clone() for n, g in exe.grad_dict.items()
                                                                if g is not None}))
        ready = exe.grad_ready_steps()
        assert sorted(after) == list(range(-1, len(after) - 1)) and set(ready) == set(after[-1])
        for name, step in ready.items():
            for i, grads in after.items():
                assert torch.equal(grads[name], exe.grad_dict[name]) == (i >= step), (name, i, step)
    assert ready == {"x": ready["x"], "z": -1} and ready["x"] >= 0
    assert not exe.grad_dict["z"].any()


@pytest.mark.parametrize("grad_req, passes", [("write", 1), ("add", 2)])
def test_an_output_that_is_an_argument_takes_its_head_gradient(rng, grad_req, passes):
    """Group([x, MakeLoss(x * x)]): x's gradient is the head gradient given for output x plus
    2x from the loss; under 'add' each backward adds all of it again."""
    x = S.Variable("x")
    exe = S.Group([x, S.MakeLoss(x * x)]).simple_bind(ts.cpu(), x=(2, 3), grad_req=grad_req,
                                                      type_dict={"x": "float64"})
    xv, head = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    for _ in range(2):
        exe.forward(is_train=True, x=xv)
        exe.backward(out_grads=[head, None])
    np.testing.assert_allclose(exe.grad_dict["x"].numpy(), passes * (head + 2 * xv), rtol=1e-15)


def test_reshape_shares_parameters(rng):
    exe = ready(mlp().simple_bind(ts.cpu(), data=(8, 5)), rng)
    small = exe.reshape(data=(3, 5), out_label=(3,))
    # the reshaped data is a new array holding the old one's leading rows (MXNet's values);
    # the shared weights are the same arrays
    assert torch.equal(small.arg_dict["data"], exe.arg_dict["data"][:3])
    assert small.arg_dict["data"].data_ptr() != exe.arg_dict["data"].data_ptr()
    grown = exe.reshape(data=(9, 5), out_label=(9,))  # a larger array has no value yet
    with pytest.raises(ExecutionError, match=r"forward: argument\(s\) data have never been given a value"):
        grown.forward()
    assert small.arg_dict["fc1_weight"].data_ptr() == exe.arg_dict["fc1_weight"].data_ptr()
    assert small.grad_dict["fc1_weight"].data_ptr() == exe.grad_dict["fc1_weight"].data_ptr()
    assert small.arg_dict["data"].shape == (3, 5)
    small.forward(data=exe.arg_dict["data"][:3])
    torch.testing.assert_close(small.outputs[0], exe.outputs[0][:3])
    with pytest.raises(BindError, match="argument 'out_label' would change shape from \\(8,\\) to \\(3,\\)"):
        exe.reshape(data=(3, 5))
    assert exe.reshape(partial_shaping=True, data=(3, 5)).arg_dict["out_label"].shape == (3,)


def test_duplicate_variable_names_are_rejected():
    a1, a2 = S.Variable("a"), S.Variable("a")
    with pytest.raises(BindError, match="two different variables are both named 'a': one is input 'lhs' of _plus\\d+ "
                                        "\\(elemwise_add\\), the other input 'rhs'"):
        (a1 + a2).simple_bind(ts.cpu(), a=(2, 2))


def test_kernel_failures_name_the_node(rng, monkeypatch):
    exe = ready(mlp().simple_bind(ts.cpu(), data=(8, 5)), rng)
    step = exe._program.forward_steps[1]

    def broken():
        raise RuntimeError("device fault")

    monkeypatch.setattr(step, "launches", [broken])
    with pytest.raises(ExecutionError, match="while running fc2 \\(FullyConnected\\) forward: RuntimeError: device "
                                             "fault"):
        exe.forward()


def test_outputs_and_contexts(rng):
    exe = ready(mlp().simple_bind(ts.cpu(), data=(8, 5)), rng)
    assert list(exe.output_dict) == ["out_output"]
    assert exe.output_dict["out_output"] is not None
    torch.testing.assert_close(exe.outputs[0].sum(1), torch.ones(8))
    assert ts.gpu(1) == ts.gpu(1) and ts.Context("cpu", 0) != ts.gpu()
    if not torch.cuda.is_available():
        assert repr(ts.cpu()) == "cpu(0)"
        with pytest.raises(BindError, match="no CUDA device is available"):
            mlp().simple_bind(ts.gpu(0), data=(8, 5))
    text = exe.debug_str()
    assert "workspace" in text and "fc1_weight_grad" in text and "relu1_output" in text


def test_forward_backward_with_an_update_is_one_phase_and_the_same_step(rng):
    # The three phases run as one (one CUDA graph with cuda_graph=True): the same numbers
    # as forward, backward and the update called one by one, over steps whose scalars change.
    params = {"fc1_weight": rng.normal(size=(16, 5)), "fc1_bias": rng.normal(size=16),
              "fc2_weight": rng.normal(size=(4, 16)), "fc2_bias": np.zeros(4)}
    runs = []
    for fused in (False, True):
        exe = mlp().simple_bind(ts.cpu(), type_dict={"data": torch.float64}, data=(8, 5))
        exe.copy_params_from(params)
        schedule = ts.lr_scheduler.FactorScheduler(step=1, factor=0.5)
        updater = ts.optimizer.FlatUpdater(ts.optimizer.Adam(learning_rate=0.1, lr_scheduler=schedule), exe)
        steps = np.random.default_rng(1)
        for _ in range(3):
            data, label = steps.normal(size=(8, 5)), steps.integers(0, 4, 8)
            if fused:
                updater.prepare()
                outputs = exe.forward_backward(then=updater.launch_all, data=data, out_label=label)
            else:
                outputs = exe.forward(is_train=True, data=data, out_label=label)
                exe.backward()
                updater.step()
        runs.append(({n: v.clone() for n, v in exe.arg_dict.items()}, outputs[0].clone(), updater.optimizer.num_update))
    (plain, plain_out, plain_count), (fused, fused_out, fused_count) = runs
    assert plain_count == fused_count == 3
    assert torch.equal(plain_out, fused_out)
    for name in plain:
        assert torch.equal(plain[name], fused[name]), name


def test_forward_backward_checks_before_running(rng):
    exe = mlp().simple_bind(ts.cpu(), data=(8, 5))
    exe.copy_params_from({"fc1_weight": rng.normal(size=(16, 5)), "fc1_bias": np.zeros(16),
                          "fc2_weight": rng.normal(size=(4, 16)), "fc2_bias": np.zeros(4)})
    ran = []
    with pytest.raises(ExecutionError, match="forward_backward: argument\\(s\\) out_label have never been given"):
        exe.forward_backward(then=lambda: ran.append(1), data=rng.normal(size=(8, 5)))
    assert not ran
    net = S.FullyConnected(S.Variable("x"), num_hidden=3, name="fc")
    plain = net.simple_bind(ts.cpu(), x=(4, 2))
    plain.copy_params_from({"x": rng.normal(size=(4, 2)), "fc_weight": rng.normal(size=(3, 2)), "fc_bias": np.zeros(3)})
    with pytest.raises(ExecutionError, match="fc_output are not loss outputs"):
        plain.forward_backward(then=lambda: ran.append(1))
    assert not ran
    head = rng.normal(size=(4, 3))
    plain.forward_backward(out_grads=head, then=lambda: ran.append(1))
    assert ran == [1]
    np.testing.assert_allclose(plain.grad_dict["fc_bias"].cpu().numpy(), head.sum(0), rtol=1e-5)


def test_symbol_eval_binds_runs_forward_and_returns_outputs_of_their_own(rng):
    """MXNet's Symbol.eval: each argument keeps its dtype; a label inference does not read may
    be left out; a weight left out is named; the outputs do not hold the workspace."""
    x, w, b = rng.normal(size=(5, 4)), rng.normal(size=(3, 4)), rng.normal(size=3)
    fc = S.FullyConnected(S.Variable("data"), name="fc", num_hidden=3)
    probs, = S.SoftmaxOutput(fc, name="out").eval(data=x, fc_weight=w, fc_bias=b)
    logits = x @ w.T + b
    expected = np.exp(logits - logits.max(1, keepdims=True))
    assert probs.dtype == torch.float64 and probs._base is None
    np.testing.assert_allclose(probs.numpy(), expected / expected.sum(1, keepdims=True), rtol=1e-13)
    a, c = S.Variable("a"), S.Variable("c")
    first, second = S.Group([a * 2.0, a + c]).eval(a=[[1.0] * 3] * 2, c=np.full((2, 3), 0.5))
    assert first.dtype == torch.float64 and first.tolist() == [[2.0] * 3] * 2 and second.tolist() == [[1.5] * 3] * 2
    half, = (a * 2.0).eval(a=torch.ones(2, 3, dtype=torch.float32))
    assert half.dtype == torch.float32 and half.tolist() == [[2.0] * 3] * 2
    with pytest.raises(ts.ExecutionError, match="fc_weight, fc_bias have never been given a value"):
        fc.eval(data=x)


def test_nonfinite_counts_named_arrays_and_sets_nothing():
    exe = (S.Variable("a") * 2.0).simple_bind(ts.cpu(), a=(4,))
    (out,) = exe.output_dict  # its automatic name depends on what this process built before
    exe.forward(a=np.array([1.0, np.nan, np.inf, 2.0]))
    assert exe.nonfinite(["a", out]) == {"a": 2, out: 2}
    exe.forward(a=np.ones(4))
    assert exe.nonfinite(["a", out]) == {}
    with pytest.raises(ts.BindError, match=r"nonfinite: \['b'\] are neither arguments nor outputs"):
        exe.nonfinite(["b"])
    fresh = (S.Variable("a") * 2.0).simple_bind(ts.cpu(), a=(4,))
    fresh.nonfinite(["a"])
    with pytest.raises(ts.ExecutionError, match="'a'"):  # counting gave it no value
        fresh.forward()
