"""Initializers: how a parameter gets its first value.

MXNet's rules: an initializer is called with the argument's name and array; names ending
in ``weight`` get the initializer's distribution, ``bias`` and ``beta`` zeros, ``gamma``
ones; a Variable's ``init`` attribute (``Variable("w", init=Normal(0.1))``) wins over all
of that. Values are drawn in float64 on the host from ``tritonsym.random``'s generator,
in argument order, then copied into the parameter's dtype and device: under a seed every
run, and every device, starts from the same numbers.

>>> import tritonsym as ts, torch
>>> ts.random.seed(0)
>>> w = torch.empty(3, 4)
>>> ts.init.Xavier()("fc1_weight", w)
>>> ts.init.Xavier()("fc1_bias", b := torch.empty(3)); b.tolist()
[0.0, 0.0, 0.0]
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from . import fused_rnn_layout, random
from .base import ParamError

INITIALIZERS: dict[str, type["Initializer"]] = {}


def register(cls: type["Initializer"]) -> type["Initializer"]:
    INITIALIZERS[cls.__name__.lower()] = cls
    return cls


def create(spec) -> "Initializer":
    """An initializer from an instance, a name (``"xavier"``), or the JSON of ``dumps()``
    (``'["normal", {"sigma": 0.1}]'``, what a Variable's ``init`` attribute holds)."""
    if isinstance(spec, Initializer):
        return spec
    if not isinstance(spec, str):
        raise ParamError(f"initializer: expected an Initializer, a name or its JSON, got {type(spec).__name__}")
    name, kwargs = spec.strip(), {}
    if name.startswith("["):
        try:
            name, kwargs = json.loads(name)
        except (ValueError, TypeError):
            raise ParamError(f"initializer: cannot read {spec!r}; expected '[\"name\", {{...}}]'") from None
        if not isinstance(name, str) or not isinstance(kwargs, dict):
            raise ParamError(f"initializer: cannot read {spec!r}; expected '[\"name\", {{...}}]'")
    if name.lower() not in INITIALIZERS:
        raise ParamError(f"initializer: unknown initializer {name!r}; known: {', '.join(sorted(INITIALIZERS))}")
    try:
        return INITIALIZERS[name.lower()](**kwargs)
    except TypeError as e:
        raise ParamError(f"initializer {name!r}: {e}") from None


class Initializer:
    """Base class: dispatch by name, a Variable's ``init`` attribute first."""

    def __init__(self, **kwargs):
        self._kwargs = kwargs

    def dumps(self) -> str:
        """JSON that ``create`` turns back into this initializer (arrays as nested lists,
        as MXNet writes them)."""
        return json.dumps([type(self).__name__.lower(), self._kwargs],
                          default=lambda v: np.asarray(v, dtype=np.float64).tolist())

    def __call__(self, name: str, array: torch.Tensor, attrs: dict | None = None) -> None:
        """Fill ``array`` (a torch tensor, in place) as the argument ``name`` with symbol
        attributes ``attrs`` should start."""
        attrs = attrs or {}
        if "__init__" in attrs:
            create(attrs["__init__"])._fill_for(name, array, self)
        elif name.endswith("weight"):
            self._fill(name, array)
        elif name.endswith(("bias", "beta", "moving_mean")):
            _write(array, np.zeros(tuple(array.shape)))
        elif name.endswith(("gamma", "moving_var")):
            _write(array, np.ones(tuple(array.shape)))
        else:
            raise ParamError(f"initializer: no rule for argument {name!r}; names ending in weight, bias, gamma or "
                             "beta are initialized by pattern. Give the variable an init (Variable(name, "
                             "init=ts.init.Normal(0.01))) or pass its value in arg_params")

    def _fill(self, name: str, array: torch.Tensor) -> None:
        raise NotImplementedError

    def _fill_for(self, name: str, array: torch.Tensor, caller: "Initializer | None") -> None:
        """Fill ``array`` as a variable's own initializer, on behalf of ``caller`` (the
        initializer Module or init_params was given), which FusedRNN's pieces may use."""
        self._fill(name, array)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._kwargs.items())})"


