//! What a customer's page shows and what it may ask for, as pure functions of the book: the
//! customer's contracts as `contract show` reads them, the products they may add (more of
//! what a contract holds, and the cross-sell the opportunity model recommends for them), and
//! an amendment request checked against both and priced by `quote amend`'s own code.

use expansa_contracts::{
    contract, quote_amend, AmendRequest, Change, ContractIndex, ContractView, Precision, Quote,
};
use expansa_ledger::{Book, CustomerIdx, Date, Decimal, ProductIdx};
use expansa_opportunities::{
    opportunities, OpportunityFilter, OpportunityKind, OpportunityOptions,
};

/// The most products one request may name.
pub const MAX_ITEMS: usize = 100;
/// The most licences of one product a request may ask for.
pub const MAX_QUANTITY: u32 = 100_000;
/// The most recommended products a page offers.
pub const MAX_RECOMMENDED: usize = 10;

/// Why a request from the page is refused: each a message for the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Bad input (400).
    Invalid(String),
    /// A product not offered to this customer (403).
    NotOffered(String),
    /// A contract that is not this customer's, or none (404): the same words either way.
    NoContract(String),
}

/// A product the page offers to add to a contract, with its price for one price term from
/// the quote code (the customer's contracted price, else the list price).
#[derive(Debug, Clone)]
pub struct Addable {
    pub product_id: String,
    pub name: String,
    /// The units held today (0 for a recommended product).
    pub held: Decimal,
    pub unit_price: Decimal,
    pub currency: expansa_ledger::Currency,
    pub price_term_months: u32,
}

/// One of the customer's contracts as of `today`, and what can be added to it.
#[derive(Debug, Clone)]
pub struct Contract {
    pub view: ContractView,
    /// Whether it can be amended from `today`: it has started, not ended, and has an end
    /// (quantities of an evergreen contract are not amended).
    pub open: bool,
    pub addable: Vec<Addable>,
}

/// The product's display name (its id when it has none).
pub fn product_name(book: &Book, product: &str) -> String {
    book.products
        .ids
        .find(product)
        .and_then(|p| book.products.items[p as usize].name.clone())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| product.to_string())
}

/// The ids of customer `customer`'s contracts, in the book's order.
fn contract_ids(book: &Book, customer: CustomerIdx) -> Vec<String> {
    let index = ContractIndex::new(book);
    (0..index.len() as u32)
        .filter(|&k| {
            let id = index.id(k);
            match index.row(id) {
                Some(row) => row.customer == customer,
                None => index
                    .lines_of(k)
                    .first()
                    .is_some_and(|&l| book.lines.items[l as usize].customer == customer),
            }
        })
        .map(|k| index.id(k).to_string())
        .collect()
}

/// The cross-sell products the opportunity model recommends for `customer` on `today`, best
/// first (an upsell is a change of plan, which staff make).
pub fn recommended(book: &Book, customer: CustomerIdx, today: Date) -> Vec<ProductIdx> {
    let filter = OpportunityFilter {
        customer: Some(customer),
        kind: Some(OpportunityKind::CrossSell),
        top: Some(MAX_RECOMMENDED),
        ..OpportunityFilter::default()
    };
    opportunities(book, &OpportunityOptions::new(today), &filter)
        .map(|found| found.list.iter().map(|o| o.product).collect())
        .unwrap_or_default()
}

