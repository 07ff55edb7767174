//! The native part of the `expansa` Python package (`expansa._native`; the package's
//! `python/expansa/__init__.py` is its documented face, docs/python.md its manual).
//!
//! Nothing here computes a figure. A book is read by the importer the CLI uses
//! ([`expansa_import::read_book_from`]: same checks, same problems; Arrow tables as the files
//! of a Parquet book, [`ArrowBook`]). A report is asked for with the
//! CLI's own flags, turned into a validated plan by the CLI's parser ([`Plan::from_cli`]: same
//! defaults, same limits, same messages), and computed by the functions the CLI's
//! [`execute`] runs. What is here is the last step: a report's rows as an Arrow table.
//!
//! - The movement report, the KPI report and a customer's trail are built from the report's
//!   values: amounts exact, as Arrow `decimal128(38, 10)` (10 is the report's `scale`: its
//!   JSON rounds them to the currency's minor unit); rates and ratios at the places the JSON
//!   prints them ([`expansa_kpi::RATIO_DP`], [`expansa_kpi::MONTHS_DP`]); counts as `uint64`.
//! - Opportunities and quotes are the CLI's JSON rows, column by column, as
//!   [`OPPORTUNITY_COLUMNS`] and [`QUOTE_LINE_COLUMNS`] say: decimal strings as
//!   `decimal128(38, 10)` (the same value: none has more places), integers as `int64`,
//!   nested objects as their JSON text. A row whose keys are not those is an error (of this
//!   crate: the tests compare every column with the CLI's JSON).
//!
//! Every table's schema carries the rest of the report's JSON (currency, rules, notes, a
//! quote's totals...) under the metadata key `expansa`.

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, Decimal128Array, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
    StructArray, UInt64Array,
};
use arrow_schema::{Field, Fields, Schema};
use expansa_commands::{
    execute, execute_on_cells, kpi_report, movement_report, report_cells, trail, Cli, Command,
    MovementView, Plan,
};
use expansa_import::parquet::ArrowBook;
use expansa_import::{book_at, read_book_from, BookErrors, BookSource, ImportOptions, NoProgress};
use expansa_kpi::{kpi_values, render_kpis, KpiReport, KpiValue, MONTHS_DP, RATIO_DP};
use expansa_ledger::{rounded, Decimal, Format, Money, SCALE};
use expansa_movements::{render_json, render_trail, Kind, Movement, Report};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3_arrow::PyTable;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// How a value of a JSON row becomes a cell.
#[derive(Clone, Copy)]
enum Cell {
    /// A string (or null).
    Text,
    /// An integer (or null).
    Integer,
    /// A decimal string (or null), as `decimal128(38, SCALE)`.
    Decimal,
    /// Any value, as its JSON text (null as null).
    Json,
}

/// An opportunity's keys (`expansa opportunities --format json`), in order.
const OPPORTUNITY_COLUMNS: &[(&str, Cell)] = &[
    ("rank", Cell::Integer),
    ("customer_id", Cell::Text),
    ("customer_name", Cell::Text),
    ("kind", Cell::Text),
    ("product_id", Cell::Text),
    ("from_product_id", Cell::Text),
    ("probability", Cell::Decimal),
    ("gain", Cell::Decimal),
    ("expected_gain", Cell::Decimal),
    ("customer_mrr", Cell::Decimal),
    ("price_source", Cell::Text),
    ("why", Cell::Json),
];

/// A quote's line's keys (`expansa quote amend --format json`), in order.
const QUOTE_LINE_COLUMNS: &[(&str, Cell)] = &[
    ("product_id", Cell::Text),
    ("line_id", Cell::Text),
    ("start", Cell::Text),
    ("end", Cell::Text),
    ("currency", Cell::Text),
    ("prior_quantity", Cell::Decimal),
    ("quantity", Cell::Decimal),
    ("effective_quantity", Cell::Decimal),
    ("unit_price", Cell::Decimal),
    ("price_term_months", Cell::Integer),
    ("prorate_multiplier", Cell::Decimal),
    ("prorate_fraction", Cell::Text),
    ("prorated_unit_price", Cell::Decimal),
    ("net_total", Cell::Decimal),
];

/// A book read and validated whole; reports run on it without reading it again.
#[pyclass(frozen, module = "expansa._native")]
struct Book {
    book: Arc<expansa_ledger::Book>,
    /// The `--data` the plans are made with (the path read).
    path: PathBuf,
}

