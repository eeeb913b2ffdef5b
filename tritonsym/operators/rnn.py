"""RNN (MXNet's fused recurrent operator, its cuDNN ``RNN``): ``num_layers`` layers of
LSTM, GRU or vanilla (tanh, relu) cells over a (seq, batch, features) sequence, each layer
``bidirectional`` or not, every weight in one flat ``parameters`` vector laid out as
MXNet and cuDNN lay it out (``tritonsym/fused_rnn_layout.py``), the initial states ``state`` (and
lstm's ``state_cell``) of shape (layers x directions, batch, state_size); outputs the top
layer's hidden states (seq, batch, directions x state_size) and, with ``state_outputs``,
every layer's last hidden (and cell) states.

Each layer and direction runs as: one product for the input projections of every step
(``x W_x^T + b_x`` for the whole sequence, FullyConnected's kernel), then per step the
hidden projection (``h W_h^T + b_h``, the same kernel) and the cell kernel
(``ops/rnn.py``). Both directions' input projections are made before either recurrence
writes, so a layer's output may go where its input was: an inference forward writes
every layer into ``output``. A training forward keeps, for backward, each layer's output
below the top (``hidden``), lstm's cell states (``cells``) and what the cell kernel keeps
(``gates``). Backward runs the layers from the top, each direction's steps in reverse:
the cell kernel's gradient, then the hidden projection's input gradient (the product by
W_h) carried to the step before; the weight and bias gradients and the layer input's
gradient are then whole-sequence products, one each.

``p`` drops each layer's output but the top's (MXNet's ``p``) in a training forward: the
next layer reads ``Dropout(output)`` (the Dropout kernels, one stream a layer: ``<node>/l<n>``),
while the recurrence, the kept ``hidden`` and the last states keep the undropped output;
backward draws the same masks again (the dropped input for the weight gradient, and the
mask on the gradient that goes down), so dropout keeps nothing more for backward.

``use_sequence_length`` adds an input ``sequence_length`` (batch,): each sequence runs
only over its first ``length`` steps, as cuDNN's padded sequences (MXNet's GPU RNN) and
torch's packed ones run: the forward direction over steps 0 .. length - 1, the reverse one
from step length - 1 down; the output past a length is 0 and the last states are those of
the sequence's last step (the initial states for a length of 0). The cell kernel carries a
finished row's states through the later steps (the reverse direction's through the
earlier ones, until its sequence starts), so every layer's output holds, past a length,
the state the recurrence goes on from, and the top layer's is masked into ``output`` by
SequenceMask's kernel; a training bind keeps the top's unmasked output too (one more
(seq, batch, directions x state_size) array), which backward reads as the lower layers'.
Backward passes the states' gradients through the carried steps, where the projections'
gradients are 0. A length that is not a whole number in [0, seq] makes its sequence's
output, last states and gradients NaN (and so the parameters' gradient); the padding past
a length is never read in forward, but the weights' gradient multiplies it by 0, so NaN
padding makes it NaN; likewise the products of backward run on every row, so a NaN weight
makes the gradients of the padding and of a never-run sequence's states NaN (as autograd
of the same masked recurrence gives).

``projection_size`` P projects an lstm's h (LSTMP, torch's ``proj_size``): after each step's
cell kernel, ``h = h_cell W_r^T`` (the FullyConnected kernel, no bias) is what the output,
the next step's hidden product and the layer above read, P units wide; the cell state stays
``state_size`` wide. A training bind keeps every step's h_cell (``unprojected``) for W_r's
gradient. Backward first fills every step's projected-h gradient with the output's (and the
last state's head), then each step: that gradient through W_r to h_cell's, the cell
kernel's gradient on h_cell's alone, and the hidden product adding into the step before's
projected-h gradient; W_r's gradient is one whole-sequence product. With
``use_sequence_length`` a row past its sequence keeps its projected state (the carry
kernel, after the projection: at a sequence's start the reverse direction's state is the
initial one, which projects nothing) and its h_cell (zeros before its first step, so W_r's
gradient never reads the padding); backward first moves such a row's projected-h gradient
whole to the step before's (the carry kernel again), and the output's gradient past a
length is masked. lstm only: other modes are refused by name.

``lstm_state_clip_min`` / ``lstm_state_clip_max`` clip an lstm's cell state after each step
(cuDNN's cell clipping, which MXNet's GPU RNN sets; the big LSTMP language models use it):
``c = clip(f c_prev + i g, min, max)``, and h and the next step read the clipped c. Its
gradient is 0 where the clip held c (the unclipped c, recomputed from the kept gates, below
min or above max) and passes elsewhere, as the clip operator's. A NaN cell state stays NaN:
``lstm_state_clip_nan=True`` (clip a NaN to a bound) is refused by name. MXNet 1.9.1's CPU
refuses clipping altogether, so it is checked against autograd of the same recurrence.
"""

