#!/usr/bin/env bash
# Writes a new migration, the same version in migrations/sqlite and
# migrations/postgres, with its SQL taken from the difference between
# crates/domain/src/schema.rs and what the migrations build (diesel CLI's
# `migration generate --diff-schema`, as drizzle-kit generate does from its schema).
# Works on the project in the current folder; the name comes in MIGRATION_NAME,
# already checked by the Makefile.
#
# SQLite: the migrations are run on a scratch file and diffed against schema.rs
# with schema.patch taken back out (the patch widens Integer to BigInt for Rust;
# the SQL types are what the migrations declare).
# PostgreSQL: diffed on a scratch database of the local cluster (scripts/postgres.sh)
# when it runs, with a diesel CLI that has PostgreSQL support (built once into
# target/diesel-pg when the one at hand has none); otherwise the pair is left to
# write by hand, and the script says so.
# No difference: an empty pair to fill by hand, and the script says so.
# DIESEL names the diesel CLI to use (default: the one on PATH, else ~/.cargo/bin).
set -euo pipefail
name=${MIGRATION_NAME:?MIGRATION_NAME}
version=$(date -u +%Y-%m-%d-%H%M%S)
schema=crates/domain/src/schema.rs
patch_file=crates/domain/src/schema.patch
diesel=${DIESEL:-diesel}
command -v "$diesel" >/dev/null || diesel=$HOME/.cargo/bin/diesel
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# A diesel CLI that speaks PostgreSQL, printed: DIESEL's when it does, else one
# built once into the project's target/diesel-pg (libpq from Debian's libpq-dev).
postgres_diesel() {
  if "$diesel" --version | grep -q postgres; then echo "$diesel"; return; fi
  local root own
  root=$(cd "$(dirname "$0")/.." && pwd)
  own=$root/target/diesel-pg/bin/diesel
  if [ ! -x "$own" ]; then
    echo "installing a diesel CLI with PostgreSQL support into target/diesel-pg (once, a few minutes)..." >&2
    if ! dpkg -s libpq-dev >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=600 install -y libpq-dev >&2 || return 1
    fi
    cargo install -q --locked diesel_cli --version '~2.3' --no-default-features \
      --features postgres,sqlite-bundled --root "$root/target/diesel-pg" >&2 || return 1
  fi
  echo "$own"
}

# True when the file holds nothing but comments and blank lines.
empty_sql() { ! grep -Ev '^[[:space:]]*(--.*)?$' "$1" >/dev/null; }

# empty_pair <backend> <why>: the hand-written pair, with a header saying why.
empty_pair() {
  local dir=migrations/$1/${version}_$name
  mkdir -p "$dir"
  printf -- '-- %s (%s): up. %s\n' "$name" "$1" "$2" > "$dir/up.sql"
  printf -- '-- %s (%s): down, undoing up.sql exactly\n' "$name" "$1" > "$dir/down.sql"
}

# unpatch <schema.rs> <patched> <native>: schema.rs with each column the patch
# widened (patched says BigInt where native says Integer) set back to its SQL type,
# table by table, so that the widening is no difference; edited columns keep theirs.
unpatch() {
  python3 - "$@" <<'PY'
import re, sys
def columns(text):
    found, table = {}, None
    for line in text.splitlines():
        m = re.match(r"\s*(\w+) \([^)]*\) \{$", line)
        if m:
            table = m.group(1)
            continue
        m = re.match(r"\s*(\w+) -> (.+),$", line)
        if m and table:
            found[(table, m.group(1))] = m.group(2)
    return found
schema, patched, native = (open(p).read() for p in sys.argv[1:4])
widened = {k: (v, columns(native)[k]) for k, v in columns(patched).items()
           if columns(native).get(k) not in (None, v)}
table, out = None, []
for line in schema.splitlines():
    m = re.match(r"\s*(\w+) \([^)]*\) \{$", line)
    if m:
        table = m.group(1)
    m = re.match(r"(\s*)(\w+) -> (.+),$", line)
    if m and (table, m.group(2)) in widened and widened[(table, m.group(2))][0] == m.group(3):
        line = f"{m.group(1)}{m.group(2)} -> {widened[(table, m.group(2))][1]},"
    out.append(line)
print("\n".join(out))
PY
}

# Diesel's SQL with its blank lines folded: none first or last, one between.
tidy() { cat -s | awk 'NF { if (seen && gap) print ""; print; seen = 1; gap = 0; next } { gap = 1 }'; }