/// Reads and validates the book at `path` as `expansa check --data PATH` does; raises
/// `expansa.BookError` with every problem, or `ValueError` for a bad currency or encoding.
#[pyfunction]
fn read_book(py: Python<'_>, path: PathBuf, currency: &str, encoding: &str) -> PyResult<Book> {
    load(py, &book_at(&path), path.clone(), currency, encoding)
}

/// Reads and validates a book of Arrow tables (`(name, table)`: `subscriptions`, `customers`,
/// ...) as the files of a Parquet book are read ([`ArrowBook`]); raises `expansa.BookError`
/// with every problem, or `ValueError` for a name that is not a table's or a bad currency.
#[pyfunction]
fn read_tables(py: Python<'_>, tables: Vec<(String, PyTable)>, currency: &str) -> PyResult<Book> {
    let tables = tables
        .into_iter()
        .map(|(name, table)| {
            let (batches, schema) = table.into_inner();
            (name, schema, batches)
        })
        .collect();
    let source = ArrowBook::new(tables).map_err(PyValueError::new_err)?;
    load(
        py,
        &source,
        PathBuf::from("(Arrow tables)"),
        currency,
        "utf-8",
    )
}

/// The book of `source`, read with the currency and encoding the CLI would read it with;
/// `path` is what its plans give as `--data`.
fn load(
    py: Python<'_>,
    source: &dyn BookSource,
    path: PathBuf,
    currency: &str,
    encoding: &str,
) -> PyResult<Book> {
    let plan = plan(vec![
        "check".into(),
        format!("--data={}", path.display()),
        format!("--currency={currency}"),
        format!("--encoding={encoding}"),
    ])?;
    let options = ImportOptions {
        currency: plan.currency,
        encoding: plan.encoding,
    };
    let read = py.detach(|| read_book_from(source, &options, &NoProgress));
    match read {
        Ok(book) => Ok(Book {
            book: Arc::new(book),
            path,
        }),
        Err(errors) => Err(book_error(py, &errors)),
    }
}

#[pymethods]
impl Book {
    /// The report the CLI prints for `command` (its words: `["movements"]`, `["quote",
    /// "amend"]`) with `flags` (the CLI's, as `--flag=value`, without `--data` and
    /// `--format`), as a pyarrow table. Raises `ValueError` where the CLI refuses the flags, `expansa.ExpansaError`
    /// where it refuses the request (an unknown customer, contract or product...).
    fn report<'py>(
        &self,
        py: Python<'py>,
        command: Vec<String>,
        flags: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let plan = self.plan(command, flags)?;
        let book = Arc::clone(&self.book);
        let made = py.detach(|| table(&plan, &book));
        let (batch, header) = made.map_err(|e| expansa_error(py, &e))?;
        let metadata = HashMap::from([("expansa".to_string(), header.to_string())]);
        let schema = Arc::new(batch.schema().as_ref().clone().with_metadata(metadata));
        let batch = batch
            .with_schema(Arc::clone(&schema))
            .map_err(arrow_error)?;
        PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
    }

    /// The exact sums of the report the CLI prints for `command` (`["movements"]` or
    /// `["kpis"]`) with `flags` (without `--where` or `--chart`) over this book's customers:
    /// a table of `cell` (utf8) and `units` (`decimal128(38, 0)`), one row per cell that is not
    /// zero ([`report_cells`]). The book may be one group of a larger book's customers with
    /// the shared tables (a Spark worker's): the groups' cells summed name by name are the
    /// whole book's, and [`report_of_cells`] makes the report from them.
    fn cells<'py>(
        &self,
        py: Python<'py>,
        command: Vec<String>,
        flags: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let plan = self.plan(command, flags)?;
        let book = Arc::clone(&self.book);
        let cells = py
            .detach(|| report_cells(&plan, &book))
            .map_err(|e| expansa_error(py, &e))?;
        let names = text_column(cells.iter().map(|(name, _)| name.clone()));
        let units = decimal_column(cells.iter().map(|&(_, units)| Some(units)), 0)
            .map_err(|e| expansa_error(py, &e))?;
        let made = batch(
            vec![("cell".into(), names), ("units".into(), units)],
            cells.len(),
        );
        let batch = made.map_err(|e| expansa_error(py, &e))?;
        PyTable::try_new(vec![batch.clone()], batch.schema())?.into_pyarrow(py)
    }

    /// Customers, products and lines, as `expansa check` counts them.
    fn __repr__(&self) -> String {
        let b = &self.book;
        format!(
            "<expansa.Book {}: {} customers, {} products, {} lines, {} contracts ({})>",
            self.path.display(),
            b.customers.len(),
            b.products.len(),
            b.lines.len(),
            b.contracts.len(),
            b.currency(),
        )
    }

    /// The reporting currency's ISO 4217 code.
    #[getter]
    fn currency(&self) -> String {
        self.book.currency().code().to_string()
    }
}

