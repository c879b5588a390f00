//! Opaque keyset cursors. A cursor names its list, so one list's cursor handed to
//! another is refused, as is anything that does not decode.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cursor is not one this list issued")]
pub struct CursorError;

const POSTS: &str = "p1";
const USERS: &str = "u1";
const TOKENS: &str = "t1";
const SEARCH: &str = "s1";

fn encode(parts: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(parts.join("\n"))
}

fn decode(cursor: &str, kind: &str, fields: usize) -> Result<Vec<String>, CursorError> {
    if cursor.len() > 512 {
        return Err(CursorError);
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| CursorError)?;
    let text = String::from_utf8(bytes).map_err(|_| CursorError)?;
    let mut parts = text.split('\n');
    if parts.next() != Some(kind) {
        return Err(CursorError);
    }
    let rest: Vec<String> = parts.map(str::to_owned).collect();
    if rest.len() == fields {
        Ok(rest)
    } else {
        Err(CursorError)
    }
}

fn number(text: &str) -> Result<i64, CursorError> {
    text.parse().map_err(|_| CursorError)
}

/// Position after the post with this id (posts come newest id first).
pub fn encode_post(id: i64) -> String {
    encode(&[POSTS, &id.to_string()])
}

pub fn decode_post(cursor: &str) -> Result<i64, CursorError> {
    let parts = decode(cursor, POSTS, 1)?;
    number(&parts[0])
}

/// Position after the search hit with this score and post id (hits come lowest
/// score first). The score is written as its bits, so it comes back exactly.
pub fn encode_search(score: f64, id: i64) -> String {
    encode(&[
        SEARCH,
        &format!("{:016x}", score.to_bits()),
        &id.to_string(),
    ])
}

pub fn decode_search(cursor: &str) -> Result<(f64, i64), CursorError> {
    let parts = decode(cursor, SEARCH, 2)?;
    let bits = u64::from_str_radix(&parts[0], 16).map_err(|_| CursorError)?;
    let score = f64::from_bits(bits);
    if parts[0].len() != 16 || !score.is_finite() {
        return Err(CursorError);
    }
    Ok((score, number(&parts[1])?))
}

/// Position after the user created at `created_at` (Unix seconds) with this id.
pub fn encode_user(created_at: i64, id: &str) -> String {
    encode(&[USERS, &created_at.to_string(), id])
}

pub fn decode_user(cursor: &str) -> Result<(i64, String), CursorError> {
    let mut parts = decode(cursor, USERS, 2)?;
    let id = parts.pop().ok_or(CursorError)?;
    Ok((number(&parts[0])?, id))
}

/// Position after the token created at `created_at` (Unix seconds) with this id.
pub fn encode_token(created_at: i64, id: &str) -> String {
    encode(&[TOKENS, &created_at.to_string(), id])
}

pub fn decode_token(cursor: &str) -> Result<(i64, String), CursorError> {
    let mut parts = decode(cursor, TOKENS, 2)?;
    let id = parts.pop().ok_or(CursorError)?;
    Ok((number(&parts[0])?, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(decode_post(&encode_post(42)), Ok(42));
        assert_eq!(
            decode_user(&encode_user(1_700_000_000, "admin-001")),
            Ok((1_700_000_000, "admin-001".to_owned()))
        );
        for score in [
            -12.345_678_901_234_567,
            -0.0,
            -1e-300,
            3.5,
            f64::MIN_POSITIVE,
        ] {
            let (back, id) = decode_search(&encode_search(score, 7)).unwrap();
            assert_eq!((back.to_bits(), id), (score.to_bits(), 7));
        }
    }

    #[test]
    fn refuses_foreign_and_garbage() {
        assert_eq!(decode_post(&encode_user(1, "x")), Err(CursorError));
        assert_eq!(decode_user(&encode_post(1)), Err(CursorError));
        assert_eq!(decode_search(&encode_post(1)), Err(CursorError));
        assert_eq!(decode_post(&encode_search(-1.0, 1)), Err(CursorError));
        assert_eq!(decode_search(&encode_search(f64::NAN, 1)), Err(CursorError));
        for junk in ["", "!!!", "cDE", "zzzz", &"A".repeat(10_000)] {
            assert_eq!(decode_post(junk), Err(CursorError), "{junk:?}");
        }
        assert_eq!(
            decode_post(&URL_SAFE_NO_PAD.encode("p1\n99999999999999999999")),
            Err(CursorError)
        );
    }
}
