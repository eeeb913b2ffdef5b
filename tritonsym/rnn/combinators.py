"""MXNet's ``mx.rnn`` cells made of other cells: SequentialRNNCell (stacked layers),
BidirectionalCell, DropoutCell, and the modifiers ZoneoutCell and ResidualCell. Names and
semantics are MXNet's (``mxnet/rnn/rnn_cell.py``)."""

from __future__ import annotations

import numbers

from .. import symbol as sym
from .cells import BaseRNNCell, normalize_sequence


def _states_of(cells, what: str, *args, **kwargs) -> list:
    return sum((getattr(c, what)(*args, **kwargs) if callable(getattr(c, what)) else getattr(c, what)
                for c in cells), [])


class _CellOfCells(BaseRNNCell):
    """A cell made of ``self._cells``: their states, in order, and their weights."""

    @property
    def state_info(self):
        return _states_of(self._cells, "state_info")

    def begin_state(self, **kwargs):
        if self._modified:
            raise ValueError("after a modifier cell wraps this cell, call the modifier's begin_state")
        return _states_of(self._cells, "begin_state", **kwargs)

    def unpack_weights(self, args):
        for cell in self._cells:
            args = cell.unpack_weights(args)
        return args

    def pack_weights(self, args):
        for cell in self._cells:
            args = cell.pack_weights(args)
        return args


class SequentialRNNCell(_CellOfCells):
    """Cells stacked: each one's output is the next one's input."""

    def __init__(self, params=None):
        super().__init__(prefix="", params=params)
        self._override_cell_params = params is not None
        self._cells: list[BaseRNNCell] = []

    def add(self, cell: BaseRNNCell) -> None:
        self._cells.append(cell)
        if self._override_cell_params:
            if not cell._own_params:
                raise ValueError("SequentialRNNCell: give params to it or to its cells, not both")
            cell.params._params.update(self.params._params)
        self.params._params.update(cell.params._params)

    def __call__(self, inputs, states):
        self._counter += 1
        next_states, p = [], 0
        for cell in self._cells:
            if isinstance(cell, BidirectionalCell):
                raise ValueError("SequentialRNNCell: a BidirectionalCell cannot be stepped; use unroll")
            n = len(cell.state_info)
            inputs, state = cell(inputs, states[p:p + n])
            p += n
            next_states.append(state)
        return inputs, sum(next_states, [])

    def unroll(self, length, inputs, begin_state=None, layout="NTC", merge_outputs=None):
        self.reset()
        begin_state = self.begin_state() if begin_state is None else begin_state
        p, next_states = 0, []
        for i, cell in enumerate(self._cells):
            n = len(cell.state_info)
            inputs, states = cell.unroll(length, inputs=inputs, begin_state=begin_state[p:p + n], layout=layout,
                                         merge_outputs=None if i < len(self._cells) - 1 else merge_outputs)
            p += n
            next_states.extend(states)
        return inputs, next_states


class DropoutCell(BaseRNNCell):
    """Dropout on the inputs (no state): between stacked layers."""

    def __init__(self, dropout: float, prefix: str = "dropout_", params=None):
        super().__init__(prefix, params)
        if not isinstance(dropout, numbers.Real):
            raise TypeError(f"DropoutCell: dropout must be a number, got {dropout!r}")
        self.dropout = dropout

    @property
    def state_info(self):
        return []

    def __call__(self, inputs, states):
        if self.dropout > 0:
            inputs = sym.Dropout(data=inputs, p=self.dropout)
        return inputs, states

    def unroll(self, length, inputs, begin_state=None, layout="NTC", merge_outputs=None):
        self.reset()
        inputs, _ = normalize_sequence(length, inputs, layout, merge_outputs)
        if isinstance(inputs, sym.Symbol):
            return self(inputs, [])
        return super().unroll(length, inputs, begin_state=begin_state, layout=layout, merge_outputs=merge_outputs)


class ModifierCell(BaseRNNCell):
    """A cell wrapping another (its parameters and states are the base cell's)."""

    def __init__(self, base_cell: BaseRNNCell):
        super().__init__()
        base_cell._modified = True
        self.base_cell = base_cell

    @property
    def params(self):
        self._own_params = False
        return self.base_cell.params

    @property
    def state_info(self):
        return self.base_cell.state_info

    def begin_state(self, init_sym=sym.zeros, **kwargs):
        if self._modified:
            raise ValueError("after a modifier cell wraps this cell, call the modifier's begin_state")
        self.base_cell._modified = False
        begin = self.base_cell.begin_state(init_sym, **kwargs)
        self.base_cell._modified = True
        return begin

    def unpack_weights(self, args):
        return self.base_cell.unpack_weights(args)

    def pack_weights(self, args):
        return self.base_cell.pack_weights(args)

    def __call__(self, inputs, states):
        raise NotImplementedError


