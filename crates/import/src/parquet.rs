//! Parquet books: a folder of Parquet files, one per table (`subscriptions.parquet`,
//! `customers.parquet`, ...), with the interchange format's columns.
//!
//! # Reading ([`ParquetBook`])
//! A Parquet file is read row group by row group (arrow-rs's `parquet` reader, a batch of
//! rows at a time) and written out as CSV text for the import's one reader, the way a
//! workbook's sheet is ([`crate::workbook`]): the same records, checks and problems as a CSV
//! book. Each value becomes the text the CSV would hold:
//! - a DECIMAL: its exact value as text, never through a float, without the trailing zeros its
//!   column's scale pads it with (`12.5` in a DECIMAL(38, 18) column is `12.5`, not
//!   `12.500000000000000000`, which has more significant digits than a price may);
//! - an integer: its digits;
//! - a DATE: `YYYY-MM-DD` (in a month column, a date on the 1st is the month, `YYYY-MM`);
//! - a string: as it is (a string where a date or a number is expected is checked as CSV
//!   text is: `01/02/2024` is refused, `12.5` read exactly);
//! - a null: empty.
//!
//! A column whose Parquet type cannot hold what the column holds is one problem naming the
//! file, the column, the Parquet type and the types accepted, and the file's rows are not
//! read: a float (FLOAT, DOUBLE) for a decimal, integer, date or month column (money is
//! exact: floats are refused, not converted), a timestamp for a date, a boolean or a
//! nested column for any. Columns the format does not know may be strings, integers,
//! decimals, dates, booleans or floats (kept as text: customers' attributes); other types
//! are not read.
//!
//! Problems name the Parquet file, the row group (from 1) and the row in it (from 1):
//! `subscriptions.parquet[row group 2]:17: unit_price: abc: not a decimal number`; problems
//! of the file's columns (missing, twice, of a wrong type) name the file
//! (`subscriptions.parquet:0: unit_price: : required column is missing from the Parquet
//! schema`). A file that is not Parquet, or that is damaged, is a problem, never a panic; the
//! book is then not loaded.
//!
//! Bytes of a string column that are not UTF-8 (a BYTE_ARRAY without the UTF8 annotation) are
//! given to the reader as they are, as a CSV file's: one problem for the file, at its first such
//! value (said as a Parquet string column's), the other rows read as Windows-1252 and checked;
//! `--encoding windows-1252` reads them so. What a reason says of other rows and files is said
//! as this book names them (`first at row group 1, row 2`, `not in customers.parquet`).
//!
//! A folder is a Parquet book when it holds `subscriptions.parquet` ([`is_parquet_book`]); one
//! that also holds any of the format's CSV files is refused (a book is one or the other), as is
//! a CSV folder holding a table's Parquet file ([`crate::Folder`]).
//!
//! # Arrow tables ([`ArrowBook`])
//! Tables held in memory (the Python package's `book_from_tables`) are read the same way, a
//! batch at a time, with the same types accepted and the same checks; their problems name the
//! table and the row in it (from 1): `subscriptions:17: unit_price: abc: not a decimal number`.
//!
//! # Writing ([`crate::write_table_from`], a chunk of rows at a time; [`write_table`])
//! One table's rows (canonical text, as [`crate::read_rows`] gives them) as a Parquet file:
//! decimals as DECIMAL(38, s), s the column's largest scale (as strings when a value does not
//! fit 38 digits at that scale), integers as INT64, dates as DATE, months and text as UTF8
//! strings, columns the format does not know as UTF8 strings after the format's.

use crate::problem::Problem;
use crate::rows::RawRow;
use crate::schema::{ColumnKind, Schema, FILES};
use crate::workbook::{number_text, push_field, unpanicked};
use crate::BookSource;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Decimal256Type, Decimal32Type, Decimal64Type,
    Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Fields, SchemaRef};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Rows decoded at a time: a batch's CSV text is what is held beyond the reader's own pages.
const BATCH_ROWS: usize = 4096;

/// A table's file name in a Parquet book: `subscriptions.parquet` for `subscriptions.csv`.
pub fn parquet_name(schema: &Schema) -> String {
    format!("{}.parquet", schema.stem())
}

/// Whether `path` is a folder holding `subscriptions.parquet`: a Parquet book.
pub fn is_parquet_book(path: &Path) -> bool {
    path.is_dir()
        && path
            .join("subscriptions.parquet")
            .symlink_metadata()
            .is_ok()
}

/// A folder of Parquet files read as a book (see the module's documentation).
pub struct ParquetBook {
    dir: PathBuf,
    /// Where each file's rows are, for [`BookSource::locate`], as read last.
    maps: RowMaps,
}

/// A file's [`RowMap`], filled in by its reader as it goes.
type SharedRowMap = Arc<Mutex<RowMap>>;

