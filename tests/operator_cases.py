"""One or more cases per registered operator: a symbol, its inputs, and float64 oracles.

The dtype tests (test_operators.py) and the finite-difference gradient checks
(test_gradcheck.py) both run every case through bind, forward and backward on the
real kernels. ``loss`` is the scalar a loss operator's backward differentiates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import oracles as o
import torch

import tritonsym as ts

S = ts.sym


def normal(scale=1.0):
    return lambda rng, shape: rng.normal(scale=scale, size=shape)


def away_from_zero(rng, shape):
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def triangular_factors(rng, shape):
    """Well-conditioned triangular factors: small entries, a diagonal in [1.5, 2.5]."""
    return rng.normal(scale=0.3, size=shape) + np.eye(shape[-1]) * rng.uniform(1.5, 2.5, shape[:-1])[..., None]


def well_conditioned(rng, shape):
    """Square matrices with a dominant diagonal of either sign: far from singular."""
    diagonal = rng.uniform(1.5, 2.5, shape[:-1]) * rng.choice([-1.0, 1.0], shape[:-1])
    return rng.normal(scale=0.4, size=shape) + np.eye(shape[-1]) * diagonal[..., None]


def spread_rows(rng, shape):
    """Rows of growing scale (1, 2, 3, ...): X X^T has well-separated eigenvalues, whose
    gaps the eigenvectors' gradient divides by."""
    return rng.normal(size=shape) * (1.0 + np.arange(shape[-2]))[:, None]


def classes(n):
    return lambda rng, shape: rng.integers(0, n, shape).astype(np.float64)


def truths(rng, shape):
    """-1, 0 and 1: true and false operands of the logical operators."""
    return rng.integers(-1, 2, shape).astype(np.float64)


def dividends(rng, shape):
    """Whole numbers plus a fraction in [0.1, 0.4] or [0.6, 0.9]: over the divisors below, a
    quotient a fraction at least 0.05 from a whole number (where mod steps)."""
    fraction = rng.uniform(0.1, 0.4, shape) + rng.choice([0.0, 0.5], shape)
    return rng.integers(-3, 4, shape) + fraction


def divisors(rng, shape):
    return rng.choice([-2.0, -0.5, 0.5, 2.0], shape)


def probabilities(rng, shape):
    return o.softmax(rng.normal(size=shape))


@dataclass
class Case:
    id: str
    op: str
    build: Callable[[], ts.symbol.Symbol]
    shapes: dict
    forward: Callable[[dict], np.ndarray]
    # d(sum(head * out))/d(input) — for a loss operator (head ignored) d(loss)/d(input).
    backward: Callable[[dict, np.ndarray], dict]
    # For loss operators: the scalar whose gradient backward writes (finite-difference checks).
    loss: Callable[[dict, np.ndarray], float] | None = None
    values: dict = field(default_factory=dict)
    no_grad: tuple = ()

    def inputs(self, rng) -> dict[str, np.ndarray]:
        """A value for every name of ``shapes``: the arguments, and auxiliary states (a cache)."""
        return {n: self.values.get(n, normal())(rng, s) for n, s in self.shapes.items()}


def write_inputs(exe, values: dict, rounded) -> dict[str, np.ndarray]:
    """Write ``values`` into the executor's arguments and auxiliary states (each rounded to
    its array's dtype); returns what the kernels see, in float64."""
    for name, value in values.items():
        array = exe.arg_dict[name] if name in exe.arg_dict else exe.aux_dict[name]
        array[...] = rounded(value, array.dtype)
    return {n: (exe.arg_dict[n] if n in exe.arg_dict else exe.aux_dict[n]).to(torch.float64).numpy() for n in values}


def _data(name="data"):
    return S.Variable(name)


CASES: list[Case] = []


def case(**kwargs):
    CASES.append(Case(**kwargs))


# ------------------------------------------------------------------ FullyConnected

case(id="fc_flatten", op="FullyConnected",
     build=lambda: S.FullyConnected(_data(), num_hidden=7, name="fc"),
     shapes={"data": (5, 3, 4), "fc_weight": (7, 12), "fc_bias": (7,)},
     values={"fc_weight": normal(0.3)},
     forward=lambda v: o.fully_connected(v["data"].reshape(5, -1), v["fc_weight"], v["fc_bias"]),
     backward=lambda v, h: dict(zip(("data", "fc_weight", "fc_bias"), (
         g.reshape(s) for g, s in zip(o.fully_connected_grads(h, v["data"].reshape(5, -1), v["fc_weight"]),
                                      ((5, 3, 4), (7, 12), (7,)))))))

case(id="fc_no_flatten_no_bias", op="FullyConnected",
     build=lambda: S.FullyConnected(_data(), num_hidden=6, no_bias=True, flatten=False, name="fc"),
     shapes={"data": (2, 3, 4), "fc_weight": (6, 4)},
     forward=lambda v: v["data"] @ v["fc_weight"].T,
     backward=lambda v, h: {"data": h @ v["fc_weight"], "fc_weight": np.einsum("abn,abk->nk", h, v["data"])})

# ---------------------------------------------------------------------- BatchNorm

for _shape, _axis, _fix in (((5, 3, 4), 1, False), ((6, 5), -1, False), ((4, 3, 2, 3), 1, True), ((3, 4, 7), 2, False)):
    _channels = _shape[_axis]
    case(id=f"batch_norm_{'x'.join(map(str, _shape))}_axis{_axis}_fix{int(_fix)}", op="BatchNorm",
         build=lambda a=_axis, f=_fix: S.BatchNorm(_data(), axis=a, fix_gamma=f, eps=1e-3, name="bn"),
         shapes={"data": _shape, "bn_gamma": (_channels,), "bn_beta": (_channels,)},
         values={"data": normal(2.0), "bn_gamma": away_from_zero},
         forward=lambda v, a=_axis, f=_fix: o.batch_norm(v["data"], v["bn_gamma"], v["bn_beta"], a, 1e-3, f),
         backward=lambda v, h, a=_axis, f=_fix: dict(zip(("data", "bn_gamma", "bn_beta"), o.batch_norm_grads(
             h, v["data"], v["bn_gamma"], a, 1e-3, f))))

# ---------------------------------------------------------------------- LayerNorm

for _shape, _axis in (((5, 7), -1), ((3, 4, 6), 1), ((2, 3, 5), 0), ((4, 2, 9), -1)):
    _columns = _shape[_axis]
    case(id=f"layer_norm_{'x'.join(map(str, _shape))}_axis{_axis}", op="LayerNorm",
         build=lambda a=_axis: S.LayerNorm(_data(), axis=a, name="ln"),
         shapes={"data": _shape, "ln_gamma": (_columns,), "ln_beta": (_columns,)},
         values={"data": normal(2.0), "ln_gamma": away_from_zero},
         forward=lambda v, a=_axis: o.layer_norm(v["data"], v["ln_gamma"], v["ln_beta"], a),
         backward=lambda v, h, a=_axis: dict(zip(("data", "ln_gamma", "ln_beta"), o.layer_norm_grads(
             h, v["data"], v["ln_gamma"], a))))

# ---------------------------------------------------------- GroupNorm, InstanceNorm

for _shape, _groups in (((2, 6, 5, 3), 3), ((3, 4, 7), 1), ((1, 4, 2, 3, 2), 4)):
    case(id=f"group_norm_{'x'.join(map(str, _shape))}_groups{_groups}", op="GroupNorm",
         build=lambda g=_groups: S.GroupNorm(_data(), num_groups=g, name="gn"),
         shapes={"data": _shape, "gn_gamma": (_groups,), "gn_beta": (_groups,)},
         values={"data": normal(2.0), "gn_gamma": away_from_zero},
         forward=lambda v, g=_groups: o.group_norm(v["data"], v["gn_gamma"], v["gn_beta"], g),
         backward=lambda v, h, g=_groups: dict(zip(("data", "gn_gamma", "gn_beta"), o.group_norm_grads(
             h, v["data"], v["gn_gamma"], g))))

case(id="instance_norm_2x3x4x5", op="InstanceNorm",
     build=lambda: S.InstanceNorm(_data(), eps=1e-3, name="inorm"),
     shapes={"data": (2, 3, 4, 5), "inorm_gamma": (3,), "inorm_beta": (3,)},
     values={"data": normal(2.0), "inorm_gamma": away_from_zero},
     forward=lambda v: o.group_norm(v["data"], v["inorm_gamma"], v["inorm_beta"], 3, eps=1e-3),
     backward=lambda v, h: dict(zip(("data", "inorm_gamma", "inorm_beta"), o.group_norm_grads(
         h, v["data"], v["inorm_gamma"], 3, eps=1e-3))))

# ---------------------------------------------------------------- L2Normalization

for _shape, _mode, _axes in (((4, 7), "instance", (1,)), ((2, 3, 4, 5), "instance", (1, 2, 3)),
                             ((3, 5, 2, 3), "channel", (1,)), ((2, 3, 4, 5, 2), "spatial", (2, 3, 4))):
    case(id=f"l2_normalization_{_mode}_{'x'.join(map(str, _shape))}", op="L2Normalization",
         build=lambda m=_mode: S.L2Normalization(_data(), mode=m, eps=1e-3), shapes={"data": _shape},
         forward=lambda v, a=_axes: o.l2_normalization(v["data"], a, 1e-3),
         backward=lambda v, h, a=_axes: {"data": o.l2_normalization_grad(h, v["data"], a, 1e-3)})

# ------------------------------------------------------------------------ RMSNorm

for _shape, _axis in (((5, 7), -1), ((3, 4, 6), 1), ((2, 3, 5), 0)):
    case(id=f"rms_norm_{'x'.join(map(str, _shape))}_axis{_axis}", op="RMSNorm",
         build=lambda a=_axis: S.RMSNorm(_data(), axis=a, name="rms"),
         shapes={"data": _shape, "rms_gamma": (_shape[_axis],)},
         values={"data": normal(2.0), "rms_gamma": away_from_zero},
         forward=lambda v, a=_axis: o.rms_norm(v["data"], v["rms_gamma"], a),
         backward=lambda v, h, a=_axis: dict(zip(("data", "rms_gamma"), o.rms_norm_grads(h, v["data"],
                                                                                          v["rms_gamma"], a))))

# ------------------------------------------------------------------------ RotaryEmbedding
# Attention's layout (batch, heads, positions, head_dim); positions along axis 1 of (batch,
# positions, heads, head_dim); interleaved pairs; a part of the features; a later start.

for _id, _shape, _settings in (
        ("heads_layout", (2, 3, 7, 10), {}),
        ("positions_first_interleaved", (2, 9, 2, 6), dict(axis=1, interleaved=True)),
        ("partial_offset_base", (3, 5, 12), dict(rotary_dim=8, offset=6, base=500.0)),
        ("partial_interleaved_axis0", (11, 2, 7), dict(axis=0, rotary_dim=4, interleaved=True, offset=3))):
    case(id=f"rotary_{_id}", op="RotaryEmbedding",
         build=lambda s=_settings: S.RotaryEmbedding(_data(), **s, name="rope"),
         shapes={"data": _shape},
         forward=lambda v, s=_settings: o.rotary(v["data"], **s),
         backward=lambda v, h, s=_settings: {"data": o.rotary(h, **s, transpose=True)})

# Each batch row's positions from its own start (a decoding step's place in its text).
case(id="rotary_at_positions", op="RotaryEmbedding",
     build=lambda: S.RotaryEmbedding(_data(), _data("position"), axis=2, use_position=True, name="rope"),
     shapes={"data": (3, 2, 2, 6), "position": (3,)},
     values={"position": lambda rng, shape: np.array([0.0, 7.0, 3.0])},
     forward=lambda v: o.rotary_at(v["data"], v["position"], axis=2),
     backward=lambda v, h: {"data": o.rotary_at(h, v["position"], axis=2, transpose=True)},
     no_grad=("position",))

# ------------------------------------------------------------------------ CacheWrite
# The cache is an auxiliary state (``aux``); positions past its length wrap around (a ring):
# one decoding step's keys, split heads read through strides; a prefill of 3 entries; the
# last axis.

def _heads(x):
    return np.swapaxes(x, 1, 2)  # (batch, steps, heads, dim) <-> (batch, heads, steps, dim): its own inverse


for _id, _view, _shapes, _axis, _positions in (
        ("heads_step", _heads, {"data": (3, 1, 2, 4), "cache": (3, 2, 5, 4)}, 2, [0.0, 5.0, 12.0]),
        ("prefill_axis1", None, {"data": (2, 3, 4), "cache": (2, 5, 4)}, 1, [0.0, 4.0]),
        ("last_axis", None, {"data": (2, 3, 2), "cache": (2, 3, 4)}, -1, [1.0, 3.0])):
    _as_seen = _view or (lambda x: x)  # the data CacheWrite sees, and its gradient back
    case(id=f"cache_write_{_id}", op="CacheWrite",
         build=lambda h=_view is not None, a=_axis: S.CacheWrite(
             S.transpose(_data(), axes=(0, 2, 1, 3)) if h else _data(), _data("cache"), _data("position"), axis=a,
             name="kv"),
         shapes={**_shapes, "position": (len(_positions),)},
         values={"position": lambda rng, shape, p=_positions: np.array(p)},
         forward=lambda v, a=_axis, f=_as_seen: o.cache_write(f(v["data"]), v["cache"], v["position"], a),
         backward=lambda v, h, a=_axis, f=_as_seen: {"data": f(o.cache_write_grad(h, v["position"],
                                                                                  f(v["data"]).shape[a], a))},
         no_grad=("cache", "position"))

# rrelu's draws are known where they do not matter: one slope (lower = upper), or data above 0
# (the identity). The training forward runs the drawing kernel; tests/test_rrelu.py the draws.
case(id="rrelu_one_slope", op="LeakyReLU",
     build=lambda: S.LeakyReLU(_data(), act_type="rrelu", lower_bound=0.2, upper_bound=0.2),
     shapes={"data": (5, 7)}, forward=lambda v: o.act(v["data"], "leaky", 0.2),
     backward=lambda v, h: {"data": h * o.act_grad(v["data"], "leaky", 0.2)})
case(id="rrelu_positive", op="LeakyReLU", build=lambda: S.LeakyReLU(_data(), act_type="rrelu"),
     shapes={"data": (4, 3, 5)}, values={"data": positive}, forward=lambda v: v["data"].copy(),
     backward=lambda v, h: {"data": h.copy()})


# ------------------------------------------------------------------------ Dropout
# Its masks are random: tests/test_dropout.py checks them; here p=0, the identity (a view).

case(id="dropout_p0", op="Dropout", build=lambda: S.Dropout(_data(), p=0.0), shapes={"data": (7, 5)},
     forward=lambda v: v["data"], backward=lambda v, h: {"data": h})

# --------------------------------------------------------------------- activations

for _act in ("relu", "sigmoid", "tanh", "softrelu", "softsign"):
    case(id=f"activation_{_act}", op="Activation",
         build=lambda a=_act: S.Activation(_data(), act_type=a),
         shapes={"data": (9, 13)}, values={"data": normal(2.0)},
         forward=lambda v, a=_act: o.act(v["data"], a),
         backward=lambda v, h, a=_act: {"data": h * o.act_grad(v["data"], a)})

for _act in ("relu", "sigmoid", "tanh", "softsign"):  # MXNet's unary operators of these (sym.relu(x) ...)
    case(id=_act, op=_act,
         build=lambda a=_act: getattr(S, a)(_data()),
         shapes={"data": (8, 11)}, values={"data": normal(2.0)},
         forward=lambda v, a=_act: o.act(v["data"], a),
         backward=lambda v, h, a=_act: {"data": h * o.act_grad(v["data"], a)})

for _act, _slope in (("leaky", 0.2), ("elu", 0.9), ("selu", 0.25), ("gelu", 0.25), ("gelu_tanh", 0.25),
                     ("silu", 0.25), ("leaky", -0.5)):
    case(id=f"leaky_relu_{_act}_{_slope}", op="LeakyReLU",
         build=lambda a=_act, s=_slope: S.LeakyReLU(_data(), act_type=a, slope=s),
         shapes={"data": (9, 13)}, values={"data": normal(2.0)},
         forward=lambda v, a=_act, s=_slope: o.act(v["data"], a, s),
         backward=lambda v, h, a=_act, s=_slope: {"data": h * o.act_grad(v["data"], a, s)})

# GatedActivation: data * act(gate), each gate of the GLU family; then x * silu(x), one array at
# both inputs (its two gradients stored by one thread, the gate's added).
for _act in ("silu", "gelu", "gelu_tanh", "sigmoid", "relu", "tanh"):
    case(id=f"gated_activation_{_act}", op="GatedActivation",
         build=lambda a=_act: S.GatedActivation(_data(), S.Variable("gate"), act_type=a),
         shapes={"data": (6, 11), "gate": (6, 11)}, values={"gate": normal(2.0)},
         forward=lambda v, a=_act: v["data"] * o.act(v["gate"], a),
         # relu's derivative, chosen by comparing the gate, is NaN at a NaN gate (as Activation's)
         backward=lambda v, h, a=_act: {"data": h * o.act(v["gate"], a),
                                        "gate": np.where(np.isnan(v["gate"]), np.nan,
                                                         h * v["data"] * o.act_grad(v["gate"], a))})

# ... and written by hand, which the gate fusion pass runs as one GatedActivation (executor/gates.py)
case(id="gated_by_hand_silu", op="GatedActivation",
     build=lambda: S.LeakyReLU(S.Variable("gate"), act_type="silu") * _data(),
     shapes={"data": (6, 10), "gate": (6, 10)}, values={"gate": normal(2.0)},
     forward=lambda v: v["data"] * o.act(v["gate"], "silu"),
     backward=lambda v, h: {"data": h * o.act(v["gate"], "silu"),
                            "gate": h * v["data"] * o.act_grad(v["gate"], "silu")})
case(id="gated_activation_one_array_twice", op="GatedActivation",
     build=lambda: (lambda x: S.GatedActivation(x, x))(_data()), shapes={"data": (4, 9)},
     values={"data": normal(2.0)},
     forward=lambda v: v["data"] * o.act(v["data"], "silu"),
     backward=lambda v, h: {"data": h * (o.act(v["data"], "silu") + v["data"] * o.act_grad(v["data"], "silu"))})

# ------------------------------------------------------------------------- softmax

for _name, _fwd, _bwd in (("softmax", o.softmax, o.softmax_grad), ("log_softmax", o.log_softmax, o.log_softmax_grad)):
    for _axis, _shape in ((-1, (7, 11)), (1, (3, 5, 4))):
        case(id=f"{_name}_axis{_axis}", op=_name,
             build=lambda n=_name, a=_axis: getattr(S, n)(_data(), axis=a),
             shapes={"data": _shape}, values={"data": normal(2.0)},
             forward=lambda v, f=_fwd, a=_axis: f(v["data"], a),
             backward=lambda v, h, f=_bwd, a=_axis: {"data": f(h, v["data"], a)})

# MXNet's older SoftmaxActivation: instance along the last axis, channel along axis 1
for _mode, _axis, _shape in (("instance", -1, (3, 4, 6)), ("channel", 1, (2, 5, 3, 2))):
    case(id=f"softmax_activation_{_mode}", op="SoftmaxActivation",
         build=lambda m=_mode: S.SoftmaxActivation(_data(), mode=m),
         shapes={"data": _shape}, values={"data": normal(2.0)},
         forward=lambda v, a=_axis: o.softmax(v["data"], a),
         backward=lambda v, h, a=_axis: {"data": o.softmax_grad(h, v["data"], a)})

# temperature T: f(x / T), its gradient 1 / T times f's at x / T; softmin: softmax(-x / T).
for _name, _t, _fwd, _bwd, _sign in (("softmax", 0.5, o.softmax, o.softmax_grad, 1.0),
                                     ("log_softmax", -3.0, o.log_softmax, o.log_softmax_grad, 1.0),
                                     ("softmin", None, o.softmax, o.softmax_grad, -1.0),
                                     ("softmin", 2.5, o.softmax, o.softmax_grad, -1.0)):
    _factor = _sign / (_t or 1.0)
    case(id=f"{_name}_temperature{_t}", op=_name,
         build=lambda n=_name, t=_t: getattr(S, n)(_data(), axis=1, **({} if t is None else {"temperature": t})),
         shapes={"data": (3, 6, 2)}, values={"data": normal(2.0)},
         forward=lambda v, f=_fwd, k=_factor: f(v["data"] * k, 1),
         backward=lambda v, h, f=_bwd, k=_factor: {"data": k * f(h, v["data"] * k, 1)})


