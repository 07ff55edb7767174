//! The Conexa converter on fixtures written from the Conexa API v2 documentation
//! (<https://documenter.getpostman.com/view/25182821/2s93RZMpcB>); every expectation is worked
//! out by hand in `fixtures/conexa/NOTES.md`.

mod common;

use common::{d as day, dec, mrr_on, read_in};
use expansa_import::TextEncoding;
use expansa_ledger::{Book, Currency, Date, Line};
use expansa_sources::{convert_into, Input, Options, SourceKind, Spec};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conexa")
}

fn convert(
    input: &Path,
    out: &Path,
    skip_refused: bool,
) -> Result<expansa_sources::Conversion, Vec<String>> {
    let options = Options {
        skip_refused,
        ..Options::default()
    };
    convert_into(
        &Spec::Source(SourceKind::Conexa),
        &Input::new(input, TextEncoding::UTF_8),
        &options,
        out,
    )
    .map_err(|e| e.0.iter().map(ToString::to_string).collect())
}

/// The converted book, read in BRL (the importer's default currency).
fn read(dir: &Path) -> Book {
    read_in(dir, Currency::BRL)
}

fn line<'a>(book: &'a Book, id: &str) -> &'a Line {
    let idx = book
        .lines
        .ids
        .find(id)
        .unwrap_or_else(|| panic!("no line {id}"));
    &book.lines.items[idx as usize]
}

/// Checks a line field by field: customer, contract, product, quantity, unit price, discount,
/// period in months, start, end, revises.
#[allow(clippy::too_many_arguments)]
fn check(
    book: &Book,
    id: &str,
    customer: &str,
    contract: &str,
    product: &str,
    quantity: &str,
    unit_price: &str,
    discount_pct: &str,
    months: u16,
    start: &str,
    end: Option<&str>,
    revises: Option<&str>,
) {
    let l = line(book, id);
    let idx = book.lines.ids.find(id).unwrap();
    assert_eq!(
        book.customers.ids.get(l.customer),
        customer,
        "{id} customer"
    );
    assert_eq!(book.lines.contract_id(idx), contract, "{id} contract");
    assert_eq!(book.products.ids.get(l.product), product, "{id} product");
    assert_eq!(l.quantity.get(), dec(quantity), "{id} quantity");
    assert_eq!(l.unit_price.get(), dec(unit_price), "{id} unit price");
    assert_eq!(l.discount_pct.get(), dec(discount_pct), "{id} discount");
    assert_eq!(
        l.billing_period.whole_months().unwrap_or(0),
        months,
        "{id} period"
    );
    assert_eq!(l.start, day(start), "{id} start");
    assert_eq!(l.end, end.map(day), "{id} end");
    assert_eq!(
        l.revises().map(|r| book.lines.ids.get(r).to_string()),
        revises.map(str::to_string),
        "{id} revises"
    );
}

