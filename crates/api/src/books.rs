//! Books read from the store, kept while they are current: a report reads the store's latest
//! event id (one small query) and rebuilds the book only when a write has happened since; and
//! report outputs, by event and flags, so that many readers of one figure compute it once
//! (at most [`REPORT_CACHE_BYTES`] of them).

use crate::ApiError;
use expansa_commands::{PartsBase, PartsState};
use expansa_ledger::Book;
use expansa_store::{AsOf, Store};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// How many books (latest and as-of ones) are kept.
const KEPT: usize = 4;

/// How many bytes of report outputs are kept (docs/api.md, "Speed"): the outputs and their
/// keys, plus [`ENTRY_BYTES`] each. Past it the least recently used are dropped; an output
/// larger than it is answered but not kept.
pub const REPORT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// What an entry costs besides its key and its output (its place in the maps).
const ENTRY_BYTES: usize = 128;

/// How many sums of a base book ([`BookCache::base_sums`]) are kept.
const BASES_KEPT: usize = 8;

/// A base book's event and a report's flags.
type BaseKey = (i64, String);

/// A report's sums over a base book, and the changes the pieces read since make to them.
pub type BaseState = (Arc<PartsBase>, Arc<Mutex<PartsState>>);

/// Books by the event they are read at.
pub struct BookCache {
    store: Store,
    books: Mutex<Vec<(i64, Arc<Book>)>>,
    /// Sums of reports over the base of the book in parts, by base event and report flags,
    /// newest first; one computed at a time.
    bases: tokio::sync::Mutex<Vec<(BaseKey, BaseState)>>,
    /// One rebuild at a time: concurrent readers of a new event wait for the same one.
    building: tokio::sync::Mutex<()>,
    reports: ReportCache,
}

impl BookCache {
    pub fn new(store: Store) -> BookCache {
        BookCache {
            store,
            books: Mutex::new(Vec::new()),
            bases: tokio::sync::Mutex::new(Vec::new()),
            building: tokio::sync::Mutex::new(()),
            reports: ReportCache::new(REPORT_CACHE_BYTES),
        }
    }

    fn cached(&self, event: i64) -> Option<Arc<Book>> {
        let books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        books
            .iter()
            .find(|(e, _)| *e == event)
            .map(|(_, b)| b.clone())
    }

    /// The book as of `as_of`.
    /// The book as of `as_of`, and the event it is at.
    pub async fn get(&self, as_of: AsOf) -> Result<(i64, Arc<Book>), ApiError> {
        let event = self.store.event_at(as_of).await?;
        if event == 0 {
            return Err(ApiError::NotFound(expansa_store::NO_BOOK.into()));
        }
        if let Some(book) = self.cached(event) {
            return Ok((event, book));
        }
        let _building = self.building.lock().await;
        if let Some(book) = self.cached(event) {
            return Ok((event, book));
        }
        // The latest may have moved on while this waited: read whatever is latest now.
        let (event, book) = match as_of {
            AsOf::Latest => self.store.latest_book().await?,
            // The latest event's book is the one the store keeps (read once, then kept).
            _ if event == self.store.event_at(AsOf::Latest).await? => {
                match self.store.latest_book().await? {
                    (latest, book) if latest == event => (event, book),
                    _ => (event, Arc::new(self.store.book(AsOf::Event(event)).await?)),
                }
            }
            _ => (event, Arc::new(self.store.book(AsOf::Event(event)).await?)),
        };
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        if books.iter().any(|(e, _)| *e == event) {
            return Ok((event, book));
        }
        books.push((event, book.clone()));
        books.sort_by_key(|(e, _)| std::cmp::Reverse(*e));
        books.truncate(KEPT);
        Ok((event, book))
    }

    /// The sums of a report (`key`: its flags) over the base book at `base_event`, computed
    /// by `compute` once (the work of a whole report), and the changes to them kept up to date
    /// by the reports that use them; kept while newer bases come.
    pub async fn base_sums(
        &self,
        base_event: i64,
        key: &str,
        compute: impl std::future::Future<Output = Result<PartsBase, ApiError>>,
    ) -> Result<BaseState, ApiError> {
        let mut bases = self.bases.lock().await;
        let wanted = (base_event, key.to_string());
        if let Some((_, state)) = bases.iter().find(|(k, _)| *k == wanted) {
            return Ok(state.clone());
        }
        let state: BaseState = (Arc::new(compute.await?), Arc::default());
        bases.insert(0, (wanted, state.clone()));
        bases.sort_by_key(|((event, _), _)| std::cmp::Reverse(*event));
        bases.truncate(BASES_KEPT);
        Ok(state)
    }

