//! Mapping files: a flat table's columns turned into the book's lines.
//!
//! A mapping is a TOML file (documented with an example per source kind in `docs/mapping.md`)
//! that says which column of a source table is which field of the book, how its dates and
//! decimals are written, what its values mean (a status that is billable or not), which rows
//! to leave out, and which other files to join by key. The product ships one mapping per
//! flat-table source ([`preset`]: Baremetrics, ChartMogul, Chargebee; and [`GENERIC`], a
//! spreadsheet with pt-BR or English headers; Asaas, Iugu and Vindi, written by another hand,
//! read their API JSON lists); a user writes their own for any other export,
//! or extends a shipped one (`extends = "planilha"`).
//!
//! What the engine guarantees:
//! - every source row ends in exactly one report call: mapped, merged (a service period that
//!   continues a line), skipped (with a reason) or refused (`file:line: column: value:
//!   reason`); a refused row writes nothing;
//! - a date is never guessed: `01/02/2024` without a declared `date_format` is refused; a
//!   decimal comma is read only where the mapping says `decimal = "comma"` (or `"auto"` on a
//!   `;`-separated file);
//! - CSV rows are streamed; joined files are held in memory (only the columns the mapping
//!   uses); a JSON list is read whole (at most [`input::MAX_JSON_BYTES`]); a mapping with
//!   `[merge]` holds one small record per row until the end, to put service periods in order.

use crate::book::{interval_unit, CustomerOut, Interval, LineOut, Period, ProductOut};
use crate::input::{self, display_name, Input, Table};
use crate::report::{Refusal, REASONS};
use crate::time::{self, When};
use crate::{money, Context, Options, SourceKind};
use expansa_import::{Problem, SharedRecord as Record, TextEncoding};
use expansa_ledger::{Currency, Date};
use hashbrown::HashMap;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The generic spreadsheet mapping: a table of subscription lines with pt-BR or English headers
/// (`cliente`/`customer_id`, `produto`/`product_id`, `valor`/`unit_price`, `início`/
/// `start_date`, ...); `presets/planilha.toml`. Not a [`SourceKind`]: a user names it with
/// `extends = "planilha"` or converts with it when no `--from` is given.
pub const GENERIC: &str = include_str!("../presets/planilha.toml");
const BAREMETRICS: &str = include_str!("../presets/baremetrics.toml");
const CHARTMOGUL: &str = include_str!("../presets/chartmogul.toml");
const CHARGEBEE: &str = include_str!("../presets/chargebee.toml");
const ASAAS: &str = include_str!("../presets/asaas.toml");
const IUGU: &str = include_str!("../presets/iugu.toml");
const VINDI: &str = include_str!("../presets/vindi.toml");

/// The largest mapping file read.
const MAX_MAPPING_BYTES: u64 = 1 << 20;

/// The longest billing period read.
const MAX_PERIOD_YEARS: u64 = 100;

/// The most numbered column groups a `[[repeat]]` looks for (`{n}` = 0 ..= 99).
const MAX_REPEAT: u32 = 100;

/// The mapping preset (TOML text) shipped for a flat-table source (`presets/NAME.toml`);
/// `None` for a source converted by code.
pub fn preset(kind: SourceKind) -> Option<&'static str> {
    match kind {
        SourceKind::Baremetrics => Some(BAREMETRICS),
        SourceKind::Chartmogul => Some(CHARTMOGUL),
        SourceKind::Chargebee => Some(CHARGEBEE),
        SourceKind::Asaas => Some(ASAAS),
        SourceKind::Iugu => Some(IUGU),
        SourceKind::Vindi => Some(VINDI),
        _ => None,
    }
}

/// A shipped mapping by the name `extends` gives it: `planilha` (also `generic`) or a source
/// kind with a preset (`baremetrics`, ...).
pub fn named_preset(name: &str) -> Option<&'static str> {
    let name = name.trim();
    if name.eq_ignore_ascii_case("planilha") || name.eq_ignore_ascii_case("generic") {
        return Some(GENERIC);
    }
    SourceKind::from_name(name)
        .and_then(preset)
        .filter(|text| !text.is_empty())
}

/// A field of the book that a mapping fills: a line's own fields (`subscriptions.csv`), the
/// customer's (`customer.*`, `customers.csv`) and the product's (`product.*`, `products.csv`),
/// and `status`, which says whether a row is billable (with `[values.status]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Id,
    CustomerId,
    ContractId,
    ProductId,
    Quantity,
    UnitPrice,
    Amount,
    DiscountPct,
    Currency,
    BillingInterval,
    BillingIntervalCount,
    BillingPeriodMonths,
    StartDate,
    EndDate,
    SoldOn,
    Revises,
    Status,
    CustomerName,
    CustomerRegisteredOn,
    CustomerSegment,
    CustomerCountry,
    CustomerChannel,
    ProductName,
    ProductFamily,
    ProductTier,
    ProductKind,
    ProductListPrice,
    ProductPriceTermMonths,
}

const FIELDS: [(Field, &str); 28] = [
    (Field::Id, "id"),
    (Field::CustomerId, "customer_id"),
    (Field::ContractId, "contract_id"),
    (Field::ProductId, "product_id"),
    (Field::Quantity, "quantity"),
    (Field::UnitPrice, "unit_price"),
    (Field::Amount, "amount"),
    (Field::DiscountPct, "discount_pct"),
    (Field::Currency, "currency"),
    (Field::BillingInterval, "billing_interval"),
    (Field::BillingIntervalCount, "billing_interval_count"),
    (Field::BillingPeriodMonths, "billing_period_months"),
    (Field::StartDate, "start_date"),
    (Field::EndDate, "end_date"),
    (Field::SoldOn, "sold_on"),
    (Field::Revises, "revises"),
    (Field::Status, "status"),
    (Field::CustomerName, "customer.name"),
    (Field::CustomerRegisteredOn, "customer.registered_on"),
    (Field::CustomerSegment, "customer.segment"),
    (Field::CustomerCountry, "customer.country"),
    (Field::CustomerChannel, "customer.channel"),
    (Field::ProductName, "product.name"),
    (Field::ProductFamily, "product.family"),
    (Field::ProductTier, "product.tier"),
    (Field::ProductKind, "product.kind"),
    (Field::ProductListPrice, "product.list_price"),
    (Field::ProductPriceTermMonths, "product.price_term_months"),
];

/// How a field's text is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Decimal,
    Money,
    Day,
    Interval,
    Count,
    Integer,
    Currency,
    Status,
}

impl Field {
    /// The name a mapping gives the field (`unit_price`, `customer.name`).
    pub fn name(self) -> &'static str {
        FIELDS
            .iter()
            .find(|(f, _)| *f == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    /// The field a name stands for (exact, lower case).
    pub fn from_name(name: &str) -> Option<Field> {
        FIELDS.iter().find(|(_, n)| *n == name).map(|(f, _)| *f)
    }

    fn kind(self) -> Kind {
        use Field::*;
        match self {
            Quantity | DiscountPct => Kind::Decimal,
            UnitPrice | Amount | ProductListPrice => Kind::Money,
            StartDate | EndDate | SoldOn | CustomerRegisteredOn => Kind::Day,
            BillingInterval => Kind::Interval,
            BillingIntervalCount | BillingPeriodMonths | ProductPriceTermMonths => Kind::Count,
            ProductTier => Kind::Integer,
            Currency => Kind::Currency,
            Status => Kind::Status,
            _ => Kind::Text,
        }
    }

    fn is_customer(self) -> bool {
        self.name().starts_with("customer.")
    }

    fn is_product(self) -> bool {
        self.name().starts_with("product.")
    }

    /// Fields a `[[repeat]]` group may give (the rest come from the row's own line).
    fn repeatable(self) -> bool {
        use Field::*;
        matches!(
            self,
            ProductId | Quantity | UnitPrice | Amount | DiscountPct
        ) || self.is_product()
    }
}

/// How a source writes decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum DecimalStyle {
    /// `1234.56`.
    #[default]
    Point,
    /// `1.234,56` (points group thousands).
    Comma,
    /// Comma in a `;`-separated CSV file, point otherwise.
    Auto,
}

/// What an end date means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Ends {
    /// The moment service stopped: an instant at 00:00 ends the day before; a plain day is
    /// the last day served.
    #[default]
    Instant,
    /// The value's day is the last day served.
    LastDay,
    /// The value's day is the first day not served (a period's exclusive end).
    FirstDayAfter,
}

/// The kind of file a table is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
    /// `.xlsx` / `.ods`.
    Sheet,
}

#[derive(Clone, Debug, Default)]
struct InputSpec {
    files: Vec<String>,
    format: Option<Format>,
    sheet: Option<String>,
    list: String,
    each: Option<String>,
    decimal: DecimalStyle,
    date_format: Option<String>,
    expect: Option<String>,
}

#[derive(Clone, Debug)]
struct JoinSpec {
    files: Vec<String>,
    key: String,
    on: Vec<String>,
    alias: String,
    format: Option<Format>,
    list: String,
    optional: bool,
    unmatched_empty: bool,
}

#[derive(Clone, Debug, Default)]
struct FieldSpec {
    columns: Vec<String>,
    optional: bool,
    default: Option<String>,
    minor_units: bool,
    decimal: Option<DecimalStyle>,
    subtract: Vec<String>,
    date_format: Option<String>,
    ends: Ends,
}

#[derive(Clone, Debug)]
enum Action {
    Value(String),
    Skip(&'static str),
}

#[derive(Clone, Debug, Default)]
struct ValueMap {
    /// Source values (trimmed, lower case) and what they mean.
    entries: Vec<(String, Action)>,
    other: Option<Action>,
}

impl ValueMap {
    fn lookup(&self, value: &str) -> Option<&Action> {
        let v = value.trim().to_lowercase();
        self.entries
            .iter()
            .find(|(k, _)| *k == v)
            .map(|(_, a)| a)
            .or(self.other.as_ref())
    }
}

#[derive(Clone, Debug)]
struct FilterRule {
    column: String,
    keep: bool,
    values: Vec<String>,
}

#[derive(Clone, Debug)]
struct RepeatSpec {
    fields: BTreeMap<Field, FieldSpec>,
}

/// A mapping from a flat table's columns to the book's fields, read from TOML by
/// [`Mapping::parse`] (see `docs/mapping.md` for the format).
#[derive(Clone, Debug)]
pub struct Mapping {
    /// The name the report gives the source (`name` in the file, else the name it was given).
    pub name: String,
    /// Where the source's columns are documented.
    pub doc: Option<String>,
    /// The mapping file's name, as problems give it.
    pub file: String,
    r: Box<Rules>,
}

/// What a mapping says, read and checked.
#[derive(Clone, Debug)]
struct Rules {
    input: InputSpec,
    joins: Vec<JoinSpec>,
    fields: BTreeMap<Field, FieldSpec>,
    constants: BTreeMap<Field, String>,
    values: BTreeMap<Field, ValueMap>,
    filters: Vec<FilterRule>,
    repeat: Vec<RepeatSpec>,
    merge: Option<String>,
    keep_zero: bool,
}

impl Mapping {
    /// Reads a mapping from its TOML text; `name` names it in the report and, as
    /// `NAME.toml`, in problems (a name ending in `.toml` is the file's name itself).
    ///
    /// Errors: one problem `file:line: key: value: reason` for text that is not TOML, an
    /// unknown key, a field that is not a book field, a date format jiff cannot read or that
    /// does not name a whole day, a constant that does not read as its field, a mapping that
    /// gives no column for a line's required fields.
    pub fn parse(name: &str, text: &str) -> Result<Mapping, Problem> {
        let (file, own_name) = match name.strip_suffix(".toml") {
            Some(stem) => (name.to_string(), stem.to_string()),
            None => (format!("{name}.toml"), name.to_string()),
        };
        parse_mapping(&file, &own_name, text)
    }

    /// Reads a mapping file (at most 1 MiB); its name is `name` in the file, else the file's
    /// stem.
    pub fn load(path: &Path) -> Result<Mapping, Problem> {
        let file = display_name(path);
        let mut text = String::new();
        input::open_file(path)?
            .take(MAX_MAPPING_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| {
                Problem::new(
                    &file,
                    0,
                    "file",
                    "",
                    &format!("cannot be read as text: {e}"),
                )
            })?;
        if text.len() as u64 > MAX_MAPPING_BYTES {
            return Err(Problem::new(
                &file,
                0,
                "file",
                "",
                "is larger than 1 MiB: is this a mapping file?",
            ));
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.clone());
        parse_mapping(&file, &stem, &text)
    }

    /// What the main table is expected to be, for problems.
    fn expect(&self) -> String {
        self.r
            .input
            .expect
            .clone()
            .unwrap_or_else(|| format!("the table the {} mapping reads", self.name))
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the TOML.

/// A mapping's text, and the text it extends, to find the line of a key for problems.
struct Doc<'a> {
    file: &'a str,
    text: &'a str,
    base: Option<(String, &'static str)>,
}

type KeyPath = Vec<String>;

fn key(parts: &[&str]) -> KeyPath {
    parts.iter().map(|p| p.to_string()).collect()
}

fn with(path: &KeyPath, part: &str) -> KeyPath {
    let mut p = path.clone();
    p.push(part.to_string());
    p
}

/// A key path as problems show it: `fields.unit_price`, `join[1].key`.
fn shown_key(path: &[String]) -> String {
    let mut out = String::new();
    for p in path {
        if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{p}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            if p.contains('.') || p.contains(' ') {
                out.push_str(&format!("\"{p}\""));
            } else {
                out.push_str(p);
            }
        }
    }
    out
}

/// Splits a TOML key (`a."b.c".d`) into its parts.
fn key_parts(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '.' => parts.push(std::mem::take(&mut cur).trim().to_string()),
            None => cur.push(c),
        }
    }
    parts.push(cur.trim().to_string());
    parts
}

