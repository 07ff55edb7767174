//! Workbooks (`.xlsx`, `.ods`, read with calamine): a sheet as CSV text, and a workbook as a
//! book.
//!
//! # A sheet as CSV
//! [`Workbook::sheet`] renders one sheet as CSV text (`,` separated, a field quoted when it
//! holds `,`, `;`, `"` or a line break), from its first non-empty row (the header) to its last,
//! over the columns any row uses; trailing empty rows and columns are not written, and an empty
//! row in between is an empty line. Each cell is written as:
//! - text: as it is;
//! - a number: its shortest decimal text that reads back as the same number (`0.1`, `1234.5`,
//!   `0.0000001`, never an exponent), an integer without `.0`. The exact decimal a spreadsheet
//!   shows is what its number is: no rounding is applied, and money is read exactly from this
//!   text from there on;
//! - a date (a cell formatted as a date, or an ODS date value): `YYYY-MM-DD`, followed by
//!   ` HH:MM:SS` (and `.mmm`) only when its time of day is not midnight;
//! - a boolean: `true` or `false`;
//! - an error (`#N/A`, `#DIV/0!`, ...): a [`Problem`] naming the sheet, the cell (`F4`) and the
//!   error.
//!
//! A sheet is bounded: one whose used range (from its first to its last non-empty cell) spans
//! more than [`MAX_SHEET_CELLS`] cells is refused with a problem, before the range is laid out
//! (an `.xlsx` sheet is streamed cell by cell; an `.ods` file is parsed whole by calamine, which
//! bounds it to 100 million cells).
//!
//! # A workbook as a book ([`WorkbookBook`])
//! Each file of the format is the sheet named like it: `subscriptions`, `subscriptions.csv`
//! or its pt-BR name (`assinaturas`, `clientes`, `produtos`, `contratos`, ... see
//! [`crate::schema::Schema::sheets`]), in any case and accents. A workbook none of whose
//! sheets is so named holds subscriptions in its first sheet (a one-sheet workbook, `Planilha1`).
//! Headers may use the pt-BR aliases of [`crate::schema`] (`cliente`, `valor`, `início`), as in
//! any book. Dates are real spreadsheet dates or `YYYY-MM-DD` text: a text `01/02/2024` is
//! refused, never guessed. Months (`fx_rates`, `marketing_spend`, `usage`) may be dates on the
//! first of their month. Problems name the workbook, the sheet and the row:
//! `planilha.xlsx[assinaturas]:3: unit_price: abc: not a decimal number (like 1234.56)`.
//! (A line named inside a reason, `duplicate line id (first on line 4)`, is a row too, unless
//! a cell above it holds a line break.)
//!
//! # For converters
//! [`is_workbook`] (by extension), [`Workbook::open`] (a path) or [`Workbook::from_bytes`] (an
//! upload), [`Workbook::sheet_names`] and [`Workbook::sheet_csv`] turn any sheet into CSV text
//! for [`crate::Records`]; [`Workbook::sheet`] also gives [`Sheet::row`], the sheet's row of a
//! line of that text, so that a converter's problems can name rows as a spreadsheet shows them
//! (`format!("{}[{sheet}]:{row}", workbook.shown())`). [`WorkbookBook::new`] reads an opened
//! workbook as a book; [`crate::book_at`] picks a folder or a workbook from a path.

use crate::problem::Problem;
use crate::schema::{ColumnKind, Schema, FILES};
use crate::BookSource;
use calamine::{Data, Ods, Reader, Xlsx};
use std::borrow::Cow;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The most cells a sheet's used range may span (rows times columns, from its first to its
/// last non-empty cell): a larger sheet is refused.
pub const MAX_SHEET_CELLS: u64 = 20_000_000;

/// Whether `path` names a workbook by its extension (`.xlsx`, `.xlsm`, `.ods`; also `.xls` and
/// `.xlsb`, which are refused with a problem saying to save them as `.xlsx`) and is not a
/// folder.
pub fn is_workbook(path: &Path) -> bool {
    kind_of(path).is_some() && !path.is_dir()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Xlsx,
    Ods,
    /// `.xls` or `.xlsb`: not read.
    Other,
}