/// Each file's [`RowMap`], as read last.
type RowMaps = Mutex<Vec<(&'static str, SharedRowMap)>>;

/// Batches of a table's rows.
type Batches = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

/// How a file's CSV lines map to its row groups and rows.
#[derive(Default)]
struct RowMap {
    /// Rows in each row group.
    groups: Vec<u64>,
    /// The CSV line of the first row (the header is line 1).
    first_line: u64,
    /// From each of these lines on, how many lines more than rows came before (a value with
    /// a line break spans several lines).
    shifts: Vec<(u64, u64)>,
}

impl RowMap {
    /// The row group (from 1) and row in it (from 1) of the record on `line`.
    fn place(&self, line: u64) -> Option<(usize, u64)> {
        let extra = match self.shifts.partition_point(|&(l, _)| l <= line) {
            0 => 0,
            k => self.shifts[k - 1].1,
        };
        let mut row = line.checked_sub(self.first_line)?.checked_sub(extra)?;
        for (g, &n) in self.groups.iter().enumerate() {
            if row < n {
                return Some((g + 1, row + 1));
            }
            row -= n;
        }
        None
    }
}

impl ParquetBook {
    pub fn new(dir: &Path) -> ParquetBook {
        ParquetBook {
            dir: dir.to_path_buf(),
            maps: Mutex::new(Vec::new()),
        }
    }
}

/// Where the record of `problem` (of a file of `schema`) is in its table, from `maps`: the row
/// group (from 1) and the row in it (from 1). A problem of the header is made one of the
/// table's schema (line 0, `schema_name` for "the header").
fn place(
    maps: &RowMaps,
    schema: &Schema,
    problem: &mut Problem,
    schema_name: &str,
) -> Option<(usize, u64)> {
    let map = map_of(maps, schema.file)?;
    let m = map.lock().unwrap_or_else(|e| e.into_inner());
    if problem.line > 0 && problem.line < m.first_line {
        // The header: the file's columns.
        problem.line = 0;
        problem.reason = problem.reason.replace("the header", schema_name);
    }
    m.place(problem.line)
}

/// The row map of `file` (`customers.csv`), if it was read.
fn map_of(maps: &RowMaps, file: &str) -> Option<SharedRowMap> {
    let maps = maps.lock().unwrap_or_else(|e| e.into_inner());
    maps.iter()
        .find(|(f, _)| *f == file)
        .map(|(_, m)| Arc::clone(m))
}

/// The row group (from 1) and row in it (from 1) of the record on `line` of `file`'s text.
fn place_of(maps: &RowMaps, file: &str, line: u64) -> Option<(usize, u64)> {
    let map = map_of(maps, file)?;
    let m = map.lock().unwrap_or_else(|e| e.into_inner());
    m.place(line)
}

/// Says the reason of a problem of `schema`'s table as a book of tables does ([`ParquetBook`],
/// [`ArrowBook`], [`Problem::restate`]): bytes that are not UTF-8 as a string column's, another
/// record as `record(its table's schema if another, row group, row)`, a file as `file(name)`.
fn restate(
    maps: &RowMaps,
    schema: &'static Schema,
    problem: &mut Problem,
    record: impl Fn(Option<&'static Schema>, usize, u64) -> String,
    file: impl Fn(&str) -> String,
) {
    if let Some(reason) = crate::table::not_utf8_in_strings(&problem.reason) {
        problem.reason = reason.into();
    }
    problem.restate(
        |other, line| {
            let other = match other {
                Some(f) => Some(schema_of(f)?),
                None => None,
            };
            let (group, row) = place_of(maps, other.unwrap_or(schema).file, line)?;
            Some(record(other, group, row))
        },
        |name| Some(file(name)),
    );
}

/// The schema of a book file (`customers.csv`).
fn schema_of(file: &str) -> Option<&'static Schema> {
    FILES.iter().find(|s| s.file == file)
}

/// An opened table of `schema` as CSV text, its row map kept in `maps`.
fn csv_text(schema: &'static Schema, opened: Opened, maps: &RowMaps) -> CsvText {
    let (reader, header, columns, groups) = opened;
    let map = Arc::new(Mutex::new(RowMap {
        groups,
        first_line: 1 + header.lines,
        shifts: Vec::new(),
    }));
    {
        let mut maps = maps.lock().unwrap_or_else(|e| e.into_inner());
        maps.retain(|(f, _)| *f != schema.file);
        maps.push((schema.file, Arc::clone(&map)));
    }
    CsvText {
        schema,
        reader: Some(reader),
        columns,
        buf: header.text,
        at: 0,
        next_line: 1 + header.lines,
        map,
    }
}

/// The problems that stop a file from being read, carried out of [`BookSource::open`].
#[derive(Debug)]
pub(crate) struct FileProblems(pub Vec<Problem>);

impl std::fmt::Display for FileProblems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.first() {
            Some(p) => p.fmt(f),
            None => Ok(()),
        }
    }
}

impl std::error::Error for FileProblems {}

fn refused(problems: Vec<Problem>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, FileProblems(problems))
}

const DAMAGED: &str = "cannot be read as Parquet: the Parquet reader failed on it (is the file \
                       damaged?)";

