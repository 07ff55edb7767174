//! The latest book's files made in memory from the book in parts: the base's files (read
//! whole at some event) with the rows of the customers changed since taken from their latest
//! piece instead, every file in the database's order (each row's `ord`, then its key; no two
//! current rows share an `ord`). They are, byte for byte, the files a whole read of the
//! database at that event gives, so the importer (the one reader) reads the same book from
//! them: the reports that are not sums over customers (cohorts, opportunities, renewals,
//! filtered reports) read the latest book after a write without the database reading it whole
//! again.
//!
//! A file whose header has columns beyond its schema's (extra columns, kept as customer
//! attributes) is not merged: which extra columns a file has, and in what order, depends on
//! every row's. The latest book is then read whole, as before.

use crate::changed::customer_column;
use expansa_import::schema::{Schema, FILES};
use std::collections::{BTreeSet, HashMap};

/// A book's files as CSV (by file, in [`FILES`] order, absent files omitted), with each row's
/// place in the database's order when it is known.
#[derive(Default)]
pub(crate) struct BookText {
    pub files: Vec<(&'static str, Vec<u8>)>,
    /// Each row's `ord`, in file order, by file (every file of `files`); `None` when not known
    /// (files made by appending rows to others).
    pub ords: Option<HashMap<&'static str, Vec<i64>>>,
}

impl BookText {
    fn file(&self, name: &str) -> Option<(&[u8], &[i64])> {
        let bytes = self.files.iter().find(|(n, _)| *n == name)?.1.as_slice();
        let ords = self.ords.as_ref()?.get(name)?;
        Some((bytes, ords.as_slice()))
    }
}

/// One row of a file: where its text is, its `ord`, and its customer (for the files whose rows
/// are a customer's).
struct RowAt {
    start: usize,
    end: usize,
    ord: i64,
    customer: Option<String>,
}

/// The rows of `bytes`, a file of `schema` whose header is exactly the schema's columns, with
/// their `ords` (one per row) and the value of `customer` (a column of the schema) in each;
/// with where the header ends. `None` when the header has other columns or the rows and `ords`
/// do not pair up.
fn rows_of(
    schema: &Schema,
    bytes: &[u8],
    ords: &[i64],
    customer: &str,
) -> Option<(usize, Vec<RowAt>)> {
    let k = schema.position(customer)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let header = reader.byte_headers().ok()?;
    if header.len() != schema.columns.len()
        || header
            .iter()
            .zip(schema.columns)
            .any(|(h, c)| h != c.as_bytes())
    {
        return None;
    }
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
    (rows.len() == ords.len()).then_some((header_end, rows))
}

/// The files of the book that is `base` with the rows of the customers of `pieces` (oldest
/// first; a customer's rows are those of the last piece naming it) in place of theirs, each
/// file in `ord` order, with the rows' ords. `pieces` hold the files whose rows are a
/// customer's (the shared files are the base's). `None` when it cannot be made exactly: the
/// base's or a piece's order unknown, a header with extra columns, a piece's row without a
/// customer, two rows of one `ord`.
pub(crate) fn merge(
    base: &BookText,
    pieces: &[(&BTreeSet<String>, &BookText)],
) -> Option<BookText> {
    // The piece each changed customer's rows are taken from.
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (i, (customers, _)) in pieces.iter().enumerate() {
        for c in customers.iter() {
            owner.insert(c.as_str(), i);
        }
    }
    let mut files = Vec::with_capacity(base.files.len());
    let mut ords = HashMap::new();
    for schema in FILES {
        let Some(column) = customer_column(&schema) else {
            if let Some((bytes, file_ords)) = base.file(schema.file) {
                files.push((schema.file, bytes.to_vec()));
                ords.insert(schema.file, file_ords.to_vec());
            } else if base.files.iter().any(|(n, _)| *n == schema.file) {
                return None;
            }
            continue;
        };
        // The file is part of the book when the base or a piece has it (once a file held rows
        // it stays, header only when emptied).
        let in_base = base.files.iter().any(|(n, _)| *n == schema.file);
        let in_pieces = pieces
            .iter()
            .any(|(_, t)| t.files.iter().any(|(n, _)| *n == schema.file));
        if !in_base && !in_pieces {
            continue;
        }
        let mut header: Option<&[u8]> = None;
        let mut kept: Vec<(i64, &[u8])> = Vec::new();
        if in_base {
            let (bytes, file_ords) = base.file(schema.file)?;
            let (end, rows) = rows_of(&schema, bytes, file_ords, column)?;
            header = Some(&bytes[..end]);
            kept.reserve(rows.len());
            for row in rows {
                let changed = row
                    .customer
                    .as_deref()
                    .is_some_and(|c| owner.contains_key(c));
                if !changed {
                    kept.push((row.ord, &bytes[row.start..row.end]));
                }
            }
        }
        let mut fresh: Vec<(i64, &[u8])> = Vec::new();
        for (i, (_, text)) in pieces.iter().enumerate() {
            let Some((bytes, file_ords)) = text.file(schema.file) else {
                if text.files.iter().any(|(n, _)| *n == schema.file) {
                    return None;
                }
                continue;
            };
            let (end, rows) = rows_of(&schema, bytes, file_ords, column)?;
            header.get_or_insert(&bytes[..end]);
            for row in rows {
                let at = owner.get(row.customer.as_deref()?)?;
                if *at == i {
                    fresh.push((row.ord, &bytes[row.start..row.end]));
                }
            }
        }
        fresh.sort_unstable_by_key(|(ord, _)| *ord);
        let header = header?;
        let mut out =
            Vec::with_capacity(header.len() + kept.iter().map(|(_, r)| r.len()).sum::<usize>());
        out.extend_from_slice(header);
        let mut file_ords = Vec::with_capacity(kept.len() + fresh.len());
        let (mut a, mut b) = (kept.into_iter().peekable(), fresh.into_iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 == y.0 => return None,
                (Some(x), Some(y)) if x.0 < y.0 => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            let (ord, row) = next?;
            // Every row of a file ends its line (the writer's terminator), the last too.
            out.extend_from_slice(row);
            if !row.ends_with(b"\n") {
                out.push(b'\n');
            }
            file_ords.push(ord);
        }
        files.push((schema.file, out));
        ords.insert(schema.file, file_ords);
    }
    Some(BookText {
        files,
        ords: Some(ords),
    })
}

/// A piece's text: of a part's `files` (see `changed::Part`), those whose rows are a
/// customer's, with each row's order from `order`.
pub(crate) fn piece_text(
    files: Vec<(&'static str, Vec<u8>)>,
    mut order: HashMap<&'static str, Vec<(i64, String)>>,
) -> BookText {
    let mut ords = HashMap::new();
    let files: Vec<_> = files
        .into_iter()
        .filter(|(name, _)| {
            FILES
                .iter()
                .any(|s| s.file == *name && customer_column(s).is_some())
        })
        .inspect(|(name, _)| {
            let rows = order.remove(name).unwrap_or_default();
            ords.insert(*name, rows.into_iter().map(|(ord, _)| ord).collect());
        })
        .collect();
    BookText {
        files,
        ords: Some(ords),
    }
}
