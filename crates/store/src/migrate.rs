//! Schema migrations, embedded in the binary and run when a store opens.

use crate::{Dialect, StoreError};
use sqlx::{AnyPool, Row};

/// `(version, SQLite script, PostgreSQL script)`, in order; never edit one that has shipped.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        include_str!("../migrations/sqlite/0001_store.sql"),
        include_str!("../migrations/postgres/0001_store.sql"),
    ),
    (
        2,
        include_str!("../migrations/common/0002_idempotency_request.sql"),
        include_str!("../migrations/common/0002_idempotency_request.sql"),
    ),
    (
        3,
        include_str!("../migrations/sqlite/0003_billing_interval.sql"),
        include_str!("../migrations/postgres/0003_billing_interval.sql"),
    ),
    (
        4,
        include_str!("../migrations/sqlite/0004_accounts.sql"),
        include_str!("../migrations/postgres/0004_accounts.sql"),
    ),
    (
        5,
        include_str!("../migrations/sqlite/0005_webhooks.sql"),
        include_str!("../migrations/postgres/0005_webhooks.sql"),
    ),
    (
        6,
        include_str!("../migrations/common/0006_portal_links.sql"),
        include_str!("../migrations/common/0006_portal_links.sql"),
    ),
    (
        7,
        include_str!("../migrations/sqlite/0007_portal_amendments.sql"),
        include_str!("../migrations/postgres/0007_portal_amendments.sql"),
    ),
    (
        8,
        include_str!("../migrations/sqlite/0008_portal_deliveries.sql"),
        include_str!("../migrations/postgres/0008_portal_deliveries.sql"),
    ),
    (
        9,
        include_str!("../migrations/common/0009_customer_indexes.sql"),
        include_str!("../migrations/common/0009_customer_indexes.sql"),
    ),
];

/// The key of PostgreSQL's advisory lock on the schema (any fixed number: "expansa").
const SCHEMA_LOCK: i64 = 0x0065_7870_616e_7361;

/// Applies the migrations the database does not have yet, each in its own transaction, and
/// says whether it applied any. A store whose schema is up to date is only read (a reader
/// never waits for a writer); otherwise each migration runs under a lock two processes cannot
/// both hold (SQLite's write lock, `BEGIN IMMEDIATE`; PostgreSQL's advisory lock, also around
/// creating `schema_migrations`), and is checked again under it: the second process waits,
/// then finds the work done.
pub(crate) async fn run(pool: &AnyPool, dialect: Dialect) -> Result<bool, StoreError> {
    let done = applied(pool, dialect).await?;
    if MIGRATIONS.iter().all(|(v, _, _)| done.contains(v)) {
        return Ok(false);
    }
    let mut any = false;
    for (version, sqlite, postgres) in MIGRATIONS {
        let mut tx = match dialect {
            Dialect::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
                    .bind(SCHEMA_LOCK)
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        };
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        if dialect == Dialect::Postgres {
            // What binaries before the advisory lock take: they wait for this one too.
            sqlx::query("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("SELECT COUNT(*) FROM schema_migrations WHERE version = $1")
            .bind(*version)
            .fetch_one(&mut *tx)
            .await?;
        if done.try_get::<i64, _>(0)? > 0 {
            tx.rollback().await?;
            continue;
        }
        let script = match dialect {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        };
        sqlx::raw_sql(script).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(crate::now_text())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        any = true;
    }
    Ok(any)
}

/// The versions applied, read without a lock (none when there is no `schema_migrations`).
async fn applied(pool: &AnyPool, dialect: Dialect) -> Result<Vec<i64>, StoreError> {
    let exists = match dialect {
        Dialect::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        }
        Dialect::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'schema_migrations' AND table_schema = current_schema()"
        }
    };
    let n: i64 = sqlx::query(exists).fetch_one(pool).await?.try_get(0)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let rows = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| r.try_get::<i64, _>(0).map_err(StoreError::from))
        .collect()
}
