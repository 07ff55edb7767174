//! Live updates from billing systems (docs/api.md, "Webhooks"): `POST /api/v1/webhooks/stripe`
//! and `POST /api/v1/webhooks/generic`, authenticated by their signature alone.
//!
//! A delivery is verified, checked for its shape, kept in the store's queue once per (source,
//! event id) and answered at once; one worker applies the queue in the order received and
//! records each event's outcome (applied with the store's event, ignored or failed with the
//! reason). Events received and not yet applied are applied after a restart.
//!
//! Signatures follow Stripe's documented scheme (<https://docs.stripe.com/webhooks#verify-manually>):
//! the header `Stripe-Signature: t=UNIX,v1=HEX[,v1=HEX...]`; the signed payload is
//! `t + "." + body`; each `v1` is its HMAC-SHA256 (hex) with the endpoint's secret
//! (`whsec_...`, used as it is written); any `v1` matching any secret passes (rotation), and
//! `t` must be within the tolerance (default 300 s) of the server's clock. The generic
//! endpoint uses the same scheme under `Expansa-Signature` with its own secret.
//!
//! Stripe events (<https://docs.stripe.com/api/events/object>: `id`, `type`, `created`,
//! `data.object`): `customer.subscription.*` carry the subscription, converted by the engine
//! of `expansa convert --from stripe` ([`expansa_sources::convert_stripe_subscription`]), and
//! applied from the event's day on ([`from_day`]: the book's past stays; a change of quantity
//! or price is a new segment from that day, a cancellation an end), as one write by
//! `webhook:stripe`. An event older (`created`)
//! than the last one applied to its subscription is ignored as superseded. `invoice.*` and
//! other events are recorded and ignored, with the reason.

use crate::http::JsonBody;
use crate::{ApiError, AppState};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use expansa_import::schema::{Schema, CONTRACTS, CUSTOMERS, FX_RATES, PRODUCTS, SUBSCRIPTIONS};
use expansa_import::Folder;
use expansa_store::{
    Actor, AsOf, Idempotency, NewWebhook, RowChange, Store, StoreError, WebhookEvent, WebhookState,
};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

mod from_day;

/// The tolerance of a signature's time by default, as Stripe's libraries have it.
pub const DEFAULT_TOLERANCE: u64 = 300;
/// The largest tolerance `serve --webhook-tolerance` takes.
pub const MAX_TOLERANCE: u64 = 3600;
/// Secrets one endpoint may have at once (rotation).
pub const MAX_SECRETS: usize = 16;
/// Signatures one header may carry.
pub const MAX_SIGNATURES: usize = 16;
/// The longest event id.
pub const MAX_EVENT_ID: usize = 255;
/// Changes one generic event may carry.
pub const MAX_CHANGES: usize = 1000;
/// The latest event time taken: 9999-12-31T23:59:59Z (a book's years end at 9999).
pub const MAX_CREATED: i64 = 253_402_300_799;

/// The header Stripe signs with.
pub const STRIPE_HEADER: &str = "stripe-signature";
/// The header the generic endpoint is signed with.
pub const GENERIC_HEADER: &str = "expansa-signature";

/// The endpoints' secrets: never printed (their `Debug` shows how many there are).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WebhookSecrets {
    stripe: Vec<String>,
    generic: Vec<String>,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WebhookSecrets {{ stripe: {} secret(s), generic: {} secret(s) }}",
            self.stripe.len(),
            self.generic.len()
        )
    }
}

impl WebhookSecrets {
    /// Reads a secrets file: one secret a line, `stripe SECRET` (Stripe's endpoint secret,
    /// `whsec_...`) or `generic SECRET`; each up to [`MAX_SECRETS`] times (during a rotation,
    /// the old and the new); blank lines and lines starting with `#` are skipped. Errors name
    /// the line, never the secret.
    pub fn parse(text: &str) -> Result<WebhookSecrets, String> {
        let mut secrets = WebhookSecrets::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let n = n + 1;
            let (name, secret) = line
                .split_once(char::is_whitespace)
                .map(|(a, b)| (a, b.trim()))
                .unwrap_or((line, ""));
            let list = match name {
                "stripe" => &mut secrets.stripe,
                "generic" => &mut secrets.generic,
                _ => {
                    return Err(format!(
                        "line {n}: expected `stripe SECRET` or `generic SECRET`"
                    ))
                }
            };
            if secret.len() < 16 || secret.chars().any(char::is_whitespace) {
                return Err(format!(
                    "line {n}: a {name} secret is one word of 16 characters or more"
                ));
            }
            if list.len() == MAX_SECRETS {
                return Err(format!("line {n}: at most {MAX_SECRETS} {name} secrets"));
            }
            list.push(secret.to_string());
        }
        if secrets.stripe.is_empty() && secrets.generic.is_empty() {
            return Err("holds no secret (`stripe SECRET` or `generic SECRET` lines)".into());
        }
        Ok(secrets)
    }

    /// [`WebhookSecrets::parse`] of a file.
    pub fn load(path: &Path) -> Result<WebhookSecrets, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--webhook-secret-file {}: {e}", path.display()))?;
        WebhookSecrets::parse(&text)
            .map_err(|e| format!("--webhook-secret-file {}: {e}", path.display()))
    }
}

