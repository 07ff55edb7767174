//! Zuora, from the warehouse tables that Fivetran syncs (`zuora_subscription`,
//! `zuora_rate_plan_charge`, `zuora_account`, `zuora_product_rate_plan`; file names with or
//! without the `_data` suffix and the `zuora_` prefix).
//!
//! Tables read (every row of them gets exactly one report row):
//! - `rate_plan_charge` (required): one row per charge segment, the lines of the book.
//! - `subscription` (required): the versions of each subscription (`original_id`, `version`,
//!   `is_latest_version`), its `status`, `account_id`, `cancelled_date`. The latest version
//!   is `mapped` (reason `contract`: the `contract_id` of its lines is the subscription
//!   `name`, else its `original_id`); earlier versions are `merged` (`history`).
//! - `account` (optional): customers (`name`, registered on `created_date`) and the currency
//!   of their charges. When present, every subscription's `account_id` must be in it.
//! - `product_rate_plan` (optional): products (id = the product rate plan's id, `name`,
//!   family = its Zuora `product_id`). When present, every charge's `product_rate_plan_id`
//!   must be in it.
//!
//! Not read: `rate_plan` and `product_rate_plan_charge` (a charge row names its product rate
//! plan itself), `product` (the family is its id), `amendment`, `order`, invoices, payments,
//! taxes, contacts.
//!
//! Rules:
//! - Charge types (<https://docs.zuora.com/zuora-platform/integration/apis/soap-api/soap-api-object-reference/rateplancharge>:
//!   one-time, recurring and usage fees): `Recurring` makes lines; `Usage` is `skipped`
//!   (`metered`), `OneTime` `skipped` (`one_off`). A discount charge (`charge_model`
//!   `Discount-Percentage` or `Discount-Fixed Amount`) is `skipped` (`not_used`): its effect
//!   on its neighbours is not applied (a limit of this converter: a report note says so).
//! - Only the charges of a subscription's latest version make lines: every version repeats
//!   its charges, with the history of each as segments (the latest version is the row with
//!   `is_latest_version` true, else the highest `version`). A charge row of an earlier version
//!   is `merged` (`history`) into the line of the same charge number and segment in the latest
//!   version, or `skipped` (`not_used`) when the latest version does not have it.
//! - A segment is one line over `[effective_start_date, effective_end_date)`: Zuora's effective
//!   end date is the first day *not* served (billing stops at the end of the day before, as
//!   Zuora support answered in <https://community.zuora.com/t5/Billing-Payments/Is-Effective-End-Date-included-in-the-Invoice/m-p/33334>,
//!   and a segment's TCV is its MRR times its months:
//!   <https://docs.zuora.com/en/zuora-billing/manage-accounts-subscriptions-and-non-subscriptions/manage-customer-accounts/key-metrics-for-customer-accounts/total-contract-value/calculate-tcv-for-charge-segments>),
//!   so the line's last day is the day before; an empty end is an open (evergreen) line.
//!   Line id `CONTRACT/CHARGE_NUMBER@SEGMENT`. Segment N+1 of a charge `revises` segment N's
//!   line when it starts on segment N's effective end date (a price ramp, a quantity change).
//! - `billing_period` (values from
//!   <https://docs.zuora.com/en/zuora-platform/integration/apis/soap-api/soap-api-object-reference/productrateplancharge/field-descriptions>):
//!   `Month` 1 month, `Quarter` 3, `Semi_Annual` (or `Semi-Annual`) 6, `Annual` 12,
//!   `Eighteen_Months` 18, `Two_Years` 24, `Three_Years` 36, `Five_Years` 60,
//!   `Specific_Months` `specific_billing_period` months, `Week` one week, `Specific_Weeks`
//!   `specific_billing_period` weeks; `Subscription_Term` is refused (its length is the
//!   term's, not in the charge).
//! - The price: a `price` column when the file has one (Flat Fee and Per Unit pricing: the
//!   price of one unit for one billing period; a flat fee counts one unit). Fivetran's
//!   `rate_plan_charge` has none (prices live in `rate_plan_charge_tier`), so otherwise the
//!   segment's `mrr` (Zuora's monthly recurring revenue of the segment) gives it: unit price
//!   = `mrr` × months of the billing period / quantity (refused when that is not exact); a
//!   weekly charge priced by its `mrr` is written as a monthly line of price `mrr` / quantity.
//!   A price or quantity of zero is `skipped` (`zero_amount`).
//! - Currency: the charge's `transaction_currency`, else its account's `currency`.
//! - Subscription status: `Active`, `Cancelled`, `Expired`, `Suspended` make lines (a
//!   `Cancelled` one's lines end the day before `cancelled_date`; a segment starting on or
//!   after it is `skipped`, `not_billable`); `Draft`, `Pending Activation`, `Pending
//!   Acceptance` are `skipped` (`not_billable`), with their charges. A `Suspended`
//!   subscription's suspension (in `amendment`) is not read: its lines run as its segments say.
//! - A row Fivetran marks deleted (`_fivetran_deleted` true) is `skipped` (`not_billable`); a
//!   row naming it is refused (`missing_reference`).
//! - Refused (never guessed), each a problem `file:line: column: value: reason`: an unreadable
//!   value (`bad_value`); a subscription, account, product rate plan or earlier segment that
//!   is not there, deleted or refused (`missing_reference`); an end before a start,
//!   overlapping segments, two rows for one segment, a charge whose account or currency
//!   differs from its subscription's (`contradicts`).
//!
//! Zuora's dates are calendar days: a `YYYY-MM-DD 00:00:00` the warehouse writes is that day.
//! The tables are read whole into memory (a charge's segments must be seen together).

