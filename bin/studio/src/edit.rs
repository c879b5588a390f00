//! Write mode: edit, insert and delete rows through the domain's own operations
//! (its validation and rules, as the API applies them), each in one transaction on
//! the single writer. An edit carries the values the page was loaded with; if the
//! row no longer holds them the save is refused and both versions are shown.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};

use crate::State;
use crate::pages::{self, find_table, html, layout, plain, row_link, row_table};
use crate::session::{Session, check_csrf};
use crate::tables::{self, Row, Table};
use domain::{
    Actor, FieldError, NewPostInput, NewUserInput, Post, PostChangesInput, Role, Timestamp, Token,
    User, UserChangesInput, ValidationErrors,
};

/// The studio acts with an administrator's rights: whoever holds its login link
/// holds the database file anyway.
fn studio() -> Actor {
    Actor::Member {
        id: "studio".into(),
        role: Role::Admin,
    }
}

/// Columns an edit may change, per table; the rest are shown, not edited.
fn editable(table: &Table) -> &'static [&'static str] {
    match table.name {
        "users" => &["email", "name", "role"],
        "posts" => &["title", "content", "published_at"],
        _ => &[],
    }
}

/// Columns an insert asks for.
fn inserted(table: &Table) -> &'static [&'static str] {
    match table.name {
        "users" => &["email", "name", "role"],
        "posts" => &["title", "content", "author_id", "published_at"],
        _ => &[],
    }
}

pub fn insertable(table: &Table) -> bool {
    !inserted(table).is_empty()
}

fn deletable(table: &Table) -> bool {
    matches!(table.name, "users" | "posts" | "tokens")
}

/// The column the API calls `field`.
fn column_of(field: &str) -> &str {
    match field {
        "authorId" => "author_id",
        "publishedAt" => "published_at",
        other => other,
    }
}

/// A form's fields in order.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn value(&self, column: &str) -> Option<String> {
        self.get(&format!("v.{column}")).map(str::to_owned)
    }

    /// The values the page was loaded with (`o.<column>`, see [`encode_original`]).
    fn original(&self, table: &Table) -> Option<Row> {
        table
            .columns
            .iter()
            .map(|c| serde_json::from_str(self.get(&format!("o.{}", c.name))?).ok())
            .collect()
    }
}

/// A loaded value as JSON (`null` or a string): it keeps NULL apart from text,
/// and its line breaks are escapes, which form submission cannot rewrite as CRLF.
fn encode_original(value: &Option<String>) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// `published_at` as typed: empty is NULL (a draft).
fn published_at(raw: &str) -> Result<Option<Timestamp>, ValidationErrors> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    tables::unix_seconds(raw)
        .and_then(Timestamp::from_unix)
        .map(Some)
        .ok_or_else(|| {
            ValidationErrors::single(
                "publishedAt",
                "must be Unix seconds or a UTC date (2026-12-01T09:30:00Z), or empty for NULL (a draft)",
            )
        })
}

/// The domain's outcome, joined by the date's own error when the date did not
/// parse: every invalid field is reported together, and an `Err` rolls back
/// whatever the domain wrote with the date left out.
fn with_date_error<T, D>(
    outcome: domain::Result<T>,
    date: Option<Result<D, ValidationErrors>>,
) -> Result<T, EditError> {
    match (outcome, date) {
        (outcome, None | Some(Ok(_))) => Ok(outcome?),
        (Err(domain::Error::Invalid(mut errors)), Some(Err(date))) => {
            errors.0.extend(date.0);
            Err(domain::Error::Invalid(errors).into())
        }
        (Ok(_), Some(Err(date))) => Err(date.into()),
        (Err(other), Some(Err(_))) => Err(other.into()),
    }
}

