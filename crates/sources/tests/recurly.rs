//! The Recurly converter, on the shared Fivetran sample (copied in `fixtures/recurly/sample/`)
//! and on a hand-written book (`fixtures/recurly/book/`, in the sample's column shapes). Every
//! expected value is worked out by hand in `fixtures/recurly/NOTES.md`.

mod common;

use common::{convert_to_temp, count, d, dec, fixtures, mrr_on, read_in, usd};
use expansa_import::BookErrors;
use expansa_ledger::Book;
use expansa_sources::{Conversion, Options, SourceKind, Spec};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    fixtures("recurly").join(name)
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
    convert_to_temp(&Spec::Source(SourceKind::Recurly), input, &options)
}

fn book(dir: &Path) -> Book {
    read_in(dir, usd())
}

/// One expected line: id, customer, product, quantity, unit price, months, start, end,
/// revises.
type Expected<'a> = (
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
    for &(id, customer, product, quantity, price, months, start, end, revises) in expected {
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

#[test]
fn the_sample_as_it_is_is_refused_with_the_rows_that_do_not_hold() {
    let (_dir, out) = convert(&fixture("sample"), false);
    let errors = out.expect_err("the sample's add-ons name a subscription it does not have");
    let shown: Vec<String> = errors.0.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        shown,
        [
            "subscription_add_on_history_data.csv:2: subscription_id: caxmfuh3zdov: \
             no subscription caxmfuh3zdov in subscription_history_data.csv",
            "subscription_add_on_history_data.csv:3: subscription_id: caxmfuh3zdov: \
             no subscription caxmfuh3zdov in subscription_history_data.csv",
        ]
    );
}

#[test]
fn the_sample_without_its_refused_rows() {
    let (dir, out) = convert(&fixture("sample"), true);
    let c = out.unwrap();
    let s = "subscription_history_data.csv";
    assert_eq!(count(&c, s, "mapped", "recurring"), 4);
    assert_eq!(count(&c, s, "merged", "history"), 1);
    assert_eq!(
        count(&c, "account_history_data.csv", "mapped", "customer"),
        4
    );
    assert_eq!(
        count(&c, "account_history_data.csv", "merged", "history"),
        1
    );
    assert_eq!(count(&c, "plan_history_data.csv", "mapped", "product"), 2);
    assert_eq!(
        count(
            &c,
            "subscription_add_on_history_data.csv",
            "refused",
            "missing_reference"
        ),
        2
    );
    assert_eq!(c.summary.by_outcome.values().sum::<u64>(), 5 + 5 + 2 + 2);
    let b = book(dir.path());
    let (a44, a51) = (
        "4458762633d912919d7ff692cab13b69",
        "51bccf87e2571558b3da93688e17469f",
    );
    let (p99, p2999) = (
        "dd82c1882969461de74b46427961ea2c",
        "09300df44b9d20cc219b25abddc3346e",
    );
    check_lines(
        &b,
        &[
            (
                "99b1bc4097d247c10c89dc71d41f8046@1",
                a44,
                p99,
                "1",
                "99",
                1,
                "2019-03-26",
                Some("2019-03-26"),
                None,
            ),
            (
                "b4110f7673aa3e121abf4ffaad157f62@1",
                a44,
                p99,
                "1",
                "99",
                1,
                "2019-03-26",
                Some("2019-03-26"),
                None,
            ),
            (
                "2900cfb1daef789cc21ea100ff6af6e9@1",
                a51,
                p99,
                "1",
                "99",
                1,
                "2015-02-11",
                None,
                None,
            ),
            (
                "bcd3f1f36bd98895b5336e067049364b@1",
                a44,
                p2999,
                "1",
                "2999",
                1,
                "2015-02-20",
                None,
                None,
            ),
        ],
    );
    assert_eq!(b.customers.len(), 4);
    assert_eq!(mrr_on(&b, "2022-08-31"), dec("3098"));
}

