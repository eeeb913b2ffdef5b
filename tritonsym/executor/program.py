"""From a symbol to the values and steps of one training step.

``build_program`` turns a symbol, its inferred shapes and dtypes and the gradient requests
into:

- ``Value`` objects: every argument, argument gradient, operator output, gradient and
  scratch buffer, each with shape and dtype (storage comes later, from ``memory.py``);
- forward ``Step``s in topological order, after the fusion passes (an activation whose
  only input is a FullyConnected's only use becomes that FullyConnected's epilogue; an
  activation read only by a product becomes a GatedActivation with it, ``gates.py``;
  ``fuse=False`` skips both, which is how the planner's naive baseline is counted);
- backward ``Step``s in reverse order, built from each operator's handwritten backward.
  The first gradient contribution to a value writes it, later ones add into it
  (a value read twice, or ``grad_req='add'``), so no gradient needs a buffer of its own
  for summing. Operators with no gradient flowing into them are skipped.
- A fused activation's gradient, dy * act'(y), is applied before the products of the
  step it is fused into, never inside them: in the epilogue of the backward step that
  computes dy, when that step's operator can finish it there (``grad_epilogue_inputs``:
  a FullyConnected reading y as its data, y read nowhere else), which also sums the
  fused step's bias gradient (``bias_input``); otherwise in a backward step of the
  activation's own operator, in place over dy. Either way the fused step's backward runs
  plain products, and y is not kept alive through them (the memory bound of an MLP is
  three activation-sized arrays, not four).

Storage is decided later, by the memory planner (``planner.py``); ``mirror.py`` may add
recompute steps (phase ``recompute``: a forward step re-run in backward) to the backward list.

Operators are known only through their registry entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..base import BindError, dtype_name
from ..operators.registry import GradEpilogue, OpDef
from ..ops._common import EXACT_INTEGERS
from ..symbol.graph import Node
from .gates import fuse_gates

if TYPE_CHECKING:
    from ..symbol.symbol import Symbol


@dataclass(eq=False)
class Value:
    """One array of the bound graph. ``alias_of`` marks a view of another value's storage:
    under another shape (a reshape: the same elements in the same order); with
    ``permute``, that value's axes in this order (a transpose that costs nothing, see
    ``_permutations_as_views``); with ``window``, this value's elements of that value's
    storage from that element on (a slice along a leading axis, ``OpDef.output_windows``)."""

    name: str
    shape: tuple
    dtype: torch.dtype
    kind: str  # arg | aux | arg_grad | internal | grad | head_grad | temp | recompute | saved
    alias_of: "Value | None" = None
    tensor: torch.Tensor | None = None
    permute: tuple[int, ...] | None = None
    window: int | None = None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def root(self) -> "Value":
        value = self
        while value.alias_of is not None:
            value = value.alias_of
        return value

    def unpermuted(self) -> "Value":
        """The value this one is a permuted view of, through every permutation (itself if
        none): the one array their gradients are written into, in that value's layout."""
        value = self
        while value.permute is not None:
            value = value.alias_of
        return value