fn kind_of(path: &Path) -> Option<Kind> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "xlsx" | "xlsm" => Some(Kind::Xlsx),
        "ods" => Some(Kind::Ods),
        "xls" | "xlsb" => Some(Kind::Other),
        _ => None,
    }
}

/// What a workbook is read from: a file, or bytes in memory.
trait ReadSeek: Read + std::io::Seek + Send {}
impl<T: Read + std::io::Seek + Send> ReadSeek for T {}
type Input = Box<dyn ReadSeek>;

enum Sheets {
    Xlsx(Box<Xlsx<Input>>),
    Ods(Box<Ods<Input>>),
}

/// An open workbook.
pub struct Workbook {
    /// The path as given, as problems name it.
    shown: String,
    names: Vec<String>,
    sheets: Mutex<Sheets>,
}

/// One sheet rendered as CSV text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sheet {
    /// The CSV text (UTF-8): line 1 is the header, the sheet's first non-empty row.
    pub csv: Vec<u8>,
    /// The sheet's row (1-based) of the header.
    pub first_row: u64,
    /// Where lines and rows part (a cell with a line break spans several lines of the CSV):
    /// from each of these CSV lines on, the text's row is the line less the shift.
    shifts: Vec<(u64, u64)>,
}

impl Sheet {
    /// The sheet's row (1-based) of the record that starts on `line` of the CSV text (1 = the
    /// header); 0 stays 0 (the sheet as a whole).
    pub fn row(&self, line: u64) -> u64 {
        if line == 0 {
            return 0;
        }
        let extra = match self.shifts.partition_point(|&(l, _)| l <= line) {
            0 => 0,
            k => self.shifts[k - 1].1,
        };
        (line.saturating_sub(extra) + self.first_row).saturating_sub(1)
    }
}

/// A cell as the CSV gets it.
type Cell = (u32, u32, Data);

