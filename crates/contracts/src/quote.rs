//! Amendment and renewal quotes.

use crate::prorate::{term_end, Fraction, Precision, Term};
use crate::{add_money, contract, exact, ContractView, HeldLine, QuoteError};
use expansa_ledger::{
    line_mrr, BillingPeriod, Book, Currency, Date, Decimal, Money, Month, ProductIdx,
    RenewalPricing,
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
    /// priced per one price term.
    pub end: Option<Date>,
    pub precision: Precision,
    /// The currency of the prices and totals.
    pub currency: Currency,
    pub lines: Vec<QuoteLine>,
    /// Sum of the lines' net totals.
    pub total: Decimal,
    /// The contract's MRR (reporting currency) before and after the quote takes effect.
    pub mrr_before: Money,
    pub mrr_after: Money,
    pub changes: Vec<LineChange>,
    pub new_contract: Option<NewContract>,
}

/// One priced line of a quote.
#[derive(Debug, Clone)]
pub struct QuoteLine {
    pub product_id: String,
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

/// What one product looks like while the changes of a request are applied.
struct Working<'a> {
    product: ProductIdx,
    held: Option<&'a HeldLine>,
    quantity: Decimal,
    /// The held line of another product this one replaces (`--swap`).
    replaces: Option<&'a HeldLine>,
}

/// Prices an amendment of a contract from `effective` to its end (co-terminated).
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
                let w = entry(book, &view, &mut working, p)?;
                w.quantity = plus(p, w.quantity, *q)?;
            }
            Change::Set(p, q) => entry(book, &view, &mut working, p)?.quantity = *q,
            Change::Remove(p) => held_entry(book, &view, &mut working, p)?.quantity = Decimal::ZERO,
            Change::Swap(old, new) => {
                let from = held_entry(book, &view, &mut working, old)?;
                let quantity = std::mem::take(&mut from.quantity);
                let replaced = from.held;
                let to = entry(book, &view, &mut working, new)?;
                to.quantity = plus(new, to.quantity, quantity)?;
                if to.held.is_none() {
                    to.replaces = replaced;
                }
            }
        }
    }
    let dp = view.currency.minor_units();
    let mut lines = Vec::new();
    let mut changes = Vec::new();
    let mut mrr_after = view.mrr;
    for w in &working {
        let product_id = book.products.ids.get(w.product).to_string();
        if w.quantity < Decimal::ZERO {
            return Err(QuoteError::NegativeQuantity {
                product: product_id,
                quantity: w.quantity,
            });
        }
        let prior = w.held.map_or(Decimal::ZERO, |h| h.quantity);
        let delta = exact::sub(w.quantity, prior).ok_or_else(|| {
            too_large(format!(
                "the change of quantity of {product_id} ({} - {prior})",
                w.quantity
            ))
        })?;
        if delta.is_zero() {
            continue;
        }
        let term = book.products.items[w.product as usize]
            .price_term_months
            .max(1);
        let unit_price = match w.held {
            Some(h) => h.term_unit_price,
            None => price_for(book, &view, w.product, effective)?,
        };
        // The effective day is inside the contract (checked above), so the term exists.
        let span = view.end.and_then(|end| Term::between(effective, end));
        let multiplier = span.map_or(Fraction::ONE, |t| t.multiplier(request.precision, term));
        lines.push(priced(
            product_id.clone(),
            prior,
            w.quantity,
            delta,
            unit_price,
            term,
            multiplier,
            dp,
            span,
            &too_large,
        )?);
        let stamp = compact(effective);
        let revised = w.held.or(w.replaces);
        if let Some(h) = revised {
            if h.start >= effective {
                return Err(QuoteError::StartsOnEffective {
                    line: h.line_id.clone(),
                    day: effective,
                });
            }
        }
        if let Some(h) = w.held {
            mrr_after = add_money(mrr_after, -h.mrr)
                .ok_or_else(|| too_large("the MRR after the amendment".into()))?;
            changes.push(LineChange::Close {
                line_id: h.line_id.clone(),
                // Never fails: the line starts before the effective day (checked above).
                end: effective
                    .yesterday()
                    .map_err(|_| QuoteError::StartsOnEffective {
                        line: h.line_id.clone(),
                        day: effective,
                    })?,
            });
        }
        if w.quantity > Decimal::ZERO {
            let new = match w.held {
                Some(h) => {
                    let line = &book.lines.items[h.line as usize];
                    NewLine {
                        id: format!("{}-A{stamp}", h.line_id),
                        customer_id: view.customer_id.clone(),
                        contract_id: view.id.clone(),
                        product_id,
                        quantity: w.quantity,
                        unit_price: h.unit_price,
                        discount_pct: h.discount_pct,
                        currency: line.currency,
                        billing_period: h.billing_period,
                        start: effective,
                        end: h.end,
                        revises: Some(h.line_id.clone()),
                    }
                }
                None => NewLine {
                    id: format!("{}-A{stamp}-{product_id}", view.id),
                    customer_id: view.customer_id.clone(),
                    contract_id: view.id.clone(),
                    billing_period: per_term(&view, &product_id, term)?,
                    product_id,
                    quantity: w.quantity,
                    unit_price,
                    discount_pct: Decimal::ZERO,
                    currency: view.currency,
                    start: effective,
                    end: view.end,
                    revises: w.replaces.map(|h| h.line_id.clone()),
                },
            };
            mrr_after = add_money(mrr_after, new_line_mrr(book, &view, &new)?)
                .ok_or_else(|| too_large("the MRR after the amendment".into()))?;
            changes.push(LineChange::Open(new));
        }
    }
    Ok(Quote {
        kind: QuoteKind::Amend,
        contract: view.id.clone(),
        customer_id: view.customer_id.clone(),
        effective,
        end: view.end,
        precision: request.precision,
        currency: view.currency,
        total: total(&lines, dp).ok_or_else(|| too_large("the quote's total".into()))?,
        lines,
        mrr_before: view.mrr,
        mrr_after,
        changes,
        new_contract: None,
    })
}

