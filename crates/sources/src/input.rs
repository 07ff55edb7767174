//! What a converter reads: a folder of a source's files, or one file, and its tables.
//!
//! CSV tables are read by the import's own record reader ([`expansa_import::Records`]): the
//! same separators, quotes, BOM, encodings and line numbers as a book, streamed. JSON files
//! (API objects) are read whole, up to [`MAX_JSON_BYTES`].

use expansa_import::{Problem, Records, SharedRecord as Record, TextEncoding};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// The largest JSON file read (it is read whole).
pub const MAX_JSON_BYTES: u64 = 1 << 30;

/// A source's files: a folder, or a single file.
#[derive(Clone, Debug)]
pub struct Input {
    pub path: PathBuf,
    pub encoding: TextEncoding,
}

impl Input {
    pub fn new(path: &Path, encoding: TextEncoding) -> Input {
        Input {
            path: path.to_path_buf(),
            encoding,
        }
    }

    /// Whether the input is a folder.
    pub fn is_dir(&self) -> bool {
        self.path.is_dir()
    }

    /// The first of `names` present in the folder (names compared without case), or the input
    /// itself when it is a file named like one of them; `None` when none is there.
    pub fn find<S: AsRef<str>>(&self, names: &[S]) -> Option<PathBuf> {
        if self.path.is_file() {
            let own = self.path.file_name()?.to_string_lossy().to_lowercase();
            return names
                .iter()
                .any(|n| n.as_ref().eq_ignore_ascii_case(&own))
                .then(|| self.path.clone());
        }
        let entries: Vec<PathBuf> = std::fs::read_dir(&self.path)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.iter().find_map(|name| {
            entries
                .iter()
                .find(|p| {
                    p.file_name()
                        .is_some_and(|f| f.to_string_lossy().eq_ignore_ascii_case(name.as_ref()))
                })
                .cloned()
        })
    }

    /// The file names of the folder (or the file's own name), for messages.
    pub fn listing(&self) -> Vec<String> {
        if self.path.is_file() {
            return vec![display_name(&self.path)];
        }
        let mut names: Vec<String> = std::fs::read_dir(&self.path)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// A problem for the input as a whole (`file` is the input's path).
    pub fn problem(&self, reason: &str) -> Problem {
        Problem::new(&self.path.display().to_string(), 0, "file", "", reason)
    }
}

/// A file's name as problems give it.
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Opens a regular file for reading (a named pipe, a device or a folder is refused).
pub fn open_file(path: &Path) -> Result<File, Problem> {
    let cannot = |reason: String| Problem::new(&display_name(path), 0, "file", "", &reason);
    match expansa_import::open_regular(path) {
        Ok(Some(f)) => Ok(f),
        Ok(None) => Err(cannot("cannot be read: it is not there".into())),
        // A named pipe, a device, a folder: the importer's own words (`InvalidInput`).
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Err(cannot(e.to_string())),
        Err(e) => Err(cannot(format!("cannot be read: {e}"))),
    }
}

/// Records read ahead by a thread of their own, a run at a time (the records of a run share
/// their text, so a run is a few hundred KiB at most).
type Run = Vec<Result<Record, Problem>>;

/// Records per run a reading thread hands over.
const RUN: usize = 2048;

/// Runs read ahead at most (memory: this many runs, whatever the table's size).
const RUNS_AHEAD: usize = 4;

/// Where a table's records come from.
enum Reader {
    /// Read here, as they are asked for.
    Here(Box<Records<Box<dyn Read + Send>>>),
    /// Read (and parsed) ahead by another thread, in order, while the caller converts: the
    /// same records and problems, the reading stopped at the first problem as here.
    Ahead {
        runs: std::sync::mpsc::Receiver<Run>,
        run: std::vec::IntoIter<Result<Record, Problem>>,
    },
}

/// One CSV table of a source, its columns found by name (trimmed, any case).
pub struct Table {
    file: String,
    reader: Reader,
    names: Vec<String>,
    /// For a spreadsheet's sheet: the sheet's row of a line of its CSV text.
    rows: Option<Box<dyn Fn(u64) -> u64 + Send>>,
    /// A bucket file ([`crate::partition`]): each record's first field is its source line.
    numbered: bool,
}

impl Table {
    /// Opens the CSV file at `path`.
    pub fn open(path: &Path, encoding: TextEncoding) -> Result<Table, Problem> {
        let file = open_file(path)?;
        Table::from_reader(
            &display_name(path),
            Box::new(BufReader::new(file)),
            encoding,
        )
    }