from __future__ import annotations

import torch

from .. import fused_rnn_layout as layout
from .. import random
from ..initializer import FusedRNN
from ..ops import dropout as dropout_kernels
from ..ops import fully_connected as products
from ..ops import memory, sequence_mask
from ..ops import rnn as kernels
from .registry import (
    BackwardArgs,
    ForwardArgs,
    OpDef,
    Param,
    ShapeMismatch,
    index_dtype,
    positive,
    register,
    same_dtype_everywhere,
    unify,
)


def _unsupported(what: str):
    return lambda value: f"is not supported ({what})" if value else None


def _directions(p) -> int:
    return 2 if p["bidirectional"] else 1


def _pieces(p, inputs: int) -> list[tuple]:
    return layout.parameter_pieces(p["mode"], p["num_layers"], _directions(p), inputs, p["state_size"],
                                   p["projection_size"])


def _width(p) -> int:
    """The hidden state's width as the recurrence, the output and the layer above read it:
    the projection's with ``projection_size``."""
    return p["projection_size"] or p["state_size"]


def _cut(p, flat: torch.Tensor, inputs: int) -> dict:
    """Views of ``flat`` by (layer, direction, kind)."""
    views, at = {}, 0
    for layer, direction, kind, shape in _pieces(p, inputs):
        size = torch.Size(shape).numel()
        views[layer, direction, kind] = flat[at:at + size].view(shape)
        at += size
    return views


def _state_count(p) -> int:
    return 2 if p["mode"] == "lstm" else 1


def _lengths_input(p) -> int | None:
    """The index of ``sequence_length`` among the inputs, or None."""
    return 2 + _state_count(p) if p["use_sequence_length"] else None


def _infer_shape(p, in_shapes, out_shapes):
    data = unify("data", in_shapes[0], None)
    hidden, width, directions, layers = p["state_size"], _width(p), _directions(p), p["num_layers"]
    if data is not None and len(data) != 3:
        raise ShapeMismatch(f"data {tuple(data)} must be (sequence length, batch, features)")
    batch = data[1] if data is not None else 0
    lengths = None
    if p["use_sequence_length"]:
        lengths = unify("sequence_length", in_shapes[-1], None if data is None else (data[1],))
        if lengths is not None and len(lengths) != 1:
            raise ShapeMismatch(f"sequence_length {tuple(lengths)} must be (batch,)")
        batch = batch or (lengths[0] if lengths is not None else 0)
    # h's states are (layers x directions, batch, width), lstm's cell states the same with
    # state_size: a projected lstm's differ. Twice round: a batch any of them knows reaches all.
    widths = [("state", width), ("state_cell", hidden)][:_state_count(p)]
    for _ in range(2):
        states = []
        for k, (name, units) in enumerate(widths):
            states.append(unify(name, in_shapes[2 + k], (layers * directions, batch, units)))
            batch = batch or states[-1][1]
        for k in range(1, len(out_shapes)):
            states[k - 1] = unify("the last states", out_shapes[k], states[k - 1])
            batch = batch or states[k - 1][1]
    out = None
    if data is not None:
        data = (data[0], data[1] or batch, data[2])
        out = unify("output", out_shapes[0], (data[0], data[1], directions * width))
        parameters = unify("parameters", in_shapes[1], (layout.parameter_count(
            p["mode"], layers, directions, data[2], hidden, p["projection_size"]),))
        if data[2] == 0:
            raise ShapeMismatch(f"data {tuple(data)} must have its features known")
    else:
        parameters = in_shapes[1]
        out = out_shapes[0]
    if p["use_sequence_length"] and batch:
        lengths = (batch,)
    new_in = [data, parameters, *states] + ([lengths] if p["use_sequence_length"] else [])
    return new_in, [out, *states[:len(out_shapes) - 1]]