/// How webhooks are received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    pub secrets: WebhookSecrets,
    /// How far a signature's time may be from the server's clock, either way.
    pub tolerance: Duration,
}

impl Default for WebhookConfig {
    fn default() -> WebhookConfig {
        WebhookConfig {
            secrets: WebhookSecrets::default(),
            tolerance: Duration::from_secs(DEFAULT_TOLERANCE),
        }
    }
}

/// The HMAC-SHA256 of `t.body` with `secret`, in lower-case hex.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // An HMAC takes a key of any length: this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a signature header (`t=UNIX,v1=HEX,...`) of `body` against `secrets` at `now`.
fn verify(
    headers: &HeaderMap,
    header: &str,
    body: &[u8],
    secrets: &[String],
    tolerance: Duration,
    now: i64,
) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::BadRequest(m));
    let Some(value) = headers.get(header).and_then(|v| v.to_str().ok()) else {
        return bad(format!("no {header} header: the event is not signed"));
    };
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in value.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) if timestamp.is_none() => timestamp = t.trim().parse::<i64>().ok(),
            Some(("v1", s)) if signatures.len() < MAX_SIGNATURES => signatures.push(s.trim()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return bad(format!("{header}: no timestamp (t=UNIX seconds)"));
    };
    if signatures.is_empty() {
        return bad(format!("{header}: no v1 signature"));
    }
    let matches = secrets.iter().any(|secret| {
        let expected = sign(secret, timestamp, body);
        signatures
            .iter()
            .any(|s| expansa_store::constant_time_eq(s.as_bytes(), expected.as_bytes()))
    });
    if !matches {
        return bad(format!(
            "{header}: no signature matches this body with the endpoint's secret (forged, \
             altered, or signed with another secret)"
        ));
    }
    let off = now.abs_diff(timestamp);
    if off > tolerance.as_secs() {
        return bad(format!(
            "{header}: signed {off} s away from the server's clock, over the tolerance of {} s \
             (a replayed or delayed delivery, or a clock out of time)",
            tolerance.as_secs()
        ));
    }
    Ok(())
}

/// The event id, type and time of a delivery, or why it is not an event.
fn envelope(body: &[u8], id_field: &str) -> Result<(Value, String, i64), ApiError> {
    let bad = |m: &str| ApiError::BadRequest(m.to_string());
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let id = value
        .get(id_field)
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= MAX_EVENT_ID && !id.contains(char::is_control))
        .ok_or_else(|| {
            bad(&format!(
                "{id_field}: the event's id is required (1 to {MAX_EVENT_ID} bytes, no control character)"
            ))
        })?
        .to_string();
    let created = value
        .get("created")
        .and_then(Value::as_i64)
        .filter(|c| (0..=MAX_CREATED).contains(c))
        .ok_or_else(|| {
            bad("created: the event's time is required (Unix seconds, up to the end of 9999)")
        })?;
    Ok((value, id, created))
}

