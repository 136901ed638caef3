//! Connection hygiene for every TCP port guildd owns: the dashboard's port (gRPC,
//! grpc-web, the page, `/tb/`) and each `guild serve` port. Any local user can connect
//! to a loopback port, so none may exhaust what the daemon needs:
//!
//! - a bound on open connections (a quarter of the open-file limit, at most 512); when
//!   the bound is reached, the connection idle the longest is closed to make room, and
//!   only when none is idle does accepting wait;
//! - a connection must send its first request within [`Limits::first_request`] (10 s),
//!   and is closed after [`Limits::idle`] (60 s) with no request in flight; HTTP/1
//!   request headers must arrive within [`Limits::header_read`] (10 s), request bodies
//!   may pause at most [`BODY_TIMEOUT`] (tower-http);
//! - when `accept` fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
//!   ENOMEM), the loop closes an idle connection and backs off (10 ms doubling to 1 s)
//!   instead of spinning;
//! - every HTTP request's `Host` must name this machine's loopback (`localhost`,
//!   `*.localhost`, `127.0.0.0/8`, `[::1]`) or the address the port is bound to (421
//!   otherwise), and an `Origin`, when sent, the same (403 otherwise): a web page
//!   elsewhere, or one that rebinds its DNS name to 127.0.0.1, cannot reach the port.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower_http::metrics::in_flight_requests::{InFlightRequests, InFlightRequestsCounter};

/// Most requests in flight on one HTTP/2 connection (a dashboard keeps a few streams).
/// The bound that saves descriptors is on connections, below: a request counter (tower's
/// ConcurrencyLimit) cannot tell a silent connection from a busy one, and its permits
/// would be held by long streams.
pub const MAX_STREAMS: u32 = 128;
/// How long a request body may pause between chunks.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an idle connection asked to close may take before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    /// From accepting a connection to its first request.
    pub first_request: Duration,
    /// With no request in flight, after the first.
    pub idle: Duration,
    /// For an HTTP/1 request's headers.
    pub header_read: Duration,
}

impl Limits {
    /// The limits every port uses, sized to this process's open-file limit: a quarter of
    /// it for connections (16 to 512), the rest for runs' files and databases.
    pub fn standard() -> Limits {
        let mut limit = libc::rlimit {
            rlim_cur: 1024,
            rlim_max: 1024,
        };
        // SAFETY: getrlimit fills the struct we own.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        Limits {
            max_connections: ((limit.rlim_cur / 4) as usize).clamp(16, 512),
            first_request: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            header_read: Duration::from_secs(10),
        }
    }
}

/// One open connection as the accept loop sees it.
pub struct Connection {
    in_flight: InFlightRequestsCounter,
    /// Milliseconds since the loop started at the last sign of use.
    last_active: AtomicU64,
    requests: AtomicU64,
    close: Notify,
    epoch: Instant,
}

impl Connection {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn touch(&self) {
        self.last_active.store(self.now(), Ordering::Relaxed);
    }

    fn idle_for(&self) -> Option<Duration> {
        (self.in_flight.get() == 0)
            .then(|| Duration::from_millis(self.now().saturating_sub(self.last_active.load(Ordering::Relaxed))))
    }

    /// Wraps a connection's service so that this connection knows when it is in use: a
    /// request counts from its start until its response body is done (tower-http's
    /// in-flight counter), so a long stream keeps its connection.
    pub fn track<S, ReqBody, ResBody>(
        self: Arc<Self>,
        service: S,
    ) -> impl tower::Service<
        Request<ReqBody>,
        Response = Response<tower_http::metrics::in_flight_requests::ResponseBody<ResBody>>,
        Error = S::Error,
        Future = impl Future<
            Output = Result<Response<tower_http::metrics::in_flight_requests::ResponseBody<ResBody>>, S::Error>,
        > + Send,
    > + Clone
    + Send
    + 'static
    where
        S: tower::Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
        S::Future: Send,
        ReqBody: Send + 'static,
    {
        let counted = InFlightRequests::new(service, self.in_flight.clone());
        let me = self;
        tower::ServiceExt::map_request(counted, move |request: Request<ReqBody>| {
            me.requests.fetch_add(1, Ordering::Relaxed);
            me.touch();
            request
        })
    }
}

