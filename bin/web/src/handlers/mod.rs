//! Handlers, one module per resource. Each reads like a row of the contract's table:
//! extract, one domain call (which decides who may do it) in one hop to `db`'s
//! executor, respond. Authentication is an extractor of its own (`Auth`), so an
//! authenticated request makes two hops: one to look the token up, one for the call.
//! A body is read only after that (`Body`), within its deadline.

pub mod posts;
pub mod system;
pub mod tokens;
pub mod users;

use actix_web::web::Data;

use crate::AppState;

pub type State = Data<AppState>;