/// Prices the renewal of a contract: a new term from the day after it ends.
pub fn quote_renew(book: &Book, request: &RenewRequest) -> Result<Quote, QuoteError> {
    let probe = contract(book, &request.contract, Date::MIN)?;
    let Some(end) = probe.end else {
        return Err(QuoteError::EvergreenRenewal(probe.id));
    };
    let view = contract(book, &request.contract, end)?;
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
    let dp = view.currency.minor_units();
    let mut lines = Vec::new();
    let mut changes = Vec::new();
    let mut mrr_after = Money::ZERO;
    for h in &view.lines {
        let line = &book.lines.items[h.line as usize];
        let product = line.product;
        let term = h.price_term_months;
        let (unit_price, unit, discount, period) = match (pricing, uplift) {
            (RenewalPricing::List, _) => {
                let list = list_price(book, &view, product, start)?;
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
        let multiplier = renewal_term.multiplier(Precision::MonthDay, term);
        lines.push(priced(
            h.product_id.clone(),
            h.quantity,
            h.quantity,
            h.quantity,
            unit_price,
            term,
            multiplier,
            dp,
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
            currency: line.currency,
            billing_period: period,
            start,
            end: Some(new_end),
            revises: Some(h.line_id.clone()),
        };
        mrr_after = add_money(mrr_after, new_line_mrr(book, &view, &new)?)
            .ok_or_else(|| too_large("the MRR after the renewal".into()))?;
        changes.push(LineChange::Open(new));
    }
    Ok(Quote {
        kind: QuoteKind::Renew,
        contract: view.id.clone(),
        customer_id: view.customer_id.clone(),
        effective: start,
        end: Some(new_end),
        precision: Precision::MonthDay,
        currency: view.currency,
        total: total(&lines, dp).ok_or_else(|| too_large("the quote's total".into()))?,
        lines,
        mrr_before: view.mrr,
        mrr_after,
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

/// The sum of the lines' net totals (each at `dp` places), exact.
fn total(lines: &[QuoteLine], dp: u32) -> Option<Decimal> {
    let units = lines.iter().try_fold(0i128, |sum, l| {
        let mut d = l.net_total;
        d.rescale(dp);
        sum.checked_add(d.mantissa())
    })?;
    Decimal::try_from_i128_with_scale(units, dp).ok()
}

/// Prices one line: `unit_price x multiplier` rounded once to the minor unit, then that price
/// x the units charged, both exact. `span` is the term prorated (for messages).
#[allow(clippy::too_many_arguments)]
fn priced(
    product_id: String,
    prior_quantity: Decimal,
    quantity: Decimal,
    effective_quantity: Decimal,
    unit_price: Decimal,
    price_term_months: u32,
    prorate_multiplier: Fraction,
    dp: u32,
    span: Option<Term>,
    too_large: &dyn Fn(String) -> QuoteError,
) -> Result<QuoteLine, QuoteError> {
    let over = span.map_or(String::new(), |t| format!(" over {}", t.describe()));
    let prorated_unit_price = prorate_multiplier.apply(unit_price, dp).ok_or_else(|| {
        too_large(format!(
            "the prorated price of one {product_id} ({unit_price} per {price_term_months} \
             months x {}{over})",
            prorate_multiplier.rounded(10).normalize()
        ))
    })?;
    let net_total = exact::product(&[prorated_unit_price, effective_quantity], 1, 1, dp)
        .ok_or_else(|| {
            too_large(format!(
                "the prorated amount of {product_id} ({effective_quantity} x \
                 {prorated_unit_price}{over})"
            ))
        })?;
    Ok(QuoteLine {
        product_id,
        prior_quantity,
        quantity,
        effective_quantity,
        unit_price,
        price_term_months,
        prorate_multiplier,
        prorated_unit_price,
        net_total,
    })
}

/// The entry of `product_id` in the working set, made on first use.
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
    let held = held.first().copied();
    working.push(Working {
        product,
        held,
        quantity: held.map_or(Decimal::ZERO, |h| h.quantity),
        replaces: None,
    });
    Ok(working.last_mut().expect("just pushed"))
}

/// Like [`entry`], for a product the contract must hold.
fn held_entry<'w, 'a>(
    book: &Book,
    view: &'a ContractView,
    working: &'w mut Vec<Working<'a>>,
    product_id: &str,
) -> Result<&'w mut Working<'a>, QuoteError> {
    let w = entry(book, view, working, product_id)?;
    if w.held.is_none() {
        return Err(QuoteError::NotHeld {
            product: product_id.to_string(),
            contract: view.id.clone(),
            day: view.at,
        });
    }
    Ok(w)
}

/// The price of one unit of a product not yet held, for one price term, in the contract's
/// currency: the customer's contracted price valid on `day`, else the list price.
fn price_for(
    book: &Book,
    view: &ContractView,
    product: ProductIdx,
    day: Date,
) -> Result<Decimal, QuoteError> {
    let p = &book.products.items[product as usize];
    let customer = book.customers.ids.find(&view.customer_id);
    match customer.and_then(|c| book.contracted_price(c, product, day)) {
        Some(c) => {
            let price = c
                .price
                .unit_price(p.list_price)
                .ok_or_else(|| QuoteError::NoPrice(book.products.ids.get(product).into()))?;
            convert(book, view, product, price, day)
        }
        None => list_price(book, view, product, day),
    }
}

/// The list price of one unit for one price term, in the contract's currency.
fn list_price(
    book: &Book,
    view: &ContractView,
    product: ProductIdx,
    day: Date,
) -> Result<Decimal, QuoteError> {
    let price = book.products.items[product as usize]
        .list_price
        .ok_or_else(|| QuoteError::NoPrice(book.products.ids.get(product).into()))?;
    convert(book, view, product, price, day)
}

/// A price in the product's currency, in the contract's currency (through the reporting
/// currency's rates of `day`'s month).
fn convert(
    book: &Book,
    view: &ContractView,
    product: ProductIdx,
    price: Decimal,
    day: Date,
) -> Result<Decimal, QuoteError> {
    let from = book.products.items[product as usize].currency;
    if from.is_none_or(|c| c == view.currency) {
        return Ok(price);
    }
    let month = Month::of(day);
    let rate = |c: Option<Currency>| {
        book.rate_to_reporting(c, month)
            .ok_or_else(|| QuoteError::NoRate {
                product: book.products.ids.get(product).into(),
                currency: c.unwrap_or(book.currency()),
                day,
            })
    };
    let (a, b) = (rate(from)?, rate(Some(view.currency))?);
    price
        .checked_mul(a)
        .and_then(|p| p.checked_div(b))
        .map(|p| p.normalize())
        .ok_or_else(|| QuoteError::TooLarge {
            contract: view.id.clone(),
            end: view.end,
            what: format!(
                "the price {price} of {} in {}",
                book.products.ids.get(product),
                view.currency.code()
            ),
        })
}

fn new_line_mrr(book: &Book, view: &ContractView, line: &NewLine) -> Result<Money, QuoteError> {
    let rate = book
        .rate_to_reporting(Some(line.currency), Month::of(line.start))
        .ok_or_else(|| QuoteError::NoRate {
            product: line.product_id.clone(),
            currency: line.currency,
            day: line.start,
        })?;
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

/// `YYYYMMDD`, for ids.
fn compact(day: Date) -> String {
    format!("{:04}{:02}{:02}", day.year(), day.month(), day.day())
}