@dataclass(eq=False)
class Step:
    """One operator application, forward or backward, and its pre-built launches."""

    name: str
    op: OpDef
    phase: str  # forward | backward | recompute
    params: dict
    inputs: list[Value]
    outputs: list[Value]
    epilogue: tuple[str, float] | None = None
    out_grads: list[Value | None] = field(default_factory=list)
    in_grads: list[Value | None] = field(default_factory=list)
    accumulate: list[bool] = field(default_factory=list)
    temps: dict[str, Value] = field(default_factory=dict)
    launches: list = field(default_factory=list)
    # A forward's launches when training, where they differ (``OpDef.forward_in_training``:
    # BatchNorm's batch statistics, Dropout's mask); None where they are ``launches``.
    train_launches: list | None = None
    # The output the fused activation replaced (FullyConnected's own, before relu): no
    # buffer here, counted only by the naive baseline, which is the unfused graph.
    fused_away: Value | None = None
    # Gradients of outputs nothing reads (a multi-output operator's unused outputs): step
    # scratch (in ``temps``) that the step fills with zeros before its backward runs.
    zero_filled: list[Value] = field(default_factory=list)
    # What the training forward keeps for the backward (``OpDef.saved_for_backward``): the
    # same values in the forward step and in its backward step.
    saved: dict[str, Value] = field(default_factory=dict)
    # Every input's shape, also those backward reads no values of (Concat's widths).
    input_shapes: list[tuple] = field(default_factory=list)
    # A forward step's fused activation: (its operator, parameters, node name), from which
    # its backward is built when no later step finishes that gradient in its epilogue; and
    # then the gradient of ``fused_away`` that backward writes.
    fused_activation: tuple[OpDef, dict, str] | None = None
    fused_away_grad: Value | None = None
    # A backward step that finishes the gradient of an input for the operator before
    # (``OpDef.grad_epilogue_inputs``), with ``bias_grad`` a Value (or None).
    grad_epilogue: GradEpilogue | None = None
    epilogue_temps: tuple[str, ...] = ()  # the names of the temps the grad epilogue added
    # (scratch, gradient): an array this backward step reads at several inputs gets the later
    # inputs' gradients in scratch (in ``temps``), added into the gradient after the step's
    # launches (``OpDef.repeated_input_grads`` False).
    repeated_grads: list[tuple["Value", "Value"]] = field(default_factory=list)

    def gradient_accesses(self) -> tuple[list[Value], list[Value]]:
        """(gradients read, gradients written first) by a backward step: its input gradients
        added into or written, and the bias gradient its grad epilogue sums."""
        pairs = list(zip(self.in_grads, self.accumulate))
        if self.grad_epilogue is not None and self.grad_epilogue.bias_grad is not None:
            pairs.append((self.grad_epilogue.bias_grad, self.grad_epilogue.accumulate_bias))
        return ([g for g, add in pairs if g is not None and add], [g for g, add in pairs if g is not None and not add])

    @property
    def grads_written(self) -> list[Value]:
        """Every gradient a backward step writes or adds into."""
        added, written = self.gradient_accesses()
        return added + written

    def launches_for(self, is_train: bool) -> list:
        return self.train_launches if is_train and self.train_launches is not None else self.launches

    @property
    def label(self) -> str:
        return f"{self.name} ({self.op.name}{'+' + self.epilogue[0] if self.epilogue else ''}) {self.phase}"


@dataclass
class Program:
    arg_names: list[str]
    aux_names: list[str]
    args: dict[str, Value]
    aux: dict[str, Value]
    arg_grads: dict[str, Value]
    grad_req: dict[str, str]
    outputs: list[Value]
    output_names: list[str]
    # The gradient buffer of each output that reads a head gradient (None for the others).
    head_grads: list[Value | None]
    forward_steps: list[Step]
    backward_steps: list[Step]
    zero_grads: list[Value]  # write-gradients no operator contributes to: zeroed each backward
    values: list[Value]
    # Arguments holding class indices, with their number of classes: a value written into
    # one must be an exact class index of its dtype (no rounding to another class).
    class_args: dict[str, int] = field(default_factory=dict)

    def reads(self, steps: list[Step], is_train: bool = True) -> set[str]:
        """Arguments whose arrays the pre-built launches of ``steps`` (of a training or an
        inference forward) touch (a loss reads its label only when training, say): exact,
        whatever the operator."""
        spans = [(n, v.tensor.data_ptr(), v.tensor.data_ptr() + v.nbytes) for n, v in self.args.items()]
        touched = set()
        for step in steps:
            for launch in step.launches_for(is_train):
                for a in launch.args:
                    if isinstance(a, torch.Tensor):
                        touched.update(n for n, lo, hi in spans if lo <= a.data_ptr() < hi)
        return touched


def check_unique_names(symbol: Symbol, nodes: list[Node]) -> None:
    """Two different variables with one name would be one argument: say where each is used."""
    by_name: dict[str, list[Node]] = {}
    for node in nodes:
        if node.is_variable:
            by_name.setdefault(node.name, []).append(node)
    for name, variables in by_name.items():
        if len(variables) > 1:
            uses = []
            for v in variables[:2]:
                users = [f"input {n.input_names()[k]!r} of {n.name} ({n.op.name})" for n in nodes if n.op
                         for k, (c, _) in enumerate(n.inputs) if c is v]
                uses.append(users[0] if users else "an output of the symbol")
            raise BindError(f"two different variables are both named {name!r}: one is {uses[0]}, the other "
                            f"{uses[1]}; give them different names, or build the graph with one Variable")


