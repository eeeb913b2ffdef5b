"""A worker process of ``precompile``: variants in on stdin (pickled, with the target
architecture), for each "" or why its compile failed out to the file named on the
command line (the JIT compiles a failed one again when it runs, and reports it there)."""

import pickle
import sys

from . import aot  # run as python -m tritonsym.ops._precompile_worker: a package module


def compile_all(variants: list, arch: int) -> list[str]:
    failed = []
    for variant in variants:
        try:
            aot.compile_specialized(variant, arch)
            failed.append("")
        except Exception as e:
            failed.append(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    return failed


if __name__ == "__main__":
    given, target_arch = pickle.loads(sys.stdin.buffer.read())
    failures = compile_all(given, target_arch)
    with open(sys.argv[1], "wb") as out:
        pickle.dump(failures, out)