#[derive(Debug, thiserror::Error)]
enum EditError {
    #[error(transparent)]
    Domain(#[from] domain::Error),
    #[error("the row changed")]
    Stale(Row),
    #[error(transparent)]
    List(#[from] tables::ListError),
    #[error(transparent)]
    Db(#[from] db::Error),
}

impl From<diesel::result::Error> for EditError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Domain(err.into())
    }
}

impl From<ValidationErrors> for EditError {
    fn from(err: ValidationErrors) -> Self {
        Self::Domain(err.into())
    }
}

/// Runs `f` in one write transaction (`Db::write`: BEGIN IMMEDIATE on SQLite).
async fn write<T, F>(state: &web::Data<State>, f: F) -> Result<T, EditError>
where
    T: Send + 'static,
    F: FnMut(&mut db::Connection) -> Result<T, EditError> + Send + 'static,
{
    let state = state.clone();
    web::block(move || state.db.write(f))
        .await
        .map_err(|_| EditError::Db(db::Error::Busy))?
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// What a write that did not happen shows, when it is not a form to show again.
fn refusal(err: &EditError) -> HttpResponse {
    match err {
        EditError::Domain(domain::Error::NotFound) => plain(StatusCode::NOT_FOUND, "No such row."),
        EditError::Domain(domain::Error::Conflict(why)) => plain(
            StatusCode::CONFLICT,
            &format!("Refused (409): {why}. Nothing was changed."),
        ),
        EditError::Domain(domain::Error::Forbidden) => plain(StatusCode::FORBIDDEN, "Not allowed."),
        EditError::Db(db::Error::Busy)
        | EditError::Domain(domain::Error::Database(db::Error::Busy)) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "The database is busy; try again.",
        ),
        other => {
            tracing::error!(error = %other, "studio write failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The change failed; the studio's log has the details.",
            )
        }
    }
}

/// The inputs for `columns`, each with its error beside it.
fn inputs(table: &Table, columns: &[&str], values: &Row, errors: &[FieldError]) -> Markup {
    html! {
        @for name in columns {
            @if let Some(i) = table.index_of(name) {
                @let id = format!("v-{name}");
                @let error = errors.iter().find(|e| column_of(e.field) == *name);
                @let current = values[i].clone().unwrap_or_default();
                div.field.invalid[error.is_some()] {
                    label for=(id) { (name) }
                    @if *name == "content" {
                        textarea id=(id) name={ "v." (name) } rows="8" aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| format!("e-{name}"))] { (current) }
                    } @else {
                        input id=(id) name={ "v." (name) } value=(current) aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| format!("e-{name}"))];
                    }
                    @if let Some(e) = error { span.error id={ "e-" (name) } role="alert" { (e.message) } }
                    @if *name == "published_at" { span.hint { "Unix seconds or a UTC date; empty is NULL (a draft)" } }
                }
            }
        }
    }
}

/// The edit form of a row: `original` is what the page was loaded with (sent
/// back for the optimistic check), `values` what the inputs show.
pub fn edit_form(
    table: &Table,
    original: &Row,
    values: &Row,
    csrf: &str,
    errors: &[FieldError],
) -> Markup {
    let key = original[0].clone().unwrap_or_default();
    html! {
        @if !editable(table).is_empty() {
            form.edit method="post" action={ "/t/" (table.name) "/update" } data-cancel=(row_link(table, &key)) {
                h2 { "Edit" }
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="key" value=(key);
                @for (i, c) in table.columns.iter().enumerate() {
                    input type="hidden" name={ "o." (c.name) } value=(encode_original(&original[i]));
                }
                (inputs(table, editable(table), values, errors))
                div.actions {
                    button type="submit" { "Save" }
                    " "
                    a.cancel href=(row_link(table, &key)) { "Cancel" }
                }
            }
        }
        @if deletable(table) {
            p { a.danger href={ "/t/" (table.name) "/delete?" (serde_urlencoded::to_string([("key", &key)]).unwrap_or_default()) } { "Delete this row…" } }
        }
    }
}

/// The table, the fields and the session of a posted form, or the page that
/// refuses it (no such table, no CSRF token).
#[expect(
    clippy::result_large_err,
    reason = "the error is the page a handler answers with at once"
)]
fn posted(
    table: &str,
    req: &HttpRequest,
    form: web::Form<Vec<(String, String)>>,
) -> Result<(&'static Table, Fields, Session), HttpResponse> {
    let table = find_table(table)?;
    let fields = Fields(form.into_inner());
    let session = check_csrf(req, fields.get("csrf"))?;
    Ok((table, fields, session))
}

