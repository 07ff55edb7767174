use expansa_ledger::{Book, Currency, CustomerIdx, Date, LineIdx, Money, Month, Offer, ProductIdx};
use rayon::prelude::*;
use std::fmt;
use std::str::FromStr;

/// A named set of movement rules.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Rules {
    /// Conexa's cross-sell widget: cross-sell only for customers registered before the month,
    /// never for lines starting on the customer's first contract day.
    #[default]
    Conexa,
    /// ChartMogul: every new line of a paying customer is expansion.
    Chartmogul,
}

impl Rules {
    pub fn name(self) -> &'static str {
        match self {
            Rules::Conexa => "conexa",
            Rules::Chartmogul => "chartmogul",
        }
    }
}

impl FromStr for Rules {
    type Err = String;
    fn from_str(s: &str) -> Result<Rules, String> {
        match s {
            "conexa" => Ok(Rules::Conexa),
            "chartmogul" => Ok(Rules::Chartmogul),
            _ => Err(format!(
                "unknown rules {s:?} (expected conexa or chartmogul)"
            )),
        }
    }
}

impl fmt::Display for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of an MRR movement.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Kind {
    New,
    CrossSell,
    Upsell,
    Reactivation,
    Downsell,
    Churn,
    /// Revaluation: the part of an amendment's change that comes from the exchange rate moving
    /// between the predecessor's valuation month and the new line's (`docs/movement-rules.md`).
    Fx,
    /// MRR entering a filtered report from the customer's lines outside the filter (a plan
    /// switch into the filtered family, say); always zero without a product filter.
    EnteringSegment,
    /// MRR leaving a filtered report to the customer's lines outside the filter (negative).
    LeavingSegment,
}

/// How many kinds of movement there are.
pub const KINDS: usize = 9;

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; KINDS] = [
        Kind::New,
        Kind::CrossSell,
        Kind::Upsell,
        Kind::Reactivation,
        Kind::Downsell,
        Kind::Churn,
        Kind::Fx,
        Kind::EnteringSegment,
        Kind::LeavingSegment,
    ];

    /// The kind whose JSON key is `key`.
    pub fn from_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// The JSON key of the kind (`cross_sell`).
    pub fn key(self) -> &'static str {
        match self {
            Kind::New => "new",
            Kind::CrossSell => "cross_sell",
            Kind::Upsell => "upsell",
            Kind::Reactivation => "reactivation",
            Kind::Downsell => "downsell",
            Kind::Churn => "churn",
            Kind::Fx => "fx",
            Kind::EnteringSegment => "entering_segment",
            Kind::LeavingSegment => "leaving_segment",
        }
    }
}

/// One movement of one customer in one month, with the lines that caused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movement {
    pub customer: CustomerIdx,
    pub month: Month,
    pub kind: Kind,
    /// Positive for gains, negative for losses.
    pub amount: Money,
    /// The lines behind it: for an amendment, the new line then its predecessor.
    pub lines: Vec<LineIdx>,
}

/// What to compute.
#[derive(Clone, Copy, Debug)]
pub struct Query {
    pub from: Month,
    pub to: Month,
    pub rules: Rules,
}

/// The totals of one month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonthTotals {
    pub month: Month,
    pub mrr_start: Money,
    /// Indexed like [`Kind::ALL`].
    pub movements: [Money; KINDS],
    /// The movements of the customers who were paying at the start of the month (MRR > 0 at
    /// the end of the month before; in the filter, when filtered): the population of NRR,
    /// GRR and the expansion and contraction rates. Indexed like [`Kind::ALL`].
    pub retained: [Money; KINDS],
    pub mrr_end: Money,
    pub customers_start: u64,
    pub customers_end: u64,
}

impl MonthTotals {
    /// The month's movement of `kind`.
    pub fn get(&self, kind: Kind) -> Money {
        self.movements[kind as usize]
    }

    /// The movement of `kind` of the customers paying at the start of the month.
    pub fn retained(&self, kind: Kind) -> Money {
        self.retained[kind as usize]
    }
}

/// The movement report: every month of the range, quiet ones too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub currency: Currency,
    pub rules: Rules,
    pub months: Vec<MonthTotals>,
}

/// The exact sums a movement report is made of: per-thread sums while customers are
/// processed, and what a group of customers (a Spark worker's) contributes to a report of a
/// larger book. Every figure is a sum over customers, so the sums of groups added
/// ([`Sums::add`], or cell by cell: [`Sums::cells`], [`Sums::add_cell`]) are the sums of the
/// whole book, and [`Sums::report`] is its report.
#[derive(Clone)]
pub struct Sums {
    from: Month,
    /// MRR and paying customers at the end of the month before `from`. Amounts are summed as
    /// exact integers of `10^-SCALE` units (the book's total is bounded, so they fit).
    opening: i128,
    opening_customers: i64,
    movements: Vec<[i128; KINDS]>,
    retained: Vec<[i128; KINDS]>,
    /// Customers gained minus customers lost, per month.
    customer_delta: Vec<i64>,
}

impl Sums {
    /// No customer's sums, for `q`'s months.
    pub fn new(q: &Query) -> Sums {
        let n = (q.to.since(q.from) + 1) as usize;
        Sums {
            from: q.from,
            opening: 0,
            opening_customers: 0,
            movements: vec![[0; KINDS]; n],
            retained: vec![[0; KINDS]; n],
            customer_delta: vec![0; n],
        }
    }

    fn merge(mut self, other: Sums) -> Sums {
        self.add(&other, 1);
        self
    }

