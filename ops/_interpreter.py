"""Triton's interpreter without its per-call cost for device functions.

The interpreter points ``triton.language``'s builtins at numpy versions while a kernel runs
(``_patch_lang``, undone when the kernel ends). It does so again at every call of a
``@triton.jit`` helper inside the kernel, walking every member of ``tl``, ``tl.math`` and
``tl.tensor`` with ``inspect.getmembers`` each time: about 0.7 ms per call, which is most of
the time of a kernel built from helpers (a transformer step on the CPU spent 40% there).
A helper's language is the kernel's, already patched, so the repeat is skipped; a helper
that sees a module the kernel did not (``tl.core``) is patched as before. Results are
unchanged: only redundant work goes.

Installed only in interpreter mode, and only where this Triton's interpreter has the shape
this was written against (3.6 to 3.9); otherwise left alone.
"""

from __future__ import annotations

import inspect

_patched: set[int] = set()  # ids of the language modules the running kernel patched
_seen: dict = {}  # function -> ids of the language modules its globals hold


def _languages(fn, tl) -> set[int]:
    if fn not in _seen:
        _seen[fn] = {id(v) for v in fn.__globals__.values() if inspect.ismodule(v) and v in (tl, tl.core)}
    return _seen[fn]


def install() -> bool:
    """Wrap the interpreter's ``_patch_lang``; True if installed."""
    try:
        import triton.language as tl
        from triton.runtime import interpreter
    except ImportError:
        return False
    original = getattr(interpreter, "_patch_lang", None)
    scope_type = getattr(interpreter, "_LangPatchScope", None)
    if original is None or scope_type is None or getattr(original, "_tritonsym", False):
        return False

    def patch_lang_once(fn):
        languages = _languages(fn, tl)
        if _patched and languages <= _patched:  # a helper of the running kernel: nothing to patch
            return scope_type()
        outermost = not _patched
        scope = original(fn)
        _patched.update(languages)
        if outermost:  # the kernel's own patching: forget it when the kernel undoes it
            restore = scope.restore

            def restore_and_forget():
                try:
                    restore()
                finally:
                    _patched.clear()

            scope.restore = restore_and_forget
        return scope

    patch_lang_once._tritonsym = True
    interpreter._patch_lang = patch_lang_once
    return True
