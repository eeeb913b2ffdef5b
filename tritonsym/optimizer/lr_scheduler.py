"""Learning-rate schedules: the rate as a function of the number of updates done.

MXNet's schedulers with MXNet's arithmetic, written as pure functions of ``num_update``
(counted from 1) so that resuming from a checkpoint gives the same rate. Each takes an
optional linear or constant warm-up. ``base_lr`` is set by the optimizer from its
``learning_rate`` when it is not given.
"""

from __future__ import annotations

import math

from ..base import ParamError


class LRScheduler:
    def __init__(self, base_lr: float | None = None, warmup_steps: int = 0, warmup_begin_lr: float = 0.0,
                 warmup_mode: str = "linear"):
        name = type(self).__name__
        if warmup_mode not in ("linear", "constant"):
            raise ParamError(f"{name}: warmup_mode={warmup_mode!r} must be 'linear' or 'constant'")
        if not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ParamError(f"{name}: warmup_steps={warmup_steps!r} must be a non-negative integer")
        self.base_lr = base_lr
        self.warmup_steps = warmup_steps
        self.warmup_begin_lr = warmup_begin_lr
        self.warmup_mode = warmup_mode

    def __call__(self, num_update: int) -> float:
        if self.base_lr is None:
            raise ParamError(f"{type(self).__name__}: base_lr is not set (give it, or attach the scheduler to an "
                             "optimizer, which sets it from its learning_rate)")
        if num_update < self.warmup_steps:
            if self.warmup_mode == "constant":
                return self.warmup_begin_lr
            return self.warmup_begin_lr + (self.base_lr - self.warmup_begin_lr) * num_update / self.warmup_steps
        return self.rate(num_update)

    def rate(self, num_update: int) -> float:
        raise NotImplementedError


class FactorScheduler(LRScheduler):
    """Multiply the rate by ``factor`` after every ``step`` updates, down to ``stop_factor_lr``.

    A ``base_lr`` already below ``stop_factor_lr`` stays as it is: the floor stops the decay
    and never raises the rate (MXNet's rate jumps up to ``stop_factor_lr`` at its first
    decay there, ten times the rate for a fine-tuning run at 1e-4 with the floor at 1e-3).

    >>> FactorScheduler(step=10, factor=0.5, base_lr=1.0)(11)
    0.5
    """

    def __init__(self, step: int, factor: float = 1.0, stop_factor_lr: float = 1e-8, base_lr: float | None = None,
                 **warmup):
        super().__init__(base_lr, **warmup)
        if not isinstance(step, int) or step < 1:
            raise ParamError(f"FactorScheduler: step={step!r} must be an integer >= 1")
        if not 0 < factor <= 1:
            raise ParamError(f"FactorScheduler: factor={factor!r} must be in (0, 1]")
        self.step, self.factor, self.stop_factor_lr = step, factor, stop_factor_lr

    def rate(self, num_update: int) -> float:
        decays = max(0, (num_update - 1) // self.step)
        return max(self.base_lr * self.factor ** decays, min(self.stop_factor_lr, self.base_lr))


class MultiFactorScheduler(LRScheduler):
    """Multiply the rate by ``factor`` once past each update count in ``step`` (increasing).

    >>> MultiFactorScheduler(step=[5, 8], factor=0.1, base_lr=1.0)(9)  # doctest: +ELLIPSIS
    0.01...
    """

    def __init__(self, step: list[int], factor: float = 1.0, base_lr: float | None = None, **warmup):
        super().__init__(base_lr, **warmup)
        step = list(step)
        if not step or any(not isinstance(s, int) or s < 1 for s in step) or step != sorted(set(step)):
            raise ParamError(f"MultiFactorScheduler: step={step!r} must be strictly increasing integers >= 1")
        if not 0 < factor <= 1:
            raise ParamError(f"MultiFactorScheduler: factor={factor!r} must be in (0, 1]")
        self.step, self.factor = step, factor

    def rate(self, num_update: int) -> float:
        return self.base_lr * self.factor ** sum(num_update > s for s in self.step)


class CosineScheduler(LRScheduler):
    """Cosine decay from ``base_lr`` to ``final_lr`` over ``max_update`` updates (after warm-up).

    >>> CosineScheduler(max_update=100, base_lr=1.0, final_lr=0.0)(50)
    0.5
    """

    def __init__(self, max_update: int, base_lr: float | None = None, final_lr: float = 0.0, **warmup):
        super().__init__(base_lr, **warmup)
        if not isinstance(max_update, int) or max_update <= self.warmup_steps:
            raise ParamError(f"CosineScheduler: max_update={max_update!r} must be an integer above "
                             f"warmup_steps={self.warmup_steps}")
        self.max_update, self.final_lr = max_update, final_lr

    def rate(self, num_update: int) -> float:
        if num_update > self.max_update:
            return self.final_lr
        progress = (num_update - self.warmup_steps) / (self.max_update - self.warmup_steps)
        return self.final_lr + (self.base_lr - self.final_lr) * (1 + math.cos(math.pi * progress)) / 2
