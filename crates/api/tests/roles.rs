//! The role matrix: every operation of the OpenAPI document and every page, asked by nobody,
//! a viewer, an analyst and an admin (each by session and by API key), a disabled user, an
//! expired session, a forged cookie and a session that sends another user's CSRF token;
//! each answer 401, 403 or let through as the table below says, and nothing changed by a
//! refused request. Through `app(state)`, without a socket; on SQLite and, when
//! `EXPANSA_TEST_POSTGRES` is set, PostgreSQL.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use expansa_api::auth::{csrf_token, CSRF_HEADER, SESSION_COOKIE};
use expansa_api::{app, ApiConfig, AppState};
use expansa_store::{Role, Store};
use http_body_util::BodyExt;
use serde_json::Value;
use std::path::Path;
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery";

async fn stores(dir: &Path) -> Vec<Store> {
    common::stores(dir, "roles", "testdata/contracts").await
}

/// What an operation needs, by this test's own reading of the roles (docs/api.md): `None` is
/// open to anyone.
fn expected(method: &str, route: &str, apply: bool) -> Option<Role> {
    match (method, route) {
        ("GET", "/" | "/login" | "/assets/app.js" | "/openapi.json") | ("POST", "/login") => None,
        // Signed by the sender, not by a session or key (a delivery without a signature is
        // 400, or 404 when the server has no secret for it).
        ("POST", "/api/v1/webhooks/stripe" | "/api/v1/webhooks/generic") => None,
        ("GET", "/api/v1/audit" | "/api/v1/users" | "/api/v1/webhooks") => Some(Role::Admin),
        ("GET", "/api/v1/portal/links" | "/api/v1/portal/amendments") => Some(Role::Admin),
        ("PUT", "/api/v1/dashboards/{id}") => Some(Role::Analyst),
        ("POST", "/api/v1/quotes/amend" | "/api/v1/quotes/renew") if !apply => Some(Role::Analyst),
        ("GET", _) => Some(Role::Viewer),
        _ => Some(Role::Admin),
    }
}

/// A path of `route` with its parameters filled in (ids that exist nowhere, so that a write let
/// through is refused by the handler and changes nothing either).
fn path_of(route: &str) -> String {
    route
        .replace("{table}", "customers")
        .replace("{id}", "nope")
        .replace("{source}", "stripe")
        .replace("{token}", "nope")
        .replace("{name}", "nope")
        .replace("{*file}", "app.js")
}

/// Who asks.
#[derive(Clone, Debug)]
enum Who {
    Nobody,
    Session(Role, String),
    Key(Role, String),
    Disabled(String),
    Expired(String),
    Forged,
    /// A viewer's session sending the admin's CSRF token.
    WrongCsrf(String, String),
    /// An admin's session without the CSRF token.
    NoCsrf(String),
}

impl Who {
    /// The role it acts with, when it is let in at all.
    fn role(&self) -> Option<Role> {
        match self {
            Who::Session(r, _) | Who::Key(r, _) => Some(*r),
            Who::WrongCsrf(..) => Some(Role::Viewer),
            Who::NoCsrf(_) => Some(Role::Admin),
            _ => None,
        }
    }

    fn sign(&self, mut r: axum::http::request::Builder) -> axum::http::request::Builder {
        let cookie = |t: &str| format!("{SESSION_COOKIE}={t}");
        match self {
            Who::Nobody => {}
            Who::Session(_, t) | Who::Disabled(t) | Who::Expired(t) => {
                r = r
                    .header("cookie", cookie(t))
                    .header(CSRF_HEADER, csrf_token(t));
            }
            Who::Key(_, k) => r = r.header("authorization", format!("Bearer {k}")),
            Who::Forged => {
                let t = "ab".repeat(32);
                r = r
                    .header("cookie", cookie(&t))
                    .header(CSRF_HEADER, csrf_token(&t));
            }
            Who::WrongCsrf(mine, theirs) => {
                r = r
                    .header("cookie", cookie(mine))
                    .header(CSRF_HEADER, csrf_token(theirs));
            }
            Who::NoCsrf(t) => r = r.header("cookie", cookie(t)),
        }
        r
    }
}

