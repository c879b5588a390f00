//! Moving every row of the data from one database to another, SQLite or
//! PostgreSQL in either direction, and proving the copy: `web move --to URL`.
//!
//! The data is every table of the schema but the migrations' bookkeeping: users,
//! posts, tokens and idempotency keys. Idempotency keys go too, so that a client
//! retrying a create across the switch gets its first answer again instead of a
//! second row. Values are copied as stored (ids, Unix seconds, roles, token
//! hashes, expiry, last use), with no conversion on the way.
//!
//! - The source is read in one snapshot (a read transaction on SQLite,
//!   `REPEATABLE READ READ ONLY` on PostgreSQL), so a server may keep writing to
//!   it: the copy holds each of its transactions wholly or not at all.
//! - The target is written in one transaction: an interrupted move leaves it as
//!   it was, and a re-run starts afresh. Rows go in batches, parents first.
//! - The target must be at the source's schema version; an empty database is
//!   migrated first. A target holding rows is refused unless `replace` is set,
//!   and then emptied in the same transaction.
//! - The posts' id counter (PostgreSQL's identity sequence, SQLite's
//!   `sqlite_sequence`) is carried over, so the next post gets a fresh id.
//! - Afterwards the target is read back and, table by table, its row count and
//!   an order-independent checksum are compared with the source's snapshot.

use std::time::{Duration, Instant};

use db::{Db, MigrationStatus};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::Sqlite;

use crate::Connection;
use crate::models::insert_rows;
use crate::schema::{idempotency_keys, posts, tokens, users};

/// Rows per batch: the widest table has 7 columns, so a batch stays far below
/// PostgreSQL's 65 535 parameters and SQLite's 32 766 per statement.
pub const BATCH: u32 = 1_000;

/// The data tables, parents before children (the order they are filled in).
pub const TABLES: [&str; 4] = ["users", "posts", "tokens", "idempotency_keys"];

/// Why a move did not happen, or did not prove itself.
#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("the source and the target are the same database ({0})")]
    SameDatabase(String),
    #[error("the source {database} is not at this build's schema: {cause}")]
    SourceSchema { database: String, cause: db::Error },
    #[error(
        "the target {target} is at another schema version than the source: {difference}; \
         migrate it to the same version (DATABASE_URL=<target> make migrate) or move into an empty database"
    )]
    SchemaMismatch { target: String, difference: String },
    #[error(
        "the target {target} already holds rows ({tables}); nothing was copied. \
         Give --replace to replace them"
    )]
    TargetNotEmpty { target: String, tables: String },
    #[error(transparent)]
    Db(#[from] db::Error),
}

impl From<diesel::result::Error> for MoveError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Db(err.into())
    }
}

/// Row count and checksum of one table: the checksum is the wrapping sum of a
/// hash of each row's values, so it does not depend on the order rows are read
/// in (which differs between the backends' collations).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub rows: u64,
    pub checksum: u64,
}

impl Summary {
    fn add(&mut self, values: &[Value<'_>]) {
        self.rows += 1;
        self.checksum = self.checksum.wrapping_add(row_hash(values));
    }
}

/// One table's summary on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCheck {
    pub table: &'static str,
    pub source: Summary,
    pub target: Summary,
}

impl TableCheck {
    pub fn matches(&self) -> bool {
        self.source == self.target
    }
}

/// What a move did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Migrations applied to an empty target first.
    pub migrated: Vec<String>,
    /// Rows replaced on the target (with `replace`).
    pub replaced: u64,
    /// Every data table, in [`TABLES`] order.
    pub tables: Vec<TableCheck>,
    /// Reading, writing and committing.
    pub copy_time: Duration,
    /// The part of `copy_time` spent building the indexes and checking the
    /// foreign keys set aside for the copy (PostgreSQL; zero on SQLite).
    pub restore_time: Duration,
    /// Reading the target back.
    pub verify_time: Duration,
}

impl Report {
    /// Rows copied.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.source.rows).sum()
    }

    /// True when every table has the same count and checksum on both sides.
    pub fn verified(&self) -> bool {
        self.tables.iter().all(TableCheck::matches)
    }
}

