//! The conversion report: what became of every source row (mapped, merged, skipped or
//! refused) and why, counted per reason; the rows themselves go to `conversion.csv` beside
//! the book, one line per source row.
//!
//! A *refused* row is one the converter cannot read or that contradicts another: it is also a
//! problem (`file:line: column: value: reason`), and a conversion with any refused row writes
//! nothing unless told to leave refused rows out (`--skip-refused`).

use crate::book::CsvFile;
use expansa_import::{Problem, Problems};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// What became of a source row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Became a row of the book (a line, a customer, a product, a contract).
    Mapped,
    /// Folded into a row made from another source row (a history version, an add-on, a
    /// discount applied to a line).
    Merged,
    /// Left out on purpose: not recurring revenue or not billable (the reason says which).
    Skipped,
    /// Unreadable or contradicting another row.
    Refused,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Mapped => "mapped",
            Outcome::Merged => "merged",
            Outcome::Skipped => "skipped",
            Outcome::Refused => "refused",
        }
    }
}

/// The reasons converters give, as stable codes with their meaning (the report and its
/// documentation list them). A converter may give any of these; the detail text of each row
/// says more.
pub const REASONS: &[(&str, &str)] = &[
    ("recurring", "a recurring charge: one line of the book"),
    ("customer", "a customer of the book"),
    ("product", "a product of the book"),
    ("contract", "a contract of the book"),
    (
        "history",
        "an earlier version of a subscription: a line that the next version revises",
    ),
    (
        "addon",
        "an add-on of a subscription: a line of its own product",
    ),
    (
        "discount",
        "a discount or coupon, applied to the lines it covers",
    ),
    ("duplicate", "the same row as another, already mapped"),
    (
        "metered",
        "a metered (usage-based) price: not recurring revenue",
    ),
    ("trial_at_zero", "a free trial: no revenue while it lasts"),
    ("one_off", "a one-off charge: not recurring revenue"),
    (
        "not_billable",
        "a status that is not billed (canceled before starting, incomplete, draft, ...)",
    ),
    ("zero_amount", "a charge of zero: no revenue"),
    ("not_used", "a row this source's conversion does not need"),
    ("filtered", "left out by the mapping's filter"),
    ("contradicts", "contradicts another row of the source"),
    (
        "missing_reference",
        "names a row that the source does not have",
    ),
    ("bad_value", "a value that cannot be read"),
];

/// Why a row is refused: the reason code and the problem's column, value and detail.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub reason: &'static str,
    pub column: String,
    pub value: String,
    pub detail: String,
}

pub(crate) fn refusal(reason: &'static str, column: &str, value: &str, detail: &str) -> Refusal {
    Refusal {
        reason,
        column: column.to_string(),
        value: value.to_string(),
        detail: detail.to_string(),
    }
}

/// Counts per file, outcome and reason.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts(pub BTreeMap<(String, Outcome, String), u64>);

/// What a conversion did, as it goes.
pub struct Report {
    /// The source kind or mapping name.
    pub source: String,
    /// Rows per file, outcome and reason, in the order first seen (a few dozen at most).
    counts: Vec<(String, Outcome, String, u64)>,
    /// The entry of `counts` the last row went to (rows come in runs of one kind).
    last: usize,
    log: Option<CsvFile>,
    problems: Problems,
    /// Months whose prices could not be rebuilt from the source (a source that keeps only the
    /// current state of a subscription, without the invoices that show earlier prices).
    pub not_rebuilt: Vec<String>,
    /// Other things the user should know (assumptions made, defaults used).
    pub notes: Vec<String>,
}

/// The header of `conversion.csv`.
pub const LOG_COLUMNS: [&str; 7] = [
    "file",
    "line",
    "source_id",
    "outcome",
    "reason",
    "book_id",
    "detail",
];

