#!/usr/bin/env bash
# Runs the default test suite in the project's virtualenv (created and filled on first use, see
# scripts/venv.sh) with the [test,serving] extras. Arguments go to pytest:
#   bash scripts/test.sh                          # the default suite (tests marked slow excluded)
#   bash scripts/test.sh tests/test_metrics.py -k psnr
#   bash scripts/test.sh -m slow                  # the slow tests
# Under CI=true a skipped test fails the run (tests/ci_skips.py); -rs prints every skip reason.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh test,serving || exit 1
exec python -m pytest -q -rs "$@"