    /// Adds `other`'s sums times `sign` (1, or -1 to take away the sums of some of the
    /// customers summed here).
    pub fn add(&mut self, other: &Sums, sign: i64) {
        let units = i128::from(sign);
        self.opening += units * other.opening;
        self.opening_customers += sign * other.opening_customers;
        let pairs = self.movements.iter_mut().zip(&other.movements);
        for (a, b) in pairs.chain(self.retained.iter_mut().zip(&other.retained)) {
            for k in 0..KINDS {
                a[k] += units * b[k];
            }
        }
        for (a, b) in self.customer_delta.iter_mut().zip(&other.customer_delta) {
            *a += sign * b;
        }
    }
}

/// A sum of amounts back as money.
fn money(units: i128) -> Money {
    Money::from_scaled(units).expect("sums of a book's MRR fit (the import bounds its total)")
}

/// Receives what [`customer_movements`] finds.
trait Sink {
    /// MRR of the customer at the end of the month before the range.
    fn opening(&mut self, mrr: Money);
    /// The customer starts (+1) or stops (-1) paying in `month`.
    fn customers(&mut self, month: Month, delta: i64);
    /// A movement; `retained` when the customer was paying at the start of the month.
    fn movement(
        &mut self,
        month: Month,
        kind: Kind,
        amount: Money,
        lines: &[LineIdx],
        retained: bool,
    );
}

impl Sink for Sums {
    fn opening(&mut self, mrr: Money) {
        self.opening += mrr.scaled();
        if mrr.is_positive() {
            self.opening_customers += 1;
        }
    }
    fn customers(&mut self, month: Month, delta: i64) {
        self.customer_delta[month.since(self.from) as usize] += delta;
    }
    fn movement(
        &mut self,
        month: Month,
        kind: Kind,
        amount: Money,
        _lines: &[LineIdx],
        retained: bool,
    ) {
        let i = month.since(self.from) as usize;
        self.movements[i][kind as usize] += amount.scaled();
        if retained {
            self.retained[i][kind as usize] += amount.scaled();
        }
    }
}

struct TrailSink<'a> {
    book: &'a Book,
    customer: CustomerIdx,
    out: Vec<Movement>,
}

impl TrailSink<'_> {
    /// The movements in month order, then by kind and by their lines in canonical order: an
    /// order that does not follow the rows of the files.
    fn into_trail(mut self) -> Vec<Movement> {
        let book = self.book;
        self.out.sort_by(|a, b| {
            (a.month, a.kind).cmp(&(b.month, b.kind)).then_with(|| {
                match (a.lines.first(), b.lines.first()) {
                    (Some(&x), Some(&y)) => canonical_cmp(book, x, y),
                    _ => a.lines.len().cmp(&b.lines.len()),
                }
            })
        });
        self.out
    }
}

impl Sink for TrailSink<'_> {
    fn opening(&mut self, _mrr: Money) {}
    fn customers(&mut self, _month: Month, _delta: i64) {}
    fn movement(
        &mut self,
        month: Month,
        kind: Kind,
        amount: Money,
        lines: &[LineIdx],
        _retained: bool,
    ) {
        let mut lines = lines.to_vec();
        // The lines of a sale or a loss listed in canonical order, so that the trail does not
        // follow the rows; an amendment's stay as they are: the new line, then its predecessor.
        if matches!(
            kind,
            Kind::New | Kind::CrossSell | Kind::Reactivation | Kind::Churn
        ) && lines.len() > 1
        {
            lines.sort_unstable_by(|&x, &y| canonical_cmp(self.book, x, y));
        }
        self.out.push(Movement {
            customer: self.customer,
            month,
            kind,
            amount,
            lines,
        });
    }
}

/// Which lines a report looks at: all of them, or those of some customers and some products
/// (`--where segment=smb --where family=payroll`).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// By customer index; `None` keeps every customer.
    pub customers: Option<Vec<bool>>,
    /// By product index; `None` keeps every product.
    pub products: Option<Vec<bool>>,
}

impl Selection {
    /// Every line.
    pub fn all() -> Selection {
        Selection::default()
    }

    /// Whether line `l` is selected.
    pub fn keeps(&self, book: &Book, l: LineIdx) -> bool {
        let line = &book.lines.items[l as usize];
        self.keeps_customer(line.customer) && self.keeps_product(line.product)
    }

    /// Whether customer `c` passes the customer filters.
    pub fn keeps_customer(&self, c: CustomerIdx) -> bool {
        self.customers.as_ref().is_none_or(|keep| keep[c as usize])
    }

    /// Whether product `p` passes the product filters.
    pub fn keeps_product(&self, p: ProductIdx) -> bool {
        self.products.as_ref().is_none_or(|keep| keep[p as usize])
    }

    /// Whether an offer is to a selected customer, of a selected product.
    pub fn keeps_offer(&self, o: &Offer) -> bool {
        self.keeps_customer(o.customer) && self.keeps_product(o.product)
    }
}

