//! The latest book's files made in memory from the book in parts: the base's files (read
//! whole at some event) with the rows of the customers changed since taken from their latest
//! piece instead, every file in the database's order (each row's `ord`, then its key; no two
//! current rows share an `ord`). They are, byte for byte, the files a whole read of the
//! database at that event gives, so the importer (the one reader) reads the same book from
//! them: the reports that are not sums over customers (cohorts, opportunities, renewals,
//! filtered reports) read the latest book after a write without the database reading it whole
//! again.
//!
//! A file's columns beyond its schema's (extra columns, kept as customer attributes) are, in a
//! whole read, every row's extra columns in the order first met, row by row in file order:
//! the rows' own lists of extra columns are kept (`BookText::extras`) to find them the same
//! way. When they differ from the base's (a row brought a new one, or the last row holding one
//! changed), every row's text would change: the latest book is then read whole, as before.

use crate::changed::customer_column;
use expansa_import::schema::{Schema, FILES};
use expansa_import::write_rows;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The extra columns of a file's rows that have any (by `ord`, in file order), each row's in
/// its own order.
pub(crate) type RowExtras = Vec<(i64, Arc<[String]>)>;

/// A book's files as CSV (by file, in [`FILES`] order, absent files omitted), with each row's
/// place in the database's order when it is known.
#[derive(Default)]
pub(crate) struct BookText {
    pub files: Vec<(&'static str, Vec<u8>)>,
    /// Each row's `ord`, in file order, by file (every file of `files`); `None` when not known
    /// (files made by appending rows to others).
    pub ords: Option<HashMap<&'static str, Vec<i64>>>,
    /// The extra columns of the rows that have any, by file (files without are left out).
    pub extras: HashMap<&'static str, RowExtras>,
}

impl BookText {
    fn file(&self, name: &str) -> Option<(&[u8], &[i64])> {
        let bytes = self.files.iter().find(|(n, _)| *n == name)?.1.as_slice();
        let ords = self.ords.as_ref()?.get(name)?;
        Some((bytes, ords.as_slice()))
    }

    fn has(&self, name: &str) -> bool {
        self.files.iter().any(|(n, _)| *n == name)
    }

    fn extras(&self, name: &str) -> &[(i64, Arc<[String]>)] {
        self.extras.get(name).map_or(&[], Vec::as_slice)
    }
}

/// The extra columns of `rows` (`ord` and extra values, in file order), for
/// [`BookText::extras`]; rows with the same list share it.
pub(crate) fn row_extras<'a>(
    rows: impl IntoIterator<Item = (i64, &'a [(String, String)])>,
) -> RowExtras {
    let mut lists: HashMap<Vec<&str>, Arc<[String]>> = HashMap::new();
    let mut out = Vec::new();
    for (ord, extra) in rows {
        if extra.is_empty() {
            continue;
        }
        let names: Vec<&str> = extra.iter().map(|(n, _)| n.as_str()).collect();
        let list = lists
            .entry(names)
            .or_insert_with_key(|names| names.iter().map(|n| n.to_string()).collect())
            .clone();
        out.push((ord, list));
    }
    out
}

/// One row of a file: where its text is, its `ord`, and its customer.
struct RowAt {
    start: usize,
    end: usize,
    ord: i64,
    customer: Option<String>,
}

/// A file of `schema` read for merging: where its header ends, the names of its extra
/// columns, and its rows with their `ords` (one per row) and the value of `customer` (a
/// column of the schema). `None` when the header does not start with the schema's columns or
/// the rows and `ords` do not pair up.
struct FileRows {
    header_end: usize,
    extra: Vec<String>,
    rows: Vec<RowAt>,
}

fn rows_of(schema: &Schema, bytes: &[u8], ords: &[i64], customer: &str) -> Option<FileRows> {
    let k = schema.position(customer)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let header = reader.byte_headers().ok()?;
    let n = schema.columns.len();
    if header.len() < n
        || header
            .iter()
            .zip(schema.columns)
            .any(|(h, c)| h != c.as_bytes())
    {
        return None;
    }
    let extra = header
        .iter()
        .skip(n)
        .map(|h| String::from_utf8(h.to_vec()).ok())
        .collect::<Option<Vec<String>>>()?;
    let mut rows: Vec<RowAt> = Vec::with_capacity(ords.len());
    let mut record = csv::ByteRecord::new();
    let mut header_end = bytes.len();
    loop {
        let start = usize::try_from(reader.position().byte()).ok()?;
        if rows.is_empty() {
            header_end = start.min(bytes.len());
        }
        if let Some(last) = rows.last_mut() {
            last.end = start;
        }
        if !reader.read_byte_record(&mut record).ok()? {
            if let Some(last) = rows.last_mut() {
                last.end = bytes.len();
            }
            break;
        }
        let ord = *ords.get(rows.len())?;
        let customer = record
            .get(k)
            .filter(|v| !v.is_empty())
            .map(|v| String::from_utf8_lossy(v).into_owned());
        rows.push(RowAt {
            start,
            end: start,
            ord,
            customer,
        });
    }
    (rows.len() == ords.len()).then_some(FileRows {
        header_end,
        extra,
        rows,
    })
}

/// A row of the merged file: its text, the extra columns that text is laid out by, and its own
/// extra columns.
struct Merged<'a> {
    ord: i64,
    text: &'a [u8],
    layout: &'a [String],
    own: Option<&'a Arc<[String]>>,
}

