//! The read pages: the list of tables with their counts, a table's page (keyset
//! pager, sort, filters, search, export links) and a row's page (every value in
//! full, foreign keys both ways), and how a stored value is shown.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{DOCTYPE, Markup, html};

use crate::State;
use crate::tables::{self, Count, Kind, Op, Page, Position, Row, TABLES, Table, View};

/// Text longer than this is cut in lists, with a link to the whole.
pub const SHORT: usize = 80;

/// A page of text alone, for refusals and errors.
pub fn plain(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(
            html! {
                (DOCTYPE)
                html lang="en" {
                    head { meta charset="utf-8"; title { "Studio" } link rel="stylesheet" href="/assets/studio.css"; }
                    body { main { p.message role="alert" { (message) } } }
                }
            }
            .into_string(),
        )
}

/// A full page in the studio's frame.
pub fn layout(state: &State, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Studio" }
                link rel="stylesheet" href="/assets/studio.css";
                script src="/assets/studio.js" defer {}
            }
            body {
                header {
                    nav aria-label="Studio" {
                        a.brand href="/" { "Studio" }
                        @for table in TABLES { a href={ "/t/" (table.name) } { (table.name) } }
                        span.sep {}
                        a href="/migrations" { "Migrations" }
                        a href="/backups" { "Backups" }
                        a href="/facts" { "Database" }
                        span.mode.write[state.write] { @if state.write { "write mode" } @else { "read-only" } }
                        span.backend { (state.db.backend()) }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn html(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// Runs a read on a reader connection, off the async threads.
pub async fn read<T, F>(state: &web::Data<State>, f: F) -> Result<T, HttpResponse>
where
    T: Send + 'static,
    F: FnOnce(&mut db::Connection) -> Result<T, tables::ListError> + Send + 'static,
{
    let state = state.clone();
    blocking(move || state.db.read(|conn| f(conn).map_err(Failure::from))).await
}

/// Runs blocking work off the async threads; an error becomes a page.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, HttpResponse> {
    match web::block(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(err.page()),
        Err(_) => Err(plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "The studio is busy.",
        )),
    }
}

/// Why a read did not give a page.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    List(#[from] tables::ListError),
    #[error(transparent)]
    Db(#[from] db::Error),
}

impl Failure {
    pub fn page(&self) -> HttpResponse {
        match self {
            Failure::List(tables::ListError::View(bad)) => plain(StatusCode::BAD_REQUEST, &bad.0),
            Failure::Db(db::Error::Busy) => plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is busy; try again.",
            ),
            other => {
                tracing::error!(error = %other, "studio read failed");
                plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The database query failed; the studio's log has the details.",
                )
            }
        }
    }
}

/// `GET /`: the tables with their counts.
pub async fn index(state: web::Data<State>) -> HttpResponse {
    let counts = read(&state, |conn| {
        TABLES
            .iter()
            .map(|t| tables::count(conn, t, &View::first(t)))
            .collect::<Result<Vec<Count>, _>>()
    })
    .await;
    let counts = crate::or_page!(counts);
    html(
        StatusCode::OK,
        layout(
            &state,
            "Tables",
            html! {
                h1 { "Tables" }
                table.list {
                    thead { tr { th { "table" } th.num { "rows" } } }
                    tbody {
                        @for (table, count) in TABLES.iter().zip(counts) {
                            tr { td { a href={ "/t/" (table.name) } { (table.name) } } td.num { (count.to_string()) } }
                        }
                    }
                }
                p.hint { "Counts stop at " (tables::grouped(tables::COUNT_LIMIT)) " rows or after "
                    (tables::COUNT_BUDGET.as_millis()) " ms, whichever comes first." }
            },
        ),
    )
}

#[expect(
    clippy::result_large_err,
    reason = "the error is the page a handler answers with at once"
)]
pub fn find_table(name: &str) -> Result<&'static Table, HttpResponse> {
    tables::table(name).ok_or_else(|| plain(StatusCode::NOT_FOUND, "No such table."))
}