def _infer_type(p, in_types, out_types):
    lengths = _lengths_input(p)
    if lengths is None:
        return same_dtype_everywhere(p, in_types, out_types)
    new_in, new_out = same_dtype_everywhere(p, in_types[:lengths], out_types)
    return [*new_in, index_dtype(in_types[lengths], new_in[0])], new_out


def _keeps(p) -> int:
    return kernels.KEPT[p["mode"]]


def _saved(p, shapes, dtypes):
    steps, batch, _ = shapes[0]
    hidden, directions, layers = p["state_size"], _directions(p), p["num_layers"]
    saved = {}
    if _keeps(p):
        saved["gates"] = ((layers * directions, steps, batch, _keeps(p) * hidden), dtypes[0])
    if p["mode"] == "lstm":
        saved["cells"] = ((layers * directions, steps, batch, hidden), dtypes[0])
    kept_layers = layers if p["use_sequence_length"] else layers - 1  # the top's unmasked output too
    if kept_layers:
        saved["hidden"] = ((kept_layers, steps, batch, directions * _width(p)), dtypes[0])
    if p["projection_size"]:  # h before its projection: the projection weights' gradient reads it
        saved["unprojected"] = ((layers * directions, steps, batch, hidden), dtypes[0])
    return saved


def _forward_temps(p, shapes, dtypes):
    steps, batch, _ = shapes[0]
    hidden, directions = p["state_size"], _directions(p)
    width = kernels.GATES[p["mode"]] * hidden
    temps = {"projection": ((directions, steps, batch, width), dtypes[0]),
             "recurrent": ((batch, width), dtypes[0])}
    if p["mode"] == "lstm":
        temps["cell"] = ((2, batch, hidden), dtypes[0])  # an inference forward's c, step by step
    if p["projection_size"]:  # an inference forward's h before its projection, step by step
        temps["unprojected"] = ((2, batch, hidden), dtypes[0])
    if _dropping(p):
        temps["dropped"] = ((steps, batch, directions * _width(p)), dtypes[0])
    return temps


def _backward_temps(p, shapes, dtypes):
    steps, batch, _ = shapes[0]
    hidden, width, directions = p["state_size"], _width(p), _directions(p)
    temps = {"gradient": ((directions, steps, batch, kernels.GRADIENT_GATES[p["mode"]] * hidden), dtypes[0]),
             "grad_h": ((batch, width), dtypes[0])}
    if p["mode"] == "lstm":
        temps["grad_c"] = ((batch, hidden), dtypes[0])
    if p["projection_size"]:
        # every step's projected h's gradient (the projection weights' gradient reads them
        # all), and one step's h's before the projection
        temps["grad_projected"] = ((directions, steps, batch, width), dtypes[0])
        temps["grad_unprojected"] = ((batch, hidden), dtypes[0])
    if p["num_layers"] > 1:
        temps["grad_layer"] = ((steps, batch, directions * width), dtypes[0])
    if _dropping(p):
        temps["dropped"] = ((steps, batch, directions * width), dtypes[0])
    return temps


def _dropping(p) -> bool:
    """Does a training forward drop between layers?"""
    return p["p"] > 0 and p["num_layers"] > 1


def _drop(p, node: str, layer: int, source: torch.Tensor, target: torch.Tensor) -> list:
    """target = Dropout(source) with the mask of the output of ``layer`` (the input of the
    layer above); on gradients, the same mask."""
    return dropout_kernels.plan_dropout(source, target, random.device_state(source.device), p=p["p"],
                                        salt=random.salt(f"{node}/l{layer}"))


def _order(direction: int, steps: int) -> list[int]:
    """The steps of a direction, in the order it runs them."""
    return list(range(steps - 1, -1, -1)) if direction else list(range(steps))


def _half(t: torch.Tensor, direction: int, hidden: int) -> torch.Tensor:
    """A direction's columns of a layer's output (..., directions x hidden)."""
    return t[..., direction * hidden:(direction + 1) * hidden]


