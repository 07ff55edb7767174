//! The in-memory book of business: every table of the interchange format, validated.
//!
//! Rows refer to each other by dense indices (`CustomerIdx`, `ProductIdx`, `LineIdx`); ids
//! are kept once, in [`Interner`]s.

use crate::{
    BillingPeriod, Currency, Date, Decimal, Interner, Money, Month, PackedMoney, SmallDecimal,
    TextColumn,
};
use std::collections::BTreeMap;
use std::num::NonZeroU32;

/// Index of a customer in [`Book::customers`].
pub type CustomerIdx = u32;
/// Index of a product in [`Book::products`].
pub type ProductIdx = u32;
/// Index of a subscription line in [`Book::lines`].
pub type LineIdx = u32;

/// A whole book of business in one reporting currency.
#[derive(Clone, Default)]
pub struct Book {
    pub currency: Option<Currency>,
    pub customers: Customers,
    pub products: Products,
    pub lines: Lines,
    pub contracts: Vec<Contract>,
    pub contracted_prices: Vec<ContractedPrice>,
    pub fx_rates: Vec<FxRate>,
    pub marketing_spend: Vec<Spend>,
    pub usage: Vec<Usage>,
    pub offers: Vec<Offer>,
}

impl Book {
    /// The reporting currency (BRL unless the book says otherwise).
    pub fn currency(&self) -> Currency {
        self.currency.unwrap_or(Currency::BRL)
    }

    /// One unit of `currency` in the reporting currency: the rate of `month`, else the latest
    /// before it; 1 for the reporting currency (or none given).
    pub fn rate_to_reporting(&self, currency: Option<Currency>, month: Month) -> Option<Decimal> {
        let c = match currency {
            None => return Some(Decimal::ONE),
            Some(c) if c == self.currency() => return Some(Decimal::ONE),
            Some(c) => c,
        };
        self.fx_rates
            .iter()
            .filter(|r| r.currency == c && r.month <= month)
            .max_by_key(|r| r.month)
            .map(|r| r.rate)
    }

    /// The rate a line starting in `month` is valued at: that month's own rate in
    /// fx_rates.csv (the import requires it of every line in another currency); 1 for the
    /// reporting currency. `None` when the month has no rate of `currency`.
    pub fn rate_of_month(&self, currency: Currency, month: Month) -> Option<Decimal> {
        if currency == self.currency() {
            return Some(Decimal::ONE);
        }
        self.fx_rates
            .iter()
            .find(|r| r.currency == currency && r.month == month)
            .map(|r| r.rate)
    }

    /// Line `l`'s MRR at the exchange rate of `month` instead of its own start month's: the
    /// constant-currency MRR the movement report measures a price change with (docs/
    /// movement-rules.md, "the `fx` movement"). The line's own MRR for the reporting currency;
    /// `None` when no rate of `month` or before exists, or the MRR is out of range.
    pub fn mrr_at_rate_of(&self, l: LineIdx, month: Month) -> Option<Money> {
        let line = &self.lines.items[l as usize];
        if line.currency == self.currency() {
            return Some(line.mrr());
        }
        let rate = self.rate_to_reporting(Some(line.currency), month)?;
        crate::line_mrr(
            line.quantity.get(),
            line.unit_price.get(),
            line.discount_pct.get(),
            line.billing_period,
            rate,
        )
        .ok()
    }

    /// The contracted price of `product` for `customer` valid on `day`, if any.
    pub fn contracted_price(
        &self,
        customer: CustomerIdx,
        product: ProductIdx,
        day: Date,
    ) -> Option<&ContractedPrice> {
        self.contracted_prices
            .iter()
            .find(|c| c.customer == customer && c.product == product && c.valid_on(day))
    }
}

