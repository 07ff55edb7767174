//! Books read from the store, kept while they are current: a report reads the store's latest
//! event id (one small query) and rebuilds the book only when a write has happened since; and
//! report outputs, by event and flags, so that many readers of one figure compute it once.

use crate::ApiError;
use expansa_ledger::Book;
use expansa_store::{AsOf, Store};
use std::sync::{Arc, Mutex};

/// How many books (latest and as-of ones) are kept.
const KEPT: usize = 4;

/// How many report outputs are kept.
const REPORTS_KEPT: usize = 64;

/// Report outputs by event and flags; a failed computation is not kept.
type Reports = Vec<(i64, String, Arc<tokio::sync::OnceCell<Arc<str>>>)>;

/// Books by the event they are read at.
pub struct BookCache {
    store: Store,
    books: Mutex<Vec<(i64, Arc<Book>)>>,
    /// One rebuild at a time: concurrent readers of a new event wait for the same one.
    building: tokio::sync::Mutex<()>,
    reports: Mutex<Reports>,
}

impl BookCache {
    pub fn new(store: Store) -> BookCache {
        BookCache {
            store,
            books: Mutex::new(Vec::new()),
            building: tokio::sync::Mutex::new(()),
            reports: Mutex::new(Vec::new()),
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
            return Err(ApiError::NotFound(
                "the store holds no book at that moment: import one with `expansa import --data DIR`"
                    .into(),
            ));
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

    /// The output of a report (`key`: its flags) on the book at `event`, computed once however
    /// many requests ask for it at the same time.
    pub async fn report(
        &self,
        event: i64,
        key: String,
        compute: impl std::future::Future<Output = Result<String, ApiError>>,
    ) -> Result<Arc<str>, ApiError> {
        let cell = {
            let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
            match reports
                .iter()
                .position(|(e, k, _)| *e == event && *k == key)
            {
                Some(i) => reports[i].2.clone(),
                None => {
                    let cell = Arc::new(tokio::sync::OnceCell::new());
                    reports.push((event, key, cell.clone()));
                    if reports.len() > REPORTS_KEPT {
                        reports.remove(0);
                    }
                    cell
                }
            }
        };
        cell.get_or_try_init(|| async { compute.await.map(Arc::from) })
            .await
            .cloned()
    }
}
