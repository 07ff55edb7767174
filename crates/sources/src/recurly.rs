//! Recurly, from the warehouse tables that Fivetran syncs (`subscription_history`,
//! `subscription_add_on_history`, `plan_history`, `account_history`; file names with or
//! without the `_data` suffix and a `recurly_` prefix).
//!
//! Tables read (every row of them gets exactly one report row):
//! - `subscription_history` (required): versions of each subscription, one row per
//!   `updated_at`.
//! - `plan_history` (required): the billing interval of each plan (`interval_unit` `days` or
//!   `months`, `interval_length`), the product of the lines. The latest version of a plan is
//!   mapped as a product (id = the plan `code`, or its `id` when it has none); earlier versions
//!   are merged (`history`).
//! - `subscription_add_on_history` (optional): add-ons, one line each.
//! - `account_history` (optional): customers, the latest version of each account mapped
//!   (name = `company`, else first and last name; registered on `created_at`), earlier ones
//!   merged (`history`). When present, every subscription's `account_id` must be in it.
//!
//! Not read: `plan_currency_history` (subscriptions carry their own price and currency),
//! `subscription_change_history` (a change that was applied is already a version of
//! `subscription_history`; a pending one is not billed yet), invoices, line items,
//! transactions, coupons.
//!
//! Rules:
//! - Amounts are decimal units of the currency (`unit_amount` `99.0` is 99 dollars), as in
//!   Recurly's API v3 ("unit_amount: Float, supports up to 2 decimal places", priced in the
//!   subscription's currency:
//!   <https://rubydoc.info/github/recurly/recurly-client-ruby/Recurly/Resources/SubscriptionAddOn>);
//!   only the old API v2 wrote `unit_amount_in_cents`.
//! - A subscription's versions are read in `updated_at` order. Each run of consecutive
//!   versions with one priced state (plan, `unit_amount`, `quantity`, `currency`) is one line,
//!   id `SUBSCRIPTION_ID@N` (N = the run's rank, from 1, stable for a given history); the
//!   first row of the run is `mapped`, the others `merged` (`history`). A run after the first
//!   starts on its first version's `updated_at` and `revises` the line before it (which then
//!   ends the day before). The contract of every line is the subscription id.
//! - The first line starts at `activated_at` (a `future` subscription, not activated yet: at
//!   `current_period_started_at`). A trial is free: paid service starts at `trial_ends_at`; a
//!   run lying wholly inside the trial is `skipped` (`trial_at_zero`).
//! - The end, from the latest version's `state` (<https://docs.recurly.com/docs/subscriptions>:
//!   "Active subscriptions are both regular paying subscriptions and subscriptions currently in
//!   a trial"; "Canceled subscriptions will automatically expire at the term renewal date";
//!   paused subscriptions "will not be invoiced"; a canceled subscription is active until its
//!   renewal date: <https://support.recurly.com/hc/en-us/articles/360050836151>):
//!   `active`, `future`: open; `canceled`: `expires_at`, else `current_period_ends_at`;
//!   `expired`: `expires_at`; `paused`: `paused_at` (a pause that has ended, followed by an
//!   `active` version, is not a gap: a limit of this converter); `failed`: nothing was billed,
//!   every version `skipped` (`not_billable`). An instant at 00:00 ends the day before.
//! - A run replaced on the day it starts, or changed after the subscription ended, is merged
//!   into the nearest line that has days (`history`). A run with a price or quantity of zero is
//!   `skipped` (`zero_amount`) and the next line does not revise it.
//! - Add-ons: one line per add-on of a subscription (product = `plan_add_on_id`, kind
//!   `addon`), its versions made into lines like the subscription's (key: `quantity`,
//!   `unit_amount`), id `SUBSCRIPTION_ID+ADD_ON_ID@N`, in the subscription's currency, plan
//!   period and contract, from `created_at` (not before the subscription's paid start) to
//!   `expired_at` or the subscription's end.
//! - Refused (never guessed), each a problem `file:line: column: value: reason`: an unreadable
//!   value (`bad_value`); a plan, account or subscription that is not in its table, or that
//!   was refused (`missing_reference`); an end before a start, a subscription whose versions
//!   name different accounts, two differing versions at one `updated_at` (`contradicts`).
//!
//! The tables are read whole into memory (a subscription's versions must be seen together).

use crate::book::{interval_unit, CustomerOut, LineOut, Period, ProductOut};
use crate::input::display_name;
use crate::money;
use crate::time::{day_before, end_day, parse_when, start_day, When};
use crate::warehouse::{reference, refusal, refuse, Cells, Loaded, Refusal};
use crate::Context;
use expansa_import::{Problem, SharedRecord as Record};
use expansa_ledger::{Currency, Date};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::path::PathBuf;

