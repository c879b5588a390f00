//! In-process tests of the HTTP API: the same app `main` serves, each test on its
//! own freshly migrated database file.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod common;

mod bad_input;
mod bodies;
mod docs;
mod document;
mod idempotency;
mod operations;
mod pagination;
mod permissions;
mod routes;
mod search;
mod tokens;
