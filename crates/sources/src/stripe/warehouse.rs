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
use crate::partition::{self, Buckets, WorkDir};
use crate::Context;
use expansa_import::{Problem, SharedRecord as Record};
use hashbrown::{HashMap, HashSet};
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

/// Input bytes of the subscription-keyed tables and the customers per part of the work: a
/// part's rows (about 100,000 subscriptions) are what the conversion holds in memory.
const BYTES_PER_PART: u64 = 48 << 20;

/// Converts a folder of warehouse tables whose subscription table is `subs`.
///
/// The subscription-keyed tables (subscriptions, their items, discounts and invoice lines) and
/// the customers are large: they are spread over parts by customer ([`parts`]), so that every
/// row of one customer is in one part, and each part is converted in turn, holding only its
/// rows. Before that, a pass by item and discount id ([`check_ids`]) reports the rows that
/// contradict a row of another part and leaves them out. Prices, plans, coupons and products
/// are small: kept whole.
pub(super) fn convert(ctx: &mut Context, subs: &Path) -> Result<(), Problem> {
    let mut engine = Engine::new(&ctx.options.timezone);
    let history_table = find(ctx.input, SUBSCRIPTION_HISTORY);
    let history_only = history_table.as_deref() == Some(subs);
    // The subscription table first: a file that is not Stripe's says so by its columns.
    let st = open(subs, ctx)?;
    SubCols::of(&st)?;
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

    // Discounts: Fivetran's `discount` table, else the older `subscription_discount`.
    let discount = find(ctx.input, DISCOUNT);
    let sub_discount = find(ctx.input, SUBSCRIPTION_DISCOUNT);
    if let (Some(_), Some(other)) = (&discount, &sub_discount) {
        not_read.push(format!(
            "{} (the discounts are read from the discount table)",
            crate::input::display_name(other)
        ));
    }
    let sources = Sources {
        subs: st,
        discounts: discount.or(sub_discount),
        invoices: find(ctx.input, INVOICE_LINE),
        items,
        customers: find(ctx.input, CUSTOMER),
    };
    engine.has_invoices = sources.invoices.is_some();
    engine.sub_file = sources.subs.file().to_string();
    let work = WorkDir::create(ctx.book.dir(), ".stripe-parts")
        .map_err(|e| partition::work_problem(ctx.book.dir(), e))?;
    let parts = parts(ctx, &work, sources, subs, history_only)?;
    let k = parts.subs.len();
    for part in 0..k {
        engine.next_part();
        convert_part(ctx, &mut engine, &parts, part, history_only, part + 1 == k)?;
        ctx.book.forget_customers();
    }
    if !not_read.is_empty() {
        ctx.report
            .notes
            .push(format!("not read: {}", not_read.join("; ")));
    }
    Ok(())
}

/// The position of the column a table is spread by (its columns checked).
type KeyOf = fn(&Table) -> Result<Option<usize>, Problem>;

/// The large tables of an export, before they are spread over parts.
struct Sources {
    /// The subscription table, opened (its columns checked).
    subs: Table,
    discounts: Option<PathBuf>,
    invoices: Option<PathBuf>,
    items: PathBuf,
    customers: Option<PathBuf>,
}

/// The large tables spread over parts by customer: part `i` of each holds the rows of the
/// customers of part `i` (and of their subscriptions).
struct Parts {
    subs: Buckets,
    discounts: Option<Buckets>,
    invoices: Option<Buckets>,
    items: Buckets,
    customers: Option<Buckets>,
}

