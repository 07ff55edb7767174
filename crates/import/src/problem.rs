//! Problems found in a book, reported as `file:line: column: value: reason`.
//!
//! Diagnostics are bounded, whatever the book: a value is shown cut to its first
//! [`SHOWN_CHARS`] characters (with its size), and at most [`MAX_LISTED_PROBLEMS`] problems are
//! kept, the first by file and line; the others are only counted.

use std::borrow::Cow;
use std::fmt;

/// Problems listed at most: the first by file and line. The others are counted.
pub const MAX_LISTED_PROBLEMS: usize = 1000;

/// Characters of a value (or of a column name) a problem shows; a longer one is cut there and
/// followed by `… (N bytes)`.
pub const SHOWN_CHARS: usize = 80;

/// Characters of a reason kept: reasons are sentences, but some quote values of the book.
const REASON_CHARS: usize = 1000;

/// One problem with one value of one file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// File name inside the book folder (`subscriptions.csv`).
    pub file: String,
    /// 1-based line of the file (the header is line 1); 0 for the file as a whole.
    pub line: u64,
    /// Column name as the format spells it (`row` for the shape of a whole row).
    pub column: String,
    /// The offending value as written (empty when missing), as [`shown`] shows it.
    pub value: String,
    /// Why it is wrong, in plain words.
    pub reason: String,
}

impl Problem {
    /// A problem, its column and value as [`shown`] (cut, control characters escaped) so that
    /// no problem holds or prints more than a few hundred bytes of the book's text.
    pub fn new(file: &str, line: u64, column: &str, value: &str, reason: &str) -> Problem {
        Problem {
            file: file.to_string(),
            line,
            column: shown(column).into_owned(),
            value: shown(value).into_owned(),
            reason: cut(reason, REASON_CHARS).into_owned(),
        }
    }
}

impl Problem {
    /// Says the reason's references to the book's records and files as a source names them
    /// (for [`crate::BookSource::locate`]; the import's reasons name them as a CSV book's).
    /// Only the import's own phrases are read, never a value the reason quotes (an id may
    /// read `on line 2` or `customers.csv`):
    /// - `duplicate … id (first on line N)`: `record(None, N)` says `on line N` (a record of
    ///   the problem's file);
    /// - `differs only by case from 'X' (FILE.csv:N); …`: `record(Some(FILE.csv), N)` says
    ///   `FILE.csv:N`;
    /// - `unknown customer (not in customers.csv)`, `no rate in fx_rates.csv …`, `every line
    ///   is in … and fx_rates.csv has no …` (no value of the book in them but ISO codes and
    ///   months): `file(FILE.csv)` says the file.
    ///
    /// `None` keeps the text as it is.
    pub(crate) fn restate(
        &mut self,
        record: impl Fn(Option<&str>, u64) -> Option<String>,
        file: impl Fn(&str) -> Option<String>,
    ) {
        let reason = &self.reason;
        let number = |text: &str| -> Option<u64> {
            (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse().ok())
                .flatten()
        };
        let restated = if reason.starts_with("duplicate ") {
            // `duplicate customer id (first on line 5)`.
            const FIRST: &str = " (first on line ";
            reason
                .strip_suffix(')')
                .and_then(|r| r.rsplit_once(FIRST))
                .and_then(|(head, n)| {
                    let said = record(None, number(n)?)?;
                    Some(format!("{head} (first {said})"))
                })
        } else if reason.starts_with("differs only by case from '") {
            // `… '{value}' (customers.csv:5); write channels alike`.
            reason.rsplit_once("' (").and_then(|(head, tail)| {
                let (place, rest) = tail.split_once(')')?;
                let (name, n) = place.split_once(':')?;
                let said = record(Some(name), number(n)?)?;
                Some(format!("{head}' ({said}){rest}"))
            })
        } else if reason == "unknown customer (not in customers.csv)"
            || reason.starts_with("no rate in fx_rates.csv ")
            || reason.starts_with("every line is in ")
        {
            let name = if reason.starts_with("unknown") {
                "customers.csv"
            } else {
                "fx_rates.csv"
            };
            file(name).map(|said| reason.replacen(name, &said, 1))
        } else {
            None
        };
        if let Some(restated) = restated {
            self.reason = restated;
        }
    }
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

impl std::error::Error for Problem {}

/// A value as problems show it: control characters escaped (`\n`, `\0`, `\u{1f}`: a problem
/// stays one line), cut after [`SHOWN_CHARS`] characters with `… (N bytes)`.
pub fn shown(value: &str) -> Cow<'_, str> {
    cut(value, SHOWN_CHARS)
}

