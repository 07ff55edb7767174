//! (e) of issue 12 on random books (`crates/movements/tests/support`, written as CSV and read
//! back): the retention KPIs of a month M (nrr, grr, expansion_rate, contraction_rate) count
//! only the customers paying at its start (R6), so adding customers who had no MRR at the end
//! of M-1 never changes them: brand-new customers starting in M (registered before M or not,
//! so that the Conexa preset can book cross-sell for them), customers returning in M after a
//! gap, and customers who held only free lines at the end of M-1 (possibly upgraded in M).
//! The KPIs are also checked against the R6 formulas over the report's `retained` movements.

#[path = "../../movements/tests/support/mod.rs"]
mod support;

use expansa_kpi::{kpis, ratio, KpiMonth};
use expansa_ledger::{Book, Decimal, Month};
use expansa_movements::{ByCustomer, Kind, Query, Selection};
use proptest::prelude::*;
use support::*;

/// How a newcomer stands at the end of M-1.
#[derive(Clone, Copy, Debug)]
enum Status {
    /// No line before M.
    New,
    /// Paying lines that ended before the end of M-1 (after at least one month end).
    Returning,
    /// Only a free line, running through the end of M-1.
    Free,
}

/// A line of a newcomer from M on.
#[derive(Clone, Debug)]
struct Later {
    product: usize,
    quantity: u32,
    price_cents: u32,
    currency: Cur,
    /// Days after the first of M (the first line: inside M).
    offset: u16,
    len: Option<u16>,
    revises: Option<usize>,
}

#[derive(Clone, Debug)]
struct Newcomer {
    status: Status,
    /// Picks the registration day: none, before M, or in M.
    registered: Option<(bool, u8)>,
    /// For `Returning` (months back, day picks) and `Free` (day pick).
    before: (i32, u8, u16),
    lines: Vec<Later>,
}

fn later() -> impl Strategy<Value = Later> {
    (
        0..PRODUCTS.len(),
        0u32..4,
        0u32..30_000,
        prop_oneof![Just(Cur::Empty), Just(Cur::Usd)],
        0u16..120,
        proptest::option::of(0u16..200),
        proptest::option::of(0usize..8),
    )
        .prop_map(
            |(product, quantity, price_cents, currency, offset, len, revises)| Later {
                product,
                quantity,
                price_cents,
                currency,
                offset,
                len,
                revises,
            },
        )
}

fn newcomer() -> impl Strategy<Value = Newcomer> {
    (
        prop_oneof![
            Just(Status::New),
            Just(Status::Returning),
            Just(Status::Free)
        ],
        proptest::option::of((any::<bool>(), any::<u8>())),
        (2i32..=14, any::<u8>(), any::<u16>()),
        proptest::collection::vec(later(), 1..4),
    )
        .prop_map(|(status, registered, before, lines)| Newcomer {
            status,
            registered,
            before,
            lines,
        })
}

/// The book with the newcomers added as new customers, none of them with MRR at the end of
/// the month before `m`.
fn with_newcomers(raw: &RawBook, m: Month, newcomers: &[Newcomer]) -> RawBook {
    let mut out = raw.clone();
    let from = out.lines.len();
    for n in newcomers {
        let customer = out.customers();
        out.registered.push(n.registered.map(|(before, pick)| {
            let month = if before {
                m.offset(-1 - i32::from(pick % 12))
            } else {
                m
            };
            day_of(month, pick / 12)
        }));
        let line = |start, end, price_cents| RawLine {
            customer,
            contract: Some(0),
            product: 0,
            quantity: 1,
            price_cents,
            discount: 0,
            period: (expansa_ledger::IntervalUnit::Month, 1),
            currency: Cur::Empty,
            start,
            end,
            revises: None,
        };
        let (back, pick, len) = n.before;
        match n.status {
            Status::New => {}
            Status::Returning => {
                // Active at the end of its start month, ended before the end of M-1.
                let started = m.offset(-back);
                let first_end = started.last_day();
                let room = days_between(first_end, m.prev().last_day());
                let end = add_days(first_end, i64::from(len) % room);
                out.lines
                    .push(line(day_of(started, pick), Some(end), 1 + u32::from(len)));
            }
            Status::Free => {
                let start = day_of(m.offset(-1 - back % 3), pick);
                out.lines.push(RawLine {
                    product: usize::from(pick) % PRODUCTS.len(),
                    ..line(start, None, 0)
                });
            }
        }
        for (k, l) in n.lines.iter().enumerate() {
            let offset = if k == 0 {
                // The first line starts in M.
                i64::from(l.offset) % i64::from(m.last_day().day())
            } else {
                i64::from(l.offset)
            };
            let start = add_days(m.first_day(), offset);
            out.lines.push(RawLine {
                product: l.product,
                quantity: l.quantity,
                price_cents: l.price_cents,
                currency: l.currency,
                start,
                end: l.len.map(|d| add_days(start, i64::from(d))),
                revises: l.revises,
                contract: Some((k % 2) as u8),
                ..line(start, None, 0)
            });
        }
    }
    out.normalize_revises(from);
    out
}

