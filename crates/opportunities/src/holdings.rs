//! What each customer holds on a day: the transactions of association mining.

use expansa_ledger::{Book, CustomerIdx, Date, Money};
use rayon::prelude::*;

/// The items of a transaction: products, or product families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Level {
    #[default]
    Product,
    Family,
}

/// The customers holding something on one day, with what they hold.
#[derive(Clone, Debug)]
pub struct Holdings {
    pub level: Level,
    pub day: Date,
    /// Names of every item (product or family ids), indexed by item.
    pub names: Vec<String>,
    /// Customers holding at least one item, in index order.
    pub customers: Vec<CustomerIdx>,
    /// Items of each of those customers, sorted and without repeats.
    pub baskets: Vec<Vec<u32>>,
    /// Each customer's MRR on the day (the sum of its active lines).
    pub mrr: Vec<Money>,
}

impl Holdings {
    /// The holdings of every customer of `book` on `day`.
    pub fn on(book: &Book, day: Date, level: Level) -> Holdings {
        let products = &book.products;
        let item_of = |product: u32| match level {
            Level::Product => product,
            Level::Family => products.items[product as usize].family,
        };
        let names: Vec<String> = match level {
            Level::Product => products.ids.iter().map(str::to_string).collect(),
            Level::Family => products.families.iter().map(str::to_string).collect(),
        };
        let mut held: Vec<(CustomerIdx, u32, Money)> = book
            .lines
            .items
            .par_iter()
            .filter(|l| l.active_on(day))
            .map(|l| (l.customer, item_of(l.product), l.mrr()))
            .collect();
        held.par_sort_unstable_by_key(|&(c, i, _)| (c, i));
        let mut h = Holdings {
            level,
            day,
            names,
            customers: Vec::new(),
            baskets: Vec::new(),
            mrr: Vec::new(),
        };
        for (c, item, mrr) in held {
            if h.customers.last() != Some(&c) {
                h.customers.push(c);
                h.baskets.push(Vec::new());
                h.mrr.push(Money::ZERO);
            }
            let basket = h.baskets.last_mut().expect("pushed above");
            if basket.last() != Some(&item) {
                basket.push(item);
            }
            *h.mrr.last_mut().expect("pushed above") += mrr;
        }
        h
    }

    /// Number of transactions (customers holding something).
    pub fn len(&self) -> usize {
        self.customers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }

    /// The position of `customer` among the holders, if it holds anything.
    pub fn position(&self, customer: CustomerIdx) -> Option<usize> {
        self.customers.binary_search(&customer).ok()
    }
}
