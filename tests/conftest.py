import pathlib
import sys
import zlib

import numpy as np
import pytest
import torch

# Tests check the networks the benchmarks report on, built by the benchmarks' own code.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "perf"))


@pytest.fixture
def rng(request) -> np.random.Generator:
    """Fresh random numbers per test, the same on every run of that test."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