impl Book {
    /// The plan of the CLI's `command` with `flags`, on this book, in JSON.
    fn plan(&self, command: Vec<String>, flags: Vec<String>) -> PyResult<Plan> {
        let mut args = command;
        args.push(format!("--data={}", self.path.display()));
        args.push("--format=json".into());
        args.extend(flags);
        plan(args)
    }
}

/// The JSON the CLI prints for `command` with `flags` on a book held in groups of customers,
/// from `cells` (`(cell, units)`: each cell of the groups' [`Book::cells`] once, with its sum
/// over the groups) and `shared`, a book of its shared tables (reporting currency, marketing
/// spend): [`execute_on_cells`], the CLI's report functions. Raises `ValueError` where the CLI
/// refuses the flags, `expansa.ExpansaError` for a plan or cell it does not run on groups.
#[pyfunction]
fn report_of_cells(
    py: Python<'_>,
    shared: &Book,
    command: Vec<String>,
    flags: Vec<String>,
    cells: Vec<(String, i128)>,
) -> PyResult<String> {
    let plan = shared.plan(command, flags)?;
    let book = Arc::clone(&shared.book);
    py.detach(|| execute_on_cells(&plan, &book, cells))
        .map_err(|e| expansa_error(py, &e))
}

/// A validated plan from the CLI's words and flags, as the CLI makes it.
fn plan(args: Vec<String>) -> PyResult<Plan> {
    use clap::Parser;
    let argv = std::iter::once("expansa".to_string()).chain(args);
    let cli = Cli::try_parse_from(argv).map_err(|e| {
        // clap's first line, without its `error: ` and usage.
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or_default();
        PyValueError::new_err(first.trim_start_matches("error: ").to_string())
    })?;
    Plan::from_cli(cli).map_err(PyValueError::new_err)
}

/// The table of `plan`'s report on `book`, and the rest of its JSON.
fn table(plan: &Plan, book: &expansa_ledger::Book) -> anyhow::Result<(RecordBatch, Value)> {
    match &plan.command {
        Command::Movements {
            query,
            view: MovementView::Report,
            filters,
            ..
        } => {
            let report = movement_report(book, query, filters)?;
            Ok((
                movements_table(&report)?,
                header(&render_json(&report), "months")?,
            ))
        }
        Command::Movements {
            query,
            view: MovementView::Trail(customer),
            filters,
            ..
        } => {
            let found = trail(book, query, filters, customer)?;
            let json = render_trail(book, customer, &found, Format::Json);
            Ok((trail_table(book, &found)?, header(&json, "movements")?))
        }
        Command::Kpis { query, filters, .. } => {
            let report = kpi_report(book, query, filters)?;
            let json = render_kpis(&report, Format::Json);
            Ok((kpi_table(&report)?, header(&json, "months")?))
        }
        Command::Opportunities { .. } => {
            json_table(&execute(plan, book)?, "opportunities", OPPORTUNITY_COLUMNS)
        }
        Command::Amend { .. } => json_table(&execute(plan, book)?, "lines", QUOTE_LINE_COLUMNS),
        _ => anyhow::bail!("this command has no table in the Python package"),
    }
}

/// The JSON document `json` without its rows (`rows`): what goes in the table's metadata.
fn header(json: &str, rows: &str) -> anyhow::Result<Value> {
    let mut doc: Map<String, Value> = serde_json::from_str(json)?;
    doc.shift_remove(rows);
    Ok(Value::Object(doc))
}

/// Exact amounts: `decimal128(38, SCALE)`.
fn money_column(values: impl IntoIterator<Item = Option<Money>>) -> anyhow::Result<ArrayRef> {
    let units = values.into_iter().map(|m| m.map(Money::scaled));
    decimal_column(units, SCALE)
}

fn decimal_column(
    units: impl IntoIterator<Item = Option<i128>>,
    scale: u32,
) -> anyhow::Result<ArrayRef> {
    let array = Decimal128Array::from_iter(units).with_precision_and_scale(38, scale as i8)?;
    Ok(Arc::new(array))
}

