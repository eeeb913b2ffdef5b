"""The key and counter every random draw on the device starts from (Dropout's masks, the
samplers' values).

The state is a small int64 tensor in device memory (seed, step), read by the kernel, so a
captured CUDA graph draws anew at each replay once the step moved. A node's ``salt``
(a hash of its name, below 2**31) flips high bits of the seed: another Philox key, another
stream, so two layers never draw the same numbers. The counter is an element's place in
what the node draws plus the step times 2**32: each step draws numbers no earlier step drew.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import KernelArgumentError

STATE_SLOTS = ("seed", "step")  # the device state: int64 each


def check_state(fn: str, state: torch.Tensor, device: torch.device) -> None:
    """``state`` is the random state a kernel on ``device`` reads (``random.device_state``)."""
    if state.dtype != torch.int64 or state.numel() != len(STATE_SLOTS) or state.device != device:
        raise KernelArgumentError(f"{fn}: state must be the {len(STATE_SLOTS)} int64 random state on {device}")


@triton.jit
def philox_key(STATE, salt):
    """This node's Philox key: the seed mixed with its salt (an int64 even when Triton makes a
    small salt a constant, so the shift does not overflow 32 bits)."""
    seed = tl.load(STATE + 0)
    return seed ^ ((salt + tl.zeros((), tl.int64)) << 31)


@triton.jit
def philox_counter(STATE, place):
    """The counter of the draw at ``place`` (int64) in this step."""
    return place + (tl.load(STATE + 1) << 32)
