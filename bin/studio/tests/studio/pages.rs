//! What the read pages show: counts, values exactly as stored, foreign keys both
//! ways, keyset pages, sorting, filters and search in the URL.

use domain::models::post::NewPost;

use crate::common::Studio;

/// The text of every `<tr>` of a page's rows table, tags stripped.
fn texts(page: &str) -> Vec<String> {
    let body = page.split("<tbody>").nth(1).unwrap_or("");
    let body = body.split("</tbody>").next().unwrap_or("");
    body.split("<tr")
        .skip(1)
        .map(|tr| {
            let mut text = String::new();
            let mut inside = false;
            for c in tr.chars() {
                match c {
                    '<' => inside = true,
                    '>' => {
                        inside = false;
                        text.push(' ');
                    }
                    c if !inside => text.push(c),
                    _ => {}
                }
            }
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect()
}

/// The `href` of the link with this `rel`.
fn link(page: &str, rel: &str) -> Option<String> {
    let at = page.find(&format!("rel=\"{rel}\" href=\""))? + rel.len() + 13;
    Some(page[at..at + page[at..].find('"')?].replace("&amp;", "&"))
}

fn add_posts(studio: &Studio, author: &str, n: usize) {
    studio
        .db
        .write(|conn| {
            let titles: Vec<String> = (0..n).map(|i| format!("Bulk {i}")).collect();
            let posts: Vec<NewPost> = titles
                .iter()
                .map(|t| NewPost {
                    title: t,
                    content: "bulk",
                    author_id: author,
                    published_at: None,
                })
                .collect();
            for chunk in posts.chunks(500) {
                NewPost::insert_many(conn, chunk)?;
            }
            Ok::<_, domain::Error>(())
        })
        .unwrap();
}

#[test]
fn the_tables_page_lists_each_table_with_its_count() {
    let (studio, _) = Studio::start(false);
    let session = studio.login();
    let page = studio.get("/", Some(&session)).body;
    let found = texts(&page);
    assert!(found.contains(&"users 2".to_owned()), "{found:?}");
    assert!(found.contains(&"posts 3".to_owned()), "{found:?}");
    assert!(found.contains(&"tokens 1".to_owned()), "{found:?}");
    assert!(
        found
            .iter()
            .any(|r| r.starts_with("__diesel_schema_migrations ")),
        "{found:?}"
    );
}

#[test]
fn counts_past_the_limit_say_more_than() {
    let (studio, rows) = Studio::start(false);
    add_posts(&studio, &rows.bob, 10_001);
    let session = studio.login();
    let page = studio.get("/t/posts", Some(&session)).body;
    assert!(
        page.contains("more than 10\u{202F}000 rows"),
        "{}",
        &page[..page.len().min(2000)]
    );
    let filtered = studio
        .get(
            &format!("/t/posts?f=author_id:eq:{}", rows.ada),
            Some(&session),
        )
        .body;
    assert!(
        filtered.contains(">2 rows<"),
        "a filtered count is exact when small"
    );
    let many = studio
        .get(
            &format!("/t/posts?f=author_id:eq:{}", rows.bob),
            Some(&session),
        )
        .body;
    assert!(
        many.contains("more than 10\u{202F}000 rows"),
        "and bounded when large"
    );
}

#[test]
fn null_and_empty_text_look_different_and_seconds_show_their_utc_date() {
    let (studio, rows) = Studio::start(false);
    let session = studio.login();
    let draft = studio
        .get(&format!("/t/posts/row?key={}", rows.draft), Some(&session))
        .body;
    assert!(
        draft.contains(r#"<span class="null" title="NULL">NULL</span>"#),
        "published_at of a draft is NULL"
    );
    let empty = studio
        .get(&format!("/t/posts/row?key={}", rows.empty), Some(&session))
        .body;
    assert!(
        empty.contains(r#"<span class="empty" title="empty string">"#),
        "content is the empty string"
    );
    assert!(!empty.contains(r#"class="null""#), "and not NULL");
    let long = studio
        .get(&format!("/t/posts/row?key={}", rows.long), Some(&session))
        .body;
    assert!(long.contains("1767225600"), "the stored integer");
    assert!(
        long.contains("2026-01-01 00:00:00 UTC"),
        "and its UTC date beside it"
    );
}

#[test]
fn long_text_is_cut_in_lists_and_whole_on_its_row() {
    let (studio, rows) = Studio::start(false);
    let session = studio.login();
    let whole = "word ".repeat(100);
    let list = studio.get("/t/posts", Some(&session)).body;
    assert!(!list.contains(&whole), "the list cuts long text");
    let more = format!("/t/posts/row?key={}#content", rows.long);
    assert!(
        list.contains(&format!("href=\"{more}\"")),
        "with a link to all of it"
    );
    assert!(list.contains("(all 500 characters)"));
    let row = studio
        .get(&format!("/t/posts/row?key={}", rows.long), Some(&session))
        .body;
    assert!(row.contains(&whole), "the row page shows all of it");
}

#[test]
fn foreign_keys_link_both_ways() {
    let (studio, rows) = Studio::start(false);
    let session = studio.login();
    let post = studio
        .get(&format!("/t/posts/row?key={}", rows.draft), Some(&session))
        .body;
    assert!(
        post.contains(&format!("href=\"/t/users/row?key={}\"", rows.ada)),
        "a post links to its author"
    );
    let user = studio
        .get(&format!("/t/users/row?key={}", rows.ada), Some(&session))
        .body;
    assert!(user.contains("posts of this user"));
    assert!(
        user.contains("A draft") && user.contains("Long one"),
        "the user's posts"
    );
    assert!(!user.contains("Empty body"), "not another user's");
    assert!(user.contains("tokens of this user"));
    assert!(
        user.contains(&format!("/t/posts?f=author_id%3Aeq%3A{}", rows.ada)),
        "the full list, filtered"
    );
}

#[test]
fn pages_are_keyset_pages_of_fifty_with_first_next_previous() {
    let (studio, rows) = Studio::start(false);
    add_posts(&studio, &rows.bob, 120);
    let session = studio.login();
    let first = studio.get("/t/posts", Some(&session)).body;
    let first_rows = texts(&first);
    assert_eq!(first_rows.len(), 50);
    assert!(link(&first, "prev").is_none(), "no page before the first");
    let next = link(&first, "next").expect("a next page");
    assert!(
        next.contains("after=") && !next.to_lowercase().contains("offset"),
        "{next}"
    );
    let second = studio.get(&next, Some(&session)).body;
    let second_rows = texts(&second);
    assert_eq!(second_rows.len(), 50);
    assert!(
        second_rows.iter().all(|r| !first_rows.contains(r)),
        "no row twice"
    );
    let third = studio
        .get(&link(&second, "next").unwrap(), Some(&session))
        .body;
    assert_eq!(texts(&third).len(), 23, "123 posts in all");
    assert!(link(&third, "next").is_none(), "the last page");
    let back = studio
        .get(&link(&second, "prev").unwrap(), Some(&session))
        .body;
    assert_eq!(
        texts(&back),
        first_rows,
        "previous goes back to the same rows"
    );
}

#[test]
fn sorting_by_an_indexed_column_pages_by_it() {
    let (studio, _) = Studio::start(false);
    let session = studio.login();
    let by_email = texts(
        &studio
            .get("/t/users?sort=email&dir=desc", Some(&session))
            .body,
    );
    assert!(
        by_email[0].contains("bob@example.com") && by_email[1].contains("ada@example.com"),
        "{by_email:?}"
    );
    let asc = texts(&studio.get("/t/users?sort=email", Some(&session)).body);
    assert!(asc[0].contains("ada@example.com"), "{asc:?}");
    // Columns without an index do not sort.
    assert_eq!(studio.get("/t/users?sort=name", Some(&session)).status, 400);
    assert_eq!(
        studio.get("/t/posts?sort=title", Some(&session)).status,
        400
    );
}

#[test]
fn filters_and_search_live_in_the_url() {
    let (studio, rows) = Studio::start(false);
    let session = studio.login();
    let get = |path: &str| rows_of(&studio, path, &session);
    assert_eq!(
        get(&format!("/t/posts?f=author_id:eq:{}", rows.bob)).len(),
        1
    );
    assert_eq!(
        get("/t/posts?f=title:contains:DRAFT").len(),
        0,
        "contains is case-sensitive"
    );
    assert_eq!(get("/t/posts?f=title:contains:draf").len(), 1);
    assert_eq!(get("/t/posts?f=published_at:null:").len(), 1);
    assert_eq!(get("/t/posts?f=published_at:notnull:").len(), 2);
    assert_eq!(get("/t/posts?f=content:empty:").len(), 1);
    assert_eq!(
        get("/t/posts?f=published_at:gt:2026-01-01T00:00:00Z").len(),
        1
    );
    assert_eq!(get("/t/posts?f=published_at:lt:1767225700").len(), 1);
    assert_eq!(
        get("/t/posts?f=published_at:gt:1767225000&f=title:contains:Long").len(),
        1,
        "filters combine"
    );
    assert_eq!(
        get("/t/posts?q=Empty").len(),
        1,
        "the search box covers text columns"
    );
    assert_eq!(get("/t/posts?q=word").len(), 1, "content too");
    // The filter form's three fields give the same view.
    assert_eq!(
        get(&format!("/t/posts?fc=author_id&fo=eq&fv={}", rows.ada)).len(),
        2
    );
    assert_eq!(
        studio
            .get("/t/posts?f=published_at:gt:soon", Some(&session))
            .status,
        400,
        "a bad value is an error"
    );
    assert_eq!(
        studio.get("/t/posts?f=nope:eq:1", Some(&session)).status,
        400
    );
}

fn rows_of(studio: &Studio, path: &str, session: &str) -> Vec<String> {
    let reply = studio.get(path, Some(session));
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    texts(&reply.body)
        .into_iter()
        .filter(|r| r != "No rows.")
        .collect()
}
