//! Any CSV table, record by record: the import's own reading (see [`crate::record`]: the same
//! records, line numbers, separator detection, BOM, encodings and record bound) for files that
//! are not the interchange format's, such as a billing system's export read by a converter.
//!
//! The table is streamed: memory holds one record at a time (at most [`MAX_RECORD_BYTES`]),
//! whatever the file's size.

use crate::problem::Problem;
use crate::record;
use crate::table::MAX_RECORD_BYTES;
use crate::text;
use crate::TextEncoding;
use std::io::Read;
use std::sync::Arc;

/// One record of a table: its fields as text (UTF-8, untrimmed) and the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// 1-based line of the file where the record starts (the header is line 1).
    pub line: u64,
    pub fields: Vec<String>,
}

/// The text of a run of records read at once: their fields one after another, and where
/// each field lies in it (byte offsets).
#[derive(Debug, Default)]
struct Batch {
    text: String,
    bounds: Vec<(u32, u32)>,
}

/// One record of a table as [`Records::next_shared`] gives it: the same fields and line as a
/// [`Record`], its text shared with the records read with it (no allocation per record or
/// field). Keeping a record keeps the text of the records read with it (about
/// [`Records`]' block, 256 KiB): a caller that keeps a few records of a large table should
/// keep [`SharedRecord::to_record`] instead.
#[derive(Clone)]
pub struct SharedRecord {
    /// 1-based line of the file where the record starts (the header is line 1).
    pub line: u64,
    batch: Arc<Batch>,
    first: u32,
    len: u32,
}

impl SharedRecord {
    /// The text of field `i` (0-based, untrimmed); `None` past the record's last field.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&str> {
        if i >= self.len as usize {
            return None;
        }
        let &(a, b) = self.batch.bounds.get(self.first as usize + i)?;
        self.batch.text.get(a as usize..b as usize)
    }

    /// How many fields the record has (at least one).
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the record has no field (never, for a record read from a file).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The fields, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i).unwrap_or(""))
    }

    /// The record with its own copy of its fields.
    pub fn to_record(&self) -> Record {
        Record {
            line: self.line,
            fields: self.iter().map(str::to_string).collect(),
        }
    }
}

impl PartialEq for SharedRecord {
    fn eq(&self, other: &Self) -> bool {
        self.line == other.line && self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for SharedRecord {}

impl std::fmt::Debug for SharedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRecord")
            .field("line", &self.line)
            .field("fields", &self.iter().collect::<Vec<_>>())
            .finish()
    }
}

/// A CSV table read record by record: the header, then [`Records::next_record`] (or
/// [`Records::next_shared`]).
pub struct Records<R> {
    file: String,
    reader: R,
    encoding: TextEncoding,
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts (bytes before it are dropped when reading more).
    pos: usize,
    eof: bool,
    separator: u8,
    next_line: u64,
    header: Vec<String>,
    header_read: bool,
    out: Vec<u8>,
    fields: Vec<(u32, u32)>,
    failed: bool,
    /// The records read and not yet given: `(line, first field, fields)` in `batch`.
    batch: Arc<Batch>,
    queue: Vec<(u64, u32, u32)>,
    next: usize,
    /// The problem that stopped the reading, given after the records before it.
    error: Option<Problem>,
    /// Bytes read at a time ([`BLOCK`]; less in tests, to cut records everywhere).
    block: usize,
}

/// Bytes read at a time; the complete records among them are parsed at once.
const BLOCK: usize = 256 << 10;

impl<R: Read> Records<R> {
    /// Opens the table in `reader` and reads its header; `file` names it in problems.
    ///
    /// Errors: a file that cannot be read, a header longer than [`MAX_RECORD_BYTES`], text
    /// that is not UTF-8 when `encoding` is UTF-8, an empty file.
    pub fn new(file: &str, reader: R, encoding: TextEncoding) -> Result<Records<R>, Problem> {
        Records::with_block(file, reader, encoding, BLOCK)
    }

