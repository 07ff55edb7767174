//! The book in a database: SQLite (embedded, the default) or PostgreSQL (for a team).
//!
//! Every file of the interchange format is a table of versioned rows. A write (an import, a
//! line edit, an applied quote) is one transaction and one event with who, when and why; it
//! closes the versions it replaces (`removed_in`) and adds new ones (`added_in`), so the book
//! as of any earlier event can be read back, and reports computed on it. Every write is
//! validated as a whole book before it commits: a bad write changes nothing.
//!
//! Values are kept as the canonical text of the interchange format (NUMERIC and DATE columns
//! in PostgreSQL); the book is rebuilt from them by the same reader as a folder of CSV files,
//! so a report from the store and one from the exported files can never differ.

mod batch;
mod changed;
mod export;
mod idempotency;
mod keys;
mod merge;
mod migrate;
mod parts;
mod portal;
mod quote;
mod users;
mod webhooks;

pub use export::{write_book, ExistingBook};
pub use idempotency::Idempotency;
pub use keys::{constant_time_eq, sha256_bytes_hex, sha256_hex, ApiKey};
pub use users::{
    check_password, check_user_name, AuditEntry, AuditQuery, Role, Session, SessionLimits, User,
    MAX_AUDIT_LIMIT, MAX_PASSWORD, MAX_USER_NAME, MIN_PASSWORD,
};

pub use parts::{LatestParts, PartOf, Piece};
pub use portal::{
    Delivery, PortalAmendment, PortalLink, PortalPdf, Signature, Signing, MAX_PORTAL_DAYS,
};
pub use quote::quote_changes;
use quote::Priced;
pub use webhooks::{NewWebhook, WebhookEvent, WebhookState, MAX_QUEUED_WEBHOOKS};

use expansa_import::schema::{ColumnKind, Schema, FILES};
use expansa_import::{
    check_value, extra_columns, header_names, read_book_from, read_rows_in, write_rows, BookErrors,
    BookFormat, BookSource, ImportOptions, InMemory, NoProgress, Problem, RawRow, TextEncoding,
};
use expansa_ledger::Book;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long an operation waits for another writer by default (SQLite's busy timeout,
/// PostgreSQL's `lock_timeout`) before it gives up with [`StoreError::Busy`].
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest busy timeout a store accepts.
pub const MAX_BUSY_TIMEOUT: Duration = Duration::from_secs(600);

/// Which database a store is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(sqlx::Error),
    /// Another writer held the store for longer than the busy timeout: nothing was changed, and
    /// the same request can be made again.
    #[error("{0}")]
    Busy(String),
    #[error("{}", describe_problems(.0))]
    Book(BookErrors),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// An idempotency key sent again with a different request.
    #[error("{0}")]
    IdempotencyKeyReused(String),
    #[error("cannot write {path}: {error}")]
    Io { path: String, error: std::io::Error },
}

fn describe_problems(e: &BookErrors) -> String {
    format!("the book was not changed: {e}")
}

impl From<sqlx::Error> for StoreError {
    /// A database error; "busy" (the other writer kept its lock past the wait) is its own kind.
    fn from(e: sqlx::Error) -> StoreError {
        if is_busy(&e) {
            StoreError::Busy(busy_message(None))
        } else {
            StoreError::Db(e)
        }
    }
}

/// Whether `e` says another connection holds a lock this one waited for in vain: SQLite's
/// `SQLITE_BUSY` (any extended code), PostgreSQL's `lock_not_available` (`lock_timeout`), or
/// no pooled connection free in time.
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                code.parse::<i32>().is_ok_and(|c| c & 0xff == 5)
            } else {
                code == "55P03"
            }
        }
        _ => false,
    }
}

/// What a busy store says, with the time waited when known.
fn busy_message(waited: Option<Duration>) -> String {
    let waited = match waited {
        Some(d) => format!(" for {} s (the busy timeout)", d.as_secs_f64()),
        None => " for longer than the busy timeout".to_string(),
    };
    format!(
        "the store is busy: another writer held it{waited}; nothing was changed: try again when it is done"
    )
}

/// Who makes a change, and why.
#[derive(Clone, Debug)]
pub struct Actor {
    pub who: String,
    pub why: String,
}

/// The moment a book is read at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AsOf {
    /// Everything committed.
    #[default]
    Latest,
    /// Right after this event.
    Event(i64),
    /// The last event at or before this instant.
    Time(jiff::Timestamp),
}

impl std::str::FromStr for AsOf {
    type Err = String;
    /// `event:N`, an RFC 3339 instant (`2026-03-01T12:00:00Z`), or a day (its end, UTC).
    fn from_str(s: &str) -> Result<AsOf, String> {
        if let Some(n) = s.strip_prefix("event:") {
            return n
                .parse()
                .map(AsOf::Event)
                .map_err(|_| format!("{s:?}: expected event:N"));
        }
        // The years a report may name (README, "Limits"): 0000 is a typo, not a moment.
        let year = |t: jiff::Timestamp| t.to_zoned(jiff::tz::TimeZone::UTC).year();
        let years = 1900..=9999;
        if let Ok(t) = s.parse::<jiff::Timestamp>() {
            if !years.contains(&year(t)) {
                return Err(format!("{s:?}: the year must be from 1900 to 9999"));
            }
            return Ok(AsOf::Time(t));
        }
        let day = expansa_ledger::parse_date(s.as_bytes())
            .ok_or_else(|| format!("{s:?}: expected event:N, YYYY-MM-DD or an RFC 3339 instant"))?;
        if !years.contains(&day.year()) {
            return Err(format!("{s:?}: the year must be from 1900 to 9999"));
        }
        let end = day
            .tomorrow()
            .ok()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp() - jiff::SignedDuration::from_micros(1))
            .ok_or_else(|| format!("{s:?}: out of range"))?;
        Ok(AsOf::Time(end))
    }
}

/// One entry of the event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: i64,
    /// UTC, RFC 3339 with microseconds.
    pub at: String,
    pub actor: String,
    pub reason: String,
    /// `import`, `amend`, `renew`, `line`, ...
    pub kind: String,
    /// JSON: what the write changed, file by file.
    pub detail: Option<String>,
}

/// The event log as JSON: `[{"id", "at", "actor", "reason", "kind", "detail"}]`.
pub fn events_json(events: &[Event]) -> serde_json::Value {
    events
        .iter()
        .map(|e| {
            serde_json::json!({
                "id": e.id,
                "at": e.at,
                "actor": e.actor,
                "reason": e.reason,
                "kind": e.kind,
                "detail": e.detail.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()),
            })
        })
        .collect()
}

/// What a write did to one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileChanges {
    pub file: &'static str,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub unchanged: usize,
}

/// The result of a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The event recorded; `None` when nothing changed.
    pub event: Option<i64>,
    pub files: Vec<FileChanges>,
    /// The write had been made before under the same idempotency key: nothing was done.
    pub replayed: bool,
    /// What the first write under the key answered.
    pub response: Option<String>,
}

impl WriteOutcome {
    /// The outcome of a write made before under the same idempotency key: its event and answer.
    fn replayed(event: Option<i64>, response: String) -> WriteOutcome {
        WriteOutcome {
            event,
            files: Vec::new(),
            replayed: true,
            response: Some(response),
        }
    }

    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        self.event.is_some()
    }
}

/// One change to one row.
#[derive(Clone, Debug)]
pub enum RowChange {
    /// Add a row, or replace the current row with the same key. With `create_only`, a
    /// different row under the same key is a conflict (an identical one is no change).
    Put {
        schema: Schema,
        values: Vec<Option<String>>,
        extra: Vec<(String, String)>,
        create_only: bool,
    },
    /// Change one column of the current row with `key`.
    Set {
        schema: Schema,
        key: String,
        column: &'static str,
        value: Option<String>,
    },
    /// Remove the current row with `key`.
    Remove { schema: Schema, key: String },
}

/// How an import treats rows the files do not mention.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImportMode {
    /// Keep them: the import adds and updates rows by key.
    #[default]
    Merge,
    /// Remove them from every file the import has: the store then holds exactly the files.
    Replace,
}

/// A row of a file as read back: the schema's columns, then the other columns it had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableRow {
    pub values: Vec<Option<String>>,
    pub extra: Vec<(String, String)>,
}

/// A current row as stored.
#[derive(Clone, Debug)]
struct Stored {
    ord: i64,
    values: Vec<Option<String>>,
    extra: Option<String>,
}

/// A backup written by [`Store::backup`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// The last event the copy holds (0 for a store without events).
    pub event: i64,
    /// Its size.
    pub bytes: u64,
}

/// How a write is checked before it commits. Both run the importer's checks (the one reader);
/// they differ in what they run them on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WriteValidation {
    /// The rows of the customers the write touches (and of those their rows name), with the
    /// small shared tables: a write costs in proportion to what it changes. Writes to the shared
    /// tables, and imports, check the whole book.
    #[default]
    Changed,
    /// The whole book as it would be after the write, every time: the write path before
    /// incremental validation, kept for benchmarks and as the reference the incremental path is
    /// tested against.
    Whole,
}

