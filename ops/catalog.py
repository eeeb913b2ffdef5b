"""Every kernel module's representative launches, in one place: what is compiled for a GPU
without one (``tests/compile_for_gpu.py``), what the static kernel report reads
(``perf/kernel_report.py``), which tests the mutation check runs per file
(``scripts/mutation_check.py``), and a test that no ``@triton.jit`` kernel of ``ops/`` is
left out of them (``tests/test_kernel_catalog.py``).

A kernels module declares ``representative_launches(dtype, large=False)`` (one launch of
each of its kernels and compile-time variants, on irregular shapes or, with ``large``, at a
size worth reading for performance) and ``TESTS`` (the test files that exercise it). A new
kernels module is added to ``KERNEL_MODULES`` below, and nothing else needs editing.
"""

from __future__ import annotations

from types import ModuleType

import torch

from . import (
    activation,
    adaptive_pooling,
    all_finite,
    arange,
    arg_reduce,
    attention,
    batch_dot,
    batch_norm,
    bilinear_resize,
    bilinear_sampler,
    bipartite_matching,
    box_decode,
    box_encode,
    box_iou,
    box_nms,
    cache_write,
    convolution,
    cross_entropy,
    ctc_loss,
    cumsum,
    deconvolution,
    deformable_convolution,
    dropout,
    elementwise,
    embedding,
    flip,
    fully_connected,
    gated_activation,
    gather_nd,
    grad_norm,
    grid_generator,
    group_norm,
    im2col,
    index_array,
    index_copy,
    khatri_rao,
    l2_normalization,
    layer_norm,
    linalg_cholesky,
    linalg_eigen,
    linalg_householder,
    linalg_lu,
    linalg_solve,
    linalg_sumlogdiag,
    linalg_triangle,
    lrn,
    make_loss,
    memory,
    moments,
    multibox_detection,
    multibox_prior,
    multibox_target,
    multinomial,
    one_hot,
    optimizer,
    pad,
    pick,
    pooling,
    prelu,
    psroi_pooling,
    quadratic,
    ravel,
    reduce,
    regression_output,
    rnn,
    roi_align,
    roi_pooling,
    rotary,
    rrelu,
    sampling,
    select,
    sequence_index,
    sequence_mask,
    softmax,
    softmax_output,
    sort,
    svm_output,
    take,
    upsampling,
)
from ._common import FLOAT_DTYPES, Launch

KERNEL_MODULES: tuple[ModuleType, ...] = (activation, adaptive_pooling, all_finite, arange, arg_reduce, attention,
                                          batch_dot, batch_norm, bilinear_resize, bilinear_sampler, bipartite_matching,
                                          box_decode, box_encode, box_iou, box_nms, cache_write, convolution,
                                          cross_entropy, ctc_loss, cumsum, deconvolution, deformable_convolution,
                                          dropout, elementwise, embedding, flip, fully_connected, gated_activation,
                                          gather_nd, grad_norm, grid_generator, group_norm, im2col, index_array,
                                          index_copy, khatri_rao, l2_normalization, layer_norm, linalg_cholesky,
                                          linalg_eigen, linalg_householder, linalg_lu, linalg_solve, linalg_sumlogdiag,
                                          linalg_triangle, lrn, make_loss, memory, moments, multibox_detection,
                                          multibox_prior, multibox_target, multinomial, one_hot, optimizer, pad, pick,
                                          pooling, prelu, psroi_pooling, quadratic, ravel, reduce, regression_output,
                                          rnn, roi_align, roi_pooling, rotary, rrelu, sampling, select, sequence_index,
                                          sequence_mask, softmax, softmax_output, sort, svm_output, take, upsampling)
# ops/_common.py holds helpers every kernels module compiles in: its tests are its users'.
COMMON_TESTS = ("tests/test_kernels_common.py", "tests/test_kernels_memory.py", "tests/test_kernels_activation.py",
                "tests/test_kernels_optimizer.py")


def module_name(module: ModuleType) -> str:
    return module.__name__.rsplit(".", 1)[-1]


def representative_launches(dtypes=FLOAT_DTYPES, large: bool = False,
                            modules=KERNEL_MODULES) -> list[tuple[str, torch.dtype, Launch]]:
    """``(what, dtype, launch)`` over ``modules`` and ``dtypes``: planned on CPU tensors, so
    they compile (``ops.aot``) or are inspected, never run."""
    return [(f"{module_name(m)}: {what}", dtype, launch) for m in modules for dtype in dtypes
            for what, launch in m.representative_launches(dtype, large)]


def tests_by_file() -> dict[str, list[str]]:
    """``ops/<module>.py`` -> the test files that exercise its kernels."""
    files = {f"ops/{module_name(m)}.py": list(m.TESTS) for m in KERNEL_MODULES}
    files["ops/_common.py"] = list(COMMON_TESTS)
    return files
