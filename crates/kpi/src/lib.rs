//! The KPIs a post-sale team watches, month by month, and cohort grids.
//!
//! Every figure is computed from the same per-customer pass as the movement report
//! (`expansa-movements`), so the two can never disagree. Formulas, conventions and sources:
//! `docs/kpis.md`. Money is exact ([`Money`], scale 10); ratios are exact `Decimal` quotients
//! (28 significant digits) rounded half away from zero to 4 places only when printed.

mod cohorts;
mod compute;
mod render;

pub use cohorts::{cohorts, CohortBy, CohortGrid, CohortMetric, CohortRow, MAX_COHORT_PERIODS};
pub use compute::{kpis, KpiMonth, KpiReport, KpiSums};
pub use render::{
    kpi_cells, kpi_values, render_cohorts, render_kpis, KpiValue, MONTHS_DP, RATIO_DP,
};

use expansa_ledger::{Decimal, Money};

/// `num / den` as an exact decimal quotient; `None` when `den` is zero.
pub fn ratio(num: Decimal, den: Decimal) -> Option<Decimal> {
    if den.is_zero() {
        None
    } else {
        num.checked_div(den)
    }
}

/// An amount divided by a count, quantized at the money scale; `None` for a zero count.
pub fn per(amount: Money, count: u64) -> Option<Money> {
    ratio(amount.as_decimal(), Decimal::from(count)).map(Money::from_decimal)
}
