//! Helpers shared by the load tests of a running `expansa serve` (load.rs, writes.rs): the
//! HTTP client, one request, percentiles, the event log, a small random generator.
#![allow(dead_code)] // each example uses a different subset

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

pub type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// A status, the headers and the body of an answer.
pub type Answer = (u16, Vec<(String, String)>, Bytes);

/// A client keeping up to `connections` idle connections to the server.
pub fn http(connections: usize) -> Http {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(connections)
        .build_http()
}

/// Refuses any server but one on loopback: these tests flood what they target.
pub fn loopback_only(base: &str) {
    assert!(
        base.starts_with("http://127.")
            || base.starts_with("http://localhost")
            || base.starts_with("http://[::1]"),
        "the load tests only target loopback"
    );
}

/// What a request carries besides its method and URI.
#[derive(Clone, Copy, Default)]
pub struct Headers<'a> {
    /// The API key (`Authorization: Bearer KEY`): reads need one too.
    pub key: Option<&'a str>,
    /// A write's `Idempotency-Key` (the body is then sent as JSON).
    pub idempotency: Option<&'a str>,
    /// `X-Reason`, kept in the event log with the write.
    pub reason: Option<&'a str>,
}

/// Sends one request and reads its whole answer.
pub async fn send(
    http: &Http,
    method: &str,
    uri: &str,
    headers: Headers<'_>,
    body: Option<String>,
) -> Result<Answer, String> {
    let mut request = hyper::Request::builder().method(method).uri(uri);
    if let Some(key) = headers.key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    if let Some(idempotency) = headers.idempotency {
        request = request
            .header("idempotency-key", idempotency)
            .header("content-type", "application/json");
    }
    if let Some(reason) = headers.reason {
        request = request.header("x-reason", reason);
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    let response = http.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, headers, body))
}

/// Whether an answer is a replay of a stored one (`Idempotent-Replayed: true`).
pub fn replayed(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(k, v)| k == "idempotent-replayed" && v == "true")
}

/// The `p` quantile (0 to 1) of sorted durations, nearest rank; zero when there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let k = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[k]
}

/// A duration in milliseconds, for the printed summaries.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The event log (`GET /api/v1/events`), oldest first.
pub async fn events(http: &Http, base: &str, key: &str) -> Vec<serde_json::Value> {
    let headers = Headers {
        key: Some(key),
        ..Headers::default()
    };
    let (status, _, body) = send(http, "GET", &format!("{base}/api/v1/events"), headers, None)
        .await
        .expect("events");
    assert_eq!(status, 200, "events: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("events JSON")
}

/// Xorshift64: a fast, seeded, good-enough generator for choosing customers and contracts.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(0x9E37_79B9_7F4A_7C15u64 ^ (seed + 1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
