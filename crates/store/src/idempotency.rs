//! Idempotent writes: the answer of a write is kept under its key with a digest of the request,
//! so the same request sent again is answered again, and the key sent with another request is
//! refused rather than answered with the first request's result.

use crate::keys::hex;
use crate::StoreError;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// A write's idempotency key and the request it comes with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    key: String,
    request: String,
}

impl Idempotency {
    /// `key` as the caller sent it (scoped by the caller, e.g. per API key); `request` is every
    /// byte that says what is asked (method, path, body, or the CLI's request).
    pub fn new(key: impl Into<String>, request: &[u8]) -> Idempotency {
        Idempotency {
            key: key.into(),
            request: hex(&Sha256::digest(request)),
        }
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The digest of the request.
    pub(crate) fn request(&self) -> &str {
        &self.request
    }
}

/// The event and answer of an earlier write under the key, if there was one; an error when
/// that write was another request.
pub(crate) async fn seen(
    conn: &mut sqlx::AnyConnection,
    idempotency: &Idempotency,
) -> Result<Option<(Option<i64>, String)>, StoreError> {
    let row = sqlx::query("SELECT event_id, response, request FROM idempotency WHERE key = $1")
        .bind(idempotency.key())
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let request: String = row.try_get(2)?;
    if !request.is_empty() && request != idempotency.request {
        return Err(StoreError::IdempotencyKeyReused(
            "this idempotency key was first used for a different request: nothing was done \
             (a new request needs a new key)"
                .into(),
        ));
    }
    Ok(Some((row.try_get(0)?, row.try_get(1)?)))
}

/// Keeps the answer of a write (`event`: none when it changed nothing) under its key.
pub(crate) async fn remember(
    conn: &mut sqlx::AnyConnection,
    idempotency: &Idempotency,
    event: Option<i64>,
    response: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO idempotency (key, event_id, response, request) VALUES ($1, $2, $3, $4)",
    )
    .bind(idempotency.key())
    .bind(event)
    .bind(response.unwrap_or_default())
    .bind(idempotency.request())
    .execute(conn)
    .await?;
    Ok(())
}
