//! Calendar months (`YYYY-MM`).

use jiff::civil::Date;
use std::fmt;
use std::str::FromStr;

/// A calendar month, ordered, stored as `year * 12 + (month - 1)`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Month(i32);

impl Month {
    /// The month of a year (1..=12); `None` out of range.
    pub fn new(year: i16, month: i8) -> Option<Month> {
        ((1..=12).contains(&month) && (0..=9999).contains(&year))
            .then(|| Month(i32::from(year) * 12 + i32::from(month) - 1))
    }

    /// The month a day falls in.
    pub fn of(date: Date) -> Month {
        Month(i32::from(date.year()) * 12 + i32::from(date.month()) - 1)
    }

    pub fn year(self) -> i16 {
        self.0.div_euclid(12) as i16
    }

    /// 1..=12.
    pub fn month(self) -> i8 {
        (self.0.rem_euclid(12) + 1) as i8
    }

    /// The first day of the month.
    pub fn first_day(self) -> Date {
        Date::new(self.year(), self.month(), 1).expect("months are kept in jiff's range")
    }

    /// The last day of the month.
    pub fn last_day(self) -> Date {
        self.first_day().last_of_month()
    }

    pub fn next(self) -> Month {
        Month(self.0 + 1)
    }

    pub fn prev(self) -> Month {
        Month(self.0 - 1)
    }

    /// `self + n` months (n may be negative).
    pub fn offset(self, n: i32) -> Month {
        Month(self.0 + n)
    }

    /// Number of months from `earlier` to `self` (negative when `self` is earlier).
    pub fn since(self, earlier: Month) -> i32 {
        self.0 - earlier.0
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

/// Why a `YYYY-MM` text is not a month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMonth;

impl fmt::Display for BadMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a month (expected YYYY-MM)")
    }
}

impl std::error::Error for BadMonth {}

impl FromStr for Month {
    type Err = BadMonth;
    fn from_str(s: &str) -> Result<Month, BadMonth> {
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' {
            return Err(BadMonth);
        }
        let year = digits(&b[..4]).ok_or(BadMonth)?;
        let month = digits(&b[5..]).ok_or(BadMonth)?;
        Month::new(year as i16, month as i8).ok_or(BadMonth)
    }
}

/// Parses a `YYYY-MM-DD` date strictly (exactly that shape, a real calendar day).
pub fn parse_date(s: &[u8]) -> Option<Date> {
    if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let year = digits(&s[..4])? as i16;
    let month = digits(&s[5..7])? as i8;
    let day = digits(&s[8..])? as i8;
    Date::new(year, month, day).ok()
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let m: Month = "2024-02".parse().unwrap();
        assert_eq!(m.to_string(), "2024-02");
        assert_eq!(m.last_day(), jiff::civil::date(2024, 2, 29));
        assert_eq!(m.prev().to_string(), "2024-01");
        assert_eq!(m.offset(-2).to_string(), "2023-12");
        assert!("2024-13".parse::<Month>().is_err());
        assert!("2024-2".parse::<Month>().is_err());
        assert!("24-02-01".parse::<Month>().is_err());
    }

    #[test]
    fn strict_dates() {
        assert_eq!(
            parse_date(b"2024-02-29"),
            Some(jiff::civil::date(2024, 2, 29))
        );
        assert_eq!(parse_date(b"2023-02-29"), None);
        assert_eq!(parse_date(b"2023-2-01"), None);
        assert_eq!(parse_date(b"2023-02-01x"), None);
        assert_eq!(parse_date(b"+023-02-01"), None);
    }
}
