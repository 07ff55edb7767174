//! The Asaas preset (`presets/asaas.toml`) on a list written from Asaas' API documentation
//! (`fixtures/asaas/`: GET /v3/subscriptions and GET /v3/customers). Every expected value is
//! worked out by hand in `fixtures/asaas/NOTES.md`.

mod common;

use common::{convert_to_temp, d, dec, fixtures, mrr_on, read_in};
use expansa_import::BookErrors;
use expansa_ledger::{Book, Currency, Decimal};
use expansa_sources::{Conversion, Options, SourceKind, Spec};
use std::path::{Path, PathBuf};

const SUBS: &str = "subscriptions.json";

fn fixture() -> PathBuf {
    fixtures("asaas")
}

fn convert(input: &Path) -> (tempfile::TempDir, Result<Conversion, BookErrors>) {
    convert_to_temp(&spec(), input, &Options::default())
}

const PRESET: &str = include_str!("../presets/asaas.toml");

/// `--from asaas`: the shipped preset.
fn spec() -> Spec {
    Spec::Source(SourceKind::Asaas)
}

#[test]
fn the_preset_is_shipped() {
    assert_eq!(
        SourceKind::Asaas.preset(),
        Some(PRESET),
        "mapping::preset(SourceKind::Asaas) must be include_str!(\"../presets/asaas.toml\")"
    );
}

fn book(dir: &Path) -> Book {
    read_in(dir, Currency::BRL)
}

fn count(c: &Conversion, outcome: &str, reason: &str) -> u64 {
    common::count(c, SUBS, outcome, reason)
}

/// The written `subscriptions.csv`, one map of column to cell per line, by line id.
fn written_lines(dir: &Path) -> std::collections::BTreeMap<String, Vec<(String, String)>> {
    let mut r = csv::Reader::from_path(dir.join("subscriptions.csv")).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let cells: Vec<(String, String)> = header
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect();
            (rec[0].to_string(), cells)
        })
        .collect()
}

fn cell<'a>(line: &'a [(String, String)], column: &str) -> &'a str {
    line.iter()
        .find(|(c, _)| c == column)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no column {column}"))
}

/// id, customer, product, quantity, unit price, start, end.
type Expected<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
);

const LINES: [Expected; 5] = [
    (
        "sub_m5gdy1upm25f",
        "cus_000006101001",
        "Plano Pro",
        "1",
        "199.9",
        "2024-01-15",
        None,
    ),
    (
        "sub_9k2rw7xq1b0c",
        "cus_000006101002",
        "Plano Pro Anual",
        "1",
        "2400",
        "2024-03-01",
        None,
    ),
    (
        "sub_3t8vn0hd6e4a",
        "cus_000006101003",
        "Plano Equipe",
        "1",
        "450",
        "2024-02-10",
        Some("2024-08-09"),
    ),
    (
        "sub_7w1kq5zr8m3p",
        "cus_000006101004",
        "Aulas semanais",
        "1",
        "50",
        "2024-04-01",
        Some("2024-09-29"),
    ),
    (
        "sub_5n0be3kc9v2w",
        "cus_000006101004",
        "assinatura",
        "1",
        "600",
        "2024-10-01",
        None,
    ),
];

#[test]
fn the_documented_list_becomes_five_lines() {
    let (dir, out) = convert(&fixture());
    let c = out.unwrap();
    assert_eq!(count(&c, "mapped", "recurring"), 5);
    assert_eq!(count(&c, "skipped", "not_billable"), 1); // INACTIVE
    assert_eq!(count(&c, "skipped", "filtered"), 1); // deleted
    assert_eq!(c.summary.by_outcome.values().sum::<u64>(), 7);
    assert_eq!(c.written.lines, 5);

    let b = book(dir.path());
    assert_eq!(b.lines.len(), LINES.len());
    for (id, customer, product, quantity, price, start, end) in LINES {
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
        // The early-payment discount of the first subscription is not a price discount.
        assert_eq!(l.discount_pct.get(), Decimal::ZERO, "{id} discount");
        assert_eq!(l.currency.code(), "BRL", "{id} currency");
        assert_eq!(l.start, d(start), "{id} start");
        assert_eq!(l.end, end.map(d), "{id} end");
    }

    // Billing periods as written: cycle MONTHLY, YEARLY, QUARTERLY, WEEKLY, SEMIANNUALLY.
    let w = written_lines(dir.path());
    let period = |id: &str| {
        let l = &w[id];
        (
            cell(l, "billing_period_months").to_string(),
            cell(l, "billing_interval").to_string(),
            cell(l, "billing_interval_count").to_string(),
        )
    };
    let months = |m: &str| (m.to_string(), String::new(), String::new());
    assert_eq!(period("sub_m5gdy1upm25f"), months("1"));
    assert_eq!(period("sub_9k2rw7xq1b0c"), months("12"));
    assert_eq!(period("sub_3t8vn0hd6e4a"), months("3"));
    assert_eq!(
        period("sub_7w1kq5zr8m3p"),
        (String::new(), "week".to_string(), "1".to_string())
    );
    assert_eq!(period("sub_5n0be3kc9v2w"), months("6"));
    for (id, months) in [
        ("sub_m5gdy1upm25f", 1),
        ("sub_9k2rw7xq1b0c", 12),
        ("sub_3t8vn0hd6e4a", 3),
        ("sub_5n0be3kc9v2w", 6),
    ] {
        let k = b.lines.ids.find(id).unwrap();
        assert_eq!(
            b.lines.items[k as usize]
                .billing_period
                .whole_months()
                .unwrap_or(0),
            months,
            "{id}"
        );
    }

    // Customers from customers.json.
    let padaria = b.customers.ids.find("cus_000006101001").unwrap() as usize;
    assert_eq!(
        b.customers.name.get_opt(padaria),
        Some("Padaria Pão Quente Ltda")
    );
    assert_eq!(b.customers.registered_on[padaria], Some(d("2024-01-10")));
    let escola = b.customers.ids.find("cus_000006101004").unwrap() as usize;
    assert_eq!(b.customers.name.get_opt(escola), Some("Escola Saber"));
    // Loja Verde's subscriptions are both left out: it is not a customer of the book.
    assert!(b.customers.ids.find("cus_000006101005").is_none());
}