use crate::book::{CustomerOut, Interval, LineOut, Period, ProductOut};
use crate::money;
use crate::time::{day_before, parse_when, start_day};
use crate::warehouse::{self, reference, refusal, refuse, Cells, Loaded, Refusal};
use crate::Context;
use expansa_import::Problem;
use expansa_ledger::{Currency, Date};
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The names a table may have: `zuora_base_data.csv`, `zuora_base.csv`, `base_data.csv`,
/// `base.csv`.
fn names(base: &str) -> Vec<String> {
    vec![
        format!("zuora_{base}_data.csv"),
        format!("zuora_{base}.csv"),
        format!("{base}_data.csv"),
        format!("{base}.csv"),
    ]
}

fn find(ctx: &Context, base: &str) -> Option<PathBuf> {
    ctx.input.find(&names(base))
}

impl Cells<'_> {
    fn deleted(&self) -> bool {
        self.text("_fivetran_deleted")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A calendar day (a timestamp at 00:00 the warehouse wrote is its day, in UTC).
    fn day(&self, col: &str) -> Result<Option<Date>, Refusal> {
        match self.text(col) {
            None => Ok(None),
            Some(t) => match parse_when(t) {
                Ok(w) => Ok(Some(start_day(&w, &TimeZone::UTC))),
                Err(e) => Err(refusal("bad_value", col, t, &e)),
            },
        }
    }
}

/// Why a referenced row cannot be used.
#[derive(Clone, Copy)]
enum Unusable {
    Deleted(u64),
    Refused(u64),
}

impl warehouse::Unusable for Unusable {
    fn why(&self, what: &str, id: &str, file: &str) -> String {
        match self {
            Unusable::Deleted(line) => format!("{what} {id} is deleted in Zuora ({file}:{line})"),
            Unusable::Refused(line) => line.why(what, id, file),
        }
    }
}

/// A row Fivetran marks deleted: skipped, and remembered in `out` as unusable for the rows
/// that name it; `false` for any other row.
fn skipped_deleted<T>(
    ctx: &mut Context,
    c: &Cells,
    id: &str,
    out: &mut HashMap<String, Result<T, Unusable>>,
) -> bool {
    if !c.deleted() || id.is_empty() {
        return false;
    }
    ctx.report.skipped(
        &c.t.file,
        c.r.line,
        id,
        "not_billable",
        "deleted in Zuora (_fivetran_deleted)",
    );
    out.entry(id.to_string())
        .or_insert(Err(Unusable::Deleted(c.r.line)));
    true
}

/// A row's `id`, required, and refused (`contradicts`) when an earlier row of the file gave a
/// usable `what` the same id.
fn new_id<T>(
    c: &Cells,
    id: &str,
    out: &HashMap<String, Result<T, Unusable>>,
    what: &str,
) -> Result<(), Refusal> {
    c.required("id")?;
    if out.get(id).is_some_and(|v| v.is_ok()) {
        return Err(refusal(
            "contradicts",
            "id",
            id,
            &format!("another row of this file has the same {what} id"),
        ));
    }
    Ok(())
}