# A window of an array is made a view only where it starts on this boundary: what Triton
# specializes a pointer argument on and a TMA descriptor requires, so every kernel sees a
# view as it sees an array of its own. Elsewhere the operator copies it.
WINDOW_ALIGN_BYTES = 16


def _aligned_windows(node: Node, shapes: dict, dtypes: dict) -> dict[int, tuple[int, int]]:
    """{output: (input, element offset)} for the outputs of ``node`` that are windows of an
    input's storage (``OpDef.output_windows``) starting on ``WINDOW_ALIGN_BYTES``."""
    in_shapes = [shapes[(id(n), j)] for n, j in node.inputs]
    windows = node.op.output_windows(node.params, in_shapes)
    return {i: (k, offset) for i, (k, offset) in windows.items()
            if offset * dtypes[(id(node), i)].itemsize % WINDOW_ALIGN_BYTES == 0}


def build_program(symbol: Symbol, nodes: list[Node], shapes: dict, dtypes: dict, grad_req: dict[str, str],
                  aux_ids: set[int], fuse: bool = True) -> Program:
    """Values and steps for ``symbol``; ``shapes``/``dtypes`` map (id(node), index) to inferred metadata."""
    entry_value: dict[tuple[int, int], Value] = {}
    args: dict[str, Value] = {}
    aux: dict[str, Value] = {}
    values: list[Value] = []

    def new_value(name, shape, dtype, kind, alias_of=None, window=None) -> Value:
        value = Value(name, tuple(shape), dtype, kind, alias_of, window=window)
        values.append(value)
        return value

    for node in nodes:
        key = (id(node), 0)
        if node.is_variable:
            kind = "aux" if id(node) in aux_ids else "arg"
            value = new_value(node.name, shapes[key], dtypes[key], kind)
            (aux if kind == "aux" else args)[node.name] = value
            entry_value[key] = value
            continue
        aliases = node.op.output_aliases(node.params)
        windows = _aligned_windows(node, shapes, dtypes)
        if any(entry_value[(id(n), j)].root().kind == "aux" for n, j in node.inputs):
            # An auxiliary state is written during forward (BatchNorm's moving statistics, a
            # cache): a view would be read after such a write where the slice copied before it.
            windows = {}
        for i in range(node.num_outputs):
            k = aliases.get(i, windows.get(i, (None,))[0])
            source = entry_value[(id(node.inputs[k][0]), node.inputs[k][1])] if k is not None else None
            entry_value[(id(node), i)] = new_value(node.output_name(i), shapes[(id(node), i)], dtypes[(id(node), i)],
                                                   "internal", source, windows[i][1] if i in windows else None)

    heads = [(id(n), i) for n, i in symbol.heads]
    forward_steps = _fuse([n for n in nodes if not n.is_variable], entry_value, heads, fuse)
    if fuse:
        head_ids = {id(entry_value[h]) for h in heads}
        forward_steps = fuse_gates(forward_steps, head_ids, {id(v.alias_of) for v in values if v.alias_of is not None})
        forward_steps = _permutations_as_views(forward_steps, head_ids)
    class_args = check_input_dtypes(forward_steps)
    used = {id(v) for s in forward_steps for v in s.inputs + s.outputs} | {id(entry_value[h]) for h in heads}
    used |= {id(v) for v in args.values()} | {id(v) for v in aux.values()}
    values = [v for v in values if id(v) in used]
    for s in forward_steps:
        s.temps = temp_values(s, "forward")
        values.extend(s.temps.values())

    outputs = [entry_value[h] for h in heads]
    arg_grads = {name: new_value(f"{name}_grad", v.shape, v.dtype, "arg_grad")
                 for name, v in args.items() if grad_req.get(name, "null") != "null"}

    viewed = {id(v.alias_of) for v in values if v.alias_of is not None}
    backward_steps, head_grads, zero_grads, grad_values = _gradient_graph(forward_steps, outputs, args, arg_grads,
                                                                         grad_req, _grad_epilogues(forward_steps,
                                                                                                   outputs, viewed))
    values += grad_values
    return Program(list(args), list(aux), args, aux, arg_grads, grad_req, outputs,
                   symbol.list_outputs(), head_grads, forward_steps, backward_steps, zero_grads, values, class_args)


