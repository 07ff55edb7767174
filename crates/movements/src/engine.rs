use expansa_ledger::{Book, Currency, CustomerIdx, Date, LineIdx, Money, Month, Offer, ProductIdx};
use rayon::prelude::*;
use std::fmt;
use std::str::FromStr;

/// A named set of movement rules.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Rules {
    /// Conexa's cross-sell widget: cross-sell only for customers registered before the month,
    /// never for lines starting on the customer's first contract day.
    #[default]
    Conexa,
    /// ChartMogul: every new line of a paying customer is expansion.
    Chartmogul,
}

impl Rules {
    pub fn name(self) -> &'static str {
        match self {
            Rules::Conexa => "conexa",
            Rules::Chartmogul => "chartmogul",
        }
    }
}

impl FromStr for Rules {
    type Err = String;
    fn from_str(s: &str) -> Result<Rules, String> {
        match s {
            "conexa" => Ok(Rules::Conexa),
            "chartmogul" => Ok(Rules::Chartmogul),
            _ => Err(format!(
                "unknown rules {s:?} (expected conexa or chartmogul)"
            )),
        }
    }
}

impl fmt::Display for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of an MRR movement.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Kind {
    New,
    CrossSell,
    Upsell,
    Reactivation,
    Downsell,
    Churn,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 6] = [
        Kind::New,
        Kind::CrossSell,
        Kind::Upsell,
        Kind::Reactivation,
        Kind::Downsell,
        Kind::Churn,
    ];

    /// The kind whose JSON key is `key`.
    pub fn from_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// The JSON key of the kind (`cross_sell`).
    pub fn key(self) -> &'static str {
        match self {
            Kind::New => "new",
            Kind::CrossSell => "cross_sell",
            Kind::Upsell => "upsell",
            Kind::Reactivation => "reactivation",
            Kind::Downsell => "downsell",
            Kind::Churn => "churn",
        }
    }
}

/// One movement of one customer in one month, with the lines that caused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Movement {
    pub customer: CustomerIdx,
    pub month: Month,
    pub kind: Kind,
    /// Positive for gains, negative for losses.
    pub amount: Money,
    /// The lines behind it: for an amendment, the new line then its predecessor.
    pub lines: Vec<LineIdx>,
}

/// What to compute.
#[derive(Clone, Copy, Debug)]
pub struct Query {
    pub from: Month,
    pub to: Month,
    pub rules: Rules,
}

/// The totals of one month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonthTotals {
    pub month: Month,
    pub mrr_start: Money,
    /// Indexed like [`Kind::ALL`].
    pub movements: [Money; 6],
    pub mrr_end: Money,
    pub customers_start: u64,
    pub customers_end: u64,
}

impl MonthTotals {
    pub fn get(&self, kind: Kind) -> Money {
        self.movements[kind as usize]
    }
}

/// The movement report: every month of the range, quiet ones too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub currency: Currency,
    pub rules: Rules,
    pub months: Vec<MonthTotals>,
}

/// Per-thread sums while customers are processed.
#[derive(Clone)]
struct Sums {
    from: Month,
    /// MRR and paying customers at the end of the month before `from`.
    opening: Money,
    opening_customers: u64,
    movements: Vec<[Money; 6]>,
    /// Customers gained minus customers lost, per month.
    customer_delta: Vec<i64>,
}

impl Sums {
    fn new(q: &Query) -> Sums {
        let n = (q.to.since(q.from) + 1) as usize;
        Sums {
            from: q.from,
            opening: Money::ZERO,
            opening_customers: 0,
            movements: vec![[Money::ZERO; 6]; n],
            customer_delta: vec![0; n],
        }
    }

    fn merge(mut self, other: Sums) -> Sums {
        self.opening += other.opening;
        self.opening_customers += other.opening_customers;
        for (a, b) in self.movements.iter_mut().zip(&other.movements) {
            for k in 0..6 {
                a[k] += b[k];
            }
        }
        for (a, b) in self.customer_delta.iter_mut().zip(&other.customer_delta) {
            *a += b;
        }
        self
    }
}

/// Receives what [`customer_movements`] finds.
trait Sink {
    /// MRR of the customer at the end of the month before the range.
    fn opening(&mut self, mrr: Money);
    /// The customer starts (+1) or stops (-1) paying in `month`.
    fn customers(&mut self, month: Month, delta: i64);
    fn movement(&mut self, month: Month, kind: Kind, amount: Money, lines: &[LineIdx]);
}

