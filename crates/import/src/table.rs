//! One CSV table of the book, read in chunks that are parsed in parallel.
//!
//! The file is read sequentially in blocks of about [`CHUNK_BYTES`]; each block is cut at the
//! last record boundary (a newline preceded by an even number of quote characters, so quoted
//! newlines stay inside their record) and a batch of blocks is parsed on the rayon pool.
//! Memory stays bounded by the batch, whatever the file's size, and every record keeps its
//! exact line number in the file.

use crate::field::{self, Bad, Field, Reason};
use crate::problem::Problem;
use crate::text;
use crate::{BookSource, Progress, TextEncoding};
use csv::ByteRecord;
use rayon::prelude::*;
use std::cell::RefCell;
use std::io::Read;

const CHUNK_BYTES: usize = 256 << 10;

pub(crate) use crate::schema::Schema;

/// How one file is laid out, learnt from its header.
pub(crate) struct Layout {
    file: &'static str,
    columns: &'static [&'static str],
    /// For each schema column, its position in the file's records.
    position: Vec<Option<usize>>,
    /// Columns the schema does not know: (lower-case name, position).
    extra: Vec<(String, usize)>,
    /// The header's names, lower-case, by position (for naming where a bad byte is).
    names: Vec<String>,
    /// The schema column that identifies a row (`id`), if the schema has one.
    id_column: Option<usize>,
    width: usize,
    separator: u8,
    decimal_comma: bool,
}

/// One record being parsed, with the problems found in it so far.
pub(crate) struct Row<'a> {
    /// The text the fields are cut from (valid UTF-8), and where each field lies.
    data: &'a str,
    fields: &'a [(u32, u32)],
    layout: &'a Layout,
    /// Line of the file where the record starts.
    pub line: u64,
    problems: &'a RefCell<Vec<Problem>>,
    /// A row whose fields do not line up with the header, reported once, as its shape: only
    /// its id is read (its other fields look empty), so that rows naming it are not reported
    /// too, and what is found in it is not reported.
    misshapen: bool,
}

impl<'a> Row<'a> {
    /// The raw text of a column, trimmed; `None` when absent or empty.
    pub fn text(&self, column: usize) -> Option<&'a str> {
        let (start, end) = *self.fields.get(self.layout.position[column]?)?;
        // Fields are cut at ASCII separators, so they always lie on character boundaries.
        let trimmed = self.data.get(start as usize..end as usize)?.trim_ascii();
        (!trimmed.is_empty()).then_some(trimmed)
    }

    /// The columns of the file that its schema does not know, in header order.
    pub fn extra_columns(&self) -> impl Iterator<Item = &'a str> {
        self.layout.extra.iter().map(|(name, _)| name.as_str())
    }

    /// The text of the `k`-th extra column, trimmed; `None` when empty.
    pub fn extra_text(&self, k: usize) -> Option<&'a str> {
        let (start, end) = *self.fields.get(self.layout.extra.get(k)?.1)?;
        let trimmed = self.data.get(start as usize..end as usize)?.trim_ascii();
        (!trimmed.is_empty()).then_some(trimmed)
    }

    /// Whether the row's shape was refused (then only its id is read).
    pub fn misshapen(&self) -> bool {
        self.misshapen
    }

    /// Whether the file has the column at all.
    pub fn has(&self, column: usize) -> bool {
        self.layout.position[column].is_some()
    }

    /// A column that must have a value.
    pub fn required(&self, column: usize) -> Field<&'a str> {
        match self.text(column) {
            Some(s) => Ok(Some(s)),
            None => {
                self.problem(column, "", "required value is missing");
                Err(Bad)
            }
        }
    }

    /// Parses a column's text with `parse`, reporting its error.
    pub fn parse<T>(
        &self,
        column: usize,
        required: bool,
        parse: impl FnOnce(&str) -> Result<T, Reason>,
    ) -> Field<T> {
        let text = if required {
            self.required(column)?
        } else {
            self.text(column)
        };
        match text.map(parse).transpose() {
            Ok(v) => Ok(v),
            Err(reason) => {
                self.problem(column, text.unwrap_or_default(), &reason);
                Err(Bad)
            }
        }
    }

    /// An exact decimal (decimal commas accepted in `;`-separated files).
    pub fn decimal(&self, column: usize, required: bool) -> Field<expansa_ledger::Decimal> {
        let comma = self.layout.decimal_comma;
        self.parse(column, required, |s| field::decimal(s, comma))
    }

    /// A `YYYY-MM-DD` date.
    pub fn date(&self, column: usize, required: bool) -> Field<expansa_ledger::Date> {
        self.parse(column, required, field::date)
    }

    /// A `YYYY-MM` month.
    pub fn month(&self, column: usize, required: bool) -> Field<expansa_ledger::Month> {
        self.parse(column, required, field::month)
    }

    /// A whole number, at least `min`.
    pub fn integer(&self, column: usize, required: bool, min: i64) -> Field<i64> {
        self.parse(column, required, |s| field::integer(s, min))
    }

    /// Records a problem with a column of this row.
    pub fn problem(&self, column: usize, value: &str, reason: &str) {
        self.problem_at(self.layout.columns[column], value, reason);
    }

    /// Records a problem under any column name (`row` for the row's shape).
    pub fn problem_at(&self, column: &str, value: &str, reason: &str) {
        self.problems.borrow_mut().push(Problem {
            file: self.layout.file.to_string(),
            line: self.line,
            column: column.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        });
    }
}

