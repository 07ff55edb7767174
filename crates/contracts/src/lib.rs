//! Contracts, CPQ-style: what a contract holds on a day, what amending it costs until it ends
//! (co-terminated, with exact proration) and what renewing it costs.
//!
//! Everything here is a pure function of the [`Book`]: a quote also carries the changes to
//! the book that applying it makes ([`LineChange`]), so the store records exactly what was
//! quoted. Existing lines are never edited: a changed line is closed the day before the
//! amendment and a new line that `revises` it carries the new quantity or plan.

mod exact;
mod prorate;
mod quote;
mod render;
mod renewals;

pub use prorate::{add_months, term_end, Fraction, Precision, Term};
pub use quote::{
    quote_amend, quote_renew, quote_renew_indexed, AmendRequest, Change, CurrencyTotal, LineChange,
    NewContract, NewLine, Quote, QuoteKind, QuoteLine, RenewRequest, ReportingTotal,
};
pub use render::{render_contract, render_quote};
pub use renewals::{
    render_renewals, renewal_desk, renewal_months, EvergreenRow, RenewalDesk, RenewalMonth,
    RenewalQuote, RenewalRow, RenewalStatus, MAX_EVERGREEN_LISTED, MAX_RENEWAL_WINDOW_DAYS,
};

use expansa_ledger::{
    BillingPeriod, Book, Contract, Currency, CustomerIdx, Date, Decimal, LineIdx, Money,
    RenewalPricing,
};

/// Why a contract cannot be shown or quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("unknown contract {0:?}")]
    UnknownContract(String),
    #[error("unknown product {0:?}")]
    UnknownProduct(String),
    #[error("effective date {effective} is outside contract {contract} ({start} .. {end})")]
    OutsideTerm {
        contract: String,
        effective: Date,
        start: Date,
        end: String,
    },
    #[error("contract {0} is evergreen: its quantities cannot be amended; cancel lines (--remove) or swap them (--swap)")]
    EvergreenQuantity(String),
    #[error("contract {0} is evergreen: it never renews")]
    EvergreenRenewal(String),
    #[error("{product}: quantity {quantity} after the change is below zero")]
    NegativeQuantity { product: String, quantity: Decimal },
    #[error("{product}: contract {contract} holds no line of it on {day}")]
    NotHeld {
        product: String,
        contract: String,
        day: Date,
    },
    #[error("{product}: contract {contract} holds it on {lines} lines on {day}; amend them one at a time in the book")]
    Ambiguous {
        product: String,
        contract: String,
        lines: usize,
        day: Date,
    },
    #[error(
        "{0}: no price (no contracted price for the customer and no list_price in products.csv)"
    )]
    NoPrice(String),
    #[error("{product}: the new line starts in {month} and fx_rates.csv has no {currency} rate for that month (a line is valued at its first month's rate): add one")]
    NoStartRate {
        product: String,
        currency: Currency,
        month: expansa_ledger::Month,
    },
    #[error("{product}: no fx rate for {currency} in or before {day}")]
    NoRate {
        product: String,
        currency: Currency,
        day: Date,
    },
    #[error("{product}: contract {contract} holds it on lines that overlap ({lines}); amend them one at a time in the book")]
    Overlapping {
        product: String,
        contract: String,
        lines: String,
    },
    #[error("swapping {from} for {to}: {to} is already on the contract (held, in later lines or swapped in by this request), and {from} or {to} spans more than one line; amend the lines one at a time")]
    SwapSegments { from: String, to: String },
    #[error("--swap {0}:{0}: a product cannot be swapped for itself")]
    SwapSame(String),
    #[error("line {line} would be removed (cancelled from its first day), but line {by} revises it; amend {by} first or end {line} instead")]
    RevisedBy { line: String, by: String },
    #[error("nothing to quote: give --add, --set, --remove or --swap")]
    NoChanges,
    #[error(
        "contract {0}: uplift pricing needs an uplift percentage (--uplift or renewal_uplift_pct)"
    )]
    NoUplift(String),
    #[error(
        "contract {contract}: an uplift of {uplift}% prices the renewal at nothing or below: it must be more than -100"
    )]
    UpliftTooLow { contract: String, uplift: Decimal },
    #[error("contract {contract} is already renewed in the book (by {lines}): a second renewal would count it twice")]
    AlreadyRenewed { contract: String, lines: String },
    #[error("contract {0} holds no line on its last day: nothing to renew")]
    NothingToRenew(String),
    /// An amount of the quote is beyond what a [`Decimal`] holds (about 7.9 x 10^28), e.g.
    /// a price prorated over the thousands of years to a 9999-12-31 end.
    #[error(
        "contract {contract}{}: {what} exceeds the largest amount expansa can represent ({})",
        ends(.end),
        Decimal::MAX
    )]
    TooLarge {
        contract: String,
        /// The contract's end (`None` for an evergreen contract).
        end: Option<Date>,
        /// What was being computed, with its operands.
        what: String,
    },
    /// A new line's MRR is beyond the limit the import puts on one line.
    #[error("contract {contract}: {product}: the new line's MRR: {reason}")]
    LineMrr {
        contract: String,
        product: String,
        reason: String,
    },
    /// A renewal whose term the calendar cannot hold (it would run past 9999-12-31).
    #[error("contract {contract} ends {end}: {reason}")]
    NoRenewalTerm {
        contract: String,
        end: Date,
        reason: String,
    },
}

