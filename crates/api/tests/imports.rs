//! Imports through the API (`app(state)`, without a socket): a preview converts uploaded files
//! by the `convert` command's own functions and answers its report and the first rows of the
//! book; a commit imports that book as one event, once. The store after a commit must hold
//! exactly what `expansa convert` then `expansa import --data` of the same files puts there.
//!
//! Fixtures (`tests/fixtures/imports/`), checked by hand:
//! - `conexa/`: three Conexa contracts (API v2 field names, see crates/sources/src/conexa.rs):
//!   contract 1 (customer 10) R$ 500.00 monthly from 2024-01-01; contract 2 (customer 11)
//!   R$ 1,200.00 yearly from 2024-03-01, so R$ 100.00 a month; contract 3 (customer 12) ends
//!   (2024-04-01) before it starts (2024-05-01): refused. With `skip_refused`: 2 lines, MRR at
//!   2024-06-30 = 500 + 1200/12 = R$ 600.00, 2 paying customers; source rows: 3 customers and
//!   2 contracts mapped, 1 contract refused.
//! - `mapping/`: a user's own export, `assinaturas.csv` (`;`, decimal commas, dd/mm/yyyy), and
//!   `mapping.toml` for it (docs/mapping.md). Lines: A-1 cli-901 R$ 199,90 from 2024-02-01;
//!   A-2 cli-902 R$ 1.499,00 from 2024-03-15; A-3 cli-903 R$ 199,90 from 2024-03-01 to
//!   2024-03-31 (inclusive), all monthly. MRR at 2024-03-31 = 199.90 + 1499.00 + 199.90 =
//!   R$ 1,898.80, 3 paying customers. `mapping-wrong-column.toml` names the price column
//!   `valor` (the file has `valor_mensal`): refused at the header.
//! - `baremetrics/subscriptions.csv`: one row of Baremetrics' import template (the preset):
//!   plan_amount 5000 cents = R$ 50.00 a month from 2024-01-01.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use expansa_api::{app, ApiConfig, AppState};
use expansa_import::{Folder, ImportOptions};
use expansa_store::{Actor, AsOf, ImportMode, Store};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tower::ServiceExt;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imports")
}

struct Server {
    router: axum::Router,
    store: Store,
    key: String,
    _dir: tempfile::TempDir,
}

/// A server over an empty SQLite store, with one API key.
async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("imports.db").display());
    let store = Store::open(&url, ImportOptions::default()).await.unwrap();
    let key = store
        .create_key("tests", expansa_store::Role::Admin)
        .await
        .unwrap();
    Server {
        router: app(AppState::new(store.clone(), open_reads())),
        store,
        key,
        _dir: dir,
    }
}

async fn call(router: &axum::Router, request: Request<Body>) -> (StatusCode, Value, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body, replayed)
}

fn post(uri: &str, key: Option<&str>, idempotency: Option<&str>, body: &Value) -> Request<Body> {
    let mut r = Request::post(uri).header("content-type", "application/json");
    if let Some(k) = key {
        r = r.header("authorization", format!("Bearer {k}"));
    }
    if let Some(i) = idempotency {
        r = r.header("idempotency-key", i);
    }
    r.body(Body::from(body.to_string())).unwrap()
}

/// The upload of the files of `dir` named `names`, base64-encoded.
fn files(dir: &Path, names: &[&str]) -> Value {
    let list: Vec<Value> = names
        .iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(n)).unwrap();
            json!({"name": n, "content_base64": base64::engine::general_purpose::STANDARD.encode(bytes)})
        })
        .collect();
    Value::Array(list)
}

fn conexa_request(skip_refused: bool) -> Value {
    json!({
        "from": "conexa",
        "files": files(&fixtures().join("conexa"), &["contracts.json", "customers.json"]),
        "skip_refused": skip_refused,
        "mrr_at": "2024-06",
    })
}

fn mapping_request(mapping: &str) -> Value {
    let dir = fixtures().join("mapping");
    json!({
        "mapping": std::fs::read_to_string(dir.join(mapping)).unwrap(),
        "files": files(&dir, &["assinaturas.csv"]),
        "mrr_at": "2024-03",
    })
}

