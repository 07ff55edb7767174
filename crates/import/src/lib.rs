//! Reads a book of business from a folder of CSV files in the interchange format
//! (`shared/spec/data-format.md`).
//!
//! The import is all-or-nothing: [`read_book`] returns either a whole, validated [`Book`] or
//! every problem it found, each as `file:line: column: value: reason`. Large files are read
//! in bounded chunks parsed in parallel on the current rayon pool.

mod field;
mod problem;
mod rows;
pub mod schema;
mod table;
mod tables;

pub use problem::{BookErrors, Problem};
pub use rows::{canonical, read_rows, write_rows, RawRow};

use expansa_ledger::{Book, Currency};
use std::io::Read;
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

/// Where the files of a book come from.
pub trait BookSource: Sync {
    /// Opens one file of the book, with its size in bytes; `Ok(None)` when it is absent.
    fn open(&self, file: &str) -> std::io::Result<Option<(Box<dyn Read + Send + '_>, u64)>>;
    /// A problem when the source as a whole cannot be read (a folder that is not there).
    fn unavailable(&self) -> Option<Problem>;
}

/// A book in a folder of CSV files.
pub struct Folder<'a>(pub &'a Path);

impl BookSource for Folder<'_> {
    fn open(&self, file: &str) -> std::io::Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        match std::fs::File::open(self.0.join(file)) {
            Ok(f) => {
                let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                Ok(Some((Box::new(f), size)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn unavailable(&self) -> Option<Problem> {
        (!self.0.is_dir()).then(|| Problem {
            file: self.0.display().to_string(),
            line: 0,
            column: "folder".into(),
            value: String::new(),
            reason: "is not a folder".into(),
        })
    }
}

/// A book held in memory: file names (`subscriptions.csv`, ...) and their bytes.
pub struct InMemory<'a>(pub &'a [(&'a str, &'a [u8])]);

impl BookSource for InMemory<'_> {
    fn open(&self, file: &str) -> std::io::Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        Ok(self
            .0
            .iter()
            .find(|(name, _)| *name == file)
            .map(|(_, bytes)| (Box::new(*bytes) as Box<dyn Read + Send>, bytes.len() as u64)))
    }

    fn unavailable(&self) -> Option<Problem> {
        None
    }
}

/// Reads and validates the book in the folder `dir`.
pub fn read_book(
    dir: &Path,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<Book, BookErrors> {
    read_book_from(&Folder(dir), options, progress)
}

/// Reads and validates a book from any source.
pub fn read_book_from(
    source: &dyn BookSource,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<Book, BookErrors> {
    tables::read_all(source, options, progress)
}