impl BookSource for ParquetBook {
    fn open(&self, file: &str) -> std::io::Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        let Some(schema) = FILES.iter().find(|s| s.file == file) else {
            return Ok(None);
        };
        let path = self.dir.join(parquet_name(schema));
        let Some(f) = crate::open_regular(&path)? else {
            return Ok(None);
        };
        let size = f.metadata()?.len();
        let problem = |reason: String| Problem::new(schema.file, 0, "file", "", &reason);
        let opened = unpanicked(|| open_table(schema, f))
            .unwrap_or_else(|| Err(vec![problem(DAMAGED.into())]));
        let text = csv_text(schema, opened.map_err(refused)?, &self.maps);
        Ok(Some((Box::new(text), size)))
    }

    fn unavailable(&self) -> Option<Problem> {
        let csv = crate::BookFormat::Csv.files_in(&self.dir);
        (!csv.is_empty()).then(|| {
            Problem::new(
                &self.dir.display().to_string(),
                0,
                "folder",
                "",
                &format!(
                    "holds both Parquet files (subscriptions.parquet) and CSV files of a book \
                     ({}): a book is one or the other; move one set to another folder",
                    csv.join(", ")
                ),
            )
        })
    }

    fn table_name(&self, file: &str) -> String {
        schema_of(file).map_or_else(|| file.to_string(), parquet_name)
    }

    fn locate(&self, problem: &mut Problem) {
        let Some(schema) = schema_of(&problem.file) else {
            return;
        };
        restate(
            &self.maps,
            schema,
            problem,
            |other, group, row| match other {
                None => format!("at row group {group}, row {row}"),
                Some(s) => format!("{}[row group {group}]:{row}", parquet_name(s)),
            },
            |file| self.table_name(file),
        );
        let name = parquet_name(schema);
        match place(&self.maps, schema, problem, "the Parquet schema") {
            Some((group, row)) => {
                problem.file = format!("{name}[row group {group}]");
                problem.line = row;
            }
            None => problem.file = name,
        }
    }
}

/// A book of Arrow tables held in memory, read as a Parquet book's files are (see the module's
/// documentation): the same types accepted, the same checks; problems name the table and its
/// row (from 1).
pub struct ArrowBook {
    tables: Vec<(&'static Schema, SchemaRef, Vec<RecordBatch>)>,
    maps: RowMaps,
}

impl ArrowBook {
    /// A book of `tables`, each named as its file without `.csv` (`subscriptions`,
    /// `customers`, ...); the name of a table the format does not have is an error.
    pub fn new(tables: Vec<(String, SchemaRef, Vec<RecordBatch>)>) -> Result<ArrowBook, String> {
        let tables = tables
            .into_iter()
            .map(|(name, arrow, batches)| {
                let schema = FILES.iter().find(|s| s.stem() == name).ok_or_else(|| {
                    let names: Vec<&str> = FILES.iter().map(|s| s.stem()).collect();
                    format!(
                        "{name:?} is not a table of a book (the tables are {})",
                        names.join(", ")
                    )
                })?;
                Ok((schema, arrow, batches))
            })
            .collect::<Result<_, String>>()?;
        Ok(ArrowBook {
            tables,
            maps: Mutex::new(Vec::new()),
        })
    }
}

impl BookSource for ArrowBook {
    fn open(&self, file: &str) -> std::io::Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        let Some((schema, arrow, batches)) = self.tables.iter().find(|(s, _, _)| s.file == file)
        else {
            return Ok(None);
        };
        let type_name = |_: usize, field: &Field| format!("Arrow type {}", field.data_type());
        let all_null = |i: usize| {
            batches
                .iter()
                .all(|b| b.column(i).logical_null_count() == b.num_rows())
        };
        let (read, header, columns) =
            read_columns(schema, arrow.fields(), type_name, all_null).map_err(refused)?;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let bytes: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        let projected: Vec<_> = batches.iter().map(|b| b.project(&read)).collect();
        let opened = (
            Box::new(projected.into_iter()) as Batches,
            header,
            columns,
            vec![rows as u64],
        );
        let text = csv_text(schema, opened, &self.maps);
        Ok(Some((Box::new(text), bytes as u64)))
    }

    fn unavailable(&self) -> Option<Problem> {
        None
    }

    fn table_name(&self, file: &str) -> String {
        schema_of(file).map_or_else(|| file.to_string(), |s| s.stem().to_string())
    }

    fn locate(&self, problem: &mut Problem) {
        let Some(schema) = schema_of(&problem.file) else {
            return;
        };
        restate(
            &self.maps,
            schema,
            problem,
            |other, _, row| match other {
                None => format!("on row {row}"),
                Some(s) => format!("{}:{row}", s.stem()),
            },
            |file| format!("the {} table", self.table_name(file)),
        );
        if let Some((_, row)) = place(&self.maps, schema, problem, "the Arrow schema") {
            problem.line = row;
        }
        problem.file = schema.stem().to_string();
    }
}

/// A file's header as CSV text, and the lines it takes.
struct Header {
    text: Vec<u8>,
    lines: u64,
}

/// A table opened: its batches over the columns read, its header, the rows of each row group.
type Opened = (Batches, Header, Vec<Column>, Vec<u64>);

/// How one column read is written.
#[derive(Clone, Copy)]
struct Column {
    /// Dates on the 1st are months.
    month: bool,
    /// A column the format does not know (a customer's attribute): its text is what is
    /// compared, so a decimal keeps its column's scale (`1.50` in DECIMAL(10, 2)).
    attribute: bool,
}

