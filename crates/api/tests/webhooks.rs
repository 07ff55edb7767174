//! Webhooks and live updates, through `app(state)` without a socket: Stripe's signature scheme
//! (valid, forged, altered, stale, from the future, missing, a rotated secret), each event
//! applied once, out-of-order deliveries ignored, a subscription's lifecycle
//! (created, updated, deleted: events shaped like Stripe's documented ones, in
//! tests/fixtures/stripe with their sources in NOTES.md) turned into the book's lines, events
//! queued before a restart applied after it, the generic endpoint, and the event stream. On
//! SQLite and, when `EXPANSA_TEST_POSTGRES` is set, PostgreSQL.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use expansa_api::webhooks::{sign, WebhookConfig, WebhookSecrets, GENERIC_HEADER, STRIPE_HEADER};
use expansa_api::{app, ApiConfig, AppState};
use expansa_import::schema::{CUSTOMERS, FX_RATES, SUBSCRIPTIONS};
use expansa_store::{Actor, NewWebhook, Role, RowChange, Store, WebhookEvent, WebhookState};
use http_body_util::BodyExt;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tower::ServiceExt;

const OLD: &str = "whsec_old_secret_0123456789";
const NEW: &str = "whsec_new_secret_9876543210";
const GENERIC: &str = "generic_secret_0123456789";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/stripe")
            .join(name),
    )
    .unwrap()
}

/// A store per backend with the contracts book loaded.
async fn stores(dir: &Path) -> Vec<Store> {
    common::stores(dir, "hooks", "testdata/contracts").await
}

