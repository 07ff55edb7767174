//! One error type for every handler, and the one JSON shape it becomes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use expansa_import::Problem;
use expansa_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Why a request failed.
#[derive(Debug)]
pub enum ApiError {
    /// Bad parameters or body (400, `bad_request`).
    BadRequest(String),
    /// A write without an `Idempotency-Key` (400, `missing_idempotency_key`).
    MissingIdempotencyKey(String),
    /// No or a bad API key (401, `unauthorized`).
    Unauthorized(String),
    /// Known, but not allowed: a role too low, a session write without its CSRF token (403,
    /// `forbidden`).
    Forbidden(String),
    /// Too many attempts (429, `too_many_requests`, with `Retry-After`).
    TooManyRequests(String),
    /// No such thing (404, `not_found`).
    NotFound(String),
    /// The path exists, the method does not (405, `method_not_allowed`).
    MethodNotAllowed(String),
    /// The body is larger than the server takes (413, `payload_too_large`).
    PayloadTooLarge(String),
    /// A body that is not `application/json` (415, `unsupported_media_type`).
    UnsupportedMediaType(String),
    /// A dashboard layout naming an unknown widget or an impossible place (422, `invalid_layout`).
    InvalidLayout(String),
    /// A different row already has the id (409, `conflict`).
    Conflict(String),
    /// An `Idempotency-Key` sent again with a different request (422, `idempotency_key_reused`).
    IdempotencyKeyReused(String),
    /// The book would be invalid (422, `invalid_book`), with every problem.
    InvalidBook(String, Vec<Problem>),
    /// An export the conversion refused (422, `invalid_source`), with every problem.
    InvalidSource(String, Vec<Problem>),
    /// Another writer held the store past the busy timeout; nothing was done (503, `busy`, with
    /// `Retry-After`).
    Busy(String),
    /// Anything else (500, `internal`).
    Internal(String),
}

/// Seconds a client is told to wait (`Retry-After`) when the store was busy.
pub const BUSY_RETRY_AFTER_SECONDS: u64 = 5;

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code: bad_request, missing_idempotency_key, unauthorized, forbidden, not_found,
    /// method_not_allowed, request_timeout, conflict, payload_too_large, unsupported_media_type,
    /// idempotency_key_reused, invalid_book, invalid_source, invalid_layout, too_many_requests, busy, internal (and,
    /// for any other status the HTTP layer answers, a code named after it: see docs/api.md).
    pub code: &'static str,
    pub message: String,
    /// For invalid_book and invalid_source: every problem, as `file:line: column: value: reason`
    /// parts.
    pub problems: Vec<ProblemBody>,
}

/// One problem of a book.
#[derive(Serialize, ToSchema)]
pub struct ProblemBody {
    pub file: String,
    pub line: u64,
    pub column: String,
    pub value: String,
    pub reason: String,
}

impl ApiError {
    pub(crate) fn parts(&self) -> (StatusCode, &'static str, &str) {
        match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::MissingIdempotencyKey(m) => {
                (StatusCode::BAD_REQUEST, "missing_idempotency_key", m)
            }
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m),
            ApiError::TooManyRequests(m) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests", m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::MethodNotAllowed(m) => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", m)
            }
            ApiError::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m),
            ApiError::UnsupportedMediaType(m) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                m,
            ),
            ApiError::InvalidLayout(m) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_layout", m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m),
            ApiError::IdempotencyKeyReused(m) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                m,
            ),
            ApiError::InvalidBook(m, _) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_book", m),
            ApiError::InvalidSource(m, _) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_source", m)
            }
            ApiError::Busy(m) => (StatusCode::SERVICE_UNAVAILABLE, "busy", m),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", m),
        }
    }
}

/// The JSON error body of `status` with `code` and `message` (no problems): what the HTTP
/// layer's own refusals (timeouts, rate limits, the framework's rejections) are turned into.
pub(crate) fn error_json(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message, "problems": []}});
    (status, Json(body)).into_response()
}

/// The stable code of a status the HTTP layer answers by itself.
pub(crate) fn status_code_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        422 => "unprocessable",
        429 => "too_many_requests",
        431 => "headers_too_large",
        503 => "unavailable",
        500..=599 => "internal",
        _ => "error",
    }
}

/// Error messages longer than this many bytes are cut to [`MAX_MESSAGE_CHARS`] characters.
const MAX_MESSAGE_BYTES: usize = 1024;
const MAX_MESSAGE_CHARS: usize = 500;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        if status.is_server_error() {
            tracing::error!(code, "{message}");
        }
        let problems = match &self {
            ApiError::InvalidBook(_, problems) | ApiError::InvalidSource(_, problems) => problems
                .iter()
                .map(|p| ProblemBody {
                    file: p.file.clone(),
                    line: p.line,
                    column: p.column.clone(),
                    value: p.value.clone(),
                    reason: p.reason.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        // A message echoing a long value (a 60 KB `where=`) is cut, as problems' values are.
        let message = if message.len() > MAX_MESSAGE_BYTES {
            let head: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
            format!("{head}… ({} bytes)", message.len())
        } else {
            message.to_string()
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                problems,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::Busy(_)) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                BUSY_RETRY_AFTER_SECONDS.into(),
            );
        }
        if matches!(self, ApiError::TooManyRequests(_)) {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, 60.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Book(problems) => ApiError::InvalidBook(
                format!(
                    "nothing was changed: the book would have {} problem(s){}",
                    problems.total(),
                    if problems.1 > 0 {
                        format!(" (the first {} listed)", problems.0.len())
                    } else {
                        String::new()
                    }
                ),
                problems.0,
            ),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::NotFound(m) => ApiError::NotFound(m),
            StoreError::Invalid(m) => ApiError::BadRequest(m),
            StoreError::IdempotencyKeyReused(m) => ApiError::IdempotencyKeyReused(m),
            StoreError::Busy(m) => ApiError::Busy(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    /// Errors of running a plan on a book: unknown ids are 404, the rest bad input.
    fn from(e: anyhow::Error) -> ApiError {
        use expansa_contracts::QuoteError;
        let message = format!("{e:#}");
        match e.downcast_ref::<QuoteError>() {
            Some(QuoteError::UnknownContract(_) | QuoteError::UnknownProduct(_)) => {
                ApiError::NotFound(message)
            }
            _ if message.starts_with("unknown customer") => ApiError::NotFound(message),
            _ => ApiError::BadRequest(message),
        }
    }
}