/// A book store.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// The connection writes use (SQLite: its own pool of one, whose busy timeout a write sets
    /// to what is left of its wait; PostgreSQL: `pool`).
    writes: AnyPool,
    dialect: Dialect,
    /// How long an operation waits for another writer.
    busy_timeout: Duration,
    /// Whether this store has written (then closing it checkpoints SQLite's WAL).
    wrote: std::sync::Arc<AtomicBool>,
    options: ImportOptions,
    /// Serialises this process's writers before they reach the database, and holds the open
    /// batch of writes committed together ([`batch`]).
    writer: std::sync::Arc<batch::Writer>,
    /// The files of the latest event, kept after a read or a write of this process.
    live: std::sync::Arc<std::sync::Mutex<Kept>>,
    validation: WriteValidation,
    /// The tables known to have held rows, one bit per file of [`FILES`].
    held: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// The bound on the book's total MRR as the open transaction of the writer knows it.
    bound: std::sync::Arc<std::sync::Mutex<Option<changed::Bound>>>,
    /// The latest book in parts, kept between reads ([`Store::latest_parts`]).
    parts: std::sync::Arc<tokio::sync::Mutex<Option<parts::Model>>>,
    /// Whether the base of `parts` is being read again.
    rebasing: std::sync::Arc<AtomicBool>,
    /// The parts this process's writes were validated on, committed, not yet taken by a read
    /// of `parts` (oldest first).
    handed: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Piece>>>,
    /// Held while the latest book is read whole ([`Store::latest_book`]).
    reading_whole: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// How the latest book was had each time it was not kept: see
    /// [`Store::latest_books_made`].
    made: std::sync::Arc<Made>,
    /// Held while the latest book is made from the book in parts.
    making: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Whether the write connection's busy timeout is shorter than the store's (SQLite).
    shortened: std::sync::Arc<AtomicBool>,
    /// Audit entries queued to be written with the writes.
    audits: std::sync::Arc<users::AuditQueue>,
}

/// The latest files this process knows: committed, and those of a write being committed.
#[derive(Default)]
struct Kept {
    committed: Option<Live>,
    /// Set just before a write commits: a reader that finds the write's event in the database
    /// has seen the commit, and reads these instead of the database while the writer has not
    /// yet taken its turn to move them to `committed`.
    committing: Option<Live>,
}

impl Kept {
    /// The kept files at `event`; for the latest (`or_newer`), also newer committed ones.
    fn at(&self, event: i64, or_newer: bool) -> Option<&Live> {
        let committed = self
            .committed
            .as_ref()
            .filter(|l| l.event == event || (or_newer && l.event > event));
        committed.or(self.committing.as_ref().filter(|l| l.event == event))
    }
}

/// How many times the latest book was made from the book in parts, read whole, and read whole
/// because it could not be made ([`Store::latest_books_made`]).
#[derive(Default)]
struct Made {
    merged: std::sync::atomic::AtomicU64,
    whole: std::sync::atomic::AtomicU64,
    not_merged: std::sync::atomic::AtomicU64,
}

/// The latest book, the event it is at, and its files.
type LatestText = (i64, std::sync::Arc<Book>, std::sync::Arc<merge::BookText>);

/// The book's files at one event, as CSV: what the latest book is read from, and what a write
/// that only adds rows is validated on (its rows appended), without reading the database.
#[derive(Clone)]
struct Live {
    event: i64,
    text: std::sync::Arc<merge::BookText>,
    /// The book read from them, once read (a write keeps the book it validated).
    book: Option<std::sync::Arc<Book>>,
}

impl Live {
    /// These files with rows appended; `None` when a row does not fit the fast path (its file
    /// is absent, or it has a column the file's header lacks).
    fn with_appended(&self, rows: &[(Schema, TableRow)]) -> Option<Vec<(&'static str, Vec<u8>)>> {
        let mut files = self.text.files.clone();
        for (schema, TableRow { values, extra }) in rows {
            let (_, bytes) = files.iter_mut().find(|(name, _)| *name == schema.file)?;
            // The header as the import reads it (the one reader).
            let header = header_names(bytes)?;
            let extra_columns: Vec<String> = header.get(schema.columns.len()..)?.to_vec();
            let known: HashSet<&str> = extra_columns.iter().map(String::as_str).collect();
            if extra.iter().any(|(name, _)| !known.contains(name.as_str())) {
                return None;
            }
            let record = write_rows(
                schema,
                &extra_columns,
                [(values.as_slice(), extra.as_slice())],
            );
            let body_start = record.iter().position(|&b| b == b'\n')? + 1;
            if !bytes.ends_with(b"\n") {
                bytes.push(b'\n');
            }
            bytes.extend_from_slice(&record[body_start..]);
        }
        Some(files)
    }
}

/// The database URL from a `--db` value: `sqlite:PATH`, `postgres://...`, or a bare path.
pub fn normalize_url(url: &str) -> Result<(String, Dialect), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((url.to_string(), Dialect::Postgres));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() || url.contains("://") && !url.starts_with("sqlite://") {
        return Err(StoreError::Invalid(format!(
            "unsupported database URL {url:?}: use sqlite:PATH or postgres://USER@HOST/DB"
        )));
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    Ok((
        format!("sqlite:{path}?{}", params.join("&")),
        Dialect::Sqlite,
    ))
}

/// Creates an empty PostgreSQL database `name` (dropping one of that name first) on the
/// server of `admin_url`, and returns its URL: for setup scripts and tests.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, StoreError> {
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(StoreError::Invalid(format!(
            "{name:?}: use a-z, 0-9 and _ in a database name"
        )));
    }
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(admin_url)
        .await?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&pool)
        .await?;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await?;
    pool.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}

/// Runs `sql` (a setting) on a new connection.
fn set_on(
    conn: &mut sqlx::AnyConnection,
    sql: String,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        sqlx::Executor::execute(conn, sql.as_str()).await?;
        Ok(())
    })
}

/// How a PostgreSQL store is backed up.
const PG_DUMP_ADVICE: &str = "expansa backup copies a SQLite store; back up a PostgreSQL store \
     with PostgreSQL's own tools: pg_dump --format=custom --file=FILE DATABASE_URL (restore with \
     pg_restore --dbname=DATABASE_URL FILE; see docs/store.md)";

/// The last event of the SQLite store in the file at `path` (a backup just made).
async fn last_event_in(path: &str) -> Result<i64, StoreError> {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(&format!("sqlite:{path}?mode=rw")).await?;
    let event = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM events")
        .fetch_one(&mut conn)
        .await
        .and_then(|r| r.try_get::<i64, _>(0));
    conn.close().await?;
    Ok(event?)
}

/// The pause before trying a lock again: 20 to 70 ms, varied so that processes retrying
/// together do not collide again.
fn retry_pause() -> Duration {
    let mut b = [0u8; 1];
    let jitter = getrandom::fill(&mut b).map_or(0, |_| u64::from(b[0]) % 50);
    Duration::from_millis(20 + jitter)
}

/// Key columns joined; the separator cannot appear in a trimmed CSV value of an id.
const KEY_SEPARATOR: char = '\u{1f}';

/// The key of a row of `schema`.
pub fn row_key(schema: &Schema, values: &[Option<String>]) -> String {
    let mut key = String::new();
    for (i, column) in schema.key.iter().enumerate() {
        if i > 0 {
            key.push(KEY_SEPARATOR);
        }
        if let Some(v) = schema.position(column).and_then(|k| values[k].as_deref()) {
            key.push_str(v);
        }
    }
    key
}

fn table_name(schema: &Schema) -> &'static str {
    schema.file.trim_end_matches(".csv")
}

fn now_text() -> String {
    time_text(jiff::Timestamp::now())
}

/// An instant as the event log keeps it: fixed width, so text order is time order.
fn time_text(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Where a row first written by `event` sorts: by event, then by its place in the write.
fn ord(event: i64, position: i64) -> i64 {
    event * 1_000_000_000 + position
}

/// Rows per INSERT statement, so the bound values stay far below both databases' limits.
fn rows_per_insert(schema: &Schema) -> usize {
    (20_000 / (schema.columns.len() + 4)).max(1)
}

/// Bytes of values bound to one INSERT statement at most (one row may bring more, up to the
/// longest record the import reads): far below PostgreSQL's 1 GiB message.
const BYTES_PER_INSERT: usize = 16 << 20;

/// How many of `rows` (their keys and rows, in order) the next INSERT takes: at most
/// [`rows_per_insert`] and, past the first, [`BYTES_PER_INSERT`] bytes of values.
fn rows_in_statement<'a>(
    schema: &Schema,
    rows: impl Iterator<Item = (&'a str, &'a RawRow)>,
) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for (key, row) in rows.take(rows_per_insert(schema)) {
        bytes += key.len()
            + row.values.iter().flatten().map(String::len).sum::<usize>()
            + row
                .extra
                .iter()
                .map(|(k, v)| k.len() + v.len() + 8)
                .sum::<usize>();
        if n > 0 && bytes > BYTES_PER_INSERT {
            break;
        }
        n += 1;
    }
    n.max(1)
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

