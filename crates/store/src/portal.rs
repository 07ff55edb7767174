//! The customer portal's access links (docs/portal.md): a random token `ID.SECRET` made for one
//! customer by staff, stored as the SHA-256 of its secret (as API keys are), expiring, and
//! revocable. The token is shown once, when the link is made.

use crate::keys::hex;
use crate::{
    constant_time_eq, now_text, sha256_bytes_hex, sha256_hex, time_text, Store, StoreError, Tx,
};
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
        // PostgreSQL takes no NUL in text: no link has such an id.
        if id.contains('\0') {
            return Err(StoreError::NotFound(format!("no portal link {id:?}")));
        }
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

/// Who signed a portal amendment, and how: the signature record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// UTC, RFC 3339 with microseconds.
    pub signed_at: String,
    /// The full name typed.
    pub name: String,
    pub email: String,
    /// The client's IP address as the server saw it (a proxy's, behind one).
    pub client_address: String,
    pub user_agent: String,
}

/// The record as the event log and `portal verify` say it: `signed at TIME by NAME <EMAIL>
/// from ADDRESS (USER AGENT)` (`-` for an address the server did not see).
impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = if self.client_address.is_empty() {
            "-"
        } else {
            &self.client_address
        };
        write!(
            f,
            "signed at {} by {} <{}> from {from} ({})",
            self.signed_at, self.name, self.email, self.user_agent
        )
    }
}

/// An amendment made on the portal: the PDF shown, and once signed, its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalAmendment {
    /// `am_` and 12 hex digits.
    pub id: String,
    /// The link it was made with.
    pub link_id: String,
    pub customer_id: String,
    pub contract_id: String,
    /// What the page asked for (JSON), and `quote amend`'s JSON of it.
    pub request: String,
    pub quote: String,
    /// The SHA-256 of the PDF's exact bytes, in hex.
    pub sha256: String,
    pub created_at: String,
    pub signature: Option<Signature>,
    /// The event that applied it.
    pub event: Option<i64>,
    /// The invoice billing it: its vendor, number (gapless per vendor) and SHA-256.
    pub invoice: Option<(String, i64, String)>,
}

const AMENDMENT_COLUMNS: &str = "id, link_id, customer_id, contract_id, request, quote, sha256, \
     created_at, signed_at, signer_name, signer_email, client_address, user_agent, event, \
     invoice_vendor, invoice_number, invoice_sha256";

fn amendment(r: &sqlx::any::AnyRow) -> Result<PortalAmendment, StoreError> {
    let signed_at: Option<String> = r.try_get(8)?;
    let signature = match signed_at {
        Some(signed_at) => Some(Signature {
            signed_at,
            name: r.try_get::<Option<String>, _>(9)?.unwrap_or_default(),
            email: r.try_get::<Option<String>, _>(10)?.unwrap_or_default(),
            client_address: r.try_get::<Option<String>, _>(11)?.unwrap_or_default(),
            user_agent: r.try_get::<Option<String>, _>(12)?.unwrap_or_default(),
        }),
        None => None,
    };
    let vendor: Option<String> = r.try_get(14)?;
    let number: Option<i64> = r.try_get(15)?;
    let sha: Option<String> = r.try_get(16)?;
    Ok(PortalAmendment {
        id: r.try_get(0)?,
        link_id: r.try_get(1)?,
        customer_id: r.try_get(2)?,
        contract_id: r.try_get(3)?,
        request: r.try_get(4)?,
        quote: r.try_get(5)?,
        sha256: r.try_get(6)?,
        created_at: r.try_get(7)?,
        signature,
        event: r.try_get(13)?,
        invoice: vendor.zip(number).zip(sha).map(|((v, n), s)| (v, n, s)),
    })
}

/// What signing a portal amendment records in the transaction that applies it: the
/// signature, and the invoice that bills it, numbered from the vendor's counter.
pub struct Signing<'a> {
    /// The amendment signed (not signed before).
    pub amendment: &'a str,
    pub signature: &'a Signature,
    /// The vendor whose invoices are numbered (one counter per vendor).
    pub vendor: &'a str,
    /// Makes the invoice's PDF from its number and the event that applies the amendment.
    pub invoice: &'a (dyn Fn(i64, i64) -> Result<Vec<u8>, String> + Sync),
    /// What to send once it is applied: `(kind, target)`, e.g. `("mail", "a@b.example")`,
    /// `("webhook", URL)`; queued in the same transaction.
    pub deliveries: &'a [(&'a str, String)],
}

