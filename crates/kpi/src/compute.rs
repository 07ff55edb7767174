//! The KPI report: one pass over customers' month-end MRR and movements.

use crate::{per, ratio};
use expansa_contracts::RenewalMonth;
use expansa_ledger::{Book, Currency, Decimal, Money, Month, OfferOutcome};
use expansa_movements::{
    customer_movements, mrr_by_month, mrr_history, part_sums, ByCustomer, Kind, MonthTotals, Query,
    Rules, Selection, Sums,
};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Months of history needed before the range: 12 for the trailing NRR/GRR (LTV needs 6).
const HISTORY: i32 = 12;
/// Months of customer churn averaged for LTV.
const LTV_WINDOW: usize = 6;

/// Every KPI of one month. `None` is a KPI that cannot be computed (the report's notes say why).
#[derive(Clone, Debug, PartialEq)]
pub struct KpiMonth {
    pub month: Month,
    pub mrr: Money,
    pub arr: Money,
    pub customers: u64,
    pub arpa: Option<Money>,
    pub new_customers: u64,
    pub churned_customers: u64,
    pub customer_churn_rate: Option<Decimal>,
    pub gross_mrr_churn_rate: Option<Decimal>,
    pub net_mrr_churn_rate: Option<Decimal>,
    pub nrr: Option<Decimal>,
    pub grr: Option<Decimal>,
    pub nrr_12m: Option<Decimal>,
    pub grr_12m: Option<Decimal>,
    pub expansion_rate: Option<Decimal>,
    pub contraction_rate: Option<Decimal>,
    pub quick_ratio: Option<Decimal>,
    pub ltv: Option<Money>,
    pub cac: Option<Money>,
    /// CAC of each channel of marketing_spend.csv (spend of the channel / its new customers).
    pub cac_by_channel: BTreeMap<String, Option<Money>>,
    pub ltv_cac: Option<Decimal>,
    pub cac_payback_months: Option<Decimal>,
    pub avg_upsell: Option<Money>,
    pub avg_cross_sell: Option<Money>,
    pub upsell_customers: u64,
    pub cross_sell_customers: u64,
    pub expansion_mrr: Money,
    pub offer_conversion_rate: Option<Decimal>,
    /// Renewals of the contracts whose term ends in the month (docs/kpis.md, "Renewals"):
    /// contracts up for renewal, ARR up for renewal, renewed ARR with expansion (net) and
    /// without it (gross, capped per contract), and the two rates.
    pub renewal_contracts: u64,
    pub renewal_arr: Money,
    pub renewed_arr: Money,
    pub renewed_arr_gross: Money,
    pub gross_renewal_rate: Option<Decimal>,
    pub net_renewal_rate: Option<Decimal>,
    /// The month's movement totals the KPIs come from.
    pub movements: MonthTotals,
}

/// KPIs for every month of a range.
#[derive(Clone, Debug, PartialEq)]
pub struct KpiReport {
    pub currency: Currency,
    pub rules: Rules,
    pub months: Vec<KpiMonth>,
    /// Why KPIs are null, one sentence per KPI and reason, with the months it applies to.
    pub notes: Vec<String>,
}

/// Per-month counts from customers' month-end MRR, over the range and the history before it.
#[derive(Clone)]
struct Counts {
    start: Vec<u64>,
    new: Vec<u64>,
    churned: Vec<u64>,
    new_mrr: Vec<Money>,
    /// Customers paying 12 months earlier: their MRR then, now, and now capped at then.
    base_12m: Vec<Money>,
    net_12m: Vec<Money>,
    gross_12m: Vec<Money>,
    upsell_customers: Vec<u64>,
    cross_sell_customers: Vec<u64>,
    new_by_channel: BTreeMap<String, Vec<u64>>,
}

impl Counts {
    fn new(n: usize) -> Counts {
        Counts {
            start: vec![0; n],
            new: vec![0; n],
            churned: vec![0; n],
            new_mrr: vec![Money::ZERO; n],
            base_12m: vec![Money::ZERO; n],
            net_12m: vec![Money::ZERO; n],
            gross_12m: vec![Money::ZERO; n],
            upsell_customers: vec![0; n],
            cross_sell_customers: vec![0; n],
            new_by_channel: BTreeMap::new(),
        }
    }