/// Accounts: id → currency, or why unusable.
type Accounts = HashMap<String, Result<Option<Currency>, Unusable>>;

fn accounts(ctx: &mut Context) -> Result<Option<(String, Accounts)>, Problem> {
    let Some(path) = find(ctx, "account") else {
        return Ok(None);
    };
    let t = Loaded::read(&path, ctx, &["id"], "a Zuora account table")?;
    let tz = ctx.options.timezone.clone();
    let mut out = Accounts::new();
    for r in &t.rows {
        let c = Cells { t: &t, r };
        let id = c.text("id").unwrap_or("").to_string();
        if skipped_deleted(ctx, &c, &id, &mut out) {
            continue;
        }
        let read = (|| -> Result<CustomerOut, Refusal> {
            new_id(&c, &id, &out, "account")?;
            let registered_on = match c.text("created_date") {
                None => None,
                Some(text) => match parse_when(text) {
                    Ok(w) => Some(start_day(&w, &tz)),
                    Err(e) => return Err(refusal("bad_value", "created_date", text, &e)),
                },
            };
            Ok(CustomerOut {
                id: id.clone(),
                name: c.text("name").map(str::to_string),
                registered_on,
                ..Default::default()
            })
        })();
        let currency = match c.text("currency") {
            None => Ok(None),
            Some(code) => money::currency(code)
                .map(Some)
                .map_err(|e| refusal("bad_value", "currency", code, &e)),
        };
        match (read, currency) {
            (Ok(customer), Ok(currency)) => {
                ctx.book
                    .customer(&customer)
                    .map_err(|e| ctx.book.write_problem(e))?;
                ctx.report.mapped(&t.file, r.line, &id, "customer", &id);
                out.insert(id, Ok(currency));
            }
            (Err(e), _) | (_, Err(e)) => {
                if !id.is_empty() {
                    out.entry(id.clone())
                        .or_insert(Err(Unusable::Refused(r.line)));
                }
                refuse(ctx, &t.file, r.line, &id, e);
            }
        }
    }
    Ok(Some((t.file, out)))
}

/// Product rate plans: id → usable or why not.
type Plans = HashMap<String, Result<(), Unusable>>;

fn product_rate_plans(ctx: &mut Context) -> Result<Option<(String, Plans)>, Problem> {
    let Some(path) = find(ctx, "product_rate_plan") else {
        return Ok(None);
    };
    let t = Loaded::read(&path, ctx, &["id"], "a Zuora product_rate_plan table")?;
    let mut out = Plans::new();
    for r in &t.rows {
        let c = Cells { t: &t, r };
        let id = c.text("id").unwrap_or("").to_string();
        if skipped_deleted(ctx, &c, &id, &mut out) {
            continue;
        }
        let checked = new_id(&c, &id, &out, "product rate plan");
        match checked {
            Ok(()) => {
                let p = ProductOut {
                    id: id.clone(),
                    name: c.text("name").map(str::to_string),
                    family: c.text("product_id").map(str::to_string),
                    kind: Some("plan".into()),
                    ..Default::default()
                };
                ctx.book
                    .product(&p)
                    .map_err(|e| ctx.book.write_problem(e))?;
                ctx.report.mapped(&t.file, r.line, &id, "product", &id);
                out.insert(id, Ok(()));
            }
            Err(e) => {
                if !id.is_empty() {
                    out.entry(id.clone())
                        .or_insert(Err(Unusable::Refused(r.line)));
                }
                refuse(ctx, &t.file, r.line, &id, e);
            }
        }
    }
    Ok(Some((t.file, out)))
}

/// A subscription's status, as far as lines go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    /// Active, Expired, Suspended.
    Billed,
    Cancelled,
    /// Draft, Pending Activation, Pending Acceptance.
    NotBilled,
}

/// One usable row of the subscription table.
#[derive(Clone)]
struct Sub {
    line: u64,
    original: String,
    version: u64,
    latest_flag: bool,
    status: Status,
    status_text: String,
    account: String,
    contract: String,
    cancelled: Option<Date>,
}

/// A subscription version id → the version, or why unusable; and per original id, the id of
/// the latest version.
struct Subs {
    file: String,
    versions: HashMap<String, Result<Sub, Unusable>>,
    latest: HashMap<String, String>,
}