/// Verifies, reads and queues a delivery from `source`.
async fn receive(
    s: &AppState,
    source: &str,
    header: &str,
    secrets: &[String],
    headers: &HeaderMap,
    body: &[u8],
    read: impl FnOnce(&Value) -> Result<(String, Option<String>), ApiError>,
) -> Result<Response, ApiError> {
    if secrets.is_empty() {
        return Err(ApiError::NotFound(format!(
            "webhooks from {source} are not enabled: give `serve --webhook-secret-file` a \
             `{source} SECRET` line"
        )));
    }
    let now = jiff::Timestamp::now().as_second();
    verify(
        headers,
        header,
        body,
        secrets,
        s.config.webhooks.tolerance,
        now,
    )?;
    let (value, id, created) = envelope(body, "id")?;
    let (kind, subject) = read(&value)?;
    let payload = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("the body is not UTF-8".into()))?;
    let queued = s
        .store
        .queue_webhook(NewWebhook {
            source,
            event_id: &id,
            kind: &kind,
            created,
            subject: subject.as_deref(),
            payload,
        })
        .await?;
    if queued {
        s.webhook_worker.notify_one();
    }
    Ok((
        StatusCode::OK,
        [("content-type", "application/json")],
        serde_json::json!({"received": id, "duplicate": !queued}).to_string(),
    )
        .into_response())
}

/// A Stripe event's type and, for a subscription's event, the subscription's id.
fn stripe_envelope(value: &Value) -> Result<(String, Option<String>), ApiError> {
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.len() <= 100)
        .ok_or_else(|| ApiError::BadRequest("type: the event's type is required".into()))?;
    let object = value
        .get("data")
        .and_then(|d| d.get("object"))
        .filter(|o| o.is_object())
        .ok_or_else(|| {
            ApiError::BadRequest("data.object: the event's object is required".into())
        })?;
    let subject = if kind.starts_with("customer.subscription.") {
        let id = object
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty() && id.len() <= MAX_EVENT_ID)
            .ok_or_else(|| {
                ApiError::BadRequest("data.object.id: a subscription's id is required".into())
            })?;
        Some(id.to_string())
    } else {
        None
    };
    Ok((kind.to_string(), subject))
}

/// A generic event's changes: `[{"table", "id", "row": {...}}` (the row as `PUT
/// /api/v1/{table}/{id}` takes it) or `{"table", "id", "delete": true}`, 1 to [`MAX_CHANGES`].
fn generic_changes(value: &Value) -> Result<Vec<RowChange>, ApiError> {
    let bad = |k: usize, m: &str| ApiError::BadRequest(format!("changes[{k}]: {m}"));
    let Some(changes) = value.get("changes").and_then(Value::as_array) else {
        return Err(ApiError::BadRequest(
            "changes: a list of row changes is required".into(),
        ));
    };
    if changes.is_empty() || changes.len() > MAX_CHANGES {
        return Err(ApiError::BadRequest(format!(
            "changes: 1 to {MAX_CHANGES} row changes, not {}",
            changes.len()
        )));
    }
    changes
        .iter()
        .enumerate()
        .map(|(k, change)| {
            let table = change
                .get("table")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(k, "table is required"))?;
            let schema = crate::rows::schema(table).map_err(|e| bad(k, e.parts().2))?;
            let id = change
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.trim().is_empty())
                .ok_or_else(|| bad(k, "id is required"))?;
            match (change.get("row"), change.get("delete")) {
                (Some(row), None) => {
                    let row = crate::rows::row_from_value(&schema, row.clone(), Some(id), &[])
                        .map_err(|e| bad(k, e.parts().2))?;
                    Ok(RowChange::Put {
                        schema,
                        values: row.values,
                        extra: row.extra,
                        create_only: false,
                    })
                }
                (None, Some(Value::Bool(true))) => Ok(RowChange::Remove {
                    schema,
                    key: id.to_string(),
                }),
                _ => Err(bad(k, "give either \"row\": {...} or \"delete\": true")),
            }
        })
        .collect()
}

/// Receives an event from Stripe.
#[utoipa::path(post, path = "/api/v1/webhooks/stripe",
    params(("Stripe-Signature" = String, Header, description = "t=UNIX,v1=HMAC-SHA256 hex of `t.body` (https://docs.stripe.com/webhooks#verify-manually)")),
    request_body(content = Object, description = "A Stripe event (https://docs.stripe.com/api/events/object)"),
    responses((status = 200, description = "Received: queued, or a second delivery of an event (`duplicate`)", body = Object),
              (status = 400, description = "Not signed, a forged or stale signature, or not an event", body = crate::ErrorBody),
              (status = 404, description = "Not enabled (no Stripe secret)", body = crate::ErrorBody),
              (status = 503, description = "The queue is full", body = crate::ErrorBody)))]
pub(crate) async fn stripe(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let secrets = &s.config.webhooks.secrets.stripe;
    receive(
        &s,
        "stripe",
        STRIPE_HEADER,
        secrets,
        &headers,
        &body,
        stripe_envelope,
    )
    .await
}

