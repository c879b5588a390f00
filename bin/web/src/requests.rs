//! What the API reads: request bodies (strict: unknown fields are refused) and
//! query strings, with their OpenAPI schemas, turned into the domain's inputs.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use domain::validate::{Content, Email, Name, Title};
use domain::{NewPostInput, NewUserInput, PostChangesInput, Timestamp, UserChangesInput};

use crate::error::ApiError;
use crate::views::Role;

// The rules of `domain::validate` as the document states them: `maxLength` bounds
// what is sent, a pattern (for content, a pattern it must not match) says the rest,
// exactly. Trimming is `str::trim`, which
// removes the Unicode White_Space characters: they are spelled out, as engines
// disagree on what `\s` means. `tests/api/document.rs` runs each pattern against
// the validator on every character.

/// White_Space: what trimming removes.
macro_rules! white_space {
    () => {
        r"[\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    };
}

/// Inside a name or title: neither a control (Unicode Cc: C0, DEL, C1) nor a
/// bidirectional control.
macro_rules! label_char {
    () => {
        r"[^\u0000-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]"
    };
}

/// The first and last character of a trimmed name or title: a `label_char` that
/// is not White_Space either.
macro_rules! label_edge {
    () => {
        r"[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028-\u202F\u205F\u2066-\u2069\u3000]"
    };
}

/// Either side of an e-mail's `@`: neither `@`, White_Space nor a control.
macro_rules! email_char {
    () => {
        r"[^@\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    };
}

/// A name or title: non-blank once trimmed, nothing refused inside.
const LABEL: &str = concat!(
    "^",
    white_space!(),
    "*",
    label_edge!(),
    "(?:",
    label_char!(),
    "*",
    label_edge!(),
    ")?",
    white_space!(),
    "*$"
);

/// An e-mail address: one `@` with text on both sides, once trimmed.
const EMAIL: &str = concat!(
    "^",
    white_space!(),
    "*",
    email_char!(),
    "+@",
    email_char!(),
    "+",
    white_space!(),
    "*$"
);

/// What post content must not contain: a control character other than tab, line
/// feed and carriage return. Stated as `not: {pattern}` rather than as a pattern of
/// allowed characters, which generators merge with `maxLength` into a quantifier of
/// 100 000 that takes seconds to compile.
const CONTENT_FORBIDDEN: &str = r"[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]";

fn text(min: usize, max: usize, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .description(Some(description))
}

fn email_schema() -> Object {
    text(
        3,
        Email::MAX,
        &format!(
            "One `@` with text on both sides, no spaces or control characters, at most \
             {} characters. Stored trimmed and lower-cased; unique.",
            Email::MAX
        ),
    )
    .pattern(Some(EMAIL))
    .examples(["ada@example.com"])
    .build()
}

/// A one-line label (a name, a title): `1..=max` characters after trimming, with
/// no control or bidirectional control character.
fn label(max: usize) -> ObjectBuilder {
    text(
        1,
        max,
        &format!(
            "1 to {max} characters after trimming, no control or bidirectional control \
             characters. Stored trimmed."
        ),
    )
    .pattern(Some(LABEL))
}

fn name_schema() -> Object {
    label(Name::MAX).examples(["Ada"]).build()
}

fn title_schema() -> Object {
    label(Title::MAX).build()
}

fn content_schema() -> Object {
    text(
        0,
        Content::MAX,
        &format!(
            "At most {} characters; line breaks and tabs are the only control \
             characters allowed. Stored exactly as sent.",
            Content::MAX
        ),
    )
    // `Object` has no `not`; its extensions are written into it as they are.
    .extensions(Some(Extensions::from_iter([(
        "not",
        serde_json::json!({ "pattern": CONTENT_FORBIDDEN }),
    )])))
    .build()
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
    #[schema(schema_with = email_schema)]
    pub email: String,
    #[schema(schema_with = name_schema)]
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
    #[schema(schema_with = email_schema, required = false)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = name_schema, required = false)]
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
    #[schema(schema_with = title_schema)]
    pub title: String,
    #[schema(schema_with = content_schema)]
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
    #[schema(schema_with = title_schema, required = false)]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = content_schema, required = false)]
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
    /// Search (see the schema's description).
    #[param(schema_with = search_schema)]
    q: Option<String>,
}

/// A valid `q` as the document states it: the refusals of `SearchQuery::parse`
/// as lookaheads (stricter than the server where a pattern cannot say exactly
/// what a word character is: an ASCII letter or digit must appear, and `NEAR(`,
/// `title:` and `content:` are refused anywhere), then quotes in pairs.
const SEARCH: &str = concat!(
    r"^(?=[\s\S]*[0-9A-Za-z])",
    r"(?![\s\S]*NEAR\s*\()",
    r"(?![\s\S]*(?:[Tt][Ii][Tt][Ll][Ee]|[Cc][Oo][Nn][Tt][Ee][Nn][Tt]|\})\s*:)",
    r#"[^"]*(?:"[^"]*"[^"]*)*$"#
);

fn search_schema() -> Object {
    text(
        1,
        domain::models::search::MAX_QUERY_CHARS,
        "Search: the posts that match, best match first (title above content), each \
         with a `snippet`. Words match case- and accent-insensitively, the last word \
         also as a prefix, `\"quoted words\"` as a phrase; punctuation separates words. \
         1 to 200 characters after trimming, with at least one letter or digit. \
         Refused (400): an unmatched `\"`, and the search operators this API does not \
         offer, `NEAR(` and column filters (`title:`, `content:`, `{...}:`).",
    )
    .pattern(Some(SEARCH))
    .examples(["rust borrow", "\"quoted phrase\"", "caf"])
    .build()
}

/// `GET /posts` with or without `q`.
#[derive(Debug)]
pub enum PostsRequest {
    List(domain::PostFilter, PageRequest),
    Search(domain::PostFilter, domain::SearchQuery, PageRequest),
}

impl PostQuery {
    pub fn parse(self) -> Result<PostsRequest, ApiError> {
        let search = self
            .q
            .as_deref()
            .map(domain::SearchQuery::parse)
            .transpose()
            .map_err(|err| ApiError::BadRequest(err.0.into()))?;
        let (filter, page) = self.filter_and_page()?;
        Ok(match search {
            Some(query) => PostsRequest::Search(filter, query, page),
            None => PostsRequest::List(filter, page),
        })
    }

    fn filter_and_page(self) -> Result<(domain::PostFilter, PageRequest), ApiError> {
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