async fn call(router: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    // The live stream never ends: its status is the answer.
    if response
        .headers()
        .get("content-type")
        .is_some_and(|t| t == "text/event-stream")
    {
        return (status, Value::Null);
    }
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// What a refused request must not have changed: the event log, saved dashboards, users.
async fn snapshot(store: &Store) -> (usize, Option<String>, Vec<expansa_store::User>) {
    (
        store.events().await.unwrap().len(),
        store.dashboard("nope").await.unwrap(),
        store.users().await.unwrap(),
    )
}

#[tokio::test]
async fn every_endpoint_answers_every_role_as_the_table_says() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        let mut sessions = Vec::new();
        for (name, role) in [
            ("viewer", Role::Viewer),
            ("analyst", Role::Analyst),
            ("admin", Role::Admin),
            ("disabled", Role::Admin),
            ("expired", Role::Admin),
        ] {
            store.add_user(name, role, PASSWORD).await.unwrap();
            sessions.push(store.create_session(name).await.unwrap());
        }
        store.disable_user("disabled").await.unwrap();
        sqlx::query(
            "UPDATE sessions SET seen_unix = seen_unix - 100000 WHERE user_name = 'expired'",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let mut whos = vec![Who::Nobody, Who::Forged];
        for (i, role) in Role::ALL.into_iter().enumerate() {
            whos.push(Who::Session(role, sessions[i].clone()));
            let key = store.create_key(role.name(), role).await.unwrap();
            whos.push(Who::Key(role, key));
        }
        whos.push(Who::Disabled(sessions[3].clone()));
        whos.push(Who::Expired(sessions[4].clone()));
        whos.push(Who::WrongCsrf(sessions[0].clone(), sessions[2].clone()));
        whos.push(Who::NoCsrf(sessions[2].clone()));

        let router = app(AppState::new(store.clone(), ApiConfig::default()));
        let (st, doc) = call(
            &router,
            Request::get("/openapi.json").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        let mut operations: Vec<(String, String, bool)> = Vec::new();
        for (route, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                let method = method.to_uppercase();
                operations.push((method.clone(), route.clone(), false));
                if route.starts_with("/api/v1/quotes/") {
                    operations.push((method, route.clone(), true));
                }
            }
        }
        assert!(operations.len() >= 25, "{operations:?}");
        for (method, route) in [
            ("GET", "/"),
            ("GET", "/login"),
            ("GET", "/assets/app.js"),
            ("GET", "/openapi.json"),
            ("POST", "/login"),
        ] {
            operations.push((method.into(), route.into(), false));
        }
        let mut n = 0;
        for (method, route, apply) in &operations {
            let needs = expected(method, route, *apply);
            for who in &whos {
                n += 1;
                // A well-formed quote (of a contract the book lacks): the role decides.
                let body = if route.ends_with("/amend") {
                    serde_json::json!({"contract": "nope", "effective": "2024-01-01", "apply": apply})
                        .to_string()
                } else if route.starts_with("/api/v1/quotes/") {
                    serde_json::json!({"contract": "nope", "apply": apply}).to_string()
                } else {
                    "{}".to_string()
                };
                let request = who
                    .sign(
                        Request::builder()
                            .method(method.as_str())
                            .uri(path_of(route)),
                    )
                    .header("content-type", "application/json")
                    .header("idempotency-key", format!("matrix-{n}"))
                    .body(Body::from(body))
                    .unwrap();
                let before = snapshot(&store).await;
                let (status, answer) = call(&router, request).await;
                let write = method != "GET";
                let want = match (needs, who) {
                    (None, _) => None,
                    (Some(_), Who::WrongCsrf(..) | Who::NoCsrf(_)) if write => {
                        Some(StatusCode::FORBIDDEN)
                    }
                    (Some(need), _) => match who.role() {
                        None => Some(StatusCode::UNAUTHORIZED),
                        Some(r) if r < need => Some(StatusCode::FORBIDDEN),
                        Some(_) => None,
                    },
                };
                let what =
                    format!("{method} {route} (apply {apply}) by {who:?}: {status} {answer}");
                match want {
                    Some(refused) => {
                        assert_eq!(status, refused, "{what}");
                        let code = if refused == StatusCode::UNAUTHORIZED {
                            "unauthorized"
                        } else {
                            "forbidden"
                        };
                        assert_eq!(answer["error"]["code"], code, "{what}");
                        assert_eq!(
                            snapshot(&store).await,
                            before,
                            "a refused request changed something: {what}"
                        );
                    }
                    None => assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{what}"
                    ),
                }
            }
        }
        // Log out ends the session: its cookie is then refused.
        let viewer = Who::Session(Role::Viewer, sessions[0].clone());
        let logout = viewer
            .sign(Request::post("/logout"))
            .body(Body::empty())
            .unwrap();
        let (st, b) = call(&router, logout).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        let read = viewer
            .sign(Request::get("/api/v1/session"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&router, read).await.0, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn login_sets_a_session_cookie_and_refuses_wrong_passwords() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        store
            .add_user("ana", Role::Analyst, PASSWORD)
            .await
            .unwrap();
        let router = app(AppState::new(store.clone(), ApiConfig::default()));
        let login = |body: String, content_type: &str| {
            Request::post("/login")
                .header("content-type", content_type)
                .body(Body::from(body))
                .unwrap()
        };
        let json = serde_json::json!({"user": "ana", "password": PASSWORD}).to_string();
        let response = router
            .clone()
            .oneshot(login(json, "application/json"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_string();
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        assert!(!cookie.contains("Secure"), "served without TLS: {cookie}");
        let body: Value =
            serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes())
                .unwrap();
        assert_eq!(body["role"], "analyst");
        let token = cookie
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches(&format!("{SESSION_COOKIE}="))
            .to_string();
        assert_eq!(token.len(), 64);
        assert_eq!(body["csrf"], csrf_token(&token));
        let me = Request::get("/api/v1/session")
            .header("cookie", format!("{SESSION_COOKIE}={token}"))
            .body(Body::empty())
            .unwrap();
        let (st, b) = call(&router, me).await;
        assert_eq!(
            (st, b["name"].as_str(), b["role"].as_str()),
            (StatusCode::OK, Some("ana"), Some("analyst"))
        );
        // A form logs in too, and is sent to the dashboard.
        let form = format!("user=ana&password={}", PASSWORD.replace(' ', "+"));
        let response = router
            .clone()
            .oneshot(login(form, "application/x-www-form-urlencoded"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()["location"], "/");
        // A wrong password and an unknown user: the same 401, no cookie.
        for (user, password) in [("ana", "wrong password!"), ("nobody", PASSWORD)] {
            let json = serde_json::json!({"user": user, "password": password}).to_string();
            let response = router
                .clone()
                .oneshot(login(json, "application/json"))
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert!(response.headers().get("set-cookie").is_none());
        }
        // A login posted from another site is refused.
        let json = serde_json::json!({"user": "ana", "password": PASSWORD}).to_string();
        let cross = Request::post("/login")
            .header("content-type", "application/json")
            .header("host", "127.0.0.1:8080")
            .header("origin", "https://evil.example")
            .body(Body::from(json))
            .unwrap();
        assert_eq!(call(&router, cross).await.0, StatusCode::FORBIDDEN);
        // Attempts at one name are limited: the sixth within a minute is 429.
        let mut statuses = Vec::new();
        for _ in 0..6 {
            let json =
                serde_json::json!({"user": "ana", "password": "wrong password!"}).to_string();
            statuses.push(call(&router, login(json, "application/json")).await.0);
        }
        assert!(
            statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
            "{statuses:?}"
        );
        // ... from that address only: guessing from one address cannot lock ana out of another.
        let from = |ip: [u8; 4], password: &str| {
            let json = serde_json::json!({"user": "ana", "password": password}).to_string();
            let mut request = login(json, "application/json");
            request.extensions_mut().insert(axum::extract::ConnectInfo(
                std::net::SocketAddr::from((ip, 40000)),
            ));
            request
        };
        for _ in 0..6 {
            call(&router, from([127, 0, 0, 2], "wrong password!")).await;
        }
        assert_eq!(
            call(&router, from([127, 0, 0, 2], PASSWORD)).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
        let response = router
            .clone()
            .oneshot(from([127, 0, 0, 3], PASSWORD))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_string();
        let session = cookie.split(';').next().unwrap().to_string();
        let csrf = csrf_token(session.trim_start_matches(&format!("{SESSION_COOKIE}=")));
        // Logging out answers a cookie that removes it (empty, expired).
        let out = Request::post("/logout")
            .header("cookie", &session)
            .header(CSRF_HEADER, &csrf)
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(out).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let removal = response.headers()["set-cookie"].to_str().unwrap();
        assert!(
            removal.starts_with(&format!("{SESSION_COOKIE}=;")) && removal.contains("Max-Age=0"),
            "{removal}"
        );
    }
}

/// An analyst prices quotes but never records one, whatever the body's shape: serde reads a
/// JSON array of the fields in order as the same request, and the role check reads the body
/// as the handler does.
#[tokio::test]
async fn an_analyst_cannot_apply_a_quote_in_any_body_shape() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        let key = store.create_key("ana", Role::Analyst).await.unwrap();
        let router = app(AppState::new(store.clone(), ApiConfig::default()));
        let before = snapshot(&store).await;
        for (route, body) in [
            ("/api/v1/quotes/renew", r#"["K4",null,null,true]"#),
            (
                "/api/v1/quotes/amend",
                r#"["K1","2024-01-23",["SEAT:1"],[],[],[],null,true]"#,
            ),
            ("/api/v1/quotes/renew", r#"{"contract":"K4","apply":true}"#),
        ] {
            let request = Request::post(route)
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .header("idempotency-key", format!("k-{route}-{body}"))
                .body(Body::from(body))
                .unwrap();
            let (status, answer) = call(&router, request).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{route} {body}: {answer}");
        }
        // The same array without apply is a price, as the handler reads it.
        let request = Request::post("/api/v1/quotes/renew")
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(r#"["K4",null,null,false]"#))
            .unwrap();
        let (status, answer) = call(&router, request).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["totals"][0]["total"], "1440.00");
        assert_eq!(snapshot(&store).await, before);
    }
}

/// Public reads (loopback only) answer requests that name a loopback host: a page of another
/// site resolved to 127.0.0.1 (DNS rebinding) is refused.
#[tokio::test]
async fn public_reads_answer_loopback_names_only() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        let config = ApiConfig {
            public_reads: true,
            ..ApiConfig::default()
        };
        let router = app(AppState::new(store.clone(), config));
        for (host, want) in [
            ("127.0.0.1:8080", StatusCode::OK),
            ("localhost:8080", StatusCode::OK),
            ("[::1]:8080", StatusCode::OK),
            ("localhost", StatusCode::OK),
            ("attacker.example:8080", StatusCode::FORBIDDEN),
            ("127.0.0.1.attacker.example", StatusCode::FORBIDDEN),
        ] {
            let request = Request::get("/api/v1/customers?limit=1")
                .header("host", host)
                .body(Body::empty())
                .unwrap();
            let (status, answer) = call(&router, request).await;
            assert_eq!(status, want, "{host}: {answer}");
        }
    }
}

#[tokio::test]
async fn users_keep_hashed_passwords_with_a_minimum_length() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        let short = store
            .add_user("bob", Role::Viewer, "short")
            .await
            .unwrap_err();
        assert!(short.to_string().contains("at least 12"), "{short}");
        assert!(!short.to_string().contains("short\""), "{short}");
        store.add_user("bob", Role::Viewer, PASSWORD).await.unwrap();
        assert!(store.add_user("bob", Role::Admin, PASSWORD).await.is_err());
        assert!(store
            .add_user("bad name", Role::Admin, PASSWORD)
            .await
            .is_err());
        let row: (String,) = sqlx::query_as("SELECT password_hash FROM users WHERE name = 'bob'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert!(row.0.starts_with("$argon2id$"), "{}", row.0);
        assert!(store.verify_login("bob", PASSWORD).await.unwrap().is_some());
        store.set_role("bob", Role::Analyst).await.unwrap();
        assert_eq!(
            store.user("bob").await.unwrap().unwrap().role,
            Role::Analyst
        );
        store.disable_user("bob").await.unwrap();
        assert!(store.verify_login("bob", PASSWORD).await.unwrap().is_none());
        store
            .reset_password("bob", "another long password")
            .await
            .unwrap();
        assert!(store
            .verify_login("bob", "another long password")
            .await
            .unwrap()
            .is_some());
        assert!(store.set_role("nobody", Role::Admin).await.is_err());
    }
}