    /// The output of a report (`key`: its flags) on the book at `event`, computed once however
    /// many requests ask for it at the same time.
    pub async fn report(
        &self,
        event: i64,
        key: String,
        compute: impl std::future::Future<Output = Result<String, ApiError>>,
    ) -> Result<Arc<str>, ApiError> {
        self.reports.get(event, key, compute).await
    }
}

/// A report's output, once computed.
type Cell = Arc<tokio::sync::OnceCell<Arc<str>>>;

/// Report outputs by event and flags, bounded in bytes; a failed computation is not kept.
struct ReportCache {
    limit: usize,
    inner: Mutex<Reports>,
}

/// One output, computed or being computed.
struct Entry {
    cell: Cell,
    /// What it is charged: [`ENTRY_BYTES`], its key and, once computed, its output.
    bytes: usize,
    /// Its output is charged.
    charged: bool,
    /// When it was last asked for (its key in `Reports::by_use`).
    used: u64,
}

#[derive(Default)]
struct Reports {
    entries: HashMap<(i64, String), Entry>,
    /// Keys by last use, oldest first.
    by_use: BTreeMap<u64, (i64, String)>,
    bytes: usize,
    clock: u64,
}

impl Reports {
    fn remove(&mut self, key: &(i64, String)) {
        if let Some(e) = self.entries.remove(key) {
            self.by_use.remove(&e.used);
            self.bytes -= e.bytes;
        }
    }

    /// Drops the least recently used entries until at most `limit` bytes are kept.
    fn shrink(&mut self, limit: usize) {
        while self.bytes > limit {
            let Some((_, key)) = self.by_use.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&key) {
                self.bytes -= e.bytes;
            }
        }
    }
}