/// Receives a signed event of row changes from any system.
#[utoipa::path(post, path = "/api/v1/webhooks/generic",
    params(("Expansa-Signature" = String, Header, description = "t=UNIX,v1=HMAC-SHA256 hex of `t.body`, as Stripe signs")),
    request_body(content = Object, description = "{\"id\", \"created\": UNIX, \"changes\": [{\"table\", \"id\", \"row\": {...}} or {\"table\", \"id\", \"delete\": true}]}"),
    responses((status = 200, description = "Received: queued, or a second delivery of an event (`duplicate`)", body = Object),
              (status = 400, description = "Not signed, a forged or stale signature, or not an event", body = crate::ErrorBody),
              (status = 404, description = "Not enabled (no generic secret)", body = crate::ErrorBody),
              (status = 503, description = "The queue is full", body = crate::ErrorBody)))]
pub(crate) async fn generic(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let secrets = &s.config.webhooks.secrets.generic;
    receive(
        &s,
        "generic",
        GENERIC_HEADER,
        secrets,
        &headers,
        &body,
        |v| {
            let changes = generic_changes(v)?;
            let refused = expansa_store::refused_values(&changes);
            if !refused.is_empty() {
                return Err(ApiError::BadRequest(format!(
                    "changes: {}",
                    expansa_import::BookErrors(refused, 0).summary(5)
                )));
            }
            Ok(("changes".to_string(), None))
        },
    )
    .await
}

/// The parameters of `GET /api/v1/webhooks`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: the handler reads the raw query
pub struct WebhookListParams {
    /// Whose events: stripe (default) or generic.
    #[param(example = "stripe")]
    source: Option<String>,
    /// How many, the last received (default 100; 1 to 10000).
    #[param(minimum = 1, maximum = 10000, example = 100)]
    limit: Option<u32>,
}

/// The largest `limit` of the listing.
pub const MAX_LISTED: u32 = 10_000;

/// The events received by webhook and what became of them, in the order received (the last
/// `limit`); their bodies are not listed.
#[utoipa::path(get, path = "/api/v1/webhooks", params(WebhookListParams),
    responses((status = 200, description = "{\"events\": [{\"seq\", \"source\", \"id\", \"type\", \"created\", \"subject\", \"state\": queued|applied|ignored|failed, \"reason\", \"store_event\"}]}", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody)))]
pub(crate) async fn list(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (mut source, mut limit) = ("stripe".to_string(), 100u32);
    for (k, v) in crate::reads::query_pairs(q.as_deref()) {
        match k.as_str() {
            "source" if v == "stripe" || v == "generic" => source = v,
            "source" => {
                return Err(ApiError::BadRequest(format!(
                    "source {v:?}: stripe or generic"
                )))
            }
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LISTED).contains(n))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "limit {v:?}: a whole number from 1 to {MAX_LISTED}"
                        ))
                    })?
            }
            other => return Err(ApiError::BadRequest(format!("unknown parameter {other:?}"))),
        }
    }
    let events: Vec<Value> = s
        .store
        .webhook_events(&source, limit)
        .await?
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "seq": e.seq,
                "source": e.source,
                "id": e.event_id,
                "type": e.kind,
                "created": e.created,
                "subject": e.subject,
                "state": e.state.name(),
                "reason": e.reason,
                "store_event": e.store_event,
            })
        })
        .collect();
    Ok(crate::reads::json_response(
        serde_json::json!({ "events": events }).to_string(),
    ))
}

/// Tries a failed event again, once its cause is fixed (an admin's write).
#[utoipa::path(post, path = "/api/v1/webhooks/{source}/{id}/retry",
    params(("source" = String, Path, description = "stripe or generic"),
           ("id" = String, Path, description = "The sender's id of the event")),
    responses((status = 200, description = "Queued again: `{\"retry\": ID}`", body = Object),
              (status = 404, description = "No such event", body = crate::ErrorBody),
              (status = 409, description = "The event did not fail (queued, applied or ignored)", body = crate::ErrorBody),
              (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody)))]
pub(crate) async fn retry(
    State(s): State<Arc<AppState>>,
    axum::extract::Path((source, id)): axum::extract::Path<(String, String)>,
) -> Result<Response, ApiError> {
    match s.store.retry_webhook(&source, &id).await? {
        None => Err(ApiError::NotFound(format!(
            "no event {id:?} received from {source:?}"
        ))),
        Some(WebhookState::Failed) => {
            s.webhook_worker.notify_one();
            Ok(crate::reads::json_response(
                serde_json::json!({ "retry": id }).to_string(),
            ))
        }
        Some(other) => Err(ApiError::Conflict(format!(
            "event {id:?} is {}: only a failed event is tried again",
            other.name()
        ))),
    }
}

