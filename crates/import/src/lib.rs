//! Reads a book of business from a folder of CSV files in the interchange format
//! (`shared/spec/data-format.md`), or from a workbook (`.xlsx`, `.ods`: see [`workbook`]).
//!
//! The import is all-or-nothing: [`read_book`] returns either a whole, validated [`Book`] or
//! every problem it found, each as `file:line: column: value: reason`. Large files are read
//! in bounded chunks parsed in parallel on the current rayon pool.

mod field;
pub mod parquet;
mod problem;
mod record;
mod records;
mod rows;
pub mod schema;
mod table;
mod tables;
mod text;
pub mod workbook;
mod write;

pub use problem::{shown, BookErrors, Problem, Problems, MAX_LISTED_PROBLEMS, SHOWN_CHARS};
pub use record::detect_separator;
pub use records::{Record, Records, SharedRecord};
pub use rows::{
    canonical, check_value, extra_columns, header_names, read_rows, read_rows_in, write_rows,
    RawRow,
};
pub use table::{MAX_KEY_BYTES, MAX_RECORD_BYTES};
pub use tables::BOOK_LIMIT_UNITS;
pub use write::{write_table_from, WriteError};

use expansa_ledger::{Book, Currency};
use std::io::Read;
use std::path::Path;

/// Choices that shape an import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The reporting currency: lines in other currencies are converted with fx_rates.csv.
    pub currency: Currency,
    /// How files that are not UTF-8 are read: with UTF-8 (the default) they are refused, one
    /// problem per file; with Windows-1252 they are decoded (text that is valid UTF-8 stays
    /// UTF-8, so a book may mix files saved both ways).
    pub encoding: TextEncoding,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            currency: Currency::BRL,
            encoding: TextEncoding::UTF_8,
        }
    }
}

/// The text encoding of a book's files: UTF-8 or Windows-1252 (what Excel saves CSV in, in
/// Brazil and western Europe; `latin1` and `iso-8859-1` name it too, as browsers read them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextEncoding(&'static encoding_rs::Encoding);

impl TextEncoding {
    pub const UTF_8: TextEncoding = TextEncoding(encoding_rs::UTF_8);
    pub const WINDOWS_1252: TextEncoding = TextEncoding(encoding_rs::WINDOWS_1252);

    /// The encoding a name stands for (`utf-8`, `windows-1252`, `cp1252`, `latin1`,
    /// `iso-8859-1`, ..., any case); `None` for a name that is unknown or not supported.
    pub fn from_name(name: &str) -> Option<TextEncoding> {
        let found = encoding_rs::Encoding::for_label_no_replacement(name.trim().as_bytes())?;
        [Self::UTF_8, Self::WINDOWS_1252]
            .into_iter()
            .find(|e| e.0 == found)
    }

    /// The encoding's canonical name (`UTF-8`, `windows-1252`).
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    pub fn is_utf8(self) -> bool {
        self == Self::UTF_8
    }
}

impl std::str::FromStr for TextEncoding {
    type Err = String;

    fn from_str(s: &str) -> Result<TextEncoding, String> {
        TextEncoding::from_name(s).ok_or_else(|| {
            format!(
                "{s}: unknown or unsupported text encoding (use utf-8, or windows-1252, also \
                 called latin1 or iso-8859-1)"
            )
        })
    }
}

/// The files a book is written as: CSV (`subscriptions.csv`, ...) or Parquet
/// (`subscriptions.parquet`, ..., see [`parquet`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BookFormat {
    #[default]
    Csv,
    Parquet,
}

/// Every name a file of a book may have: each table's CSV and Parquet file.
pub fn book_file_names() -> impl Iterator<Item = String> {
    schema::FILES
        .iter()
        .flat_map(|schema| [BookFormat::Csv, BookFormat::Parquet].map(|f| f.file_name(schema)))
}

impl BookFormat {
    /// The names of the book files in this format that `dir` holds (anything by that name: a
    /// file, a folder, a link), in the format's order of tables.
    pub(crate) fn files_in(self, dir: &Path) -> Vec<String> {
        schema::FILES
            .iter()
            .map(|s| self.file_name(s))
            .filter(|f| dir.join(f).symlink_metadata().is_ok())
            .collect()
    }

    /// The name of `schema`'s file in this format.
    pub fn file_name(self, schema: &schema::Schema) -> String {
        match self {
            BookFormat::Csv => schema.file.to_string(),
            BookFormat::Parquet => parquet::parquet_name(schema),
        }
    }
}

