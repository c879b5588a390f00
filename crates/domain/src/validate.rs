//! Parsing types for the contract's validation rules: a value of one of these types
//! has been checked, so an invalid value cannot reach the database.

use std::fmt;

/// One invalid field: `field` is the name the API uses for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Every invalid field of one input, not only the first.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {}", self.summary())]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn single(field: &'static str, message: impl Into<String>) -> Self {
        Self(vec![FieldError {
            field,
            message: message.into(),
        }])
    }

    /// Keeps the value if it parsed, records the error under `field` if not.
    pub fn check<T>(&mut self, field: &'static str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(message) => {
                self.0.push(FieldError { field, message });
                None
            }
        }
    }

    /// `Ok(())` when nothing was recorded.
    pub fn into_result(self) -> Result<(), Self> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    fn summary(&self) -> String {
        self.0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Lengths in the contract count Unicode scalar values, not bytes.
fn chars(s: &str) -> usize {
    s.chars().count()
}

/// An e-mail address: trimmed, lower-cased, one `@` with text on both sides,
/// at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let sent = raw.trim();
        if sent.is_empty() {
            return Err("must not be empty".into());
        }
        // The length of what was sent, as the API document states it: lower-casing
        // can lengthen a string (`İ` becomes `i̇`).
        if chars(sent) > Self::MAX {
            return Err(format!("must be at most {} characters", Self::MAX));
        }
        let email = sent.to_lowercase();
        let mut parts = email.split('@');
        let (local, domain) = (parts.next(), parts.next());
        match (local, domain, parts.next()) {
            (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty() => {}
            _ => return Err("must contain exactly one @ with text on both sides".into()),
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters".into());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A control character: C0 (U+0000..U+001F), DEL, or C1 (U+0080..U+009F).
fn is_control(c: char) -> bool {
    c.is_control()
}

/// A Unicode bidirectional embedding, override or isolate (U+202A..U+202E,
/// U+2066..U+2069): text that displays in another order than it is stored,
/// the "Trojan Source" trick.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Text that is trimmed and must be `1..=max` characters after trimming, with no
/// control or bidirectional control character: a one-line label shown to others.
fn trimmed(raw: &str, max: usize) -> Result<String, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if chars(value) > max {
        return Err(format!("must be at most {max} characters"));
    }
    if let Some(c) = value.chars().find(|&c| is_control(c) || is_bidi_control(c)) {
        return Err(format!(
            "must not contain control or bidirectional control characters (found U+{:04X})",
            u32::from(c)
        ));
    }
    Ok(value.to_owned())
}

/// A user's display name: 1..=100 characters after trimming, stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub const MAX: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, String> {
        trimmed(raw, Self::MAX).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A post title: 1..=200 characters after trimming, stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub const MAX: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, String> {
        trimmed(raw, Self::MAX).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Post content: at most 100 000 characters, stored exactly as sent. Line breaks
/// and tabs are text; any other control character is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content(String);

impl Content {
    pub const MAX: usize = 100_000;

    pub fn parse(raw: String) -> Result<Self, String> {
        if chars(&raw) > Self::MAX {
            return Err(format!("must be at most {} characters", Self::MAX));
        }
        if let Some(c) = raw
            .chars()
            .find(|&c| is_control(c) && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(format!(
                "must not contain control characters other than line breaks and tabs \
                 (found U+{:04X})",
                u32::from(c)
            ));
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a user may do: `user` or `admin`; stored as that text.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum Role {
    #[default]
    User,
    Admin,
}

impl Role {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "user" => Ok(Self::User),
            "admin" => Ok(Self::Admin),
            _ => Err("must be \"user\" or \"admin\"".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").map(|e| e.0),
            Ok("ada@example.com".to_owned())
        );
    }

    #[test]
    fn email_forms() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "ada@",
            "a@b@c",
            "a b@c.d",
            "a@b\u{0}c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a@b", "first.last+tag@sub.example.org", "ü@例え.jp"] {
            assert!(Email::parse(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn email_length_boundary_counts_characters() {
        let at_limit = format!("{}@b.c", "é".repeat(Email::MAX - 4));
        assert_eq!(at_limit.chars().count(), 254);
        assert!(Email::parse(&at_limit).is_ok());
        let over = format!("{}@b.c", "é".repeat(Email::MAX - 3));
        assert!(Email::parse(&over).is_err());
        // Counted as sent, before lower-casing turns each `İ` into two characters.
        let dotted = format!("{}@b.c", "İ".repeat(Email::MAX - 4));
        assert_eq!(Email::parse(&dotted).map(|e| e.0.chars().count()), Ok(504));
    }

    #[test]
    fn name_boundaries_after_trim() {
        assert!(Name::parse("").is_err());
        assert!(Name::parse(" \t\n ").is_err());
        assert_eq!(Name::parse("  Ada  ").map(|n| n.0), Ok("Ada".to_owned()));
        let hundred = "😀".repeat(100);
        assert!(Name::parse(&format!("  {hundred}  ")).is_ok());
        assert!(Name::parse(&"😀".repeat(101)).is_err());
    }

    #[test]
    fn title_boundaries() {
        assert!(Title::parse(&"x".repeat(200)).is_ok());
        assert!(Title::parse(&"x".repeat(201)).is_err());
        assert!(Title::parse("   ").is_err());
    }

    #[test]
    fn names_and_titles_refuse_control_and_bidi_characters() {
        for bad in [
            "a\u{0}b",
            "tab\there",
            "line\nbreak",
            "del\u{7f}",
            "c1\u{85}next",
            "c1\u{9f}",
            "rlo\u{202e}txt",
            "lre\u{202a}",
            "isolate\u{2066}x",
            "pdi\u{2069}",
        ] {
            assert!(Name::parse(bad).is_err(), "name {bad:?} accepted");
            assert!(Title::parse(bad).is_err(), "title {bad:?} accepted");
        }
        // Outside the ranges: ordinary letters, emoji, a zero-width joiner.
        for good in [
            "Ada Lovelace",
            "Zoë 😀",
            "family 👨\u{200d}👩",
            "\u{2065}ok",
        ] {
            assert!(Name::parse(good).is_ok(), "name {good:?} refused");
        }
        // Surrounding whitespace, line breaks included, is trimmed, not refused.
        assert_eq!(
            Title::parse("\n Hello \t").map(|t| t.0),
            Ok("Hello".to_owned())
        );
    }

    #[test]
    fn content_is_kept_verbatim_and_bounded() {
        let raw = "  line\r\n\ttab \u{202e}😀  ".to_owned();
        assert_eq!(Content::parse(raw.clone()).map(|c| c.0), Ok(raw));
        for bad in [
            "nul\u{0}",
            "bell\u{7}",
            "del\u{7f}",
            "c1\u{85}",
            "esc\u{1b}[31m",
        ] {
            assert!(Content::parse(bad.into()).is_err(), "{bad:?} accepted");
        }
        assert!(Content::parse(String::new()).is_ok());
        assert!(Content::parse("é".repeat(100_000)).is_ok());
        assert!(Content::parse("é".repeat(100_001)).is_err());
    }

    #[test]
    fn roles() {
        assert_eq!(Role::parse("user"), Ok(Role::User));
        assert_eq!(Role::parse("admin"), Ok(Role::Admin));
        for bad in ["", "Admin", "root", " user"] {
            assert!(Role::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn errors_collect_every_field() {
        let mut errors = ValidationErrors::default();
        assert!(errors.check("email", Email::parse("nope")).is_none());
        assert!(errors.check("name", Name::parse("")).is_none());
        assert!(errors.check("role", Role::parse("user")).is_some());
        let fields: Vec<_> = errors.0.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["email", "name"]);
        assert!(errors.into_result().is_err());
    }
}
