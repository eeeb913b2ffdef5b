"""Property tests (hypothesis) of the memory planner: random graphs of the registered
operators give bit-identical outputs and gradients planned and unplanned (with and without
mirror), no two live values share a byte, a second backward is refused exactly when the
plan let backward overwrite what it reads, every offset assignment is valid, and the
bounded search packs a chain of layers at the lower bound."""

import numpy as np
import pytest
import torch
from plan_checks import assert_no_live_overlap, backward_is_repeatable
from property_settings import given, property_settings, settings, st

import tritonsym as ts
from tritonsym.base import ExecutionError
from tritonsym.executor.planner import (
    Block,
    bounded_search,
    exact_search,
    greedy_by_breadth,
    greedy_by_size,
    lower_bound,
    mxnet_storage,
)

S = ts.sym
SETTINGS = property_settings(30)

ACTIVATIONS = [lambda x: S.Activation(x, act_type=a) for a in ("relu", "sigmoid", "tanh", "softrelu", "softsign")]
ACTIVATIONS += [lambda x: S.LeakyReLU(x, act_type="leaky", slope=0.1), lambda x: S.LeakyReLU(x, act_type="elu"),
                lambda x: S.LeakyReLU(x, act_type="gelu")]
ELEMENTWISE = [lambda x: x * 0.5, lambda x: 1.0 - x, lambda x: -x, lambda x: S.square(x), lambda x: S.abs(x),
               lambda x: S.exp(S.Activation(x, act_type="tanh")), lambda x: S.BlockGrad(x) + x,
               lambda x: S.softmax(x), lambda x: S.log_softmax(x, axis=0), lambda x: S.Flatten(x)]
BINARY = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / (S.square(b) + 1.0)]


@st.composite
def graphs(draw):
    """A random network over data (batch, features): FullyConnected layers (fused with an
    activation or not), activations, elementwise, softmax, views, values used several
    times; ending in a loss, or in outputs that take head gradients."""
    batch, features = draw(st.integers(1, 6)), draw(st.integers(1, 7))
    pool = [(S.Variable("data"), features)]
    for i in range(draw(st.integers(1, 7))):
        choice = draw(st.integers(0, 3))
        x, width = draw(st.sampled_from(pool))
        if choice == 0:
            hidden = draw(st.integers(1, 9))
            y = S.FullyConnected(x, num_hidden=hidden, name=f"fc{i}", no_bias=draw(st.booleans()))
            if draw(st.booleans()):
                y = draw(st.sampled_from(ACTIVATIONS))(y)
            pool.append((y, hidden))
        elif choice == 1:
            pool.append((draw(st.sampled_from(ACTIVATIONS))(x), width))
        elif choice == 2:
            pool.append((draw(st.sampled_from(ELEMENTWISE))(x), width))
        else:
            same = [p for p in pool if p[1] == width]
            other, _ = draw(st.sampled_from(same))
            pool.append((draw(st.sampled_from(BINARY))(x, other), width))
    last, width = pool[-1]
    ending = draw(st.sampled_from(["softmax", "regression", "makeloss", "heads"]))
    if ending == "softmax":
        out = S.SoftmaxOutput(S.FullyConnected(last, num_hidden=3, name="cls"), name="loss")
    elif ending == "regression":
        out = S.LinearRegressionOutput(last, name="loss")
    elif ending == "makeloss":
        out = S.MakeLoss(S.square(last), name="loss")
    else:
        extra, _ = draw(st.sampled_from(pool[1:]))
        out = S.Group([last, extra]) if extra is not last else last
    return out, batch, features


def bind(net, batch, features, grad_req, **options):
    return net.simple_bind(ts.cpu(), grad_req=grad_req, data=(batch, features),
                           type_dict={n: "float64" for n in net.list_arguments()}, **options)


def step(exe, seed):
    rng = np.random.default_rng(seed)
    for name, array in exe.arg_dict.items():
        if name == "loss_label" and array.shape != exe.outputs[0].shape:
            array.copy_(torch.from_numpy(rng.integers(0, 3, array.shape).astype(np.float64)))
        else:
            array.copy_(torch.from_numpy(rng.normal(size=array.shape)))
    heads = [torch.from_numpy(rng.normal(size=o.shape)) for o in exe.outputs]
    exe.forward(is_train=True)
    exe.backward(out_grads=heads)
    return [o.clone() for o in exe.outputs], {n: g.clone() for n, g in exe.grad_dict.items() if g is not None}, heads


def bits(t):
    return t.contiguous().view(torch.int64)


