//! The renewal desk and the monthly renewals on the hand-checked book of testdata/renewals
//! (every figure worked by hand in testdata/renewals/NOTES.md).

mod common;
use common::*;
use expansa_contracts::{
    quote_renew, render_renewals, renewal_desk, renewal_months, RenewRequest, RenewalStatus,
};
use expansa_import::{read_book, ImportOptions, NoProgress};
use expansa_ledger::{Book, Format, Locale, Money};
use expansa_movements::Selection;
use std::path::Path;

fn book() -> Book {
    testdata("renewals").clone()
}

#[test]
fn the_desk_lists_each_contract_with_its_quote_and_status() {
    let book = book();
    let desk = renewal_desk(&book, day("2024-10-01"), 90, &Selection::all());
    assert_eq!((desk.from, desk.to), (day("2024-07-03"), day("2024-12-30")));
    let got: Vec<_> = desk
        .rows
        .iter()
        .map(|r| {
            (
                r.contract.as_str(),
                r.customer_id.as_str(),
                r.end.to_string(),
                r.days_left,
                r.arr,
                r.quote.as_ref().ok().map(|q| (q.arr, q.change)),
                r.status,
                r.renewed_arr,
            )
        })
        .collect();
    use RenewalStatus::*;
    let want = vec![
        (
            "R2",
            "c2",
            "2024-08-15".to_string(),
            -47,
            money("1200"),
            Some((money("1320"), money("120"))),
            Churned,
            None,
        ),
        (
            "R6",
            "c6",
            "2024-08-31".to_string(),
            -31,
            money("1200"),
            Some((money("1200"), money("0"))),
            Renewed,
            Some(money("1080")),
        ),
        (
            "R1",
            "c1",
            "2024-10-31".to_string(),
            30,
            money("4200"),
            Some((money("4200"), money("0"))),
            Renewed,
            Some(money("5040")),
        ),
        (
            "R7",
            "c7",
            "2024-11-30".to_string(),
            60,
            money("600"),
            None,
            Open,
            None,
        ),
        (
            "R3",
            "c3",
            "2024-12-15".to_string(),
            75,
            money("1800"),
            Some((money("2100"), money("300"))),
            Open,
            None,
        ),
    ];
    assert_eq!(got, want);
    // R5 ends 2025-02-28, outside the window; R1-R20241101 and N6 end in 2025.
    assert!(desk.rows.iter().all(|r| r.contract != "R5"));
    // R7's list renewal cannot be priced: the reason is on its row, the rest stand.
    let r7 = desk.rows.iter().find(|r| r.contract == "R7").unwrap();
    assert_eq!(
        r7.quote.as_ref().unwrap_err().to_string(),
        "NOLIST: no price (no contracted price for the customer and no list_price in products.csv)"
    );
    // Renewed by `quote renew --apply`'s shape (R1) and by hand (R6, a new contract N6).
    let r1 = desk.rows.iter().find(|r| r.contract == "R1").unwrap();
    assert_eq!(r1.renewal_contracts, ["R1-R20241101"]);
    assert_eq!(r1.renewal_lines, ["A1-R20241101"]);
    let r6 = desk.rows.iter().find(|r| r.contract == "R6").unwrap();
    assert_eq!(r6.renewal_contracts, ["N6"]);
    assert_eq!(r6.renewal_lines, ["F2"]);
    // Evergreen apart.
    assert_eq!(desk.evergreen.len(), 1);
    assert_eq!(desk.evergreen[0].contract, "R4");
    assert_eq!(desk.evergreen[0].arr, money("1200"));
}

