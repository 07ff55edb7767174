//! The renewal desk: the contracts whose term ends around a day, what each is worth, what
//! renewing it under its own pricing would cost, and whether the book already holds its
//! renewal; and the same outcome month by month for the renewal KPIs.
//!
//! Pure functions of the [`Book`]. One function decides a contract's outcome
//! ([`Renewals::outcome`]): the desk ([`renewal_desk`]) and the monthly aggregation
//! ([`renewal_months`], read by `expansa-kpi`) both consume it, so they cannot disagree.
//! Definitions and their sources: `docs/kpis.md` ("Renewals") and `docs/contracts.md`.

use crate::{grouped, quote_renew_indexed, term_of, ContractIndex, QuoteError, RenewRequest};
use expansa_ledger::{
    csv_rows, Book, Contract, Currency, CustomerIdx, Date, Decimal, Format, LineIdx, Locale, Money,
    Month, RenewalPricing,
};
use expansa_movements::{table, Selection};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::hash::BuildHasher;

/// The widest window the desk reads on each side of its day (`--within`): ten years.
pub const MAX_RENEWAL_WINDOW_DAYS: u32 = 3660;

/// What became of a contract's term, as of the desk's day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenewalStatus {
    /// The book holds its renewal (whenever it was written).
    Renewed,
    /// No renewal in the book, and the term ended before the desk's day (or nothing was held
    /// on its last day: every line was cancelled before the end).
    Churned,
    /// No renewal in the book yet, and the term has not ended.
    Open,
}

impl RenewalStatus {
    /// `renewed`, `churned` or `open`.
    pub fn name(self) -> &'static str {
        match self {
            RenewalStatus::Renewed => "renewed",
            RenewalStatus::Churned => "churned",
            RenewalStatus::Open => "open",
        }
    }

    fn label(self, locale: Locale) -> &'static str {
        match (self, locale) {
            (RenewalStatus::Renewed, Locale::PtBr) => "renovado",
            (RenewalStatus::Churned, Locale::PtBr) => "perdido",
            (RenewalStatus::Open, Locale::PtBr) => "em aberto",
            (RenewalStatus::Renewed, Locale::En) => "renewed",
            (RenewalStatus::Churned, Locale::En) => "churned",
            (RenewalStatus::Open, Locale::En) => "open",
        }
    }
}

/// One contract's term: from contracts.csv, else the lines sharing its id (as
/// [`crate::contract`] reads it).
#[derive(Clone, Debug)]
struct Term<'a> {
    id: &'a str,
    customer: CustomerIdx,
    start: Date,
    end: Option<Date>,
    /// Its row of contracts.csv, if any (its renewal pricing).
    row: Option<&'a Contract>,
    /// Its number in the [`ContractIndex`] (and among the terms), when it has lines.
    k: Option<u32>,
}

/// The outcome of one term: what was up for renewal on its last day and what renewed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The term's last day.
    pub end: Date,
    /// The lines held on the last day (those kept by the selection).
    pub held: Vec<LineIdx>,
    /// 12 x the held lines' MRR (reporting currency): the ARR up for renewal.
    pub arr: Money,
    /// The lines that renew it (those kept by the selection), starting the day after its end.
    pub renewal: Vec<LineIdx>,
    /// 12 x the renewal lines' MRR: the renewed ARR with expansion (net).
    pub renewed_arr: Money,
}

impl Outcome {
    /// Whether the book holds a renewal.
    pub fn renewed(&self) -> bool {
        !self.renewal.is_empty()
    }

    /// The renewed ARR without expansion: the net renewed ARR capped at the ARR up for renewal.
    pub fn renewed_arr_gross(&self) -> Money {
        self.renewed_arr.min(self.arr)
    }

    /// The status as of `at`.
    pub fn status(&self, at: Date) -> RenewalStatus {
        if self.renewed() {
            RenewalStatus::Renewed
        } else if self.end < at || self.held.is_empty() {
            RenewalStatus::Churned
        } else {
            RenewalStatus::Open
        }
    }
}

/// Every contract of a book, with what is needed to find each one's renewal. Built in a few
/// passes over the book into flat vectors (no map or vector per contract, customer or day):
/// a million contracts cost a fraction of a second.
pub struct Renewals<'a> {
    book: &'a Book,
    /// Every contract's lines.
    contracts: ContractIndex<'a>,
    /// The index's contracts (term k is contract k), then contracts.csv's rows without a
    /// line.
    terms: Vec<Term<'a>>,
    /// Every line by (customer, first day, line), sorted.
    starting: Vec<(CustomerIdx, Date, LineIdx)>,
    /// Terms with an end by (customer, last day, id, term), sorted.
    ending: Vec<(CustomerIdx, Date, &'a str, usize)>,
}

