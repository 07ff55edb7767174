//! Strict parsers for the values of the interchange format.

use expansa_ledger::{parse_date, Date, Decimal, Month};
use std::borrow::Cow;

/// Why a value is wrong: mostly fixed sentences, so the common paths never allocate.
pub(crate) type Reason = Cow<'static, str>;

/// A value that was wrong and has already been reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bad;

/// A parsed cell: `Ok(None)` when absent, `Err(Bad)` when wrong (already reported).
pub(crate) type Field<T> = Result<Option<T>, Bad>;

/// Largest number of significant digits a decimal may have (rust_decimal's exact range).
const MAX_DIGITS: usize = 28;

/// Parses an exact decimal: `1234.56`, `-3`, `.5`; with `decimal_comma` (files separated by
/// `;`) also `1.234,56` and `1234,56`. No exponents, no floating point, no silent guessing:
/// in a `;` file, `1.234` (dots grouping exactly three digits, no comma) is rejected as
/// ambiguous.
pub(crate) fn decimal(s: &str, decimal_comma: bool) -> Result<Decimal, Reason> {
    if let Some(d) = plain_decimal(s.as_bytes()) {
        return Ok(d);
    }
    let bad = || -> Reason {
        if decimal_comma {
            "not a decimal number (like 1.234,56)".into()
        } else {
            "not a decimal number (like 1234.56)".into()
        }
    };
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let normalized;
    let body = if decimal_comma && body.contains(',') {
        let (int, frac) = body.rsplit_once(',').ok_or_else(bad)?;
        if int.contains('.') && !grouped_by_thousands(int) {
            return Err(bad());
        }
        normalized = format!("{}.{}", int.replace('.', ""), frac);
        normalized.as_str()
    } else {
        if decimal_comma && body.contains('.') && grouped_by_thousands(body) {
            return Err("ambiguous in a ';' file: write 1234 or 1,234 with a decimal comma".into());
        }
        body
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let int = int.trim_start_matches('0');
    let digits = int.len() + frac.len();
    if digits > MAX_DIGITS || frac.len() > MAX_DIGITS {
        return Err("has more than 28 significant digits".into());
    }
    let mut mantissa: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        mantissa = mantissa * 10 + i128::from(b - b'0');
    }
    if negative {
        mantissa = -mantissa;
    }
    Decimal::try_from_i128_with_scale(mantissa, frac.len() as u32)
        .map_err(|_| "is out of the exact decimal range".into())
}

/// The common case in one pass: digits with at most one `.` and at most 18 digits, not
/// shaped like a thousands grouping (which a `;` file would read otherwise). `None` sends the
/// text to the full parser.
fn plain_decimal(b: &[u8]) -> Option<Decimal> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let (mut mantissa, mut scale, mut point, mut digits) = (0u64, 0u32, false, 0u32);
    for &c in b {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                digits += 1;
                scale += u32::from(point);
            }
            b'.' if !point => point = true,
            _ => return None,
        }
    }
    // "1.234" is ambiguous in a `;` file; leave it to the full parser.
    if digits == 0 || (point && scale == 3) {
        return None;
    }
    Some(Decimal::from_i128_with_scale(i128::from(mantissa), scale))
}

