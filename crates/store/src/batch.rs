//! One writer at a time, and group commit: row writes and quotes ([`Store::write`],
//! [`Store::apply_quote`]) that arrive while another is being made share its transaction, each
//! in a savepoint of its own, and are committed together, with one sync to disk for all of them.
//!
//! A write joins the open batch (or opens one: `BEGIN IMMEDIATE` in SQLite, the events table
//! locked in PostgreSQL), makes its changes inside `SAVEPOINT one_write`, and releases it (kept) or
//! rolls back to it (refused: the batch's other writes stay). Then, when no other write waits
//! for the writer, or the batch holds [`MAX_BATCH_WRITES`] writes or is [`MAX_BATCH_AGE`] old,
//! it commits the batch; otherwise it leaves the batch open for the next write and waits for
//! the commit. A write answers only after its batch committed: an acknowledged write is on disk,
//! and a batch that fails to commit fails every write in it (none applied). A write whose
//! caller goes away mid-way is rolled back to its savepoint and the batch committed by a task
//! of its own, so the other writes of its batch still land.
//!
//! Imports take the writer alone: they commit the open batch first.

use crate::{is_busy, retry_pause, Dialect, Live, Piece, Store, StoreError, Tx};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Mutex, OwnedMutexGuard};

/// The most writes one batch commits.
pub const MAX_BATCH_WRITES: usize = 32;
/// How long a batch stays open for more writes, at most, from its first.
pub const MAX_BATCH_AGE: Duration = Duration::from_millis(10);
/// How long a write left in an open batch waits for the next write to commit it before it
/// commits the batch itself (the next write's caller may have gone away).
const COMMIT_AFTER: Duration = Duration::from_millis(20);

/// A transaction shared by writes, committed together.
pub(crate) struct Batch {
    tx: Tx,
    id: u64,
    writes: usize,
    opened: Instant,
    /// The parts its writes were validated on, in event order.
    pieces: Vec<Piece>,
    /// Sent when the batch committed (`Ok`) or failed to (`Err`, the database's message).
    done: watch::Sender<Option<Result<(), String>>>,
}

/// The writer: the open batch, if any, under the lock every writer of this process takes.
#[derive(Default)]
pub(crate) struct Writer {
    slot: Arc<Mutex<Option<Batch>>>,
    /// Writers waiting for `slot`.
    waiting: AtomicUsize,
    batches: AtomicU64,
    /// Batches committed, and the writes in them.
    committed: AtomicU64,
    committed_writes: AtomicU64,
}

/// The writer lock: the open batch (none while an import holds it).
pub(crate) type WriterGuard = OwnedMutexGuard<Option<Batch>>;

/// Counts a writer waiting for the lock until it has it (or gave up).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A write in a batch: its savepoint is open until [`Member::end`].
pub(crate) struct Member {
    store: Store,
    guard: Option<WriterGuard>,
    /// Whether `SAVEPOINT one_write` is open (to roll back to if the write is dropped).
    savepoint: bool,
}

/// How a write in a batch ended.
pub(crate) struct Finished<T> {
    pub answer: T,
    /// Keep its changes (release the savepoint), or roll back to it (nothing changed).
    pub keep: bool,
    /// The book after it, when the write validated the whole book.
    pub live: Option<Live>,
    /// The part of the book it was validated on, when it was validated on its part: handed to
    /// the reads once the batch commits ([`Store::latest_parts`]).
    pub piece: Option<Piece>,
}

impl Store {
    /// The batches of writes this store has committed, and the writes in them (row writes and
    /// quotes; a write that changed nothing counts): how well group commit groups.
    pub fn committed_batches(&self) -> (u64, u64) {
        (
            self.writer.committed.load(Ordering::Relaxed),
            self.writer.committed_writes.load(Ordering::Relaxed),
        )
    }

