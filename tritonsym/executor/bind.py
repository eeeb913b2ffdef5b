"""``simple_bind`` and ``bind``: from a symbol and its argument shapes or arrays to an Executor.

Both prepare the planned program (``prepare.py``: shapes and dtypes inferred, the
gradient graph, fusion and mirror, the memory plan), allocate the workspace
(``memory.py``) and make the ``Executor``, which pre-builds every launch.
``simple_bind`` allocates every argument in the workspace; ``bind`` uses the argument
arrays it is given in place (as MXNet does), so they must be contiguous, of the inferred
dtype and on the context's device.
"""

from __future__ import annotations

import sys
from typing import Mapping, Sequence

import torch

from ..base import BindError, dtype_name, to_dtype
from ..context import Context
from ..symbol import symbol as symbol_layer
from ..symbol.symbol import Symbol
from .executor import Executor
from .memory import allocate
from .options import BindOptions
from .prepare import grad_reqs, prepare, shape_of


def simple_bind(symbol: Symbol, ctx=None, grad_req="write", type_dict=None, shapes=None, mirror=False,
                memory_plan="auto", check_finite=None, cuda_graph=False, shared_arg_names=None,
                shared_exec: Executor | None = None) -> Executor:
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
    ``shared_exec`` / ``shared_arg_names`` (MXNet's): use that executor's arrays for those
    arguments (all arguments of the same name by default), their gradients, the auxiliary
    states and the loss scale (``simple_bind_with``).
    """
    return simple_bind_with(symbol, ctx, BindOptions.make(mirror, memory_plan, check_finite, cuda_graph), grad_req,
                            type_dict, shapes, shared_exec, shared_arg_names)


def simple_bind_with(symbol: Symbol, ctx, options: BindOptions, grad_req="write", type_dict=None,
                     shapes=None, shared_exec: Executor | None = None, shared_arg_names=None) -> Executor:
    """``simple_bind`` with its options already made (``Module`` makes them once).

    With ``shared_exec``, the arguments ``shared_arg_names`` (their gradients too) and every
    auxiliary state are ``shared_exec``'s arrays, not new ones, and so is the loss scale:
    another symbol over the same parameters (a bucket of ``BucketingModule``) trains them
    with the same optimizer. Each must have the same shape and dtype there."""
    shapes = {k: shape_of(k, v) for k, v in (shapes or {}).items()}
    dtypes = {k: to_dtype(v) for k, v in (type_dict or {}).items()}
    if shared_exec is not None:  # a shared argument's shape and dtype need not be given again
        for name in shared_arg_names if shared_arg_names is not None else ():
            if name in symbol.list_arguments() and name in shared_exec.arg_dict:
                shapes.setdefault(name, tuple(shared_exec.arg_dict[name].shape))
                dtypes.setdefault(name, shared_exec.arg_dict[name].dtype)
    ctx, program, plan = prepare(symbol, ctx, shapes, dtypes, grad_req, options)
    unset = set(program.arg_names)
    provided, loss_scale = {}, None
    if shared_exec is not None:
        names = [n for n in (shared_arg_names if shared_arg_names is not None else program.arg_names)
                 if n in program.args]
        provided = shared_exec.shared_arrays(program, names, [n for n in program.aux_names])
        unset -= {n for n in names if n not in shared_exec._unset}
        loss_scale = shared_exec.loss_scale
    workspace = allocate(program, plan, provided, ctx.torch_device)
    return Executor(symbol, ctx, program, workspace, unset=unset, options=options, loss_scale=loss_scale)


def bind(symbol: Symbol, ctx, args, args_grad=None, grad_req="write", aux_states=None, mirror=False,
         memory_plan="auto", check_finite=None, cuda_graph=False) -> Executor:
    """Bind with the given arrays, used in place: ``args`` (a list in ``list_arguments()``
    order or a dict by name) and ``args_grad`` (likewise; with ``args_grad=None`` no gradient
    is computed, as in MXNet). Internal values live in the workspace; ``mirror``,
    ``memory_plan``, ``check_finite`` and ``cuda_graph`` as in ``simple_bind``."""
    options = BindOptions.make(mirror, memory_plan, check_finite, cuda_graph)
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
    reqs = grad_reqs(arg_names, grad_req)
    for name, req in reqs.items():
        if req != "null" and name not in grads:
            reqs[name] = "null"  # no array to write this gradient into
    shapes = {k: tuple(v.shape) for k, v in {**args, **aux}.items()}
    dtypes = {k: v.dtype for k, v in {**args, **aux}.items()}
    ctx, program, plan = prepare(symbol, ctx, shapes, dtypes, reqs, options,
                                 grad_req_by_name=not isinstance(grad_req, str))
    provided = {}
    for table, given, what in ((program.args, args, "args"), (program.aux, aux, "aux_states"),
                               (program.arg_grads, grads, "args_grad")):
        for name, value in table.items():
            if name in given:
                provided[id(value)] = _check_array(what, name, given[name], value, ctx)
    workspace = allocate(program, plan, provided, ctx.torch_device)
    return Executor(symbol, ctx, program, workspace, unset=set(), options=options)


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


# Symbol.simple_bind and Symbol.bind call this module: the graph layer does not import it.
symbol_layer.register_bind_layer(sys.modules[__name__])