#[test]
fn mrr_at_month_ends_without_a_weekly_line() {
    let (dir, out) = convert(&fixture());
    out.unwrap();
    let b = book(dir.path());
    // 199.90 + 2400/12 + 600/6 (NOTES.md).
    assert_eq!(mrr_on(&b, "2024-12-31"), dec("499.90"));
    // 199.90 + 2400/12 + 450/3: the weekly line starts on 1 April.
    assert_eq!(mrr_on(&b, "2024-03-31"), dec("549.90"));
    // The quarterly line ended on 9 August and the weekly one on 29 September.
    assert_eq!(mrr_on(&b, "2024-09-30"), dec("399.90"));
}

/// Needs the weekly normalisation (a line billed every n weeks counts amount × 365 / (84 × n)
/// a month): checked once the importer reads `billing_interval`.
#[test]
fn mrr_at_june_end_with_the_weekly_line() {
    let (dir, out) = convert(&fixture());
    out.unwrap();
    let b = book(dir.path());
    // 199.90 + 200 + 150 + 50 × 365 / 84 (NOTES.md).
    let expected = dec("549.90") + dec("50") * dec("365") / dec("84");
    let got = mrr_on(&b, "2024-06-30");
    assert!(
        (got - expected).abs() < dec("0.000001"),
        "MRR at 2024-06-30: {got}, expected {expected}"
    );
}

fn refused(json: &str, with_customers: bool) -> Vec<String> {
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join(SUBS), json).unwrap();
    if with_customers {
        std::fs::copy(
            fixture().join("customers.json"),
            input.path().join("customers.json"),
        )
        .unwrap();
    }
    let (_out, result) = convert(input.path());
    let errors = match result {
        Ok(_) => panic!("converted: {json}"),
        Err(e) => e,
    };
    errors.0.iter().map(|p| p.to_string()).collect()
}

const ONE: &str = r#"{"object": "subscription", "id": "sub_a", "dateCreated": "2024-01-15",
  "customer": "cus_000006101001", "cycle": "MONTHLY", "value": 100, "description": "Plano Pro",
  "status": "ACTIVE", "deleted": false, "endDate": null}"#;

#[test]
fn an_error_body_is_not_a_subscription_list() {
    // Asaas' error body (https://docs.asaas.com/reference/http-response-codes).
    let body = r#"{"errors": [{"code": "invalid_access_token",
        "description": "A chave de API fornecida é inválida"}]}"#;
    assert_eq!(
        refused(body, false),
        [
            "subscriptions.json:0: json: : is not a JSON list (an array, or an object whose \
             `data` is one): is this an Asaas subscription list (GET /v3/subscriptions: \
             {\"object\": \"list\", \"data\": [...]})?"
        ]
    );
}

#[test]
fn a_day_written_dd_mm_yyyy_is_refused() {
    let bad = ONE.replace("\"2024-01-15\"", "\"01/02/2024\"");
    let list = format!(r#"{{"object": "list", "data": [{ONE}, {bad}]}}"#).replace(
        "\"sub_a\", \"dateCreated\": \"01/02/2024\"",
        "\"sub_b\", \"dateCreated\": \"01/02/2024\"",
    );
    assert_eq!(
        refused(&list, true),
        [
            "subscriptions.json:2: dateCreated: 01/02/2024: is not a date the mapping can \
             read without a date format: 01/02/2024 could be 1 February or 2 January; declare \
             date_format (such as \"%d/%m/%Y\") in [input] or on the field"
        ]
    );
}

#[test]
fn the_same_id_with_another_value_is_refused() {
    let other = ONE.replace("\"value\": 100", "\"value\": 120");
    let list = format!(r#"{{"object": "list", "data": [{ONE}, {other}, {ONE}]}}"#);
    assert_eq!(
        refused(&list, true),
        ["subscriptions.json:2: id: sub_a: contradicts line 1: the same id with other values"]
    );
}
