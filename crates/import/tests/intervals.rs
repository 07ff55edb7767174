//! Billing intervals of days, weeks, months and years (`docs/interchange.md`): a book mixing
//! `billing_period_months` and `billing_interval` rows, hand-checked, and every refusal.

use expansa_import::{read_book_from, ImportOptions, InMemory, NoProgress};
use expansa_ledger::{BillingPeriod, Book, Decimal, IntervalUnit};
use std::str::FromStr;

fn read(subscriptions: &str) -> Result<Book, Vec<String>> {
    let files = [("subscriptions.csv", subscriptions.as_bytes())];
    read_book_from(&InMemory(&files), &ImportOptions::default(), &NoProgress)
        .map_err(|e| e.0.iter().map(|p| p.to_string()).collect())
}

const HEADER: &str = "id,customer_id,product_id,quantity,unit_price,discount_pct,\
                      billing_period_months,billing_interval,billing_interval_count,start_date\n";

fn line<'a>(book: &'a Book, id: &str) -> &'a expansa_ledger::Line {
    &book.lines.items[book.lines.ids.find(id).unwrap() as usize]
}

#[test]
fn months_weeks_days_and_years_in_one_book() {
    let book = read(&format!(
        "{HEADER}\
         m1,A,core,1,300,,3,,,2024-01-01\n\
         m2,A,core,1,1200,,12,year,,2024-01-01\n\
         w1,B,core,1,100,,,week,,2024-01-01\n\
         w2,B,core,2,250,20,,Week,2,2024-01-01\n\
         d1,C,core,1,10,,,DAY,,2024-01-01\n\
         d2,C,core,1,90,,,day,30,2024-01-01\n\
         y1,D,core,1,2400,,,year,2,2024-01-01\n\
         mo,D,core,1,50,,1, month ,+1,2024-01-01\n\
         m3,D,core,1,60,,,month,3,2024-01-01\n"
    ))
    .unwrap_or_else(|p| panic!("{p:#?}"));
    // (id, period, MRR at scale 10), by hand on a 365-day year:
    let expected = [
        ("m1", BillingPeriod::months(3), "100.0000000000"), // 300 / 3
        ("m2", BillingPeriod::months(12), "100.0000000000"), // 1200 / 12
        ("w1", BillingPeriod::weeks(1), "434.5238095238"),  // 100 x 365 / 84 = 434.52380952380..
        // 2 x 250 x 0.8 = 400 every 2 weeks; 400 x 365 / 168 = 869.04761904761..
        ("w2", BillingPeriod::weeks(2), "869.0476190476"),
        ("d1", BillingPeriod::days(1), "304.1666666667"), // 10 x 365 / 12 = 304.1666..
        ("d2", BillingPeriod::days(30), "91.2500000000"), // 90 x 365 / 360 = 91.25
        ("y1", BillingPeriod::months(24), "100.0000000000"), // 2400 / 24
        ("mo", BillingPeriod::months(1), "50.0000000000"),
        ("m3", BillingPeriod::months(3), "20.0000000000"),
    ];
    for (id, period, mrr) in expected {
        let l = line(&book, id);
        assert_eq!(Some(l.billing_period), period, "{id}");
        assert_eq!(
            l.mrr().as_decimal(),
            Decimal::from_str(mrr).unwrap(),
            "{id}"
        );
    }
    assert_eq!(line(&book, "w2").billing_period.unit(), IntervalUnit::Week);
    // The book's MRR: 100 + 100 + 434.5238095238 + 869.0476190476 + 304.1666666667 + 91.25
    // + 100 + 50 + 20 = 2068.9880952381
    let total: expansa_ledger::Money = book.lines.items.iter().map(|l| l.mrr()).sum();
    assert_eq!(
        total.as_decimal(),
        Decimal::from_str("2068.9880952381").unwrap()
    );
}

#[test]
fn an_old_book_reads_as_before() {
    // No new column: billing_period_months alone, or nothing (monthly).
    let book = read(
        "id,customer_id,product_id,unit_price,billing_period_months,start_date\n\
         a,A,core,299.99,3,2024-01-01\n\
         b,B,core,10,,2024-01-01\n",
    )
    .unwrap();
    assert_eq!(
        line(&book, "a").billing_period,
        BillingPeriod::months(3).unwrap()
    );
    assert_eq!(
        line(&book, "a").mrr().as_decimal(),
        Decimal::from_str("99.9966666667").unwrap()
    );
    assert_eq!(line(&book, "b").billing_period, BillingPeriod::MONTHLY);
}

#[test]
fn every_refusal_names_its_column_and_says_why() {
    let problems = read(&format!(
        "{HEADER}\
         p1,A,core,1,10,,,fortnight,,2024-01-01\n\
         p2,A,core,1,10,,,week,0,2024-01-01\n\
         p3,A,core,1,10,,,week,521,2024-01-01\n\
         p4,A,core,1,10,,,day,3651,2024-01-01\n\
         p5,A,core,1,10,,,year,101,2024-01-01\n\
         p6,A,core,1,10,,3,week,,2024-01-01\n\
         p7,A,core,1,10,,3,month,2,2024-01-01\n\
         p8,A,core,1,10,,,,2,2024-01-01\n\
         p9,A,core,1,10,,,week,x,2024-01-01\n\
         pa,A,core,1,10,,12,year,2,2024-01-01\n\
         pb,A,core,1,10,,1,weeks,,2024-01-01\n\
         pc,A,core,1,10,,1201,,,2024-01-01\n\
         pd,A,core,1,10,,,month,1201,2024-01-01\n"
    ))
    .err()
    .expect("the book is refused");
    let either = "give one of the two, or both for the same period";
    assert_eq!(
        problems,
        [
            "subscriptions.csv:2: billing_interval: fortnight: not a billing interval (expected day, week, month or year)".to_string(),
            "subscriptions.csv:3: billing_interval_count: 0: must be at least 1".into(),
            "subscriptions.csv:4: billing_interval_count: 521: must be at most 520 for billing_interval week (the longest period is about ten years)".into(),
            "subscriptions.csv:5: billing_interval_count: 3651: must be at most 3650 for billing_interval day (the longest period is about ten years)".into(),
            "subscriptions.csv:6: billing_interval_count: 101: must be at most 100 for billing_interval year (the longest period is 100 years)".into(),
            format!("subscriptions.csv:7: billing_interval: week: disagrees with billing_period_months 3: billing_interval week x billing_interval_count 1 is not 3 months; {either}"),
            format!("subscriptions.csv:8: billing_interval: month: disagrees with billing_period_months 3: billing_interval month x billing_interval_count 2 is not 3 months; {either}"),
            "subscriptions.csv:9: billing_interval_count: 2: needs billing_interval (day, week, month or year): a count of what?".into(),
            "subscriptions.csv:10: billing_interval_count: x: not a whole number".into(),
            format!("subscriptions.csv:11: billing_interval: year: disagrees with billing_period_months 12: billing_interval year x billing_interval_count 2 is not 12 months; {either}"),
            "subscriptions.csv:12: billing_interval: weeks: not a billing interval (expected day, week, month or year)".into(),
            "subscriptions.csv:13: billing_period_months: 1201: must be at most 1200".into(),
            "subscriptions.csv:14: billing_interval_count: 1201: must be at most 1200 for billing_interval month (the longest period is 100 years)".into(),
        ]
    );
}
