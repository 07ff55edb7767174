//! The Stripe conversion shared by both input forms (warehouse tables and API JSON): compact
//! maps of prices, coupons and subscriptions, per-item price histories rebuilt from invoice
//! lines, and the lines each subscription item becomes. The rules are documented on the
//! parent module ([`super`]).

use crate::book::{CustomerOut, Interval, LineOut, Period, ProductOut};
use crate::money;
use crate::time::{self, When};
use crate::Context;
use expansa_ledger::{Currency, Date, Month};
use hashbrown::{DefaultHashBuilder, HashMap, HashSet, HashTable};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use rust_decimal::Decimal;
use std::hash::BuildHasher;

/// The most entries `report.not_rebuilt` lists one by one; the rest are counted.
const NOT_REBUILT_LISTED: usize = 200;

/// A field of a source row: its text (trimmed, `None` when empty or absent) and the column
/// (or JSON path) problems name.
#[derive(Clone, Copy, Debug)]
pub(super) struct Val<'a> {
    pub text: Option<&'a str>,
    pub col: &'a str,
}

impl<'a> Val<'a> {
    pub fn new(text: Option<&'a str>, col: &'a str) -> Val<'a> {
        Val {
            text: text.map(crate::input::trim).filter(|t| !t.is_empty()),
            col,
        }
    }
}

/// Where a source row is: its file, its line (for JSON: the 1-based position of the object
/// in its list) and its id.
#[derive(Clone, Copy, Debug)]
pub(super) struct Src<'a> {
    pub file: &'a str,
    pub line: u64,
    pub id: &'a str,
}

/// Why a row is skipped or refused: a reason code of [`crate::report::REASONS`], the column
/// and value at fault, and the detail said to the user.
#[derive(Debug)]
pub(super) struct Bad {
    pub refused: bool,
    pub code: &'static str,
    pub col: String,
    pub value: String,
    pub detail: String,
}

fn refuse(code: &'static str, v: &Val, detail: impl Into<String>) -> Bad {
    Bad {
        refused: true,
        code,
        col: v.col.to_string(),
        value: v.text.unwrap_or("").to_string(),
        detail: detail.into(),
    }
}

fn skip(code: &'static str, detail: impl Into<String>) -> Bad {
    Bad {
        refused: false,
        code,
        col: String::new(),
        value: String::new(),
        detail: detail.into(),
    }
}

/// Items keyed by a string id, the id stored once.
pub(super) struct Keyed<T> {
    items: Vec<(Box<str>, T)>,
    /// Each item's position and 32 bits of its id's hash (growing the table then moves
    /// entries without reading the ids again).
    table: HashTable<(u32, u32)>,
    hasher: DefaultHashBuilder,
}

/// The table's hash of an entry from the 32 bits kept (spread over the 64 that the table
/// reads its bucket and tag from).
#[inline]
fn spread(h: u32) -> u64 {
    u64::from(h).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl<T> Keyed<T> {
    fn new() -> Keyed<T> {
        Keyed {
            items: Vec::new(),
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    #[inline]
    fn hash(&self, id: &str) -> u32 {
        let h = self.hasher.hash_one(id);
        (h ^ (h >> 32)) as u32
    }

    fn find(&self, id: &str) -> Option<u32> {
        let h = self.hash(id);
        let items = &self.items;
        self.table
            .find(spread(h), |&(i, hi)| {
                hi == h && items.get(i as usize).is_some_and(|(k, _)| &**k == id)
            })
            .map(|&(i, _)| i)
    }

    /// Adds `value` under `id`; `Err(existing)` when the id is taken (nothing added).
    fn insert(&mut self, id: &str, value: T) -> Result<u32, u32> {
        if let Some(i) = self.find(id) {
            return Err(i);
        }
        let idx = self.items.len() as u32;
        self.items.push((id.into(), value));
        let h = self.hash(id);
        self.table
            .insert_unique(spread(h), (idx, h), |&(_, hi)| spread(hi));
        Ok(idx)
    }

    fn get(&self, i: u32) -> Option<&T> {
        self.items.get(i as usize).map(|(_, v)| v)
    }

    fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.items.get_mut(i as usize).map(|(_, v)| v)
    }

    fn id(&self, i: u32) -> &str {
        self.items.get(i as usize).map(|(k, _)| &**k).unwrap_or("")
    }
}

/// What a price is for the book.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Kind {
    /// A licensed recurring price: a line per item.
    Licensed,
    /// `recurring.usage_type = metered`: usage, not recurring revenue.
    Metered,
    /// `type = one_time`.
    OneTime,
    /// A recurring price whose unit price cannot be told exactly (tiered, no unit amount).
    Unpriceable(Box<str>),
    /// The price's own row was refused (the detail says where).
    Refused(Box<str>),
}

/// A price (or a legacy plan) as the conversion keeps it.
#[derive(Clone, Debug)]
pub(super) struct Price {
    pub product: Box<str>,
    pub currency: Option<Currency>,
    /// Price of one unit (or one package) for one period, in units of the currency.
    pub unit: Decimal,
    pub period: Period,
    pub kind: Kind,
    /// Package pricing (`transform_quantity`): units per package and whether a part package
    /// rounds up.
    pub package: Option<(Decimal, bool)>,
    origin: Origin,
}

/// Where a price or coupon came from, to report its row once at the end; `file = None` for
/// one embedded in another object (API JSON), which is not a row of its own.
#[derive(Clone, Debug, Default)]
struct Origin {
    file: Option<u16>,
    line: u64,
    used: bool,
    /// Its row was reported already (refused).
    reported: bool,
}

/// A price's fields as a source gives them (amounts in minor units).
pub(super) struct PriceIn<'a> {
    pub product: Val<'a>,
    pub currency: Val<'a>,
    /// `unit_amount_decimal` (preferred: it keeps fractions of a cent) …
    pub unit_amount_decimal: Val<'a>,
    /// … else `unit_amount` (a plan's `amount`).
    pub unit_amount: Val<'a>,
    /// `type`: `recurring` or `one_time` (absent for a plan: recurring).
    pub kind: Val<'a>,
    pub interval: Val<'a>,
    pub interval_count: Val<'a>,
    pub usage_type: Val<'a>,
    pub billing_scheme: Val<'a>,
    pub divide_by: Val<'a>,
    pub round: Val<'a>,
}

/// How long a coupon's discount lasts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Duration {
    Once,
    Repeating(u32),
    Forever,
}

#[derive(Clone, Debug)]
pub(super) struct Coupon {
    pct: Option<Decimal>,
    off: Option<(Decimal, Currency)>,
    duration: Duration,
    refused: Option<Box<str>>,
    origin: Origin,
}

/// A coupon's fields as a source gives them.
pub(super) struct CouponIn<'a> {
    pub percent_off: Val<'a>,
    pub amount_off: Val<'a>,
    pub currency: Val<'a>,
    pub duration: Val<'a>,
    pub duration_in_months: Val<'a>,
}

/// What became of a subscription.
#[derive(Clone, Debug)]
enum Fate {
    Live,
    /// Left out: the reason code and detail.
    Skipped(&'static str, Box<str>),
    /// Its row was refused (`file:line`).
    Refused(Box<str>),
}

pub(super) struct Sub {
    customer: Box<str>,
    /// Its customer's name when the source gives it with the subscription (API JSON).
    customer_name: Option<Box<str>>,
    customer_created: Option<Date>,
    created: Option<Date>,
    /// First paid day: the later of `start_date` and `trial_end`.
    start: Date,
    /// Last day of service, inclusive.
    end: Option<Date>,
    current_period_start: Option<Date>,
    fate: Fate,
    line: u64,
    discounts: Vec<u32>,
    /// Priced items (for an `amount_off` coupon, which Stripe takes off the invoice once).
    priced_items: u32,
    has_line: bool,
    /// Its items are nested in it (an API object): each item is reported, and the
    /// subscription's own object is the same source row, not reported again.
    nested: bool,
}

/// A subscription's fields as a source gives them.
pub(super) struct SubIn<'a> {
    /// Its items are nested in its own object (API JSON), each reported as a row of it.
    pub nested: bool,
    pub customer: Val<'a>,
    pub status: Val<'a>,
    pub start_date: Val<'a>,
    pub created: Val<'a>,
    pub trial_end: Val<'a>,
    pub cancel_at: Val<'a>,
    pub cancel_at_period_end: Val<'a>,
    pub canceled_at: Val<'a>,
    pub ended_at: Val<'a>,
    pub current_period_start: Val<'a>,
    pub current_period_end: Val<'a>,
}