    fn with_block(
        file: &str,
        reader: R,
        encoding: TextEncoding,
        block: usize,
    ) -> Result<Records<R>, Problem> {
        let mut records = Records {
            file: file.to_string(),
            reader,
            encoding,
            buf: Vec::with_capacity(block),
            pos: 0,
            eof: false,
            separator: b',',
            next_line: 1,
            header: Vec::new(),
            header_read: false,
            out: Vec::new(),
            fields: Vec::new(),
            failed: false,
            batch: Arc::new(Batch::default()),
            queue: Vec::new(),
            next: 0,
            error: None,
            block: block.max(1),
        };
        records.fill(3)?;
        if records.buf.starts_with(b"\xEF\xBB\xBF") {
            records.buf.drain(..3);
        }
        // The separator from the first line: read until a line end shows it.
        loop {
            if let Some(i) = memchr::memchr2(b'\r', b'\n', &records.buf) {
                records.separator = record::detect_separator(&records.buf[..i]);
                break;
            }
            if records.eof {
                records.separator = record::detect_separator(&records.buf);
                break;
            }
            if records.buf.len() > MAX_RECORD_BYTES {
                return Err(records.too_long(1));
            }
            let want = records.buf.len() + records.block;
            records.fill(want)?;
        }
        while !records.header_read {
            if records.error.is_some() {
                return Err(records.error.take().expect("an error"));
            }
            if !records.refill()? {
                break;
            }
        }
        if records.header_read {
            Ok(records)
        } else {
            Err(Problem::new(
                file,
                0,
                "file",
                "",
                "is empty: a table needs a header",
            ))
        }
    }

    /// The header's names, as written (untrimmed).
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The field separator found in the first line (`,` or `;`).
    pub fn separator(&self) -> u8 {
        self.separator
    }

    /// The file name problems give.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The next record; `None` at the end. Rows of empty fields only (a spreadsheet's blank
    /// lines, `;;;`) are skipped. After an error the table is not read further.
    pub fn next_record(&mut self) -> Result<Option<Record>, Problem> {
        Ok(self.next_shared()?.map(|r| r.to_record()))
    }

    /// The next record as a [`SharedRecord`] (the same records, lines and problems as
    /// [`Records::next_record`], without a copy of each field).
    pub fn next_shared(&mut self) -> Result<Option<SharedRecord>, Problem> {
        loop {
            if let Some(&(line, first, len)) = self.queue.get(self.next) {
                self.next += 1;
                return Ok(Some(SharedRecord {
                    line,
                    batch: Arc::clone(&self.batch),
                    first,
                    len,
                }));
            }
            if let Some(e) = self.error.take() {
                return Err(e);
            }
            if !self.refill()? {
                return Ok(None);
            }
        }
    }

    /// Reads the next complete records into a new batch; `false` at the end of the table
    /// (or after an error, which `self.error` then holds or was given).
    fn refill(&mut self) -> Result<bool, Problem> {
        self.queue.clear();
        self.next = 0;
        loop {
            if self.failed {
                return Ok(false);
            }
            let avail = &self.buf[self.pos..];
            let complete = if self.eof {
                avail.len()
            } else {
                record::last_record_end(avail, self.separator).unwrap_or(0)
            };
            if complete == 0 {
                if self.eof {
                    return Ok(false);
                }
                if avail.len() > MAX_RECORD_BYTES {
                    self.failed = true;
                    return Err(self.too_long(self.next_line));
                }
                // Drop what was read, then read more (a long record: twice as much).
                self.buf.drain(..self.pos);
                self.pos = 0;
                let want = (self.buf.len() + self.block)
                    .max(2 * self.buf.len())
                    .min(MAX_RECORD_BYTES + 1);
                self.fill(want)?;
                continue;
            }
            let (start, end) = (self.pos, self.pos + complete);
            self.pos = end;
            self.parse_region(start, end);
            if !self.queue.is_empty() || self.error.is_some() {
                return Ok(true);
            }
        }
    }

    /// Parses the complete records of `buf[start..end]` into a new batch and queues them;
    /// the header when not read yet. A problem stops the table (`self.error`).
    fn parse_region(&mut self, start: usize, end: usize) {
        let buf = std::mem::take(&mut self.buf);
        self.parse_records(buf.get(start..end).unwrap_or(&[]));
        self.buf = buf;
    }

