//! Ranked upsell and cross-sell opportunities on one day.

use crate::holdings::{Holdings, Level};
use crate::mining::{mine, MiningOptions, TooManyItemsets};
use crate::pricing::{PriceSource, Prices};
use crate::recommend::RuleIndex;
use expansa_ledger::{
    Book, CustomerIdx, Date, Decimal, Money, Month, OfferKind, OfferOutcome, ProductIdx,
};
use expansa_movements::{customer_movements, ByCustomer, Kind, Query, Rules, Selection};
use hashbrown::{HashMap, HashSet};
use rayon::prelude::*;

/// How opportunities are found.
#[derive(Clone, Copy, Debug)]
pub struct OpportunityOptions {
    pub at: Date,
    /// Rules behind cross-sell (mined at product level on `at`).
    pub mining: MiningOptions,
    /// Share of the plan's inclusion that counts as "close to the limit" (0.8 = 80%).
    pub usage_threshold: Decimal,
    /// Consecutive complete months, up to `at`, usage must reach the threshold.
    pub usage_months: u32,
    /// Skip customers with a downsell in this many months up to `at` (0: never skip).
    pub skip_downsell_months: u32,
    /// Movement rules used to find downsells.
    pub rules: Rules,
}

impl OpportunityOptions {
    pub fn new(at: Date) -> OpportunityOptions {
        OpportunityOptions {
            at,
            mining: MiningOptions {
                min_support: crate::MinSupport::Fraction(Decimal::new(1, 2)),
                min_confidence: Decimal::new(1, 1),
                ..MiningOptions::default()
            },
            usage_threshold: Decimal::new(8, 1),
            usage_months: 3,
            skip_downsell_months: 3,
            rules: Rules::Conexa,
        }
    }
}

/// Upsell (next tier of a family) or cross-sell (a family not held).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpportunityKind {
    Upsell,
    CrossSell,
}

/// One month of usage behind an upsell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageMonth {
    pub month: Month,
    pub used: Decimal,
    pub included: Decimal,
}

/// Why an opportunity is proposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// Customers holding `antecedent` also hold the product: `count` of `antecedent_count`.
    Rule {
        antecedent: Vec<ProductIdx>,
        count: u64,
        antecedent_count: u64,
        lift: Decimal,
    },
    /// No rule fires: the share of customers holding the product.
    Popularity { holders: u64, transactions: u64 },
    /// Usage at or over the threshold every month; probability from past upsell offers
    /// (accepted + 1) / (decided + 2).
    Usage {
        months: Vec<UsageMonth>,
        offers_accepted: u64,
        offers_decided: u64,
    },
}

/// A product to offer a customer, with what it should bring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opportunity {
    pub customer: CustomerIdx,
    pub kind: OpportunityKind,
    pub product: ProductIdx,
    /// For an upsell, the plan held now.
    pub from_product: Option<ProductIdx>,
    pub probability: Decimal,
    /// MRR the customer would add.
    pub gain: Money,
    /// probability x gain.
    pub expected_gain: Money,
    pub price_source: PriceSource,
    /// The customer's MRR on the day.
    pub customer_mrr: Money,
    pub why: Why,
}

/// Which opportunities to list.
#[derive(Clone, Debug, Default)]
pub struct OpportunityFilter {
    pub customer: Option<CustomerIdx>,
    pub kind: Option<OpportunityKind>,
    /// Customers and products kept (`--where`); the model still learns from the whole book.
    pub selection: Selection,
    pub top: Option<usize>,
}

/// The opportunities on a day, best expected gain first.
#[derive(Clone, Debug)]
pub struct Opportunities {
    pub at: Date,
    /// Customers holding something on the day.
    pub transactions: u64,
    /// Rules mined on the day.
    pub rules: usize,
    /// Customers left out for a recent downsell.
    pub skipped_downsell: u64,
    /// (customer, product) pairs left out for an open offer.
    pub skipped_open_offer: u64,
    /// Opportunities found before `--top` (after `--customer` and `--kind`).
    pub found: usize,
    pub list: Vec<Opportunity>,
}

/// Probability of an upsell: past upsell offers decided by `day`, Laplace-smoothed.
pub fn upsell_probability(book: &Book, day: Date) -> (Decimal, u64, u64) {
    let decided = book
        .offers
        .iter()
        .filter(|o| o.kind == OfferKind::Upsell && o.outcome.is_some())
        .filter(|o| o.decided_on.unwrap_or(o.offered_on) <= day);
    let (mut accepted, mut total) = (0u64, 0u64);
    for o in decided {
        total += 1;
        accepted += u64::from(o.outcome == Some(OfferOutcome::Accepted));
    }
    let p = Decimal::from(accepted + 1) / Decimal::from(total + 2);
    (p, accepted, total)
}

/// The complete months, ending on or before `day`, usage must cover.
pub fn usage_window(day: Date, months: u32) -> Vec<Month> {
    let m = Month::of(day);
    let last = if day == m.last_day() { m } else { m.prev() };
    (0..months as i32).rev().map(|k| last.offset(-k)).collect()
}

