"""The first minute on a lent GPU: each path that has never run on hardware, once, small.

The TMA forward, pre-bound launches and CUDA-graph capture were built without a GPU. A
hang or a crash in one of them would burn a whole phase of a device session, so this runs
each check in a process of its own with a short limit, prints one line per check as soon
as it ends (``ok``, ``FAILED``, ``CUT`` or ``skipped``), and exits 1 if any failed. Every
result is compared with a float64 reference; shapes are small, so a cold Triton cache
compiles a handful of kernels per check (about a second each for sm_90; see
``perf/results/compile-cost-sm90.md``).

    python3 scripts/gpu_smoke.py [--limit 60] [CHECK ...]       # default: every check

Without CUDA the checks run in Triton's interpreter on the CPU (the TMA forward forced on
with ``TRITONSYM_TMA=1``) and the graph check is skipped: that is how CI rehearses it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _device():
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _relative_error(got, want) -> float:
    got, want = got.double().cpu(), want.double().cpu()
    if not bool(got.isfinite().all()):
        return float("inf")
    return ((got - want).norm() / want.norm().clamp_min(1e-300)).item()


def _close(what: str, got, want, tol: float) -> str:
    error = _relative_error(got, want)
    if not error <= tol:
        raise AssertionError(f"{what}: relative error {error:.2e} above {tol:.0e}")
    return f"{what} {error:.1e}"


def check_import() -> str:
    import torch
    import triton

    import tritonsym as ts

    where = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    capability = torch.cuda.get_device_capability(0) if torch.cuda.is_available() else None
    return (f"tritonsym from {Path(ts.__file__).parent}, kernels {'interpreted' if ts.ops.INTERPRET else 'compiled'}; "
            f"{where} {capability or ''}; torch {torch.__version__}, triton {triton.__version__}")


def _fc_case(dtype, precision: str, m: int, n: int, k: int, tol: float) -> str:
    import torch

    from tritonsym import ops

    gen = torch.Generator().manual_seed(m + n + k)
    x, w, b, dy = (torch.randn(*shape, generator=gen) for shape in ((m, k), (n, k), (n,), (m, n)))
    xd, wd, bd, dyd = (t.to(_device(), dtype) for t in (x, w, b, dy))
    y = ops.fully_connected_forward(xd, wd, bd, act="relu", precision=precision)
    dx, dw, db = ops.fully_connected_backward(dyd, xd, wd, out=y, act="relu", precision=precision)
    # The reference from the operands as the kernel saw them (rounded to dtype), in float64.
    x64, w64, b64, dy64 = (t.double().cpu() for t in (xd, wd, bd, dyd))
    y64 = torch.relu(x64 @ w64.T + b64)
    g64 = dy64 * (y64 > 0)
    name = f"{str(dtype).removeprefix('torch.')}{'/' + precision if precision != 'ieee' else ''} {m}x{n}x{k}"
    return ", ".join([_close(f"{name} y", y, y64, tol), _close("dx", dx, g64 @ w64, tol),
                      _close("dw", dw, g64.T @ x64, tol), _close("db", db, g64.sum(0), tol),
                      _epilogue_case(xd.relu(), wd, dyd, precision, tol)])


def _epilogue_case(x, w, dy, precision: str, tol: float) -> str:
    """The backward as a network runs it: dx finished for a relu layer before (x is its
    output) with that layer's bias summed from 32-row partials, dw, and db as a column sum."""
    import torch
    from tritonsym.ops import fully_connected as fc

    (m, k), n = x.shape, w.shape[0]
    shape, acc = fc.bias_partials(m, k, x.dtype)
    dx, dw = torch.empty_like(x), torch.empty_like(w)
    db, db_before = torch.empty(n, device=x.device, dtype=x.dtype), torch.empty(k, device=x.device, dtype=x.dtype)
    launches = fc.plan_fully_connected_backward(dy, x, w, grad_x=dx, grad_weight=dw, grad_bias=db, input_act="relu",
                                                input_grad_bias=db_before,
                                                input_partials=torch.empty(shape, dtype=acc, device=x.device),
                                                precision=precision)
    for launch in launches:
        launch()
    x64, w64, dy64 = (t.double().cpu() for t in (x, w, dy))
    gx = (dy64 @ w64) * (x64 > 0)
    tma = [la.kwargs["TMA_READY"] for la in launches if "TMA_READY" in la.kwargs]
    return ", ".join([_close(f"epilogue (TMA {tma}) dx", dx, gx, tol), _close("bias before", db_before, gx.sum(0), tol),
                      _close("dw", dw, dy64.T @ x64, tol), _close("db", db, dy64.sum(0), tol)])


