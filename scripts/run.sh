#!/usr/bin/env bash
# Run Routeplane locally: web (uvicorn, 2 workers), Celery worker and beat, the demo data.
# With DATABASE_URL / REDIS_URL unset it uses an embedded PostgreSQL and Redis under
# ROUTEPLANE_DATA_DIR (default ./var). PORT (default 8000). Ctrl-C stops everything.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/_bootstrap.sh"
ensure_installed dev
export DEBUG="${DEBUG:-1}"
# exec: signals (Ctrl-C, SIGTERM) go straight to the supervisor, which stops the rest.
exec .venv/bin/python -m config.run "$@"
