//! The store against SQLite and, when `EXPANSA_TEST_POSTGRES` names a server (CI always does),
//! PostgreSQL: every test runs on both, each on a fresh database.

mod common;

use common::{actor, backends, new_line, root};
use expansa_contracts::{quote_amend, AmendRequest, Change, Precision};
use expansa_import::schema::SUBSCRIPTIONS;
use expansa_import::{read_book, Folder, ImportOptions, NoProgress};
use expansa_ledger::{Book, Date, Month};
use expansa_movements::{render_json, report_selected, ByCustomer, Query, Selection};
use expansa_store::{
    quote_changes, AsOf, Idempotency, ImportMode, NewWebhook, RowChange, Store, StoreError,
    WebhookState,
};
use std::path::{Path, PathBuf};

async fn open(url: &str) -> Store {
    Store::open(url, ImportOptions::default()).await.unwrap()
}

/// A store at `url` with the bundled book `book` imported, and the book's folder.
async fn loaded(url: &str, book: &str) -> (Store, PathBuf) {
    let store = common::loaded_with(url, book, Default::default()).await;
    (store, root().join(book))
}

fn movements(book: &Book, from: &str, to: &str) -> String {
    let query = Query {
        from: from.parse::<Month>().unwrap(),
        to: to.parse::<Month>().unwrap(),
        rules: Default::default(),
    };
    let selection = Selection::from_filters(book, &[]).unwrap();
    render_json(&report_selected(
        book,
        &query,
        &ByCustomer::new(book, &selection),
    ))
}

fn folder_book(dir: &Path) -> Book {
    read_book(dir, &ImportOptions::default(), &NoProgress).unwrap()
}

fn books() -> Vec<PathBuf> {
    let mut dirs = vec![
        root().join("examples/demo"),
        root().join("testdata/contracts"),
        root().join("testdata/opportunities"),
    ];
    let mut golden: Vec<PathBuf> = std::fs::read_dir(root().join("testdata/golden"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("subscriptions.csv").exists())
        .collect();
    golden.sort();
    dirs.extend(golden);
    dirs
}

/// Every bundled book goes in and comes out the same: same reports, and its export, imported
/// into a fresh store and exported again, is byte for byte the first export.
#[tokio::test]
async fn round_trip_keeps_every_book() {
    for book_dir in books() {
        for (backend, url, _guard) in backends("t").await {
            let store = open(&url).await;
            let outcome = store
                .import(&Folder(&book_dir), ImportMode::Merge, &actor("load"))
                .await
                .unwrap();
            assert!(outcome.changed(), "{backend}: {}", book_dir.display());
            let original = folder_book(&book_dir);
            let stored = store.book(AsOf::Latest).await.unwrap();
            assert_eq!(
                movements(&original, "2022-01", "2025-12"),
                movements(&stored, "2022-01", "2025-12"),
                "{backend}: {}",
                book_dir.display()
            );
            let out = tempfile::tempdir().unwrap();
            store
                .export(
                    out.path(),
                    AsOf::Latest,
                    Default::default(),
                    Default::default(),
                )
                .await
                .unwrap();
            let first = store.files(AsOf::Latest).await.unwrap();
            for (backend2, url2, _g2) in backends("t").await {
                let second = open(&url2).await;
                second
                    .import(&Folder(out.path()), ImportMode::Merge, &actor("again"))
                    .await
                    .unwrap();
                assert_eq!(
                    first,
                    second.files(AsOf::Latest).await.unwrap(),
                    "{backend} -> {backend2}: {}",
                    book_dir.display()
                );
            }
        }
    }
}

#[tokio::test]
async fn reimporting_changes_nothing_and_records_no_event() {
    for (backend, url, _guard) in backends("t").await {
        let store = open(&url).await;
        let dir = root().join("examples/demo");
        store
            .import(&Folder(&dir), ImportMode::Merge, &actor("1"))
            .await
            .unwrap();
        let again = store
            .import(&Folder(&dir), ImportMode::Merge, &actor("2"))
            .await
            .unwrap();
        assert_eq!(again.event, None, "{backend}");
        assert!(again
            .files
            .iter()
            .all(|f| f.added + f.changed + f.removed == 0));
        assert_eq!(store.events().await.unwrap().len(), 1, "{backend}");
    }
}

fn write_book(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        std::fs::write(dir.join(name), body).unwrap();
    }
}

