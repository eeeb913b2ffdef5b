"""scripts/device_session.py, the commands on a lent GPU: phases run in order inside the
budget, one cut at its limit loses its process group but keeps its output, the summary and
the archive are written after every phase (a command killed mid-phase still returns what
finished), what comes back fits the device tool's limits (at most 8 files, plain names),
the real phases call scripts and options that exist, and every phase's quick CPU form runs
from a copy of the checkout in an environment with only torch, triton, numpy and pytest."""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import device_session as ds  # noqa: E402


def _python(code: str, name: str, limit_s: int = 30, **kw) -> ds.Phase:
    return ds.Phase(name, f"phase {name}", [sys.executable, "-c", code], limit_s, **kw)


def _running(pid: int) -> bool:
    """Whether the process is alive: a killed one whose parent is gone can stay a zombie
    (state Z) until some init reaps it, and signal 0 still reaches a zombie."""
    for _ in range(50):
        try:
            state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.1)
    return True



@pytest.mark.slow  # 5 s of waiting for a limit
def test_a_smoke_check_cut_at_its_limit_takes_its_child_processes_with_it(tmp_path):
    """A check's compiling workers would outlive the check if only it were killed, and take
    the CPU from the phases after the smoke (the first H200 run cut two checks)."""
    import gpu_smoke

    pid_file = tmp_path / "child.pid"
    hangs = (f"import subprocess, sys, pathlib, time; p = subprocess.Popen([sys.executable, '-c', 'import time; "
             f"time.sleep(60)']); pathlib.Path({str(pid_file)!r}).write_text(str(p.pid)); time.sleep(60)")
    started = time.monotonic()
    assert gpu_smoke.run_limited([sys.executable, "-c", hangs], 5, dict(os.environ)) is None
    assert time.monotonic() - started < 15
    assert not _running(int(pid_file.read_text()))
    assert gpu_smoke.run_limited([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); "
                                  "sys.exit(2)"], 30, dict(os.environ)) == (2, "out\nerr\n")