/// ` ends DAY` for a contract with an end, else nothing.
fn ends(end: &Option<Date>) -> String {
    end.map_or(String::new(), |d| format!(" ends {d}"))
}

/// A contract as of one day: its terms and the lines it holds.
#[derive(Debug, Clone)]
pub struct ContractView {
    pub id: String,
    pub customer_id: String,
    pub start: Date,
    /// Last day, inclusive; `None` for an evergreen contract.
    pub end: Option<Date>,
    /// The contract's length in months, a partial month counted as one (`None` if evergreen).
    pub term_months: Option<u32>,
    pub renewal_pricing: RenewalPricing,
    pub renewal_uplift_pct: Option<Decimal>,
    pub renewal_term_months: Option<u32>,
    /// The day the holdings are read.
    pub at: Date,
    /// The book's reporting currency (of `mrr` and each line's `mrr`).
    pub reporting_currency: Currency,
    /// The lines held on `at`.
    pub lines: Vec<HeldLine>,
    /// The contract's lines that start after `at` (in order of start): later segments of a
    /// ramped deal (CPQ's MDQ) and changes already booked for the future.
    pub later: Vec<HeldLine>,
    /// Sum of the held lines' MRR, in the reporting currency.
    pub mrr: Money,
    /// Whether the terms come from contracts.csv (else from the lines sharing its id).
    pub from_contracts_file: bool,
}

/// One line a contract holds.
#[derive(Debug, Clone)]
pub struct HeldLine {
    pub line: LineIdx,
    pub line_id: String,
    /// The line it revises, if any.
    pub revises: Option<String>,
    pub product_id: String,
    pub quantity: Decimal,
    /// The line's own currency (its prices are in it).
    pub currency: Currency,
    /// Price of one unit for one billing period, before discount.
    pub unit_price: Decimal,
    pub discount_pct: Decimal,
    /// How often the line is billed (months, weeks or days).
    pub billing_period: BillingPeriod,
    /// The product's price term.
    pub price_term_months: u32,
    /// The locked price of one unit for one price term: `unit_price x (1 - discount) x
    /// price_term_months / billing_period_months`, where a period of `n` weeks is `84 n / 365`
    /// months and one of `n` days `12 n / 365` (docs/interchange.md).
    pub term_unit_price: Decimal,
    pub mrr: Money,
    pub start: Date,
    pub end: Option<Date>,
}

/// The terms of contract `id` and the lines it holds on `at`.
pub fn contract(book: &Book, id: &str, at: Date) -> Result<ContractView, QuoteError> {
    contract_of(book, &lines_of(book, id), row_of(book, id), id, at)
}

/// Contract `id`'s row of contracts.csv, if any (a scan: for one contract).
fn row_of<'a>(book: &'a Book, id: &str) -> Option<&'a Contract> {
    book.contracts.iter().find(|c| c.id == id)
}

/// A contract's customer, first day and last day (`None`: evergreen): its contracts.csv
/// `row`, else its `lines` from their earliest start to their latest end (evergreen when any
/// line is).
pub(crate) fn term_of(
    book: &Book,
    lines: &[LineIdx],
    row: Option<&Contract>,
    id: &str,
) -> Result<(CustomerIdx, Date, Option<Date>), QuoteError> {
    if let Some(c) = row {
        return Ok((c.customer, c.start, c.end));
    }
    let first = *lines
        .first()
        .ok_or_else(|| QuoteError::UnknownContract(id.to_string()))?;
    let items = lines.iter().map(|&l| &book.lines.items[l as usize]);
    let start = items.clone().map(|l| l.start).min().unwrap_or_default();
    let end = items
        .map(|l| l.end)
        .try_fold(Date::MIN, |acc, e| e.map(|e| acc.max(e)));
    Ok((book.lines.items[first as usize].customer, start, end))
}

