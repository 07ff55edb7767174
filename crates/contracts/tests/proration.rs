//! Invariants of terms and prorate multipliers, on any dates.

use expansa_contracts::{add_months, term_end, Precision, Term};
use expansa_ledger::{Date, Decimal};
use proptest::prelude::*;

fn date() -> impl Strategy<Value = Date> {
    (0i32..20_000).prop_map(|n| {
        Date::new(1990, 1, 1)
            .unwrap()
            .checked_add(jiff::Span::new().days(n))
            .unwrap()
    })
}

proptest! {
    /// Whole months then days cover the span exactly: first + months + days = last + 1.
    #[test]
    fn months_and_days_cover_the_span(first in date(), len in 0i32..2000) {
        let last = first.checked_add(jiff::Span::new().days(len)).unwrap();
        let t = Term::between(first, last).unwrap();
        let rest = add_months(first, t.months as i32).unwrap();
        prop_assert!(rest <= last.tomorrow().unwrap());
        prop_assert_eq!(rest.checked_add(jiff::Span::new().days(t.days as i64)).unwrap(), last.tomorrow().unwrap());
        prop_assert_eq!(t.total_days as i32, len + 1);
        // One more whole month would overshoot.
        prop_assert!(add_months(first, t.months as i32 + 1).unwrap() > last.tomorrow().unwrap());
    }

    /// A whole term of N months is exactly N / price term under every precision but `day`.
    #[test]
    fn whole_terms_are_exact(first in date(), months in 1u32..60, term in 1u32..36) {
        let last = term_end(first, months).unwrap();
        let t = Term::between(first, last).unwrap();
        prop_assert_eq!((t.months, t.days), (months, 0));
        let expected = Decimal::from(months) / Decimal::from(term);
        for p in [Precision::MonthDay, Precision::Month] {
            prop_assert_eq!(t.multiplier(p, term).apply(Decimal::ONE, 20).unwrap(), expected.round_dp(20));
        }
    }

    /// Longer terms never cost less.
    #[test]
    fn multiplier_grows_with_the_term(first in date(), a in 0i32..800, b in 0i32..800) {
        let (short, long) = (a.min(b), a.max(b));
        let end = |n: i32| first.checked_add(jiff::Span::new().days(n)).unwrap();
        for p in [Precision::MonthDay, Precision::Day, Precision::Month] {
            let m = |n| Term::between(first, end(n)).unwrap().multiplier(p, 12).apply(Decimal::ONE, 20).unwrap();
            prop_assert!(m(short) <= m(long));
        }
    }
}

/// Any day from 1990-01-01 to 9999-12-31, the last one often.
fn any_day() -> impl Strategy<Value = Date> {
    let first = Date::new(1990, 1, 1).unwrap();
    let last = Date::new(9999, 12, 31).unwrap();
    let span = (last - first).get_days();
    prop_oneof![
        (0..=span).prop_map(move |n| first.checked_add(jiff::Span::new().days(n)).unwrap()),
        (0i32..400).prop_map(move |n| last.checked_sub(jiff::Span::new().days(n)).unwrap()),
        Just(last),
    ]
}

proptest! {
    /// Terms reaching the last day a date holds (9999-12-31, whose next day is not a date)
    /// are measured like any other: the whole months end on the term's last day or the days
    /// left over reach it, one more month overshoots, every day is counted once.
    #[test]
    fn terms_up_to_9999_12_31_cover_the_span(a in any_day(), b in any_day()) {
        let (first, last) = (a.min(b), a.max(b));
        let t = Term::between(first, last).unwrap();
        prop_assert_eq!(i64::from(t.total_days), (last - first).get_days() as i64 + 1);
        if t.days == 0 {
            prop_assert_eq!(term_end(first, t.months), Some(last));
        } else {
            let rest = add_months(first, t.months as i32).unwrap();
            prop_assert_eq!(rest.checked_add(jiff::Span::new().days(t.days as i64 - 1)).unwrap(), last);
        }
        prop_assert!(term_end(first, t.months + 1).is_none_or(|e| e > last));
        // Every multiplier is representable and its product with a price is exact or refused.
        for p in [Precision::MonthDay, Precision::Day, Precision::Month] {
            let m = t.multiplier(p, 12);
            prop_assert!(m.rounded(10) < Decimal::from(100_000));
            let (num, den) = m.to_string().split_once('/').map(|(n, d)| (n.parse::<i128>().unwrap(), d.parse::<i128>().unwrap())).unwrap();
            // The largest decimal times the multiplier fits exactly when the multiplier is at
            // most 1: beyond, the result is refused, never wrapped or truncated.
            prop_assert_eq!(m.apply(Decimal::MAX, 0).is_some(), num <= den);
        }
    }
}
