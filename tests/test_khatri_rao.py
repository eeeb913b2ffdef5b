"""khatri_rao beyond its operator cases: four factors (partial products before and after a
factor that are themselves products), one factor given twice (its gradient the sum of its
places), grad_req='add', the same bits every run, and refusals that name the values."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import assert_close
from tritonsym.ops import khatri_rao as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym
F64 = "float64"


def _bind(net, shapes, **options):
    return net.simple_bind(ts.cpu(), type_dict={n: F64 for n in shapes}, **options, **shapes)


def test_four_factors_equal_the_oracle(rng):
    shapes = {n: (m, 3) for n, m in zip("abcd", (2, 3, 1, 4))}
    exe = _bind(S.khatri_rao(*(S.Variable(n) for n in shapes)), shapes)
    values = {n: rng.normal(size=s) for n, s in shapes.items()}
    head = rng.normal(size=(24, 3))
    exe.forward(is_train=True, **{n: torch.from_numpy(v) for n, v in values.items()})
    exe.backward(out_grads=torch.from_numpy(head))
    assert_close(exe.outputs[0], o.khatri_rao(*values.values()), torch.float64, "product")
    for name, want in zip(shapes, o.khatri_rao_grads(head, *values.values())):
        assert_close(exe.grad_dict[name], want, torch.float64, f"gradient of {name}")


def test_a_factor_given_twice_gets_the_sum_of_its_places(rng):
    a = S.Variable("a")
    exe = _bind(S.khatri_rao(a, S.Variable("b"), a), {"a": (2, 4), "b": (3, 4)})
    va, vb, head = rng.normal(size=(2, 4)), rng.normal(size=(3, 4)), rng.normal(size=(12, 4))
    exe.forward(is_train=True, a=torch.from_numpy(va), b=torch.from_numpy(vb))
    exe.backward(out_grads=torch.from_numpy(head))
    first, _, last = o.khatri_rao_grads(head, va, vb, va)
    assert_close(exe.outputs[0], o.khatri_rao(va, vb, va), torch.float64, "product")
    assert_close(exe.grad_dict["a"], first + last, torch.float64, "gradient of a, both places")


def test_grad_req_add_adds(rng):
    shapes = {"a": (2, 3), "b": (2, 3)}
    exe = _bind(S.khatri_rao(S.Variable("a"), S.Variable("b")), shapes, grad_req="add")
    for g in exe.grad_dict.values():
        g[...] = 1.0
    va, vb, head = rng.normal(size=(2, 3)), rng.normal(size=(2, 3)), rng.normal(size=(4, 3))
    for _ in range(2):
        exe.forward(is_train=True, a=torch.from_numpy(va), b=torch.from_numpy(vb))
        exe.backward(out_grads=torch.from_numpy(head))
    for name, want in zip("ab", o.khatri_rao_grads(head, va, vb)):
        assert_close(exe.grad_dict[name], 1.0 + 2 * want, torch.float64, f"1 + twice the gradient of {name}")


def test_the_gradient_has_the_same_bits_every_run(rng):
    rows, columns = (7, 9, 8), 5  # each gradient element sums 56 to 72 terms
    factors = [torch.from_numpy(rng.normal(size=(m, columns))).float() for m in rows]
    scratch = {n: torch.empty(s) for n, s in kernels.scratch_shapes(rows, columns).items()}
    head = torch.from_numpy(rng.normal(size=(int(np.prod(rows)), columns))).float()
    runs = []
    for _ in range(2):
        grads = [torch.empty_like(f) for f in factors]
        run(kernels.plan_khatri_rao_backward(head, factors, grads, [False] * 3, scratch))
        runs.append(grads)
    assert all(torch.equal(x, y) for x, y in zip(*runs))


def test_refusals_name_the_values():
    a, b = S.Variable("a"), S.Variable("b")
    with pytest.raises(ShapeError, match=r"khatri_rao.*one number of columns, got shapes \[\(2, 3\), \(4, 2\)\]"):
        S.khatri_rao(a, b).infer_shape(a=(2, 3), b=(4, 2))
    with pytest.raises(ShapeError, match=r"input 0 of shape \(2, 3, 1\) must be a matrix"):
        S.khatri_rao(a, b).infer_shape(a=(2, 3, 1), b=(4, 3))
    with pytest.raises(KernelArgumentError, match=r"khatri_rao: factors\[1\] of shape \(3, 2\)"):
        kernels.plan_khatri_rao([torch.ones(2, 3), torch.ones(3, 2)], torch.empty(6, 3), {})
    with pytest.raises(KernelArgumentError, match=r"out must be contiguous of shape \(6, 3\)"):
        kernels.plan_khatri_rao([torch.ones(2, 3), torch.ones(3, 3)], torch.empty(5, 3), {})
