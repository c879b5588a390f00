//! Users: rows, creation with validated input, keyset listing newest first, changes,
//! and who may do which: admins manage every account, members see and change their
//! own (name and email only).

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;

use crate::models::{
    created_before, is_foreign_key_violation, is_unique_violation, load_page, per_backend,
};
use crate::schema::{posts, users};
use crate::validate::{Email, Name, Role, ValidationErrors};
use crate::{Actor, Connection, Error, Page, Result, Timestamp, cursor};

impl<DB: Backend> FromSql<Text, DB> for Role
where
    String: FromSql<Text, DB>,
{
    fn from_sql(value: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, DB>>::from_sql(value)?;
        Ok(Role::parse(&text)?)
    }
}

impl ToSql<Text, Sqlite> for Role {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.as_str());
        Ok(IsNull::No)
    }
}

impl ToSql<Text, Pg> for Role {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
    }
}

impl ToSql<Text, db::MultiBackend> for Role {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, db::MultiBackend>) -> serialize::Result {
        out.set_value((Text, self));
        Ok(IsNull::No)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(Sqlite, Pg))]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
}

/// A validated user about to be inserted.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
}

/// `POST /users` as received, before validation.
#[derive(Debug, Clone, Default)]
pub struct NewUserInput {
    pub email: String,
    pub name: String,
    pub role: Option<String>,
}

impl NewUserInput {
    /// Validates every field, giving a new user with a fresh UUID v7 id.
    pub fn validate(&self, now: Timestamp) -> Result<NewUser, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let email = errors.check("email", Email::parse(&self.email));
        let name = errors.check("name", Name::parse(&self.name));
        let role = match &self.role {
            Some(role) => errors.check("role", Role::parse(role)),
            None => Some(Role::User),
        };
        match (email, name, role) {
            (Some(email), Some(name), Some(role)) => Ok(NewUser {
                id: uuid::Uuid::now_v7().to_string(),
                email: email.as_str().to_owned(),
                name: name.as_str().to_owned(),
                role,
                created_at: now,
            }),
            _ => Err(errors),
        }
    }
}

/// `PATCH /users/{id}` as received: absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UserChangesInput {
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<String>,
}

#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<Role>,
}

impl UserChangesInput {
    pub fn validate(&self) -> Result<UserChanges, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let changes = UserChanges {
            email: self
                .email
                .as_deref()
                .and_then(|e| errors.check("email", Email::parse(e)))
                .map(|e| e.as_str().to_owned()),
            name: self
                .name
                .as_deref()
                .and_then(|n| errors.check("name", Name::parse(n)))
                .map(|n| n.as_str().to_owned()),
            role: self
                .role
                .as_deref()
                .and_then(|r| errors.check("role", Role::parse(r))),
        };
        errors.into_result().map(|()| changes)
    }
}

fn email_taken(err: diesel::result::Error) -> Error {
    if is_unique_violation(&err) {
        Error::Conflict("a user with this email already exists")
    } else {
        err.into()
    }
}

impl NewUser {
    pub fn insert(&self, conn: &mut Connection) -> Result<User> {
        diesel::insert_into(users::table)
            .values(self)
            .returning(users::all_columns)
            .get_result::<User>(conn)
            .map_err(email_taken)
    }

    /// Inserts each user unless one with its id or email exists; returns how many
    /// were inserted.
    pub fn insert_many_if_absent(conn: &mut Connection, users: &[NewUser]) -> Result<usize> {
        let mut inserted = 0;
        for user in users {
            inserted += usize::from(user.insert_if_absent(conn)?);
        }
        Ok(inserted)
    }

    /// Inserts unless a user with this id or email exists; true when inserted.
    pub fn insert_if_absent(&self, conn: &mut Connection) -> Result<bool> {
        let inserted = per_backend!(conn, |c| diesel::insert_into(users::table)
            .values(self)
            .on_conflict_do_nothing()
            .execute(c))?;
        Ok(inserted == 1)
    }
}

/// `Forbidden` unless `actor` is an admin.
fn require_admin(actor: &Actor) -> Result<()> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

