//! The API through `app(state)`, without a socket: same numbers as the CLI's plan, one error
//! shape, keys, idempotent writes, quotes, dashboards, the OpenAPI document; on SQLite and, when
//! `EXPANSA_TEST_POSTGRES` is set, PostgreSQL.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use expansa_api::{app, ApiConfig, AppState};
use expansa_import::{read_book, Folder, ImportOptions, NoProgress};
use expansa_store::{Actor, ImportMode, Store};
use http_body_util::BodyExt;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tower::ServiceExt;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Server {
    router: axum::Router,
    store: Store,
    key: String,
    _dir: tempfile::TempDir,
}

async fn urls(dir: &Path) -> Vec<String> {
    let mut urls = vec![format!("sqlite:{}", dir.join("api.db").display())];
    if let Ok(admin) = std::env::var("EXPANSA_TEST_POSTGRES") {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("expansa_t_api_{}_{n}", std::process::id());
        urls.push(
            expansa_store::create_postgres_database(&admin, &name)
                .await
                .unwrap(),
        );
    }
    urls
}

/// One server per backend over `book`, with one API key.
async fn servers(book: &str, config: ApiConfig) -> Vec<Server> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    for url in urls(dir.path()).await {
        let store = Store::open(&url, ImportOptions::default()).await.unwrap();
        let actor = Actor {
            who: "test".into(),
            why: "load".into(),
        };
        store
            .import(&Folder(&root().join(book)), ImportMode::Merge, &actor)
            .await
            .unwrap();
        let key = store.create_key("tests").await.unwrap();
        out.push(Server {
            router: app(AppState::new(store.clone(), config.clone())),
            store,
            key,
            _dir: tempfile::tempdir().unwrap(),
        });
    }
    std::mem::forget(dir); // the SQLite file must outlive every server of the test
    out
}

async fn call(
    router: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body, headers)
}

async fn get(router: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let (s, b, _) = call(router, Request::get(uri).body(Body::empty()).unwrap()).await;
    (s, b)
}

fn write(
    method: &str,
    uri: &str,
    key: Option<&str>,
    idempotency: Option<&str>,
    body: Value,
) -> Request<Body> {
    let mut r = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(k) = key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    if let Some(i) = idempotency {
        r = r.header("idempotency-key", i);
    }
    r.body(Body::from(body.to_string())).unwrap()
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["error"]["problems"].is_array(), "{body}");
}

