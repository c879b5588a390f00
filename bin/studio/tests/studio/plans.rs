//! `EXPLAIN QUERY PLAN` over every query the table, row and count pages run, on
//! SQLite, for every table, sort, direction, position, filter and the search box.
//!
//! The rule: no plan line may be `SCAN <table>` without `USING ... INDEX` (a walk
//! of the whole table in storage order), and a plan may sort its result (`USE
//! TEMP B-TREE FOR ORDER BY`) only after an index lookup of one value (`(col=?)`):
//! then the sort covers the rows of that one value (a user's tokens), not the
//! table. Every page query is a keyset SEARCH of the
//! key or an index, even the first page, and stops after 51 rows. Filters that no
//! index serves (contains, search, empty, comparisons on unindexed columns) are
//! applied to rows as that search yields them: a page still reads rows in key
//! order and stops at 51 matches; the count reads one window of 5 000 keys per
//! statement and stops at its time budget, so neither runs unbounded.

use db::Connection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use studio::sql::Sql;
use studio::tables::{self, Op, Position, TABLES, Table, View};

use crate::common::{database, seed};

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    detail: String,
}

fn plan(conn: &mut Connection, sql: &Sql) -> Vec<String> {
    let mut explain = sql.clone();
    explain.text = format!("EXPLAIN QUERY PLAN {}", sql.text);
    explain
        .load::<PlanLine>(conn)
        .unwrap()
        .into_iter()
        .map(|l| l.detail)
        .collect()
}

fn sample(table: &Table, column: &str) -> &'static str {
    match table.column(column).unwrap().kind {
        tables::Kind::Int | tables::Kind::UnixTime => "1767225600",
        _ => "a",
    }
}

/// Every view a user can reach on `table`: each sort both ways at each position,
/// and each filter on each column.
fn views(table: &'static Table) -> Vec<View> {
    let mut views = Vec::new();
    for sort in table.columns.iter().filter(|c| c.sortable) {
        for descending in [false, true] {
            let s = sample(table, sort.name).to_owned();
            let k = sample(table, table.key().name).to_owned();
            for position in [
                Position::First,
                Position::After {
                    sort: s.clone(),
                    key: k.clone(),
                },
                Position::Before {
                    sort: s.clone(),
                    key: k.clone(),
                },
            ] {
                views.push(View {
                    sort: sort.name,
                    descending,
                    position,
                    ..View::first(table)
                });
            }
        }
    }
    for column in table.columns {
        for op in Op::ALL {
            views.push(View {
                filters: vec![tables::Filter {
                    column: column.name,
                    op,
                    value: sample(table, column.name).to_owned(),
                }],
                ..View::first(table)
            });
        }
    }
    views.push(View {
        search: "a".into(),
        ..View::first(table)
    });
    views
}

#[test]
fn no_page_query_scans_a_table() {
    let (db, _place) = database();
    if db.is_postgres() {
        return; // The plans checked are SQLite's; PostgreSQL runs the same statements.
    }
    seed(&db);
    let mut conn = db.reader_conn().unwrap();
    let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    let mut checked = 0;
    let mut bad = Vec::new();
    for table in TABLES {
        let mut queries: Vec<(String, Sql)> = Vec::new();
        for view in views(table) {
            queries.push((
                format!("page {view:?}"),
                tables::page_query(table, &view, false).unwrap(),
            ));
            if let Some(sql) = tables::indexed_count_query(table, &view, false).unwrap() {
                queries.push((format!("indexed count {view:?}"), sql));
            }
            queries.push((
                format!("count {view:?}"),
                tables::count_query(table, &view, None, false).unwrap(),
            ));
            let after = sample(table, table.key().name);
            queries.push((
                format!("count window {view:?}"),
                tables::count_query(table, &view, Some(after), false).unwrap(),
            ));
        }
        queries.push((
            "row".into(),
            tables::row_query(table, sample(table, table.key().name), false).unwrap(),
        ));
        for (other, column) in table.referenced_by() {
            let view = tables::referring(other, column, "a");
            queries.push((
                format!("{} of a {}", other.name, table.name),
                tables::page_query(other, &view, false).unwrap(),
            ));
        }
        for (what, sql) in queries {
            let lines = plan(&mut conn, &sql);
            checked += 1;
            for line in &lines {
                let scans_table = names.iter().any(|n| {
                    line == &format!("SCAN {n}")
                        || line.starts_with(&format!("SCAN {n} ")) && !line.contains("USING")
                });
                let one_value = lines
                    .iter()
                    .any(|l| l.starts_with("SEARCH ") && l.contains("INDEX") && l.ends_with("=?)"));
                let sorts_all = line.contains("USE TEMP B-TREE FOR ORDER BY") && !one_value;
                if scans_table || sorts_all {
                    bad.push(format!(
                        "{}: {what}\n  {}\n  plan: {lines:?}",
                        table.name, sql.text
                    ));
                }
            }
        }
    }
    assert!(checked > 200, "{checked}");
    assert!(
        bad.is_empty(),
        "{} queries scan or sort:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
