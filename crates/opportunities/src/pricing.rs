//! What a product would add to a customer's MRR: its contracted price, else its list price,
//! else the median MRR of the product's lines.

use expansa_ledger::{Book, CustomerIdx, Date, Decimal, Money, Month, ProductIdx};
use hashbrown::HashMap;
use serde::Serialize;

/// Where a price came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceSource {
    /// contracted_prices.csv, valid on the day.
    ContractedPrice,
    /// products.csv `list_price` over `price_term_months`.
    ListPrice,
    /// The median MRR of the product's lines active on the day (else of all its lines).
    MedianMrr,
}

/// Prices of products on one day, in the reporting currency.
pub struct Prices<'a> {
    book: &'a Book,
    day: Date,
    /// Median line MRR of each product, if it has lines.
    medians: Vec<Option<Money>>,
    /// Rows of contracted_prices.csv by (customer, product).
    contracted: HashMap<(CustomerIdx, ProductIdx), Vec<usize>>,
}

impl<'a> Prices<'a> {
    pub fn new(book: &'a Book, day: Date) -> Prices<'a> {
        let mut active: Vec<Vec<Money>> = vec![Vec::new(); book.products.len()];
        let mut all: Vec<Vec<Money>> = vec![Vec::new(); book.products.len()];
        for l in &book.lines.items {
            all[l.product as usize].push(l.mrr());
            if l.active_on(day) {
                active[l.product as usize].push(l.mrr());
            }
        }
        let medians = active
            .into_iter()
            .zip(all)
            .map(|(a, b)| median(if a.is_empty() { b } else { a }))
            .collect();
        let mut contracted: HashMap<_, Vec<usize>> = HashMap::new();
        for (k, c) in book.contracted_prices.iter().enumerate() {
            contracted
                .entry((c.customer, c.product))
                .or_default()
                .push(k);
        }
        Prices {
            book,
            day,
            medians,
            contracted,
        }
    }

    /// The MRR of one unit for `customer`: contracted price, else list price (both per
    /// `price_term_months`, converted at the day's month rate when in another currency).
    pub fn unit_mrr(
        &self,
        customer: CustomerIdx,
        product: ProductIdx,
    ) -> Option<(Money, PriceSource)> {
        let p = &self.book.products.items[product as usize];
        let term = Decimal::from(p.price_term_months.max(1));
        let rows = self
            .contracted
            .get(&(customer, product))
            .map_or(&[][..], Vec::as_slice);
        let contracted = rows
            .iter()
            .map(|&k| &self.book.contracted_prices[k])
            .find(|c| c.valid_on(self.day));
        let (price, source) = match contracted {
            Some(c) => (
                c.price.unit_price(p.list_price)?,
                PriceSource::ContractedPrice,
            ),
            None => (p.list_price?, PriceSource::ListPrice),
        };
        let rate = self
            .book
            .rate_to_reporting(p.currency, Month::of(self.day))?;
        Some((Money::from_decimal(price * rate / term), source))
    }

    /// The MRR `quantity` units of `product` would bring `customer`, and where the price came
    /// from; the median line MRR when the product has no price (whatever the quantity).
    pub fn mrr(
        &self,
        customer: CustomerIdx,
        product: ProductIdx,
        quantity: Decimal,
    ) -> Option<(Money, PriceSource)> {
        match self.unit_mrr(customer, product) {
            Some((unit, source)) => {
                Some((Money::from_decimal(unit.as_decimal() * quantity), source))
            }
            None => self.medians[product as usize].map(|m| (m, PriceSource::MedianMrr)),
        }
    }
}

/// The median of some amounts (the mean of the middle two for an even count).
pub fn median(mut values: Vec<Money>) -> Option<Money> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        Money::from_decimal(
            (values[n / 2 - 1].as_decimal() + values[n / 2].as_decimal()) / Decimal::TWO,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let m = |v: &[i64]| {
            median(
                v.iter()
                    .map(|&x| Money::from_decimal(Decimal::from(x)))
                    .collect(),
            )
        };
        assert_eq!(m(&[]), None);
        assert_eq!(m(&[5, 1, 3]), Some(Money::from_decimal(Decimal::from(3))));
        assert_eq!(
            m(&[4, 1, 3, 2]),
            Some(Money::from_decimal(Decimal::new(25, 1)))
        );
    }
}
