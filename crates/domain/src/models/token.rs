//! API tokens: 32 random bytes shown once, stored only as their SHA-256, with an
//! optional expiry and a "last used" time written at most once an hour. Who may
//! issue, list and revoke which tokens is decided here.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use sha2::{Digest, Sha256};

use crate::models::user::require_self_or_admin;
use crate::models::{created_before, load_page, per_backend};
use crate::schema::{tokens, users};
use crate::validate::ValidationErrors;
use crate::{Actor, Connection, Error, Page, Result, Role, Timestamp, cursor};

/// "Last used" is written again only when the stored value is older than this.
pub const LAST_USED_GRANULARITY_SECS: i64 = 3600;

/// The label of the token the seed registers from `ADMIN_TOKEN`.
pub const ADMIN_TOKEN_LABEL: &str = "ADMIN_TOKEN";

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tokens, check_for_backend(Sqlite, Pg))]
pub struct Token {
    pub id: String,
    pub user_id: String,
    pub token_hash: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    /// Set for tokens registered by an operator (the seed), not issued by the API.
    pub label: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = tokens)]
struct NewToken<'a> {
    id: String,
    user_id: &'a str,
    token_hash: String,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    label: Option<&'a str>,
}

/// A token just issued: the only time its secret is known. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub id: String,
    pub secret: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Who presented a valid token, and what the token needs to stay up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub actor: Actor,
    pub token_id: String,
    /// True when "last used" is older than [`LAST_USED_GRANULARITY_SECS`] (or
    /// unset): the caller should call [`Token::touch`], off the request's path.
    pub stale_last_used: bool,
}

