//! Work bounded by what a request may ask: every user-chosen size past its documented maximum
//! (README, "Limits") is answered 400 with the JSON error shape, through `app(state)`, before
//! anything is computed; sizes at the maximum are answered.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use expansa_api::{app, ApiConfig, AppState};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// Limits this test process to 1 GiB of data memory (with `prlimit`, when installed), so that
/// an unbounded request fails at once instead of taking the machine's memory.
fn limit_memory() {
    let _ = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--data={}", 1u64 << 30))
        .status();
}

/// The service over the demo book in a fresh SQLite store (the directory must outlive it).
async fn demo() -> (axum::Router, tempfile::TempDir) {
    limit_memory();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("limits.db").display());
    let store = common::loaded(&url, "examples/demo").await;
    (app(AppState::new(store, open_reads())), dir)
}

async fn get(router: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let response = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Requests past a maximum, and what the refusal says.
const TOO_MUCH: &[(&str, &str)] = &[
    // Today's crash: months x months cells for a 10,000-year grid.
    (
        "/api/v1/cohorts?from=0000-01&to=9999-12",
        "a report's months run from 1900-01 to 9999-12",
    ),
    (
        "/api/v1/cohorts?from=1900-01&to=9999-12&by=quarter",
        "a report covers at most 1200 months",
    ),
    (
        "/api/v1/cohorts?from=1990-01&to=2024-12",
        "a cohort grid has at most 360 periods",
    ),
    (
        "/api/v1/cohorts?from=1901-01&to=2000-12&by=quarter",
        "a cohort grid has at most 360 periods",
    ),
    (
        "/api/v1/movements?from=1900-01&to=9999-12",
        "a report covers at most 1200 months",
    ),
    (
        "/api/v1/movements?from=1924-12&to=2024-12",
        "1201 months; a report covers at most 1200 months",
    ),
    (
        "/api/v1/movements/detail?from=1900-01&to=9999-12",
        "at most 1200 months",
    ),
    (
        "/api/v1/customers/padaria-sao-jorge/trail?from=1900-01&to=9999-12",
        "at most 1200 months",
    ),
    (
        "/api/v1/kpis?from=0000-01&to=0000-12",
        "months run from 1900-01 to 9999-12",
    ),
    (
        "/api/v1/kpis?from=1900-01&to=9999-12",
        "at most 1200 months",
    ),
    (
        "/api/v1/offers?from=1900-01&to=9999-12",
        "at most 1200 months",
    ),
    (
        "/api/v1/opportunities?at=2024-12-31&top=10001",
        "--top 10001: at most 10000",
    ),
    (
        "/api/v1/opportunities?at=2024-12-31&usage_months=2000000000",
        "--usage-months 2000000000: at most 1200 months",
    ),
    (
        "/api/v1/opportunities?at=2024-12-31&skip_downsell_months=4000000000",
        "--skip-downsell-months 4000000000: at most 1200 months",
    ),
    (
        "/api/v1/opportunities?at=2024-12-31&max_len=1000000000000",
        "--max-len 1000000000000: at most 100",
    ),
    (
        "/api/v1/opportunities?at=0001-12-31",
        "a report's days run from 1900-01-01 to 9999-12-31",
    ),
    (
        "/api/v1/offers?from=2024-01&to=2024-12&max_itemsets=5000001",
        "--max-itemsets 5000001: at most 5000000",
    ),
    (
        "/api/v1/rules?at=2024-12-31&max_len=1000000000000",
        "--max-len 1000000000000: at most 100",
    ),
    (
        "/api/v1/rules?at=2024-12-31&max_itemsets=18446744073709551615",
        "at most 5000000",
    ),
    ("/api/v1/lines?limit=10001", "limit 10001: at most 10000"),
];

#[tokio::test]
async fn sizes_past_their_maximum_are_answered_400() {
    let (router, _dir) = demo().await;
    for (uri, says) in TOO_MUCH {
        let (status, body) = get(&router, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{uri}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{uri}: {message:?} lacks {says:?}");
        assert!(body["error"]["problems"].is_array(), "{uri}: {body}");
    }
    // The server still answers.
    let (status, body) = get(&router, "/api/v1/movements?from=2024-01&to=2024-12").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["months"].as_array().map(Vec::len), Some(12), "{body}");
}

#[tokio::test]
async fn sizes_at_their_maximum_are_answered() {
    let (router, _dir) = demo().await;
    let (status, body) = get(&router, "/api/v1/movements?from=1925-01&to=2024-12").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["months"].as_array().map(Vec::len), Some(1200));
    for uri in [
        "/api/v1/cohorts?from=1995-01&to=2024-12",
        "/api/v1/cohorts?from=1935-01&to=2024-12&by=quarter",
        "/api/v1/kpis?from=1925-01&to=2024-12",
        "/api/v1/offers?from=1925-01&to=2024-12",
        "/api/v1/opportunities?at=2024-12-31&top=10000&usage_months=1200&skip_downsell_months=1200&max_len=100&max_itemsets=5000000",
        "/api/v1/rules?at=9999-12-31&max_len=100",
        "/api/v1/lines?limit=10000",
    ] {
        let (status, body) = get(&router, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    }
}

/// The server as these tests read it: reads open (`serve --public-reads`), writes with a key.
fn open_reads() -> ApiConfig {
    ApiConfig {
        public_reads: true,
        ..ApiConfig::default()
    }
}
