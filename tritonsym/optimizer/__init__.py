"""Optimizers that update every parameter of a bound network in one launch per dtype.

>>> import tritonsym as ts
>>> opt = ts.optimizer.create("sgd", learning_rate=0.1, momentum=0.9, wd=1e-4)
>>> opt
SGD(learning_rate=0.1, wd=0.0001, rescale_grad=1.0, clip_gradient=None, momentum=0.9)
"""

from .loss_scaler import LossScaler
from .lr_scheduler import CosineScheduler, FactorScheduler, LRScheduler, MultiFactorScheduler
from .optimizer import OPTIMIZERS, SGD, Adam, AdamW, Optimizer, create, per_parameter, register
from .parameter_updater import ParameterUpdater
from .updater import FlatUpdater

Optimizer.register = staticmethod(register)  # MXNet spells it both ways
Optimizer.create_optimizer = staticmethod(create)


def updater_for(optimizer: Optimizer, executor, names=None):
    """The updater that runs ``optimizer`` over ``executor``'s parameters ``names``: the flat
    one-launch ``FlatUpdater``, or ``ParameterUpdater`` for an optimizer written with MXNet's
    per-parameter ``update(index, weight, grad, state)``."""
    if per_parameter(optimizer):
        return ParameterUpdater(optimizer, executor, names if names is not None else list(executor.grad_dict))
    return FlatUpdater(optimizer, executor, names)


__all__ = ["OPTIMIZERS", "SGD", "Adam", "AdamW", "CosineScheduler", "FactorScheduler", "FlatUpdater", "LRScheduler",
           "LossScaler", "MultiFactorScheduler", "Optimizer", "ParameterUpdater", "create", "register", "updater_for"]
