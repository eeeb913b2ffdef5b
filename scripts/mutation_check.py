"""Mutation check: does the test suite fail when a kernel or the planner is subtly wrong?

A test that passes whatever the code computes proves nothing. This script makes one
small change at a time to the files given, in a kernels file of ``ops/`` to its Triton
kernels (functions decorated ``@triton.jit``), in host code (``HOST_TESTS``: planner,
allocator, program, optimizer region, registry entries, inference, bind; ``FILE_TESTS``:
the readers and writer of symbol JSON and checkpoints) to every function: a comparison
made strict or loose (``<`` to ``<=``, each of a chain alone), ``+`` to ``-``, ``*`` to
``/``, ``&`` to ``|``, a constant nudged, a sign or ``not`` dropped, ``and`` to ``or``,
``in`` to ``not in``, ``is`` to ``is not``, ``maximum`` to ``minimum``, ``sum`` to
``max``, and in host code a call statement left out (a flush, a rename, a check). It runs
the tests named for that file on each such mutant, in a copy of the repository (the
working tree is never touched), and reports the mutants no test failed on ("survived"),
which either show a gap in the tests or change nothing that any input can observe (an
"equivalent" mutant: a mask bound that the padding makes irrelevant, say), to be read
one by one.

    python scripts/mutation_check.py ops/softmax_output.py --sample 30 --report mutants.md

A mutant that no longer compiles counts apart ("invalid"), not as caught.
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tritonsym.ops import catalog

ROOT = Path(__file__).resolve().parents[1]

# The tests that exercise each kernels file (each module's TESTS, ``tritonsym.ops.catalog``),
# then the operator-level gradient checks, oracles and properties (pytest stops at the
# first failure).
COMMON_TESTS = ["tests/test_numerical_edges.py", "tests/test_gradcheck.py", "tests/test_operators.py",
                "tests/test_kernel_properties.py", "tests/test_torch_crosscheck.py"]
TESTS = catalog.tests_by_file()
# Host code where a mistake gives a wrong answer rather than an error: the memory planner
# (lifetimes, in-place reuse), the program it runs, the optimizer's flat region. Every
# function of these files is mutated.
HOST_TESTS = {
    "tritonsym/executor/planner.py": ["tests/test_planner.py", "tests/test_planner_properties.py"],
    "tritonsym/executor/memory.py": ["tests/test_planner.py", "tests/test_planner_properties.py"],
    "tritonsym/executor/program.py": ["tests/test_executor.py", "tests/test_planner_properties.py"],
    # Recompute steps in backward: a wrong one is a wrong gradient that costs less memory.
    "tritonsym/executor/mirror.py": ["tests/test_planner.py", "tests/test_planner_properties.py",
                                     "tests/test_custom_op.py"],  # the last: a cheap operator with scratch
    # Composition, arithmetic, naming and grouping of symbols: the graph every other step reads.
    "tritonsym/symbol/symbol.py": ["tests/test_symbol.py", "tests/test_seed_examples.py", "tests/test_infer.py",
                                   "tests/test_json.py", "tests/test_test_utils.py"],  # the last: aux states
    "tritonsym/optimizer/updater.py": ["tests/test_optimizer.py", "tests/test_update_properties.py",
                                       "tests/test_module.py"],
    # Shape and dtype inference, and bind's checks of what the user hands it.
    "tritonsym/symbol/infer.py": ["tests/test_infer.py", "tests/test_symbol.py", "tests/test_properties.py",
                                  "tests/test_seed_examples.py"],
    "tritonsym/executor/bind.py": ["tests/test_executor.py", "tests/test_planner.py", "tests/test_prebind.py",
                                   "tests/test_check_finite.py", "tests/test_module.py"],
    # The executor's checks of what forward/backward are handed, and the Module built on it.
    "tritonsym/executor/executor.py": ["tests/test_executor.py", "tests/test_check_finite.py", "tests/test_prebind.py",
                                       "tests/test_planner.py", "tests/test_loss_scaling.py"],
    "tritonsym/module/module.py": ["tests/test_module.py", "tests/test_file_format.py", "tests/test_loss_scaling.py",
                                   "tests/test_kvstore_dist.py"],
    # Registry entries: which gradients an operator writes, what it may do in place, its shapes.
    **{f"tritonsym/operators/{name}.py": ["tests/test_operators.py", "tests/test_infer.py", "tests/test_symbol.py",
                                          "tests/test_custom_op.py", "tests/test_planner_properties.py"]
       for name in ("fully_connected", "activation", "softmax", "softmax_output", "elementwise", "registry")},
    # The operators beyond the MLP: their own tests, then random networks of them against
    # torch autograd (views, broadcasts and reductions meeting in one gradient), every
    # operator case with its workspace poisoned, inference, and what real MXNet gave.
    **{f"tritonsym/operators/{name}.py": [f"tests/test_{tests}.py", "tests/test_random_networks.py",
                                          "tests/test_operators.py", "tests/test_infer.py",
                                          "tests/test_mxnet_differential.py"]
       for name, tests in (("reshape", "shape_operators"), ("transpose", "shape_operators"),
                           ("expand_dims", "shape_operators"), ("squeeze", "shape_operators"),
                           ("flip", "shape_operators"), ("slice_axis", "shape_operators"),
                           ("slice_channel", "shape_operators"), ("concat", "shape_operators"),
                           ("view", "shape_operators"), ("broadcast", "broadcast"), ("reduce", "reduce"),
                           ("select", "select"), ("dot", "batch_dot"), ("batch_dot", "batch_dot"),
                           ("layer_norm", "layer_norm"), ("batch_norm", "batch_norm"), ("embedding", "embedding"),
                           ("sequence_mask", "sequence_mask"), ("leaky_relu", "prelu"), ("attention", "attention"),
                           ("dropout", "dropout"))},
}
HOST_COMMON_TESTS = ["tests/test_gradcheck.py", "tests/test_torch_reference_fit.py", "tests/test_cuda_graph.py"]
# The readers of what a user hands in (symbol JSON, checkpoints) and the writer that must never
# lose one: here a survivor is a hostile input let through, or a check that refuses good files.
FILE_TESTS = {
    "tritonsym/symbol/json_format.py": ["tests/test_json.py", "tests/test_file_format.py",
                                        "tests/test_hostile_files.py", "tests/test_properties.py",
                                        "tests/test_custom_op.py", "tests/test_seed_examples.py"],
    "tritonsym/model.py": ["tests/test_file_format.py", "tests/test_hostile_files.py", "tests/test_checkpoint_kill.py",
                           "tests/test_module.py", "tests/test_doctests.py"],
    "tritonsym/files.py": ["tests/test_checkpoint_kill.py", "tests/test_file_format.py", "tests/test_hostile_files.py",
                           "tests/test_json.py"],
}
# The training API's user layer, where a mistake is a number that looks plausible: a metric,
# a batch, a learning rate, an initial weight, an optimizer's hyperparameter, a gradient check.
USER_TESTS = {
    "tritonsym/metric.py": ["tests/test_metric.py"],
    "tritonsym/io/ndarray_iter.py": ["tests/test_io.py"],
    "tritonsym/optimizer/lr_scheduler.py": ["tests/test_optimizer.py"],
    "tritonsym/optimizer/optimizer.py": ["tests/test_optimizer.py", "tests/test_update_properties.py",
                                         "tests/test_torch_reference_fit.py"],
    "tritonsym/initializer.py": ["tests/test_initializer.py"],
    # The checks users trust for their own operators: a survivor here is a wrong gradient passed.
    "tritonsym/test_utils.py": ["tests/test_test_utils.py", "tests/test_custom_op.py"],
    # The loops around a step and what they log, stop on and hand the callbacks.
    "tritonsym/module/loops.py": ["tests/test_module.py", "tests/test_loss_scaling.py"],
    "tritonsym/callback.py": ["tests/test_callback.py", "tests/test_module.py", "tests/test_checkpoint_kill.py"],
    "tritonsym/optimizer/loss_scaler.py": ["tests/test_loss_scaling.py", "tests/test_optimizer.py"],
    # Gradient sums across devices and workers: a wrong bucket is a wrong gradient on every worker.
    "tritonsym/kvstore/kvstore.py": ["tests/test_kvstore_dist.py", "tests/test_module.py"],
    "tritonsym/kvstore/buckets.py": ["tests/test_gradient_buckets.py", "tests/test_kvstore_dist.py"],
}

COMPARE_SWAPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                 ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
BINOP_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.BitAnd: ast.BitOr,
               ast.BitOr: ast.BitAnd}
CALL_SWAPS = {"maximum": "minimum", "minimum": "maximum", "sum": "max", "max": "sum", "exp": "exp2",
              "exp2": "exp", "log": "log2", "log2": "log"}


@dataclass
class Mutant:
    path: str
    line: int
    before: str
    after: str
    source: str  # the whole mutated file


def _is_kernel(fn: ast.FunctionDef) -> bool:
    return any("jit" in ast.unparse(d) for d in fn.decorator_list)


def _variants(node: ast.AST, delete_calls: bool):
    """Mutated copies of one node, each differing in one place."""
    if delete_calls and isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        yield ast.Pass()  # a call made for its effect left out: a flush, a rename, a check
    if isinstance(node, ast.Compare):  # each operator of a chain (``0 <= k < n``) on its own
        for k, op in enumerate(node.ops):
            if type(op) in COMPARE_SWAPS:
                ops = [*node.ops[:k], COMPARE_SWAPS[type(op)](), *node.ops[k + 1:]]
                yield ast.Compare(node.left, ops, node.comparators)
    elif isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAPS:
        yield ast.BinOp(node.left, BINOP_SWAPS[type(node.op)](), node.right)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        yield node.operand
    elif isinstance(node, ast.BoolOp):  # a validation's "or" made "and" lets bad input through
        yield ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        yield ast.Constant(node.value + 1 if isinstance(node.value, int) else (node.value * 2 or 1.0))
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CALL_SWAPS:
        func = ast.Attribute(node.func.value, CALL_SWAPS[node.func.attr], ast.Load())
        yield ast.Call(func, node.args, node.keywords)


def _mutable_nodes(node: ast.AST):
    """Every node under ``node`` except those of error checks (raise, assert: the error tests
    cover those, and a mutated message is not a wrong result), of annotations, and of nested
    functions, which are visited on their own."""
    if isinstance(node, (ast.Raise, ast.Assert, ast.FunctionDef)):
        return
    if isinstance(node, ast.AnnAssign):  # not the annotation: types are not run
        for child in (node.target, node.value):
            if child is not None:
                yield from _mutable_nodes(child)
        return
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _mutable_nodes(child)


def _chars(line: str, utf8_offset: int) -> int:
    """ast's column offsets count UTF-8 bytes; string indices count characters."""
    return len(line.encode()[:utf8_offset].decode())


