"""MXNet's linalg operators (``ts.sym.linalg``): the triangle packing kernel in both
directions against the packed order written from its definition (lower triangles row by
row, upper ones column by column), on transposed views and accumulating; the triangle
copies of the gradients (kept, scaled, mirrored); the triangular solve and the Cholesky
factorization past one tile, in place, reading one triangle only, with NaN; sumlogdiag
over a diagonal longer than one tile, strided, with NaN, zeros and negative entries; alpha
kept in float64 for float64 products; gemm whose C is also its A; potrf feeding trsm and
potri; LU's pivoting (a zero on the diagonal, rows swapped, singular and NaN columns) under
inverse, det and slogdet; syevd on repeated eigenvalues, zeros and NaN (every row of U
written); gelqf's LAPACK signs, rows that need no reflection, a NaN kept to its rows;
grad_req='add'; and the errors.
Every operator's dtypes and float64 gradients are checked through tests/operator_cases.py,
its MXNet semantics through the recorded cases."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close, rounded, to_numpy
from tritonsym.ops import KernelArgumentError, memory
from tritonsym.ops import batch_dot as products
from tritonsym.ops import linalg_cholesky as cholesky
from tritonsym.ops import linalg_lu as lu
from tritonsym.ops import linalg_solve as solve
from tritonsym.ops import linalg_sumlogdiag as sumlogdiag
from tritonsym.ops import linalg_triangle as triangle
from tritonsym.ops._common import run

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("offset, lower", [(0, True), (0, False), (3, True), (-2, False), (-6, True)])
def test_triangles_pack_and_unpack_in_mxnet_order(rng, dtype, offset, lower):
    n = 7
    a = rounded(rng.normal(size=(3, n, n)), dtype)
    view = a.transpose(1, 2) if offset > 0 or (offset == 0 and not lower) else a
    packed = torch.empty(3, triangle.triangle_size(n, abs(offset)), dtype=dtype)
    run(triangle.plan_triangle(view, packed, abs(offset), pack=True))
    expected = o.extract_triangle(to_numpy(a), offset, lower)
    np.testing.assert_array_equal(to_numpy(packed), expected)  # values move unchanged
    unpacked = torch.full_like(a, float("nan"))  # every element written: zeros off the triangle
    run(triangle.plan_triangle(unpacked.transpose(1, 2) if view is not a else unpacked, packed, abs(offset),
                               pack=False))
    np.testing.assert_array_equal(to_numpy(unpacked), o.make_triangle(expected, offset, lower))


def test_triangle_accumulates_into_what_its_output_holds():
    a = torch.full((1, 2, 2), 0.5, dtype=torch.bfloat16)
    packed = torch.ones(1, 3, dtype=torch.bfloat16)
    run(triangle.plan_triangle(a, packed, 0, pack=True, accumulate=True))
    assert packed.tolist() == [[1.5] * 3]
    matrix = torch.ones(1, 2, 2)
    run(triangle.plan_triangle(matrix, torch.tensor([[1.0, 2.0, 3.0]]), 0, pack=False, accumulate=True))
    assert matrix.tolist() == [[[2.0, 1.0], [3.0, 4.0]]]


def test_triangle_copies_keep_scale_and_mirror_the_lower_triangle(rng):
    src = torch.tensor(rng.normal(size=(2, 5, 5)))
    dst = torch.ones(2, 5, 5, dtype=torch.float64)
    run(triangle.plan_copy_triangle(src, dst, scale=-2.0, accumulate=True))
    np.testing.assert_array_equal(dst.numpy(), 1.0 - 2.0 * np.tril(src.numpy()))
    run(triangle.plan_copy_triangle(src.transpose(1, 2), dst.transpose(1, 2)))  # an upper triangle
    np.testing.assert_array_equal(dst.numpy(), np.triu(src.numpy()))
    run(triangle.plan_copy_triangle(src, dst, mirror=True))
    lower = np.tril(src.numpy())
    np.testing.assert_array_equal(dst.numpy(), lower + np.swapaxes(np.tril(src.numpy(), -1), 1, 2))


@pytest.mark.slow  # past the interpreter's tiles; the quick run crosses small ones (test_operators.py)
@pytest.mark.parametrize("upper", [False, True], ids=["lower", "upper"])
def test_triangular_solves_past_one_tile_in_place_reading_one_triangle(upper):
    """n past the interpreter's tile of k (256): the rows solved before are summed in tiles;
    the other triangle holds NaN, which must not be read; x is b's own storage."""
    rng = np.random.default_rng(5)
    n = solve.BLOCK_K + 21
    factor = np.tril(rng.normal(scale=0.05, size=(1, n, n)), -1) + np.eye(n) * rng.uniform(1, 2, (1, n, 1))
    factor = np.swapaxes(factor, 1, 2) if upper else factor
    stored = np.where((np.triu if upper else np.tril)(np.ones((n, n))) > 0, factor, np.nan)
    b = rng.normal(size=(1, n, 3))
    x = torch.tensor(b.copy())
    run(solve.plan_solve(torch.tensor(stored), x, x, upper=upper, alpha=0.5))
    np.testing.assert_allclose(x.numpy(), 0.5 * np.linalg.solve(factor, b), rtol=1e-10, atol=1e-12)