def test_phases_run_in_order_within_the_budget_and_come_back_as_few_plain_files(tmp_path, monkeypatch):
    results, out, scratch = tmp_path / "results", tmp_path / "out", tmp_path / "scratch"
    results.mkdir()
    scratch.mkdir()
    (results / "old-table.md").write_text("from an earlier run")
    os.utime(results / "old-table.md", (time.time() - 3600,) * 2)
    (scratch / "junit-suite.xml").write_text("<testsuites/>")
    monkeypatch.setattr(ds, "RESULTS", results)
    monkeypatch.setattr(ds, "GRACE_S", 1)
    pid_file = tmp_path / "child.pid"
    table = results / "new-table.md"
    writes_a_table = f"import pathlib; pathlib.Path({str(table)!r}).write_text('rows'); print('wrote new-table')"
    # The cut phase starts a grandchild that would outlive it if only the phase itself were killed.
    hangs = (f"import subprocess, sys, pathlib, time; p = subprocess.Popen([sys.executable, '-c', 'import time; "
             f"time.sleep(60)']); pathlib.Path({str(pid_file)!r}).write_text(str(p.pid)); print('started', "
             f"flush=True); time.sleep(60)")
    phases = [_python(writes_a_table, "table"),
              _python("import sys; print('Traceback: something broke'); sys.exit(3)", "broken"),
              _python(hangs, "hangs", limit_s=3, highlights="started"),
              _python("print('never')", "late", limit_s=30)]
    started = time.monotonic()
    text = ds.session(phases, out, budget_s=ds.RESERVE_S + ds.MIN_PHASE_S + 2, scratch=scratch)
    assert time.monotonic() - started < 20
    statuses = dict(re.findall(r"^\| (\w+) \| ([^|]+?) \|", text, re.M))
    assert statuses == {"phase": "status", "table": "ok", "broken": "failed (exit 3)",
                        "hangs": "cut at its limit of 3 s", "late": "not run: the budget was spent"}
    assert "    wrote new-table" in text and "    Traceback: something broke" in text and "    started" in text
    assert not _running(int(pid_file.read_text()))
    files = sorted(p.name for p in out.iterdir())
    assert files == ["results.tar.gz", "session.log", "summary.md"]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", name) for name in files) and len(files) <= 8
    assert (out / "summary.md").read_text() == text
    log = (out / "session.log").read_text()
    assert log.index("===== table") < log.index("wrote new-table") < log.index("===== broken") < log.index("started")
    assert "never" not in log
    with tarfile.open(out / "results.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["junit-suite.xml", "perf/results/new-table.md"]  # not the old table


def test_a_phase_quotes_the_log_it_names(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "RESULTS", tmp_path / "none")
    log = tmp_path / "out" / "suite.log"
    code = f"import pathlib; pathlib.Path({str(log)!r}).write_text('noise\\nFAILED tests/x.py::t\\n3 passed, 1 failed')"
    text = ds.session([_python(code, "suite", highlights=r"FAILED|passed", quoted_log=log)], tmp_path / "out", 100,
                      tmp_path)
    assert "    FAILED tests/x.py::t\n    3 passed, 1 failed\n" in text and "noise" not in text


def test_the_summary_and_archive_are_on_disk_after_every_phase(tmp_path, monkeypatch):
    """A command cut by the device tool's limit returns what is in $OUT at that moment: the
    second phase reads the files the first one left and then the whole session is killed."""
    results, out = tmp_path / "results", tmp_path / "out"
    results.mkdir()
    code = f"""
import pathlib, sys, time
sys.path.insert(0, {str(ROOT / "scripts")!r})
import device_session as ds
ds.RESULTS = pathlib.Path({str(results)!r})
table = "import pathlib; pathlib.Path({str(results / 'first.md')!r}).write_text('rows')"
hang = "import time; print('second started', flush=True); time.sleep(60)"
phases = [ds.Phase("first", "writes a table", [sys.executable, "-c", table], 30),
          ds.Phase("second", "hangs", [sys.executable, "-c", hang], 30),
          ds.Phase("third", "never starts", [sys.executable, "-c", "pass"], 30)]
ds.session(phases, pathlib.Path({str(out)!r}), 100, pathlib.Path({str(tmp_path)!r}) / "scratch")
"""
    (tmp_path / "scratch").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.monotonic() + 60
    while "second started" not in ((out / "session.log").read_text() if (out / "session.log").exists() else ""):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    os.killpg(proc.pid, 9)  # the device tool's hard cut: nothing gets to clean up
    proc.wait()
    text = (out / "summary.md").read_text()
    assert "| first | ok |" in text
    assert "| second | not run yet (the command was cut before it) |" in text
    assert "| third | not run yet" in text
    with tarfile.open(out / "results.tar.gz") as tar:
        assert tar.getnames() == ["perf/results/first.md"]
    assert not list(out.glob("*.part"))


def test_presets_name_phases_that_exist_and_each_fits_one_command(tmp_path):
    known = ds.phases(tmp_path, tmp_path)
    assert list(known)[0] == "smoke"  # bounded, and first: a hang there costs 45 s, not a phase
    assert sorted(n for preset in ds.PRESETS.values() for n in preset) == sorted(known)
    for preset in ds.PRESETS.values():
        assert sum(known[n].limit_s for n in preset) <= 540 - ds.RESERVE_S, preset
    assert known["suite"].env.get("TRITON_CACHE_DIR") != known["mlp"].env["TRITON_CACHE_DIR"]
    assert known["autotune"].env["TRITON_CACHE_DIR"] not in (known["suite"].env["TRITON_CACHE_DIR"],
                                                             known["mlp"].env["TRITON_CACHE_DIR"])
    for name in ("mlp", "linear", "softmax"):  # the rows worth most come first
        precisions = known[name].command[known[name].command.index("--precisions" if name != "softmax"
                                                                   else "--dtypes") + 1]
        assert precisions.startswith("bfloat16"), name
    env = ds.phase_environment(known["mlp"], 100, rehearse=False)
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT)  # tritonsym is not installed on a lent GPU
    assert env["TRITON_CACHE_DIR"] == known["mlp"].env["TRITON_CACHE_DIR"]


def test_the_suite_runs_untuned_and_the_autotune_file_tuned():
    script = (ROOT / "scripts" / "gpu_checks.sh").read_text()
    suite = script[script.index('echo "== suite'):script.index('echo "== the autotuned')]
    autotune = script[script.index('echo "== the autotuned'):script.index('echo "== compute-sanitizer')]
    assert "TRITONSYM_AUTOTUNE=${TRITONSYM_AUTOTUNE:-0}" in suite and "TRITONSYM_AUTOTUNE=1" in autotune
    for path in re.search(r"autotune_tests=\$\{AUTOTUNE_TESTS:-([^}]*)\}", script).group(1).split():
        assert (ROOT / path).exists(), path


