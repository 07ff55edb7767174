//! A write validated on what it changes: the importer's checks (the one reader) run on the
//! rows of the customers the write touches, of the customers those rows name, and on the small
//! shared tables, read from the write's own transaction. Whatever the size of the book, a write
//! of one line reads a few rows.
//!
//! Why that is the whole book's verdict: every check of the importer is about one customer's
//! rows, the shared tables, or a reference from a row to another row; ids are unique by the
//! store's own index (one current row per key). A reference is followed to the customer it
//! names (a line's `revises` and `contract_id`, an offer's `line_id`, the lines of a contract),
//! and from a changed line back to the offers that name it, so both ends are checked together.
//! What this cannot see cheaply is left to the whole book: a write to a shared table
//! (products, rates, spend), a row without a customer, a channel spelled in a way no other
//! customer spells it (the check of spellings that differ only by case), a book whose lines
//! would all be in one currency other than the reporting one. The differential test
//! (`tests/changed.rs`) holds the two paths to the same verdicts.

use crate::{read_files, Piece, Store, StoreError, Tx};
use expansa_import::schema::{Schema, FILES};
use expansa_import::{extra_columns, write_rows, BookErrors, Problem};
use sqlx::Row;
use std::collections::{BTreeSet, HashMap};

/// The column naming the customer a row belongs to, for the tables whose rows are a
/// customer's; `None` for the shared tables.
pub(crate) fn customer_column(schema: &Schema) -> Option<&'static str> {
    match schema.file {
        "customers.csv" => Some("id"),
        "subscriptions.csv"
        | "contracts.csv"
        | "contracted_prices.csv"
        | "usage.csv"
        | "offers.csv" => Some("customer_id"),
        _ => None,
    }
}

/// One row a write changed: its values before (`None` when added) and after (`None` when
/// removed).
pub(crate) struct Changed {
    pub schema: Schema,
    pub before: Option<Vec<Option<String>>>,
    pub after: Option<Vec<Option<String>>>,
}

fn value<'a>(schema: &Schema, values: &'a [Option<String>], column: &str) -> Option<&'a str> {
    schema
        .position(column)
        .and_then(|k| values.get(k)?.as_deref())
}

/// A part of the book as files, with the order and key of each row (by file) and the
/// currencies its lines are in (`None`: the reporting currency).
pub(crate) struct Part {
    pub files: Vec<(&'static str, Vec<u8>)>,
    pub order: HashMap<&'static str, Vec<(i64, String)>>,
    /// The extra columns of the rows that have any, by file.
    pub extras: HashMap<&'static str, crate::merge::RowExtras>,
    pub currencies: BTreeSet<Option<String>>,
}

impl Part {
    /// The bytes of its files.
    pub(crate) fn weight(&self) -> usize {
        self.files.iter().map(|(_, bytes)| bytes.len()).sum()
    }