# The largest whole number below which a floating dtype holds every integer exactly.


def check_input_dtypes(steps: list[Step]) -> dict[str, int]:
    """Refuse, at bind, an input of a dtype its operator cannot compute with: an integer
    array anywhere but in a class-index input, and class indices in a floating dtype that
    cannot hold every class exactly (bfloat16 rounds 257 to 256). Returns the arguments
    that hold class indices and their number of classes, so that values written into them
    are checked to be exact class indices."""
    class_args: dict[str, int] = {}
    for s in steps:
        names = s.op.inputs(s.params)
        classes = s.op.class_inputs(s.params, [v.shape for v in s.inputs])
        for k, value in enumerate(s.inputs):
            what = f"{s.name} ({s.op.name}): input {names[k]!r} is " + (
                f"the variable {value.name!r}" if value.kind in ("arg", "aux") else f"{value.name}")
            if k not in classes:
                if not value.dtype.is_floating_point:
                    raise BindError(f"{what} of dtype {dtype_name(value.dtype)}, but {s.op.name} computes in floating "
                                    f"point: give it a float dtype (type_dict={{{value.name!r}: 'float32'}} or a "
                                    "float array)")
                continue
            exact = EXACT_INTEGERS.get(value.dtype)
            if exact is not None and classes[k] > exact:
                raise BindError(f"{what} of dtype {dtype_name(value.dtype)}, which holds whole numbers exactly only "
                                f"up to {exact}, but it holds class indices of {classes[k]} classes: give it "
                                f"type_dict={{{value.name!r}: 'float32'}} (or 'int32')")
            if value.kind == "arg":
                class_args[value.name] = max(classes[k], class_args.get(value.name, 0))
    return class_args


def temp_values(step: Step, phase: str) -> dict[str, Value]:
    """New scratch values for ``step``'s forward (or recompute) or backward, as its
    operator's ``forward_temps`` / ``backward_temps`` asks."""
    rule = step.op.backward_temps if phase == "backward" else step.op.forward_temps
    wanted = rule(step.params, [v.shape for v in step.inputs], [v.dtype for v in step.inputs])
    return {name: Value(f"{step.name}_{name}", shape, dtype, "temp") for name, (shape, dtype) in wanted.items()}


def _fuse(op_nodes: list[Node], entry_value: dict, heads: list, enabled: bool) -> list[Step]:
    """Forward steps, with each (epilogue-accepting op -> activation) pair merged."""
    uses: dict[tuple[int, int], int] = {}
    for node in op_nodes:
        for c, i in node.inputs:
            uses[(id(c), i)] = uses.get((id(c), i), 0) + 1
    for h in heads:
        uses[h] = uses.get(h, 0) + 1

    def step(node: Node) -> Step:
        return Step(node.name, node.op, "forward", node.params,
                    [entry_value[(id(c), i)] for c, i in node.inputs],
                    [entry_value[(id(node), i)] for i in range(node.num_outputs)])

    steps: list[Step] = []
    fused_into: dict[int, Step] = {}  # id(producer node) -> its step, to merge the activation into
    for node in op_nodes:
        epilogue = node.op.epilogue(node.params)
        if enabled and epilogue is not None and len(node.inputs) == 1:
            producer, index = node.inputs[0]
            target = fused_into.get(id(producer))
            if target is not None and index == 0 and uses[(id(producer), 0)] == 1 and target.epilogue is None:
                target.epilogue = epilogue
                target.fused_away = target.outputs[0]
                target.fused_activation = (node.op, node.params, node.name)
                target.outputs = [entry_value[(id(node), 0)]]
                target.name = f"{target.name}+{node.name}"
                continue
        s = step(node)
        if node.op.accepts_epilogue and node.num_outputs == 1:
            fused_into[id(node)] = s
        steps.append(s)
    return steps


