"""The memory planner: lifetimes from what backward needs, in-place pairs, offsets against
the lower bound, forward-only plans, mirror, and results that planning never changes."""

import networks
import numpy as np
import pytest
import torch
from bench_memory import gated  # gated blocks h*g*0.5 + h: arithmetic and shared inputs
from plan_checks import assert_no_live_overlap

import tritonsym as ts
from tritonsym import BindError, ExecutionError
from tritonsym.executor.mirror import MAX_CHAIN
from tritonsym.executor.planner import (
    ALIGN_BYTES,
    Block,
    greedy_by_breadth,
    greedy_by_breadth_order,
    greedy_by_size,
    lower_bound,
    mxnet_storage,
)

S = ts.sym
F32 = 4


def mlp(sizes, act="relu"):
    """``sizes``: the input features, the hidden sizes, then the classes."""
    return networks.mlp(sizes[1:-1], sizes[-1], act=act)


def values(exe):
    return {v.name: v for v in exe.memory.values}


def fill(exe, rng, classes=5):
    for name, array in exe.arg_dict.items():
        if name.endswith("label"):
            array.copy_(torch.from_numpy(rng.integers(0, classes, array.shape).astype(np.float64)))
        else:
            array.copy_(torch.from_numpy(rng.normal(scale=0.5, size=array.shape)))


def run(exe, rng_seed=0):
    fill(exe, np.random.default_rng(rng_seed))
    exe.forward(is_train=True)
    exe.backward()
    return [o.clone() for o in exe.outputs], {n: g.clone() for n, g in exe.grad_dict.items() if g is not None}


def assert_bitwise_equal(a, b):
    (outs_a, grads_a), (outs_b, grads_b) = a, b
    for x, y in zip(outs_a, outs_b):
        assert torch.equal(x.view(torch.int64), y.view(torch.int64))
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert torch.equal(grads_a[name].view(torch.int64), grads_b[name].view(torch.int64)), name


# ------------------------------------------------------------------ sizes and bounds


