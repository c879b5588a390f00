//! The migration lint: what a reviewer would refuse in a migration, found before
//! it runs anywhere. `make test` runs it over both sets (`tests/lint.rs`).
//!
//! It reads every migration's `up.sql`, `down.sql` and `metadata.toml` in order and
//! fails on:
//! - `DROP TABLE` or `DROP COLUMN` in `up.sql` of a table its `loses_data` does not
//!   list (a table rebuilt in place, dropped then renamed back, loses nothing);
//! - on SQLite, a drop or rebuild of the parent of an `ON DELETE CASCADE` key in a
//!   migration not declared `rebuild` (it runs in a transaction, where foreign keys
//!   cannot be turned off: the cascade empties the child);
//! - `NOT NULL` added without a default to a table an earlier migration created
//!   (it may hold rows);
//! - a `down.sql` that is missing or empty; on SQLite, each migration is run up,
//!   down and up again on a scratch database and the schemas compared (tables,
//!   columns, indexes, foreign keys, triggers, views, virtual tables and their
//!   shadow tables);
//! - on SQLite, any change to the seed's five columns of `users` and `posts`;
//! - a `metadata.toml` that leaves out `run_in_transaction` (Diesel then takes it
//!   as false), or declares `rebuild` inside a transaction or on PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::Path;

use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text};

use crate::migrate::{revert_on, run_on};
use crate::{Connection, Declaration, Error, MigrationDirs, MigrationSet};

/// One thing the lint refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The migration's folder name.
    pub migration: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.migration, self.message)
    }
}

/// The seed's Drizzle tables and the columns they define; see CONTRACT.md.
const SEED_COLUMNS: [(&str, [&str; 5]); 2] = [
    ("users", ["id", "email", "name", "role", "created_at"]),
    (
        "posts",
        ["id", "title", "content", "author_id", "published_at"],
    ),
];

/// Lints the migrations in `dir` (one set, `set`'s), oldest first.
pub fn lint(dir: &Path, set: MigrationSet) -> Result<Vec<Finding>, Error> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(Error::io(format!("reading {}", dir.display())))?
        .flatten()
        .filter(|e| e.path().join("up.sql").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut findings = Vec::new();
    let mut tables: BTreeSet<String> = BTreeSet::new();
    // child -> parents whose delete cascades into it
    let mut cascades: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in &names {
        let folder = dir.join(name);
        let mut found = |message: String| {
            findings.push(Finding {
                migration: name.clone(),
                message,
            })
        };
        let up = read(&folder.join("up.sql"))?;
        let declaration = Declaration::read(&folder)?;
        check_metadata(&folder, &declaration, set, &mut found)?;
        match fs::read_to_string(folder.join("down.sql")) {
            Ok(down) if statements(&down).is_empty() => {
                found("down.sql is empty: it must undo up.sql".into())
            }
            Ok(_) => {}
            Err(_) => found("down.sql is missing: it must undo up.sql".into()),
        }
        let statements: Vec<Vec<String>> = statements(&up).iter().map(|s| words(s)).collect();
        let renamed_to: BTreeSet<String> = statements
            .iter()
            .filter_map(|w| match w.as_slice() {
                [a, t, _, r, to, new, ..]
                    if a == "alter" && t == "table" && r == "rename" && to == "to" =>
                {
                    Some(new.clone())
                }
                _ => None,
            })
            .collect();
        let updated: BTreeSet<String> = statements
            .iter()
            .filter_map(|w| {
                (w.first().map(String::as_str) == Some("update"))
                    .then(|| w.get(1).cloned())
                    .flatten()
            })
            .collect();
        let mut created = BTreeSet::new();
        let mut dropped = BTreeSet::new();
        for w in &statements {
            let first = w.first().map(String::as_str);
            if declaration.rebuild
                && (matches!(first, Some("begin" | "commit" | "end" | "rollback"))
                    || (first == Some("pragma") && w.iter().any(|x| x == "foreign_keys")))
            {
                found(format!(
                    "up.sql of a declared rebuild says {}: the runner turns foreign keys off \
                     and runs it in a transaction of its own; leave both out",
                    w.join(" ")
                ));
            }
            if let Some(table) = created_table(w) {
                for parent in cascade_parents(w) {
                    cascades.entry(table.clone()).or_default().insert(parent);
                }
                created.insert(table);
            }
            if let Some(table) = dropped_table(w) {
                let rebuilt = renamed_to.contains(&table);
                if !rebuilt && !declaration.may_lose(&table) {
                    found(format!(
                        "up.sql drops table {table}: if losing it is meant, say so in metadata.toml \
                         (loses_data = [\"{table}\"])"
                    ));
                }
                let children: Vec<&String> = cascades
                    .iter()
                    .filter(|(child, parents)| parents.contains(&table) && **child != table)
                    .map(|(child, _)| child)
                    .collect();
                if set == MigrationSet::Sqlite && !declaration.rebuild && !children.is_empty() {
                    let children: Vec<&str> = children.iter().map(|c| c.as_str()).collect();
                    found(format!(
                        "up.sql drops {table}, the parent of an ON DELETE CASCADE key ({}), inside \
                         a transaction: the cascade deletes their rows. Declare the rebuild in \
                         metadata.toml (run_in_transaction = false, rebuild = true)",
                        children.join(", ")
                    ));
                }
                if !rebuilt {
                    dropped.insert(table);
                }
            }
            if let Some((table, column)) = dropped_column(w)
                && !declaration.may_lose(&table)
            {
                found(format!(
                    "up.sql drops column {table}.{column}: if losing it is meant, say so in \
                     metadata.toml (loses_data = [\"{table}\"])"
                ));
            }
            if let Some((table, column)) = not_null_without_default(w, &updated)
                && tables.contains(&table)
            {
                found(format!(
                    "up.sql makes {table}.{column} NOT NULL without a default, and {table} may \
                     hold rows: give it a DEFAULT (or fill it first)"
                ));
            }
        }
        for table in dropped {
            tables.remove(&table);
            cascades.remove(&table);
        }
        tables.extend(created);
    }
    if set == MigrationSet::Sqlite {
        findings.extend(rehearse_each(dir, &names)?);
    }
    Ok(findings)
}

fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(Error::io(format!("reading {}", path.display())))
}

fn check_metadata(
    folder: &Path,
    declaration: &Declaration,
    set: MigrationSet,
    found: &mut impl FnMut(String),
) -> Result<(), Error> {
    let path = folder.join("metadata.toml");
    if !path.is_file() {
        return Ok(());
    }
    let text = read(&path)?;
    let keys: toml::Table =
        toml::from_str(&text).map_err(|e| Error::Migration(format!("{}: {e}", path.display())))?;
    if !keys.contains_key("run_in_transaction") {
        found(
            "metadata.toml leaves out run_in_transaction, which Diesel then takes as false: \
             write it out"
                .into(),
        );
    }
    for key in keys.keys() {
        if !["run_in_transaction", "loses_data", "rebuild"].contains(&key.as_str()) {
            found(format!("metadata.toml: unknown key {key}"));
        }
    }
    if declaration.rebuild && declaration.run_in_transaction {
        found("metadata.toml declares rebuild with run_in_transaction = true: say false".into());
    }
    if declaration.rebuild && set == MigrationSet::Postgres {
        found("metadata.toml declares rebuild on PostgreSQL, which alters tables in place".into());
    }
    Ok(())
}

/// The statements of a SQL file, comments removed. A trigger body (`BEGIN ...
/// END`) and PostgreSQL's dollar-quoted bodies stay whole.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    let mut depth = 0usize; // BEGIN ... END nesting inside CREATE TRIGGER
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '-' && next == Some('-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
            current.push(' ');
            continue;
        }
        if matches!(c, '\'' | '"' | '`') {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            i += 1;
            current.extend(&chars[start..i.min(chars.len())]);
            continue;
        }
        if c == '$' {
            let tag_end = chars[i + 1..]
                .iter()
                .position(|&c| c == '$')
                .map(|p| i + 1 + p);
            if let Some(end) = tag_end
                && chars[i + 1..end]
                    .iter()
                    .all(|c| c.is_alphanumeric() || *c == '_')
            {
                let tag: String = chars[i..=end].iter().collect();
                let rest: String = chars[end + 1..].iter().collect();
                let close = rest.find(&tag).map_or(rest.len(), |p| p + tag.len());
                current.push_str(&tag);
                current.push_str(&rest[..close]);
                i = end + 1 + rest[..close].chars().count();
                continue;
            }
        }
        if c.is_alphabetic() && (i == 0 || !is_word(chars[i - 1])) {
            let end = chars[i..]
                .iter()
                .position(|&c| !is_word(c))
                .map_or(chars.len(), |p| i + p);
            let word: String = chars[i..end]
                .iter()
                .collect::<String>()
                .to_ascii_lowercase();
            let in_trigger = words(&current).iter().take(4).any(|w| w == "trigger");
            if word == "begin" && in_trigger {
                depth += 1;
            } else if word == "end" && depth > 0 {
                depth -= 1;
            }
            current.extend(&chars[i..end]);
            i = end;
            continue;
        }
        if c == ';' && depth == 0 {
            if !current.trim().is_empty() {
                out.push(current.trim().to_owned());
            }
            current.clear();
        } else {
            current.push(c);
        }
        i += 1;
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// A statement as lower-case words: quoted identifiers unquoted, a schema prefix
/// dropped, string literals as `'`, punctuation as single characters.
fn words(statement: &str) -> Vec<String> {
    let chars: Vec<char> = statement.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if matches!(c, '"' | '`' | '[') {
            let close = if c == '[' { ']' } else { c };
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == close)
                .map_or(chars.len(), |p| i + 1 + p);
            out.push(
                chars[i + 1..end]
                    .iter()
                    .collect::<String>()
                    .to_ascii_lowercase(),
            );
            i = end + 1;
        } else if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == '\'')
                .map_or(chars.len(), |p| i + 1 + p);
            out.push("'".into());
            i = end + 1;
        } else if is_word(c) {
            let end = chars[i..]
                .iter()
                .position(|&x| !is_word(x))
                .map_or(chars.len(), |p| i + p);
            out.push(
                chars[i..end]
                    .iter()
                    .collect::<String>()
                    .to_ascii_lowercase(),
            );
            i = end;
        } else if c == '.' && !out.is_empty() {
            // `main.users`: keep the table's name only.
            out.pop();
            i += 1;
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

/// Skips `if exists` / `if not exists` at `at`.
fn skip_if(w: &[String], at: usize) -> usize {
    match (
        w.get(at).map(String::as_str),
        w.get(at + 1).map(String::as_str),
    ) {
        (Some("if"), Some("not")) => at + 3,
        (Some("if"), Some("exists")) => at + 2,
        _ => at,
    }
}

fn created_table(w: &[String]) -> Option<String> {
    let table_at = match w {
        [c, t, ..] if c == "create" && t == "table" => 2,
        [c, v, t, ..]
            if c == "create"
                && (v == "virtual" || v == "temp" || v == "temporary")
                && t == "table" =>
        {
            3
        }
        _ => return None,
    };
    w.get(skip_if(w, table_at)).cloned()
}

fn dropped_table(w: &[String]) -> Option<String> {
    match w {
        [d, t, ..] if d == "drop" && t == "table" => w.get(skip_if(w, 2)).cloned(),
        _ => None,
    }
}

/// The table an `ALTER TABLE` changes, and the words after its name.
fn altered(w: &[String]) -> Option<(String, &[String])> {
    let [a, t, ..] = w else { return None };
    if a != "alter" || t != "table" {
        return None;
    }
    let table_at = skip_if(w, 2);
    Some((w.get(table_at)?.clone(), w.get(table_at + 1..)?))
}

/// `ALTER TABLE t DROP [COLUMN] c`.
fn dropped_column(w: &[String]) -> Option<(String, String)> {
    let (table, rest) = altered(w)?;
    let drop = rest.iter().position(|x| x == "drop")?;
    let mut column_at = drop + 1;
    if rest.get(column_at).map(String::as_str) == Some("column") {
        column_at += 1;
    } else if rest
        .get(column_at)
        .is_some_and(|x| x == "constraint" || x == "default" || x == "not")
    {
        return None;
    }
    let column_at = skip_if(rest, column_at);
    Some((table, rest.get(column_at)?.clone()))
}

/// `ALTER TABLE t ADD [COLUMN] c ... NOT NULL` without `DEFAULT`, or `ALTER TABLE t
/// ALTER [COLUMN] c SET NOT NULL` with no `UPDATE t` before it in the file.
fn not_null_without_default(w: &[String], updated: &BTreeSet<String>) -> Option<(String, String)> {
    let (table, rest) = altered(w)?;
    let has = |pair: [&str; 2]| rest.windows(2).any(|p| p[0] == pair[0] && p[1] == pair[1]);
    match rest.first().map(String::as_str) {
        Some("add") => {
            let mut at = 1;
            if rest.get(at).map(String::as_str) == Some("column") {
                at += 1;
            }
            if rest.get(at).is_some_and(|x| {
                x == "constraint" || x == "primary" || x == "unique" || x == "foreign"
            }) {
                return None;
            }
            let column = rest.get(skip_if(rest, at))?.clone();
            let generated = rest.iter().any(|x| x == "generated");
            (has(["not", "null"]) && !rest.iter().any(|x| x == "default") && !generated)
                .then_some((table, column))
        }
        Some("alter") if has(["set", "not"]) && !updated.contains(&table) => {
            let at = if rest.get(1).map(String::as_str) == Some("column") {
                2
            } else {
                1
            };
            Some((table, rest.get(at)?.clone()))
        }
        _ => None,
    }
}

/// The tables a `CREATE TABLE` references with `ON DELETE CASCADE`.
fn cascade_parents(w: &[String]) -> Vec<String> {
    let mut parents = Vec::new();
    for (i, word) in w.iter().enumerate() {
        if word != "references" {
            continue;
        }
        let Some(parent) = w.get(i + 1) else { continue };
        let mut at = i + 2;
        if w.get(at).map(String::as_str) == Some("(") {
            at += w[at..].iter().position(|x| x == ")").map_or(0, |p| p + 1);
        }
        let clause: Vec<&String> = w[at.min(w.len())..]
            .iter()
            .take_while(|x| !matches!(x.as_str(), "," | ")" | "references"))
            .collect();
        if clause
            .windows(3)
            .any(|x| x[0] == "on" && x[1] == "delete" && x[2] == "cascade")
        {
            parents.push(parent.clone());
        }
    }
    parents
}

/// Each SQLite migration run up, down and up again on a scratch database in
/// memory: the schema after down is the one before up, and after the second up
/// the one after the first. And the seed's columns never change.
fn rehearse_each(dir: &Path, names: &[String]) -> Result<Vec<Finding>, Error> {
    let dirs = MigrationDirs {
        sqlite: dir.to_owned(),
        postgres: dir.to_owned(),
    };
    let mut scratch = <SqliteConnection as diesel::Connection>::establish(":memory:")
        .map_err(|e| Error::Migration(format!("a scratch database: {e}")))?;
    diesel::connection::SimpleConnection::batch_execute(&mut scratch, "PRAGMA foreign_keys = ON")?;
    let mut conn = Connection::Sqlite(scratch);
    let mut findings = Vec::new();
    let mut seed: Option<Vec<ColumnRow>> = None;
    for name in names {
        let mut found = |message: String| {
            findings.push(Finding {
                migration: name.clone(),
                message,
            })
        };
        // Up, down, up: after each, the schema must be the one named.
        let before = schema(&mut conn)?;
        let mut after = None;
        for (step, fails, differs) in [
            ("up", "up.sql fails on a scratch database", ""),
            (
                "down",
                "down.sql fails after up.sql",
                "down.sql does not undo up.sql",
            ),
            (
                "up",
                "up.sql fails after down.sql",
                "up.sql after down.sql builds another schema",
            ),
        ] {
            let ran = if step == "up" {
                run_on(&dirs, &mut conn, std::slice::from_ref(name)).map(|_| ())
            } else {
                revert_on(&dirs, &mut conn, name)
            };
            if let Err(e) = ran {
                found(format!("{fails}: {e}"));
                return Ok(findings);
            }
            let now = schema(&mut conn)?;
            let expected = match (step, &after) {
                ("down", _) => Some(&before),
                (_, Some(first)) => Some(first),
                _ => None,
            };
            if let Some(expected) = expected
                && *expected != now
            {
                found(format!("{differs}: {}", difference(expected, &now)));
            }
            after.get_or_insert(now);
        }
        let columns = seed_columns(&mut conn)?;
        match &seed {
            None if !columns.is_empty() => seed = Some(columns),
            Some(first) if *first != columns => found(format!(
                "changes the seed's columns of users or posts, which the Drizzle file \
                 interchange needs unchanged: {}",
                difference_rows(first, &columns)
            )),
            _ => {}
        }
    }
    Ok(findings)
}

/// What the schema is made of, in words that survive a rebuild: each object's
/// kind and name, each table's columns, indexes and foreign keys, and the SQL of
/// triggers, views and virtual tables (whitespace folded).
type Schema = BTreeMap<String, Vec<String>>;

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
struct ObjectRow {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    sql: Option<String>,
}

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    declared: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
    #[diesel(sql_type = Nullable<Text>)]
    dflt_value: Option<String>,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

fn sqlite(conn: &mut Connection) -> Result<&mut SqliteConnection, Error> {
    match conn {
        Connection::Sqlite(c) => Ok(c),
        Connection::Pg(_) => Err(Error::Migration(
            "the lint's scratch database is SQLite".into(),
        )),
    }
}

fn columns_of(conn: &mut SqliteConnection, table: &str) -> Result<Vec<ColumnRow>, Error> {
    Ok(diesel::sql_query(
        "SELECT ? AS table_name, name, type AS declared, \"notnull\", dflt_value, pk \
         FROM pragma_table_xinfo(?) ORDER BY cid",
    )
    .bind::<Text, _>(table)
    .bind::<Text, _>(table)
    .load(conn)?)
}

fn schema(conn: &mut Connection) -> Result<Schema, Error> {
    let conn = sqlite(conn)?;
    let objects: Vec<ObjectRow> = diesel::sql_query(
        "SELECT type AS kind, name, sql FROM sqlite_master \
         WHERE name NOT LIKE 'sqlite_%' AND name != '__diesel_schema_migrations' ORDER BY type, name",
    )
    .load(conn)?;
    let mut out = Schema::new();
    for o in objects {
        let fold = |sql: &Option<String>| {
            sql.as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut facts = Vec::new();
        let is_virtual = fold(&o.sql)
            .to_ascii_lowercase()
            .starts_with("create virtual table");
        if o.kind == "table" && !is_virtual {
            for c in columns_of(conn, &o.name)? {
                facts.push(format!(
                    "column {} {} notnull={} default={:?} pk={}",
                    c.name, c.declared, c.notnull, c.dflt_value, c.pk
                ));
            }
            let fks: Vec<ObjectRow> = diesel::sql_query(
                "SELECT 'fk' AS kind, \"from\" || ' -> ' || \"table\" || '.' || coalesce(\"to\", '') AS name, \
                 on_update || ' ' || on_delete AS sql FROM pragma_foreign_key_list(?) ORDER BY id, seq",
            )
            .bind::<Text, _>(&o.name)
            .load(conn)?;
            facts.extend(
                fks.iter()
                    .map(|f| format!("foreign key {} {}", f.name, fold(&f.sql))),
            );
        } else if o.kind == "index" {
            let columns: Vec<ObjectRow> = diesel::sql_query(
                "SELECT 'column' AS kind, coalesce(name, '<expression>') AS name, NULL AS sql \
                 FROM pragma_index_xinfo(?) WHERE key ORDER BY seqno",
            )
            .bind::<Text, _>(&o.name)
            .load(conn)?;
            let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            facts.push(format!("on ({}) {}", names.join(", "), fold(&o.sql)));
        } else {
            facts.push(fold(&o.sql));
        }
        out.insert(format!("{} {}", o.kind, o.name), facts);
    }
    Ok(out)
}

fn seed_columns(conn: &mut Connection) -> Result<Vec<ColumnRow>, Error> {
    let conn = sqlite(conn)?;
    let mut out = Vec::new();
    for (table, columns) in SEED_COLUMNS {
        out.extend(
            columns_of(conn, table)?
                .into_iter()
                .filter(|c| columns.contains(&c.name.as_str())),
        );
    }
    Ok(out)
}

fn difference(expected: &Schema, actual: &Schema) -> String {
    let mut notes = Vec::new();
    for (name, facts) in expected {
        match actual.get(name) {
            None => notes.push(format!("{name} is missing")),
            Some(other) if other != facts => {
                let gone: Vec<&String> = facts.iter().filter(|f| !other.contains(f)).collect();
                let new: Vec<&String> = other.iter().filter(|f| !facts.contains(f)).collect();
                notes.push(format!("{name} differs (was {gone:?}, now {new:?})"));
            }
            _ => {}
        }
    }
    notes.extend(
        actual
            .keys()
            .filter(|k| !expected.contains_key(*k))
            .map(|k| format!("{k} is left over")),
    );
    notes.join("; ")
}

fn difference_rows(first: &[ColumnRow], now: &[ColumnRow]) -> String {
    let describe = |c: &ColumnRow| {
        format!(
            "{}.{} {} notnull={} default={:?} pk={}",
            c.table_name, c.name, c.declared, c.notnull, c.dflt_value, c.pk
        )
    };
    let was: Vec<String> = first
        .iter()
        .filter(|c| !now.contains(c))
        .map(describe)
        .collect();
    let is: Vec<String> = now
        .iter()
        .filter(|c| !first.contains(c))
        .map(describe)
        .collect();
    format!("was {was:?}, now {is:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_keep_trigger_bodies_and_dollar_quotes_whole() {
        let sql = "-- a comment; with a semicolon\n\
                   CREATE TABLE a (x text DEFAULT ';');\n\
                   CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); DELETE FROM b; END;\n\
                   CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN NEW.x := 1; RETURN NEW; END $$ LANGUAGE plpgsql;\n\
                   /* ; */ DROP TABLE a";
        let found = statements(sql);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[1].ends_with("END"), "{}", found[1]);
        assert!(found[2].contains("RETURN NEW; END $$"), "{}", found[2]);
        assert_eq!(words(&found[3]), ["drop", "table", "a"]);
    }

    #[test]
    fn the_statement_rules_read_quoted_and_qualified_names() {
        let w = words("ALTER TABLE `main`.`tokens` DROP COLUMN \"label\"");
        assert_eq!(dropped_column(&w), Some(("tokens".into(), "label".into())));
        let w = words("ALTER TABLE tokens ADD COLUMN kind text NOT NULL");
        assert_eq!(
            not_null_without_default(&w, &BTreeSet::new()),
            Some(("tokens".into(), "kind".into()))
        );
        let w = words("ALTER TABLE tokens ADD COLUMN kind text NOT NULL DEFAULT 'api'");
        assert_eq!(not_null_without_default(&w, &BTreeSet::new()), None);
        let w = words("ALTER TABLE tokens ALTER COLUMN label SET NOT NULL");
        assert_eq!(
            not_null_without_default(&w, &BTreeSet::new()),
            Some(("tokens".into(), "label".into()))
        );
        let filled = BTreeSet::from(["tokens".to_owned()]);
        assert_eq!(not_null_without_default(&w, &filled), None);
        let w = words(
            "CREATE TABLE t (a text REFERENCES users (id) ON DELETE CASCADE, \
             b text, FOREIGN KEY (b) REFERENCES posts(id) ON DELETE no action)",
        );
        assert_eq!(cascade_parents(&w), ["users"]);
    }
}
