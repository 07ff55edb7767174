//! Stripe: subscriptions, their items, prices, coupons and invoices turned into a book.
//!
//! # Input
//! Two forms, told apart by what the input holds:
//! - **API objects as JSON lists** ([`api`]): `subscriptions.json` (a list object
//!   `{"object": "list", "data": [...]}`, an array of such pages, or an array of
//!   subscription objects, with `items.data[].price` and the discounts expanded), and
//!   optionally `invoices.json`, `customers.json`, `products.json` beside it. A single
//!   `.json` file given as the input is read as the subscriptions.
//! - **Warehouse tables** ([`warehouse`]), as Fivetran or Airbyte sync them:
//!   `subscription` (or `subscription_history`), `subscription_item`, `price` and/or `plan`,
//!   `coupon`, `discount` (or `subscription_discount`), `invoice_line_item`, `customer`,
//!   `product`; each `NAME.csv` or `NAME_data.csv`. Prices, plans, coupons and products
//!   (small) are kept whole; the subscription-keyed tables and the customers are spread over
//!   parts by customer (temporary files, [`crate::partition`]) and converted a part at a time:
//!   memory holds one part's subscriptions (by id, with the few fields the lines need) and
//!   their items' compact price histories from the invoice lines, whatever the export's size.
//!
//! Anything else (no subscriptions file, a subscription table without Stripe's columns, a
//! `subscriptions.json` that is not JSON or not a list) is one problem naming the file and
//! column, and nothing is written.
//!
//! # Rules
//! Stripe's objects as its API reference defines them: subscription
//! (<https://docs.stripe.com/api/subscriptions/object>), price
//! (<https://docs.stripe.com/api/prices/object>), coupon
//! (<https://docs.stripe.com/api/coupons/object>), discount
//! (<https://docs.stripe.com/api/discounts/object>), invoice line item
//! (<https://docs.stripe.com/api/invoice-line-item/object>).
//!
//! - **One line per subscription item**: customer = the subscription's customer, contract =
//!   the subscription id, product = the price's product, quantity = the item's quantity (1
//!   when absent), unit price = the price's `unit_amount_decimal` (else `unit_amount`) in
//!   units of its currency by the currency's minor unit (`2999` USD = 29.99; `1000` JPY, a
//!   zero-decimal currency, = 1000: <https://docs.stripe.com/currencies#zero-decimal>),
//!   currency = the price's, billing period = `recurring.interval` × `interval_count` (day,
//!   week, month, year). The line's id is the item's id.
//! - **Start** = the later of `start_date` and `trial_end` (a free trial is no revenue: the
//!   line starts when it ends, <https://docs.stripe.com/billing/subscriptions/trials>); an
//!   item created on a later day than its subscription starts on its own `created` day.
//!   **End** = `ended_at`; else, for a canceled subscription, `canceled_at`; else, with
//!   `cancel_at_period_end`, `cancel_at` or `current_period_end`; else a scheduled
//!   `cancel_at`; else none (evergreen). Instants are read by [`crate::time::parse_when`] and
//!   turned into days in `--timezone`; an end at 00:00 ends the day before
//!   ([`crate::time::end_day`]).
//! - **Left out** (skipped, with the reason): a metered price (`recurring.usage_type =
//!   metered`, usage not recurring revenue) → `metered`; a one-time price or an invoice item
//!   outside a subscription → `one_off`; status `incomplete`, `incomplete_expired` or
//!   `paused`, or a subscription that ended before it started → `not_billable`; one that
//!   ended before (or when) its trial did → `trial_at_zero`; a free price or a quantity of 0
//!   → `zero_amount`.
//! - **Refused**: an item (or discount, invoice line) naming a subscription, price or coupon
//!   the source does not have, a subscription naming a customer the customer table does not
//!   have (without a customer table, the customer is taken as named) → `missing_reference`; rows contradicting each other (an item
//!   created after its subscription ended, an invoice period after it, an amount-off coupon
//!   in another currency than the line, a second row for a subscription, an item or a
//!   discount, an invoice line naming an item of another subscription: by the item table,
//!   else by the first invoice line naming it) → `contradicts`; the same item or discount row
//!   again → `duplicate` (applied once); a value that cannot be read or a
//!   price that cannot be priced exactly → `bad_value`. Tiered prices
//!   (`billing_scheme = tiered`) and prices without a unit amount are refused rather than
//!   guessed; package pricing (`transform_quantity.divide_by` with `round` up or down) is
//!   priced exactly: quantity = the number of packages, unit price = the package's price.
//! - **Coupons** (a discount applies a coupon to a subscription, from its `start`):
//!   `percent_off` → the line's `discount_pct` (several discounts compound);
//!   `amount_off` → a lower unit price (the amount comes off each period's invoice once, so
//!   per unit it is `amount_off / quantity`, never below zero), in the coupon's currency.
//!   The discount is refused (`contradicts`) when its currency is not the line's, when
//!   `amount_off / quantity` is not exact (no exact unit price can be written), and when
//!   the subscription has several priced items (Stripe splits the amount between them in a
//!   way the export does not show); the lines are then written undiscounted. Duration `forever` → from the discount's start on;
//!   `repeating` → the billing periods that begin within `duration_in_months` months of
//!   the start (or before the discount's `end` when the source gives it); `once` → the
//!   first billing period beginning on or after the start. Where a discount starts or stops
//!   inside a line, the line is split: the later part `revises` the earlier.
//! - **History**: a subscription object holds only its current state. Where invoice lines
//!   are given (`invoice_line_item` / `invoices.json`), each item's past prices are rebuilt
//!   from its lines' service periods (`period_start` .. `period_end`, an end at 00:00 being
//!   the day before), skipping prorations: consecutive periods at the same price and
//!   quantity are one line, and a change starts a new line that `revises` the previous one
//!   (the id `ITEM@START-DAY`). The current state continues the last invoiced price from
//!   the day after its last period. The months of an item before its first invoice line
//!   cannot be rebuilt: they take the first invoiced price and are listed in the report's
//!   `not_rebuilt`; so are the months of an item with no invoice line at all before its
//!   current period, and, without any invoices, the whole book is said to carry current
//!   prices. An item that is only in invoice lines (removed from its subscription) becomes
//!   lines of its own, ending with its last invoiced period.
//! - **Customers**: a `customers.csv` row for each customer of a written line (name and
//!   `registered_on` = the day of `created`, from the customer table or an expanded
//!   `customer`); **products**: the product table's rows, and any product a line names.
//! - Every source row that the conversion reads gets exactly one report entry (prices,
//!   coupons and subscriptions at the end, once it is known whether a line used them).
//!   Tables the conversion does not need (charges, payouts, ...) are not read.