def _permutations_as_views(steps: list[Step], heads: set[int]) -> list[Step]:
    """``steps`` without the permutations (``OpDef.permutation``: transpose) that can be
    views. The output becomes a view of the input, axes permuted, where every step reading
    it reads that input through strides (``strided_inputs``: attention's query, key and
    value); else the input becomes a view of the output, axes permuted back, where the
    step that made it writes that output through strides (``strided_outputs``) and nothing
    else reads it. Either way the step is dropped: no launch and no memory forward, and
    none backward, where the gradients are the same views of each other's storage."""
    readers: dict[int, list[tuple[Step, int]]] = {}
    made_by: dict[int, tuple[Step, int]] = {}
    for s in steps:
        for k, v in enumerate(s.inputs):
            readers.setdefault(id(v), []).append((s, k))
        for j, o in enumerate(s.outputs):
            made_by[id(o)] = (s, j)
    kept = []
    for s in steps:
        order = s.op.permutation(s.params, len(s.inputs[0].shape)) if len(s.inputs) == len(s.outputs) == 1 else None
        if order is None:
            kept.append(s)
            continue
        x, y = s.inputs[0], s.outputs[0]
        y_readers = readers.get(id(y), [])
        if y_readers and id(y) not in heads and y.alias_of is None \
                and all(k in r.op.strided_inputs(r.params) for r, k in y_readers):
            y.alias_of, y.permute = x, order
            continue
        maker, j = made_by.get(id(x), (None, 0))
        if maker is not None and maker in kept and x.alias_of is None and id(x) not in heads \
                and readers.get(id(x)) == [(s, 0)] and maker.fused_activation is None \
                and j in maker.op.strided_outputs(maker.params):
            x.alias_of, x.permute = y, tuple(sorted(range(len(order)), key=order.__getitem__))
            continue
        kept.append(s)
    return kept


def _grad_epilogues(forward_steps: list[Step], outputs: list[Value], viewed: set[int]) -> dict:
    """{(id(consumer step), input index): the fused step whose activation (and bias)
    gradient that consumer's backward finishes}: the fused step's output is read by that
    one input of one step, whose operator can finish it, and by nothing else (no view, not
    an output of the symbol), so its gradient is written once, there."""
    readers: dict[int, list[tuple[Step, int]]] = {}
    for s in forward_steps:
        for k, v in enumerate(s.inputs):
            readers.setdefault(id(v), []).append((s, k))
    heads = {id(v) for v in outputs}
    found = {}
    for s in forward_steps:
        y = s.outputs[0]
        uses = readers.get(id(y), [])
        if s.fused_activation is None or len(uses) != 1 or id(y) in heads or id(y) in viewed:
            continue
        consumer, k = uses[0]
        if k in consumer.op.grad_epilogue_inputs(consumer.params, [v.shape for v in consumer.inputs]):
            found[(id(consumer), k)] = s
    return found


