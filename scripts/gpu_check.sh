#!/usr/bin/env bash
# Checks a training machine in under 8 minutes and writes one JSON (path printed at the end):
# the device; 200 steps of stage init on data/sample with the loss falling; export and one
# SavedModel call; `python -m srgan_tf.bench --sections pipeline`; init and gan steps of both
# presets in float32, mixed_bfloat16 and mixed_float16, without and with --jit_compile.
# Without a GPU it runs on the CPU at small shapes and says so.
#   bash scripts/gpu_check.sh [--output gpu_check.json]
# Uses the project's environment (scripts/venv.sh: the active virtualenv, else .venv, made once);
# PYTHON=... runs an interpreter of your own instead, which must import srgan_tf.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  # shellcheck disable=SC1091
  . scripts/venv.sh serving || exit 1
  PYTHON=python
fi
if ! problem=$("$PYTHON" -c "import srgan_tf" 2>&1); then
  echo "error: $PYTHON cannot import srgan_tf (${problem##*$'\n'}): activate its environment or set PYTHON" >&2
  exit 1
fi
exec "$PYTHON" -m srgan_tf.gpu_check "$@"