/// A stored value as shown in a cell: NULL and the empty string look different,
/// Unix seconds get their UTC date beside them, long text is cut when `link` to
/// the whole is given.
pub fn value(kind: Kind, value: &Option<String>, whole: Option<&str>) -> Markup {
    let Some(text) = value else {
        return html! { span.null title="NULL" { "NULL" } };
    };
    if text.is_empty() {
        return html! { span.empty title="empty string" { "\u{201C}\u{201D}" } };
    }
    match kind {
        Kind::UnixTime => match text
            .parse::<i64>()
            .ok()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        {
            Some(at) => html! {
                span.int { (text) } " " time.date datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S UTC")) }
            },
            None => html! { span.int { (text) } " " span.warn { "(not Unix seconds)" } },
        },
        Kind::Int => html! { span.int { (text) } },
        Kind::Text | Kind::Moment => {
            let chars = text.chars().count();
            match whole {
                Some(link) if chars > SHORT => {
                    let cut: String = text.chars().take(SHORT).collect();
                    html! { span.text { (cut) } "… " a.more href=(link) { "(all " (chars) " characters)" } }
                }
                _ => html! { span.text { (text) } },
            }
        }
    }
}

pub fn row_link(table: &Table, key: &str) -> String {
    format!(
        "/t/{}/row?{}",
        table.name,
        serde_urlencoded::to_string([("key", key)]).unwrap_or_default()
    )
}

pub fn view_link(table: &Table, view: &View, position: &Position) -> String {
    let query = view.query(table, position);
    if query.is_empty() {
        format!("/t/{}", table.name)
    } else {
        format!("/t/{}?{query}", table.name)
    }
}

/// A cell of a list or a row page: the key and foreign keys link to their rows.
pub fn cell(table: &Table, index: usize, row: &Row, cut: bool) -> Markup {
    let column = &table.columns[index];
    let stored = &row[index];
    let key = row[0].clone().unwrap_or_default();
    let whole = cut.then(|| format!("{}#{}", row_link(table, &key), column.name));
    let shown = value(column.kind, stored, whole.as_deref());
    let target = column.references.and_then(tables::table);
    match (index, target, stored) {
        (0, _, Some(k)) if cut => html! { a href=(row_link(table, k)) { (shown) } },
        (_, Some(target), Some(k)) => {
            html! { a.fk href=(row_link(target, k)) title={ "the " (target.name) " row" } { (shown) } }
        }
        _ => shown,
    }
}

/// The hidden inputs that keep the rest of a view in a GET form.
fn keep(view: &View, search: bool, filters: bool) -> Markup {
    html! {
        input type="hidden" name="sort" value=(view.sort);
        input type="hidden" name="dir" value=(if view.descending { "desc" } else { "asc" });
        @if filters { @for f in &view.filters { input type="hidden" name="f" value=(f.encode()); } }
        @if search && !view.search.is_empty() { input type="hidden" name="q" value=(view.search); }
    }
}

/// `GET /t/{table}`: one page of rows.
pub async fn table(
    state: web::Data<State>,
    path: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let table = crate::or_page!(find_table(&path));
    let view = match View::parse(table, req.query_string()) {
        Ok(view) => view,
        Err(bad) => return plain(StatusCode::BAD_REQUEST, &bad.0),
    };
    let shown = view.clone();
    let loaded = read(&state, move |conn| {
        let page = tables::list(conn, table, &shown)?;
        let count = tables::count(conn, table, &shown)?;
        Ok((page, count))
    })
    .await;
    let (page, count) = crate::or_page!(loaded);
    html(
        StatusCode::OK,
        layout(
            &state,
            table.name,
            table_page(&state, table, &view, &page, count),
        ),
    )
}