impl Book {
    /// The customer of each contract its lines name (by a 64-bit hash of the contract id: two
    /// ids that collide look like one contract, which only makes the check stricter), or `None` when the book's contracts or revisions span customers: a
    /// contract id named by lines of two customers (possible for ids no contracts.csv row
    /// holds), or a line revising another customer's line. Renewals look at a contract's lines
    /// and their revisions, so a report that counts them adds up over parts of the customers
    /// only when none spans two.
    pub fn contract_owners(&self) -> Option<std::collections::HashMap<u64, CustomerIdx>> {
        let items = &self.lines.items;
        let mut owners = std::collections::HashMap::with_capacity(items.len());
        for (l, line) in items.iter().enumerate() {
            if line
                .revises()
                .is_some_and(|r| items[r as usize].customer != line.customer)
            {
                return None;
            }
            let key = contract_key(self.lines.contract_id(l as LineIdx));
            if *owners.entry(key).or_insert(line.customer) != line.customer {
                return None;
            }
        }
        Some(owners)
    }

    /// The part of the book with the rows of the customers `keep` selects (by customer index;
    /// indices past its end are not kept): their customer rows, lines, contracts, contracted
    /// prices, usage and offers, in the book's order, with the shared tables (currency,
    /// products, fx rates, marketing spend) whole. It is the book the importer would read from
    /// those rows alone (a group of customers, as the Spark job and the store's parts hold
    /// them), so every report that adds up over customers gives, on the parts of a partition of
    /// the customers, figures that add up to the book's. References to rows outside the part
    /// (a line revising another customer's line, an offer naming another customer's line) are
    /// dropped: a part that must keep them selects both customers.
    pub fn part(&self, keep: &[bool]) -> Book {
        let kept = |c: CustomerIdx| keep.get(c as usize).copied().unwrap_or(false);
        let n = self.customers.len();
        // Old customer index -> new.
        let mut customer_of = vec![u32::MAX; n];
        let mut customers = Customers {
            from_file: self.customers.from_file,
            ..Customers::default()
        };
        let old = &self.customers;
        let mut attributes: Vec<(String, TextColumn)> = old
            .attributes
            .iter()
            .map(|(name, _)| (name.clone(), TextColumn::default()))
            .collect();
        for c in (0..n as CustomerIdx).filter(|&c| kept(c)) {
            let i = c as usize;
            customer_of[i] = customers.ids.intern(old.ids.get(c)).0;
            customers
                .registered_on
                .push(old.registered_on.get(i).copied().flatten());
            for (to, from) in [
                (&mut customers.name, &old.name),
                (&mut customers.segment, &old.segment),
                (&mut customers.country, &old.country),
                (&mut customers.channel, &old.channel),
            ] {
                if !from.is_empty() {
                    to.push(from.get(i));
                }
            }
            for ((_, to), (_, from)) in attributes.iter_mut().zip(&old.attributes) {
                to.push(from.get(i));
            }
        }
        customers.attributes = attributes;

        let mut line_of = vec![u32::MAX; self.lines.len()];
        let mut lines = Lines::default();
        for (l, line) in self.lines.items.iter().enumerate() {
            if !kept(line.customer) {
                continue;
            }
            let to = lines.ids.intern(self.lines.ids.get(l as LineIdx)).0;
            line_of[l] = to;
            if !self.lines.contract_ids.is_empty() {
                lines.contract_ids.push(self.lines.contract_ids.get(l));
            }
            if let Some(&day) = self.lines.sold_on.get(&(l as LineIdx)) {
                lines.sold_on.insert(to, day);
            }
            lines.items.push(Line {
                customer: customer_of[line.customer as usize],
                ..line.clone()
            });
        }
        // Revisions within the part (the lines revised come first or later in file order).
        for line in lines.items.iter_mut() {
            line.revises_ref = line
                .revises()
                .and_then(|r| line_of.get(r as usize).copied())
                .filter(|&to| to != u32::MAX)
                .and_then(LineRef::new);
        }
        let to_customer = |c: CustomerIdx| customer_of[c as usize];
        Book {
            currency: self.currency,
            customers,
            products: self.products.clone(),
            lines,
            contracts: self
                .contracts
                .iter()
                .filter(|k| kept(k.customer))
                .map(|k| Contract {
                    customer: to_customer(k.customer),
                    ..k.clone()
                })
                .collect(),
            contracted_prices: self
                .contracted_prices
                .iter()
                .filter(|p| kept(p.customer))
                .map(|p| ContractedPrice {
                    customer: to_customer(p.customer),
                    ..p.clone()
                })
                .collect(),
            fx_rates: self.fx_rates.clone(),
            marketing_spend: self.marketing_spend.clone(),
            usage: self
                .usage
                .iter()
                .filter(|u| kept(u.customer))
                .map(|u| Usage {
                    customer: to_customer(u.customer),
                    ..u.clone()
                })
                .collect(),
            offers: self
                .offers
                .iter()
                .filter(|o| kept(o.customer))
                .map(|o| Offer {
                    customer: to_customer(o.customer),
                    line: o
                        .line
                        .and_then(|l| line_of.get(l as usize).copied())
                        .filter(|&to| to != u32::MAX),
                    ..o.clone()
                })
                .collect(),
        }
    }
}

