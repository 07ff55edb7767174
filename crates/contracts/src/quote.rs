//! Amendment and renewal quotes.

use crate::prorate::{term_end, Fraction, Precision, Term};
use crate::{
    add_money, contract, contract_of, exact, term_of, ContractIndex, ContractView, HeldLine,
    QuoteError,
};
use expansa_ledger::RoundingStrategy;
use expansa_ledger::{
    line_mrr, BillingPeriod, Book, Contract, Currency, Date, Decimal, LineIdx, Money, Month,
    ProductIdx, RenewalPricing,
};
use serde::Serialize;

/// One requested change to a contract's holdings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add units of a product (to the line holding it, else as a new line).
    Add(String, Decimal),
    /// Set a product's quantity.
    Set(String, Decimal),
    /// Remove a product (quantity 0).
    Remove(String),
    /// Replace one product by another, same quantity (an upgrade or downgrade).
    Swap(String, String),
}

/// An amendment request.
#[derive(Debug, Clone)]
pub struct AmendRequest {
    pub contract: String,
    pub effective: Date,
    pub changes: Vec<Change>,
    pub precision: Precision,
}

/// A renewal request; what is not given comes from contracts.csv.
#[derive(Debug, Clone, Default)]
pub struct RenewRequest {
    pub contract: String,
    pub pricing: Option<RenewalPricing>,
    pub uplift_pct: Option<Decimal>,
}

/// Amendment or renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuoteKind {
    Amend,
    Renew,
}

impl QuoteKind {
    /// `amend` or `renew`.
    pub fn name(self) -> &'static str {
        match self {
            QuoteKind::Amend => "amend",
            QuoteKind::Renew => "renew",
        }
    }
}

/// A priced quote, and the changes to the book that applying it makes.
#[derive(Debug, Clone)]
pub struct Quote {
    pub kind: QuoteKind,
    pub contract: String,
    pub customer_id: String,
    /// First day the quote covers.
    pub effective: Date,
    /// Last day it covers (the contract's end for an amendment); `None` for an evergreen one,
    /// priced per month (CPQ's one-month term of an evergreen subscription).
    pub end: Option<Date>,
    pub precision: Precision,
    /// Each line in its own currency.
    pub lines: Vec<QuoteLine>,
    /// The sum of the lines' net totals per currency, in the order the currencies first
    /// appear in `lines`: amounts in different currencies are never added together.
    pub totals: Vec<CurrencyTotal>,
    /// Every line's net total converted to the reporting currency at the rates of the
    /// effective day's month, summed exactly and rounded once: a figure for comparison, not
    /// what is charged.
    pub reporting_total: ReportingTotal,
    /// The contract's MRR (reporting currency) before and after the quote takes effect: each
    /// line at the exchange rate of its start month, as the book values it.
    pub mrr_before: Money,
    pub mrr_after: Money,
    /// `mrr_after` with each new line at the rate of the line it revises or replaces
    /// (constant currency: the change from `mrr_before` is the price change alone, without
    /// the revaluation the movement report calls `fx`).
    pub mrr_after_constant_currency: Money,
    pub changes: Vec<LineChange>,
    pub new_contract: Option<NewContract>,
}

/// The total of a quote's lines in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyTotal {
    pub currency: Currency,
    /// At the currency's minor unit.
    pub total: Decimal,
}

/// A quote's total in the reporting currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportingTotal {
    pub currency: Currency,
    /// The month whose fx rates converted each line (`fx_rates.csv`: that month's rate, else
    /// the latest before it).
    pub rates_of: Month,
    /// At the reporting currency's minor unit.
    pub total: Decimal,
}

/// One priced line of a quote: one line of the book (or a new product's line) over the days
/// it is charged.
#[derive(Debug, Clone)]
pub struct QuoteLine {
    pub product_id: String,
    /// The line of the book it prices (a held line, a later segment, a renewed line); `None`
    /// for a product the contract does not hold.
    pub line_id: Option<String>,
    /// First day charged.
    pub start: Date,
    /// Last day charged (inclusive); `None` for an evergreen contract, charged for one month.
    /// The line written for it covers the same days.
    pub end: Option<Date>,
    /// The currency of its prices and total: the line's own, a new product's (the reporting
    /// currency when the product has none).
    pub currency: Currency,
    pub prior_quantity: Decimal,
    pub quantity: Decimal,
    /// The units charged: the change for an amendment, every unit for a renewal.
    pub effective_quantity: Decimal,
    /// Price of one unit for one price term (locked for a held line).
    pub unit_price: Decimal,
    pub price_term_months: u32,
    pub prorate_multiplier: Fraction,
    /// `unit_price x prorate_multiplier`, rounded half up to the currency's minor unit.
    pub prorated_unit_price: Decimal,
    /// `prorated_unit_price x effective_quantity`.
    pub net_total: Decimal,
}