/// What applying an event came to.
struct Done {
    state: WebhookState,
    reason: Option<String>,
    event: Option<i64>,
}

impl Done {
    fn ignored(reason: String) -> Done {
        Done {
            state: WebhookState::Ignored,
            reason: Some(reason),
            event: None,
        }
    }

    fn failed(reason: String) -> Done {
        Done {
            state: WebhookState::Failed,
            reason: Some(reason),
            event: None,
        }
    }
}

/// Starts the worker that applies queued events, in order, one at a time; `wake` tells it of a
/// new one (it also looks every few seconds, for events another server queued). It stops once
/// `wake` is dropped (the server's state is gone).
pub(crate) fn spawn_worker(store: Store, wake: &Arc<Notify>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let wake = Arc::downgrade(wake);
    runtime.spawn(async move {
        loop {
            let Some(wake) = wake.upgrade() else {
                return;
            };
            let next = store.next_webhook().await;
            let pause = match next {
                Ok(Some(event)) => match apply(&store, &event).await {
                    Ok(done) => match store
                        .finish_webhook(event.seq, done.state, done.reason.as_deref(), done.event)
                        .await
                    {
                        Ok(()) => continue,
                        Err(e) => {
                            tracing::warn!("cannot record webhook event {}: {e}", event.event_id);
                            true
                        }
                    },
                    Err(e) => {
                        tracing::warn!("webhook event {} waits: {e}", event.event_id);
                        true
                    }
                },
                Ok(None) => false,
                Err(e) => {
                    tracing::warn!("cannot read the webhook queue: {e}");
                    true
                }
            };
            let wait = if pause { 1 } else { 5 };
            tokio::select! {
                _ = wake.notified(), if !pause => {}
                _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
            }
        }
    });
}

/// Applies one event: `Err` for what may pass (a busy or unreachable database: tried again),
/// else what became of it.
async fn apply(store: &Store, event: &WebhookEvent) -> Result<Done, StoreError> {
    let value: Value = match serde_json::from_str(&event.payload) {
        Ok(v) => v,
        Err(e) => return Ok(Done::failed(format!("the kept body is not JSON: {e}"))),
    };
    let (changes, who) = match event.source.as_str() {
        "stripe" => match stripe_changes(store, event, &value).await? {
            Ok(changes) => (changes, "webhook:stripe"),
            Err(done) => return Ok(done),
        },
        "generic" => match generic_changes(&value) {
            Ok(changes) => (changes, "webhook:generic"),
            Err(e) => return Ok(Done::failed(e.parts().2.to_string())),
        },
        other => return Ok(Done::ignored(format!("unknown source {other:?}"))),
    };
    let actor = Actor {
        who: who.into(),
        why: format!("{} {}", event.kind, event.event_id),
    };
    // Kept under the event's id: a write committed before its outcome was recorded (the server
    // stopped between the two) is replayed, not made twice.
    let key = Idempotency::new(
        format!("webhook:{}:{}", event.source, event.event_id),
        event.payload.as_bytes(),
    );
    let written = store
        .write("webhook", &changes, &actor, Some(&key), |e| {
            Some(serde_json::json!({ "event": e }).to_string())
        })
        .await;
    match written {
        Ok(outcome) => Ok(Done {
            state: WebhookState::Applied,
            reason: outcome
                .event
                .is_none()
                .then(|| "no change: the book already was so".to_string()),
            event: outcome.event,
        }),
        Err(e @ (StoreError::Busy(_) | StoreError::Db(_) | StoreError::Io { .. })) => Err(e),
        Err(StoreError::Book(problems)) => Ok(Done::failed(format!(
            "the book was not changed: {}",
            problems.summary(5)
        ))),
        Err(e) => Ok(Done::failed(e.to_string())),
    }
}

