#!/usr/bin/env bash
# The checks that need a CUDA GPU (CI has none), in one run; logs go to LOG_DIR.
#  1. the whole test suite with compiled kernels on the GPU (TRITONSYM_TEST_DEVICE=cuda);
#  2. compute-sanitizer memcheck over every kernel test: irregular sizes, every dtype,
#     strided and accumulating variants, with one tile config per kernel
#     (TRITONSYM_AUTOTUNE=0) so that the checker sees each launch once, not autotuning's
#     repeats. Zero errors is the pass mark.
# Usage: scripts/gpu_checks.sh [LOG_DIR]   (JOBS=N pytest workers, default 8)
set -uo pipefail
out=${1:-gpu-logs}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TRITONSYM_TEST_DEVICE=cuda
python=${PYTHON:-python3}
status=0

echo "== suite on the GPU"
timeout "${SUITE_TIMEOUT:-900}" "$python" -m pytest -v --tb=short -rfE -n "${JOBS:-8}" -m "not slow" \
    -p no:cacheprovider 2>&1 | tee "$out/suite.log" | grep -E "FAILED|ERROR|passed|failed" | tail -60 || status=1

echo "== compute-sanitizer memcheck over the kernel tests"
TRITONSYM_AUTOTUNE=0 timeout "${SANITIZER_TIMEOUT:-900}" compute-sanitizer --tool memcheck --error-exitcode 99 \
    --print-limit 50 "$python" -m pytest -q -p no:cacheprovider tests/test_kernels_*.py \
    2>&1 | tee "$out/memcheck.log" | tail -25 || status=1
grep -E "ERROR SUMMARY|passed|failed" "$out/memcheck.log" | tail -3
exit $status
