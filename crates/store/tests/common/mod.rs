//! Setup shared by the store's test binaries: the repository root, an actor, and a fresh
//! database on each backend.

use expansa_import::{Folder, ImportOptions};
use expansa_store::{Actor, ImportMode, Store, WriteValidation};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn actor(why: &str) -> Actor {
    Actor {
        who: "test".into(),
        why: why.into(),
    }
}

/// A fresh database on each backend: `(name, url, guard)`. PostgreSQL databases are named
/// `expansa_{prefix}_{process}_{n}`; without `EXPANSA_TEST_POSTGRES` only SQLite runs, which
/// CI refuses.
pub async fn backends(prefix: &str) -> Vec<(&'static str, String, Option<tempfile::TempDir>)> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("t.db").display());
    let mut out = vec![("sqlite", url, Some(dir))];
    match std::env::var("EXPANSA_TEST_POSTGRES") {
        Ok(admin) => {
            // `expansa_t_`: scripts/postgres.sh drops those a killed or finished run left.
            let name = format!(
                "expansa_t_{prefix}_{}_{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let url = expansa_store::create_postgres_database(&admin, &name)
                .await
                .unwrap();
            out.push(("postgres", url, None));
        }
        Err(_) => assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the store tests on PostgreSQL too: set EXPANSA_TEST_POSTGRES"
        ),
    }
    out
}

/// A store at `url` validating writes as `validation` says, with the bundled book `book`
/// (a folder under the repository, e.g. `examples/demo`) imported.
#[allow(dead_code)] // not every test binary loads a book
pub async fn loaded_with(url: &str, book: &str, validation: WriteValidation) -> Store {
    let store = Store::open(url, ImportOptions::default())
        .await
        .unwrap()
        .with_write_validation(validation);
    store
        .import(
            &Folder(&root().join(book)),
            ImportMode::Merge,
            &actor("load"),
        )
        .await
        .unwrap();
    store
}

/// A new line `id` of `customer` (one ADDON at 10.00 from 2024-06-01), as the API's
/// `POST /api/v1/lines` writes it.
#[allow(dead_code)] // not every test binary writes lines
pub fn new_line(id: &str, customer: &str) -> expansa_store::RowChange {
    use expansa_import::schema::SUBSCRIPTIONS;
    let mut values = vec![None; SUBSCRIPTIONS.columns.len()];
    for (c, v) in [
        ("id", id),
        ("customer_id", customer),
        ("product_id", "ADDON"),
        ("unit_price", "10.00"),
        ("start_date", "2024-06-01"),
    ] {
        values[SUBSCRIPTIONS.position(c).unwrap()] = Some(v.to_string());
    }
    expansa_store::RowChange::Put {
        schema: SUBSCRIPTIONS,
        values,
        extra: vec![],
        create_only: true,
    }
}