def check_fc() -> str:
    """The pointer kernels, forward and backward, relu fused, at sizes off every tile edge."""
    import torch

    return "; ".join([_fc_case(torch.float32, "ieee", 67, 45, 83, 1e-5),
                      _fc_case(torch.bfloat16, "ieee", 67, 45, 83, 2e-2)])


def check_fc_tma() -> str:
    """The persistent TMA forward and backward products (forced on by TRITONSYM_TMA=1 in
    this check's process)."""
    import torch
    from tritonsym.ops import fully_connected as fc

    if not fc.tma_wanted(torch.device(_device())):
        return "skipped: TMA is not available with this Triton"
    x = torch.randn(192, 160).to(_device(), torch.bfloat16)
    w = torch.randn(136, 160).to(_device(), torch.bfloat16)
    b = torch.randn(136).to(_device(), torch.bfloat16)
    launches = fc.plan_fully_connected_forward(x, w, b, torch.empty(192, 136, device=_device(), dtype=torch.bfloat16),
                                               act="relu")
    if not launches[0].kwargs["TMA_READY"]:
        raise AssertionError("the TMA path was not planned although TRITONSYM_TMA=1")
    y = launches[0].args[3]
    for launch in launches:
        launch()
    want = torch.relu(x.double().cpu() @ w.double().cpu().T + b.double().cpu())
    dy = torch.randn(192, 136).to(_device(), torch.bfloat16)
    return ", ".join([_close("bfloat16 192x136x160 y", y, want, 2e-2), _epilogue_case(x, w, dy, "ieee", 2e-2)])


def check_softmax() -> str:
    """Softmax of narrow and wide (looped, split) rows, forward and backward; the loss gradient."""
    import torch

    from tritonsym import ops

    parts = []
    for rows, cols in ((7, 33), (3, 40000)):
        x = torch.randn(rows, cols, device=_device()) * 4
        dy = torch.randn(rows, cols, device=_device())
        y = ops.softmax_forward(x)
        dx = ops.softmax_backward(dy, y)
        y64 = torch.softmax(x.double().cpu(), -1)
        dx64 = y64 * (dy.double().cpu() - (dy.double().cpu() * y64).sum(-1, keepdim=True))
        parts += [_close(f"{rows}x{cols} y", y, y64, 1e-5), _close("dx", dx, dx64, 1e-5)]
    x = torch.randn(9, 11, device=_device())
    label = torch.randint(0, 11, (9,), device=_device())
    p = ops.softmax_forward(x)
    grad = ops.softmax_output_backward(p, label)
    want = torch.softmax(x.double().cpu(), -1) - torch.nn.functional.one_hot(label.cpu(), 11).double()
    parts.append(_close("softmax-output grad", grad, want, 1e-5))
    p, grad = ops.softmax_output_train(x, label)  # the training forward: both from one read
    parts.append(_close("training forward grad", grad, want, 1e-5))
    return ", ".join(parts)


