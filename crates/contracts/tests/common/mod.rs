//! Helpers the contracts tests share: days, decimals and amounts from text, and the test
//! books of testdata/ read once per test binary.
#![allow(dead_code)] // each test binary uses its own part

use expansa_import::{read_book, ImportOptions, NoProgress};
use expansa_ledger::{Book, Date, Decimal, Money, Month};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

pub fn day(s: &str) -> Date {
    s.parse().unwrap()
}

pub fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

pub fn money(s: &str) -> Money {
    Money::from_decimal(s.parse().unwrap())
}

/// `YYYY-MM`.
pub fn month(s: &str) -> Month {
    Month::of(day(&format!("{s}-01")))
}

/// The book in `testdata/NAME` (or any folder relative to it), read and validated once.
pub fn testdata(name: &str) -> &'static Book {
    static BOOKS: OnceLock<Mutex<HashMap<String, &'static Book>>> = OnceLock::new();
    let mut books = BOOKS.get_or_init(Default::default).lock().unwrap();
    books.entry(name.to_string()).or_insert_with(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata")
            .join(name);
        let book = read_book(&dir, &ImportOptions::default(), &NoProgress)
            .unwrap_or_else(|e| panic!("testdata/{name}: {e:?}"));
        Box::leak(Box::new(book))
    })
}
