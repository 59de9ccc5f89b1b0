#!/usr/bin/env bash
# The two commands of the README:
#   ./dev.sh start   venv + install + migrate + demo data, then serve http://127.0.0.1:8000
#   ./dev.sh test    venv + install, then the whole test suite
# Other verbs: setup (venv and install only), lint (ruff, migrations, schema).
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
    want="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "==> installing requirements (first run takes a few minutes)"
        "$PY" -m pip install --quiet --upgrade pip
        "$PY" -m pip install --quiet -r requirements-dev.txt
        echo "$want" > "$stamp"
    fi
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
    lint)
        setup
        "$VENV/bin/ruff" check .
        "$VENV/bin/ruff" format --check .
        "$PY" manage.py makemigrations --check --dry-run
        "$PY" manage.py spectacular --validate --fail-on-warn --file /dev/null
        ;;
    *)
        echo "usage: ./dev.sh start | test [pytest args] | setup | lint" >&2
        exit 2
        ;;
esac
