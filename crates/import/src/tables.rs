//! The tables of the interchange format: one loader each, then the checks across tables.

use crate::field::{Bad, Field, Reason};
use crate::problem::{shown, BookErrors, Problem, Problems};
use crate::table::{self, Row, Schema};
use crate::{BookSource, ImportOptions, Progress, TextEncoding};
use expansa_ledger::{
    line_mrr, BillingPeriod, Book, Contract, ContractedPrice, Currency, CustomerIdx, Date, Decimal,
    FxRate, Interner, IntervalUnit, Line, LineIdx, LineRef, Month, NegotiatedPrice, Offer,
    OfferKind, OfferOutcome, PackedMoney, Product, ProductIdx, ProductKind, RenewalPricing,
    SmallDecimal, Spend, TextColumn, Usage,
};
use hashbrown::{HashMap, HashSet};
use rayon::prelude::*;

/// Total MRR of all lines, in whole currency units, beyond which sums could leave the exact
/// range; a book this large is refused rather than risked.
/// The largest total MRR of a book, in whole units of the reporting currency (README, "Limits").
pub const BOOK_LIMIT_UNITS: i128 = 100_000_000_000_000_000;

pub(crate) fn read_all(
    source: &dyn BookSource,
    options: &ImportOptions,
    progress: &dyn Progress,
    part: bool,
) -> Result<Book, BookErrors> {
    let mut loader = Loader {
        source,
        progress,
        part,
        book: Book {
            currency: Some(options.currency),
            ..Book::default()
        },
        encoding: options.encoding,
        problems: Problems::default(),
        fx: HashMap::new(),
        bad_fx: HashSet::new(),
        channels: HashMap::new(),
        line_rows: Vec::new(),
        bad_lines: BadLines::default(),
        unread: Vec::new(),
    };
    if let Some(problem) = source.unavailable() {
        return Err(crate::located(source, BookErrors(vec![problem], 0)));
    }
    loader.fx_rates();
    loader.products();
    loader.customers();
    loader.subscriptions();
    loader.contracts();
    loader.contracted_prices();
    loader.marketing_spend();
    loader.usage();
    loader.offers();
    let Loader { book, problems, .. } = loader;
    if problems.is_empty() {
        Ok(book)
    } else {
        // Sorted by file (in the format's order) and line; the first ones listed, then said
        // where the user finds them (a workbook's sheet and row).
        Err(crate::located(source, problems.into_errors()))
    }
}

struct Loader<'a> {
    /// The files are a part of a book (see [`crate::read_book_part`]): the rules about the
    /// whole book are left out.
    part: bool,
    source: &'a dyn BookSource,
    progress: &'a dyn Progress,
    book: Book,
    encoding: TextEncoding,
    /// The first problems found, and how many more.
    problems: Problems,
    fx: HashMap<(Month, Currency), Decimal>,
    /// Months and currencies of fx_rates.csv whose rate was refused: a line needing one is
    /// not reported as having no rate.
    bad_fx: HashSet<(Month, Currency)>,
    /// Each channel's first spelling (customers.csv, then marketing_spend.csv), by its lower
    /// case: the spelling, file and line, against which other spellings are checked.
    channels: HashMap<String, (String, &'static str, u64)>,
    /// File line of each subscription line, for messages about duplicates.
    line_rows: Vec<u32>,
    /// Rows of subscriptions.csv refused for a problem: what could be read of them, so that
    /// the checks across rows and tables still run on them, and rows naming them are not
    /// reported as naming unknown lines.
    bad_lines: BadLines,
    /// Files whose rows could not be read (a header refused): what other tables say of their
    /// rows (a rate, a line) is not checked.
    unread: Vec<&'static str>,
}

/// What could be read of a subscriptions.csv row that has a problem.
#[derive(Clone, Copy, Debug, Default)]
struct BadLine<'a> {
    line: u64,
    id: Option<&'a str>,
    customer: Option<&'a str>,
    contract: Option<&'a str>,
    revises: Option<&'a str>,
    start: Option<Date>,
}

/// The [`BadLine`]s of a file, kept compactly (a book may have millions of refused rows, and
/// the memory they take must stay near what their lines would take): their texts in one
/// buffer.
#[derive(Default)]
struct BadLines {
    rows: Vec<BadRow>,
    text: String,
}

#[derive(Clone, Copy)]
struct BadRow {
    line: u64,
    /// Where the row's texts start in [`BadLines::text`], one after the other.
    at: usize,
    /// The lengths of id, customer, contract and revises; [`BadRow::NONE`] for none.
    lens: [u32; 4],
    start: Option<Date>,
}

impl BadRow {
    const NONE: u32 = u32::MAX;
}

impl BadLines {
    fn push(&mut self, line: u64, texts: [Option<&str>; 4], start: Option<Date>) {
        let at = self.text.len();
        let lens = texts.map(|t| match t {
            // A value is part of a record, far shorter than 4 GiB.
            Some(t) => {
                self.text.push_str(t);
                t.len() as u32
            }
            None => BadRow::NONE,
        });
        self.rows.push(BadRow {
            line,
            at,
            lens,
            start,
        });
    }

    fn append(&mut self, other: BadLines) {
        let shift = self.text.len();
        self.text.push_str(&other.text);
        self.rows.extend(other.rows.into_iter().map(|r| BadRow {
            at: r.at + shift,
            ..r
        }));
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    fn get(&self, k: usize) -> BadLine<'_> {
        let r = &self.rows[k];
        let mut at = r.at;
        let [id, customer, contract, revises] = r.lens.map(|len| {
            (len != BadRow::NONE).then(|| {
                let t = &self.text[at..at + len as usize];
                at += len as usize;
                t
            })
        });
        BadLine {
            line: r.line,
            id,
            customer,
            contract,
            revises,
            start: r.start,
        }
    }

    fn iter(&self) -> impl Iterator<Item = BadLine<'_>> {
        (0..self.len()).map(|k| self.get(k))
    }
}

/// Rows of a small table, parsed in parallel, with their file lines.
type Rows<T> = Vec<(u64, T)>;

fn problem(file: &str, line: u64, column: &str, value: &str, reason: &str) -> Problem {
    Problem::new(file, line, column, value, reason)
}

fn currency_code(s: &str) -> Result<Currency, Reason> {
    Currency::from_code(s).ok_or(Reason::Borrowed("unknown ISO 4217 currency code"))
}

fn percent(row: &Row<'_>, column: usize) -> Field<Decimal> {
    let v = row.decimal(column, false)?;
    if let Some(p) = v {
        if p < Decimal::ZERO || p > Decimal::ONE_HUNDRED {
            row.problem(column, &p.to_string(), "must be between 0 and 100");
            return Err(Bad);
        }
    }
    Ok(v)
}

fn non_negative(row: &Row<'_>, column: usize, required: bool) -> Field<Decimal> {
    let v = row.decimal(column, required)?;
    if let Some(x) = v {
        if x.is_sign_negative() && !x.is_zero() {
            row.problem(column, &x.to_string(), "must not be negative");
            return Err(Bad);
        }
    }
    Ok(v)
}

/// Finds customers by id, trying first the previous row's customer and the one after it:
/// exports list a customer's lines together, usually in customer order, and those two
/// checks touch memory in sequence where a hash lookup would jump.
#[derive(Default)]
struct CustomerCursor {
    last: Option<CustomerIdx>,
}