/// The 1-based line where the key `path` is set in `text`; 0 when it is not found.
fn locate(text: &str, path: &[String]) -> u64 {
    let mut table: Vec<String> = Vec::new();
    let mut arrays: std::collections::HashMap<String, usize> = Default::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let line_no = i as u64 + 1;
        if let Some(inner) = line.strip_prefix("[[") {
            let name = inner.split("]]").next().unwrap_or("");
            let parts = key_parts(name);
            let n = arrays.entry(parts.join("\u{1}")).or_insert(0);
            table = parts;
            table.push(n.to_string());
            *n += 1;
        } else if let Some(inner) = line.strip_prefix('[') {
            table = key_parts(inner.split(']').next().unwrap_or(""));
        } else {
            let Some(eq) = find_eq(line) else { continue };
            let mut full = table.clone();
            full.extend(key_parts(&line[..eq]));
            if path.starts_with(&full) || full.starts_with(path) {
                return line_no;
            }
            continue;
        }
        if table.as_slice() == path {
            return line_no;
        }
    }
    0
}

/// The position of the `=` that ends a key (outside quotes).
fn find_eq(line: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '=' => return Some(i),
            None => {}
        }
    }
    None
}

impl Doc<'_> {
    /// A problem with the key `path` (its line in the mapping, or in the mapping it extends).
    fn problem(&self, path: &[String], value: &str, reason: &str) -> Problem {
        let line = locate(self.text, path);
        let (file, line) = match (&self.base, line) {
            (Some((base_file, base_text)), 0) => match locate(base_text, path) {
                0 => (self.file.to_string(), 0),
                l => (base_file.clone(), l),
            },
            _ => (self.file.to_string(), line),
        };
        Problem::new(&file, line, &shown_key(path), value, reason)
    }

    fn text(&self, path: &KeyPath, v: &toml::Value) -> Result<String, Problem> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            toml::Value::Float(f) => Err(self.problem(
                path,
                &f.to_string(),
                "is a TOML float, which is not exact: write the number as a string (\"49.90\")",
            )),
            _ => Err(self.problem(path, "", "must be a text (\"...\")")),
        }
    }

    fn string(&self, path: &KeyPath, v: &toml::Value) -> Result<String, Problem> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            _ => Err(self.problem(path, "", "must be a text (\"...\")")),
        }
    }

    fn strings(&self, path: &KeyPath, v: &toml::Value) -> Result<Vec<String>, Problem> {
        match v {
            toml::Value::String(s) => Ok(vec![s.clone()]),
            toml::Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|i| self.string(path, i))
                .collect::<Result<Vec<_>, _>>(),
            _ => Err(self.problem(
                path,
                "",
                "must be a text or a list of texts ([\"a\", \"b\"])",
            )),
        }
    }

    fn boolean(&self, path: &KeyPath, v: &toml::Value) -> Result<bool, Problem> {
        v.as_bool()
            .ok_or_else(|| self.problem(path, "", "must be true or false"))
    }

    fn table<'v>(&self, path: &KeyPath, v: &'v toml::Value) -> Result<&'v toml::Table, Problem> {
        v.as_table()
            .ok_or_else(|| self.problem(path, "", "must be a table ([...] or { ... })"))
    }

    fn only(&self, path: &KeyPath, t: &toml::Table, allowed: &[&str]) -> Result<(), Problem> {
        match t.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(self.problem(
                &with(path, k),
                "",
                &format!("unknown key (known here: {})", allowed.join(", ")),
            )),
            None => Ok(()),
        }
    }
}

/// A TOML syntax error as a problem at its line.
fn syntax(file: &str, text: &str, e: &toml::de::Error) -> Problem {
    let line = e
        .span()
        .map(|s| text.get(..s.start).unwrap_or("").matches('\n').count() as u64 + 1)
        .unwrap_or(0);
    Problem::new(
        file,
        line,
        "toml",
        "",
        &format!("is not TOML: {}", e.message().trim()),
    )
}

/// Merges `over` into `base`: tables key by key (the keys of `over` win), anything else
/// replaced whole.
fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

const TOP_KEYS: [&str; 12] = [
    "name",
    "doc",
    "extends",
    "input",
    "join",
    "fields",
    "constants",
    "values",
    "filter",
    "repeat",
    "merge",
    "keep_zero",
];

fn parse_mapping(file: &str, own_name: &str, text: &str) -> Result<Mapping, Problem> {
    if text.trim().is_empty() {
        return Err(Problem::new(
            file,
            0,
            "file",
            "",
            &format!(
                "the {own_name} mapping is empty: a mapping names at least the [fields] of a \
                 line"
            ),
        ));
    }
    let mut root: toml::Table = toml::from_str(text).map_err(|e| syntax(file, text, &e))?;
    let mut doc = Doc {
        file,
        text,
        base: None,
    };
    if let Some(ext) = root.remove("extends") {
        let path = key(&["extends"]);
        let ext = doc.string(&path, &ext)?;
        let base_text = named_preset(&ext).ok_or_else(|| {
            doc.problem(
                &path,
                &ext,
                "is not a shipped mapping (planilha, baremetrics, chartmogul, chargebee, asaas, \
                 iugu, vindi)",
            )
        })?;
        let base_file = format!("{}.toml", ext.trim().to_lowercase());
        let mut base: toml::Table =
            toml::from_str(base_text).map_err(|e| syntax(&base_file, base_text, &e))?;
        base.remove("name");
        base.remove("doc");
        merge_tables(&mut base, root);
        root = base;
        doc.base = Some((base_file, base_text));
    }
    doc.only(&Vec::new(), &root, &TOP_KEYS)?;
    let name = match root.get("name") {
        Some(v) => doc.string(&key(&["name"]), v)?,
        None => own_name.to_string(),
    };
    let doc_url = match root.get("doc") {
        Some(v) => Some(doc.string(&key(&["doc"]), v)?),
        None => None,
    };
    let input = parse_input(&doc, root.get("input"))?;
    let joins = parse_joins(&doc, root.get("join"))?;
    let fields = match root.get("fields") {
        Some(v) => parse_fields(&doc, &key(&["fields"]), v, false)?,
        None => BTreeMap::new(),
    };
    let constants = parse_constants(&doc, root.get("constants"))?;
    let values = parse_values(&doc, root.get("values"))?;
    let filters = parse_filter(&doc, root.get("filter"))?;
    let repeat = parse_repeat(&doc, root.get("repeat"))?;
    let merge = match root.get("merge") {
        Some(v) => {
            let path = key(&["merge"]);
            let t = doc.table(&path, v)?;
            doc.only(&path, t, &["by"])?;
            let by = t
                .get("by")
                .ok_or_else(|| doc.problem(&path, "", "needs `by`: the column naming the subscription whose service periods are merged"))?;
            Some(doc.string(&with(&path, "by"), by)?)
        }
        None => None,
    };
    let keep_zero = match root.get("keep_zero") {
        Some(v) => doc.boolean(&key(&["keep_zero"]), v)?,
        None => false,
    };
    let m = Mapping {
        name,
        doc: doc_url,
        file: file.to_string(),
        r: Box::new(Rules {
            input,
            joins,
            fields,
            constants,
            values,
            filters,
            repeat,
            merge,
            keep_zero,
        }),
    };
    check_mapping(&doc, &m)?;
    Ok(m)
}

fn parse_format(doc: &Doc, path: &KeyPath, v: &toml::Value) -> Result<Format, Problem> {
    let s = doc.string(path, v)?;
    match s.trim().to_lowercase().as_str() {
        "csv" => Ok(Format::Csv),
        "json" => Ok(Format::Json),
        "xlsx" | "ods" | "sheet" => Ok(Format::Sheet),
        _ => Err(doc.problem(path, &s, "is not a format: csv, json or xlsx")),
    }
}

fn parse_decimal_style(
    doc: &Doc,
    path: &KeyPath,
    v: &toml::Value,
) -> Result<DecimalStyle, Problem> {
    let s = doc.string(path, v)?;
    match s.trim().to_lowercase().as_str() {
        "point" => Ok(DecimalStyle::Point),
        "comma" => Ok(DecimalStyle::Comma),
        "auto" => Ok(DecimalStyle::Auto),
        _ => Err(doc.problem(
            path,
            &s,
            "is not a decimal convention: point (1234.56), comma (1.234,56) or auto",
        )),
    }
}

fn parse_date_format(doc: &Doc, path: &KeyPath, v: &toml::Value) -> Result<String, Problem> {
    let s = doc.string(path, v)?;
    check_date_format(&s).map_err(|reason| doc.problem(path, &s, &reason))?;
    Ok(s)
}

/// Checks a jiff strtime format: it must format a day and read it back whole.
fn check_date_format(format: &str) -> Result<(), String> {
    let sample = jiff::civil::date(2024, 1, 31)
        .at(13, 45, 30, 0)
        .to_zoned(TimeZone::UTC)
        .map_err(|e| e.to_string())?;
    let written = jiff::fmt::strtime::format(format, &sample)
        .map_err(|e| format!("is not a date format (jiff strtime, such as %d/%m/%Y): {e}"))?;
    match jiff::fmt::strtime::parse(format, &written).and_then(|t| t.to_date()) {
        Ok(d) if d == sample.date() => Ok(()),
        _ => Err(
            "does not name a whole day: a date format needs the day, the month and the year \
             (such as %d/%m/%Y)"
                .into(),
        ),
    }
}

fn parse_input(doc: &Doc, v: Option<&toml::Value>) -> Result<InputSpec, Problem> {
    let mut spec = InputSpec {
        list: "data".into(),
        ..Default::default()
    };
    let Some(v) = v else { return Ok(spec) };
    let path = key(&["input"]);
    let t = doc.table(&path, v)?;
    doc.only(
        &path,
        t,
        &[
            "file",
            "format",
            "sheet",
            "list",
            "each",
            "decimal",
            "date_format",
            "expect",
        ],
    )?;
    for (k, v) in t {
        let p = with(&path, k);
        match k.as_str() {
            "file" => spec.files = doc.strings(&p, v)?,
            "format" => spec.format = Some(parse_format(doc, &p, v)?),
            "sheet" => spec.sheet = Some(doc.string(&p, v)?),
            "list" => spec.list = doc.string(&p, v)?,
            "each" => spec.each = Some(doc.string(&p, v)?),
            "decimal" => spec.decimal = parse_decimal_style(doc, &p, v)?,
            "date_format" => spec.date_format = Some(parse_date_format(doc, &p, v)?),
            _ => spec.expect = Some(doc.string(&p, v)?),
        }
    }
    Ok(spec)
}

fn parse_joins(doc: &Doc, v: Option<&toml::Value>) -> Result<Vec<JoinSpec>, Problem> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let path = key(&["join"]);
    let items = v
        .as_array()
        .ok_or_else(|| doc.problem(&path, "", "must be a list of tables ([[join]])"))?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = with(&path, &i.to_string());
        let t = doc.table(&path, item)?;
        doc.only(
            &path,
            t,
            &[
                "file",
                "key",
                "on",
                "as",
                "format",
                "list",
                "optional",
                "unmatched",
            ],
        )?;
        let need = |k: &str| {
            t.get(k).ok_or_else(|| {
                doc.problem(
                    &path,
                    "",
                    &format!("a join needs `{k}` (file, key, on and as)"),
                )
            })
        };
        let alias = doc.string(&with(&path, "as"), need("as")?)?;
        if alias.is_empty() || alias.contains('.') || alias.contains('/') {
            return Err(doc.problem(
                &with(&path, "as"),
                &alias,
                "must be a plain name (no `.`): the joined columns are named `as.column`",
            ));
        }
        if out.iter().any(|j: &JoinSpec| j.alias == alias) {
            return Err(doc.problem(&with(&path, "as"), &alias, "is the name of another join"));
        }
        let unmatched_empty = match t.get("unmatched") {
            Some(v) => {
                let p = with(&path, "unmatched");
                match doc.string(&p, v)?.as_str() {
                    "refuse" => false,
                    "empty" => true,
                    other => {
                        return Err(doc.problem(&p, other, "is not refuse or empty"));
                    }
                }
            }
            None => false,
        };
        out.push(JoinSpec {
            files: doc.strings(&with(&path, "file"), need("file")?)?,
            key: doc.string(&with(&path, "key"), need("key")?)?,
            on: doc.strings(&with(&path, "on"), need("on")?)?,
            alias,
            format: match t.get("format") {
                Some(v) => Some(parse_format(doc, &with(&path, "format"), v)?),
                None => None,
            },
            list: match t.get("list") {
                Some(v) => doc.string(&with(&path, "list"), v)?,
                None => "data".into(),
            },
            optional: match t.get("optional") {
                Some(v) => doc.boolean(&with(&path, "optional"), v)?,
                None => false,
            },
            unmatched_empty,
        });
    }
    Ok(out)
}

