//! Write mode: edits saved through the domain's validation, errors beside the
//! field, stale edits refused with both versions, inserts, and deletes with the
//! contract's refusal for a user who has posts.

use domain::{Post, PostChangesInput, Timestamp};

use crate::common::{Studio, admin};

/// The hidden `o.*` fields of the edit form on a row page: what was loaded.
fn loaded(page: &str) -> Vec<(String, String)> {
    page.split("<input type=\"hidden\" name=\"o.")
        .skip(1)
        .map(|rest| {
            let name = rest[..rest.find('"').unwrap()].to_owned();
            let at = rest.find("value=\"").unwrap() + 7;
            let value = rest[at..at + rest[at..].find('"').unwrap()].to_owned();
            (format!("o.{name}"), unescape(&value))
        })
        .collect()
}

fn unescape(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn title_of(studio: &Studio, id: i64) -> String {
    studio
        .db
        .read(|conn| {
            use diesel::prelude::*;
            domain::schema::posts::table
                .find(id)
                .select(domain::schema::posts::title)
                .get_result::<String>(conn)
                .map_err(db::Error::from)
        })
        .unwrap()
}

fn edit(
    studio: &Studio,
    session: &str,
    csrf: &str,
    id: i64,
    original: &[(String, String)],
    changes: &[(&str, &str)],
) -> crate::common::Reply {
    let key = id.to_string();
    let mut form: Vec<(&str, &str)> = vec![("csrf", csrf), ("key", &key)];
    form.extend(original.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    form.extend(changes.iter().copied());
    studio.post("/t/posts/update", session, &form)
}

#[test]
fn an_edit_is_saved_through_the_domain() {
    let (studio, rows) = Studio::start(true);
    let session = studio.login();
    let csrf = studio.csrf(&session);
    let page = studio
        .get(&format!("/t/posts/row?key={}", rows.draft), Some(&session))
        .body;
    assert!(
        page.contains("name=\"v.title\""),
        "write mode shows the edit form"
    );
    let original = loaded(&page);
    let reply = edit(
        &studio,
        &session,
        &csrf,
        rows.draft,
        &original,
        &[
            ("v.title", "  Renamed  "),
            ("v.content", "not yet"),
            ("v.published_at", ""),
        ],
    );
    assert_eq!(reply.status, 303, "{reply:?}");
    assert_eq!(
        title_of(&studio, rows.draft),
        "Renamed",
        "stored trimmed, as the API stores it"
    );
    let after = studio
        .get(&format!("/t/posts/row?key={}", rows.draft), Some(&session))
        .body;
    assert!(after.contains("Renamed"));
}

#[test]
fn an_invalid_value_is_refused_with_the_error_beside_its_field() {
    let (studio, rows) = Studio::start(true);
    let session = studio.login();
    let csrf = studio.csrf(&session);
    let page = studio
        .get(&format!("/t/posts/row?key={}", rows.draft), Some(&session))
        .body;
    let reply = edit(
        &studio,
        &session,
        &csrf,
        rows.draft,
        &loaded(&page),
        &[("v.title", "   "), ("v.published_at", "tomorrow")],
    );
    assert_eq!(reply.status, 422, "{reply:?}");
    let title_field = &reply.body[reply.body.find("id=\"v-title\"").unwrap()..];
    let title_field = &title_field[..title_field.find("</div>").unwrap()];
    assert!(title_field.contains("must not be empty"), "{title_field}");
    assert!(
        reply.body.contains("id=\"e-published_at\""),
        "the date's error too"
    );
    assert_eq!(title_of(&studio, rows.draft), "A draft", "nothing saved");

    let users = studio
        .get(&format!("/t/users/row?key={}", rows.ada), Some(&session))
        .body;
    let mut form: Vec<(String, String)> = vec![
        ("csrf".into(), csrf.clone()),
        ("key".into(), rows.ada.clone()),
    ];
    form.extend(loaded(&users));
    form.push(("v.email".into(), "no-at-sign".into()));
    form.push(("v.role".into(), "owner".into()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let reply = studio.post("/t/users/update", &session, &form);
    assert_eq!(reply.status, 422);
    assert!(
        reply.body.contains("id=\"e-email\""),
        "every invalid field is reported"
    );
    assert!(reply.body.contains("id=\"e-role\""));
}

#[test]
fn a_stale_edit_is_refused_showing_both_versions() {
    let (studio, rows) = Studio::start(true);
    let session = studio.login();
    let csrf = studio.csrf(&session);
    let page = studio
        .get(&format!("/t/posts/row?key={}", rows.draft), Some(&session))
        .body;
    let original = loaded(&page);
    // Someone else (the API, say) changes the row after the page was loaded.
    studio
        .db
        .write(|conn| {
            Post::update(
                conn,
                &admin(),
                rows.draft,
                &PostChangesInput {
                    title: Some("Changed elsewhere".into()),
                    ..Default::default()
                },
                Timestamp::now(),
            )
        })
        .unwrap();
    let reply = edit(
        &studio,
        &session,
        &csrf,
        rows.draft,
        &original,
        &[("v.title", "Mine")],
    );
    assert_eq!(reply.status, 409, "{reply:?}");
    assert!(reply.body.contains("changed since the page was loaded"));
    assert!(reply.body.contains("A draft"), "the version loaded");
    assert!(
        reply.body.contains("Changed elsewhere"),
        "the version now stored"
    );
    assert!(reply.body.contains("Mine"), "and the edit");
    assert_eq!(
        title_of(&studio, rows.draft),
        "Changed elsewhere",
        "nothing overwritten"
    );
}

#[test]
fn rows_are_inserted_with_the_domain_rules() {
    let (studio, rows) = Studio::start(true);
    let session = studio.login();
    let csrf = studio.csrf(&session);
    assert_eq!(studio.get("/t/users/new", Some(&session)).status, 200);
    let user = studio.post(
        "/t/users/insert",
        &session,
        &[
            ("csrf", &csrf),
            ("v.email", " Cy@Example.com "),
            ("v.name", "Cy"),
            ("v.role", ""),
        ],
    );
    assert_eq!(user.status, 303, "{user:?}");
    let location = user.header("location").unwrap().to_owned();
    let page = studio.get(&location, Some(&session)).body;
    assert!(
        page.contains("cy@example.com"),
        "stored lower-cased and trimmed"
    );
    let duplicate = studio.post(
        "/t/users/insert",
        &session,
        &[
            ("csrf", &csrf),
            ("v.email", "cy@example.com"),
            ("v.name", "Cy"),
        ],
    );
    assert_eq!(
        duplicate.status, 409,
        "a duplicate email is the API's conflict"
    );
    let post = studio.post(
        "/t/posts/insert",
        &session,
        &[
            ("csrf", &csrf),
            ("v.title", "Fresh"),
            ("v.content", ""),
            ("v.author_id", &rows.bob),
            ("v.published_at", ""),
        ],
    );
    assert_eq!(post.status, 303, "{post:?}");
    let nobody = studio.post(
        "/t/posts/insert",
        &session,
        &[
            ("csrf", &csrf),
            ("v.title", "Orphan"),
            ("v.content", ""),
            ("v.author_id", "nobody"),
        ],
    );
    assert_eq!(nobody.status, 422);
    assert!(
        nobody.body.contains("id=\"e-author_id\""),
        "{}",
        nobody.body
    );
}

#[test]
fn a_delete_asks_first_and_a_user_with_posts_stays() {
    let (studio, rows) = Studio::start(true);
    let session = studio.login();
    let csrf = studio.csrf(&session);
    let confirm = studio.get(&format!("/t/users/delete?key={}", rows.bob), Some(&session));
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("cannot be undone") && confirm.body.contains("method=\"post\""));
    let refused = studio.post(
        "/t/users/delete",
        &session,
        &[("csrf", &csrf), ("key", &rows.bob)],
    );
    assert_eq!(refused.status, 409);
    assert!(
        refused.body.contains("the user still has posts"),
        "{}",
        refused.body
    );
    assert_eq!(
        studio
            .get(&format!("/t/users/row?key={}", rows.bob), Some(&session))
            .status,
        200
    );
    let post = studio.post(
        "/t/posts/delete",
        &session,
        &[("csrf", &csrf), ("key", &rows.empty.to_string())],
    );
    assert_eq!(post.status, 303);
    let gone = studio.post(
        "/t/users/delete",
        &session,
        &[("csrf", &csrf), ("key", &rows.bob)],
    );
    assert_eq!(gone.status, 303, "with no posts left the user goes");
    assert_eq!(
        studio
            .get(&format!("/t/users/row?key={}", rows.bob), Some(&session))
            .status,
        404
    );
}
