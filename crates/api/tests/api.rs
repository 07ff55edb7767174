//! The API through `app(state)`, without a socket: same numbers as the CLI's plan, one error
//! shape, keys, idempotent writes, quotes, dashboards, the OpenAPI document; on SQLite and, when
//! `EXPANSA_TEST_POSTGRES` is set, PostgreSQL.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::root;
use expansa_api::{app, ApiConfig, AppState};
use expansa_import::{read_book, ImportOptions, NoProgress};
use expansa_store::Store;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

struct Server {
    router: axum::Router,
    store: Store,
    key: String,
    _dir: tempfile::TempDir,
}

/// One server per backend over `book`, with one API key.
async fn servers(book: &str, config: ApiConfig) -> Vec<Server> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    for store in common::stores(dir.path(), "api", book).await {
        let key = store
            .create_key("tests", expansa_store::Role::Admin)
            .await
            .unwrap();
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
    for s in servers("examples/demo", open_reads()).await {
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

/// A report of `book` as the CLI prints it (JSON), `args` its command and flags.
fn cli_on(book: &expansa_ledger::Book, args: &[&str]) -> Value {
    use clap::Parser;
    let mut argv = vec!["expansa"];
    argv.extend(args);
    argv.extend(["--data", "unused", "--format", "json"]);
    let plan = expansa_commands::Plan::from_cli(expansa_commands::Cli::parse_from(argv)).unwrap();
    serde_json::from_str(&expansa_commands::execute(&plan, book).unwrap()).unwrap()
}

/// The KPIs of `book` as the CLI prints them (JSON).
fn cli_kpis(book: &expansa_ledger::Book, from: &str, to: &str) -> Value {
    cli_on(book, &["kpis", "--from", from, "--to", to])
}

/// After each write (a line added, a customer added, a line of the new customer, a line
/// ended, a line removed), the reports that are not sums over customers (cohorts,
/// opportunities, rules, offers, renewals, filtered movements and KPIs, the detail) read the
/// latest book the store made in memory from its base and the changed customers' rows: the
/// CLI's numbers on the book another store reads whole from the database.
#[tokio::test]
async fn reports_after_writes_are_the_clis_on_the_databases_book() {
    let dir = tempfile::tempdir().unwrap();
    let reports: [(&str, &[&str]); 8] = [
        (
            "/api/v1/cohorts?from=2023-06&to=2024-12",
            &["cohorts", "--from", "2023-06", "--to", "2024-12"],
        ),
        (
            "/api/v1/opportunities?at=2024-12-31&top=5",
            &["opportunities", "--at", "2024-12-31", "--top", "5"],
        ),
        (
            "/api/v1/rules?at=2024-12-31&min_support=2",
            &["rules", "--at", "2024-12-31", "--min-support", "2"],
        ),
        (
            "/api/v1/offers?from=2024-01&to=2024-12",
            &["offers", "--from", "2024-01", "--to", "2024-12"],
        ),
        (
            "/api/v1/movements?from=2024-01&to=2024-12&where=segment%3Dsimples",
            &[
                "movements",
                "--from",
                "2024-01",
                "--to",
                "2024-12",
                "--where",
                "segment=simples",
            ],
        ),
        (
            "/api/v1/kpis?from=2024-01&to=2024-12&where=segment%3Dsimples",
            &[
                "kpis",
                "--from",
                "2024-01",
                "--to",
                "2024-12",
                "--where",
                "segment=simples",
            ],
        ),
        (
            "/api/v1/movements/detail?from=2024-01&to=2024-12",
            &[
                "movements",
                "--from",
                "2024-01",
                "--to",
                "2024-12",
                "--detail",
            ],
        ),
        (
            "/api/v1/customers/padaria-sao-jorge/trail?from=2023-01&to=2024-12",
            &[
                "movements",
                "--from",
                "2023-01",
                "--to",
                "2024-12",
                "--explain",
                "padaria-sao-jorge",
            ],
        ),
    ];
    for url in common::store_urls(dir.path(), "made").await {
        let store = common::loaded(&url, "examples/demo").await;
        let key = store
            .create_key("tests", expansa_store::Role::Admin)
            .await
            .unwrap();
        let r = app(AppState::new(store.clone(), open_reads()));
        let new_customer = serde_json::json!({"id": "made-1", "name": "Made One",
            "registered_on": "2024-05-02", "segment": "simples", "channel": "indicacao"});
        let mut writes = vec![
            (
                "POST",
                "/api/v1/lines".to_string(),
                line("MD-1", "padaria-sao-jorge", "80.00"),
            ),
            ("POST", "/api/v1/customers".to_string(), new_customer),
            (
                "POST",
                "/api/v1/lines".to_string(),
                line("MD-2", "made-1", "120.00"),
            ),
        ];
        let mut ended = line("MD-1", "padaria-sao-jorge", "80.00");
        ended["end_date"] = "2024-09-30".into();
        writes.push(("PUT", "/api/v1/lines/MD-1".to_string(), ended));
        writes.push(("DELETE", "/api/v1/lines/MD-2".to_string(), Value::Null));
        // The first read of the latest book reads it whole; those after a write make it.
        let (status, body) = get(&r, reports[0].0).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for (n, (method, uri, body)) in writes.into_iter().enumerate() {
            let (st, b, _) = call(
                &r,
                write(method, &uri, Some(&key), Some(&format!("md{n}")), body),
            )
            .await;
            assert!(st.is_success(), "{method} {uri}: {st} {b}");
            let made = store.latest_books_made().0;
            // Another store on the same database reads the book whole.
            let fresh = expansa_store::Store::open(&url, ImportOptions::default())
                .await
                .unwrap();
            let book = fresh.book(expansa_store::AsOf::Latest).await.unwrap();
            fresh.close().await.unwrap();
            for (uri, args) in &reports {
                let (status, body) = get(&r, uri).await;
                assert_eq!(status, StatusCode::OK, "{uri}: {body}");
                assert_eq!(body, cli_on(&book, args), "after write {n}: {uri}");
            }
            assert_eq!(
                store.latest_books_made().0,
                made + 1,
                "write {n}: the latest book was made once from its parts"
            );
        }
    }
}

/// The KPIs without filters are read in parts after a write (the base's cells, and the
/// changed customers'), and whole once a write names another customer's contract (renewals
/// then span customers): the CLI's numbers on the book as it is, either way.
#[tokio::test]
async fn kpis_follow_writes_in_parts_and_whole() {
    for s in servers("examples/demo", open_reads()).await {
        let r = &s.router;
        let uri = "/api/v1/kpis?from=2024-01&to=2024-12";
        let latest = || async { s.store.book(expansa_store::AsOf::Latest).await.unwrap() };
        let (status, body) = get(r, uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, cli_kpis(&latest().await, "2024-01", "2024-12"));
        let mut own = line("KP-1", "padaria-sao-jorge", "90.00");
        own["contract_id"] = "K01".into();
        let mut other = line("KP-2", "studio-bela-forma", "45.00");
        other["contract_id"] = "K01".into(); // padaria-sao-jorge's contract
        for (n, body) in [own, other].into_iter().enumerate() {
            let (st, b, _) = call(
                r,
                write(
                    "POST",
                    "/api/v1/lines",
                    Some(&s.key),
                    Some(&format!("kp{n}")),
                    body,
                ),
            )
            .await;
            assert_eq!(st, StatusCode::CREATED, "{b}");
            let book = latest().await;
            // The first write keeps every contract within its customer, the second does not.
            assert_eq!(book.contract_owners().is_some(), n == 0);
            let (status, body) = get(r, uri).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(
                body,
                cli_kpis(&book, "2024-01", "2024-12"),
                "after write {n}"
            );
        }
    }
}

#[tokio::test]
async fn bad_requests_get_one_error_shape() {
    for s in servers("examples/demo", open_reads()).await {
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
        // The year 0000 is a typo, not a moment before the store.
        let (st, b) = get(
            r,
            "/api/v1/movements?from=2024-01&to=2024-02&as_of=0000-01-01",
        )
        .await;
        assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");
        // Before the first event: the CLI's words (the store's).
        let (st, b) = get(
            r,
            "/api/v1/movements?from=2024-01&to=2024-02&as_of=2001-01-01",
        )
        .await;
        assert_error(st, &b, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(b["error"]["message"], expansa_store::NO_BOOK, "{b}");
    }
}

fn line(id: &str, customer: &str, price: &str) -> Value {
    serde_json::json!({"id": id, "customer_id": customer, "product_id": "folha", "quantity": "2",
        "unit_price": price, "start_date": "2024-06-10", "billing_period_months": 1})
}

/// A row whose value no database can keep (the year 0000, a NUL, a date that is not one) is
/// a 422 with the problem on both stores, never a 500 from the database; nor is a path id
/// holding a NUL.
#[tokio::test]
async fn values_no_database_can_keep_are_422_on_both_stores() {
    for s in servers("examples/demo", open_reads()).await {
        let r = &s.router;
        for (n, (column, value)) in [
            ("start_date", "0000-01-01"),
            ("start_date", "2024-13-01"),
            ("product_id", "fo\u{0}lha"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut body = line("API-0", "padaria-sao-jorge", "35.00");
            body[column] = Value::String(value.to_string());
            let (st, b, _) = call(
                r,
                write(
                    "POST",
                    "/api/v1/lines",
                    Some(&s.key),
                    Some(&format!("unstorable-{n}")),
                    body,
                ),
            )
            .await;
            assert_error(st, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_book");
            assert_eq!(b["error"]["problems"][0]["column"], column, "{b}");
        }
        let (st, _) = get(r, "/api/v1/lines/L%00").await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = get(r, "/api/v1/lines/API-0").await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn writes_need_a_key_and_an_idempotency_key_and_happen_once() {
    for s in servers("examples/demo", open_reads()).await {
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
    for s in servers("testdata/contracts", open_reads()).await {
        let r = &s.router;
        let body = serde_json::json!({"contract": "K1", "effective": "2024-01-23", "add": ["SEAT:1", "BIG:1"]});
        let (st, q, _) = call(
            r,
            write("POST", "/api/v1/quotes/amend", Some(&s.key), None, body),
        )
        .await;
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
                Some(&s.key),
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
                Some(&s.key),
                None,
                serde_json::json!({"contract": "K4"}),
            ),
        )
        .await;
        assert_eq!(
            (st, b["totals"][0]["total"].as_str()),
            (StatusCode::OK, Some("1440.00"))
        );
        let (st, b, _) = call(
            r,
            write(
                "POST",
                "/api/v1/quotes/amend",
                Some(&s.key),
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
    for s in servers("examples/demo", ApiConfig::default()).await {
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
    let s = servers("examples/demo", open_reads()).await.remove(0);
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

/// A request body that never ends (a client that stops sending half-way).
struct Stalled;

impl http_body::Body for Stalled {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

/// `call`, but failing after 10 s instead of waiting for ever.
async fn call_bounded(
    router: &axum::Router,
    request: Request<Body>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    tokio::time::timeout(std::time::Duration::from_secs(10), call(router, request))
        .await
        .expect("the server answered within 10 s")
}

/// The demo book's server with `limits`.
async fn limited(limits: expansa_api::Limits) -> Server {
    let config = ApiConfig {
        limits,
        ..open_reads()
    };
    servers("examples/demo", config).await.remove(0)
}

#[tokio::test]
async fn unknown_routes_and_methods_have_the_error_shape() {
    let s = limited(Default::default()).await;
    let r = &s.router;
    // 404: no such route, anywhere.
    for uri in ["/nope", "/api/v1/lines/l1/extra", "/assets/nothing.js"] {
        let (st, b) = get(r, uri).await;
        assert_error(st, &b, StatusCode::NOT_FOUND, "not_found");
    }
    // 405: a route without the method (the allowed ones in `Allow`).
    let (st, b, h) = call(
        r,
        Request::delete("/api/v1/movements")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_error(st, &b, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert!(h["allow"].to_str().unwrap().contains("GET"), "{h:?}");
    let patch = write(
        "PATCH",
        "/api/v1/lines/l1",
        Some(&s.key),
        Some("p"),
        Value::Null,
    );
    let (st, b, _) = call(r, patch).await;
    assert_error(st, &b, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let (st, b, _) = call(r, write("POST", "/", None, None, Value::Null)).await;
    assert_error(st, &b, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn bodies_too_large_or_not_json_have_the_error_shape() {
    let s = limited(Default::default()).await;
    let r = &s.router;
    // 413: a body over the limit (1 MiB by default; 3 MiB is over axum's own 2 MiB too).
    let big = format!("{{\"id\": \"{}\"}}", "x".repeat(3 << 20));
    let request = Request::post("/api/v1/lines")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", s.key))
        .header("idempotency-key", "big")
        .body(Body::from(big))
        .unwrap();
    let (st, b, _) = call(r, request).await;
    assert_error(st, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // A smaller limit, and a body sent without a length (chunked).
    let s = limited(expansa_api::Limits {
        max_body: 2048,
        ..Default::default()
    })
    .await;
    let r = &s.router;
    let chunks = (0..8).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b' '; 1024])));
    let request = Request::put("/api/v1/dashboards/main")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", s.key))
        .header("idempotency-key", "chunked")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let (st, b, _) = call(r, request).await;
    assert_error(st, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // A body declared larger than the limit is refused before it is read (here the two bytes
    // sent would never reach the declared length).
    let request = Request::post("/api/v1/customers")
        .header("content-type", "application/json")
        .header("content-length", "99999999999")
        .header("authorization", format!("Bearer {}", s.key))
        .header("idempotency-key", "declared")
        .body(Body::from("{}"))
        .unwrap();
    let (st, b, _) = call(r, request).await;
    assert_error(st, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // 415: a body that is not sent as JSON, with or without a content type.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = Request::post("/api/v1/lines")
            .header("authorization", format!("Bearer {}", s.key))
            .header("idempotency-key", format!("ct-{content_type:?}"));
        if let Some(c) = content_type {
            request = request.header("content-type", c);
        }
        let body = line("l-ct", "c01", "10.00").to_string();
        let (st, b, _) = call(r, request.body(Body::from(body)).unwrap()).await;
        assert_error(
            st,
            &b,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    let (st, b) = get(r, "/api/v1/lines/l-ct").await;
    assert_error(st, &b, StatusCode::NOT_FOUND, "not_found");
    // `application/json; charset=utf-8` is JSON; a body that is not JSON is 400.
    let request = Request::post("/api/v1/quotes/renew")
        .header("authorization", format!("Bearer {}", s.key))
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from("{\"contract\": \"nope\""))
        .unwrap();
    let (st, b, _) = call(r, request).await;
    assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");
}

/// A 400 whose message would echo a long value keeps it short.
#[tokio::test]
async fn error_messages_do_not_echo_long_values_whole() {
    let s = limited(Default::default()).await;
    let uri = format!(
        "/api/v1/movements?from=2024-01&to=2024-02&where=segment%3D{}",
        "x".repeat(20_000)
    );
    let (st, b) = get(&s.router, &uri).await;
    assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");
    let message = b["error"]["message"].as_str().unwrap();
    assert!(message.len() < 2_000, "{} bytes", message.len());
    assert!(message.ends_with("bytes)"), "{message}");
}

#[tokio::test]
async fn paths_and_queries_that_are_not_utf8_are_400() {
    let s = limited(Default::default()).await;
    let r = &s.router;
    for uri in [
        "/api/v1/customers/%FF%FE",
        "/api/v1/customers/%C3/trail?from=2024-01&to=2024-02",
        "/api/v1/%FF",
        "/api/v1/movements?from=2024-01&to=2024-02&where=segment%3D%FF",
        "/api/v1/customers?name=%E9",
    ] {
        let (st, b) = get(r, uri).await;
        assert_error(st, &b, StatusCode::BAD_REQUEST, "bad_request");
        assert!(
            b["error"]["message"].as_str().unwrap().contains("UTF-8"),
            "{uri}: {b}"
        );
    }
    // ... while percent-encoded UTF-8 is read as such.
    let (st, b) = get(r, "/api/v1/customers?name=Jos%C3%A9").await;
    assert_eq!(st, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn a_body_that_stops_coming_is_cut_at_the_request_timeout() {
    let s = limited(expansa_api::Limits {
        request_timeout: std::time::Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let request = Request::post("/api/v1/quotes/renew")
        .header("authorization", format!("Bearer {}", s.key))
        .header("content-type", "application/json")
        .body(Body::new(Stalled))
        .unwrap();
    let (st, b, _) = call_bounded(&s.router, request).await;
    assert_error(st, &b, StatusCode::REQUEST_TIMEOUT, "request_timeout");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let s = servers("examples/demo", ApiConfig::default())
        .await
        .remove(0);
    let r = &s.router;
    let read = |authorization: String| {
        Request::get("/api/v1/dashboards/main")
            .header("authorization", authorization)
            .body(Body::empty())
            .unwrap()
    };
    for scheme in ["bearer", "BEARER", "bEaReR", "Bearer"] {
        let (st, b, _) = call(r, read(format!("{scheme} {}", s.key))).await;
        assert_eq!(st, StatusCode::OK, "{scheme}: {b}");
        let (st, b, _) = call(r, read(format!("{scheme}\t {} ", s.key))).await;
        assert_eq!(st, StatusCode::OK, "{scheme} with spaces: {b}");
    }
    for refused in [
        format!("Basic {}", s.key),
        format!("Bearer{}", s.key),
        "bearer ".to_string(),
        s.key.clone(),
    ] {
        let (st, b, _) = call(r, read(refused.clone())).await;
        assert_error(st, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // A write with a lower-case scheme.
    let mut request = write(
        "PUT",
        "/api/v1/dashboards/lower",
        None,
        Some("lower-1"),
        serde_json::json!({"widgets": [{"id": "mrr", "x": 0, "y": 0, "w": 3, "h": 2}]}),
    );
    request.headers_mut().insert(
        "authorization",
        format!("bearer {}", s.key).parse().unwrap(),
    );
    let (st, b, _) = call(r, request).await;
    assert_eq!(st, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn every_response_carries_security_headers_and_a_request_id() {
    let s = servers("examples/demo", open_reads()).await.remove(0);
    let r = &s.router;
    let mut ids = std::collections::HashSet::new();
    for uri in [
        "/",
        "/assets/app.js",
        "/assets/widgets.json",
        "/openapi.json",
        "/api/v1/movements?from=2024-01&to=2024-02",
        "/api/v1/nothing/here/at/all",
    ] {
        let (_, _, h) = call(r, Request::get(uri).body(Body::empty()).unwrap()).await;
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{uri}: no CSP"))
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{uri}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{uri}: {csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{uri}");
        assert!(h.contains_key("referrer-policy"), "{uri}");
        let id = h["x-request-id"].to_str().unwrap().to_string();
        assert!(id.len() >= 16, "{uri}: {id}");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 6, "one id per request: {ids:?}");
    // A client's own short id is echoed; a long one is replaced.
    let mine = Request::get("/api/v1/events")
        .header("x-request-id", "client-42")
        .body(Body::empty())
        .unwrap();
    let (_, _, h) = call(r, mine).await;
    assert_eq!(h["x-request-id"], "client-42");
    let long = Request::get("/api/v1/events")
        .header("x-request-id", "x".repeat(500))
        .body(Body::empty())
        .unwrap();
    let (_, _, h) = call(r, long).await;
    assert!(h["x-request-id"].len() < 100, "{h:?}");
}

#[tokio::test]
async fn saved_layouts_hold_known_widgets_only() {
    let s = servers("examples/demo", open_reads()).await.remove(0);
    let r = &s.router;
    let put = |n: usize, layout: Value| {
        write(
            "PUT",
            "/api/v1/dashboards/checked",
            Some(&s.key),
            Some(&format!("layout-{n}")),
            layout,
        )
    };
    let at = |id: &str, x: u64, y: u64, w: u64, h: u64| serde_json::json!({"id": id, "x": x, "y": y, "w": w, "h": h});
    let refused = [
        vec![at("constructor", 0, 0, 3, 2)],
        vec![at("__proto__", 0, 0, 3, 2)],
        vec![at("toString", 0, 0, 3, 2)],
        vec![
            at("mrr", 0, 0, 3, 2),
            at("\"]<img src=x onerror=alert(1)>", 3, 0, 3, 2),
        ],
        vec![at("mrr", 0, 0, 3, 2), at("mrr", 3, 0, 3, 2)],
        vec![at("mrr", 0, 0, 1, 2)],
        vec![at("movement_chart", 0, 0, 2, 2)],
        vec![at("mrr", 10, 0, 3, 2)],
        vec![at("mrr", 0, 0, 13, 2)],
        vec![at("mrr", 0, 199, 3, 2)],
    ];
    for (n, widgets) in refused.into_iter().enumerate() {
        let layout = serde_json::json!({ "widgets": widgets });
        let (st, b, _) = call(r, put(n, layout.clone())).await;
        assert_error(st, &b, StatusCode::UNPROCESSABLE_ENTITY, "invalid_layout");
        let (_, b) = get(r, "/api/v1/dashboards/checked").await;
        assert_eq!(b["saved"], false, "{layout} was not kept");
    }
    // The list the server checks against is the page's.
    let (st, known) = get(r, "/assets/widgets.json").await;
    assert_eq!(st, StatusCode::OK);
    let ids: Vec<&str> = known["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"mrr") && ids.contains(&"movement_chart"),
        "{ids:?}"
    );
    // A good layout is kept with its places only (other fields are dropped).
    let mut cell = at("cross_sell", 0, 0, 3, 2);
    cell["content"] = Value::from("<script>alert(1)</script>");
    let layout =
        serde_json::json!({"widgets": [cell, at("movement_chart", 0, 2, 8, 5)], "extra": 1});
    let (st, b, _) = call(r, put(100, layout)).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let (_, b) = get(r, "/api/v1/dashboards/checked").await;
    assert_eq!(
        b["layout"],
        serde_json::json!({"widgets": [at("cross_sell", 0, 0, 3, 2), at("movement_chart", 0, 2, 8, 5)]})
    );
    // Every widget of the default layout is a known one, inside the grid.
    let (_, b) = get(r, "/api/v1/dashboards/default-check").await;
    let (st, b, _) = call(r, put(101, b["layout"].clone())).await;
    assert_eq!(st, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn each_client_has_a_request_rate() {
    let config = ApiConfig {
        limits: expansa_api::Limits {
            rate_per_second: 1,
            rate_burst: 3,
            ..Default::default()
        },
        ..open_reads()
    };
    let s = servers("examples/demo", config).await.remove(0);
    let from = |ip: [u8; 4]| {
        let peer = std::net::SocketAddr::from((ip, 40000));
        Request::get("/api/v1/events")
            .extension(axum::extract::ConnectInfo(peer))
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..3 {
        let (st, _, _) = call(&s.router, from([10, 0, 0, 1])).await;
        assert_eq!(st, StatusCode::OK);
    }
    let (st, b, h) = call(&s.router, from([10, 0, 0, 1])).await;
    assert_error(st, &b, StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert!(h.contains_key("content-security-policy") && h.contains_key("x-request-id"));
    // Another client is not held back.
    let (st, _, _) = call(&s.router, from([10, 0, 0, 2])).await;
    assert_eq!(st, StatusCode::OK);
}

#[test]
fn serve_flags_have_defaults_and_checked_maximums() {
    use clap::Parser;
    use expansa_commands::{Cli, Command, Plan};
    let limits = |flags: &[&str]| -> Result<expansa_api::Limits, String> {
        let argv = ["expansa", "serve", "--db", "sqlite:x.db"]
            .iter()
            .chain(flags);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        match Plan::from_cli(cli)?.command {
            Command::Serve { limits, .. } => Ok((&limits).into()),
            _ => unreachable!("a serve plan"),
        }
    };
    assert_eq!(limits(&[]).unwrap(), expansa_api::Limits::default());
    let d = expansa_api::Limits::default();
    assert_eq!(d.header_timeout, std::time::Duration::from_secs(10));
    assert_eq!(d.request_timeout, std::time::Duration::from_secs(120));
    assert_eq!(
        (d.max_body, d.max_connections, d.max_connections_per_client),
        (1 << 20, 512, 256)
    );
    assert_eq!((d.rate_per_second, d.rate_burst), (100, 200));
    let set = limits(&[
        "--header-timeout",
        "300",
        "--request-timeout",
        "5",
        "--max-body",
        "67108864",
        "--max-connections",
        "65536",
        "--max-connections-per-client",
        "1",
        "--rate-limit",
        "1000000",
        "--rate-burst",
        "1",
    ])
    .unwrap();
    assert_eq!(set.header_timeout, std::time::Duration::from_secs(300));
    assert_eq!(set.max_body, 64 << 20);
    assert_eq!(
        (set.max_connections, set.rate_per_second),
        (65536, 1_000_000)
    );
    for (flag, value) in [
        ("--header-timeout", "0"),
        ("--header-timeout", "301"),
        ("--request-timeout", "3601"),
        ("--max-body", "1023"),
        ("--max-body", "67108865"),
        ("--max-connections", "0"),
        ("--max-connections", "65537"),
        ("--max-connections-per-client", "0"),
        ("--rate-limit", "0"),
        ("--rate-limit", "1000001"),
        ("--rate-burst", "0"),
        ("--log-format", "xml"),
    ] {
        let refused = limits(&[flag, value]).expect_err(&format!("{flag} {value}"));
        assert!(refused.contains(flag), "{flag} {value}: {refused}");
    }
}

/// The server as these tests read it: reads open (`serve --public-reads`), writes with a key.
fn open_reads() -> ApiConfig {
    ApiConfig {
        public_reads: true,
        ..ApiConfig::default()
    }
}

/// A line imported with a column beyond the schema's (`note`): its GET shows it, and a PUT of
/// that same object keeps it; a new column on a line is refused as unknown (a misspelt column
/// is not stored), a customer's attributes are kept, and a name given twice once trimmed and in
/// lower case is refused.
#[tokio::test]
async fn a_rows_extra_columns_survive_a_put_of_what_get_showed() {
    let book = tempfile::tempdir().unwrap();
    let demo = common::root().join("examples/demo");
    for entry in std::fs::read_dir(&demo).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, book.path().join(path.file_name().unwrap())).unwrap();
    }
    let lines = std::fs::read_to_string(demo.join("subscriptions.csv")).unwrap();
    let noted: String = lines
        .lines()
        .enumerate()
        .map(|(n, l)| match n {
            0 => format!("{l},note\n"),
            _ => format!("{l},n{n}\n"),
        })
        .collect();
    std::fs::write(book.path().join("subscriptions.csv"), noted).unwrap();
    let first = lines.lines().nth(1).unwrap().split(',').next().unwrap();
    for s in servers(book.path().to_str().unwrap(), open_reads()).await {
        let r = &s.router;
        let uri = format!("/api/v1/lines/{first}");
        let (status, mut row) = get(r, &uri).await;
        assert_eq!(status, StatusCode::OK, "{row}");
        assert_eq!(row["note"], "n1", "{row}");
        row["quantity"] = "7".into();
        let (st, b, _) = call(r, write("PUT", &uri, Some(&s.key), Some("x1"), row)).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        let (_, after) = get(r, &uri).await;
        assert_eq!(
            (&after["note"], &after["quantity"]),
            (&"n1".into(), &"7".into())
        );
        let mut new = line("XN-1", "padaria-sao-jorge", "10.00");
        new["notes"] = "misspelt".into();
        let (st, b, _) = call(
            r,
            write("POST", "/api/v1/lines", Some(&s.key), Some("x2"), new),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown column"),
            "{b}"
        );
        let twice = r#"{"id": "tw-1", "name": "Twice", "city": "Recife", "City": "Natal"}"#;
        let request = Request::builder()
            .method("POST")
            .uri("/api/v1/customers")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", s.key))
            .header("idempotency-key", "x3")
            .body(Body::from(twice))
            .unwrap();
        let (st, b, _) = call(r, request).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
        assert!(
            b["error"]["message"].as_str().unwrap().contains("twice"),
            "{b}"
        );
        // A pt-BR name is an alias of the format's, as in a header: alone it is the column,
        // beside it the column given twice.
        let alias = serde_json::json!({"id": "al-1", "name": "Alias", "segmento": "mei"});
        let (st, b, _) = call(
            r,
            write("POST", "/api/v1/customers", Some(&s.key), Some("x4"), alias),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let (_, shown) = get(r, "/api/v1/customers/al-1").await;
        assert_eq!(shown["segment"], "mei", "{shown}");
        let both = serde_json::json!({"id": "al-2", "name": "Both", "segment": "simples", "segmento": "mei"});
        let (st, b, _) = call(
            r,
            write("POST", "/api/v1/customers", Some(&s.key), Some("x5"), both),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("\"segment\" is given twice"),
            "{b}"
        );
    }
}