/// Reads `schema.file` from `source` if it is there: `Ok(None)` when it is not, else the problems
/// found in its rows.
///
/// `row` is called for every record, in parallel across chunks, with the chunk's accumulator;
/// `merge` then receives each chunk's accumulator in file order, with an estimate of the
/// file's total number of rows (for reserving room). Merging a batch runs while the next
/// batch is parsed.
pub(crate) fn read<C, F, M>(
    source: &dyn BookSource,
    schema: &Schema,
    progress: &dyn Progress,
    encoding: TextEncoding,
    row: F,
    mut merge: M,
) -> Result<Option<Vec<Problem>>, Problem>
where
    C: Default + Send,
    F: Fn(&Row<'_>, &mut C) + Sync,
    M: FnMut(C, usize) + Send,
{
    let (mut file, size) = match source.open(schema.file) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Ok(None),
        Err(e) => return Err(io_problem(schema.file, &e)),
    };
    progress.start(schema.file, size);
    let io = |e: std::io::Error| io_problem(schema.file, &e);

    // The header: everything up to the first newline.
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_BYTES + (64 << 10));
    let eof = fill(&mut *file, &mut buf, CHUNK_BYTES).map_err(io)?;
    let header_end = memchr::memchr(b'\n', &buf).map_or(buf.len(), |i| i + 1);
    let (layout, mut not_utf8) = match Layout::from_header(schema, &buf[..header_end], encoding) {
        Ok(l) => l,
        Err(problems) => {
            progress.finish();
            return Ok(Some(problems));
        }
    };
    buf.drain(..header_end);
    progress.advance(header_end as u64);

    let mut chunker = Chunker {
        file,
        buf,
        eof,
        next_line: 2,
        rows_seen: 0,
        bytes_seen: 0,
        batch_len: rayon::current_num_threads().max(1) * 8,
    };
    let mut problems = Vec::new();
    let mut pending: Vec<C> = Vec::new();
    let mut batch = chunker
        .next_batch(progress)
        .map_err(|e| io_problem(schema.file, &e))?;
    while !batch.is_empty() {
        // Merge the previous batch and read the next one while this one is parsed.
        let estimate = chunker.estimated_rows(size);
        let (next, parsed) = rayon::join(
            || {
                for chunk in pending.drain(..) {
                    merge(chunk, estimate);
                }
                chunker.next_batch(progress)
            },
            || {
                batch
                    .par_iter()
                    .map(|(first_line, bytes)| parse_chunk(&layout, *first_line, bytes, &row))
                    .collect::<Vec<_>>()
            },
        );
        for (chunk, found, bad) in parsed {
            pending.push(chunk);
            problems.extend(found);
            NotUtf8::merge(&mut not_utf8, bad);
        }
        batch = next.map_err(|e| io_problem(schema.file, &e))?;
    }
    let estimate = chunker.estimated_rows(size);
    for chunk in pending {
        merge(chunk, estimate);
    }
    progress.finish();
    if let Some(bad) = not_utf8.filter(|_| encoding.is_utf8()) {
        problems.push(bad.problem(schema.file));
    }
    Ok(Some(problems))
}

