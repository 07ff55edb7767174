//! Helpers shared by the API's integration tests: the repository's root and stores on every
//! backend, loaded with a book.
#![allow(dead_code)] // each test file uses a different subset

use expansa_import::{Folder, ImportOptions};
use expansa_store::{Actor, ImportMode, Store};
use std::path::{Path, PathBuf};

/// The repository's root (books live in `testdata/` and `examples/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Store URLs for a test: SQLite (`dir/TAG.db`), and a new PostgreSQL database when
/// `EXPANSA_TEST_POSTGRES` names a server (CI always does).
pub async fn store_urls(dir: &Path, tag: &str) -> Vec<String> {
    let mut urls = vec![format!(
        "sqlite:{}",
        dir.join(format!("{tag}.db")).display()
    )];
    if let Ok(admin) = std::env::var("EXPANSA_TEST_POSTGRES") {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("expansa_t_{tag}_{}_{n}", std::process::id());
        urls.push(
            expansa_store::create_postgres_database(&admin, &name)
                .await
                .unwrap(),
        );
    }
    urls
}

/// The store at `url` with `book` (a folder below the repository's root) imported.
pub async fn loaded(url: &str, book: &str) -> Store {
    let store = Store::open(url, ImportOptions::default()).await.unwrap();
    let actor = Actor {
        who: "test".into(),
        why: "load".into(),
    };
    store
        .import(&Folder(&root().join(book)), ImportMode::Merge, &actor)
        .await
        .unwrap();
    store
}

/// A store per backend (see [`store_urls`]) with `book` imported.
pub async fn stores(dir: &Path, tag: &str, book: &str) -> Vec<Store> {
    let mut out = Vec::new();
    for url in store_urls(dir, tag).await {
        out.push(loaded(&url, book).await);
    }
    out
}