/// Opens a Parquet file of `schema`: its reader over the columns read, its header, and the rows
/// of each row group; or the problems of its columns.
fn open_table(schema: &Schema, file: std::fs::File) -> Result<Opened, Vec<Problem>> {
    let whole = |reason: String| vec![Problem::new(schema.file, 0, "file", "", &reason)];
    let metadata =
        ArrowReaderMetadata::load(&file, ArrowReaderOptions::default()).map_err(|e| {
            let e = reader_said(&e);
            // arrow-rs numbers row groups with an i16.
            let hint = if e.contains("exceeds i16 max") {
                " (the reader reads at most 32,768 row groups in a file: write it with larger \
                 row groups)"
            } else {
                ""
            };
            whole(format!("cannot be read as Parquet: {e}{hint}"))
        })?;
    let groups: Vec<u64> = metadata
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows().max(0) as u64)
        .collect();
    let fields = metadata.schema().fields().clone();
    let parquet_fields = metadata
        .parquet_schema()
        .root_schema()
        .get_fields()
        .to_vec();
    let type_said = |i: usize, field: &Field| {
        let name = parquet_fields
            .get(i)
            .map_or_else(|| format!("{:?}", field.data_type()), |t| type_name(t));
        format!("Parquet type {name}")
    };
    // A column of one leaf whose every row group's statistics count every row as null.
    let all_null = |i: usize| {
        let descr = metadata.parquet_schema();
        let mut leaves = (0..descr.num_columns()).filter(|&l| descr.get_column_root_idx(l) == i);
        let (Some(leaf), None) = (leaves.next(), leaves.next()) else {
            return false;
        };
        metadata.metadata().row_groups().iter().all(|group| {
            let nulls = group
                .column(leaf)
                .statistics()
                .and_then(|s| s.null_count_opt());
            nulls == u64::try_from(group.num_rows()).ok()
        })
    };
    let (read, header, columns) = read_columns(schema, &fields, type_said, all_null)?;
    let mask = ProjectionMask::roots(metadata.parquet_schema(), read);
    // A reader per row group, so that a batch never spans two and a failure is said at the
    // row group whose pages fail.
    let reader = (0..groups.len()).flat_map(move |group| {
        let built = file.try_clone().map_err(ParquetError::from).and_then(|f| {
            ParquetRecordBatchReaderBuilder::new_with_metadata(f, metadata.clone())
                .with_projection(mask.clone())
                .with_row_groups(vec![group])
                .with_batch_size(BATCH_ROWS)
                .build()
        });
        match built {
            Ok(reader) => Box::new(reader) as Batches,
            Err(e) => Box::new(std::iter::once(Err(ArrowError::from(e)))),
        }
    });
    Ok((Box::new(reader), header, columns, groups))
}

/// What the Parquet reader says of a failure, without the kinds of error its layers prefix
/// (`Parquet argument error: Parquet error: Page CRC checksum mismatch`).
fn reader_said(e: &dyn std::fmt::Display) -> String {
    let said = e.to_string();
    let mut rest = said.as_str();
    while let Some(inner) = ["Parquet argument error: ", "Parquet error: ", "External: "]
        .iter()
        .find_map(|prefix| rest.strip_prefix(prefix))
    {
        rest = inner;
    }
    rest.to_string()
}

/// The columns of a table of `schema` whose Arrow fields are `fields` that are read (their
/// indices), the CSV header they make and how each is written; or the problems of its
/// columns. `type_name(i, field)` says field i's type as the table's format names it
/// (`Parquet type DOUBLE`).
fn read_columns(
    schema: &Schema,
    fields: &Fields,
    type_name: impl Fn(usize, &Field) -> String,
    all_null: impl Fn(usize) -> bool,
) -> Result<(Vec<usize>, Header, Vec<Column>), Vec<Problem>> {
    let mut problems = Vec::new();
    let mut read = Vec::new();
    let mut columns = Vec::new();
    let mut header = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        let column = schema.column_of(field.name());
        let known = column.map(|k| schema.kinds[k]);
        // A column without a value holds nothing inexact, whatever its type: the Null type
        // (pandas and pyarrow write one for a column null in every row), or any type null in
        // every row (pandas reads an all-null integer column back as floats, and writes it so).
        let accepted = match known {
            Some(kind) => accepts(kind, field.data_type()),
            None => readable(field.data_type()),
        } || *field.data_type() == DataType::Null
            || all_null(i);
        if !accepted {
            if let (Some(k), Some(kind)) = (column, known) {
                let type_said = type_name(i, field);
                problems.push(Problem::new(
                    schema.file,
                    0,
                    schema.columns[k],
                    field.name(),
                    &format!(
                        "the column is of {type_said}, which a {} column cannot hold: write it \
                         as {}",
                        kind_name(kind),
                        expected(kind)
                    ),
                ));
            }
            // A column the format does not know, of a type not read: left out.
            continue;
        }
        if !read.is_empty() {
            header.push(b',');
        }
        push_field(&mut header, field.name());
        read.push(i);
        columns.push(Column {
            month: known == Some(ColumnKind::Month),
            attribute: known.is_none(),
        });
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    header.push(b'\n');
    let lines = crate::record::line_ends(&header).max(1);
    Ok((
        read,
        Header {
            text: header,
            lines,
        },
        columns,
    ))
}

