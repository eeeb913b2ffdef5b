"""What every benchmark shares: timing, the environment it ran in, and writing results.

Timing on a GPU is ``triton.testing.do_bench`` (median, after warm-up, caches flushed);
on the CPU, where kernels run in Triton's interpreter, a median of wall-clock repeats.
Results go to perf/results/<name>-<device>.csv, .md and (with matplotlib) .png, with the
device, versions and date; ``TRITONSYM_PERF_RESULTS=DIR`` writes them elsewhere (tests).
"""

from __future__ import annotations

import csv
import datetime
import os
import pathlib
import platform
import statistics
import time
from typing import Callable

import torch
import triton

RESULTS = pathlib.Path(os.environ.get("TRITONSYM_PERF_RESULTS") or pathlib.Path(__file__).resolve().parent / "results")
ON_GPU = torch.cuda.is_available()
DEVICE = "cuda" if ON_GPU else "cpu"  # where the benchmarks' tensors live
INTERPRETER_NOTE = "CPU rows run Triton's interpreter: they check the script, not speed."


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}), Triton interpreter"


def device_tag() -> str:
    """A file-name-friendly device name: "nvidia-h100-80gb-hbm3", "cpu-interpreter"."""
    if not torch.cuda.is_available():
        return "cpu-interpreter"
    return "-".join("".join(c if c.isalnum() else " " for c in device_name()).lower().split())


def environment(where: str | None = None) -> str:
    return (f"{where or device_name()}; torch {torch.__version__}, triton {triton.__version__}, "
            f"python {platform.python_version()}; {datetime.date.today().isoformat()}")


def time_ms(fn: Callable[[], None], repeats: int = 5) -> float:
    """Median milliseconds of one call of ``fn``."""
    if torch.cuda.is_available():
        return triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median")
    fn()  # warm-up: the interpreter builds its kernel objects on the first call
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def host_us(step, repeats: int = 100) -> float | None:
    """Host microseconds of one call of ``step``: the median of calls each made with the
    device idle (synchronised before, not after). Back-to-back calls would fill the launch
    queue whenever a step's device time exceeds its host time, and then each call would
    wait for the device: that measures the device, not the host."""
    if not ON_GPU:
        return None
    step()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    torch.cuda.synchronize()
    return 1e6 * statistics.median(times)


def ratio(ours_ms: float, theirs_ms: float | None) -> str:
    """How many times faster ours is ("1.23x"); blank where the other was not timed."""
    return "" if theirs_ms is None else f"{theirs_ms / ours_ms:.2f}x"


def compiled(fn: Callable, enabled: bool = True, mode: str | None = None) -> Callable | None:
    """``torch.compile(fn, mode=mode)`` where it works here (a GPU and a compiler), else None."""
    if not (enabled and ON_GPU):
        return None
    try:
        out = torch.compile(fn, dynamic=False, mode=mode)
        out()  # compile now, outside the timing
        return out
    except Exception as error:  # no C compiler, an unsupported op: the column stays blank
        print(f"torch.compile unavailable: {type(error).__name__}: {str(error)[:200]}", flush=True)
        return None


def optimizer_step(loss: Callable, opt) -> Callable[[], None]:
    """One torch training step: fresh gradients of ``loss()`` (``set_to_none``: no pass to
    zero them), then ``opt.step()``."""
    def step():
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()
    return step


def graphed(fn: Callable[[], None], warm_up: Callable[[], None] | None = None,
            before_capture: Callable[[], None] | None = None) -> Callable[[], None] | None:
    """``fn`` (device work on fixed addresses) captured as one CUDA graph as torch documents
    it: ``warm_up`` (default ``fn``) run three times on a side stream, then ``before_capture``
    and the capture. Its replay, or None without a GPU or where capture fails (the column
    stays blank, saying why)."""
    if not ON_GPU:
        return None
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                (warm_up or fn)()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        if before_capture:
            before_capture()
        with torch.cuda.graph(graph):
            fn()
        return graph.replay
    except Exception as error:
        print(f"CUDA graph capture unavailable: {type(error).__name__}: {str(error)[:200]}", flush=True)
        return None


def graphed_step(loss: Callable, opt) -> Callable[[], None] | None:
    """The whole torch step (forward, backward, optimizer) captured as one CUDA graph, as
    torch documents whole-network capture (gradients allocated from the graph's pool): the
    honest peer of a graphed tritonsym step. None without a GPU or where capture fails (an
    optimizer that is not capturable)."""
    def step():
        loss().backward()
        opt.step()
    return graphed(step, warm_up=optimizer_step(loss, opt), before_capture=lambda: opt.zero_grad(set_to_none=True))


def best_peer(times: dict[str, float | None]) -> tuple[str, float]:
    """The fastest of the peers timed (eager, compile, graph...): what a speed-up is judged against."""
    name = min((k for k, v in times.items() if v is not None), key=lambda k: times[k])
    return name, times[name]