def _gradient_graph(forward_steps: list[Step], outputs: list[Value], args: dict[str, Value],
                    arg_grads: dict[str, Value], grad_req: dict[str, str], grad_epilogues: dict):
    # A value and its permuted views have one gradient array between them: each needs a
    # gradient when the other does.
    permuted: dict[int, list[Value]] = {}
    for s in forward_steps:
        for v in s.inputs + s.outputs:
            if v.permute is not None:
                permuted.setdefault(id(v.alias_of), []).append(v)
                permuted.setdefault(id(v), []).append(v.alias_of)
    needs_grad: set[int] = set()

    def mark(v: Value) -> None:
        if id(v) not in needs_grad:
            needs_grad.add(id(v))
            for u in permuted.get(id(v), ()):
                mark(u)

    for name, v in args.items():
        if name in arg_grads:
            mark(v)
    for s in forward_steps:
        no_grad = s.op.no_grad_inputs(s.params)
        names = s.op.inputs(s.params)
        if any(id(v) in needs_grad and names[k] not in no_grad for k, v in enumerate(s.inputs)):
            for o in s.outputs:
                if o.dtype.is_floating_point:  # integers (categories drawn, positions) carry no gradient
                    mark(o)

    grad_of: dict[int, Value] = {id(args[name]): g for name, g in arg_grads.items()}
    written: set[int] = set()
    new_values: list[Value] = []

    def gradient(value: Value) -> Value:
        if id(value) not in grad_of:
            # A permuted view's gradient is the same view of its source's gradient.
            source = gradient(value.alias_of) if value.permute is not None else None
            grad = Value(f"{value.name}_grad", value.shape, value.dtype, "grad", source, permute=value.permute)
            new_values.append(grad)
            grad_of[id(value)] = grad
        return grad_of[id(value)]

    def existing_gradient(value: Value) -> Value | None:
        """``value``'s gradient if some step has written it (through a permuted view too)."""
        if id(value) in grad_of or value.permute is None:
            return grad_of.get(id(value))
        return gradient(value) if existing_gradient(value.alias_of) is not None else None

    producers = {id(o): s for s in forward_steps for o in s.outputs}
    head_grads: list[Value | None] = []
    for out in outputs:
        producer = producers.get(id(out))
        reads_head = producer is None or producer.op.needs_head_grad(producer.params)
        if id(out) in needs_grad and reads_head:
            grad = gradient(out)
            if grad.kind == "grad":
                grad.kind = "head_grad"
            head_grads.append(grad)
            written.add(id(out))
        else:
            head_grads.append(None)

    def first_write(v: Value) -> bool:
        """Whether this contribution to v's gradient adds into it (and now it is written);
        a permuted view's contributions are its source's."""
        v = v.unpermuted()
        adds = id(v) in written or (v.kind == "arg" and grad_req.get(v.name) == "add")
        written.add(id(v))
        return adds

    steps: list[Step] = []
    finished_upstream: set[int] = set()
    for s in reversed(forward_steps):
        names = s.op.inputs(s.params)
        no_grad = s.op.no_grad_inputs(s.params)
        wanted = [id(v) in needs_grad and names[k] not in no_grad for k, v in enumerate(s.inputs)]
        if not any(wanted):
            continue
        zero_filled: list[Value] = []
        if s.op.needs_head_grad(s.params):
            out_grads = [existing_gradient(o) for o in s.outputs]
            if all(g is None for g in out_grads):
                continue  # nothing flows into this operator: it contributes no gradient
            # An output nothing reads has a zero gradient (as in MXNet): scratch of this step,
            # zeroed by the step itself, so it costs memory only while the step runs.
            for k, o in enumerate(s.outputs):
                if out_grads[k] is None and o.dtype.is_floating_point:
                    out_grads[k] = Value(f"{o.name}_grad", o.shape, o.dtype, "temp")
                    zero_filled.append(out_grads[k])
        else:
            out_grads = [None] * len(s.outputs)
        finished = id(s) in finished_upstream  # the fused activation and bias gradients are done
        bias = s.op.bias_input(s.params) if finished else None
        in_grads, accumulate = [], []
        for k, v in enumerate(s.inputs):
            if not wanted[k] or k == bias:
                in_grads.append(None)
                accumulate.append(False)
                continue
            in_grads.append(gradient(v))
            accumulate.append(first_write(v))
        temps = temp_values(s, "backward")
        repeated = _scratch_for_repeated_inputs(s, in_grads, accumulate, temps)
        finish, epilogue_temps = None, ()
        for k, v in enumerate(s.inputs):
            producer = grad_epilogues.get((id(s), k))
            if producer is None or in_grads[k] is None or accumulate[k]:
                continue
            act, slope = producer.epilogue
            index = producer.op.bias_input(producer.params)
            names_p = producer.op.inputs(producer.params)
            bias_value = producer.inputs[index] if index is not None else None
            wants_bias = (bias_value is not None and id(bias_value) in needs_grad
                          and names_p[index] not in producer.op.no_grad_inputs(producer.params))
            bias_grad = gradient(bias_value) if wants_bias else None
            finish = GradEpilogue(k, act, slope, bias_grad, first_write(bias_value) if wants_bias else False)
            if wants_bias:
                wanted_temps = s.op.grad_epilogue_temps(s.params, [u.shape for u in s.inputs],
                                                        [u.dtype for u in s.inputs])
                # named for whose gradient they hold parts of: the step before's
                temps.update({name: Value(f"{producer.name}_{name}", shape, dtype, "temp")
                              for name, (shape, dtype) in wanted_temps.items()})
                epilogue_temps = tuple(wanted_temps)
            finished_upstream.add(id(producer))
        need_in, need_out = s.op.backward_needs(s.params, None)
        if finish is not None:
            need_in = {*need_in, finish.input}
        wanted_saved = s.op.saved_for_backward(s.params, [v.shape for v in s.inputs], [v.dtype for v in s.inputs])
        s.saved = {name: Value(f"{s.name}_{name}", tuple(shape), dtype, "saved")
                   for name, (shape, dtype) in wanted_saved.items()}
        new_values.extend(s.saved.values())
        temps.update({f"zero-filled {g.name}": g for g in zero_filled})
        new_values.extend(temps.values())
        if finished and all(g is None for g in in_grads):
            continue  # its one wanted gradient, the bias's, was summed by the step after it
        if s.fused_activation is not None and not finished:
            out_grads = [_activation_backward(s, out_grads[0], steps, new_values)]
        steps.append(Step(s.name, s.op, "backward", s.params,
                          [v if k in need_in else None for k, v in enumerate(s.inputs)],
                          [v if k in need_out else None for k, v in enumerate(s.outputs)],
                          None, out_grads, in_grads, accumulate, temps, zero_filled=zero_filled,
                          saved=s.saved, input_shapes=[v.shape for v in s.inputs], grad_epilogue=finish,
                          epilogue_temps=epilogue_temps, repeated_grads=repeated))

    zero_grads = [g for name, g in arg_grads.items() if id(args[name]) not in written and grad_req[name] == "write"]
    return steps, head_grads, zero_grads, new_values