#[tokio::test]
async fn a_bad_book_changes_nothing_and_lists_every_problem() {
    for (backend, url, _guard) in backends("t").await {
        let store = open(&url).await;
        let good = root().join("testdata/contracts");
        store
            .import(&Folder(&good), ImportMode::Merge, &actor("good"))
            .await
            .unwrap();
        let before = store.files(AsOf::Latest).await.unwrap();
        // Bad on its own: two problems, both listed with file:line.
        let bad = tempfile::tempdir().unwrap();
        write_book(
            bad.path(),
            &[(
                "subscriptions.csv",
                "id,customer_id,product_id,unit_price,start_date\nX1,c1,SEAT,abc,2024-01-01\nX2,c1,SEAT,10,2024-13-01\n",
            )],
        );
        let err = store
            .import(&Folder(bad.path()), ImportMode::Merge, &actor("bad"))
            .await
            .unwrap_err();
        let StoreError::Book(problems) = err else {
            panic!("{backend}: {err}")
        };
        let text: Vec<String> = problems.0.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("subscriptions.csv:2: unit_price: abc")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("subscriptions.csv:3: start_date")),
            "{text:?}"
        );
        // Good on its own, bad once merged: a customer the store's customers.csv lacks.
        write_book(
            bad.path(),
            &[(
                "subscriptions.csv",
                "id,customer_id,product_id,unit_price,start_date\nX1,nobody,SEAT,10,2024-01-01\n",
            )],
        );
        let err = store
            .import(&Folder(bad.path()), ImportMode::Merge, &actor("bad merge"))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("the book was not changed"),
            "{backend}: {err}"
        );
        let StoreError::Book(problems) = err else {
            panic!()
        };
        assert!(
            problems.0[0].to_string().contains("nobody"),
            "{:?}",
            problems.0
        );
        assert_eq!(
            store.files(AsOf::Latest).await.unwrap(),
            before,
            "{backend}"
        );
        assert_eq!(store.events().await.unwrap().len(), 1, "{backend}");
    }
}

fn day(s: &str) -> Date {
    s.parse().unwrap()
}