/// Decimals rounded half away from zero to `dp` places, as the reports print them.
fn rounded_column(
    values: impl IntoIterator<Item = Option<Decimal>>,
    dp: u32,
) -> anyhow::Result<ArrayRef> {
    decimal_column(
        values
            .into_iter()
            .map(|d| d.map(|d| rounded(d, dp).mantissa())),
        dp,
    )
}

fn text_column(values: impl IntoIterator<Item = String>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

/// A batch of named columns, of `rows` rows.
fn batch(columns: Vec<(String, ArrayRef)>, rows: usize) -> anyhow::Result<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(name, a.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        arrays,
        &options,
    )?)
}

/// One row per month, in the JSON report's keys and order.
fn movements_table(r: &Report) -> anyhow::Result<RecordBatch> {
    let months = &r.months;
    let mut columns = vec![
        (
            "month".to_string(),
            text_column(months.iter().map(|m| m.month.to_string())),
        ),
        (
            "mrr_start".into(),
            money_column(months.iter().map(|m| Some(m.mrr_start)))?,
        ),
    ];
    for kind in Kind::ALL {
        let column = money_column(months.iter().map(|m| Some(m.get(kind))))?;
        columns.push((kind.key().into(), column));
    }
    columns.push((
        "mrr_end".into(),
        money_column(months.iter().map(|m| Some(m.mrr_end)))?,
    ));
    columns.push((
        "customers_start".into(),
        Arc::new(UInt64Array::from_iter_values(
            months.iter().map(|m| m.customers_start),
        )),
    ));
    columns.push((
        "customers_end".into(),
        Arc::new(UInt64Array::from_iter_values(
            months.iter().map(|m| m.customers_end),
        )),
    ));
    batch(columns, months.len())
}

/// One row per movement of the customer: month, kind, amount and the lines behind it.
fn trail_table(book: &expansa_ledger::Book, found: &[Movement]) -> anyhow::Result<RecordBatch> {
    let mut lines = ListBuilder::new(StringBuilder::new());
    for m in found {
        for &l in &m.lines {
            lines.values().append_value(book.lines.ids.get(l));
        }
        lines.append(true);
    }
    batch(
        vec![
            (
                "month".into(),
                text_column(found.iter().map(|m| m.month.to_string())),
            ),
            (
                "kind".into(),
                text_column(found.iter().map(|m| m.kind.key().to_string())),
            ),
            (
                "amount".into(),
                money_column(found.iter().map(|m| Some(m.amount)))?,
            ),
            ("lines".into(), Arc::new(lines.finish())),
        ],
        found.len(),
    )
}