/// The names a table may have: `base_data.csv`, `base.csv`, with or without `recurly_`.
fn names(base: &str) -> Vec<String> {
    vec![
        format!("{base}_data.csv"),
        format!("{base}.csv"),
        format!("recurly_{base}_data.csv"),
        format!("recurly_{base}.csv"),
    ]
}

fn find(ctx: &Context, base: &str) -> Option<PathBuf> {
    ctx.input.find(&names(base))
}

impl Cells<'_> {
    fn instant(&self, col: &str, tz: &TimeZone) -> Result<Option<Timestamp>, Refusal> {
        match self.text(col) {
            None => Ok(None),
            Some(t) => instant(t, tz)
                .map(Some)
                .map_err(|e| refusal("bad_value", col, t, &e)),
        }
    }

    fn required_instant(&self, col: &str, tz: &TimeZone) -> Result<Timestamp, Refusal> {
        let t = self.required(col)?;
        instant(t, tz).map_err(|e| refusal("bad_value", col, t, &e))
    }
}

/// An instant of the source; a plain day is 00:00 of that day in the book's time zone.
fn instant(text: &str, tz: &TimeZone) -> Result<Timestamp, String> {
    match parse_when(text)? {
        When::Instant(t) => Ok(t),
        When::Day(d) => d
            .to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .map_err(|e| e.to_string()),
    }
}

fn day_of(t: Timestamp, tz: &TimeZone) -> Date {
    start_day(&When::Instant(t), tz)
}

fn last_day(t: Timestamp, tz: &TimeZone) -> Date {
    end_day(&When::Instant(t), tz)
}

/// Whether two rows are the same but for the `_fivetran_synced` column.
fn same_row(t: &Loaded, a: &Record, b: &Record) -> bool {
    let skip = t.col("_fivetran_synced");
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .enumerate()
            .all(|(k, (x, y))| Some(k) == skip || x.trim() == y.trim())
}