/// The book changes of a Stripe event, or what became of it when it changes nothing.
async fn stripe_changes(
    store: &Store,
    event: &WebhookEvent,
    value: &Value,
) -> Result<Result<Vec<RowChange>, Done>, StoreError> {
    let Some(subscription) = event.subject.as_deref() else {
        let reason = if event.kind.starts_with("invoice.") {
            "no book change: a subscription's lines are converted from the subscription \
             object (customer.subscription.* events); invoices are not read one by one"
                .to_string()
        } else {
            format!("no book change: {} is not mapped", event.kind)
        };
        return Ok(Err(Done::ignored(reason)));
    };
    if let Some(last) = store.last_applied_webhook("stripe", subscription).await? {
        if event.created < last {
            return Ok(Err(Done::ignored(format!(
                "superseded: an event of {subscription} created at {last} was applied, and \
                 this one was created at {}",
                event.created
            ))));
        }
    }
    let object = value
        .get("data")
        .and_then(|d| d.get("object"))
        .cloned()
        .unwrap_or_default();
    // The items are the subscription's lines: an object without them, or with only a page of
    // them, does not say which items it has (an item left out would read as removed).
    let items = object.get("items");
    if !items
        .and_then(|i| i.get("data"))
        .is_some_and(Value::is_array)
    {
        return Ok(Err(Done::failed(
            "data.object.items.data: the subscription's items are not in the event, so its \
             lines cannot be known (nothing was changed)"
                .into(),
        )));
    }
    if items.and_then(|i| i.get("has_more")) == Some(&Value::Bool(true)) {
        return Ok(Err(Done::failed(
            "data.object.items.has_more: the event lists only some of the subscription's items \
             (an item left out would read as removed; nothing was changed)"
                .into(),
        )));
    }
    let options = expansa_sources::Options {
        currency: store.import_options().currency,
        ..Default::default()
    };
    let timezone = options.timezone.clone();
    // The store's exchange rates go with the conversion: a subscription in another currency is
    // converted as `convert --fx-rates` would (the store checks the line's month has a rate).
    let latest = store.event_at(AsOf::Latest).await?;
    let rates = store.table(&FX_RATES, latest).await?;
    let converted = tokio::task::spawn_blocking(move || convert(&object, options, &rates)).await;
    let files = match converted {
        Ok(Ok(files)) => files,
        Ok(Err(reason)) => return Ok(Err(Done::failed(reason))),
        Err(e) => return Ok(Err(Done::failed(format!("the conversion stopped: {e}")))),
    };
    let mut changes = Vec::new();
    let mut converted = Vec::new();
    for (schema, rows) in files {
        for row in rows {
            if schema.file == SUBSCRIPTIONS.file {
                converted.push(row.values);
                continue;
            }
            let id = row.values.first().cloned().flatten().unwrap_or_default();
            if store.row(&schema, &id).await?.is_some() {
                // A customer, product or contract the book has: kept as it is (its segment,
                // names and terms may have been set by hand).
                continue;
            }
            changes.push(RowChange::Put {
                schema,
                values: row.values,
                extra: row.extra,
                create_only: false,
            });
        }
    }
    // The subscription's state applies from the event's day on: the book keeps its past.
    let held: Vec<from_day::Values> = store
        .rows_with(&SUBSCRIPTIONS, "contract_id", subscription)
        .await?
        .into_iter()
        .map(|row| row.values)
        .collect();
    let day = jiff::Timestamp::from_second(event.created)
        .map(|t| t.to_zoned(timezone).date())
        .map_err(|e| e.to_string());
    let merged = day.and_then(|day| from_day::merge(&held, &converted, day));
    let lines = match merged {
        Ok(lines) => lines,
        Err(reason) => return Ok(Err(Done::failed(reason))),
    };
    // A line the book holds under another contract is not the subscription's to change (an
    // item id that is already another line's id).
    let ours: std::collections::HashSet<&str> = held
        .iter()
        .filter_map(|l| l.first().and_then(|v| v.as_deref()))
        .collect();
    for change in &lines {
        let from_day::LineChange::Put(values) = change else {
            continue;
        };
        let id = values
            .first()
            .and_then(|v| v.as_deref())
            .unwrap_or_default();
        if ours.contains(id) {
            continue;
        }
        if let Some(other) = store.row(&SUBSCRIPTIONS, id).await? {
            let col = |c: &str| {
                SUBSCRIPTIONS
                    .position(c)
                    .and_then(|k| other.values.get(k).cloned().flatten())
                    .unwrap_or_default()
            };
            return Ok(Err(Done::failed(format!(
                "line {id}: the book already has a line with this id, of customer {} (contract \
                 {:?}), not of subscription {subscription}: nothing was changed",
                col("customer_id"),
                col("contract_id")
            ))));
        }
    }
    changes.extend(lines.into_iter().map(|change| match change {
        from_day::LineChange::Put(values) => RowChange::Put {
            schema: SUBSCRIPTIONS,
            values,
            extra: Vec::new(),
            create_only: false,
        },
        from_day::LineChange::Remove(key) => RowChange::Remove {
            schema: SUBSCRIPTIONS,
            key,
        },
    }));
    Ok(Ok(changes))
}