/// Where a file first fails to be UTF-8, and whether what is not UTF-8 reads cleanly as
/// Windows-1252. One is reported per file, in place of a problem per value.
pub(crate) struct NotUtf8 {
    line: u64,
    column: String,
    /// The value holding the first bad byte, read as Windows-1252.
    value: String,
    /// Every record that is not UTF-8 is plain text in Windows-1252 (no control characters,
    /// none of the five bytes Windows-1252 leaves undefined).
    windows_1252: bool,
}

impl NotUtf8 {
    fn merge(into: &mut Option<NotUtf8>, other: Option<NotUtf8>) {
        match (into.as_mut(), other) {
            (_, None) => {}
            (None, Some(o)) => *into = Some(o),
            (Some(a), Some(b)) => {
                let clean = a.windows_1252 && b.windows_1252;
                if b.line < a.line {
                    *a = b;
                }
                a.windows_1252 = clean;
            }
        }
    }

    /// Notes a record that is not UTF-8: `data` holds its fields at `fields`, the first bad
    /// byte is at `offset`, and the record starts on file line `line`.
    fn note(
        into: &mut Option<NotUtf8>,
        layout: &Layout,
        line: u64,
        data: &[u8],
        fields: &[(u32, u32)],
        offset: usize,
    ) {
        let windows_1252 = text::looks_like_windows_1252(data);
        if let Some(first) = into {
            first.windows_1252 &= windows_1252;
            return;
        }
        let k = fields
            .iter()
            .rposition(|&(start, _)| start as usize <= offset)
            .unwrap_or(0);
        let (start, end) = fields.get(k).copied().unwrap_or((0, data.len() as u32));
        let field = &data[start as usize..end as usize];
        *into = Some(NotUtf8 {
            line: line + memchr::memchr_iter(b'\n', &data[..offset]).count() as u64,
            column: layout.name_of(k).to_string(),
            value: text::decode(field).trim_ascii().to_string(),
            windows_1252,
        });
    }

    fn problem(self, file: &str) -> Problem {
        let reason = if self.windows_1252 {
            "the file is not UTF-8; it looks like Windows-1252 (Latin-1), as Excel saves CSV in \
             Brazil: pass --encoding windows-1252, or save it as CSV UTF-8"
        } else {
            "the file is not UTF-8 (nor plain Windows-1252 text): save it as CSV UTF-8"
        };
        Problem {
            file: file.to_string(),
            line: self.line,
            column: self.column,
            value: self.value,
            reason: reason.into(),
        }
    }
}

/// Cuts a file into chunks that end at record boundaries, a batch at a time.
struct Chunker<'a> {
    file: Box<dyn Read + Send + 'a>,
    buf: Vec<u8>,
    eof: bool,
    /// File line of the next chunk's first record.
    next_line: u64,
    rows_seen: u64,
    bytes_seen: u64,
    batch_len: usize,
}

