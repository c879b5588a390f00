//! Idempotency keys: the answer to a create request stored under its caller and
//! key for a day, so that a retry of the same request gets that answer again and
//! creates nothing; the rules for the key, the request fingerprint, and pruning.
//!
//! [`once`] runs inside the caller's write transaction (`BEGIN IMMEDIATE`, the
//! single writer, on SQLite; a serializable transaction on PostgreSQL, run again
//! when it raced another): it looks the key up, and when it is absent runs the creation
//! and stores the answer in the same transaction. A retry after a client gave up
//! therefore finds either nothing (the first request never committed, so it runs
//! now) or the stored answer, never half of one. Two requests with the same key
//! do not overlap either: the second waits for the writer and then finds the
//! first one's answer. So no request ever sees a key "still being processed", and
//! no in-flight marker is stored; a crashed request cannot leave one behind.
//!
//! A creation that fails stores nothing (its transaction rolls back): the client
//! may fix the request and send it again under the same key.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::sqlite::Sqlite;
use sha2::{Digest, Sha256};

use crate::schema::idempotency_keys;
use crate::validate::ValidationErrors;
use crate::{Actor, Connection, Error, Result, Timestamp};

/// How long a key's answer is kept: a retry within this many seconds of the first
/// request is answered again; after it, the key is new.
pub const KEY_LIFETIME_SECS: i64 = 24 * 3600;

/// The longest key accepted, in characters (all ASCII, so bytes too).
pub const KEY_MAX_LEN: usize = 255;

/// Expired keys deleted by one [`prune_expired`]: bounded, so that a burst of
/// keys expiring together never makes one transaction long.
pub const PRUNE_BATCH: i64 = 1000;

/// The field name validation errors about the key carry: the header's.
const FIELD: &str = "Idempotency-Key";

/// An `Idempotency-Key` value: 1..=255 visible ASCII characters (0x21..=0x7E).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Checks a raw header value.
    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > KEY_MAX_LEN {
            return Err(format!("must be 1 to {KEY_MAX_LEN} characters"));
        }
        if !raw.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return Err("must be visible ASCII characters only (no spaces)".into());
        }
        // All ASCII, so this never fails; no lossy conversion needed.
        String::from_utf8(raw.to_vec())
            .map(Self)
            .map_err(|_| "must be visible ASCII characters only".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a request asked for: the SHA-256 of its method, path and body, hex. A
/// retry has the same one; another request under the same key does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn of(method: &str, path: &str, body: &[u8]) -> Self {
        let mut hash = Sha256::new();
        // NUL cannot occur in a method or a path, so no two requests run together.
        for part in [method.as_bytes(), b"\0", path.as_bytes(), b"\0", body] {
            hash.update(part);
        }
        Self(hex::encode(hash.finalize()))
    }
}

/// A request that carried a key: the key and what the request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedRequest {
    pub key: IdempotencyKey,
    pub fingerprint: Fingerprint,
}

/// An answer as the caller receives it: a status and a body, stored for retries.
/// The caller decides what goes in it; it must hold nothing that may be shown
/// only once (a token's secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// What [`once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    /// The creation ran: its value, and the answer stored for retries.
    First { value: T, answer: Answer },
    /// A retry: nothing ran; the first request's answer.
    Replay(Answer),
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys, check_for_backend(Sqlite, Pg))]
struct StoredKey {
    caller_id: String,
    key: String,
    fingerprint: String,
    status: i32,
    response: String,
    created_at: Timestamp,
}

/// Runs `create` once per caller and key: the first time, stores the answer that
/// `answer` renders from its value; on a retry within [`KEY_LIFETIME_SECS`] with
/// the same fingerprint, runs nothing and returns that answer. The same key with
/// another fingerprint is a validation error on `Idempotency-Key`.
///
/// Without a key (or without a caller to keep it for) this only runs `create`.
/// Call it inside a write transaction, so that the lookup, the creation and the
/// stored answer commit together or not at all.
pub fn once<T>(
    conn: &mut Connection,
    actor: &Actor,
    request: Option<&KeyedRequest>,
    now: Timestamp,
    create: impl FnOnce(&mut Connection) -> Result<T>,
    answer: impl FnOnce(&T) -> Result<Answer>,
) -> Result<Outcome<T>> {
    let (Some(request), Some(caller)) = (request, actor.id()) else {
        let value = create(conn)?;
        let answer = answer(&value)?;
        return Ok(Outcome::First { value, answer });
    };
    let expired = now.unix() - KEY_LIFETIME_SECS;
    prune(conn, caller, &request.key, expired)?;
    let found = idempotency_keys::table
        .find((caller, request.key.as_str()))
        .select(StoredKey::as_select())
        .get_result(conn)
        .optional()?;
    if let Some(found) = found {
        if found.fingerprint != request.fingerprint.0 {
            return Err(ValidationErrors::single(
                FIELD,
                "this key was already used for a different request; send a new key",
            )
            .into());
        }
        let status = u16::try_from(found.status)
            .map_err(|_| Error::Internal("a stored answer has an impossible status"))?;
        return Ok(Outcome::Replay(Answer {
            status,
            body: found.response,
        }));
    }
    let value = create(conn)?;
    let answer = answer(&value)?;
    diesel::insert_into(idempotency_keys::table)
        .values(StoredKey {
            caller_id: caller.to_owned(),
            key: request.key.as_str().to_owned(),
            fingerprint: request.fingerprint.0.clone(),
            status: i32::from(answer.status),
            response: answer.body.clone(),
            created_at: now,
        })
        .execute(conn)?;
    Ok(Outcome::First { value, answer })
}