fn subscriptions(
    ctx: &mut Context,
    path: &Path,
    accounts: &Option<(String, Accounts)>,
) -> Result<Subs, Problem> {
    let t = Loaded::read(
        path,
        ctx,
        &["id", "account_id", "status"],
        "a Zuora subscription table",
    )?;
    let mut versions: HashMap<String, Result<Sub, Unusable>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for r in &t.rows {
        let c = Cells { t: &t, r };
        let id = c.text("id").unwrap_or("").to_string();
        if skipped_deleted(ctx, &c, &id, &mut versions) {
            continue;
        }
        let read = (|| -> Result<Sub, Refusal> {
            new_id(&c, &id, &versions, "subscription")?;
            let account = c.required("account_id")?;
            if let Some((file, known)) = accounts {
                reference(known, file, "account", "account_id", account)?;
            }
            let status_text = c.required("status")?;
            let status = match status_text.to_ascii_lowercase().as_str() {
                "active" | "expired" | "suspended" => Status::Billed,
                "cancelled" | "canceled" => Status::Cancelled,
                "draft" | "pending activation" | "pending acceptance" => Status::NotBilled,
                _ => {
                    return Err(refusal(
                        "bad_value",
                        "status",
                        status_text,
                        "is not a Zuora subscription status (Draft, Pending Activation, \
                         Pending Acceptance, Active, Cancelled, Suspended, Expired)",
                    ))
                }
            };
            let version = match c.text("version") {
                None => 1,
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| refusal("bad_value", "version", v, "is not a whole number"))?,
            };
            let cancelled = c.day("cancelled_date")?;
            if status == Status::Cancelled && cancelled.is_none() {
                return Err(refusal(
                    "bad_value",
                    "cancelled_date",
                    "",
                    "is empty: a cancelled subscription must say when",
                ));
            }
            let original = c.text("original_id").unwrap_or(&id).to_string();
            Ok(Sub {
                line: r.line,
                contract: c.text("name").unwrap_or(&original).to_string(),
                original,
                version,
                latest_flag: c
                    .text("is_latest_version")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                status,
                status_text: status_text.to_string(),
                account: account.to_string(),
                cancelled,
            })
        })();
        match read {
            Ok(sub) => {
                order.push(id.clone());
                versions.insert(id, Ok(sub));
            }
            Err(e) => {
                if !id.is_empty() {
                    versions
                        .entry(id.clone())
                        .or_insert(Err(Unusable::Refused(r.line)));
                }
                refuse(ctx, &t.file, r.line, &id, e);
            }
        }
    }
    // The latest version of each subscription.
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in &order {
        if let Some(Ok(s)) = versions.get(id) {
            groups
                .entry(s.original.clone())
                .or_default()
                .push(id.clone());
        }
    }
    let mut latest: HashMap<String, String> = HashMap::new();
    let mut refused: Vec<(String, Refusal)> = Vec::new();
    for (original, ids) in &groups {
        let subs: Vec<(&String, &Sub)> = ids
            .iter()
            .filter_map(|id| match versions.get(id) {
                Some(Ok(s)) => Some((id, s)),
                _ => None,
            })
            .collect();
        let flagged: Vec<&(&String, &Sub)> = subs.iter().filter(|(_, s)| s.latest_flag).collect();
        let chosen = if let Some(first) = flagged.first() {
            for (id, _) in flagged.iter().skip(1) {
                refused.push((
                    (*id).clone(),
                    refusal(
                        "contradicts",
                        "is_latest_version",
                        "TRUE",
                        &format!(
                            "another version of subscription {original} is marked latest ({}:{})",
                            t.file, first.1.line
                        ),
                    ),
                ));
            }
            Some(first.0.clone())
        } else {
            let top = subs.iter().map(|(_, s)| s.version).max();
            let at_top: Vec<&(&String, &Sub)> = subs
                .iter()
                .filter(|(_, s)| Some(s.version) == top)
                .collect();
            if let Some(first) = at_top.first() {
                for (id, s) in at_top.iter().skip(1) {
                    refused.push((
                        (*id).clone(),
                        refusal(
                            "contradicts",
                            "version",
                            &s.version.to_string(),
                            &format!(
                                "another row of subscription {original} has the same version ({}:{})",
                                t.file, first.1.line
                            ),
                        ),
                    ));
                }
                Some(first.0.clone())
            } else {
                None
            }
        };
        if let Some(id) = chosen {
            latest.insert(original.clone(), id);
        }
    }
    for (id, e) in refused {
        if let Some(Ok(s)) = versions.get(&id) {
            let line = s.line;
            refuse(ctx, &t.file, line, &id, e);
            versions.insert(id, Err(Unusable::Refused(line)));
        }
    }
    for id in &order {
        let Some(Ok(s)) = versions.get(id) else {
            continue;
        };
        let latest_id = latest.get(&s.original);
        if latest_id == Some(id) {
            match s.status {
                Status::NotBilled => ctx.report.skipped(
                    &t.file,
                    s.line,
                    id,
                    "not_billable",
                    &format!("status {}: not billed", s.status_text),
                ),
                _ => ctx
                    .report
                    .mapped(&t.file, s.line, id, "contract", &s.contract),
            }
        } else {
            let latest_version = latest_id
                .and_then(|l| match versions.get(l) {
                    Some(Ok(l)) => Some(l.version),
                    _ => None,
                })
                .unwrap_or(0);
            ctx.report.merged(
                &t.file,
                s.line,
                id,
                "history",
                &s.contract,
                &format!(
                    "version {} of the subscription; version {latest_version} is the latest",
                    s.version
                ),
            );
        }
    }
    Ok(Subs {
        file: t.file,
        versions,
        latest,
    })
}

