#!/usr/bin/env bash
# Property-based fuzzing of the running binary from its own OpenAPI document:
# zero 5xx, zero responses that break the document. Installs schemathesis from
# PyPI into target/ on first use. Bounded: ST_EXAMPLES examples per operation.
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

# Authenticated as the admin, every operation is reachable; anonymous and
# user-level access are covered by the permission-matrix tests.
status=0
"$venv/bin/st" run "http://127.0.0.1:$port/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --header "Authorization: Bearer $token" \
  --max-examples "$examples" \
  --seed 20261126 \
  --generation-deterministic \
  --generation-with-security-parameters false \
  --workers 2 \
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