mod api;
mod engine;
mod warehouse;

use crate::{Context, Conversion, Input, Options, SourceKind, Spec};
use expansa_import::{BookErrors, Problem};
use std::path::Path;

/// Converts a Stripe export (see the module documentation for the forms and rules).
/// Errors: one problem when the input is not a Stripe export (naming the file and, for a
/// table, the missing column), or when a file cannot be read.
pub fn convert(ctx: &mut Context) -> Result<(), Problem> {
    let input = ctx.input;
    if input.path.is_file() {
        let is_json = input
            .path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let path = input.path.clone();
        return if is_json {
            api::convert(ctx, &path)
        } else {
            warehouse::convert(ctx, &path)
        };
    }
    if let Some(path) = input.find(api::SUBSCRIPTIONS) {
        return api::convert(ctx, &path);
    }
    let tables = warehouse::find(input, warehouse::SUBSCRIPTION)
        .or_else(|| warehouse::find(input, &["subscription_history"]));
    if let Some(path) = tables {
        return warehouse::convert(ctx, &path);
    }
    Err(input.problem(&format!(
        "holds no Stripe subscriptions: expected subscriptions.json (API objects) or a \
         subscription table (subscription.csv, subscription_data.csv or \
         subscription_history.csv, as Fivetran or Airbyte sync them); it has: {}",
        {
            let l = input.listing();
            if l.is_empty() {
                "nothing".to_string()
            } else {
                l.join(", ")
            }
        }
    )))
}

/// Converts one subscription object alone (a webhook event's `data.object`,
/// <https://docs.stripe.com/api/events/object>) by the rules above: the very conversion of a
/// `subscriptions.json` holding only it (written into `work`, an empty folder), whose book is
/// written into `work/book`. Without invoices, the lines carry the subscription's current
/// prices (the report's `not_rebuilt`).
pub fn convert_subscription(
    object: &serde_json::Value,
    options: &Options,
    work: &Path,
) -> Result<Conversion, BookErrors> {
    let file = work.join(api::SUBSCRIPTIONS[0]);
    let book = work.join("book");
    let written = serde_json::to_vec(std::slice::from_ref(object))
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&file, bytes))
        .and_then(|()| std::fs::create_dir(&book));
    if let Err(e) = written {
        return Err(vec![crate::book::write_problem(work, e)].into());
    }
    let input = Input::new(&file, options.encoding);
    crate::convert_into(&Spec::Source(SourceKind::Stripe), &input, options, &book)
}