def _write(array: torch.Tensor, values: np.ndarray) -> None:
    array.copy_(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).reshape(array.shape))


@register
class Uniform(Initializer):
    """Weights uniform in ``[-scale, scale]`` (MXNet's default initializer, scale 0.07)."""

    def __init__(self, scale: float = 0.07):
        super().__init__(scale=scale)
        self.scale = scale

    def _fill(self, name, array):
        _write(array, random.generator().uniform(-self.scale, self.scale, tuple(array.shape)))


@register
class Normal(Initializer):
    """Weights from a normal distribution with mean 0 and standard deviation ``sigma``."""

    def __init__(self, sigma: float = 0.01):
        super().__init__(sigma=sigma)
        self.sigma = sigma

    def _fill(self, name, array):
        _write(array, random.generator().normal(0.0, self.sigma, tuple(array.shape)))


@register
class Constant(Initializer):
    """Weights all equal to ``value``."""

    def __init__(self, value: float = 0.0):
        super().__init__(value=value)
        self.value = value

    def _fill(self, name, array):
        _write(array, np.full(tuple(array.shape), float(self.value)))


@register
class Zero(Constant):
    """Weights all 0."""

    def __init__(self):
        super().__init__(0.0)
        self._kwargs = {}


@register
class One(Constant):
    """Weights all 1."""

    def __init__(self):
        super().__init__(1.0)
        self._kwargs = {}


@register
class LSTMBias(Initializer):
    """An LSTM's i2h bias (``ts.rnn.LSTMCell`` gives it): 0, but ``forget_bias`` on the
    forget gate's quarter (gates in MXNet's order: input, forget, cell, output), so the cell
    starts by remembering (Jozefowicz et al. 2015)."""

    def __init__(self, forget_bias: float = 1.0):
        super().__init__(forget_bias=forget_bias)
        self.forget_bias = forget_bias

    def _fill(self, name, array):
        values = np.zeros(tuple(array.shape))
        quarter = array.shape[0] // 4
        values[quarter:2 * quarter] = float(self.forget_bias)
        _write(array, values)


@register
class Xavier(Initializer):
    """Glorot & Bengio (2010): variance ``magnitude / fan`` where ``fan`` is the average of
    fan-in and fan-out (``factor_type="avg"``), or one of them (``"in"``, ``"out"``); uniform
    in ``[-sqrt(magnitude/fan), +sqrt(...)]`` or gaussian with that standard deviation.
    A weight of shape ``(out, in, *k)`` has fan-in ``in * prod(k)``, fan-out ``out * prod(k)``."""

    def __init__(self, rnd_type: str = "uniform", factor_type: str = "avg", magnitude: float = 3.0):
        if rnd_type not in ("uniform", "gaussian"):
            raise ParamError(f"Xavier: rnd_type={rnd_type!r} must be 'uniform' or 'gaussian'")
        if factor_type not in ("avg", "in", "out"):
            raise ParamError(f"Xavier: factor_type={factor_type!r} must be 'avg', 'in' or 'out'")
        if not magnitude > 0:
            raise ParamError(f"Xavier: magnitude={magnitude!r} must be positive")
        super().__init__(rnd_type=rnd_type, factor_type=factor_type, magnitude=magnitude)
        self.rnd_type, self.factor_type, self.magnitude = rnd_type, factor_type, magnitude

    def _fill(self, name, array):
        shape = tuple(array.shape)
        if len(shape) < 2:
            raise ParamError(f"Xavier: {name!r} has shape {shape}; Xavier needs at least 2 dimensions (out, in, ...)")
        receptive = math.prod(shape[2:])
        fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
        fan = {"avg": (fan_in + fan_out) / 2.0, "in": fan_in, "out": fan_out}[self.factor_type]
        scale = math.sqrt(self.magnitude / fan)
        rng = random.generator()
        values = rng.uniform(-scale, scale, shape) if self.rnd_type == "uniform" else rng.normal(0.0, scale, shape)
        _write(array, values)