/// Spreads the large tables over parts by customer, in two passes: by the hash of the
/// subscription id (the key the items, discounts and invoice lines name), then, one
/// subscription bucket at a time, by the hash of each subscription's customer (the key of the
/// customer table). A row naming no subscription, or one the table does not have, goes to the
/// part of that id: it is refused (or left out) there as it would be in the whole export.
fn parts(
    ctx: &mut Context,
    work: &WorkDir,
    mut sources: Sources,
    subs_path: &Path,
    history_only: bool,
) -> Result<Parts, Problem> {
    let mut paths: Vec<&Path> = vec![subs_path, &sources.items];
    paths.extend(sources.discounts.as_deref());
    paths.extend(sources.invoices.as_deref());
    paths.extend(sources.customers.as_deref());
    let k = ctx
        .options
        .parts
        .unwrap_or_else(|| partition::buckets_for(partition::size_of(paths), BYTES_PER_PART));
    let dir = work.path();
    let io = |e| partition::work_problem(dir, e);
    // Pass 0: by item and discount id, what no part can see alone (rows left out of the
    // parts).
    let left_out = check_ids(ctx, dir, &sources, k)?;
    // Pass 1: by subscription id, each table checked for its columns as it is read.
    let key = SubCols::id_of(&sources.subs)?;
    let none = HashSet::new();
    let by_sub = spread(&mut sources.subs, dir, "subscription", key, k, &none)?;
    let spread_file = |path: &Path, name: &str, key: KeyOf, left_out: &HashSet<u64>| {
        let mut t = open(path, ctx)?;
        let at = key(&t)?;
        spread(&mut t, dir, name, at, k, left_out)
    };
    let discounts = sources
        .discounts
        .map(|p| spread_file(&p, "discount", DiscCols::sub_of, &left_out.discounts))
        .transpose()?;
    let invoices = sources
        .invoices
        .map(|p| spread_file(&p, "invoice_line", InvCols::sub_of, &left_out.invoices))
        .transpose()?;
    let items = spread_file(&sources.items, "item", ItemCols::sub_of, &left_out.items)?;
    // The customers: by their own id, the key their subscriptions are regrouped by.
    let customers = sources
        .customers
        .map(|p| spread_file(&p, "customer", CustCols::id_of, &none))
        .transpose()?;

    // Pass 2: each subscription bucket's rows to the part of their subscription's customer.
    let out = Parts {
        subs: regrouped(dir, &by_sub, "part-subscription", k)?,
        discounts: discounts
            .as_ref()
            .map(|b| regrouped(dir, b, "part-discount", k))
            .transpose()?,
        invoices: invoices
            .as_ref()
            .map(|b| regrouped(dir, b, "part-invoice_line", k))
            .transpose()?,
        items: regrouped(dir, &items, "part-item", k)?,
        customers,
    };
    for b in 0..k {
        let Some(path) = by_sub.path(b) else {
            continue;
        };
        let route = routes(path, &by_sub.file, history_only, k)?;
        let part_of = |sub: Option<&str>| match sub {
            Some(id) => route
                .get(id)
                .map_or_else(|| partition::bucket_of(id, k), |&p| p as usize),
            None => 0,
        };
        let pairs: [(Option<&Buckets>, Option<&Buckets>, KeyOf); 4] = [
            (Some(&by_sub), Some(&out.subs), SubCols::id_of),
            (discounts.as_ref(), out.discounts.as_ref(), DiscCols::sub_of),
            (invoices.as_ref(), out.invoices.as_ref(), InvCols::sub_of),
            (Some(&items), Some(&out.items), ItemCols::sub_of),
        ];
        for (from, to, sub) in pairs {
            let (Some(from), Some(to)) = (from, to) else {
                continue;
            };
            let Some(path) = from.path(b) else {
                continue;
            };
            let mut t = Table::open_bucket(path, &from.file)?;
            let at = sub(&t)?;
            let mut w = to.writer().map_err(io)?;
            while let Some(r) = t.next_row()? {
                w.write_to(part_of(field(&r, at)), r.line, &r, 1)
                    .map_err(io)?;
            }
            w.finish().map_err(io)?;
            from.remove(b).map_err(io)?;
        }
    }
    Ok(out)
}

/// The rows of `t` into `k` new buckets named `name` in `dir`, by the hash of their `key`
/// column (a row without one: the bucket of the empty key), but for the rows of the lines
/// `left_out`.
fn spread(
    t: &mut Table,
    dir: &Path,
    name: &str,
    key: Option<usize>,
    k: usize,
    left_out: &HashSet<u64>,
) -> Result<Buckets, Problem> {
    let io = |e| partition::work_problem(dir, e);
    let buckets = Buckets::create(dir, name, t.file(), t.names(), k).map_err(io)?;
    let mut w = buckets.writer().map_err(io)?;
    while let Some(r) = t.next_row()? {
        if left_out.contains(&r.line) {
            continue;
        }
        w.write(field(&r, key).unwrap_or(""), r.line, &r, 0)
            .map_err(io)?;
    }
    w.finish().map_err(io)?;
    Ok(buckets)
}

/// The lines of the item table, the invoice lines and the discounts that the conversion
/// leaves out, reported by [`check_ids`].
#[derive(Default)]
struct LeftOut {
    items: HashSet<u64>,
    invoices: HashSet<u64>,
    discounts: HashSet<u64>,
}