/// A change to subscriptions.csv that applying a quote makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineChange {
    /// End a line on `end` (the day before the amendment).
    Close { line_id: String, end: Date },
    /// Add a line.
    Open(NewLine),
    /// Replace a line outright (same id, a new version of its row): a line that starts on or
    /// after the effective day gets its new quantity (or product) from its first day.
    Replace(NewLine),
    /// Remove a line that starts on or after the effective day and is cancelled whole.
    Remove { line_id: String },
}

/// A new row of subscriptions.csv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLine {
    pub id: String,
    pub customer_id: String,
    pub contract_id: String,
    pub product_id: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub discount_pct: Decimal,
    pub currency: Currency,
    /// A held line's own period; a new product is billed per price term (months).
    pub billing_period: BillingPeriod,
    pub start: Date,
    pub end: Option<Date>,
    pub revises: Option<String>,
}

/// A new row of contracts.csv (a renewal's term).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContract {
    pub id: String,
    pub customer_id: String,
    pub start: Date,
    pub end: Date,
    pub renewal_pricing: RenewalPricing,
    pub renewal_uplift_pct: Option<Decimal>,
    pub renewal_term_months: Option<u32>,
}

/// A stretch of days of one product that an amendment prices and writes: the line held on
/// the effective day (from that day), a later segment of it (from its own first day: CPQ
/// amends only future segments, each from its start), or the stretch a product not held is
/// added for.
#[derive(Clone)]
struct Slot<'a> {
    /// The line of the book it amends.
    seg: Option<&'a HeldLine>,
    /// The line of another product it replaces (`--swap`).
    replaces: Option<&'a HeldLine>,
    quantity: Decimal,
    /// First and last day charged, which are the days the written line covers; `end` is
    /// `None` for an evergreen contract.
    start: Date,
    end: Option<Date>,
}

/// What one product looks like while the changes of a request are applied.
struct Working<'a> {
    product: ProductIdx,
    slots: Vec<Slot<'a>>,
}

impl Working<'_> {
    fn holds(&self) -> bool {
        self.slots.iter().any(|s| s.seg.is_some())
    }
}

