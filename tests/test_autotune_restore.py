"""Autotuning never changes a result: every autotuned kernel, in place, accumulating or
plain, gives after a tuning pass exactly the bits of one untuned run of the config chosen.

Tuning runs a kernel several times per config before the real call. A kernel that writes
over its input (softmax in place) or adds into its output (a gradient accumulated under
``grad_req='add'``) would see its own earlier results unless the autotuner restores what
it writes (``restore_value``). Where nothing is raced (the interpreter, TRITONSYM_AUTOTUNE=0)
the test forces a tuning pass: at least two configs, each really run three times, the first
one chosen. With autotuning on a GPU (scripts/gpu_checks.sh autotune) the autotuner races
its configs for real and the test compares against the config it chose.
"""

import pytest
import torch
import triton
from triton.runtime.autotuner import Autotuner
from tritonsym.ops import _common, batch_dot, convolution, deformable_convolution, fully_connected, softmax

from tritonsym import ops

RACES_FOR_REAL = _common.AUTOTUNE and not ops.INTERPRET
RUNS_PER_CONFIG = 3


def _forced(launch, monkeypatch, fastest: str) -> list:
    """Make the next call of ``launch`` tune: a cleared cache and, unless the autotuner races
    for real, a stand-in timer that runs each config RUNS_PER_CONFIG times and ranks them in
    order, the ``fastest`` ("first" or "last") winning. Returns the list the stand-in appends
    a timing to per config."""
    tuner = launch.kernel
    monkeypatch.setattr(tuner, "cache", {})
    monkeypatch.setattr(tuner, "cache_results", False)  # no tuning result read from disk
    timed = []
    if RACES_FOR_REAL:
        return timed
    named = dict(zip(tuner.fn.arg_names, launch.args))
    pruned = tuner.early_config_prune(tuner.configs, named, **launch.kwargs) if tuner.early_config_prune \
        else tuner.configs
    if len(pruned) < 2:  # a second config with the same tiles: the same bits, run as a rival
        first = pruned[0]
        pruned = [first, triton.Config(dict(first.kwargs), num_warps=first.num_warps, num_stages=first.num_stages)]
    monkeypatch.setattr(tuner, "configs", list(pruned))
    monkeypatch.setattr(tuner, "early_config_prune", None)

    def bench(kernel_call, quantiles):
        for _ in range(RUNS_PER_CONFIG):
            kernel_call()
        timed.append(float(len(timed) + 1) * (1 if fastest == "first" else -1))
        return [timed[-1]] * len(quantiles)

    monkeypatch.setattr(tuner, "do_bench", bench)
    return timed


def _untuned(launch, config) -> None:
    """One run of ``launch`` with ``config``, bypassing the autotuner."""
    grid = launch.grid(config.all_kwargs()) if callable(launch.grid) else launch.grid
    launch.kernel.fn[grid](*launch.args, **launch.kwargs, **config.all_kwargs())


def _kernels(case: str) -> list:
    kernels = CASES[case][0]
    return list(kernels) if isinstance(kernels, tuple) else [kernels]


def _tuned_equals_untuned(case: str, monkeypatch, fastest: str = "first") -> None:
    """``make()`` plans launches on fresh inputs (the same values every call) and returns
    (launches, outputs). Tuned through the autotuner vs untuned with the chosen config."""
    make = CASES[case][1]
    launches, outputs = make()
    tuned = [launch for launch in launches if isinstance(launch.kernel, Autotuner)]
    assert [launch.kernel for launch in tuned] == _kernels(case), "the launches planned other autotuned kernels"
    timings = [_forced(launch, monkeypatch, fastest) for launch in tuned]
    for launch in launches:
        launch()
    chosen = {id(launch): launch.kernel.best_config for launch in tuned}
    if RACES_FOR_REAL:
        raced = [len(getattr(launch.kernel, "configs_timings", {}) or {}) for launch in tuned]
    else:
        raced = [len(t) for t in timings]
    assert all(n >= 2 for n in raced), f"no tuning pass ran: configs raced per launch {raced}"
    reference_launches, expected = make()
    for launch, reference in zip(launches, reference_launches):
        if id(launch) in chosen:
            _untuned(reference, chosen[id(launch)])
        else:
            reference()
    for i, (got, want) in enumerate(zip(outputs, expected)):
        same = torch.equal(got.isnan(), want.isnan()) and torch.equal(got.nan_to_num(), want.nan_to_num())
        difference = (got.double() - want.double()).nan_to_num().abs().max().item()
        assert same, f"output {i}: the tuning pass changed the result (largest difference {difference:.3g}; " \
                     f"configs chosen: {list(chosen.values())})"


def _tensors(seed: int, *shapes, dtype=torch.float32) -> list[torch.Tensor]:
    gen = torch.Generator(torch.get_default_device()).manual_seed(seed)
    device = torch.get_default_device()
    return [torch.randn(*shape, generator=gen, dtype=torch.float64).to(device, dtype) for shape in shapes]


