"""A program may import triton before tritonsym (kernel benchmarkers do): interpreted
kernels must still work, including ones using Triton's own helpers (tl.sum, tl.cdiv)."""

import subprocess
import sys

import pytest
import torch

PROGRAM = """
import triton, triton.language, triton.testing
import torch
import tritonsym as ts
x = torch.randn(5, 7)
y = ts.ops.fully_connected_forward(x, torch.randn(3, 7), act="relu")
p = ts.ops.softmax_forward(torch.randn(4, 9))
assert torch.allclose(p.sum(1), torch.ones(4)), p
net = ts.sym.SoftmaxOutput(ts.sym.FullyConnected(ts.sym.Variable("data"), num_hidden=3), name="out")
exe = net.simple_bind(ts.cpu(), data=(5, 7))
exe.forward(is_train=True, data=x, out_label=torch.tensor([0, 1, 2, 0, 1]), **{
    n: torch.randn(a.shape) for n, a in exe.arg_dict.items() if n not in ("data", "out_label")})
exe.backward()
print("ok", ts.ops.INTERPRET)
"""


def test_triton_imported_first():
    if torch.cuda.is_available():
        pytest.skip("compiled mode: there are no interpreter helpers to re-prepare")
    result = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok True"
