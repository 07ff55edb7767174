//! The latest book for reports, kept up to date in proportion to what changed: a base book
//! read whole at some event, and the customers whose rows changed after it, found from the
//! event log's rows (what each event added and closed). Each time the latest book is asked for,
//! the customers changed since the last time have their rows read into a piece (a small book
//! of theirs, with the shared tables); a customer's rows now are in the last piece that holds
//! it. A report that is a sum over customers (the movement report) is the base's, minus the
//! changed customers' there, plus their pieces': the same figures as the whole book's, kept up
//! to date piece by piece (`expansa_movements::PartsSums`), without rebuilding the book per
//! write. Writes of other processes are followed the same way (their rows are in the
//! database). When the changed customers grow many, or a shared table (products, rates,
//! spend) changes, the base is made anew from the base's files, the pieces' and the shared
//! files now ([`crate::merge`]; read whole when it cannot be): in the background for the
//! first, at once for the second (every customer's figures may change). The latest book
//! itself, for the reports that are not sums over customers, is made the same way.
//!
//! A write of this process validated on its part hands that part over when it commits: when
//! every event since the last read has one, they are the new pieces, and the read asks the
//! database only how many events there are.

use crate::changed::{customer_column, Part};
use crate::merge::{self, BookText};
use crate::{read_files, AsOf, Dialect, LatestText, Store, StoreError, Tx};
use expansa_import::schema::FILES;
use expansa_ledger::Book;
use sqlx::Row;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The latest book in parts: the book is `base` without the customers in `changed`, plus
/// each changed customer's rows at `event` in the last of `pieces` that holds it.
#[derive(Clone)]
pub struct LatestParts {
    /// The event the book is at.
    pub event: i64,
    /// The book at an earlier event, `base_event`.
    pub base: Arc<Book>,
    pub base_event: i64,
    /// The customers (ids) whose rows changed after `base`: their rows in `base` are out of
    /// date, and all of their rows are in `part`.
    pub changed: Arc<BTreeSet<String>>,
    /// The pieces, oldest first: every changed customer is in one at least, with its rows as
    /// they were when the piece was read; the last piece holding it has its rows at `event`.
    pub pieces: Arc<[Arc<Piece>]>,
}

/// The rows of some customers, read at one event as a part of the book (with the shared
/// tables).
pub struct Piece {
    /// The event they were read at.
    pub event: i64,
    /// The customers whose rows changed since the piece before (and those their offers name),
    /// all of whose rows the piece holds.
    pub customers: BTreeSet<String>,
    pub book: Book,
    /// The files `book` was read from, those whose rows are a customer's, with each row's
    /// order (for [`crate::merge`]).
    pub(crate) text: BookText,
    /// What the piece holds, in bytes of the files it was read from (the shared ones too: the
    /// book holds them): what [`MAX_PIECES_BYTES`] counts.
    pub(crate) weight: usize,
}

/// What the store keeps of the latest book between reads.
pub(crate) struct Model {
    base_event: i64,
    base: Arc<Book>,
    /// The files `base` was read from.
    base_text: Arc<BookText>,
    changed: Arc<BTreeSet<String>>,
    /// The event the changed customers are known up to.
    known: i64,
    pieces: Arc<[Arc<Piece>]>,
    /// The pieces' weight, in all.
    weight: usize,
}

/// How many changed customers the part holds before a new base is made (in the background):
/// at least this many, or one in 16 of the base's customers (a read costs in proportion to the
/// changed customers; making the base again, to the book).
const REBASE_AT: usize = 4096;

/// How many pieces are kept before a new base is made (in the background).
const MAX_PIECES: usize = 65536;

/// How many handed parts wait for a read at most (the oldest are dropped: the read then asks
/// the database).
const MAX_HANDED: usize = 16384;

/// How many bytes the files of the pieces of the book in parts, and of the handed parts
/// waiting for a read, add up to at most (their books take about four to six times that):
/// past it a new base is made (in the background), and the oldest handed parts are dropped. A piece holds the shared tables too, so a book with a large one (thousands of
/// marketing spend rows) has a new base after fewer writes; so does one whose few customers
/// are written again and again (every write is a piece).
const MAX_PIECES_BYTES: usize = 64 << 20;