impl Selection {
    /// The lines that pass `filters` (`key=value`): customer attributes (`segment`,
    /// `country`, `channel`, `name`, any other customers.csv column, `customer` for the id)
    /// and the product `family` or `product`.
    /// Values of one key are alternatives; different keys must all hold.
    pub fn from_filters(book: &Book, filters: &[(String, String)]) -> Result<Selection, String> {
        let mut by_key: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (key, value) in filters {
            by_key.entry(key.as_str()).or_default().push(value.as_str());
        }
        let mut selection = Selection::all();
        for (key, values) in by_key {
            let customers = &book.customers;
            check_values(book, key, &values)?;
            let keep_customer: Option<Vec<bool>> = match (key, customers.attribute(key)) {
                ("customer", _) => Some(
                    customers
                        .ids
                        .iter()
                        .map(|id| values.contains(&id))
                        .collect(),
                ),
                ("family" | "product", _) => None,
                // Channels are written alike by the import (spaces folded, and names that differ
                // only by case refused), so a channel filter folds spaces and case too.
                ("channel", Some(col)) => {
                    let wanted: Vec<String> = values.iter().map(|v| fold_channel(v)).collect();
                    Some(
                        (0..customers.len())
                            .map(|c| {
                                col.get_opt(c)
                                    .is_some_and(|v| wanted.contains(&fold_channel(v)))
                            })
                            .collect(),
                    )
                }
                (_, Some(col)) => Some(
                    (0..customers.len())
                        .map(|c| col.get_opt(c).is_some_and(|v| values.contains(&v)))
                        .collect(),
                ),
                (_, None) => None,
            };
            if let Some(keep) = keep_customer {
                selection.customers = Some(match selection.customers.take() {
                    Some(before) => before.iter().zip(&keep).map(|(a, b)| *a && *b).collect(),
                    None => keep,
                });
                continue;
            }
            let products = &book.products;
            let keep_products: Vec<bool> = match key {
                "family" => products
                    .items
                    .iter()
                    .map(|p| values.contains(&products.families.get(p.family)))
                    .collect(),
                "product" => products.ids.iter().map(|id| values.contains(&id)).collect(),
                _ => {
                    let mut known = vec!["segment", "country", "channel", "name", "customer"];
                    known.extend(customers.attributes.iter().map(|(n, _)| n.as_str()));
                    known.extend(["family", "product"]);
                    return Err(format!(
                        "--where {key}=...: unknown filter (use {})",
                        known.join(", ")
                    ));
                }
            };
            selection.products = Some(match selection.products.take() {
                Some(before) => before
                    .iter()
                    .zip(&keep_products)
                    .map(|(a, b)| *a && *b)
                    .collect(),
                None => keep_products,
            });
        }
        Ok(selection)
    }
}

