//! Random books for the property tests, shared by `crates/movements/tests/*.rs` and
//! `crates/kpi/tests/retention_properties.rs` (included there by path): a model of
//! subscriptions.csv, customers.csv, products.csv and fx_rates.csv, written as CSV files and
//! read back with `expansa_import::read_book`, and the checks every report must pass.
//!
//! The model follows the refined rules of issue 12 (`notes/rules.md`): a line's `revises`
//! names a line of the same customer generated before it that starts on or before its own
//! start (never a cycle, never refused by the import, R1).
#![allow(dead_code)]

use expansa_import::{read_book, ImportOptions, NoProgress};
use expansa_ledger::{
    line_mrr, BillingPeriod, Book, Date, Decimal, IntervalUnit, Line, LineIdx, Money, Month,
};
use expansa_movements::{
    all_movements, report_selected, ByCustomer, Kind, Query, Report, Rules, Selection,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Product ids and their families.
pub const PRODUCTS: [(&str, &str); 5] = [
    ("basic", "core"),
    ("pro", "core"),
    ("fiscal", "fiscal"),
    ("payroll", "payroll"),
    ("payroll-plus", "payroll"),
];

/// Contracts per customer (`k{customer}-{n}`); one more value means an empty `contract_id`
/// (the line is its own contract).
pub const CONTRACTS: u8 = 3;

/// The first month with a USD rate in fx_rates.csv, and how many months have one: every
/// month a generated line can start in (2023-2024, and the months added around them).
pub const RATES_FROM: (i16, i8) = (2022, 1);
pub const RATE_MONTHS: usize = 72;

/// The reported range.
pub fn query(rules: Rules) -> Query {
    Query {
        from: "2023-01".parse().unwrap(),
        to: "2025-02".parse().unwrap(),
        rules,
    }
}

pub const PRESETS: [Rules; 2] = [Rules::Conexa, Rules::Chartmogul];

// ---------------------------------------------------------------------------------------
// Days

/// Every day from 2020-01-01 to 2031-12-31, for day arithmetic without jiff's spans.
fn calendar() -> &'static [Date] {
    static DAYS: OnceLock<Vec<Date>> = OnceLock::new();
    DAYS.get_or_init(|| {
        let mut d = Date::new(2020, 1, 1).unwrap();
        let last = Date::new(2031, 12, 31).unwrap();
        let mut out = vec![d];
        while d < last {
            d = d.tomorrow().unwrap();
            out.push(d);
        }
        out
    })
}

fn day_index(d: Date) -> usize {
    calendar().binary_search(&d).expect("a day in 2020-2031")
}

/// `d` plus `n` days (n may be negative).
pub fn add_days(d: Date, n: i64) -> Date {
    calendar()[(day_index(d) as i64 + n) as usize]
}

/// Days from `a` to `b`.
pub fn days_between(a: Date, b: Date) -> i64 {
    day_index(b) as i64 - day_index(a) as i64
}

/// A month from its index since [`RATES_FROM`].
pub fn month_at(i: usize) -> Month {
    Month::new(RATES_FROM.0, RATES_FROM.1)
        .unwrap()
        .offset(i as i32)
}

/// A day of `month`: the 1st, the 28th, the last, or any other.
pub fn day_of(month: Month, pick: u8) -> Date {
    let last = month.last_day().day();
    let d = match pick % 4 {
        0 => 1,
        1 => 28.min(last),
        2 => last,
        _ => (2 + (pick / 4) as i8 % 26).min(last),
    };
    Date::new(month.year(), month.month(), d).unwrap()
}

/// A day in 2023-2024, or (`dense`) in the first quarter of 2024, so that several lines of
/// one customer change in the same month and the tie-breaks between them matter.
pub fn day(dense: bool) -> impl Strategy<Value = Date> {
    let months = if dense { 24..=26usize } else { 12..=35usize };
    (months, any::<u8>()).prop_map(|(m, pick)| day_of(month_at(m), pick))
}