/// Waits for the audit (written beside the answers) to hold `n` entries.
async fn audited(store: &Store, n: usize) {
    let all = expansa_store::AuditQuery {
        since: None,
        user: None,
        key: None,
        limit: expansa_store::MAX_AUDIT_LIMIT,
    };
    for _ in 0..200 {
        if store.audit_log(&all).await.unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the audit never held {n} entries");
}

#[tokio::test]
async fn the_audit_lists_reads_of_customer_data_newest_first_for_admins() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        store
            .add_user("vera", Role::Viewer, PASSWORD)
            .await
            .unwrap();
        let vera = Who::Session(Role::Viewer, store.create_session("vera").await.unwrap());
        let reporter = Who::Key(
            Role::Viewer,
            store.create_key("reporter", Role::Viewer).await.unwrap(),
        );
        let admin = Who::Key(
            Role::Admin,
            store.create_key("boss", Role::Admin).await.unwrap(),
        );
        let router = app(AppState::new(store.clone(), ApiConfig::default()));
        let get = |who: &Who, uri: &str| {
            who.sign(Request::get(uri.to_string()))
                .body(Body::empty())
                .unwrap()
        };
        for (n, (who, uri)) in [
            (&vera, "/api/v1/customers?limit=1"),
            (&reporter, "/api/v1/events"),
            (&vera, "/api/v1/contracts/nope/terms?at=2024-01-01"),
        ]
        .into_iter()
        .enumerate()
        {
            call(&router, get(who, uri)).await;
            // One at a time, so that the log's order is the requests' order.
            audited(&store, n + 1).await;
        }
        // Not logged: the session read, and the audit itself.
        call(&router, get(&vera, "/api/v1/session")).await;
        let (st, all) = call(&router, get(&admin, "/api/v1/audit")).await;
        assert_eq!(st, StatusCode::OK, "{all}");
        let paths: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths.len(), 3, "{all}");
        assert_eq!(paths[0], "/api/v1/contracts/nope/terms?at=2024-01-01");
        assert_eq!(all[0]["actor"], "user vera");
        assert_eq!(all[0]["method"], "GET");
        assert_eq!(all[0]["status"], 404);
        assert!(all[0]["at"].as_str().unwrap().ends_with('Z'));
        let (_, mine) = call(&router, get(&admin, "/api/v1/audit?user=vera")).await;
        assert_eq!(mine.as_array().unwrap().len(), 2, "{mine}");
        let (_, keyed) = call(&router, get(&admin, "/api/v1/audit?key=reporter")).await;
        assert_eq!(keyed.as_array().unwrap().len(), 1, "{keyed}");
        assert_eq!(keyed[0]["path"], "/api/v1/events");
        assert!(keyed[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("reporter ("));
        let (_, none) = call(&router, get(&admin, "/api/v1/audit?key=vera")).await;
        assert_eq!(none.as_array().unwrap().len(), 0, "{none}");
        let (_, one) = call(&router, get(&admin, "/api/v1/audit?limit=1")).await;
        assert_eq!(one.as_array().unwrap().len(), 1);
        assert_eq!(one[0]["id"], all[0]["id"]);
        let (_, later) = call(&router, get(&admin, "/api/v1/audit?since=2999-01-01")).await;
        assert_eq!(later.as_array().unwrap().len(), 0, "{later}");
        let (_, today) = call(
            &router,
            get(&admin, "/api/v1/audit?since=2000-01-01T00:00:00-03:00"),
        )
        .await;
        assert_eq!(today.as_array().unwrap().len(), 3, "{today}");
        for bad in [
            "limit=10001",
            "limit=0",
            "since=yesterday",
            "as_of=2024-01-01",
            "user=bad%20name",
            "who=vera",
        ] {
            let (st, b) = call(&router, get(&admin, &format!("/api/v1/audit?{bad}"))).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {b}");
        }
        // A viewer may not read it.
        let (st, _) = call(&router, get(&vera, "/api/v1/audit")).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn admins_manage_users_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        store
            .add_user("maria", Role::Admin, PASSWORD)
            .await
            .unwrap();
        let maria = Who::Session(Role::Admin, store.create_session("maria").await.unwrap());
        let router = app(AppState::new(store.clone(), ApiConfig::default()));
        let send = |who: &Who, method: &str, uri: &str, body: Value| {
            who.sign(Request::builder().method(method).uri(uri.to_string()))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap()
        };
        let secret = "a viewer's long secret";
        let new = serde_json::json!({"name": "vitor", "role": "viewer", "password": secret});
        let (st, b) = call(&router, send(&maria, "POST", "/api/v1/users", new.clone())).await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(
            b,
            serde_json::json!({"name": "vitor", "role": "viewer", "created_at": b["created_at"], "disabled_at": null})
        );
        let (st, b) = call(&router, send(&maria, "POST", "/api/v1/users", new)).await;
        assert_eq!(
            (st, b["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("conflict")),
            "{b}"
        );
        // Refusals never repeat the password.
        for (body, said) in [
            (
                serde_json::json!({"name": "rui", "role": "viewer", "password": "shortpass"}),
                "at least 12",
            ),
            (
                serde_json::json!({"name": "rui", "role": "owner", "password": secret}),
                "role",
            ),
            (
                serde_json::json!({"name": "r u i", "role": "viewer", "password": secret}),
                "user name",
            ),
            (
                serde_json::json!({"name": "rui", "role": "viewer", "password": 123456789012345_u64}),
                "\"password\" must be a string",
            ),
            (
                serde_json::json!({"name": "rui", "role": "viewer"}),
                "all three",
            ),
            (
                serde_json::json!({"name": "rui", "role": "viewer", "password": secret, "admin": true}),
                "unknown field",
            ),
        ] {
            let (st, b) = call(&router, send(&maria, "POST", "/api/v1/users", body.clone())).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {b}");
            let message = b["error"]["message"].as_str().unwrap();
            assert!(message.contains(said), "{body}: {message}");
            assert!(
                !message.contains("shortpass")
                    && !message.contains(secret)
                    && !message.contains("1234567890"),
                "{message}"
            );
        }
        let (st, list) = call(&router, send(&maria, "GET", "/api/v1/users", Value::Null)).await;
        assert_eq!(st, StatusCode::OK);
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["maria", "vitor"]);
        assert!(!list.to_string().contains("argon2"), "{list}");
        // The new user logs in; a role change holds for their session at once.
        let vitor = store.verify_login("vitor", secret).await.unwrap().unwrap();
        assert_eq!(vitor.role, Role::Viewer);
        let session = Who::Session(Role::Viewer, store.create_session("vitor").await.unwrap());
        let (st, _) = call(&router, send(&session, "GET", "/api/v1/users", Value::Null)).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, b) = call(
            &router,
            send(
                &maria,
                "PUT",
                "/api/v1/users/vitor",
                serde_json::json!({"role": "analyst"}),
            ),
        )
        .await;
        assert_eq!(
            (st, b["role"].as_str()),
            (StatusCode::OK, Some("analyst")),
            "{b}"
        );
        let (st, b) = call(
            &router,
            send(&session, "GET", "/api/v1/session", Value::Null),
        )
        .await;
        assert_eq!(
            (st, b["role"].as_str()),
            (StatusCode::OK, Some("analyst")),
            "{b}"
        );
        // Disabled: the session ends at once.
        let (st, b) = call(
            &router,
            send(
                &maria,
                "PUT",
                "/api/v1/users/vitor",
                serde_json::json!({"disabled": true}),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert!(b["disabled_at"].is_string(), "{b}");
        let (st, _) = call(
            &router,
            send(&session, "GET", "/api/v1/session", Value::Null),
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        assert!(store.verify_login("vitor", secret).await.unwrap().is_none());
        let (st, b) = call(
            &router,
            send(
                &maria,
                "PUT",
                "/api/v1/users/vitor",
                serde_json::json!({"disabled": false}),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
        // A new password enables them again.
        let again = "another long secret";
        let (st, b) = call(
            &router,
            send(
                &maria,
                "POST",
                "/api/v1/users/vitor/password",
                serde_json::json!({"password": again}),
            ),
        )
        .await;
        assert_eq!(
            (st, &b["disabled_at"]),
            (StatusCode::OK, &Value::Null),
            "{b}"
        );
        assert!(b.get("password").is_none());
        assert!(store.verify_login("vitor", again).await.unwrap().is_some());
        let (st, b) = call(
            &router,
            send(
                &maria,
                "POST",
                "/api/v1/users/vitor/password",
                serde_json::json!({"password": "short"}),
            ),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
        // Unknown users, an empty change, and an admin locking themselves out.
        for (method, uri, body, want) in [
            (
                "PUT",
                "/api/v1/users/nobody",
                serde_json::json!({"role": "admin"}),
                StatusCode::NOT_FOUND,
            ),
            (
                "POST",
                "/api/v1/users/nobody/password",
                serde_json::json!({"password": again}),
                StatusCode::NOT_FOUND,
            ),
            (
                "PUT",
                "/api/v1/users/vitor",
                serde_json::json!({}),
                StatusCode::BAD_REQUEST,
            ),
            (
                "PUT",
                "/api/v1/users/maria",
                serde_json::json!({"disabled": true}),
                StatusCode::BAD_REQUEST,
            ),
            (
                "PUT",
                "/api/v1/users/maria",
                serde_json::json!({"role": "viewer"}),
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let (st, b) = call(&router, send(&maria, method, uri, body)).await;
            assert_eq!(st, want, "{method} {uri}: {b}");
        }
        assert_eq!(
            store.user("maria").await.unwrap().unwrap().role,
            Role::Admin
        );
        // A session's user change without its CSRF token is refused, nothing changed.
        let no_csrf = Request::put("/api/v1/users/vitor")
            .header(
                "cookie",
                format!(
                    "{SESSION_COOKIE}={}",
                    match &maria {
                        Who::Session(_, t) => t.clone(),
                        _ => unreachable!(),
                    }
                ),
            )
            .header("content-type", "application/json")
            .body(Body::from(r#"{"role": "admin"}"#))
            .unwrap();
        assert_eq!(call(&router, no_csrf).await.0, StatusCode::FORBIDDEN);
        assert_eq!(
            store.user("vitor").await.unwrap().unwrap().role,
            Role::Analyst
        );
    }
}
