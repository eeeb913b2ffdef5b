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


def planned_launches():
    """(description, Launch) for the representative launches of every kernels module
    (``tritonsym.ops.catalog``), in every dtype."""
    from tritonsym.ops import catalog

    return [(f"{what} {dtype}", launch) for what, dtype, launch in catalog.representative_launches()]


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
    parser.add_argument("--only", default="", help="compile only the launches whose description holds this text "
                                                   "(for example 'convolution' after editing its kernels)")
    args = parser.parse_args(argv)
    from tritonsym import ops

    assert not ops.INTERPRET, "compile_for_gpu must import tritonsym in compiled mode"
    seen, jobs = set(), []
    for what, launch in planned_launches():
        if args.only not in what:
            continue
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