// ---------------------------------------------------------------------------------------
// The model

/// The currency cell of a line: empty (the reporting currency), BRL or USD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cur {
    Empty,
    Brl,
    Usd,
}

impl Cur {
    fn text(self) -> &'static str {
        match self {
            Cur::Empty => "",
            Cur::Brl => "BRL",
            Cur::Usd => "USD",
        }
    }
}

/// One subscription line.
#[derive(Clone, Debug)]
pub struct RawLine {
    pub customer: usize,
    /// `None`: empty `contract_id`.
    pub contract: Option<u8>,
    pub product: usize,
    pub quantity: u32,
    pub price_cents: u32,
    pub discount: u32,
    /// Every `count` units (`billing_period_months` for months, else `billing_interval`).
    pub period: (IntervalUnit, u16),
    pub currency: Cur,
    pub start: Date,
    pub end: Option<Date>,
    /// Index of the line this one revises.
    pub revises: Option<usize>,
}

/// A book: lines, each customer's registration day (if any), the USD rates and a seed for
/// the row order of the files.
#[derive(Clone, Debug)]
pub struct RawBook {
    pub lines: Vec<RawLine>,
    pub registered: Vec<Option<Date>>,
    pub usd_rates: Rates,
    pub seed: u64,
}

/// USD rates in ten-thousandths: 5.0000 until the first change, then each change (month
/// index from [`RATES_FROM`], rate) holds until the next. fx_rates.csv lists every month.
#[derive(Clone, Debug, Default)]
pub struct Rates(pub Vec<(usize, u32)>);

impl Rates {
    pub fn all_ones() -> Rates {
        Rates(vec![(0, 10_000)])
    }

    /// The rate of month `i` (from [`RATES_FROM`]) in ten-thousandths.
    pub fn at(&self, i: usize) -> u32 {
        self.0
            .iter()
            .filter(|(from, _)| *from <= i)
            .max_by_key(|(from, _)| *from)
            .map_or(50_000, |(_, r)| *r)
    }
}

impl RawBook {
    pub fn customers(&self) -> usize {
        self.registered.len()
    }

    /// The USD rate of `month` (the import reads the line's start month).
    pub fn usd_rate(&self, month: Month) -> Decimal {
        let i = month.since(month_at(0));
        Decimal::new(i64::from(self.usd_rates.at(i as usize)), 4)
    }

    /// The line's MRR in BRL, straight from the definition.
    pub fn mrr(&self, i: usize) -> Money {
        let l = &self.lines[i];
        let rate = match l.currency {
            Cur::Usd => self.usd_rate(Month::of(l.start)),
            _ => Decimal::ONE,
        };
        line_mrr(
            Decimal::from(l.quantity),
            Decimal::new(i64::from(l.price_cents), 2),
            Decimal::from(l.discount),
            period(l.period),
            rate,
        )
        .unwrap()
    }

    /// R1: each line's effective last day, `min(end, earliest successor's start - 1)`; before
    /// the line's start when a successor starts on the same day (never active).
    pub fn effective_ends(&self) -> Vec<Option<Date>> {
        let mut ends: Vec<Option<Date>> = self.lines.iter().map(|l| l.end).collect();
        for l in &self.lines {
            if let Some(p) = l.revises {
                let cut = add_days(l.start, -1);
                ends[p] = Some(ends[p].map_or(cut, |e| e.min(cut)));
            }
        }
        ends
    }

    /// Keeps the `revises` of lines `from..` only where R1 allows it, picking among the
    /// allowed targets: an earlier line of the same customer starting on or before this one.
    pub fn normalize_revises(&mut self, from: usize) {
        for i in from..self.lines.len() {
            let Some(r) = self.lines[i].revises else {
                continue;
            };
            let (customer, start) = (self.lines[i].customer, self.lines[i].start);
            let allowed: Vec<usize> = (0..i)
                .filter(|&j| self.lines[j].customer == customer && self.lines[j].start <= start)
                .collect();
            self.lines[i].revises = (!allowed.is_empty()).then(|| allowed[r % allowed.len()]);
        }
    }
}

