//! The dashboard: its page and front-end files (embedded in the binary; the grid and chart
//! libraries are vendored in `assets/vendor`), and the layouts users save.

use crate::reads::json_response;
use crate::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;

/// `(path under /assets/, content type, bytes)`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/app.css"),
    ),
    (
        "vendor/gridstack-all.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/gridstack-all.js"),
    ),
    (
        "vendor/gridstack.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/vendor/gridstack.min.css"),
    ),
    (
        "vendor/chart.umd.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/chart.umd.min.js"),
    ),
];

/// The layout a dashboard starts with.
const DEFAULT_LAYOUT: &str = include_str!("../assets/default-layout.json");

/// Largest layout accepted, in bytes.
const MAX_LAYOUT: usize = 64 * 1024;

pub async fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("../assets/index.html"),
    )
        .into_response()
}

pub async fn file(Path(path): Path<String>) -> Result<Response, ApiError> {
    let (_, kind, bytes) = FILES
        .iter()
        .find(|(name, _, _)| *name == path)
        .ok_or_else(|| ApiError::NotFound(format!("no asset {path:?}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, *kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *bytes,
    )
        .into_response())
}

/// A dashboard's layout (the default one until it is saved).
#[utoipa::path(get, path = "/api/v1/dashboards/{id}", params(("id" = String, Path, description = "Dashboard id")),
    responses((status = 200, description = "The layout: {\"id\", \"saved\", \"layout\": {\"widgets\": [{\"id\", \"x\", \"y\", \"w\", \"h\"}]}}", body = Object),
              (status = 401, body = crate::ErrorBody)))]
pub async fn get_dashboard(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    s.may_read(&headers).await?;
    let saved = s.store.dashboard(&id).await?;
    let layout: Value = serde_json::from_str(saved.as_deref().unwrap_or(DEFAULT_LAYOUT))
        .map_err(|e| ApiError::Internal(format!("stored layout: {e}")))?;
    Ok(json_response(
        serde_json::json!({"id": id, "saved": saved.is_some(), "layout": layout}).to_string(),
    ))
}

/// Saves a dashboard's layout.
#[utoipa::path(put, path = "/api/v1/dashboards/{id}", params(("id" = String, Path, description = "Dashboard id"), crate::openapi::WriteHeaders),
    request_body(content = Object, description = "{\"widgets\": [{\"id\": \"cross_sell\", \"x\": 0, \"y\": 0, \"w\": 3, \"h\": 2}]}"),
    responses((status = 200, description = "Saved", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody)))]
pub async fn put_dashboard(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // A layout is not a book event: the key is required like any write's, not recorded.
    s.writer(&headers, &format!("PUT /api/v1/dashboards/{id}"), &body)
        .await?;
    if body.len() > MAX_LAYOUT {
        return Err(ApiError::BadRequest(format!(
            "a layout is at most {MAX_LAYOUT} bytes"
        )));
    }
    let layout: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    check_layout(&layout)?;
    s.store.save_dashboard(&id, &layout.to_string()).await?;
    Ok(json_response(
        serde_json::json!({"id": id, "saved": true, "layout": layout}).to_string(),
    ))
}

/// A layout is `{"widgets": [{"id": string, "x", "y", "w", "h": whole numbers 0..=100}]}`.
fn check_layout(layout: &Value) -> Result<(), ApiError> {
    let bad = |m: &str| Err(ApiError::BadRequest(format!("layout: {m}")));
    let Some(widgets) = layout.get("widgets").and_then(Value::as_array) else {
        return bad("expected {\"widgets\": [...]}");
    };
    for w in widgets {
        if !w.get("id").is_some_and(Value::is_string) {
            return bad("every widget needs a string id");
        }
        for k in ["x", "y", "w", "h"] {
            if w.get(k).and_then(Value::as_u64).is_none_or(|n| n > 100) {
                return bad(&format!("widget {k} must be a whole number 0..100"));
            }
        }
    }
    Ok(())
}