/// A column's Parquet type as written in the file: `DOUBLE`, `INT64 (TIMESTAMP(MICROS,true))`.
fn type_name(t: &parquet::schema::types::Type) -> String {
    if !t.is_primitive() {
        return "group (a nested column)".into();
    }
    let info = t.get_basic_info();
    let physical = t.get_physical_type().to_string();
    match info.logical_type_ref() {
        Some(logical) => format!("{physical} ({})", logical_name(logical)),
        None => physical,
    }
}

/// A logical type as the Parquet format's documentation writes it: `TIMESTAMP(MICROS,true)`,
/// `DECIMAL(38,2)`, `STRING`.
fn logical_name(logical: &parquet::basic::LogicalType) -> String {
    use parquet::basic::{LogicalType, TimeUnit};
    let unit = |u: &TimeUnit| match u {
        TimeUnit::MILLIS => "MILLIS",
        TimeUnit::MICROS => "MICROS",
        TimeUnit::NANOS => "NANOS",
    };
    match logical {
        LogicalType::Timestamp {
            is_adjusted_to_u_t_c,
            unit: u,
        } => format!("TIMESTAMP({},{is_adjusted_to_u_t_c})", unit(u)),
        LogicalType::Time {
            is_adjusted_to_u_t_c,
            unit: u,
        } => format!("TIME({},{is_adjusted_to_u_t_c})", unit(u)),
        LogicalType::Decimal { scale, precision } => format!("DECIMAL({precision},{scale})"),
        LogicalType::Integer {
            bit_width,
            is_signed,
        } => format!("INT({bit_width},{is_signed})"),
        // The others' names, without what they carry.
        other => {
            let debug = format!("{other:?}");
            let name = debug.split([' ', '{', '(']).next().unwrap_or_default();
            name.to_uppercase()
        }
    }
}

fn kind_name(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Text => "text",
        ColumnKind::Decimal => "decimal",
        ColumnKind::Date => "date",
        ColumnKind::Month => "month",
        ColumnKind::Integer => "whole-number",
    }
}

/// The Parquet types a column of `kind` is read from, as said to the user.
fn expected(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Text => "a string (UTF8) or an integer",
        ColumnKind::Decimal => {
            "a DECIMAL, an integer or a string (floats are refused: money is exact, and a \
             float is not)"
        }
        ColumnKind::Integer => "an integer (INT32, INT64), a DECIMAL or a string",
        ColumnKind::Date => "a DATE or a YYYY-MM-DD string",
        ColumnKind::Month => "a YYYY-MM string or a DATE on the 1st of the month",
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    )
}

fn is_integer(t: &DataType) -> bool {
    t.is_integer()
}

fn is_decimal(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    )
}

fn is_date(t: &DataType) -> bool {
    matches!(t, DataType::Date32 | DataType::Date64)
}

/// Whether a column of `kind` is read from arrow type `t` (a dictionary by its values).
fn accepts(kind: ColumnKind, t: &DataType) -> bool {
    if let DataType::Dictionary(_, values) = t {
        return accepts(kind, values);
    }
    is_string(t)
        || match kind {
            ColumnKind::Text => is_integer(t),
            ColumnKind::Decimal | ColumnKind::Integer => is_integer(t) || is_decimal(t),
            ColumnKind::Date | ColumnKind::Month => is_date(t),
        }
}

/// Whether a column the format does not know is read (as text).
fn readable(t: &DataType) -> bool {
    if let DataType::Dictionary(_, values) = t {
        return readable(values);
    }
    is_string(t)
        || is_integer(t)
        || is_decimal(t)
        || is_date(t)
        || t.is_floating()
        || *t == DataType::Boolean
}

/// A Parquet file as CSV text, rendered a batch of rows at a time.
struct CsvText {
    schema: &'static Schema,
    reader: Option<Batches>,
    columns: Vec<Column>,
    buf: Vec<u8>,
    at: usize,
    /// The CSV line the next row starts on.
    next_line: u64,
    map: SharedRowMap,
}

impl CsvText {
    /// Renders the next batch into `buf`; `false` at the end.
    fn next_batch(&mut self) -> std::io::Result<bool> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(false);
        };
        let line = self.next_line;
        let file = self.schema.file;
        let failed = |reason: String| {
            // Said at the first row of the batch that failed (located as its row group's).
            refused(vec![Problem::new(file, line, "file", "", &reason)])
        };
        let batch = match unpanicked(|| reader.next()) {
            None => {
                self.reader = None;
                return Err(failed(DAMAGED.into()));
            }
            Some(None) => {
                self.reader = None;
                return Ok(false);
            }
            Some(Some(Err(e))) => {
                self.reader = None;
                let e = reader_said(&e);
                // arrow-rs checks a UTF8 column's strings as it decodes its pages.
                let said = if e.contains("non UTF-8") {
                    format!(
                        "a UTF8 string column holds bytes that are not UTF-8 in this row group \
                         (the reader stops there: write the column as UTF-8 strings): {e}"
                    )
                } else {
                    format!("cannot be read as Parquet: {e}")
                };
                return Err(failed(said));
            }
            Some(Some(Ok(batch))) => batch,
        };
        self.buf.clear();
        self.at = 0;
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let rendered = render_batch(&batch, &self.columns, &mut self.buf, |lines| {
            // A row of `lines` lines.
            self.next_line += lines;
            if lines > 1 {
                let extra = map.shifts.last().map_or(0, |s| s.1) + lines - 1;
                map.shifts.push((self.next_line, extra));
            }
        });
        drop(map);
        rendered.map_err(|e| failed(format!("cannot be read as Parquet: {e}")))?;
        Ok(true)
    }
}