impl Signing<'_> {
    /// Takes the vendor's next invoice number and records the signature and the invoice, in
    /// `tx`: a rolled-back write leaves no number used and nothing signed.
    pub(crate) async fn record(&self, tx: &mut Tx, event: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO invoice_counters (vendor, last) VALUES ($1, 0) ON CONFLICT (vendor) DO NOTHING",
        )
        .bind(self.vendor)
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE invoice_counters SET last = last + 1 WHERE vendor = $1")
            .bind(self.vendor)
            .execute(&mut **tx)
            .await?;
        let number: i64 = sqlx::query("SELECT last FROM invoice_counters WHERE vendor = $1")
            .bind(self.vendor)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
        let pdf = (self.invoice)(number, event).map_err(StoreError::Invalid)?;
        let s = self.signature;
        let done = sqlx::query(
            "UPDATE portal_amendments SET signed_at = $1, signer_name = $2, signer_email = $3, \
             client_address = $4, user_agent = $5, event = $6, invoice_vendor = $7, \
             invoice_number = $8, invoice_sha256 = $9, invoice_pdf = $10 \
             WHERE id = $11 AND signed_at IS NULL",
        )
        .bind(s.signed_at.as_str())
        .bind(s.name.as_str())
        .bind(s.email.as_str())
        .bind(s.client_address.as_str())
        .bind(s.user_agent.as_str())
        .bind(event)
        .bind(self.vendor)
        .bind(number)
        .bind(sha256_bytes_hex(&pdf))
        .bind(pdf)
        .bind(self.amendment)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "amendment {} is already signed, or there is no such amendment",
                self.amendment
            )));
        }
        for (kind, target) in self.deliveries {
            sqlx::query(
                "INSERT INTO portal_deliveries (amendment_id, kind, target, state, attempts, \
                 next_unix, created_at) VALUES ($1, $2, $3, 'pending', 0, 0, $4)",
            )
            .bind(self.amendment)
            .bind(*kind)
            .bind(target.as_str())
            .bind(now_text())
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

/// A message a signed amendment sends: an e-mail or the provisioning webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub amendment_id: String,
    /// `mail` or `webhook`.
    pub kind: String,
    /// The address or URL.
    pub target: String,
    /// `pending` until sent, then `sent`.
    pub state: String,
    pub attempts: i64,
    /// When it is tried next (Unix seconds).
    pub next_unix: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

const DELIVERY_COLUMNS: &str =
    "id, amendment_id, kind, target, state, attempts, next_unix, last_error, created_at, sent_at";

fn delivery(r: &sqlx::any::AnyRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: r.try_get(0)?,
        amendment_id: r.try_get(1)?,
        kind: r.try_get(2)?,
        target: r.try_get(3)?,
        state: r.try_get(4)?,
        attempts: r.try_get(5)?,
        next_unix: r.try_get(6)?,
        last_error: r.try_get(7)?,
        created_at: r.try_get(8)?,
        sent_at: r.try_get(9)?,
    })
}

impl Store {
    /// Pending deliveries due at `now_unix`, oldest first, at most `limit`.
    pub async fn due_deliveries(
        &self,
        now_unix: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM portal_deliveries WHERE state = 'pending' AND next_unix <= $1 \
             ORDER BY next_unix, id LIMIT $2"
        ))
        .bind(now_unix)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(delivery).collect()
    }

    /// Takes delivery `id` for an attempt until `until_unix`, if it is still pending and due at
    /// `next_unix` (no other worker took it meanwhile).
    pub async fn claim_delivery(
        &self,
        id: i64,
        next_unix: i64,
        until_unix: i64,
    ) -> Result<bool, StoreError> {
        self.mark_written();
        let done = sqlx::query(
            "UPDATE portal_deliveries SET next_unix = $1 WHERE id = $2 AND next_unix = $3 AND state = 'pending'",
        )
        .bind(until_unix)
        .bind(id)
        .bind(next_unix)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The deliveries of an amendment, in the order queued.
    pub async fn deliveries_of(&self, amendment: &str) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM portal_deliveries WHERE amendment_id = $1 ORDER BY id"
        ))
        .bind(amendment)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(delivery).collect()
    }

    /// Logs an attempt at delivery `id`: sent (`ok`), or failed with `detail` and tried again
    /// at `next_unix`.
    pub async fn delivery_attempted(
        &self,
        id: i64,
        ok: bool,
        detail: &str,
        next_unix: i64,
    ) -> Result<(), StoreError> {
        self.mark_written();
        let detail: String = detail.replace('\0', " ").chars().take(2000).collect();
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO portal_delivery_attempts (delivery_id, at, ok, detail) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(now_text())
        .bind(i64::from(ok))
        .bind(detail.as_str())
        .execute(&mut *tx)
        .await?;
        let update = if ok {
            "UPDATE portal_deliveries SET state = 'sent', attempts = attempts + 1, sent_at = $1, \
             last_error = NULL WHERE id = $2"
        } else {
            "UPDATE portal_deliveries SET attempts = attempts + 1, next_unix = $1, last_error = $3 \
             WHERE id = $2"
        };
        let query = if ok {
            sqlx::query(update).bind(now_text()).bind(id)
        } else {
            sqlx::query(update)
                .bind(next_unix)
                .bind(id)
                .bind(detail.as_str())
        };
        query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The attempts logged for delivery `id`: `(at, ok, detail)`, oldest first.
    pub async fn delivery_attempts(
        &self,
        id: i64,
    ) -> Result<Vec<(String, bool, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, ok, detail FROM portal_delivery_attempts WHERE delivery_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get::<i64, _>(1)? != 0, r.try_get(2)?)))
            .collect()
    }
}

