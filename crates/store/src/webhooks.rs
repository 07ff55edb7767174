//! Events received from billing systems by webhook: each kept once by its source and id (a
//! second delivery is known and dropped), queued in the order received, then marked applied
//! (with the book's event), ignored or failed, each with its reason. The queue is a table, so
//! events received and not yet applied are applied after a restart.

use crate::{now_text, Store, StoreError};
use sqlx::Row;

/// The most events a queue holds not yet applied: past it, new deliveries are refused (the
/// sender delivers them again later).
pub const MAX_QUEUED_WEBHOOKS: i64 = 10_000;

/// What became of a received event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookState {
    /// Received, waiting to be applied.
    Queued,
    /// Applied to the book (an event of the store, or no change when the book already was so).
    Applied,
    /// Not applied, on purpose (the reason says why).
    Ignored,
    /// Could not be applied (the reason says why).
    Failed,
}

impl WebhookState {
    pub fn name(self) -> &'static str {
        match self {
            WebhookState::Queued => "queued",
            WebhookState::Applied => "applied",
            WebhookState::Ignored => "ignored",
            WebhookState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<WebhookState, StoreError> {
        [
            WebhookState::Queued,
            WebhookState::Applied,
            WebhookState::Ignored,
            WebhookState::Failed,
        ]
        .into_iter()
        .find(|s| s.name() == text)
        .ok_or_else(|| StoreError::Invalid(format!("webhook_events: unknown state {text:?}")))
    }
}

/// One received event, as kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEvent {
    /// Its place in the queue (order of receipt).
    pub seq: i64,
    /// `stripe`, `generic`.
    pub source: String,
    /// The sender's id of the event.
    pub event_id: String,
    /// The sender's type of the event (`customer.subscription.updated`).
    pub kind: String,
    /// When the sender says the event happened (Unix seconds).
    pub created: i64,
    /// What the event is about (a Stripe subscription's id), when it changes one thing.
    pub subject: Option<String>,
    /// The body as received.
    pub payload: String,
    pub state: WebhookState,
    pub reason: Option<String>,
    /// The store's event that applied it.
    pub store_event: Option<i64>,
}

/// A new event to queue.
#[derive(Clone, Copy, Debug)]
pub struct NewWebhook<'a> {
    pub source: &'a str,
    pub event_id: &'a str,
    pub kind: &'a str,
    pub created: i64,
    pub subject: Option<&'a str>,
    pub payload: &'a str,
}

const COLUMNS: &str =
    "seq, source, event_id, kind, created, subject, payload, state, reason, store_event";

fn event_of(r: &sqlx::any::AnyRow) -> Result<WebhookEvent, StoreError> {
    Ok(WebhookEvent {
        seq: r.try_get(0)?,
        source: r.try_get(1)?,
        event_id: r.try_get(2)?,
        kind: r.try_get(3)?,
        created: r.try_get(4)?,
        subject: r.try_get(5)?,
        payload: r.try_get(6)?,
        state: WebhookState::parse(&r.try_get::<String, _>(7)?)?,
        reason: r.try_get(8)?,
        store_event: r.try_get(9)?,
    })
}