/// Deletes this caller's key if it has expired: it is about to be used afresh.
fn prune(conn: &mut Connection, caller: &str, key: &IdempotencyKey, expired: i64) -> Result<()> {
    diesel::delete(
        idempotency_keys::table
            .find((caller, key.as_str()))
            .filter(idempotency_keys::created_at.le(expired)),
    )
    .execute(conn)?;
    Ok(())
}

/// Deletes the oldest [`PRUNE_BATCH`] expired keys, whoever's; returns how many.
/// Not part of a keyed write: on PostgreSQL the range it reads made concurrent
/// serializable writers collide, so the server runs it on its own, now and then.
pub fn prune_expired(conn: &mut Connection, now: Timestamp) -> Result<usize> {
    // By key, as a row value: Diesel's delete takes no LIMIT, and the key is two
    // columns. `$n` parameters and row values read the same on both backends.
    Ok(diesel::sql_query(
        "DELETE FROM idempotency_keys WHERE (caller_id, key) IN (SELECT caller_id, key \
         FROM idempotency_keys WHERE created_at <= $1 ORDER BY created_at LIMIT $2)",
    )
    .bind::<BigInt, _>(now.unix() - KEY_LIFETIME_SECS)
    .bind::<BigInt, _>(PRUNE_BATCH)
    .execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::user::NewUser;
    use crate::schema::{posts, users};
    use crate::{NewPostInput, Post, Role, test_support};

    const NOW: i64 = 1_800_000_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix(secs).unwrap()
    }

    fn member(conn: &mut Connection, id: &str) -> Actor {
        NewUser {
            id: id.into(),
            email: format!("{id}@example.com"),
            name: id.into(),
            role: Role::User,
            created_at: at(NOW),
        }
        .insert(conn)
        .unwrap();
        Actor::Member {
            id: id.into(),
            role: Role::User,
        }
    }

    fn keyed(key: &str, body: &str) -> KeyedRequest {
        KeyedRequest {
            key: IdempotencyKey::parse(key.as_bytes()).unwrap(),
            fingerprint: Fingerprint::of("POST", "/posts", body.as_bytes()),
        }
    }

    /// Creates a post titled `title` under `request`, answering with its id.
    fn create(
        conn: &mut Connection,
        actor: &Actor,
        request: Option<&KeyedRequest>,
        title: &str,
        now: i64,
    ) -> Result<Outcome<Post>> {
        let input = NewPostInput {
            title: title.into(),
            content: "c".into(),
            author_id: None,
            published_at: None,
        };
        once(
            conn,
            actor,
            request,
            at(now),
            |conn| Post::create(conn, actor, &input),
            |post| {
                Ok(Answer {
                    status: 201,
                    body: post.id.to_string(),
                })
            },
        )
    }

    fn posts(conn: &mut Connection) -> i64 {
        posts::table.count().get_result(conn).unwrap()
    }

    fn keys(conn: &mut Connection) -> Vec<(String, String)> {
        idempotency_keys::table
            .select((idempotency_keys::caller_id, idempotency_keys::key))
            .order((idempotency_keys::caller_id, idempotency_keys::key))
            .load(conn)
            .unwrap()
    }

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        for good in ["a", "~!", &"k".repeat(255), "0192f0c4-5e7b-7a9e"] {
            assert!(IdempotencyKey::parse(good.as_bytes()).is_ok(), "{good:?}");
        }
        let long = "k".repeat(256);
        for bad in [
            &b""[..],
            long.as_bytes(),
            b"a b",
            b"a\tb",
            b"\x7f",
            "caf\u{e9}".as_bytes(),
            b"\xff",
        ] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_fingerprint_covers_method_path_and_body() {
        let base = Fingerprint::of("POST", "/posts", b"{}");
        assert_eq!(base, Fingerprint::of("POST", "/posts", b"{}"));
        assert_ne!(base, Fingerprint::of("POST", "/users", b"{}"));
        assert_ne!(base, Fingerprint::of("PUT", "/posts", b"{}"));
        assert_ne!(base, Fingerprint::of("POST", "/posts", b"{ }"));
        assert_ne!(
            Fingerprint::of("POST", "/a", b"b"),
            Fingerprint::of("POST", "/ab", b"")
        );
    }

    #[test]
    fn a_retry_gets_the_first_answer_and_creates_nothing() {
        let mut db = test_support::db();
        let c = &mut db.conn;
        let ann = member(c, "ann");
        let request = keyed("k1", "first");
        let first = create(c, &ann, Some(&request), "first", NOW).unwrap();
        let Outcome::First { answer, .. } = first else {
            panic!("{first:?}")
        };
        for later in [NOW, NOW + KEY_LIFETIME_SECS - 1] {
            let again = create(c, &ann, Some(&request), "first", later).unwrap();
            assert_eq!(again, Outcome::Replay(answer.clone()));
        }
        assert_eq!(posts(c), 1);
        assert_eq!(keys(c), [("ann".into(), "k1".into())]);
    }

    #[test]
    fn the_same_key_for_another_request_is_invalid() {
        let mut db = test_support::db();
        let c = &mut db.conn;
        let ann = member(c, "ann");
        create(c, &ann, Some(&keyed("k1", "first")), "first", NOW).unwrap();
        let err = create(c, &ann, Some(&keyed("k1", "other")), "other", NOW).unwrap_err();
        assert!(
            matches!(&err, Error::Invalid(e) if e.0[0].field == "Idempotency-Key"),
            "{err:?}"
        );
        assert_eq!(posts(c), 1);
    }

    #[test]
    fn keys_are_per_caller_and_a_keyless_request_always_runs() {
        let mut db = test_support::db();
        let c = &mut db.conn;
        let ann = member(c, "ann");
        let bob = member(c, "bob");
        let request = keyed("shared", "same body");
        for actor in [&ann, &bob] {
            let outcome = create(c, actor, Some(&request), "t", NOW).unwrap();
            assert!(matches!(outcome, Outcome::First { .. }), "{outcome:?}");
        }
        for _ in 0..2 {
            let outcome = create(c, &ann, None, "t", NOW).unwrap();
            assert!(matches!(outcome, Outcome::First { .. }), "{outcome:?}");
        }
        assert_eq!(posts(c), 4);
        assert_eq!(keys(c).len(), 2);
    }

    #[test]
    fn a_failed_creation_stores_nothing() {
        let mut db = test_support::db();
        let c = &mut db.conn;
        let ann = member(c, "ann");
        let request = keyed("k1", "body");
        // The caller's write transaction rolls back on the error; so does this one.
        let failed =
            diesel::Connection::transaction(c, |c| create(c, &ann, Some(&request), "   ", NOW));
        assert!(matches!(failed, Err(Error::Invalid(_))), "{failed:?}");
        assert!(keys(c).is_empty());
        let fixed = create(c, &ann, Some(&request), "fixed", NOW).unwrap();
        assert!(matches!(fixed, Outcome::First { .. }), "{fixed:?}");
    }

    #[test]
    fn after_a_day_the_key_is_new_and_expired_keys_are_pruned() {
        let mut db = test_support::db();
        let c = &mut db.conn;
        let ann = member(c, "ann");
        for n in 0..20 {
            create(c, &ann, Some(&keyed(&format!("old{n:02}"), "b")), "t", NOW).unwrap();
        }
        create(c, &ann, Some(&keyed("recent", "b")), "t", NOW + 10).unwrap();
        assert_eq!(keys(c).len(), 21);
        let next_day = NOW + KEY_LIFETIME_SECS;
        // The same key a day later runs again, and only that key is replaced.
        let again = create(c, &ann, Some(&keyed("old00", "b")), "t", next_day).unwrap();
        assert!(matches!(again, Outcome::First { .. }), "{again:?}");
        assert_eq!(keys(c).len(), 21);
        // Pruning takes the other expired ones, and nothing younger than a day.
        assert_eq!(prune_expired(c, at(next_day)).unwrap(), 19);
        assert_eq!(prune_expired(c, at(next_day)).unwrap(), 0);
        assert_eq!(
            keys(c).iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>(),
            ["old00", "recent"]
        );
        assert_eq!(posts(c), 22);
    }

    #[test]
    fn a_deleted_caller_takes_its_keys_along() {
        let mut db = test_support::db();
        let c = &mut db.conn;
        let ann = member(c, "ann");
        once(
            c,
            &ann,
            Some(&keyed("k1", "b")),
            at(NOW),
            |_| Ok(()),
            |()| {
                Ok(Answer {
                    status: 204,
                    body: String::new(),
                })
            },
        )
        .unwrap();
        assert_eq!(keys(c).len(), 1);
        diesel::delete(users::table.find("ann")).execute(c).unwrap();
        assert!(keys(c).is_empty());
    }
}
