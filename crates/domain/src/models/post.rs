//! Posts: visibility by role, keyset listing newest id first with filters, and
//! changes that check ownership inside the caller's transaction.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;

use crate::models::{is_foreign_key_violation, load_page, per_backend};
use crate::schema::{posts, users};
use crate::validate::{Content, Title, ValidationErrors};
use crate::{Actor, Connection, Error, Page, Result, Timestamp, cursor};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = posts, check_for_backend(Sqlite, Pg))]
pub struct Post {
    pub id: i64,
    pub title: String,
    pub content: String,
    pub author_id: String,
    pub published_at: Option<Timestamp>,
}

impl Post {
    /// Published and not scheduled for later.
    pub fn is_public(&self, now: Timestamp) -> bool {
        self.published_at.is_some_and(|at| at <= now)
    }

    pub(crate) fn visible_to(&self, actor: &Actor, now: Timestamp) -> bool {
        self.is_public(now) || actor.is_self_or_admin(&self.author_id)
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = posts)]
pub struct NewPost<'a> {
    pub title: &'a str,
    pub content: &'a str,
    pub author_id: &'a str,
    pub published_at: Option<Timestamp>,
}

impl NewPost<'_> {
    /// Inserts many posts in one statement (the caller batches and wraps them in
    /// a transaction); returns how many were inserted.
    pub fn insert_many(conn: &mut Connection, posts: &[NewPost<'_>]) -> Result<usize> {
        Ok(per_backend!(conn, |c| diesel::insert_into(posts::table)
            .values(posts)
            .execute(c))?)
    }

    pub fn insert(&self, conn: &mut Connection) -> Result<Post> {
        per_backend!(conn, |c| diesel::insert_into(posts::table)
            .values(self)
            .returning(Post::as_returning())
            .get_result::<Post>(c))
        .map_err(|err| {
            if is_foreign_key_violation(&err) {
                ValidationErrors::single("authorId", "no such user").into()
            } else {
                err.into()
            }
        })
    }
}

/// `POST /posts` as received, before validation.
#[derive(Debug, Clone, Default)]
pub struct NewPostInput {
    pub title: String,
    pub content: String,
    pub author_id: Option<String>,
    pub published_at: Option<Timestamp>,
}

/// `PATCH /posts/{id}` as received: `None` keeps a field, `Some(None)` clears
/// `published_at` (unpublishes).
#[derive(Debug, Clone, Default)]
pub struct PostChangesInput {
    pub title: Option<String>,
    pub content: Option<String>,
    pub published_at: Option<Option<Timestamp>>,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = posts)]
struct PostChanges {
    title: Option<String>,
    content: Option<String>,
    published_at: Option<Option<Timestamp>>,
}

/// Filters of `GET /posts`.
#[derive(Debug, Clone, Default)]
pub struct PostFilter {
    pub author_id: Option<String>,
    /// `Some(true)`: public posts only; `Some(false)`: drafts and scheduled posts.
    pub published: Option<bool>,
}

impl Post {
    /// The post with this id if `actor` may see it, else `NotFound`.
    pub fn find_visible(
        conn: &mut Connection,
        actor: &Actor,
        id: i64,
        now: Timestamp,
    ) -> Result<Post> {
        // `get_result`, not `first`: the key matches at most one row, and `first`
        // would add a bound `LIMIT ?` that makes SQLite prepare the statement again
        // on every call (see `BoundLimit`).
        // Per backend: the hot path keeps SQLite's statement cache by query type
        // (see `per_backend!`).
        let post: Post = per_backend!(conn, |c| posts::table
            .find(id)
            .select(Post::as_select())
            .get_result(c))?;
        if post.visible_to(actor, now) {
            Ok(post)
        } else {
            Err(Error::NotFound)
        }
    }

