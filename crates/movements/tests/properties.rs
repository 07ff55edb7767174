//! Invariants of the movement report on random books, written as CSV and read back:
//! - the identity `MRR(c, M) = MRR(c, M-1) + movements(c, M)` for every customer and month,
//!   against an independent month-end snapshot;
//! - the report's totals are the sums of the trail;
//! - the same report for any row order of the files and any thread count.

use expansa_import::{read_book, ImportOptions, NoProgress};
use expansa_ledger::{Book, Money, Month};
use expansa_movements::{render_json, report, trail, Query, Rules};
use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One random subscription line.
#[derive(Clone, Debug)]
struct RawLine {
    customer: usize,
    product: usize,
    quantity: u32,
    price_cents: u32,
    discount: u32,
    period: u32,
    start: Day,
    end: Option<Day>,
    revises: Option<usize>,
}

const PRODUCTS: [(&str, &str); 5] = [
    ("basic", "core"),
    ("pro", "core"),
    ("fiscal", "fiscal"),
    ("payroll", "payroll"),
    ("payroll-plus", "payroll"),
];

/// A day in 2023-2024, or (`dense`) in the first quarter of 2024, so that several lines of
/// one customer change in the same month and the tie-breaks between them matter.
fn day(dense: bool) -> impl Strategy<Value = Day> {
    let (years, months) = if dense {
        (2024i16..=2024, 1i8..=3)
    } else {
        (2023i16..=2024, 1i8..=12)
    };
    (
        years,
        months,
        prop_oneof![Just(1i8), 2i8..=27, Just(28), Just(31)],
    )
        .prop_map(|(y, m, d)| {
            let last = jiff::civil::date(y, m, 1).last_of_month().day();
            (y, m, d.min(last))
        })
}

fn raw_line(customers: usize, dense: bool) -> impl Strategy<Value = RawLine> {
    (
        0..customers,
        0..PRODUCTS.len(),
        0u32..5,
        0u32..50_000,
        prop_oneof![Just(0u32), 0u32..=100],
        prop_oneof![Just(1u32), Just(3), Just(12)],
        day(dense),
        proptest::option::of(if dense { 0u32..90 } else { 0u32..800 }),
        proptest::option::of(0usize..40),
    )
        .prop_map(
            |(customer, product, quantity, price_cents, discount, period, start, len, revises)| {
                let end = len.map(|days| {
                    let s = jiff::civil::date(start.0, start.1, start.2);
                    let e = s
                        .checked_add(jiff::Span::new().days(i64::from(days)))
                        .unwrap();
                    (e.year(), e.month(), e.day())
                });
                RawLine {
                    customer,
                    product,
                    quantity,
                    price_cents,
                    discount,
                    period,
                    start,
                    end,
                    revises,
                }
            },
        )
}

/// A calendar day as (year, month, day).
type Day = (i16, i8, i8);

/// Lines, each customer's registration day (if any), and a seed for the row order.
type RandomBook = (Vec<RawLine>, Vec<Option<Day>>, u64);

fn book_strategy(dense: bool) -> impl Strategy<Value = RandomBook> {
    let customers = if dense { 1usize..3 } else { 1usize..7 };
    customers.prop_flat_map(move |customers| {
        (
            proptest::collection::vec(raw_line(customers, dense), 1..30),
            proptest::collection::vec(proptest::option::of(day(dense)), customers),
            any::<u64>(),
        )
    })
}

fn date_text((y, m, d): Day) -> String {
    format!("{y:04}-{m:02}-{d:02}")
}

