"""Every registered operator, every dtype: bound, run forward and backward on the real
kernels, compared with the float64 oracle. The workspace is filled with NaN first, so
an element nobody writes fails. (float32 and bfloat16 in the README's quick run; float64
and float16 too under ``-m slow``, which CI runs; float64 is also every gradient check's.)"""

import numpy as np
import oracles
import pytest
import torch
from operator_cases import CASES, REPEATS, SPLIT_ROWS, write_inputs
from plan_checks import assert_no_live_overlap, poison
from tolerances import DTYPE_IDS, DTYPES, DTYPES_QUICK_FIRST, assert_close, rounded, to_numpy
from tritonsym.ops import softmax as softmax_kernels

import tritonsym as ts
from tritonsym.operators import REGISTRY


def test_every_registered_operator_has_a_case():
    covered = {c.op for c in CASES}
    missing = sorted({op.name for op in REGISTRY.values()} - covered)
    assert not missing, f"operators without a test case in tests/operator_cases.py: {missing}"


def run_case(case, dtype, rng):
    values = case.inputs(rng)
    data_args = [n for n in case.shapes if n not in case.no_grad]
    exe = case.build().simple_bind(ts.cpu(), grad_req={n: "write" for n in data_args},
                                   type_dict={n: dtype for n in data_args}, **case.shapes)
    used = write_inputs(exe, values, rounded)  # what the kernels see, rounded
    poison(exe)
    exe.forward(is_train=True)
    out = exe.outputs[0]
    head = rng.normal(size=out.shape)
    poison_grads = {n: g for n, g in exe.grad_dict.items() if g is not None}
    for g in poison_grads.values():
        g.fill_(float("nan"))
    exe.backward(out_grads=None if case.loss else [rounded(head, dtype)])
    return exe, used, to_numpy(rounded(head, dtype))


def _case_dtypes():
    """Every case in every dtype (the quick run: each operator's first case in float32 and
    bfloat16, its other cases in float32, but for RNN's, a second or more each)."""
    for case in CASES:
        for dtype in DTYPES_QUICK_FIRST:
            marks = list(dtype.marks)
            if case.id in REPEATS and (dtype.id == "bfloat16" or case.op == "RNN"):
                marks.append(pytest.mark.slow)
            yield pytest.param(case, dtype.values[0], marks=marks, id=f"{case.id}-{dtype.id}")


@pytest.mark.parametrize("case, dtype", list(_case_dtypes()))
def test_forward_backward(case, dtype, rng):
    exe, used, head = run_case(case, dtype, rng)
    assert_close(exe.outputs[0], case.forward(used), dtype, f"{case.id} forward")
    for name, want in case.backward(used, head).items():
        assert_close(exe.grad_dict[name], want, dtype, f"{case.id} gradient of {name}", scale=4.0)
    for name in case.no_grad:
        assert exe.grad_dict.get(name) is None or not torch.any(exe.grad_dict[name] != 0), f"{name} got a gradient"



# Block sizes of the GPU's order (the interpreter's are large, so that its programs are
# few): every launch then runs as many programs, which cross block edges and, under the
# suite's memcheck, are checked for races with each other.
SMALL_BLOCKS = [("_common", "ELEMENTWISE_BLOCK", 16), ("activation", "ELEMENTWISE_BLOCK", 16),
                ("batch_norm", "BLOCK", 8), ("layer_norm", "BLOCK", 4), ("layer_norm", "TILE", 8),
                ("layer_norm", "PARTIALS", 2),
                ("embedding", "BLOCK_ROWS", 16), ("embedding", "BLOCK_COLS", 16),
                ("embedding", "BLOCK_TABLE", 16), ("reduce", "TILE", 8),
                ("elementwise", "ELEMENTWISE_BLOCK", 16),
                ("memory", "ELEMENTWISE_BLOCK", 16), ("regression_output", "ELEMENTWISE_BLOCK", 16),
                ("softmax", "MAX_BLOCK", 16), ("pick", "ELEMENTWISE_BLOCK", 16), ("one_hot", "ELEMENTWISE_BLOCK", 16),
                ("arg_reduce", "TILE", 8), ("pooling", "ELEMENTWISE_BLOCK", 16),
                ("softmax", "LOOP_BLOCK", 4), ("softmax_output", "COUNT_BLOCK", 8),
                ("softmax_output", "MAX_BLOCK_C", 4), ("softmax_output", "ROW_BUDGET", 8),
                ("sort", "TILE", 8), ("sort", "BLOCK_J", 4), ("moments", "TILE", 8),
                ("linalg_solve", "BLOCK_K", 2), ("linalg_solve", "BLOCK_COLUMNS", 2),
                ("linalg_cholesky", "BLOCK_ROWS", 2), ("linalg_cholesky", "BLOCK_K", 2),
                ("linalg_sumlogdiag", "BLOCK_MATRICES", 2), ("linalg_sumlogdiag", "BLOCK_DIAGONAL", 2),
                ("linalg_triangle", "ELEMENTWISE_BLOCK", 16), ("linalg_lu", "BLOCK", 2),
                ("linalg_lu", "BLOCK_MATRICES", 2), ("linalg_lu", "BLOCK_DIAGONAL", 2),
                ("linalg_lu", "ELEMENTWISE_BLOCK", 16), ("linalg_eigen", "BLOCK", 2),
                ("linalg_eigen", "ELEMENTWISE_BLOCK", 16), ("linalg_householder", "BLOCK_ROWS", 2),
                ("linalg_householder", "BLOCK_COLUMNS", 2), ("deformable_convolution", "BLOCK_P", 8),
                ("deformable_convolution", "BLOCK_C", 2)]


