"""Every kernel variant compiles for Hopper (sm_90) with Triton's real compiler, on this
CPU-only machine (see compile_for_gpu.py); the interpreter alone would not catch
compile-time errors of the GPU path."""

import pathlib
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_every_kernel_compiles_for_hopper():
    script = pathlib.Path(__file__).with_name("compile_for_gpu.py")
    result = subprocess.run([sys.executable, str(script), "--arch", "90"], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "kernel variants for sm_90" in result.stdout