/// Finds every opportunity on `options.at`, then keeps those `filter` asks for.
pub fn opportunities(
    book: &Book,
    options: &OpportunityOptions,
    filter: &OpportunityFilter,
) -> Result<Opportunities, TooManyItemsets> {
    let at = options.at;
    let holdings = Holdings::on(book, at, Level::Product);
    let mined = mine(&holdings.baskets, holdings.names.len(), &options.mining)?;
    let index = RuleIndex::new(&mined);
    let prices = Prices::new(book, at);
    let open_offers: HashSet<(CustomerIdx, ProductIdx)> = book
        .offers
        .iter()
        .filter(|o| o.offered_on <= at && o.decided_on.is_none_or(|d| d > at))
        .filter(|o| o.outcome.is_none() || o.decided_on.is_some_and(|d| d > at))
        .map(|o| (o.customer, o.product))
        .collect();
    let by_customer = ByCustomer::new(book, &Selection::all());
    let downsold = recent_downsells(book, &by_customer, &holdings, options);
    let n = holdings.len() as u64;
    let families = &book.products;
    let wanted = |kind| filter.kind.is_none_or(|k| k == kind);
    let wanted_customer =
        |c| filter.customer.is_none_or(|x| x == c) && filter.selection.keeps_customer(c);

    // Cross-sell: products of families the customer does not hold.
    let cross: Vec<(Vec<Opportunity>, u64)> = (0..holdings.len())
        .into_par_iter()
        .filter(|&h| {
            let c = holdings.customers[h];
            wanted(OpportunityKind::CrossSell) && wanted_customer(c) && !downsold.contains(&c)
        })
        .map(|h| {
            let c = holdings.customers[h];
            let basket = &holdings.baskets[h];
            let mut held = vec![false; holdings.names.len()];
            let mut held_family = HashSet::new();
            for &p in basket {
                held[p as usize] = true;
                held_family.insert(families.items[p as usize].family);
            }
            let mut out = Vec::new();
            let mut skipped = 0;
            for p in 0..holdings.names.len() as ProductIdx {
                if held_family.contains(&families.items[p as usize].family) {
                    continue;
                }
                let (probability, why) = cross_sell_probability(&index, &held, p, n);
                if probability.is_zero() {
                    continue;
                }
                if open_offers.contains(&(c, p)) {
                    skipped += 1;
                    continue;
                }
                let Some((gain, price_source)) = prices.mrr(c, p, Decimal::ONE) else {
                    continue;
                };
                if !gain.is_positive() {
                    continue;
                }
                out.push(Opportunity {
                    customer: c,
                    kind: OpportunityKind::CrossSell,
                    product: p,
                    from_product: None,
                    probability,
                    gain,
                    expected_gain: Money::from_decimal(probability * gain.as_decimal()),
                    price_source,
                    customer_mrr: holdings.mrr[h],
                    why,
                });
            }
            (out, skipped)
        })
        .collect();
    let mut skipped_open_offer: u64 = cross.iter().map(|(_, s)| s).sum();
    let mut list: Vec<Opportunity> = cross.into_iter().flat_map(|(o, _)| o).collect();

    if wanted(OpportunityKind::Upsell) {
        let context = UpsellContext {
            by_customer: &by_customer,
            holdings: &holdings,
            prices: &prices,
            open_offers: &open_offers,
            downsold: &downsold,
        };
        let (upsell, skipped) = upsells(book, options, &context);
        skipped_open_offer += skipped;
        list.extend(upsell.into_iter().filter(|o| wanted_customer(o.customer)));
    }
    let ids = &book.customers.ids;
    let products = &book.products.ids;
    list.par_sort_unstable_by(|a, b| {
        b.expected_gain
            .cmp(&a.expected_gain)
            .then_with(|| b.gain.cmp(&a.gain))
            .then_with(|| ids.get(a.customer).cmp(ids.get(b.customer)))
            .then_with(|| products.get(a.product).cmp(products.get(b.product)))
    });
    list.retain(|o| filter.selection.keeps_product(o.product));
    let found = list.len();
    if let Some(top) = filter.top {
        list.truncate(top);
    }
    Ok(Opportunities {
        at,
        transactions: n,
        rules: mined.rules.len(),
        skipped_downsell: downsold.len() as u64,
        skipped_open_offer,
        found,
        list,
    })
}

