//! API tokens: 32 random bytes shown once, stored only as their SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use sha2::{Digest, Sha256};

use crate::models::user::require_self_or_admin;
use crate::schema::{tokens, users};
use crate::{Actor, Connection, Error, Result, Role, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tokens, check_for_backend(Sqlite))]
pub struct Token {
    pub id: String,
    pub user_id: String,
    pub token_hash: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = tokens)]
struct NewToken<'a> {
    id: String,
    user_id: &'a str,
    token_hash: String,
    created_at: Timestamp,
}

/// A token just issued: the only time its secret is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub id: String,
    pub secret: String,
    pub created_at: Timestamp,
}

/// Secrets are high-entropy, so one SHA-256 is enough to make the stored form useless.
fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Token {
    /// Issues a new token for an existing user: the user themselves may, or an
    /// admin for anyone; others get `Forbidden`.
    pub fn issue(
        conn: &mut Connection,
        actor: &Actor,
        user_id: &str,
        now: Timestamp,
    ) -> Result<IssuedToken> {
        require_self_or_admin(actor, user_id)?;
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| Error::Internal("no randomness available"))?;
        let secret = URL_SAFE_NO_PAD.encode(bytes);
        let id = Token::register(conn, user_id, &secret, now)?;
        Ok(IssuedToken {
            id,
            secret,
            created_at: now,
        })
    }

    /// Stores `secret` (for example an operator-chosen `ADMIN_TOKEN`) for the user;
    /// nothing happens if that secret is already registered. Returns the token id.
    pub fn register(
        conn: &mut Connection,
        user_id: &str,
        secret: &str,
        now: Timestamp,
    ) -> Result<String> {
        let token_hash = hash(secret);
        // The user must exist; a missing one is NotFound, not a constraint error.
        users::table
            .find(user_id)
            .select(users::id)
            .get_result::<String>(conn)?;
        diesel::insert_into(tokens::table)
            .values(NewToken {
                id: uuid::Uuid::now_v7().to_string(),
                user_id,
                token_hash: token_hash.clone(),
                created_at: now,
            })
            .on_conflict_do_nothing()
            .execute(conn)?;
        Ok(tokens::table
            .filter(tokens::token_hash.eq(token_hash))
            .select(tokens::id)
            .get_result(conn)?)
    }

    /// Who presents `secret`, or `None` for an unknown or revoked token.
    pub fn authenticate(conn: &mut Connection, secret: &str) -> Result<Option<Actor>> {
        let found = tokens::table
            .inner_join(users::table)
            .filter(tokens::token_hash.eq(hash(secret)))
            .select((users::id, users::role))
            .get_result::<(String, Role)>(conn)
            .optional()?;
        Ok(found.map(|(id, role)| Actor::Member { id, role }))
    }

    /// Revokes a token: its owner or an admin may; others get `Forbidden`.
    pub fn revoke(conn: &mut Connection, actor: &Actor, id: &str) -> Result<()> {
        let owner: String = tokens::table
            .find(id)
            .select(tokens::user_id)
            .get_result(conn)?;
        if !actor.is_self_or_admin(&owner) {
            return Err(Error::Forbidden);
        }
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

    #[test]
    fn issued_secret_authenticates_and_only_its_hash_is_stored() {
        let mut db = test_support::db();
        user(&mut db.conn, "ann", Role::User);
        let ann = Actor::Member {
            id: "ann".into(),
            role: Role::User,
        };
        let issued = Token::issue(&mut db.conn, &ann, "ann", Timestamp::now()).unwrap();
        assert_eq!(issued.secret.len(), 43, "32 bytes, base64url");
        assert_eq!(
            Token::authenticate(&mut db.conn, &issued.secret).unwrap(),
            Some(Actor::Member {
                id: "ann".into(),
                role: Role::User
            })
        );
        let stored: Vec<Token> = tokens::table
            .select(Token::as_select())
            .load(&mut db.conn)
            .unwrap();
        assert_eq!(stored.len(), 1);
        assert_ne!(stored[0].token_hash, issued.secret);
        assert!(!stored[0].token_hash.contains(&issued.secret));
        assert_eq!(Token::authenticate(&mut db.conn, "wrong").unwrap(), None);
    }

    #[test]
    fn revoke_is_owner_or_admin_and_ends_authentication() {
        let mut db = test_support::db();
        user(&mut db.conn, "ann", Role::User);
        user(&mut db.conn, "bob", Role::User);
        user(&mut db.conn, "root", Role::Admin);
        let c = &mut db.conn;
        let bob = Actor::Member {
            id: "bob".into(),
            role: Role::User,
        };
        let root = Actor::Member {
            id: "root".into(),
            role: Role::Admin,
        };
        assert!(matches!(
            Token::issue(c, &bob, "ann", Timestamp::now()),
            Err(Error::Forbidden)
        ));
        let t = Token::issue(c, &root, "ann", Timestamp::now()).unwrap();
        assert!(matches!(
            Token::revoke(c, &bob, &t.id),
            Err(Error::Forbidden)
        ));
        let ann = Token::authenticate(c, &t.secret).unwrap().unwrap();
        Token::revoke(c, &ann, &t.id).unwrap();
        assert_eq!(Token::authenticate(c, &t.secret).unwrap(), None);
        assert!(matches!(
            Token::revoke(c, &ann, &t.id),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn register_is_idempotent_and_needs_a_user() {
        let mut db = test_support::db();
        user(&mut db.conn, "root", Role::Admin);
        let c = &mut db.conn;
        let first = Token::register(c, "root", "operator-chosen-secret", Timestamp::now()).unwrap();
        let again = Token::register(c, "root", "operator-chosen-secret", Timestamp::now()).unwrap();
        assert_eq!(first, again);
        assert!(matches!(
            Token::register(c, "ghost", "another-secret-value", Timestamp::now()),
            Err(Error::NotFound)
        ));
    }
}