impl Sink for Sums {
    fn opening(&mut self, mrr: Money) {
        self.opening += mrr;
        if mrr.is_positive() {
            self.opening_customers += 1;
        }
    }
    fn customers(&mut self, month: Month, delta: i64) {
        self.customer_delta[month.since(self.from) as usize] += delta;
    }
    fn movement(&mut self, month: Month, kind: Kind, amount: Money, _lines: &[LineIdx]) {
        self.movements[month.since(self.from) as usize][kind as usize] += amount;
    }
}

struct TrailSink {
    customer: CustomerIdx,
    out: Vec<Movement>,
}

impl Sink for TrailSink {
    fn opening(&mut self, _mrr: Money) {}
    fn customers(&mut self, _month: Month, _delta: i64) {}
    fn movement(&mut self, month: Month, kind: Kind, amount: Money, lines: &[LineIdx]) {
        self.out.push(Movement {
            customer: self.customer,
            month,
            kind,
            amount,
            lines: lines.to_vec(),
        });
    }
}

/// Which lines a report looks at: all of them, or those of some customers and some products
/// (`--where segment=smb --where family=payroll`).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// By customer index; `None` keeps every customer.
    pub customers: Option<Vec<bool>>,
    /// By product index; `None` keeps every product.
    pub products: Option<Vec<bool>>,
}

impl Selection {
    /// Every line.
    pub fn all() -> Selection {
        Selection::default()
    }

    /// Whether line `l` is selected.
    pub fn keeps(&self, book: &Book, l: LineIdx) -> bool {
        let line = &book.lines.items[l as usize];
        self.keeps_customer(line.customer) && self.keeps_product(line.product)
    }

    /// Whether customer `c` passes the customer filters.
    pub fn keeps_customer(&self, c: CustomerIdx) -> bool {
        self.customers.as_ref().is_none_or(|keep| keep[c as usize])
    }

    /// Whether product `p` passes the product filters.
    pub fn keeps_product(&self, p: ProductIdx) -> bool {
        self.products.as_ref().is_none_or(|keep| keep[p as usize])
    }

    /// Whether an offer is to a selected customer, of a selected product.
    pub fn keeps_offer(&self, o: &Offer) -> bool {
        self.keeps_customer(o.customer) && self.keeps_product(o.product)
    }
}

impl Selection {
    /// The lines that pass `filters` (`key=value`): customer attributes (`segment`,
    /// `country`, `channel`, `name`, any other customers.csv column, `customer` for the id)
    /// and the product `family` or `product`.
    /// Values of one key are alternatives; different keys must all hold.
    pub fn from_filters(book: &Book, filters: &[(String, String)]) -> Result<Selection, String> {
        let mut by_key: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (key, value) in filters {
            by_key.entry(key.as_str()).or_default().push(value.as_str());
        }
        let mut selection = Selection::all();
        for (key, values) in by_key {
            let customers = &book.customers;
            let keep_customer: Option<Vec<bool>> = match (key, customers.attribute(key)) {
                ("customer", _) => Some(
                    customers
                        .ids
                        .iter()
                        .map(|id| values.contains(&id))
                        .collect(),
                ),
                ("family" | "product", _) => None,
                (_, Some(col)) => Some(
                    (0..customers.len())
                        .map(|c| col.get_opt(c).is_some_and(|v| values.contains(&v)))
                        .collect(),
                ),
                (_, None) => None,
            };
            if let Some(keep) = keep_customer {
                selection.customers = Some(match selection.customers.take() {
                    Some(before) => before.iter().zip(&keep).map(|(a, b)| *a && *b).collect(),
                    None => keep,
                });
                continue;
            }
            let products = &book.products;
            let keep_products: Vec<bool> = match key {
                "family" => products
                    .items
                    .iter()
                    .map(|p| values.contains(&products.families.get(p.family)))
                    .collect(),
                "product" => products.ids.iter().map(|id| values.contains(&id)).collect(),
                _ => {
                    let mut known = vec!["segment", "country", "channel", "name", "customer"];
                    known.extend(customers.attributes.iter().map(|(n, _)| n.as_str()));
                    known.extend(["family", "product"]);
                    return Err(format!(
                        "--where {key}=...: unknown filter (use {})",
                        known.join(", ")
                    ));
                }
            };
            selection.products = Some(match selection.products.take() {
                Some(before) => before
                    .iter()
                    .zip(&keep_products)
                    .map(|(a, b)| *a && *b)
                    .collect(),
                None => keep_products,
            });
        }
        Ok(selection)
    }
}

/// The selected lines of each customer, in file order: `order[start[c]..start[c + 1]]`.
pub struct ByCustomer {
    start: Vec<u32>,
    order: Vec<LineIdx>,
    /// The selection the lines were kept by.
    selection: Selection,
}