impl ReportCache {
    fn new(limit: usize) -> ReportCache {
        ReportCache {
            limit,
            inner: Mutex::new(Reports::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Reports> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The output under `(event, key)`, computed by `compute` unless it is kept (or being
    /// computed for another request, which it then waits for).
    async fn get(
        &self,
        event: i64,
        key: String,
        compute: impl std::future::Future<Output = Result<String, ApiError>>,
    ) -> Result<Arc<str>, ApiError> {
        let key = (event, key);
        let cell = self.cell(&key);
        let out = cell
            .get_or_try_init(|| async { compute.await.map(Arc::from) })
            .await
            .cloned();
        self.settle(&key, &cell);
        out
    }

    /// The cell of `key`, made (and charged its key) when new, and marked as just used.
    fn cell(&self, key: &(i64, String)) -> Cell {
        let mut r = self.lock();
        r.clock += 1;
        let now = r.clock;
        if let Some(e) = r.entries.get_mut(key) {
            let (cell, used) = (e.cell.clone(), std::mem::replace(&mut e.used, now));
            r.by_use.remove(&used);
            r.by_use.insert(now, key.clone());
            return cell;
        }
        let cell = Cell::default();
        let bytes = ENTRY_BYTES + key.1.len();
        r.entries.insert(
            key.clone(),
            Entry {
                cell: cell.clone(),
                bytes,
                charged: false,
                used: now,
            },
        );
        r.by_use.insert(now, key.clone());
        r.bytes += bytes;
        r.shrink(self.limit);
        cell
    }

    /// After `cell` was asked for its output: charges the output once, or forgets the entry
    /// when its computation failed; then keeps the whole within the limit.
    fn settle(&self, key: &(i64, String), cell: &Cell) {
        let mut r = self.lock();
        let Some(e) = r
            .entries
            .get_mut(key)
            .filter(|e| Arc::ptr_eq(&e.cell, cell))
        else {
            return; // dropped meanwhile (the output is answered all the same)
        };
        match cell.get() {
            None => r.remove(key),
            Some(_) if e.charged => {}
            Some(out) if e.bytes + out.len() > self.limit => r.remove(key),
            Some(out) => {
                e.charged = true;
                e.bytes += out.len();
                r.bytes += out.len();
                r.shrink(self.limit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Asks `cache` for `key` at event 1; the output is `size` bytes; `runs` counts computations.
    async fn ask(cache: &ReportCache, key: &str, size: usize, runs: &AtomicUsize) -> Arc<str> {
        cache
            .get(1, key.to_string(), async {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok("x".repeat(size))
            })
            .await
            .unwrap()
    }

    fn kept(cache: &ReportCache) -> (usize, usize) {
        let r = cache.lock();
        let sum: usize = r.entries.values().map(|e| e.bytes).sum();
        assert_eq!(r.bytes, sum, "the total is the sum of the entries");
        assert_eq!(r.by_use.len(), r.entries.len());
        (r.bytes, r.entries.len())
    }

    #[tokio::test]
    async fn report_outputs_are_bounded_in_bytes_least_recently_used_first() {
        let limit = 10_000;
        let cache = ReportCache::new(limit);
        let runs = AtomicUsize::new(0);
        // Each entry costs ENTRY_BYTES + its key (2 bytes) + 1,000 bytes: 8 fit, not 9.
        for i in 0..8 {
            ask(&cache, &format!("k{i}"), 1_000, &runs).await;
        }
        assert_eq!(kept(&cache).1, 8);
        assert_eq!(runs.load(Ordering::SeqCst), 8);
        // k0 is used again (kept: not computed), so k1 is now the least recently used.
        ask(&cache, "k0", 1_000, &runs).await;
        assert_eq!(runs.load(Ordering::SeqCst), 8);
        // Filling far beyond the limit keeps the total within it, every time.
        for i in 8..100 {
            ask(&cache, &format!("k{i}"), 1_000, &runs).await;
            let (bytes, n) = kept(&cache);
            assert!(bytes <= limit, "{bytes} bytes kept, limit {limit}");
            assert_eq!(n, 8);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 100);
        // The latest are kept, the oldest were dropped and are computed again.
        ask(&cache, "k99", 1_000, &runs).await;
        assert_eq!(runs.load(Ordering::SeqCst), 100);
        ask(&cache, "k1", 1_000, &runs).await;
        assert_eq!(runs.load(Ordering::SeqCst), 101);
        assert!(kept(&cache).0 <= limit);
    }

    #[tokio::test]
    async fn the_second_use_keeps_an_entry_over_older_ones() {
        let cache = ReportCache::new(10_000);
        let runs = AtomicUsize::new(0);
        for i in 0..8 {
            ask(&cache, &format!("k{i}"), 1_000, &runs).await;
        }
        ask(&cache, "k0", 1_000, &runs).await; // k1 is now the oldest
        ask(&cache, "k8", 1_000, &runs).await; // drops k1
        assert_eq!(runs.load(Ordering::SeqCst), 9);
        ask(&cache, "k0", 1_000, &runs).await;
        assert_eq!(runs.load(Ordering::SeqCst), 9, "k0 was kept");
        ask(&cache, "k1", 1_000, &runs).await;
        assert_eq!(runs.load(Ordering::SeqCst), 10, "k1 was dropped");
    }

    #[tokio::test]
    async fn an_output_larger_than_the_limit_is_answered_not_kept() {
        let cache = ReportCache::new(10_000);
        let runs = AtomicUsize::new(0);
        ask(&cache, "small", 100, &runs).await;
        let big = ask(&cache, "big", 20_000, &runs).await;
        assert_eq!(big.len(), 20_000);
        let (bytes, n) = kept(&cache);
        assert_eq!(n, 1, "only the small one is kept");
        assert!(bytes < 1_000);
        ask(&cache, "small", 100, &runs).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_computation_is_not_kept() {
        let cache = ReportCache::new(10_000);
        let out = cache
            .get(1, "k".into(), async {
                Err(ApiError::BadRequest("no".into()))
            })
            .await;
        assert!(out.is_err());
        assert_eq!(kept(&cache), (0, 0));
    }

    /// The server's own cache, at its own limit: outputs summing past [`REPORT_CACHE_BYTES`]
    /// drop the oldest (a cache bounded by entries only kept all three).
    #[tokio::test]
    async fn the_servers_report_cache_holds_at_most_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("cache.db").display());
        let store = Store::open(&url, expansa_import::ImportOptions::default())
            .await
            .unwrap();
        let books = BookCache::new(store);
        let runs = AtomicUsize::new(0);
        let size = REPORT_CACHE_BYTES / 3 + 1;
        let ask = |key: &'static str| {
            let runs = &runs;
            let books = &books;
            async move {
                books
                    .report(7, key.into(), async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        Ok("x".repeat(size))
                    })
                    .await
                    .unwrap()
            }
        };
        for key in ["a", "b", "c"] {
            ask(key).await;
        }
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        ask("c").await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "the latest output is kept");
        ask("a").await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            4,
            "three outputs of {size} bytes are more than {REPORT_CACHE_BYTES}: the oldest goes"
        );
    }
}
