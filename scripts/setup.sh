#!/usr/bin/env bash
# Installs photo_assets into .venv/ from the hash-pinned lock and fetches the model weights. Idempotent: a second
# run checks everything and installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.8

if [ ! -x .venv/bin/python ]; then
    PYTHON=$(command -v python3.11 || command -v python3)
    "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "photo_assets needs Python 3.11"'
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
# The lock is complete (every transitive dependency, with hashes), so nothing is resolved at install time.
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps --require-hashes -r requirements.lock
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
.venv/bin/python -m photo_assets.models fetch
