//! Cases found by trying the issue-12 rules as a new user would, each worked by hand.

use expansa_import::{read_book_from, ImportOptions, InMemory, NoProgress};
use expansa_ledger::{Book, Month};
use expansa_movements::{trail, Kind, Query, Rules, Selection};

fn book(subscriptions: &str) -> Book {
    let files = [("subscriptions.csv", subscriptions.as_bytes())];
    read_book_from(&InMemory(&files), &ImportOptions::default(), &NoProgress)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The March trail of customer C: (kind, amount, line ids).
fn march(book: &Book) -> Vec<(Kind, String, Vec<String>)> {
    let m = Month::new(2024, 3).unwrap();
    let q = Query {
        from: m,
        to: m,
        rules: Rules::Conexa,
    };
    let c = book.customers.ids.find("C").unwrap();
    trail(book, &q, c)
        .into_iter()
        .map(|mv| {
            let ids = mv
                .lines
                .iter()
                .map(|&l| book.lines.ids.get(l).to_string())
                .collect();
            (mv.kind, mv.amount.round_dp(2).to_string(), ids)
        })
        .collect()
}

/// P (basic 100) is revised by A (pro 200, from 03-10) and by B (an add-on 50, from 03-20).
/// A starts first, so A ended P (its effective end is 03-09) and A is P's successor: March
/// is upsell +100 (A over P) and cross-sell +50 (B, no predecessor left), whatever the
/// products are called. (Claiming in product-id order paired P with B, "addon" < "pro": a
/// downsell of 50 and a cross-sell of 200, and renaming the add-on flipped it.)
#[test]
fn the_earliest_of_two_successors_takes_the_revised_line() {
    let expected = vec![
        (Kind::CrossSell, "50.00".to_string(), vec!["B".to_string()]),
        (
            Kind::Upsell,
            "100.00".to_string(),
            vec!["A".to_string(), "P".to_string()],
        ),
    ];
    for addon in ["addon", "zaddon"] {
        let b = book(&format!(
            "id,customer_id,product_id,unit_price,start_date,end_date,revises\n\
             P,C,basic,100,2024-01-01,,\n\
             A,C,pro,200,2024-03-10,,P\n\
             B,C,{addon},50,2024-03-20,,P\n"
        ));
        let mut got = march(&b);
        got.sort();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(got, want, "add-on named {addon}");
    }
}

/// A filter value the book does not have is refused, naming what it has; a channel compares
/// without case.
#[test]
fn a_filter_value_nobody_has_is_refused() {
    let b = book(
        "id,customer_id,product_id,unit_price,start_date\n\
         P,C,basic,100,2024-01-01\n",
    );
    let f = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    let e = Selection::from_filters(&b, &f("family", "BASIC")).unwrap_err();
    assert!(
        e.contains("no family is \"BASIC\"") && e.contains("basic"),
        "{e}"
    );
    let e = Selection::from_filters(&b, &f("segment", "smb")).unwrap_err();
    assert!(e.contains("the book has no segment values"), "{e}");
    assert!(Selection::from_filters(&b, &f("family", "basic")).is_ok());
    assert!(Selection::from_filters(&b, &f("customer", "C")).is_ok());
}