# A few wide rows are split across programs on a GPU (rows under 128, wider than 32K
# columns). These ops.softmax settings (blocks of 2 columns) make every softmax case's rows
# "wide" and "few", so that the split kernels run, and a bound network plans their stats.
SPLIT_ROWS = [("MAX_BLOCK", 2), ("LOOP_BLOCK", 2), ("SPLIT_BELOW_ROWS", 1000), ("SPLIT_PROGRAMS", 64),
              ("SPLIT_MIN_STEPS", 1)]


def _softmax_output_case(id, shape, label_shape, label_values, options, to_rows, build_name="SoftmaxOutput"):
    """to_rows(x) views data as (rows, classes) and labels as (rows,), as the option implies."""
    loss_options = {k: v for k, v in options.items() if k not in ("multi_output", "preserve_shape")}
    if options.get("multi_output") and options.get("normalization", "null") == "null":
        # MXNet divides by the positions per sample (batch does so through the row count).
        loss_options["grad_scale"] = options.get("grad_scale", 1.0) / int(np.prod(shape[2:]))

    def loss(v, out):
        p, label = to_rows(out, v["out_label"])
        if label.shape == p.shape:  # probability target
            return -(label * np.log(p)).sum() * options.get("grad_scale", 1.0)
        return o.cross_entropy(p, label, **loss_options)

    def forward(v):
        x, _ = to_rows(v["data"], v["out_label"])
        return _from_rows(o.softmax(x), shape, options)

    def backward(v, head):
        x, label = to_rows(v["data"], v["out_label"])
        if label.shape == x.shape:  # probability target: (p - label) * grad_scale, never normalised
            grad = (o.softmax(x) - label) * options.get("grad_scale", 1.0)
        else:
            grad = o.softmax_output_grad(x, label, **loss_options)
        return {"data": _from_rows(grad, shape, options)}

    case(id=id, op="SoftmaxOutput",
         build=lambda: getattr(S, build_name)(_data(), name="out", **options),
         shapes={"data": shape, "out_label": label_shape},
         values={"data": normal(2.0), "out_label": label_values},
         forward=forward, backward=backward, loss=loss, no_grad=("out_label",))


def _from_rows(p, shape, options):
    if options.get("multi_output"):
        n, c = shape[0], shape[1]
        return np.moveaxis(p.reshape(n, *shape[2:], c), -1, 1)
    return p.reshape(shape)


def _rows_default(x, label):
    return x.reshape(x.shape[0], -1), label


def _rows_multi(x, label):
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1]), label.reshape(-1) if label.ndim < x.ndim else \
        np.moveaxis(label, 1, -1).reshape(-1, x.shape[1])


def _rows_last(x, label):
    return x.reshape(-1, x.shape[-1]), label.reshape(-1) if label.ndim < x.ndim else label.reshape(-1, x.shape[-1])


_softmax_output_case("softmax_output", (8, 5), (8,), classes(5), {}, _rows_default)
_softmax_output_case("softmax_alias_batch_norm", (8, 2, 3), (8,), classes(6),
                     {"normalization": "batch", "grad_scale": 2.0}, _rows_default, build_name="Softmax")
_softmax_output_case("softmax_output_valid_ignore", (8, 5), (8,), classes(3),
                     {"normalization": "valid", "use_ignore": True, "ignore_label": 1.0}, _rows_default)
_softmax_output_case("softmax_output_smooth", (8, 5), (8,), classes(5), {"smooth_alpha": 0.2}, _rows_default)
_softmax_output_case("softmax_output_multi_output", (3, 4, 5), (3, 5), classes(4),
                     {"multi_output": True, "normalization": "valid"}, _rows_multi)
_softmax_output_case("softmax_output_multi_output_null", (2, 5, 2, 3), (2, 2, 3), classes(5),
                     {"multi_output": True, "grad_scale": 0.5}, _rows_multi)
_softmax_output_case("softmax_output_multi_output_batch", (3, 4, 5), (3, 5), classes(4),
                     {"multi_output": True, "normalization": "batch"}, _rows_multi)
_softmax_output_case("softmax_output_preserve_shape", (3, 4, 5), (3, 4), classes(5),
                     {"preserve_shape": True}, _rows_last)
_softmax_output_case("softmax_output_probability_label", (6, 5), (6, 5), probabilities, {}, _rows_default)

# ------------------------------------------------------------- regression outputs

case(id="linear_regression", op="LinearRegressionOutput",
     build=lambda: S.LinearRegressionOutput(_data(), name="out", grad_scale=0.5),
     shapes={"data": (7, 3), "out_label": (7, 3)},
     forward=lambda v: v["data"],
     backward=lambda v, h: {"data": (v["data"] - v["out_label"]) * 0.5 / 3},
     loss=lambda v, out: 0.5 * 0.5 / 3 * ((out - v["out_label"]) ** 2).sum(), no_grad=("out_label",))

# SVMOutput: scores of 2 and 3 axes; L2 and L1 objectives
for _id, _shape, _options in (("svm_output_l2", (6, 5), dict(margin=0.8, regularization_coefficient=0.5)),
                              ("svm_output_l1_3d", (2, 3, 4), dict(use_linear=True, margin=1.2))):
    case(id=_id, op="SVMOutput", build=lambda o_=_options: S.SVMOutput(_data(), name="svm", **o_),
         shapes={"data": _shape, "svm_label": _shape[:-1]}, values={"svm_label": classes(_shape[-1])},
         forward=lambda v: v["data"],
         backward=lambda v, h, o_=_options: {"data": o.svm_output_grad(
             v["data"], v["svm_label"], o_.get("margin", 1.0), o_.get("regularization_coefficient", 1.0),
             o_.get("use_linear", False))},
         loss=lambda v, out, o_=_options: o.svm_loss(out, v["svm_label"], o_.get("margin", 1.0),
                                                     o_.get("regularization_coefficient", 1.0),
                                                     o_.get("use_linear", False)),
         no_grad=("svm_label",))

# the absolute error's sign: labels apart from the data (no difference near 0 to flip)
case(id="mae_regression", op="MAERegressionOutput",
     build=lambda: S.MAERegressionOutput(_data(), name="out", grad_scale=2.0),
     shapes={"data": (5, 4), "out_label": (5, 4)},
     values={"data": away_from_zero, "out_label": lambda rng, s: rng.uniform(-0.25, 0.25, s)},
     forward=lambda v: v["data"],
     backward=lambda v, h: {"data": np.sign(v["data"] - v["out_label"]) * 2.0 / 4},
     loss=lambda v, out: 2.0 / 4 * np.abs(out - v["out_label"]).sum(), no_grad=("out_label",))

case(id="logistic_regression", op="LogisticRegressionOutput",
     build=lambda: S.LogisticRegressionOutput(_data(), name="out"),
     shapes={"data": (7, 1), "out_label": (7,)}, values={"out_label": lambda rng, s: rng.uniform(0, 1, s)},
     forward=lambda v: o.act(v["data"], "sigmoid"),
     backward=lambda v, h: {"data": o.act(v["data"], "sigmoid") - v["out_label"][:, None]},
     loss=lambda v, out: -(v["out_label"][:, None] * np.log(out)
                           + (1 - v["out_label"][:, None]) * np.log(1 - out)).sum(),
     no_grad=("out_label",))

# ------------------------------------------------------------ shapes and gradients

case(id="flatten", op="Flatten",
     build=lambda: S.Flatten(_data()), shapes={"data": (4, 3, 2)},
     forward=lambda v: v["data"].reshape(4, 6),
     backward=lambda v, h: {"data": h.reshape(4, 3, 2)})

case(id="reshape_codes", op="Reshape",
     build=lambda: S.Reshape(_data(), shape=(0, -4, 2, -1, -3)), shapes={"data": (3, 6, 5, 2)},
     forward=lambda v: v["data"].reshape(3, 2, 3, 10),
     backward=lambda v, h: {"data": h.reshape(3, 6, 5, 2)})

case(id="reshape_reverse", op="Reshape",
     build=lambda: S.Reshape(_data(), shape=(-1, 0), reverse=True), shapes={"data": (3, 5, 4)},
     forward=lambda v: v["data"].reshape(15, 4),
     backward=lambda v, h: {"data": h.reshape(3, 5, 4)})

case(id="expand_dims", op="expand_dims",
     build=lambda: S.expand_dims(_data(), axis=-2), shapes={"data": (3, 5)},
     forward=lambda v: v["data"][:, None, :],
     backward=lambda v, h: {"data": h[:, 0, :]})

case(id="squeeze", op="squeeze",
     build=lambda: S.squeeze(_data(), axis=(0, 2)), shapes={"data": (1, 5, 1, 3, 1)},
     forward=lambda v: v["data"].reshape(5, 3, 1),
     backward=lambda v, h: {"data": h.reshape(1, 5, 1, 3, 1)})

# The 5-d and 6-d permutations leave more axes than the copy kernel indexes: one launch per
# index of the shortest axis (``elementwise_launches``).
for _shape, _axes in (((3, 5, 7), ()), ((2, 7, 3, 5), (0, 2, 1, 3)), ((4, 3, 5), (1, 0, 2)), ((3, 5), (0, 1)),
                      ((2, 3, 2, 4, 3), (2, 0, 3, 1, 4)), ((2, 3, 2, 2, 3, 2), (5, 2, 0, 3, 1, 4))):
    case(id=f"transpose_{'x'.join(map(str, _shape))}_{''.join(map(str, _axes)) or 'reversed'}", op="transpose",
         build=lambda a=_axes: S.transpose(_data(), axes=a), shapes={"data": _shape},
         forward=lambda v, a=_axes: np.transpose(v["data"], a or None),
         backward=lambda v, h, a=_axes: {"data": np.transpose(h, np.argsort(a) if a else None)})

def _embedding_grad(indices, head, rows):
    grad = np.zeros((rows, head.shape[-1]))
    np.add.at(grad, indices.astype(np.int64).ravel(), head.reshape(-1, head.shape[-1]))
    return grad


# More positions and columns than one block of the suite's small blocks, indices repeated.
case(id="embedding", op="Embedding",
     build=lambda: S.Embedding(_data(), input_dim=7, output_dim=19, name="emb"),
     shapes={"data": (4, 9), "emb_weight": (7, 19)}, values={"data": classes(7)},
     forward=lambda v: v["emb_weight"][v["data"].astype(np.int64)],
     backward=lambda v, h: {"emb_weight": _embedding_grad(v["data"], h, 7)},
     no_grad=("data",))

# -------------------------------------------------------------- dot, batch_dot


def _product_case(op, lhs, rhs, ta, tb, forward, grads):
    build = getattr(S, op)
    case(id=f"{op}_{'x'.join(map(str, lhs))}_{'x'.join(map(str, rhs))}{'_ta' if ta else ''}{'_tb' if tb else ''}",
         op=op, build=lambda: build(S.Variable("lhs"), S.Variable("rhs"), transpose_a=ta, transpose_b=tb),
         shapes={"lhs": lhs, "rhs": rhs}, forward=lambda v: forward(v["lhs"], v["rhs"]),
         backward=lambda v, h: dict(zip(("lhs", "rhs"), grads(v["lhs"], v["rhs"], h))))


def _swap(t):
    return np.swapaxes(t, -1, -2)


for _ta, _tb in ((False, False), (True, False), (False, True), (True, True)):
    _lhs = (2, 3, 7, 5) if _ta else (2, 3, 5, 7)
    _rhs = (2, 3, 6, 7) if _tb else (2, 3, 7, 6)

    def _bd_forward(a, b, ta=_ta, tb=_tb):
        return (_swap(a) if ta else a) @ (_swap(b) if tb else b)

    def _bd_grads(a, b, h, ta=_ta, tb=_tb):
        a_op, b_op = (_swap(a) if ta else a), (_swap(b) if tb else b)
        ga, gb = h @ _swap(b_op), _swap(a_op) @ h
        return (_swap(ga) if ta else ga), (_swap(gb) if tb else gb)

    _product_case("batch_dot", _lhs, _rhs, _ta, _tb, _bd_forward, _bd_grads)

_product_case("dot", (3, 4, 5), (5, 2, 6), False, False, lambda a, b: np.tensordot(a, b, 1),
              lambda a, b, h: (np.tensordot(h, b, ([2, 3], [1, 2])), np.tensordot(a, h, ([0, 1], [0, 1]))))
_product_case("dot", (5, 3, 4), (6, 5), True, True, lambda a, b: np.tensordot(a, b, ([0], [1])),
              lambda a, b, h: (np.tensordot(b, h, ([0], [2])), np.tensordot(h, a, ([0, 1], [1, 2]))))
_product_case("dot", (7,), (7,), False, False, lambda a, b: np.array([a @ b]),
              lambda a, b, h: (h[0] * b, h[0] * a))

# ------------------------------------------------------------------------- linalg


def _shape_id(*shapes):
    return "_".join("x".join(map(str, s)) for s in shapes)


for _a, _b, _c, _ta, _tb, _alpha, _beta, _axis in (
        ((2, 2, 3, 5), (2, 2, 5, 3), None, False, False, 1.0, 0.0, -2),
        ((2, 5, 3), (2, 4, 5), None, True, True, -0.7, 0.0, -2),
        ((2, 3, 2, 5), (2, 5, 2, 3), None, False, False, 1.3, 0.0, 1),
        ((4, 5), (4, 3), None, True, False, 1.0, 0.0, -2),
        ((2, 3, 5), (2, 4, 5), (2, 3, 4), False, True, 1.7, 0.3, -2),
        ((3, 2, 4), (4, 2, 5), (3, 2, 5), False, False, -0.4, -1.5, 0),
        ((5, 3), (4, 5), (3, 4), True, True, 1.0, 1.0, -2)):
    _gemm = "_linalg_gemm" if _c else "_linalg_gemm2"
    _extra = dict(beta=_beta) if _c else {}
    _names = ("A", "B", "C") if _c else ("A", "B")
    case(id=f"{_gemm}_{_shape_id(_a, _b)}_ta{int(_ta)}_tb{int(_tb)}_axis{_axis}", op=_gemm,
         build=lambda f=getattr(S.linalg, _gemm.removeprefix("_linalg_")), n=_names, ta=_ta, tb=_tb, al=_alpha,
         ax=_axis, e=_extra: f(*(S.Variable(x) for x in n), transpose_a=ta, transpose_b=tb, alpha=al, axis=ax, **e),
         shapes=dict(zip(_names, (_a, _b, _c))),
         forward=lambda v, ta=_ta, tb=_tb, al=_alpha, be=_beta, ax=_axis: o.linalg_gemm(
             v["A"], v["B"], v.get("C"), ta, tb, al, be, ax),
         backward=lambda v, h, n=_names, ta=_ta, tb=_tb, al=_alpha, be=_beta, ax=_axis: dict(zip(n, o.linalg_gemm_grads(
             h, v["A"], v["B"], ta, tb, al, be, ax))))

for _shape, _transpose, _alpha in (((3, 4, 5), False, 1.0), ((5, 3), True, -0.5), ((2, 2, 3, 4), False, 2.5)):
    case(id=f"_linalg_syrk_{_shape_id(_shape)}_t{int(_transpose)}", op="_linalg_syrk",
         build=lambda t=_transpose, al=_alpha: S.linalg.syrk(S.Variable("A"), transpose=t, alpha=al),
         shapes={"A": _shape}, forward=lambda v, t=_transpose, al=_alpha: o.linalg_syrk(v["A"], t, al),
         backward=lambda v, h, t=_transpose, al=_alpha: {"A": o.linalg_syrk_grad(h, v["A"], t, al)})

for _shape, _offset in (((3, 5, 5), 0), ((4, 4), 2), ((2, 3, 6, 6), -1)):
    case(id=f"_linalg_extractdiag_{_shape_id(_shape)}_offset{_offset}", op="_linalg_extractdiag",
         build=lambda k=_offset: S.linalg.extractdiag(S.Variable("A"), offset=k), shapes={"A": _shape},
         forward=lambda v, k=_offset: o.extract_diagonal(v["A"], k),
         backward=lambda v, h, k=_offset: {"A": o.make_diagonal(h, k)})

for _shape, _offset in (((3, 5), 0), ((4,), -2), ((2, 2, 3), 1)):
    case(id=f"_linalg_makediag_{_shape_id(_shape)}_offset{_offset}", op="_linalg_makediag",
         build=lambda k=_offset: S.linalg.makediag(S.Variable("A"), offset=k), shapes={"A": _shape},
         forward=lambda v, k=_offset: o.make_diagonal(v["A"], k),
         backward=lambda v, h, k=_offset: {"A": o.extract_diagonal(h, k)})

for _n, _batch, _offset, _lower in ((5, (3,), 0, True), (4, (), 0, False), (6, (2,), 2, True), (5, (2, 2), -1, False)):
    _size = (_n - abs(_offset)) * (_n - abs(_offset) + 1) // 2
    case(id=f"_linalg_extracttrian_{_n}_offset{_offset}_lower{int(_lower)}", op="_linalg_extracttrian",
         build=lambda k=_offset, lo=_lower: S.linalg.extracttrian(S.Variable("A"), offset=k, lower=lo),
         shapes={"A": (*_batch, _n, _n)}, forward=lambda v, k=_offset, lo=_lower: o.extract_triangle(v["A"], k, lo),
         backward=lambda v, h, k=_offset, lo=_lower: {"A": o.make_triangle(h, k, lo)})
    case(id=f"_linalg_maketrian_{_size}_offset{_offset}_lower{int(_lower)}", op="_linalg_maketrian",
         build=lambda k=_offset, lo=_lower: S.linalg.maketrian(S.Variable("A"), offset=k, lower=lo),
         shapes={"A": (*_batch, _size)}, forward=lambda v, k=_offset, lo=_lower: o.make_triangle(v["A"], k, lo),
         backward=lambda v, h, k=_offset, lo=_lower: {"A": o.extract_triangle(h, k, lo)})

for _shape in ((3, 4, 4), (5, 5), (2, 2, 3, 3)):
    case(id=f"_linalg_sumlogdiag_{_shape_id(_shape)}", op="_linalg_sumlogdiag",
         build=lambda: S.linalg.sumlogdiag(S.Variable("A")), shapes={"A": _shape}, values={"A": positive},
         forward=lambda v: o.sumlogdiag(v["A"]), backward=lambda v, h: {"A": o.sumlogdiag_grad(h, v["A"])})

for _a, _b, _transpose, _right, _lower, _alpha in (
        ((2, 4, 4), (2, 4, 3), False, False, True, 1.0), ((3, 3), (2, 3), True, True, True, -0.5),
        ((2, 2, 4, 4), (2, 2, 4, 2), True, False, False, 1.5), ((4, 4), (3, 4), False, True, False, 2.0)):
    for _op, _forward, _grads in (("trmm", o.linalg_trmm, o.linalg_trmm_grads),
                                  ("trsm", o.linalg_trsm, o.linalg_trsm_grads)):
        case(id=f"_linalg_{_op}_{_shape_id(_a, _b)}_t{int(_transpose)}_right{int(_right)}_lower{int(_lower)}",
             op=f"_linalg_{_op}",
             build=lambda f=getattr(S.linalg, _op), t=_transpose, r=_right, lo=_lower, al=_alpha: f(
                 S.Variable("A"), S.Variable("B"), transpose=t, rightside=r, lower=lo, alpha=al),
             shapes={"A": _a, "B": _b}, values={"A": triangular_factors},
             forward=lambda v, f=_forward, t=_transpose, r=_right, lo=_lower, al=_alpha: f(
                 v["A"], v["B"], t, r, lo, al),
             backward=lambda v, h, g=_grads, t=_transpose, r=_right, lo=_lower, al=_alpha: dict(zip(("A", "B"), g(
                 h, v["A"], v["B"], t, r, lo, al))))

