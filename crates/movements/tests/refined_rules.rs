//! Invariants of the refined movement rules (issue 12, `notes/rules.md` R1-R5) on random
//! books written as CSV and read back (`support`):
//! (a) splitting a revision into a chain of revisions inside one month changes nothing;
//! (b) a successor starting the day after its predecessor's last day reports as one starting
//!     on it (exclusive end dates);
//! (c) renaming line and contract ids changes nothing; plan changes in several contracts of
//!     one customer in one month pair within their contract first, whatever the ids;
//! (d) rates of 1 give no `fx`; a renewal at an unchanged price after the rate moved is `fx`
//!     only;
//! (f) no filter: no segment movements; reports filtered to the two sides of a partition of
//!     the products add up to the whole report.
//! Every report built here also passes `checked_report` (identity with all nine kinds,
//! month-end snapshots of the selected lines, totals = sums of the trail, signs).

mod support;

use expansa_ledger::{Book, Date, IntervalUnit, Money, Month};
use expansa_movements::{
    render_json, report, report_selected, ByCustomer, Kind, Query, Rules, Selection,
};
use proptest::prelude::*;
use support::*;

/// Default case count of these properties; PROPTEST_CASES=N runs more.
fn cases(default: u32) -> ProptestConfig {
    ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(default),
    )
}

/// The JSON reports of both presets, unfiltered and filtered to `products`.
fn reports(book: &Book, products: &[usize]) -> Vec<String> {
    let filtered = ByCustomer::new(book, &product_selection(book, products));
    let mut out = Vec::new();
    for rules in PRESETS {
        let q = query(rules);
        out.push(render_json(&report(book, &q)));
        out.push(render_json(&report_selected(book, &q, &filtered)));
    }
    out
}

/// The first month where two lists of [`reports`] differ, if any: which report, and the
/// month in each.
fn first_difference(a: &[String], b: &[String]) -> Option<String> {
    const WHICH: [&str; 4] = [
        "conexa",
        "conexa filtered",
        "chartmogul",
        "chartmogul filtered",
    ];
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        if x == y {
            continue;
        }
        let months = |s: &str| -> Vec<serde_json::Value> {
            let v: serde_json::Value = serde_json::from_str(s).unwrap();
            v["months"].as_array().unwrap().clone()
        };
        let (mx, my) = (months(x), months(y));
        let at = mx.iter().zip(&my).position(|(p, q)| p != q).unwrap_or(0);
        return Some(format!(
            "{} report differs:\n  {}\n  {}",
            WHICH[k],
            mx.get(at).map_or(String::new(), |m| m.to_string()),
            my.get(at).map_or(String::new(), |m| m.to_string()),
        ));
    }
    None
}

/// Every customer's trail under both presets, with line ids.
fn trails(book: &Book) -> Vec<Vec<TrailEntry>> {
    let mut out = Vec::new();
    for rules in PRESETS {
        for c in book.customers.ids.iter() {
            out.push(trail_by_id(book, &query(rules), c));
        }
    }
    out
}

/// The products whose bit is set in `mask`.
fn products_in(mask: u8) -> Vec<usize> {
    (0..PRODUCTS.len())
        .filter(|p| mask & (1 << p) != 0)
        .collect()
}

