"""The GPU checks and measurements that CI cannot run, in commands that fit a lent GPU.

A GPU is lent to a session for a limited time: 15 minutes of device time in all, a
machine start included, at most 10 minutes a command, and at most 8 files come back from
``$OUT``. The machine has torch, Triton and the usual test packages but tritonsym is not
installed there: every phase runs from the checkout (``PYTHONPATH`` is the repository
root). This script runs the phases named on its command line, in that order, inside one
time budget:

    python3 scripts/device_session.py --budget 540 first     # smoke, suite, mlp
    python3 scripts/device_session.py --budget 280 second    # linear, softmax (if time is left)
    python3 scripts/device_session.py --budget 540 third     # memcheck, autotune
    python3 scripts/device_session.py --budget 540 fourth    # bind, activation, memory, operators
    python3 scripts/device_session.py --budget 540 fifth     # attention, transformer
    python3 scripts/device_session.py --budget 540 sixth     # decode, rnn
    python3 scripts/device_session.py --budget 420 seventh   # convolution

The first H200 session (2026-12-04) started its machine in about 30 s; ``first`` then ran
500 s, which left about 250 s of the 15 minutes for a second command.

``all`` is every phase in order of value: what is learnt per second, and what the later
phases depend on. A bounded ``smoke`` phase comes first (each path never run on hardware,
once, small, each check in its own process with its own limit: a hang costs 45 s, not a
phase); then the suite (autotuning off: one config per kernel, so 16 workers compile
instead of racing configs on one GPU); then the benchmarks, bfloat16 and TF32 rows first;
then compute-sanitizer, the all-configs autotune file and the rest.

Each phase runs in its own process group and gets the smaller of its own limit and what
is left of the budget; one cut at its limit keeps what it wrote (logs are streamed to
disk, the perf tables are rewritten after every row), and a phase that would get less
than ``MIN_PHASE_S`` is not started. After **every** phase the summary and the results
archive are written again, so a command cut short still returns what finished. The
suite and memcheck share one Triton cache (both compile one config per kernel), the
autotune file and the benchmarks one each, under ``/tmp/tritonsym-device-cache``: tuning
results made under the suite's 16 workers never reach a benchmark, and a second command on
the same machine reuses what the first compiled.

Phase limits are sized from measured cold-compile costs
(``perf/results/compile-cost-sm90-triton-3.9.md``: about 0.6-1.2 s per FullyConnected
config (1.4 s when first measured), 0.1-0.2 s per elementwise variant, 1-1.6 s per
attention variant, compiled for sm_90 from an empty cache) and from the
number of variants each phase compiles (the suite launches about 1,480 distinct kernel
specializations, 325 of them FullyConnected: about 500 s of compiling over 16 workers);
each limit's reasoning is beside it below. ``summary.md`` records every phase's real
seconds: update the limits from it after a run.

What comes back (``--out``, default ``$OUT``):
- ``summary.md``: each phase's status, seconds and its telling lines (pytest's totals,
  compute-sanitizer's error summary, the smoke checks, the tables a benchmark wrote);
  also printed last;
- ``session.log``: every phase's output, one after another;
- ``suite.log``, ``memcheck.log``, ``autotune.log``: the full logs of the test phases;
- ``results.tar.gz``: the ``perf/results`` files this run wrote and the suites' JUnit
  XML (``tar -xzf results.tar.gz`` in the repository root puts the tables in place).

``--rehearse`` runs every phase's quick CPU form (the same scripts; the test phases
collect instead of running, the benchmarks at their CPU sizes): CI runs it from a copy of
the checkout, in an environment with only torch, triton, numpy and pytest, to prove that
every phase imports where tritonsym is not installed.
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
RESULTS = Path(os.environ.get("TRITONSYM_PERF_RESULTS") or ROOT / "perf" / "results")
CACHE = Path(tempfile.gettempdir()) / "tritonsym-device-cache"  # kept between commands on one machine
MIN_PHASE_S = 20   # a phase that would get less than this (or than its own limit, if smaller) is not started
RESERVE_S = 10     # kept back from the budget to pack the results
GRACE_S = 10       # between SIGTERM and SIGKILL of a phase cut at its limit
PYTHON = sys.executable
PRESETS = {"first": ["smoke", "suite", "mlp"], "second": ["linear", "softmax"], "third": ["memcheck", "autotune"],
           "fourth": ["bind", "activation", "memory", "operators"], "fifth": ["attention", "transformer"],
           "sixth": ["decode", "rnn"], "seventh": ["convolution"]}


@dataclasses.dataclass
class Phase:
    name: str
    what: str
    command: list[str]
    limit_s: int
    env: dict = dataclasses.field(default_factory=dict)
    highlights: str = r"wrote |Error|error:|Traceback"  # the lines summary.md quotes
    quoted_log: Path | None = None  # the file those lines come from (default: the phase's output)
    rehearsal: list[str] | None = None  # the quick CPU form of the command (default: the same)


def phases(out: Path, scratch: Path) -> dict[str, Phase]:
    """The known phases, in the order ``all`` runs them (by value)."""
    def bench(name: str, what: str, limit_s: int, *args: str, quick: tuple[str, ...] = ()) -> Phase:
        script = f"perf/bench_{name}.py"
        return Phase(name, what, [PYTHON, script, *args], limit_s, {"TRITON_CACHE_DIR": str(CACHE / "bench")},
                     rehearsal=[PYTHON, script, *quick])

    # pytest-timeout and pytest-xdist are on the GPU machine's image, not necessarily elsewhere.
    timeout = " --timeout=240" if _succeeds("import pytest_timeout") else ""  # one hung test costs one worker
    checks = [str(ROOT / "scripts" / "gpu_checks.sh"), str(out)]
    # The test phases run many binds at once (16 pytest workers): each bind's own parallel
    # compile (ops/precompile.py) would start processes on top of them, so it is off there.
    tests = {"PYTHON": PYTHON, "TRITON_CACHE_DIR": str(CACHE / "tests"), "TRITONSYM_PRECOMPILE": "0"}
    return {p.name: p for p in [
        # 7 checks in fresh processes, autotuning off (one config per kernel: what the
        # checks are about is each path running, not the race, which the autotune phase
        # runs): ~4-8 s of imports each and ~25 kernel variants. The first H200 run, with
        # autotuning on, needed 54 s for the fc check alone (cut at 45 s) and 115 s for
        # four checks (the second command: fc_tma 11 s, softmax 9 s, prebind 25 s, graph_step
        # 29 s, precompile 27 s, all with autotuning). Each check is cut at 60 s.
        Phase("smoke", "the GPU and versions, then each never-run path once, small (scripts/gpu_smoke.py)",
              ["bash", "-c", "nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,"
               "clocks.max.sm --format=csv; command -v compute-sanitizer ncu || true; "
               f"{PYTHON} scripts/gpu_smoke.py --limit 60"],
              140, {"TRITON_CACHE_DIR": str(CACHE / "tests"), "TRITONSYM_AUTOTUNE": "0"},
              highlights=r"^smoke|NVIDIA|compute-sanitizer",
              rehearsal=[PYTHON, "scripts/gpu_smoke.py"]),
        # ~500 s of cold compiling over 16 workers (~35-60 s) plus the tests themselves: the
        # first H200 run took 230 s (pytest's own 220 s), 3,900 tests on 16 workers.
        Phase("suite", "the whole test suite, compiled on the GPU, autotuning off (scripts/gpu_checks.sh suite)",
              [*checks, "suite"], 250, {**tests, "JOBS": "16", "PYTEST_ADDOPTS":
                                        f"--durations=30 --junitxml={scratch / 'junit-suite.xml'}{timeout}"},
              highlights=r"^(FAILED|ERROR) |\d+ (passed|failed)|tests? collected|no tests ran|"
                         r"errors? during collection|slowest|^\d+\.\d+s (call|setup)",
              quoted_log=out / "suite.log"),
        # Autotuned, two networks x the two precisions with targets: ~28 FullyConnected configs
        # per precision (~40 s serially cold, compiled over 16 processes at bind) and a
        # torch.compile(mode="max-autotune") per network and precision. The first H200 run
        # measured its first row (small MLP, bfloat16, all cold) at ~140 s: what is left of
        # the first command. The benchmark now measures every row without torch.compile first
        # and adds compile's column after, row by row: a cut phase keeps whatever rows the
        # cheaper first pass finished. Each row prints its seconds since the start: size
        # this from them.
        bench("mlp", "a whole training step of both MLPs, with and without CUDA graphs, against eager and "
              "torch.compile; host us per launch and per replayed step; peak memory", 140,
              "--precisions", "bfloat16,tf32", quick=("--small-only", "--no-compile")),
        # Three precisions share their binaries across sizes: ~40 s of configs each, then
        # tuning and timing at three sizes (~30 s per precision) and torch.compile per shape.
        bench("linear", "FullyConnected forward (TMA path and pointer kernel) and backward at 1024-8192",
              300, "--sizes", "1024,4096,8192", "--precisions", "bfloat16,tf32,float16", quick=("--no-compile",)),
        # Few kernels (~10 variants per dtype), large memory-bound runs, a torch.compile per shape.
        bench("softmax", "softmax and the softmax-output loss on wide rows (the persistent and split paths)",
              180, "--shapes", "16384x4096,16384x1000,1024x65536,256x262144,32x131072,8x262144,1x1048576",
              "--dtypes", "bfloat16,float32", quick=("--no-compile",)),
        # Every kernel test once under the sanitizer (10-100x slower launches), compiled cold
        # from the suite's cache where the suite ran first.
        Phase("memcheck", "compute-sanitizer memcheck over the kernel tests (scripts/gpu_checks.sh memcheck)",
              [*checks, "memcheck"], 300, tests,
              highlights=r"ERROR SUMMARY|\d+ (passed|failed)|tests? collected|no tests ran|Invalid|^(FAILED|ERROR) ",
              quoted_log=out / "memcheck.log"),
        # Every autotuned kernel raced for real (~60 FullyConnected configs, ~90 s cold) and
        # checked against the config it chose run alone; the TMA forward under its autotuner.
        Phase("autotune", "the autotuned kernels tuned for real on the GPU: tests/test_autotune_restore.py, "
              "tests/test_kernels_fc_tma.py (scripts/gpu_checks.sh autotune)",
              [*checks, "autotune"], 180, {"PYTHON": PYTHON, "TRITON_CACHE_DIR": str(CACHE / "autotune")},
              highlights=r"^(FAILED|ERROR) |\d+ (passed|failed)|tests? collected|no tests ran",
              quoted_log=out / "autotune.log"),
        # Fresh processes, cold without and with the parallel compile at bind, then warm: the
        # small tutorial MLP's ~20 variants plus its autotuning.
        bench("bind", "time to a training-ready seed MLP, cold (serial, then parallel compile) and warm", 150,
              "--small-only", quick=("--small-only",)),
        bench("activation", "each activation's forward and backward against eager and the copy floor", 120),
        bench("memory", "the memory plans, mirror's step-time cost and eager's peak memory on the GPU", 120),
        # Memory-bound kernels at 16384 x 4096 (~20 variants), Adam's update over 67M elements
        # (one variant per dtype) and one autotuned batch_dot per dtype.
        bench("operators", "LayerNorm, Dropout, a broadcast add, the Adam update and batch_dot against eager, "
              "torch.optim.Adam (fused), torch.bmm and the copy floor", 140),
        # 8 forward/backward variants per dtype (~4 kernels, ~2 s each cold), 40 rows of four timings.
        bench("attention", "ScaledDotProductAttention forward and backward against torch's FlashAttention, "
              "bf16/fp16, head_dim 64/128, seq 1K-16K, causal and not", 220, "--dtypes", "bfloat16,float16"),
        # The FullyConnected shapes of the model autotuned cold (~2 min), then torch.compile's
        # max-autotune of the same model (minutes: its column stays blank if the phase is cut).
        bench("transformer", "a whole transformer training step (one CUDA graph) against torch eager, "
              "torch.compile(max-autotune) and a CUDA-graphed torch step; peak memory", 300, "--dtypes", "bfloat16"),
        # The same model's FullyConnected shapes at one row a token (autotuned cold, ~1 min),
        # an attention variant with lengths, the cache write; three rows of three timings,
        # then torch.compile's max-autotune per row (its column stays blank if cut).
        bench("decode", "one decoding step with key and value caches (one CUDA graph) against torch with a "
              "static cache, eager, CUDA-graphed and compiled", 240, "--dtypes", "bfloat16"),
        # 3 autotuned kernels x ~8 configs per dtype and shape (~2 s each cold), 64 rows: the
        # transposed convolution's rows reuse those kernels' binaries, retuned for their shapes;
        # the deformable layer adds 3 kernels of its own (~50 s cold over both dtypes).
        bench("convolution", "a ResNet stage's 3x3 Convolution (forward, both gradients), 3x3/2 max Pooling, "
              "GroupNorm, a 4x4/2 Deconvolution, reflect Pad, nearest UpSampling and a DCN v2 layer against "
              "cuDNN, torch and torchvision", 350),
        # Never run on a GPU: 8 rows, each three binds (FullyConnected autotuned at two
        # shapes, ~30 s cold; the unfused graph's 64-step unroll is the slow bind), a guess
        # to correct from summary.md.
        bench("rnn", "a fused LSTM and GRU stack's training step (one CUDA graph) against torch.nn.LSTM / GRU "
              "(cuDNN) and the same network of unfused cells", 240,
              quick=("--shapes", "3x2x4x3x1", "--modes", "lstm", "--dtypes", "float32")),
    ]}


def _succeeds(code: str) -> bool:
    """Whether ``code`` runs without error in the Python the phases use."""
    return subprocess.run([PYTHON, "-c", code], capture_output=True).returncode == 0


def phase_environment(phase: Phase, allotted_s: float, rehearse: bool) -> dict:
    """The phase's environment: the checkout first on the path (tritonsym is not installed
    on a lent GPU), its own Triton cache, and limits for the shell scripts' own timeouts."""
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    inner_s = str(max(1, int(allotted_s) - 15))  # a script's own limit ends it before the hard cut
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **phase.env, "PYTHONPATH": path,
           "SUITE_TIMEOUT": inner_s, "SANITIZER_TIMEOUT": inner_s}
    if rehearse:
        env["REHEARSE"] = "1"
        env.pop("TRITON_CACHE_DIR", None)
    return env


