//! The worked examples of the contracts issue (real Salesforce CPQ results, to the cent), on
//! the book in testdata/contracts, and the bad-input cases.

mod common;
use common::*;
use expansa_contracts::{
    contract, quote_amend, quote_renew, AmendRequest, Change, LineChange, Precision, Quote,
    QuoteError, RenewRequest,
};
use expansa_ledger::{Book, RenewalPricing};

fn book() -> Book {
    testdata("contracts").clone()
}

fn amend(
    book: &Book,
    contract: &str,
    effective: &str,
    changes: Vec<Change>,
) -> Result<Quote, QuoteError> {
    quote_amend(
        book,
        &AmendRequest {
            contract: contract.into(),
            effective: day(effective),
            changes,
            precision: Precision::MonthDay,
        },
    )
}

/// (product, multiplier to 10 places, prorated unit price, net total) of each quote line.
fn priced(q: &Quote) -> Vec<(String, String, String, String)> {
    q.lines
        .iter()
        .map(|l| {
            (
                l.product_id.clone(),
                l.prorate_multiplier.rounded(10).to_string(),
                l.prorated_unit_price.to_string(),
                l.net_total.to_string(),
            )
        })
        .collect()
}

fn row(p: &str, m: &str, unit: &str, net: &str) -> (String, String, String, String) {
    (p.into(), m.into(), unit.into(), net.into())
}

#[test]
fn nine_months_and_21_days() {
    // K1 runs to 2024-11-12; from 2024-01-23 that is 9 months + 21 days over a 12-month term.
    let q = amend(
        &book(),
        "K1",
        "2024-01-23",
        vec![
            Change::Add("SEAT".into(), dec("1")),
            Change::Add("BIG".into(), dec("1")),
        ],
    )
    .unwrap();
    assert_eq!(
        priced(&q),
        vec![
            row("SEAT", "0.8075342466", "321.76", "321.76"),
            row("BIG", "0.8075342466", "8044.00", "8044.00"),
        ]
    );
    assert_eq!(q.totals[0].total.to_string(), "8365.76");
    // The held SEAT line keeps its own (locked) price, not the list price of 420.00.
    assert_eq!(q.lines[0].unit_price, dec("398.45"));
    assert_eq!(
        (q.lines[0].prior_quantity, q.lines[0].quantity),
        (dec("5"), dec("6"))
    );
}

#[test]
fn eleven_months_and_27_days() {
    let q = amend(
        &book(),
        "K2",
        "2024-02-05",
        vec![Change::Add("ADDON".into(), dec("1"))],
    )
    .unwrap();
    assert_eq!(
        priced(&q),
        vec![row("ADDON", "0.9906392694", "118.88", "118.88")]
    );
    assert_eq!(q.mrr_before.round_dp(2).to_string(), "100.00");
    assert_eq!(q.mrr_after.round_dp(2).to_string(), "110.00");
}

#[test]
fn ten_whole_months_plan_replaced() {
    let q = amend(
        &book(),
        "K3",
        "2023-10-03",
        vec![Change::Swap("PLAN_S".into(), "PLAN_L".into())],
    )
    .unwrap();
    assert_eq!(
        priced(&q),
        vec![
            row("PLAN_S", "0.8333333333", "1000.00", "-1000.00"),
            row("PLAN_L", "0.8333333333", "2000.00", "2000.00"),
        ]
    );
    assert_eq!(q.totals[0].total.to_string(), "1000.00");
    // Recorded as a close of L3 and a new PLAN_L line that revises it.
    assert_eq!(
        q.changes[0],
        LineChange::Close {
            line_id: "L3".into(),
            end: day("2023-10-02")
        }
    );
    match &q.changes[1] {
        LineChange::Open(l) => {
            assert_eq!(l.product_id, "PLAN_L");
            assert_eq!(l.revises.as_deref(), Some("L3"));
            assert_eq!(
                (l.start, l.end),
                (day("2023-10-03"), Some(day("2024-08-02")))
            );
            assert_eq!(l.unit_price, dec("2400.00"));
            assert_eq!(l.billing_period.whole_months(), Some(12));
        }
        other => panic!("expected a new line, got {other:?}"),
    }
}