impl Store {
    /// Opens (creating if needed) the store at `url` and brings its schema up to date, waiting
    /// for other writers up to [`DEFAULT_BUSY_TIMEOUT`].
    pub async fn open(url: &str, options: ImportOptions) -> Result<Store, StoreError> {
        Store::open_with(url, options, DEFAULT_BUSY_TIMEOUT).await
    }

    /// Opens the store at `url`; every operation waits up to `busy_timeout` (at most
    /// [`MAX_BUSY_TIMEOUT`]) for another writer, then fails with [`StoreError::Busy`]. Stores
    /// opened at once on a new database (several processes starting) all start: the schema is
    /// made under the database's write lock (SQLite) or an advisory lock (PostgreSQL), once.
    pub async fn open_with(
        url: &str,
        options: ImportOptions,
        busy_timeout: Duration,
    ) -> Result<Store, StoreError> {
        if busy_timeout.is_zero() || busy_timeout > MAX_BUSY_TIMEOUT {
            return Err(StoreError::Invalid(format!(
                "busy timeout {} s: from 1 ms to {} s",
                busy_timeout.as_secs_f64(),
                MAX_BUSY_TIMEOUT.as_secs()
            )));
        }
        sqlx::any::install_default_drivers();
        let started = Instant::now();
        let (url, dialect) = normalize_url(url)?;
        let pool_of = |size: u32| {
            let wait = busy_timeout.as_millis() as u64;
            AnyPoolOptions::new()
                .max_connections(size)
                .acquire_timeout(busy_timeout.max(Duration::from_secs(30)))
                .after_connect(move |conn, _| {
                    let set = match dialect {
                        Dialect::Sqlite => format!("PRAGMA busy_timeout = {wait}"),
                        Dialect::Postgres => format!("SET lock_timeout = {wait}"),
                    };
                    set_on(conn, set)
                })
        };
        let pool = pool_of(if dialect == Dialect::Sqlite { 4 } else { 16 })
            .connect(&url)
            .await?;
        let writes = match dialect {
            // Connected lazily: a store that only reads never opens it.
            Dialect::Sqlite => pool_of(1).connect_lazy(&url)?,
            Dialect::Postgres => pool.clone(),
        };
        let store = Store {
            pool,
            writes,
            dialect,
            busy_timeout,
            wrote: Default::default(),
            options,
            writer: Default::default(),
            live: Default::default(),
            validation: WriteValidation::default(),
            held: Default::default(),
            bound: Default::default(),
            parts: Default::default(),
            rebasing: Default::default(),
            handed: Default::default(),
            reading_whole: Default::default(),
            made: Default::default(),
            making: Default::default(),
            shortened: Default::default(),
            audits: Default::default(),
        };
        match store.prepare(started).await {
            Ok(()) => Ok(store),
            Err(e) => {
                let _ = store.close().await;
                Err(e)
            }
        }
    }