impl Chunker<'_> {
    /// The next chunks with the file line each starts at; empty at the end of the file.
    fn next_batch(&mut self, progress: &dyn Progress) -> std::io::Result<Vec<(u64, Vec<u8>)>> {
        let mut batch = Vec::with_capacity(self.batch_len);
        while batch.len() < self.batch_len && !(self.eof && self.buf.is_empty()) {
            if !self.eof && self.buf.len() < CHUNK_BYTES {
                self.eof = fill(&mut *self.file, &mut self.buf, CHUNK_BYTES)?;
            }
            let cut = if self.eof {
                self.buf.len()
            } else {
                match last_record_end(&self.buf) {
                    Some(cut) => cut,
                    None => {
                        // One record longer than the buffer: read more.
                        let want = self.buf.len() * 2;
                        self.eof = fill(&mut *self.file, &mut self.buf, want)?;
                        continue;
                    }
                }
            };
            let rest = self.buf.split_off(cut);
            let chunk = std::mem::replace(&mut self.buf, rest);
            let lines = memchr::memchr_iter(b'\n', &chunk).count() as u64;
            progress.advance(chunk.len() as u64);
            self.rows_seen += lines;
            self.bytes_seen += chunk.len() as u64;
            batch.push((self.next_line, chunk));
            self.next_line += lines;
        }
        Ok(batch)
    }

    /// The file's number of rows, estimated from what was read so far.
    fn estimated_rows(&self, size: u64) -> usize {
        (u128::from(self.rows_seen) * u128::from(size) / u128::from(self.bytes_seen.max(1)))
            as usize
    }
}

fn parse_chunk<C: Default, F: Fn(&Row<'_>, &mut C)>(
    layout: &Layout,
    first_line: u64,
    bytes: &[u8],
    row: &F,
) -> (C, Vec<Problem>, Option<NotUtf8>) {
    let problems = RefCell::new(Vec::new());
    let mut acc = C::default();
    let mut not_utf8 = None;
    if u32::try_from(bytes.len()).is_err() {
        problems.borrow_mut().push(Problem {
            file: layout.file.to_string(),
            line: first_line,
            column: "row".into(),
            value: String::new(),
            reason: "a record longer than 4 GiB".into(),
        });
        return (acc, problems.into_inner(), not_utf8);
    }
    let mut emit = |line: u64, data: &str, fields: &[(u32, u32)]| {
        let blank = |&(start, end): &(u32, u32)| {
            data.as_bytes()[start as usize..end as usize]
                .trim_ascii()
                .is_empty()
        };
        // A blank line, the empty piece after the last newline, or a row of separators
        // (spreadsheets export the empty rows of a formatted range so).
        if fields.iter().all(blank) {
            return;
        }
        // Trailing empty columns (a formatted range wider than the table) are no values.
        let misshapen = fields.len() < layout.width
            || (fields.len() > layout.width && !fields[layout.width..].iter().all(blank));
        let r = Row {
            data,
            fields,
            line,
            layout,
            problems: &problems,
            misshapen,
        };
        if !misshapen {
            row(&r, &mut acc);
            return;
        }
        r.problem_at(
            "row",
            &fields.len().to_string(),
            &format!(
                "has {} fields where the header has {}",
                fields.len(),
                layout.width
            ),
        );
        // Only the id is read; the rest looks empty and what is found goes nowhere.
        let id = layout.id_column.and_then(|k| layout.position[k]);
        let masked: Vec<(u32, u32)> = (0..layout.width)
            .map(|i| match fields.get(i) {
                Some(&field) if Some(i) == id => field,
                _ => (0, 0),
            })
            .collect();
        let ignored = RefCell::new(Vec::new());
        row(
            &Row {
                fields: &masked,
                problems: &ignored,
                ..r
            },
            &mut acc,
        );
    };
    let mut fields: Vec<(u32, u32)> = Vec::with_capacity(layout.width + 1);
    let mut decoded_fields: Vec<(u32, u32)> = Vec::with_capacity(layout.width + 1);
    let split = |record: &[u8], fields: &mut Vec<(u32, u32)>| {
        fields.clear();
        let mut start = 0u32;
        for (i, &b) in record.iter().enumerate() {
            if b == layout.separator {
                fields.push((start, i as u32));
                start = i as u32 + 1;
            }
        }
        fields.push((start, record.len() as u32));
    };
    if memchr::memchr(b'"', bytes).is_none() {
        // No quoting anywhere: every newline ends a record and every separator ends a field.
        // UTF-8 is checked once for the whole chunk when it is valid, else record by record.
        if let Ok(text) = std::str::from_utf8(bytes) {
            for (line, record) in (first_line..).zip(text.split('\n')) {
                let record = record.strip_suffix('\r').unwrap_or(record);
                split(record.as_bytes(), &mut fields);
                emit(line, record, &fields);
            }
        } else {
            for (line, record) in (first_line..).zip(bytes.split(|&b| b == b'\n')) {
                let record = record.strip_suffix(b"\r").unwrap_or(record);
                split(record, &mut fields);
                match std::str::from_utf8(record) {
                    Ok(text) => emit(line, text, &fields),
                    Err(e) => {
                        NotUtf8::note(
                            &mut not_utf8,
                            layout,
                            line,
                            record,
                            &fields,
                            e.valid_up_to(),
                        );
                        let text = text::decode_fields(record, &fields, &mut decoded_fields);
                        emit(line, &text, &decoded_fields);
                    }
                }
            }
        }
        return (acc, problems.into_inner(), not_utf8);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(layout.separator)
        .from_reader(bytes);
    let mut record = ByteRecord::new();
    loop {
        let line = first_line + reader.position().line() - 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                problems.borrow_mut().push(Problem {
                    file: layout.file.to_string(),
                    line,
                    column: "row".into(),
                    value: String::new(),
                    reason: format!("unreadable CSV: {e}"),
                });
                continue;
            }
        }
        fields.clear();
        fields.extend((0..record.len()).map(|i| {
            let r = record.range(i).expect("field in range");
            (r.start as u32, r.end as u32)
        }));
        match std::str::from_utf8(record.as_slice()) {
            Ok(text) => emit(line, text, &fields),
            Err(e) => {
                let data = record.as_slice();
                NotUtf8::note(&mut not_utf8, layout, line, data, &fields, e.valid_up_to());
                let text = text::decode_fields(data, &fields, &mut decoded_fields);
                emit(line, &text, &decoded_fields);
            }
        }
    }
    (acc, problems.into_inner(), not_utf8)
}

