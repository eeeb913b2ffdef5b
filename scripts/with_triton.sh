#!/usr/bin/env bash
# Run a command with another Triton release, in a venv of its own, on this checkout.
# The GPU machine runs Triton 3.6 while CI and development use the newest release: CI
# runs the whole suite (interpreter) and compiles every kernel for sm_90 with 3.6 too,
# which catches code that only one release runs or compiles, without a GPU.
#
#     scripts/with_triton.sh 3.6.0 python -m pytest -q
#     scripts/with_triton.sh 3.6.0 python tests/compile_for_gpu.py
#
# TRITON_VENV=DIR picks the venv (default: $TMPDIR/tritonsym-triton-VERSION).
set -euo pipefail
version="${1:?usage: scripts/with_triton.sh TRITON_VERSION COMMAND [ARGS...]}"
shift
[ $# -gt 0 ] || { echo "usage: scripts/with_triton.sh TRITON_VERSION COMMAND [ARGS...]" >&2; exit 2; }
venv="${TRITON_VENV:-${TMPDIR:-/tmp}/tritonsym-triton-$version}"
cd "$(dirname "$0")/.."
[ -x "$venv/bin/python" ] || python -m venv "$venv"
# Triton's interpreter before 3.7 cannot run with NumPy 2.4 (tritonsym.ops._mode says so).
numpy="numpy"
if "$venv/bin/python" -c "import sys; sys.exit(tuple(map(int, '$version'.split('.')[:2])) >= (3, 7))"; then
    numpy="numpy<2.4"
fi
# The CPU build of torch (a plain "torch" would pull CUDA); tritonsym runs from the checkout.
"$venv/bin/python" -m pip install --quiet torch==2.13.0 "triton==$version" "$numpy" safetensors tqdm pytest pytest-xdist hypothesis
"$venv/bin/python" -c "import triton; assert triton.__version__ == '$version', triton.__version__"
PATH="$venv/bin:$PATH" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$@"
