//! Export of a view (its filters, search and sort; every page of it) as CSV or
//! JSON, streamed: a thread reads keyset batches and hands each one, encoded, to
//! the response through a channel of a few chunks, so memory stays flat however
//! many rows there are, and a client that goes away stops the reading.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use tokio::sync::mpsc;

use crate::State;
use crate::pages::{find_table, plain};
use crate::tables::{self, Kind, Row, Table, View};

/// Rows read per statement.
const BATCH: i64 = 1_000;

/// Chunks of the body as they are produced.
struct Chunks(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

/// A CSV field: NULL is an empty field, the empty string a quoted empty field.
fn csv_field(value: &Option<String>) -> String {
    match value {
        None => String::new(),
        Some(text) => format!("\"{}\"", text.replace('"', "\"\"")),
    }
}

fn json_value(kind: Kind, value: &Option<String>) -> serde_json::Value {
    match (kind, value) {
        (_, None) => serde_json::Value::Null,
        (Kind::Int | Kind::UnixTime, Some(text)) => text
            .parse::<i64>()
            .map_or_else(|_| serde_json::Value::String(text.clone()), Into::into),
        (_, Some(text)) => serde_json::Value::String(text.clone()),
    }
}

fn encode(table: &Table, format: Format, rows: &[Row], first: bool) -> String {
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        match format {
            Format::Csv => {
                let fields: Vec<String> = row.iter().map(csv_field).collect();
                out.push_str(&fields.join(","));
                out.push_str("\r\n");
            }
            Format::Json => {
                if !(first && n == 0) {
                    out.push_str(",\n");
                }
                let object: serde_json::Map<String, serde_json::Value> = table
                    .columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| (c.name.to_owned(), json_value(c.kind, v)))
                    .collect();
                out.push_str(&serde_json::Value::Object(object).to_string());
            }
        }
    }
    out
}

/// `GET /t/{table}/export.csv` and `.json`, with the view's query string.
pub async fn export(
    state: web::Data<State>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> HttpResponse {
    let (name, format) = path.into_inner();
    let table = crate::or_page!(find_table(&name));
    let format = match format.as_str() {
        "csv" => Format::Csv,
        "json" => Format::Json,
        _ => return plain(StatusCode::NOT_FOUND, "Export as csv or json."),
    };
    let view = match View::parse(table, req.query_string()) {
        Ok(view) => view,
        Err(bad) => return plain(StatusCode::BAD_REQUEST, &bad.0),
    };
    let (tx, rx) = mpsc::channel(4);
    let db = state.db.clone();
    std::thread::spawn(move || {
        let head = match format {
            Format::Csv => {
                let names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
                format!("{}\r\n", names.join(","))
            }
            Format::Json => "[\n".to_owned(),
        };
        if tx.blocking_send(Ok(Bytes::from(head))).is_err() {
            return;
        }
        let mut first = true;
        let read = db.read(|conn| {
            tables::for_each_batch(conn, table, &view, BATCH, |rows| {
                let chunk = encode(table, format, &rows, first);
                first = false;
                // False once the client went away: stop reading.
                tx.blocking_send(Ok(Bytes::from(chunk))).is_ok()
            })
            .map_err(crate::pages::Failure::from)
        });
        let tail = match (read, format) {
            (Err(err), _) => {
                tracing::error!(error = %err, "export stopped");
                Err(std::io::Error::other("export stopped"))
            }
            (Ok(()), Format::Json) => Ok(Bytes::from_static(b"\n]\n")),
            (Ok(()), Format::Csv) => return,
        };
        let _ = tx.blocking_send(tail);
    });
    let (content_type, extension) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Json => ("application/json", "json"),
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}.{extension}\"", table.name),
        ))
        .streaming(Chunks(rx))
}
