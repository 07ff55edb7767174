//! Prorate multipliers (Salesforce CPQ semantics), as exact fractions.

use expansa_ledger::{Date, Decimal, RoundingStrategy};
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
    pub fn between(first: Date, last: Date) -> Option<Term> {
        if last < first {
            return None;
        }
        let after = last.tomorrow().ok()?;
        let guess = (i32::from(after.year()) - i32::from(first.year())) * 12
            + i32::from(after.month())
            - i32::from(first.month());
        let mut months = guess.max(0);
        while months > 0 && add_months(first, months)? > after {
            months -= 1;
        }
        let rest = add_months(first, months)?;
        let days = u32::try_from((after - rest).get_days()).ok()?;
        let total_days = u32::try_from((after - first).get_days()).ok()?;
        Some(Term {
            months: u32::try_from(months).ok()?,
            days,
            total_days,
        })
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

/// The last day of a term of `months` months starting on `first`.
pub fn term_end(first: Date, months: u32) -> Option<Date> {
    add_months(first, i32::try_from(months).ok()?)?
        .yesterday()
        .ok()
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

    /// `amount x self`, rounded half away from zero to `dp` places. Exact: the product is
    /// formed before the single division.
    pub fn apply(self, amount: Decimal, dp: u32) -> Option<Decimal> {
        let num = Decimal::try_from_i128_with_scale(self.num, 0).ok()?;
        let den = Decimal::try_from_i128_with_scale(self.den, 0).ok()?;
        let mut v = amount
            .checked_mul(num)?
            .checked_div(den)?
            .round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
        v.rescale(dp);
        Some(v)
    }

    /// The value rounded half away from zero to `dp` places (CPQ shows 10).
    pub fn rounded(self, dp: u32) -> Decimal {
        self.apply(Decimal::ONE, dp).unwrap_or_default()
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