impl Read for CsvText {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.buf.len() {
            if !self.next_batch()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Appends a batch's rows to `out` as CSV records; `row(lines)` is told each row's lines.
fn render_batch(
    batch: &RecordBatch,
    columns: &[Column],
    out: &mut Vec<u8>,
    mut row: impl FnMut(u64),
) -> Result<(), String> {
    let arrays: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|a| match a.data_type() {
            DataType::Dictionary(_, values) => {
                arrow_cast::cast(a, values).map_err(|e| e.to_string())
            }
            _ => Ok(Arc::clone(a)),
        })
        .collect::<Result<_, _>>()?;
    let mut value = String::new();
    for k in 0..batch.num_rows() {
        let start = out.len();
        for (c, array) in arrays.iter().enumerate() {
            if c > 0 {
                out.push(b',');
            }
            value.clear();
            let text = value_text(array.as_ref(), k, columns[c], &mut value)?;
            push_field(out, text);
        }
        out.push(b'\n');
        let record = &out[start..];
        let lines = if memchr::memchr2(b'\r', b'\n', &record[..record.len() - 1]).is_some() {
            crate::record::line_ends(record)
        } else {
            1
        };
        row(lines);
    }
    Ok(())
}

/// The text of row `k` of `array` (empty for a null), in `buf` when it has to be made: UTF-8,
/// but for a binary column's bytes, given as they are (the reader refuses those that are not
/// UTF-8, as in a CSV file).
fn value_text<'a>(
    array: &'a dyn Array,
    k: usize,
    column: Column,
    buf: &'a mut String,
) -> Result<&'a [u8], String> {
    use std::fmt::Write;
    if array.is_null(k) || *array.data_type() == DataType::Null {
        return Ok(b"");
    }
    macro_rules! display {
        ($t:ty) => {{
            let _ = write!(buf, "{}", array.as_primitive::<$t>().value(k));
        }};
    }
    // The exact value, without the zeros the column's scale pads it with (a DECIMAL(38, 18)
    // holds 1 as 1.000000000000000000, which has more significant digits than a price may).
    macro_rules! decimal {
        ($t:ty) => {{
            let text = array.as_primitive::<$t>().value_as_string(k);
            let text = match text.contains('.') && !column.attribute {
                true => text.trim_end_matches('0').trim_end_matches('.'),
                false => &text,
            };
            buf.push_str(text);
        }};
    }
    match array.data_type() {
        DataType::Utf8 => return Ok(array.as_string::<i32>().value(k).as_bytes()),
        DataType::LargeUtf8 => return Ok(array.as_string::<i64>().value(k).as_bytes()),
        DataType::Utf8View => return Ok(array.as_string_view().value(k).as_bytes()),
        DataType::Binary => return Ok(array.as_binary::<i32>().value(k)),
        DataType::LargeBinary => return Ok(array.as_binary::<i64>().value(k)),
        DataType::BinaryView => return Ok(array.as_binary_view().value(k)),
        DataType::Int8 => display!(Int8Type),
        DataType::Int16 => display!(Int16Type),
        DataType::Int32 => display!(Int32Type),
        DataType::Int64 => display!(Int64Type),
        DataType::UInt8 => display!(UInt8Type),
        DataType::UInt16 => display!(UInt16Type),
        DataType::UInt32 => display!(UInt32Type),
        DataType::UInt64 => display!(UInt64Type),
        DataType::Decimal32(..) => decimal!(Decimal32Type),
        DataType::Decimal64(..) => decimal!(Decimal64Type),
        DataType::Decimal128(..) => decimal!(Decimal128Type),
        DataType::Decimal256(..) => decimal!(Decimal256Type),
        DataType::Date32 => {
            day_text(
                i64::from(array.as_primitive::<Date32Type>().value(k)),
                column.month,
                buf,
            );
        }
        DataType::Date64 => {
            let ms = array.as_primitive::<Date64Type>().value(k);
            if ms.rem_euclid(86_400_000) == 0 {
                day_text(ms.div_euclid(86_400_000), column.month, buf);
            } else {
                // Not a whole day: said as it is, and refused as a date.
                let _ = write!(buf, "{ms} ms");
            }
        }
        DataType::Boolean => {
            buf.push_str(if array.as_boolean().value(k) {
                "true"
            } else {
                "false"
            });
        }
        DataType::Float16 => {
            buf.push_str(&number_text(f64::from(
                array.as_primitive::<Float16Type>().value(k),
            )));
        }
        DataType::Float32 => {
            // The shortest text of the f32 itself (0.1, not 0.10000000149011612).
            let f = array.as_primitive::<Float32Type>().value(k);
            let _ = write!(buf, "{}", if f == 0.0 { 0.0 } else { f });
        }
        DataType::Float64 => {
            buf.push_str(&number_text(array.as_primitive::<Float64Type>().value(k)));
        }
        other => return Err(format!("a column of type {other} is not read")),
    }
    Ok(buf.as_bytes())
}

