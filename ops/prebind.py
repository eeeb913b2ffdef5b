"""Pre-bound launches: after its first dispatch, a launch calls its compiled kernel directly.

``kernel[grid](*args)`` costs tens of microseconds of host time on every call: Triton's
JIT binds and specializes the arguments, hashes a cache key, evaluates the grid, and an
autotuned kernel first looks up its config. A tritonsym launch has the same arguments,
grid and config on every call (all fixed at bind), so all of that can be done once. The
first call goes through the JIT as usual (it compiles, autotunes and returns the
compiled kernel); on the second, ``prebind`` binds the arguments the way the JIT does
(its own binder, with the config the autotuner chose for the first call) and returns a
function that calls the compiled kernel's launcher with them (tensors as their addresses),
the call the JIT itself makes last. A launch called once (a standalone kernel function)
never binds.

Nothing changes for kernels in the interpreter, for kernels behind a wrapper other than
``triton.autotune`` (a ``triton.heuristics`` computes values per call), or while a
launch hook (a profiler's) is installed: those keep the JIT's dispatch on every call.
``TRITONSYM_PREBIND=0`` turns pre-binding off. Relies on the JIT's binder and the
launcher's calling convention, which Triton has kept from 3.3 to 3.9.
"""

from __future__ import annotations

import os
from typing import Callable

import torch
from triton.runtime import driver
from triton.runtime.autotuner import Autotuner
from triton.runtime.jit import JITFunction

from ._mode import INTERPRET

ENABLED = os.environ.get("TRITONSYM_PREBIND", "1") != "0" and not INTERPRET


def _hooks_installed() -> bool:
    """Is a launch hook (a profiler's) installed? Since Triton 3.5 each hook knob is a
    ``HookChain``, never None, installed when its list of calls is not empty; read as
    "not None", every launch kept the JIT's dispatch (found on the H200, Triton 3.6)."""
    import triton

    runtime = getattr(getattr(triton, "knobs", None), "runtime", None)
    if runtime is None:
        return True
    return any(hook is not None and (not hasattr(hook, "calls") or bool(hook.calls))
               for hook in (runtime.launch_enter_hook, runtime.launch_exit_hook))


def autotuned_constants(kernel) -> dict:
    """The constants the autotuners around ``kernel`` chose on their last call (read right
    after a launch's call: an autotuner is shared by every launch of its kernel)."""
    constants = {}
    while isinstance(kernel, Autotuner):
        constants = {**kernel.best_config.kwargs, **constants}
        kernel = kernel.fn
    return constants


def jit_function(kernel) -> JITFunction | None:
    """The @triton.jit function behind ``kernel`` through autotuners; None behind any other wrapper."""
    while isinstance(kernel, Autotuner):
        kernel = kernel.fn
    return kernel if isinstance(kernel, JITFunction) else None


def bind_arguments(binder, grid, args, kwargs: dict, constants: dict) -> tuple[tuple[int, int, int], tuple]:
    """The launch grid and every kernel parameter's value in order, constexprs included:
    what the JIT passes to the launcher. ``binder`` is the JIT's for the device."""
    bound, _, _ = binder(*args, **kwargs, **constants)
    shape = grid(bound) if callable(grid) else grid
    shape = (*tuple(shape), 1, 1)[:3]
    return shape, tuple(bound.values())


def as_addresses(values: tuple) -> tuple:
    """The bound values with each tensor replaced by its device address: the launcher takes
    an integer for a pointer parameter as it is, where for a tensor it calls ``data_ptr()``
    and asks the driver what kind of pointer that is, on every call (Triton 3.6 and 3.9
    alike). The addresses cannot change: a launch's tensors are fixed at bind (the
    workspace is static), and the first call, through the JIT, checked them. TMA
    descriptors stay objects: the launcher encodes them into tensor maps per call."""
    return tuple(v.data_ptr() if isinstance(v, torch.Tensor) else v for v in values)


def prebind(launch, compiled, constants: dict) -> Callable[[], None] | None:
    """A no-argument function that launches ``compiled`` (what the JIT returned for the
    first call of ``launch``, with the autotuned ``constants`` of that call) as that call
    did, or None where only the JIT's dispatch will do."""
    if not ENABLED or compiled is None or not hasattr(compiled, "packed_metadata") or _hooks_installed():
        return None
    fn = jit_function(launch.kernel)
    if fn is None:
        return None
    device = driver.active.get_current_device()
    binder = fn.device_caches[device][-1]  # (..., target, backend, binder) in every 3.x
    (g0, g1, g2), values = bind_arguments(binder, launch.grid, launch.args, launch.kwargs, constants)
    values = as_addresses(values)
    launcher, function, metadata = compiled.run, compiled.function, compiled.packed_metadata
    current_device, current_stream = driver.active.get_current_device, driver.active.get_current_stream

    def launch_direct() -> None:
        # The current stream is read per call: under CUDA graph capture it is the capture stream.
        launcher(g0, g1, g2, current_stream(current_device()), function, metadata, None, None, None, *values)

    return launch_direct