def check_prebind() -> str:
    """A launch from its second call goes straight to the compiled kernel, same result: a
    FullyConnected launch, and a strided elementwise one (its strides travel as tuples)."""
    import torch
    from tritonsym.ops import elementwise
    from tritonsym.ops import fully_connected as fc

    x, w = torch.randn(40, 24, device=_device()), torch.randn(16, 24, device=_device())
    y = torch.empty(40, 16, device=_device())
    (launch,) = fc.plan_fully_connected_forward(x, w, None, y, act="tanh")
    a, b = torch.randn(24, 40, device=_device()).t(), torch.randn(40, 24, device=_device())
    product = torch.empty(40, 24, device=_device())
    (strided,) = elementwise.plan_binary_forward("mul", a, b, product)
    results = []
    for _ in range(3):
        y.fill_(float("nan"))
        product.fill_(float("nan"))
        launch()
        strided()
        results.append((y.clone(), product.clone()))
    if not all(torch.equal(results[0][k], r[k]) for r in results[1:] for k in (0, 1)):
        raise AssertionError("a pre-bound call gave other numbers than the JIT's first call")
    if not torch.equal(product.cpu(), (a * b).cpu()):
        raise AssertionError("the strided elementwise product differs from torch's")
    want = torch.tanh(x.double().cpu() @ w.double().cpu().T)
    bound = [launch.prebound, strided.prebound]
    if torch.cuda.is_available() and not all(bound):
        # The first H200 run passed this with every launch through the JIT (prebind.py
        # read Triton 3.6's empty hook chains as installed hooks).
        raise AssertionError(f"on a GPU every launch is pre-bound from its second call; pre-bound: {bound}")
    mode = f"pre-bound {bound}" if any(bound) else "through the JIT (the interpreter does not pre-bind)"
    if torch.cuda.is_available():  # the host cost of one call each way (target: <= 5 us pre-bound)
        sys.path.insert(0, str(ROOT / "perf"))
        from common import host_us  # the benchmarks' measure: single calls with the device idle

        mode += f"; host us per call: pre-bound {host_us(launch):.1f}, JIT {host_us(launch.dispatch):.1f}"
    return _close(f"3 calls, {mode}, y", y, want, 1e-5)


def check_graph_step() -> str:
    """One training step recorded as one CUDA graph equals the eager step, bit for bit,
    with SGD and with Adam (whose update number is advanced inside the graph)."""
    import numpy as np
    import torch

    import tritonsym as ts

    if not torch.cuda.is_available():
        return "skipped: CUDA graphs need a GPU"
    S = ts.sym
    net = S.Activation(S.FullyConnected(S.Variable("data"), num_hidden=33, name="fc1"), act_type="relu")
    net = S.SoftmaxOutput(S.FullyConnected(net, num_hidden=7, name="fc2"), name="out")
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(29, 17)).astype(np.float32), rng.integers(0, 7, 29)) for _ in range(4)]
    for optimizer, options in (("sgd", {"learning_rate": 0.1, "momentum": 0.9}), ("adam", {"learning_rate": 0.01})):
        params = {}
        for graphed in (False, True):
            ts.random.seed(0)
            mod = ts.mod.Module(net, label_names=("out_label",), context=ts.gpu(0), cuda_graph=graphed)
            mod.bind(data_shapes=[("data", (29, 17))], label_shapes=[("out_label", (29,))])
            mod.init_params(ts.init.Xavier())
            mod.init_optimizer(optimizer=optimizer, optimizer_params=options)
            for data, label in batches:  # eager, recorded, replayed, replayed
                mod.train_step(ts.io.DataBatch([torch.from_numpy(data)], [torch.from_numpy(label)]))
            torch.cuda.synchronize()
            params[graphed] = mod.get_params()[0]
        for name, value in params[False].items():
            if not torch.equal(value, params[True][name]):
                raise AssertionError(f"{optimizer}: {name} differs between the eager and the graphed steps")
    return f"4 steps of sgd and of adam, {len(params[True])} parameters equal bit for bit"