/// A day counted from 1970-01-01 as `YYYY-MM-DD` (`YYYY-MM` on the 1st when `month`).
fn day_text(days: i64, month: bool, buf: &mut String) {
    use std::fmt::Write;
    let (y, m, d) = civil_from_days(days);
    if month && d == 1 {
        let _ = write!(buf, "{y:04}-{m:02}");
    } else {
        let _ = write!(buf, "{y:04}-{m:02}-{d:02}");
    }
}

/// The proleptic Gregorian day of `days` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian day.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What a table's Parquet file is laid out by, known only once every row is seen: each
/// decimal column's scale (its values' largest) and whether every value fits 38 digits at it,
/// and the columns the format does not know, in the order first met.
#[derive(Clone, Debug, Default)]
pub(crate) struct Shape {
    /// For each of the schema's columns (decimal ones only are used): the largest scale, and
    /// the most digits a value has before its point.
    decimals: Vec<(u32, i64)>,
    /// The extra columns, in the order first met.
    pub(crate) extra: Vec<String>,
    seen: hashbrown::HashSet<String>,
}

impl Shape {
    /// Notes one row (of the reader, or canonical text): the scale and integer digits of its
    /// decimals, its extra columns with a value.
    pub(crate) fn note<'v>(
        &mut self,
        schema: &Schema,
        decimals: impl Iterator<Item = (usize, expansa_ledger::Decimal)>,
        extra: impl Iterator<Item = &'v str>,
    ) {
        if self.decimals.is_empty() {
            self.decimals = vec![(0, 0); schema.columns.len()];
        }
        for (k, d) in decimals {
            let digits = d
                .mantissa()
                .unsigned_abs()
                .checked_ilog10()
                .map_or(0, |n| n + 1);
            let (scale, whole) = &mut self.decimals[k];
            *scale = (*scale).max(d.scale());
            *whole = (*whole).max(i64::from(digits) - i64::from(d.scale()));
        }
        for name in extra {
            if !self.seen.contains(name) {
                self.seen.insert(name.to_string());
                self.extra.push(name.to_string());
            }
        }
    }

    /// This shape, then `later`'s (rows read after this one's).
    pub(crate) fn merge(&mut self, later: Shape) {
        if self.decimals.is_empty() {
            self.decimals = later.decimals;
        } else {
            for (a, b) in self.decimals.iter_mut().zip(later.decimals) {
                *a = (a.0.max(b.0), a.1.max(b.1));
            }
        }
        for name in later.extra {
            if self.seen.insert(name.clone()) {
                self.extra.push(name);
            }
        }
    }

    /// The shape of rows of canonical text.
    fn of(schema: &Schema, rows: &[RawRow]) -> Result<Shape, String> {
        let mut shape = Shape::default();
        for r in rows {
            let mut decimals = Vec::new();
            for (k, v) in r.values.iter().enumerate() {
                if let (ColumnKind::Decimal, Some(v)) = (schema.kinds[k], v) {
                    decimals.push((k, decimal_of(schema, k, v)?));
                }
            }
            shape.note(
                schema,
                decimals.into_iter(),
                r.extra.iter().map(|(n, _)| n.as_str()),
            );
        }
        Ok(shape)
    }

    /// The scale of decimal column `k`, `None` when a value does not fit 38 digits at it (the
    /// column is then written as strings).
    fn scale(&self, k: usize) -> Option<u32> {
        let (scale, whole) = self.decimals.get(k).copied().unwrap_or((0, 0));
        (whole + i64::from(scale) <= 38).then_some(scale)
    }

    /// The Arrow schema of the file.
    pub(crate) fn arrow_schema(&self, schema: &Schema) -> SchemaRef {
        let mut fields = Vec::new();
        for (k, name) in schema.columns.iter().enumerate() {
            let t = match schema.kinds[k] {
                ColumnKind::Decimal => match self.scale(k) {
                    Some(scale) => DataType::Decimal128(38, scale as i8),
                    None => DataType::Utf8,
                },
                ColumnKind::Integer => DataType::Int64,
                ColumnKind::Date => DataType::Date32,
                ColumnKind::Month | ColumnKind::Text => DataType::Utf8,
            };
            fields.push(Field::new(*name, t, true));
        }
        for name in &self.extra {
            fields.push(Field::new(name, DataType::Utf8, true));
        }
        Arc::new(arrow_schema::Schema::new(fields))
    }
}

fn decimal_of(schema: &Schema, k: usize, v: &str) -> Result<expansa_ledger::Decimal, String> {
    v.parse().map_err(|_| not_canonical(schema, k, v))
}

fn not_canonical(schema: &Schema, k: usize, v: &str) -> String {
    format!(
        "{}: {}: {v:?} is not canonical",
        schema.file, schema.columns[k]
    )
}