/// How a move goes.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Empty a target that holds rows instead of refusing it.
    pub replace: bool,
    /// Rows per batch.
    pub batch: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            replace: false,
            batch: BATCH as usize,
        }
    }
}

/// Told after each batch: the table, rows copied of it so far, and its total.
pub type Progress<'a> = &'a mut dyn FnMut(&'static str, u64, u64);

/// Copies every row of `source` into `target` and verifies the copy (see the
/// module's documentation). The report says whether the two sides matched; an
/// error means the target was left as it was (or only migrated, when empty).
pub fn move_data(
    source: &Db,
    target: &Db,
    options: Options,
    progress: Progress<'_>,
) -> Result<Report, MoveError> {
    if same_database(source, target) {
        return Err(MoveError::SameDatabase(
            target.config().database.to_string(),
        ));
    }
    let database = source.config().database.to_string();
    source
        .migrator(db::MIGRATIONS)
        .ensure_current()
        .map_err(|cause| MoveError::SourceSchema { database, cause })?;
    let migrated = prepare_target(target)?;

    let started = Instant::now();
    let mut src = source.reader_conn()?;
    let mut dst = target.writer_conn()?;
    let batch = options.batch.max(1);
    let (replaced, sources, restore_time) = src.snapshot_transaction(|src| {
        dst.write_transaction(|dst| {
            if let Connection::Pg(pg) = dst {
                // One long transaction of bulk statements: the server's per-request
                // limits are for requests.
                diesel::connection::SimpleConnection::batch_execute(
                    pg,
                    "SET LOCAL statement_timeout = 0",
                )?;
            }
            let replaced = empty_target(dst, target, options.replace)?;
            let set_aside = set_aside_checks(dst)?;
            let totals = counts(src)?;
            let sources = [
                copy_table::<UserRow>(src, dst, batch, totals[0], &mut *progress)?,
                copy_table::<PostRow>(src, dst, batch, totals[1], &mut *progress)?,
                copy_table::<TokenRow>(src, dst, batch, totals[2], &mut *progress)?,
                copy_table::<KeyRow>(src, dst, batch, totals[3], &mut *progress)?,
            ];
            set_post_ids_from(dst, post_ids_used(src)?)?;
            let restoring = Instant::now();
            restore_checks(dst, &set_aside)?;
            Ok::<_, MoveError>((replaced, sources, restoring.elapsed()))
        })
    })?;
    drop(src);
    let copy_time = started.elapsed();

    let started = Instant::now();
    let targets = dst.snapshot_transaction(|dst| summaries(dst, batch))?;
    let tables = TABLES
        .iter()
        .zip(sources.iter().zip(targets.iter()))
        .map(|(table, (source, target))| TableCheck {
            table,
            source: *source,
            target: *target,
        })
        .collect();
    Ok(Report {
        migrated,
        replaced,
        tables,
        copy_time,
        restore_time,
        verify_time: started.elapsed(),
    })
}

/// Count and checksum of every data table, in [`TABLES`] order, read in the
/// caller's transaction.
pub fn summaries(conn: &mut Connection, batch: usize) -> QueryResult<[Summary; 4]> {
    Ok([
        summarise::<UserRow>(conn, batch)?,
        summarise::<PostRow>(conn, batch)?,
        summarise::<TokenRow>(conn, batch)?,
        summarise::<KeyRow>(conn, batch)?,
    ])
}

fn same_database(a: &Db, b: &Db) -> bool {
    use db::Database;
    match (&a.config().database, &b.config().database) {
        (Database::Sqlite(a), Database::Sqlite(b)) => {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
        }
        (Database::Postgres(a), Database::Postgres(b)) => a == b,
        _ => false,
    }
}

/// Migrates an empty target to this build's schema (the source's, checked
/// before); refuses a target at any other version. Returns what it applied.
fn prepare_target(target: &Db) -> Result<Vec<String>, MoveError> {
    let migrator = target.migrator(db::MIGRATIONS);
    let status = migrator.status()?;
    if status.applied.is_empty() && status.unknown.is_empty() {
        return Ok(migrator.run_pending()?);
    }
    if status.pending.is_empty() && status.unknown.is_empty() {
        return Ok(Vec::new());
    }
    Err(MoveError::SchemaMismatch {
        target: target.config().database.to_string(),
        difference: difference(&status),
    })
}

/// What the target lacks and has in excess, against the source (which holds
/// exactly this build's migrations).
fn difference(target: &MigrationStatus) -> String {
    let mut parts = Vec::new();
    if !target.pending.is_empty() {
        parts.push(format!("the target lacks {}", target.pending.join(", ")));
    }
    if !target.unknown.is_empty() {
        parts.push(format!(
            "the target has {} that the source has not",
            target.unknown.join(", ")
        ));
    }
    parts.join("; ")
}

/// Refuses a target holding rows, or (with `replace`) deletes them, children
/// first; returns how many it deleted.
fn empty_target(conn: &mut Connection, target: &Db, replace: bool) -> Result<u64, MoveError> {
    let held: Vec<(&str, i64)> = TABLES
        .iter()
        .copied()
        .zip(counts(conn)?)
        .filter(|(_, rows)| *rows > 0)
        .collect();
    if held.is_empty() {
        return Ok(0);
    }
    if !replace {
        let tables: Vec<String> = held
            .iter()
            .map(|(table, rows)| format!("{table}: {rows}"))
            .collect();
        return Err(MoveError::TargetNotEmpty {
            target: target.config().database.to_string(),
            tables: tables.join(", "),
        });
    }
    let deleted = diesel::delete(idempotency_keys::table).execute(conn)?
        + diesel::delete(tokens::table).execute(conn)?
        + diesel::delete(posts::table).execute(conn)?
        + diesel::delete(users::table).execute(conn)?;
    Ok(deleted as u64)
}

/// How to drop, and then restore, one foreign key or index on PostgreSQL.
#[derive(QueryableByName)]
struct SetAside {
    #[diesel(sql_type = Text)]
    drop: String,
    #[diesel(sql_type = Text)]
    restore: String,
}

/// PostgreSQL fills a table fastest without its foreign keys and secondary
/// indexes, checked and built once over all the rows at the end, as `pg_restore`
/// does (checking each row's foreign key as it arrives took as long as the rest
/// of the load). So, inside the copy's transaction, this drops them and returns
/// how to restore them; primary keys and unique indexes stay and check every row.
/// An interrupted move rolls the drops back with the rows. Nothing on SQLite.
fn set_aside_checks(conn: &mut Connection) -> QueryResult<Vec<SetAside>> {
    let Connection::Pg(pg) = conn else {
        return Ok(Vec::new());
    };
    let tables = "ARRAY['users', 'posts', 'tokens', 'idempotency_keys']::regclass[]";
    let set_aside: Vec<SetAside> = diesel::sql_query(format!(
        "SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname) AS drop, \
                format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, \
                       pg_get_constraintdef(oid)) AS restore \
         FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY ({tables}) \
         UNION ALL \
         SELECT format('DROP INDEX %s', indexrelid::regclass), pg_get_indexdef(indexrelid) \
         FROM pg_index WHERE indrelid = ANY ({tables}) AND NOT indisunique \
           AND NOT EXISTS (SELECT FROM pg_constraint WHERE conindid = indexrelid)"
    ))
    .load(pg)?;
    // In a savepoint: a role that may write the tables but not alter them (they
    // belong to another) loads them with every check in place instead.
    let dropped = diesel::Connection::transaction(pg, |pg| {
        for statement in &set_aside {
            diesel::connection::SimpleConnection::batch_execute(pg, &statement.drop)?;
        }
        QueryResult::Ok(())
    });
    Ok(if dropped.is_ok() {
        set_aside
    } else {
        Vec::new()
    })
}

/// Builds the indexes and checks the foreign keys that [`set_aside_checks`] dropped.
fn restore_checks(conn: &mut Connection, set_aside: &[SetAside]) -> QueryResult<()> {
    // Indexes first (listed last), so that each foreign key's check can use them.
    for statement in set_aside.iter().rev() {
        diesel::connection::SimpleConnection::batch_execute(conn, &statement.restore)?;
    }
    Ok(())
}

/// Copies one table in keyset-ordered batches; returns the source's summary.
fn copy_table<T: Table>(
    src: &mut Connection,
    dst: &mut Connection,
    batch: usize,
    total: i64,
    progress: Progress<'_>,
) -> Result<Summary, MoveError> {
    let total = u64::try_from(total).unwrap_or(0);
    progress(T::NAME, 0, total);
    walk::<T, MoveError>(src, batch, |rows, summary| {
        T::insert(dst, rows)?;
        progress(T::NAME, summary.rows, total.max(summary.rows));
        Ok(())
    })
}

fn summarise<T: Table>(conn: &mut Connection, batch: usize) -> QueryResult<Summary> {
    walk::<T, _>(conn, batch, |_, _| Ok(()))
}

/// Reads every row of `T` in keyset-ordered batches into a summary, handing
/// each batch to `each` with the summary so far.
fn walk<T: Table, E: From<diesel::result::Error>>(
    conn: &mut Connection,
    batch: usize,
    mut each: impl FnMut(&[T], &Summary) -> Result<(), E>,
) -> Result<Summary, E> {
    let mut summary = Summary::default();
    let mut after: Option<T> = None;
    loop {
        let rows = T::page(conn, after.as_ref(), batch)?;
        if rows.is_empty() {
            return Ok(summary);
        }
        for row in &rows {
            summary.add(&row.values());
        }
        each(&rows, &summary)?;
        after = rows.into_iter().last();
    }
}

/// Rows of each data table, in [`TABLES`] order.
fn counts(conn: &mut Connection) -> QueryResult<[i64; 4]> {
    Ok([
        UserRow::count(conn)?,
        PostRow::count(conn)?,
        TokenRow::count(conn)?,
        KeyRow::count(conn)?,
    ])
}

/// The highest post id the source ever handed out: its largest id, or more when
/// the newest posts were deleted (SQLite's `AUTOINCREMENT` and PostgreSQL's
/// identity never give an id twice).
fn post_ids_used(conn: &mut Connection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Used {
        #[diesel(sql_type = Nullable<BigInt>)]
        used: Option<i64>,
    }
    let largest: Option<i64> = posts::table
        .select(diesel::dsl::max(posts::id))
        .get_result(conn)?;
    let counter = match conn {
        Connection::Sqlite(c) => {
            diesel::sql_query("SELECT max(seq) AS used FROM sqlite_sequence WHERE name = 'posts'")
                .get_result::<Used>(c)?
        }
        Connection::Pg(c) => diesel::sql_query(
            "SELECT pg_sequence_last_value(pg_get_serial_sequence('posts', 'id')::regclass) AS used",
        )
        .get_result::<Used>(c)?,
    };
    Ok(largest.unwrap_or(0).max(counter.used.unwrap_or(0)))
}

/// Makes the next post on `conn` get `used + 1`.
fn set_post_ids_from(conn: &mut Connection, used: i64) -> QueryResult<()> {
    match conn {
        Connection::Sqlite(c) => {
            diesel::sql_query("DELETE FROM sqlite_sequence WHERE name = 'posts'").execute(c)?;
            if used > 0 {
                diesel::sql_query("INSERT INTO sqlite_sequence (name, seq) VALUES ('posts', $1)")
                    .bind::<BigInt, _>(used)
                    .execute(c)?;
            }
        }
        Connection::Pg(c) => {
            // Marked used, so that the next move out of this database reads it
            // back; on a database that never had a post, the first id is 1.
            let (value, used_already) = if used > 0 { (used, true) } else { (1, false) };
            diesel::sql_query("SELECT setval(pg_get_serial_sequence('posts', 'id'), $1, $2)")
                .bind::<BigInt, _>(value)
                .bind::<diesel::sql_types::Bool, _>(used_already)
                .execute(c)?;
        }
    }
    Ok(())
}

/// A value as the checksum sees it: the same on both backends.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Null,
    Int(i64),
    Text(&'a str),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(text: &'a str) -> Self {
        Self::Text(text)
    }
}