    fn merge(mut self, other: Counts) -> Counts {
        let add = |a: &mut Vec<u64>, b: &Vec<u64>| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        let add_money =
            |a: &mut Vec<Money>, b: &Vec<Money>| a.iter_mut().zip(b).for_each(|(x, y)| *x += *y);
        add(&mut self.start, &other.start);
        add(&mut self.new, &other.new);
        add(&mut self.churned, &other.churned);
        add(&mut self.upsell_customers, &other.upsell_customers);
        add(&mut self.cross_sell_customers, &other.cross_sell_customers);
        add_money(&mut self.new_mrr, &other.new_mrr);
        add_money(&mut self.base_12m, &other.base_12m);
        add_money(&mut self.net_12m, &other.net_12m);
        add_money(&mut self.gross_12m, &other.gross_12m);
        for (channel, counts) in other.new_by_channel {
            match self.new_by_channel.get_mut(&channel) {
                Some(mine) => add(mine, &counts),
                None => {
                    self.new_by_channel.insert(channel, counts);
                }
            }
        }
        self
    }

    /// The new customers of `channel` by month.
    fn new_of(&mut self, channel: &str) -> &mut Vec<u64> {
        if !self.new_by_channel.contains_key(channel) {
            let zeros = vec![0; self.start.len()];
            self.new_by_channel.insert(channel.to_string(), zeros);
        }
        self.new_by_channel.get_mut(channel).expect("inserted")
    }
}

/// The exact sums a KPI report is made of, over a book's customers (of a whole book, or of a
/// group of customers with the shared tables: a Spark worker's). Every one is a sum over
/// customers (movement sums, customer counts, MRR, renewals and offers, which are customers'
/// rows), so the sums of groups added cell by cell ([`KpiSums::cells`],
/// [`KpiSums::add_cell`]) are the whole book's, and [`KpiSums::report`] its KPI report.
#[derive(Clone)]
pub struct KpiSums {
    query: Query,
    movements: Sums,
    /// From `HISTORY` months before the range.
    counts: Counts,
    /// One per month of the range.
    renewals: Vec<RenewalMonth>,
    /// Offers of the book, whatever the selection (whether the book has offers.csv).
    offers: u64,
    /// Offers decided, and accepted, in each month of the range.
    decided: Vec<u64>,
    accepted: Vec<u64>,
}

impl KpiSums {
    /// No customer's sums, for `q`'s months.
    pub fn zero(q: &Query) -> KpiSums {
        let months = (q.to.since(q.from) + 1) as usize;
        KpiSums {
            query: *q,
            movements: Sums::new(q),
            counts: Counts::new(months + HISTORY as usize),
            renewals: (0..months)
                .map(|i| RenewalMonth {
                    month: q.from.offset(i as i32),
                    contracts: 0,
                    renewed_contracts: 0,
                    arr: Money::ZERO,
                    renewed_arr: Money::ZERO,
                    renewed_arr_gross: Money::ZERO,
                })
                .collect(),
            offers: 0,
            decided: vec![0; months],
            accepted: vec![0; months],
        }
    }

    /// The sums of the lines in `by_customer` for every month of `q`.
    ///
    /// # Panics
    /// When `q.from` is after `q.to`.
    pub fn of(book: &Book, q: &Query, by_customer: &ByCustomer) -> KpiSums {
        assert!(q.from <= q.to, "the range must not be empty");
        let mut sums = KpiSums::zero(q);
        sums.movements = part_sums(book, q, by_customer);
        let first = q.from.offset(-HISTORY);
        let n = sums.counts.start.len();
        sums.counts = (0..by_customer.customers())
            .into_par_iter()
            .with_min_len(512)
            .fold(
                || Counts::new(n),
                |mut acc, c| {
                    count_customer(book, q, by_customer, c, first, &mut acc);
                    acc
                },
            )
            .reduce(|| Counts::new(n), Counts::merge);
        let selection = by_customer.selection();
        // Renewals from the contracts' own outcome function (the one `expansa renewals` lists).
        sums.renewals =
            expansa_contracts::renewal_months(book, q.from, q.to, &|l| selection.keeps(book, l));
        sums.offers = book.offers.len() as u64;
        for o in book.offers.iter().filter(|o| selection.keeps_offer(o)) {
            let (Some(outcome), Some(day)) = (o.outcome, o.decided_on) else {
                continue;
            };
            let m = Month::of(day);
            if m < q.from || m > q.to {
                continue;
            }
            let i = m.since(q.from) as usize;
            sums.decided[i] += 1;
            if outcome == OfferOutcome::Accepted {
                sums.accepted[i] += 1;
            }
        }
        sums
    }

