"""Options the commands read the same way for every model: the device and the loss scale."""

from __future__ import annotations

from ..base import TritonSymError


def loss_scale(option: str | None, dtype: str):
    """``--loss-scale``: dynamic scaling for float16 unless told otherwise (bfloat16 has
    float32's range and needs none)."""
    if option is None:
        return "dynamic" if dtype == "float16" else None
    value = option.strip().lower()
    if value in ("none", "dynamic"):
        return None if value == "none" else value
    try:
        scale = float(value)
    except ValueError:
        scale = float("nan")
    if not (scale > 0 and scale != float("inf")):
        raise TritonSymError(f"train: --loss-scale {option!r}: expected dynamic, none or a positive number")
    return scale


def context_from(name: str, command: str = "train"):
    """``--device``: auto (a GPU where there is one), cpu, gpu or gpu:N."""
    from .. import context

    if name == "auto":
        return context.default_context()
    if name == "cpu":
        return context.cpu()
    if name.startswith("gpu"):
        index = name.partition(":")[2]
        if index and not index.isdigit():
            raise TritonSymError(f"{command}: --device {name!r}: expected gpu or gpu:N")
        return context.gpu(int(index or 0))
    raise TritonSymError(f"{command}: --device {name!r}: expected auto, cpu, gpu or gpu:N")
