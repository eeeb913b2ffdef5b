"""Every ``@triton.jit`` kernel of ``ops/`` is in its module's representative launches
(``tritonsym.ops.catalog``), which the sm_90 compile check, the kernel report and the
mutation check all read: a new kernel cannot be left out of them, and each kernels module
names the tests that exercise it."""

import importlib
import pathlib
import pkgutil

import pytest
import torch
from tritonsym.ops import catalog

from tritonsym import ops

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _python_function(kernel):
    """The Python function behind a @triton.jit kernel (compiled or interpreted) and the
    autotuners and heuristics around it."""
    while hasattr(kernel, "fn"):
        kernel = kernel.fn
    return kernel


def _kernels_of(module) -> set[str]:
    """The kernels a module defines: its @triton.jit functions named *_kernel (the others
    are helpers that kernels call)."""
    found = set()
    for value in vars(module).values():
        if hasattr(value, "fn"):  # a jit function, an autotuner or heuristics
            fn = _python_function(value)
            if fn.__module__ == module.__name__ and fn.__name__.endswith("_kernel"):
                found.add(fn.__name__)
    return found


def test_every_kernel_of_ops_is_in_the_catalogue():
    defined = set()
    for info in pkgutil.iter_modules(ops.__path__):
        defined |= _kernels_of(importlib.import_module(f"{ops.__name__}.{info.name}"))
    launched = {_python_function(launch.kernel).__name__ for _, _, launch in catalog.representative_launches()}
    assert defined, "no kernel found: the search is broken"
    assert not defined - launched, f"kernels no representative launch runs: {sorted(defined - launched)}"
    assert not launched - defined, f"launches of kernels not named *_kernel: {sorted(launched - defined)}"


@pytest.mark.parametrize("module", catalog.KERNEL_MODULES, ids=catalog.module_name)
def test_each_kernels_module_names_tests_that_exist(module):
    assert module.TESTS and all((ROOT / path).is_file() for path in module.TESTS), module.TESTS
    files = catalog.tests_by_file()
    assert all((ROOT / path).is_file() for tests in files.values() for path in tests)
    with_kernels = {f"ops/{info.name}.py" for info in pkgutil.iter_modules(ops.__path__)
                    if _kernels_of(importlib.import_module(f"{ops.__name__}.{info.name}"))}
    assert with_kernels <= set(files), f"kernels files the mutation check cannot test: {with_kernels - set(files)}"


def test_large_launches_plan_at_the_reported_sizes():
    """The kernel report plans at sizes worth reading (no allocation: meta tensors would
    do, but CPU tensors are what aot specializes on, so the sizes stay modest)."""
    launches = catalog.representative_launches((torch.float32,), large=True, modules=(catalog.fully_connected,))
    x = launches[0][2].args[0]
    assert tuple(x.shape) == (4096, 4096)
