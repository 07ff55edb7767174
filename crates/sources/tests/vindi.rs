//! The Vindi preset (`presets/vindi.toml`) on a list written from Vindi's API documentation
//! (`fixtures/vindi/subscriptions.json`: GET /v1/subscriptions, one line per product item).
//! Every expected value is worked out by hand in `fixtures/vindi/NOTES.md`.

mod common;

use common::{convert_to_temp, d, dec, fixtures, mrr_on, read_in};
use expansa_import::BookErrors;
use expansa_ledger::{Book, Currency};
use expansa_sources::{Conversion, Options, SourceKind, Spec};
use jiff::tz::TimeZone;
use std::path::{Path, PathBuf};

const SUBS: &str = "subscriptions.json";

fn fixture() -> PathBuf {
    fixtures("vindi")
}

fn convert_with(
    input: &Path,
    options: &Options,
) -> (tempfile::TempDir, Result<Conversion, BookErrors>) {
    convert_to_temp(&spec(), input, options)
}

const PRESET: &str = include_str!("../presets/vindi.toml");

/// `--from vindi`: the shipped preset.
fn spec() -> Spec {
    Spec::Source(SourceKind::Vindi)
}

#[test]
fn the_preset_is_shipped() {
    assert_eq!(
        SourceKind::Vindi.preset(),
        Some(PRESET),
        "mapping::preset(SourceKind::Vindi) must be include_str!(\"../presets/vindi.toml\")"
    );
}

fn convert(input: &Path) -> (tempfile::TempDir, Result<Conversion, BookErrors>) {
    convert_with(input, &Options::default())
}

fn book(dir: &Path) -> Book {
    read_in(dir, Currency::BRL)
}

fn count(c: &Conversion, outcome: &str, reason: &str) -> u64 {
    common::count(c, SUBS, outcome, reason)
}

/// id (the product item's), customer, product, quantity, unit price, discount, months, start,
/// end.
type Expected<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    u16,
    &'a str,
    Option<&'a str>,
);

const LINES: [Expected; 6] = [
    (
        "2001",
        "501",
        "301",
        "1",
        "300",
        "10",
        1,
        "2024-01-10",
        None,
    ),
    ("2002", "501", "302", "5", "20", "0", 1, "2024-01-10", None),
    (
        "2004",
        "502",
        "304",
        "1",
        "3600",
        "0",
        12,
        "2024-03-15",
        None,
    ),
    (
        "2005",
        "503",
        "305",
        "2",
        "150",
        "0",
        3,
        "2024-02-01",
        Some("2024-09-30"),
    ),
    ("2006", "504", "301", "1", "250", "0", 1, "2025-02-01", None),
    (
        "2007",
        "505",
        "306",
        "1",
        "500",
        "0",
        1,
        "2024-01-01",
        Some("2024-06-30"),
    ),
];

fn check_lines(b: &Book) {
    assert_eq!(b.lines.len(), LINES.len(), "number of lines");
    for (id, customer, product, quantity, price, discount, months, start, end) in LINES {
        let k = b
            .lines
            .ids
            .find(id)
            .unwrap_or_else(|| panic!("no line {id}"));
        let l = &b.lines.items[k as usize];
        assert_eq!(b.customers.ids.get(l.customer), customer, "{id} customer");
        assert_eq!(b.products.ids.get(l.product), product, "{id} product");
        assert_eq!(l.quantity.get(), dec(quantity), "{id} quantity");
        assert_eq!(l.unit_price.get(), dec(price), "{id} unit price");
        assert_eq!(l.discount_pct.get(), dec(discount), "{id} discount");
        assert_eq!(
            l.billing_period.whole_months().unwrap_or(0),
            months,
            "{id} period"
        );
        assert_eq!(l.currency.code(), "BRL", "{id} currency");
        assert_eq!(l.start, d(start), "{id} start");
        assert_eq!(l.end, end.map(d), "{id} end");
    }
}

