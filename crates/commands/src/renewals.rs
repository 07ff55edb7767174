//! `expansa renewals`: the renewal desk. The contracts whose term ends within `--within` days
//! of `--at` (either side), each with its ARR up for renewal, its renewal quote under its own
//! pricing (`same`, `list`, `uplift`), the change, and whether the book already holds its
//! renewal (renewed, churned, open); the evergreen contracts apart. The list is
//! `expansa_contracts::renewal_desk`, a pure function of the book; the API's
//! `GET /api/v1/renewals` runs this same plan (docs/contracts.md, "The renewal desk").

use crate::Format;
use expansa_contracts::{render_renewals, renewal_desk, MAX_RENEWAL_WINDOW_DAYS};
use expansa_ledger::{parse_date, Book, Date};

/// `expansa renewals` flags (the book's are flattened beside them).
#[derive(clap::Args, Debug)]
pub(crate) struct RenewalsArgs {
    /// The desk's day (YYYY-MM-DD; default: today, UTC).
    #[arg(long, value_parser = day)]
    at: Option<Date>,
    /// Days on each side of --at whose contract ends are listed (at most 3660).
    #[arg(long, default_value_t = 90, value_name = "DAYS")]
    within: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// A validated desk: its day, its window and its format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewalsPlan {
    pub at: Date,
    pub within: u32,
    pub format: Format,
}

impl RenewalsArgs {
    /// The plan, checked before the book is read: the day inside the years a report reads,
    /// the window at most [`MAX_RENEWAL_WINDOW_DAYS`].
    pub(crate) fn plan(self) -> Result<RenewalsPlan, String> {
        let at = self.at.unwrap_or_else(today);
        crate::args::report_day("at", at)?;
        if self.within > MAX_RENEWAL_WINDOW_DAYS {
            return Err(format!(
                "--within {}: at most {MAX_RENEWAL_WINDOW_DAYS} days (ten years on each side of --at)",
                self.within
            ));
        }
        Ok(RenewalsPlan {
            at,
            within: self.within,
            format: self.format,
        })
    }
}

/// What the desk prints, in `format` (tables in the plan's locale).
pub fn run(plan: &RenewalsPlan, book: &Book, format: expansa_ledger::Format) -> String {
    render_renewals(&renewal_desk(book, plan.at, plan.within), format)
}

/// A day as the book writes it (YYYY-MM-DD).
fn day(s: &str) -> Result<Date, String> {
    parse_date(s.as_bytes()).ok_or_else(|| format!("{s:?}: expected a date YYYY-MM-DD"))
}

/// Today, in UTC (the API sends the day it means, so its cached answers name it).
pub fn today() -> Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}
