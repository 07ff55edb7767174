//! Instants and days of a source turned into the book's days.
//!
//! A source's timestamps (RFC 3339 with an offset, `YYYY-MM-DD HH:MM:SS[.ffffff]`, unix
//! seconds) are instants; the book counts days in one time zone (`--timezone`, default UTC).
//! A timestamp without an offset is read as UTC, as the warehouses that Fivetran and Airbyte
//! load keep them. A plain `YYYY-MM-DD` is already a day and is kept as it is.
//!
//! A service that *starts* at an instant starts on that instant's day. A service that *ends*
//! at an instant (Stripe's `ended_at`, a period's `current_period_end`) was last given on the
//! day before when the instant is 00:00 of a day (`2024-04-01T00:00` ends a March period), and
//! on the instant's own day otherwise.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// A point in a source's time: an instant, or a day written without a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum When {
    Instant(Timestamp),
    Day(Date),
}

/// Reads a timestamp or a day; `Err` says what is accepted.
pub fn parse_when(text: &str) -> Result<When, String> {
    let t = text.trim();
    if !t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = t
            .parse()
            .map_err(|_| "is not a number of seconds".to_string())?;
        return Timestamp::from_second(secs)
            .map(When::Instant)
            .map_err(|_| "is out of range for unix seconds".to_string());
    }
    if t.len() == 10 {
        if let Some(d) = expansa_ledger::parse_date(t.as_bytes()) {
            return Ok(When::Day(d));
        }
    }
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(When::Instant(ts));
    }
    let naive = t.replacen(' ', "T", 1);
    if let Ok(dt) = naive.parse::<DateTime>() {
        return dt
            .to_zoned(TimeZone::UTC)
            .map(|z| When::Instant(z.timestamp()))
            .map_err(|e| e.to_string());
    }
    Err(
        "is not a date or timestamp (YYYY-MM-DD, RFC 3339 such as 2024-01-31T12:00:00Z, \
         YYYY-MM-DD HH:MM:SS in UTC, or unix seconds)"
            .into(),
    )
}

/// The day a service starting at `when` starts, in `tz`.
pub fn start_day(when: &When, tz: &TimeZone) -> Date {
    match when {
        When::Day(d) => *d,
        When::Instant(ts) => ts.to_zoned(tz.clone()).date(),
    }
}

/// The last day of a service ending at `when`, in `tz`: the day before when the instant is
/// 00:00 there; a plain day is the last day itself.
pub fn end_day(when: &When, tz: &TimeZone) -> Date {
    match when {
        When::Day(d) => *d,
        When::Instant(ts) => {
            let z = ts.to_zoned(tz.clone());
            let day = z.date();
            if z.time() == jiff::civil::Time::midnight() {
                day.yesterday().unwrap_or(day)
            } else {
                day
            }
        }
    }
}

/// The last day of a service ending on an *exclusive* day (`period_end` = the first day not
/// served): the day before.
pub fn day_before(day: Date) -> Date {
    day.yesterday().unwrap_or(day)
}

/// A time zone by its IANA name (`America/Sao_Paulo`, `UTC`), from the tz database bundled
/// with the program.
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name.trim()).map_err(|_| {
        format!("{name}: unknown time zone (give an IANA name such as America/Sao_Paulo or UTC)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn days_in_a_zone() {
        let sp = time_zone("America/Sao_Paulo").unwrap();
        let utc = TimeZone::UTC;
        let w = parse_when("2024-03-01 02:00:00").unwrap();
        assert_eq!(start_day(&w, &utc), date(2024, 3, 1));
        assert_eq!(start_day(&w, &sp), date(2024, 2, 29));
        let midnight = parse_when("2024-04-01T00:00:00Z").unwrap();
        assert_eq!(end_day(&midnight, &utc), date(2024, 3, 31));
        assert_eq!(end_day(&midnight, &sp), date(2024, 3, 31));
        let sp_midnight = parse_when("2024-04-01T00:00:00-03:00").unwrap();
        assert_eq!(end_day(&sp_midnight, &sp), date(2024, 3, 31));
        assert_eq!(end_day(&sp_midnight, &utc), date(2024, 4, 1));
        assert_eq!(
            parse_when("1704067200").unwrap(),
            parse_when("2024-01-01T00:00:00Z").unwrap()
        );
        assert_eq!(
            parse_when("2024-02-03").unwrap(),
            When::Day(date(2024, 2, 3))
        );
        assert_eq!(
            parse_when("2022-09-19 05:50:07.000000").unwrap(),
            parse_when("2022-09-19T05:50:07Z").unwrap()
        );
        assert!(parse_when("01/02/2024").is_err());
        assert!(time_zone("Mars/Olympus").is_err());
    }
}
