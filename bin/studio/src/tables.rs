//! The tables the studio shows, and the queries behind each page: keyset pages by
//! (sort column, primary key), filters and search as parameters, row counts
//! walked in primary-key windows under a time budget, and rows by key.
//!
//! Every list query is bounded by the keyset (the first page by the smallest
//! possible key), so each one is an index or primary-key search that stops after
//! [`PAGE`] + 1 rows; never an OFFSET and never an unbounded `COUNT(*)`.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use db::Connection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use crate::sql::{Bind, CELLS, Cells, Sql, ident};

/// Rows per page.
pub const PAGE: usize = 50;
/// Counts stop here and say "more than".
pub const COUNT_LIMIT: i64 = 10_000;
/// Counts stop when this much time has passed and say how far they got.
pub const COUNT_BUDGET: Duration = Duration::from_millis(200);
/// Rows one counting statement walks.
const COUNT_WINDOW: i64 = 5_000;

/// How a column's stored value is read, compared and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    /// Unix seconds in an integer column.
    UnixTime,
    /// A date and time the database keeps in its own type or as text (the
    /// migrations table's `run_on`): compared as text.
    Moment,
}

#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub nullable: bool,
    /// Only NOT NULL columns with an index (or the key) sort: the keyset walks the
    /// index by (column, key).
    pub sortable: bool,
    /// The table whose key this column holds.
    pub references: Option<&'static str>,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        nullable: false,
        sortable: false,
        references: None,
    }
}

const fn sorted(column: Column) -> Column {
    Column {
        sortable: true,
        ..column
    }
}

const fn nullable(column: Column) -> Column {
    Column {
        nullable: true,
        ..column
    }
}

const fn refers(column: Column, table: &'static str) -> Column {
    Column {
        references: Some(table),
        ..column
    }
}

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    /// The first column is the primary key. Columns left out are never read (the
    /// token hash).
    pub columns: &'static [Column],
    /// Newest first by default for the tables keyed by an increasing number.
    pub descending: bool,
}

impl Table {
    pub fn key(&self) -> &'static Column {
        &self.columns[0]
    }

    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Columns of other tables that refer to this one.
    pub fn referenced_by(&self) -> Vec<(&'static Table, &'static Column)> {
        TABLES
            .iter()
            .flat_map(|t| t.columns.iter().map(move |c| (t, c)))
            .filter(|(_, c)| c.references == Some(self.name))
            .collect()
    }
}

pub static TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            sorted(col("id", Kind::Text)),
            sorted(col("email", Kind::Text)),
            col("name", Kind::Text),
            col("role", Kind::Text),
            sorted(col("created_at", Kind::UnixTime)),
        ],
        descending: false,
    },
    Table {
        name: "posts",
        columns: &[
            sorted(col("id", Kind::Int)),
            col("title", Kind::Text),
            col("content", Kind::Text),
            sorted(refers(col("author_id", Kind::Text), "users")),
            nullable(col("published_at", Kind::UnixTime)),
        ],
        descending: true,
    },
    Table {
        name: "tokens",
        columns: &[
            sorted(col("id", Kind::Text)),
            sorted(refers(col("user_id", Kind::Text), "users")),
            col("created_at", Kind::UnixTime),
            nullable(col("expires_at", Kind::UnixTime)),
            nullable(col("last_used_at", Kind::UnixTime)),
            nullable(col("label", Kind::Text)),
        ],
        descending: false,
    },
    Table {
        name: "__diesel_schema_migrations",
        columns: &[
            sorted(col("version", Kind::Text)),
            col("run_on", Kind::Moment),
        ],
        descending: false,
    },
];

pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// One per-column filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equals,
    Contains,
    Empty,
    Null,
    NotNull,
    Greater,
    Less,
}

