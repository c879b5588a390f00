//! One module per table: the row type, the insert type, the changes type and the
//! queries as plain functions over a connection.

pub mod post;
pub mod token;
pub mod user;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// True when `err` is a unique-constraint violation.
pub(crate) fn is_unique_violation(err: &DieselError) -> bool {
    matches!(
        err,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// True when `err` is a foreign-key violation.
pub(crate) fn is_foreign_key_violation(err: &DieselError) -> bool {
    matches!(
        err,
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)
    )
}
