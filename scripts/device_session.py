"""The GPU checks and measurements that CI cannot run, in one call that fits a lent GPU.

A GPU is lent to a session for a limited time: 15 minutes of device time in all, a
machine start included, at most 10 minutes a command, and at most 8 files come back from
``$OUT``. This script runs the phases named on its command line, in that order, inside
one time budget, and leaves a handful of files in ``$OUT``:

    python3 scripts/device_session.py --budget 540 env suite memcheck     # the GPU test run
    python3 scripts/device_session.py --budget 540 env mlp linear softmax  # the owed timings

Each phase runs in its own process group and gets the smaller of its own limit and what
is left of the budget; one cut at its limit keeps what it wrote (the logs are streamed to
disk, the perf tables are rewritten after every row), and a phase that would get less
than ``MIN_PHASE_S`` is not started. The phases' limits are guesses until a run records
their times (``summary.md``).

What comes back (``--out``, default ``$OUT``):
- ``summary.md``: each phase's status, seconds and its telling lines (pytest's totals,
  compute-sanitizer's error summary, the tables a benchmark wrote); also printed last;
- ``session.log``: every phase's output, one after another;
- ``suite.log``, ``memcheck.log``: the full logs of ``scripts/gpu_checks.sh``;
- ``results.tar.gz``: the ``perf/results`` files this run wrote and the suite's JUnit
  XML (``tar -xzf results.tar.gz`` in the repository root puts the tables in place).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "perf" / "results"
MIN_PHASE_S = 20   # a phase that would get less than this (or than its own limit, if smaller) is not started
RESERVE_S = 10     # kept back from the budget to pack the results
GRACE_S = 10       # between SIGTERM and SIGKILL of a phase cut at its limit
PYTHON = sys.executable


@dataclasses.dataclass
class Phase:
    name: str
    what: str
    command: list[str]
    limit_s: int
    env: dict = dataclasses.field(default_factory=dict)
    highlights: str = r"wrote |Error|error:|Traceback"  # the lines summary.md quotes
    quoted_log: Path | None = None  # the file those lines come from (default: the phase's output)


def phases(out: Path, scratch: Path) -> dict[str, Phase]:
    """The known phases, in the order ``all`` runs them (the GPU test run first: what the
    reliability issue owes; then the timings the performance issue owes)."""
    def bench(name: str, what: str, limit_s: int, *args: str) -> Phase:
        return Phase(name, what, [PYTHON, f"perf/bench_{name}.py", *args], limit_s)

    # pytest-timeout and pytest-xdist are on the GPU machine's image, not necessarily elsewhere.
    addopts = f"--durations=40 --junitxml={scratch / 'junit-suite.xml'}"
    if _succeeds("import pytest_timeout"):
        addopts += " --timeout=240"  # one hung test costs one worker, not the whole budget
    checks = [str(ROOT / "scripts" / "gpu_checks.sh"), str(out)]
    python = {"PYTHON": PYTHON}
    return {p.name: p for p in [
        Phase("env", "the GPU, its clocks and memory, the versions, the tools the other phases use",
              ["bash", "-c", "nvidia-smi; nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,"
               "clocks.sm,clocks.max.sm --format=csv; command -v compute-sanitizer ncu || true; " + PYTHON +
               " -c 'import torch, triton, numpy; print(\"torch\", torch.__version__, \"triton\", "
               "triton.__version__, \"numpy\", numpy.__version__, \"cuda\", torch.cuda.is_available())'"],
              60, highlights=r"NVIDIA|torch |compute-sanitizer"),
        Phase("suite", "the whole test suite with compiled kernels on the GPU (scripts/gpu_checks.sh suite)",
              [*checks, "suite"], 330, {**python, "JOBS": "16", "PYTEST_ADDOPTS": addopts},
              highlights=r"^(FAILED|ERROR) |\d+ (passed|failed)|slowest|^\d+\.\d+s (call|setup)",
              quoted_log=out / "suite.log"),
        Phase("memcheck", "compute-sanitizer memcheck over the kernel tests (scripts/gpu_checks.sh memcheck)",
              [*checks, "memcheck"], 300, python,
              highlights=r"ERROR SUMMARY|\d+ (passed|failed)|Invalid|^(FAILED|ERROR) ",
              quoted_log=out / "memcheck.log"),
        bench("mlp", "a whole training step of both MLPs, with and without CUDA graphs, against eager and "
              "torch.compile; host us per launch and per replayed step; peak memory", 240),
        bench("linear", "FullyConnected forward (TMA path and pointer kernel) and backward at 1024-8192",
              300, "--sizes", "1024,4096,8192", "--precisions", "bfloat16,float16,tf32"),
        bench("softmax", "softmax and the softmax-output loss on wide rows (the persistent and split paths)",
              200, "--shapes", "16384x4096,1024x65536,256x262144,32x131072,8x262144,1x1048576"),
        bench("bind", "time to a training-ready seed MLP, cold (compile + autotune) and warm", 180,
              "--small-only"),
        bench("activation", "each activation's forward and backward against eager and the copy floor", 150),
        bench("memory", "the memory plans, mirror's step-time cost and eager's peak memory on the GPU", 120),
    ]}


def _succeeds(code: str) -> bool:
    """Whether ``code`` runs without error in the Python the phases use."""
    return subprocess.run([PYTHON, "-c", code], capture_output=True).returncode == 0


@dataclasses.dataclass
class Outcome:
    phase: Phase
    status: str
    seconds: float
    lines: list[str]


def run_phase(phase: Phase, allotted_s: float, log) -> Outcome:
    """Run one phase with its output appended to ``log``; cut it after ``allotted_s``."""
    log.write(f"\n===== {phase.name}: {phase.what} (up to {allotted_s:.0f} s)\n$ {' '.join(phase.command)}\n"
              .encode())
    log.flush()
    start_offset, started = log.tell(), time.monotonic()
    # A shell script given its own limit (gpu_checks.sh's *_TIMEOUT) ends before the hard cut.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **phase.env,
           "SUITE_TIMEOUT": str(max(1, int(allotted_s) - 15)), "SANITIZER_TIMEOUT": str(max(1, int(allotted_s) - 15))}
    proc = subprocess.Popen(phase.command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        rc = proc.wait(timeout=allotted_s)
        status = "ok" if rc == 0 else f"failed (exit {rc})"
    except subprocess.TimeoutExpired:
        _stop(proc)
        status = f"cut at its limit of {allotted_s:.0f} s"
    seconds = time.monotonic() - started
    log.flush()
    if phase.quoted_log is None:
        with open(log.name, "rb") as f:
            f.seek(start_offset)
            output = f.read().decode(errors="replace")
    else:
        output = phase.quoted_log.read_text(errors="replace") if phase.quoted_log.exists() else ""
    pattern = re.compile(phase.highlights)
    lines = [line.rstrip() for line in output.splitlines() if pattern.search(line)]
    return Outcome(phase, status, seconds, lines[-60:])


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the phase's whole process group (pytest workers, a benchmark's children),
    then SIGKILL to what is left after GRACE_S."""
    for sig, wait_s in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def pack(archive: Path, since: float, scratch: Path) -> list[str]:
    """The perf/results files written since ``since`` (as ``perf/results/<name>``, to unpack
    in the repository root) and the scratch files, as one archive."""
    names = []
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(RESULTS.glob("*")) if RESULTS.is_dir() else []:
            if path.is_file() and path.stat().st_mtime >= since:
                tar.add(path, arcname=f"perf/results/{path.name}")
                names.append(f"perf/results/{path.name}")
        for path in sorted(scratch.glob("*")):
            tar.add(path, arcname=path.name)
            names.append(path.name)
    return names


