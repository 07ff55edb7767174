//! The book a conversion writes: interchange-format CSV files, streamed row by row into a
//! folder (a temporary one, published whole by [`crate::publish`] once the book is valid).

use expansa_ledger::{Currency, Date};
use hashbrown::HashSet;
use rust_decimal::Decimal;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

/// How often a line is billed: every `count` days, weeks, months or years.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub interval: Interval,
    pub count: u32,
}

impl Period {
    pub const MONTHLY: Period = Period {
        interval: Interval::Month,
        count: 1,
    };

    /// Every `count` months.
    pub fn months(count: u32) -> Period {
        Period {
            interval: Interval::Month,
            count,
        }
    }
}

/// A billing interval's unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interval {
    Day,
    Week,
    Month,
    Year,
}

impl Interval {
    /// Reads `day`, `week`, `month`, `year` (and plurals, any case, and pt-BR `dia`, `semana`,
    /// `mes`/`mês`, `ano`).
    pub fn parse(text: &str) -> Option<Interval> {
        Some(match text.trim().to_lowercase().trim_end_matches('s') {
            "day" | "dia" | "daily" | "diario" | "diário" => Interval::Day,
            "week" | "semana" | "weekly" | "semanal" => Interval::Week,
            "month" | "me" | "mê" | "monthly" | "mensal" => Interval::Month,
            "year" | "ano" | "yearly" | "annual" | "anual" => Interval::Year,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }
}

/// One subscription line of the book (see `subscriptions.csv` in the interchange format).
#[derive(Clone, Debug, PartialEq)]
pub struct LineOut {
    pub id: String,
    pub customer_id: String,
    pub contract_id: Option<String>,
    pub product_id: String,
    pub quantity: Decimal,
    /// Price of one unit for one billing period.
    pub unit_price: Decimal,
    pub discount_pct: Option<Decimal>,
    pub currency: Option<Currency>,
    pub period: Period,
    pub start: Date,
    /// Last day of service, inclusive.
    pub end: Option<Date>,
    pub sold_on: Option<Date>,
    pub revises: Option<String>,
}

/// One customer (`customers.csv`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CustomerOut {
    pub id: String,
    pub name: Option<String>,
    pub registered_on: Option<Date>,
    pub segment: Option<String>,
    pub country: Option<String>,
    pub channel: Option<String>,
}

/// One product (`products.csv`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProductOut {
    pub id: String,
    pub name: Option<String>,
    pub family: Option<String>,
    pub tier: Option<i64>,
    /// `plan`, `addon` or `service`.
    pub kind: Option<String>,
    pub list_price: Option<Decimal>,
    pub price_term_months: Option<u32>,
    pub currency: Option<Currency>,
}

/// One contract (`contracts.csv`).
#[derive(Clone, Debug, PartialEq)]
pub struct ContractOut {
    pub id: String,
    pub customer_id: String,
    pub start: Date,
    pub end: Option<Date>,
    /// `same`, `list` or `uplift`.
    pub renewal_pricing: Option<String>,
    pub renewal_uplift_pct: Option<Decimal>,
    pub renewal_term_months: Option<u32>,
}

/// The header of `subscriptions.csv` as conversions write it.
pub const LINE_COLUMNS: [&str; 15] = [
    "id",
    "customer_id",
    "contract_id",
    "product_id",
    "quantity",
    "unit_price",
    "discount_pct",
    "currency",
    "billing_period_months",
    "billing_interval",
    "billing_interval_count",
    "start_date",
    "end_date",
    "sold_on",
    "revises",
];

const CUSTOMER_COLUMNS: [&str; 6] = [
    "id",
    "name",
    "registered_on",
    "segment",
    "country",
    "channel",
];
const PRODUCT_COLUMNS: [&str; 8] = [
    "id",
    "name",
    "family",
    "tier",
    "kind",
    "list_price",
    "price_term_months",
    "currency",
];
const CONTRACT_COLUMNS: [&str; 7] = [
    "id",
    "customer_id",
    "start_date",
    "end_date",
    "renewal_pricing",
    "renewal_uplift_pct",
    "renewal_term_months",
];

type Csv = csv::Writer<BufWriter<File>>;

/// Counts of what a conversion wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    pub lines: u64,
    pub customers: u64,
    pub products: u64,
    pub contracts: u64,
}

/// Writes a book's files into a folder, row by row. Customers and products written twice
/// under one id are written once (the first wins).
pub struct BookWriter {
    dir: PathBuf,
    lines: Option<Csv>,
    customers: Option<Csv>,
    products: Option<Csv>,
    contracts: Option<Csv>,
    customer_ids: HashSet<String>,
    product_ids: HashSet<String>,
    contract_ids: HashSet<String>,
    /// Lines written per currency given (`None`: the book's reporting currency).
    currencies: std::collections::BTreeMap<Option<Currency>, u64>,
    written: Written,
}