async fn preview(s: &Server, body: &Value) -> (StatusCode, Value) {
    let (status, body, _) = call(
        &s.router,
        post("/api/v1/imports/preview", Some(&s.key), None, body),
    )
    .await;
    (status, body)
}

async fn commit(s: &Server, token: &str, idempotency: &str) -> (StatusCode, Value, String) {
    call(
        &s.router,
        post(
            &format!("/api/v1/imports/{token}/commit"),
            Some(&s.key),
            Some(idempotency),
            &Value::Null,
        ),
    )
    .await
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
}

/// `file:line: column: value: reason` of every problem of an error answer.
fn problems(body: &Value) -> Vec<String> {
    body["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}:{}: {}: {}: {}",
                p["file"].as_str().unwrap(),
                p["line"],
                p["column"].as_str().unwrap(),
                p["value"].as_str().unwrap(),
                p["reason"].as_str().unwrap()
            )
        })
        .collect()
}

/// What the CLI does for `expansa convert ARGS --out OUT --format json` (its own plan and
/// functions): the report it prints.
fn cli_convert(args: &[&str], out: &Path) -> Value {
    use clap::Parser;
    let mut argv = vec!["expansa", "convert"];
    argv.extend_from_slice(args);
    let out_text = out.display().to_string();
    argv.extend_from_slice(&["--out", &out_text, "--format", "json"]);
    let plan = expansa_commands::Plan::from_cli(expansa_commands::Cli::parse_from(argv)).unwrap();
    let expansa_commands::Command::Convert {
        plan: convert,
        out,
        force,
        mrr_at,
        format,
    } = plan.command
    else {
        panic!("not a convert plan")
    };
    let converted = expansa_commands::convert::run(&convert, &out, force, mrr_at).unwrap();
    let text = expansa_commands::convert::render(
        &converted,
        Some(&out.display().to_string()),
        format,
        plan.locale,
    );
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn previews_and_commits_need_a_key() {
    let s = server().await;
    let body = conexa_request(true);
    for key in [None, Some("nope.nope")] {
        let (status, answer, _) =
            call(&s.router, post("/api/v1/imports/preview", key, None, &body)).await;
        assert_error(status, &answer, StatusCode::UNAUTHORIZED, "unauthorized");
        let (status, answer, _) = call(
            &s.router,
            post("/api/v1/imports/abc/commit", key, Some("k"), &Value::Null),
        )
        .await;
        assert_error(status, &answer, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // A commit is a write: it needs an Idempotency-Key.
    let (status, answer, _) = call(
        &s.router,
        post(
            "/api/v1/imports/abc/commit",
            Some(&s.key),
            None,
            &Value::Null,
        ),
    )
    .await;
    assert_error(
        status,
        &answer,
        StatusCode::BAD_REQUEST,
        "missing_idempotency_key",
    );
    assert!(s.store.events().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_sources_are_the_ten_kinds_with_their_presets() {
    let s = server().await;
    let (status, body, _) = call(
        &s.router,
        Request::get("/api/v1/imports/sources")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let kinds: Vec<&str> = body["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "stripe",
            "recurly",
            "zuora",
            "chargebee",
            "baremetrics",
            "chartmogul",
            "conexa",
            "asaas",
            "iugu",
            "vindi"
        ]
    );
    for (k, kind) in kinds.iter().enumerate() {
        let preset = &body["sources"][k]["preset"];
        let code = ["stripe", "recurly", "zuora", "conexa"].contains(kind);
        assert_eq!(preset.is_null(), code, "{kind}: {preset}");
    }
}

#[tokio::test]
async fn bad_previews_are_400_with_the_reason() {
    let s = server().await;
    let one = files(&fixtures().join("conexa"), &["contracts.json"]);
    let upload = |name: &str| json!([{"name": name, "content_base64": "e30="}]);
    let cases = [
        (json!({"files": one}), "give the source: \"from\" (a source kind) or \"mapping\" (a mapping's TOML), one of them"),
        (json!({"from": "conexa", "mapping": "", "files": one}), "give the source: \"from\" (a source kind) or \"mapping\" (a mapping's TOML), one of them"),
        (json!({"from": "paypal", "files": one}), "--from paypal: unknown source (one of stripe, recurly, zuora, chargebee, baremetrics, chartmogul, conexa, asaas, iugu, vindi)"),
        (json!({"from": "conexa", "files": []}), "send 1 to 20 files; 0 were sent"),
        (json!({"from": "conexa", "files": upload("../contracts.json")}), "file \"../contracts.json\": a file name must be a plain name of 1 to 255 bytes (no folder, no `..`, no control character)"),
        (json!({"from": "conexa", "files": upload("a/b.json")}), "file \"a/b.json\": a file name must be a plain name of 1 to 255 bytes (no folder, no `..`, no control character)"),
        (json!({"from": "conexa", "files": upload("..")}), "file \"..\": a file name must be a plain name of 1 to 255 bytes (no folder, no `..`, no control character)"),
        (json!({"from": "conexa", "files": upload("a\u{0}b")}), "file \"a\\0b\": a file name must be a plain name of 1 to 255 bytes (no folder, no `..`, no control character)"),
        (json!({"from": "conexa", "files": upload("")}), "file \"\": a file name must be a plain name of 1 to 255 bytes (no folder, no `..`, no control character)"),
        (json!({"from": "conexa", "files": [{"name": "a.json", "content_base64": "e30="}, {"name": "A.JSON", "content_base64": "e30="}]}), "file \"A.JSON\" is sent twice (names are compared without case)"),
        (json!({"from": "conexa", "files": [{"name": "a.json", "content_base64": "not base64!"}]}), "file \"a.json\": content_base64 is not base64: Invalid symbol 32, offset 3."),
        (json!({"from": "conexa", "files": one, "timezone": "Mars/Olympus"}), "--timezone"),
        (json!({"from": "conexa", "files": one, "currency": "XYZ"}), "--currency XYZ: unknown ISO 4217 currency code"),
        (json!({"from": "conexa", "files": one, "mrr_at": "2024-13"}), "--mrr-at 2024-13: expected a month, YYYY-MM"),
        (json!({"from": "conexa", "files": one, "mrr_at": "0224-01"}), "--mrr-at 0224-01: a report's months run from 1900-01 to 9999-12"),
        (json!({"from": "conexa", "files": one, "extra": 1}), "unknown field `extra`"),
    ];
    let many: Vec<Value> = (0..21)
        .map(|k| json!({"name": format!("f{k}.json"), "content_base64": ""}))
        .collect();
    let cases = cases.into_iter().chain([(
        json!({"from": "conexa", "files": many}),
        "send 1 to 20 files; 21 were sent",
    )]);
    for (body, message) in cases {
        let (status, answer) = preview(&s, &body).await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "bad_request");
        let got = answer["error"]["message"].as_str().unwrap();
        assert!(got.contains(message), "{body}: {got}");
    }
    // Not JSON at all: 415 like every other body.
    let request = Request::post("/api/v1/imports/preview")
        .header("authorization", format!("Bearer {}", s.key))
        .header("content-type", "text/csv")
        .body(Body::from("a,b"))
        .unwrap();
    let (status, answer, _) = call(&s.router, request).await;
    assert_error(
        status,
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
}

#[tokio::test]
async fn a_refused_conversion_is_422_with_every_problem_and_keeps_nothing() {
    let s = server().await;
    let (status, body) = preview(&s, &conexa_request(false)).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_source",
    );
    assert_eq!(
        body["error"]["message"],
        "the conversion found 1 problem(s); nothing was written"
    );
    // Contract 3 ends before it starts; the file is named as uploaded (no server folder).
    assert_eq!(
        problems(&body),
        ["contracts.json:3: endDate: 2024-04-01: ends before it starts (startDate 2024-05-01)"]
    );
    assert!(body.get("token").is_none());
    // A file that is not what `from` says: one problem naming it, by its uploaded name.
    let (status, body) = preview(
        &s,
        &json!({"from": "conexa", "files": [{"name": "contracts.json", "content_base64": "bm90IGpzb24="}]}),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_source",
    );
    let listed = problems(&body);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].starts_with("contracts.json:"), "{listed:?}");
    assert!(!listed[0].contains("/tmp"), "{listed:?}");
    // Problems about the upload as a whole name it by what the client sent, never by the
    // server's folders: one file is the input itself; several are the folder `upload`.
    let csv = json!({"name": "export.csv", "content_base64": "YSxiCjEsMgo="});
    let notes = json!({"name": "notes.txt", "content_base64": ""});
    let expected = |file: &str, found: &str| {
        format!(
            "{file}:0: file: : has no contracts.json or recurring_sales.json: is this a Conexa \
             export (the lists GET /contracts and GET /recurringSales return)? (found: {found})"
        )
    };
    for (upload, problem) in [
        (json!([csv]), expected("export.csv", "export.csv")),
        (
            json!([csv, notes]),
            expected("upload", "export.csv, notes.txt"),
        ),
    ] {
        let (status, body) = preview(&s, &json!({"from": "conexa", "files": upload})).await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_source",
        );
        assert_eq!(problems(&body), [problem]);
        assert!(!body.to_string().contains("expansa-upload"), "{body}");
    }
}

#[tokio::test]
async fn a_preview_answers_the_clis_report_and_the_first_rows() {
    let s = server().await;
    let (status, body) = preview(&s, &conexa_request(true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = &body["report"];
    // Checked by hand (module documentation).
    assert_eq!(report["rows"], json!({"mapped": 5, "refused": 1}));
    assert_eq!(report["mrr_at"], "2024-06-30");
    assert_eq!(report["mrr"], "600.00");
    assert_eq!(report["customers_paying"], 2);
    assert_eq!(
        report["written"],
        json!({"lines": 2, "customers": 3, "products": 2, "contracts": 2})
    );
    // The same report as `expansa convert` of the same files (but for the book's name).
    let out = tempfile::tempdir().unwrap();
    let input = fixtures().join("conexa");
    let cli = cli_convert(
        &[
            "--from",
            "conexa",
            "--input",
            input.to_str().unwrap(),
            "--skip-refused",
            "--mrr-at",
            "2024-06",
        ],
        &out.path().join("book"),
    );
    let token = body["token"].as_str().unwrap();
    let mut expected = cli.clone();
    expected["book"] = json!(format!("import {token}"));
    assert_eq!(report, &expected);
    // The first rows of the book as written: header and rows of subscriptions.csv.
    let lines = &body["preview"]["subscriptions"];
    let columns: Vec<&str> = lines["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        &columns[..4],
        ["id", "customer_id", "contract_id", "product_id"]
    );
    let rows = lines["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let field = |row: &Value, name: &str| {
        let k = columns.iter().position(|c| *c == name).unwrap();
        row[k].as_str().unwrap().to_string()
    };
    assert_eq!(field(&rows[0], "id"), "contract-1");
    assert_eq!(field(&rows[0], "unit_price"), "500");
    assert_eq!(field(&rows[1], "id"), "contract-2");
    assert_eq!(field(&rows[1], "billing_period_months"), "12");
    assert_eq!(body["preview"]["customers"]["rows"][2][1], "Clínica Serena");
    // A kind converted by code has no mapping to show.
    assert!(body["mapping"].is_null());
    // A preview writes nothing to the store.
    assert!(s.store.events().await.unwrap().is_empty());
}

/// The CLI's `convert` then `import --data` of the same files into a new store: its files.
async fn cli_import(args: &[&str]) -> Vec<(&'static str, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("book");
    cli_convert(args, &book);
    let url = format!("sqlite:{}", dir.path().join("cli.db").display());
    let store = Store::open(&url, ImportOptions::default()).await.unwrap();
    let actor = Actor {
        who: "cli".into(),
        why: "import".into(),
    };
    store
        .import(&Folder(&book), ImportMode::Merge, &actor)
        .await
        .unwrap();
    store.files(AsOf::Latest).await.unwrap()
}

#[tokio::test]
async fn a_commit_is_one_event_equal_to_the_clis_convert_and_import_and_happens_once() {
    let conexa = fixtures().join("conexa");
    let mapping = fixtures().join("mapping");
    let text = |p: PathBuf| p.to_str().unwrap().to_string();
    let cases = [
        (
            conexa_request(true),
            vec![
                "--from".to_string(),
                "conexa".into(),
                "--input".into(),
                text(conexa),
                "--skip-refused".into(),
            ],
            [
                ("subscriptions.csv", 2),
                ("customers.csv", 3),
                ("contracts.csv", 2),
            ],
        ),
        (
            mapping_request("mapping.toml"),
            vec![
                "--map".to_string(),
                text(mapping.join("mapping.toml")),
                "--input".into(),
                text(mapping.join("assinaturas.csv")),
            ],
            [
                ("subscriptions.csv", 3),
                ("customers.csv", 3),
                ("contracts.csv", 0),
            ],
        ),
    ];
    for (request, cli_args, counts) in cases {
        let s = server().await;
        let (status, body) = preview(&s, &request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = body["token"].as_str().unwrap().to_string();

        let (status, first, replayed) = commit(&s, &token, "commit-1").await;
        assert_eq!(status, StatusCode::OK, "{first}");
        assert_eq!(replayed, "false");
        let events = s.store.events().await.unwrap();
        assert_eq!(events.len(), 1, "one event");
        assert_eq!(events[0].kind, "import");
        assert_eq!(first["event"], events[0].id);
        assert_eq!(first["token"], token.as_str());
        for (file, n) in counts {
            let added = first["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["file"] == file)
                .map_or(json!(0), |f| f["added"].clone());
            assert_eq!(added, json!(n), "{file}: {first}");
        }

        // The store holds what the CLI's `convert` then `import --data` puts in another store.
        let ours = s.store.files(AsOf::Latest).await.unwrap();
        let cli_args: Vec<&str> = cli_args.iter().map(String::as_str).collect();
        assert_eq!(ours, cli_import(&cli_args).await);
        assert!(ours.iter().any(|(f, _)| *f == "subscriptions.csv"));

        // Again under the same key, or under another: the first answer, nothing done.
        for key in ["commit-1", "commit-2"] {
            let (status, again, replayed) = commit(&s, &token, key).await;
            assert_eq!(status, StatusCode::OK, "{again}");
            assert_eq!(again, first, "{key}");
            assert_eq!(replayed, "true", "{key}");
        }
        assert_eq!(s.store.events().await.unwrap().len(), 1, "still one event");
        // The first key for another request (another token) is refused.
        let other = "0123456789abcdef0123456789abcdef";
        let (status, body, _) = commit(&s, other, "commit-1").await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
        );
        // An unknown token.
        let (status, body, _) = commit(&s, other, "commit-3").await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(s.store.events().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_users_mapping_previews_and_a_wrong_column_is_refused_at_the_header() {
    let s = server().await;
    let (status, body) = preview(&s, &mapping_request("mapping-wrong-column.toml")).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_source",
    );
    assert_eq!(
        problems(&body),
        [
            "assinaturas.csv:1: valor: : no such column: is this the table the minha-planilha \
          mapping reads? (the header has codigo, cliente, nome, plano, valor_mensal, inicio, fim)"
        ]
    );

    let request = mapping_request("mapping.toml");
    let (status, body) = preview(&s, &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = &body["report"];
    assert_eq!(report["source"], "minha-planilha");
    assert_eq!(report["rows"], json!({"mapped": 3}));
    assert_eq!(report["mrr_at"], "2024-03-31");
    assert_eq!(report["mrr"], "1898.80");
    assert_eq!(report["customers_paying"], 3);
    assert_eq!(report["written"]["lines"], 3);
    // The mapping sent is answered back (the page keeps showing what it converted with).
    assert_eq!(body["mapping"], request["mapping"]);
    // The report is the CLI's for the same mapping and file, but for the book's name.
    let dir = fixtures().join("mapping");
    let out = tempfile::tempdir().unwrap();
    let mut cli = cli_convert(
        &[
            "--map",
            dir.join("mapping.toml").to_str().unwrap(),
            "--input",
            dir.join("assinaturas.csv").to_str().unwrap(),
            "--mrr-at",
            "2024-03",
        ],
        &out.path().join("book"),
    );
    cli["book"] = report["book"].clone();
    assert_eq!(report, &cli);
    // The first rows: the book's lines as written (decimal points, ISO days).
    let lines = &body["preview"]["subscriptions"];
    assert_eq!(
        lines["columns"],
        json!([
            "id",
            "customer_id",
            "contract_id",
            "product_id",
            "quantity",
            "unit_price",
            "discount_pct",
            "currency",
            "billing_period_months",
            "billing_interval",
            "billing_interval_count",
            "start_date",
            "end_date",
            "sold_on",
            "revises"
        ])
    );
    assert_eq!(
        lines["rows"],
        json!([
            [
                "A-1",
                "cli-901",
                "",
                "plano-basico",
                "1",
                "199.9",
                "",
                "",
                "1",
                "",
                "",
                "2024-02-01",
                "",
                "",
                ""
            ],
            [
                "A-2",
                "cli-902",
                "",
                "plano-pro",
                "1",
                "1499",
                "",
                "",
                "1",
                "",
                "",
                "2024-03-15",
                "",
                "",
                ""
            ],
            [
                "A-3",
                "cli-903",
                "",
                "plano-basico",
                "1",
                "199.9",
                "",
                "",
                "1",
                "",
                "",
                "2024-03-01",
                "2024-03-31",
                "",
                ""
            ]
        ])
    );
}

#[tokio::test]
async fn a_flat_kind_answers_its_preset_for_editing() {
    let s = server().await;
    let dir = fixtures().join("baremetrics");
    let (status, body) = preview(
        &s,
        &json!({"from": "baremetrics", "files": files(&dir, &["subscriptions.csv"]), "mrr_at": "2024-01"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["report"]["mrr"], "50.00");
    assert_eq!(body["report"]["rows"], json!({"mapped": 1}));
    let (_, sources, _) = call(
        &s.router,
        Request::get("/api/v1/imports/sources")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let preset = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "baremetrics")
        .unwrap()["preset"]
        .clone();
    assert!(preset.as_str().unwrap().contains("plan_amount"));
    assert_eq!(body["mapping"], preset);
}

#[tokio::test]
async fn pending_books_are_bounded() {
    let s = server().await;
    let body = conexa_request(true);
    let mut tokens = Vec::new();
    for _ in 0..=expansa_api::imports::MAX_PENDING {
        let (status, answer) = preview(&s, &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        tokens.push(answer["token"].as_str().unwrap().to_string());
    }
    // The oldest was dropped for the newest; the newest commits.
    let (status, answer, _) = commit(&s, &tokens[0], "oldest").await;
    assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found");
    let (status, answer, _) = commit(&s, tokens.last().unwrap(), "newest").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// Stripe API JSON (`crates/sources/tests/fixtures/stripe/api-invoices`, its NOTES.md): four
/// files uploaded, converted in São Paulo's days, in USD. By hand (NOTES.md): MRR at
/// 2024-06-30 = si_h1@2024-05-05 2 × 40 + si_h2 10 = 90; 4 lines (si_h1, its revision, si_h2,
/// si_old), one customer with lines (cus_J).
#[tokio::test]
async fn stripe_json_previews_as_the_cli_converts_it() {
    let s = server().await;
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../sources/tests/fixtures/stripe/api-invoices");
    let names = [
        "subscriptions.json",
        "invoices.json",
        "customers.json",
        "products.json",
    ];
    let (status, body) = preview(
        &s,
        &json!({"from": "stripe", "files": files(&dir, &names), "currency": "USD",
                "timezone": "America/Sao_Paulo", "mrr_at": "2024-06"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = &body["report"];
    assert_eq!(report["mrr"], "90.00");
    assert_eq!(report["currency"], "USD");
    assert_eq!(report["written"]["lines"], 4);
    assert_eq!(report["written"]["customers"], 1);
    assert!(!report["not_rebuilt"].as_array().unwrap().is_empty());
    let ids: Vec<&str> = body["preview"]["subscriptions"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ["si_h1", "si_h1@2024-05-05", "si_h2", "si_old"]);
    assert!(body["mapping"].is_null());
    let out = tempfile::tempdir().unwrap();
    let mut cli = cli_convert(
        &[
            "--from",
            "stripe",
            "--input",
            dir.to_str().unwrap(),
            "--currency",
            "USD",
            "--timezone",
            "America/Sao_Paulo",
            "--mrr-at",
            "2024-06",
        ],
        &out.path().join("book"),
    );
    cli["book"] = report["book"].clone();
    assert_eq!(report, &cli);
}

/// The server as these tests read it: reads open (`serve --public-reads`), writes with a key.
fn open_reads() -> ApiConfig {
    ApiConfig {
        public_reads: true,
        ..ApiConfig::default()
    }
}