fn book_fields_list() -> String {
    FIELDS
        .iter()
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn field_of(doc: &Doc, path: &KeyPath, name: &str) -> Result<Field, Problem> {
    Field::from_name(name).ok_or_else(|| {
        doc.problem(
            path,
            "",
            &format!(
                "is not a book field (the fields are {})",
                book_fields_list()
            ),
        )
    })
}

fn parse_fields(
    doc: &Doc,
    path: &KeyPath,
    v: &toml::Value,
    repeat: bool,
) -> Result<BTreeMap<Field, FieldSpec>, Problem> {
    let t = doc.table(path, v)?;
    let mut out = BTreeMap::new();
    for (name, v) in t {
        let p = with(path, name);
        let field = field_of(doc, &p, name)?;
        if repeat && !field.repeatable() {
            return Err(doc.problem(
                &p,
                "",
                "is taken from the row's own line: a repeated group gives product_id, \
                 quantity, unit_price or amount, discount_pct and product.*",
            ));
        }
        let spec = match v {
            toml::Value::String(_) | toml::Value::Array(_) => FieldSpec {
                columns: doc.strings(&p, v)?,
                ..Default::default()
            },
            toml::Value::Table(opts) => parse_field_options(doc, &p, field, opts)?,
            _ => {
                return Err(doc.problem(
                    &p,
                    "",
                    "must be a column name, a list of candidate column names, or a table \
                     { column = \"...\", ... }",
                ))
            }
        };
        out.insert(field, spec);
    }
    Ok(out)
}

fn parse_field_options(
    doc: &Doc,
    path: &KeyPath,
    field: Field,
    t: &toml::Table,
) -> Result<FieldSpec, Problem> {
    let kind = field.kind();
    let mut allowed = vec!["column", "optional", "default"];
    match kind {
        Kind::Money => allowed.extend(["minor_units", "decimal", "subtract"]),
        Kind::Decimal => allowed.push("decimal"),
        Kind::Day => allowed.push("date_format"),
        _ => {}
    }
    if field == Field::EndDate {
        allowed.push("ends");
    }
    doc.only(path, t, &allowed)?;
    let mut spec = FieldSpec::default();
    for (k, v) in t {
        let p = with(path, k);
        match k.as_str() {
            "column" => spec.columns = doc.strings(&p, v)?,
            "optional" => spec.optional = doc.boolean(&p, v)?,
            "default" => {
                let text = doc.text(&p, v)?;
                check_constant(field, &text).map_err(|r| doc.problem(&p, &text, &r))?;
                spec.default = Some(text);
            }
            "minor_units" => spec.minor_units = doc.boolean(&p, v)?,
            "decimal" => spec.decimal = Some(parse_decimal_style(doc, &p, v)?),
            "subtract" => spec.subtract = doc.strings(&p, v)?,
            "date_format" => spec.date_format = Some(parse_date_format(doc, &p, v)?),
            _ => {
                let s = doc.string(&p, v)?;
                spec.ends = match s.as_str() {
                    "instant" => Ends::Instant,
                    "last_day" => Ends::LastDay,
                    "first_day_after" => Ends::FirstDayAfter,
                    _ => {
                        return Err(doc.problem(
                            &p,
                            &s,
                            "is not instant, last_day or first_day_after",
                        ))
                    }
                };
            }
        }
    }
    if spec.columns.is_empty() {
        return Err(doc.problem(
            path,
            "",
            "needs `column`: the source column it is read from",
        ));
    }
    Ok(spec)
}

/// Checks that a constant (or a default) reads as its field.
fn check_constant(field: Field, text: &str) -> Result<(), String> {
    let t = text.trim();
    match field.kind() {
        Kind::Text => Ok(()),
        Kind::Decimal | Kind::Money => money::decimal(t).map(|_| ()),
        Kind::Day => time::parse_when(t).map(|_| ()),
        Kind::Interval => parse_interval(t).map(|_| ()),
        Kind::Count => parse_count(t).map(|_| ()),
        Kind::Integer => t
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| "is not a whole number".into()),
        Kind::Currency => money::currency(t).map(|_| ()),
        Kind::Status => Err("a status is read from a column with [values.status]".into()),
    }
}

fn parse_constants(doc: &Doc, v: Option<&toml::Value>) -> Result<BTreeMap<Field, String>, Problem> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return Ok(out) };
    let path = key(&["constants"]);
    for (name, v) in doc.table(&path, v)? {
        let p = with(&path, name);
        let field = field_of(doc, &p, name)?;
        let text = doc.text(&p, v)?;
        check_constant(field, &text).map_err(|r| doc.problem(&p, &text, &r))?;
        out.insert(field, text);
    }
    Ok(out)
}

fn reason_code(doc: &Doc, path: &KeyPath, code: &str) -> Result<&'static str, Problem> {
    REASONS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(c, _)| *c)
        .ok_or_else(|| {
            doc.problem(
                path,
                code,
                &format!(
                    "is not a reason code ({})",
                    REASONS
                        .iter()
                        .map(|(c, _)| *c)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}

fn parse_values(doc: &Doc, v: Option<&toml::Value>) -> Result<BTreeMap<Field, ValueMap>, Problem> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return Ok(out) };
    let path = key(&["values"]);
    for (name, v) in doc.table(&path, v)? {
        let p = with(&path, name);
        let field = field_of(doc, &p, name)?;
        let mut map = ValueMap::default();
        for (source, action) in doc.table(&p, v)? {
            let ap = with(&p, source);
            let action = match action {
                toml::Value::Table(t) => {
                    doc.only(&ap, t, &["skip"])?;
                    let code = t
                        .get("skip")
                        .ok_or_else(|| doc.problem(&ap, "", "needs `skip = \"reason\"`"))?;
                    let code = doc.string(&with(&ap, "skip"), code)?;
                    Action::Skip(reason_code(doc, &with(&ap, "skip"), &code)?)
                }
                other => {
                    let text = doc.text(&ap, other)?;
                    if field == Field::Status {
                        if !text.eq_ignore_ascii_case("billable") {
                            return Err(doc.problem(
                                &ap,
                                &text,
                                "a status means billable, or { skip = \"reason\" }",
                            ));
                        }
                    } else {
                        check_constant(field, &text).map_err(|r| doc.problem(&ap, &text, &r))?;
                    }
                    Action::Value(text)
                }
            };
            if source == "*" {
                map.other = Some(action);
            } else {
                map.entries.push((source.trim().to_lowercase(), action));
            }
        }
        out.insert(field, map);
    }
    Ok(out)
}

fn parse_filter(doc: &Doc, v: Option<&toml::Value>) -> Result<Vec<FilterRule>, Problem> {
    let mut out = Vec::new();
    let Some(v) = v else { return Ok(out) };
    let path = key(&["filter"]);
    let t = doc.table(&path, v)?;
    doc.only(&path, t, &["keep", "drop"])?;
    for (which, v) in t {
        let p = with(&path, which);
        for (column, values) in doc.table(&p, v)? {
            let cp = with(&p, column);
            let values = match values {
                toml::Value::Array(items) => items
                    .iter()
                    .map(|i| doc.text(&cp, i))
                    .collect::<Result<Vec<_>, _>>()?,
                other => vec![doc.text(&cp, other)?],
            };
            out.push(FilterRule {
                column: column.clone(),
                keep: which == "keep",
                values: values.iter().map(|v| v.trim().to_lowercase()).collect(),
            });
        }
    }
    Ok(out)
}

fn parse_repeat(doc: &Doc, v: Option<&toml::Value>) -> Result<Vec<RepeatSpec>, Problem> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let path = key(&["repeat"]);
    let items = v
        .as_array()
        .ok_or_else(|| doc.problem(&path, "", "must be a list of tables ([[repeat]])"))?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = with(&path, &i.to_string());
        let t = doc.table(&path, item)?;
        doc.only(&path, t, &["fields"])?;
        let fields = match t.get("fields") {
            Some(v) => parse_fields(doc, &with(&path, "fields"), v, true)?,
            None => BTreeMap::new(),
        };
        if !fields.contains_key(&Field::ProductId)
            || !(fields.contains_key(&Field::UnitPrice) || fields.contains_key(&Field::Amount))
        {
            return Err(doc.problem(
                &path,
                "",
                "a repeated group needs fields.product_id and fields.unit_price (or amount)",
            ));
        }
        if !fields
            .values()
            .flat_map(|s| s.columns.iter())
            .any(|c| c.contains("{n}"))
        {
            return Err(doc.problem(
                &path,
                "",
                "a repeated group's columns hold {n}, the group's number (addons[id][{n}])",
            ));
        }
        out.push(RepeatSpec { fields });
    }
    Ok(out)
}

