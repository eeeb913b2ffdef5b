"""Optimizers: their hyper-parameters, per-argument multipliers, and the kernel each runs.

An optimizer here does not loop over parameters. ``FlatUpdater`` (``updater.py``) lays
every trainable parameter of an executor out as segments of one flat region, and the
optimizer contributes the per-step scalars (``hyper``) and the one launch that updates
the whole region (``tritonsym.ops.optimizer``).

MXNet's conventions: the gradient is multiplied by ``rescale_grad`` (Module sets it to 1 /
batch size), clipped to ``[-clip_gradient, clip_gradient]``, then ``wd * weight`` is added
(AdamW instead shrinks the weight by ``lr * wd``); weight decay applies only to arguments
ending in ``_weight`` or ``_gamma`` unless a ``wd_mult`` says otherwise; ``lr_mult`` /
``wd_mult`` come from the symbol's variables (``Variable(..., lr_mult=0.1)``) and from
``set_lr_mult`` / ``set_wd_mult``.

``multi_precision=True`` keeps a float32 master copy of float16/bfloat16 parameters as
one more optimizer state (``master``), so that updates smaller than the weight's rounding
step accumulate instead of vanishing; float32/float64 parameters need none.

MXNet's per-parameter API is here too: ``create_state(index, weight)`` and
``update(index, weight, grad, state)`` (with ``_get_lr(index)``, ``_get_wd(index)``,
``_update_count(index)`` and the ``_multi_precision`` variants). The built-ins implement it
with their kernels on one tensor; a Python subclass that implements only it (MXNet's way
of writing an optimizer) trains through ``ParameterUpdater``: one ``update`` call per
parameter per step, slower than the flat launch but any code the user writes.
"""

from __future__ import annotations

import math

import torch

from ..base import ParamError, warn
from ..ops import optimizer as kernels
from .loss_scaler import LossScaler, loss_scaler_from
from .lr_scheduler import LRScheduler

OPTIMIZERS: dict[str, type["Optimizer"]] = {}


def register(cls: type["Optimizer"]) -> type["Optimizer"]:
    """Make an optimizer class creatable by its lower-cased name (MXNet's ``mx.optimizer.register``)."""
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise ParamError(f"optimizer.register: {cls!r} is not a subclass of tritonsym.optimizer.Optimizer")
    OPTIMIZERS[cls.__name__.lower()] = cls
    return cls


def per_parameter(optimizer: "Optimizer") -> bool:
    """Whether ``optimizer`` updates through MXNet's per-parameter ``update(index, weight,
    grad, state)`` rather than a flat launch: its class (or the nearest base that defines
    either) defines ``update`` and not ``plan``."""
    for klass in type(optimizer).__mro__:
        if "plan" in vars(klass):
            return False
        if "update" in vars(klass) or "update_multi_precision" in vars(klass):
            return klass is not Optimizer
    return False


def create(name: "str | Optimizer", **kwargs) -> "Optimizer":
    """An optimizer by name (``"sgd"``, ``"adam"``), or the given instance unchanged."""
    if isinstance(name, Optimizer):
        if kwargs:
            raise ParamError(f"optimizer: optimizer_params {sorted(kwargs)} cannot be applied to an optimizer "
                             "instance; set them when constructing it")
        return name
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise ParamError(f"optimizer: unknown optimizer {name!r}; known: {', '.join(sorted(OPTIMIZERS))}")
    return OPTIMIZERS[name.lower()](**kwargs)