# potrf of X X^T (syrk): a symmetric input, on which MXNet's symmetric gradient is the derivative
for _shape, _lower in (((2, 4, 6), True), ((3, 5), False)):
    case(id=f"_linalg_potrf_of_syrk_{_shape_id(_shape)}_lower{int(_lower)}", op="_linalg_potrf",
         build=lambda lo=_lower: S.linalg.potrf(S.linalg.syrk(S.Variable("X")), lower=lo), shapes={"X": _shape},
         forward=lambda v, lo=_lower: o.linalg_potrf(o.linalg_syrk(v["X"], False, 1.0), lo),
         backward=lambda v, h, lo=_lower: {"X": o.linalg_syrk_grad(
             o.linalg_potrf_grad(h, o.linalg_syrk(v["X"], False, 1.0), lo), v["X"], False, 1.0)})

for _shape, _lower in (((2, 4, 4), True), ((3, 3), False), ((2, 2, 3, 3), True)):
    case(id=f"_linalg_potri_{_shape_id(_shape)}_lower{int(_lower)}", op="_linalg_potri",
         build=lambda lo=_lower: S.linalg.potri(S.Variable("A"), lower=lo), shapes={"A": _shape},
         values={"A": triangular_factors}, forward=lambda v, lo=_lower: o.linalg_potri(v["A"], lo),
         backward=lambda v, h, lo=_lower: {"A": o.linalg_potri_grad(h, v["A"], lo)})

for _shape in ((2, 4, 4), (5, 5), (2, 1, 3, 3)):
    case(id=f"_linalg_inverse_{_shape_id(_shape)}", op="_linalg_inverse",
         build=lambda: S.linalg.inverse(S.Variable("A")), shapes={"A": _shape}, values={"A": well_conditioned},
         forward=lambda v: o.linalg_inverse(v["A"]), backward=lambda v, h: {"A": o.linalg_inverse_grad(h, v["A"])})
    case(id=f"_linalg_det_{_shape_id(_shape)}", op="_linalg_det",
         build=lambda: S.linalg.det(S.Variable("A")), shapes={"A": _shape}, values={"A": well_conditioned},
         forward=lambda v: o.linalg_det(v["A"]), backward=lambda v, h: {"A": o.linalg_det_grad(h, v["A"])})
    case(id=f"_linalg_slogdet_logabs_{_shape_id(_shape)}", op="_linalg_slogdet",
         build=lambda: S.linalg.slogdet(S.Variable("A"))[1], shapes={"A": _shape}, values={"A": well_conditioned},
         forward=lambda v: o.linalg_slogdet(v["A"])[1], backward=lambda v, h: {"A": o.linalg_slogdet_grad(h, v["A"])})
case(id="_linalg_slogdet_sign", op="_linalg_slogdet",
     build=lambda: S.linalg.slogdet(S.Variable("A"))[0], shapes={"A": (3, 4, 4)}, values={"A": well_conditioned},
     # the sign has no gradient: log |det|'s, under the zero head of that unused output (NaN in, NaN out)
     forward=lambda v: o.linalg_slogdet(v["A"])[0],
     backward=lambda v, h: {"A": o.linalg_slogdet_grad(np.zeros(3), v["A"])})

# syevd of X X^T (syrk): symmetric, with distinct eigenvalues; MXNet's symmetric gradient is
# the derivative for symmetric perturbations. Eigenvectors and eigenvalues each, and both.
for _shape, _output in (((2, 3, 5), 0), ((4, 6), 1), ((2, 3, 4), None)):
    def _syevd_build(output=_output):
        u, values = S.linalg.syevd(S.linalg.syrk(S.Variable("X")))
        return u if output == 0 else values if output == 1 else S.broadcast_mul(u, S.expand_dims(values, axis=-1))

    def _syevd_forward(v, output=_output):
        u, values = o.linalg_syevd(o.linalg_syrk(v["X"], False, 1.0))
        return u if output == 0 else values if output == 1 else u * values[..., None]

    def _syevd_backward(v, h, output=_output):
        a = o.linalg_syrk(v["X"], False, 1.0)
        u, values = o.linalg_syevd(a)
        head_u = h if output == 0 else np.zeros_like(u) if output == 1 else h * values[..., None]
        head_l = h if output == 1 else np.zeros_like(values) if output == 0 else (h * u).sum(-1)
        return {"X": o.linalg_syrk_grad(o.linalg_syevd_grad(head_u, head_l, a), v["X"], False, 1.0)}

    case(id=f"_linalg_syevd_of_syrk_{_shape_id(_shape)}_output{_output}", op="_linalg_syevd", build=_syevd_build,
         shapes={"X": _shape}, values={"X": spread_rows}, forward=_syevd_forward, backward=_syevd_backward)

for _shape, _output in (((2, 3, 5), 0), ((4, 4), 1), ((2, 1, 2, 6), None)):
    def _gelqf_build(output=_output):
        q, lower = S.linalg.gelqf(S.Variable("A"))
        return q if output == 0 else lower if output == 1 else S.linalg.gemm2(lower, q)  # A again

    def _gelqf_forward(v, output=_output):
        q, lower = o.linalg_gelqf(v["A"])
        return q if output == 0 else lower if output == 1 else lower @ q

    def _gelqf_backward(v, h, output=_output):
        q, lower = o.linalg_gelqf(v["A"])
        if output is None:  # the head of L Q: L^T h for Q, h Q^T for L
            head_q, head_l = np.swapaxes(lower, -1, -2) @ h, h @ np.swapaxes(q, -1, -2)
        else:
            head_q, head_l = (h, np.zeros_like(lower)) if output == 0 else (np.zeros_like(q), h)
        return {"A": o.linalg_gelqf_grad(head_q, head_l, v["A"])}

    case(id=f"_linalg_gelqf_{_shape_id(_shape)}_output{_output}", op="_linalg_gelqf", build=_gelqf_build,
         shapes={"A": _shape}, forward=_gelqf_forward, backward=_gelqf_backward)

# ------------------------------------------------------------------ CTC loss


def _ctc_labels(channels, blank_first):
    """Labels of the alphabet (never the blank), a repeat in each row, each row padded past
    a different length (0 with the blank first, -1 with it last)."""
    def draw(rng, shape):
        labels = rng.integers(1, channels, shape) if blank_first else rng.integers(0, channels - 1, shape)
        labels[:, 1] = labels[:, 0]  # a repeat: its alignments need a blank between
        for row in range(shape[0]):
            labels[row, 2 + row % (shape[1] - 1):] = 0 if blank_first else -1
        return labels.astype(np.float64)
    return draw


def _ctc_case(blank_first, lengths):
    steps, batch, channels, labels = 7, 3, 5, 3
    extra = {"data_lengths": (batch,), "label_lengths": (batch,)} if lengths else {}
    values = {"label": _ctc_labels(channels, blank_first)}
    if lengths:
        values["data_lengths"] = lambda rng, shape: np.array([7.0, 5.0, 6.0])
        values["label_lengths"] = lambda rng, shape: np.array([2.0, 1.0, 2.0])  # inside each row's padding

    def options(v):
        return dict(blank_first=blank_first, data_lengths=v.get("data_lengths"), label_lengths=v.get("label_lengths"))

    case(id=f"CTCLoss_blank_{'first' if blank_first else 'last'}{'_lengths' if lengths else ''}", op="CTCLoss",
         build=lambda: S.ctc_loss(*(S.Variable(n) for n in ("data", "label", *extra)),
                                  blank_label="first" if blank_first else "last", use_data_lengths=lengths,
                                  use_label_lengths=lengths),
         shapes={"data": (steps, batch, channels), "label": (batch, labels), **extra}, values=values,
         forward=lambda v: o.ctc_loss(v["data"], v["label"], **options(v))[0],
         backward=lambda v, h: {"data": o.ctc_loss_grad(h, v["data"], v["label"], **options(v))},
         no_grad=("label", *extra))


_ctc_case(True, False)
_ctc_case(False, True)


# ------------------------------------------------------------------ the fused RNN

_RNN_SHAPE = dict(steps=3, batch=2, features=3, hidden=4)


def _rnn_case(mode, layers=1, bidirectional=False, output=0, lengths=None, projection=None, clip=None):
    """RNN over data (3, 2, 3), 4 hidden units; the case's symbol is output ``output``
    (1: the last hidden states, 2: lstm's last cells), whose head the oracle gives it;
    ``lengths``: the sequences' lengths (use_sequence_length); ``projection``: lstm's
    projection_size; ``clip``: lstm's (lstm_state_clip_min, lstm_state_clip_max)."""
    steps, batch, features, hidden = _RNN_SHAPE.values()
    directions = 1 + bidirectional
    states = (layers * directions, batch, projection or hidden)
    shapes = {"data": (steps, batch, features),
              "rnn_parameters": (o.rnn_parameter_count(mode, layers, directions, features, hidden, projection),),
              "rnn_state": states, **({"rnn_state_cell": (*states[:2], hidden)} if mode == "lstm" else {})}
    values = {"rnn_parameters": normal(0.4)}
    if lengths is not None:
        shapes["lengths"] = (batch,)
        values["lengths"] = lambda rng, shape: np.array(lengths, np.float64)

    def run(v):
        return o.rnn(v["data"], v["rnn_parameters"], v["rnn_state"], v.get("rnn_state_cell"), mode, layers,
                     bidirectional, lengths=v.get("lengths"), projection=projection, clip=clip)

    def backward(v, h):
        heads = [np.zeros_like(x) for x in run(v)[:3] if x is not None]
        heads[output] = h
        grads = o.rnn_grads(*heads, *([None] if mode != "lstm" else []), v["data"], v["rnn_parameters"],
                            v["rnn_state"], v.get("rnn_state_cell"), mode, layers, bidirectional,
                            lengths=v.get("lengths"), projection=projection, clip=clip)
        return dict(zip([name for name in shapes if name != "lengths"], grads))

    def build():
        extra = {} if lengths is None else dict(sequence_length=S.Variable("lengths"), use_sequence_length=True)
        if projection:
            extra["projection_size"] = projection
        if clip:
            extra.update(lstm_state_clip_min=clip[0], lstm_state_clip_max=clip[1])
        return S.RNN(S.Variable("data"), state_size=hidden, num_layers=layers, mode=mode, bidirectional=bidirectional,
                     state_outputs=output > 0, name="rnn", **extra)[output]

    named = ("" if lengths is None else "_lengths" + "-".join(map(str, lengths))) + (
        f"_projection{projection}" if projection else "") + (f"_clip{clip[0]}to{clip[1]}" if clip else "")
    case(id=f"RNN_{mode}_layers{layers}{'_bidirectional' if bidirectional else ''}_output{output}{named}", op="RNN",
         build=build, shapes=shapes, values=values, forward=lambda v: run(v)[output], backward=backward,
         no_grad=() if lengths is None else ("lengths",))


_rnn_case("lstm")
_rnn_case("gru")
_rnn_case("rnn_tanh", layers=3)  # MXNet 1.9.1's CPU gradient of the middle layer's input weights is wrong here
_rnn_case("rnn_relu", bidirectional=True)
_rnn_case("lstm", layers=2, bidirectional=True)
_rnn_case("lstm", layers=2, output=1)
_rnn_case("lstm", output=2)
_rnn_case("gru", layers=2, bidirectional=True, output=1)
_rnn_case("lstm", layers=2, bidirectional=True, lengths=(2, 0))  # the second sequence: the initial states
_rnn_case("gru", bidirectional=True, output=1, lengths=(1, 3))
_rnn_case("rnn_relu", layers=2, lengths=(3, 2))
_rnn_case("lstm", output=2, lengths=(2, 1))
_rnn_case("lstm", layers=2, bidirectional=True, projection=3)
_rnn_case("lstm", output=1, projection=2)
_rnn_case("lstm", layers=2, output=2, projection=4)  # as many units as the cell: W_r (4, 4) still applies
_rnn_case("lstm", bidirectional=True, output=1, lengths=(3, 1), projection=2)
_rnn_case("lstm", layers=2, bidirectional=True, clip=(-0.3, 0.4))  # cuDNN's cell clipping: many c' clipped
_rnn_case("lstm", output=2, projection=3, clip=(-0.5, 0.5))

# ------------------------------------------------------------------ reductions


def _reduce_case(op, shape, kwargs, forward, grad, values=None):
    name = "_".join(f"{k}{v}" for k, v in kwargs.items()).replace(" ", "").replace(",", "-") or "all"
    case(id=f"{op}_{'x'.join(map(str, shape))}_{name}", op=op,
         build=lambda: getattr(S, op)(_data(), **kwargs), shapes={"data": shape},
         values={"data": values} if values else {},
         forward=lambda v: forward(v["data"]), backward=lambda v, h: {"data": grad(v["data"], h)})


def with_zeros(rng, shape):
    """Magnitudes 0.5 to 2 of either sign, and some exact zeros (one or two in a group)."""
    return rng.choice([0.0, 0.0, 1.0, 1.0, 1.0], shape) * away_from_zero(rng, shape) + \
        rng.choice([0.0, 1.0], shape) * away_from_zero(rng, shape)


def _spread(h, shape, axes):
    """The head gradient of a reduction broadcast back over the reduced axes."""
    return np.broadcast_to(np.expand_dims(h.reshape([n for d, n in enumerate(shape) if d not in axes] or [1])
                                          if len(axes) < len(shape) else h.reshape(()), axes), shape)


_reduce_case("sum", (3, 4, 5), {"axis": (0, 2), "keepdims": True}, lambda x: x.sum((0, 2), keepdims=True),
             lambda x, h: np.broadcast_to(h, x.shape))
_reduce_case("mean", (3, 4, 5), {"axis": 1, "exclude": True}, lambda x: x.mean((0, 2)),
             lambda x, h: _spread(h, x.shape, (0, 2)) / 15)
_reduce_case("max", (4, 7), {"axis": -1}, lambda x: x.max(-1),
             lambda x, h: np.where(x == x.max(-1, keepdims=True), h[:, None], 0.0))
_reduce_case("min", (3, 5), {}, lambda x: x.min().reshape(1),
             lambda x, h: np.where(x == x.min(), h[0], 0.0))
_reduce_case("norm", (4, 6), {"axis": 1}, lambda x: np.sqrt((x * x).sum(1)),
             lambda x, h: x / np.sqrt((x * x).sum(1, keepdims=True)) * h[:, None])
_reduce_case("norm", (4, 3, 2), {"ord": 1, "axis": (0, 2), "keepdims": True},
             lambda x: np.abs(x).sum((0, 2), keepdims=True), lambda x, h: np.sign(x) * h)
_reduce_case("prod", (3, 4, 5), {"axis": 1}, lambda x: x.prod(1),
             lambda x, h: o.product_of_others(x, (1,)) * h[:, None], values=away_from_zero)
_reduce_case("prod", (6, 3), {"axis": 1, "keepdims": True}, lambda x: x.prod(1, keepdims=True),
             lambda x, h: o.product_of_others(x, (1,)) * h, values=with_zeros)
_reduce_case("nansum", (4, 6), {"axis": -1}, lambda x: np.nansum(x, -1),
             lambda x, h: np.where(np.isnan(x), 0.0, np.broadcast_to(h[:, None], x.shape)))
_reduce_case("nanprod", (3, 2, 4), {"axis": (0, 2)}, lambda x: np.nanprod(x, (0, 2)),
             lambda x, h: o.product_of_others(x, (0, 2), skip_nan=True) * h[None, :, None], values=away_from_zero)

# moments: the variance (its mean unused) and the mean (its variance unused)
case(id="moments_variance_outer_axes_keepdims", op="moments",
     build=lambda: S.moments(_data(), axes=(0, 2), keepdims=True)[1], shapes={"data": (3, 4, 5)},
     forward=lambda v: v["data"].var((0, 2), keepdims=True),
     backward=lambda v, h: {"data": 2 * h * (v["data"] - v["data"].mean((0, 2), keepdims=True)) / 15})
case(id="moments_mean_all_axes", op="moments",
     build=lambda: S.moments(_data())[0], shapes={"data": (4, 6)},
     forward=lambda v: v["data"].mean().reshape(1), backward=lambda v, h: {"data": np.full((4, 6), h[0] / 24)})

# ------------------------------------------------------------------ broadcasts