impl From<i64> for Value<'_> {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

/// FNV-1a over each value tagged by kind and length-prefixed (so NULL differs
/// from empty text and `("ab", "c")` from `("a", "bc")`), then mixed so that the
/// sum of many rows' hashes keeps their bits apart.
fn row_hash(values: &[Value<'_>]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(PRIME);
        }
    };
    for value in values {
        match value {
            Value::Null => feed(&[0]),
            Value::Int(n) => {
                feed(&[1]);
                feed(&n.to_le_bytes());
            }
            Value::Text(text) => {
                feed(&[2]);
                feed(&(text.len() as u64).to_le_bytes());
                feed(text.as_bytes());
            }
        }
    }
    // SplitMix64's finaliser.
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// One data table as the move sees it: its rows with every column as stored.
trait Table: Sized {
    const NAME: &'static str;
    fn count(conn: &mut Connection) -> QueryResult<i64>;
    /// Up to `limit` rows after `after` in primary-key order.
    fn page(conn: &mut Connection, after: Option<&Self>, limit: usize) -> QueryResult<Vec<Self>>;
    /// Inserts `rows` in one statement.
    fn insert(conn: &mut Connection, rows: &[Self]) -> QueryResult<usize>;
    /// Every column, in declaration order, for the checksum.
    fn values(&self) -> Vec<Value<'_>>;
}