/// Prices an amendment of a contract from `effective` to its end (co-terminated).
///
/// Each line is charged for the days it is written for: a held line from the effective day
/// to its own end (the contract's end when the line has none), each later segment of the
/// product (lines starting after the effective day: the yearly segments of a ramped deal)
/// over its own days at its own price, a product not held from the effective day to the
/// contract's end (or to the day before its first later segment). An evergreen contract is
/// priced for one month (CPQ sets an evergreen quote line's term to 1).
pub fn quote_amend(book: &Book, request: &AmendRequest) -> Result<Quote, QuoteError> {
    if request.changes.is_empty() {
        return Err(QuoteError::NoChanges);
    }
    let view = contract(book, &request.contract, request.effective)?;
    let effective = request.effective;
    if effective < view.start || view.end.is_some_and(|end| end < effective) {
        return Err(QuoteError::OutsideTerm {
            contract: view.id.clone(),
            effective,
            start: view.start,
            end: view.end.map_or("evergreen".into(), |d| d.to_string()),
        });
    }
    let evergreen = view.end.is_none();
    let too_large = |what: String| QuoteError::TooLarge {
        contract: view.id.clone(),
        end: view.end,
        what,
    };
    let plus = |product: &str, a: Decimal, b: Decimal| {
        exact::add(a, b).ok_or_else(|| too_large(format!("the quantity of {product} ({a} + {b})")))
    };
    let mut working: Vec<Working> = Vec::new();
    for change in &request.changes {
        if evergreen && matches!(change, Change::Add(..) | Change::Set(..)) {
            return Err(QuoteError::EvergreenQuantity(view.id.clone()));
        }
        match change {
            Change::Add(p, q) => {
                for slot in &mut entry(book, &view, &mut working, p)?.slots {
                    slot.quantity = plus(p, slot.quantity, *q)?;
                }
            }
            Change::Set(p, q) => {
                for slot in &mut entry(book, &view, &mut working, p)?.slots {
                    slot.quantity = *q;
                }
            }
            Change::Remove(p) => {
                for slot in &mut held_entry(book, &view, &mut working, p)?.slots {
                    slot.quantity = Decimal::ZERO;
                }
            }
            Change::Swap(old, new) => swap(book, &view, &mut working, old, new, &plus)?,
        }
    }
    // Lines that starting on or after the effective day are replaced by another product's
    // line (a swap): that line's Replace writes them, so they are not removed.
    let swapped: Vec<&str> = working
        .iter()
        .flat_map(|w| &w.slots)
        .filter(|s| s.quantity > Decimal::ZERO)
        .filter_map(|s| s.replaces)
        .map(|h| h.line_id.as_str())
        .collect();
    let stamp = compact(effective);
    let mut lines = Vec::new();
    let mut changes = Vec::new();
    let mut mrr_after = view.mrr;
    let mut mrr_constant = view.mrr;
    for w in &working {
        let product_id = book.products.ids.get(w.product).to_string();
        let term = book.products.items[w.product as usize]
            .price_term_months
            .max(1);
        for slot in &w.slots {
            if slot.quantity < Decimal::ZERO {
                return Err(QuoteError::NegativeQuantity {
                    product: product_id,
                    quantity: slot.quantity,
                });
            }
            let prior = slot.seg.map_or(Decimal::ZERO, |h| h.quantity);
            let delta = exact::sub(slot.quantity, prior).ok_or_else(|| {
                too_large(format!(
                    "the change of quantity of {product_id} ({} - {prior})",
                    slot.quantity
                ))
            })?;
            if delta.is_zero() {
                continue;
            }
            let currency = match slot.seg.or(slot.replaces) {
                Some(h) => h.currency,
                None => book.products.items[w.product as usize]
                    .currency
                    .unwrap_or(book.currency()),
            };
            let unit_price = match slot.seg {
                Some(h) => h.term_unit_price,
                None => price_for(book, &view, w.product, slot.start, currency)?,
            };
            let span = slot.end.and_then(|end| Term::between(slot.start, end));
            let multiplier = match span {
                Some(t) => t.multiplier(request.precision, term),
                // One month of a price term (evergreen).
                None => Fraction::new(1, i128::from(term)),
            };
            lines.push(priced(
                QuoteLine {
                    product_id: product_id.clone(),
                    line_id: slot.seg.map(|h| h.line_id.clone()),
                    start: slot.start,
                    end: slot.end,
                    currency,
                    prior_quantity: prior,
                    quantity: slot.quantity,
                    effective_quantity: delta,
                    unit_price,
                    price_term_months: term,
                    prorate_multiplier: multiplier,
                    prorated_unit_price: Decimal::ZERO,
                    net_total: Decimal::ZERO,
                },
                span,
                &too_large,
            )?);
            // Only the stretch that holds the effective day changes the MRR of that day.
            let today = slot.start == effective;
            if let Some(h) = slot.seg.filter(|_| today) {
                mrr_after = add_money(mrr_after, -h.mrr)
                    .ok_or_else(|| too_large("the MRR after the amendment".into()))?;
                mrr_constant = add_money(mrr_constant, -h.mrr)
                    .ok_or_else(|| too_large("the MRR after the amendment".into()))?;
            }
            let written = match (slot.seg, slot.replaces) {
                (Some(h), _) if h.start < effective => {
                    changes.push(LineChange::Close {
                        line_id: h.line_id.clone(),
                        // The line starts before the effective day, so that day has one before.
                        end: effective
                            .yesterday()
                            .map_err(|_| too_large(format!("the day before {effective}")))?,
                    });
                    (slot.quantity > Decimal::ZERO).then(|| {
                        LineChange::Open(NewLine {
                            id: amended_id(h, &stamp),
                            start: effective,
                            revises: Some(h.line_id.clone()),
                            ..version(&view, h, slot.quantity, slot.end)
                        })
                    })
                }
                (Some(h), _) if slot.quantity > Decimal::ZERO => Some(LineChange::Replace(
                    version(&view, h, slot.quantity, slot.end),
                )),
                (Some(h), _) if swapped.contains(&h.line_id.as_str()) => None,
                (Some(h), _) => Some(LineChange::Remove {
                    line_id: h.line_id.clone(),
                }),
                (None, replaced) => {
                    let new = NewLine {
                        id: format!("{}-A{stamp}-{product_id}", view.id),
                        customer_id: view.customer_id.clone(),
                        contract_id: view.id.clone(),
                        billing_period: per_term(&view, &product_id, term)?,
                        product_id: product_id.clone(),
                        quantity: slot.quantity,
                        unit_price,
                        discount_pct: Decimal::ZERO,
                        currency,
                        start: slot.start,
                        end: slot.end,
                        revises: replaced.map(|r| r.line_id.clone()),
                    };
                    Some(match replaced {
                        // A line that starts on or after the effective day becomes the new
                        // product's line from its first day.
                        Some(r) if r.start >= effective => LineChange::Replace(NewLine {
                            id: r.line_id.clone(),
                            revises: r.revises.clone(),
                            ..new
                        }),
                        _ => LineChange::Open(new),
                    })
                }
            };
            if let Some(change) = written {
                if today {
                    if let LineChange::Open(new) | LineChange::Replace(new) = &change {
                        let prior = slot.seg.or(slot.replaces).map(|h| h.start);
                        let (mrr, constant) = new_line_mrr(book, &view, new, prior)?;
                        let plus = |sum: Money, mrr: Money| {
                            add_money(sum, mrr)
                                .ok_or_else(|| too_large("the MRR after the amendment".into()))
                        };
                        mrr_after = plus(mrr_after, mrr)?;
                        mrr_constant = plus(mrr_constant, constant)?;
                    }
                }
                changes.push(change);
            }
        }
    }
    refuse_removing_revised(book, &changes)?;
    let (totals, reporting_total) = totals(book, &lines, effective, &too_large)?;
    Ok(Quote {
        kind: QuoteKind::Amend,
        contract: view.id.clone(),
        customer_id: view.customer_id.clone(),
        effective,
        end: view.end,
        precision: request.precision,
        lines,
        totals,
        reporting_total,
        mrr_before: view.mrr,
        mrr_after,
        mrr_after_constant_currency: mrr_constant,
        changes,
        new_contract: None,
    })
}