/// What one id is, in a bucket of [`check_ids`]: its subscription, the line of its first row
/// and that row's fields (`None`: an item known only from invoice lines).
struct Seen {
    sub: Box<str>,
    line: u64,
    row: Option<Box<[Box<str>]>>,
}

/// A pass over the item table and the invoice lines by item id, and over the discounts by
/// their id, one bucket of ids held at a time, for what rows of different subscriptions (so
/// of different parts) say of one id: a second row for an item or a discount is a
/// `duplicate` when it is the same row, else refused; an invoice line naming an item of
/// another subscription (by the item table, else by the first invoice line naming it) is
/// refused. Those rows are reported here and left out of the parts, so that the book and the
/// report do not depend on the parts.
fn check_ids(
    ctx: &mut Context,
    dir: &Path,
    sources: &Sources,
    k: usize,
) -> Result<LeftOut, Problem> {
    let io = |e| partition::work_problem(dir, e);
    let none = HashSet::new();
    let mut out = LeftOut::default();
    if let Some(p) = &sources.discounts {
        let mut t = open(p, ctx)?;
        let at = DiscCols::of(&t)?.id.at;
        let by_id = spread(&mut t, dir, "check-discount", at, k, &none)?;
        for b in 0..by_id.len() {
            let Some(path) = by_id.path(b) else {
                continue;
            };
            let mut t = Table::open_bucket(path, &by_id.file)?;
            let c = DiscCols::of(&t)?;
            first_rows(ctx, &mut t, "discount", c.id, c.sub, &mut out.discounts)?;
            by_id.remove(b).map_err(io)?;
        }
    }
    let (items, invoices) = (&sources.items, sources.invoices.as_deref());
    let mut t = open(items, ctx)?;
    let at = ItemCols::of(&t)?.id.at;
    let by_item = spread(&mut t, dir, "check-item", at, k, &none)?;
    let lines = invoices
        .map(|p| {
            let mut t = open(p, ctx)?;
            let at = InvCols::of(&t)?.item.at;
            spread(&mut t, dir, "check-invoice_line", at, k, &none)
        })
        .transpose()?;
    for b in 0..by_item.len() {
        let mut seen: HashMap<Box<str>, Seen> = HashMap::new();
        if let Some(path) = by_item.path(b) {
            let mut t = Table::open_bucket(path, &by_item.file)?;
            let c = ItemCols::of(&t)?;
            seen = first_rows(ctx, &mut t, "item", c.id, c.sub, &mut out.items)?;
            by_item.remove(b).map_err(io)?;
        }
        let Some((lines, path)) = lines.as_ref().and_then(|l| Some((l, l.path(b)?))) else {
            continue;
        };
        let mut t = Table::open_bucket(path, &lines.file)?;
        let c = InvCols::of(&t)?;
        while let Some(r) = t.next_row()? {
            let (Some(item), Some(sub)) = (field(&r, c.item.at), field(&r, c.sub.at)) else {
                continue;
            };
            let Some(first) = seen.get(item) else {
                let line = r.line;
                seen.insert(
                    item.into(),
                    Seen {
                        sub: sub.into(),
                        line,
                        row: None,
                    },
                );
                continue;
            };
            if *first.sub == *sub {
                continue;
            }
            let (file, what) = match first.row {
                Some(_) => (&by_item.file, "its row"),
                None => (&lines.file, "the invoice line"),
            };
            out.invoices.insert(r.line);
            ctx.report.refused(
                &lines.file,
                r.line,
                field(&r, c.id.at).unwrap_or(""),
                "contradicts",
                c.item.name,
                item,
                &format!(
                    "item {item} is on subscription {} ({what}, {file}:{}), not on {sub}",
                    first.sub, first.line
                ),
            );
        }
        lines.remove(b).map_err(io)?;
    }
    Ok(out)
}

