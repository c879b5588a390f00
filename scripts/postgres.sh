#!/usr/bin/env bash
# A throwaway local PostgreSQL for trying the PostgreSQL backend and for the tests:
# installs Debian's postgresql when it is missing, runs a cluster of its own under
# target/pg (initdb refuses root, so the cluster belongs to the postgres user),
# listening on 127.0.0.1 only, with a role `app` (password `app`, may create
# databases) and a database `app` in the C.UTF-8 collation (text sorts by code
# point, as SQLite's does).
#
#   scripts/postgres.sh start   start it (or find it running); prints its URL
#   scripts/postgres.sh url     print the URL of the running cluster
#   scripts/postgres.sh stop    stop it
#
# PG_PORT picks the port (default 55432; when that one is taken, by another
# checkout's cluster say, the next free one, and the URL printed names it).
set -euo pipefail
cd "$(dirname "$0")/.."

port=${PG_PORT:-55432}
root=$(pwd)/target/pg
data=$root/data
log=$root/server.log

say() { echo "postgres: $*" >&2; }

bin_dir() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  [ -n "$found" ] && [ -x "$found/initdb" ] && echo "$found"
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

install() {
  [ -n "$(bin_dir)" ] && return
  say "installing Debian's postgresql (once)..."
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq postgresql >/dev/null
  [ -n "$(bin_dir)" ] || { say "postgresql did not install"; exit 1; }
}

running() {
  [ -f "$data/postmaster.pid" ] && as_postgres "$(bin_dir)/pg_ctl" -D "$data" status >/dev/null 2>&1
}

# A running cluster's URL names the port it listens on (line 4 of postmaster.pid),
# whatever PG_PORT says now.
running_url() {
  local listening
  listening=$(sed -n 4p "$data/postmaster.pid")
  echo "postgres://app:app@127.0.0.1:${listening:-$port}/app"
}

# True when something accepts connections on 127.0.0.1:$1.
taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The port to start on: PG_PORT as given (an error when it is taken), else the
# first free one from 55432.
free_port() {
  if [ -n "${PG_PORT:-}" ]; then
    if taken "$port"; then
      say "port $port (PG_PORT) is taken; choose another"
      exit 1
    fi
  else
    local tries=0
    while taken "$port"; do
      tries=$((tries + 1))
      [ "$tries" -le 50 ] || { say "no free port from 55432 to $port; set PG_PORT"; exit 1; }
      port=$((port + 1))
    done
  fi
}

start() {
  install
  local bin
  bin=$(bin_dir)
  if ! running; then
    free_port
    mkdir -p "$root"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres: "$root"
      # The postgres user must be able to reach target/pg.
      runuser -u postgres -- test -x "$root" || {
        say "the postgres user cannot reach $root; clone the project where other users can traverse its folders"
        exit 1
      }
    fi
    if [ ! -f "$data/PG_VERSION" ]; then
      # Passwords over TCP (so a wrong one is refused, as in production); the
      # administration below goes through the cluster's own socket.
      as_postgres "$bin/initdb" -D "$data" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 --locale=C.UTF-8 --encoding=UTF8 >/dev/null
    fi
    as_postgres "$bin/pg_ctl" -D "$data" -l "$log" -w -t 60 start \
      -o "-p $port -c listen_addresses=127.0.0.1 -k $root -c max_connections=300 -c fsync=on" >/dev/null
    as_postgres "$bin/psql" -h "$root" -p "$port" -U postgres -d postgres -qtA -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN
    CREATE ROLE app LOGIN CREATEDB PASSWORD 'app';
  END IF;
  -- DROP DATABASE ... WITH (FORCE) of a database autovacuum is working on (one
  -- just filled by a move, say) must end that worker, which takes this role.
  IF NOT pg_has_role('app', 'pg_signal_backend', 'member') THEN
    GRANT pg_signal_backend TO app;
  END IF;
END $$;
SQL
    if ! as_postgres "$bin/psql" -h "$root" -p "$port" -U postgres -d postgres -qtA \
         -c "SELECT 1 FROM pg_database WHERE datname = 'app'" | grep -q 1; then
      as_postgres "$bin/createdb" -h "$root" -p "$port" -U postgres -O app \
        --locale=C.UTF-8 --template=template0 app
    fi
  fi
  running_url
}

stop() {
  if [ -n "$(bin_dir)" ] && running; then
    as_postgres "$(bin_dir)/pg_ctl" -D "$data" -w -m fast stop >/dev/null
    say "stopped"
  fi
}

case "${1:-start}" in
  start) start ;;
  url) running && running_url || { say "not running; scripts/postgres.sh start"; exit 1; } ;;
  stop) stop ;;
  *) echo "usage: $0 start|url|stop" >&2; exit 2 ;;
esac