/// A billing period and, when it is a whole number of months, that number.
fn billing_period(text: &str, specific: Option<&str>) -> Result<(Period, Option<u32>), String> {
    let key = text.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    let months = |m: u32| Ok((Period::months(m), Some(m)));
    let specific_count = || -> Result<u32, String> {
        specific
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|n| (1..=1200).contains(n))
            .ok_or_else(|| {
                "needs a whole number of periods in specific_billing_period (1 to 1200)".to_string()
            })
    };
    match key.as_str() {
        "month" => months(1),
        "quarter" => months(3),
        "semi_annual" => months(6),
        "annual" => months(12),
        "eighteen_months" => months(18),
        "two_years" => months(24),
        "three_years" => months(36),
        "five_years" => months(60),
        "specific_months" => months(specific_count()?),
        "week" => Ok((
            Period {
                interval: Interval::Week,
                count: 1,
            },
            None,
        )),
        "specific_weeks" => Ok((
            Period {
                interval: Interval::Week,
                count: specific_count()?,
            },
            None,
        )),
        "subscription_term" => Err(
            "is the subscription's term, whose length the charge does not give: not supported"
                .into(),
        ),
        _ => Err(
            "is not a Zuora billing period (Month, Quarter, Semi_Annual, Annual, \
                  Eighteen_Months, Two_Years, Three_Years, Five_Years, Specific_Months, Week, \
                  Specific_Weeks)"
                .into(),
        ),
    }
}

/// A charge row of an earlier subscription version: line, id, original subscription, charge
/// number, segment.
type Earlier = (u64, String, String, Option<String>, Option<String>);

/// A valid recurring segment of a latest-version charge.
struct Segment {
    line: u64,
    id: String,
    segment: u32,
    start: Date,
    /// First day not served; `None`: open.
    end: Option<Date>,
    customer: String,
    contract: String,
    product: String,
    quantity: Decimal,
    unit_price: Decimal,
    currency: Currency,
    period: Period,
    cancelled: Option<Date>,
}

