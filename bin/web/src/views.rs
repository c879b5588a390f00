//! The JSON shapes the API answers with (camelCase, RFC 3339 UTC timestamps), with
//! their OpenAPI schemas. What it reads is in `requests`.

use chrono::SecondsFormat;
use serde::Serialize;
use utoipa::ToSchema;

use domain::Timestamp;

/// `2026-11-26T10:00:00Z`: whole seconds, UTC, `Z`.
pub fn rfc3339(at: Timestamp) -> String {
    at.0.to_rfc3339_opts(SecondsFormat::Secs, true)
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

/// The passage of a post that matched a search: plain text, never markup.
#[derive(Debug, Serialize, ToSchema)]
pub struct Snippet {
    /// The matching passage (the title when only the title matched), cut at
    /// words, with `…` where it was cut.
    pub text: String,
    /// Half-open `[start, end)` ranges of `text` to highlight, counted in Unicode
    /// scalar values, in order.
    #[schema(value_type = Vec<Vec<u32>>, example = json!([[0, 4]]))]
    pub highlights: Vec<[usize; 2]>,
}

/// A post in a list; with `q`, also the passage that matched.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListedPost {
    #[serde(flatten)]
    pub post: Post,
    /// Only when the list is a search (`q`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub snippet: Option<Snippet>,
}

/// One page of posts: newest id first, or best match first with `q`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostPage {
    pub items: Vec<ListedPost>,
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
            items: page
                .items
                .into_iter()
                .map(|post| ListedPost {
                    post: post.into(),
                    snippet: None,
                })
                .collect(),
            next_cursor: page.next_cursor,
        }
    }
}

impl From<domain::Page<domain::Hit>> for PostPage {
    fn from(page: domain::Page<domain::Hit>) -> Self {
        Self {
            items: page
                .items
                .into_iter()
                .map(|hit| ListedPost {
                    post: hit.post.into(),
                    snippet: Some(Snippet {
                        text: hit.snippet.text,
                        highlights: hit
                            .snippet
                            .highlights
                            .into_iter()
                            .map(|(start, end)| [start, end])
                            .collect(),
                    }),
                })
                .collect(),
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

/// A token just issued: the secret is shown this once. `Debug` never shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedToken {
    pub id: String,
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    #[schema(format = DateTime, example = "2026-11-26T10:00:00Z")]
    pub created_at: String,
    /// `null`: never expires.
    #[schema(format = DateTime, required = true, example = "2027-01-01T00:00:00Z")]
    pub expires_at: Option<String>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl From<domain::IssuedToken> for IssuedToken {
    fn from(token: domain::IssuedToken) -> Self {
        Self {
            id: token.id,
            token: token.secret,
            created_at: rfc3339(token.created_at),
            expires_at: token.expires_at.map(rfc3339),
        }
    }
}

/// A token as listed: never its secret or hash.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    #[schema(format = DateTime, example = "2026-11-26T10:00:00Z")]
    pub created_at: String,
    /// Written at most once an hour, so it may lag by up to an hour; `null`
    /// when never used.
    #[schema(format = DateTime, required = true, example = "2026-11-26T11:00:00Z")]
    pub last_used_at: Option<String>,
    /// `null`: never expires.
    #[schema(format = DateTime, required = true, example = "2027-01-01T00:00:00Z")]
    pub expires_at: Option<String>,
}

/// One page of a user's tokens, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPage {
    pub items: Vec<TokenInfo>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl From<domain::Page<domain::Token>> for TokenPage {
    fn from(page: domain::Page<domain::Token>) -> Self {
        Self {
            items: page
                .items
                .into_iter()
                .map(|t| TokenInfo {
                    id: t.id,
                    created_at: rfc3339(t.created_at),
                    last_used_at: t.last_used_at.map(rfc3339),
                    expires_at: t.expires_at.map(rfc3339),
                })
                .collect(),
            next_cursor: page.next_cursor,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: &'static str,
    /// The backend the server runs on: `sqlite` or `postgresql`.
    #[schema(example = "sqlite")]
    pub database: &'static str,
}

/// `GET /health`: the process is alive, and how old the newest verified backup is.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// The backend the server runs on: `sqlite` or `postgresql`.
    #[schema(example = "sqlite")]
    pub database: &'static str,
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