fn table_page(
    state: &State,
    table: &'static Table,
    view: &View,
    page: &Page,
    count: Count,
) -> Markup {
    let first = view_link(table, view, &Position::First);
    let export = |format: &str| {
        let query = view.query(table, &Position::First);
        format!(
            "/t/{}/export.{format}{}{query}",
            table.name,
            if query.is_empty() { "" } else { "?" }
        )
    };
    html! {
        h1 { (table.name) " " small.count { (count.to_string()) @if count == Count::Exact(1) { " row" } @else { " rows" } } }
        div.tools {
            form.search method="get" action={ "/t/" (table.name) } role="search" {
                (keep(view, false, true))
                label for="q" { "Search text columns" }
                input #q type="search" name="q" value=(view.search) placeholder="contains…";
                button type="submit" { "Search" }
            }
            form.filter method="get" action={ "/t/" (table.name) } {
                (keep(view, true, true))
                label for="fc" { "Filter" }
                select #fc name="fc" {
                    @for c in table.columns { option value=(c.name) { (c.name) } }
                }
                select name="fo" aria-label="operator" {
                    @for op in Op::ALL { option value=(op.code()) { (op.label()) } }
                }
                input name="fv" aria-label="value" placeholder="value";
                button type="submit" name="add" value="1" { "Add filter" }
            }
            @if state.write && crate::edit::insertable(table) {
                a.button href={ "/t/" (table.name) "/new" } { "Insert row" }
            }
            span.export { "Export: " a href=(export("csv")) { "CSV" } " " a href=(export("json")) { "JSON" } }
        }
        @if !view.filters.is_empty() {
            ul.filters aria-label="Filters" {
                @for (i, f) in view.filters.iter().enumerate() {
                    li {
                        code { (f.column) " " (f.op.label()) @if f.op.takes_value() { " " q { (f.value) } } }
                        " "
                        a href=(view_link(table, &View { filters: view.filters.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, f)| f.clone()).collect(), ..view.clone() }, &Position::First)) aria-label="remove filter" { "remove" }
                    }
                }
            }
        }
        div.scroll {
            table.rows {
                thead { tr {
                    @for c in table.columns {
                        th {
                            @if c.sortable {
                                @let descending = if view.sort == c.name { !view.descending } else { false };
                                a href=(view_link(table, &View { sort: c.name, descending, ..view.clone() }, &Position::First)) title="sort" {
                                    (c.name)
                                    @if view.sort == c.name { @if view.descending { " ↓" } @else { " ↑" } }
                                }
                            } @else { (c.name) }
                        }
                    }
                } }
                tbody {
                    @for row in &page.rows {
                        tr { @for i in 0..table.columns.len() { td { (cell(table, i, row, true)) } } }
                    }
                    @if page.rows.is_empty() { tr { td colspan=(table.columns.len()) { em { "No rows." } } } }
                }
            }
        }
        nav.pager aria-label="Pages" {
            a href=(first) { "« First" }
            @match &page.previous { Some(p) => a rel="prev" href=(view_link(table, view, p)) { "‹ Previous" }, None => span.off { "‹ Previous" } }
            @match &page.next { Some(p) => a rel="next" href=(view_link(table, view, p)) { "Next ›" }, None => span.off { "Next ›" } }
            span.hint { (tables::PAGE) " rows a page, by " (view.sort) }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct KeyQuery {
    pub key: String,
}

/// `GET /t/{table}/row?key=`: one row in full, with what refers to it.
pub async fn row(
    state: web::Data<State>,
    path: web::Path<String>,
    query: web::Query<KeyQuery>,
    req: HttpRequest,
) -> HttpResponse {
    let table = crate::or_page!(find_table(&path));
    let key = query.into_inner().key;
    let wanted = key.clone();
    let loaded = read(&state, move |conn| {
        let row = tables::find(conn, table, &wanted)?;
        let mut related = Vec::new();
        if row.is_some() {
            for (other, column) in table.referenced_by() {
                let view = tables::referring(other, column, &wanted);
                let page = tables::list(conn, other, &view)?;
                related.push((other, view, page));
            }
        }
        Ok((row, related))
    })
    .await;
    let (row, related) = crate::or_page!(loaded);
    let Some(row) = row else {
        return plain(StatusCode::NOT_FOUND, "No such row.");
    };
    let csrf = crate::session::csrf(&req);
    let body = html! {
        h1 { (table.name) " " code { (key) } }
        (row_table(table, &row))
        @if state.write {
            (crate::edit::edit_form(table, &row, &row, &csrf, &[]))
        }
        @for (other, view, page) in &related {
            section.related {
                h2 { (other.name) " of this " (table.name.trim_end_matches('s')) " "
                    a href=(view_link(other, view, &Position::First)) { "(open as a filtered table)" } }
                table.rows {
                    thead { tr { @for c in other.columns { th { (c.name) } } } }
                    tbody {
                        @for r in &page.rows { tr { @for i in 0..other.columns.len() { td { (cell(other, i, r, true)) } } } }
                        @if page.rows.is_empty() { tr { td colspan=(other.columns.len()) { em { "None." } } } }
                    }
                }
                @if page.next.is_some() { p { a href=(view_link(other, view, page.next.as_ref().unwrap_or(&Position::First))) { "more…" } } }
            }
        }
    };
    html(StatusCode::OK, layout(&state, table.name, body))
}

/// Every value of a row, in full.
pub fn row_table(table: &Table, row: &Row) -> Markup {
    html! {
        table.record {
            tbody {
                @for (i, c) in table.columns.iter().enumerate() {
                    tr id=(c.name) {
                        th scope="row" { (c.name) }
                        td { (cell(table, i, row, false)) }
                    }
                }
            }
        }
    }
}