/// What became of a version row, decided once its subscription is seen whole.
#[derive(Clone, Debug)]
enum Fate {
    /// First row of a line.
    Line(String),
    /// Folded into a line (`history`), with a detail.
    Merged(String, String),
    /// Skipped, with reason and detail.
    Skipped(&'static str, String),
}

/// One version of something priced (a subscription or an add-on): its row, when it was
/// written and the priced state that makes lines differ.
struct Version {
    updated: Timestamp,
    key: Vec<String>,
    zero: bool,
}

/// The span of paid service a run of versions can cover.
struct Span {
    /// Service starts (before any trial): the first run's start.
    base: Timestamp,
    /// Paid service starts here at the earliest (a trial's end).
    paid_from: Option<Timestamp>,
    /// Service ends (exclusive instant); `None`: open.
    end: Option<Timestamp>,
}

/// A line made of runs of versions.
#[derive(Debug)]
struct Planned {
    id: String,
    start: Date,
    end: Option<Date>,
    revises: Option<String>,
    /// Index of the version whose values the line takes (the run's first).
    first: usize,
}

/// Cuts versions (sorted by `updated`) into runs of one priced state and decides the lines
/// and the fate of every version. `prefix` makes line ids (`prefix@N`).
fn plan_runs(
    versions: &[Version],
    span: &Span,
    prefix: &str,
    tz: &TimeZone,
) -> (Vec<Planned>, Vec<Fate>) {
    let mut fates: Vec<Fate> = vec![Fate::Skipped("not_billable", String::new()); versions.len()];
    // Runs: (first index, last index exclusive).
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (k, v) in versions.iter().enumerate() {
        match runs.last_mut() {
            Some((a, b)) if versions[*a].key == v.key => *b = k + 1,
            _ => runs.push((k, k + 1)),
        }
    }
    let raw_start = |r: usize| -> Timestamp {
        if r == 0 {
            span.base
        } else {
            versions[runs[r].0].updated.max(span.base)
        }
    };
    // Live runs: (run index, start instant, exclusive end instant).
    struct Live {
        run: usize,
        start: Timestamp,
        end: Option<Timestamp>,
    }
    let mut live: Vec<Live> = Vec::new();
    // Runs to merge into a neighbour, or skipped.
    let mut dead: Vec<(usize, Option<(&'static str, String)>)> = Vec::new();
    for r in 0..runs.len() {
        let raw = raw_start(r);
        let next = if r + 1 < runs.len() {
            Some(raw_start(r + 1))
        } else {
            None
        };
        let raw_end = match (next, span.end) {
            (Some(n), Some(e)) => Some(n.min(e)),
            (n, e) => n.or(e),
        };
        let start = match span.paid_from {
            Some(p) if p > raw => p,
            _ => raw,
        };
        let has_days = raw_end.is_none_or(|e| start < e);
        if has_days {
            live.push(Live {
                run: r,
                start,
                end: raw_end,
            });
        } else if span
            .paid_from
            .is_some_and(|p| raw_end.is_some_and(|e| e <= p))
        {
            dead.push((
                r,
                Some((
                    "trial_at_zero",
                    "a version wholly inside the free trial".to_string(),
                )),
            ));
        } else {
            dead.push((r, None));
        }
    }
    // A live run whose next live run starts on the same day has no day of its own.
    let mut k = live.len();
    while k > 1 {
        k -= 1;
        if day_of(live[k].start, tz) <= day_of(live[k - 1].start, tz) {
            let gone = live.remove(k - 1);
            live[k - 1].start = gone.start;
            dead.push((gone.run, None));
        }
    }
    // Zero-priced live runs are skipped and break the chain of revisions.
    let mut planned: Vec<Planned> = Vec::new();
    let mut line_of_run: HashMap<usize, String> = HashMap::new();
    let mut previous: Option<String> = None;
    for (k, l) in live.iter().enumerate() {
        let (a, _) = runs[l.run];
        if versions[a].zero {
            dead.push((
                l.run,
                Some(("zero_amount", "a price or quantity of zero".to_string())),
            ));
            previous = None;
            continue;
        }
        let id = format!("{prefix}@{}", l.run + 1);
        let end = match (live.get(k + 1), l.end) {
            (Some(n), _) => Some(day_before(day_of(n.start, tz))),
            (None, Some(e)) => Some(last_day(e, tz)),
            (None, None) => None,
        };
        planned.push(Planned {
            id: id.clone(),
            start: day_of(l.start, tz),
            end,
            revises: previous.take(),
            first: a,
        });
        line_of_run.insert(l.run, id.clone());
        previous = Some(id);
    }
    for l in &live {
        if let Some(id) = line_of_run.get(&l.run) {
            let (a, b) = runs[l.run];
            fates[a] = Fate::Line(id.clone());
            for f in fates.iter_mut().take(b).skip(a + 1) {
                *f = Fate::Merged(id.clone(), "a later version of the same state".into());
            }
        }
    }
    for (r, skip) in dead {
        let (a, b) = runs[r];
        let fate = match skip {
            Some((reason, detail)) => Fate::Skipped(reason, detail),
            None => {
                // The nearest line: the one before, else the one after.
                let before = line_of_run
                    .iter()
                    .filter(|(k, _)| **k < r)
                    .max_by_key(|(k, _)| **k);
                let after = line_of_run
                    .iter()
                    .filter(|(k, _)| **k > r)
                    .min_by_key(|(k, _)| **k);
                match before.or(after) {
                    Some((_, id)) => Fate::Merged(
                        id.clone(),
                        "a version without a day of paid service of its own".into(),
                    ),
                    None => Fate::Skipped("not_billable", "no day of paid service".to_string()),
                }
            }
        };
        for f in fates.iter_mut().take(b).skip(a) {
            *f = fate.clone();
        }
    }
    (planned, fates)
}

/// Accounts: id → whether usable (`Err(line)` when refused).
type Accounts = Option<HashMap<String, Result<(), u64>>>;

/// An id of a history table: the row of its latest version, and the lines of its earlier
/// versions (newest first).
struct History {
    id: String,
    latest: usize,
    earlier: Vec<u64>,
}

/// Groups a history table's rows by `id`, in the order the ids first appear, each id's versions
/// ordered by the instant in the column `when` names (then by row). A row without an id or
/// that instant is refused now, and its id (if any) kept in `out` as refused by that line
/// unless `out` has it already.
fn histories<T>(
    ctx: &mut Context,
    t: &Loaded,
    tz: &TimeZone,
    when: impl Fn(&Cells) -> &'static str,
    out: &mut HashMap<String, Result<T, u64>>,
) -> Vec<History> {
    let mut by_id: HashMap<String, Vec<(Timestamp, usize)>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for (k, r) in t.rows.iter().enumerate() {
        let c = Cells { t, r };
        let id = c.text("id").unwrap_or("").to_string();
        match c
            .required("id")
            .and_then(|_| c.required_instant(when(&c), tz))
        {
            Ok(at) => {
                if !by_id.contains_key(&id) {
                    order.push(id.clone());
                }
                by_id.entry(id).or_default().push((at, k));
            }
            Err(e) => {
                if !id.is_empty() {
                    out.entry(id.clone()).or_insert(Err(r.line));
                }
                refuse(ctx, &t.file, r.line, &id, e);
            }
        }
    }
    let mut histories = Vec::new();
    for id in order {
        let Some(mut versions) = by_id.remove(&id) else {
            continue;
        };
        versions.sort_by_key(|(at, k)| (*at, *k));
        let Some(&(_, latest)) = versions.last() else {
            continue;
        };
        let earlier = versions
            .iter()
            .rev()
            .skip(1)
            .map(|&(_, k)| t.rows[k].line)
            .collect();
        histories.push(History {
            id,
            latest,
            earlier,
        });
    }
    histories
}

fn accounts(ctx: &mut Context) -> Result<Accounts, Problem> {
    let Some(path) = find(ctx, "account_history") else {
        return Ok(None);
    };
    let t = Loaded::read(&path, ctx, &["id"], "a Recurly account_history table")?;
    let tz = ctx.options.timezone.clone();
    let mut out: HashMap<String, Result<(), u64>> = HashMap::new();
    let when = |c: &Cells| {
        if c.text("updated_at").is_some() {
            "updated_at"
        } else {
            "created_at"
        }
    };
    for History {
        id,
        latest,
        earlier,
    } in histories(ctx, &t, &tz, when, &mut out)
    {
        let r = &t.rows[latest];
        let c = Cells { t: &t, r };
        let name = c.text("company").map(str::to_string).or_else(|| {
            let n = [c.text("account_first_name"), c.text("account_last_name")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (!n.is_empty()).then_some(n)
        });
        let registered_on = match c.instant("created_at", &tz) {
            Ok(t) => t.map(|t| day_of(t, &tz)),
            Err(e) => {
                refuse(ctx, &t.file, r.line, &id, e);
                out.insert(id.clone(), Err(r.line));
                for &line in &earlier {
                    ctx.report.skipped(
                        &t.file,
                        line,
                        &id,
                        "not_used",
                        "an earlier version of a refused account",
                    );
                }
                continue;
            }
        };
        let customer = CustomerOut {
            id: id.clone(),
            name,
            registered_on,
            country: c.text("account_country").map(str::to_string),
            ..Default::default()
        };
        ctx.book
            .customer(&customer)
            .map_err(|e| ctx.book.write_problem(e))?;
        ctx.report.mapped(&t.file, r.line, &id, "customer", &id);
        out.insert(id.clone(), Ok(()));
        for &line in &earlier {
            ctx.report.merged(
                &t.file,
                line,
                &id,
                "history",
                &id,
                "an earlier version of the account",
            );
        }
    }
    Ok(Some(out))
}

/// A plan's product and billing period.
#[derive(Clone)]
struct Plan {
    product: String,
    period: Period,
}

/// Plans: id → the plan, or the line that refused it.
type Plans = HashMap<String, Result<Plan, u64>>;

/// Reads the plans (the file name, and each plan).
fn plans(ctx: &mut Context) -> Result<(String, Plans), Problem> {
    let Some(path) = find(ctx, "plan_history") else {
        return Err(ctx.input.problem(&format!(
            "no Recurly plan_history_data.csv (or plan_history.csv): it gives each plan's billing interval (found: {})",
            ctx.input.listing().join(", ")
        )));
    };
    let t = Loaded::read(
        &path,
        ctx,
        &["id", "interval_unit", "interval_length"],
        "a Recurly plan_history table",
    )?;
    let tz = ctx.options.timezone.clone();
    let mut out: HashMap<String, Result<Plan, u64>> = HashMap::new();
    for History {
        id,
        latest,
        earlier,
    } in histories(ctx, &t, &tz, |_| "updated_at", &mut out)
    {
        let r = &t.rows[latest];
        let c = Cells { t: &t, r };
        let period = (|| -> Result<Period, Refusal> {
            let unit = c.required("interval_unit")?;
            let interval = match interval_unit(unit) {
                Some(i) => i,
                None => {
                    return Err(refusal(
                        "bad_value",
                        "interval_unit",
                        unit,
                        "is not a billing interval (Recurly writes days or months)",
                    ))
                }
            };
            let len = c.required("interval_length")?;
            let count = len
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1200).contains(n))
                .ok_or_else(|| {
                    refusal(
                        "bad_value",
                        "interval_length",
                        len,
                        "is not a whole number from 1 to 1200",
                    )
                })?;
            Ok(Period { interval, count })
        })();
        match period {
            Ok(period) => {
                let product = c.text("code").unwrap_or(&id).to_string();
                let p = ProductOut {
                    id: product.clone(),
                    name: c.text("name").map(str::to_string),
                    kind: Some("plan".into()),
                    ..Default::default()
                };
                ctx.book
                    .product(&p)
                    .map_err(|e| ctx.book.write_problem(e))?;
                ctx.report.mapped(&t.file, r.line, &id, "product", &product);
                for line in earlier {
                    ctx.report.merged(
                        &t.file,
                        line,
                        &id,
                        "history",
                        &product,
                        "an earlier version of the plan",
                    );
                }
                out.insert(id, Ok(Plan { product, period }));
            }
            Err(e) => {
                refuse(ctx, &t.file, r.line, &id, e);
                for line in earlier {
                    ctx.report.skipped(
                        &t.file,
                        line,
                        &id,
                        "not_used",
                        "an earlier version of a refused plan",
                    );
                }
                out.insert(id, Err(r.line));
            }
        }
    }
    Ok((t.file, out))
}

/// The state of a subscription version.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Active,
    Canceled,
    Expired,
    Future,
    Paused,
    Failed,
}

/// One valid row of subscription_history.
struct SubRow {
    line: u64,
    updated: Timestamp,
    account: String,
    plan: Plan,
    currency: Currency,
    unit_amount: Decimal,
    quantity: Decimal,
    state: State,
    start: Timestamp,
    period_end: Option<Timestamp>,
    expires: Option<Timestamp>,
    trial_end: Option<Timestamp>,
    paused: Option<Timestamp>,
}

/// A subscription made into lines: what add-ons need of it.
enum SubOutcome {
    /// Its lines: customer, currency, period, paid span.
    Lines {
        account: String,
        currency: Currency,
        period: Period,
        paid_start: Timestamp,
        end: Option<Timestamp>,
        trial_end: Option<Timestamp>,
    },
    /// No line, on purpose (reason).
    Skipped(&'static str),
    /// Every row refused.
    Refused(u64),
}

#[allow(clippy::too_many_arguments)]
fn read_sub_row(
    c: &Cells,
    tz: &TimeZone,
    accounts: &Accounts,
    account_file: &str,
    plans: &Plans,
    plan_file: &str,
) -> Result<SubRow, Refusal> {
    let updated = c.required_instant("updated_at", tz)?;
    let account = c.required("account_id")?;
    if let Some(known) = accounts {
        reference(known, account_file, "account", "account_id", account)?;
    }
    let plan_id = c.required("plan_id")?;
    let plan = reference(plans, plan_file, "plan", "plan_id", plan_id)?.clone();
    let code = c.required("currency")?;
    let currency = money::currency(code).map_err(|e| refusal("bad_value", "currency", code, &e))?;
    let unit_amount = c.required_amount("unit_amount")?;
    let quantity = c.required_amount("quantity")?;
    let state_text = c.required("state")?;
    let state = match state_text.to_ascii_lowercase().as_str() {
        "active" => State::Active,
        "canceled" | "cancelled" => State::Canceled,
        "expired" => State::Expired,
        "future" => State::Future,
        "paused" => State::Paused,
        "failed" => State::Failed,
        _ => {
            return Err(refusal(
                "bad_value",
                "state",
                state_text,
                "is not a Recurly subscription state (active, canceled, expired, future, paused, failed)",
            ))
        }
    };
    let activated = c.instant("activated_at", tz)?;
    let period_start = c.instant("current_period_started_at", tz)?;
    let start = match activated.or(period_start) {
        Some(s) => s,
        None => {
            return Err(refusal(
                "bad_value",
                "activated_at",
                "",
                "is empty, and so is current_period_started_at: the subscription has no start",
            ))
        }
    };
    let period_end = c.instant("current_period_ends_at", tz)?;
    let expires = c.instant("expires_at", tz)?;
    let canceled = c.instant("canceled_at", tz)?;
    let trial_start = c.instant("trial_started_at", tz)?;
    let trial_end = c.instant("trial_ends_at", tz)?;
    let paused = c.instant("paused_at", tz)?;
    let shown = |t: Timestamp| t.to_string();
    if let Some(e) = expires {
        if e < start {
            return Err(refusal(
                "contradicts",
                "expires_at",
                &shown(e),
                &format!("is before the start ({})", shown(start)),
            ));
        }
    }
    if let Some(e) = canceled {
        if e < start {
            return Err(refusal(
                "contradicts",
                "canceled_at",
                &shown(e),
                &format!("is before the start ({})", shown(start)),
            ));
        }
    }
    if let (Some(a), Some(b)) = (trial_start, trial_end) {
        if b < a {
            return Err(refusal(
                "contradicts",
                "trial_ends_at",
                &shown(b),
                &format!("is before trial_started_at ({})", shown(a)),
            ));
        }
    }
    if state == State::Expired && expires.is_none() {
        return Err(refusal(
            "bad_value",
            "expires_at",
            "",
            "is empty: an expired subscription must say when it expired",
        ));
    }
    if state == State::Paused && paused.is_none() {
        return Err(refusal(
            "bad_value",
            "paused_at",
            "",
            "is empty: a paused subscription must say when it paused",
        ));
    }
    if state == State::Canceled && expires.is_none() && period_end.is_none() {
        return Err(refusal(
            "bad_value",
            "current_period_ends_at",
            "",
            "is empty, and so is expires_at: a canceled subscription must say when it ends",
        ));
    }
    Ok(SubRow {
        line: c.r.line,
        updated,
        account: account.to_string(),
        plan,
        currency,
        unit_amount,
        quantity,
        state,
        start,
        period_end,
        expires,
        trial_end,
        paused,
    })
}

/// Reports a version's fate; `reason` is the mapped row's reason.
fn report_fate(ctx: &mut Context, file: &str, line: u64, id: &str, fate: &Fate, reason: &str) {
    match fate {
        Fate::Line(book) => ctx.report.mapped(file, line, id, reason, book),
        Fate::Merged(book, detail) => ctx.report.merged(file, line, id, "history", book, detail),
        Fate::Skipped(why, detail) => ctx.report.skipped(file, line, id, why, detail),
    }
}

/// Converts a Recurly export (see the module documentation).
pub fn convert(ctx: &mut Context) -> Result<(), Problem> {
    let Some(sub_path) = find(ctx, "subscription_history") else {
        return Err(ctx.input.problem(&format!(
            "no Recurly subscription_history_data.csv (or subscription_history.csv): is this a Recurly export? (found: {})",
            ctx.input.listing().join(", ")
        )));
    };
    let subs = Loaded::read(
        &sub_path,
        ctx,
        &[
            "id",
            "updated_at",
            "account_id",
            "plan_id",
            "state",
            "unit_amount",
            "quantity",
            "currency",
        ],
        "a Recurly subscription_history table",
    )?;
    let account_file = find(ctx, "account_history")
        .map(|p| display_name(&p))
        .unwrap_or_default();
    let accounts = accounts(ctx)?;
    let (plan_file, plans) = plans(ctx)?;
    let tz = ctx.options.timezone.clone();

    // Read every version; refused ones are reported now.
    let mut by_id: HashMap<String, Vec<SubRow>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut refused_line: HashMap<String, u64> = HashMap::new();
    let mut raw: HashMap<u64, usize> = HashMap::new();
    for (k, r) in subs.rows.iter().enumerate() {
        raw.insert(r.line, k);
        let c = Cells { t: &subs, r };
        let id = c.text("id").unwrap_or("").to_string();
        let row = c
            .required("id")
            .and_then(|_| read_sub_row(&c, &tz, &accounts, &account_file, &plans, &plan_file));
        match row {
            Ok(row) => {
                if !by_id.contains_key(&id) {
                    order.push(id.clone());
                }
                by_id.entry(id).or_default().push(row);
            }
            Err(e) => {
                if !id.is_empty() {
                    refused_line.entry(id.clone()).or_insert(r.line);
                }
                refuse(ctx, &subs.file, r.line, &id, e);
            }
        }
    }
    for id in refused_line.keys() {
        if !by_id.contains_key(id) && !order.contains(id) {
            order.push(id.clone());
        }
    }

    let mut outcomes: HashMap<String, SubOutcome> = HashMap::new();
    for id in &order {
        let Some(mut rows) = by_id.remove(id) else {
            if let Some(line) = refused_line.get(id) {
                outcomes.insert(id.clone(), SubOutcome::Refused(*line));
            }
            continue;
        };
        rows.sort_by_key(|r| (r.updated, r.line));
        // Same instant twice: a duplicate, or a contradiction.
        let mut kept: Vec<SubRow> = Vec::new();
        let mut duplicates: Vec<(u64, usize)> = Vec::new();
        for row in rows {
            if let Some(prev) = kept.last() {
                if prev.updated == row.updated {
                    let (a, b) = (raw.get(&prev.line), raw.get(&row.line));
                    let same = match (a, b) {
                        (Some(&a), Some(&b)) => same_row(&subs, &subs.rows[a], &subs.rows[b]),
                        _ => false,
                    };
                    if same {
                        duplicates.push((row.line, kept.len() - 1));
                    } else {
                        refuse(
                            ctx,
                            &subs.file,
                            row.line,
                            id,
                            refusal(
                                "contradicts",
                                "updated_at",
                                &row.updated.to_string(),
                                &format!(
                                    "another version of subscription {id} at the same updated_at differs ({}:{})",
                                    subs.file, prev.line
                                ),
                            ),
                        );
                    }
                    continue;
                }
                if prev.account != row.account {
                    let first = &kept[0];
                    refuse(
                        ctx,
                        &subs.file,
                        row.line,
                        id,
                        refusal(
                            "contradicts",
                            "account_id",
                            &row.account,
                            &format!(
                                "an earlier version of subscription {id} belongs to account {} ({}:{})",
                                first.account, subs.file, first.line
                            ),
                        ),
                    );
                    continue;
                }
            }
            kept.push(row);
        }
        let Some(latest) = kept.last() else {
            outcomes.insert(
                id.clone(),
                SubOutcome::Refused(refused_line.get(id).copied().unwrap_or(0)),
            );
            continue;
        };
        let base = kept.first().map(|r| r.start).unwrap_or(latest.start);
        let end = match latest.state {
            State::Active | State::Future | State::Failed => None,
            State::Canceled => latest.expires.or(latest.period_end),
            State::Expired => latest.expires,
            State::Paused => latest.paused,
        };
        let fates: Vec<Fate>;
        if latest.state == State::Failed {
            fates = vec![
                Fate::Skipped(
                    "not_billable",
                    "the subscription failed: nothing was billed".into()
                );
                kept.len()
            ];
            outcomes.insert(id.clone(), SubOutcome::Skipped("not_billable"));
        } else {
            let versions: Vec<Version> = kept
                .iter()
                .map(|r| Version {
                    updated: r.updated,
                    key: vec![
                        r.plan.product.clone(),
                        r.unit_amount.to_string(),
                        r.quantity.to_string(),
                        r.currency.code().to_string(),
                    ],
                    zero: r.unit_amount.is_zero() || r.quantity.is_zero(),
                })
                .collect();
            let span = Span {
                base,
                paid_from: latest.trial_end,
                end,
            };
            let (planned, f) = plan_runs(&versions, &span, id, &tz);
            fates = f;
            for p in &planned {
                let Some(v) = kept.get(p.first) else { continue };
                let line = LineOut {
                    id: p.id.clone(),
                    customer_id: v.account.clone(),
                    contract_id: Some(id.clone()),
                    product_id: v.plan.product.clone(),
                    quantity: v.quantity,
                    unit_price: v.unit_amount,
                    discount_pct: None,
                    currency: Some(v.currency),
                    period: v.plan.period,
                    start: p.start,
                    end: p.end,
                    sold_on: None,
                    revises: p.revises.clone(),
                };
                ctx.book
                    .line(&line)
                    .map_err(|e| ctx.book.write_problem(e))?;
            }
            let paid_start = match latest.trial_end {
                Some(t) if t > base => t,
                _ => base,
            };
            outcomes.insert(
                id.clone(),
                if planned.is_empty() {
                    SubOutcome::Skipped(match fates.first() {
                        Some(Fate::Skipped(r, _)) => r,
                        _ => "not_billable",
                    })
                } else {
                    SubOutcome::Lines {
                        account: latest.account.clone(),
                        currency: latest.currency,
                        period: latest.plan.period,
                        paid_start,
                        end,
                        trial_end: latest.trial_end,
                    }
                },
            );
        }
        for (row, fate) in kept.iter().zip(&fates) {
            report_fate(ctx, &subs.file, row.line, id, fate, "recurring");
        }
        for (line, of) in duplicates {
            let (book, orig) = match fates.get(of) {
                Some(Fate::Line(b)) | Some(Fate::Merged(b, _)) => (b.clone(), true),
                _ => (String::new(), false),
            };
            let orig_line = kept.get(of).map(|r| r.line).unwrap_or(0);
            if orig {
                ctx.report.merged(
                    &subs.file,
                    line,
                    id,
                    "duplicate",
                    &book,
                    &format!("the same version as {}:{orig_line}", subs.file),
                );
            } else if let Some(Fate::Skipped(why, detail)) = fates.get(of) {
                ctx.report.skipped(&subs.file, line, id, why, detail);
            }
        }
    }
    add_ons(ctx, &subs.file, &outcomes)
}

/// One valid row of subscription_add_on_history.
struct AddOnRow {
    line: u64,
    updated: Timestamp,
    created: Timestamp,
    expired: Option<Timestamp>,
    product: String,
    quantity: Decimal,
    unit_amount: Decimal,
}

fn add_ons(
    ctx: &mut Context,
    sub_file: &str,
    subs: &HashMap<String, SubOutcome>,
) -> Result<(), Problem> {
    let Some(path) = find(ctx, "subscription_add_on_history") else {
        return Ok(());
    };
    let t = Loaded::read(
        &path,
        ctx,
        &[
            "id",
            "subscription_id",
            "plan_add_on_id",
            "quantity",
            "unit_amount",
            "updated_at",
        ],
        "a Recurly subscription_add_on_history table",
    )?;
    let tz = ctx.options.timezone.clone();
    // (subscription, add-on) → versions.
    let mut by_id: HashMap<(String, String), Vec<AddOnRow>> = HashMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    for r in &t.rows {
        let c = Cells { t: &t, r };
        let id = c.text("id").unwrap_or("").to_string();
        let row = (|| -> Result<(String, AddOnRow), Refusal> {
            c.required("id")?;
            let sub = c.required("subscription_id")?;
            match subs.get(sub) {
                None => {
                    return Err(refusal(
                        "missing_reference",
                        "subscription_id",
                        sub,
                        &format!("no subscription {sub} in {sub_file}"),
                    ))
                }
                Some(SubOutcome::Refused(line)) => {
                    return Err(refusal(
                        "missing_reference",
                        "subscription_id",
                        sub,
                        &format!("subscription {sub} is refused ({sub_file}:{line})"),
                    ))
                }
                Some(_) => {}
            }
            let updated = c.required_instant("updated_at", &tz)?;
            let created = c.instant("created_at", &tz)?.unwrap_or(updated);
            let expired = c.instant("expired_at", &tz)?;
            if let Some(e) = expired {
                if e < created {
                    return Err(refusal(
                        "contradicts",
                        "expired_at",
                        &e.to_string(),
                        &format!("is before created_at ({created})"),
                    ));
                }
            }
            Ok((
                sub.to_string(),
                AddOnRow {
                    line: r.line,
                    updated,
                    created,
                    expired,
                    product: c.required("plan_add_on_id")?.to_string(),
                    quantity: c.required_amount("quantity")?,
                    unit_amount: c.required_amount("unit_amount")?,
                },
            ))
        })();
        match row {
            Ok((sub, row)) => {
                let key = (sub, id);
                if !by_id.contains_key(&key) {
                    order.push(key.clone());
                }
                by_id.entry(key).or_default().push(row);
            }
            Err(e) => refuse(ctx, &t.file, r.line, &id, e),
        }
    }
    for key in order {
        let Some(mut rows) = by_id.remove(&key) else {
            continue;
        };
        let (sub, id) = key;
        rows.sort_by_key(|r| (r.updated, r.line));
        let Some(SubOutcome::Lines {
            account,
            currency,
            period,
            paid_start,
            end,
            trial_end,
        }) = subs.get(&sub)
        else {
            let why = match subs.get(&sub) {
                Some(SubOutcome::Skipped(why)) => why,
                _ => "not_billable",
            };
            for r in &rows {
                ctx.report.skipped(
                    &t.file,
                    r.line,
                    &id,
                    why,
                    &format!("its subscription {sub} has no line"),
                );
            }
            continue;
        };
        let (first, latest) = match (rows.first(), rows.last()) {
            (Some(f), Some(l)) => (f, l),
            _ => continue,
        };
        let base = first.created.max(*paid_start);
        let end = match (latest.expired, *end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let versions: Vec<Version> = rows
            .iter()
            .map(|r| Version {
                updated: r.updated,
                key: vec![
                    r.product.clone(),
                    r.quantity.to_string(),
                    r.unit_amount.to_string(),
                ],
                zero: r.quantity.is_zero() || r.unit_amount.is_zero(),
            })
            .collect();
        let span = Span {
            base,
            paid_from: *trial_end,
            end,
        };
        let (planned, fates) = plan_runs(&versions, &span, &format!("{sub}+{id}"), &tz);
        for p in &planned {
            let Some(v) = rows.get(p.first) else { continue };
            ctx.book
                .product(&ProductOut {
                    id: v.product.clone(),
                    kind: Some("addon".into()),
                    ..Default::default()
                })
                .map_err(|e| ctx.book.write_problem(e))?;
            let line = LineOut {
                id: p.id.clone(),
                customer_id: account.clone(),
                contract_id: Some(sub.clone()),
                product_id: v.product.clone(),
                quantity: v.quantity,
                unit_price: v.unit_amount,
                discount_pct: None,
                currency: Some(*currency),
                period: *period,
                start: p.start,
                end: p.end,
                sold_on: None,
                revises: p.revises.clone(),
            };
            ctx.book
                .line(&line)
                .map_err(|e| ctx.book.write_problem(e))?;
        }
        for (row, fate) in rows.iter().zip(&fates) {
            report_fate(ctx, &t.file, row.line, &id, fate, "addon");
        }
    }
    Ok(())
}
