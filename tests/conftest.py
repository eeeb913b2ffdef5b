"""Shared fixtures, and the switch that runs the whole suite on a GPU.

``TRITONSYM_TEST_DEVICE=cuda python -m pytest`` runs every test with compiled kernels on
the GPU instead of Triton's interpreter: tensors the tests make go to the GPU (torch's
default device), and ``tritonsym.cpu()``, the context the tests bind on, stands for
``gpu(0)``. Tests marked ``cpu_only`` (they check the interpreter itself, or the CPU
fallbacks) are skipped there; tests marked ``gpu`` run only there, or wherever CUDA is.
"""

import os
import pathlib
import sys
import zlib

# One BLAS thread and one torch thread per test process: xdist runs one process per core
# and the interpreter's blocks are small, so more threads only spin against each other
# (the main job's test took 64 s instead of 22 s beside another worker). Set before
# numpy loads OpenBLAS, which reads the variable once; subprocesses inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# Every interpreted launch of the suite is checked for accesses outside its tensors
# (tritonsym.ops.memcheck), subprocesses included; set before tritonsym is imported.
os.environ.setdefault("TRITONSYM_MEMCHECK", "1")

# Tests check the networks the benchmarks report on, built by the benchmarks' own code.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "perf"))

TESTS = str(pathlib.Path(__file__).resolve().parent)


def _called_from_tests(through_torch: bool = False) -> bool:
    """Is the caller's caller a file of this folder? With ``through_torch``, also when it
    calls through torch's own ``Tensor`` methods (``np.asarray`` of a tensor reaches
    ``Tensor.numpy`` through ``Tensor.__array__``)."""
    frame = sys._getframe(2)
    torch_tensor = os.path.join("torch", "_tensor.py")
    while through_torch and frame is not None and frame.f_code.co_filename.endswith(torch_tensor):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(TESTS)


def _host_copies_for_tests():
    """On the GPU, the tests' own conversions between numpy and torch cross the device:
    a test reads a GPU tensor with ``.numpy()`` and builds its operands with
    ``torch.from_numpy`` / ``torch.as_tensor``, which torch's default device does not
    move. Only calls made from this folder are changed: tritonsym's own code gets torch's
    behaviour, so a library ``.numpy()`` of a GPU tensor still fails here as it would for
    a user."""
    numpy, from_numpy, as_tensor = torch.Tensor.numpy, torch.from_numpy, torch.as_tensor

    def to_numpy(self, *args, **kwargs):
        if self.device.type != "cpu" and _called_from_tests(through_torch=True):
            return numpy(self.detach().cpu(), *args, **kwargs)
        return numpy(self, *args, **kwargs)

    def moved_from_numpy(array):
        t = from_numpy(array)
        return t.to(torch.get_default_device()) if _called_from_tests() else t

    def moved_as_tensor(data, *args, **kwargs):
        t = as_tensor(data, *args, **kwargs)
        if "device" not in kwargs and not (len(args) > 1) and _called_from_tests():
            return t.to(torch.get_default_device())
        return t

    torch.Tensor.numpy = to_numpy
    torch.from_numpy, torch.as_tensor = moved_from_numpy, moved_as_tensor


TEST_DEVICE = os.environ.get("TRITONSYM_TEST_DEVICE", "cpu")
if TEST_DEVICE not in ("cpu", "cuda"):
    raise pytest.UsageError(f"TRITONSYM_TEST_DEVICE={TEST_DEVICE!r}: expected cpu or cuda")
if TEST_DEVICE == "cuda":
    if not torch.cuda.is_available():
        raise pytest.UsageError("TRITONSYM_TEST_DEVICE=cuda, but torch sees no CUDA device")
    import tritonsym
    import tritonsym.context

    torch.set_default_device("cuda")
    _gpu = tritonsym.gpu

    def _device_under_test(device_id: int = 0):
        # Tests of several contexts bind cpu(0), cpu(1), ...: one GPU each, where there are enough.
        if device_id >= torch.cuda.device_count():
            pytest.skip(f"cpu({device_id}) stands for gpu({device_id}); this machine has "
                        f"{torch.cuda.device_count()} GPU(s)")
        return _gpu(device_id)

    tritonsym.cpu = tritonsym.context.cpu = _device_under_test
    _host_copies_for_tests()


@pytest.fixture
def rng(request) -> np.random.Generator:
    """Fresh random numbers per test, the same on every run of that test."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


# How many cases the generated tests drew, shown after the run (without pytest-xdist: each
# worker keeps its own counts).
CASE_COUNTS = (("test_hostile_files", "FUZZ_CASES", "fuzzed inputs tried"),
               ("test_kernel_properties", "CASES", "generated kernel cases"),
               ("test_update_properties", "CASES", "generated optimizer update cases"))


def pytest_terminal_summary(terminalreporter):
    lines = [f"{what}: {dict(getattr(sys.modules[module], name))}" for module, name, what in CASE_COUNTS
             if module in sys.modules and getattr(sys.modules[module], name, None)]
    if lines:
        terminalreporter.section("cases drawn")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(config, items):
    on_gpu = torch.cuda.is_available()
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    skip_cpu_only = pytest.mark.skip(reason="checks the CPU interpreter path (TRITONSYM_TEST_DEVICE=cuda)")
    for item in items:
        if "gpu" in item.keywords and not on_gpu:
            item.add_marker(skip_gpu)
        if "cpu_only" in item.keywords and TEST_DEVICE == "cuda":
            item.add_marker(skip_cpu_only)