/// A contract id's key in [`Book::contract_owners`].
fn contract_key(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

/// Customers: ids, registration days and descriptive attributes, column by column.
#[derive(Clone, Default)]
pub struct Customers {
    pub ids: Interner,
    /// `registered_on` from customers.csv, if given.
    pub registered_on: Vec<Option<Date>>,
    /// Attributes, by customer index; a column may be shorter than the customers (the rest
    /// have no value), so read them with [`TextColumn::get_opt`].
    pub name: TextColumn,
    pub segment: TextColumn,
    pub country: TextColumn,
    pub channel: TextColumn,
    /// Other columns of customers.csv, by lower-case name (usable as filters).
    pub attributes: Vec<(String, TextColumn)>,
    /// Whether the customers came from customers.csv (then every line's customer must be listed).
    pub from_file: bool,
}

impl Customers {
    /// A column of customer attributes by name: `name`, `segment`, `country`, `channel` or any
    /// other column of customers.csv.
    pub fn attribute(&self, column: &str) -> Option<&TextColumn> {
        match column {
            "name" => Some(&self.name),
            "segment" => Some(&self.segment),
            "country" => Some(&self.country),
            "channel" => Some(&self.channel),
            other => self
                .attributes
                .iter()
                .find(|(n, _)| n == other)
                .map(|(_, col)| col),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds a customer known only from its lines.
    pub fn push_bare(&mut self, id: &str) -> CustomerIdx {
        let (idx, seen) = self.ids.intern(id);
        if !seen {
            self.registered_on.push(None);
        }
        idx
    }
}

/// What a product is sold as.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    #[default]
    Plan,
    Addon,
    Service,
}

/// Products: catalogue rows, and products seen only on lines (with defaults).
#[derive(Clone, Default)]
pub struct Products {
    pub ids: Interner,
    pub items: Vec<Product>,
    /// Family names; `Product::family` indexes this.
    pub families: Interner,
}

impl Products {
    /// The index of a product id, adding it with defaults (its own family) when unknown.
    pub fn get_or_add(&mut self, id: &str) -> ProductIdx {
        let (idx, seen) = self.ids.intern(id);
        if !seen {
            let family = self.families.intern(id).0;
            self.items.push(Product {
                family,
                ..Product::default()
            });
        }
        idx
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// One product of the catalogue.
#[derive(Clone, Debug, Default)]
pub struct Product {
    pub name: Option<String>,
    /// Index into [`Products::families`].
    pub family: u32,
    pub tier: Option<i64>,
    pub kind: ProductKind,
    pub list_price: Option<Decimal>,
    pub price_term_months: u32,
    pub currency: Option<Currency>,
}

/// Subscription lines, one per row of subscriptions.csv, in file order.
#[derive(Clone, Default)]
pub struct Lines {
    pub ids: Interner,
    pub items: Vec<Line>,
    /// `contract_id` as written (empty when the column is absent or empty: the line's own id).
    pub contract_ids: TextColumn,
    /// `sold_on` where it differs from the line's start (it rarely does).
    pub sold_on: BTreeMap<LineIdx, Date>,
}

impl Lines {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The day a line was sold (its start unless the book says otherwise).
    pub fn sold_on(&self, line: LineIdx) -> Date {
        self.sold_on
            .get(&line)
            .copied()
            .unwrap_or(self.items[line as usize].start)
    }

    /// The contract a line belongs to (its own id by default).
    pub fn contract_id(&self, line: LineIdx) -> &str {
        self.contract_ids
            .get_opt(line as usize)
            .unwrap_or_else(|| self.ids.get(line))
    }
}

/// One product held by one customer at one price over one period.
#[derive(Clone, Debug)]
pub struct Line {
    pub customer: CustomerIdx,
    pub product: ProductIdx,
    pub quantity: SmallDecimal,
    pub unit_price: SmallDecimal,
    pub discount_pct: SmallDecimal,
    /// The line's MRR in the reporting currency, quantized once at [`crate::SCALE`]; read it
    /// with [`Line::mrr`].
    pub packed_mrr: PackedMoney,
    pub start: Date,
    /// Last day of service, inclusive; `None` for an evergreen line.
    pub end: Option<Date>,
    /// The line this one replaces; read it with [`Line::revises`].
    pub revises_ref: Option<LineRef>,
    /// How often the line is billed (`billing_period_months`, or `billing_interval` and
    /// `billing_interval_count`); years are kept as months.
    pub billing_period: BillingPeriod,
    pub currency: Currency,
}

/// A reference to a line that takes 4 bytes even as an `Option`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct LineRef(NonZeroU32);

impl LineRef {
    /// `None` only for `u32::MAX`, which is never a line index.
    pub fn new(line: LineIdx) -> Option<LineRef> {
        line.checked_add(1).and_then(NonZeroU32::new).map(LineRef)
    }

    pub fn index(self) -> LineIdx {
        self.0.get() - 1
    }
}

impl Line {
    /// The line's MRR in the reporting currency.
    pub fn mrr(&self) -> Money {
        self.packed_mrr.get()
    }

    /// The line this one replaces (`revises`), if any.
    pub fn revises(&self) -> Option<LineIdx> {
        self.revises_ref.map(LineRef::index)
    }

    /// Whether the line is active on `day`.
    pub fn active_on(&self, day: Date) -> bool {
        self.start <= day && self.end.is_none_or(|end| day <= end)
    }

    /// The months at whose end the line is active: `(first, last)`, `last = None` for open;
    /// `None` when it never is (it starts and ends inside one month).
    pub fn snapshot_months(&self) -> Option<(Month, Option<Month>)> {
        let first = Month::of(self.start);
        let Some(end) = self.end else {
            return Some((first, None));
        };
        let end_month = Month::of(end);
        let last = if end == end_month.last_day() {
            end_month
        } else {
            end_month.prev()
        };
        (last >= first && end >= self.start).then_some((first, Some(last)))
    }
}

/// How a contract renews.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum RenewalPricing {
    #[default]
    Same,
    List,
    Uplift,
}

/// A row of contracts.csv.
#[derive(Clone, Debug)]
pub struct Contract {
    pub id: String,
    pub customer: CustomerIdx,
    pub start: Date,
    pub end: Option<Date>,
    pub renewal_pricing: RenewalPricing,
    pub renewal_uplift_pct: Option<Decimal>,
    pub renewal_term_months: Option<u32>,
}

/// A negotiated price, as a price or as a discount off the list price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NegotiatedPrice {
    Price(Decimal),
    DiscountPct(Decimal),
}

/// A row of contracted_prices.csv.
#[derive(Clone, Debug)]
pub struct ContractedPrice {
    pub customer: CustomerIdx,
    pub product: ProductIdx,
    pub price: NegotiatedPrice,
    pub valid_from: Option<Date>,
    pub valid_to: Option<Date>,
}

impl ContractedPrice {
    /// Whether the price applies on `day`.
    pub fn valid_on(&self, day: Date) -> bool {
        self.valid_from.is_none_or(|d| d <= day) && self.valid_to.is_none_or(|d| day <= d)
    }
}

impl NegotiatedPrice {
    /// The price of one unit for the product's price term, given its list price (`None` for a
    /// discount off a product without one).
    pub fn unit_price(self, list_price: Option<Decimal>) -> Option<Decimal> {
        match self {
            NegotiatedPrice::Price(price) => Some(price),
            NegotiatedPrice::DiscountPct(pct) => {
                Some(list_price? * (Decimal::ONE_HUNDRED - pct) / Decimal::ONE_HUNDRED)
            }
        }
    }
}

/// A row of fx_rates.csv: one unit of `currency` in the reporting currency during `month`.
#[derive(Clone, Debug)]
pub struct FxRate {
    pub month: Month,
    pub currency: Currency,
    pub rate: Decimal,
}

/// A row of marketing_spend.csv.
#[derive(Clone, Debug)]
pub struct Spend {
    pub month: Month,
    pub channel: String,
    pub amount: Decimal,
}

/// A row of usage.csv.
#[derive(Clone, Debug)]
pub struct Usage {
    pub customer: CustomerIdx,
    pub product: ProductIdx,
    pub month: Month,
    pub used: Decimal,
    pub included: Decimal,
}

/// Upsell or cross-sell.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OfferKind {
    Upsell,
    CrossSell,
}

/// What became of an offer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OfferOutcome {
    Accepted,
    Declined,
}

