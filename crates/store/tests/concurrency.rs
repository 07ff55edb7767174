//! Two writers on one store: the second waits for the first (up to the busy timeout), stores
//! opened at once on a new SQLite file all start, and what a write committed is in the
//! database file itself once the store is closed. SQLite always; PostgreSQL too when
//! `EXPANSA_TEST_POSTGRES` names a server (CI always does).

mod common;

use common::{actor, backends};
use expansa_import::schema::CUSTOMERS;
use expansa_import::ImportOptions;
use expansa_store::{AsOf, RowChange, Store, StoreError};
use std::time::{Duration, Instant};

/// The store at `url` with the demo book imported.
async fn loaded(url: &str) -> Store {
    common::loaded_with(url, "examples/demo", Default::default()).await
}

/// A new customer, as the API's `POST /api/v1/customers` writes it.
fn new_customer(id: &str) -> RowChange {
    let mut values = vec![None; CUSTOMERS.columns.len()];
    values[CUSTOMERS.position("id").unwrap()] = Some(id.to_string());
    values[CUSTOMERS.position("name").unwrap()] = Some(format!("Customer {id}"));
    values[CUSTOMERS.position("registered_on").unwrap()] = Some("2024-05-02".into());
    RowChange::Put {
        schema: CUSTOMERS,
        values,
        extra: vec![],
        create_only: true,
    }
}

/// Another process's write transaction, open on `url` (its own pool, so its own connection):
/// SQLite's write lock (`BEGIN IMMEDIATE`), or PostgreSQL's lock on the event log, as a
/// write of expansa takes them. Dropping it (or `end`) rolls it back.
struct Holder {
    store: Store,
    tx: sqlx::Transaction<'static, sqlx::Any>,
}

impl Holder {
    async fn take(backend: &str, url: &str) -> Holder {
        let store = Store::open(url, ImportOptions::default()).await.unwrap();
        let tx = if backend == "sqlite" {
            store.pool().begin_with("BEGIN IMMEDIATE").await.unwrap()
        } else {
            let mut tx = store.pool().begin().await.unwrap();
            sqlx::query("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx
        };
        Holder { store, tx }
    }

    /// Ends the transaction after `after`, on a task of its own.
    fn release_after(self, after: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            self.tx.rollback().await.unwrap();
            drop(self.store);
        })
    }
}

/// A write while another process holds the write lock for longer than sqlx's 5 s default
/// waits for it and then succeeds: waiting for the other writer is not an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_waits_for_another_writer_and_succeeds() {
    for (backend, url, _guard) in backends("c").await {
        let store = loaded(&url).await;
        let before = store.events().await.unwrap().len();
        let holder = Holder::take(backend, &url).await;
        let released = holder.release_after(Duration::from_millis(6500));
        let started = Instant::now();
        let outcome = store
            .write(
                "line",
                &[new_customer("waited")],
                &actor("while another writes"),
                None,
                |_| None,
            )
            .await;
        let waited = started.elapsed();
        released.await.unwrap();
        let outcome = outcome.unwrap_or_else(|e| panic!("{backend}: after {waited:?}: {e}"));
        assert!(outcome.changed(), "{backend}");
        assert!(
            waited >= Duration::from_secs(6),
            "{backend}: the write did not wait for the other writer ({waited:?})"
        );
        assert_eq!(store.events().await.unwrap().len(), before + 1, "{backend}");
    }
}

/// Many rounds of several stores opened at once on a new SQLite file (each its own pool, as
/// separate processes would be): every one starts, and the schema is made once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_opened_at_once_on_a_new_file_all_start() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..40 {
        let url = format!(
            "sqlite:{}",
            dir.path().join(format!("new{round}.db")).display()
        );
        for store in four_at_once(&url, round).await {
            assert_eq!(store.event_at(AsOf::Latest).await.unwrap(), 0);
        }
    }
}

/// Four stores opened at once on `url`; each must open (a failure names the round).
async fn four_at_once(url: &str, round: usize) -> Vec<Store> {
    let o = || Store::open(url, ImportOptions::default());
    let opened = tokio::join!(o(), o(), o(), o());
    [opened.0, opened.1, opened.2, opened.3]
        .into_iter()
        .enumerate()
        .map(|(k, o)| o.unwrap_or_else(|e| panic!("round {round}, store {k}: {e}")))
        .collect()
}

/// The same race on PostgreSQL: a new database, several stores opened at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_opened_at_once_on_a_new_postgres_database_all_start() {
    for round in 0..3 {
        for (backend, url, _guard) in backends("c").await {
            if backend != "postgres" {
                continue;
            }
            four_at_once(&url, round).await;
        }
    }
}

/// When the other writer keeps its lock past the busy timeout, the write gives up with
/// `Busy` (the API's 503) after about that long, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_gives_up_with_busy_after_the_busy_timeout() {
    for (backend, url, _guard) in backends("c").await {
        loaded(&url).await.close().await.unwrap();
        let store = Store::open_with(&url, ImportOptions::default(), Duration::from_secs(1))
            .await
            .unwrap();
        let before = store.events().await.unwrap().len();
        let holder = Holder::take(backend, &url).await;
        let released = holder.release_after(Duration::from_secs(3));
        let started = Instant::now();
        let outcome = store
            .write(
                "line",
                &[new_customer("hasty")],
                &actor("while another writes"),
                None,
                |_| None,
            )
            .await;
        let waited = started.elapsed();
        released.await.unwrap();
        match outcome {
            Err(StoreError::Busy(m)) => assert!(m.contains("busy"), "{backend}: {m}"),
            other => panic!("{backend}: {other:?}"),
        }
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_millis(2500),
            "{backend}: waited {waited:?}"
        );
        assert_eq!(store.events().await.unwrap().len(), before, "{backend}");
        // Once the other writer is done, the same write goes through.
        store
            .write(
                "line",
                &[new_customer("hasty")],
                &actor("again"),
                None,
                |_| None,
            )
            .await
            .unwrap();
        assert!(
            Store::open_with(&url, ImportOptions::default(), Duration::ZERO)
                .await
                .is_err(),
            "{backend}: a busy timeout of 0"
        );
    }
}