/// The lines of contract `id`, in the book's order (one pass over the book).
fn lines_of(book: &Book, id: &str) -> Vec<LineIdx> {
    (0..book.lines.len() as LineIdx)
        .filter(|&l| book.lines.contract_id(l) == id)
        .collect()
}

/// `values` grouped by their key, below `groups` (a counting sort, stable): group `k`'s values
/// are `values[start[k]..start[k + 1]]` in the order given. Returns `(start, values)`.
pub(crate) fn grouped(
    pairs: impl Iterator<Item = (u32, u32)> + Clone,
    groups: usize,
) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; groups + 1];
    let mut len = 0;
    for (k, _) in pairs.clone() {
        start[k as usize + 1] += 1;
        len += 1;
    }
    for k in 0..groups {
        start[k + 1] += start[k];
    }
    let mut next = start.clone();
    let mut values = vec![0u32; len];
    for (k, v) in pairs {
        values[next[k as usize] as usize] = v;
        next[k as usize] += 1;
    }
    (start, values)
}

/// Every contract's lines, found in one pass over the book: quoting many contracts (the
/// renewal desk) reads each contract's own lines instead of the whole book per contract.
/// Compact: the line indices grouped by contract in one vector (contract `k`'s lines are
/// `order[offsets[k]..offsets[k + 1]]`, in the book's order), contracts numbered in the order
/// their first line comes.
pub struct ContractIndex<'a> {
    /// contracts.csv's first row of each id.
    rows: std::collections::HashMap<&'a str, &'a Contract, foldhash::fast::RandomState>,
    ids: Vec<&'a str>,
    /// A fast hash (foldhash, seeded per process): a million ids are hashed per report.
    by_id: std::collections::HashMap<&'a str, u32, foldhash::fast::RandomState>,
    offsets: Vec<u32>,
    order: Vec<LineIdx>,
}

impl<'a> ContractIndex<'a> {
    /// Every contract of the book.
    pub fn new(book: &'a Book) -> ContractIndex<'a> {
        ContractIndex::of(book, 0..book.lines.len() as LineIdx, &book.contracts)
    }

    /// The contracts of `lines` (each contract's lines in the order given, which is the
    /// book's order where `lines` is), and the first row of each id of `contracts`: the whole
    /// book's, or a set of customers' (a contract's lines all being of one customer, see
    /// [`crate::renewal_months`]).
    pub(crate) fn of(
        book: &'a Book,
        lines: impl ExactSizeIterator<Item = LineIdx> + Clone,
        contracts: impl IntoIterator<Item = &'a Contract>,
    ) -> ContractIndex<'a> {
        let n = lines.len();
        let mut ids: Vec<&'a str> = Vec::new();
        let mut by_id: std::collections::HashMap<&'a str, u32, foldhash::fast::RandomState> =
            Default::default();
        let mut of_line: Vec<u32> = Vec::with_capacity(n);
        for l in lines.clone() {
            let id = book.lines.contract_id(l);
            let k = *by_id.entry(id).or_insert_with(|| {
                ids.push(id);
                (ids.len() - 1) as u32
            });
            of_line.push(k);
        }
        // Each contract's lines in the order given.
        let (offsets, order) = grouped(of_line.iter().copied().zip(lines), ids.len());
        let mut rows: std::collections::HashMap<&'a str, &'a Contract, _> = Default::default();
        for c in contracts {
            rows.entry(c.id.as_str()).or_insert(c);
        }
        ContractIndex {
            rows,
            ids,
            by_id,
            offsets,
            order,
        }
    }

    /// Contract `id`'s row of contracts.csv, if any.
    pub fn row(&self, id: &str) -> Option<&'a Contract> {
        self.rows.get(id).copied()
    }

    /// The lines of contract `id` (none for an unknown one).
    pub fn lines(&self, id: &str) -> &[LineIdx] {
        self.by_id.get(id).map_or(&[], |&k| self.lines_of(k))
    }

    /// The number of contracts with lines.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the book has no line.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Contract `k`'s id.
    pub fn id(&self, k: u32) -> &'a str {
        self.ids[k as usize]
    }

    /// Contract `k`'s lines.
    pub fn lines_of(&self, k: u32) -> &[LineIdx] {
        &self.order[self.offsets[k as usize] as usize..self.offsets[k as usize + 1] as usize]
    }

    /// The number of contract `id`, if it has lines.
    pub fn find(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }
}

