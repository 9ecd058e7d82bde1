#!/usr/bin/env bash
# Installs, then starts the Dagster UI on http://127.0.0.1:3000 analysing $PHOTO_ASSETS_LIBRARY (default: a demo
# library built from scikit-image's sample photos). State: SQLite under dagster_home/, results under data/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/dagster_home}"
if [ -z "${PHOTO_ASSETS_LIBRARY:-}" ]; then
    .venv/bin/python -m photo_assets.demo
    # Ten demo photos never fill a batch of 500: cut it at once instead of after the usual 10-minute wait.
    export PHOTO_ASSETS_BATCH_WAIT_SECONDS="${PHOTO_ASSETS_BATCH_WAIT_SECONDS:-0}"
fi
exec .venv/bin/dagster dev --host "${DAGSTER_HOST:-127.0.0.1}" --port "${DAGSTER_PORT:-3000}"