/// One row per month, in the JSON report's keys and order; `cac_by_channel` a struct of one
/// field per channel.
fn kpi_table(r: &KpiReport) -> anyhow::Result<RecordBatch> {
    let months = &r.months;
    let rows: Vec<Vec<(&'static str, KpiValue)>> = months.iter().map(kpi_values).collect();
    let mut columns = vec![(
        "month".to_string(),
        text_column(months.iter().map(|m| m.month.to_string())),
    )];
    let keys: Vec<(&'static str, KpiValue)> = rows.first().cloned().unwrap_or_default();
    for (i, (key, kind)) in keys.into_iter().enumerate() {
        let values = rows.iter().map(|row| row[i].1);
        let column = match kind {
            KpiValue::Money(_) => money_column(values.map(|v| match v {
                KpiValue::Money(m) => m,
                _ => None,
            }))?,
            KpiValue::Rate(_) | KpiValue::Ratio(_) => rounded_column(
                values.map(|v| match v {
                    KpiValue::Rate(d) | KpiValue::Ratio(d) => d,
                    _ => None,
                }),
                RATIO_DP,
            )?,
            KpiValue::Months(_) => rounded_column(
                values.map(|v| match v {
                    KpiValue::Months(d) => d,
                    _ => None,
                }),
                MONTHS_DP,
            )?,
            KpiValue::Count(_) => {
                Arc::new(UInt64Array::from_iter_values(values.map(|v| match v {
                    KpiValue::Count(n) => n,
                    _ => 0,
                })))
            }
        };
        columns.push((key.to_string(), column));
    }
    let mut channels: Vec<&str> = months
        .iter()
        .flat_map(|m| m.cac_by_channel.keys().map(String::as_str))
        .collect();
    channels.sort_unstable();
    channels.dedup();
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for ch in channels {
        let column = money_column(
            months
                .iter()
                .map(|m| m.cac_by_channel.get(ch).copied().flatten()),
        )?;
        fields.push(Field::new(ch, column.data_type().clone(), true));
        arrays.push(column);
    }
    let by_channel =
        StructArray::try_new_with_length(Fields::from(fields), arrays, None, months.len())?;
    columns.push(("cac_by_channel".into(), Arc::new(by_channel)));
    batch(columns, months.len())
}

/// The rows under `rows` of a JSON document (objects with the keys of `columns`, in their
/// order) as a table, and the rest of the document.
fn json_table(
    json: &str,
    rows: &str,
    columns: &[(&str, Cell)],
) -> anyhow::Result<(RecordBatch, Value)> {
    let mut doc: Map<String, Value> = serde_json::from_str(json)?;
    let Some(Value::Array(items)) = doc.shift_remove(rows) else {
        anyhow::bail!("the report has no {rows}");
    };
    let keys: Vec<&str> = columns.iter().map(|(k, _)| *k).collect();
    let objects: Vec<Map<String, Value>> = items
        .into_iter()
        .map(|v| match v {
            Value::Object(o) if o.keys().map(String::as_str).eq(keys.iter().copied()) => Ok(o),
            other => Err(anyhow::anyhow!(
                "a row of {rows} is not an object of the keys {}: {other}",
                keys.join(", ")
            )),
        })
        .collect::<anyhow::Result<_>>()?;
    let mut made = Vec::new();
    for &(key, cell) in columns {
        let values = objects.iter().map(|o| &o[key]);
        made.push((key.to_string(), json_column(key, cell, values)?));
    }
    Ok((batch(made, objects.len())?, Value::Object(doc)))
}

/// The values of `key` as a column of `cell`s.
fn json_column<'a>(
    key: &str,
    cell: Cell,
    values: impl Iterator<Item = &'a Value>,
) -> anyhow::Result<ArrayRef> {
    let wrong = |v: &Value, what: &str| anyhow::anyhow!("{key}: {v} is not {what}");
    Ok(match cell {
        Cell::Text => Arc::new(
            values
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::String(s) => Ok(Some(s.as_str())),
                    v => Err(wrong(v, "a string")),
                })
                .collect::<anyhow::Result<StringArray>>()?,
        ),
        Cell::Integer => Arc::new(
            values
                .map(|v| match v {
                    Value::Null => Ok(None),
                    v => v.as_i64().map(Some).ok_or_else(|| wrong(v, "an integer")),
                })
                .collect::<anyhow::Result<Int64Array>>()?,
        ),
        Cell::Decimal => {
            let parsed = values
                .map(|v| match v {
                    Value::Null => Ok(None),
                    Value::String(s) => match s.parse::<Decimal>() {
                        Ok(d) if d.scale() <= SCALE => Ok(Some(d)),
                        _ => Err(wrong(v, "a decimal of at most 10 places")),
                    },
                    v => Err(wrong(v, "a decimal string")),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            rounded_column(parsed, SCALE)?
        }
        Cell::Json => Arc::new(StringArray::from_iter(
            values.map(|v| (!v.is_null()).then(|| v.to_string())),
        )),
    })
}

fn arrow_error(e: arrow_schema::ArrowError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// An exception of `expansa` (of its `_errors` module), made with `args`.
fn exception<'py>(py: Python<'py>, name: &str, args: impl pyo3::call::PyCallArgs<'py>) -> PyErr {
    let made = py
        .import("expansa._errors")
        .and_then(|m| m.getattr(name))
        .and_then(|class| class.call1(args));
    match made {
        Ok(e) => PyErr::from_value(e),
        Err(e) => e,
    }
}

/// `expansa.BookError`: the problems of a book that was not loaded, as the CLI lists them.
fn book_error(py: Python<'_>, errors: &BookErrors) -> PyErr {
    let problems: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    exception(
        py,
        "BookError",
        (
            errors.to_string(),
            problems,
            errors.total(),
            errors.more_line(),
        ),
    )
}

/// What the CLI says after `error:`, as `expansa.ExpansaError` (`expansa.BookError` for a
/// book's problems).
fn expansa_error(py: Python<'_>, e: &anyhow::Error) -> PyErr {
    match e.downcast_ref::<BookErrors>() {
        Some(errors) => book_error(py, errors),
        None => exception(py, "ExpansaError", (format!("{e:#}"),)),
    }
}

/// The native module: `read_book`, `read_tables`, `report_of_cells` and `Book`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(read_book, m)?)?;
    m.add_function(wrap_pyfunction!(read_tables, m)?)?;
    m.add_function(wrap_pyfunction!(report_of_cells, m)?)?;
    m.add_class::<Book>()?;
    Ok(())
}
