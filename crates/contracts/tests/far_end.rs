//! Contracts that run to 9999-12-31, the last day a date holds (and a common "no end" value
//! in billing exports): amendments are priced to the day, exactly, or refused with the
//! contract and its end; renewals that would leave the calendar are refused the same way.
//! The book is testdata/contracts-far-end.

mod common;
use common::*;
use expansa_contracts::{
    contract, quote_amend, quote_renew, AmendRequest, Change, Precision, Quote, QuoteError,
    RenewRequest, Term,
};
use expansa_ledger::{Book, Date, Decimal, SmallDecimal};
use proptest::prelude::*;

fn book() -> &'static Book {
    testdata("contracts-far-end")
}

fn amend(book: &Book, changes: Vec<Change>, precision: Precision) -> Result<Quote, QuoteError> {
    quote_amend(
        book,
        &AmendRequest {
            contract: "K9".into(),
            effective: day("2024-06-01"),
            changes,
            precision,
        },
    )
}

fn renew(contract: &str) -> Result<Quote, QuoteError> {
    quote_renew(
        book(),
        &RenewRequest {
            contract: contract.into(),
            ..Default::default()
        },
    )
}

#[test]
fn a_seat_added_until_9999_12_31_is_charged_for_every_month_until_then() {
    // 2024-06-01 .. 9999-12-31 is 95707 whole months (to 10000-01-01) and no day more:
    // 420.00 x 95707 / 12 = 3349745.00 exactly.
    let add = || vec![Change::Add("SEAT".into(), dec("1"))];
    let q = amend(book(), add(), Precision::MonthDay).unwrap();
    assert_eq!(q.end, Some(day("9999-12-31")));
    let l = &q.lines[0];
    assert_eq!(l.prorate_multiplier.to_string(), "95707/12");
    assert_eq!(
        l.prorate_multiplier.rounded(10).to_string(),
        "7975.5833333333"
    );
    assert_eq!(l.prorated_unit_price.to_string(), "3349745.00");
    assert_eq!(l.net_total.to_string(), "3349745.00");
    assert_eq!(q.totals[0].total.to_string(), "3349745.00");
    // By the day: 2913022 days x 12 / 365 / 12; 420 x 2913022 / 365 = 3351970.5205...
    let q = amend(book(), add(), Precision::Day).unwrap();
    assert_eq!(q.lines[0].prorate_multiplier.to_string(), "2913022/365");
    assert_eq!(q.lines[0].net_total.to_string(), "3351970.52");
    let q = amend(book(), add(), Precision::Month).unwrap();
    assert_eq!(q.lines[0].net_total.to_string(), "3349745.00");
    // The held line is closed the day before and replaced until 9999-12-31.
    assert_eq!(q.changes.len(), 2);
}

#[test]
fn an_amount_beyond_range_names_the_contract_and_its_end() {
    let err = amend(
        book(),
        vec![Change::Add("SEAT".into(), dec("100000000000000000000000"))],
        Precision::MonthDay,
    )
    .unwrap_err();
    assert!(
        matches!(&err, QuoteError::TooLarge { contract, end, .. }
            if contract == "K9" && *end == Some(day("9999-12-31"))),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with("contract K9 ends 9999-12-31: the prorated amount of SEAT"),
        "{message}"
    );
    assert!(
        message.contains("over 7975 years and 7 months"),
        "{message}"
    );
    assert!(
        message.contains("exceeds the largest amount expansa can represent"),
        "{message}"
    );
}

#[test]
fn contract_show_measures_a_term_to_9999_12_31() {
    let view = contract(book(), "K9", day("2024-06-01")).unwrap();
    assert_eq!(view.end, Some(day("9999-12-31")));
    // 2024-01-01 .. 9999-12-31: 7976 whole years.
    assert_eq!(view.term_months, Some(7976 * 12));
}