def _forward(a: ForwardArgs):
    p = a.params
    mode, width, directions, layers = p["mode"], _width(p), _directions(p), p["num_layers"]
    data, flat, state = a.inputs[:3]
    state_cell = a.inputs[3] if mode == "lstm" else None
    lengths = a.inputs[_lengths_input(p)] if p["use_sequence_length"] else None
    steps = data.shape[0]
    weights = _cut(p, flat, data.shape[2])
    projecting = bool(p["projection_size"])
    training = bool(a.saved)  # this bind runs backward: keep what it reads
    launches, x = [], data
    for layer in range(layers):
        if layer > 0 and a.is_train and _dropping(p):
            launches += _drop(p, a.node, layer - 1, x, a.temps["dropped"])
            x = a.temps["dropped"]
        for direction in range(directions):
            launches += products.plan_fully_connected_forward(x, weights[layer, direction, "wx"],
                                                              weights[layer, direction, "bx"],
                                                              a.temps["projection"][direction])
        kept = training and (layer < layers - 1 or lengths is not None)
        out = a.saved["hidden"][layer] if kept else a.outputs[0]
        for direction in range(directions):
            k = layer * directions + direction
            h_out, h = _half(out, direction, width), state[k]
            c = state_cell[k] if mode == "lstm" else None
            for number, t in enumerate(_order(direction, steps)):
                launches += products.plan_fully_connected_forward(h, weights[layer, direction, "wh"],
                                                                  weights[layer, direction, "bh"],
                                                                  a.temps["recurrent"])
                c_out = None
                if mode == "lstm":
                    c_out = a.saved["cells"][k, t] if training else a.temps["cell"][number % 2]
                keep = a.saved["gates"][k, t] if training and _keeps(p) else None
                cell_h, cell_h_before = h_out[t], h
                if projecting:  # the cell's h, then its projection: the state the recurrence reads
                    cell_h, cell_h_before = _unprojected(a, k, number, _order(direction, steps), training, lengths)
                    if cell_h_before is cell_h:  # the first step: a finished row carries zeros
                        launches += memory.plan_fill(cell_h, 0.0)
                launches += kernels.plan_cell_forward(mode, a.temps["projection"][direction, t], a.temps["recurrent"],
                                                      cell_h_before, cell_h, c, c_out, keep, lengths, t, steps,
                                                      _clip(p))
                if projecting:
                    launches += products.plan_fully_connected_forward(cell_h, weights[layer, direction, "wr"], None,
                                                                      h_out[t])
                    if lengths is not None:  # a row past its sequence keeps its projected state
                        launches += kernels.plan_carry(h_out[t], h, lengths, t, steps)
                h, c = h_out[t], c_out
            if p["state_outputs"]:
                launches += memory.plan_copy(h, a.outputs[1][k])
                if mode == "lstm":
                    launches += memory.plan_copy(c, a.outputs[2][k])
        x = out
    if lengths is not None:  # the steps past each length: 0 (NaN for a wrong length)
        launches += sequence_mask.plan_length_mask(x, lengths, a.outputs[0], 0, 0.0, batch_axis=1)
    return launches


def _unprojected(a: ForwardArgs, k: int, number: int, order: list[int], training: bool, lengths) -> tuple:
    """A projected lstm's h before its projection at the step ``order[number]`` and, with
    lengths, the one the step before (which a row past its sequence carries; the step's
    own, zero-filled, at the first step), else None (lstm reads it only to carry it)."""
    if training:
        here = a.saved["unprojected"][k, order[number]]
        before = a.saved["unprojected"][k, order[number - 1]] if number else here
    else:
        here, before = a.temps["unprojected"][number % 2], a.temps["unprojected"][(number + 1) % 2]
        before = before if number else here
    return here, before if lengths is not None else None