#[test]
fn a_hand_written_book() {
    let (dir, out) = convert(&fixture("book"), false);
    let c = out.unwrap();
    let s = "subscription_history_data.csv";
    assert_eq!(count(&c, s, "mapped", "recurring"), 7);
    assert_eq!(count(&c, s, "merged", "history"), 2);
    assert_eq!(count(&c, s, "skipped", "trial_at_zero"), 1);
    assert_eq!(
        count(
            &c,
            "subscription_add_on_history_data.csv",
            "mapped",
            "addon"
        ),
        2
    );
    assert_eq!(
        count(&c, "account_history_data.csv", "mapped", "customer"),
        4
    );
    assert_eq!(
        count(&c, "account_history_data.csv", "merged", "history"),
        1
    );
    assert_eq!(count(&c, "plan_history_data.csv", "mapped", "product"), 3);
    assert_eq!(c.summary.by_outcome.values().sum::<u64>(), 10 + 2 + 5 + 3);
    let b = book(dir.path());
    check_lines(
        &b,
        &[
            (
                "s1@1",
                "acct_a",
                "basic",
                "1",
                "50",
                1,
                "2024-01-10",
                Some("2024-03-14"),
                None,
            ),
            (
                "s1@2",
                "acct_a",
                "pro",
                "1",
                "120",
                1,
                "2024-03-15",
                Some("2024-04-30"),
                Some("s1@1"),
            ),
            (
                "s1@3",
                "acct_a",
                "pro",
                "3",
                "120",
                1,
                "2024-05-01",
                None,
                Some("s1@2"),
            ),
            (
                "s2@2",
                "acct_b",
                "pro",
                "1",
                "120",
                1,
                "2024-02-15",
                None,
                None,
            ),
            (
                "s3@1",
                "acct_c",
                "basic",
                "2",
                "50",
                1,
                "2024-01-05",
                Some("2024-04-04"),
                None,
            ),
            (
                "s4@1",
                "acct_d",
                "annual",
                "1",
                "1200",
                12,
                "2024-03-01",
                None,
                None,
            ),
            (
                "s5@1",
                "acct_d",
                "basic",
                "1",
                "50",
                1,
                "2024-05-10",
                Some("2024-07-10"),
                None,
            ),
            (
                "s1+a1@1",
                "acct_a",
                "seats",
                "2",
                "10",
                1,
                "2024-04-01",
                Some("2024-05-31"),
                None,
            ),
            (
                "s1+a1@2",
                "acct_a",
                "seats",
                "5",
                "10",
                1,
                "2024-06-01",
                None,
                Some("s1+a1@1"),
            ),
        ],
    );
    let k = b.lines.ids.find("s1@3").unwrap();
    assert_eq!(b.lines.contract_id(k), "s1");
    let k = b.lines.ids.find("s1+a1@2").unwrap();
    assert_eq!(b.lines.contract_id(k), "s1");
    let a = b.customers.ids.find("acct_a").unwrap() as usize;
    assert_eq!(b.customers.name.get(a), "Acme Inc");
    assert_eq!(b.customers.registered_on[a], Some(d("2023-12-20")));
    let seats = b.products.ids.find("seats").unwrap() as usize;
    assert_eq!(
        b.products.items[seats].kind,
        expansa_ledger::ProductKind::Addon
    );
    // NOTES.md: 360 + 50 + 120 + 100 + 50.
    assert_eq!(mrr_on(&b, "2024-06-30"), dec("680"));
    // NOTES.md: s1@2 120 + s2@2 120 + s3@1 50×2 + s4@1 1200/12 (the add-on starts in April).
    assert_eq!(mrr_on(&b, "2024-03-31"), dec("440"));
}

#[test]
fn a_version_that_contradicts_another_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(fixture("book")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    let path = dir.path().join("subscription_history_data.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    // s3 expires before it started; s4 appears again at the same instant with another price.
    let text = text.replace("2024-04-05 00:00:00,acct_c", "2023-12-01 00:00:00,acct_c");
    let s4 = text
        .lines()
        .find(|l| l.contains(",s4,"))
        .unwrap()
        .replace("1200.0", "1300.0");
    std::fs::write(&path, format!("{text}{s4}\n")).unwrap();
    let (_out, res) = convert(dir.path(), false);
    let shown: Vec<String> = res.err().unwrap().0.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        shown,
        [
            "subscription_history_data.csv:9: expires_at: 2023-12-01T00:00:00Z: is before the start (2024-01-05T00:00:00Z)",
            "subscription_history_data.csv:12: updated_at: 2024-03-01T00:00:00Z: another version of subscription s4 at the same updated_at differs (subscription_history_data.csv:10)",
        ]
    );
}