/// Checks every report of the book (both presets, unfiltered and filtered to `products`).
fn check_all(book: &Book, products: &[usize]) -> Result<(), TestCaseError> {
    for rules in PRESETS {
        let q = query(rules);
        checked_report(book, &q, &Selection::all())?;
        checked_report(book, &q, &product_selection(book, products))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// (a) revision chains inside one month

/// One line inserted into a chain: start and end picks inside the room left, and its terms.
#[derive(Clone, Debug)]
struct Step {
    start: u16,
    end: Option<u16>,
    product: usize,
    quantity: u32,
    price_cents: u32,
    currency: Cur,
}

fn step() -> impl Strategy<Value = Step> {
    (
        any::<u16>(),
        proptest::option::of(any::<u16>()),
        0..PRODUCTS.len(),
        0u32..5,
        0u32..50_000,
        prop_oneof![Just(Cur::Empty), Just(Cur::Usd)],
    )
        .prop_map(
            |(start, end, product, quantity, price_cents, currency)| Step {
                start,
                end,
                product,
                quantity,
                price_cents,
                currency,
            },
        )
}

/// The days a chain between line `s` and its predecessor can use: from the first day of
/// `s`'s start month (not before the predecessor's start) to the day before `s` starts.
fn room(raw: &RawBook, s: usize) -> Option<(usize, Date, Date)> {
    let p = raw.lines[s].revises?;
    let start = raw.lines[s].start;
    let lo = Month::of(start).first_day().max(raw.lines[p].start);
    let hi = add_days(start, -1);
    (lo <= hi).then_some((p, lo, hi))
}

/// The book with 1-3 lines between some revising lines and their predecessors: all inside the
/// successor's start month and before its start, each revising the one before.
fn split_chains(raw: &RawBook, chains: &[Option<Vec<Step>>]) -> RawBook {
    let mut out = raw.clone();
    let candidates: Vec<usize> = (0..raw.lines.len())
        .filter(|&s| room(raw, s).is_some())
        .collect();
    for (&s, steps) in candidates.iter().zip(chains) {
        let Some(steps) = steps else { continue };
        let (p, lo, hi) = room(raw, s).unwrap();
        let span = days_between(lo, hi) + 1;
        let mut starts: Vec<Date> = steps
            .iter()
            .map(|st| add_days(lo, i64::from(st.start) % span))
            .collect();
        starts.sort();
        let mut previous = p;
        for (st, start) in steps.iter().zip(starts) {
            let left = days_between(start, hi) + 1;
            let template = &raw.lines[s];
            out.lines.push(RawLine {
                product: st.product,
                quantity: st.quantity,
                price_cents: st.price_cents,
                currency: st.currency,
                discount: 0,
                period: (IntervalUnit::Month, 1),
                start,
                end: st.end.map(|e| add_days(start, i64::from(e) % left)),
                revises: Some(previous),
                ..template.clone()
            });
            previous = out.lines.len() - 1;
        }
        out.lines[s].revises = Some(previous);
    }
    out
}

fn chain_case() -> impl Strategy<Value = (RawBook, Vec<Option<Vec<Step>>>, u8)> {
    any_book().prop_flat_map(|raw| {
        let n = (0..raw.lines.len())
            .filter(|&s| room(&raw, s).is_some())
            .count();
        (
            Just(raw),
            proptest::collection::vec(
                proptest::option::weighted(0.7, proptest::collection::vec(step(), 1..=3)),
                n,
            ),
            any::<u8>(),
        )
    })
}

// ---------------------------------------------------------------------------------------
// (b) inclusive and exclusive end dates

/// Revising lines starting after their predecessor: (successor, predecessor).
fn revisions(raw: &RawBook) -> Vec<(usize, usize)> {
    raw.lines
        .iter()
        .enumerate()
        .filter_map(|(s, l)| l.revises.map(|p| (s, p)))
        .filter(|&(s, p)| raw.lines[s].start > raw.lines[p].start)
        .collect()
}

/// The book where the predecessors of the revisions `mask` picks end on the day before their
/// successor starts (inclusive), and the same where they end on its start day (exclusive).
fn end_styles(raw: &RawBook, mask: u64) -> (RawBook, RawBook) {
    let (mut inclusive, mut exclusive) = (raw.clone(), raw.clone());
    for (k, (s, p)) in revisions(raw).into_iter().enumerate() {
        if mask & (1 << (k % 64)) == 0 {
            continue;
        }
        let start = raw.lines[s].start;
        inclusive.lines[p].end = Some(add_days(start, -1));
        exclusive.lines[p].end = Some(start);
    }
    (inclusive, exclusive)
}

// ---------------------------------------------------------------------------------------
// (c) renamed ids

/// Other ids for the book's lines and contracts: a random bijection (distinct names, a
/// random order, some non-ASCII), line ids and contract ids kept apart.
fn renamed(raw: &RawBook, seed: u64) -> Names {
    const PREFIXES: [&str; 6] = ["", "z", "A", "line", "0", "é"];
    let plain = Names::plain(raw);
    let mut order: Vec<usize> = (0..raw.lines.len()).collect();
    shuffle(&mut order, seed);
    let lines = order
        .iter()
        .enumerate()
        .map(|(i, &o)| {
            format!(
                "{}.{o}",
                PREFIXES[(seed.rotate_left(i as u32) % 6) as usize]
            )
        })
        .collect();
    let keys: Vec<(usize, u8)> = plain.contracts.keys().copied().collect();
    let mut order: Vec<usize> = (0..keys.len()).collect();
    shuffle(&mut order, seed.rotate_left(29));
    let contracts = keys
        .iter()
        .zip(&order)
        .enumerate()
        .map(|(i, (&k, &o))| {
            let prefix = PREFIXES[(seed.rotate_right(i as u32) % 6) as usize];
            (k, format!("{prefix}:{o}"))
        })
        .collect();
    Names { lines, contracts }
}

/// Every customer's movements under both presets, without line ids (ties between lines that
/// are identical in everything the report uses may be broken either way), sorted.
fn movements_without_ids(book: &Book) -> Vec<Vec<(Month, Kind, Money)>> {
    trails(book)
        .into_iter()
        .map(|t| t.into_iter().map(|(m, k, a, _)| (m, k, a)).collect())
        .collect()
}

// ---------------------------------------------------------------------------------------
// (d) fx

/// A customer renewing a USD line at the same quantity and price in a later month (the
/// renewal runs on: its customer has no other change).
#[derive(Clone, Debug)]
struct Renewal {
    product: usize,
    quantity: u32,
    price_cents: u32,
    discount: u32,
    period: u32,
    old_start: Date,
    /// Months from the old line's start month to the renewal's (at most the end of the
    /// reported range).
    gap: i32,
    day: u8,
    /// The renewal names the old line in `revises` (else the family pairs them).
    linked: bool,
    /// The old line's end_date is written (else it is superseded by the renewal, R1).
    old_end_written: bool,
    /// An unchanging BRL line the customer also holds, and its registration day.
    anchor: Option<u32>,
    registered: Option<Date>,
    /// The USD rate of the renewal's month.
    rate: u32,
}

fn renewal() -> impl Strategy<Value = Renewal> {
    (
        (
            0..PRODUCTS.len(),
            1u32..5,
            1u32..50_000,
            prop_oneof![Just(0u32), 0u32..100],
            prop_oneof![Just(1u32), Just(3), Just(12)],
            (12..=33usize, any::<u8>()).prop_map(|(m, d)| day_of(month_at(m), d)),
            1i32..=14,
            any::<u8>(),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(1u32..50_000),
            proptest::option::of(day(false)),
            30_000u32..=70_000,
        ),
    )
        .prop_map(
            |(
                (product, quantity, price_cents, discount, period, old_start, gap, day),
                (linked, old_end_written, anchor, registered, rate),
            )| Renewal {
                product,
                quantity,
                price_cents,
                discount,
                period,
                old_start,
                gap,
                day,
                linked,
                old_end_written,
                anchor,
                registered,
                rate,
            },
        )
}

/// The book with a new customer holding `r`'s old line (index `old`) and its renewal
/// (`old + 1`), and the renewal's month.
fn with_renewal(raw: &RawBook, r: &Renewal) -> (RawBook, usize, Month) {
    let mut out = raw.clone();
    let customer = out.customers();
    out.registered.push(r.registered);
    let month = Month::of(r.old_start)
        .offset(r.gap)
        .min(query(Rules::Conexa).to);
    let new_start = day_of(month, r.day);
    out.usd_rates
        .0
        .push((month.since(month_at(0)) as usize, r.rate));
    let old = out.lines.len();
    let line = RawLine {
        customer,
        contract: Some(0),
        product: r.product,
        quantity: r.quantity,
        price_cents: r.price_cents,
        discount: r.discount,
        period: (IntervalUnit::Month, r.period as u16),
        currency: Cur::Usd,
        start: r.old_start,
        end: (r.old_end_written || !r.linked).then(|| add_days(new_start, -1)),
        revises: None,
    };
    out.lines.push(line.clone());
    out.lines.push(RawLine {
        start: new_start,
        end: None,
        revises: r.linked.then_some(old),
        ..line
    });
    if let Some(price_cents) = r.anchor {
        out.lines.push(RawLine {
            customer,
            contract: Some(1),
            product: 2,
            quantity: 1,
            price_cents,
            discount: 0,
            period: (IntervalUnit::Month, 1),
            currency: Cur::Brl,
            start: r.old_start,
            end: None,
            revises: None,
        });
    }
    (out, old, month)
}

// ---------------------------------------------------------------------------------------
// (c) pairing without ids: the same contract first (R3)

/// One contract's plan change in month M: the old line ends inside M, the new one starts in
/// M and runs on; both of the core family.
#[derive(Clone, Debug)]
struct Change {
    old: (usize, u32, u32, u16),
    new: (usize, u32, u32, u8),
}

fn change() -> impl Strategy<Value = Change> {
    let terms = || (0usize..2, 1u32..4, 1u32..30_000);
    (
        (terms(), any::<u16>()).prop_map(|((p, q, c), e)| (p, q, c, e)),
        (terms(), any::<u8>()).prop_map(|((p, q, c), d)| (p, q, c, d)),
    )
        .prop_map(|(old, new)| Change { old, new })
}

/// A new customer changing plan in several contracts in one month (no `revises`), with maybe
/// one more old line and one more new line of the same family, each in a contract of its
/// own. Returns the book, the month, the (old, new) line indices of each contract, and the
/// extra old and new lines.
#[allow(clippy::type_complexity)]
fn with_plan_changes(
    raw: &RawBook,
    month: usize,
    changes: &[Change],
    extra_old: Option<(u32, u16)>,
    extra_new: Option<(u32, u8)>,
) -> (
    RawBook,
    Month,
    Vec<(usize, usize)>,
    Option<usize>,
    Option<usize>,
) {
    let mut out = raw.clone();
    let customer = out.customers();
    out.registered.push(None);
    let m = month_at(month);
    let began = m.prev().first_day();
    let inside = |pick: u16| {
        add_days(
            m.first_day(),
            i64::from(pick) % (i64::from(m.last_day().day()) - 1),
        )
    };
    let line = |contract, product, quantity, price_cents, start, end| RawLine {
        customer,
        contract,
        product,
        quantity,
        price_cents,
        discount: 0,
        period: (IntervalUnit::Month, 1),
        currency: Cur::Brl,
        start,
        end,
        revises: None,
    };
    let mut pairs = Vec::new();
    for (k, c) in changes.iter().enumerate() {
        let contract = Some(k as u8);
        let (p, q, cents, end) = c.old;
        out.lines
            .push(line(contract, p, q, cents, began, Some(inside(end))));
        let (p, q, cents, day) = c.new;
        out.lines
            .push(line(contract, p, q, cents, day_of(m, day), None));
        pairs.push((out.lines.len() - 2, out.lines.len() - 1));
    }
    let old = extra_old.map(|(cents, end)| {
        out.lines
            .push(line(None, 0, 1, cents, began, Some(inside(end))));
        out.lines.len() - 1
    });
    let new = extra_new.map(|(cents, day)| {
        out.lines
            .push(line(None, 1, 1, cents, day_of(m, day), None));
        out.lines.len() - 1
    });
    (out, m, pairs, old, new)
}

proptest! {
    #![proptest_config(cases(100))]

    /// (a) Lines between a line and its revising successor that start and end inside the
    /// successor's start month (each revising the previous) never reach a month end; the
    /// chain is followed through them (R2), so every report and trail is unchanged.
    #[test]
    fn revision_chains_inside_a_month_change_nothing(
        (raw, chains, mask) in chain_case(),
    ) {
        let split = split_chains(&raw, &chains);
        let (a, b) = (load(&raw), load(&split));
        check_effective_ends(&split, &Names::plain(&split), &b)?;
        check_all(&b, &products_in(mask))?;
        let difference = first_difference(&reports(&a, &products_in(mask)), &reports(&b, &products_in(mask)));
        prop_assert!(difference.is_none(), "{}", difference.unwrap());
        prop_assert_eq!(trails(&a), trails(&b));
    }

    /// (b) A revising line starting the day after its predecessor's last day gives the same
    /// report as the book where the predecessor's end_date is the successor's start day (the
    /// exclusive-end export style): R1 ends the predecessor the day before.
    #[test]
    fn exclusive_end_dates_report_as_inclusive_ones(
        raw in any_book(),
        picks in any::<u64>(),
        mask in any::<u8>(),
    ) {
        let (inclusive, exclusive) = end_styles(&raw, picks);
        let (a, b) = (load(&inclusive), load(&exclusive));
        check_effective_ends(&exclusive, &Names::plain(&exclusive), &b)?;
        check_all(&b, &products_in(mask))?;
        for (la, lb) in a.lines.ids.iter().zip(b.lines.ids.iter()) {
            prop_assert_eq!(la, lb);
        }
        for (i, (la, lb)) in a.lines.items.iter().zip(&b.lines.items).enumerate() {
            prop_assert_eq!(la.end, lb.end, "effective end of {}", a.lines.ids.get(i as u32));
        }
        let difference = first_difference(&reports(&a, &products_in(mask)), &reports(&b, &products_in(mask)));
        prop_assert!(difference.is_none(), "{}", difference.unwrap());
        prop_assert_eq!(trails(&a), trails(&b));
    }

    /// (c) Renaming line ids and contract ids (a bijection that keeps which lines share a
    /// contract and what revises what) never changes a report (R3).
    #[test]
    fn renaming_ids_changes_no_report(
        raw in any_book(),
        seed in any::<u64>(),
        mask in any::<u8>(),
    ) {
        let names = renamed(&raw, seed);
        let (a, b) = (load(&raw), load_named(&raw, &names));
        check_effective_ends(&raw, &names, &b)?;
        check_all(&b, &products_in(mask))?;
        let difference = first_difference(&reports(&a, &products_in(mask)), &reports(&b, &products_in(mask)));
        prop_assert!(difference.is_none(), "{}", difference.unwrap());
        prop_assert_eq!(movements_without_ids(&a), movements_without_ids(&b));
    }

    /// (d) With every rate equal to 1, `fx` is zero in every month and no trail has one.
    #[test]
    fn no_fx_at_rates_of_one(raw in any_book(), mask in any::<u8>()) {
        let raw = RawBook { usd_rates: Rates::all_ones(), ..raw };
        let book = load(&raw);
        check_all(&book, &products_in(mask))?;
        let fx = kind("fx");
        for rules in PRESETS {
            let q = query(rules);
            let filtered = ByCustomer::new(&book, &product_selection(&book, &products_in(mask)));
            for r in [report(&book, &q), report_selected(&book, &q, &filtered)] {
                for m in &r.months {
                    prop_assert!(m.get(fx).is_zero(), "fx in {:?}", m);
                }
            }
        }
        for t in trails(&book) {
            prop_assert!(t.iter().all(|m| m.1 != fx), "{:?}", t);
        }
    }

    /// (d) A USD line renewed at the same quantity and price, starting the day after it ends
    /// (or superseding it) in a later month, after the rate moved: the customer's trail has no
    /// upsell or downsell, and the renewal's month has fx = MRR(new) - MRR(old).
    #[test]
    fn renewal_at_an_unchanged_price_is_fx_only(
        raw in any_book(),
        r in renewal(),
        mask in any::<u8>(),
    ) {
        let (raw, old, month) = with_renewal(&raw, &r);
        let book = load(&raw);
        check_all(&book, &products_in(mask))?;
        let (mrr_old, mrr_new) = (raw.mrr(old), raw.mrr(old + 1));
        let id = |i: usize| book.lines.ids.find(&format!("l{i}")).unwrap() as usize;
        prop_assert_eq!(book.lines.items[id(old)].mrr(), mrr_old);
        prop_assert_eq!(book.lines.items[id(old + 1)].mrr(), mrr_new);
        let customer = format!("c{}", raw.customers() - 1);
        let fx = kind("fx");
        for rules in PRESETS {
            let t = trail_by_id(&book, &query(rules), &customer);
            for (m, k, amount, lines) in &t {
                prop_assert!(
                    !matches!(k, Kind::Upsell | Kind::Downsell),
                    "{} {:?} {} {:?} in {:?}", m, k, amount, lines, t
                );
                prop_assert!(*k != fx || *m == month, "fx in {}: {:?}", m, t);
            }
            let moved: Money = t.iter().filter(|m| m.1 == fx).map(|m| m.2).sum();
            prop_assert_eq!(moved, mrr_new - mrr_old, "fx of the renewal in {}: {:?}", month, t);
        }
    }

    /// (f) Without a filter there is no segment movement (`checked_report`); the reports
    /// filtered to the two sides of a partition of the products add up to the whole report
    /// (MRR at the start and end of every month, the sum of its movements, and new,
    /// cross-sell, reactivation and churn kind by kind), each one consistent with its own
    /// lines; a filter keeping every product is no filter; reports filtered to the two sides
    /// of a partition of the customers add up kind by kind, with no segment movement.
    #[test]
    fn filtered_reports_of_a_partition_add_up(
        raw in any_book(),
        mask in any::<u8>(),
        who in any::<u8>(),
    ) {
        let book = load(&raw);
        let (inside, outside): (Vec<usize>, Vec<usize>) =
            (0..PRODUCTS.len()).partition(|p| mask & (1 << p) != 0);
        let everything: Vec<usize> = (0..PRODUCTS.len()).collect();
        for rules in PRESETS {
            let q: Query = query(rules);
            let whole = checked_report(&book, &q, &Selection::all())?;
            let a = checked_report(&book, &q, &product_selection(&book, &inside))?;
            let b = checked_report(&book, &q, &product_selection(&book, &outside))?;
            for ((w, a), b) in whole.months.iter().zip(&a.months).zip(&b.months) {
                prop_assert_eq!(w.mrr_start, a.mrr_start + b.mrr_start, "mrr_start {}", w.month);
                prop_assert_eq!(w.mrr_end, a.mrr_end + b.mrr_end, "mrr_end {}", w.month);
                let sum = |m: &expansa_movements::MonthTotals| -> Money {
                    Kind::ALL.iter().map(|&k| m.get(k)).sum()
                };
                prop_assert_eq!(sum(w), sum(a) + sum(b), "movements of {}", w.month);
                // R5: new, cross-sell, reactivation and churn follow the customer's whole
                // status, so they split between the two sides; a change from one side to
                // the other is upsell, downsell or fx in the whole report and MRR leaving one
                // side and entering the other.
                for key in ["new", "cross_sell", "reactivation", "churn"] {
                    let k = kind(key);
                    prop_assert_eq!(w.get(k), a.get(k) + b.get(k), "{} in {}", key, w.month);
                }
                let changes = |m: &expansa_movements::MonthTotals| -> Money {
                    ["upsell", "downsell", "fx", "entering_segment", "leaving_segment"]
                        .into_iter()
                        .map(|key| m.get(kind(key)))
                        .sum()
                };
                prop_assert_eq!(changes(w), changes(a) + changes(b), "changes in {}", w.month);
                prop_assert!(a.customers_end.max(b.customers_end) <= w.customers_end);
                prop_assert!(a.customers_end + b.customers_end >= w.customers_end);
            }
            let all = checked_report(&book, &q, &product_selection(&book, &everything))?;
            prop_assert_eq!(render_json(&all), render_json(&whole));
            // Customer filters keep whole customers: the two sides add up kind by kind, with
            // nothing entering or leaving a segment.
            let (mut mine, mut theirs) = (Vec::new(), Vec::new());
            for (c, id) in book.customers.ids.iter().enumerate() {
                if who & (1 << (c % 8)) != 0 {
                    mine.push(id);
                } else {
                    theirs.push(id);
                }
            }
            let a = checked_report(&book, &q, &customer_selection(&book, &mine))?;
            let b = checked_report(&book, &q, &customer_selection(&book, &theirs))?;
            for ((w, a), b) in whole.months.iter().zip(&a.months).zip(&b.months) {
                prop_assert_eq!(w.mrr_end, a.mrr_end + b.mrr_end);
                prop_assert_eq!(w.customers_end, a.customers_end + b.customers_end);
                for k in Kind::ALL {
                    prop_assert_eq!(w.get(k), a.get(k) + b.get(k), "{:?} in {}", k, w.month);
                    prop_assert_eq!(w.retained(k), a.retained(k) + b.retained(k));
                }
                for key in ["entering_segment", "leaving_segment"] {
                    prop_assert!(a.get(kind(key)).is_zero() && b.get(kind(key)).is_zero());
                }
            }
        }
    }

    /// (c) Several plan changes of one customer in one month across contracts, without
    /// `revises` and with ids in any order: every new line replaces the old line of its own
    /// contract (R3 step 1); the line left in another contract pairs with the old line left
    /// (step 2), or is a sale; an old line left alone is a downsell.
    #[test]
    fn plan_changes_pair_within_their_contract(
        raw in any_book(),
        month in 13..=37usize,
        changes in proptest::collection::vec(change(), 2..=3),
        extra_old in proptest::option::of((1u32..30_000, any::<u16>())),
        extra_new in proptest::option::of((1u32..30_000, any::<u8>())),
        seed in any::<u64>(),
    ) {
        let (raw, m, pairs, old, new) = with_plan_changes(&raw, month, &changes, extra_old, extra_new);
        let names = renamed(&raw, seed);
        let book = load_named(&raw, &names);
        check_all(&book, &[0])?;
        let id = |i: usize| names.lines[i].clone();
        let mut expected: Vec<(Kind, Money, Vec<String>)> = Vec::new();
        let mut amendment = |new: usize, old: usize| {
            let delta = raw.mrr(new) - raw.mrr(old);
            let kind = if delta.is_positive() { Kind::Upsell } else { Kind::Downsell };
            if !delta.is_zero() {
                expected.push((kind, delta, vec![id(new), id(old)]));
            }
        };
        for &(o, n) in &pairs {
            amendment(n, o);
        }
        match (old, new) {
            (Some(o), Some(n)) => amendment(n, o),
            (Some(o), None) => expected.push((Kind::Downsell, -raw.mrr(o), vec![id(o)])),
            _ => {}
        }
        expected.sort();
        let customer = format!("c{}", raw.customers() - 1);
        for rules in PRESETS {
            let t = trail_by_id(&book, &query(rules), &customer);
            let mut changed: Vec<(Kind, Money, Vec<String>)> = t
                .iter()
                .filter(|e| e.0 == m && matches!(e.1, Kind::Upsell | Kind::Downsell))
                .map(|e| (e.1, e.2, e.3.clone()))
                .collect();
            changed.sort();
            prop_assert_eq!(&changed, &expected, "{:?} in {}: {:?}", rules, m, t);
            if let (None, Some(n)) = (old, new) {
                let sale = t.iter().any(|e| {
                    e.0 == m && matches!(e.1, Kind::New | Kind::CrossSell) && e.2 == raw.mrr(n)
                });
                prop_assert!(sale, "{:?}: {} is a sale in {}: {:?}", rules, id(n), m, t);
            }
        }
    }
}
