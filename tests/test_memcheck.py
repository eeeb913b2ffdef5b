"""The interpreter's out-of-bounds check (``TRITONSYM_MEMCHECK=1``, on for the whole suite):
it must catch a kernel that leaves its tensors, including into a neighbouring view of the
same buffer (which compute-sanitizer cannot see), before the access happens, and must not
flag masked-off lanes or launches that stay inside."""

import os

import numpy as np
import pytest
import torch
import triton
import triton.language as tl
from tritonsym.ops import INTERPRET, memcheck
from tritonsym.ops._common import Launch, run

import tritonsym as ts

pytestmark = pytest.mark.cpu_only


@triton.jit
def _copy_kernel(X, Y, n, EXTRA: tl.constexpr, BLOCK: tl.constexpr):
    """y[i] = x[i] for i < n + EXTRA: EXTRA > 0 runs off the end of both."""
    offsets = tl.arange(0, BLOCK)
    mask = offsets < n + EXTRA
    tl.store(Y + offsets, tl.load(X + offsets, mask=mask), mask=mask)


@triton.jit
def _masked_far_kernel(X, Y, n, BLOCK: tl.constexpr):
    """Lanes past n point a million elements away, but are masked off."""
    offsets = tl.arange(0, BLOCK)
    mask = offsets < n
    far = tl.where(mask, offsets, offsets + 1_000_000)
    tl.store(Y + far, tl.load(X + far, mask=mask, other=0.0) * 2, mask=mask)


@pytest.fixture
def checked(monkeypatch):
    monkeypatch.setattr(memcheck, "ENABLED", True)


def _launch(kernel, x, y, n, **kwargs):
    run([Launch(kernel, (1,), [x, y, n], dict(BLOCK=16, **kwargs))])


def test_the_suite_runs_with_the_check_on():
    assert os.environ.get("TRITONSYM_MEMCHECK") == "1" and memcheck.ENABLED == INTERPRET


def test_a_launch_that_stays_inside_passes(checked):
    x, y = torch.arange(10.0), torch.zeros(10)
    _launch(_copy_kernel, x, y, 10, EXTRA=0)
    assert torch.equal(x, y)


def test_a_read_past_the_end_is_named(checked):
    x, y = torch.arange(10.0), torch.zeros(12)
    with pytest.raises(memcheck.MemoryAccessError) as error:
        _launch(_copy_kernel, x, y, 10, EXTRA=2)
    message = str(error.value)
    assert message.startswith("memcheck: _copy_kernel load of 4 bytes")
    assert "4 bytes past the end of X (shape (10,), strides (1,), float32)" in message
    assert "2 of 12 active lanes out of bounds" in message


def test_a_write_into_the_neighbouring_view_is_caught_before_it_happens(checked):
    # Two planned buffers side by side in one arena: running off y lands in z, inside the
    # allocation (compute-sanitizer passes it), but outside every tensor of the launch.
    arena = torch.zeros(24)
    x, y, z = torch.arange(12.0), arena[:10], arena[10:]
    z.fill_(7.0)
    with pytest.raises(memcheck.MemoryAccessError, match="store of 4 bytes .* past the end of Y"):
        _launch(_copy_kernel, x, y, 10, EXTRA=2)
    assert torch.equal(z, torch.full((14,), 7.0)), "the neighbour was written"


def test_a_strided_view_spans_its_lowest_to_highest_element():
    base = torch.zeros(6, 8)
    span = memcheck.Span("W", base[1:4, 2:5])
    assert span.low == base.data_ptr() + (8 + 2) * 4
    assert span.high == base.data_ptr() + (3 * 8 + 4) * 4 + 4
    assert memcheck.Span("E", base[:0]).low == memcheck.Span("E", base[:0]).high  # empty: nothing to touch


def test_masked_off_lanes_are_not_accesses(checked):
    x, y = torch.arange(5.0), torch.zeros(5)
    _launch(_masked_far_kernel, x, y, 5)
    assert torch.equal(y, 2 * x)


