//! A serve's HTTP port: `POST /run` (a JSON list of instances in, a JSON list of outputs
//! out, in order) and `GET /stats`. HTTP/1.1 with keep-alive on hyper: every request is
//! a small body and a small answer, and the less between the socket and the worker's
//! pipe, the less latency guildd adds. Connection limits, timeouts and the Host and
//! Origin check are `net`'s; `POST /run` takes `application/json` only, so a page
//! elsewhere cannot post to it as a "simple" cross-site request.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::stats::Stats;
use super::worker::{Job, Outcome, State};

/// Largest request body.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// What the HTTP side of one serve reaches.
pub struct Endpoint {
    pub run_id: String,
    pub model: String,
    pub state: watch::Receiver<State>,
    pub jobs: mpsc::Sender<Job>,
    pub permits: Arc<Semaphore>,
    pub max_queue: usize,
    pub timeout: Duration,
    pub stats: Arc<Stats>,
}

/// Accepts connections until `stop` turns true; open connections end with it.
pub async fn serve(listener: TcpListener, endpoint: Arc<Endpoint>, stop: watch::Receiver<bool>) {
    let host_check = crate::net::HostCheck {
        bound: listener
            .local_addr()
            .map(|a| a.ip())
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
    };
    let limits = crate::net::Limits::standard();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let service = tower::ServiceBuilder::new()
        .layer(host_check.layer())
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            crate::net::BODY_TIMEOUT,
        ))
        .service_fn(move |request| {
            let endpoint = endpoint.clone();
            async move { Ok::<_, Infallible>(handle(&endpoint, request).await) }
        });
    crate::net::serve(listener, limits, stop, move |io, connection| {
        let service = hyper_util::service::TowerToHyperService::new(connection.clone().track(service.clone()));
        http.serve_connection(io, service)
    })
    .await;
}

async fn handle<B>(endpoint: &Endpoint, request: Request<B>) -> Response<Full<Bytes>>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = request.uri().path();
    match (request.method(), path) {
        (&Method::POST, "/run") if !crate::web::is_json(request.headers()) => error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the instances as JSON with `Content-Type: application/json`",
        ),
        (&Method::POST, "/run") => {
            let started = Instant::now();
            let (response, batch, instances) = run(endpoint, request.into_body()).await;
            endpoint
                .stats
                .record(started.elapsed(), batch, instances, response.status().is_success());
            response
        }
        (&Method::GET, "/stats") | (&Method::HEAD, "/stats") => json(StatusCode::OK, stats(endpoint).to_string()),
        (&Method::GET, "/") => {
            let state = endpoint.state.borrow().clone();
            let about = serde_json::json!({
                "run": endpoint.run_id,
                "model": endpoint.model,
                "state": state.name(),
                "usage": "POST /run with a JSON list of instances; GET /stats",
            });
            json(StatusCode::OK, about.to_string())
        }
        (_, "/run") => {
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "use POST /run with a JSON list of instances",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            response
        }
        (_, "/stats") => {
            let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "use GET /stats");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        _ => error(
            StatusCode::NOT_FOUND,
            &format!("no such path {path}: this port serves POST /run and GET /stats"),
        ),
    }
}