/// A random line; `revises` is an arbitrary number until [`RawBook::normalize_revises`].
pub fn raw_line(customers: usize, dense: bool) -> impl Strategy<Value = RawLine> {
    (
        (
            0..customers,
            prop_oneof![3 => (0..CONTRACTS).prop_map(Some), 1 => Just(None)],
            0..PRODUCTS.len(),
            0u32..5,
            0u32..50_000,
            prop_oneof![Just(0u32), 0u32..=100],
            prop_oneof![
                4 => prop_oneof![Just(1u16), Just(3), Just(12)].prop_map(|n| (IntervalUnit::Month, n)),
                1 => prop_oneof![Just((IntervalUnit::Week, 1u16)), Just((IntervalUnit::Week, 2)), Just((IntervalUnit::Day, 30))],
            ],
        ),
        prop_oneof![Just(Cur::Empty), Just(Cur::Brl), Just(Cur::Usd)],
        day(dense),
        proptest::option::of(if dense { 0i64..90 } else { 0i64..800 }),
        proptest::option::of(0usize..40),
    )
        .prop_map(
            |(
                (customer, contract, product, quantity, price_cents, discount, period),
                currency,
                start,
                len,
                revises,
            )| RawLine {
                customer,
                contract,
                product,
                quantity,
                price_cents,
                discount,
                period,
                currency,
                start,
                end: len.map(|n| add_days(start, n)),
                revises,
            },
        )
}

/// USD rates that change up to 16 times, mostly in the months lines start in (2023-2024),
/// each to anything from 3 to 7 (a few to 5.0000).
pub fn usd_rates() -> impl Strategy<Value = Rates> {
    proptest::collection::vec(
        (
            prop_oneof![3 => 11..=37usize, 1 => 0..RATE_MONTHS],
            prop_oneof![1 => Just(50_000u32), 4 => 30_000u32..=70_000],
        ),
        0..16,
    )
    .prop_map(Rates)
}

pub fn book_strategy(dense: bool) -> impl Strategy<Value = RawBook> {
    let customers = if dense { 1usize..3 } else { 1usize..7 };
    customers.prop_flat_map(move |customers| {
        (
            proptest::collection::vec(raw_line(customers, dense), 1..30),
            proptest::collection::vec(proptest::option::of(day(dense)), customers),
            usd_rates(),
            any::<u64>(),
        )
            .prop_map(|(lines, registered, usd_rates, seed)| {
                let mut book = RawBook {
                    lines,
                    registered,
                    usd_rates,
                    seed,
                };
                book.normalize_revises(0);
                book
            })
    })
}

/// Books spread over two years or crowded into one quarter.
pub fn any_book() -> impl Strategy<Value = RawBook> {
    prop_oneof![book_strategy(false), book_strategy(true)]
}

// ---------------------------------------------------------------------------------------
// Writing and reading

/// The ids a book is written with.
#[derive(Clone, Debug)]
pub struct Names {
    pub lines: Vec<String>,
    /// By (customer, contract number).
    pub contracts: BTreeMap<(usize, u8), String>,
}

impl Names {
    /// `l{i}` and `k{customer}-{n}`.
    pub fn plain(book: &RawBook) -> Names {
        let mut contracts = BTreeMap::new();
        for c in 0..book.customers() {
            for n in 0..CONTRACTS {
                contracts.insert((c, n), format!("k{c}-{n}"));
            }
        }
        Names {
            lines: (0..book.lines.len()).map(|i| format!("l{i}")).collect(),
            contracts,
        }
    }
}

pub fn date_text(d: Date) -> String {
    d.to_string()
}