/// The ARR up for renewal is the renewal quote's `mrr_before` x 12, and the quoted ARR its
/// `mrr_after` x 12, for every contract the quote prices.
#[test]
fn the_arr_up_for_renewal_is_the_quotes_mrr_before() {
    let book = book();
    let desk = renewal_desk(&book, day("2024-10-01"), 3660, &Selection::all());
    assert!(desk.rows.len() >= 8, "{}", desk.rows.len());
    for r in &desk.rows {
        let request = RenewRequest {
            contract: r.contract.clone(),
            ..RenewRequest::default()
        };
        if let Ok(q) = quote_renew(&book, &request) {
            let twelve =
                |m: Money| Money::from_decimal(m.as_decimal() * expansa_ledger::Decimal::from(12));
            assert_eq!(r.arr, twelve(q.mrr_before), "{}", r.contract);
            assert_eq!(
                r.quote.as_ref().unwrap().arr,
                twelve(q.mrr_after),
                "{}",
                r.contract
            );
        }
    }
}

#[test]
fn renewal_months_add_up_by_the_end_month() {
    let book = book();
    let months = renewal_months(&book, month("2024-07"), month("2025-10"), &|_| true);
    let get = |m: &str| months.iter().find(|x| x.month == month(m)).unwrap();
    let aug = get("2024-08");
    assert_eq!((aug.contracts, aug.renewed_contracts), (2, 1));
    assert_eq!(aug.arr, money("2400"));
    assert_eq!(aug.renewed_arr, money("1080"));
    assert_eq!(aug.renewed_arr_gross, money("1080"));
    assert_eq!(aug.gross_rate(), Some("0.45".parse().unwrap()));
    assert_eq!(aug.net_rate(), Some("0.45".parse().unwrap()));
    let oct = get("2024-10");
    assert_eq!((oct.contracts, oct.renewed_contracts), (1, 1));
    assert_eq!(oct.arr, money("4200"));
    assert_eq!(oct.renewed_arr, money("5040"));
    assert_eq!(oct.renewed_arr_gross, money("4200"));
    assert_eq!(oct.gross_rate(), Some("1".parse().unwrap()));
    assert_eq!(oct.net_rate(), Some("1.2".parse().unwrap()));
    for (m, arr) in [("2024-11", "600"), ("2024-12", "1800"), ("2025-02", "2400")] {
        let x = get(m);
        assert_eq!(
            (x.contracts, x.renewed_contracts, x.arr),
            (1, 0, money(arr)),
            "{m}"
        );
        assert_eq!(x.gross_rate(), Some("0".parse().unwrap()), "{m}");
    }
    for m in ["2024-07", "2024-09", "2025-01"] {
        assert_eq!(get(m).contracts, 0, "{m}");
        assert_eq!(get(m).gross_rate(), None, "{m}");
    }
    // The renewals themselves come up in their own end months.
    assert_eq!(get("2025-08").arr, money("1080"));
    assert_eq!(get("2025-10").arr, money("5040"));
    // A filter keeps lines: only SEAT lines (R1 and R3, and R1's renewal).
    let seat = book.products.ids.find("SEAT").unwrap();
    let keep = |l: u32| book.lines.items[l as usize].product == seat;
    let months = renewal_months(&book, month("2024-08"), month("2024-12"), &keep);
    let arr: Vec<_> = months.iter().map(|m| m.arr).collect();
    assert_eq!(
        arr,
        [
            money("0"),
            money("0"),
            money("4200"),
            money("0"),
            money("1800")
        ]
    );
}

#[test]
fn the_desk_renders_in_every_format() {
    let book = book();
    let desk = renewal_desk(&book, day("2024-10-01"), 90, &Selection::all());
    let pt = render_renewals(&desk, Format::Table(Locale::PtBr));
    assert!(pt.contains("R$ 4.200,00"), "{pt}");
    assert!(pt.contains("+R$ 300,00"), "{pt}");
    assert!(
        pt.contains("perdido") && pt.contains("renovado") && pt.contains("em aberto"),
        "{pt}"
    );
    assert!(pt.contains("* sem cotação: R7: NOLIST: no price"), "{pt}");
    assert!(
        pt.contains("R$ 9.000,00") && pt.contains("R$ 6.120,00"),
        "{pt}"
    );
    let en = render_renewals(&desk, Format::Table(Locale::En));
    assert!(en.contains("R$4,200.00") && en.contains("churned"), "{en}");
    assert!(en.contains("Evergreen contracts"), "{en}");
    let csv = render_renewals(&desk, Format::Csv);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 5 + 1, "{csv}");
    assert!(lines[1].starts_with("c2,R2,2024-08-15,-47,1200.00,uplift,10,2024-08-16,2025-08-15,1320.00,120.00,,churned,,"), "{csv}");
    assert_eq!(lines[6], "c4,R4,,,1200.00,,,,,,,,evergreen,,");
    let json: serde_json::Value =
        serde_json::from_str(&render_renewals(&desk, Format::Json)).unwrap();
    assert_eq!(json["totals"]["arr"], "9000.00");
    assert_eq!(json["totals"]["quoted_arr"], "8820.00");
    assert_eq!(json["totals"]["renewed_arr"], "6120.00");
    assert_eq!(json["renewals"][2]["customer_name"], "Alfa Contabilidade");
}