REPEATED = "repeated input "  # the prefix of the temps holding a repeated input's gradient


def _scratch_for_repeated_inputs(s: Step, in_grads: list, accumulate: list, temps: dict) -> list[tuple[Value, Value]]:
    """Where ``s`` reads one array at several inputs, the later inputs' gradients go to
    scratch of the step (written, not added), to be added into the gradient after the
    step's launches: an operator's kernels need not store its inputs' gradients in input
    order (BatchNorm stored beta's before gamma's, so gamma's write lost beta's sum).
    An operator declaring ``repeated_input_grads`` gets the one gradient at each input,
    unless the array comes as two different views (one of them permuted)."""
    first: dict[int, Value] = {}  # array -> the value its first input read it as
    repeated = []
    names = s.op.inputs(s.params)
    for k, grad in enumerate(in_grads):
        if grad is None:
            continue
        v = s.inputs[k]
        array = id(v.unpermuted())
        if array not in first:
            first[array] = v
            continue
        if first[array] is v and s.op.repeated_input_grads:
            continue  # the operator keeps the order itself
        scratch = Value(f"{s.name}_{names[k]}_grad", v.shape, v.dtype, "temp")
        temps[REPEATED + names[k]] = scratch
        repeated.append((scratch, grad))
        in_grads[k], accumulate[k] = scratch, False
    return repeated


def _activation_backward(fused: Step, out_grad: Value, steps: list[Step], new_values: list[Value]) -> Value:
    """The backward step of ``fused``'s activation, by its own operator, appended to
    ``steps``: dy * act'(y) into a new gradient of the output the activation replaced
    (the operator lets it take dy's storage). Returns that gradient."""
    op, params, name = fused.fused_activation
    need_in, need_out = op.backward_needs(params, None)
    if need_in or list(need_out) != [0]:
        raise BindError(f"{fused.name}: the fused activation {name} ({op.name}) declares that its backward reads "
                        f"inputs {list(need_in)} and outputs {list(need_out)}; a fused activation's backward may read "
                        "its output only")
    y, away = fused.outputs[0], fused.fused_away
    grad = Value(f"{away.name}_grad", away.shape, away.dtype, "grad")
    fused.fused_away_grad = grad
    temps = {n: Value(f"{name}_{n}", shape, dtype, "temp")
             for n, (shape, dtype) in op.backward_temps(params, [away.shape], [away.dtype]).items()}
    new_values.extend([grad, *temps.values()])
    steps.append(Step(name, op, "backward", params, [None], [y], None, [out_grad], [grad], [False], temps,
                      input_shapes=[away.shape]))
    return grad
