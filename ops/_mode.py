"""How kernels run in this process, decided once before any kernel is decorated."""

import os

import torch


def _interpreter_wanted() -> bool:
    # TRITONSYM_INTERPRET=1 forces the interpreter (debugging on a GPU machine); =0 forces
    # compiled kernels even without CUDA, so that they can be compiled for a GPU target
    # on a CPU machine (tests/compile_for_gpu.py) though not run.
    forced = os.environ.get("TRITONSYM_INTERPRET")
    if forced in ("0", "1"):
        return forced == "1"
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return True
    return not torch.cuda.is_available()


INTERPRET: bool = _interpreter_wanted()
# Triton reads this when @triton.jit decorates a kernel, so it must be set before any kernel
# module is imported, and cleared when compiling (a parent process may have set it).
os.environ["TRITON_INTERPRET"] = "1" if INTERPRET else "0"
# Triton 3.9 warns on every import unless this is set; "1" keeps its current default
# (FMA contraction on), which Triton 3.6 also uses.
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
