#!/usr/bin/env bash
# Regenerates (write) or checks (check) crates/domain/src/schema.rs with the diesel
# CLI, from a scratch database built by the migrations. `check` fails when a
# migration changed the schema and schema.rs was not regenerated.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-check}

if ! command -v diesel >/dev/null; then
  echo "installing diesel CLI (once)..."
  cargo install --locked diesel_cli --version '~2.3' --no-default-features --features sqlite-bundled
fi

run() {   # run <project dir> <mode>: exit status of the diesel CLI
  local project=$1 scratch status=0 flags=()
  scratch=$(mktemp -d)
  [ "$2" = check ] && flags=(--locked-schema)
  (cd "$project" && diesel migration run "${flags[@]}" --database-url "$scratch/schema.db" >/dev/null) || status=$?
  rm -rf "$scratch"
  return $status
}

self_test() {
  # A check that cannot fail proves nothing: change a column in a copy and expect
  # the check to refuse it.
  local copy status=0
  copy=$(mktemp -d)
  mkdir -p "$copy/migrations"
  cp -r diesel.toml "$copy"/
  cp -r migrations/sqlite "$copy/migrations/"
  mkdir -p "$copy/crates/domain/src"
  cp crates/domain/src/schema.rs crates/domain/src/schema.patch "$copy/crates/domain/src/"
  mkdir "$copy/migrations/sqlite/2999-01-01-000000_drift"
  echo 'ALTER TABLE posts ADD COLUMN drift text;' > "$copy/migrations/sqlite/2999-01-01-000000_drift/up.sql"
  echo 'ALTER TABLE posts DROP COLUMN drift;' > "$copy/migrations/sqlite/2999-01-01-000000_drift/down.sql"
  run "$copy" check 2>/dev/null || status=$?
  rm -rf "$copy"
  if [ $status -eq 0 ]; then
    echo "schema check self-test: a changed column went unnoticed" >&2
    return 1
  fi
}

case $mode in
  write) run . write && echo "regenerated crates/domain/src/schema.rs" ;;
  check)
    if ! run . check; then
      echo "schema.rs is stale: a migration changed the schema; run 'make schema' and commit" >&2
      exit 1
    fi
    self_test
    echo "schema.rs matches the migrations"
    ;;
  *) echo "usage: $0 write|check" >&2; exit 2 ;;
esac