impl Report {
    /// A report for `source`, logging rows to `log` (`conversion.csv`) when given.
    pub fn new(source: &str, log: Option<&Path>) -> io::Result<Report> {
        let log = match log {
            Some(path) => Some(CsvFile::create(path, &LOG_COLUMNS)?),
            None => None,
        };
        Ok(Report {
            source: source.to_string(),
            counts: Vec::new(),
            last: 0,
            log,
            problems: Problems::default(),
            not_rebuilt: Vec::new(),
            notes: Vec::new(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        &mut self,
        file: &str,
        line: u64,
        source_id: &str,
        outcome: Outcome,
        reason: &str,
        book_id: &str,
        detail: &str,
    ) {
        debug_assert!(
            REASONS.iter().any(|(code, _)| *code == reason),
            "unknown reason {reason}"
        );
        let is =
            |c: &(String, Outcome, String, u64)| c.0 == file && c.1 == outcome && c.2 == reason;
        match self.counts.get_mut(self.last) {
            Some(c) if is(c) => c.3 += 1,
            _ => match self.counts.iter().position(is) {
                Some(i) => {
                    self.last = i;
                    if let Some(c) = self.counts.get_mut(i) {
                        c.3 += 1;
                    }
                }
                None => {
                    self.last = self.counts.len();
                    self.counts
                        .push((file.to_string(), outcome, reason.to_string(), 1));
                }
            },
        }
        if let Some(w) = &mut self.log {
            // The log is best effort while converting; `finish` reports a write that failed.
            let _ = w
                .text(file)
                .shown(line)
                .text(source_id)
                .text(outcome.name())
                .text(reason)
                .text(book_id)
                .text(detail)
                .end();
        }
    }

    /// A source row became the book's row `book_id`.
    pub fn mapped(&mut self, file: &str, line: u64, source_id: &str, reason: &str, book_id: &str) {
        self.row(file, line, source_id, Outcome::Mapped, reason, book_id, "");
    }

    /// A source row was folded into the book's row `book_id`.
    pub fn merged(
        &mut self,
        file: &str,
        line: u64,
        source_id: &str,
        reason: &str,
        book_id: &str,
        detail: &str,
    ) {
        self.row(
            file,
            line,
            source_id,
            Outcome::Merged,
            reason,
            book_id,
            detail,
        );
    }

    /// A source row was left out on purpose.
    pub fn skipped(&mut self, file: &str, line: u64, source_id: &str, reason: &str, detail: &str) {
        self.row(file, line, source_id, Outcome::Skipped, reason, "", detail);
    }

    /// A source row is refused: counted, logged, and a problem `file:line: column: value:
    /// detail`.
    #[allow(clippy::too_many_arguments)]
    pub fn refused(
        &mut self,
        file: &str,
        line: u64,
        source_id: &str,
        reason: &str,
        column: &str,
        value: &str,
        detail: &str,
    ) {
        self.row(file, line, source_id, Outcome::Refused, reason, "", detail);
        self.problems
            .push(Problem::new(file, line, column, value, detail));
    }

    /// [`Report::refused`] for a [`Refusal`].
    pub(crate) fn refuse(&mut self, file: &str, line: u64, source_id: &str, r: Refusal) {
        self.refused(
            file, line, source_id, r.reason, &r.column, &r.value, &r.detail,
        );
    }

    /// A problem with the source as a whole or with a file (not a row of it): nothing is
    /// written.
    pub fn problem(&mut self, p: Problem) {
        self.problems.push(p);
    }

    /// How many rows were refused (and problems found).
    pub fn refused_count(&self) -> u64 {
        self.problems.total()
    }

    /// The counts so far, per file, outcome and reason.
    pub fn counts(&self) -> BTreeMap<(String, Outcome, String), u64> {
        self.counts
            .iter()
            .map(|(file, outcome, reason, n)| ((file.clone(), *outcome, reason.clone()), *n))
            .collect()
    }

    /// Flushes the log and returns the summary and the problems found.
    pub fn finish(mut self) -> io::Result<(Summary, Problems)> {
        if let Some(w) = &mut self.log {
            w.flush()?;
        }
        let counts = self.counts();
        let mut by_outcome = BTreeMap::new();
        for ((_, outcome, _), n) in &counts {
            *by_outcome.entry(outcome.name().to_string()).or_insert(0) += n;
        }
        let rows = counts
            .iter()
            .map(|((file, outcome, reason), n)| ReasonCount {
                file: file.clone(),
                outcome: *outcome,
                reason: reason.clone(),
                rows: *n,
            })
            .collect();
        Ok((
            Summary {
                source: self.source,
                by_outcome,
                reasons: rows,
                not_rebuilt: self.not_rebuilt,
                notes: self.notes,
                refused: Vec::new(),
            },
            self.problems,
        ))
    }
}

/// One count of the report.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReasonCount {
    pub file: String,
    pub outcome: Outcome,
    pub reason: String,
    pub rows: u64,
}

/// The report's summary: counts per outcome and per file and reason.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub source: String,
    pub by_outcome: BTreeMap<String, u64>,
    pub reasons: Vec<ReasonCount>,
    pub not_rebuilt: Vec<String>,
    pub notes: Vec<String>,
    /// The rows refused and left out (`--skip-refused`), as problems `file:line: column:
    /// value: reason` (the first [`expansa_import::MAX_LISTED_PROBLEMS`], then a count).
    pub refused: Vec<String>,
}
