//! Export of a view as CSV and JSON, streamed in keyset batches.

use domain::models::post::NewPost;

use crate::common::Studio;

#[test]
fn an_export_streams_every_row_of_the_view() {
    let (studio, rows) = Studio::start(false);
    studio
        .db
        .write(|conn| {
            let posts: Vec<NewPost> = (0..25_000)
                .map(|_| NewPost {
                    title: "Many",
                    content: "x",
                    author_id: &rows.bob,
                    published_at: None,
                })
                .collect();
            for chunk in posts.chunks(1_000) {
                NewPost::insert_many(conn, chunk)?;
            }
            Ok::<_, domain::Error>(())
        })
        .unwrap();
    let session = studio.login();
    let csv = studio.get("/t/posts/export.csv", Some(&session));
    assert_eq!(csv.status, 200);
    assert_eq!(
        csv.header("transfer-encoding"),
        Some("chunked"),
        "streamed, not buffered"
    );
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "id,title,content,author_id,published_at");
    assert_eq!(lines.len(), 1 + 25_003);
    let ids: std::collections::BTreeSet<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(ids.len(), 25_003, "every row once");

    let json = studio.get(
        &format!("/t/posts/export.json?f=author_id:eq:{}", rows.ada),
        Some(&session),
    );
    let items: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 2, "the view's filters apply");
    assert!(
        items.iter().any(|p| p["published_at"].is_null()),
        "NULL is null"
    );
    assert!(
        items.iter().any(|p| p["published_at"] == 1_767_225_600),
        "seconds are numbers"
    );
}

#[test]
fn csv_tells_null_from_the_empty_string() {
    let (studio, rows) = Studio::start(false);
    let session = studio.login();
    let csv = studio
        .get("/t/posts/export.csv?q=Empty", Some(&session))
        .body;
    let line = csv.lines().nth(1).unwrap();
    assert!(
        line.contains(",\"\","),
        "empty content is a quoted empty field: {line}"
    );
    let draft = studio
        .get(
            &format!("/t/posts/export.csv?f=id:eq:{}", rows.draft),
            Some(&session),
        )
        .body;
    assert!(
        draft.lines().nth(1).unwrap().ends_with(','),
        "NULL is an empty field: {draft}"
    );
}
