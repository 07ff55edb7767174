//! Contracts holding lines billed by the week or the day (docs/contracts.md, "Lines billed by
//! days or weeks"): the locked price per price term follows the book's convention (a month is
//! 365/12 days), amendments and renewals keep the line's interval.

use expansa_contracts::{
    contract, quote_amend, quote_renew, AmendRequest, Change, LineChange, Precision, RenewRequest,
};
use expansa_import::{read_book_from, ImportOptions, InMemory, NoProgress};
use expansa_ledger::{BillingPeriod, Book, Date, Decimal};

fn book() -> Book {
    let files: [(&str, &[u8]); 2] = [
        (
            "subscriptions.csv",
            b"id,customer_id,contract_id,product_id,quantity,unit_price,billing_interval,billing_interval_count,start_date,end_date\n\
              W1,C1,KW,SEAT,2,100,week,,2024-01-01,2024-12-30\n\
              D1,C1,KW,SUPPORT,1,90,day,30,2024-01-01,2024-12-30\n",
        ),
        (
            "products.csv",
            b"id,list_price,price_term_months\nSEAT,5000,12\nSUPPORT,1100,12\n",
        ),
    ];
    read_book_from(&InMemory(&files), &ImportOptions::default(), &NoProgress)
        .unwrap_or_else(|e| panic!("{:?}", e.0))
}

fn day(s: &str) -> Date {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn a_weekly_line_is_priced_per_term_on_a_365_day_year() {
    let b = book();
    let view = contract(&b, "KW", day("2024-06-01")).unwrap();
    let seat = &view.lines[0];
    assert_eq!(seat.billing_period, BillingPeriod::weeks(1).unwrap());
    // 100 a week x 12 months x 365 / 84 = 438000 / 84 = 5214.2857142857...
    assert_eq!(seat.term_unit_price.round_dp(10), dec("5214.2857142857"));
    // 2 x 100 x 365 / 84
    assert_eq!(seat.mrr.as_decimal(), dec("869.0476190476"));
    let support = &view.lines[1];
    // 90 every 30 days x 12 months x 365 / 360 = 1095 exactly; MRR 91.25
    assert_eq!(support.term_unit_price, dec("1095"));
    assert_eq!(support.mrr.as_decimal(), dec("91.2500000000"));
}

#[test]
fn an_amendment_keeps_the_weekly_interval() {
    let b = book();
    let q = quote_amend(
        &b,
        &AmendRequest {
            contract: "KW".into(),
            effective: day("2024-07-01"),
            changes: vec![Change::Set("SEAT".into(), dec("3"))],
            precision: Precision::MonthDay,
        },
    )
    .unwrap();
    let l = &q.lines[0];
    // 2024-07-01 .. 2024-12-30: 5 months and 30 days, (5 x 365 + 30 x 12) / (365 x 12)
    // = 2185/4380; 438000/84 x 2185/4380 = 218500/84 = 2601.190476.. -> 2601.19
    assert_eq!(l.prorate_multiplier.rounded(10), dec("0.4988584475"));
    assert_eq!(l.prorated_unit_price, dec("2601.19"));
    assert_eq!(l.net_total, dec("2601.19"));
    match &q.changes[1] {
        LineChange::Open(new) => {
            assert_eq!(new.billing_period, BillingPeriod::weeks(1).unwrap());
            assert_eq!((new.quantity, new.unit_price), (dec("3"), dec("100")));
            assert_eq!(new.revises.as_deref(), Some("W1"));
        }
        other => panic!("expected a new line, got {other:?}"),
    }
    // 3 x 100 x 365 / 84 = 1303.5714285714 and the support line's 91.25
    assert_eq!(q.mrr_after.as_decimal(), dec("1394.8214285714"));
}

#[test]
fn a_renewal_keeps_each_lines_interval() {
    let q = quote_renew(
        &book(),
        &RenewRequest {
            contract: "KW".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let periods: Vec<_> = q
        .changes
        .iter()
        .filter_map(|c| match c {
            LineChange::Open(l) => Some(l.billing_period),
            _ => None,
        })
        .collect();
    assert_eq!(
        periods,
        [BillingPeriod::weeks(1), BillingPeriod::days(30)].map(Option::unwrap)
    );
    // 12 months at the locked price per 12 months: 5214.29 per seat, 1095.00 the support
    let totals: Vec<_> = q.lines.iter().map(|l| l.net_total).collect();
    assert_eq!(totals, [dec("10428.58"), dec("1095.00")]);
    assert_eq!(q.mrr_after.as_decimal(), dec("960.2976190476"));
}
