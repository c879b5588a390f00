//! Handlers, one module per resource. Each reads like a row of the contract's table:
//! extract, authorise, one domain call in one blocking section, respond.

pub mod posts;
pub mod system;
pub mod tokens;
pub mod users;

use actix_web::web::Data;
use domain::Actor;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

pub type State = Data<AppState>;

fn require_admin(actor: &Actor) -> ApiResult<()> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

fn require_self_or_admin(actor: &Actor, user_id: &str) -> ApiResult<()> {
    if actor.is_self_or_admin(user_id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}
