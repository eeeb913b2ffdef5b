"""Compile every kernel variant a list of launches will need, in parallel, before the first run.

On a GPU the first call of each launch compiles it inside Triton's JIT, and an autotuned
launch compiles every config it races, one after another: a cold bind of a small MLP
compiled about 51 variants serially (38 s for sm_90 on a CPU). Compiling needs no GPU,
and Triton's compile is keyed by content into a shared on-disk cache, so worker
processes can compile the variants that are not in the cache yet, at the same time, and
the JIT then finds each one there (``aot.specialize`` gives exactly the variant the JIT
compiles, so the keys agree).

What is already cached is found in this process from the cache key alone (no compile,
no worker started): a warm bind costs a few milliseconds per variant.

A bound executor on a GPU does this at bind (``warm``). ``TRITONSYM_PRECOMPILE=0`` turns
it off (the JIT then compiles as it runs); a number sets the processes (default: the
CPUs this process may use).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from triton.backends.compiler import GPUTarget
from triton.compiler import make_backend
from triton.compiler.compiler import get_cache_invalidating_env_vars, get_cache_key
from triton.runtime.cache import get_cache_manager

from . import aot
from ._common import Launch
from ._mode import INTERPRET

SETTING = os.environ.get("TRITONSYM_PRECOMPILE", "").strip()
# A worker first imports torch, triton and tritonsym (seconds): with fewer missing variants
# than this the JIT compiles them sooner, and each worker takes at least two.
PARALLEL_FROM = 4


@dataclass
class Precompiled:
    """What ``precompile`` did: variants the launches need, how many were compiled now
    (the others were cached), in how many processes, and the seconds it took."""

    variants: int = 0
    compiled: int = 0
    workers: int = 0
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)  # "kernel config: why", left to the JIT to report
    left_to_jit: int = 0  # launches not looked at (see ``needed_variants``)
    deferred: int = 0  # missing variants too few to start workers for: the JIT compiles them

    def __str__(self) -> str:
        return (f"{self.variants} kernel variants, {self.compiled} compiled in {self.workers} processes, "
                f"{self.seconds:.1f} s" + (f"; {len(self.failed)} failed" if self.failed else "")
                + (f"; {self.deferred} left to the JIT (too few to start workers)" if self.deferred else "")
                + (f"; {self.left_to_jit} launches left to the JIT" if self.left_to_jit else ""))


def _cache_key(variant: aot.Specialized, arch: int) -> tuple[str, str]:
    """(the cache directory's hash, the metadata file's name) that ``triton.compile`` uses
    for this variant: computed as it computes them, without compiling."""
    source = aot.source_of(variant)
    backend = make_backend(GPUTarget("cuda", arch, 32))
    options = backend.parse_options(dict(variant.options, **source.parse_options()))
    key = get_cache_key(source, backend, options, env_vars=get_cache_invalidating_env_vars())
    return hashlib.sha256(key.encode("utf-8")).hexdigest(), f"{source.name[:150]}.json"


def is_cached(variant: aot.Specialized, arch: int) -> bool:
    """Whether Triton's cache holds this variant compiled for sm_``arch``."""
    digest, metadata = _cache_key(variant, arch)
    return metadata in (get_cache_manager(digest).get_group(metadata) or {})


def _start_worker(variants: list[aot.Specialized], arch: int, results: str) -> subprocess.Popen:
    """A fresh interpreter compiling ``variants`` (``_precompile_worker``), writing what
    failed to the file ``results``: not a multiprocessing child, which would run the user's
    script again on start (spawn) or inherit an initialised CUDA (fork)."""
    worker = subprocess.Popen([sys.executable, "-m", f"{__package__}._precompile_worker", results],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              env={**os.environ, "TRITONSYM_INTERPRET": "0", "TRITON_INTERPRET": "0",
                                   # this process's path: a checkout that is not installed imports too
                                   "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    worker.stdin.write(pickle.dumps((variants, arch, os.getpid())))
    worker.stdin.close()
    return worker


def needed_variants(launches: list[Launch], arch: int) -> tuple[list[aot.Specialized], int]:
    """Every variant the launches compile on sm_``arch`` (each autotune config the
    kernel's own pruning keeps), once each; and how many launches were left to the JIT:
    a kernel defined in the script being run (its module ``__main__`` is another one in a
    worker), or one whose arguments the JIT's binder would not take here."""
    found: dict[tuple, aot.Specialized] = {}
    left = 0
    for launch in launches:
        if getattr(aot._jit_function(launch.kernel), "__module__", "__main__") == "__main__":
            left += 1
            continue
        try:
            variants = [aot.specialize(launch, config, arch) for config in aot.configs(launch, every=True)]
        except Exception:  # the JIT binds and compiles it itself, and reports any error there
            left += 1
            continue
        for variant in variants:
            key = (variant.module, variant.kernel, repr(variant.signature), repr(sorted(variant.constexprs.items())),
                   repr(sorted(variant.attrs.items())), repr(sorted(variant.options.items())))
            found.setdefault(key, variant)
    return list(found.values()), left


def precompile(launches: list[Launch], arch: int, workers: int | None = None) -> Precompiled:
    """Compile, in up to ``workers`` processes (default: the CPUs this process may use; at
    least two variants each), every variant of ``launches`` for sm_``arch`` that Triton's
    cache lacks, when at least PARALLEL_FROM do."""
    start = time.perf_counter()
    variants, left = needed_variants(launches, arch)
    missing = [v for v in variants if not is_cached(v, arch)]
    if len(missing) < PARALLEL_FROM:
        return Precompiled(variants=len(variants), deferred=len(missing), left_to_jit=left,
                           seconds=time.perf_counter() - start)
    report = Precompiled(variants=len(variants), compiled=len(missing), left_to_jit=left)
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    report.workers = max(1, min(workers or available, len(missing) // 2))
    shares = [missing[k::report.workers] for k in range(report.workers)]
    with tempfile.TemporaryDirectory(prefix="tritonsym-precompile-") as folder:
        results = [os.path.join(folder, f"{k}.pickle") for k in range(len(shares))]
        started = []
        try:
            started += [_start_worker(share, arch, path) for share, path in zip(shares, results)]
            for share, worker, path in zip(shares, started, results):
                if worker.wait() == 0 and os.path.exists(path):
                    with open(path, "rb") as f:
                        why = pickle.load(f)
                else:
                    why = [f"the compiling process exited with {worker.returncode}"] * len(share)
                report.failed += [f"{v.kernel} {v.config}: {w}" for v, w in zip(share, why) if w]
        finally:  # interrupted (Ctrl-C, an error): no worker goes on compiling for nobody
            for worker in started:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
    report.seconds = time.perf_counter() - start
    return report


def warm(launches: list[Launch], device) -> Precompiled | None:
    """``precompile`` for a CUDA ``device`` (a torch device) unless turned off, or where
    kernels run in the interpreter; None when nothing was done."""
    if INTERPRET or SETTING == "0" or getattr(device, "type", "") != "cuda" or not launches:
        return None
    import torch

    major, minor = torch.cuda.get_device_capability(device)
    return precompile(launches, 10 * major + minor, int(SETTING) if SETTING.isdigit() else None)

