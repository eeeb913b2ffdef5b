"""tritonsym.ops.aot compiles the variant a GPU launch would compile, and the kernels'
untuned configs (TRITONSYM_AUTOTUNE=0) fit in Hopper's shared memory.

Both need kernels decorated for compiling (TRITONSYM_INTERPRET=0, read at import), which
this process is not, so each check runs in a fresh interpreter."""

import os
import subprocess
import sys
import textwrap
import time

import pytest


def _run(code: str, **env) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=600, env={**os.environ, "TRITONSYM_INTERPRET": "0", "TRITON_INTERPRET": "0", **env})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


def test_specialize_marks_unit_strides_and_alignment_as_the_jit_does():
    out = _run("""
        import torch
        from tritonsym.ops import aot, fully_connected
        x, w, y = torch.empty(64, 96), torch.empty(48, 96), torch.empty(64, 48)
        (launch,) = fully_connected.plan_fully_connected_forward(x, w, None, y)
        variant = aot.specialize(launch, aot.configs(launch)[0])
        names = launch.kernel.fn.arg_names
        constant = {names[path[0]]: value for path, value in variant.constexprs.items()}
        marked = {names[path[0]] for path in variant.attrs}
        print(constant["x_stride_k"], constant["w_stride_k"], "X" in marked, "x_stride_m" in marked)
        print(variant.config)
    """, TRITONSYM_AUTOTUNE="1")  # every config listed, first the largest (the GPU suite runs untuned)
    first, config = out.splitlines()
    # A unit stride is compiled as the constant 1 and 16-aligned pointers and strides are
    # marked: without both, the compiled code is not what runs (no 16-byte copies).
    assert first == "1 1 True True"
    assert config.startswith("128x128x64 w8")


@pytest.mark.slow
@pytest.mark.parametrize("autotune, tma", [("0", "0"), ("0", "1"), ("1", "1")],
                         ids=["untuned pointer", "untuned TMA", "every TMA config raced"])
def test_fully_connected_configs_fit_in_hopper_shared_memory(autotune, tma):
    # One config per kernel without autotuning, and it must be one that launches: over
    # 227 KiB a program cannot start on an H100, and there is no other config to fall to.
    # With autotuning, every TMA config the prune keeps (TF32's input gradient needed 240
    # KiB at 3 stages: it takes 2). TRITONSYM_TMA=1 plans the TMA path on any device.
    # The last cases: 16-bit x rows that are not a multiple of 16 elements (of 8: ALIGN_K 8,
    # and of 4 only, w's rows padded to 16 bytes for TMA), where the input gradient's
    # partial bias sums change the tile's layout through shared memory unless the epilogue
    # copies 16 bytes at a time (the H200 refused a 3-stage config: 272 KiB).
    out = _run("""
        import torch
        from tritonsym.ops import aot, fully_connected as fc
        S = 4096
        for dt, precision, K in ((torch.bfloat16, "ieee", S), (torch.float32, "tf32", S), (torch.float32, "ieee", S),
                                 (torch.float64, "ieee", S), (torch.float16, "ieee", S - 8),
                                 (torch.float16, "ieee", S - 4)):
            t = lambda *shape: torch.empty(shape, dtype=dt)
            x, w, b, y = t(S, K), t(S, K + (-K) % 8)[:, :K], t(S), t(S, S)
            launches = fc.plan_fully_connected_forward(x, w, b, y, act="relu", precision=precision)
            parts = torch.empty(fc.bias_partials(S, K, dt)[0], dtype=fc.bias_partials(S, K, dt)[1])
            launches += fc.plan_fully_connected_backward(y, x, w, grad_x=t(S, K), grad_weight=t(S, K),
                                                         input_act="relu", input_grad_bias=t(K), input_partials=parts,
                                                         precision=precision)
            for launch in launches:
                if not hasattr(launch.kernel, "configs"):
                    continue  # the column sum of the bias partials: not autotuned, small tiles
                kept = aot.configs(launch)
                for config in kept if len(kept) == 1 else [c for c in kept if c.kwargs.get("TMA")]:
                    compiled = aot.compile_specialized(aot.specialize(launch, config))
                    print(launch.kernel.fn.__name__, dt, precision, aot.describe_config(config),
                          compiled.metadata.shared)
    """, TRITONSYM_AUTOTUNE=autotune, TRITONSYM_TMA=tma)
    rows = [line.rsplit(" ", 1) for line in out.splitlines()]
    if autotune == "0":
        assert len(rows) == 18
    assert (tma == "1") == any(" TMA " in what for what, _ in rows)
    too_big = [what for what, shared in rows if int(shared) > 227 * 1024]
    assert not too_big, too_big


def test_autotuning_never_compiles_a_config_that_cannot_fit_in_shared_memory():
    """A config whose pipelined operand tiles alone exceed a Hopper program's shared memory
    cannot launch: the prune drops it before anything is compiled (float32's 128x256x64 at
    3 stages needs 288 KiB), and keeps every other (all of them in float16)."""
    out = _run("""
        import torch
        from tritonsym.ops import aot, fully_connected as fc
        for dt in (torch.float32, torch.float16):
            t = lambda *shape: torch.empty(shape, dtype=dt)
            (launch,) = fc.plan_fully_connected_forward(t(512, 512), t(512, 512), None, t(512, 512), precision="tf32")
            kept = aot.configs(launch)
            too_big = [c for c in fc._configs() if fc._stage_bytes(c, dt.itemsize) > fc._TMA_SHARED_LIMIT]
            shape = lambda c: (c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"], c.kwargs["BLOCK_K"], c.num_stages)
            print(dt, len(kept), len(fc._configs()), len(too_big), {shape(c) for c in too_big}.isdisjoint(
                shape(c) for c in kept))
    """, TRITONSYM_AUTOTUNE="1")
    assert out.split("\n")[:2] == ["torch.float32 7 8 1 True", "torch.float16 8 8 0 True"], out


