//! Cohort grids: customers grouped by the month (or quarter) of their first MRR, followed
//! period by period as a fraction of their starting value.

use crate::ratio;
use expansa_ledger::{Book, Decimal, Money, Month};
use expansa_movements::{customer_movements, mrr_by_month, mrr_history, ByCustomer, Kind, Query};
use rayon::prelude::*;

/// The most periods a cohort grid follows, so at most this many cohorts of at most this many
/// cells each: 30 years of monthly cohorts, 90 years of quarterly ones. The grid is summed in
/// memory as periods x periods cells (per worker), so its size is bounded before it is
/// allocated: [`CohortBy::periods`] says how many a range makes.
pub const MAX_COHORT_PERIODS: usize = 360;

/// How customers are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CohortBy {
    Month,
    Quarter,
}

impl CohortBy {
    fn months(self) -> i32 {
        match self {
            CohortBy::Month => 1,
            CohortBy::Quarter => 3,
        }
    }

    /// How many periods a grid over `from..=to` follows (0 when `to` is before `from`): the
    /// first is the period `from` falls in.
    pub fn periods(self, from: Month, to: Month) -> usize {
        let since = to.since(self.period_start(from));
        if since < 0 {
            0
        } else {
            (since / self.months() + 1) as usize
        }
    }

    /// The first month of the period `m` falls in.
    fn period_start(self, m: Month) -> Month {
        let into = (i32::from(m.month()) - 1) % self.months();
        m.offset(-into)
    }

    /// A period's label: `2024-01`, or `2024-Q1`.
    pub fn label(self, start: Month) -> String {
        match self {
            CohortBy::Month => start.to_string(),
            CohortBy::Quarter => format!("{}-Q{}", start.year(), (start.month() - 1) / 3 + 1),
        }
    }
}

/// What each cell measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CohortMetric {
    /// The cohort's MRR at the end of the period over its MRR at the end of its first period.
    Mrr,
    /// The cohort's paying customers over its size.
    Customers,
}

/// One cohort: its first period, size, starting value and one cell per later period.
#[derive(Clone, Debug, PartialEq)]
pub struct CohortRow {
    pub start: Month,
    pub label: String,
    /// The customers who first paid in the period (with MRR in the selection then).
    pub customers: u64,
    /// The value the cells are fractions of, over exactly those customers: the sum of each
    /// one's MRR at the end of the month it first paid, or their number.
    pub base: Decimal,
    /// Cell `k`: the value `k` periods after the first, over `base`.
    pub cells: Vec<Option<Decimal>>,
}

/// A cohort grid.
#[derive(Clone, Debug, PartialEq)]
pub struct CohortGrid {
    pub by: CohortBy,
    pub metric: CohortMetric,
    pub rows: Vec<CohortRow>,
}

