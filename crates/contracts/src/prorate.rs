//! Prorate multipliers (Salesforce CPQ semantics), as exact fractions.

use expansa_ledger::{Date, Decimal};
use jiff::ToSpan;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// How a partial term is measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// CPQ "Monthly + Daily": whole months, plus the remaining days x 12/365.
    #[default]
    MonthDay,
    /// Days in the term over `price_term_months x 365/12`.
    Day,
    /// Whole months, a partial month rounded up.
    Month,
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Precision, String> {
        match s {
            "month_day" => Ok(Precision::MonthDay),
            "day" => Ok(Precision::Day),
            "month" => Ok(Precision::Month),
            _ => Err(format!("{s:?}: expected month_day, day or month")),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::MonthDay => "month_day",
            Precision::Day => "day",
            Precision::Month => "month",
        })
    }
}

/// A span from a first day to a last day (inclusive): whole months counted from the first day,
/// then the days left over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Term {
    pub months: u32,
    pub days: u32,
    /// Every day of the span.
    pub total_days: u32,
}

impl Term {
    /// The term from `first` to `last`, both inclusive; `None` when `last` is before `first`.
    /// Calendar arithmetic on plain integers, so a term may end on the last day a [`Date`]
    /// can hold (9999-12-31, a common "no end" value) although the day after it cannot be a
    /// [`Date`].
    pub fn between(first: Date, last: Date) -> Option<Term> {
        if last < first {
            return None;
        }
        let start = Civil::of(first);
        let after = Civil::of(last).days() + 1;
        let mut months = (i64::from(last.year()) - i64::from(first.year())) * 12
            + i64::from(last.month())
            - i64::from(first.month())
            + 1;
        while months > 0 && start.plus_months(months).days() > after {
            months -= 1;
        }
        let rest = start.plus_months(months).days();
        Some(Term {
            months: u32::try_from(months).ok()?,
            days: u32::try_from(after - rest).ok()?,
            total_days: u32::try_from(after - start.days()).ok()?,
        })
    }

    /// The term in words, for messages: `7975 years, 6 months and 30 days`.
    pub fn describe(self) -> String {
        let (years, months) = (self.months / 12, self.months % 12);
        let parts: Vec<String> = [(years, "year"), (months, "month"), (self.days, "day")]
            .into_iter()
            .filter(|&(n, _)| n > 0)
            .map(|(n, unit)| format!("{n} {unit}{}", if n == 1 { "" } else { "s" }))
            .collect();
        match parts.as_slice() {
            [] => "0 days".into(),
            [one] => one.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        }
    }

    /// The prorate multiplier of this term against a price term of `price_term_months`.
    pub fn multiplier(self, precision: Precision, price_term_months: u32) -> Fraction {
        let p = i128::from(price_term_months.max(1));
        let (m, d, t) = (
            i128::from(self.months),
            i128::from(self.days),
            i128::from(self.total_days),
        );
        match precision {
            Precision::MonthDay => Fraction::new(m * 365 + d * 12, 365 * p),
            Precision::Day => Fraction::new(t * 12, 365 * p),
            Precision::Month => Fraction::new(m + i128::from(d > 0), p),
        }
    }
}

/// `date` plus `months` calendar months (the day clamped to the month's end).
pub fn add_months(date: Date, months: i32) -> Option<Date> {
    date.checked_add(months.months()).ok()
}

/// The last day of a term of `months` months starting on `first`; `None` when it falls after
/// the last day a [`Date`] can hold.
pub fn term_end(first: Date, months: u32) -> Option<Date> {
    Civil::from_days(Civil::of(first).plus_months(i64::from(months)).days() - 1).date()
}

/// A day of the proleptic Gregorian calendar as plain integers: any year, so that
/// arithmetic near 9999-12-31 never fails half-way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: i64,
    day: i64,
}

impl Civil {
    fn of(d: Date) -> Civil {
        Civil {
            year: i64::from(d.year()),
            month: i64::from(d.month()),
            day: i64::from(d.day()),
        }
    }

    fn date(self) -> Option<Date> {
        Date::new(
            i16::try_from(self.year).ok()?,
            i8::try_from(self.month).ok()?,
            i8::try_from(self.day).ok()?,
        )
        .ok()
    }