/// A row of offers.csv.
#[derive(Clone, Debug)]
pub struct Offer {
    pub id: String,
    pub customer: CustomerIdx,
    pub product: ProductIdx,
    pub kind: OfferKind,
    pub offered_on: Date,
    pub outcome: Option<OfferOutcome>,
    pub decided_on: Option<Date>,
    pub line: Option<LineIdx>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn line(start: Date, end: Option<Date>) -> Line {
        Line {
            customer: 0,
            product: 0,
            quantity: SmallDecimal::new(Decimal::ONE).unwrap(),
            unit_price: SmallDecimal::new(Decimal::ONE).unwrap(),
            discount_pct: SmallDecimal::ZERO,
            packed_mrr: PackedMoney::default(),
            start,
            end,
            revises_ref: None,
            billing_period: BillingPeriod::MONTHLY,
            currency: Currency::BRL,
        }
    }

    #[test]
    fn month_end_snapshots() {
        let m = |s: &str| s.parse::<Month>().unwrap();
        let l = line(date(2024, 1, 15), Some(date(2024, 3, 31)));
        assert_eq!(
            l.snapshot_months(),
            Some((m("2024-01"), Some(m("2024-03"))))
        );
        let l = line(date(2024, 1, 15), Some(date(2024, 3, 30)));
        assert_eq!(
            l.snapshot_months(),
            Some((m("2024-01"), Some(m("2024-02"))))
        );
        let l = line(date(2024, 1, 2), Some(date(2024, 1, 30)));
        assert_eq!(l.snapshot_months(), None);
        let l = line(date(2024, 1, 31), Some(date(2024, 1, 31)));
        assert_eq!(
            l.snapshot_months(),
            Some((m("2024-01"), Some(m("2024-01"))))
        );
        let l = line(date(2024, 1, 31), None);
        assert_eq!(l.snapshot_months(), Some((m("2024-01"), None)));
        assert!(l.active_on(date(2030, 1, 1)));
    }
}

#[cfg(test)]
mod size {
    #[test]
    fn line_stays_small() {
        // Millions of lines are held at once; this is the memory budget of one.
        assert!(
            std::mem::size_of::<super::Line>() <= 64,
            "{}",
            std::mem::size_of::<super::Line>()
        );
    }
}