#[tokio::test]
async fn history_reads_the_book_as_of_any_event() {
    for (backend, url, _guard) in backends("t").await {
        let (store, dir) = loaded(&url, "testdata/contracts").await;
        let book = store.book(AsOf::Latest).await.unwrap();
        let quote = quote_amend(
            &book,
            &AmendRequest {
                contract: "K1".into(),
                effective: day("2024-01-23"),
                changes: vec![Change::Add("SEAT".into(), "1".parse().unwrap())],
                precision: Precision::MonthDay,
            },
        )
        .unwrap();
        let key = Idempotency::new("amend-K1-seat", b"K1 +1 SEAT from 2024-01-23");
        let first = store
            .write(
                "amend",
                &quote_changes(&quote),
                &actor("more seats"),
                Some(&key),
                |e| e.map(|e| format!("event {e}")),
            )
            .await
            .unwrap();
        let event = first.event.unwrap();
        // The same request again: nothing changes, the first answer comes back.
        let second = store
            .write(
                "amend",
                &quote_changes(&quote),
                &actor("more seats"),
                Some(&key),
                |_| None,
            )
            .await
            .unwrap();
        assert!(second.replayed, "{backend}");
        assert_eq!(
            second.response.as_deref(),
            Some(format!("event {event}").as_str())
        );
        assert_eq!(store.events().await.unwrap().len(), 2, "{backend}");
        // The key with another request: refused, nothing done.
        let other = Idempotency::new("amend-K1-seat", b"K1 +2 SEAT from 2024-01-23");
        let reused = store
            .write(
                "amend",
                &quote_changes(&quote),
                &actor("more seats"),
                Some(&other),
                |_| None,
            )
            .await;
        assert!(
            matches!(reused, Err(StoreError::IdempotencyKeyReused(_))),
            "{backend}: {reused:?}"
        );
        assert!(matches!(
            store.replay(&other).await,
            Err(StoreError::IdempotencyKeyReused(_))
        ));
        assert!(store.replay(&key).await.unwrap().is_some(), "{backend}");
        assert_eq!(store.events().await.unwrap().len(), 2, "{backend}");
        // As of the import, the book is the folder; now it has the amendment.
        let then = store.book(AsOf::Event(1)).await.unwrap();
        assert_eq!(
            movements(&then, "2023-11", "2024-12"),
            movements(&folder_book(&dir), "2023-11", "2024-12")
        );
        let now = store.book(AsOf::Latest).await.unwrap();
        assert_eq!(now.lines.len(), then.lines.len() + 1);
        let events = store.events().await.unwrap();
        assert_eq!(events[1].kind, "amend");
        assert_eq!(events[1].reason, "more seats");
        assert_eq!(events[1].actor, "test");
        // By time: before the first event there is no book; at the second's instant, it is there.
        let at: jiff::Timestamp = events[1].at.parse().unwrap();
        assert_eq!(
            store.book(AsOf::Time(at)).await.unwrap().lines.len(),
            now.lines.len()
        );
        assert!(store
            .book(AsOf::Time(at - jiff::SignedDuration::from_hours(24 * 365)))
            .await
            .is_err());
        assert!(matches!(
            store.book(AsOf::Event(99)).await,
            Err(StoreError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn backdated_lines_recompute_every_month_they_touch() {
    for (backend, url, _guard) in backends("t").await {
        let (store, dir) = loaded(&url, "examples/demo").await;
        let before = store.book(AsOf::Latest).await.unwrap();
        let customer = before.customers.ids.get(0).to_string();
        let mut values = vec![None; SUBSCRIPTIONS.columns.len()];
        for (c, v) in [
            ("id", "BACKDATED-1"),
            ("customer_id", customer.as_str()),
            ("product_id", before.products.ids.get(0)),
            ("unit_price", "100.00"),
            ("start_date", "2024-03-10"),
        ] {
            values[SUBSCRIPTIONS.position(c).unwrap()] = Some(v.to_string());
        }
        let change = RowChange::Put {
            schema: SUBSCRIPTIONS,
            values,
            extra: vec![],
            create_only: true,
        };
        store
            .write(
                "line",
                &[change],
                &actor("contract signed last March"),
                None,
                |_| None,
            )
            .await
            .unwrap();
        let after = store.book(AsOf::Latest).await.unwrap();
        // The same line added to the folder gives the same report, month by month.
        let copy = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            std::fs::copy(&p, copy.path().join(p.file_name().unwrap())).unwrap();
        }
        let mut subs = std::fs::read_to_string(copy.path().join("subscriptions.csv")).unwrap();
        let header: Vec<&str> = subs.lines().next().unwrap().split(',').collect();
        let row: Vec<&str> = header
            .iter()
            .map(|h| match h.trim() {
                "id" => "BACKDATED-1",
                "customer_id" => customer.as_str(),
                "product_id" => before.products.ids.get(0),
                "unit_price" => "100.00",
                "start_date" => "2024-03-10",
                _ => "",
            })
            .collect();
        if !subs.ends_with('\n') {
            subs.push('\n');
        }
        subs += &(row.join(",") + "\n");
        std::fs::write(copy.path().join("subscriptions.csv"), subs).unwrap();
        assert_eq!(
            movements(&after, "2023-01", "2024-12"),
            movements(&folder_book(copy.path()), "2023-01", "2024-12"),
            "{backend}"
        );
        assert_ne!(
            movements(&after, "2024-03", "2024-12"),
            movements(&before, "2024-03", "2024-12")
        );
        assert_eq!(
            movements(&after, "2023-01", "2024-02"),
            movements(&before, "2023-01", "2024-02")
        );
    }
}

#[tokio::test]
async fn replace_mode_removes_what_the_files_lack() {
    for (backend, url, _guard) in backends("t").await {
        let (store, dir) = loaded(&url, "testdata/contracts").await;
        let smaller = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            std::fs::copy(&p, smaller.path().join(p.file_name().unwrap())).unwrap();
        }
        let subs = std::fs::read_to_string(dir.join("subscriptions.csv")).unwrap();
        let kept: Vec<&str> = subs.lines().filter(|l| !l.starts_with("L6,")).collect();
        std::fs::write(
            smaller.path().join("subscriptions.csv"),
            kept.join("\n") + "\n",
        )
        .unwrap();
        let merged = store
            .import(&Folder(smaller.path()), ImportMode::Merge, &actor("merge"))
            .await
            .unwrap();
        assert_eq!(
            merged.event, None,
            "{backend}: merging a subset changes nothing"
        );
        let replaced = store
            .import(
                &Folder(smaller.path()),
                ImportMode::Replace,
                &actor("replace"),
            )
            .await
            .unwrap();
        let subs = replaced
            .files
            .iter()
            .find(|f| f.file == "subscriptions.csv")
            .unwrap();
        assert_eq!((subs.removed, subs.unchanged), (1, 5), "{backend}");
        assert_eq!(store.book(AsOf::Latest).await.unwrap().lines.len(), 5);
        assert_eq!(store.book(AsOf::Event(1)).await.unwrap().lines.len(), 6);
    }
}

/// Many writers at once: every write lands exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_serialised_and_none_is_lost() {
    for (backend, url, _guard) in backends("t").await {
        let (store, _) = loaded(&url, "testdata/contracts").await;
        let mut tasks = Vec::new();
        for i in 0..24 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let change = new_line(&format!("N{i}"), &format!("c{}", 1 + i % 6));
                // Every write twice under one key: the second is a replay.
                let key = Idempotency::new(format!("line-{i}"), format!("N{i}").as_bytes());
                let a = store
                    .write(
                        "line",
                        std::slice::from_ref(&change),
                        &actor("new line"),
                        Some(&key),
                        |_| None,
                    )
                    .await
                    .unwrap();
                let b = store
                    .write("line", &[change], &actor("new line"), Some(&key), |_| None)
                    .await
                    .unwrap();
                (a.event.is_some(), b.replayed)
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), (true, true), "{backend}");
        }
        assert_eq!(
            store.book(AsOf::Latest).await.unwrap().lines.len(),
            6 + 24,
            "{backend}"
        );
        assert_eq!(store.events().await.unwrap().len(), 1 + 24, "{backend}");
    }
}

/// Each store keeps the latest book in memory; a write by another process (another store on
/// the same database) must still be seen, and validated against.
#[tokio::test]
async fn two_processes_see_each_others_writes() {
    for (backend, url, _guard) in backends("t").await {
        let a = open(&url).await;
        let b = open(&url).await;
        let dir = root().join("testdata/contracts");
        a.import(&Folder(&dir), ImportMode::Merge, &actor("load"))
            .await
            .unwrap();
        assert_eq!(a.book(AsOf::Latest).await.unwrap().lines.len(), 6);
        a.write("line", &[new_line("A1", "c1")], &actor("a"), None, |_| None)
            .await
            .unwrap();
        b.write("line", &[new_line("B1", "c2")], &actor("b"), None, |_| None)
            .await
            .unwrap();
        // a's memory is at its own write; b's came after.
        assert_eq!(
            a.book(AsOf::Latest).await.unwrap().lines.len(),
            8,
            "{backend}"
        );
        assert_eq!(a.latest_book().await.unwrap().1.lines.len(), 8, "{backend}");
        // a writes again: validated on the database's state, not on its stale memory.
        let dup = a
            .write("line", &[new_line("B1", "c3")], &actor("a"), None, |_| None)
            .await;
        assert!(
            matches!(dup, Err(StoreError::Conflict(_))),
            "{backend}: {dup:?}"
        );
        a.write("line", &[new_line("A2", "c1")], &actor("a"), None, |_| None)
            .await
            .unwrap();
        assert_eq!(
            b.book(AsOf::Latest).await.unwrap().lines.len(),
            9,
            "{backend}"
        );
        let files_a = a.files(AsOf::Latest).await.unwrap();
        let files_b = b.files(AsOf::Latest).await.unwrap();
        assert_eq!(
            files_a, files_b,
            "{backend}: memory and database agree byte for byte"
        );
    }
}