class ZoneoutCell(ModifierCell):
    """Zoneout (Krueger et al. 2016): each output and state element keeps its previous value
    with probability ``zoneout_outputs`` / ``zoneout_states`` while training."""

    def __init__(self, base_cell: BaseRNNCell, zoneout_outputs: float = 0.0, zoneout_states: float = 0.0):
        if isinstance(base_cell, BidirectionalCell) or getattr(base_cell, "_bidirectional", False):
            raise ValueError("ZoneoutCell: a bidirectional cell cannot be stepped; wrap the cells underneath")
        super().__init__(base_cell)
        self.zoneout_outputs = zoneout_outputs
        self.zoneout_states = zoneout_states
        self.prev_output = None

    def reset(self):
        super().reset()
        self.prev_output = None

    def __call__(self, inputs, states):
        next_output, next_states = self.base_cell(inputs, states)

        def mask(p, like):
            return sym.Dropout(sym.ones_like(like), p=p)
        prev_output = self.prev_output if self.prev_output is not None else sym.zeros((0, 0))
        output = (sym.where(mask(self.zoneout_outputs, next_output), next_output, prev_output)
                  if self.zoneout_outputs != 0.0 else next_output)
        if self.zoneout_states != 0.0:
            next_states = [sym.where(mask(self.zoneout_states, new), new, old)
                           for new, old in zip(next_states, states)]
        self.prev_output = output
        return output, next_states


class ResidualCell(ModifierCell):
    """The base cell's output plus its input (He et al. 2015)."""

    def __call__(self, inputs, states):
        output, states = self.base_cell(inputs, states)
        return sym.elemwise_add(output, inputs, name=f"{output.name}_plus_residual"), states

    def unroll(self, length, inputs, begin_state=None, layout="NTC", merge_outputs=None):
        self.reset()
        self.base_cell._modified = False
        outputs, states = self.base_cell.unroll(length, inputs=inputs, begin_state=begin_state, layout=layout,
                                                merge_outputs=merge_outputs)
        self.base_cell._modified = True
        merge_outputs = isinstance(outputs, sym.Symbol) if merge_outputs is None else merge_outputs
        inputs, _ = normalize_sequence(length, inputs, layout, merge_outputs)
        if merge_outputs:
            return sym.elemwise_add(outputs, inputs, name=f"{outputs.name}_plus_residual"), states
        return [sym.elemwise_add(o, i, name=f"{o.name}_plus_residual") for o, i in zip(outputs, inputs)], states


class BidirectionalCell(_CellOfCells):
    """Two cells over the sequence, one forwards and one backwards, their outputs
    concatenated per step (``<output_prefix>t<i>``, or ``<output_prefix>out`` merged)."""

    def __init__(self, l_cell: BaseRNNCell, r_cell: BaseRNNCell, params=None, output_prefix: str = "bi_"):
        super().__init__("", params=params)
        self._output_prefix = output_prefix
        if params is not None:
            if not (l_cell._own_params and r_cell._own_params):
                raise ValueError("BidirectionalCell: give params to it or to its cells, not both")
            l_cell.params._params.update(self.params._params)
            r_cell.params._params.update(self.params._params)
        self.params._params.update(l_cell.params._params)
        self.params._params.update(r_cell.params._params)
        self._cells = [l_cell, r_cell]

    def __call__(self, inputs, states):
        raise NotImplementedError("BidirectionalCell cannot be stepped; use unroll")

    def unroll(self, length, inputs, begin_state=None, layout="NTC", merge_outputs=None):
        self.reset()
        inputs, axis = normalize_sequence(length, inputs, layout, False)
        states = self.begin_state() if begin_state is None else begin_state
        l_cell, r_cell = self._cells
        n = len(l_cell.state_info)
        l_outputs, l_states = l_cell.unroll(length, inputs=inputs, begin_state=states[:n], layout=layout,
                                            merge_outputs=merge_outputs)
        r_outputs, r_states = r_cell.unroll(length, inputs=list(reversed(inputs)), begin_state=states[n:],
                                            layout=layout, merge_outputs=merge_outputs)
        if merge_outputs is None:
            merge_outputs = isinstance(l_outputs, sym.Symbol) and isinstance(r_outputs, sym.Symbol)
            if not merge_outputs:
                if isinstance(l_outputs, sym.Symbol):
                    l_outputs = list(sym.SliceChannel(l_outputs, axis=axis, num_outputs=length, squeeze_axis=1))
                if isinstance(r_outputs, sym.Symbol):
                    r_outputs = list(sym.SliceChannel(r_outputs, axis=axis, num_outputs=length, squeeze_axis=1))
        if merge_outputs:
            l_outputs, r_outputs = [l_outputs], [sym.reverse(r_outputs, axis=axis)]
        else:
            r_outputs = list(reversed(r_outputs))
        outputs = [sym.Concat(l_o, r_o, dim=1 + merge_outputs,
                              name=f"{self._output_prefix}out" if merge_outputs else f"{self._output_prefix}t{i}")
                   for i, (l_o, r_o) in enumerate(zip(l_outputs, r_outputs))]
        return (outputs[0] if merge_outputs else outputs), [l_states, r_states]
