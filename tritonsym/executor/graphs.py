"""Whole-phase CUDA graphs: forward, backward and the optimizer update, each replayed as one graph.

Binding fixes every launch, grid and address, so a phase (the launch list that
``forward`` or ``backward`` runs, the optimizer's launches) is the same sequence of kernels
on the same memory every step. ``bind(..., cuda_graph=True)`` records each phase once and
replays it after that, which replaces one Python launch per kernel (44-75 us each
through Triton's JIT and autotuner on an H100 host, measured by perf/bench_mlp.py before
launches were pre-bound) by one graph launch per phase. ``Executor.forward_backward``
makes a whole training step, update included, one phase.

A phase is run eagerly the first time it is called (that call compiles the kernels,
autotunes them and loads them onto the device: none of which may happen while a graph is
being recorded), recorded the second time, and replayed from then on. The recording
call replays its graph at once, so every call computes its step. Host-side work stays
outside the graphs: copying a batch into the bound arrays, the optimizer's per-step
scalars (written into a device buffer the update kernel reads), argument checks.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..base import BindError


class EagerPhases:
    """Runs each phase's launches directly: what an executor without graphs uses, so that
    every phase goes through one ``run(phase, launch_all)`` either way."""

    def run(self, phase: str, launch_all: Callable[[], None]) -> None:
        launch_all()


EAGER = EagerPhases()


class PhaseGraphs:
    """The recorded CUDA graphs of one executor, by phase name."""

    def __init__(self, device: torch.device):
        if device.type != "cuda":
            raise BindError(f"cuda_graph=True needs a GPU context (tritonsym.gpu(i)); this bind is on {device}")
        self.device = device
        self._graphs: dict[str, torch.cuda.CUDAGraph] = {}
        self._warm: set[str] = set()
        # One memory pool for all phases: the kernels allocate nothing, so it stays empty.
        self._pool = torch.cuda.graph_pool_handle()

    def run(self, phase: str, launch_all: Callable[[], None]) -> None:
        """Run ``phase``: eagerly on its first call, then recorded once and replayed."""
        graph = self._graphs.get(phase)
        if graph is not None:
            graph.replay()
            return
        if phase not in self._warm:
            launch_all()
            self._warm.add(phase)
            return
        graph = torch.cuda.CUDAGraph()
        # thread_local: another thread's executor launching while this one records is not an
        # error (each executor's launches and buffers are its own).
        with torch.cuda.device(self.device), torch.cuda.graph(graph, pool=self._pool,
                                                              capture_error_mode="thread_local"):
            launch_all()
        self._graphs[phase] = graph
        graph.replay()

    def recorded(self) -> list[str]:
        """The phases that replay a graph now."""
        return sorted(self._graphs)
