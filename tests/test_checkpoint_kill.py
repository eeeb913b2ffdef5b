"""A process killed while it writes a checkpoint never leaves a corrupt file under the
checkpoint's name: the old checkpoint or the whole new one is there, nothing between."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import tritonsym as ts

CHILD = textwrap.dedent("""
    import itertools, os, sys, time
    import torch
    import tritonsym as ts
    from tritonsym import files

    prefix, mode, marker = sys.argv[1:4]
    net = ts.sym.FullyConnected(ts.sym.Variable("data"), name="fc", num_hidden=1024)

    def params(value):  # 2 x 4 MiB, every element equal: a mix of two saves would show
        return {"fc_weight": torch.full((1024, 1024), float(value)), "fc_bias": torch.full((1024,), float(value))}

    def signal_and_hang():
        open(marker, "w").close()
        time.sleep(120)

    if mode == "mid-write":  # the data is half on disk when the process dies
        real_fdopen = os.fdopen
        class HalfWriter:
            def __init__(self, f): self.f = f
            def __enter__(self): return self
            def __exit__(self, *exc): self.f.close()
            def write(self, data):
                self.f.write(data[: len(data) // 2]); self.f.flush(); signal_and_hang()
        files.os.fdopen = lambda fd, mode: HalfWriter(real_fdopen(fd, mode))
    elif mode == "before-rename":  # the new file is complete but not yet renamed
        files.os.replace = lambda src, dst: signal_and_hang()
    if mode == "loop":  # save new versions as fast as possible until killed
        for k in itertools.count(1):
            ts.model.save_checkpoint(prefix, 1, net, params(k), {})
            if k == 1:
                open(marker, "w").close()
    else:
        ts.model.save_checkpoint(prefix, 1, net, params(7), {})
""")


def _run_and_kill(tmp_path, prefix, mode, delay=0.0):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    marker = tmp_path / f"marker-{mode}"
    if marker.exists():
        marker.unlink()
    child = subprocess.Popen([sys.executable, str(script), prefix, mode, str(marker)])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None, f"the child exited early with {child.returncode}"
            assert time.monotonic() < deadline, "the child never reached the point to kill it at"
            time.sleep(0.01)
        time.sleep(delay)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()


def _values(prefix):
    """The single value every element of the checkpoint holds (it must load completely)."""
    sym, args, _ = ts.model.load_checkpoint(prefix, 1)
    assert sym.list_arguments() == ["data", "fc_weight", "fc_bias"]
    values = {t.unique().tolist().__len__() for t in args.values()}
    assert values == {1}, "a tensor holds a mix of two saves"
    (value,) = {t.flatten()[0].item() for t in args.values()}
    return value


@pytest.mark.parametrize("mode", ["mid-write", "before-rename"])
def test_killed_during_a_save_keeps_the_previous_checkpoint(tmp_path, mode):
    prefix = str(tmp_path / "ckpt")
    net = ts.sym.FullyConnected(ts.sym.Variable("data"), name="fc", num_hidden=1024)
    ts.model.save_checkpoint(prefix, 1, net, {"fc_weight": torch.full((1024, 1024), -1.0),
                                              "fc_bias": torch.full((1024,), -1.0)}, {})
    _run_and_kill(tmp_path, prefix, mode)
    assert _values(prefix) == -1.0  # the old checkpoint, whole
    leftovers = [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]
    assert leftovers, "the kill should have left the unfinished temporary file behind"


def test_killed_at_random_moments_of_repeated_saves(tmp_path):
    prefix = str(tmp_path / "ckpt")
    seen = set()
    for delay in (0.0, 0.037, 0.11, 0.23):
        _run_and_kill(tmp_path, prefix, "loop", delay)
        seen.add(_values(prefix))  # always some whole save
    assert all(v >= 1 for v in seen)