impl Store {
    /// Queues `event` unless its source already sent its id: `Ok(true)` when queued, `Ok(false)`
    /// for a second delivery (nothing kept). Refused when [`MAX_QUEUED_WEBHOOKS`] wait already.
    pub async fn queue_webhook(&self, event: NewWebhook<'_>) -> Result<bool, StoreError> {
        let texts = [
            event.source,
            event.event_id,
            event.kind,
            event.subject.unwrap_or_default(),
            event.payload,
        ];
        if texts.iter().any(|t| t.contains('\0')) {
            return Err(StoreError::Invalid(
                "a webhook event holds a NUL character (U+0000), which no text may hold".into(),
            ));
        }
        self.mark_written();
        // One statement (a transaction that reads, then writes, could not wait for another
        // writer in SQLite): kept unless the id is known or the queue is full.
        let done = sqlx::query(
            "INSERT INTO webhook_events (source, event_id, kind, created, subject, payload, received_at, state) \
             SELECT $1, $2, $3, $4, $5, $6, $7, 'queued' \
             WHERE (SELECT COUNT(*) FROM webhook_events WHERE state = 'queued') < $8 \
             ON CONFLICT (source, event_id) DO NOTHING",
        )
        .bind(event.source)
        .bind(event.event_id)
        .bind(event.kind)
        .bind(event.created)
        .bind(event.subject)
        .bind(event.payload)
        .bind(now_text())
        .bind(MAX_QUEUED_WEBHOOKS)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        let known: i64 =
            sqlx::query("SELECT COUNT(*) FROM webhook_events WHERE source = $1 AND event_id = $2")
                .bind(event.source)
                .bind(event.event_id)
                .fetch_one(self.pool())
                .await?
                .try_get(0)?;
        if known > 0 {
            return Ok(false);
        }
        Err(StoreError::Busy(format!(
            "{MAX_QUEUED_WEBHOOKS} webhook events wait to be applied: nothing was kept; send \
             the event again later"
        )))
    }

    /// The oldest event still queued, if any.
    pub async fn next_webhook(&self) -> Result<Option<WebhookEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_events WHERE state = 'queued' ORDER BY seq LIMIT 1"
        );
        let row = sqlx::query(&sql).fetch_optional(self.pool()).await?;
        row.as_ref().map(event_of).transpose()
    }

    /// The `created` time of the newest event of `source` about `subject` applied so far.
    pub async fn last_applied_webhook(
        &self,
        source: &str,
        subject: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MAX(created) FROM webhook_events WHERE source = $1 AND subject = $2 AND state = 'applied'",
        )
        .bind(source)
        .bind(subject)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Records what became of the queued event `seq`.
    pub async fn finish_webhook(
        &self,
        seq: i64,
        state: WebhookState,
        reason: Option<&str>,
        store_event: Option<i64>,
    ) -> Result<(), StoreError> {
        self.mark_written();
        sqlx::query(
            "UPDATE webhook_events SET state = $1, reason = $2, store_event = $3, done_at = $4 WHERE seq = $5",
        )
        .bind(state.name())
        .bind(reason.map(|r| r.replace('\0', "")))
        .bind(store_event)
        .bind(now_text())
        .bind(seq)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Queues the failed event `event_id` of `source` again (its cause fixed, say the book's
    /// missing exchange rates added): `Ok(None)` when there is no such event, else its state
    /// before (only a [`WebhookState::Failed`] one is queued again).
    pub async fn retry_webhook(
        &self,
        source: &str,
        event_id: &str,
    ) -> Result<Option<WebhookState>, StoreError> {
        if event_id.contains('\0') {
            return Ok(None);
        }
        let row =
            sqlx::query("SELECT state FROM webhook_events WHERE source = $1 AND event_id = $2")
                .bind(source)
                .bind(event_id)
                .fetch_optional(self.pool())
                .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let state = WebhookState::parse(&row.try_get::<String, _>(0)?)?;
        if state == WebhookState::Failed {
            self.mark_written();
            sqlx::query(
                "UPDATE webhook_events SET state = 'queued', reason = NULL, store_event = NULL, \
                 done_at = NULL WHERE source = $1 AND event_id = $2 AND state = 'failed'",
            )
            .bind(source)
            .bind(event_id)
            .execute(self.pool())
            .await?;
        }
        Ok(Some(state))
    }

    /// The last `limit` events received from `source`, in the order received.
    pub async fn webhook_events(
        &self,
        source: &str,
        limit: u32,
    ) -> Result<Vec<WebhookEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM webhook_events WHERE source = $1 \
             ORDER BY seq DESC LIMIT $2) AS newest ORDER BY seq"
        );
        let rows = sqlx::query(&sql)
            .bind(source)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(event_of).collect()
    }
}