@dataclasses.dataclass
class Outcome:
    phase: Phase
    status: str
    seconds: float
    lines: list[str]


def run_phase(phase: Phase, allotted_s: float, log, rehearse: bool = False) -> Outcome:
    """Run one phase with its output appended to ``log``; cut it after ``allotted_s``."""
    command = phase.rehearsal if rehearse and phase.rehearsal else phase.command
    log.write(f"\n===== {phase.name}: {phase.what} (up to {allotted_s:.0f} s)\n$ {' '.join(command)}\n".encode())
    log.flush()
    start_offset, started = log.tell(), time.monotonic()
    if phase.quoted_log is not None and phase.quoted_log.exists():
        phase.quoted_log.unlink()  # an earlier command's log must not be quoted as this one's
    proc = subprocess.Popen(command, cwd=ROOT, env=phase_environment(phase, allotted_s, rehearse), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
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
    in the repository root) and the scratch files, as one archive (written beside and
    renamed, so the archive on disk is always whole)."""
    names = []
    partial = archive.with_name(archive.name + ".part")
    with tarfile.open(partial, "w:gz") as tar:
        for path in sorted(RESULTS.glob("*")) if RESULTS.is_dir() else []:
            if path.is_file() and path.stat().st_mtime >= since:
                tar.add(path, arcname=f"perf/results/{path.name}")
                names.append(f"perf/results/{path.name}")
        for path in sorted(scratch.glob("*")):
            if path.is_file():
                tar.add(path, arcname=path.name)
                names.append(path.name)
    partial.replace(archive)
    return names


def summary(outcomes: list[Outcome], waiting: list[str], skipped: list[str], packed: list[str], budget_s: float,
            total_s: float) -> str:
    rows = "".join(f"| {o.phase.name} | {o.status} | {o.seconds:.0f} |\n" for o in outcomes)
    rows += "".join(f"| {name} | not run: the budget was spent |  |\n" for name in skipped)
    rows += "".join(f"| {name} | not run yet (the command was cut before it) |  |\n" for name in waiting)
    details = "".join(f"\n## {o.phase.name}: {o.phase.what}\n\n" + "".join(f"    {line}\n" for line in o.lines)
                      for o in outcomes if o.lines)
    files = "".join(f"- {name}\n" for name in packed) or "- (none)\n"
    return (f"# device session\n\n{total_s:.0f} s of a {budget_s:.0f} s budget\n\n"
            f"| phase | status | s |\n|---|---|---|\n{rows}{details}\n## results.tar.gz\n\n{files}")


def session(selected: list[Phase], out: Path, budget_s: float, scratch: Path, rehearse: bool = False) -> str:
    """Run ``selected`` in order within ``budget_s``; after each phase write the summary and
    the archive into ``out``; return the final summary."""
    out.mkdir(parents=True, exist_ok=True)
    started_wall, started = time.time(), time.monotonic()
    outcomes, skipped = [], []

    def write_back(waiting: list[str]) -> str:
        packed = pack(out / "results.tar.gz", started_wall - 1, scratch)
        text = summary(outcomes, waiting, skipped, packed, budget_s, time.monotonic() - started)
        partial = out / "summary.md.part"
        partial.write_text(text)
        partial.replace(out / "summary.md")
        return text

    text = write_back([p.name for p in selected])
    with open(out / "session.log", "wb") as log:
        for i, phase in enumerate(selected):
            left = budget_s - RESERVE_S - (time.monotonic() - started)
            allotted = min(phase.limit_s, left)
            if allotted < min(MIN_PHASE_S, phase.limit_s):
                skipped.append(phase.name)
            else:
                outcomes.append(run_phase(phase, allotted, log, rehearse))
            text = write_back([p.name for p in selected[i + 1:]])
    return text


def main() -> None:
    known_names = list(phases(Path("."), Path(".")))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=f"phases: {', '.join(known_names)}; presets: " +
                                     "; ".join(f"{k} = {' '.join(v)}" for k, v in PRESETS.items()) + "; all")
    parser.add_argument("phases", nargs="*", default=["first"])
    parser.add_argument("--budget", type=float, default=540, help="seconds for all phases (default 540)")
    parser.add_argument("--out", default=os.environ.get("OUT") or "device-out")
    parser.add_argument("--allow-cpu", action="store_true", help="run without CUDA (to try the script itself)")
    parser.add_argument("--rehearse", action="store_true",
                        help="each phase's quick CPU form: test phases collect, benchmarks run at CPU sizes")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    names = []
    for name in args.phases:
        names += known_names if name == "all" else PRESETS.get(name, [name])
    unknown = [n for n in names if n not in known_names]
    if unknown:
        parser.error(f"unknown phase(s) {unknown}; known: {', '.join(known_names)}; presets: "
                     f"{', '.join(PRESETS)}, all")
    if not (args.allow_cpu or args.rehearse) and not _succeeds("import sys, torch; sys.exit(not "
                                                                "torch.cuda.is_available())"):
        sys.exit("device_session: torch sees no CUDA device; this script is for a lent GPU "
                 "(--rehearse runs each phase's quick CPU form; --allow-cpu runs the real ones anyway)")
    with tempfile.TemporaryDirectory() as tmp:
        known = phases(out, Path(tmp))
        print(session([known[n] for n in names], out, args.budget, Path(tmp), args.rehearse))


if __name__ == "__main__":
    main()
