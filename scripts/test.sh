#!/usr/bin/env bash
# Installs, then runs the whole test suite (real files, real models, real Dagster). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