def _backward(a: BackwardArgs):
    p = a.params
    mode, hidden, width, directions, layers = p["mode"], p["state_size"], _width(p), _directions(p), p["num_layers"]
    data, flat, state = a.inputs[:3]
    state_cell = a.inputs[3] if mode == "lstm" else None
    lengths = a.inputs[_lengths_input(p)] if p["use_sequence_length"] else None
    projecting = bool(p["projection_size"])
    steps, _, features = data.shape
    weights = _cut(p, flat, features)
    grads = _cut(p, a.in_grads[1], features) if a.in_grads[1] is not None else None
    gradient, grad_h, grad_c = a.temps["gradient"], a.temps["grad_h"], a.temps.get("grad_c")
    gru = mode == "gru"
    launches = []
    for layer in reversed(range(layers)):
        top = layer == layers - 1
        out = a.outputs[0] if top and lengths is None else a.saved["hidden"][layer]
        x = data if layer == 0 else a.saved["hidden"][layer - 1]
        grad_out = a.out_grads[0] if top else a.temps["grad_layer"]
        dropped = layer > 0 and _dropping(p)
        if dropped and grads is not None:  # the weight gradient reads the input as the forward did
            launches += _drop(p, a.node, layer - 1, x, a.temps["dropped"])
            x = a.temps["dropped"]
        for direction in range(directions):
            k = layer * directions + direction
            order = _order(direction, steps)
            h_out = _half(out, direction, width)
            if projecting:
                launches += _start_projected(a, k, _half(grad_out, direction, width),
                                             a.temps["grad_projected"][direction], order[-1], lengths)
                if lengths is not None:  # the initial state's gradient gathers what carried rows pass back
                    launches += memory.plan_fill(grad_h, 0.0)
            else:
                launches += _start(a, 1, k, grad_h)
            if mode == "lstm":
                launches += _start(a, 2, k, grad_c)
            for number in reversed(range(steps)):
                t = order[number]
                h_prev = state[k] if number == 0 else h_out[order[number - 1]]
                c_prev = None
                if mode == "lstm":
                    c_prev = state_cell[k] if number == 0 else a.saved["cells"][k, order[number - 1]]
                step_grad = gradient[direction, t]
                step_out_grad, step_grad_h, grad_before = _half(grad_out[t], direction, width), grad_h, grad_h
                if projecting:  # the projected h's whole gradient, through W_r to the cell's h
                    step_out_grad, step_grad_h = None, a.temps["grad_unprojected"]
                    if number > 0:  # added to the step before's output gradient, already there
                        grad_before = a.temps["grad_projected"][direction, order[number - 1]]
                    if lengths is not None:  # a row past its sequence passes its gradient on whole
                        launches += kernels.plan_carry(a.temps["grad_projected"][direction, t], grad_before, lengths,
                                                       t, steps, backward=True)
                    launches += products.plan_fully_connected_backward(
                        a.temps["grad_projected"][direction, t], None, weights[layer, direction, "wr"],
                        grad_x=step_grad_h)
                launches += kernels.plan_cell_backward(
                    mode, step_out_grad, step_grad_h, step_grad,
                    keep=a.saved["gates"][k, t] if _keeps(p) else None, grad_c=grad_c,
                    c_out=a.saved["cells"][k, t] if mode == "lstm" else None, c_prev=c_prev, h_out=h_out[t],
                    h_prev=h_prev, lengths=lengths, step=t, steps=steps, clip=_clip(p))
                for rows, columns in _hidden_parts(mode, hidden):
                    launches += products.plan_fully_connected_backward(
                        step_grad[:, columns], None, weights[layer, direction, "wh"][rows], grad_x=grad_before,
                        accumulate_x=gru or lengths is not None or rows.start > 0
                        or grad_before is not grad_h)
            launches += _finish(a.in_grads[2], a.accumulate[2], k, grad_h)
            if mode == "lstm":
                launches += _finish(a.in_grads[3], a.accumulate[3], k, grad_c)
        if grads is not None:
            for direction in range(directions):
                k = layer * directions + direction
                launches += _weight_gradients(p, layer, direction, gradient[direction], x,
                                              _half(out, direction, width), state[k], grads, a.accumulate[1])
                if projecting:  # W_r's: every step's projected h's gradient against the h it projected
                    launches += products.plan_fully_connected_backward(
                        a.temps["grad_projected"][direction], a.saved["unprojected"][k], None,
                        grad_weight=grads[layer, direction, "wr"], accumulate_weight=a.accumulate[1])
        if layer > 0 or a.in_grads[0] is not None:
            target = a.in_grads[0] if layer == 0 else a.temps["grad_layer"]
            for direction in range(directions):
                input_part = gradient[direction][..., :kernels.GATES[mode] * hidden]
                launches += products.plan_fully_connected_backward(
                    input_part, None, weights[layer, direction, "wx"], grad_x=target,
                    accumulate_x=direction > 0 or (layer == 0 and a.accumulate[0]))
            if dropped:  # through the mask, to the output of the layer below
                launches += _drop(p, a.node, layer - 1, target, target)
    return launches


