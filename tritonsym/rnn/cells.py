"""MXNet's ``mx.rnn`` cells (``mxnet/rnn/rnn_cell.py``): recurrent networks written with the
Symbol API, one step at a time. A cell's ``__call__`` builds one step from FullyConnected,
SliceChannel, Activation and elementwise operators; ``unroll`` repeats it over a sequence,
sharing the weights (one Variable per weight, from the cell's ``RNNParams``). Names,
arguments and the order of the gates are MXNet's, so a checkpoint of an MXNet LSTM loads.

The initial states come from ``ts.sym.zeros`` with a batch size of 0 (unknown), which
inference fills in from the inputs, as in MXNet.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import initializer
from .. import symbol as sym


def normalize_sequence(length, inputs, layout: str, merge, in_layout: str | None = None):
    """``inputs`` (one symbol with a time axis, or a list of per-step symbols) as a list of
    ``length`` steps (``merge`` False) or one symbol with the time axis where ``layout`` has
    its T (``merge`` True; None keeps what was given); also that axis."""
    if inputs is None:
        raise ValueError("unroll: inputs=None is not supported (as in MXNet 1.x): create the input "
                         "variables outside unroll")
    axis = layout.find("T")
    in_axis = in_layout.find("T") if in_layout is not None else axis
    if isinstance(inputs, sym.Symbol):
        if merge is False:
            if len(inputs.list_outputs()) != 1:
                raise ValueError("unroll: a grouped symbol is not a sequence; pass list(inputs), or one symbol "
                                 "with a time axis")
            inputs = list(sym.split(inputs, axis=in_axis, num_outputs=length, squeeze_axis=1))
    else:
        if length is not None and len(inputs) != length:
            raise ValueError(f"unroll: length={length} but {len(inputs)} steps were given")
        if merge is True:
            inputs = sym.Concat(*[sym.expand_dims(i, axis=axis) for i in inputs], dim=axis)
            in_axis = axis
    if isinstance(inputs, sym.Symbol) and axis != in_axis:
        inputs = sym.swapaxes(inputs, dim1=axis, dim2=in_axis)
    return inputs, axis


class RNNParams:
    """The Variables of one or more cells, by name (prefix + name): cells given the same
    RNNParams share their weights."""

    def __init__(self, prefix: str = ""):
        self._prefix = prefix
        self._params: dict[str, sym.Symbol] = {}

    def get(self, name: str, **kwargs) -> sym.Symbol:
        """The Variable ``prefix + name``, created (with ``kwargs``: init, shape ...) the first time."""
        name = self._prefix + name
        if name not in self._params:
            self._params[name] = sym.Variable(name, **kwargs)
        return self._params[name]


class BaseRNNCell:
    """A recurrent cell: ``cell(inputs, states)`` builds one step and returns (output, new
    states); ``unroll`` builds ``length`` of them. ``prefix`` names its nodes and (without
    ``params``) its weights."""

    _gate_names: tuple[str, ...] = ()
    _num_states = 1  # gated cells: how many (batch, num_hidden) states a step carries

    def __init__(self, prefix: str = "", params: RNNParams | None = None):
        self._own_params = params is None
        self._prefix = prefix
        self._params = RNNParams(prefix) if params is None else params
        self._modified = False
        self.reset()

    def reset(self) -> None:
        """Start the step and initial-state counters again (before building another graph)."""
        self._init_counter = -1
        self._counter = -1
        for cell in getattr(self, "_cells", ()):
            cell.reset()

    def __call__(self, inputs, states):
        raise NotImplementedError

    @property
    def params(self) -> RNNParams:
        self._own_params = False
        return self._params

    @property
    def state_shape(self) -> list:
        return [info["shape"] for info in self.state_info]

    def begin_state(self, func=sym.zeros, **kwargs) -> list:
        """One initial state per ``state_info`` entry, from ``func`` (``ts.sym.zeros``, or
        ``ts.sym.Variable`` to feed them), named ``<prefix>begin_state_<n>``."""
        if self._modified:
            raise ValueError("after a modifier cell (DropoutCell, ZoneoutCell ...) wraps this cell, call the "
                             "modifier's begin_state")
        states = []
        for info in self.state_info:
            self._init_counter += 1
            if info is not None:
                kwargs.update(info)
            states.append(func(name=f"{self._prefix}begin_state_{self._init_counter}", **kwargs))
        return states

    def unpack_weights(self, args: dict) -> dict:
        """``args`` with each gate's rows of ``i2h``/``h2h`` weight and bias as arrays of their own
        (``<prefix>i2h_i_weight`` ...), as MXNet's; arrays are sliced, never shared."""
        args = dict(args)
        if not self._gate_names:
            return args
        h = self._num_hidden
        for group in ("i2h", "h2h"):
            weight = args.pop(f"{self._prefix}{group}_weight")
            bias = args.pop(f"{self._prefix}{group}_bias")
            for j, gate in enumerate(self._gate_names):
                args[f"{self._prefix}{group}{gate}_weight"] = _copy(weight[j * h:(j + 1) * h])
                args[f"{self._prefix}{group}{gate}_bias"] = _copy(bias[j * h:(j + 1) * h])
        return args

    def pack_weights(self, args: dict) -> dict:
        """The inverse of ``unpack_weights``."""
        args = dict(args)
        if not self._gate_names:
            return args
        for group in ("i2h", "h2h"):
            for kind in ("weight", "bias"):
                parts = [args.pop(f"{self._prefix}{group}{gate}_{kind}") for gate in self._gate_names]
                args[f"{self._prefix}{group}_{kind}"] = _concatenate(parts)
        return args

    def unroll(self, length: int, inputs, begin_state=None, layout: str = "NTC", merge_outputs=None):
        """``length`` steps over ``inputs`` (one symbol (batch, time, ...) for NTC or (time,
        batch, ...) for TNC, or a list of per-step symbols), from ``begin_state`` (default:
        ``begin_state()``). Returns (outputs: a list of steps, or one symbol with
        ``merge_outputs``; the last states)."""
        self.reset()
        inputs, _ = normalize_sequence(length, inputs, layout, False)
        states = self.begin_state() if begin_state is None else begin_state
        outputs = []
        for i in range(length):
            output, states = self(inputs[i], states)
            outputs.append(output)
        outputs, _ = normalize_sequence(length, outputs, layout, merge_outputs)
        return outputs, states

    def _fully_connected_weights(self, **i2h_bias) -> None:
        """The i2h and h2h weights and biases every gated cell multiplies by (``i2h_bias``:
        Variable arguments of the i2h bias, LSTM's initializer)."""
        self._iW, self._iB = self.params.get("i2h_weight"), self.params.get("i2h_bias", **i2h_bias)
        self._hW, self._hB = self.params.get("h2h_weight"), self.params.get("h2h_bias")

    @property
    def state_info(self):
        """One (batch, num_hidden) state a recurrent value (LSTM: its output and its cell)."""
        return [_state(self._num_hidden) for _ in range(self._num_states)]

    @staticmethod
    def _get_activation(inputs, activation, **kwargs):
        if isinstance(activation, str):
            return sym.Activation(inputs, act_type=activation, **kwargs)
        return activation(inputs, **kwargs)