impl Model {
    pub(crate) fn new((event, base, base_text): LatestText) -> Model {
        Model {
            base_event: event,
            base,
            base_text,
            changed: Arc::default(),
            known: event,
            pieces: Arc::from(Vec::new()),
            weight: 0,
        }
    }

    fn view(&self) -> LatestParts {
        LatestParts {
            event: self.known,
            base: self.base.clone(),
            base_event: self.base_event,
            changed: self.changed.clone(),
            pieces: self.pieces.clone(),
        }
    }
}

impl Store {
    /// The latest book in parts (see [`LatestParts`]): a read of the rows changed since the
    /// last call, not of the whole book (after the first call). After a write to a shared table
    /// the base is made anew ([`crate::merge`], else read whole): every customer's figures may
    /// have changed.
    pub async fn latest_parts(&self) -> Result<LatestParts, StoreError> {
        let mut model = self.parts.lock().await;
        if model.is_none() {
            *model = Some(Model::new(self.whole_latest().await?));
        }
        let m = model.as_mut().expect("made above");
        if let Advance::Shared(shared) = self.advance(m).await? {
            let made = match self.make(m, Some(shared)).await? {
                Some(made) => made,
                None => self.whole_latest().await?,
            };
            *m = Model::new(made);
        }
        Ok(m.view())
    }