fn text(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

fn shown<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

impl BookWriter {
    /// Writes into `dir`, a folder that exists.
    pub fn new(dir: &Path) -> BookWriter {
        BookWriter {
            dir: dir.to_path_buf(),
            lines: None,
            customers: None,
            products: None,
            contracts: None,
            customer_ids: HashSet::new(),
            product_ids: HashSet::new(),
            contract_ids: HashSet::new(),
            currencies: Default::default(),
            written: Written::default(),
        }
    }

    /// The folder written into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn open<'a>(
        dir: &Path,
        slot: &'a mut Option<Csv>,
        file: &str,
        header: &[&str],
    ) -> io::Result<&'a mut Csv> {
        if slot.is_none() {
            let f = File::create(dir.join(file))?;
            let mut w =
                csv::WriterBuilder::new().from_writer(BufWriter::with_capacity(256 << 10, f));
            w.write_record(header)?;
            *slot = Some(w);
        }
        Ok(slot.as_mut().expect("opened"))
    }

    /// Writes a subscription line.
    pub fn line(&mut self, l: &LineOut) -> io::Result<()> {
        let w = Self::open(
            &self.dir,
            &mut self.lines,
            "subscriptions.csv",
            &LINE_COLUMNS,
        )?;
        let (months, interval, count) = match l.period.interval {
            Interval::Month => (l.period.count.to_string(), String::new(), String::new()),
            Interval::Year => (
                (l.period.count * 12).to_string(),
                String::new(),
                String::new(),
            ),
            i => (
                String::new(),
                i.name().to_string(),
                l.period.count.to_string(),
            ),
        };
        w.write_record([
            l.id.as_str(),
            &l.customer_id,
            text(&l.contract_id),
            &l.product_id,
            &l.quantity.normalize().to_string(),
            &l.unit_price.normalize().to_string(),
            &l.discount_pct
                .map(|d| d.normalize().to_string())
                .unwrap_or_default(),
            &shown(&l.currency),
            &months,
            &interval,
            &count,
            &l.start.to_string(),
            &shown(&l.end),
            &shown(&l.sold_on),
            text(&l.revises),
        ])?;
        self.written.lines += 1;
        *self.currencies.entry(l.currency).or_insert(0) += 1;
        Ok(())
    }

    /// Lines written per currency given (`None`: no currency, the book's reporting one).
    pub fn currencies(&self) -> &std::collections::BTreeMap<Option<Currency>, u64> {
        &self.currencies
    }

    /// Writes a customer, unless one with its id was written; returns whether it was.
    pub fn customer(&mut self, c: &CustomerOut) -> io::Result<bool> {
        if self.customer_ids.contains(&c.id) {
            return Ok(false);
        }
        let w = Self::open(
            &self.dir,
            &mut self.customers,
            "customers.csv",
            &CUSTOMER_COLUMNS,
        )?;
        w.write_record([
            c.id.as_str(),
            text(&c.name),
            &shown(&c.registered_on),
            text(&c.segment),
            text(&c.country),
            text(&c.channel),
        ])?;
        self.customer_ids.insert(c.id.clone());
        self.written.customers += 1;
        Ok(true)
    }

    /// Whether a customer of this id was written.
    pub fn has_customer(&self, id: &str) -> bool {
        self.customer_ids.contains(id)
    }

    /// Writes a product, unless one with its id was written; returns whether it was.
    pub fn product(&mut self, p: &ProductOut) -> io::Result<bool> {
        if self.product_ids.contains(&p.id) {
            return Ok(false);
        }
        let w = Self::open(
            &self.dir,
            &mut self.products,
            "products.csv",
            &PRODUCT_COLUMNS,
        )?;
        w.write_record([
            p.id.as_str(),
            text(&p.name),
            text(&p.family),
            &shown(&p.tier),
            text(&p.kind),
            &p.list_price
                .map(|d| d.normalize().to_string())
                .unwrap_or_default(),
            &shown(&p.price_term_months),
            &shown(&p.currency),
        ])?;
        self.product_ids.insert(p.id.clone());
        self.written.products += 1;
        Ok(true)
    }

    /// Writes a contract, unless one with its id was written; returns whether it was.
    pub fn contract(&mut self, c: &ContractOut) -> io::Result<bool> {
        if self.contract_ids.contains(&c.id) {
            return Ok(false);
        }
        let w = Self::open(
            &self.dir,
            &mut self.contracts,
            "contracts.csv",
            &CONTRACT_COLUMNS,
        )?;
        w.write_record([
            c.id.as_str(),
            &c.customer_id,
            &c.start.to_string(),
            &shown(&c.end),
            text(&c.renewal_pricing),
            &c.renewal_uplift_pct
                .map(|d| d.normalize().to_string())
                .unwrap_or_default(),
            &shown(&c.renewal_term_months),
        ])?;
        self.contract_ids.insert(c.id.clone());
        self.written.contracts += 1;
        Ok(true)
    }

    /// Flushes every file; a book without lines still gets its `subscriptions.csv` header.
    pub fn finish(mut self) -> io::Result<Written> {
        Self::open(
            &self.dir,
            &mut self.lines,
            "subscriptions.csv",
            &LINE_COLUMNS,
        )?;
        for w in [
            &mut self.lines,
            &mut self.customers,
            &mut self.products,
            &mut self.contracts,
        ]
        .into_iter()
        .flatten()
        {
            w.flush()?;
            w.get_ref().get_ref().sync_all()?;
        }
        Ok(self.written)
    }
}
