//! The book a conversion writes: interchange-format CSV files, streamed row by row into a
//! folder (a temporary one, published whole by [`crate::publish`] once the book is valid).

use expansa_ledger::{Currency, Date};
use hashbrown::HashSet;
use rust_decimal::Decimal;
use std::fmt::Display;
use std::fs::File;
use std::io::{self, BufWriter, Write};
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

/// A billing interval's unit: the ledger's (`day`, `week`, `month`, `year`).
pub use expansa_ledger::IntervalUnit as Interval;

/// A billing interval's unit as sources write it: the format's names (the ledger's
/// [`Interval::parse`]), their plurals and adverbs, and the pt-BR words (`dia`, `semana`,
/// `mês`, `meses`, `ano`, `mensal`, `anual`, ...), any case.
pub fn interval_unit(text: &str) -> Option<Interval> {
    Interval::parse(text).or_else(|| {
        Some(match text.trim().to_lowercase().as_str() {
            "days" | "dia" | "dias" | "daily" | "diario" | "diário" | "diaria" | "diária" => {
                Interval::Day
            }
            "weeks" | "semana" | "semanas" | "weekly" | "semanal" => Interval::Week,
            "months" | "mes" | "mês" | "meses" | "monthly" | "mensal" => Interval::Month,
            "years" | "ano" | "anos" | "yearly" | "annual" | "anual" => Interval::Year,
            _ => return None,
        })
    })
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

/// A CSV file written row by row, byte for byte as the `csv` crate's default writer writes
/// it (`,` between fields, `\n` after each row, a field quoted only when it holds `,`, `"`,
/// `\r` or `\n`, its quotes doubled), without an allocation per row or field.
pub(crate) struct CsvFile {
    out: BufWriter<File>,
    row: Vec<u8>,
    fields: usize,
}

/// Whether a field must be quoted (the `csv` crate's `QuoteStyle::Necessary` with its default
/// delimiter, quote and terminator).
#[inline]
fn needs_quotes(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
}

impl CsvFile {
    /// Creates the file at `path` and writes its header row.
    pub(crate) fn create(path: &Path, header: &[&str]) -> io::Result<CsvFile> {
        let mut w = CsvFile {
            out: BufWriter::with_capacity(256 << 10, File::create(path)?),
            row: Vec::with_capacity(256),
            fields: 0,
        };
        for h in header {
            w.text(h);
        }
        w.end()?;
        Ok(w)
    }

    /// Opens the file at `path` (it exists, its header written) to append rows to it,
    /// buffering `capacity` bytes.
    pub(crate) fn append(path: &Path, capacity: usize) -> io::Result<CsvFile> {
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(CsvFile {
            out: BufWriter::with_capacity(capacity, file),
            row: Vec::with_capacity(256),
            fields: 0,
        })
    }

    #[inline]
    fn sep(&mut self) {
        if self.fields > 0 {
            self.row.push(b',');
        }
        self.fields += 1;
    }

    /// Adds a text field, quoted when it must be.
    #[inline]
    pub(crate) fn text(&mut self, text: &str) -> &mut CsvFile {
        self.sep();
        let bytes = text.as_bytes();
        if needs_quotes(bytes) {
            quote_into(&mut self.row, bytes);
        } else {
            self.row.extend_from_slice(bytes);
        }
        self
    }

    /// Adds a field of `v` as `Display` shows it (quoted when it must be).
    #[inline]
    pub(crate) fn shown(&mut self, v: impl Display) -> &mut CsvFile {
        self.sep();
        let start = self.row.len();
        // Writing into a Vec cannot fail.
        let _ = write!(self.row, "{v}");
        if needs_quotes(self.row.get(start..).unwrap_or(&[])) {
            let text = self.row.split_off(start);
            quote_into(&mut self.row, &text);
        }
        self
    }

    /// Adds an optional field shown by `Display`; empty when `None`.
    #[inline]
    pub(crate) fn opt(&mut self, v: Option<impl Display>) -> &mut CsvFile {
        match v {
            Some(v) => self.shown(v),
            None => self.text(""),
        }
    }

    /// Adds a day (`YYYY-MM-DD`, as `Date` shows it).
    #[inline]
    pub(crate) fn day(&mut self, d: Date) -> &mut CsvFile {
        let y = d.year();
        if !(0..=9999).contains(&y) {
            return self.shown(d);
        }
        self.sep();
        let (y, m, dd) = (y as u32, d.month() as u32, d.day() as u32);
        let digit = |v: u32| b'0' + (v % 10) as u8;
        self.row.extend_from_slice(&[
            digit(y / 1000),
            digit(y / 100),
            digit(y / 10),
            digit(y),
            b'-',
            digit(m / 10),
            digit(m),
            b'-',
            digit(dd / 10),
            digit(dd),
        ]);
        self
    }

    /// Ends the row.
    #[inline]
    pub(crate) fn end(&mut self) -> io::Result<()> {
        if self.row.is_empty() {
            // A row of one empty field is written `""` (else it would read as no row).
            self.row.extend_from_slice(b"\"\"");
        }
        self.row.push(b'\n');
        let r = self.out.write_all(&self.row);
        self.row.clear();
        self.fields = 0;
        r
    }

    /// Writes what is buffered.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Writes what is buffered and waits for the file to be on disk.
    fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }
}