#[test]
fn converts_the_fixture_book() {
    let out = tempfile::tempdir().unwrap();
    let conversion = convert(&fixtures(), out.path(), false).expect("converts");
    let book = read(out.path());

    // NOTES.md, "Lines".
    assert_eq!(book.lines.len(), 8);
    check(
        &book,
        "contract-501",
        "101",
        "contract-501",
        "plan-87",
        "1",
        "1000",
        "0",
        1,
        "2024-01-01",
        Some("2024-06-30"),
        None,
    );
    check(
        &book,
        "contract-501@2024-07-01",
        "101",
        "contract-501",
        "plan-87",
        "1",
        "1045",
        "0",
        1,
        "2024-07-01",
        None,
        Some("contract-501"),
    );
    check(
        &book,
        "contract-501-service-1",
        "101",
        "contract-501",
        "2113",
        "2",
        "150",
        "0",
        1,
        "2024-01-01",
        None,
        None,
    );
    check(
        &book,
        "contract-502",
        "102",
        "contract-502",
        "plan-88",
        "1",
        "1000",
        "10",
        3,
        "2024-02-01",
        None,
        None,
    );
    check(
        &book,
        "contract-503",
        "103",
        "contract-503",
        "plan-87",
        "1",
        "500",
        "0",
        1,
        "2024-03-01",
        Some("2024-09-15"),
        None,
    );
    check(
        &book,
        "recurringSale-601",
        "101",
        "recurringSale-601",
        "2119",
        "1",
        "500",
        "0",
        1,
        "2024-04-01",
        None,
        None,
    );
    check(
        &book,
        "recurringSale-605",
        "104",
        "recurringSale-605",
        "2113",
        "1",
        "1200",
        "0",
        6,
        "2024-07-01",
        None,
        None,
    );
    // The weekly sale: checked in the CSV (its billing interval is written as weeks).
    let l = line(&book, "recurringSale-604");
    assert_eq!(
        (l.quantity.get(), l.unit_price.get()),
        (dec("2"), dec("25"))
    );
    assert_eq!(
        (l.start, l.end),
        (day("2024-08-05"), Some(day("2024-10-27")))
    );
    let csv = std::fs::read_to_string(out.path().join("subscriptions.csv")).unwrap();
    let weekly = csv
        .lines()
        .find(|r| r.starts_with("recurringSale-604,"))
        .unwrap();
    assert_eq!(
        weekly,
        "recurringSale-604,102,recurringSale-604,2154,2,25,,,,week,1,2024-08-05,2024-10-27,,"
    );

    // NOTES.md, "MRR".
    assert_eq!(mrr_on(&book, "2024-06-30"), dec("2600"));
    assert_eq!(mrr_on(&book, "2024-12-31"), dec("2345"));

    // Customers, with their names and segments; contracts with their dates.
    assert_eq!(book.customers.len(), 4);
    let c = book.customers.ids.find("104").unwrap() as usize;
    assert_eq!(book.customers.name.get_opt(c), Some("Delta Consulting LLC"));
    assert_eq!(book.customers.segment.get_opt(c), Some("Consultoria"));
    assert_eq!(book.customers.country.get_opt(c), Some("United States"));
    let mut contracts: Vec<(String, Date, Option<Date>)> = book
        .contracts
        .iter()
        .map(|c| (c.id.clone(), c.start, c.end))
        .collect();
    contracts.sort();
    assert_eq!(
        contracts,
        vec![
            ("contract-501".into(), day("2024-01-01"), None),
            ("contract-502".into(), day("2024-02-01"), None),
            (
                "contract-503".into(),
                day("2024-03-01"),
                Some(day("2024-09-15"))
            ),
            ("recurringSale-601".into(), day("2024-04-01"), None),
            (
                "recurringSale-604".into(),
                day("2024-08-05"),
                Some(day("2024-10-27"))
            ),
            ("recurringSale-605".into(), day("2024-07-01"), None),
        ]
    );

    // NOTES.md, "Report": 20 source rows, each once.
    let s = &conversion.summary;
    assert_eq!(s.by_outcome.get("mapped"), Some(&16));
    assert_eq!(s.by_outcome.get("skipped"), Some(&4));
    assert_eq!(s.by_outcome.get("refused"), None);
    let count = |file: &str, reason: &str| {
        s.reasons
            .iter()
            .filter(|r| r.file == file && r.reason == reason)
            .map(|r| r.rows)
            .sum::<u64>()
    };
    assert_eq!(count("contracts.json", "recurring"), 4);
    assert_eq!(count("contracts.json", "not_billable"), 1);
    assert_eq!(count("recurring_sales.json", "recurring"), 3);
    assert_eq!(count("recurring_sales.json", "one_off"), 1);
    assert_eq!(count("recurring_sales.json", "zero_amount"), 1);
    assert_eq!(count("sales.json", "one_off"), 1);
    assert_eq!(count("customers.json", "customer"), 4);
    assert_eq!(count("products.json", "product"), 5);
    assert_eq!(
        s.not_rebuilt,
        vec![
            "2024-04..2024-09: recurringSale-601: its price before lastAdjustmentDate \
             2024-10-01 is not in the Conexa API (no percentage is given); the current price \
             is used"
                .to_string()
        ]
    );
    assert!(s.notes.iter().any(|n| n.starts_with(
        "contract-501: price before the readjustment of 2024-07-01 (IGP-M 4.5%) rebuilt as 1000"
    )));
    let log = std::fs::read_to_string(out.path().join("conversion.csv")).unwrap();
    assert_eq!(
        log.lines().count(),
        21,
        "a header and one row per source row"
    );
}

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn a_file_that_is_not_json_is_one_problem() {
    let input = folder(&[("contracts.json", "contractId;customerId\n501;101\n")]);
    let out = tempfile::tempdir().unwrap();
    let problems = convert(input.path(), out.path(), false).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("contracts.json:1: json: : is not JSON: expected value"),
        "{problems:?}"
    );
}