/// A discount: a coupon applied to a subscription.
struct Disc {
    id: Box<str>,
    coupon: u32,
    start: Option<Date>,
    /// The first day it no longer applies (Stripe's `end`).
    end: Option<Date>,
    file: u16,
    line: u64,
    /// Reported (applied to a line, or refused).
    reported: bool,
    /// Refused when applied (an amount off that cannot be placed): not applied again.
    refused: bool,
}

/// A discount's fields as a source gives them.
pub(super) struct DiscIn<'a> {
    pub sub: Val<'a>,
    pub coupon: Val<'a>,
    pub start: Val<'a>,
    pub end: Val<'a>,
}

/// A subscription item's fields as a source gives them.
pub(super) struct ItemIn<'a> {
    pub sub: Val<'a>,
    pub price: Val<'a>,
    pub quantity: Val<'a>,
    pub created: Val<'a>,
    pub current_period_start: Val<'a>,
}

/// An invoice line's fields as a source gives them.
pub(super) struct InvIn<'a> {
    pub kind: Val<'a>,
    pub sub: Val<'a>,
    pub item: Val<'a>,
    pub price: Val<'a>,
    pub quantity: Val<'a>,
    pub amount: Val<'a>,
    pub proration: Val<'a>,
    pub period_start: Val<'a>,
    pub period_end: Val<'a>,
}

/// A stretch of an item's history: invoiced periods at one price and quantity.
#[derive(Clone, Debug, PartialEq)]
struct Seg {
    start: Date,
    end: Date,
    price: u32,
    qty: Decimal,
}

struct History {
    sub: u32,
    segs: Vec<Seg>,
}

/// One piece of an item's time line before discounts.
#[derive(Clone, Debug)]
struct Piece {
    start: Date,
    price: u32,
    qty: Decimal,
}

/// A piece of the time line as written.
#[derive(Clone, Debug, PartialEq)]
struct Out {
    start: Date,
    end: Option<Date>,
    price: u32,
    qty: Decimal,
    unit: Decimal,
    pct: Decimal,
}

/// The conversion's state.
pub(super) struct Engine {
    tz: TimeZone,
    files: Vec<String>,
    prices: Keyed<Price>,
    coupons: Keyed<Coupon>,
    subs: Keyed<Sub>,
    discs: Vec<Disc>,
    histories: HashMap<Box<str>, History>,
    /// The sources' subscription file (for messages).
    pub sub_file: String,
    /// The file items and invoices name prices in (for messages).
    pub price_file: String,
    pub coupon_file: String,
    /// Whether the source has invoice lines at all.
    pub has_invoices: bool,
    /// The customer table's file and the ids of its customers that subscriptions read next
    /// may name (`None`: no customer table, a subscription's customer is taken as named).
    pub customers: Option<(String, HashSet<Box<str>>)>,
    products: HashSet<Box<str>>,
    line: LineOut,
    not_rebuilt: u64,
    /// The first [`NOT_REBUILT_LISTED`] entries of `not_rebuilt`, in order.
    not_rebuilt_listed: std::collections::BTreeSet<String>,
    items_without_invoice: u64,
    removed_items: u64,
    lines_written: u64,
}

fn parse_time(v: &Val) -> Result<Option<When>, Bad> {
    match v.text {
        None => Ok(None),
        Some(t) => time::parse_when(t)
            .map(Some)
            .map_err(|e| refuse("bad_value", v, e)),
    }
}

fn instant(w: &When, tz: &TimeZone) -> Timestamp {
    match w {
        When::Instant(t) => *t,
        When::Day(d) => d
            .to_zoned(tz.clone())
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MIN),
    }
}

fn parse_bool(v: &Val) -> Result<bool, Bad> {
    let is = |words: &[&str]| {
        v.text
            .is_some_and(|t| words.iter().any(|w| t.eq_ignore_ascii_case(w)))
    };
    if v.text.is_none() || is(&["false", "f", "0", "no"]) {
        Ok(false)
    } else if is(&["true", "t", "1", "yes"]) {
        Ok(true)
    } else {
        Err(refuse("bad_value", v, "is not true or false"))
    }
}

fn parse_count(v: &Val) -> Result<u32, Bad> {
    match v.text {
        None => Ok(1),
        Some(t) => match t.parse::<u32>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(n),
            _ => Err(refuse(
                "bad_value",
                v,
                "is not a whole number of intervals from 1 to 10000",
            )),
        },
    }
}

fn parse_currency(v: &Val) -> Result<Currency, Bad> {
    match v.text {
        None => Err(refuse("bad_value", v, "no currency")),
        Some(t) => money::currency(t).map_err(|e| refuse("bad_value", v, e)),
    }
}

fn parse_decimal(v: &Val) -> Result<Option<Decimal>, Bad> {
    match v.text {
        None => Ok(None),
        Some(t) => money::decimal(t)
            .map(Some)
            .map_err(|e| refuse("bad_value", v, e)),
    }
}

/// `d + k` periods, from `d` itself (so month ends do not drift).
fn add_periods(d: Date, p: Period, k: i64) -> Option<Date> {
    let n = (p.count as i64).checked_mul(k)?;
    let span = match p.interval {
        Interval::Day => Span::new().try_days(n),
        Interval::Week => Span::new().try_weeks(n),
        Interval::Month => Span::new().try_months(n),
        Interval::Year => Span::new().try_years(n),
    }
    .ok()?;
    d.checked_add(span).ok()
}

fn add_months(d: Date, n: u32) -> Option<Date> {
    add_periods(d, Period::months(1), n as i64)
}

fn next_day(d: Date) -> Date {
    d.tomorrow().unwrap_or(d)
}

/// The days a discount covers on a line billed every `period` from `anchor`: the billing
/// periods that begin on or after the discount starts and before it ends. `None`: no day.
fn window(
    anchor: Date,
    period: Period,
    from: Date,
    until: Option<Date>,
) -> Option<(Date, Option<Date>)> {
    const MAX_PERIODS: i64 = 200_000;
    let mut k = 0;
    let first = loop {
        let d = add_periods(anchor, period, k)?;
        if d >= from {
            break d;
        }
        k += 1;
        if k > MAX_PERIODS {
            return None;
        }
    };
    let Some(until) = until else {
        return Some((first, None));
    };
    if first >= until {
        return None;
    }
    // The last period beginning before `until`.
    loop {
        let next = add_periods(anchor, period, k + 1)?;
        if next >= until {
            return Some((first, Some(time::day_before(next))));
        }
        k += 1;
        if k > MAX_PERIODS * 2 {
            return None;
        }
    }
}

impl Engine {
    pub fn new(tz: &TimeZone) -> Engine {
        Engine {
            tz: tz.clone(),
            files: Vec::new(),
            prices: Keyed::new(),
            coupons: Keyed::new(),
            subs: Keyed::new(),
            discs: Vec::new(),
            histories: HashMap::new(),
            sub_file: String::new(),
            price_file: String::new(),
            coupon_file: String::new(),
            has_invoices: false,
            customers: None,
            products: HashSet::new(),
            line: LineOut {
                id: String::new(),
                customer_id: String::new(),
                contract_id: Some(String::new()),
                product_id: String::new(),
                quantity: Decimal::ONE,
                unit_price: Decimal::ZERO,
                discount_pct: None,
                currency: None,
                period: Period::MONTHLY,
                start: Date::constant(2000, 1, 1),
                end: None,
                sold_on: None,
                revises: None,
            },
            not_rebuilt: 0,
            not_rebuilt_listed: Default::default(),
            items_without_invoice: 0,
            removed_items: 0,
            lines_written: 0,
        }
    }

    fn file_idx(&mut self, file: &str) -> u16 {
        if let Some(i) = self.files.iter().position(|f| f == file) {
            return i as u16;
        }
        self.files.push(file.to_string());
        (self.files.len() - 1) as u16
    }

    fn file(&self, i: u16) -> &str {
        self.files.get(i as usize).map(String::as_str).unwrap_or("")
    }

    fn say(ctx: &mut Context, src: &Src, bad: Bad) {
        if bad.refused {
            ctx.report.refused(
                src.file,
                src.line,
                src.id,
                bad.code,
                &bad.col,
                &bad.value,
                &bad.detail,
            );
        } else {
            ctx.report
                .skipped(src.file, src.line, src.id, bad.code, &bad.detail);
        }
    }

    // ----- prices -----------------------------------------------------------------------