impl<'a> Renewals<'a> {
    /// Indexes the book's contracts and lines.
    pub fn new(book: &'a Book) -> Renewals<'a> {
        Renewals::of(book, 0..book.lines.len() as LineIdx, &book.contracts)
    }

    /// Indexes the contracts of `lines` (in the book's order within each contract) and of
    /// `contracts` (contracts.csv's rows): the whole book's, or those of a set of customers
    /// when no contract's lines are of two customers ([`renewal_months`]).
    fn of(
        book: &'a Book,
        lines: impl ExactSizeIterator<Item = LineIdx> + Clone,
        contracts: impl IntoIterator<Item = &'a Contract> + Clone,
    ) -> Renewals<'a> {
        let contracts_rows = contracts.clone();
        let contracts = ContractIndex::of(book, lines.clone(), contracts);
        let items = &book.lines.items;
        // Term k is the index's contract k (one with lines), as `contract` reads it; then the
        // contracts.csv rows without a line.
        let mut terms: Vec<Term<'a>> = Vec::with_capacity(contracts.len());
        for k in 0..contracts.len() as u32 {
            let id = contracts.id(k);
            let row = contracts.row(id);
            let (customer, start, end) = term_of(book, contracts.lines_of(k), row, id)
                .expect("a contract of the index has lines");
            terms.push(Term {
                id,
                customer,
                start,
                end,
                row,
                k: Some(k),
            });
        }
        for c in contracts_rows {
            let first = contracts.row(&c.id).is_some_and(|r| std::ptr::eq(r, c));
            if first && contracts.find(&c.id).is_none() {
                terms.push(Term {
                    id: c.id.as_str(),
                    customer: c.customer,
                    start: c.start,
                    end: c.end,
                    row: Some(c),
                    k: None,
                });
            }
        }
        let mut starting: Vec<(CustomerIdx, Date, LineIdx)> = lines
            .map(|l| (items[l as usize].customer, items[l as usize].start, l))
            .collect();
        starting.sort_unstable();
        let mut ending: Vec<(CustomerIdx, Date, &'a str, usize)> = terms
            .iter()
            .enumerate()
            .filter_map(|(t, term)| term.end.map(|end| (term.customer, end, term.id, t)))
            .collect();
        ending.sort_unstable();
        Renewals {
            book,
            contracts,
            terms,
            starting,
            ending,
        }
    }

    /// Term `t`'s lines, in the book's order.
    fn lines(&self, t: usize) -> &[LineIdx] {
        self.terms[t].k.map_or(&[], |k| self.contracts.lines_of(k))
    }

    /// The lines of `customer` starting on `day`.
    fn starting_on(&self, customer: CustomerIdx, day: Date) -> &[(CustomerIdx, Date, LineIdx)] {
        let lo = self
            .starting
            .partition_point(|&(c, d, _)| (c, d) < (customer, day));
        let hi = self
            .starting
            .partition_point(|&(c, d, _)| (c, d) <= (customer, day));
        &self.starting[lo..hi]
    }

    /// The terms of `customer` ending on `day`, in id order.
    fn ending_on(
        &self,
        customer: CustomerIdx,
        day: Date,
    ) -> &[(CustomerIdx, Date, &'a str, usize)] {
        let lo = self
            .ending
            .partition_point(|&(c, d, ..)| (c, d) < (customer, day));
        let hi = self
            .ending
            .partition_point(|&(c, d, ..)| (c, d) <= (customer, day));
        &self.ending[lo..hi]
    }

    /// The term of contract `id` (its contracts.csv row, else its lines).
    fn term(&self, id: &str) -> Option<usize> {
        match self.contracts.find(id) {
            Some(k) => Some(k as usize),
            None => self.terms.iter().position(|t| t.id == id),
        }
    }

    /// The outcome of term `t` over the lines `keep` keeps; `None` for an evergreen contract.
    ///
    /// Its renewal is every line starting the day after its end that either `revises` one of
    /// the lines it held on its last day (what `quote renew --apply` writes), or belongs to
    /// another contract of the same customer that starts that day without revising a line of
    /// some other contract (a renewal written by hand). When several contracts of the customer
    /// end that day, such an unlinked line renews the one whose id its contract's id extends
    /// (`K-R20250101` renews `K`), else the first by id.
    fn outcome(&self, t: usize, keep: &dyn Fn(LineIdx) -> bool) -> Option<Outcome> {
        let book = self.book;
        let term = &self.terms[t];
        let end = term.end?;
        let items = &book.lines.items;
        let lines = self.lines(t);
        let held: Vec<LineIdx> = lines
            .iter()
            .copied()
            .filter(|&l| items[l as usize].active_on(end) && keep(l))
            .collect();
        let all_held = |l: LineIdx| lines.contains(&l) && items[l as usize].active_on(end);
        let mut renewal: Vec<LineIdx> = Vec::new();
        if let Ok(next) = end.tomorrow() {
            for &(.., l) in self.starting_on(term.customer, next) {
                let line = &items[l as usize];
                let own = book.lines.contract_id(l);
                let renews = match line.revises() {
                    // Revising a line this contract held on its last day.
                    Some(r) if all_held(r) => true,
                    // Revising a line of another contract: that contract's renewal, or an
                    // amendment.
                    Some(_) => false,
                    None => {
                        own != term.id
                            && self.contract_start(own) == Some(next)
                            && self.claims(t, own, end)
                    }
                };
                if renews && keep(l) {
                    renewal.push(l);
                }
            }
        }
        let twelve = |mrr: &mut dyn Iterator<Item = Money>| {
            let units: i128 = mrr.map(|m| m.scaled()).sum();
            Money::from_scaled(units * 12).expect("a book's MRR is far inside Money's range")
        };
        // A renewal line at the exchange rate of the line it renews (the one it revises, else
        // the first held line in its currency): constant currency, so a renewal at an
        // unchanged foreign price is renewed whole, whatever the rate did (docs/kpis.md).
        let constant = |l: LineIdx| {
            let line = &items[l as usize];
            let prior = line.revises().filter(|r| held.contains(r)).or_else(|| {
                held.iter()
                    .copied()
                    .find(|&h| items[h as usize].currency == line.currency)
            });
            prior
                .and_then(|p| book.mrr_at_rate_of(l, Month::of(items[p as usize].start)))
                .unwrap_or(line.mrr())
        };
        Some(Outcome {
            end,
            arr: twelve(&mut held.iter().map(|&l| items[l as usize].mrr())),
            renewed_arr: twelve(&mut renewal.iter().map(|&l| constant(l))),
            held,
            renewal,
        })
    }

    /// The first day of contract `id`.
    fn contract_start(&self, id: &str) -> Option<Date> {
        self.term(id).map(|t| self.terms[t].start)
    }

    /// Whether an unlinked line of contract `other` renews term `t` (ending `end`) rather than
    /// another term of the customer ending the same day.
    fn claims(&self, t: usize, other: &str, end: Date) -> bool {
        let rivals = self.ending_on(self.terms[t].customer, end);
        let extends = |id: &str| {
            other
                .strip_prefix(id)
                .is_some_and(|rest| rest.starts_with("-R"))
        };
        let chosen = rivals
            .iter()
            .filter(|&&(_, _, id, _)| extends(id))
            .max_by_key(|&&(_, _, id, _)| id.len())
            .or_else(|| rivals.first());
        chosen.map(|&(.., r)| r) == Some(t)
    }
}

impl<'a> Renewals<'a> {
    /// The book's contracts and their lines.
    pub(crate) fn contracts(&self) -> &ContractIndex<'a> {
        &self.contracts
    }

    /// The lines of the book that renew contract `id` (its outcome as the desk decides it:
    /// lines revising its last day's lines, or a contract of the same customer starting the
    /// next day), in the book's order; empty when it is not renewed.
    pub(crate) fn renewed_by(&self, id: &str) -> Vec<String> {
        let Some(t) = self.term(id) else {
            return Vec::new();
        };
        self.outcome(t, &|_| true)
            .map(|o| {
                o.renewal
                    .iter()
                    .map(|&l| self.book.lines.ids.get(l).to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A renewal as quoted under the contract's own pricing.
#[derive(Clone, Debug)]
pub struct RenewalQuote {
    /// The renewal's first and last day.
    pub start: Date,
    pub end: Option<Date>,
    /// 12 x the quote's MRR after renewal (reporting currency).
    pub arr: Money,
    /// `arr` minus the ARR up for renewal.
    pub change: Money,
}

/// One contract on the desk.
#[derive(Clone, Debug)]
pub struct RenewalRow {
    pub contract: String,
    pub customer_id: String,
    /// The customer's name (customers.csv), if any.
    pub customer_name: Option<String>,
    /// The term's last day.
    pub end: Date,
    /// Days from the desk's day to the end (negative: it ended that many days before).
    pub days_left: i32,
    /// ARR up for renewal: 12 x the MRR held on the last day.
    pub arr: Money,
    pub pricing: RenewalPricing,
    pub uplift_pct: Option<Decimal>,
    /// The renewal quote, or why it could not be priced.
    pub quote: Result<RenewalQuote, QuoteError>,
    pub status: RenewalStatus,
    /// The renewal's line ids and their contracts, when the book holds it.
    pub renewal_lines: Vec<String>,
    pub renewal_contracts: Vec<String>,
    /// Renewed ARR with expansion (`None` unless renewed).
    pub renewed_arr: Option<Money>,
}

/// An evergreen contract: no term to renew, it goes on by itself.
#[derive(Clone, Debug)]
pub struct EvergreenRow {
    pub contract: String,
    pub customer_id: String,
    pub start: Date,
    /// 12 x the MRR held on the desk's day.
    pub arr: Money,
}

/// The renewal desk of a day.
#[derive(Clone, Debug)]
pub struct RenewalDesk {
    pub at: Date,
    pub within: u32,
    /// First and last day of the window (`at` -/+ `within` days, inside the calendar).
    pub from: Date,
    pub to: Date,
    pub currency: Currency,
    /// Contracts ending in the window, by end day then contract id.
    pub rows: Vec<RenewalRow>,
    /// The evergreen contracts holding lines on `at` with the largest ARR (at most
    /// [`MAX_EVERGREEN_LISTED`], by ARR then contract id); all of them are counted below.
    pub evergreen: Vec<EvergreenRow>,
    /// How many evergreen contracts hold lines on `at`, and their ARR.
    pub evergreen_count: usize,
    pub evergreen_arr: Money,
}

/// At most this many evergreen contracts are listed on the desk (the largest by ARR): they
/// have nothing to renew, and a book may hold hundreds of thousands of them.
pub const MAX_EVERGREEN_LISTED: usize = 100;

/// The contracts (not evergreen) whose term ends from `within` days before `at` to `within`
/// days after it, with their renewal quote and status; and, apart, the evergreen contracts
/// holding lines on `at`. `selection` (`--where`) keeps whole contracts: those of a kept
/// customer holding a line of a kept product (the figures stay the contract's own, as its
/// renewal quote is).
pub fn renewal_desk(book: &Book, at: Date, within: u32, selection: &Selection) -> RenewalDesk {
    let index = Renewals::new(book);
    let span = jiff::Span::new().days(i64::from(within.min(MAX_RENEWAL_WINDOW_DAYS)));
    let from = at.checked_sub(span).unwrap_or(Date::MIN);
    let to = at.checked_add(span).unwrap_or(Date::MAX);
    let all = |_: LineIdx| true;
    let customer = |c: CustomerIdx| book.customers.ids.get(c).to_string();
    let mut rows = Vec::new();
    let mut evergreen = Vec::new();
    for (t, term) in index.terms.iter().enumerate() {
        let products_kept = selection.products.is_none()
            || index
                .lines(t)
                .iter()
                .any(|&l| selection.keeps_product(book.lines.items[l as usize].product));
        if !selection.keeps_customer(term.customer) || !products_kept {
            continue;
        }
        match term.end {
            None => {
                let held: Vec<LineIdx> = index
                    .lines(t)
                    .iter()
                    .copied()
                    .filter(|&l| book.lines.items[l as usize].active_on(at))
                    .collect();
                if held.is_empty() {
                    continue;
                }
                let units: i128 = held
                    .iter()
                    .map(|&l| book.lines.items[l as usize].mrr().scaled())
                    .sum();
                evergreen.push(EvergreenRow {
                    contract: term.id.to_string(),
                    customer_id: customer(term.customer),
                    start: term.start,
                    arr: Money::from_scaled(units * 12).expect("inside Money's range"),
                });
            }
            Some(end) if from <= end && end <= to => {
                let outcome = index.outcome(t, &all).expect("a term with an end");
                let request = RenewRequest {
                    contract: term.id.to_string(),
                    ..RenewRequest::default()
                };
                let quote = quote_renew_indexed(book, &index.contracts, &request).map(|q| {
                    // At constant exchange rates, as the renewed ARR (docs/kpis.md).
                    let arr = times_twelve(q.mrr_after_constant_currency);
                    RenewalQuote {
                        start: q.effective,
                        end: q.end,
                        arr,
                        change: arr - times_twelve(q.mrr_before),
                    }
                });
                let mut contracts: Vec<String> = outcome
                    .renewal
                    .iter()
                    .map(|&l| book.lines.contract_id(l).to_string())
                    .collect();
                contracts.sort();
                contracts.dedup();
                let days_left = at.until(end).map_or(0, |s| s.get_days());
                rows.push(RenewalRow {
                    contract: term.id.to_string(),
                    customer_id: customer(term.customer),
                    customer_name: book
                        .customers
                        .name
                        .get_opt(term.customer as usize)
                        .map(str::to_string),
                    end,
                    days_left,
                    arr: outcome.arr,
                    pricing: term.row.map(|c| c.renewal_pricing).unwrap_or_default(),
                    uplift_pct: term.row.and_then(|c| c.renewal_uplift_pct),
                    quote,
                    status: outcome.status(at),
                    renewal_lines: outcome
                        .renewal
                        .iter()
                        .map(|&l| book.lines.ids.get(l).to_string())
                        .collect(),
                    renewal_contracts: contracts,
                    renewed_arr: outcome.renewed().then_some(outcome.renewed_arr),
                });
            }
            Some(_) => {}
        }
    }
    rows.sort_by(|a, b| (a.end, &a.contract).cmp(&(b.end, &b.contract)));
    let evergreen_count = evergreen.len();
    let evergreen_arr = evergreen.iter().map(|e| e.arr).sum();
    evergreen.sort_by(|a, b| (b.arr, &a.contract).cmp(&(a.arr, &b.contract)));
    evergreen.truncate(MAX_EVERGREEN_LISTED);
    RenewalDesk {
        at,
        within,
        from,
        to,
        currency: book.currency(),
        rows,
        evergreen,
        evergreen_count,
        evergreen_arr,
    }
}

fn times_twelve(m: Money) -> Money {
    Money::from_scaled(m.scaled() * 12).expect("a quote's MRR is far inside Money's range")
}

/// The renewals of one month: the contracts whose term ends in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewalMonth {
    pub month: Month,
    /// Contracts up for renewal (not evergreen, ending in the month, holding a kept line on
    /// their last day).
    pub contracts: u64,
    /// Of them, those the book holds a renewal of.
    pub renewed_contracts: u64,
    /// ARR up for renewal.
    pub arr: Money,
    /// Renewed ARR with expansion (net).
    pub renewed_arr: Money,
    /// Renewed ARR without expansion: each contract's capped at its ARR up for renewal.
    pub renewed_arr_gross: Money,
}

impl RenewalMonth {
    /// Renewed ARR without expansion / ARR up for renewal; `None` with nothing up.
    pub fn gross_rate(&self) -> Option<Decimal> {
        rate(self.renewed_arr_gross, self.arr)
    }

    /// Renewed ARR with expansion / ARR up for renewal; `None` with nothing up.
    pub fn net_rate(&self) -> Option<Decimal> {
        rate(self.renewed_arr, self.arr)
    }
}

fn rate(num: Money, den: Money) -> Option<Decimal> {
    if den.is_zero() {
        None
    } else {
        num.as_decimal().checked_div(den.as_decimal())
    }
}

/// The renewals of every month from `from` to `to`, over the lines `keep` keeps (a report's
/// `--where` filters): a contract counts in the month its term ends when it held a kept line
/// on its last day; its renewal counts the kept lines of the renewal.
///
/// A contract's outcome reads only its customer's lines and contracts, so when no contract's
/// lines are of two customers (the usual book: contracts.csv's rows are refused otherwise,
/// and lines without a row would have to share an id by chance) the book is read a batch of
/// customers at a time, in parallel, each batch indexed by itself ([`Renewals::of`]): memory
/// in proportion to a batch, not to the book (at 10 million contracts the whole book's index
/// is about 1.5 GB). Otherwise the whole book is indexed at once. Both give the same months.
pub fn renewal_months(
    book: &Book,
    from: Month,
    to: Month,
    keep: &(dyn Fn(LineIdx) -> bool + Sync),
) -> Vec<RenewalMonth> {
    renewal_months_in(book, from, to, keep, BATCH_LINES)
}

/// [`renewal_months`], indexing batches of customers of about `batch_lines` lines.
fn renewal_months_in(
    book: &Book,
    from: Month,
    to: Month,
    keep: &(dyn Fn(LineIdx) -> bool + Sync),
    batch_lines: usize,
) -> Vec<RenewalMonth> {
    let zero = || no_renewals(from, to);
    if from > to {
        return zero();
    }
    let customers = Customers::new(book);
    if !customers.one_customer_each(book) {
        return add_renewals(&Renewals::new(book), from, to, keep, zero());
    }
    customers
        .batches(batch_lines)
        .into_par_iter()
        .fold(zero, |months, batch| {
            let lines: Vec<LineIdx> = batch
                .clone()
                .flat_map(|c| customers.lines(c))
                .copied()
                .collect();
            let rows = batch.flat_map(|c| customers.contracts(book, c));
            let index = Renewals::of(book, lines.iter().copied(), rows);
            add_renewals(&index, from, to, keep, months)
        })
        .reduce(zero, |mut a, b| {
            for (a, b) in a.iter_mut().zip(b) {
                a.contracts += b.contracts;
                a.renewed_contracts += b.renewed_contracts;
                a.arr += b.arr;
                a.renewed_arr += b.renewed_arr;
                a.renewed_arr_gross += b.renewed_arr_gross;
            }
            a
        })
}

/// No renewal in any month from `from` to `to`.
fn no_renewals(from: Month, to: Month) -> Vec<RenewalMonth> {
    let n = (to.since(from) + 1).max(0) as usize;
    (0..n)
        .map(|i| RenewalMonth {
            month: from.offset(i as i32),
            contracts: 0,
            renewed_contracts: 0,
            arr: Money::ZERO,
            renewed_arr: Money::ZERO,
            renewed_arr_gross: Money::ZERO,
        })
        .collect()
}

/// `months` (from `from` to `to`) plus the outcomes of `index`'s terms ending in them.
fn add_renewals(
    index: &Renewals,
    from: Month,
    to: Month,
    keep: &dyn Fn(LineIdx) -> bool,
    mut months: Vec<RenewalMonth>,
) -> Vec<RenewalMonth> {
    for t in 0..index.terms.len() {
        let Some(end) = index.terms[t].end else {
            continue;
        };
        let month = Month::of(end);
        if month < from || month > to {
            continue;
        }
        let Some(outcome) = index.outcome(t, keep) else {
            continue;
        };
        if outcome.held.is_empty() {
            continue;
        }
        let m = &mut months[month.since(from) as usize];
        m.contracts += 1;
        m.arr += outcome.arr;
        if outcome.renewed() {
            m.renewed_contracts += 1;
            m.renewed_arr += outcome.renewed_arr;
            m.renewed_arr_gross += outcome.renewed_arr_gross();
        }
    }
    months
}

/// Lines and contracts.csv's rows of each customer (counting sorts: each customer's in the
/// book's order).
struct Customers {
    line_start: Vec<u32>,
    lines: Vec<LineIdx>,
    row_start: Vec<u32>,
    rows: Vec<u32>,
}

/// About this many lines are indexed together by [`renewal_months`].
const BATCH_LINES: usize = 16_384;

impl Customers {
    fn new(book: &Book) -> Customers {
        let n = book.customers.len();
        let of = |k: usize, customer: CustomerIdx| (customer, k as u32);
        let items = book.lines.items.iter().enumerate();
        let (line_start, lines) = grouped(items.map(|(k, l)| of(k, l.customer)), n);
        let rows = book.contracts.iter().enumerate();
        let (row_start, rows) = grouped(rows.map(|(k, c)| of(k, c.customer)), n);
        Customers {
            line_start,
            lines,
            row_start,
            rows,
        }
    }

    fn lines(&self, c: usize) -> &[LineIdx] {
        &self.lines[self.line_start[c] as usize..self.line_start[c + 1] as usize]
    }

    fn contracts<'a>(
        &self,
        book: &'a Book,
        c: usize,
    ) -> impl Iterator<Item = &'a Contract> + Clone + use<'a, '_> {
        self.rows[self.row_start[c] as usize..self.row_start[c + 1] as usize]
            .iter()
            .map(|&k| &book.contracts[k as usize])
    }

    /// Ranges of customers holding about `batch_lines` lines each.
    fn batches(&self, batch_lines: usize) -> Vec<std::ops::Range<usize>> {
        let n = self.line_start.len() - 1;
        let mut out = Vec::new();
        let mut first = 0;
        for c in 0..n {
            if (self.line_start[c + 1] - self.line_start[first]) as usize >= batch_lines {
                out.push(first..c + 1);
                first = c + 1;
            }
        }
        if first < n {
            out.push(first..n);
        }
        out
    }

    /// Whether every contract's lines are of one customer: each customer's contract ids,
    /// hashed, sorted together; ids of equal hash are compared.
    fn one_customer_each(&self, book: &Book) -> bool {
        let hasher = foldhash::fast::FixedState::default();
        let n = self.line_start.len() - 1;
        let mut ids: Vec<(u64, LineIdx)> = (0..n)
            .into_par_iter()
            .flat_map_iter(|c| {
                let mut own: Vec<(u64, LineIdx)> = self
                    .lines(c)
                    .iter()
                    .map(|&l| (hasher.hash_one(book.lines.contract_id(l)), l))
                    .collect();
                own.sort_unstable();
                // One entry per id of the customer.
                own.dedup_by(|a, b| {
                    a.0 == b.0 && book.lines.contract_id(a.1) == book.lines.contract_id(b.1)
                });
                own
            })
            .collect();
        ids.par_sort_unstable();
        ids.chunk_by(|a, b| a.0 == b.0).all(|same_hash| {
            same_hash.iter().enumerate().all(|(k, a)| {
                same_hash[k + 1..]
                    .iter()
                    .all(|b| book.lines.contract_id(a.1) != book.lines.contract_id(b.1))
            })
        })
    }
}

/// The pricing as printed: `same`, `list` or `uplift 5%`.
fn pricing_text(row: &RenewalRow) -> String {
    match (row.pricing, row.uplift_pct) {
        (RenewalPricing::Same, _) => "same".into(),
        (RenewalPricing::List, _) => "list".into(),
        (RenewalPricing::Uplift, Some(p)) => format!("uplift {}%", p.normalize()),
        (RenewalPricing::Uplift, None) => "uplift".into(),
    }
}

fn pricing_name(p: RenewalPricing) -> &'static str {
    match p {
        RenewalPricing::Same => "same",
        RenewalPricing::List => "list",
        RenewalPricing::Uplift => "uplift",
    }
}

/// What the desk's rows add up to.
struct Totals {
    contracts: usize,
    arr: Money,
    quoted: usize,
    quoted_arr: Money,
    renewed: usize,
    renewed_arr: Money,
    churned: usize,
    open: usize,
    evergreen_arr: Money,
}

impl RenewalDesk {
    fn totals(&self) -> Totals {
        let mut t = Totals {
            contracts: self.rows.len(),
            arr: Money::ZERO,
            quoted: 0,
            quoted_arr: Money::ZERO,
            renewed: 0,
            renewed_arr: Money::ZERO,
            churned: 0,
            open: 0,
            evergreen_arr: self.evergreen_arr,
        };
        for r in &self.rows {
            t.arr += r.arr;
            if let Ok(q) = &r.quote {
                t.quoted += 1;
                t.quoted_arr += q.arr;
            }
            match r.status {
                RenewalStatus::Renewed => t.renewed += 1,
                RenewalStatus::Churned => t.churned += 1,
                RenewalStatus::Open => t.open += 1,
            }
            t.renewed_arr += r.renewed_arr.unwrap_or(Money::ZERO);
        }
        t
    }
}

/// The desk as a table (in the locale), JSON or CSV (one row per contract, evergreen ones
/// last with status `evergreen`).
pub fn render_renewals(desk: &RenewalDesk, format: Format) -> String {
    let c = desk.currency;
    let plain = |m: Money| m.plain(c);
    match format {
        Format::Json => {
            let rows: Vec<Value> = desk
                .rows
                .iter()
                .map(|r| {
                    let (renewal, error) = match &r.quote {
                        Ok(q) => (
                            json!({
                                "start": q.start.to_string(),
                                "end": q.end.map(|d| d.to_string()),
                                "arr": plain(q.arr),
                                "change": plain(q.change),
                            }),
                            Value::Null,
                        ),
                        Err(e) => (Value::Null, Value::String(e.to_string())),
                    };
                    json!({
                        "customer_id": r.customer_id,
                        "customer_name": r.customer_name,
                        "contract": r.contract,
                        "end": r.end.to_string(),
                        "days_left": r.days_left,
                        "arr": plain(r.arr),
                        "pricing": pricing_name(r.pricing),
                        "uplift_pct": r.uplift_pct.map(|p| p.normalize().to_string()),
                        "quote": renewal,
                        "quote_error": error,
                        "status": r.status.name(),
                        "renewed_arr": r.renewed_arr.map(plain),
                        "renewal_contracts": r.renewal_contracts,
                        "renewal_lines": r.renewal_lines,
                    })
                })
                .collect();
            let evergreen: Vec<Value> = desk
                .evergreen
                .iter()
                .map(|e| {
                    json!({
                        "customer_id": e.customer_id,
                        "contract": e.contract,
                        "start": e.start.to_string(),
                        "arr": plain(e.arr),
                    })
                })
                .collect();
            let t = desk.totals();
            json!({
                "at": desk.at.to_string(),
                "within": desk.within,
                "from": desk.from.to_string(),
                "to": desk.to.to_string(),
                "currency": c.code(),
                "renewals": rows,
                "evergreen": evergreen,
                "totals": {
                    "contracts": t.contracts,
                    "arr": plain(t.arr),
                    "quoted": t.quoted,
                    "quoted_arr": plain(t.quoted_arr),
                    "renewed": t.renewed,
                    "renewed_arr": plain(t.renewed_arr),
                    "churned": t.churned,
                    "open": t.open,
                    "evergreen": desk.evergreen_count,
                    "evergreen_arr": plain(t.evergreen_arr),
                },
            })
            .to_string()
                + "\n"
        }
        Format::Csv => {
            let header = [
                "customer_id",
                "contract",
                "end",
                "days_left",
                "arr",
                "pricing",
                "uplift_pct",
                "renewal_start",
                "renewal_end",
                "renewal_arr",
                "change",
                "quote_error",
                "status",
                "renewed_arr",
                "renewal_contracts",
            ];
            let rows = desk.rows.iter().map(|r| {
                let (start, end, arr, change, error) = match &r.quote {
                    Ok(q) => (
                        q.start.to_string(),
                        q.end.map_or(String::new(), |d| d.to_string()),
                        plain(q.arr),
                        plain(q.change),
                        String::new(),
                    ),
                    Err(e) => (
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        e.to_string(),
                    ),
                };
                vec![
                    r.customer_id.clone(),
                    r.contract.clone(),
                    r.end.to_string(),
                    r.days_left.to_string(),
                    plain(r.arr),
                    pricing_name(r.pricing).to_string(),
                    r.uplift_pct
                        .map_or(String::new(), |p| p.normalize().to_string()),
                    start,
                    end,
                    arr,
                    change,
                    error,
                    r.status.name().to_string(),
                    r.renewed_arr.map_or(String::new(), plain),
                    r.renewal_contracts.join(" "),
                ]
            });
            let evergreen = desk.evergreen.iter().map(|e| {
                let mut row = vec![String::new(); header.len()];
                row[0] = e.customer_id.clone();
                row[1] = e.contract.clone();
                row[4] = plain(e.arr);
                row[12] = "evergreen".into();
                row
            });
            csv_rows(&header, rows.chain(evergreen))
        }
        Format::Table(locale) => render_table(desk, locale),
    }
}

fn render_table(desk: &RenewalDesk, locale: Locale) -> String {
    let c = desk.currency;
    let pt = locale == Locale::PtBr;
    let money = |m: Money| locale.money(m, c);
    let signed = |m: Money| {
        let s = money(m);
        if m.is_positive() {
            format!("+{s}")
        } else {
            s
        }
    };
    let mut out = if pt {
        format!(
            "Renovações em {}: contratos que terminam de {} a {} ({} dias antes e depois) · {} · {}\n\n",
            desk.at, desk.from, desk.to, desk.within, c.code(), locale
        )
    } else {
        format!(
            "Renewals at {}: contracts ending from {} to {} ({} days either side) · {} · {}\n\n",
            desk.at,
            desk.from,
            desk.to,
            desk.within,
            c.code(),
            locale
        )
    };
    let head: [&str; 10] = if pt {
        [
            "Cliente",
            "Contrato",
            "Fim",
            "Dias",
            "ARR em renovação",
            "Preço",
            "ARR da renovação",
            "Variação",
            "Situação",
            "ARR renovado",
        ]
    } else {
        [
            "Customer",
            "Contract",
            "End",
            "Days left",
            "ARR up for renewal",
            "Pricing",
            "Renewal ARR",
            "Change",
            "Status",
            "Renewed ARR",
        ]
    };
    let mut rows = vec![head.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    let mut notes = Vec::new();
    for r in &desk.rows {
        let (arr, change) = match &r.quote {
            Ok(q) => (money(q.arr), signed(q.change)),
            Err(e) => {
                notes.push(format!("{}: {e}", r.contract));
                ("—".into(), "—".into())
            }
        };
        rows.push(vec![
            r.customer_id.clone(),
            r.contract.clone(),
            r.end.to_string(),
            r.days_left.to_string(),
            money(r.arr),
            pricing_text(r),
            arr,
            change,
            r.status.label(locale).to_string(),
            r.renewed_arr.map_or(String::new(), money),
        ]);
    }
    let t = desk.totals();
    rows.push(vec![
        "Total".into(),
        t.contracts.to_string(),
        String::new(),
        String::new(),
        money(t.arr),
        String::new(),
        money(t.quoted_arr),
        String::new(),
        if pt {
            format!(
                "{} renov., {} perd., {} em ab.",
                t.renewed, t.churned, t.open
            )
        } else {
            format!("{} ren., {} ch., {} open", t.renewed, t.churned, t.open)
        },
        money(t.renewed_arr),
    ]);
    let right = [
        false, false, false, true, true, false, true, true, false, true,
    ];
    if desk.rows.is_empty() {
        out.push_str(if pt {
            "Nenhum contrato termina na janela.\n"
        } else {
            "No contract ends in the window.\n"
        });
    } else {
        out.push_str(&table(&rows, &right));
    }
    for note in &notes {
        out.push_str(&if pt {
            format!("* sem cotação: {note}\n")
        } else {
            format!("* not priced: {note}\n")
        });
    }
    out.push('\n');
    out.push_str(if pt {
        "Contratos sem fim (evergreen: renovam sozinhos)\n"
    } else {
        "Evergreen contracts (they renew by themselves)\n"
    });
    if desk.evergreen.len() < desk.evergreen_count {
        out.push_str(&if pt {
            format!(
                "Os {} de maior ARR, de {}:\n",
                desk.evergreen.len(),
                desk.evergreen_count
            )
        } else {
            format!(
                "The {} with the largest ARR, of {}:\n",
                desk.evergreen.len(),
                desk.evergreen_count
            )
        });
    }
    if desk.evergreen.is_empty() {
        out.push_str(if pt { "Nenhum.\n" } else { "None.\n" });
    } else {
        let mut rows = vec![if pt {
            vec!["Cliente", "Contrato", "Início", "ARR"]
        } else {
            vec!["Customer", "Contract", "Start", "ARR"]
        }
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()];
        for e in &desk.evergreen {
            rows.push(vec![
                e.customer_id.clone(),
                e.contract.clone(),
                e.start.to_string(),
                money(e.arr),
            ]);
        }
        rows.push(vec![
            "Total".into(),
            desk.evergreen_count.to_string(),
            String::new(),
            money(t.evergreen_arr),
        ]);
        out.push_str(&table(&rows, &[false, false, false, true]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quote_renew;
    use expansa_import::{read_book, ImportOptions, NoProgress};

    /// The contract index holds each contract's lines and row as a scan of the whole book finds
    /// them, and `quote renew` (which refuses a contract already renewed) prices every other
    /// contract as the desk does, field by field, on every test book with contracts.
    #[test]
    fn a_quote_through_the_index_is_the_whole_books() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
        for name in [
            "renewals",
            "contracts",
            "contracts-classes",
            "contracts-far-end",
            "../examples/demo",
        ] {
            let book = read_book(&root.join(name), &ImportOptions::default(), &NoProgress)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let index = Renewals::new(&book);
            let contracts = ContractIndex::new(&book);
            assert!(!index.terms.is_empty(), "{name}");
            for term in &index.terms {
                // The index holds what a scan of the whole book finds: the lines and the row.
                assert_eq!(
                    contracts.lines(term.id),
                    crate::lines_of(&book, term.id).as_slice(),
                    "{name}: {}",
                    term.id
                );
                assert_eq!(
                    contracts.row(term.id).map(|c| c as *const _),
                    crate::row_of(&book, term.id).map(|c| c as *const _),
                    "{name}: {}",
                    term.id
                );
                let request = RenewRequest {
                    contract: term.id.to_string(),
                    ..RenewRequest::default()
                };
                let whole = quote_renew(&book, &request);
                let own = quote_renew_indexed(&book, &contracts, &request);
                // A contract already renewed is refused by the quote; the desk still prices it.
                if let Err(QuoteError::AlreadyRenewed { lines, .. }) = &whole {
                    assert_eq!(lines, &index.renewed_by(term.id).join(", "));
                    assert!(own.is_ok(), "{name}: {}", term.id);
                    continue;
                }
                let (whole, own) = (format!("{whole:?}"), format!("{own:?}"));
                assert_eq!(own, whole, "{name}: {}", term.id);
            }
        }
    }

    /// A line of [`random_book`]: customer, contract, first month, length, quantity, the line it
    /// revises.
    type RandomLine = (u8, u8, u8, u8, u8, Option<u8>);

    /// [`random_book`]'s lines, contracts.csv rows (customer, contract, first month), and
    /// whether a contract is shared.
    fn random_books(
    ) -> impl proptest::strategy::Strategy<Value = (Vec<RandomLine>, Vec<(u8, u8, u8)>, bool)> {
        (
            proptest::collection::vec(
                (
                    0u8..5,
                    0u8..4,
                    0u8..6,
                    0u8..6,
                    0u8..8,
                    proptest::option::of(0u8..40),
                ),
                1..40,
            ),
            proptest::collection::vec((0u8..5, 0u8..6, 0u8..6), 0..6),
            proptest::bool::ANY,
        )
    }

    /// A random book of contracts: customers holding lines of a few contracts each, terms
    /// ending on month ends, renewals starting the next day (revising a held line, or unlinked
    /// under an id extending the contract's, `K-R...`), contracts.csv rows with and without
    /// lines, and, when `shared`, one contract id on two customers' lines.
    fn random_book(lines: &[RandomLine], rows: &[(u8, u8, u8)], shared: bool) -> Option<Book> {
        let day = |m: u8, end: bool| {
            let m = u32::from(m % 8) + 1;
            if end {
                let last = [31, 29, 31, 30, 31, 30, 31, 31][m as usize - 1];
                format!("2024-{m:02}-{last:02}")
            } else {
                format!("2024-{m:02}-01")
            }
        };
        let contract = |c: u8, k: u8| match k % 4 {
            0 => format!("K{c}-a"),
            1 => format!("K{c}-b"),
            2 => format!("K{c}-a-R1"),
            _ if shared => "SHARED".to_string(),
            _ => format!("K{c}-c"),
        };
        let mut subs = String::from(
            "id,customer_id,contract_id,product_id,quantity,unit_price,start_date,end_date,revises\n",
        );
        for (i, &(c, k, start, len, qty, revises)) in lines.iter().enumerate() {
            let c = c % 5;
            let end = if len % 3 != 0 {
                day(start + len % 3, true)
            } else {
                String::new()
            };
            let revises = revises
                .map(|r| r as usize % lines.len())
                .filter(|&r| r < i && lines[r].0 % 5 == c && lines[r].2 % 8 <= start % 8)
                .map(|r| format!("L{r}"))
                .unwrap_or_default();
            subs += &format!(
                "L{i},c{c},{},P,{},{}.50,{},{end},{revises}\n",
                contract(c, k),
                qty % 4 + 1,
                100 + u32::from(qty),
                day(start, false),
            );
        }
        let mut contracts = String::from("id,customer_id,start_date,end_date\n");
        for &(c, k, m) in rows {
            let c = c % 5;
            // A row of a contract with lines (its term set by the row), or of one without.
            let id = if k % 2 == 0 {
                contract(c, k / 2)
            } else {
                format!("K{c}-row{k}")
            };
            if id == "SHARED" || contracts.contains(&format!("\n{id},")) {
                continue;
            }
            contracts += &format!("{id},c{c},{},{}\n", day(m, false), day(m + 2, true));
        }
        let customers = "id,name\nc0,A\nc1,B\nc2,C\nc3,D\nc4,E\n";
        let products = "id,name,list_price,price_term_months\nP,Plan,120.00,1\n";
        let files: [(&str, &[u8]); 4] = [
            ("customers.csv", customers.as_bytes()),
            ("products.csv", products.as_bytes()),
            ("subscriptions.csv", subs.as_bytes()),
            ("contracts.csv", contracts.as_bytes()),
        ];
        expansa_import::read_book_from(
            &expansa_import::InMemory(&files),
            &ImportOptions::default(),
            &NoProgress,
        )
        .ok()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// The renewals of every month, read a batch of customers at a time (batches of one
        /// line up to the whole book), are those of the whole book's index; a book with a
        /// contract on two customers' lines is read whole.
        #[test]
        fn renewals_by_batches_of_customers_are_the_whole_books(
            (lines, rows, shared) in random_books(),
            batch in 1usize..12,
            odd in proptest::bool::ANY,
        ) {
            let Some(book) = random_book(&lines, &rows, shared) else {
                return Ok(());
            };
            let (from, to) = ("2024-01".parse::<Month>().unwrap(), "2024-12".parse::<Month>().unwrap());
            // All lines, or every other one (a report's --where).
            let keep = |l: LineIdx| !odd || l.is_multiple_of(2);
            let whole = add_renewals(&Renewals::new(&book), from, to, &keep, no_renewals(from, to));
            let batched = renewal_months_in(&book, from, to, &keep, batch);
            proptest::prop_assert_eq!(&batched, &whole);
            let spans = (0..book.lines.len() as LineIdx).any(|a| (0..book.lines.len() as LineIdx).any(|b| {
                book.lines.contract_id(a) == book.lines.contract_id(b)
                    && book.lines.items[a as usize].customer != book.lines.items[b as usize].customer
            }));
            proptest::prop_assert_eq!(Customers::new(&book).one_customer_each(&book), !spans);
        }
    }

    /// The random books of the property above are mostly books (not refused), and hold what it
    /// is about: renewals, contracts ending in the range, contracts on two customers.
    #[test]
    fn the_random_books_have_renewals() {
        use proptest::strategy::{Strategy, ValueTree};
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = random_books();
        let (mut books, mut renewed, mut spanning) = (0, 0, 0);
        for _ in 0..200 {
            let (lines, rows, shared) = strategy.new_tree(&mut runner).unwrap().current();
            let Some(book) = random_book(&lines, &rows, shared) else {
                continue;
            };
            books += 1;
            let months = renewal_months(
                &book,
                "2024-01".parse().unwrap(),
                "2024-12".parse().unwrap(),
                &|_| true,
            );
            renewed += usize::from(months.iter().any(|m| m.renewed_contracts > 0));
            spanning += usize::from(!Customers::new(&book).one_customer_each(&book));
        }
        assert!(books > 150, "{books} of 200 books read");
        assert!(renewed > 50, "{renewed} books with a renewal");
        assert!(
            spanning > 30,
            "{spanning} books with a contract on two customers"
        );
    }
}