    /// The sums as named cells, those that are not zero: the movement sums' ([`Sums::cells`]),
    /// then per month (`K` from 0 for 12 months before the range, `I` from 0 for its first
    /// month) `start/K`, `new/K`, `churned/K`, `new_mrr/K`, `base_12m/K`, `net_12m/K`,
    /// `gross_12m/K`, `upsell_customers/K`, `cross_sell_customers/K`,
    /// `new_by_channel/K/CHANNEL`, `renewal_contracts/I`, `renewed_contracts/I`,
    /// `renewal_arr/I`, `renewed_arr/I`, `renewed_arr_gross/I`, `offers_decided/I`,
    /// `offers_accepted/I`, and `offers`. Amounts are integers of 10^-SCALE units of the
    /// reporting currency, counts whole numbers.
    pub fn cells(&self) -> Vec<(String, i128)> {
        let mut out = Vec::new();
        self.movements.cells(&mut out);
        let mut push = |name: String, units: i128| {
            if units != 0 {
                out.push((name, units));
            }
        };
        let c = &self.counts;
        let counts = [
            ("start", &c.start),
            ("new", &c.new),
            ("churned", &c.churned),
            ("upsell_customers", &c.upsell_customers),
            ("cross_sell_customers", &c.cross_sell_customers),
            ("offers_decided", &self.decided),
            ("offers_accepted", &self.accepted),
        ];
        for (name, values) in counts {
            for (k, v) in values.iter().enumerate() {
                push(format!("{name}/{k}"), (*v).into());
            }
        }
        for (name, values) in [
            ("new_mrr", &c.new_mrr),
            ("base_12m", &c.base_12m),
            ("net_12m", &c.net_12m),
            ("gross_12m", &c.gross_12m),
        ] {
            for (k, v) in values.iter().enumerate() {
                push(format!("{name}/{k}"), v.scaled());
            }
        }
        for (channel, values) in &c.new_by_channel {
            for (k, v) in values.iter().enumerate() {
                push(format!("new_by_channel/{k}/{channel}"), (*v).into());
            }
        }
        for (i, r) in self.renewals.iter().enumerate() {
            push(format!("renewal_contracts/{i}"), r.contracts.into());
            push(format!("renewed_contracts/{i}"), r.renewed_contracts.into());
            push(format!("renewal_arr/{i}"), r.arr.scaled());
            push(format!("renewed_arr/{i}"), r.renewed_arr.scaled());
            push(
                format!("renewed_arr_gross/{i}"),
                r.renewed_arr_gross.scaled(),
            );
        }
        push("offers".into(), self.offers.into());
        out
    }