impl ByCustomer {
    /// Groups the lines `selection` keeps by customer.
    pub fn new(book: &Book, selection: &Selection) -> ByCustomer {
        let n = book.customers.len();
        // Which lines the selection keeps; `None` when it keeps them all (no filter).
        let kept: Option<Vec<bool>> =
            (selection.customers.is_some() || selection.products.is_some()).then(|| {
                (0..book.lines.len() as LineIdx)
                    .into_par_iter()
                    .map(|l| selection.keeps(book, l))
                    .collect()
            });
        let keeps = |i: usize| kept.as_ref().is_none_or(|k| k[i]);
        let mut start = vec![0u32; n + 1];
        for (i, line) in book.lines.items.iter().enumerate() {
            if keeps(i) {
                start[line.customer as usize + 1] += 1;
            }
        }
        for c in 0..n {
            start[c + 1] += start[c];
        }
        let mut next = start.clone();
        let mut order = vec![0; start[n] as usize];
        for (i, line) in book.lines.items.iter().enumerate() {
            if keeps(i) {
                let slot = &mut next[line.customer as usize];
                order[*slot as usize] = i as LineIdx;
                *slot += 1;
            }
        }
        ByCustomer {
            start,
            order,
            selection: selection.clone(),
        }
    }

    /// The selection these lines were kept by (for what else it filters, such as offers).
    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    /// The selected lines of customer `c`.
    pub fn lines(&self, c: usize) -> &[LineIdx] {
        &self.order[self.start[c] as usize..self.start[c + 1] as usize]
    }

    /// Number of customers (selected or not).
    pub fn customers(&self) -> usize {
        self.start.len() - 1
    }
}

/// The movement report of the whole book.
///
/// # Panics
/// When `q.from` is after `q.to` (callers validate the range first, as the CLI does).
pub fn report(book: &Book, q: &Query) -> Report {
    report_selected(book, q, &ByCustomer::new(book, &Selection::all()))
}

/// The movement report of the lines grouped in `by_customer`.
///
/// # Panics
/// When `q.from` is after `q.to`.
pub fn report_selected(book: &Book, q: &Query, by_customer: &ByCustomer) -> Report {
    assert!(q.from <= q.to, "the range must not be empty");
    let sums = (0..by_customer.customers())
        .into_par_iter()
        .with_min_len(1024)
        .fold(
            || (Sums::new(q), Scratch::default()),
            |(mut sums, mut scratch), c| {
                customer_pass(
                    book,
                    q,
                    c as CustomerIdx,
                    by_customer.lines(c),
                    &mut scratch,
                    &mut sums,
                );
                (sums, scratch)
            },
        )
        .map(|(sums, _)| sums)
        .reduce(|| Sums::new(q), Sums::merge);
    let mut months = Vec::with_capacity(sums.movements.len());
    let (mut mrr, mut customers) = (sums.opening, sums.opening_customers as i64);
    for (i, (movements, delta)) in sums.movements.iter().zip(&sums.customer_delta).enumerate() {
        let mrr_end = mrr + movements.iter().sum::<Money>();
        let customers_end = customers + delta;
        months.push(MonthTotals {
            month: q.from.offset(i as i32),
            mrr_start: mrr,
            movements: *movements,
            mrr_end,
            customers_start: customers as u64,
            customers_end: customers_end as u64,
        });
        (mrr, customers) = (mrr_end, customers_end);
    }
    Report {
        currency: book.currency(),
        rules: q.rules,
        months,
    }
}

/// A customer's whole month-end MRR history up to `to`: from the month of its first line, or
/// from `from` if that is earlier. Returns the first month and the MRR of each month;
/// `None` when `lines` is empty.
pub fn mrr_history(
    book: &Book,
    lines: &[LineIdx],
    from: Month,
    to: Month,
) -> Option<(Month, Vec<Money>)> {
    let earliest = lines
        .iter()
        .map(|&l| Month::of(book.lines.items[l as usize].start))
        .min()?;
    let first = earliest.min(from);
    Some((first, mrr_by_month(book, lines, first, to)))
}

/// The MRR of one customer (counting only `lines`) at the end of every month from `from` to
/// `to`: the month-end snapshot of the rules page.
pub fn mrr_by_month(book: &Book, lines: &[LineIdx], from: Month, to: Month) -> Vec<Money> {
    let n = (to.since(from) + 1).max(0) as usize;
    let mut delta = vec![Money::ZERO; n + 1];
    for &l in lines {
        let line = &book.lines.items[l as usize];
        let Some((first, last)) = line.snapshot_months() else {
            continue;
        };
        let start = first.since(from).clamp(0, n as i32) as usize;
        let stop = last.map_or(n, |last| (last.since(from) + 1).clamp(0, n as i32) as usize);
        if start < stop {
            delta[start] += line.mrr();
            delta[stop] -= line.mrr();
        }
    }
    let mut running = Money::ZERO;
    delta[..n]
        .iter()
        .map(|d| {
            running += *d;
            running
        })
        .collect()
}

