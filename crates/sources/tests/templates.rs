//! The templates the project writes back (`expansa_sources::template`): a book written as a
//! Baremetrics import template, or as the generic pt-BR spreadsheet, and converted again by
//! the matching preset, gives the same movement report as the book itself (property tests on
//! generated books), and a line a template cannot hold is refused, not dropped.

use expansa_import::{read_book, ImportOptions, NoProgress, TextEncoding};
use expansa_ledger::{Book, Currency};
use expansa_sources::mapping::{self, Mapping};
use expansa_sources::{convert_into, template, Input, Options, SourceKind, Spec};
use proptest::prelude::*;
use std::path::Path;

fn usd() -> Currency {
    Currency::from_code("USD").unwrap()
}

fn read(dir: &Path) -> Book {
    let options = ImportOptions {
        currency: usd(),
        ..ImportOptions::default()
    };
    read_book(dir, &options, &NoProgress).unwrap_or_else(|e| panic!("{:?}", e.0))
}

/// The movement report of a book, 2024-01 to 2025-12, as JSON.
fn report(book: &Book) -> String {
    let query = expansa_movements::Query {
        from: "2024-01".parse().unwrap(),
        to: "2025-12".parse().unwrap(),
        rules: expansa_movements::Rules::Conexa,
    };
    expansa_movements::render_json(&expansa_movements::report(book, &query))
}

/// Writes `bytes` as the one file of an export and converts it by `spec`.
fn convert_back(spec: &Spec, name: &str, bytes: &[u8]) -> Book {
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join(name), bytes).unwrap();
    let out = tempfile::tempdir().unwrap();
    let options = Options {
        currency: usd(),
        ..Options::default()
    };
    convert_into(
        spec,
        &Input::new(input.path(), TextEncoding::UTF_8),
        &options,
        out.path(),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{}: {:?}\n{}",
            spec.name(),
            e.0,
            String::from_utf8_lossy(bytes)
        )
    });
    read(out.path())
}

/// One generated line: customer, product, quantity, cents, discount, period, start offset,
/// days to its end (none: open), and which earlier line it revises (an index, taken when that
/// line starts before it).
type Gen = (u8, u8, u8, u32, u8, u8, u16, Option<u16>, Option<u8>);

fn line() -> impl Strategy<Value = Gen> {
    (
        0u8..4,
        0u8..3,
        1u8..5,
        100u32..50_000,
        0u8..3,
        0u8..5,
        0u16..500,
        proptest::option::of(0u16..400),
        proptest::option::of(0u8..8),
    )
}

/// The book's `subscriptions.csv`; `discounts` and `revises` allow those columns (the
/// Baremetrics template holds neither).
fn book_csv(lines: &[Gen], discounts: bool, revises: bool) -> String {
    let start = |offset: u16| {
        jiff::civil::date(2024, 1, 1)
            .checked_add(jiff::Span::new().days(i64::from(offset)))
            .unwrap()
    };
    let mut text = String::from(
        "id,customer_id,product_id,quantity,unit_price,discount_pct,billing_period_months,billing_interval,billing_interval_count,start_date,end_date,revises\n",
    );
    for (k, (c, p, q, cents, d, period, s, e, r)) in lines.iter().enumerate() {
        let (months, interval, count) = match period {
            0 => ("1", "", ""),
            1 => ("3", "", ""),
            2 => ("12", "", ""),
            3 => ("", "week", "1"),
            _ => ("", "week", "2"),
        };
        let discount = if discounts {
            ["", "10", "25"][*d as usize]
        } else {
            ""
        };
        let begin = start(*s);
        let end = e
            .map(|days| {
                begin
                    .checked_add(jiff::Span::new().days(i64::from(days)))
                    .unwrap()
                    .to_string()
            })
            .unwrap_or_default();
        let revised = r
            .filter(|_| revises)
            .map(|j| j as usize)
            .filter(|&j| j < k && lines[j].0 == *c && start(lines[j].6) < begin)
            .map(|j| format!("l{j}"))
            .unwrap_or_default();
        text.push_str(&format!(
            "l{k},c{c},p{p},{q},{}.{:02},{discount},{months},{interval},{count},{begin},{end},{revised}\n",
            cents / 100,
            cents % 100
        ));
    }
    text
}

fn book_of(csv: &str) -> (Book, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("subscriptions.csv"), csv).unwrap();
    (read(dir.path()), dir)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_book_through_the_baremetrics_template_gives_the_same_report(
        lines in proptest::collection::vec(line(), 1..8)
    ) {
        let (book, _dir) = book_of(&book_csv(&lines, false, false));
        let bytes = template::baremetrics(&book).expect("a book without discounts or daily lines");
        let back = convert_back(&Spec::Source(SourceKind::Baremetrics), "subscriptions.csv", &bytes);
        prop_assert_eq!(report(&back), report(&book));
    }

    #[test]
    fn a_book_through_the_spreadsheet_template_gives_the_same_report(
        lines in proptest::collection::vec(line(), 1..8)
    ) {
        let (book, _dir) = book_of(&book_csv(&lines, true, true));
        let bytes = template::planilha(&book);
        let spec = Spec::Mapping(Mapping::parse("planilha", mapping::GENERIC).unwrap());
        let back = convert_back(&spec, "planilha.csv", &bytes);
        prop_assert_eq!(report(&back), report(&book));
    }
}

#[test]
fn what_a_template_cannot_hold_is_refused() {
    let (book, _dir) = book_of(
        "id,customer_id,product_id,unit_price,discount_pct,billing_interval,start_date\n\
         a,c1,p1,10.01,10,month,2024-01-01\n\
         b,c1,p2,10,,day,2024-01-01\n\
         c,c2,p1,10.50,,month,2024-01-01\n",
    );
    let refused: Vec<String> = template::baremetrics(&book)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        refused,
        [
            "line a: its price 9.0090 USD is not a whole number of minor units (plan_amount is in cents)",
            "line b: is billed by days: Baremetrics plans are weekly, monthly or yearly",
        ]
    );
}
