//! Stripe's API objects saved as JSON lists: `subscriptions.json` (a list object
//! `{"object": "list", "data": [...]}`, an array of such pages, or a plain array of
//! subscription objects, with `items.data[].price` and the discounts expanded), and the
//! optional `invoices.json` (invoices with `lines.data[]`), `customers.json` and
//! `products.json`.
//!
//! A "row" of these files is one object: its `line` in the report and in problems is its
//! 1-based position in its list (for an item or a discount, the position of its
//! subscription; for an invoice line, of its invoice), and problems name the field by its
//! JSON path (`items.data.price.recurring.interval`).
//!
//! Numbers: Stripe writes amounts as integers of minor units (read exactly) and
//! `unit_amount_decimal` as a string (read exactly); only `percent_off` is a JSON float,
//! read back as the shortest decimal that gives the same float (its own text for up to 15
//! significant digits).

use super::engine::{CouponIn, DiscIn, Engine, InvIn, ItemIn, PriceIn, Src, SubIn, Val};
use crate::input::{display_name, json_objects, read_json};
use crate::Context;
use expansa_import::Problem;
use serde_json::Value;
use std::borrow::Cow;
use std::path::Path;

/// The names of the subscriptions file.
pub(super) const SUBSCRIPTIONS: &[&str] = &["subscriptions.json"];

/// The text of a JSON field at a dotted path: strings as they are, numbers and booleans as
/// written; `None` for null, absent, objects and arrays.
fn text<'a>(v: &'a Value, path: &str) -> Option<Cow<'a, str>> {
    match at(v, path)? {
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// An id: the field itself when a string, else the `id` of the object it expands to.
fn id_of<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    match at(v, path)? {
        Value::String(s) => Some(s.as_str()),
        Value::Object(o) => o.get("id").and_then(Value::as_str),
        _ => None,
    }
}