def _unbroadcast(g, shape):
    """A gradient of the broadcast shape summed back to an operand's ``shape``."""
    g = g.sum(tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
    return g.sum(tuple(a for a, n in enumerate(shape) if n == 1 and g.shape[a] != 1), keepdims=True)


_BINARY_MATH = {
    "add": (np.add, lambda a, b, h: (h, h)),
    "sub": (np.subtract, lambda a, b, h: (h, -h)),
    "mul": (np.multiply, lambda a, b, h: (h * b, h * a)),
    "div": (np.divide, lambda a, b, h: (h / b, -h * a / b ** 2)),
    "maximum": (np.maximum, lambda a, b, h: (np.where(a >= b, h, 0.0), np.where(a < b, h, 0.0))),
    "minimum": (np.minimum, lambda a, b, h: (np.where(a <= b, h, 0.0), np.where(a > b, h, 0.0))),
    "power": (np.power, lambda a, b, h: (h * b * a ** (b - 1), h * a ** b * np.log(a))),
    "greater": (lambda a, b: (a > b).astype(np.float64), lambda a, b, h: (0 * h, 0 * h)),
    "hypot": (np.hypot, lambda a, b, h: (h * a / np.hypot(a, b), h * b / np.hypot(a, b))),
}


def _broadcast_case(op, kind, lhs, rhs):
    forward, grads = _BINARY_MATH[kind]

    def backward(v, h):
        a, b = v["lhs"], v["rhs"]
        ga, gb = grads(np.broadcast_to(a, h.shape), np.broadcast_to(b, h.shape), h)
        return {"lhs": _unbroadcast(ga, a.shape), "rhs": _unbroadcast(gb, b.shape)}

    case(id=f"{op}_{'x'.join(map(str, lhs))}_{'x'.join(map(str, rhs))}", op=op,
         build=lambda: getattr(S, op)(S.Variable("lhs"), S.Variable("rhs")), shapes={"lhs": lhs, "rhs": rhs},
         values={"lhs": positive, "rhs": positive} if kind == "power" else {},
         forward=lambda v: forward(v["lhs"], v["rhs"]), backward=backward)


_broadcast_case("broadcast_add", "add", (2, 3, 5), (3, 1))
_broadcast_case("broadcast_sub", "sub", (1, 5), (4, 1))
_broadcast_case("broadcast_add", "add", (2, 1, 3, 1, 5), (1, 2, 1, 3, 1))  # 5 axes that cannot merge
_broadcast_case("broadcast_mul", "mul", (2, 1, 5), (2, 3, 5))
_broadcast_case("broadcast_div", "div", (3, 4), (4,))
_broadcast_case("broadcast_maximum", "maximum", (3, 4), (3, 1))
_broadcast_case("broadcast_minimum", "minimum", (3, 4), (1, 4))
_broadcast_case("broadcast_power", "power", (3, 4), (3, 1))
_broadcast_case("broadcast_greater", "greater", (2, 3), (3,))
_broadcast_case("broadcast_hypot", "hypot", (3, 1, 4), (2, 1))
for _kind in o.LOGICAL:
    case(id=f"broadcast_{_kind}", op=f"broadcast_{_kind}",
         build=lambda k=_kind: getattr(S, f"broadcast_{k}")(S.Variable("lhs"), S.Variable("rhs")),
         shapes={"lhs": (3, 4), "rhs": (3, 1)}, values={"lhs": truths, "rhs": truths},
         forward=lambda v, k=_kind: o.BINARY[k](v["lhs"], v["rhs"]),
         backward=lambda v, h: {"lhs": 0 * h, "rhs": 0 * h.sum(1, keepdims=True)})
for _name, _shapes in (("_mod", ((6, 7), (6, 7))), ("broadcast_mod", ((3, 1, 4), (2, 1)))):
    case(id=_name, op=_name, build=lambda n=_name: getattr(S, n)(S.Variable("lhs"), S.Variable("rhs")),
         shapes=dict(zip(("lhs", "rhs"), _shapes)), values={"lhs": dividends, "rhs": divisors},
         forward=lambda v: o.BINARY["mod"](v["lhs"], v["rhs"]),
         backward=lambda v, h: dict(zip(("lhs", "rhs"), (_unbroadcast(g, v[k].shape) for k, g in zip(
             ("lhs", "rhs"), o.binary_grads("mod", h, *np.broadcast_arrays(v["lhs"], v["rhs"])))))))
for _cmp in ("equal", "not_equal", "greater_equal", "lesser", "lesser_equal"):  # no ties: a step's finite difference
    case(id=f"broadcast_{_cmp}", op=f"broadcast_{_cmp}",
         build=lambda c=_cmp: getattr(S, f"broadcast_{c}")(S.Variable("lhs"), S.Variable("rhs")),
         shapes={"lhs": (3, 4), "rhs": (1, 4)}, values={"lhs": away_from_zero, "rhs": away_from_zero},
         forward=lambda v, c=_cmp: o.BINARY[c](v["lhs"], v["rhs"]),
         backward=lambda v, h: {"lhs": 0 * h, "rhs": 0 * h.sum(0, keepdims=True)})
for _kind in ("maximum", "minimum", "power"):
    _forward, _grads = _BINARY_MATH[_kind]
    case(id=f"_{_kind}", op=f"_{_kind}",
         build=lambda k=_kind: getattr(S, f"_{k}")(S.Variable("lhs"), S.Variable("rhs")),
         shapes={"lhs": (4, 5), "rhs": (4, 5)}, values={"lhs": positive, "rhs": positive} if _kind == "power" else {},
         forward=lambda v, f=_forward: f(v["lhs"], v["rhs"]),
         backward=lambda v, h, g=_grads: dict(zip(("lhs", "rhs"), g(v["lhs"], v["rhs"], h))))
    if _kind != "power":
        case(id=f"_{_kind}_scalar", op=f"_{_kind}_scalar",
             build=lambda k=_kind: getattr(S, f"_{k}_scalar")(_data(), scalar=0.3), shapes={"data": (4, 5)},
             forward=lambda v, f=_forward: f(v["data"], 0.3),
             backward=lambda v, h, k=_kind: {"data": np.where(v["data"] >= 0.3 if k == "maximum" else
                                                              v["data"] <= 0.3, h, 0.0)})

for _axis, _shape in ((1, (4, 9, 3)), (None, (3, 5)), (-1, (2, 3, 7))):
    case(id=f"cumsum_axis{_axis}", op="_np_cumsum", build=lambda a=_axis: S.cumsum(S.Variable("a"), axis=a),
         shapes={"a": _shape},
         forward=lambda v, a=_axis: np.cumsum(v["a"], axis=a),
         backward=lambda v, h, a=_axis: {"a": (np.flip(np.cumsum(np.flip(h), 0)) if a is None else
                                               np.flip(np.cumsum(np.flip(h, a), a), a)).reshape(v["a"].shape)})

case(id="broadcast_to_5d", op="broadcast_to",
     build=lambda: S.broadcast_to(_data(), shape=(2, 3, 3, 2, 2)), shapes={"data": (2, 1, 3, 1, 2)},
     forward=lambda v: np.broadcast_to(v["data"], (2, 3, 3, 2, 2)),
     backward=lambda v, h: {"data": h.sum((1, 3), keepdims=True)})

case(id="broadcast_to", op="broadcast_to",
     build=lambda: S.broadcast_to(_data(), shape=(2, 0, 4)), shapes={"data": (1, 3, 1)},
     forward=lambda v: np.broadcast_to(v["data"], (2, 3, 4)),
     backward=lambda v, h: {"data": h.sum((0, 2), keepdims=True)})

case(id="broadcast_like", op="broadcast_like",
     build=lambda: S.broadcast_like(S.Variable("lhs"), S.Variable("rhs")), shapes={"lhs": (3, 1), "rhs": (3, 4)},
     forward=lambda v: np.broadcast_to(v["lhs"], (3, 4)),
     backward=lambda v, h: {"lhs": h.sum(1, keepdims=True)}, no_grad=("rhs",))

case(id="where", op="where",
     build=lambda: S.where(S.Variable("condition"), S.Variable("x"), S.Variable("y")),
     shapes={"condition": (4, 5), "x": (4, 5), "y": (4, 5)}, values={"condition": classes(2)},
     forward=lambda v: np.where(v["condition"] != 0, v["x"], v["y"]),
     backward=lambda v, h: {"x": np.where(v["condition"] != 0, h, 0.0), "y": np.where(v["condition"] != 0, 0.0, h)},
     no_grad=("condition",))

case(id="where_rows", op="where",
     build=lambda: S.where(S.Variable("condition"), S.Variable("x"), S.Variable("y")),
     shapes={"condition": (4,), "x": (4, 5), "y": (4, 5)}, values={"condition": classes(2)},
     forward=lambda v: np.where(v["condition"][:, None] != 0, v["x"], v["y"]),
     backward=lambda v, h: {"x": np.where(v["condition"][:, None] != 0, h, 0.0),
                            "y": np.where(v["condition"][:, None] != 0, 0.0, h)},
     no_grad=("condition",))

case(id="clip", op="clip",
     build=lambda: S.clip(_data(), a_min=-0.5, a_max=0.7), shapes={"data": (5, 6)},
     forward=lambda v: np.clip(v["data"], -0.5, 0.7),
     backward=lambda v, h: {"data": np.where((v["data"] < -0.5) | (v["data"] > 0.7), 0.0, h)})

# -------------------------------------------------------- Concat, split, slice_axis

case(id="concat_dim1", op="Concat",
     build=lambda: S.Concat(S.Variable("a"), S.Variable("b"), S.Variable("c"), dim=1),
     shapes={"a": (3, 2, 4), "b": (3, 5, 4), "c": (3, 1, 4)},
     forward=lambda v: np.concatenate([v["a"], v["b"], v["c"]], 1),
     backward=lambda v, h: {"a": h[:, :2], "b": h[:, 2:7], "c": h[:, 7:]})

case(id="concat_last_axis", op="Concat",
     build=lambda: S.concat(S.Variable("a"), S.Variable("b"), dim=-1), shapes={"a": (4, 3), "b": (4, 6)},
     forward=lambda v: np.concatenate([v["a"], v["b"]], -1),
     backward=lambda v, h: {"a": h[:, :3], "b": h[:, 3:]})

# The middle part of three: the others' gradients are zero.
case(id="slice_channel", op="SliceChannel",
     build=lambda: S.SliceChannel(_data(), num_outputs=3, axis=1)[1], shapes={"data": (2, 9, 5)},
     forward=lambda v: v["data"][:, 3:6],
     backward=lambda v, h: {"data": np.concatenate([np.zeros_like(h), h, np.zeros_like(h)], 1)})

case(id="split_squeeze_axis", op="SliceChannel",
     build=lambda: S.split(_data(), num_outputs=4, axis=-1, squeeze_axis=True)[3], shapes={"data": (3, 5, 4)},
     forward=lambda v: v["data"][:, :, 3],
     backward=lambda v, h: {"data": np.stack([np.zeros_like(h)] * 3 + [h], -1)})

case(id="slice_axis", op="slice_axis",
     build=lambda: S.slice_axis(_data(), axis=1, begin=-5, end=-1), shapes={"data": (3, 7, 2)},
     forward=lambda v: v["data"][:, 2:6],
     backward=lambda v, h: {"data": np.concatenate([np.zeros((3, 2, 2)), h, np.zeros((3, 1, 2))], 1)})

# Slices along a leading axis are windows of the data's storage: views where they start on
# 16 bytes (float32/float64 here), copies where not (float16/bfloat16: 24 bytes in).
case(id="slice_axis_leading_window", op="slice_axis",
     build=lambda: S.slice_axis(_data(), axis=0, begin=1, end=3), shapes={"data": (5, 4, 3)},
     forward=lambda v: v["data"][1:3],
     backward=lambda v, h: {"data": np.concatenate([np.zeros((1, 4, 3)), h, np.zeros((2, 4, 3))], 0)})

case(id="slice_axis_after_unit_axes", op="slice_axis",
     build=lambda: S.slice_axis(_data(), axis=1, begin=2, end=-1), shapes={"data": (1, 7, 6)},
     forward=lambda v: v["data"][:, 2:6],
     backward=lambda v, h: {"data": np.concatenate([np.zeros((1, 2, 6)), h, np.zeros((1, 1, 6))], 1)})

case(id="split_leading_axis_squeezed", op="SliceChannel",
     build=lambda: S.split(_data(), num_outputs=3, axis=0, squeeze_axis=True)[2], shapes={"data": (3, 5, 4)},
     forward=lambda v: v["data"][2],
     backward=lambda v, h: {"data": np.stack([np.zeros_like(h)] * 2 + [h], 0)})

# split_v2 at indices: the middle part of three (the others' gradients zero), and sections
case(id="split_v2_indices", op="_split_v2",
     build=lambda: S.split_v2(_data(), (2, 3), axis=1)[1], shapes={"data": (3, 7, 2)},
     forward=lambda v: v["data"][:, 2:3],
     backward=lambda v, h: {"data": np.concatenate([np.zeros((3, 2, 2)), h, np.zeros((3, 4, 2))], 1)})
case(id="split_v2_sections_squeezed", op="_split_v2",
     build=lambda: S.split_v2(_data(), 3, axis=-1, squeeze_axis=True)[0], shapes={"data": (4, 5, 3)},
     forward=lambda v: v["data"][..., 0],
     backward=lambda v, h: {"data": np.stack([h, np.zeros_like(h), np.zeros_like(h)], -1)})

# ------------------------------------ slice, SwapAxis, tile, repeat, stack, add_n, fill_like


def _slices(begin, end, step):
    return tuple(slice(b, e, s) for b, e, s in zip(begin, end, step))


def _scattered(shape, index, h):
    """Zeros of ``shape`` with ``h`` written at ``index`` (numpy's slicing: the oracle of slice's gradient)."""
    g = np.zeros(shape)
    g[index] = h
    return g


def _slice_case(id, shape, begin, end, step, alias="slice"):
    index = _slices(begin, end, step or (None,) * len(begin))
    case(id=id, op=alias,
         build=lambda: getattr(S, alias)(_data(), begin=begin, end=end, step=step), shapes={"data": shape},
         forward=lambda v: v["data"][index],
         backward=lambda v, h: {"data": _scattered(shape, index, h)})


_slice_case("slice_steps", (5, 7, 4), (1, None), (None, -1), (2, 3))
_slice_case("slice_negative_steps", (4, 6, 3), (None, 4), (None, 0), (-1, -2))
# five axes reversed or strided: more unmergeable dimensions than one launch indexes
_slice_case("slice_5d_reversed", (2, 3, 2, 3, 2), (None,) * 5, (None,) * 5, (-1, 2, -1, -2, -1))
# along a leading axis: a window of the data's storage (a view, no launch, where it keeps alignment)
_slice_case("crop_leading_window", (5, 4, 3), (1,), (3,), (), alias="crop")

case(id="swap_axis", op="SwapAxis",
     build=lambda: S.SwapAxis(_data(), dim1=0, dim2=-1), shapes={"data": (3, 4, 5)},
     forward=lambda v: np.swapaxes(v["data"], 0, -1),
     backward=lambda v, h: {"data": np.swapaxes(h, 0, -1)})


def _tile_grad(shape, reps, h):
    rank = max(len(shape), len(reps))
    shape, reps = (1,) * (rank - len(shape)) + shape, (1,) * (rank - len(reps)) + reps
    split = h.reshape([n for pair in zip(reps, shape) for n in pair])
    return split.sum(axis=tuple(range(0, 2 * rank, 2)))


for _id, _shape, _reps in (("tile", (2, 3), (2, 1, 3)), ("tile_fewer_reps", (2, 3, 4), (2,))):
    case(id=_id, op="tile",
         build=lambda reps=_reps: S.tile(_data(), reps=reps), shapes={"data": _shape},
         forward=lambda v, reps=_reps: np.tile(v["data"], reps),
         backward=lambda v, h, shape=_shape, reps=_reps: {"data": _tile_grad(shape, reps, h).reshape(shape)})

case(id="repeat_last_axis", op="repeat",
     build=lambda: S.repeat(_data(), repeats=3, axis=-1), shapes={"data": (3, 4)},
     forward=lambda v: np.repeat(v["data"], 3, axis=-1),
     backward=lambda v, h: {"data": h.reshape(3, 4, 3).sum(-1)})

case(id="repeat_flattened", op="repeat",
     build=lambda: S.repeat(_data(), repeats=2), shapes={"data": (2, 3)},
     forward=lambda v: np.repeat(v["data"], 2),
     backward=lambda v, h: {"data": h.reshape(6, 2).sum(-1).reshape(2, 3)})

case(id="stack_middle_axis", op="stack",
     build=lambda: S.stack(S.Variable("a"), S.Variable("b"), S.Variable("c"), axis=1),
     shapes={"a": (3, 4), "b": (3, 4), "c": (3, 4)},
     forward=lambda v: np.stack([v["a"], v["b"], v["c"]], 1),
     backward=lambda v, h: {"a": h[:, 0], "b": h[:, 1], "c": h[:, 2]})

case(id="add_n", op="add_n",
     build=lambda: S.add_n(S.Variable("a"), S.Variable("b"), S.Variable("c")),
     shapes={"a": (4, 5), "b": (4, 5), "c": (4, 5)},
     forward=lambda v: v["a"] + v["b"] + v["c"],
     backward=lambda v, h: {"a": h, "b": h, "c": h})

for _name, _value in (("zeros_like", 0.0), ("ones_like", 1.0)):
    case(id=_name, op=_name,
         build=lambda name=_name: getattr(S, name)(_data()), shapes={"data": (3, 5)},
         forward=lambda v, value=_value: np.full(v["data"].shape, value),
         backward=lambda v, h: {"data": np.zeros_like(v["data"])})

# 1 where every element is finite (test_all_finite.py plants inf and NaN); no gradient
case(id="all_finite", op="all_finite", build=lambda: S.all_finite(_data()), shapes={"data": (3, 4)},
     forward=lambda v: np.array([float(np.isfinite(v["data"]).all())]),
     backward=lambda v, h: {"data": np.zeros_like(v["data"])})
case(id="multi_all_finite", op="multi_all_finite",
     build=lambda: S.multi_all_finite(S.Variable("a"), S.Variable("b"), S.Variable("c")),
     shapes={"a": (2, 3), "b": (5,), "c": (1, 2, 2)},
     forward=lambda v: np.array([float(all(np.isfinite(v[n]).all() for n in "abc"))]),
     backward=lambda v, h: {n: np.zeros_like(v[n]) for n in "abc"})

# each position's coordinates along some axes (negative and repeated), as int64
case(id="index_array_axes", op="_contrib_index_array",
     build=lambda: S.contrib.index_array(_data(), axes=(-1, 0, 0)), shapes={"data": (3, 2, 4)},
     forward=lambda v: np.stack(np.indices(v["data"].shape), -1)[..., [2, 0, 0]].astype(np.float64),
     backward=lambda v, h: {"data": np.zeros_like(v["data"])})

# coordinates to flat indices and back, a few outside the shape or not whole (NaN there)
def _coordinates(rng, shape):
    c = np.stack([rng.integers(0, n, shape[1:]) for n in (4, 3, 5)]).astype(np.float64)
    c[0, 0, 0], c[1, 1, 1], c[2, 0, 2] = 4.0, -1.0, 2.5  # past the end, before the start, not whole
    return c


def _flat_indices(rng, shape):
    flat = rng.integers(0, 60, shape).astype(np.float64)
    flat[0, 0], flat[1, 2] = 60.0, 7.5
    return flat


case(id="ravel_multi_index", op="ravel_multi_index", build=lambda: S.ravel_multi_index(_data(), shape=(4, 3, 5)),
     shapes={"data": (3, 2, 4)}, values={"data": _coordinates},
     forward=lambda v: o.ravel_multi_index(v["data"], (4, 3, 5)),
     backward=lambda v, h: {"data": np.zeros_like(v["data"])})
case(id="unravel_index", op="unravel_index", build=lambda: S.unravel_index(_data(), shape=(4, 3, 5)),
     shapes={"data": (2, 3)}, values={"data": _flat_indices},
     forward=lambda v: o.unravel_index(v["data"], (4, 3, 5)),
     backward=lambda v, h: {"data": np.zeros_like(v["data"])})

# the shape and the size as int64 arrays (the data's values are never read)
case(id="shape_array", op="shape_array", build=lambda: S.shape_array(_data()), shapes={"data": (3, 1, 5)},
     forward=lambda v: np.array(v["data"].shape, dtype=np.float64),
     backward=lambda v, h: {"data": np.zeros_like(v["data"])})
case(id="size_array", op="size_array", build=lambda: S.size_array(_data()), shapes={"data": (4, 7)},
     forward=lambda v: np.array([v["data"].size], dtype=np.float64),
     backward=lambda v, h: {"data": np.zeros_like(v["data"])})

# ---------------------------------------------------------- pick, one_hot, argmax, argmin


def _picked(data, index, axis, mode):
    length = data.shape[axis]
    k = np.clip(index, 0, length - 1) if mode == "clip" else np.mod(index, length)
    return np.expand_dims(k.astype(np.int64), axis)


def _pick_case(id, shape, index_shape, axis, keepdims=False, mode="clip", low=0):
    def kept(index):  # the index with the axis as 1
        return index.reshape(index_shape if len(index_shape) == len(shape) else
                             tuple(1 if k == axis % len(shape) else n for k, n in enumerate(shape)))

    def grad(v, h):
        g = np.zeros(shape)
        np.put_along_axis(g, _picked(v["data"], kept(v["index"]).squeeze(axis), axis, mode),
                          h.reshape(kept(v["index"]).shape), axis)
        return {"data": g}

    def forward(v):
        out = np.take_along_axis(v["data"], _picked(v["data"], kept(v["index"]).squeeze(axis), axis, mode), axis)
        return out if keepdims else out.squeeze(axis)

    length = shape[axis]
    case(id=id, op="pick",
         build=lambda: S.pick(_data(), S.Variable("index"), axis=axis, keepdims=keepdims, mode=mode),
         shapes={"data": shape, "index": index_shape},
         values={"index": lambda rng, s: rng.integers(low, length + (length if low else 0), s).astype(np.float64)},
         forward=forward, backward=grad, no_grad=("index",))


_pick_case("pick_last_axis", (4, 6), (4,), -1)
_pick_case("pick_middle_axis_keepdims", (3, 5, 2), (3, 1, 2), 1, keepdims=True)
# indices outside the axis, clipped to its ends or wrapped around
_pick_case("pick_clip_outside", (5, 3), (5,), 1, low=-4)
_pick_case("pick_wrap_outside", (2, 4, 3), (4, 3), 0, mode="wrap", low=-5)



def _batch_taken(a, indices):
    """Each row's element at its index, clipped to the row (batch_take's)."""
    k = np.clip(indices.reshape(-1), 0, a.shape[1] - 1).astype(np.int64)
    return a[np.arange(a.shape[0]), k].reshape(indices.shape), k


def _batch_take_grad(v, h):
    g = np.zeros(v["a"].shape)
    g[np.arange(v["a"].shape[0]), _batch_taken(v["a"], v["indices"])[1]] = h.reshape(-1)
    return {"a": g}


# indices of two axes, some outside the rows (clipped)
case(id="batch_take", op="batch_take", build=lambda: S.batch_take(S.Variable("a"), S.Variable("indices")),
     shapes={"a": (6, 4), "indices": (2, 3)},
     values={"indices": lambda rng, s: rng.integers(-2, 6, s).astype(np.float64)},
     forward=lambda v: _batch_taken(v["a"], v["indices"])[0], backward=_batch_take_grad, no_grad=("indices",))

# one_hot of each row's argmax (its dtype float32 whatever the data's): data takes no gradient
case(id="one_hot_of_argmax", op="one_hot",
     build=lambda: S.one_hot(S.argmax(_data(), axis=-1), depth=6, on_value=2.0, off_value=-0.5),
     shapes={"data": (3, 4, 5)},
     forward=lambda v: np.where(np.argmax(v["data"], -1)[..., None] == np.arange(6), 2.0, -0.5),
     backward=lambda v, h: {"data": np.zeros_like(v["data"])})

case(id="argmax_axis", op="argmax",
     build=lambda: S.argmax(_data(), axis=1), shapes={"data": (4, 7, 3)},
     forward=lambda v: np.argmax(v["data"], axis=1).astype(np.float64),
     backward=lambda v, h: {"data": np.zeros_like(v["data"])})

for _axis, _mode, _a, _i, _values in ((0, "clip", (5, 3), (2, 4), lambda rng, s: rng.integers(-2, 8, s)),
                                      (1, "wrap", (2, 4, 3), (5,), lambda rng, s: rng.integers(-9, 9, s).astype(float)),
                                      (-1, "raise", (3, 2, 4), (2, 2), classes(4))):
    case(id=f"take_axis{_axis}_{_mode}", op="take",
         build=lambda a=_axis, m=_mode: S.take(S.Variable("a"), S.Variable("i"), axis=a, mode=m),
         shapes={"a": _a, "i": _i}, values={"i": _values},
         forward=lambda v, a=_axis, m=_mode: o.take(v["a"], v["i"], a, m),
         backward=lambda v, h, a=_axis, m=_mode, s=_a: {"a": o.take_grad(h, s, v["i"], a % len(s), m)},
         no_grad=("i",))

# gather_nd and scatter_nd: coordinates with repeats (gradients and scatters that add up) and
# negative ones (from the end), as floats and as integers; M below and equal to the rank.
for _id, _data_shape, _coords, _draw in (
        ("gather_nd_rows", (4, 3, 5), (2, 7), lambda rng, s: np.stack([rng.integers(-4, 4, s[1:]),
                                                                      rng.integers(-3, 3, s[1:])]).astype(float)),
        ("gather_nd_elements", (3, 4), (2, 2, 3), lambda rng, s: np.stack([rng.integers(0, 3, s[1:]),
                                                                          rng.integers(0, 4, s[1:])])),
        ("gather_nd_one_axis", (5, 2, 3), (1, 6), lambda rng, s: rng.integers(-5, 5, s).astype(float))):
    case(id=_id, op="gather_nd", build=lambda: S.gather_nd(_data(), S.Variable("i")),
         shapes={"data": _data_shape, "i": _coords}, values={"i": _draw},
         forward=lambda v: o.gather_nd(v["data"], v["i"]),
         backward=lambda v, h, s=_data_shape: {"data": o.gather_nd_grad(h, s, v["i"])}, no_grad=("i",))
for _id, _out_shape, _coords, _draw in (
        ("scatter_nd_rows_repeated", (4, 3, 2), (2, 6), lambda rng, s: np.stack([rng.integers(0, 4, s[1:]),
                                                                                rng.integers(0, 3, s[1:])])),
        ("scatter_nd_elements", (3, 4), (2, 5),  # five different elements: each written once
         lambda rng, s: np.stack(np.unravel_index(rng.permutation(12)[:5], (3, 4))).astype(float))):
    case(id=_id, op="scatter_nd", build=lambda s=_out_shape: S.scatter_nd(_data(), S.Variable("i"), shape=s),
         shapes={"data": (*_coords[1:], *_out_shape[_coords[0]:]), "i": _coords}, values={"i": _draw},
         forward=lambda v, s=_out_shape: o.scatter_nd(v["data"], v["i"], s),
         backward=lambda v, h: {"data": o.gather_nd(h, v["i"])}, no_grad=("i",))

case(id="argmax_channel", op="argmax_channel",
     build=lambda: S.argmax_channel(_data()), shapes={"data": (3, 5, 2)},
     forward=lambda v: np.argmax(v["data"], 1).astype(np.float64),
     backward=lambda v, h: {"data": np.zeros_like(v["data"])})

case(id="identity", op="_copy", build=lambda: S.identity(_data()), shapes={"data": (3, 5)},
     forward=lambda v: v["data"], backward=lambda v, h: {"data": h})

case(id="argmin_flattened_keepdims", op="argmin",
     build=lambda: S.argmin(_data(), keepdims=True), shapes={"data": (3, 5)},
     forward=lambda v: np.argmin(v["data"]).reshape(1, 1).astype(np.float64),
     backward=lambda v, h: {"data": np.zeros_like(v["data"])})

# ---------------------------------------------------------- LRN

for _id, _shape, _params in (("lrn_alexnet_window", (2, 7, 3, 4), dict(nsize=5, alpha=2.0)),
                             ("lrn_wide_window", (3, 4, 5), dict(nsize=7, alpha=0.5, beta=0.6, knorm=1.5))):
    def _lrn_case(id=_id, shape=_shape, params=_params):
        full = {"alpha": 1e-4, "beta": 0.75, "knorm": 2.0, **params}
        case(id=id, op="LRN", build=lambda: S.LRN(_data(), **params), shapes={"data": shape},
             values={"data": normal(3.0)},  # large enough that the window sum matters beside knorm
             forward=lambda v: o.lrn(v["data"], **full),
             backward=lambda v, h: {"data": o.lrn_grad(h, v["data"], **full)})
    _lrn_case()


# ---------------------------------------------------------- topk, sort, argsort

for _id, _op, _shape, _params in (("topk_values_middle_axis", "topk", (3, 9, 2), dict(axis=1, k=4, ret_typ="value")),
                                  ("topk_both_smallest", "topk", (4, 7), dict(k=3, ret_typ="both", is_ascend=True)),
                                  ("topk_indices_flattened", "topk", (3, 5), dict(axis=None, k=6)),
                                  ("topk_mask_first_axis", "topk", (6, 4), dict(axis=0, k=2, ret_typ="mask")),
                                  ("sort_descending", "sort", (5, 6), dict(is_ascend=False)),
                                  ("sort_flattened", "sort", (2, 3, 4), dict(axis=None)),
                                  ("argsort_middle_axis", "argsort", (2, 11, 3), dict(axis=1))):
    def _sort_case(id=_id, op=_op, shape=_shape, params=_params):
        full = {"axis": -1, "k": 0 if op != "topk" else 1, "is_ascend": op != "topk",
                "ret_typ": {"sort": "value", "argsort": "indices"}.get(op, "indices"), **params}
        axis, k, ascending, ret = full["axis"], full["k"], full["is_ascend"], full["ret_typ"]

        def forward(v):
            if ret == "mask":
                return o.topk_mask(v["data"], axis, k, ascending)
            return o.topk(v["data"], axis, k, ascending)[0 if ret in ("value", "both") else 1]

        def backward(v, h):
            if ret in ("value", "both"):
                return {"data": o.topk_grad(h, v["data"], axis, k, ascending)}
            return {"data": np.zeros_like(v["data"])}

        def build():  # of "both", the values (the indices, unused, take no gradient)
            out = getattr(S, op)(_data(), **params)
            return out[0] if ret == "both" else out

        case(id=id, op=op, build=build, shapes={"data": shape}, forward=forward, backward=backward)
    _sort_case()


# softmax_cross_entropy: the rows' cross entropies summed; wide rows loop over column blocks
def _cross_entropy(x, label):
    z = x - x.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    return np.array([-log_p[np.arange(len(x)), label.astype(int)].sum()])


def _cross_entropy_grad(x, label, h):
    p = o.softmax(x)
    p[np.arange(len(x)), label.astype(int)] -= 1.0
    return p * h[0]


for _id, _shape in (("softmax_cross_entropy", (5, 7)), ("softmax_cross_entropy_wide_rows", (3, 300))):
    case(id=_id, op="softmax_cross_entropy",
         build=lambda: S.softmax_cross_entropy(_data(), S.Variable("label")),
         shapes={"data": _shape, "label": (_shape[0],)}, values={"label": classes(_shape[1])},
         forward=lambda v: _cross_entropy(v["data"], v["label"]),
         backward=lambda v, h: {"data": _cross_entropy_grad(v["data"], v["label"], h)}, no_grad=("label",))

# -------------------------------------------------- masks: softmax(use_length), SequenceMask


def _masked_softmax(x, lengths, log, dy=None):
    """softmax over the last axis of the positions before each row's length (0 after; log: -inf),
    or, given ``dy``, its gradient (0 at masked positions)."""
    keep = np.arange(x.shape[-1]) < lengths[..., None]
    p = np.exp(np.where(keep, x, -np.inf) - np.where(keep, x, -np.inf).max(-1, keepdims=True))
    p = np.where(keep, p, 0.0) / np.where(keep, p, 0.0).sum(-1, keepdims=True)
    if dy is None:
        return np.log(p) if log else p
    dy = np.where(keep, dy, 0.0)
    grad = dy - p * dy.sum(-1, keepdims=True) if log else p * (dy - (dy * p).sum(-1, keepdims=True))
    return np.where(keep, grad, 0.0)


case(id="softmax_use_length", op="softmax",
     build=lambda: S.softmax(_data(), S.Variable("length"), use_length=True),
     shapes={"data": (3, 4, 6), "length": (3, 4)}, values={"length": lambda rng, s: rng.integers(1, 7, s)},
     forward=lambda v: _masked_softmax(v["data"], v["length"], False),
     backward=lambda v, h: {"data": _masked_softmax(v["data"], v["length"], False, h)}, no_grad=("length",))


def _sequence_mask(x, lengths, axis, value):
    steps = np.arange(x.shape[axis])
    keep = steps[:, None] < lengths[None, :] if axis == 0 else steps[None, :] < lengths[:, None]
    return np.where(keep.reshape(keep.shape + (1,) * (x.ndim - 2)), x, value)


for _axis in (0, 1):
    case(id=f"sequence_mask_axis{_axis}", op="SequenceMask",
         build=lambda a=_axis: S.SequenceMask(_data(), S.Variable("lengths"), use_sequence_length=True, value=-2.5,
                                              axis=a),
         shapes={"data": (5, 3, 2), "lengths": (3 if _axis == 0 else 5,)},
         values={"lengths": lambda rng, s, a=_axis: rng.integers(0, 6 if a == 0 else 4, s).astype(np.float64)},
         forward=lambda v, a=_axis: _sequence_mask(v["data"], v["lengths"], a, -2.5),
         backward=lambda v, h, a=_axis: {"data": _sequence_mask(h, v["lengths"], a, 0.0)}, no_grad=("lengths",))


def _sequence_reverse(x, lengths, axis):
    """Each sequence's first ``length`` steps along ``axis`` reversed (its own inverse)."""
    out = x.copy()
    for b, n in enumerate(lengths.astype(int)):
        index = (slice(None), b) if axis == 0 else (b,)
        rows = x[index]
        out[index][:n] = rows[:n][::-1]
    return out


def _sequence_last(x, lengths, axis):
    steps = lengths.astype(int) - 1
    return np.stack([x[t, b] if axis == 0 else x[b, t] for b, t in enumerate(steps)])


def _sequence_last_grad(shape, lengths, axis, h):
    dx = np.zeros(shape)
    for b, t in enumerate(lengths.astype(int) - 1):
        dx[(t, b) if axis == 0 else (b, t)] = h[b]
    return dx


for _axis in (0, 1):
    _steps, _batch = (5, 3) if _axis == 0 else (4, 3)
    _shape = (_steps, _batch, 2) if _axis == 0 else (_batch, _steps, 2, 2)
    case(id=f"sequence_reverse_axis{_axis}", op="SequenceReverse",
         build=lambda a=_axis: S.SequenceReverse(_data(), S.Variable("lengths"), use_sequence_length=True, axis=a),
         shapes={"data": _shape, "lengths": (_batch,)},
         values={"lengths": lambda rng, s, n=_steps: rng.integers(0, n + 1, s).astype(np.float64)},
         forward=lambda v, a=_axis: _sequence_reverse(v["data"], v["lengths"], a),
         backward=lambda v, h, a=_axis: {"data": _sequence_reverse(h, v["lengths"], a)}, no_grad=("lengths",))
    case(id=f"sequence_last_axis{_axis}", op="SequenceLast",
         build=lambda a=_axis: S.SequenceLast(_data(), S.Variable("lengths"), use_sequence_length=True, axis=a),
         shapes={"data": _shape, "lengths": (_batch,)},
         values={"lengths": lambda rng, s, n=_steps: rng.integers(1, n + 1, s).astype(np.float64)},
         forward=lambda v, a=_axis: _sequence_last(v["data"], v["lengths"], a),
         backward=lambda v, h, a=_axis, shape=_shape: {"data": _sequence_last_grad(shape, v["lengths"], a, h)},
         no_grad=("lengths",))

case(id="sequence_reverse_whole", op="SequenceReverse", build=lambda: S.SequenceReverse(_data()),
     shapes={"data": (6, 2, 3)}, forward=lambda v: v["data"][::-1], backward=lambda v, h: {"data": h[::-1]})
case(id="sequence_last_whole", op="SequenceLast", build=lambda: S.SequenceLast(_data(), axis=1),
     shapes={"data": (2, 5, 3)}, forward=lambda v: v["data"][:, -1],
     backward=lambda v, h: {"data": np.concatenate([np.zeros((2, 4, 3)), h[:, None]], 1)})

# -------------------------------------------------------------------- PReLU


def _prelu_case(id, shape, gamma_shape):
    def slopes(v):
        return v["p_gamma"].reshape((1, -1) + (1,) * (len(shape) - 2)) if gamma_shape != (1,) else v["p_gamma"]

    def grads(v, h):
        x, g = v["data"], slopes(v)
        parts = np.where(x > 0, 0.0, h * x)
        axes = tuple(range(len(shape))) if gamma_shape == (1,) else (0, *range(2, len(shape)))
        return {"data": np.where(x > 0, h, h * g), "p_gamma": parts.sum(axes).reshape(gamma_shape)}

    case(id=id, op="LeakyReLU", build=lambda: S.LeakyReLU(_data(), act_type="prelu", name="p"),
         shapes={"data": shape, "p_gamma": gamma_shape}, values={"p_gamma": positive},
         forward=lambda v: np.where(v["data"] > 0, v["data"], slopes(v) * v["data"]), backward=grads)


_prelu_case("prelu_per_channel", (4, 3, 5), (3,))
_prelu_case("prelu_one_slope", (6, 7), (1,))

case(id="slice_like_axes", op="slice_like",
     build=lambda: S.slice_like(_data(), S.Variable("like"), axes=(0, -1)),
     shapes={"data": (4, 3, 5), "like": (2, 7, 3)},
     forward=lambda v: v["data"][:2, :, :3], backward=lambda v, h: {"data": np.pad(h, ((0, 2), (0, 0), (0, 2)))},
     no_grad=("like",))

case(id="crop_like_offset", op="Crop",
     build=lambda: S.Crop(_data(), S.Variable("like"), offset=(1, 2)),
     shapes={"data": (2, 3, 6, 7), "like": (1, 1, 4, 3)}, forward=lambda v: v["data"][:, :, 1:5, 2:5],
     backward=lambda v, h: {"data": np.pad(h, ((0, 0), (0, 0), (1, 1), (2, 2)))},
     no_grad=("like",))

case(id="crop_h_w_centre", op="Crop",
     build=lambda: S.Crop(_data(), h_w=(2, 3), center_crop=True), shapes={"data": (2, 3, 5, 6)},
     forward=lambda v: v["data"][:, :, 1:3, 1:4],
     backward=lambda v, h: {"data": np.pad(h, ((0, 0), (0, 0), (1, 2), (1, 2)))})

case(id="reshape_like_bounds", op="reshape_like",
     build=lambda: S.reshape_like(_data(), S.Variable("like"), lhs_begin=1, rhs_begin=-2),
     shapes={"data": (2, 3, 4), "like": (5, 6, 2)},
     forward=lambda v: v["data"].reshape(2, 6, 2), backward=lambda v, h: {"data": h.reshape(2, 3, 4)},
     no_grad=("like",))

case(id="flip_one_axis", op="flip", build=lambda: S.flip(_data(), axis=1), shapes={"data": (3, 5, 4)},
     forward=lambda v: v["data"][:, ::-1], backward=lambda v, h: {"data": h[:, ::-1]})

case(id="flip_two_axes", op="flip", build=lambda: S.reverse(_data(), axis=(0, -1)), shapes={"data": (3, 5, 4)},
     forward=lambda v: v["data"][::-1, :, ::-1], backward=lambda v, h: {"data": h[::-1, :, ::-1]})



def _depth_to_space(x, b):
    n, c, h, w = x.shape
    return x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2).reshape(n, c // (b * b), h * b, w * b)


def _space_to_depth(x, b):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4).reshape(n, c * b * b, h // b, w // b)


case(id="depth_to_space_block2", op="depth_to_space", build=lambda: S.depth_to_space(_data(), block_size=2),
     shapes={"data": (2, 12, 3, 5)}, forward=lambda v: _depth_to_space(v["data"], 2),
     backward=lambda v, h: {"data": _space_to_depth(h, 2)})
case(id="space_to_depth_block3", op="space_to_depth", build=lambda: S.space_to_depth(_data(), block_size=3),
     shapes={"data": (2, 2, 6, 9)}, forward=lambda v: _space_to_depth(v["data"], 3),
     backward=lambda v, h: {"data": _depth_to_space(h, 3)})


def _diag_grad(shape, k, axis1, axis2, h):
    """h (numpy's diagonal layout: the diagonal's axis last) written on diagonal k, 0 elsewhere."""
    dx = np.zeros(shape)
    matrices = np.moveaxis(dx, (axis1, axis2), (-2, -1))  # a view: writes reach dx
    for i in range(h.shape[-1]):
        matrices[..., i + max(-k, 0), i + max(k, 0)] = h[..., i]
    return dx


case(id="diag_vector_below", op="diag", build=lambda: S.diag(_data(), k=-2), shapes={"data": (4,)},
     forward=lambda v: np.diag(v["data"], -2), backward=lambda v, h: {"data": np.diag(h, -2)})
case(id="diag_matrix_above", op="diag", build=lambda: S.diag(_data(), k=2), shapes={"data": (4, 6)},
     forward=lambda v: np.diagonal(v["data"], 2).copy(),
     backward=lambda v, h: {"data": _diag_grad((4, 6), 2, 0, 1, h)})
case(id="diag_axes_of_3d", op="diag", build=lambda: S.diag(_data(), k=-1, axis1=-1, axis2=0),
     shapes={"data": (5, 3, 4)}, forward=lambda v: np.diagonal(v["data"], -1, 2, 0).copy(),
     backward=lambda v, h: {"data": _diag_grad((5, 3, 4), -1, 2, 0, h)})

case(id="broadcast_axis_two", op="broadcast_axis",
     build=lambda: S.broadcast_axes(_data(), axis=(0, 2), size=(3, 4)), shapes={"data": (1, 5, 1)},
     forward=lambda v: np.broadcast_to(v["data"], (3, 5, 4)).copy(),
     backward=lambda v, h: {"data": h.sum((0, 2), keepdims=True)})

# Arrays made from parameters, added to the data so that the bind's dtype reaches them (they
# follow the graph's) and the data's gradient passes through.
for _id, _op, _make, _value in (
        ("zeros_added", "_zeros", lambda: S.zeros((3, 4)), lambda: np.zeros((3, 4))),
        ("ones_added", "_ones", lambda: S.ones((3, 4)), lambda: np.ones((3, 4))),
        ("full_added", "_full", lambda: S.full((3, 4), -2.5), lambda: np.full((3, 4), -2.5)),
        ("arange_repeat_added", "_arange", lambda: S.arange(-3, 3, 1, repeat=2).reshape((3, 4)),
         lambda: np.repeat(np.arange(-3.0, 3.0), 2).reshape(3, 4)),
        ("arange_fractional_step_added", "_arange", lambda: S.arange(0.5, 3.4, 0.25).reshape((3, 4)),
         lambda: np.arange(0.5, 3.5, 0.25).reshape(3, 4)),
        ("linspace_added", "_linspace", lambda: S.linspace(-1, 2, 12).reshape((3, 4)),
         lambda: np.linspace(-1, 2, 12).reshape(3, 4)),
        ("eye_above_added", "_eye", lambda: S.eye(3, 4, k=1), lambda: np.eye(3, 4, 1))):
    case(id=_id, op=_op, build=lambda m=_make: _data() + m(), shapes={"data": (3, 4)},
         forward=lambda v, f=_value: v["data"] + f(), backward=lambda v, h: {"data": h})

case(id="arange_like_axis_times_data", op="_contrib_arange_like",
     build=lambda: (lambda d: S.broadcast_mul(d, S.contrib.arange_like(d, start=1, step=0.5, axis=-1)))(_data()),
     shapes={"data": (3, 4)},
     forward=lambda v: v["data"] * (1 + 0.5 * np.arange(4)),
     backward=lambda v, h: {"data": h * (1 + 0.5 * np.arange(4))})
case(id="arange_like_repeat", op="_contrib_arange_like",
     build=lambda: S.contrib.arange_like(_data(), start=-2, step=3, repeat=2), shapes={"data": (3, 4)},
     forward=lambda v: (-2 + 3 * (np.arange(12) // 2)).reshape(3, 4).astype(np.float64),
     backward=lambda v, h: {"data": np.zeros((3, 4))})
# shuffle summed along the axis it reorders: the sum is the same in every order, and each
# slice's gradient is the head, through the gather's gradient whatever the order drawn.
# (That the order is a permutation, new every call and seeded: tests/test_shuffle.py.)
case(id="shuffle_summed", op="_shuffle", build=lambda: S.sum(S.random.shuffle(_data()), axis=0),
     shapes={"data": (6, 3, 2)}, forward=lambda v: v["data"].sum(0),
     backward=lambda v, h: {"data": np.broadcast_to(h, v["data"].shape).copy()})
# Random samplers, where their draws are known: uniform on [c, c] is c, a standard deviation
# of 0 gives the mean, low=k and high=k+1 draw k; the others enter times 0, which checks that
# every element was written with a finite draw (the workspace starts as NaN). Their
# statistics, seeds and errors: tests/test_sampling.py.
for _id, _op, _make, _value, _params in (
        ("random_uniform_point_added", "_random_uniform", lambda d: S.random.uniform(1.5, 1.5, shape=(3, 4)),
         lambda v: 1.5, {}),
        ("random_normal_times_0_added", "_random_normal", lambda d: 0 * S.random.normal(2, 3, shape=(3, 4)),
         lambda v: 0.0, {}),
        ("random_exponential_times_0_added", "_random_exponential",
         lambda d: 0 * S.random.exponential(2, shape=(0, 4)), lambda v: 0.0, {}),
        ("uniform_like_point_added", "_random_uniform_like", lambda d: S.random.uniform_like(d, -2, -2),
         lambda v: -2.0, {}),
        ("normal_like_times_0_added", "_random_normal_like", lambda d: 0 * S.random.normal_like(d),
         lambda v: 0.0, {}),
        ("exponential_like_times_0_added", "_random_exponential_like",
         lambda d: 0 * S.random.exponential_like(d, 3), lambda v: 0.0, {}),
        ("sample_uniform_point_added", "_sample_uniform",
         lambda d: (lambda low: S.random.uniform(low, low))(_data("low")),
         lambda v: v["low"], {"low": (3, 4)}),
        ("sample_normal_scale_0_added", "_sample_normal",
         lambda d: S.random.normal(_data("mu"), _data("sigma"), shape=(4,)), lambda v: v["mu"][:, None],
         {"mu": (3,), "sigma": (3,)}),
        ("sample_exponential_times_0_added", "_sample_exponential",
         lambda d: 0 * S.random.exponential(_data("scale"), shape=(4,)), lambda v: 0.0, {"scale": (3,)}),
        ("random_gamma_times_0_added", "_random_gamma", lambda d: 0 * S.random.gamma(0.5, 2, shape=(3, 4)),
         lambda v: 0.0, {}),
        ("random_poisson_mean_0_added", "_random_poisson", lambda d: S.random.poisson(0.0, shape=(3, 4)),
         lambda v: 0.0, {}),
        ("random_negative_binomial_certain_added", "_random_negative_binomial",
         lambda d: S.random.negative_binomial(3, 1.0, shape=(3, 4)), lambda v: 0.0, {}),
        ("random_generalized_negative_binomial_mean_0_added", "_random_generalized_negative_binomial",
         lambda d: S.random.generalized_negative_binomial(0.0, 2.0, shape=(3, 4)), lambda v: 0.0, {}),
        ("gamma_like_times_0_added", "_random_gamma_like", lambda d: 0 * S.random.gamma_like(d, alpha=3.0),
         lambda v: 0.0, {}),
        ("poisson_like_mean_0_added", "_random_poisson_like", lambda d: S.random.poisson_like(d, lam=0.0),
         lambda v: 0.0, {}),
        ("negative_binomial_like_times_0_added", "_random_negative_binomial_like",
         lambda d: 0 * S.random.negative_binomial_like(d, k=2, p=0.5), lambda v: 0.0, {}),
        ("generalized_negative_binomial_like_times_0_added", "_random_generalized_negative_binomial_like",
         lambda d: 0 * S.random.generalized_negative_binomial_like(d, mu=3.0), lambda v: 0.0, {}),
        ("sample_gamma_times_0_added", "_sample_gamma",
         lambda d: 0 * S.random.gamma(_data("alpha"), _data("beta"), shape=(4,)), lambda v: 0.0,
         {"alpha": (3,), "beta": (3,)}),
        ("sample_poisson_mean_0_added", "_sample_poisson", lambda d: S.random.poisson(_data("lam"), shape=(4,)),
         lambda v: 0.0, {"lam": (3,)}),
        ("sample_negative_binomial_times_0_added", "_sample_negative_binomial",
         lambda d: 0 * S.random.negative_binomial(_data("k"), _data("p"), shape=(4,)), lambda v: 0.0,
         {"k": (3,), "p": (3,)}),
        ("sample_generalized_negative_binomial_mean_0_added", "_sample_generalized_negative_binomial",
         lambda d: S.random.generalized_negative_binomial(_data("mu"), _data("alpha"), shape=(4,)), lambda v: 0.0,
         {"mu": (3,), "alpha": (3,)})):
    case(id=_id, op=_op, build=lambda m=_make: (lambda d: d + m(d))(_data()), shapes={"data": (3, 4), **_params},
         values={"sigma": lambda rng, shape: np.zeros(shape), "scale": positive, "alpha": positive,
                 "beta": positive, "lam": lambda rng, shape: np.zeros(shape), "k": positive,
                 "p": lambda rng, shape: rng.uniform(0.2, 0.8, shape), "mu": lambda rng, shape: np.zeros(shape)},
         forward=lambda v, f=_value: v["data"] + f(v), backward=lambda v, h: {"data": h}, no_grad=tuple(_params))
case(id="random_randint_taken", op="_random_randint",
     build=lambda: S.take(_data(), S.random.randint(2, 3, shape=(5,))), shapes={"data": (4, 3)},
     forward=lambda v: v["data"][[2] * 5],
     backward=lambda v, h: {"data": o.take_grad(h, (4, 3), np.full(5, 2), 0, "clip")})
# multinomial where its draws are known: rows with one positive weight always draw it (-1
# for a row with a NaN, as the kernel says); one category, whose log-probability's gradient
# a finite difference can check (more categories would move the draws).
def _one_hot_rows(rng, shape):
    return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])] * rng.uniform(0.5, 2.0, shape[:-1] + (1,))


