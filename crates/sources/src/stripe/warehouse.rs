//! Stripe's warehouse tables, as Fivetran (and, for the same column names, Airbyte) sync
//! them: one CSV per table, streamed row by row. Table names are matched with and without
//! Fivetran's `_data` suffix, singular or plural (`subscription.csv`,
//! `subscription_data.csv`, `subscriptions.csv`); columns by name, any case, with the
//! aliases Airbyte uses (`customer` for `customer_id`, `price` for `price_id`, ...).
//!
//! Column shapes follow Fivetran's Stripe schema as its dbt package seeds it
//! (<https://github.com/fivetran/dbt_stripe_source>, the shared sample
//! `shared/data/exports/stripe-fivetran/`).

use super::engine::{CouponIn, DiscIn, Engine, InvIn, ItemIn, PriceIn, Src, SubIn, Val};
use crate::input::{field, Input, Table};
use crate::Context;
use expansa_import::{Problem, SharedRecord as Record};
use std::path::{Path, PathBuf};

/// Table names (without `.csv` and `_data`) by what they hold.
pub(super) const SUBSCRIPTION: &[&str] = &["subscription", "subscriptions"];
const SUBSCRIPTION_HISTORY: &[&str] = &["subscription_history"];
const ITEM: &[&str] = &["subscription_item", "subscription_items"];
const PRICE: &[&str] = &["price", "prices"];
const PLAN: &[&str] = &["plan", "plans"];
const COUPON: &[&str] = &["coupon", "coupons"];
const DISCOUNT: &[&str] = &["discount", "discounts"];
const SUBSCRIPTION_DISCOUNT: &[&str] = &["subscription_discount", "subscription_discounts"];
const INVOICE_LINE: &[&str] = &["invoice_line_item", "invoice_line_items"];
const CUSTOMER: &[&str] = &["customer", "customers"];
const PRODUCT: &[&str] = &["product", "products"];

/// The file of a table in the input folder, by any of its names.
pub(super) fn find(input: &Input, bases: &[&str]) -> Option<PathBuf> {
    let names: Vec<String> = bases
        .iter()
        .flat_map(|b| [format!("{b}.csv"), format!("{b}_data.csv")])
        .collect();
    input.find(&names)
}

/// A column found by the first of its names present; `name` is what problems call it.
#[derive(Clone, Copy)]
struct Col {
    at: Option<usize>,
    name: &'static str,
}

fn col(t: &Table, names: &[&'static str]) -> Col {
    for n in names {
        if let Some(at) = t.column(n) {
            return Col {
                at: Some(at),
                name: n,
            };
        }
    }
    Col {
        at: None,
        name: names.first().copied().unwrap_or(""),
    }
}

/// A column the table must have: one clear problem (file, column) otherwise.
fn require(t: &Table, names: &[&'static str], what: &str) -> Result<Col, Problem> {
    let c = col(t, names);
    if c.at.is_some() {
        return Ok(c);
    }
    Err(Problem::new(
        t.file(),
        1,
        c.name,
        "",
        &format!(
            "no such column: is this {what}? (the header has {})",
            t.names().join(", ")
        ),
    ))
}

fn val<'a>(r: &'a Record, c: Col) -> Val<'a> {
    Val::new(field(r, c.at), c.name)
}

fn open(path: &Path, ctx: &Context) -> Result<Table, Problem> {
    Table::open(path, ctx.options.encoding)
}

/// Reads rows until the end, giving each with its id (a row without an id is refused).
fn each_row(
    ctx: &mut Context,
    t: &mut Table,
    id: Col,
    mut f: impl FnMut(&mut Context, &Src, &Record) -> Result<(), Problem>,
) -> Result<(), Problem> {
    let file = t.file().to_string();
    while let Some(r) = t.next_row()? {
        let Some(row_id) = field(&r, id.at) else {
            ctx.report
                .refused(&file, r.line, "", "bad_value", id.name, "", "no id");
            continue;
        };
        let src = Src {
            file: &file,
            line: r.line,
            id: row_id,
        };
        f(ctx, &src, &r)?;
    }
    Ok(())
}