/// The CLI's JSON for the same flags on the same book.
fn cli_json(args: &[&str]) -> Value {
    use clap::Parser;
    let book = read_book(
        &root().join("examples/demo"),
        &ImportOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let mut argv = vec!["expansa"];
    argv.extend(args);
    argv.extend(["--data", "unused", "--format", "json"]);
    let plan = expansa_commands::Plan::from_cli(expansa_commands::Cli::parse_from(argv)).unwrap();
    serde_json::from_str(&expansa_commands::execute(&plan, &book).unwrap()).unwrap()
}

#[tokio::test]
async fn reports_are_the_clis_numbers() {
    for s in servers("examples/demo", ApiConfig::default()).await {
        let r = &s.router;
        let (status, body) = get(r, "/api/v1/movements?from=2024-01&to=2024-12").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            cli_json(&["movements", "--from", "2024-01", "--to", "2024-12"])
        );
        let (_, body) = get(
            r,
            "/api/v1/kpis?from=2024-01&to=2024-06&where=segment%3Dsimples",
        )
        .await;
        assert_eq!(
            body,
            cli_json(&[
                "kpis",
                "--from",
                "2024-01",
                "--to",
                "2024-06",
                "--where",
                "segment=simples"
            ])
        );
        let (_, body) = get(r, "/api/v1/cohorts?from=2023-06&to=2024-12&by=quarter").await;
        assert_eq!(
            body,
            cli_json(&["cohorts", "--from", "2023-06", "--to", "2024-12", "--by", "quarter"])
        );
        let (_, body) = get(r, "/api/v1/opportunities?at=2024-12-31&top=5").await;
        assert_eq!(
            body,
            cli_json(&["opportunities", "--at", "2024-12-31", "--top", "5"])
        );
        let (_, body) = get(
            r,
            "/api/v1/opportunities?at=2024-12-31&top=5&where=family=fiscal",
        )
        .await;
        assert_eq!(
            body,
            cli_json(&[
                "opportunities",
                "--at",
                "2024-12-31",
                "--top",
                "5",
                "--where",
                "family=fiscal"
            ])
        );
        let (_, body) = get(r, "/api/v1/rules?at=2024-12-31&min_support=2").await;
        assert_eq!(
            body,
            cli_json(&["rules", "--at", "2024-12-31", "--min-support", "2"])
        );
        let (_, body) = get(r, "/api/v1/offers?from=2024-01&to=2024-12").await;
        assert_eq!(
            body,
            cli_json(&["offers", "--from", "2024-01", "--to", "2024-12"])
        );
        let (_, body) = get(
            r,
            "/api/v1/offers?from=2024-01&to=2024-12&where=segment=lucro-presumido",
        )
        .await;
        assert_eq!(body["total"]["made"], 3, "{body}");
        assert_eq!(
            body,
            cli_json(&[
                "offers",
                "--from",
                "2024-01",
                "--to",
                "2024-12",
                "--where",
                "segment=lucro-presumido"
            ])
        );
        let (_, body) = get(
            r,
            "/api/v1/customers/padaria-sao-jorge/trail?from=2023-01&to=2024-12",
        )
        .await;
        assert_eq!(
            body,
            cli_json(&[
                "movements",
                "--from",
                "2023-01",
                "--to",
                "2024-12",
                "--explain",
                "padaria-sao-jorge"
            ])
        );
        // The detail adds up to the report's figure.
        let (_, detail) = get(
            r,
            "/api/v1/movements/detail?from=2024-03&to=2024-03&kind=cross_sell",
        )
        .await;
        let (_, report) = get(r, "/api/v1/movements?from=2024-03&to=2024-03").await;
        let sum: rust_decimal::Decimal = detail["movements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                m["amount"]
                    .as_str()
                    .unwrap()
                    .parse::<rust_decimal::Decimal>()
                    .unwrap()
            })
            .sum();
        assert_eq!(
            sum.to_string(),
            report["months"][0]["cross_sell"].as_str().unwrap()
        );
    }
}

#[tokio::test]
async fn bad_requests_get_one_error_shape() {
    for s in servers("examples/demo", ApiConfig::default()).await {
        let r = &s.router;
        let (st, b) = get(r, "/api/v1/movements?from=2024-13&to=2024-01").await;
        assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");
        assert!(b["error"]["message"].as_str().unwrap().contains("2024-13"));
        let (st, b) = get(r, "/api/v1/movements?from=2024-05&to=2024-01").await;
        assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            b["error"]["message"].as_str().unwrap().contains("is after"),
            "{b}"
        );
        let (st, b) = get(r, "/api/v1/movements?from=2024-01&to=2024-02&bogus=1").await;
        assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");
        let (st, b) = get(r, "/api/v1/movements?from=2024-01&from=2024-02&to=2024-03").await;
        assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");
        let (st, b) = get(r, "/api/v1/customers/nobody/trail?from=2024-01&to=2024-02").await;
        assert_error(st, &b, StatusCode::NOT_FOUND, "not_found");
        let (st, b) = get(r, "/api/v1/contracts/NOPE/terms").await;
        assert_error(st, &b, StatusCode::NOT_FOUND, "not_found");
        let (st, b) = get(r, "/api/v1/nothing-here").await;
        assert_error(st, &b, StatusCode::NOT_FOUND, "not_found");
        let (st, b) = get(
            r,
            "/api/v1/movements?from=2024-01&to=2024-02&as_of=event:99",
        )
        .await;
        assert_error(st, &b, StatusCode::NOT_FOUND, "not_found");
        let (st, b) = get(
            r,
            "/api/v1/movements?from=2024-01&to=2024-02&as_of=yesterday",
        )
        .await;
        assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");
    }
}