    /// The posts with these ids that exist, in no particular order, whoever may
    /// see them: the caller decides (a search reads its window's posts so).
    pub(crate) fn by_ids(conn: &mut Connection, ids: &[i64]) -> Result<Vec<Post>> {
        Ok(per_backend!(conn, |c| posts::table
            .filter(posts::id.eq_any(ids))
            .select(Post::as_select())
            .load(c))?)
    }

    /// The post if `actor` may change it: `NotFound` when they cannot see it,
    /// `Forbidden` when they can see it but it is not theirs.
    fn find_editable(
        conn: &mut Connection,
        actor: &Actor,
        id: i64,
        now: Timestamp,
    ) -> Result<Post> {
        let post = Post::find_visible(conn, actor, id, now)?;
        if actor.is_self_or_admin(&post.author_id) {
            Ok(post)
        } else {
            Err(Error::Forbidden)
        }
    }

    /// Creates a post. Members write as themselves unless they name another author,
    /// which only an admin may do; the author must exist.
    pub fn create(conn: &mut Connection, actor: &Actor, input: &NewPostInput) -> Result<Post> {
        let Some(actor_id) = actor.id() else {
            return Err(Error::Forbidden);
        };
        let author_id = input.author_id.as_deref().unwrap_or(actor_id);
        if !actor.is_self_or_admin(author_id) {
            return Err(Error::Forbidden);
        }
        let mut errors = ValidationErrors::default();
        let title = errors.check("title", Title::parse(&input.title));
        let content = errors.check("content", Content::parse(input.content.clone()));
        // Every invalid field is reported, the missing author with the rest.
        let author_exists: bool = per_backend!(conn, |c| diesel::select(diesel::dsl::exists(
            users::table.find(author_id)
        ))
        .get_result(c))?;
        if !author_exists {
            errors.0.push(crate::FieldError {
                field: "authorId",
                message: "no such user".into(),
            });
        }
        let (Some(title), Some(content), true) = (title, content, author_exists) else {
            return Err(errors.into());
        };
        NewPost {
            title: title.as_str(),
            content: content.as_str(),
            author_id,
            published_at: input.published_at,
        }
        .insert(conn)
    }

    pub fn update(
        conn: &mut Connection,
        actor: &Actor,
        id: i64,
        input: &PostChangesInput,
        now: Timestamp,
    ) -> Result<Post> {
        let post = Post::find_editable(conn, actor, id, now)?;
        let mut errors = ValidationErrors::default();
        let changes = PostChanges {
            title: input
                .title
                .as_deref()
                .and_then(|t| errors.check("title", Title::parse(t)))
                .map(|t| t.as_str().to_owned()),
            content: input
                .content
                .clone()
                .and_then(|c| errors.check("content", Content::parse(c)))
                .map(|c| c.as_str().to_owned()),
            published_at: input.published_at,
        };
        errors.into_result()?;
        if changes.title.is_none() && changes.content.is_none() && changes.published_at.is_none() {
            return Ok(post);
        }
        Ok(diesel::update(posts::table.find(id))
            .set(&changes)
            .returning(posts::all_columns)
            .get_result::<Post>(conn)?)
    }

    pub fn delete(conn: &mut Connection, actor: &Actor, id: i64, now: Timestamp) -> Result<()> {
        Post::find_editable(conn, actor, id, now)?;
        diesel::delete(posts::table.find(id)).execute(conn)?;
        Ok(())
    }