fn quote_into(row: &mut Vec<u8>, bytes: &[u8]) {
    row.push(b'"');
    for &b in bytes {
        if b == b'"' {
            row.push(b'"');
        }
        row.push(b);
    }
    row.push(b'"');
}

type Csv = CsvFile;

/// The book's folder `dir` cannot be written (a file of it, its log): one problem naming it.
pub fn write_problem(dir: &Path, e: io::Error) -> expansa_import::Problem {
    expansa_import::Problem::new(
        &dir.display().to_string(),
        0,
        "folder",
        "",
        &format!("cannot be written: {e}"),
    )
}

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

    /// A file of the book that cannot be written, as the one problem a conversion then gives.
    pub fn write_problem(&self, e: io::Error) -> expansa_import::Problem {
        write_problem(&self.dir, e)
    }

    fn open<'a>(
        dir: &Path,
        slot: &'a mut Option<Csv>,
        file: &str,
        header: &[&str],
    ) -> io::Result<&'a mut Csv> {
        match slot {
            Some(w) => Ok(w),
            None => Ok(slot.insert(CsvFile::create(&dir.join(file), header)?)),
        }
    }

    /// Writes a subscription line.
    pub fn line(&mut self, l: &LineOut) -> io::Result<()> {
        let w = Self::open(
            &self.dir,
            &mut self.lines,
            "subscriptions.csv",
            &LINE_COLUMNS,
        )?;
        w.text(&l.id)
            .text(&l.customer_id)
            .text(text(&l.contract_id))
            .text(&l.product_id)
            .shown(l.quantity.normalize())
            .shown(l.unit_price.normalize())
            .opt(l.discount_pct.map(|d| d.normalize()))
            .opt(l.currency);
        match l.period.interval {
            Interval::Month => w.shown(l.period.count).text("").text(""),
            Interval::Year => w.shown(l.period.count * 12).text("").text(""),
            i => w.text("").text(i.name()).shown(l.period.count),
        };
        w.day(l.start);
        match l.end {
            Some(d) => w.day(d),
            None => w.text(""),
        };
        match l.sold_on {
            Some(d) => w.day(d),
            None => w.text(""),
        };
        w.text(text(&l.revises)).end()?;
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
        w.text(&c.id).text(text(&c.name));
        match c.registered_on {
            Some(d) => w.day(d),
            None => w.text(""),
        };
        w.text(text(&c.segment))
            .text(text(&c.country))
            .text(text(&c.channel))
            .end()?;
        self.customer_ids.insert(c.id.clone());
        self.written.customers += 1;
        Ok(true)
    }

    /// Makes room for `more` customers (a converter that knows how many it will write).
    pub fn reserve_customers(&mut self, more: usize) {
        self.customer_ids.reserve(more);
    }

    /// Forgets which customers were written, for a converter that writes each customer's rows
    /// in one part of its work, part by part: no later part names them again.
    pub fn forget_customers(&mut self) {
        self.customer_ids = HashSet::new();
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
        w.text(&p.id)
            .text(text(&p.name))
            .text(text(&p.family))
            .opt(p.tier)
            .text(text(&p.kind))
            .opt(p.list_price.map(|d| d.normalize()))
            .opt(p.price_term_months)
            .opt(p.currency)
            .end()?;
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
        w.text(&c.id).text(&c.customer_id).day(c.start);
        match c.end {
            Some(d) => w.day(d),
            None => w.text(""),
        };
        w.text(text(&c.renewal_pricing))
            .opt(c.renewal_uplift_pct.map(|d| d.normalize()))
            .opt(c.renewal_term_months)
            .end()?;
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
            w.sync()?;
        }
        Ok(self.written)
    }
}
