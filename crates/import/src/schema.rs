//! The files of the interchange format: their columns, what each column holds, and the
//! columns that identify a row (used by the store to version rows across imports).

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    Text,
    /// An exact decimal (money, quantity, percentage, rate).
    Decimal,
    /// `YYYY-MM-DD`.
    Date,
    /// `YYYY-MM`.
    Month,
    Integer,
}

/// One file of the interchange format.
#[derive(Clone, Copy, Debug)]
pub struct Schema {
    pub file: &'static str,
    /// Lower-case column names, in the canonical order.
    pub columns: &'static [&'static str],
    /// What each column of `columns` holds.
    pub kinds: &'static [ColumnKind],
    /// Columns that must be in the header.
    pub required: &'static [&'static str],
    /// Columns whose values identify a row.
    pub key: &'static [&'static str],
}

impl Schema {
    /// The position of a column.
    pub fn position(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| *c == column)
    }
}

use ColumnKind::{Date as D, Decimal as N, Integer as I, Month as M, Text as T};

pub const CUSTOMERS: Schema = Schema {
    file: "customers.csv",
    columns: &[
        "id",
        "name",
        "registered_on",
        "segment",
        "country",
        "channel",
    ],
    kinds: &[T, T, D, T, T, T],
    required: &["id"],
    key: &["id"],
};

pub const PRODUCTS: Schema = Schema {
    file: "products.csv",
    columns: &[
        "id",
        "name",
        "family",
        "tier",
        "kind",
        "list_price",
        "price_term_months",
        "currency",
    ],
    kinds: &[T, T, T, I, T, N, I, T],
    required: &["id"],
    key: &["id"],
};

pub const SUBSCRIPTIONS: Schema = Schema {
    file: "subscriptions.csv",
    columns: &[
        "id",
        "customer_id",
        "contract_id",
        "product_id",
        "quantity",
        "unit_price",
        "discount_pct",
        "currency",
        "billing_period_months",
        "start_date",
        "end_date",
        "sold_on",
        "revises",
        // Added after version 1 of the format: kept last, so the older columns keep their
        // positions (docs/interchange.md).
        "billing_interval",
        "billing_interval_count",
    ],
    kinds: &[T, T, T, T, N, N, N, T, I, D, D, D, T, T, I],
    required: &[
        "id",
        "customer_id",
        "product_id",
        "unit_price",
        "start_date",
    ],
    key: &["id"],
};

pub const CONTRACTS: Schema = Schema {
    file: "contracts.csv",
    columns: &[
        "id",
        "customer_id",
        "start_date",
        "end_date",
        "renewal_pricing",
        "renewal_uplift_pct",
        "renewal_term_months",
    ],
    kinds: &[T, T, D, D, T, N, I],
    required: &["id", "customer_id", "start_date"],
    key: &["id"],
};

pub const CONTRACTED_PRICES: Schema = Schema {
    file: "contracted_prices.csv",
    columns: &[
        "customer_id",
        "product_id",
        "price",
        "discount_pct",
        "valid_from",
        "valid_to",
    ],
    kinds: &[T, T, N, N, D, D],
    required: &["customer_id", "product_id"],
    key: &["customer_id", "product_id", "valid_from"],
};

pub const FX_RATES: Schema = Schema {
    file: "fx_rates.csv",
    columns: &["month", "currency", "rate"],
    kinds: &[M, T, N],
    required: &["month", "currency", "rate"],
    key: &["month", "currency"],
};

pub const MARKETING_SPEND: Schema = Schema {
    file: "marketing_spend.csv",
    columns: &["month", "channel", "amount"],
    kinds: &[M, T, N],
    required: &["month", "channel", "amount"],
    key: &["month", "channel"],
};

pub const USAGE: Schema = Schema {
    file: "usage.csv",
    columns: &["customer_id", "product_id", "month", "used", "included"],
    kinds: &[T, T, M, N, N],
    required: &["customer_id", "product_id", "month", "used", "included"],
    key: &["customer_id", "product_id", "month"],
};

pub const OFFERS: Schema = Schema {
    file: "offers.csv",
    columns: &[
        "id",
        "customer_id",
        "product_id",
        "kind",
        "offered_on",
        "outcome",
        "decided_on",
        "line_id",
    ],
    kinds: &[T, T, T, T, D, T, D, T],
    required: &["id", "customer_id", "product_id", "kind", "offered_on"],
    key: &["id"],
};

/// Every file, in the order a book is read (subscriptions first: it is the one required).
pub const FILES: [Schema; 9] = [
    SUBSCRIPTIONS,
    CUSTOMERS,
    PRODUCTS,
    CONTRACTS,
    CONTRACTED_PRICES,
    FX_RATES,
    MARKETING_SPEND,
    USAGE,
    OFFERS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_is_consistent() {
        for s in FILES {
            assert_eq!(s.columns.len(), s.kinds.len(), "{}", s.file);
            for c in s.required.iter().chain(s.key) {
                assert!(s.position(c).is_some(), "{}: {c}", s.file);
            }
        }
    }
}