    /// Posts `actor` may see, newest id first. Every query is bounded by the
    /// cursor's id (or the largest one), so SQLite walks the rowid or an index
    /// backwards and stops after `limit + 1` rows instead of scanning the table.
    pub fn list(
        conn: &mut Connection,
        actor: &Actor,
        filter: &PostFilter,
        cursor: Option<&str>,
        limit: i64,
        now: Timestamp,
    ) -> Result<Page<Post>> {
        let before = match cursor {
            Some(cursor) => cursor::decode_post(cursor)?,
            None => i64::MAX,
        };
        let public = || {
            posts::published_at
                .is_not_null()
                .and(posts::published_at.le(now))
        };
        let unpublished = || {
            posts::published_at
                .is_null()
                .or(posts::published_at.gt(now))
        };
        let mut query = posts::table
            .select(Post::as_select())
            .filter(posts::id.lt(before))
            .order(posts::id.desc())
            .into_boxed();
        if let Some(author_id) = &filter.author_id {
            query = query.filter(posts::author_id.eq(author_id.clone()));
        }
        query = match (actor, filter.published) {
            (_, Some(true)) => query.filter(public()),
            (Actor::Anonymous, Some(false)) => {
                return Ok(Page {
                    items: Vec::new(),
                    next_cursor: None,
                });
            }
            (Actor::Anonymous, None) => query.filter(public()),
            (actor, published) if actor.is_admin() => match published {
                Some(false) => query.filter(unpublished()),
                _ => query,
            },
            (Actor::Member { id, .. }, Some(false)) => query
                .filter(posts::author_id.eq(id.clone()))
                .filter(unpublished()),
            (Actor::Member { id, .. }, None) => {
                query.filter(public().or(posts::author_id.eq(id.clone())))
            }
        };
        load_page(conn, query, limit, |p: &Post| cursor::encode_post(p.id))
    }

    pub fn count(conn: &mut Connection) -> Result<i64> {
        Ok(posts::table.count().get_result(conn)?)
    }