/// `Forbidden` unless `actor` is an admin or the user `id` themselves.
pub(crate) fn require_self_or_admin(actor: &Actor, id: &str) -> Result<()> {
    if actor.is_self_or_admin(id) {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

impl User {
    /// The user with this id, with no permission check: for trusted callers (the
    /// seed, the domain itself). Requests go through [`User::find_visible`].
    pub fn find(conn: &mut Connection, id: &str) -> Result<User> {
        Ok(users::table
            .find(id)
            .select(User::as_select())
            .get_result(conn)?)
    }

    /// The caller's own account; `NotFound` when it went away after the caller
    /// authenticated, `Forbidden` for an anonymous caller.
    pub fn current(conn: &mut Connection, actor: &Actor) -> Result<User> {
        let id = actor.id().ok_or(Error::Forbidden)?;
        User::find(conn, id)
    }

    /// A user the caller may see: themselves, or anyone for an admin; others are
    /// `Forbidden` whether or not the user exists.
    pub fn find_visible(conn: &mut Connection, actor: &Actor, id: &str) -> Result<User> {
        require_self_or_admin(actor, id)?;
        User::find(conn, id)
    }

    /// Creates a user from raw input: admins only, every field validated.
    pub fn create(
        conn: &mut Connection,
        actor: &Actor,
        input: &NewUserInput,
        now: Timestamp,
    ) -> Result<User> {
        require_admin(actor)?;
        input.validate(now)?.insert(conn)
    }

    /// Users newest first, `limit` per page, after `cursor` when given: admins only.
    pub fn list(
        conn: &mut Connection,
        actor: &Actor,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<User>> {
        require_admin(actor)?;
        let mut query = users::table
            .select(User::as_select())
            .order((users::created_at.desc(), users::id.desc()))
            .into_boxed();
        if let Some(cursor) = cursor {
            let (created_at, id) = cursor::decode_user(cursor)?;
            query = query.filter(created_before("users", created_at, id));
        }
        load_page(conn, query, limit, |u: &User| {
            cursor::encode_user(u.created_at.unix(), &u.id)
        })
    }

    /// Changes a user: members their own name and email, admins anyone and any
    /// field. Permission is decided before validation, as for every operation.
    pub fn update(
        conn: &mut Connection,
        actor: &Actor,
        id: &str,
        input: &UserChangesInput,
    ) -> Result<User> {
        require_self_or_admin(actor, id)?;
        if input.role.is_some() {
            require_admin(actor)?;
        }
        let changes = input.validate()?;
        User::apply(conn, id, &changes)
    }

    fn apply(conn: &mut Connection, id: &str, changes: &UserChanges) -> Result<User> {
        if changes.email.is_none() && changes.name.is_none() && changes.role.is_none() {
            return User::find(conn, id);
        }
        diesel::update(users::table.find(id))
            .set(changes)
            .returning(users::all_columns)
            .get_result::<User>(conn)
            .map_err(email_taken)
    }

    /// Deletes the user and their tokens (admins only); a user who still has
    /// posts stays.
    pub fn delete(conn: &mut Connection, actor: &Actor, id: &str) -> Result<()> {
        require_admin(actor)?;
        let has_posts = diesel::select(diesel::dsl::exists(
            posts::table.filter(posts::author_id.eq(id)),
        ))
        .get_result::<bool>(conn)?;
        if has_posts {
            return Err(Error::Conflict("the user still has posts"));
        }
        let deleted = diesel::delete(users::table.find(id))
            .execute(conn)
            .map_err(|err| {
                if is_foreign_key_violation(&err) {
                    Error::Conflict("the user still has posts")
                } else {
                    err.into()
                }
            })?;
        if deleted == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    pub fn count(conn: &mut Connection) -> Result<i64> {
        Ok(users::table.count().get_result(conn)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support;

    fn input(email: &str, name: &str) -> NewUserInput {
        NewUserInput {
            email: email.into(),
            name: name.into(),
            role: None,
        }
    }

    #[test]
    fn creates_with_uuid_v7_trimmed_lowercase_email_and_default_role() {
        let mut db = test_support::db();
        let now = Timestamp::now();
        let user = input(" Ada@Example.com ", "  Ada ")
            .validate(now)
            .unwrap()
            .insert(&mut db.conn)
            .unwrap();
        assert_eq!(user.email, "ada@example.com");
        assert_eq!(user.name, "Ada");
        assert_eq!(user.role, Role::User);
        assert_eq!(user.created_at, now);
        let id = uuid::Uuid::parse_str(&user.id).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(User::find(&mut db.conn, &user.id).unwrap(), user);
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let err = NewUserInput {
            email: "nope".into(),
            name: " ".into(),
            role: Some("root".into()),
        }
        .validate(Timestamp::now())
        .unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["email", "name", "role"]);
    }

    #[test]
    fn duplicate_email_is_a_conflict_even_with_other_case() {
        let mut db = test_support::db();
        let now = Timestamp::now();
        input("a@b.c", "A")
            .validate(now)
            .unwrap()
            .insert(&mut db.conn)
            .unwrap();
        let err = input("A@B.C ", "B")
            .validate(now)
            .unwrap()
            .insert(&mut db.conn);
        assert!(matches!(err, Err(Error::Conflict(_))), "{err:?}");
        assert_eq!(User::count(&mut db.conn).unwrap(), 1);
    }

    #[test]
    fn list_walks_newest_first_across_pages() {
        let mut db = test_support::db();
        let mut ids = Vec::new();
        for i in 0..7 {
            // Several users share a second: the id breaks the tie.
            let at = Timestamp::from_unix(1_700_000_000 + i / 3).unwrap();
            let user = input(&format!("u{i}@x.y"), "U").validate(at).unwrap();
            ids.push((user.created_at, user.id.clone()));
            user.insert(&mut db.conn).unwrap();
        }
        ids.sort();
        ids.reverse();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = User::list(&mut db.conn, &admin(), cursor.as_deref(), 3).unwrap();
            seen.extend(page.items.iter().map(|u| (u.created_at, u.id.clone())));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ids);
    }

    #[test]
    fn update_changes_only_given_fields_and_guards_email() {
        let mut db = test_support::db();
        let now = Timestamp::now();
        let a = input("a@x.y", "A")
            .validate(now)
            .unwrap()
            .insert(&mut db.conn)
            .unwrap();
        input("b@x.y", "B")
            .validate(now)
            .unwrap()
            .insert(&mut db.conn)
            .unwrap();
        let rename = UserChangesInput {
            name: Some(" Alice ".into()),
            ..Default::default()
        };
        let updated = User::update(&mut db.conn, &admin(), &a.id, &rename).unwrap();
        assert_eq!(
            (updated.name.as_str(), updated.email.as_str()),
            ("Alice", "a@x.y")
        );
        let clash = UserChangesInput {
            email: Some("B@x.y".into()),
            ..Default::default()
        };
        assert!(matches!(
            User::update(&mut db.conn, &admin(), &a.id, &clash),
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            User::update(&mut db.conn, &admin(), "missing", &rename),
            Err(Error::NotFound)
        ));
    }

    fn admin() -> Actor {
        Actor::Member {
            id: "root".into(),
            role: Role::Admin,
        }
    }

    fn member(id: &str) -> Actor {
        Actor::Member {
            id: id.into(),
            role: Role::User,
        }
    }

    #[test]
    fn members_see_and_change_only_themselves_and_never_a_role() {
        let mut db = test_support::db();
        let now = Timestamp::now();
        let ann = input("ann@x.y", "Ann")
            .validate(now)
            .unwrap()
            .insert(&mut db.conn)
            .unwrap();
        let bob = input("bob@x.y", "Bob")
            .validate(now)
            .unwrap()
            .insert(&mut db.conn)
            .unwrap();
        let c = &mut db.conn;
        let as_ann = member(&ann.id);
        assert_eq!(User::find_visible(c, &as_ann, &ann.id).unwrap(), ann);
        assert_eq!(User::current(c, &as_ann).unwrap(), ann);
        assert!(matches!(
            User::find_visible(c, &as_ann, &bob.id),
            Err(Error::Forbidden)
        ));
        // Forbidden, not NotFound: a member learns nothing about other ids.
        assert!(matches!(
            User::find_visible(c, &as_ann, "missing"),
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            User::current(c, &Actor::Anonymous),
            Err(Error::Forbidden)
        ));
        let rename = UserChangesInput {
            name: Some("Bobby".into()),
            ..Default::default()
        };
        assert!(matches!(
            User::update(c, &as_ann, &bob.id, &rename),
            Err(Error::Forbidden)
        ));
        // The role rule comes before validation: an invalid name does not hide it.
        let promote = UserChangesInput {
            role: Some("admin".into()),
            name: Some(" ".into()),
            ..Default::default()
        };
        assert!(matches!(
            User::update(c, &as_ann, &ann.id, &promote),
            Err(Error::Forbidden)
        ));
        assert_eq!(User::find(c, &ann.id).unwrap().role, Role::User);
        assert!(matches!(
            User::list(c, &as_ann, None, 10),
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            User::create(c, &as_ann, &input("c@x.y", "C"), now),
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            User::delete(c, &as_ann, &ann.id),
            Err(Error::Forbidden)
        ));
        assert_eq!(User::count(c).unwrap(), 2);
        // The admin may do each of them.
        User::create(c, &admin(), &input("c@x.y", "C"), now).unwrap();
        assert_eq!(User::list(c, &admin(), None, 10).unwrap().items.len(), 3);
        User::update(
            c,
            &admin(),
            &ann.id,
            &UserChangesInput {
                role: Some("admin".into()),
                ..Default::default()
            },
        )
        .unwrap();
        User::delete(c, &admin(), &bob.id).unwrap();
        assert_eq!(User::count(c).unwrap(), 2);
    }
}
