"""Every float an operator passes to its kernels reaches a float64 network at full precision.

A compiled Triton kernel receives a Python float as float32 unless the parameter is
annotated ``tl.float64``. On the H200 that made a float64 BatchNorm compute with
``float32(eps)`` and ``float32(momentum)``: outputs off by ~1e-10 relative, moving
statistics by ~1e-8, without an error. The interpreter now hands kernels exactly what a
GPU would (``ops._common._interpreted_scalars``), so these checks fail on the CPU too
when a kernel's parameter is not float64. Each hyperparameter here is chosen with no
exact float32 value, and each result is compared with numpy at a float64 tolerance that
a float32 hyperparameter misses by orders of magnitude.
"""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch

import tritonsym as ts

S = ts.sym
TIGHT = dict(rtol=1e-13, atol=1e-15)  # a float32 hyperparameter is off by ~1e-8 relative
SHAPE = (4, 3, 5)


def _run(net, is_train=False, **inputs):
    exe = net.simple_bind(ts.cpu(), grad_req="null", type_dict={n: "float64" for n in inputs},
                          **{n: np.shape(v) for n, v in inputs.items()})
    return [t.cpu().numpy() for t in exe.forward(is_train=is_train, **inputs)], exe


def test_elementwise_hyperparameters(rng):
    x = rng.normal(size=SHAPE)
    data = S.Variable("data")
    cases = {
        "_plus_scalar": (S._plus_scalar(data, scalar=0.1), x + 0.1),
        "_mul_scalar": (S._mul_scalar(data, scalar=1 / 3), x * (1 / 3)),
        "clip": (S.clip(data, a_min=-0.1, a_max=0.7), np.clip(x, -0.1, 0.7)),
        "LeakyReLU": (S.LeakyReLU(data, slope=0.1), np.where(x > 0, x, 0.1 * x)),
        "mean": (S.mean(data, axis=1), x.mean(1)),
        "SequenceMask": (S.SequenceMask(data, use_sequence_length=False, value=0.1), x),
        # its frequencies' step -2 log2(base) / rotary_dim reaches the kernel as a float
        "RotaryEmbedding": (S.RotaryEmbedding(data, axis=0, rotary_dim=4, base=3.7, offset=3),
                            o.rotary(x, axis=0, rotary_dim=4, base=3.7, offset=3)),
    }
    for name, (net, want) in cases.items():
        np.testing.assert_allclose(_run(net, data=x)[0][0], want, **TIGHT, err_msg=name)
    lengths = np.array([1.0, 2.0, 0.0])
    net = S.SequenceMask(data, S.Variable("lengths"), use_sequence_length=True, value=0.1)
    want = np.where(np.arange(4)[:, None, None] < lengths[None, :, None], x, 0.1)
    np.testing.assert_allclose(_run(net, data=x, lengths=lengths)[0][0], want, **TIGHT, err_msg="SequenceMask value")


def test_normalization_eps_and_momentum(rng):
    x = rng.normal(size=SHAPE)
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    ln = S.LayerNorm(S.Variable("data"), S.Variable("g"), S.Variable("b"), axis=1, eps=0.1)
    np.testing.assert_allclose(_run(ln, data=x, g=gamma, b=beta)[0][0], o.layer_norm(x, gamma, beta, 1, 0.1), **TIGHT)
    bn = S.BatchNorm(S.Variable("data"), S.Variable("g"), S.Variable("b"), eps=0.1, momentum=0.3, fix_gamma=False,
                     name="bn")
    (out,), exe = _run(bn, is_train=True, data=x, g=gamma, b=beta)
    np.testing.assert_allclose(out, o.batch_norm(x, gamma, beta, 1, 0.1, False), **TIGHT)
    moved = exe.aux_dict["bn_moving_mean"].cpu().numpy()  # from 0: (1 - momentum) * the batch mean
    np.testing.assert_allclose(moved, (1 - 0.3) * x.mean((0, 2)), **TIGHT)
    exe.aux_dict["bn_moving_var"][...] = torch.from_numpy(rng.uniform(0.5, 2.0, 3))
    mean, var = (exe.aux_dict[f"bn_moving_{n}"].cpu().numpy() for n in ("mean", "var"))
    out = exe.forward(is_train=False)[0].cpu().numpy()
    np.testing.assert_allclose(out, o.batch_norm(x, gamma, beta, 1, 0.1, False, mean, var), **TIGHT)


@pytest.mark.parametrize("p", [0.3, 0.7])
def test_dropout_scales_by_one_over_one_minus_p(p, rng):
    x = rng.normal(size=SHAPE)
    (out,), _ = _run(S.Dropout(S.Variable("data"), p=p), is_train=True, data=x)
    kept = out != 0
    assert 0 < kept.sum() < out.size
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), **TIGHT)


def test_softmax_output_grad_scale(rng):
    x, label = rng.normal(size=(5, 4)), rng.integers(0, 4, size=5).astype(np.float64)
    net = S.SoftmaxOutput(S.Variable("data"), S.Variable("label"), grad_scale=0.1)
    exe = net.simple_bind(ts.cpu(), type_dict={"data": "float64", "label": "float64"}, data=(5, 4), label=(5,))
    exe.forward(is_train=True, data=x, label=label)
    exe.backward()
    want = o.softmax_output_grad(x, label, grad_scale=0.1)
    np.testing.assert_allclose(exe.grad_dict["data"].cpu().numpy(), want, **TIGHT)


def test_a_kernel_gets_float32_unless_its_parameter_says_float64():
    """The emulation itself: what ``_interpreted_scalars`` hands each parameter."""
    from tritonsym.ops import _common

    if not _common.INTERPRET:
        pytest.skip("the interpreter's scalars")

    def kernel(X, narrow, wide: "tl.float64"):  # noqa: F821 - an annotation read as text
        pass

    x = torch.zeros(1)
    _, narrow, wide = _common._interpreted_scalars(kernel, [x, 0.1, 0.1])
    assert float(narrow.handle.data[0]) == float(np.float32(0.1)) != 0.1
    assert float(wide.handle.data[0]) == 0.1