fn cut(value: &str, chars: usize) -> Cow<'_, str> {
    let short = value.len() <= chars;
    if short && !value.contains(char::is_control) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len().min(chars * 4) + 24);
    for (kept, c) in value.chars().enumerate() {
        if kept == chars {
            out.push_str(&format!("… ({} bytes)", value.len()));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Every problem found in a book that was therefore not loaded: the first
/// [`MAX_LISTED_PROBLEMS`] by file and line (`.0`), and how many more were found (`.1`).
#[derive(Debug, thiserror::Error)]
#[error("the book has {} problem(s); nothing was loaded", self.total())]
pub struct BookErrors(pub Vec<Problem>, pub u64);

impl BookErrors {
    /// Every problem found, listed or not.
    pub fn total(&self) -> u64 {
        self.0.len() as u64 + self.1
    }

    /// The problems on one line, for a record that keeps a reason as text (a webhook event's):
    /// how many, then the first `most` as `file:line: column: value: reason`, separated by
    /// `; `, then how many more were found.
    pub fn summary(&self, most: usize) -> String {
        let mut text = format!("{} problem(s): ", self.total());
        let shown: Vec<String> = self.0.iter().take(most).map(ToString::to_string).collect();
        text.push_str(&shown.join("; "));
        let more = self.total().saturating_sub(shown.len() as u64);
        if more > 0 {
            text.push_str(&format!("; and {more} more"));
        }
        text
    }

    /// The line said after the listed problems when there are more: `and N more problems`.
    pub fn more_line(&self) -> Option<String> {
        (self.1 > 0).then(|| {
            format!(
                "and {} more problem(s) (the first {} are listed)",
                self.1,
                self.0.len()
            )
        })
    }
}

impl From<Vec<Problem>> for BookErrors {
    fn from(problems: Vec<Problem>) -> BookErrors {
        let mut kept = Problems::default();
        kept.extend(problems);
        kept.into_errors()
    }
}

/// Problems as they are found: the first [`MAX_LISTED_PROBLEMS`] by file and line are kept, the
/// others counted, so that memory stays flat however many there are.
#[derive(Debug, Default)]
pub struct Problems {
    kept: Vec<Problem>,
    /// Problems found beyond those kept.
    more: u64,
}

/// Where a file's problems are listed: the order of the format's files.
fn file_order(file: &str) -> usize {
    crate::schema::FILES
        .iter()
        .position(|s| s.file == file)
        .unwrap_or(usize::MAX)
}

impl Problems {
    /// One problem.
    pub fn of(p: Problem) -> Problems {
        let mut problems = Problems::default();
        problems.push(p);
        problems
    }

    pub fn push(&mut self, p: Problem) {
        self.kept.push(p);
        if self.kept.len() >= 2 * MAX_LISTED_PROBLEMS {
            self.compact();
        }
    }

    pub fn extend(&mut self, problems: impl IntoIterator<Item = Problem>) {
        for p in problems {
            self.push(p);
        }
    }

    /// Takes in the problems of another part of the book (a chunk of a file).
    pub fn merge(&mut self, other: Problems) {
        self.more += other.more;
        self.extend(other.kept);
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.more == 0
    }

    /// How many problems were found, kept or only counted (a duplicate counts until the list
    /// is compacted).
    pub fn total(&self) -> u64 {
        self.kept.len() as u64 + self.more
    }

    /// Sorted by file (in the format's order), line, column and reason, duplicates removed,
    /// cut to the first [`MAX_LISTED_PROBLEMS`].
    fn compact(&mut self) {
        self.kept.sort_by(|a, b| {
            (file_order(&a.file), a.line, &a.column, &a.reason).cmp(&(
                file_order(&b.file),
                b.line,
                &b.column,
                &b.reason,
            ))
        });
        self.kept.dedup();
        if self.kept.len() > MAX_LISTED_PROBLEMS {
            self.more += (self.kept.len() - MAX_LISTED_PROBLEMS) as u64;
            self.kept.truncate(MAX_LISTED_PROBLEMS);
        }
    }

    pub fn into_errors(mut self) -> BookErrors {
        self.compact();
        BookErrors(self.kept, self.more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_and_stay_on_one_line() {
        assert_eq!(shown("abc"), "abc");
        assert_eq!(shown("a\nb\0"), "a\\nb\\0");
        let long = "x".repeat(10 << 20);
        let s = shown(&long);
        assert_eq!(s, format!("{}… (10485760 bytes)", "x".repeat(80)));
        let p = Problem::new("f.csv", 2, &long, &long, &long);
        assert!(p.to_string().len() < 1300, "{}", p.to_string().len());
        // Cut on a character, never inside one.
        assert!(shown(&"é".repeat(100)).starts_with(&"é".repeat(80)));
    }

    #[test]
    fn the_first_problems_are_kept_and_the_rest_counted() {
        let mut p = Problems::default();
        for line in (0..5000u64).rev() {
            p.push(Problem::new("subscriptions.csv", line + 2, "id", "", "bad"));
        }
        p.push(Problem::new("customers.csv", 1, "id", "", "bad"));
        let errors = p.into_errors();
        assert_eq!(errors.0.len(), MAX_LISTED_PROBLEMS);
        assert_eq!(errors.1, 5001 - MAX_LISTED_PROBLEMS as u64);
        assert_eq!(errors.total(), 5001);
        assert_eq!(errors.0[0].line, 2);
        assert_eq!(errors.0[999].line, 1001);
        assert_eq!(errors.0[999].file, "subscriptions.csv");
    }

    /// A source's words for other records and files (`restate`): in the import's own phrases
    /// only, never in a value a reason quotes.
    #[test]
    fn references_are_restated_as_the_source_names_them() {
        let restated = |reason: &str| {
            let mut p = Problem::new("customers.csv", 9, "id", "x", reason);
            p.restate(
                |file, n| match (file, n) {
                    (_, 77) => None,
                    (None, n) => Some(format!("at row {n}")),
                    (Some(f), n) => Some(format!("{f}#{n}")),
                },
                |f| Some(format!("the {f} table")),
            );
            p.reason
        };
        assert_eq!(
            restated("duplicate customer id (first on line 5)"),
            "duplicate customer id (first at row 5)"
        );
        assert_eq!(
            restated("duplicate line id (first on line 77)"),
            "duplicate line id (first on line 77)"
        );
        assert_eq!(
            restated("differs only by case from 'on line 2 (customers.csv:1)' (customers.csv:3); write channels alike"),
            "differs only by case from 'on line 2 (customers.csv:1)' (customers.csv#3); write channels alike"
        );
        assert_eq!(
            restated("unknown customer (not in customers.csv)"),
            "unknown customer (not in the customers.csv table)"
        );
        assert_eq!(
            restated("no rate in fx_rates.csv for USD to BRL in 2024-01"),
            "no rate in the fx_rates.csv table for USD to BRL in 2024-01"
        );
        // Values quoted by other reasons are left as they are.
        for kept in [
            "names a line of another customer (nova on line 2)",
            "contract belongs to another customer (customers.csv)",
            "revises on line 3, which starts later",
        ] {
            assert_eq!(restated(kept), kept);
        }
    }
}
