"""What each kernel compiles to on Hopper, read from the compiler's output; no GPU needed.

Every kernel variant a representative launch would compile (each autotune config, with
the JIT's own argument specialization: tritonsym.ops.aot) is compiled for sm_90, and its
cubin is read back with the CUDA binary tools that ship with Triton: shared memory,
registers, spilled bytes, and in the SASS the tensor-core instructions (HGMMA is Hopper's
wgmma, HMMA the older mma.sync, DMMA float64), the asynchronous copies into shared memory
(LDGSTS, with their width) and TMA copies (UTMALDG in, UTMASTG out).

This is the static half of a performance investigation: it says whether a kernel feeds
the tensor cores, pipelines its loads 16 bytes at a time and fits in shared memory, which
no timing on a CPU can. A variant over 227 KiB of shared memory cannot launch on an H100
(the autotuner skips it). Timing is for the bench_*.py scripts on a GPU.

Run: python perf/kernel_report.py [--arch 90] [--only fc] [--jobs 2]
"""

from __future__ import annotations

import os

# Compiled kernels, even without a GPU; Triton reads its own switch when it is first
# imported (here by common), before tritonsym.ops would set it.
os.environ["TRITONSYM_INTERPRET"] = os.environ["TRITON_INTERPRET"] = "0"
# The TMA forward is planned for a GPU of compute capability 9+; there is none here.
os.environ.setdefault("TRITONSYM_TMA", "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import pathlib  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402

import torch  # noqa: E402
import triton  # noqa: E402
from common import write  # noqa: E402

SHARED_LIMIT = {90: 227 * 1024, 80: 163 * 1024, 89: 99 * 1024}  # bytes a program may use, per arch


def cuda_tool(name: str) -> str | None:
    bundled = pathlib.Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name
    return str(bundled) if bundled.exists() else shutil.which(name)


def planned() -> list[tuple[str, str, object]]:
    """(kernel, dtype, Launch) for the representative launches of every kernels module
    (``tritonsym.ops.catalog``) at the sizes worth reading (FullyConnected at
    M = N = K = 4096, the memory-bound families on 2**24 elements or wide rows), in float32
    and bfloat16, and FullyConnected in every dtype."""
    from tritonsym.ops import catalog, fully_connected

    short = {torch.float64: "fp64", torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
    out = []
    for what, dtype, launch in catalog.representative_launches((torch.float32, torch.bfloat16), large=True) + \
            catalog.representative_launches((torch.float64, torch.float16), large=True, modules=(fully_connected,)):
        what = what.split(": ", 1)[1]  # "fc forward relu", without its module
        tf32 = "tf32" in what
        out.append((what.replace(" tf32", ""), "tf32" if tf32 else short[dtype], launch))
    return out


def _sass_summary(cubin: bytes) -> dict:
    """Registers, spills and instruction counts of one cubin, from cuobjdump and nvdisasm."""
    cuobjdump, nvdisasm = cuda_tool("cuobjdump"), cuda_tool("nvdisasm")
    if not (cuobjdump and nvdisasm):
        return {}
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        usage = subprocess.run([cuobjdump, "-res-usage", f.name], capture_output=True, text=True).stdout
        sass = subprocess.run([nvdisasm, f.name], capture_output=True, text=True).stdout
    ops = collections.Counter()
    for line in sass.splitlines():
        m = re.match(r"\s*/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.x]*)", line)
        if m:
            ops[m.group(1)] += 1
    regs, local = re.search(r"REG:(\d+)", usage), re.search(r"LOCAL:(\d+)", usage)
    return {"regs": int(regs.group(1)) if regs else None, "local": int(local.group(1)) if local else None,
            "ops": ops}


def _tensor_cores(ops: collections.Counter) -> str:
    found = [f"{n}x {op.split('.')[0]} {op.split('.')[1]}" for op, n in sorted(ops.items())
             if op.split(".")[0] in ("HGMMA", "HMMA", "DMMA", "IMMA")]
    return ", ".join(found) or "none (FMA)"


def _copies(ops: collections.Counter, prefix: str) -> str:
    """'24x 16 B' style counts of one load family by width (no width suffix = 4 bytes)."""
    widths = collections.Counter()
    for op, n in ops.items():
        parts = op.split(".")
        if parts[0] != prefix:
            continue
        bits = next((int(p) for p in reversed(parts) if p in ("8", "16", "32", "64", "128")), 32)
        if "U16" in parts or "S16" in parts:
            bits = 16
        widths[bits // 8] += n
    return ", ".join(f"{n}x {size} B" for size, n in sorted(widths.items(), reverse=True))


def _count(ops: collections.Counter, prefix: str) -> int | str:
    """Instructions of one opcode, whatever their modifiers (UTMALDG.2D, ...); '' for none."""
    return sum(n for op, n in ops.items() if op.split(".")[0] == prefix) or ""


def _shared_loads(ops: collections.Counter) -> str:
    """Reads of shared memory: ldmatrix (LDSM, the tensor-core operand path) and plain LDS by
    width. Many narrow LDS where a tile feeds the tensor cores hint at an unswizzled layout."""
    ldsm = sum(n for op, n in ops.items() if op.startswith("LDSM"))
    plain = _copies(ops, "LDS")
    return ", ".join(part for part in (f"{ldsm}x LDSM" if ldsm else "", plain) if part)


def _compile_row(job) -> dict:
    what, mode, variant, arch = job
    from tritonsym.ops import aot

    row = {"kernel": what, "dtype": mode, "config": variant.config or "-"}
    try:
        compiled = aot.compile_specialized(variant, arch)
    except Exception as error:
        return {**row, "shared KiB": "", "fits": f"does not compile: {type(error).__name__}"}
    shared = compiled.metadata.shared
    summary = _sass_summary(compiled.asm["cubin"])
    ops = summary.get("ops", collections.Counter())
    return {**row, "shared KiB": f"{shared / 1024:.0f}",
            "fits": "yes" if shared <= SHARED_LIMIT.get(arch, SHARED_LIMIT[90]) else "no: over the limit",
            "registers": summary.get("regs", ""), "spilled B": summary.get("local", ""),
            "tensor cores": _tensor_cores(ops) if summary else "",
            "async copies": _copies(ops, "LDGSTS") if summary else "", "TMA loads": _count(ops, "UTMALDG"),
            "TMA stores": _count(ops, "UTMASTG"),
            "plain loads": _copies(ops, "LDG") if summary else "",
            "shared loads": _shared_loads(ops) if summary else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, default=90, help="CUDA compute capability x10 (default 90: Hopper)")
    parser.add_argument("--only", default="", help="only kernels whose name starts with this (e.g. 'fc')")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    from tritonsym.ops import aot

    jobs = [(what, mode, variant, args.arch) for what, mode, launch in planned() if what.startswith(args.only)
            for variant in (aot.specialize(launch, c, args.arch) for c in aot.configs(launch))]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(_compile_row, jobs))
    for row in rows:
        print(row, flush=True)
    notes = (f"Static: compiled for sm_{args.arch} by Triton {triton.__version__} on this machine; nothing ran. "
             "Every kernels module's representative launches (tritonsym.ops.catalog) at the sizes worth reading: "
             "FullyConnected at M=N=K=4096; softmax 4096x4096, 256x65536 and 8x262144 (split rows: partials, then "
             "write); elementwise, activations, losses and updates on 2^24 elements. Each autotune config the "
             "kernel would try "
             "(after its own pruning). `fits`: shared "
             f"memory within {SHARED_LIMIT.get(args.arch, SHARED_LIMIT[90]) // 1024} KiB per program. "
             "`tensor cores`: SASS instruction count and shape (HGMMA = wgmma). `async copies`: LDGSTS "
             "(cp.async) by width; `TMA loads`/`TMA stores`: UTMALDG/UTMASTG; `plain loads`: LDG by width; "
             "`shared loads`: ldmatrix (LDSM) and LDS by width.")
    tag = f"sm{args.arch}-triton-{triton.__version__}"
    print(f"wrote {write('kernels', rows, notes, tag=tag, where=f'compiled for sm_{args.arch}; nothing ran')}")


if __name__ == "__main__":
    main()
