//! The core vocabulary of expansa: exact [`Money`], calendar [`Month`]s, ISO [`Currency`]
//! codes and the in-memory [`Book`] of customers, products and subscription lines.
//!
//! Nothing here does I/O; every other crate builds on these types.

mod book;
mod currency;
mod intern;
mod locale;
mod money;
mod month;
mod period;
mod small_decimal;

pub use book::*;
pub use currency::Currency;
pub use intern::{Duplicate, Interner, TextColumn};
pub use jiff::civil::Date;
pub use locale::{csv_field, csv_rows, Format, Locale};
pub use money::{fixed, line_mrr, rounded, Money, MrrError, PackedMoney, SCALE};
pub use month::{parse_date, BadMonth, Month};
pub use period::{
    BillingPeriod, IntervalUnit, MAX_PERIOD_DAYS, MAX_PERIOD_MONTHS, MAX_PERIOD_WEEKS,
    MAX_PERIOD_YEARS,
};
pub use rust_decimal::{Decimal, RoundingStrategy};
pub use small_decimal::SmallDecimal;