impl CustomerCursor {
    fn resolve(&mut self, known: &Interner, id: &str) -> Option<CustomerIdx> {
        if let Some(last) = self.last {
            for guess in [last, last + 1] {
                if (guess as usize) < known.len() && known.get(guess) == id {
                    self.last = Some(guess);
                    return Some(guess);
                }
            }
        }
        let found = known.find(id)?;
        self.last = Some(found);
        Some(found)
    }
}

/// Values that most rows leave empty, kept only for the rows that have one.
#[derive(Default)]
struct Sparse {
    at: Vec<LineIdx>,
    text: TextColumn,
}

impl Sparse {
    fn push(&mut self, at: LineIdx, value: &str) {
        self.at.push(at);
        self.text.push(value);
    }

    /// (row position, value), in row order.
    fn iter(&self) -> impl Iterator<Item = (LineIdx, &str)> {
        self.at
            .iter()
            .enumerate()
            .map(|(k, &at)| (at, self.text.get(k)))
    }
}

/// The last few ids found in a small table (a catalogue of products), checked before hashing.
#[derive(Default)]
struct RecentIds {
    slots: Vec<(String, u32)>,
    next: usize,
}

impl RecentIds {
    const SLOTS: usize = 8;

    fn find(&mut self, table: &Interner, id: &str) -> Option<u32> {
        if let Some((_, i)) = self.slots.iter().find(|(s, _)| s == id) {
            return Some(*i);
        }
        let found = table.find(id)?;
        if self.slots.len() < Self::SLOTS {
            self.slots.push((id.to_string(), found));
        } else {
            self.slots[self.next] = (id.to_string(), found);
            self.next = (self.next + 1) % Self::SLOTS;
        }
        Some(found)
    }
}

/// The one, exact.
const ONE: SmallDecimal = SmallDecimal::ONE;

/// A line's quantity, price or discount, in the compact form lines keep.
fn small(row: &Row<'_>, column: usize, value: Field<Decimal>) -> Field<SmallDecimal> {
    match value? {
        None => Ok(None),
        Some(d) => match SmallDecimal::new(d) {
            Some(v) => Ok(Some(v)),
            None => {
                row.problem(
                    column,
                    &d.to_string(),
                    &format!("has more than {} significant digits", SmallDecimal::DIGITS),
                );
                Err(Bad)
            }
        },
    }
}

/// A line's billing period (`docs/interchange.md`): `billing_period_months` (column 8), or
/// `billing_interval` (13, `day`, `week`, `month` or `year` in any case) every
/// `billing_interval_count` (14, default 1) units; monthly when none is given. Both ways on one
/// row must name the same period (`month` x n = n months, `year` x n = 12 n months). Every
/// problem of the three columns is reported.
fn billing_period(r: &Row<'_>) -> Result<BillingPeriod, Bad> {
    const MONTHS: usize = 8;
    const INTERVAL: usize = 13;
    const COUNT: usize = 14;
    let months = || {
        r.integer(MONTHS, false, 1).and_then(|p| match p {
            Some(p) if p > i64::from(expansa_ledger::MAX_PERIOD_MONTHS) => {
                r.problem(
                    MONTHS,
                    &p.to_string(),
                    &format!("must be at most {}", expansa_ledger::MAX_PERIOD_MONTHS),
                );
                Err(Bad)
            }
            p => Ok(p),
        })
    };
    // Most books give months only: the interval's columns are not in their header.
    if !r.has(INTERVAL) && !r.has(COUNT) {
        return Ok(months()?.map_or(BillingPeriod::MONTHLY, |m| {
            BillingPeriod::months(m as u16).unwrap_or(BillingPeriod::MONTHLY)
        }));
    }
    let months = months();
    let unit = r.parse(INTERVAL, false, |s| {
        IntervalUnit::parse(s).ok_or(Reason::Borrowed(
            "not a billing interval (expected day, week, month or year)",
        ))
    });
    let count = r.integer(COUNT, false, 1);
    let (months, unit, count) = (months?, unit?, count?);
    let Some(unit) = unit else {
        if let Some(n) = count {
            r.problem(
                COUNT,
                &n.to_string(),
                "needs billing_interval (day, week, month or year): a count of what?",
            );
            return Err(Bad);
        }
        return Ok(months.map_or(BillingPeriod::MONTHLY, |m| {
            BillingPeriod::months(m as u16).unwrap_or(BillingPeriod::MONTHLY)
        }));
    };
    let n = count.unwrap_or(1);
    let max = unit.max_count();
    if n > i64::from(max) {
        r.problem(
            COUNT,
            &n.to_string(),
            &format!(
                "must be at most {max} for billing_interval {} (the longest period is {})",
                unit.name(),
                longest(unit)
            ),
        );
        return Err(Bad);
    }
    let period = BillingPeriod::new(unit, n as u16).ok_or(Bad)?;
    if let Some(m) = months {
        if period.whole_months() != Some(m as u16) {
            r.problem(
                INTERVAL,
                r.text(INTERVAL).unwrap_or_default(),
                &format!(
                    "disagrees with billing_period_months {m}: billing_interval {} x \
                     billing_interval_count {n} is not {m} month{}; give one of the two, or \
                     both for the same period",
                    unit.name(),
                    if m == 1 { "" } else { "s" }
                ),
            );
            return Err(Bad);
        }
    }
    Ok(period)
}

/// The longest billing period of `unit`, in words.
fn longest(unit: IntervalUnit) -> &'static str {
    match unit {
        IntervalUnit::Day | IntervalUnit::Week => "about ten years",
        IntervalUnit::Month | IntervalUnit::Year => "100 years",
    }
}

fn date_order(row: &Row<'_>, end_column: usize, start: Option<Date>, end: Option<Date>) -> bool {
    match (start, end) {
        (Some(s), Some(e)) if e < s => {
            row.problem(
                end_column,
                &e.to_string(),
                &format!("is before the start ({s})"),
            );
            false
        }
        _ => true,
    }
}