/// Secrets are high-entropy, so one SHA-256 is enough to make the stored form useless.
fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Token {
    /// Issues a new token for an existing user: the user themselves may, or an
    /// admin for anyone; others get `Forbidden`. An expiry must lie in the future.
    pub fn issue(
        conn: &mut Connection,
        actor: &Actor,
        user_id: &str,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<IssuedToken> {
        require_self_or_admin(actor, user_id)?;
        if expires_at.is_some_and(|at| at <= now) {
            return Err(ValidationErrors::single("expiresAt", "must be in the future").into());
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| Error::Internal("no randomness available"))?;
        let secret = URL_SAFE_NO_PAD.encode(bytes);
        let id = Token::insert(conn, user_id, &secret, expires_at, None, now)?;
        Ok(IssuedToken {
            id,
            secret,
            created_at: now,
            expires_at,
        })
    }

    /// Stores `secret` (for example an operator-chosen `ADMIN_TOKEN`) for the user
    /// under `label`; nothing happens if that secret is already registered.
    /// Returns the token id. For trusted callers (the seed): no permission check.
    pub fn register(
        conn: &mut Connection,
        user_id: &str,
        secret: &str,
        label: &str,
        now: Timestamp,
    ) -> Result<String> {
        Token::insert(conn, user_id, secret, None, Some(label), now)
    }

    fn insert(
        conn: &mut Connection,
        user_id: &str,
        secret: &str,
        expires_at: Option<Timestamp>,
        label: Option<&str>,
        now: Timestamp,
    ) -> Result<String> {
        let token_hash = hash(secret);
        // The user must exist; a missing one is NotFound, not a constraint error.
        users::table
            .find(user_id)
            .select(users::id)
            .get_result::<String>(conn)?;
        let token = NewToken {
            id: uuid::Uuid::now_v7().to_string(),
            user_id,
            token_hash: token_hash.clone(),
            created_at: now,
            expires_at,
            label,
        };
        per_backend!(conn, |c| diesel::insert_into(tokens::table)
            .values(&token)
            .on_conflict_do_nothing()
            .execute(c))?;
        Ok(tokens::table
            .filter(tokens::token_hash.eq(token_hash))
            .select(tokens::id)
            .get_result(conn)?)
    }

    /// Revokes the user's tokens with `label` other than the one whose secret is
    /// `keep`: the seed's previous `ADMIN_TOKEN` after it changed. Returns how many
    /// were revoked.
    pub fn revoke_labelled_except(
        conn: &mut Connection,
        user_id: &str,
        label: &str,
        keep: &str,
    ) -> Result<usize> {
        Ok(diesel::delete(
            tokens::table
                .filter(tokens::user_id.eq(user_id))
                .filter(tokens::label.eq(label))
                .filter(tokens::token_hash.ne(hash(keep))),
        )
        .execute(conn)?)
    }

    /// Who presents `secret`, or `None` for an unknown, revoked or expired token.
    pub fn authenticate(
        conn: &mut Connection,
        secret: &str,
        now: Timestamp,
    ) -> Result<Option<Authenticated>> {
        let token_hash = hash(secret);
        // Per backend: every authenticated request runs this (see `per_backend!`).
        let found = per_backend!(conn, |c| tokens::table
            .inner_join(users::table)
            .filter(tokens::token_hash.eq(&token_hash))
            .select((
                tokens::id,
                tokens::expires_at,
                tokens::last_used_at,
                users::id,
                users::role,
            ))
            .get_result::<(String, Option<Timestamp>, Option<Timestamp>, String, Role)>(c)
            .optional())?;
        Ok(
            found.and_then(|(token_id, expires_at, last_used_at, id, role)| {
                if expires_at.is_some_and(|at| at <= now) {
                    return None;
                }
                Some(Authenticated {
                    actor: Actor::Member { id, role },
                    token_id,
                    stale_last_used: last_used_at
                        .is_none_or(|at| now.unix() - at.unix() >= LAST_USED_GRANULARITY_SECS),
                })
            }),
        )
    }

    /// Records that the token was used at `now`, unless a use within the last
    /// hour is already recorded. True when it wrote.
    pub fn touch(conn: &mut Connection, id: &str, now: Timestamp) -> Result<bool> {
        let due = now.unix() - LAST_USED_GRANULARITY_SECS;
        let written = diesel::update(
            tokens::table.find(id).filter(
                tokens::last_used_at
                    .is_null()
                    .or(tokens::last_used_at.le(due)),
            ),
        )
        .set(tokens::last_used_at.eq(Some(now)))
        .execute(conn)?;
        Ok(written == 1)
    }

    /// A user's tokens, newest first: the user themselves, or an admin for anyone.
    /// A missing user is `NotFound` for an admin.
    pub fn list(
        conn: &mut Connection,
        actor: &Actor,
        user_id: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<Token>> {
        require_self_or_admin(actor, user_id)?;
        users::table
            .find(user_id)
            .select(users::id)
            .get_result::<String>(conn)?;
        let mut query = tokens::table
            .select(Token::as_select())
            .filter(tokens::user_id.eq(user_id.to_owned()))
            .order((tokens::created_at.desc(), tokens::id.desc()))
            .into_boxed();
        if let Some(cursor) = cursor {
            let (created_at, id) = cursor::decode_token(cursor)?;
            query = query.filter(created_before("tokens", created_at, id));
        }
        load_page(conn, query, limit, |t: &Token| {
            cursor::encode_token(t.created_at.unix(), &t.id)
        })
    }

    /// Revokes a token: its owner or an admin may; others get `Forbidden`.
    pub fn revoke(conn: &mut Connection, actor: &Actor, id: &str) -> Result<()> {
        let owner: String = tokens::table
            .find(id)
            .select(tokens::user_id)
            .get_result(conn)?;
        require_self_or_admin(actor, &owner)?;
        diesel::delete(tokens::table.find(id)).execute(conn)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::user::NewUser;
    use crate::test_support;

    fn user(conn: &mut Connection, id: &str, role: Role) {
        NewUser {
            id: id.into(),
            email: format!("{id}@example.com"),
            name: id.into(),
            role,
            created_at: Timestamp::now(),
        }
        .insert(conn)
        .unwrap();
    }

    fn member(id: &str, role: Role) -> Actor {
        Actor::Member {
            id: id.into(),
            role,
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix(secs).unwrap()
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn issued_secret_authenticates_and_only_its_hash_is_stored() {
        let mut db = test_support::db();
        user(&mut db.conn, "ann", Role::User);
        let ann = member("ann", Role::User);
        let issued = Token::issue(&mut db.conn, &ann, "ann", None, at(NOW)).unwrap();
        assert_eq!(issued.secret.len(), 43, "32 bytes, base64url");
        let found = Token::authenticate(&mut db.conn, &issued.secret, at(NOW))
            .unwrap()
            .unwrap();
        assert_eq!(found.actor, ann);
        assert_eq!(found.token_id, issued.id);
        let stored: Vec<Token> = tokens::table
            .select(Token::as_select())
            .load(&mut db.conn)
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_ne!(stored[0].token_hash, issued.secret);
        assert!(!stored[0].token_hash.contains(&issued.secret));
        assert_eq!(
            Token::authenticate(&mut db.conn, "wrong", at(NOW)).unwrap(),
            None
        );
        let shown = format!("{issued:?}");
        assert!(!shown.contains(&issued.secret), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn an_expired_token_no_longer_authenticates() {
        let mut db = test_support::db();
        user(&mut db.conn, "ann", Role::User);
        let c = &mut db.conn;
        let ann = member("ann", Role::User);
        let issued = Token::issue(c, &ann, "ann", Some(at(NOW + 60)), at(NOW)).unwrap();
        assert!(
            Token::authenticate(c, &issued.secret, at(NOW + 59))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            Token::authenticate(c, &issued.secret, at(NOW + 60)).unwrap(),
            None
        );
        for past in [NOW, NOW - 1] {
            let err = Token::issue(c, &ann, "ann", Some(at(past)), at(NOW)).unwrap_err();
            assert!(
                matches!(&err, Error::Invalid(e) if e.0[0].field == "expiresAt"),
                "{err:?}"
            );
        }
    }

    #[test]
    fn last_used_is_written_at_most_once_an_hour() {
        let mut db = test_support::db();
        user(&mut db.conn, "ann", Role::User);
        let c = &mut db.conn;
        let ann = member("ann", Role::User);
        let t = Token::issue(c, &ann, "ann", None, at(NOW)).unwrap();
        let seen =
            |c: &mut Connection, now| Token::authenticate(c, &t.secret, at(now)).unwrap().unwrap();
        assert!(seen(c, NOW).stale_last_used, "never used yet");
        assert!(Token::touch(c, &t.id, at(NOW)).unwrap());
        assert!(!Token::touch(c, &t.id, at(NOW + 10)).unwrap());
        assert!(!seen(c, NOW + 3599).stale_last_used);
        assert!(seen(c, NOW + 3600).stale_last_used);
        assert!(Token::touch(c, &t.id, at(NOW + 3600)).unwrap());
        let page = Token::list(c, &ann, "ann", None, 10).unwrap();
        assert_eq!(page.items[0].last_used_at, Some(at(NOW + 3600)));
    }

    #[test]
    fn list_is_newest_first_paged_and_self_or_admin() {
        let mut db = test_support::db();
        user(&mut db.conn, "ann", Role::User);
        user(&mut db.conn, "bob", Role::User);
        user(&mut db.conn, "root", Role::Admin);
        let c = &mut db.conn;
        let ann = member("ann", Role::User);
        let mut issued = Vec::new();
        for i in 0..5 {
            // Two tokens share each second: the id breaks the tie.
            issued.push(
                Token::issue(c, &ann, "ann", None, at(NOW + i / 2))
                    .unwrap()
                    .id,
            );
        }
        issued.reverse();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = Token::list(c, &ann, "ann", cursor.as_deref(), 2).unwrap();
            seen.extend(page.items.into_iter().map(|t| t.id));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, issued);
        let bob = member("bob", Role::User);
        assert!(matches!(
            Token::list(c, &bob, "ann", None, 10),
            Err(Error::Forbidden)
        ));
        let root = member("root", Role::Admin);
        assert_eq!(
            Token::list(c, &root, "ann", None, 10).unwrap().items.len(),
            5
        );
        assert!(matches!(
            Token::list(c, &root, "ghost", None, 10),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn revoke_is_owner_or_admin_and_ends_authentication() {
        let mut db = test_support::db();
        user(&mut db.conn, "ann", Role::User);
        user(&mut db.conn, "bob", Role::User);
        user(&mut db.conn, "root", Role::Admin);
        let c = &mut db.conn;
        let bob = member("bob", Role::User);
        let root = member("root", Role::Admin);
        assert!(matches!(
            Token::issue(c, &bob, "ann", None, at(NOW)),
            Err(Error::Forbidden)
        ));
        let t = Token::issue(c, &root, "ann", None, at(NOW)).unwrap();
        assert!(matches!(
            Token::revoke(c, &bob, &t.id),
            Err(Error::Forbidden)
        ));
        let ann = Token::authenticate(c, &t.secret, at(NOW))
            .unwrap()
            .unwrap()
            .actor;
        Token::revoke(c, &ann, &t.id).unwrap();
        assert_eq!(Token::authenticate(c, &t.secret, at(NOW)).unwrap(), None);
        assert!(matches!(
            Token::revoke(c, &ann, &t.id),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn register_is_idempotent_needs_a_user_and_replaces_by_label() {
        let mut db = test_support::db();
        user(&mut db.conn, "root", Role::Admin);
        let c = &mut db.conn;
        let now = at(NOW);
        let first =
            Token::register(c, "root", "operator-chosen-secret", ADMIN_TOKEN_LABEL, now).unwrap();
        let again =
            Token::register(c, "root", "operator-chosen-secret", ADMIN_TOKEN_LABEL, now).unwrap();
        assert_eq!(first, again);
        assert!(matches!(
            Token::register(c, "ghost", "another-secret-value", ADMIN_TOKEN_LABEL, now),
            Err(Error::NotFound)
        ));
        // An issued token of the same user is not the seed's and stays.
        let issued = Token::issue(c, &member("root", Role::Admin), "root", None, now).unwrap();
        Token::register(c, "root", "the-new-operator-secret", ADMIN_TOKEN_LABEL, now).unwrap();
        let revoked =
            Token::revoke_labelled_except(c, "root", ADMIN_TOKEN_LABEL, "the-new-operator-secret")
                .unwrap();
        assert_eq!(revoked, 1);
        assert_eq!(
            Token::authenticate(c, "operator-chosen-secret", now).unwrap(),
            None
        );
        assert!(
            Token::authenticate(c, "the-new-operator-secret", now)
                .unwrap()
                .is_some()
        );
        assert!(
            Token::authenticate(c, &issued.secret, now)
                .unwrap()
                .is_some()
        );
    }
}