def mutants(path: str, root: Path = ROOT) -> list[Mutant]:
    source = (root / path).read_text()
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    tree = ast.parse(source)
    functions = [fn for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)]
    kernels = any(_is_kernel(fn) for fn in functions)
    if kernels:
        functions = [fn for fn in functions if _is_kernel(fn)]  # a kernels file: its kernels
    found = []
    for fn in functions:
        body = fn.body[1:] if fn.body and isinstance(fn.body[0], ast.Expr) \
            and isinstance(fn.body[0].value, ast.Constant) else fn.body  # not the docstring
        for statement in body:
            for node in _mutable_nodes(statement):
                if getattr(node, "end_lineno", None) is None:
                    continue
                begin = starts[node.lineno - 1] + _chars(lines[node.lineno - 1], node.col_offset)
                end = starts[node.end_lineno - 1] + _chars(lines[node.end_lineno - 1], node.end_col_offset)
                for variant in _variants(node, delete_calls=not kernels):
                    after = ast.unparse(variant)
                    if "\n" in source[begin:end] and not isinstance(variant, ast.Pass):
                        after = f"({after})"
                    found.append(Mutant(path, node.lineno, source[begin:end], after,
                                        source[:begin] + after + source[end:]))
    return found


def tracked_files() -> set[str]:
    return set(subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.split())