/// Converts a Zuora export (see the module documentation).
pub fn convert(ctx: &mut Context) -> Result<(), Problem> {
    let Some(charge_path) = find(ctx, "rate_plan_charge") else {
        return Err(ctx.input.problem(&format!(
            "no Zuora zuora_rate_plan_charge_data.csv (or rate_plan_charge.csv): is this a Zuora export? (found: {})",
            ctx.input.listing().join(", ")
        )));
    };
    let Some(sub_path) = find(ctx, "subscription") else {
        return Err(ctx.input.problem(&format!(
            "no Zuora zuora_subscription_data.csv (or subscription.csv): the charges' subscriptions give their customer and status (found: {})",
            ctx.input.listing().join(", ")
        )));
    };
    let t = Loaded::read(
        &charge_path,
        ctx,
        &[
            "id",
            "subscription_id",
            "charge_type",
            "effective_start_date",
            "effective_end_date",
            "billing_period",
            "product_rate_plan_id",
        ],
        "a Zuora rate_plan_charge table",
    )?;
    let accounts = accounts(ctx)?;
    let plans = product_rate_plans(ctx)?;
    let subs = subscriptions(ctx, &sub_path, &accounts)?;

    // Charges of earlier versions, resolved once the latest ones are known:
    // (line, id, original subscription, charge number, segment).
    let mut earlier: Vec<Earlier> = Vec::new();
    // Segments of latest versions: (original, charge number) → segments.
    let mut charges: BTreeMap<(String, String), Vec<Segment>> = BTreeMap::new();
    // Every segment a latest version has in the file, valid or not.
    let mut present: HashSet<(String, String, u32)> = HashSet::new();
    let mut discount_seen = false;
    let mut to_refuse: Vec<(u64, String, Refusal)> = Vec::new();
    for r in &t.rows {
        let c = Cells { t: &t, r };
        let id = c.text("id").unwrap_or("").to_string();
        if c.deleted() {
            ctx.report.skipped(
                &t.file,
                r.line,
                &id,
                "not_billable",
                "deleted in Zuora (_fivetran_deleted)",
            );
            continue;
        }
        let kind = c.text("charge_type").unwrap_or("");
        match kind
            .to_ascii_lowercase()
            .replace(['-', ' ', '_'], "")
            .as_str()
        {
            "usage" => {
                ctx.report.skipped(
                    &t.file,
                    r.line,
                    &id,
                    "metered",
                    "a Usage charge: billed on consumption",
                );
                continue;
            }
            "onetime" => {
                ctx.report
                    .skipped(&t.file, r.line, &id, "one_off", "a OneTime charge");
                continue;
            }
            "recurring" => {}
            _ => {
                refuse(
                    ctx,
                    &t.file,
                    r.line,
                    &id,
                    refusal(
                        "bad_value",
                        "charge_type",
                        kind,
                        "is not a Zuora charge type (Recurring, Usage, OneTime)",
                    ),
                );
                continue;
            }
        }
        if c.text("charge_model")
            .is_some_and(|m| m.to_ascii_lowercase().starts_with("discount"))
        {
            discount_seen = true;
            ctx.report.skipped(
                &t.file,
                r.line,
                &id,
                "not_used",
                "a discount charge: not applied to the lines it discounts (not supported)",
            );
            continue;
        }
        let sub_id = match c.required("subscription_id") {
            Ok(s) => s,
            Err(e) => {
                refuse(ctx, &t.file, r.line, &id, e);
                continue;
            }
        };
        let sub = match reference(
            &subs.versions,
            &subs.file,
            "subscription",
            "subscription_id",
            sub_id,
        ) {
            Ok(s) => s.clone(),
            Err(e) => {
                refuse(ctx, &t.file, r.line, &id, e);
                continue;
            }
        };
        let charge_number = c
            .text("charge_number")
            .or(c.text("original_id"))
            .unwrap_or(&id)
            .to_string();
        if subs.latest.get(&sub.original).map(String::as_str) != Some(sub_id) {
            earlier.push((
                r.line,
                id.clone(),
                sub.original.clone(),
                Some(charge_number),
                c.text("segment").map(str::to_string),
            ));
            continue;
        }
        if sub.status == Status::NotBilled {
            ctx.report.skipped(
                &t.file,
                r.line,
                &id,
                "not_billable",
                &format!(
                    "its subscription {sub_id} is {}: not billed",
                    sub.status_text
                ),
            );
            continue;
        }
        let segment =
            match c.text("segment") {
                None if t.col("segment").is_none() => Ok(1),
                None => Err(refusal(
                    "bad_value",
                    "segment",
                    "",
                    "is empty: a value is required",
                )),
                Some(s) => s.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    refusal("bad_value", "segment", s, "is not a whole number from 1")
                }),
            };
        if let Ok(n) = segment {
            present.insert((sub.original.clone(), charge_number.clone(), n));
        }
        let read = (|| -> Result<Segment, Refusal> {
            let segment = segment?;
            let start = c.day("effective_start_date")?.ok_or_else(|| {
                refusal(
                    "bad_value",
                    "effective_start_date",
                    "",
                    "is empty: a value is required",
                )
            })?;
            let end = c.day("effective_end_date")?;
            if let Some(e) = end {
                if e < start {
                    return Err(refusal(
                        "contradicts",
                        "effective_end_date",
                        &e.to_string(),
                        &format!("is before effective_start_date ({start})"),
                    ));
                }
            }
            if let Some(a) = c.text("account_id") {
                if a != sub.account {
                    return Err(refusal(
                        "contradicts",
                        "account_id",
                        a,
                        &format!(
                            "its subscription {sub_id} belongs to account {} ({}:{})",
                            sub.account, subs.file, sub.line
                        ),
                    ));
                }
            }
            let account_currency = accounts
                .as_ref()
                .and_then(|(_, known)| known.get(&sub.account))
                .and_then(|a| a.as_ref().ok().copied().flatten());
            let currency = match c.text("transaction_currency") {
                Some(code) => {
                    let cur = money::currency(code)
                        .map_err(|e| refusal("bad_value", "transaction_currency", code, &e))?;
                    if let Some(acc) = account_currency {
                        if acc != cur {
                            return Err(refusal(
                                "contradicts",
                                "transaction_currency",
                                code,
                                &format!("the account {} bills in {}", sub.account, acc.code()),
                            ));
                        }
                    }
                    cur
                }
                None => account_currency.ok_or_else(|| {
                    refusal(
                        "bad_value",
                        "transaction_currency",
                        "",
                        "is empty, and the account gives no currency",
                    )
                })?,
            };
            let bp = c.required("billing_period")?;
            let (period, months) = billing_period(bp, c.text("specific_billing_period"))
                .map_err(|e| refusal("bad_value", "billing_period", bp, &e))?;
            let product = c.required("product_rate_plan_id")?;
            if let Some((file, known)) = &plans {
                reference(
                    known,
                    file,
                    "product rate plan",
                    "product_rate_plan_id",
                    product,
                )?;
            }
            let model = c.text("charge_model").unwrap_or("").to_ascii_lowercase();
            let flat = model.starts_with("flat fee");
            let quantity = if flat {
                Decimal::ONE
            } else {
                c.amount("quantity")?.ok_or_else(|| {
                    refusal("bad_value", "quantity", "", "is empty: a value is required")
                })?
            };
            let price = if flat || model.starts_with("per unit") {
                c.amount("price")?
            } else {
                None
            };
            let (unit_price, period) = match price {
                Some(p) => (p, period),
                None => {
                    let mrr = c.amount("mrr")?.ok_or_else(|| {
                        refusal(
                            "bad_value",
                            "mrr",
                            "",
                            "is empty, and there is no price: the charge's value is unknown",
                        )
                    })?;
                    let (total, period) = match months {
                        Some(m) => (mrr * Decimal::from(m), period),
                        None => (mrr, Period::MONTHLY),
                    };
                    if quantity.is_zero() {
                        (Decimal::ZERO, period)
                    } else {
                        let unit = total.checked_div(quantity).map(|u| u.normalize());
                        match unit {
                            Some(u) if u * quantity == total => (u, period),
                            _ => {
                                return Err(refusal(
                                    "bad_value",
                                    "mrr",
                                    &mrr.to_string(),
                                    &format!(
                                        "over quantity {quantity} is not an exact unit price: give a price column"
                                    ),
                                ))
                            }
                        }
                    }
                }
            };
            Ok(Segment {
                line: r.line,
                id: id.clone(),
                segment,
                start,
                end,
                customer: sub.account.clone(),
                contract: sub.contract.clone(),
                product: product.to_string(),
                quantity,
                unit_price,
                currency,
                period,
                cancelled: (sub.status == Status::Cancelled)
                    .then_some(sub.cancelled)
                    .flatten(),
            })
        })();
        match read {
            Ok(s) => charges
                .entry((sub.original.clone(), charge_number))
                .or_default()
                .push(s),
            Err(e) => to_refuse.push((r.line, id, e)),
        }
    }
    for (line, id, e) in to_refuse {
        refuse(ctx, &t.file, line, &id, e);
    }
    if discount_seen {
        ctx.report.notes.push(
            "Zuora discount charges were left out: the book's MRR is before those discounts".into(),
        );
    }

    // Lines, charge by charge, segment by segment.
    let mut line_ids: HashSet<(String, String, String)> = HashSet::new();
    for ((original, number), mut segments) in charges {
        segments.sort_by_key(|s| (s.segment, s.line));
        // The previous segment's line id and first day not served.
        let mut previous: Option<(u32, String, Option<Date>)> = None;
        let mut last_segment: Option<(u32, u64)> = None;
        for s in segments {
            if let Some((n, line)) = last_segment {
                if n == s.segment {
                    refuse(
                        ctx,
                        &t.file,
                        s.line,
                        &s.id,
                        refusal(
                            "contradicts",
                            "segment",
                            &s.segment.to_string(),
                            &format!(
                                "charge {number} has another row for this segment ({}:{line})",
                                t.file
                            ),
                        ),
                    );
                    continue;
                }
            }
            last_segment = Some((s.segment, s.line));
            if s.segment > 1
                && !present.contains(&(original.clone(), number.clone(), s.segment - 1))
            {
                refuse(
                    ctx,
                    &t.file,
                    s.line,
                    &s.id,
                    refusal(
                        "missing_reference",
                        "segment",
                        &s.segment.to_string(),
                        &format!(
                            "segment {} of charge {number} is not in {}",
                            s.segment - 1,
                            t.file
                        ),
                    ),
                );
                previous = None;
                continue;
            }
            let prev = previous.take();
            if let Some((n, _, Some(prev_end))) = &prev {
                if *n + 1 == s.segment && s.start < *prev_end {
                    refuse(
                        ctx,
                        &t.file,
                        s.line,
                        &s.id,
                        refusal(
                            "contradicts",
                            "effective_start_date",
                            &s.start.to_string(),
                            &format!(
                                "is before the effective end date of segment {n} of charge {number} ({prev_end})"
                            ),
                        ),
                    );
                    continue;
                }
            }
            let end = match (s.end, s.cancelled) {
                (Some(e), Some(c)) => Some(e.min(c)),
                (e, c) => e.or(c),
            };
            if end.is_some_and(|e| e <= s.start) {
                let detail = if s.cancelled.is_some_and(|c| c <= s.start) {
                    "starts on or after the subscription's cancellation"
                } else {
                    "lasts no day (effective end date = start date)"
                };
                ctx.report
                    .skipped(&t.file, s.line, &s.id, "not_billable", detail);
                continue;
            }
            if s.unit_price.is_zero() || s.quantity.is_zero() {
                ctx.report.skipped(
                    &t.file,
                    s.line,
                    &s.id,
                    "zero_amount",
                    "a price or quantity of zero",
                );
                continue;
            }
            let id = format!("{}/{number}@{}", s.contract, s.segment);
            let revises = match prev {
                Some((n, prev_id, Some(prev_end))) if n + 1 == s.segment && prev_end == s.start => {
                    Some(prev_id)
                }
                _ => None,
            };
            let line = LineOut {
                id: id.clone(),
                customer_id: s.customer.clone(),
                contract_id: Some(s.contract.clone()),
                product_id: s.product.clone(),
                quantity: s.quantity,
                unit_price: s.unit_price,
                discount_pct: None,
                currency: Some(s.currency),
                period: s.period,
                start: s.start,
                end: end.map(day_before),
                sold_on: None,
                revises,
            };
            ctx.book
                .line(&line)
                .map_err(|e| ctx.book.write_problem(e))?;
            ctx.report.mapped(&t.file, s.line, &s.id, "recurring", &id);
            line_ids.insert((original.clone(), number.clone(), s.segment.to_string()));
            previous = Some((s.segment, id, s.end));
        }
    }
    for (line, id, original, number, segment) in earlier {
        let found = match (&number, &segment) {
            (Some(n), Some(s)) => {
                line_ids
                    .get(&(original.clone(), n.clone(), s.clone()))
                    .map(|_| {
                        let contract = subs
                            .latest
                            .get(&original)
                            .and_then(|l| match subs.versions.get(l) {
                                Some(Ok(s)) => Some(s.contract.clone()),
                                _ => None,
                            })
                            .unwrap_or_default();
                        format!("{contract}/{n}@{s}")
                    })
            }
            _ => None,
        };
        match found {
            Some(book) => ctx.report.merged(
                &t.file,
                line,
                &id,
                "history",
                &book,
                "the same segment in an earlier version of the subscription",
            ),
            None => ctx.report.skipped(
                &t.file,
                line,
                &id,
                "not_used",
                "a charge of an earlier version of the subscription that the latest version has no line for",
            ),
        }
    }
    Ok(())
}