def _only_category(p):
    return np.where(np.isnan(p).any(-1) | (p < 0).any(-1), -1, p.argmax(-1))


case(id="multinomial_one_positive_weight_per_row", op="_sample_multinomial",
     build=lambda: S.random.multinomial(_data(), shape=(2, 3), get_prob=False), shapes={"data": (3, 2, 5)},
     values={"data": _one_hot_rows},
     forward=lambda v: np.repeat(_only_category(v["data"])[..., None], 6, -1).reshape(3, 2, 2, 3).astype(float),
     backward=lambda v, h: {"data": np.zeros((3, 2, 5))})
case(id="multinomial_log_prob_of_one_category", op="_sample_multinomial",
     build=lambda: S.random.multinomial(_data(), shape=(4,), get_prob=True)[1], shapes={"data": (3, 1)},
     values={"data": positive}, forward=lambda v: np.log(v["data"]) + np.zeros((3, 4)),
     backward=lambda v, h: {"data": h.sum(1, keepdims=True) / v["data"]})
case(id="div_sqrt_dim", op="_contrib_div_sqrt_dim", build=lambda: S.contrib.div_sqrt_dim(_data()),
     shapes={"data": (2, 3, 5)}, forward=lambda v: v["data"] / np.sqrt(5),
     backward=lambda v, h: {"data": h / np.sqrt(5)})