    /// The files of rows read by [`Store::part_rows`].
    pub(crate) fn of(rows: &[Option<PartRows>]) -> Part {
        let mut files = Vec::new();
        let mut order: HashMap<&'static str, Vec<(i64, String)>> = HashMap::new();
        let mut extras = HashMap::new();
        let mut currencies = BTreeSet::new();
        for (schema, rows) in FILES.iter().zip(rows) {
            let Some(rows) = rows else { continue };
            if schema.file == "subscriptions.csv" {
                let k = schema.position("currency").unwrap_or(usize::MAX);
                currencies.extend(
                    rows.iter()
                        .map(|(_, _, r)| r.values.get(k).cloned().flatten()),
                );
            }
            let extra = extra_columns(rows.iter().map(|(_, _, r)| r.extra.as_slice()));
            let bytes = write_rows(
                schema,
                &extra,
                rows.iter()
                    .map(|(_, _, r)| (r.values.as_slice(), r.extra.as_slice())),
            );
            order.insert(
                schema.file,
                rows.iter()
                    .map(|(ord, key, _)| (*ord, key.clone()))
                    .collect(),
            );
            extras.insert(
                schema.file,
                crate::merge::row_extras(rows.iter().map(|(ord, _, r)| (*ord, r.extra.as_slice()))),
            );
            files.push((schema.file, bytes));
        }
        Part {
            files,
            order,
            extras,
            currencies,
        }
    }
}

/// The rows of one file of a part: order, key and row, in file order.
pub(crate) type PartRows = Vec<(i64, String, crate::TableRow)>;

/// A file's bit in [`Store::held_files`]' answer.
pub(crate) fn file_bit(schema: &Schema) -> u32 {
    1 << FILES
        .iter()
        .position(|s| s.file == schema.file)
        .unwrap_or(31)
}

/// What this transaction knows of the bound on the book's total MRR (`book_mrr_bound`).
pub(crate) struct Bound {
    pub units: i128,
    /// Raised by a write of the transaction and not yet written.
    pub dirty: bool,
}

/// How many customers one query reads at most (bound parameters per statement).
const CUSTOMERS_PER_QUERY: usize = 500;

impl Store {
    /// The verdict on the book after the write in `tx`, from the rows of the customers it
    /// touches: `Ok(None)` when the write is one only the whole book can judge, else the
    /// problems found (`Some(Err)`, lines numbered as in the whole book) or none: then the part
    /// it was judged on (`Some(Ok)`, a piece of the book at `event` for the reads). The book's
    /// total MRR is held under its limit by a bound kept in the store (`book_mrr_bound`),
    /// raised here by the MRR of the lines written: without one, or past the limit, the whole
    /// book judges (and sets the bound exactly).
    pub(crate) async fn check_changed(
        &self,
        tx: &mut Tx,
        event: i64,
        changes: &[Changed],
    ) -> Result<Option<Result<Piece, BookErrors>>, StoreError> {
        // A file's first rows make it part of the book, which can change what every other row
        // means (customers.csv: then every line's customer must be listed): the whole book
        // judges.
        let held = self.held_files(tx, event).await?;
        if changes
            .iter()
            .any(|c| c.after.is_some() && held & file_bit(&c.schema) == 0)
        {
            return Ok(None);
        }
        let Some(customers) = self.customers_to_check(tx, event, changes, held).await? else {
            return Ok(None);
        };
        let part = self.read_part(tx, &customers, held).await?;
        let weight = part.weight();
        let Part {
            files,
            order,
            extras,
            currencies,
        } = part;
        if !files.iter().any(|(name, _)| *name == "subscriptions.csv") {
            return Ok(None);
        }
        // The importer's one rule about the whole book: every line in one currency that is not
        // the reporting one. Lines of these customers in one such currency say nothing about
        // the others': the whole book judges when no other line is in another currency.
        if let [Some(only)] = currencies.iter().collect::<Vec<_>>()[..] {
            if !only.eq_ignore_ascii_case(self.options.currency.code()) {
                let other = sqlx::query(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM subscriptions WHERE removed_in IS NULL \
                     AND (currency IS NULL OR currency <> $1) LIMIT 1) AS other",
                )
                .bind(only.as_str())
                .fetch_one(&mut **tx)
                .await?;
                if other.try_get::<i64, _>(0)? == 0 {
                    return Ok(None);
                }
            }
        }
        match read_files(&files, &self.options, true) {
            Ok(part) => {
                let (text, _) = crate::merge::split_part(files, order, extras);
                let written: i128 = changes
                    .iter()
                    .filter(|c| c.schema.file == "subscriptions.csv")
                    .filter_map(|c| value(&c.schema, c.after.as_ref()?, "id"))
                    .filter_map(|id| part.lines.ids.find(id))
                    .map(|l| part.lines.items[l as usize].mrr().scaled())
                    .sum();
                let Some(bound) = self.mrr_bound(tx).await? else {
                    return Ok(None);
                };
                let bound = bound + written;
                let scale = 10i128.pow(expansa_ledger::SCALE);
                if bound / scale > expansa_import::BOOK_LIMIT_UNITS {
                    return Ok(None);
                }
                // Written with the commit: a write rolled back to its savepoint leaves the
                // bound raised by its lines, still a bound.
                *self.bound() = Some(Bound {
                    units: bound,
                    dirty: true,
                });
                Ok(Some(Ok(Piece {
                    event,
                    customers,
                    book: part,
                    text,
                    weight,
                })))
            }
            Err(StoreError::Book(errors)) => {
                Ok(Some(Err(self.renumber(tx, errors, &order).await?)))
            }
            Err(other) => Err(other),
        }
    }

