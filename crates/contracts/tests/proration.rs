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