def test_a_kernel_launched_outside_tritonsym_is_not_checked(checked):
    x, y = torch.arange(10.0), torch.zeros(12)
    _copy_kernel[(1,)](x, y, 10, EXTRA=0, BLOCK=16)  # not through Launch: no spans, no check
    assert torch.equal(y[:10], x)


def test_every_operator_kernel_is_checked_while_a_network_trains(checked, monkeypatch):
    # A bound network's buffers are views into one workspace: shrink the span the check
    # allows for one argument of one launch, and a step must fail on exactly that launch.
    net = ts.sym.SoftmaxOutput(ts.sym.FullyConnected(ts.sym.Variable("data"), num_hidden=5, name="fc"), name="out")
    exe = net.simple_bind(ts.cpu(), data=(6, 7))
    for name, array in exe.arg_dict.items():
        array.copy_(torch.as_tensor(np.random.default_rng(0).integers(0, 5, array.shape), dtype=array.dtype))
    exe.forward(is_train=True)
    exe.backward()  # every launch inside its tensors
    launch = next(la for step in exe._program.forward_steps for la in step.launches if la.name == "_fc_forward_kernel")
    y = next(s for s in launch._spans if s.name == "Y")
    y.high -= 4  # the output's last element is no longer the launch's, nor any other argument's
    launch._spans = [s for s in launch._spans if s is y or s.high <= y.high or s.low >= y.high + 4]
    with pytest.raises(ts.base.ExecutionError, match=r"fc \(FullyConnected\) forward: MemoryAccessError: "
                       r"memcheck: _fc_forward_kernel store .* past the end of Y") as error:
        exe.forward(is_train=True)
    assert isinstance(error.value.__cause__, memcheck.MemoryAccessError)


@triton.jit
def _shifted_kernel(X, OUT, n, BLOCK: tl.constexpr):
    """A user's off-by-one: out[i] = x[i + 1] for every i < n, reading x[n]."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(OUT + i, tl.load(X + i + 1, mask=i < n), mask=i < n)


def test_a_custom_operators_kernel_is_checked_inside_test_utils_memcheck(monkeypatch):
    monkeypatch.setattr(memcheck, "ENABLED", False)  # off for the process: the block turns it on
    from tritonsym.operator import OpDef, register, same_shape_everywhere, unregister

    def forward(a):
        x, out = a.inputs[0], a.outputs[0]
        return [ts.operator.Launch(_shifted_kernel, (triton.cdiv(x.numel(), 16),), [x, out, x.numel()],
                                   dict(BLOCK=16))]

    register(OpDef(name="Shifted", doc="x shifted by one element (wrongly: it reads one past the end)", params=[],
                   input_names=("data",), infer_shape=same_shape_everywhere(["data"]), forward=forward,
                   backward=lambda a: [], backward_needs=lambda params, epilogue: ((), ())))
    try:
        net = ts.sym.Shifted(ts.sym.Variable("data"))
        exe = net.simple_bind(ts.cpu(), data=(3, 5), grad_req="null")
        exe.forward(data=torch.ones(3, 5))  # unchecked: the stray read goes unnoticed
        with ts.test_utils.memcheck():
            with pytest.raises(ts.base.ExecutionError, match=r"_shifted_kernel load of 4 bytes .* 4 bytes past the "
                                                             r"end of X \(shape \(3, 5\)") as error:
                exe.forward(data=torch.ones(3, 5))
        assert isinstance(error.value.__cause__, ts.test_utils.MemoryAccessError)
        assert memcheck.ENABLED is False
    finally:
        unregister("Shifted")


def test_memcheck_refuses_compiled_kernels_rather_than_check_nothing(monkeypatch):
    monkeypatch.setattr(memcheck, "INTERPRET", False)
    with pytest.raises(RuntimeError, match="only the interpreter's accesses can be checked.*compute-sanitizer"):
        with ts.test_utils.memcheck():
            pass


@triton.jit
def _all_store_first_kernel(X, Y, n, BLOCK: tl.constexpr):
    """Every program writes its block's sum into y[0]: a race between programs."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(Y, tl.sum(tl.load(X + i, mask=i < n, other=0.0), 0))


