#!/usr/bin/env bash
# Installs, then starts the Dagster UI on http://127.0.0.1:3000 analysing $PHOTO_ASSETS_LIBRARY (default: a demo
# library built from scikit-image's sample photos), and beside it the review pages (people, find, places,
# duplicates) on http://127.0.0.1:3001 (stopped when the Dagster UI stops). State: SQLite under dagster_home/,
# results under data/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/dagster_home}"
if [ -z "${PHOTO_ASSETS_LIBRARY:-}" ]; then
    .venv/bin/python -m photo_assets.demo
    # Ten demo photos never fill a batch of 500: cut it at once instead of after the usual 10-minute wait.
    export PHOTO_ASSETS_BATCH_WAIT_SECONDS="${PHOTO_ASSETS_BATCH_WAIT_SECONDS:-0}"
fi
DAGSTER_HOST="${DAGSTER_HOST:-127.0.0.1}"
DAGSTER_PORT="${DAGSTER_PORT:-3000}"
REVIEW_HOST="${REVIEW_HOST:-127.0.0.1}"
REVIEW_PORT="${REVIEW_PORT:-3001}"
shown_host="$REVIEW_HOST"; [[ "$shown_host" == *:* ]] && shown_host="[$shown_host]"
export PHOTO_ASSETS_REVIEW_URL="http://$shown_host:$REVIEW_PORT/"  # person_clusters links to it in the Dagster UI
.venv/bin/photo-assets review --host "$REVIEW_HOST" --port "$REVIEW_PORT" &
review_pid=$!
trap 'kill "$review_pid" 2>/dev/null || true' EXIT
echo "Dagster UI:     http://$DAGSTER_HOST:$DAGSTER_PORT"
echo "People review:  $PHOTO_ASSETS_REVIEW_URL"
.venv/bin/dagster dev --host "$DAGSTER_HOST" --port "$DAGSTER_PORT"