# Each operator's first case in the quick run; the rest (operator_cases.REPEATS) under -m slow.
@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow if c.id in REPEATS else ())
                                  for c in CASES], ids=[c.id for c in CASES])
def test_forward_backward_in_small_blocks(case, rng, monkeypatch):
    import importlib

    for module, name, value in SMALL_BLOCKS:
        monkeypatch.setattr(importlib.import_module(f"tritonsym.ops.{module}"), name, value)
    dtype = torch.float32
    exe, used, head = run_case(case, dtype, rng)
    assert_close(exe.outputs[0], case.forward(used), dtype, f"{case.id} forward")
    for name, want in case.backward(used, head).items():
        assert_close(exe.grad_dict[name], want, dtype, f"{case.id} gradient of {name}", scale=4.0)


SOFTMAX_CASES = [c for c in CASES if c.op in ("softmax", "log_softmax", "SoftmaxOutput", "SoftmaxActivation")]


@pytest.mark.parametrize("dtype", [pytest.param(torch.float64, marks=pytest.mark.slow), torch.bfloat16],
                         ids=["float64", "bfloat16"])
@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=[c.id for c in SOFTMAX_CASES])
def test_softmax_rows_split_across_programs(case, dtype, rng, monkeypatch):
    for name, value in SPLIT_ROWS:
        monkeypatch.setattr(softmax_kernels, name, value)
    exe, used, head = run_case(case, dtype, rng)
    temps = [v for s in exe._program.forward_steps + exe._program.backward_steps for v in s.temps.values()
             if "row_" in v.name]
    assert temps, "no step took the split path"
    assert_no_live_overlap(exe)
    assert_close(exe.outputs[0], case.forward(used), dtype, f"{case.id} forward")
    for name, want in case.backward(used, head).items():
        assert_close(exe.grad_dict[name], want, dtype, f"{case.id} gradient of {name}", scale=4.0)


def test_softmax_output_split_rows_with_integer_labels(rng, monkeypatch):
    """The scratch buffer of split rows follows the data's dtype (float64 here), not the
    labels' (int32 class indices)."""
    for name, value in SPLIT_ROWS:
        monkeypatch.setattr(softmax_kernels, name, value)
    net = ts.sym.SoftmaxOutput(data=ts.sym.Variable("data"), name="sm")
    exe = net.simple_bind(ts.cpu(), type_dict={"data": torch.float64, "sm_label": torch.int32}, data=(3, 37))
    assert any("row_" in v.name for s in exe._program.forward_steps for v in s.temps.values()), "not split"
    x, label = rng.normal(size=(3, 37)) * 4, rng.integers(0, 37, size=3)
    exe.arg_dict["data"][:] = rounded(x, torch.float64)
    exe.arg_dict["sm_label"][:] = torch.from_numpy(label).to(torch.int32)
    exe.forward(is_train=True)
    exe.backward()
    assert_close(exe.outputs[0], oracles.softmax(x), torch.float64, "forward")
    assert_close(exe.grad_dict["data"], oracles.softmax_output_grad(x, label), torch.float64, "gradient")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_softmax_output_out_grad_multiplies_by_the_head(rng, dtype):
    """out_grad=True: MXNet's SoftmaxOutput takes the head gradient and multiplies the
    loss gradient by it elementwise (not a gradient of any scalar, so no gradcheck case)."""
    net = ts.sym.SoftmaxOutput(data=ts.sym.Variable("data"), name="sm", out_grad=True, grad_scale=0.5,
                               normalization="batch")
    exe = net.simple_bind(ts.cpu(), type_dict={"data": dtype}, data=(6, 9))
    x, label, head = rng.normal(size=(6, 9)) * 2, rng.integers(0, 9, size=6), rng.normal(size=(6, 9))
    used_x, used_head = to_numpy(rounded(x, dtype)), to_numpy(rounded(head, dtype))
    exe.forward(is_train=True, data=used_x, sm_label=label.astype(np.float64))
    exe.backward(out_grads=rounded(used_head, dtype))
    want = oracles.softmax_output_grad(used_x.astype(np.float64), label, grad_scale=0.5, normalization="batch")
    assert_close(exe.grad_dict["data"], want * used_head, dtype, "gradient")