#[test]
fn monthly_priced_product_for_twelve_months() {
    let q = quote_renew(
        &book(),
        &RenewRequest {
            contract: "K4".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        priced(&q),
        vec![row("MONTHLY", "12.0000000000", "1440.00", "1440.00")]
    );
    assert_eq!(
        (q.effective, q.end),
        (day("2025-01-01"), Some(day("2025-12-31")))
    );
}

#[test]
fn renewal_pricing_same_list_uplift() {
    let b = book();
    let renew = |pricing, uplift_pct| {
        quote_renew(
            &b,
            &RenewRequest {
                contract: "K1".into(),
                pricing,
                uplift_pct,
            },
        )
        .unwrap()
    };
    // K1's own renewal_pricing is uplift 5%: 398.45 x 1.05 = 418.3725 -> 418.37 x 5.
    assert_eq!(renew(None, None).totals[0].total.to_string(), "2091.85");
    assert_eq!(
        renew(Some(RenewalPricing::Same), None).totals[0]
            .total
            .to_string(),
        "1992.25"
    );
    assert_eq!(
        renew(Some(RenewalPricing::List), None).totals[0]
            .total
            .to_string(),
        "2100.00"
    );
    assert_eq!(
        renew(Some(RenewalPricing::Uplift), Some(dec("10"))).totals[0]
            .total
            .to_string(),
        "2191.50"
    );
    let q = renew(None, None);
    let c = q.new_contract.as_ref().unwrap();
    assert_eq!(
        (c.id.as_str(), c.start, c.end),
        ("K1-R20241113", day("2024-11-13"), day("2025-11-12"))
    );
}

#[test]
fn derived_contract_with_discount_and_contracted_discount() {
    // K6 has no contracts.csv row: its lines give its dates. Its SEAT line is 40 a month less
    // 10%, so 432.00 for a 12-month term; BIG is 50% off its list price by contract.
    let b = book();
    let v = contract(&b, "K6", day("2024-09-01")).unwrap();
    assert!(!v.from_contracts_file);
    assert_eq!(
        (v.start, v.end),
        (day("2024-03-01"), Some(day("2025-02-28")))
    );
    let q = amend(
        &b,
        "K6",
        "2024-09-01",
        vec![
            Change::Add("SEAT".into(), dec("1")),
            Change::Add("BIG".into(), dec("1")),
        ],
    )
    .unwrap();
    assert_eq!(
        priced(&q),
        vec![
            row("SEAT", "0.5000000000", "216.00", "216.00"),
            row("BIG", "0.5000000000", "2490.30", "2490.30"),
        ]
    );
}

#[test]
fn contracted_price_beats_list_price() {
    // c1 has ADDON at 100.00 during 2024.
    let q = amend(
        &book(),
        "K1",
        "2024-05-13",
        vec![Change::Add("ADDON".into(), dec("2"))],
    )
    .unwrap();
    assert_eq!(q.lines[0].unit_price, dec("100.00"));
    // 2024-05-13 .. 2024-11-12 is 6 whole months: 50.00 a unit, 2 units.
    assert_eq!(
        priced(&q),
        vec![row("ADDON", "0.5000000000", "50.00", "100.00")]
    );
}

#[test]
fn precisions_differ_as_cpq_does() {
    let b = book();
    let with = |precision| {
        quote_amend(
            &b,
            &AmendRequest {
                contract: "K1".into(),
                effective: day("2024-01-23"),
                changes: vec![Change::Add("SEAT".into(), dec("1"))],
                precision,
            },
        )
        .unwrap()
    };
    // 295 days x 12 / 365 / 12 = 0.8082191781; 10 months rounded up = 0.8333333333.
    assert_eq!(priced(&with(Precision::Day))[0].1, "0.8082191781");
    assert_eq!(priced(&with(Precision::Month))[0].1, "0.8333333333");
}

#[test]
fn bad_inputs_are_refused() {
    let b = book();
    let add = |p: &str, q: &str| vec![Change::Add(p.into(), dec(q))];
    assert!(matches!(
        amend(&b, "K1", "2024-11-13", add("SEAT", "1")),
        Err(QuoteError::OutsideTerm { .. })
    ));
    assert!(matches!(
        amend(&b, "K1", "2023-11-12", add("SEAT", "1")),
        Err(QuoteError::OutsideTerm { .. })
    ));
    assert_eq!(
        amend(&b, "NOPE", "2024-01-23", add("SEAT", "1")).unwrap_err(),
        QuoteError::UnknownContract("NOPE".into())
    );
    assert_eq!(
        amend(&b, "K1", "2024-01-23", add("NOPE", "1")).unwrap_err(),
        QuoteError::UnknownProduct("NOPE".into())
    );
    assert!(matches!(
        amend(&b, "K1", "2024-01-23", add("SEAT", "-6")),
        Err(QuoteError::NegativeQuantity { .. })
    ));
    assert!(matches!(
        amend(
            &b,
            "K1",
            "2024-01-23",
            vec![Change::Set("SEAT".into(), dec("-1"))]
        ),
        Err(QuoteError::NegativeQuantity { .. })
    ));
    assert!(matches!(
        amend(&b, "K1", "2024-01-23", vec![Change::Remove("ADDON".into())]),
        Err(QuoteError::NotHeld { .. })
    ));
    assert_eq!(
        amend(&b, "K5", "2024-06-01", add("PLAN_S", "1")).unwrap_err(),
        QuoteError::EvergreenQuantity("K5".into())
    );
    assert_eq!(
        quote_renew(
            &b,
            &RenewRequest {
                contract: "K5".into(),
                ..Default::default()
            }
        )
        .unwrap_err(),
        QuoteError::EvergreenRenewal("K5".into())
    );
    assert_eq!(
        amend(&b, "K1", "2024-01-23", vec![]).unwrap_err(),
        QuoteError::NoChanges
    );
}

#[test]
fn evergreen_contracts_can_swap_and_cancel() {
    let b = book();
    let q = amend(
        &b,
        "K5",
        "2024-06-01",
        vec![Change::Swap("PLAN_S".into(), "PLAN_L".into())],
    )
    .unwrap();
    // CPQ sets an evergreen quote line's term to 1 (month): "Salesforce CPQ automatically
    // sets subscription terms to 1 on evergreen quote lines. This way, the quote line
    // represents a daily or monthly unit price" (Enable Evergreen Subscriptions,
    // https://help.salesforce.com/s/articleView?id=sales.cpq_enable_evergreen.htm). So the
    // swap is priced for one month of the 12-month price term: the held line's locked 1200
    // per 12 months credits 100.00, Plan L's 2400 list charges 200.00.
    assert_eq!(
        priced(&q),
        vec![
            row("PLAN_S", "0.0833333333", "100.00", "-100.00"),
            row("PLAN_L", "0.0833333333", "200.00", "200.00"),
        ]
    );
    assert_eq!(q.lines[0].prorate_multiplier.to_string(), "1/12");
    assert_eq!(q.end, None);
    let q = amend(
        &b,
        "K5",
        "2024-06-01",
        vec![Change::Remove("PLAN_S".into())],
    )
    .unwrap();
    assert_eq!(q.mrr_after.round_dp(2).to_string(), "0.00");
    assert_eq!(
        q.changes,
        vec![LineChange::Close {
            line_id: "L5".into(),
            end: day("2024-05-31")
        }]
    );
}

#[test]
fn an_uplift_of_minus_100_or_less_is_refused() {
    let b = book();
    for uplift in ["-100", "-150.5"] {
        let e = quote_renew(
            &b,
            &RenewRequest {
                contract: "K1".into(),
                pricing: Some(RenewalPricing::Uplift),
                uplift_pct: Some(dec(uplift)),
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "contract K1: an uplift of {uplift}% prices the renewal at nothing or below: it must be more than -100"
            )
        );
    }
    // Just above: priced (398.45 x 0.01 = 3.9845, 3.98 a unit, x 5 = 19.90).
    let q = quote_renew(
        &b,
        &RenewRequest {
            contract: "K1".into(),
            pricing: Some(RenewalPricing::Uplift),
            uplift_pct: Some(dec("-99")),
        },
    )
    .unwrap();
    assert_eq!(q.totals[0].total.to_string(), "19.90");
}
