"""How a symbol is bound, as one frozen object: the memory plan, mirror, the finite check
and CUDA graphs. ``simple_bind``, ``bind`` and ``Module`` take these as keywords (MXNet's
way) and turn them into a ``BindOptions`` once; from there on only the object travels, to
the planner, the executor and every executor ``reshape`` makes."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..base import BindError
from .planner import MEMORY_PLANS


@dataclass(frozen=True)
class BindOptions:
    """``mirror``: recompute cheap values in backward instead of keeping them (``mirror.py``).
    ``memory_plan``: "auto" (every heuristic, then a search for the lower bound), "greedy",
    "breadth", "mxnet" or "none" (one buffer per value) (``planner.py``).
    ``check_finite``: count NaN/inf after every step and name the first (a debugging aid).
    ``cuda_graph``: record each phase as a CUDA graph on its second call (GPU only)."""

    mirror: bool = False
    memory_plan: str = "auto"
    check_finite: bool = False
    cuda_graph: bool = False

    @classmethod
    def make(cls, mirror=False, memory_plan="auto", check_finite=None, cuda_graph=False) -> "BindOptions":
        """The options from the keywords users give, checked; ``check_finite=None`` reads the
        ``TRITONSYM_CHECK_FINITE`` environment switch (on without changing code)."""
        if check_finite is None:
            check_finite = os.environ.get("TRITONSYM_CHECK_FINITE", "0").strip() not in ("", "0")
        for name, value in (("check_finite", check_finite), ("mirror", mirror), ("cuda_graph", cuda_graph)):
            if not isinstance(value, bool):
                raise BindError(f"{name} must be True or False, got {value!r}")
        if memory_plan not in MEMORY_PLANS:
            raise BindError(f"memory_plan must be one of {', '.join(MEMORY_PLANS)}; got {memory_plan!r}")
        if cuda_graph and check_finite:
            raise BindError("cuda_graph=True and check_finite=True cannot be combined: the finite check reads a "
                            "count back to the host after every step, which a recorded graph cannot do; debug "
                            "without the graph")
        return cls(mirror, memory_plan, check_finite, cuda_graph)