/// The customer's contracts on `today`, each with what it may add.
pub fn contracts(book: &Book, customer_id: &str, today: Date) -> Vec<Contract> {
    let Some(customer) = book.customers.ids.find(customer_id) else {
        return Vec::new();
    };
    let recommended = recommended(book, customer, today);
    contract_ids(book, customer)
        .iter()
        .filter_map(|id| contract(book, id, today).ok())
        .map(|view| {
            let open = view.start <= today && view.end.is_some_and(|end| today <= end);
            let mut addable: Vec<Addable> = Vec::new();
            if open {
                for h in &view.lines {
                    if addable.iter().any(|a| a.product_id == h.product_id) {
                        continue;
                    }
                    addable.push(Addable {
                        product_id: h.product_id.clone(),
                        name: product_name(book, &h.product_id),
                        held: h.quantity,
                        unit_price: h.term_unit_price,
                        currency: h.currency,
                        price_term_months: h.price_term_months,
                    });
                }
                for &p in &recommended {
                    let product_id = book.products.ids.get(p).to_string();
                    if addable.iter().any(|a| a.product_id == product_id) {
                        continue;
                    }
                    // Priced by the quote code itself: one unit from today.
                    let one = AmendRequest {
                        contract: view.id.clone(),
                        effective: today,
                        changes: vec![Change::Add(product_id.clone(), Decimal::ONE)],
                        precision: Precision::MonthDay,
                    };
                    if let Some(line) = quote_amend(book, &one)
                        .ok()
                        .and_then(|q| q.lines.into_iter().next())
                    {
                        addable.push(Addable {
                            name: product_name(book, &product_id),
                            product_id,
                            held: Decimal::ZERO,
                            unit_price: line.unit_price,
                            currency: line.currency,
                            price_term_months: line.price_term_months,
                        });
                    }
                }
            }
            Contract {
                view,
                open,
                addable,
            }
        })
        .collect()
}

/// What the page asks for: the quantities wanted on one contract, from today.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Wanted {
    pub contract: String,
    pub items: Vec<WantedItem>,
}

/// A product and the total quantity wanted of it (held + added).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct WantedItem {
    pub product: String,
    pub quantity: u32,
}

/// The amendment `wanted` asks of customer `customer_id`'s contract, from `today`, checked
/// against what the page offers them, and priced by `quote amend`'s code.
pub fn price(
    book: &Book,
    customer_id: &str,
    wanted: &Wanted,
    today: Date,
) -> Result<(AmendRequest, Quote), Refusal> {
    if wanted.items.len() > MAX_ITEMS {
        return Err(Refusal::Invalid(format!(
            "{} products in one request: at most {MAX_ITEMS}",
            wanted.items.len()
        )));
    }
    // Another customer's contract and no contract at all are one answer: nothing leaks.
    let no_contract = || {
        Refusal::NoContract(format!(
            "there is no contract {:?} on your page",
            wanted.contract
        ))
    };
    let mine = contracts(book, customer_id, today);
    let found = mine
        .iter()
        .find(|c| c.view.id == wanted.contract)
        .ok_or_else(no_contract)?;
    if !found.open {
        let message = match found.view.end {
            Some(end) if end < today => format!(
                "contract {} ended on {end}: to renew it, talk to us",
                found.view.id
            ),
            None => format!(
                "contract {} has no end date (evergreen): its quantities are changed by our team",
                found.view.id
            ),
            _ => format!(
                "contract {} starts on {}: it can be changed from that day",
                found.view.id, found.view.start
            ),
        };
        return Err(Refusal::Invalid(message));
    }
    let mut changes = Vec::new();
    for (k, item) in wanted.items.iter().enumerate() {
        if wanted.items[..k].iter().any(|i| i.product == item.product) {
            return Err(Refusal::Invalid(format!(
                "{} is named twice in the request",
                item.product
            )));
        }
        if item.quantity > MAX_QUANTITY {
            return Err(Refusal::Invalid(format!(
                "{}: {} licences: at most {MAX_QUANTITY} in one request",
                item.product, item.quantity
            )));
        }
        let Some(offer) = found.addable.iter().find(|a| a.product_id == item.product) else {
            return Err(Refusal::NotOffered(format!(
                "{} is not offered to you on contract {}",
                item.product, found.view.id
            )));
        };
        let quantity = Decimal::from(item.quantity);
        if quantity < offer.held {
            return Err(Refusal::Invalid(format!(
                "{}: {quantity} is below the {} you hold; to reduce it, talk to us",
                offer.name, offer.held
            )));
        }
        if quantity > offer.held {
            changes.push(Change::Set(item.product.clone(), quantity));
        }
    }
    if changes.is_empty() {
        return Err(Refusal::Invalid(
            "nothing to price: raise a quantity first".into(),
        ));
    }
    let request = AmendRequest {
        contract: found.view.id.clone(),
        effective: today,
        changes,
        precision: Precision::MonthDay,
    };
    let quote = quote_amend(book, &request).map_err(|e| Refusal::Invalid(e.to_string()))?;
    Ok((request, quote))
}
