//! The amendment classes of the CPQ issue, on the book in testdata/contracts-classes (every
//! figure worked by hand, with its source, in that folder's NOTES.md): amendments on a line's
//! first day, one term for the amount and the lines written, yearly segments (MDQ), lines in
//! more than one currency; and the properties that hold on any such amendment.

mod common;
use common::*;
use expansa_contracts::{
    quote_amend, quote_renew, AmendRequest, Change, LineChange, Precision, Quote, QuoteLine,
    RenewRequest, Term,
};
use expansa_ledger::{Book, Currency, Date, Decimal, Month, RoundingStrategy};
use proptest::prelude::*;

fn book() -> &'static Book {
    testdata("contracts-classes")
}

/// An amendment of the book's `contract` from `effective`, month_day precision.
fn try_amend(
    contract: &str,
    effective: &str,
    changes: Vec<Change>,
) -> Result<Quote, expansa_contracts::QuoteError> {
    quote_amend(
        book(),
        &AmendRequest {
            contract: contract.into(),
            effective: day(effective),
            changes,
            precision: Precision::MonthDay,
        },
    )
}

fn amend(contract: &str, effective: &str, changes: Vec<Change>) -> Quote {
    try_amend(contract, effective, changes).unwrap()
}

fn usd() -> Currency {
    "USD".parse().unwrap()
}

fn add(product: &str, q: &str) -> Change {
    Change::Add(product.into(), dec(q))
}

/// (product, line, first day, last day, currency, multiplier, prorated unit price, net) of
/// each quote line.
fn priced(q: &Quote) -> Vec<String> {
    q.lines
        .iter()
        .map(|l| {
            format!(
                "{} {} {}..{} {} x{} {} {}",
                l.product_id,
                l.line_id.as_deref().unwrap_or("-"),
                l.start,
                l.end.map_or("-".into(), |d| d.to_string()),
                l.currency.code(),
                l.prorate_multiplier,
                l.prorated_unit_price,
                l.net_total
            )
        })
        .collect()
}

fn totals(q: &Quote) -> Vec<String> {
    q.totals
        .iter()
        .map(|t| format!("{} {}", t.total, t.currency.code()))
        .collect()
}

fn opened(q: &Quote) -> Vec<&expansa_contracts::NewLine> {
    q.changes
        .iter()
        .filter_map(|c| match c {
            LineChange::Open(l) => Some(l),
            _ => None,
        })
        .collect()
}

#[test]
fn an_amendment_on_the_first_day_is_a_full_term_charge() {
    // Trailhead: 30.00 for 12 months, quoted for 24 months, is 60.00.
    let q = amend("KF", "2024-01-01", vec![add("PWD", "1")]);
    assert_eq!(
        priced(&q),
        ["PWD LF 2024-01-01..2025-12-31 USD x2/1 60.00 60.00"]
    );
    assert_eq!(totals(&q), ["60.00 USD"]);
    assert_eq!(q.reporting_total.total.to_string(), "300.00");
    // LF starts on the effective day: replaced outright, nothing closed the day before it.
    assert_eq!(q.changes.len(), 1);
    let LineChange::Replace(l) = &q.changes[0] else {
        panic!("{:?}", q.changes)
    };
    assert_eq!(
        (l.id.as_str(), l.quantity, l.start, l.end),
        ("LF", dec("6"), day("2024-01-01"), Some(day("2025-12-31")))
    );
    assert_eq!(
        (
            q.mrr_before.round_dp(2).to_string(),
            q.mrr_after.round_dp(2).to_string()
        ),
        ("62.50".into(), "75.00".into())
    );
    // Cancelling it on its first day removes the line.
    let q = amend("KF", "2024-01-01", vec![Change::Remove("PWD".into())]);
    assert_eq!(
        priced(&q),
        ["PWD LF 2024-01-01..2025-12-31 USD x2/1 60.00 -300.00"]
    );
    assert_eq!(
        q.changes,
        [LineChange::Remove {
            line_id: "LF".into()
        }]
    );
}

#[test]
fn the_amount_and_the_line_written_cover_the_same_days() {
    // LT ends three months before KT: the seat is charged to LT's end, as the line written.
    let q = amend("KT", "2024-04-01", vec![add("SEAT", "1")]);
    assert_eq!(
        priced(&q),
        ["SEAT LT 2024-04-01..2024-09-30 BRL x1/2 210.00 210.00"]
    );
    let new = opened(&q);
    assert_eq!(
        (new[0].id.as_str(), new[0].start, new[0].end),
        ("LT-A20240401", day("2024-04-01"), Some(day("2024-09-30")))
    );
}

