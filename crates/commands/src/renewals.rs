//! `expansa renewals`: the renewal desk. The contracts whose term ends within `--within` days
//! of `--at` (either side), each with its ARR up for renewal, its renewal quote under its own
//! pricing (`same`, `list`, `uplift`), the change, and whether the book already holds its
//! renewal (renewed, churned, open); the evergreen contracts apart. The list is
//! `expansa_contracts::renewal_desk`, a pure function of the book; the API's
//! `GET /api/v1/renewals` runs this same plan (docs/contracts.md, "The renewal desk").

use crate::Format;
use expansa_contracts::{render_renewals, renewal_desk, MAX_RENEWAL_WINDOW_DAYS};
use expansa_ledger::{Book, Date};
use expansa_movements::Selection;

/// `expansa renewals` flags (the book's are flattened beside them).
#[derive(clap::Args, Debug)]
pub(crate) struct RenewalsArgs {
    /// The desk's day (YYYY-MM-DD; default: today, UTC).
    #[arg(long, value_parser = crate::args::day)]
    at: Option<Date>,
    /// Days on each side of --at whose contract ends are listed (at most 3660).
    #[arg(long, default_value_t = 90, value_name = "DAYS", value_parser = within, allow_negative_numbers = true)]
    within: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[command(flatten)]
    filters: crate::args::FilterArgs,
}

/// A validated desk: its day, its window, its filters (whole contracts of the kept customers
/// holding a kept product) and its format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewalsPlan {
    pub at: Date,
    pub within: u32,
    pub filters: Vec<(String, String)>,
    pub format: Format,
}

impl RenewalsArgs {
    /// The plan, checked before the book is read: the day inside the years a report reads
    /// (the window was checked as the flag was read).
    pub(crate) fn plan(self) -> Result<RenewalsPlan, String> {
        let at = self.at.unwrap_or_else(today);
        crate::args::report_day("at", at)?;
        Ok(RenewalsPlan {
            at,
            within: self.within,
            filters: self.filters.parse()?,
            format: self.format,
        })
    }
}

/// What the desk prints, in `format` (tables in the plan's locale); an unknown filter key or
/// value is an error.
pub fn run(
    plan: &RenewalsPlan,
    book: &Book,
    format: expansa_ledger::Format,
) -> Result<String, String> {
    let selection = Selection::from_filters(book, &plan.filters)?;
    Ok(render_renewals(
        &renewal_desk(book, plan.at, plan.within, &selection),
        format,
    ))
}

/// `--within DAYS`: 0 to [`MAX_RENEWAL_WINDOW_DAYS`].
fn within(s: &str) -> Result<u32, String> {
    let days: i64 = s
        .parse()
        .map_err(|_| format!("{s:?}: expected a whole number of days"))?;
    u32::try_from(days)
        .ok()
        .filter(|d| *d <= MAX_RENEWAL_WINDOW_DAYS)
        .ok_or_else(|| {
            format!(
                "{days}: from 0 to {MAX_RENEWAL_WINDOW_DAYS} days (ten years on each side of --at)"
            )
        })
}

/// Today, in UTC (the API sends the day it means, so its cached answers name it).
pub fn today() -> Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}