    fn parse_records(&mut self, region: &[u8]) {
        let mut batch = match Arc::get_mut(&mut self.batch) {
            Some(b) => std::mem::take(b),
            None => Batch::default(),
        };
        batch.text.clear();
        batch.bounds.clear();
        let plain = memchr::memchr(b'"', region).is_none();
        match std::str::from_utf8(region) {
            Ok(text) if plain => {
                // No quotes: every line is a record and each field is its text as it is.
                batch.text.push_str(text);
                let bytes = text.as_bytes();
                let mut at = 0;
                while at < bytes.len() {
                    let (stop, next) = record::next_line(bytes, at);
                    let first = batch.bounds.len() as u32;
                    let mut a = at;
                    for k in memchr::memchr_iter(self.separator, &bytes[at..stop]) {
                        batch.bounds.push((a as u32, (at + k) as u32));
                        a = at + k + 1;
                    }
                    batch.bounds.push((a as u32, stop as u32));
                    let line = self.next_line;
                    self.next_line += 1;
                    at = next;
                    self.take(&mut batch, line, first);
                }
            }
            _ => {
                let mut at = 0;
                while at < region.len() {
                    let (took, lines) = record::parse_record(
                        &region[at..],
                        self.separator,
                        &mut self.out,
                        &mut self.fields,
                    );
                    let line = self.next_line;
                    self.next_line += lines.max(1);
                    at += took;
                    let first = batch.bounds.len() as u32;
                    for (i, &(a, b)) in self.fields.iter().enumerate() {
                        let bytes = &self.out[a as usize..b as usize];
                        let begin = batch.text.len() as u32;
                        match std::str::from_utf8(bytes) {
                            Ok(t) => batch.text.push_str(t),
                            Err(_) if !self.encoding.is_utf8() => {
                                batch.text.push_str(&text::decode(bytes))
                            }
                            Err(_) => {
                                self.failed = true;
                                let column =
                                    self.header.get(i).cloned().unwrap_or_else(|| "row".into());
                                self.error = Some(Problem::new(
                                    &self.file,
                                    line,
                                    &column,
                                    &text::decode(bytes),
                                    "is not UTF-8 text: save the file as UTF-8, or read it \
                                     with --encoding windows-1252",
                                ));
                                self.batch = Arc::new(batch);
                                return;
                            }
                        }
                        batch.bounds.push((begin, batch.text.len() as u32));
                    }
                    self.take(&mut batch, line, first);
                }
            }
        }
        self.batch = Arc::new(batch);
    }

    /// Queues the record whose fields start at `first` in `batch` (the last ones pushed):
    /// as the header when not read yet; not at all when its fields are all blank.
    #[inline]
    fn take(&mut self, batch: &mut Batch, line: u64, first: u32) {
        let fields = batch.bounds.get(first as usize..).unwrap_or(&[]);
        if !self.header_read {
            self.header = fields
                .iter()
                .map(|&(a, b)| {
                    batch
                        .text
                        .get(a as usize..b as usize)
                        .unwrap_or("")
                        .to_string()
                })
                .collect();
            self.header_read = true;
            batch.bounds.truncate(first as usize);
            return;
        }
        let blank = fields.iter().all(|&(a, b)| {
            batch
                .text
                .get(a as usize..b as usize)
                .unwrap_or("")
                .trim()
                .is_empty()
        });
        if blank {
            batch.bounds.truncate(first as usize);
            return;
        }
        let len = fields.len() as u32;
        self.queue.push((line, first, len));
    }