    /// A table from any reader; `file` names it in problems.
    pub fn from_reader(
        file: &str,
        reader: Box<dyn Read + Send>,
        encoding: TextEncoding,
    ) -> Result<Table, Problem> {
        let records = Records::new(file, reader, encoding)?;
        let names = records
            .header()
            .iter()
            .map(|n| n.trim().to_lowercase())
            .collect();
        Ok(Table {
            file: records.file().to_string(),
            reader: read_ahead(records),
            names,
            rows: None,
            numbered: false,
        })
    }

    /// A bucket file of [`crate::partition`] holding rows of the source file `file`: its
    /// records and problems give that file's name and lines (its first, unnamed column).
    pub fn open_bucket(path: &Path, file: &str) -> Result<Table, Problem> {
        let reader = Box::new(BufReader::new(open_file(path)?));
        let mut table = Table::from_reader(file, reader, TextEncoding::UTF_8)?;
        table.numbered = true;
        Ok(table)
    }

    /// A spreadsheet's sheet rendered as CSV text (`expansa_import::workbook`); `row` gives the
    /// sheet's row of a line of the text, which records and problems then carry.
    pub fn from_sheet(
        file: &str,
        csv: Vec<u8>,
        row: impl Fn(u64) -> u64 + Send + 'static,
    ) -> Result<Table, Problem> {
        let mut table = Table::from_reader(
            file,
            Box::new(std::io::Cursor::new(csv)),
            TextEncoding::UTF_8,
        )?;
        table.rows = Some(Box::new(row));
        Ok(table)
    }

    /// The file name problems give.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The header's names, trimmed and lower-case.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The position of a column, by name (any case).
    pub fn column(&self, name: &str) -> Option<usize> {
        let name = name.trim().to_lowercase();
        self.names.iter().position(|n| *n == name)
    }

    /// The positions of `names`, or one problem naming the first missing column and what the
    /// file is expected to be (`a Stripe subscription table`).
    pub fn columns<const N: usize>(
        &self,
        names: [&str; N],
        what: &str,
    ) -> Result<[usize; N], Problem> {
        let mut out = [0; N];
        for (k, name) in names.iter().enumerate() {
            out[k] = self.column(name).ok_or_else(|| {
                Problem::new(
                    self.file(),
                    1,
                    name,
                    "",
                    &format!(
                        "no such column: is this {what}? (the header has {})",
                        self.names.join(", ")
                    ),
                )
            })?;
        }
        Ok(out)
    }

