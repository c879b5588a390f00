//! Handlers, one module per resource. Each reads like a row of the contract's table:
//! extract, authorise, one domain call in one blocking section, respond.

pub mod posts;
pub mod system;
pub mod tokens;
pub mod users;

use actix_web::web::Data;

use crate::AppState;

pub type State = Data<AppState>;
