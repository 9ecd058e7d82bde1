#!/usr/bin/env bash
# Installs the services the end-to-end tests use, from Debian's packages, when they are missing: the PostgreSQL 15
# server (tests/orchestration/test_postgres.py starts a throwaway cluster with it), Chromium
# (tests/orchestration/test_ui.py drives it headless), exiftool (tests/xmp/test_xmp.py reads the XMP sidecars back
# with it) and the Redis server (tests/orchestration/test_celery.py starts one as the Celery broker). Idempotent: when
# all are present it checks four files and installs nothing.
set -euo pipefail

POSTGRES_INITDB=/usr/lib/postgresql/15/bin/initdb
CHROMIUM=/usr/bin/chromium
EXIFTOOL=/usr/bin/exiftool
REDIS_SERVER=/usr/bin/redis-server

missing=()
[ -x "$POSTGRES_INITDB" ] || missing+=(postgresql-15)
[ -x "$CHROMIUM" ] || missing+=(chromium)
[ -x "$EXIFTOOL" ] || missing+=(libimage-exiftool-perl)
[ -x "$REDIS_SERVER" ] || missing+=(redis-server)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

# Root on CI and the developers' machines; sudo elsewhere.
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive
echo "installing ${missing[*]} from Debian's packages" >&2
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
# The package creates and starts a default cluster on port 5432; the tests start their own, so it is not needed.
if [[ " ${missing[*]} " == *" postgresql-15 "* ]] && command -v pg_ctlcluster >/dev/null; then
    "${SUDO[@]}" pg_ctlcluster 15 main stop 2>/dev/null || true
fi
# Likewise the Redis package starts a default server on port 6379: the tests start their own on a free port.
if [[ " ${missing[*]} " == *" redis-server "* ]]; then
    "${SUDO[@]}" service redis-server stop >/dev/null 2>&1 || true
fi