/// The parts of a [`Table`] impl that only name the table: its name, its count,
/// and the insert of a batch.
macro_rules! table_basics {
    ($table:ident) => {
        const NAME: &'static str = stringify!($table);

        fn count(conn: &mut Connection) -> QueryResult<i64> {
            $table::table.count().get_result(conn)
        }

        fn insert(conn: &mut Connection, rows: &[Self]) -> QueryResult<usize> {
            insert_rows!(conn, $table::table, rows)
        }
    };
}

/// [`Table::page`] of a table keyed by a text `id`.
macro_rules! text_id_pages {
    ($table:ident) => {
        fn page(
            conn: &mut Connection,
            after: Option<&Self>,
            rows: usize,
        ) -> QueryResult<Vec<Self>> {
            let mut query = $table::table
                .select(Self::as_select())
                .order($table::id)
                .limit(limit(rows))
                .into_boxed();
            if let Some(after) = after {
                query = query.filter($table::id.gt(after.id.clone()));
            }
            query.load(conn)
        }
    };
}

fn limit(rows: usize) -> i64 {
    i64::try_from(rows).unwrap_or(i64::MAX)
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = users, check_for_backend(Sqlite, Pg), treat_none_as_default_value = false)]
struct UserRow {
    id: String,
    email: String,
    name: String,
    role: String,
    created_at: i64,
}

