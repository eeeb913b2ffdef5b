"""Pre-bound launches (ops/prebind.py): the arguments bound once are the ones the JIT
passes to the launcher, and on a GPU a pre-bound launch computes what the JIT's does."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from tritonsym.ops import fully_connected, softmax
from tritonsym.ops._common import Launch


def test_binding_orders_every_parameter_as_the_jit_does():
    # Compiled-mode kernels are needed (TRITONSYM_INTERPRET=0, read at import), so a fresh
    # interpreter; the JIT's binder for sm_90 is built without a GPU.
    code = textwrap.dedent("""
        import torch, triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import make_backend
        from triton.runtime.jit import create_function_from_signature
        from tritonsym.ops import fully_connected, prebind
        x, w, b, y = torch.empty(70, 33), torch.empty(45, 33), torch.empty(45), torch.empty(70, 45)
        (launch,) = fully_connected.plan_fully_connected_forward(x, w, b, y, act="relu", slope=0.0)
        tuner = launch.kernel
        tuner.best_config = tuner.configs[3]  # what the autotuner leaves after a call
        fn, constants = prebind.jit_function(tuner), prebind.autotuned_constants(tuner)
        binder = create_function_from_signature(fn.signature, fn.params, make_backend(GPUTarget("cuda", 90, 32)))
        grid, values = prebind.bind_arguments(binder, launch.grid, launch.args, launch.kwargs, constants)
        named = dict(zip(fn.arg_names, values))
        config = tuner.configs[3].kwargs
        assert len(values) == len(fn.params), (len(values), len(fn.params))
        pointers = [named[k].data_ptr() for k in ("X", "W", "B", "Y")]
        assert pointers == [t.data_ptr() for t in (x, w, b, y)]
        assert (named["M"], named["N"], named["K"]) == (70, 45, 33)
        assert named["x_stride_m"] == 33 and named["y_stride_m"] == 45
        assert named["ACT"] == "relu" and named["HAS_BIAS"] is True
        assert all(named[k] == v for k, v in config.items())
        tiles = triton.cdiv(70, config["BLOCK_M"]) * triton.cdiv(45, config["BLOCK_N"])
        assert grid == (tiles, 1, 1), grid
        addresses = dict(zip(fn.arg_names, prebind.as_addresses(values)))  # what the pre-bound call passes
        assert [addresses[k] for k in ("X", "W", "B", "Y")] == pointers
        assert all(type(addresses[k]) is int for k in ("X", "W", "B", "Y"))
        assert all(addresses[k] == named[k] for k in named if k not in ("X", "W", "B", "Y"))
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TRITONSYM_INTERPRET": "0", "TRITON_INTERPRET": "0"})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr[-3000:]