/// The held line `h` with a new quantity, written to `end` (the last day charged: its own
/// end, or the contract's for a line without one): the same row otherwise.
fn version(view: &ContractView, h: &HeldLine, quantity: Decimal, end: Option<Date>) -> NewLine {
    NewLine {
        id: h.line_id.clone(),
        customer_id: view.customer_id.clone(),
        contract_id: view.id.clone(),
        product_id: h.product_id.clone(),
        quantity,
        unit_price: h.unit_price,
        discount_pct: h.discount_pct,
        currency: h.currency,
        billing_period: h.billing_period,
        start: h.start,
        end,
        revises: h.revises.clone(),
    }
}

/// A line removed outright must not be the one another line of the book `revises` (unless
/// that line goes too): the book would name a line it no longer has.
fn refuse_removing_revised(book: &Book, changes: &[LineChange]) -> Result<(), QuoteError> {
    let removed: Vec<&str> = changes
        .iter()
        .filter_map(|c| match c {
            LineChange::Remove { line_id } => Some(line_id.as_str()),
            _ => None,
        })
        .collect();
    if removed.is_empty() {
        return Ok(());
    }
    for (l, line) in book.lines.items.iter().enumerate() {
        let by = book.lines.ids.get(l as LineIdx);
        if let Some(r) = line.revises() {
            let line = book.lines.ids.get(r);
            if removed.contains(&line) && !removed.contains(&by) {
                return Err(QuoteError::RevisedBy {
                    line: line.to_string(),
                    by: by.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// `--swap old:new`: the old product's units move to the new product, stretch by stretch.
fn swap<'a>(
    book: &Book,
    view: &'a ContractView,
    working: &mut Vec<Working<'a>>,
    old: &str,
    new: &str,
    plus: &dyn Fn(&str, Decimal, Decimal) -> Result<Decimal, QuoteError>,
) -> Result<(), QuoteError> {
    if old == new {
        return Err(QuoteError::SwapSame(old.into()));
    }
    let from: Vec<Slot<'a>> = held_entry(book, view, working, old)?.slots.clone();
    let to = entry(book, view, working, new)?;
    // Already on the contract, or already swapped in for another product by this request.
    let taken = to.holds() || to.slots.iter().any(|s| s.replaces.is_some());
    if taken {
        // Units added to a product already held: one stretch each way, as before segments.
        if from.len() != 1 || to.slots.len() != 1 {
            return Err(QuoteError::SwapSegments {
                from: old.into(),
                to: new.into(),
            });
        }
        to.slots[0].quantity = plus(new, to.slots[0].quantity, from[0].quantity)?;
    } else {
        // The new product takes each stretch of the old one, replacing its line.
        to.slots = from
            .iter()
            .map(|s| Slot {
                seg: None,
                replaces: s.seg,
                ..s.clone()
            })
            .collect();
    }
    for slot in &mut held_entry(book, view, working, old)?.slots {
        slot.quantity = Decimal::ZERO;
    }
    Ok(())
}

/// Prices the renewal of a contract: a new term from the day after it ends.
///
/// A contract the book already holds the renewal of (lines revising its last day's lines, or
/// a contract of the same customer from the next day: the renewal desk's `renewed`) is
/// refused, naming the lines, so that a renewal is never recorded twice.
pub fn quote_renew(book: &Book, request: &RenewRequest) -> Result<Quote, QuoteError> {
    // One index of the book serves the quote (the contract's lines and row) and the check.
    let index = crate::renewals::Renewals::new(book);
    let quote = quote_renew_indexed(book, index.contracts(), request)?;
    let by = index.renewed_by(&request.contract);
    if !by.is_empty() {
        return Err(QuoteError::AlreadyRenewed {
            contract: request.contract.clone(),
            lines: by.join(", "),
        });
    }
    Ok(quote)
}

/// [`quote_renew`] reading the contract's lines from `index` (built once for many quotes), as
/// the renewal desk prices each contract: the price of its renewal whether or not the book
/// already holds one (the desk tells that apart).
pub fn quote_renew_indexed(
    book: &Book,
    index: &ContractIndex,
    request: &RenewRequest,
) -> Result<Quote, QuoteError> {
    let id = &request.contract;
    renew(book, index.lines(id), index.row(id), request)
}

/// The renewal of the contract whose lines are `own` and whose contracts.csv row is `row`.
fn renew(
    book: &Book,
    own: &[LineIdx],
    row: Option<&Contract>,
    request: &RenewRequest,
) -> Result<Quote, QuoteError> {
    let id = &request.contract;
    let Some(end) = term_of(book, own, row, id)?.2 else {
        return Err(QuoteError::EvergreenRenewal(id.clone()));
    };
    let view = contract_of(book, own, row, id, end)?;
    if view.lines.is_empty() {
        return Err(QuoteError::NothingToRenew(view.id));
    }
    let pricing = request.pricing.unwrap_or(view.renewal_pricing);
    let uplift = match pricing {
        RenewalPricing::Uplift => Some(
            request
                .uplift_pct
                .or(view.renewal_uplift_pct)
                .ok_or_else(|| QuoteError::NoUplift(view.id.clone()))?,
        ),
        _ => None,
    };
    if let Some(u) = uplift.filter(|u| *u <= -Decimal::ONE_HUNDRED) {
        return Err(QuoteError::UpliftTooLow {
            contract: view.id.clone(),
            uplift: u,
        });
    }
    let no_term = |reason: String| QuoteError::NoRenewalTerm {
        contract: view.id.clone(),
        end,
        reason,
    };
    let months = view
        .renewal_term_months
        .or(view.term_months)
        .ok_or_else(|| no_term(format!("its term from {} cannot be measured", view.start)))?;
    let start = end.tomorrow().map_err(|_| {
        no_term(format!(
            "a renewal would start after {}, the last day expansa can represent; \
             leave end_date empty for a contract without an end (evergreen)",
            Date::MAX
        ))
    })?;
    let new_end = term_end(start, months).ok_or_else(|| {
        no_term(format!(
            "its {months}-month renewal from {start} would end after {}, the last day expansa \
             can represent",
            Date::MAX
        ))
    })?;
    let renewal_term = Term::between(start, new_end)
        .ok_or_else(|| no_term(format!("its {months}-month renewal from {start} is empty")))?;
    let too_large = |what: String| QuoteError::TooLarge {
        contract: view.id.clone(),
        end: Some(end),
        what,
    };
    let stamp = compact(start);
    let new_id = format!("{}-R{stamp}", view.id);
    let mut lines = Vec::new();
    let mut changes = Vec::new();
    let mut mrr_after = Money::ZERO;
    let mut mrr_constant = Money::ZERO;
    for h in &view.lines {
        let product = book.lines.items[h.line as usize].product;
        let term = h.price_term_months;
        let (unit_price, unit, discount, period) = match (pricing, uplift) {
            (RenewalPricing::List, _) => {
                let list = list_price(book, &view, product, start, h.currency)?;
                (
                    list,
                    list,
                    Decimal::ZERO,
                    per_term(&view, &h.product_id, term)?,
                )
            }
            (RenewalPricing::Uplift, Some(pct)) => {
                // price x (100 + pct) / 100, exact.
                let uplifted = |price: Decimal| {
                    exact::add(Decimal::ONE_HUNDRED, pct)
                        .and_then(|f| exact::quotient(&[price, f], 1, 100))
                        .ok_or_else(|| {
                            too_large(format!(
                                "the price of {} uplifted by {pct}% ({price} x (1 + {pct}/100))",
                                h.product_id
                            ))
                        })
                };
                (
                    uplifted(h.term_unit_price)?,
                    uplifted(h.unit_price)?,
                    h.discount_pct,
                    h.billing_period,
                )
            }
            _ => (
                h.term_unit_price,
                h.unit_price,
                h.discount_pct,
                h.billing_period,
            ),
        };
        lines.push(priced(
            QuoteLine {
                product_id: h.product_id.clone(),
                line_id: Some(h.line_id.clone()),
                start,
                end: Some(new_end),
                currency: h.currency,
                prior_quantity: h.quantity,
                quantity: h.quantity,
                effective_quantity: h.quantity,
                unit_price,
                price_term_months: term,
                prorate_multiplier: renewal_term.multiplier(Precision::MonthDay, term),
                prorated_unit_price: Decimal::ZERO,
                net_total: Decimal::ZERO,
            },
            Some(renewal_term),
            &too_large,
        )?);
        let new = NewLine {
            id: format!("{}-R{stamp}", h.line_id),
            customer_id: view.customer_id.clone(),
            contract_id: new_id.clone(),
            product_id: h.product_id.clone(),
            quantity: h.quantity,
            unit_price: unit,
            discount_pct: discount,
            currency: h.currency,
            billing_period: period,
            start,
            end: Some(new_end),
            revises: Some(h.line_id.clone()),
        };
        let (mrr, constant) = new_line_mrr(book, &view, &new, Some(h.start))?;
        mrr_after = add_money(mrr_after, mrr)
            .ok_or_else(|| too_large("the MRR after the renewal".into()))?;
        mrr_constant = add_money(mrr_constant, constant)
            .ok_or_else(|| too_large("the MRR after the renewal".into()))?;
        changes.push(LineChange::Open(new));
    }
    let (totals, reporting_total) = totals(book, &lines, start, &too_large)?;
    Ok(Quote {
        kind: QuoteKind::Renew,
        contract: view.id.clone(),
        customer_id: view.customer_id.clone(),
        effective: start,
        end: Some(new_end),
        precision: Precision::MonthDay,
        lines,
        totals,
        reporting_total,
        mrr_before: view.mrr,
        mrr_after,
        mrr_after_constant_currency: mrr_constant,
        changes,
        new_contract: Some(NewContract {
            id: new_id,
            customer_id: view.customer_id.clone(),
            start,
            end: new_end,
            renewal_pricing: view.renewal_pricing,
            renewal_uplift_pct: view.renewal_uplift_pct,
            renewal_term_months: view.renewal_term_months,
        }),
    })
}

/// The lines' net totals summed per currency (exact, at each currency's minor unit), and all
/// of them in the reporting currency at the rates of `day`'s month (summed exactly, rounded
/// once to the reporting currency's minor unit).
fn totals(
    book: &Book,
    lines: &[QuoteLine],
    day: Date,
    too_large: &dyn Fn(String) -> QuoteError,
) -> Result<(Vec<CurrencyTotal>, ReportingTotal), QuoteError> {
    let mut totals: Vec<CurrencyTotal> = Vec::new();
    for l in lines {
        let k = match totals.iter().position(|t| t.currency == l.currency) {
            Some(k) => k,
            None => {
                totals.push(CurrencyTotal {
                    currency: l.currency,
                    total: Decimal::ZERO,
                });
                totals.len() - 1
            }
        };
        let t = &mut totals[k];
        t.total = exact::add(t.total, l.net_total)
            .ok_or_else(|| too_large(format!("the quote's total in {}", l.currency.code())))?;
    }
    for t in &mut totals {
        t.total.rescale(t.currency.minor_units());
    }
    let month = Month::of(day);
    let reporting = book.currency();
    let mut sum = Decimal::ZERO;
    for t in &totals {
        let rate = book
            .rate_to_reporting(Some(t.currency), month)
            .ok_or_else(|| QuoteError::NoRate {
                product: format!("the quote's total in {}", t.currency.code()),
                currency: t.currency,
                day,
            })?;
        sum = exact::quotient(&[t.total, rate], 1, 1)
            .and_then(|v| exact::add(sum, v))
            .ok_or_else(|| {
                too_large(format!(
                    "the quote's total in {} converted to {}",
                    t.currency.code(),
                    reporting.code()
                ))
            })?;
    }
    let dp = reporting.minor_units();
    let mut total = sum.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
    total.rescale(dp);
    Ok((
        totals,
        ReportingTotal {
            currency: reporting,
            rates_of: month,
            total,
        },
    ))
}

/// Prices one line: `unit_price x multiplier` rounded once to the line currency's minor unit,
/// then that price x the units charged, both exact. `span` is the term prorated (for
/// messages).
fn priced(
    mut line: QuoteLine,
    span: Option<Term>,
    too_large: &dyn Fn(String) -> QuoteError,
) -> Result<QuoteLine, QuoteError> {
    let dp = line.currency.minor_units();
    let over = span.map_or(" for one month".into(), |t| {
        format!(" over {}", t.describe())
    });
    let (product_id, unit_price, multiplier) =
        (&line.product_id, line.unit_price, line.prorate_multiplier);
    line.prorated_unit_price = multiplier.apply(unit_price, dp).ok_or_else(|| {
        too_large(format!(
            "the prorated price of one {product_id} ({unit_price} per {} months x {}{over})",
            line.price_term_months,
            multiplier.rounded(10).normalize()
        ))
    })?;
    line.net_total = exact::product(
        &[line.prorated_unit_price, line.effective_quantity],
        1,
        1,
        dp,
    )
    .ok_or_else(|| {
        too_large(format!(
            "the prorated amount of {product_id} ({} x {}{over})",
            line.effective_quantity, line.prorated_unit_price
        ))
    })?;
    Ok(line)
}

/// The entry of `product_id` in the working set, made on first use: the line held on the
/// effective day (else the stretch a new line would cover), then each later line of the
/// product (its segments), which must not overlap.
fn entry<'w, 'a>(
    book: &Book,
    view: &'a ContractView,
    working: &'w mut Vec<Working<'a>>,
    product_id: &str,
) -> Result<&'w mut Working<'a>, QuoteError> {
    let product = book
        .products
        .ids
        .find(product_id)
        .ok_or_else(|| QuoteError::UnknownProduct(product_id.to_string()))?;
    if let Some(k) = working.iter().position(|w| w.product == product) {
        return Ok(&mut working[k]);
    }
    let held: Vec<&HeldLine> = view
        .lines
        .iter()
        .filter(|h| h.product_id == product_id)
        .collect();
    if held.len() > 1 {
        return Err(QuoteError::Ambiguous {
            product: product_id.to_string(),
            contract: view.id.clone(),
            lines: held.len(),
            day: view.at,
        });
    }
    let later: Vec<&HeldLine> = view
        .later
        .iter()
        .filter(|h| h.product_id == product_id)
        .collect();
    let held = held.first().copied();
    let chain: Vec<&HeldLine> = held.into_iter().chain(later.iter().copied()).collect();
    for pair in chain.windows(2) {
        if pair[0].end.is_none_or(|end| end >= pair[1].start) {
            return Err(QuoteError::Overlapping {
                product: product_id.to_string(),
                contract: view.id.clone(),
                lines: format!("{} and {}", pair[0].line_id, pair[1].line_id),
            });
        }
    }
    // A held line is charged to its own end; one without an end to the contract's.
    let until = |h: &HeldLine| h.end.or(view.end);
    let mut slots = Vec::new();
    match held {
        Some(h) => slots.push(Slot {
            seg: Some(h),
            replaces: None,
            quantity: h.quantity,
            start: view.at,
            end: until(h),
        }),
        None => slots.push(Slot {
            seg: None,
            replaces: None,
            quantity: Decimal::ZERO,
            start: view.at,
            // Up to the product's first later segment (which starts after the effective day,
            // so the day before it exists).
            end: match later.first() {
                Some(next) => next.start.yesterday().ok(),
                None => view.end,
            },
        }),
    }
    slots.extend(later.iter().map(|&h| Slot {
        seg: Some(h),
        replaces: None,
        quantity: h.quantity,
        start: h.start,
        end: until(h),
    }));
    working.push(Working { product, slots });
    Ok(working.last_mut().expect("just pushed"))
}

/// Like [`entry`], for a product the contract must hold (on the effective day or later).
fn held_entry<'w, 'a>(
    book: &Book,
    view: &'a ContractView,
    working: &'w mut Vec<Working<'a>>,
    product_id: &str,
) -> Result<&'w mut Working<'a>, QuoteError> {
    let w = entry(book, view, working, product_id)?;
    if !w.holds() {
        return Err(QuoteError::NotHeld {
            product: product_id.to_string(),
            contract: view.id.clone(),
            day: view.at,
        });
    }
    Ok(w)
}

/// The price of one unit of a product not yet held, for one price term, in `currency`: the
/// customer's contracted price valid on `day`, else the list price.
fn price_for(
    book: &Book,
    view: &ContractView,
    product: ProductIdx,
    day: Date,
    currency: Currency,
) -> Result<Decimal, QuoteError> {
    let p = &book.products.items[product as usize];
    let customer = book.customers.ids.find(&view.customer_id);
    match customer.and_then(|c| book.contracted_price(c, product, day)) {
        Some(c) => {
            let price = c
                .price
                .unit_price(p.list_price)
                .ok_or_else(|| QuoteError::NoPrice(book.products.ids.get(product).into()))?;
            convert(book, view, product, price, day, currency)
        }
        None => list_price(book, view, product, day, currency),
    }
}

/// The list price of one unit for one price term, in `currency`.
fn list_price(
    book: &Book,
    view: &ContractView,
    product: ProductIdx,
    day: Date,
    currency: Currency,
) -> Result<Decimal, QuoteError> {
    let price = book.products.items[product as usize]
        .list_price
        .ok_or_else(|| QuoteError::NoPrice(book.products.ids.get(product).into()))?;
    convert(book, view, product, price, day, currency)
}

/// A price in the product's currency (the reporting currency when it has none), in `to`:
/// through the reporting currency's rates of `day`'s month, exact to 28 places.
fn convert(
    book: &Book,
    view: &ContractView,
    product: ProductIdx,
    price: Decimal,
    day: Date,
    to: Currency,
) -> Result<Decimal, QuoteError> {
    let from = book.products.items[product as usize]
        .currency
        .unwrap_or(book.currency());
    if from == to {
        return Ok(price);
    }
    let month = Month::of(day);
    let rate = |c: Currency| {
        book.rate_to_reporting(Some(c), month)
            .ok_or_else(|| QuoteError::NoRate {
                product: book.products.ids.get(product).into(),
                currency: c,
                day,
            })
    };
    let (a, b) = (rate(from)?, rate(to)?);
    let too_large = || QuoteError::TooLarge {
        contract: view.id.clone(),
        end: view.end,
        what: format!(
            "the price {price} of {} in {}",
            book.products.ids.get(product),
            to.code()
        ),
    };
    if b.is_zero() {
        return Err(too_large());
    }
    // price x a / b, to as many places as a Decimal holds.
    price
        .checked_mul(a)
        .and_then(|p| p.checked_div(b))
        .map(|p| p.normalize())
        .ok_or_else(too_large)
}

/// A new line's MRR at the rate of its start month (the rate the book values it at, which
/// the import requires to be in fx_rates.csv), and at the rate of `prior`'s month: the start
/// of the line it revises or replaces (constant currency; the movement report's split of
/// `fx`), else its own.
fn new_line_mrr(
    book: &Book,
    view: &ContractView,
    line: &NewLine,
    prior: Option<Date>,
) -> Result<(Money, Money), QuoteError> {
    let month = Month::of(line.start);
    let rate = book
        .rate_of_month(line.currency, month)
        .ok_or_else(|| QuoteError::NoStartRate {
            product: line.product_id.clone(),
            currency: line.currency,
            month,
        })?;
    let prior_rate = match prior {
        Some(day) => book
            .rate_to_reporting(Some(line.currency), Month::of(day))
            .unwrap_or(rate),
        None => rate,
    };
    let mrr = |rate| {
        line_mrr(
            line.quantity,
            line.unit_price,
            line.discount_pct,
            line.billing_period,
            rate,
        )
        .map_err(|e| QuoteError::LineMrr {
            contract: view.id.clone(),
            product: line.product_id.clone(),
            reason: e.to_string(),
        })
    };
    Ok((mrr(rate)?, mrr(prior_rate)?))
}

/// A new line billed once per price term of `term` months.
fn per_term(view: &ContractView, product: &str, term: u32) -> Result<BillingPeriod, QuoteError> {
    u16::try_from(term)
        .ok()
        .and_then(BillingPeriod::months)
        .ok_or_else(|| QuoteError::LineMrr {
            contract: view.id.clone(),
            product: product.to_string(),
            reason: format!(
                "it would be billed per price term, {term} months, longer than any billing \
                 period ({} months)",
                expansa_ledger::MAX_PERIOD_MONTHS
            ),
        })
}

/// The id of the line an amendment effective on `stamp` (YYYYMMDD) opens after the held line
/// `h`: the first line of `h`'s chain of amendments with `-A{stamp}` (`L1-A20240123`, then
/// `L1-A20240301`, not `L1-A20240123-A20240301`), so ids do not grow with every amendment. A
/// chain holds one line from each day, so the id is new; were it taken all the same, the store
/// refuses the write (the line is written create-only).
fn amended_id(h: &HeldLine, stamp: &str) -> String {
    let root = match (&h.revises, h.line_id.rsplit_once("-A")) {
        (Some(_), Some((root, day)))
            if !root.is_empty() && day.len() == 8 && day.bytes().all(|b| b.is_ascii_digit()) =>
        {
            root
        }
        _ => h.line_id.as_str(),
    };
    format!("{root}-A{stamp}")
}

/// `YYYYMMDD`, for ids.
fn compact(day: Date) -> String {
    format!("{:04}{:02}{:02}", day.year(), day.month(), day.day())
}