/// The rows of `rows` (a file of `text`), each with its own extra columns.
fn with_extras<'a>(
    text: &'a BookText,
    file: &'a FileRows,
    name: &str,
    bytes: &'a [u8],
    keep: impl Fn(&RowAt) -> Option<bool>,
) -> Option<Vec<Merged<'a>>> {
    let mut extras = text.extras(name).iter().peekable();
    let mut out = Vec::new();
    for row in &file.rows {
        while extras.next_if(|(ord, _)| *ord < row.ord).is_some() {}
        let own = extras
            .next_if(|(ord, _)| *ord == row.ord)
            .map(|(_, list)| list);
        if keep(row)? {
            out.push(Merged {
                ord: row.ord,
                text: &bytes[row.start..row.end],
                layout: &file.extra,
                own,
            });
        }
    }
    Some(out)
}

/// The files of the book that is `base` with the rows of the customers of `pieces` (oldest
/// first; a customer's rows are those of the last piece naming it) in place of theirs, each
/// file in `ord` order, with the rows' ords and extra columns. `pieces` hold the files whose
/// rows are a customer's; the shared files are `shared`'s (read at the latest event, after a
/// write to one of them), else the base's. `None` when it cannot be made exactly: the base's
/// or a piece's order unknown, a file's extra columns not the base's, a piece's row without a
/// customer, two rows of one `ord`.
pub(crate) fn merge(
    base: &BookText,
    pieces: &[(&BTreeSet<String>, &BookText)],
    shared: Option<&BookText>,
) -> Option<BookText> {
    // The piece each changed customer's rows are taken from.
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (i, (customers, _)) in pieces.iter().enumerate() {
        for c in customers.iter() {
            owner.insert(c.as_str(), i);
        }
    }
    // A piece all of whose customers are in later ones adds nothing.
    let live: Vec<Option<&BookText>> = pieces
        .iter()
        .enumerate()
        .map(|(i, (customers, text))| {
            let live = customers.iter().any(|c| owner.get(c.as_str()) == Some(&i));
            live.then_some(*text)
        })
        .collect();
    let mut out = BookText {
        ords: Some(HashMap::new()),
        ..BookText::default()
    };
    for schema in FILES {
        let merged = match customer_column(&schema) {
            None => {
                let from = shared.unwrap_or(base);
                if !from.has(schema.file) {
                    continue;
                }
                let (bytes, ords) = from.file(schema.file)?;
                let extras = from.extras(schema.file).to_vec();
                (bytes.to_vec(), ords.to_vec(), extras)
            }
            // The file is part of the book when the base or a piece has it (once a file held
            // rows it stays, header only when emptied).
            Some(_)
                if !base.has(schema.file) && !pieces.iter().any(|(_, t)| t.has(schema.file)) =>
            {
                continue
            }
            Some(column) => merged_file(&schema, column, base, &live, &owner)?,
        };
        let (bytes, ords, extras) = merged;
        out.files.push((schema.file, bytes));
        out.ords.as_mut()?.insert(schema.file, ords);
        if !extras.is_empty() {
            out.extras.insert(schema.file, extras);
        }
    }
    Some(out)
}

