"""Loss scaling for float16 training: its settings, and how ``loss_scale=`` reads them.

float16 holds nothing below 6e-8 (and has only a few bits below 6e-5), so small gradients
flush to zero on their way back through the network and those weights silently stop
learning. Scaling the loss by ``S`` scales every gradient by ``S`` (the loss operators
multiply by it); the optimizer divides by ``S`` again before the update. A step whose
scaled gradients overflowed (any NaN/inf) is skipped and ``S`` backs off; after
``growth_interval`` good steps in a row ``S`` grows. This is NVIDIA's dynamic loss
scaling (apex, ``torch.amp.GradScaler``), run on the device: the check, the skip and the
new scale are three kernels in the step, with no read-back, so a step stays one CUDA
graph. MXNet's AMP could not scale symbolic losses dynamically.

bfloat16 has float32's exponent range and needs no scaling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..base import ParamError


@dataclass(frozen=True)
class LossScaler:
    """Dynamic loss scale settings (apex's and ``torch.amp.GradScaler``'s defaults, with
    apex's ceiling). ``growth_factor=1`` and ``backoff_factor=1`` make the scale static;
    steps with NaN/inf gradients are still skipped."""

    init_scale: float = 2.0 ** 16
    growth_factor: float = 2.0
    backoff_factor: float = 0.5
    growth_interval: int = 2000
    min_scale: float = 2.0 ** -24
    max_scale: float = 2.0 ** 24

    def __post_init__(self):
        def fail(name: str, rule: str):
            raise ParamError(f"LossScaler: {name}={getattr(self, name)!r} {rule}")

        for name in ("init_scale", "growth_factor", "backoff_factor", "min_scale", "max_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                fail(name, "must be a finite number above 0")
        if not self.min_scale <= self.init_scale <= self.max_scale:
            fail("init_scale", f"must lie in [min_scale, max_scale] = [{self.min_scale}, {self.max_scale}]")
        if self.max_scale > 2.0 ** 100:
            fail("max_scale", "must be at most 2**100 (a float32 scale times a gradient would overflow)")
        if self.growth_factor < 1:
            fail("growth_factor", "must be at least 1")
        if self.backoff_factor > 1:
            fail("backoff_factor", "must be at most 1")
        if isinstance(self.growth_interval, bool) or not isinstance(self.growth_interval, int) \
                or not 1 <= self.growth_interval < 2 ** 31:
            fail("growth_interval", "must be a whole number of steps, at least 1")

    @classmethod
    def static(cls, scale: float) -> "LossScaler":
        """A fixed scale (steps with NaN/inf gradients are skipped all the same)."""
        return cls(init_scale=scale, growth_factor=1.0, backoff_factor=1.0,
                   min_scale=min(scale, cls.min_scale), max_scale=max(scale, cls.max_scale))

    @property
    def dynamic(self) -> bool:
        return self.growth_factor != 1.0 or self.backoff_factor != 1.0


def loss_scaler_from(owner: str, value) -> LossScaler | None:
    """What an optimizer's ``loss_scale=`` means: None (no scaling), ``"dynamic"`` (the
    default ``LossScaler``), a number (a static scale) or a ``LossScaler``."""
    if value is None or isinstance(value, LossScaler):
        return value
    if isinstance(value, str) and value.strip().lower() == "dynamic":
        return LossScaler()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0:
            raise ParamError(f"{owner}: loss_scale={value!r} must be a finite number above 0")
        return LossScaler.static(float(value))
    raise ParamError(f"{owner}: loss_scale={value!r} must be None, 'dynamic', a number (a static scale) or a "
                     "LossScaler")
