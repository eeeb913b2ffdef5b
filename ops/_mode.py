"""How kernels run in this process, decided once before any kernel is decorated."""

import os
import re
import sys
from importlib.metadata import version

import numpy
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


def _release(version: str) -> tuple[int, int]:
    major, minor = (re.findall(r"\d+", version) + ["0", "0"])[:2]
    return int(major), int(minor)


def check_interpreter_versions(triton_version: str, numpy_version: str) -> None:
    """Triton's interpreter before 3.7 turns a scalar kernel argument into an index with
    ``int()`` of a one-element array, which NumPy 2.4 made a TypeError: every kernel with a
    loop would fail with a message that names neither package. Say so once, up front."""
    if _release(triton_version) < (3, 7) and _release(numpy_version) >= (2, 4):
        raise ImportError(f"tritonsym: Triton {triton_version}'s interpreter (kernels on the CPU) cannot run with "
                          f"NumPy {numpy_version}: install 'numpy<2.4' or 'triton>=3.7'")


INTERPRET: bool = _interpreter_wanted()
if INTERPRET:
    # The distribution's version: importing triton here, before TRITON_INTERPRET is set, would
    # prepare its helpers for compiled kernels.
    check_interpreter_versions(version("triton"), numpy.__version__)
# Triton reads this when @triton.jit decorates a kernel, so it must be set before any kernel
# module is imported, and cleared when compiling (a parent process may have set it).
os.environ["TRITON_INTERPRET"] = "1" if INTERPRET else "0"
# Triton 3.9 warns on every import unless this is set; "1" keeps its current default
# (FMA contraction on), which Triton 3.6 also uses.
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")


def _interpret_triton_helpers() -> None:
    """Make Triton's own jit helpers (tl.sum, tl.max, tl.cdiv ...) callable from interpreted kernels.

    Triton decorates them once, when ``triton`` is first imported. If a program imported
    triton before tritonsym switched the interpreter on, they are compiled-mode objects,
    which an interpreted kernel cannot call. Re-decorate them for the interpreter, keeping
    one new object per helper so that the interpreter still recognises its fast numpy
    reductions (it matches combine functions by identity).
    """
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    replacements: dict[int, InterpretedFunction] = {}
    modules = [m for name, m in list(sys.modules.items()) if name == "triton.language"
               or name.startswith("triton.language.")]
    for module in modules:
        for name, value in list(vars(module).items()):
            if type(value) is JITFunction:
                if id(value) not in replacements:
                    replacements[id(value)] = InterpretedFunction(value.fn)
                setattr(module, name, replacements[id(value)])


if INTERPRET and "triton.language" in sys.modules:
    try:
        _interpret_triton_helpers()
    except Exception as error:  # a Triton whose internals moved: say what to do instead
        raise ImportError("triton was imported before tritonsym, before Triton's interpreter was switched on, and "
                          f"its helpers could not be re-prepared for the interpreter ({error}); import tritonsym "
                          "before triton, or set TRITON_INTERPRET=1") from error