/// The rows of the book one subscription object converts into, file by file (customers,
/// products and contracts before lines), with the book's exchange rates `rates` (rows of
/// fx_rates.csv), or why it could not be converted (the conversion's problems).
fn convert(
    object: &Value,
    mut options: expansa_sources::Options,
    rates: &[expansa_store::TableRow],
) -> Result<Vec<(Schema, Vec<expansa_import::RawRow>)>, String> {
    let work = tempfile::tempdir().map_err(|e| format!("no temporary folder: {e}"))?;
    if !rates.is_empty() {
        let file = work.path().join("fx_rates.csv");
        let csv = expansa_import::write_rows(
            &FX_RATES,
            &[],
            rates
                .iter()
                .map(|r| (r.values.as_slice(), r.extra.as_slice())),
        );
        std::fs::write(&file, csv).map_err(|e| format!("cannot write the rates: {e}"))?;
        options.fx_rates = Some(file);
    }
    let input = work.path().join("input");
    std::fs::create_dir(&input).map_err(|e| format!("no temporary folder: {e}"))?;
    expansa_sources::convert_stripe_subscription(object, &options, &input)
        .map_err(|e| format!("the subscription was not converted: {}", e.summary(5)))?;
    let book = input.join("book");
    let mut files = Vec::new();
    for schema in [CUSTOMERS, PRODUCTS, CONTRACTS, SUBSCRIPTIONS] {
        let rows = expansa_import::read_rows(&Folder(&book), &schema)
            .map_err(|e| format!("the converted book cannot be read: {}", e.summary(5)))?;
        files.push((schema, rows.unwrap_or_default()));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(header: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(STRIPE_HEADER, header.parse().unwrap());
        h
    }

    #[test]
    fn secrets_file_lines_and_errors() {
        let s = WebhookSecrets::parse("# rotation\nstripe whsec_old0123456789abcdef\nstripe whsec_new0123456789abcdef\n\ngeneric 0123456789abcdef0\n").unwrap();
        assert_eq!((s.stripe.len(), s.generic.len()), (2, 1));
        assert!(!format!("{s:?}").contains("whsec"));
        for bad in [
            "",
            "# only\n",
            "paypal 0123456789abcdef",
            "stripe short",
            "stripe",
        ] {
            let e = WebhookSecrets::parse(bad).unwrap_err();
            assert!(!e.contains("0123456789abcdef"), "{e}");
        }
    }

    #[test]
    fn signatures_match_stripes_scheme_and_refuse_the_rest() {
        let body = br#"{"id":"evt_1"}"#;
        let secrets = vec!["whsec_test_secret_value".to_string()];
        let tolerance = Duration::from_secs(300);
        let now = 1_700_000_000;
        let good = sign(&secrets[0], now, body);
        let ok =
            |h: &str, at: i64| verify(&signed(h), STRIPE_HEADER, body, &secrets, tolerance, at);
        assert!(ok(&format!("t={now},v1={good}"), now).is_ok());
        // Another scheme's signature beside it, and several v1 (one good) pass.
        assert!(ok(
            &format!("t={now},v0=abc,v1={},v1={good}", "0".repeat(64)),
            now
        )
        .is_ok());
        assert!(ok(&format!("t={now},v1={}", "0".repeat(64)), now).is_err());
        assert!(ok(&format!("t={},v1={good}", now + 1), now).is_err());
        assert!(ok(&format!("v1={good}"), now).is_err());
        assert!(ok(&format!("t={now}"), now).is_err());
        assert!(ok(&format!("t={now},v1={good}"), now + 301).is_err());
        assert!(ok(&format!("t={now},v1={good}"), now - 301).is_err());
        assert!(ok(&format!("t={now},v1={good}"), now + 300).is_ok());
        assert!(verify(
            &HeaderMap::new(),
            STRIPE_HEADER,
            body,
            &secrets,
            tolerance,
            now
        )
        .is_err());
    }
}