    fn read_price(&self, p: &PriceIn) -> Result<Price, Bad> {
        let product = p
            .product
            .text
            .ok_or_else(|| refuse("bad_value", &p.product, "no product"))?;
        let mut price = Price {
            product: product.into(),
            currency: None,
            unit: Decimal::ZERO,
            period: Period::MONTHLY,
            kind: Kind::Licensed,
            package: None,
            origin: Origin::default(),
        };
        let kind = p.kind.text.map(str::to_ascii_lowercase);
        match kind.as_deref() {
            None | Some("recurring") => {}
            Some("one_time") => {
                price.kind = Kind::OneTime;
                return Ok(price);
            }
            Some(_) => return Err(refuse("bad_value", &p.kind, "is not recurring or one_time")),
        }
        match p.usage_type.text.map(str::to_ascii_lowercase).as_deref() {
            None | Some("licensed") => {}
            Some("metered") => {
                price.kind = Kind::Metered;
                return Ok(price);
            }
            Some(_) => {
                return Err(refuse(
                    "bad_value",
                    &p.usage_type,
                    "is not licensed or metered",
                ))
            }
        }
        let interval = match p.interval.text {
            None => {
                return Err(refuse(
                    "bad_value",
                    &p.interval,
                    "a recurring price without an interval",
                ))
            }
            Some(t) => match t.to_ascii_lowercase().as_str() {
                "day" => Interval::Day,
                "week" => Interval::Week,
                "month" => Interval::Month,
                "year" => Interval::Year,
                _ => {
                    return Err(refuse(
                        "bad_value",
                        &p.interval,
                        "is not day, week, month or year",
                    ))
                }
            },
        };
        price.period = Period {
            interval,
            count: parse_count(&p.interval_count)?,
        };
        let currency = parse_currency(&p.currency)?;
        price.currency = Some(currency);
        match p
            .billing_scheme
            .text
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("per_unit") => {}
            Some("tiered") => {
                price.kind = Kind::Unpriceable(
                    "a tiered price (billing_scheme = tiered): its amount depends on tiers the \
                     conversion does not price, so no unit price is guessed"
                        .into(),
                );
                return Ok(price);
            }
            Some(_) => {
                return Err(refuse(
                    "bad_value",
                    &p.billing_scheme,
                    "is not per_unit or tiered",
                ))
            }
        }
        let amount = match (p.unit_amount_decimal.text, p.unit_amount.text) {
            (Some(_), _) => &p.unit_amount_decimal,
            (None, Some(_)) => &p.unit_amount,
            (None, None) => {
                price.kind = Kind::Unpriceable(
                    "a price without unit_amount (customer-chosen or tiered): no unit price \
                     is guessed"
                        .into(),
                );
                return Ok(price);
            }
        };
        let unit = money::from_minor_units(amount.text.unwrap_or(""), currency)
            .map_err(|e| refuse("bad_value", amount, e))?;
        if unit < Decimal::ZERO {
            return Err(refuse("bad_value", amount, "is negative"));
        }
        price.unit = unit;
        if let Some(by) = parse_decimal(&p.divide_by)? {
            if by <= Decimal::ZERO || by.fract() != Decimal::ZERO {
                return Err(refuse(
                    "bad_value",
                    &p.divide_by,
                    "is not a whole number of units per package",
                ));
            }
            if by != Decimal::ONE {
                let up = match p.round.text.map(str::to_ascii_lowercase).as_deref() {
                    Some("up") => true,
                    Some("down") => false,
                    _ => {
                        return Err(refuse(
                            "bad_value",
                            &p.round,
                            "package pricing (transform_quantity) without round up or down: \
                             the number of packages cannot be told",
                        ))
                    }
                };
                price.package = Some((by, up));
            }
        }
        Ok(price)
    }

    /// Adds a price (or plan) row of a table; reported at the end (used, or not).
    pub fn price_row(&mut self, ctx: &mut Context, src: &Src, p: &PriceIn) {
        let file = self.file_idx(src.file);
        let origin = Origin {
            file: Some(file),
            line: src.line,
            ..Default::default()
        };
        match self.read_price(p) {
            Ok(mut price) => {
                price.origin = origin;
                if let Err(i) = self.prices.insert(src.id, price.clone()) {
                    let same = self.prices.get(i).is_some_and(|old| {
                        old.product == price.product
                            && old.currency == price.currency
                            && old.unit == price.unit
                            && old.period == price.period
                            && old.kind == price.kind
                    });
                    if same {
                        ctx.report.merged(
                            src.file,
                            src.line,
                            src.id,
                            "duplicate",
                            "",
                            "the same price as another row",
                        );
                    } else {
                        let first = self.origin_text(self.prices.get(i).map(|p| &p.origin));
                        ctx.report.refused(
                            src.file,
                            src.line,
                            src.id,
                            "contradicts",
                            "id",
                            src.id,
                            &format!("a second price {} that differs from {first}", src.id),
                        );
                    }
                }
            }
            Err(bad) => {
                let detail = format!("its row is refused ({}:{})", src.file, src.line);
                let _ = self.prices.insert(
                    src.id,
                    Price {
                        product: "".into(),
                        currency: None,
                        unit: Decimal::ZERO,
                        period: Period::MONTHLY,
                        kind: Kind::Refused(detail.into()),
                        package: None,
                        origin: Origin {
                            reported: true,
                            ..origin
                        },
                    },
                );
                Self::say(ctx, src, bad);
            }
        }
    }

    /// A price embedded in another object (API JSON): added once by id; `Err` when it cannot
    /// be read (the caller refuses the row that holds it).
    pub fn embedded_price(&mut self, id: &str, p: &PriceIn) -> Result<u32, Bad> {
        if let Some(i) = self.prices.find(id) {
            return Ok(i);
        }
        let price = self.read_price(p)?;
        self.prices.insert(id, price).or_else(Ok)
    }

    fn origin_text(&self, o: Option<&Origin>) -> String {
        match o {
            Some(Origin {
                file: Some(f),
                line,
                ..
            }) => format!("{}:{}", self.file(*f), line),
            _ => "the first".to_string(),
        }
    }

    // ----- coupons ----------------------------------------------------------------------

    fn read_coupon(&self, c: &CouponIn) -> Result<Coupon, Bad> {
        let pct = parse_decimal(&c.percent_off)?;
        if let Some(p) = pct {
            if p <= Decimal::ZERO || p > Decimal::ONE_HUNDRED {
                return Err(refuse("bad_value", &c.percent_off, "is not in 0..100"));
            }
        }
        let off = match c.amount_off.text {
            None => None,
            Some(t) => {
                let currency = parse_currency(&c.currency)?;
                let amount = money::from_minor_units(t, currency)
                    .map_err(|e| refuse("bad_value", &c.amount_off, e))?;
                if amount <= Decimal::ZERO {
                    return Err(refuse("bad_value", &c.amount_off, "is not positive"));
                }
                Some((amount, currency))
            }
        };
        if pct.is_some() == off.is_some() {
            return Err(refuse(
                "bad_value",
                &c.percent_off,
                "a coupon takes either percent_off or amount_off",
            ));
        }
        let duration = match c.duration.text.map(str::to_ascii_lowercase).as_deref() {
            Some("once") => Duration::Once,
            Some("forever") => Duration::Forever,
            Some("repeating") => match c.duration_in_months.text.map(str::parse::<u32>) {
                Some(Ok(n)) if n >= 1 => Duration::Repeating(n),
                _ => {
                    return Err(refuse(
                        "bad_value",
                        &c.duration_in_months,
                        "a repeating coupon needs a whole number of months >= 1",
                    ))
                }
            },
            _ => {
                return Err(refuse(
                    "bad_value",
                    &c.duration,
                    "is not once, repeating or forever",
                ))
            }
        };
        Ok(Coupon {
            pct,
            off,
            duration,
            refused: None,
            origin: Origin::default(),
        })
    }

    /// Adds a coupon row of a table; reported at the end (used, or not).
    pub fn coupon_row(&mut self, ctx: &mut Context, src: &Src, c: &CouponIn) {
        let file = self.file_idx(src.file);
        let origin = Origin {
            file: Some(file),
            line: src.line,
            ..Default::default()
        };
        let coupon = match self.read_coupon(c) {
            Ok(c) => c,
            Err(bad) => {
                Self::say(ctx, src, bad);
                Coupon {
                    pct: None,
                    off: None,
                    duration: Duration::Forever,
                    refused: Some(format!("{}:{}", src.file, src.line).into()),
                    origin: Origin {
                        reported: true,
                        ..origin.clone()
                    },
                }
            }
        };
        if coupon.refused.is_some() {
            let _ = self.coupons.insert(src.id, coupon);
            return;
        }
        if let Err(i) = self.coupons.insert(src.id, Coupon { origin, ..coupon }) {
            let first = self.origin_text(self.coupons.get(i).map(|c| &c.origin));
            ctx.report.refused(
                src.file,
                src.line,
                src.id,
                "contradicts",
                "id",
                src.id,
                &format!("a second coupon {} (the first is {first})", src.id),
            );
        }
    }

    /// A coupon embedded in a discount (API JSON), added once by id.
    pub fn embedded_coupon(&mut self, id: &str, c: &CouponIn) -> Result<(), Bad> {
        if self.coupons.find(id).is_some() {
            return Ok(());
        }
        let coupon = self.read_coupon(c)?;
        let _ = self.coupons.insert(id, coupon);
        Ok(())
    }

    // ----- products and customers -------------------------------------------------------

    /// Writes a product row (`name` may be absent).
    pub fn product_row(
        &mut self,
        ctx: &mut Context,
        src: Option<&Src>,
        id: &str,
        name: Option<&str>,
    ) -> Result<(), expansa_import::Problem> {
        ctx.book
            .product(&ProductOut {
                id: id.to_string(),
                name: name.map(str::to_string),
                ..Default::default()
            })
            .map_err(|e| ctx.book.write_problem(e))?;
        self.products.insert(id.into());
        if let Some(src) = src {
            ctx.report
                .mapped(src.file, src.line, src.id, "product", src.id);
        }
        Ok(())
    }

    /// The customers of written lines.
    pub fn customers_with_lines(&self) -> HashSet<&str> {
        let mut wanted = HashSet::with_capacity(self.subs.items.len());
        wanted.extend(
            self.subs
                .items
                .iter()
                .filter(|(_, s)| s.has_line)
                .map(|(_, s)| &*s.customer),
        );
        wanted
    }

    /// Writes the customers of written lines that no customer row gave, with what their
    /// subscriptions said of them (API JSON: an expanded `customer`).
    pub fn remaining_customers(
        &mut self,
        ctx: &mut Context,
    ) -> Result<(), expansa_import::Problem> {
        for (_, s) in &self.subs.items {
            if s.has_line && !ctx.book.has_customer(&s.customer) {
                ctx.book
                    .customer(&CustomerOut {
                        id: s.customer.to_string(),
                        name: s.customer_name.as_deref().map(str::to_string),
                        registered_on: s.customer_created,
                        ..Default::default()
                    })
                    .map_err(|e| ctx.book.write_problem(e))?;
            }
        }
        Ok(())
    }

    /// The day of a customer's `created` in the book's zone (`None` when absent or unreadable).
    pub fn day_of(&self, text: Option<&str>) -> Option<Date> {
        let w = time::parse_when(text?).ok()?;
        Some(time::start_day(&w, &self.tz))
    }

    // ----- subscriptions ----------------------------------------------------------------

    /// Adds a subscription; refused or skipped rows are reported now, the others at the end.
    pub fn sub_row(&mut self, ctx: &mut Context, src: &Src, s: &SubIn) {
        if self.sub_file != src.file {
            self.sub_file = src.file.to_string();
        }
        if let Some(i) = self.subs.find(src.id) {
            let first = self.subs.get(i).map(|s| s.line).unwrap_or(0);
            ctx.report.refused(
                src.file,
                src.line,
                src.id,
                "contradicts",
                "id",
                src.id,
                &format!(
                    "a second row for subscription {} (the first is line {first})",
                    src.id
                ),
            );
            return;
        }
        let (sub, bad) = match self.read_sub(src, s) {
            Ok(mut sub) => {
                // Items nested in the subscription's object (API JSON) share its row: a kept
                // subscription is told by its items, a left-out one by itself alone.
                sub.nested = s.nested;
                let bad = match &sub.fate {
                    Fate::Skipped(code, detail) => Some(skip(code, &**detail)),
                    _ => None,
                };
                (sub, bad)
            }
            Err(bad) => (
                Sub {
                    customer: "".into(),
                    customer_name: None,
                    customer_created: None,
                    created: None,
                    start: Date::constant(2000, 1, 1),
                    end: None,
                    current_period_start: None,
                    fate: Fate::Refused(format!("{}:{}", src.file, src.line).into()),
                    line: src.line,
                    discounts: Vec::new(),
                    priced_items: 0,
                    nested: false,
                    has_line: false,
                },
                Some(bad),
            ),
        };
        let _ = self.subs.insert(src.id, sub);
        if let Some(bad) = bad {
            Self::say(ctx, src, bad);
        }
    }

    /// Sets the customer's name and registration day given with a subscription (API JSON).
    pub fn set_customer_details(&mut self, sub: &str, name: Option<&str>, created: Option<Date>) {
        if let Some(i) = self.subs.find(sub) {
            if let Some(s) = self.subs.get_mut(i) {
                s.customer_name = name.map(Into::into);
                s.customer_created = created;
            }
        }
    }

    fn read_sub(&self, src: &Src, s: &SubIn) -> Result<Sub, Bad> {
        let tz = &self.tz;
        let customer = s
            .customer
            .text
            .ok_or_else(|| refuse("bad_value", &s.customer, "no customer"))?;
        if let Some((file, known)) = &self.customers {
            if !known.contains(customer) {
                return Err(refuse(
                    "missing_reference",
                    &s.customer,
                    format!("names customer {customer}, which {file} does not have"),
                ));
            }
        }
        let status = s.status.text.map(str::to_ascii_lowercase);
        let status = status.as_deref().unwrap_or("");
        let not_billable = match status {
            "active" | "trialing" | "past_due" | "unpaid" | "canceled" => false,
            "incomplete" | "incomplete_expired" | "paused" => true,
            _ => {
                return Err(refuse(
                    "bad_value",
                    &s.status,
                    "is not a Stripe subscription status (active, trialing, past_due, unpaid, \
                     canceled, incomplete, incomplete_expired, paused)",
                ))
            }
        };
        let created = parse_time(&s.created)?;
        let start = match parse_time(&s.start_date)? {
            Some(w) => w,
            None => created
                .clone()
                .ok_or_else(|| refuse("bad_value", &s.start_date, "no start_date (nor created)"))?,
        };
        let trial_end = parse_time(&s.trial_end)?;
        let ended_at = parse_time(&s.ended_at)?;
        let canceled_at = parse_time(&s.canceled_at)?;
        let cancel_at = parse_time(&s.cancel_at)?;
        let at_period_end = parse_bool(&s.cancel_at_period_end)?;
        let cpe = parse_time(&s.current_period_end)?;
        let cps = parse_time(&s.current_period_start)?;
        let end = if ended_at.is_some() {
            ended_at
        } else if status == "canceled" {
            match canceled_at {
                Some(w) => Some(w),
                None => {
                    return Err(refuse(
                        "bad_value",
                        &s.ended_at,
                        "a canceled subscription without ended_at or canceled_at",
                    ))
                }
            }
        } else if at_period_end {
            match cancel_at.or(cpe) {
                Some(w) => Some(w),
                None => {
                    return Err(refuse(
                        "bad_value",
                        &s.current_period_end,
                        "cancel_at_period_end without cancel_at or current_period_end",
                    ))
                }
            }
        } else {
            cancel_at
        };
        let start_at = instant(&start, tz);
        let paid_at = match &trial_end {
            Some(t) if instant(t, tz) > start_at => t.clone(),
            _ => start.clone(),
        };
        let mut fate = Fate::Live;
        if not_billable {
            fate = Fate::Skipped(
                "not_billable",
                format!("status {status} is not billed").into(),
            );
        } else if let Some(e) = &end {
            let end_at = instant(e, tz);
            if end_at <= start_at {
                fate = Fate::Skipped("not_billable", "canceled before it ever started".into());
            } else if end_at <= instant(&paid_at, tz) {
                fate = Fate::Skipped(
                    "trial_at_zero",
                    "it ended before (or when) its free trial did: never billed".into(),
                );
            }
        }
        let start_day = time::start_day(&paid_at, tz);
        let end_day = end.as_ref().map(|e| time::end_day(e, tz));
        if matches!(fate, Fate::Live) && end_day.is_some_and(|e| e < start_day) {
            fate = Fate::Skipped("trial_at_zero", "no paid day".into());
        }
        Ok(Sub {
            customer: customer.into(),
            customer_name: None,
            customer_created: None,
            created: created.as_ref().map(|c| time::start_day(c, tz)),
            start: start_day,
            end: end_day,
            current_period_start: cps.as_ref().map(|c| time::start_day(c, tz)),
            fate,
            line: src.line,
            discounts: Vec::new(),
            priced_items: 0,
            nested: false,
            has_line: false,
        })
    }

    // ----- discounts --------------------------------------------------------------------

    /// Adds a discount row; reported when applied, refused, or at the end.
    pub fn discount_row(&mut self, ctx: &mut Context, src: &Src, d: &DiscIn) {
        if let Err(bad) = self.read_discount(src, d) {
            Self::say(ctx, src, bad);
        }
    }

    fn read_discount(&mut self, src: &Src, d: &DiscIn) -> Result<(), Bad> {
        let sub_id = d.sub.text;
        let sub = match sub_id {
            Some(id) => Some(self.subs.find(id).ok_or_else(|| {
                refuse(
                    "missing_reference",
                    &d.sub,
                    format!(
                        "names subscription {id}, which {} does not have",
                        self.sub_file
                    ),
                )
            })?),
            None => None,
        };
        let coupon_id = d
            .coupon
            .text
            .ok_or_else(|| refuse("bad_value", &d.coupon, "no coupon"))?;
        let coupon = self.coupons.find(coupon_id).ok_or_else(|| {
            refuse(
                "missing_reference",
                &d.coupon,
                format!(
                    "names coupon {coupon_id}, which {} does not have",
                    self.coupon_file
                ),
            )
        })?;
        if let Some(at) = self.coupons.get(coupon).and_then(|c| c.refused.clone()) {
            return Err(refuse(
                "missing_reference",
                &d.coupon,
                format!("names coupon {coupon_id}, whose row is refused ({at})"),
            ));
        }
        let Some(sub) = sub else {
            return Err(skip(
                "not_used",
                "a discount on a customer, not on a subscription: customer-wide discounts are \
                 not applied",
            ));
        };
        match self.subs.get(sub).map(|s| s.fate.clone()) {
            Some(Fate::Live) => {}
            Some(Fate::Skipped(code, detail)) => {
                return Err(skip(
                    code,
                    format!("its subscription is left out: {detail}"),
                ))
            }
            Some(Fate::Refused(at)) => {
                return Err(skip(
                    "not_used",
                    format!("its subscription's row is refused ({at})"),
                ))
            }
            None => return Err(skip("not_used", "")),
        }
        let start = parse_time(&d.start)?.map(|w| time::start_day(&w, &self.tz));
        let end = parse_time(&d.end)?.map(|w| time::start_day(&w, &self.tz));
        let file = self.file_idx(src.file);
        let idx = self.discs.len() as u32;
        self.discs.push(Disc {
            id: src.id.into(),
            coupon,
            start,
            end,
            file,
            line: src.line,
            reported: false,
            refused: false,
        });
        if let Some(s) = self.subs.get_mut(sub) {
            s.discounts.push(idx);
        }
        Ok(())
    }

    /// Whether some discount takes an amount off (items must then be counted first).
    pub fn needs_item_count(&self) -> bool {
        self.discs
            .iter()
            .any(|d| self.coupons.get(d.coupon).is_some_and(|c| c.off.is_some()))
    }

    /// Counts an item of a subscription (a first pass, for `amount_off` coupons).
    pub fn count_item(&mut self, sub: Option<&str>, price: Option<&str>) {
        let (Some(sub), Some(price)) = (sub, price) else {
            return;
        };
        let licensed = self
            .prices
            .find(price)
            .and_then(|p| self.prices.get(p))
            .is_some_and(|p| p.kind == Kind::Licensed);
        if let Some(s) = self.subs.find(sub).and_then(|i| self.subs.get_mut(i)) {
            if licensed && !s.discounts.is_empty() {
                s.priced_items += 1;
            }
        }
    }

    // ----- invoice lines ----------------------------------------------------------------

    /// Adds an invoice line to its item's history (reported now).
    pub fn invoice_row(&mut self, ctx: &mut Context, src: &Src, l: &InvIn, price: Option<u32>) {
        match self.read_invoice(l, price) {
            Ok(key) => ctx
                .report
                .merged(src.file, src.line, src.id, "history", &key, ""),
            Err(bad) => Self::say(ctx, src, bad),
        }
    }

    fn read_invoice(&mut self, l: &InvIn, price: Option<u32>) -> Result<String, Bad> {
        if l.kind
            .text
            .is_some_and(|k| k.eq_ignore_ascii_case("invoiceitem"))
        {
            return Err(skip(
                "one_off",
                "an invoice item (type invoiceitem): a one-off charge",
            ));
        }
        let Some(sub_id) = l.sub.text else {
            return Err(skip(
                "one_off",
                "an invoice line outside any subscription: a one-off charge",
            ));
        };
        let sub = self.subs.find(sub_id).ok_or_else(|| {
            refuse(
                "missing_reference",
                &l.sub,
                format!(
                    "names subscription {sub_id}, which {} does not have",
                    self.sub_file
                ),
            )
        })?;
        let price = match price {
            Some(p) => p,
            None => self.price_ref(&l.price)?,
        };
        if parse_bool(&l.proration)? {
            return Err(skip(
                "not_used",
                "a proration: the price it prorates shows from the next full period",
            ));
        }
        let s = self.subs.get(sub).ok_or_else(|| skip("not_used", ""))?;
        match &s.fate {
            Fate::Live => {}
            Fate::Skipped(code, detail) => {
                return Err(skip(
                    code,
                    format!("its subscription is left out: {detail}"),
                ))
            }
            Fate::Refused(at) => {
                return Err(skip(
                    "not_used",
                    format!("its subscription's row is refused ({at})"),
                ))
            }
        }
        let (sub_start, sub_end) = (s.start, s.end);
        self.price_kind(price, &l.price)?;
        let ps = parse_time(&l.period_start)?
            .ok_or_else(|| refuse("bad_value", &l.period_start, "no period start"))?;
        let pe = parse_time(&l.period_end)?
            .ok_or_else(|| refuse("bad_value", &l.period_end, "no period end"))?;
        let start = time::start_day(&ps, &self.tz);
        let end = time::end_day(&pe, &self.tz).max(start);
        if end < sub_start {
            return Err(skip(
                "trial_at_zero",
                "a period before the subscription's first paid day (its trial)",
            ));
        }
        if sub_end.is_some_and(|e| start > e) {
            return Err(refuse(
                "contradicts",
                &l.period_start,
                format!("a period after subscription {sub_id} ended"),
            ));
        }
        let qty = self.quantity(&l.quantity, price)?;
        if let Some(a) = parse_decimal(&l.amount)? {
            if a.is_zero() {
                return Err(skip("zero_amount", "an invoice line of zero"));
            }
        }
        let key = match l.item.text {
            Some(item) => item.to_string(),
            None => format!("{sub_id}/{}", self.prices.id(price)),
        };
        let seg = Seg {
            start,
            end,
            price,
            qty,
        };
        match self.histories.get_mut(key.as_str()) {
            Some(h) => {
                if h.sub != sub {
                    return Err(refuse(
                        "contradicts",
                        &l.sub,
                        format!(
                            "subscription item {key} is on subscription {}, not {sub_id}",
                            self.subs.id(h.sub)
                        ),
                    ));
                }
                insert_seg(&mut h.segs, seg);
            }
            None => {
                self.histories.insert(
                    key.as_str().into(),
                    History {
                        sub,
                        segs: vec![seg],
                    },
                );
            }
        }
        if let Some(p) = self.prices.get_mut(price) {
            p.origin.used = true;
        }
        Ok(key)
    }

    fn price_ref(&self, v: &Val) -> Result<u32, Bad> {
        let id = v
            .text
            .ok_or_else(|| refuse("bad_value", v, "names no price or plan"))?;
        self.prices.find(id).ok_or_else(|| {
            refuse(
                "missing_reference",
                v,
                format!("names price {id}, which {} does not have", self.price_file),
            )
        })
    }

    /// Checks that a price is a licensed recurring one; the reason it is left out otherwise.
    fn price_kind(&self, price: u32, v: &Val) -> Result<(), Bad> {
        let id = self.prices.id(price);
        match self.prices.get(price).map(|p| &p.kind) {
            Some(Kind::Licensed) => Ok(()),
            Some(Kind::Metered) => Err(skip(
                "metered",
                format!("price {id} is metered (usage_type = metered): not recurring revenue"),
            )),
            Some(Kind::OneTime) => Err(skip("one_off", format!("price {id} is a one-time price"))),
            Some(Kind::Unpriceable(why)) => {
                Err(refuse("bad_value", v, format!("price {id}: {why}")))
            }
            Some(Kind::Refused(why)) => {
                Err(refuse("missing_reference", v, format!("price {id}: {why}")))
            }
            None => Err(refuse(
                "missing_reference",
                v,
                format!("unknown price {id}"),
            )),
        }
    }

    /// A quantity (1 when absent), in packages for a package price; zero is left out.
    fn quantity(&self, v: &Val, price: u32) -> Result<Decimal, Bad> {
        let q = parse_decimal(v)?.unwrap_or(Decimal::ONE);
        if q < Decimal::ZERO {
            return Err(refuse("bad_value", v, "is negative"));
        }
        if q.is_zero() {
            return Err(skip("zero_amount", "a quantity of zero"));
        }
        Ok(match self.prices.get(price).and_then(|p| p.package) {
            Some((by, up)) => {
                let packages = q.checked_div(by).unwrap_or(q);
                if up {
                    packages.ceil()
                } else {
                    packages.floor()
                }
            }
            None => q,
        })
    }

    // ----- items ------------------------------------------------------------------------

    /// Converts a subscription item into its lines (reported now).
    pub fn item_row(
        &mut self,
        ctx: &mut Context,
        src: &Src,
        it: &ItemIn,
        price: Option<u32>,
    ) -> Result<(), expansa_import::Problem> {
        // An item nested in a subscription object that is left out (API JSON): the object's
        // row is told once, by the subscription.
        let nested_out = it
            .sub
            .text
            .and_then(|id| self.subs.find(id))
            .and_then(|i| self.subs.get(i))
            .is_some_and(|s| s.nested && !matches!(s.fate, Fate::Live));
        if nested_out {
            return Ok(());
        }
        match self.read_item(ctx, src, it, price) {
            Ok(Some(first)) => {
                ctx.report
                    .mapped(src.file, src.line, src.id, "recurring", &first);
            }
            Ok(None) => ctx.report.skipped(
                src.file,
                src.line,
                src.id,
                "not_used",
                "no day of service after the invoices and the subscription's end",
            ),
            Err(Ok(bad)) => Self::say(ctx, src, bad),
            Err(Err(p)) => return Err(p),
        }
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn read_item(
        &mut self,
        ctx: &mut Context,
        src: &Src,
        it: &ItemIn,
        price: Option<u32>,
    ) -> Result<Option<String>, Result<Bad, expansa_import::Problem>> {
        let sub_id = it
            .sub
            .text
            .ok_or_else(|| Ok(refuse("bad_value", &it.sub, "no subscription")))?;
        let sub = self.subs.find(sub_id);
        // Its history goes whatever becomes of the item: it must not become a line alone.
        let history = if self.histories.is_empty() {
            None
        } else {
            self.histories.remove(src.id).or_else(|| {
                let p = price.or_else(|| it.price.text.and_then(|p| self.prices.find(p)))?;
                self.histories
                    .remove(format!("{sub_id}/{}", self.prices.id(p)).as_str())
            })
        };
        let sub = sub.ok_or_else(|| {
            Ok(refuse(
                "missing_reference",
                &it.sub,
                format!(
                    "names subscription {sub_id}, which {} does not have",
                    self.sub_file
                ),
            ))
        })?;
        let price = match price {
            Some(p) => p,
            None => self.price_ref(&it.price).map_err(Ok)?,
        };
        let s = self.subs.get(sub).ok_or_else(|| Ok(skip("not_used", "")))?;
        match &s.fate {
            Fate::Live => {}
            Fate::Skipped(code, detail) => {
                return Err(Ok(skip(
                    code,
                    format!("its subscription {sub_id} is left out: {detail}"),
                )))
            }
            Fate::Refused(at) => {
                return Err(Ok(skip(
                    "not_used",
                    format!("its subscription {sub_id}'s row is refused ({at})"),
                )))
            }
        }
        let (sub_start, sub_end, sub_created, sub_cps) =
            (s.start, s.end, s.created, s.current_period_start);
        self.price_kind(price, &it.price).map_err(Ok)?;
        let qty = self.quantity(&it.quantity, price).map_err(Ok)?;
        if self.prices.get(price).is_some_and(|p| p.unit.is_zero()) {
            return Err(Ok(skip(
                "zero_amount",
                format!("price {} is free", self.prices.id(price)),
            )));
        }
        let created = parse_time(&it.created).map_err(Ok)?;
        let mut start = sub_start;
        if let (Some(c), Some(sc)) = (&created, sub_created) {
            let day = time::start_day(c, &self.tz);
            if day > sc && day > start {
                // An item added to the subscription later starts when it was added.
                start = day;
            }
        }
        if let Some(e) = sub_end {
            if start > e {
                return Err(Ok(refuse(
                    "contradicts",
                    &it.created,
                    format!(
                        "the item was created ({start}) after its subscription {sub_id} \
                         ended ({e})"
                    ),
                )));
            }
        }
        let cps = match parse_time(&it.current_period_start).map_err(Ok)? {
            Some(w) => Some(time::start_day(&w, &self.tz)),
            None => sub_cps,
        };
        // The time line: invoiced history, then the current state.
        let mut pieces: Vec<Piece> = Vec::new();
        let mut last_invoiced = None;
        if let Some(h) = &history {
            for seg in &h.segs {
                if sub_end.is_some_and(|e| seg.start > e) || seg.end < start {
                    continue;
                }
                let s0 = seg.start.max(start);
                if pieces.last().is_some_and(|p| p.start >= s0) {
                    pieces.pop();
                }
                pieces.push(Piece {
                    start: s0,
                    price: seg.price,
                    qty: seg.qty,
                });
                last_invoiced = Some(seg.end);
            }
        }
        let label = || format!("{sub_id} item {}", src.id);
        match (pieces.first_mut(), last_invoiced) {
            (Some(first), Some(last_end)) => {
                let first_invoiced = first.start;
                if first_invoiced > start {
                    let until = time::day_before(first_invoiced);
                    self.note_not_rebuilt(
                        &label(),
                        start,
                        until,
                        &format!(
                            "no invoice line before {first_invoiced}: the first invoiced \
                             price is assumed"
                        ),
                    );
                    first.start = start;
                }
                let current_differs = pieces
                    .last()
                    .is_some_and(|p| p.price != price || p.qty != qty);
                if current_differs {
                    let from = next_day(last_end);
                    if sub_end.is_none_or(|e| from <= e) {
                        pieces.push(Piece {
                            start: from,
                            price,
                            qty,
                        });
                    }
                }
            }
            _ => {
                if self.has_invoices {
                    self.items_without_invoice += 1;
                    if let Some(cps) = cps.filter(|c| *c > start) {
                        let until = time::day_before(cps);
                        self.note_not_rebuilt(
                            &label(),
                            start,
                            sub_end.map_or(until, |e| e.min(until)),
                            "no invoice line: the current price is assumed",
                        );
                    }
                }
                pieces.push(Piece { start, price, qty });
            }
        }
        self.emit(ctx, src.id, sub, start, sub_end, pieces)
            .map_err(Err)
    }

    /// Counts an item's months that cannot be rebuilt, listing it when it is among the
    /// [`NOT_REBUILT_LISTED`] first by its label (the same ones in whatever order items come).
    fn note_not_rebuilt(&mut self, label: &str, from: Date, to: Date, why: &str) {
        if to < from {
            return;
        }
        self.not_rebuilt += 1;
        let (a, b) = (Month::of(from).to_string(), Month::of(to).to_string());
        let range = if a == b { a } else { format!("{a}..{b}") };
        self.not_rebuilt_listed
            .insert(format!("{label}: {range}: {why}"));
        if self.not_rebuilt_listed.len() > NOT_REBUILT_LISTED {
            self.not_rebuilt_listed.pop_last();
        }
    }

    /// Writes the lines of one item's time line, its discounts applied; the first line's id.
    fn emit(
        &mut self,
        ctx: &mut Context,
        id: &str,
        sub: u32,
        anchor: Date,
        end: Option<Date>,
        mut pieces: Vec<Piece>,
    ) -> Result<Option<String>, expansa_import::Problem> {
        // Consecutive pieces at one price and quantity are one.
        pieces.dedup_by(|b, a| a.price == b.price && a.qty == b.qty);
        if pieces.is_empty() {
            return Ok(None);
        }
        // Ends: the day before the next piece starts; the last ends with the subscription.
        let mut outs: Vec<Out> = Vec::with_capacity(pieces.len());
        for (k, p) in pieces.iter().enumerate() {
            let e = match pieces.get(k + 1) {
                Some(n) => Some(time::day_before(n.start)),
                None => end,
            };
            if e.is_some_and(|e| e < p.start) {
                continue;
            }
            let unit = self.prices.get(p.price).map(|x| x.unit).unwrap_or_default();
            outs.push(Out {
                start: p.start,
                end: e,
                price: p.price,
                qty: p.qty,
                unit,
                pct: Decimal::ZERO,
            });
        }
        let outs = self.apply_discounts(ctx, id, sub, anchor, outs);
        let Some(first) = outs.first() else {
            return Ok(None);
        };
        let first_start = first.start;
        let Some(s) = self.subs.get_mut(sub) else {
            return Ok(None);
        };
        s.has_line = true;
        // Borrowed apart: the line is filled from the subscription and the prices.
        let Engine {
            subs,
            prices,
            products,
            line: l,
            lines_written,
            ..
        } = self;
        let customer = subs.get(sub).map(|s| &*s.customer).unwrap_or("");
        let contract = subs.id(sub);
        let mut previous: Option<String> = None;
        for o in &outs {
            let Some(price) = prices.get_mut(o.price) else {
                continue;
            };
            price.origin.used = true;
            let (product, currency, period) = (&*price.product, price.currency, price.period);
            if !products.contains(product) {
                ctx.book
                    .product(&ProductOut {
                        id: product.to_string(),
                        ..Default::default()
                    })
                    .map_err(|e| ctx.book.write_problem(e))?;
                products.insert(product.into());
            }
            l.id.clear();
            if o.start == first_start {
                l.id.push_str(id);
            } else {
                l.id.push_str(&format!("{id}@{}", o.start));
            }
            l.customer_id.clear();
            l.customer_id.push_str(customer);
            if let Some(c) = &mut l.contract_id {
                c.clear();
                c.push_str(contract);
            }
            l.product_id.clear();
            l.product_id.push_str(product);
            l.quantity = o.qty;
            l.unit_price = o.unit;
            l.discount_pct = (!o.pct.is_zero()).then_some(o.pct);
            l.currency = currency;
            l.period = period;
            l.start = o.start;
            l.end = o.end;
            l.revises = previous.take();
            ctx.book.line(l).map_err(|e| ctx.book.write_problem(e))?;
            *lines_written += 1;
            if outs.len() > 1 {
                previous = Some(l.id.clone());
            }
        }
        Ok(Some(id.to_string()))
    }

    /// Splits a time line where the subscription's discounts start and stop, and applies
    /// them: percentages compound, amounts off lower the unit price.
    fn apply_discounts(
        &mut self,
        ctx: &mut Context,
        id: &str,
        sub: u32,
        anchor: Date,
        outs: Vec<Out>,
    ) -> Vec<Out> {
        let disc_ids = self
            .subs
            .get(sub)
            .map(|s| s.discounts.clone())
            .unwrap_or_default();
        if disc_ids.is_empty() || outs.is_empty() {
            return outs;
        }
        let priced_items = self.subs.get(sub).map(|s| s.priced_items).unwrap_or(0);
        // The period and currency of the current price set the billing periods.
        let (period, currency) = outs
            .last()
            .and_then(|o| self.prices.get(o.price))
            .map(|p| (p.period, p.currency))
            .unwrap_or((Period::MONTHLY, None));
        let mut windows: Vec<(u32, Date, Option<Date>)> = Vec::new();
        for d in disc_ids {
            let Some(disc) = self.discs.get(d as usize) else {
                continue;
            };
            let Some(coupon) = self.coupons.get(disc.coupon).cloned() else {
                continue;
            };
            if disc.refused {
                continue;
            }
            if let Some((_, c)) = coupon.off {
                let problem = if Some(c) != currency {
                    Some(format!(
                        "coupon {} takes an amount off in {c}, but the line's price is in {}",
                        self.coupons.id(disc.coupon),
                        currency.map(|c| c.to_string()).unwrap_or_default()
                    ))
                } else if let Some(q) = outs.iter().map(|o| o.qty).find(|q| {
                    exact_per_unit(coupon.off.map(|o| o.0).unwrap_or_default(), *q).is_none()
                }) {
                    Some(format!(
                        "coupon {} takes {} off each invoice of a quantity of {q}: not an \
                         exact amount per unit, so no exact unit price can be written",
                        self.coupons.id(disc.coupon),
                        coupon.off.map(|o| o.0).unwrap_or_default()
                    ))
                } else if priced_items > 1 {
                    Some(format!(
                        "coupon {} takes an amount off the whole invoice of a subscription of \
                         {priced_items} items: how Stripe splits it between them is not in \
                         the export",
                        self.coupons.id(disc.coupon)
                    ))
                } else {
                    None
                };
                if let Some(problem) = problem {
                    if !disc.reported {
                        let file = self.file(disc.file).to_string();
                        let did = disc.id.clone();
                        let line = disc.line;
                        let cid = self.coupons.id(disc.coupon).to_string();
                        ctx.report.refused(
                            &file,
                            line,
                            &did,
                            "contradicts",
                            "coupon",
                            &cid,
                            &problem,
                        );
                    }
                    if let Some(disc) = self.discs.get_mut(d as usize) {
                        disc.reported = true;
                        disc.refused = true;
                    }
                    continue;
                }
            }
            let from = disc.start.unwrap_or(anchor).max(anchor);
            let until = match coupon.duration {
                Duration::Forever => None,
                // The first billing period starting on or after it, only.
                Duration::Once => {
                    window(anchor, period, from, None).map(|(first, _)| next_day(first))
                }
                Duration::Repeating(n) => disc.end.or_else(|| add_months(from, n)),
            };
            if coupon.duration == Duration::Once && until.is_none() {
                continue;
            }
            if let Some((a, b)) = window(anchor, period, from, until) {
                windows.push((d, a, b));
            }
        }
        if windows.is_empty() {
            return outs;
        }
        let first_start = outs.first().map(|o| o.start);
        // Cut the pieces at every window's edges.
        let mut cuts: Vec<Date> = Vec::new();
        for (_, a, b) in &windows {
            cuts.push(*a);
            if let Some(b) = b {
                cuts.push(next_day(*b));
            }
        }
        cuts.sort();
        cuts.dedup();
        let mut split: Vec<Out> = Vec::with_capacity(outs.len() + cuts.len());
        for o in outs {
            let mut cur = o;
            for &c in &cuts {
                if c > cur.start && cur.end.is_none_or(|e| c <= e) {
                    let mut head = cur.clone();
                    head.end = Some(time::day_before(c));
                    split.push(head);
                    cur.start = c;
                }
            }
            split.push(cur);
        }
        for o in &mut split {
            let mut keep = Decimal::ONE;
            let mut off = Decimal::ZERO;
            for (d, a, b) in &windows {
                if o.start < *a || b.is_some_and(|b| o.start > b) {
                    continue;
                }
                let Some(coupon) = self
                    .discs
                    .get(*d as usize)
                    .and_then(|disc| self.coupons.get(disc.coupon))
                else {
                    continue;
                };
                if let Some(p) = coupon.pct {
                    keep *= Decimal::ONE - p / Decimal::ONE_HUNDRED;
                }
                if let Some((amount, _)) = coupon.off {
                    off = off.checked_add(amount).unwrap_or(off);
                }
                let report_first = self
                    .discs
                    .get(*d as usize)
                    .is_some_and(|disc| !disc.reported);
                if report_first {
                    if let Some(disc) = self.discs.get_mut(*d as usize) {
                        disc.reported = true;
                        let line_id = if Some(o.start) == first_start {
                            id.to_string()
                        } else {
                            format!("{id}@{}", o.start)
                        };
                        let file = self
                            .files
                            .get(disc.file as usize)
                            .cloned()
                            .unwrap_or_default();
                        ctx.report.merged(
                            &file,
                            disc.line,
                            &disc.id,
                            "discount",
                            &line_id,
                            "applied to the lines it covers",
                        );
                    }
                }
                if let Some(c) = self
                    .discs
                    .get(*d as usize)
                    .map(|disc| disc.coupon)
                    .and_then(|c| self.coupons.get_mut(c))
                {
                    c.origin.used = true;
                }
            }
            if !off.is_zero() {
                // Taken off the period's invoice once: per unit, over the quantity (checked
                // exact when the discount was taken).
                if let Some(per_unit) = exact_per_unit(off, o.qty) {
                    o.unit = o
                        .unit
                        .checked_sub(per_unit)
                        .unwrap_or_default()
                        .max(Decimal::ZERO);
                }
            }
            o.pct = ((Decimal::ONE - keep) * Decimal::ONE_HUNDRED).normalize();
        }
        split.dedup_by(|b, a| {
            if a.price == b.price && a.qty == b.qty && a.unit == b.unit && a.pct == b.pct {
                a.end = b.end;
                true
            } else {
                false
            }
        });
        split
    }

    /// Ends the conversion: lines of items known only from invoice lines, then the report of
    /// the rows kept for the end (prices, coupons, subscriptions, discounts) and the notes.
    pub fn finish(&mut self, ctx: &mut Context) -> Result<(), expansa_import::Problem> {
        self.finish_part(ctx, true)
    }

    /// Starts a part of the conversion (its subscriptions, with their discounts, invoice lines
    /// and items): the previous part's, finished, are dropped; prices, coupons and products
    /// are kept, and whether they were used is told at the end of the last part.
    pub fn next_part(&mut self) {
        self.subs = Keyed::new();
        self.discs = Vec::new();
        self.histories = HashMap::new();
    }

    /// Ends a part (see [`Engine::next_part`]): as [`Engine::finish`] for its subscriptions
    /// and discounts; prices, coupons and the notes are reported when it is the `last`.
    pub fn finish_part(
        &mut self,
        ctx: &mut Context,
        last: bool,
    ) -> Result<(), expansa_import::Problem> {
        let mut leftovers: Vec<(Box<str>, History)> = self.histories.drain().collect();
        leftovers.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, h) in leftovers {
            let Some(s) = self.subs.get(h.sub) else {
                continue;
            };
            let (sub_start, sub_end) = (s.start, s.end);
            let mut pieces: Vec<Piece> = Vec::new();
            let mut last_end = None;
            for seg in &h.segs {
                if sub_end.is_some_and(|e| seg.start > e) || seg.end < sub_start {
                    continue;
                }
                let s0 = seg.start.max(sub_start);
                if pieces.last().is_some_and(|p| p.start >= s0) {
                    pieces.pop();
                }
                pieces.push(Piece {
                    start: s0,
                    price: seg.price,
                    qty: seg.qty,
                });
                last_end = Some(seg.end);
            }
            let Some(anchor) = pieces.first().map(|p| p.start) else {
                continue;
            };
            let end = match (last_end, sub_end) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if self.emit(ctx, &key, h.sub, anchor, end, pieces)?.is_some() {
                self.removed_items += 1;
            }
        }
        if last {
            self.report_prices_and_coupons(ctx);
        }
        self.report_subs_and_discounts(ctx);
        if last {
            self.notes(ctx);
        }
        Ok(())
    }

    /// Reports every price and coupon row not reported yet: used by a line, or not.
    fn report_prices_and_coupons(&self, ctx: &mut Context) {
        for (id, p) in &self.prices.items {
            let Some(file) = p.origin.file else {
                continue;
            };
            if p.origin.reported {
                continue;
            }
            let file = self
                .files
                .get(file as usize)
                .map(String::as_str)
                .unwrap_or("");
            let line = p.origin.line;
            match &p.kind {
                Kind::Metered => ctx.report.skipped(
                    file,
                    line,
                    id,
                    "metered",
                    "a metered price (usage_type = metered): not recurring revenue",
                ),
                Kind::OneTime => ctx
                    .report
                    .skipped(file, line, id, "one_off", "a one-time price"),
                Kind::Unpriceable(why) => ctx.report.skipped(
                    file,
                    line,
                    id,
                    "not_used",
                    &format!("{why} (the items on it are refused)"),
                ),
                _ if p.origin.used => ctx.report.merged(
                    file,
                    line,
                    id,
                    "recurring",
                    "",
                    "the price of lines of its items",
                ),
                _ => ctx
                    .report
                    .skipped(file, line, id, "not_used", "no line of the book uses it"),
            }
        }
        for (id, c) in &self.coupons.items {
            let (Some(file), false) = (c.origin.file, c.origin.reported) else {
                continue;
            };
            let file = self
                .files
                .get(file as usize)
                .map(String::as_str)
                .unwrap_or("");
            if c.origin.used {
                ctx.report.merged(
                    file,
                    c.origin.line,
                    id,
                    "discount",
                    "",
                    "applied by the discounts that name it",
                );
            } else {
                ctx.report.skipped(
                    file,
                    c.origin.line,
                    id,
                    "not_used",
                    "no discount applied to a line names it",
                );
            }
        }
    }

    /// Reports the part's subscriptions and discounts not reported yet.
    fn report_subs_and_discounts(&self, ctx: &mut Context) {
        let sub_file = self.sub_file.clone();
        for (id, s) in &self.subs.items {
            if !matches!(s.fate, Fate::Live) || s.nested {
                continue;
            }
            if s.has_line {
                ctx.report.merged(
                    &sub_file,
                    s.line,
                    id,
                    "recurring",
                    id,
                    "the contract of its items' lines",
                );
            } else {
                ctx.report.skipped(
                    &sub_file,
                    s.line,
                    id,
                    "not_used",
                    "no item of it became a line",
                );
            }
        }
        for d in &self.discs {
            if !d.reported {
                let file = self
                    .files
                    .get(d.file as usize)
                    .map(String::as_str)
                    .unwrap_or("");
                ctx.report.skipped(
                    file,
                    d.line,
                    &d.id,
                    "not_used",
                    "it covers no day of its subscription's lines",
                );
            }
        }
    }

    /// The notes and the `not_rebuilt` entries that sum up the whole conversion.
    fn notes(&self, ctx: &mut Context) {
        ctx.report
            .not_rebuilt
            .extend(self.not_rebuilt_listed.iter().cloned());
        if !self.has_invoices && self.lines_written > 0 {
            ctx.report.not_rebuilt.push(
                "every item: the source has no invoice lines, so each line carries its item's \
                 current price from its start"
                    .to_string(),
            );
        }
        if self.not_rebuilt > NOT_REBUILT_LISTED as u64 {
            ctx.report.not_rebuilt.push(format!(
                "... and {} more items",
                self.not_rebuilt - NOT_REBUILT_LISTED as u64
            ));
        }
        if self.items_without_invoice > 0 {
            ctx.report.notes.push(format!(
                "{} subscription items have no invoice line: their lines carry the current price",
                self.items_without_invoice
            ));
        }
        if self.removed_items > 0 {
            ctx.report.notes.push(format!(
                "{} subscription items are known only from invoice lines (removed from their \
                 subscription): their lines end with their last invoiced period",
                self.removed_items
            ));
        }
    }
}

