//! What the TCP port serves: grpc-web and native gRPC on the `guild.v1` routes (token
//! required), TensorBoard under `/tb/` (token required; see `tensorboard::proxy`), the
//! exchange of a one-time code for the token (`POST /auth/code`, see `codes`), images'
//! and audio clips' bytes under `/media/` (token required; see `media`), and the
//! dashboard's files (embedded at build time, gzipped for clients that take it) on every
//! other path. grpc-web wraps only the gRPC routes: plain HTTP/1.1 requests for files
//! must not reach it. Connection limits, timeouts and the Host check are `net`'s, around
//! all of it.

pub mod codes;
pub mod media;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use tonic::codegen::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use tonic::service::{AxumBody, AxumRouter, Routes};
use tower::ServiceExt;

pub use codes::ViewCodes;

/// How long a request through `/tb/` may take before the proxy answers 504.
const TENSORBOARD_TIMEOUT: Duration = Duration::from_secs(120);

mod assets {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// The router for the TCP port.
pub fn tcp_router(
    grpc: Routes,
    token: Arc<str>,
    tensorboard: crate::tensorboard::Manager,
    codes: Arc<ViewCodes>,
    index: crate::store::Index,
) -> AxumRouter {
    let tb = tower::ServiceBuilder::new()
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            TENSORBOARD_TIMEOUT,
        ))
        .service(crate::tensorboard::proxy::service(tensorboard, token.clone()));
    let files = tower::ServiceBuilder::new()
        .layer(tower_http::compression::CompressionLayer::new())
        .service(tower::service_fn(|request: Request<AxumBody>| async move {
            Ok::<_, Infallible>(static_file(request.uri().path()))
        }))
        .map_response(|response| response.map(AxumBody::new));
    let exchange = {
        let token = token.clone();
        tower::service_fn(move |request: Request<AxumBody>| {
            let (token, codes) = (token.clone(), codes.clone());
            async move { Ok::<_, Infallible>(redeem_code(&token, &codes, request).await) }
        })
    };
    let media = {
        let token = token.clone();
        tower::service_fn(move |request: Request<AxumBody>| {
            let (token, index) = (token.clone(), index.clone());
            async move { Ok::<_, Infallible>(media::serve(&index, &token, request).await) }
        })
    };
    grpc.into_axum_router()
        .route_layer(tonic::service::InterceptorLayer::new(crate::api::TokenCheck { token }))
        .route_layer(tonic_web::GrpcWebLayer::new())
        // After the layers: the proxy checks the token itself (header, cookie or ?token=).
        .route_service("/tb", tb.clone())
        .route_service("/tb/", tb.clone())
        .route_service("/tb/{*path}", tb)
        .route_service("/auth/code", exchange)
        .route_service("/media/{*path}", media)
        .fallback_service(files)
}

/// `POST /auth/code` with `{"code": "..."}` (JSON only: a form or `text/plain` post from
/// another page is refused): the token for a live one-time code, once.
async fn redeem_code(token: &str, codes: &ViewCodes, request: Request<AxumBody>) -> Response<AxumBody> {
    let reply = |status: StatusCode, body: serde_json::Value| {
        let mut response = Response::new(AxumBody::from(body.to_string()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    };
    let error = |status: StatusCode, message: &str| reply(status, serde_json::json!({ "error": message }));
    if request.method() != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "use POST /auth/code with {\"code\": CODE}",
        );
    }
    if !is_json(request.headers()) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the code as application/json: {\"code\": CODE}",
        );
    }
    let body = match http_body_util::Limited::new(request.into_body(), 4096).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return error(StatusCode::BAD_REQUEST, "the body is not a small JSON object"),
    };
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str().map(str::to_string)));
    match code {
        Some(code) if codes.redeem(&code) => reply(StatusCode::OK, serde_json::json!({ "token": token })),
        Some(_) => error(
            StatusCode::FORBIDDEN,
            "this link's one-time code was used already or has expired: run `guild view` again",
        ),
        None => error(StatusCode::BAD_REQUEST, "expected {\"code\": CODE}"),
    }
}

/// Whether a request says its body is JSON (`application/json`, with or without
/// parameters).
pub fn is_json(headers: &tonic::codegen::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether this daemon was built with the dashboard bundle.
pub fn has_dashboard() -> bool {
    assets::ASSETS.iter().any(|(path, _, _)| *path == "/index.html")
}

fn static_file(path: &str) -> Response<AxumBody> {
    let path = if path == "/" { "/index.html" } else { path };
    match assets::ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, bytes)) => {
            // index.html names the other files; it must never be cached stale.
            let cache = if path == "/index.html" {
                "no-cache"
            } else {
                "public, max-age=300"
            };
            Response::builder()
                .header(header::CONTENT_TYPE, *content_type)
                .header(header::CACHE_CONTROL, cache)
                .header("x-content-type-options", "nosniff")
                .body(AxumBody::from(*bytes))
                .unwrap_or_else(|_| Response::new(AxumBody::empty()))
        }
        None => {
            let text = if path == "/index.html" {
                "This guildd was built without the dashboard: build guild-web (npm run build) and rebuild guildd.\n"
            } else {
                "not found\n"
            };
            let mut response = Response::new(AxumBody::from(text));
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}