/// The first row of each id of a bucket table `t` (spread by `id`) of `what`s, by id: a
/// second row is reported (the same row again: `duplicate`, else refused) and its line added
/// to `left_out`.
fn first_rows(
    ctx: &mut Context,
    t: &mut Table,
    what: &str,
    id: Col,
    sub: Col,
    left_out: &mut HashSet<u64>,
) -> Result<HashMap<Box<str>, Seen>, Problem> {
    let mut seen: HashMap<Box<str>, Seen> = HashMap::new();
    let file = t.file().to_string();
    while let Some(r) = t.next_row()? {
        let Some(row_id) = field(&r, id.at) else {
            continue;
        };
        // The fields after the line a bucket row starts with.
        let row: Box<[Box<str>]> = r.iter().skip(1).map(Into::into).collect();
        let Some(first) = seen.get(row_id) else {
            let s = field(&r, sub.at).unwrap_or("").into();
            let (line, row) = (r.line, Some(row));
            seen.insert(row_id.into(), Seen { sub: s, line, row });
            continue;
        };
        left_out.insert(r.line);
        let detail = format!(
            "a second row for {what} {row_id} (the first is line {})",
            first.line
        );
        if first.row.as_ref() == Some(&row) {
            ctx.report
                .merged(&file, r.line, row_id, "duplicate", row_id, &detail);
        } else {
            ctx.report.refused(
                &file,
                r.line,
                row_id,
                "contradicts",
                id.name,
                row_id,
                &detail,
            );
        }
    }
    Ok(seen)
}

/// `k` new buckets named `name` for the rows of `from`'s buckets.
fn regrouped(dir: &Path, from: &Buckets, name: &str, k: usize) -> Result<Buckets, Problem> {
    Buckets::create(dir, name, &from.file, &from.names, k)
        .map_err(|e| partition::work_problem(dir, e))
}

/// The part of each subscription of a subscription bucket: its customer's bucket, for the
/// customer of the row the conversion keeps (the first; of a history table, the first
/// current one).
fn routes(
    path: &Path,
    file: &str,
    history_only: bool,
    k: usize,
) -> Result<HashMap<Box<str>, u32>, Problem> {
    let mut t = Table::open_bucket(path, file)?;
    let c = SubCols::of(&t)?;
    let mut routes: HashMap<Box<str>, u32> = HashMap::new();
    while let Some(r) = t.next_row()? {
        let Some(id) = field(&r, c.id.at) else {
            continue;
        };
        if (history_only && inactive(&r, c.active)) || routes.contains_key(id) {
            continue;
        }
        let customer = field(&r, c.customer.at).unwrap_or("");
        let part = u32::try_from(partition::bucket_of(customer, k)).unwrap_or(0);
        routes.insert(id.into(), part);
    }
    Ok(routes)
}

/// Converts part `i` of the large tables: its subscriptions, their discounts, invoice lines
/// and items, then its customers (as the whole export is converted, in that order).
fn convert_part(
    ctx: &mut Context,
    engine: &mut Engine,
    parts: &Parts,
    i: usize,
    history_only: bool,
    last: bool,
) -> Result<(), Problem> {
    let open_part = |b: &Buckets| match b.path(i) {
        Some(p) => Table::open_bucket(p, &b.file).map(Some),
        None => Ok(None),
    };
    if let Some(b) = &parts.customers {
        // The part's customers: those its subscriptions may name.
        let mut ids = HashSet::new();
        if let Some(mut t) = open_part(b)? {
            let c = CustCols::of(&t)?;
            while let Some(r) = t.next_row()? {
                ids.extend(field(&r, c.id.at).map(Box::<str>::from));
            }
        }
        engine.customers = Some((b.file.clone(), ids));
    }
    if let Some(mut t) = open_part(&parts.subs)? {
        read_subs(ctx, engine, &mut t, history_only)?;
    }
    if let Some(mut t) = parts
        .discounts
        .as_ref()
        .map(open_part)
        .transpose()?
        .flatten()
    {
        read_discounts(ctx, engine, &mut t)?;
    }
    if let Some(mut t) = parts
        .invoices
        .as_ref()
        .map(open_part)
        .transpose()?
        .flatten()
    {
        read_invoices(ctx, engine, &mut t)?;
    }
    if let Some(path) = parts.items.path(i) {
        read_items(ctx, engine, path, &parts.items.file)?;
    }
    engine.finish_part(ctx, last)?;
    if let Some(mut t) = parts
        .customers
        .as_ref()
        .map(open_part)
        .transpose()?
        .flatten()
    {
        read_customers(ctx, engine, &mut t)?;
    }
    engine.remaining_customers(ctx)?;
    let dir = ctx.book.dir().to_path_buf();
    for b in [&parts.subs, &parts.items]
        .into_iter()
        .chain(parts.discounts.as_ref())
        .chain(parts.invoices.as_ref())
        .chain(parts.customers.as_ref())
    {
        b.remove(i).map_err(|e| partition::work_problem(&dir, e))?;
    }
    Ok(())
}

