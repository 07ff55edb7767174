//! Invariants of the movement report on random books (lines in BRL or USD, a few contracts
//! per customer, `revises` as R1 allows it: `support`), written as CSV and read back:
//! - the import stores R1's effective ends (a line ends the day before its earliest
//!   successor starts);
//! - the identity `MRR(c, M) = MRR(c, M-1) + movements(c, M)` for every customer and month,
//!   against an independent month-end snapshot of the lines as imported (effective ends);
//! - the report's totals are the sums of the trail;
//! - every amendment's change splits into the price change at the predecessor's rate and
//!   `fx` (R4);
//! - the same report for any row order of the files and any thread count.

mod support;

use expansa_ledger::{Money, Month};
use expansa_movements::{render_json, report, trail, Kind, Rules, Selection};
use proptest::prelude::*;
use support::*;

#[test]
fn kinds_of_issue_12() {
    // Nine kinds in report order, the JSON keys of R4 and R5.
    let keys: Vec<&str> = Kind::ALL.iter().map(|k| k.key()).collect();
    assert_eq!(
        keys,
        [
            "new",
            "cross_sell",
            "upsell",
            "reactivation",
            "downsell",
            "churn",
            "fx",
            "entering_segment",
            "leaving_segment"
        ]
    );
}

proptest! {
    // 160 cases by default; PROPTEST_CASES=N runs more.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(160)
    ))]

    #[test]
    fn identity_holds_for_every_customer_and_month(
        raw in any_book(),
        chartmogul in any::<bool>(),
    ) {
        let names = Names::plain(&raw);
        let book = load_named(&raw, &names);
        check_effective_ends(&raw, &names, &book)?;
        let q = query(if chartmogul { Rules::Chartmogul } else { Rules::Conexa });
        let r = checked_report(&book, &q, &Selection::all())?;
        check_amendments(&raw, &names, &book, &q)?;
        prop_assert_eq!(&r, &report(&book, &q));
        let mut totals = vec![Money::ZERO; r.months.len()];
        for c in 0..book.customers.len() as u32 {
            let mine = |_, l: &expansa_ledger::Line| l.customer == c;
            let moves = trail(&book, &q, c);
            for (i, m) in r.months.iter().enumerate() {
                let moved: Money = moves.iter().filter(|t| t.month == m.month).map(|t| t.amount).sum();
                let (prev, now) = (snapshot(&book, mine, m.month.prev()), snapshot(&book, mine, m.month));
                prop_assert_eq!(now, prev + moved, "customer {} month {}", c, m.month);
                totals[i] += moved;
            }
            prop_assert!(moves.iter().all(|t| t.month >= q.from && t.month <= q.to));
        }
        for (i, m) in r.months.iter().enumerate() {
            // Totals are the sums of the trail, and the month-end snapshots.
            let by_kind: Money = Kind::ALL.iter().map(|&k| m.get(k)).sum();
            prop_assert_eq!(by_kind, totals[i]);
            prop_assert_eq!(m.mrr_end, m.mrr_start + by_kind);
        }
        // The effective ends, independently: every line's month-end presence.
        let ends = raw.effective_ends();
        let mut month: Month = q.from.prev();
        while month <= q.to {
            let day = month.last_day();
            let expected: Money = raw.lines.iter().enumerate()
                .filter(|(i, l)| l.start <= day && ends[*i].is_none_or(|e| day <= e))
                .map(|(i, _)| raw.mrr(i))
                .sum();
            prop_assert_eq!(snapshot(&book, |_, _| true, month), expected, "MRR at the end of {}", month);
            month = month.next();
        }
    }

    #[test]
    fn same_report_for_any_row_order_and_thread_count(
        raw in any_book(),
        other_seed in any::<u64>(),
    ) {
        // Import and report each run on their own pool.
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let three = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let reordered = RawBook { seed: other_seed, ..raw.clone() };
        let a = one.install(|| load(&raw));
        let b = three.install(|| load(&reordered));
        for rules in PRESETS {
            let q = query(rules);
            let ra = one.install(|| render_json(&report(&a, &q)));
            let rb = three.install(|| render_json(&report(&b, &q)));
            prop_assert_eq!(ra, rb);
        }
    }
}
