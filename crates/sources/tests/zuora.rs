//! The Zuora converter, on the shared Fivetran sample (copied in `fixtures/zuora/sample/`) and
//! on a hand-written book (`fixtures/zuora/book/`, in the sample's column shapes). Every
//! expected value is worked out by hand in `fixtures/zuora/NOTES.md`.

mod common;

use common::{convert_to_temp, count, d, dec, fixtures, mrr_on, read_in, usd};
use expansa_import::BookErrors;
use expansa_ledger::Book;
use expansa_sources::{Conversion, Options, SourceKind, Spec};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    fixtures("zuora").join(name)
}

fn convert(
    input: &Path,
    skip_refused: bool,
) -> (tempfile::TempDir, Result<Conversion, BookErrors>) {
    let options = Options {
        currency: usd(),
        skip_refused,
        ..Options::default()
    };
    convert_to_temp(&Spec::Source(SourceKind::Zuora), input, &options)
}

fn book(dir: &Path) -> Book {
    read_in(dir, usd())
}

/// One expected line: id, customer, contract, product, quantity, unit price, months, start,
/// end, revises.
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
    Option<&'a str>,
);

fn check_lines(book: &Book, expected: &[Expected]) {
    assert_eq!(book.lines.len(), expected.len(), "number of lines");
    for &(id, customer, contract, product, quantity, price, months, start, end, revises) in expected
    {
        let k = book
            .lines
            .ids
            .find(id)
            .unwrap_or_else(|| panic!("no line {id}"));
        let l = &book.lines.items[k as usize];
        assert_eq!(
            book.customers.ids.get(l.customer),
            customer,
            "{id} customer"
        );
        assert_eq!(book.lines.contract_id(k), contract, "{id} contract");
        assert_eq!(book.products.ids.get(l.product), product, "{id} product");
        assert_eq!(l.quantity.get(), dec(quantity), "{id} quantity");
        assert_eq!(l.unit_price.get(), dec(price), "{id} unit price");
        assert_eq!(
            l.billing_period.whole_months().unwrap_or(0),
            months,
            "{id} period"
        );
        assert_eq!(l.currency, usd(), "{id} currency");
        assert_eq!(l.start, d(start), "{id} start");
        assert_eq!(l.end, end.map(d), "{id} end");
        assert_eq!(
            l.revises().map(|r| book.lines.ids.get(r)),
            revises,
            "{id} revises"
        );
    }
}

const CHARGES: &str = "zuora_rate_plan_charge_data.csv";
const SUBS: &str = "zuora_subscription_data.csv";

#[test]
fn the_sample_as_it_is_is_refused_with_the_rows_that_do_not_hold() {
    let (_dir, out) = convert(&fixture("sample"), false);
    let errors = out.expect_err("the sample names subscriptions and accounts it does not have");
    let shown: Vec<String> = errors.0.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        shown,
        [
            "zuora_subscription_data.csv:3: account_id: dff38ac00240057303623f9ba5542afa: \
             no account dff38ac00240057303623f9ba5542afa in zuora_account_data.csv",
            "zuora_rate_plan_charge_data.csv:3: subscription_id: 8ad095b88292b8550182a62e6b590421: \
             no subscription 8ad095b88292b8550182a62e6b590421 in zuora_subscription_data.csv",
            "zuora_subscription_data.csv:4: account_id: dff38ac075d55abbfe084047f9668d0a: \
             no account dff38ac075d55abbfe084047f9668d0a in zuora_account_data.csv",
            "zuora_rate_plan_charge_data.csv:4: subscription_id: 8ad090b982afa5530182afc61ce63540: \
             no subscription 8ad090b982afa5530182afc61ce63540 in zuora_subscription_data.csv",
            "zuora_rate_plan_charge_data.csv:5: subscription_id: 8ad084898561b8a50185678e4d8505d7: \
             no subscription 8ad084898561b8a50185678e4d8505d7 in zuora_subscription_data.csv",
        ]
    );
}