/// A document the store keeps: the amendment's PDF or its invoice's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalPdf {
    Amendment,
    Invoice,
}

impl Store {
    /// A new amendment id (`am_` and 12 random hex digits), for [`Store::save_portal_amendment`]
    /// (the PDF prints it, so it is drawn before the PDF is made).
    pub fn new_portal_amendment_id(&self) -> Result<String, StoreError> {
        let mut random = [0u8; 6];
        getrandom::fill(&mut random)
            .map_err(|e| StoreError::Invalid(format!("no randomness for an amendment: {e}")))?;
        Ok(format!("am_{}", hex(&random)))
    }

    /// Keeps an amendment `id` made with `link`: what was asked (`request`), `quote amend`'s JSON
    /// of it (`quote`), and the exact PDF shown; returns it with the SHA-256 of the PDF.
    pub async fn save_portal_amendment(
        &self,
        id: &str,
        link: &PortalLink,
        contract_id: &str,
        request: &str,
        quote: &str,
        pdf: &[u8],
    ) -> Result<PortalAmendment, StoreError> {
        let made = PortalAmendment {
            id: id.to_string(),
            link_id: link.id.clone(),
            customer_id: link.customer_id.clone(),
            contract_id: contract_id.to_string(),
            request: request.to_string(),
            quote: quote.to_string(),
            sha256: sha256_bytes_hex(pdf),
            created_at: now_text(),
            signature: None,
            event: None,
            invoice: None,
        };
        self.mark_written();
        sqlx::query(
            "INSERT INTO portal_amendments (id, link_id, customer_id, contract_id, request, quote, \
             pdf, sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(made.id.as_str())
        .bind(made.link_id.as_str())
        .bind(made.customer_id.as_str())
        .bind(made.contract_id.as_str())
        .bind(made.request.as_str())
        .bind(made.quote.as_str())
        .bind(pdf.to_vec())
        .bind(made.sha256.as_str())
        .bind(made.created_at.as_str())
        .execute(self.pool())
        .await?;
        Ok(made)
    }

    /// The amendment `id`, if any.
    pub async fn portal_amendment(&self, id: &str) -> Result<Option<PortalAmendment>, StoreError> {
        if id.contains('\0') {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {AMENDMENT_COLUMNS} FROM portal_amendments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(amendment).transpose()
    }

    /// The exact bytes of an amendment's PDF or of its invoice's (none before it is signed).
    pub async fn portal_pdf(
        &self,
        id: &str,
        which: PortalPdf,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if id.contains('\0') {
            return Ok(None);
        }
        let column = match which {
            PortalPdf::Amendment => "pdf",
            PortalPdf::Invoice => "invoice_pdf",
        };
        let row = sqlx::query(&format!(
            "SELECT {column} FROM portal_amendments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row
            .map(|r| r.try_get::<Option<Vec<u8>>, _>(0))
            .transpose()?
            .flatten())
    }

    /// The amendments whose PDF, or whose invoice's PDF, has this SHA-256 (hex).
    pub async fn portal_amendments_by_sha256(
        &self,
        sha256: &str,
    ) -> Result<Vec<PortalAmendment>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {AMENDMENT_COLUMNS} FROM portal_amendments WHERE sha256 = $1 OR invoice_sha256 = $1 ORDER BY created_at, id"
        ))
        .bind(sha256.to_ascii_lowercase())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(amendment).collect()
    }

    /// The latest amendments made on the portal: the signed ones first, newest signature first,
    /// then the documents made and not signed, newest first (so that drafts never push the
    /// signed ones out of a short list): at most `limit`.
    pub async fn portal_amendments(&self, limit: u32) -> Result<Vec<PortalAmendment>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {AMENDMENT_COLUMNS} FROM portal_amendments \
             ORDER BY (CASE WHEN signed_at IS NULL THEN 1 ELSE 0 END), \
             COALESCE(signed_at, created_at) DESC, id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(amendment).collect()
    }
}