impl Workbook {
    /// Opens the workbook at `path` (`.xlsx` or `.ods`, by its extension). Only a regular file
    /// is read (a folder, a named pipe or a device is refused, as [`crate::Folder`] refuses
    /// them); a file that is not a workbook of its kind is a problem.
    pub fn open(path: &Path) -> Result<Workbook, Problem> {
        let shown = path.display().to_string();
        let problem = |reason: &str| Problem::new(&shown, 0, "file", "", reason);
        let kind = kind_of(path)
            .ok_or_else(|| problem("is not a workbook: its name must end in .xlsx or .ods"))?;
        if kind == Kind::Other {
            return Err(problem(
                "is an Excel 97-2003 (.xls) or binary (.xlsb) workbook, which is not read: save \
                 it as .xlsx (Excel Workbook) or .ods",
            ));
        }
        let file = match crate::open_regular(path) {
            Ok(Some(file)) => file,
            Ok(None) => return Err(problem("no such file")),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                return Err(problem(&e.to_string()))
            }
            Err(e) => return Err(problem(&format!("cannot read: {e}"))),
        };
        Workbook::read(shown, kind, Box::new(BufReader::new(file)))
    }

    /// A workbook held in memory (an upload, a fuzzer's input); `name` (`planilha.xlsx`)
    /// names it in problems and says its kind by its extension (`.ods`, else `.xlsx`).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Workbook, Problem> {
        let kind = match kind_of(Path::new(name)) {
            Some(Kind::Ods) => Kind::Ods,
            _ => Kind::Xlsx,
        };
        Workbook::read(
            name.to_string(),
            kind,
            Box::new(std::io::Cursor::new(bytes)),
        )
    }

    fn read(shown: String, kind: Kind, input: Input) -> Result<Workbook, Problem> {
        let problem = |reason: &str| Problem::new(&shown, 0, "file", "", reason);
        let sheets = unpanicked(|| match kind {
            Kind::Ods => calamine::open_workbook_from_rs::<Ods<_>, _>(input)
                .map(|w| Sheets::Ods(Box::new(w)))
                .map_err(|e| problem(&format!("cannot be read as an .ods workbook: {e}"))),
            _ => calamine::open_workbook_from_rs::<Xlsx<_>, _>(input)
                .map(|w| Sheets::Xlsx(Box::new(w)))
                .map_err(|e| problem(&format!("cannot be read as an .xlsx workbook: {e}"))),
        })
        .unwrap_or_else(|| Err(problem(UNREADABLE)))?;
        let names = match &sheets {
            Sheets::Xlsx(w) => w.sheet_names(),
            Sheets::Ods(w) => w.sheet_names(),
        };
        Ok(Workbook {
            shown,
            names,
            sheets: Mutex::new(sheets),
        })
    }

    /// The workbook's path as problems name it.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The names of the sheets, in the workbook's order.
    pub fn sheet_names(&self) -> &[String] {
        &self.names
    }

    /// The sheet `name` as CSV text (see the module's documentation).
    pub fn sheet_csv(&self, name: &str) -> Result<Vec<u8>, Problem> {
        self.sheet(name).map(|s| s.csv)
    }

    /// The sheet `name` as CSV text, with the map from its lines to the sheet's rows.
    pub fn sheet(&self, name: &str) -> Result<Sheet, Problem> {
        self.render(name, |_| false)
    }

    /// Where a sheet's problems are: `planilha.xlsx[assinaturas]`.
    fn place(&self, sheet: &str) -> String {
        format!("{}[{sheet}]", self.shown)
    }

    /// The non-empty cells of a sheet, by row and column, bounded.
    fn cells(&self, name: &str) -> Result<Vec<Cell>, Problem> {
        unpanicked(|| self.cells_unguarded(name))
            .unwrap_or_else(|| Err(Problem::new(&self.place(name), 0, "sheet", "", UNREADABLE)))
    }

    fn cells_unguarded(&self, name: &str) -> Result<Vec<Cell>, Problem> {
        let place = self.place(name);
        let problem = |reason: &str| Problem::new(&place, 0, "sheet", "", reason);
        let too_many = || {
            problem(&format!(
                "has more than {MAX_SHEET_CELLS} cells: a sheet is read up to that size"
            ))
        };
        let mut guard = self
            .sheets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut cells: Vec<Cell> = Vec::new();
        match &mut *guard {
            Sheets::Xlsx(w) => {
                let mut reader = match w.worksheet_cells_reader(name) {
                    Ok(r) => r,
                    // A chart sheet, say: no cells.
                    Err(calamine::XlsxError::NotAWorksheet(_)) => return Ok(cells),
                    Err(e) => return Err(problem(&format!("cannot be read: {e}"))),
                };
                loop {
                    match reader.next_cell() {
                        Ok(Some(cell)) => {
                            let (row, col) = cell.get_position();
                            let value: Data = cell.get_value().clone().into();
                            if !blank(&value) {
                                if cells.len() as u64 >= MAX_SHEET_CELLS {
                                    return Err(too_many());
                                }
                                cells.push((row, col, value));
                            }
                        }
                        Ok(None) => break,
                        Err(e) => return Err(problem(&format!("cannot be read: {e}"))),
                    }
                }
            }
            Sheets::Ods(w) => {
                let range = w
                    .worksheet_range(name)
                    .map_err(|e| problem(&format!("cannot be read: {e}")))?;
                let (rows, cols) = range.get_size();
                if (rows as u64).saturating_mul(cols as u64) > MAX_SHEET_CELLS {
                    return Err(too_many());
                }
                let (r0, c0) = range.start().unwrap_or((0, 0));
                for (r, c, value) in range.used_cells() {
                    if !blank(value) {
                        cells.push((r0 + r as u32, c0 + c as u32, value.clone()));
                    }
                }
            }
        }
        drop(guard);
        cells.sort_by_key(|&(r, c, _)| (r, c));
        // A damaged file may give one cell twice: the first is kept.
        cells.dedup_by_key(|&mut (r, c, _)| (r, c));
        if let (Some(first), Some(last)) = (cells.first(), cells.last()) {
            let (c0, c1) = cells
                .iter()
                .fold((u32::MAX, 0), |(lo, hi), &(_, c, _)| (lo.min(c), hi.max(c)));
            let rows = u64::from(last.0 - first.0) + 1;
            let cols = u64::from(c1 - c0) + 1;
            if rows.saturating_mul(cols) > MAX_SHEET_CELLS {
                return Err(problem(&format!(
                    "its used range {}:{} spans {rows} rows by {cols} columns, more than \
                     {MAX_SHEET_CELLS} cells (is there a stray value far below or to the right of \
                     the table?)",
                    cell_name(first.0, c0),
                    cell_name(last.0, c1)
                )));
            }
        }
        Ok(cells)
    }

    /// The sheet as CSV; `month(header)` says whether a column holds months (a date on the 1st
    /// is then written `YYYY-MM`).
    fn render(&self, name: &str, month: impl Fn(&str) -> bool) -> Result<Sheet, Problem> {
        render_cells(&self.place(name), &self.cells(name)?, month)
    }
}