@register
class Bilinear(Initializer):
    """MXNet's: each (out, in) slice of a weight (..., k_h, k_w) is the bilinear interpolation
    kernel ``(1 - |x / f - c|) * (1 - |y / f - c|)`` with ``f = ceil(k_w / 2)`` and
    ``c = (2 f - 1 - f % 2) / (2 f)``: a transposed convolution with stride f that upsamples
    by interpolating (UpSampling's bilinear weight starts so)."""

    def __init__(self):
        super().__init__()

    def _fill(self, name, array):
        shape = tuple(array.shape)
        if len(shape) < 2:
            raise ParamError(f"Bilinear: {name!r} has shape {shape}; it needs (..., height, width)")
        f = math.ceil(shape[-1] / 2)
        c = (2 * f - 1 - f % 2) / (2.0 * f)
        x = 1 - np.abs(np.arange(shape[-1]) / f - c)
        y = 1 - np.abs(np.arange(shape[-2]) / f - c)
        _write(array, np.broadcast_to(np.outer(y, x), shape))


@register
class FusedRNN(Initializer):
    """The flat ``parameters`` of an RNN operator (MXNet's ``mx.init.FusedRNN``; the RNN
    operator gives its parameters this one, with ``init=None``): each gate's weights (state_size
    rows, as MXNet's ``unpack_weights`` cuts them) filled by ``init`` (None: by the initializer
    that was given to Module or ``init_params``), every bias 0, but an lstm's forget-gate
    biases (the input's and the hidden one's, as MXNet sets both) ``forget_bias``. An LSTM
    with projections (``projection_size``) has its projection weights filled by ``init``
    too, as one (projection_size, num_hidden) piece."""

    def __init__(self, init=None, num_hidden: int = 0, num_layers: int = 1, mode: str = "lstm",
                 bidirectional: bool = False, forget_bias: float = 1.0, projection_size: int | None = None):
        init = create(init) if init is not None else None
        options = dict(projection_size=projection_size) if projection_size else {}  # older dumps stay as they were
        super().__init__(init=init.dumps() if init is not None else None, num_hidden=num_hidden,
                         num_layers=num_layers, mode=mode, bidirectional=bidirectional, forget_bias=forget_bias,
                         **options)
        self.init, self.forget_bias = init, forget_bias
        self.params = dict(state_size=num_hidden, num_layers=num_layers, mode=mode, bidirectional=bidirectional,
                           projection_size=projection_size)

    def _fill(self, name, array):
        self._fill_for(name, array, None)

    def _fill_for(self, name, array, caller):
        init = self.init or caller
        if init is None or isinstance(init, FusedRNN):
            raise ParamError(f"FusedRNN: {name!r}: init=None fills the weights with the initializer that calls it; "
                             "give init (FusedRNN(ts.init.Xavier(), ...)) to use FusedRNN alone")
        mode, layers, hidden = self.params["mode"], self.params["num_layers"], self.params["state_size"]
        projection = self.params["projection_size"]
        directions, flat = 1 + bool(self.params["bidirectional"]), array.reshape(-1)
        inputs = fused_rnn_layout.inputs_of(flat.numel(), mode, layers, directions, hidden, projection)
        if inputs is None:
            projected = f" projected to {projection}" if projection else ""
            raise ParamError(f"FusedRNN: {name!r} holds {flat.numel()} numbers, which no input size gives {layers} "
                             f"{'bidirectional ' if directions == 2 else ''}{mode} layers of {hidden}{projected}")
        for piece_name, at, shape in fused_rnn_layout.gate_pieces(mode, layers, directions, inputs, hidden,
                                                                  projection):
            rows = flat[at:at + math.prod(shape)].view(shape)
            if piece_name.endswith("_weight"):
                init._fill(f"{name}_{piece_name}", rows)
            elif mode == "lstm" and piece_name.endswith("_f_bias"):  # both forget biases, as MXNet's
                _write(rows, np.full(tuple(rows.shape), float(self.forget_bias)))
            else:
                _write(rows, np.zeros(tuple(rows.shape)))