/// Receives progress while files are read (bytes of each file).
pub trait Progress: Sync {
    /// A file of `bytes` bytes starts being read.
    fn start(&self, _file: &str, _bytes: u64) {}
    /// `bytes` more bytes were read.
    fn advance(&self, _bytes: u64) {}
    /// The file is done.
    fn finish(&self) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {}

/// Where the files of a book come from.
pub trait BookSource: Sync {
    /// Opens one file of the book, with its size in bytes; `Ok(None)` when it is absent.
    fn open(&self, file: &str) -> std::io::Result<Option<(Box<dyn Read + Send + '_>, u64)>>;
    /// A problem when the source as a whole cannot be read (a folder that is not there).
    fn unavailable(&self) -> Option<Problem>;
    /// Says where a problem lies as the user knows the book. A problem is found in a file
    /// (`subscriptions.csv`) at a line of the text [`BookSource::open`] gave; by default that is
    /// where it is. A workbook names its sheet and row instead (`planilha.xlsx[assinaturas]:3`,
    /// see [`workbook::WorkbookBook`]).
    fn locate(&self, _problem: &mut Problem) {}
    /// The line number of the first line of `file`'s text (its header): 1, but a workbook's
    /// sheet whose table starts lower says the row of its header, so that lines are rows.
    fn first_line(&self, _file: &str) -> u64 {
        1
    }
    /// How the user knows the table of `file` (`usage.csv`): its file in a CSV book (the
    /// default), `usage.parquet` in a Parquet book, a workbook's sheet.
    fn table_name(&self, file: &str) -> String {
        file.to_string()
    }
}

/// `errors` with every problem located by `source` ([`BookSource::locate`]).
pub(crate) fn located(source: &dyn BookSource, mut errors: BookErrors) -> BookErrors {
    for p in &mut errors.0 {
        source.locate(p);
    }
    errors
}

/// A book in a folder of CSV files.
///
/// Only regular files are read (symbolic links to them too): a named pipe, a device, a socket
/// or a folder under a file's name is refused, without being opened for long (a pipe is opened
/// without waiting for a writer), so that reading a book never hangs or reads without end.
pub struct Folder<'a>(pub &'a Path);

impl BookSource for Folder<'_> {
    fn open(&self, file: &str) -> std::io::Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        let Some(f) = open_regular(&self.0.join(file))? else {
            return Ok(None);
        };
        let len = f.metadata()?.len();
        Ok(Some((Box::new(f), len)))
    }

    /// A path that is not a folder; a folder holding Parquet files of a book (`usage.parquet`)
    /// without `subscriptions.parquet`, which would otherwise be read as a CSV book without
    /// those tables.
    fn unavailable(&self) -> Option<Problem> {
        let folder = |reason: String| Problem {
            file: self.0.display().to_string(),
            line: 0,
            column: "folder".into(),
            value: String::new(),
            reason,
        };
        if !self.0.is_dir() {
            return Some(folder("is not a folder".into()));
        }
        let parquet = BookFormat::Parquet.files_in(self.0);
        if parquet.is_empty() {
            return None;
        }
        let csv = BookFormat::Csv.files_in(self.0);
        Some(folder(if csv.is_empty() {
            format!(
                "holds Parquet files of a book ({}) but not subscriptions.parquet, which a \
                 Parquet book must have",
                parquet.join(", ")
            )
        } else {
            format!(
                "holds both CSV files ({}) and Parquet files ({}) of a book: a book is one or \
                 the other, and these Parquet files would not be read; move one set to another \
                 folder",
                csv.join(", "),
                parquet.join(", ")
            )
        }))
    }
}