/// One file of customers' rows (of `schema`, whose customer is `column`) merged: the base's
/// rows of customers no piece holds, and the others' from the piece `owner` names (of
/// `pieces`; `None` for a piece that adds nothing), in `ord` order; its bytes, ords and extra
/// columns.
fn merged_file(
    schema: &Schema,
    column: &str,
    base: &BookText,
    pieces: &[Option<&BookText>],
    owner: &HashMap<&str, usize>,
) -> Option<(Vec<u8>, Vec<i64>, RowExtras)> {
    let base_rows = match base.has(schema.file) {
        true => {
            let (bytes, ords) = base.file(schema.file)?;
            Some((rows_of(schema, bytes, ords, column)?, bytes))
        }
        false => None,
    };
    let piece_rows = pieces
        .iter()
        .map(|text| match text.map(|t| (t, t.file(schema.file))) {
            Some((text, Some((bytes, ords)))) => {
                Some(Some((text, rows_of(schema, bytes, ords, column)?, bytes)))
            }
            Some((text, None)) if text.has(schema.file) => None,
            _ => Some(None),
        })
        .collect::<Option<Vec<_>>>()?;
    let kept = match &base_rows {
        Some((file, bytes)) => with_extras(base, file, schema.file, bytes, |row| {
            let changed = row
                .customer
                .as_deref()
                .is_some_and(|c| owner.contains_key(c));
            Some(!changed)
        })?,
        None => Vec::new(),
    };
    let mut fresh = Vec::new();
    for (i, rows) in piece_rows.iter().enumerate() {
        if let Some((text, file, bytes)) = rows {
            fresh.extend(with_extras(text, file, schema.file, bytes, |row| {
                Some(*owner.get(row.customer.as_deref()?)? == i)
            })?);
        }
    }
    fresh.sort_unstable_by_key(|m| m.ord);
    let mut rows: Vec<Merged> = Vec::with_capacity(kept.len() + fresh.len());
    let (mut a, mut b) = (kept.into_iter().peekable(), fresh.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.ord == y.ord => return None,
            (Some(x), Some(y)) if x.ord < y.ord => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        rows.push(next?);
    }
    // The extra columns a whole read writes: every row's, in the order first met.
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut columns: Vec<String> = Vec::new();
    for list in rows.iter().filter_map(|r| r.own) {
        for name in list.iter() {
            if seen.insert(name) {
                columns.push(name.clone());
            }
        }
    }
    // The base's rows keep their text only if the columns are the base's.
    if base_rows
        .as_ref()
        .is_some_and(|(file, _)| file.extra != columns)
    {
        return None;
    }
    let mut bytes = match &base_rows {
        Some((file, text)) => text[..file.header_end].to_vec(),
        None => write_rows(schema, &columns, []),
    };
    let mut ords = Vec::with_capacity(rows.len());
    let mut extras = Vec::new();
    for row in &rows {
        if *row.layout == *columns {
            bytes.extend_from_slice(row.text);
            // Every row of a file ends its line (the writer's terminator), the last too.
            if !row.text.ends_with(b"\n") {
                bytes.push(b'\n');
            }
        } else {
            bytes.extend_from_slice(&laid_out(schema, row, &columns)?);
        }
        ords.push(row.ord);
        if let Some(list) = row.own {
            extras.push((row.ord, list.clone()));
        }
    }
    Some((bytes, ords, extras))
}

/// `row`'s text written again with the extra columns `columns` (a piece's row, whose file had
/// other extra columns than the merged file), as the writer of a whole read writes it.
fn laid_out(schema: &Schema, row: &Merged, columns: &[String]) -> Option<Vec<u8>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(row.text);
    let mut record = csv::StringRecord::new();
    if !reader.read_record(&mut record).ok()? {
        return None;
    }
    let n = schema.columns.len();
    let values: Vec<Option<String>> = (0..n)
        .map(|k| record.get(k).filter(|v| !v.is_empty()).map(str::to_string))
        .collect();
    let extra: Vec<(String, String)> = row
        .layout
        .iter()
        .enumerate()
        .filter_map(|(k, name)| Some((name.clone(), record.get(n + k)?.to_string())))
        .collect();
    let written = write_rows(schema, columns, [(values.as_slice(), extra.as_slice())]);
    let body = written.iter().position(|&b| b == b'\n')? + 1;
    Some(written[body..].to_vec())
}

/// A part's files (see `changed::Part`) as text for merging: those whose rows are a
/// customer's (a piece's), and the shared ones, with each row's order from `order` and its
/// extra columns from `extras`.
pub(crate) fn split_part(
    files: Vec<(&'static str, Vec<u8>)>,
    mut order: HashMap<&'static str, Vec<(i64, String)>>,
    mut extras: HashMap<&'static str, RowExtras>,
) -> (BookText, BookText) {
    let (mut customers, mut shared) = (BookText::default(), BookText::default());
    let (mut customer_ords, mut shared_ords) = (HashMap::new(), HashMap::new());
    for (name, bytes) in files {
        let of_customers = FILES
            .iter()
            .any(|s| s.file == name && customer_column(s).is_some());
        let (text, ords) = match of_customers {
            true => (&mut customers, &mut customer_ords),
            false => (&mut shared, &mut shared_ords),
        };
        let rows = order.remove(name).unwrap_or_default();
        ords.insert(name, rows.into_iter().map(|(ord, _)| ord).collect());
        if let Some(e) = extras.remove(name).filter(|e| !e.is_empty()) {
            text.extras.insert(name, e);
        }
        text.files.push((name, bytes));
    }
    customers.ords = Some(customer_ords);
    shared.ords = Some(shared_ords);
    (customers, shared)
}