impl Loader<'_> {
    /// Reads a table whose rows are collected whole (the small tables).
    fn rows<T: Send>(
        &mut self,
        schema: &Schema,
        parse: impl Fn(&Row<'_>) -> Result<T, Bad> + Sync,
    ) -> Option<Rows<T>> {
        let mut out = Vec::new();
        let read = table::read(
            self.source,
            schema,
            self.progress,
            self.encoding,
            |row, acc: &mut Rows<T>| {
                if let Ok(v) = parse(row) {
                    acc.push((row.line, v));
                }
            },
            |chunk, _| out.extend(chunk),
        );
        self.found(schema.file, read).then_some(out)
    }

    /// Keeps the problems of a table read; whether its rows were read (a file absent, or whose
    /// rows could not be read, is then as if absent: what other tables say of its rows is not
    /// checked against it, so that its problem is not followed by its consequences).
    fn found(&mut self, file: &'static str, read: Result<Option<Problems>, Problems>) -> bool {
        match read {
            Ok(Some(problems)) => {
                self.problems.merge(problems);
                true
            }
            Ok(None) => false,
            Err(problems) => {
                self.problems.merge(problems);
                self.unread.push(file);
                false
            }
        }
    }

    /// The customer named in another table: must be listed when customers.csv exists.
    fn customer_ref(&mut self, file: &str, line: u64, id: &str) -> Option<CustomerIdx> {
        if let Some(c) = self.book.customers.ids.find(id) {
            return Some(c);
        }
        if self.book.customers.from_file {
            self.problems.push(problem(
                file,
                line,
                "customer_id",
                id,
                "unknown customer (not in customers.csv)",
            ));
            return None;
        }
        Some(self.book.customers.push_bare(id))
    }

    /// A customer and a product named together in another table (a price, a usage, an offer).
    fn holding_ref(
        &mut self,
        file: &str,
        line: u64,
        customer: &str,
        product: &str,
    ) -> Option<(CustomerIdx, ProductIdx)> {
        let customer = self.customer_ref(file, line, customer)?;
        Some((customer, self.book.products.get_or_add(product)))
    }

    fn fx_rates(&mut self) {
        const S: Schema = crate::schema::FX_RATES;
        let reporting = self.book.currency();
        let Some(rows) = self.rows(&S, |r| {
            let month = r.month(0, true);
            let currency = r.parse(1, true, currency_code);
            let rate = r.decimal(2, true).and_then(|rate| {
                let rate = rate.expect("required");
                if rate <= Decimal::ZERO {
                    r.problem(2, &rate.to_string(), "must be greater than 0");
                    return Err(Bad);
                }
                if currency == Ok(Some(reporting)) && rate != Decimal::ONE {
                    r.problem(
                        2,
                        &rate.to_string(),
                        &format!(
                            "a rate for the reporting currency {reporting} must be 1: these \
                             rates look relative to another currency (give that one with \
                             --currency)"
                        ),
                    );
                    return Err(Bad);
                }
                Ok(rate)
            });
            Ok((month.ok().flatten(), currency.ok().flatten(), rate.ok()))
        }) else {
            return;
        };
        for (line, (month, currency, rate)) in rows {
            let (Some(month), Some(currency)) = (month, currency) else {
                continue;
            };
            if self.fx.contains_key(&(month, currency)) || self.bad_fx.contains(&(month, currency))
            {
                self.problems.push(problem(
                    S.file,
                    line,
                    "month",
                    &month.to_string(),
                    &format!("second rate for {currency} in this month"),
                ));
                continue;
            }
            match rate {
                Some(rate) => {
                    self.fx.insert((month, currency), rate);
                    self.book.fx_rates.push(FxRate {
                        month,
                        currency,
                        rate,
                    });
                }
                None => {
                    self.bad_fx.insert((month, currency));
                }
            }
        }
    }

    fn products(&mut self) {
        const S: Schema = crate::schema::PRODUCTS;
        let Some(rows) = self.rows(&S, |r| {
            let id = r.required(0);
            let tier = r.integer(3, false, i64::MIN);
            let kind = r.parse(4, false, |s| match s.to_ascii_lowercase().as_str() {
                "plan" => Ok(ProductKind::Plan),
                "addon" => Ok(ProductKind::Addon),
                "service" => Ok(ProductKind::Service),
                _ => Err("must be plan, addon or service".into()),
            });
            let list_price = non_negative(r, 5, false);
            let term = r.integer(6, false, 1);
            let currency = r.parse(7, false, currency_code);
            let product = (|| -> Result<Product, Bad> {
                Ok(Product {
                    name: r.text(1).map(str::to_string),
                    family: 0,
                    tier: tier?,
                    kind: kind?.unwrap_or_default(),
                    list_price: list_price?,
                    price_term_months: term?.map_or(12, |t| t as u32),
                    currency: currency?,
                })
            })();
            // A refused row keeps its id: rows naming it, and its duplicates, are reported
            // as such.
            Ok((
                id?.expect("required").to_string(),
                r.text(2).map(str::to_string),
                product.ok(),
            ))
        }) else {
            return;
        };
        let products = &mut self.book.products;
        for (line, (id, family, product)) in rows {
            let (idx, seen) = products.ids.intern(&id);
            if seen {
                self.problems
                    .push(problem(S.file, line, "id", &id, "duplicate product id"));
                continue;
            }
            debug_assert_eq!(idx as usize, products.items.len());
            let mut product = product.unwrap_or_default();
            product.family = products.families.intern(family.as_deref().unwrap_or(&id)).0;
            products.items.push(product);
        }
    }

    fn customers(&mut self) {
        const S: Schema = crate::schema::CUSTOMERS;
        #[derive(Default)]
        struct Chunk {
            rows: Vec<(u64, Option<Date>)>,
            text: [TextColumn; 5],
            /// The file's other columns: names (set by the first row) and values.
            extra: Vec<(String, TextColumn)>,
        }
        let mut ids = TextColumn::default();
        let mut rows: Vec<u64> = Vec::new();
        let customers = &mut self.book.customers;
        let read = table::read(
            self.source,
            &S,
            self.progress,
            self.encoding,
            |r, c: &mut Chunk| {
                let id = r.required(0);
                let registered = r.date(2, false);
                // A row refused for another value keeps its id: lines of the customer are not
                // "unknown customer", and its duplicates are found.
                if let Ok(Some(id)) = id {
                    c.rows.push((r.line, registered.ok().flatten()));
                    c.text[0].push(id);
                    for (k, col) in [1, 3, 4, 5].into_iter().enumerate() {
                        if r.has(col) {
                            let text = r.text(col).unwrap_or("");
                            if col == 5 {
                                c.text[k + 1].push(&Self::channel_name(text));
                            } else {
                                c.text[k + 1].push(text);
                            }
                        }
                    }
                    if c.extra.is_empty() {
                        c.extra = r
                            .extra_columns()
                            .map(|n| (n.to_string(), TextColumn::default()))
                            .collect();
                    }
                    for (k, (_, col)) in c.extra.iter_mut().enumerate() {
                        col.push(r.extra_text(k).unwrap_or(""));
                    }
                }
            },
            |chunk, estimate| {
                if rows.is_empty() {
                    rows.reserve_exact(estimate);
                    customers.registered_on.reserve_exact(estimate);
                }
                for &(line, registered) in &chunk.rows {
                    rows.push(line);
                    customers.registered_on.push(registered);
                }
                ids.append(&chunk.text[0]);
                customers.name.append(&chunk.text[1]);
                customers.segment.append(&chunk.text[2]);
                customers.country.append(&chunk.text[3]);
                customers.channel.append(&chunk.text[4]);
                // Every chunk has the file's extra columns, in the header's order (names
                // are unique): each is appended where it is, not searched for.
                let attributes = &mut customers.attributes;
                for (k, (name, values)) in chunk.extra.iter().enumerate() {
                    if k == attributes.len() {
                        attributes.push((name.clone(), values.clone()));
                    } else if attributes[k].0 == *name {
                        attributes[k].1.append(values);
                    } else {
                        match attributes.iter_mut().find(|(n, _)| n == name) {
                            Some((_, column)) => column.append(values),
                            None => attributes.push((name.clone(), values.clone())),
                        }
                    }
                }
            },
        );
        if !self.found(S.file, read) {
            return;
        }
        let (index, duplicates) = Interner::from_column(ids);
        for d in duplicates {
            self.problems.push(problem(
                S.file,
                rows[d.index as usize],
                "id",
                index.get(d.index),
                &format!(
                    "duplicate customer id (first on line {})",
                    rows[d.first as usize]
                ),
            ));
        }
        let customers = &mut self.book.customers;
        customers.ids = index;
        customers.from_file = true;
        // Channels that differ only by case: the first spelling is the channel's.
        let channel = &self.book.customers.channel;
        let spelled = || {
            (0..channel.len())
                .zip(&rows)
                .filter_map(|(i, &line)| Some((channel.get_opt(i)?, line)))
        };
        // Each spelling's first line, found in parallel (a book has few channels and many
        // customers).
        let first_seen: HashMap<&str, u64> = (0..channel.len().min(rows.len()))
            .into_par_iter()
            .with_min_len(1 << 14)
            .fold(HashMap::new, |mut seen: HashMap<&str, u64>, i| {
                if let Some(name) = channel.get_opt(i) {
                    let line = seen.entry(name).or_insert(rows[i]);
                    *line = (*line).min(rows[i]);
                }
                seen
            })
            .reduce(HashMap::new, |mut a, b| {
                for (name, line) in b {
                    let first = a.entry(name).or_insert(line);
                    *first = (*first).min(line);
                }
                a
            });
        let mut spellings: Vec<(&str, u64)> = first_seen.into_iter().collect();
        spellings.sort_by_key(|&(_, line)| line);
        let mut variants: HashMap<&str, (String, u64)> = HashMap::new();
        for (name, line) in spellings {
            match self.channels.get(&name.to_lowercase()) {
                Some((first, _, first_line)) => {
                    variants.insert(name, (first.clone(), *first_line));
                }
                None => {
                    let first = (name.to_string(), S.file, line);
                    self.channels.insert(name.to_lowercase(), first);
                }
            }
        }
        if !variants.is_empty() {
            for (name, line) in spelled() {
                if let Some((first, first_line)) = variants.get(name) {
                    self.problems.push(problem(
                        S.file,
                        line,
                        "channel",
                        name,
                        &format!(
                            "differs only by case from '{}' ({}:{first_line}); write \
                             channels alike",
                            shown(first),
                            S.file
                        ),
                    ));
                }
            }
        }
    }

    fn subscriptions(&mut self) {
        const S: Schema = crate::schema::SUBSCRIPTIONS;
        /// Lines of one chunk: parsed in parallel, ids resolved afterwards in file order.
        #[derive(Default)]
        struct Chunk {
            lines: Vec<Line>,
            /// File line of each line.
            rows: Vec<u64>,
            ids: TextColumn,
            /// Customer ids that could not be resolved in parallel (no customers.csv).
            customers: Sparse,
            /// Product ids not in products.csv.
            products: Sparse,
            contracts: TextColumn,
            revises: Sparse,
            /// `sold_on` where it differs from the start, by position in the chunk.
            sold_on: Vec<(LineIdx, Date)>,
            /// Rows with problems: what could be read of them.
            bad: BadLines,
            /// Currencies of the rows, with the file line of their first row.
            currencies: Vec<(Currency, u64)>,
            /// Whether a row is in the reporting currency (then it is in `currencies`).
            reporting_seen: bool,
            /// Rows in a foreign currency without a rate for their start month, reported
            /// once the whole file is read (file line, currency, month).
            no_rate: Vec<(u64, Currency, Month)>,
            last_customer: CustomerCursor,
            recent_products: RecentIds,
        }
        let reporting = self.book.currency();
        let (fx, bad_fx) = (&self.fx, &self.bad_fx);
        let file_customers = self
            .book
            .customers
            .from_file
            .then_some(&self.book.customers.ids);
        let products = &self.book.products.ids;
        let mut lines = expansa_ledger::Lines::default();
        let mut ids = TextColumn::default();
        // Customers and products met only here (no customers.csv; not in products.csv).
        let mut bare_customers = expansa_ledger::Customers::default();
        let mut new_products = expansa_ledger::Interner::new();
        let line_rows = &mut self.line_rows;
        let mut revises: Vec<LineIdx> = Vec::new();
        let mut revises_text = TextColumn::default();
        let mut bad_lines = BadLines::default();
        let mut currencies: Vec<(Currency, u64)> = Vec::new();
        let mut no_rate: Vec<(u64, Currency, Month)> = Vec::new();
        let read = table::read(
            self.source,
            &S,
            self.progress,
            self.encoding,
            |r, c: &mut Chunk| {
                // Every value is checked, and then every check between values whose values
                // are there: a row shows all its problems at once.
                let id = r.required(0);
                let customer = r.required(1);
                let product = r.required(3);
                let quantity = small(r, 4, non_negative(r, 4, false));
                let unit_price = small(r, 5, non_negative(r, 5, true));
                let discount = small(r, 6, percent(r, 6));
                let currency = match r.text(7) {
                    Some(code) if reporting.is_code(code) => Ok(Some(reporting)),
                    _ => r.parse(7, false, currency_code),
                };
                let period = billing_period(r);
                let start = r.date(9, true);
                let end = r.date(10, false);
                let sold_on = r.date(11, false);
                let customer_idx = match (customer, file_customers) {
                    (Ok(Some(cid)), Some(known)) => match c.last_customer.resolve(known, cid) {
                        Some(i) => Ok(Some(i)),
                        None => {
                            r.problem(1, cid, "unknown customer (not in customers.csv)");
                            Err(Bad)
                        }
                    },
                    (Ok(_), _) => Ok(None),
                    (Err(e), _) => Err(e),
                };
                let in_order = match (start, end) {
                    (Ok(Some(start)), Ok(end)) => date_order(r, 10, Some(start), end),
                    _ => true,
                };
                let currency = currency.map(|c| c.unwrap_or(reporting));
                match (currency, r.misshapen()) {
                    // Most rows: one test.
                    (Ok(currency), false) if currency == reporting && !c.reporting_seen => {
                        c.reporting_seen = true;
                        c.currencies.push((currency, r.line));
                    }
                    (Ok(currency), false)
                        if currency != reporting
                            && !c.currencies.iter().any(|(k, _)| *k == currency) =>
                    {
                        c.currencies.push((currency, r.line));
                    }
                    _ => {}
                }
                let rate = match (start, currency) {
                    (Ok(Some(_)), Ok(currency)) if currency == reporting => Ok(Decimal::ONE),
                    (Ok(Some(start)), Ok(currency)) => {
                        let month = Month::of(start);
                        match fx.get(&(month, currency)) {
                            Some(rate) => Ok(*rate),
                            // A refused rate is reported where it is.
                            None if bad_fx.contains(&(month, currency)) => Err(Bad),
                            None => {
                                c.no_rate.push((r.line, currency, month));
                                Err(Bad)
                            }
                        }
                    }
                    _ => Err(Bad),
                };
                let parsed = (|| {
                    let (start, end) = (start?.expect("required"), end?);
                    if !in_order {
                        return Err(Bad);
                    }
                    let rate = rate?;
                    let currency = currency?;
                    let quantity = quantity?.unwrap_or(ONE);
                    let unit_price = unit_price?.expect("required");
                    let discount_pct = discount?.unwrap_or(SmallDecimal::ZERO);
                    let period = period?;
                    let mrr = line_mrr(
                        quantity.get(),
                        unit_price.get(),
                        discount_pct.get(),
                        period,
                        rate,
                    )
                    .map_err(|e| {
                        r.problem(5, &unit_price.to_string(), &e.to_string());
                        Bad
                    })?;
                    let packed_mrr = PackedMoney::new(mrr).expect("line MRRs are bounded");
                    let line = Line {
                        customer: customer_idx?.unwrap_or(CustomerIdx::MAX),
                        product: ProductIdx::MAX,
                        quantity,
                        unit_price,
                        discount_pct,
                        packed_mrr,
                        start,
                        end,
                        revises_ref: None,
                        billing_period: period,
                        currency,
                    };
                    Ok((line, sold_on?.filter(|d| *d != start)))
                })();
                let (
                    Ok(Some(id)),
                    Ok(Some(customer)),
                    Ok(Some(product_id)),
                    Ok((mut line, sold_on)),
                ) = (id, customer, product, parsed)
                else {
                    c.bad.push(
                        r.line,
                        [
                            id.ok().flatten(),
                            customer.ok().flatten(),
                            r.text(2),
                            r.text(12),
                        ],
                        start.ok().flatten(),
                    );
                    return;
                };
                let at = c.lines.len() as LineIdx;
                c.ids.push(id);
                c.rows.push(r.line);
                if line.customer == CustomerIdx::MAX {
                    c.customers.push(at, customer);
                }
                match c.recent_products.find(products, product_id) {
                    Some(p) => line.product = p,
                    None => c.products.push(at, product_id),
                }
                c.contracts
                    .push(r.text(2).filter(|k| *k != id).unwrap_or(""));
                if let Some(target) = r.text(12) {
                    c.revises.push(at, target);
                }
                if let Some(day) = sold_on {
                    c.sold_on.push((at, day));
                }
                c.lines.push(line);
            },
            |chunk, estimate| {
                if lines.items.is_empty() {
                    lines.items.reserve_exact(estimate);
                    line_rows.reserve_exact(estimate);
                }
                bad_lines.append(chunk.bad);
                no_rate.extend(chunk.no_rate);
                for (currency, line) in chunk.currencies {
                    if !currencies.iter().any(|(k, _)| *k == currency) {
                        currencies.push((currency, line));
                    }
                }
                let first = lines.items.len();
                lines.sold_on.extend(
                    chunk
                        .sold_on
                        .iter()
                        .map(|&(i, day)| (first as LineIdx + i, day)),
                );
                lines.items.extend_from_slice(&chunk.lines);
                let placed = &mut lines.items[first..];
                // Customers first met here get their index in file order.
                for (at, cid) in chunk.customers.iter() {
                    placed[at as usize].customer = bare_customers.push_bare(cid);
                }
                for (at, pid) in chunk.products.iter() {
                    placed[at as usize].product =
                        (products.len() + new_products.intern(pid).0 as usize) as ProductIdx;
                }
                for (at, target) in chunk.revises.iter() {
                    revises.push(first as LineIdx + at);
                    revises_text.push(target);
                }
                line_rows.extend(
                    chunk
                        .rows
                        .iter()
                        .map(|&row| u32::try_from(row).unwrap_or(u32::MAX)),
                );
                ids.append(&chunk.ids);
                lines.contract_ids.append(&chunk.contracts);
            },
        );
        // A file that could not be read was reported as such; only an absent one is missing.
        let absent = matches!(read, Ok(None));
        if !self.found(S.file, read) {
            if absent {
                self.problems.push(problem(
                    S.file,
                    0,
                    "file",
                    "",
                    "required file is missing from the book folder",
                ));
            }
            return;
        }
        self.missing_rates(&currencies, &no_rate);
        let book = &mut self.book;
        if !book.customers.from_file {
            book.customers = bare_customers;
        }
        for pid in new_products.iter() {
            book.products.get_or_add(pid);
        }
        let (index, duplicates) = Interner::from_column(ids);
        for d in duplicates {
            self.problems.push(problem(
                S.file,
                self.line_rows[d.index as usize].into(),
                "id",
                index.get(d.index),
                &format!(
                    "duplicate line id (first on line {})",
                    self.line_rows[d.first as usize]
                ),
            ));
        }
        // Rows with problems keep their ids for the duplicate check: grouped by id (a stable
        // sort keeps each id's rows in file order), each compared with the first of its id.
        let mut with_id: Vec<u32> = (0..bad_lines.len() as u32)
            .filter(|&k| bad_lines.get(k as usize).id.is_some())
            .collect();
        with_id.sort_by(|&a, &b| {
            bad_lines
                .get(a as usize)
                .id
                .cmp(&bad_lines.get(b as usize).id)
        });
        let (mut group, mut first_bad) = (None, None);
        for k in with_id {
            let bad = bad_lines.get(k as usize);
            let (Some(id), row) = (bad.id, bad.line) else {
                continue;
            };
            if group != Some(id) {
                (group, first_bad) = (Some(id), None);
            }
            let good = index
                .find(id)
                .map(|i| u64::from(self.line_rows[i as usize]));
            match [good, first_bad]
                .into_iter()
                .flatten()
                .filter(|r| *r < row)
                .min()
            {
                Some(first) => self.problems.push(problem(
                    S.file,
                    row,
                    "id",
                    id,
                    &format!("duplicate line id (first on line {first})"),
                )),
                None => {
                    first_bad = Some(row);
                    if let Some(good) = good.filter(|g| *g > row) {
                        self.problems.push(problem(
                            S.file,
                            good,
                            "id",
                            id,
                            &format!("duplicate line id (first on line {row})"),
                        ));
                    }
                }
            }
        }
        lines.ids = index;
        book.lines = lines;
        let found = revisions(book, &self.line_rows, &bad_lines, &revises, &revises_text);
        self.problems.merge(found);
        let total_units: i128 = book
            .lines
            .items
            .par_iter()
            .with_min_len(1 << 14)
            .map(|l| l.mrr().scaled())
            .sum::<i128>()
            / 10i128.pow(expansa_ledger::SCALE);
        if total_units > BOOK_LIMIT_UNITS {
            self.problems.push(problem(
                S.file,
                0,
                "unit_price",
                &total_units.to_string(),
                &format!("the book's total MRR exceeds {BOOK_LIMIT_UNITS} currency units"),
            ));
        }
        self.bad_lines = bad_lines;
    }

    /// Reports the lines in a foreign currency without a rate for their start month
    /// (`no_rate`, in file order), given every currency of the file with the line of its
    /// first row: what to do about a currency that has no rate at all is said once.
    fn missing_rates(
        &mut self,
        currencies: &[(Currency, u64)],
        no_rate: &[(u64, Currency, Month)],
    ) {
        const FILE: &str = crate::schema::SUBSCRIPTIONS.file;
        if no_rate.is_empty() || self.unread.contains(&crate::schema::FX_RATES.file) {
            return;
        }
        let reporting = self.book.currency();
        let rated: HashSet<Currency> = self
            .fx
            .keys()
            .chain(&self.bad_fx)
            .map(|&(_, c)| c)
            .collect();
        let default = if reporting == ImportOptions::default().currency {
            " (the default)"
        } else {
            ""
        };
        if let ([(only, first)], false) = (currencies, self.part) {
            if *only != reporting && !rated.contains(only) {
                self.problems.push(problem(
                    FILE,
                    *first,
                    "currency",
                    only.code(),
                    &format!(
                        "every line is in {only} but the reporting currency is {reporting}{default} \
                         and fx_rates.csv has no {only} rate: pass --currency {only}, or add \
                         {only} rates"
                    ),
                ));
                return;
            }
        }
        let mut unrated: Vec<(Currency, u64, u64)> = Vec::new();
        for &(line, currency, month) in no_rate {
            if rated.contains(&currency) {
                self.problems.push(problem(
                    FILE,
                    line,
                    "currency",
                    currency.code(),
                    &format!("no rate in fx_rates.csv for {currency} to {reporting} in {month}"),
                ));
            } else {
                match unrated.iter_mut().find(|(c, ..)| *c == currency) {
                    Some((_, _, n)) => *n += 1,
                    None => unrated.push((currency, line, 1)),
                }
            }
        }
        for (currency, line, n) in unrated {
            let lines = if n == 1 {
                "1 line".to_string()
            } else {
                format!("{n} lines, the first here")
            };
            self.problems.push(problem(
                FILE,
                line,
                "currency",
                currency.code(),
                &format!(
                    "no rate in fx_rates.csv for {currency} to {reporting} in any month \
                     ({lines}): add {currency} rates"
                ),
            ));
        }
    }

    fn contracts(&mut self) {
        const S: Schema = crate::schema::CONTRACTS;
        let Some(rows) = self.rows(&S, |r| {
            let id = r.required(0);
            let customer = r.required(1);
            let start = r.date(2, true);
            let end = r.date(3, false);
            let pricing = r.parse(4, false, |s| match s.to_ascii_lowercase().as_str() {
                "same" => Ok(RenewalPricing::Same),
                "list" => Ok(RenewalPricing::List),
                "uplift" => Ok(RenewalPricing::Uplift),
                _ => Err("must be same, list or uplift".into()),
            });
            // An uplift of -100% or less would price the renewal at nothing or below.
            let uplift = r.decimal(5, false).and_then(|u| match u {
                Some(u) if u <= -Decimal::ONE_HUNDRED => {
                    r.problem(
                        5,
                        &u.to_string(),
                        "must be more than -100 (a renewal at -100% or less is free or negative)",
                    );
                    Err(Bad)
                }
                u => Ok(u),
            });
            let term = r.integer(6, false, 1);
            let in_order = match (start, end) {
                (Ok(start), Ok(end)) => date_order(r, 3, start, end),
                _ => true,
            };
            let has_uplift = match (pricing, uplift) {
                (Ok(Some(RenewalPricing::Uplift)), Ok(None)) => {
                    r.problem(5, "", "required when renewal_pricing is uplift");
                    false
                }
                _ => true,
            };
            let contract = (|| -> Result<_, Bad> {
                if !(in_order && has_uplift) {
                    return Err(Bad);
                }
                Ok((
                    start?.expect("required"),
                    end?,
                    pricing?.unwrap_or_default(),
                    uplift?,
                    term?.map(|t| t as u32),
                ))
            })();
            // A refused row keeps its id and customer: its duplicates, its customer and the
            // lines of its contract are still checked.
            Ok((
                id.ok().flatten().map(str::to_string),
                customer.ok().flatten().map(str::to_string),
                contract.ok(),
            ))
        }) else {
            return;
        };
        let mut seen = HashMap::new();
        // The customer of each contract id (its first row), by id.
        let mut owner: HashMap<String, CustomerIdx> = HashMap::new();
        for (line, (id, customer, contract)) in rows {
            let duplicate = match &id {
                Some(id) => match seen.get(id) {
                    Some(first) => {
                        self.problems.push(problem(
                            S.file,
                            line,
                            "id",
                            id,
                            &format!("duplicate contract id (first on line {first})"),
                        ));
                        true
                    }
                    None => {
                        seen.insert(id.clone(), line);
                        false
                    }
                },
                None => false,
            };
            let customer = customer.and_then(|c| self.customer_ref(S.file, line, &c));
            // An unknown customer is reported here, not again on the contract's lines.
            if let (Some(id), Some(customer), false) = (&id, customer, duplicate) {
                owner.insert(id.clone(), customer);
            }
            if let (Some(id), Some(customer), Some(contract), false) =
                (id, customer, contract, duplicate)
            {
                let (start, end, renewal_pricing, renewal_uplift_pct, renewal_term_months) =
                    contract;
                self.book.contracts.push(Contract {
                    id,
                    customer,
                    start,
                    end,
                    renewal_pricing,
                    renewal_uplift_pct,
                    renewal_term_months,
                });
            }
        }
        // A line's contract must belong to the line's customer (refused rows included).
        let (lines, ids) = (&self.book.lines, &self.book.customers.ids);
        let reason = |c: CustomerIdx| {
            format!(
                "contract belongs to another customer ({})",
                shown(ids.get(c))
            )
        };
        for (i, line) in lines.items.iter().enumerate() {
            let contract = lines.contract_id(i as u32);
            if let Some(&c) = owner.get(contract).filter(|&&c| c != line.customer) {
                self.problems.push(problem(
                    "subscriptions.csv",
                    self.line_rows[i].into(),
                    "contract_id",
                    contract,
                    &reason(c),
                ));
            }
        }
        for bad in self.bad_lines.iter() {
            let (Some(contract), Some(customer)) = (bad.contract.or(bad.id), bad.customer) else {
                continue;
            };
            if let Some(&c) = owner.get(contract).filter(|&&c| ids.get(c) != customer) {
                self.problems.push(problem(
                    "subscriptions.csv",
                    bad.line,
                    "contract_id",
                    contract,
                    &reason(c),
                ));
            }
        }
    }

    fn contracted_prices(&mut self) {
        const S: Schema = crate::schema::CONTRACTED_PRICES;
        let Some(rows) = self.rows(&S, |r| {
            let customer = r.required(0);
            let product = r.required(1);
            let price = non_negative(r, 2, false);
            let discount = percent(r, 3);
            let from = r.date(4, false);
            let to = r.date(5, false);
            let in_order = match (from, to) {
                (Ok(from), Ok(to)) => date_order(r, 5, from, to),
                _ => true,
            };
            let negotiated = match (price, discount) {
                (Ok(Some(p)), Ok(None)) => Ok(NegotiatedPrice::Price(p)),
                (Ok(None), Ok(Some(d))) => Ok(NegotiatedPrice::DiscountPct(d)),
                (Ok(Some(_)), Ok(Some(_))) => {
                    r.problem(2, "", "give price or discount_pct, not both");
                    Err(Bad)
                }
                (Ok(None), Ok(None)) => {
                    r.problem(2, "", "give price or discount_pct");
                    Err(Bad)
                }
                _ => Err(Bad),
            };
            let price = (|| -> Result<_, Bad> {
                if !in_order {
                    return Err(Bad);
                }
                Ok((negotiated?, from?, to?))
            })();
            Ok((
                customer.ok().flatten().map(str::to_string),
                product.ok().flatten().map(str::to_string),
                price.ok(),
            ))
        }) else {
            return;
        };
        for (line, (customer, product, price)) in rows {
            // The customer is checked on every row, refused or not.
            let (Some(customer), Some(product)) = (customer, product) else {
                continue;
            };
            let Some((customer, product)) = self.holding_ref(S.file, line, &customer, &product)
            else {
                continue;
            };
            let Some((price, valid_from, valid_to)) = price else {
                continue;
            };
            self.book.contracted_prices.push(ContractedPrice {
                customer,
                product,
                price,
                valid_from,
                valid_to,
            });
        }
    }

    fn marketing_spend(&mut self) {
        const S: Schema = crate::schema::MARKETING_SPEND;
        let Some(rows) = self.rows(&S, |r| {
            let month = r.month(0, true);
            let channel = r.required(1);
            let amount = non_negative(r, 2, true);
            Ok(Spend {
                month: month?.expect("required"),
                channel: Self::channel_name(channel?.expect("required")).into_owned(),
                amount: amount?.expect("required"),
            })
        }) else {
            return;
        };
        // A channel spelled with another case than in customers.csv (or an earlier row) would
        // leave its spend without customers: refused, at the row.
        for (line, s) in &rows {
            match self.channels.get(&s.channel.to_lowercase()) {
                Some((first, _, _)) if *first == s.channel => {}
                Some((first, file, first_line)) => self.problems.push(problem(
                    S.file,
                    *line,
                    "channel",
                    &s.channel,
                    &format!(
                        "differs only by case from '{}' ({file}:{first_line}); write \
                         channels alike",
                        shown(first)
                    ),
                )),
                None => {
                    let first = (s.channel.clone(), S.file, *line);
                    self.channels.insert(s.channel.to_lowercase(), first);
                }
            }
        }
        self.book.marketing_spend = rows.into_iter().map(|(_, s)| s).collect();
    }

    /// A channel name as both files are matched by: trimmed (any Unicode space, such as the
    /// no-break space spreadsheets leave), inner runs of spaces collapsed to one.
    fn channel_name(raw: &str) -> std::borrow::Cow<'_, str> {
        // One pass over the bytes for the common case of plain ASCII.
        let b = raw.as_bytes();
        let tidy = if raw.is_ascii() {
            b.first().is_none_or(|c| !c.is_ascii_whitespace())
                && b.last().is_none_or(|c| !c.is_ascii_whitespace())
                && !b.windows(2).any(|w| w[0] == b' ' && w[1] == b' ')
                && !b.iter().any(|&c| c.is_ascii_whitespace() && c != b' ')
        } else {
            !raw.starts_with(char::is_whitespace)
                && !raw.ends_with(char::is_whitespace)
                && !raw.contains(|c: char| c.is_whitespace() && c != ' ')
                && !raw.contains("  ")
        };
        if tidy {
            raw.into()
        } else {
            raw.split_whitespace().collect::<Vec<_>>().join(" ").into()
        }
    }

    fn usage(&mut self) {
        const S: Schema = crate::schema::USAGE;
        let Some(rows) = self.rows(&S, |r| {
            let customer = r.required(0);
            let product = r.required(1);
            let month = r.month(2, true);
            let used = non_negative(r, 3, true);
            let included = non_negative(r, 4, true);
            let usage = (|| -> Result<_, Bad> {
                Ok((
                    month?.expect("required"),
                    used?.expect("required"),
                    included?.expect("required"),
                ))
            })();
            Ok((
                customer.ok().flatten().map(str::to_string),
                product.ok().flatten().map(str::to_string),
                usage.ok(),
            ))
        }) else {
            return;
        };
        for (line, (customer, product, usage)) in rows {
            // The customer is checked on every row, refused or not.
            let (Some(customer), Some(product)) = (customer, product) else {
                continue;
            };
            let Some((customer, product)) = self.holding_ref(S.file, line, &customer, &product)
            else {
                continue;
            };
            let Some((month, used, included)) = usage else {
                continue;
            };
            self.book.usage.push(Usage {
                customer,
                product,
                month,
                used,
                included,
            });
        }
    }

    fn offers(&mut self) {
        const S: Schema = crate::schema::OFFERS;
        let Some(rows) = self.rows(&S, |r| {
            let id = r.required(0);
            let customer = r.required(1);
            let product = r.required(2);
            let kind = r.parse(3, true, |s| match s.to_ascii_lowercase().as_str() {
                "upsell" => Ok(OfferKind::Upsell),
                "cross_sell" => Ok(OfferKind::CrossSell),
                _ => Err("must be upsell or cross_sell".into()),
            });
            let offered_on = r.date(4, true);
            let outcome = r.parse(5, false, |s| match s.to_ascii_lowercase().as_str() {
                "accepted" => Ok(OfferOutcome::Accepted),
                "declined" => Ok(OfferOutcome::Declined),
                _ => Err("must be accepted, declined or empty".into()),
            });
            let decided_on = r.date(6, false);
            let in_order = match (offered_on, decided_on) {
                (Ok(offered_on), Ok(decided_on)) => date_order(r, 6, offered_on, decided_on),
                _ => true,
            };
            let offer = (|| -> Result<_, Bad> {
                if !in_order {
                    return Err(Bad);
                }
                Ok((
                    kind?.expect("required"),
                    offered_on?.expect("required"),
                    outcome?,
                    decided_on?,
                ))
            })();
            // A refused row keeps its id and references: they are checked all the same.
            Ok((
                id.ok().flatten().map(str::to_string),
                customer.ok().flatten().map(str::to_string),
                product.ok().flatten().map(str::to_string),
                r.text(7).map(str::to_string),
                offer.ok(),
            ))
        }) else {
            return;
        };
        // Ids of refused subscription rows: an offer naming one names a known line.
        let bad_lines = std::mem::take(&mut self.bad_lines);
        let refused_lines: HashSet<&str> = bad_lines.iter().filter_map(|b| b.id).collect();
        let mut seen = HashMap::new();
        let mut offers = Vec::new();
        for (line, (id, customer, product, line_id, offer)) in rows {
            let mut good = offer.is_some();
            if let Some(id) = &id {
                if let Some(first) = seen.get(id) {
                    self.problems.push(problem(
                        S.file,
                        line,
                        "id",
                        id,
                        &format!("duplicate offer id (first on line {first})"),
                    ));
                    good = false;
                } else {
                    seen.insert(id.clone(), line);
                }
            }
            let holding = match (customer, product) {
                (Some(c), Some(p)) => self.holding_ref(S.file, line, &c, &p),
                _ => None,
            };
            let line_idx = match line_id {
                Some(l) => match self.book.lines.ids.find(&l) {
                    Some(i) => Some(i),
                    None => {
                        let unread = self.unread.contains(&crate::schema::SUBSCRIPTIONS.file);
                        if !unread && !refused_lines.contains(l.as_str()) {
                            self.problems.push(problem(
                                S.file,
                                line,
                                "line_id",
                                &l,
                                "names an unknown line",
                            ));
                        }
                        good = false;
                        None
                    }
                },
                None => None,
            };
            if let (Some(id), Some((customer, product)), Some(offer), true) =
                (id, holding, offer, good)
            {
                let (kind, offered_on, outcome, decided_on) = offer;
                offers.push(Offer {
                    id,
                    customer,
                    product,
                    kind,
                    offered_on,
                    outcome,
                    decided_on,
                    line: line_idx,
                });
            }
        }
        self.book.offers = offers;
    }
}

