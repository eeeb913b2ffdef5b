"""``mirror``: recompute cheap forward values in backward instead of keeping them
(Chen, Xu, Zhang and Guestrin 2016, "Training Deep Nets with Sublinear Memory Cost").

A forward value that some backward step reads is normally kept from its forward step
until that backward step, across the peak of the schedule. With ``mirror`` it is dropped
after its last forward reader and rebuilt by a recompute step placed just before the
first backward step that reads it, when:

- its operator is ``cheap`` (elementwise: about one read and one write per element), has
  one output, and that output is neither an output of the symbol nor read through a view;
- everything the recomputation reads is still there: arguments, outputs of the symbol,
  values backward keeps anyway (and does not itself recompute), or values not kept that a
  chain of at most ``MAX_CHAIN`` cheap steps rebuilds from those.

Deciding in forward order and never recomputing from a recomputed value keeps each
recomputation local: a residual chain is cut at every other value instead of being
rebuilt from its start. Recompute steps run the forward kernels on the same bits, so
gradients are bit-for-bit those without ``mirror``.
"""

from __future__ import annotations

from .program import Program, Step, Value, temp_values

MAX_CHAIN = 8


def apply_mirror(program: Program) -> int:
    """Insert recompute steps into ``program.backward_steps``; returns how many values are
    recomputed instead of kept."""
    producer = {id(o): s for s in program.forward_steps for o in s.outputs}
    output_roots = {id(v.root()) for v in program.outputs}
    kept = {id(v): v for b in program.backward_steps for v in b.inputs + b.outputs if v is not None}
    read_through_view = {id(v.root()) for v in kept.values() if v.alias_of is not None}
    mirrored: set[int] = set()

    def cheap_producer(value: Value) -> Step | None:
        step = producer.get(id(value))
        if (step is None or not step.op.cheap or step.epilogue is not None or len(step.outputs) != 1
                or value.alias_of is not None or id(value) in output_roots or id(value) in read_through_view):
            return None
        return step

    def available(value: Value) -> bool:
        root = value.root()
        return (root.kind in ("arg", "aux") or id(root) in output_roots
                or (id(root) in kept and id(root) not in mirrored))

    def rebuildable(value: Value, depth: int) -> bool:
        step = cheap_producer(value)
        if step is None or depth > MAX_CHAIN:
            return False
        return all(available(u) or (id(u) not in kept and rebuildable(u, depth + 1)) for u in step.inputs)

    for step in program.forward_steps:  # topological order: inputs are decided first
        value = step.outputs[0]
        if id(value) in kept and rebuildable(value, 1):
            mirrored.add(id(value))

    recomputed: dict[int, Value] = {}
    steps: list[Step] = []

    def materialize(value: Value) -> Value:
        if id(value) in recomputed:
            return recomputed[id(value)]
        if id(value) not in mirrored and available(value):
            return value
        step = producer[id(value)]
        inputs = [materialize(u) for u in step.inputs]
        copy = Value(f"{value.name}_recomputed", value.shape, value.dtype, "recompute")
        program.values.append(copy)
        again = Step(step.name, step.op, "recompute", step.params, inputs, [copy])
        again.temps = temp_values(again, "recompute")  # its own scratch, live only while it runs
        program.values.extend(again.temps.values())
        steps.append(again)
        recomputed[id(value)] = copy
        return copy

    for step in program.backward_steps:
        step.inputs = [materialize(v) if v is not None and id(v) in mirrored else v for v in step.inputs]
        step.outputs = [materialize(v) if v is not None and id(v) in mirrored else v for v in step.outputs]
        steps.append(step)
    program.backward_steps = steps
    return len(mirrored)