/// A row written outside a CSV file (the API's row writes, quotes) with a value no database
/// can keep is refused before either database sees it, the same way on both: a book problem
/// naming the column and value, never a database error (the API answered 500 on PostgreSQL).
#[tokio::test]
async fn values_no_database_can_keep_are_refused_alike_on_both_stores() {
    let mut refusals: Vec<Vec<String>> = Vec::new();
    for (backend, url, _guard) in backends("t").await {
        let (store, _) = loaded(&url, "testdata/contracts").await;
        let events = store.events().await.unwrap().len();
        let mut said = Vec::new();
        for (column, value) in [
            ("start_date", "0000-01-01"),
            ("start_date", "2024-02-30"),
            ("unit_price", "1e3"),
            ("quantity", "1\u{0}"),
            ("revises", "L\u{0}1"),
            ("billing_period_months", "x"),
        ] {
            let RowChange::Put {
                schema,
                mut values,
                extra,
                create_only,
            } = new_line("N1", "c1")
            else {
                unreachable!()
            };
            values[schema.position(column).unwrap()] = Some(value.to_string());
            let change = RowChange::Put {
                schema,
                values,
                extra,
                create_only,
            };
            let written = store
                .write("line", &[change], &actor("api"), None, |_| None)
                .await;
            let Err(StoreError::Book(problems)) = written else {
                panic!("{backend}: {column}={value:?}: {written:?}");
            };
            said.extend(problems.0.iter().map(|p| p.to_string()));
        }
        // A customer attribute holding a NUL, and a row key no row can have.
        let change = RowChange::Put {
            schema: expansa_import::schema::CUSTOMERS,
            values: vec![Some("c9".into()), None, None, None, None, None],
            extra: vec![("note".into(), "a\u{0}b".into())],
            create_only: true,
        };
        let written = store
            .write("customer", &[change], &actor("api"), None, |_| None)
            .await;
        let Err(StoreError::Book(problems)) = written else {
            panic!("{backend}: {written:?}");
        };
        said.extend(problems.0.iter().map(|p| p.to_string()));
        let removed = store
            .write(
                "line",
                &[RowChange::Remove {
                    schema: SUBSCRIPTIONS,
                    key: "L\u{0}".into(),
                }],
                &actor("api"),
                None,
                |_| None,
            )
            .await;
        assert!(
            matches!(removed, Err(StoreError::NotFound(_))),
            "{backend}: {removed:?}"
        );
        assert_eq!(store.events().await.unwrap().len(), events, "{backend}");
        assert!(store
            .book(AsOf::Latest)
            .await
            .unwrap()
            .lines
            .ids
            .find("N1")
            .is_none());
        refusals.push(said);
    }
    let nothing = "(in the row written; nothing was changed)";
    assert_eq!(
        refusals[0],
        [
            format!(
                "subscriptions.csv:0: start_date: 0000-01-01: the year 0000 does not exist \
                 (years run from 0001; PostgreSQL cannot store it) {nothing}"
            ),
            format!(
                "subscriptions.csv:0: start_date: 2024-02-30: not a date (expected YYYY-MM-DD, \
                 a real day) {nothing}"
            ),
            format!(
                "subscriptions.csv:0: unit_price: 1e3: not a decimal number (like 1234.56) \
                 {nothing}"
            ),
            format!(
                "subscriptions.csv:0: quantity: 1\\0: not a decimal number (like 1234.56) \
                 {nothing}"
            ),
            format!(
                "subscriptions.csv:0: revises: L\\01: holds a NUL character (U+0000), which no \
                 text may hold (PostgreSQL cannot store it) {nothing}"
            ),
            format!("subscriptions.csv:0: billing_period_months: x: not a whole number {nothing}"),
            format!(
                "customers.csv:0: note: a\\0b: holds a NUL character (U+0000), which no text \
                 may hold (PostgreSQL cannot store it) {nothing}"
            ),
        ]
    );
    for other in &refusals[1..] {
        assert_eq!(other, &refusals[0], "the same on both stores");
    }
}

