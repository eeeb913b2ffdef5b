"""Module: a symbol, its bound executor, its parameters and its optimizer (MXNet's ``mx.mod.Module``).

The intermediate API, step by step::

    mod = ts.mod.Module(net, data_names=("data",), label_names=("softmax_label",))
    mod.bind(data_shapes=train.provide_data, label_shapes=train.provide_label)
    mod.init_params(ts.init.Xavier())
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    for batch in train:
        mod.forward(batch, is_train=True)
        mod.backward()
        mod.update()              # one optimizer launch over the flat parameter region

and the high-level one, ``mod.fit(train, eval_data=val, num_epoch=10, ...)``, ``mod.score``
and ``mod.predict`` (``loops.py``). Binding happens once, through ``simple_bind``: the
parameters, their gradients and every internal value live in the executor's static
workspace, and a batch of another shape gets an executor from ``reshape`` that shares the
parameters.
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

import torch

from .. import initializer as init_module
from .. import kvstore as kvstore_module
from .. import model, random
from .. import optimizer as opt_module
from ..base import BindError, ParamError, converted_on_host, dtype_name, to_dtype, user_tensor, warn
from ..context import Context, default_context
from ..executor.bind import simple_bind_with
from ..executor.options import BindOptions
from ..io.ndarray_iter import DataBatch, DataDesc
from . import data_parallel
from .loops import TrainingLoops

_RANDOM = "random_state:"  # the key of a device's dropout state in an optimizer-states file


def _descs(what: str, shapes) -> list[DataDesc]:
    """``DataDesc``s from DataDescs, ``(name, shape)`` pairs or a dict name -> shape."""
    if shapes is None:
        return []
    items = shapes.items() if isinstance(shapes, dict) else shapes
    out = []
    for item in items:
        if isinstance(item, DataDesc):
            out.append(item)
        elif isinstance(item, (tuple, list)) and len(item) in (2, 3) and isinstance(item[0], str):
            out.append(DataDesc(item[0], tuple(item[1]), to_dtype(item[2]) if len(item) == 3 else torch.float32))
        else:
            raise BindError(f"Module.bind: {what} entries must be DataDesc or (name, shape) pairs, got {item!r}")
    return out


class Module(TrainingLoops):
    """A trainable network: ``symbol`` with its data and label inputs named; every other
    argument is a parameter (``fixed_param_names`` are never updated).

    ``mirror``, ``memory_plan``, ``check_finite`` and ``cuda_graph`` are passed to ``simple_bind``.
    With ``cuda_graph=True`` (GPU) a training step through ``train_step`` (what ``fit`` runs)
    replays one graph of forward, backward and the optimizer update; ``forward``,
    ``backward`` and ``update`` called one by one replay one graph each."""

    def __init__(self, symbol, data_names: Sequence[str] = ("data",), label_names: Sequence[str] | None =
                 ("softmax_label",), context: Context | None = None, fixed_param_names: Sequence[str] | None = None,
                 logger: logging.Logger | None = None, mirror: bool = False, memory_plan: str = "auto",
                 check_finite: bool | None = None, cuda_graph: bool = False, work_load_list=None):
        self._symbol = symbol
        self._data_names = list(data_names)
        self._label_names = list(label_names or [])
        # MXNet's usual form is a list, context=[mx.gpu(0)]; several contexts split each batch
        # between them (data_parallel.py).
        contexts = list(context) if isinstance(context, (list, tuple)) else [context or default_context()]
        bad = [c for c in contexts if not isinstance(c, Context)]
        if bad or not contexts:
            raise BindError(f"Module: context must be tritonsym.cpu(), tritonsym.gpu(i) or a non-empty list of them, "
                            f"got {context!r}")
        self._contexts = contexts
        self._context = contexts[0]  # where the parameters are read, written and updated
        self._work_load = data_parallel.check_work_load(contexts, work_load_list)
        self._replicas: data_parallel.Replicas | None = None  # the executors of contexts[1:]
        self.logger = logger or logging.getLogger("tritonsym")
        self._bind_options = BindOptions.make(mirror, memory_plan, check_finite, cuda_graph)
        args = symbol.list_arguments()
        if self._label_names == ["softmax_label"] and not any(a.endswith("_label") for a in args):
            # MXNet's default label name on a symbol without labels: MXNet warns and binds without
            # them. (A symbol whose labels have other names is refused below, with those names:
            # MXNet would take out_label for a parameter and initialise it.)
            warn(f"Module: the symbol has no argument 'softmax_label' (the default label_names); it is bound "
                 f"without labels (its arguments: {', '.join(args)}). Pass label_names=() to say so, or the "
                 "symbol's label names")
            self._label_names = []
        for what, names in (("data_names", self._data_names), ("label_names", self._label_names)):
            missing = [n for n in names if n not in args]
            if missing:
                hint = ""
                if what == "label_names":
                    labels = [a for a in args if a.endswith("_label")]
                    hint = f"; the symbol's label arguments are {labels}: pass label_names={tuple(labels)}" \
                        if labels else "; pass label_names=() for a symbol without labels"
                raise BindError(f"Module: {what} {missing} are not arguments of the symbol (its arguments: "
                                f"{', '.join(args)}){hint}")
        inputs = set(self._data_names) | set(self._label_names)
        self._param_names = [n for n in args if n not in inputs]
        self._fixed_param_names = list(fixed_param_names or [])
        unknown = [n for n in self._fixed_param_names if n not in self._param_names]
        if unknown:
            raise BindError(f"Module: fixed_param_names {unknown} are not parameters (parameters: "
                            f"{', '.join(self._param_names)})")
        self._aux_names = symbol.list_auxiliary_states()
        self._exec = None  # the executor bound by bind(); owns the parameters
        self._current = None  # the executor the last forward ran on (the bound one or a reshaped one)
        self._execs: dict[tuple, object] = {}  # executors for other input shapes (reshape), by shapes
        self._inferred_labels: dict[tuple, dict] = {}  # data shapes -> the label shapes they imply
        self._arrays: dict[str, torch.Tensor] = {}  # every argument array of the bound executor
        self._for_training = False
        self._inputs_need_grad = False
        self._data_shapes: list[DataDesc] = []
        self._label_shapes: list[DataDesc] = []
        self.params_initialized = False
        self._optimizer = None
        self._updater = None
        self._sync = None  # gradient all-reduce across workers (kvstore="dist_sync")
        # Parameters given before bind (set_params, or Module.load with its file name), set at bind.
        self._preloaded: tuple[dict, dict, str | None] | None = None
        self._preloaded_states: str | None = None  # optimizer states file from Module.load
        self._states_paired_with: str | None = None  # ... and the weights file it must have been saved with

    # ------------------------------------------------------------------ properties

    symbol = property(lambda self: self._symbol)
    data_names = property(lambda self: list(self._data_names))
    label_names = property(lambda self: list(self._label_names))
    output_names = property(lambda self: self._symbol.list_outputs())
    binded = property(lambda self: self._exec is not None)
    for_training = property(lambda self: self._for_training)
    optimizer_initialized = property(lambda self: self._updater is not None)
    data_shapes = property(lambda self: list(self._data_shapes))
    label_shapes = property(lambda self: list(self._label_shapes))
    context = property(lambda self: self._context)
    contexts = property(lambda self: list(self._contexts))
    optimizer = property(lambda self: self._optimizer)

    @property
    def executor(self):
        """The executor of the bound shapes (``Executor.memory`` has its memory plan)."""
        self._require("executor", bound=True)
        return self._exec

    @property
    def output_shapes(self) -> list[tuple[str, tuple]]:
        """Each output's name and shape for the bound batch (over all contexts: their parts' sum on axis 0)."""
        self._require("output_shapes", bound=True)
        per_context = [list(e.output_dict.items()) for e in self._all_executors()]
        return [(name, (sum(outs[k][1].shape[0] for outs in per_context), *tensor.shape[1:]) if tensor.dim() else ())
                for k, (name, tensor) in enumerate(per_context[0])]

    def _require(self, what: str, bound=False, params=False, optimizer=False, forward=False) -> None:
        if bound and self._exec is None:
            raise BindError(f"Module.{what}: call bind() first (or fit(), which binds)")
        if forward and self._current is None:
            raise BindError(f"Module.{what}: call forward() first")
        if params and not self.params_initialized:
            raise BindError(f"Module.{what}: call init_params() first (or set_params(), or fit())")
        if optimizer and self._updater is None:
            raise BindError(f"Module.{what}: call init_optimizer() first (or fit())")

    # ------------------------------------------------------------------------ bind

    def bind(self, data_shapes, label_shapes=None, for_training: bool = True, inputs_need_grad: bool = False,
             force_rebind: bool = False, shared_module: "Module | None" = None, grad_req: str = "write") -> None:
        """Bind the symbol for these input shapes (``DataDesc``s, ``(name, shape)`` pairs or
        an iterator's ``provide_data`` / ``provide_label``). Parameters get their gradient
        per ``grad_req`` (``"null"`` for ``fixed_param_names`` and when not ``for_training``).
        With ``shared_module`` (bound, on one context) the parameters, their gradients and the
        auxiliary states are that module's arrays, and its optimizer is borrowed once it has
        one: what ``BucketingModule`` binds each bucket with."""
        if self._exec is not None and not force_rebind:
            self.logger.warning("Module.bind: already bound; ignoring (pass force_rebind=True to bind again)")
            return
        data, label = _descs("data_shapes", data_shapes), _descs("label_shapes", label_shapes)
        given = [d.name for d in data]
        if sorted(given) != sorted(self._data_names):
            raise BindError(f"Module.bind: data_shapes name {given}, but the module's data_names are "
                            f"{self._data_names}")
        unknown = [d.name for d in label if d.name not in self._label_names]
        if unknown:
            raise BindError(f"Module.bind: label_shapes name {unknown}, which are not label_names "
                            f"{self._label_names}")
        if inputs_need_grad and not for_training:
            raise BindError("Module.bind: inputs_need_grad=True needs for_training=True")
        saved = self.get_params() if self.params_initialized else None
        reqs = {}
        for name in self._symbol.list_arguments():
            if name in self._param_names:
                reqs[name] = grad_req if for_training and name not in self._fixed_param_names else "null"
            elif name in self._data_names:
                reqs[name] = "write" if inputs_need_grad else "null"
            else:
                reqs[name] = "null"
        shapes = {d.name: tuple(d.shape) for d in data + label}
        types = {d.name: d.dtype for d in data + label}
        per_context = self._per_context("Module.bind", shapes)
        shared_exec = self._check_shared(shared_module)
        self._exec = simple_bind_with(self._symbol, self._context, self._bind_options, reqs, types, per_context[0],
                                      shared_exec, self._param_names if shared_exec is not None else None)
        self._execs = {self._shape_key(per_context[0]): self._exec}
        self._replicas = None
        if len(self._contexts) > 1:
            replicas = [data_parallel.Replica(ctx, simple_bind_with(self._symbol, ctx, self._bind_options, reqs, types,
                                                                    part))
                        for ctx, part in zip(self._contexts[1:], per_context[1:])]
            self._replicas = data_parallel.Replicas(self._exec, replicas, grad_req, self._param_names)
        self._current = None
        self._current_parts: list[slice] = []
        self._arrays = self._exec.arg_dict
        self._for_training, self._inputs_need_grad = for_training, inputs_need_grad
        self._data_shapes, self._label_shapes = data, label
        self._updater = None  # an optimizer (and a gradient sync) is bound to the arrays it updates
        self._sync = None
        if shared_module is not None:
            self.params_initialized = shared_module.params_initialized
            if shared_module.optimizer_initialized:
                self.borrow_optimizer(shared_module)
            return
        if saved is not None:
            self.set_params(*saved)
        elif self._preloaded is not None:
            args, aux, source = self._preloaded
            self._preloaded = None
            if source is not None:
                self._set_checked(args, aux, what=source)
            else:
                self.init_params(None, args, aux, force_init=True)

    def _check_shared(self, shared_module) -> object:
        """The executor whose parameters a bind shares (``shared_module``'s), checked."""
        if shared_module is None:
            return None
        if not isinstance(shared_module, Module) or not shared_module.binded:
            raise BindError(f"Module.bind: shared_module must be a bound Module, got {shared_module!r}")
        if len(self._contexts) > 1 or len(shared_module._contexts) > 1 or shared_module._context != self._context:
            raise BindError(f"Module.bind: shared_module on {shared_module._contexts} and this module on "
                            f"{self._contexts}: sharing parameters needs both on the same single context")
        missing = [n for n in self._param_names if n not in shared_module._param_names]
        if missing:
            raise BindError(f"Module.bind: the parameters {missing} are not in shared_module (its parameters: "
                            f"{', '.join(shared_module._param_names)}); a shared module must hold every parameter "
                            "(BucketingModule: the default bucket must be the largest network)")
        return shared_module._exec

    def borrow_optimizer(self, shared_module: "Module") -> None:
        """Use ``shared_module``'s optimizer, updater and gradient sync (its parameters are this
        module's: ``bind(shared_module=...)``), as MXNet's."""
        if shared_module._updater is None:
            raise BindError("Module.borrow_optimizer: the shared module has no optimizer yet (init_optimizer first)")
        self._optimizer, self._updater, self._sync = shared_module._optimizer, shared_module._updater, \
            shared_module._sync

    def _shape_key(self, shapes: dict) -> tuple:
        return tuple(sorted((k, tuple(v)) for k, v in shapes.items()))

    def _slices(self, what: str, shapes: dict) -> list[slice]:
        """Each context's part of a batch of these input shapes (its first axis)."""
        batch = shapes[self._data_names[0]][0] if shapes[self._data_names[0]] else 1
        if len(self._contexts) == 1:
            return [slice(0, batch)]
        return data_parallel.split_batch(what, batch, self._work_load)

    def _per_context(self, what: str, shapes: dict) -> list[dict]:
        """The input shapes each context binds for a batch of ``shapes``."""
        if len(self._contexts) == 1:
            return [shapes]
        return [data_parallel.sliced_shapes(shapes, part) for part in self._slices(what, shapes)]

    def _current_executors(self) -> list:
        """The executor each context ran the last forward on (the first context's first)."""
        return [self._current] + ([r.current for r in self._replicas.replicas] if self._replicas else [])

    def _all_executors(self) -> list:
        """Each context's executor for the bound shapes."""
        return [self._exec] + ([r.executor for r in self._replicas.replicas] if self._replicas else [])

    def reshape(self, data_shapes, label_shapes=None) -> None:
        """Use an executor for other input shapes; it shares the parameters (and their
        gradients). ``forward`` calls this itself when a batch has another shape."""
        self._require("reshape", bound=True)
        shapes = {d.name: tuple(d.shape) for d in _descs("data_shapes", data_shapes) + _descs("label_shapes",
                                                                                              label_shapes)}
        self._executors_for("Module.reshape", shapes)

    def _executors_for(self, what: str, shapes: dict) -> list:
        """Each context's executor for its part of a batch of ``shapes`` (made current)."""
        per_context = self._per_context(what, shapes)
        self._current = self._executor_for(per_context[0])
        for replica, part in zip(self._replicas.replicas if self._replicas else [], per_context[1:]):
            replica.current = self._executor_for(part, replica.executor, replica.execs)
        return self._current_executors()

    def _executor_for(self, shapes: dict, base=None, cache: dict | None = None):
        """``base``'s executor (the first context's by default) for these input shapes."""
        base, cache = (self._exec, self._execs) if base is None else (base, cache)
        key = self._shape_key(shapes)
        if key not in cache:
            try:
                cache[key] = base.reshape(partial_shaping=False, **shapes)
            except BindError as e:
                if "would change shape" not in str(e):
                    raise
                bound = ", ".join(f"{d.name} {tuple(d.shape)}" for d in self._data_shapes + self._label_shapes)
                given = ", ".join(f"{n} {s}" for n, s in shapes.items())
                raise BindError(f"Module: the module was bound for {bound}, and a batch of {given} needs other "
                                f"parameter shapes ({str(e).split(': ', 1)[1].split(';')[0]}): a module's parameters "
                                "keep their shapes; give it data of the bound shape (or bind a new Module for "
                                "these shapes)") from None
        return cache[key]

    # ------------------------------------------------------------------ parameters

    def init_params(self, initializer=None, arg_params: dict | None = None, aux_params: dict | None = None,
                    allow_missing: bool = False, force_init: bool = False, allow_extra: bool = False) -> None:
        """Give every parameter its first value: from ``arg_params`` / ``aux_params`` when
        they hold it, else from ``initializer`` (default ``Uniform(0.01)``; a Variable's
        ``init`` attribute wins). With ``arg_params`` given, a parameter missing from it is
        an error unless ``allow_missing``; one it has that the symbol lacks, unless ``allow_extra``."""
        if self.params_initialized and not force_init:
            return
        self._require("init_params", bound=True)
        init = init_module.create(initializer) if initializer is not None else init_module.Uniform(0.01)
        attrs = self._symbol.attr_dict()
        for table, names, what in ((arg_params, self._param_names, "arg_params"),
                                   (aux_params, self._aux_names, "aux_params")):
            if table is None:
                continue
            extra = [n for n in table if n not in names]
            if extra and not allow_extra:
                raise ParamError(f"Module.init_params: {what} has {extra}, which the symbol does not have (its "
                                 f"{'parameters' if what == 'arg_params' else 'auxiliary states'}: {names}); pass "
                                 "allow_extra=True to ignore them")
            missing = [n for n in names if n not in table]
            if missing and not allow_missing:
                raise ParamError(f"Module.init_params: {what} lacks {missing}; pass allow_missing=True to initialize "
                                 "them with the initializer")
        aux_arrays = self._exec.aux_dict
        groups = ((self._param_names, arg_params, self._arrays), (self._aux_names, aux_params, aux_arrays))
        # Everything is computed and checked first, then copied: a bad value leaves no half-set network.
        values = {}
        for names, table, arrays in groups:
            for name in names:
                if table is not None and name in table:
                    value = _checked_param(name, arrays[name], table[name]).detach().cpu()
                else:
                    value = torch.empty(arrays[name].shape, dtype=torch.float64, device="cpu")  # host draw
                    init(name, value, attrs.get(name))
                # 1e6 into float16 is an error here, as in copy_params_from, not a silent inf
                values[name] = converted_on_host(f"Module.init_params: parameter {name!r}", value, arrays[name].dtype,
                                                 ParamError)
        with torch.no_grad():
            for names, _, arrays in groups:
                for name in names:
                    arrays[name].copy_(values[name])  # host-to-device transfer
        if self._replicas is not None:
            self._replicas.copy_all(self._param_names)
        self.params_initialized = True

    def set_params(self, arg_params: dict, aux_params: dict | None = None, allow_missing: bool = False,
                   force_init: bool = True, allow_extra: bool = False) -> None:
        """Assign parameter values (torch tensors or numpy arrays, converted to the bound dtype)."""
        if not self.binded:  # MXNet allows this before bind: keep them for bind
            self._preloaded = (dict(arg_params), dict(aux_params or {}), None)
            return
        self.init_params(None, arg_params, aux_params or {}, allow_missing, force_init, allow_extra)

    def get_params(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Host copies ``(arg_params, aux_params)`` of the current values."""
        self._require("get_params", bound=True, params=True)
        args = {n: self._arrays[n].to("cpu", copy=True) for n in self._param_names}
        # Each context updates its own auxiliary states from its part of the batch: their mean, as MXNet's.
        executors = self._all_executors()
        aux = {n: sum(e.aux_dict[n].to("cpu", torch.float64) for e in executors).div_(len(executors)).to(t.dtype)
               if len(executors) > 1 else t.to("cpu", copy=True) for n, t in self._exec.aux_dict.items()}
        return args, aux

    def _set_checked(self, args: dict, aux: dict, what: str) -> None:
        """Set parameters from a checkpoint: names, shapes and dtypes must all match."""
        expected = {n: (tuple(self._arrays[n].shape), self._arrays[n].dtype) for n in self._param_names}
        expected_aux = {n: (tuple(t.shape), t.dtype) for n, t in self._exec.aux_dict.items()}
        problems = model.describe_mismatch(args, expected) + model.describe_mismatch(aux, expected_aux)
        if problems:
            raise ParamError(f"Module: {what} does not fit the bound network: {'; '.join(problems)}")
        self.init_params(None, args, aux, force_init=True)

    # ------------------------------------------------------------------- optimizer

    def init_optimizer(self, kvstore="local", optimizer="sgd", optimizer_params=None,
                       force_init: bool = False) -> None:
        """Create the optimizer (a name or an ``Optimizer``) and bind it to the parameter
        region. ``optimizer_params`` (a dict or pairs) configure an optimizer given by name;
        by default ``learning_rate=0.01``, as MXNet. An ``Optimizer`` instance comes
        configured, and ``optimizer_params`` given with one is an error rather than
        ignored. ``rescale_grad`` defaults to 1 / batch size, so a summed loss gradient
        becomes a mean (an instance with another value is warned about); weight decay skips
        arguments not ending in ``_weight``/``_gamma``."""
        if self._updater is not None and not force_init:
            self.logger.warning("Module.init_optimizer: already initialized; ignoring (force_init=True to redo)")
            return
        self._require("init_optimizer", bound=True, params=True)
        if not self._for_training:
            raise BindError("Module.init_optimizer: the module was bound with for_training=False")
        kv = kvstore_module.create(kvstore if kvstore is not None else "local")
        if optimizer_params is None:
            optimizer_params = {"learning_rate": 0.01} if isinstance(optimizer, str) else {}
        params = dict(optimizer_params.items() if isinstance(optimizer_params, dict) else optimizer_params)
        # The gradient is summed over the workers' batches: the mean needs the global batch.
        batch_size = self._data_shapes[0].shape[0] * kv.num_workers
        if isinstance(optimizer, str):
            params.setdefault("rescale_grad", 1.0 / batch_size)
            # MXNet's numbering: every parameter, fixed ones included (the per-parameter API's index)
            params.setdefault("param_idx2name", dict(enumerate(self._param_names)))
            params.setdefault("sym", self._symbol)
        self._optimizer = opt_module.create(optimizer, **params)
        if not isinstance(optimizer, str) and abs(self._optimizer.rescale_grad - 1.0 / batch_size) > 1e-12:
            self.logger.warning("Module.init_optimizer: optimizer.rescale_grad=%g, but the batch size is %d (1/%d = "
                                "%g); the gradient is then not the batch mean", self._optimizer.rescale_grad,
                                batch_size, batch_size, 1.0 / batch_size)
        self._updater = opt_module.updater_for(self._optimizer, self._exec, self._param_names)
        self._sync = None
        if kv.num_workers > 1 and self._replicas is not None:
            raise BindError(f"Module.init_optimizer: kvstore={kv.type!r} with several contexts {self._contexts} in "
                            "one process is not supported; run one process per device (one context each)")
        if kv.num_workers > 1:
            self._sync = kvstore_module.GradientSync(kv, self._exec, getattr(kv, "bucket_bytes",
                                                                            kvstore_module.DEFAULT_BUCKET_BYTES),
                                                     self._param_names)
            shapes = ", ".join(f"{d.name} {d.shape} {d.dtype}" for d in self._data_shapes + self._label_shapes)
            self._sync.check_layout(f"{self._symbol.tojson()}\n{shapes}\n{self._optimizer!r}\n"
                                    f"fixed {self._fixed_param_names}")
            for region in self._exec.param_regions(self._param_names):  # every worker starts from rank 0's parameters
                kv.broadcast(region.weights)
            for name in self._fixed_param_names:
                kv.broadcast(self._arrays[name])
            for array in self._exec.aux_dict.values():
                kv.broadcast(array)
        if self._preloaded_states is not None:
            self._load_states(self._preloaded_states, paired_with=self._states_paired_with)
            self._preloaded_states = None

    # ------------------------------------------------------------------- one step

    def forward(self, data_batch: DataBatch, is_train: bool | None = None) -> None:
        """Run forward on a batch (``DataBatch`` or anything with ``data`` and ``label`` lists)."""
        self._require("forward", bound=True, params=True)
        is_train = self._for_training if is_train is None else is_train
        if is_train and self._replicas is not None:
            self._replicas.copy_loss_scale()  # a training forward may make the loss gradient (SoftmaxOutput)
        for executor, inputs in self._batch_inputs("forward", data_batch, is_train):
            executor.forward(is_train=is_train, **inputs)

    def _batch_inputs(self, what: str, data_batch: DataBatch, is_train: bool) -> list[tuple]:
        """``(executor, inputs by argument name)`` per context, for its part of the batch;
        makes those executors current."""
        if is_train and not self._for_training:
            raise BindError(f"Module.{what}: is_train=True, but the module was bound with for_training=False")
        data = _in_order(data_batch.data, getattr(data_batch, "provide_data", None), self._data_names)
        if len(data) != len(self._data_names):
            raise BindError(f"Module.{what}: the batch has {len(data)} data arrays for data_names "
                            f"{self._data_names}")
        inputs = dict(zip(self._data_names, data))
        labels = self._batch_labels(data_batch)
        if labels:
            if len(labels) != len(self._label_names):
                raise BindError(f"Module.{what}: the batch has {len(labels)} labels for label_names "
                                f"{self._label_names}")
            inputs.update(zip(self._label_names, labels))
        elif is_train and self._label_names:
            raise BindError(f"Module.{what}: training needs the labels {self._label_names}, the batch has none")
        shapes = {n: tuple(v.shape) for n, v in inputs.items()}
        if not labels and self._label_names:
            shapes.update(self._label_shapes_for(shapes))
        executors = self._executors_for(f"Module.{what}", shapes)
        if len(executors) == 1:
            return [(executors[0], inputs)]
        self._current_parts = self._slices(f"Module.{what}", shapes)
        return [(executor, {n: v[part] for n, v in inputs.items()})
                for executor, part in zip(executors, self._current_parts)]

    def _batch_labels(self, data_batch: DataBatch) -> list:
        """The batch's labels in ``label_names`` order (see ``_in_order``)."""
        return _in_order(getattr(data_batch, "label", None) or [], getattr(data_batch, "provide_label", None),
                         self._label_names)

    def _label_shapes_for(self, data_shapes: dict) -> dict:
        """The label shapes that follow from these data shapes (for batches without labels)."""
        key = self._shape_key(data_shapes)
        if key not in self._inferred_labels:
            arg_shapes, _, _ = self._symbol.infer_shape_partial(**data_shapes)
            inferred = dict(zip(self._symbol.list_arguments(), arg_shapes))
            self._inferred_labels[key] = {n: tuple(inferred.get(n) or self._arrays[n].shape)
                                          for n in self._label_names}
        return self._inferred_labels[key]

    def backward(self, out_grads=None) -> None:
        """Backward; with ``dist_sync``, each gradient bucket's all-reduce starts as soon as it is final."""
        self._require("backward", bound=True, forward=True)
        if self._sync is not None:
            self._sync.backward(self._current, out_grads)
        elif self._replicas is not None:
            self._replicas.copy_loss_scale()
            given = out_grads if out_grads is None or isinstance(out_grads, (list, tuple)) else [out_grads]
            for executor, part in zip(self._current_executors(), self._current_parts):
                executor.backward(None if given is None else [g[part] for g in given])
        else:
            self._current.backward(out_grads)

    def update(self) -> None:
        """Apply the optimizer to every trained parameter from its gradient: one launch per dtype
        (an optimizer written with MXNet's per-parameter ``update``: one call per parameter)."""
        self._require("update", optimizer=True)
        if self._sync is not None:
            self._sync.finish()  # the summed gradients, the same on every worker
        if self._replicas is not None:
            self._replicas.sum_gradients()
        self._updater.step()
        if self._replicas is not None:
            self._replicas.copy_weights()

    def loss_scale_status(self) -> dict | None:
        """The optimizer's loss scale: ``{"scale", "good_steps", "skipped_steps"}`` (one
        read-back from the device), or None when the optimizer has no ``loss_scale``."""
        self._require("loss_scale_status", optimizer=True)
        return self._updater.loss_scale_status()

    def forward_backward(self, data_batch: DataBatch) -> None:
        self.forward(data_batch, is_train=True)
        self.backward()

    def train_step(self, data_batch: DataBatch) -> None:
        """``forward_backward(data_batch)`` then ``update()``, what ``fit`` runs per batch. With
        ``cuda_graph=True`` and no distributed kvstore the three are one phase of the
        executor, so a step replays one CUDA graph (``Executor.forward_backward``)."""
        self._require("train_step", bound=True, params=True, optimizer=True)
        if self._sync is not None or self._replicas is not None or not getattr(self._updater, "graphable", True):
            # dist_sync reduces gradient buckets between backward steps; several contexts sum theirs; a
            # per-parameter optimizer runs Python code that a graph replay would skip
            self.forward_backward(data_batch)
            self.update()
            return
        [(_, inputs)] = self._batch_inputs("train_step", data_batch, is_train=True)
        before = self._updater.optimizer.num_update
        self._updater.prepare()
        try:
            self._current.forward_backward(then=self._updater.launch_all, **inputs)
        except BaseException:
            self._updater.optimizer.num_update = before  # no update ran: the schedule has not moved
            raise

    def get_outputs(self, merge_multi_context: bool = True) -> list:
        """The outputs of the last forward (views into the workspace: copy them to keep them).
        With several contexts, each output is their parts concatenated (a new tensor on the
        first context), or with ``merge_multi_context=False`` a list of the parts, as MXNet's."""
        self._require("get_outputs", bound=True, forward=True)
        return self._merged([e.outputs for e in self._current_executors()], merge_multi_context)

    def get_input_grads(self, merge_multi_context: bool = True) -> list:
        """The gradients of the data inputs (bound with ``inputs_need_grad=True``), merged over contexts as
        ``get_outputs``."""
        if not self._inputs_need_grad:
            raise BindError("Module.get_input_grads: bind with inputs_need_grad=True")
        self._require("get_input_grads", forward=True)
        return self._merged([[e.grad_dict[n] for n in self._data_names] for e in self._current_executors()],
                            merge_multi_context)

    def _merged(self, per_context: list[list[torch.Tensor]], merge: bool) -> list:
        if len(per_context) == 1:
            return per_context[0] if merge else [[t] for t in per_context[0]]
        parts = [list(column) for column in zip(*per_context)]
        if not merge:
            return parts
        device = self._context.torch_device
        return [torch.cat([p.to(device) for p in column]) for column in parts]

    def update_metric(self, eval_metric, labels: Sequence[torch.Tensor], pad: int = 0) -> None:
        """Add the last forward's outputs against ``labels`` to ``eval_metric``, by name
        (``EvalMetric.update_dict``: a metric given ``output_names`` / ``label_names`` reads
        only those); the last ``pad`` samples (filler from the iterator) are left out."""
        self._require("update_metric", bound=True, forward=True)
        executors = self._current_executors()
        parts = self._current_parts if len(executors) > 1 else [slice(0, executors[0].outputs[0].shape[0])]
        total = parts[-1].stop
        for executor, part in zip(executors, parts):  # each context's part, without the padding in it
            n = max(0, min(part.stop, total - pad) - part.start)
            if n == 0:
                continue
            eval_metric.update_dict({name: lab[part.start:part.start + n] for name, lab in zip(self._label_names,
                                                                                               labels)},
                                    {name: out[:n] for name, out in zip(self.output_names, executor.outputs)})

    # ---------------------------------------------------------------- checkpoints

    def save_checkpoint(self, prefix: str, epoch: int, save_optimizer_states: bool = False) -> None:
        """``prefix-symbol.json``, ``prefix-%04d.safetensors`` (and ``.states.safetensors``), each atomic."""
        self._symbol.save(f"{prefix}-symbol.json")
        digest = model.save_params(model.params_path(prefix, epoch), *self.get_params(), epoch)
        if save_optimizer_states:  # written second, recording which weights it belongs to
            self._save_states(model.states_path(prefix, epoch), {"params_file": os.path.basename(
                model.params_path(prefix, epoch)), "params_sha256": digest})

    @staticmethod
    def load(prefix: str, epoch: int, load_optimizer_states: bool = False, **kwargs) -> "Module":
        """A module from a checkpoint; its parameters are set (and checked for names, shapes
        and dtypes) at ``bind``, the optimizer states at ``init_optimizer``."""
        sym, _, _ = model.load_checkpoint(prefix, epoch)
        mod = Module(sym, **kwargs)
        mod.preload_checkpoint(prefix, epoch, load_optimizer_states)
        return mod

    def preload_checkpoint(self, prefix: str, epoch: int, load_optimizer_states: bool = False) -> None:
        """Take this (unbound) module's parameters from a checkpoint when it binds, and its
        optimizer states when ``init_optimizer`` runs (``Module.load``, ``BucketingModule.load``)."""
        _, args, aux = model.load_checkpoint(prefix, epoch)
        missing = [n for n in self._param_names if n not in args]
        if missing:
            raise ParamError(f"Module.load: {model.params_path(prefix, epoch)} lacks the parameters {missing}")
        self._preloaded = (args, aux, f"checkpoint {model.params_path(prefix, epoch)}")
        if load_optimizer_states:
            self._preloaded_states = model.states_path(prefix, epoch)
            self._states_paired_with = model.params_path(prefix, epoch)

    def save_optimizer_states(self, fname: str) -> None:
        self._save_states(fname, {})

    def _save_states(self, fname: str, pairing: dict) -> None:
        self._require("save_optimizer_states", optimizer=True)
        tensors = self._updater.state_dict()
        # Where the network draws dropout masks, the devices' random states (seed and step) go
        # with the optimizer's: a resumed run draws the masks the uninterrupted one would.
        tensors.update({f"{_RANDOM}{device}": random.device_state(device).to("cpu", copy=True)
                        for device in self._drawing_devices()})
        model.save_tensors(fname, tensors, {"format": model.STATES_FORMAT, "optimizer": repr(self._optimizer),
                                            **pairing})

    def _drawing_devices(self) -> list[torch.device]:
        """The devices whose random state this module's forwards advance."""
        executors = self._all_executors() if self.binded else []
        return sorted({e.ctx.torch_device for e in executors if e.draws_random}, key=str)

    def load_optimizer_states(self, fname: str) -> None:
        self._load_states(fname)

    def _load_states(self, fname: str, paired_with: str | None = None) -> None:
        """Load optimizer states; ``paired_with`` (Module.load's weights file) must be the
        file they were saved with."""
        self._require("load_optimizer_states", optimizer=True)
        states, metadata = model.load_tensors(fname, model.STATES_FORMAT)
        if paired_with is not None:
            model.check_pair(fname, metadata, paired_with)
        saved_by = metadata.get("optimizer", "?").split("(")[0]
        if saved_by != type(self._optimizer).__name__:
            raise ParamError(f"Module.load_optimizer_states: {fname} holds the states of {saved_by}, but this "
                             f"module's optimizer is {type(self._optimizer).__name__}")
        random_states = {key[len(_RANDOM):]: states.pop(key) for key in sorted(states) if key.startswith(_RANDOM)}
        for key, value in random_states.items():
            if value.dtype != torch.int64 or tuple(value.shape) != (2,):
                raise ParamError(f"Module.load_optimizer_states: {fname}: {_RANDOM}{key} is {dtype_name(value.dtype)} "
                                 f"of shape {tuple(value.shape)}, not a random state (seed, step) of int64")
        self._updater.load_state_dict(states)
        # Each drawing device takes the state saved for it; saved on another device (a GPU's
        # run resumed on the CPU), the one state saved: the masks are the same on every device.
        devices = self._drawing_devices()
        for device in devices:
            value = random_states.get(str(device))
            if value is None and len(random_states) == 1 and len(devices) == 1:
                value = next(iter(random_states.values()))
            if value is not None:
                random.device_state(device).copy_(value)  # in place: a captured graph reads its address

    def __repr__(self) -> str:
        state = "bound" if self.binded else "not bound"
        shapes = ", ".join(f"{d.name} {d.shape} {dtype_name(d.dtype)}" for d in self._data_shapes)
        return f"Module({', '.join(self._symbol.list_outputs())}; {state}{': ' + shapes if shapes else ''})"


def _in_order(arrays, descs, names: Sequence[str]) -> list:
    """A batch's arrays in ``names`` order, matched by the names its iterator gave them
    (``provide_data`` / ``provide_label``) when those are exactly ``names``: an iterator
    built from ``{"b_label": ..., "a_label": ...}`` must not feed b's labels to a's head.
    Without names (or with others) the arrays are taken in order, as MXNet does."""
    arrays = list(arrays)
    given = [d.name for d in descs or []]
    if len(given) != len(arrays) or sorted(given) != sorted(names):
        return arrays
    by_name = dict(zip(given, arrays))
    return [by_name[n] for n in names]


def _checked_param(name: str, dst: torch.Tensor, value) -> torch.Tensor:
    """``value`` as a tensor of ``dst``'s shape, or an error naming the parameter."""
    src = user_tensor(f"Module: parameter {name!r}", value, ParamError)
    if tuple(src.shape) != tuple(dst.shape):
        raise ParamError(f"Module: parameter {name!r} has shape {tuple(src.shape)}, the network expects "
                         f"{tuple(dst.shape)}")
    return src