/// Converts a folder of warehouse tables whose subscription table is `subs`.
pub(super) fn convert(ctx: &mut Context, subs: &Path) -> Result<(), Problem> {
    let mut engine = Engine::new(&ctx.options.timezone);
    let history_table = find(ctx.input, SUBSCRIPTION_HISTORY);
    let history_only = history_table.as_deref() == Some(subs);
    // The subscription table first: a file that is not Stripe's says so by its columns.
    let mut st = open(subs, ctx)?;
    let what = "a Stripe subscription table";
    let s_id = require(&st, &["id"], what)?;
    let s_customer = require(&st, &["customer_id", "customer"], what)?;
    let s_status = require(&st, &["status"], what)?;
    let Some(items) = find(ctx.input, ITEM) else {
        return Err(ctx.input.problem(
            "has no subscription_item table (subscription_item.csv or \
             subscription_item_data.csv): a Stripe subscription's prices are on its items",
        ));
    };
    let mut not_read: Vec<String> = Vec::new();
    if let (Some(h), false) = (&history_table, history_only) {
        not_read.push(format!(
            "{} (the current state is in {})",
            crate::input::display_name(h),
            crate::input::display_name(subs)
        ));
    }

    // Products, prices, plans and coupons: small tables, kept whole.
    if let Some(p) = find(ctx.input, PRODUCT) {
        let mut t = open(&p, ctx)?;
        let id = require(&t, &["id"], "a Stripe product table")?;
        let name = col(&t, &["name"]);
        each_row(ctx, &mut t, id, |ctx, src, r| {
            engine.product_row(ctx, Some(src), src.id, field(r, name.at))
        })?;
    }
    let mut price_files = Vec::new();
    for (bases, is_plan) in [(PRICE, false), (PLAN, true)] {
        let Some(p) = find(ctx.input, bases) else {
            continue;
        };
        let mut t = open(&p, ctx)?;
        let what = if is_plan {
            "a Stripe plan table"
        } else {
            "a Stripe price table"
        };
        price_files.push(t.file().to_string());
        let id = require(&t, &["id"], what)?;
        let product = require(&t, &["product_id", "product"], what)?;
        let currency = require(&t, &["currency"], what)?;
        let c = |names: &[&'static str]| col(&t, names);
        let (amount_decimal, amount, kind, interval, count, usage, scheme, divide, round) =
            if is_plan {
                (
                    c(&["amount_decimal"]),
                    c(&["amount"]),
                    c(&["type"]),
                    c(&["interval"]),
                    c(&["interval_count"]),
                    c(&["usage_type"]),
                    c(&["billing_scheme"]),
                    c(&["transform_usage_divide_by"]),
                    c(&["transform_usage_round"]),
                )
            } else {
                (
                    c(&["unit_amount_decimal"]),
                    c(&["unit_amount"]),
                    c(&["type"]),
                    c(&["recurring_interval", "interval"]),
                    c(&["recurring_interval_count", "interval_count"]),
                    c(&["recurring_usage_type", "usage_type"]),
                    c(&["billing_scheme"]),
                    c(&["transform_quantity_divide_by"]),
                    c(&["transform_quantity_round"]),
                )
            };
        each_row(ctx, &mut t, id, |ctx, src, r| {
            let p = PriceIn {
                product: val(r, product),
                currency: val(r, currency),
                unit_amount_decimal: val(r, amount_decimal),
                unit_amount: val(r, amount),
                kind: val(r, kind),
                interval: val(r, interval),
                interval_count: val(r, count),
                usage_type: val(r, usage),
                billing_scheme: val(r, scheme),
                divide_by: val(r, divide),
                round: val(r, round),
            };
            engine.price_row(ctx, src, &p);
            Ok(())
        })?;
    }
    if price_files.is_empty() {
        return Err(ctx.input.problem(
            "has no price or plan table (price.csv, plan.csv or their _data forms): the \
             items' prices cannot be told",
        ));
    }
    engine.price_file = price_files.join(" or ");
    engine.coupon_file = "the coupon table".to_string();
    if let Some(p) = find(ctx.input, COUPON) {
        let mut t = open(&p, ctx)?;
        let what = "a Stripe coupon table";
        engine.coupon_file = t.file().to_string();
        let id = require(&t, &["id"], what)?;
        let duration = require(&t, &["duration"], what)?;
        let pct = col(&t, &["percent_off"]);
        let off = col(&t, &["amount_off"]);
        let currency = col(&t, &["currency"]);
        let months = col(&t, &["duration_in_months"]);
        each_row(ctx, &mut t, id, |ctx, src, r| {
            let c = CouponIn {
                percent_off: val(r, pct),
                amount_off: val(r, off),
                currency: val(r, currency),
                duration: val(r, duration),
                duration_in_months: val(r, months),
            };
            engine.coupon_row(ctx, src, &c);
            Ok(())
        })?;
    }

    // Subscriptions: kept by id with the few fields the lines need.
    engine.sub_file = st.file().to_string();
    let sc = |names: &[&'static str]| col(&st, names);
    let (start_date, created, trial_end, cancel_at, at_period_end) = (
        sc(&["start_date", "start"]),
        sc(&["created"]),
        sc(&["trial_end"]),
        sc(&["cancel_at"]),
        sc(&["cancel_at_period_end"]),
    );
    let (canceled_at, ended_at, cps, cpe, active) = (
        sc(&["canceled_at"]),
        sc(&["ended_at"]),
        sc(&["current_period_start"]),
        sc(&["current_period_end"]),
        sc(&["_fivetran_active"]),
    );
    each_row(ctx, &mut st, s_id, |ctx, src, r| {
        if history_only {
            let v = field(r, active.at).map(str::to_ascii_lowercase);
            if matches!(v.as_deref(), Some("false") | Some("f") | Some("0")) {
                ctx.report.skipped(
                    src.file,
                    src.line,
                    src.id,
                    "not_used",
                    "an earlier version of the subscription (_fivetran_active = false): its \
                     prices are rebuilt from invoice lines",
                );
                return Ok(());
            }
        }
        let s = SubIn {
            nested: false,
            customer: val(r, s_customer),
            status: val(r, s_status),
            start_date: val(r, start_date),
            created: val(r, created),
            trial_end: val(r, trial_end),
            cancel_at: val(r, cancel_at),
            cancel_at_period_end: val(r, at_period_end),
            canceled_at: val(r, canceled_at),
            ended_at: val(r, ended_at),
            current_period_start: val(r, cps),
            current_period_end: val(r, cpe),
        };
        engine.sub_row(ctx, src, &s);
        Ok(())
    })?;

    // Discounts: Fivetran's `discount` table, else the older `subscription_discount`.
    let discount = find(ctx.input, DISCOUNT);
    let sub_discount = find(ctx.input, SUBSCRIPTION_DISCOUNT);
    if let (Some(_), Some(other)) = (&discount, &sub_discount) {
        not_read.push(format!(
            "{} (the discounts are read from the discount table)",
            crate::input::display_name(other)
        ));
    }
    if let Some(p) = discount.or(sub_discount) {
        let mut t = open(&p, ctx)?;
        let what = "a Stripe discount table";
        let id = require(&t, &["id"], what)?;
        let coupon = require(&t, &["coupon_id", "coupon"], what)?;
        let sub = col(&t, &["subscription_id", "subscription"]);
        let (start, end) = (col(&t, &["start"]), col(&t, &["end"]));
        each_row(ctx, &mut t, id, |ctx, src, r| {
            let d = DiscIn {
                sub: val(r, sub),
                coupon: val(r, coupon),
                start: val(r, start),
                end: val(r, end),
            };
            engine.discount_row(ctx, src, &d);
            Ok(())
        })?;
    }

    // Invoice lines: the price history of each item, kept compact (one stretch per price).
    if let Some(p) = find(ctx.input, INVOICE_LINE) {
        engine.has_invoices = true;
        let mut t = open(&p, ctx)?;
        let what = "a Stripe invoice line item table";
        let id = require(&t, &["id"], what)?;
        let ps = require(&t, &["period_start"], what)?;
        let pe = require(&t, &["period_end"], what)?;
        let sub = require(&t, &["subscription_id", "subscription"], what)?;
        let c = |names: &[&'static str]| col(&t, names);
        let (kind, item, price, qty, amount, proration) = (
            c(&["type", "source_type"]),
            c(&["subscription_item_id", "subscription_item"]),
            c(&["price_id", "plan_id", "price", "plan"]),
            c(&["quantity"]),
            c(&["amount"]),
            c(&["proration"]),
        );
        each_row(ctx, &mut t, id, |ctx, src, r| {
            let l = InvIn {
                kind: val(r, kind),
                sub: val(r, sub),
                item: val(r, item),
                price: val(r, price),
                quantity: val(r, qty),
                amount: val(r, amount),
                proration: val(r, proration),
                period_start: val(r, ps),
                period_end: val(r, pe),
            };
            engine.invoice_row(ctx, src, &l, None);
            Ok(())
        })?;
    }

    // Items, streamed: each becomes its lines at once.
    let mut t = open(&items, ctx)?;
    let what = "a Stripe subscription item table";
    let id = require(&t, &["id"], what)?;
    let sub = require(&t, &["subscription_id", "subscription"], what)?;
    let price = require(&t, &["price_id", "plan_id", "price", "plan"], what)?;
    let (qty, created, cps) = (
        col(&t, &["quantity"]),
        col(&t, &["created"]),
        col(&t, &["current_period_start"]),
    );
    if engine.needs_item_count() {
        // An amount off is taken once per invoice: count the priced items first.
        let mut first = open(&items, ctx)?;
        while let Some(r) = first.next_row()? {
            engine.count_item(field(&r, sub.at), field(&r, price.at));
        }
    }
    each_row(ctx, &mut t, id, |ctx, src, r| {
        let it = ItemIn {
            sub: val(r, sub),
            price: val(r, price),
            quantity: val(r, qty),
            created: val(r, created),
            current_period_start: val(r, cps),
        };
        engine.item_row(ctx, src, &it, None)
    })?;
    engine.finish(ctx)?;

    // Customers of the written lines, with their names.
    if let Some(p) = find(ctx.input, CUSTOMER) {
        let mut t = open(&p, ctx)?;
        let id = require(&t, &["id"], "a Stripe customer table")?;
        let (name, created) = (col(&t, &["name"]), col(&t, &["created"]));
        let wanted = engine.customers_with_lines();
        ctx.book.reserve_customers(wanted.len());
        each_row(ctx, &mut t, id, |ctx, src, r| {
            if !wanted.contains(src.id) {
                ctx.report.skipped(
                    src.file,
                    src.line,
                    src.id,
                    "not_used",
                    "no line of the book is theirs",
                );
                return Ok(());
            }
            let written = ctx
                .book
                .customer(&crate::CustomerOut {
                    id: src.id.to_string(),
                    name: field(r, name.at).map(str::to_string),
                    registered_on: engine.day_of(field(r, created.at)),
                    ..Default::default()
                })
                .map_err(|e| ctx.input.problem(&format!("cannot write a customer: {e}")))?;
            if written {
                ctx.report
                    .mapped(src.file, src.line, src.id, "customer", src.id);
            } else {
                ctx.report.merged(
                    src.file,
                    src.line,
                    src.id,
                    "duplicate",
                    src.id,
                    "a second row for this customer",
                );
            }
            Ok(())
        })?;
    }
    engine.remaining_customers(ctx)?;
    if !not_read.is_empty() {
        ctx.report
            .notes
            .push(format!("not read: {}", not_read.join("; ")));
    }
    Ok(())
}
