//! The tables of the interchange format: one loader each, then the checks across tables.

use crate::field::{Bad, Field, Reason};
use crate::problem::{BookErrors, Problem};
use crate::table::{self, Row, Schema};
use crate::{BookSource, ImportOptions, Progress};
use expansa_ledger::{
    line_mrr, Book, Contract, ContractedPrice, Currency, CustomerIdx, Date, Decimal, FxRate,
    Interner, Line, LineIdx, LineRef, Month, NegotiatedPrice, Offer, OfferKind, OfferOutcome,
    PackedMoney, Product, ProductIdx, ProductKind, RenewalPricing, SmallDecimal, Spend, TextColumn,
    Usage,
};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

/// Total MRR of all lines, in whole currency units, beyond which sums could leave the exact
/// range; a book this large is refused rather than risked.
const BOOK_LIMIT_UNITS: i128 = 100_000_000_000_000_000;

/// Longest billing period accepted (100 years).
const MAX_PERIOD_MONTHS: i64 = 1200;

pub(crate) fn read_all(
    source: &dyn BookSource,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<Book, BookErrors> {
    let mut loader = Loader {
        source,
        progress,
        book: Book {
            currency: Some(options.currency),
            ..Book::default()
        },
        problems: Vec::new(),
        fx: HashMap::new(),
        line_rows: Vec::new(),
    };
    if let Some(problem) = source.unavailable() {
        return Err(BookErrors(vec![problem]));
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
    let Loader {
        book, mut problems, ..
    } = loader;
    if problems.is_empty() {
        Ok(book)
    } else {
        let order = |f: &str| {
            FILE_ORDER
                .iter()
                .position(|x| *x == f)
                .unwrap_or(usize::MAX)
        };
        problems.sort_by(|a, b| {
            (order(&a.file), a.line, &a.column, &a.reason).cmp(&(
                order(&b.file),
                b.line,
                &b.column,
                &b.reason,
            ))
        });
        problems.dedup();
        Err(BookErrors(problems))
    }
}

const FILE_ORDER: &[&str] = &[
    "subscriptions.csv",
    "customers.csv",
    "products.csv",
    "contracts.csv",
    "contracted_prices.csv",
    "fx_rates.csv",
    "marketing_spend.csv",
    "usage.csv",
    "offers.csv",
];

struct Loader<'a> {
    source: &'a dyn BookSource,
    progress: &'a dyn Progress,
    book: Book,
    problems: Vec<Problem>,
    fx: HashMap<(Month, Currency), Decimal>,
    /// File line of each subscription line, for messages about duplicates.
    line_rows: Vec<u32>,
}

/// Rows of a small table, parsed in parallel, with their file lines.
type Rows<T> = Vec<(u64, T)>;

fn problem(file: &str, line: u64, column: &str, value: &str, reason: &str) -> Problem {
    Problem {
        file: file.into(),
        line,
        column: column.into(),
        value: value.into(),
        reason: reason.into(),
    }
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
            |row, acc: &mut Rows<T>| {
                if let Ok(v) = parse(row) {
                    acc.push((row.line, v));
                }
            },
            |chunk, _| out.extend(chunk),
        );
        self.found(read).then_some(out)
    }

    /// Keeps the problems of a table read; whether the file was there.
    fn found(&mut self, read: Result<Option<Vec<Problem>>, Problem>) -> bool {
        match read {
            Ok(Some(problems)) => {
                self.problems.extend(problems);
                true
            }
            Ok(None) => false,
            Err(p) => {
                self.problems.push(p);
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
        let Some(rows) = self.rows(&S, |r| {
            let month = r.month(0, true);
            let currency = r.parse(1, true, currency_code);
            let rate = r.decimal(2, true)?.expect("required");
            if rate <= Decimal::ZERO {
                r.problem(2, &rate.to_string(), "must be greater than 0");
                return Err(Bad);
            }
            Ok(FxRate {
                month: month?.expect("required"),
                currency: currency?.expect("required"),
                rate,
            })
        }) else {
            return;
        };
        for (line, rate) in rows {
            if self
                .fx
                .insert((rate.month, rate.currency), rate.rate)
                .is_some()
            {
                self.problems.push(problem(
                    S.file,
                    line,
                    "month",
                    &rate.month.to_string(),
                    &format!("second rate for {} in this month", rate.currency),
                ));
            }
            self.book.fx_rates.push(rate);
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
            Ok((
                id?.expect("required").to_string(),
                r.text(1).map(str::to_string),
                r.text(2).map(str::to_string),
                Product {
                    name: None,
                    family: 0,
                    tier: tier?,
                    kind: kind?.unwrap_or_default(),
                    list_price: list_price?,
                    price_term_months: term?.map_or(12, |t| t as u32),
                    currency: currency?,
                },
            ))
        }) else {
            return;
        };
        let products = &mut self.book.products;
        for (line, (id, name, family, mut product)) in rows {
            let (idx, seen) = products.ids.intern(&id);
            if seen {
                self.problems
                    .push(problem(S.file, line, "id", &id, "duplicate product id"));
                continue;
            }
            debug_assert_eq!(idx as usize, products.items.len());
            product.family = products.families.intern(family.as_deref().unwrap_or(&id)).0;
            product.name = name;
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
            |r, c: &mut Chunk| {
                let id = r.required(0);
                let registered = r.date(2, false);
                if let (Ok(Some(id)), Ok(registered)) = (id, registered) {
                    c.rows.push((r.line, registered));
                    c.text[0].push(id);
                    for (k, col) in [1, 3, 4, 5].into_iter().enumerate() {
                        if r.has(col) {
                            c.text[k + 1].push(r.text(col).unwrap_or(""));
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
                for (name, values) in &chunk.extra {
                    match customers.attributes.iter_mut().find(|(n, _)| n == name) {
                        Some((_, column)) => column.append(values),
                        None => customers.attributes.push((name.clone(), values.clone())),
                    }
                }
            },
        );
        if !self.found(read) {
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
            /// Ids and lines of rows with problems: references to them are not reported again,
            /// and they still count when looking for duplicate ids.
            bad_ids: Vec<(String, u64)>,
            last_customer: CustomerCursor,
            recent_products: RecentIds,
        }
        let reporting = self.book.currency();
        let fx = &self.fx;
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
        let mut bad_ids: Vec<(String, u64)> = Vec::new();
        let read = table::read(
            self.source,
            &S,
            self.progress,
            |r, c: &mut Chunk| {
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
                let period = r.integer(8, false, 1).and_then(|p| match p {
                    Some(p) if p > MAX_PERIOD_MONTHS => {
                        r.problem(
                            8,
                            &p.to_string(),
                            &format!("must be at most {MAX_PERIOD_MONTHS}"),
                        );
                        Err(Bad)
                    }
                    p => Ok(p),
                });
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
                let parsed = (|| {
                    let (start, end) = (start?.expect("required"), end?);
                    if !date_order(r, 10, Some(start), end) {
                        return Err(Bad);
                    }
                    let currency = currency?.unwrap_or(reporting);
                    let rate = if currency == reporting {
                        Decimal::ONE
                    } else {
                        match fx.get(&(Month::of(start), currency)) {
                            Some(rate) => *rate,
                            None => {
                                r.problem(
                                    7,
                                    currency.code(),
                                    &format!(
                                        "no rate in fx_rates.csv for {} to {} in {}",
                                        currency,
                                        reporting,
                                        Month::of(start)
                                    ),
                                );
                                return Err(Bad);
                            }
                        }
                    };
                    let quantity = quantity?.unwrap_or(ONE);
                    let unit_price = unit_price?.expect("required");
                    let discount_pct = discount?.unwrap_or(SmallDecimal::ZERO);
                    let period = period?.unwrap_or(1) as u16;
                    let mrr = line_mrr(
                        quantity.get(),
                        unit_price.get(),
                        discount_pct.get(),
                        u32::from(period),
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
                        billing_period_months: period,
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
                    if let Ok(Some(id)) = id {
                        c.bad_ids.push((id.to_string(), r.line));
                    }
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
                bad_ids.extend(chunk.bad_ids);
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
        if !self.found(read) {
            self.problems.push(problem(
                S.file,
                0,
                "file",
                "",
                "required file is missing from the book folder",
            ));
            return;
        }
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
        // Rows with problems keep their ids for the duplicate check.
        let mut first_bad: HashMap<&str, u64> = HashMap::new();
        for (id, row) in &bad_ids {
            let good = index
                .find(id)
                .map(|i| u64::from(self.line_rows[i as usize]));
            let earlier_bad = first_bad.get(id.as_str()).copied();
            match [good, earlier_bad]
                .into_iter()
                .flatten()
                .filter(|r| r < row)
                .min()
            {
                Some(first) => self.problems.push(problem(
                    S.file,
                    *row,
                    "id",
                    id,
                    &format!("duplicate line id (first on line {first})"),
                )),
                None => {
                    first_bad.insert(id, *row);
                    if let Some(good) = good.filter(|g| g > row) {
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
        let bad_ids: HashSet<&str> = bad_ids.iter().map(|(id, _)| id.as_str()).collect();
        lines.ids = index;
        book.lines = lines;
        // Resolve every `revises` in parallel (random lookups), then apply in order.
        enum Revised {
            Line(LineIdx),
            Unknown,
            Itself,
            OtherCustomer(CustomerIdx),
        }
        let resolved: Vec<Revised> = (0..revises.len())
            .into_par_iter()
            .with_min_len(1024)
            .map(|k| {
                let idx = revises[k];
                match book.lines.ids.find(revises_text.get(k)) {
                    None => Revised::Unknown,
                    Some(t) if t == idx => Revised::Itself,
                    Some(t) => {
                        let owner = book.lines.items[t as usize].customer;
                        if owner == book.lines.items[idx as usize].customer {
                            Revised::Line(t)
                        } else {
                            Revised::OtherCustomer(owner)
                        }
                    }
                }
            })
            .collect();
        for (k, outcome) in resolved.into_iter().enumerate() {
            let (idx, target) = (revises[k], revises_text.get(k));
            let row = u64::from(self.line_rows[idx as usize]);
            let reason = match outcome {
                Revised::Line(t) => {
                    book.lines.items[idx as usize].revises_ref = LineRef::new(t);
                    continue;
                }
                Revised::Unknown if bad_ids.contains(target) => continue,
                Revised::Unknown => "names an unknown line".to_string(),
                Revised::Itself => "a line cannot revise itself".to_string(),
                Revised::OtherCustomer(c) => format!(
                    "names a line of another customer ({})",
                    book.customers.ids.get(c)
                ),
            };
            self.problems
                .push(problem(S.file, row, "revises", target, &reason));
        }
        let total_units: i128 = book
            .lines
            .items
            .par_iter()
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
            let uplift = r.decimal(5, false);
            let term = r.integer(6, false, 1);
            let (start, end) = (start?, end?);
            if !date_order(r, 3, start, end) {
                return Err(Bad);
            }
            let pricing = pricing?.unwrap_or_default();
            let uplift = uplift?;
            if pricing == RenewalPricing::Uplift && uplift.is_none() {
                r.problem(5, "", "required when renewal_pricing is uplift");
                return Err(Bad);
            }
            Ok((
                id?.expect("required").to_string(),
                customer?.expect("required").to_string(),
                start.expect("required"),
                end,
                pricing,
                uplift,
                term?.map(|t| t as u32),
            ))
        }) else {
            return;
        };
        let mut seen = HashMap::new();
        for (line, (id, customer, start, end, pricing, uplift, term)) in rows {
            if let Some(first) = seen.insert(id.clone(), line) {
                self.problems.push(problem(
                    S.file,
                    line,
                    "id",
                    &id,
                    &format!("duplicate contract id (first on line {first})"),
                ));
                continue;
            }
            let Some(customer) = self.customer_ref(S.file, line, &customer) else {
                continue;
            };
            self.book.contracts.push(Contract {
                id,
                customer,
                start,
                end,
                renewal_pricing: pricing,
                renewal_uplift_pct: uplift,
                renewal_term_months: term,
            });
        }
        // A line's contract must belong to the line's customer.
        let owner: HashMap<&str, CustomerIdx> = self
            .book
            .contracts
            .iter()
            .map(|k| (k.id.as_str(), k.customer))
            .collect();
        let lines = &self.book.lines;
        for (i, line) in lines.items.iter().enumerate() {
            let contract = lines.contract_id(i as u32);
            if let Some(&c) = owner.get(contract) {
                if c != line.customer {
                    self.problems.push(problem(
                        "subscriptions.csv",
                        self.line_rows[i].into(),
                        "contract_id",
                        contract,
                        &format!(
                            "contract belongs to another customer ({})",
                            self.book.customers.ids.get(c)
                        ),
                    ));
                }
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
            let (from, to) = (from?, to?);
            if !date_order(r, 5, from, to) {
                return Err(Bad);
            }
            let negotiated = match (price?, discount?) {
                (Some(p), None) => NegotiatedPrice::Price(p),
                (None, Some(d)) => NegotiatedPrice::DiscountPct(d),
                (Some(_), Some(_)) => {
                    r.problem(2, "", "give price or discount_pct, not both");
                    return Err(Bad);
                }
                (None, None) => {
                    r.problem(2, "", "give price or discount_pct");
                    return Err(Bad);
                }
            };
            Ok((
                customer?.expect("required").to_string(),
                product?.expect("required").to_string(),
                negotiated,
                from,
                to,
            ))
        }) else {
            return;
        };
        for (line, (customer, product, price, valid_from, valid_to)) in rows {
            let Some((customer, product)) = self.holding_ref(S.file, line, &customer, &product)
            else {
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
                channel: channel?.expect("required").to_string(),
                amount: amount?.expect("required"),
            })
        }) else {
            return;
        };
        self.book.marketing_spend = rows.into_iter().map(|(_, s)| s).collect();
    }

    fn usage(&mut self) {
        const S: Schema = crate::schema::USAGE;
        let Some(rows) = self.rows(&S, |r| {
            let customer = r.required(0);
            let product = r.required(1);
            let month = r.month(2, true);
            let used = non_negative(r, 3, true);
            let included = non_negative(r, 4, true);
            Ok((
                customer?.expect("required").to_string(),
                product?.expect("required").to_string(),
                month?.expect("required"),
                used?.expect("required"),
                included?.expect("required"),
            ))
        }) else {
            return;
        };
        for (line, (customer, product, month, used, included)) in rows {
            let Some((customer, product)) = self.holding_ref(S.file, line, &customer, &product)
            else {
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
            let (offered_on, decided_on) = (offered_on?, decided_on?);
            if !date_order(r, 6, offered_on, decided_on) {
                return Err(Bad);
            }
            Ok((
                id?.expect("required").to_string(),
                customer?.expect("required").to_string(),
                product?.expect("required").to_string(),
                kind?.expect("required"),
                offered_on.expect("required"),
                outcome?,
                decided_on,
                r.text(7).map(str::to_string),
            ))
        }) else {
            return;
        };
        let mut seen = HashMap::new();
        for (line, (id, customer, product, kind, offered_on, outcome, decided_on, line_id)) in rows
        {
            if let Some(first) = seen.insert(id.clone(), line) {
                self.problems.push(problem(
                    S.file,
                    line,
                    "id",
                    &id,
                    &format!("duplicate offer id (first on line {first})"),
                ));
                continue;
            }
            let Some((customer, product)) = self.holding_ref(S.file, line, &customer, &product)
            else {
                continue;
            };
            let line_idx = match line_id {
                Some(l) => match self.book.lines.ids.find(&l) {
                    Some(i) => Some(i),
                    None => {
                        self.problems.push(problem(
                            S.file,
                            line,
                            "line_id",
                            &l,
                            "names an unknown line",
                        ));
                        continue;
                    }
                },
                None => None,
            };
            self.book.offers.push(Offer {
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
}