    /// Adds `units` to the cell `name` (as [`KpiSums::cells`] names it); an error for a name
    /// that is not a cell of these sums, or a value out of range.
    pub fn add_cell(&mut self, name: &str, units: i128) -> Result<(), String> {
        let wrong = || format!("{name}: not a cell of the KPI sums (or out of range)");
        let count = |units: i128| u64::try_from(units).map_err(|_| wrong());
        let money = |units: i128| Money::from_scaled(units).ok_or_else(wrong);
        let mut parts = name.splitn(3, '/');
        let (what, index) = (parts.next().unwrap_or_default(), parts.next());
        let channel = parts.next();
        let index = index.and_then(|i| i.parse::<usize>().ok());
        let c = &mut self.counts;
        let (history, months) = (c.start.len(), self.renewals.len());
        match (what, index, channel) {
            ("offers", None, None) => self.offers += count(units)?,
            ("new_by_channel", Some(k), Some(channel)) if k < history => {
                c.new_of(channel)[k] += count(units)?
            }
            (_, Some(k), None) if k < history => {
                let counts = match what {
                    "start" => Some(&mut c.start),
                    "new" => Some(&mut c.new),
                    "churned" => Some(&mut c.churned),
                    "upsell_customers" => Some(&mut c.upsell_customers),
                    "cross_sell_customers" => Some(&mut c.cross_sell_customers),
                    "offers_decided" if k < months => Some(&mut self.decided),
                    "offers_accepted" if k < months => Some(&mut self.accepted),
                    _ => None,
                };
                let amounts = match what {
                    "new_mrr" => Some(&mut c.new_mrr),
                    "base_12m" => Some(&mut c.base_12m),
                    "net_12m" => Some(&mut c.net_12m),
                    "gross_12m" => Some(&mut c.gross_12m),
                    _ => None,
                };
                let renewal = self.renewals.get_mut(k);
                match (counts, amounts, renewal, what) {
                    (Some(v), ..) => v[k] += count(units)?,
                    (_, Some(v), ..) => v[k] += money(units)?,
                    (.., Some(r), "renewal_contracts") => r.contracts += count(units)?,
                    (.., Some(r), "renewed_contracts") => r.renewed_contracts += count(units)?,
                    (.., Some(r), "renewal_arr") => r.arr += money(units)?,
                    (.., Some(r), "renewed_arr") => r.renewed_arr += money(units)?,
                    (.., Some(r), "renewed_arr_gross") => r.renewed_arr_gross += money(units)?,
                    _ => return self.movements.add_cell(name, units),
                }
            }
            _ => return self.movements.add_cell(name, units),
        }
        Ok(())
    }

    /// The KPI report of these sums. `book` gives the reporting currency and the marketing
    /// spend (a book of the shared tables is enough, with `selection` keeping everything);
    /// the spend counted for CAC is that of the channels whose customers `selection` keeps,
    /// and of the channels `spend_channels` names (a `--where channel=` filter).
    pub fn report(
        &self,
        book: &Book,
        selection: &Selection,
        spend_channels: Option<&[String]>,
    ) -> KpiReport {
        let q = &self.query;
        let report = self.movements.report(book.currency(), q);
        let first = q.from.offset(-HISTORY);
        let mut notes = Notes::default();
        let spend = monthly_spend(book, selection, spend_channels);
        let months = report
            .months
            .iter()
            .map(|totals| {
                let i = totals.month.since(q.from) as usize;
                let renewals = &self.renewals[i];
                let mut k = month_kpis(self, totals, first, &spend, &mut notes);
                k.renewal_contracts = renewals.contracts;
                k.renewal_arr = renewals.arr;
                k.renewed_arr = renewals.renewed_arr;
                k.renewed_arr_gross = renewals.renewed_arr_gross;
                k.gross_renewal_rate = notes.null(
                    renewals.gross_rate(),
                    totals.month,
                    "gross_renewal_rate and net_renewal_rate are null: no ARR is up for renewal in the month (no contract's term ends in it holding a line worth anything on its last day)",
                );
                k.net_renewal_rate = renewals.net_rate();
                k
            })
            .collect();
        KpiReport {
            currency: report.currency,
            rules: report.rules,
            months,
            notes: notes.into_sentences(),
        }
    }
}

/// The KPIs of the lines in `by_customer` for every month of `q`. The marketing spend counted
/// for CAC is that of the channels whose customers the selection keeps, and of the channels
/// `spend_channels` names (a `--where channel=` filter); CAC is null when the selection keeps
/// only part of a channel's customers or filters products (docs/kpis.md).
pub fn kpis(
    book: &Book,
    q: &Query,
    by_customer: &ByCustomer,
    spend_channels: Option<&[String]>,
) -> KpiReport {
    KpiSums::of(book, q, by_customer).report(book, by_customer.selection(), spend_channels)
}