def _hidden_parts(mode: str, hidden: int) -> list[tuple[slice, slice]]:
    """(rows of W_h, columns of the step's gradient) that multiply: gru's n rows take the
    hidden projection's own n gradient (its fourth column block); every other mode's are
    the gates' gradient as it is."""
    width = kernels.GATES[mode] * hidden
    if mode == "gru":
        return [(slice(0, 2 * hidden), slice(0, 2 * hidden)), (slice(2 * hidden, width), slice(width, width + hidden))]
    return [(slice(0, width), slice(0, width))]


def _start(a: BackwardArgs, output: int, k: int, into: torch.Tensor) -> list:
    """The recurrence's gradient before the last step: the head gradient of the last state
    (output 1 or 2) where the operator outputs it, else zero."""
    if a.params["state_outputs"] and a.out_grads[output] is not None:
        return memory.plan_copy(a.out_grads[output][k], into)
    return memory.plan_fill(into, 0.0)


def _start_projected(a: BackwardArgs, k: int, grad_out: torch.Tensor, grad_projected: torch.Tensor,
                     last: int, lengths: torch.Tensor | None) -> list:
    """A projected lstm's gradient of every step's h from the output's (0 past each length:
    the output there is masked), before the recurrence adds to it step by step; its last
    step's with the head gradient of the last state (carried back to the sequence's last
    step by the steps past it)."""
    launches = memory.plan_copy(grad_out, grad_projected)
    if lengths is not None:
        launches += sequence_mask.plan_length_mask(grad_projected, lengths, grad_projected, 0, 0.0, batch_axis=1)
    if a.params["state_outputs"] and a.out_grads[1] is not None:
        launches += memory.plan_copy(a.out_grads[1][k], grad_projected[last], accumulate=True)
    return launches


def _finish(grad: torch.Tensor | None, accumulate: bool, k: int, source: torch.Tensor) -> list:
    return [] if grad is None else memory.plan_copy(source, grad[k], accumulate=accumulate)


def _weight_gradients(p, layer, direction, gradient, x, h_out, h_first, grads, accumulate) -> list:
    """W_x's and b_x's gradients from the whole sequence's input-projection gradients, W_h's
    and b_h's from the hidden ones against the state each step read: the layer's output one
    step back in the direction's order, the initial state at its first step."""
    mode, hidden = p["mode"], p["state_size"]
    steps = gradient.shape[0]
    width = kernels.GATES[mode] * hidden
    piece = {kind: grads[layer, direction, kind] for kind in ("wx", "wh", "bx", "bh")}
    launches = products.plan_fully_connected_backward(
        gradient[..., :width], x, None, grad_weight=piece["wx"], grad_bias=piece["bx"], accumulate_weight=accumulate,
        accumulate_bias=accumulate)
    first = steps - 1 if direction else 0
    later = slice(0, steps - 1) if direction else slice(1, steps)
    earlier = slice(1, steps) if direction else slice(0, steps - 1)
    for rows, columns in _hidden_parts(mode, hidden):
        part = gradient[..., columns]
        if steps > 1:
            launches += products.plan_fully_connected_backward(
                part[later], h_out[earlier], None, grad_weight=piece["wh"][rows], grad_bias=piece["bh"][rows],
                accumulate_weight=accumulate, accumulate_bias=accumulate)
        launches += products.plan_fully_connected_backward(
            part[first], h_first, None, grad_weight=piece["wh"][rows], grad_bias=piece["bh"][rows],
            accumulate_weight=accumulate or steps > 1, accumulate_bias=accumulate or steps > 1)
    return launches


def _clip_options():
    return [
        Param("lstm_state_clip_min", "optional_float", None, doc="the lower bound of an lstm's cell state (cuDNN's "
              "cell clipping; with lstm_state_clip_max)"),
        Param("lstm_state_clip_max", "optional_float", None, doc="the upper bound of an lstm's cell state"),
        Param("lstm_state_clip_nan", bool, False, doc="clip a NaN cell state to a bound (not supported: NaN in "
              "gives NaN out)", check=_unsupported("a NaN cell state stays NaN")),
    ]