/// Opens a regular file (a symbolic link to one too): `Ok(None)` when it is not there; a named
/// pipe, a device, a socket or a folder is refused (`InvalidInput`), without waiting on it (a
/// pipe is opened without waiting for a writer).
pub fn open_regular(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => return Err(not_regular(&m)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    // Replaced by something else since? Opened without waiting, and checked again.
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    match options.open(path) {
        Ok(f) => {
            let m = f.metadata()?;
            if !m.is_file() {
                return Err(not_regular(&m));
            }
            Ok(Some(f))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Why a file that is not a regular file is refused (`InvalidInput`: reported as it is).
fn not_regular(m: &std::fs::Metadata) -> std::io::Error {
    let ft = m.file_type();
    let what = if ft.is_dir() {
        "a folder"
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if ft.is_fifo() {
                "a named pipe"
            } else if ft.is_socket() {
                "a socket"
            } else if ft.is_char_device() || ft.is_block_device() {
                "a device"
            } else {
                "not a file"
            }
        }
        #[cfg(not(unix))]
        "not a file"
    };
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("is not a regular file ({what}): only regular files are read"),
    )
}

/// A book held in memory: file names (`subscriptions.csv`, ...) and their bytes.
pub struct InMemory<'a>(pub &'a [(&'a str, &'a [u8])]);

impl BookSource for InMemory<'_> {
    fn open(&self, file: &str) -> std::io::Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        Ok(self
            .0
            .iter()
            .find(|(name, _)| *name == file)
            .map(|(_, bytes)| (Box::new(*bytes) as Box<dyn Read + Send>, bytes.len() as u64)))
    }

    fn unavailable(&self) -> Option<Problem> {
        None
    }
}

/// Reads and validates the book at `path`: a folder of CSV files, a workbook (a `.xlsx` or
/// `.ods` file, see [`workbook::is_workbook`]) or a folder of Parquet files (see [`parquet`]).
pub fn read_book(
    path: &Path,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<Book, BookErrors> {
    read_book_from(&book_at(path), options, progress)
}

/// The book at `path`, as a source: a workbook when `path` names one
/// ([`workbook::is_workbook`]), a Parquet book when it is a folder holding
/// `subscriptions.parquet` ([`parquet::is_parquet_book`]), else a folder of CSV files. A
/// workbook that cannot be opened says so through [`BookSource::unavailable`].
pub fn book_at(path: &Path) -> PathBook<'_> {
    if workbook::is_workbook(path) {
        PathBook::Workbook(Box::new(workbook::WorkbookBook::open(path)))
    } else if parquet::is_parquet_book(path) {
        PathBook::Parquet(parquet::ParquetBook::new(path))
    } else {
        PathBook::Folder(Folder(path))
    }
}

/// A book named by a path: a folder of CSV files, a workbook or a folder of Parquet files
/// (see [`book_at`]).
pub enum PathBook<'a> {
    Folder(Folder<'a>),
    Workbook(Box<workbook::WorkbookBook>),
    Parquet(parquet::ParquetBook),
}

impl BookSource for PathBook<'_> {
    fn open(&self, file: &str) -> std::io::Result<Option<(Box<dyn Read + Send + '_>, u64)>> {
        match self {
            PathBook::Folder(f) => f.open(file),
            PathBook::Workbook(w) => w.open(file),
            PathBook::Parquet(p) => p.open(file),
        }
    }

    fn unavailable(&self) -> Option<Problem> {
        match self {
            PathBook::Folder(f) => f.unavailable(),
            PathBook::Workbook(w) => w.unavailable(),
            PathBook::Parquet(p) => p.unavailable(),
        }
    }

    fn locate(&self, problem: &mut Problem) {
        match self {
            PathBook::Folder(f) => f.locate(problem),
            PathBook::Workbook(w) => w.locate(problem),
            PathBook::Parquet(p) => p.locate(problem),
        }
    }

    fn first_line(&self, file: &str) -> u64 {
        match self {
            PathBook::Folder(f) => f.first_line(file),
            PathBook::Workbook(w) => w.first_line(file),
            PathBook::Parquet(p) => p.first_line(file),
        }
    }

    fn table_name(&self, file: &str) -> String {
        match self {
            PathBook::Folder(f) => f.table_name(file),
            PathBook::Workbook(w) => w.table_name(file),
            PathBook::Parquet(p) => p.table_name(file),
        }
    }
}

/// Reads and validates a book from any source.
pub fn read_book_from(
    source: &dyn BookSource,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<Book, BookErrors> {
    tables::read_all(source, options, progress, false)
}

/// Reads a part of a book: some customers' rows of every file and the whole of the shared
/// files (products, fx rates, marketing spend), with every rule of [`read_book_from`] that
/// concerns those rows. Left to the caller is the one rule about the book as a whole: lines all
/// in one currency other than the reporting one without its rates are then reported as lines
/// without rates, not as "every line is in ...". The store validates a write this way
/// (`expansa_store`, `changed.rs`).
pub fn read_book_part(
    source: &dyn BookSource,
    options: &ImportOptions,
) -> Result<Book, BookErrors> {
    tables::read_all(source, options, &NoProgress, true)
}