FC = dict(m=45, n=37, k=53)
FC_TMA = dict(m=45, n=40, k=56)  # TMA needs 16-byte aligned rows: 40 and 56 bfloat16 values


def _fc_forward(tma: bool):
    def make():
        m, n, k = (FC_TMA if tma else FC).values()
        x, w, b = _tensors(1, (m, k), (n, k), (n,), dtype=torch.bfloat16 if tma else torch.float32)
        y = torch.full((m, n), float("nan"), dtype=x.dtype, device=x.device)
        launches = fully_connected.plan_fully_connected_forward(x, w, b, y, act="relu")
        assert launches[0].kwargs["TMA_READY"] is tma
        return launches, [y]
    return make


def _fc_backward(accumulate: bool):
    def make():
        m, n, k = FC["m"], FC["n"], FC["k"]
        dy, x, w, y, dx, dw, db = _tensors(2, (m, n), (m, k), (n, k), (m, n), (m, k), (n, k), (n,))
        if accumulate:  # adding into every gradient
            launches = fully_connected.plan_fully_connected_backward(
                dy, x, w, grad_x=dx, grad_weight=dw, grad_bias=db, accumulate_x=True, accumulate_weight=True,
                accumulate_bias=True)
            return launches, [dx, dw, db]
        # dx finished for the relu before it (x is its output), with that layer's bias partials
        x = x.relu()
        shape, dtype = fully_connected.bias_partials(m, k, x.dtype)
        parts, input_db = torch.empty(shape, dtype=dtype, device=x.device), torch.empty(k, device=x.device)
        launches = fully_connected.plan_fully_connected_backward(
            dy, x, w, grad_x=dx, grad_weight=dw, grad_bias=db, input_act="relu", input_grad_bias=input_db,
            input_partials=parts)
        return launches, [dx, dw, db, parts, input_db]
    return make


def _batch_dot(accumulate: bool):
    def make():
        a, b, out = _tensors(5, (3, 45, 53), (3, 53, 37), (3, 45, 37))
        # a transposed output, as a gradient of a transposed operand is written
        target = out.transpose(1, 2) if not accumulate else out
        lhs, rhs = (b.transpose(1, 2), a.transpose(1, 2)) if not accumulate else (a, b)
        return batch_dot.plan_batch_dot(lhs, rhs, target, accumulate=accumulate), [out]
    return make


# Wider than the one-pass block in the interpreter and on a GPU: the looped kernels; more
# rows than the split threshold, so rows are not split.
WIDE = (softmax.SPLIT_BELOW_ROWS, softmax.MAX_BLOCK + 37)


def _convolution(accumulate: bool):
    """Forward and both gradients of a strided, grouped 2-d convolution, added into their
    targets when ``accumulate``."""
    def make():
        x, w, b, dy = _tensors(4, (2, 4, 7, 6), (6, 2, 3, 2), (6,), (2, 6, 3, 5))
        geometry = dict(stride=(2, 1), dilate=(1, 1), pad=(0, 0), groups=2)
        y, dx, dw = (torch.full_like(t, 0.5 if accumulate else float("nan")) for t in (dy, x, w))
        launches = convolution.plan_convolution(x, w, b, y, accumulate=accumulate, **geometry)
        launches += convolution.plan_convolution_backward(dy, x, w, dx, dw, None, accumulate=(accumulate,) * 3,
                                                          **geometry)
        return launches, [y, dx, dw]
    return make


def _deformable_convolution(accumulate: bool):
    """Forward and every gradient of a strided, grouped DCN v2 layer, the output and the
    weight's gradient added into when ``accumulate`` (the column gradient is scratch)."""
    def make():
        x, w, dy, mask, offset = _tensors(4, (2, 4, 7, 6), (6, 2, 3, 2), (2, 6, 3, 5), (2, 12, 3, 5), (2, 24, 3, 5))
        geometry = dict(kernel=(3, 2), stride=(2, 1), dilate=(1, 1), pad=(0, 0), groups=2, deformable_groups=2,
                        zero_pad=True)
        y, dx, doffset, dmask, dw = (torch.full_like(t, 0.5 if accumulate else float("nan"))
                                     for t in (dy, x, offset, mask, w))
        launches = deformable_convolution.plan_deformable_convolution(x, offset, mask, w, None, y,
                                                                      accumulate=accumulate, **geometry)
        launches += deformable_convolution.plan_deformable_convolution_backward(
            dy, x, offset, mask, w, dx, doffset, dmask, dw, None, accumulate=(accumulate,) * 5, **geometry)
        return launches, [y, dx, doffset, dmask, dw]
    return make


def _softmax_forward(in_place: bool, log: bool):
    def make():
        (x,) = _tensors(3, WIDE)
        x = x * 3
        y = x if in_place else torch.full_like(x, float("nan"))
        return softmax.plan_softmax_forward(x, y, -1, log), [y]
    return make