#[test]
fn renewals_that_would_leave_the_calendar_are_refused_clearly() {
    let err = renew("K9").unwrap_err();
    assert!(
        matches!(&err, QuoteError::NoRenewalTerm { contract, end, .. }
            if contract == "K9" && *end == day("9999-12-31")),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "contract K9 ends 9999-12-31: a renewal would start after 9999-12-31, the last day \
         expansa can represent; leave end_date empty for a contract without an end (evergreen)"
    );
    let err = renew("K8").unwrap_err();
    assert_eq!(
        err.to_string(),
        "contract K8 ends 9999-06-30: its 12-month renewal from 9999-07-01 would end after \
         9999-12-31, the last day expansa can represent"
    );
    // A renewal that ends on 9999-12-31 itself fits.
    let q = renew("K7").unwrap();
    assert_eq!(q.effective, day("9999-01-01"));
    assert_eq!(q.end, Some(day("9999-12-31")));
    assert_eq!(q.totals[0].total.to_string(), "1440.00");
}

/// Every day from 2024-06-01 to 9999-12-31.
fn end_day() -> impl Strategy<Value = Date> {
    let first = day("2024-06-01");
    let span = (day("9999-12-31") - first).get_days();
    prop_oneof![
        (0..=span).prop_map(move |n| first.checked_add(jiff::Span::new().days(n)).unwrap()),
        (0i32..800).prop_map(|n| day("9999-12-31")
            .checked_sub(jiff::Span::new().days(n))
            .unwrap()),
    ]
}

fn precision() -> impl Strategy<Value = Precision> {
    prop_oneof![
        Just(Precision::MonthDay),
        Just(Precision::Day),
        Just(Precision::Month)
    ]
}

/// A positive whole number of 1 to 17 digits, each length as likely.
fn up_to_17_digits() -> impl Strategy<Value = i128> {
    (1u32..=17).prop_flat_map(|digits| 10i128.pow(digits - 1)..10i128.pow(digits))
}

/// `round(a / b)`, half away from zero, for a >= 0 and b > 0.
fn round_div(a: i128, b: i128) -> i128 {
    (2 * a + b) / (2 * b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Cancelling a held line of any price and quantity on a contract ending any day up to
    /// 9999-12-31: the quote is the exact CPQ amount (the unit price prorated and rounded to
    /// the cent, then times the units) whenever that fits a decimal, and otherwise an error
    /// that names the contract and its end. Never a panic, never a wrapped or truncated amount.
    #[test]
    fn cancelling_until_any_end_is_exact_or_refused_by_name(
        end in end_day(),
        precision in precision(),
        cents in up_to_17_digits(),
        quantity in up_to_17_digits(),
    ) {
        let mut b = book().clone();
        let k9 = b.contracts.iter_mut().find(|c| c.id == "K9").unwrap();
        k9.end = Some(end);
        let l9 = b.lines.ids.find("L9").unwrap() as usize;
        let line = &mut b.lines.items[l9];
        line.end = Some(end);
        line.unit_price = SmallDecimal::new(Decimal::from_i128_with_scale(cents, 2)).unwrap();
        line.quantity = SmallDecimal::new(Decimal::from(quantity)).unwrap();
        let got = amend(&b, vec![Change::Remove("SEAT".into())], precision);

        let term = Term::between(day("2024-06-01"), end).unwrap();
        let fraction = term.multiplier(precision, 12).to_string();
        let (num, den) = fraction.split_once('/').unwrap();
        let (num, den): (i128, i128) = (num.parse().unwrap(), den.parse().unwrap());
        let prorated = round_div(cents * num, den);
        let net = prorated.checked_mul(quantity).filter(|n| *n <= Decimal::MAX.mantissa());
        match (got, net) {
            (Ok(q), Some(net)) => {
                prop_assert_eq!(q.lines[0].prorated_unit_price, Decimal::from_i128_with_scale(prorated, 2));
                prop_assert_eq!(q.lines[0].net_total, Decimal::from_i128_with_scale(-net, 2));
                prop_assert_eq!(q.totals[0].total, Decimal::from_i128_with_scale(-net, 2));
            }
            (Err(e), None) => {
                let said = e.to_string();
                prop_assert!(
                    matches!(&e, QuoteError::TooLarge { contract, end: Some(d), .. } if contract == "K9" && *d == end),
                    "{:?}", e
                );
                let expected = format!("contract K9 ends {end}: ");
                prop_assert!(said.starts_with(&expected), "{}", said);
            }
            (got, net) => prop_assert!(false, "quote {:?}, expected net {:?}", got.map(|q| q.totals[0].total), net),
        }
    }
}