/// `amount / qty` when it is exact (`None` otherwise, or on overflow). A quotient cut at
/// the full 28 decimal places is not exact even when it multiplies back (`10 / 3 × 3`
/// rounds to 10).
fn exact_per_unit(amount: Decimal, qty: Decimal) -> Option<Decimal> {
    let per = amount.checked_div(qty)?;
    (per.scale() < 28 && per.checked_mul(qty)? == amount).then_some(per)
}

/// Inserts an invoiced stretch into a history sorted by start: it replaces what it overlaps,
/// and neighbours at the same price and quantity merge.
fn insert_seg(segs: &mut Vec<Seg>, new: Seg) {
    match segs.last_mut() {
        None => {
            segs.push(new);
            return;
        }
        Some(last) if new.start >= last.start => {
            if last.price == new.price && last.qty == new.qty {
                last.end = last.end.max(new.end);
                return;
            }
            if new.start > last.end {
                segs.push(new);
                return;
            }
        }
        Some(_) => {}
    }
    insert_slow(segs, new);
}

fn insert_slow(segs: &mut Vec<Seg>, new: Seg) {
    let mut out: Vec<Seg> = Vec::with_capacity(segs.len() + 2);
    for s in segs.drain(..) {
        if s.end < new.start || s.start > new.end {
            out.push(s);
            continue;
        }
        if s.start < new.start {
            out.push(Seg {
                end: time::day_before(new.start),
                ..s.clone()
            });
        }
        if s.end > new.end {
            out.push(Seg {
                start: next_day(new.end),
                ..s
            });
        }
    }
    out.push(new);
    out.sort_by_key(|s| s.start);
    for s in out {
        match segs.last_mut() {
            Some(l) if l.price == s.price && l.qty == s.qty => l.end = l.end.max(s.end),
            _ => segs.push(s),
        }
    }
}