/// A contract of a customer with two contracts ending the same day: an unlinked line of a new
/// contract renews the one whose id its own extends, never both.
#[test]
fn an_unlinked_renewal_renews_one_contract_only() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/renewals");
    for f in ["customers.csv", "products.csv"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(
        dir.path().join("contracts.csv"),
        "id,customer_id,start_date,end_date\nA,c1,2024-01-01,2024-12-31\nB,c1,2024-01-01,2024-12-31\nB-R20250101,c1,2025-01-01,2025-12-31\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("subscriptions.csv"),
        "id,customer_id,contract_id,product_id,quantity,unit_price,billing_period_months,start_date,end_date\n\
         a,c1,A,PLAN,1,1200,12,2024-01-01,2024-12-31\n\
         b,c1,B,PLAN,2,1200,12,2024-01-01,2024-12-31\n\
         n,c1,B-R20250101,PLAN,3,1200,12,2025-01-01,2025-12-31\n",
    )
    .unwrap();
    let book = read_book(dir.path(), &ImportOptions::default(), &NoProgress).unwrap();
    let desk = renewal_desk(&book, day("2025-01-15"), 30, &Selection::all());
    let status: Vec<_> = desk
        .rows
        .iter()
        .map(|r| (r.contract.as_str(), r.status, r.renewed_arr))
        .collect();
    assert_eq!(
        status,
        [
            ("A", RenewalStatus::Churned, None),
            ("B", RenewalStatus::Renewed, Some(money("3600")))
        ]
    );
}

/// testdata/renewals-fx (NOTES.md there): a renewal at an unchanged foreign price is renewed
/// whole at constant exchange rates; a renewal whose first month has no rate is not priced.
#[test]
fn renewals_are_measured_at_constant_exchange_rates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/renewals-fx");
    let book = read_book(&dir, &ImportOptions::default(), &NoProgress).unwrap();
    let months = renewal_months(&book, month("2024-12"), month("2024-12"), &|_| true);
    let m = &months[0];
    assert_eq!(
        (m.arr, m.renewed_arr, m.renewed_arr_gross),
        (money("6000"), money("6000"), money("6000"))
    );
    assert_eq!(m.gross_rate().map(|r| r.to_string()), Some("1".into()));
    let desk = renewal_desk(&book, day("2024-12-31"), 400, &Selection::all());
    let u = desk.rows.iter().find(|r| r.contract == "U").unwrap();
    let q = u.quote.as_ref().unwrap();
    assert_eq!((q.arr, q.change), (money("6000"), money("0")));
    assert_eq!(u.status, RenewalStatus::Renewed);
    let e = quote_renew(
        &book,
        &RenewRequest {
            contract: "U".into(),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "contract U is already renewed in the book (by U1-R20250101): a second renewal would \
         count it twice"
    );
    let v = desk.rows.iter().find(|r| r.contract == "V").unwrap();
    assert_eq!(
        v.quote.as_ref().unwrap_err().to_string(),
        "API: the new line starts in 2026-01 and fx_rates.csv has no USD rate for that month \
         (a line is valued at its first month's rate): add one"
    );
}
