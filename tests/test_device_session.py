"""scripts/device_session.py, the one call on a lent GPU: phases run in order inside the
budget, one cut at its limit loses its process group but keeps its output, what comes back
fits the device tool's limits (at most 8 files, plain names), and the real phases call
scripts and options that exist."""

import os
import pathlib
import re
import subprocess
import sys
import tarfile
import time

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


def test_the_real_phases_call_scripts_and_options_that_exist(tmp_path):
    phases = ds.phases(tmp_path, tmp_path)
    assert list(phases)[:3] == ["env", "suite", "memcheck"]
    for phase in phases.values():
        assert phase.limit_s <= 540 - ds.RESERVE_S, phase.name  # each fits one command of the device tool
        script = next((a for a in phase.command if a.endswith((".py", ".sh")) and "/" in a), None)
        if script is None:
            continue
        assert (ROOT / script).exists(), script
        if script.endswith("gpu_checks.sh"):
            assert phase.command[-1] in ("suite", "memcheck")
            continue
        usage = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True,
                               cwd=ROOT, timeout=120)
        assert usage.returncode == 0, usage.stderr
        for option in (a for a in phase.command if a.startswith("--")):
            assert option in usage.stdout, (phase.name, option)


def test_without_cuda_it_refuses_unless_told(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "device_session.py"), "--out", str(tmp_path), "env"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "torch sees no CUDA device" in run.stderr
    assert not list(tmp_path.iterdir())
    unknown = subprocess.run([sys.executable, str(ROOT / "scripts" / "device_session.py"), "nope"],
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "unknown phase(s) ['nope']" in unknown.stderr
