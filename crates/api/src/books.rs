//! Books read from the store, kept while they are current: a report reads the store's latest
//! event id (one small query) and rebuilds the book only when a write has happened since.

use crate::ApiError;
use expansa_ledger::Book;
use expansa_store::{AsOf, Store};
use std::sync::{Arc, Mutex};

/// How many books (latest and as-of ones) are kept.
const KEPT: usize = 4;

/// Books by the event they are read at.
pub struct BookCache {
    store: Store,
    books: Mutex<Vec<(i64, Arc<Book>)>>,
    /// One rebuild at a time: concurrent readers of a new event wait for the same one.
    building: tokio::sync::Mutex<()>,
}

impl BookCache {
    pub fn new(store: Store) -> BookCache {
        BookCache {
            store,
            books: Mutex::new(Vec::new()),
            building: tokio::sync::Mutex::new(()),
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
    pub async fn get(&self, as_of: AsOf) -> Result<Arc<Book>, ApiError> {
        let event = self.store.event_at(as_of).await?;
        if event == 0 {
            return Err(ApiError::NotFound(
                "the store holds no book at that moment: import one with `expansa import --data DIR`"
                    .into(),
            ));
        }
        if let Some(book) = self.cached(event) {
            return Ok(book);
        }
        let _building = self.building.lock().await;
        if let Some(book) = self.cached(event) {
            return Ok(book);
        }
        let book = Arc::new(self.store.book(AsOf::Event(event)).await?);
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        books.push((event, book.clone()));
        books.sort_by_key(|(e, _)| std::cmp::Reverse(*e));
        books.truncate(KEPT);
        Ok(book)
    }
}
