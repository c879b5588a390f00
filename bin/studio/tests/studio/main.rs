//! The studio over HTTP: each safety rule on its own, the pages, the query
//! plans of every page, edits, operations and export.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;
mod edits;
mod export;
mod ops;
mod pages;
mod plans;
mod safety;