    /// The next record; `None` at the end.
    pub fn next_row(&mut self) -> Result<Option<Record>, Problem> {
        let row = self.reader.next().map_err(|mut p| {
            if let Some(rows) = &self.rows {
                p.line = rows(p.line);
            }
            p
        })?;
        Ok(row.map(|mut r| {
            if let Some(rows) = &self.rows {
                r.line = rows(r.line);
            }
            if self.numbered {
                r.line = r.get(0).and_then(|l| l.parse().ok()).unwrap_or(r.line);
            }
            r
        }))
    }
}

impl Reader {
    fn next(&mut self) -> Result<Option<Record>, Problem> {
        match self {
            Reader::Here(records) => records.next_shared(),
            Reader::Ahead { runs, run } => loop {
                if let Some(r) = run.next() {
                    return r.map(Some);
                }
                match runs.recv() {
                    Ok(next) => *run = next.into_iter(),
                    // The reading thread ended: the table's end, or after its problem.
                    Err(_) => return Ok(None),
                }
            },
        }
    }
}

/// Reads the records of a table on a thread of its own (here when no thread can be started).
fn read_ahead(records: Records<Box<dyn Read + Send>>) -> Reader {
    use std::sync::mpsc;
    let (give, take) = mpsc::channel::<Records<Box<dyn Read + Send>>>();
    let (send, runs) = mpsc::sync_channel::<Run>(RUNS_AHEAD);
    let spawned = std::thread::Builder::new()
        .name("expansa-read".into())
        .spawn(move || {
            let Ok(mut records) = take.recv() else {
                return;
            };
            let mut run = Vec::with_capacity(RUN);
            loop {
                let next = records.next_shared();
                let last = !matches!(next, Ok(Some(_)));
                match next {
                    Ok(Some(r)) => run.push(Ok(r)),
                    Ok(None) => {}
                    Err(p) => run.push(Err(p)),
                }
                if (last || run.len() >= RUN) && !run.is_empty() {
                    let full = std::mem::replace(&mut run, Vec::with_capacity(RUN));
                    if send.send(full).is_err() {
                        // The table was dropped: nothing more to read.
                        return;
                    }
                }
                if last {
                    return;
                }
            }
        });
    if spawned.is_err() {
        return Reader::Here(Box::new(records));
    }
    match give.send(records) {
        Ok(()) => Reader::Ahead {
            runs,
            run: Vec::new().into_iter(),
        },
        Err(mpsc::SendError(records)) => Reader::Here(Box::new(records)),
    }
}

/// A field of a record, trimmed; `None` when the column is absent or the cell empty.
pub fn field(record: &Record, column: Option<usize>) -> Option<&str> {
    let text = trim(record.get(column?)?);
    (!text.is_empty()).then_some(text)
}

/// `text.trim()`, at once when `text` starts and ends with a visible ASCII character (as most
/// fields do).
#[inline]
pub fn trim(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(a), Some(b)) if a.is_ascii_graphic() && b.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// Reads a JSON file whole (at most [`MAX_JSON_BYTES`]).
pub fn read_json(path: &Path) -> Result<serde_json::Value, Problem> {
    let name = display_name(path);
    let file = open_file(path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > MAX_JSON_BYTES {
        return Err(Problem::new(
            &name,
            0,
            "file",
            "",
            &format!(
                "is larger than {} MiB, the most a JSON file may be",
                MAX_JSON_BYTES >> 20
            ),
        ));
    }
    let mut text = Vec::with_capacity(size as usize);
    BufReader::new(file)
        .take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| Problem::new(&name, 0, "file", "", &format!("cannot be read: {e}")))?;
    serde_json::from_slice(&text).map_err(|e| {
        Problem::new(
            &name,
            e.line() as u64,
            "json",
            "",
            &format!("is not JSON: {e}"),
        )
    })
}

/// The objects of an API list: a JSON array, or a list object (`{"object": "list", "data":
/// [...]}`, as Stripe, Asaas and Vindi page them), or several pages in an array of lists.
/// `None` when the value is neither.
pub fn json_objects<'a>(
    value: &'a serde_json::Value,
    list_key: &str,
) -> Option<Vec<&'a serde_json::Value>> {
    match value {
        serde_json::Value::Array(items) => {
            if !items.is_empty()
                && items
                    .iter()
                    .all(|i| i.get(list_key).is_some_and(|d| d.is_array()))
            {
                return Some(
                    items
                        .iter()
                        .flat_map(|i| i[list_key].as_array().into_iter().flatten())
                        .collect(),
                );
            }
            Some(items.iter().collect())
        }
        serde_json::Value::Object(map) => map.get(list_key)?.as_array().map(|a| a.iter().collect()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_and_fields() {
        let mut t = Table::from_reader(
            "s.csv",
            Box::new(&b"Id, Customer_ID \nsub_1, cus_1\nsub_2,\n"[..]),
            TextEncoding::UTF_8,
        )
        .unwrap();
        let [id, customer] = t
            .columns(["id", "customer_id"], "a subscription table")
            .unwrap();
        let r = t.next_row().unwrap().unwrap();
        assert_eq!(field(&r, Some(id)), Some("sub_1"));
        assert_eq!(field(&r, Some(customer)), Some("cus_1"));
        let r = t.next_row().unwrap().unwrap();
        assert_eq!(field(&r, Some(customer)), None);
        for text in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\u{a0}a",
            "a\u{3000}",
            "\ta\n",
            "é",
            "x y",
        ] {
            assert_eq!(trim(text), text.trim());
        }
        let e = t.columns(["plan"], "a subscription table").unwrap_err();
        assert!(e.to_string().starts_with("s.csv:1: plan: : no such column"));
        let v: serde_json::Value =
            serde_json::from_str(r#"{"object":"list","data":[{"id":1}]}"#).unwrap();
        assert_eq!(json_objects(&v, "data").unwrap().len(), 1);
        let v: serde_json::Value =
            serde_json::from_str(r#"[{"data":[{"id":1}]},{"data":[{"id":2}]}]"#).unwrap();
        assert_eq!(json_objects(&v, "data").unwrap().len(), 2);
    }
}