def copy_repository(into: Path) -> None:
    for name in sorted(tracked_files()):
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, into / name)
    (into / "tritonsym" / "ops").symlink_to("../ops")  # what the install's package-dir mapping does


def tests_for(path: str) -> list[str]:
    if path in TESTS:
        return TESTS[path] + COMMON_TESTS
    if path in HOST_TESTS:
        return HOST_TESTS[path] + HOST_COMMON_TESTS
    return FILE_TESTS.get(path) or USER_TESTS[path]


def run_tests(copy: Path, tests: list[str], timeout: float) -> str:
    env = dict(os.environ, PYTHONPATH=str(copy), TRITONSYM_PROPERTY_SCALE=os.environ.get("TRITONSYM_PROPERTY_SCALE",
                                                                                          "1"))
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-W", "ignore", *tests]
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout"  # a mutant that hangs a kernel is caught, by the CI's time limit
    if done.returncode == 0:
        return "survived"
    if done.returncode in (4, 5):  # pytest's usage error (a test file not found), no tests collected
        raise SystemExit(f"pytest could not run {' '.join(tests)} (exit {done.returncode}), whatever the mutant: "
                         f"{done.stdout[-1000:]}{done.stderr[-1000:]}")
    tail = done.stdout[-4000:] + done.stderr[-4000:]
    if "CompilationError" in tail or "SyntaxError" in tail or "NameError" in tail:
        return "invalid"
    return "killed"