fn config() -> ApiConfig {
    let secrets =
        WebhookSecrets::parse(&format!("stripe {OLD}\nstripe {NEW}\ngeneric {GENERIC}\n")).unwrap();
    ApiConfig {
        webhooks: WebhookConfig {
            secrets,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A delivery of `body` to `path` with `header` set to `signature`, if any.
fn delivery(path: &str, header: &str, signature: Option<String>, body: &str) -> Request<Body> {
    let mut r = Request::post(path).header("content-type", "application/json; charset=utf-8");
    if let Some(s) = signature {
        r = r.header(header, s);
    }
    r.body(Body::from(body.to_string())).unwrap()
}

/// `body` signed as Stripe signs it, with `secret` at `t`.
fn stripe(secret: &str, t: i64, body: &str) -> Request<Body> {
    let signature = format!("t={t},v1={}", sign(secret, t, body.as_bytes()));
    delivery(
        "/api/v1/webhooks/stripe",
        STRIPE_HEADER,
        Some(signature),
        body,
    )
}

async fn call(router: &axum::Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The events of `source` once none is queued (the worker is done), waiting up to 30 s.
async fn settled(store: &Store, source: &str) -> Vec<WebhookEvent> {
    for _ in 0..600 {
        let events = store.webhook_events(source, 100).await.unwrap();
        if events.iter().all(|e| e.state != WebhookState::Queued) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("webhook events still queued after 30 s");
}

/// The current line `id`: (quantity, unit price, start, end).
async fn line(store: &Store, id: &str) -> Option<(String, String, String, Option<String>)> {
    let row = store.row(&SUBSCRIPTIONS, id).await.unwrap()?;
    let col = |c: &str| row.values[SUBSCRIPTIONS.position(c).unwrap()].clone();
    Some((
        col("quantity").unwrap(),
        col("unit_price").unwrap(),
        col("start_date").unwrap(),
        col("end_date"),
    ))
}

/// The book's MRR at the end of `month` (YYYY-MM), as the kpis endpoint gives it.
async fn mrr(router: &axum::Router, key: &str, month: &str) -> rust_decimal::Decimal {
    let request = Request::get(format!("/api/v1/kpis?from={month}&to={month}"))
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = call(router, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let found = find_key(&body, "mrr").unwrap_or_else(|| panic!("no mrr in {body}"));
    found.as_str().unwrap().parse().unwrap()
}

fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m
            .get(key)
            .or_else(|| m.values().find_map(|v| find_key(v, key))),
        Value::Array(a) => a.iter().find_map(|v| find_key(v, key)),
        _ => None,
    }
}

#[tokio::test]
async fn signatures_forged_stale_or_missing_are_refused_and_keep_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = stores(dir.path()).await.remove(0);
    let router = app(AppState::new(store.clone(), config()));
    let body = fixture("subscription_created.json");
    let t = now();
    let events_before = store.events().await.unwrap().len();
    let refused = [
        (
            "another secret",
            stripe("whsec_someone_elses_secret", t, &body),
        ),
        ("an altered body", {
            let signature = format!("t={t},v1={}", sign(OLD, t, body.as_bytes()));
            let altered = body.replace("\"quantity\": 1", "\"quantity\": 9");
            delivery(
                "/api/v1/webhooks/stripe",
                STRIPE_HEADER,
                Some(signature),
                &altered,
            )
        }),
        ("a stale time", stripe(OLD, t - 301, &body)),
        ("a time in the future", stripe(OLD, t + 301, &body)),
        (
            "no header",
            delivery("/api/v1/webhooks/stripe", STRIPE_HEADER, None, &body),
        ),
        (
            "no v1",
            delivery(
                "/api/v1/webhooks/stripe",
                STRIPE_HEADER,
                Some(format!("t={t}")),
                &body,
            ),
        ),
        ("a v0 only", {
            let s = format!("t={t},v0={}", sign(OLD, t, body.as_bytes()));
            delivery("/api/v1/webhooks/stripe", STRIPE_HEADER, Some(s), &body)
        }),
        ("the timestamp changed", {
            let s = format!("t={},v1={}", t + 1, sign(OLD, t, body.as_bytes()));
            delivery("/api/v1/webhooks/stripe", STRIPE_HEADER, Some(s), &body)
        }),
        ("the generic header", {
            let s = format!("t={t},v1={}", sign(OLD, t, body.as_bytes()));
            delivery("/api/v1/webhooks/stripe", GENERIC_HEADER, Some(s), &body)
        }),
    ];
    for (what, request) in refused {
        let (status, answer) = call(&router, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], "bad_request", "{what}");
        assert!(
            !answer.to_string().contains(OLD),
            "{what}: the secret is never told"
        );
    }
    // An admin's key does not stand for a signature.
    let admin = store.create_key("admin", Role::Admin).await.unwrap();
    let mut keyed = delivery("/api/v1/webhooks/stripe", STRIPE_HEADER, None, &body);
    keyed
        .headers_mut()
        .insert("authorization", format!("Bearer {admin}").parse().unwrap());
    assert_eq!(call(&router, keyed).await.0, StatusCode::BAD_REQUEST);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(store
        .webhook_events("stripe", 100)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.events().await.unwrap().len(), events_before);
    assert!(line(&store, "si_W1").await.is_none());

    // Signed with the old secret, then (rotated) with the new: both pass, each applied once.
    let (status, answer) = call(&router, stripe(OLD, t, &body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        serde_json::json!({"received": "evt_W1", "duplicate": false})
    );
    let updated = fixture("subscription_updated.json");
    let (status, answer) = call(&router, stripe(NEW, t, &updated)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Several v1 in one header: any matching one passes.
    let deleted = fixture("subscription_deleted.json");
    let several = format!(
        "t={t},v1={},v1={}",
        sign("whsec_retired_secret_000000", t, deleted.as_bytes()),
        sign(NEW, t, deleted.as_bytes())
    );
    let request = delivery(
        "/api/v1/webhooks/stripe",
        STRIPE_HEADER,
        Some(several),
        &deleted,
    );
    assert_eq!(call(&router, request).await.0, StatusCode::OK);
    let events = settled(&store, "stripe").await;
    assert_eq!(events.len(), 3);
    assert!(
        events.iter().all(|e| e.state == WebhookState::Applied),
        "{events:?}"
    );

    // A body that is signed but not an event: 400, nothing kept.
    let (status, answer) = call(&router, stripe(OLD, t, r#"{"id": "evt_x"}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(store.webhook_events("stripe", 100).await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_subscriptions_lifecycle_becomes_its_lines_once_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        let router = app(AppState::new(store.clone(), config()));
        let key = store.create_key("reader", Role::Viewer).await.unwrap();
        let t = now();
        let before = store.events().await.unwrap().len();
        // The MRR the book's other customers make, each month.
        let mut others = Vec::new();
        for month in ["2025-01", "2025-02", "2025-03"] {
            others.push(mrr(&router, &key, month).await);
        }
        let theirs =
            async |month: &str, k: usize| (mrr(&router, &key, month).await - others[k]).to_string();

        // Created: one line, quantity 1 at 50.00 from 2025-01-01.
        let created = fixture("subscription_created.json");
        assert_eq!(
            call(&router, stripe(OLD, t, &created)).await.0,
            StatusCode::OK
        );
        settled(&store, "stripe").await;
        let one = Some(("1".into(), "50".into(), "2025-01-01".into(), None));
        assert_eq!(line(&store, "si_W1").await, one);
        assert!(store.row(&CUSTOMERS, "cus_W").await.unwrap().is_some());
        assert_eq!(theirs("2025-01", 0).await, "50.00");

        // The same event delivered again (a new signature, as Stripe's retries have): 200,
        // recorded and applied once.
        let (status, answer) = call(&router, stripe(OLD, t + 5, &created)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["duplicate"], true, "{answer}");
        let events = settled(&store, "stripe").await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].state, WebhookState::Applied);
        let applied = events[0].store_event.unwrap();
        let log = store.events().await.unwrap();
        assert_eq!(log.len(), before + 1);
        assert_eq!(log.last().unwrap().id, applied);
        assert_eq!(log.last().unwrap().actor, "webhook:stripe");

        // Updated: quantity 3.
        let updated = fixture("subscription_updated.json");
        assert_eq!(
            call(&router, stripe(OLD, t, &updated)).await.0,
            StatusCode::OK
        );
        settled(&store, "stripe").await;
        // From the event's day (2025-02-01) on: January keeps quantity 1, an upsell in
        // February, as a new segment revising the first.
        let january = Some((
            "1".into(),
            "50".into(),
            "2025-01-01".into(),
            Some("2025-01-31".into()),
        ));
        assert_eq!(line(&store, "si_W1").await, january);
        let three = Some(("3".into(), "50".into(), "2025-02-01".into(), None));
        assert_eq!(line(&store, "si_W1@2025-02-01").await, three);
        let revises = store
            .row(&SUBSCRIPTIONS, "si_W1@2025-02-01")
            .await
            .unwrap()
            .unwrap()
            .values[SUBSCRIPTIONS.position("revises").unwrap()]
        .clone();
        assert_eq!(revises.as_deref(), Some("si_W1"));
        assert_eq!(theirs("2025-01", 0).await, "50.00");
        assert_eq!(theirs("2025-02", 1).await, "150.00");

        // An update created before the one applied, delivered after it: ignored.
        let older = fixture("subscription_updated_older.json");
        assert_eq!(
            call(&router, stripe(OLD, t, &older)).await.0,
            StatusCode::OK
        );
        let events = settled(&store, "stripe").await;
        let last = events.last().unwrap();
        assert_eq!(last.event_id, "evt_W0");
        assert_eq!(last.state, WebhookState::Ignored);
        assert!(
            last.reason.as_deref().unwrap().starts_with("superseded"),
            "{last:?}"
        );
        assert_eq!(line(&store, "si_W1@2025-02-01").await, three);

        // An invoice: recorded, no book change.
        let invoice = fixture("invoice_paid.json");
        assert_eq!(
            call(&router, stripe(OLD, t, &invoice)).await.0,
            StatusCode::OK
        );
        let events = settled(&store, "stripe").await;
        let last = events.last().unwrap();
        assert_eq!(
            (last.kind.as_str(), last.state),
            ("invoice.paid", WebhookState::Ignored)
        );
        assert!(last
            .reason
            .as_deref()
            .unwrap()
            .starts_with("no book change"));

        // Deleted: the current segment ends on the day the subscription ended; the months
        // before keep their MRR.
        let deleted = fixture("subscription_deleted.json");
        assert_eq!(
            call(&router, stripe(OLD, t, &deleted)).await.0,
            StatusCode::OK
        );
        settled(&store, "stripe").await;
        let ended = Some((
            "3".into(),
            "50".into(),
            "2025-02-01".into(),
            Some("2025-03-01".into()),
        ));
        assert_eq!(line(&store, "si_W1@2025-02-01").await, ended);
        assert_eq!(line(&store, "si_W1").await, january);
        assert_eq!(theirs("2025-01", 0).await, "50.00");
        assert_eq!(theirs("2025-02", 1).await, "150.00");
        assert_eq!(theirs("2025-03", 2).await, "0.00");
        let events = store.webhook_events("stripe", 100).await.unwrap();
        let kinds: Vec<(&str, WebhookState)> = events
            .iter()
            .map(|e| (e.event_id.as_str(), e.state))
            .collect();
        assert_eq!(
            kinds,
            [
                ("evt_W1", WebhookState::Applied),
                ("evt_W2", WebhookState::Applied),
                ("evt_W0", WebhookState::Ignored),
                ("evt_W4", WebhookState::Ignored),
                ("evt_W3", WebhookState::Applied),
            ]
        );
        assert_eq!(store.events().await.unwrap().len(), before + 3);

        // An admin lists them over the API, with their outcome; a viewer may not.
        let admin = store.create_key("admin", Role::Admin).await.unwrap();
        let list = |key: &str, query: &str| {
            Request::get(format!("/api/v1/webhooks{query}"))
                .header("authorization", format!("Bearer {key}"))
                .body(Body::empty())
                .unwrap()
        };
        let (status, body) = call(&router, list(&admin, "?source=stripe&limit=2")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let listed: Vec<(&str, &str)> = body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["id"].as_str().unwrap(), e["state"].as_str().unwrap()))
            .collect();
        assert_eq!(listed, [("evt_W4", "ignored"), ("evt_W3", "applied")]);
        assert_eq!(body["events"][1]["store_event"], log_last(&store).await);
        assert_eq!(
            call(&router, list(&admin, "?limit=0")).await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            call(&router, list(&admin, "?source=paypal")).await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(call(&router, list(&key, "")).await.0, StatusCode::FORBIDDEN);
    }
}

async fn log_last(store: &Store) -> i64 {
    store.events().await.unwrap().last().unwrap().id
}

#[tokio::test]
async fn an_item_gone_from_its_subscription_ends_the_day_before_the_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = stores(dir.path()).await.remove(0);
    let router = app(AppState::new(store.clone(), config()));
    let t = now();
    let mut two: Value = serde_json::from_str(&fixture("subscription_created.json")).unwrap();
    let items = &mut two["data"]["object"]["items"]["data"];
    let mut second = items[0].clone();
    second["id"] = "si_W2".into();
    items.as_array_mut().unwrap().push(second);
    assert_eq!(
        call(&router, stripe(OLD, t, &two.to_string())).await.0,
        StatusCode::OK
    );
    settled(&store, "stripe").await;
    assert!(line(&store, "si_W2").await.is_some());
    let updated = fixture("subscription_updated.json");
    assert_eq!(
        call(&router, stripe(OLD, t, &updated)).await.0,
        StatusCode::OK
    );
    settled(&store, "stripe").await;
    // The update is of 2025-02-01: si_W2 was held in January.
    assert_eq!(
        line(&store, "si_W2").await,
        Some((
            "1".into(),
            "50".into(),
            "2025-01-01".into(),
            Some("2025-01-31".into())
        ))
    );
    assert!(line(&store, "si_W1@2025-02-01").await.is_some());
}

#[tokio::test]
async fn events_queued_before_a_restart_are_applied_after_it() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        // As a server leaves it when it stops between answering and applying.
        let payload = fixture("subscription_created.json");
        let queued = store
            .queue_webhook(NewWebhook {
                source: "stripe",
                event_id: "evt_W1",
                kind: "customer.subscription.created",
                created: 1_735_732_800,
                subject: Some("sub_W1"),
                payload: &payload,
            })
            .await
            .unwrap();
        assert!(queued);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(line(&store, "si_W1").await.is_none());
        let _state = AppState::new(store.clone(), config());
        let events = settled(&store, "stripe").await;
        assert_eq!(events[0].state, WebhookState::Applied, "{events:?}");
        assert!(line(&store, "si_W1").await.is_some());
    }
}