/// `POST /t/{table}/update`.
pub async fn update(
    state: web::Data<State>,
    path: web::Path<String>,
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let (table, fields, session) = crate::or_page!(posted(&path, &req, form));
    let (Some(key), Some(original)) =
        (fields.get("key").map(str::to_owned), fields.original(table))
    else {
        return plain(
            StatusCode::BAD_REQUEST,
            "The form lacks the row's key or its loaded values.",
        );
    };
    if editable(table).is_empty() {
        return plain(StatusCode::FORBIDDEN, "This table is not edited here.");
    }
    let changed: Vec<(&'static str, String)> = editable(table)
        .iter()
        .filter_map(|name| {
            let i = table.index_of(name)?;
            let was = original[i].clone().unwrap_or_default();
            // Browsers send line breaks as CRLF; text stored with bare LF stays so.
            let sent = match fields.value(name)? {
                sent if was.contains('\r') => sent,
                sent => sent.replace("\r\n", "\n"),
            };
            (sent != was).then_some((*name, sent))
        })
        .collect();
    let (id, loaded) = (key.clone(), original.clone());
    let outcome = write(&state, move |conn| {
        let current = tables::find(conn, table, &id)?.ok_or(domain::Error::NotFound)?;
        if current != loaded {
            return Err(EditError::Stale(current));
        }
        apply(conn, table, &id, &changed)
    })
    .await;
    let mut submitted = original.clone();
    for name in editable(table) {
        if let (Some(i), Some(v)) = (table.index_of(name), fields.value(name)) {
            // An empty nullable field is NULL (an unpublished post).
            submitted[i] = (!(v.is_empty() && table.columns[i].nullable)).then_some(v);
        }
    }
    match outcome {
        Ok(()) => see_other(&row_link(table, &key)),
        Err(EditError::Stale(current)) => html(
            StatusCode::CONFLICT,
            layout(
                &state,
                table.name,
                conflict(table, &original, &current, &submitted, &session.csrf),
            ),
        ),
        Err(EditError::Domain(domain::Error::Invalid(errors))) => html(
            StatusCode::UNPROCESSABLE_ENTITY,
            layout(
                &state,
                table.name,
                html! {
                    h1 { (table.name) " " code { (key) } }
                    p.message role="alert" { "Not saved: " (errors.0.len()) " value(s) to correct." }
                    (edit_form(table, &original, &submitted, &session.csrf, &errors.0))
                },
            ),
        ),
        Err(err) => refusal(&err),
    }
}

/// Applies the changed columns through the domain's update.
fn apply(
    conn: &mut db::Connection,
    table: &Table,
    key: &str,
    changed: &[(&str, String)],
) -> Result<(), EditError> {
    let get = |name: &str| {
        changed
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    match table.name {
        "users" => {
            let input = UserChangesInput {
                email: get("email"),
                name: get("name"),
                role: get("role"),
            };
            User::update(conn, &studio(), key, &input)?;
        }
        "posts" => {
            let id: i64 = key.parse().map_err(|_| domain::Error::NotFound)?;
            let date = get("published_at").map(|raw| published_at(&raw));
            let input = PostChangesInput {
                title: get("title"),
                content: get("content"),
                published_at: date.clone().and_then(Result::ok),
            };
            let updated = Post::update(conn, &studio(), id, &input, Timestamp::now());
            with_date_error(updated, date)?;
        }
        _ => return Err(domain::Error::Forbidden.into()),
    }
    Ok(())
}

/// The refusal of a stale edit: what was loaded, what is there now, and what was
/// sent; with the choice to apply the edit to the current version.
fn conflict(table: &Table, loaded: &Row, current: &Row, submitted: &Row, csrf: &str) -> Markup {
    html! {
        h1 { (table.name) " " code { (loaded[0].clone().unwrap_or_default()) } }
        p.message role="alert" { "Not saved: this row changed since the page was loaded. Nothing was overwritten." }
        table.conflict {
            thead { tr { th { "column" } th { "when loaded" } th { "now in the database" } th { "your edit" } } }
            tbody {
                @for (i, c) in table.columns.iter().enumerate() {
                    tr.changed[loaded[i] != current[i]] {
                        th scope="row" { (c.name) }
                        td { (pages::value(c.kind, &loaded[i], None)) }
                        td { (pages::value(c.kind, &current[i], None)) }
                        td { (pages::value(c.kind, &submitted[i], None)) }
                    }
                }
            }
        }
        p { "To keep your edit, check it against the current version below and save again." }
        (edit_form(table, current, submitted, csrf, &[]))
    }
}

/// `GET /t/{table}/new`.
pub async fn new_form(
    state: web::Data<State>,
    path: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let table = crate::or_page!(find_table(&path));
    if !state.write || !insertable(table) {
        return plain(
            StatusCode::FORBIDDEN,
            "Inserting needs write mode and a table that takes inserts.",
        );
    }
    let csrf = crate::session::csrf(&req);
    let empty: Row = vec![None; table.columns.len()];
    html(
        StatusCode::OK,
        layout(&state, table.name, insert_form(table, &empty, &csrf, &[])),
    )
}

fn insert_form(table: &Table, values: &Row, csrf: &str, errors: &[FieldError]) -> Markup {
    html! {
        h1 { "New row in " (table.name) }
        form.edit method="post" action={ "/t/" (table.name) "/insert" } data-cancel={ "/t/" (table.name) } {
            input type="hidden" name="csrf" value=(csrf);
            (inputs(table, inserted(table), values, errors))
            div.actions { button type="submit" { "Insert" } " " a.cancel href={ "/t/" (table.name) } { "Cancel" } }
        }
    }
}

/// `POST /t/{table}/insert`.
pub async fn insert(
    state: web::Data<State>,
    path: web::Path<String>,
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let (table, fields, session) = crate::or_page!(posted(&path, &req, form));
    let value = |name: &str| fields.value(name).unwrap_or_default();
    let (email, name, role) = (value("email"), value("name"), value("role"));
    let (title, content, author, published) = (
        value("title"),
        value("content"),
        value("author_id"),
        value("published_at"),
    );
    let outcome = match table.name {
        "users" => {
            let input = NewUserInput {
                email,
                name,
                role: (!role.trim().is_empty()).then_some(role),
            };
            write(&state, move |conn| {
                Ok(User::create(conn, &studio(), &input, Timestamp::now())?.id)
            })
            .await
        }
        "posts" => {
            write(&state, move |conn| {
                let date = published_at(&published);
                let input = NewPostInput {
                    title: title.clone(),
                    content: content.clone(),
                    author_id: Some(author.clone()),
                    published_at: date.clone().ok().flatten(),
                };
                let created = Post::create(conn, &studio(), &input);
                Ok(with_date_error(created, Some(date))?.id.to_string())
            })
            .await
        }
        _ => return plain(StatusCode::FORBIDDEN, "This table takes no inserts here."),
    };
    match outcome {
        Ok(key) => see_other(&row_link(table, &key)),
        Err(EditError::Domain(domain::Error::Invalid(errors))) => {
            let mut values: Row = vec![None; table.columns.len()];
            for name in inserted(table) {
                if let Some(i) = table.index_of(name) {
                    values[i] = fields.value(name);
                }
            }
            html(
                StatusCode::UNPROCESSABLE_ENTITY,
                layout(
                    &state,
                    table.name,
                    insert_form(table, &values, &session.csrf, &errors.0),
                ),
            )
        }
        Err(err) => refusal(&err),
    }
}

/// `GET /t/{table}/delete?key=`: asks first.
pub async fn confirm_delete(
    state: web::Data<State>,
    path: web::Path<String>,
    query: web::Query<pages::KeyQuery>,
    req: HttpRequest,
) -> HttpResponse {
    let table = crate::or_page!(find_table(&path));
    if !state.write || !deletable(table) {
        return plain(
            StatusCode::FORBIDDEN,
            "Deleting needs write mode and a table that allows it.",
        );
    }
    let key = query.into_inner().key;
    let wanted = key.clone();
    let row = match pages::read(&state, move |conn| tables::find(conn, table, &wanted)).await {
        Ok(Some(row)) => row,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "No such row."),
        Err(page) => return page,
    };
    let csrf = crate::session::csrf(&req);
    html(
        StatusCode::OK,
        layout(
            &state,
            table.name,
            html! {
                h1 { "Delete this " (table.name) " row?" }
                (row_table(table, &row))
                form.edit method="post" action={ "/t/" (table.name) "/delete" } data-cancel=(row_link(table, &key)) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="key" value=(key);
                    p { "This cannot be undone." }
                    div.actions { button.danger type="submit" { "Delete" } " " a.cancel href=(row_link(table, &key)) { "Cancel" } }
                }
            },
        ),
    )
}

/// `POST /t/{table}/delete`: through the domain (a user with posts stays).
pub async fn delete(
    state: web::Data<State>,
    path: web::Path<String>,
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let (table, fields, _) = crate::or_page!(posted(&path, &req, form));
    let Some(key) = fields.get("key").map(str::to_owned) else {
        return plain(StatusCode::BAD_REQUEST, "The form lacks the row's key.");
    };
    let outcome = write(&state, move |conn| {
        match table.name {
            "users" => User::delete(conn, &studio(), &key)?,
            "posts" => {
                let id: i64 = key.parse().map_err(|_| domain::Error::NotFound)?;
                Post::delete(conn, &studio(), id, Timestamp::now())?;
            }
            "tokens" => Token::revoke(conn, &studio(), &key)?,
            _ => return Err(domain::Error::Forbidden.into()),
        }
        Ok(())
    })
    .await;
    match outcome {
        Ok(()) => see_other(&format!("/t/{}", table.name)),
        Err(err) => refusal(&err),
    }
}
