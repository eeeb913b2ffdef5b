"""What keeps tritonsym's kernels working on every Triton it supports (the GPU machine runs
3.6, development the newest): untuned autotuned kernels never time a config, and an
interpreter that cannot run with the installed NumPy is named up front."""

import pytest
import torch
import triton
import triton.language as tl
from tritonsym.ops import _common
from tritonsym.ops._mode import check_interpreter_versions

CONFIGS = [triton.Config({"BLOCK": 4}), triton.Config({"BLOCK": 8}), triton.Config({"BLOCK": 16})]


@pytest.mark.parametrize("triton_version,numpy_version", [("3.6.0", "2.4.0"), ("3.5.1", "2.5.0rc1"),
                                                          ("3.6.0+git1234", "3.0.0")])
def test_old_interpreter_with_new_numpy_is_refused(triton_version, numpy_version):
    with pytest.raises(ImportError) as error:
        check_interpreter_versions(triton_version, numpy_version)
    message = str(error.value)
    assert triton_version in message and numpy_version in message and "numpy<2.4" in message


@pytest.mark.parametrize("triton_version,numpy_version", [("3.6.0", "2.3.5"), ("3.7.0", "2.4.0"),
                                                          ("3.10.0", "2.4.6"), ("4.0.0", "3.1.0")])
def test_compatible_interpreter_versions_pass(triton_version, numpy_version):
    check_interpreter_versions(triton_version, numpy_version)


@pytest.mark.cpu_only
def test_untuned_autotuner_keeps_the_first_config_without_running_any_other():
    # Three configs left after pruning would be raced on a GPU. Untuned (here: the
    # interpreter), the autotuner must run the kernel exactly once, with the first config,
    # on any Triton: 3.6 and 3.7 time even a lone config, which needs a driver.
    assert not _common.AUTOTUNE_OPTIONS.get("cache_results")

    @triton.autotune(configs=CONFIGS, key=["n"], **_common.AUTOTUNE_OPTIONS)
    @triton.jit
    def add_block(X, n, BLOCK: tl.constexpr):
        offsets = tl.arange(0, 16)
        mask = offsets < n
        tl.store(X + offsets, tl.load(X + offsets, mask=mask) + BLOCK, mask=mask)

    x = torch.zeros(16)
    add_block[(1,)](x, 16)
    assert add_block.best_config.kwargs == {"BLOCK": 4}
    assert torch.equal(x, torch.full((16,), 4.0)), x  # one run: no timing pass added into x