    /// Plus whole calendar months, the day clamped to the month's end (as [`add_months`]).
    fn plus_months(self, months: i64) -> Civil {
        let index = self.year * 12 + self.month - 1 + months;
        let (year, month) = (index.div_euclid(12), index.rem_euclid(12) + 1);
        Civil {
            year,
            month,
            day: self.day.min(days_in_month(year, month)),
        }
    }

    /// Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
    fn days(self) -> i64 {
        let y = if self.month <= 2 {
            self.year - 1
        } else {
            self.year
        };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (self.month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + self.day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The inverse of [`Civil::days`].
    fn from_days(z: i64) -> Civil {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Civil {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
        }
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// An exact non-negative fraction, kept in lowest terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fraction {
    num: i128,
    den: i128,
}

impl Fraction {
    /// `num / den`; `den` must be positive.
    pub fn new(num: i128, den: i128) -> Fraction {
        let g = gcd(num.abs(), den).max(1);
        Fraction {
            num: num / g,
            den: den / g,
        }
    }

    /// One (the multiplier of a whole price term).
    pub const ONE: Fraction = Fraction { num: 1, den: 1 };

    /// `amount x self`, rounded half away from zero to `dp` places. Exact: the whole product
    /// is formed on unbounded integers before the single division and rounding; `None` when
    /// the result does not fit a [`Decimal`].
    pub fn apply(self, amount: Decimal, dp: u32) -> Option<Decimal> {
        crate::exact::product(
            &[amount],
            u128::try_from(self.num).ok()?,
            u64::try_from(self.den).ok()?,
            dp,
        )
    }

    /// The value rounded half away from zero to `dp` places (CPQ shows 10). Every multiplier
    /// of a [`Term`] fits; a fraction beyond the range of a [`Decimal`] saturates at its maximum.
    pub fn rounded(self, dp: u32) -> Decimal {
        self.apply(Decimal::ONE, dp).unwrap_or(Decimal::MAX)
    }
}

impl fmt::Display for Fraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn terms_of_the_worked_examples() {
        let t = Term::between(date(2024, 1, 23), date(2024, 11, 12)).unwrap();
        assert_eq!((t.months, t.days), (9, 21));
        let t = Term::between(date(2024, 2, 5), date(2025, 1, 31)).unwrap();
        assert_eq!((t.months, t.days), (11, 27));
        let t = Term::between(date(2023, 10, 3), date(2024, 8, 2)).unwrap();
        assert_eq!((t.months, t.days), (10, 0));
        let t = Term::between(date(2024, 1, 1), date(2024, 1, 1)).unwrap();
        assert_eq!((t.months, t.days, t.total_days), (0, 1, 1));
        assert_eq!(Term::between(date(2024, 1, 2), date(2024, 1, 1)), None);
    }

    #[test]
    fn multipliers_by_precision() {
        let t = Term::between(date(2024, 1, 23), date(2024, 11, 12)).unwrap();
        let md = t.multiplier(Precision::MonthDay, 12);
        assert_eq!(md.rounded(10).to_string(), "0.8075342466");
        // (9 x 365 + 21 x 12) / (365 x 12), in lowest terms.
        assert_eq!(md, Fraction::new(1179, 1460));
        assert_eq!(md.to_string(), "1179/1460");
        // 295 days of 365 x 12 / 12.
        assert_eq!(t.multiplier(Precision::Day, 12), Fraction::new(295, 365));
        assert_eq!(t.multiplier(Precision::Month, 12), Fraction::new(10, 12));
        assert_eq!(t.multiplier(Precision::Month, 1), Fraction::new(10, 1));
    }

    #[test]
    fn rounding_is_half_up_after_the_exact_product() {
        let half = Fraction::new(1, 2);
        assert_eq!(
            half.apply(Decimal::new(1, 2), 2).unwrap().to_string(),
            "0.01"
        );
        assert_eq!(
            half.apply(Decimal::new(3, 2), 2).unwrap().to_string(),
            "0.02"
        );
        assert_eq!(
            Fraction::ONE
                .apply(Decimal::new(12, 0), 2)
                .unwrap()
                .to_string(),
            "12.00"
        );
    }

    #[test]
    fn term_end_is_the_day_before_the_anniversary() {
        assert_eq!(term_end(date(2024, 2, 1), 12), Some(date(2025, 1, 31)));
        assert_eq!(term_end(date(2023, 8, 3), 12), Some(date(2024, 8, 2)));
    }
}