def _copy(array):
    return array.clone() if isinstance(array, torch.Tensor) else np.array(array, copy=True)


def _concatenate(parts):
    return torch.cat(parts) if isinstance(parts[0], torch.Tensor) else np.concatenate(parts)


def _state(num_hidden: int) -> dict:
    return {"shape": (0, num_hidden), "__layout__": "NC"}


class RNNCell(BaseRNNCell):
    """The simple recurrent cell: ``out = act(i2h(x) + h2h(h))``."""

    _gate_names = ("",)

    def __init__(self, num_hidden: int, activation="tanh", prefix: str = "rnn_", params=None):
        super().__init__(prefix=prefix, params=params)
        self._num_hidden = num_hidden
        self._activation = activation
        self._fully_connected_weights()

    def __call__(self, inputs, states):
        self._counter += 1
        name = f"{self._prefix}t{self._counter}_"
        i2h = sym.FullyConnected(data=inputs, weight=self._iW, bias=self._iB, num_hidden=self._num_hidden,
                                 name=f"{name}i2h")
        h2h = sym.FullyConnected(data=states[0], weight=self._hW, bias=self._hB, num_hidden=self._num_hidden,
                                 name=f"{name}h2h")
        output = self._get_activation(i2h + h2h, self._activation, name=f"{name}out")
        return output, [output]


