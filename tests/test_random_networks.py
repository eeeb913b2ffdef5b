"""Random networks of the shape-aware operators, bound and run through the planner, against
the same network in PyTorch autograd (tests only).

Each operator has its own oracle and gradient checks; what this adds is their composition:
views that cost no copy feeding kernels that read strides, reductions and broadcasts
meeting in one gradient, values used by several consumers, one array at several inputs of
one operator, a weight shared by two layers, in-place reuse under every memory plan,
mirror, ``grad_req="add"`` or every other argument frozen, outputs that are also inputs of
other nodes, a workspace poisoned with NaN before the step. A network draws
1-8 moves from ``MOVES`` over a (batch, time, channels) input; the outputs and the
gradient of every argument must match torch's (float64 to 1e-8, float32 to 2e-3), and so
must the outputs of the same network, saved to JSON and loaded, bound for inference.

Where MXNet and torch differ, the oracle follows tritonsym's documented MXNet semantics:
tied maxima (minima) each take the whole gradient (``_MXNetExtremum``); the L2 norm of zeros
has gradient 0 (``vector_norm``). A max or min is drawn only of values with no ties in exact
arithmetic (``Node.tied``): which of several equal values rounding leaves tied differs between
the two sides. ``TRITONSYM_PROPERTY_SCALE=40 TRITONSYM_PROPERTY_RANDOM=1`` is a longer bug hunt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from plan_checks import poison
from property_settings import given, property_settings, settings, st
from tritonsym.ops.pooling import empty_window
from tritonsym.ops.pooling import output_length as pooling_output_length

import tritonsym as ts

S = ts.sym
TOLERANCE = {"float64": 1e-8, "float32": 2e-3}


@dataclass
class Node:
    symbol: ts.sym.Symbol
    compute: Callable[[dict], torch.Tensor]  # the same value in torch, from the arguments by name
    shape: tuple
    # May hold elements equal in exact arithmetic (relu's zeros, a broadcast, a normalization over
    # one element): no max/min of it, elementwise or reduced. Equal constants that attention
    # then averages over different numbers of keys tie or not depending on each side's rounding,
    # and MXNet gives every tied element the whole gradient: the two sides' gradients would differ.
    tied: bool = False


class _MXNetExtremum(torch.autograd.Function):
    """max/min over ``dims`` whose gradient goes whole to every element equal to the result
    (MXNet's; torch's amax splits it among ties)."""

    @staticmethod
    def forward(ctx, t, dims, keepdims, largest):
        y = t.amax(dim=dims, keepdim=True) if largest else t.amin(dim=dims, keepdim=True)
        ctx.save_for_backward(t, y)
        return y if keepdims else y.squeeze(dims)

    @staticmethod
    def backward(ctx, grad):
        t, y = ctx.saved_tensors
        return (t == y) * grad.reshape(y.shape), None, None, None


@dataclass
class Network:
    """The pool of values drawn so far, and the arguments the moves added besides ``data``."""

    rng: object
    pool: list = field(default_factory=list)
    shapes: dict = field(default_factory=dict)  # argument -> shape, where bind needs it
    integers: dict = field(default_factory=dict)  # argument -> (low, high): lengths and indices
    matrices: list = field(default_factory=list)  # (Variable, shape) of each weight a later move may share

    def pick(self, where=lambda node: True) -> Node:
        return self.rng.choice([node for node in self.pool if where(node)])

    def axes(self, ndim: int) -> tuple:
        return tuple(sorted(self.rng.sample(range(ndim), self.rng.randint(1, ndim))))


def _unary(net, x, i):
    kind = net.rng.choice(["tanh", "sigmoid", "softrelu", "softsign", "relu", "gelu", "gelu_tanh", "silu", "elu",
                           "leaky", "affine", "square", "exp", "negative", "clip", "log", "sqrt", "reciprocal", "cube",
                           "two_to", "compare", "dropout", "sin", "erf", "log1p", "rsqrt", "relu_op", "swiglu",
                           "smooth_l1", "hard_sigmoid", "arctan", "arcsinh"])
    smooth = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "softrelu": F.softplus, "softsign": F.softsign,
              "relu": F.relu}
    if kind in smooth:
        y, f = S.Activation(x.symbol, act_type=kind), smooth[kind]
    elif kind in ("gelu", "gelu_tanh", "silu", "elu", "leaky"):
        y = S.LeakyReLU(x.symbol, act_type=kind, **({"slope": 0.2} if kind == "leaky" else {}))
        f = {"gelu": F.gelu, "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"), "silu": F.silu,
             "elu": lambda t: F.elu(t, 0.25), "leaky": lambda t: F.leaky_relu(t, 0.2)}[kind]
    elif kind == "swiglu":  # silu(x) * another value of its shape: one GatedActivation (executor/gates.py)
        other = net.pick(lambda node: node.shape == x.shape)
        y = S.LeakyReLU(x.symbol, act_type="silu") * other.symbol
        return Node(y, lambda env: F.silu(x.compute(env)) * other.compute(env), x.shape, x.tied or other.tied)
    elif kind in ("sin", "erf", "relu_op", "arctan", "arcsinh"):
        y = getattr(S, kind.removesuffix("_op"))(x.symbol)
        f = {"sin": torch.sin, "erf": torch.erf, "relu_op": F.relu, "arctan": torch.arctan,
             "arcsinh": torch.arcsinh}[kind]
    elif kind in ("log1p", "rsqrt"):
        y = getattr(S, kind)(S.square(x.symbol) + (0.0 if kind == "log1p" else 1.0))
        f = (lambda g: lambda t: g(t * t + (0.0 if kind == "log1p" else 1.0)))(getattr(torch, kind))
    elif kind in ("log", "sqrt", "reciprocal"):
        y = getattr(S, kind)(S.square(x.symbol) + 1.0)
        f = {"log": torch.log, "sqrt": torch.sqrt, "reciprocal": torch.reciprocal}[kind]
        f = (lambda g: lambda t: g(t * t + 1.0))(f)
    else:
        y, f = {"affine": (x.symbol * 0.5 + 1.0, lambda t: t * 0.5 + 1.0),
                "square": (S.square(x.symbol), torch.square),
                "exp": (S.exp(S.Activation(x.symbol, act_type="tanh")), lambda t: torch.exp(torch.tanh(t))),
                "negative": (-x.symbol, torch.neg),
                "clip": (S.clip(x.symbol, -0.5, 0.7), lambda t: t.clamp(-0.5, 0.7)),
                "cube": (x.symbol ** 3.0, lambda t: t ** 3.0),
                # of tanh(x): 2 ** (a large product) overflows float32 where the float64 oracle does not
                "two_to": (2.0 ** S.Activation(x.symbol, act_type="tanh"), lambda t: 2.0 ** torch.tanh(t)),
                "compare": ((x.symbol > 0.3) * x.symbol, lambda t: (t > 0.3).to(t.dtype) * t),
                "dropout": (S.Dropout(x.symbol, p=0.0), lambda t: t),
                # sigma 2: quadratic within 0.25 of 0 (torch's beta), linear beyond
                "smooth_l1": (S.smooth_l1(x.symbol, scalar=2.0),
                              lambda t: F.smooth_l1_loss(t, torch.zeros_like(t), reduction="none", beta=0.25)),
                "hard_sigmoid": (S.hard_sigmoid(x.symbol, alpha=0.4, beta=0.3),
                                 lambda t: (0.4 * t + 0.3).clamp(0.0, 1.0))}[kind]
    tied = x.tied or kind in ("relu", "leaky", "clip", "compare", "relu_op", "hard_sigmoid")
    return Node(y, lambda env: f(x.compute(env)), x.shape, tied)


def _softmax(net, x, i):
    """softmax, log_softmax or softmin (softmax of -x), sometimes with a temperature."""
    axis, op = net.rng.randrange(-len(x.shape), len(x.shape)), net.rng.choice(["softmax", "log_softmax", "softmin"])
    temperature = net.rng.choice([None, 0.5, -2.0])
    factor = (-1.0 if op == "softmin" else 1.0) / (temperature or 1.0)
    y = getattr(S, op)(x.symbol, axis=axis, **({} if temperature is None else {"temperature": temperature}))
    return Node(y, lambda env: (F.log_softmax if op == "log_softmax" else F.softmax)(x.compute(env) * factor, dim=axis),
                x.shape, x.tied or x.shape[axis] == 1)  # along one element: ones (zeros)


def _transpose(net, x, i):
    if len(x.shape) < 2:
        return None
    axes = list(range(len(x.shape)))
    net.rng.shuffle(axes)
    return Node(S.transpose(x.symbol, axes=tuple(axes)), lambda env: x.compute(env).permute(*axes),
                tuple(x.shape[a] for a in axes), x.tied)


def _reshape(net, x, i):
    shape, ndim = x.shape, len(x.shape)
    kind = net.rng.choice(["keep-first", "merge-two", "expand", "squeeze", "flat"])
    if kind == "keep-first" and ndim >= 2:
        y, new = S.Reshape(x.symbol, shape=(0, -1)), (shape[0], int(np.prod(shape[1:])))
    elif kind == "merge-two" and ndim >= 3:
        y, new = S.Reshape(x.symbol, shape=(-3, -2)), (shape[0] * shape[1],) + shape[2:]
    elif kind == "expand":
        axis = net.rng.randint(0, ndim)
        y, new = S.expand_dims(x.symbol, axis=axis), shape[:axis] + (1,) + shape[axis:]
    elif kind == "squeeze" and ndim > 1 and 1 in shape:
        axis = net.rng.choice([a for a in range(ndim) if shape[a] == 1])
        y, new = S.squeeze(x.symbol, axis=axis), shape[:axis] + shape[axis + 1:]
    elif kind == "flat":  # with an activation, so a kernel reads the view
        new = (int(np.prod(shape)),)
        return Node(S.Activation(S.Reshape(x.symbol, shape=(-1,)), act_type="tanh"),
                    lambda env: torch.tanh(x.compute(env).reshape(new)), new, x.tied)
    else:
        return None
    return Node(y, lambda env: x.compute(env).reshape(new), new, x.tied)


def _slice(net, x, i):
    axis = net.rng.randrange(len(x.shape))
    begin = net.rng.randint(0, x.shape[axis] - 1)
    end = net.rng.randint(begin + 1, x.shape[axis])
    return Node(S.slice_axis(x.symbol, axis=axis, begin=begin, end=end),
                lambda env: x.compute(env).narrow(axis, begin, end - begin),
                x.shape[:axis] + (end - begin,) + x.shape[axis + 1:], x.tied)


def _flip(net, x, i):
    axis = net.rng.randrange(len(x.shape))
    return Node(S.flip(x.symbol, axis=axis), lambda env: x.compute(env).flip(axis), x.shape, x.tied)


def _split(net, x, i):
    axis = net.rng.randrange(len(x.shape))
    parts = net.rng.choice([d for d in range(1, x.shape[axis] + 1) if x.shape[axis] % d == 0])
    squeeze = parts == x.shape[axis] and len(x.shape) > 1 and net.rng.random() < 0.5
    outputs = S.split(x.symbol, num_outputs=parts, axis=axis, squeeze_axis=squeeze)
    k, size = net.rng.randrange(parts), x.shape[axis] // parts

    def compute(env):
        part = x.compute(env).narrow(axis, k * size, size)
        return part.squeeze(axis) if squeeze else part
    return Node(outputs[k] if parts > 1 else outputs, compute,
                x.shape[:axis] + (() if squeeze else (size,)) + x.shape[axis + 1:], x.tied)


def _concat(net, x, i):
    ndim, axis = len(x.shape), net.rng.randrange(len(x.shape))
    other = net.pick(lambda n: len(n.shape) == ndim and all(n.shape[a] == x.shape[a] for a in range(ndim)
                                                           if a != axis))
    return Node(S.Concat(x.symbol, other.symbol, dim=axis),
                lambda env: torch.cat([x.compute(env), other.compute(env)], dim=axis),
                x.shape[:axis] + (x.shape[axis] + other.shape[axis],) + x.shape[axis + 1:], True)


def _reduce(net, x, i):
    op = net.rng.choice(["sum", "mean", "norm", "prod", "variance"] + ([] if x.tied else ["max", "min"]))
    ndim = len(x.shape)
    axes = None if ndim == 1 and net.rng.random() < 0.5 else net.axes(ndim)
    keepdims = net.rng.random() < 0.5
    if op == "variance":  # moments' second output (its mean unused)
        y = S.moments(x.symbol, keepdims=keepdims, **({} if axes is None else {"axes": axes}))[1]
    else:
        y = getattr(S, op)(x.symbol, keepdims=keepdims, **({} if axes is None else {"axis": axes}))
    dims = tuple(range(ndim)) if axes is None else axes
    if keepdims:
        new = tuple(1 if a in dims else s for a, s in enumerate(x.shape))
    else:
        new = tuple(s for a, s in enumerate(x.shape) if a not in dims) or (1,)  # MXNet: (1,), never ()

    def compute(env):
        t = x.compute(env)
        if op in ("max", "min"):
            out = _MXNetExtremum.apply(t, dims, keepdims, op == "max")
        elif op == "norm":
            out = torch.linalg.vector_norm(t, dim=dims, keepdim=keepdims)
        elif op == "variance":
            out = t.var(dim=dims, unbiased=False, keepdim=keepdims)
        elif op == "prod":  # one axis at a time, the last first (torch's prod takes one)
            out = t
            for d in sorted(dims, reverse=True):
                out = out.prod(d, keepdim=keepdims)
        else:
            out = getattr(t, op)(dim=dims, keepdim=keepdims)
        return out.reshape(new)
    return Node(y, compute, new, x.tied)


def _fully_connected(net, x, i):
    hidden, flatten, no_bias = net.rng.randint(1, 5), net.rng.random() < 0.3, net.rng.random() < 0.3
    name = f"fc{i}"
    weight = S.Variable(f"{name}_weight")  # one Variable, so that a later move may share it
    y = S.FullyConnected(x.symbol, weight, num_hidden=hidden, flatten=flatten, no_bias=no_bias, name=name)
    act = net.rng.choice([None, "relu", "tanh", "sigmoid"])  # fused with the layer when bound
    if act:
        y = S.Activation(y, act_type=act)

    def compute(env):
        t = x.compute(env)
        t = F.linear(t.reshape(t.shape[0], -1) if flatten else t, env[f"{name}_weight"],
                     None if no_bias else env[f"{name}_bias"])
        return {"relu": F.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[act](t) if act else t
    new = (x.shape[0], hidden) if flatten else x.shape[:-1] + (hidden,)
    net.matrices.append((weight, (hidden, int(np.prod(x.shape[1:])) if flatten else x.shape[-1])))
    return Node(y, compute, new, x.tied or act == "relu")


def _dot(net, x, i):
    columns, transpose_b, name = net.rng.randint(1, 4), net.rng.random() < 0.5, f"w{i}"
    net.shapes[name] = (columns, x.shape[-1]) if transpose_b else (x.shape[-1], columns)
    weight = S.Variable(name)
    net.matrices.append((weight, net.shapes[name]))

    def compute(env):
        w = env[name]
        return torch.tensordot(x.compute(env), w.t() if transpose_b else w, dims=1)
    return Node(S.dot(x.symbol, weight, transpose_b=transpose_b), compute, x.shape[:-1] + (columns,), x.tied)


def _batch_dot(net, x, i):
    if len(x.shape) != 3:
        return None
    other = net.pick(lambda n: n.shape == x.shape)
    b, t, c = x.shape
    kind = net.rng.choice(["a-bT", "aT-b", "aT-bT"] if t == c else ["a-bT", "aT-b"])
    y = S.batch_dot(x.symbol, other.symbol, transpose_a=kind.startswith("aT"), transpose_b=kind.endswith("bT"))
    product = {"a-bT": lambda p, q: p @ q.transpose(1, 2), "aT-b": lambda p, q: p.transpose(1, 2) @ q,
               "aT-bT": lambda p, q: p.transpose(1, 2) @ q.transpose(1, 2)}[kind]
    new = (b, t, t) if kind == "a-bT" else (b, c, c)
    return Node(y, lambda env: product(x.compute(env), other.compute(env)), new, x.tied or other.tied)


def _layer_norm(net, x, i):
    axis, name, rms = net.rng.randrange(-len(x.shape), len(x.shape)), f"ln{i}", net.rng.random() < 0.4

    def compute(env):
        t = x.compute(env).movedim(axis, -1)
        if rms:
            return F.rms_norm(t, t.shape[-1:], env[f"{name}_gamma"], eps=1e-5).movedim(-1, axis)
        return F.layer_norm(t, t.shape[-1:], env[f"{name}_gamma"], env[f"{name}_beta"], eps=1e-5).movedim(-1, axis)
    return Node((S.RMSNorm if rms else S.LayerNorm)(x.symbol, axis=axis, name=name), compute, x.shape,
                x.tied or x.shape[axis] == 1)  # over one element: beta (about gamma, for RMSNorm)


def _group_norm(net, x, i):
    """GroupNorm (one gamma per group, MXNet's) or InstanceNorm of x (batch, channels, ...)."""
    if len(x.shape) < 3:
        return None
    channels, name, instance = x.shape[1], f"gn{i}", net.rng.random() < 0.4
    groups = channels if instance else net.rng.choice([g for g in range(1, channels + 1) if channels % g == 0])
    eps = 1e-3 if instance else 1e-5

    def compute(env):  # written out: torch's group_norm refuses a group of one element
        t = x.compute(env)
        rows = t.reshape(t.shape[0], groups, -1)
        mean, var = rows.mean(-1, keepdim=True), rows.var(-1, unbiased=False, keepdim=True)
        out = (rows - mean) / torch.sqrt(var + eps) * env[f"{name}_gamma"][:, None] + env[f"{name}_beta"][:, None]
        return out.reshape(t.shape)
    symbol = S.InstanceNorm(x.symbol, name=name) if instance else S.GroupNorm(x.symbol, num_groups=groups, name=name)
    return Node(symbol, compute, x.shape, x.tied or int(np.prod(x.shape[1:])) == groups)  # one element: beta


def _as_image(x):
    """x of 3 axes (batch, channels, length) read as (batch, channels, 1, length)."""
    return Node(S.expand_dims(x.symbol, axis=2), lambda env: x.compute(env).unsqueeze(2),
                (*x.shape[:2], 1, x.shape[2]), x.tied)


def _upsampling(net, x, i):
    """UpSampling of x (4 axes; 3 read as (batch, channels, 1, length)): nearest, of x alone or
    of x and x at half the size (concatenated or summed), or bilinear with a weight."""
    if len(x.shape) not in (3, 4):
        return None
    x = _as_image(x) if len(x.shape) == 3 else x
    rng, (n, c, h, w) = net.rng, x.shape
    scale, kind = rng.randint(1, 3), rng.random()
    if kind < 0.3:
        name = f"up{i}"
        return Node(S.UpSampling(x.symbol, scale=scale, sample_type="bilinear", num_filter=c, name=name),
                    lambda env: F.conv_transpose2d(x.compute(env), env[f"{name}_weight"], stride=scale,
                                                   padding=scale // 2, groups=c),
                    (n, c, h * scale, w * scale), True)
    if kind < 0.6:
        return Node(S.UpSampling(x.symbol, scale=scale, sample_type="nearest"),
                    lambda env: F.interpolate(x.compute(env), scale_factor=scale, mode="nearest"),
                    (n, c, h * scale, w * scale), True)
    # x and a copy twice as large: x upsampled by 2 scale, the copy by scale
    mode = rng.choice(["concat", "sum"])

    def compute(env):
        t = x.compute(env)
        small = F.interpolate(t, scale_factor=2 * scale, mode="nearest")
        large = F.interpolate(F.interpolate(t, scale_factor=2, mode="nearest"), scale_factor=scale, mode="nearest")
        return small + large if mode == "sum" else torch.cat([small, large], 1)
    twice = S.UpSampling(x.symbol, scale=2, sample_type="nearest")
    return Node(S.UpSampling(x.symbol, twice, scale=2 * scale, sample_type="nearest", multi_input_mode=mode),
                compute, (n, c if mode == "sum" else 2 * c, 2 * h * scale, 2 * w * scale), True)


def _pad(net, x, i):
    """Pad of x (4 or 5 axes; 3 read as (batch, channels, 1, length)) on its spatial axes: a
    constant, the edge, or reflected."""
    if len(x.shape) not in (3, 4, 5):
        return None
    x = _as_image(x) if len(x.shape) == 3 else x
    mode = net.rng.choice(["constant", "edge", "reflect"])
    spatial = x.shape[2:]
    most = [min(n - 1, 2) if mode == "reflect" else 2 for n in spatial]  # a mirror shorter than its axis
    pads = [(net.rng.randint(0, m), net.rng.randint(0, m)) for m in most]
    value = net.rng.choice([0.0, 1.5])
    flat = [v for before, after in reversed(pads) for v in (before, after)]  # torch: last axis first
    torch_mode = {"edge": "replicate"}.get(mode, mode)

    def compute(env):
        t = x.compute(env)
        if mode == "constant":
            return torch.nn.functional.pad(t, flat, value=value)
        return torch.nn.functional.pad(t, flat, mode=torch_mode)
    width = (0, 0, 0, 0, *(v for pair in pads for v in pair))
    shape = (*x.shape[:2], *(n + a + b for n, (a, b) in zip(spatial, pads)))
    padded = any(a or b for a, b in pads)  # copies of elements (or of the constant) tie
    return Node(S.Pad(x.symbol, mode=mode, pad_width=width, constant_value=value), compute, shape, x.tied or padded)


def _l2_normalization(net, x, i):
    """L2Normalization of x over each instance, each position's channels or each channel's map."""
    if len(x.shape) < 2:
        return None
    modes = ["instance"] + (["channel", "spatial"] if len(x.shape) >= 3 else [])
    mode = net.rng.choice(modes)
    dims = {"instance": tuple(range(1, len(x.shape))), "channel": (1,), "spatial": tuple(range(2, len(x.shape)))}[mode]

    def compute(env):
        t = x.compute(env)
        return t / torch.sqrt((t * t).sum(dims, keepdim=True) + 1e-10)
    return Node(S.L2Normalization(x.symbol, mode=mode), compute, x.shape, x.tied)


def _one_per_channel(shape: tuple) -> bool:
    """BatchNorm's training statistics over one element per channel: its output is beta."""
    return int(np.prod(shape)) == shape[1]


def _batch_norm(net, x, i):
    ndim, name = len(x.shape), f"bn{i}"
    if ndim < 2:
        return None

    def compute(env):  # per channel of axis 1: the batch's statistics (biased variance), or the moving ones
        t, dims, channel = x.compute(env), tuple(a for a in range(ndim) if a != 1), (1, -1) + (1,) * (ndim - 2)
        if env.get("training", True):
            mean = t.mean(dim=dims, keepdim=True)
            variance = ((t - mean) ** 2).mean(dim=dims, keepdim=True)
        else:
            mean, variance = env[f"{name}_moving_mean"].reshape(channel), env[f"{name}_moving_var"].reshape(channel)
        return (t - mean) / torch.sqrt(variance + 1e-3) * env[f"{name}_gamma"].reshape(channel) + \
            env[f"{name}_beta"].reshape(channel)
    return Node(S.BatchNorm(x.symbol, fix_gamma=False, name=name), compute, x.shape,
                x.tied or _one_per_channel(x.shape))


def _prelu(net, x, i):
    ndim, name = len(x.shape), f"prelu{i}"
    if ndim < 2:
        return None

    def compute(env):
        t = x.compute(env)
        return torch.where(t > 0, t, env[f"{name}_gamma"].reshape((1, -1) + (1,) * (ndim - 2)) * t)
    return Node(S.LeakyReLU(x.symbol, act_type="prelu", name=name), compute, x.shape, True)


def _binary(net, x, i):
    other = net.pick(lambda n: n.shape == x.shape)
    op = net.rng.choice(["+", "-", "*", "/", "maximum", "minimum", "where", "gated", "hypot"])
    if op in ("maximum", "minimum", "hypot") and (x.tied or other.tied or other is x):
        op = "+"  # (hypot: two zeros, of relu say, have no gradient)
    if op == "gated":  # x * act(other) in one operator
        act = net.rng.choice(["silu", "gelu", "gelu_tanh", "sigmoid", "relu", "tanh"])
        gate = {"silu": F.silu, "gelu": F.gelu, "gelu_tanh": lambda t: F.gelu(t, approximate="tanh"),
                "sigmoid": torch.sigmoid, "relu": F.relu, "tanh": torch.tanh}[act]
        return Node(S.GatedActivation(x.symbol, other.symbol, act_type=act),
                    lambda env: x.compute(env) * gate(other.compute(env)), x.shape,
                    x.tied or other.tied or act == "relu")
    y, f = {"+": (x.symbol + other.symbol, torch.add), "-": (x.symbol - other.symbol, torch.sub),
            "*": (x.symbol * other.symbol, torch.mul),
            "/": (x.symbol / (S.square(other.symbol) + 1.0), lambda p, q: p / (q * q + 1.0)),
            "maximum": (S.maximum(x.symbol, other.symbol), torch.maximum),
            "minimum": (S.minimum(x.symbol, other.symbol), torch.minimum),
            "where": (S.where(other.symbol > 0.0, x.symbol, other.symbol), lambda p, q: torch.where(q > 0, p, q)),
            "hypot": (S._hypot(x.symbol, other.symbol), torch.hypot)}[op]
    return Node(y, lambda env: f(x.compute(env), other.compute(env)), x.shape,
                x.tied or other.tied or op in ("maximum", "minimum", "where"))


def _broadcast(net, x, i):
    """x against a sum over some axes of a value of x's shape (kept as size-1 axes)."""
    other, axes = net.pick(lambda n: n.shape == x.shape), net.axes(len(x.shape))
    op, reduced_first = net.rng.choice(["add", "sub", "mul", "div"]), net.rng.random() < 0.5
    r = S.sum(other.symbol, axis=axes, keepdims=True)
    if op == "div":  # the divisor kept away from zero
        y = S.broadcast_div(r, S.square(x.symbol) + 1.0) if reduced_first else \
            S.broadcast_div(x.symbol, S.square(r) + 1.0)
    else:
        y = getattr(S, f"broadcast_{op}")(*((r, x.symbol) if reduced_first else (x.symbol, r)))

    def compute(env):
        a, s = x.compute(env), other.compute(env).sum(dim=axes, keepdim=True)
        if op == "div":
            return s / (a * a + 1.0) if reduced_first else a / (s * s + 1.0)
        f = {"add": torch.add, "sub": torch.sub, "mul": torch.mul}[op]
        return f(s, a) if reduced_first else f(a, s)
    return Node(y, compute, x.shape, x.tied or other.tied)


def _broadcast_to(net, x, i):
    axes = net.axes(len(x.shape))
    r = S.sum(x.symbol, axis=axes, keepdims=True)
    y = S.broadcast_like(r, x.symbol) if net.rng.random() < 0.5 else \
        S.broadcast_to(r, shape=tuple(s if a in axes else 0 for a, s in enumerate(x.shape)))
    return Node(y, lambda env: x.compute(env).sum(dim=axes, keepdim=True).expand(x.shape), x.shape, True)


def _attention(net, x, i):
    if len(x.shape) != 3:
        return None
    key, value, causal = net.pick(lambda n: n.shape == x.shape), net.pick(lambda n: n.shape == x.shape), \
        net.rng.random() < 0.5
    window = net.rng.choice([None, 1, 2]) if causal else None  # a sliding window of 1 or 2 keys
    heads = [S.expand_dims(n.symbol, axis=1) for n in (x, key, value)]  # (batch, 1 head, seq, head_dim)
    length = f"length{i}" if window is not None and net.rng.random() < 0.5 else None
    if length:  # through a window, the queries past a length by the window see no key: 0
        net.shapes[length], net.integers[length] = (x.shape[0],), (1, x.shape[1])
        heads.append(S.Variable(length))
    y = S.squeeze(S.ScaledDotProductAttention(*heads, causal=causal, window=window, use_length=bool(length)), axis=1)

    def compute(env):
        q, k, v = (n.compute(env).unsqueeze(1) for n in (x, key, value))
        if window is None:
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal).squeeze(1)
        i, j = torch.arange(q.shape[2])[:, None], torch.arange(k.shape[2])[None, :]
        mask = ((j <= i) & (j > i - window)).expand(q.shape[0], 1, -1, -1)
        if length:
            mask = mask & (j < env[length].long().reshape(-1, 1, 1, 1))
        empty = ~mask.any(-1, keepdim=True)
        return (F.scaled_dot_product_attention(q, k, v, attn_mask=mask | empty) * ~empty).squeeze(1)
    return Node(y, compute, x.shape, x.tied or bool(length))  # rows of 0


def _grouped_attention(net, x, i):
    """Two query heads split from x's channels (a reshape and a transpose: views) on one key
    and value head (grouped-query attention), merged back into x's shape."""
    if len(x.shape) != 3 or x.shape[2] % 2:
        return None
    other, causal, half = net.pick(lambda n: n.shape == x.shape), net.rng.random() < 0.5, x.shape[2] // 2
    q = S.transpose(S.Reshape(x.symbol, shape=(0, 0, 2, -1)), axes=(0, 2, 1, 3))  # (b, 2, t, c/2)
    kv = S.expand_dims(S.slice_axis(other.symbol, axis=2, begin=0, end=half), axis=1)  # (b, 1, t, c/2)
    y = S.ScaledDotProductAttention(q, kv, kv, causal=causal, enable_gqa=True)
    y = S.Reshape(S.transpose(y, axes=(0, 2, 1, 3)), shape=(0, 0, -3))

    def compute(env):
        t = x.compute(env)
        heads = t.reshape(*t.shape[:2], 2, half).transpose(1, 2)
        shared = other.compute(env)[..., :half].unsqueeze(1)
        out = F.scaled_dot_product_attention(heads, shared, shared, is_causal=causal, enable_gqa=True)
        return out.transpose(1, 2).reshape(t.shape)
    return Node(y, compute, x.shape, x.tied)


def _rotary(net, x, i):
    """RoPE along any axis but the last, on all or the first of its features, halves or
    interleaved pairs, from a later position (the reference: Hugging Face's arithmetic)."""
    ndim, features = len(x.shape), x.shape[-1]
    if ndim < 2 or features < 2:
        return None
    axis, rotary_dim = net.rng.randrange(ndim - 1), 2 * net.rng.randint(1, features // 2)
    interleaved, offset, base = net.rng.random() < 0.5, net.rng.randint(0, 40), net.rng.choice([10000.0, 37.5])
    whole = rotary_dim == features and net.rng.random() < 0.5
    y = S.RotaryEmbedding(x.symbol, axis=axis, base=base, interleaved=interleaved, offset=offset,
                          rotary_dim=None if whole else rotary_dim)

    def compute(env):
        t = x.compute(env)
        half = rotary_dim // 2
        at = [1] * ndim
        at[axis] = t.shape[axis]
        positions = (offset + torch.arange(t.shape[axis], dtype=torch.float64)).reshape(at)
        angle = positions * base ** (-2.0 * torch.arange(half, dtype=torch.float64) / rotary_dim)
        cos, sin = angle.cos().to(t.dtype), angle.sin().to(t.dtype)
        first, second = ((t[..., 0:rotary_dim:2], t[..., 1:rotary_dim:2]) if interleaved
                         else (t[..., :half], t[..., half:rotary_dim]))
        a, b = first * cos - second * sin, first * sin + second * cos
        rotated = torch.stack((a, b), -1).flatten(-2) if interleaved else torch.cat((a, b), -1)
        return torch.cat((rotated, t[..., rotary_dim:]), -1)
    return Node(y, compute, x.shape, x.tied)


def _cache_write(net, x, i):
    """x written into a decoding cache (an auxiliary state holding random values) along any
    axis but the batch's, at positions that wrap around it; the output is the cache itself."""
    ndim = len(x.shape)
    if ndim < 2:
        return None
    axis = net.rng.randrange(1, ndim)
    length = x.shape[axis] + net.rng.randint(0, 3)
    cache_shape = x.shape[:axis] + (length,) + x.shape[axis + 1:]
    name, position = f"kv{i}_cache", f"kv{i}_position"
    net.shapes[position], net.integers[position] = (x.shape[0],), (0, 3 * length)
    y = S.CacheWrite(x.symbol, S.Variable(name, shape=cache_shape), S.Variable(position), axis=axis)

    def compute(env):
        t, out = x.compute(env), env[name].clone()
        for b, start in enumerate(env[position].long().tolist()):
            slots = (start + torch.arange(t.shape[axis])) % length
            out.movedim(axis, 1)[b, slots] = t.movedim(axis, 1)[b]
        return out
    return Node(y, compute, cache_shape, True)


def _sequence_mask(net, x, i):
    ndim = len(x.shape)
    if ndim < 2:
        return None
    axis, value, name = net.rng.randint(0, 1), net.rng.choice([0.0, -1.5]), f"length{i}"
    net.shapes[name], net.integers[name] = (x.shape[1 - axis],), (0, x.shape[axis])
    y = S.SequenceMask(x.symbol, S.Variable(name), use_sequence_length=True, axis=axis, value=value)

    def compute(env):
        t = x.compute(env)
        steps, lengths = torch.arange(t.shape[axis]), env[name]
        if axis == 0:
            past = steps.reshape((-1,) + (1,) * (ndim - 1)) >= lengths.reshape((1, -1) + (1,) * (ndim - 2))
        else:
            past = steps.reshape((1, -1) + (1,) * (ndim - 2)) >= lengths.reshape((-1, 1) + (1,) * (ndim - 2))
        return torch.where(past, torch.full_like(t, value), t)
    return Node(y, compute, x.shape, True)


def _softmax_with_length(net, x, i):
    if len(x.shape) < 2:
        return None
    name = f"length{i}"
    net.shapes[name], net.integers[name] = x.shape[:-1], (1, x.shape[-1])

    def compute(env):
        t = x.compute(env)
        kept = torch.arange(t.shape[-1]) < env[name].unsqueeze(-1)
        return F.softmax(t.masked_fill(~kept, float("-inf")), dim=-1).masked_fill(~kept, 0.0)
    return Node(S.softmax(x.symbol, S.Variable(name), axis=-1, use_length=True), compute, x.shape, True)


def _embedding(net, x, i):
    """A new input: rows of a table looked up by indices of x's leading shape."""
    rows, width, name, index = net.rng.randint(1, 5), net.rng.randint(1, 4), f"embedding{i}", f"index{i}"
    shape = x.shape[:2]
    net.shapes[index], net.integers[index] = shape, (0, rows - 1)
    return Node(S.Embedding(S.Variable(index), input_dim=rows, output_dim=width, name=name),
                lambda env: env[f"{name}_weight"][env[index].long()], shape + (width,), True)


def _shared_weight(net, x, i):
    """A weight an earlier move made, read again here (tied embeddings and projections): its
    gradient sums both uses, whichever of them writes first."""
    shared = [(weight, shape) for weight, shape in net.matrices if x.shape[-1] in shape]
    if not shared:
        return None
    weight, (rows, columns) = net.rng.choice(shared)
    name = weight.name
    net.shapes[name] = (rows, columns)  # where the first use is not in the outputs' graph, dot cannot infer it
    if columns == x.shape[-1]:  # x @ w.T, as FullyConnected reads its weight
        y, f = S.FullyConnected(x.symbol, weight, num_hidden=rows, no_bias=True, flatten=False), lambda t, w: t @ w.t()
        new = x.shape[:-1] + (rows,)
    else:  # x @ w
        y, f, new = S.dot(x.symbol, weight), lambda t, w: t @ w, x.shape[:-1] + (columns,)
    return Node(y, lambda env: f(x.compute(env), env[name]), new, x.tied)


def _one_array_several_inputs(net, x, i):
    """One array at several inputs of one operator (self-attention on one array, a Gram
    matrix, normalization's scale and shift one parameter): each input's gradient is a share
    of one array's, so none may overwrite another's."""
    ndim, kind = len(x.shape), net.rng.choice(["attention", "gram", "concat", "layer_norm", "batch_norm", "swish"])
    if kind == "swish":  # x * silu(x): data and gate one array
        return Node(S.GatedActivation(x.symbol, x.symbol), lambda env: x.compute(env) * F.silu(x.compute(env)),
                    x.shape, x.tied)
    if kind == "attention" and ndim == 3:
        heads, causal = S.expand_dims(x.symbol, axis=1), net.rng.random() < 0.5
        y = S.squeeze(S.ScaledDotProductAttention(heads, heads, heads, causal=causal), axis=1)
        return Node(y, lambda env: F.scaled_dot_product_attention(
            *(x.compute(env).unsqueeze(1),) * 3, is_causal=causal).squeeze(1), x.shape, x.tied)
    if kind == "gram" and ndim == 3:
        return Node(S.batch_dot(x.symbol, x.symbol, transpose_b=True),
                    lambda env: x.compute(env) @ x.compute(env).transpose(1, 2), x.shape[:2] + (x.shape[1],), x.tied)
    if kind == "concat":
        axis = net.rng.randrange(ndim)
        return Node(S.Concat(x.symbol, x.symbol, dim=axis), lambda env: torch.cat([x.compute(env)] * 2, dim=axis),
                    x.shape[:axis] + (2 * x.shape[axis],) + x.shape[axis + 1:], True)
    if kind == "layer_norm":
        scale = S.Variable(f"scale{i}")
        net.shapes[f"scale{i}"] = x.shape[-1:]

        def compute(env):
            s = env[f"scale{i}"]
            return F.layer_norm(x.compute(env), x.shape[-1:], s, s, eps=1e-5)
        return Node(S.LayerNorm(x.symbol, scale, scale), compute, x.shape, x.tied or x.shape[-1] == 1)
    if kind == "batch_norm" and ndim >= 2:
        scale, name, channel = S.Variable(f"scale{i}"), f"bn{i}", (1, -1) + (1,) * (ndim - 2)
        net.shapes[f"scale{i}"] = x.shape[1:2]

        def compute(env):
            t, dims, s = x.compute(env), tuple(a for a in range(ndim) if a != 1), env[f"scale{i}"].reshape(channel)
            if env.get("training", True):
                mean = t.mean(dim=dims, keepdim=True)
                variance = ((t - mean) ** 2).mean(dim=dims, keepdim=True)
            else:
                mean, variance = env[f"{name}_moving_mean"].reshape(channel), env[f"{name}_moving_var"].reshape(channel)
            return (t - mean) / torch.sqrt(variance + 1e-3) * s + s
        return Node(S.BatchNorm(x.symbol, scale, scale, fix_gamma=False, name=name), compute, x.shape,
                    x.tied or _one_per_channel(x.shape))
    return None


def _strided_slice(net, x, i):
    """slice with a step on each leading axis, negative ones included (torch reads the same
    elements through an index list: its views have no negative strides)."""
    count = net.rng.randint(1, len(x.shape))
    bounds = []
    for axis in range(count):
        step = net.rng.choice([1, 2, 3, -1, -2])
        n = x.shape[axis]
        begin, end = net.rng.choice([None, *range(-n, n)]), net.rng.choice([None, *range(-n - 1, n + 1)])
        if not range(n)[slice(begin, end, step)]:
            begin, end = None, None
        bounds.append((begin, end, step))
    index = [list(range(n))[slice(*b)] for n, b in zip(x.shape, bounds)]
    y = S.slice(x.symbol, begin=tuple(b for b, _, _ in bounds), end=tuple(e for _, e, _ in bounds),
                step=tuple(s for _, _, s in bounds))

    def compute(env):
        t = x.compute(env)
        for axis, rows in enumerate(index):
            t = t.index_select(axis, torch.tensor(rows))
        return t
    return Node(y, compute, tuple(len(r) for r in index) + x.shape[count:], x.tied)


def _swap_axes(net, x, i):
    a, b = net.rng.randrange(len(x.shape)), net.rng.randrange(len(x.shape))
    shape = list(x.shape)
    shape[a], shape[b] = shape[b], shape[a]
    return Node(S.swapaxes(x.symbol, dim1=a, dim2=b - len(x.shape)), lambda env: x.compute(env).transpose(a, b),
                tuple(shape), x.tied)


def _tile_or_repeat(net, x, i):
    if net.rng.random() < 0.5:
        reps = tuple(net.rng.randint(1, 2) for _ in range(net.rng.randint(1, len(x.shape) + 1)))
        shape = (1,) * (len(reps) - len(x.shape)) + x.shape
        reps_all = (1,) * (len(shape) - len(reps)) + reps
        return Node(S.tile(x.symbol, reps=reps), lambda env: x.compute(env).tile(reps),
                    tuple(d * r for d, r in zip(shape, reps_all)), True)
    repeats, axis = net.rng.randint(1, 3), net.rng.randrange(len(x.shape))
    return Node(S.repeat(x.symbol, repeats=repeats, axis=axis),
                lambda env: x.compute(env).repeat_interleave(repeats, dim=axis),
                x.shape[:axis] + (x.shape[axis] * repeats,) + x.shape[axis + 1:], True)


def _stack_or_add_n(net, x, i):
    """x with another value of its shape (or itself): stacked on a new axis, or summed with add_n."""
    other = net.pick(lambda n: n.shape == x.shape)
    if net.rng.random() < 0.5:
        axis = net.rng.randint(-len(x.shape) - 1, len(x.shape))
        at = axis % (len(x.shape) + 1)
        return Node(S.stack(x.symbol, other.symbol, axis=axis),
                    lambda env: torch.stack([x.compute(env), other.compute(env)], dim=axis),
                    x.shape[:at] + (2,) + x.shape[at:], True)
    return Node(S.add_n(x.symbol, other.symbol, x.symbol), lambda env: x.compute(env) + other.compute(env)
                + x.compute(env), x.shape, x.tied or other.tied)


def _pick(net, x, i):
    """An element along an axis per position, by an index input that goes past the axis (clipped or wrapped)."""
    if len(x.shape) < 2:
        return None
    axis, mode, name = net.rng.randrange(len(x.shape)), net.rng.choice(["clip", "wrap"]), f"pick{i}"
    n = x.shape[axis]
    net.shapes[name], net.integers[name] = x.shape[:axis] + x.shape[axis + 1:], (-n, 2 * n - 1)

    def compute(env):
        k = env[name].long()
        k = k.clamp(0, n - 1) if mode == "clip" else k % n
        return x.compute(env).gather(axis, k.unsqueeze(axis)).squeeze(axis)
    return Node(S.pick(x.symbol, S.Variable(name), axis=axis, mode=mode), compute,
                x.shape[:axis] + x.shape[axis + 1:], x.tied)


def _take(net, x, i):
    """Slices of x along an axis at an index input of 1 or 2 axes that goes past the axis
    (clipped or wrapped): a slice taken twice, or never."""
    axis, mode, name = net.rng.randrange(len(x.shape)), net.rng.choice(["clip", "wrap"]), f"take{i}"
    n = x.shape[axis]
    index_shape = tuple(net.rng.randint(1, 4) for _ in range(net.rng.randint(1, 2)))
    net.shapes[name], net.integers[name] = index_shape, (-n, 2 * n - 1)

    def compute(env):
        k = env[name].long()
        k = k.clamp(0, n - 1) if mode == "clip" else k % n
        taken = x.compute(env).index_select(axis, k.reshape(-1))
        return taken.reshape(x.shape[:axis] + index_shape + x.shape[axis + 1:])
    return Node(S.take(x.symbol, S.Variable(name), axis=axis, mode=mode), compute,
                x.shape[:axis] + index_shape + x.shape[axis + 1:], True)  # a slice taken twice ties


def _lrn(net, x, i):
    """LRN across axis 1 (AlexNet's window, wider ones, one of a single channel)."""
    if len(x.shape) < 2:
        return None
    nsize, alpha = net.rng.choice([1, 3, 5]), net.rng.choice([1e-4, 0.5, 2.0])
    beta, knorm = net.rng.choice([0.75, 1.5]), net.rng.choice([1.0, 2.0])

    def compute(env):
        t = x.compute(env)
        flat = t.dim() == 2  # torch's takes at least 3 axes
        y = F.local_response_norm(t.unsqueeze(-1) if flat else t, nsize, alpha, beta, knorm)
        return y.squeeze(-1) if flat else y
    return Node(S.LRN(x.symbol, nsize=nsize, alpha=alpha, beta=beta, knorm=knorm), compute, x.shape, x.tied)


def _sort(net, x, i):
    """x sorted along an axis (None: flattened), or its k largest or smallest (topk's values),
    only of values with no ties: which of two tied elements takes a gradient follows rounding."""
    if x.tied:
        return None
    axis = net.rng.choice([None, *range(len(x.shape))])
    length = int(np.prod(x.shape)) if axis is None else x.shape[axis]
    whole = net.rng.random() < 0.3  # sort: the whole axis
    k, ascending = length if whole else net.rng.randint(1, length), net.rng.random() < 0.5

    def compute(env):
        t = x.compute(env)
        t = t.reshape(-1) if axis is None else t
        ordered = torch.sort(t, dim=0 if axis is None else axis, descending=not ascending, stable=True).values
        return ordered.narrow(0 if axis is None else axis, 0, k)
    shape = (k,) if axis is None else x.shape[:axis] + (k,) + x.shape[axis + 1:]
    if whole:
        return Node(S.sort(x.symbol, axis=axis, is_ascend=ascending), compute, shape)
    return Node(S.topk(x.symbol, axis=axis, k=k, ret_typ="value", is_ascend=ascending), compute, shape)


def _convolution_or_pooling(net, x, i):
    """x read as (batch, channels, 1-3 spatial axes): a convolution (strided, dilated, padded,
    grouped or depthwise, with or without bias), a transposed one, or max / average pooling (MXNet's ``full``
    convention too). Max pooling only of values with no ties (which takes the gradient
    would differ); pads within half the kernel, where torch's pools take them."""
    spatial = len(x.shape) - 2
    if not 1 <= spatial <= 3:
        return None
    rng, channels, lengths = net.rng, x.shape[1], x.shape[2:]
    move = rng.random()
    if move < 0.2:
        return _deconvolution(net, x, i)
    if move < 0.6:
        pad = tuple(rng.randint(0, 1) for _ in lengths)
        dilate = tuple(rng.randint(1, 2) for _ in lengths)
        kernel = tuple(max(1, min(rng.randint(1, 3), (n + 2 * p - 1) // d + 1)) for n, p, d in zip(lengths, pad,
                                                                                                     dilate))
        stride = tuple(rng.randint(1, 2) for _ in lengths)
        groups = channels if rng.random() < 0.3 else 1
        filters, no_bias, name = groups * rng.randint(1, 2), rng.random() < 0.3, f"conv{i}"
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spatial]
        out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, d, p in zip(lengths, kernel, stride, dilate,
                                                                                      pad))
        return Node(S.Convolution(x.symbol, kernel=kernel, num_filter=filters, stride=stride, dilate=dilate, pad=pad,
                                  num_group=groups, no_bias=no_bias, name=name),
                    lambda env: conv(x.compute(env), env[f"{name}_weight"], None if no_bias else env[f"{name}_bias"],
                                     stride=stride, padding=pad, dilation=dilate, groups=groups),
                    (x.shape[0], filters, *out), True)
    kind = "avg" if x.tied or rng.random() < 0.5 else "max"
    kernel = tuple(rng.randint(1, min(n, 3)) for n in lengths)
    stride = tuple(rng.randint(1, 2) for _ in lengths)
    pad = tuple(rng.randint(0, k // 2) for k in kernel)
    full, count_pad = rng.random() < 0.5, rng.random() < 0.5
    if full and any(empty_window(n, k, s, p, "full") for n, k, s, p in zip(lengths, kernel, stride, pad)):
        full = False
    pool = {("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d, ("max", 3): F.max_pool3d,
            ("avg", 1): F.avg_pool1d, ("avg", 2): F.avg_pool2d, ("avg", 3): F.avg_pool3d}[kind, spatial]
    options = dict(ceil_mode=full, **({"count_include_pad": count_pad} if kind == "avg" else {}))
    convention = "full" if full else "valid"
    out = tuple(pooling_output_length(n, k, s, p, convention) for n, k, s, p in zip(lengths, kernel, stride, pad))
    return Node(S.Pooling(x.symbol, kernel=kernel, stride=stride, pad=pad, pool_type=kind,
                          pooling_convention=convention, count_include_pad=count_pad),
                lambda env: pool(x.compute(env), kernel, stride, pad, **options), x.shape[:2] + out, True)


def _deconvolution(net, x, i):
    """A transposed convolution of x (batch, channels, 1-3 spatial axes): strided, dilated,
    cropped by a pad, extended by an adj, grouped or depthwise, with or without bias."""
    rng, channels, lengths = net.rng, x.shape[1], x.shape[2:]
    kernel = tuple(rng.randint(1, 3) for _ in lengths)
    stride = tuple(rng.randint(1, 2) for _ in lengths)
    dilate = tuple(rng.randint(1, 2) for _ in lengths)
    adj = tuple(rng.randint(0, s - 1) for s in stride)
    pad = tuple(p if s * (n - 1) + d * (k - 1) + 1 - 2 * p + a >= 1 else 0 for p, n, k, s, d, a in
                zip((rng.randint(0, 1) for _ in lengths), lengths, kernel, stride, dilate, adj))
    groups = channels if rng.random() < 0.3 else 1
    filters, no_bias, name = groups * rng.randint(1, 2), rng.random() < 0.5, f"deconv{i}"
    deconv = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[len(lengths)]
    out = tuple(s * (n - 1) + d * (k - 1) + 1 - 2 * p + a for n, k, s, d, p, a in zip(lengths, kernel, stride, dilate,
                                                                                        pad, adj))
    return Node(S.Deconvolution(x.symbol, kernel=kernel, num_filter=filters, stride=stride, dilate=dilate, pad=pad,
                                adj=adj, num_group=groups, no_bias=no_bias, name=name),
                lambda env: deconv(x.compute(env), env[f"{name}_weight"], None if no_bias else env[f"{name}_bias"],
                                   stride=stride, padding=pad, output_padding=adj, groups=groups, dilation=dilate),
                (x.shape[0], filters, *out), True)


def _sequence_reverse_or_last(net, x, i):
    """SequenceReverse (all steps) or SequenceLast along axis 0 or 1, or diag of the last two axes."""
    if len(x.shape) < 2:
        return None
    axis, kind = net.rng.choice([0, 1]), net.rng.choice(["reverse", "last", "diag"])
    if kind == "reverse":
        return Node(S.SequenceReverse(x.symbol, axis=axis), lambda env: x.compute(env).flip(axis), x.shape, x.tied)
    if kind == "last":
        return Node(S.SequenceLast(x.symbol, axis=axis), lambda env: x.compute(env).select(axis, -1),
                    tuple(d for k, d in enumerate(x.shape) if k != axis), x.tied)
    k = net.rng.randint(-x.shape[-2] + 1, x.shape[-1] - 1)
    out = torch.empty(x.shape).diagonal(k, -2, -1).shape
    return Node(S.diag(x.symbol, k=k, axis1=-2, axis2=-1), lambda env: x.compute(env).diagonal(k, -2, -1),
                tuple(out), x.tied)


MOVES = [_unary, _softmax, _transpose, _reshape, _slice, _flip, _split, _concat, _reduce, _fully_connected, _dot,
         _batch_dot, _layer_norm, _batch_norm, _prelu, _binary, _broadcast, _broadcast_to, _attention,
         _sequence_mask, _softmax_with_length, _embedding, _shared_weight, _one_array_several_inputs,
         _grouped_attention, _rotary, _cache_write, _strided_slice, _swap_axes, _tile_or_repeat, _stack_or_add_n,
         _pick, _convolution_or_pooling, _group_norm, _pad,
         _upsampling, _l2_normalization, _take, _sort, _lrn, _sequence_reverse_or_last]


def random_network(rng) -> tuple[list[Node], dict, dict]:
    """(the outputs: the last value, sometimes an earlier one too; every input's shape; the
    integer inputs' ranges)."""
    net = Network(rng)
    data = (rng.randint(1, 4), rng.randint(1, 5), rng.randint(1, 6))
    net.pool.append(Node(S.Variable("data"), lambda env: env["data"], data))
    net.shapes["data"] = data
    for i in range(rng.randint(1, 8)):
        node = rng.choice(MOVES)(net, net.pick(), i)
        if node is not None:
            net.pool.append(node)
    outputs = [net.pool[-1]]
    if len(net.pool) > 2 and rng.random() < 0.4:
        outputs.append(rng.choice(net.pool[1:-1]))
    return outputs, net.shapes, net.integers


def describe(symbol) -> str:
    """The network, a node a line (what a failure report needs to rebuild it)."""
    nodes = json.loads(symbol.tojson())["nodes"]
    return "".join(f"\n  {i}: {n['op']} {n['name']} {n.get('params', {})} <- {[k for k, _ in n['inputs']]}"
                   for i, n in enumerate(nodes))


def _assert_close(got: torch.Tensor, want: torch.Tensor, tolerance: float, what: str) -> None:
    """Relative to the largest element too: a gradient summed over many terms."""
    largest = float(want.abs().max()) if want.numel() else 0.0
    torch.testing.assert_close(got.double(), want, rtol=tolerance, atol=tolerance * (1 + largest),
                               msg=lambda message: f"{what}: {message}")


def check_against_torch(rng, dtype: str, grad_req: str, mirror: bool, memory_plan: str) -> None:
    outputs, shapes, integers = random_network(rng)
    symbol = S.Group([o.symbol for o in outputs]) if len(outputs) > 1 else outputs[0].symbol
    arguments = symbol.list_arguments()
    if grad_req == "mixed":  # every other argument frozen: the gradients of the rest are still whole
        grad_req = {n: ("write", "null")[i % 2] for i, n in enumerate(arguments)}
    exe = symbol.simple_bind(ts.cpu(), grad_req=grad_req, type_dict={n: dtype for n in arguments}, mirror=mirror,
                             memory_plan=memory_plan, **{n: s for n, s in shapes.items() if n in arguments})
    generator = torch.Generator(torch.get_default_device()).manual_seed(rng.randrange(2**31))
    env = {}
    for name, array in exe.arg_dict.items():
        if name in integers:
            value = torch.randint(integers[name][0], integers[name][1] + 1, array.shape, generator=generator)
        else:
            value = torch.randn(array.shape, generator=generator, dtype=torch.float64)
            value = value * 0.3 + 1.0 if name.endswith("_gamma") else value
        array.copy_(value)
        env[name] = array.detach().to(torch.float64).requires_grad_(name not in integers)  # as rounded
    for name, array in exe.aux_dict.items():  # a decoding cache's earlier entries: random
        if name.endswith("_cache"):
            array.copy_(torch.randn(array.shape, generator=generator, dtype=torch.float64))
            env[name] = array.detach().to(torch.float64)
    heads = [torch.randn(o.shape, generator=generator, dtype=torch.float64).to(o.dtype) for o in exe.outputs]
    poison(exe)  # a value read before it is written, or an element never written, shows as NaN
    if grad_req == "add":
        exe.zero_grad()
    exe.forward(is_train=True)
    exe.backward(out_grads=heads)

    expected = [o.compute(env) for o in outputs]
    for got, want in zip(exe.outputs, expected):
        assert tuple(got.shape) == tuple(want.shape)
        _assert_close(got, want.detach(), TOLERANCE[dtype], f"an output of {describe(symbol)}")
    learned = [n for n in env if n not in integers and exe.grad_dict.get(n) is not None]
    total = sum((want * head.double()).sum() for want, head in zip(expected, heads))
    gradients = torch.autograd.grad(total, [env[n] for n in learned], allow_unused=True) if learned else []
    for name, want in zip(learned, gradients):
        want = torch.zeros_like(env[name]) if want is None else want
        _assert_close(exe.grad_dict[name], want, TOLERANCE[dtype], f"the gradient of {name} in {describe(symbol)}")
    for name in integers:  # lengths and indices take no gradient
        if exe.grad_dict.get(name) is not None:
            assert not exe.grad_dict[name].any(), name

    # The same network, through its JSON, bound for inference (a plan of its own, with more
    # reuse), from the arguments and the moving statistics the training step left.
    inference = S.load_json(symbol.tojson()).simple_bind(
        ts.cpu(), grad_req="null", type_dict={n: dtype for n in arguments}, memory_plan=memory_plan,
        **{n: s for n, s in shapes.items() if n in arguments})
    for name, array in exe.arg_dict.items():
        inference.arg_dict[name].copy_(array)
    for name, array in exe.aux_dict.items():
        inference.aux_dict[name].copy_(array)
    poison(inference, ("internal",))
    inference.forward(is_train=False)
    env = {**{n: v.detach() for n, v in env.items()}, **{n: a.double() for n, a in exe.aux_dict.items()},
           "training": False}
    for got, output in zip(inference.outputs, outputs):
        _assert_close(got, output.compute(env), TOLERANCE[dtype], f"an inference output of {describe(symbol)}")


BIND_OPTIONS = st.tuples(st.sampled_from(["write", "add", "mixed"]), st.booleans(),
                         st.sampled_from(["auto", "auto", "greedy", "mxnet", "none"]))


@settings(**property_settings(15))
@given(st.randoms(use_true_random=False), BIND_OPTIONS)
def test_random_networks_match_torch_autograd_in_float64(rng, options):
    check_against_torch(rng, "float64", *options)


@settings(**property_settings(6))
@given(st.randoms(use_true_random=False), BIND_OPTIONS)
def test_random_networks_match_torch_autograd_in_float32(rng, options):
    check_against_torch(rng, "float32", *options)


@pytest.mark.slow
@settings(**property_settings(500))
@given(st.randoms(use_true_random=False), BIND_OPTIONS)
def test_many_random_networks_match_torch_autograd(rng, options):
    check_against_torch(rng, "float64", *options)
