"""The seed behind every random choice tritonsym makes: initial weights, data shuffling, and
the masks Dropout and the numbers ``ts.sym.random``'s samplers draw on the device.

>>> import tritonsym as ts
>>> ts.random.seed(42)   # the same weights, batch order and dropout masks on every run

The device's draws come from Philox in the kernels, keyed by a small int64 tensor per device
(``device_state``: the seed and a step counter). The state lives in device memory, so a
captured CUDA graph reads it at each replay: each training forward of a network that
draws (``OpDef.draws_random``) first advances the step with one launch
(``advance_launches``), and its backward draws the same masks at the same step; so does
each inference forward of one that draws there too (Dropout with ``mode='always'``, the
samplers; ``OpDef.draws_random_in_inference``), so that Monte Carlo dropout samples anew at
every call. ``seed`` rewrites every device's state (step 0).
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from .ops import dropout as dropout_kernels

_generator = np.random.default_rng()
_seed: int | None = None  # the last seed given; None: the masks start from a random one
_states: dict[torch.device, torch.Tensor] = {}


def seed(value: int) -> None:
    """Reseed tritonsym's generator and every device's random state (MXNet's ``mx.random.seed``)."""
    global _generator, _seed
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"random.seed: seed={value!r} must be a non-negative integer")
    _generator = np.random.default_rng(int(value))
    _seed = int(value)
    for state in _states.values():
        state.copy_(_initial(state.device))  # outside any graph: a host-to-device copy


def generator() -> np.random.Generator:
    """The generator initializers and shuffling iterators draw from."""
    return _generator


def _initial(device: torch.device) -> torch.Tensor:
    start = _seed if _seed is not None else int(np.random.default_rng().integers(0, 2 ** 62))
    return torch.tensor([start & (2 ** 63 - 1), 0], dtype=torch.int64, device=device)


def device_state(device) -> torch.Tensor:
    """The (seed, step) int64 tensor the kernels on ``device`` read: one per device, made at
    first use from the current seed, rewritten in place by ``seed`` (its address never changes)."""
    device = torch.device(device)
    if device not in _states:
        _states[device] = _initial(device)
    return _states[device]


def salt(node: str) -> int:
    """A node's stream: the same name draws the same numbers under the same seed, two names
    two streams (Dropout's masks, the samplers' numbers; ``ops/_philox.py`` mixes it in)."""
    return zlib.crc32(node.encode())


def advance_launches(device) -> list:
    """The launch that moves ``device``'s state to the next step (new masks)."""
    return dropout_kernels.plan_advance(device_state(device))