impl Table for UserRow {
    table_basics!(users);
    text_id_pages!(users);

    fn values(&self) -> Vec<Value<'_>> {
        vec![
            self.id.as_str().into(),
            self.email.as_str().into(),
            self.name.as_str().into(),
            self.role.as_str().into(),
            self.created_at.into(),
        ]
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = posts, check_for_backend(Sqlite, Pg), treat_none_as_default_value = false)]
struct PostRow {
    id: i64,
    title: String,
    content: String,
    author_id: String,
    published_at: Option<i64>,
}

impl Table for PostRow {
    table_basics!(posts);

    fn page(conn: &mut Connection, after: Option<&Self>, rows: usize) -> QueryResult<Vec<Self>> {
        posts::table
            .select(Self::as_select())
            .filter(posts::id.gt(after.map_or(i64::MIN, |p| p.id)))
            .order(posts::id)
            .limit(limit(rows))
            .load(conn)
    }

    fn values(&self) -> Vec<Value<'_>> {
        vec![
            self.id.into(),
            self.title.as_str().into(),
            self.content.as_str().into(),
            self.author_id.as_str().into(),
            self.published_at.into(),
        ]
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = tokens, check_for_backend(Sqlite, Pg), treat_none_as_default_value = false)]
struct TokenRow {
    id: String,
    user_id: String,
    token_hash: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    label: Option<String>,
}

