"""Compile every kernel variant the launchers plan, for a GPU target, without a GPU.

The interpreter accepts code that the real compiler rejects (and the reverse), so CI also
compiles each kernel with Triton's compiler down to a cubin for an NVIDIA architecture
(Hopper, sm_90, by default): representative launches of every kernel are planned on CPU
tensors in compiled mode, then compiled as the JIT would specialize them
(tritonsym.ops.aot) and, for autotuned kernels, with every config. Nothing runs;
run-time numerics are checked on a GPU machine.

    python tests/compile_for_gpu.py [--arch 90] [--jobs 2] [--costs FILE.md]

``--costs`` writes each kernel's cold compile seconds (mean, largest, count of variants)
as a Markdown table: what a device session's phases are sized from (an empty
``TRITON_CACHE_DIR`` makes it cold).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

# Compiled kernels, even without CUDA (Triton's own switch too, in case it is imported first).
os.environ["TRITONSYM_INTERPRET"] = os.environ["TRITON_INTERPRET"] = "0"
# The TMA forward too, which is otherwise planned only on a GPU of compute capability 9+.
os.environ.setdefault("TRITONSYM_TMA", "1")

import torch  # noqa: E402

DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


def planned_launches():
    """(description, Launch) for representative calls of every launcher."""
    from tritonsym.ops import (
        activation,
        elementwise,
        fully_connected,
        memory,
        optimizer,
        regression_output,
        softmax,
        softmax_output,
    )

    from tritonsym import ops

    t = lambda *shape, dtype=torch.float32: torch.empty(shape, dtype=dtype)  # noqa: E731
    out = []

    def add(what, launches):
        out.extend((what, launch) for launch in launches)

    for dt in DTYPES:
        # Every kernel family in every dtype; the constexpr variants (activation and op kinds)
        # in float32 and in bfloat16, which stores through its own rounding path.
        kinds = dt in (torch.float32, torch.bfloat16)
        x, w, b, y = t(64, 96, dtype=dt), t(48, 96, dtype=dt), t(48, dtype=dt), t(64, 48, dtype=dt)
        for act in ("none", "relu", "tanh", "selu") if kinds else ("relu",):
            add(f"fc forward {dt} {act}", fully_connected.plan_fully_connected_forward(x, w, b, y, act=act))
        for act in ("none", "sigmoid") if kinds else ("sigmoid",):
            add(f"fc backward {dt} {act}", fully_connected.plan_fully_connected_backward(
                y, x, w, out=y, act=act, grad_x=t(64, 96, dtype=dt), grad_weight=t(48, 96, dtype=dt),
                grad_bias=t(48, dtype=dt), accumulate_weight=True))
        if dt == torch.float32:
            add("fc forward tf32", fully_connected.plan_fully_connected_forward(x, w, b, y, act="relu",
                                                                                precision="tf32"))
        add(f"fc bias grad only {dt}", fully_connected.plan_fully_connected_backward(y, x, w, grad_bias=b))
        v = t(33, 17, dtype=dt)
        for kind in ops.ACTIVATIONS if kinds else ("softrelu",):
            add(f"activation {dt} {kind}", activation.plan_activation_forward(v, t(33, 17, dtype=dt), kind, 0.1))
            add(f"activation grad {dt} {kind}", activation.plan_activation_backward(
                v, v, t(33, 17, dtype=dt), kind, 0.1, from_output=activation.grad_from_output(kind, 0.1)))
        for kind in ops.BINARY_OPS if kinds else ("div",):
            add(f"binary {dt} {kind}", elementwise.plan_binary_forward(kind, v, v.T.contiguous().T, v))
            add(f"binary grad {dt} {kind}", elementwise.plan_binary_backward(kind, v, v, v, v, v, True, False))
        for kind in ops.SCALAR_OPS if kinds else ("power",):
            add(f"scalar {dt} {kind}", elementwise.plan_scalar_forward(kind, v, 2.0 if kind == "power" else 2.5, v))
            add(f"scalar grad {dt} {kind}", elementwise.plan_scalar_backward(kind, v, v, v, v, 2.5))
        for kind in ops.UNARY_OPS if kinds else ("sqrt",):
            add(f"unary {dt} {kind}", elementwise.plan_unary_forward(kind, v, v))
            add(f"unary grad {dt} {kind}", elementwise.plan_unary_backward(kind, v, v, v, v, True))
        add(f"fill {dt}", memory.plan_fill(v, 0.0))
        add(f"fill loss-scaled {dt}", memory.plan_fill(v, 0.5, loss_scale=t(1)))
        add(f"copy {dt}", memory.plan_copy(v.T, t(17, 33, dtype=dt), accumulate=True))
        for log in (False, True):
            add(f"softmax {dt} log={log}", softmax.plan_softmax_forward(v, v, -1, log))
            add(f"softmax grad {dt} log={log}", softmax.plan_softmax_backward(v, v, v, -1, log, True))
            wide = t(128, 40000, dtype=dt)  # wider than one block (MAX_BLOCK): the looped kernels
            add(f"softmax looped {dt} log={log}", softmax.plan_softmax_forward(wide, wide, -1, log))
            add(f"softmax grad looped {dt} log={log}", softmax.plan_softmax_backward(wide, wide, wide, -1, log))
            few = t(2, 40000, dtype=dt)  # and too few of them to fill the GPU: rows split across programs
            stats, sums = (t(*shape, dtype=sdt) for shape, sdt in (softmax.split_stats(few.shape, -1, dt, backward)
                                                                   for backward in (False, True)))
            add(f"softmax split {dt} log={log}", softmax.plan_softmax_forward(few, few, -1, log, stats=stats))
            add(f"softmax grad split {dt} log={log}", softmax.plan_softmax_backward(few, few, few, -1, log, True,
                                                                                    stats=sums))
        add(f"softmax output {dt}", softmax_output.plan_softmax_output_backward(
            v, t(33, dtype=dt), v, use_ignore=True, normalization="valid", valid_count=t(1), head_grad=v))
        add(f"softmax output prob {dt}", softmax_output.plan_softmax_output_backward(v, v, v, smooth_alpha=0.1))
        add(f"softmax output loss-scaled {dt}", softmax_output.plan_softmax_output_backward(
            v, t(33, dtype=dt), v, normalization="batch", loss_scale=t(1)))
        add(f"regression {dt}", regression_output.plan_regression_output_backward(v, v, v, 0.5))
        add(f"regression loss-scaled {dt}", regression_output.plan_regression_output_backward(
            v, v, v, 0.5, loss_scale=t(1)))
        flat, ct = t(3000, dtype=dt), optimizer.compute_dtype(dt)
        chunks = optimizer.chunk_table([optimizer.Segment(0, 1000), optimizer.Segment(1024, 1976, 0.5, 0.0)], 3000,
                                       dt, "cpu")
        state = t(3000, dtype=ct)
        for clip in (False, True):
            add(f"sgd {dt} clip={clip}", optimizer.plan_sgd_update(flat, flat, None, chunks,
                                                                    t(len(optimizer.SGD_HYPER), dtype=ct), clip))
            add(f"sgd momentum {dt} clip={clip}", optimizer.plan_sgd_update(
                flat, flat, state, chunks, t(len(optimizer.SGD_HYPER), dtype=ct), clip))
            add(f"adam {dt} clip={clip}", optimizer.plan_adam_update(flat, flat, state, state, chunks,
                                                                      t(len(optimizer.ADAM_HYPER), dtype=ct), clip))
        scaler = optimizer.LossScaleState(t(1), t(len(optimizer.SCALER_COUNTERS), dtype=torch.int32))
        add(f"count nonfinite grads {dt}", optimizer.plan_count_nonfinite_grads(flat, chunks, scaler))
        add(f"sgd momentum loss-scaled {dt}", optimizer.plan_sgd_update(
            flat, flat, state, chunks, t(len(optimizer.SGD_HYPER), dtype=ct), True, scaler=scaler))
        add(f"adam loss-scaled {dt}", optimizer.plan_adam_update(
            flat, flat, state, state, chunks, t(len(optimizer.ADAM_HYPER), dtype=ct), False,
            master=t(3000) if dt in optimizer.HALF_DTYPES else None, scaler=scaler))
        if dt in optimizer.HALF_DTYPES:  # with a float32 master copy
            add(f"sgd momentum master {dt}", optimizer.plan_sgd_update(
                flat, flat, state, chunks, t(len(optimizer.SGD_HYPER), dtype=ct), False, master=t(3000)))
            add(f"adam master {dt}", optimizer.plan_adam_update(
                flat, flat, state, state, chunks, t(len(optimizer.ADAM_HYPER), dtype=ct), False, master=t(3000)))
    add("count labels", softmax_output.plan_count_valid_labels(t(33, dtype=torch.int64), t(1), -1.0))
    add("loss scale update", optimizer.plan_loss_scale_update(
        optimizer.LossScaleState(t(1), t(len(optimizer.SCALER_COUNTERS), dtype=torch.int32)), 2.0, 0.5, 2000,
        2.0 ** -24, 2.0 ** 24))
    return out


ALL_CONFIGS_DTYPE = torch.float16  # every autotune config is compiled for this dtype, the first for others


def variants(launch):
    """The kernel variants one planned launch compiles on a GPU: each config it would try,
    with the JIT's own specialization of its arguments (tritonsym.ops.aot)."""
    from tritonsym.ops import aot

    first = next(a for a in launch.args if isinstance(a, torch.Tensor))
    configs = aot.configs(launch, every=first.dtype == ALL_CONFIGS_DTYPE)
    # The TMA forward's first config in every dtype that has one: its own code path.
    tma = [c for c in aot.configs(launch) if c is not None and c.kwargs.get("TMA")][:1]
    return [aot.specialize(launch, config) for config in configs + [c for c in tma if c not in configs]]


