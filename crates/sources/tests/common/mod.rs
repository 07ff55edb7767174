//! Helpers shared by the converters' test files.
#![allow(dead_code)] // each test file uses a different subset

use expansa_import::{read_book, BookErrors, ImportOptions, NoProgress};
use expansa_ledger::{Book, Currency, Date, Decimal};
use expansa_sources::{convert_into, Conversion, Input, Options, Spec};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The fixtures of one source: `tests/fixtures/<source>`.
pub fn fixtures(source: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(source)
}

pub fn usd() -> Currency {
    Currency::from_code("USD").unwrap()
}

/// Converts `input` (read in `options.encoding`) into a fresh temporary folder: the folder,
/// kept alive by the caller, and the conversion's result.
pub fn convert_to_temp(
    spec: &Spec,
    input: &Path,
    options: &Options,
) -> (tempfile::TempDir, Result<Conversion, BookErrors>) {
    let dir = tempfile::tempdir().unwrap();
    let input = Input::new(input, options.encoding);
    let out = convert_into(spec, &input, options, dir.path());
    (dir, out)
}

pub fn d(text: &str) -> Date {
    text.parse().unwrap()
}

pub fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// The book written in `dir`, read by the importer in `currency`; every problem on failure.
pub fn read_in(dir: &Path, currency: Currency) -> Book {
    let options = ImportOptions {
        currency,
        ..Default::default()
    };
    match read_book(dir, &options, &NoProgress) {
        Ok(b) => b,
        Err(e) => panic!(
            "{:?}",
            e.0.iter().map(|p| p.to_string()).collect::<Vec<_>>()
        ),
    }
}

/// The MRR of the lines active on `day`.
pub fn mrr_on(book: &Book, day: &str) -> Decimal {
    book.lines
        .items
        .iter()
        .filter(|l| l.active_on(d(day)))
        .map(|l| l.mrr().as_decimal())
        .sum()
}

/// Source rows of `file` the report counts with `outcome` and `reason`.
pub fn count(c: &Conversion, file: &str, outcome: &str, reason: &str) -> u64 {
    c.summary
        .reasons
        .iter()
        .filter(|r| r.file == file && r.outcome.name() == outcome && r.reason == reason)
        .map(|r| r.rows)
        .sum()
}