/// Closing a SQLite store folds the WAL into the database file: a copy of that file alone
/// holds the book, even while another connection still has the database open.
#[tokio::test]
async fn a_closed_store_is_all_in_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let url = format!("sqlite:{}", db.display());
    // Another process keeps the database open: the WAL is not removed when this one closes.
    let other = Store::open(&url, ImportOptions::default()).await.unwrap();
    other.event_at(AsOf::Latest).await.unwrap();
    let store = loaded(&url).await;
    let files = store.files(AsOf::Latest).await.unwrap();
    store.close().await.unwrap();
    let copy = dir.path().join("copy.db");
    std::fs::copy(&db, &copy).unwrap();
    let copied = Store::open(
        &format!("sqlite:{}", copy.display()),
        ImportOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(copied.files(AsOf::Latest).await.unwrap(), files);
    copied.close().await.unwrap();
    other.close().await.unwrap();
}

/// `backup` makes a new file that opens as the same store; never over an existing file; a
/// PostgreSQL store is refused, naming pg_dump.
#[tokio::test]
async fn backup_copies_the_store_into_a_new_file() {
    for (backend, url, _guard) in backends("c").await {
        let store = loaded(&url).await;
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("backup.db");
        if backend == "postgres" {
            let e = store.backup(&file).await.unwrap_err();
            assert!(e.to_string().contains("pg_dump"), "{e}");
            let e = Store::backup_source(&url).unwrap_err();
            assert!(e.to_string().contains("pg_dump"), "{e}");
            assert!(!file.exists());
            continue;
        }
        assert!(Store::backup_source(&url).is_ok());
        let made = store.backup(&file).await.unwrap();
        assert_eq!(made.event, 1);
        assert_eq!(made.bytes, std::fs::metadata(&file).unwrap().len());
        let copy = Store::open(
            &format!("sqlite:{}", file.display()),
            ImportOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            copy.files(AsOf::Latest).await.unwrap(),
            store.files(AsOf::Latest).await.unwrap()
        );
        assert_eq!(copy.events().await.unwrap(), store.events().await.unwrap());
        copy.close().await.unwrap();
        let before = std::fs::read(&file).unwrap();
        let e = store.backup(&file).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e}");
        assert_eq!(std::fs::read(&file).unwrap(), before);
        // Nothing is left beside it (but the WAL files of opening the copy above, which SQLite
        // may keep after a read-only close).
        let names: Vec<String> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "backup.db-wal" && n != "backup.db-shm")
            .collect();
        assert_eq!(names, ["backup.db"]);
    }
}

/// `export` refuses a folder holding files of a book, writing nothing; `Replace` replaces
/// that book's files (removing those the store's book has not) and leaves other files alone.
#[tokio::test]
async fn export_never_mixes_two_books() {
    use expansa_store::ExistingBook;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("t.db").display());
    let store = loaded(&url).await;
    let fresh = dir.path().join("fresh");
    let written = store
        .export(
            &fresh,
            AsOf::Latest,
            ExistingBook::Refuse,
            Default::default(),
        )
        .await
        .unwrap();
    assert!(written.iter().any(|f| f == "subscriptions.csv"));
    let again = store
        .export(
            &fresh,
            AsOf::Latest,
            ExistingBook::Refuse,
            Default::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again}");
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("contracts.csv"), "id,customer_id\nK,c\n").unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let e = store
        .export(
            &other,
            AsOf::Latest,
            ExistingBook::Refuse,
            Default::default(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("contracts.csv"), "{e}");
    assert!(!other.join("subscriptions.csv").exists());
    store
        .export(
            &other,
            AsOf::Latest,
            ExistingBook::Replace,
            Default::default(),
        )
        .await
        .unwrap();
    assert!(!other.join("contracts.csv").exists());
    assert_eq!(std::fs::read(other.join("notes.txt")).unwrap(), b"mine");
    assert_eq!(
        std::fs::read(other.join("subscriptions.csv")).unwrap(),
        std::fs::read(fresh.join("subscriptions.csv")).unwrap()
    );
    // Replacing never writes through a link: the link is replaced, its target left alone.
    #[cfg(unix)]
    {
        let outside = dir.path().join("outside.csv");
        std::fs::write(&outside, "id\nsomeone-else\n").unwrap();
        let linked = dir.path().join("linked");
        std::fs::create_dir(&linked).unwrap();
        std::os::unix::fs::symlink(&outside, linked.join("subscriptions.csv")).unwrap();
        store
            .export(
                &linked,
                AsOf::Latest,
                ExistingBook::Replace,
                Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"id\nsomeone-else\n");
        let meta = linked.join("subscriptions.csv").symlink_metadata().unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(
            std::fs::read(linked.join("subscriptions.csv")).unwrap(),
            std::fs::read(fresh.join("subscriptions.csv")).unwrap()
        );
    }
}