fn count_customer(
    book: &Book,
    q: &Query,
    by_customer: &ByCustomer,
    c: usize,
    first: Month,
    acc: &mut Counts,
) {
    let all = by_customer.lines(c);
    let Some((t0, whole)) = mrr_history(book, all, first, q.to) else {
        return;
    };
    // The MRR the report counts (the filter's lines) beside the customer's whole MRR, which
    // says whether it really starts or stops paying.
    let counted = by_customer
        .in_filter(c)
        .map(|_| mrr_by_month(book, &by_customer.selected_lines(c), t0, q.to));
    let counted = counted.as_deref().unwrap_or(&whole);
    let offset = first.since(t0) as usize;
    let mut ever_paid = whole[..offset].iter().any(|m| m.is_positive());
    let channel = book.customers.channel.get_opt(c);
    // The customer's movements from the first month of history, for the customers with an
    // upsell or a cross-sell and for the revaluation kept out of the 12-month retention.
    let history = Query {
        from: first,
        to: q.to,
        rules: q.rules,
    };
    let moves = customer_movements(book, &history, by_customer, c as u32);
    let mut fx = vec![Money::ZERO; whole.len() - offset];
    for m in moves.iter().filter(|m| m.kind == Kind::Fx) {
        fx[m.month.since(first) as usize] += m.amount;
    }
    for k in 0..whole.len() - offset {
        let i = offset + k;
        let (now, now_all) = (counted[i], whole[i]);
        let prev = if i > 0 { counted[i - 1] } else { Money::ZERO };
        let prev_all = if i > 0 { whole[i - 1] } else { Money::ZERO };
        if prev.is_positive() {
            acc.start[k] += 1;
            if !now_all.is_positive() {
                acc.churned[k] += 1;
            }
        } else if !prev_all.is_positive()
            && now_all.is_positive()
            && !ever_paid
            && now.is_positive()
        {
            acc.new[k] += 1;
            acc.new_mrr[k] += now;
            if let Some(ch) = channel {
                acc.new_of(ch)[k] += 1;
            }
        }
        ever_paid |= now_all.is_positive();
        if i >= HISTORY as usize {
            let then = counted[i - HISTORY as usize];
            if then.is_positive() {
                // At the exchange rates of 12 months before: the revaluation of the window's
                // renewals is not retention.
                let window = k.saturating_sub(HISTORY as usize - 1)..=k;
                let now = now - fx[window].iter().copied().sum::<Money>();
                acc.base_12m[k] += then;
                acc.net_12m[k] += now;
                acc.gross_12m[k] += now.min(then);
            }
        }
    }
    // Customers with an upsell or a cross-sell in the month (for the averages).
    let mut had: Vec<(Month, Kind)> = moves
        .into_iter()
        .filter(|m| m.month >= q.from && matches!(m.kind, Kind::Upsell | Kind::CrossSell))
        .map(|m| (m.month, m.kind))
        .collect();
    had.sort_unstable();
    had.dedup();
    for (month, kind) in had {
        let k = month.since(first) as usize;
        match kind {
            Kind::Upsell => acc.upsell_customers[k] += 1,
            _ => acc.cross_sell_customers[k] += 1,
        }
    }
}

/// Spend per month, all channels and by channel.
struct Spend<'a> {
    total: BTreeMap<Month, Decimal>,
    by_channel: BTreeMap<(&'a str, Month), Decimal>,
    any: bool,
    /// The selection keeps part of a channel's customers (or filters products): no spend is
    /// known for exactly its customers, so CAC cannot be computed.
    unattributable: bool,
}

/// The spend of the channels whose customers `selection` keeps: every channel without a
/// customer filter; with one, the channels of the kept customers (and the ones `named` by a
/// `--where channel=` filter), provided it keeps every customer of those channels and only
/// customers with a channel. Otherwise (and with a product filter) the spend is
/// unattributable: CAC's numerator and denominator would not be about the same customers.
fn monthly_spend<'a>(book: &'a Book, selection: &Selection, named: Option<&[String]>) -> Spend<'a> {
    let mut spend = Spend {
        total: BTreeMap::new(),
        by_channel: BTreeMap::new(),
        any: !book.marketing_spend.is_empty(),
        unattributable: selection.products.is_some(),
    };
    let channels: Option<std::collections::HashSet<&str>> =
        selection.customers.as_ref().map(|keep| {
            let of = |c: usize| book.customers.channel.get_opt(c);
            let mut kept: std::collections::HashSet<&str> = named
                .unwrap_or_default()
                .iter()
                .map(String::as_str)
                .collect();
            for (c, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
                match of(c) {
                    Some(ch) => {
                        kept.insert(ch);
                    }
                    None => spend.unattributable = true,
                }
            }
            let partial = keep
                .iter()
                .enumerate()
                .any(|(c, &k)| !k && of(c).is_some_and(|ch| kept.contains(ch)));
            spend.unattributable |= partial;
            kept
        });
    if spend.unattributable {
        return spend;
    }
    for s in &book.marketing_spend {
        if channels
            .as_ref()
            .is_some_and(|keep| !keep.contains(s.channel.as_str()))
        {
            continue;
        }
        *spend.total.entry(s.month).or_default() += s.amount;
        *spend.by_channel.entry((&s.channel, s.month)).or_default() += s.amount;
    }
    spend
}