/// The chance a customer holding `held` adds `product`: the confidence of the strongest rule
/// its holdings fire, else the product's popularity among the `n` holders.
pub fn cross_sell_probability(
    index: &RuleIndex,
    held: &[bool],
    product: ProductIdx,
    n: u64,
) -> (Decimal, Why) {
    match index.best(held, product) {
        Some(k) => {
            let r = index.rule(k);
            let why = Why::Rule {
                antecedent: r.antecedent.to_vec(),
                count: r.count,
                antecedent_count: r.antecedent_count,
                lift: r.lift(n),
            };
            (r.confidence(), why)
        }
        None => {
            let holders = index.item_count(product);
            let why = Why::Popularity {
                holders,
                transactions: n,
            };
            let p = if n == 0 {
                Decimal::ZERO
            } else {
                Decimal::from(holders) / Decimal::from(n)
            };
            (p, why)
        }
    }
}

/// Holders with a downsell in the `skip_downsell_months` months up to `at`.
fn recent_downsells(
    book: &Book,
    by_customer: &ByCustomer,
    holdings: &Holdings,
    options: &OpportunityOptions,
) -> HashSet<CustomerIdx> {
    if options.skip_downsell_months == 0 {
        return HashSet::new();
    }
    let to = Month::of(options.at);
    let query = Query {
        from: to.offset(1 - options.skip_downsell_months as i32),
        to,
        rules: options.rules,
    };
    holdings
        .customers
        .par_iter()
        .filter(|&&c| {
            customer_movements(book, &query, by_customer, c)
                .iter()
                .any(|m| m.kind == Kind::Downsell)
        })
        .copied()
        .collect::<Vec<_>>()
        .into_iter()
        .collect()
}

/// What the upsell search reads besides the book.
struct UpsellContext<'a> {
    by_customer: &'a ByCustomer,
    holdings: &'a Holdings,
    prices: &'a Prices<'a>,
    open_offers: &'a HashSet<(CustomerIdx, ProductIdx)>,
    downsold: &'a HashSet<CustomerIdx>,
}

/// Customers using at least the threshold of their plan every month of the window, offered
/// the next tier of its family.
fn upsells(
    book: &Book,
    options: &OpportunityOptions,
    cx: &UpsellContext,
) -> (Vec<Opportunity>, u64) {
    let UpsellContext {
        by_customer,
        holdings,
        prices,
        open_offers,
        downsold,
    } = cx;
    let window = usage_window(options.at, options.usage_months);
    let (probability, offers_accepted, offers_decided) = upsell_probability(book, options.at);
    let mut usage: HashMap<(CustomerIdx, ProductIdx), Vec<UsageMonth>> = HashMap::new();
    for u in &book.usage {
        if window.contains(&u.month) {
            usage
                .entry((u.customer, u.product))
                .or_default()
                .push(UsageMonth {
                    month: u.month,
                    used: u.used,
                    included: u.included,
                });
        }
    }
    let mut keys: Vec<_> = usage.keys().copied().collect();
    keys.sort_unstable();
    let mut out = Vec::new();
    let mut skipped = 0;
    for (c, p) in keys {
        let mut months = usage.remove(&(c, p)).expect("a key of the map");
        months.sort_by_key(|u| u.month);
        months.dedup_by_key(|u| u.month);
        let near_limit = months.len() == window.len()
            && months.iter().all(|u| {
                u.included > Decimal::ZERO && u.used >= options.usage_threshold * u.included
            });
        let Some(h) = holdings.position(c) else {
            continue;
        };
        if !near_limit || downsold.contains(&c) {
            continue;
        }
        let Some(next) = next_tier(book, p) else {
            continue;
        };
        if open_offers.contains(&(c, next)) {
            skipped += 1;
            continue;
        }
        let (mut quantity, mut current) = (Decimal::ZERO, Money::ZERO);
        for &l in by_customer.lines(c as usize) {
            let l = &book.lines.items[l as usize];
            if l.product == p && l.active_on(options.at) {
                quantity += l.quantity.get();
                current += l.mrr();
            }
        }
        if quantity.is_zero() {
            continue;
        }
        let Some((next_mrr, price_source)) = prices.mrr(c, next, quantity) else {
            continue;
        };
        let gain = next_mrr - current;
        if !gain.is_positive() {
            continue;
        }
        out.push(Opportunity {
            customer: c,
            kind: OpportunityKind::Upsell,
            product: next,
            from_product: Some(p),
            probability,
            gain,
            expected_gain: Money::from_decimal(probability * gain.as_decimal()),
            price_source,
            customer_mrr: holdings.mrr[h],
            why: Why::Usage {
                months,
                offers_accepted,
                offers_decided,
            },
        });
    }
    (out, skipped)
}

/// The product of the next tier up in `product`'s family (lowest higher tier, then id).
pub fn next_tier(book: &Book, product: ProductIdx) -> Option<ProductIdx> {
    let products = &book.products;
    let p = &products.items[product as usize];
    let tier = p.tier?;
    (0..products.len() as ProductIdx)
        .filter(|&q| {
            let other = &products.items[q as usize];
            other.family == p.family && other.tier.is_some_and(|t| t > tier)
        })
        .min_by(|&a, &b| {
            (products.items[a as usize].tier, products.ids.get(a))
                .cmp(&(products.items[b as usize].tier, products.ids.get(b)))
        })
}
