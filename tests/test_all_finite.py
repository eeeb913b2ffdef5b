"""all_finite and multi_all_finite beyond their generic operator cases: inf, -inf and NaN
anywhere in any of the arrays (several blocks of the interpreter's launch, every dtype)
give 0 and finite arrays 1 again on the next forward; the largest finite values and empty
arrays count as finite; and the refusals."""

from __future__ import annotations

import pytest
import torch
from tolerances import DTYPES_QUICK_FIRST
from tritonsym.ops import all_finite as kernels
from tritonsym.ops._common import ELEMENTWISE_BLOCK, KernelArgumentError, run

import tritonsym as ts
from tritonsym.base import DTypeError, ParamError

S = ts.sym


@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)  # float64 and float16 under -m slow
def test_any_nonfinite_element_of_any_array_gives_0(dtype):
    shapes = {"a": (3, ELEMENTWISE_BLOCK + 5), "b": (7,)}  # a spans two programs
    a_var = S.Variable("a")
    net = S.Group([S.all_finite(a_var), S.multi_all_finite(a_var, S.Variable("b"))])
    exe = net.simple_bind(ts.cpu(), grad_req="null", type_dict={n: dtype for n in shapes}, **shapes)
    a, b = torch.randn(*shapes["a"]).to(dtype), torch.randn(7).to(dtype)
    for where, bad in (((2, ELEMENTWISE_BLOCK + 4), float("inf")), ((0, 0), float("-inf")), ((1, 3), float("nan"))):
        for target in ("a", "b"):
            values = {"a": a.clone(), "b": b.clone()}
            values[target][where if target == "a" else where[1] % 7] = bad
            exe.forward(is_train=False, **values)
            want = (0.0 if target == "a" else 1.0, 0.0)
            assert [o.item() for o in exe.outputs] == list(want), (target, where, bad)
        exe.forward(is_train=False, a=a, b=b)  # finite again: 1 again
        assert [o.item() for o in exe.outputs] == [1.0, 1.0]
        assert exe.outputs[0].dtype == torch.float32


def test_the_largest_finite_values_are_finite():
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        out = torch.empty(1)
        run(kernels.plan_all_finite([torch.full((5,), torch.finfo(dtype).max, dtype=dtype)], out))
        assert out.item() == 1.0, dtype


def test_empty_arrays_are_finite():
    out = torch.zeros(1)
    run(kernels.plan_all_finite([torch.empty(0), torch.ones(3)], out))
    assert out.item() == 1.0


def test_refusals_name_the_operator_and_the_values():
    with pytest.raises(ParamError, match=r"all_finite: init_output=False is not supported"):
        S.all_finite(S.Variable("data"), init_output=False)
    with pytest.raises(DTypeError, match=r"int32: only float arrays"):
        S.all_finite(S.Variable("data")).infer_type(data="int32")
    with pytest.raises(KernelArgumentError, match=r"all_finite: arrays\[1\] must be contiguous"):
        kernels.plan_all_finite([torch.ones(2), torch.ones(3, 2).t()], torch.empty(1))
    with pytest.raises(KernelArgumentError, match="out must hold one float32"):
        kernels.plan_all_finite([torch.ones(2)], torch.empty(2))
