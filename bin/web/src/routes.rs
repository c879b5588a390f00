//! The route table: every operation of the API with the statuses it can answer.
//! [`crate::configure`] registers exactly these, and tests check the OpenAPI
//! document and real responses against them.

use actix_web::Route;
use actix_web::http::Method;

use crate::handlers::{posts, system, tokens, users};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    pub fn method(self) -> Method {
        match self {
            Self::Get => Method::GET,
            Self::Post => Method::POST,
            Self::Patch => Method::PATCH,
            Self::Delete => Method::DELETE,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// One operation: method, path pattern (actix and OpenAPI write `{id}` alike), every
/// status it can answer besides 405, and its handler.
#[derive(Debug)]
pub struct Endpoint {
    pub verb: Verb,
    pub path: &'static str,
    pub statuses: &'static [u16],
    pub(crate) handler: fn(Route) -> Route,
}

/// Every operation, in the contract's order.
pub static ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        verb: Verb::Get,
        path: "/health",
        statuses: &[200],
        handler: |r| r.to(system::health),
    },
    Endpoint {
        verb: Verb::Get,
        path: "/ready",
        statuses: &[200, 503],
        handler: |r| r.to(system::ready),
    },
    Endpoint {
        verb: Verb::Get,
        path: "/openapi.json",
        statuses: &[200],
        handler: |r| r.to(system::openapi),
    },
    Endpoint {
        verb: Verb::Get,
        path: "/posts",
        statuses: &[200, 400, 401, 500, 503],
        handler: |r| r.to(posts::list),
    },
    Endpoint {
        verb: Verb::Post,
        path: "/posts",
        statuses: &[201, 400, 401, 403, 413, 415, 422, 500, 503],
        handler: |r| r.to(posts::create),
    },
    Endpoint {
        verb: Verb::Get,
        path: "/posts/{id}",
        statuses: &[200, 400, 401, 404, 500, 503],
        handler: |r| r.to(posts::get),
    },
    Endpoint {
        verb: Verb::Patch,
        path: "/posts/{id}",
        statuses: &[200, 400, 401, 403, 404, 413, 415, 422, 500, 503],
        handler: |r| r.to(posts::update),
    },
    Endpoint {
        verb: Verb::Delete,
        path: "/posts/{id}",
        statuses: &[204, 400, 401, 403, 404, 500, 503],
        handler: |r| r.to(posts::delete),
    },
    Endpoint {
        verb: Verb::Get,
        path: "/me",
        statuses: &[200, 401, 500, 503],
        handler: |r| r.to(users::me),
    },
    Endpoint {
        verb: Verb::Get,
        path: "/users",
        statuses: &[200, 400, 401, 403, 500, 503],
        handler: |r| r.to(users::list),
    },
    Endpoint {
        verb: Verb::Post,
        path: "/users",
        statuses: &[201, 400, 401, 403, 409, 413, 415, 422, 500, 503],
        handler: |r| r.to(users::create),
    },
    Endpoint {
        verb: Verb::Get,
        path: "/users/{id}",
        statuses: &[200, 401, 403, 404, 500, 503],
        handler: |r| r.to(users::get),
    },
    Endpoint {
        verb: Verb::Patch,
        path: "/users/{id}",
        statuses: &[200, 400, 401, 403, 404, 409, 413, 415, 422, 500, 503],
        handler: |r| r.to(users::update),
    },
    Endpoint {
        verb: Verb::Delete,
        path: "/users/{id}",
        statuses: &[204, 401, 403, 404, 409, 500, 503],
        handler: |r| r.to(users::delete),
    },
    Endpoint {
        verb: Verb::Post,
        path: "/users/{id}/tokens",
        statuses: &[201, 401, 403, 404, 500, 503],
        handler: |r| r.to(tokens::issue),
    },
    Endpoint {
        verb: Verb::Delete,
        path: "/tokens/{id}",
        statuses: &[204, 401, 403, 404, 500, 503],
        handler: |r| r.to(tokens::revoke),
    },
];

/// Distinct path patterns, in table order, each with its endpoints.
pub fn resources() -> Vec<(&'static str, Vec<&'static Endpoint>)> {
    let mut out: Vec<(&'static str, Vec<&'static Endpoint>)> = Vec::new();
    for endpoint in ENDPOINTS {
        match out.iter_mut().find(|(path, _)| *path == endpoint.path) {
            Some((_, endpoints)) => endpoints.push(endpoint),
            None => out.push((endpoint.path, vec![endpoint])),
        }
    }
    out
}