/// Every movement of one customer in the range, in month order: the trail behind the report.
pub fn trail(book: &Book, q: &Query, customer: CustomerIdx) -> Vec<Movement> {
    let lines: Vec<LineIdx> = book
        .lines
        .items
        .iter()
        .enumerate()
        .filter(|(_, l)| l.customer == customer)
        .map(|(i, _)| i as LineIdx)
        .collect();
    customer_movements(book, q, customer, &lines)
}

/// Every customer's movements in the range of `q` (of one kind, if given), in month order,
/// then by kind and customer: the customers and lines behind the report's figures.
pub fn all_movements(
    book: &Book,
    q: &Query,
    by_customer: &ByCustomer,
    kind: Option<Kind>,
) -> Vec<Movement> {
    use rayon::prelude::*;
    let mut out: Vec<Movement> = (0..by_customer.customers())
        .into_par_iter()
        .flat_map_iter(|c| {
            customer_movements(book, q, c as CustomerIdx, by_customer.lines(c))
                .into_iter()
                .filter(|m| kind.is_none_or(|k| m.kind == k))
        })
        .collect();
    out.sort_by_key(|m| (m.month, m.kind, m.customer));
    out
}

/// The movements of `customer`, whose lines are `lines`, in the range of `q`.
pub fn customer_movements(
    book: &Book,
    q: &Query,
    customer: CustomerIdx,
    lines: &[LineIdx],
) -> Vec<Movement> {
    let mut sink = TrailSink {
        customer,
        out: Vec::new(),
    };
    customer_pass(book, q, customer, lines, &mut Scratch::default(), &mut sink);
    sink.out
}

/// Buffers reused from customer to customer.
#[derive(Default)]
struct Scratch {
    /// (month, line, appears?) for every change of the customer's month-end snapshot.
    events: Vec<(Month, LineIdx, bool)>,
    appearing: Vec<LineIdx>,
    disappearing: Vec<LineIdx>,
    /// Predecessor of each appearing line (same index), if any.
    predecessor: Vec<Option<LineIdx>>,
    taken: Vec<bool>,
    buf: Vec<LineIdx>,
}

fn customer_pass(
    book: &Book,
    q: &Query,
    customer: CustomerIdx,
    lines: &[LineIdx],
    s: &mut Scratch,
    sink: &mut impl Sink,
) {
    let items = &book.lines.items;
    let Some(first_day) = lines.iter().map(|&l| items[l as usize].start).min() else {
        return;
    };
    let registered = book.customers.registered_on[customer as usize].unwrap_or(first_day);
    s.events.clear();
    for &l in lines {
        if let Some((first, last)) = items[l as usize].snapshot_months() {
            s.events.push((first, l, true));
            if let Some(last) = last {
                s.events.push((last.next(), l, false));
            }
        }
    }
    s.events.sort_unstable_by_key(|e| e.0);
    let mut prev = Money::ZERO;
    let mut ever_paid = false;
    let mut opened = false;
    let mut i = 0;
    while i < s.events.len() {
        let month = s.events[i].0;
        if month > q.to {
            break;
        }
        if month >= q.from && !opened {
            sink.opening(prev);
            opened = true;
        }
        s.appearing.clear();
        s.disappearing.clear();
        let mut now = prev;
        while i < s.events.len() && s.events[i].0 == month {
            let (_, l, appears) = s.events[i];
            if appears {
                now += items[l as usize].mrr();
                s.appearing.push(l);
            } else {
                now -= items[l as usize].mrr();
                s.disappearing.push(l);
            }
            i += 1;
        }
        if month >= q.from {
            classify(
                book, q.rules, month, prev, now, ever_paid, first_day, registered, s, sink,
            );
        }
        ever_paid |= now.is_positive();
        prev = now;
    }
    if !opened {
        sink.opening(prev);
    }
}