/// `1.234` or `12.345.678`: a number whose dots group exactly three digits.
fn grouped_by_thousands(s: &str) -> bool {
    let mut parts = s.split('.');
    let head = parts.next().unwrap_or("");
    !head.is_empty()
        && head.len() <= 3
        && head.bytes().all(|b| b.is_ascii_digit())
        && s.contains('.')
        && parts.all(|p| p.len() == 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Why a date or month of the year 0000 is refused.
const YEAR_ZERO: &str =
    "the year 0000 does not exist (years run from 0001; PostgreSQL cannot store it)";

/// A `YYYY-MM-DD` calendar day, in the years 0001 to 9999.
pub(crate) fn date(s: &str) -> Result<Date, Reason> {
    match parse_date(s.as_bytes()) {
        Some(d) if d.year() == 0 => Err(Cow::Borrowed(YEAR_ZERO)),
        Some(d) => Ok(d),
        None if day_first_or_month_first(s) => Err(Cow::Borrowed(
            "not a date (expected YYYY-MM-DD): a date written dd/mm/yyyy or mm/dd/yyyy is never \
             guessed (01/02/2024 is 1 February or 2 January): write 2024-02-01, format the \
             spreadsheet cell as a date, or convert the file with `expansa convert --map` \
             declaring its date format",
        )),
        None => Err(Cow::Borrowed(
            "not a date (expected YYYY-MM-DD, a real day)",
        )),
    }
}

/// `01/02/2024`, `1.2.24`, `01-02-2024`: a day and a month in some order, then a year.
fn day_first_or_month_first(s: &str) -> bool {
    let parts: Vec<&str> = s.split(['/', '.', '-']).collect();
    matches!(parts.as_slice(), [a, b, y]
        if [a, b].iter().all(|p| (1..=2).contains(&p.len()))
            && (y.len() == 2 || y.len() == 4)
            && [a, b, y].iter().all(|p| p.bytes().all(|c| c.is_ascii_digit())))
}

/// A `YYYY-MM` month, in the years 0001 to 9999.
pub(crate) fn month(s: &str) -> Result<Month, Reason> {
    match s.parse::<Month>() {
        Ok(_) if s.starts_with("0000") => Err(Cow::Borrowed(YEAR_ZERO)),
        Ok(m) => Ok(m),
        Err(_) => Err(Cow::Borrowed("not a month (expected YYYY-MM)")),
    }
}

/// A whole number of at least `min`.
pub(crate) fn integer(s: &str, min: i64) -> Result<i64, Reason> {
    let n: i64 = s.parse().map_err(|e: std::num::ParseIntError| {
        use std::num::IntErrorKind::{NegOverflow, PosOverflow};
        match e.kind() {
            PosOverflow | NegOverflow => Reason::Borrowed("a whole number too large to be read"),
            _ => Reason::Borrowed("not a whole number"),
        }
    })?;
    if n < min {
        return Err(format!("must be at least {min}").into());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn whole_numbers() {
        assert_eq!(integer("12", 1), Ok(12));
        assert_eq!(integer("0", 1), Err("must be at least 1".into()));
        assert_eq!(integer("1.5", 1), Err("not a whole number".into()));
        for huge in ["18446744073709551615", "-9223372036854775809"] {
            assert_eq!(
                integer(huge, i64::MIN),
                Err("a whole number too large to be read".into())
            );
        }
    }

    #[test]
    fn plain_decimals() {
        assert_eq!(decimal("1234.56", false), Ok(d("1234.56")));
        assert_eq!(MAX_DIGITS, 28, "the message above says 28");
        assert_eq!(decimal("-3", false), Ok(d("-3")));
        assert_eq!(decimal(".5", false), Ok(d("0.5")));
        assert_eq!(decimal("007.10", false).unwrap().to_string(), "7.10");
        assert!(decimal("1e3", false).is_err());
        assert!(decimal("1,5", false).is_err());
        assert!(decimal("", false).is_err());
        assert!(decimal(".", false).is_err());
        assert!(decimal("NaN", false).is_err());
        assert!(decimal("1.2.3", false).is_err());
        assert!(decimal("99999999999999999999999999999", false).is_err());
    }

    #[test]
    fn decimal_commas() {
        assert_eq!(decimal("1.234,56", true), Ok(d("1234.56")));
        assert_eq!(decimal("1234,5", true), Ok(d("1234.5")));
        assert_eq!(decimal("12.345.678,9", true), Ok(d("12345678.9")));
        assert_eq!(decimal("0.5", true), Ok(d("0.5")));
        assert_eq!(decimal("7", true), Ok(d("7")));
        assert!(decimal("1.234", true).is_err());
        assert!(decimal("12.34,5", true).is_err());
        assert!(decimal("1,2,3", true).is_err());
    }

    #[test]
    fn integers_and_dates() {
        assert_eq!(integer("12", 1), Ok(12));
        assert!(integer("0", 1).is_err());
        assert!(integer("1.5", 1).is_err());
        assert!(date("2024-02-30").is_err());
        assert!(month("2024-00").is_err());
        assert!(date("0000-01-01").unwrap_err().contains("year 0000"));
        assert!(month("0000-12").unwrap_err().contains("year 0000"));
        assert!(date("0001-01-01").is_ok() && month("0001-01").is_ok());
        for day_first in ["01/02/2024", "1/2/24", "01.02.2024", "01-02-2024"] {
            assert!(
                date(day_first).unwrap_err().contains("never guessed"),
                "{day_first}"
            );
        }
        assert!(!date("2024/02/01").unwrap_err().contains("never guessed"));
        assert!(!date("2024-02-30").unwrap_err().contains("never guessed"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = decimal(&s, false);
            let _ = decimal(&s, true);
            let _ = date(&s);
            let _ = month(&s);
            let _ = integer(&s, 0);
        }

        #[test]
        fn round_trips(m in -10_000_000_000i64..10_000_000_000i64, scale in 0u32..8) {
            let v = Decimal::new(m, scale);
            proptest::prop_assert_eq!(decimal(&v.to_string(), false), Ok(v));
        }
    }
}