/// Null KPIs, grouped by sentence.
#[derive(Default)]
struct Notes(BTreeMap<String, Vec<Month>>);

impl Notes {
    fn null<T>(&mut self, value: Option<T>, month: Month, why: &str) -> Option<T> {
        if value.is_none() {
            self.0.entry(why.to_string()).or_default().push(month);
        }
        value
    }

    fn into_sentences(self) -> Vec<String> {
        self.0
            .into_iter()
            .map(|(why, months)| {
                let list: Vec<String> = months.iter().map(Month::to_string).collect();
                format!("{why} ({})", list.join(", "))
            })
            .collect()
    }
}

fn month_kpis(
    sums: &KpiSums,
    t: &MonthTotals,
    first: Month,
    spend: &Spend<'_>,
    notes: &mut Notes,
) -> KpiMonth {
    let counts = &sums.counts;
    let m = t.month;
    let k = m.since(first) as usize;
    let get = |kind: Kind| t.get(kind).as_decimal();
    let mrr_start = t.mrr_start.as_decimal();
    let losses = get(Kind::Churn) + get(Kind::Downsell);
    let gains = get(Kind::New) + get(Kind::CrossSell) + get(Kind::Upsell) + get(Kind::Reactivation);
    let expansion = t.get(Kind::Upsell) + t.get(Kind::CrossSell);
    let no_start = "MRR at the start of the month is 0";

    let churn_rate = |k: usize| {
        ratio(
            Decimal::from(counts.churned[k]),
            Decimal::from(counts.start[k]),
        )
    };
    let customer_churn_rate = notes.null(
        churn_rate(k),
        m,
        "customer_churn_rate is null: no paying customers at the start of the month",
    );
    let gross = notes.null(
        ratio(-losses, mrr_start),
        m,
        &format!("gross_mrr_churn_rate, grr, net_mrr_churn_rate, nrr, expansion_rate, contraction_rate are null: {no_start}"),
    );
    let net = ratio(
        -(losses + get(Kind::Upsell) + get(Kind::CrossSell) + get(Kind::Reactivation)),
        mrr_start,
    );
    // Retention counts only the customers paying at the start of the month, at constant
    // exchange rates (docs/kpis.md).
    // NRR is every movement of those customers but fx: their MRR at the end of the month
    // at constant rates. Expansion includes a `new` booked for a customer already paying
    // (Conexa: a line of a customer registered after the month is not cross-sell).
    let kept = |kind: Kind| t.retained(kind).as_decimal();
    let expanded = kept(Kind::Upsell) + kept(Kind::CrossSell) + kept(Kind::New);
    let lost = kept(Kind::Downsell) + kept(Kind::Churn) + kept(Kind::LeavingSegment);
    let moved: Decimal = Kind::ALL
        .iter()
        .filter(|&&k| k != Kind::Fx)
        .map(|&k| kept(k))
        .sum();
    let nrr = ratio(mrr_start + moved, mrr_start);
    let grr = ratio(mrr_start + lost, mrr_start);
    let arpa = notes.null(
        per(t.mrr_end, t.customers_end),
        m,
        "arpa is null: no paying customers",
    );

    let window: Vec<Decimal> = (k - LTV_WINDOW..k).filter_map(churn_rate).collect();
    let average_churn = ratio(
        window.iter().copied().sum(),
        Decimal::from(window.len() as u64),
    )
    .filter(|r| !r.is_zero());
    let ltv = notes.null(
        arpa.zip(average_churn)
            .and_then(|(a, r)| ratio(a.as_decimal(), r))
            .map(Money::from_decimal),
        m,
        "ltv is null: no customer churn in the six months before (or no paying customers)",
    );

    let new = counts.new[k];
    let cac = if spend.any && spend.unattributable {
        notes.null(
            None,
            m,
            "cac, cac_by_channel, ltv_cac and cac_payback_months are null: marketing spend is \
             known by channel only, and --where keeps part of a channel's customers or filters \
             products",
        )
    } else if spend.any {
        let amount = spend.total.get(&m).copied().unwrap_or_default();
        notes.null(
            per(Money::from_decimal(amount), new),
            m,
            "cac, ltv_cac and cac_payback_months are null: no new customers",
        )
    } else {
        notes.null(
            None,
            m,
            "cac, ltv_cac and cac_payback_months are null: the book has no marketing_spend.csv",
        )
    };
    let channels: std::collections::BTreeSet<&str> = if spend.any && !spend.unattributable {
        let spent = spend.by_channel.keys().map(|(ch, _)| *ch);
        let gained = counts.new_by_channel.keys().map(String::as_str);
        gained.chain(spent).collect()
    } else {
        Default::default()
    };
    let cac_by_channel = channels
        .into_iter()
        .map(|ch| {
            let amount = spend.by_channel.get(&(ch, m)).copied().unwrap_or_default();
            let new_here = counts.new_by_channel.get(ch).map_or(0, |v| v[k]);
            (ch.to_string(), per(Money::from_decimal(amount), new_here))
        })
        .collect();
    let arpa_new = per(counts.new_mrr[k], new);
    let i = m.since(sums.query.from) as usize;
    let offer_conversion_rate = if sums.offers == 0 {
        notes.null(
            None,
            m,
            "offer_conversion_rate is null: the book has no offers.csv",
        )
    } else {
        notes.null(
            ratio(
                Decimal::from(sums.accepted[i]),
                Decimal::from(sums.decided[i]),
            ),
            m,
            "offer_conversion_rate is null: no offer was decided in the month",
        )
    };
    let base_12m = counts.base_12m[k].as_decimal();
    KpiMonth {
        month: m,
        mrr: t.mrr_end,
        arr: Money::from_decimal(t.mrr_end.as_decimal() * Decimal::from(12)),
        customers: t.customers_end,
        arpa,
        new_customers: new,
        churned_customers: counts.churned[k],
        customer_churn_rate,
        gross_mrr_churn_rate: gross,
        net_mrr_churn_rate: net,
        nrr,
        grr,
        nrr_12m: notes.null(
            ratio(counts.net_12m[k].as_decimal(), base_12m),
            m,
            "nrr_12m and grr_12m are null: no paying customers 12 months before",
        ),
        grr_12m: ratio(counts.gross_12m[k].as_decimal(), base_12m),
        expansion_rate: ratio(expanded, mrr_start),
        contraction_rate: ratio(-kept(Kind::Downsell), mrr_start),
        quick_ratio: notes.null(
            ratio(gains, -losses),
            m,
            "quick_ratio is null: no churn or downsell in the month",
        ),
        ltv,
        cac,
        cac_by_channel,
        ltv_cac: ltv
            .zip(cac)
            .and_then(|(l, c)| ratio(l.as_decimal(), c.as_decimal())),
        cac_payback_months: cac
            .zip(arpa_new)
            .and_then(|(c, a)| ratio(c.as_decimal(), a.as_decimal())),
        avg_upsell: notes.null(
            per(t.get(Kind::Upsell), counts.upsell_customers[k]),
            m,
            "avg_upsell is null: no upsell in the month",
        ),
        avg_cross_sell: notes.null(
            per(t.get(Kind::CrossSell), counts.cross_sell_customers[k]),
            m,
            "avg_cross_sell is null: no cross-sell in the month",
        ),
        upsell_customers: counts.upsell_customers[k],
        cross_sell_customers: counts.cross_sell_customers[k],
        expansion_mrr: expansion,
        offer_conversion_rate,
        renewal_contracts: 0,
        renewal_arr: Money::ZERO,
        renewed_arr: Money::ZERO,
        renewed_arr_gross: Money::ZERO,
        gross_renewal_rate: None,
        net_renewal_rate: None,
        movements: t.clone(),
    }
}
