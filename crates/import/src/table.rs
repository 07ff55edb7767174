//! One CSV table of the book, read in chunks that are parsed in parallel.
//!
//! The header is read first, whole (up to [`MAX_RECORD_BYTES`]). Then the file is read
//! sequentially in blocks of about [`CHUNK_BYTES`]; each block is cut after its last complete
//! record (see [`crate::record`]: quote-aware, `\n`, `\r\n` and a lone `\r` all end lines) and a
//! batch of blocks is parsed on the rayon pool. Memory stays bounded by the batch, whatever the
//! file's size, and every record keeps its exact line number in the file.

use crate::field::{self, Bad, Field, Reason};
use crate::problem::{Problem, Problems};
use crate::record;
use crate::text;
use crate::{BookSource, Progress, TextEncoding};
use rayon::prelude::*;
use std::cell::RefCell;
use std::io::Read;

const CHUNK_BYTES: usize = 256 << 10;

/// The longest record read, a header or a row (quoted line breaks included): a longer one is
/// refused, and the rest of its file is not read (an unclosed quote is the usual cause).
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// The longest id or other key value (`id`, the `customer_id` and `product_id` of prices and
/// usage, a spend's `channel`): the store indexes them (PostgreSQL's index entries hold about
/// 2,700 bytes, and a key joins up to three values).
pub const MAX_KEY_BYTES: usize = 1000;

/// Where a field refused before its row is read lies: nowhere, so it reads as absent.
const REFUSED: (u32, u32) = (u32::MAX, u32::MAX);

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
    /// Whether the column at a position holds a key value (see [`MAX_KEY_BYTES`]).
    key: Vec<bool>,
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
    problems: &'a RefCell<Problems>,
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
                // A value refused as text (a NUL in it) was reported as such.
                if !self.refused(column) {
                    self.problem(column, "", "required value is missing");
                }
                Err(Bad)
            }
        }
    }

    /// Whether the column's value was refused before the row was read (see [`REFUSED`]).
    fn refused(&self, column: usize) -> bool {
        self.layout.position[column].and_then(|p| self.fields.get(p)) == Some(&REFUSED)
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
        self.problems.borrow_mut().push(Problem::new(
            self.layout.file,
            self.line,
            column,
            value,
            reason,
        ));
    }
}

