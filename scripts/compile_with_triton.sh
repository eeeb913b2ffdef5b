#!/usr/bin/env bash
# Compile every kernel variant for sm_90 with another Triton release, in its own venv.
# The GPU machine runs Triton 3.6 while CI and development use the newest release: this
# catches kernel code that only one of them compiles, without a GPU.
#
#     scripts/compile_with_triton.sh 3.6.0 [venv dir]
set -euo pipefail
version="${1:?usage: scripts/compile_with_triton.sh TRITON_VERSION [VENV_DIR]}"
venv="${2:-${TMPDIR:-/tmp}/tritonsym-triton-$version}"
cd "$(dirname "$0")/.."
[ -x "$venv/bin/python" ] || python -m venv "$venv"
# The CPU build of torch (a plain "torch" would pull CUDA); tritonsym runs from the checkout.
"$venv/bin/python" -m pip install --quiet torch==2.13.0 "triton==$version" numpy safetensors tqdm
"$venv/bin/python" -c "import triton; assert triton.__version__ == '$version', triton.__version__"
PYTHONPATH="$PWD" "$venv/bin/python" tests/compile_for_gpu.py