#[test]
fn every_later_segment_is_amended_at_its_own_price_and_proration() {
    let q = amend("KM", "2024-07-01", vec![add("PLATFORM", "2")]);
    assert_eq!(
        priced(&q),
        [
            "PLATFORM M1 2024-07-01..2024-12-31 BRL x1/2 500.00 1000.00",
            "PLATFORM M2 2025-01-01..2025-12-31 BRL x1/1 1100.00 2200.00",
            "PLATFORM M3 2026-01-01..2026-12-31 BRL x1/1 1210.00 2420.00",
            "PLATFORM M4 2027-01-01..2027-03-31 BRL x1/4 332.75 665.50",
        ]
    );
    assert_eq!(totals(&q), ["6285.50 BRL"]);
    let written: Vec<String> = q
        .changes
        .iter()
        .map(|c| match c {
            LineChange::Close { line_id, end } => format!("close {line_id} {end}"),
            LineChange::Open(l) => format!(
                "open {} {} {}..{:?} revises {:?}",
                l.id, l.quantity, l.start, l.end, l.revises
            ),
            LineChange::Replace(l) => format!("replace {} {} {}", l.id, l.quantity, l.start),
            LineChange::Remove { line_id } => format!("remove {line_id}"),
        })
        .collect();
    assert_eq!(
        written,
        [
            "close M1 2024-06-30",
            "open M1-A20240701 12 2024-07-01..Some(2024-12-31) revises Some(\"M1\")",
            "replace M2 12 2025-01-01",
            "replace M3 12 2026-01-01",
            "replace M4 12 2027-01-01",
        ]
    );
    assert_eq!(q.mrr_before.round_dp(2).to_string(), "833.33");
    assert_eq!(q.mrr_after.round_dp(2).to_string(), "1000.00");
    // Amended during the second year, the first segment is past and not touched.
    let q = amend(
        "KM",
        "2025-07-01",
        vec![Change::Set("PLATFORM".into(), dec("8"))],
    );
    assert_eq!(
        priced(&q),
        [
            "PLATFORM M2 2025-07-01..2025-12-31 BRL x1/2 550.00 -1100.00",
            "PLATFORM M3 2026-01-01..2026-12-31 BRL x1/1 1210.00 -2420.00",
            "PLATFORM M4 2027-01-01..2027-03-31 BRL x1/4 332.75 -665.50",
        ]
    );
}

