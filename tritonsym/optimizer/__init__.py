"""Optimizers that update every parameter of a bound network in one launch per dtype.

>>> import tritonsym as ts
>>> opt = ts.optimizer.create("sgd", learning_rate=0.1, momentum=0.9, wd=1e-4)
>>> opt
SGD(learning_rate=0.1, wd=0.0001, rescale_grad=1.0, clip_gradient=None, momentum=0.9)
"""

from .loss_scaler import LossScaler
from .lr_scheduler import CosineScheduler, FactorScheduler, LRScheduler, MultiFactorScheduler
from .optimizer import OPTIMIZERS, SGD, Adam, Optimizer, create, register
from .updater import FlatUpdater

__all__ = ["OPTIMIZERS", "SGD", "Adam", "CosineScheduler", "FactorScheduler", "FlatUpdater", "LRScheduler",
           "LossScaler", "MultiFactorScheduler", "Optimizer", "create", "register"]
