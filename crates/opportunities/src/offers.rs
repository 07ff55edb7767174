//! Offer conversion: what was offered, what was accepted, and what it brought.

use crate::holdings::{Holdings, Level};
use crate::mining::{mine, TooManyItemsets};
use crate::opportunities::{cross_sell_probability, upsell_probability, OpportunityOptions};
use crate::pricing::Prices;
use crate::recommend::RuleIndex;
use expansa_ledger::{Book, Decimal, Money, Month, Offer, OfferKind, OfferOutcome};
use expansa_movements::{customer_movements, ByCustomer, Kind, Query, Selection};
use std::collections::BTreeMap;

/// Offers of one group (a month, a kind, a product or a segment).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfferGroup {
    pub key: String,
    pub made: u64,
    pub accepted: u64,
    pub declined: u64,
    /// No outcome yet.
    pub open: u64,
    /// MRR the accepted offers brought.
    pub mrr_gained: Money,
    /// Sum of probability x gain of every offer made, from the model the day before its month.
    pub forecast: Money,
}

impl OfferGroup {
    /// accepted / (accepted + declined); `None` when nothing was decided.
    pub fn conversion_rate(&self) -> Option<Decimal> {
        let decided = self.accepted + self.declined;
        (decided > 0).then(|| Decimal::from(self.accepted) / Decimal::from(decided))
    }

    /// mrr_gained / accepted, at the money scale.
    pub fn average_gain(&self) -> Option<Money> {
        (self.accepted > 0).then(|| {
            Money::from_decimal(self.mrr_gained.as_decimal() / Decimal::from(self.accepted))
        })
    }

    fn add(&mut self, o: &Offer, gain: Money, forecast: Money) {
        self.made += 1;
        match o.outcome {
            Some(OfferOutcome::Accepted) => {
                self.accepted += 1;
                self.mrr_gained += gain;
            }
            Some(OfferOutcome::Declined) => self.declined += 1,
            None => self.open += 1,
        }
        self.forecast += forecast;
    }
}

/// One offer of the report, with what it brought and what the model expected: the trail
/// behind every group's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferDetail {
    pub id: String,
    pub offered_on: expansa_ledger::Date,
    pub customer_id: String,
    pub product_id: String,
    pub kind: OfferKind,
    pub outcome: Option<OfferOutcome>,
    pub decided_on: Option<expansa_ledger::Date>,
    /// The line the accepted offer produced (by id), if the book names one.
    pub line: Option<String>,
    pub gain: Money,
    pub forecast: Money,
}

/// The offers made in a range of months.
#[derive(Clone, Debug)]
pub struct OfferReport {
    pub from: Month,
    pub to: Month,
    pub total: OfferGroup,
    /// Every month of the range, quiet ones too.
    pub by_month: Vec<OfferGroup>,
    pub by_kind: Vec<OfferGroup>,
    pub by_product: Vec<OfferGroup>,
    pub by_segment: Vec<OfferGroup>,
    /// Every offer counted, in the book's order.
    pub offers: Vec<OfferDetail>,
}

/// The offers made from `from` to `to` (by the month they were made) to the customers and of
/// the products `selection` keeps.
pub fn offer_report(
    book: &Book,
    from: Month,
    to: Month,
    model: &OpportunityOptions,
    selection: &Selection,
) -> Result<OfferReport, TooManyItemsets> {
    let offers: Vec<&Offer> = book
        .offers
        .iter()
        .filter(|o| (from..=to).contains(&Month::of(o.offered_on)))
        .filter(|o| selection.keeps_offer(o))
        .collect();
    let by_customer = ByCustomer::new(book, &Selection::all());
    let mut forecasts = BTreeMap::new();
    let mut months: BTreeMap<Month, Vec<&Offer>> = BTreeMap::new();
    for &o in &offers {
        months.entry(Month::of(o.offered_on)).or_default().push(o);
    }
    for (month, list) in months {
        let day = month.prev().last_day();
        let holdings = Holdings::on(book, day, Level::Product);
        let mined = mine(&holdings.baskets, holdings.names.len(), &model.mining)?;
        let scorer = Scorer {
            book,
            by_customer: &by_customer,
            holdings: &holdings,
            index: RuleIndex::new(&mined),
            prices: Prices::new(book, day),
            upsell_probability: upsell_probability(book, day).0,
        };
        for o in list {
            forecasts.insert(o.id.as_str(), scorer.forecast(o));
        }
    }
    let mut report = OfferReport {
        from,
        to,
        total: group("total"),
        by_month: Vec::new(),
        by_kind: Vec::new(),
        by_product: Vec::new(),
        by_segment: Vec::new(),
        offers: Vec::with_capacity(offers.len()),
    };
    let mut month_groups: BTreeMap<Month, OfferGroup> = BTreeMap::new();
    let mut m = from;
    while m <= to {
        month_groups.insert(m, group(&m.to_string()));
        m = m.next();
    }
    let mut kinds = BTreeMap::new();
    let mut products = BTreeMap::new();
    let mut segments = BTreeMap::new();
    for &o in &offers {
        let gain = if o.outcome == Some(OfferOutcome::Accepted) {
            realised_gain(book, &by_customer, model, o)
        } else {
            Money::ZERO
        };
        let forecast = forecasts[o.id.as_str()];
        report.total.add(o, gain, forecast);
        month_groups
            .get_mut(&Month::of(o.offered_on))
            .expect("every month of the range")
            .add(o, gain, forecast);
        let kind = kind_key(o.kind);
        let product = book.products.ids.get(o.product);
        report.offers.push(OfferDetail {
            id: o.id.clone(),
            offered_on: o.offered_on,
            customer_id: book.customers.ids.get(o.customer).to_string(),
            product_id: product.to_string(),
            kind: o.kind,
            outcome: o.outcome,
            decided_on: o.decided_on,
            line: o.line.map(|l| book.lines.ids.get(l).to_string()),
            gain,
            forecast,
        });
        let segment = book
            .customers
            .segment
            .get_opt(o.customer as usize)
            .filter(|s| !s.is_empty())
            .unwrap_or("-");
        for (map, key) in [
            (&mut kinds, kind),
            (&mut products, product),
            (&mut segments, segment),
        ] {
            map.entry(key.to_string())
                .or_insert_with(|| group(key))
                .add(o, gain, forecast);
        }
    }
    report.by_month = month_groups.into_values().collect();
    report.by_kind = kinds.into_values().collect();
    report.by_product = products.into_values().collect();
    report.by_segment = segments.into_values().collect();
    Ok(report)
}