@pytest.mark.slow  # past the interpreter's tiles; the quick run crosses small ones (test_operators.py)
def test_cholesky_past_one_tile_in_place_reading_the_lower_triangle_and_nan():
    rng = np.random.default_rng(6)
    n = cholesky.BLOCK_ROWS + 9
    x = rng.normal(size=(n, n + 4))
    a = x @ x.T / n + np.eye(n)
    stored = torch.tensor(np.where(np.tril(np.ones((n, n))) > 0, a, np.nan)[None])  # upper: never read
    run(cholesky.plan_cholesky(stored, stored))
    np.testing.assert_allclose(stored[0].numpy(), np.linalg.cholesky(a), rtol=1e-10, atol=1e-12)
    indefinite = torch.tensor([[[4.0, 0.0, 0.0], [2.0, -3.0, 0.0], [1.0, 1.0, 5.0]]])
    out = torch.empty_like(indefinite)
    run(cholesky.plan_cholesky(indefinite, out))
    assert out[0, 0].tolist() == [2.0, 0.0, 0.0] and out[0, 1, 0].item() == 1.0
    assert np.isnan(out[0, 1, 1].item()) and np.isnan(out[0, 2, 2].item())


def test_potrf_feeds_trsm_sumlogdiag_and_potri(rng):
    """A Gaussian process's pieces: L = potrf(K), alpha = L^-1 y, log det K = 2 sumlogdiag(L),
    K^-1 = potri(L)."""
    x = S.Variable("x")
    y = S.Variable("y")
    factor = S.linalg.potrf(S.linalg.syrk(x))
    net = S.Group([S.linalg.trsm(factor, y), 2.0 * S.linalg.sumlogdiag(factor), S.linalg.potri(factor)])
    exe = net.simple_bind(ts.cpu(), grad_req="null", type_dict={"x": "float64", "y": "float64"}, x=(2, 4, 7),
                          y=(2, 4, 1))
    xs, ys = rng.normal(size=(2, 4, 7)), rng.normal(size=(2, 4, 1))
    exe.forward(x=torch.tensor(xs), y=torch.tensor(ys))
    k = xs @ np.swapaxes(xs, 1, 2)
    solved, logdet, inverse = (out.numpy() for out in exe.outputs)
    np.testing.assert_allclose(solved, np.linalg.solve(np.linalg.cholesky(k), ys), rtol=1e-10)
    np.testing.assert_allclose(logdet, np.linalg.slogdet(k)[1], rtol=1e-12)
    np.testing.assert_allclose(inverse, np.linalg.inv(k), rtol=1e-9)


