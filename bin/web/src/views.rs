//! The JSON shapes of the API: request bodies (strict: unknown fields are refused) and
//! responses (camelCase, RFC 3339 UTC timestamps), with their OpenAPI schemas.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use domain::{NewPostInput, NewUserInput, PostChangesInput, Timestamp, UserChangesInput};

use crate::error::ApiError;

/// `2026-11-26T10:00:00Z`: whole seconds, UTC, `Z`.
pub fn rfc3339(at: Timestamp) -> String {
    at.0.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// For optional fields that may be absent but not `null`: absent stays `None`
/// (with `#[serde(default)]`), `null` is a type error like any other.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// For fields where absent and `null` differ: absent is `None` (with
/// `#[serde(default)]`), `null` is `Some(None)`.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl From<domain::Role> for Role {
    fn from(role: domain::Role) -> Self {
        match role {
            domain::Role::User => Self::User,
            domain::Role::Admin => Self::Admin,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[schema(example = "0192f0c4-5e7b-7a9e-9d7e-1f2a3b4c5d6e")]
    pub id: String,
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(example = "Ada")]
    pub name: String,
    pub role: Role,
    #[schema(format = DateTime, example = "2026-11-26T10:00:00Z")]
    pub created_at: String,
}

impl From<domain::User> for User {
    fn from(user: domain::User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            name: user.name,
            role: user.role.into(),
            created_at: rfc3339(user.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Post {
    #[schema(example = 42)]
    pub id: i64,
    pub title: String,
    pub content: String,
    pub author_id: String,
    /// `null` for a draft; a future time for a scheduled post.
    #[schema(format = DateTime, required = true, example = "2026-11-26T10:00:00Z")]
    pub published_at: Option<String>,
}

impl From<domain::Post> for Post {
    fn from(post: domain::Post) -> Self {
        Self {
            id: post.id,
            title: post.title,
            content: post.content,
            author_id: post.author_id,
            published_at: post.published_at.map(rfc3339),
        }
    }
}

/// One page of posts, newest id first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostPage {
    pub items: Vec<Post>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// One page of users, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserPage {
    pub items: Vec<User>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl From<domain::Page<domain::Post>> for PostPage {
    fn from(page: domain::Page<domain::Post>) -> Self {
        Self {
            items: page.items.into_iter().map(Post::from).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

impl From<domain::Page<domain::User>> for UserPage {
    fn from(page: domain::Page<domain::User>) -> Self {
        Self {
            items: page.items.into_iter().map(User::from).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// A token just issued: the secret is shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedToken {
    pub id: String,
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    #[schema(format = DateTime, example = "2026-11-26T10:00:00Z")]
    pub created_at: String,
}

impl From<domain::IssuedToken> for IssuedToken {
    fn from(token: domain::IssuedToken) -> Self {
        Self {
            id: token.id,
            token: token.secret,
            created_at: rfc3339(token.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// `GET /health`: the process is alive, and how old the newest verified backup is.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// The newest verified backup in `BACKUP_DIR`, or null when there is none.
    pub last_backup: Option<LastBackup>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastBackup {
    /// RFC 3339, UTC.
    pub at: String,
    pub age_seconds: i64,
    pub file: String,
}

/// `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewUserBody {
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(example = "Ada")]
    pub name: String,
    /// Defaults to `user`.
    #[serde(default)]
    #[schema(value_type = Option<Role>, nullable = false, required = false)]
    pub role: Option<String>,
}

impl From<NewUserBody> for NewUserInput {
    fn from(body: NewUserBody) -> Self {
        Self {
            email: body.email,
            name: body.name,
            role: body.role,
        }
    }
}

/// `PATCH /users/{id}`: absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserChangesBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, required = false)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, required = false)]
    pub name: Option<String>,
    /// Admins only.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Role>, nullable = false, required = false)]
    pub role: Option<String>,
}

impl From<UserChangesBody> for UserChangesInput {
    fn from(body: UserChangesBody) -> Self {
        Self {
            email: body.email,
            name: body.name,
            role: body.role,
        }
    }
}

/// `POST /posts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewPostBody {
    pub title: String,
    /// Stored exactly as sent.
    pub content: String,
    /// Defaults to the caller; only admins may name someone else.
    #[serde(default)]
    pub author_id: Option<String>,
    /// Absent or `null` makes a draft; a future time schedules the post.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub published_at: Option<DateTime<Utc>>,
}

impl From<NewPostBody> for NewPostInput {
    fn from(body: NewPostBody) -> Self {
        Self {
            title: body.title,
            content: body.content,
            author_id: body.author_id,
            published_at: body.published_at.map(Timestamp::from),
        }
    }
}

/// `PATCH /posts/{id}`: absent fields stay as they are; `publishedAt: null`
/// unpublishes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PostChangesBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, required = false)]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, required = false)]
    pub content: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub published_at: Option<Option<DateTime<Utc>>>,
}

impl From<PostChangesBody> for PostChangesInput {
    fn from(body: PostChangesBody) -> Self {
        Self {
            title: body.title,
            content: body.content,
            published_at: body.published_at.map(|at| at.map(Timestamp::from)),
        }
    }
}

/// `?limit=&cursor=` of every list, validated.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i64,
    pub cursor: Option<String>,
}

fn page_request(limit: Option<&str>, cursor: Option<String>) -> Result<PageRequest, ApiError> {
    let limit = match limit {
        None => domain::DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=domain::MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "limit must be an integer from 1 to {}",
                    domain::MAX_LIMIT
                ))
            })?,
    };
    Ok(PageRequest { limit, cursor })
}

/// Query of `GET /users`. Unknown parameters are ignored; known ones must parse.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Page size, 1..=100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

impl UserQuery {
    pub fn parse(self) -> Result<PageRequest, ApiError> {
        page_request(self.limit.as_deref(), self.cursor)
    }
}

/// Query of `GET /posts`. Unknown parameters are ignored; known ones must parse.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct PostQuery {
    /// Page size, 1..=100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
    /// Only this author's posts; an unknown id gives an empty page.
    author_id: Option<String>,
    /// `true`: public posts only; `false`: drafts and scheduled posts the caller may see.
    #[param(value_type = Option<bool>)]
    published: Option<String>,
}

impl PostQuery {
    pub fn parse(self) -> Result<(domain::PostFilter, PageRequest), ApiError> {
        let published = match self.published.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "published must be true or false".into(),
                ));
            }
        };
        let filter = domain::PostFilter {
            author_id: self.author_id,
            published,
        };
        Ok((filter, page_request(self.limit.as_deref(), self.cursor)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_null_and_value_differ_for_published_at() {
        let parse =
            |json: &str| serde_json::from_str::<PostChangesBody>(json).map(|b| b.published_at);
        assert!(matches!(parse("{}"), Ok(None)));
        assert!(matches!(parse(r#"{"publishedAt":null}"#), Ok(Some(None))));
        assert!(matches!(
            parse(r#"{"publishedAt":"2026-11-26T10:00:00+02:00"}"#),
            Ok(Some(Some(at))) if rfc3339(Timestamp::from(at)) == "2026-11-26T08:00:00Z"
        ));
        assert!(parse(r#"{"publishedAt":"yesterday"}"#).is_err());
    }

    #[test]
    fn null_is_refused_where_only_absence_is_meaningful() {
        assert!(serde_json::from_str::<UserChangesBody>(r#"{"name":null}"#).is_err());
        assert!(serde_json::from_str::<UserChangesBody>(r#"{}"#).is_ok());
        assert!(serde_json::from_str::<UserChangesBody>(r#"{"nick":"x"}"#).is_err());
    }

    #[test]
    fn limits() {
        let limit = |raw: Option<&str>| page_request(raw, None).map(|p| p.limit).ok();
        assert_eq!(limit(None), Some(20));
        assert_eq!(limit(Some("1")), Some(1));
        assert_eq!(limit(Some("100")), Some(100));
        for bad in ["0", "101", "-1", "abc", "", "1.5", "99999999999999999999"] {
            assert_eq!(limit(Some(bad)), None, "{bad:?}");
        }
    }
}
