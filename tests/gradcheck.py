"""Finite-difference gradient checks on the real kernels, in float64.

For each argument x that takes a gradient and a random unit direction v, the central
difference (f(x + eps v) - f(x - eps v)) / 2 eps must match <grad_x, v>, where f is
sum(head * output) for ordinary outputs and the loss for loss outputs. Directions are
taken one argument at a time, so a wrong gradient is reported under its own name.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

import tritonsym as ts


def check_gradients(symbol, values: dict[str, np.ndarray], losses: Sequence[Callable | None], rng,
                    no_grad: Sequence[str] = (), eps: float = 1e-6, rtol: float = 1e-6, atol: float = 1e-9,
                    directions: int = 2) -> None:
    """``losses[i]`` is the loss function of output i (given all values and that output), or
    None for an ordinary output, which gets a random head gradient."""
    shapes = {n: v.shape for n, v in values.items()}
    grad_names = [n for n in symbol.list_arguments() if n not in no_grad]
    exe = symbol.simple_bind(ts.cpu(), grad_req={n: "write" for n in grad_names},
                             type_dict={n: torch.float64 for n in shapes}, **shapes)
    heads = [None if loss else rng.normal(size=exe.outputs[i].shape) for i, loss in enumerate(losses)]

    def objective(vals) -> float:
        outs = exe.forward(is_train=False, **vals)
        total = 0.0
        for out, loss, head in zip(outs, losses, heads):
            out = out.numpy().copy()
            total += loss(vals, out) if loss else float((head * out).sum())
        return total

    exe.forward(is_train=True, **values)
    exe.backward(out_grads=[torch.from_numpy(h) if h is not None else torch.zeros(o.shape, dtype=torch.float64)
                            for h, o in zip(heads, exe.outputs)])
    analytic = {n: exe.grad_dict[n].numpy().copy() for n in grad_names}
    for name in grad_names:
        for _ in range(directions):
            v = rng.normal(size=values[name].shape)
            v /= np.linalg.norm(v) or 1.0
            plus, minus = dict(values), dict(values)
            plus[name] = values[name] + eps * v
            minus[name] = values[name] - eps * v
            numeric = (objective(plus) - objective(minus)) / (2 * eps)
            symbolic = float((analytic[name] * v).sum())
            if not abs(numeric - symbolic) <= atol + rtol * max(abs(numeric), abs(symbolic)):
                raise AssertionError(f"gradient of {name!r} is wrong: along a random direction the finite "
                                     f"difference is {numeric!r} but the gradient gives {symbolic!r}")
