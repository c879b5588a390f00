//! Every operation of the API, each declared once: by its handler's actix route
//! attribute and `#[utoipa::path]`, registered with one `.service(handler)` line in
//! its module's `routes`. utoipa-actix-web registers and documents them in the
//! same pass, so the OpenAPI document is the route table: the 405 answers (with
//! `Allow`) and the tests read it from [`operations`].

use std::sync::OnceLock;

use actix_web::App;
use actix_web::http::Method;
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation as OperationDoc, PathItem};
use utoipa_actix_web::AppExt;

use crate::handlers::{posts, system, tokens, users};
use crate::openapi::ApiDoc;

/// What each handler module registers its operations on.
pub type ServiceConfig<'a> = utoipa_actix_web::service_config::ServiceConfig<'a>;

/// Registers every operation of the API.
pub fn api(cfg: &mut ServiceConfig<'_>) {
    system::routes(cfg);
    posts::routes(cfg);
    users::routes(cfg);
    tokens::routes(cfg);
}

/// The OpenAPI document: [`ApiDoc`]'s description and shared components, plus
/// every operation [`api`] registers. Built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let (_, doc) = App::new()
            .into_utoipa_app()
            .openapi(ApiDoc::openapi())
            .configure(api)
            .split_for_parts();
        doc
    })
}

/// One operation of the document: method, path pattern (actix and OpenAPI write
/// `{id}` alike) and every status it can answer besides 405.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub method: Method,
    pub path: String,
    pub statuses: Vec<u16>,
}

/// Every operation of the document, path by path.
pub fn operations() -> Vec<Operation> {
    document()
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            methods(item).into_iter().map(|(method, op)| Operation {
                method,
                path: path.clone(),
                statuses: op
                    .responses
                    .responses
                    .keys()
                    .filter_map(|status| status.parse().ok())
                    .collect(),
            })
        })
        .collect()
}

fn methods(item: &PathItem) -> Vec<(Method, &OperationDoc)> {
    [
        (Method::GET, &item.get),
        (Method::POST, &item.post),
        (Method::PUT, &item.put),
        (Method::PATCH, &item.patch),
        (Method::DELETE, &item.delete),
        (Method::HEAD, &item.head),
        (Method::OPTIONS, &item.options),
        (Method::TRACE, &item.trace),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_ref().map(|op| (method, op)))
    .collect()
}

/// Each documented path with the methods it answers, as an `Allow` header lists
/// them (`GET, POST`).
pub fn allowed_methods() -> Vec<(String, String)> {
    document()
        .paths
        .paths
        .iter()
        .map(|(path, item)| {
            let allow = methods(item)
                .iter()
                .map(|(method, _)| method.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            (path.clone(), allow)
        })
        .collect()
}