#[test]
fn each_line_is_quoted_in_its_own_currency_and_totals_are_never_mixed() {
    let q = amend(
        "KC",
        "2024-07-01",
        vec![add("SEAT", "1"), add("API", "2"), add("SUPPORT", "1")],
    );
    assert_eq!(
        priced(&q),
        [
            "SEAT C1 2024-07-01..2024-12-31 BRL x1/2 210.00 210.00",
            "API C2 2024-07-01..2024-12-31 USD x1/2 300.00 600.00",
            "SUPPORT - 2024-07-01..2024-12-31 BRL x1/2 120.00 120.00",
        ]
    );
    assert_eq!(totals(&q), ["330.00 BRL", "600.00 USD"]);
    // 330.00 + 600.00 x 4.80, at the rates of the effective month.
    let r = &q.reporting_total;
    assert_eq!(
        (r.total.to_string(), r.currency, r.rates_of.to_string()),
        ("3210.00".into(), Currency::BRL, "2024-07".into())
    );
    // A product without a currency is in the reporting currency.
    let support = opened(&q)
        .into_iter()
        .find(|l| l.product_id == "SUPPORT")
        .unwrap();
    assert_eq!(support.currency, Currency::BRL);

    // A price converted for a line is written in that line's currency: API_PRO's 4800.00 BRL
    // at 4.80 is 1000.00 USD per 12 months for C2's replacement.
    let q = amend(
        "KC",
        "2024-07-01",
        vec![Change::Swap("API".into(), "API_PRO".into())],
    );
    assert_eq!(
        priced(&q),
        [
            "API C2 2024-07-01..2024-12-31 USD x1/2 300.00 -900.00",
            "API_PRO - 2024-07-01..2024-12-31 USD x1/2 500.00 1500.00",
        ]
    );
    assert_eq!(totals(&q), ["600.00 USD"]);
    assert_eq!(q.reporting_total.total.to_string(), "2880.00");
    let pro = opened(&q)[0];
    assert_eq!(
        (pro.currency, pro.unit_price, pro.revises.as_deref()),
        (usd(), dec("1000"), Some("C2"))
    );

    // A renewal too: each line in its own currency.
    let q = quote_renew(
        book(),
        &RenewRequest {
            contract: "KC".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(totals(&q), ["840.00 BRL", "1800.00 USD"]);
    assert_eq!(q.reporting_total.total.to_string(), "9480.00");
}

/// The days a quote line charges and the days of the line it writes (or removes, or closes
/// early), which must be the same; also the written line's quantity and currency.
fn check_written(b: &Book, q: &Quote, l: &QuoteLine) -> Result<(), TestCaseError> {
    let contract_end = b.contracts.iter().find(|c| c.id == q.contract).unwrap().end;
    let until = |end: Option<Date>| end.or(contract_end);
    let find = |pred: &dyn Fn(&LineChange) -> bool| q.changes.iter().find(|c| pred(c)).cloned();
    match &l.line_id {
        Some(id) => {
            let k = b.lines.ids.find(id).unwrap() as usize;
            let (start, end) = (b.lines.items[k].start, b.lines.items[k].end);
            if start < l.start {
                // Closed the day before the effective day; the rest rewritten, or credited.
                let close =
                    find(&|c| matches!(c, LineChange::Close { line_id, .. } if line_id == id));
                prop_assert_eq!(
                    close,
                    Some(LineChange::Close {
                        line_id: id.clone(),
                        end: l.start.yesterday().unwrap()
                    })
                );
                prop_assert_eq!(until(end), l.end, "{} is charged to its own end", id);
                if l.quantity > Decimal::ZERO {
                    let open = find(
                        &|c| matches!(c, LineChange::Open(n) if n.revises.as_ref() == Some(id) && n.product_id == l.product_id),
                    );
                    let Some(LineChange::Open(n)) = open else {
                        return Err(TestCaseError::fail(format!("no line revises {id}")));
                    };
                    prop_assert_eq!((n.start, n.end), (l.start, l.end));
                    prop_assert_eq!((n.quantity, n.currency), (l.quantity, l.currency));
                }
            } else {
                // Starts on or after the effective day: replaced or removed outright.
                prop_assert_eq!((start, until(end)), (l.start, l.end));
                match find(&|c| {
                    matches!(c, LineChange::Replace(n) | LineChange::Open(n) if n.id == *id)
                        || matches!(c, LineChange::Remove { line_id } if line_id == id)
                }) {
                    Some(LineChange::Replace(n)) if n.product_id == l.product_id => {
                        prop_assert_eq!((n.start, n.end), (start, l.end));
                        prop_assert_eq!((n.quantity, n.currency), (l.quantity, l.currency));
                    }
                    Some(LineChange::Replace(n)) => prop_assert!(l.quantity.is_zero(), "{:?}", n),
                    Some(LineChange::Remove { .. }) => prop_assert!(l.quantity.is_zero()),
                    other => return Err(TestCaseError::fail(format!("{id}: {other:?}"))),
                }
            }
        }
        None => {
            let new = find(
                &|c| matches!(c, LineChange::Open(n) | LineChange::Replace(n) if n.product_id == l.product_id && n.start == l.start),
            );
            let (Some(LineChange::Open(n)) | Some(LineChange::Replace(n))) = new else {
                return Err(TestCaseError::fail(format!("no line written for {l:?}")));
            };
            prop_assert_eq!(n.end, l.end);
            prop_assert_eq!((n.quantity, n.currency), (l.quantity, l.currency));
        }
    }
    let days = |end: Option<Date>| {
        end.and_then(|e| Term::between(l.start, e))
            .map(|t| t.total_days)
    };
    prop_assert!(days(l.end).is_some());
    Ok(())
}

fn change() -> impl Strategy<Value = (u8, u8)> {
    (0u8..4, 0u8..5)
}

fn a_day(first: &str, days: i64) -> impl Strategy<Value = Date> {
    let first = day(first);
    (0..days).prop_map(move |n| first.checked_add(jiff::Span::new().days(n)).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// On a ramped deal and on a line ending before its contract, any add/set/remove on any
    /// day (a segment's first day included) charges exactly the days of the lines it writes.
    #[test]
    fn charged_days_are_the_written_lines_days(
        effective in prop_oneof![
            a_day("2024-01-01", 1186),
            prop::sample::select(vec![day("2024-01-01"), day("2025-01-01"), day("2026-01-01"), day("2027-01-01")]),
        ],
        (kind, q) in change(),
        contract in prop::sample::select(vec!["KM", "KT", "KN"]),
        precision in prop::sample::select(vec![Precision::MonthDay, Precision::Day, Precision::Month]),
    ) {
        let b = book();
        let end = b.contracts.iter().find(|c| c.id == contract).unwrap().end.unwrap();
        prop_assume!(effective <= end);
        let product = if contract == "KM" { "PLATFORM" } else { "SEAT" };
        // KN's N1 has no end: its amendment is charged and written to the contract's end.
        let q = Decimal::from(q);
        let change = match kind {
            0 => Change::Add(product.into(), q + Decimal::ONE),
            1 => Change::Set(product.into(), q),
            2 => Change::Remove(product.into()),
            _ => Change::Swap(product.into(), "SUPPORT".into()),
        };
        let got = quote_amend(b, &AmendRequest { contract: contract.into(), effective, changes: vec![change], precision });
        let quote = match got {
            Ok(quote) => quote,
            // Only a product the contract does not hold on or after that day is refused.
            Err(e) => {
                prop_assert!(matches!(e, expansa_contracts::QuoteError::NotHeld { .. }), "{e}");
                return Ok(());
            }
        };
        for l in &quote.lines {
            check_written(b, &quote, l)?;
        }
    }

    /// Whatever is added to a contract with lines in two currencies, each quote line is in
    /// the currency of the line it writes, each currency is totalled once and alone, and the
    /// reporting total is the exact sum of the lines at the effective month's rates, rounded
    /// once.
    #[test]
    fn quoting_never_mixes_currencies(
        effective in a_day("2024-01-02", 365),
        adds in prop::collection::vec((prop::sample::select(vec!["SEAT", "API", "SUPPORT", "API_PRO", "PWD"]), 1u8..5), 1..4),
        swap in any::<bool>(),
    ) {
        let b = book();
        let mut changes: Vec<Change> = adds.iter().map(|(p, q)| Change::Add((*p).into(), Decimal::from(*q))).collect();
        if swap {
            changes.retain(|c| !matches!(c, Change::Add(p, _) if p == "API" || p == "API_PRO"));
            changes.push(Change::Swap("API".into(), "API_PRO".into()));
        }
        let quote = quote_amend(b, &AmendRequest { contract: "KC".into(), effective, changes, precision: Precision::MonthDay }).unwrap();
        let mut seen = Vec::new();
        for t in &quote.totals {
            prop_assert!(!seen.contains(&t.currency), "{} totalled twice", t.currency.code());
            seen.push(t.currency);
            let sum: Decimal = quote.lines.iter().filter(|l| l.currency == t.currency).map(|l| l.net_total).sum();
            prop_assert_eq!(t.total, sum);
        }
        let month = Month::of(effective);
        let mut reporting = Decimal::ZERO;
        for l in &quote.lines {
            prop_assert!(seen.contains(&l.currency));
            check_written(b, &quote, l)?;
            let expected = match (&l.line_id, l.product_id.as_str()) {
                (Some(id), _) => b.lines.items[b.lines.ids.find(id).unwrap() as usize].currency,
                // API_PRO replaces C2, a USD line; a new product is in its own currency.
                (None, "API_PRO") if swap => usd(),
                (None, "PWD" | "API") => usd(),
                (None, _) => Currency::BRL,
            };
            prop_assert_eq!(l.currency, expected, "{}", l.product_id);
            reporting += l.net_total * b.rate_to_reporting(Some(l.currency), month).unwrap();
        }
        let r = &quote.reporting_total;
        prop_assert_eq!(r.total, reporting.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero));
    }
}

#[test]
fn a_line_without_an_end_is_charged_and_written_to_the_contracts_end() {
    // N1 has no end in KN (to 2024-12-31): 9 months charged, and the line written ends there.
    let q = amend("KN", "2024-04-01", vec![add("SEAT", "1")]);
    assert_eq!(
        priced(&q),
        ["SEAT N1 2024-04-01..2024-12-31 BRL x3/4 315.00 315.00"]
    );
    assert_eq!(opened(&q)[0].end, Some(day("2024-12-31")));
}

#[test]
fn two_swaps_into_one_product_keep_every_unit() {
    let q = amend(
        "KS",
        "2024-07-01",
        vec![
            Change::Swap("SEAT".into(), "API_PRO".into()),
            Change::Swap("SUPPORT".into(), "API_PRO".into()),
        ],
    );
    assert_eq!(
        priced(&q),
        [
            "SEAT S1 2024-07-01..2024-12-31 BRL x1/2 210.00 -210.00",
            "API_PRO - 2024-07-01..2024-12-31 BRL x1/2 2400.00 7200.00",
            "SUPPORT S2 2024-07-01..2024-12-31 BRL x1/2 120.00 -240.00",
        ]
    );
    let pro = opened(&q)[0];
    assert_eq!(
        (pro.quantity, pro.revises.as_deref()),
        (dec("3"), Some("S1"))
    );
}

#[test]
fn swaps_and_removals_that_would_break_the_book_are_refused_by_name() {
    let err = |contract: &str, effective: &str, changes: Vec<Change>| {
        try_amend(contract, effective, changes)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(
            "KS",
            "2024-07-01",
            vec![Change::Swap("SEAT".into(), "SEAT".into())]
        ),
        "--swap SEAT:SEAT: a product cannot be swapped for itself"
    );
    // RX is cancelled from its first day, but RY (another product) revises it.
    assert_eq!(
        err("KR", "2024-01-01", vec![Change::Remove("SEAT".into())]),
        "line RX would be removed (cancelled from its first day), but line RY revises it; \
         amend RY first or end RX instead"
    );
}