    /// Posts written by any of these authors.
    pub fn count_by_authors(conn: &mut Connection, author_ids: &[String]) -> Result<i64> {
        Ok(posts::table
            .filter(posts::author_id.eq_any(author_ids))
            .count()
            .get_result(conn)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::BoundLimit;
    use crate::test_support;
    use crate::test_support::{NOW, at, member, user};
    use crate::{Role, User};

    fn post(conn: &mut Connection, author: &str, published_at: Option<i64>) -> Post {
        Post::create(
            conn,
            &member(author, Role::Admin),
            &NewPostInput {
                title: format!("by {author}"),
                content: "body".into(),
                author_id: Some(author.into()),
                published_at: published_at.map(at),
            },
        )
        .unwrap()
    }

    /// ann: public, draft, scheduled; bob: public, draft.
    fn fixture(conn: &mut Connection) -> [Post; 5] {
        user(conn, "ann", Role::User);
        user(conn, "bob", Role::User);
        user(conn, "root", Role::Admin);
        [
            post(conn, "ann", Some(NOW - 10)),
            post(conn, "ann", None),
            post(conn, "ann", Some(NOW + 3600)),
            post(conn, "bob", Some(NOW - 5)),
            post(conn, "bob", None),
        ]
    }

    fn ids(conn: &mut Connection, actor: &Actor, filter: PostFilter) -> Vec<i64> {
        Post::list(conn, actor, &filter, None, 100, at(NOW))
            .unwrap()
            .items
            .iter()
            .map(|p| p.id)
            .collect()
    }

    #[test]
    fn visibility_by_role_newest_first() {
        let mut db = test_support::db();
        let [a_pub, a_draft, a_sched, b_pub, b_draft] = fixture(&mut db.conn);
        let c = &mut db.conn;
        let all = PostFilter::default();
        assert_eq!(ids(c, &Actor::Anonymous, all.clone()), [b_pub.id, a_pub.id]);
        assert_eq!(
            ids(c, &member("ann", Role::User), all.clone()),
            [b_pub.id, a_sched.id, a_draft.id, a_pub.id]
        );
        assert_eq!(
            ids(c, &member("root", Role::Admin), all),
            [b_draft.id, b_pub.id, a_sched.id, a_draft.id, a_pub.id]
        );
    }

    #[test]
    fn published_and_author_filters() {
        let mut db = test_support::db();
        let [a_pub, a_draft, a_sched, b_pub, b_draft] = fixture(&mut db.conn);
        let c = &mut db.conn;
        let published = |p| PostFilter {
            published: Some(p),
            ..Default::default()
        };
        assert!(ids(c, &Actor::Anonymous, published(false)).is_empty());
        assert_eq!(
            ids(c, &member("ann", Role::User), published(false)),
            [a_sched.id, a_draft.id]
        );
        assert_eq!(
            ids(c, &member("root", Role::Admin), published(false)),
            [b_draft.id, a_sched.id, a_draft.id]
        );
        assert_eq!(
            ids(c, &member("bob", Role::User), published(true)),
            [b_pub.id, a_pub.id]
        );
        let by = |a: &str| PostFilter {
            author_id: Some(a.into()),
            ..Default::default()
        };
        assert_eq!(ids(c, &member("bob", Role::User), by("ann")), [a_pub.id]);
        assert!(ids(c, &Actor::Anonymous, by("nobody")).is_empty());
    }

    #[test]
    fn scheduled_posts_appear_by_themselves() {
        let mut db = test_support::db();
        let [_, _, sched, ..] = fixture(&mut db.conn);
        let c = &mut db.conn;
        assert!(matches!(
            Post::find_visible(c, &Actor::Anonymous, sched.id, at(NOW)),
            Err(Error::NotFound)
        ));
        let later = at(NOW + 3600);
        assert_eq!(
            Post::find_visible(c, &Actor::Anonymous, sched.id, later).unwrap(),
            sched
        );
    }

    #[test]
    fn keyset_pages_cover_everything_once() {
        let mut db = test_support::db();
        user(&mut db.conn, "ann", Role::User);
        let mut expected: Vec<i64> = (0..23)
            .map(|_| post(&mut db.conn, "ann", Some(NOW - 1)).id)
            .collect();
        expected.reverse();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = Post::list(
                &mut db.conn,
                &Actor::Anonymous,
                &PostFilter::default(),
                cursor.as_deref(),
                5,
                at(NOW),
            )
            .unwrap();
            assert!(page.items.len() <= 5);
            seen.extend(page.items.iter().map(|p| p.id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected);
        let bad = Post::list(
            &mut db.conn,
            &Actor::Anonymous,
            &PostFilter::default(),
            Some("garbage"),
            5,
            at(NOW),
        );
        assert!(matches!(bad, Err(Error::Cursor(_))));
    }

    #[test]
    fn changes_need_ownership_or_admin() {
        let mut db = test_support::db();
        let [a_pub, a_draft, ..] = fixture(&mut db.conn);
        let c = &mut db.conn;
        let bob = member("bob", Role::User);
        let retitle = PostChangesInput {
            title: Some("  New title ".into()),
            ..Default::default()
        };
        // Visible but not bob's: forbidden. Not visible to bob: not found.
        assert!(matches!(
            Post::update(c, &bob, a_pub.id, &retitle, at(NOW)),
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            Post::update(c, &bob, a_draft.id, &retitle, at(NOW)),
            Err(Error::NotFound)
        ));
        assert!(matches!(
            Post::delete(c, &bob, a_draft.id, at(NOW)),
            Err(Error::NotFound)
        ));
        let ann = member("ann", Role::User);
        let updated = Post::update(c, &ann, a_pub.id, &retitle, at(NOW)).unwrap();
        assert_eq!(updated.title, "New title");
        assert_eq!(updated.content, a_pub.content);
        let unpublish = PostChangesInput {
            published_at: Some(None),
            ..Default::default()
        };
        let root = member("root", Role::Admin);
        assert_eq!(
            Post::update(c, &root, a_pub.id, &unpublish, at(NOW))
                .unwrap()
                .published_at,
            None
        );
        Post::delete(c, &root, a_pub.id, at(NOW)).unwrap();
        assert!(matches!(
            Post::find_visible(c, &root, a_pub.id, at(NOW)),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn create_rules() {
        let mut db = test_support::db();
        fixture(&mut db.conn);
        let c = &mut db.conn;
        let input = |author: Option<&str>| NewPostInput {
            title: "t".into(),
            content: "c".into(),
            author_id: author.map(Into::into),
            published_at: None,
        };
        let bob = member("bob", Role::User);
        assert_eq!(
            Post::create(c, &bob, &input(None)).unwrap().author_id,
            "bob"
        );
        assert_eq!(
            Post::create(c, &bob, &input(Some("bob")))
                .unwrap()
                .author_id,
            "bob"
        );
        assert!(matches!(
            Post::create(c, &bob, &input(Some("ann"))),
            Err(Error::Forbidden)
        ));
        let root = member("root", Role::Admin);
        assert_eq!(
            Post::create(c, &root, &input(Some("ann")))
                .unwrap()
                .author_id,
            "ann"
        );
        match Post::create(c, &root, &input(Some("ghost"))) {
            Err(Error::Invalid(e)) => assert_eq!(e.0[0].field, "authorId"),
            other => panic!("{other:?}"),
        }
        let bad = NewPostInput {
            title: " ".into(),
            content: "x".repeat(100_001),
            author_id: None,
            published_at: None,
        };
        match Post::create(c, &bob, &bad) {
            Err(Error::Invalid(e)) => {
                let fields: Vec<_> = e.0.iter().map(|f| f.field).collect();
                assert_eq!(fields, ["title", "content"]);
            }
            other => panic!("{other:?}"),
        }
        let bad_and_ghost = NewPostInput {
            author_id: Some("ghost".into()),
            ..bad
        };
        match Post::create(c, &root, &bad_and_ghost) {
            Err(Error::Invalid(e)) => {
                let fields: Vec<_> = e.0.iter().map(|f| f.field).collect();
                assert_eq!(fields, ["title", "content", "authorId"]);
            }
            other => panic!("{other:?}"),
        }
    }

    /// Re-prepares SQLite counts for `query`'s SQL over three runs with new binds.
    fn reprepares<Q: diesel::query_builder::QueryFragment<Sqlite>>(query: &Q) -> i32 {
        let debug = diesel::debug_query::<Sqlite, _>(query).to_string();
        let sql = debug.split(" -- binds: ").next().unwrap();
        let raw = rusqlite::Connection::open_in_memory().unwrap();
        raw.execute_batch(
            "CREATE TABLE posts (id integer PRIMARY KEY, title text, content text, \
             author_id text, published_at integer)",
        )
        .unwrap();
        let mut stmt = raw.prepare(sql).unwrap();
        for rows in [21_i64, 6, 101] {
            stmt.query([rows, rows]).unwrap().next().unwrap();
        }
        stmt.get_status(rusqlite::StatementStatus::RePrepare)
    }

    #[test]
    fn bound_limit_keeps_the_prepared_statement() {
        let base = || {
            posts::table
                .select(Post::as_select())
                .filter(posts::id.lt(i64::MAX))
                .order(posts::id.desc())
        };
        // The cause `BoundLimit` works around; if this starts failing, this SQLite
        // no longer re-prepares for a bound LIMIT and `.limit()` would do.
        assert_eq!(reprepares(&base().limit(21)), 3);
        assert_eq!(reprepares(&BoundLimit::new(base().into_boxed(), 21)), 0);
    }

    #[test]
    fn deleting_a_user_with_posts_is_a_conflict() {
        let mut db = test_support::db();
        let [a_pub, a_draft, a_sched, ..] = fixture(&mut db.conn);
        let c = &mut db.conn;
        let root = member("root", Role::Admin);
        assert!(matches!(
            User::delete(c, &root, "ann"),
            Err(Error::Conflict(_))
        ));
        for p in [a_pub, a_draft, a_sched] {
            Post::delete(c, &root, p.id, at(NOW)).unwrap();
        }
        User::delete(c, &root, "ann").unwrap();
        assert!(matches!(
            User::delete(c, &root, "ann"),
            Err(Error::NotFound)
        ));
    }
}
