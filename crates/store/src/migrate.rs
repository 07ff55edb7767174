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
];

/// Applies the migrations the database does not have yet, each in its own transaction.
pub(crate) async fn run(pool: &AnyPool, dialect: Dialect) -> Result<(), StoreError> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .execute(pool)
    .await?;
    for (version, sqlite, postgres) in MIGRATIONS {
        let mut tx = pool.begin().await?;
        if dialect == Dialect::Postgres {
            // Two servers starting at once: the second waits, then finds the work done.
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
    }
    Ok(())
}