#[allow(clippy::too_many_arguments)]
fn classify(
    book: &Book,
    rules: Rules,
    month: Month,
    prev: Money,
    now: Money,
    ever_paid: bool,
    first_day: Date,
    registered: Date,
    s: &mut Scratch,
    sink: &mut impl Sink,
) {
    let items = &book.lines.items;
    let (was_paying, is_paying) = (prev.is_positive(), now.is_positive());
    if !was_paying && is_paying && ever_paid {
        sink.customers(month, 1);
        sink.movement(month, Kind::Reactivation, now, &s.appearing);
        return;
    }
    if was_paying && !is_paying {
        sink.customers(month, -1);
        sink.movement(month, Kind::Churn, -prev, &s.disappearing);
        return;
    }
    if !is_paying {
        return; // no MRR before or after: nothing moves
    }
    match_predecessors(book, s);
    // Conexa's cross-sell test for a line with no predecessor.
    let cross_sell = |l: LineIdx| match rules {
        Rules::Conexa => registered < month.first_day() && items[l as usize].start != first_day,
        Rules::Chartmogul => was_paying,
    };
    if !was_paying {
        // A first purchase: new, except the lines that qualify as cross-sell.
        sink.customers(month, 1);
        let mut cross = Money::ZERO;
        s.buf.clear();
        for (k, &l) in s.appearing.iter().enumerate() {
            if s.predecessor[k].is_none() && cross_sell(l) {
                cross += items[l as usize].mrr();
                s.buf.push(l);
            }
        }
        if !cross.is_zero() {
            sink.movement(month, Kind::CrossSell, cross, &s.buf);
        }
        let new = now - cross;
        if !new.is_zero() {
            s.buf.clear();
            for (k, &l) in s.appearing.iter().enumerate() {
                if s.predecessor[k].is_some() || !cross_sell(l) {
                    s.buf.push(l);
                }
            }
            sink.movement(month, Kind::New, new, &s.buf);
        }
        return;
    }
    // A continuing customer: line by line.
    for (k, &l) in s.appearing.iter().enumerate() {
        let mrr = items[l as usize].mrr();
        match s.predecessor[k] {
            Some(p) => {
                let delta = mrr - items[p as usize].mrr();
                let kind = if delta.is_positive() {
                    Kind::Upsell
                } else {
                    Kind::Downsell
                };
                if !delta.is_zero() {
                    sink.movement(month, kind, delta, &[l, p]);
                }
            }
            None if !mrr.is_zero() => {
                let kind = if cross_sell(l) {
                    Kind::CrossSell
                } else {
                    Kind::New
                };
                sink.movement(month, kind, mrr, &[l]);
            }
            None => {}
        }
    }
    for (k, &l) in s.disappearing.iter().enumerate() {
        let mrr = items[l as usize].mrr();
        if !s.taken[k] && !mrr.is_zero() {
            sink.movement(month, Kind::Downsell, -mrr, &[l]);
        }
    }
}

/// Pairs appearing lines with the disappearing lines they replace, taking the appearing lines
/// in id order: first the line each names in `revises`; then, for the rest, a disappearing
/// line of the same product family (same contract first, then the lowest id). Each line is
/// matched at most once.
fn match_predecessors(book: &Book, s: &mut Scratch) {
    let lines = &book.lines;
    let family = |l: LineIdx| book.products.items[lines.items[l as usize].product as usize].family;
    let id = |l: LineIdx| lines.ids.get(l);
    // Appearing lines claim predecessors in id order, so ties (two lines revising the same
    // one) never depend on the order of the rows.
    if s.appearing.len() > 1 {
        s.appearing.sort_unstable_by(|&x, &y| id(x).cmp(id(y)));
    }
    s.predecessor.clear();
    s.predecessor.resize(s.appearing.len(), None);
    s.taken.clear();
    s.taken.resize(s.disappearing.len(), false);
    if s.disappearing.is_empty() {
        return;
    }
    for (k, &a) in s.appearing.iter().enumerate() {
        if let Some(r) = lines.items[a as usize].revises() {
            if let Some(d) = s.disappearing.iter().position(|&d| d == r) {
                if !s.taken[d] {
                    s.taken[d] = true;
                    s.predecessor[k] = Some(r);
                }
            }
        }
    }
    for k in 0..s.appearing.len() {
        if s.predecessor[k].is_some() {
            continue;
        }
        let a = s.appearing[k];
        let contract = lines.contract_id(a);
        let best = (0..s.disappearing.len())
            .filter(|&d| !s.taken[d] && family(s.disappearing[d]) == family(a))
            .min_by(|&x, &y| {
                let (dx, dy) = (s.disappearing[x], s.disappearing[y]);
                let other_contract = |d: LineIdx| lines.contract_id(d) != contract;
                (other_contract(dx), id(dx)).cmp(&(other_contract(dy), id(dy)))
            });
        if let Some(d) = best {
            s.taken[d] = true;
            s.predecessor[k] = Some(s.disappearing[d]);
        }
    }
}