/// Cells (sorted by row and column) as CSV; problems are placed at `place`.
fn render_cells(
    place: &str,
    cells: &[Cell],
    month: impl Fn(&str) -> bool,
) -> Result<Sheet, Problem> {
    let Some(&(r0, _, _)) = cells.first() else {
        return Ok(Sheet {
            csv: Vec::new(),
            first_row: 1,
            shifts: Vec::new(),
        });
    };
    let (c0, c1) = cells
        .iter()
        .fold((u32::MAX, 0), |(lo, hi), &(_, c, _)| (lo.min(c), hi.max(c)));
    let width = (c1 - c0) as usize + 1;
    // The header's text by column, for naming cells and finding month columns.
    let mut header: Vec<String> = vec![String::new(); width];
    for (_, c, v) in cells.iter().take_while(|&&(r, _, _)| r == r0) {
        header[(c - c0) as usize] = text_of(v).unwrap_or_default().into_owned();
    }
    let months: Vec<bool> = header.iter().map(|h| month(h)).collect();
    let mut csv = Vec::new();
    let mut shifts = Vec::new();
    // The line the next record starts on, and how many lines past its row it is.
    let (mut line, mut extra) = (1u64, 0u64);
    let mut next_row = r0;
    let mut record = Vec::new();
    let mut at = 0;
    while at < cells.len() {
        let row = cells[at].0;
        // Empty rows between: empty lines.
        csv.resize(csv.len() + (row - next_row) as usize, b'\n');
        line += u64::from(row - next_row);
        record.clear();
        let mut col = c0;
        while at < cells.len() && cells[at].0 == row {
            let (_, c, ref value) = cells[at];
            record.resize(record.len() + (c - col) as usize, b',');
            col = c;
            let k = (c - c0) as usize;
            let text = cell_text(value, months[k]).map_err(|error| {
                let column = match header[k].trim() {
                    "" => column_name(c),
                    h => h.to_string(),
                };
                Problem::new(
                    place,
                    u64::from(row) + 1,
                    &column,
                    &error,
                    &format!(
                        "cell {} holds the spreadsheet error {error}, not a value: fix its \
                         formula or clear the cell",
                        cell_name(row, c)
                    ),
                )
            })?;
            push_field(&mut record, text.as_bytes());
            at += 1;
        }
        record.resize(record.len() + (c1 - col) as usize, b',');
        // The record starts on `line`; it is the text's row `row - r0 + 1`.
        let shift = line - (u64::from(row - r0) + 1);
        if shift != extra {
            shifts.push((line, shift));
            extra = shift;
        }
        line += 1 + crate::record::line_ends(&record);
        record.push(b'\n');
        csv.extend_from_slice(&record);
        next_row = row + 1;
    }
    Ok(Sheet {
        csv,
        first_row: u64::from(r0) + 1,
        shifts,
    })
}

/// Why a workbook whose reading failed inside calamine is refused.
const UNREADABLE: &str = "cannot be read: the workbook reader failed on it (is the file damaged?)";

/// `read()`, or `None` when it panicked: a damaged workbook that trips calamine (or a damaged
/// Parquet file the `parquet` crate) is a problem with the file, never a crash; nor is the
/// panic's message printed (the problem says it).
pub(crate) fn unpanicked<T>(read: impl FnOnce() -> T) -> Option<T> {
    quiet_panics_hook();
    QUIET.with(|q| q.set(q.get() + 1));
    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).ok();
    QUIET.with(|q| q.set(q.get() - 1));
    done
}

thread_local! {
    /// How many [`unpanicked`] calls this thread is in: a panic there is not printed.
    static QUIET: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Installs, once, a panic hook that says nothing of a panic caught by [`unpanicked`] and
/// hands every other panic to the hook that was there.
fn quiet_panics_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(std::cell::Cell::get) == 0 {
                previous(info);
            }
        }));
    });
}