#[test]
fn json_that_is_not_a_list_of_contracts_is_one_problem() {
    // What the API answers without a token: an object, not a list.
    let input = folder(&[(
        "contracts.json",
        r#"{"message": "Authentication required"}"#,
    )]);
    let out = tempfile::tempdir().unwrap();
    let problems = convert(input.path(), out.path(), false).unwrap_err();
    assert_eq!(
        problems,
        vec![
            "contracts.json:0: json: : is not a list of Conexa contracts: expected a JSON array, \
             or {\"data\": [...]} as the Conexa API v2 list endpoints return"
        ]
    );
    // A Stripe list is a list, but not of Conexa contracts.
    let input = folder(&[(
        "contracts.json",
        r#"{"object": "list", "data": [{"id": "sub_1", "customer": "cus_1"}]}"#,
    )]);
    let problems = convert(input.path(), out.path(), false).unwrap_err();
    assert_eq!(
        problems,
        vec![
            "contracts.json:0: customerId: : no element has customerId: is this a list of \
             Conexa contracts (as the Conexa API v2 returns them)?"
        ]
    );
}

#[test]
fn a_folder_without_conexa_lists_is_one_problem() {
    let input = folder(&[("subscriptions.csv", "id\n")]);
    let out = tempfile::tempdir().unwrap();
    let problems = convert(input.path(), out.path(), false).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains("has no contracts.json or recurring_sales.json"),
        "{problems:?}"
    );
}

const TWO_CONTRACTS: &str = r#"[
  {"contractId": 501, "customerId": 101, "planId": 87, "paymentFrequency": "Monthly",
   "startDate": "2024-01-01", "endDate": null, "isActive": true, "salesQuantity": 12,
   "amount": 1000},
  {"contractId": 506, "customerId": 102, "planId": 87, "paymentFrequency": "Monthly",
   "startDate": "2024-03-01", "endDate": "2024-02-28", "isActive": false, "salesQuantity": 1,
   "amount": 400}
]"#;

#[test]
fn a_contract_ending_before_it_starts_is_refused() {
    let input = folder(&[("contracts.json", TWO_CONTRACTS)]);
    let out = tempfile::tempdir().unwrap();
    let problems = convert(input.path(), out.path(), false).unwrap_err();
    assert_eq!(
        problems,
        vec!["contracts.json:2: endDate: 2024-02-28: ends before it starts (startDate 2024-03-01)"]
    );

    let out = tempfile::tempdir().unwrap();
    let conversion = convert(input.path(), out.path(), true).expect("converts without it");
    assert_eq!(conversion.summary.by_outcome.get("refused"), Some(&1));
    let book = read(out.path());
    assert_eq!(book.lines.len(), 1);
    check(
        &book,
        "contract-501",
        "101",
        "contract-501",
        "plan-87",
        "1",
        "1000",
        "0",
        1,
        "2024-01-01",
        None,
        None,
    );
    assert_eq!(mrr_on(&book, "2024-12-31"), dec("1000"));
}

#[test]
fn amounts_quantities_and_discounts_stay_exact() {
    // A recurring sale of 3 units for 100.00 (not a whole number of cents each), a contract
    // with a discount that is no exact percentage, and an amount given as a string.
    let input = folder(&[
        (
            "recurring_sales.json",
            r#"[{"recurringSaleId": 7, "customerId": 1, "productId": 9, "frequency": "Yearly",
                 "startDate": "2024-01-15", "quantity": 3, "amount": 100, "isActive": true,
                 "generatedQuantity": 1},
                {"recurringSaleId": 8, "customerId": 1, "productId": 9, "frequency": "monthly",
                 "startDate": "2024-02-01", "occurrenceQuantity": 3, "quantity": 1,
                 "amount": "19.99", "isActive": true, "generatedQuantity": 3}]"#,
        ),
        (
            "contracts.json",
            r#"{"contractId": 3, "customerId": 1, "planId": 4, "paymentFrequency": "Monthly",
                "startDate": "2024-01-01", "amount": 1400, "discountValue": 100}"#,
        ),
    ]);
    let out = tempfile::tempdir().unwrap();
    convert(input.path(), out.path(), false).expect("converts");
    let book = read(out.path());
    // 100 / 3 is not exact: one unit at the whole amount, same MRR (100 / 12).
    check(
        &book,
        "recurringSale-7",
        "1",
        "recurringSale-7",
        "9",
        "1",
        "100",
        "0",
        12,
        "2024-01-15",
        None,
        None,
    );
    // 3 monthly occurrences from 2024-02-01: the last day is 2024-04-30.
    check(
        &book,
        "recurringSale-8",
        "1",
        "recurringSale-8",
        "9",
        "1",
        "19.99",
        "0",
        1,
        "2024-02-01",
        Some("2024-04-30"),
        None,
    );
    // 100 off 1500 is 6.666...%: the line is written at the discounted 1400.
    check(
        &book,
        "contract-3",
        "1",
        "contract-3",
        "plan-4",
        "1",
        "1400",
        "0",
        1,
        "2024-01-01",
        None,
        None,
    );
}