/// The columns of a subscription table.
#[derive(Clone, Copy)]
struct SubCols {
    id: Col,
    customer: Col,
    status: Col,
    start_date: Col,
    created: Col,
    trial_end: Col,
    cancel_at: Col,
    at_period_end: Col,
    canceled_at: Col,
    ended_at: Col,
    cps: Col,
    cpe: Col,
    active: Col,
}

impl SubCols {
    fn of(t: &Table) -> Result<SubCols, Problem> {
        let what = "a Stripe subscription table";
        let (id, customer, status) = (
            require(t, &["id"], what)?,
            require(t, &["customer_id", "customer"], what)?,
            require(t, &["status"], what)?,
        );
        let c = |names: &[&'static str]| col(t, names);
        Ok(SubCols {
            id,
            customer,
            status,
            start_date: c(&["start_date", "start"]),
            created: c(&["created"]),
            trial_end: c(&["trial_end"]),
            cancel_at: c(&["cancel_at"]),
            at_period_end: c(&["cancel_at_period_end"]),
            canceled_at: c(&["canceled_at"]),
            ended_at: c(&["ended_at"]),
            cps: c(&["current_period_start"]),
            cpe: c(&["current_period_end"]),
            active: c(&["_fivetran_active"]),
        })
    }

    fn id_of(t: &Table) -> Result<Option<usize>, Problem> {
        SubCols::of(t).map(|c| c.id.at)
    }
}

/// An earlier version of a subscription in a history table (`_fivetran_active = false`).
fn inactive(r: &Record, active: Col) -> bool {
    let v = field(r, active.at).map(str::to_ascii_lowercase);
    matches!(v.as_deref(), Some("false") | Some("f") | Some("0"))
}

/// Subscriptions: kept by id with the few fields the lines need.
fn read_subs(
    ctx: &mut Context,
    engine: &mut Engine,
    t: &mut Table,
    history_only: bool,
) -> Result<(), Problem> {
    let c = SubCols::of(t)?;
    each_row(ctx, t, c.id, |ctx, src, r| {
        if history_only && inactive(r, c.active) {
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
        let s = SubIn {
            nested: false,
            customer: val(r, c.customer),
            status: val(r, c.status),
            start_date: val(r, c.start_date),
            created: val(r, c.created),
            trial_end: val(r, c.trial_end),
            cancel_at: val(r, c.cancel_at),
            cancel_at_period_end: val(r, c.at_period_end),
            canceled_at: val(r, c.canceled_at),
            ended_at: val(r, c.ended_at),
            current_period_start: val(r, c.cps),
            current_period_end: val(r, c.cpe),
        };
        engine.sub_row(ctx, src, &s);
        Ok(())
    })
}

/// The columns of a discount table.
struct DiscCols {
    id: Col,
    coupon: Col,
    sub: Col,
    start: Col,
    end: Col,
}

impl DiscCols {
    fn sub_of(t: &Table) -> Result<Option<usize>, Problem> {
        DiscCols::of(t).map(|c| c.sub.at)
    }

    fn of(t: &Table) -> Result<DiscCols, Problem> {
        let what = "a Stripe discount table";
        Ok(DiscCols {
            id: require(t, &["id"], what)?,
            coupon: require(t, &["coupon_id", "coupon"], what)?,
            sub: col(t, &["subscription_id", "subscription"]),
            start: col(t, &["start"]),
            end: col(t, &["end"]),
        })
    }
}

fn read_discounts(ctx: &mut Context, engine: &mut Engine, t: &mut Table) -> Result<(), Problem> {
    let c = DiscCols::of(t)?;
    each_row(ctx, t, c.id, |ctx, src, r| {
        let d = DiscIn {
            sub: val(r, c.sub),
            coupon: val(r, c.coupon),
            start: val(r, c.start),
            end: val(r, c.end),
        };
        engine.discount_row(ctx, src, &d);
        Ok(())
    })
}

/// The columns of an invoice line item table.
struct InvCols {
    id: Col,
    ps: Col,
    pe: Col,
    sub: Col,
    kind: Col,
    item: Col,
    price: Col,
    qty: Col,
    amount: Col,
    proration: Col,
}

impl InvCols {
    fn sub_of(t: &Table) -> Result<Option<usize>, Problem> {
        InvCols::of(t).map(|c| c.sub.at)
    }

    fn of(t: &Table) -> Result<InvCols, Problem> {
        let what = "a Stripe invoice line item table";
        let (id, ps, pe, sub) = (
            require(t, &["id"], what)?,
            require(t, &["period_start"], what)?,
            require(t, &["period_end"], what)?,
            require(t, &["subscription_id", "subscription"], what)?,
        );
        let c = |names: &[&'static str]| col(t, names);
        Ok(InvCols {
            id,
            ps,
            pe,
            sub,
            kind: c(&["type", "source_type"]),
            item: c(&["subscription_item_id", "subscription_item"]),
            price: c(&["price_id", "plan_id", "price", "plan"]),
            qty: c(&["quantity"]),
            amount: c(&["amount"]),
            proration: c(&["proration"]),
        })
    }
}

/// Invoice lines: the price history of each item, kept compact (one stretch per price).
fn read_invoices(ctx: &mut Context, engine: &mut Engine, t: &mut Table) -> Result<(), Problem> {
    let c = InvCols::of(t)?;
    each_row(ctx, t, c.id, |ctx, src, r| {
        let l = InvIn {
            kind: val(r, c.kind),
            sub: val(r, c.sub),
            item: val(r, c.item),
            price: val(r, c.price),
            quantity: val(r, c.qty),
            amount: val(r, c.amount),
            proration: val(r, c.proration),
            period_start: val(r, c.ps),
            period_end: val(r, c.pe),
        };
        engine.invoice_row(ctx, src, &l, None);
        Ok(())
    })
}

/// The columns of a subscription item table.
struct ItemCols {
    id: Col,
    sub: Col,
    price: Col,
    qty: Col,
    created: Col,
    cps: Col,
}

impl ItemCols {
    fn sub_of(t: &Table) -> Result<Option<usize>, Problem> {
        ItemCols::of(t).map(|c| c.sub.at)
    }

    fn of(t: &Table) -> Result<ItemCols, Problem> {
        let what = "a Stripe subscription item table";
        let (id, sub, price) = (
            require(t, &["id"], what)?,
            require(t, &["subscription_id", "subscription"], what)?,
            require(t, &["price_id", "plan_id", "price", "plan"], what)?,
        );
        Ok(ItemCols {
            id,
            sub,
            price,
            qty: col(t, &["quantity"]),
            created: col(t, &["created"]),
            cps: col(t, &["current_period_start"]),
        })
    }
}

/// Items (the bucket file at `path`), streamed: each becomes its lines at once.
fn read_items(
    ctx: &mut Context,
    engine: &mut Engine,
    path: &Path,
    file: &str,
) -> Result<(), Problem> {
    let mut t = Table::open_bucket(path, file)?;
    let c = ItemCols::of(&t)?;
    if engine.needs_item_count() {
        // An amount off is taken once per invoice: count the priced items first.
        let mut first = Table::open_bucket(path, file)?;
        while let Some(r) = first.next_row()? {
            engine.count_item(field(&r, c.sub.at), field(&r, c.price.at));
        }
    }
    each_row(ctx, &mut t, c.id, |ctx, src, r| {
        let it = ItemIn {
            sub: val(r, c.sub),
            price: val(r, c.price),
            quantity: val(r, c.qty),
            created: val(r, c.created),
            current_period_start: val(r, c.cps),
        };
        engine.item_row(ctx, src, &it, None)
    })
}

/// The columns of a customer table.
struct CustCols {
    id: Col,
    name: Col,
    created: Col,
}

impl CustCols {
    fn id_of(t: &Table) -> Result<Option<usize>, Problem> {
        CustCols::of(t).map(|c| c.id.at)
    }

    fn of(t: &Table) -> Result<CustCols, Problem> {
        Ok(CustCols {
            id: require(t, &["id"], "a Stripe customer table")?,
            name: col(t, &["name"]),
            created: col(t, &["created"]),
        })
    }
}

/// Customers of the written lines, with their names.
fn read_customers(ctx: &mut Context, engine: &Engine, t: &mut Table) -> Result<(), Problem> {
    let c = CustCols::of(t)?;
    let wanted = engine.customers_with_lines();
    ctx.book.reserve_customers(wanted.len());
    each_row(ctx, t, c.id, |ctx, src, r| {
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
                name: field(r, c.name.at).map(str::to_string),
                registered_on: engine.day_of(field(r, c.created.at)),
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
    })
}