/// `billing_interval` and `billing_interval_count` (store version 3) are kept as columns: a
/// book of weekly and daily lines goes in and comes out with them, and reads the same.
#[tokio::test]
async fn billing_intervals_are_kept_and_exported() {
    let dir = root().join("testdata/golden/weekly-daily");
    for (backend, url, _guard) in backends("t").await {
        let (store, _) = loaded(&url, "testdata/golden/weekly-daily").await;
        let original = folder_book(&dir);
        let stored = store.book(AsOf::Latest).await.unwrap();
        for (a, b) in original.lines.items.iter().zip(&stored.lines.items) {
            assert_eq!(
                (a.billing_period, a.mrr()),
                (b.billing_period, b.mrr()),
                "{backend}"
            );
        }
        let c1 = store.row(&SUBSCRIPTIONS, "c1").await.unwrap().unwrap();
        let at = |c: &str| c1.values[SUBSCRIPTIONS.position(c).unwrap()].clone();
        assert_eq!(
            (at("billing_interval"), at("billing_interval_count")),
            (Some("week".into()), Some("2".into())),
            "{backend}"
        );
        let out = tempfile::tempdir().unwrap();
        store
            .export(
                out.path(),
                AsOf::Latest,
                Default::default(),
                Default::default(),
            )
            .await
            .unwrap();
        let exported = std::fs::read_to_string(out.path().join("subscriptions.csv")).unwrap();
        let mut rows = exported.lines();
        assert!(
            rows.next()
                .unwrap()
                .ends_with(",revises,billing_interval,billing_interval_count"),
            "{backend}: {exported}"
        );
        assert!(
            exported.contains("\na2,A,,app,1,150,,,,2024-03-01,,,a1,Week,1\n"),
            "{backend}: {exported}"
        );
    }
}