case(id="quadratic", op="_contrib_quadratic", build=lambda: S.contrib.quadratic(_data(), a=0.7, b=-1.3, c=2.0),
     shapes={"data": (4, 7)}, forward=lambda v: 0.7 * v["data"] ** 2 - 1.3 * v["data"] + 2.0,
     backward=lambda v, h: {"data": (1.4 * v["data"] - 1.3) * h})
# Their gradients are by design not the derivative: test_gradcheck.py leaves them out.
case(id="round_ste", op="_contrib_round_ste", build=lambda: S.contrib.round_ste(_data()), shapes={"data": (3, 8)},
     values={"data": normal(3.0)}, forward=lambda v: np.sign(v["data"]) * np.floor(np.abs(v["data"]) + 0.5),
     backward=lambda v, h: {"data": h})
case(id="sign_ste", op="_contrib_sign_ste", build=lambda: S.contrib.sign_ste(_data()), shapes={"data": (5, 3)},
     forward=lambda v: np.sign(v["data"]), backward=lambda v, h: {"data": h})
case(id="gradient_reversal", op="_contrib_gradientmultiplier",
     build=lambda: S.contrib.gradientmultiplier(_data(), scalar=-0.3), shapes={"data": (4, 5)},
     forward=lambda v: v["data"], backward=lambda v, h: {"data": -0.3 * h})

# Three blocks of rows against one of positions in the suite's small blocks: each program owns positions.
case(id="embedding_large_table", op="Embedding",
     build=lambda: S.Embedding(_data(), input_dim=40, output_dim=5, name="emb"),
     shapes={"data": (2, 5), "emb_weight": (40, 5)}, values={"data": classes(40)},
     forward=lambda v: v["emb_weight"][v["data"].astype(np.int64)],
     backward=lambda v, h: {"emb_weight": _embedding_grad(v["data"], h, 40)},
     no_grad=("data",))

case(id="block_grad", op="BlockGrad",
     build=lambda: S.BlockGrad(_data()), shapes={"data": (4, 3)},
     forward=lambda v: v["data"],
     backward=lambda v, h: {"data": np.zeros_like(v["data"])})

case(id="make_loss", op="MakeLoss",
     build=lambda: S.MakeLoss(_data(), grad_scale=0.5, normalization="batch"), shapes={"data": (4, 3)},
     forward=lambda v: v["data"], backward=lambda v, h: {"data": np.full((4, 3), 0.5 / 4)},
     loss=lambda v, out: out.sum() * 0.5 / 4)

case(id="make_loss_valid", op="MakeLoss",
     build=lambda: S.MakeLoss(_data(), grad_scale=0.5, normalization="valid", valid_thresh=0.25),
     shapes={"data": (5, 7)},
     forward=lambda v: v["data"], backward=lambda v, h: {"data": o.make_loss_valid_gradient(v["data"], 0.5, 0.25)},
     loss=lambda v, out: out.sum() * o.make_loss_valid_gradient(v["data"], 0.5, 0.25).flat[0])

case(id="make_loss_lowercase", op="make_loss",
     build=lambda: S.make_loss(_data()), shapes={"data": (4, 3)},
     forward=lambda v: v["data"], backward=lambda v, h: {"data": np.ones((4, 3))},
     loss=lambda v, out: out.sum())

# --------------------------------------------------------------------- elementwise

for _name, _kind in (("elemwise_add", "add"), ("elemwise_sub", "sub"), ("elemwise_mul", "mul"),
                     ("elemwise_div", "div"), ("_hypot", "hypot"), *((f"_{c}", c) for c in (*o.COMPARE, *o.LOGICAL))):
    _values = truths if _kind in o.LOGICAL else away_from_zero
    case(id=_name, op=_name,
         build=lambda n=_name: getattr(S, n)(S.Variable("lhs"), S.Variable("rhs")),
         shapes={"lhs": (6, 7), "rhs": (6, 7)}, values={"lhs": _values, "rhs": _values},
         forward=lambda v, k=_kind: o.BINARY[k](v["lhs"], v["rhs"]),
         backward=lambda v, h, k=_kind: dict(zip(("lhs", "rhs"), o.binary_grads(k, h, v["lhs"], v["rhs"]))))

for _kind in ("plus", "minus", "rminus", "mul", "div", "rdiv", "power", "rpower", "hypot", "mod", "rmod", *o.COMPARE,
              *o.LOGICAL):
    _name = f"_{_kind}_scalar"
    case(id=_name, op=_name,
         build=lambda n=_name: S.create(n, _data(), scalar=1.7),
         shapes={"data": (6, 7)},
         values={"data": positive if _kind == "power" else truths if _kind in o.LOGICAL else away_from_zero},
         forward=lambda v, k=_kind: o.scalar(k, v["data"], 1.7),
         backward=lambda v, h, k=_kind: {"data": o.scalar_grad(k, h, v["data"], 1.7)})

for _sigma in (None, 2.0):  # smooth L1: quadratic within 1 / sigma**2 of 0, linear beyond
    case(id=f"smooth_l1_sigma{_sigma}", op="smooth_l1",
         build=lambda s=_sigma: S.smooth_l1(_data(), **({} if s is None else {"scalar": s})),
         shapes={"data": (6, 7)}, values={"data": normal(1.5)},
         forward=lambda v, s=_sigma or 1.0: o.scalar("smooth_l1", v["data"], s),
         backward=lambda v, h, s=_sigma or 1.0: {"data": o.scalar_grad("smooth_l1", h, v["data"], s)})

for _params in ({}, {"alpha": 0.7, "beta": -0.2}):  # clip(alpha x + beta, 0, 1)
    _alpha, _beta = _params.get("alpha", 0.2), _params.get("beta", 0.5)
    case(id=f"hard_sigmoid_alpha{_alpha}", op="hard_sigmoid",
         build=lambda p=_params: S.hard_sigmoid(_data(), **p),
         shapes={"data": (6, 7)}, values={"data": normal(2.0)},
         forward=lambda v, a=_alpha, b=_beta: o.scalar("hard_sigmoid", v["data"], a, b),
         backward=lambda v, h, a=_alpha, b=_beta: {"data": o.scalar_grad("hard_sigmoid", h, v["data"], a, b)})

for _kind in ts.ops.UNARY_OPS:
    case(id=_kind, op=_kind,
         build=lambda k=_kind: getattr(S, k)(_data()),
         shapes={"data": (6, 7)}, values={"data": lambda rng, shape, k=_kind: o.unary_domain(k, rng, shape)},
         forward=lambda v, k=_kind: o.UNARY[k](v["data"]),
         backward=lambda v, h, k=_kind: {"data": o.unary_grad(k, h, v["data"])})

# ------------------------------------------------------------------------- Cast

# To float64 from every dtype: exact, so finite differences apply (narrowing: test_cast.py).
case(id="cast_to_float64", op="Cast", build=lambda: S.Cast(_data(), dtype="float64"), shapes={"data": (5, 6)},
     forward=lambda v: v["data"], backward=lambda v, h: {"data": h})

# AMP's casts (MXNet's automatic mixed precision writes them): to float64 they are exact;
# amp_multicast of two inputs of one dtype passes both.
case(id="amp_cast_to_float64", op="amp_cast", build=lambda: S.amp_cast(_data(), dtype="float64"),
     shapes={"data": (4, 7)}, forward=lambda v: v["data"], backward=lambda v, h: {"data": h})
case(id="amp_multicast_product", op="amp_multicast",
     build=lambda: (lambda m: m[0] * m[1])(S.amp_multicast(_data("a"), _data("b"))), shapes={"a": (3, 5), "b": (3, 5)},
     forward=lambda v: v["a"] * v["b"], backward=lambda v, h: {"a": h * v["b"], "b": h * v["a"]})

# ------------------------------------------------------------ ScaledDotProductAttention


def _attention_case(id, q, k, v, causal=False, scale=None, lengths=False, gqa=False, window=None):
    shapes = {"query": q, "key": k, "value": v}
    values = {}
    if lengths:
        shapes["valid_length"] = (q[0],)
        values["valid_length"] = lambda rng, s: rng.integers(1, k[2] + 1, s).astype(np.float64)

    def used(v_):
        return v_["query"], v_["key"], v_["value"], causal, scale, v_.get("valid_length"), window

    forward, grads = (o.grouped_attention, o.grouped_attention_grads) if gqa else (o.attention, o.attention_grads)
    case(id=id, op="ScaledDotProductAttention",
         build=lambda: S.ScaledDotProductAttention(*(S.Variable(n) for n in shapes), causal=causal, scale=scale,
                                                   use_length=lengths, enable_gqa=gqa, window=window, name="att"),
         shapes=shapes, values=values, forward=lambda v_: forward(*used(v_)),
         backward=lambda v_, h: dict(zip(("query", "key", "value"), grads(h, *used(v_)))),
         no_grad=("valid_length",) if lengths else ())


# irregular lengths; key and value longer than the queries; value_dim apart from head_dim
_attention_case("attention_cross", (2, 3, 5, 6), (2, 3, 7, 6), (2, 3, 7, 4))
_attention_case("attention_causal_scaled", (2, 2, 9, 8), (2, 2, 9, 8), (2, 2, 9, 8), causal=True, scale=0.7)
_attention_case("attention_valid_length", (3, 2, 6, 5), (3, 2, 6, 5), (3, 2, 6, 5), lengths=True)
_attention_case("attention_causal_valid_length", (2, 1, 7, 3), (2, 1, 7, 3), (2, 1, 7, 3), causal=True,
                lengths=True)
# grouped query heads (3 per key head), and one key head for all (multi-query)
_attention_case("attention_grouped_query_heads", (2, 6, 5, 4), (2, 2, 7, 4), (2, 2, 7, 3), gqa=True)
_attention_case("attention_multi_query_causal_valid_length", (2, 3, 6, 5), (2, 1, 6, 5), (2, 1, 6, 5), causal=True,
                lengths=True, gqa=True)
# a sliding window of 3 keys (Mistral's); with grouped heads and more keys than queries
_attention_case("attention_sliding_window", (2, 2, 9, 5), (2, 2, 9, 5), (2, 2, 9, 4), causal=True, window=3)
_attention_case("attention_sliding_window_grouped", (1, 4, 7, 6), (1, 2, 11, 6), (1, 2, 11, 6), causal=True,
                scale=0.4, gqa=True, window=2)
# through a window with lengths, and with more queries than keys: queries that see no key (0, no gradient)
_attention_case("attention_sliding_window_valid_length", (3, 2, 9, 4), (3, 2, 9, 4), (3, 2, 9, 5), causal=True,
                lengths=True, window=2)
_attention_case("attention_sliding_window_past_the_keys", (1, 2, 10, 4), (1, 1, 6, 4), (1, 1, 6, 3), causal=True,
                gqa=True, window=3)

# ------------------------------------------- MXNet's interleaved attention products


def _scores(q, k):
    return q @ _swap(k) / np.sqrt(q.shape[-1])


def _scores_grads(h, q, k):
    return h @ k / np.sqrt(q.shape[-1]), _swap(h) @ q / np.sqrt(q.shape[-1])


# 2 heads of width 3 over 4 positions and a batch of 2; encoder-decoder: 3 queries, 5 keys, width 4
case(id="interleaved_selfatt_qk", op="_contrib_interleaved_matmul_selfatt_qk",
     build=lambda: S.contrib.interleaved_matmul_selfatt_qk(_data("qkv"), heads=2), shapes={"qkv": (4, 2, 18)},
     forward=lambda v: _scores(*o.interleaved_split(v["qkv"], 2, 3)[:2]),
     backward=lambda v, h: {"qkv": o.interleaved_join(
         [*_scores_grads(h, *o.interleaved_split(v["qkv"], 2, 3)[:2]), np.zeros((4, 4, 3))], 2)})
case(id="interleaved_selfatt_valatt", op="_contrib_interleaved_matmul_selfatt_valatt",
     build=lambda: S.contrib.interleaved_matmul_selfatt_valatt(_data("qkv"), _data("attention"), heads=2),
     shapes={"qkv": (4, 2, 18), "attention": (4, 4, 4)},
     forward=lambda v: o.interleaved_join([v["attention"] @ o.interleaved_split(v["qkv"], 2, 3)[2]], 2),
     backward=lambda v, h: {
         "qkv": o.interleaved_join(
             [np.zeros((4, 4, 3))] * 2 + [_swap(v["attention"]) @ o.interleaved_split(h, 2, 1)[0]], 2),
         "attention": o.interleaved_split(h, 2, 1)[0] @ _swap(o.interleaved_split(v["qkv"], 2, 3)[2])})
