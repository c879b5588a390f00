//! Posts: visibility by role, keyset listing newest id first with filters, and
//! changes that check ownership inside the caller's transaction.

use diesel::prelude::*;
use diesel::sqlite::Sqlite;

use crate::models::is_foreign_key_violation;
use crate::schema::{posts, users};
use crate::validate::{Content, Title, ValidationErrors};
use crate::{Actor, Conn, Error, Page, Result, Timestamp, cursor};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = posts, check_for_backend(Sqlite))]
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

    fn visible_to(&self, actor: &Actor, now: Timestamp) -> bool {
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
    pub fn insert_many(conn: &mut Conn, posts: &[NewPost<'_>]) -> Result<usize> {
        Ok(diesel::insert_into(posts::table)
            .values(posts)
            .execute(conn)?)
    }

    pub fn insert(&self, conn: &mut Conn) -> Result<Post> {
        diesel::insert_into(posts::table)
            .values(self)
            .returning(Post::as_returning())
            .get_result(conn)
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
    pub fn find_visible(conn: &mut Conn, actor: &Actor, id: i64, now: Timestamp) -> Result<Post> {
        let post: Post = posts::table
            .find(id)
            .select(Post::as_select())
            .first(conn)?;
        if post.visible_to(actor, now) {
            Ok(post)
        } else {
            Err(Error::NotFound)
        }
    }

    /// The post if `actor` may change it: `NotFound` when they cannot see it,
    /// `Forbidden` when they can see it but it is not theirs.
    fn find_editable(conn: &mut Conn, actor: &Actor, id: i64, now: Timestamp) -> Result<Post> {
        let post = Post::find_visible(conn, actor, id, now)?;
        if actor.is_self_or_admin(&post.author_id) {
            Ok(post)
        } else {
            Err(Error::Forbidden)
        }
    }

    /// Creates a post. Members write as themselves unless they name another author,
    /// which only an admin may do; the author must exist.
    pub fn create(conn: &mut Conn, actor: &Actor, input: &NewPostInput) -> Result<Post> {
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
        let (Some(title), Some(content)) = (title, content) else {
            return Err(errors.into());
        };
        if !diesel::select(diesel::dsl::exists(users::table.find(author_id))).get_result(conn)? {
            return Err(ValidationErrors::single("authorId", "no such user").into());
        }
        NewPost {
            title: title.as_str(),
            content: content.as_str(),
            author_id,
            published_at: input.published_at,
        }
        .insert(conn)
    }

    pub fn update(
        conn: &mut Conn,
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
            .returning(Post::as_returning())
            .get_result(conn)?)
    }

    pub fn delete(conn: &mut Conn, actor: &Actor, id: i64, now: Timestamp) -> Result<()> {
        Post::find_editable(conn, actor, id, now)?;
        diesel::delete(posts::table.find(id)).execute(conn)?;
        Ok(())
    }

    /// Posts `actor` may see, newest id first. Every query is bounded by the
    /// cursor's id (or the largest one), so SQLite walks the rowid or an index
    /// backwards and stops after `limit + 1` rows instead of scanning the table.
    pub fn list(
        conn: &mut Conn,
        actor: &Actor,
        filter: &PostFilter,
        cursor: Option<&str>,
        limit: i64,
        now: Timestamp,
    ) -> Result<Page<Post>> {
        let limit = crate::clamp_limit(limit);
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
            .limit(limit + 1)
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
        let rows = query.load(conn)?;
        Ok(crate::page(rows, limit, |p: &Post| {
            cursor::encode_post(p.id)
        }))
    }

    pub fn count(conn: &mut Conn) -> Result<i64> {
        Ok(posts::table.count().get_result(conn)?)
    }

    /// Posts written by any of these authors.
    pub fn count_by_authors(conn: &mut Conn, author_ids: &[String]) -> Result<i64> {
        Ok(posts::table
            .filter(posts::author_id.eq_any(author_ids))
            .count()
            .get_result(conn)?)
    }
}
