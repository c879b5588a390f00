//! The interactive API reference at `/docs`: Swagger UI rendering `/openapi.json`,
//! every file of it compiled into the binary so that the page needs no network.
//! These routes are not API operations: they are absent from the OpenAPI document
//! and, like `/health`, ignore the `Authorization` header.

use std::io::Read;
use std::sync::OnceLock;

use actix_web::http::header::{
    self, AcceptEncoding, CacheControl, CacheDirective, ContentEncoding, ContentType, Encoding,
    Header,
};
use actix_web::{HttpRequest, HttpResponse, Resource, Route, web};

use crate::error::{ApiError, ApiResult};

/// The URL of a vendored Swagger UI file. The release is part of it, so a file
/// never changes under its URL and browsers may keep it for a year.
macro_rules! swagger_ui {
    ($file:literal) => {
        concat!("/docs/swagger-ui-5.35.0/", $file)
    };
}

const SCRIPT_PATH: &str = swagger_ui!("swagger-ui-bundle.js");
const STYLE_PATH: &str = swagger_ui!("swagger-ui.css");

const PAGE: &str = concat!(
    r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href=""#,
    swagger_ui!("swagger-ui.css"),
    r#"">
</head>
<body>
<div id="swagger-ui"></div>
<script src=""#,
    swagger_ui!("swagger-ui-bundle.js"),
    r#""></script>
<script src="/docs/start.js"></script>
</body>
</html>
"#
);

/// A separate file rather than an inline script, so the policy needs no
/// 'unsafe-inline' for scripts. `validatorUrl: null` drops the badge Swagger UI
/// would load from validator.swagger.io.
const START: &str = r##"window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  displayRequestDuration: true,
  validatorUrl: null,
});
"##;

/// Only this origin. Swagger UI's stylesheet draws its icons as `data:` images (as
/// is the page's empty icon, which spares a request for /favicon.ico), and "Try it
/// out" calls the API, hence `connect-src 'self'`.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                      img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
                      form-action 'none'; frame-ancestors 'none'";

static SCRIPT: Gzipped = Gzipped::new(include_bytes!("../assets/swagger-ui-bundle.js.gz"));
static STYLE: Gzipped = Gzipped::new(include_bytes!("../assets/swagger-ui.css.gz"));

/// Registers `/docs` and the files it loads, each for `GET` only.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_only("/docs", web::get().to(page)))
        .service(get_only("/docs/start.js", web::get().to(start)))
        .service(get_only(
            SCRIPT_PATH,
            web::get().to(|req: HttpRequest| async move {
                vendored(&req, &SCRIPT, "text/javascript; charset=utf-8")
            }),
        ))
        .service(get_only(
            STYLE_PATH,
            web::get().to(|req: HttpRequest| async move {
                vendored(&req, &STYLE, "text/css; charset=utf-8")
            }),
        ));
}

/// Another method gets the same problem+json 405 as on the API's routes.
fn get_only(path: &str, route: Route) -> Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
                allow: "GET".to_owned(),
            })
        }))
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .insert_header((header::CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .body(PAGE)
}

/// Ours, so it changes with the binary: revalidated on every load, like the page.
async fn start() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .body(START)
}

/// A file stored gzip-compressed, as every browser will take it.
struct Gzipped {
    gzip: &'static [u8],
    plain: OnceLock<Result<Vec<u8>, String>>,
}

impl Gzipped {
    const fn new(gzip: &'static [u8]) -> Self {
        Self {
            gzip,
            plain: OnceLock::new(),
        }
    }

    /// Decompressed once, on the first request from a client that does not ask for
    /// gzip.
    fn plain(&'static self) -> ApiResult<&'static [u8]> {
        let plain = self.plain.get_or_init(|| {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(self.gzip)
                .read_to_end(&mut plain)
                .map(|_| plain)
                .map_err(|e| format!("a compiled-in docs file does not decompress: {e}"))
        });
        plain
            .as_ref()
            .map(Vec::as_slice)
            .map_err(|e| ApiError::Internal(e.clone()))
    }
}

fn vendored(
    req: &HttpRequest,
    file: &'static Gzipped,
    content_type: &'static str,
) -> ApiResult<HttpResponse> {
    let mut response = HttpResponse::Ok();
    response
        .content_type(content_type)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::VARY, "accept-encoding"))
        .insert_header(CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(365 * 24 * 3600),
            CacheDirective::Extension("immutable".to_owned(), None),
        ]));
    // A missing header means "anything", but a client that does not ask for gzip
    // (curl without --compressed) is better served the plain file.
    let gzip = AcceptEncoding::parse(req)
        .ok()
        .and_then(|accepted| accepted.negotiate([Encoding::gzip(), Encoding::identity()].iter()))
        == Some(Encoding::gzip());
    if gzip {
        // A Content-Encoding already set keeps the Compress middleware off it.
        Ok(response
            .insert_header(ContentEncoding::Gzip)
            .body(file.gzip))
    } else {
        Ok(response.body(file.plain()?))
    }
}
