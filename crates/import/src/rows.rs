//! The rows of one file as canonical text: what the store keeps of a validated book, so that
//! a book written back out reads as the same book.

use crate::field;
use crate::problem::BookErrors;
use crate::record;
use crate::schema::{ColumnKind, Schema};
use crate::table;
use crate::{BookSource, NoProgress, TextEncoding};

/// One row: the schema's columns (`None` when empty) and the other columns it had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRow {
    /// 1-based line of the row in its file.
    pub line: u64,
    pub values: Vec<Option<String>>,
    /// Columns the schema does not know, by lower-case name, non-empty values only.
    pub extra: Vec<(String, String)>,
}

/// Reads the rows of `schema`'s file from `source` (`Ok(None)` when the file is absent), a
/// UTF-8 file.
pub fn read_rows(
    source: &dyn BookSource,
    schema: &Schema,
) -> Result<Option<Vec<RawRow>>, BookErrors> {
    read_rows_in(source, schema, TextEncoding::UTF_8)
}

/// Reads the rows of `schema`'s file from `source` (`Ok(None)` when the file is absent), in
/// `encoding` as [`crate::ImportOptions::encoding`] reads it; the rows are UTF-8.
///
/// The file is read by the import's own reader ([`crate::read_book_from`]'s): the same records,
/// line numbers, header names, encodings, skipped rows and refused values, so that what the
/// store keeps of a book is the book that was validated. Values are trimmed; decimals are
/// rewritten canonically (`1.234,56` in a `;` file becomes `1234.56`, the written scale kept;
/// integers lose leading zeros and signs `+`). Meant for a book that has passed
/// [`crate::read_book_from`]: what the reader refuses (a file that is not UTF-8, a row of the
/// wrong shape, a value that does not parse) is still an error here, never a panic.
pub fn read_rows_in(
    source: &dyn BookSource,
    schema: &Schema,
    encoding: TextEncoding,
) -> Result<Option<Vec<RawRow>>, BookErrors> {
    let mut rows = Vec::new();
    let read = for_each_chunk(source, schema, encoding, &NoProgress, |chunk| {
        rows.extend(chunk)
    })?;
    Ok(read.map(|()| rows))
}

/// [`read_rows_in`] a chunk of rows at a time, in the file's order: `chunk` is given each
/// chunk as it is read (rows of about a few MiB of the file), so that a file of any size is
/// read in bounded memory. `Ok(None)` when the file is absent; the file's problems (every one,
/// after the whole file is read) are the error, and the chunks given before are then of a
/// book that does not read.
pub(crate) fn for_each_chunk(
    source: &dyn BookSource,
    schema: &Schema,
    encoding: TextEncoding,
    progress: &dyn crate::Progress,
    mut chunk: impl FnMut(Vec<RawRow>) + Send,
) -> Result<Option<()>, BookErrors> {
    let read = table::read(
        source,
        schema,
        progress,
        encoding,
        |r, rows: &mut Vec<RawRow>| rows.push(raw_row(schema, r)),
        |rows, _| chunk(rows),
    );
    read_outcome(source, read)
}

/// What a read of a table ([`table::read`]) comes to: `Ok(None)` when the file is absent,
/// its problems (located in `source`) when it has any.
pub(crate) fn read_outcome(
    source: &dyn BookSource,
    read: Result<Option<crate::Problems>, crate::Problems>,
) -> Result<Option<()>, BookErrors> {
    match read {
        Ok(Some(problems)) if problems.is_empty() => Ok(Some(())),
        Ok(Some(problems)) => Err(crate::located(source, problems.into_errors())),
        Ok(None) => Ok(None),
        Err(problems) => Err(crate::located(source, problems.into_errors())),
    }
}

/// One row of the reader as canonical text.
fn raw_row(schema: &Schema, r: &table::Row<'_>) -> RawRow {
    let mut values = vec![None; schema.columns.len()];
    for (k, value) in values.iter_mut().enumerate() {
        *value = match schema.kinds[k] {
            ColumnKind::Decimal => r.decimal(k, false).ok().flatten().map(|d| d.to_string()),
            ColumnKind::Integer => r
                .integer(k, false, i64::MIN)
                .ok()
                .flatten()
                .map(|n| n.to_string()),
            _ => r.text(k).map(str::to_string),
        };
    }
    let extra = r
        .extra_columns()
        .enumerate()
        .filter_map(|(k, name)| Some((name.to_string(), r.extra_text(k)?.to_string())))
        .collect();
    RawRow {
        line: r.line,
        values,
        extra,
    }
}

/// The names of the header of a file (its first record), lower-case and trimmed, as the import
/// reads them; `None` when `bytes` has no header or it is not UTF-8.
pub fn header_names(bytes: &[u8]) -> Option<Vec<String>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first_line = memchr::memchr2(b'\r', b'\n', bytes).unwrap_or(bytes.len());
    let separator = record::detect_separator(&bytes[..first_line]);
    let end = record::record_end(bytes, separator, true)?;
    let (mut out, mut fields) = (Vec::new(), Vec::new());
    record::parse_record(&bytes[..end], separator, &mut out, &mut fields);
    let text = std::str::from_utf8(&out).ok()?;
    Some(
        fields
            .iter()
            .map(|&(s, e)| text[s as usize..e as usize].trim_ascii().to_lowercase())
            .collect(),
    )
}

