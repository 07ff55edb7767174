//! The dashboard: its page and front-end files (embedded in the binary; the grid and chart
//! libraries are vendored in `assets/vendor`), and the layouts users save, checked against the
//! widgets the server knows (`assets/widgets.json`, which the page reads too).

use crate::http::JsonBody;
use crate::reads::json_response;
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// `(path under /assets/, content type, bytes)`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "login.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/login.js"),
    ),
    (
        "widgets.json",
        "application/json",
        include_bytes!("../assets/widgets.json"),
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

/// The widgets a layout may hold and the grid they sit on, from `assets/widgets.json` (the one
/// list: the page reads the same file).
struct Widgets {
    columns: u64,
    rows: u64,
    /// id -> smallest (w, h).
    min: HashMap<String, (u64, u64)>,
    ids: Vec<String>,
}

static WIDGETS: LazyLock<Widgets> = LazyLock::new(|| {
    let list: Value =
        serde_json::from_slice(include_bytes!("../assets/widgets.json")).expect("widgets.json");
    let number = |v: &Value| v.as_u64().expect("widgets.json: whole numbers");
    let mut widgets = Widgets {
        columns: number(&list["columns"]),
        rows: number(&list["rows"]),
        min: HashMap::new(),
        ids: Vec::new(),
    };
    for w in list["widgets"].as_array().expect("widgets.json: widgets") {
        let id = w["id"].as_str().expect("widgets.json: ids").to_string();
        let min = (number(&w["min"][0]), number(&w["min"][1]));
        widgets.ids.push(id.clone());
        widgets.min.insert(id, min);
    }
    widgets
});

pub async fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("../assets/index.html"),
    )
        .into_response()
}

/// The login page (its script is `assets/login.js`: no inline script).
pub async fn login_page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("../assets/login.html"),
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
) -> Result<Response, ApiError> {
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
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
              (status = 413, body = crate::ErrorBody), (status = 415, body = crate::ErrorBody),
              (status = 422, description = "An unknown widget, one twice, or a place outside the grid (`invalid_layout`)", body = crate::ErrorBody)))]
pub async fn put_dashboard(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    who: crate::auth::Principal,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    // A layout is not a book event: the key is required like any write's, not recorded.
    s.writer(
        &who,
        &headers,
        &format!("PUT /api/v1/dashboards/{id}"),
        &body,
    )?;
    if body.len() > MAX_LAYOUT {
        return Err(ApiError::PayloadTooLarge(format!(
            "a layout is at most {MAX_LAYOUT} bytes"
        )));
    }
    let layout: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let layout = check_layout(&layout)?;
    s.store.save_dashboard(&id, &layout.to_string()).await?;
    Ok(json_response(
        serde_json::json!({"id": id, "saved": true, "layout": layout}).to_string(),
    ))
}

/// A layout is `{"widgets": [{"id": string, "x", "y", "w", "h": whole numbers}]}` (400
/// otherwise), each id a known widget, once, at least its smallest size and inside the grid
/// (422 `invalid_layout` otherwise). The layout kept is rebuilt from these fields alone.
fn check_layout(layout: &Value) -> Result<Value, ApiError> {
    let bad = |m: &str| Err(ApiError::BadRequest(format!("layout: {m}")));
    let invalid = |m: String| Err(ApiError::InvalidLayout(format!("layout: {m}")));
    let Some(widgets) = layout.get("widgets").and_then(Value::as_array) else {
        return bad("expected {\"widgets\": [...]}");
    };
    let known = &*WIDGETS;
    let mut kept = Vec::with_capacity(widgets.len());
    let mut seen = std::collections::HashSet::new();
    for w in widgets {
        let Some(id) = w.get("id").and_then(Value::as_str) else {
            return bad("every widget needs a string id");
        };
        let mut place = [0u64; 4];
        for (k, slot) in ["x", "y", "w", "h"].into_iter().zip(&mut place) {
            match w.get(k).and_then(Value::as_u64) {
                Some(n) => *slot = n,
                None => return bad(&format!("widget {k} must be a whole number")),
            }
        }
        let Some(&(min_w, min_h)) = known.min.get(id) else {
            let shown: String = id.chars().take(64).collect();
            return invalid(format!(
                "unknown widget {shown:?}; the widgets are: {}",
                known.ids.join(", ")
            ));
        };
        if !seen.insert(id) {
            return invalid(format!("widget {id:?} appears twice"));
        }
        let [x, y, width, height] = place;
        let (columns, rows) = (known.columns, known.rows);
        if width < min_w || height < min_h {
            return invalid(format!(
                "widget {id:?} is {width}x{height}; it needs at least {min_w}x{min_h}"
            ));
        }
        if x.saturating_add(width) > columns || y.saturating_add(height) > rows {
            return invalid(format!(
                "widget {id:?} at x={x}, y={y}, {width}x{height} leaves the grid of {columns} columns and {rows} rows"
            ));
        }
        kept.push(serde_json::json!({"id": id, "x": x, "y": y, "w": width, "h": height}));
    }
    Ok(serde_json::json!({"widgets": kept}))
}