/// A row kept before store version 3, from a file that had `billing_interval` columns, holds
/// them among its extra columns: it reads as if kept after (the values in their columns, the
/// file rebuilt without the columns twice), and importing the file again changes nothing.
#[tokio::test]
async fn intervals_kept_as_extra_columns_before_version_3_read_as_columns() {
    for (backend, url, _guard) in backends("t").await {
        let (store, dir) = loaded(&url, "testdata/golden/weekly-daily").await;
        let before = store.files(AsOf::Latest).await.unwrap();
        // What a store of version 2 kept of row c1: the two values among the extra columns.
        sqlx::query(
            "UPDATE subscriptions SET extra = $1, billing_interval = NULL, \
             billing_interval_count = NULL WHERE row_key = $2",
        )
        .bind(r#"{"billing_interval":"week","billing_interval_count":"+2"}"#)
        .bind("c1")
        .execute(store.pool())
        .await
        .unwrap();
        store.close().await.unwrap();
        let store = open(&url).await;
        assert_eq!(
            store.files(AsOf::Latest).await.unwrap(),
            before,
            "{backend}"
        );
        let again = store
            .import(&Folder(&dir), ImportMode::Merge, &actor("again"))
            .await
            .unwrap();
        assert_eq!(again.event, None, "{backend}: the row reads unchanged");
    }
}

/// An applied amendment of a line billed by the day adds a line billed by the day.
#[tokio::test]
async fn an_applied_amendment_keeps_a_daily_interval() {
    for (backend, url, _guard) in backends("t").await {
        let (store, _) = loaded(&url, "testdata/golden/weekly-daily").await;
        let book = store.book(AsOf::Latest).await.unwrap();
        let quote = quote_amend(
            &book,
            &AmendRequest {
                contract: "b1".into(),
                effective: day("2024-02-01"),
                changes: vec![Change::Set("app".into(), "2".parse().unwrap())],
                precision: Precision::MonthDay,
            },
        )
        .unwrap();
        store
            .write(
                "amend",
                &quote_changes(&quote),
                &actor("seat"),
                None,
                |_| None,
            )
            .await
            .unwrap();
        let row = store
            .row(&SUBSCRIPTIONS, "b1-A20240201")
            .await
            .unwrap()
            .unwrap();
        let at = |c: &str| row.values[SUBSCRIPTIONS.position(c).unwrap()].clone();
        assert_eq!(
            (
                at("billing_period_months"),
                at("billing_interval"),
                at("billing_interval_count")
            ),
            (None, Some("day".into()), Some("1".into())),
            "{backend}"
        );
        let book = store.book(AsOf::Latest).await.unwrap();
        let l = book.lines.ids.find("b1-A20240201").unwrap();
        // 2 x 10 a day x 365 / 12 = 608.333..
        assert_eq!(
            book.lines.items[l as usize].mrr().as_decimal().to_string(),
            "608.3333333333",
            "{backend}"
        );
    }
}

/// The webhook queue: an event kept once by source and id, queued in order, its outcome
/// recorded, and the newest applied time per subject.
fn webhook<'a>(id: &'a str, created: i64, subject: Option<&'a str>) -> NewWebhook<'a> {
    NewWebhook {
        source: "stripe",
        event_id: id,
        kind: "customer.subscription.updated",
        created,
        subject,
        payload: "{}",
    }
}

#[tokio::test]
async fn events_are_queued_once_in_order_and_their_outcome_kept() {
    for (backend, url, _dir) in backends("t_webhooks").await {
        let store = Store::open(&url, ImportOptions::default()).await.unwrap();
        assert!(store
            .queue_webhook(webhook("evt_1", 100, Some("sub_1")))
            .await
            .unwrap());
        assert!(store
            .queue_webhook(webhook("evt_2", 90, Some("sub_1")))
            .await
            .unwrap());
        // A second delivery of an id is dropped; another source may use the same id.
        assert!(
            !store
                .queue_webhook(webhook("evt_1", 100, Some("sub_1")))
                .await
                .unwrap(),
            "{backend}"
        );
        let generic = NewWebhook {
            source: "generic",
            ..webhook("evt_1", 1, None)
        };
        assert!(store.queue_webhook(generic).await.unwrap(), "{backend}");
        assert_eq!(
            store.webhook_events("stripe", 100).await.unwrap().len(),
            2,
            "{backend}"
        );

        let first = store.next_webhook().await.unwrap().unwrap();
        assert_eq!(first.event_id, "evt_1", "{backend}");
        assert_eq!(first.state, WebhookState::Queued);
        assert_eq!(
            store.last_applied_webhook("stripe", "sub_1").await.unwrap(),
            None
        );
        store
            .finish_webhook(first.seq, WebhookState::Applied, None, Some(7))
            .await
            .unwrap();
        assert_eq!(
            store.last_applied_webhook("stripe", "sub_1").await.unwrap(),
            Some(100),
            "{backend}"
        );

        let second = store.next_webhook().await.unwrap().unwrap();
        assert_eq!(second.event_id, "evt_2", "{backend}");
        store
            .finish_webhook(second.seq, WebhookState::Ignored, Some("superseded"), None)
            .await
            .unwrap();
        // Only applied events count for the newest time.
        assert_eq!(
            store.last_applied_webhook("stripe", "sub_1").await.unwrap(),
            Some(100)
        );
        let kept = store.webhook_events("stripe", 100).await.unwrap();
        assert_eq!(kept[0].state, WebhookState::Applied);
        assert_eq!(kept[0].store_event, Some(7));
        assert_eq!(kept[1].state, WebhookState::Ignored);
        assert_eq!(kept[1].reason.as_deref(), Some("superseded"));
        // The generic event is still queued; a reopened store finds it.
        store.close().await.unwrap();
        let store = Store::open(&url, ImportOptions::default()).await.unwrap();
        let left = store.next_webhook().await.unwrap().unwrap();
        assert_eq!(
            (left.source.as_str(), left.event_id.as_str()),
            ("generic", "evt_1"),
            "{backend}"
        );
        // NUL is refused on both backends alike.
        assert!(store
            .queue_webhook(webhook("evt\0", 1, None))
            .await
            .is_err());
        store.close().await.unwrap();
    }
}

/// Portal links: made for a customer of the book, opened by their token only (not by their id,
/// a wrong secret, another link's secret), listed without secrets, revoked by id or token, and
/// refused once revoked; `--days` is 1 to 90; the secret is stored hashed.
#[tokio::test]
async fn portal_links() {
    use expansa_store::MAX_PORTAL_DAYS;
    for (backend, url, _guard) in backends("portal").await {
        let (store, _) = loaded(&url, "testdata/contracts").await;
        let customer = store
            .book(AsOf::Latest)
            .await
            .unwrap()
            .customers
            .ids
            .get(0)
            .to_string();
        for days in [0, MAX_PORTAL_DAYS + 1] {
            let refused = store.create_portal_link(&customer, days, "test").await;
            assert!(
                matches!(refused, Err(StoreError::Invalid(ref m)) if m.contains("1 to 90")),
                "{backend} {days}: {refused:?}"
            );
        }
        let unknown = store.create_portal_link("NOBODY", 7, "test").await;
        assert!(matches!(unknown, Err(StoreError::NotFound(_))), "{backend}");

        let (made, token) = store
            .create_portal_link(&customer, 7, "maria")
            .await
            .unwrap();
        let (_, other) = store
            .create_portal_link(&customer, 1, "maria")
            .await
            .unwrap();
        let (id, secret) = token.split_once('.').unwrap();
        assert_eq!(id, made.id);
        assert!(id.starts_with("pl_") && secret.len() == 52, "{token}");
        assert!(made.expires_at > made.created_at);
        let opened = store.portal_link(&token).await.unwrap().unwrap();
        assert_eq!(
            (opened.customer_id.as_str(), opened.created_by.as_str()),
            (customer.as_str(), "maria"),
            "{backend}"
        );
        // Not by id alone, a changed secret, another link's secret, or junk.
        let other_secret = other.split_once('.').unwrap().1;
        let mut flipped = secret.to_string();
        flipped.replace_range(0..1, if secret.starts_with('0') { "1" } else { "0" });
        for forged in [
            id.to_string(),
            format!("{id}."),
            format!("{id}.{flipped}"),
            format!("{id}.{other_secret}"),
            "pl_\0.x".to_string(),
            String::new(),
        ] {
            assert_eq!(
                store.portal_link(&forged).await.unwrap(),
                None,
                "{backend} {forged:?}"
            );
        }
        // The secret is not in the database, its hash is.
        let stored: Vec<String> = sqlx::query_scalar("SELECT secret_hash FROM portal_links")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert!(stored.iter().all(|h| h.len() == 64 && !h.contains(secret)));
        assert!(stored.contains(&expansa_store::sha256_hex(secret)));

        let listed = store.portal_links().await.unwrap();
        assert_eq!(listed.len(), 2, "{backend}");
        assert!(listed.contains(&made));

        // Revoked by its token (or id): refused at once; a second revoke is an error.
        let revoked = store.revoke_portal_link(&token).await.unwrap();
        assert!(revoked.revoked_at.is_some());
        assert_eq!(store.portal_link(&token).await.unwrap(), None, "{backend}");
        assert!(store.revoke_portal_link(id).await.is_err());
        assert!(store.portal_link(&other).await.unwrap().is_some());

        // Expired: refused (the expiry moved into the past in the database).
        sqlx::query("UPDATE portal_links SET expires_at = '2000-01-01T00:00:00.000000Z'")
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(store.portal_link(&other).await.unwrap(), None, "{backend}");
        store.close().await.unwrap();
    }
}

/// A customer written with its attributes in another order than the file's header (`tag`
/// before `city`, where an earlier row has `city` first) reads back the same: importing the
/// export again changes nothing, nor does a file whose extra columns are swapped.
#[tokio::test]
async fn extra_columns_in_another_order_are_the_same_row() {
    for (backend, url, _guard) in backends("t").await {
        let (store, _) = loaded(&url, "examples/demo").await;
        for (id, extra) in [
            ("xo-1", vec![("city", "Recife"), ("tag", "a")]),
            ("xo-2", vec![("tag", "b"), ("city", "Natal")]),
        ] {
            let change = RowChange::Put {
                schema: expansa_import::schema::CUSTOMERS,
                values: expansa_import::schema::CUSTOMERS
                    .columns
                    .iter()
                    .map(|c| match *c {
                        "id" => Some(id.to_string()),
                        "name" => Some(format!("Customer {id}")),
                        _ => None,
                    })
                    .collect(),
                extra: extra
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                create_only: false,
            };
            store
                .write("row", &[change], &actor("api"), None, |_| None)
                .await
                .unwrap();
        }
        let out = tempfile::tempdir().unwrap();
        let files = store.files(AsOf::Latest).await.unwrap();
        for (name, bytes) in &files {
            std::fs::write(out.path().join(name), bytes).unwrap();
        }
        let again = store
            .import(&Folder(out.path()), ImportMode::Merge, &actor("again"))
            .await
            .unwrap();
        assert_eq!(again.event, None, "{backend}: the export reads unchanged");
        // The same rows with the two extra columns swapped in the file.
        let customers = String::from_utf8(
            files
                .iter()
                .find(|(n, _)| *n == "customers.csv")
                .unwrap()
                .1
                .clone(),
        )
        .unwrap();
        let swapped: String = customers
            .lines()
            .map(|l| {
                let mut cells: Vec<&str> = l.split(',').collect();
                let n = cells.len();
                cells.swap(n - 1, n - 2);
                cells.join(",") + "\n"
            })
            .collect();
        assert!(
            swapped.starts_with("id,") && swapped.lines().next().unwrap().ends_with(",tag,city"),
            "{swapped}"
        );
        std::fs::write(out.path().join("customers.csv"), swapped).unwrap();
        let swapped = store
            .import(&Folder(out.path()), ImportMode::Merge, &actor("swapped"))
            .await
            .unwrap();
        assert_eq!(
            swapped.event, None,
            "{backend}: swapped columns read unchanged"
        );
    }
}

/// An export is all or nothing: a table that does not read (here the last one written) leaves
/// the folder as it was, the book it held included, and no file half written; a good book then
/// replaces it whole, its tables written a chunk at a time.
#[test]
fn an_export_that_fails_leaves_the_folder_as_it_was() {
    use expansa_import::{BookFormat, InMemory, TextEncoding};
    use expansa_store::{write_book, ExistingBook};
    let demo = root().join("examples/demo");
    let names = ["customers.csv", "subscriptions.csv", "products.csv"];
    let files: Vec<(&str, Vec<u8>)> = names
        .iter()
        .map(|n| (*n, std::fs::read(demo.join(n)).unwrap()))
        .collect();
    for format in [BookFormat::Csv, BookFormat::Parquet] {
        let out = tempfile::tempdir().unwrap();
        let listing = || {
            let mut names: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.path())
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (
                        e.file_name().into_string().unwrap(),
                        std::fs::read(e.path()).unwrap_or_default(),
                    )
                })
                .collect();
            names.sort();
            names
        };
        let held: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let written = write_book(
            out.path(),
            &InMemory(&held),
            TextEncoding::UTF_8,
            ExistingBook::Refuse,
            format,
            &NoProgress,
            &|| Ok(()),
        )
        .unwrap();
        assert_eq!(written.len(), 3, "{written:?}");
        let before = listing();
        // The same book with a bad price in its products (written after customers and
        // subscriptions), replacing the book there.
        let mut products = files[2].1.clone();
        products.extend_from_slice(b"broken,Broken,x,1,plan,abc,1\n");
        let bad: Vec<(&str, &[u8])> = vec![held[0], held[1], ("products.csv", &products)];
        let refused = write_book(
            out.path(),
            &InMemory(&bad),
            TextEncoding::UTF_8,
            ExistingBook::Replace,
            format,
            &NoProgress,
            &|| Ok(()),
        );
        match refused {
            Err(StoreError::Book(problems)) => {
                let listed: Vec<String> = problems.0.iter().map(|p| p.to_string()).collect();
                let line = products.iter().filter(|&&b| b == b'\n').count();
                assert_eq!(
                    listed,
                    [format!(
                        "products.csv:{line}: list_price: abc: not a decimal number (like 1234.56)"
                    )]
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(listing(), before, "{format:?}: the folder changed");
        // A source that changed while it was written (the CLI compares its files' sizes and
        // times): nothing is replaced.
        let changed = || Err(StoreError::Conflict("the book changed".into()));
        let refused = write_book(
            out.path(),
            &InMemory(&held),
            TextEncoding::UTF_8,
            ExistingBook::Replace,
            format,
            &NoProgress,
            &changed,
        );
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{refused:?}"
        );
        assert_eq!(listing(), before, "{format:?}: the folder changed");
        // A folder the export makes is removed when it fails.
        let new = out.path().join("new");
        let refused = write_book(
            &new,
            &InMemory(&bad),
            TextEncoding::UTF_8,
            ExistingBook::Refuse,
            format,
            &NoProgress,
            &|| Ok(()),
        );
        assert!(refused.is_err());
        assert!(!new.exists(), "{format:?}: the new folder stayed");
        // A folder named like a book file cannot be replaced: refused before anything is
        // written, even with Replace.
        let folder = out
            .path()
            .join(format.file_name(&expansa_import::schema::OFFERS));
        std::fs::create_dir(&folder).unwrap();
        let before = listing_dirs(out.path());
        let refused = write_book(
            out.path(),
            &InMemory(&held),
            TextEncoding::UTF_8,
            ExistingBook::Replace,
            format,
            &NoProgress,
            &|| Ok(()),
        );
        assert!(
            matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("folders named like files of a book")),
            "{refused:?}"
        );
        assert_eq!(listing_dirs(out.path()), before);
        std::fs::remove_dir(&folder).unwrap();
        // A book of fewer tables replaces it whole: the file it has not is removed.
        let fewer = &held[..2];
        let written = write_book(
            out.path(),
            &InMemory(fewer),
            TextEncoding::UTF_8,
            ExistingBook::Replace,
            format,
            &NoProgress,
            &|| Ok(()),
        )
        .unwrap();
        assert_eq!(written.len(), 2);
        assert_eq!(
            listing().len(),
            2,
            "{:?}",
            listing().iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
    }
}