def _forward(net, a, dtype="float64"):
    exe = net.simple_bind(ts.cpu(), grad_req="write", type_dict={"A": dtype}, A=a.shape)
    exe.arg_dict["A"][...] = torch.tensor(a)
    exe.forward(is_train=True)
    exe.backward([torch.ones(o.shape, dtype=o.dtype) for o in exe.outputs])
    return [o.numpy() for o in exe.outputs], exe.grad_dict["A"].numpy()


def test_lu_pivots_past_a_zero_diagonal_and_counts_its_swaps():
    a = np.array([[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]],  # a cycle: two swaps
                  [[0.0, 2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 5.0]]])  # one swap
    (det,), _ = _forward(S.linalg.det(S.Variable("A")), a)
    assert det.tolist() == [1.0, -30.0]
    (inverse,), _ = _forward(S.linalg.inverse(S.Variable("A")), a)
    np.testing.assert_array_equal(inverse, np.linalg.inv(a))


def test_singular_matrices_give_a_zero_determinant_and_no_finite_inverse():
    a = np.array([[[1.0, 2.0], [2.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])
    (det,), grad = _forward(S.linalg.det(S.Variable("A")), a)
    assert np.abs(det).tolist() == [0.0, 0.0] and not np.isfinite(grad).any()
    (sign, logabs), grad = _forward(S.linalg.slogdet(S.Variable("A")), a)
    assert sign.tolist() == [0.0, 0.0] and logabs.tolist() == [-np.inf, -np.inf] and not np.isfinite(grad).any()
    (inverse,), _ = _forward(S.linalg.inverse(S.Variable("A")), a)
    assert not np.isfinite(inverse).any()


def test_lu_keeps_a_nan_column_and_its_nan_determinant():
    a = torch.tensor([[[np.nan, 1.0], [np.nan, 2.0]]])
    sign = torch.empty(1, dtype=torch.float64)
    run(lu.plan_lu(a, sign))
    out, logabs = torch.empty(1, dtype=torch.float64), torch.empty(1, dtype=torch.float64)
    run(lu.plan_determinant(a, sign, out, logabs))
    assert sign.item() == 1.0 and np.isnan(out.item()) and np.isnan(logabs.item())


def test_syevd_on_repeated_eigenvalues_zeros_and_nan():
    """The identity (one eigenvalue n times) and zeros keep their order and give the
    identity's rows; NaN gives NaN everywhere, every row of U written."""
    a = np.stack([np.eye(3) * 2.0, np.zeros((3, 3)), np.full((3, 3), np.nan)])
    (u, values), _ = _forward(S.linalg.syevd(S.Variable("A")), a)
    assert values[0].tolist() == [2.0] * 3 and values[1].tolist() == [0.0] * 3
    assert u[0].tolist() == np.eye(3).tolist() and u[1].tolist() == np.eye(3).tolist()
    assert np.isnan(u[2]).all() and np.isnan(values[2]).all()


def test_syevd_reads_the_lower_triangle_and_diagonalizes(rng):
    x = rng.normal(size=(2, 6, 6)) * (1.0 + np.arange(6))[:, None]
    a = x @ np.swapaxes(x, 1, 2)
    (u, values), _ = _forward(S.linalg.syevd(S.Variable("A")), np.tril(a) + np.triu(np.full_like(a, 7.0), 1))
    np.testing.assert_allclose(values, np.linalg.eigvalsh(a), rtol=1e-12)
    np.testing.assert_allclose(u @ a, values[..., None] * u, atol=1e-10)
    np.testing.assert_allclose(u @ np.swapaxes(u, 1, 2), np.broadcast_to(np.eye(6), (2, 6, 6)), atol=1e-13)


def test_gelqf_signs_as_lapack_and_rows_that_need_no_reflection():
    """Rows of [[2, 0, 0], [1, 3, 0]] have nothing past their diagonal entry: no reflection,
    L keeps +2 and +3 (LAPACK's dlarfg; MXNet 1.9.1 answers so); (3, 4, 0) reflects to -5.
    A NaN in the second row leaves the first row's Q and L alone."""
    a = np.array([[[2.0, 0.0, 0.0], [1.0, 3.0, 0.0]], [[3.0, 4.0, 0.0], [np.nan, 1.0, 1.0]]])
    (q, lower), _ = _forward(S.linalg.gelqf(S.Variable("A")), a)
    assert lower[0].tolist() == [[2.0, 0.0], [1.0, 3.0]] and q[0].tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert lower[1, 0].tolist() == [-5.0, 0.0] and np.allclose(q[1, 0], [-0.6, -0.8, 0.0])
    assert np.isnan(q[1, 1]).all() and np.isnan(lower[1, 1]).all()


def test_copies_scale():
    dst = torch.ones(3, dtype=torch.bfloat16)
    run(memory.plan_copy(torch.tensor([1.0, -2.0, 0.5]), dst, accumulate=True, scale=0.5))
    assert dst.tolist() == [1.5, 0.0, 1.25]


def test_sumlogdiag_walks_long_strided_diagonals_and_propagates_nan():
    rng = np.random.default_rng(3)
    n = sumlogdiag.BLOCK_DIAGONAL + 37  # more than one tile of the diagonal
    diagonal = rng.uniform(0.5, 2.0, size=(2, n))
    a = torch.zeros(2, n, n, dtype=torch.float64)
    a.diagonal(0, 1, 2).copy_(torch.from_numpy(diagonal))
    out = torch.empty(2, dtype=torch.float64)
    run(sumlogdiag.plan_sumlogdiag(a.transpose(1, 2), out))
    np.testing.assert_allclose(out.numpy(), np.log(diagonal).sum(1), rtol=1e-14)
    special = torch.tensor([[[2.0, 9.0], [9.0, -1.0]], [[0.0, 9.0], [9.0, 4.0]], [[float("nan"), 0], [0, 1.0]]])
    out = torch.empty(3)
    run(sumlogdiag.plan_sumlogdiag(special, out))
    assert np.isnan(out[0].item()) and out[1].item() == -np.inf and np.isnan(out[2].item())
    grad = torch.zeros_like(special)
    run(sumlogdiag.plan_sumlogdiag_backward(torch.ones(3), special, grad))
    assert grad[0].tolist() == [[0.5, 0.0], [0.0, -1.0]]
    assert grad[1, 0, 0].item() == np.inf and np.isnan(grad[2, 0, 0].item())


def test_float64_products_keep_alpha_in_float64():
    """alpha = 0.1 is not a float32 number: a float64 product scaled by float32(0.1) would be
    off by 1.5e-9 relative."""
    a = torch.ones(1, 1, 1, dtype=torch.float64)
    out = torch.empty(1, 1, 1, dtype=torch.float64)
    run(products.plan_batch_dot(a, a, out, alpha=0.1))
    assert out.item() == 0.1
    single = torch.empty(1, 1, 1)
    run(products.plan_batch_dot(a.float(), a.float(), single, alpha=0.1))
    assert single.item() == np.float32(0.1)


def _bind(net, dtype="float64", grad_req="write", **shapes):
    return net.simple_bind(ts.cpu(), grad_req=grad_req, type_dict={n: dtype for n in shapes}, **shapes)


def test_gemm_whose_c_is_also_a_and_b(rng):
    """gemm(x, x, x): beta x is written to the output before the product reads x, so the
    output never takes x's place."""
    x = S.Variable("x")
    net = S.linalg.gemm(x, x, x, alpha=2.0, beta=-3.0)
    exe = _bind(net, x=(2, 4, 4))
    value = rng.normal(size=(2, 4, 4))
    exe.arg_dict["x"][...] = torch.from_numpy(value)
    exe.forward(is_train=True)
    np.testing.assert_allclose(exe.outputs[0].numpy(), 2.0 * value @ value - 3.0 * value, rtol=1e-13)
    head = rng.normal(size=(2, 4, 4))
    exe.backward([torch.from_numpy(head)])
    ga, gb, gc = o.linalg_gemm_grads(head, value, value, False, False, 2.0, -3.0)
    np.testing.assert_allclose(exe.grad_dict["x"].numpy(), ga + gb + gc, rtol=1e-12)


ACCUMULATIONS = [  # (name, network of x, x's shape)
    ("syrk", lambda x: S.linalg.syrk(x, transpose=True), (3, 4, 2)),
    ("extractdiag", lambda x: S.linalg.extractdiag(x, offset=1), (2, 4, 4)),
    ("makediag", lambda x: S.linalg.makediag(x, offset=-1), (2, 3)),
    ("extracttrian", lambda x: S.linalg.extracttrian(x, lower=False), (2, 4, 4)),
    ("maketrian", lambda x: S.linalg.maketrian(x, offset=1), (2, 6)),
    ("sumlogdiag", lambda x: S.linalg.sumlogdiag(x), (2, 3, 3)),
    ("trsm", lambda x: S.linalg.trsm(x, x, rightside=True, lower=False), (2, 3, 3)),
    ("trmm", lambda x: S.linalg.trmm(x, x, transpose=True), (2, 3, 3)),
    ("potrf", lambda x: S.linalg.potrf(S.linalg.syrk(x), lower=False), (2, 3, 5)),
    ("potri", lambda x: S.linalg.potri(x + 3.0), (2, 3, 3)),
    ("inverse", lambda x: S.linalg.inverse(x + 3.0), (2, 3, 3)),
    ("det", lambda x: S.linalg.det(x + 3.0), (2, 3, 3)),
    ("slogdet", lambda x: S.linalg.slogdet(x + 3.0)[1], (2, 3, 3)),
    ("syevd", lambda x: S.linalg.syevd(S.linalg.syrk(x))[1], (2, 3, 4)),
    ("gelqf", lambda x: S.linalg.gelqf(x)[0], (2, 3, 4)),
]
QUICK_ACCUMULATIONS = {"syrk", "maketrian", "trsm", "potrf", "inverse", "syevd"}  # the others under -m slow


@pytest.mark.parametrize("build, shape", [
    pytest.param(build, shape, id=name, marks=() if name in QUICK_ACCUMULATIONS else pytest.mark.slow)
    for name, build, shape in ACCUMULATIONS])
def test_grad_req_add_adds_to_what_the_gradient_holds(rng, build, shape):
    net = build(S.Variable("x"))
    value = rng.uniform(0.5, 2.0, size=shape)
    grads = []
    for grad_req in ("write", "add"):
        exe = _bind(net, grad_req=grad_req, x=shape)
        exe.arg_dict["x"][...] = torch.from_numpy(value)
        exe.grad_dict["x"][...] = 5.0
        exe.forward(is_train=True)
        exe.backward([torch.ones(exe.outputs[0].shape, dtype=torch.float64)])
        grads.append(exe.grad_dict["x"].numpy().copy())
    np.testing.assert_allclose(grads[1], grads[0] + 5.0, rtol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_maketrian_then_extracttrian_is_the_identity_in_every_dtype(rng, dtype):
    v = rounded(rng.normal(size=(2, 3, 10)), dtype)
    net = S.linalg.extracttrian(S.linalg.maketrian(S.Variable("v"), lower=False), lower=False)
    exe = _bind(net, dtype=str(dtype).replace("torch.", ""), v=(2, 3, 10))
    exe.arg_dict["v"][...] = v
    exe.forward(is_train=False)
    assert_close(exe.outputs[0], to_numpy(v), dtype, "maketrian then extracttrian")


@pytest.mark.parametrize("build, shapes, message", [
    (lambda: S.linalg.maketrian(S.Variable("A")), {"A": (2, 4)}, "last axis (4) is not the size of a triangle"),
    (lambda: S.linalg.extracttrian(S.Variable("A"), offset=-3), {"A": (3, 3)}, "offset=-3 leaves no triangle"),
    (lambda: S.linalg.extractdiag(S.Variable("A")), {"A": (3, 4)}, "(3, 4) must be square matrices"),
    (lambda: S.linalg.sumlogdiag(S.Variable("A")), {"A": (2, 3)}, "(2, 3) must be square matrices"),
    (lambda: S.linalg.gemm2(S.Variable("A"), S.Variable("B"), axis=-1), {"A": (2, 3), "B": (3, 2)},
     "axis=-1 is not a row axis of rank-2 matrices"),
    (lambda: S.linalg.gemm2(S.Variable("A"), S.Variable("B"), transpose_b=True), {"A": (2, 3), "B": (3, 2)},
     "multiply 3 columns by 2 rows"),
    (lambda: S.linalg.gemm(S.Variable("A"), S.Variable("B"), S.Variable("C")), {"A": (2, 3), "B": (3, 4),
                                                                               "C": (2, 5)}, "C"),
    (lambda: S.linalg.syrk(S.Variable("A")), {"A": (3,)}, "(3,) must have at least 2 axes"),
    (lambda: S.linalg.trsm(S.Variable("A"), S.Variable("B"), rightside=True), {"A": (3, 3), "B": (3, 2)},
     "cannot multiply B (3, 2) from the right: B's columns must number 3"),
    (lambda: S.linalg.trmm(S.Variable("A"), S.Variable("B")), {"A": (3, 2), "B": (3, 2)}, "must be square"),
    (lambda: S.linalg.potrf(S.Variable("A")), {"A": (2, 3)}, "(2, 3) must be square matrices"),
    (lambda: S.linalg.det(S.Variable("A")), {"A": (4,)}, "(4,) must be square matrices"),
    (lambda: S.linalg.gelqf(S.Variable("A")), {"A": (5, 3)}, "with m <= n (an LQ factorization)"),
])
def test_shape_errors_name_the_operator_and_the_values(build, shapes, message):
    net = build()
    with pytest.raises(ShapeError, match=r"\(_linalg_") as error:
        net.infer_shape(**shapes)
    assert message in str(error.value)


def test_kernel_errors_name_the_arguments():
    with pytest.raises(KernelArgumentError, match=r"linalg_triangle: the triangle i - j >= 1 of 3 x 3 matrices needs "
                                                  r"packed of shape \(2, 3\); got \(2, 6\)"):
        triangle.plan_triangle(torch.zeros(2, 3, 3), torch.zeros(2, 6), 1, pack=True)
    with pytest.raises(KernelArgumentError, match=r"linalg_sumlogdiag: a must be \(batch, n, n\) square matrices, "
                                                  r"got \(2, 3, 4\)"):
        sumlogdiag.plan_sumlogdiag(torch.zeros(2, 3, 4), torch.zeros(2))
    with pytest.raises(KernelArgumentError, match=r"linalg_trsm: t \(2, 3, 3\) must be \(batch, n, n\) and b "
                                                  r"\(2, 4, 1\)"):
        solve.plan_solve(torch.zeros(2, 3, 3), torch.zeros(2, 4, 1), torch.zeros(2, 4, 1), upper=False)
    with pytest.raises(KernelArgumentError, match=r"linalg_potrf: a \(2, 3\) must be \(batch, n, n\)"):
        cholesky.plan_cholesky(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(KernelArgumentError, match=r"linalg_lu: sign must have shape \(2,\), got \(3,\)"):
        lu.plan_lu(torch.zeros(2, 3, 3), torch.zeros(3))
