//! The rows of one file as canonical text: what the store keeps of a validated book, so that
//! a book written back out reads as the same book.

use crate::field;
use crate::problem::Problem;
use crate::schema::{ColumnKind, Schema};
use crate::table::detect_separator;
use crate::text;
use crate::{BookSource, TextEncoding};
use std::io::Read;

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
pub fn read_rows(source: &dyn BookSource, schema: &Schema) -> Result<Option<Vec<RawRow>>, Problem> {
    read_rows_in(source, schema, TextEncoding::UTF_8)
}

/// Reads the rows of `schema`'s file from `source` (`Ok(None)` when the file is absent), in
/// `encoding` as [`crate::ImportOptions::encoding`] reads it; the rows are UTF-8.
/// Values are trimmed; decimals are rewritten canonically (`1.234,56` in a `;` file becomes
/// `1234.56`, the written scale kept; integers lose leading zeros and signs `+`). Meant for a book that has passed [`crate::read_book_from`]:
/// a value that does not parse is still an error here, never a panic.
pub fn read_rows_in(
    source: &dyn BookSource,
    schema: &Schema,
    encoding: TextEncoding,
) -> Result<Option<Vec<RawRow>>, Problem> {
    let problem = |line: u64, column: &str, value: &str, reason: &str| Problem {
        file: schema.file.to_string(),
        line,
        column: column.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let Some((mut reader, _)) = source
        .open(schema.file)
        .map_err(|e| problem(0, "file", "", &format!("cannot read: {e}")))?
    else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| problem(0, "file", "", &format!("cannot read: {e}")))?;
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let decoded;
    let body = if encoding.is_utf8() {
        body
    } else {
        decoded = text::decode(body);
        decoded.as_bytes()
    };
    let header_end = memchr::memchr(b'\n', body).unwrap_or(body.len());
    let separator = detect_separator(&body[..header_end]);
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .delimiter(separator)
        .from_reader(body);
    let names: Vec<String> = csv
        .headers()
        .map_err(|e| problem(1, "header", "", &e.to_string()))?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let position: Vec<Option<usize>> = names.iter().map(|n| schema.position(n)).collect();
    let mut rows = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|e| problem(0, "row", "", &e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        // Rows of separators only are skipped, as the import skips them.
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let mut values = vec![None; schema.columns.len()];
        let mut extra = Vec::new();
        for (i, field) in record.iter().enumerate() {
            let text = field.trim();
            if text.is_empty() {
                continue;
            }
            match position.get(i).copied().flatten() {
                Some(k) => {
                    let value = match schema.kinds[k] {
                        ColumnKind::Decimal => field::decimal(text, separator == b';')
                            .map_err(|r| problem(line, schema.columns[k], text, &r))?
                            .to_string(),
                        ColumnKind::Integer => field::integer(text, i64::MIN)
                            .map_err(|r| problem(line, schema.columns[k], text, &r))?
                            .to_string(),
                        _ => text.to_string(),
                    };
                    values[k] = Some(value);
                }
                None => {
                    if let Some(name) = names.get(i).filter(|n| !n.is_empty()) {
                        if !extra.iter().any(|(n, _): &(String, String)| n == name) {
                            extra.push((name.clone(), text.to_string()));
                        }
                    }
                }
            }
        }
        rows.push(RawRow {
            line,
            values,
            extra,
        });
    }
    Ok(Some(rows))
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

/// Writes rows as a CSV file of `schema` (canonical columns, then `extra_columns`).
pub fn write_rows<'a>(
    schema: &Schema,
    extra_columns: &[String],
    rows: impl IntoIterator<Item = (&'a [Option<String>], &'a [(String, String)])>,
) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let header: Vec<&str> = schema
        .columns
        .iter()
        .copied()
        .chain(extra_columns.iter().map(String::as_str))
        .collect();
    // Writing to a Vec cannot fail.
    let _ = w.write_record(&header);
    for (values, extra) in rows {
        let record =
            values
                .iter()
                .map(|v| v.as_deref().unwrap_or(""))
                .chain(extra_columns.iter().map(|name| {
                    extra
                        .iter()
                        .find(|(n, _)| n == name)
                        .map_or("", |(_, v)| v.as_str())
                }));
        let _ = w.write_record(record);
    }
    w.into_inner().unwrap_or_default()
}
