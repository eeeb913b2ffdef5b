"""Ahead-of-time compilation of planned launches for a GPU target, on any machine.

Triton's JIT specializes every launch on its arguments: an integer equal to 1 becomes a
constant, and pointers and integers divisible by 16 are marked so. That is what lets the
compiler vectorize a copy along a unit stride; compiled without those marks, a kernel
gives other code than the one a GPU runs (4-byte copies where it runs 16-byte ones, say).
So this module binds a launch's arguments with the JIT's own binder and compiles exactly
the variant that the launch would compile on the device.

Needs Triton's compiler only, no GPU and no driver. The kernels must have been decorated
for compiling: set ``TRITONSYM_INTERPRET=0`` before ``tritonsym.ops`` is first imported
(and ``TRITON_INTERPRET=0`` too where triton is imported before it).
It uses two internals of Triton's JIT (``create_function_from_signature`` and
``JITFunction._pack_args``), which Triton has had in this form since 3.3.
"""

from __future__ import annotations

from dataclasses import dataclass

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, make_backend
from triton.runtime.autotuner import Autotuner
from triton.runtime.jit import create_function_from_signature

from ._common import Launch
from ._mode import INTERPRET


@dataclass(frozen=True)
class Specialized:
    """One kernel variant as the JIT would compile it; plain data, so it pickles."""

    kernel: str  # the @triton.jit function's name
    module: str  # ... and its module, to find it again in another process
    signature: dict
    constexprs: dict
    attrs: dict
    options: dict
    config: str  # the autotune config, in words, or "" for a kernel without autotuning


def _jit_function(kernel):
    while isinstance(kernel, Autotuner):
        kernel = kernel.fn
    return kernel


def configs(launch: Launch, every: bool = True) -> list:
    """The autotune configs a launch would try (after the kernel's own pruning), or [None]
    for a kernel without autotuning; only the first unless ``every``."""
    if not isinstance(launch.kernel, Autotuner):
        return [None]
    tuner = launch.kernel
    found = tuner.configs
    if tuner.early_config_prune:
        named = dict(zip(tuner.fn.arg_names, launch.args))
        found = tuner.early_config_prune(found, named, **launch.kwargs)
    return list(found) if every else list(found[:1])


def describe_config(config) -> str:
    if config is None:
        return ""
    meta = "x".join(str(v) for k, v in config.kwargs.items() if k.startswith("BLOCK_"))
    flags = "".join(f" {k}" for k, v in config.kwargs.items() if v is True)  # TMA, PERSISTENT
    return f"{meta}{flags} w{config.num_warps} s{config.num_stages}"


def specialize(launch: Launch, config=None, arch: int = 90) -> Specialized:
    """What the JIT would compile for ``launch`` under ``config`` on sm_``arch``."""
    if INTERPRET:
        raise RuntimeError("tritonsym.ops.aot: kernels were decorated for the interpreter; set "
                           "TRITONSYM_INTERPRET=0 before tritonsym.ops is first imported")
    fn = _jit_function(launch.kernel)
    kwargs = dict(launch.kwargs)
    if config is not None:
        kwargs.update(config.kwargs, num_warps=config.num_warps, num_stages=config.num_stages)
    backend = make_backend(GPUTarget("cuda", arch, 32))
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    bound, specialization, options = binder(*launch.args, **kwargs)
    options, signature, constexprs, attrs = fn._pack_args(backend, kwargs, bound, specialization, options)
    return Specialized(fn.__name__, fn.__module__, signature, constexprs, attrs, dict(options.__dict__),
                       describe_config(config))


def source_of(variant: Specialized) -> ASTSource:
    """What ``triton.compile`` takes for this variant (its kernel found again by name)."""
    import importlib

    fn = _jit_function(getattr(importlib.import_module(variant.module), variant.kernel))
    return ASTSource(fn, variant.signature, variant.constexprs, variant.attrs)


def compile_specialized(variant: Specialized, arch: int = 90):
    """Compile one variant to a cubin; returns Triton's CompiledKernel (``asm`` holds
    "ttgir", "ptx" and "cubin"; ``metadata.shared`` the shared memory in bytes)."""
    return triton.compile(source_of(variant), target=GPUTarget("cuda", arch, 32), options=variant.options)