/// The cohorts whose first paying period starts within `from..=to`, followed up to `to` (a
/// period cut short by `to` is measured at `to`).
///
/// A customer joins the cohort of the period of its first month-end with MRR > 0 over all its
/// lines (a comeback never starts a new cohort), when the selection's lines have MRR then (a
/// product filter: it started with them): the customers `kpis` counts as `new_customers`.
/// The cohort's size and its base are those same customers (docs/kpis.md, Cohorts).
pub fn cohorts(
    book: &Book,
    by_customer: &ByCustomer,
    from: Month,
    to: Month,
    by: CohortBy,
    metric: CohortMetric,
) -> CohortGrid {
    let first = by.period_start(from);
    let periods = by.periods(from, to);
    assert!(
        periods <= MAX_COHORT_PERIODS,
        "a cohort grid of {periods} periods ({from} to {to}): at most {MAX_COHORT_PERIODS} (the plan checks the range first)"
    );
    // Period p ends at the end of this month (or at `to`).
    let end_of = |p: usize| first.offset((p as i32 + 1) * by.months() - 1).min(to);
    // values[c][k]: value of cohort c, k periods after its first; sizes[c]; bases[c].
    let zero = || {
        (
            vec![vec![Money::ZERO; periods]; periods],
            vec![0u64; periods],
            vec![Money::ZERO; periods],
        )
    };
    let one = Money::from_decimal(Decimal::ONE);
    let (values, sizes, bases) = (0..by_customer.customers())
        .into_par_iter()
        .with_min_len(512)
        .fold(zero, |(mut values, mut sizes, mut bases), c| {
            // The whole MRR says when the customer first paid; the selection's MRR (the same
            // without a product filter) is what the cohort measures.
            let Some((t0, whole)) = mrr_history(book, by_customer.lines(c), first, to) else {
                return (values, sizes, bases);
            };
            let selected = by_customer
                .in_filter(c)
                .map(|_| mrr_by_month(book, &by_customer.selected_lines(c), t0, to));
            let timeline = selected.as_deref().unwrap_or(&whole);
            let Some(first_paid) = whole.iter().position(|m| m.is_positive()) else {
                return (values, sizes, bases);
            };
            let cohort_start = by.period_start(t0.offset(first_paid as i32));
            if cohort_start < first || !timeline[first_paid].is_positive() {
                return (values, sizes, bases);
            }
            let cohort = (cohort_start.since(first) / by.months()) as usize;
            // MRR at the exchange rates of the customer's first month: the revaluation (`fx`)
            // of its renewals since then is taken out, as in every retention figure.
            let fx_since_start = revaluation(book, by_customer, c, t0, to, first_paid);
            sizes[cohort] += 1;
            bases[cohort] += match metric {
                CohortMetric::Mrr => timeline[first_paid],
                CohortMetric::Customers => one,
            };
            for (k, row) in values[cohort][..periods - cohort].iter_mut().enumerate() {
                let i = end_of(cohort + k).since(t0) as usize;
                let mrr = timeline[i] - fx_since_start.as_ref().map_or(Money::ZERO, |fx| fx[i]);
                *row += match metric {
                    CohortMetric::Mrr => mrr,
                    CohortMetric::Customers if mrr.is_positive() => one,
                    CohortMetric::Customers => Money::ZERO,
                };
            }
            (values, sizes, bases)
        })
        .reduce(zero, |(mut va, mut sa, mut ba), (vb, sb, bb)| {
            for (ra, rb) in va.iter_mut().zip(&vb) {
                for (a, b) in ra.iter_mut().zip(rb) {
                    *a += *b;
                }
            }
            for (a, b) in sa.iter_mut().zip(&sb) {
                *a += b;
            }
            for (a, b) in ba.iter_mut().zip(&bb) {
                *a += *b;
            }
            (va, sa, ba)
        });
    let rows = (0..periods)
        .filter(|&p| sizes[p] > 0)
        .map(|p| {
            let start = first.offset(p as i32 * by.months());
            let base = bases[p].as_decimal();
            CohortRow {
                start,
                label: by.label(start),
                customers: sizes[p],
                base: base.normalize(),
                cells: values[p][..periods - p]
                    .iter()
                    .map(|v| ratio(v.as_decimal(), base))
                    .collect(),
            }
        })
        .collect();
    CohortGrid { by, metric, rows }
}

/// The customer's `fx` movements summed from the month after `first_paid` (an index of the
/// months from `t0`) up to each month to `to`; `None` when the book has no exchange rates
/// (nothing to revalue).
fn revaluation(
    book: &Book,
    by_customer: &ByCustomer,
    c: usize,
    t0: Month,
    to: Month,
    first_paid: usize,
) -> Option<Vec<Money>> {
    if book.fx_rates.is_empty() {
        return None;
    }
    let n = (to.since(t0) + 1).max(0) as usize;
    let query = Query {
        from: t0,
        to,
        rules: Default::default(), // amendments, and so fx, are the same under every preset
    };
    let mut by_month = vec![Money::ZERO; n];
    for m in customer_movements(book, &query, by_customer, c as u32) {
        let i = m.month.since(t0) as usize;
        if m.kind == Kind::Fx && i > first_paid && i < n {
            by_month[i] += m.amount;
        }
    }
    let mut running = Money::ZERO;
    Some(
        by_month
            .into_iter()
            .map(|fx| {
                running += fx;
                running
            })
            .collect(),
    )
}
