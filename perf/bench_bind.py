"""Time to a training-ready network: cold (compile and autotune) and warm (disk caches).

tritonsym compiles and autotunes each kernel on its first launch, so what a user waits
for before training runs at full speed is the bind plus the first training step. Each
row runs in a fresh Python process: "cold" with an empty Triton cache directory
(``TRITON_CACHE_DIR``: compiled kernels and, where Triton has ``cache_results``, autotune
results), "warm" a second fresh process on the cache the cold one left. Times: building
the symbol and ``simple_bind``, the first step (forward, backward and the SGD update,
synchronised), and a steady step after that for scale.

On a GPU a bind compiles, in parallel processes, every kernel variant its first step
will need (``ops/precompile.py``); "cold, serial" is a cold row with that turned off
(``TRITONSYM_PRECOMPILE=0``: the JIT compiles each variant when it first runs), which is
what the parallel compile saves.

On a CPU the kernels run in Triton's interpreter, which compiles nothing: cold and warm
differ only by Python's own caches there.

Run: python perf/bench_bind.py [--precisions float32,tf32,bfloat16] [--small-only]
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before torch and triton are imported (by common)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

from common import ON_GPU, Table, environment  # noqa: E402

TARGETS = "cold (compile + autotune) <= 30 s, warm (caches on disk) <= 1 s"


def child(sizes: list[int], batch: int, precision: str) -> dict:
    """In a fresh process: imports, build and bind, first step, steady step; seconds."""
    import numpy as np
    import torch
    from bench_mlp import initial_params, tritonsym_step

    imported = time.perf_counter()
    rng = np.random.default_rng(1)
    data, label = rng.normal(size=(batch, sizes[0])), rng.integers(0, sizes[-1], batch)
    # bench_mlp's step: bind, parameters and batch written, nothing run; one phase per step.
    run_step, _, _, _ = tritonsym_step(sizes, batch, precision, initial_params(sizes, np.random.default_rng(0)),
                                       data, label, cuda_graph=False)
    sync = torch.cuda.synchronize if ON_GPU else (lambda: None)
    bound = time.perf_counter()

    def step():
        run_step()
        sync()

    step()
    first = time.perf_counter()
    step()
    steady = time.perf_counter()
    return {"import s": imported - STARTED, "bind s": bound - imported, "first step s": first - bound,
            "steady step s": steady - first}


def measure(sizes, batch, precision, cache: str, precompile: bool = True) -> dict:
    env = {**os.environ, "TRITON_CACHE_DIR": cache, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.abspath(__file__)), os.environ.get("PYTHONPATH", "")])}
    if not precompile:
        env["TRITONSYM_PRECOMPILE"] = "0"
    spec = json.dumps({"sizes": list(sizes), "batch": batch, "precision": precision})
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", spec], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"bench_bind child failed for {spec}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precisions", default="float32,tf32,bfloat16" if ON_GPU else "float32")
    parser.add_argument("--small-only", action="store_true", help="only the small tutorial MLP (784-128-64-10)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(child(spec["sizes"], spec["batch"], spec["precision"])))
        return
    from bench_mlp import NETWORKS

    precisions, networks = args.precisions.split(","), NETWORKS[:1] if args.small_only else NETWORKS
    notes = (f"Targets: {TARGETS}; `ready s` = bind + first step (the import of torch, triton and tritonsym "
             "is shown apart). Each row is a fresh process; `cold` starts from an empty Triton cache "
             "directory, `warm` reuses the one `cold` filled.")
    if ON_GPU:
        notes += (" `cold, serial`: an empty cache of its own and no parallel compile at bind "
                  "(TRITONSYM_PRECOMPILE=0), so each variant compiles when it first runs.")
    if not ON_GPU:
        notes += " On the CPU kernels run in Triton's interpreter, which compiles nothing."
    states = ("cold, serial", "cold", "warm") if ON_GPU else ("cold", "warm")
    table = Table("bind-time", len(states) * len(precisions) * len(networks), notes)
    for precision in precisions:
        for sizes, batch in networks:
            with tempfile.TemporaryDirectory(prefix="tritonsym-bind-") as cache:
                for state in states:
                    if state == "cold, serial":
                        with tempfile.TemporaryDirectory(prefix="tritonsym-bind-serial-") as own:
                            t = measure(sizes, batch, precision, own, precompile=False)
                    else:
                        t = measure(sizes, batch, precision, cache)
                    table.add({"network": "-".join(map(str, sizes)), "batch": batch, "precision": precision,
                               "cache": state, "import s": f"{t['import s']:.2f}", "bind s": f"{t['bind s']:.2f}",
                               "first step s": f"{t['first step s']:.2f}",
                               "ready s": f"{t['bind s'] + t['first step s']:.2f}",
                               "steady step ms": f"{1e3 * t['steady step s']:.2f}"})
    print(f"{environment()}\nwrote {table.path}")


if __name__ == "__main__":
    main()
