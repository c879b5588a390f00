# Every user-facing command. `make` alone lists them.
# Variables set in the environment (DATABASE_URL=other.db make migrate) win over .env.

# The project folder, wherever make runs from (`make -f path/Makefile`).
ROOT    := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
CARGO   ?= cargo
PROFILE ?= release
BIN     := $(or $(CARGO_TARGET_DIR),target)/$(PROFILE)
CARGO_PROFILE := $(if $(filter release,$(PROFILE)),--release,)

.DEFAULT_GOAL := help
.PHONY: redo reset
.PHONY: help build run migrate rollback status migration seed demo schema schema-check \
        test test-postgres lint fmt backup restore bench postgres clean-data

help: ## list the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build the binaries (release unless PROFILE=debug)
	$(CARGO) build $(CARGO_PROFILE) -p web -p seed -p studio

# Readable by its owner only: it holds ADMIN_TOKEN.
.env:
	@$(ROOT)scripts/dotenv.sh

run: build ## fresh clone to a running server: build, migrate, seed, serve on BIND
	@$(ROOT)scripts/dotenv.sh
	$(BIN)/web migrate
	$(BIN)/seed
	$(BIN)/web serve

migrate: build ## apply pending migrations; check=1 rehearses them on a copy instead
	$(BIN)/web migrate $(if $(filter 1,$(check)),--dry-run)

rollback: build ## revert the last migration, after a verified backup (force=1 for the first)
	$(BIN)/web rollback $(if $(filter 1,$(force)),--force) $(if $(filter 1,$(dumped)),--dumped)

redo: build ## revert and re-apply the last migration, after a verified backup
	$(BIN)/web redo $(if $(filter 1,$(force)),--force) $(if $(filter 1,$(dumped)),--dumped)

reset: build ## back up, re-create, migrate and seed the database (force=1 if it holds data)
	$(BIN)/web reset $(if $(filter 1,$(force)),--force)
	$(BIN)/seed

status: build ## list applied and pending migrations
	$(BIN)/web status

# The name reaches the shell through the environment only, checked before use, so
# `name='x"; rm -rf ~; "'` runs nothing (as with restore's file=).
unexport name
migration: export MIGRATION_NAME = $(value name)
migration: ## new migration for both backends, its SQL from schema.rs's difference: make migration name=add_tags
	@test -n "$$MIGRATION_NAME" || { echo "usage: make migration name=what_it_does"; exit 2; }
	@printf '%s\n' "$$MIGRATION_NAME" | grep -Eqx '[a-z0-9_]+' || { echo "name: lower-case letters, digits and _ only"; exit 2; }
	@$(ROOT)scripts/migration.sh

seed: build ## idempotent: the admin user and, with ADMIN_TOKEN, its token
	$(BIN)/seed

demo: build ## demo data for benchmarks: make demo users=1000 posts=100000
	$(BIN)/seed --demo $(or $(users),1000) $(or $(posts),100000)

schema: ## regenerate crates/domain/src/schema.rs from the migrations (needs diesel CLI)
	scripts/schema.sh write

schema-check: ## fail if schema.rs differs from what the migrations produce
	scripts/schema.sh check

backup: build ## consistent online snapshot into BACKUP_DIR, verified
	$(BIN)/web backup

# The file name reaches the binary through the environment, unexpanded: neither
# make nor the shell reads it, so no name can run anything. (Make would expand
# `file` to export it as given on the command line, hence the unexport.)
unexport file
restore: export RESTORE_FILE = $(value file)
restore: build ## verified restore: make restore file=data/backups/app-....db
	@test -n "$$RESTORE_FILE" || { echo "usage: make restore file=path/to/backup.db"; exit 2; }
	$(BIN)/web restore

.PHONY: move

# The URL (password included) reaches the binary through the environment,
# unexpanded, as restore's file= does: neither make nor the shell reads it.
unexport to
move: export MOVE_TO = $(value to)
move: build ## copy every row to another database and verify it: make move to=postgres://... [replace=1]
	@test -n "$$MOVE_TO" || { echo "usage: make move to=postgres://user:password@host:port/db (or a SQLite path) [replace=1]"; exit 2; }
	$(BIN)/web move $(if $(replace),--replace)

fmt: ## format the code
	$(CARGO) fmt --all

lint: ## formatting and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: lint schema-check ## every check: fmt, clippy, schema drift, unit, end-to-end (SQLite and PostgreSQL), fuzzing
	# The end-to-end tests run the real binaries; `cargo test` alone builds only
	# those of packages that have integration tests.
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --workspace --doc
	scripts/test-postgres.sh
	scripts/schemathesis.sh
	scripts/deny.sh

test-postgres: ## the tests that run on PostgreSQL (starts and stops a local server)
	scripts/test-postgres.sh

postgres: ## start a local PostgreSQL (under target/pg) and print its DATABASE_URL
	@scripts/postgres.sh start

.PHONY: studio
studio: ## the data browser on STUDIO_BIND (127.0.0.1:4983); write=1 allows edits; prints a one-time login URL
	$(CARGO) build $(CARGO_PROFILE) -p studio
	$(BIN)/studio $(if $(filter 1 true yes,$(write)),--write,)

.PHONY: reindex
reindex: build ## rebuild the search index of posts (check=1: only check it)
	$(BIN)/web reindex $(if $(check),--check,)

bench: ## release build, demo data, load test with references; appends to BENCHMARKS.md
	scripts/bench.py
