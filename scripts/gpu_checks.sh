#!/usr/bin/env bash
# The checks that need a CUDA GPU (CI has none), in one run; logs go to LOG_DIR.
#  suite:    the whole test suite with compiled kernels on the GPU (TRITONSYM_TEST_DEVICE=cuda),
#            autotuning off (TRITONSYM_AUTOTUNE=0: one config per kernel, so the workers compile
#            instead of racing configs against each other on one GPU);
#  memcheck: compute-sanitizer memcheck over every kernel test: irregular sizes, every dtype,
#            strided and accumulating variants, one tile config per kernel so that the checker
#            sees each launch once, not autotuning's repeats. Zero errors is the pass mark;
#  autotune: the files that need the autotuner racing for real (AUTOTUNE_TESTS): each autotuned
#            kernel tuned on the GPU, in place, accumulating or plain, against the config it chose.
# Usage: scripts/gpu_checks.sh [LOG_DIR] [suite|memcheck|autotune|all]   (default all)
#   JOBS=N pytest workers for the suite (default 8); SUITE_TIMEOUT / SANITIZER_TIMEOUT in
#   seconds (default 900 each); MEMCHECK_TESTS: the test files memcheck runs (default every
#   tests/test_kernels_*.py), to split the sanitizer pass over calls of a limited length.
#   REHEARSE=1: on a CPU, each part only collects its tests (in Triton's interpreter, no
#   sanitizer): what CI runs to prove every part imports (scripts/device_session.py --rehearse).
#   PYTHON: the interpreter (default python3); the checkout is put first on PYTHONPATH.
set -uo pipefail
out=${1:-gpu-logs}
part=${2:-all}
case "$part" in suite|memcheck|autotune|all) ;;
    *) echo "unknown part '$part': expected suite, memcheck, autotune or all" >&2; exit 2;; esac
mkdir -p "$out"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
export PYTHONUNBUFFERED=1 PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
autotune_tests=${AUTOTUNE_TESTS:-tests/test_autotune_restore.py tests/test_kernels_fc_tma.py}
status=0
if [ "${REHEARSE:-0}" = 1 ]; then
    export TRITONSYM_TEST_DEVICE=cpu
    collect=(--collect-only)
    sanitizer=()
else
    export TRITONSYM_TEST_DEVICE=cuda
    collect=()
    sanitizer=(compute-sanitizer --tool memcheck --error-exitcode 99 --print-limit 50)
fi

if [ "$part" = suite ] || [ "$part" = all ]; then
echo "== suite on the GPU (autotuning off)"
workers=()
if [ ${#collect[@]} -eq 0 ] && "$python" -c "import xdist" 2>/dev/null; then workers=(-n "${JOBS:-8}");
else echo "(one pytest worker)"; fi
TRITONSYM_AUTOTUNE=${TRITONSYM_AUTOTUNE:-0} timeout "${SUITE_TIMEOUT:-900}" "$python" -m pytest -v --tb=short -rfE \
    ${workers[@]+"${workers[@]}"} ${collect[@]+"${collect[@]}"} -m "not slow" -p no:cacheprovider 2>&1 \
    | tee "$out/suite.log" | grep -E "FAILED|ERROR|passed|failed|collected|no tests ran" | tail -60
[ "${PIPESTATUS[0]}" = 0 ] || status=1
fi

if [ "$part" = autotune ] || [ "$part" = all ]; then
echo "== the autotuned kernels, tuned for real"
# shellcheck disable=SC2086  # autotune_tests is a list of paths
TRITONSYM_AUTOTUNE=1 timeout "${SUITE_TIMEOUT:-900}" "$python" -m pytest -v --tb=short -rfE \
    ${collect[@]+"${collect[@]}"} -p no:cacheprovider $autotune_tests 2>&1 \
    | tee "$out/autotune.log" | grep -E "FAILED|ERROR|passed|failed|collected|no tests ran" | tail -30
[ "${PIPESTATUS[0]}" = 0 ] || status=1
fi

if [ "$part" = memcheck ] || [ "$part" = all ]; then
echo "== compute-sanitizer memcheck over the kernel tests"
# shellcheck disable=SC2086  # MEMCHECK_TESTS is a list of paths
TRITONSYM_AUTOTUNE=0 timeout "${SANITIZER_TIMEOUT:-900}" ${sanitizer[@]+"${sanitizer[@]}"} \
    "$python" -m pytest -q -p no:cacheprovider ${collect[@]+"${collect[@]}"} \
    ${MEMCHECK_TESTS:-tests/test_kernels_*.py} 2>&1 | tee "$out/memcheck.log" | tail -25
[ "${PIPESTATUS[0]}" = 0 ] || status=1
grep -E "ERROR SUMMARY|passed|failed|collected" "$out/memcheck.log" | tail -3
fi
exit $status