/// A channel as filters compare it: runs of spaces folded to one, lower case (the import
/// writes channels with spaces folded and refuses names that differ only by case).
fn fold_channel(v: &str) -> String {
    v.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Refuses a filter value that no customer or product has (a typo would otherwise give a
/// report of zeros), naming the values the book has. Channels compare without case and
/// with spaces folded, as the import writes them; every other value exactly.
fn check_values(book: &Book, key: &str, values: &[&str]) -> Result<(), String> {
    let fold = fold_channel;
    let known: std::collections::BTreeSet<String> = match key {
        "customer" => book.customers.ids.iter().map(str::to_string).collect(),
        "product" => book.products.ids.iter().map(str::to_string).collect(),
        "family" => book.products.families.iter().map(str::to_string).collect(),
        _ => match book.customers.attribute(key) {
            Some(col) => (0..book.customers.len())
                .filter_map(|c| col.get_opt(c))
                .map(|v| {
                    if key == "channel" {
                        fold(v)
                    } else {
                        v.to_string()
                    }
                })
                .collect(),
            None => return Ok(()), // an unknown key: said by the caller
        },
    };
    for &v in values {
        let v_known = if key == "channel" {
            fold(v)
        } else {
            v.to_string()
        };
        if known.contains(&v_known) {
            continue;
        }
        let listed: Vec<&str> = known.iter().take(12).map(String::as_str).collect();
        let more = known.len().saturating_sub(listed.len());
        let has = match (listed.is_empty(), more) {
            (true, _) => format!("the book has no {key} values"),
            (false, 0) => format!("the book has: {}", listed.join(", ")),
            (false, n) => format!("the book has: {}, and {n} more", listed.join(", ")),
        };
        return Err(format!("--where {key}={v}: no {key} is {v:?} ({has})"));
    }
    Ok(())
}

/// The lines of each selected customer, in file order: `order[start[c]..start[c + 1]]`, with,
/// when the selection filters products, which of them are in the filter.
///
/// A product filter (`--where family=...`) keeps all of a customer's lines here: the lines
/// outside the filter still decide whether the customer is paying, and which line replaced
/// which, so that a switch to a plan outside the filter is MRR leaving the segment, not churn
/// (`docs/movement-rules.md`, "Filtered reports").
pub struct ByCustomer {
    start: Vec<u32>,
    order: Vec<LineIdx>,
    /// Parallel to `order`: whether the line passes the product filter; `None` without one.
    in_filter: Option<Vec<bool>>,
    /// The selection the lines were kept by.
    selection: Selection,
}

impl ByCustomer {
    /// Groups the lines of the customers `selection` keeps by customer.
    pub fn new(book: &Book, selection: &Selection) -> ByCustomer {
        let n = book.customers.len();
        let keeps = |i: usize| selection.keeps_customer(book.lines.items[i].customer);
        let mut start = vec![0u32; n + 1];
        for (i, line) in book.lines.items.iter().enumerate() {
            if keeps(i) {
                start[line.customer as usize + 1] += 1;
            }
        }
        for c in 0..n {
            start[c + 1] += start[c];
        }
        let mut next = start.clone();
        let mut order = vec![0; start[n] as usize];
        for (i, line) in book.lines.items.iter().enumerate() {
            if keeps(i) {
                let slot = &mut next[line.customer as usize];
                order[*slot as usize] = i as LineIdx;
                *slot += 1;
            }
        }
        let in_filter = selection.products.as_ref().map(|_| {
            order
                .par_iter()
                .map(|&l| selection.keeps_product(book.lines.items[l as usize].product))
                .collect()
        });
        ByCustomer {
            start,
            order,
            in_filter,
            selection: selection.clone(),
        }
    }

    /// The selection these lines were kept by (for what else it filters, such as offers).
    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    /// All lines of customer `c` (none when the customer is not selected), in and out of a
    /// product filter.
    pub fn lines(&self, c: usize) -> &[LineIdx] {
        &self.order[self.start[c] as usize..self.start[c + 1] as usize]
    }

    /// Which of [`ByCustomer::lines`] pass the product filter (same order); `None` when there
    /// is no product filter (all of them do).
    pub fn in_filter(&self, c: usize) -> Option<&[bool]> {
        let range = self.start[c] as usize..self.start[c + 1] as usize;
        self.in_filter.as_ref().map(|f| &f[range])
    }

    /// The lines of customer `c` that pass the filter.
    pub fn selected_lines(&self, c: usize) -> Vec<LineIdx> {
        let lines = self.lines(c);
        match self.in_filter(c) {
            None => lines.to_vec(),
            Some(keep) => lines
                .iter()
                .zip(keep)
                .filter(|(_, &k)| k)
                .map(|(&l, _)| l)
                .collect(),
        }
    }

    /// Number of customers (selected or not).
    pub fn customers(&self) -> usize {
        self.start.len() - 1
    }
}

/// The movement report of the whole book.
///
/// # Panics
/// When `q.from` is after `q.to` (callers validate the range first, as the CLI does).
pub fn report(book: &Book, q: &Query) -> Report {
    report_selected(book, q, &ByCustomer::new(book, &Selection::all()))
}

/// The movement report of the lines grouped in `by_customer`.
///
/// # Panics
/// When `q.from` is after `q.to`.
pub fn report_selected(book: &Book, q: &Query, by_customer: &ByCustomer) -> Report {
    assert!(q.from <= q.to, "the range must not be empty");
    part_sums(book, q, by_customer).report(book.currency(), q)
}

/// The sums of a movement report over every customer of a book, with the book's lines grouped
/// by customer: computed once per book and query, then used by [`report_of_parts`] for every
/// later state of the book.
pub struct BaseSums {
    query: Query,
    by_customer: ByCustomer,
    sums: Sums,
}

impl BaseSums {
    /// The sums of every customer of `base` (the work of a whole report).
    ///
    /// # Panics
    /// When `q.from` is after `q.to`.
    pub fn new(base: &Book, q: &Query) -> BaseSums {
        assert!(q.from <= q.to, "the range must not be empty");
        let by_customer = ByCustomer::new(base, &Selection::all());
        let sums = part_sums(base, q, &by_customer);
        BaseSums {
            query: *q,
            by_customer,
            sums,
        }
    }

    /// The query the sums are of.
    pub fn query(&self) -> &Query {
        &self.query
    }
}

/// The changes to a base book's sums that the customers changed since make, kept up to date
/// piece by piece ([`report_of_parts`]): each changed customer's sums in its latest piece
/// minus its sums in the base.
#[derive(Default)]
pub struct PartsSums {
    /// How many pieces are summed.
    pieces: usize,
    delta: Option<Sums>,
    /// By customer id: its sums now minus its sums in the base.
    by_customer: std::collections::HashMap<String, Sums>,
}

/// The movement report of every line of a book held as a base and pieces: `base` without the
/// changed customers, and each changed customer's rows in the last of `pieces` that holds it
/// (`(book, customers)`, oldest first; each piece holds all the rows of its customers, with
/// the same products, rates and reporting currency as the base). The store keeps its latest
/// book so: an earlier book, and pieces of the customers changed since, read as they change.
/// Every figure of the report is a sum over customers (exact: integers of 10^-SCALE units and
/// customer counts), so the report is the base's sums (`base_sums`, for its query) plus, for
/// each changed customer, its sums in its piece minus its sums in the base. `state` keeps
/// those differences between calls: it is brought up to date by the pieces it has not seen
/// yet, so the work is in proportion to the customers changed since the last call, not to the
/// book. The same report as [`report`] on the book in one piece.
///
/// A `state` that has seen more pieces than `pieces` holds (an older state of the book read
/// after a newer one) is left alone: the report is then summed anew from the pieces.
pub fn report_of_parts(
    base: &Book,
    base_sums: &BaseSums,
    state: &mut PartsSums,
    pieces: &[(&Book, &std::collections::BTreeSet<String>)],
) -> Report {
    let q = &base_sums.query;
    let mut fresh = PartsSums::default();
    let state = if state.pieces <= pieces.len() {
        state
    } else {
        &mut fresh
    };
    for &(book, customers) in &pieces[state.pieces..] {
        let lines = ByCustomer::new(book, &Selection::all());
        // A piece of a few customers (a write's) is summed on this thread.
        let changes: Vec<(String, Sums)> = customers
            .iter()
            .collect::<Vec<_>>()
            .par_iter()
            .with_min_len(256)
            .map(|id| {
                let mut sums = match book.customers.ids.find(id) {
                    Some(c) => customer_sums(book, q, &lines, c),
                    None => Sums::new(q),
                };
                if let Some(c) = base.customers.ids.find(id) {
                    sums.add(&customer_sums(base, q, &base_sums.by_customer, c), -1);
                }
                ((*id).clone(), sums)
            })
            .collect();
        let delta = state.delta.get_or_insert_with(|| Sums::new(q));
        for (id, sums) in changes {
            delta.add(&sums, 1);
            if let Some(before) = state.by_customer.insert(id, sums) {
                delta.add(&before, -1);
            }
        }
        state.pieces += 1;
    }
    let mut sums = base_sums.sums.clone();
    if let Some(delta) = &state.delta {
        sums.add(delta, 1);
    }
    sums.report(base.currency(), q)
}

/// The sums of one customer of a book.
fn customer_sums(book: &Book, q: &Query, by_customer: &ByCustomer, c: CustomerIdx) -> Sums {
    let mut sums = Sums::new(q);
    let lines = Lines::of(by_customer, c as usize);
    customer_pass(book, q, c, lines, &mut Scratch::default(), &mut sums);
    sums
}

impl Sums {
    /// The sums as named cells, those that are not zero: `opening` and `opening_customers`,
    /// then per month (`I`, from 0 for the query's first month) `customer_delta/I`,
    /// `movements/I/KIND` and `retained/I/KIND` (KIND a movement's JSON key). Amounts are
    /// integers of 10^-[`SCALE`](expansa_ledger::SCALE) units of the reporting currency, counts whole numbers.
    pub fn cells(&self, out: &mut Vec<(String, i128)>) {
        let mut push = |name: String, units: i128| {
            if units != 0 {
                out.push((name, units));
            }
        };
        push("opening".into(), self.opening);
        push("opening_customers".into(), self.opening_customers.into());
        for (i, delta) in self.customer_delta.iter().enumerate() {
            push(format!("customer_delta/{i}"), (*delta).into());
        }
        for (what, per_month) in [("movements", &self.movements), ("retained", &self.retained)] {
            for (i, month) in per_month.iter().enumerate() {
                for kind in Kind::ALL {
                    push(format!("{what}/{i}/{}", kind.key()), month[kind as usize]);
                }
            }
        }
    }

    /// Adds `units` to the cell `name` (as [`Sums::cells`] names it); an error for a name
    /// that is not a cell of these sums (or a count out of range).
    pub fn add_cell(&mut self, name: &str, units: i128) -> Result<(), String> {
        let unknown = || format!("{name}: not a cell of the movement sums");
        let count = |units: i128| i64::try_from(units).map_err(|_| unknown());
        let mut parts = name.split('/');
        let (what, month, kind) = (parts.next(), parts.next(), parts.next());
        if parts.next().is_some() {
            return Err(unknown());
        }
        let i = month
            .map(|m| {
                m.parse::<usize>()
                    .ok()
                    .filter(|&i| i < self.customer_delta.len())
            })
            .map(|i| i.ok_or_else(unknown))
            .transpose()?;
        let kind = kind
            .map(|k| Kind::from_key(k).ok_or_else(unknown))
            .transpose()?;
        match (what, i, kind) {
            (Some("opening"), None, None) => self.opening += units,
            (Some("opening_customers"), None, None) => self.opening_customers += count(units)?,
            (Some("customer_delta"), Some(i), None) => self.customer_delta[i] += count(units)?,
            (Some("movements"), Some(i), Some(k)) => self.movements[i][k as usize] += units,
            (Some("retained"), Some(i), Some(k)) => self.retained[i][k as usize] += units,
            _ => return Err(unknown()),
        }
        Ok(())
    }

    /// The report these sums make.
    pub fn report(&self, currency: Currency, q: &Query) -> Report {
        let mut months = Vec::with_capacity(self.movements.len());
        let (mut mrr, mut customers) = (self.opening, self.opening_customers);
        let per_month = self.movements.iter().zip(&self.retained);
        for (i, ((movements, retained), delta)) in per_month.zip(&self.customer_delta).enumerate() {
            let mrr_end = mrr + movements.iter().sum::<i128>();
            let customers_end = customers + delta;
            months.push(MonthTotals {
                month: q.from.offset(i as i32),
                mrr_start: money(mrr),
                movements: movements.map(money),
                retained: retained.map(money),
                mrr_end: money(mrr_end),
                customers_start: customers as u64,
                customers_end: customers_end as u64,
            });
            (mrr, customers) = (mrr_end, customers_end);
        }
        Report {
            currency,
            rules: q.rules,
            months,
        }
    }
}

/// The sums of the customers of `by_customer` (of a whole book, or of a group of customers
/// with the shared tables: add the groups' sums for the whole book's).
pub fn part_sums(book: &Book, q: &Query, by_customer: &ByCustomer) -> Sums {
    (0..by_customer.customers())
        .into_par_iter()
        .with_min_len(1024)
        .fold(
            || (Sums::new(q), Scratch::default()),
            |(mut sums, mut scratch), c| {
                let lines = Lines::of(by_customer, c);
                customer_pass(book, q, c as CustomerIdx, lines, &mut scratch, &mut sums);
                (sums, scratch)
            },
        )
        .map(|(sums, _)| sums)
        .reduce(|| Sums::new(q), Sums::merge)
}

/// A customer's whole month-end MRR history up to `to`: from the month of its first line, or
/// from `from` if that is earlier. Returns the first month and the MRR of each month;
/// `None` when `lines` is empty.
pub fn mrr_history(
    book: &Book,
    lines: &[LineIdx],
    from: Month,
    to: Month,
) -> Option<(Month, Vec<Money>)> {
    let earliest = lines
        .iter()
        .map(|&l| Month::of(book.lines.items[l as usize].start))
        .min()?;
    let first = earliest.min(from);
    Some((first, mrr_by_month(book, lines, first, to)))
}

/// The MRR of one customer (counting only `lines`) at the end of every month from `from` to
/// `to`: the month-end snapshot of the rules page.
pub fn mrr_by_month(book: &Book, lines: &[LineIdx], from: Month, to: Month) -> Vec<Money> {
    let n = (to.since(from) + 1).max(0) as usize;
    let mut delta = vec![Money::ZERO; n + 1];
    for &l in lines {
        let line = &book.lines.items[l as usize];
        let Some((first, last)) = line.snapshot_months() else {
            continue;
        };
        let start = first.since(from).clamp(0, n as i32) as usize;
        let stop = last.map_or(n, |last| (last.since(from) + 1).clamp(0, n as i32) as usize);
        if start < stop {
            delta[start] += line.mrr();
            delta[stop] -= line.mrr();
        }
    }
    let mut running = Money::ZERO;
    delta[..n]
        .iter()
        .map(|d| {
            running += *d;
            running
        })
        .collect()
}

/// Every movement of one customer in the range, in month order, over all its lines: the trail
/// behind the unfiltered report.
pub fn trail(book: &Book, q: &Query, customer: CustomerIdx) -> Vec<Movement> {
    let lines: Vec<LineIdx> = book
        .lines
        .items
        .iter()
        .enumerate()
        .filter(|(_, l)| l.customer == customer)
        .map(|(i, _)| i as LineIdx)
        .collect();
    let mut sink = TrailSink {
        book,
        customer,
        out: Vec::new(),
    };
    let lines = Lines {
        all: &lines,
        in_filter: None,
    };
    customer_pass(book, q, customer, lines, &mut Scratch::default(), &mut sink);
    sink.into_trail()
}

/// Every customer's movements in the range of `q` (of one kind, if given), in month order,
/// then by kind and customer: the customers and lines behind the report's figures.
pub fn all_movements(
    book: &Book,
    q: &Query,
    by_customer: &ByCustomer,
    kind: Option<Kind>,
) -> Vec<Movement> {
    let mut out: Vec<Movement> = (0..by_customer.customers())
        .into_par_iter()
        .flat_map_iter(|c| {
            customer_movements(book, q, by_customer, c as CustomerIdx)
                .into_iter()
                .filter(|m| kind.is_none_or(|k| m.kind == k))
        })
        .collect();
    out.sort_by_key(|m| (m.month, m.kind, m.customer));
    out
}

/// The movements of `customer` in the range of `q`, as the report of `by_customer` counts
/// them (with its filter): the customer's trail.
pub fn customer_movements(
    book: &Book,
    q: &Query,
    by_customer: &ByCustomer,
    customer: CustomerIdx,
) -> Vec<Movement> {
    let mut sink = TrailSink {
        book,
        customer,
        out: Vec::new(),
    };
    let lines = Lines::of(by_customer, customer as usize);
    customer_pass(book, q, customer, lines, &mut Scratch::default(), &mut sink);
    sink.into_trail()
}

/// One customer's lines and which of them the report counts.
#[derive(Clone, Copy)]
struct Lines<'a> {
    all: &'a [LineIdx],
    /// Parallel to `all`; `None` when every line counts.
    in_filter: Option<&'a [bool]>,
}

impl<'a> Lines<'a> {
    fn of(by_customer: &'a ByCustomer, c: usize) -> Lines<'a> {
        Lines {
            all: by_customer.lines(c),
            in_filter: by_customer.in_filter(c),
        }
    }
}

/// Buffers reused from customer to customer.
#[derive(Default)]
struct Scratch {
    /// (month, line, appears?, in the filter?) for every change of the month-end snapshot.
    events: Vec<(Month, LineIdx, bool, bool)>,
    /// Lines appearing and disappearing this month, with whether each is in the filter.
    appearing: Vec<(LineIdx, bool)>,
    disappearing: Vec<(LineIdx, bool)>,
    /// Predecessor of each appearing line (index into `disappearing`), if any.
    predecessor: Vec<Option<usize>>,
    taken: Vec<bool>,
    /// Appearing lines in the order they claim the line they revise.
    order: Vec<usize>,
    buf: Vec<LineIdx>,
}

/// MRR of a customer at a month end, in units of `10^-SCALE`: all its lines, and those in
/// the filter.
#[derive(Clone, Copy, Default)]
struct Mrr {
    all: i128,
    counted: i128,
}

fn customer_pass(
    book: &Book,
    q: &Query,
    customer: CustomerIdx,
    lines: Lines<'_>,
    s: &mut Scratch,
    sink: &mut impl Sink,
) {
    let items = &book.lines.items;
    let Some(first_day) = lines.all.iter().map(|&l| items[l as usize].start).min() else {
        return;
    };
    let registered = book.customers.registered_on[customer as usize].unwrap_or(first_day);
    s.events.clear();
    for (k, &l) in lines.all.iter().enumerate() {
        let counted = lines.in_filter.is_none_or(|f| f[k]);
        if let Some((first, last)) = items[l as usize].snapshot_months() {
            s.events.push((first, l, true, counted));
            if let Some(last) = last {
                s.events.push((last.next(), l, false, counted));
            }
        }
    }
    s.events.sort_unstable_by_key(|e| e.0);
    let mut prev = Mrr::default();
    let mut ever_paid = false;
    let mut opened = false;
    let mut i = 0;
    while i < s.events.len() {
        let month = s.events[i].0;
        if month > q.to {
            break;
        }
        if month >= q.from && !opened {
            sink.opening(money(prev.counted));
            opened = true;
        }
        s.appearing.clear();
        s.disappearing.clear();
        let mut now = prev;
        while i < s.events.len() && s.events[i].0 == month {
            let (_, l, appears, counted) = s.events[i];
            let mrr = items[l as usize].packed_mrr.scaled();
            // Without a filter every line counts: one sum serves both.
            let both = counted && lines.in_filter.is_some();
            if appears {
                now.all += mrr;
                if both {
                    now.counted += mrr;
                }
            } else {
                now.all -= mrr;
                if both {
                    now.counted -= mrr;
                }
            }
            if appears {
                s.appearing.push((l, counted));
            } else {
                s.disappearing.push((l, counted));
            }
            i += 1;
        }
        if lines.in_filter.is_none() {
            now.counted = now.all;
        }
        if month >= q.from {
            let m = CustomerMonth {
                book,
                rules: q.rules,
                month,
                prev,
                now,
                ever_paid,
                first_day,
                registered,
            };
            m.classify(s, sink);
        }
        ever_paid |= now.all > 0;
        prev = now;
    }
    if !opened {
        sink.opening(money(prev.counted));
    }
}

/// One customer in one month: what the rules need to classify its changes.
struct CustomerMonth<'a> {
    book: &'a Book,
    rules: Rules,
    month: Month,
    prev: Mrr,
    now: Mrr,
    ever_paid: bool,
    first_day: Date,
    registered: Date,
}

impl CustomerMonth<'_> {
    fn mrr(&self, l: LineIdx) -> Money {
        self.book.lines.items[l as usize].mrr()
    }

    /// Conexa's (or ChartMogul's) cross-sell test for a line with no predecessor.
    fn cross_sell(&self, l: LineIdx) -> bool {
        match self.rules {
            Rules::Conexa => {
                self.registered < self.month.first_day()
                    && self.book.lines.items[l as usize].start != self.first_day
            }
            Rules::Chartmogul => self.prev.all > 0,
        }
    }

    fn classify(&self, s: &mut Scratch, sink: &mut impl Sink) {
        let (month, prev, now) = (self.month, self.prev, self.now);
        // The customer as a whole starts, stops or keeps paying; the report counts the
        // customers with MRR in the filter.
        let (was_paying, is_paying) = (prev.all > 0, now.all > 0);
        let retained = prev.counted > 0;
        let delta = i64::from(now.counted > 0) - i64::from(retained);
        if delta != 0 {
            sink.customers(month, delta);
        }
        let counted = |v: &[(LineIdx, bool)], buf: &mut Vec<LineIdx>| {
            buf.clear();
            buf.extend(v.iter().filter(|e| e.1).map(|e| e.0));
        };
        if !was_paying && is_paying && self.ever_paid {
            if now.counted != 0 {
                counted(&s.appearing, &mut s.buf);
                let gain = money(now.counted);
                sink.movement(month, Kind::Reactivation, gain, &s.buf, retained);
            }
            return;
        }
        if was_paying && !is_paying {
            if prev.counted != 0 {
                counted(&s.disappearing, &mut s.buf);
                let loss = money(-prev.counted);
                sink.movement(month, Kind::Churn, loss, &s.buf, retained);
            }
            return;
        }
        if !is_paying {
            return; // no MRR before or after: nothing moves
        }
        match_predecessors(self.book, s);
        if !was_paying {
            // A first purchase: new, except the lines that qualify as cross-sell.
            let mut cross = Money::ZERO;
            s.buf.clear();
            for (k, &(l, c)) in s.appearing.iter().enumerate() {
                if c && s.predecessor[k].is_none() && self.cross_sell(l) {
                    cross += self.mrr(l);
                    s.buf.push(l);
                }
            }
            if !cross.is_zero() {
                sink.movement(month, Kind::CrossSell, cross, &s.buf, retained);
            }
            let new = money(now.counted - prev.counted) - cross;
            if !new.is_zero() {
                s.buf.clear();
                for (k, &(l, c)) in s.appearing.iter().enumerate() {
                    if c && (s.predecessor[k].is_some() || !self.cross_sell(l)) {
                        s.buf.push(l);
                    }
                }
                sink.movement(month, Kind::New, new, &s.buf, retained);
            }
            return;
        }
        // A continuing customer: line by line.
        for (k, &(l, in_l)) in s.appearing.iter().enumerate() {
            let mrr = self.mrr(l);
            match s.predecessor[k].map(|d| s.disappearing[d]) {
                Some((p, in_p)) => match (in_l, in_p) {
                    (true, true) => {
                        let (price, fx) = self.price_and_fx(l, p);
                        let kind = if price.is_positive() {
                            Kind::Upsell
                        } else {
                            Kind::Downsell
                        };
                        if !price.is_zero() {
                            sink.movement(month, kind, price, &[l, p], retained);
                        }
                        if !fx.is_zero() {
                            sink.movement(month, Kind::Fx, fx, &[l, p], retained);
                        }
                    }
                    (true, false) if !mrr.is_zero() => {
                        sink.movement(month, Kind::EnteringSegment, mrr, &[l, p], retained);
                    }
                    (false, true) if !self.mrr(p).is_zero() => {
                        let gone = -self.mrr(p);
                        sink.movement(month, Kind::LeavingSegment, gone, &[l, p], retained);
                    }
                    _ => {}
                },
                None if in_l && !mrr.is_zero() => {
                    let kind = if self.cross_sell(l) {
                        Kind::CrossSell
                    } else {
                        Kind::New
                    };
                    sink.movement(month, kind, mrr, &[l], retained);
                }
                None => {}
            }
        }
        for (k, &(l, in_l)) in s.disappearing.iter().enumerate() {
            let mrr = self.mrr(l);
            if in_l && !s.taken[k] && !mrr.is_zero() {
                sink.movement(month, Kind::Downsell, -mrr, &[l], retained);
            }
        }
    }

    /// An amendment's change from `p` to `l`, split into the price change, measured at the
    /// exchange rate `p` was valued at (that of `p`'s start month), and the revaluation (`fx`).
    /// Lines in the reporting currency, or without a rate for that month, have no `fx`.
    fn price_and_fx(&self, l: LineIdx, p: LineIdx) -> (Money, Money) {
        let book = self.book;
        let (new, old) = (&book.lines.items[l as usize], &book.lines.items[p as usize]);
        match book.mrr_at_rate_of(l, Month::of(old.start)) {
            Some(at_old_rate) => (at_old_rate - old.mrr(), new.mrr() - at_old_rate),
            None => (new.mrr() - old.mrr(), Money::ZERO),
        }
    }
}

