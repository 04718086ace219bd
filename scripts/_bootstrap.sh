# Sourced by run.sh and test.sh: a .venv with the project installed, at the repo root.
# Re-installs only when pyproject.toml changed since the last install (a stamp in .venv).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

_find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "routeplane: Python 3.11+ is required (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

# ensure_installed EXTRAS: e.g. "dev" -> pip install -e '.[dev]'
ensure_installed() {
    local extras="$1" python stamp wanted
    if [ ! -x .venv/bin/python ]; then
        python="$(_find_python)"
        echo "routeplane: creating .venv with $python"
        "$python" -m venv .venv
    fi
    stamp=".venv/.routeplane-installed-${extras:-base}"
    wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
        echo "routeplane: pip install -e '.[${extras}]' (first run or pyproject.toml changed)"
        .venv/bin/python -m pip install -qq --upgrade pip >/dev/null 2>&1 || true
        .venv/bin/python -m pip install -qq -e ".[${extras}]"
        echo "$wanted" >"$stamp"
    fi
}
