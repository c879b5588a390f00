#!/usr/bin/env bash
# The tests that run on PostgreSQL: starts the local cluster of scripts/postgres.sh
# (installing PostgreSQL when it is missing), runs the domain tests, the db
# crate's backend tests, the API tests, the studio's tests and the end-to-end tests of the binaries
# against it with TEST_DATABASE_URL set (each test makes a schema or a database
# of its own), and stops the cluster again unless it was already running.
set -euo pipefail
cd "$(dirname "$0")/.."

was_running=no
scripts/postgres.sh url >/dev/null 2>&1 && was_running=yes
url=$(scripts/postgres.sh start)
if [ "$was_running" = no ]; then
  trap 'scripts/postgres.sh stop' EXIT
fi

export TEST_DATABASE_URL=$url
echo "PostgreSQL tests on $url"
cargo test -p domain --lib
cargo test -p db --test backends
cargo test -p web --test api
cargo test -p studio --test studio
cargo build --workspace --bins
cargo test -p end-to-end --test postgres
cargo test -p end-to-end --test move
# The crash and retry suites' PostgreSQL cases (the others are SQLite's, run by make test).
cargo test -p end-to-end --test crash --test retries on_postgres