/// Reads `schema.file` from `source` if it is there: `Ok(None)` when it is not, else the problems
/// found in its rows; `Err` with the problems that kept its rows from being read (a header or a
/// Parquet schema refused, a read error): then what other tables say of its rows (a customer
/// it would list) is not known, and is not reported.
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
    merge: M,
) -> Result<Option<Problems>, Problems>
where
    C: Default + Send,
    F: Fn(&Row<'_>, &mut C) + Sync,
    M: FnMut(C, usize) + Send,
{
    read_in_chunks(source, schema, progress, encoding, CHUNK_BYTES, row, merge)
}

/// [`read`], in chunks of about `chunk_bytes`.
pub(crate) fn read_in_chunks<C, F, M>(
    source: &dyn BookSource,
    schema: &Schema,
    progress: &dyn Progress,
    encoding: TextEncoding,
    chunk_bytes: usize,
    row: F,
    mut merge: M,
) -> Result<Option<Problems>, Problems>
where
    C: Default + Send,
    F: Fn(&Row<'_>, &mut C) + Sync,
    M: FnMut(C, usize) + Send,
{
    let (mut file, size) = match source.open(schema.file) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Ok(None),
        Err(e) => {
            // A source that refused the file with problems of its own (a Parquet file's
            // columns of the wrong type).
            if let Some(found) = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<crate::parquet::FileProblems>())
            {
                let mut problems = Problems::default();
                problems.extend(found.0.iter().cloned());
                return Err(problems);
            }
            return Err(Problems::of(io_problem(schema.file, &e)));
        }
    };
    // The header's line: 1 in a file, a workbook sheet's row (the text starts at the header).
    let first_line = source.first_line(schema.file).max(1);
    progress.start(schema.file, size);
    let io = |e: std::io::Error| Problems::of(io_problem(schema.file, &e));
    let mut problems = Problems::default();
    let too_long = |line: u64, what: &str| {
        Problem::new(
            schema.file,
            line,
            what,
            "",
            &format!(
                "a record longer than {} MiB (is a quote left open?): the rest of the file is \
                 not read",
                MAX_RECORD_BYTES >> 20
            ),
        )
    };

    // The header: the first record, however long (up to the longest record).
    let mut buf: Vec<u8> = Vec::with_capacity(chunk_bytes + (64 << 10));
    // At least the BOM's three bytes, to tell whether it is there.
    let mut eof = fill(&mut *file, &mut buf, chunk_bytes.max(3)).map_err(io)?;
    let bom = if buf.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    // The separator, from the first line, and the end of the first record (quotes may carry
    // it over several lines), reading more of the file until both are there.
    let (separator, header_end) = loop {
        let body = &buf[bom..];
        let separator = match memchr::memchr2(b'\r', b'\n', body) {
            Some(i) => Some(record::detect_separator(&body[..i])),
            None if eof => Some(record::detect_separator(body)),
            None => None,
        };
        let found =
            separator.and_then(|sep| record::record_end(body, sep, eof).map(|n| (sep, bom + n)));
        if let Some(found) = found {
            break found;
        }
        if buf.len() > MAX_RECORD_BYTES {
            problems.push(too_long(first_line, "header"));
            progress.finish();
            return Err(problems);
        }
        let want = grown(buf.len());
        eof = fill(&mut *file, &mut buf, want).map_err(io)?;
    };
    let (mut names, mut name_fields) = (Vec::new(), Vec::new());
    let (_, header_lines) = record::parse_record(
        &buf[bom..header_end],
        separator,
        &mut names,
        &mut name_fields,
    );
    let header = (&buf[..header_end], names.as_slice(), name_fields.as_slice());
    let (layout, mut not_utf8) =
        match Layout::from_header(schema, header, (separator, first_line), encoding) {
            Ok(l) => l,
            Err(found) => {
                progress.finish();
                problems.extend(found);
                return Err(problems);
            }
        };
    buf.drain(..header_end);
    progress.advance(header_end as u64);

    let mut chunker = Chunker {
        file,
        buf,
        eof,
        chunk_bytes,
        separator,
        next_line: first_line + header_lines.max(1),
        rows_seen: 0,
        bytes_seen: 0,
        batch_len: rayon::current_num_threads().max(1) * 8,
        too_long: None,
    };
    let mut pending: Vec<C> = Vec::new();
    let mut batch = chunker.next_batch(progress).map_err(io)?;
    while !batch.is_empty() {
        // Merge the previous batch and read the next one while this one is parsed.
        let estimate = chunker.estimated_rows(size);
        // A file read whole in one chunk (a store's part of the book, a small book) is parsed
        // on this thread: handing it to the thread pool would cost more than the parse.
        let alone = batch.len() == 1 && chunker.eof && chunker.buf.is_empty();
        let mut read_next = || {
            for chunk in pending.drain(..) {
                merge(chunk, estimate);
            }
            chunker.next_batch(progress)
        };
        let parse = || {
            batch
                .par_iter()
                .map(|(first_line, bytes)| parse_chunk(&layout, *first_line, bytes, &row))
                .collect::<Vec<_>>()
        };
        let (next, parsed) = if alone {
            (read_next(), parse())
        } else {
            rayon::join(read_next, parse)
        };
        for (chunk, found, bad) in parsed {
            pending.push(chunk);
            problems.merge(found);
            NotUtf8::merge(&mut not_utf8, bad);
        }
        batch = next.map_err(io)?;
    }
    let estimate = chunker.estimated_rows(size);
    for chunk in pending {
        merge(chunk, estimate);
    }
    progress.finish();
    if let Some(line) = chunker.too_long {
        problems.push(too_long(line, "row"));
    }
    if let Some(bad) = not_utf8.filter(|_| encoding.is_utf8()) {
        problems.push(bad.problem(schema.file));
    }
    Ok(Some(problems))
}