/// A cell that holds nothing (an empty text too).
fn blank(value: &Data) -> bool {
    match value {
        Data::Empty => true,
        Data::String(s) => s.is_empty(),
        _ => false,
    }
}

/// A header cell's text (its value written as any cell is); `None` for an error.
fn text_of(value: &Data) -> Option<Cow<'_, str>> {
    cell_text(value, false).ok()
}

/// A cell's text in the CSV (see the module's documentation); `Err` with the error's text
/// (`#N/A`) for an error cell. `month`: a date on the first of a month is written `YYYY-MM`.
fn cell_text(value: &Data, month: bool) -> Result<Cow<'_, str>, String> {
    let date = |text: String| -> Cow<'_, str> {
        match text.strip_suffix("-01") {
            Some(m) if month && text.len() == 10 => Cow::Owned(m.to_string()),
            _ => Cow::Owned(text),
        }
    };
    Ok(match value {
        Data::Empty => Cow::Borrowed(""),
        Data::String(s) => Cow::Borrowed(s.as_str()),
        Data::Int(i) => Cow::Owned(i.to_string()),
        Data::Float(f) => Cow::Owned(number_text(*f)),
        Data::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Data::DateTime(d) if d.is_duration() => Cow::Owned(number_text(d.as_f64())),
        Data::DateTime(d) => date(excel_date_text(d)),
        Data::DateTimeIso(s) => date(iso_date_text(s)),
        Data::DurationIso(s) => Cow::Borrowed(s.as_str()),
        Data::Error(e) => return Err(e.to_string()),
    })
}

/// A number's shortest decimal text that reads back as the same number (Rust's `Display` of
/// `f64`: never an exponent), an integer without `.0`, `-0` as `0`.
pub fn number_text(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    format!("{f}")
}

/// An Excel serial date: `YYYY-MM-DD`, with ` HH:MM:SS[.mmm]` when not midnight; a time of day
/// alone (a serial below 1) as `HH:MM:SS`. Serials outside Excel's dates (below 0, from
/// 10000-01-01) are written as numbers.
fn excel_date_text(d: &calamine::ExcelDateTime) -> String {
    let v = d.as_f64();
    if !(0.0..2_958_466.0).contains(&v) {
        return number_text(v);
    }
    let (y, mo, day, h, mi, s, ms) = d.to_ymd_hms_milli();
    let time = match (h, mi, s, ms) {
        (0, 0, 0, 0) => String::new(),
        (_, _, _, 0) => format!("{h:02}:{mi:02}:{s:02}"),
        _ => format!("{h:02}:{mi:02}:{s:02}.{ms:03}"),
    };
    if v < 1.0 && !time.is_empty() {
        return time;
    }
    let day = format!("{y:04}-{mo:02}-{day:02}");
    if time.is_empty() {
        day
    } else {
        format!("{day} {time}")
    }
}

/// An ISO 8601 date or date-time (ODS): `YYYY-MM-DD`, with ` HH:MM:SS` when not midnight.
fn iso_date_text(s: &str) -> String {
    match s.split_once('T') {
        Some((day, time)) if time.bytes().all(|b| matches!(b, b'0' | b':' | b'.')) => {
            day.to_string()
        }
        Some((day, time)) => format!("{day} {time}"),
        None => s.to_string(),
    }
}