/// Checks what the parts of a mapping say together.
fn check_mapping(doc: &Doc, m: &Mapping) -> Result<(), Problem> {
    let given = |f: Field| m.r.fields.contains_key(&f) || m.r.constants.contains_key(&f);
    for f in [Field::CustomerId, Field::ProductId, Field::StartDate] {
        if !given(f) {
            return Err(doc.problem(
                &key(&["fields"]),
                "",
                &format!(
                    "gives no column for {}: a line needs customer_id, product_id, unit_price \
                     (or amount) and start_date",
                    f.name()
                ),
            ));
        }
    }
    match (given(Field::UnitPrice), given(Field::Amount)) {
        (false, false) => {
            return Err(doc.problem(
                &key(&["fields"]),
                "",
                "gives no column for unit_price (or amount): a line needs customer_id, \
                 product_id, unit_price (or amount) and start_date",
            ))
        }
        (true, true) => {
            return Err(doc.problem(
                &key(&["fields", "amount"]),
                "",
                "give unit_price (the price of one unit) or amount (the price of all units), \
                 not both",
            ))
        }
        _ => {}
    }
    for f in m.r.constants.keys() {
        if m.r.fields.contains_key(f) {
            return Err(doc.problem(
                &key(&["constants", f.name()]),
                "",
                "is also in [fields]: give a column or a constant (a column's fallback is \
                 its `default`)",
            ));
        }
    }
    for f in m.r.values.keys() {
        if !given(*f) {
            return Err(doc.problem(
                &key(&["values", f.name()]),
                "",
                &format!(
                    "maps the values of {}, which [fields] gives no column for",
                    f.name()
                ),
            ));
        }
    }
    if m.r.fields.contains_key(&Field::Status) && !m.r.values.contains_key(&Field::Status) {
        return Err(doc.problem(
            &key(&["fields", "status"]),
            "",
            "a status needs [values.status] saying which values are billable",
        ));
    }
    let json = m.r.input.format == Some(Format::Json);
    if m.r.input.each.is_some() && !json {
        return Err(doc.problem(
            &key(&["input", "each"]),
            "",
            "is for a JSON list: set format = \"json\"",
        ));
    }
    let columns =
        m.r.fields
            .values()
            .chain(m.r.repeat.iter().flat_map(|r| r.fields.values()))
            .flat_map(|s| s.columns.iter().chain(s.subtract.iter()));
    for c in columns {
        if c.starts_with("../") && m.r.input.each.is_none() {
            return Err(doc.problem(
                &key(&["fields"]),
                c,
                "names the parent item (../): only a mapping with [input] each has one",
            ));
        }
    }
    if m.r.merge.is_some() && !m.r.repeat.is_empty() {
        return Err(doc.problem(
            &key(&["merge"]),
            "",
            "cannot be used with [[repeat]]: merge lines of one product each",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading values.

/// Reads a decimal as the source writes it; a leading currency symbol (`R$`, `US$`, `$`, `€`,
/// `£`) and spaces are dropped.
fn parse_decimal(text: &str, style: DecimalStyle) -> Result<Decimal, String> {
    let mut t = text.trim();
    for symbol in ["R$", "US$", "$", "€", "£"] {
        if let Some(rest) = t.strip_prefix(symbol) {
            t = rest;
            break;
        }
    }
    let t: String = t
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{a0}')
        .collect();
    match style {
        DecimalStyle::Comma => {
            let (int, frac) = match t.split_once(',') {
                Some((i, f)) => (i, Some(f)),
                None => (t.as_str(), None),
            };
            let digits = int.trim_start_matches(['-', '+']);
            let groups: Vec<&str> = digits.split('.').collect();
            let grouped_ok = match groups.split_first() {
                Some((_, [])) => true,
                Some((lead, rest)) => {
                    !lead.is_empty() && lead.len() <= 3 && rest.iter().all(|g| g.len() == 3)
                }
                None => false,
            };
            let frac_ok = frac.is_none_or(|f| !f.contains(['.', ',']));
            if !grouped_ok || !frac_ok {
                return Err(
                    "is not a decimal number with a decimal comma (such as 1.234,56)".into(),
                );
            }
            let plain = match frac {
                Some(f) => format!("{}.{f}", int.replace('.', "")),
                None => int.replace('.', ""),
            };
            money::decimal(&plain).map_err(|_| {
                "is not a decimal number with a decimal comma (such as 1.234,56)".into()
            })
        }
        _ => {
            if t.contains(',') {
                return Err(
                    "is not a decimal number with a point: if commas mark decimals here \
                     (1.234,56), declare decimal = \"comma\" in the mapping's [input]"
                        .into(),
                );
            }
            money::decimal(&t)
        }
    }
}

/// Whether a date format reads a time of day too.
fn has_time(format: &str) -> bool {
    let b = format.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let mut j = i + 1;
            while j < b.len() && (b"-_0^#".contains(&b[j]) || b[j].is_ascii_digit()) {
                j += 1;
            }
            if j < b.len() && b"HIklMSTRsc".contains(&b[j]) {
                return true;
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
    false
}

/// Reads a day or an instant: with the declared `format` (jiff strtime), else (or when the
/// value does not match it) only the unambiguous forms of [`time::parse_when`]. A day such as
/// `01/02/2024` is never guessed.
fn parse_when_as(text: &str, format: Option<&str>) -> Result<When, String> {
    let t = text.trim();
    if let Some(f) = format {
        if let Ok(tm) = jiff::fmt::strtime::parse(f, t) {
            if let Ok(ts) = tm.to_timestamp() {
                return Ok(When::Instant(ts));
            }
            if has_time(f) {
                if let Ok(dt) = tm.to_datetime() {
                    if let Ok(z) = dt.to_zoned(TimeZone::UTC) {
                        return Ok(When::Instant(z.timestamp()));
                    }
                }
            } else if let Ok(d) = tm.to_date() {
                return Ok(When::Day(d));
            }
        }
    }
    if !t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()) {
        if t.len() < 9 {
            return Err(
                "is a number, not a date (a spreadsheet's day number?): write dates as \
                 YYYY-MM-DD, or declare the mapping's date_format"
                    .into(),
            );
        }
        return time::parse_when(t);
    }
    match time::parse_when(t) {
        Ok(w) => Ok(w),
        Err(e) => {
            let looks_like_day = day_month_year(t);
            Err(match (format, looks_like_day) {
                (Some(f), _) => format!(
                    "does not match the mapping's date_format {f} (nor YYYY-MM-DD or a timestamp)"
                ),
                (None, true) => "is not a date the mapping can read without a date format: \
                     01/02/2024 could be 1 February or 2 January; declare date_format \
                     (such as \"%d/%m/%Y\") in [input] or on the field"
                    .to_string(),
                (None, false) => e,
            })
        }
    }
}

/// Whether a text has the shape of a day written day-first or month-first (`01/02/2024`,
/// `1.2.24`, `01-02-2024 10:00`): the dates a declared format is needed for.
fn day_month_year(text: &str) -> bool {
    let day = text.split_whitespace().next().unwrap_or("");
    let parts: Vec<&str> = day.split(['/', '.', '-']).collect();
    let digits =
        |p: &str, lens: &[usize]| lens.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    matches!(parts.as_slice(), [a, b, c] if digits(a, &[1, 2]) && digits(b, &[1, 2]) && digits(c, &[2, 4]))
}

/// A billing interval: `month`, `3 months`, `quarterly`, `mensal`, `trimestral`, `MONTHLY`,
/// `YEARLY`, `BIWEEKLY` ...
fn parse_interval(text: &str) -> Result<Period, String> {
    let t = text.trim().to_lowercase();
    let (count, unit) = match t.split_once(char::is_whitespace) {
        Some((n, u)) if n.parse::<u32>().is_ok() => (n.parse::<u32>().unwrap_or(1), u.trim()),
        _ => (1, t.as_str()),
    };
    let word = unit.trim_end_matches('s');
    let (interval, per) =
        match word {
            "quarterly" | "quarter" | "trimestral" | "trimestre" => (Interval::Month, 3),
            "semiannual" | "semiannually" | "semi-annual" | "semi-annually" | "semestral"
            | "semestre" | "half-yearly" => (Interval::Month, 6),
            "biweekly" | "fortnightly" | "quinzenal" => (Interval::Week, 2),
            "bimonthly" | "bimestral" | "bimestre" => (Interval::Month, 2),
            "annually" | "anualmente" => (Interval::Year, 1),
            "monthly" | "mensalmente" => (Interval::Month, 1),
            _ => match interval_unit(unit) {
                Some(i) => (i, 1),
                None => return Err(
                    "is not a billing interval (day, week, month, year, `3 months`, quarterly, \
                     mensal, anual, ...)"
                        .into(),
                ),
            },
        };
    match count.checked_mul(per) {
        Some(c) if c >= 1 => Ok(Period { interval, count: c }),
        _ => Err("is not a billing interval of at least 1".into()),
    }
}

/// A whole number >= 1 (`3`, `3.0` is refused).
fn parse_count(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("is not a whole number of at least 1".into()),
    }
}

/// Trims and lower-cases a header name, with runs of spaces and `_` as one `_`.
fn norm(name: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in name.trim().chars() {
        if c.is_whitespace() || c == '_' {
            gap = true;
        } else {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Finding and opening files.

fn format_of(path: &Path) -> Format {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "json" => Format::Json,
        "xlsx" | "xlsm" | "ods" | "xls" => Format::Sheet,
        _ => Format::Csv,
    }
}

/// The files of a folder.
fn folder_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn named_in(files: &[PathBuf], names: &[String]) -> Option<PathBuf> {
    names.iter().find_map(|name| {
        files
            .iter()
            .find(|p| {
                p.file_name()
                    .is_some_and(|f| f.to_string_lossy().eq_ignore_ascii_case(name.trim()))
            })
            .cloned()
    })
}

/// The main table: the input file itself, or in a folder the first of `[input] file`, or the
/// folder's only file of the mapping's format.
fn main_file(m: &Mapping, input: &Input) -> Result<PathBuf, Problem> {
    if input.path.is_file() {
        return Ok(input.path.clone());
    }
    let files = folder_files(&input.path);
    if let Some(p) = named_in(&files, &m.r.input.files) {
        return Ok(p);
    }
    let wanted = m.r.input.format.unwrap_or(Format::Csv);
    let of_format: Vec<&PathBuf> = files.iter().filter(|p| format_of(p) == wanted).collect();
    if let [only] = of_format.as_slice() {
        return Ok((*only).clone());
    }
    let names = if m.r.input.files.is_empty() {
        "the main table (name it with [input] file)".to_string()
    } else {
        m.r.input.files.join(" or ")
    };
    Err(input.problem(&format!(
        "has no {names}: is this {}? (the folder has {})",
        m.expect(),
        input.listing().join(", ")
    )))
}

/// Opens a table of the input for reading row by row: the one place a file becomes a
/// [`Table`] (the main table and joined tables alike).
fn open_table(
    path: &Path,
    format: Format,
    sheet: Option<&str>,
    encoding: TextEncoding,
) -> Result<Table, Problem> {
    match format {
        Format::Sheet => {
            // A sheet is read as the CSV text the importer reads a workbook's sheets as (one
            // reader), its problems naming the workbook, the sheet and the sheet's rows.
            let workbook = expansa_import::workbook::Workbook::open(path)?;
            let name = match sheet {
                Some(s) => s.to_string(),
                None => workbook.sheet_names().first().cloned().ok_or_else(|| {
                    Problem::new(&display_name(path), 0, "file", "", "has no sheet")
                })?,
            };
            let mut rendered = workbook.sheet(&name)?;
            let csv = std::mem::take(&mut rendered.csv);
            let shown = format!("{}[{name}]", display_name(path));
            Table::from_sheet(&shown, csv, move |line| rendered.row(line))
        }
        _ => Table::open(path, encoding),
    }
}

/// Whether a CSV file's first line has more `;` than `,` (outside quotes): the separator the
/// reader will find, for `decimal = "auto"`.
fn semicolon_separated(path: &Path) -> bool {
    let mut head = Vec::new();
    if let Ok(f) = input::open_file(path) {
        let _ = f.take(64 << 10).read_to_end(&mut head);
    }
    let first = head.split(|b| *b == b'\n').next().unwrap_or(&[]);
    expansa_import::detect_separator(first) == b';'
}

// ---------------------------------------------------------------------------------------------
// Joined tables.

/// A joined table held in memory: its rows by key, with the columns the mapping uses.
struct Joined {
    alias: String,
    file: String,
    /// Whether the file was there (an `optional` join's file may be absent).
    loaded: bool,
    unmatched_empty: bool,
    /// The columns the mapping uses, and whether the file has each.
    columns: Vec<String>,
    present: Vec<bool>,
    rows: HashMap<String, (u64, Vec<Option<String>>)>,
}

/// The columns of join `alias` that the mapping uses (`alias.column` anywhere).
fn join_columns(m: &Mapping, alias: &str) -> Vec<String> {
    let prefix = format!("{alias}.");
    let mut all: Vec<&String> = Vec::new();
    for s in
        m.r.fields
            .values()
            .chain(m.r.repeat.iter().flat_map(|r| r.fields.values()))
    {
        all.extend(s.columns.iter().chain(s.subtract.iter()));
    }
    all.extend(m.r.joins.iter().flat_map(|j| j.on.iter()));
    all.extend(m.r.filters.iter().map(|f| &f.column));
    all.extend(m.r.merge.iter());
    let mut out: Vec<String> = Vec::new();
    for c in all {
        if let Some(col) = c.strip_prefix(&prefix) {
            if !out.iter().any(|o| o == col) {
                out.push(col.to_string());
            }
        }
    }
    out
}

fn json_text(v: &Value) -> Result<Option<(String, bool)>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            let t = s.trim();
            Ok((!t.is_empty()).then(|| (t.to_string(), false)))
        }
        Value::Number(n) => Ok(Some((n.to_string(), true))),
        Value::Bool(b) => Ok(Some((b.to_string(), false))),
        Value::Object(_) => {
            Err("is a JSON object, not a value: name a field inside it (such as plan.id)".into())
        }
        Value::Array(_) => Err("is a JSON list, not a value: name an item (items.0.id)".into()),
    }
}

fn json_at<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut cur = v;
    for seg in path {
        cur = match cur {
            Value::Object(map) => map.get(seg.as_str())?,
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn segments(path: &str) -> Vec<String> {
    path.split('.').map(|s| s.trim().to_string()).collect()
}

fn load_join(m: &Mapping, spec: &JoinSpec, input: &Input) -> Result<Joined, Problem> {
    let columns = join_columns(m, &spec.alias);
    let dir = if input.path.is_dir() {
        input.path.clone()
    } else {
        input
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    };
    let mut joined = Joined {
        alias: spec.alias.clone(),
        file: spec.files.first().cloned().unwrap_or_default(),
        loaded: false,
        unmatched_empty: spec.unmatched_empty,
        present: vec![false; columns.len()],
        columns,
        rows: HashMap::new(),
    };
    let Some(path) = named_in(&folder_files(&dir), &spec.files) else {
        if spec.optional {
            return Ok(joined);
        }
        return Err(Problem::new(
            &dir.display().to_string(),
            0,
            "file",
            "",
            &format!(
                "has no {} to join as `{}` (the folder has {})",
                spec.files.join(" or "),
                spec.alias,
                folder_files(&dir)
                    .iter()
                    .map(|p| display_name(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    joined.file = display_name(&path);
    joined.loaded = true;
    let file = joined.file.clone();
    let add = |joined: &mut Joined,
               line: u64,
               key: Option<String>,
               vals: Vec<Option<String>>|
     -> Result<(), Problem> {
        let Some(key) = key else { return Ok(()) };
        if let Some((first, old)) = joined.rows.get(&key) {
            if *old != vals {
                return Err(Problem::new(
                    &file,
                    line,
                    &spec.key,
                    &key,
                    &format!("contradicts line {first}: two rows with this key and other values"),
                ));
            }
            return Ok(());
        }
        joined.rows.insert(key, (line, vals));
        Ok(())
    };
    match spec.format.unwrap_or_else(|| format_of(&path)) {
        Format::Json => {
            let value = input::read_json(&path)?;
            let items = input::json_objects(&value, &spec.list).ok_or_else(|| {
                Problem::new(
                    &joined.file,
                    0,
                    "json",
                    "",
                    &format!(
                        "is not a JSON list (an array, or an object whose `{}` is one)",
                        spec.list
                    ),
                )
            })?;
            let key_path = segments(&spec.key);
            let paths: Vec<Vec<String>> = joined.columns.iter().map(|c| segments(c)).collect();
            joined.present = vec![true; paths.len()];
            for (i, item) in items.iter().enumerate() {
                let key = json_at(item, &key_path)
                    .and_then(|v| json_text(v).ok().flatten())
                    .map(|(t, _)| t);
                let vals = paths
                    .iter()
                    .map(|p| {
                        json_at(item, p)
                            .and_then(|v| json_text(v).ok().flatten())
                            .map(|(t, _)| t)
                    })
                    .collect();
                add(&mut joined, i as u64 + 1, key, vals)?;
            }
        }
        format => {
            let mut table = open_table(&path, format, None, input.encoding)?;
            let names: Vec<String> = table.names().iter().map(|n| norm(n)).collect();
            let key_pos = names.iter().position(|n| *n == norm(&spec.key)).ok_or_else(|| {
                Problem::new(
                    table.file(),
                    1,
                    &spec.key,
                    "",
                    &format!(
                        "no such column: is this the table the mapping joins as `{}`? (the header has {})",
                        spec.alias,
                        table.names().join(", ")
                    ),
                )
            })?;
            let positions: Vec<Option<usize>> = joined
                .columns
                .iter()
                .map(|c| names.iter().position(|n| *n == norm(c)))
                .collect();
            joined.present = positions.iter().map(Option::is_some).collect();
            while let Some(rec) = table.next_row()? {
                let key = input::field(&rec, Some(key_pos)).map(str::to_string);
                let vals = positions
                    .iter()
                    .map(|p| {
                        p.and_then(|p| input::field(&rec, Some(p)))
                            .map(str::to_string)
                    })
                    .collect();
                add(&mut joined, rec.line, key, vals)?;
            }
        }
    }
    Ok(joined)
}

// ---------------------------------------------------------------------------------------------
// Rows.

/// Where a field's text comes from.
#[derive(Clone, Debug)]
enum Getter {
    /// A column of the main CSV table.
    Col(usize),
    /// A path in the JSON item.
    Path(Vec<String>),
    /// A path in the JSON item's parent (`../x` with `[input] each`).
    Parent(Vec<String>),
    /// A column of a joined table: (join, slot).
    Join(usize, usize),
}

/// A getter and the name problems give it.
#[derive(Clone, Debug)]
struct Source {
    getter: Getter,
    name: String,
}

/// One row of the main table, with what is joined to it.
struct Row<'a> {
    line: u64,
    record: Option<&'a Record>,
    item: Option<&'a Value>,
    parent: Option<&'a Value>,
    /// `product_items[2]` for an element of `[input] each`.
    prefix: Option<String>,
    joined: Vec<Joint<'a>>,
}

/// What a row found in a joined table.
#[derive(Clone, Debug)]
enum Joint<'a> {
    Found(&'a [Option<String>]),
    /// Nothing joined (the file is absent, or `unmatched = "empty"`): its columns are empty.
    Empty,
    /// The row names a key the table does not have: reading any of its columns refuses the
    /// row (a row that reads none of them, such as one skipped by its status, is not).
    Missing {
        column: String,
        value: String,
        detail: String,
    },
}

/// A field's text as read, with where it came from.
#[derive(Clone, Debug)]
struct Val {
    text: String,
    column: String,
    /// A JSON number (always written with a point).
    number: bool,
}

impl<'a> Row<'a> {
    fn column(&self, s: &Source) -> String {
        match (&s.getter, &self.prefix) {
            (Getter::Path(_), Some(p)) => format!("{p}.{}", s.name),
            _ => s.name.clone(),
        }
    }

    fn cell(&self, g: &Getter) -> Result<Option<(Cow<'a, str>, bool)>, String> {
        match g {
            Getter::Col(i) => Ok(self
                .record
                .and_then(|r| input::field(r, Some(*i)))
                .map(|t| (Cow::Borrowed(t), false))),
            Getter::Path(p) => match self.item.and_then(|v| json_at(v, p)) {
                Some(v) => Ok(json_text(v)?.map(|(t, n)| (Cow::Owned(t), n))),
                None => Ok(None),
            },
            Getter::Parent(p) => match self.parent.and_then(|v| json_at(v, p)) {
                Some(v) => Ok(json_text(v)?.map(|(t, n)| (Cow::Owned(t), n))),
                None => Ok(None),
            },
            Getter::Join(j, slot) => match self.joined.get(*j) {
                Some(Joint::Found(vals)) => Ok(vals
                    .get(*slot)
                    .and_then(|v| v.as_deref())
                    .map(|t| (Cow::Borrowed(t), false))),
                _ => Ok(None),
            },
        }
    }

    /// The first non-empty value of `sources`.
    fn first(&self, sources: &[Source]) -> Result<Option<Val>, Verdict> {
        for s in sources {
            if let Getter::Join(j, _) = s.getter {
                if let Some(Joint::Missing {
                    column,
                    value,
                    detail,
                }) = self.joined.get(j)
                {
                    return Err(Verdict::Refuse(Refusal {
                        reason: "missing_reference",
                        column: column.clone(),
                        value: value.clone(),
                        detail: detail.clone(),
                    }));
                }
            }
            match self.cell(&s.getter) {
                Ok(Some((t, number))) => {
                    return Ok(Some(Val {
                        text: t.into_owned(),
                        column: self.column(s),
                        number,
                    }))
                }
                Ok(None) => {}
                Err(reason) => {
                    return Err(Verdict::Refuse(Refusal {
                        reason: "bad_value",
                        column: self.column(s),
                        value: String::new(),
                        detail: reason,
                    }))
                }
            }
        }
        Ok(None)
    }
}

/// What became of a row that did not become lines.
#[derive(Debug)]
enum Verdict {
    Skip {
        reason: &'static str,
        detail: String,
    },
    Refuse(Refusal),
}

fn refuse(v: &Val, detail: &str) -> Verdict {
    Verdict::Refuse(Refusal {
        reason: "bad_value",
        column: v.column.clone(),
        value: v.text.clone(),
        detail: detail.to_string(),
    })
}

/// A repeated column group and its resolved fields; `None` for the row's own line.
type Group<'g> = Option<(&'g RepeatSpec, &'g BTreeMap<Field, Resolved>)>;

/// A field's value with its options and sources.
type Found<'s> = (Val, Option<&'s FieldSpec>, Option<&'s Resolved>);

/// A field's sources, resolved against the main table.
#[derive(Clone, Debug, Default)]
struct Resolved {
    sources: Vec<Source>,
    subtract: Vec<Source>,
}

/// The lines a row makes.
#[derive(Debug)]
struct Built {
    id: String,
    id_column: String,
    lines: Vec<LineOut>,
    customer: Option<CustomerOut>,
    products: Vec<ProductOut>,
    group: Option<String>,
}

impl Built {
    fn fingerprint(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        format!("{:?}|{:?}|{:?}", self.lines, self.customer, self.products).hash(&mut h);
        h.finish()
    }
}

/// A row held for `[merge]`.
struct Pending {
    line_no: u64,
    source_id: String,
    line: LineOut,
    customer: Option<CustomerOut>,
    product: Option<ProductOut>,
}

/// What changes while rows are converted.
#[derive(Default)]
struct State {
    seen: HashMap<String, (u64, u64)>,
    /// Rows given each content id so far (a mapping without an id column).
    auto_ids: HashMap<String, u32>,
    groups: BTreeMap<String, Vec<Pending>>,
    no_interval: u64,
}

/// The shape of the main table, to resolve column names.
enum Shape<'a> {
    /// The header's names, normalized (for matching) and as the table gives them (trimmed,
    /// lower case: for problems).
    Csv(&'a [String], &'a [String]),
    Json,
}

/// A mapping ready to convert one input.
struct Engine<'m> {
    m: &'m Mapping,
    file: String,
    tz: TimeZone,
    currency: Currency,
    decimal: DecimalStyle,
    joins: Vec<Joined>,
    join_on: Vec<Vec<Source>>,
    fields: BTreeMap<Field, Resolved>,
    filters: Vec<(Vec<Source>, &'m FilterRule)>,
    repeats: Vec<(u32, &'m RepeatSpec, BTreeMap<Field, Resolved>)>,
    merge_by: Vec<Source>,
    auto_id: bool,
}

impl<'m> Engine<'m> {
    /// A column name as a source of the main table or a join; `None` when neither has it.
    fn source(&self, name: &str, shape: &Shape) -> Option<Source> {
        if let Some((alias, col)) = name.split_once('.') {
            if let Some(j) = self.joins.iter().position(|j| j.alias == alias) {
                let join = &self.joins[j];
                let slot = join.columns.iter().position(|c| c == col)?;
                return (join.loaded && join.present.get(slot).copied().unwrap_or(false)).then(
                    || Source {
                        getter: Getter::Join(j, slot),
                        name: name.to_string(),
                    },
                );
            }
        }
        match shape {
            Shape::Csv(names, header) => {
                let i = names.iter().position(|n| *n == norm(name))?;
                Some(Source {
                    getter: Getter::Col(i),
                    name: header.get(i).cloned().unwrap_or_else(|| name.to_string()),
                })
            }
            Shape::Json => Some(Source {
                getter: match name.strip_prefix("../") {
                    Some(rest) => Getter::Parent(segments(rest)),
                    None => Getter::Path(segments(name)),
                },
                name: name.to_string(),
            }),
        }
    }

    /// The problem for a column the main table (or a join) does not have.
    fn missing(&self, name: &str, shape: &Shape, header: &[String]) -> Problem {
        if let Some((alias, col)) = name.split_once('.') {
            if let Some(j) = self.joins.iter().find(|j| j.alias == alias) {
                if !j.loaded {
                    return Problem::new(
                        &self.file,
                        0,
                        name,
                        "",
                        &format!("the joined file for `{alias}` is not there"),
                    );
                }
                return Problem::new(
                    &j.file,
                    1,
                    col,
                    "",
                    &format!("no such column: is this the table the mapping joins as `{alias}`?"),
                );
            }
        }
        match shape {
            Shape::Csv(..) => Problem::new(
                &self.file,
                1,
                name,
                "",
                &format!(
                    "no such column: is this {}? (the header has {})",
                    self.m.expect(),
                    header.join(", ")
                ),
            ),
            Shape::Json => Problem::new(
                &self.file,
                1,
                name,
                "",
                &format!(
                    "no such field in the first item: is this {}?",
                    self.m.expect()
                ),
            ),
        }
    }

    fn resolve_field(
        &self,
        spec: &FieldSpec,
        shape: &Shape,
        header: &[String],
        n: Option<u32>,
    ) -> Result<Resolved, Problem> {
        let name = |c: &String| match n {
            Some(n) => c.replace("{n}", &n.to_string()),
            None => c.clone(),
        };
        let sources: Vec<Source> = spec
            .columns
            .iter()
            .filter_map(|c| self.source(&name(c), shape))
            .collect();
        if sources.is_empty() && !spec.optional && spec.default.is_none() && n.is_none() {
            if let Some(first) = spec.columns.first() {
                return Err(self.missing(first, shape, header));
            }
        }
        let subtract = spec
            .subtract
            .iter()
            .filter_map(|c| self.source(&name(c), shape))
            .collect();
        Ok(Resolved { sources, subtract })
    }

    /// Resolves every column the mapping names against the main table's shape.
    fn resolve(&mut self, shape: &Shape, header: &[String]) -> Result<(), Problem> {
        for (j, spec) in self.m.r.joins.iter().enumerate() {
            // A join's key may be a column of the main table or of an earlier join.
            let on: Vec<Source> = spec
                .on
                .iter()
                .filter_map(|c| {
                    let s = self.source(c, shape)?;
                    match s.getter {
                        Getter::Join(k, _) if k >= j => None,
                        _ => Some(s),
                    }
                })
                .collect();
            if on.is_empty() && self.joins.get(j).is_some_and(|l| l.loaded) {
                let first = spec.on.first().map(String::as_str).unwrap_or("");
                return Err(self.missing(first, shape, header));
            }
            self.join_on.push(on);
        }
        let mut fields = BTreeMap::new();
        for (f, spec) in &self.m.r.fields {
            fields.insert(*f, self.resolve_field(spec, shape, header, None)?);
        }
        self.fields = fields;
        self.auto_id = self
            .fields
            .get(&Field::Id)
            .is_none_or(|r| r.sources.is_empty())
            && !self.m.r.constants.contains_key(&Field::Id);
        for rule in &self.m.r.filters {
            let s = self
                .source(&rule.column, shape)
                .ok_or_else(|| self.missing(&rule.column, shape, header))?;
            self.filters.push((vec![s], rule));
        }
        if let Some(by) = &self.m.r.merge {
            let s = self
                .source(by, shape)
                .ok_or_else(|| self.missing(by, shape, header))?;
            self.merge_by = vec![s];
        }
        for r in &self.m.r.repeat {
            let Some(product) = r.fields.get(&Field::ProductId) else {
                continue;
            };
            for n in 0..MAX_REPEAT {
                let present = product.columns.iter().any(|c| {
                    self.source(&c.replace("{n}", &n.to_string()), shape)
                        .is_some()
                });
                if !present || matches!(shape, Shape::Json) {
                    continue;
                }
                let mut fields = BTreeMap::new();
                for (f, spec) in &r.fields {
                    fields.insert(*f, self.resolve_field(spec, shape, header, Some(n))?);
                }
                self.repeats.push((n, r, fields));
            }
        }
        Ok(())
    }

    /// A field's value: its columns' first non-empty value, else the constant, else the
    /// default; then its value map.
    fn value(
        &self,
        row: &Row,
        field: Field,
        resolved: Option<&Resolved>,
        spec: Option<&FieldSpec>,
    ) -> Result<Option<Val>, Verdict> {
        let mut got = match resolved {
            Some(r) => row.first(&r.sources)?,
            None => None,
        };
        if got.is_none() && resolved.is_none() {
            got = self.m.r.constants.get(&field).map(|c| Val {
                text: c.clone(),
                column: format!("constants.{}", field.name()),
                number: false,
            });
        }
        if got.is_none() {
            if let Some(d) = spec.and_then(|s| s.default.as_ref()) {
                got = Some(Val {
                    text: d.clone(),
                    column: spec
                        .and_then(|s| s.columns.first().cloned())
                        .unwrap_or_default(),
                    number: false,
                });
            }
        }
        if let (Some(v), Some(map)) = (got.as_mut(), self.m.r.values.get(&field)) {
            match map.lookup(&v.text) {
                Some(Action::Skip(reason)) => {
                    return Err(Verdict::Skip {
                        reason,
                        detail: format!("{} is {}", v.column, v.text),
                    })
                }
                Some(Action::Value(t)) => {
                    v.text = t.clone();
                    v.number = false;
                }
                None if field == Field::Status => {
                    return Err(refuse(
                        v,
                        "is not a status the mapping knows: add it to [values.status] \
                         (billable, or { skip = \"reason\" })",
                    ))
                }
                None => {}
            }
        }
        Ok(got)
    }

    fn main_value(&self, row: &Row, field: Field) -> Result<Option<Val>, Verdict> {
        self.value(
            row,
            field,
            self.fields.get(&field),
            self.m.r.fields.get(&field),
        )
    }

    fn required(&self, row: &Row, field: Field) -> Result<Val, Verdict> {
        self.main_value(row, field)?.ok_or_else(|| {
            let column = self
                .m
                .r
                .fields
                .get(&field)
                .and_then(|s| s.columns.first().cloned())
                .unwrap_or_else(|| field.name().to_string());
            Verdict::Refuse(Refusal {
                reason: "bad_value",
                column,
                value: String::new(),
                detail: format!("is empty: a line needs its {}", field.name()),
            })
        })
    }

    fn decimal_of(&self, v: &Val, spec: Option<&FieldSpec>) -> Result<Decimal, Verdict> {
        let style = if v.number || v.column.starts_with("constants.") {
            DecimalStyle::Point
        } else {
            spec.and_then(|s| s.decimal).unwrap_or(self.decimal)
        };
        let text = v.text.trim().trim_end_matches('%');
        parse_decimal(text, style).map_err(|r| refuse(v, &r))
    }

    fn money(
        &self,
        row: &Row,
        v: &Val,
        spec: Option<&FieldSpec>,
        resolved: Option<&Resolved>,
        currency: Currency,
    ) -> Result<Decimal, Verdict> {
        let minor = spec.is_some_and(|s| s.minor_units) && !v.column.starts_with("constants.");
        let one = |v: &Val| -> Result<Decimal, Verdict> {
            let d = self.decimal_of(v, spec)?;
            if minor {
                money::shift_minor(d, currency).map_err(|r| refuse(v, &r))
            } else {
                Ok(d)
            }
        };
        let mut total = one(v)?;
        for s in resolved.map(|r| r.subtract.as_slice()).unwrap_or(&[]) {
            if let Some(sub) = row.first(std::slice::from_ref(s))? {
                total = total
                    .checked_sub(one(&sub)?)
                    .ok_or_else(|| refuse(v, "is out of range"))?;
            }
        }
        if total.is_sign_negative() && !total.is_zero() {
            return Err(refuse(v, "is negative: a price is 0 or more"));
        }
        Ok(total)
    }

    fn day(&self, v: &Val, spec: Option<&FieldSpec>, end: bool) -> Result<Date, Verdict> {
        let format =
            spec.and_then(|s| s.date_format.as_deref())
                .or(self.m.r.input.date_format.as_deref());
        let when = parse_when_as(&v.text, format).map_err(|r| refuse(v, &r))?;
        Ok(if end {
            match spec.map(|s| s.ends).unwrap_or_default() {
                Ends::Instant => time::end_day(&when, &self.tz),
                Ends::LastDay => time::start_day(&when, &self.tz),
                Ends::FirstDayAfter => time::day_before(time::start_day(&when, &self.tz)),
            }
        } else {
            time::start_day(&when, &self.tz)
        })
    }

    fn opt_day(&self, row: &Row, field: Field, end: bool) -> Result<Option<Date>, Verdict> {
        match self.main_value(row, field)? {
            Some(v) => Ok(Some(self.day(&v, self.m.r.fields.get(&field), end)?)),
            None => Ok(None),
        }
    }

    fn opt_text(&self, row: &Row, field: Field) -> Result<Option<String>, Verdict> {
        Ok(self.main_value(row, field)?.map(|v| v.text))
    }

    /// The row's id as the report gives it (before it is read whole).
    fn source_id(&self, row: &Row) -> String {
        match self.main_value(row, Field::Id) {
            Ok(Some(v)) => v.text,
            _ => self.auto_id_of(row),
        }
    }

    /// The id of a row of a table without an id column: from what the row holds
    /// (`customer/product/start`, and the nested element's place), not from the file's name or
    /// the row's position, so that the same export saved again, renamed, as a workbook or with
    /// rows added imports as the same lines. A row that cannot give them falls back to
    /// `file:line`.
    fn auto_id_of(&self, row: &Row) -> String {
        let text = |f| match self.main_value(row, f) {
            Ok(Some(v)) => Some(v.text),
            _ => None,
        };
        // The start as a day (a date cell and a `dd/mm/yyyy` text of one day give one id).
        let start = match self.main_value(row, Field::StartDate) {
            Ok(Some(v)) => self
                .day(&v, self.m.r.fields.get(&Field::StartDate), false)
                .ok()
                .map(|d| d.to_string()),
            _ => None,
        };
        let base = match (text(Field::CustomerId), text(Field::ProductId), start) {
            (Some(c), Some(p), Some(d)) => format!("{c}/{p}/{d}"),
            _ => format!("{}:{}", self.file, row.line),
        };
        match &row.prefix {
            Some(p) => format!("{base}:{p}"),
            None => base,
        }
    }

    /// Joins the row's joined tables, in order (a join's key may read an earlier join).
    fn join<'a>(&'a self, row: &mut Row<'a>) {
        for (j, joined) in self.joins.iter().enumerate() {
            if !joined.loaded {
                row.joined.push(Joint::Empty);
                continue;
            }
            let on = self.join_on.get(j).map(Vec::as_slice).unwrap_or(&[]);
            let column = on.first().map(|s| row.column(s)).unwrap_or_default();
            let joint = match row.first(on) {
                Err(Verdict::Refuse(Refusal {
                    column,
                    value,
                    detail,
                    ..
                })) => Joint::Missing {
                    column,
                    value,
                    detail,
                },
                Err(Verdict::Skip { .. }) => Joint::Empty,
                Ok(None) if joined.unmatched_empty => Joint::Empty,
                Ok(None) => Joint::Missing {
                    column,
                    value: String::new(),
                    detail: format!("is empty: the row names no {} to join", joined.alias),
                },
                Ok(Some(k)) => match joined.rows.get(k.text.as_str()) {
                    Some((_, vals)) => Joint::Found(vals),
                    None if joined.unmatched_empty => Joint::Empty,
                    None => Joint::Missing {
                        column,
                        value: k.text.clone(),
                        detail: format!(
                            "no row of {} has {} = {}",
                            joined.file,
                            self.m.r.joins.get(j).map(|s| s.key.as_str()).unwrap_or(""),
                            k.text
                        ),
                    },
                },
            };
            row.joined.push(joint);
        }
    }

    fn filter(&self, row: &Row) -> Result<(), Verdict> {
        for (sources, rule) in &self.filters {
            let v = row.first(sources)?;
            let text = v
                .as_ref()
                .map(|v| v.text.to_lowercase())
                .unwrap_or_default();
            let listed = rule.values.contains(&text);
            if listed != rule.keep {
                return Err(Verdict::Skip {
                    reason: "filtered",
                    detail: format!(
                        "{} is {:?}: {} by [filter]",
                        rule.column,
                        v.map(|v| v.text).unwrap_or_default(),
                        if rule.keep { "not kept" } else { "dropped" }
                    ),
                });
            }
        }
        Ok(())
    }

    /// The billing period of a row (at most [`MAX_PERIOD_YEARS`] years).
    fn period(&self, row: &Row, st: &mut State) -> Result<Period, Verdict> {
        let count_v = self.main_value(row, Field::BillingIntervalCount)?;
        let count = match &count_v {
            Some(v) => Some(parse_count(&v.text).map_err(|r| refuse(v, &r))?),
            None => None,
        };
        let (period, v) = if let Some(v) = self.main_value(row, Field::BillingInterval)? {
            let p = parse_interval(&v.text).map_err(|r| refuse(&v, &r))?;
            let c = count.unwrap_or(1).saturating_mul(p.count);
            (
                Period {
                    interval: p.interval,
                    count: c,
                },
                Some(v),
            )
        } else if let Some(v) = self.main_value(row, Field::BillingPeriodMonths)? {
            let months = parse_count(&v.text).map_err(|r| refuse(&v, &r))?;
            (Period::months(months), Some(v))
        } else {
            st.no_interval += 1;
            (Period::months(count.unwrap_or(1)), count_v)
        };
        let days = match period.interval {
            Interval::Day => 1,
            Interval::Week => 7,
            Interval::Month => 31,
            Interval::Year => 366,
        };
        if u64::from(period.count) * days > MAX_PERIOD_YEARS * 366 {
            if let Some(v) = v {
                return Err(refuse(
                    &v,
                    &format!("is a billing period longer than {MAX_PERIOD_YEARS} years"),
                ));
            }
        }
        Ok(period)
    }

    /// A field's value with its options and sources: of the row's own line, or of a
    /// repeated group.
    fn lookup<'s>(
        &'s self,
        row: &Row,
        field: Field,
        group: Group<'s>,
    ) -> Result<Option<Found<'s>>, Verdict> {
        match group {
            Some((spec, fields)) => {
                let Some(r) = fields.get(&field) else {
                    return Ok(None);
                };
                Ok(row
                    .first(&r.sources)?
                    .map(|v| (v, spec.fields.get(&field), Some(r))))
            }
            None => Ok(self
                .main_value(row, field)?
                .map(|v| (v, self.m.r.fields.get(&field), self.fields.get(&field)))),
        }
    }

    /// The first column a field is read from, for problems.
    fn column_of(&self, field: Field, group: Group) -> String {
        let spec = match group {
            Some((spec, _)) => spec.fields.get(&field),
            None => self.m.r.fields.get(&field),
        };
        spec.and_then(|s| s.columns.first().cloned())
            .unwrap_or_else(|| field.name().to_string())
    }

    fn quantity(&self, row: &Row, group: Group) -> Result<Option<Decimal>, Verdict> {
        let Some((v, spec, _)) = self.lookup(row, Field::Quantity, group)? else {
            return Ok(None);
        };
        let q = self.decimal_of(&v, spec)?;
        if q.is_sign_negative() && !q.is_zero() {
            return Err(refuse(&v, "is negative: a quantity is 0 or more"));
        }
        Ok(Some(q))
    }

    /// Quantity and unit price from `unit_price`, or from `amount` (the price of all units:
    /// the unit price is amount / quantity when that is exact, else the line is 1 unit at the
    /// amount).
    fn price(
        &self,
        row: &Row,
        quantity: Option<Decimal>,
        cur: Currency,
        group: Group,
    ) -> Result<(Decimal, Decimal), Verdict> {
        let q = quantity.unwrap_or(Decimal::ONE);
        if let Some((v, spec, r)) = self.lookup(row, Field::UnitPrice, group)? {
            return Ok((q, self.money(row, &v, spec, r, cur)?));
        }
        if let Some((v, spec, r)) = self.lookup(row, Field::Amount, group)? {
            let amount = self.money(row, &v, spec, r, cur)?;
            if q.is_zero() {
                if amount.is_zero() {
                    return Ok((q, amount));
                }
                return Err(refuse(&v, "is an amount for a quantity of 0"));
            }
            // Exact only: a quotient cut at 28 digits multiplies back to the amount when
            // rounded, so a unit price of more than 12 decimals is taken as not exact.
            if let Some(unit) = amount.checked_div(q).map(|u| u.normalize()) {
                if unit.scale() <= 12 && unit.checked_mul(q) == Some(amount) {
                    return Ok((q, unit));
                }
            }
            return Ok((Decimal::ONE, amount));
        }
        let has_unit = match group {
            Some((spec, _)) => spec.fields.contains_key(&Field::UnitPrice),
            None => self.m.r.fields.contains_key(&Field::UnitPrice),
        };
        let field = if has_unit {
            Field::UnitPrice
        } else {
            Field::Amount
        };
        Err(Verdict::Refuse(Refusal {
            reason: "bad_value",
            column: self.column_of(field, group),
            value: String::new(),
            detail: "is empty: a line needs its price".into(),
        }))
    }

    fn discount(&self, row: &Row, group: Group) -> Result<Option<Decimal>, Verdict> {
        let Some((v, spec, _)) = self.lookup(row, Field::DiscountPct, group)? else {
            return Ok(None);
        };
        let d = self.decimal_of(&v, spec)?;
        if d < Decimal::ZERO || d > Decimal::ONE_HUNDRED {
            return Err(refuse(&v, "is not a discount between 0 and 100 (percent)"));
        }
        Ok(Some(d))
    }

    /// The product row of a line: written when the mapping names a product field or repeats
    /// groups (add-ons are products of kind `addon`).
    fn product(
        &self,
        row: &Row,
        id: String,
        group: Group,
        cur: Currency,
    ) -> Result<Option<ProductOut>, Verdict> {
        let any = !self.m.r.repeat.is_empty()
            || self
                .m
                .r
                .fields
                .keys()
                .chain(self.m.r.constants.keys())
                .any(|f| f.is_product());
        if !any {
            return Ok(None);
        }
        let text = |f: Field| -> Result<Option<Val>, Verdict> {
            Ok(self.lookup(row, f, group)?.map(|(v, _, _)| v))
        };
        let list_price = match self.lookup(row, Field::ProductListPrice, group)? {
            Some((v, spec, _)) => Some(self.money(row, &v, spec, None, cur)?),
            None => None,
        };
        let tier = match text(Field::ProductTier)? {
            Some(v) => Some(
                v.text
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| refuse(&v, "is not a whole number"))?,
            ),
            None => None,
        };
        let price_term_months = match text(Field::ProductPriceTermMonths)? {
            Some(v) => Some(parse_count(&v.text).map_err(|r| refuse(&v, &r))?),
            None => None,
        };
        let kind = match (text(Field::ProductKind)?, group) {
            (Some(v), _) => Some(v.text),
            (None, Some(_)) => Some("addon".to_string()),
            (None, None) => None,
        };
        Ok(Some(ProductOut {
            id,
            name: text(Field::ProductName)?.map(|v| v.text),
            family: text(Field::ProductFamily)?.map(|v| v.text),
            tier,
            kind,
            list_price,
            price_term_months,
            currency: list_price.map(|_| cur),
        }))
    }

    /// The line of a repeated column group (an add-on), `None` when the group is empty.
    fn repeated(
        &self,
        row: &Row,
        main: &LineOut,
        group: Group,
        cur: Currency,
    ) -> Result<Option<(LineOut, Option<ProductOut>)>, Verdict> {
        let Some((product, _, _)) = self.lookup(row, Field::ProductId, group)? else {
            return Ok(None);
        };
        let quantity = self.quantity(row, group)?;
        let (quantity, unit_price) = self.price(row, quantity, cur, group)?;
        let discount_pct = self.discount(row, group)?;
        let p = self.product(row, product.text.clone(), group, cur)?;
        Ok(Some((
            LineOut {
                id: format!("{}:{}", main.id, product.text),
                product_id: product.text,
                quantity,
                unit_price,
                discount_pct,
                revises: None,
                ..main.clone()
            },
            p,
        )))
    }

    /// The lines (and customer, products) a row makes, or why it makes none.
    fn build(&self, row: &Row, st: &mut State) -> Result<Built, Verdict> {
        if self.fields.contains_key(&Field::Status)
            && self.main_value(row, Field::Status)?.is_none()
        {
            return Err(Verdict::Refuse(Refusal {
                reason: "bad_value",
                column: self.column_of(Field::Status, None),
                value: String::new(),
                detail: "is empty: the mapping reads whether a row is billable from it".into(),
            }));
        }
        let (id, id_column) = if self.auto_id {
            // Rows alike (two lines of one product from one day) are told apart by their order.
            let base = self.auto_id_of(row);
            let n = st.auto_ids.entry(base.clone()).or_insert(0);
            *n += 1;
            let id = if *n == 1 { base } else { format!("{base}#{n}") };
            (id, "id".to_string())
        } else {
            let v = self.required(row, Field::Id)?;
            (v.text, v.column)
        };
        let currency = match self.main_value(row, Field::Currency)? {
            Some(v) => Some(money::currency(&v.text).map_err(|r| refuse(&v, &r))?),
            None => None,
        };
        let cur = currency.unwrap_or(self.currency);
        let customer_id = self.required(row, Field::CustomerId)?.text;
        let product_id = self.required(row, Field::ProductId)?.text;
        let quantity = self.quantity(row, None)?;
        let (quantity, unit_price) = self.price(row, quantity, cur, None)?;
        let discount_pct = self.discount(row, None)?;
        let period = self.period(row, st)?;
        let start_v = self.required(row, Field::StartDate)?;
        let start = self.day(&start_v, self.m.r.fields.get(&Field::StartDate), false)?;
        let end = self.opt_day(row, Field::EndDate, true)?;
        if let Some(end) = end {
            if end < start {
                if Some(end) == start.yesterday().ok() {
                    return Err(Verdict::Skip {
                        reason: "not_billable",
                        detail: format!("ends the day it starts ({start}): never served"),
                    });
                }
                let v = self.main_value(row, Field::EndDate)?.unwrap_or(start_v);
                return Err(refuse(
                    &v,
                    &format!("ends ({end}) before the line starts ({start})"),
                ));
            }
        }
        let sold_on = self.opt_day(row, Field::SoldOn, false)?;
        let group = match self.merge_by.is_empty() {
            true => None,
            false => match row.first(&self.merge_by)? {
                Some(v) => Some(v.text),
                None => {
                    return Err(Verdict::Refuse(Refusal {
                        reason: "bad_value",
                        column: self
                            .merge_by
                            .first()
                            .map(|s| s.name.clone())
                            .unwrap_or_default(),
                        value: String::new(),
                        detail: "is empty: [merge] groups the rows by it".into(),
                    }))
                }
            },
        };
        let contract_id = self
            .opt_text(row, Field::ContractId)?
            .or_else(|| group.clone());
        let line = LineOut {
            id: id.clone(),
            customer_id: customer_id.clone(),
            contract_id,
            product_id: product_id.clone(),
            quantity,
            unit_price,
            discount_pct,
            currency,
            period,
            start,
            end,
            sold_on,
            revises: self.opt_text(row, Field::Revises)?,
        };
        let customer = if self
            .m
            .r
            .fields
            .keys()
            .chain(self.m.r.constants.keys())
            .any(|f| f.is_customer())
        {
            Some(CustomerOut {
                id: customer_id,
                name: self.opt_text(row, Field::CustomerName)?,
                registered_on: self.opt_day(row, Field::CustomerRegisteredOn, false)?,
                segment: self.opt_text(row, Field::CustomerSegment)?,
                country: self.opt_text(row, Field::CustomerCountry)?,
                channel: self.opt_text(row, Field::CustomerChannel)?,
            })
        } else {
            None
        };
        let product = self.product(row, product_id, None, cur)?;
        let mut lines = Vec::new();
        let mut products = Vec::new();
        let mut zero = Vec::new();
        if self.keep_line(&line) {
            lines.push(line.clone());
            products.extend(product);
        } else {
            zero.push(line.product_id.clone());
        }
        for (n, spec, fields) in &self.repeats {
            let group = Some((*spec, fields));
            let Some((extra, p)) = self.repeated(row, &line, group, cur)? else {
                continue;
            };
            if lines.iter().any(|l: &LineOut| l.id == extra.id) {
                return Err(Verdict::Refuse(Refusal {
                    reason: "contradicts",
                    column: self
                        .column_of(Field::ProductId, group)
                        .replace("{n}", &n.to_string()),
                    value: extra.product_id,
                    detail: "is in the row twice".into(),
                }));
            }
            if self.keep_line(&extra) {
                lines.push(extra);
                products.extend(p);
            } else {
                zero.push(extra.product_id);
            }
        }
        if lines.is_empty() {
            return Err(Verdict::Skip {
                reason: "zero_amount",
                detail: format!("{} at a price of 0", zero.join(", ")),
            });
        }
        Ok(Built {
            id,
            id_column,
            lines,
            customer,
            products,
            group,
        })
    }

    fn keep_line(&self, l: &LineOut) -> bool {
        self.m.r.keep_zero || !(l.unit_price.is_zero() || l.quantity.is_zero())
    }

    /// Converts one row: exactly one report call.
    fn handle<'a>(
        &'a self,
        st: &mut State,
        ctx: &mut Context,
        mut row: Row<'a>,
    ) -> Result<(), Problem> {
        let file = self.file.as_str();
        let line = row.line;
        self.join(&mut row);
        let verdict = self.filter(&row).and_then(|()| self.build(&row, st));
        let source_id = self.source_id(&row);
        let built = match verdict {
            Ok(b) => b,
            Err(Verdict::Skip { reason, detail }) => {
                ctx.report.skipped(file, line, &source_id, reason, &detail);
                return Ok(());
            }
            Err(Verdict::Refuse(r)) => {
                ctx.report.refuse(file, line, &source_id, r);
                return Ok(());
            }
        };
        if !(self.auto_id && self.merge_by.is_empty()) {
            let fp = built.fingerprint();
            if let Some((first, old)) = st.seen.get(&built.id) {
                if *old == fp {
                    ctx.report.skipped(
                        file,
                        line,
                        &source_id,
                        "duplicate",
                        &format!("the same row as line {first}"),
                    );
                } else {
                    ctx.report.refused(
                        file,
                        line,
                        &source_id,
                        "contradicts",
                        &built.id_column,
                        &built.id,
                        &format!("contradicts line {first}: the same id with other values"),
                    );
                }
                return Ok(());
            }
            if !(self.auto_id) {
                st.seen.insert(built.id.clone(), (line, fp));
            }
        }
        if let Some(group) = built.group {
            let mut lines = built.lines.into_iter();
            if let Some(l) = lines.next() {
                st.groups.entry(group).or_default().push(Pending {
                    line_no: line,
                    source_id,
                    line: l,
                    customer: built.customer,
                    product: built.products.into_iter().next(),
                });
            }
            return Ok(());
        }
        if let Some(c) = &built.customer {
            ctx.book
                .customer(c)
                .map_err(|e| ctx.book.write_problem(e))?;
        }
        for p in &built.products {
            ctx.book.product(p).map_err(|e| ctx.book.write_problem(e))?;
        }
        let mut ids = Vec::new();
        for l in &built.lines {
            ctx.book.line(l).map_err(|e| ctx.book.write_problem(e))?;
            ids.push(l.id.as_str());
        }
        ctx.report
            .mapped(file, line, &source_id, "recurring", &ids.join(" "));
        Ok(())
    }

    /// Writes the lines of `[merge]`: per group, service periods in order; consecutive (or
    /// overlapping) periods at the same terms are one line, a change of terms starts a line
    /// that revises the previous one, a gap starts a line of its own.
    fn flush(&self, st: &mut State, ctx: &mut Context) -> Result<(), Problem> {
        let file = self.file.as_str();
        for (group, mut rows) in std::mem::take(&mut st.groups) {
            rows.sort_by_key(|p| (p.line.start, p.line_no));
            let mut run: Option<Run> = None;
            for p in rows {
                let Some(r) = run.as_mut() else {
                    run = Some(Run::new(group.clone(), p, None));
                    continue;
                };
                let same = same_terms(&r.line, &p.line);
                let touches = match r.line.end {
                    None => true,
                    Some(e) => e.tomorrow().is_ok_and(|t| p.line.start <= t),
                };
                if same && touches {
                    r.line.end = match (r.line.end, p.line.end) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    };
                    r.merged.push((p.line_no, p.source_id));
                    continue;
                }
                if !same && p.line.start == r.line.start {
                    ctx.report.refused(
                        file,
                        p.line_no,
                        &p.source_id,
                        "contradicts",
                        "row",
                        &group,
                        &format!(
                            "contradicts line {}: the same service period of {group} at other terms",
                            r.first_line
                        ),
                    );
                    continue;
                }
                let revises = if touches {
                    if let Ok(cut) = p.line.start.yesterday() {
                        r.line.end = Some(r.line.end.map_or(cut, |e| e.min(cut)));
                    }
                    Some(r.line.id.clone())
                } else {
                    None
                };
                let id = format!("{group}@{}", p.line.start);
                if let Some(done) = run.replace(Run::new(id, p, revises)) {
                    done.write(ctx, file)
                        .map_err(|e| ctx.book.write_problem(e))?;
                }
            }
            if let Some(done) = run {
                done.write(ctx, file)
                    .map_err(|e| ctx.book.write_problem(e))?;
            }
        }
        Ok(())
    }
}

fn same_terms(a: &LineOut, b: &LineOut) -> bool {
    a.customer_id == b.customer_id
        && a.product_id == b.product_id
        && a.quantity == b.quantity
        && a.unit_price == b.unit_price
        && a.discount_pct == b.discount_pct
        && a.currency == b.currency
        && a.period == b.period
        && a.contract_id == b.contract_id
}

/// A line being made from consecutive service periods.
struct Run {
    line: LineOut,
    first_line: u64,
    first_source: String,
    merged: Vec<(u64, String)>,
    customer: Option<CustomerOut>,
    product: Option<ProductOut>,
}

impl Run {
    fn new(id: String, p: Pending, revises: Option<String>) -> Run {
        let mut line = p.line;
        line.id = id;
        line.revises = revises;
        Run {
            line,
            first_line: p.line_no,
            first_source: p.source_id,
            merged: Vec::new(),
            customer: p.customer,
            product: p.product,
        }
    }

    fn write(self, ctx: &mut Context, file: &str) -> std::io::Result<()> {
        if let Some(c) = &self.customer {
            ctx.book.customer(c)?;
        }
        if let Some(p) = &self.product {
            ctx.book.product(p)?;
        }
        ctx.book.line(&self.line)?;
        ctx.report.mapped(
            file,
            self.first_line,
            &self.first_source,
            "recurring",
            &self.line.id,
        );
        for (line, source) in &self.merged {
            ctx.report.merged(
                file,
                *line,
                source,
                "recurring",
                &self.line.id,
                &format!("a service period that continues line {}", self.line.id),
            );
        }
        Ok(())
    }
}

/// Converts the input by the mapping `m`: every row of its main table (joined to the other
/// tables it names) becomes lines of the book, or is skipped or refused in the report.
///
/// Errors (the source as a whole): the main table or a joined file is not there or is not
/// what the mapping expects (a column it names is missing, a JSON file that is not a list),
/// a file that cannot be read, the book that cannot be written.
pub fn convert(m: &Mapping, ctx: &mut Context) -> Result<(), Problem> {
    let path = main_file(m, ctx.input)?;
    // A workbook is read as one whatever the mapping declares (a preset for CSV exports
    // reads the same table saved as .xlsx or .ods).
    let format = match format_of(&path) {
        Format::Sheet => Format::Sheet,
        found => m.r.input.format.unwrap_or(found),
    };
    let mut joins = Vec::new();
    for spec in &m.r.joins {
        joins.push(load_join(m, spec, ctx.input)?);
    }
    let Options {
        currency, timezone, ..
    } = ctx.options;
    let decimal = match (m.r.input.decimal, format) {
        // A spreadsheet's number cells are numbers (their text, as the workbook reader gives
        // it, has a point): `decimal` is how a CSV writes them, so one mapping reads both.
        (_, Format::Sheet) => DecimalStyle::Point,
        (DecimalStyle::Auto, Format::Csv) if semicolon_separated(&path) => DecimalStyle::Comma,
        (DecimalStyle::Auto, _) => DecimalStyle::Point,
        (d, _) => d,
    };
    let mut eng = Engine {
        m,
        file: display_name(&path),
        tz: timezone.clone(),
        currency: *currency,
        decimal,
        joins,
        join_on: Vec::new(),
        fields: BTreeMap::new(),
        filters: Vec::new(),
        repeats: Vec::new(),
        merge_by: Vec::new(),
        auto_id: false,
    };
    if !m.r.fields.contains_key(&Field::BillingInterval)
        && !m.r.fields.contains_key(&Field::BillingPeriodMonths)
        && !m.r.constants.contains_key(&Field::BillingInterval)
        && !m.r.constants.contains_key(&Field::BillingPeriodMonths)
    {
        ctx.report.notes.push(format!(
            "the {} mapping gives no billing interval: every line is read as monthly",
            m.name
        ));
    }
    let mut st = State::default();
    match format {
        Format::Json => convert_json(&mut eng, &mut st, ctx, &path)?,
        _ => {
            let mut table = open_table(
                &path,
                format,
                m.r.input.sheet.as_deref(),
                ctx.input.encoding,
            )?;
            let header: Vec<String> = table.names().to_vec();
            let names: Vec<String> = header.iter().map(|n| norm(n)).collect();
            eng.file = table.file().to_string();
            eng.resolve(&Shape::Csv(&names, &header), &header)?;
            while let Some(record) = table.next_row()? {
                let row = Row {
                    line: record.line,
                    record: Some(&record),
                    item: None,
                    parent: None,
                    prefix: None,
                    joined: Vec::new(),
                };
                eng.handle(&mut st, ctx, row)?;
            }
        }
    }
    eng.flush(&mut st, ctx)?;
    if st.no_interval > 0
        && eng
            .fields
            .keys()
            .any(|f| matches!(f, Field::BillingInterval | Field::BillingPeriodMonths))
    {
        ctx.report.notes.push(format!(
            "{} rows gave no billing interval: read as monthly",
            st.no_interval
        ));
    }
    Ok(())
}

fn convert_json(
    eng: &mut Engine,
    st: &mut State,
    ctx: &mut Context,
    path: &Path,
) -> Result<(), Problem> {
    let m = eng.m;
    let value = input::read_json(path)?;
    let items = input::json_objects(&value, &m.r.input.list).ok_or_else(|| {
        Problem::new(
            &eng.file,
            0,
            "json",
            "",
            &format!(
                "is not a JSON list (an array, or an object whose `{}` is one): is this {}?",
                m.r.input.list,
                m.expect()
            ),
        )
    })?;
    eng.resolve(&Shape::Json, &[])?;
    // A file that is not what the mapping reads: its first item lacks a required field.
    let first = match (&m.r.input.each, items.first()) {
        (Some(each), Some(item)) => json_at(item, &segments(each))
            .and_then(|v| v.as_array())
            .and_then(|a| a.first())
            .map(|el| (el, Some(*item))),
        (None, Some(item)) => Some((*item, None)),
        _ => None,
    };
    if let Some((item, parent)) = first {
        let core = [
            Field::Id,
            Field::CustomerId,
            Field::ProductId,
            Field::UnitPrice,
            Field::Amount,
            Field::StartDate,
        ];
        for (f, spec) in m.r.fields.iter().filter(|(f, _)| core.contains(f)) {
            if spec.optional || spec.default.is_some() || *f == Field::Id && eng.auto_id {
                continue;
            }
            let Some(r) = eng.fields.get(f) else { continue };
            let found = r.sources.iter().any(|s| match &s.getter {
                Getter::Path(p) => json_at(item, p).is_some(),
                Getter::Parent(p) => parent.and_then(|v| json_at(v, p)).is_some(),
                Getter::Join(..) | Getter::Col(_) => true,
            });
            if !found {
                if let Some(c) = spec.columns.first() {
                    return Err(eng.missing(c, &Shape::Json, &[]));
                }
            }
        }
    }
    let eng = &*eng;
    for (i, item) in items.iter().enumerate() {
        let line = i as u64 + 1;
        match &m.r.input.each {
            None => {
                let row = Row {
                    line,
                    record: None,
                    item: Some(item),
                    parent: None,
                    prefix: None,
                    joined: Vec::new(),
                };
                eng.handle(st, ctx, row)?;
            }
            Some(each) => {
                let elements = json_at(item, &segments(each))
                    .and_then(|v| v.as_array())
                    .filter(|a| !a.is_empty());
                let Some(elements) = elements else {
                    let id = item
                        .get("id")
                        .and_then(|v| json_text(v).ok().flatten())
                        .map(|(t, _)| t)
                        .unwrap_or_else(|| format!("{}:{line}", eng.file));
                    ctx.report
                        .skipped(&eng.file, line, &id, "not_used", &format!("has no {each}"));
                    continue;
                };
                for (k, el) in elements.iter().enumerate() {
                    let row = Row {
                        line,
                        record: None,
                        item: Some(el),
                        parent: Some(item),
                        prefix: Some(format!("{each}[{k}]")),
                        joined: Vec::new(),
                    };
                    eng.handle(st, ctx, row)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        Mapping::parse("m", text).unwrap_err().to_string()
    }

    const MINIMAL: &str = r#"
[fields]
id = "id"
customer_id = "cliente"
product_id = "produto"
unit_price = "valor"
start_date = "inicio"
"#;

    #[test]
    fn parses_a_minimal_mapping() {
        let m = Mapping::parse("m", MINIMAL).unwrap();
        assert_eq!(m.name, "m");
        assert_eq!(m.file, "m.toml");
        assert_eq!(m.r.fields[&Field::CustomerId].columns, vec!["cliente"]);
        assert_eq!(m.r.input.list, "data");
        assert_eq!(m.r.input.decimal, DecimalStyle::Point);
    }

    #[test]
    fn parses_every_part() {
        let text = r#"
name = "minha"
doc = "https://example.com"
[input]
file = ["a.csv", "b.csv"]
decimal = "comma"
date_format = "%d/%m/%Y"
[[join]]
file = "clientes.csv"
key = "id"
on = "cliente"
as = "cli"
[fields]
id = ["id", "código"]
customer_id = "cliente"
"customer.name" = "cli.nome"
product_id = "produto"
amount = { column = "total", minor_units = true, subtract = ["imposto"] }
start_date = { column = "inicio", date_format = "%Y%m%d" }
end_date = { column = "fim", ends = "first_day_after", optional = true }
status = "situacao"
[constants]
billing_interval = "month"
currency = "BRL"
[values.status]
ativo = "billable"
teste = { skip = "trial_at_zero" }
"*" = { skip = "not_billable" }
[filter]
keep.tipo = ["assinatura"]
drop."cli.segmento" = "interno"
"#;
        let m = Mapping::parse("x", text).unwrap();
        assert_eq!(m.name, "minha");
        assert_eq!(m.r.input.files, vec!["a.csv", "b.csv"]);
        assert_eq!(m.r.input.decimal, DecimalStyle::Comma);
        assert_eq!(m.r.joins[0].alias, "cli");
        assert_eq!(m.r.joins[0].on, vec!["cliente"]);
        let amount = &m.r.fields[&Field::Amount];
        assert!(amount.minor_units);
        assert_eq!(amount.subtract, vec!["imposto"]);
        assert_eq!(m.r.fields[&Field::EndDate].ends, Ends::FirstDayAfter);
        assert_eq!(m.r.constants[&Field::Currency], "BRL");
        let status = &m.r.values[&Field::Status];
        assert!(matches!(status.lookup("ATIVO"), Some(Action::Value(v)) if v == "billable"));
        assert!(matches!(
            status.lookup("teste"),
            Some(Action::Skip("trial_at_zero"))
        ));
        assert!(matches!(
            status.lookup("outro"),
            Some(Action::Skip("not_billable"))
        ));
        assert_eq!(m.r.filters.len(), 2);
        assert!(m.r.filters.iter().any(|f| f.keep && f.column == "tipo"));
        assert!(m
            .r
            .filters
            .iter()
            .any(|f| !f.keep && f.column == "cli.segmento" && f.values == vec!["interno"]));
    }

    #[test]
    fn unknown_keys_and_fields_are_named_with_their_line() {
        let e = parse_err(&format!("{MINIMAL}colour = \"x\"\n"));
        assert_eq!(
            e,
            "m.toml:8: fields.colour: : is not a book field (the fields are id, customer_id, \
             contract_id, product_id, quantity, unit_price, amount, discount_pct, currency, \
             billing_interval, billing_interval_count, billing_period_months, start_date, \
             end_date, sold_on, revises, status, customer.name, customer.registered_on, \
             customer.segment, customer.country, customer.channel, product.name, \
             product.family, product.tier, product.kind, product.list_price, \
             product.price_term_months)"
        );
        let e = parse_err(&format!(
            "[input]\nfile = \"a.csv\"\nseparator = \";\"\n{MINIMAL}"
        ));
        assert_eq!(
            e,
            "m.toml:3: input.separator: : unknown key (known here: file, format, sheet, list, \
             each, decimal, date_format, expect)"
        );
        let e = parse_err(&format!("nome = \"x\"\n{MINIMAL}"));
        assert!(
            e.starts_with("m.toml:1: nome: : unknown key (known here: name, doc"),
            "{e}"
        );
        let e = parse_err(
            "[fields]\nid = \"id\"\ncustomer_id = { column = \"c\", minor_units = true }\n",
        );
        assert!(
            e.starts_with("m.toml:3: fields.customer_id.minor_units: : unknown key"),
            "{e}"
        );
    }

    #[test]
    fn bad_toml_and_bad_values_are_problems() {
        let e = parse_err("[fields\nid = 1\n");
        assert!(e.starts_with("m.toml:1: toml: : is not TOML:"), "{e}");
        let e = parse_err(&format!("{MINIMAL}[input]\ndate_format = \"%d/%m\"\n"));
        assert_eq!(
            e,
            "m.toml:9: input.date_format: %d/%m: does not name a whole day: a date format needs \
             the day, the month and the year (such as %d/%m/%Y)"
        );
        let e = parse_err(&format!("{MINIMAL}[input]\ndate_format = \"%d/%m/%Y %\"\n"));
        assert!(
            e.starts_with("m.toml:9: input.date_format: %d/%m/%Y %: is not a date format"),
            "{e}"
        );
        let e = parse_err(&format!("{MINIMAL}[input]\ndecimal = \"virgula\"\n"));
        assert_eq!(
            e,
            "m.toml:9: input.decimal: virgula: is not a decimal convention: point (1234.56), \
             comma (1.234,56) or auto"
        );
        let e = parse_err(&format!(
            "{MINIMAL}[constants]\nbilling_interval = \"fortnight\"\n"
        ));
        assert!(
            e.starts_with(
                "m.toml:9: constants.billing_interval: fortnight: is not a billing interval"
            ),
            "{e}"
        );
        let e = parse_err(&format!("{MINIMAL}[constants]\ncurrency = \"XXY\"\n"));
        assert_eq!(
            e,
            "m.toml:9: constants.currency: XXY: is not an ISO 4217 currency code"
        );
        let e = parse_err(&format!("{MINIMAL}[constants]\nquantity = 1.5\n"));
        assert!(e.contains("is a TOML float, which is not exact"), "{e}");
        let e = parse_err(&format!("{MINIMAL}[values.status]\nativo = \"billable\"\n"));
        assert_eq!(
            e,
            "m.toml:8: values.status: : maps the values of status, which [fields] gives no column for"
        );
        let e = parse_err(&format!(
            "{MINIMAL}status = \"s\"\n[values.status]\nx = {{ skip = \"because\" }}\n"
        ));
        assert!(
            e.starts_with("m.toml:10: values.status.x.skip: because: is not a reason code"),
            "{e}"
        );
    }

    #[test]
    fn a_line_needs_its_fields() {
        let e = parse_err(
            "[fields]\nid = \"id\"\ncustomer_id = \"c\"\nproduct_id = \"p\"\nstart_date = \"s\"\n",
        );
        assert_eq!(
            e,
            "m.toml:1: fields: : gives no column for unit_price (or amount): a line needs \
             customer_id, product_id, unit_price (or amount) and start_date"
        );
        let e = parse_err(&format!("{MINIMAL}amount = \"total\"\n"));
        assert!(
            e.starts_with("m.toml:8: fields.amount: : give unit_price"),
            "{e}"
        );
        let e = parse_err(&format!("{MINIMAL}[constants]\nproduct_id = \"p\"\n"));
        assert!(
            e.starts_with("m.toml:9: constants.product_id: : is also in [fields]"),
            "{e}"
        );
        let e = Mapping::parse("asaas", "").unwrap_err().to_string();
        assert_eq!(
            e,
            "asaas.toml:0: file: : the asaas mapping is empty: a mapping names at least the \
             [fields] of a line"
        );
    }

    #[test]
    fn extends_a_shipped_mapping() {
        let m = Mapping::parse(
            "minha",
            "extends = \"planilha\"\n[input]\ndate_format = \"%d/%m/%Y\"\n",
        )
        .unwrap();
        assert_eq!(m.name, "minha");
        assert_eq!(m.r.input.date_format.as_deref(), Some("%d/%m/%Y"));
        assert!(m.r.fields[&Field::CustomerId]
            .columns
            .iter()
            .any(|c| c == "cliente"));
        let e = parse_err("extends = \"quickbooks\"\n");
        assert!(
            e.starts_with("m.toml:1: extends: quickbooks: is not a shipped mapping"),
            "{e}"
        );
    }

    #[test]
    fn shipped_presets_parse() {
        for kind in SourceKind::ALL {
            if let Some(text) = preset(kind).filter(|t| !t.is_empty()) {
                let m = Mapping::parse(kind.name(), text).unwrap();
                assert_eq!(m.name, kind.name());
                assert!(m.doc.is_some(), "{} cites its source", kind.name());
            }
        }
        Mapping::parse("planilha", GENERIC).unwrap();
    }

    #[test]
    fn reads_values() {
        let p = DecimalStyle::Point;
        let c = DecimalStyle::Comma;
        assert_eq!(parse_decimal("1234.56", p).unwrap().to_string(), "1234.56");
        assert_eq!(
            parse_decimal("R$ 1.234,56", c).unwrap().to_string(),
            "1234.56"
        );
        assert_eq!(parse_decimal("99,9", c).unwrap().to_string(), "99.9");
        assert_eq!(parse_decimal("1.000", c).unwrap().to_string(), "1000");
        assert!(parse_decimal("1.5", c).is_err());
        assert!(parse_decimal("12,5", p)
            .unwrap_err()
            .contains("decimal = \"comma\""));
        let usd = Currency::from_code("USD").unwrap();
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(
            money::shift_minor(Decimal::from(5000), usd)
                .unwrap()
                .to_string(),
            "50"
        );
        assert_eq!(
            money::shift_minor(Decimal::from(5000), jpy)
                .unwrap()
                .to_string(),
            "5000"
        );
        assert_eq!(parse_interval("QUARTERLY").unwrap(), Period::months(3));
        assert_eq!(
            parse_interval("2 weeks").unwrap(),
            Period {
                interval: Interval::Week,
                count: 2
            }
        );
        assert_eq!(
            parse_interval("anual").unwrap(),
            Period {
                interval: Interval::Year,
                count: 1
            }
        );
        assert!(parse_interval("sometimes").is_err());
        assert_eq!(norm("  Data  de Início "), "data_de_início");
        assert_eq!(norm("Service period_start"), "service_period_start");
    }

    #[test]
    fn never_guesses_a_day() {
        let e = parse_when_as("01/02/2024", None).unwrap_err();
        assert!(e.contains("declare date_format"), "{e}");
        assert_eq!(
            parse_when_as("01/02/2024", Some("%d/%m/%Y")).unwrap(),
            When::Day(jiff::civil::date(2024, 2, 1))
        );
        assert_eq!(
            parse_when_as("2024-02-01", Some("%d/%m/%Y")).unwrap(),
            When::Day(jiff::civil::date(2024, 2, 1))
        );
        assert!(parse_when_as("45321", None)
            .unwrap_err()
            .contains("is a number, not a date"));
        assert!(matches!(
            parse_when_as("01/02/2024 10:30", Some("%d/%m/%Y %H:%M")).unwrap(),
            When::Instant(_)
        ));
        assert!(day_month_year("01/02/2024"));
        assert!(day_month_year("1.2.24"));
        assert!(day_month_year("01-02-2024 10:00"));
        assert!(!day_month_year("2024-02-01"));
        assert!(!day_month_year("99999-01-01"));
        assert!(has_time("%d/%m/%Y %-H:%M"));
        assert!(!has_time("%d/%m/%Y"));
    }

    #[test]
    fn locates_keys() {
        let text = "a = 1\n[[join]]\nfile = \"x\"\n[[join]]\nkey = \"k\"\n[fields]\n\"customer.name\" = \"n\"\nend_date = { column = \"e\" }\n";
        assert_eq!(locate(text, &key(&["join", "1", "key"])), 5);
        assert_eq!(locate(text, &key(&["join", "0"])), 2);
        assert_eq!(locate(text, &key(&["fields", "customer.name"])), 7);
        assert_eq!(locate(text, &key(&["fields", "end_date", "column"])), 8);
        assert_eq!(locate(text, &key(&["fields"])), 6);
        assert_eq!(shown_key(&key(&["join", "1", "key"])), "join[1].key");
        assert_eq!(
            shown_key(&key(&["fields", "customer.name"])),
            "fields.\"customer.name\""
        );
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC{0,60}", fmt in "[%a-zA-Z/ .:-]{0,12}") {
            let _ = Mapping::parse("p", &text);
            let _ = Mapping::parse("p", &format!("[fields]\n{text}"));
            let _ = parse_decimal(&text, DecimalStyle::Comma);
            let _ = parse_decimal(&text, DecimalStyle::Point);
            let _ = parse_when_as(&text, Some(&fmt));
            let _ = parse_when_as(&text, None);
            let _ = check_date_format(&fmt);
            let _ = parse_interval(&text);
            let _ = locate(&text, &key(&["fields", "id"]));
            let _ = day_month_year(&text);
        }
    }
}
