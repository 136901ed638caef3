//! `GET /media/RUN_ID/image/SEQ` and `/media/RUN_ID/audio/SEQ` on the dashboard's port:
//! one image's or clip's bytes from run.db, for the page's `<img>` and `<audio>` (which it
//! fills from these with the token in a header). An item never changes once committed,
//! so answers may be cached for good (`immutable`, with an ETag for revalidation). The
//! bytes are served as the type they were sniffed as at ingest (never SVG or HTML), with
//! `nosniff` and a sandboxing CSP, so a hostile event file cannot put script on the
//! dashboard's origin.

use tonic::codegen::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use tonic::service::AxumBody;

use crate::samples::MediaKind;
use crate::secret::same;
use crate::store::{Index, rundb};

pub async fn serve(index: &Index, token: &str, request: Request<AxumBody>) -> Response<AxumBody> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "use GET /media/RUN_ID/image|audio/SEQ\n",
        );
    }
    let headers = request.headers();
    let given = headers
        .get(guild_proto::TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
    if !given.is_some_and(|t| same(t.as_bytes(), token.as_bytes())) {
        return text(
            StatusCode::UNAUTHORIZED,
            "a token is required (x-guild-token or Authorization: Bearer): use the URL `guild view` prints\n",
        );
    }
    let path = request.uri().path();
    let parts: Vec<&str> = path.trim_start_matches("/media/").split('/').collect();
    let [run, kind, seq] = parts.as_slice() else {
        return text(StatusCode::NOT_FOUND, "expected /media/RUN_ID/image|audio/SEQ\n");
    };
    let kind = match MediaKind::from_table(kind) {
        Some(k @ (MediaKind::Image | MediaKind::Audio)) => k,
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "only images and audio are files: /media/RUN_ID/image|audio/SEQ\n",
            );
        }
    };
    let Ok(seq) = seq.parse::<i64>() else {
        return text(StatusCode::NOT_FOUND, "SEQ is a number (MediaRef.seq)\n");
    };
    let etag = format!("\"{seq}\"");
    let run = match index.resolve(run).await {
        Ok(record) if record.id == **run => record,
        _ => return text(StatusCode::NOT_FOUND, "no such run (name it by its whole id)\n"),
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        let mut response = text(StatusCode::NOT_MODIFIED, "");
        cache_headers(&mut response, &etag);
        return response;
    }
    let head = request.method() == Method::HEAD;
    let found = rundb::read(&rundb::path(&run.run_dir), move |r| r.media_bytes(kind, seq)).await;
    match found {
        Ok(Some((mime, bytes))) => {
            let len = bytes.len();
            let mut response = Response::new(if head { AxumBody::empty() } else { AxumBody::from(bytes) });
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, content_type(kind, &mime));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            cache_headers(&mut response, &etag);
            response
        }
        Ok(None) => text(StatusCode::NOT_FOUND, "no such item in this run\n"),
        Err(err) => {
            tracing::warn!("/media/: {err}");
            text(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the run's database\n")
        }
    }
}

/// The stored type when it is one ingest gives (a run.db from an import could say
/// anything: text/html is never served as such), else application/octet-stream.
fn content_type(kind: MediaKind, mime: &str) -> HeaderValue {
    let known = match kind {
        MediaKind::Image => ["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"].contains(&mime),
        _ => mime.strip_prefix("audio/").is_some_and(|sub| {
            !sub.is_empty() && sub.len() < 40 && sub.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.+".contains(&b))
        }),
    };
    if known {
        HeaderValue::from_str(mime).unwrap_or(HeaderValue::from_static("application/octet-stream"))
    } else {
        HeaderValue::from_static("application/octet-stream")
    }
}

fn cache_headers(response: &mut Response<AxumBody>, etag: &str) {
    let h = response.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
}

fn text(status: StatusCode, body: &str) -> Response<AxumBody> {
    crate::net::refusal(status, body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_types_ingest_gives_are_served() {
        assert_eq!(content_type(MediaKind::Image, "image/png"), "image/png");
        assert_eq!(content_type(MediaKind::Image, "text/html"), "application/octet-stream");
        assert_eq!(
            content_type(MediaKind::Image, "image/svg+xml"),
            "application/octet-stream"
        );
        assert_eq!(content_type(MediaKind::Audio, "audio/wav"), "audio/wav");
        assert_eq!(
            content_type(MediaKind::Audio, "audio/x;y=<"),
            "application/octet-stream"
        );
    }
}