/// Rows of canonical text (as [`crate::read_rows`] gives them) as a batch of `shape`'s file.
pub(crate) fn batch(
    schema: &Schema,
    shape: &Shape,
    arrow: &SchemaRef,
    rows: &[RawRow],
) -> Result<RecordBatch, String> {
    use arrow_array::builder::{Date32Builder, Decimal128Builder, Int64Builder, StringBuilder};
    let mut arrays: Vec<ArrayRef> = Vec::new();
    let strings = |values: &mut dyn Iterator<Item = Option<&str>>| -> ArrayRef {
        let mut b = StringBuilder::new();
        for v in values {
            b.append_option(v);
        }
        Arc::new(b.finish())
    };
    for k in 0..schema.columns.len() {
        let values = || rows.iter().map(move |r| r.values[k].as_deref());
        let array: ArrayRef = match (schema.kinds[k], shape.scale(k)) {
            (ColumnKind::Decimal, Some(scale)) => {
                let mut b = Decimal128Builder::with_capacity(rows.len())
                    .with_precision_and_scale(38, scale as i8)
                    .map_err(|e| e.to_string())?;
                for v in values() {
                    let scaled = v
                        .map(|v| {
                            let d = decimal_of(schema, k, v)?;
                            // The shape saw every value: it fits.
                            scale
                                .checked_sub(d.scale())
                                .and_then(|e| 10i128.checked_pow(e))
                                .and_then(|p| d.mantissa().checked_mul(p))
                                .ok_or_else(|| not_canonical(schema, k, v))
                        })
                        .transpose()?;
                    b.append_option(scaled);
                }
                Arc::new(b.finish())
            }
            (ColumnKind::Integer, _) => {
                let mut b = Int64Builder::with_capacity(rows.len());
                for v in values() {
                    b.append_option(
                        v.map(|v| v.parse::<i64>().map_err(|_| not_canonical(schema, k, v)))
                            .transpose()?,
                    );
                }
                Arc::new(b.finish())
            }
            (ColumnKind::Date, _) => {
                let mut b = Date32Builder::with_capacity(rows.len());
                for v in values() {
                    let day = v
                        .map(|v| {
                            let bad = || not_canonical(schema, k, v);
                            let d = expansa_ledger::parse_date(v.as_bytes()).ok_or_else(bad)?;
                            let days = days_from_civil(
                                i64::from(d.year()),
                                d.month() as u32,
                                d.day() as u32,
                            );
                            i32::try_from(days).map_err(|_| bad())
                        })
                        .transpose()?;
                    b.append_option(day);
                }
                Arc::new(b.finish())
            }
            // Text, months, and decimals that do not fit 38 digits.
            _ => strings(&mut values()),
        };
        arrays.push(array);
    }
    for name in &shape.extra {
        arrays.push(strings(&mut rows.iter().map(|r| {
            r.extra
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        })));
    }
    RecordBatch::try_new(arrow.clone(), arrays).map_err(|e| e.to_string())
}

/// A Parquet file of `arrow`'s columns written to `out`, row group by row group (arrow-rs's
/// default of 1,048,576 rows a group, Snappy): the writer holds at most a row group.
pub(crate) fn writer<W: std::io::Write + Send>(
    arrow: &SchemaRef,
    out: W,
) -> Result<parquet::arrow::ArrowWriter<W>, String> {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    parquet::arrow::ArrowWriter::try_new(out, arrow.clone(), Some(props)).map_err(|e| e.to_string())
}

/// Writes one table's rows (canonical text, as [`crate::read_rows`] gives them) as a Parquet
/// file (see the module's documentation) held in memory; [`crate::write_table_from`] writes a
/// table of any size in bounded memory.
pub fn write_table(schema: &Schema, rows: &[RawRow]) -> Result<Vec<u8>, String> {
    let shape = Shape::of(schema, rows)?;
    let arrow = shape.arrow_schema(schema);
    let mut out = Vec::new();
    let mut writer = writer(&arrow, &mut out)?;
    writer
        .write(&batch(schema, &shape, &arrow, rows)?)
        .map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_gregorian_both_ways() {
        for (days, ymd) in [
            (0, (1970, 1, 1)),
            (19_723, (2024, 1, 1)),
            (19_782, (2024, 2, 29)),
            (-1, (1969, 12, 31)),
            (-719_162, (1, 1, 1)),
            (2_932_896, (9999, 12, 31)),
        ] {
            assert_eq!(civil_from_days(days), ymd);
            assert_eq!(days_from_civil(ymd.0, ymd.1, ymd.2), days);
        }
        let mut s = String::new();
        day_text(19_723, true, &mut s);
        assert_eq!(s, "2024-01");
    }

    #[test]
    fn rows_are_placed_in_row_groups_past_multi_line_values() {
        let map = RowMap {
            groups: vec![2, 3],
            first_line: 2,
            // The first row spans 3 lines.
            shifts: vec![(5, 2)],
        };
        assert_eq!(map.place(2), Some((1, 1)));
        assert_eq!(map.place(5), Some((1, 2)));
        assert_eq!(map.place(6), Some((2, 1)));
        assert_eq!(map.place(8), Some((2, 3)));
        assert_eq!(map.place(9), None);
        assert_eq!(map.place(1), None);
    }
}