/// Whether a value written to column `column` of `schema` outside a CSV file (by the API)
/// can be kept: it parses as the column's kind, and it is text a database can store (see
/// [`crate::read_book_from`]'s rules: no NUL character; an id or other key value at most
/// [`crate::MAX_KEY_BYTES`] bytes, without U+001E or U+001F). `Err` says why not, as the
/// import says it of the same value in a file.
pub fn check_value(schema: &Schema, column: usize, text: &str) -> Result<(), String> {
    let text = text.trim_ascii();
    let key = schema.key.contains(&schema.columns[column]);
    let checked = match schema.kinds[column] {
        ColumnKind::Decimal => field::decimal(text, false).map(drop),
        ColumnKind::Integer => field::integer(text, i64::MIN).map(drop),
        ColumnKind::Date => field::date(text).map(drop),
        ColumnKind::Month => field::month(text).map(drop),
        ColumnKind::Text => Ok(()),
    };
    checked.map_err(|reason| reason.into_owned())?;
    table::check_text(text, key).map_err(|reason| reason.into_owned())
}

/// A value of a column of `kind` in canonical text (decimals as written with a point, whole
/// numbers without signs or leading zeros); `None` when it does not parse.
pub fn canonical(kind: ColumnKind, text: &str) -> Option<String> {
    match kind {
        ColumnKind::Decimal => field::decimal(text, false).ok().map(|d| d.to_string()),
        ColumnKind::Integer => field::integer(text, i64::MIN).ok().map(|n| n.to_string()),
        _ => Some(text.to_string()),
    }
}

/// The columns the schema does not know that rows have (their `extra`), in the order first
/// seen: what [`write_rows`] is given as `extra_columns`.
pub fn extra_columns<'a>(rows: impl IntoIterator<Item = &'a [(String, String)]>) -> Vec<String> {
    let mut seen: hashbrown::HashSet<&str> = hashbrown::HashSet::new();
    let mut columns = Vec::new();
    for extra in rows {
        for (name, _) in extra {
            if seen.insert(name) {
                columns.push(name.clone());
            }
        }
    }
    columns
}

/// Writes rows as a CSV file of `schema` (canonical columns, then `extra_columns`).
pub fn write_rows<'a>(
    schema: &Schema,
    extra_columns: &[String],
    rows: impl IntoIterator<Item = (&'a [Option<String>], &'a [(String, String)])>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let written = (|| {
        let mut w = CsvRows::new(schema, extra_columns, &mut out)?;
        for (values, extra) in rows {
            w.row(values, extra)?;
        }
        w.finish().map(drop)
    })();
    // Writing to a Vec cannot fail.
    debug_assert!(written.is_ok());
    out
}

/// Rows written as a CSV file of a schema to `out`, a row at a time: [`write_rows`]'s file.
pub(crate) struct CsvRows<'c, W: std::io::Write> {
    w: csv::Writer<W>,
    columns: usize,
    /// Where each extra column is written (a file may have thousands).
    at: hashbrown::HashMap<&'c str, usize>,
    extra: usize,
}

impl<'c, W: std::io::Write> CsvRows<'c, W> {
    /// Writes the header: `schema`'s columns, then `extra_columns`.
    pub(crate) fn new(
        schema: &Schema,
        extra_columns: &'c [String],
        out: W,
    ) -> Result<Self, std::io::Error> {
        let mut w = csv::WriterBuilder::new().from_writer(out);
        let header = schema
            .columns
            .iter()
            .copied()
            .chain(extra_columns.iter().map(String::as_str));
        w.write_record(header)?;
        let at = extra_columns
            .iter()
            .enumerate()
            .map(|(k, name)| (name.as_str(), k))
            .collect();
        Ok(CsvRows {
            w,
            columns: schema.columns.len(),
            at,
            extra: extra_columns.len(),
        })
    }

    /// Writes one row: its schema values, then its extra values in the header's places (a
    /// name the header does not have is not written).
    pub(crate) fn row(
        &mut self,
        values: &[Option<String>],
        extra: &[(String, String)],
    ) -> Result<(), std::io::Error> {
        let mut extra_values: Vec<&str> = vec![""; self.extra];
        for (name, value) in extra {
            if let Some(&k) = self.at.get(name.as_str()) {
                if extra_values[k].is_empty() {
                    extra_values[k] = value;
                }
            }
        }
        let record = values
            .iter()
            .take(self.columns)
            .map(|v| v.as_deref().unwrap_or(""))
            .chain(extra_values);
        Ok(self.w.write_record(record)?)
    }

    /// Flushes what is buffered and gives the writer back.
    pub(crate) fn finish(self) -> Result<W, std::io::Error> {
        self.w.into_inner().map_err(|e| e.into_error())
    }
}