    /// The bound on the book's total MRR, in units of 10^-[`expansa_ledger::SCALE`]: read
    /// once a transaction (kept in [`Store::bound`] until the batch ends).
    async fn mrr_bound(&self, tx: &mut Tx) -> Result<Option<i128>, StoreError> {
        if let Some(bound) = self.bound().as_ref() {
            return Ok(Some(bound.units));
        }
        let row = sqlx::query("SELECT units FROM book_mrr_bound WHERE id = 1")
            .fetch_optional(&mut **tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let text: String = row.try_get(0)?;
        let units: Option<i128> = text.parse().ok();
        *self.bound() = units.map(|units| Bound {
            units,
            dirty: false,
        });
        Ok(units)
    }

    /// The bound on the book's total MRR as this transaction knows it (`None`: not read yet).
    /// Only the writer touches it; it is forgotten when a batch or an import begins and when
    /// one fails.
    pub(crate) fn bound(&self) -> std::sync::MutexGuard<'_, Option<Bound>> {
        self.bound.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the bound raised by this transaction's writes, if it was ([`Store::check_changed`]).
    pub(crate) async fn flush_mrr_bound(&self, tx: &mut Tx) -> Result<(), StoreError> {
        let raised = self.bound().as_mut().filter(|b| b.dirty).map(|b| {
            b.dirty = false;
            b.units
        });
        match raised {
            Some(units) => self.set_mrr_bound(tx, units).await,
            None => Ok(()),
        }
    }

    /// Sets the bound on the book's total MRR (see [`Store::check_changed`]).
    pub(crate) async fn set_mrr_bound(&self, tx: &mut Tx, units: i128) -> Result<(), StoreError> {
        *self.bound() = Some(Bound {
            units,
            dirty: false,
        });
        sqlx::query(
            "INSERT INTO book_mrr_bound (id, units) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET units = excluded.units",
        )
        .bind(units.to_string())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The current rows of `customers` in every file of theirs, with the shared files whole:
    /// by file of [`FILES`], `None` for a file that is not part of the book.
    /// `held`: the files that are part of the book ([`Store::held_files`] at the event of the
    /// write whose transaction `tx` is, or after the latest the snapshot `tx` reads).
    pub(crate) async fn part_rows(
        &self,
        tx: &mut Tx,
        customers: &BTreeSet<String>,
        held: u32,
    ) -> Result<Vec<Option<PartRows>>, StoreError> {
        let ids: Vec<&str> = customers.iter().map(String::as_str).collect();
        let mut chunks: Vec<&[&str]> = ids.chunks(CUSTOMERS_PER_QUERY).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        // One statement per chunk of customers, a column per file (the shared files with the
        // first): a write reads its part in one round trip.
        let mut rows: Vec<Vec<(String, crate::Stored)>> = vec![Vec::new(); FILES.len()];
        for (k, chunk) in chunks.iter().enumerate() {
            let (mut selects, mut binds, mut n) = (Vec::new(), Vec::new(), 0);
            for schema in FILES {
                let condition = match customer_column(&schema) {
                    Some(_) if chunk.is_empty() => "1 = 0".to_string(),
                    Some(column) => {
                        // A customer's own row is found by its key (the index of current rows).
                        let column = if schema.key == [column] {
                            "row_key"
                        } else {
                            column
                        };
                        let list: Vec<String> = chunk
                            .iter()
                            .map(|_| {
                                n += 1;
                                self.placeholder(n)
                            })
                            .collect();
                        binds.extend_from_slice(chunk);
                        format!(
                            "removed_in IS NULL AND \"{column}\" IN ({})",
                            list.join(", ")
                        )
                    }
                    None if k == 0 => "removed_in IS NULL".to_string(),
                    None => "1 = 0".to_string(),
                };
                selects.push(format!("({})", self.rows_sql(&schema, &condition)));
            }
            let sql = format!("SELECT {}", selects.join(", "));
            let query = binds.iter().fold(sqlx::query(&sql), |q, id| q.bind(*id));
            let row = query.fetch_one(&mut **tx).await?;
            for (i, schema) in FILES.iter().enumerate() {
                let text: String = row.try_get(i)?;
                rows[i].extend(crate::parse_rows(schema, &text)?);
            }
        }
        let mut out = Vec::with_capacity(FILES.len());
        for (schema, mut rows) in FILES.iter().zip(rows) {
            if chunks.len() > 1 {
                rows.sort_by(|(ka, a), (kb, b)| (a.ord, ka).cmp(&(b.ord, kb)));
            }
            if rows.is_empty() && held & file_bit(schema) == 0 {
                out.push(None);
            } else {
                out.push(Some(crate::table_rows_keyed(rows)));
            }
        }
        Ok(out)
    }

    /// [`Store::part_rows`] as the files of a part of the book.
    pub(crate) async fn read_part(
        &self,
        tx: &mut Tx,
        customers: &BTreeSet<String>,
        held: u32,
    ) -> Result<Part, StoreError> {
        Ok(Part::of(&self.part_rows(tx, customers, held).await?))
    }

    /// The customers whose rows decide the verdict, or `None` for a write only the whole book
    /// can judge.
    async fn customers_to_check(
        &self,
        tx: &mut Tx,
        event: i64,
        changes: &[Changed],
        held: u32,
    ) -> Result<Option<BTreeSet<String>>, StoreError> {
        let offers = held & file_bit(&expansa_import::schema::OFFERS) != 0;
        let mut customers = BTreeSet::new();
        for change in changes {
            let schema = &change.schema;
            let Some(column) = customer_column(schema) else {
                return Ok(None);
            };
            for values in change.before.iter().chain(&change.after) {
                match value(schema, values, column) {
                    Some(c) => customers.insert(c.to_string()),
                    None => return Ok(None),
                };
            }
            if let Some(after) = &change.after {
                match schema.file {
                    "subscriptions.csv" => {
                        if let Some(line) = value(schema, after, "revises") {
                            customers
                                .extend(self.owners(tx, "subscriptions", "row_key", line).await?);
                        }
                        // A line without a contract_id is its own contract (its id): a
                        // contracts.csv row of that id is another customer's to check.
                        let contract = value(schema, after, "contract_id")
                            .filter(|c| !c.trim().is_empty())
                            .or_else(|| value(schema, after, "id"));
                        if let Some(contract) = contract {
                            customers
                                .extend(self.owners(tx, "contracts", "row_key", contract).await?);
                        }
                    }
                    "offers.csv" => {
                        if let Some(line) = value(schema, after, "line_id") {
                            customers
                                .extend(self.owners(tx, "subscriptions", "row_key", line).await?);
                        }
                    }
                    "contracts.csv" => {
                        if let Some(contract) = value(schema, after, "id") {
                            customers.extend(
                                self.owners(tx, "subscriptions", "contract_id", contract)
                                    .await?,
                            );
                            // And a line of that id without a contract_id (its own contract).
                            customers.extend(
                                self.owners(tx, "subscriptions", "row_key", contract)
                                    .await?,
                            );
                        }
                    }
                    "customers.csv" => {
                        if let Some(channel) = value(schema, after, "channel") {
                            if !self.channel_spelled(tx, channel, event).await? {
                                return Ok(None);
                            }
                        }
                    }
                    _ => {}
                }
            }
            if let (Some(before), "subscriptions.csv", true) = (&change.before, schema.file, offers)
            {
                if let Some(line) = value(schema, before, "id") {
                    customers.extend(self.owners(tx, "offers", "line_id", line).await?);
                }
            }
        }
        // Offers name lines only once the book has offers.
        if offers {
            self.close_over_offers(tx, &mut customers).await?;
        }
        Ok(Some(customers))
    }

    /// Adds to `customers` those whose lines their offers name, and so on (an offer may name
    /// another customer's line): a part of the book with these customers reads whole.
    pub(crate) async fn close_over_offers(
        &self,
        tx: &mut Tx,
        customers: &mut BTreeSet<String>,
    ) -> Result<(), StoreError> {
        let mut frontier: Vec<String> = customers.iter().cloned().collect();
        while !frontier.is_empty() {
            let named = self.owners_of_offered_lines(tx, &frontier).await?;
            frontier = named
                .into_iter()
                .filter(|c| customers.insert(c.clone()))
                .collect();
        }
        Ok(())
    }

    /// The customers of the lines named by the current offers of `customers`.
    async fn owners_of_offered_lines(
        &self,
        tx: &mut Tx,
        customers: &[String],
    ) -> Result<BTreeSet<String>, StoreError> {
        let mut owners = BTreeSet::new();
        for chunk in customers.chunks(CUSTOMERS_PER_QUERY) {
            let list: Vec<String> = (1..=chunk.len()).map(|n| self.placeholder(n)).collect();
            let sql = format!(
                "SELECT DISTINCT s.customer_id FROM offers o JOIN subscriptions s \
                 ON s.row_key = o.line_id AND s.removed_in IS NULL \
                 WHERE o.removed_in IS NULL AND o.customer_id IN ({}) AND s.customer_id IS NOT NULL",
                list.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for c in chunk {
                query = query.bind(c.as_str());
            }
            for row in query.fetch_all(&mut **tx).await? {
                owners.insert(row.try_get::<String, _>(0)?);
            }
        }
        Ok(owners)
    }

    /// The customers of the current rows of `table` whose `column` is `value`.
    pub(crate) async fn owners(
        &self,
        tx: &mut Tx,
        table: &str,
        column: &str,
        value: &str,
    ) -> Result<Vec<String>, StoreError> {
        if value.contains('\0') {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT DISTINCT customer_id FROM \"{table}\" WHERE removed_in IS NULL AND \"{column}\" = $1 AND customer_id IS NOT NULL"
        );
        let rows = sqlx::query(&sql).bind(value).fetch_all(&mut **tx).await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
            .collect()
    }

    /// Whether a customer's channel is spelled exactly so by a current row written before this
    /// write (`event`), of customers or marketing spend: the book before was valid, so no
    /// spelling differing only by case can then be new. (A new spelling is judged on the whole
    /// book.)
    async fn channel_spelled(
        &self,
        tx: &mut Tx,
        channel: &str,
        event: i64,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM customers WHERE removed_in IS NULL AND channel = $1 AND added_in < $2 LIMIT 1) AS c) \
             + (SELECT COUNT(*) FROM (SELECT 1 FROM marketing_spend WHERE removed_in IS NULL AND channel = $1 AND added_in < $2 LIMIT 1) AS s)",
        )
        .bind(channel)
        .bind(event)
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.try_get::<i64, _>(0)? >= 1)
    }

    /// The files whose tables held a row added before event `before` (then the file is part of
    /// the latest book, if only as a header; `before` is the event being written or after the
    /// latest), one bit per file of [`FILES`] ([`file_bit`]). Rows are never deleted and those
    /// of earlier events are committed, so once a file held rows it always has (kept in
    /// [`Store::held`]); the others are asked of the database, all in one statement.
    pub(crate) async fn held_files(&self, tx: &mut Tx, before: i64) -> Result<u32, StoreError> {
        let known = self.held.load(std::sync::atomic::Ordering::Relaxed);
        let unknown: Vec<&Schema> = FILES.iter().filter(|s| known & file_bit(s) == 0).collect();
        if unknown.is_empty() {
            return Ok(known);
        }
        let found = self.files_held(tx, &unknown, before - 1).await?;
        if found != 0 {
            self.held
                .fetch_or(found, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(known | found)
    }

    /// The problems found in the part of the book, their lines numbered as in the whole book
    /// (the position of the row among the file's current rows).
    async fn renumber(
        &self,
        tx: &mut Tx,
        errors: BookErrors,
        order: &HashMap<&'static str, Vec<(i64, String)>>,
    ) -> Result<BookErrors, StoreError> {
        let BookErrors(problems, more) = errors;
        let mut out: Vec<Problem> = Vec::with_capacity(problems.len());
        for mut p in problems {
            let row = (p.line as usize)
                .checked_sub(2)
                .and_then(|i| order.get(p.file.as_str())?.get(i));
            let schema = FILES.iter().find(|s| s.file == p.file);
            if let (Some((ord, key)), Some(schema)) = (row, schema) {
                let sql = format!(
                    "SELECT COUNT(*) FROM \"{}\" WHERE removed_in IS NULL AND (ord < $1 OR (ord = $1 AND row_key < $2))",
                    crate::table_name(schema)
                );
                let before: i64 = sqlx::query(&sql)
                    .bind(*ord)
                    .bind(key.as_str())
                    .fetch_one(&mut **tx)
                    .await?
                    .try_get(0)?;
                p.line = before as u64 + 2;
            }
            out.push(p);
        }
        Ok(BookErrors(out, more))
    }
}