def _line_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    try:
        return int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lines {text!r}: expected FIRST-LAST, e.g. 334-505") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="files of TESTS or HOST_TESTS, e.g. ops/softmax.py")
    parser.add_argument("--sample", type=int, default=0, help="mutants per file, drawn at random (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lines", type=_line_range, help="only mutants on these lines, e.g. 334-505 (to resume a run)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant's test run")
    parser.add_argument("--report", type=Path, help="write the results as a Markdown table here")
    args = parser.parse_args(argv)
    for path in args.files:
        known = [*TESTS, *HOST_TESTS, *FILE_TESTS, *USER_TESTS]
        if path not in known:
            parser.error(f"{path}: no tests are listed for it (known: {', '.join(known)})")
    untracked = {t for p in args.files for t in tests_for(p)} - tracked_files()
    if untracked:  # the copy holds tracked files only: every mutant would seem killed
        parser.error(f"{', '.join(sorted(untracked))}: not tracked by git; `git add` them first")
    rows = []
    with tempfile.TemporaryDirectory(prefix="tritonsym-mutants-") as tmp:
        copy = Path(tmp)
        copy_repository(copy)
        if run_tests(copy, ["tests/test_kernels_memory.py"], args.timeout) != "survived":
            raise SystemExit("the unmutated copy fails its tests; fix that first")
        for path in args.files:
            found = mutants(path, copy)  # the copied file: the working tree may change meanwhile
            if args.lines:
                found = [m for m in found if args.lines[0] <= m.line <= args.lines[1]]
            chosen = random.Random(args.seed).sample(found, args.sample) if 0 < args.sample < len(found) else found
            print(f"{path}: {len(found)} mutants, running {len(chosen)}", flush=True)
            original = (copy / path).read_text()
            try:
                for m in sorted(chosen, key=lambda m: m.line):
                    (copy / path).write_text(m.source)
                    start = time.monotonic()
                    tests = tests_for(path)
                    outcome = run_tests(copy, tests, args.timeout)
                    rows.append((m, outcome))
                    print(f"  {outcome:8s} {path}:{m.line}  {m.before!r} -> {m.after!r}  "
                          f"({time.monotonic() - start:.0f} s)", flush=True)
            finally:
                (copy / path).write_text(original)
    counts = {k: sum(o == k for _, o in rows) for k in ("killed", "timeout", "survived", "invalid")}
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    if args.report:
        table = ["| file:line | mutation | outcome |", "|---|---|---|"]
        table += [f"| {m.path}:{m.line} | `{m.before}` → `{m.after}` | {o} |" for m, o in rows]
        args.report.write_text("\n".join(table) + "\n")
    return 1 if counts["survived"] else 0


if __name__ == "__main__":
    sys.exit(main())