@pytest.mark.slow  # every script's --help imports torch and tritonsym: 18 s
def test_the_real_phases_call_scripts_and_options_that_exist(tmp_path):
    phases = ds.phases(tmp_path, tmp_path)
    for phase in phases.values():
        assert phase.limit_s <= 540 - ds.RESERVE_S, phase.name  # each fits one command of the device tool
        for command in (phase.command, phase.rehearsal or []):
            words = [w for part in command for w in part.split()]
            script = next((a for a in words if a.endswith((".py", ".sh")) and "/" in a), None)
            if script is None:
                continue
            assert (ROOT / script).exists(), script
            if script.endswith("gpu_checks.sh"):
                assert command[-1] in ("suite", "memcheck", "autotune")
                continue
            usage = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True,
                                   cwd=ROOT, timeout=120)
            assert usage.returncode == 0, usage.stderr
            for option in (a for a in words[words.index(script):] if a.startswith("--")):
                assert option in usage.stdout, (phase.name, option)


# What a lent GPU's image is sure to have that tritonsym needs; everything else tritonsym or
# its tests import (safetensors, hypothesis, tqdm, pytest-xdist, pytest-timeout, matplotlib)
# must be optional there.
BARE = ("torch", "triton", "numpy", "pytest")


def _bare_environment(root: pathlib.Path) -> pathlib.Path:
    """A venv holding only BARE and what they require, linked from this interpreter's
    site-packages; its python."""
    from importlib import metadata

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    (site,) = root.glob("lib/python*/site-packages")
    wanted, seen = list(BARE), set()
    while wanted:
        name = re.split(r"[ ;<>=!~\[]", wanted.pop())[0].lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        wanted += [r for r in dist.requires or [] if "extra ==" not in r]
        tops = {pathlib.PurePath(str(f)).parts[0] for f in dist.files or []}
        for top in tops:
            source = pathlib.Path(dist.locate_file(top))
            if top == ".." or not source.exists() or (site / top).exists():
                continue
            (site / top).symlink_to(source)
    return root / "bin" / "python"


@pytest.mark.slow
def test_every_phase_rehearses_on_the_cpu_from_a_bare_checkout(tmp_path):
    """What a lent GPU gets: a copy of the working tree, tritonsym not installed, none of the
    optional packages. Each phase's quick CPU form must run (test phases collect the suite
    in tritonsym's own conftest, benchmarks run at CPU sizes) and nothing may fail to import."""
    python = _bare_environment(tmp_path / "venv")
    probe = subprocess.run([str(python), "-c", "import tritonsym"], capture_output=True, text=True, timeout=60,
                           cwd=tmp_path)
    assert "No module named 'tritonsym'" in probe.stderr  # not installed in the bare environment
    for absent in ("safetensors", "hypothesis", "tqdm", "xdist", "matplotlib"):
        assert subprocess.run([str(python), "-c", f"import {absent}"], capture_output=True).returncode, absent
    checkout = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TRITONSYM_"))}
    env["TRITONSYM_PERF_RESULTS"] = str(tmp_path / "results")
    run = subprocess.run([str(python), "scripts/device_session.py", "--rehearse", "--budget", "900", "--out", str(out),
                          "all"], cwd=checkout, env=env, capture_output=True, text=True, timeout=900)
    log = (out / "session.log").read_text()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    statuses = dict(re.findall(r"^\| (\w+) \| ([^|]+?) \|", run.stdout, re.M))
    assert {k: v for k, v in statuses.items() if k != "phase"} == {name: "ok" for name in ds.phases(out, out)}, \
        log[-4000:]
    for failure in ("ModuleNotFoundError", "ImportError", "Traceback", "error during collection",
                    "errors during collection"):
        assert failure not in log, log[log.index(failure) - 2000:log.index(failure) + 500]
    assert re.search(r"\d+ tests collected", (out / "suite.log").read_text())
    assert "smoke: 7 of 7 checks passed or skipped" in log
    with tarfile.open(out / "results.tar.gz") as tar:  # every benchmark wrote its table
        tables = {pathlib.PurePath(n).name.split("-")[0] for n in tar.getnames() if n.endswith(".md")}
    assert {"mlp", "linear", "softmax", "bind", "activation", "memory", "operators", "attention",
            "transformer", "decode", "rnn"} <= tables, tables


@pytest.mark.cpu_only  # a machine without CUDA
def test_without_cuda_it_refuses_unless_told(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "device_session.py"), "--out", str(tmp_path), "smoke"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "torch sees no CUDA device" in run.stderr
    assert not list(tmp_path.iterdir())
    unknown = subprocess.run([sys.executable, str(ROOT / "scripts" / "device_session.py"), "first", "nope"],
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "unknown phase(s) ['nope']" in unknown.stderr
