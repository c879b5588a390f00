//! One module per table: the row type, the insert type, the changes type and the
//! queries as plain functions over a connection.

pub mod idempotency;
pub mod post;
pub(crate) mod rank;
pub mod search;
pub mod token;
pub mod user;

use db::MultiBackend;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::LoadQuery;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::sqlite::Sqlite;

/// Runs `$body` once per backend with `$c` bound to the concrete connection: for
/// the statements Diesel cannot write once for both (`ON CONFLICT DO NOTHING`,
/// multi-row inserts), and for the hottest queries. Each arm is type-checked
/// against its own backend.
///
/// Why the hot queries: a statement run through the multi connection is rendered
/// to SQL on every call (its `SerializedQuery` builds the text to collect the
/// binds), where the concrete connection finds a statement of a known type in
/// its cache without rendering anything. Profiling `POST /posts` showed about 3%
/// of the server's CPU in that rendering; `GET /posts/{id}`, the token lookup
/// of every authenticated request and the insert of a post skip it this way.
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            db::AnyConnection::Pg($c) => $body,
            db::AnyConnection::Sqlite($c) => $body,
        }
    };
}
pub(crate) use per_backend;

/// Inserts `$rows` (a slice of `Insertable` rows with every column, declared
/// `treat_none_as_default_value = false`) into `$table` in one statement:
/// PostgreSQL's binary `COPY FROM`, which has no parameter limit and is the
/// fastest way in; a multi-row `INSERT` on SQLite.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            db::AnyConnection::Pg(c) => diesel::copy_from($table).from_insertable($rows).execute(c),
            db::AnyConnection::Sqlite(c) => diesel::insert_into($table).values($rows).execute(c),
        }
    };
}
pub(crate) use insert_rows;

/// `(created_at, id) < (?, ?)` over `table`'s columns: the keyset bound of a list
/// newest first. A row-value comparison, so SQLite searches the `(created_at, id)`
/// index from the cursor instead of expanding an OR into two scans (PostgreSQL
/// does the same). Identifiers in double quotes, which both backends read.
pub(crate) fn created_before<QS: 'static>(
    table: &'static str,
    created_at: i64,
    id: String,
) -> Box<dyn BoxableExpression<QS, MultiBackend, SqlType = Bool>> {
    Box::new(
        diesel::dsl::sql::<Bool>(&format!(r#"("{table}"."created_at", "{table}"."id") < ("#))
            .bind::<BigInt, _>(created_at)
            .sql(", ")
            .bind::<Text, _>(id)
            .sql(")"),
    )
}

/// True when `err` is a unique-constraint violation.
pub(crate) fn is_unique_violation(err: &DieselError) -> bool {
    matches!(
        err,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// True when `err` is a foreign-key violation.
pub(crate) fn is_foreign_key_violation(err: &DieselError) -> bool {
    matches!(
        err,
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)
    )
}

/// `{query} LIMIT +?`: a list query with its row count bound as a parameter.
///
/// Use this instead of Diesel's `.limit(n)`, which renders `LIMIT ?`. SQLite (the
/// bundled 3.51) peeks at a bare bound `LIMIT` while planning and then treats the
/// prepared statement as stale whenever that parameter is bound again, which Diesel
/// does on every run. So each run of a "cached" statement was parsed and planned
/// again inside `sqlite3_step`. The unary plus hides the value from the planner
/// (the plans of these lists do not depend on it), so Diesel's cached statement is
/// reused as it is: one statement per query shape, whatever the page size.
///
/// PostgreSQL gets a plain `LIMIT $n`: it plans the prepared statement once.
///
/// `query` must not have a limit of its own.
#[derive(Debug, Clone, Copy, QueryId)]
pub(crate) struct BoundLimit<Q> {
    query: Q,
    rows: i64,
}

impl<Q> BoundLimit<Q> {
    pub(crate) fn new(query: Q, rows: i64) -> Self {
        Self { query, rows }
    }
}

/// One page of a list query: `limit` (clamped) rows in the query's order, fetched
/// with one row more to learn whether another page follows, through [`BoundLimit`].
/// `cursor_of` names the last row kept for the next page.
pub(crate) fn load_page<'q, Q, T>(
    conn: &mut crate::Connection,
    query: Q,
    limit: i64,
    cursor_of: impl Fn(&T) -> String,
) -> crate::Result<crate::Page<T>>
where
    BoundLimit<Q>: LoadQuery<'q, crate::Connection, T>,
{
    let limit = crate::clamp_limit(limit);
    let rows = BoundLimit::new(query, limit + 1).load(conn)?;
    Ok(crate::page(rows, limit, cursor_of))
}

impl<Q: Query> Query for BoundLimit<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, C> RunQueryDsl<C> for BoundLimit<Q> {}

impl<Q: QueryFragment<Sqlite>> QueryFragment<Sqlite> for BoundLimit<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        LimitKeyword.walk_ast(out.reborrow())?;
        out.push_bind_param::<BigInt, _>(&self.rows)
    }
}

impl<Q: QueryFragment<MultiBackend>> QueryFragment<MultiBackend> for BoundLimit<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        LimitKeyword.walk_ast(out.reborrow())?;
        out.push_bind_param::<BigInt, _>(&self.rows)
    }
}

/// The text before [`BoundLimit`]'s parameter, which differs by backend.
#[derive(Debug, Clone, Copy)]
struct LimitKeyword;

impl QueryFragment<Sqlite> for LimitKeyword {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(" LIMIT +");
        Ok(())
    }
}

impl QueryFragment<Pg> for LimitKeyword {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(" LIMIT ");
        Ok(())
    }
}

impl QueryFragment<MultiBackend> for LimitKeyword {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        MultiBackend::walk_variant_ast(self, pass)
    }
}
