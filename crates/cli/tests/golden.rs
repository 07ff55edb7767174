//! Golden books: every `testdata/golden/*/expected.RULES.json` is a hand-checked report (the
//! reasoning is in the book's NOTES.md); the CLI must print exactly it. A file named
//! `expected.RULES.where.KEY=VALUE.json` is the report filtered by `--where KEY=VALUE`.

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/golden")
}

fn books() -> Vec<PathBuf> {
    let mut books: Vec<_> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    books.sort();
    books
}

/// The book's report over the months of `expected`, under `rules` and `extra` flags, must be
/// `expected` (read from `expected_path`).
fn check(book: &Path, expected_path: &Path, rules: &str, extra: &[&str]) {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(expected_path).unwrap()).unwrap();
    let months = expected["months"].as_array().unwrap();
    let from = months.first().unwrap()["month"].as_str().unwrap();
    let to = months.last().unwrap()["month"].as_str().unwrap();
    let mut args = vec!["--from", from, "--to", to, "--rules", rules];
    args.extend_from_slice(extra);
    let got = common::movements_json(book, &args);
    assert_eq!(got, expected, "{}", expected_path.display());
}

#[test]
fn every_golden_book_prints_its_hand_checked_report() {
    let mut checked = 0;
    for book in books() {
        for rules in ["conexa", "chartmogul"] {
            check(
                &book,
                &book.join(format!("expected.{rules}.json")),
                rules,
                &[],
            );
            checked += 1;
        }
    }
    assert!(checked >= 24, "only {checked} golden reports found");
}

#[test]
fn every_filtered_golden_report_prints_its_hand_checked_report() {
    let mut checked = 0;
    for book in books() {
        let mut files: Vec<_> = std::fs::read_dir(&book)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        for name in files {
            // expected.RULES.where.KEY=VALUE.json
            let Some(rest) = name
                .strip_prefix("expected.")
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let Some((rules, filter)) = rest.split_once(".where.") else {
                continue;
            };
            assert!(
                ["conexa", "chartmogul"].contains(&rules) && filter.contains('='),
                "{}: expected.RULES.where.KEY=VALUE.json",
                book.join(&name).display()
            );
            check(&book, &book.join(&name), rules, &["--where", filter]);
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} filtered golden reports found");
}
