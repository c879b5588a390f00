#!/usr/bin/env bash
# Supply-chain check of the dependency tree against deny.toml: licenses (only
# those allowed), bans (no wildcard versions; duplicate versions only warn) and
# sources (crates.io only). Reaches no network but crates.io, like `cargo build`.
# Installs cargo-deny from crates.io on first use (minutes of compiling, once).
# The advisory check needs the RustSec database from GitHub: run
# `cargo deny check advisories` where that is reachable (README, Operations).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deny --version >/dev/null 2>&1; then
  echo "installing cargo-deny (once)..."
  cargo install --locked cargo-deny --version '~0.20'
fi
cargo deny --locked check --hide-inclusion-graph licenses bans sources