    /// Reads until `buf` holds `want` bytes or the file ends.
    fn fill(&mut self, want: usize) -> Result<(), Problem> {
        while !self.eof && self.buf.len() < want {
            let start = self.buf.len();
            self.buf.resize(want, 0);
            match self.reader.read(&mut self.buf[start..]) {
                Ok(0) => {
                    self.buf.truncate(start);
                    self.eof = true;
                }
                Ok(n) => self.buf.truncate(start + n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.buf.truncate(start),
                Err(e) => {
                    self.buf.truncate(start);
                    self.failed = true;
                    return Err(Problem::new(
                        &self.file,
                        0,
                        "file",
                        "",
                        &format!("cannot be read: {e}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn too_long(&self, line: u64) -> Problem {
        Problem::new(
            &self.file,
            line,
            "row",
            "",
            &format!(
                "a record longer than {} MiB (is a quote left open?): the rest of the file is \
                 not read",
                MAX_RECORD_BYTES >> 20
            ),
        )
    }
}

impl<R: Read> Iterator for Records<R> {
    type Item = Result<Record, Problem>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8]) -> (Vec<String>, Vec<Record>) {
        let mut r = Records::new("t.csv", text, TextEncoding::UTF_8).unwrap();
        let rows = r.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
        (r.header().to_vec(), rows)
    }

    #[test]
    fn header_records_lines_and_separators() {
        let (h, rows) = all(b"\xEF\xBB\xBFa;b\r\n1;\"x\ny\"\n;\n2;3");
        assert_eq!(h, ["a", "b"]);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].line, rows[0].fields.clone()),
            (2, vec!["1".into(), "x\ny".into()])
        );
        assert_eq!(
            (rows[1].line, rows[1].fields.clone()),
            (5, vec!["2".into(), "3".into()])
        );
    }

    #[test]
    fn long_blocks_and_bad_text() {
        let mut text = b"id,v\n".to_vec();
        for i in 0..20_000 {
            text.extend_from_slice(format!("{i},\"{}\"\n", "z".repeat(i % 50)).as_bytes());
        }
        let (_, rows) = all(&text);
        assert_eq!(rows.len(), 20_000);
        assert_eq!(rows[19_999].line, 20_001);
        let mut r = Records::new("t.csv", &b"a\n\xE9\n"[..], TextEncoding::UTF_8).unwrap();
        let e = r.next_record().unwrap_err();
        assert_eq!(e.to_string().split(": ").next(), Some("t.csv:2"));
        let mut r = Records::new("t.csv", &b"a\n\xE9\n"[..], TextEncoding::WINDOWS_1252).unwrap();
        assert_eq!(r.next_record().unwrap().unwrap().fields, ["é"]);
        assert!(Records::new("t.csv", &b""[..], TextEncoding::UTF_8).is_err());
    }

    /// What reading `text` gives: the header and records, or the records before a problem
    /// and the problem.
    type Read = (Vec<String>, Vec<(u64, Vec<String>)>, Option<String>);

    /// The table read by the reader as it was before records were read a block at a time: a
    /// record at a time, by `record_end` and `parse_record`, each field decoded on its own.
    fn one_by_one(text: &[u8], encoding: TextEncoding) -> Read {
        let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
        let first = memchr::memchr2(b'\r', b'\n', text).map_or(text, |i| &text[..i]);
        let separator = record::detect_separator(first);
        let (mut out, mut fields, mut pos, mut line) = (Vec::new(), Vec::new(), 0, 1);
        let mut header: Option<Vec<String>> = None;
        let mut rows = Vec::new();
        while let Some(end) = record::record_end(&text[pos..], separator, true) {
            if end == 0 {
                break;
            }
            let (_, lines) =
                record::parse_record(&text[pos..pos + end], separator, &mut out, &mut fields);
            let at = line;
            line += lines.max(1);
            pos += end;
            let mut values = Vec::new();
            for &(a, b) in &fields {
                let bytes = &out[a as usize..b as usize];
                match std::str::from_utf8(bytes) {
                    Ok(t) => values.push(t.to_string()),
                    Err(_) if !encoding.is_utf8() => values.push(text::decode(bytes).into_owned()),
                    Err(_) => {
                        let column = header
                            .as_ref()
                            .and_then(|h| h.get(values.len()).cloned())
                            .unwrap_or_else(|| "row".into());
                        let p = Problem::new("t.csv", at, &column, &text::decode(bytes), "x");
                        return (header.unwrap_or_default(), rows, Some(p.to_string()));
                    }
                }
            }
            match &header {
                None => header = Some(values),
                Some(_) if values.iter().all(|v| v.trim().is_empty()) => {}
                Some(_) => rows.push((at, values)),
            }
        }
        (header.unwrap_or_default(), rows, None)
    }

    fn by_blocks(text: &[u8], encoding: TextEncoding, block: usize) -> Read {
        let mut r = match Records::with_block("t.csv", text, encoding, block) {
            Ok(r) => r,
            Err(p) if p.reason.contains("is empty") => return (Vec::new(), Vec::new(), None),
            Err(p) => {
                return (
                    Vec::new(),
                    Vec::new(),
                    Some(
                        Problem {
                            reason: "x".into(),
                            ..p
                        }
                        .to_string(),
                    ),
                )
            }
        };
        let header = r.header().to_vec();
        let mut rows = Vec::new();
        loop {
            match r.next_shared() {
                Ok(Some(rec)) => {
                    assert_eq!(rec.to_record().fields, rec.iter().collect::<Vec<_>>());
                    rows.push((rec.line, rec.iter().map(str::to_string).collect()));
                }
                Ok(None) => return (header, rows, None),
                Err(p) => {
                    assert!(
                        r.next_shared().unwrap().is_none(),
                        "nothing after a problem"
                    );
                    return (
                        header,
                        rows,
                        Some(
                            Problem {
                                reason: "x".into(),
                                ..p
                            }
                            .to_string(),
                        ),
                    );
                }
            }
        }
    }

    #[test]
    fn blocks_read_the_records_one_by_one_reading_does() {
        use proptest::prelude::*;
        let piece = prop_oneof![
            Just(&b"a"[..]),
            Just(&b"bc"[..]),
            Just(&b","[..]),
            Just(&b";"[..]),
            Just(&b"\""[..]),
            Just(&b"\r"[..]),
            Just(&b"\n"[..]),
            Just(&b"\r\n"[..]),
            Just(&b" "[..]),
            Just(&b"\xC3\xA9"[..]),
            Just(&b"\xE9"[..]),
            Just(&b"\xEF\xBB\xBF"[..]),
            Just(&b"\xC2\xA0"[..]),
        ];
        let text = proptest::collection::vec(piece, 0..40).prop_map(|p| p.concat());
        proptest!(ProptestConfig::with_cases(1500), |(text in text, block in 1usize..12)| {
            for encoding in [TextEncoding::UTF_8, TextEncoding::WINDOWS_1252] {
                let expected = one_by_one(&text, encoding);
                prop_assert_eq!(&by_blocks(&text, encoding, block), &expected);
                prop_assert_eq!(&by_blocks(&text, encoding, BLOCK), &expected);
            }
        });
    }
}