/// What a `revises` names: a node of [`revisions`].
#[derive(Clone, Copy)]
enum Revised {
    /// A line of the same customer that starts earlier and ends before this one starts.
    Earlier(u32),
    /// A line of the same customer that starts earlier and ends later: this one ends it.
    EarlierOverlapping(u32),
    /// A line of the same customer that starts the same day (or a start is unknown): such
    /// lines are the only ones that can close a cycle.
    SameDay(u32),
    Unknown,
    Itself,
    OtherCustomer(u32),
    StartsAfter(u32),
}

/// Resolves every `revises` of subscriptions.csv, of its lines and of its refused rows
/// alike, and reports what is wrong with them, cycles included; then each revised line ends
/// the day before its earliest successor starts (rule R1: a line supersedes the one it
/// revises from its own start).
///
/// The nodes are the book's lines (`0..n`) and then the refused rows (`n + k` for
/// `bad[k]`); `revises[k]` is the line whose `revises` is `revises_text[k]`.
fn revisions(
    book: &mut Book,
    line_rows: &[u32],
    bad: &BadLines,
    revises: &[LineIdx],
    revises_text: &TextColumn,
) -> Problems {
    const FILE: &str = crate::schema::SUBSCRIPTIONS.file;
    let mut problems = Problems::default();
    // Refused rows that name a line in `revises`, after the lines that do.
    let bad_revising: Vec<usize> = (0..bad.len())
        .filter(|&k| bad.get(k).revises.is_some())
        .collect();
    if revises.is_empty() && bad_revising.is_empty() {
        return problems;
    }
    let n = book.lines.len();
    let mut bad_ids: HashMap<&str, usize> = HashMap::new();
    for (k, b) in bad.iter().enumerate() {
        if let Some(id) = b.id {
            bad_ids.entry(id).or_insert(n + k);
        }
    }
    let (lines, customers) = (&book.lines, &book.customers);
    let id_of = |node: usize| -> &str {
        if node < n {
            lines.ids.get(node as LineIdx)
        } else {
            bad.get(node - n).id.unwrap_or("")
        }
    };
    let row_of = |node: usize| -> u64 {
        if node < n {
            line_rows[node].into()
        } else {
            bad.get(node - n).line
        }
    };
    let start_of = |node: usize| -> Option<Date> {
        if node < n {
            Some(lines.items[node].start)
        } else {
            bad.get(node - n).start
        }
    };
    let customer_of = |node: usize| -> Option<&str> {
        if node < n {
            Some(customers.ids.get(lines.items[node].customer))
        } else {
            bad.get(node - n).customer
        }
    };
    // The `k`-th `revises`: the node that has it, and the id it names.
    let entry = |k: usize| -> (usize, &str) {
        match k.checked_sub(revises.len()) {
            None => (revises[k] as usize, revises_text.get(k)),
            Some(b) => {
                let b = bad_revising[b];
                (n + b, bad.get(b).revises.unwrap_or(""))
            }
        }
    };
    let resolve = |k: usize| -> Revised {
        let (node, target) = entry(k);
        let Some(t) = lines
            .ids
            .find(target)
            .map(|t| t as usize)
            .or_else(|| bad_ids.get(target).copied())
        else {
            return Revised::Unknown;
        };
        if t == node {
            return Revised::Itself;
        }
        let other = if node < n && t < n {
            lines.items[t].customer != lines.items[node].customer
        } else {
            matches!((customer_of(node), customer_of(t)), (Some(a), Some(b)) if a != b)
        };
        if other {
            return Revised::OtherCustomer(t as u32);
        }
        match (start_of(node), start_of(t)) {
            (Some(mine), Some(theirs)) if theirs > mine => Revised::StartsAfter(t as u32),
            (Some(mine), Some(theirs)) if theirs < mine => {
                // Read here, in parallel, where the revised line was just read.
                match lines.items.get(t).and_then(|l| l.end) {
                    Some(end) if end < mine => Revised::Earlier(t as u32),
                    _ => Revised::EarlierOverlapping(t as u32),
                }
            }
            _ => Revised::SameDay(t as u32),
        }
    };
    // Resolve in parallel (random lookups), then report in order.
    let mut resolved: Vec<Revised> = (0..revises.len())
        .into_par_iter()
        .with_min_len(1024)
        .map(resolve)
        .collect();
    resolved.extend((revises.len()..revises.len() + bad_revising.len()).map(resolve));
    // The edges that could close a cycle: along one, no start can be later than the one
    // before, so all are the same day; unless a refused row without a start is on it.
    let every_edge = bad.iter().any(|b| b.start.is_none() && b.id.is_some());
    let mut next: HashMap<usize, usize> = HashMap::new();
    for (k, outcome) in resolved.iter().enumerate() {
        let reason = match *outcome {
            Revised::Earlier(t) | Revised::EarlierOverlapping(t) => {
                if every_edge {
                    next.insert(entry(k).0, t as usize);
                }
                continue;
            }
            Revised::SameDay(t) => {
                next.insert(entry(k).0, t as usize);
                continue;
            }
            Revised::Unknown => "names an unknown line".to_string(),
            Revised::Itself => "a line cannot revise itself".to_string(),
            Revised::OtherCustomer(t) => format!(
                "names a line of another customer ({})",
                shown(customer_of(t as usize).unwrap_or_default())
            ),
            Revised::StartsAfter(t) => format!(
                "revises {}, which starts {}, after this line",
                shown(entry(k).1),
                start_of(t as usize)
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            ),
        };
        let (node, target) = entry(k);
        problems.push(problem(FILE, row_of(node), "revises", target, &reason));
    }
    // Cycles: every node has at most one successor, so each walk ends at a node already
    // walked, at the end of a chain, or on a cycle of the current walk.
    let mut sources: Vec<usize> = next.keys().copied().collect();
    sources.sort_unstable();
    // 1 on the current walk, 2 walked.
    let (mut state, mut path) = (HashMap::<usize, u8>::new(), Vec::new());
    for first in sources {
        let mut v = first;
        while !state.contains_key(&v) {
            state.insert(v, 1);
            path.push(v);
            match next.get(&v) {
                Some(&w) => v = w,
                None => break,
            }
        }
        if state.get(&v) == Some(&1) && next.contains_key(&v) {
            let at = path.iter().position(|&x| x == v).expect("on the walk");
            let cycle = &path[at..];
            let start = (0..cycle.len())
                .min_by_key(|&i| row_of(cycle[i]))
                .expect("a cycle has a node");
            let order: Vec<usize> = cycle[start..]
                .iter()
                .chain(&cycle[..start])
                .copied()
                .collect();
            // A long cycle is named by its first lines and its length.
            const NAMED: usize = 10;
            let mut chain: Vec<String> = order
                .iter()
                .chain(&order[..1])
                .take(NAMED + 1)
                .map(|&x| shown(id_of(x)).into_owned())
                .collect();
            if order.len() > NAMED {
                chain.push(format!("… ({} lines in the cycle)", order.len()));
            }
            problems.push(problem(
                FILE,
                row_of(order[0]),
                "revises",
                id_of(next[&order[0]]),
                &format!("a revises cycle: {}", chain.join(" -> ")),
            ));
        }
        for &x in &path {
            state.insert(x, 2);
        }
        path.clear();
    }
    // Supersession: the revised line ends the day before its earliest successor starts.
    let items = &mut book.lines.items;
    for (&node, outcome) in revises.iter().zip(&resolved) {
        let (t, overlapping) = match *outcome {
            Revised::Earlier(t) => (t, false),
            Revised::EarlierOverlapping(t) | Revised::SameDay(t) => (t, true),
            _ => continue,
        };
        if t as usize >= n {
            continue;
        }
        items[node as usize].revises_ref = LineRef::new(t);
        // Most revised lines already end before their successor starts.
        if let Some(day) = overlapping
            .then(|| day_before(items[node as usize].start))
            .flatten()
        {
            let end = &mut items[t as usize].end;
            *end = Some(end.map_or(day, |e| e.min(day)));
        }
    }
    problems
}

/// The day before `day` (`None` before the first day there is).
fn day_before(day: Date) -> Option<Date> {
    if day.day() > 1 {
        Date::new(day.year(), day.month(), day.day() - 1).ok()
    } else {
        day.yesterday().ok()
    }
}