class LSTMCell(BaseRNNCell):
    """Long short-term memory: gates in MXNet's order (input, forget, cell, output), the
    forget gate's bias starting at ``forget_bias`` (``ts.init.LSTMBias``)."""

    _gate_names = ("_i", "_f", "_c", "_o")
    _num_states = 2  # the output and the cell

    def __init__(self, num_hidden: int, prefix: str = "lstm_", params=None, forget_bias: float = 1.0):
        super().__init__(prefix=prefix, params=params)
        self._num_hidden = num_hidden
        self._fully_connected_weights(init=initializer.LSTMBias(forget_bias=forget_bias))

    def __call__(self, inputs, states):
        self._counter += 1
        name = f"{self._prefix}t{self._counter}_"
        i2h = sym.FullyConnected(data=inputs, weight=self._iW, bias=self._iB, num_hidden=self._num_hidden * 4,
                                 name=f"{name}i2h")
        h2h = sym.FullyConnected(data=states[0], weight=self._hW, bias=self._hB, num_hidden=self._num_hidden * 4,
                                 name=f"{name}h2h")
        gates = sym.SliceChannel(i2h + h2h, num_outputs=4, name=f"{name}slice")
        in_gate = sym.Activation(gates[0], act_type="sigmoid", name=f"{name}i")
        forget_gate = sym.Activation(gates[1], act_type="sigmoid", name=f"{name}f")
        in_transform = sym.Activation(gates[2], act_type="tanh", name=f"{name}c")
        out_gate = sym.Activation(gates[3], act_type="sigmoid", name=f"{name}o")
        next_c = sym._internal._plus(forget_gate * states[1], in_gate * in_transform, name=f"{name}state")
        next_h = sym._internal._mul(out_gate, sym.Activation(next_c, act_type="tanh"), name=f"{name}out")
        return next_h, [next_h, next_c]


class GRUCell(BaseRNNCell):
    """Gated recurrent unit, cuDNN's variant (the reset gate applied after h2h), as MXNet's."""

    _gate_names = ("_r", "_z", "_o")

    def __init__(self, num_hidden: int, prefix: str = "gru_", params=None):
        super().__init__(prefix=prefix, params=params)
        self._num_hidden = num_hidden
        self._fully_connected_weights()

    def __call__(self, inputs, states):
        self._counter += 1
        name = f"{self._prefix}t{self._counter}_"
        prev = states[0]
        i2h = sym.FullyConnected(data=inputs, weight=self._iW, bias=self._iB, num_hidden=self._num_hidden * 3,
                                 name=f"{name}_i2h")
        h2h = sym.FullyConnected(data=prev, weight=self._hW, bias=self._hB, num_hidden=self._num_hidden * 3,
                                 name=f"{name}_h2h")
        i2h_r, i2h_z, i2h = sym.SliceChannel(i2h, num_outputs=3, name=f"{name}_i2h_slice")
        h2h_r, h2h_z, h2h = sym.SliceChannel(h2h, num_outputs=3, name=f"{name}_h2h_slice")
        reset_gate = sym.Activation(i2h_r + h2h_r, act_type="sigmoid", name=f"{name}_r_act")
        update_gate = sym.Activation(i2h_z + h2h_z, act_type="sigmoid", name=f"{name}_z_act")
        next_h_tmp = sym.Activation(i2h + reset_gate * h2h, act_type="tanh", name=f"{name}_h_act")
        next_h = sym._internal._plus((1.0 - update_gate) * next_h_tmp, update_gate * prev, name=f"{name}out")
        return next_h, [next_h]