/// A month the book is busy in: the start month of one of its lines, or up to two after it.
fn month_of(raw: &RawBook, pick: usize) -> Month {
    let line = &raw.lines[pick % raw.lines.len()];
    Month::of(line.start).offset((pick / raw.lines.len() % 3) as i32)
}

/// The KPIs of month `m` under `q`'s preset, for the lines `selection` keeps.
fn month_kpis(book: &Book, q: &Query, m: Month, selection: &Selection) -> KpiMonth {
    let q = Query {
        from: m,
        to: m,
        rules: q.rules,
    };
    let r = kpis(book, &q, &ByCustomer::new(book, selection), None);
    r.months.into_iter().next().unwrap()
}

/// The retention KPIs, and the R6 formulas over the report's `retained` movements.
fn retention(k: &KpiMonth) -> Result<[Option<Decimal>; 4], TestCaseError> {
    let t = &k.movements;
    let start = t.mrr_start.as_decimal();
    let r = |key: &str| t.retained(kind(key)).as_decimal();
    // A `new` of a customer paying at the start (Conexa: registered after the month) is
    // growth of a retained customer; a reactivation never is retained.
    prop_assert!(r("reactivation").is_zero());
    let gained = r("upsell") + r("cross_sell") + r("new");
    let lost = r("downsell") + r("churn") + r("leaving_segment");
    prop_assert_eq!(
        k.nrr,
        ratio(start + gained + lost + r("entering_segment"), start),
        "nrr of {}",
        t.month
    );
    prop_assert_eq!(k.grr, ratio(start + lost, start), "grr of {}", t.month);
    prop_assert_eq!(k.expansion_rate, ratio(gained, start));
    prop_assert_eq!(k.contraction_rate, ratio(-r("downsell"), start));
    Ok([k.nrr, k.grr, k.expansion_rate, k.contraction_rate])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(128)
    ))]

    /// (e) Customers with no MRR at the end of M-1 change none of M's retention KPIs, nor the
    /// retained movements behind them, under both presets, with and without a product filter.
    #[test]
    fn newcomers_change_no_retention_kpi(
        raw in any_book(),
        pick in any::<usize>(),
        newcomers in proptest::collection::vec(newcomer(), 1..4),
        mask in any::<u8>(),
    ) {
        let m = month_of(&raw, pick);
        let grown = with_newcomers(&raw, m, &newcomers);
        let (a, b) = (load(&raw), load(&grown));
        let products: Vec<usize> = (0..PRODUCTS.len()).filter(|p| mask & (1 << p) != 0).collect();
        for rules in PRESETS {
            let q = query(rules);
            for (sa, sb) in [
                (Selection::all(), Selection::all()),
                (product_selection(&a, &products), product_selection(&b, &products)),
            ] {
                checked_report(&b, &Query { from: m.prev(), to: m, ..q }, &sb)?;
                let (ka, kb) = (month_kpis(&a, &q, m, &sa), month_kpis(&b, &q, m, &sb));
                prop_assert_eq!(ka.movements.mrr_start, kb.movements.mrr_start);
                prop_assert_eq!(retention(&ka)?, retention(&kb)?, "{:?} {} {:?}", rules, m, kb.movements);
                for kd in Kind::ALL {
                    prop_assert_eq!(ka.movements.retained(kd), kb.movements.retained(kd), "retained {:?}", kd);
                }
            }
        }
    }
}