impl Layout {
    /// The layout of a file from its header line, and where the header is not UTF-8.
    fn from_header(
        schema: &Schema,
        header: &[u8],
        encoding: TextEncoding,
    ) -> Result<(Layout, Option<NotUtf8>), Vec<Problem>> {
        let problem = |column: &str, value: &str, reason: &str| Problem {
            file: schema.file.to_string(),
            line: 1,
            column: column.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if header.starts_with(b"\xFF\xFE") || header.starts_with(b"\xFE\xFF") {
            return Err(vec![problem(
                "header",
                "",
                "the file is UTF-16, not UTF-8: save it as CSV UTF-8",
            )]);
        }
        let header = header.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(header);
        if std::str::from_utf8(header).is_err() && !text::looks_like_windows_1252(header) {
            // Not text: whatever its columns seem to be would only follow from that.
            return Err(vec![problem(
                "header",
                "",
                "the file is not UTF-8 (nor plain Windows-1252 text): save it as CSV UTF-8",
            )]);
        }
        let separator = detect_separator(header);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(separator)
            .from_reader(header);
        let mut record = ByteRecord::new();
        if !matches!(reader.read_byte_record(&mut record), Ok(true)) {
            return Err(vec![problem("header", "", "the file has no header row")]);
        }
        let mut not_utf8 = None;
        let names: Vec<String> = record
            .iter()
            .map(|f| {
                let f = f.trim_ascii();
                if std::str::from_utf8(f).is_err() && not_utf8.is_none() {
                    not_utf8 = Some(NotUtf8 {
                        line: 1,
                        column: "header".into(),
                        value: text::decode(f).into_owned(),
                        windows_1252: true,
                    });
                }
                text::decode(f).to_lowercase()
            })
            .collect();
        let mut problems = Vec::new();
        let mut position = vec![None; schema.columns.len()];
        let mut extra: Vec<(String, usize)> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            if let Some(k) = schema.columns.iter().position(|c| c == name) {
                if position[k].is_some() {
                    problems.push(problem(name, name, "column appears twice in the header"));
                }
                position[k] = Some(i);
            } else if !name.is_empty() && !extra.iter().any(|(n, _)| n == name) {
                extra.push((name.clone(), i));
            }
        }
        for req in schema.required {
            let k = schema
                .columns
                .iter()
                .position(|c| c == req)
                .expect("required is known");
            if position[k].is_none() {
                problems.push(problem(
                    req,
                    "",
                    "required column is missing from the header",
                ));
            }
        }
        if !problems.is_empty() {
            // Said now: the rows, where it would be found too, are not read.
            if let Some(bad) = not_utf8.filter(|_| encoding.is_utf8()) {
                problems.push(bad.problem(schema.file));
            }
            return Err(problems);
        }
        Ok((
            Layout {
                file: schema.file,
                columns: schema.columns,
                position,
                extra,
                id_column: schema.position("id"),
                width: names.len(),
                names,
                separator,
                decimal_comma: separator == b';',
            },
            not_utf8,
        ))
    }