@triton.jit
def _reads_neighbour_kernel(X, Y, n, BLOCK: tl.constexpr):
    """Program p writes y[p * BLOCK ...] and reads what program p + 1 writes."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(Y + i, tl.load(X + i, mask=i < n), mask=i < n)
    j = i + BLOCK
    tl.store(Y + i, tl.load(Y + i, mask=i < n) + tl.load(Y + j, mask=j < n, other=0.0), mask=i < n)


@triton.jit
def _atomic_sum_kernel(X, Y, n, BLOCK: tl.constexpr):
    """Every program adds its block's sum into y[0] atomically, and updates its own block in place."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(X + i, mask=i < n, other=0.0)
    tl.store(X + i, x * 2, mask=i < n)
    tl.atomic_add(Y, tl.sum(x, 0))


def _launch_grid(kernel, x, y, n, programs):
    run([Launch(kernel, (programs,), [x, y, n], dict(BLOCK=4))])


def test_two_programs_storing_to_one_element_is_a_race(checked):
    with pytest.raises(memcheck.MemoryAccessError, match=r"race in _all_store_first_kernel: programs \(0, 0, 0\) "
                                                         r"and \(1, 0, 0\) both store to byte 0 of Y"):
        _launch_grid(_all_store_first_kernel, torch.ones(12), torch.zeros(1), 12, 3)
    _launch_grid(_all_store_first_kernel, torch.ones(4), torch.zeros(1), 4, 1)  # one program: no race


def test_loading_what_another_program_stores_is_a_race(checked):
    with pytest.raises(memcheck.MemoryAccessError, match=r"race in _reads_neighbour_kernel: program \(0, 0, 0\) "
                                                         r"loads what program \(1, 0, 0\) stores, at byte 16 of Y"):
        _launch_grid(_reads_neighbour_kernel, torch.ones(12), torch.zeros(12), 12, 3)


def test_atomics_and_a_programs_own_read_modify_write_are_not_races(checked):
    x, y = torch.arange(12.0), torch.zeros(1)
    _launch_grid(_atomic_sum_kernel, x, y, 12, 3)
    assert y.item() == 66.0 and torch.equal(x, 2 * torch.arange(12.0))


@triton.jit
def _block_copy_kernel(X, Y, n, BLOCK: tl.constexpr):
    """Program p copies block p: no two programs touch one element."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(Y + i, tl.load(X + i, mask=i < n), mask=i < n)


def test_runs_of_one_launch_with_other_grids_are_checked_apart(checked):
    """An autotuner runs a launch's kernel once per config, each with its own grid and
    blocks: program 0 of one run and program 1 of another writing one element is no race."""
    x, y = torch.arange(12.0), torch.zeros(12)

    class TwoRuns:  # stands for an autotuner racing a 12-wide and a 4-wide config
        arg_names = ["X", "Y", "n"]

        def __getitem__(self, grid):
            def call(*args, **kwargs):
                _block_copy_kernel[(1,)](*args, BLOCK=16)
                _block_copy_kernel[(3,)](*args, BLOCK=4)
            return call

    run([Launch(TwoRuns(), (1,), [x, y, 12], {})])
    assert torch.equal(y, x)

    class TwoRunsOneRacing(TwoRuns):
        def __getitem__(self, grid):
            def call(*args, **kwargs):
                _block_copy_kernel[(1,)](*args, BLOCK=16)
                _all_store_first_kernel[(3,)](*args, BLOCK=4)
            return call

    with pytest.raises(memcheck.MemoryAccessError, match=r"programs \(0, 0, 0\) and \(1, 0, 0\) both store to byte 0"):
        run([Launch(TwoRunsOneRacing(), (1,), [x, y, 12], {})])
