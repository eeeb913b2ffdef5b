"""An independent check of a bound executor's memory: no two internal values that are live
at the same step share a byte, unless the step writes one in place over the other and its
operator declares that pair.

Lifetimes are recomputed here from the program's steps and the tensors' real addresses,
not taken from the planner, so a planner bug cannot hide behind its own bookkeeping.
"""

import torch

from tritonsym.executor.program import Step

FIXED_KINDS = ("arg", "aux", "arg_grad")


def poison(exe, regions=("internal", "param_grads")) -> None:
    """NaN into every internal value and every gradient: what a step fails to write, or
    reads before writing, shows up as NaN instead of as a zero the allocator left. Integer
    values (max pooling's kept positions) get the dtype's most negative number."""
    for (dtype, region), span in exe.workspace.regions.items():
        if region in regions:
            value = float("nan") if dtype.is_floating_point else torch.iinfo(dtype).min
            exe.workspace.arenas[dtype][span.start // dtype.itemsize: span.end // dtype.itemsize] = value


def _accesses(step: Step):
    """(values read, values written first) by one step."""
    if step.phase == "recompute":  # mirror's forward keeps nothing for backward
        return list(step.inputs), list(step.outputs) + list(step.temps.values())
    if step.phase == "forward":  # a training forward writes what it keeps for backward
        return list(step.inputs), list(step.outputs) + list(step.temps.values()) + list(step.saved.values())
    reads = [v for v in step.inputs + step.outputs + step.out_grads if v is not None] + list(step.saved.values())
    grads = list(zip(step.in_grads, step.accumulate))
    if step.grad_epilogue is not None:  # it also sums the bias gradient of the step before
        grads.append((step.grad_epilogue.bias_grad, step.grad_epilogue.accumulate_bias))
    reads += [g for g, add in grads if g is not None and add]
    writes = [g for g, add in grads if g is not None and not add]
    return reads, writes + list(step.temps.values())


def _declared_pairs(step: Step) -> set[tuple[int, int]]:
    """(id(target root), id(source root)) pairs the step's operator allows in place."""
    if step.phase in ("forward", "recompute"):
        return {(id(step.outputs[o].root()), id(step.inputs[i].root())) for i, o in step.op.inplace(step.params)}
    sources = {"out_grad": step.out_grads, "output": step.outputs, "input": step.inputs, "saved": step.saved}
    pairs = set()
    for k, (kind, index) in step.op.backward_inplace(step.params, step.epilogue):
        target, source = step.in_grads[k], sources[kind].get(index) if kind == "saved" else sources[kind][index]
        if target is not None and source is not None and not step.accumulate[k]:
            pairs.add((id(target.root()), id(source.root())))
    return pairs


def lifetimes(program):
    """id(storage root) -> [root, first write, last access], and the steps by position."""
    steps = list(program.forward_steps) + [None] + list(program.backward_steps)
    spans: dict[int, list] = {}
    for position, step in enumerate(steps):
        if step is None:
            accessed = [(g, True) for g in program.head_grads if g is not None]
        else:
            reads, writes = _accesses(step)
            accessed = [(v, False) for v in reads] + [(v, True) for v in writes]
        for value, is_write in accessed:
            root = value.root()
            if root.kind in FIXED_KINDS:
                continue
            span = spans.setdefault(id(root), [root, None, position])
            if is_write and span[1] is None:
                span[1] = position
            span[2] = max(span[2], position)
    end = len(steps)
    for value in program.outputs:
        if id(value.root()) in spans:
            spans[id(value.root())][2] = end
    return spans, steps


def assert_no_live_overlap(executor) -> int:
    """Raise if two simultaneously live values share bytes; returns how many pairs share
    storage legitimately (reuse or in place), so a test can also see that sharing happens."""
    program = executor._program
    spans, steps = lifetimes(program)
    items = []
    for root, first, last in spans.values():
        assert first is not None, f"{root.name} is read but never written"
        ptr = root.tensor.data_ptr()
        items.append((root, first, last, ptr, ptr + root.nbytes))
    shared = 0
    for i, (a, a_first, a_last, a_lo, a_hi) in enumerate(items):
        for b, b_first, b_last, b_lo, b_hi in items[i + 1:]:
            if a.tensor.device != b.tensor.device or a_hi <= b_lo or b_hi <= a_lo or a.nbytes == 0 or b.nbytes == 0:
                continue
            shared += 1
            if a_last < b_first or b_last < a_first:
                continue
            (src, tgt) = (a, b) if a_first <= b_first else (b, a)
            t = max(a_first, b_first)
            step = steps[t]
            ok = (step is not None and min(a_last, b_last) == t and (a_lo, a_hi) == (b_lo, b_hi)
                  and (id(tgt), id(src)) in _declared_pairs(step))
            assert ok, (f"{a.name} [{a_first}, {a_last}] and {b.name} [{b_first}, {b_last}] are live together "
                        f"but share bytes [{max(a_lo, b_lo)}, {min(a_hi, b_hi)})")
    return shared


def backward_is_repeatable(executor) -> bool:
    """Whether a second backward after one forward would find every forward value it reads
    intact: no byte written from the head-gradient copy on (backward steps, their
    temporaries, recomputed values) belongs to a value written in forward and read in
    backward or by the caller. Worked out from the tensors' addresses."""
    program = executor._program
    spans, steps = lifetimes(program)
    b = len(program.forward_steps)  # the head-gradient copy
    kept = [(root.tensor.data_ptr(), root.tensor.data_ptr() + root.nbytes, root.tensor.device)
            for root, first, last in spans.values() if first < b <= last and root.nbytes > 0]
    for position in range(b, len(steps)):
        step = steps[position]
        written = [g for g in program.head_grads if g is not None] if step is None else _accesses(step)[1]
        for value in written:
            lo = value.tensor.data_ptr()
            hi = lo + value.nbytes
            if value.nbytes and any(device == value.tensor.device and lo < k_hi and k_lo < hi
                                    for k_lo, k_hi, device in kept):
                return False
    return True
