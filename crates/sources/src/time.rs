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
    if let Some(ts) = naive_utc(t.as_bytes()) {
        return Ok(When::Instant(ts));
    }
    parse_when_general(t)
}

/// The value of `n` ASCII digits (`None` when one is not a digit).
#[inline]
fn digits(bytes: &[u8]) -> Option<i32> {
    let mut v = 0i32;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i32::from(b - b'0');
    }
    Some(v)
}

/// The common `YYYY-MM-DD HH:MM:SS[.f]` (1 to 9 digits of fraction) as an instant in UTC, the
/// same as the general reading gives; `None` for any other text (or a date or time out of
/// range, which the general reading then reports).
#[inline]
fn naive_utc(t: &[u8]) -> Option<Timestamp> {
    let (
        [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, b' ', h0, h1, b':', i0, i1, b':', s0, s1],
        rest,
    ) = t.split_first_chunk::<19>()?
    else {
        return None;
    };
    let nanos = match rest {
        [] => 0,
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => {
            digits(frac)? * 10i32.pow(9 - frac.len() as u32)
        }
        _ => return None,
    };
    let year = digits(&[*y0, *y1, *y2, *y3])?;
    let (month, day) = (digits(&[*m0, *m1])?, digits(&[*d0, *d1])?);
    let (hour, minute, second) = (
        digits(&[*h0, *h1])?,
        digits(&[*i0, *i1])?,
        digits(&[*s0, *s1])?,
    );
    let dt = DateTime::new(
        year as i16,
        month as i8,
        day as i8,
        hour as i8,
        minute as i8,
        second as i8,
        nanos,
    )
    .ok()?;
    TimeZone::UTC.to_timestamp(dt).ok()
}

/// [`parse_when`] without its fast path for `YYYY-MM-DD HH:MM:SS`.
fn parse_when_general(t: &str) -> Result<When, String> {
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
        When::Instant(ts) => tz.to_datetime(*ts).date(),
    }
}

/// The last day of a service ending at `when`, in `tz`: the day before when the instant is
/// 00:00 there; a plain day is the last day itself.
pub fn end_day(when: &When, tz: &TimeZone) -> Date {
    match when {
        When::Day(d) => *d,
        When::Instant(ts) => {
            let z = tz.to_datetime(*ts);
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

    /// The fast path reads `YYYY-MM-DD HH:MM:SS[.f]` exactly as the general reading does,
    /// out-of-range dates and times and odd fractions included.
    #[test]
    fn the_fast_path_equals_the_general_reading() {
        use proptest::prelude::*;
        let text = (
            0u32..10_000,
            0u32..14,
            0u32..33,
            0u32..26,
            0u32..61,
            0u32..62,
            proptest::option::of("[0-9]{0,11}"),
        )
            .prop_map(|(y, mo, d, h, mi, s, f)| {
                let mut t = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
                if let Some(f) = f {
                    t.push('.');
                    t.push_str(&f);
                }
                t
            });
        proptest!(ProptestConfig::with_cases(20_000), |(t in text)| {
            prop_assert_eq!(parse_when(&t), parse_when_general(&t));
            let tz = time_zone("America/Sao_Paulo").unwrap();
            if let Ok(w) = parse_when(&t) {
                if let When::Instant(ts) = &w {
                    prop_assert_eq!(start_day(&w, &tz), ts.to_zoned(tz.clone()).date());
                    let z = ts.to_zoned(tz.clone());
                    let expected = if z.time() == jiff::civil::Time::midnight() {
                        z.date().yesterday().unwrap_or(z.date())
                    } else {
                        z.date()
                    };
                    prop_assert_eq!(end_day(&w, &tz), expected);
                }
            }
        });
        for t in [
            "2024-02-29 23:59:59.999999999",
            "2023-02-29 10:00:00",
            "2024-01-01 24:00:00",
            "2024-01-01 23:59:60",
            "2024-01-01 10:00:00.",
            "2024-01-01 10:00:00.1234567890",
            "2024-01-01 10:00:00,5",
            "2024-01-01T10:00:00",
            "+2024-01-01 10:00:00",
            " 2024-01-01 10:00:00 ",
            "2024-1-01 10:00:00",
        ] {
            assert_eq!(parse_when(t), parse_when_general(t.trim()), "{t}");
        }
        assert_eq!(
            parse_when("2024-02-29 23:59:59.5").unwrap(),
            parse_when("2024-02-29T23:59:59.5Z").unwrap()
        );
    }
}
