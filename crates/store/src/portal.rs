//! The customer portal's access links (docs/portal.md): a random token `ID.SECRET` made for one
//! customer by staff, stored as the SHA-256 of its secret (as API keys are), expiring, and
//! revocable. The token is shown once, when the link is made.

use crate::keys::hex;
use crate::{constant_time_eq, now_text, sha256_hex, time_text, Store, StoreError};
use sqlx::Row;

/// The longest a link may live, in days.
pub const MAX_PORTAL_DAYS: u32 = 90;

/// A portal link as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalLink {
    /// The part of the token before the dot (`pl_` and 12 hex digits).
    pub id: String,
    /// The only customer the link shows.
    pub customer_id: String,
    /// Who made it (a user, a key, `cli`).
    pub created_by: String,
    /// UTC, RFC 3339 with microseconds.
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
}

const COLUMNS: &str = "id, customer_id, created_by, created_at, expires_at, revoked_at";

fn link(r: &sqlx::any::AnyRow) -> Result<PortalLink, StoreError> {
    Ok(PortalLink {
        id: r.try_get(0)?,
        customer_id: r.try_get(1)?,
        created_by: r.try_get(2)?,
        created_at: r.try_get(3)?,
        expires_at: r.try_get(4)?,
        revoked_at: r.try_get(5)?,
    })
}

/// The link id a token or an id names: the part before the dot.
fn id_of(token_or_id: &str) -> &str {
    token_or_id
        .split_once('.')
        .map_or(token_or_id, |(id, _)| id)
        .trim()
}

impl Store {
    /// Makes a link to the portal page of `customer_id` (a customer of the latest book), valid
    /// for `days` (1 to [`MAX_PORTAL_DAYS`]); returns it and its token `ID.SECRET`, the only
    /// time the secret is seen.
    pub async fn create_portal_link(
        &self,
        customer_id: &str,
        days: u32,
        created_by: &str,
    ) -> Result<(PortalLink, String), StoreError> {
        if !(1..=MAX_PORTAL_DAYS).contains(&days) {
            return Err(StoreError::Invalid(format!(
                "--days {days}: a portal link lives 1 to {MAX_PORTAL_DAYS} days"
            )));
        }
        let (_, book) = self.latest_book().await?;
        if book.customers.ids.find(customer_id).is_none() {
            return Err(StoreError::NotFound(format!(
                "unknown customer {customer_id:?}: the store's latest book has no such customer"
            )));
        }
        let mut random = [0u8; 32];
        getrandom::fill(&mut random)
            .map_err(|e| StoreError::Invalid(format!("no randomness for a link: {e}")))?;
        let id = format!("pl_{}", hex(&random[..6]));
        let secret = hex(&random[6..]);
        let now = jiff::Timestamp::now();
        let expires = now
            .checked_add(jiff::SignedDuration::from_hours(24 * i64::from(days)))
            .map_err(|e| StoreError::Invalid(format!("--days {days}: {e}")))?;
        let made = PortalLink {
            id: id.clone(),
            customer_id: customer_id.to_string(),
            created_by: created_by.to_string(),
            created_at: time_text(now),
            expires_at: time_text(expires),
            revoked_at: None,
        };
        self.mark_written();
        sqlx::query(
            "INSERT INTO portal_links (id, secret_hash, customer_id, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(sha256_hex(&secret))
        .bind(customer_id)
        .bind(created_by)
        .bind(made.created_at.as_str())
        .bind(made.expires_at.as_str())
        .execute(self.pool())
        .await?;
        Ok((made, format!("{id}.{secret}")))
    }

    /// Every link, newest first.
    pub async fn portal_links(&self) -> Result<Vec<PortalLink>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM portal_links ORDER BY created_at DESC, id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(link).collect()
    }

    /// Revokes the link a token or a link id names (at once: its next request is refused).
    pub async fn revoke_portal_link(&self, token_or_id: &str) -> Result<PortalLink, StoreError> {
        let id = id_of(token_or_id);
        self.mark_written();
        let done = sqlx::query(
            "UPDATE portal_links SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now_text())
        .bind(id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "no portal link {id:?} that is not already revoked"
            )));
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM portal_links WHERE id = $1"))
            .bind(id)
            .fetch_one(self.pool())
            .await?;
        link(&row)
    }

    /// The link a token `ID.SECRET` opens, if the secret is right, it is not revoked and it has
    /// not expired; `None` otherwise (the caller cannot tell which, nor can the client).
    pub async fn portal_link(&self, token: &str) -> Result<Option<PortalLink>, StoreError> {
        let Some((id, secret)) = token.split_once('.') else {
            return Ok(None);
        };
        // PostgreSQL takes no NUL in text: no link has such an id.
        if id.contains('\0') || id.len() > 64 {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, secret_hash FROM portal_links WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let stored: String = r.try_get(6)?;
        let found = link(&r)?;
        let live = found.revoked_at.is_none() && found.expires_at > now_text();
        if !live || !constant_time_eq(stored.as_bytes(), sha256_hex(secret).as_bytes()) {
            return Ok(None);
        }
        Ok(Some(found))
    }
}