/// How much a buffer that holds no whole record grows to.
fn grown(len: usize) -> usize {
    (len * 2).clamp(CHUNK_BYTES, MAX_RECORD_BYTES + 1)
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
            line: line + record::line_ends(&data[..offset]),
            column: layout.name_of(k).to_string(),
            value: text::decode(field).trim_ascii().to_string(),
            windows_1252,
        });
    }

    fn problem(self, file: &str) -> Problem {
        let reason = if self.windows_1252 {
            NOT_UTF8_BUT_1252
        } else {
            NOT_UTF8
        };
        Problem::new(file, self.line, &self.column, &self.value, reason)
    }
}

/// Why a file that is not UTF-8 is refused, when it reads as Windows-1252 text.
const NOT_UTF8_BUT_1252: &str = "the file is not UTF-8; it looks like Windows-1252 (Latin-1), as \
                                 Excel saves CSV in Brazil: pass --encoding windows-1252, or save \
                                 it as CSV UTF-8";
/// Why a file that is not UTF-8 is refused, when it does not read as Windows-1252 text either.
const NOT_UTF8: &str = "the file is not UTF-8 (nor plain Windows-1252 text): save it as CSV UTF-8";

/// The reason of a file that is not UTF-8 said of a table's string column (a Parquet file's or
/// an Arrow table's, whose strings are given to the reader as they are); `None` for another
/// reason.
pub(crate) fn not_utf8_in_strings(reason: &str) -> Option<&'static str> {
    match reason {
        NOT_UTF8_BUT_1252 => Some(
            "a string column holds bytes that are not UTF-8 (here first); they look like \
             Windows-1252 (Latin-1): pass --encoding windows-1252 to read them so, or write the \
             column as UTF-8 strings",
        ),
        NOT_UTF8 => Some(
            "a string column holds bytes that are not UTF-8 (here first), nor plain \
             Windows-1252 text: write the column as UTF-8 strings",
        ),
        _ => None,
    }
}

/// Cuts a file into chunks that end at record boundaries, a batch at a time.
struct Chunker<'a> {
    file: Box<dyn Read + Send + 'a>,
    buf: Vec<u8>,
    eof: bool,
    chunk_bytes: usize,
    separator: u8,
    /// File line of the next chunk's first record.
    next_line: u64,
    rows_seen: u64,
    bytes_seen: u64,
    batch_len: usize,
    /// The line of a record longer than [`MAX_RECORD_BYTES`], where reading stopped.
    too_long: Option<u64>,
}

