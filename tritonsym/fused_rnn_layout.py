"""Where each weight of MXNet's fused RNN lives in its one flat ``parameters`` vector (MXNet's
layout, which is cuDNN's): every layer's and direction's input weights (gates x hidden,
width) then hidden weights (gates x hidden, hidden), then every layer's and direction's
input bias then hidden bias; each block's rows are its gates in order, ``hidden`` rows each.
An LSTM with projections (``projection`` P units, MXNet's ``projection_size``) reads the
projected state: its hidden weights are (gates x hidden, P) and each layer's and
direction's weights end with the projection's (P, hidden), which has no bias; a layer above
the first reads directions x P features.
The RNN operator, ``ts.init.FusedRNN`` and ``ts.rnn.FusedRNNCell`` read it from here."""

from __future__ import annotations

import math

# Each mode's gates in MXNet's order and as its per-gate names spell them (lstm_l0_i2h_f_bias).
GATE_NAMES = {"rnn_relu": ("",), "rnn_tanh": ("",), "lstm": ("_i", "_f", "_c", "_o"), "gru": ("_r", "_z", "_o")}


def parameter_pieces(mode: str, layers: int, directions: int, inputs: int, hidden: int,
                     projection: int | None = None) -> list[tuple]:
    """(layer, direction, kind, shape) of each piece in order; kind is "wx", "wh", "bx", "bh"
    or, with a projection, "wr"."""
    rows, state = len(GATE_NAMES[mode]) * hidden, projection or hidden
    pieces = []
    for kinds in (("wx", "wh", "wr") if projection else ("wx", "wh"), ("bx", "bh")):
        for layer in range(layers):
            width = inputs if layer == 0 else directions * state
            for direction in range(directions):
                for kind in kinds:
                    shape = {"wx": (rows, width), "wh": (rows, state), "wr": (state, hidden)}.get(kind, (rows,))
                    pieces.append((layer, direction, kind, shape))
    return pieces


def gate_pieces(mode: str, layers: int, directions: int, inputs: int, hidden: int,
                projection: int | None = None) -> list[tuple[str, int, tuple]]:
    """(MXNet's per-gate name, start, shape) of each gate's rows of each piece, in order:
    ``l0_i2h_f_weight`` (hidden, width), ``r1_h2h_c_bias`` (hidden,) ... (prefix them with the
    cell's prefix); a projection's weights are one piece, ``l0_h2r_weight`` (P, hidden), as
    Gluon's LSTM names them."""
    gates, at = [], 0
    for layer, direction, kind, shape in parameter_pieces(mode, layers, directions, inputs, hidden, projection):
        group, what = ("i2h" if kind in ("wx", "bx") else "h2h"), ("weight" if kind[0] == "w" else "bias")
        if kind == "wr":
            gates.append((f"{'r' if direction else 'l'}{layer}_h2r_weight", at, shape))
            at += math.prod(shape)
            continue
        for gate in GATE_NAMES[mode]:
            gates.append((f"{'r' if direction else 'l'}{layer}_{group}{gate}_{what}", at, (hidden, *shape[1:])))
            at += math.prod(shape[1:]) * hidden
    return gates


def parameter_count(mode: str, layers: int, directions: int, inputs: int, hidden: int,
                    projection: int | None = None) -> int:
    return sum(math.prod(shape) for *_, shape in parameter_pieces(mode, layers, directions, inputs, hidden,
                                                                  projection))


def inputs_of(count: int, mode: str, layers: int, directions: int, hidden: int,
              projection: int | None = None) -> int | None:
    """The data's features of an RNN whose flat parameters hold ``count`` numbers, or None
    where no input size gives that count."""
    base = parameter_count(mode, layers, directions, 0, hidden, projection)
    per_feature = parameter_count(mode, layers, directions, 1, hidden, projection) - base
    if count < base or (count - base) % per_feature:
        return None
    return (count - base) // per_feature
