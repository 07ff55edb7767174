//! Golden books: every `testdata/golden/*/expected.RULES.json` is a hand-checked report (the
//! reasoning is in the book's NOTES.md); the CLI must print exactly it.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/golden")
}

#[test]
fn every_golden_book_prints_its_hand_checked_report() {
    let mut checked = 0;
    let mut books: Vec<_> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    books.sort();
    for book in books {
        for rules in ["conexa", "chartmogul"] {
            let expected_path = book.join(format!("expected.{rules}.json"));
            let expected: Value =
                serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
            let months = expected["months"].as_array().unwrap();
            let from = months.first().unwrap()["month"].as_str().unwrap();
            let to = months.last().unwrap()["month"].as_str().unwrap();
            let got =
                common::movements_json(&book, &["--from", from, "--to", to, "--rules", rules]);
            assert_eq!(got, expected, "{} ({rules})", book.display());
            checked += 1;
        }
    }
    assert!(checked >= 16, "only {checked} golden reports found");
}
