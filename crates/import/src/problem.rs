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
    /// (for [`crate::BookSource::locate`]; the import's reasons name them as a CSV book's):
    /// each `on line N` (another record of the problem's file) becomes `record(None, N)`, each
    /// `NAME.csv:N` (a record of a file of the book) `record(Some(NAME.csv), N)`, each other
    /// `NAME.csv` `file(NAME.csv)`. `None` keeps the text as it is.
    pub(crate) fn restate(
        &mut self,
        record: impl Fn(Option<&str>, u64) -> Option<String>,
        file: impl Fn(&str) -> Option<String>,
    ) {
        const ON_LINE: &str = "on line ";
        let reason = &self.reason;
        let digits = |at: usize| -> Option<(u64, usize)> {
            let n = reason[at..].bytes().take_while(u8::is_ascii_digit).count();
            Some((reason[at..at + n].parse().ok()?, at + n))
        };
        let mut out = String::with_capacity(reason.len());
        let mut at = 0;
        while at < reason.len() {
            let rest = &reason[at..];
            let word_start = !reason[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            if word_start && rest.starts_with(ON_LINE) {
                if let Some((n, end)) = digits(at + ON_LINE.len()) {
                    if let Some(said) = record(None, n) {
                        out.push_str(&said);
                        at = end;
                        continue;
                    }
                }
            }
            let named = crate::schema::FILES
                .iter()
                .map(|s| s.file)
                .find(|f| word_start && rest.starts_with(f));
            if let Some(name) = named {
                let end = at + name.len();
                let line = reason[end..]
                    .strip_prefix(':')
                    .and_then(|_| digits(end + 1));
                let said = match line {
                    Some((n, after)) => record(Some(name), n).map(|s| (s, after)),
                    None => None,
                };
                if let Some((said, after)) = said.or_else(|| Some((file(name)?, end))) {
                    out.push_str(&said);
                    at = after;
                    continue;
                }
            }
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            at += c.len_utf8().max(1);
        }
        self.reason = out;
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

    /// A source's words for other records and files (`restate`): `on line N` and `FILE.csv:N`
    /// as records, other `FILE.csv` as files, only at the start of a word; `None` keeps the
    /// text.
    #[test]
    fn references_are_restated_as_the_source_names_them() {
        let mut p = Problem::new(
            "customers.csv",
            9,
            "channel",
            "x",
            "first on line 5; differs from 'Web' (customers.csv:3); not in fx_rates.csv, \
             nor in myfx_rates.csv, nor on line 77, nor on line x; on line 12",
        );
        p.restate(
            |file, n| match (file, n) {
                (_, 77) => None,
                (None, n) => Some(format!("at row {n}")),
                (Some(f), n) => Some(format!("{f}#{n}")),
            },
            |f| (f == "fx_rates.csv").then(|| "the fx_rates table".to_string()),
        );
        assert_eq!(
            p.reason,
            "first at row 5; differs from 'Web' (customers.csv#3); not in the fx_rates table, \
             nor in myfx_rates.csv, nor on line 77, nor on line x; at row 12"
        );
    }
}
