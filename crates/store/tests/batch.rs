//! Group commit: writes made at once share a transaction and one commit, each in a savepoint of
//! its own. Every acknowledged write is stored once; a refused write in a batch takes nothing of
//! the others with it; a write whose caller goes away mid-way (a dropped future) is all there or
//! not at all, and the other writes of its batch still land. SQLite always; PostgreSQL too when
//! `EXPANSA_TEST_POSTGRES` names a server (CI always does).

mod common;

use common::{actor, backends, new_line};
use expansa_store::{AsOf, Idempotency, RowChange, Store, StoreError, WriteValidation};
use std::collections::HashSet;
use std::time::Duration;

/// What a write of line `i` is: a new line, refused when `i % 5 == 3` (an unknown customer).
fn write_of(i: usize) -> (String, RowChange) {
    let id = format!("N{i}");
    let change = match i % 5 {
        3 => new_line(&id, "nobody"),
        _ => new_line(&id, &format!("c{}", 1 + i % 6)),
    };
    (id, change)
}

async fn write(store: &Store, i: usize) -> Result<expansa_store::WriteOutcome, StoreError> {
    let (id, change) = write_of(i);
    let key = Idempotency::new(format!("k-{i}"), id.as_bytes());
    store
        .write("line", &[change], &actor("batch"), Some(&key), |e| {
            Some(format!("{e:?}"))
        })
        .await
}

/// The lines of the latest book, by id.
async fn line_ids(store: &Store) -> HashSet<String> {
    let book = store.book(AsOf::Latest).await.unwrap();
    book.lines.ids.iter().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_at_once_commit_together_and_each_is_kept_or_refused_alone() {
    for (backend, url, _guard) in backends("b").await {
        let store = common::loaded_with(&url, "testdata/contracts", WriteValidation::Changed).await;
        let before = store.committed_batches();
        let events_before = store.events().await.unwrap().len();
        let n = 120;
        let mut tasks = Vec::new();
        // Each write twice at once under its key: one applies it, the other is its replay (or
        // waits and replays it), in the same batch or the next.
        for i in 0..2 * n {
            let store = store.clone();
            tasks.push(tokio::spawn(
                async move { (i % n, write(&store, i % n).await) },
            ));
        }
        let mut stored = HashSet::new();
        let mut applied = 0;
        for t in tasks {
            let (i, result) = t.await.unwrap();
            match (i % 5, result) {
                (3, Err(StoreError::Book(problems))) => {
                    let text = format!("{:?}", problems.0);
                    assert!(text.contains("nobody"), "{backend}: {text}");
                }
                (3, other) => panic!("{backend}: write {i} to an unknown customer: {other:?}"),
                (_, Ok(outcome)) => {
                    assert!(outcome.event.is_some(), "{backend}: write {i}: {outcome:?}");
                    assert_eq!(
                        outcome.response,
                        Some(format!("{:?}", outcome.event)),
                        "{backend}: a replay answers what the write answered"
                    );
                    if !outcome.replayed {
                        applied += 1;
                    }
                    stored.insert(format!("N{i}"));
                }
                (_, Err(e)) => panic!("{backend}: write {i}: {e}"),
            }
        }
        let kept = (0..n).filter(|i| i % 5 != 3).count();
        assert_eq!((stored.len(), applied), (kept, kept), "{backend}");
        let lines = line_ids(&store).await;
        for i in 0..n {
            assert_eq!(
                lines.contains(&format!("N{i}")),
                i % 5 != 3,
                "{backend}: N{i}"
            );
        }
        assert_eq!(
            store.events().await.unwrap().len(),
            events_before + kept,
            "{backend}: one event per applied write"
        );
        let after = store.committed_batches();
        let (batches, writes) = (after.0 - before.0, after.1 - before.1);
        assert!(
            batches < writes,
            "{backend}: {writes} writes in {batches} batches: none shared a commit"
        );
        // The store as another process sees it: the same.
        let other = Store::open(&url, Default::default()).await.unwrap();
        assert_eq!(line_ids(&other).await, lines, "{backend}");
        other.close().await.unwrap();
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_dropped_mid_way_is_whole_or_absent_and_its_batch_still_commits() {
    for (backend, url, _guard) in backends("b").await {
        let store = common::loaded_with(&url, "testdata/contracts", WriteValidation::Changed).await;
        let events_before = store.events().await.unwrap().len();
        // Rounds of six writes at once, one of which is given up by its caller after a time
        // that grows round by round: dropped while waiting for the writer, inside the batch, or
        // waiting for the batch's commit.
        let n = 240;
        let mut tasks = Vec::new();
        for round in 0..n / 6 {
            let mut batch = Vec::new();
            for i in round * 6..round * 6 + 6 {
                let store = store.clone();
                let patience = matches!(i % 6, 2 | 4)
                    .then(|| Duration::from_micros(100 * round as u64 + 50 * (i % 6) as u64));
                batch.push(tokio::spawn(async move {
                    let result = match patience {
                        Some(patience) => {
                            tokio::time::timeout(patience, write(&store, i)).await.ok()
                        }
                        None => Some(write(&store, i).await),
                    };
                    (i, result)
                }));
            }
            for t in batch {
                tasks.push(t.await.unwrap());
            }
        }
        let mut acknowledged = HashSet::new();
        let mut dropped = HashSet::new();
        for t in tasks {
            match t {
                (i, Some(Ok(outcome))) => {
                    assert!(outcome.event.is_some(), "{backend}: {i}");
                    acknowledged.insert(format!("N{i}"));
                }
                (i, Some(Err(StoreError::Book(_)))) if i % 5 == 3 => {}
                (i, Some(Err(e))) => panic!("{backend}: write {i}: {e}"),
                (i, None) => {
                    dropped.insert(format!("N{i}"));
                }
            }
        }
        assert!(!dropped.is_empty() && !acknowledged.is_empty(), "{backend}");
        // A write after them all: the store is not left holding a batch.
        write(&store, 10_000).await.unwrap();
        let lines = line_ids(&store).await;
        for id in &acknowledged {
            assert!(
                lines.contains(id),
                "{backend}: acknowledged {id} is not stored"
            );
        }
        for i in (0..n).filter(|i| i % 5 == 3) {
            assert!(
                !lines.contains(&format!("N{i}")),
                "{backend}: refused N{i} stored"
            );
        }
        // Each event is one whole write: its detail (written last) says one line added.
        let events = store.events().await.unwrap();
        for e in &events[events_before..] {
            let detail = e.detail.as_deref().unwrap_or_default();
            assert!(
                detail.contains("\"added\":1"),
                "{backend}: event {} is not whole: {detail:?}",
                e.id
            );
        }
        let new_lines = lines.iter().filter(|l| l.starts_with('N')).count();
        assert_eq!(
            events.len() - events_before,
            new_lines,
            "{backend}: an event per stored line, none half-applied"
        );
        let stored_dropped = dropped.iter().filter(|id| lines.contains(*id)).count();
        eprintln!(
            "{backend}: {} acknowledged, {} dropped ({stored_dropped} of them stored)",
            acknowledged.len(),
            dropped.len()
        );
        store.close().await.unwrap();
    }
}
