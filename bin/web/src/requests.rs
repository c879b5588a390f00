//! What the API reads: request bodies (strict: unknown fields are refused) and
//! query strings, with their OpenAPI schemas, turned into the domain's inputs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};

use domain::{NewPostInput, NewUserInput, PostChangesInput, Timestamp, UserChangesInput};

use crate::error::ApiError;
use crate::views::Role;

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

/// `POST /users/{id}/tokens`, optional: without a body the token never expires.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewTokenBody {
    /// When the token stops working; must be in the future. Absent or `null`:
    /// never.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime, example = "2027-01-01T00:00:00Z")]
    pub expires_at: Option<DateTime<Utc>>,
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

/// Query of a list with no filters (`GET /users`, `GET /users/{id}/tokens`).
/// Unknown parameters are ignored; known ones must parse.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1..=100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

impl PageQuery {
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
    use crate::views::rfc3339;

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
