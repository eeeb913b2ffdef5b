"""What every benchmark shares: timing, the environment it ran in, and writing results.

Timing on a GPU is ``triton.testing.do_bench`` (median, after warm-up, caches flushed);
on the CPU, where kernels run in Triton's interpreter, a median of wall-clock repeats.
Results go to perf/results/<name>-<device>.csv and .md with the device, versions and date.
"""

from __future__ import annotations

import csv
import datetime
import pathlib
import platform
import statistics
import time
from typing import Callable

import torch
import triton

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}), Triton interpreter"


def device_tag() -> str:
    """A file-name-friendly device name: "nvidia-h100-80gb-hbm3", "cpu-interpreter"."""
    if not torch.cuda.is_available():
        return "cpu-interpreter"
    return "-".join("".join(c if c.isalnum() else " " for c in device_name()).lower().split())


def environment() -> str:
    return (f"{device_name()}; torch {torch.__version__}, triton {triton.__version__}, "
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


def write(name: str, rows: list[dict], notes: str = "") -> pathlib.Path:
    """CSV and Markdown under perf/results/; returns the Markdown path."""
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{name}-{device_tag()}"
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    header = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in row.values()) + " |\n" for row in rows)
    text = f"# {name}\n\n{environment()}\n\n{header}{body}\n{notes}\n"
    stem.with_suffix(".md").write_text(text)
    return stem.with_suffix(".md")