    /// The header's name of the `k`-th field (`row` past the header).
    fn name_of(&self, k: usize) -> &str {
        match self.names.get(k) {
            Some(name) if !name.is_empty() => name,
            _ => "row",
        }
    }
}

/// `;` when the header has more semicolons than commas outside quotes, else `,`.
pub(crate) fn detect_separator(header: &[u8]) -> u8 {
    let (mut commas, mut semis, mut quoted) = (0, 0, false);
    for &b in header {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semis += 1,
            _ => {}
        }
    }
    if semis > commas {
        b';'
    } else {
        b','
    }
}

/// The end (exclusive) of the last complete record in `buf`, which starts at a record
/// boundary; `None` when no record ends in `buf`.
fn last_record_end(buf: &[u8]) -> Option<usize> {
    if memchr::memchr(b'"', buf).is_none() {
        return memchr::memrchr(b'\n', buf).map(|i| i + 1);
    }
    let mut quoted = false;
    let mut last = None;
    for i in memchr::memchr2_iter(b'"', b'\n', buf) {
        if buf[i] == b'"' {
            quoted = !quoted;
        } else if !quoted {
            last = Some(i + 1);
        }
    }
    last
}

/// Reads until `buf` holds at least `want` bytes or the file ends; returns whether it ended.
fn fill(file: &mut dyn Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    let mut block = [0u8; 64 << 10];
    while buf.len() < want {
        let n = file.read(&mut block)?;
        if n == 0 {
            return Ok(true);
        }
        buf.extend_from_slice(&block[..n]);
    }
    Ok(false)
}

fn io_problem(file: &str, e: &std::io::Error) -> Problem {
    Problem {
        file: file.to_string(),
        line: 0,
        column: "file".into(),
        value: String::new(),
        reason: format!("cannot read: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_boundaries_respect_quotes() {
        assert_eq!(last_record_end(b"a,b\nc,d\ne"), Some(8));
        assert_eq!(last_record_end(b"a,\"x\ny\"\nc,\"d\ne"), Some(8));
        assert_eq!(last_record_end(b"a,\"x\ny"), None);
        assert_eq!(detect_separator(b"id;customer_id;unit_price\n"), b';');
        assert_eq!(detect_separator(b"id,\"a;b;c\"\n"), b',');
    }
}
