//! The Iugu preset (`presets/iugu.toml`) on lists written from Iugu's API documentation
//! (`fixtures/iugu/`: GET /v1/subscriptions and GET /v1/plans). Every expected value is worked
//! out by hand in `fixtures/iugu/NOTES.md`.

mod common;

use common::{convert_to_temp, d, dec, fixtures, mrr_on, read_in};
use expansa_import::BookErrors;
use expansa_ledger::{Book, Currency, Decimal};
use expansa_sources::{Conversion, Options, SourceKind, Spec};
use std::path::{Path, PathBuf};

const SUBS: &str = "subscriptions.json";

fn fixture() -> PathBuf {
    fixtures("iugu")
}

fn convert(input: &Path) -> (tempfile::TempDir, Result<Conversion, BookErrors>) {
    convert_to_temp(&spec(), input, &Options::default())
}

const PRESET: &str = include_str!("../presets/iugu.toml");

/// `--from iugu`: the shipped preset.
fn spec() -> Spec {
    Spec::Source(SourceKind::Iugu)
}

#[test]
fn the_preset_is_shipped() {
    assert_eq!(
        SourceKind::Iugu.preset(),
        Some(PRESET),
        "mapping::preset(SourceKind::Iugu) must be include_str!(\"../presets/iugu.toml\")"
    );
}

fn book(dir: &Path) -> Book {
    read_in(dir, Currency::BRL)
}

fn count(c: &Conversion, outcome: &str, reason: &str) -> u64 {
    common::count(c, SUBS, outcome, reason)
}

/// The written `subscriptions.csv`: per line id, (billing_period_months, billing_interval,
/// billing_interval_count).
fn written_periods(dir: &Path) -> std::collections::BTreeMap<String, (String, String, String)> {
    let mut r = csv::Reader::from_path(dir.join("subscriptions.csv")).unwrap();
    let header = r.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (m, i, c) = (
        at("billing_period_months"),
        at("billing_interval"),
        at("billing_interval_count"),
    );
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[0].to_string(),
                (rec[m].to_string(), rec[i].to_string(), rec[c].to_string()),
            )
        })
        .collect()
}

const MERCADO: &str = "9F8E7D6C5B4A39281706F5E4D3C2B1A1";

/// id, customer, product, unit price, start.
const LINES: [(&str, &str, &str, &str, &str); 4] = [
    (
        "1A2B3C4D5E6F708192A3B4C5D6E7F801",
        MERCADO,
        "basico_mensal",
        "99",
        "2024-01-05",
    ),
    (
        "1A2B3C4D5E6F708192A3B4C5D6E7F802",
        "9F8E7D6C5B4A39281706F5E4D3C2B1A2",
        "pro_anual",
        "1188",
        "2024-02-20",
    ),
    (
        "1A2B3C4D5E6F708192A3B4C5D6E7F803",
        "9F8E7D6C5B4A39281706F5E4D3C2B1A3",
        "semanal",
        "25",
        "2024-06-03",
    ),
    (
        "1A2B3C4D5E6F708192A3B4C5D6E7F806",
        MERCADO,
        "trimestral",
        "270",
        "2024-03-11",
    ),
];

#[test]
fn the_documented_lists_become_four_lines() {
    let (dir, out) = convert(&fixture());
    let c = out.unwrap();
    assert_eq!(count(&c, "mapped", "recurring"), 4);
    assert_eq!(count(&c, "skipped", "not_billable"), 1); // suspended
    assert_eq!(count(&c, "skipped", "filtered"), 1); // in_trial
    assert_eq!(c.summary.by_outcome.values().sum::<u64>(), 6);

    let b = book(dir.path());
    assert_eq!(b.lines.len(), LINES.len());
    for (id, customer, product, price, start) in LINES {
        let k = b
            .lines
            .ids
            .find(id)
            .unwrap_or_else(|| panic!("no line {id}"));
        let l = &b.lines.items[k as usize];
        assert_eq!(b.customers.ids.get(l.customer), customer, "{id} customer");
        assert_eq!(b.products.ids.get(l.product), product, "{id} product");
        assert_eq!(l.quantity.get(), Decimal::ONE, "{id} quantity");
        assert_eq!(l.unit_price.get(), dec(price), "{id} unit price");
        assert_eq!(l.discount_pct.get(), Decimal::ZERO, "{id} discount");
        assert_eq!(l.currency.code(), "BRL", "{id} currency");
        assert_eq!(l.start, d(start), "{id} start");
        assert_eq!(l.end, None, "{id} end");
    }

    // Billing periods from plans.json: 1 month, 12 months, 1 week, 3 months.
    let p = written_periods(dir.path());
    let months = |m: &str| (m.to_string(), String::new(), String::new());
    assert_eq!(p["1A2B3C4D5E6F708192A3B4C5D6E7F801"], months("1"));
    assert_eq!(p["1A2B3C4D5E6F708192A3B4C5D6E7F802"], months("12"));
    assert_eq!(
        p["1A2B3C4D5E6F708192A3B4C5D6E7F803"],
        (String::new(), "week".to_string(), "1".to_string())
    );
    assert_eq!(p["1A2B3C4D5E6F708192A3B4C5D6E7F806"], months("3"));

    let mercado = b.customers.ids.find(MERCADO).unwrap() as usize;
    assert_eq!(b.customers.name.get_opt(mercado), Some("Mercado Bom Preço"));
    let anual = b.products.ids.find("pro_anual").unwrap() as usize;
    assert_eq!(b.products.items[anual].name.as_deref(), Some("Pro Anual"));
}