def _clip(p) -> tuple[float, float] | None:
    """(low, high) of lstm's cell clipping, or None."""
    if p["lstm_state_clip_min"] is None:
        return None
    return p["lstm_state_clip_min"], p["lstm_state_clip_max"]


def _check_params(p) -> str | None:
    low, high = p["lstm_state_clip_min"], p["lstm_state_clip_max"]
    if (low is None) != (high is None):
        return f"lstm_state_clip_min={low!r} and lstm_state_clip_max={high!r} must be given together"
    if low is not None and p["mode"] != "lstm":
        return f"lstm_state_clip_min={low!r} clips an lstm's cell state; mode={p['mode']!r} has none"
    if low is not None and not low <= high:
        return f"lstm_state_clip_min={low!r} must not exceed lstm_state_clip_max={high!r}"
    projection = p["projection_size"]
    if projection is None:
        return None
    if p["mode"] != "lstm":
        return f"projection_size={projection} needs mode='lstm' (it projects the lstm's h), not mode={p['mode']!r}"
    if projection > p["state_size"]:
        return f"projection_size={projection} must not exceed state_size={p['state_size']}"
    return None


def _initializers(p) -> dict[str, str]:
    return {"parameters": FusedRNN(None, p["state_size"], p["num_layers"], p["mode"], p["bidirectional"],
                                   projection_size=p["projection_size"]).dumps()}


register(OpDef(
    name="RNN",
    doc="A fused recurrent network (MXNet's cuDNN RNN): num_layers layers of lstm, gru, rnn_tanh or rnn_relu cells "
        "over data (seq, batch, features), every weight in one flat parameters vector (MXNet's layout), initial "
        "states (layers x directions, batch, state_size); outputs (seq, batch, directions x state_size) and, with "
        "state_outputs, the last states.",
    params=[
        Param("state_size", int, doc="the hidden state's size", check=positive),
        Param("num_layers", int, doc="how many layers", check=positive),
        Param("mode", str, choices=kernels.MODES, doc="the cell"),
        Param("bidirectional", bool, False, doc="each layer also runs the sequence backwards"),
        Param("state_outputs", bool, False, doc="also output the last hidden (and lstm cell) states"),
        Param("p", float, 0.0, doc="the probability of dropping an element of each layer's output but the top's, "
              "when training", check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)"),
        Param("use_sequence_length", bool, False, doc="take an input sequence_length (batch,): each sequence runs "
              "over its first length steps only, the output past it 0"),
        Param("projection_size", "optional_int", None, doc="an lstm's hidden state projected to this many units "
              "(LSTMP): the output, the recurrence and the layer above read h W_r^T",
              check=lambda v: None if v is None or v > 0 else "must be positive"),
        *_clip_options(),
    ],
    input_names=("data", "parameters", "state", "state_cell", "sequence_length"),
    active_inputs=lambda p: ["data", "parameters", "state", "state_cell"][:2 + _state_count(p)] + (
        ["sequence_length"] if p["use_sequence_length"] else []),
    infer_shape=_infer_shape,
    infer_type=_infer_type,
    forward=_forward,
    backward=_backward,
    # with lengths backward reads the kept unmasked output, not the output
    backward_needs=lambda p, epilogue: (tuple(range(2 + _state_count(p) + p["use_sequence_length"])),
                                        () if p["use_sequence_length"] else (0,)),
    no_grad_inputs=lambda p: {"sequence_length"},
    class_inputs=lambda p, shapes: {_lengths_input(p): shapes[0][0] + 1} if p["use_sequence_length"] and shapes[0]
    else {},
    num_outputs=lambda p: (3 if p["mode"] == "lstm" else 2) if p["state_outputs"] else 1,
    output_names=lambda p: ["output", "state_output", "statecell_output"][
        :(3 if p["mode"] == "lstm" else 2) if p["state_outputs"] else 1],
    saved_for_backward=_saved,
    forward_temps=_forward_temps,
    backward_temps=_backward_temps,
    input_initializers=_initializers,
    forward_in_training=_dropping,
    draws_random=_dropping,
    check_params=_check_params,
))