/// Answers `POST /run`; also returns the worker's time and the number of instances for
/// the stats.
async fn run<B>(endpoint: &Endpoint, body: B) -> (Response<Full<Bytes>>, Option<Duration>, usize)
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let body = match BodyExt::collect(Limited::new(body, MAX_BODY)).await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            let message = format!("the request body is over {} MiB", MAX_BODY / (1024 * 1024));
            return (error(StatusCode::PAYLOAD_TOO_LARGE, &message), None, 0);
        }
        Err(err) => {
            let message = format!("cannot read the request body: {err}");
            return (error(StatusCode::BAD_REQUEST, &message), None, 0);
        }
    };
    let instances = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Array(list)) => list.len(),
        Ok(other) => {
            let message = format!("expected a JSON list of instances, got {}", kind(&other));
            return (error(StatusCode::BAD_REQUEST, &message), None, 0);
        }
        Err(err) => return (error(StatusCode::BAD_REQUEST, &format!("invalid JSON: {err}")), None, 0),
    };
    let refused = match &*endpoint.state.borrow() {
        State::Ready { .. } => None,
        State::Starting { .. } => Some(unavailable(&format!(
            "the worker for run {} is starting; try again in a moment",
            endpoint.run_id
        ))),
        State::Restarting { reason } => Some(unavailable(&format!(
            "the worker for run {} is restarting ({reason}); try again in a moment",
            endpoint.run_id
        ))),
        State::NoModel { reason } => Some(no_model(&endpoint.run_id, reason)),
        State::Stopped => Some(unavailable(&format!(
            "the serve of run {} is stopping",
            endpoint.run_id
        ))),
    };
    if let Some(response) = refused {
        return (response, None, instances);
    }
    let Ok(permit) = endpoint.permits.clone().try_acquire_owned() else {
        return (queue_full(endpoint), None, instances);
    };
    // Valid JSON has newlines only between tokens: as spaces, the request is one line.
    let mut line: Vec<u8> = body
        .iter()
        .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
        .collect();
    line.push(b'\n');
    let (reply_tx, reply_rx) = oneshot::channel();
    let job = Job {
        line,
        reply: reply_tx,
        permit,
    };
    if endpoint.jobs.try_send(job).is_err() {
        return (queue_full(endpoint), None, instances);
    }
    let outcome = match tokio::time::timeout(endpoint.timeout, reply_rx).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => Outcome::Lost("the serve stopped".into()),
        Err(_) => {
            let message = format!("no reply from the worker within {} s", endpoint.timeout.as_secs_f64());
            return (error(StatusCode::GATEWAY_TIMEOUT, &message), None, instances);
        }
    };
    match outcome {
        Outcome::Reply { line, batch } => (reply(line, instances), Some(batch), instances),
        Outcome::Lost(reason) => {
            let message = format!("the worker did not answer: {reason}; it is starting again, try again");
            (unavailable(&message), None, instances)
        }
        Outcome::NoModel(reason) => (no_model(&endpoint.run_id, &reason), None, instances),
    }
}

/// The worker's reply as the HTTP answer: a list of one output per instance (200), or
/// `{"error": ...}`, a request it rejects (400).
fn reply(line: Vec<u8>, instances: usize) -> Response<Full<Bytes>> {
    match serde_json::from_slice::<serde_json::Value>(&line) {
        Ok(serde_json::Value::Array(outputs)) if outputs.len() == instances => json(StatusCode::OK, line),
        Ok(serde_json::Value::Array(outputs)) => error(
            StatusCode::BAD_GATEWAY,
            &format!(
                "the worker answered {} outputs for {instances} instances",
                outputs.len()
            ),
        ),
        Ok(serde_json::Value::Object(object)) if object.contains_key("error") => {
            let reason = match &object["error"] {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            error(StatusCode::BAD_REQUEST, &reason)
        }
        Ok(other) => error(
            StatusCode::BAD_GATEWAY,
            &format!(
                "the worker answered {} instead of a list of outputs or {{\"error\": ...}}",
                kind(&other)
            ),
        ),
        Err(err) => error(
            StatusCode::BAD_GATEWAY,
            &format!("the worker's reply is not JSON: {err}"),
        ),
    }
}

fn stats(endpoint: &Endpoint) -> serde_json::Value {
    let state = endpoint.state.borrow().clone();
    let mut out = serde_json::Map::new();
    out.insert("run".into(), endpoint.run_id.clone().into());
    out.insert("model".into(), endpoint.model.clone().into());
    out.insert("state".into(), state.name().into());
    if !state.reason().is_empty() {
        out.insert("reason".into(), state.reason().into());
    }
    out.insert("pid".into(), state.pid().into());
    out.insert(
        "queued".into(),
        (endpoint.max_queue - endpoint.permits.available_permits().min(endpoint.max_queue)).into(),
    );
    out.insert("max_queue".into(), endpoint.max_queue.into());
    out.extend(endpoint.stats.to_json());
    serde_json::Value::Object(out)
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `{"error": message}` with the status.
fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({ "error": message }).to_string())
}

/// 503 with `Retry-After: 1`.
fn unavailable(message: &str) -> Response<Full<Bytes>> {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn queue_full(endpoint: &Endpoint) -> Response<Full<Bytes>> {
    unavailable(&format!(
        "too many requests: {} are already waiting for the worker; try again later",
        endpoint.max_queue
    ))
}

fn no_model(run: &str, reason: &str) -> Response<Full<Bytes>> {
    error(
        StatusCode::NOT_FOUND,
        &format!("run {run} has no model to serve: {reason}"),
    )
}
