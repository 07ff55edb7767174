//! How often a line is billed, and how a period's price becomes a month's (MRR).
//!
//! The convention (`docs/interchange.md`): a year has 365 days and 12 months, so a month is
//! 365/12 days and a week 7/(365/12) = 84/365 of a month. A line billed every `n` days is worth
//! `amount x 365 / (12 x n)` a month; every `n` weeks `amount x 365 / (84 x n)`; every `n`
//! months `amount / n`; every `n` years `amount / (12 x n)` (a year is kept as 12 months).

use std::fmt;

/// The longest period accepted in each unit (see `docs/interchange.md`): 100 years in months
/// and years, as `billing_period_months` always allowed; about ten years in days and weeks.
pub const MAX_PERIOD_MONTHS: u16 = 1200;
pub const MAX_PERIOD_YEARS: u16 = 100;
pub const MAX_PERIOD_WEEKS: u16 = 520;
pub const MAX_PERIOD_DAYS: u16 = 3650;

/// The unit of a billing interval, as `billing_interval` names it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum IntervalUnit {
    Day,
    Week,
    Month,
    Year,
}

impl IntervalUnit {
    /// Reads `day`, `week`, `month` or `year`, in any letter case (surrounding spaces
    /// ignored); `None` for anything else.
    pub fn parse(text: &str) -> Option<IntervalUnit> {
        let t = text.trim();
        [
            IntervalUnit::Day,
            IntervalUnit::Week,
            IntervalUnit::Month,
            IntervalUnit::Year,
        ]
        .into_iter()
        .find(|u| u.name().eq_ignore_ascii_case(t))
    }

    /// `day`, `week`, `month` or `year`.
    pub fn name(self) -> &'static str {
        match self {
            IntervalUnit::Day => "day",
            IntervalUnit::Week => "week",
            IntervalUnit::Month => "month",
            IntervalUnit::Year => "year",
        }
    }

    /// The most of this unit a billing period may hold.
    pub fn max_count(self) -> u16 {
        match self {
            IntervalUnit::Day => MAX_PERIOD_DAYS,
            IntervalUnit::Week => MAX_PERIOD_WEEKS,
            IntervalUnit::Month => MAX_PERIOD_MONTHS,
            IntervalUnit::Year => MAX_PERIOD_YEARS,
        }
    }
}

/// A line's billing period: every `n` months (years are kept as 12 x n months), weeks or days,
/// `1 <= n <= MAX_COUNT`, packed in two bytes (a line is kept small: millions are held at
/// once). Ordered months first, then weeks, then days, each by `n` (a total order for the
/// engine's canonical order of lines; books without days or weeks order as before).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BillingPeriod(u16);

/// The unit in the top two bits of a [`BillingPeriod`], the count in the other 14.
const UNIT_SHIFT: u32 = 14;
const WEEKS: u16 = 1 << UNIT_SHIFT;
const DAYS: u16 = 2 << UNIT_SHIFT;

impl Default for BillingPeriod {
    fn default() -> Self {
        BillingPeriod::MONTHLY
    }
}

impl BillingPeriod {
    pub const MONTHLY: BillingPeriod = BillingPeriod(1);
    /// The largest count of one unit a period can hold (any limit of the import is below it).
    pub const MAX_COUNT: u16 = (1 << UNIT_SHIFT) - 1;

    fn packed(unit: u16, n: u16) -> Option<BillingPeriod> {
        (1..=Self::MAX_COUNT)
            .contains(&n)
            .then_some(BillingPeriod(unit | n))
    }

    /// Every `n` months; `None` for 0 or more than [`BillingPeriod::MAX_COUNT`].
    pub fn months(n: u16) -> Option<BillingPeriod> {
        Self::packed(0, n)
    }

    /// Every `n` weeks; `None` for 0 or more than [`BillingPeriod::MAX_COUNT`].
    pub fn weeks(n: u16) -> Option<BillingPeriod> {
        Self::packed(WEEKS, n)
    }

    /// Every `n` days; `None` for 0 or more than [`BillingPeriod::MAX_COUNT`].
    pub fn days(n: u16) -> Option<BillingPeriod> {
        Self::packed(DAYS, n)
    }