def test_chain_mlp_lower_bound_from_the_math():
    """At fc2's backward, the softmax output, y1 (fc2's input), dy2' (relu2's gradient
    applied by fc3's backward epilogue: y2 is dead) and dy1' are live, and the 32-row
    bias partials of fc2's epilogue: that is the peak, and the plan reaches it exactly.
    The unfused graph's schedule has the same peak without the partials: the lower bound
    over the schedules the executor could run."""
    b = 64
    exe = mlp([784, 128, 64, 10]).simple_bind(ts.cpu(), data=(b, 784))
    m = exe.memory
    peak = b * F32 * (10 + 128 + 64 + 128)  # softmax output, y1, dy2', dy1'
    partials = (b // 32) * 128 * F32
    assert m.lower_bound_bytes == peak
    assert m.schedule_bound_bytes == peak + partials
    assert m.peak_step == "fc2+relu2 (FullyConnected) backward"
    assert m.planned_bytes == m.schedule_bound_aligned_bytes == peak + partials  # sizes multiples of 256 here
    # naive: z, y and their gradients for each hidden layer, fc3's output, softmax output, its
    # data gradient (made by the training forward, MXNet's backward makes it)
    assert m.naive_bytes == b * F32 * (4 * 128 + 4 * 64 + 3 * 10)
    assert m.naive_bytes >= 2 * m.planned_bytes
    # what the report says is what was allocated
    assert m.workspace_bytes == sum(a.untyped_storage().nbytes() for a in exe.workspace.arenas.values())
    assert m.training and m.algorithm in ("greedy", "mxnet") and not m.mirror
    # no planning: every value of the (fused) program in its own buffer, end to end
    unplanned = mlp([784, 128, 64, 10]).simple_bind(ts.cpu(), memory_plan="none", data=(b, 784)).memory
    assert unplanned.algorithm == "none"
    assert unplanned.planned_bytes == sum(v.nbytes for v in unplanned.values) == \
        b * F32 * (2 * 128 + 2 * 64 + 4 * 10) + (b // 32) * F32 * (64 + 128)  # and fc3's and fc2's partials
    # (the 10-wide values: fc3's output, softmax's, the loss gradient its training forward keeps, and
    # fc3's output gradient, which a plan puts over that one)


def test_the_backward_keeps_three_activations_not_four():
    """784-1024-1024-10 at batch 256 (float32): each relu's gradient is applied before the
    products of its layer (in the epilogue of the layer after it), so at most three
    256x1024 arrays are live: 3.00 MiB plus the 10-wide values and the bias partials."""
    m = mlp([784, 1024, 1024, 10]).simple_bind(ts.cpu(), data=(256, 784)).memory
    big, small = 256 * 1024 * F32, 256 * 10 * F32
    partials = (256 // 32) * 1024 * F32
    assert m.planned_bytes == m.schedule_bound_aligned_bytes == 3 * big + 2 * small + partials
    assert m.lower_bound_bytes == 3 * big + 2 * small  # the unfused schedule's, without the partials
    # the old fused backward, with relu' inside both products, kept y alive through them: 4 arrays
    assert m.planned_bytes < 4 * big


def test_an_activation_without_an_epilogue_after_it_runs_its_own_backward():
    """fc1+relu's output read by two steps: no single step finishes its gradient, so relu's
    backward runs as a step of its own, in place over the gradient, before fc1's plain one."""
    data = S.Variable("data")
    h = S.Activation(S.FullyConnected(data, num_hidden=16, name="fc1"), act_type="relu", name="relu1")
    net = S.SoftmaxOutput(S.FullyConnected(h, num_hidden=4, name="fc2") + S.FullyConnected(h, num_hidden=4,
                                                                                               name="fc3"), name="out")
    exe = net.simple_bind(ts.cpu(), data=(8, 5))
    labels = [s.label for s in exe._program.backward_steps]
    assert labels.index("relu1 (Activation) backward") == labels.index("fc1+relu1 (FullyConnected) backward") - 1
    assert not any(s.grad_epilogue for s in exe._program.backward_steps)
    inplace = {v.name: v.inplace_over for v in exe.memory.values}
    assert inplace["fc1_output_grad"] == "relu1_output_grad"


@pytest.mark.parametrize("sizes, batch", [([37, 23, 11, 3], 7), ([50, 64, 48, 32, 10], 13), ([784, 128, 64, 10], 64)])
def test_chain_mlps_meet_the_targets(sizes, batch):
    train = mlp(sizes).simple_bind(ts.cpu(), data=(batch, sizes[0])).memory
    assert train.planned_bytes == train.schedule_bound_aligned_bytes  # equal up to alignment
    assert train.planned_bytes <= train.lower_bound_bytes + ALIGN_BYTES * len(train.values)
    infer = mlp(sizes).simple_bind(ts.cpu(), grad_req="null", data=(batch, sizes[0])).memory
    assert not infer.training
    assert infer.planned_bytes == infer.schedule_bound_aligned_bytes
    assert infer.planned_bytes < train.planned_bytes * 2 / 3  # two activation-sized arrays of three
    hidden = len(sizes) - 2
    if min(sizes[1:-1]) * batch * F32 % ALIGN_BYTES == 0:  # targets stated without alignment padding
        assert train.planned_bytes <= train.naive_bytes / 2
        if hidden >= 3:
            assert infer.planned_bytes <= infer.naive_bytes / 3


@pytest.mark.parametrize("sizes, batch, grad_req", [([130, 274, 77, 160, 52, 39, 171], 61, "write"),
                                                     ([274, 182, 85, 80, 171, 6, 28], 20, "null")])
def test_searches_reach_the_bound_where_the_heuristics_do_not(sizes, batch, grad_req):
    """Sizes a random sweep found: greedy by size, by breadth and MXNet's allocator all
    end above the bound; the exact search (training) and the two-ended ceiling search
    (inference) reach it."""
    net = mlp(sizes)
    best = net.simple_bind(ts.cpu(), grad_req=grad_req, data=(batch, sizes[0])).memory
    assert best.planned_bytes == best.schedule_bound_aligned_bytes
    assert best.algorithm in ("search", "bounded")
    for heuristic in ("greedy", "breadth", "mxnet"):
        alone = net.simple_bind(ts.cpu(), grad_req=grad_req, memory_plan=heuristic, data=(batch, sizes[0])).memory
        assert alone.planned_bytes > best.planned_bytes


def test_gated_graph_is_within_ten_percent_of_the_bound():
    m = gated(64, 3).simple_bind(ts.cpu(), data=(16, 64)).memory
    assert m.planned_bytes <= 1.10 * m.lower_bound_bytes
    assert m.planned_bytes <= m.naive_bytes / 2


# -------------------------------------------------------- lifetimes and in-place


def test_backward_keeps_only_what_it_needs():
    """FC keeps its input, not its output; _mul_scalar keeps nothing; relu keeps its output."""
    fc1 = S.FullyConnected(S.Variable("data"), num_hidden=6, name="fc1")
    net = S.Activation(S._mul_scalar(fc1, scalar=2.0, name="double"), act_type="relu", name="relu")
    net = S.SoftmaxOutput(S.FullyConnected(net, num_hidden=3, name="fc2"), name="out")
    exe = net.simple_bind(ts.cpu(), data=(5, 4))
    v = values(exe)
    assert v["fc1_output"].last_step == "double (_mul_scalar) forward"  # read by nobody in backward
    assert v["double_output"].last_step == "relu (Activation) forward"
    assert v["relu_output"].last_step == "relu (Activation) backward"  # relu's and fc2's backward read it
    assert v["fc2_output"].last_step == "out (SoftmaxOutput) forward"  # softmax backward reads its output
    # the chain fc1 -> *2 -> relu runs in place: one buffer for the three values
    assert v["double_output"].inplace_over == "fc1_output"
    assert v["relu_output"].inplace_over == "double_output"
    assert v["out_output"].inplace_over == "fc2_output"
    # backward in place too: relu's input gradient over its output gradient, and so on
    assert v["double_output_grad"].inplace_over == "relu_output_grad"
    assert v["fc1_output_grad"].inplace_over == "double_output_grad"
    assert assert_no_live_overlap(exe) > 0


def test_no_inplace_when_the_input_is_read_later():
    """x feeds softrelu and a later multiply: softrelu must not overwrite it (a tanh would
    bind with the product as one GatedActivation, executor/gates.py)."""
    x = S.FullyConnected(S.Variable("data"), num_hidden=6, name="fc")
    net = S.MakeLoss(S.Activation(x, act_type="softrelu", name="t") * x)
    exe = net.simple_bind(ts.cpu(), data=(5, 4))
    assert values(exe)["t_output"].inplace_over is None
    assert_no_live_overlap(exe)


def test_gradient_of_a_value_used_three_times_is_one_buffer():
    a = S.FullyConnected(S.Variable("data"), num_hidden=6, name="fc")
    net = S.MakeLoss(a * a + a)
    exe = net.simple_bind(ts.cpu(), data=(5, 4), type_dict={"data": "float64"})
    grads = [v for v in exe.memory.values if v.name.startswith("fc_output_grad")]
    assert len(grads) == 1
    fill(exe, np.random.default_rng(1))
    exe.forward(is_train=True)
    exe.backward()
    x, w, bias = (exe.arg_dict[n].cpu().numpy() for n in ("data", "fc_weight", "fc_bias"))
    a_value = x @ w.T + bias
    np.testing.assert_allclose(exe.grad_dict["fc_bias"].cpu().numpy(), (2 * a_value + 1).sum(0), rtol=1e-12)


def test_grad_req_null_and_add_in_the_plan():
    net = mlp([9, 64, 64, 3])
    full = net.simple_bind(ts.cpu(), data=(16, 9)).memory
    add = net.simple_bind(ts.cpu(), grad_req="add", data=(16, 9)).memory
    assert add.planned_bytes == full.planned_bytes
    # a frozen first layer (and no data gradient): fc1's backward does not run, dy1 is never made
    frozen = {n: "null" if n.startswith(("fc1", "data")) else "write" for n in net.list_arguments()}
    part = net.simple_bind(ts.cpu(), grad_req=frozen, data=(16, 9)).memory
    assert "relu1_output_grad" in [v.name for v in full.values]
    assert "relu1_output_grad" not in [v.name for v in part.values]
    assert not any(s.name.startswith("fc1") for s in net.simple_bind(ts.cpu(), grad_req=frozen,
                                                                      data=(16, 9))._program.backward_steps)
    assert part.planned_bytes <= full.planned_bytes


def test_inference_bind_plans_forward_only():
    net = mlp([64, 48, 48, 48, 10])
    train = net.simple_bind(ts.cpu(), data=(16, 64)).memory
    infer = net.simple_bind(ts.cpu(), grad_req="null", data=(16, 64)).memory
    assert not infer.training and not any(v.kind == "grad" for v in infer.values)
    assert infer.planned_bytes <= infer.naive_bytes / 3
    assert infer.planned_bytes < train.planned_bytes * 2 / 3  # two activation-sized arrays of three
    # bind without args_grad is an inference bind too
    exe = net.simple_bind(ts.cpu(), data=(16, 64))
    bound = net.bind(ts.cpu(), args=exe.arg_dict)
    assert bound.memory.planned_bytes == infer.planned_bytes


# ------------------------------------------------------------- planned == unplanned


@pytest.mark.parametrize("plan", ["greedy", pytest.param("breadth", marks=pytest.mark.slow),
                                  pytest.param("mxnet", marks=pytest.mark.slow), "auto"])
@pytest.mark.parametrize("make, features", [(lambda: mlp([11, 9, 7, 5]), 11), (lambda: gated(8, 3), 8)],
                         ids=["mlp", "gated"])
def test_planning_changes_no_bit(make, features, plan):
    net = make()
    shapes = dict(data=(6, features), type_dict={"data": "float64"})
    reference = run(net.simple_bind(ts.cpu(), memory_plan="none", **shapes))
    exe = net.simple_bind(ts.cpu(), memory_plan=plan, **shapes)
    assert_bitwise_equal(run(exe), reference)
    assert assert_no_live_overlap(exe) > 0


def test_mirror_recomputes_cheap_values_with_the_same_gradients():
    net = gated(32, 4)
    shapes = dict(data=(8, 32), type_dict={"data": "float64"})
    plain = net.simple_bind(ts.cpu(), **shapes)
    mirrored = net.simple_bind(ts.cpu(), mirror=True, **shapes)
    assert mirrored.memory.mirror
    assert mirrored.memory.planned_bytes < plain.memory.planned_bytes
    assert mirrored.memory.planned_bytes <= 1.10 * mirrored.memory.lower_bound_bytes
    recomputed = [v.name for v in mirrored.memory.values if v.kind == "recompute"]
    # each block's output (an elemwise_add) is rebuilt from the kept tanh and sigmoid outputs
    assert sum(n.startswith("_plus") for n in recomputed) == 4
    assert "recompute" in mirrored.debug_str()
    assert_bitwise_equal(run(mirrored), run(plain))
    assert_no_live_overlap(mirrored)


@pytest.mark.parametrize("steps", [MAX_CHAIN - 1, MAX_CHAIN])
def test_mirror_rebuilds_a_chain_of_at_most_max_chain_cheap_steps(steps):
    """data -> (+1) x steps -> tanh -> FC: FC's backward reads the tanh output, which only a
    chain of steps + 1 cheap steps from the data can rebuild (backward keeps none of the
    +1 outputs). A chain of at most MAX_CHAIN cheap steps is rebuilt, a longer one kept."""
    net = S.Variable("data")
    for _ in range(steps):
        net = net + 1.0
    net = S.FullyConnected(S.Activation(net, act_type="tanh", name="t"), num_hidden=3, name="fc")
    net = S.SoftmaxOutput(net, name="out")
    shapes = dict(data=(4, 5), type_dict={"data": "float64"})
    mirrored = net.simple_bind(ts.cpu(), mirror=True, **shapes)
    recomputed = [v.name for v in mirrored.memory.values if v.kind == "recompute"]
    rebuilt = steps + 1 <= MAX_CHAIN
    assert len(recomputed) == (steps + 1 if rebuilt else 0)
    # tanh's backward reads its output, FC's its input: both the rebuilt copy, if there is one
    read = {v.name for s in mirrored._program.backward_steps if s.phase == "backward"
            for v in s.inputs + s.outputs if v is not None}
    assert {"t_output", "t_output_recomputed"} & read == {"t_output_recomputed" if rebuilt else "t_output"}
    assert_bitwise_equal(run(mirrored), run(net.simple_bind(ts.cpu(), **shapes)))


def test_mirror_changes_nothing_where_nothing_is_cheap():
    net = mlp([20, 16, 12, 4])  # every activation is fused into its FC: nothing to recompute
    a = net.simple_bind(ts.cpu(), data=(4, 20)).memory
    b = net.simple_bind(ts.cpu(), mirror=True, data=(4, 20)).memory
    assert a.planned_bytes == b.planned_bytes and not any(v.kind == "recompute" for v in b.values)


# ------------------------------------------------------------------- executor rules


def test_second_backward_needs_a_forward_when_backward_reuses_forward_storage():
    exe = gated(16, 2).simple_bind(ts.cpu(), data=(4, 16))
    fill(exe, np.random.default_rng(0))
    exe.forward(is_train=True)
    exe.backward()
    with pytest.raises(ExecutionError, match="each backward needs its own forward"):
        exe.backward()
    exe.forward(is_train=True)
    exe.backward()
    keep = gated(16, 2).simple_bind(ts.cpu(), memory_plan="none", data=(4, 16))
    fill(keep, np.random.default_rng(0))
    keep.forward(is_train=True)
    keep.backward()
    keep.backward()  # nothing was overwritten


def test_bad_options_are_named():
    with pytest.raises(BindError, match="memory_plan must be one of auto, greedy, breadth, mxnet, none; got 'fast'"):
        mlp([4, 3, 2]).simple_bind(ts.cpu(), memory_plan="fast", data=(2, 4))
    with pytest.raises(BindError, match="mirror must be True or False, got 'yes'"):
        mlp([4, 3, 2]).simple_bind(ts.cpu(), mirror="yes", data=(2, 4))


def test_debug_str_prints_the_plan():
    exe = mlp([9, 8, 3]).simple_bind(ts.cpu(), data=(4, 9))
    text = exe.debug_str()
    m = exe.memory
    assert f"{m.planned_bytes} bytes planned, {m.naive_bytes} naive, lower bound {m.lower_bound_bytes}" in text
    assert "softmax_output" in text and "in place over fc2_output" in text and "shares with" in text
    assert str(m) in text.replace("\n  ", "\n")
    assert text.endswith("\nTotal 0 MB allocated\n")  # MXNet's closing line: whole MiB, rounded down
    big = mlp([512, 512, 3]).simple_bind(ts.cpu(), data=(1024, 512))
    nbytes = big.debug_str().split("workspace ")[1].split(" bytes")[0]
    assert big.debug_str().endswith(f"\nTotal {int(nbytes) >> 20} MB allocated\n") and int(nbytes) >> 20 > 0


def test_reshape_plans_again():
    exe = mlp([9, 64, 3]).simple_bind(ts.cpu(), mirror=True, memory_plan="mxnet", data=(16, 9))
    bigger = exe.reshape(data=(32, 9), softmax_label=(32,))
    assert bigger.memory.planned_bytes > exe.memory.planned_bytes
    assert bigger.memory.mirror and bigger.memory.algorithm == "mxnet"


# ------------------------------------------------------------- offset algorithms


def block(size, start, end):
    return Block([], torch.float32, size, start, end)


def assert_valid(blocks, offsets):
    for i, a in enumerate(blocks):
        for b in blocks[i + 1:]:
            if a.meets(b):
                lo_a, lo_b = offsets[id(a)], offsets[id(b)]
                assert lo_a + a.size <= lo_b or lo_b + b.size <= lo_a


def test_greedy_fills_the_gap_mxnet_cannot():
    """A small block dies, a large one is born: MXNet's size matching grows a storage,
    greedy by size places the large block first and fits the rest around it."""
    blocks = [block(256, 0, 1), block(1024, 0, 3), block(768, 2, 3), block(256, 2, 2)]
    for layout in (greedy_by_size, mxnet_storage):
        assert_valid(blocks, layout(blocks))
    greedy = greedy_by_size(blocks)
    assert max(greedy[id(b)] + b.size for b in blocks) == lower_bound(blocks)[0] == 2048


def test_every_layout_reuses_a_gap_that_fits_exactly():
    """C is born after A dies, inside D's lifetime: A's 256 bytes below D fit C exactly."""
    a, d, c = block(256, 0, 0), block(256, 0, 2), block(256, 1, 1)
    for layout in (greedy_by_size, greedy_by_breadth, mxnet_storage):
        offsets = layout([a, d, c])
        assert offsets[id(c)] == offsets[id(a)] == 0 and offsets[id(d)] == 256, layout.__name__


def test_mxnet_storage_matches_sizes_like_mxnet():
    """MXNet's pooled allocator: a request takes the smallest free storage that fits, up to
    MATCH_RANGE (16) times its size, else grows the largest smaller free one within 1/16 of
    it, else gets a new storage; storages are laid end to end, in the order they were made."""
    def storages(blocks):
        offsets = mxnet_storage(blocks)
        return [offsets[id(b)] for b in blocks], max(offsets[id(b)] + b.size for b in blocks)

    # the smallest of two that fit
    small, large, request = block(512, 0, 0), block(1024, 0, 0), block(256, 1, 1)
    offsets, extent = storages([large, small, request])
    assert offsets[2] == offsets[1] and extent == 1536
    # exactly 16 times the request still fits; 17 times does not
    offsets, extent = storages([block(16 * 256, 0, 0), block(256, 1, 1)])
    assert offsets == [0, 0] and extent == 4096
    offsets, extent = storages([block(17 * 256, 0, 0), block(256, 1, 1)])
    assert offsets == [0, 17 * 256] and extent == 18 * 256
    # none fits: the largest smaller one grows, down to 1/16 of the request and not below
    offsets, extent = storages([block(256, 0, 0), block(512, 0, 0), block(1024, 1, 1)])
    assert offsets == [1024, 0, 0] and extent == 1024 + 256  # blocks born together: largest first
    offsets, extent = storages([block(256, 0, 0), block(16 * 256, 1, 1)])
    assert offsets == [0, 0] and extent == 4096
    offsets, extent = storages([block(256, 0, 0), block(17 * 256, 1, 1)])
    assert offsets == [0, 256] and extent == 18 * 256


def test_breadth_order_starts_with_the_most_crowded_position_largest_first():
    blocks = [block(256, 0, 1), block(512, 1, 2), block(1024, 2, 2), block(768, 2, 3), block(2048, 4, 4)]
    # position 2 holds 512 + 1024 + 768 bytes, more than position 4's 2048
    assert [b.size for b in greedy_by_breadth_order(blocks)] == [1024, 768, 512, 2048, 256]


def test_lower_bound_counts_blocks_live_at_one_position():
    blocks = [block(100, 0, 2), block(50, 2, 4), block(300, 3, 3)]
    assert lower_bound(blocks) == (350, 3)
    assert lower_bound(blocks, aligned_sizes=True) == (768, 3)
    assert lower_bound([block(256, 4, 5), block(256, 1, 2)]) == (256, 1), "the first of equal peaks"


NAIVE_NETWORKS = [("mlp relu", lambda: mlp([12, 16, 8, 4])), ("mlp tanh", lambda: mlp([12, 8, 4], act="tanh")),
                  ("unfusable", lambda: _shared_fc_output())]


def _shared_fc_output():
    """FullyConnected's output read twice: its relu cannot be fused."""
    fc = S.FullyConnected(S.Variable("data"), num_hidden=6, name="fc")
    return S.MakeLoss(S.Activation(fc, act_type="relu") + fc)


@pytest.mark.parametrize("grad_req", ["write", "null"])
@pytest.mark.parametrize("name, make", NAIVE_NETWORKS, ids=[n for n, _ in NAIVE_NETWORKS])
def test_the_naive_baseline_is_the_unfused_graph(name, make, grad_req):
    """naive_bytes is counted from the fused program (bind builds one program, not two):
    it must equal every internal value of the unfused program in a buffer of its own."""
    from tritonsym.executor.planner import naive_bytes
    from tritonsym.executor.prepare import prepare
    from tritonsym.executor.program import build_program
    from tritonsym.symbol.graph import aux_variables
    from tritonsym.symbol.infer import propagate

    net = make()
    exe = net.simple_bind(ts.cpu(), grad_req=grad_req, data=(5, 12))
    nodes = net.nodes()
    shapes, _ = propagate(net, {"data": (5, 12)}, "shape")
    types, _ = propagate(net, {"data": torch.float32}, "type")
    unfused = build_program(net, nodes, shapes, types, exe._program.grad_req, aux_variables(nodes), fuse=False)
    assert exe.memory.naive_bytes == naive_bytes(unfused)
    assert any(s.fused_away for s in exe._program.forward_steps) == (name != "unfusable")
    _, program, _ = prepare(net, ts.cpu(), {"data": (5, 12)}, {}, grad_req, ts.executor.options.BindOptions())
    assert naive_bytes(program) == naive_bytes(unfused)
