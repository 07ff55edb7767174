//! Problems found in a book, reported as `file:line: column: value: reason`.

use std::fmt;

/// One problem with one value of one file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// File name inside the book folder (`subscriptions.csv`).
    pub file: String,
    /// 1-based line of the file (the header is line 1); 0 for the file as a whole.
    pub line: u64,
    /// Column name as the format spells it (`row` for the shape of a whole row).
    pub column: String,
    /// The offending value as written (empty when missing).
    pub value: String,
    /// Why it is wrong, in plain words.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}: {}",
            self.file, self.line, self.column, self.value, self.reason
        )
    }
}

/// Every problem found in a book that was therefore not loaded.
#[derive(Debug, thiserror::Error)]
#[error("the book has {} problem(s); nothing was loaded", .0.len())]
pub struct BookErrors(pub Vec<Problem>);