def _compile(job):
    variant, arch = job
    from tritonsym.ops import aot

    start = time.time()
    try:
        aot.compile_specialized(variant, arch)
        return None, time.time() - start
    except Exception as e:  # report every failure, not just the first
        return f"{type(e).__name__}: {str(e)[:2000]}", time.time() - start


def write_costs(path: str, timed: list[tuple[str, float]], arch: int, jobs: int, wall: float) -> None:
    """A Markdown table of compile seconds per kernel, most expensive first."""
    import platform

    import triton

    per_kernel: dict[str, list[float]] = {}
    for kernel, seconds in timed:
        per_kernel.setdefault(kernel, []).append(seconds)
    rows = sorted(per_kernel.items(), key=lambda kv: -sum(kv[1]))
    total = sum(s for _, s in timed)
    lines = [f"# cold compile cost for sm_{arch}",
             "",
             f"Triton {triton.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} CPUs, {jobs} processes; {time.strftime('%Y-%m-%d')}. Made by "
             f"`TRITON_CACHE_DIR=$(mktemp -d) python tests/compile_for_gpu.py --jobs {jobs} --costs FILE`: "
             "each variant compiled from an empty cache to a cubin (the work a GPU's first launch does, "
             "less loading the module). Every autotune config of float16 launches, the first config of others.",
             "",
             f"{len(timed)} variants, {total:.0f} s of compiling ({wall:.0f} s wall).",
             "",
             "| kernel | variants | mean s | largest s | total s |",
             "|---|---|---|---|---|"]
    lines += [f"| {kernel} | {len(ss)} | {sum(ss) / len(ss):.2f} | {max(ss):.2f} | {sum(ss):.1f} |"
              for kernel, ss in rows]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, default=90, help="CUDA compute capability x10 (default 90: Hopper)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--costs", help="write each kernel's compile seconds to this Markdown file")
    args = parser.parse_args(argv)
    from tritonsym import ops

    assert not ops.INTERPRET, "compile_for_gpu must import tritonsym in compiled mode"
    seen, jobs = set(), []
    for what, launch in planned_launches():
        for variant in variants(launch):
            key = repr(variant)
            if key not in seen:
                seen.add(key)
                jobs.append((what, (variant, args.arch)))
    start = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(_compile, [job for _, job in jobs]))
    failures = [(what, job, error) for (what, job), (error, _) in zip(jobs, results) if error]
    for what, job, error in failures:
        variant = job[0]
        print(f"FAILED {what}: {variant.kernel} {variant.config} {variant.constexprs}\n  {error}\n")
    wall = time.time() - start
    print(f"compiled {len(jobs) - len(failures)}/{len(jobs)} kernel variants for sm_{args.arch} in "
          f"{wall:.0f} s ({args.jobs} processes)")
    if args.costs:
        write_costs(args.costs, [(job[0].kernel, seconds) for (_, job), (_, seconds) in zip(jobs, results)],
                    args.arch, args.jobs, wall)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
