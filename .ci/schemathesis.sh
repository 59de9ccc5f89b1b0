#!/usr/bin/env bash
# API fuzzing: Schemathesis against the served OpenAPI schema (/api/schema/),
# authenticated, in three phases (examples, coverage, fuzzing), bounded in time.
# Checks: no 500s, responses and status codes match the schema, and operations
# that declare authentication refuse requests without credentials.
#
#   .ci/schemathesis.sh            (needs PostgreSQL; DATABASE_URL's server is used)
#
# It runs on a database of its own (seeded by seed_demo) and a gunicorn on a
# free loopback port, once as the admin (reaches nearly everything) and once
# as the engine's service account (its own contract), then stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER="${SCHEMATHESIS_PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
DB="${SCHEMATHESIS_DB:-contentapp_schemathesis}"
PORT="${SCHEMATHESIS_PORT:-8799}"
BUDGET="${SCHEMATHESIS_MAX_TIME:-20}"     # seconds per run (CI must stay under 30 minutes)
EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-15}"
PY=.venv/bin/python

psql "$SERVER/postgres" -q -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
export DATABASE_URL="$SERVER/$DB" DJANGO_SETTINGS_MODULE=contentapp.settings LOG_LEVEL=ERROR
# With Redis, training requests are queued (nobody consumes this database's
# queue); without it Celery is eager and a training run would block the request.
EXCLUDE_TRAIN=()
if [ -n "${REDIS_URL:-}" ]; then
    export REDIS_URL="${REDIS_URL%/*}/9"
else
    EXCLUDE_TRAIN=(--exclude-path /api/v1/affinity/train)
fi
export LOGIN_THROTTLE_RATE=10000/min  # fuzzing the token endpoint must not trip the throttle
export ENGINE_THROTTLE_RATE=1000000/min  # nor may fuzzing as one token trip its throttle
$PY manage.py migrate --noinput -v 0
$PY manage.py seed_demo > /dev/null
# Without --scope a token is unrestricted: the engine token has every engine scope.
token() { $PY manage.py issue_api_token "$1" --name schemathesis 2>/dev/null; }
ADMIN_TOKEN=$(token admin)
ENGINE_TOKEN=$(token engine)
# The server's own log (every 4xx it answers) goes to a file, shown only on failure.
SERVER_LOG="$(mktemp -t schemathesis-server.XXXXXX.log)"

.venv/bin/gunicorn contentapp.wsgi:application --bind "127.0.0.1:$PORT" --workers 2 \
    --log-level warning > "$SERVER_LOG" 2>&1 &
GUNICORN=$!
stop_server() {
    local rc=$?
    kill "$GUNICORN" 2>/dev/null || true
    wait "$GUNICORN" 2>/dev/null || true
    if [ "$rc" -ne 0 ]; then
        echo "==> the server's log (last 80 lines of $SERVER_LOG)"
        tail -n 80 "$SERVER_LOG"
    fi
}
trap stop_server EXIT
for _ in $(seq 1 60); do
    curl -fs -o /dev/null "http://127.0.0.1:$PORT/api/schema/" && break
    sleep 1
done

# One worker: with two threads, CPython 3.11's ast.parse (called by Hypothesis to
# describe filter lambdas) races on its recursion counter and raises
# "SystemError: AST constructor recursion depth mismatch" inside the fuzzer.
run() {  # run <token> <extra args...>
    local token=$1
    shift
    .venv/bin/st run "http://127.0.0.1:$PORT/api/schema/" \
        --header "Authorization: Token $token" \
        --phases examples,coverage,fuzzing \
        --checks not_a_server_error,response_schema_conformance,status_code_conformance,ignored_auth \
        --max-examples "$EXAMPLES" --max-time "$BUDGET" --request-timeout 60 \
        --generation-deterministic --workers 1 --no-color \
        --exclude-path /api/v1/auth/token --exclude-method DELETE \
        "${EXCLUDE_TRAIN[@]}" "$@"
}

echo "==> schemathesis as admin"
run "$ADMIN_TOKEN"
echo "==> schemathesis as the engine's service account"
run "$ENGINE_TOKEN" --include-path-regex '^/api/v1/(content|recommendations|hcps|events|affinity|ping)'