def copy_bandwidth_gbs(nbytes: int = 2**30) -> float | None:
    """Measured device-to-device copy bandwidth, bytes read plus bytes written per second
    (the memory-bound floor every elementwise and softmax kernel is held against)."""
    if not ON_GPU:
        return None
    src = torch.empty(nbytes // 4, dtype=torch.float32, device="cuda").uniform_()
    dst = torch.empty_like(src)
    ms = triton.testing.do_bench(lambda: dst.copy_(src), warmup=25, rep=200, return_mode="median")
    return 2 * nbytes / ms / 1e6


def copy_note(copy_gbs: float | None) -> str:
    """The first words of a memory-bound table's notes: the measured floor, or what CPU rows mean."""
    if copy_gbs is None:
        return INTERPRETER_NOTE + " "
    return f"Device-to-device copy bandwidth measured in this run: {copy_gbs:.0f} GB/s (read + write). "


def plot(stem: pathlib.Path, rows: list[dict], x: str, series: list[str], group: str | None = None,
         ylabel: str = "", logx: bool = True) -> pathlib.Path | None:
    """A line per ``series`` column (one panel per value of ``group``) against ``x``, as PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    groups = list(dict.fromkeys(r[group] for r in rows)) if group else [None]
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.6), squeeze=False)
    for ax, g in zip(axes[0], groups):
        part = [r for r in rows if group is None or r[group] == g]
        for column in series:
            points = [(float(r[x]), float(r[column])) for r in part if r.get(column) not in ("", None)]
            if points:
                ax.plot(*zip(*points), marker="o", label=column)
        if logx:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(x)
        ax.set_ylabel(ylabel)
        ax.set_title(str(g) if g is not None else stem.name, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(environment(), fontsize=7)
    fig.tight_layout()
    path = stem.with_suffix(".png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(name: str, rows: list[dict], notes: str = "", chart: dict | None = None, tag: str | None = None,
          where: str | None = None) -> pathlib.Path:
    """CSV and Markdown (and a PNG drawn by ``plot(**chart)``) under perf/results/;
    returns the Markdown path. ``tag`` replaces the device in the file name and ``where``
    the device in the header, for results that did not run on this machine's device."""
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{name}-{tag or device_tag()}"
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    header = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in row.values()) + " |\n" for row in rows)
    picture = plot(stem, rows, **chart) if chart else None
    figure = f"\n![{name}]({picture.name})\n" if picture else ""
    text = f"# {name}\n\n{environment(where)}\n\n{header}{body}\n{notes}\n{figure}"
    stem.with_suffix(".md").write_text(text)
    return stem.with_suffix(".md")


def fill_compile_column(table: "Table", states: list[dict], add_compile: Callable[[dict], None],
                        row: Callable[[dict], dict]) -> None:
    """The second pass of a benchmark whose rows went in without torch.compile: its column,
    row by row (``add_compile(state)``, then the row rewritten), the table marked partial
    until the last one is in."""
    missing = len(states)
    table.pending = f"torch.compile's column for {missing} of {len(states)} rows"
    table.replace(0, table.rows[0])  # marked partial until the column is in
    for index, state in enumerate(states):
        add_compile(state)
        missing -= 1
        table.pending = f"torch.compile's column for {missing} of {len(states)} rows" if missing else ""
        table.replace(index, row(state))


class Table:
    """A results table written out again after every row it gets, so that a run cut short
    (a GPU lent for a limited time per command) still leaves the rows it measured, marked
    partial in the Markdown; the chart is drawn once the table is complete.

    A benchmark may fill its rows in two passes, the costly columns last (``replace`` a
    row once they are in): while ``pending`` names what is still missing, the table is
    marked partial too."""

    def __init__(self, name: str, expected: int, notes: str = "", chart: dict | None = None):
        self.name, self.expected, self.notes, self.chart = name, expected, notes, chart
        self.rows: list[dict] = []
        self.path: pathlib.Path | None = None
        self.pending = ""  # what the rows still lack, in words ("" when nothing)
        self.started = time.monotonic()

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self._write(row)

    def replace(self, index: int, row: dict) -> None:
        self.rows[index] = row
        self._write(row)

    def _write(self, row: dict) -> None:
        # The seconds since the table began: what a device session's phase limits are sized from.
        print(f"[{time.monotonic() - self.started:.0f} s] {row}", flush=True)
        if len(self.rows) < self.expected:
            partial = (f"**Partial: {len(self.rows)} of {self.expected} rows** (the run stopped before the "
                       "rest; the files are rewritten after every row).\n\n")
            self.path = write(self.name, self.rows, partial + self.notes)
        elif self.pending:
            partial = (f"**Partial: {self.pending}** (the run stopped before them; the files are rewritten "
                       "after every row).\n\n")
            self.path = write(self.name, self.rows, partial + self.notes)
        else:
            self.path = write(self.name, self.rows, self.notes, self.chart)