    /// Every `count` `unit`s (years as 12 x `count` months); `None` when the count is 0 or
    /// does not fit.
    pub fn new(unit: IntervalUnit, count: u16) -> Option<BillingPeriod> {
        match unit {
            IntervalUnit::Day => Self::days(count),
            IntervalUnit::Week => Self::weeks(count),
            IntervalUnit::Month => Self::months(count),
            IntervalUnit::Year => Self::months(count.checked_mul(12)?),
        }
    }

    /// The count of units (months for whole months and years).
    pub fn count(self) -> u16 {
        self.0 & Self::MAX_COUNT
    }

    /// The unit: [`IntervalUnit::Month`] (years included), `Week` or `Day`.
    pub fn unit(self) -> IntervalUnit {
        match self.0 >> UNIT_SHIFT {
            0 => IntervalUnit::Month,
            1 => IntervalUnit::Week,
            _ => IntervalUnit::Day,
        }
    }

    /// The number of months, for a period of whole months (or years); `None` for days and weeks.
    pub fn whole_months(self) -> Option<u16> {
        (self.unit() == IntervalUnit::Month).then_some(self.count())
    }

    /// `(num, den)` with one period's amount x `num / den` = its monthly amount: `(1, n)` for
    /// `n` months, `(365, 84 n)` for `n` weeks (a week is 7 days), `(365, 12 n)` for `n` days
    /// (a month is 365/12 days). `den` is at most 84 x 16383.
    pub fn monthly_fraction(self) -> (u32, u32) {
        let n = u32::from(self.count().max(1));
        match self.unit() {
            IntervalUnit::Week => (365, 84 * n),
            IntervalUnit::Day => (365, 12 * n),
            IntervalUnit::Month | IntervalUnit::Year => (1, n),
        }
    }
}

impl fmt::Debug for BillingPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BillingPeriod({self})")
    }
}

impl fmt::Display for BillingPeriod {
    /// `12m`, `2w`, `30d`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit() {
            IntervalUnit::Week => 'w',
            IntervalUnit::Day => 'd',
            IntervalUnit::Month | IntervalUnit::Year => 'm',
        };
        write!(f, "{}{unit}", self.count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_parse_in_any_case_and_nothing_else() {
        assert_eq!(IntervalUnit::parse("WEEK"), Some(IntervalUnit::Week));
        assert_eq!(IntervalUnit::parse(" Day "), Some(IntervalUnit::Day));
        assert_eq!(IntervalUnit::parse("year"), Some(IntervalUnit::Year));
        assert_eq!(IntervalUnit::parse("weeks"), None);
        assert_eq!(IntervalUnit::parse(""), None);
    }

    #[test]
    fn years_are_months_and_zero_is_no_period() {
        assert_eq!(
            BillingPeriod::new(IntervalUnit::Year, 2),
            BillingPeriod::months(24)
        );
        assert_eq!(BillingPeriod::new(IntervalUnit::Week, 0), None);
        assert_eq!(BillingPeriod::months(0), None);
        assert_eq!(BillingPeriod::days(BillingPeriod::MAX_COUNT + 1), None);
        assert_eq!(BillingPeriod::new(IntervalUnit::Year, u16::MAX), None);
        let weeks = BillingPeriod::weeks(2).unwrap();
        assert_eq!((weeks.unit(), weeks.count()), (IntervalUnit::Week, 2));
        assert_eq!(weeks.monthly_fraction(), (365, 168));
        assert_eq!(weeks.whole_months(), None);
        assert_eq!(BillingPeriod::days(30).unwrap().to_string(), "30d");
        assert_eq!(BillingPeriod::MONTHLY.whole_months(), Some(1));
        // months < weeks < days, each by count
        let order = [
            BillingPeriod::months(1),
            BillingPeriod::months(1200),
            BillingPeriod::weeks(1),
            BillingPeriod::days(1),
            BillingPeriod::days(3650),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]));
        for unit in [IntervalUnit::Day, IntervalUnit::Week, IntervalUnit::Month] {
            for n in [1, 7, BillingPeriod::MAX_COUNT] {
                let p = BillingPeriod::new(unit, n).unwrap();
                assert_eq!((p.unit(), p.count()), (unit, n));
            }
        }
    }
}