fn line(id: &str, customer: &str, price: &str) -> Value {
    serde_json::json!({"id": id, "customer_id": customer, "product_id": "folha", "quantity": "2",
        "unit_price": price, "start_date": "2024-06-10", "billing_period_months": 1})
}

#[tokio::test]
async fn writes_need_a_key_and_an_idempotency_key_and_happen_once() {
    for s in servers("examples/demo", ApiConfig::default()).await {
        let r = &s.router;
        let body = line("API-1", "padaria-sao-jorge", "35.00");
        let (st, b, _) = call(
            r,
            write("POST", "/api/v1/lines", None, Some("a"), body.clone()),
        )
        .await;
        assert_error(st, &b, StatusCode::UNAUTHORIZED, "unauthorized");
        let (st, b, _) = call(
            r,
            write(
                "POST",
                "/api/v1/lines",
                Some("ek_x.bad"),
                Some("a"),
                body.clone(),
            ),
        )
        .await;
        assert_error(st, &b, StatusCode::UNAUTHORIZED, "unauthorized");
        let (st, b, _) = call(
            r,
            write("POST", "/api/v1/lines", Some(&s.key), None, body.clone()),
        )
        .await;
        assert_error(st, &b, StatusCode::BAD_REQUEST, "missing_idempotency_key");
        let (_, before) = get(r, "/api/v1/movements?from=2024-06&to=2024-06").await;

        let (st, first, h) = call(
            r,
            write(
                "POST",
                "/api/v1/lines",
                Some(&s.key),
                Some("a"),
                body.clone(),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{first}");
        assert_eq!(h["idempotent-replayed"], "false");
        assert_eq!(first["row"]["unit_price"], "35.00");
        let (st, again, h) = call(
            r,
            write(
                "POST",
                "/api/v1/lines",
                Some(&s.key),
                Some("a"),
                body.clone(),
            ),
        )
        .await;
        assert_eq!(
            (st, h["idempotent-replayed"].to_str().unwrap()),
            (StatusCode::CREATED, "true")
        );
        assert_eq!(again, first);
        // The key again with another request: refused, and the first write stands.
        let (st, b, _) = call(
            r,
            write(
                "POST",
                "/api/v1/lines",
                Some(&s.key),
                Some("a"),
                line("API-1", "padaria-sao-jorge", "36.00"),
            ),
        )
        .await;
        assert_error(
            st,
            &b,
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
        );
        let (_, row) = get(r, "/api/v1/lines/API-1").await;
        assert_eq!(row["unit_price"], "35.00");
        // The same row under a new key is no change; a different row under the id is a conflict.
        let (st, _, _) = call(
            r,
            write(
                "POST",
                "/api/v1/lines",
                Some(&s.key),
                Some("b"),
                body.clone(),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        // That answer is kept too: the same request replays it, another one is refused.
        let (st, again, h) = call(
            r,
            write(
                "POST",
                "/api/v1/lines",
                Some(&s.key),
                Some("b"),
                body.clone(),
            ),
        )
        .await;
        assert_eq!(
            (st, h["idempotent-replayed"].to_str().unwrap()),
            (StatusCode::OK, "true")
        );
        assert_eq!(again["event"], Value::Null, "{again}");
        let (st, b, _) = call(
            r,
            write(
                "POST",
                "/api/v1/lines",
                Some(&s.key),
                Some("b"),
                line("API-9", "padaria-sao-jorge", "1.00"),
            ),
        )
        .await;
        assert_error(
            st,
            &b,
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
        );
        let (st, _) = get(r, "/api/v1/lines/API-9").await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, b, _) = call(
            r,
            write(
                "POST",
                "/api/v1/lines",
                Some(&s.key),
                Some("c"),
                line("API-1", "padaria-sao-jorge", "36.00"),
            ),
        )
        .await;
        assert_error(st, &b, StatusCode::CONFLICT, "conflict");
        // A line of an unknown customer would break the book: 422 with the problem.
        let (st, b, _) = call(
            r,
            write(
                "POST",
                "/api/v1/lines",
                Some(&s.key),
                Some("d"),
                line("API-2", "nobody", "1.00"),
            ),
        )
        .await;
        assert_error(st, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_book");
        assert!(b["error"]["problems"][0]["value"] == "nobody", "{b}");
        // Decimals as JSON numbers are refused: they would not stay exact.
        let mut float = line("API-3", "padaria-sao-jorge", "1");
        float["unit_price"] = serde_json::json!(35.1);
        let (st, b, _) = call(
            r,
            write("POST", "/api/v1/lines", Some(&s.key), Some("e"), float),
        )
        .await;
        assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");

        // The report sees the new line: +70.00 in June 2024 for that customer.
        let (_, after) = get(r, "/api/v1/movements?from=2024-06&to=2024-06").await;
        assert_ne!(before, after);
        let (_, row) = get(r, "/api/v1/lines/API-1").await;
        assert_eq!(row["customer_id"], "padaria-sao-jorge");
        let (_, list) = get(r, "/api/v1/lines?customer_id=padaria-sao-jorge&limit=2").await;
        assert_eq!(list["rows"].as_array().unwrap().len(), 2);

        // Replace, then delete; history keeps the past.
        let (st, _, _) = call(
            r,
            write(
                "PUT",
                "/api/v1/lines/API-1",
                Some(&s.key),
                Some("f"),
                line("API-1", "padaria-sao-jorge", "40.00"),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        let (st, _, _) = call(
            r,
            write(
                "DELETE",
                "/api/v1/lines/API-1",
                Some(&s.key),
                Some("g"),
                Value::Null,
            ),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        let (st, _) = get(r, "/api/v1/lines/API-1").await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let events = s.store.events().await.unwrap();
        assert_eq!(events.len(), 4, "import, create, replace, delete");
        let created = events[1].id;
        let (_, then) = get(
            r,
            &format!("/api/v1/movements?from=2024-06&to=2024-06&as_of=event:{created}"),
        )
        .await;
        assert_eq!(then, after);
        assert!(
            events[1].actor.starts_with("tests ("),
            "{}",
            events[1].actor
        );
    }
}

#[tokio::test]
async fn quotes_price_and_apply_once() {
    for s in servers("testdata/contracts", ApiConfig::default()).await {
        let r = &s.router;
        let body = serde_json::json!({"contract": "K1", "effective": "2024-01-23", "add": ["SEAT:1", "BIG:1"]});
        let (st, q, _) = call(r, write("POST", "/api/v1/quotes/amend", None, None, body)).await;
        assert_eq!(st, StatusCode::OK, "{q}");
        assert_eq!(q["lines"][0]["prorated_unit_price"], "321.76");
        assert_eq!(q["lines"][1]["net_total"], "8044.00");
        let apply = serde_json::json!({"contract": "K1", "effective": "2024-01-23", "add": ["SEAT:10"], "apply": true});
        let (st, b, _) = call(
            r,
            write(
                "POST",
                "/api/v1/quotes/amend",
                None,
                Some("q1"),
                apply.clone(),
            ),
        )
        .await;
        assert_error(st, &b, StatusCode::UNAUTHORIZED, "unauthorized");
        let (st, first, _) = call(
            r,
            write(
                "POST",
                "/api/v1/quotes/amend",
                Some(&s.key),
                Some("q1"),
                apply.clone(),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{first}");
        assert!(first["applied"]["event"].is_number(), "{first}");
        let (_, again, h) = call(
            r,
            write(
                "POST",
                "/api/v1/quotes/amend",
                Some(&s.key),
                Some("q1"),
                apply,
            ),
        )
        .await;
        assert_eq!(h["idempotent-replayed"], "true");
        assert_eq!(again, first);
        // The key with another quote: refused, the first one stands.
        let other = serde_json::json!({"contract": "K1", "effective": "2024-01-23", "add": ["SEAT:11"], "apply": true});
        let (st, b, _) = call(
            r,
            write(
                "POST",
                "/api/v1/quotes/amend",
                Some(&s.key),
                Some("q1"),
                other,
            ),
        )
        .await;
        assert_error(
            st,
            &b,
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
        );
        let (_, terms) = get(r, "/api/v1/contracts/K1/terms?at=2024-02-01").await;
        assert_eq!(terms["lines"][0]["quantity"], "15");
        let (st, b, _) = call(
            r,
            write(
                "POST",
                "/api/v1/quotes/renew",
                None,
                None,
                serde_json::json!({"contract": "K5"}),
            ),
        )
        .await;
        assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");
        assert!(b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("never renews"));
        let (st, b, _) = call(
            r,
            write(
                "POST",
                "/api/v1/quotes/renew",
                None,
                None,
                serde_json::json!({"contract": "K4"}),
            ),
        )
        .await;
        assert_eq!((st, b["total"].as_str()), (StatusCode::OK, Some("1440.00")));
        let (st, b, _) = call(
            r,
            write(
                "POST",
                "/api/v1/quotes/amend",
                None,
                None,
                serde_json::json!({"contract": "K1"}),
            ),
        )
        .await;
        assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");
    }
}

#[tokio::test]
async fn dashboards_keep_their_layout_and_reads_can_be_private() {
    for s in servers(
        "examples/demo",
        ApiConfig {
            private_reads: true,
        },
    )
    .await
    {
        let r = &s.router;
        let (st, b) = get(r, "/api/v1/dashboards/main").await;
        assert_error(st, &b, StatusCode::UNAUTHORIZED, "unauthorized");
        let auth = |uri: &str| {
            Request::get(uri)
                .header("authorization", format!("Bearer {}", s.key))
                .body(Body::empty())
                .unwrap()
        };
        let (st, b, _) = call(r, auth("/api/v1/dashboards/main")).await;
        assert_eq!((st, b["saved"].as_bool()), (StatusCode::OK, Some(false)));
        let layout = serde_json::json!({"widgets": [{"id": "cross_sell", "x": 0, "y": 0, "w": 3, "h": 2}, {"id": "ltv", "x": 3, "y": 0, "w": 3, "h": 2}]});
        let (st, _, _) = call(
            r,
            write(
                "PUT",
                "/api/v1/dashboards/main",
                Some(&s.key),
                Some("l1"),
                layout.clone(),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        let (_, b, _) = call(r, auth("/api/v1/dashboards/main")).await;
        assert_eq!(b["layout"], layout);
        let (st, b, _) = call(
            r,
            write(
                "PUT",
                "/api/v1/dashboards/main",
                Some(&s.key),
                Some("l2"),
                serde_json::json!({"widgets": [{"x": 1}]}),
            ),
        )
        .await;
        assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");
        let (st, _, _) = call(r, auth("/api/v1/movements?from=2024-01&to=2024-02")).await;
        assert_eq!(st, StatusCode::OK);
    }
}

#[tokio::test]
async fn the_dashboard_and_the_openapi_document_are_served() {
    let s = servers("examples/demo", ApiConfig::default())
        .await
        .remove(0);
    let response = s
        .router
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.into_body().collect().await.unwrap().to_bytes();
    let html = String::from_utf8_lossy(&html);
    assert!(
        html.contains("/assets/vendor/gridstack-all.js") && !html.contains("http"),
        "no CDN"
    );
    for asset in [
        "app.js",
        "app.css",
        "vendor/gridstack-all.js",
        "vendor/chart.umd.min.js",
        "vendor/gridstack.min.css",
    ] {
        let response = s
            .router
            .clone()
            .oneshot(
                Request::get(format!("/assets/{asset}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
    }
    let (st, doc) = get(&s.router, "/openapi.json").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/v1/movements",
        "/api/v1/kpis",
        "/api/v1/cohorts",
        "/api/v1/opportunities",
        "/api/v1/rules",
        "/api/v1/offers",
        "/api/v1/quotes/amend",
        "/api/v1/quotes/renew",
        "/api/v1/{table}",
        "/api/v1/{table}/{id}",
        "/api/v1/dashboards/{id}",
        "/api/v1/events",
        "/api/v1/contracts/{id}/terms",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
}