/// Appends one CSV field, quoted when it holds a separator (`,` or `;`, so that the header
/// never reads as `;`-separated), a quote or a line break.
pub(crate) fn push_field(out: &mut Vec<u8>, text: impl AsRef<[u8]>) {
    let text = text.as_ref();
    if text
        .iter()
        .any(|b| matches!(b, b',' | b';' | b'"' | b'\r' | b'\n'))
    {
        out.push(b'"');
        for &b in text {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(text);
    }
}

/// A column's letters: 0 is `A`, 25 `Z`, 26 `AA`.
pub fn column_name(col: u32) -> String {
    let mut n = u64::from(col) + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        out.push(b'A' + rem);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A cell's A1 name from its 0-based row and column.
pub fn cell_name(row: u32, col: u32) -> String {
    format!("{}{}", column_name(col), u64::from(row) + 1)
}

/// A workbook read as a book: each file of the format is the sheet named like it (see the
/// module's documentation).
pub struct WorkbookBook {
    shown: String,
    workbook: Result<Workbook, Problem>,
    /// The sheet holding each file of the format that the workbook has.
    sheets: Vec<(&'static str, String)>,
    /// Sheets found to hold one file twice (`customers` and `clientes`).
    twice: Option<Problem>,
    /// Each file's sheet rendered, once (the store reads a book twice).
    rendered: Mutex<Vec<(&'static str, Arc<Rendered>)>>,
}

struct Rendered {
    csv: Arc<[u8]>,
    sheet: Sheet,
}

impl WorkbookBook {
    /// The workbook at `path` as a book; a workbook that cannot be opened is reported by
    /// [`BookSource::unavailable`].
    pub fn open(path: &Path) -> WorkbookBook {
        WorkbookBook::new(Workbook::open(path).map_err(|p| (path.display().to_string(), p)))
    }

    /// An opened workbook as a book; `Err((name, problem))` when it could not be opened (then
    /// [`BookSource::unavailable`] says so).
    pub fn new(workbook: Result<Workbook, (String, Problem)>) -> WorkbookBook {
        let (shown, workbook) = match workbook {
            Ok(w) => (w.shown.clone(), Ok(w)),
            Err((name, p)) => (name, Err(p)),
        };
        let mut sheets: Vec<(&'static str, String)> = Vec::new();
        let mut twice = None;
        if let Ok(w) = &workbook {
            for schema in FILES {
                let mut named = w.sheet_names().iter().filter(|n| schema.is_sheet(n));
                if let Some(first) = named.next() {
                    if let Some(second) = named.next() {
                        twice = twice.or_else(|| {
                            Some(Problem::new(
                                &shown,
                                0,
                                "sheet",
                                second,
                                &format!(
                                    "two sheets hold {}: {first:?} and {second:?}; keep one",
                                    schema.file
                                ),
                            ))
                        });
                    }
                    sheets.push((schema.file, first.clone()));
                }
            }
            // No sheet named like a file: the first holds the subscriptions.
            if sheets.is_empty() {
                if let Some(first) = w.sheet_names().first() {
                    sheets.push((crate::schema::SUBSCRIPTIONS.file, first.clone()));
                }
            }
        }
        WorkbookBook {
            shown,
            workbook,
            sheets,
            twice,
            rendered: Mutex::new(Vec::new()),
        }
    }

    /// The sheet that holds `file` (`subscriptions.csv`), if the workbook has one.
    pub fn sheet_of(&self, file: &str) -> Option<&str> {
        self.sheets
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, s)| s.as_str())
    }

    fn rendered(&self, file: &str) -> Option<Arc<Rendered>> {
        let done = self
            .rendered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        done.iter()
            .find(|(f, _)| *f == file)
            .map(|(_, r)| Arc::clone(r))
    }
}

/// Whether a header names a month column of `schema`.
fn month_column(schema: &Schema, header: &str) -> bool {
    schema
        .column_of(header)
        .is_some_and(|k| schema.kinds[k] == ColumnKind::Month)
}

impl BookSource for WorkbookBook {
    fn open(&self, file: &str) -> std::io::Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        let (Ok(workbook), Some(sheet)) = (&self.workbook, self.sheet_of(file)) else {
            return Ok(None);
        };
        let rendered = match self.rendered(file) {
            Some(r) => r,
            None => {
                let Some(schema) = FILES.iter().find(|s| s.file == file) else {
                    return Ok(None);
                };
                let sheet = workbook
                    .render(sheet, |h| month_column(schema, h))
                    .map_err(|p| std::io::Error::new(std::io::ErrorKind::InvalidData, p))?;
                let r = Arc::new(Rendered {
                    csv: Arc::from(sheet.csv.as_slice()),
                    sheet: Sheet {
                        csv: Vec::new(),
                        ..sheet
                    },
                });
                self.rendered
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((schema.file, Arc::clone(&r)));
                r
            }
        };
        let len = rendered.csv.len() as u64;
        Ok(Some((
            Box::new(std::io::Cursor::new(Arc::clone(&rendered.csv))),
            len,
        )))
    }

    fn unavailable(&self) -> Option<Problem> {
        match &self.workbook {
            Err(p) => Some(p.clone()),
            Ok(_) => self.twice.clone(),
        }
    }

    fn first_line(&self, file: &str) -> u64 {
        self.rendered(file).map_or(1, |r| r.sheet.first_row)
    }

    fn table_name(&self, file: &str) -> String {
        match self.sheet_of(file) {
            Some(sheet) => format!("{}[{sheet}]", self.shown),
            None => file.to_string(),
        }
    }

    fn locate(&self, problem: &mut Problem) {
        let Some(sheet) = self.sheet_of(&problem.file) else {
            if FILES.iter().any(|s| s.file == problem.file) {
                // A file the workbook has no sheet for (subscriptions, required).
                let schema = FILES.iter().find(|s| s.file == problem.file);
                let names: Vec<String> = schema
                    .map(|s| {
                        std::iter::once(s.stem())
                            .chain(s.sheets.iter().copied())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                let found = match &self.workbook {
                    Ok(w) => w.sheet_names().join(", "),
                    Err(_) => String::new(),
                };
                problem.reason = format!(
                    "no sheet of the workbook holds {}, which a book needs: name one {} (its \
                     sheets are: {found})",
                    problem.file,
                    names.join(" or ")
                );
                problem.file = self.shown.clone();
            }
            return;
        };
        let place = format!("{}[{sheet}]", self.shown);
        // The sheet's row of a line of `file`'s text: the reader numbers lines from the
        // header's row, back to the text's own lines.
        let row = |file: &str, line: u64| {
            let r = self.rendered(file)?;
            let first = r.sheet.first_row;
            (line >= first).then(|| r.sheet.row(line - first + 1))
        };
        // Other records and files the reason names, as the workbook has them.
        let own = problem.file.clone();
        problem.restate(
            |file, line| match file {
                None => Some(format!("on row {}", row(&own, line)?)),
                Some(f) => {
                    self.sheet_of(f)?;
                    Some(format!("{}:{}", self.table_name(f), row(f, line)?))
                }
            },
            |file| self.sheet_of(file).map(|_| self.table_name(file)),
        );
        if let Some(at) = row(&own, problem.line) {
            problem.line = at;
        }
        problem.file = place;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{CellErrorType, ExcelDateTime, ExcelDateTimeType};

    fn text(v: Data) -> String {
        cell_text(&v, false).unwrap().into_owned()
    }

    #[test]
    fn numbers_are_their_shortest_decimal_text() {
        assert_eq!(text(Data::Float(0.1)), "0.1");
        assert_eq!(text(Data::Float(1234.5)), "1234.5");
        assert_eq!(text(Data::Float(1e-7)), "0.0000001");
        assert_eq!(text(Data::Float(3.0)), "3");
        assert_eq!(text(Data::Float(-0.0)), "0");
        assert_eq!(text(Data::Float(-12.75)), "-12.75");
        assert_eq!(text(Data::Float(1e21)), "1000000000000000000000");
        assert_eq!(text(Data::Float(99.99)), "99.99");
        assert_eq!(text(Data::Float(0.1 + 0.2)), "0.30000000000000004");
        assert_eq!(text(Data::Int(-7)), "-7");
        assert_eq!(text(Data::Bool(true)), "true");
        assert_eq!(text(Data::String(" a,b ".into())), " a,b ");
    }

    #[test]
    fn dates_are_iso_days_with_a_time_only_when_not_midnight() {
        let excel =
            |v: f64| Data::DateTime(ExcelDateTime::new(v, ExcelDateTimeType::DateTime, false));
        assert_eq!(text(excel(45306.0)), "2024-01-15");
        assert_eq!(text(excel(45306.5)), "2024-01-15 12:00:00");
        assert_eq!(
            text(excel(45306.0 + 1.5 / 86400.0)),
            "2024-01-15 00:00:01.500"
        );
        assert_eq!(text(excel(0.75)), "18:00:00");
        assert_eq!(text(excel(-3.0)), "-3");
        let epoch_1904 = Data::DateTime(ExcelDateTime::new(0.0, ExcelDateTimeType::DateTime, true));
        assert_eq!(text(epoch_1904), "1904-01-01");
        assert_eq!(text(Data::DateTimeIso("2024-01-15".into())), "2024-01-15");
        assert_eq!(
            text(Data::DateTimeIso("2024-01-15T00:00:00".into())),
            "2024-01-15"
        );
        assert_eq!(
            text(Data::DateTimeIso("2024-01-15T10:30:00".into())),
            "2024-01-15 10:30:00"
        );
        // In a month column, the first of a month is the month.
        assert_eq!(cell_text(&excel(45292.0), true).unwrap(), "2024-01");
        assert_eq!(cell_text(&excel(45306.0), true).unwrap(), "2024-01-15");
        assert_eq!(
            cell_text(&Data::DateTimeIso("2024-03-01".into()), true).unwrap(),
            "2024-03"
        );
    }

    #[test]
    fn errors_are_refused_with_their_text() {
        assert_eq!(
            cell_text(&Data::Error(CellErrorType::NA), false).unwrap_err(),
            "#N/A"
        );
        assert_eq!(
            cell_text(&Data::Error(CellErrorType::Div0), false).unwrap_err(),
            "#DIV/0!"
        );
    }

    #[test]
    fn fields_are_quoted_when_needed() {
        let mut out = Vec::new();
        for f in ["a", "b,c", "d;e", "say \"hi\"", "two\nlines", ""] {
            push_field(&mut out, f);
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a|\"b,c\"|\"d;e\"|\"say \"\"hi\"\"\"|\"two\nlines\"||"
        );
    }

    #[test]
    fn cells_are_named_a1_style() {
        assert_eq!(cell_name(0, 0), "A1");
        assert_eq!(cell_name(2, 5), "F3");
        assert_eq!(column_name(25), "Z");
        assert_eq!(column_name(26), "AA");
        assert_eq!(column_name(16383), "XFD");
    }

    #[test]
    fn a_sheet_is_csv_from_its_header_with_rows_as_lines() {
        let cells: Vec<Cell> = vec![
            (2, 1, Data::String("id".into())),
            (2, 2, Data::String("month".into())),
            (2, 4, Data::String("name".into())),
            (3, 1, Data::String("a".into())),
            (3, 2, Data::DateTimeIso("2024-02-01".into())),
            (3, 4, Data::String("two\r\nlines".into())),
            (5, 1, Data::String("b".into())),
            (5, 2, Data::Float(0.1)),
            (6, 1, Data::String("c".into())),
        ];
        let sheet = render_cells("w.xlsx[s]", &cells, |h| h == "month").unwrap();
        assert_eq!(
            String::from_utf8(sheet.csv.clone()).unwrap(),
            "id,month,,name\na,2024-02,,\"two\r\nlines\"\n\nb,0.1,,\nc,,,\n"
        );
        assert_eq!(sheet.first_row, 3);
        // Lines 1, 2 (a record of two lines), 4 (empty), 5, 6 are rows 3, 4, 5, 6, 7.
        assert_eq!(
            [1, 2, 5, 6].map(|l| sheet.row(l)),
            [3, 4, 6, 7],
            "{:?}",
            sheet.shifts
        );
        assert_eq!(sheet.row(0), 0);
        let bad = vec![
            (0, 0, Data::String("valor".into())),
            (1, 0, Data::Float(1.0)),
            (2, 0, Data::Error(calamine::CellErrorType::NA)),
        ];
        let p = render_cells("w.xlsx[s]", &bad, |_| false).unwrap_err();
        assert_eq!(
            p.to_string(),
            "w.xlsx[s]:3: valor: #N/A: cell A3 holds the spreadsheet error #N/A, not a value: \
             fix its formula or clear the cell"
        );
    }

    #[test]
    fn workbook_names_are_told_by_their_extension() {
        assert_eq!(kind_of(Path::new("a/planilha.XLSX")), Some(Kind::Xlsx));
        assert_eq!(kind_of(Path::new("b.ods")), Some(Kind::Ods));
        assert_eq!(kind_of(Path::new("c.xls")), Some(Kind::Other));
        assert_eq!(kind_of(Path::new("book")), None);
        assert!(!is_workbook(Path::new("book.csv")));
    }
}