# generated <backend> <database url> <schema.rs to diff>: diesel writes the pair;
# prints what it wrote, or leaves an empty pair when there is no difference.
generated() {
  local backend=$1 url=$2 wanted=$3 out=$scratch/out-$1 dir
  mkdir -p "$out"
  "$diesel" migration generate --config-file "$scratch/diesel.toml" --diff-schema="$wanted" --sqlite-integer-primary-key-is-bigint \
    --database-url "$url" --migration-dir "$out" --version "$version" "$name" >/dev/null
  dir=$out/${version}_$name
  if empty_sql "$dir/up.sql"; then
    empty_pair "$backend" "schema.rs and the migrations do not differ: write the SQL by hand"
    echo "$backend: no difference between $schema and the migrations; wrote an empty pair to fill by hand"
    return
  fi
  mkdir -p "migrations/$backend"
  {
    printf -- '-- %s (%s): up, generated from the difference with schema.rs; check it.\n' "$name" "$backend"
    grep -Ev '^-- (Your SQL goes here|This file should undo anything in `up.sql`)$' "$dir/up.sql" | tidy
  } > "$dir/up.sql.new"
  {
    printf -- '-- %s (%s): down, undoing up.sql exactly\n' "$name" "$backend"
    grep -Ev '^-- (Your SQL goes here|This file should undo anything in `up.sql`)$' "$dir/down.sql" | tidy
  } > "$dir/down.sql.new"
  mkdir -p "migrations/$backend/${version}_$name"
  mv "$dir/up.sql.new" "migrations/$backend/${version}_$name/up.sql"
  mv "$dir/down.sql.new" "migrations/$backend/${version}_$name/down.sql"
  echo "$backend: generated from the difference with $schema:"
  sed 's/^/  up.sql   | /' "migrations/$backend/${version}_$name/up.sql"
  sed 's/^/  down.sql | /' "migrations/$backend/${version}_$name/down.sql"
}

if [ ! -f "$schema" ] || [ ! -d migrations/sqlite ] || ! command -v "$diesel" >/dev/null; then
  empty_pair sqlite "No schema.rs, migrations or diesel CLI to diff: write the SQL by hand."
  empty_pair postgres "No schema.rs, migrations or diesel CLI to diff: write the SQL by hand."
  echo "no schema.rs, migrations or diesel CLI here: wrote an empty pair to fill by hand"
else
  # The project's own table filter (drizzle's bookkeeping, the search index's
  # tables), so that what schema.rs leaves out is not read as dropped.
  filter=$(grep -E '^filter *=' diesel.toml 2>/dev/null || echo 'filter = { except_tables = ["__drizzle_migrations"] }')
  printf '[print_schema]\nsqlite_integer_primary_key_is_bigint = true\n%s\n' "$filter" \
    > "$scratch/diesel.toml"
  "$diesel" migration run --config-file "$scratch/diesel.toml" --migration-dir migrations/sqlite \
    --database-url "$scratch/sqlite.db" >/dev/null
  "$diesel" print-schema --config-file "$scratch/diesel.toml" --database-url "$scratch/sqlite.db" \
    > "$scratch/native.rs"
  cp "$scratch/native.rs" "$scratch/patched.rs"
  [ -f "$patch_file" ] && patch -s "$scratch/patched.rs" "$patch_file"
  unpatch "$schema" "$scratch/patched.rs" "$scratch/native.rs" > "$scratch/schema.rs"
  generated sqlite "$scratch/sqlite.db" "$scratch/schema.rs"

  pg_url=$("$(dirname "$0")"/postgres.sh url 2>/dev/null || true)
  pg_diesel=
  [ -n "$pg_url" ] && pg_diesel=$(postgres_diesel || true)
  if [ -n "$pg_diesel" ]; then
    scratch_db=scratch_$$
    base=${pg_url%/*}
    psql -q "$pg_url" -c "CREATE DATABASE $scratch_db" >/dev/null
    trap 'psql -q "$pg_url" -c "DROP DATABASE IF EXISTS $scratch_db" >/dev/null 2>&1; rm -rf "$scratch"' EXIT
    # A pair still to be written by hand holds only comments, which PostgreSQL
    # refuses as an empty query: the scratch copy runs it as a no-op.
    cp -r migrations/postgres "$scratch/postgres-migrations"
    for sql in "$scratch"/postgres-migrations/*/*.sql; do
      if empty_sql "$sql"; then echo 'SELECT 1;' >> "$sql"; fi
    done
    "$pg_diesel" migration run --config-file "$scratch/diesel.toml" --migration-dir "$scratch/postgres-migrations" \
      --database-url "$base/$scratch_db" >/dev/null
    # PostgreSQL declares bigint where SQLite says integer: schema.rs as it is.
    diesel=$pg_diesel generated postgres "$base/$scratch_db" "$schema"
  else
    empty_pair postgres "Not generated (needs a running 'make postgres' to diff against): write the SQL by hand; the SQLite pair shows the change."
    echo "postgres: not generated: start 'make postgres' to diff against it; wrote an empty pair to fill by hand (the sqlite pair shows the change)"
  fi
fi
echo "created migrations/{sqlite,postgres}/${version}_$name; next: make migrate check=1, make migrate, make schema"