fn group(key: &str) -> OfferGroup {
    OfferGroup {
        key: key.to_string(),
        ..OfferGroup::default()
    }
}

/// `upsell` or `cross_sell`.
pub fn kind_key(kind: OfferKind) -> &'static str {
    match kind {
        OfferKind::Upsell => "upsell",
        OfferKind::CrossSell => "cross_sell",
    }
}

/// What an accepted offer brought: its line's MRR less the line it replaced; without a line,
/// the customer's movement of the offer's kind in the month it was decided.
pub fn realised_gain(
    book: &Book,
    by_customer: &ByCustomer,
    model: &OpportunityOptions,
    o: &Offer,
) -> Money {
    if let Some(l) = o.line {
        let line = &book.lines.items[l as usize];
        let before = line
            .revises()
            .map_or(Money::ZERO, |r| book.lines.items[r as usize].mrr());
        return line.mrr() - before;
    }
    let month = Month::of(o.decided_on.unwrap_or(o.offered_on));
    let kind = match o.kind {
        OfferKind::Upsell => Kind::Upsell,
        OfferKind::CrossSell => Kind::CrossSell,
    };
    let query = Query {
        from: month,
        to: month,
        rules: model.rules,
    };
    customer_movements(book, &query, by_customer, o.customer)
        .iter()
        .filter(|m| m.kind == kind)
        .map(|m| m.amount)
        .sum()
}

/// The opportunity model of one day, scoring any (customer, product) pair.
struct Scorer<'a> {
    book: &'a Book,
    by_customer: &'a ByCustomer,
    holdings: &'a Holdings,
    index: RuleIndex<'a>,
    prices: Prices<'a>,
    upsell_probability: Decimal,
}

impl Scorer<'_> {
    /// probability x gain of the offer, as the model saw it; zero for a customer holding
    /// nothing, or a product with no price.
    fn forecast(&self, o: &Offer) -> Money {
        let Some(h) = self.holdings.position(o.customer) else {
            return Money::ZERO;
        };
        let basket = &self.holdings.baskets[h];
        let products = &self.book.products.items;
        let family = products[o.product as usize].family;
        let (probability, quantity, current) = match o.kind {
            OfferKind::CrossSell => {
                let mut held = vec![false; self.holdings.names.len()];
                for &p in basket {
                    held[p as usize] = true;
                }
                let n = self.holdings.len() as u64;
                let p = cross_sell_probability(&self.index, &held, o.product, n).0;
                (p, Decimal::ONE, Money::ZERO)
            }
            OfferKind::Upsell => {
                let (mut quantity, mut current) = (Decimal::ZERO, Money::ZERO);
                for &l in self.by_customer.lines(o.customer as usize) {
                    let l = &self.book.lines.items[l as usize];
                    if products[l.product as usize].family == family
                        && l.active_on(self.holdings.day)
                    {
                        quantity += l.quantity.get();
                        current += l.mrr();
                    }
                }
                (self.upsell_probability, quantity.max(Decimal::ONE), current)
            }
        };
        let Some((mrr, _)) = self.prices.mrr(o.customer, o.product, quantity) else {
            return Money::ZERO;
        };
        let gain = mrr - current;
        if gain.is_positive() {
            Money::from_decimal(probability * gain.as_decimal())
        } else {
            Money::ZERO
        }
    }
}