/// [`contract`] over the contract's own `lines`.
fn contract_of(
    book: &Book,
    lines: &[LineIdx],
    row: Option<&Contract>,
    id: &str,
    at: Date,
) -> Result<ContractView, QuoteError> {
    let (customer, start, end) = term_of(book, lines, row, id)?;
    let held: Vec<HeldLine> = lines
        .iter()
        .filter(|&&l| book.lines.items[l as usize].active_on(at))
        .map(|&l| held_line(book, l, id, end))
        .collect::<Result<_, _>>()?;
    let mut later: Vec<HeldLine> = lines
        .iter()
        .filter(|&&l| {
            let line = &book.lines.items[l as usize];
            line.start > at && end.is_none_or(|end| line.start <= end)
        })
        .map(|&l| held_line(book, l, id, end))
        .collect::<Result<_, _>>()?;
    later.sort_by(|a, b| (a.start, &a.line_id).cmp(&(b.start, &b.line_id)));
    Ok(ContractView {
        id: id.to_string(),
        customer_id: book.customers.ids.get(customer).to_string(),
        start,
        end,
        term_months: end
            .and_then(|end| Term::between(start, end))
            .map(|t| t.months + u32::from(t.days > 0)),
        renewal_pricing: row.map(|c| c.renewal_pricing).unwrap_or_default(),
        renewal_uplift_pct: row.and_then(|c| c.renewal_uplift_pct),
        renewal_term_months: row.and_then(|c| c.renewal_term_months),
        at,
        reporting_currency: book.currency(),
        mrr: held
            .iter()
            .try_fold(Money::ZERO, |sum, h| add_money(sum, h.mrr))
            .ok_or_else(|| QuoteError::TooLarge {
                contract: id.to_string(),
                end,
                what: "the MRR of its lines".into(),
            })?,
        lines: held,
        later,
        from_contracts_file: row.is_some(),
    })
}

impl ContractView {
    /// `same`, `list` or `uplift`.
    pub fn renewal_pricing_name(&self) -> &'static str {
        match self.renewal_pricing {
            RenewalPricing::Same => "same",
            RenewalPricing::List => "list",
            RenewalPricing::Uplift => "uplift",
        }
    }
}

/// `a + b`, exact; `None` beyond the range of [`Money`].
pub(crate) fn add_money(a: Money, b: Money) -> Option<Money> {
    Money::from_scaled(a.scaled().checked_add(b.scaled())?)
}

fn held_line(
    book: &Book,
    l: LineIdx,
    contract: &str,
    end: Option<Date>,
) -> Result<HeldLine, QuoteError> {
    let line = &book.lines.items[l as usize];
    let product = &book.products.items[line.product as usize];
    let line_id = book.lines.ids.get(l).to_string();
    let unit_price = line.unit_price.get();
    let discount_pct = line.discount_pct.get();
    let period = line.billing_period;
    let term = product.price_term_months.max(1);
    // unit_price x (100 - discount) x term x num / (100 x den), on exact integers, where one
    // period's amount x num / den is a month's (num = 1, den = n for n months).
    let (num, den) = period.monthly_fraction();
    let term_unit_price = exact::sub(Decimal::ONE_HUNDRED, discount_pct)
        .and_then(|keep| {
            exact::quotient(
                &[unit_price, keep],
                u128::from(term) * u128::from(num),
                100 * u64::from(den),
            )
        })
        .ok_or_else(|| QuoteError::TooLarge {
            contract: contract.to_string(),
            end,
            what: format!("the price per {term} months of line {line_id}"),
        })?;
    Ok(HeldLine {
        line: l,
        line_id,
        revises: line.revises().map(|r| book.lines.ids.get(r).to_string()),
        product_id: book.products.ids.get(line.product).to_string(),
        quantity: line.quantity.get(),
        currency: line.currency,
        unit_price,
        discount_pct,
        billing_period: period,
        price_term_months: term,
        term_unit_price,
        mrr: line.mrr(),
        start: line.start,
        end: line.end,
    })
}
