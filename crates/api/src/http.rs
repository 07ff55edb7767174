//! The HTTP layer around the handlers: every refusal in the one JSON error shape (the
//! framework's own rejections included), request ids, the access log, security headers on every
//! response, paths and queries that must be UTF-8, JSON bodies, and the per-client rate limit.

use crate::error::{error_json, status_code_name};
use crate::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use std::net::SocketAddr;
use std::sync::Arc;

/// The header carrying a request's id (kept from the client when it sends a short one).
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id kept from a client; a longer one is replaced by the server's.
const MAX_REQUEST_ID: usize = 128;

/// Sent with every response: no inline script or style, nothing from elsewhere, no framing.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The security headers every response carries.
pub(crate) fn security_headers() -> [(HeaderName, HeaderValue); 4] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ]
}

/// Drops a client's request id that is too long to log, so the server makes its own.
pub(crate) async fn bounded_request_id(mut request: Request, next: Next) -> Response {
    let too_long = request
        .headers()
        .get(&REQUEST_ID)
        .is_some_and(|v| v.len() > MAX_REQUEST_ID || v.is_empty());
    if too_long {
        request.headers_mut().remove(&REQUEST_ID);
    }
    next.run(request).await
}

/// The span of one request in the log: its id, the client's address, method and path.
pub(crate) fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip().to_string())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        id,
        client,
        method = %request.method(),
        path = %logged_path(request.uri().path())
    )
}

/// A request's path as logged: a portal link's token (`/portal/TOKEN/...`) is a credential,
/// so only its id (`pl_` and hex, up to the first other character: the dot, or a
/// percent-encoded one) is kept.
fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    let Some(rest) = path.strip_prefix("/portal/") else {
        return path.into();
    };
    let (token, tail) = rest
        .split_once('/')
        .map_or((rest, ""), |(t, tail)| (t, tail));
    let id_len = token
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(token.len());
    if id_len == token.len() {
        return path.into();
    }
    format!("/portal/{}…/{tail}", &token[..id_len]).into()
}

/// Refuses a path or a query that is not UTF-8 once percent-decoded (400), before any handler
/// reads it (the query would otherwise be read with replacement characters).
pub(crate) async fn utf8_only(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let decoded = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .is_ok()
    };
    if !decoded(uri.path()) {
        return ApiError::BadRequest("the path is not UTF-8 once percent-decoded".into())
            .into_response();
    }
    if let Some(query) = uri.query() {
        // `+` is a space in a query; it cannot make or break UTF-8.
        if !decoded(query) {
            return ApiError::BadRequest(
                "the query string is not UTF-8 once percent-decoded".into(),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// Every error response in the one JSON shape: what the framework and the HTTP layers answer by
/// themselves (405, 408, a path the router could not read, a panic...) is rewritten with the
/// status's stable code; the handlers' own errors (JSON, or an HTML page a page handler answers
/// with) pass unchanged.
pub(crate) async fn json_errors(
    State(request_timeout): State<u64>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // A handler's own answer, JSON or a page of its own (the portal's "link not valid"), passes.
    let own = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if own {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let message = match status {
        StatusCode::REQUEST_TIMEOUT => format!(
            "the request was not read and answered within {request_timeout} s (serve \
             --request-timeout); a write may still have been applied: send it again under the \
             same Idempotency-Key to get its outcome"
        ),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            format!("method not allowed here; allowed: {allowed}")
        }
        _ => text.unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string()),
    };
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), "{message}");
    }
    let mut json = error_json(status, status_code_name(status), &message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().append(name, value.clone());
        }
    }
    json
}

/// A handler panic: logged, answered 500 in the error shape.
pub(crate) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::Internal(format!("the request failed inside the server: {what}")).into_response()
}

/// Requests per client (peer IP address): over the rate, 429 with `Retry-After`. Requests that
/// did not come through a socket (in-process tests) are not counted.
pub(crate) async fn rate_limit(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        if let Err(not_until) = state.limiter.check_key(&peer.ip()) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let limits = &state.config.limits;
            let mut response = error_json(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                &format!(
                    "more than {} requests per second (bursts of {}) from {}: retry in {seconds} s",
                    limits.rate_per_second,
                    limits.rate_burst,
                    peer.ip()
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            return response;
        }
    }
    next.run(request).await
}

/// A JSON request body, read whole: `Content-Type: application/json` (or `application/*+json`)
/// or 415; at most the server's body limit or 413.
pub(crate) struct JsonBody(pub Bytes);

impl FromRequest<Arc<AppState>> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "send the body as JSON, with `Content-Type: application/json`".into(),
            ));
        }
        let too_large = || {
            ApiError::PayloadTooLarge(format!(
                "the body is larger than {} bytes (serve --max-body)",
                state.config.limits.max_body
            ))
        };
        // A body declared larger than the limit is refused before any of it is read.
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > state.config.limits.max_body as u64) {
            return Err(too_large());
        }
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(JsonBody(bytes)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(too_large()),
            Err(e) => Err(ApiError::BadRequest(format!(
                "the body could not be read: {}",
                e.body_text()
            ))),
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::logged_path;

    /// A portal link's secret never reaches the log; its id and the rest of the path do.
    #[test]
    fn portal_tokens_are_not_logged() {
        assert_eq!(
            logged_path("/portal/pl_0a1b2c3d4e5f.SECRET/quote"),
            "/portal/pl_0a1b2c3d4e5f…/quote"
        );
        assert_eq!(logged_path("/portal/pl_1.SECRET"), "/portal/pl_1…/");
        // The dot percent-encoded (the router decodes it): the secret is not logged either.
        assert_eq!(
            logged_path("/portal/pl_1%2ESECRET/quote"),
            "/portal/pl_1…/quote"
        );
        assert_eq!(logged_path("/portal/pl_1%2eSECRET"), "/portal/pl_1…/");
        assert_eq!(
            logged_path("/portal/assets/portal.js"),
            "/portal/assets/portal.js"
        );
        assert_eq!(logged_path("/api/v1/kpis"), "/api/v1/kpis");
    }
}