impl Chunker<'_> {
    /// The next chunks with the file line each starts at; empty at the end of the file.
    fn next_batch(&mut self, progress: &dyn Progress) -> std::io::Result<Vec<(u64, Vec<u8>)>> {
        let mut batch = Vec::with_capacity(self.batch_len);
        while batch.len() < self.batch_len && !(self.eof && self.buf.is_empty()) {
            if !self.eof && self.buf.len() < self.chunk_bytes {
                self.eof = fill(&mut *self.file, &mut self.buf, self.chunk_bytes)?;
            }
            let cut = if self.eof {
                self.buf.len()
            } else {
                match record::last_record_end(&self.buf, self.separator) {
                    Some(cut) => cut,
                    None if self.buf.len() > MAX_RECORD_BYTES => {
                        // Nothing after it can be told apart: stop here.
                        self.too_long = Some(self.next_line);
                        self.buf = Vec::new();
                        self.eof = true;
                        break;
                    }
                    None => {
                        // One record longer than the buffer: read more.
                        let want = (self.buf.len() * 2)
                            .max(self.buf.len() + self.chunk_bytes)
                            .min(MAX_RECORD_BYTES + 1);
                        self.eof = fill(&mut *self.file, &mut self.buf, want)?;
                        continue;
                    }
                }
            };
            let rest = self.buf.split_off(cut);
            let chunk = std::mem::replace(&mut self.buf, rest);
            let lines = record::line_ends(&chunk);
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
) -> (C, Problems, Option<NotUtf8>) {
    let problems = RefCell::new(Problems::default());
    let mut acc = C::default();
    let mut not_utf8 = None;
    // Bytes that no value, or no key value, may hold: looked for in the rare chunk that has any.
    let odd_bytes = memchr::memchr3(0, 0x1e, 0x1f, bytes).is_some();
    let mut emit = |line: u64, data: &str, fields: &[(u32, u32)]| {
        let refused;
        let fields = if (odd_bytes && memchr::memchr3(0, 0x1e, 0x1f, data.as_bytes()).is_some())
            || data.len() > MAX_KEY_BYTES
        {
            refused = layout.refuse_values(line, data, fields, &problems);
            refused.as_deref().unwrap_or(fields)
        } else {
            fields
        };
        let blank = |&(start, end): &(u32, u32)| {
            data.as_bytes()
                .get(start as usize..end as usize)
                .is_some_and(|f| f.trim_ascii().is_empty())
        };
        // A blank line, or a row of separators (spreadsheets export the empty rows of a
        // formatted range so).
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
        let ignored = RefCell::new(Problems::default());
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
    let too_long = |line: u64| {
        problems.borrow_mut().push(Problem::new(
            layout.file,
            line,
            "row",
            "",
            &format!(
                "a record longer than {} MiB (is a quote left open?)",
                MAX_RECORD_BYTES >> 20
            ),
        ));
    };
    let (mut pos, mut line) = (0, first_line);
    if memchr::memchr(b'"', bytes).is_none() {
        // No quoting anywhere: every line end ends a record and every separator a field.
        // UTF-8 is checked once for the whole chunk when it is valid, else record by record.
        let whole = std::str::from_utf8(bytes).ok();
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
        while pos < bytes.len() {
            let (end, next) = record::next_line(bytes, pos);
            let record = &bytes[pos..end];
            if record.len() > MAX_RECORD_BYTES {
                too_long(line);
            } else if let Some(text) = whole {
                split(record, &mut fields);
                emit(line, &text[pos..end], &fields);
            } else {
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
            line += 1;
            pos = next;
        }
        return (acc, problems.into_inner(), not_utf8);
    }
    let mut data = Vec::new();
    while pos < bytes.len() {
        let (took, lines) =
            record::parse_record(&bytes[pos..], layout.separator, &mut data, &mut fields);
        if took > MAX_RECORD_BYTES {
            too_long(line);
        } else {
            match std::str::from_utf8(&data) {
                Ok(text) => emit(line, text, &fields),
                Err(e) => {
                    NotUtf8::note(&mut not_utf8, layout, line, &data, &fields, e.valid_up_to());
                    let text = text::decode_fields(&data, &fields, &mut decoded_fields);
                    emit(line, &text, &decoded_fields);
                }
            }
        }
        line += lines;
        pos += took;
    }
    (acc, problems.into_inner(), not_utf8)
}

impl Layout {
    /// The layout of a file from its header record (`raw`, and its fields' text `names` at
    /// `fields`) on line `line`, and where the header is not UTF-8.
    fn from_header(
        schema: &Schema,
        (raw, names, fields): (&[u8], &[u8], &[(u32, u32)]),
        (separator, line): (u8, u64),
        encoding: TextEncoding,
    ) -> Result<(Layout, Option<NotUtf8>), Vec<Problem>> {
        let problem = |column: &str, value: &str, reason: &str| {
            Problem::new(schema.file, line, column, value, reason)
        };
        if raw.starts_with(b"\xFF\xFE") || raw.starts_with(b"\xFE\xFF") {
            return Err(vec![problem(
                "header",
                "",
                "the file is UTF-16, not UTF-8: save it as CSV UTF-8",
            )]);
        }
        let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        if std::str::from_utf8(raw).is_err() && !text::looks_like_windows_1252(raw) {
            // Not text: whatever its columns seem to be would only follow from that.
            return Err(vec![problem(
                "header",
                "",
                "the file is not UTF-8 (nor plain Windows-1252 text): save it as CSV UTF-8",
            )]);
        }
        if raw.trim_ascii().is_empty() {
            return Err(vec![problem("header", "", "the file has no header row")]);
        }
        let mut not_utf8 = None;
        let mut problems = Vec::new();
        let names: Vec<String> = fields
            .iter()
            .map(|&(start, end)| {
                let f = names[start as usize..end as usize].trim_ascii();
                if std::str::from_utf8(f).is_err() && not_utf8.is_none() {
                    not_utf8 = Some(NotUtf8 {
                        line,
                        column: "header".into(),
                        value: text::decode(f).into_owned(),
                        windows_1252: true,
                    });
                }
                let name = text::decode(f).to_lowercase();
                if name.contains('\0') {
                    problems.push(problem("header", &name, NUL_REASON));
                }
                name
            })
            .collect();
        let mut position = vec![None; schema.columns.len()];
        let mut extra: Vec<(String, usize)> = Vec::new();
        // A header may have many thousands of columns: names seen are looked up, not searched.
        let mut seen: hashbrown::HashSet<&str> = hashbrown::HashSet::new();
        for (i, name) in names.iter().enumerate() {
            // Its own name or an alias (schema.rs: `cliente` is customer_id).
            if let Some(k) = schema.column_of(name) {
                if let Some(first) = position[k] {
                    let column = schema.columns[k];
                    let reason = if names[first] == *name {
                        "column appears twice in the header".to_string()
                    } else {
                        format!(
                            "column appears twice in the header: {:?} and {name:?} both name \
                             {column} (pt-BR names are aliases of the format's)",
                            names[first]
                        )
                    };
                    problems.push(problem(column, name, &reason));
                }
                position[k] = Some(i);
            } else if !name.is_empty() {
                if seen.insert(name) {
                    extra.push((name.clone(), i));
                } else {
                    // Its values would be lost: the row keeps one value per name.
                    problems.push(problem(
                        "header",
                        name,
                        "column appears twice in the header (names are read trimmed, in lower case)",
                    ));
                }
            }
        }
        drop(seen);
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
        let mut key = vec![false; names.len()];
        for column in schema.key {
            if let Some(p) = schema.position(column).and_then(|k| position[k]) {
                key[p] = true;
            }
        }
        Ok((
            Layout {
                file: schema.file,
                columns: schema.columns,
                position,
                extra,
                key,
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

    /// Refuses the values of a record that no store can keep: text with a NUL character, key
    /// values with the characters the store joins keys with, or longer than
    /// [`MAX_KEY_BYTES`]. Each is reported, and the record's fields are returned with those
    /// values [`REFUSED`] (they read as absent, and are not reported again as missing);
    /// `None` when every value is fine.
    fn refuse_values(
        &self,
        line: u64,
        data: &str,
        fields: &[(u32, u32)],
        problems: &RefCell<Problems>,
    ) -> Option<Vec<(u32, u32)>> {
        let mut refused: Option<Vec<(u32, u32)>> = None;
        for (k, &(start, end)) in fields.iter().enumerate().take(self.width) {
            // Read as every accessor reads a field (`get`): a range that is not one on the
            // text is no value, not a panic.
            let Some(value) = data.get(start as usize..end as usize).map(str::trim_ascii) else {
                continue;
            };
            let Err(reason) = check_text(value, self.key[k]) else {
                continue;
            };
            problems.borrow_mut().push(Problem::new(
                self.file,
                line,
                self.name_of(k),
                value,
                &reason,
            ));
            refused.get_or_insert_with(|| fields.to_vec())[k] = REFUSED;
        }
        refused
    }
}

/// Whether `value` (trimmed) is text a store can keep, as a key value when `key`; why not.
pub(crate) fn check_text(value: &str, key: bool) -> Result<(), Reason> {
    if value.contains('\0') {
        Err(NUL_REASON.into())
    } else if key && value.contains(['\u{1e}', '\u{1f}']) {
        Err(
            "holds the control character U+001E or U+001F, which no id or other key value \
             may hold (the store joins keys with them)"
                .into(),
        )
    } else if key && value.len() > MAX_KEY_BYTES {
        Err(format!(
            "is {} bytes long: an id or other key value has at most {MAX_KEY_BYTES} bytes",
            value.len()
        )
        .into())
    } else {
        Ok(())
    }
}

/// Why text holding a NUL character is refused.
const NUL_REASON: &str =
    "holds a NUL character (U+0000), which no text may hold (PostgreSQL cannot store it)";

/// Reads until `buf` holds at least `want` bytes or the file ends; returns whether it ended.
fn fill(file: &mut dyn Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    let mut block = [0u8; 64 << 10];
    while buf.len() < want {
        // Whole blocks, as the file gives them; only the tests' tiny chunks read less.
        let room = if want < block.len() {
            want - buf.len()
        } else {
            block.len()
        };
        let n = file.read(&mut block[..room])?;
        if n == 0 {
            return Ok(true);
        }
        buf.extend_from_slice(&block[..n]);
    }
    Ok(false)
}

fn io_problem(file: &str, e: &std::io::Error) -> Problem {
    // A source that found a problem of its own in the file (a workbook's error cell).
    let inner = e.get_ref();
    if let Some(p) = inner.and_then(|inner| inner.downcast_ref::<Problem>()) {
        return p.clone();
    }
    // A Parquet file that failed while its rows were read.
    if let Some(p) = inner
        .and_then(|inner| inner.downcast_ref::<crate::parquet::FileProblems>())
        .and_then(|found| found.0.first())
    {
        return p.clone();
    }
    // A file refused for what it is (a named pipe) says so; other errors are read errors.
    let reason = if e.kind() == std::io::ErrorKind::InvalidInput {
        e.to_string()
    } else {
        format!("cannot read: {e}")
    };
    Problem::new(file, 0, "file", "", &reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InMemory, NoProgress};

    /// Every record of `bytes` as the reader sees it (line, shape, fields as read), and the
    /// problems, reading `chunk_bytes` at a time.
    fn records(bytes: &[u8], encoding: TextEncoding, chunk_bytes: usize) -> Vec<String> {
        let files = [("customers.csv", bytes)];
        let mut seen = Vec::new();
        let read = read_in_chunks(
            &InMemory(&files),
            &crate::schema::CUSTOMERS,
            &NoProgress,
            encoding,
            chunk_bytes,
            |r, acc: &mut Vec<String>| {
                let fields: Vec<Option<&str>> = (0..6).map(|k| r.text(k)).collect();
                let extra: Vec<Option<&str>> = (0..r.extra_columns().count())
                    .map(|k| r.extra_text(k))
                    .collect();
                acc.push(format!("{} {} {fields:?} {extra:?}", r.line, r.misshapen()));
            },
            |chunk, _| seen.extend(chunk),
        );
        let problems = match read {
            Ok(Some(p)) => p.into_errors().0,
            Ok(None) => Vec::new(),
            Err(p) => p.into_errors().0,
        };
        seen.extend(problems.iter().map(|p| p.to_string()));
        seen
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// However a file is cut into chunks (here as small as a byte), the records, their
        /// lines and the problems are the same.
        #[test]
        fn chunks_never_change_what_is_read(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                &b","[..], b";", b"\"", b"\"\"", b"\n", b"\r\n", b"\r", b" ", b"\xe9", b"\x00",
                b"c1", b"c2", b"Ana", b"2024-01-01", b"x",
            ]), 0..60),
            header in proptest::sample::select(vec![
                &b"id,name,registered_on,extra\n"[..],
                b"id;name;\"regi\nstered_on\"\r",
                b"\xef\xbb\xbfid,\"na,me\"\r\n",
            ]),
            chunk in proptest::sample::select(vec![1usize, 2, 3, 5, 8, 13, 64]),
            latin in proptest::bool::ANY,
        ) {
            let mut bytes = header.to_vec();
            for p in &pieces {
                bytes.extend_from_slice(p);
            }
            let encoding = if latin { TextEncoding::WINDOWS_1252 } else { TextEncoding::UTF_8 };
            proptest::prop_assert_eq!(
                records(&bytes, encoding, chunk),
                records(&bytes, encoding, CHUNK_BYTES)
            );
        }
    }

    #[test]
    fn lines_are_counted_across_chunks_and_quotes() {
        let bytes = b"id,name\rc1,\"a\r\nb\"\rc2,x\r\n\nc3,y";
        for chunk in [1, 4, CHUNK_BYTES] {
            let got = records(bytes, TextEncoding::UTF_8, chunk);
            assert_eq!(
                got.iter()
                    .map(|r| r.split(' ').next().unwrap())
                    .collect::<Vec<_>>(),
                ["2", "4", "6"],
                "{got:?}"
            );
        }
    }
}