/// The order of lines of one customer when they compete for a pairing: by everything the
/// report uses of a line (product, MRR, start, end, currency, quantity, unit price, discount,
/// billing period), and by id only between lines otherwise identical, so that renaming ids
/// never changes a report. Compared lazily: most pairs differ in the first fields.
fn canonical_cmp(book: &Book, x: LineIdx, y: LineIdx) -> std::cmp::Ordering {
    let (a, b) = (&book.lines.items[x as usize], &book.lines.items[y as usize]);
    let product = |p: ProductIdx| book.products.ids.get(p);
    let product_order = if a.product == b.product {
        std::cmp::Ordering::Equal
    } else {
        product(a.product).cmp(product(b.product))
    };
    product_order
        .then_with(|| a.mrr().cmp(&b.mrr()))
        .then_with(|| a.start.cmp(&b.start))
        .then_with(|| a.end.cmp(&b.end))
        .then_with(|| a.currency.code().cmp(b.currency.code()))
        .then_with(|| a.quantity.get().cmp(&b.quantity.get()))
        .then_with(|| a.unit_price.get().cmp(&b.unit_price.get()))
        .then_with(|| a.discount_pct.get().cmp(&b.discount_pct.get()))
        .then_with(|| a.billing_period.cmp(&b.billing_period))
        .then_with(|| book.lines.ids.get(x).cmp(book.lines.ids.get(y)))
}

