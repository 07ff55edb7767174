//! Live updates of the book (docs/api.md, "Live updates"): `GET /api/v1/events/stream`, a
//! stream of server-sent events (<https://html.spec.whatwg.org/multipage/server-sent-events.html>)
//! that sends `event: book` with `data: {"event": N}` when it opens and whenever the store's
//! latest event changes, whoever wrote it (this server, another process on the same database).
//! One poller reads the latest event every second while anyone listens, shared by every stream
//! through a watch channel; at most [`MAX_STREAMS`] streams are open at once, each for at most
//! [`MAX_AGE`] (the client opens it again, its login or key checked again).

use crate::{ApiError, AppState};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use expansa_store::{AsOf, Store};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// Streams open at once, over all clients.
pub const MAX_STREAMS: usize = 256;
/// How often the store's latest event is read while a stream is open.
pub const POLL: Duration = Duration::from_secs(1);
/// How often an idle stream sends a comment, so proxies and clients keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long one stream stays open: then it ends and the client opens it again (an
/// `EventSource` does so by itself, [`RECONNECT`] later), its login or key checked anew, so a
/// revoked key or a disabled user stops receiving events within this time.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// How soon a client opens an ended stream again (the stream's `retry` field).
pub const RECONNECT: Duration = Duration::from_secs(1);

/// The latest event, as the poller last read it, and the streams open.
pub(crate) struct Live {
    latest: Arc<watch::Sender<i64>>,
    open: Arc<AtomicUsize>,
}

impl Live {
    /// Starts the poller (when a runtime runs; it stops with the last clone of this).
    pub(crate) fn new(store: Store) -> Live {
        let latest = Arc::new(watch::channel(0).0);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(poll(store, Arc::downgrade(&latest)));
        }
        Live {
            latest,
            open: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// Reads the latest event every [`POLL`] while anyone listens, and tells the listeners of a new
/// one.
async fn poll(store: Store, latest: Weak<watch::Sender<i64>>) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(sender) = latest.upgrade() else {
            return;
        };
        if sender.receiver_count() == 0 {
            continue;
        }
        match store.event_at(AsOf::Latest).await {
            Ok(event) => {
                sender.send_if_modified(|seen| std::mem::replace(seen, event) != event);
            }
            Err(e) => tracing::debug!("live updates: cannot read the latest event: {e}"),
        }
    }
}

/// One open stream, counted until dropped.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One event of the stream, as an `EventSource` reads it: `event` is `book`, `data` the JSON
/// `{"event": N}` (the store's latest event).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: the stream is written by axum's `Event`
pub struct BookEvent {
    #[schema(example = "book")]
    event: String,
    #[schema(example = "{\"event\":42}")]
    data: String,
}

fn book_event(event: i64) -> Result<Event, std::convert::Infallible> {
    Ok(Event::default()
        .event("book")
        .data(serde_json::json!({ "event": event }).to_string()))
}

/// Server-sent events of the book's latest event.
#[utoipa::path(get, path = "/api/v1/events/stream",
    responses((status = 200, description = "text/event-stream: `event: book`, `data: {\"event\": N}` at once and at every new event; a comment every 15 s", content_type = "text/event-stream", body = BookEvent),
              (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody),
              (status = 503, description = "Too many streams open", body = crate::ErrorBody)))]
pub async fn stream(State(s): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let live = &s.live;
    if live.open.fetch_add(1, Ordering::Relaxed) >= MAX_STREAMS {
        live.open.fetch_sub(1, Ordering::Relaxed);
        return Err(ApiError::Busy(format!(
            "{MAX_STREAMS} live streams are open: close one, or try again later"
        )));
    }
    let open = Open(live.open.clone());
    let changes = live.latest.subscribe();
    let first = s.store.event_at(AsOf::Latest).await?;
    let ends = tokio::time::Instant::now() + MAX_AGE;
    let events = futures_util::stream::unfold(
        (changes, Some(first), first, open),
        move |(mut changes, pending, mut sent, open)| async move {
            if let Some(event) = pending {
                let first = book_event(event).map(|e| e.retry(RECONNECT));
                return Some((first, (changes, None, sent, open)));
            }
            loop {
                tokio::select! {
                    changed = changes.changed() => changed.ok()?,
                    () = tokio::time::sleep_until(ends) => return None,
                }
                let event = *changes.borrow_and_update();
                if event != sent {
                    sent = event;
                    return Some((book_event(event), (changes, None, sent, open)));
                }
            }
        },
    );
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}
