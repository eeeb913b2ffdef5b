#!/usr/bin/env bash
# The checks that need a CUDA GPU (CI has none), in one run; logs go to LOG_DIR.
#  1. the whole test suite with compiled kernels on the GPU (TRITONSYM_TEST_DEVICE=cuda);
#  2. compute-sanitizer memcheck over every kernel test: irregular sizes, every dtype,
#     strided and accumulating variants, with one tile config per kernel
#     (TRITONSYM_AUTOTUNE=0) so that the checker sees each launch once, not autotuning's
#     repeats. Zero errors is the pass mark.
# Usage: scripts/gpu_checks.sh [LOG_DIR] [suite|memcheck|all]   (default all)
#   JOBS=N pytest workers for the suite (default 8); SUITE_TIMEOUT / SANITIZER_TIMEOUT in
#   seconds (default 900 each); MEMCHECK_TESTS: the test files memcheck runs (default every
#   tests/test_kernels_*.py), to split the sanitizer pass over calls of a limited length.
set -uo pipefail
out=${1:-gpu-logs}
part=${2:-all}
case "$part" in suite|memcheck|all) ;; *) echo "unknown part '$part': expected suite, memcheck or all" >&2; exit 2;; esac
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TRITONSYM_TEST_DEVICE=cuda
python=${PYTHON:-python3}
status=0

if [ "$part" != memcheck ]; then
echo "== suite on the GPU"
workers=()
if "$python" -c "import xdist" 2>/dev/null; then workers=(-n "${JOBS:-8}"); else echo "(no pytest-xdist: one worker)"; fi
timeout "${SUITE_TIMEOUT:-900}" "$python" -m pytest -v --tb=short -rfE ${workers[@]+"${workers[@]}"} -m "not slow" \
    -p no:cacheprovider 2>&1 | tee "$out/suite.log" | grep -E "FAILED|ERROR|passed|failed" | tail -60 || status=1
fi

if [ "$part" != suite ]; then
echo "== compute-sanitizer memcheck over the kernel tests"
# shellcheck disable=SC2086  # MEMCHECK_TESTS is a list of paths
TRITONSYM_AUTOTUNE=0 timeout "${SANITIZER_TIMEOUT:-900}" compute-sanitizer --tool memcheck --error-exitcode 99 \
    --print-limit 50 "$python" -m pytest -q -p no:cacheprovider ${MEMCHECK_TESTS:-tests/test_kernels_*.py} \
    2>&1 | tee "$out/memcheck.log" | tail -25 || status=1
grep -E "ERROR SUMMARY|passed|failed" "$out/memcheck.log" | tail -3
fi
exit $status
