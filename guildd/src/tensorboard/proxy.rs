//! `/tb/` on the dashboard's port: forwards every request to the running TensorBoard.
//!
//! The token guards it as it guards the API: in `x-guild-token` or `authorization:
//! Bearer`, or once as `?token=` (what `guild tensorboard` prints and the dashboard's
//! iframe loads), which sets an HttpOnly, SameSite=Strict cookie scoped to `/tb` for the
//! page's later requests, and redirects to the same URL without the token.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tonic::service::AxumBody;

use super::{Manager, PATH_PREFIX};
use crate::secret::same;

/// The cookie that carries the token for TensorBoard's own requests.
pub const COOKIE: &str = "guild_token";

pub type HttpClient = Client<HttpConnector, AxumBody>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// The proxy as a service for the dashboard's router.
pub fn service(
    manager: Manager,
    token: Arc<str>,
) -> impl tower::Service<
    Request<AxumBody>,
    Response = Response<AxumBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<AxumBody>, Infallible>> + Send,
> + Clone
+ Send
+ Sync
+ 'static {
    let client = client();
    tower::service_fn(move |request: Request<AxumBody>| {
        let (manager, token, client) = (manager.clone(), token.clone(), client.clone());
        async move { Ok::<_, Infallible>(forward(&manager, &token, &client, request).await) }
    })
}

async fn forward(
    manager: &Manager,
    token: &str,
    client: &HttpClient,
    request: Request<AxumBody>,
) -> Response<AxumBody> {
    let (mut parts, body) = request.into_parts();
    let query = parts.uri.query().unwrap_or("");
    let (query_token, rest) = take_token(query);
    let authorized = query_token
        .as_deref()
        .is_some_and(|t| same(t.as_bytes(), token.as_bytes()))
        || header_token(&parts.headers).is_some_and(|t| same(t.as_bytes(), token.as_bytes()));
    if !authorized {
        return text(
            StatusCode::UNAUTHORIZED,
            "a token is required: open the URL `guild tensorboard` (or `guild view`) prints\n",
        );
    }
    let path = parts.uri.path().to_string();
    let location = if rest.is_empty() {
        path.clone()
    } else {
        format!("{path}?{rest}")
    };
    let set_cookie = query_token.is_some().then(|| {
        HeaderValue::from_str(&format!(
            "{COOKIE}={token}; Path={PATH_PREFIX}; HttpOnly; SameSite=Strict"
        ))
    });
    if query_token.is_some() && (parts.method == Method::GET || parts.method == Method::HEAD) {
        // The token leaves the address bar and the history; the cookie carries it on.
        let mut response = text(StatusCode::SEE_OTHER, "");
        if let Ok(location) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        if let Some(Ok(cookie)) = set_cookie {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        return response;
    }
    let Some(address) = manager.address() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "TensorBoard is not running: start it with `guild tensorboard` (or the dashboard's TensorBoard tab)\n",
        );
    };
    manager.touch();
    let uri: Uri = match format!("http://{address}{location}").parse() {
        Ok(uri) => uri,
        Err(err) => return text(StatusCode::BAD_REQUEST, &format!("bad path: {err}\n")),
    };
    parts.uri = uri;
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(guild_proto::TOKEN_HEADER);
    parts.headers.remove(header::AUTHORIZATION);
    without_our_cookie(&mut parts.headers);
    // The Host header stays the dashboard's: TensorBoard's own redirects then point back
    // through the proxy.
    let upstream = Request::from_parts(parts, body);
    let mut response = match client.request(upstream).await {
        Ok(response) => response.map(AxumBody::new),
        Err(err) => {
            return text(
                StatusCode::BAD_GATEWAY,
                &format!("cannot reach TensorBoard at {address}: {err}\n"),
            );
        }
    };
    strip_hop_by_hop(response.headers_mut());
    if let Some(Ok(cookie)) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The `token` parameter of a query, and the query without it.
fn take_token(query: &str) -> (Option<String>, String) {
    let mut token = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("token", value)) => token = Some(value.to_string()),
            _ if pair == "token" => token = Some(String::new()),
            _ => rest.push(pair),
        }
    }
    (token, rest.join("&"))
}

/// The token from `x-guild-token`, `authorization: Bearer` or our cookie.
fn header_token(headers: &HeaderMap) -> Option<String> {
    if let Some(token) = headers.get(guild_proto::TOKEN_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(token.to_string());
    }
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(token.to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('=').map(str::to_string))
}

/// Drops our cookie from what TensorBoard sees (it has no use for the token).
fn without_our_cookie(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.starts_with(&format!("{COOKIE}=")))
        .map(str::to_string)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(header::COOKIE, value);
    }
}

/// Headers that belong to one connection, not to the request (RFC 9110 7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}

fn text(status: StatusCode, body: &str) -> Response<AxumBody> {
    crate::net::refusal(status, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_leaves_the_query() {
        assert_eq!(take_token("token=abc"), (Some("abc".into()), String::new()));
        assert_eq!(
            take_token("run=a%2Fb&token=abc&tag=loss"),
            (Some("abc".into()), "run=a%2Fb&tag=loss".into())
        );
        assert_eq!(take_token("run=x"), (None, "run=x".into()));
    }

    #[test]
    fn the_token_comes_from_headers_or_the_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; guild_token=t0k; b=2"));
        assert_eq!(header_token(&headers).as_deref(), Some("t0k"));
        without_our_cookie(&mut headers);
        assert_eq!(headers.get(header::COOKIE).unwrap(), "a=1; b=2");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer xyz"));
        assert_eq!(header_token(&headers).as_deref(), Some("xyz"));
    }
}