#[test]
fn mrr_at_month_ends_without_a_weekly_line() {
    let (dir, out) = convert(&fixture());
    out.unwrap();
    let b = book(dir.path());
    // 99 + 1188/12 + 270/3: the weekly line starts on 3 June (NOTES.md).
    assert_eq!(mrr_on(&b, "2024-05-31"), dec("288"));
    assert_eq!(mrr_on(&b, "2024-02-29"), dec("198"));
}

/// Needs the weekly normalisation (a line billed every n weeks counts amount × 365 / (84 × n)
/// a month): checked once the importer reads `billing_interval`.
#[test]
fn mrr_at_year_end_with_the_weekly_line() {
    let (dir, out) = convert(&fixture());
    out.unwrap();
    let b = book(dir.path());
    // 288 + 25 × 365 / 84 (NOTES.md).
    let expected = dec("288") + dec("25") * dec("365") / dec("84");
    let got = mrr_on(&b, "2024-12-31");
    assert!(
        (got - expected).abs() < dec("0.000001"),
        "MRR at 2024-12-31: {got}, expected {expected}"
    );
}

#[test]
fn without_plans_every_line_is_monthly_and_the_report_says_so() {
    let input = tempfile::tempdir().unwrap();
    std::fs::copy(fixture().join(SUBS), input.path().join(SUBS)).unwrap();
    let (dir, out) = convert(input.path());
    let c = out.unwrap();
    assert_eq!(count(&c, "mapped", "recurring"), 4);
    assert!(
        c.summary
            .notes
            .contains(&"4 rows gave no billing interval: read as monthly".to_string()),
        "{:?}",
        c.summary.notes
    );
    let b = book(dir.path());
    for (id, ..) in LINES {
        let k = b.lines.ids.find(id).unwrap() as usize;
        assert_eq!(
            b.lines.items[k].billing_period.whole_months().unwrap_or(0),
            1,
            "{id}"
        );
    }
    // 99 + 1188 + 25 + 270, every one read as monthly.
    assert_eq!(mrr_on(&b, "2024-12-31"), dec("1582"));
}

fn refused(json: &str) -> Vec<String> {
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join(SUBS), json).unwrap();
    std::fs::copy(
        fixture().join("plans.json"),
        input.path().join("plans.json"),
    )
    .unwrap();
    let (_out, result) = convert(input.path());
    match result {
        Ok(_) => panic!("converted: {json}"),
        Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
    }
}

const ONE: &str = r#"{"id": "AA01", "suspended": false, "plan_identifier": "basico_mensal",
  "price_cents": 9900, "currency": "BRL", "created_at": "2024-01-05T10:00:00-03:00",
  "expires_at": "2025-01-05", "customer_id": "C1", "customer_name": "Mercado Bom Preço",
  "plan_name": "Básico Mensal", "active": true, "in_trial": null, "subitems": []}"#;

#[test]
fn an_error_body_is_not_a_subscription_list() {
    // Iugu answers an unknown api_token with {"errors": "Unauthorized"}
    // (https://dev.iugu.com/reference/erros: 401).
    assert_eq!(
        refused(r#"{"errors": "Unauthorized"}"#),
        [
            "subscriptions.json:0: json: : is not a JSON list (an array, or an object whose \
             `items` is one): is this an Iugu subscription list (GET /v1/subscriptions: \
             {\"totalItems\": N, \"items\": [...]})?"
        ]
    );
}

#[test]
fn a_creation_day_written_dd_mm_yyyy_is_refused() {
    let bad = ONE
        .replace("\"AA01\"", "\"AA02\"")
        .replace("2024-01-05T10:00:00-03:00", "01/02/2024 10:00");
    let list = format!(r#"{{"totalItems": 2, "items": [{ONE}, {bad}]}}"#);
    assert_eq!(
        refused(&list),
        [
            "subscriptions.json:2: created_at: 01/02/2024 10:00: is not a date the mapping can \
             read without a date format: 01/02/2024 could be 1 February or 2 January; declare \
             date_format (such as \"%d/%m/%Y\") in [input] or on the field"
        ]
    );
}

#[test]
fn the_same_id_with_another_price_and_an_unknown_plan_are_refused() {
    let other = ONE.replace("9900", "12900");
    let unknown = ONE
        .replace("\"AA01\"", "\"AA03\"")
        .replace("basico_mensal", "ouro");
    let list = format!(r#"{{"totalItems": 3, "items": [{ONE}, {other}, {unknown}]}}"#);
    assert_eq!(
        refused(&list),
        [
            "subscriptions.json:2: id: AA01: contradicts line 1: the same id with other values",
            "subscriptions.json:3: plan_identifier: ouro: no row of plans.json has identifier = \
             ouro",
        ]
    );
}
