#!/usr/bin/env bash
# Property-based fuzzing of the running binary from its own OpenAPI document:
# zero 5xx, zero responses that break the document, and every request the
# document calls valid accepted (`positive_data_acceptance`). Installs schemathesis
# from PyPI into target/ on first use. Bounded: ST_EXAMPLES examples per operation.
set -euo pipefail
cd "$(dirname "$0")/.."

examples=${ST_EXAMPLES:-40}
venv=target/st-venv
if [ ! -x "$venv/bin/st" ]; then
  echo "installing schemathesis into $venv (once)..."
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'schemathesis>=4.32,<5'
fi

profile_dir=target/debug
[ -x "$profile_dir/web" ] && [ -x "$profile_dir/seed" ] || cargo build -q -p web -p seed

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="schemathesis-admin-token-0123456789"
export DATABASE_URL="$work/app.db" BACKUP_DIR="$work/backups" ADMIN_TOKEN="$token" \
       BIND="127.0.0.1:$port" RUST_LOG=warn
(cd "$work" && "$OLDPWD/$profile_dir/web" migrate >/dev/null && "$OLDPWD/$profile_dir/seed" --demo 5 50 >/dev/null)
(cd "$work" && exec "$OLDPWD/$profile_dir/web" serve) 2>"$work/server.log" &
server=$!
python3 - "$port" <<'PY'
import sys, time, urllib.request
for _ in range(200):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/ready", timeout=1)
        break
    except OSError:
        time.sleep(0.05)
else:
    sys.exit("the server did not become ready")
PY

# `positive_data_acceptance` holds the document to what the server enforces. A
# valid request may still be refused for what no schema can say, so in the
# requests generated as valid (only those: invalid ones still fuzz these inputs)
# this hook puts values from the running server:
#   - `cursor` is opaque: a made-up one is 400. Each list gets one it issued
#     (GET /posts with `q`, one of a search).
#   - `authorId` of POST /posts names a row: an unknown user is 422. It becomes
#     the admin's id (absent or null, the caller, stays as generated).
#   - `expiresAt` of POST /users/{id}/tokens must be in the future, else 422.
#     Any other time becomes one in the future.
#   - `Idempotency-Key` replays its first request's answer; reused for another
#     body it is 422. A valid request that sends one gets a key of its own.
# Path ids of rows that do not exist are 404, which the check allows. A hook
# rather than the config file's fixed `parameters`: the coverage phase ignores
# those for bodies, and they would replace the invalid inputs too.
cat >"$work/hooks.py" <<'PY'
import json, os, urllib.request, uuid
from datetime import datetime, timezone
import schemathesis

def call(method, path):
    request = urllib.request.Request(
        f"http://{os.environ['BIND']}{path}", method=method,
        headers={"Authorization": f"Bearer {os.environ['ADMIN_TOKEN']}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.load(reply)

ADMIN = call("GET", "/me")["id"]
call("POST", f"/users/{ADMIN}/tokens")  # a second token, so the list has a next page
CURSORS = {
    "GET /posts": call("GET", "/posts?limit=1")["nextCursor"],
    "GET /users": call("GET", "/users?limit=1")["nextCursor"],
    "GET /users/{id}/tokens": call("GET", f"/users/{ADMIN}/tokens?limit=1")["nextCursor"],
}
# With `q`, GET /posts pages by a search cursor (any q takes one).
CURSORS["GET /posts?q="] = call("GET", "/posts?q=a&limit=1")["nextCursor"]
assert all(CURSORS.values()), CURSORS
FUTURE = "2999-01-01T00:00:00Z"

def in_the_future(value):
    try:
        return datetime.fromisoformat(value) > datetime.now(timezone.utc)
    except (TypeError, ValueError):
        return False

@schemathesis.hook
def before_call(context, case, **kwargs):
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    operation = f"{case.method.upper()} {case.path}"
    if operation in CURSORS and isinstance(case.query, dict) and "cursor" in case.query:
        searching = operation == "GET /posts" and "q" in case.query
        case.query["cursor"] = CURSORS[operation + ("?q=" if searching else "")]
    body = case.body if isinstance(case.body, dict) else {}
    if operation == "POST /posts" and isinstance(body.get("authorId"), str):
        body["authorId"] = ADMIN
    expires_at = body.get("expiresAt")
    if operation == "POST /users/{id}/tokens" and expires_at and not in_the_future(expires_at):
        body["expiresAt"] = FUTURE
    headers = case.headers if case.headers is not None else {}
    for name in list(headers.keys()):
        if name.lower() == "idempotency-key":
            headers[name] = str(uuid.uuid4())
PY

# Authenticated as the admin, every operation is reachable; anonymous and
# user-level access are covered by the permission-matrix tests. One worker: with
# two, hypothesis parses lambdas' source in both threads at once, which CPython
# 3.11 can fail ("SystemError: AST constructor recursion depth mismatch").
status=0
SCHEMATHESIS_HOOKS="$work/hooks.py" "$venv/bin/st" run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,positive_data_acceptance \
  --header "Authorization: Bearer $token" \
  --max-examples "$examples" \
  --seed 20261126 \
  --generation-deterministic \
  --generation-with-security-parameters false \
  --workers 1 \
  --request-timeout 10 \
  --no-color \
  --phases examples,coverage,fuzzing || status=$?

if grep -q "panicked" "$work/server.log"; then
  echo "the server panicked during fuzzing:" >&2
  grep -m5 "panicked" "$work/server.log" >&2
  status=1
fi
if [ $status -ne 0 ]; then
  echo "schemathesis found problems (server log: last lines below)" >&2
  tail -20 "$work/server.log" >&2
fi
exit $status
