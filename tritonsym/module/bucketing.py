"""BucketingModule: one bound network per bucket (a sequence length, say), sharing parameters.

MXNet's ``mx.mod.BucketingModule``. ``sym_gen(bucket_key)`` returns ``(symbol, data_names,
label_names)`` for a bucket; the module binds the ``default_bucket_key`` first, and each
other bucket the first time a batch of it arrives (``switch_bucket``), as a ``Module`` bound
with ``shared_module=`` the default one: its parameters, their gradients, the auxiliary
states and the optimizer are the default bucket's, so every bucket trains the same weights
and one flat update serves them all. Each bucket has a static workspace of its own for
its internal values, planned once; a batch says its bucket by ``DataBatch.bucket_key`` and
its shapes by ``provide_data`` / ``provide_label``.

The default bucket must hold every parameter (the largest network, as in MXNet).
"""

from __future__ import annotations

import logging
from typing import Callable

from ..base import BindError, ParamError
from ..io.ndarray_iter import DataBatch
from .loops import TrainingLoops
from .module import Module


class BucketingModule(TrainingLoops):
    """Networks per bucket over shared parameters; see the module docstring. Other keyword
    arguments (``mirror``, ``memory_plan``, ``check_finite``, ``cuda_graph``) go to every
    bucket's ``Module``."""

    def __init__(self, sym_gen: Callable, default_bucket_key=None, logger: logging.Logger | None = None,
                 context=None, work_load_list=None, fixed_param_names=None, state_names=None, **module_options):
        if not callable(sym_gen):
            raise ParamError(f"BucketingModule: sym_gen must be a function bucket_key -> (symbol, data_names, "
                             f"label_names), got {type(sym_gen).__name__}")
        if default_bucket_key is None:
            raise ParamError("BucketingModule: default_bucket_key is required (the bucket bound first, whose network "
                             "holds every parameter)")
        if state_names:
            raise ParamError(f"BucketingModule: state_names={state_names!r}: tritonsym has no state arrays outside the "
                             "parameters and auxiliary states")
        self._sym_gen = sym_gen
        self._default_bucket_key = default_bucket_key
        self.logger = logger or logging.getLogger("tritonsym")
        self._module_args = dict(context=context, work_load_list=work_load_list, fixed_param_names=fixed_param_names,
                                 logger=self.logger, **module_options)
        self._buckets: dict = {}
        self._curr_module: Module = self._make(default_bucket_key)  # checks sym_gen's answer now
        self._curr_bucket_key = default_bucket_key
        self._bind_args: dict | None = None

    def _make(self, bucket_key) -> Module:
        made = self._sym_gen(bucket_key)
        if not (isinstance(made, tuple) and len(made) == 3):
            raise ParamError(f"BucketingModule: sym_gen({bucket_key!r}) must return (symbol, data_names, label_names), "
                             f"got {type(made).__name__}")
        symbol, data_names, label_names = made
        return Module(symbol, data_names=data_names, label_names=label_names, **self._module_args)

    # ------------------------------------------------------------------ properties

    default_bucket_key = property(lambda self: self._default_bucket_key)
    bucket_key = property(lambda self: self._curr_bucket_key)
    buckets = property(lambda self: dict(self._buckets))
    symbol = property(lambda self: self._curr_module.symbol)
    data_names = property(lambda self: self._curr_module.data_names)
    label_names = property(lambda self: self._curr_module.label_names)
    output_names = property(lambda self: self._curr_module.output_names)
    binded = property(lambda self: bool(self._buckets))
    for_training = property(lambda self: self._curr_module.for_training)
    optimizer_initialized = property(lambda self: self._default.optimizer_initialized)
    optimizer = property(lambda self: self._default.optimizer)
    data_shapes = property(lambda self: self._curr_module.data_shapes)
    label_shapes = property(lambda self: self._curr_module.label_shapes)
    output_shapes = property(lambda self: self._curr_module.output_shapes)
    context = property(lambda self: self._curr_module.context)

    @property
    def params_initialized(self) -> bool:
        return self._default.params_initialized if self._buckets else False

    @property
    def _default(self) -> Module:
        return self._buckets.get(self._default_bucket_key, self._curr_module)

    @property
    def executor(self):
        """The default bucket's executor: it owns the parameters (``Executor.memory``: its plan)."""
        return self._default.executor

    # What the training loops (loops.py) ask of the module they drive, from the bucket in use.
    _updater = property(lambda self: self._default._updater)
    _optimizer = property(lambda self: self._default._optimizer)
    _param_names = property(lambda self: self._default._param_names)

    def _current_executors(self) -> list:
        return self._curr_module._current_executors()

    def _batch_labels(self, data_batch: DataBatch) -> list:
        return self._curr_module._batch_labels(data_batch)

    def _require(self, what: str, bound=False, params=False, optimizer=False, forward=False) -> None:
        if bound and not self._buckets:
            raise BindError(f"BucketingModule.{what}: call bind() first (or fit(), which binds)")
        self._curr_module._require(what, bound, params, optimizer, forward)

    # ------------------------------------------------------------------------ bind

    def bind(self, data_shapes, label_shapes=None, for_training: bool = True, inputs_need_grad: bool = False,
             force_rebind: bool = False, shared_module=None, grad_req: str = "write") -> None:
        """Bind the default bucket for these shapes (the others bind when their first batch comes)."""
        if self._buckets and not force_rebind:
            self.logger.warning("BucketingModule.bind: already bound; ignoring (pass force_rebind=True to bind again)")
            return
        if shared_module is not None:
            raise BindError("BucketingModule.bind: shared_module is not supported (the buckets share the default "
                            "bucket's parameters)")
        saved = self.get_params() if self.params_initialized else None
        module = self._make(self._default_bucket_key) if self._buckets else self._curr_module
        module.bind(data_shapes, label_shapes, for_training, inputs_need_grad, force_rebind=True, grad_req=grad_req)
        self._buckets = {self._default_bucket_key: module}
        self._curr_module, self._curr_bucket_key = module, self._default_bucket_key
        self._bind_args = dict(for_training=for_training, inputs_need_grad=inputs_need_grad, grad_req=grad_req)
        if saved is not None:
            module.set_params(*saved)

    def switch_bucket(self, bucket_key, data_shapes, label_shapes=None) -> None:
        """Make ``bucket_key`` the bucket in use, binding it (over the default bucket's
        parameters) the first time."""
        self._require("switch_bucket", bound=True)
        if bucket_key is None:
            bucket_key = self._default_bucket_key
        if bucket_key not in self._buckets:
            module = self._make(bucket_key)
            module.bind(data_shapes, label_shapes, shared_module=self._default, **self._bind_args)
            self._buckets[bucket_key] = module
        self._curr_module, self._curr_bucket_key = self._buckets[bucket_key], bucket_key

    def prepare(self, data_batch: DataBatch, sparse_row_id_fn=None) -> None:
        """Bind the batch's bucket ahead of its forward (MXNet's)."""
        self._switch_for(data_batch)

    def _switch_for(self, data_batch: DataBatch) -> None:
        key = getattr(data_batch, "bucket_key", None)
        provide_data = getattr(data_batch, "provide_data", None)
        if key is not None and key != self._default_bucket_key and key not in self._buckets and provide_data is None:
            raise BindError(f"BucketingModule: a batch of bucket {key!r} must say its shapes (provide_data, "
                            "provide_label) for that bucket to be bound")
        self.switch_bucket(key, provide_data, getattr(data_batch, "provide_label", None))

    # ------------------------------------------------------------------ parameters

    def init_params(self, initializer=None, arg_params=None, aux_params=None, allow_missing: bool = False,
                    force_init: bool = False, allow_extra: bool = False) -> None:
        self._require("init_params", bound=True)
        self._default.init_params(initializer, arg_params, aux_params, allow_missing, force_init, allow_extra)
        for module in self._buckets.values():
            module.params_initialized = True  # the same arrays

    def set_params(self, arg_params, aux_params=None, allow_missing: bool = False, force_init: bool = True,
                   allow_extra: bool = False) -> None:
        self._require("set_params", bound=True)
        self.init_params(None, arg_params, aux_params or {}, allow_missing, force_init, allow_extra)

    def get_params(self):
        return self._default.get_params()

    def init_optimizer(self, kvstore="local", optimizer="sgd", optimizer_params=None, force_init: bool = False) -> None:
        """The default bucket's optimizer, borrowed by every bucket (one update of the shared parameters)."""
        self._require("init_optimizer", bound=True)
        self._default.init_optimizer(kvstore, optimizer, optimizer_params, force_init)
        for key, module in self._buckets.items():
            if key != self._default_bucket_key:
                module.borrow_optimizer(self._default)

    def borrow_optimizer(self, shared_module) -> None:
        self._default.borrow_optimizer(shared_module)

    # ------------------------------------------------------------------- one step

    def forward(self, data_batch: DataBatch, is_train: bool | None = None) -> None:
        """Forward on the batch's bucket (bound on its first batch)."""
        self._require("forward", bound=True, params=True)
        self._switch_for(data_batch)
        self._curr_module.forward(data_batch, is_train)

    def backward(self, out_grads=None) -> None:
        self._curr_module.backward(out_grads)

    def update(self) -> None:
        self._curr_module.update()

    def forward_backward(self, data_batch: DataBatch) -> None:
        self.forward(data_batch, is_train=True)
        self.backward()

    def train_step(self, data_batch: DataBatch) -> None:
        """Forward, backward and update on the batch's bucket (one graph replay per bucket with
        ``cuda_graph=True``)."""
        self._require("train_step", bound=True, params=True, optimizer=True)
        self._switch_for(data_batch)
        self._curr_module.train_step(data_batch)

    def get_outputs(self, merge_multi_context: bool = True) -> list:
        return self._curr_module.get_outputs(merge_multi_context)

    def get_input_grads(self, merge_multi_context: bool = True) -> list:
        return self._curr_module.get_input_grads(merge_multi_context)

    def update_metric(self, eval_metric, labels, pad: int = 0) -> None:
        self._curr_module.update_metric(eval_metric, labels, pad)

    def loss_scale_status(self) -> dict | None:
        return self._default.loss_scale_status()

    # ---------------------------------------------------------------- checkpoints

    def save_checkpoint(self, prefix: str, epoch: int, save_optimizer_states: bool = False) -> None:
        """The default bucket's symbol and the shared parameters (and optimizer states)."""
        self._require("save_checkpoint", bound=True, params=True)
        self._default.save_checkpoint(prefix, epoch, save_optimizer_states)

    def save_optimizer_states(self, fname: str) -> None:
        self._default.save_optimizer_states(fname)

    def load_optimizer_states(self, fname: str) -> None:
        self._default.load_optimizer_states(fname)

    @staticmethod
    def load(prefix: str, epoch: int, sym_gen: Callable = None, default_bucket_key=None,
             load_optimizer_states: bool = False, **kwargs) -> "BucketingModule":
        """A BucketingModule whose parameters (and optimizer states) come from a checkpoint,
        set when it binds, as ``Module.load``."""
        module = BucketingModule(sym_gen, default_bucket_key, **kwargs)
        module._curr_module.preload_checkpoint(prefix, epoch, load_optimizer_states)
        return module

    def __repr__(self) -> str:
        return (f"BucketingModule(default bucket {self._default_bucket_key!r}; buckets bound: "
                f"{list(self._buckets) or 'none'})")