    /// WAL mode and the migrations, tried again while another process holds a lock they need
    /// (two processes making a new SQLite file: switching to WAL needs a lock SQLite does not
    /// wait for) until the busy timeout is over.
    async fn prepare(&self, started: Instant) -> Result<(), StoreError> {
        loop {
            let attempt = async {
                if self.dialect == Dialect::Sqlite {
                    sqlx::query("PRAGMA journal_mode=WAL")
                        .execute(&self.pool)
                        .await?;
                }
                migrate::run(&self.pool, self.dialect).await
            };
            match attempt.await {
                Ok(applied) => {
                    if applied {
                        self.mark_written();
                    }
                    return Ok(());
                }
                Err(StoreError::Busy(_)) if started.elapsed() < self.busy_timeout => {
                    tokio::time::sleep(retry_pause()).await
                }
                Err(StoreError::Busy(_)) => return Err(self.busy()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Notes that this store writes (closing it then checkpoints SQLite's WAL).
    pub(crate) fn mark_written(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    /// The busy error of this store, naming its timeout.
    fn busy(&self) -> StoreError {
        StoreError::Busy(busy_message(Some(self.busy_timeout)))
    }

    /// This store, validating its writes as `validation` says.
    pub fn with_write_validation(mut self, validation: WriteValidation) -> Store {
        self.validation = validation;
        self
    }

    /// How the store reads books: its reporting currency, among others.
    pub fn import_options(&self) -> &ImportOptions {
        &self.options
    }

    /// How long this store waits for another writer.
    pub fn busy_timeout(&self) -> Duration {
        self.busy_timeout
    }

    /// Closes the store (every clone of it): a SQLite store that wrote first folds its WAL into
    /// the database file (`PRAGMA wal_checkpoint(TRUNCATE)`, waiting at most 2 s for other
    /// processes' readers and writers, then copying what it can), so the `.db` file alone
    /// holds everything committed; the last connection to close removes the WAL. Call it on
    /// every way out of a program that opened a store.
    pub async fn close(&self) -> Result<(), StoreError> {
        let audited = self.flush_audit().await;
        let flushed = self.commit_open_batch().await.and(audited);
        self.writes.close().await;
        let mut result = Ok(());
        if self.dialect == Dialect::Sqlite && self.wrote.load(Ordering::Relaxed) {
            result = async {
                let mut conn = self.pool.acquire().await?;
                let wait = self.busy_timeout.min(Duration::from_secs(2)).as_millis();
                sqlx::query(&format!("PRAGMA busy_timeout = {wait}"))
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_optional(&mut *conn)
                    .await?;
                Ok(())
            }
            .await;
        }
        self.pool.close().await;
        flushed.and(result)
    }

    /// Loads the book in `source` into the store: validated first (a bad book changes nothing,
    /// and every problem is listed), then one transaction, then validated again as merged.
    /// Importing the same rows again changes nothing and records no event.
    pub async fn import(
        &self,
        source: &dyn BookSource,
        mode: ImportMode,
        actor: &Actor,
    ) -> Result<WriteOutcome, StoreError> {
        self.import_with(source, mode, actor, None, |_, _| None)
            .await
    }

    /// [`Store::import`] under an idempotency key, in the same transaction: a second import
    /// under the key does nothing and answers like the first; `response` makes the answer kept
    /// with the key, from the event (`None` when nothing changed) and what changed per file.
    pub async fn import_with(
        &self,
        source: &dyn BookSource,
        mode: ImportMode,
        actor: &Actor,
        idempotency: Option<&Idempotency>,
        response: impl FnOnce(Option<i64>, &[FileChanges]) -> Option<String>,
    ) -> Result<WriteOutcome, StoreError> {
        if let Some(p) = source.unavailable() {
            return Err(StoreError::Book(BookErrors(vec![p], 0)));
        }
        read_book_from(source, &self.options, &NoProgress).map_err(StoreError::Book)?;
        let mut files = Vec::new();
        for schema in FILES {
            if let Some(rows) =
                read_rows_in(source, &schema, self.options.encoding).map_err(StoreError::Book)?
            {
                files.push((schema, rows));
            }
        }
        let (mut tx, _writer) = self.begin_write().await?;
        if let Some(idempotency) = idempotency {
            if let Some((event, answer)) = idempotency::seen(&mut tx, idempotency).await? {
                tx.rollback().await?;
                return Ok(WriteOutcome::replayed(event, answer));
            }
        }
        let merged = async {
            let event = self.insert_event(&mut tx, "import", actor).await?;
            let mut report = Vec::new();
            for (schema, rows) in &files {
                let current = self.current_rows(&mut tx, schema).await?;
                report.push(
                    self.merge_file(&mut tx, schema, rows, &current, mode, event)
                        .await?,
                );
            }
            let changes = report.clone();
            self.finish(
                &mut tx,
                event,
                report,
                Written::default(),
                idempotency,
                |event| response(event, &changes),
            )
            .await
        }
        .await;
        match merged {
            Ok(finished) if finished.keep => {
                if let Some(live) = finished.live {
                    self.kept().committing = Some(live);
                }
                self.commit_keeping(tx).await?;
                Ok(finished.answer)
            }
            Ok(finished) => {
                tx.rollback().await?;
                Ok(finished.answer)
            }
            Err(e) => {
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    /// Applies row changes as one event (`kind`, e.g. `line` or `amend`). With an idempotency
    /// key, a second write under the same key does nothing and answers like the first;
    /// `response` makes the answer stored with the key.
    pub async fn write(
        &self,
        kind: &str,
        changes: &[RowChange],
        actor: &Actor,
        idempotency: Option<&Idempotency>,
        response: impl FnOnce(Option<i64>) -> Option<String>,
    ) -> Result<WriteOutcome, StoreError> {
        let request = WriteRequest {
            kind,
            changes,
            actor,
            idempotency,
            priced: None,
        };
        self.write_priced(&request, response).await
    }

    /// [`Store::write`], or that of a priced quote (`request.priced`): refused when a line of
    /// its contract was written after the book it was priced on; recording with it, in its
    /// transaction, the signature of the portal amendment it applies and the invoice that bills
    /// it.
    async fn write_priced(
        &self,
        request: &WriteRequest<'_>,
        response: impl FnOnce(Option<i64>) -> Option<String>,
    ) -> Result<WriteOutcome, StoreError> {
        // Values no store can keep are refused before either database sees them, the same way
        // on both (PostgreSQL would fail on a NUL, a year 0000, a date that is not one).
        let refused = refused_values(request.changes);
        if !refused.is_empty() {
            return Err(StoreError::Book(BookErrors::from(refused)));
        }
        let mut member = self.join_batch().await?;
        let result = self.write_in(member.tx(), request, response).await;
        member.end(result).await
    }

    /// The changes of [`Store::write_priced`] in `tx`, validated, the event's detail and the
    /// answer kept with the key: how it ended, to be committed with the batch.
    async fn write_in(
        &self,
        tx: &mut Tx,
        request: &WriteRequest<'_>,
        response: impl FnOnce(Option<i64>) -> Option<String>,
    ) -> Result<batch::Finished<WriteOutcome>, StoreError> {
        let WriteRequest {
            kind,
            changes,
            actor,
            idempotency,
            priced,
        } = *request;
        if let Some(idempotency) = idempotency {
            if let Some((event, answer)) = idempotency::seen(tx, idempotency).await? {
                return Ok(batch::Finished {
                    answer: WriteOutcome::replayed(event, answer),
                    keep: false,
                    piece: None,
                    live: None,
                });
            }
        }
        let event = self.insert_event(tx, kind, actor).await?;
        let mut report: Vec<FileChanges> = Vec::new();
        // Rows this write only adds: the book after it is the live files plus these.
        let mut appended: Option<Vec<_>> = Some(Vec::new());
        let mut changed = Vec::new();
        for (seq, change) in changes.iter().enumerate() {
            let (schema, outcome, added, before) =
                self.apply_change(tx, change, event, seq as i64).await?;
            if !matches!(outcome, Outcome::Unchanged) {
                let after = match change {
                    RowChange::Remove { .. } => None,
                    _ => Some(added.as_ref().map_or_else(Vec::new, |r| r.values.clone())),
                };
                changed.push(changed::Changed {
                    schema,
                    before,
                    after,
                });
            }
            match (&outcome, added, appended.as_mut()) {
                (Outcome::Added, Some(row), Some(rows)) => rows.push((schema, row)),
                (Outcome::Unchanged, _, _) => {}
                _ => appended = None,
            }
            let entry = match report.iter_mut().position(|f| f.file == schema.file) {
                Some(k) => &mut report[k],
                None => {
                    report.push(FileChanges {
                        file: schema.file,
                        ..Default::default()
                    });
                    report.last_mut().expect("pushed")
                }
            };
            match outcome {
                Outcome::Added => entry.added += 1,
                Outcome::Changed => entry.changed += 1,
                Outcome::Removed => entry.removed += 1,
                Outcome::Unchanged => entry.unchanged += 1,
            }
        }
        if let Some(priced) = priced {
            priced.check(tx, event).await?;
            if let Some(signing) = priced.signing {
                signing.record(tx, event).await?;
            }
        }
        let written = Written {
            appended,
            changed: Some(changed),
        };
        self.finish(tx, event, report, written, idempotency, response)
            .await
    }

    /// Records a quote: its line changes as one event (`amend` or `renew`) under
    /// `idempotency`. The answer kept with the key (and given again on any replay) is the
    /// quote's JSON with `"applied": {"event": N}`.
    ///
    /// `priced_at` is the event of the book the quote was priced on: a line of its contract
    /// written after it (another quote applied meanwhile) refuses the write, 409 Conflict, and
    /// nothing is applied on a stale price.
    pub async fn apply_quote(
        &self,
        quote: &expansa_contracts::Quote,
        priced_at: i64,
        actor: &Actor,
        idempotency: &Idempotency,
    ) -> Result<WriteOutcome, StoreError> {
        self.apply_quote_signed(quote, priced_at, actor, idempotency, None)
            .await
    }

    /// [`Store::apply_quote`], with the signature and invoice of a portal amendment recorded
    /// in the same transaction (one event: applied, signed and invoiced, or none of it).
    pub async fn apply_quote_signed(
        &self,
        quote: &expansa_contracts::Quote,
        priced_at: i64,
        actor: &Actor,
        idempotency: &Idempotency,
        signing: Option<&Signing<'_>>,
    ) -> Result<WriteOutcome, StoreError> {
        let json = expansa_contracts::render_quote(quote, expansa_ledger::Format::Json);
        let changes = quote_changes(quote);
        let priced = Priced {
            contract: &quote.contract,
            at: priced_at,
            signing,
        };
        let request = WriteRequest {
            kind: quote.kind.name(),
            changes: &changes,
            actor,
            idempotency: Some(idempotency),
            priced: Some(&priced),
        };
        self.write_priced(&request, |event| {
            let mut answer: serde_json::Value = serde_json::from_str(&json).ok()?;
            answer["applied"] = serde_json::json!({ "event": event });
            Some(answer.to_string())
        })
        .await
    }

    /// The event and answer of an earlier write of the same request under the key, if there
    /// was one (an error if the key was used for another request).
    pub async fn replay(
        &self,
        idempotency: &Idempotency,
    ) -> Result<Option<(Option<i64>, String)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        idempotency::seen(&mut conn, idempotency).await
    }

    /// The book as of a moment.
    pub async fn book(&self, as_of: AsOf) -> Result<Book, StoreError> {
        let (_, text) = self.files_with_event(as_of).await?;
        book_from_files(&text.files, &self.options)
    }

    /// The last event visible at `as_of` (0 when the store has none yet).
    pub async fn event_at(&self, as_of: AsOf) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.resolve(&mut conn, as_of).await
    }

    /// The rows of one file as of event `event`, in file order: values and extra columns.
    pub async fn table(&self, schema: &Schema, event: i64) -> Result<Vec<TableRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        self.table_at(&mut conn, schema, event).await
    }

    async fn table_at(
        &self,
        conn: &mut sqlx::AnyConnection,
        schema: &Schema,
        event: i64,
    ) -> Result<Vec<TableRow>, StoreError> {
        Ok(table_rows(self.rows_at(conn, schema, event).await?))
    }

    /// [`Store::table_at`]'s rows with their keys and order.
    async fn rows_at(
        &self,
        conn: &mut sqlx::AnyConnection,
        schema: &Schema,
        event: i64,
    ) -> Result<Vec<(String, Stored)>, StoreError> {
        self.rows_where(
            conn,
            schema,
            "added_in <= $1 AND (removed_in IS NULL OR removed_in > $1)",
            Bind::Event(event),
        )
        .await
    }

    /// The rows of a table meeting `condition` (whose `$1`, if any, is `bind`), in file order.
    /// The database packs them into one JSON array: decoding rows one by one through the
    /// driver costs far more than the query.
    async fn rows_where(
        &self,
        conn: &mut sqlx::AnyConnection,
        schema: &Schema,
        condition: &str,
        bind: Bind<'_>,
    ) -> Result<Vec<(String, Stored)>, StoreError> {
        let sql = self.rows_sql(schema, condition);
        let query = sqlx::query(&sql);
        let query = match bind {
            Bind::Nothing => query,
            Bind::Event(e) => query.bind(e),
            Bind::Key(k) => query.bind(k),
        };
        let text: String = query.fetch_one(&mut *conn).await?.try_get(0)?;
        parse_rows(schema, &text)
    }

    /// The query of [`Store::rows_where`]: the rows of a table meeting `condition` as one
    /// JSON array, in file order.
    fn rows_sql(&self, schema: &Schema, condition: &str) -> String {
        let mut fields = String::from("row_key, ord, extra");
        for c in schema.columns {
            fields.push_str(&format!(", CAST(\"{c}\" AS TEXT)"));
        }
        let table = table_name(schema);
        match self.dialect {
            Dialect::Sqlite => format!(
                "SELECT json_group_array(json_array({fields}) ORDER BY ord, row_key) FROM \"{table}\" WHERE {condition}"
            ),
            Dialect::Postgres => format!(
                "SELECT CAST(COALESCE(json_agg(json_build_array({fields}) ORDER BY ord, row_key), CAST('[]' AS json)) AS TEXT) FROM \"{table}\" WHERE {condition}"
            ),
        }
    }

    /// The files of the book as of a moment, in the interchange format (absent files omitted).
    /// The latest event's files are kept in memory after they are read (or written by this
    /// process), until another process writes.
    pub async fn files(&self, as_of: AsOf) -> Result<Vec<(&'static str, Vec<u8>)>, StoreError> {
        self.files_with_event(as_of)
            .await
            .map(|(_, text)| text.files.clone())
    }

    /// The latest book and the event it is at: kept in memory, else made from the book in
    /// parts ([`merge`]), else read whole.
    pub async fn latest_book(&self) -> Result<(i64, std::sync::Arc<Book>), StoreError> {
        self.latest_with_text()
            .await
            .map(|(event, book, _)| (event, book))
    }

    /// [`Store::latest_book`] with the files it was read from.
    pub(crate) async fn latest_with_text(&self) -> Result<LatestText, StoreError> {
        let found = match self.kept_latest().await? {
            Some(found) => found,
            None => {
                // One at a time: the second reader finds the first's book.
                let making = self.making.lock().await;
                if let Some(found) = self.kept_latest().await? {
                    return Ok(found);
                }
                if let Some(found) = self.merged_latest().await? {
                    return Ok(found);
                }
                drop(making);
                self.whole_latest().await?
            }
        };
        // The base of the book in parts, if there is none yet: the next read after a write
        // makes the latest book from it.
        if let Ok(mut parts) = self.parts.try_lock() {
            if parts.is_none() {
                *parts = Some(parts::Model::new(found.clone()));
            }
        }
        Ok(found)
    }

    /// How the latest book was had since the store was opened, each time it was not kept in
    /// memory: made from the book in parts ([`merge`]); read whole (files read from the
    /// database, or kept); and how many of the whole reads came after the book in parts could
    /// not be merged exactly (a file with extra columns, or a base made by appending rows: the
    /// others follow a write to a shared file, or come before the book is kept in parts).
    pub fn latest_books_made(&self) -> (u64, u64, u64) {
        (
            self.made.merged.load(Ordering::Relaxed),
            self.made.whole.load(Ordering::Relaxed),
            self.made.not_merged.load(Ordering::Relaxed),
        )
    }

    /// The latest book if this process keeps it.
    async fn kept_latest(&self) -> Result<Option<LatestText>, StoreError> {
        let latest = self.event_at(AsOf::Latest).await?;
        let kept = self.kept();
        Ok(kept
            .at(latest, true)
            .and_then(|l| Some((l.event, l.book.clone()?, l.text.clone()))))
    }

    /// The latest book read whole from the database (unless kept).
    pub(crate) async fn whole_latest(&self) -> Result<LatestText, StoreError> {
        // One whole read at a time (reports, and the base of the book in parts): the second
        // reader finds the first's book.
        let _reading = self.reading_whole.lock().await;
        if let Some(found) = self.kept_latest().await? {
            return Ok(found);
        }
        let (event, text) = self.files_with_event(AsOf::Latest).await?;
        let book = std::sync::Arc::new(book_from_files(&text.files, &self.options)?);
        self.made.whole.fetch_add(1, Ordering::Relaxed);
        self.keep_book(event, &text, &book);
        Ok((event, book, text))
    }

    /// Keeps `book`, read from `text`, as the latest book at `event`, unless a newer one is
    /// kept.
    fn keep_book(
        &self,
        event: i64,
        text: &std::sync::Arc<merge::BookText>,
        book: &std::sync::Arc<Book>,
    ) {
        let mut kept = self.kept();
        match kept.committed.as_mut() {
            Some(l) if l.event > event => {}
            Some(l) if l.event == event => l.book = Some(book.clone()),
            _ => {
                kept.committed = Some(Live {
                    event,
                    text: text.clone(),
                    book: Some(book.clone()),
                })
            }
        }
    }

    /// The files as of a moment and the event they are at. For the latest, the files kept in
    /// memory serve when no other process has written since (they may be newer than the
    /// event first resolved, if this process wrote meanwhile: they are committed too).
    async fn files_with_event(
        &self,
        as_of: AsOf,
    ) -> Result<(i64, std::sync::Arc<merge::BookText>), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let event = self.resolve(&mut conn, as_of).await?;
        if let Some(live) = self.kept().at(event, as_of == AsOf::Latest) {
            return Ok((live.event, live.text.clone()));
        }
        let text = std::sync::Arc::new(self.files_at(&mut conn, event).await?);
        let latest = match as_of {
            AsOf::Latest => event,
            _ => self.resolve(&mut conn, AsOf::Latest).await?,
        };
        if event == latest && event > 0 {
            let mut kept = self.kept();
            if kept.committed.as_ref().is_none_or(|l| l.event < event) {
                kept.committed = Some(Live {
                    event,
                    text: text.clone(),
                    book: None,
                });
            }
        }
        Ok((event, text))
    }

    /// Writes the book as of a moment into `dir` as files of `format` (CSV, or Parquet: see
    /// [`write_book`] for what is done with a folder that already holds a book).
    pub async fn export(
        &self,
        dir: &Path,
        as_of: AsOf,
        existing: ExistingBook,
        format: BookFormat,
    ) -> Result<Vec<String>, StoreError> {
        export::refuse_held(dir, existing)?;
        let files = self.files(as_of).await?;
        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let source = InMemory(&files);
        write_book(
            dir,
            &source,
            TextEncoding::UTF_8,
            existing,
            format,
            &NoProgress,
            &|| Ok(()),
        )
    }

    /// The file a SQLite `url` keeps its store in; `None` for PostgreSQL and `:memory:`.
    pub fn sqlite_file(url: &str) -> Result<Option<PathBuf>, StoreError> {
        let (normalized, dialect) = normalize_url(url)?;
        if dialect == Dialect::Postgres {
            return Ok(None);
        }
        let path = normalized
            .strip_prefix("sqlite:")
            .and_then(|p| p.split('?').next())
            .unwrap_or_default();
        Ok((!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path)))
    }

    /// Where `url` keeps a SQLite store that [`Store::backup`] can copy: the file, which must
    /// exist. A PostgreSQL store is refused with how to back it up (`pg_dump`).
    pub fn backup_source(url: &str) -> Result<PathBuf, StoreError> {
        if normalize_url(url)?.1 == Dialect::Postgres {
            return Err(StoreError::Invalid(PG_DUMP_ADVICE.into()));
        }
        let Some(path) = Store::sqlite_file(url)? else {
            return Err(StoreError::Invalid(format!(
                "{url:?} is not a store in a file: nothing to back up"
            )));
        };
        if !path.is_file() {
            return Err(StoreError::NotFound(format!(
                "no store at {}: nothing to back up",
                path.display()
            )));
        }
        Ok(path)
    }

    /// Copies this SQLite store, as committed now, into a new file `out` with SQLite's
    /// `VACUUM INTO` (a consistent snapshot, taken while others read and write; compacted).
    /// An existing `out` is refused and left as it was. The copy is written beside `out`
    /// under a temporary name, flushed to disk, then linked to `out`. The copy is a store:
    /// open it with `sqlite:OUT`.
    pub async fn backup(&self, out: &Path) -> Result<Backup, StoreError> {
        if self.dialect == Dialect::Postgres {
            return Err(StoreError::Invalid(PG_DUMP_ADVICE.into()));
        }
        let io = |path: &Path, error| StoreError::Io {
            path: path.display().to_string(),
            error,
        };
        let exists = || {
            StoreError::Conflict(format!(
                "{} already exists: a backup is written to a new file (nothing was written)",
                out.display()
            ))
        };
        if out.symlink_metadata().is_ok() {
            return Err(exists());
        }
        let name = out
            .file_name()
            .ok_or_else(|| StoreError::Invalid(format!("{}: not a file name", out.display())))?;
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let partial = dir.join(format!(
            ".{}.partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let partial_text = partial.to_str().ok_or_else(|| {
            StoreError::Invalid(format!("{}: the path is not UTF-8", out.display()))
        })?;
        let _ = std::fs::remove_file(&partial);
        let made = async {
            sqlx::query("VACUUM INTO $1")
                .bind(partial_text)
                .execute(&self.pool)
                .await?;
            std::fs::File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(|e| io(&partial, e))?;
            let event = last_event_in(partial_text).await?;
            let bytes = std::fs::metadata(&partial)
                .map_err(|e| io(&partial, e))?
                .len();
            // Linked, not renamed: a link never replaces a file that appeared meanwhile.
            match std::fs::hard_link(&partial, out) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists()),
                Err(_) if out.symlink_metadata().is_ok() => return Err(exists()),
                // A file system without hard links.
                Err(_) => std::fs::rename(&partial, out).map_err(|e| io(out, e))?,
            }
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(Backup { event, bytes })
        }
        .await;
        let _ = std::fs::remove_file(&partial);
        made
    }

    /// The event log, oldest first.
    pub async fn events(&self) -> Result<Vec<Event>, StoreError> {
        let rows =
            sqlx::query("SELECT id, at, actor, reason, kind, detail FROM events ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(Event {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    reason: r.try_get(3)?,
                    kind: r.try_get(4)?,
                    detail: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// The current rows of `schema` whose `column` (one of the schema's text columns, such as
    /// a line's `contract_id`) holds exactly `value`, in file order: one query, whatever the
    /// size of the book. Errors: a column the schema does not have.
    pub async fn rows_with(
        &self,
        schema: &Schema,
        column: &str,
        value: &str,
    ) -> Result<Vec<TableRow>, StoreError> {
        let Some(column) = schema.columns.iter().find(|c| **c == column) else {
            return Err(StoreError::Invalid(format!(
                "{}: no column {column:?}",
                schema.file
            )));
        };
        if value.contains('\0') {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await?;
        let condition = format!("removed_in IS NULL AND \"{column}\" = $1");
        let rows = self
            .rows_where(&mut conn, schema, &condition, Bind::Key(value))
            .await?;
        Ok(table_rows(rows))
    }

    /// The current row of `schema` with `key`, if there is one.
    pub async fn row(&self, schema: &Schema, key: &str) -> Result<Option<TableRow>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(self
            .current_row(&mut conn, schema, key)
            .await?
            .map(|s| TableRow {
                extra: parse_extra(s.extra.as_deref()),
                values: s.values,
            }))
    }

    /// The pool, for the tables beside the book (API keys, dashboards).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    async fn insert_event(
        &self,
        tx: &mut Tx,
        kind: &str,
        actor: &Actor,
    ) -> Result<i64, StoreError> {
        // In SQLite, this first write takes the database's write lock.
        let row = sqlx::query(
            "INSERT INTO events (at, actor, reason, kind) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(now_text())
        .bind(actor.who.as_str())
        .bind(actor.why.as_str())
        .bind(kind)
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Validates the merged book in `tx`: the write's answer, whether to keep it (`false` when
    /// nothing changed), and the book after it when it was validated whole. On an error the
    /// caller rolls the write back.
    async fn finish(
        &self,
        tx: &mut Tx,
        event: i64,
        report: Vec<FileChanges>,
        written: Written,
        idempotency: Option<&Idempotency>,
        response: impl FnOnce(Option<i64>) -> Option<String>,
    ) -> Result<batch::Finished<WriteOutcome>, StoreError> {
        let changed = report.iter().any(|f| f.added + f.changed + f.removed > 0);
        if !changed {
            let response = match idempotency {
                None => None,
                // No event, but the request was answered: its key keeps that answer.
                Some(idempotency) => {
                    sqlx::query("DELETE FROM events WHERE id = $1")
                        .bind(event)
                        .execute(&mut **tx)
                        .await?;
                    let response = response(None);
                    idempotency::remember(tx, idempotency, None, response.as_deref()).await?;
                    response
                }
            };
            return Ok(batch::Finished {
                keep: idempotency.is_some(),
                piece: None,
                answer: WriteOutcome {
                    event: None,
                    files: report,
                    replayed: false,
                    response,
                },
                live: None,
            });
        }
        let verdict = match (self.validation, &written.changed) {
            (WriteValidation::Changed, Some(changed)) => {
                self.check_changed(tx, event, changed).await?
            }
            _ => None,
        };
        let mut piece = None;
        let whole = match verdict {
            Some(Ok(part)) => {
                piece = Some(part);
                None
            }
            Some(Err(problems)) => Some(Err(StoreError::Book(problems))),
            None => {
                // The event before this one: no other write can commit meanwhile (the lock).
                let previous: i64 =
                    sqlx::query("SELECT COALESCE(MAX(id), 0) FROM events WHERE id < $1")
                        .bind(event)
                        .fetch_one(&mut **tx)
                        .await?
                        .try_get(0)?;
                let fast = written
                    .appended
                    .and_then(|rows| self.kept().at(previous, false)?.with_appended(&rows));
                let text = match fast {
                    Some(files) => merge::BookText {
                        files,
                        ..Default::default()
                    },
                    None => self.files_at(tx, event).await?,
                };
                Some(book_from_files(&text.files, &self.options).map(|book| (text, book)))
            }
        };
        let whole = match whole {
            None => None,
            Some(Ok((files, book))) => {
                let total = book.lines.items.iter().map(|l| l.mrr().scaled()).sum();
                self.set_mrr_bound(tx, total).await?;
                Some((files, book))
            }
            Some(Err(e)) => {
                return Err(match e {
                    StoreError::Book(BookErrors(problems, more)) => StoreError::Book(BookErrors(
                        problems
                            .into_iter()
                            .map(|mut p| {
                                p.reason = format!(
                                    "{} (in the book as it would be after this change)",
                                    p.reason
                                );
                                p
                            })
                            .collect(),
                        more,
                    )),
                    other => other,
                });
            }
        };
        let detail = detail_json(&report);
        sqlx::query("UPDATE events SET detail = $1 WHERE id = $2")
            .bind(detail)
            .bind(event)
            .execute(&mut **tx)
            .await?;
        let response = response(Some(event));
        if let Some(idempotency) = idempotency {
            idempotency::remember(tx, idempotency, Some(event), response.as_deref()).await?;
        }
        Ok(batch::Finished {
            answer: WriteOutcome {
                event: Some(event),
                files: report,
                replayed: false,
                response,
            },
            keep: true,
            piece,
            // The validated files are the book at this event, whichever way they were made.
            live: whole.map(|(text, book)| Live {
                event,
                text: std::sync::Arc::new(text),
                book: Some(std::sync::Arc::new(book)),
            }),
        })
    }

    /// The files kept in memory.
    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last event visible at `as_of` (0 before any).
    async fn resolve(
        &self,
        conn: &mut sqlx::AnyConnection,
        as_of: AsOf,
    ) -> Result<i64, StoreError> {
        let row = match as_of {
            AsOf::Latest => {
                sqlx::query("SELECT COALESCE(MAX(id), 0) FROM events")
                    .fetch_one(&mut *conn)
                    .await?
            }
            AsOf::Event(id) => {
                let row = sqlx::query("SELECT COUNT(*) FROM events WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *conn)
                    .await?;
                let n: i64 = row.try_get(0)?;
                if n == 0 {
                    return Err(StoreError::NotFound(format!("no event {id} in the store")));
                }
                return Ok(id);
            }
            AsOf::Time(t) => {
                sqlx::query("SELECT COALESCE(MAX(id), 0) FROM events WHERE at <= $1")
                    .bind(time_text(t))
                    .fetch_one(&mut *conn)
                    .await?
            }
        };
        Ok(row.try_get(0)?)
    }

    async fn current_rows(
        &self,
        tx: &mut Tx,
        schema: &Schema,
    ) -> Result<HashMap<String, Stored>, StoreError> {
        let rows = self
            .rows_where(tx, schema, "removed_in IS NULL", Bind::Nothing)
            .await?;
        Ok(rows.into_iter().collect())
    }

    async fn current_row(
        &self,
        conn: &mut sqlx::AnyConnection,
        schema: &Schema,
        key: &str,
    ) -> Result<Option<Stored>, StoreError> {
        // No row has such a key (the import refuses them), and PostgreSQL takes no NUL.
        if key.contains('\0') {
            return Ok(None);
        }
        let rows = self
            .rows_where(
                conn,
                schema,
                "removed_in IS NULL AND row_key = $1",
                Bind::Key(key),
            )
            .await?;
        Ok(rows.into_iter().next().map(|(_, s)| s))
    }

    /// Every file as of event `event`, as CSV bytes.
    async fn files_at(
        &self,
        conn: &mut sqlx::AnyConnection,
        event: i64,
    ) -> Result<merge::BookText, StoreError> {
        // An emptied file is still written, header only (a book whose customers were all
        // removed keeps its customers.csv): one that ever held rows.
        let held = self
            .files_held(conn, &FILES.iter().collect::<Vec<_>>(), event)
            .await?;
        let mut files = Vec::new();
        let mut ords = HashMap::new();
        let mut extras = HashMap::new();
        for schema in FILES {
            let rows = self.rows_at(conn, &schema, event).await?;
            if rows.is_empty() && held & changed::file_bit(&schema) == 0 {
                continue;
            }
            let ord: Vec<i64> = rows.iter().map(|(_, s)| s.ord).collect();
            let rows = table_rows(rows);
            let row_extras =
                merge::row_extras(ord.iter().zip(&rows).map(|(o, r)| (*o, r.extra.as_slice())));
            if !row_extras.is_empty() {
                extras.insert(schema.file, row_extras);
            }
            ords.insert(schema.file, ord);
            let extra_columns = extra_columns(rows.iter().map(|r| r.extra.as_slice()));
            let bytes = write_rows(
                &schema,
                &extra_columns,
                rows.iter()
                    .map(|r| (r.values.as_slice(), r.extra.as_slice())),
            );
            files.push((schema.file, bytes));
        }
        Ok(merge::BookText {
            files,
            ords: Some(ords),
            extras,
        })
    }

    /// Which of `schemas`' tables had rows at some point up to event `upto`, one bit per file
    /// ([`changed::file_bit`]), asked in one statement (none for no schema).
    pub(crate) async fn files_held(
        &self,
        conn: &mut sqlx::AnyConnection,
        schemas: &[&Schema],
        upto: i64,
    ) -> Result<u32, StoreError> {
        if schemas.is_empty() {
            return Ok(0);
        }
        let columns: Vec<String> = schemas
            .iter()
            .map(|schema| {
                format!(
                    "(SELECT COUNT(*) FROM (SELECT 1 FROM \"{}\" WHERE added_in <= $1 LIMIT 1) AS any_row)",
                    table_name(schema)
                )
            })
            .collect();
        let row = sqlx::query(&format!("SELECT {}", columns.join(", ")))
            .bind(upto)
            .fetch_one(&mut *conn)
            .await?;
        let mut held = 0;
        for (i, schema) in schemas.iter().enumerate() {
            if row.try_get::<i64, _>(i)? > 0 {
                held |= changed::file_bit(schema);
            }
        }
        Ok(held)
    }

    /// Merges one imported file into its table.
    async fn merge_file(
        &self,
        tx: &mut Tx,
        schema: &Schema,
        rows: &[RawRow],
        current: &HashMap<String, Stored>,
        mode: ImportMode,
        event: i64,
    ) -> Result<FileChanges, StoreError> {
        let mut report = FileChanges {
            file: schema.file,
            ..Default::default()
        };
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut mentioned: HashSet<String> = HashSet::new();
        let mut close: Vec<String> = Vec::new();
        let mut insert: Vec<(String, i64, &RawRow)> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let base = row_key(schema, &row.values);
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            // A key repeated inside one file (two rates of one month) stays distinct.
            let key = if *n == 1 {
                base
            } else {
                format!("{base}\u{1e}{n}")
            };
            mentioned.insert(key.clone());
            let extra = extra_json(&row.extra);
            match current.get(&key) {
                Some(s)
                    if same_values(schema, &s.values, &row.values)
                        && same_extra(&s.extra, &extra) =>
                {
                    report.unchanged += 1
                }
                Some(_) => {
                    report.changed += 1;
                    close.push(key.clone());
                    insert.push((key, ord(event, i as i64), row));
                }
                None => {
                    report.added += 1;
                    insert.push((key, ord(event, i as i64), row));
                }
            }
        }
        if mode == ImportMode::Replace {
            for k in current.keys() {
                if !mentioned.contains(k) {
                    report.removed += 1;
                    close.push(k.clone());
                }
            }
        }
        self.close_rows(tx, schema, &close, event).await?;
        let mut rest = insert.as_slice();
        while !rest.is_empty() {
            let n = rows_in_statement(schema, rest.iter().map(|(k, _, r)| (k.as_str(), *r)));
            let (chunk, after) = rest.split_at(n);
            let items: Vec<NewVersion> = chunk
                .iter()
                .map(|(k, ord, r)| (k.as_str(), *ord, r.values.as_slice(), extra_json(&r.extra)))
                .collect();
            self.insert_rows(tx, schema, &items, event).await?;
            rest = after;
        }
        Ok(report)
    }

    async fn close_rows(
        &self,
        tx: &mut Tx,
        schema: &Schema,
        keys: &[String],
        event: i64,
    ) -> Result<(), StoreError> {
        for chunk in keys.chunks(500) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| self.placeholder(i + 2)).collect();
            let sql = format!(
                "UPDATE \"{}\" SET removed_in = {} WHERE removed_in IS NULL AND row_key IN ({})",
                table_name(schema),
                self.placeholder(1),
                placeholders.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(event);
            for k in chunk {
                q = q.bind(k.as_str());
            }
            q.execute(&mut **tx).await?;
        }
        Ok(())
    }

    async fn insert_rows(
        &self,
        tx: &mut Tx,
        schema: &Schema,
        rows: &[NewVersion<'_>],
        event: i64,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut sql = format!(
            "INSERT INTO \"{}\" (row_key, ord, added_in, extra",
            table_name(schema)
        );
        for c in schema.columns {
            sql.push_str(&format!(", \"{c}\""));
        }
        sql.push_str(") VALUES ");
        let width = 4 + schema.columns.len();
        for r in 0..rows.len() {
            if r > 0 {
                sql.push_str(", ");
            }
            let base = r * width;
            sql.push('(');
            for k in 1..=4 {
                if k > 1 {
                    sql.push_str(", ");
                }
                sql.push_str(&self.placeholder(base + k));
            }
            for (k, kind) in schema.kinds.iter().enumerate() {
                sql.push_str(", ");
                sql.push_str(&self.param(base + 5 + k, *kind));
            }
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for (key, ord, values, extra) in rows {
            q = q.bind(*key).bind(*ord).bind(event).bind(extra.clone());
            for v in values.iter() {
                q = q.bind(v.clone());
            }
        }
        q.execute(&mut **tx).await?;
        Ok(())
    }

    /// A bound parameter, cast to the column's type where the database has one.
    fn param(&self, n: usize, kind: ColumnKind) -> String {
        match (self.dialect, kind) {
            (Dialect::Postgres, ColumnKind::Decimal) => format!("CAST(${n} AS NUMERIC)"),
            (Dialect::Postgres, ColumnKind::Date) => format!("CAST(${n} AS DATE)"),
            (Dialect::Postgres, ColumnKind::Integer) => format!("CAST(${n} AS BIGINT)"),
            _ => self.placeholder(n),
        }
    }

    /// The `n`-th bound parameter, in a statement whose parameters are numbered in order.
    /// SQLite gets a plain `?`: its numbered and named parameters are looked up by name with a
    /// linear scan for every value bound, which makes a statement of thousands quadratic.
    fn placeholder(&self, n: usize) -> String {
        match self.dialect {
            Dialect::Sqlite => "?".to_string(),
            Dialect::Postgres => format!("${n}"),
        }
    }

    async fn apply_change(
        &self,
        tx: &mut Tx,
        change: &RowChange,
        event: i64,
        seq: i64,
    ) -> Result<Applied, StoreError> {
        match change {
            RowChange::Put {
                schema,
                values,
                extra,
                create_only,
            } => {
                if values.len() != schema.columns.len() {
                    return Err(StoreError::Invalid(format!(
                        "{}: expected {} values",
                        schema.file,
                        schema.columns.len()
                    )));
                }
                let values = canonical_row(schema, values);
                let key = row_key(schema, &values);
                let extra_text = extra_json(extra);
                let current = self.current_row(tx, schema, &key).await?;
                let outcome = match &current {
                    Some(s)
                        if same_values(schema, &s.values, &values)
                            && same_extra(&s.extra, &extra_text) =>
                    {
                        return Ok((*schema, Outcome::Unchanged, None, None))
                    }
                    Some(_) if *create_only => {
                        return Err(StoreError::Conflict(format!(
                            "{}: a different row with id {:?} already exists",
                            schema.file,
                            key.replace(KEY_SEPARATOR, "/")
                        )))
                    }
                    Some(_) => Outcome::Changed,
                    None => Outcome::Added,
                };
                if current.is_some() {
                    self.close_rows(tx, schema, std::slice::from_ref(&key), event)
                        .await?;
                }
                let ord = current.as_ref().map_or(ord(event, seq), |s| s.ord);
                self.insert_rows(
                    tx,
                    schema,
                    &[(key.as_str(), ord, values.as_slice(), extra_text)],
                    event,
                )
                .await?;
                let added = TableRow {
                    values,
                    extra: extra.clone(),
                };
                Ok((*schema, outcome, Some(added), current.map(|s| s.values)))
            }
            RowChange::Set {
                schema,
                key,
                column,
                value,
            } => {
                let k = schema.position(column).ok_or_else(|| {
                    StoreError::Invalid(format!("{}: no column {column}", schema.file))
                })?;
                let current = self.current_row(tx, schema, key).await?.ok_or_else(|| {
                    StoreError::NotFound(format!("{}: no row {key:?}", schema.file))
                })?;
                if current.values[k] == *value {
                    return Ok((*schema, Outcome::Unchanged, None, None));
                }
                let mut values = current.values.clone();
                values[k] = value.clone();
                let values = canonical_row(schema, &values);
                self.close_rows(tx, schema, std::slice::from_ref(key), event)
                    .await?;
                self.insert_rows(
                    tx,
                    schema,
                    &[(
                        key.as_str(),
                        current.ord,
                        values.as_slice(),
                        current.extra.clone(),
                    )],
                    event,
                )
                .await?;
                let after = TableRow {
                    values,
                    extra: parse_extra(current.extra.as_deref()),
                };
                Ok((*schema, Outcome::Changed, Some(after), Some(current.values)))
            }
            RowChange::Remove { schema, key } => {
                let Some(current) = self.current_row(tx, schema, key).await? else {
                    return Err(StoreError::NotFound(format!(
                        "{}: no row {key:?}",
                        schema.file
                    )));
                };
                self.close_rows(tx, schema, std::slice::from_ref(key), event)
                    .await?;
                Ok((*schema, Outcome::Removed, None, Some(current.values)))
            }
        }
    }
}

/// The value bound to a row query's `$1`.
#[derive(Clone, Copy)]
enum Bind<'a> {
    Nothing,
    Event(i64),
    Key(&'a str),
}

/// What one row change did: its table, its outcome, the row it wrote (values after a `Put` or
/// a `Set`) and the values it replaced or removed.
type Applied = (
    Schema,
    Outcome,
    Option<TableRow>,
    Option<Vec<Option<String>>>,
);

/// A row write ([`Store::write`]) or an applied quote: its event's kind, its changes, who
/// makes it, its idempotency key, and for a quote the book it was priced on.
#[derive(Clone, Copy)]
struct WriteRequest<'a> {
    kind: &'a str,
    changes: &'a [RowChange],
    actor: &'a Actor,
    idempotency: Option<&'a Idempotency>,
    priced: Option<&'a Priced<'a>>,
}

/// What a write wrote, for its validation: the rows it only added (when it only added), and
/// each row it changed (`None` for an import: validated as a whole book).
#[derive(Default)]
struct Written {
    appended: Option<Vec<(Schema, TableRow)>>,
    changed: Option<Vec<changed::Changed>>,
}

/// A row version to insert: key, order, values, extra columns as JSON.
type NewVersion<'a> = (&'a str, i64, &'a [Option<String>], Option<String>);

enum Outcome {
    Added,
    Changed,
    Removed,
    Unchanged,
}

/// The values of `changes` a store cannot keep, each a problem at line 0 of its file (the row
/// is not in a file yet): a value that does not parse as its column's kind, text with a NUL,
/// an id or key value too long or holding U+001E/U+001F (see [`check_value`]).
pub fn refused_values(changes: &[RowChange]) -> Vec<Problem> {
    const WHERE: &str = "in the row written; nothing was changed";
    let mut problems = Vec::new();
    let check = |schema: &Schema, k: usize, value: &str| {
        check_value(schema, k, value).err().map(|reason| {
            Problem::new(
                schema.file,
                0,
                schema.columns[k],
                value,
                &format!("{reason} ({WHERE})"),
            )
        })
    };
    for change in changes {
        match change {
            RowChange::Put {
                schema,
                values,
                extra,
                ..
            } => {
                for (k, value) in values.iter().enumerate().take(schema.columns.len()) {
                    if let Some(value) = value.as_deref().filter(|v| !v.trim().is_empty()) {
                        problems.extend(check(schema, k, value));
                    }
                }
                for (name, value) in extra {
                    if name.contains('\0') || value.contains('\0') {
                        problems.push(Problem::new(
                            schema.file,
                            0,
                            name,
                            value,
                            &format!(
                                "holds a NUL character (U+0000), which no text may hold \
                                 (PostgreSQL cannot store it) ({WHERE})"
                            ),
                        ));
                    }
                }
            }
            RowChange::Set {
                schema,
                column,
                value: Some(value),
                ..
            } => {
                if let Some(k) = schema.position(column) {
                    problems.extend(check(schema, k, value));
                }
            }
            RowChange::Set { value: None, .. } | RowChange::Remove { .. } => {}
        }
    }
    problems
}

/// Rows as [`Store::rows_sql`] returns them (one JSON array), read back.
fn parse_rows(schema: &Schema, text: &str) -> Result<Vec<(String, Stored)>, StoreError> {
    let table = table_name(schema);
    let corrupt = |what: &str| StoreError::Invalid(format!("{table}: unreadable row ({what})"));
    let rows: Vec<Vec<serde_json::Value>> =
        serde_json::from_str(text).map_err(|e| corrupt(&e.to_string()))?;
    let text_of = |v: serde_json::Value| match v {
        serde_json::Value::String(s) => Ok(Some(s)),
        serde_json::Value::Null => Ok(None),
        _ => Err(corrupt("a value is not text")),
    };
    rows.into_iter()
        .map(|row| {
            if row.len() != 3 + schema.columns.len() {
                return Err(corrupt("wrong width"));
            }
            let mut fields = row.into_iter();
            let key = text_of(fields.next().unwrap_or_default())?.unwrap_or_default();
            let ord = fields
                .next()
                .and_then(|v| v.as_i64())
                .ok_or_else(|| corrupt("ord"))?;
            let mut extra = text_of(fields.next().unwrap_or_default())?;
            let mut values = fields.map(text_of).collect::<Result<Vec<_>, _>>()?;
            promote_extra(schema, &mut values, &mut extra);
            Ok((key, Stored { ord, values, extra }))
        })
        .collect()
}

/// A row's values as the store keeps them: decimals and whole numbers in canonical text, the
/// rest trimmed (a value that does not parse is kept as written, for validation to report).
fn canonical_row(schema: &Schema, values: &[Option<String>]) -> Vec<Option<String>> {
    values
        .iter()
        .zip(schema.kinds)
        .map(|(v, kind)| {
            v.as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| expansa_import::canonical(*kind, t).unwrap_or_else(|| t.to_string()))
        })
        .collect()
}

/// Reads a book from its files in memory.
/// What a read of a book finds in a store that holds none at the moment asked (none imported
/// yet, or an `--as-of` before the first event): the same words from the CLI and the API.
pub const NO_BOOK: &str = "the store holds no book at that moment (none imported yet, or none at the moment asked): import one with `expansa import --data DIR`";

fn book_from_files(
    files: &[(&'static str, Vec<u8>)],
    options: &ImportOptions,
) -> Result<Book, StoreError> {
    read_files(files, options, false)
}

/// Reads a book, or a part of one (`part`: see [`expansa_import::read_book_part`]), from its
/// files in memory.
fn read_files(
    files: &[(&'static str, Vec<u8>)],
    options: &ImportOptions,
    part: bool,
) -> Result<Book, StoreError> {
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    if !refs.iter().any(|(n, _)| *n == "subscriptions.csv") {
        return Err(StoreError::NotFound(NO_BOOK.into()));
    }
    // The store keeps UTF-8, whatever the encoding the files were imported from.
    let options = ImportOptions {
        encoding: TextEncoding::UTF_8,
        ..options.clone()
    };
    let read = if part {
        expansa_import::read_book_part(&InMemory(&refs), &options)
    } else {
        read_book_from(&InMemory(&refs), &options, &NoProgress)
    };
    read.map_err(StoreError::Book)
}

/// Columns added to a file's schema after version 1 of the store, by file: a row kept before
/// its store had them holds their values, if its file had the columns, among its extra columns.
const ADDED_COLUMNS: &[(&str, &[&str])] = &[(
    "subscriptions.csv",
    &["billing_interval", "billing_interval_count"],
)];

/// Reads a row kept before one of [`ADDED_COLUMNS`] existed as a row kept after: a value of one
/// of `schema`'s columns found among the extra columns moves to its column (canonical, as an
/// import writes it), so the row rebuilds the file it came from, without the column twice, and
/// importing that file again finds the row unchanged. (Store version 3 adds the columns and
/// rewrites no row.)
fn promote_extra(schema: &Schema, values: &mut [Option<String>], extra: &mut Option<String>) {
    let Some(text) = extra.as_deref() else { return };
    let Some((_, added)) = ADDED_COLUMNS.iter().find(|(file, _)| *file == schema.file) else {
        return;
    };
    if !added.iter().any(|c| text.contains(c)) {
        return;
    }
    let mut pairs = parse_extra(Some(text));
    let before = pairs.len();
    pairs.retain(|(name, value)| {
        let Some(k) = schema.position(name) else {
            return true;
        };
        if let Some(slot) = values.get_mut(k).filter(|v| v.is_none()) {
            let t = value.trim();
            *slot = (!t.is_empty()).then(|| {
                expansa_import::canonical(schema.kinds[k], t).unwrap_or_else(|| t.to_string())
            });
        }
        false
    });
    if pairs.len() != before {
        *extra = extra_json(&pairs);
    }
}

fn extra_json(extra: &[(String, String)]) -> Option<String> {
    if extra.is_empty() {
        return None;
    }
    let map: serde_json::Map<String, serde_json::Value> = extra
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    Some(serde_json::Value::Object(map).to_string())
}

/// Stored rows as read back: their values and extra columns, in the order given.
fn table_rows(rows: Vec<(String, Stored)>) -> Vec<TableRow> {
    table_rows_keyed(rows)
        .into_iter()
        .map(|(_, _, r)| r)
        .collect()
}

/// Rows as read back, each with its order and key.
fn table_rows_keyed(rows: Vec<(String, Stored)>) -> Vec<(i64, String, TableRow)> {
    rows.into_iter()
        .map(|(key, s)| {
            let row = TableRow {
                extra: parse_extra(s.extra.as_deref()),
                values: s.values,
            };
            (s.ord, key, row)
        })
        .collect()
}

/// Whether two rows' extra columns (as kept: a JSON object, or none) hold the same values,
/// whatever their order: a file whose extra columns come in another order than a row was
/// written with (an export of a row written by the API) holds the same row.
/// Whether a row's values are those stored: the same text, or in a decimal column the same
/// number (`390.00` and `390`: a Parquet book's DECIMAL, read without its padding zeros, holds
/// the value a CSV file wrote with them; importing one after the other changes nothing).
fn same_values(schema: &Schema, stored: &[Option<String>], row: &[Option<String>]) -> bool {
    use std::str::FromStr;
    stored.len() == row.len()
        && stored
            .iter()
            .zip(row)
            .zip(schema.kinds)
            .all(|((a, b), kind)| match (a, b) {
                (Some(a), Some(b)) if a != b && *kind == ColumnKind::Decimal => {
                    let number = |t: &str| expansa_ledger::Decimal::from_str(t).ok();
                    number(a).is_some_and(|a| Some(a) == number(b))
                }
                _ => a == b,
            })
}

fn same_extra(a: &Option<String>, b: &Option<String>) -> bool {
    if a == b {
        return true;
    }
    let sorted = |text: &Option<String>| {
        let mut pairs = parse_extra(text.as_deref());
        pairs.sort();
        pairs
    };
    sorted(a) == sorted(b)
}

fn parse_extra(extra: Option<&str>) -> Vec<(String, String)> {
    let Some(text) = extra else { return Vec::new() };
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

fn detail_json(report: &[FileChanges]) -> String {
    let files: serde_json::Map<String, serde_json::Value> = report
        .iter()
        .map(|f| {
            (
                f.file.to_string(),
                serde_json::json!({"added": f.added, "changed": f.changed, "removed": f.removed, "unchanged": f.unchanged}),
            )
        })
        .collect();
    serde_json::Value::Object(files).to_string()
}