/// The names in `dir`, with what each is (file or folder) and holds.
fn listing_dirs(dir: &Path) -> Vec<(String, bool, Vec<u8>)> {
    let mut names: Vec<(String, bool, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let folder = e.file_type().unwrap().is_dir();
            let bytes = if folder {
                Vec::new()
            } else {
                std::fs::read(e.path()).unwrap()
            };
            (e.file_name().into_string().unwrap(), folder, bytes)
        })
        .collect();
    names.sort();
    names
}

/// An export into a folder another export is writing into is refused (two replacing one book
/// could mix them); a replaced file keeps its permissions; a file named like a moved-aside
/// book file is never overwritten; a path that is a file is refused as such; parents the
/// export made are removed when it fails.
#[cfg(unix)]
#[test]
fn an_export_takes_its_folder_alone_and_keeps_what_it_replaces() {
    use expansa_import::{BookFormat, InMemory, TextEncoding};
    use expansa_store::{write_book, ExistingBook};
    use std::os::unix::fs::PermissionsExt;
    let demo = root().join("examples/demo");
    let files: Vec<(&str, Vec<u8>)> = ["customers.csv", "subscriptions.csv", "products.csv"]
        .iter()
        .map(|n| (*n, std::fs::read(demo.join(n)).unwrap()))
        .collect();
    let held: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let out = tempfile::tempdir().unwrap();
    let export = |dir: &Path, existing| {
        write_book(
            dir,
            &InMemory(&held),
            TextEncoding::UTF_8,
            existing,
            BookFormat::Csv,
            &NoProgress,
            &|| Ok(()),
        )
    };
    export(out.path(), ExistingBook::Refuse).unwrap();
    // Another export holds the folder.
    let lock = std::fs::File::open(out.path()).unwrap();
    lock.lock().unwrap();
    let busy = export(out.path(), ExistingBook::Replace);
    assert!(
        matches!(&busy, Err(StoreError::Conflict(m)) if m.contains("another export is writing")),
        "{busy:?}"
    );
    lock.unlock().unwrap();
    // A private file stays private; a file named like the aside name is kept.
    let customers = out.path().join("customers.csv");
    std::fs::set_permissions(&customers, std::fs::Permissions::from_mode(0o600)).unwrap();
    let aside = out
        .path()
        .join(format!(".customers.csv.{}.old", std::process::id()));
    std::fs::write(&aside, "precious").unwrap();
    export(out.path(), ExistingBook::Replace).unwrap();
    let mode = std::fs::metadata(&customers).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read_to_string(&aside).unwrap(), "precious");
    // A file, not a folder.
    let file = out.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let refused = export(&file, ExistingBook::Replace);
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("is a file, not a folder")),
        "{refused:?}"
    );
    // The parents made for a failing export are removed.
    let bad: Vec<(&str, &[u8])> = vec![("subscriptions.csv", b"id,customer_id\nx,\n")];
    let deep = out.path().join("x/y/z");
    let failed = write_book(
        &deep,
        &InMemory(&bad),
        TextEncoding::UTF_8,
        ExistingBook::Refuse,
        BookFormat::Csv,
        &NoProgress,
        &|| Ok(()),
    );
    assert!(failed.is_err());
    assert!(!out.path().join("x").exists());
}