def check_precompile() -> str:
    """A bind compiles its variants in parallel processes into a fresh Triton cache, and
    the first step then compiles nothing more: the workers' cache keys are the JIT's."""
    import tempfile

    os.environ["TRITON_CACHE_DIR"] = cache = tempfile.mkdtemp(prefix="tritonsym-smoke-precompile-")
    import numpy as np
    import torch

    import tritonsym as ts

    if not torch.cuda.is_available() or ts.ops.INTERPRET:
        return "skipped: precompiling is for a GPU target"

    def compiled() -> set[str]:  # a compiled variant is a cache folder with a group file
        return {root for root, _, files in os.walk(cache) if any(f.startswith("__grp__") for f in files)}

    S = ts.sym
    net = S.Activation(S.FullyConnected(S.Variable("data"), num_hidden=40, name="fc1"), act_type="relu")
    net = S.SoftmaxOutput(S.FullyConnected(net, num_hidden=9, name="fc2"), name="out")
    exe = net.simple_bind(ts.gpu(0), data=(33, 21))
    report = exe.precompiled
    if report is None or report.failed or report.compiled != report.variants or not report.variants:
        raise AssertionError(f"bind on a fresh cache precompiled: {report}")
    before = compiled()
    rng = np.random.default_rng(0)
    # float32 values: a bind refuses float64 ones that float32 cannot hold exactly.
    exe.copy_params_from({n: rng.normal(scale=0.3, size=a.shape).astype(np.float32) for n, a in exe.arg_dict.items()})
    exe.forward(is_train=True, data=rng.normal(size=(33, 21)).astype(np.float32),
                out_label=rng.integers(0, 9, 33).astype(np.float32))
    exe.backward()
    torch.cuda.synchronize()
    more = compiled() - before
    if more:
        raise AssertionError(f"{report}; the first step compiled {len(more)} more variants (the keys differ)")
    return f"{report}; the first step compiled nothing more"


CHECKS = {"import": check_import, "fc": check_fc, "fc_tma": check_fc_tma, "softmax": check_softmax,
          "prebind": check_prebind, "graph_step": check_graph_step, "precompile": check_precompile}
ENV = {"fc_tma": {"TRITONSYM_TMA": "1"}}  # forced on: the smoke shapes are below its size threshold


def run_limited(command: list[str], limit_s: float, env: dict) -> tuple[int, str] | None:
    """(exit status, output) of ``command``, or None where it ran past ``limit_s``. It runs
    in its own process group, killed whole at the limit: a check's compiling workers
    (ops/precompile.py) must not outlive it and slow the phases after it."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
                             start_new_session=True)
    try:
        output, _ = child.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        return None
    return child.returncode, output


def run_one(name: str, limit_s: float) -> tuple[str, str, float]:
    """Run one check in its own process; (status, detail, seconds)."""
    started = time.monotonic()
    env = {**os.environ, **ENV.get(name, {}), "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = run_limited([sys.executable, __file__, "--child", name], limit_s, env)
    if done is None:
        return "CUT", f"no answer within {limit_s:.0f} s (a hang or a slow compile)", time.monotonic() - started
    seconds = time.monotonic() - started
    returncode, output = done
    lines = output.strip().splitlines()
    if returncode != 0:
        return "FAILED", " | ".join(lines[-6:]) or f"exit {returncode}", seconds
    detail = lines[-1] if lines else ""
    return ("skipped" if detail.startswith("skipped") else "ok"), detail, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checks", nargs="*", default=list(CHECKS), help=f"any of {', '.join(CHECKS)}")
    parser.add_argument("--limit", type=float, default=60, help="seconds per check (default 60)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(CHECKS[args.child](), flush=True)
        return 0
    unknown = [c for c in args.checks if c not in CHECKS]
    if unknown:
        parser.error(f"unknown check(s) {unknown}; known: {', '.join(CHECKS)}")
    failed = 0
    for name in args.checks:
        status, detail, seconds = run_one(name, args.limit)
        failed += status in ("FAILED", "CUT")
        print(f"smoke {name}: {status} ({seconds:.1f} s) {detail}", flush=True)
    print(f"smoke: {len(args.checks) - failed} of {len(args.checks)} checks passed or skipped", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