def _number(owner: str, name: str, value, low: float, high: float = math.inf, low_open: bool = False,
            high_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < low or (low_open and value == low) or value > high or (high_open and value == high):
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ParamError(f"{owner}: {name}={value!r} must be a number in {lo}{low}, {high}{hi}")
    return float(value)


# ``Optimizer(state_dtype=...)``: the default, torch.optim's parameter dtype, float32.
STATE_DTYPES = (None, "param", "float32")


class Optimizer:
    """Base of the optimizers: learning rate (or scheduler), weight decay, gradient scaling
    and clipping, per-argument multipliers, and the update counter."""

    hyper_slots: tuple[str, ...] = ()

    def __init__(self, learning_rate: float = 0.01, wd: float = 0.0, rescale_grad: float = 1.0,
                 clip_gradient: float | None = None, lr_scheduler: LRScheduler | None = None,
                 begin_num_update: int = 0, param_idx2name: dict | None = None, sym=None,
                 multi_precision: bool | None = None, loss_scale: "str | float | LossScaler | None" = None,
                 state_dtype: str | None = None, clip_global_norm: float | None = None):
        owner = type(self).__name__
        self.lr = _number(owner, "learning_rate", learning_rate, 0.0)
        self.wd = _number(owner, "wd", wd, 0.0)
        self.rescale_grad = _number(owner, "rescale_grad", rescale_grad, 0.0, low_open=True)
        # The largest norm of all the gradients of a step together (torch's clip_grad_norm_,
        # Gluon's clip_global_norm): the flat updater multiplies every gradient by
        # min(1, clip_global_norm / norm) on the device (ops/grad_norm.py), before clip_gradient.
        self.clip_global_norm = None if clip_global_norm is None else _number(
            owner, "clip_global_norm", clip_global_norm, 0.0, low_open=True)
        self.clip_gradient = None if clip_gradient is None else _number(owner, "clip_gradient", clip_gradient, 0.0,
                                                                        low_open=True)
        if lr_scheduler is not None and not callable(lr_scheduler):
            raise ParamError(f"{owner}: lr_scheduler must be an LRScheduler (or a function of num_update), got "
                             f"{type(lr_scheduler).__name__}")
        self.lr_scheduler = lr_scheduler
        if multi_precision is not None and not isinstance(multi_precision, bool):
            raise ParamError(f"{owner}: multi_precision={multi_precision!r} must be True or False")
        self._multi_precision = multi_precision
        if state_dtype not in STATE_DTYPES:
            raise ParamError(f"{owner}: state_dtype={state_dtype!r} must be None (the default: bfloat16 states "
                             "for bfloat16 parameters, float32 for float16 ones), 'param' (always the parameter's "
                             "dtype, as torch.optim) or 'float32'")
        self.state_dtype = state_dtype
        self.loss_scaler = loss_scaler_from(owner, loss_scale)
        if isinstance(lr_scheduler, LRScheduler) and lr_scheduler.base_lr is None:
            lr_scheduler.base_lr = self.lr
        self.num_update = int(begin_num_update)
        self.begin_num_update = int(begin_num_update)
        self._index_update_count: dict = {}  # per-parameter API: updates so far, by index
        self.idx2name = dict(param_idx2name or {})
        self.lr_mult: dict[str, float] = {}
        self.wd_mult: dict[str, float] = {}
        self._sym_attrs = sym.attr_dict() if sym is not None else {}
        self.set_lr_mult({})
        self.set_wd_mult({})

    # ------------------------------------------------------------ per-argument multipliers

    def set_lr_mult(self, args_lr_mult: dict[str, float]) -> None:
        """Learning-rate multipliers by argument name (the symbol's ``__lr_mult__`` first)."""
        self.lr_mult = {n: float(a["__lr_mult__"]) for n, a in self._sym_attrs.items() if "__lr_mult__" in a}
        self.lr_mult.update({n: _number(type(self).__name__, f"lr_mult[{n!r}]", v, 0.0)
                             for n, v in args_lr_mult.items()})

    def set_wd_mult(self, args_wd_mult: dict[str, float]) -> None:
        """Weight-decay multipliers by argument name. Arguments not ending in ``_weight`` or
        ``_gamma`` (biases, ``beta``) get 0, then the symbol's ``__wd_mult__``, then these."""
        self.wd_mult = {n: 0.0 for n in self.idx2name.values() if not n.endswith(("_weight", "_gamma"))}
        self.wd_mult.update({n: float(a["__wd_mult__"]) for n, a in self._sym_attrs.items() if "__wd_mult__" in a})
        self.wd_mult.update({n: _number(type(self).__name__, f"wd_mult[{n!r}]", v, 0.0)
                             for n, v in args_wd_mult.items()})

    def multipliers(self, name: str) -> tuple[float, float]:
        """``(lr_mult, wd_mult)`` of one argument."""
        wd_default = 1.0 if name.endswith(("_weight", "_gamma")) else 0.0
        return self.lr_mult.get(name, 1.0), self.wd_mult.get(name, wd_default)

    # --------------------------------------------------------------------- per step

    @property
    def learning_rate(self) -> float:
        """The rate of the next update (from the scheduler when there is one)."""
        return self.lr_scheduler(self.num_update + 1) if self.lr_scheduler else self.lr

    def set_learning_rate(self, lr: float) -> None:
        if self.lr_scheduler is not None:
            raise ParamError(f"{type(self).__name__}: the learning rate comes from lr_scheduler; change the "
                             "scheduler instead of calling set_learning_rate")
        self.lr = _number(type(self).__name__, "learning_rate", lr, 0.0)

    def hyper(self, num_update: int) -> dict[str, float]:
        """The scalars of update number ``num_update`` (from 1), by ``hyper_slots`` name."""
        lr = self.lr_scheduler(num_update) if self.lr_scheduler else self.lr
        return dict(learning_rate=lr, wd=self.wd, rescale_grad=self.rescale_grad,
                    clip_gradient=self.clip_gradient or 0.0)

    # ------------------------------------------------------------------ the kernel

    @property
    def multi_precision(self) -> bool:
        return bool(self._multi_precision)

    @multi_precision.setter
    def multi_precision(self, value: bool) -> None:  # MXNet's subclasses set it in __init__
        if not isinstance(value, bool):
            raise ParamError(f"{type(self).__name__}: multi_precision={value!r} must be True or False")
        self._multi_precision = value

    def state_names(self, dtype: torch.dtype) -> tuple[str, ...]:
        """Per-element state buffers of a region of ``dtype`` parameters, each the size of the region."""
        return ("master",) if self.multi_precision and dtype in kernels.HALF_DTYPES else ()

    def state_dtype_for(self, dtype: torch.dtype) -> torch.dtype:
        """The dtype of the states (momentum, Adam's moments) of ``dtype`` parameters: the
        parameter's own, as torch.optim keeps them, except float16's by default: float16
        holds nothing below 6e-8, so Adam's second moment of small gradients flushes to zero
        and the step explodes (``tritonsym train --dtype float16 --no-multi-precision``
        diverged to NaN in its first epoch with float16 states). ``state_dtype='param'``
        keeps float16 states anyway, ``'float32'`` (or ``multi_precision``, MXNet's float32
        master copy and states) float32 ones for both half dtypes. A master copy is
        always float32."""
        if dtype not in kernels.HALF_DTYPES or self.state_dtype == "param" and not self.multi_precision:
            return dtype
        if self.state_dtype == "float32" or self.multi_precision or dtype == torch.float16:
            return torch.float32
        return dtype

    def warn_if_updates_may_vanish(self, dtype: torch.dtype) -> None:
        """MXNet's warning for half-precision parameters updated without a master copy,
        unless ``multi_precision`` was given either way."""
        if dtype in kernels.HALF_DTYPES and self._multi_precision is None:
            warn(f"{type(self).__name__}: {dtype} parameters are updated in {dtype}, so an update smaller than "
                 "half the weight's rounding step is lost and training can stall; pass multi_precision=True for a "
                 "float32 master copy (or False to silence this)")

    def plan(self, weight: torch.Tensor, grad: torch.Tensor, states: dict[str, torch.Tensor],
             chunks: kernels.ChunkTable, hyper: torch.Tensor, scaler: kernels.LossScaleState | None = None,
             clip_state: torch.Tensor | None = None) -> list:
        """The launches updating one flat region (``FlatUpdater``'s); ``scaler``: unscale the
        gradients and skip an overflowed step; ``clip_state``: multiply the gradients by its
        first element (``clip_global_norm``'s coefficient, ``ops.grad_norm``). An optimizer
        whose plan() lacks either argument is refused where it is needed."""
        raise NotImplementedError

    # ------------------------------------------------- MXNet's per-parameter API

    def create_state(self, index, weight: torch.Tensor):
        """The state ``update`` keeps for parameter ``index`` (None, a tensor or a tuple of them)."""
        return None

    def create_state_multi_precision(self, index, weight: torch.Tensor):
        """With ``multi_precision`` and a float16/bfloat16 weight: ``(float32 master copy, its
        create_state)``, as MXNet's; else ``create_state``."""
        if self.multi_precision and weight.dtype in kernels.HALF_DTYPES:
            master = weight.to(torch.float32, copy=True)
            return master, self.create_state(index, master)
        return self.create_state(index, weight)

    def update(self, index, weight: torch.Tensor, grad: torch.Tensor, state) -> None:
        """Update ``weight`` in place from ``grad`` (MXNet's per-parameter API)."""
        raise NotImplementedError(f"{type(self).__name__}: define update(index, weight, grad, state) (MXNet's "
                                  "per-parameter API) or plan() (the flat launch)")

    def update_multi_precision(self, index, weight: torch.Tensor, grad: torch.Tensor, state) -> None:
        """``update`` on the float32 master copy, then the weight rounded from it (with
        ``multi_precision`` and a half-precision weight); else ``update``."""
        if self.multi_precision and weight.dtype in kernels.HALF_DTYPES:
            master, inner = state
            self.update(index, master, grad.to(torch.float32), inner)
            weight.copy_(master)
        else:
            self.update(index, weight, grad, state)

    def _update_count(self, index) -> None:
        """Count an update of ``index`` (or of each index of a list); ``num_update`` is the most of any."""
        if self.clip_global_norm is not None:
            raise ParamError(f"{type(self).__name__}: clip_global_norm needs every gradient of the step at once; the "
                             "per-parameter update(index, weight, grad, state) sees one (bind a Module or use "
                             "FlatUpdater, whose launches take the norm on the device)")
        for i in index if isinstance(index, (list, tuple)) else [index]:
            self._index_update_count[i] = self._index_update_count.get(i, self.begin_num_update) + 1
            self.num_update = max(self._index_update_count[i], self.num_update)

    def _multipliers_of(self, index) -> tuple[float, float]:
        if index in self.idx2name:
            return self.multipliers(self.idx2name[index])
        return self.lr_mult.get(index, 1.0), self.wd_mult.get(index, 1.0)  # MXNet: an unnamed index decays

    def _get_lr(self, index) -> float:
        """The learning rate of the update of ``index`` (scheduler at ``num_update``, times its lr_mult)."""
        lr = self.lr_scheduler(self.num_update) if self.lr_scheduler else self.lr
        return lr * self._multipliers_of(index)[0]

    def _get_wd(self, index) -> float:
        return self.wd * self._multipliers_of(index)[1]

    def _get_lrs(self, indices) -> list[float]:
        return [self._get_lr(i) for i in indices]

    def _get_wds(self, indices) -> list[float]:
        return [self._get_wd(i) for i in indices]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({fields})"

    def _config(self) -> dict:
        given = {} if self._multi_precision is None else dict(multi_precision=self._multi_precision)
        if self.state_dtype is not None:
            given["state_dtype"] = self.state_dtype
        if self.loss_scaler is not None:
            given["loss_scale"] = self.loss_scaler
        if self.clip_global_norm is not None:
            given["clip_global_norm"] = self.clip_global_norm
        return dict(learning_rate=self.lr, wd=self.wd, rescale_grad=self.rescale_grad,
                    clip_gradient=self.clip_gradient) | given


@register
class SGD(Optimizer):
    """Stochastic gradient descent with momentum, MXNet's form:
    ``mom = momentum * mom - lr * (clip(rescale_grad * grad) + wd * weight); weight += mom``."""

    hyper_slots = kernels.SGD_HYPER

    def __init__(self, momentum: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.momentum = _number("SGD", "momentum", momentum, 0.0, 1.0)

    def hyper(self, num_update: int) -> dict[str, float]:
        return super().hyper(num_update) | dict(momentum=self.momentum)

    def state_names(self, dtype: torch.dtype) -> tuple[str, ...]:
        return (("momentum",) if self.momentum > 0 else ()) + super().state_names(dtype)

    def create_state(self, index, weight):
        return torch.zeros(weight.shape, dtype=self.state_dtype_for(weight.dtype), device=weight.device) \
            if self.momentum > 0 else None

    def update(self, index, weight, grad, state):
        """One SGD step on one tensor with the flat update's kernel (MXNet's per-parameter API)."""
        self._update_count(index)
        kernels.sgd_update(weight, grad, state, learning_rate=self._get_lr(index), wd=self._get_wd(index),
                           rescale_grad=self.rescale_grad, clip_gradient=self.clip_gradient,
                           momentum_factor=self.momentum)

    def plan(self, weight, grad, states, chunks, hyper, scaler=None, clip_state=None):
        return kernels.plan_sgd_update(weight, grad, states.get("momentum"), chunks, hyper,
                                       clip=self.clip_gradient is not None, master=states.get("master"),
                                       scaler=scaler, clip_state=clip_state)

    def _config(self) -> dict:
        return super()._config() | dict(momentum=self.momentum)


@register
class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias-corrected moments, in PyTorch's arithmetic
    (``epsilon`` is added to the bias-corrected root of the second moment); ``wd`` is L2
    decay added to the gradient, as in MXNet and ``torch.optim.Adam``."""

    hyper_slots = kernels.ADAM_HYPER
    decoupled = False  # AdamW's weight decay, applied to the weight instead of joining the gradient

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = _number("Adam", "beta1", beta1, 0.0, 1.0)
        self.beta2 = _number("Adam", "beta2", beta2, 0.0, 1.0)
        self.epsilon = _number("Adam", "epsilon", epsilon, 0.0, low_open=True)

    def hyper(self, num_update: int) -> dict[str, float]:
        return super().hyper(num_update) | dict(
            beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon,
            bias_correction1=1.0 - self.beta1 ** num_update,
            sqrt_bias_correction2=math.sqrt(1.0 - self.beta2 ** num_update), step=num_update,
            one_minus_beta1=1.0 - self.beta1, one_minus_beta2=1.0 - self.beta2)

    def state_names(self, dtype: torch.dtype) -> tuple[str, ...]:
        return ("mean", "var") + super().state_names(dtype)

    def create_state(self, index, weight):
        dtype = self.state_dtype_for(weight.dtype)
        return (torch.zeros(weight.shape, dtype=dtype, device=weight.device),
                torch.zeros(weight.shape, dtype=dtype, device=weight.device))

    def update(self, index, weight, grad, state):
        """One Adam step on one tensor with the flat update's kernel; the step number is this
        index's update count (MXNet's per-parameter API)."""
        self._update_count(index)
        mean, var = state
        kernels.adam_update(weight, grad, mean, var, step=self._index_update_count[index],
                            learning_rate=self._get_lr(index), beta1=self.beta1, beta2=self.beta2,
                            epsilon=self.epsilon, wd=self._get_wd(index), rescale_grad=self.rescale_grad,
                            clip_gradient=self.clip_gradient, decoupled=self.decoupled)

    def plan(self, weight, grad, states, chunks, hyper, scaler=None, clip_state=None):
        return kernels.plan_adam_update(weight, grad, states["mean"], states["var"], chunks, hyper,
                                        clip=self.clip_gradient is not None, master=states.get("master"),
                                        scaler=scaler, decoupled=self.decoupled, clip_state=clip_state)

    def _config(self) -> dict:
        return super()._config() | dict(beta1=self.beta1, beta2=self.beta2, epsilon=self.epsilon)


@register
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), ``torch.optim.AdamW``'s
    arithmetic: each step first shrinks the weight by ``lr * wd`` (``w *= 1 - lr * wd``, the
    argument's multipliers included), then takes Adam's step on the gradient alone, so the
    decay is not rescaled by the moments as L2 decay in ``Adam`` is. ``wd`` defaults to 0.01
    (torch's); as for every optimizer here, arguments not ending in ``_weight`` or ``_gamma``
    (biases, LayerNorm's beta) do not decay unless a ``wd_mult`` says so. MXNet 1.x has no
    AdamW optimizer (only the ``contrib.adamw_update`` operator, whose decay is not
    multiplied by the learning rate)."""

    decoupled = True
    DEFAULT_WD = 0.01

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, wd: float = DEFAULT_WD, **kwargs):
        super().__init__(learning_rate=learning_rate, beta1=beta1, beta2=beta2, epsilon=epsilon, wd=wd, **kwargs)