    /// The writer lock, waited for up to the busy timeout.
    async fn lock_writer(&self) -> Result<WriterGuard, StoreError> {
        self.writer.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.writer.waiting);
        tokio::time::timeout(self.busy_timeout, self.writer.slot.clone().lock_owned())
            .await
            .map_err(|_| self.busy())
    }

    /// Starts a write alone (an import): one writer at a time, in this process (the guard,
    /// after committing any open batch) and in every process sharing the database (SQLite's
    /// write lock, taken at once; a table lock in PostgreSQL).
    pub(crate) async fn begin_write(&self) -> Result<(Tx, WriterGuard), StoreError> {
        let deadline = Instant::now() + self.busy_timeout;
        let mut guard = self.lock_writer().await?;
        if guard.is_some() {
            // Its writes hear how it went; the import goes on either way.
            let _ = self.commit_batch(&mut guard).await;
        }
        let tx = self.begin_tx(deadline).await?;
        *self.bound() = None;
        Ok((tx, guard))
    }

    /// A transaction holding the database's write lock, waited for until `deadline`, trying
    /// again while SQLite answers busy without waiting (a lock held in a way its busy handler
    /// cannot wait for). Begun by a task of its own: a caller that goes away while the
    /// database begins it leaves no transaction open on the write connection (the task's
    /// transaction is dropped, so rolled back).
    async fn begin_tx(&self, deadline: Instant) -> Result<Tx, StoreError> {
        let store = self.clone();
        tokio::spawn(async move { store.begin_tx_here(deadline).await })
            .await
            .map_err(|e| StoreError::Busy(format!("beginning a write failed: {e}")))?
    }

    async fn begin_tx_here(&self, deadline: Instant) -> Result<Tx, StoreError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // Whole milliseconds, at least one: a wait of 0 would mean "forever" to PostgreSQL.
            let wait = left.as_millis().max(1);
            let attempt: Result<Tx, sqlx::Error> = async {
                match self.dialect {
                    Dialect::Sqlite => {
                        // The write pool's one connection, ours while the guard is held. Its
                        // busy timeout is the store's unless a write that waited here for a
                        // second or more shortened it to what was left (then the next write
                        // sets it back): one statement saved on a write that did not wait.
                        let shorter = left + Duration::from_secs(1) < self.busy_timeout;
                        if shorter || self.shortened.load(Ordering::Relaxed) {
                            let mut conn = self.writes.acquire().await?;
                            let wait = if shorter {
                                wait
                            } else {
                                self.busy_timeout.as_millis()
                            };
                            sqlx::query(&format!("PRAGMA busy_timeout = {wait}"))
                                .execute(&mut *conn)
                                .await?;
                            self.shortened.store(shorter, Ordering::Relaxed);
                        }
                        self.writes.begin_with("BEGIN IMMEDIATE").await
                    }
                    Dialect::Postgres => {
                        let mut tx = self.writes.begin().await?;
                        sqlx::query("SELECT set_config('lock_timeout', $1, true)")
                            .bind(wait.to_string())
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
                            .execute(&mut *tx)
                            .await?;
                        Ok(tx)
                    }
                }
            }
            .await;
            match attempt {
                Ok(tx) => {
                    self.mark_written();
                    return Ok(tx);
                }
                Err(e) if is_busy(&e) => {
                    let pause = retry_pause();
                    if Instant::now() + pause >= deadline {
                        return Err(self.busy());
                    }
                    tokio::time::sleep(pause).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Joins the open batch, or opens one, and opens the write's savepoint.
    pub(crate) async fn join_batch(&self) -> Result<Member, StoreError> {
        let deadline = Instant::now() + self.busy_timeout;
        let mut guard = self.lock_writer().await?;
        if guard.is_none() {
            let tx = self.begin_tx(deadline).await?;
            *self.bound() = None;
            *guard = Some(Batch {
                tx,
                id: self.writer.batches.fetch_add(1, Ordering::Relaxed),
                writes: 0,
                opened: Instant::now(),
                pieces: Vec::new(),
                done: watch::channel(None).0,
            });
        }
        let mut member = Member {
            store: self.clone(),
            guard: Some(guard),
            savepoint: false,
        };
        sqlx::query("SAVEPOINT one_write")
            .execute(&mut **member.tx())
            .await?;
        member.savepoint = true;
        Ok(member)
    }

    /// Commits the open batch in `guard` (leaving none) and tells its writes how it went. The
    /// commit runs in a task of its own: a caller that goes away meanwhile does not leave the
    /// batch's writes unsure whether it committed.
    async fn commit_batch(&self, guard: &mut WriterGuard) -> Result<(), StoreError> {
        let Some(batch) = guard.take() else {
            return Ok(());
        };
        let store = self.clone();
        tokio::spawn(async move {
            let committed = store.commit_keeping(batch.tx).await;
            if committed.is_ok() {
                store.hand_pieces(batch.pieces);
                store.writer.committed.fetch_add(1, Ordering::Relaxed);
                let writes = batch.writes as u64;
                store
                    .writer
                    .committed_writes
                    .fetch_add(writes, Ordering::Relaxed);
            }
            let told = committed.as_ref().map(|_| ()).map_err(|e| e.to_string());
            batch.done.send_replace(Some(told));
            committed
        })
        .await
        .map_err(|e| StoreError::Busy(format!("committing a batch of writes failed: {e}")))?
    }

    /// Rolls the open batch back (its writes are told so by its channel closing), and forgets
    /// what this process learnt from its writes.
    fn abandon_batch(&self, guard: &mut WriterGuard) {
        guard.take();
        self.forget_uncommitted();
    }

    /// Forgets the book validated for a write that did not commit, and which files held rows.
    fn forget_uncommitted(&self) {
        self.kept().committing = None;
        self.held.store(0, Ordering::Relaxed);
        *self.bound() = None;
    }

    /// Commits `tx`, and moves the book this process validated for its last write (set just
    /// before) from being committed to committed; on a failure forgets it, and which files
    /// held rows (learnt from writes that are now gone).
    pub(crate) async fn commit_keeping(&self, mut tx: Tx) -> Result<(), StoreError> {
        let committed = match self.flush_mrr_bound(&mut tx).await {
            Ok(()) => tx.commit().await,
            Err(e) => {
                self.forget_uncommitted();
                return Err(e);
            }
        };
        let mut kept = self.kept();
        match committed {
            Ok(()) => {
                if kept.committing.is_some() {
                    kept.committed = kept.committing.take();
                }
                Ok(())
            }
            Err(e) => {
                drop(kept);
                self.forget_uncommitted();
                Err(e.into())
            }
        }
    }
}

impl Member {
    /// The batch's transaction.
    pub(crate) fn tx(&mut self) -> &mut Tx {
        &mut self
            .guard
            .as_mut()
            .and_then(|g| g.as_mut())
            .expect("a member holds the open batch until it ends")
            .tx
    }

    /// Ends the write: its changes kept or rolled back to its savepoint, the batch committed
    /// now or left to the next write. An answer is returned once the batch committed; an error
    /// at once (its changes are gone whatever the batch does). From here on the write runs in
    /// a task of its own: a caller that goes away no longer changes what happens to it.
    pub(crate) async fn end<T>(
        mut self,
        mut result: Result<Finished<T>, StoreError>,
    ) -> Result<T, StoreError> {
        let guard = self.guard.take().expect("a member ends once");
        self.savepoint = false;
        let store = self.store.clone();
        let (keep, live, piece, ok) = match &mut result {
            Ok(f) => (f.keep, f.live.take(), f.piece.take(), true),
            Err(_) => (false, None, None, false),
        };
        let settled = tokio::spawn(async move { store.settle(guard, keep, live, piece, ok).await })
            .await
            .map_err(|e| StoreError::Busy(format!("ending a write failed: {e}")))?;
        let finished = result?;
        settled?;
        Ok(finished.answer)
    }
}

impl Store {
    /// The end of a write in the batch in `guard` ([`Member::end`]): `keep` its changes or not;
    /// when it succeeded (`ok`), the batch committed with it in (`Ok`) or not (`Err`).
    async fn settle(
        &self,
        mut guard: WriterGuard,
        keep: bool,
        live: Option<Live>,
        piece: Option<Piece>,
        ok: bool,
    ) -> Result<(), StoreError> {
        let Some(batch) = guard.as_mut() else {
            unreachable!("a member holds the open batch until it ends")
        };
        let closed = if keep {
            sqlx::query("RELEASE SAVEPOINT one_write")
                .execute(&mut *batch.tx)
                .await
                .map(|_| ())
        } else {
            rollback_to_savepoint(&mut batch.tx).await
        };
        if let Err(e) = closed {
            // The transaction is in a state no savepoint undoes: the batch is rolled back, and
            // its writes told so.
            self.abandon_batch(&mut guard);
            return Err(e.into());
        }
        if !ok {
            self.leave_or_commit(guard).await;
            return Ok(());
        }
        if let Some(live) = live {
            self.kept().committing = Some(live);
        }
        batch.pieces.extend(piece.filter(|_| keep));
        batch.writes += 1;
        let full = batch.writes >= MAX_BATCH_WRITES || batch.opened.elapsed() >= MAX_BATCH_AGE;
        if full || self.writer.waiting.load(Ordering::Acquire) == 0 {
            return self.commit_batch(&mut guard).await;
        }
        let (id, mut done) = (batch.id, batch.done.subscribe());
        drop(guard);
        loop {
            match tokio::time::timeout(COMMIT_AFTER, done.changed()).await {
                Ok(Ok(())) => break,
                Ok(Err(_)) => {
                    return Err(StoreError::Busy(
                        "the write's batch was rolled back (the transaction failed): nothing \
                         was changed, try again"
                            .into(),
                    ))
                }
                // Not committed yet: commit it if it is still open.
                Err(_) => {
                    let mut guard = self.lock_writer().await?;
                    if guard.as_ref().map(|b| b.id) == Some(id) {
                        return self.commit_batch(&mut guard).await;
                    }
                }
            }
        }
        let outcome = done.borrow().clone();
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(StoreError::Busy(format!(
                "the write's batch failed to commit: {e}; nothing was changed, try again"
            ))),
            None => unreachable!("a batch's outcome is sent once, never None"),
        }
    }

    /// After a write that changed nothing in the batch: commit it now if no write waits to join
    /// it, else leave it open for the next.
    async fn leave_or_commit(&self, mut guard: WriterGuard) {
        let empty = guard.as_ref().is_some_and(|b| b.writes == 0);
        if self.writer.waiting.load(Ordering::Acquire) == 0 || empty {
            if empty {
                // Nothing in it: rolled back, no sync.
                if let Some(batch) = guard.take() {
                    let _ = batch.tx.rollback().await;
                    batch.done.send_replace(Some(Ok(())));
                }
                return;
            }
            // Its writes hear of a failure from the batch.
            let _ = self.commit_batch(&mut guard).await;
        }
    }

    /// Commits the open batch, if any (closing the store).
    pub(crate) async fn commit_open_batch(&self) -> Result<(), StoreError> {
        let mut guard = self.lock_writer().await?;
        self.commit_batch(&mut guard).await
    }
}

/// Undoes a write's changes in its batch: back to its savepoint, and closes it.
async fn rollback_to_savepoint(tx: &mut Tx) -> Result<(), sqlx::Error> {
    sqlx::query("ROLLBACK TO SAVEPOINT one_write")
        .execute(&mut **tx)
        .await?;
    sqlx::query("RELEASE SAVEPOINT one_write")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Drop for Member {
    /// A write dropped before it ended (its caller went away): rolled back to its savepoint,
    /// and the batch committed for the other writes in it, by a task of its own.
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        let (store, savepoint) = (self.store.clone(), self.savepoint);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // the batch is rolled back with its transaction
        };
        runtime.spawn(async move {
            if let Some(batch) = guard.as_mut() {
                if savepoint && rollback_to_savepoint(&mut batch.tx).await.is_err() {
                    store.abandon_batch(&mut guard);
                    return;
                }
            }
            store.leave_or_commit(guard).await;
        });
    }
}