/// Asks the open connection that has been idle the longest (if any is idle) to close.
fn close_idlest(open: &[(u64, Arc<Connection>)]) {
    if let Some((_, idlest)) = open
        .iter()
        .filter_map(|(_, c)| c.idle_for().map(|idle| (idle, c)))
        .max_by_key(|(idle, _)| *idle)
    {
        idlest.close.notify_one();
    }
}

fn is_resource_error(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Accepts connections on `listener` until `stop` turns true, serving each with the
/// connection `serve` makes (an HTTP connection over the stream, its service wrapped by
/// [`Connection::track`]). Returns when every connection has ended, or `CLOSE_GRACE`
/// after `stop`, when the rest are dropped.
pub async fn serve<F, C, E>(listener: TcpListener, limits: Limits, mut stop: watch::Receiver<bool>, mut serve: F)
where
    F: FnMut(TokioIo<TcpStream>, &Arc<Connection>) -> C,
    C: GracefulConnection<Error = E> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let epoch = Instant::now();
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let mut open: Vec<(u64, Arc<Connection>)> = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut next_id = 0u64;
    let mut backoff = Duration::from_millis(10);
    let mut last_warning: Option<Instant> = None;
    let stopped = |stop: &watch::Receiver<bool>| *stop.borrow();
    while !stopped(&stop) {
        while let Some(done) = tasks.try_join_next() {
            if let Ok(id) = done {
                open.retain(|(i, _)| *i != id);
            }
        }
        if open.len() >= limits.max_connections {
            // Full: close the connection idle the longest, then wait for one to end.
            close_idlest(&open);
            tokio::select! {
                Some(done) = tasks.join_next() => if let Ok(id) = done { open.retain(|(i, _)| *i != id) },
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                changed = stop.changed() => if changed.is_err() { break },
            }
            continue;
        }
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) if is_resource_error(&err) => {
                        if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                            tracing::warn!(%address, open = open.len(), "cannot accept connections: {err}; backing off");
                            last_warning = Some(Instant::now());
                        }
                        close_idlest(&open);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                    Err(err) => {
                        // The peer gave up before we took it (ECONNABORTED and the like).
                        tracing::debug!(%address, "accept: {err}");
                        continue;
                    }
                };
                backoff = Duration::from_millis(10);
                let _ = stream.set_nodelay(true);
                let connection = Arc::new(Connection {
                    in_flight: InFlightRequestsCounter::new(),
                    last_active: AtomicU64::new(epoch.elapsed().as_millis() as u64),
                    requests: AtomicU64::new(0),
                    close: Notify::new(),
                    epoch,
                });
                let id = next_id;
                next_id += 1;
                let conn = serve(TokioIo::new(stream), &connection);
                open.push((id, connection.clone()));
                tasks.spawn(watch_connection(id, conn, connection, limits, stop.clone()));
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(id) = done {
                    open.retain(|(i, _)| *i != id);
                }
            }
            // A stop signal that can no longer come (its sender is gone) stops too.
            changed = stop.changed() => if changed.is_err() { break },
        }
    }
    drop(listener);
    // Each connection was told to close; streams that never end are dropped after the grace.
    let _ = tokio::time::timeout(CLOSE_GRACE + Duration::from_millis(500), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
}

/// Serves one connection until it ends, closing it when it stays idle too long, when
/// the accept loop needs its slot, or when the port stops.
async fn watch_connection<C, E>(
    id: u64,
    conn: C,
    state: Arc<Connection>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> u64
where
    C: GracefulConnection<Error = E>,
    E: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing: Option<Instant> = None;
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
        closing = Some(Instant::now());
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!("connection ended: {err}");
                }
                break;
            }
            _ = state.close.notified(), if closing.is_none() => {
                tracing::debug!("closing an idle connection to make room");
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now());
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                if closing.is_none() {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Instant::now());
                }
            }
            _ = tick.tick() => {
                if let Some(since) = closing {
                    if since.elapsed() >= CLOSE_GRACE {
                        break;
                    }
                    continue;
                }
                let Some(idle) = state.idle_for() else {
                    state.touch();
                    continue;
                };
                let limit = if state.requests.load(Ordering::Relaxed) == 0 {
                    limits.first_request
                } else {
                    limits.idle
                };
                if idle >= limit {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Instant::now());
                }
            }
        }
    }
    id
}

/// The hosts an HTTP port answers to: loopback names and addresses, and the address it
/// is bound to (any address literal when it is bound to all of them).
#[derive(Clone, Copy, Debug)]
pub struct HostCheck {
    pub bound: IpAddr,
}