@pytest.mark.slow
def test_precompile_fills_the_cache_in_parallel_and_a_warm_call_compiles_nothing(tmp_path):
    """Variants missing from Triton's cache are compiled by worker processes into it, under
    the key an in-process compile (the JIT's) looks up; a second call finds them all."""
    script = tmp_path / "script.py"  # a @triton.jit kernel needs a file to be read from
    script.write_text(textwrap.dedent("""
        import os, torch, triton
        import triton.language as tl
        from tritonsym.ops import aot, precompile, softmax_output
        from tritonsym.ops._common import Launch

        @triton.jit
        def script_kernel(X):  # defined in the script being run: left to the JIT
            tl.store(X, 1.0)

        launches = [launch for _, launch in softmax_output.representative_launches(torch.float32)]
        launches.append(Launch(script_kernel, (1,), [torch.empty(1)], {}))
        cold = precompile.precompile(launches, 90, workers=2)
        warm = precompile.precompile(launches, 90, workers=2)
        variants, _ = precompile.needed_variants(launches, 90)
        files = sum(len(f) for _, _, f in os.walk(os.environ["TRITON_CACHE_DIR"]))
        for variant in variants:
            aot.compile_specialized(variant, 90)  # a cache hit: no file is added
        again = sum(len(f) for _, _, f in os.walk(os.environ["TRITON_CACHE_DIR"]))
        print(cold.variants, cold.compiled, cold.workers, cold.left_to_jit, cold.failed)
        print(warm.compiled, warm.workers, warm.seconds < 1, files == again,
              all(precompile.is_cached(v, 90) for v in variants))
        print(precompile.warm(launches, torch.device("cpu")))
    """))
    out = _run(f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')",
               TRITON_CACHE_DIR=str(tmp_path / "cache"))
    cold, warm, on_cpu = out.splitlines()[-3:]
    assert cold == "5 5 2 1 []"
    assert warm == "0 0 True True True"
    assert on_cpu == "None"


def test_a_compiling_worker_stops_when_the_process_that_asked_is_gone():
    """Checked before each compile: a worker whose asker is gone (killed at a time limit)
    compiles nothing more, instead of taking the CPU from whatever runs next."""
    from tritonsym.ops import _precompile_worker as worker

    compiled = []
    alive = iter([True, True, False, True])
    original = worker.aot.compile_specialized
    worker.aot.compile_specialized = lambda variant, arch: compiled.append(variant)
    try:
        assert worker.compile_all(["a", "b", "c", "d"], 90, lambda: next(alive)) is None
        assert worker.compile_all(["e"], 90) == [""]
    finally:
        worker.aot.compile_specialized = original
    assert compiled == ["a", "b", "e"]


@pytest.mark.slow
def test_an_orphaned_worker_process_exits_without_compiling(tmp_path):
    """The asker starts a worker on real variants and dies at once; the worker, still
    importing, finds itself orphaned before its first compile: no result, nothing cached."""
    cache = tmp_path / "cache"
    out = _run("""
        import os, torch
        from tritonsym.ops import precompile, softmax_output
        launches = [launch for _, launch in softmax_output.representative_launches(torch.float32)]
        variants, _ = precompile.needed_variants(launches, 90)
        results = os.path.join(os.environ["TRITON_CACHE_DIR"], "..", "results.pickle")
        worker = precompile._start_worker(variants, 90, results)
        print(worker.pid, len(variants), flush=True)
        os._exit(0)  # as a kill would: no cleanup
    """, TRITON_CACHE_DIR=str(cache))
    pid, count = map(int, out.split())
    assert count >= 4

    def running() -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 120
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not running(), "the orphaned worker is still running"
    assert not (tmp_path / "results.pickle").exists()
    assert not [f for _, _, files in os.walk(cache) for f in files if f.endswith(".cubin")]


def test_interrupted_precompile_leaves_no_worker_running(monkeypatch):
    """Ctrl-C (or any error) while the workers compile: every worker still running is
    killed on the way out."""
    from tritonsym.ops import precompile

    class Worker:
        def __init__(self):
            self.killed = False

        def wait(self):
            if not self.killed:
                raise KeyboardInterrupt
            return -9

        def poll(self):
            return -9 if self.killed else None

        def kill(self):
            self.killed = True

    started = []
    monkeypatch.setattr(precompile, "needed_variants", lambda launches, arch: (list(range(8)), 0))
    monkeypatch.setattr(precompile, "is_cached", lambda variant, arch: False)
    monkeypatch.setattr(precompile, "_start_worker", lambda share, arch, path: started.append(Worker()) or started[-1])
    with pytest.raises(KeyboardInterrupt):
        precompile.precompile([], 90, workers=3)
    assert len(started) == 3 and all(w.killed for w in started)