fn list<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    match at(v, path) {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(o @ Value::Object(_)) => json_objects(o, "data").unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Reads a JSON list file: its objects, or one problem (not JSON, not a list).
fn read_list(path: &Path, what: &str) -> Result<Value, Problem> {
    let value = read_json(path)?;
    if json_objects(&value, "data").is_none() {
        return Err(Problem::new(
            &display_name(path),
            0,
            "json",
            "",
            &format!(
                "is not a list of Stripe {what} (a JSON array, or a list object \
                 {{\"object\": \"list\", \"data\": [...]}})"
            ),
        ));
    }
    Ok(value)
}

/// A price (or legacy plan) object's fields, from their texts ([`price_texts`]), named by
/// their JSON paths.
fn price_in<'a>(owned: &'a [Option<Cow<'a, str>>; 11], plan: bool) -> PriceIn<'a> {
    let v = |k: usize, col: &'a str| Val::new(owned.get(k).and_then(|o| o.as_deref()), col);
    if plan {
        PriceIn {
            product: v(0, "plan.product"),
            currency: v(1, "plan.currency"),
            unit_amount_decimal: v(2, "plan.amount_decimal"),
            unit_amount: v(3, "plan.amount"),
            kind: v(4, "plan.type"),
            interval: v(5, "plan.interval"),
            interval_count: v(6, "plan.interval_count"),
            usage_type: v(7, "plan.usage_type"),
            billing_scheme: v(8, "plan.billing_scheme"),
            divide_by: v(9, "plan.transform_usage.divide_by"),
            round: v(10, "plan.transform_usage.round"),
        }
    } else {
        PriceIn {
            product: v(0, "price.product"),
            currency: v(1, "price.currency"),
            unit_amount_decimal: v(2, "price.unit_amount_decimal"),
            unit_amount: v(3, "price.unit_amount"),
            kind: v(4, "price.type"),
            interval: v(5, "price.recurring.interval"),
            interval_count: v(6, "price.recurring.interval_count"),
            usage_type: v(7, "price.recurring.usage_type"),
            billing_scheme: v(8, "price.billing_scheme"),
            divide_by: v(9, "price.transform_quantity.divide_by"),
            round: v(10, "price.transform_quantity.round"),
        }
    }
}

fn price_texts(p: &Value, plan: bool) -> [Option<Cow<'_, str>>; 11] {
    let product = id_of(p, "product").map(Cow::Borrowed);
    if plan {
        [
            product,
            text(p, "currency"),
            text(p, "amount_decimal"),
            text(p, "amount"),
            None,
            text(p, "interval"),
            text(p, "interval_count"),
            text(p, "usage_type"),
            text(p, "billing_scheme"),
            text(p, "transform_usage.divide_by"),
            text(p, "transform_usage.round"),
        ]
    } else {
        [
            product,
            text(p, "currency"),
            text(p, "unit_amount_decimal"),
            text(p, "unit_amount"),
            text(p, "type"),
            text(p, "recurring.interval"),
            text(p, "recurring.interval_count"),
            text(p, "recurring.usage_type"),
            text(p, "billing_scheme"),
            text(p, "transform_quantity.divide_by"),
            text(p, "transform_quantity.round"),
        ]
    }
}

/// The price an item or invoice line carries (expanded `price`, else the legacy `plan`):
/// added to the engine; `Ok(None)` when it names a price by id only.
fn embedded_price(
    engine: &mut Engine,
    ctx: &mut Context,
    obj: &Value,
    src: &Src,
) -> Result<Option<u32>, ()> {
    let (p, plan) = match (obj.get("price"), obj.get("plan")) {
        (Some(p @ Value::Object(_)), _) => (p, false),
        (_, Some(p @ Value::Object(_))) => (p, true),
        _ => return Ok(None),
    };
    let Some(id) = p.get("id").and_then(Value::as_str) else {
        ctx.report.refused(
            src.file,
            src.line,
            src.id,
            "bad_value",
            if plan { "plan.id" } else { "price.id" },
            "",
            "a price without an id",
        );
        return Err(());
    };
    if let Some(Value::Object(prod)) = p.get("product") {
        if let Some(pid) = prod.get("id").and_then(Value::as_str) {
            let name = prod.get("name").and_then(Value::as_str);
            if engine.product_row(ctx, None, pid, name).is_err() {
                return Err(());
            }
        }
    }
    let texts = price_texts(p, plan);
    let input = price_in(&texts, plan);
    match engine.embedded_price(id, &input) {
        Ok(i) => Ok(Some(i)),
        Err(bad) => {
            ctx.report.refused(
                src.file,
                src.line,
                src.id,
                bad.code,
                &bad.col,
                &bad.value,
                &format!("price {id}: {}", bad.detail),
            );
            Err(())
        }
    }
}

/// Converts `subscriptions.json` (and the optional files beside it).
pub(super) fn convert(ctx: &mut Context, subs_path: &Path) -> Result<(), Problem> {
    let mut engine = Engine::new(&ctx.options.timezone);
    let file = display_name(subs_path);
    let value = read_list(subs_path, "subscriptions")?;
    let subs = json_objects(&value, "data").unwrap_or_default();
    let sibling = |name: &str| -> Option<std::path::PathBuf> {
        if ctx.input.is_dir() {
            ctx.input.find(&[name])
        } else {
            let p = subs_path.parent()?.join(name);
            p.is_file().then_some(p)
        }
    };
    let invoices_path = sibling("invoices.json");
    let customers_path = sibling("customers.json");
    let products_path = sibling("products.json");
    engine.sub_file = file.clone();
    engine.price_file = file.clone();
    engine.coupon_file = file.clone();

    // Products first, so their names stand.
    if let Some(p) = &products_path {
        let v = read_list(p, "products")?;
        let pfile = display_name(p);
        for (k, obj) in json_objects(&v, "data")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let line = k as u64 + 1;
            match obj.get("id").and_then(Value::as_str) {
                Some(id) => {
                    let src = Src {
                        file: &pfile,
                        line,
                        id,
                    };
                    let name = obj.get("name").and_then(Value::as_str);
                    engine.product_row(ctx, Some(&src), id, name)?;
                }
                None => ctx
                    .report
                    .refused(&pfile, line, "", "bad_value", "id", "", "no id"),
            }
        }
    }

    // Subscriptions, their discounts, and the prices their items carry.
    let mut ids: Vec<Option<&str>> = Vec::with_capacity(subs.len());
    for (k, obj) in subs.iter().enumerate() {
        let line = k as u64 + 1;
        let Some(id) = obj.get("id").and_then(Value::as_str) else {
            ctx.report.refused(
                &file,
                line,
                "",
                "bad_value",
                "id",
                "",
                "not a subscription object with an id",
            );
            ids.push(None);
            continue;
        };
        ids.push(Some(id));
        let src = Src {
            file: &file,
            line,
            id,
        };
        let customer = id_of(obj, "customer");
        let t = |p: &str| text(obj, p);
        let (status, start, created, trial_end, cancel_at, at_end) = (
            t("status"),
            t("start_date"),
            t("created"),
            t("trial_end"),
            t("cancel_at"),
            t("cancel_at_period_end"),
        );
        let (canceled_at, ended_at) = (t("canceled_at"), t("ended_at"));
        // Since API version 2025-03-31 the current period is on the items.
        let first_item = list(obj, "items").first().copied();
        let cps = t("current_period_start")
            .or_else(|| first_item.and_then(|i| text(i, "current_period_start")));
        let cpe = t("current_period_end")
            .or_else(|| first_item.and_then(|i| text(i, "current_period_end")));
        let s = SubIn {
            nested: !list(obj, "items").is_empty(),
            customer: Val::new(customer, "customer"),
            status: Val::new(status.as_deref(), "status"),
            start_date: Val::new(start.as_deref(), "start_date"),
            created: Val::new(created.as_deref(), "created"),
            trial_end: Val::new(trial_end.as_deref(), "trial_end"),
            cancel_at: Val::new(cancel_at.as_deref(), "cancel_at"),
            cancel_at_period_end: Val::new(at_end.as_deref(), "cancel_at_period_end"),
            canceled_at: Val::new(canceled_at.as_deref(), "canceled_at"),
            ended_at: Val::new(ended_at.as_deref(), "ended_at"),
            current_period_start: Val::new(cps.as_deref(), "current_period_start"),
            current_period_end: Val::new(cpe.as_deref(), "current_period_end"),
        };
        engine.sub_row(ctx, &src, &s);
        if let Some(c @ Value::Object(_)) = obj.get("customer") {
            let name = c.get("name").and_then(Value::as_str);
            let created = engine.day_of(text(c, "created").as_deref());
            engine.set_customer_details(id, name, created);
        }
        // Items' prices (the items themselves are converted after the invoices).
        for item in list(obj, "items") {
            if let Some(Value::Object(prod)) = item.get("price").and_then(|p| p.get("product")) {
                if let Some(pid) = prod.get("id").and_then(Value::as_str) {
                    let name = prod.get("name").and_then(Value::as_str);
                    engine.product_row(ctx, None, pid, name)?;
                }
            }
            let (p, plan) = match (item.get("price"), item.get("plan")) {
                (Some(p @ Value::Object(_)), _) => (p, false),
                (_, Some(p @ Value::Object(_))) => (p, true),
                _ => continue,
            };
            let Some(pid) = p.get("id").and_then(Value::as_str) else {
                continue;
            };
            let texts = price_texts(p, plan);
            // An unreadable price is refused with the item that carries it (below).
            let _ = engine.embedded_price(pid, &price_in(&texts, plan));
        }
        // Discounts: `discounts` (expanded objects) or the legacy single `discount`. An event's
        // subscription lists its discounts as ids and may carry the legacy expanded `discount`
        // beside them: that object stands for its id.
        let many = list(obj, "discounts");
        let single = obj.get("discount").filter(|d| d.is_object());
        let discounts: Vec<&Value> = if !many.is_empty() {
            many.into_iter()
                .map(|d| match (d.as_str(), single) {
                    (Some(did), Some(one))
                        if one.get("id").and_then(Value::as_str) == Some(did) =>
                    {
                        one
                    }
                    _ => d,
                })
                .collect()
        } else {
            single.into_iter().collect()
        };
        for d in discounts {
            let coupon = d.get("coupon");
            let did = d
                .get("id")
                .and_then(Value::as_str)
                .or_else(|| d.as_str())
                .or_else(|| coupon.and_then(|c| c.get("id")).and_then(Value::as_str))
                .unwrap_or(id);
            let dsrc = Src {
                file: &file,
                line,
                id: did,
            };
            let Some(c @ Value::Object(_)) = coupon else {
                ctx.report.refused(
                    &file,
                    line,
                    did,
                    "bad_value",
                    "discounts",
                    did,
                    "a discount not expanded with its coupon (list the subscriptions with \
                     expand[]=data.discounts)",
                );
                continue;
            };
            let cid = c.get("id").and_then(Value::as_str).unwrap_or(did);
            let ct = |p: &str| text(c, p);
            let (pct, off, cur, dur, months) = (
                ct("percent_off"),
                ct("amount_off"),
                ct("currency"),
                ct("duration"),
                ct("duration_in_months"),
            );
            let cin = CouponIn {
                percent_off: Val::new(pct.as_deref(), "discount.coupon.percent_off"),
                amount_off: Val::new(off.as_deref(), "discount.coupon.amount_off"),
                currency: Val::new(cur.as_deref(), "discount.coupon.currency"),
                duration: Val::new(dur.as_deref(), "discount.coupon.duration"),
                duration_in_months: Val::new(
                    months.as_deref(),
                    "discount.coupon.duration_in_months",
                ),
            };
            if let Err(bad) = engine.embedded_coupon(cid, &cin) {
                ctx.report.refused(
                    &file,
                    line,
                    did,
                    bad.code,
                    &bad.col,
                    &bad.value,
                    &format!("coupon {cid}: {}", bad.detail),
                );
                continue;
            }
            let (ds, de) = (text(d, "start"), text(d, "end"));
            let din = DiscIn {
                sub: Val::new(Some(id), "id"),
                coupon: Val::new(Some(cid), "discount.coupon.id"),
                start: Val::new(ds.as_deref(), "discount.start"),
                end: Val::new(de.as_deref(), "discount.end"),
            };
            engine.discount_row(ctx, &dsrc, &din);
        }
    }

    // Invoices: the price history of each item.
    if let Some(p) = &invoices_path {
        engine.has_invoices = true;
        let v = read_list(p, "invoices")?;
        let ifile = display_name(p);
        for (k, inv) in json_objects(&v, "data")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let line = k as u64 + 1;
            let inv_sub = id_of(inv, "subscription")
                .or_else(|| id_of(inv, "parent.subscription_details.subscription"));
            let lines = list(inv, "lines");
            if lines.is_empty() && inv.get("id").is_none() {
                ctx.report.refused(
                    &ifile,
                    line,
                    "",
                    "bad_value",
                    "lines",
                    "",
                    "not an invoice object",
                );
                continue;
            }
            for l in lines {
                let lid = l.get("id").and_then(Value::as_str).unwrap_or("");
                let src = Src {
                    file: &ifile,
                    line,
                    id: lid,
                };
                let details = "parent.subscription_item_details";
                let sub = id_of(l, "subscription")
                    .or_else(|| id_of(l, &format!("{details}.subscription")))
                    .or(inv_sub);
                let item = id_of(l, "subscription_item")
                    .or_else(|| id_of(l, &format!("{details}.subscription_item")));
                let price_id = id_of(l, "price")
                    .or_else(|| id_of(l, "plan"))
                    .or_else(|| id_of(l, "pricing.price_details.price"));
                let price = match embedded_price(&mut engine, ctx, l, &src) {
                    Ok(p) => p,
                    Err(()) => continue,
                };
                let t = |p: &str| text(l, p);
                let (kind, qty, amount) = (t("type"), t("quantity"), t("amount"));
                let proration = t("proration").or_else(|| t(&format!("{details}.proration")));
                let (ps, pe) = (t("period.start"), t("period.end"));
                let inv_in = InvIn {
                    kind: Val::new(kind.as_deref(), "lines.data.type"),
                    sub: Val::new(sub, "lines.data.subscription"),
                    item: Val::new(item, "lines.data.subscription_item"),
                    price: Val::new(price_id, "lines.data.price"),
                    quantity: Val::new(qty.as_deref(), "lines.data.quantity"),
                    amount: Val::new(amount.as_deref(), "lines.data.amount"),
                    proration: Val::new(proration.as_deref(), "lines.data.proration"),
                    period_start: Val::new(ps.as_deref(), "lines.data.period.start"),
                    period_end: Val::new(pe.as_deref(), "lines.data.period.end"),
                };
                engine.invoice_row(ctx, &src, &inv_in, price);
            }
        }
    }

    // Items.
    if engine.needs_item_count() {
        for (obj, id) in subs.iter().zip(&ids) {
            for item in list(obj, "items") {
                let price = id_of(item, "price").or_else(|| id_of(item, "plan"));
                engine.count_item(*id, price);
            }
        }
    }
    for (k, (obj, id)) in subs.iter().zip(&ids).enumerate() {
        let Some(id) = id else {
            continue;
        };
        let line = k as u64 + 1;
        for item in list(obj, "items") {
            let Some(item_id) = item.get("id").and_then(Value::as_str) else {
                ctx.report.refused(
                    &file,
                    line,
                    id,
                    "bad_value",
                    "items.data.id",
                    "",
                    "an item without an id",
                );
                continue;
            };
            let src = Src {
                file: &file,
                line,
                id: item_id,
            };
            let price = match embedded_price(&mut engine, ctx, item, &src) {
                Ok(p) => p,
                Err(()) => continue,
            };
            let price_id = id_of(item, "price").or_else(|| id_of(item, "plan"));
            let t = |p: &str| text(item, p);
            let (qty, created, cps) = (t("quantity"), t("created"), t("current_period_start"));
            let it = ItemIn {
                sub: Val::new(Some(id), "id"),
                price: Val::new(price_id, "items.data.price"),
                quantity: Val::new(qty.as_deref(), "items.data.quantity"),
                created: Val::new(created.as_deref(), "items.data.created"),
                current_period_start: Val::new(cps.as_deref(), "items.data.current_period_start"),
            };
            engine.item_row(ctx, &src, &it, price)?;
        }
    }
    engine.finish(ctx)?;

    // Customers: customers.json when given, else what the subscriptions expanded.
    if let Some(p) = &customers_path {
        let v = read_list(p, "customers")?;
        let cfile = display_name(p);
        let wanted = engine.customers_with_lines();
        let mut rows: Vec<(u64, &Value)> = Vec::new();
        for (k, obj) in json_objects(&v, "data")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            rows.push((k as u64 + 1, obj));
        }
        let mut out = Vec::new();
        for (line, obj) in rows {
            match obj.get("id").and_then(Value::as_str) {
                None => ctx
                    .report
                    .refused(&cfile, line, "", "bad_value", "id", "", "no id"),
                Some(id) if !wanted.contains(id) => ctx.report.skipped(
                    &cfile,
                    line,
                    id,
                    "not_used",
                    "no line of the book is theirs",
                ),
                Some(id) => out.push((
                    line,
                    crate::CustomerOut {
                        id: id.to_string(),
                        name: obj.get("name").and_then(Value::as_str).map(str::to_string),
                        registered_on: engine.day_of(text(obj, "created").as_deref()),
                        ..Default::default()
                    },
                )),
            }
        }
        drop(wanted);
        for (line, c) in out {
            let written = ctx
                .book
                .customer(&c)
                .map_err(|e| ctx.input.problem(&format!("cannot write a customer: {e}")))?;
            if written {
                ctx.report.mapped(&cfile, line, &c.id, "customer", &c.id);
            } else {
                ctx.report.merged(
                    &cfile,
                    line,
                    &c.id,
                    "duplicate",
                    &c.id,
                    "a second object for this customer",
                );
            }
        }
    }
    engine.remaining_customers(ctx)?;
    Ok(())
}