impl Table for TokenRow {
    table_basics!(tokens);
    text_id_pages!(tokens);

    fn values(&self) -> Vec<Value<'_>> {
        vec![
            self.id.as_str().into(),
            self.user_id.as_str().into(),
            self.token_hash.as_str().into(),
            self.created_at.into(),
            self.expires_at.into(),
            self.last_used_at.into(),
            self.label.as_deref().into(),
        ]
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys, check_for_backend(Sqlite, Pg), treat_none_as_default_value = false)]
struct KeyRow {
    caller_id: String,
    key: String,
    fingerprint: String,
    status: i32,
    response: String,
    created_at: i64,
}

impl Table for KeyRow {
    table_basics!(idempotency_keys);

    fn page(conn: &mut Connection, after: Option<&Self>, rows: usize) -> QueryResult<Vec<Self>> {
        let mut query = idempotency_keys::table
            .select(Self::as_select())
            .order((idempotency_keys::caller_id, idempotency_keys::key))
            .limit(limit(rows))
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(
                idempotency_keys::caller_id.gt(after.caller_id.clone()).or(
                    idempotency_keys::caller_id
                        .eq(after.caller_id.clone())
                        .and(idempotency_keys::key.gt(after.key.clone())),
                ),
            );
        }
        query.load(conn)
    }

    fn values(&self) -> Vec<Value<'_>> {
        vec![
            self.caller_id.as_str().into(),
            self.key.as_str().into(),
            self.fingerprint.as_str().into(),
            i64::from(self.status).into(),
            self.response.as_str().into(),
            self.created_at.into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::user::NewUser;
    use crate::{Role, Timestamp};

    #[test]
    fn row_hashes_tell_null_from_empty_and_where_values_split() {
        let pairs = [
            (vec![Value::Null], vec![Value::Text("")]),
            (
                vec![Value::Text("ab"), Value::Text("c")],
                vec![Value::Text("a"), Value::Text("bc")],
            ),
            (vec![Value::Int(1)], vec![Value::Text("1")]),
            (vec![Value::Int(0)], vec![Value::Null]),
        ];
        for (a, b) in pairs {
            assert_ne!(row_hash(&a), row_hash(&b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn a_summary_does_not_depend_on_row_order() {
        let rows = [
            [Value::Int(1), Value::Text("a")],
            [Value::Int(2), Value::Null],
        ];
        let (mut forward, mut backward) = (Summary::default(), Summary::default());
        rows.iter().for_each(|r| forward.add(r));
        rows.iter().rev().for_each(|r| backward.add(r));
        assert_eq!(forward, backward);
        assert_eq!(forward.rows, 2);
    }

    #[test]
    fn one_changed_cell_changes_its_table_checksum_only() {
        let mut db = crate::test_support::db();
        let conn = &mut db.conn;
        NewUser {
            id: "u1".into(),
            email: "u1@example.com".into(),
            name: "U".into(),
            role: Role::User,
            created_at: Timestamp::from_unix(1_700_000_000).unwrap(),
        }
        .insert(conn)
        .unwrap();
        for title in ["one", "two"] {
            diesel::insert_into(posts::table)
                .values((
                    posts::title.eq(title),
                    posts::content.eq(""),
                    posts::author_id.eq("u1"),
                ))
                .execute(conn)
                .unwrap();
        }
        let before = summaries(conn, 1).unwrap();
        assert_eq!(before[1].rows, 2);
        diesel::update(posts::table.filter(posts::title.eq("two")))
            .set(posts::published_at.eq(Some(0_i64)))
            .execute(conn)
            .unwrap();
        let after = summaries(conn, 1).unwrap();
        assert_eq!(before[0], after[0], "users unchanged");
        assert_eq!(before[1].rows, after[1].rows);
        assert_ne!(before[1].checksum, after[1].checksum);
    }
}
