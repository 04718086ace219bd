#!/usr/bin/env bash
# Run the whole test suite. Installs what it needs first: the project with its dev extra,
# Debian's Chromium (browser tests; when root), torch (the local CPU wheel) and routellm.
# Uses DATABASE_URL / REDIS_URL when set, else the embedded PostgreSQL and Redis.
# Extra arguments go to pytest. `scripts/test.sh --install-only` only installs.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/_bootstrap.sh"

install_only=0
if [ "${1:-}" = "--install-only" ]; then
    install_only=1
    shift
fi

ensure_installed dev

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "routeplane: installing Debian's chromium for the browser tests"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
            >/dev/null
    else
        echo "routeplane: chromium not found and cannot install it; browser tests will skip" >&2
    fi
fi

# torch first, pinned, so pip takes the local CPU wheel rather than a multi-GB CUDA build.
if ! .venv/bin/python -c 'import torch' >/dev/null 2>&1; then
    echo "routeplane: pip install torch==2.13.0"
    .venv/bin/python -m pip install -qq torch==2.13.0
fi
stamp=".venv/.routeplane-installed-router"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] ||
    ! .venv/bin/python -c 'import routellm' >/dev/null 2>&1; then
    echo "routeplane: pip install -e '.[router]'"
    .venv/bin/python -m pip install -qq -e '.[router]'
    echo "$wanted" >"$stamp"
fi

[ "$install_only" = 1 ] && exit 0

export DJANGO_SETTINGS_MODULE=config.settings
embedded_started=0
if [ -z "${DATABASE_URL:-}" ] || [ -z "${REDIS_URL:-}${CELERY_BROKER_URL:-}" ]; then
    if ! .venv/bin/python -m config.embedded status | grep -q "postgres: running"; then
        embedded_started=1
    fi
    echo "routeplane: DATABASE_URL/REDIS_URL unset: using the embedded servers" \
        "in ${ROUTEPLANE_DATA_DIR:-./var}"
    # Start them once here, so every test process (and the subprocesses tests start) joins.
    eval "$(.venv/bin/python -m config.embedded env)"
fi

status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$embedded_started" = 1 ]; then
    .venv/bin/python -m config.embedded stop >/dev/null || true
fi
if [ "$status" = 5 ]; then
    echo "routeplane: pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit "$status"