case(id="interleaved_encdec_qk", op="_contrib_interleaved_matmul_encdec_qk",
     build=lambda: S.contrib.interleaved_matmul_encdec_qk(_data("queries"), _data("kv"), heads=2),
     shapes={"queries": (3, 2, 8), "kv": (5, 2, 16)},
     forward=lambda v: _scores(o.interleaved_split(v["queries"], 2, 1)[0], o.interleaved_split(v["kv"], 2, 2)[0]),
     backward=lambda v, h: (lambda dq, dk: {"queries": o.interleaved_join([dq], 2),
                                            "kv": o.interleaved_join([dk, np.zeros((4, 5, 4))], 2)})(
         *_scores_grads(h, o.interleaved_split(v["queries"], 2, 1)[0], o.interleaved_split(v["kv"], 2, 2)[0])))
case(id="interleaved_encdec_valatt", op="_contrib_interleaved_matmul_encdec_valatt",
     build=lambda: S.contrib.interleaved_matmul_encdec_valatt(_data("kv"), _data("attention"), heads=2),
     shapes={"kv": (5, 2, 16), "attention": (4, 3, 5)},
     forward=lambda v: o.interleaved_join([v["attention"] @ o.interleaved_split(v["kv"], 2, 2)[1]], 2),
     backward=lambda v, h: {
         "kv": o.interleaved_join([np.zeros((4, 5, 4)), _swap(v["attention"]) @ o.interleaved_split(h, 2, 1)[0]], 2),
         "attention": o.interleaved_split(h, 2, 1)[0] @ _swap(o.interleaved_split(v["kv"], 2, 2)[1])})

# ------------------------------------------------- AdaptiveAvgPooling2D, BilinearResize2D

# overlapping windows (7 rows in 3 cells), windows repeating rows (4 rows in 6 cells), global
for _shape, _size in (((2, 3, 7, 5), (3, 2)), ((1, 2, 4, 5), (6, 8)), ((2, 3, 5, 4), ())):
    _cells = _size or (1, 1)
    case(id=f"adaptive_avg_pool_{'x'.join(map(str, _shape))}_to_{'x'.join(map(str, _cells))}",
         op="_contrib_AdaptiveAvgPooling2D",
         build=lambda s=_size: S.contrib.AdaptiveAvgPooling2D(_data(), output_size=s), shapes={"data": _shape},
         forward=lambda v, c=_cells: o.adaptive_avg_pool(v["data"], c),
         backward=lambda v, h, s=_shape: {"data": o.adaptive_avg_pool_grad(h, s)})

# up and down at once, pixel centres, a scale per axis, a single output row, an input of one row
for _id, _shape, _options, _size in (
        ("up_corners", (2, 3, 4, 5), dict(height=7, width=9), (7, 9)),
        ("down_up_centres", (2, 2, 6, 5), dict(height=4, width=8, align_corners=False), (4, 8)),
        ("scales", (1, 2, 5, 7), dict(scale_height=1.7, scale_width=0.6), (8, 4)),
        ("one_row_centres", (1, 2, 5, 7), dict(height=1, width=6, align_corners=False), (1, 6)),
        ("from_one_row", (2, 1, 1, 3), dict(height=4, width=5), (4, 5)),
        ("to_odd_up", (1, 2, 4, 5), dict(mode="to_odd_up"), (5, 5))):
    case(id=f"bilinear_resize_{_id}", op="_contrib_BilinearResize2D",
         build=lambda opts=_options: S.contrib.BilinearResize2D(_data(), **opts), shapes={"data": _shape},
         forward=lambda v, z=_size, a=_options.get("align_corners", True): o.bilinear_resize(v["data"], z, a),
         backward=lambda v, h, s=_shape, a=_options.get("align_corners", True): {
             "data": o.bilinear_resize_grad(h, s, a)})
case(id="bilinear_resize_like", op="_contrib_BilinearResize2D",
     build=lambda: S.contrib.BilinearResize2D(_data(), _data("like"), mode="like", align_corners=False),
     shapes={"data": (2, 3, 3, 4), "like": (2, 3, 6, 7)},
     forward=lambda v: o.bilinear_resize(v["data"], (6, 7), False),
     backward=lambda v, h: {"data": o.bilinear_resize_grad(h, (2, 3, 3, 4), False)},
     no_grad=("like",))

# ---------------------------------------------------------- Convolution, Pooling


def _convolution_case(id, shape, kernel, num_filter, stride=(), dilate=(), pad=(), num_group=1, no_bias=False):
    spatial = len(kernel)
    geometry = dict(stride=stride or None, dilate=dilate or None, pad=pad or None, groups=num_group)
    weight = (num_filter, shape[1] // num_group, *kernel)

    def backward(v, h):
        dx, dw, db = o.convolution_grads(h, v["data"], v["conv_weight"], **geometry)
        return {"data": dx, "conv_weight": dw, **({} if no_bias else {"conv_bias": db})}

    case(id=id, op="Convolution",
         build=lambda: S.Convolution(_data(), kernel=kernel, num_filter=num_filter, stride=stride, dilate=dilate,
                                     pad=pad, num_group=num_group, no_bias=no_bias, name="conv"),
         shapes={"data": shape, "conv_weight": weight, **({} if no_bias else {"conv_bias": (num_filter,)})},
         forward=lambda v: o.convolution(v["data"], v["conv_weight"], v.get("conv_bias"), **geometry),
         backward=backward)
    assert spatial == len(shape) - 2


_convolution_case("convolution_2d", (2, 3, 7, 6), (3, 2), 4, stride=(2, 1), dilate=(1, 2), pad=(1, 0))
_convolution_case("convolution_1d_groups_no_bias", (2, 4, 9), (3,), 6, pad=(1,), num_group=2, no_bias=True)
_convolution_case("convolution_3d", (1, 2, 4, 5, 3), (2, 3, 2), 3, stride=(1, 2, 1), pad=(1, 0, 1))




def deformable_offsets(rng, shape):
    """Shifts of -3 to 3 pixels whose fractions lie in [0.15, 0.85]: every tap's point is
    that far from a pixel row or column (where the interpolation bends), some reach outside
    the image."""
    return rng.integers(-3, 3, shape) + rng.uniform(0.15, 0.85, shape)


def _deformable_case(id, shape, kernel, num_filter, modulated=False, no_bias=False, **geometry):
    """A deformable convolution (v1, or v2 with ``modulated``): MXNet's parameter names in
    ``geometry`` (stride, dilate, pad, num_group, num_deformable_group)."""
    stride, dilate, pad = (geometry.get(k, d) for k, d in (("stride", (1, 1)), ("dilate", (1, 1)), ("pad", (0, 0))))
    groups, dgroups = geometry.get("num_group", 1), geometry.get("num_deformable_group", 1)
    out = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, d, p in zip(shape[2:], kernel, stride, dilate, pad)]
    taps = kernel[0] * kernel[1]
    oracle = dict(kernel=kernel, stride=stride, dilate=dilate, pad=pad, groups=groups, deformable_groups=dgroups,
                  zero_pad=modulated)
    op = "ModulatedDeformableConvolution" if modulated else "DeformableConvolution"
    shapes = {"data": shape, "offset": (shape[0], 2 * dgroups * taps, *out),
              **({"mask": (shape[0], dgroups * taps, *out)} if modulated else {}),
              "dcn_weight": (num_filter, shape[1] // groups, *kernel),
              **({} if no_bias else {"dcn_bias": (num_filter,)})}

    def build():
        extra = [S.Variable("mask")] if modulated else []
        return getattr(S.contrib, op)(_data(), S.Variable("offset"), *extra, kernel=kernel, num_filter=num_filter,
                                      no_bias=no_bias, name="dcn", **geometry)

    def backward(v, h):
        dx, doffset, dmask, dw, db = o.deformable_convolution_grads(h, v["data"], v["offset"], v.get("mask"),
                                                                    v["dcn_weight"], **oracle)
        grads = {"data": dx, "offset": doffset, "dcn_weight": dw, **({} if no_bias else {"dcn_bias": db})}
        return {**grads, "mask": dmask} if modulated else grads

    case(id=id, op=f"_contrib_{op}", build=build, shapes=shapes,
         values={"offset": deformable_offsets, "mask": lambda rng, shape: rng.uniform(0.1, 1.0, shape)},
         forward=lambda v: o.deformable_convolution(v["data"], v["offset"], v.get("mask"), v["dcn_weight"],
                                                    v.get("dcn_bias"), **oracle),
         backward=backward)


# groups of filters and of offsets that cut the channels differently; a plain 3x3; DCN v2
_deformable_case("deformable_convolution_groups", (1, 6, 5, 6), (3, 2), 4, stride=(2, 1), dilate=(1, 2), pad=(1, 0),
                 num_group=2, num_deformable_group=3)
_deformable_case("deformable_convolution_3x3_no_bias", (1, 3, 3, 4), (3, 3), 5, pad=(1, 1), no_bias=True)
_deformable_case("modulated_deformable_convolution", (2, 4, 3, 4), (2, 3), 6, modulated=True, stride=(1, 2),
                 pad=(1, 1), num_group=2, num_deformable_group=2)


def _deconvolution_case(id, shape, kernel, num_filter, stride=(), dilate=(), pad=(), adj=(), num_group=1,
                        no_bias=True, target_shape=(), geometry=None):
    """``geometry``: the stride, dilate, pad and adj the oracle uses where target_shape sets them."""
    spatial = len(kernel)
    geometry = geometry or dict(stride=stride or None, dilate=dilate or None, pad=pad or None, adj=adj or None)
    geometry = dict(geometry, groups=num_group)
    weight = (shape[1], num_filter // num_group, *kernel)

    def backward(v, h):
        dx, dw, db = o.deconvolution_grads(h, v["data"], v["up_weight"], **geometry)
        return {"data": dx, "up_weight": dw, **({} if no_bias else {"up_bias": db})}

    case(id=id, op="Deconvolution",
         build=lambda: S.Deconvolution(_data(), kernel=kernel, num_filter=num_filter, stride=stride, dilate=dilate,
                                       pad=pad, adj=adj, target_shape=target_shape, num_group=num_group,
                                       no_bias=no_bias, name="up"),
         shapes={"data": shape, "up_weight": weight, **({} if no_bias else {"up_bias": (num_filter,)})},
         forward=lambda v: o.deconvolution(v["data"], v["up_weight"], v.get("up_bias"), **geometry),
         backward=backward)
    assert spatial == len(shape) - 2


_deconvolution_case("deconvolution_2d", (2, 4, 5, 3), (3, 2), 6, stride=(2, 1), dilate=(1, 2), pad=(1, 0),
                    adj=(1, 0), num_group=2, no_bias=False)
_deconvolution_case("deconvolution_1d_target_shape", (2, 3, 6), (4,), 5, stride=(3,), target_shape=(16,),
                    geometry=dict(stride=(3,), pad=(2,), adj=(1,)))
_deconvolution_case("deconvolution_3d", (1, 2, 3, 4, 2), (2, 3, 2), 3, stride=(2, 1, 2), pad=(0, 1, 1),
                    adj=(1, 0, 0), no_bias=False)

# ------------------------------------------------------------------------ im2col, col2im

# overlapping blocks with every parameter set (2-d), 1-d, 3-d with a stride that skips rows
for _id, _shape, _geometry in (
        ("2d", (2, 3, 5, 6), dict(kernel=(2, 3), stride=(1, 2), dilate=(2, 1), pad=(1, 0))),
        ("1d", (2, 2, 7), dict(kernel=(3,), pad=(1,))),
        ("3d_skipping", (1, 2, 4, 3, 5), dict(kernel=(2, 1, 2), stride=(3, 1, 2), dilate=(1, 1, 2), pad=(0, 1, 1)))):
    _blocks = o.im2col(np.zeros(_shape), **_geometry).shape
    case(id=f"im2col_{_id}", op="im2col",
         build=lambda g=_geometry: S.im2col(_data(), **g), shapes={"data": _shape},
         forward=lambda v, g=_geometry: o.im2col(v["data"], **g),
         backward=lambda v, h, s=_shape, g=_geometry: {"data": o.col2im(h, s[2:], **g)})
    case(id=f"col2im_{_id}", op="col2im",
         build=lambda s=_shape, g=_geometry: S.col2im(_data(), output_size=s[2:], **g), shapes={"data": _blocks},
         forward=lambda v, s=_shape, g=_geometry: o.col2im(v["data"], s[2:], **g),
         backward=lambda v, h, g=_geometry: {"data": o.im2col(h, **g)})

# ------------------------------------------------ GridGenerator, BilinearSampler, SpatialTransformer


def grid_positions(rng, shape):
    """[-1, 1] positions and some beyond (-1.3 to 1.3): taps outside the image read 0."""
    return rng.uniform(-1.3, 1.3, shape)


def near_identity_maps(rng, shape):
    """Affine maps (N, 6) near the identity, x and y scaled and shifted a little."""
    return np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]) + rng.normal(scale=0.3, size=shape)


case(id="grid_generator_affine", op="GridGenerator",
     build=lambda: S.GridGenerator(_data(), transform_type="affine", target_shape=(4, 5)), shapes={"data": (3, 6)},
     forward=lambda v: o.affine_grid(v["data"], (4, 5)),
     backward=lambda v, h: {"data": o.affine_grid_grad(h, (4, 5))})
case(id="grid_generator_warp", op="GridGenerator",
     build=lambda: S.GridGenerator(_data(), transform_type="warp"), shapes={"data": (2, 2, 3, 4)},
     forward=lambda v: o.warp_grid(v["data"]),
     backward=lambda v, h: {"data": o.warp_grid_grad(h)})
# a smaller output than the image, and a larger one (zooming in), each reaching outside it
for _id, _data_shape, _grid_shape in (("shrink", (2, 3, 4, 5), (2, 2, 3, 6)), ("zoom", (1, 2, 3, 3), (1, 2, 5, 4))):
    case(id=f"bilinear_sampler_{_id}", op="BilinearSampler",
         build=lambda: S.BilinearSampler(_data(), S.Variable("grid")),
         shapes={"data": _data_shape, "grid": _grid_shape}, values={"grid": grid_positions},
         forward=lambda v: o.bilinear_sample(v["data"], v["grid"]),
         backward=lambda v, h: dict(zip(("data", "grid"), o.bilinear_sample_grads(h, v["data"], v["grid"]))))
case(id="spatial_transformer", op="SpatialTransformer",
     build=lambda: S.SpatialTransformer(_data(), S.Variable("loc"), target_shape=(3, 6), transform_type="affine",
                                        sampler_type="bilinear"),
     shapes={"data": (2, 3, 5, 4), "loc": (2, 6)}, values={"loc": near_identity_maps},
     forward=lambda v: o.bilinear_sample(v["data"], o.affine_grid(v["loc"], (3, 6))),
     backward=lambda v, h: _spatial_transformer_grads(h, v["data"], v["loc"], (3, 6)))


def _spatial_transformer_grads(h, data, loc, size):
    ddata, dgrid = o.bilinear_sample_grads(h, data, o.affine_grid(loc, size))
    return {"data": ddata, "loc": o.affine_grid_grad(dgrid, size)}


# --------------------------------------------------------------------------- index_copy

# a repeated index (its last row wins; the first takes no gradient), float and integer indices
for _id, _index in (("repeated", np.array([3.0, 0.0, 3.0])), ("int64", np.array([1, 4], np.int64))):
    case(id=f"index_copy_{_id}", op="_contrib_index_copy",
         build=lambda: S.contrib.index_copy(S.Variable("old"), S.Variable("index"), S.Variable("new")),
         shapes={"old": (5, 2, 3), "index": _index.shape, "new": (len(_index), 2, 3)},
         values={"index": lambda rng, shape, i=_index: i.copy()},
         forward=lambda v: o.index_copy(v["old"], v["index"], v["new"]),
         backward=lambda v, h: dict(zip(("old", "new"), o.index_copy_grads(h, v["index"], 5))),
         no_grad=("index",))


# ---------------------------------------------------------------------------- ROIAlign

# regions inside, across the border and beyond it, a thin one, and padding (batch -1); on
# a map of half the image's size
REGIONS = np.array([[0, 1.0, 2.0, 9.0, 7.5], [1, -4.0, -3.0, 5.0, 15.0], [-1, 0, 0, 0, 0], [1, 6.5, 1.6, 6.9, 2.0],
                    [0, 12.0, 8.0, 16.0, 13.0]])
for _id, _channels, _params in (("adaptive", 2, {}), ("aligned_ratio2", 4, dict(aligned=True, sample_ratio=2)),
                                ("position_sensitive", 12, dict(position_sensitive=True, sample_ratio=1))):
    case(id=f"roi_align_{_id}", op="_contrib_ROIAlign",
         build=lambda prm=_params: S.contrib.ROIAlign(_data(), S.Variable("rois"), pooled_size=(2, 3),
                                                      spatial_scale=0.5, **prm),
         shapes={"data": (2, _channels, 6, 7), "rois": REGIONS.shape},
         values={"rois": lambda rng, shape: REGIONS.copy()},
         forward=lambda v, prm=_params: o.roi_align(v["data"], v["rois"], (2, 3), 0.5, **prm),
         backward=lambda v, h, prm=_params: {"data": o.roi_align_grad(h, v["data"].shape, v["rois"], (2, 3), 0.5,
                                                                      **prm)},
         no_grad=("rois",))


# -------------------------------------------------------------------------- ROIPooling

# the regions of ROIAlign's cases and a large one over the whole map (bins of several pixels)
case(id="roi_pooling", op="ROIPooling",
     build=lambda: S.ROIPooling(_data(), S.Variable("rois"), pooled_size=(2, 3), spatial_scale=0.5),
     shapes={"data": (2, 3, 6, 7), "rois": (6, 5)},
     values={"rois": lambda rng, shape: np.concatenate([REGIONS, [[1, 0.0, 0.0, 13.0, 11.0]]])},
     forward=lambda v: o.roi_pooling(v["data"], v["rois"], (2, 3), 0.5),
     backward=lambda v, h: {"data": o.roi_pooling(v["data"], v["rois"], (2, 3), 0.5, grad_head=h)},
     no_grad=("rois",))


# ------------------------------------------------------------------------ PSROIPooling

# ROIAlign's regions (padding among them) on a map of half the image's size: 3 x 3 bins of 3
# x 3 channel groups over 2 classes; 2 x 2 groups of 4 x 4 bins (each group 2 x 2 bins), and a
# channel beyond output_dim x G x G left unread
for _id, _channels, _params in (("groups_of_bins", 18, dict(output_dim=2, pooled_size=3)),
                                ("fewer_groups", 13, dict(output_dim=3, pooled_size=4, group_size=2))):
    case(id=f"psroi_pooling_{_id}", op="_contrib_PSROIPooling",
         build=lambda prm=_params: S.contrib.PSROIPooling(_data(), S.Variable("rois"), spatial_scale=0.5, **prm),
         shapes={"data": (2, _channels, 6, 7), "rois": REGIONS.shape},
         values={"rois": lambda rng, shape: REGIONS.copy()},
         forward=lambda v, prm=_params: o.psroi_pooling(v["data"], v["rois"], prm["output_dim"], prm["pooled_size"],
                                                        prm.get("group_size", prm["pooled_size"]), 0.5),
         backward=lambda v, h, prm=_params: {"data": o.psroi_pooling(
             v["data"], v["rois"], prm["output_dim"], prm["pooled_size"], prm.get("group_size", prm["pooled_size"]),
             0.5, grad_head=h)},
         no_grad=("rois",))


# ---------------------------------------------------------------------------- box_iou


def boxes(rng, shape):
    """Corner boxes (x1, y1, x2, y2) of sides 0.5 to 4 in a 7 x 7 square: many overlap."""
    corner = rng.uniform(0, 5, (*shape[:-1], 2))
    return np.concatenate([corner, corner + rng.uniform(0.5, 4, (*shape[:-1], 2))], axis=-1)


def center_boxes(rng, shape):
    """The same boxes as (x, y, width, height)."""
    corners = boxes(rng, shape)
    return np.concatenate([(corners[..., :2] + corners[..., 2:]) / 2, corners[..., 2:] - corners[..., :2]], axis=-1)


for _fmt, _draw in (("corner", boxes), ("center", center_boxes)):
    case(id=f"box_iou_{_fmt}", op="_contrib_box_iou",
         build=lambda f=_fmt: S.contrib.box_iou(S.Variable("lhs"), S.Variable("rhs"), format=f),
         shapes={"lhs": (2, 3, 4), "rhs": (5, 4)}, values={"lhs": _draw, "rhs": _draw},
         forward=lambda v, f=_fmt: o.box_iou(v["lhs"], v["rhs"], f),
         backward=lambda v, h, f=_fmt: dict(zip(("lhs", "rhs"), o.box_iou_grads(h, v["lhs"], v["rhs"], f))))