/// Pairs appearing lines with the disappearing lines they replace (`docs/movement-rules.md`,
/// "A line's predecessor"): first by `revises`, followed through lines that are never active
/// at a month end; then, for every line still unpaired, a disappearing line of the same
/// product family and the same contract; then one of the same family in any contract. Lines
/// are taken, and candidates chosen, in [`canonical_cmp`] order. Each line is matched at most once.
fn match_predecessors(book: &Book, s: &mut Scratch) {
    let lines = &book.lines;
    let family = |l: LineIdx| book.products.items[lines.items[l as usize].product as usize].family;
    s.predecessor.clear();
    s.predecessor.resize(s.appearing.len(), None);
    s.taken.clear();
    s.taken.resize(s.disappearing.len(), false);
    if s.disappearing.is_empty() || s.appearing.is_empty() {
        return;
    }
    // Only lines that compete need an order (the trail orders what it lists itself).
    if s.appearing.len() > 1 {
        s.appearing
            .sort_unstable_by(|x, y| canonical_cmp(book, x.0, y.0));
    }
    if s.disappearing.len() > 1 {
        s.disappearing
            .sort_unstable_by(|x, y| canonical_cmp(book, x.0, y.0));
    }
    // 1. `revises`, through lines that never reach a month end (at most one step per line of
    // the book: the import refuses cycles, and this bound keeps any book finite). Lines that
    // revise the same line claim it in order of their start: the earliest successor is the
    // one that ended it (the supersession rule), the canonical order breaks ties.
    s.order.clear();
    s.order.extend(0..s.appearing.len());
    if s.order.len() > 1 {
        let start = |k: usize| lines.items[s.appearing[k].0 as usize].start;
        s.order.sort_by_key(|&k| start(k));
    }
    for &k in &s.order {
        let mut next = lines.items[s.appearing[k].0 as usize].revises();
        let mut steps = 0;
        while let Some(r) = next {
            if let Some(d) = s.disappearing.iter().position(|&(d, _)| d == r) {
                if !s.taken[d] {
                    s.taken[d] = true;
                    s.predecessor[k] = Some(d);
                }
                break;
            }
            steps += 1;
            if lines.items[r as usize].snapshot_months().is_some() || steps > lines.len() {
                break;
            }
            next = lines.items[r as usize].revises();
        }
    }
    // 2. The same family and contract, for all the month's lines; 3. the same family.
    for same_contract in [true, false] {
        for k in 0..s.appearing.len() {
            if s.predecessor[k].is_some() {
                continue;
            }
            let a = s.appearing[k].0;
            let found = (0..s.disappearing.len()).find(|&d| {
                let p = s.disappearing[d].0;
                !s.taken[d]
                    && family(p) == family(a)
                    && (!same_contract || lines.contract_id(p) == lines.contract_id(a))
            });
            if let Some(d) = found {
                s.taken[d] = true;
                s.predecessor[k] = Some(d);
            }
        }
    }
}