/// The CSV files of the book, rows in an order drawn from its seed.
pub fn csv_files(book: &RawBook, names: &Names) -> Vec<(&'static str, String)> {
    let mut rows: Vec<String> = Vec::new();
    for (i, l) in book.lines.iter().enumerate() {
        let contract = l
            .contract
            .map(|n| names.contracts[&(l.customer, n)].clone())
            .unwrap_or_default();
        let (months, interval, count) = match l.period {
            (IntervalUnit::Month, n) => (n.to_string(), "", String::new()),
            (unit, n) => (String::new(), unit.name(), n.to_string()),
        };
        rows.push(format!(
            "{},c{},{},{},{},{}.{:02},{},{},{},{},{},{},{},{}",
            names.lines[i],
            l.customer,
            contract,
            PRODUCTS[l.product].0,
            l.quantity,
            l.price_cents / 100,
            l.price_cents % 100,
            l.discount,
            months,
            interval,
            count,
            l.currency.text(),
            date_text(l.start),
            l.end.map(date_text).unwrap_or_default(),
            l.revises
                .map(|r| names.lines[r].clone())
                .unwrap_or_default(),
        ));
    }
    let mut customers: Vec<String> = book
        .registered
        .iter()
        .enumerate()
        .map(|(c, r)| format!("c{c},{}", r.map(date_text).unwrap_or_default()))
        .collect();
    shuffle(&mut rows, book.seed);
    shuffle(&mut customers, book.seed.rotate_left(17));
    let mut subs = String::from(
        "id,customer_id,contract_id,product_id,quantity,unit_price,discount_pct,billing_period_months,billing_interval,billing_interval_count,currency,start_date,end_date,revises\n",
    );
    for r in rows {
        subs.push_str(&r);
        subs.push('\n');
    }
    let mut products = String::from("id,family\n");
    for (id, family) in PRODUCTS {
        products.push_str(&format!("{id},{family}\n"));
    }
    let mut rates = String::from("month,currency,rate\n");
    for i in 0..RATE_MONTHS {
        let r = book.usd_rates.at(i);
        rates.push_str(&format!(
            "{},USD,{}\n",
            month_at(i),
            Decimal::new(i64::from(r), 4)
        ));
    }
    vec![
        ("subscriptions.csv", subs),
        (
            "customers.csv",
            format!("id,registered_on\n{}\n", customers.join("\n")),
        ),
        ("products.csv", products),
        ("fx_rates.csv", rates),
    ]
}