#[tokio::test]
async fn the_generic_endpoint_applies_signed_row_changes_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = stores(dir.path()).await.remove(0);
    let router = app(AppState::new(store.clone(), config()));
    let t = now();
    let body = serde_json::json!({
        "id": "crm-1",
        "created": t,
        "changes": [
            {"table": "customers", "id": "c-hook", "row": {"name": "Hook Ltda", "segment": "smb"}},
        ],
    })
    .to_string();
    let signed = |secret: &str, header: &str, body: &str| {
        let s = format!("t={t},v1={}", sign(secret, t, body.as_bytes()));
        delivery("/api/v1/webhooks/generic", header, Some(s), body)
    };
    // Stripe's secret, or Stripe's header, do not sign the generic endpoint.
    assert_eq!(
        call(&router, signed(OLD, GENERIC_HEADER, &body)).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&router, signed(GENERIC, STRIPE_HEADER, &body)).await.0,
        StatusCode::BAD_REQUEST
    );
    // Changes that are not rows: 400 before anything is kept.
    let bad = serde_json::json!({"id": "crm-2", "created": t, "changes": [{"table": "nope", "id": "x", "row": {}}]}).to_string();
    let (status, answer) = call(&router, signed(GENERIC, GENERIC_HEADER, &bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("changes[0]"),
        "{answer}"
    );
    assert!(store
        .webhook_events("generic", 100)
        .await
        .unwrap()
        .is_empty());

    for _ in 0..2 {
        let (status, answer) = call(&router, signed(GENERIC, GENERIC_HEADER, &body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let events = settled(&store, "generic").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].state, WebhookState::Applied, "{events:?}");
    let row = store.row(&CUSTOMERS, "c-hook").await.unwrap().unwrap();
    assert_eq!(row.values[1].as_deref(), Some("Hook Ltda"));
    assert_eq!(
        store.events().await.unwrap().last().unwrap().actor,
        "webhook:generic"
    );
}

#[tokio::test]
async fn webhooks_without_a_secret_are_not_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let store = stores(dir.path()).await.remove(0);
    let router = app(AppState::new(store.clone(), ApiConfig::default()));
    let body = fixture("subscription_created.json");
    let (status, answer) = call(&router, stripe(OLD, now(), &body)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert!(store
        .webhook_events("stripe", 100)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_write_makes_an_event_arrive_on_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    for store in stores(dir.path()).await {
        let router = app(AppState::new(store.clone(), ApiConfig::default()));
        let key = store.create_key("reader", Role::Viewer).await.unwrap();
        let request = Request::get("/api/v1/events/stream")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut body = response.into_body();
        let mut next = async || {
            let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .unwrap();
            String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
        };
        let latest = store.events().await.unwrap().last().unwrap().id;
        // The first event also tells the client to come back within a second when the stream
        // ends (it does after `live::MAX_AGE`, so that its login is checked again).
        assert_eq!(
            next().await,
            format!("event: book\ndata: {{\"event\":{latest}}}\nretry: 1000\n\n")
        );
        // A write by another client (here, straight to the store, as another process would).
        let change = expansa_store::RowChange::Put {
            schema: CUSTOMERS,
            values: vec![
                Some("c-live".into()),
                Some("Live".into()),
                None,
                None,
                None,
                None,
            ],
            extra: Vec::new(),
            create_only: true,
        };
        let actor = Actor {
            who: "other".into(),
            why: "test".into(),
        };
        let written = store
            .write("row", &[change], &actor, None, |_| None)
            .await
            .unwrap();
        let event = written.event.unwrap();
        assert_eq!(
            next().await,
            format!("event: book\ndata: {{\"event\":{event}}}\n\n")
        );
    }
}

/// A case: the event's id, its subscription, how the fixture is changed, and the problem its
/// reason must name (`None`: it applies).
type Case = (
    &'static str,
    &'static str,
    Box<dyn Fn(&mut Value)>,
    Option<&'static str>,
);

/// Events that cannot apply are `failed` with the problem itself in their reason, and change
/// nothing: an item id that is another customer's line, a currency the book has no rates for,
/// a subscription without its items or with only a page of them. A currency the book has
/// rates for is converted. Values no store keeps and times past 9999 are refused on receipt.
#[tokio::test]
async fn events_that_cannot_apply_fail_with_their_problem_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for store in common::stores(dir.path(), "hooks_bad", "examples/demo").await {
        let router = app(AppState::new(store.clone(), config()));
        let t = now();
        let l001 = line(&store, "L001").await;
        assert!(l001.is_some());
        // The fixture's subscription, as event `evt` of subscription `sub` on 2024-04-01.
        let event = |evt: &str, sub: &str, edit: &dyn Fn(&mut Value)| {
            let mut v: Value = serde_json::from_str(&fixture("subscription_created.json")).unwrap();
            v["id"] = evt.into();
            v["created"] = 1_711_972_800.into();
            let o = &mut v["data"]["object"];
            o["id"] = sub.into();
            for k in ["created", "start_date", "billing_cycle_anchor"] {
                o[k] = 1_711_972_800.into();
            }
            o["items"]["data"][0]["id"] = format!("si_{sub}").into();
            o["items"]["data"][0]["created"] = 1_711_972_800.into();
            edit(&mut v);
            v.to_string()
        };
        let currency = |c: &'static str| {
            move |v: &mut Value| {
                v["data"]["object"]["currency"] = c.into();
                v["data"]["object"]["items"]["data"][0]["price"]["currency"] = c.into();
            }
        };
        let cases: [Case; 5] = [
            (
                "evt_B1",
                "sub_B1",
                Box::new(|v: &mut Value| v["data"]["object"]["items"]["data"][0]["id"] = "L001".into()),
                Some("line L001: the book already has a line with this id, of customer padaria-sao-jorge"),
            ),
            ("evt_B2", "sub_B2", Box::new(currency("usd")), None),
            ("evt_B3", "sub_B3", Box::new(currency("eur")), Some("EUR")),
            (
                "evt_B4",
                "sub_B4",
                Box::new(|v: &mut Value| {
                    v["data"]["object"].as_object_mut().unwrap().remove("items");
                }),
                Some("data.object.items.data: the subscription's items are not in the event"),
            ),
            (
                "evt_B5",
                "sub_B5",
                Box::new(|v: &mut Value| v["data"]["object"]["items"]["has_more"] = true.into()),
                Some("data.object.items.has_more"),
            ),
        ];
        for (evt, sub, edit, failure) in &cases {
            let body = event(evt, sub, edit.as_ref());
            let (status, answer) = call(&router, stripe(OLD, t, &body)).await;
            assert_eq!(status, StatusCode::OK, "{evt}: {answer}");
            let events = settled(&store, "stripe").await;
            let e = events.iter().find(|e| e.event_id == *evt).unwrap();
            match failure {
                Some(problem) => {
                    assert_eq!(e.state, WebhookState::Failed, "{e:?}");
                    let reason = e.reason.as_deref().unwrap_or_default();
                    assert!(reason.contains(problem), "{evt}: {reason}");
                    assert!(
                        line(&store, &format!("si_{sub}")).await.is_none(),
                        "{evt} wrote a line"
                    );
                }
                None => assert_eq!(e.state, WebhookState::Applied, "{e:?}"),
            }
        }
        assert_eq!(
            line(&store, "L001").await,
            l001,
            "another customer's line changed"
        );
        let usd = store
            .row(&SUBSCRIPTIONS, "si_sub_B2")
            .await
            .unwrap()
            .unwrap();
        let currency_of = usd.values[SUBSCRIPTIONS.position("currency").unwrap()].clone();
        assert_eq!(currency_of.as_deref(), Some("USD"));

        // A failed event is tried again once its cause is fixed (an admin's call): the EUR rate
        // of its month added, evt_B3 applies. Only a failed one: an applied one is 409.
        let admin = store.create_key("admin", Role::Admin).await.unwrap();
        let retry = |id: &str| {
            Request::post(format!("/api/v1/webhooks/stripe/{id}/retry"))
                .header("authorization", format!("Bearer {admin}"))
                .body(Body::empty())
                .unwrap()
        };
        let actor = Actor {
            who: "test".into(),
            why: "rates".into(),
        };
        let rate = vec![
            Some("2024-04".into()),
            Some("EUR".into()),
            Some("5.90".into()),
        ];
        store
            .write(
                "fx",
                &[RowChange::Put {
                    schema: FX_RATES,
                    values: rate,
                    extra: Vec::new(),
                    create_only: true,
                }],
                &actor,
                None,
                |_| None,
            )
            .await
            .unwrap();
        let (status, answer) = call(&router, retry("evt_B3")).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let events = settled(&store, "stripe").await;
        let b3 = events.iter().find(|e| e.event_id == "evt_B3").unwrap();
        assert_eq!(b3.state, WebhookState::Applied, "{b3:?}");
        assert!(line(&store, "si_sub_B3").await.is_some());
        assert_eq!(call(&router, retry("evt_B3")).await.0, StatusCode::CONFLICT);
        assert_eq!(
            call(&router, retry("evt_nope")).await.0,
            StatusCode::NOT_FOUND
        );

        // Refused on receipt, nothing kept: a time past 9999, a value no store keeps.
        let late = event("evt_B6", "sub_B6", &|v: &mut Value| {
            v["created"] = 253_402_300_800_i64.into()
        });
        let (status, answer) = call(&router, stripe(OLD, t, &late)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let generic = serde_json::json!({
            "id": "crm-bad", "created": t,
            "changes": [{"table": "customers", "id": "c\u{1e}x", "row": {"name": "X"}}],
        })
        .to_string();
        let s = format!("t={t},v1={}", sign(GENERIC, t, generic.as_bytes()));
        let (status, answer) = call(
            &router,
            delivery(
                "/api/v1/webhooks/generic",
                GENERIC_HEADER,
                Some(s),
                &generic,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(store
            .webhook_events("generic", 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.webhook_events("stripe", 10).await.unwrap().len(), 5);
    }
}