impl Op {
    pub const ALL: [Op; 7] = [
        Op::Equals,
        Op::Contains,
        Op::Empty,
        Op::Null,
        Op::NotNull,
        Op::Greater,
        Op::Less,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Op::Equals => "eq",
            Op::Contains => "contains",
            Op::Empty => "empty",
            Op::Null => "null",
            Op::NotNull => "notnull",
            Op::Greater => "gt",
            Op::Less => "lt",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Op::Equals => "equals",
            Op::Contains => "contains",
            Op::Empty => "is empty",
            Op::Null => "is NULL",
            Op::NotNull => "is not NULL",
            Op::Greater => ">",
            Op::Less => "<",
        }
    }

    fn parse(code: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.code() == code)
    }

    pub fn takes_value(self) -> bool {
        !matches!(self, Op::Empty | Op::Null | Op::NotNull)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub column: &'static str,
    pub op: Op,
    pub value: String,
}

impl Filter {
    /// `column:op:value`, as the query string carries it.
    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.column, self.op.code(), self.value)
    }
}

/// Where a page starts: after the row with this (sort value, key), or before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    First,
    After { sort: String, key: String },
    Before { sort: String, key: String },
}

/// Everything a table page shows, all of it from the query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub sort: &'static str,
    pub descending: bool,
    pub filters: Vec<Filter>,
    pub search: String,
    pub position: Position,
}

/// A query string the page cannot show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadView(pub String);

impl View {
    pub fn first(table: &Table) -> View {
        View {
            sort: table.key().name,
            descending: table.descending,
            filters: Vec::new(),
            search: String::new(),
            position: Position::First,
        }
    }

    /// Reads `sort`, `dir`, repeated `f=column:op:value`, `q`, and
    /// `after`/`before` (the key) with `after_sort`/`before_sort`.
    pub fn parse(table: &'static Table, query: &str) -> Result<View, BadView> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|_| BadView("the query string does not decode".into()))?;
        let mut view = View::first(table);
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if let Some(sort) = get("sort") {
            let column = table
                .column(&sort)
                .filter(|c| c.sortable)
                .ok_or_else(|| BadView(format!("{sort} is not a column this table sorts by")))?;
            view.sort = column.name;
        }
        match get("dir").as_deref() {
            None => {}
            Some("asc") => view.descending = false,
            Some("desc") => view.descending = true,
            Some(other) => return Err(BadView(format!("dir must be asc or desc, not {other}"))),
        }
        for (_, raw) in pairs.iter().filter(|(k, _)| k == "f") {
            let mut parts = raw.splitn(3, ':');
            let (name, op) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let value = parts.next().unwrap_or("");
            view.filters.push(parse_filter(table, name, op, value)?);
        }
        // The filter form's new filter, as three fields.
        if let (Some(name), Some(op)) = (get("fc"), get("fo")) {
            let value = get("fv").unwrap_or_default();
            view.filters.push(parse_filter(table, &name, &op, &value)?);
        }
        view.search = get("q").unwrap_or_default();
        // A position is the key, and the sort value too when sorting by another column.
        let by_key = view.sort == table.key().name;
        let at = |name: &str| -> Result<Option<(String, String)>, BadView> {
            let Some(key) = get(name) else {
                return Ok(None);
            };
            let sort = match by_key {
                true => key.clone(),
                false => get(&format!("{name}_sort"))
                    .ok_or_else(|| BadView(format!("{name} needs {name}_sort")))?,
            };
            Ok(Some((sort, key)))
        };
        view.position = match (at("after")?, at("before")?) {
            (Some((sort, key)), None) => Position::After { sort, key },
            (None, Some((sort, key))) => Position::Before { sort, key },
            (None, None) => Position::First,
            (Some(_), Some(_)) => return Err(BadView("after and before together".into())),
        };
        let sort_column = table.column(view.sort).unwrap_or(table.key());
        if let Position::After { sort, key } | Position::Before { sort, key } = &view.position {
            typed(sort_column, sort)?;
            typed(table.key(), key)?;
        }
        Ok(view)
    }

