"""``simple_bind`` and ``bind``: from a symbol and its argument shapes or arrays to an Executor.

Both infer shapes and dtypes, build the program (gradient graph and fusion,
``program.py``; recompute steps with ``mirror=True``, ``mirror.py``), plan memory
(``planner.py``), allocate the workspace (``memory.py``) and pre-build every launch.
``simple_bind`` allocates every argument in the workspace; ``bind`` uses the argument
arrays it is given in place (as MXNet does), so they must be contiguous, of the inferred
dtype and on the context's device.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import torch

from ..base import BindError, ShapeError, dtype_name, to_dtype
from ..context import Context, default_context
from ..operators.registry import parse_shape
from ..symbol.infer import propagate
from ..symbol.symbol import Symbol, aux_variables
from .executor import Executor
from .memory import allocate
from .mirror import apply_mirror
from .planner import MEMORY_PLANS, naive_bytes, plan_memory
from .program import build_program, check_unique_names

GRAD_REQS = ("write", "add", "null")


def _grad_req(names: list[str], grad_req) -> dict[str, str]:
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


def _options(mirror, memory_plan, check_finite=None, cuda_graph=False) -> dict:
    if check_finite is None:  # the environment switch turns the debug check on without code changes
        check_finite = os.environ.get("TRITONSYM_CHECK_FINITE", "0").strip() not in ("", "0")
    if not isinstance(check_finite, bool):
        raise BindError(f"check_finite must be True or False, got {check_finite!r}")
    if not isinstance(mirror, bool):
        raise BindError(f"mirror must be True or False, got {mirror!r}")
    if memory_plan not in MEMORY_PLANS:
        raise BindError(f"memory_plan must be one of {', '.join(MEMORY_PLANS)}; got {memory_plan!r}")
    if not isinstance(cuda_graph, bool):
        raise BindError(f"cuda_graph must be True or False, got {cuda_graph!r}")
    if cuda_graph and check_finite:
        raise BindError("cuda_graph=True and check_finite=True cannot be combined: the finite check reads a count "
                        "back to the host after every step, which a recorded graph cannot do; debug without the "
                        "graph")
    return dict(mirror=mirror, memory_plan=memory_plan, check_finite=check_finite, cuda_graph=cuda_graph)


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


def _prepare(symbol: Symbol, ctx, shapes: dict, dtypes: dict, grad_req, options: dict,
             grad_req_by_name: bool | None = None):
    ctx = ctx if ctx is not None else default_context()
    if not isinstance(ctx, Context):
        raise BindError(f"ctx must be tritonsym.cpu() or tritonsym.gpu(i), got {ctx!r}")
    ctx.check_usable()
    nodes = symbol._nodes()
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
    # Arguments whose dtype nothing determines are float32, as in MXNet.
    type_values, _ = propagate(symbol, dtypes, "type")
    for n in nodes:
        if n.is_variable and type_values.get((id(n), 0)) is None:
            dtypes = dtypes | {n.name: torch.float32}
            type_values, _ = propagate(symbol, dtypes, "type")
    reqs = _grad_req(arg_names, grad_req)
    _no_integer_gradients(reqs, {n.name: type_values[(id(n), 0)] for n in nodes if n.is_variable},
                          not isinstance(grad_req, str) if grad_req_by_name is None else grad_req_by_name)
    program = build_program(symbol, nodes, shape_values, type_values, reqs, aux_variables(nodes))
    if options["mirror"]:
        apply_mirror(program)
    plan = plan_memory(program, options["memory_plan"])
    # The baseline every plan is measured against: the unfused graph, one buffer per value.
    plan.naive_bytes = naive_bytes(build_program(symbol, nodes, shape_values, type_values, reqs,
                                                 aux_variables(nodes), fuse=False))
    return ctx, program, plan


def simple_bind(symbol: Symbol, ctx=None, grad_req="write", type_dict=None, shapes=None, mirror=False,
                memory_plan="auto", check_finite=None, cuda_graph=False) -> Executor:
    """Bind with every array allocated in the static workspace (uninitialised arguments:
    fill them through ``forward(name=...)``, ``arg_dict`` or ``copy_params_from``).

    ``shapes``: argument name -> shape; ``type_dict``: name -> dtype (torch, numpy or
    "float64"); ``grad_req``: "write" | "add" | "null", a list or a dict. With
    ``grad_req='null'`` everywhere the plan is forward-only. ``mirror=True`` recomputes
    cheap activations in backward instead of keeping them (``mirror.py``); ``memory_plan``
    is "auto", "greedy", "breadth", "mxnet" or "none" (``planner.py``). ``check_finite``
    (default: the ``TRITONSYM_CHECK_FINITE`` environment switch) checks every argument
    before forward and every value each step writes, and names the first NaN or inf.
    ``cuda_graph=True`` (GPU only) records forward, backward and the optimizer update
    as CUDA graphs on their second call and replays them after that (``graphs.py``).
    """
    options = _options(mirror, memory_plan, check_finite, cuda_graph)
    shapes = {k: _shape(k, v) for k, v in (shapes or {}).items()}
    dtypes = {k: to_dtype(v) for k, v in (type_dict or {}).items()}
    ctx, program, plan = _prepare(symbol, ctx, shapes, dtypes, grad_req, options)
    workspace = allocate(program, plan, {}, ctx.torch_device)
    return Executor(symbol, ctx, program, workspace, unset=set(program.arg_names), options=options)


def bind(symbol: Symbol, ctx, args, args_grad=None, grad_req="write", aux_states=None, mirror=False,
         memory_plan="auto", check_finite=None, cuda_graph=False) -> Executor:
    """Bind with the given arrays, used in place: ``args`` (a list in ``list_arguments()``
    order or a dict by name) and ``args_grad`` (likewise; with ``args_grad=None`` no gradient
    is computed, as in MXNet). Internal values live in the workspace; ``mirror``,
    ``memory_plan``, ``check_finite`` and ``cuda_graph`` as in ``simple_bind``."""
    options = _options(mirror, memory_plan, check_finite, cuda_graph)
    arg_names = symbol.list_arguments()
    args = _by_name("args", arg_names, args, required=True)
    grads = _by_name("args_grad", arg_names, args_grad, required=False) if args_grad is not None else {}
    aux = _by_name("aux_states", symbol.list_auxiliary_states(), aux_states or {}, required=False)
    for what, given in (("args", args), ("args_grad", grads), ("aux_states", aux)):
        for name, array in given.items():
            if not isinstance(array, torch.Tensor):
                raise BindError(f"bind: {what}[{name!r}] must be a torch.Tensor (used in place), got "
                                f"{type(array).__name__}; use simple_bind and forward(...) to copy numpy arrays in")
    if args_grad is None:
        grad_req = "null"
    reqs = _grad_req(arg_names, grad_req)
    for name, req in reqs.items():
        if req != "null" and name not in grads:
            reqs[name] = "null"  # no array to write this gradient into
    shapes = {k: tuple(v.shape) for k, v in {**args, **aux}.items()}
    dtypes = {k: v.dtype for k, v in {**args, **aux}.items()}
    ctx, program, plan = _prepare(symbol, ctx, shapes, dtypes, reqs, options,
                                  grad_req_by_name=not isinstance(grad_req, str))
    provided = {}
    for table, given, what in ((program.args, args, "args"), (program.aux, aux, "aux_states"),
                               (program.arg_grads, grads, "args_grad")):
        for name, value in table.items():
            if name in given:
                provided[id(value)] = _check_array(what, name, given[name], value, ctx)
    workspace = allocate(program, plan, provided, ctx.torch_device)
    return Executor(symbol, ctx, program, workspace, unset=set(), options=options)


def reshape(executor: Executor, shapes: dict, partial_shaping: bool) -> Executor:
    program = executor._program
    given = {k: _shape(k, v) for k, v in shapes.items()}
    values, nodes = propagate(executor.symbol, given, "shape")
    inferred = {n.name: values.get((id(n), 0)) for n in nodes if n.is_variable}
    final = dict(given)
    kept = []
    for name, value in program.args.items():
        if name in given:
            continue
        new = inferred.get(name)
        if new is None or tuple(new) == value.shape:
            final[name] = value.shape
            kept.append(name)
        elif partial_shaping:
            final[name] = new
        else:
            raise BindError(f"reshape: argument {name!r} would change shape from {value.shape} to {tuple(new)}; "
                            "give its new shape too, or pass partial_shaping=True")
    dtypes = {n: v.dtype for n, v in program.args.items()}
    ctx, new_program, plan = _prepare(executor.symbol, executor.ctx, final, dtypes, program.grad_req,
                                      executor._options)
    provided = {}
    for name in kept:  # unchanged arguments and their gradients are shared, not copied
        provided[id(new_program.args[name])] = program.args[name].tensor
        if name in new_program.arg_grads:
            provided[id(new_program.arg_grads[name])] = program.arg_grads[name].tensor
    workspace = allocate(new_program, plan, provided, ctx.torch_device)
    unset = {n for n in new_program.arg_names if n not in kept or n in executor._unset}
    return Executor(executor.symbol, ctx, new_program, workspace, unset, options=executor._options,
                    loss_scale=executor.loss_scale)


def _shape(name: str, value) -> tuple:
    try:
        return parse_shape(value)
    except ValueError:
        raise BindError(f"the shape of {name!r} must be a tuple of non-negative integers, got {value!r}") from None


def _by_name(what: str, names: list[str], arrays, required: bool) -> dict:
    if isinstance(arrays, Mapping):
        unknown = [k for k in arrays if k not in names]
        if unknown:
            raise BindError(f"{what} names {', '.join(map(repr, unknown))}, which are not in "
                            f"{', '.join(names) or 'this symbol'}")
        given = {k: v for k, v in arrays.items() if v is not None}
    elif isinstance(arrays, Sequence):
        if len(arrays) != len(names):
            raise BindError(f"{what} has {len(arrays)} arrays for {len(names)} names ({', '.join(names)})")
        given = {n: a for n, a in zip(names, arrays) if a is not None}
    else:
        raise BindError(f"{what} must be a list or a dict of arrays, got {type(arrays).__name__}")
    if required:
        missing = [n for n in names if n not in given]
        if missing:
            raise BindError(f"{what} has no array for {', '.join(missing)}")
    return given


def _check_array(what: str, name: str, tensor: torch.Tensor, value, ctx: Context) -> torch.Tensor:
    if tuple(tensor.shape) != tuple(value.shape):
        raise BindError(f"bind: {what}[{name!r}] has shape {tuple(tensor.shape)} but {tuple(value.shape)} is inferred")
    if tensor.dtype != value.dtype:
        raise BindError(f"bind: {what}[{name!r}] has dtype {dtype_name(tensor.dtype)} but "
                        f"{dtype_name(value.dtype)} is inferred")
    if tensor.device != ctx.torch_device:
        raise BindError(f"bind: {what}[{name!r}] is on {tensor.device} but the context is {ctx}")
    if not tensor.is_contiguous():
        raise BindError(f"bind: {what}[{name!r}] is not contiguous (strides {tensor.stride()}); kernels read "
                        "bound arrays in place")
    return tensor