#[test]
fn each_product_item_is_a_line() {
    let (dir, out) = convert(&fixture());
    let c = out.unwrap();
    assert_eq!(count(&c, "mapped", "recurring"), 6);
    assert_eq!(count(&c, "skipped", "metered"), 2); // step_usage, volume_usage
    assert_eq!(count(&c, "skipped", "filtered"), 1); // an inactive item
    assert_eq!(c.summary.by_outcome.values().sum::<u64>(), 9);
    let b = book(dir.path());
    check_lines(&b);

    let agencia = b.customers.ids.find("501").unwrap() as usize;
    assert_eq!(b.customers.name.get_opt(agencia), Some("Agência Criativa"));
    let base = b.products.ids.find("301").unwrap() as usize;
    assert_eq!(b.products.items[base].name.as_deref(), Some("Licença base"));
    // Products of skipped items are not written.
    assert!(b.products.ids.find("303").is_none());
    assert!(b.products.ids.find("307").is_none());
}

#[test]
fn the_same_days_in_sao_paulo_time() {
    // Vindi writes instants at -03:00: the days are the same in the book's zone and in UTC.
    let options = Options {
        timezone: TimeZone::get("America/Sao_Paulo").unwrap(),
        ..Options::default()
    };
    let (dir, out) = convert_with(&fixture(), &options);
    out.unwrap();
    check_lines(&book(dir.path()));
}

#[test]
fn mrr_at_month_ends() {
    let (dir, out) = convert(&fixture());
    out.unwrap();
    let b = book(dir.path());
    // 300 × 0.9 + 5 × 20 + 3600 / 12 (NOTES.md).
    assert_eq!(mrr_on(&b, "2024-12-31"), dec("670"));
    // + 2 × 150 / 3 (canceled on 30 September) + 500 (expired on 30 June).
    assert_eq!(mrr_on(&b, "2024-06-30"), dec("1270"));
    // The future subscription starts on 1 February 2025.
    assert_eq!(mrr_on(&b, "2025-02-28"), dec("920"));
}

fn refused(json: &str) -> Vec<String> {
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join(SUBS), json).unwrap();
    let (_out, result) = convert(input.path());
    match result {
        Ok(_) => panic!("converted: {json}"),
        Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
    }
}

const ITEM: &str = r#"{"id": 2001, "status": "active", "quantity": 1,
  "product": {"id": 301, "name": "Licença base"},
  "pricing_schema": {"price": "300.0", "schema_type": "flat"}, "discounts": []}"#;

fn subscription(start_at: &str, items: &[&str]) -> String {
    format!(
        r#"{{"id": 1001, "status": "active", "start_at": "{start_at}", "end_at": null,
        "interval": "months", "interval_count": 1,
        "customer": {{"id": 501, "name": "Agência Criativa"}},
        "product_items": [{}]}}"#,
        items.join(", ")
    )
}

#[test]
fn an_error_body_is_not_a_subscription_list() {
    // Vindi's error body: {"errors": [{"id", "parameter", "message"}]}.
    let body = r#"{"errors": [{"id": "unauthorized", "parameter": null,
        "message": "Chave da API inválida"}]}"#;
    assert_eq!(
        refused(body),
        [
            "subscriptions.json:0: json: : is not a JSON list (an array, or an object whose \
             `subscriptions` is one): is this a Vindi subscription list (GET /v1/subscriptions: \
             {\"subscriptions\": [...]})?"
        ]
    );
}

#[test]
fn a_start_written_dd_mm_yyyy_is_refused() {
    let list = format!(
        r#"{{"subscriptions": [{}]}}"#,
        subscription("01/02/2024 00:00", &[ITEM])
    );
    assert_eq!(
        refused(&list),
        [
            "subscriptions.json:1: ../start_at: 01/02/2024 00:00: is not a date the mapping can \
             read without a date format: 01/02/2024 could be 1 February or 2 January; declare \
             date_format (such as \"%d/%m/%Y\") in [input] or on the field"
        ]
    );
}

#[test]
fn the_same_item_id_with_another_quantity_is_refused() {
    let other = ITEM.replace("\"quantity\": 1", "\"quantity\": 3");
    let list = format!(
        r#"{{"subscriptions": [{}]}}"#,
        subscription("2024-01-10T00:00:00.000-03:00", &[ITEM, &other])
    );
    assert_eq!(
        refused(&list),
        ["subscriptions.json:1: product_items[1].id: 2001: contradicts line 1: the same id with \
          other values"]
    );
}
