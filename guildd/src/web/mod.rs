//! What the TCP port serves: grpc-web and native gRPC on the `guild.v1` routes (token
//! required), TensorBoard under `/tb/` (token required; see `tensorboard::proxy`), and
//! the dashboard's files (embedded at build time) on every other path.
//! grpc-web wraps only the gRPC routes: plain HTTP/1.1 requests for files must not
//! reach it.

use std::convert::Infallible;
use std::sync::Arc;

use tonic::codegen::http::{Request, Response, StatusCode, header};
use tonic::service::{AxumBody, Routes};

mod assets {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// The router for the TCP port.
pub fn tcp_routes(grpc: Routes, token: Arc<str>, tensorboard: crate::tensorboard::Manager) -> Routes {
    let tb = crate::tensorboard::proxy::service(tensorboard, token.clone());
    let router = grpc
        .into_axum_router()
        .route_layer(tonic::service::InterceptorLayer::new(crate::api::TokenCheck { token }))
        .route_layer(tonic_web::GrpcWebLayer::new())
        // After the layers: the proxy checks the token itself (header, cookie or ?token=).
        .route_service("/tb", tb.clone())
        .route_service("/tb/", tb.clone())
        .route_service("/tb/{*path}", tb)
        .fallback_service(tower::service_fn(|request: Request<AxumBody>| async move {
            Ok::<_, Infallible>(static_file(request.uri().path()))
        }));
    Routes::from(router)
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