#[test]
fn the_sample_without_its_refused_rows() {
    let (dir, out) = convert(&fixture("sample"), true);
    let c = out.unwrap();
    assert_eq!(count(&c, CHARGES, "skipped", "not_billable"), 1); // deleted
    assert_eq!(count(&c, CHARGES, "skipped", "metered"), 1);
    assert_eq!(count(&c, CHARGES, "refused", "missing_reference"), 3);
    assert_eq!(count(&c, SUBS, "skipped", "not_billable"), 3); // Draft, two deleted
    assert_eq!(count(&c, SUBS, "refused", "missing_reference"), 2);
    assert_eq!(count(&c, "zuora_account_data.csv", "mapped", "customer"), 4);
    assert_eq!(
        count(&c, "zuora_account_data.csv", "skipped", "not_billable"),
        1
    );
    assert_eq!(
        count(&c, "zuora_product_rate_plan_data.csv", "mapped", "product"),
        5
    );
    assert_eq!(c.summary.by_outcome.values().sum::<u64>(), 5 + 5 + 5 + 5);
    let b = book(dir.path());
    // Nothing holds together in the sample's charges: no line.
    check_lines(&b, &[]);
    assert_eq!(b.customers.len(), 4);
    let annual = b
        .products
        .ids
        .find("dff38ac0e5ac0e0d4da95d4ae41b42ab")
        .unwrap() as usize;
    assert_eq!(
        b.products.items[annual].name.as_deref(),
        Some("Annual Plan")
    );
}

fn expected_book() -> Vec<Expected<'static>> {
    vec![
        (
            "A-S001/C-001@1",
            "acc1",
            "A-S001",
            "prp_platform",
            "10",
            "10",
            1,
            "2024-01-01",
            Some("2024-02-29"),
            None,
        ),
        (
            "A-S001/C-001@2",
            "acc1",
            "A-S001",
            "prp_platform",
            "10",
            "12",
            1,
            "2024-03-01",
            Some("2024-04-30"),
            Some("A-S001/C-001@1"),
        ),
        (
            "A-S001/C-001@3",
            "acc1",
            "A-S001",
            "prp_platform",
            "10",
            "15",
            1,
            "2024-05-01",
            None,
            Some("A-S001/C-001@2"),
        ),
        (
            "A-S002/C-004@1",
            "acc2",
            "A-S002",
            "prp_annual",
            "1",
            "2400",
            12,
            "2024-02-01",
            Some("2025-01-31"),
            None,
        ),
        (
            "A-S003/C-005@1",
            "acc3",
            "A-S003",
            "prp_platform",
            "2",
            "30",
            1,
            "2024-01-15",
            Some("2024-04-30"),
            None,
        ),
    ]
}

#[test]
fn a_hand_written_book() {
    let (dir, out) = convert(&fixture("book"), false);
    let c = out.unwrap();
    assert_eq!(count(&c, CHARGES, "mapped", "recurring"), 5);
    assert_eq!(count(&c, CHARGES, "merged", "history"), 1);
    assert_eq!(count(&c, CHARGES, "skipped", "metered"), 1);
    assert_eq!(count(&c, CHARGES, "skipped", "one_off"), 1);
    assert_eq!(count(&c, SUBS, "mapped", "contract"), 3);
    assert_eq!(count(&c, SUBS, "merged", "history"), 1);
    assert_eq!(c.summary.by_outcome.values().sum::<u64>(), 8 + 4 + 3 + 4);
    let b = book(dir.path());
    check_lines(&b, &expected_book());
    // NOTES.md: 10 × 15 + 2400 / 12.
    assert_eq!(mrr_on(&b, "2024-06-30"), dec("350"));
    // NOTES.md: 10 × 12 + 2400 / 12 + 2 × 30.
    assert_eq!(mrr_on(&b, "2024-03-31"), dec("380"));
}

#[test]
fn file_names_without_prefix_or_suffix() {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(fixture("book")).unwrap() {
        let f = f.unwrap().path();
        let name = f
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("zuora_", "")
            .replace("_data", "");
        std::fs::copy(&f, dir.path().join(name)).unwrap();
    }
    let (out, res) = convert(dir.path(), false);
    res.unwrap();
    check_lines(&book(out.path()), &expected_book());
}

#[test]
fn segments_that_contradict_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(fixture("book")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    let path = dir.path().join(CHARGES);
    let text = std::fs::read_to_string(&path).unwrap();
    // (The header has effective_end_date before effective_start_date.) Segment 2 of C-001
    // starts before segment 1 ends; C-005 ends before it starts.
    let text = text
        .replace("2024-05-01,2024-03-01", "2024-05-01,2024-02-15")
        .replace("2025-01-15,2024-01-15", "2023-01-15,2024-01-15");
    std::fs::write(&path, text).unwrap();
    let (_out, res) = convert(dir.path(), false);
    let shown: Vec<String> = res.err().unwrap().0.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        shown,
        [
            "zuora_rate_plan_charge_data.csv:4: effective_start_date: 2024-02-15: \
             is before the effective end date of segment 1 of charge C-001 (2024-03-01)",
            "zuora_rate_plan_charge_data.csv:9: effective_end_date: 2023-01-15: \
             is before effective_start_date (2024-01-15)",
        ]
    );
}