@pytest.mark.slow  # 9 s of generated graphs (the quick run stays under 5 minutes)
@settings(**SETTINGS)
@given(graphs(), st.sampled_from(["write", "add", "mixed"]), st.booleans(), st.integers(0, 2**31 - 1))
def test_random_graphs_planned_equal_unplanned(graph, grad_req, mirror, seed):
    net, batch, features = graph
    if grad_req == "mixed":  # every other argument frozen
        grad_req = {n: ("write", "null")[i % 2] for i, n in enumerate(net.list_arguments())}
    reference = bind(net, batch, features, grad_req, memory_plan="none")
    planned = bind(net, batch, features, grad_req, mirror=mirror)
    if isinstance(grad_req, str) and grad_req == "add":
        reference.zero_grad()
        planned.zero_grad()
    (outs_a, grads_a, _), (outs_b, grads_b, heads) = step(reference, seed), step(planned, seed)
    for a, b in zip(outs_a, outs_b):
        assert torch.equal(bits(a), bits(b))
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert torch.equal(bits(grads_a[name]), bits(grads_b[name])), name
    assert_no_live_overlap(planned)
    # A second backward on the same forward is refused exactly when the plan let backward
    # overwrite what it reads, and otherwise repeats the gradients.
    repeatable = backward_is_repeatable(planned)
    assert planned._backward_consumes_forward == (not repeatable)
    if repeatable:  # the same as the unplanned executor's second backward (which "add" sums into)
        reference.backward(out_grads=heads)
        planned.backward(out_grads=heads)
        for name in grads_b:
            assert torch.equal(bits(planned.grad_dict[name]), bits(reference.grad_dict[name])), name
    else:
        with pytest.raises(ExecutionError, match="each backward needs its own forward"):
            planned.backward(out_grads=heads)
    m = planned.memory
    assert m.lower_bound_bytes <= m.planned_bytes <= m.naive_bytes + 256 * len(m.values)
    assert m.naive_bytes == _unfused_naive_bytes(net, planned)
    # forward-only plans of the same graph
    inference = bind(net, batch, features, "null")
    assert inference.memory.planned_bytes <= m.planned_bytes
    assert_no_live_overlap(inference)


def _unfused_naive_bytes(net, exe) -> int:
    """The naive baseline the old way: build the unfused program and count its values."""
    from tritonsym.executor.planner import naive_bytes
    from tritonsym.executor.program import build_program
    from tritonsym.symbol.graph import aux_variables
    from tritonsym.symbol.infer import propagate

    given = {n: tuple(a.shape) for n, a in exe.arg_dict.items()}
    shapes, _ = propagate(net, given, "shape")
    types, _ = propagate(net, {n: a.dtype for n, a in exe.arg_dict.items()}, "type")
    nodes = net.nodes()
    return naive_bytes(build_program(net, nodes, shapes, types, exe._program.grad_req, aux_variables(nodes),
                                     fuse=False))


@st.composite
def block_sets(draw):
    n = draw(st.integers(1, 14))
    blocks = []
    for _ in range(n):
        start = draw(st.integers(0, 12))
        blocks.append(Block([], torch.float32, draw(st.integers(0, 9)) * 100 + draw(st.integers(0, 99)), start,
                            start + draw(st.integers(0, 5))))
    return blocks


def assert_valid(blocks, offsets, ceiling=None):
    for i, a in enumerate(blocks):
        assert offsets[id(a)] % 256 == 0 and offsets[id(a)] >= 0
        if ceiling is not None:
            assert offsets[id(a)] + a.size <= ceiling
        for b in blocks[i + 1:]:
            if a.meets(b) and a.size and b.size:
                assert offsets[id(a)] + a.size <= offsets[id(b)] or offsets[id(b)] + b.size <= offsets[id(a)]


@settings(**property_settings(100))
@given(st.lists(st.integers(1, 8), min_size=2, max_size=12))
def test_bounded_search_packs_a_chain_at_the_lower_bound(sizes):
    """Values each overlapping only their neighbours (a chain of layers) fit in the largest
    pair of neighbours: filling from both ends of the arena reaches the bound exactly."""
    blocks = [Block([], torch.float32, size * 256, i, i + 1) for i, size in enumerate(sizes)]
    floor = lower_bound(blocks, aligned_sizes=True)[0]
    offsets = bounded_search(blocks, floor, floor + 256)
    assert offsets is not None
    assert_valid(blocks, offsets, floor)


@pytest.mark.slow  # 18 s: 200 block sets
@settings(**property_settings(200))
@given(block_sets())
def test_offset_assignments_are_valid_and_above_the_bound(blocks):
    floor = lower_bound(blocks, aligned_sizes=True)[0]
    best = None
    for layout in (greedy_by_size, greedy_by_breadth, mxnet_storage):
        offsets = layout(blocks)
        assert_valid(blocks, offsets)
        extent = max(offsets[id(b)] + b.size for b in blocks)
        assert extent >= floor
        best = extent if best is None else min(best, extent)
    exact = exact_search(blocks, floor)
    if exact is not None:
        assert_valid(blocks, exact, floor)
    if best > floor:
        bounded = bounded_search(blocks, floor, best)
        if bounded is not None:
            assert_valid(blocks, bounded, best - 1)