/// Writes the book as CSV with its rows in an order drawn from `seed`.
fn write_book(lines: &[RawLine], registered: &[Option<Day>], seed: u64) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "expansa-prop-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rows: Vec<String> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        // `revises` names an earlier line of the same customer only.
        let revises = l
            .revises
            .filter(|&r| r < i && lines[r].customer == l.customer)
            .map(|r| format!("l{r}"))
            .unwrap_or_default();
        rows.push(format!(
            "l{i},c{},k{},{},{},{}.{:02},{},{},{},{},{}",
            l.customer,
            l.customer % 2,
            PRODUCTS[l.product].0,
            l.quantity,
            l.price_cents / 100,
            l.price_cents % 100,
            l.discount,
            l.period,
            date_text(l.start),
            l.end.map(date_text).unwrap_or_default(),
            revises
        ));
    }
    let mut customers: Vec<String> = registered
        .iter()
        .enumerate()
        .map(|(c, r)| format!("c{c},{}", r.map(date_text).unwrap_or_default()))
        .collect();
    shuffle(&mut rows, seed);
    shuffle(&mut customers, seed.rotate_left(17));
    let mut subs = String::from(
        "id,customer_id,contract_id,product_id,quantity,unit_price,discount_pct,billing_period_months,start_date,end_date,revises\n",
    );
    for r in rows {
        subs.push_str(&r);
        subs.push('\n');
    }
    std::fs::write(dir.join("subscriptions.csv"), subs).unwrap();
    std::fs::write(
        dir.join("customers.csv"),
        format!("id,registered_on\n{}\n", customers.join("\n")),
    )
    .unwrap();
    let mut products = String::from("id,family\n");
    for (id, family) in PRODUCTS {
        products.push_str(&format!("{id},{family}\n"));
    }
    std::fs::write(dir.join("products.csv"), products).unwrap();
    dir
}

/// A deterministic Fisher-Yates shuffle.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

fn load(dir: &PathBuf) -> Book {
    let book = read_book(dir, &ImportOptions::default(), &NoProgress).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    book
}

/// MRR of a customer at the end of a month, straight from the definition.
fn snapshot(book: &Book, customer: u32, month: Month) -> Money {
    let day = month.last_day();
    book.lines
        .items
        .iter()
        .filter(|l| l.customer == customer && l.active_on(day))
        .map(|l| l.mrr())
        .sum()
}

fn query(rules: Rules) -> Query {
    Query {
        from: "2023-01".parse().unwrap(),
        to: "2025-02".parse().unwrap(),
        rules,
    }
}

proptest! {
    // 160 cases by default; PROPTEST_CASES=N runs more.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(160)
    ))]

    #[test]
    fn identity_holds_for_every_customer_and_month(
        (lines, registered, seed) in prop_oneof![book_strategy(false), book_strategy(true)],
        chartmogul in any::<bool>(),
    ) {
        let book = load(&write_book(&lines, &registered, seed));
        let q = query(if chartmogul { Rules::Chartmogul } else { Rules::Conexa });
        let r = report(&book, &q);
        let mut totals = vec![Money::ZERO; r.months.len()];
        for c in 0..book.customers.len() as u32 {
            let moves = trail(&book, &q, c);
            for (i, m) in r.months.iter().enumerate() {
                let moved: Money = moves.iter().filter(|t| t.month == m.month).map(|t| t.amount).sum();
                let (prev, now) = (snapshot(&book, c, m.month.prev()), snapshot(&book, c, m.month));
                prop_assert_eq!(now, prev + moved, "customer {} month {}", c, m.month);
                totals[i] += moved;
            }
        }
        for (i, m) in r.months.iter().enumerate() {
            // Totals are the sums of the trail, and the month-end snapshots.
            let by_kind: Money = m.movements.iter().copied().sum();
            prop_assert_eq!(by_kind, totals[i]);
            prop_assert_eq!(m.mrr_end, m.mrr_start + by_kind);
            let snap: Money = (0..book.customers.len() as u32).map(|c| snapshot(&book, c, m.month)).sum();
            prop_assert_eq!(m.mrr_end, snap);
            let paying = (0..book.customers.len() as u32)
                .filter(|&c| snapshot(&book, c, m.month).is_positive())
                .count() as u64;
            prop_assert_eq!(m.customers_end, paying);
            // Gains are never negative, losses never positive.
            for k in [0, 1, 2, 3] {
                prop_assert!(!m.movements[k].is_negative());
            }
            prop_assert!(!m.movements[4].is_positive() && !m.movements[5].is_positive());
        }
    }

    #[test]
    fn same_report_for_any_row_order_and_thread_count(
        (lines, registered, seed) in prop_oneof![book_strategy(false), book_strategy(true)],
        other_seed in any::<u64>(),
    ) {
        // Import and report each run on their own pool.
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let three = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let a = one.install(|| load(&write_book(&lines, &registered, seed)));
        let b = three.install(|| load(&write_book(&lines, &registered, other_seed)));
        for rules in [Rules::Conexa, Rules::Chartmogul] {
            let q = query(rules);
            let ra = one.install(|| render_json(&report(&a, &q)));
            let rb = three.install(|| render_json(&report(&b, &q)));
            prop_assert_eq!(ra, rb);
        }
    }
}