    /// The latest book made from the book in parts ([`crate::merge`]), and kept; `None` when
    /// there are no parts yet or the files cannot be merged exactly (then the book is read
    /// whole, and becomes the base).
    pub(crate) async fn merged_latest(&self) -> Result<Option<LatestText>, StoreError> {
        let mut model = self.parts.lock().await;
        let Some(m) = model.as_mut() else {
            return Ok(None);
        };
        if m.base_text.ords.is_none() {
            // A base read from files made by appending rows: the next whole read is the base.
            *model = None;
            self.made.not_merged.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        let made = match self.advance(m).await? {
            Advance::Current => self.make(m, None).await?,
            Advance::Shared(shared) => {
                let made = self.make(m, Some(shared)).await?;
                if let Some(made) = &made {
                    *m = Model::new(made.clone());
                }
                made
            }
        };
        if made.is_none() {
            // The next whole read is the base (its extra columns are the book's now).
            *model = None;
        }
        Ok(made)
    }

    /// The latest book made from `m` (and the shared files read at the latest event, after a
    /// write to one), kept; `None`, counted, when it cannot be made exactly.
    async fn make(
        &self,
        m: &Model,
        shared: Option<BookText>,
    ) -> Result<Option<LatestText>, StoreError> {
        let (view, base_text) = (m.view(), m.base_text.clone());
        if view.pieces.is_empty() && shared.is_none() {
            // No customer changed since the base: it is the latest book.
            self.keep_book(view.event, &base_text, &view.base);
            return Ok(Some((view.event, view.base, base_text)));
        }
        let options = self.options.clone();
        let made = tokio::task::spawn_blocking(move || {
            let pieces: Vec<(&BTreeSet<String>, &BookText)> = view
                .pieces
                .iter()
                .map(|p| (&p.customers, &p.text))
                .collect();
            let text = merge::merge(&base_text, &pieces, shared.as_ref())?;
            let book = crate::book_from_files(&text.files, &options).ok()?;
            Some((view.event, Arc::new(book), Arc::new(text)))
        })
        .await
        .map_err(|e| StoreError::Busy(format!("making the latest book failed: {e}")))?;
        match &made {
            Some((event, book, text)) => {
                self.keep_book(*event, text, book);
                self.made.merged.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                self.made.not_merged.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(made)
    }

    /// Brings `m` up to the latest event: the customers changed since, their rows read as a
    /// piece (or taken from this process's writes); with the shared files at the latest event
    /// when one of them changed (the base must then be made anew).
    async fn advance(&self, m: &mut Model) -> Result<Advance, StoreError> {
        let mut tx = self.snapshot().await?;
        let latest = self.resolve(&mut tx, AsOf::Latest).await?;
        if latest <= m.known {
            return Ok(Advance::Current);
        }
        let mut shared = None;
        let handed = self.handed_between(m.known, latest);
        let events = match handed.is_empty() {
            true => None,
            false => Some(self.events_between(&mut tx, m.known, latest).await?),
        };
        if events == Some(handed.len()) {
            // Every event since the last read is a write of this process, with its part.
            let mut pieces = m.pieces.to_vec();
            let changed = Arc::make_mut(&mut m.changed);
            for piece in handed {
                changed.extend(piece.customers.iter().cloned());
                m.weight += piece.weight;
                pieces.push(Arc::new(piece));
            }
            m.pieces = Arc::from(pieces);
        } else {
            let (mut fresh, shared_changed) = self.changed_after(&mut tx, m.known).await?;
            if !fresh.is_empty() || shared_changed {
                let part = self.part_files(&mut tx, &mut fresh, latest).await?;
                let weight = part.weight();
                let book = match fresh.is_empty() {
                    true => None,
                    false => Some(read_files(&part.files, &self.options, true)?),
                };
                let (text, shared_text) = merge::split_part(part.files, part.order, part.extras);
                shared = shared_changed.then_some(shared_text);
                if let Some(book) = book {
                    let piece = Piece {
                        event: latest,
                        book,
                        customers: fresh.clone(),
                        text,
                        weight,
                    };
                    m.weight += weight;
                    let mut pieces = m.pieces.to_vec();
                    pieces.push(Arc::new(piece));
                    m.pieces = Arc::from(pieces);
                    Arc::make_mut(&mut m.changed).extend(fresh);
                }
            }
        }
        m.known = latest;
        if m.changed.len() > REBASE_AT.max(m.base.customers.len() / 16)
            || m.pieces.len() > MAX_PIECES
            || m.weight > MAX_PIECES_BYTES
        {
            self.rebase_in_background(m.base_event);
        }
        Ok(match shared {
            Some(shared) => Advance::Shared(shared),
            None => Advance::Current,
        })
    }

    /// Keeps the parts of committed writes for the next read (see [`Store::latest_parts`]).
    pub(crate) fn hand_pieces(&self, pieces: Vec<Piece>) {
        if pieces.is_empty() {
            return;
        }
        let mut handed = self.handed.lock().unwrap_or_else(|e| e.into_inner());
        handed.extend(pieces);
        let mut weight: usize = handed.iter().map(|p| p.weight).sum();
        while handed.len() > MAX_HANDED || weight > MAX_PIECES_BYTES {
            weight -= handed.pop_front().map_or(0, |p| p.weight);
        }
    }

    /// The handed parts of events after `after` up to `latest`, taken (with those before).
    fn handed_between(&self, after: i64, latest: i64) -> Vec<Piece> {
        let mut handed = self.handed.lock().unwrap_or_else(|e| e.into_inner());
        let upto = handed.partition_point(|p| p.event <= latest);
        handed.drain(..upto).filter(|p| p.event > after).collect()
    }

    /// How many events there are after `after` up to `latest`.
    async fn events_between(
        &self,
        tx: &mut Tx,
        after: i64,
        latest: i64,
    ) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM events WHERE id > $1 AND id <= $2")
            .bind(after)
            .bind(latest)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// A read transaction that sees one moment of the database throughout.
    async fn snapshot(&self) -> Result<Tx, StoreError> {
        let mut tx = self.pool.begin().await?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// The customers whose rows an event after `event` added or closed, and whether one
    /// changed a shared table.
    async fn changed_after(
        &self,
        tx: &mut Tx,
        event: i64,
    ) -> Result<(BTreeSet<String>, bool), StoreError> {
        let mut customers = BTreeSet::new();
        let mut shared = false;
        for schema in FILES {
            let table = crate::table_name(&schema);
            let after = "(added_in > $1 OR (removed_in IS NOT NULL AND removed_in > $1))";
            match customer_column(&schema) {
                Some(column) => {
                    let sql = format!(
                        "SELECT DISTINCT \"{column}\" FROM \"{table}\" WHERE {after} AND \"{column}\" IS NOT NULL"
                    );
                    for row in sqlx::query(&sql).bind(event).fetch_all(&mut **tx).await? {
                        customers.insert(row.try_get::<String, _>(0)?);
                    }
                }
                None if shared => {}
                None => {
                    let sql = format!(
                        "SELECT COUNT(*) FROM (SELECT 1 FROM \"{table}\" WHERE {after} LIMIT 1) AS any_row"
                    );
                    let n: i64 = sqlx::query(&sql)
                        .bind(event)
                        .fetch_one(&mut **tx)
                        .await?
                        .try_get(0)?;
                    shared = n > 0;
                }
            }
        }
        Ok((customers, shared))
    }

    /// Has the latest book (made from the parts, else read whole) in a task of its own, then
    /// makes it the base (unless a newer base came meanwhile). One at a time.
    fn rebase_in_background(&self, base_event: i64) {
        use std::sync::atomic::Ordering;
        if self.rebasing.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            if let Ok(latest) = store.latest_with_text().await {
                let mut model = store.parts.lock().await;
                if let Some(m) = model.as_mut() {
                    if m.base_event == base_event && latest.0 > m.base_event {
                        *m = Model::new(latest);
                    }
                }
            }
            store.rebasing.store(false, Ordering::Release);
        });
    }
}

/// What [`Store::advance`] found.
enum Advance {
    /// The book in parts is at the latest event.
    Current,
    /// It is, and a shared table changed since the base: these are the shared files now.
    Shared(BookText),
}

/// Whose rows [`Store::latest_part`] reads.
#[derive(Clone, Copy, Debug)]
pub enum PartOf<'a> {
    /// One customer's, by id.
    Customer(&'a str),
    /// The customers of one contract (its contracts.csv row, its lines, or the line that is
    /// its own contract).
    Contract(&'a str),
}

impl Store {
    /// The latest book's part with the rows of `of` (and of the customers whose lines their
    /// offers name), with the shared tables whole, and the event it is at: what a quote, a
    /// contract's terms or a customer's trail need, read in a few queries whatever the size of
    /// the book. A customer or contract the book does not have gives a part without it (the
    /// command then says it is unknown, as on the whole book).
    pub async fn latest_part(&self, of: PartOf<'_>) -> Result<(i64, Book), StoreError> {
        let mut tx = self.snapshot().await?;
        let latest = self.resolve(&mut tx, AsOf::Latest).await?;
        if latest == 0 {
            return Err(StoreError::NotFound(crate::NO_BOOK.into()));
        }
        let mut customers = BTreeSet::new();
        match of {
            PartOf::Customer(id) => {
                customers.insert(id.to_string());
            }
            PartOf::Contract(id) => {
                for (table, column) in [
                    ("contracts", "row_key"),
                    ("subscriptions", "contract_id"),
                    ("subscriptions", "row_key"),
                ] {
                    customers.extend(self.owners(&mut tx, table, column, id).await?);
                }
            }
        }
        let part = self.part_files(&mut tx, &mut customers, latest).await?;
        Ok((latest, read_files(&part.files, &self.options, true)?))
    }

    /// The files of the part of the book at `latest` (what the snapshot `tx` sees) with the
    /// rows of `customers`, to whom are added those whose lines their offers name, and the
    /// shared files whole.
    async fn part_files(
        &self,
        tx: &mut Tx,
        customers: &mut BTreeSet<String>,
        latest: i64,
    ) -> Result<Part, StoreError> {
        let held = self.held_files(tx, latest + 1).await?;
        if held & crate::changed::file_bit(&expansa_import::schema::OFFERS) != 0 {
            self.close_over_offers(tx, customers).await?;
        }
        self.read_part(tx, customers, held).await
    }
}
