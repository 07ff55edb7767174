//! API keys (stored as SHA-256 hashes; the secret is shown once) and dashboard layouts.

use crate::{now_text, Role, Store, StoreError};
use sha2::{Digest, Sha256};
use sqlx::Row;

/// An API key as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// What the key may do (keys made before roles existed are `admin`).
    pub role: Role,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `secret`, in hex: how the store keeps API keys and session tokens (and
/// how the API derives a session's CSRF token).
pub fn sha256_hex(secret: &str) -> String {
    sha256_bytes_hex(secret.as_bytes())
}

/// The SHA-256 of `bytes`, in hex (a signed document's).
pub fn sha256_bytes_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

impl Store {
    /// Creates an API key named `name` with `role`; returns `ID.SECRET`, the only time the
    /// secret is seen.
    pub async fn create_key(&self, name: &str, role: Role) -> Result<String, StoreError> {
        self.mark_written();
        let mut random = [0u8; 24];
        getrandom::fill(&mut random)
            .map_err(|e| StoreError::Invalid(format!("no randomness for a key: {e}")))?;
        let id = format!("ek_{}", hex(&random[..6]));
        let secret = hex(&random[6..]);
        sqlx::query(
            "INSERT INTO api_keys (id, secret_hash, name, created_at, role) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id.as_str())
        .bind(sha256_hex(&secret))
        .bind(name)
        .bind(now_text())
        .bind(role.name())
        .execute(self.pool())
        .await?;
        Ok(format!("{id}.{secret}"))
    }

    /// Every key, oldest first.
    pub async fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, revoked_at, role FROM api_keys ORDER BY created_at, id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiKey {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                    revoked_at: r.try_get(3)?,
                    role: Role::stored(&r.try_get::<String, _>(4)?),
                })
            })
            .collect()
    }

    /// Revokes a key.
    pub async fn revoke_key(&self, id: &str) -> Result<(), StoreError> {
        self.mark_written();
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_text())
                .bind(id)
                .execute(self.pool())
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no active key {id:?}")));
        }
        Ok(())
    }

    /// The key a bearer token `ID.SECRET` names, if it is valid and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Option<ApiKey>, StoreError> {
        let Some((id, secret)) = token.split_once('.') else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT id, name, created_at, revoked_at, secret_hash, role FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let stored: String = r.try_get(4)?;
        let revoked: Option<String> = r.try_get(3)?;
        if revoked.is_some() || !constant_time_eq(stored.as_bytes(), sha256_hex(secret).as_bytes())
        {
            return Ok(None);
        }
        Ok(Some(ApiKey {
            id: r.try_get(0)?,
            name: r.try_get(1)?,
            created_at: r.try_get(2)?,
            revoked_at: revoked,
            role: Role::stored(&r.try_get::<String, _>(5)?),
        }))
    }

    /// A dashboard's saved layout (JSON), if any.
    pub async fn dashboard(&self, id: &str) -> Result<Option<String>, StoreError> {
        // PostgreSQL takes no NUL in text: no dashboard has such an id.
        if id.contains('\0') {
            return Ok(None);
        }
        let row = sqlx::query("SELECT layout FROM dashboards WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Saves a dashboard's layout (JSON), replacing the previous one.
    pub async fn save_dashboard(&self, id: &str, layout: &str) -> Result<(), StoreError> {
        if id.contains('\0') || layout.contains('\0') {
            return Err(StoreError::Invalid(
                "a dashboard's id or layout holds a NUL character (U+0000), which no text may \
                 hold"
                    .into(),
            ));
        }
        self.mark_written();
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM dashboards WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO dashboards (id, layout, updated_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(layout)
            .bind(now_text())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Whether `a` and `b` are equal, in a time that does not depend on where they differ (for
/// secrets).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