    /// The query string of this view at `position`.
    pub fn query(&self, table: &Table, position: &Position) -> String {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if self.sort != table.key().name {
            pairs.push(("sort".into(), self.sort.into()));
        }
        if self.descending != table.descending {
            let dir = if self.descending { "desc" } else { "asc" };
            pairs.push(("dir".into(), dir.into()));
        }
        for filter in &self.filters {
            pairs.push(("f".into(), filter.encode()));
        }
        if !self.search.is_empty() {
            pairs.push(("q".into(), self.search.clone()));
        }
        let by_key = self.sort == table.key().name;
        match position {
            Position::First => {}
            Position::After { sort, key } => {
                pairs.push(("after".into(), key.clone()));
                if !by_key {
                    pairs.push(("after_sort".into(), sort.clone()));
                }
            }
            Position::Before { sort, key } => {
                pairs.push(("before".into(), key.clone()));
                if !by_key {
                    pairs.push(("before_sort".into(), sort.clone()));
                }
            }
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// One filter, its value checked against the column's type so that a bad value
/// is an error rather than an empty page.
fn parse_filter(table: &Table, name: &str, op: &str, value: &str) -> Result<Filter, BadView> {
    let column = table
        .column(name)
        .ok_or_else(|| BadView(format!("no column {name}")))?;
    let op = Op::parse(op).ok_or_else(|| BadView(format!("no filter {op}")))?;
    let filter = Filter {
        column: column.name,
        op,
        value: value.to_owned(),
    };
    operand(column, &filter)?;
    Ok(filter)
}

/// A text value as the parameter of `column`'s type.
fn typed(column: &Column, value: &str) -> Result<Bind, BadView> {
    match column.kind {
        Kind::Text | Kind::Moment => Ok(Bind::Text(value.to_owned())),
        Kind::Int => value
            .trim()
            .parse()
            .map(Bind::Int)
            .map_err(|_| BadView(format!("{}: {value:?} is not a whole number", column.name))),
        Kind::UnixTime => unix_seconds(value).map(Bind::Int).ok_or_else(|| {
            BadView(format!(
                "{}: {value:?} is neither Unix seconds nor a UTC date (2026-12-01 or 2026-12-01T09:30:00Z)",
                column.name
            ))
        }),
    }
}

/// Unix seconds, or a UTC date or date and time (RFC 3339), as Unix seconds.
pub fn unix_seconds(value: &str) -> Option<i64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<i64>() {
        return Some(secs);
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(value) {
        return Some(at.timestamp());
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc().timestamp())
}

/// The parameter a filter compares with, if it takes one.
fn operand(column: &Column, filter: &Filter) -> Result<Option<Bind>, BadView> {
    Ok(match filter.op {
        Op::Equals | Op::Greater | Op::Less => Some(typed(column, &filter.value)?),
        Op::Contains => Some(Bind::Text(filter.value.clone())),
        Op::Empty | Op::Null | Op::NotNull => None,
    })
}

/// The column as text, for substring tests and for reading.
fn as_text(name: &str) -> String {
    format!("CAST({} AS TEXT)", ident(name))
}

/// `substring occurs in text`, in each backend's words.
fn contains(sql: &mut Sql, text: &str, needle: Bind) {
    let function = if sql.is_postgres() { "strpos" } else { "instr" };
    sql.push(&format!("{function}({text}, "))
        .bind(needle)
        .push(") > 0");
}

/// Appends ` AND <condition>` for every filter and the search box.
fn push_filters(sql: &mut Sql, table: &Table, view: &View) -> Result<(), BadView> {
    for filter in &view.filters {
        let column = table
            .column(filter.column)
            .ok_or_else(|| BadView(format!("no column {}", filter.column)))?;
        // Moments are kept in the database's own type on PostgreSQL: compared as text.
        let target = if column.kind == Kind::Moment {
            as_text(column.name)
        } else {
            ident(column.name)
        };
        sql.push(" AND ");
        let value = operand(column, filter)?;
        match (filter.op, value) {
            (Op::Contains, Some(needle)) => {
                let text = if column.kind == Kind::Text {
                    ident(column.name)
                } else {
                    as_text(column.name)
                };
                contains(sql, &text, needle);
            }
            (Op::Equals, Some(v)) => {
                sql.push(&format!("{target} = ")).bind(v);
            }
            (Op::Greater, Some(v)) => {
                sql.push(&format!("{target} > ")).bind(v);
            }
            (Op::Less, Some(v)) => {
                sql.push(&format!("{target} < ")).bind(v);
            }
            (Op::Empty, _) => {
                sql.push(&format!("{} = ''", as_text(column.name)));
            }
            (Op::Null, _) => {
                sql.push(&format!("{} IS NULL", ident(column.name)));
            }
            (Op::NotNull, _) => {
                sql.push(&format!("{} IS NOT NULL", ident(column.name)));
            }
            _ => return Err(BadView("a filter without its value".into())),
        }
    }
    let search = view.search.trim();
    if !search.is_empty() {
        sql.push(" AND (");
        let texts: Vec<&Column> = table
            .columns
            .iter()
            .filter(|c| c.kind == Kind::Text)
            .collect();
        for (i, column) in texts.iter().enumerate() {
            if i > 0 {
                sql.push(" OR ");
            }
            contains(sql, &ident(column.name), Bind::Text(search.to_owned()));
        }
        sql.push(")");
    }
    Ok(())
}

/// The smallest value of a column's type: the first page's bound, so even it is
/// an index search rather than a walk of the table.
fn least(column: &Column) -> Bind {
    match column.kind {
        Kind::Text | Kind::Moment => Bind::Text(String::new()),
        Kind::Int | Kind::UnixTime => Bind::Int(i64::MIN),
    }
}

fn select_list(table: &Table) -> String {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} AS c{i}", as_text(c.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The page query of `view`: `PAGE + 1` rows in display order (or reversed, for
/// a page before a position; [`list`] turns it round).
pub fn page_query(table: &Table, view: &View, postgres: bool) -> Result<Sql, BadView> {
    page_query_sized(table, view, postgres, PAGE as i64 + 1)
}

fn page_query_sized(table: &Table, view: &View, postgres: bool, rows: i64) -> Result<Sql, BadView> {
    let key = table.key();
    let sort = table
        .column(view.sort)
        .ok_or_else(|| BadView("no such sort column".into()))?;
    let by_key = sort.name == key.name;
    let backwards = matches!(view.position, Position::Before { .. });
    // Walking before a position reads the other way round.
    let descending = view.descending != backwards;
    let mut sql = Sql::new(postgres);
    sql.push(&format!(
        "SELECT {} FROM {} WHERE ",
        select_list(table),
        ident(table.name)
    ));
    match &view.position {
        Position::First => {
            sql.push(&format!("{} >= ", ident(sort.name)))
                .bind(least(sort));
        }
        Position::After { sort: s, key: k } | Position::Before { sort: s, key: k } => {
            let cmp = if descending { "<" } else { ">" };
            if by_key {
                sql.push(&format!("{} {cmp} ", ident(key.name)))
                    .bind(typed(key, k)?);
            } else {
                sql.push(&format!(
                    "({}, {}) {cmp} (",
                    ident(sort.name),
                    ident(key.name)
                ))
                .bind(typed(sort, s)?)
                .push(", ")
                .bind(typed(key, k)?)
                .push(")");
            }
        }
    }
    push_filters(&mut sql, table, view)?;
    let dir = if descending { "DESC" } else { "ASC" };
    if by_key {
        sql.push(&format!(" ORDER BY {} {dir}", ident(key.name)));
    } else {
        sql.push(&format!(
            " ORDER BY {} {dir}, {} {dir}",
            ident(sort.name),
            ident(key.name)
        ));
    }
    sql.push(&format!(" LIMIT {rows}"));
    Ok(sql)
}

/// One row's values, each as stored (text of the value, or NULL).
pub type Row = Vec<Option<String>>;

/// One page of rows and where the neighbouring pages start.
#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<Row>,
    pub previous: Option<Position>,
    pub next: Option<Position>,
}

fn position_of(table: &Table, view: &View, row: &Row, after: bool) -> Position {
    let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let key = text(0);
    let sort = text(table.index_of(view.sort).unwrap_or(0));
    if after {
        Position::After { sort, key }
    } else {
        Position::Before { sort, key }
    }
}

fn load_rows(conn: &mut Connection, table: &Table, sql: &Sql) -> QueryResult<Vec<Row>> {
    let width = table.columns.len().min(CELLS);
    // Missing cells (tables narrower than `Cells`) come back as NULL columns.
    let mut padded = sql.clone();
    let padding: String = (width..CELLS).map(|i| format!(", NULL AS c{i}")).collect();
    if !padding.is_empty() {
        padded.text = padded
            .text
            .replacen(" FROM ", &format!("{padding} FROM "), 1);
    }
    Ok(padded
        .load::<Cells>(conn)?
        .into_iter()
        .map(|c| c.take(width))
        .collect())
}

/// The page of `view`.
pub fn list(conn: &mut Connection, table: &Table, view: &View) -> Result<Page, ListError> {
    let sql = page_query(table, view, conn.is_postgres())?;
    let mut rows = load_rows(conn, table, &sql)?;
    let more = rows.len() > PAGE;
    rows.truncate(PAGE);
    let (has_previous, has_next) = match view.position {
        Position::First => (false, more),
        Position::After { .. } => (true, more),
        Position::Before { .. } => {
            rows.reverse();
            (more, true)
        }
    };
    let previous = match rows.first() {
        Some(first) if has_previous => Some(position_of(table, view, first, false)),
        _ => None,
    };
    let next = match rows.last() {
        Some(last) if has_next => Some(position_of(table, view, last, true)),
        _ => None,
    };
    Ok(Page {
        rows,
        previous,
        next,
    })
}

/// Every row of `view` from its first, `batch` at a time: for exports.
pub fn for_each_batch(
    conn: &mut Connection,
    table: &Table,
    view: &View,
    batch: i64,
    mut each: impl FnMut(Vec<Row>) -> bool,
) -> Result<(), ListError> {
    let mut view = View {
        position: Position::First,
        ..view.clone()
    };
    loop {
        let sql = page_query_sized(table, &view, conn.is_postgres(), batch)?;
        let rows = load_rows(conn, table, &sql)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        let full = rows.len() as i64 == batch;
        view.position = position_of(table, &view, last, true);
        if !each(rows) || !full {
            return Ok(());
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    View(#[from] BadView),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

/// How many rows match, as far as counting got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Exact(i64),
    /// More than [`COUNT_LIMIT`].
    MoreThan(i64),
    /// The time budget ran out with this many found so far.
    AtLeast(i64),
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Exact(n) => write!(f, "{}", grouped(*n)),
            Count::MoreThan(n) => write!(f, "more than {}", grouped(*n)),
            Count::AtLeast(n) => write!(
                f,
                "at least {} (counting stopped after {} ms)",
                grouped(*n),
                COUNT_BUDGET.as_millis()
            ),
        }
    }
}

/// 1234567 as "1 234 567".
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202F}');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[derive(QueryableByName)]
struct Window {
    #[diesel(sql_type = Nullable<Text>)]
    last: Option<String>,
    #[diesel(sql_type = BigInt)]
    walked: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    matched: Option<i64>,
}

/// One counting statement: the rows of the key window after `after` (or from
/// the start), and how many of them match the view's filters.
pub fn count_query(
    table: &Table,
    view: &View,
    after: Option<&str>,
    postgres: bool,
) -> Result<Sql, BadView> {
    let key = table.key();
    let mut sql = Sql::new(postgres);
    sql.push(&format!(
        "SELECT CAST(max({k}) AS TEXT) AS last, count(*) AS walked, \
         sum(CASE WHEN 1 = 1",
        k = ident(key.name)
    ));
    push_filters(&mut sql, table, view)?;
    // The window reads only what the filters look at: unfiltered, the key alone,
    // which its own index covers.
    let needed: Vec<String> = table
        .columns
        .iter()
        .filter(|c| {
            c.name == key.name
                || view.filters.iter().any(|f| f.column == c.name)
                || (!view.search.trim().is_empty() && c.kind == Kind::Text)
        })
        .map(|c| ident(c.name))
        .collect();
    sql.push(&format!(
        " THEN 1 ELSE 0 END) AS matched FROM (SELECT {} FROM {} WHERE {} ",
        needed.join(", "),
        ident(table.name),
        ident(key.name)
    ));
    match after {
        Some(last) => sql.push("> ").bind(typed(key, last)?),
        None => sql.push(">= ").bind(least(key)),
    };
    sql.push(&format!(
        " ORDER BY {} LIMIT {COUNT_WINDOW}) AS w",
        ident(key.name)
    ));
    Ok(sql)
}

/// The count of a view whose filters are all equalities on indexed columns (a
/// user's posts), without search: the index bounds the walk, so one statement
/// counts at most [`COUNT_LIMIT`] + 1 rows. `None` for any other view.
pub fn indexed_count_query(
    table: &Table,
    view: &View,
    postgres: bool,
) -> Result<Option<Sql>, BadView> {
    let indexed = !view.filters.is_empty()
        && view.search.trim().is_empty()
        && view
            .filters
            .iter()
            .all(|f| f.op == Op::Equals && table.column(f.column).is_some_and(|c| c.sortable));
    if !indexed {
        return Ok(None);
    }
    let mut sql = Sql::new(postgres);
    sql.push(&format!(
        "SELECT CAST(NULL AS TEXT) AS last, count(*) AS walked, count(*) AS matched \
         FROM (SELECT 1 AS one FROM {} WHERE 1 = 1",
        ident(table.name)
    ));
    push_filters(&mut sql, table, view)?;
    sql.push(&format!(" LIMIT {}) AS w", COUNT_LIMIT + 1));
    Ok(Some(sql))
}

/// Counts the rows of `view` window by window until the end of the table, more
/// than [`COUNT_LIMIT`] matches, or [`COUNT_BUDGET`]: each statement walks at
/// most one window of the key, so no statement runs long whatever the filters.
pub fn count(conn: &mut Connection, table: &Table, view: &View) -> Result<Count, ListError> {
    if let Some(sql) = indexed_count_query(table, view, conn.is_postgres())? {
        let found = sql
            .load::<Window>(conn)?
            .into_iter()
            .next()
            .map_or(0, |w| w.walked);
        return Ok(if found > COUNT_LIMIT {
            Count::MoreThan(COUNT_LIMIT)
        } else {
            Count::Exact(found)
        });
    }
    let started = Instant::now();
    let mut matched = 0;
    let mut after: Option<String> = None;
    loop {
        let sql = count_query(table, view, after.as_deref(), conn.is_postgres())?;
        let window = sql
            .load::<Window>(conn)?
            .into_iter()
            .next()
            .ok_or(diesel::result::Error::NotFound)?;
        matched += window.matched.unwrap_or(0);
        if matched > COUNT_LIMIT {
            return Ok(Count::MoreThan(COUNT_LIMIT));
        }
        if window.walked < COUNT_WINDOW {
            return Ok(Count::Exact(matched));
        }
        if started.elapsed() >= COUNT_BUDGET {
            return Ok(Count::AtLeast(matched));
        }
        after = window.last;
    }
}

/// The row of `table` with key `key`.
pub fn row_query(table: &Table, key: &str, postgres: bool) -> Result<Sql, BadView> {
    let mut sql = Sql::new(postgres);
    sql.push(&format!(
        "SELECT {} FROM {} WHERE {} = ",
        select_list(table),
        ident(table.name),
        ident(table.key().name)
    ))
    .bind(typed(table.key(), key)?);
    Ok(sql)
}

pub fn find(conn: &mut Connection, table: &Table, key: &str) -> Result<Option<Row>, ListError> {
    let sql = row_query(table, key, conn.is_postgres())?;
    Ok(load_rows(conn, table, &sql)?.into_iter().next())
}

/// The view of `table`'s rows whose `column` equals `value`: a foreign key's
/// other side.
pub fn referring(table: &'static Table, column: &Column, value: &str) -> View {
    View {
        filters: vec![Filter {
            column: column.name,
            op: Op::Equals,
            value: value.to_owned(),
        }],
        ..View::first(table)
    }
}