def _softmax_backward(over: str, log: bool):
    def make():
        dy, y, dx = _tensors(4, WIDE, WIDE, WIDE)
        y = torch.softmax(y.double(), -1).to(y.dtype)
        grad_in = {"fresh": dx, "accumulate": dx, "out_grad": dy, "output": y}[over]
        launches = softmax.plan_softmax_backward(dy, y, grad_in, -1, log, accumulate=over == "accumulate")
        return launches, [grad_in]
    return make


@pytest.fixture
def autotuned(monkeypatch):
    """Plan the autotuned launches that the interpreter and TRITONSYM_AUTOTUNE=0 would plan
    untuned (the looped softmax kernels then call their jit function directly)."""
    monkeypatch.setattr(softmax, "INTERPRET", False)
    monkeypatch.setattr(softmax, "AUTOTUNE", True)


CASES = {
    "fc forward": (fully_connected._fc_forward_kernel, _fc_forward(tma=False)),
    "fc forward tma": (fully_connected._fc_forward_kernel, _fc_forward(tma=True)),
    "fc backward": ((fully_connected._fc_backward_input_kernel, fully_connected._fc_backward_weight_kernel),
                    _fc_backward(accumulate=False)),
    "fc backward accumulating": ((fully_connected._fc_backward_input_kernel,
                                  fully_connected._fc_backward_weight_kernel), _fc_backward(accumulate=True)),
    "convolution": ((convolution._conv_forward_kernel, convolution._conv_input_grad_kernel,
                     convolution._conv_weight_grad_kernel), _convolution(accumulate=False)),
    "convolution accumulating": ((convolution._conv_forward_kernel, convolution._conv_input_grad_kernel,
                                  convolution._conv_weight_grad_kernel), _convolution(accumulate=True)),
    "deformable convolution": ((deformable_convolution._forward_kernel, deformable_convolution._weight_grad_kernel,
                                deformable_convolution._column_grad_kernel), _deformable_convolution(False)),
    "deformable convolution accumulating": ((deformable_convolution._forward_kernel,
                                             deformable_convolution._weight_grad_kernel,
                                             deformable_convolution._column_grad_kernel),
                                            _deformable_convolution(True)),
    "batch_dot": (batch_dot._batch_dot_kernel, _batch_dot(accumulate=False)),
    "batch_dot accumulating": (batch_dot._batch_dot_kernel, _batch_dot(accumulate=True)),
    "softmax forward": (softmax._softmax_forward_looped_tuned, _softmax_forward(in_place=False, log=False)),
    "softmax forward in place": (softmax._softmax_forward_looped_in_place, _softmax_forward(in_place=True, log=False)),
    "log-softmax forward in place": (softmax._softmax_forward_looped_in_place,
                                     _softmax_forward(in_place=True, log=True)),
    "softmax backward": (softmax._softmax_backward_looped_kernel, _softmax_backward("fresh", log=False)),
    "softmax backward accumulating": (softmax._softmax_backward_looped_kernel,
                                      _softmax_backward("accumulate", log=False)),
    "softmax backward over its output gradient": (softmax._softmax_backward_looped_kernel,
                                                  _softmax_backward("out_grad", log=False)),
    "log-softmax backward over its output": (softmax._softmax_backward_looped_kernel,
                                             _softmax_backward("output", log=True)),
}


# Each kernel's plain case in the quick run; its variants (accumulating, in place, over
# another operand) under -m slow.
_VARIANT = ("accumulating", "in place", "over its")


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow if any(v in c for v in _VARIANT) else ())
                                  for c in CASES])
def test_a_tuning_pass_leaves_the_result_of_one_untuned_run(case, autotuned, monkeypatch):
    if "tma" in case:
        monkeypatch.setattr(fully_connected, "TMA_MODE", "1")
        if not fully_connected.tma_wanted(torch.get_default_device()):
            pytest.skip("this Triton has no TMA descriptors")
        # Race the TMA configs against the pointer kernel's, as on a GPU with autotuning on,
        # and (where nothing is raced for real) let the last, a TMA config, win.
        monkeypatch.setattr(fully_connected, "INTERPRET", False)
    _tuned_equals_untuned(case, monkeypatch, fastest="last" if "tma" in case else "first")


def test_every_autotuned_kernel_has_a_case():
    import importlib
    import pkgutil

    autotuned = {}
    for module in pkgutil.iter_modules(ops.__path__):
        for name, value in vars(importlib.import_module(f"{ops.__name__}.{module.name}")).items():
            if isinstance(value, Autotuner):
                autotuned[id(value)] = f"{module.name}.{name}"
    covered = {id(kernel) for case in CASES for kernel in _kernels(case)}
    assert not autotuned.keys() - covered, f"autotuned kernels without a case: " \
        f"{sorted(autotuned[k] for k in autotuned.keys() - covered)}"