/// A deterministic Fisher-Yates shuffle.
pub fn shuffle<T>(items: &mut [T], mut seed: u64) {
    seed |= 1;
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// Writes the book into a new folder.
pub fn write_book(book: &RawBook, names: &Names) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "expansa-prop-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in csv_files(book, names) {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

/// Reads the book back from its folder (and removes the folder).
pub fn load_dir(dir: &Path) -> Book {
    let book = read_book(dir, &ImportOptions::default(), &NoProgress);
    let subs = std::fs::read_to_string(dir.join("subscriptions.csv")).unwrap_or_default();
    std::fs::remove_dir_all(dir).unwrap();
    book.unwrap_or_else(|e| panic!("the import refused the book: {:?}\n{subs}", e.0))
}

/// The book written with `names` and read back.
pub fn load_named(book: &RawBook, names: &Names) -> Book {
    load_dir(&write_book(book, names))
}

/// The book written with its plain ids and read back.
pub fn load(book: &RawBook) -> Book {
    load_named(book, &Names::plain(book))
}

// ---------------------------------------------------------------------------------------
// Checks

/// The kind whose JSON key is `key` (`fx`, `entering_segment`, `leaving_segment`: issue 12).
pub fn kind(key: &str) -> Kind {
    Kind::from_key(key).unwrap_or_else(|| panic!("no movement kind {key:?}"))
}

/// The kinds with these JSON keys.
fn kinds(keys: &[&str]) -> Vec<Kind> {
    keys.iter().map(|k| kind(k)).collect()
}

/// Kinds that are never negative in any report.
pub fn gains() -> Vec<Kind> {
    kinds(&[
        "new",
        "cross_sell",
        "upsell",
        "reactivation",
        "entering_segment",
    ])
}

/// Kinds that are never positive in any report.
pub fn losses() -> Vec<Kind> {
    kinds(&["downsell", "churn", "leaving_segment"])
}

/// MRR at the end of `month` of the lines `keep` selects, straight from the definition:
/// the lines active on its last day, with the ends the import stored (R1's effective ends).
pub fn snapshot(book: &Book, keep: impl Fn(LineIdx, &Line) -> bool, month: Month) -> Money {
    let day = month.last_day();
    book.lines
        .items
        .iter()
        .enumerate()
        .filter(|(i, l)| l.active_on(day) && keep(*i as LineIdx, l))
        .map(|(_, l)| l.mrr())
        .sum()
}

/// The selection of the products in `products` (by index into [`PRODUCTS`]), through
/// `--where product=...` filters where the book has them all (a value the book lacks is
/// refused); otherwise, and for an empty set, the same selection made directly.
pub fn product_selection(book: &Book, products: &[usize]) -> Selection {
    let wanted: Vec<&str> = products.iter().map(|&p| PRODUCTS[p].0).collect();
    if !wanted.is_empty() && wanted.iter().all(|id| book.products.ids.find(id).is_some()) {
        let filters: Vec<(String, String)> = wanted
            .iter()
            .map(|id| ("product".to_string(), id.to_string()))
            .collect();
        return Selection::from_filters(book, &filters).unwrap();
    }
    Selection {
        customers: None,
        products: Some(
            book.products
                .ids
                .iter()
                .map(|id| wanted.contains(&id))
                .collect(),
        ),
    }
}

/// The selection of the customers with these ids, through `--where customer=...` filters
/// where the book has them all; otherwise, and for none, the same selection made directly.
pub fn customer_selection(book: &Book, ids: &[&str]) -> Selection {
    if !ids.is_empty() && ids.iter().all(|id| book.customers.ids.find(id).is_some()) {
        let filters: Vec<(String, String)> = ids
            .iter()
            .map(|id| ("customer".to_string(), id.to_string()))
            .collect();
        return Selection::from_filters(book, &filters).unwrap();
    }
    Selection {
        customers: Some(
            book.customers
                .ids
                .iter()
                .map(|id| ids.contains(&id))
                .collect(),
        ),
        products: None,
    }
}

/// The report of the lines `selection` keeps, after checking, for every month of `q`:
/// - `mrr_end = mrr_start + the sum of all nine kinds`, and `mrr_start` is the previous
///   month's `mrr_end`;
/// - `mrr_end` and `customers_end` (`mrr_start`, `customers_start`) are the independent
///   month-end snapshot of the selected lines;
/// - every customer's movements (`all_movements`) add up to its own snapshot's change, and
///   the month's totals are their sums, kind by kind (and the `retained` totals those of the
///   customers with MRR in the selection at the end of the month before, R6);
/// - gains are never negative and losses never positive;
/// - without a filter, `entering_segment` and `leaving_segment` are zero.
pub fn checked_report(
    book: &Book,
    q: &Query,
    selection: &Selection,
) -> Result<Report, TestCaseError> {
    let by = ByCustomer::new(book, selection);
    let r = report_selected(book, q, &by);
    let moves = all_movements(book, q, &by, None);
    let unfiltered = selection.customers.is_none() && selection.products.is_none();
    let segment = kinds(&["entering_segment", "leaving_segment"]);
    let mut by_customer: HashMap<(u32, Month), Money> = HashMap::new();
    let mut by_kind: HashMap<(Month, Kind), Money> = HashMap::new();
    for m in &moves {
        *by_customer
            .entry((m.customer, m.month))
            .or_insert(Money::ZERO) += m.amount;
        *by_kind.entry((m.month, m.kind)).or_insert(Money::ZERO) += m.amount;
        prop_assert!(
            !(unfiltered && segment.contains(&m.kind)),
            "unfiltered {:?} movement: {:?}",
            m.kind,
            m
        );
    }
    let customers = book.customers.len() as u32;
    let keep_of = |c: u32| move |i: LineIdx, l: &Line| l.customer == c && selection.keeps(book, i);
    prop_assert_eq!(r.months.len() as i32, q.to.since(q.from) + 1);
    for (k, m) in r.months.iter().enumerate() {
        prop_assert_eq!(m.month, q.from.offset(k as i32));
        let moved: Money = Kind::ALL.iter().map(|&kd| m.get(kd)).sum();
        prop_assert_eq!(
            m.mrr_end,
            m.mrr_start + moved,
            "identity in {}: {:?}",
            m.month,
            m
        );
        if k > 0 {
            prop_assert_eq!(m.mrr_start, r.months[k - 1].mrr_end);
            prop_assert_eq!(m.customers_start, r.months[k - 1].customers_end);
        }
        let (mut start, mut end, mut paying_start, mut paying_end) =
            (Money::ZERO, Money::ZERO, 0u64, 0u64);
        for c in 0..customers {
            let before = snapshot(book, keep_of(c), m.month.prev());
            let after = snapshot(book, keep_of(c), m.month);
            let moved = by_customer
                .get(&(c, m.month))
                .copied()
                .unwrap_or(Money::ZERO);
            prop_assert_eq!(
                after,
                before + moved,
                "customer {} in {}",
                book.customers.ids.get(c),
                m.month
            );
            start += before;
            end += after;
            paying_start += u64::from(before.is_positive());
            paying_end += u64::from(after.is_positive());
        }
        prop_assert_eq!(m.mrr_start, start, "mrr_start of {}", m.month);
        prop_assert_eq!(m.mrr_end, end, "mrr_end of {}", m.month);
        prop_assert_eq!(
            m.customers_start,
            paying_start,
            "customers_start {}",
            m.month
        );
        prop_assert_eq!(m.customers_end, paying_end, "customers_end {}", m.month);
        for kd in Kind::ALL {
            let trail = by_kind.get(&(m.month, kd)).copied().unwrap_or(Money::ZERO);
            prop_assert_eq!(m.get(kd), trail, "{:?} in {} vs its trail", kd, m.month);
            // R6: the movements of the customers paying (in the filter) at the month's start.
            let retained: Money = moves
                .iter()
                .filter(|t| t.month == m.month && t.kind == kd)
                .filter(|t| snapshot(book, keep_of(t.customer), m.month.prev()).is_positive())
                .map(|t| t.amount)
                .sum();
            prop_assert_eq!(m.retained(kd), retained, "retained {:?} in {}", kd, m.month);
        }
        for kd in gains() {
            prop_assert!(!m.get(kd).is_negative(), "{:?} < 0 in {:?}", kd, m);
        }
        for kd in losses() {
            prop_assert!(!m.get(kd).is_positive(), "{:?} > 0 in {:?}", kd, m);
        }
        if unfiltered {
            for &kd in &segment {
                prop_assert!(m.get(kd).is_zero(), "unfiltered {:?} in {:?}", kd, m);
            }
        }
    }
    Ok(r)
}

/// Checks that the import stored R1's effective end of every line (`names` are the ids the
/// book was written with).
pub fn check_effective_ends(
    raw: &RawBook,
    names: &Names,
    book: &Book,
) -> Result<(), TestCaseError> {
    for (i, expected) in raw.effective_ends().into_iter().enumerate() {
        let idx = book
            .lines
            .ids
            .find(&names.lines[i])
            .expect("every line is read");
        let line = &book.lines.items[idx as usize];
        let start = raw.lines[i].start;
        prop_assert_eq!(line.start, start);
        match expected {
            // Superseded from its first day: never active, whatever end it keeps.
            Some(e) if e < start => prop_assert!(
                line.end.is_some_and(|end| end < start),
                "line {} is superseded from its start, end {:?}",
                names.lines[i],
                line.end
            ),
            _ => prop_assert_eq!(line.end, expected, "effective end of {}", &names.lines[i]),
        }
    }
    Ok(())
}

/// R4 on every amendment of the unfiltered report: when new line A replaces P, the price
/// change is A valued at the rate of A's currency for P's start month, minus P's MRR; the rest
/// of the change is `fx` (zero when both are in the reporting currency).
pub fn check_amendments(
    raw: &RawBook,
    names: &Names,
    book: &Book,
    q: &Query,
) -> Result<(), TestCaseError> {
    let fx = kind("fx");
    let raw_of: HashMap<LineIdx, usize> = (0..raw.lines.len())
        .map(|i| (book.lines.ids.find(&names.lines[i]).unwrap(), i))
        .collect();
    for c in 0..book.customers.len() as u32 {
        // (month, new, old) -> (price change, fx)
        let mut split: BTreeMap<(Month, usize, usize), (Money, Money)> = BTreeMap::new();
        for m in expansa_movements::trail(book, q, c) {
            // A downsell of one line is a line gone without a successor.
            let amendment = matches!(m.kind, Kind::Upsell | Kind::Downsell) && m.lines.len() == 2;
            if !amendment && m.kind != fx {
                continue;
            }
            prop_assert_eq!(m.lines.len(), 2, "an amendment names two lines: {:?}", m);
            let key = (m.month, raw_of[&m.lines[0]], raw_of[&m.lines[1]]);
            let entry = split.entry(key).or_insert((Money::ZERO, Money::ZERO));
            match m.kind {
                Kind::Upsell => prop_assert!(m.amount.is_positive(), "{:?}", m),
                Kind::Downsell => prop_assert!(m.amount.is_negative(), "{:?}", m),
                _ => {}
            }
            if m.kind == fx {
                entry.1 += m.amount;
            } else {
                entry.0 += m.amount;
            }
        }
        for ((month, a, p), (price, moved)) in split {
            let new = &raw.lines[a];
            let rate = match new.currency {
                Cur::Usd => raw.usd_rate(Month::of(raw.lines[p].start)),
                _ => Decimal::ONE,
            };
            let at_old_rate = line_mrr(
                Decimal::from(new.quantity),
                Decimal::new(i64::from(new.price_cents), 2),
                Decimal::from(new.discount),
                period(new.period),
                rate,
            )
            .unwrap();
            prop_assert_eq!(
                (price, moved),
                (at_old_rate - raw.mrr(p), raw.mrr(a) - at_old_rate),
                "price change and fx of {} replacing {} in {}",
                &names.lines[a],
                &names.lines[p],
                month
            );
        }
    }
    Ok(())
}

/// One movement of a trail: month, kind, amount and the ids of its lines.
pub type TrailEntry = (Month, Kind, Money, Vec<String>);

/// One customer's movements with line ids instead of indices, sorted. The lines of a
/// first purchase, a cross-sell, a reactivation or a churn are a set (sorted here); those of an
/// amendment keep their order (the new line, then the one it replaced).
pub fn trail_by_id(book: &Book, q: &Query, customer: &str) -> Vec<TrailEntry> {
    let Some(c) = book.customers.ids.find(customer) else {
        return Vec::new();
    };
    let mut out: Vec<_> = expansa_movements::trail(book, q, c)
        .into_iter()
        .map(|m| {
            let mut ids: Vec<String> = m
                .lines
                .iter()
                .map(|&l| book.lines.ids.get(l).to_string())
                .collect();
            if matches!(
                m.kind,
                Kind::New | Kind::CrossSell | Kind::Reactivation | Kind::Churn
            ) {
                ids.sort();
            }
            (m.month, m.kind, m.amount, ids)
        })
        .collect();
    out.sort();
    out
}

/// The model's billing period as the ledger's.
pub fn period((unit, count): (IntervalUnit, u16)) -> BillingPeriod {
    BillingPeriod::new(unit, count).expect("the model's periods are valid")
}