def test_binding_passes_tma_descriptors_and_the_persistent_grid():
    # The TMA forward's launch: descriptors among the arguments (the launcher turns them into
    # tensor maps on each call) and one program per SM (three off a GPU).
    code = textwrap.dedent("""
        import torch
        from triton.backends.compiler import GPUTarget
        from triton.compiler import make_backend
        from triton.runtime.jit import create_function_from_signature
        from triton.tools.tensor_descriptor import TensorDescriptor
        from tritonsym.ops import fully_connected, prebind
        x, w, b, y = (torch.empty(s, dtype=torch.float16) for s in ((1000, 40), (48, 40), (48,), (1000, 48)))
        (launch,) = fully_connected.plan_fully_connected_forward(x, w, b, y, act="relu")
        tuner = launch.kernel
        tuner.best_config = next(c for c in tuner.configs if c.kwargs["TMA"])
        fn, constants = prebind.jit_function(tuner), prebind.autotuned_constants(tuner)
        binder = create_function_from_signature(fn.signature, fn.params, make_backend(GPUTarget("cuda", 90, 32)))
        grid, values = prebind.bind_arguments(binder, launch.grid, launch.args, launch.kwargs, constants)
        named = dict(zip(fn.arg_names, values))
        bm, bn, bk = (constants[k] for k in ("BLOCK_M", "BLOCK_N", "BLOCK_K"))
        assert len(values) == len(fn.params)
        for name, tensor, block in (("X_DESC", x, [bm, bk]), ("W_DESC", w, [bn, bk]), ("Y_DESC", y, [bm, bn // 2])):
            desc = named[name]
            assert isinstance(desc, TensorDescriptor), (name, desc)
            assert desc.base.data_ptr() == tensor.data_ptr() and list(desc.block_shape) == block, (name, desc)
        assert named["TMA_READY"] is True and named["TMA"] is True
        assert grid == (3, 1, 1), grid
        assert dict(zip(fn.arg_names, prebind.as_addresses(values)))["X_DESC"] is named["X_DESC"]
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TRITONSYM_INTERPRET": "0", "TRITON_INTERPRET": "0",
                                 "TRITONSYM_TMA": "1"})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr[-3000:]


def test_launch_hooks_count_as_installed_only_when_there_are_some():
    """Triton 3.5+ keeps each hook knob as a chain that is never None: an empty chain is no
    hook. (Read as "not None", no launch was ever pre-bound on the H200.)"""
    import triton
    from tritonsym.ops import prebind

    runtime = getattr(getattr(triton, "knobs", None), "runtime", None)
    if runtime is None or not hasattr(runtime.launch_enter_hook, "add"):
        pytest.skip("this Triton has no hook chains")
    chain = runtime.launch_enter_hook
    assert not chain.calls and not prebind._hooks_installed()

    def hook(*args):
        pass

    chain.add(hook)
    try:
        assert prebind._hooks_installed()
    finally:
        chain.remove(hook)
    assert not prebind._hooks_installed()


@pytest.mark.cpu_only
def test_the_interpreter_keeps_the_jit_dispatch(rng):
    x = torch.as_tensor(rng.normal(size=(5, 9)), dtype=torch.float32)
    out = torch.empty_like(x)
    (launch,) = softmax.plan_softmax_forward(x, out)
    launch()
    launch()
    assert not launch.prebound
    np.testing.assert_allclose(out.sum(-1).numpy(), 1.0, rtol=1e-6)


@pytest.mark.gpu
def test_a_prebound_launch_computes_what_the_jit_does(rng):
    dev = "cuda"
    x = torch.as_tensor(rng.normal(size=(300, 129)), dtype=torch.float32, device=dev)
    w = torch.as_tensor(rng.normal(size=(77, 129)), dtype=torch.float32, device=dev)
    b = torch.as_tensor(rng.normal(size=77), dtype=torch.float32, device=dev)
    y_jit, y_pre = (torch.empty(300, 77, device=dev) for _ in range(2))
    (jit,) = fully_connected.plan_fully_connected_forward(x, w, b, y_jit, act="tanh")
    (pre,) = fully_connected.plan_fully_connected_forward(x, w, b, y_pre, act="tanh")
    for _ in range(3):
        y_pre.zero_()
        pre()  # the first call goes through the JIT (and autotunes); the others are pre-bound
        jit.dispatch()
        torch.cuda.synchronize()
        assert torch.equal(y_pre, y_jit)
    assert pre.prebound and isinstance(pre, Launch)
    # Each kernel family: one launch through both paths, bit for bit.
    s_in = torch.as_tensor(rng.normal(size=(33, 1000)), dtype=torch.bfloat16, device=dev)
    s_jit, s_pre = torch.empty_like(s_in), torch.empty_like(s_in)
    (a,), (b2,) = softmax.plan_softmax_forward(s_in, s_jit), softmax.plan_softmax_forward(s_in, s_pre)
    a(), b2(), b2()
    torch.cuda.synchronize()
    assert b2.prebound and torch.equal(s_jit, s_pre)