# ------------------------------------------------------------------------- box_decode

# SSD's scales; the second case clips the scaled width and height offsets above 0.15 (offsets
# above 0.75: about a fifth of them, none within reach of a finite difference of the tie)
for _id, _fmt, _draw, _params in (
        ("box_decode_center", "center", center_boxes, dict(std0=0.1, std1=0.1, std2=0.2, std3=0.2)),
        ("box_decode_corner_clipped", "corner", boxes, dict(std0=0.1, std1=0.2, std2=0.2, std3=0.3, clip=0.15))):
    _stds = tuple(_params[f"std{i}"] for i in range(4))
    _clip = _params.get("clip", -1.0)
    case(id=_id, op="_contrib_box_decode",
         build=lambda f=_fmt, prm=_params: S.contrib.box_decode(_data(), S.Variable("anchors"), format=f, **prm),
         shapes={"data": (3, 5, 4), "anchors": (1, 5, 4)}, values={"anchors": _draw},
         forward=lambda v, f=_fmt, st=_stds, c=_clip: o.box_decode(v["data"], v["anchors"], st, c, f),
         backward=lambda v, h, f=_fmt, st=_stds, c=_clip: dict(zip(("data", "anchors"), o.box_decode_grads(
             h, v["data"], v["anchors"], st, c, f))))


# ---------------------------------------------------------------------------- box_nms


def detections(rng, shape, columns=(0, 1, 2), thresh=0.5, center=False):
    """Rows of detections: at ``columns`` (id, score, first coordinate) ids 0.5, 1.5 or 2.5
    (a finite difference leaves their integer part, the class, alone), scores distinct in an
    image, multiples of 1/64 (exact in bfloat16, 0.1 away from every one; of 1/N for N boxes
    past 64), boxes on an
    eighths grid in an 8 x 8 square (many overlap), redrawn until no two boxes' IoU lies
    within 1e-3 of ``thresh`` (a finite difference must not flip a suppression; None: any
    IoU); other columns normal. ``center``: the boxes as (x, y, width, height)."""
    id_at, score_at, coord = columns
    images = int(np.prod(shape[:-2]))
    while True:
        rows = rng.normal(size=(images, *shape[-2:]))
        corner = rng.choice(np.arange(0, 6, 0.125), (images, shape[-2], 2))
        corners = np.concatenate([corner, corner + rng.choice(np.arange(0.5, 2.5, 0.125), corner.shape)], -1)
        wx = np.minimum(corners[:, :, None, 2], corners[:, None, :, 2]) - np.maximum(corners[:, :, None, 0],
                                                                                    corners[:, None, :, 0])
        wy = np.minimum(corners[:, :, None, 3], corners[:, None, :, 3]) - np.maximum(corners[:, :, None, 1],
                                                                                    corners[:, None, :, 1])
        inter = np.clip(wx, 0, None) * np.clip(wy, 0, None)
        area = (corners[..., 2] - corners[..., 0]) * (corners[..., 3] - corners[..., 1])
        iou = inter / (area[:, :, None] + area[:, None, :] - inter)
        if thresh is None or not (np.abs(iou - np.float32(thresh)) < 1e-3).any():
            break
    if center:
        corners = np.concatenate([(corners[..., :2] + corners[..., 2:]) / 2, corners[..., 2:] - corners[..., :2]], -1)
    rows[..., coord:coord + 4] = corners
    steps = max(64, shape[-2])
    rows[..., score_at] = [rng.permutation(steps)[:shape[-2]] / steps for _ in range(images)]
    if id_at is not None:
        rows[..., id_at] = rng.integers(0, 3, rows.shape[:-1]) + 0.5
    return rows.reshape(shape)


_NMS_SSD = dict(id_index=0, topk=6, valid_thresh=0.1, out_format="center")
_NMS_CENTER = dict(coord_start=0, score_index=4, id_index=5, force_suppress=True, overlap_thresh=0.3,
                   in_format="center", out_format="corner")
for _id, _shape, _params, _draw in (
        ("box_nms_ssd", (2, 9, 6), _NMS_SSD, lambda rng, shape: detections(rng, shape)),
        ("box_nms_center_forced", (2, 3, 8, 7), _NMS_CENTER,
         lambda rng, shape: detections(rng, shape, (5, 4, 0), thresh=0.3, center=True))):
    case(id=_id, op="_contrib_box_nms",
         build=lambda prm=_params: S.contrib.box_nms(_data(), **prm),
         shapes={"data": _shape}, values={"data": _draw},
         forward=lambda v, prm=_params: o.box_nms(v["data"], **prm),
         backward=lambda v, h, prm=_params: {"data": o.box_nms(v["data"], grad_head=h, **prm)})


# ---------------------------------------------------------------- bipartite_matching
# Each marker output times w, whose gradient is checked; the data's is 0, the derivative
# (scores uniform in [0, 1], none within a finite difference of another or the threshold).

for _index, _shape, _params in ((0, (2, 6, 4), dict(threshold=0.3)),
                                (1, (3, 4, 7), dict(threshold=0.6, is_ascend=True, topk=3))):
    _marked = _shape[:-1] if _index == 0 else (*_shape[:-2], _shape[-1])
    case(id=f"bipartite_matching_{('rows', 'cols')[_index]}", op="_contrib_bipartite_matching",
         build=lambda k=_index, prm=_params: S.contrib.bipartite_matching(_data(), **prm)[k] * S.Variable("w"),
         shapes={"data": _shape, "w": _marked}, values={"data": lambda rng, s: rng.uniform(size=s)},
         forward=lambda v, k=_index, prm=_params: o.bipartite_matching(v["data"], **prm)[k] * v["w"],
         backward=lambda v, h, k=_index, prm=_params: {"data": np.zeros_like(v["data"]),
                                                       "w": h * o.bipartite_matching(v["data"], **prm)[k]})


# --------------------------------------------------------------------- MultiBoxPrior
# Times w, whose gradient is checked; the data's is 0, its derivative (only its shape counts).

for _id, _shape, _params in (("multibox_prior_sizes_ratios", (2, 3, 4, 5), dict(sizes=(0.5, 0.25), ratios=(1, 2, 0.5))),
                             ("multibox_prior_clipped_steps_offsets", (1, 2, 3, 7),
                              dict(sizes=(0.75,), ratios=(2, 1), clip=True, steps=(0.2, 0.15), offsets=(0.25, 0.75)))):
    _count = _shape[2] * _shape[3] * (len(_params["sizes"]) + len(_params["ratios"]) - 1)
    case(id=_id, op="_contrib_MultiBoxPrior",
         build=lambda prm=_params: S.contrib.MultiBoxPrior(_data(), **prm) * S.Variable("w"),
         shapes={"data": _shape, "w": (1, _count, 4)},
         forward=lambda v, s=_shape, prm=_params: o.multibox_prior(s[2], s[3], **prm) * v["w"],
         backward=lambda v, h, s=_shape, prm=_params: {"data": np.zeros(s),
                                                       "w": h * o.multibox_prior(s[2], s[3], **prm)})


# ----------------------------------------------------------------- MultiBoxDetection
# Anchors on an eighths grid with no two of IoU within 0.02 of the threshold, offsets 0: the
# boxes are the anchors, exactly in every dtype, and no rounding flips a suppression. Times
# w, whose gradient is checked: the inputs take none (MXNet's 0).

_DETECTION_INPUTS = ("cls_prob", "loc_pred", "anchor")
_DETECTION_PARAMS = dict(threshold=0.2, nms_threshold=0.45)


def _separated_anchors(rng, shape, thresh=0.45):
    for _ in range(1000):
        corner = rng.choice(np.arange(0, 0.5, 0.125), (shape[1], 2))
        a = np.concatenate([corner, corner + rng.choice(np.arange(0.25, 0.625, 0.125), corner.shape)], -1)
        iw = np.clip(np.minimum(a[:, None, 2], a[None, :, 2]) - np.maximum(a[:, None, 0], a[None, :, 0]), 0, None)
        ih = np.clip(np.minimum(a[:, None, 3], a[None, :, 3]) - np.maximum(a[:, None, 1], a[None, :, 1]), 0, None)
        area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
        iou = iw * ih / (area[:, None] + area[None, :] - iw * ih)
        if not (np.abs(iou - thresh) < 0.02).any():
            return a.reshape(shape)
    raise RuntimeError("no anchors of IoUs away from the threshold in 1000 draws")


def _class_probabilities(rng, shape):
    """Each anchor's probabilities over the classes (axis 1)."""
    return np.moveaxis(o.softmax(np.moveaxis(rng.normal(size=shape) * 2, 1, -1)), -1, 1)


case(id="multibox_detection", op="_contrib_MultiBoxDetection",
     build=lambda: S.contrib.MultiBoxDetection(*map(S.Variable, _DETECTION_INPUTS), **_DETECTION_PARAMS)
     * S.Variable("w"),
     shapes={"cls_prob": (2, 3, 12), "loc_pred": (2, 48), "anchor": (1, 12, 4), "w": (2, 12, 6)},
     values={"cls_prob": _class_probabilities, "loc_pred": lambda rng, s: np.zeros(s), "anchor": _separated_anchors},
     forward=lambda v: o.multibox_detection(*(v[n] for n in _DETECTION_INPUTS), **_DETECTION_PARAMS) * v["w"],
     backward=lambda v, h: {"w": h * o.multibox_detection(*(v[n] for n in _DETECTION_INPUTS), **_DETECTION_PARAMS)},
     no_grad=_DETECTION_INPUTS)


# ------------------------------------------------------------------- MultiBoxTarget
# Anchors and boxes on an eighths grid (exact in every dtype; IoUs, ratios of small whole
# numbers, none within 0.02 of a threshold), image 1 with 2 boxes then padding. Each
# output times w, whose gradient is checked: the inputs take none (the targets are labels).

_TARGET_INPUTS = ("anchor", "label", "cls_pred")
_TARGET_PARAMS = dict(overlap_threshold=0.4, negative_mining_ratio=2, negative_mining_thresh=0.3)


def _target_grid():
    """12 anchors then 8 boxes on the grid, every IoU of an anchor with a box at least 0.01
    from 0.3 and 0.4 (one fixed draw: both inputs take their part of it)."""
    rng = np.random.default_rng(11)
    for _ in range(1000):
        corner = rng.choice(np.arange(0, 0.5, 0.125), (20, 2))
        boxes = np.concatenate([corner, corner + rng.choice(np.arange(0.25, 0.625, 0.125), corner.shape)], -1)
        iou = o.box_iou(boxes[:12], boxes[12:])
        if not ((np.abs(iou - 0.3) < 0.01) | (np.abs(iou - 0.4) < 0.01)).any():
            return boxes
    raise RuntimeError("no boxes of IoUs away from both thresholds in 1000 draws")


def _target_labels(rng, shape):
    """(2, 4, 5): the grid's last 8 boxes, classes 0-2; image 1's last two rows padding."""
    label = np.concatenate([rng.integers(0, 3, (8, 1)), _target_grid()[12:]], -1).reshape(shape)
    label[1, 2:] = -1
    return label


for _index, _output in enumerate(("loc_target", "loc_mask", "cls_target")):
    _width = 48 if _index < 2 else 12
    case(id=f"multibox_target_{_output}", op="_contrib_MultiBoxTarget",
         build=lambda k=_index: S.contrib.MultiBoxTarget(*map(S.Variable, _TARGET_INPUTS), **_TARGET_PARAMS)[k]
         * S.Variable("w"),
         shapes={"anchor": (1, 12, 4), "label": (2, 4, 5), "cls_pred": (2, 4, 12), "w": (2, _width)},
         values={"anchor": lambda rng, s: _target_grid()[:12].reshape(s), "label": _target_labels,
                 "cls_pred": normal(2.0)},
         forward=lambda v, k=_index: o.multibox_target(*(v[n] for n in _TARGET_INPUTS), **_TARGET_PARAMS)[k] * v["w"],
         backward=lambda v, h, k=_index: {"w": h * o.multibox_target(*(v[n] for n in _TARGET_INPUTS),
                                                                     **_TARGET_PARAMS)[k]},
         no_grad=_TARGET_INPUTS)


# ------------------------------------------------------------------------- box_encode
# Positives, negatives (-1, matched with -1) and ignored anchors (0, matched with -1); each
# output times data, whose gradient is checked: box_encode's inputs take none (labels).

_ENCODE_SAMPLES = (1.0, -1.0, 1.0, 0.0, 1.0, 1.0, -1.0)
_ENCODE_INPUTS = ("samples", "matches", "anchors", "refs", "means", "stds")


def _encode_samples(rng, shape):
    return np.resize(np.array(_ENCODE_SAMPLES), shape)


def _encode_matches(rng, shape, refs=3):
    return np.where(_encode_samples(rng, shape) > 0.5, rng.integers(0, refs, shape), -1).astype(np.float64)


for _index in (0, 1):
    case(id=f"box_encode_{('targets', 'masks')[_index]}", op="_contrib_box_encode",
         build=lambda k=_index: S.contrib.box_encode(*map(S.Variable, _ENCODE_INPUTS))[k] * _data(),
         shapes={"samples": (2, 7), "matches": (2, 7), "anchors": (2, 7, 4), "refs": (2, 3, 4), "means": (4,),
                 "stds": (4,), "data": (2, 7, 4)},
         values={"samples": _encode_samples, "matches": _encode_matches, "anchors": boxes, "refs": boxes,
                 "means": normal(0.1), "stds": lambda rng, s: rng.choice([0.1, 0.2, 0.5], s)},
         forward=lambda v, k=_index: o.box_encode(*(v[n] for n in _ENCODE_INPUTS))[k] * v["data"],
         backward=lambda v, h, k=_index: {"data": h * o.box_encode(*(v[n] for n in _ENCODE_INPUTS))[k]},
         no_grad=_ENCODE_INPUTS)


# --------------------------------------------------------------------------- khatri_rao

# three factors (a middle one with both neighbours), two, one (the product is the factor)
for _id, _rows in (("3_factors", (2, 3, 2)), ("2_factors", (4, 3)), ("1_factor", (3,))):
    _names = "abc"[:len(_rows)]
    case(id=f"khatri_rao_{_id}", op="khatri_rao",
         build=lambda names=_names: S.khatri_rao(*(S.Variable(n) for n in names)),
         shapes={n: (m, 5) for n, m in zip(_names, _rows)},
         forward=lambda v, names=_names: o.khatri_rao(*(v[n] for n in names)),
         backward=lambda v, h, names=_names: dict(zip(names, o.khatri_rao_grads(h, *(v[n] for n in names)))))

# ---------------------------------------------------------------------------- Pad

for _shape, _width, _mode, _value in (((2, 3, 4, 5), (0, 0, 0, 0, 1, 2, 0, 3), "constant", 0.5),
                                      ((1, 2, 3, 2, 4), (0, 0, 0, 0, 2, 1, 0, 0, 3, 1), "edge", 0.0),
                                      ((2, 2, 4, 5), (0, 0, 0, 0, 3, 1, 2, 4), "reflect", 0.0)):
    _pads = tuple(zip(_width[0::2], _width[1::2]))
    case(id=f"pad_{_mode}_{'x'.join(map(str, _shape))}", op="Pad",
         build=lambda w=_width, m=_mode, c=_value: S.Pad(_data(), mode=m, pad_width=w, constant_value=c),
         shapes={"data": _shape},
         forward=lambda v, p=_pads, m=_mode, c=_value: o.pad(v["data"], p, m, c),
         backward=lambda v, h, s=_shape, p=_pads, m=_mode: {"data": o.pad_grad(h, s, p, m)})


# ----------------------------------------------------------------------- UpSampling

case(id="upsampling_nearest_scale3", op="UpSampling",
     build=lambda: S.UpSampling(_data(), scale=3, sample_type="nearest"), shapes={"data": (2, 3, 2, 4)},
     forward=lambda v: o.upsample_nearest(v["data"], 6, 12),
     backward=lambda v, h: {"data": o.upsample_nearest_grad(h, (2, 3, 2, 4))})

# Two inputs: b upsampled by 4 to arg0's size times 2, then joined along the channels or summed.
for _mode, _b in (("concat", (2, 3, 1, 2)), ("sum", (2, 2, 1, 2))):
    case(id=f"upsampling_nearest_{_mode}", op="UpSampling",
         build=lambda m=_mode: S.UpSampling(S.Variable("a"), S.Variable("b"), scale=2, sample_type="nearest",
                                            multi_input_mode=m),
         shapes={"a": (2, 2, 2, 4), "b": _b},
         forward=lambda v, m=_mode: (np.add if m == "sum" else lambda p, q: np.concatenate([p, q], 1))(
             o.upsample_nearest(v["a"], 4, 8), o.upsample_nearest(v["b"], 4, 8)),
         backward=lambda v, h, m=_mode: {
             "a": o.upsample_nearest_grad(h if m == "sum" else h[:, :2], (2, 2, 2, 4)),
             "b": o.upsample_nearest_grad(h if m == "sum" else h[:, 2:], v["b"].shape)})

for _scale, _kernel in ((2, 4), (3, 5)):
    _bilinear = dict(stride=(_scale,) * 2, pad=(_scale // 2,) * 2, groups=3)
    case(id=f"upsampling_bilinear_scale{_scale}", op="UpSampling",
         build=lambda s=_scale: S.UpSampling(_data(), scale=s, sample_type="bilinear", num_filter=3, name="up"),
         shapes={"data": (2, 3, 3, 4), "up_weight": (3, 1, _kernel, _kernel)},
         forward=lambda v, g=_bilinear: o.deconvolution(v["data"], v["up_weight"], **g),
         backward=lambda v, h, g=_bilinear: dict(zip(("data", "up_weight"), o.deconvolution_grads(
             h, v["data"], v["up_weight"], **g)[:2])))


def _pooling_case(id, shape, kernel=(), pool_type="max", stride=(), pad=(), convention="valid",
                  count_include_pad=True, p_value=None, global_pool=False, values=None):
    geometry = dict(kernel=shape[2:] if global_pool else kernel, stride=None if global_pool else (stride or None),
                    pad=None if global_pool else (pad or None), convention=convention,
                    count_include_pad=count_include_pad, p_value=p_value)
    case(id=id, op="Pooling",
         build=lambda: S.Pooling(_data(), kernel=kernel, pool_type=pool_type, stride=stride, pad=pad,
                                 pooling_convention=convention, count_include_pad=count_include_pad,
                                 p_value=p_value, global_pool=global_pool),
         shapes={"data": shape}, values={"data": values} if values else {},
         forward=lambda v: o.pooling(v["data"], pool_type, **geometry),
         backward=lambda v, h: {"data": o.pooling_grad(h, v["data"], pool_type, **geometry)})


_pooling_case("pooling_max_2d", (2, 3, 7, 6), (3, 3), stride=(2, 2), pad=(1, 1))
_pooling_case("pooling_max_3d_full", (1, 2, 6, 4, 3), (2, 3, 2), stride=(2, 2, 1), pad=(1, 1, 0), convention="full")
_pooling_case("pooling_avg_full_without_pad", (2, 2, 8, 5), (2, 3), "avg", stride=(2, 2), pad=(1, 1),
              convention="full", count_include_pad=False)
_pooling_case("pooling_avg_with_pad", (2, 2, 6, 5), (3, 2), "avg", stride=(1, 2), pad=(1, 1))
_pooling_case("pooling_sum_1d", (2, 3, 9), (3,), "sum", stride=(2,))
_pooling_case("pooling_lp2", (2, 2, 6, 5), (2, 2), "lp", stride=(2, 1), p_value=2)
_pooling_case("pooling_lp3", (2, 2, 5, 4), (2, 3), "lp", stride=(1, 1), p_value=3, values=positive)
_pooling_case("pooling_global_avg_3d", (2, 3, 3, 4, 2), pool_type="avg", global_pool=True)

# Every operator's cases past its first: their float64 gradient checks, NaN plantings,
# small-block runs and bfloat16 runs wait for -m slow (CI runs it), which keeps the README's
# quick run under 5 minutes on 2 cores; the quick run still checks every case against its
# oracle in float32.
REPEATS = {c.id for c in CASES if [d.id for d in CASES if d.op == c.op].index(c.id) >= 1}