impl HostCheck {
    /// Whether a `Host` value (or an origin's host) names this port's machine.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim();
        let name = if let Some(rest) = host.strip_prefix('[') {
            rest.split(']').next().unwrap_or("")
        } else {
            match host.rsplit_once(':') {
                Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
                _ => host,
            }
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name == "localhost" || name.ends_with(".localhost") {
            return true;
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || ip == self.bound || self.bound.is_unspecified(),
            Err(_) => false,
        }
    }

    /// Checks a request's `Host` (or its URI's authority, as HTTP/2 sends it) and its
    /// `Origin`; the refusal to answer otherwise.
    pub fn check<B, R: From<String>>(&self, request: &Request<B>) -> Result<(), Response<R>> {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok().map(str::to_string))
            .or_else(|| request.uri().authority().map(|a| a.to_string()));
        if let Some(host) = host
            && !self.allows(&host)
        {
            return Err(refusal(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "guildd answers only requests for localhost, 127.0.0.1, [::1] or the address it listens on, not {}\n",
                    crate::error::quote(&host)
                ),
            ));
        }
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let origin_host = origin
                .to_str()
                .ok()
                .and_then(|o| o.split_once("://"))
                .map(|(_, rest)| rest.split('/').next().unwrap_or(""));
            if !origin_host.is_some_and(|h| self.allows(h)) {
                return Err(refusal(
                    StatusCode::FORBIDDEN,
                    format!(
                        "guildd does not answer requests from pages elsewhere (Origin {})\n",
                        crate::error::quote(origin.to_str().unwrap_or("?"))
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The check as a tower-http layer: refused requests get the answer, others go on.
    pub fn layer<B, R: From<String>>(
        self,
    ) -> tower_http::validate_request::ValidateRequestHeaderLayer<
        impl FnMut(&mut Request<B>) -> Result<(), Response<R>> + Clone,
    > {
        tower_http::validate_request::ValidateRequestHeaderLayer::custom(move |request: &mut Request<B>| {
            self.check(request)
        })
    }
}

/// A plain-text answer with this status (refusals here, and the TensorBoard proxy's own).
pub(crate) fn refusal<R: From<String>>(status: StatusCode, text: String) -> Response<R> {
    let mut response = Response::new(R::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_loopback_or_the_bound_address() {
        let check = HostCheck {
            bound: "127.0.0.1".parse().unwrap(),
        };
        for host in [
            "localhost",
            "localhost:6333",
            "LOCALHOST.",
            "app.localhost:80",
            "127.0.0.1",
            "127.0.0.1:6333",
            "127.1.2.3:1",
            "[::1]:6333",
            "[::1]",
        ] {
            assert!(check.allows(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:6333",
            "localhost.evil.example",
            "10.0.0.1:6333",
            "",
            "[::2]",
        ] {
            assert!(!check.allows(host), "{host}");
        }
        let remote = HostCheck {
            bound: "192.168.1.5".parse().unwrap(),
        };
        assert!(remote.allows("192.168.1.5:6333"));
        assert!(!remote.allows("192.168.1.6:6333"));
        assert!(!remote.allows("guild.example:6333"));
        let all = HostCheck {
            bound: "0.0.0.0".parse().unwrap(),
        };
        assert!(all.allows("10.1.2.3:6333"));
        assert!(!all.allows("rebind.example:6333"));
    }

    #[test]
    fn foreign_hosts_and_origins_are_refused() {
        let check = HostCheck {
            bound: "127.0.0.1".parse().unwrap(),
        };
        let request = |host: &str, origin: Option<&str>| {
            let mut builder = Request::builder().uri("/run").header(header::HOST, host);
            if let Some(origin) = origin {
                builder = builder.header(header::ORIGIN, origin);
            }
            builder.body(()).unwrap()
        };
        let status = |r: Result<(), Response<String>>| r.err().map(|r| r.status());
        assert_eq!(status(check.check(&request("127.0.0.1:6444", None))), None);
        assert_eq!(
            status(check.check(&request("127.0.0.1:6444", Some("http://127.0.0.1:6444")))),
            None
        );
        assert_eq!(
            status(check.check(&request("rebind.example:6444", None))),
            Some(StatusCode::MISDIRECTED_REQUEST)
        );
        assert_eq!(
            status(check.check(&request("127.0.0.1:6444", Some("https://evil.example")))),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            status(check.check(&request("127.0.0.1:6444", Some("null")))),
            Some(StatusCode::FORBIDDEN)
        );
    }
}
