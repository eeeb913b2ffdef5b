"""A worker process of ``precompile``: variants in on stdin (pickled, with the target
architecture and the asking process's id), for each "" or why its compile failed out to the
file named on the command line (the JIT compiles a failed one again when it runs, and
reports it there).

A worker stops between two compiles once the process that asked for them is gone (killed
at a time limit, or by a user): orphaned, it would go on compiling for nobody, taking the
CPU from whatever runs next (a benchmark's launches, say)."""

import os
import pickle
import sys

from . import aot  # run as python -m tritonsym.ops._precompile_worker: a package module


def compile_all(variants: list, arch: int, asker_alive=lambda: True) -> list[str] | None:
    """What failed, variant by variant; None where the asker went away before the end."""
    failed = []
    for variant in variants:
        if not asker_alive():
            return None
        try:
            aot.compile_specialized(variant, arch)
            failed.append("")
        except Exception as e:
            failed.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    return failed


def alive(pid: int) -> bool:
    """Whether ``pid`` is still this process's parent (an orphan is given to another)."""
    return os.getppid() == pid


if __name__ == "__main__":
    given, target_arch, asker = pickle.loads(sys.stdin.buffer.read())
    failures = compile_all(given, target_arch, lambda: alive(asker))
    if failures is None:
        sys.exit(1)
    with open(sys.argv[1], "wb") as out:
        pickle.dump(failures, out)
