"""MXNet's ``FusedRNNCell``: a whole recurrent stack as one RNN operator (its cuDNN
operator there, tritonsym's fused RNN here), every weight in one ``<prefix>parameters``
vector that ``ts.init.FusedRNN`` initializes gate by gate. ``unpack_weights`` cuts that
vector into the per-gate arrays MXNet names (``lstm_l0_i2h_i_weight``, ``lstm_r1_h2h_f_bias``
...), ``pack_weights`` joins them back, and ``unfuse`` builds the same network from
step-by-step cells, whose weights those per-gate arrays pack into: a checkpoint moves
between the two forms.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import initializer
from .. import symbol as sym
from ..fused_rnn_layout import GATE_NAMES, gate_pieces, inputs_of
from .cells import BaseRNNCell, GRUCell, LSTMCell, RNNCell, normalize_sequence
from .combinators import BidirectionalCell, DropoutCell, SequentialRNNCell


class FusedRNNCell(BaseRNNCell):
    """``num_layers`` layers of ``mode`` cells (lstm, gru, rnn_tanh, rnn_relu), optionally
    bidirectional, unrolled as one RNN operator. ``get_next_state``: ``unroll`` also returns
    the last states (else an empty list). ``dropout`` drops each layer's output but the top's
    when training (the operator's ``p``; ``unfuse`` builds it with DropoutCells)."""

    def __init__(self, num_hidden: int, num_layers: int = 1, mode: str = "lstm", bidirectional: bool = False,
                 dropout: float = 0.0, get_next_state: bool = False, forget_bias: float = 1.0,
                 prefix: str | None = None, params=None):
        if mode not in GATE_NAMES:
            raise ValueError(f"FusedRNNCell: mode={mode!r} is not one of {', '.join(GATE_NAMES)}")
        super().__init__(prefix=f"{mode}_" if prefix is None else prefix, params=params)
        self._num_hidden, self._num_layers, self._mode = num_hidden, num_layers, mode
        self._bidirectional, self._dropout, self._get_next_state = bidirectional, dropout, get_next_state
        self._directions = ("l", "r") if bidirectional else ("l",)
        init = initializer.FusedRNN(None, num_hidden, num_layers, mode, bidirectional, forget_bias)
        self._parameter = self.params.get("parameters", init=init)

    @property
    def state_info(self):
        """(layers x directions, batch, num_hidden) states: one, and lstm's cells."""
        shape = (len(self._directions) * self._num_layers, 0, self._num_hidden)
        return [{"shape": shape, "__layout__": "LNC"} for _ in range(2 if self._mode == "lstm" else 1)]

    @property
    def _gate_names(self):
        return GATE_NAMES[self._mode]

    def __call__(self, inputs, states):
        raise NotImplementedError("FusedRNNCell cannot be stepped; use unroll (or unfuse() for a steppable cell)")

    def _slice_weights(self, flat, inputs: int) -> dict:
        """Views of ``flat`` by MXNet's per-gate names, in the operator's layout."""
        pieces = gate_pieces(self._mode, self._num_layers, len(self._directions), inputs, self._num_hidden)
        return {self._prefix + name: flat[at:at + int(np.prod(shape))].reshape(shape) for name, at, shape in pieces}

    def _inputs_of(self, count: int) -> int:
        inputs = inputs_of(count, self._mode, self._num_layers, len(self._directions), self._num_hidden)
        if inputs is None:
            raise ValueError(f"FusedRNNCell: {count} parameters do not fit {self._num_layers} {self._mode} layers of "
                             f"{self._num_hidden} for any input size")
        return inputs

    def unpack_weights(self, args: dict) -> dict:
        """``args`` with ``<prefix>parameters`` cut into per-gate arrays (copies)."""
        args = dict(args)
        flat = args.pop(self._parameter.name)
        pieces = self._slice_weights(flat.reshape(-1), self._inputs_of(flat.numel() if isinstance(
            flat, torch.Tensor) else np.size(flat)))
        args.update({name: piece.clone() if isinstance(piece, torch.Tensor) else np.array(piece, copy=True)
                     for name, piece in pieces.items()})
        return args

    def pack_weights(self, args: dict) -> dict:
        """The inverse of ``unpack_weights``."""
        args = dict(args)
        first = args[f"{self._prefix}l0_i2h{self._gate_names[0]}_weight"]
        inputs, h, b = first.shape[1], self._num_hidden, len(self._directions)
        gates = len(self._gate_names)
        total = (inputs + h + 2) * h * gates * b + (self._num_layers - 1) * gates * h * (h + b * h + 2) * b
        if isinstance(first, torch.Tensor):
            flat = torch.zeros((total,), dtype=first.dtype, device=first.device)
        else:
            flat = np.zeros((total,), dtype=np.asarray(first).dtype)
        for name, view in self._slice_weights(flat, inputs).items():
            view[...] = args.pop(name)
        args[self._parameter.name] = flat
        return args

    def unroll(self, length: int, inputs, begin_state=None, layout: str = "NTC", merge_outputs=None):
        """The RNN operator over ``length`` steps (the sequence with its time axis moved first
        for NTC, as MXNet does); returns (outputs, the last states where ``get_next_state``,
        else [])."""
        self.reset()
        inputs, axis = normalize_sequence(length, inputs, layout, True)
        if axis not in (0, 1):
            raise ValueError(f"FusedRNNCell: layout {layout!r} is not NTC or TNC")
        if axis == 1:
            inputs = sym.swapaxes(inputs, dim1=0, dim2=1)
        states = self.begin_state() if begin_state is None else begin_state
        named = {"state": states[0], **({"state_cell": states[1]} if self._mode == "lstm" else {})}
        rnn = sym.RNN(data=inputs, parameters=self._parameter, state_size=self._num_hidden,
                      num_layers=self._num_layers, bidirectional=self._bidirectional, p=self._dropout,
                      state_outputs=self._get_next_state, mode=self._mode, name=f"{self._prefix}rnn", **named)
        if not self._get_next_state:
            outputs, states = rnn, []
        else:
            outputs, states = rnn[0], [rnn[k] for k in range(1, 3 if self._mode == "lstm" else 2)]
        if axis == 1:
            outputs = sym.swapaxes(outputs, dim1=0, dim2=1)
        outputs, _ = normalize_sequence(length, outputs, layout, merge_outputs)
        return outputs, states

    def unfuse(self) -> SequentialRNNCell:
        """The same network from step-by-step cells, named so that ``unpack_weights``'s arrays
        pack into their weights (``<prefix>l0_``, ``<prefix>r0_`` ...)."""
        make = {"rnn_relu": lambda prefix: RNNCell(self._num_hidden, activation="relu", prefix=prefix),
                "rnn_tanh": lambda prefix: RNNCell(self._num_hidden, activation="tanh", prefix=prefix),
                "lstm": lambda prefix: LSTMCell(self._num_hidden, prefix=prefix),
                "gru": lambda prefix: GRUCell(self._num_hidden, prefix=prefix)}[self._mode]
        stack = SequentialRNNCell()
        for layer in range(self._num_layers):
            if self._bidirectional:
                stack.add(BidirectionalCell(make(f"{self._prefix}l{layer}_"), make(f"{self._prefix}r{layer}_"),
                                            output_prefix=f"{self._prefix}bi_l{layer}_"))
            else:
                stack.add(make(f"{self._prefix}l{layer}_"))
            if self._dropout > 0 and layer != self._num_layers - 1:
                stack.add(DropoutCell(self._dropout, prefix=f"{self._prefix}_dropout{layer}_"))
        return stack
