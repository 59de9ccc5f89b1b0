#!/usr/bin/env bash
# The two commands of the README:
#   ./dev.sh start   venv + install + migrate + demo data, then serve http://127.0.0.1:8000
#   ./dev.sh test    venv + install, then the whole test suite
# Other verbs: setup (venv and install from requirements.lock, hashes checked),
# lint (dependency audit, ruff, migrations, schema), lock (regenerate requirements.lock).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"

setup() {
    if [ ! -x "$PY" ]; then
        echo "==> creating virtual environment in $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.requirements.sha256"
    local want
    want="$(cat requirements.lock | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "==> installing requirements.lock (first run takes a few minutes)"
        # Every file pip takes (torch's local wheel too) must match a hash in the lock;
        # pip itself is not upgraded first: that download would be the one unchecked.
        "$PY" -m pip install --quiet --require-hashes -r requirements.lock
        echo "$want" > "$stamp"
    fi
}

# requirements.lock: every package of requirements-dev.txt (which includes
# requirements.txt) and their dependencies, pinned with the sha256 of each file.
lock() {
    local tools
    tools="$(mktemp -d)"
    "$PYTHON" -m venv "$tools"
    "$tools/bin/pip" install --quiet pip-tools==7.6.2
    "$tools/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --no-strip-extras \
        --no-emit-index-url --no-emit-find-links -o requirements.lock requirements-dev.txt
    rm -rf "$tools"
}

case "${1:-}" in
    setup)
        setup
        ;;
    start)
        setup
        "$PY" manage.py migrate --noinput
        "$PY" manage.py seed_demo
        echo "==> serving http://127.0.0.1:8000  (Ctrl-C stops)"
        exec "$PY" manage.py runserver 127.0.0.1:8000
        ;;
    test)
        setup
        shift
        set +e
        "$PY" -m pytest "$@"
        rc=$?
        set -e
        # pytest's 5 means "no tests collected": that is a failure here, never a pass.
        exit $rc
        ;;
    lock)
        lock
        ;;
    lint)
        setup
        # Offline: the lock is complete and hashed, and no pin has a known advisory.
        "$PY" tools/dependency_audit.py
        "$VENV/bin/ruff" check .
        "$VENV/bin/ruff" format --check .
        # Types: mypy with the Django and DRF stubs ([tool.mypy] in pyproject.toml).
        "$VENV/bin/mypy"
        "$PY" manage.py makemigrations --check --dry-run
        "$PY" manage.py spectacular --validate --fail-on-warn --file /dev/null
        ;;
    *)
        echo "usage: ./dev.sh start | test [pytest args] | setup | lint | lock" >&2
        exit 2
        ;;
esac