def summary(outcomes: list[Outcome], skipped: list[str], packed: list[str], budget_s: float, total_s: float) -> str:
    rows = "".join(f"| {o.phase.name} | {o.status} | {o.seconds:.0f} |\n" for o in outcomes)
    rows += "".join(f"| {name} | not run: the budget was spent |  |\n" for name in skipped)
    details = "".join(f"\n## {o.phase.name}: {o.phase.what}\n\n" + "".join(f"    {line}\n" for line in o.lines)
                      for o in outcomes if o.lines)
    files = "".join(f"- {name}\n" for name in packed) or "- (none)\n"
    return (f"# device session\n\n{total_s:.0f} s of a {budget_s:.0f} s budget\n\n"
            f"| phase | status | s |\n|---|---|---|\n{rows}{details}\n## results.tar.gz\n\n{files}")


def session(selected: list[Phase], out: Path, budget_s: float, scratch: Path) -> str:
    """Run ``selected`` in order within ``budget_s``; write the files in ``out``; return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    started_wall, started = time.time(), time.monotonic()
    outcomes, skipped = [], []
    with open(out / "session.log", "wb") as log:
        for phase in selected:
            left = budget_s - RESERVE_S - (time.monotonic() - started)
            allotted = min(phase.limit_s, left)
            if allotted < min(MIN_PHASE_S, phase.limit_s):
                skipped.append(phase.name)
                continue
            outcomes.append(run_phase(phase, allotted, log))
    packed = pack(out / "results.tar.gz", started_wall - 1, scratch)
    text = summary(outcomes, skipped, packed, budget_s, time.monotonic() - started)
    (out / "summary.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="phases: " + ", ".join(phases(Path("."), Path("."))) + ", all")
    parser.add_argument("phases", nargs="*", default=["env", "suite", "memcheck"])
    parser.add_argument("--budget", type=float, default=540, help="seconds for all phases (default 540)")
    parser.add_argument("--out", default=os.environ.get("OUT") or "device-out")
    parser.add_argument("--allow-cpu", action="store_true", help="run without CUDA (to try the script itself)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        known = phases(out, Path(tmp))
        names = list(known) if args.phases == ["all"] else args.phases
        unknown = [n for n in names if n not in known]
        if unknown:
            parser.error(f"unknown phase(s) {unknown}; known: {', '.join(known)}, all")
        if not args.allow_cpu and not _succeeds("import sys, torch; sys.exit(not torch.cuda.is_available())"):
            sys.exit("device_session: torch sees no CUDA device; this script is for a lent GPU "
                     "(--allow-cpu runs it anyway)")
        print(session([known[n] for n in names], out, args.budget, Path(tmp)))


if __name__ == "__main__":
    main()
