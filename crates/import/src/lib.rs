//! Reads a book of business from a folder of CSV files in the interchange format
//! (`shared/spec/data-format.md`).
//!
//! The import is all-or-nothing: [`read_book`] returns either a whole, validated [`Book`] or
//! every problem it found, each as `file:line: column: value: reason`. Large files are read
//! in bounded chunks parsed in parallel on the current rayon pool.

mod field;
mod problem;
mod table;
mod tables;

pub use problem::{BookErrors, Problem};

use expansa_ledger::{Book, Currency};
use std::path::Path;

/// Choices that shape an import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The reporting currency: lines in other currencies are converted with fx_rates.csv.
    pub currency: Currency,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            currency: Currency::BRL,
        }
    }
}

/// Receives progress while files are read (bytes of each file).
pub trait Progress: Sync {
    /// A file of `bytes` bytes starts being read.
    fn start(&self, _file: &str, _bytes: u64) {}
    /// `bytes` more bytes were read.
    fn advance(&self, _bytes: u64) {}
    /// The file is done.
    fn finish(&self) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {}

/// Reads and validates the book in `dir`.
pub fn read_book(
    dir: &Path,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<Book, BookErrors> {
    tables::read_all(dir, options, progress)
}
