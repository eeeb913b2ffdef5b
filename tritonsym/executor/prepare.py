"""From a symbol, its argument shapes and dtypes and the bind options to a planned
program: what ``simple_bind``, ``bind`` and ``Executor.reshape`` share.

Shapes and dtypes are inferred (``symbol/infer.py``), the program is built (gradient graph
and fusion, ``program.py``; recompute steps with ``mirror``, ``mirror.py``) and memory is
planned (``planner.py``). Allocating the workspace and making the ``Executor`` is the
caller's: ``bind`` places the arrays it is given, ``reshape`` shares the unchanged ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import torch

from ..base import BindError, ShapeError
from ..context import Context, default_context
from ..operators.registry import is_complete, parse_shape
from ..symbol.graph import aux_variables
from ..symbol.infer import propagate

if TYPE_CHECKING:
    from ..symbol.symbol import Symbol
from .mirror import apply_mirror
from .options import BindOptions
from .planner import MemoryPlan, naive_bytes, plan_memory, schedule_lower_bound
from .program import Program, build_program, check_unique_names

GRAD_REQS = ("write", "add", "null")


def grad_reqs(names: list[str], grad_req) -> dict[str, str]:
    """grad_req as one string for all, a list aligned with the arguments, or a dict (missing: null)."""
    if isinstance(grad_req, str):
        reqs = {n: grad_req for n in names}
    elif isinstance(grad_req, Mapping):
        unknown = [k for k in grad_req if k not in names]
        if unknown:
            raise BindError(f"grad_req names {', '.join(map(repr, unknown))}, which are not arguments "
                            f"({', '.join(names)})")
        reqs = {n: grad_req.get(n, "null") for n in names}
    elif isinstance(grad_req, Sequence):
        if len(grad_req) != len(names):
            raise BindError(f"grad_req has {len(grad_req)} entries for {len(names)} arguments ({', '.join(names)})")
        reqs = dict(zip(names, grad_req))
    else:
        raise BindError(f"grad_req must be a string, a list or a dict, got {type(grad_req).__name__}")
    bad = {n: r for n, r in reqs.items() if r not in GRAD_REQS}
    if bad:
        got = repr(grad_req) if isinstance(grad_req, str) else bad  # one string: say it once, not per argument
        raise BindError(f"grad_req must be one of {', '.join(GRAD_REQS)}; got {got}")
    return reqs


def _no_integer_gradients(reqs: dict[str, str], dtypes: dict[str, torch.dtype], asked_by_name: bool) -> None:
    """An integer argument (class indices as labels) has no gradient. grad_req given as one
    string for all leaves it out, as MXNet's Module does for labels; one asked for by name
    is refused, naming the argument."""
    for name, dtype in dtypes.items():
        if reqs.get(name, "null") != "null" and not dtype.is_floating_point:
            if asked_by_name:
                raise BindError(f"bind: grad_req[{name!r}] is {reqs[name]!r}, but {name!r} has dtype "
                                f"{str(dtype).removeprefix('torch.')}, which has no gradient; give it 'null'")
            reqs[name] = "null"


def prepare(symbol: Symbol, ctx, shapes: dict, dtypes: dict, grad_req, options: BindOptions,
            grad_req_by_name: bool | None = None) -> tuple[Context, Program, MemoryPlan]:
    """The checked context, the program and its memory plan for these argument shapes and
    dtypes (names not given are inferred; dtypes nothing determines are float32)."""
    ctx = ctx if ctx is not None else default_context()
    if not isinstance(ctx, Context):
        raise BindError(f"ctx must be tritonsym.cpu() or tritonsym.gpu(i), got {ctx!r}")
    ctx.check_usable()
    nodes = symbol.nodes()
    check_unique_names(symbol, nodes)
    arg_names = symbol.list_arguments()
    inputs = symbol.list_inputs()
    unknown = [k for k in list(shapes) + list(dtypes) if k not in inputs]
    if unknown:
        raise BindError(f"{', '.join(map(repr, dict.fromkeys(unknown)))} is not an argument of this symbol; its "
                        f"arguments are {', '.join(arg_names)}")
    shape_values, _ = propagate(symbol, shapes, "shape")
    missing = [n.name for n in nodes if n.is_variable and shape_values.get((id(n), 0)) is None]
    if missing:
        raise ShapeError(f"bind: cannot infer the shape of {', '.join(missing)}; give "
                         f"{'it' if len(missing) == 1 else 'them'} (e.g. simple_bind({missing[0]}=(...)))")
    # A 0 is "unknown" in MXNet's shapes, and no kernel has a launch for an empty array.
    empty = [f"{n.name} {shape_values[(id(n), 0)]}" for n in nodes
             if n.is_variable and 0 in shape_values[(id(n), 0)]]
    if empty:
        raise ShapeError(f"bind: {', '.join(empty)}: every dimension of a bound array must be at least 1 (a 0 "
                         "means unknown in MXNet's shapes)")
    # An operator's output inference left partly unknown (zeros((0, 8)) that nothing reads a size into).
    unsized = [f"{n.name} ({n.op.name}) output {i}: {shape_values.get((id(n), i))}" for n in nodes
               if not n.is_variable for i in range(n.num_outputs) if not is_complete(shape_values.get((id(n), i)))]
    if unsized:
        raise ShapeError(f"bind: cannot infer every size of {', '.join(unsized)} (0: unknown); give the sizes to "
                         "the operator, or connect it where they follow from the arguments")
    # Arguments whose dtype nothing determines are float32, as in MXNet.
    type_values, _ = propagate(symbol, dtypes, "type")
    for n in nodes:
        if n.is_variable and type_values.get((id(n), 0)) is None:
            dtypes = dtypes | {n.name: torch.float32}
            type_values, _ = propagate(symbol, dtypes, "type")
    reqs = grad_reqs(arg_names, grad_req)
    _no_integer_gradients(reqs, {n.name: type_values[(id(n), 0)] for n in nodes if n.is_variable},
                          not isinstance(grad_req, str) if grad_req_by_name is None else grad_req_by_name)
    program = build_program(symbol, nodes, shape_values, type_values, reqs, aux_variables(nodes))
    naive = naive_bytes(program)  # the baseline every plan is measured against: the unfused graph
    if options.mirror:
        apply_mirror(program)
    plan = plan_memory(program, options.memory_plan)
    plan.naive_bytes = naive
    if any(step.fused_away is not None for step in program.forward_steps):
        # The bound over the schedules the executor could run, not only the one it chose.
        unfused = build_program(symbol, nodes, shape_values, type_values, reqs, aux_variables(nodes), fuse=False)
        if options.mirror:
            apply_mirror(unfused)
        raw, aligned = schedule_lower_bound(unfused)
        plan.lower_bound_bytes = min(plan.lower_bound_bytes, raw)
        plan.lower_bound_aligned_bytes = min(plan.lower_bound_aligned_bytes, aligned)
    return ctx, program, plan


def shape_of(name: str, value) -> tuple:
    try:
        return parse_shape(value)
    except ValueError:
        raise BindError(f"the shape of {name!r} must be a tuple of non-negative integers, got {value!r}") from None


