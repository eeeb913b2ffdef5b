"""The mutation harness itself: the mutants it makes are the ones its docstring promises,
each one change that still parses, and every test file it would run exists."""

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("mutation_check", ROOT / "scripts" / "mutation_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_check"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules["mutation_check"]


def _variants(harness, expression: str, delete_calls: bool = True) -> list[str]:
    node = ast.parse(expression).body[0]
    node = node if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) else node.value
    return [ast.unparse(v) for v in harness._variants(node, delete_calls)]


def test_each_operator_of_a_chained_comparison_is_mutated_alone(harness):
    assert _variants(harness, "0 <= k < n") == ["0 < k < n", "0 <= k <= n"]


def test_validation_logic_is_mutated(harness):
    assert _variants(harness, "not ok") == ["ok"]
    assert _variants(harness, "a or b") == ["a and b"]
    assert _variants(harness, "k not in names") == ["k in names"]
    assert _variants(harness, "x is None") == ["x is not None"]


def test_calls_made_for_their_effect_are_left_out_in_host_code_only(harness):
    assert _variants(harness, "os.replace(tmp, path)") == ["pass"]
    assert _variants(harness, "tl.store(p, x)", delete_calls=False) == []
    kernel_mutants = harness.mutants("ops/memory.py")
    assert kernel_mutants and all(m.after != "pass" for m in kernel_mutants)
    assert "os.replace(tmp, path)" in [m.before for m in harness.mutants("tritonsym/files.py") if m.after == "pass"]


@pytest.mark.parametrize("path", ["ops/softmax_output.py", "tritonsym/symbol/json_format.py", "tritonsym/model.py",
                                  "tritonsym/executor/bind.py"])  # bind: a call over two lines left out
def test_every_mutant_parses_and_differs_in_one_place(harness, path):
    original = (ROOT / path).read_text()
    found = harness.mutants(path)
    assert found
    for m in found:
        ast.parse(m.source)
        assert m.source != original
        assert m.before in original


def test_every_listed_test_file_exists(harness):
    listed = {*harness.TESTS, *harness.HOST_TESTS, *harness.FILE_TESTS}
    for path in listed:
        assert (ROOT / path).is_file(), path
        for test in harness.tests_for(path):
            assert (ROOT / test).is_file(), f"{path}: {test}"
